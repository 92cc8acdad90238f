//! The HTTP mapping, driven through the router of `tongban_http::app` with
//! `tower::ServiceExt::oneshot` (no socket, no binary): what a client notices of malformed,
//! mistyped and oversize bodies, a wrong content type, unknown routes, methods and IDs, a
//! missing or forged token, a page without a session, and the security headers. The router
//! stands on a fresh test database (on SQLite, and also on PostgreSQL where the request reaches
//! storage).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use chrono::Utc;
use kernel::secrets::MasterKey;
use ledger::CheckpointPolicy;
use ledger::note::NoteSigner;
use serde_json::{Value, json};
use services::calendar::WorkingCalendar;
use testkit::{TestDb, on_both_databases};
use tower::ServiceExt;

/// The largest body the router takes, as `--body-limit-bytes` would set it.
const BODY_LIMIT: usize = 4096;

use testkit::PASSWORD;

/// The router `tongban serve` builds, on the test database (keep the upload directory while
/// the router is in use).
fn router(t: &TestDb) -> (Router, tempfile::TempDir) {
    let key = MasterKey::from_bytes(t.key);
    let uploads = tempfile::tempdir().unwrap();
    let services = services::Services::new(
        t.db.clone(),
        t.identity.clone(),
        key.clone(),
        WorkingCalendar::default(),
        services::UploadPolicy { dir: uploads.path().to_path_buf(), max_bytes: BODY_LIMIT, scan_command: None },
    );
    let exchange = exchange::Exchange::new(t.db.clone(), t.identity.clone(), &key);
    let voice = voice::Voice::new(t.db.clone(), t.identity.clone(), services.clone()).unwrap();
    let insight = insight::Insight::new(t.db.clone(), t.identity.clone(), services.clone(), exchange.clone());
    let openness =
        openness::Openness::new(t.db.clone(), t.identity.clone(), exchange.clone(), services.calendar().clone());
    let signer = NoteSigner::new("test", &[7u8; 32]).unwrap();
    let ledger = ledger::Ledger::new(t.db.clone(), "test.tongban", &signer, CheckpointPolicy::default()).unwrap();
    let state = tongban_http::AppState::from(tongban_http::AppParts {
        identity: t.identity.clone(),
        services,
        exchange,
        voice,
        openness,
        insight,
        ledger,
        db: t.db.clone(),
        metrics: tongban_http::metrics::Metrics::new(),
        secure_cookies: false,
        trusted_proxies: Arc::new(Vec::new()),
        security_servers: Arc::new(Vec::new()),
    });
    (tongban_http::app(state, BODY_LIMIT), uploads)
}

/// A router on a fresh SQLite database, for requests that are answered before any storage.
async fn sqlite_router() -> (Router, TestDb, tempfile::TempDir) {
    let t = TestDb::sqlite().await;
    let (router, uploads) = router(&t);
    (router, t, uploads)
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).unwrap_or_else(|| panic!("no {name} header")).to_str().unwrap()
    }

    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// An API error: the status, and the JSON body `{code, message, request_id}` whose
    /// request id is the response's `X-Request-Id`.
    fn assert_error(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "{}", self.text());
        assert!(self.header("content-type").starts_with("application/json"), "{:?}", self.headers);
        let body = self.json();
        assert_eq!(body["code"], code, "{body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
        assert_eq!(body["request_id"], self.header("x-request-id"), "{body}");
    }
}

