//! Sign-in, tokens, lockout, jurisdiction, form tokens and the first administrator of a clean install.

use super::*;

async fn token_sign_in_with_totp_and_revocation(backend: Backend) {
    let s = Server::start(backend, &[]).await;
    let url = s.url("/api/v1/auth/token");
    let r = s.client.post(&url).json(&json!({"username": "clerk.mingyue", "password": PASSWORD})).send().await.unwrap();
    expect_error(r, StatusCode::UNAUTHORIZED, "mfa_required").await;
    let r = s
        .client
        .post(&url)
        .json(&json!({"username": "clerk.mingyue", "password": PASSWORD, "totp": "000000"}))
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let r = s
        .client
        .post(&url)
        .json(&json!({"username": "clerk.mingyue", "password": "wrong-password"}))
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::UNAUTHORIZED, "invalid_credentials").await;

    let code = totp_at(TOTP, chrono::Utc::now().timestamp());
    let r = s
        .client
        .post(&url)
        .json(&json!({"username": "clerk.mingyue", "password": PASSWORD, "totp": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let token = body["access_token"].as_str().unwrap();

    let (status, me) = s.get("/api/v1/me", token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["username"], "clerk.mingyue");
    assert_eq!(me["kind"], "staff");
    assert_eq!(me["region"]["name"], "明月区");
    assert_eq!(me["department"]["name"], "明月区民政局");
    assert_eq!(me["roles"][0]["code"], "window_clerk");
    assert!(me["permissions"].as_array().unwrap().iter().any(|p| p == "resident.read"));

    let r = s.client.post(s.url("/api/v1/auth/revoke")).bearer_auth(token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = s.client.get(s.url("/api/v1/me")).bearer_auth(token).send().await.unwrap();
    expect_error(r, StatusCode::UNAUTHORIZED, "unauthenticated").await;

    // Citizens without a second factor sign in with the password alone.
    let r = s.client.post(&url).json(&json!({"username": "citizen.demo", "password": PASSWORD})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

async fn lockout_answers_429_with_retry_after(backend: Backend) {
    let s = Server::start(backend, &[]).await;
    let url = s.url("/api/v1/auth/token");
    for _ in 0..5 {
        let r = s
            .client
            .post(&url)
            .json(&json!({"username": "citizen.demo", "password": "guess-guess-guess"}))
            .send()
            .await
            .unwrap();
        expect_error(r, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
    let r = s.client.post(&url).json(&json!({"username": "citizen.demo", "password": PASSWORD})).send().await.unwrap();
    let retry: u64 = r.headers().get("retry-after").expect("Retry-After").to_str().unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    expect_error(r, StatusCode::TOO_MANY_REQUESTS, "locked").await;
    // The web form says so too, in a page with an alert.
    let page = s.client.get(s.url("/signin")).send().await.unwrap();
    let csrf = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .find_map(|c| c.to_str().unwrap().strip_prefix("tb_csrf=").map(|v| v.split(';').next().unwrap().to_string()))
        .unwrap();
    let r = s
        .client
        .post(s.url("/signin"))
        .header("cookie", format!("tb_csrf={csrf}"))
        .form(&[("_csrf", csrf.as_str()), ("username", "citizen.demo"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let html = r.text().await.unwrap();
    assert!(html.contains("role=\"alert\"") && html.contains("登录失败次数过多"), "{html}");
}

async fn clerk_is_denied_another_districts_record(backend: Backend) {
    let s = Server::start(backend, &[]).await;
    let qinghu = s.token("clerk.qinghu").await;
    let (status, list) = s.get("/api/v1/residents?limit=5", &qinghu).await;
    assert_eq!(status, StatusCode::OK);
    let theirs = list[0]["id"].as_str().unwrap().to_string();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|r| r["region"]["path"].as_str().unwrap().starts_with("/990000/990100/990103/"))
    );

    let mingyue = s.token("clerk.mingyue").await;
    let (status, own) = s.get("/api/v1/residents?limit=500", &mingyue).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!own.as_array().unwrap().iter().any(|r| r["id"] == theirs.as_str()));
    let mine = own[0]["id"].as_str().unwrap();
    let (status, record) = s.get(&format!("/api/v1/residents/{mine}"), &mingyue).await;
    assert_eq!(status, StatusCode::OK);
    assert!(record["id_number"].as_str().unwrap().contains("********"), "{record}");

    let r = s.client.get(s.url(&format!("/api/v1/residents/{theirs}"))).bearer_auth(&mingyue).send().await.unwrap();
    let refused = expect_error(r, StatusCode::FORBIDDEN, "outside_jurisdiction").await;
    let r = s.client.get(s.url("/api/v1/security-events")).bearer_auth(&mingyue).send().await.unwrap();
    expect_error(r, StatusCode::FORBIDDEN, "forbidden").await;

    // Both refusals are on the trail, for the auditor.
    let auditor = s.token("auditor").await;
    let (status, trail) = s.get("/api/v1/security-events?kind=access", &auditor).await;
    assert_eq!(status, StatusCode::OK);
    let trail = trail.as_array().unwrap();
    let denial =
        trail.iter().find(|e| e["object"] == format!("resident:{theirs}").as_str() && e["outcome"] == "denied");
    // The entry names the request it came from.
    assert_eq!(denial.expect("the denial is on the trail")["request_id"], refused["request_id"]);
    assert!(trail.iter().any(|e| e["object"] == "/api/v1/security-events" && e["username"] == "clerk.mingyue"));
    let (_, sign_ins) = s.get("/api/v1/security-events?kind=sign_in", &auditor).await;
    assert!(sign_ins.as_array().unwrap().len() >= 3);

    // The resident whose record the clerk read sees it in 我的数据, and can export it.
    let citizen = s.citizen_token().await;
    let (status, me) = s.get("/api/v1/me", &citizen).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s.get(&format!("/api/v1/residents/{}", me["id"].as_str().unwrap()), &mingyue).await;
    assert_eq!(status, StatusCode::OK);
    let (status, data) = s.get("/api/v1/me/data", &citizen).await;
    assert_eq!(status, StatusCode::OK);
    assert!(data["profile"]["id_number"].as_str().unwrap().len() == 18);
    assert!(
        data["accesses"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["action"] == "resident_read" && a["department"] == "明月区民政局")
    );
    let export = s.client.get(s.url("/api/v1/me/data/export")).bearer_auth(&citizen).send().await.unwrap();
    assert!(export.headers()["content-disposition"].to_str().unwrap().contains("my-data.json"));
}

async fn clean_install_first_admin_and_separated_duties(backend: Backend) {
    let mut s = Server::start(backend, &["--no-demo"]).await;
    let data = s.data_args();
    let with = |rest: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = rest.iter().map(|x| x.to_string()).collect();
        v.extend(data.iter().cloned());
        v
    };
    assert!(!s.log().contains("seeding"));
    let (ok, out) = run(&with(&["migrate"]));
    assert!(ok && out.contains("migrations applied"), "{out}");
    assert!(run(&with(&["region", "add", "--code", "530000", "--name", "云南省"])).0);
    assert!(run(&with(&["department", "add", "--code", "530000-SG", "--name", "省数据局", "--region", "530000"])).0);
    let (ok, out) = run(&with(&[
        "user",
        "add",
        "--username",
        "root.admin",
        "--name",
        "管理员",
        "--department",
        "530000-SG",
        "--role",
        "system_admin",
        "--role",
        "auditor",
    ]));
    assert!(!ok && out.contains("separate duties"), "{out}");
    let (ok, out) = run(&with(&[
        "user",
        "add",
        "--username",
        "root.admin",
        "--name",
        "管理员",
        "--department",
        "530000-SG",
        "--role",
        "system_admin",
    ]));
    assert!(ok, "{out}");
    let temp = out.lines().find_map(|l| l.strip_prefix("temporary password: ")).unwrap().to_string();
    // The first duty attempt rolled back entirely: one account, one role.
    let r = s
        .client
        .post(s.url("/api/v1/auth/token"))
        .json(&json!({"username": "root.admin", "password": temp}))
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::FORBIDDEN, "mfa_enrolment_required").await;
    assert!(s.stop());
}

/// Signed in, a form needs the token the page gave, bound to the session: a cookie and field
/// pair planted by another site (the double-submit pattern alone) is refused.
async fn form_tokens_are_bound_to_the_session(backend: Backend) {
    let s = Server::start(backend, &[]).await;
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
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let session = set_cookie_value(&r, "tb_session").unwrap();
    let csrf = set_cookie_value(&r, "tb_csrf").unwrap();
    let cookies = format!("tb_session={session}; tb_csrf={csrf}");
    let html = s.client.get(s.url("/account")).header("cookie", &cookies).send().await.unwrap().text().await.unwrap();
    let token = html.split("name=\"_csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    assert_ne!(token, csrf, "signed in, the form token is not the anonymous cookie");
    let post = |token: String, cookies: String| {
        s.client
            .post(s.url("/prefs"))
            .header("cookie", cookies)
            .form(&[("_csrf", token.as_str()), ("lang", "en"), ("return_to", "/account")])
            .send()
    };
    let planted = "planted-by-a-sibling-site-0000000000000000";
    let r = post(planted.into(), format!("tb_session={session}; tb_csrf={planted}")).await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = post(token, cookies.clone()).await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // Pages check capabilities as the API does: a resident is refused the alerts page, on
    // the record.
    let r = s.client.get(s.url("/security")).header("cookie", &cookies).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // A resident is told at once that a bundle is for enterprises, not after filling it in.
    let r = s.client.get(s.url("/bundles/YLBD0001/apply")).header("cookie", &cookies).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("此事项不面向您的账户类型") && !page.contains("action=\"/bundles/YLBD0001/apply\""),
        "{page}"
    );
    let r = s.client.get(s.url("/bundles/YLBD0002/apply")).header("cookie", &cookies).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("action=\"/bundles/YLBD0002/apply\""), "a resident's bundle has its form");
    let auditor = s.token("auditor").await;
    let (_, trail) = s.get("/api/v1/security-events?kind=access", &auditor).await;
    assert!(trail.as_array().unwrap().iter().any(|e| e["object"] == "/security" && e["username"] == "citizen.demo"));
}

/// An attacker at a shared address (here 203.0.113.7, through the trusted proxy) guesses
/// until the address is locked; the resident whose browser signed in before, and the clerk
/// with her authenticator, still get in from there. A code used twice is said to be so.
async fn a_locked_address_does_not_lock_out_its_people(backend: Backend) {
    let s = Server::start(backend, &["--trusted-proxies", "127.0.0.1"]).await;
    let from = |r: reqwest::RequestBuilder| r.header("x-forwarded-for", "203.0.113.7");
    // The resident signs in on her browser once, from the same address.
    let browser_sign_in = |device: Option<String>| async {
        let page = from(s.client.get(s.url("/signin"))).send().await.unwrap();
        let csrf = set_cookie_value(&page, "tb_csrf").unwrap();
        let mut cookie = format!("tb_csrf={csrf}");
        if let Some(d) = device {
            cookie.push_str(&format!("; tb_device={d}"));
        }
        from(s.client.post(s.url("/signin")))
            .header("cookie", cookie)
            .form(&[("_csrf", csrf.as_str()), ("username", "citizen.demo"), ("password", PASSWORD)])
            .send()
            .await
            .unwrap()
    };
    let r = browser_sign_in(None).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let device = set_cookie_value(&r, "tb_device").expect("the browser is known from now on");

    let url = s.url("/api/v1/auth/token");
    for i in 0..20 {
        let r = from(s.client.post(&url))
            .json(&json!({"username": format!("guess{i}"), "password": "guess-guess-guess"}))
            .send()
            .await
            .unwrap();
        assert!([StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS].contains(&r.status()));
    }
    // The address is locked for a browser it has never seen, right password or not ...
    let r = from(s.client.post(&url)).json(&json!({"username": "citizen.demo", "password": PASSWORD})).send().await;
    expect_error(r.unwrap(), StatusCode::TOO_MANY_REQUESTS, "locked").await;
    assert_eq!(browser_sign_in(None).await.status(), StatusCode::TOO_MANY_REQUESTS);
    // ... but not for the resident's own browser, nor for a clerk with her second factor.
    let r = browser_sign_in(Some(device)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{:?}", r.text().await);
    let code = totp_at(TOTP, chrono::Utc::now().timestamp());
    let clerk = json!({"username": "clerk.mingyue", "password": PASSWORD, "totp": code});
    let r = from(s.client.post(&url)).json(&clerk).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // The same code again: said to be used, and no failure.
    let r = from(s.client.post(&url)).json(&clerk).send().await.unwrap();
    expect_error(r, StatusCode::UNAUTHORIZED, "code_reused").await;
    // Another address was never affected.
    let r = s.client.post(&url).json(&json!({"username": "citizen.demo", "password": PASSWORD})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// A district's administrators create accounts and systems, grant roles and read alerts in
/// their own district; the province's do so everywhere.
async fn district_administrators_act_within_their_district(backend: Backend) {
    let s = Server::start(backend, &[]).await;
    let post = |token: String, path: &str, body: Value| {
        let r = s.client.post(s.url(path)).bearer_auth(token).json(&body);
        async move { r.send().await.unwrap() }
    };
    let mingyue = s.token("sysadmin.mingyue").await;
    let client =
        |dept: &str| json!({"department": dept, "mediator_client": format!("CN/GOV/{}/app", dept.replace('-', ""))});
    let r = post(mingyue.clone(), "/api/v1/exchange/clients", client("990103-SG")).await;
    expect_error(r, StatusCode::FORBIDDEN, "outside_jurisdiction").await;
    let r = post(mingyue.clone(), "/api/v1/exchange/clients", client("990102-SG")).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let staff = |dept: &str, username: &str| json!({"kind": "staff", "username": username, "display_name": "新同事", "department_code": dept});
    let r = post(mingyue.clone(), "/api/v1/accounts", staff("990103-MZ", "new.qinghu")).await;
    expect_error(r, StatusCode::FORBIDDEN, "outside_jurisdiction").await;
    let r = post(mingyue.clone(), "/api/v1/accounts", staff("990000-MZ", "new.province")).await;
    expect_error(r, StatusCode::FORBIDDEN, "outside_jurisdiction").await;
    let r = post(mingyue, "/api/v1/accounts", staff("990102-MZ", "new.mingyue")).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = post(s.token("sysadmin").await, "/api/v1/accounts", staff("990103-MZ", "new.qinghu")).await;
    assert_eq!(r.status(), StatusCode::CREATED, "the province's administrator acts everywhere");
    let qinghu_new = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let roles = format!("/api/v1/accounts/{qinghu_new}/roles");
    let r = post(s.token("secadmin.mingyue").await, &roles, json!({"role": "window_clerk"})).await;
    expect_error(r, StatusCode::FORBIDDEN, "outside_jurisdiction").await;
    let qinghu_secadmin = s.token("secadmin.qinghu").await;
    let r = post(qinghu_secadmin.clone(), &roles, json!({"role": "window_clerk"})).await;
    assert_eq!(r.status(), StatusCode::CREATED);

    // Failed sign-ins of a clerk in each district raise one alert each.
    for clerk in ["clerk.mingyue", "clerk.qinghu"] {
        for _ in 0..5 {
            let r = s
                .client
                .post(s.url("/api/v1/auth/token"))
                .json(&json!({"username": clerk, "password": "guess-guess-guess"}))
                .send()
                .await
                .unwrap();
            assert!(r.status().is_client_error());
        }
    }
    let s = &s;
    let summaries = async |token: String| {
        let (status, alerts) = s.get("/api/v1/alerts", &token).await;
        assert_eq!(status, StatusCode::OK, "{alerts}");
        alerts.as_array().unwrap().iter().map(|a| a["summary"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    let province = s.token("auditor").await;
    let started = Instant::now();
    loop {
        let seen = summaries(province.clone()).await;
        if ["clerk.mingyue", "clerk.qinghu"].iter().all(|c| seen.iter().any(|s| s.contains(c))) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the monitor raised no alerts: {seen:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for (reader, token) in [("auditor.qinghu", s.token("auditor.qinghu").await), ("secadmin.qinghu", qinghu_secadmin)] {
        let seen = summaries(token).await;
        assert!(seen.iter().any(|s| s.contains("clerk.qinghu")), "{reader}: {seen:?}");
        assert!(!seen.iter().any(|s| s.contains("clerk.mingyue")), "{reader} sees another district: {seen:?}");
    }
}

on_both_databases!(
    district_administrators_act_within_their_district,
    a_locked_address_does_not_lock_out_its_people,
    token_sign_in_with_totp_and_revocation,
    lockout_answers_429_with_retry_after,
    clerk_is_denied_another_districts_record,
    form_tokens_are_bound_to_the_session,
    clean_install_first_admin_and_separated_duties,
);
