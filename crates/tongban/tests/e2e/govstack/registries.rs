//! The GovStack Digital Registries building block as its published test suite calls it.

use super::*;

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

on_both_databases!(govstack_registries_api);