async fn send(router: &Router, request: Request<Body>) -> Answer {
    let response = router.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap().to_vec();
    Answer { status: parts.status, headers: parts.headers, body }
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

fn post(uri: &str, content_type: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut request = Request::post(uri);
    if let Some(ct) = content_type {
        request = request.header(header::CONTENT_TYPE, ct);
    }
    request.body(body.into()).unwrap()
}

/// A region and a resident of it who signs in with the password alone.
async fn resident(t: &TestDb) {
    let console = t.console();
    let org = console.grant::<kernel::authz::OrganisationManage>();
    let acc = console.grant::<kernel::authz::AccountCreate>();
    let id = &t.identity;
    let now = Utc::now();
    let mut tx = t.db.begin().await.unwrap();
    id.organisation().create_region_in(&mut tx, &org, "990000", "云岭省", None, now).await.unwrap();
    id.organisation().create_region_in(&mut tx, &org, "990100", "春城市", Some("990000"), now).await.unwrap();
    id.organisation().create_region_in(&mut tx, &org, "990102", "明月区", Some("990100"), now).await.unwrap();
    id.accounts()
        .create_account_in(
            &mut tx,
            &acc,
            testkit::resident_account("citizen.a", "王芳", "990102", "11010519491231002X", None),
            now,
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// The resident's bearer token, issued through the API.
async fn token(router: &Router) -> String {
    let sign_in = json!({"username": "citizen.a", "password": PASSWORD}).to_string();
    let issued = send(router, post("/api/v1/auth/token", Some("application/json"), sign_in)).await;
    assert_eq!(issued.status, StatusCode::OK, "{}", issued.text());
    issued.json()["access_token"].as_str().unwrap().to_string()
}

on_both_databases!(
    api_calls_without_a_valid_token_answer_401,
    pages_without_a_session_go_to_sign_in,
    unknown_ids_answer_404_not_found,
    a_nul_character_is_bad_input_not_a_fault,
    disclosure_is_published_read_requested_and_answered_over_http,
    open_data_is_published_searched_read_and_described_over_http,
);

/// Malformed JSON is 400 `malformed_json`; well-formed JSON of the wrong shape (a wrong type,
/// a field the endpoint does not take) is 422 `invalid_body`.
#[tokio::test]
async fn bad_json_answers_400_or_422_with_its_code() {
    let (router, _t, _uploads) = sqlite_router().await;
    let json = Some("application/json");
    let malformed = send(&router, post("/api/v1/auth/token", json, "{\"username\": ")).await;
    malformed.assert_error(StatusCode::BAD_REQUEST, "malformed_json");
    let not_json = send(&router, post("/api/v1/auth/token", json, "username=a&password=b")).await;
    not_json.assert_error(StatusCode::BAD_REQUEST, "malformed_json");
    let not_utf8 = send(&router, post("/api/v1/auth/token", json, vec![b'{', b'"', 0xff, 0xfe, b'"', b'}'])).await;
    not_utf8.assert_error(StatusCode::BAD_REQUEST, "malformed_json");
    let wrong_types = send(&router, post("/api/v1/auth/token", json, "{\"username\": 5, \"password\": []}")).await;
    wrong_types.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    let extra = "{\"username\": \"a\", \"password\": \"b\", \"admin\": true}";
    send(&router, post("/api/v1/auth/token", json, extra))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    let list = send(&router, post("/api/v1/auth/token", json, "[]")).await;
    list.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
}

/// A JSON endpoint takes only JSON: no content type, or another one, is 415
/// `unsupported_media_type`.
#[tokio::test]
async fn a_body_that_is_not_declared_json_answers_415() {
    let (router, _t, _uploads) = sqlite_router().await;
    let body = "{\"username\": \"a\", \"password\": \"b\"}";
    for content_type in [None, Some("text/plain"), Some("application/x-www-form-urlencoded")] {
        let answer = send(&router, post("/api/v1/auth/token", content_type, body)).await;
        answer.assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    }
}

/// A body over the limit is 413 `body_too_large`, whether its length is declared up front or
/// only found while reading it.
#[tokio::test]
async fn an_oversize_body_answers_413() {
    let (router, _t, _uploads) = sqlite_router().await;
    let big = format!("{{\"username\": \"{}\", \"password\": \"x\"}}", "a".repeat(BODY_LIMIT * 2));
    let declared = Request::post("/api/v1/auth/token")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, big.len())
        .body(Body::from(big.clone()))
        .unwrap();
    send(&router, declared).await.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
    let streamed = post("/api/v1/auth/token", Some("application/json"), big);
    send(&router, streamed).await.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
}

/// An unknown API route is 404 `not_found` in JSON; an unknown page is the error page, in the
/// reader's language; a known route with a method it does not take is 405
/// `method_not_allowed`.
#[tokio::test]
async fn unknown_routes_answer_404_and_wrong_methods_405() {
    let (router, _t, _uploads) = sqlite_router().await;
    send(&router, get("/api/v1/nothing-here")).await.assert_error(StatusCode::NOT_FOUND, "not_found");
    send(&router, get("/govstack/nothing-here")).await.assert_error(StatusCode::NOT_FOUND, "not_found");
    let page = send(&router, get("/no/such/page")).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.header("content-type").starts_with("text/html"), "{:?}", page.headers);
    assert!(page.text().contains("<h1>出错了 (404)</h1>"), "{}", page.text());
    let english = Request::get("/no/such/page").header(header::COOKIE, "tb_lang=en").body(Body::empty()).unwrap();
    let english = send(&router, english).await;
    assert_eq!(english.status, StatusCode::NOT_FOUND);
    assert!(english.text().contains("<h1>Something went wrong (404)</h1>"), "{}", english.text());
    // The statements in the footer exist; an unknown one does not.
    for statement in ["/about/accessibility", "/about/privacy", "/about/contact"] {
        let page = send(&router, get(statement)).await;
        assert_eq!(page.status, StatusCode::OK, "{statement}");
        assert!(page.text().contains(&format!("href=\"{statement}\"")), "the footer links {statement}");
    }
    assert_eq!(send(&router, get("/about/nothing")).await.status, StatusCode::NOT_FOUND);
    let delete = Request::delete("/api/v1/me").body(Body::empty()).unwrap();
    send(&router, delete).await.assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    let put = Request::put("/api/v1/auth/token").body(Body::empty()).unwrap();
    send(&router, put).await.assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
}

/// Every answer carries the security headers and a request id: a page, an API refusal and a
/// 404. A request id the caller sends (a proxy's) is kept; otherwise one is made.
#[tokio::test]
async fn answers_carry_the_security_headers_and_a_request_id() {
    let (router, _t, _uploads) = sqlite_router().await;
    for (uri, status) in [
        ("/signin", StatusCode::OK),
        ("/", StatusCode::OK),
        ("/api/v1/me", StatusCode::UNAUTHORIZED),
        ("/api/v1/nothing-here", StatusCode::NOT_FOUND),
        ("/healthz", StatusCode::OK),
    ] {
        let answer = send(&router, get(uri)).await;
        assert_eq!(answer.status, status, "{uri}");
        let csp = answer.header("content-security-policy");
        assert!(
            csp.contains("default-src 'self'")
                && csp.contains("script-src 'self'")
                && !csp.contains("unsafe-inline")
                && csp.contains("frame-ancestors 'none'"),
            "{uri}: {csp}"
        );
        assert_eq!(answer.header("x-content-type-options"), "nosniff", "{uri}");
        assert_eq!(answer.header("x-frame-options"), "DENY", "{uri}");
        assert_eq!(answer.header("referrer-policy"), "same-origin", "{uri}");
        assert_eq!(answer.header("cache-control"), "no-store", "{uri}");
        assert!(uuid::Uuid::parse_str(answer.header("x-request-id")).is_ok(), "{uri}");
    }
    let page = send(&router, get("/signin")).await;
    assert!(page.header("content-type").starts_with("text/html"));
    assert!(page.text().contains("<form"), "the sign-in page has its form");
    let traced = Request::get("/api/v1/me").header("x-request-id", "proxy-1234").body(Body::empty()).unwrap();
    let traced = send(&router, traced).await;
    assert_eq!(traced.header("x-request-id"), "proxy-1234");
    assert_eq!(traced.json()["request_id"], "proxy-1234");
}

/// Without a token, with a token nobody issued, or with another scheme, an API call is 401
/// `unauthenticated`.
async fn api_calls_without_a_valid_token_answer_401(t: TestDb) {
    let (router, _uploads) = router(&t);
    send(&router, get("/api/v1/me")).await.assert_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    for authorization in ["Bearer forged-token", "Basic Y2l0aXplbi5hOnB3", "Bearer ", "bearer"] {
        let request =
            Request::get("/api/v1/me/applications").header(header::AUTHORIZATION, authorization).body(Body::empty());
        let answer = send(&router, request.unwrap()).await;
        answer.assert_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    }
    // A wrong password is told apart from a missing token.
    resident(&t).await;
    let wrong = json!({"username": "citizen.a", "password": "not-the-password"}).to_string();
    let answer = send(&router, post("/api/v1/auth/token", Some("application/json"), wrong)).await;
    answer.assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
}

/// A page that needs a session sends a browser without one (or with a session cookie nobody
/// issued) to sign in; a form posted without its CSRF token is refused with a page.
async fn pages_without_a_session_go_to_sign_in(t: TestDb) {
    let (router, _uploads) = router(&t);
    for uri in ["/account", "/applications", "/account/data", "/staff/inbox"] {
        let answer = send(&router, get(uri)).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{uri}");
        assert_eq!(answer.header("location"), "/signin", "{uri}");
        let forged = Request::get(uri).header(header::COOKIE, "tb_session=forged-session").body(Body::empty());
        let answer = send(&router, forged.unwrap()).await;
        assert_eq!((answer.status, answer.header("location")), (StatusCode::SEE_OTHER, "/signin"), "{uri}");
    }
    let form = post("/signin", Some("application/x-www-form-urlencoded"), "username=citizen.a&password=x");
    let refused = send(&router, form).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.header("content-type").starts_with("text/html"));
    assert!(refused.text().contains("页面已过期"), "{}", refused.text());
}

