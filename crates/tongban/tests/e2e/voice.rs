//! 12345 over HTTP: a resident's request on the API and the pages, the department's answer
//! and the resident's rating; what callers without the right role or input get.

use super::*;

const WATER: &str = "我家小区停水三天了，自来水一直没来，打物业电话也没人管，老人做饭洗澡都成问题";

async fn hotline_journey(backend: Backend) {
    let s = Server::start(backend, &[]).await;
    let citizen = s.citizen_token().await;
    let (_, me) = s.get("/api/v1/me", &citizen).await;
    let region = me["region"]["code"].as_str().unwrap().to_string();
    let submit = |body: Value, key: Option<&'static str>| {
        let mut r = s.client.post(s.url("/api/v1/voice/requests")).bearer_auth(&citizen).json(&body);
        if let Some(k) = key {
            r = r.header("Idempotency-Key", k);
        }
        r.send()
    };
    // Bad input is refused with its code, and nothing is written.
    let r = submit(json!({"kind": "complaint", "text": "太吵", "region": region}), None).await.unwrap();
    expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    let r = submit(json!({"kind": "rumour", "text": WATER, "region": region}), None).await.unwrap();
    expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").await;
    let r = submit(json!({"kind": "complaint", "text": WATER, "region": "000000"}), None).await.unwrap();
    expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    let r = s
        .client
        .post(s.url("/api/v1/voice/requests"))
        .bearer_auth(&citizen)
        .header("content-type", "application/json")
        .body("{\"kind\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let (_, mine) = s.get("/api/v1/voice/requests", &citizen).await;
    assert_eq!(mine.as_array().unwrap().len(), 0, "{mine}");

    // The same key twice is one request.
    let good = json!({"kind": "complaint", "text": WATER, "region": region, "publishable": true});
    let r = submit(good.clone(), Some("retry-1")).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let first: Value = r.json().await.unwrap();
    let again: Value = submit(good, Some("retry-1")).await.unwrap().json().await.unwrap();
    assert_eq!(first["number"], again["number"]);
    assert_eq!(first["stage"], "assigned", "{first}");
    assert_eq!(first["category"]["department_kind"], "SW");
    let id = first["id"].as_str().unwrap().to_string();

    // Dispatchers classify; residents may not.
    let r = s.client.post(s.url("/api/v1/voice/classify")).bearer_auth(&citizen).json(&json!({"text": WATER})).send();
    expect_error(r.await.unwrap(), StatusCode::FORBIDDEN, "forbidden").await;
    let dispatcher = s.token("dispatcher.mingyue").await;
    let r = s.client.post(s.url("/api/v1/voice/classify")).bearer_auth(&dispatcher).json(&json!({"text": WATER}));
    let proposal: Value = r.send().await.unwrap().json().await.unwrap();
    assert_eq!(proposal["department"]["code"], "990102-SW", "{proposal}");
    assert!(proposal["confidence"].as_f64().unwrap() > 0.5 && !proposal["reasons"].as_array().unwrap().is_empty());

    // The water bureau signs for it and answers; another bureau does not see it.
    let city = s.token("city.mingyue").await;
    let (status, _) = s.get(&format!("/api/v1/voice/inbox/{id}"), &city).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let water = s.token("water.mingyue").await;
    let (_, inbox) = s.get("/api/v1/voice/inbox", &water).await;
    assert!(inbox.as_array().unwrap().iter().any(|r| r["id"] == id.as_str()), "{inbox}");
    // The bureau sees the person masked; a stated purpose shows them, on the person's trail.
    let (_, seen) = s.get(&format!("/api/v1/voice/inbox/{id}"), &water).await;
    assert_eq!((seen["contact"]["contact"].as_str(), seen["contact"]["masked"].as_bool()), (Some("shown"), Some(true)));
    let (_, plain) =
        s.get(&format!("/api/v1/voice/inbox/{id}?purpose=%E7%94%B5%E8%AF%9D%E5%9B%9E%E8%AE%BF"), &water).await;
    assert_eq!(plain["contact"]["masked"], false, "{plain}");
    let act = |body: Value| {
        s.client.post(s.url(&format!("/api/v1/voice/inbox/{id}/actions"))).bearer_auth(&water).json(&body).send()
    };
    expect_error(
        act(json!({"action": "answer", "answer": "已修复供水管道。"})).await.unwrap(),
        StatusCode::CONFLICT,
        "invalid_transition",
    )
    .await;
    assert_eq!(act(json!({"action": "sign"})).await.unwrap().status(), StatusCode::OK);
    let answered = act(json!({"action": "answer", "answer": "经查系主管爆裂，已抢修完毕并恢复供水。"})).await.unwrap();
    assert_eq!(answered.json::<Value>().await.unwrap()["stage"], "answered");

    // The resident sees it on 我的诉求 in words, and rates it there.
    let cookies = s.citizen_cookies().await;
    let get_page = |path: String| s.client.get(s.url(&path)).header("cookie", &cookies).send();
    let html = get_page("/voice".into()).await.unwrap().text().await.unwrap();
    assert!(html.contains(first["number"].as_str().unwrap()) && html.contains("已答复"), "{html}");
    let html = get_page(format!("/voice/{id}")).await.unwrap().text().await.unwrap();
    assert!(
        html.contains("经查系主管爆裂") && html.contains("承办部门签收") && html.contains("明月区水务局"),
        "{html}"
    );
    assert!(!html.contains(">answered<") && !html.contains("L02"), "codes stay off the page");
    let token = html.split("name=\"_csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let r = s
        .client
        .post(s.url(&format!("/voice/{id}/rating")))
        .header("cookie", &cookies)
        .form(&[("_csrf", token.as_str()), ("rating", "satisfied"), ("comment", "谢谢，很快")])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection() || r.status().is_success(), "{}", r.status());
    let (_, closed) = s.get(&format!("/api/v1/voice/requests/{id}"), &citizen).await;
    assert_eq!((closed["stage"].as_str(), closed["rating"].as_str()), (Some("closed"), Some("satisfied")));

    // A new request from the page: without a kind, the form says so; with one, it is made.
    let html = get_page("/voice/new".into()).await.unwrap().text().await.unwrap();
    let key = html.split("name=\"key\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let post = |form: Vec<(&'static str, String)>| {
        let mut form = form;
        form.push(("_csrf", token.clone()));
        form.push(("key", key.clone()));
        form.push(("region", region.clone()));
        s.client.post(s.url("/voice/new")).header("cookie", &cookies).form(&form).send()
    };
    let r = post(vec![("text", "路灯坏了一个星期了".into())]).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(html.contains("error-summary") && html.contains("href=\"#kind\"") && html.contains("路灯坏了"), "{html}");
    let r = post(vec![("kind", "help".into()), ("text", "路灯坏了一个星期了，晚上走路看不见".into())]).await.unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    // A second click on the same form makes no second request.
    post(vec![("kind", "help".into()), ("text", "路灯坏了一个星期了，晚上走路看不见".into())]).await.unwrap();
    let (_, mine) = s.get("/api/v1/voice/requests", &citizen).await;
    assert_eq!(mine.as_array().unwrap().len(), 2, "{mine}");

    // The answer the resident agreed to publish is on the public list, for anyone.
    let html = s.client.get(s.url("/voice/published")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("经查系主管爆裂") && html.contains(first["number"].as_str().unwrap()), "{html}");
    let r = s.client.get(s.url("/api/v1/voice/published?page=0")).send().await.unwrap();
    expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;

    // 延期: the bureau asks for three more working days; the district's dispatcher grants them.
    let second: Value = submit(json!({"kind": "complaint", "text": WATER, "region": region}), None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(second["stage"], "assigned", "{second}");
    let act2 = |body: Value| {
        let id = second["id"].as_str().unwrap();
        s.client.post(s.url(&format!("/api/v1/voice/inbox/{id}/actions"))).bearer_auth(&water).json(&body).send()
    };
    assert_eq!(act2(json!({"action": "sign"})).await.unwrap().status(), StatusCode::OK);
    let r = act2(json!({"action": "ask_extension", "days": 30, "reason": "需协调管线迁改"})).await.unwrap();
    expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    let asked: Value = act2(json!({"action": "ask_extension", "days": 3, "reason": "需协调管线迁改"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (asked["stage"].as_str(), asked["extension"]["decision"].as_str()),
        (Some("extending"), Some("pending"))
    );
    let decide = |token: &str| {
        let id = second["id"].as_str().unwrap();
        let url = s.url(&format!("/api/v1/voice/queue/{id}/extension"));
        s.client.post(url).bearer_auth(token).json(&json!({"grant": true})).send()
    };
    expect_error(decide(&water).await.unwrap(), StatusCode::FORBIDDEN, "forbidden").await;
    let granted: Value = decide(&dispatcher).await.unwrap().json().await.unwrap();
    assert_eq!(
        (granted["stage"].as_str(), granted["extension"]["decision"].as_str()),
        (Some("handling"), Some("granted"))
    );
    assert!(granted["due"].as_str().unwrap() > asked["due"].as_str().unwrap(), "{granted}");

    // 并单: the same burst reported again waits for a dispatcher, who merges it.
    let again = "翠湖小区停水三天了，自来水到现在还没来，老人做饭都成问题，物业也不管";
    let repeat: Value = submit(json!({"kind": "complaint", "text": again, "region": region}), None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(repeat["stage"], "dispatching", "{repeat}");
    assert_eq!(repeat["similar_to"]["number"], second["number"]);
    let merge = s
        .client
        .post(s.url(&format!("/api/v1/voice/queue/{}/merge", repeat["id"].as_str().unwrap())))
        .bearer_auth(&dispatcher)
        .json(&json!({"into": second["number"]}))
        .send()
        .await
        .unwrap();
    let merged: Value = merge.json().await.unwrap();
    assert_eq!((merged["stage"].as_str(), merged["also_reported"].as_u64()), (Some("merged"), Some(1)), "{merged}");

    // Figures by district; routing tables read by dispatchers, changed by the district's admin.
    let (status, by_district) = s.get("/api/v1/voice/figures?by=district", &dispatcher).await;
    assert_eq!(status, StatusCode::OK);
    assert!(by_district.as_array().unwrap().iter().all(|f| f["code"] == "990102"), "{by_district}");
    let (status, _) = s.get("/api/v1/voice/figures?by=street", &dispatcher).await;
    assert!(status.is_client_error(), "{status}");
    let (_, routes) = s.get("/api/v1/voice/routes", &dispatcher).await;
    let routes = routes.as_array().unwrap();
    assert!(!routes.is_empty() && routes.iter().all(|r| r["region_code"] == "990102"));
    let set = |token: String, region: &'static str| {
        let body = json!({"region": region, "category": "L02", "department": "990102-CG"});
        s.client.put(s.url("/api/v1/voice/routes")).bearer_auth(token).json(&body).send()
    };
    expect_error(set(dispatcher.clone(), "990102").await.unwrap(), StatusCode::FORBIDDEN, "forbidden").await;
    let admin = s.token("sysadmin.mingyue").await;
    expect_error(set(admin.clone(), "990103").await.unwrap(), StatusCode::FORBIDDEN, "outside_jurisdiction").await;
    assert_eq!(set(admin, "990102").await.unwrap().status(), StatusCode::NO_CONTENT);
    let (_, routes) = s.get("/api/v1/voice/routes", &dispatcher).await;
    let line = routes.as_array().unwrap().iter().find(|r| r["category"]["code"] == "L02").unwrap().clone();
    assert_eq!(line["department_code"], "990102-CG");

    // The leader's KPIs count this district's 12345 requests (kept as each was written);
    // another district is outside her jurisdiction, and a dispatcher has no dashboard.
    let leader = s.token("leader.mingyue").await;
    let today = chrono::Utc::now().with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap()).date_naive();
    let kpis = |region: &str| format!("/api/v1/insight/kpis?region={region}&from=2025-01-01&to={today}");
    let (status, values) = s.get(&kpis("990102"), &leader).await;
    assert_eq!(status, StatusCode::OK, "{values}");
    let received = values.as_array().unwrap().iter().find(|v| v["code"] == "hotline_response_rate").unwrap();
    assert!(received["denominator"].as_i64().unwrap() > 0, "{received}");
    assert_eq!(values.as_array().unwrap().len(), 20);
    let r = s.client.get(s.url(&kpis("990103"))).bearer_auth(&leader).send().await.unwrap();
    expect_error(r, StatusCode::FORBIDDEN, "outside_jurisdiction").await;
    let r = s.client.get(s.url(&kpis("990102"))).bearer_auth(&dispatcher).send().await.unwrap();
    expect_error(r, StatusCode::FORBIDDEN, "forbidden").await;
    let csv = s.client.get(s.url(&format!("{}&format=csv", kpis("990102")))).bearer_auth(&leader);
    let csv = csv.send().await.unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(csv.text().await.unwrap().starts_with("group,code,name,value,numerator,denominator,unit\n990102,"));
    let xlsx = s.client.get(s.url(&format!("{}&format=xlsx", kpis("990102")))).bearer_auth(&leader);
    let xlsx = xlsx.send().await.unwrap();
    assert_eq!(xlsx.status(), StatusCode::OK);
    assert!(xlsx.bytes().await.unwrap().starts_with(b"PK"), "an XLSX file is a zip");

    // 绩效考核: the province's assessment office sets the indicators; a leader may not; the
    // district's departments are scored by them.
    let assessor = s.token("assessor").await;
    let plan = |token: &str, weight: u32| {
        let body = json!({"indicators": [
            {"kpi": "on_time_rate", "weight": weight, "target": 0.95, "direction": "higher"},
            {"kpi": "hotline_satisfaction_rate", "weight": 40, "target": 0.9, "direction": "higher"}]});
        s.client.put(s.url("/api/v1/insight/assessment/plan")).bearer_auth(token).json(&body).send()
    };
    expect_error(plan(&leader, 60).await.unwrap(), StatusCode::FORBIDDEN, "forbidden").await;
    expect_error(plan(&assessor, 50).await.unwrap(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    let set: Value = plan(&assessor, 60).await.unwrap().json().await.unwrap();
    assert_eq!(set["version"], 1, "{set}");
    let year = today.format("%Y");
    let (status, cards) =
        s.get(&format!("/api/v1/insight/assessment/scorecards?region=990102&period={year}"), &leader).await;
    assert_eq!(status, StatusCode::OK, "{cards}");
    let cards = cards.as_array().unwrap();
    let first = cards.first().unwrap();
    assert_eq!(first["rank"], 1, "the best total first: {first}");
    assert!(cards.iter().all(|c| c["scores"].as_array().unwrap().len() == 2));
    let totals: Vec<f64> = cards.iter().filter_map(|c| c["total"].as_f64()).collect();
    assert!(totals.windows(2).all(|w| w[0] >= w[1]), "{totals:?}");
    let (status, _) = s.get("/api/v1/insight/assessment/scorecards?region=990102&period=2026-13", &leader).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // A photo: uploaded through the documents pipeline, sent with a request, read back by the
    // person and by the department it went to, by no other.
    let png: &[u8] = b"\x89PNG\r\n\x1a\n a photo of the water";
    let upload = s.client.post(s.url("/api/v1/documents?filename=photo.png")).bearer_auth(&citizen).body(png.to_vec());
    let doc: Value = upload.send().await.unwrap().json().await.unwrap();
    let doc_id = doc["id"].as_str().unwrap().to_string();
    let text = "自来水水质发黄有异味，烧开后还有沉淀，不敢给孩子喝";
    let body = json!({"kind": "complaint", "text": text, "region": region, "photos": ["nope"]});
    expect_error(submit(body, None).await.unwrap(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    let body = json!({"kind": "complaint", "text": text, "region": region, "photos": [doc_id]});
    let with_photo: Value = submit(body, None).await.unwrap().json().await.unwrap();
    assert_eq!(with_photo["photos"][0]["content_type"], "image/png", "{with_photo}");
    assert_eq!(with_photo["category"]["department_kind"], "SW", "{with_photo}");
    let rid = with_photo["id"].as_str().unwrap();
    let r = s.client.get(s.url(&format!("/api/v1/voice/requests/{rid}/photos/{doc_id}"))).bearer_auth(&citizen);
    let r = r.send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.bytes().await.unwrap().as_ref(), png);
    // Water now goes to city management in 明月区: the routing line changed above.
    assert_eq!(with_photo["department_name"], "明月区城市管理综合执法局", "{with_photo}");
    let (status, _) = s.get(&format!("/api/v1/voice/inbox/{rid}/photos/{doc_id}"), &water).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let r = s.client.get(s.url(&format!("/api/v1/voice/inbox/{rid}/photos/{doc_id}"))).bearer_auth(&city);
    assert_eq!(r.send().await.unwrap().status(), StatusCode::OK);
}

on_both_databases!(hotline_journey,);

/// Open311 GeoReport v2: discovery, services and their definitions in JSON and XML, posting
/// with a registered client's api_key, reading the request back, the error format, and a
/// revoked key.
async fn open311_georeport(backend: Backend) {
    let s = Server::start(backend, &[]).await;
    let cli = |args: &[&str]| {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        all.extend(s.data_args());
        run(&all)
    };
    let (ok, out) = cli(&["open311", "client", "add", "--name", "city-app", "--region", "990102"]);
    assert!(ok, "{out}");
    let api_key = out.lines().last().unwrap().trim().to_string();
    assert_eq!(api_key.len(), 48, "{out}");
    let get = |path: &str| s.client.get(s.url(&format!("/open311/v2/{path}"))).send();

    let discovery: Value = get("discovery.json").await.unwrap().json().await.unwrap();
    assert_eq!(discovery["endpoints"][0]["specification"], "http://wiki.open311.org/GeoReport_v2", "{discovery}");
    let services: Value = get("services.json").await.unwrap().json().await.unwrap();
    assert_eq!(services.as_array().unwrap().len(), 15);
    assert_eq!(services[1]["service_code"], "L02");
    let r = get("services.xml").await.unwrap();
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/xml"));
    let xml = r.text().await.unwrap();
    assert!(xml.starts_with("<?xml") && xml.contains("<services><service><service_code>L01</service_code>"), "{xml}");
    let definition: Value = get("services/L02.json").await.unwrap().json().await.unwrap();
    assert_eq!(definition["service_code"], "L02");
    // Every service takes the kind of request and urgency as attributes.
    assert_eq!(services[1]["metadata"], true);
    let attributes = definition["attributes"].as_array().unwrap();
    assert_eq!(attributes.iter().map(|a| a["code"].as_str().unwrap()).collect::<Vec<_>>(), ["kind", "urgency"]);
    assert_eq!(attributes[1]["datatype"], "singlevaluelist");
    assert!(attributes[0]["values"].as_array().unwrap().iter().any(|v| v["key"] == "complaint" && v["name"] == "投诉"));
    let xml = get("services/L02.xml").await.unwrap().text().await.unwrap();
    assert!(xml.contains("<attributes><attribute><variable>true</variable><code>kind</code>"), "{xml}");
    assert!(xml.contains("<values><value><key>complaint</key><name>投诉</name></value>"), "{xml}");
    let r = get("services/NOPE.json").await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let errors: Value = r.json().await.unwrap();
    assert_eq!(errors[0]["code"], 404, "{errors}");

    let post = |fields: Vec<(&str, &str)>| s.client.post(s.url("/open311/v2/requests.json")).form(&fields).send();
    let good = vec![
        ("service_code", "L02"),
        ("description", "金碧路口的井盖丢了，晚上很危险"),
        ("lat", "25.040000"),
        ("long", "102.710000"),
        ("first_name", "明"),
        ("last_name", "李"),
        ("phone", "13900001111"),
    ];
    let r = post(good.clone()).await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "no api_key");
    let mut bad_key = good.clone();
    bad_key.push(("api_key", "nope"));
    assert_eq!(post(bad_key).await.unwrap().status(), StatusCode::FORBIDDEN);
    let with_key = |mut f: Vec<(&'static str, &'static str)>| {
        f.push(("api_key", Box::leak(api_key.clone().into_boxed_str())));
        f
    };
    let r = post(with_key(vec![("description", "没有服务代码")])).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = post(with_key(vec![("service_code", "L02"), ("description", "井盖丢了，很危险")])).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "a request needs a place");
    for bad in [("attribute[urgency]", "someday"), ("attribute[colour]", "red")] {
        let mut with_bad = good.clone();
        with_bad.push(bad);
        assert_eq!(post(with_key(with_bad)).await.unwrap().status(), StatusCode::BAD_REQUEST, "{bad:?}");
    }
    let mut good = good;
    good.extend([("attribute[kind]", "complaint"), ("attribute[urgency]", "urgent")]);
    let r = post(with_key(good)).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let made: Value = r.json().await.unwrap();
    let id = made[0]["service_request_id"].as_str().unwrap().to_string();
    assert!(id.starts_with("12345-"), "{made}");

    let one: Value = get(&format!("requests/{id}.json")).await.unwrap().json().await.unwrap();
    assert_eq!((one[0]["status"].as_str(), one[0]["service_code"].as_str()), (Some("open"), Some("L02")), "{one}");
    assert_eq!(one[0]["agency_responsible"], "明月区水务局");
    assert_eq!(one[0]["lat"], 25.04);
    assert!(one[0]["requested_datetime"].as_str().unwrap().ends_with("+08:00"));
    let listed = get("requests.xml?service_code=L02&status=open").await.unwrap().text().await.unwrap();
    assert!(listed.contains(&format!("<service_request_id>{id}</service_request_id>")), "{listed}");
    // The filters narrow before the limit: the one request asked for by id, whatever else the
    // window holds, and none of it among the closed ones.
    let one: Value = get(&format!("requests.json?service_request_id={id}")).await.unwrap().json().await.unwrap();
    assert_eq!(one.as_array().unwrap().len(), 1, "{one}");
    let closed: Value = get("requests.json?status=closed&service_code=L02").await.unwrap().json().await.unwrap();
    assert!(
        closed.as_array().unwrap().iter().all(|r| r["status"] == "closed" && r["service_request_id"] != id.as_str())
    );
    let r = get("requests.json?status=someday").await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = get("requests.json?start_date=yesterday").await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(get("tokens/abc.json").await.unwrap().status(), StatusCode::NOT_FOUND);
    let r = get("requests/12345-20000101-000001.xml").await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r.text().await.unwrap().contains("<errors><error><code>404</code>"));

    let (ok, out) = cli(&["open311", "client", "revoke", "--name", "city-app"]);
    assert!(ok, "{out}");
    let mut again = vec![("service_code", "L02"), ("description", "井盖又丢了一个"), ("address_string", "金碧路")];
    again.push(("api_key", Box::leak(api_key.clone().into_boxed_str())));
    assert_eq!(post(again).await.unwrap().status(), StatusCode::FORBIDDEN, "a revoked key");
}

on_both_databases!(open311_georeport,);
