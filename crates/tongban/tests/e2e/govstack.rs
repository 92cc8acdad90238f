//! The GovStack building blocks as their published clients call them: Registration, Digital Registries, Consent.

use super::*;

const IMC: &str = "eGovStack/GOV/90000009/eregistrations-dev";

/// The GovStack Registration API as its published test suite calls it, with the fixtures
/// loaded while the server runs, plus a submission to a real service of the catalog.
async fn govstack_registration_api(backend: Backend) {
    // The test plays the X-Road security server, which authenticated the system it forwards.
    let s = Server::start(backend, &["--security-servers", "127.0.0.1"]).await;
    let mut load = vec!["fixtures".to_string(), "load".into(), "govstack-registration".into()];
    load.extend(s.data_args());
    let (ok, out) = run(&load);
    assert!(ok && out.contains("7 services published; 5 application files and 3 tasks added"), "{out}");
    let (ok, out) = run(&load);
    assert!(ok && out.contains("0 application files and 0 tasks added"), "loading again adds nothing: {out}");

    let gs = |path: &str| s.url(&format!("/govstack/registration{path}"));
    let get = |path: &str, imc: Option<&str>| {
        let mut r = s.client.get(gs(path));
        if let Some(h) = imc {
            r = r.header("Information-Mediator-Client", h);
        }
        async move {
            let r = r.send().await.unwrap();
            let status = r.status();
            let ct = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
            (status, ct, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };

    // Services: our catalog and the fixtures; the name filter is exact.
    let (status, ct, all) = get("/services", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(ct.contains("application/json"), "{ct}");
    let all = all.as_array().unwrap().clone();
    assert!(all.iter().any(|x| x["name"] == "临时救助申请"), "the catalog is served");
    assert!(all.iter().any(|x| x["id"] == "P2c9280957e579ad7017e58a3399f0068"));
    let (_, _, found) = get("/services?name=Zero%20Hunger", None).await;
    let found = found.as_array().unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["name"], "Zero Hunger");
    assert_eq!(found[0]["version"], "2.1", "the client's descriptor is kept");
    let (status, _, one) = get("/services/P2c9280957e579ad7017e58a3399f0068", Some(IMC)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one[0]["name"], "Good Health and Well-Being", "one service, as a list: {one}");
    let (status, _, body) = get("/services/P2c9280957e579ad7017e58a3399f0068", Some("invalid_header")).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_mediator_client")));
    let (status, _, _) = get("/services/n0t-ex1st1ng-serv1ce", Some(IMC)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // eForms: list items carry exactly the five listed keys; one form has its schema.
    let (_, _, forms) = get("/services/P2c9280957e579ad7017e58a3399f0068/eForms", None).await;
    let forms = forms.as_array().unwrap();
    assert_eq!(forms[0]["eFormId"], "w12a205a-679b-xx34-823d-7a32a391e744");
    for f in forms {
        for key in f.as_object().unwrap().keys() {
            assert!(["eFormId", "name", "description", "version", "latest"].contains(&key.as_str()), "{key}");
        }
    }
    let (status, _, form) = get("/eForms/d98a205a-679b-485b-823d-7a32a391e744", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(form["eFormId"], "d98a205a-679b-485b-823d-7a32a391e744");
    assert!(form["schema"].is_object());
    let (status, ct, _) = get("/eForms/n0t-ex1st1ng-eForm", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(ct.contains("application/json"), "{ct}");
    let relief = all.iter().find(|x| x["name"] == "临时救助申请").unwrap()["id"].as_str().unwrap().to_string();
    let (_, _, relief_forms) = get(&format!("/services/{relief}/eForms"), None).await;
    let relief_form = relief_forms[0]["eFormId"].as_str().unwrap().to_string();
    let (_, _, schema) = get(&format!("/eForms/{relief_form}"), None).await;
    assert!(schema["schema"]["properties"]["household_size"].is_object(), "our own form's schema: {schema}");

    // Submitting: no body is 400, an unknown service 404, ids are free text.
    let post = |path: &str, body: Option<Value>| {
        let mut r = s.client.post(gs(path)).header("Information-Mediator-Client", IMC);
        if let Some(b) = body {
            r = r.json(&b);
        }
        async move {
            let r = r.send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, body) = post("/services/f7d33db0-2809-484e-a780-76b7ccd4ecbf/applications", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, file) = post(
        "/services/f7d33db0-2809-484e-a780-76b7ccd4ecbf/applications",
        Some(json!({"applicationName": "Amya Yuko", "applicantId": "sgh123h5-bdb2-11ed-9397-fdae352dfa10",
            "created": "2022-10-21T00:00:00.000Z"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{file}");
    assert_eq!(file["serviceId"], "f7d33db0-2809-484e-a780-76b7ccd4ecbf");
    assert_eq!(file["applicationData"]["applicantId"], "sgh123h5-bdb2-11ed-9397-fdae352dfa10");
    assert_eq!(file["status"]["code"], "PENDING");
    let (status, _) = post("/services/n0t-ex1st1ng-serv1ce-1d/applications", Some(json!({"applicantId": "x"}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = post("/services/n0t-ex1st1ng-serv1ce-1d/applications", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the service is found before the body is read");
    // The same file form-encoded (as the published suite sends it) or as multipart.
    let submit_form = |form: reqwest::RequestBuilder| async move {
        let r = form.header("Information-Mediator-Client", IMC).send().await.unwrap();
        (r.status(), r.json::<Value>().await.unwrap_or(Value::Null))
    };
    let fixture_service = gs("/services/f7d33db0-2809-484e-a780-76b7ccd4ecbf/applications");
    let (status, formed) = submit_form(s.client.post(&fixture_service).form(&[
        ("applicationName", "Application name"),
        ("applicantId", "fdae352d-9397-bdb2-11ed-11ed9397bdb2"),
        ("created", "2022-11-22T00:00:00.000Z"),
    ]))
    .await;
    assert_eq!(status, StatusCode::OK, "{formed}");
    assert_eq!(formed["applicationData"]["applicantId"], "fdae352d-9397-bdb2-11ed-11ed9397bdb2");
    assert_eq!(formed["applicationData"]["applicationName"], "Application name");
    let parts = reqwest::multipart::Form::new()
        .text("applicantId", "11ed9397-11ed-9397-bdb2-sgh123h511ed")
        .text("documentUrls", r#"["https://example.org/a.pdf"]"#);
    let (status, parted) = submit_form(s.client.post(&fixture_service).multipart(parts)).await;
    assert_eq!(status, StatusCode::OK, "{parted}");
    assert_eq!(parted["applicationData"]["documentUrls"], json!(["https://example.org/a.pdf"]));
    let (status, body) =
        submit_form(s.client.post(&fixture_service).form(&[("applicationName", "no applicant")])).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_body")), "{body}");

    // A real service validates the form and seals what is sensitive.
    let apply = |data: Value| {
        post(
            &format!("/services/{relief}/applications"),
            Some(json!({"applicantId": "ext-resident-7", "formData": {"eFormId": relief_form, "data": data}})),
        )
    };
    let (status, body) = apply(json!({"household_size": "three"})).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("form_invalid")), "{body}");
    let good = json!({"applicant_name": "李四", "id_number": "110101199003077777", "mobile": "13800000000",
        "address": "明月区一路 1 号", "household_size": 3, "hardship_type": "illness", "monthly_income": 800,
        "hardship_description": "家人住院", "agree": true});
    let (status, mine) = apply(good).await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    let file_id = mine["fileId"].as_str().unwrap().to_string();
    assert_eq!(mine["applicationData"]["formData"]["data"]["id_number"], "110101199003077777", "opened for the client");

    // Files: filters, unknown ids, the operator's update.
    let (status, _, files) = get("/applications", Some(IMC)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(files.as_array().unwrap().iter().all(|f| f["fileId"].is_string()));
    let (_, _, none) = get("/applications?serviceId=n0t-ex1st1ng-serv1ce", Some(IMC)).await;
    assert_eq!(none, json!([]));
    let (_, _, by_applicant) = get("/applications?applicantId=11962de0-11b2-11cc-9390-0242ac121114", Some(IMC)).await;
    assert_eq!(by_applicant[0]["fileId"], "77c4775c-b7f3-17ed-afa1-0772ac120077");
    assert_eq!(by_applicant[0]["eformId"], "77962d30-xxxx-3ed-077300-0242ac120004");
    let (status, _, fixture) = get("/applications/81c4445c-bff6-11ed-afa1-0242ac120002", Some(IMC)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fixture["fileId"], "81c4445c-bff6-11ed-afa1-0242ac120002");
    assert!(fixture["serviceId"].is_string() && fixture["applicationData"].is_object());
    let (status, _, _) = get("/applications/n0t-ex1st1ng-serv1ce", Some(IMC)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let update = json!({"applicationName": "Amya Yuko", "applicantId": "42962de0-bdb2-11ed-9397-0242ac120004",
        "created": "2000-10-23T00:00:00.000Z", "formData": {"data": {"additionalProp1": {}}, "eFormId": "42962de0"},
        "documentUrls": ["string"]});
    let put = |id: &str| {
        s.client.put(gs(&format!("/applications/{id}"))).header("Information-Mediator-Client", IMC).json(&update).send()
    };
    let r = put("b8508d35-c2f3-442b-88a1-267ca25e85c0").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let updated: Value = r.json().await.unwrap();
    assert_eq!(updated["fileId"], "b8508d35-c2f3-442b-88a1-267ca25e85c0");
    assert_eq!(updated["applicationData"]["documentUrls"], json!(["string"]));
    assert_eq!(put("n0t-ex1st1ng-file").await.unwrap().status(), StatusCode::NOT_FOUND);

    // Tasks: filters, objects in form variables, completion twice, a reject decides the file.
    let (_, _, tasks) = get("/tasks?assigneeId=42962de0-bdb2-11ed-9397-0242ac120022", Some(IMC)).await;
    assert_eq!(tasks[0]["taskId"], "42962de0-bdb2-11ed-9397-0242ac120033");
    let (_, _, none) = get("/tasks?mainTaskId=n0t-ex1st1ng-main-task", Some(IMC)).await;
    assert_eq!(none, json!([]));
    let (status, _, _) = get("/tasks/81c4445c-bff6-11ed-afa1-0242ac120002", Some("invalid_header")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a header that is sent must be well formed");
    let (status, _, _) = get("/tasks/81c4445c-bff6-11ed-afa1-0242ac120002", None).await;
    assert_eq!(status, StatusCode::OK, "the published API declares no header here: the security server vouches");
    let (status, _, task) = get("/tasks/81c4445c-bff6-11ed-afa1-0242ac120002", Some(IMC)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(task["taskId"], "81c4445c-bff6-11ed-afa1-0242ac120002");
    assert!(task["formVariables"].as_object().unwrap().values().all(Value::is_object));
    assert_eq!(get("/tasks/n0t-ex1st1ng-task", Some(IMC)).await.0, StatusCode::NOT_FOUND);
    let (status, _) = post("/tasks/n0t-ex1st1ng-task", Some(json!({"data": {}}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a POST without /complete names no task");
    for _ in 0..2 {
        let (status, done) = post(
            "/tasks/d1e33d56-c5c7-4272-aeb6-bc2732cce1f2/complete",
            Some(json!({"data": {"additionalProp1": {}}})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{done}");
        assert_eq!(done["taskId"], "d1e33d56-c5c7-4272-aeb6-bc2732cce1f2");
    }
    let (_, _, my_tasks) = get(&format!("/tasks?fileId={file_id}"), Some(IMC)).await;
    let my_task = my_tasks[0]["taskId"].as_str().unwrap().to_string();
    let (status, done) =
        post(&format!("/tasks/{my_task}/complete"), Some(json!({"data": {"decision": "reject"}}))).await;
    assert_eq!((status, done["status"]["code"].as_str()), (StatusCode::OK, Some("REJECTED")), "{done}");
    let (_, _, decided) = get(&format!("/applications/{file_id}"), Some(IMC)).await;
    assert_eq!((decided["status"]["code"].as_str(), decided["ended"].as_bool()), (Some("REJECTED"), Some(true)));

    // Documents: form-encoded base64 (as the suite sends it), JSON, and nothing at all.
    let text = "ewogIGZpZWxkbmFtZTogJ2ltYWdlJwp9";
    let r = s.client.post(gs("/documents")).body(format!("file={text}%3D")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "no system named, forwarded by the security server");
    let r = s
        .client
        .post(gs("/documents?additionalMetadata=additional%20metadata"))
        .header("Information-Mediator-Client", IMC)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("file={text}%3D"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let uploaded: Value = r.json().await.unwrap();
    assert!(uploaded["code"].is_i64() && uploaded["url"].as_str().unwrap().contains("/documents/"), "{uploaded}");
    let pdf = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b"%PDF-1.7 test");
    let (status, uploaded) = post("/documents", Some(json!({"file": [pdf]}))).await;
    assert_eq!((status, uploaded["type"].as_str()), (StatusCode::OK, Some("application/pdf")));
    let r = s.client.post(gs("/documents")).header("Information-Mediator-Client", IMC).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let missing: Value = r.json().await.unwrap();
    assert_eq!(missing["code"], "file_missing");

    // Statistics: the header is required and checked; both spellings; exact content type.
    for bad in [None, Some(""), Some("''"), Some("invalid_header"), Some("eGovStack/GOV/90000009/")] {
        let (status, _, _) = get("/data/statistics/1.0", bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad:?}");
    }
    let q = "startDate=2021-01-30&endDate=2021-01-30&registrationName=MCTS&operator=Ingmar%20Vali&role=Handler&timeframe=day";
    let (status, _, mcts) = get(&format!("/data/statistics/1.0?{q}"), Some(IMC)).await;
    assert_eq!(status, StatusCode::OK, "MCTS is the short name of a fixture service: {mcts}");
    assert_eq!(mcts[0]["references"]["registrationName"], "MCTS");
    let (status, _, _) = get("/data/statistics?registrationName=n0tex1st", Some(IMC)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let doubled = format!("/data/statistics/1.0?{q}?{q}")
        .replace("MCTS", "%E4%B8%B4%E6%97%B6%E6%95%91%E5%8A%A9%E7%94%B3%E8%AF%B7");
    let (status, ct, stats) =
        get(&doubled.replace("startDate=2021-01-30&endDate=2021-01-30", "startDate=2020-01-01"), Some(IMC)).await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    assert_eq!(ct, "application/json; charset=utf-8");
    assert!(stats[0]["rejected"].as_i64().unwrap() >= 1, "the rejected file of 临时救助申请 counts: {stats}");
    assert_eq!(stats[0]["references"]["timeframeDay"], true);
    let (status, _, _) = get("/data/statistics", Some(IMC)).await;
    assert_eq!(status, StatusCode::OK);
}

const REGISTRIES_IMC: &str = "eGovStack/GOV/90000009/digitalregistries";

/// The GovStack Digital Registries API as its published test suite calls it, on the fixture
/// loaded while the server runs: the Data API (both path spellings), myPersonalDataUsage from
/// the fixture's history and the real access log, and the Database API.
async fn govstack_registries_api(backend: Backend) {
    // The test plays the X-Road security server, which authenticated the system it forwards.
    let s = Server::start(backend, &["--security-servers", "127.0.0.1"]).await;
    let mut load = vec!["fixtures".to_string(), "load".into(), "govstack-registries".into()];
    load.extend(["--system".into(), REGISTRIES_IMC.into()]);
    load.extend(s.data_args());
    let (ok, out) = run(&load);
    assert!(ok && out.contains("23 records and 10 database descriptions loaded"), "{out}");
    assert!(out.contains(&format!("registry registryname serves: {}", REGISTRIES_IMC.to_lowercase())), "{out}");
    assert!(out.contains("registry registryempty serves"), "{out}");
    // A fixture file whose parts are not what they should be is refused before anything is
    // loaded.
    let bad = s.data.path().join("bad-fixture.json");
    let fixture = json!({"registries": {"registryname": "badfixture", "versionnumber": "1", "databaseID": "BAD",
        "records": []}, "databases": {"not": "a list"}});
    std::fs::write(&bad, fixture.to_string()).unwrap();
    let mut refused = vec!["fixtures".to_string(), "load".into(), "govstack-registries".into()];
    refused.extend(["--file".into(), bad.display().to_string()]);
    refused.extend(s.data_args());
    let (ok, out) = run(&refused);
    assert!(!ok && out.contains("databases"), "{out}");

    let url = |path: &str| s.url(&format!("/govstack/registries{path}"));
    let call = |method: reqwest::Method, path: &str, body: Option<Value>| {
        let mut r = s.client.request(method, url(path)).header("Information-Mediator-Client", REGISTRIES_IMC);
        if let Some(b) = body {
            r = r.json(&b);
        }
        async move {
            let r = r.send().await.unwrap();
            let status = r.status();
            let ct = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
            let text = r.text().await.unwrap();
            if status != StatusCode::NO_CONTENT {
                assert_eq!(ct, "application/json; charset=utf-8", "{status} {text}");
            }
            (status, serde_json::from_str::<Value>(&text).unwrap_or(Value::Null))
        }
    };
    use reqwest::Method;
    let data = "/data/registryname/111";
    let (status, _) = call(Method::GET, "/data/badfixture/1", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the refused fixture published nothing");

    // The calling system must be named.
    let r = s.client.get(url(data)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "invalid_mediator_client");
    assert!(body["detail"].as_str().unwrap().contains("Information-Mediator-Client"));

    // list: everything without paging, never a null `next`; exact fields, search, ordering.
    let (status, all) = call(Method::GET, data, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(all["count"], 23);
    assert_eq!(all["results"].as_array().unwrap().len(), 23);
    assert!(all.get("next").is_none(), "{all}");
    assert_eq!(all["results"][0]["uuid"], "80bcb084-fa17-11ed-be56-0242ac120002");
    assert_eq!(all["results"][0]["ID"], "EE123627348834", "the fixture's `id` is served as ID");
    assert!(all["results"][0].get("PersonalData").is_none(), "the usage history is not record content");
    let (_, johns) = call(Method::GET, &format!("{data}?query.FirstName=John"), None).await;
    assert_eq!(johns["count"], 7, "{johns}");
    let (_, sorted) = call(Method::GET, &format!("{data}?search=^J&filter=firstname&ordering=descending"), None).await;
    let names: Vec<&str> =
        sorted["results"].as_array().unwrap().iter().map(|r| r["FirstName"].as_str().unwrap()).collect();
    assert!(names.len() == 8 && names.iter().all(|n| n.starts_with('J')), "{names:?}");
    assert!(names.windows(2).all(|w| w[0] >= w[1]), "descending: {names:?}");
    let (status, none) = call(Method::GET, &format!("{data}?search=John&filter=John&ordering=ASC"), None).await;
    assert_eq!((status, none["count"].as_u64()), (StatusCode::OK, Some(0)), "a filter naming no field finds nothing");
    let (_, page) = call(Method::GET, &format!("{data}?page=2&pageSize=10"), None).await;
    assert_eq!((page["count"].as_u64(), page["results"].as_array().unwrap().len()), (Some(23), 10));
    assert!(page["next"].as_str().unwrap().contains("page=3"), "{page}");
    assert!(page["previous"].as_str().unwrap().contains("page=1"), "{page}");
    let (status, _) = call(Method::GET, &format!("{data}?ordering=sideways"), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = call(Method::GET, "/data/registryname/999", None).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    let (status, empty) = call(Method::GET, "/data/registryempty/111", None).await;
    assert_eq!((status, empty["count"].as_u64()), (StatusCode::OK, Some(0)), "the fixture's empty registry");
    let (status, _) = call(Method::GET, "/data/population/1", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "registries not marked trusted are not served");

    // create: a flat body, field names spelt loosely.
    let anna = json!({"ID": "EE999000111222", "Firstname": "Anna", "LastName": "Stock", "BirthCertificateID": "RR-1234567999"});
    let (status, created) = call(Method::POST, &format!("{data}/create"), Some(anna)).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["content"]["FirstName"], "Anna");
    assert!(created["content"]["uuid"].as_str().is_some_and(|u| !u.is_empty()));
    let (status, body) = call(Method::POST, &format!("{data}/create"), Some(json!({"ID": 5}))).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("record_invalid")), "{body}");
    let r = s
        .client
        .post(url(&format!("{data}/create")))
        .header("Information-Mediator-Client", REGISTRIES_IMC)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // exists and read, flat or wrapped.
    let john_bon =
        json!({"ID": "EE123627348834", "FirstName": "John", "LastName": "Bon", "BirthCertificateID": "RR-3334537999"});
    let (_, yes) = call(Method::POST, &format!("{data}/exists"), Some(john_bon)).await;
    assert_eq!(yes["answer"], json!({"status": true, "message": "Object found from database"}));
    let (_, no) =
        call(Method::POST, &format!("{data}/exists"), Some(json!({"query": {"content": {"ID": "EE456627348844"}}})))
            .await;
    assert_eq!(no["answer"]["status"], false);
    let (status, billy) =
        call(Method::POST, &format!("{data}/read"), Some(json!({"query": {"content": {"ID": "EE378129127223"}}})))
            .await;
    assert_eq!((status, billy["content"]["FirstName"].as_str()), (StatusCode::OK, Some("Billy")));
    let (_, smith) =
        call(Method::POST, &format!("{data}/read"), Some(json!({"query": {"content": {"LastName": "Smith"}}}))).await;
    assert_eq!(smith["content"]["FirstName"], "Emma", "the first match in the order written");
    let (status, missing) =
        call(Method::POST, &format!("{data}/read"), Some(json!({"query": {"content": {"FirstName": "NotExist"}}})))
            .await;
    assert_eq!((status, missing["detail"].as_str()), (StatusCode::NOT_FOUND, Some("no record found")));

    // update one, update all matches, update or create.
    let update = json!({
        "query": {"content": {"ID": "EE3784545277266", "FirstName": "Philip", "LastName": "Red", "BirthCertificateID": "RR-30045370099"}},
        "write": {"content": {"ID": "EE383838348834", "FirstName": "Elsa", "LastName": "West", "BirthCertificateID": "RR-1234007889"}},
    });
    let (status, elsa) = call(Method::PUT, &format!("{data}/update"), Some(update.clone())).await;
    assert_eq!((status, elsa["content"]["FirstName"].as_str()), (StatusCode::OK, Some("Elsa")), "{elsa}");
    let (status, again) = call(Method::PUT, &format!("{data}/update"), Some(update.clone())).await;
    assert_eq!(
        (status, again["content"]["uuid"].as_str()),
        (StatusCode::OK, elsa["content"]["uuid"].as_str()),
        "Philip is Elsa now: the same update sent again finds its record already written"
    );
    let mut elsewhere = update.clone();
    elsewhere["write"]["content"]["LastName"] = json!("East");
    let (status, _) = call(Method::PUT, &format!("{data}/update"), Some(elsewhere)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a write the record does not hold is no repeat");
    let (_, by_new_key) =
        call(Method::POST, &format!("{data}/read"), Some(json!({"query": {"content": {"ID": "EE383838348834"}}})))
            .await;
    assert_eq!(by_new_key["content"]["LastName"], "West", "the key is indexed anew");
    let entries = json!({"query": {"content": {"LastName": "Johnson"}}, "write": {"content": {"FirstName": "Bob"}}});
    let (status, updated) = call(Method::PUT, &format!("{data}/update-entries"), Some(entries)).await;
    assert_eq!((status, updated["count"].as_u64()), (StatusCode::OK, Some(2)));
    let nobody = json!({"query": {"content": {"FirstName": "Nobody"}}, "write": {"content": {"FirstName": "Jack"}}});
    let (status, updated) = call(Method::PUT, &format!("{data}/update-entries"), Some(nobody)).await;
    assert_eq!((status, updated), (StatusCode::OK, json!({"count": 0, "content": []})), "no match: none updated");
    let (status, _) = call(
        Method::PUT,
        &format!("{data}/updateEntries"),
        Some(json!({"query": {"content": {"FirstName": "Alina"}}})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "nothing to write");
    let jack = json!({"ID": "EE123456789012", "FirstName": "John", "LastName": "Smith", "BirthCertificateID": "RR-1234567890"});
    let (_, made) = call(
        Method::POST,
        &format!("{data}/update-or-create"),
        Some(json!({"query": {"content": jack}, "write": {"content": jack}})),
    )
    .await;
    let made_uuid = made["content"]["uuid"].as_str().unwrap().to_string();
    let sparrow = json!({"ID": "EE123456789012", "FirstName": "Jack", "LastName": "Sparrow", "BirthCertificateID": "RR-1234567890"});
    let (_, again) = call(
        Method::POST,
        &format!("{data}/updateOrCreate"),
        Some(json!({"query": {"content": jack}, "write": {"content": sparrow}})),
    )
    .await;
    assert_eq!(
        (again["content"]["uuid"].as_str(), again["content"]["LastName"].as_str()),
        (Some(made_uuid.as_str()), Some("Sparrow"))
    );

    // readValue, both spellings; delete.
    let value = "/80bcb084-fa17-11ed-be56-0242ac120002";
    let (status, first) = call(Method::GET, &format!("{data}{value}/read-value/FirstName.json"), None).await;
    assert_eq!((status, first), (StatusCode::OK, json!("John")));
    let (_, last) = call(Method::GET, &format!("{data}{value}/readValue/lastname.json"), None).await;
    assert_eq!(last, json!("Bon"));
    let (status, _) = call(Method::GET, &format!("{data}{value}/read-value/FirstName.xml"), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = call(Method::GET, &format!("{data}{value}/read-value/Nickname.json"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(Method::DELETE, &format!("{data}/EE378627348834/delete"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(Method::DELETE, &format!("{data}/EE378627348834/delete"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "deleting again: already gone");
    let (status, _) =
        call(Method::POST, &format!("{data}/read"), Some(json!({"query": {"content": {"ID": "EE378627348834"}}})))
            .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "and gone it is");

    // myPersonalDataUsage: the history the registry brought, then the reads logged above.
    let (status, usage) =
        call(Method::GET, "/data/MyPersonalDataUsage/1.0?userID=EE378129127223&DatabaseID=MCTS", None).await;
    assert_eq!(status, StatusCode::OK, "{usage}");
    let usage = usage.as_array().unwrap();
    assert_eq!(usage[0]["ReaderInstitutionName"], "East Hospital", "the fixture's history first");
    assert!(
        usage.iter().any(|u| u["ReaderID"] == REGISTRIES_IMC && u["Action"] == "registry_record_read"),
        "the read above is in the real access log: {usage:?}"
    );
    let (status, _) = call(Method::GET, "/data/myPersonalDataUsage?userId=%22...%22&databaseId=MCTS", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = call(Method::GET, "/data/myPersonalDataUsage?userId=EE378129127223&databaseId=NOPE", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // The Database API: one group, descriptions by integer id, delete, modify.
    let (status, group) = call(Method::GET, "/databases", None).await;
    assert_eq!((status, group["id"].as_i64(), group["code"].as_str()), (StatusCode::OK, Some(85), Some("MCTS")));
    assert_eq!(group["databases"].as_array().unwrap().len(), 10, "the fixture's comment entry is skipped");
    let keys: Vec<&String> = group.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 7, "exactly the group's keys: {keys:?}");
    let (status, info) = call(Method::GET, "/database/8438778473", None).await;
    assert_eq!(
        (status, info["id"].as_i64(), info["number_format"].as_str()),
        (StatusCode::OK, Some(8438778473), Some("{code}{indexNoByCode}"))
    );
    let (status, _) = call(Method::GET, "/database/eight", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, done) = call(Method::DELETE, "/database/75858", None).await;
    assert_eq!((status, done), (StatusCode::OK, json!("Success")));
    let (status, _) = call(Method::GET, "/database/75858", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, done) = call(Method::DELETE, "/database/75858", None).await;
    assert_eq!((status, done), (StatusCode::OK, json!("Success")), "deleting again: already gone");
    let schema = json!({"type": "object", "properties": {"ID": {"type": "string", "primaryKey": true}}, "incrementIndex": 30, "required": ["ID"]});
    let change = json!({"group_name": "Test", "catalog_name": "Mother and Child", "code": "MCR", "schema": schema});
    let (status, stored) = call(Method::POST, "/database/modify", Some(change.clone())).await;
    assert_eq!((status, &stored), (StatusCode::OK, &schema));
    let (_, again) = call(Method::POST, "/database/modify", Some(change)).await;
    assert_eq!(again, schema);
    let (_, group) = call(Method::GET, "/databases", None).await;
    let mcr: Vec<&Value> = group["databases"].as_array().unwrap().iter().filter(|d| d["name"] == "MCR").collect();
    assert_eq!(mcr.len(), 1, "modify replaces by name");
    assert_eq!(mcr[0]["version"], "1.1", "and moves the version on");
    let (status, empty) = call(Method::POST, "/database/modify", None).await;
    assert_eq!((status, empty), (StatusCode::OK, json!({})));

    // Loading again resets the records to the fixture.
    let (ok, out) = run(&load);
    assert!(ok, "{out}");
    let (_, all) = call(Method::GET, data, None).await;
    assert!(
        all["results"].as_array().unwrap().iter().any(|r| r["ID"] == "EE378627348834"),
        "the deleted record is back"
    );
}

/// The GovStack Consent API: the organisation admin's policies and data agreements with their
/// revisions (a staff token), and an individual's consent through a mediated system, with the
/// envelopes, bare bodies, forms and trailing slashes clients send.
async fn govstack_consent_api(backend: Backend) {
    // The test plays the X-Road security server, which authenticated the system it forwards.
    let s = Server::start(backend, &["--security-servers", "127.0.0.1"]).await;
    let officer = s.token("data.mz").await;
    let url = |path: &str| s.url(&format!("/govstack/consent{path}"));
    let admin = |method: reqwest::Method, path: &str, body: Option<Value>| {
        let mut r = s.client.request(method, url(path)).bearer_auth(&officer);
        if let Some(b) = body {
            r = r.json(&b);
        }
        async move {
            let r = r.send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    use reqwest::Method;

    let r = s.client.get(url("/config/policies/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "the organisation admin signs in");
    let clerk = s.token("clerk.mingyue").await;
    let r = s.client.get(url("/config/policies/")).bearer_auth(&clerk).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "and holds consent.manage");

    // Policies: create, replace (a revision linked to the first), list, revisions.
    let policy = json!({"name": "婚姻登记数据使用政策", "version": "1.0", "url": "https://mz.example.gov/policy", "jurisdiction": "CN"});
    let (status, created) = admin(Method::POST, "/config/policy/", Some(json!({"policy": policy}))).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let policy_id = created["policy"]["id"].as_str().unwrap().to_string();
    assert_eq!(created["revision"]["schemaName"], "Policy");
    let first_hash = created["revision"]["serializedHash"].as_str().unwrap().to_string();
    let (status, replaced) = admin(
        Method::PUT,
        &format!("/config/policy/{policy_id}"),
        Some(json!({"name": "婚姻登记数据使用政策", "version": "1.1", "url": "https://mz.example.gov/policy"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "a bare body and no trailing slash: {replaced}");
    assert_eq!(replaced["revision"]["predecessorHash"], first_hash.as_str());
    let (_, revisions) = admin(Method::GET, &format!("/config/policy/{policy_id}/revisions/"), None).await;
    assert_eq!(revisions["revisions"].as_array().unwrap().len(), 2);
    // A policy as it was at a revision, and as it is now.
    let first_revision = created["revision"]["id"].as_str().unwrap().to_string();
    let (status, then) =
        admin(Method::GET, &format!("/config/policy/{policy_id}/?revisionId={first_revision}"), None).await;
    assert_eq!(status, StatusCode::OK, "{then}");
    assert_eq!(
        (then["policy"]["version"].as_str(), then["policy"]["id"].as_str()),
        (Some("1.0"), Some(policy_id.as_str()))
    );
    assert_eq!(then["revision"]["id"], first_revision.as_str());
    let (_, current) = admin(Method::GET, &format!("/config/policy/{policy_id}"), None).await;
    assert_eq!(current["policy"]["version"], "1.1");
    let (status, _) = admin(Method::GET, &format!("/config/policy/{policy_id}?revisionId=nope"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(revisions["revisions"][1]["objectId"], policy_id.as_str());
    let (status, body) = admin(Method::POST, "/config/policy/", Some(json!({"policy": {"name": "no version"}}))).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_field")));
    let r = s
        .client
        .post(url("/config/policy/"))
        .bearer_auth(&officer)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // A data agreement under the policy; the policy is then in use.
    let agreement = json!({"dataAgreement": {
        "version": "1.0", "controller": {"id": "990000-MZ", "name": "省民政厅", "url": "https://mz.example.gov"},
        "policy": {"id": policy_id}, "purpose": "婚姻状况核验", "lawfulBasis": "consent", "dpia": "DPIA-2026-01",
        "active": true, "forgettable": false,
    }});
    let (status, da) = admin(Method::POST, "/config/data-agreement/", Some(agreement)).await;
    assert_eq!(status, StatusCode::OK, "{da}");
    let da_id = da["dataAgreement"]["id"].as_str().unwrap().to_string();
    assert_eq!(da["dataAgreement"]["policy"]["version"], "1.1", "the policy is embedded as stored");
    let (_, list) = admin(Method::GET, "/config/data-agreements/?limit=100", None).await;
    for key in ["dataAgreement", "dataAgreements"] {
        assert!(list[key].as_array().unwrap().iter().any(|a| a["id"] == da_id.as_str()), "{key}: {list}");
    }
    let (status, _) = admin(Method::DELETE, &format!("/config/policy/{policy_id}/"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "an active data agreement uses it");

    // Webhooks: created, listed, read without their secret, replaced, deleted.
    let hook = json!({"webhook": {"payloadUrl": "http://127.0.0.1:9/consent", "contentType": "application/json",
        "disabled": false, "secretKey": "a-secret-for-the-receiver"}});
    let (status, created_hook) = admin(Method::POST, "/config/webhook/", Some(hook)).await;
    assert_eq!(status, StatusCode::OK, "{created_hook}");
    assert_eq!(created_hook["webhook"]["secretKey"], "********");
    let hook_id = created_hook["webhook"]["id"].as_str().unwrap().to_string();
    let (status, refused) = admin(
        Method::POST,
        "/config/webhook",
        Some(json!({"payloadUrl": "gopher://x", "secretKey": "a-secret-for-the-receiver"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    let (_, hooks) = admin(Method::GET, "/config/webhooks/", None).await;
    assert_eq!(hooks["webhooks"].as_array().unwrap().len(), 1, "{hooks}");
    let (status, replaced_hook) = admin(
        Method::PUT,
        &format!("/config/webhook/{hook_id}"),
        Some(json!({"payloadUrl": "http://127.0.0.1:9/v2", "disabled": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "the secret is kept when not sent: {replaced_hook}");
    let (_, read_hook) = admin(Method::GET, &format!("/config/webhook/{hook_id}/"), None).await;
    assert_eq!(
        (read_hook["webhook"]["payloadUrl"].as_str(), read_hook["webhook"]["disabled"].as_bool()),
        (Some("http://127.0.0.1:9/v2"), Some(true))
    );
    let (status, _) =
        admin(Method::PUT, "/config/webhook/nope/", Some(json!({"payloadUrl": "http://127.0.0.1:9/"}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = admin(Method::DELETE, &format!("/config/webhook/{hook_id}/"), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = admin(Method::GET, &format!("/config/webhook/{hook_id}/"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The individual's operations go through a mediated system.
    let imc = "CN/GOV/990000MZ/marriage-app";
    let service = |method: reqwest::Method, path: &str, individual: Option<&str>| {
        let mut r = s.client.request(method, url(path)).header("Information-Mediator-Client", imc);
        if let Some(i) = individual {
            r = r.header("X-ConsentBB-IndividualId", i);
        }
        r
    };
    let r = s
        .client
        .post(url("/service/individual/"))
        .json(&json!({"individual": {"externalId": "x"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "no system named");
    let r = service(Method::POST, "/service/individual/", None)
        .json(&json!({"individual": {"externalId": "E-2026-0001", "externalIdType": "passport"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let person = r.json::<Value>().await.unwrap()["individual"]["id"].as_str().unwrap().to_string();
    let r = service(Method::POST, "/service/individual", None)
        .json(&json!({"externalId": "E-2026-0001", "externalIdType": "passport"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT, "one individual per external id");

    let given: Value =
        service(Method::POST, &format!("/service/individual/record/data-agreement/{da_id}/"), Some(&person))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(given["consentRecord"]["optIn"], true, "{given}");
    assert_eq!(given["consentRecord"]["individualId"], person.as_str());
    assert_eq!(given["consentRecord"]["dataAgreementId"], da_id.as_str());
    let record_id = given["consentRecord"]["id"].as_str().unwrap().to_string();
    assert_eq!(given["revision"]["objectId"], record_id.as_str());

    // Withdraw by a form, grant again by an envelope; a bad value is refused.
    let path = format!("/service/individual/record/consent-record/{record_id}/");
    let r = service(Method::PUT, &path, None).form(&[("optIn", "False")]).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["consentRecord"]["optIn"], false);
    let r = service(Method::PUT, &path, None).json(&json!({"consentRecord": {"optIn": true}})).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["consentRecord"]["optIn"], true);
    let r = service(Method::PUT, &path, None).json(&json!({"optIn": "yes"})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = service(Method::PUT, "/service/individual/record/consent-record/nope/", None)
        .json(&json!({"optIn": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let mine: Value = service(Method::GET, "/service/individual/record/consent-record/", Some(&person))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(mine["consentRecords"].as_array().unwrap().len(), 1);
    assert_eq!(mine["pagination"]["totalItems"], 1);

    // Forget me: every consent withdrawn, the history kept.
    let gone: Value = service(Method::DELETE, "/service/individual/record/", Some(&person))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(gone["withdrawn"], 1);
    let now: Value = service(Method::GET, &format!("/service/individual/record/data-agreement/{da_id}"), Some(&person))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(now["consentRecord"]["optIn"], false);
    let (_, history) = admin(Method::GET, &format!("/config/data-agreement/{da_id}/revisions"), None).await;
    assert_eq!(history["revisions"].as_array().unwrap().len(), 1);

    // Signed consent: the draft to sign, then the record and its signature in one call.
    use ed25519_dalek::Signer;
    let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let public = hex::encode(key.verifying_key().as_bytes());
    let r = service(Method::POST, "/service/individual/", None)
        .json(&json!({"individual": {"externalId": "E-2026-0002", "externalIdType": "passport"}}))
        .send()
        .await
        .unwrap();
    let signer = r.json::<Value>().await.unwrap()["individual"]["id"].as_str().unwrap().to_string();
    let draft: Value = service(
        Method::POST,
        &format!("/service/individual/record/consent-record/draft/?dataAgreementId={da_id}"),
        Some(&signer),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert!(draft["consentRecord"].get("id").is_none(), "a draft is stored nowhere: {draft}");
    assert_eq!(draft["consentRecord"]["state"], "unsigned");
    let mut signature = draft["signature"].clone();
    let mut payload: Value = serde_json::from_str(signature["payload"].as_str().unwrap()).unwrap();
    assert_eq!(payload["verificationPayload"], signature["verificationPayload"]);
    payload["verificationSignedBy"] = json!(public);
    let payload = payload.to_string();
    signature["verificationSignedBy"] = json!(public);
    signature["payload"] = json!(payload);
    let submit = |sig: &Value| {
        service(Method::POST, "/service/individual/record/consent-record/", Some(&signer))
            .json(&json!({"consentRecord": draft["consentRecord"], "signature": sig}))
            .send()
    };
    let mut forged = signature.clone();
    forged["signature"] = json!(hex::encode(key.sign(b"something else").to_bytes()));
    let r = submit(&forged).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "a signature of something else is refused");
    assert!(r.text().await.unwrap().contains("signature"));
    signature["signature"] = json!(hex::encode(key.sign(payload.as_bytes()).to_bytes()));
    let r = submit(&signature).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let signed: Value = r.json().await.unwrap();
    assert_eq!(signed["consentRecord"]["state"], "signed", "{signed}");
    assert_eq!(signed["consentRecord"]["optIn"], true);
    let signed_id = signed["consentRecord"]["id"].as_str().unwrap().to_string();
    assert_eq!(signed["signature"]["objectReference"], signed_id.as_str());
    assert!(signed["signature"]["id"].is_string());

    // Withdrawing changes the record; signing it again starts from the record as it stands.
    let path = format!("/service/individual/record/consent-record/{signed_id}/");
    let r = service(Method::PUT, &path, None).json(&json!({"optIn": false})).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["consentRecord"]["state"], "unsigned");
    let sig_path = format!("{path}signature/");
    let r = service(Method::POST, &sig_path, Some(&person)).json(&json!({"signature": {}})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "only the record's own individual signs it");
    let started: Value = service(Method::POST, &sig_path, Some(&signer))
        .json(&json!({"signature": {"verificationSignedBy": public}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let to_sign = started["signature"]["payload"].as_str().unwrap().to_string();
    assert!(to_sign.contains("\\\"optIn\\\":false"), "{to_sign}");
    let r = service(Method::PUT, &sig_path, Some(&signer))
        .json(&json!({"signature": {"signature": hex::encode(key.sign(to_sign.as_bytes()).to_bytes())}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = service(Method::GET, &format!("/service/individual/record/data-agreement/{da_id}"), Some(&signer))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["consentRecord"]["state"], "signed");

    // Deleting answers the deletion's revision, at the top and under `revision`.
    let (status, deleted) = admin(Method::DELETE, &format!("/config/data-agreement/{da_id}/"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (deleted["objectId"].as_str(), deleted["revision"]["schemaName"].as_str()),
        (Some(da_id.as_str()), Some("DataAgreement"))
    );
    let (status, _) = admin(Method::GET, &format!("/config/data-agreement/{da_id}/"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = admin(Method::DELETE, &format!("/config/policy/{policy_id}/"), None).await;
    assert_eq!(status, StatusCode::OK, "no agreement uses it now");
    let (_, people) = admin(Method::GET, "/config/individuals/?limit=1", None).await;
    assert_eq!(people["individuals"].as_array().unwrap().len(), 1);
    assert_eq!(people["pagination"]["limit"], 1);

    // The Data Processing Auditor reads everything, deleted agreements too, and checks the
    // signed record's revisions and signatures; a row edited behind the platform's back shows.
    let auditor = s.token("auditor").await;
    let audit = |path: &str, token: &str| {
        let r = s.client.get(url(&format!("/audit{path}"))).bearer_auth(token).send();
        async move {
            let r = r.await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, _) = audit("/consent-records/", &officer).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the organisation admin is not the auditor");
    let (status, records) = audit(&format!("/consent-records/?dataAgreementId={da_id}&limit=1"), &auditor).await;
    assert_eq!(status, StatusCode::OK, "{records}");
    assert_eq!(records["pagination"]["totalItems"], 2, "both people's records: {records}");
    assert_eq!(records["consentRecords"].as_array().unwrap().len(), 1);
    assert_eq!(records["pagination"]["hasNext"], true);
    let (_, signed) = audit(&format!("/consent-record/{signed_id}/"), &auditor).await;
    assert_eq!(
        signed["integrity"],
        json!({"revisionsIntact": true, "matchesLatestRevision": true, "signaturesValid": true}),
        "{signed}"
    );
    assert!(signed["revisions"].as_array().unwrap().len() >= 2, "{signed}");
    let (_, agreements) = audit("/data-agreements/", &auditor).await;
    let gone = agreements["dataAgreements"].as_array().unwrap().iter().find(|a| a["id"] == da_id.as_str()).unwrap();
    assert!(gone["x-deletedAt"].is_string(), "the deleted agreement is still there for the auditor: {gone}");
    let (status, agreement) = audit(&format!("/data-agreement/{da_id}"), &auditor).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(agreement["integrity"]["revisionsIntact"], true, "{agreement}");
    let (status, _) = audit("/consent-record/nope/", &auditor).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let db_url =
        s.database_url.clone().unwrap_or_else(|| format!("sqlite://{}", s.data.path().join("tongban.db").display()));
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db_url).await.unwrap();
    sqlx::query("UPDATE consent_records SET opt_in = 1 - opt_in WHERE id = $1")
        .bind(&signed_id)
        .execute(&pool)
        .await
        .unwrap();
    let (_, tampered) = audit(&format!("/consent-record/{signed_id}/"), &auditor).await;
    assert_eq!(tampered["integrity"]["matchesLatestRevision"], false, "{tampered}");
}

/// The header alone proves nothing: without a security server in front, a GovStack call
/// proves its system with its exchange secret, and a registry serves only the systems its
/// department lists.
async fn govstack_systems_prove_who_they_are(backend: Backend) {
    let s = Server::start(backend, &[]).await;
    let mut load = vec!["fixtures".to_string(), "load".into(), "govstack-registries".into()];
    load.extend(["--department".into(), "990000-MZ".into()]);
    load.extend(s.data_args());
    let (ok, out) = run(&load);
    assert!(ok, "{out}");
    let admin = s.token("sysadmin").await;
    let system = "CN/GOV/990000MZ/minzheng-app";
    let secret = s.exchange_client(&admin, "990000-MZ", system).await;
    let call = |method: reqwest::Method, path: &str, imc: &str, secret: Option<&str>| {
        let mut r = s.client.request(method, s.url(path)).header("Information-Mediator-Client", imc);
        if let Some(secret) = secret {
            r = r.header("X-Exchange-Secret", secret);
        }
        if path.ends_with("/create") {
            r = r.json(&json!({"ID": "EE000111222333", "FirstName": "Mallory"}));
        }
        if path.ends_with("/service/individual/") {
            r = r.json(&json!({"individual": {"externalId": "E-9", "externalIdType": "passport"}}));
        }
        async move {
            let r = r.send().await.unwrap();
            let status = r.status();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    use reqwest::Method;
    let data = "/govstack/registries/data/registryname/111";

    // A well-formed name with no proof: nothing is read, written or listed.
    let forged = "Random/Attacker/Nobody/x";
    for (method, path) in [
        (Method::GET, data.to_string()),
        (Method::POST, format!("{data}/create")),
        (Method::GET, "/govstack/registries/data/myPersonalDataUsage?userId=EE378129127223&databaseId=MCTS".into()),
        (Method::GET, "/govstack/registries/databases".into()),
        (Method::GET, "/govstack/registration/applications".into()),
        (Method::GET, "/govstack/registration/tasks".into()),
        (Method::POST, "/govstack/consent/service/individual/".into()),
    ] {
        for imc in [forged, system] {
            let (status, body) = call(method.clone(), &path, imc, None).await;
            assert_eq!(
                (status, body["code"].as_str()),
                (StatusCode::UNAUTHORIZED, Some("unauthenticated")),
                "{method} {path} as {imc}: {body}"
            );
        }
    }
    // Operations the published API declares without the header: from outside a security
    // server, naming no system proves nothing either.
    for (method, path) in [
        (Method::GET, "/govstack/registration/tasks/81c4445c-bff6-11ed-afa1-0242ac120002"),
        (Method::POST, "/govstack/registration/tasks/d1e33d56-c5c7-4272-aeb6-bc2732cce1f2/complete"),
        (Method::POST, "/govstack/registration/documents"),
    ] {
        let r = s.client.request(method.clone(), s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{method} {path} with no header");
    }
    let (status, _) = call(Method::GET, data, system, Some("not-the-secret")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a wrong secret");
    let (status, _) = call(Method::GET, data, forged, Some(&secret)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "another system's secret");

    // Proven, but the registry does not serve it yet.
    let (status, body) = call(Method::GET, data, system, Some(&secret)).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("system_not_served")), "{body}");
    let (status, _) = call(Method::POST, &format!("{data}/create"), system, Some(&secret)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let usage = "/govstack/registries/data/myPersonalDataUsage?userId=EE378129127223&databaseId=MCTS";
    let (status, _) = call(Method::GET, usage, system, Some(&secret)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a person's usage history is the registry's too");

    // The owning department's data officer lists it; another department's cannot.
    let systems = "/api/v1/exchange/registries/registryname/systems";
    let put = |token: String, body: Value| {
        let r = s.client.put(s.url(systems)).bearer_auth(token).json(&body);
        async move {
            let r = r.send().await.unwrap();
            let status = r.status();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, _) = put(s.token("data.ga").await, json!({"systems": [system]})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "not the owning department");
    let mz = s.token("data.mz").await;
    let (status, body) = put(mz.clone(), json!({"systems": ["not a system"]})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = put(mz.clone(), json!({"systems": [system]})).await;
    assert_eq!((status, body["systems"].clone()), (StatusCode::OK, json!([system.to_lowercase()])), "{body}");
    let (status, listed) = s.get(systems, &mz).await;
    assert_eq!((status, listed["systems"].clone()), (StatusCode::OK, json!([system.to_lowercase()])));

    let (status, all) = call(Method::GET, data, system, Some(&secret)).await;
    assert_eq!((status, all["count"].as_u64()), (StatusCode::OK, Some(23)), "{all}");
    let (status, created) = call(Method::POST, &format!("{data}/create"), system, Some(&secret)).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let (status, usage) = call(Method::GET, usage, system, Some(&secret)).await;
    assert_eq!(status, StatusCode::OK, "{usage}");
    assert!(
        usage.as_array().unwrap().iter().any(|u| u["ReaderID"] == system.to_lowercase()),
        "the access log names the proven system: {usage}"
    );
    let (status, _) = call(Method::GET, "/govstack/registration/applications", system, Some(&secret)).await;
    assert_eq!(status, StatusCode::OK);

    // Withdrawn: refused again.
    let (status, _) = put(mz, json!({"systems": []})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(Method::GET, data, system, Some(&secret)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

on_both_databases!(
    govstack_registration_api,
    govstack_registries_api,
    govstack_consent_api,
    govstack_systems_prove_who_they_are,
);