/// An ID that names nothing is 404 `not_found`, for a signed-in caller and on public reads.
async fn unknown_ids_answer_404_not_found(t: TestDb) {
    let (router, _uploads) = router(&t);
    resident(&t).await;
    let token = token(&router).await;
    let me = Request::get("/api/v1/me").header(header::AUTHORIZATION, format!("Bearer {token}")).body(Body::empty());
    let me = send(&router, me.unwrap()).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text());
    assert_eq!(me.json()["username"], "citizen.a");
    for (method, uri) in [
        (Method::GET, "/api/v1/me/applications/YL-20260101-999999"),
        (Method::GET, "/api/v1/me/applications/01234567-no-such"),
        (Method::POST, "/api/v1/me/applications/01234567-no-such/withdraw"),
    ] {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        send(&router, request).await.assert_error(StatusCode::NOT_FOUND, "not_found");
    }
    send(&router, get("/api/v1/services/NOPE0001")).await.assert_error(StatusCode::NOT_FOUND, "not_found");
    send(&router, get("/api/v1/certificates/01234567-no-such")).await.assert_error(StatusCode::NOT_FOUND, "not_found");
}

/// A NUL character (`%00` in a path, `\u0000` in JSON) is the client's bad input, never a
/// 500: PostgreSQL, which cannot store text holding one, answers 400 `bad_request`; SQLite
/// looks it up like any other text and finds nothing.
async fn a_nul_character_is_bad_input_not_a_fault(t: TestDb) {
    let (router, _uploads) = router(&t);
    resident(&t).await;
    let token = token(&router).await;
    let postgres = t.db.backend == kernel::db::Backend::Postgres;
    let lookup = Request::get("/api/v1/me/applications/YL-%00")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let lookup = send(&router, lookup).await;
    if postgres {
        lookup.assert_error(StatusCode::BAD_REQUEST, "bad_request");
    } else {
        lookup.assert_error(StatusCode::NOT_FOUND, "not_found");
    }
    let sign_in = json!({"username": "citizen.a\u{0}", "password": PASSWORD}).to_string();
    let sign_in = send(&router, post("/api/v1/auth/token", Some("application/json"), sign_in)).await;
    if postgres {
        sign_in.assert_error(StatusCode::BAD_REQUEST, "bad_request");
    } else {
        sign_in.assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
}

/// A bearer token for `username` (staff sign in with their authenticator code).
async fn token_of(router: &Router, username: &str, totp: Option<&str>) -> String {
    let code = totp.map(|secret| testkit::totp_at(secret, Utc::now().timestamp()));
    let sign_in = json!({"username": username, "password": PASSWORD, "totp": code}).to_string();
    let issued = send(router, post("/api/v1/auth/token", Some("application/json"), sign_in)).await;
    assert_eq!(issued.status, StatusCode::OK, "{}", issued.text());
    issued.json()["access_token"].as_str().unwrap().to_string()
}

fn with_token(method: Method, uri: &str, token: &str, body: Option<Value>) -> Request<Body> {
    let r = Request::builder().method(method).uri(uri).header(header::AUTHORIZATION, format!("Bearer {token}"));
    match body {
        Some(b) => r.header(header::CONTENT_TYPE, "application/json").body(Body::from(b.to_string())).unwrap(),
        None => r.body(Body::empty()).unwrap(),
    }
}

/// 政务公开 end to end: an officer publishes over the API; anyone searches it, reads its page
/// with its ledger entry and finds it in the Atom feed and the department's catalogue; a
/// resident asks for information and the officer answers; bad input is refused with codes.
async fn disclosure_is_published_read_requested_and_answered_over_http(t: TestDb) {
    let (router, _uploads) = router(&t);
    resident(&t).await;
    let console = t.console();
    let org = console.grant::<kernel::authz::OrganisationManage>();
    let acc = console.grant::<kernel::authz::AccountCreate>();
    let roles = console.grant::<kernel::authz::RoleGrant>();
    let now = Utc::now();
    let mut tx = t.db.begin().await.unwrap();
    let new =
        identity::NewDepartment {
            code: "990102-MZ", name: "明月区民政局", region_code: "990102", kind: Some("MZ")
        };
    t.identity.organisation().create_department_in(&mut tx, &org, new, now).await.unwrap();
    let officer = testkit::staff_account("officer.mz", "公开专员", "990102-MZ");
    let officer = t.identity.accounts().create_account_in(&mut tx, &acc, officer, now).await.unwrap().id;
    t.identity.accounts().grant_role_in(&mut tx, &roles, &officer, "disclosure_officer", now).await.unwrap();
    tx.commit().await.unwrap();
    let staff = token_of(&router, "officer.mz", Some(testkit::TOTP)).await;
    let person = token(&router).await;

    let today = services::calendar::cst();
    let today = Utc::now().with_timezone(&today).date_naive().to_string();
    let draft = json!({"department": "990102-MZ", "kind": "notice", "theme": "civil_affairs",
        "title": "关于开展养老待遇资格认证的通知", "document_number": "明民发〔2026〕7号", "written_on": today,
        "body": "为做好养老待遇资格认证工作，现将有关事项通知如下。\n一、认证对象为本区领取待遇人员。"});
    let published =
        send(&router, with_token(Method::POST, "/api/v1/disclosure/documents", &staff, Some(draft.clone()))).await;
    assert_eq!(published.status, StatusCode::CREATED, "{}", published.text());
    let doc = published.json();
    let id = doc["id"].as_str().unwrap().to_string();
    assert!(doc["index_number"].as_str().unwrap().starts_with("990102-MZ/"));
    assert_eq!(doc["history"][0]["change"], "published");

    // A resident may not publish; a bad field is 422 with its code; unknown fields are refused.
    send(&router, with_token(Method::POST, "/api/v1/disclosure/documents", &person, Some(draft.clone())))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    let mut short = draft.clone();
    short["title"] = json!("通");
    send(&router, with_token(Method::POST, "/api/v1/disclosure/documents", &staff, Some(short)))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    let mut extra = draft.clone();
    extra["author"] = json!("x");
    send(&router, with_token(Method::POST, "/api/v1/disclosure/documents", &staff, Some(extra)))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    let stale = json!({"read_version": 7, "note": "更正日期", "theme": "civil_affairs", "title": "新标题",
        "written_on": today, "body": "修订后的正文内容，已经超过十个字符。"});
    send(&router, with_token(Method::PUT, &format!("/api/v1/disclosure/documents/{id}"), &staff, Some(stale)))
        .await
        .assert_error(StatusCode::CONFLICT, "record_changed");

    // Anyone finds it, reads it, follows it.
    let found = send(&router, get("/api/v1/disclosure/documents?q=%E5%85%BB%E8%80%81%E8%AE%A4%E8%AF%81")).await;
    assert_eq!((found.status, found.json()["total"].as_u64()), (StatusCode::OK, Some(1)), "{}", found.text());
    send(&router, get("/api/v1/disclosure/documents?kind=nonsense"))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "bad_request");
    for out_of_bounds in ["year=1948", "page=0", "page=10001"] {
        send(&router, get(&format!("/api/v1/disclosure/documents?{out_of_bounds}")))
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    }
    let page = send(&router, get("/open?q=%E5%85%BB%E8%80%81&kind=")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains("关于开展养老待遇资格认证的通知"));
    let page = send(&router, get(&format!("/open/documents/{id}"))).await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    assert!(
        html.contains("明民发〔2026〕7号")
            && html.contains("public #")
            && html.contains(doc["history"][0]["sha256"].as_str().unwrap())
    );
    let feed = send(&router, get("/open/feed.atom")).await;
    assert!(feed.header("content-type").starts_with("application/atom+xml"));
    assert!(feed.text().contains("<title>关于开展养老待遇资格认证的通知</title>"), "{}", feed.text());
    let catalogue = send(&router, get("/open/departments/990102-MZ")).await;
    assert!(catalogue.text().contains(doc["index_number"].as_str().unwrap()));
    assert_eq!(send(&router, get("/open/documents/no-such")).await.status, StatusCode::NOT_FOUND);
    send(&router, get("/api/v1/disclosure/documents/no-such")).await.assert_error(StatusCode::NOT_FOUND, "not_found");

    // A resident asks; the officer answers; the report counts it.
    let ask =
        json!({"department": "990102-MZ", "description": "请公开2025年城乡低保资金发放总额", "delivery": "online"});
    let asked = send(&router, with_token(Method::POST, "/api/v1/disclosure/requests", &person, Some(ask))).await;
    assert_eq!(asked.status, StatusCode::CREATED, "{}", asked.text());
    let request = asked.json();
    assert_eq!(request["deadline"]["status"], "on_track");
    let rid = request["id"].as_str().unwrap();
    let withheld = json!({"action": "answer", "type": "withheld", "text": "涉及个人隐私"});
    send(&router, with_token(Method::POST, &format!("/api/v1/disclosure/inbox/{rid}"), &staff, Some(withheld)))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    let answer = json!({"action": "answer", "type": "disclosed", "text": "2025年共发放低保资金3280万元。"});
    let answered = send(
        &router,
        with_token(Method::POST, &format!("/api/v1/disclosure/inbox/{rid}"), &staff, Some(answer.clone())),
    )
    .await;
    assert_eq!(answered.status, StatusCode::OK, "{}", answered.text());
    send(&router, with_token(Method::POST, &format!("/api/v1/disclosure/inbox/{rid}"), &staff, Some(answer)))
        .await
        .assert_error(StatusCode::CONFLICT, "request_answered");
    let mine =
        send(&router, with_token(Method::GET, &format!("/api/v1/disclosure/requests/{rid}"), &person, None)).await;
    assert_eq!(mine.json()["answer"]["type"], "disclosed");
    send(&router, with_token(Method::GET, &format!("/api/v1/disclosure/inbox/{rid}"), &person, None))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    let year = &today[..4];
    let report = send(&router, get(&format!("/api/v1/disclosure/reports/990102-MZ/{year}"))).await;
    let lines = report.json()["requests"].as_array().unwrap().clone();
    let disclosed = lines.iter().find(|l| l["line"] == "disclosed").unwrap();
    assert_eq!(disclosed["person"], 1);
    let page = send(&router, get(&format!("/open/reports/990102-MZ/{year}"))).await;
    assert_eq!(page.status, StatusCode::OK);
    send(&router, get("/api/v1/disclosure/reports/990102-MZ/1990"))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    send(&router, get("/api/v1/disclosure/reports/990102-MZ/2100"))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
}

