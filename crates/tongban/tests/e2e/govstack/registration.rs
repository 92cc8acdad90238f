//! The GovStack Registration building block as its published test suite calls it.

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

on_both_databases!(govstack_registration_api);
