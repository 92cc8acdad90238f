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
    let page = s.client.get(s.url("/signin")).send().await.unwrap();
    let anon = set_cookie_value(&page, "tb_csrf").unwrap();
    let r = s
        .client
        .post(s.url("/signin"))
        .header("cookie", format!("tb_csrf={anon}"))
        .form(&[("_csrf", anon.as_str()), ("username", "citizen.demo"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let session = set_cookie_value(&r, "tb_session").unwrap();
    let cookies = format!("tb_session={session}; tb_csrf={anon}");
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
}

on_both_databases!(hotline_journey,);