/// 数据开放 over HTTP: a data officer publishes a file dataset (a bad row refused with its
/// code), anyone finds it in the JSON API and over CKAN's Action API, reads its rows and
/// downloads it, and reads its DCAT-AP description; a conditional dataset needs a key; the
/// pages show the catalogue, the dataset and 数据需求.
async fn open_data_is_published_searched_read_and_described_over_http(t: TestDb) {
    use base64::Engine;
    let (router, _uploads) = router(&t);
    resident(&t).await;
    let console = t.console();
    let org = console.grant::<kernel::authz::OrganisationManage>();
    let acc = console.grant::<kernel::authz::AccountCreate>();
    let roles = console.grant::<kernel::authz::RoleGrant>();
    let now = Utc::now();
    let mut tx = t.db.begin().await.unwrap();
    let new = identity::NewDepartment {
        code: "990102-SG",
        name: "明月区数据管理局",
        region_code: "990102",
        kind: Some("SG"),
    };
    t.identity.organisation().create_department_in(&mut tx, &org, new, now).await.unwrap();
    let officer = testkit::staff_account("data.sg", "数据专员", "990102-SG");
    let officer = t.identity.accounts().create_account_in(&mut tx, &acc, officer, now).await.unwrap().id;
    t.identity.accounts().grant_role_in(&mut tx, &roles, &officer, "data_officer", now).await.unwrap();
    tx.commit().await.unwrap();
    let staff = token_of(&router, "data.sg", Some(testkit::TOTP)).await;
    let person = token(&router).await;

    let csv = "name,street,spaces\n彩云停车场,彩云街道,120\n湖滨停车场,湖滨街道,80\n";
    let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    let publication = |name: &str, level: &str, file: &str| {
        json!({"dataset": {"name": name, "title": "公共停车场", "description": "公共停车场的名称、街道和泊位数。",
            "department": "990102-SG", "theme": "industry", "open_level": level, "frequency": "monthly",
            "licence": "attribution", "tags": ["停车"]},
          "columns": [{"name": "name", "title": "名称", "type": "text", "required": true},
                      {"name": "street", "title": "街道", "type": "text", "required": true},
                      {"name": "spaces", "title": "泊位数", "type": "integer", "required": true}],
          "file": b64(file)})
    };
    let bad = publication("car-parks", "unconditional", "name,street,spaces\n彩云停车场,彩云街道,很多\n");
    send(&router, with_token(Method::POST, "/api/v1/open-data/datasets", &staff, Some(bad)))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "rows_rejected");
    let open = publication("car-parks", "unconditional", csv);
    send(&router, with_token(Method::POST, "/api/v1/open-data/datasets", &person, Some(open.clone())))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    let published = send(&router, with_token(Method::POST, "/api/v1/open-data/datasets", &staff, Some(open))).await;
    assert_eq!(published.status, StatusCode::CREATED, "{}", published.text());
    let id = published.json()["id"].as_str().unwrap().to_string();
    let conditional = publication("car-park-usage", "conditional", csv);
    let published =
        send(&router, with_token(Method::POST, "/api/v1/open-data/datasets", &staff, Some(conditional))).await;
    assert_eq!(published.status, StatusCode::CREATED, "{}", published.text());

    // The JSON API: search, rows, bounds.
    let found = send(&router, get("/api/v1/open-data/datasets?q=%E5%81%9C%E8%BD%A6&open_level=unconditional")).await;
    assert_eq!((found.status, found.json()["total"].as_u64()), (StatusCode::OK, Some(1)), "{}", found.text());
    let rows = send(&router, get("/api/v1/open-data/datasets/car-parks/rows?sort=spaces%20desc&limit=1")).await;
    assert_eq!(rows.status, StatusCode::OK, "{}", rows.text());
    assert_eq!(rows.json()["rows"][0]["spaces"], 120);
    send(&router, get("/api/v1/open-data/datasets/car-parks/rows?limit=0"))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    send(&router, get("/api/v1/open-data/datasets/car-park-usage/rows"))
        .await
        .assert_error(StatusCode::FORBIDDEN, "access_required");
    let mut keyed = get("/api/v1/open-data/datasets/car-park-usage/rows");
    keyed.headers_mut().insert("x-api-key", "tbod_wrong".parse().unwrap());
    send(&router, keyed).await.assert_error(StatusCode::UNAUTHORIZED, "invalid_api_key");

    // CKAN: the envelope, a search with a filter query, the datastore, an error object.
    let ckan = send(&router, get("/api/3/action/package_search?fq=organization:990102-sg&rows=1")).await;
    let body = ckan.json();
    assert_eq!(
        (ckan.status, body["success"].as_bool(), body["result"]["count"].as_u64()),
        (StatusCode::OK, Some(true), Some(2))
    );
    let search = send(
        &router,
        post(
            "/api/action/datastore_search",
            Some("application/json"),
            json!({"resource_id": format!("{id}-csv"), "filters": {"street": "湖滨街道"}}).to_string(),
        ),
    )
    .await;
    assert_eq!(search.json()["result"]["records"][0]["name"], "湖滨停车场", "{}", search.text());
    let missing = send(&router, get("/api/3/action/package_show?id=nothing")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.json()["error"]["__type"], "Not Found Error");
    let unknown = send(&router, get("/api/3/action/package_delete")).await;
    assert_eq!((unknown.status, unknown.json()["success"].as_bool()), (StatusCode::BAD_REQUEST, Some(false)));

    // Downloads hash to the version's SHA-256; DCAT in three syntaxes and by negotiation.
    let download = send(&router, get("/data/datasets/car-parks/data.csv")).await;
    assert_eq!(download.status, StatusCode::OK);
    let dataset = send(&router, get("/api/v1/open-data/datasets/car-parks")).await.json();
    use sha2::Digest;
    assert_eq!(dataset["versions"][0]["sha256"].as_str().unwrap(), hex::encode(sha2::Sha256::digest(&download.body)));
    assert_eq!(dataset["usage"]["downloads"], 1);
    for (path, media) in [
        ("/catalog.ttl", "text/turtle"),
        ("/catalog.rdf", "application/rdf+xml"),
        ("/catalog.jsonld", "application/ld+json"),
    ] {
        let answer = send(&router, get(path)).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
        assert!(answer.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with(media), "{path}");
        assert!(answer.text().contains("car-parks"), "{path}");
    }
    let negotiated =
        Request::get("/data/datasets/car-parks").header(header::ACCEPT, "text/turtle").body(Body::empty()).unwrap();
    let negotiated = send(&router, negotiated).await;
    assert!(negotiated.text().contains("dcat:Dataset"), "{}", negotiated.text());

    // The pages.
    let page = send(&router, get("/data?q=%E5%81%9C%E8%BD%A6")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains("/data/datasets/car-parks"));
    let page = send(&router, get("/data/datasets/car-parks")).await;
    assert!(page.text().contains("彩云停车场"), "the preview shows the first rows");
    let page = send(&router, get("/data/datasets/car-park-usage")).await;
    assert!(!page.text().contains("彩云停车场"), "a conditional dataset is not previewed");
    assert_eq!(send(&router, get("/data/requests")).await.status, StatusCode::OK);
}
