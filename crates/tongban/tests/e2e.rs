//! End-to-end: the real `tongban` binary on a free port, driven over HTTP, on SQLite and on
//! PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Scratch, totp_at};
use reqwest::StatusCode;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_tongban");
const PASSWORD: &str = tongban::demo::DEMO_PASSWORD;
const TOTP: &str = tongban::demo::DEMO_TOTP_SECRET;

#[derive(Clone, Copy, Debug)]
enum Backend {
    Sqlite,
    Postgres,
}

/// A running `tongban serve`; killed and cleaned up on drop.
struct Server {
    child: Option<Child>,
    base: String,
    data: tempfile::TempDir,
    database_url: Option<String>,
    _scratch: Option<Scratch>,
    client: reqwest::Client,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Server {
    async fn start(backend: Backend, extra: &[&str]) -> Server {
        let data = tempfile::tempdir().unwrap();
        let (scratch, database_url) = match backend {
            Backend::Sqlite => (None, None),
            Backend::Postgres => {
                let (s, url) = Scratch::postgres().await;
                (Some(s), Some(url))
            }
        };
        let mut server = Server {
            child: None,
            base: String::new(),
            data,
            database_url,
            _scratch: scratch,
            client: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
        };
        server.launch(extra).await;
        server
    }

    fn data_args(&self) -> Vec<String> {
        let mut args = vec!["--data-dir".to_string(), self.data.path().display().to_string()];
        if let Some(url) = &self.database_url {
            args.push("--database-url".into());
            args.push(url.clone());
        }
        args
    }

    fn log_path(&self) -> PathBuf {
        self.data.path().join("server.log")
    }

    async fn launch(&mut self, extra: &[&str]) {
        // A relaunch keeps its address: the listen address is part of the configuration.
        let port = match self.base.rsplit_once(':') {
            Some((_, p)) => p.parse().unwrap_or_else(|_| free_port()),
            None => free_port(),
        };
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path()).unwrap();
        let child = Command::new(BIN)
            .arg("serve")
            .args(self.data_args())
            .args(["--listen", &format!("127.0.0.1:{port}")])
            // One pooled connection: a request that waits for a second one while holding one
            // hangs here instead of only under production load.
            .args(["--database-pool", "1"])
            .args(extra)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        self.child = Some(child);
        self.base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            if let Ok(r) = self.client.get(self.url("/readyz")).send().await
                && r.status() == StatusCode::OK
            {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("server exited with {status}: {}", self.log());
            }
            assert!(started.elapsed() < Duration::from_secs(120), "server not ready: {}", self.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// SIGTERM, then wait: returns whether the process exited successfully.
    fn stop(&mut self) -> bool {
        let mut child = self.child.take().unwrap();
        Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.success();
            }
            if started.elapsed() > Duration::from_secs(30) {
                child.kill().ok();
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    async fn token(&self, username: &str) -> String {
        // A fresh TOTP step per token: the same code is never accepted twice.
        let code = totp_at(TOTP, chrono::Utc::now().timestamp());
        let r = self
            .client
            .post(self.url("/api/v1/auth/token"))
            .json(&json!({"username": username, "password": PASSWORD, "totp": code}))
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        body["access_token"].as_str().unwrap().to_string()
    }

    /// A token for the demo resident (no second factor).
    async fn citizen_token(&self) -> String {
        let r = self
            .client
            .post(self.url("/api/v1/auth/token"))
            .json(&json!({"username": "citizen.demo", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        r.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_string()
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let r = self.client.get(self.url(path)).bearer_auth(token).send().await.unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() { super::$name(super::Backend::Sqlite).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() { super::$name(super::Backend::Postgres).await }
        }
    )*};
}

/// The exchange over HTTP: a system registered by the system administrator reads under an
/// agreement, is refused without its secret, without consent and after a withdrawal; a
/// data officer imports a CSV and watches it finish; the resident sees the read.
async fn exchange_api(backend: Backend) {
    let s = Server::start(backend, &[]).await;
    let admin = s.token("sysadmin").await;
    let r = s
        .client
        .post(s.url("/api/v1/exchange/clients"))
        .bearer_auth(&admin)
        .json(&json!({"department": "990000-MZ", "mediator_client": "CN/GOV/990000-MZ/dibao"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let secret = r.json::<Value>().await.unwrap()["secret"].as_str().unwrap().to_string();
    let mz = s.token("data.mz").await;
    let ga = s.token("data.ga").await;
    let citizen = s.citizen_token().await;
    let (_, me) = s.get("/api/v1/me", &citizen).await;
    let (_, data) = s.get("/api/v1/me/data", &citizen).await;
    let id_number = data["profile"]["id_number"].as_str().unwrap().to_string();
    assert!(me["username"].as_str().is_some());
    let (status, catalog) = s.get("/api/v1/exchange/registries", &mz).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(catalog.as_array().unwrap().len(), 4);

    let request = |body: Value| s.client.post(s.url("/api/v1/exchange/agreements")).bearer_auth(&mz).json(&body).send();
    let r = request(json!({"registry": "population", "fields": ["sex", "birth_date"], "purpose": "高龄津贴资格核对",
        "legal_basis": "《老年人权益保障法》", "valid_days": 30}))
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let open: Value = r.json().await.unwrap();
    assert_eq!(open["status"], "granted");
    let read = |agreement: String, secret: Option<String>| {
        let mut r = s
            .client
            .post(s.url("/api/v1/exchange/read"))
            .header("Information-Mediator-Client", "CN/GOV/990000-MZ/dibao")
            .json(&json!({"agreement": agreement, "key": id_number}));
        if let Some(secret) = secret {
            r = r.header("X-Exchange-Secret", secret);
        }
        r.send()
    };
    let r = read(open["id"].as_str().unwrap().into(), Some(secret.clone())).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["values"].as_object().unwrap().len(), 2, "{answer}");
    expect_error(
        read(open["id"].as_str().unwrap().into(), None).await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    expect_error(
        read(open["id"].as_str().unwrap().into(), Some("wrong".into())).await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    expect_error(
        read("no-such-agreement".into(), Some(secret.clone())).await.unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let r = s
        .client
        .post(s.url("/api/v1/exchange/read"))
        .header("Information-Mediator-Client", "CN/GOV/990000-MZ/dibao")
        .header("X-Exchange-Secret", &secret)
        .header("content-type", "application/json")
        .body("{\"agreement\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // Consent: the owner approves; reads wait for the resident's opt-in and stop at withdrawal.
    let r = request(json!({"registry": "population", "fields": ["mobile"], "purpose": "养老服务回访",
        "legal_basis": "本人同意", "valid_days": 30, "consent_required": true}))
    .await
    .unwrap();
    let asked: Value = r.json().await.unwrap();
    assert_eq!(asked["status"], "pending");
    let id = asked["id"].as_str().unwrap().to_string();
    let r = s
        .client
        .post(s.url(&format!("/api/v1/exchange/agreements/{id}/decision")))
        .bearer_auth(&mz)
        .json(&json!({"approve": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "only the owner decides");
    let r = s
        .client
        .post(s.url(&format!("/api/v1/exchange/agreements/{id}/decision")))
        .bearer_auth(&ga)
        .json(&json!({"approve": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    expect_error(read(id.clone(), Some(secret.clone())).await.unwrap(), StatusCode::FORBIDDEN, "consent_required")
        .await;
    let (_, consents) = s.get("/api/v1/me/consents", &citizen).await;
    let da = consents.as_array().unwrap().iter().find(|c| c["purpose"] == "养老服务回访").unwrap()["data_agreement"]
        .as_str()
        .unwrap()
        .to_string();
    let consent = |granted: bool| {
        s.client
            .put(s.url(&format!("/api/v1/me/consents/{da}")))
            .bearer_auth(&citizen)
            .json(&json!({"granted": granted}))
            .send()
    };
    assert_eq!(consent(true).await.unwrap().status(), StatusCode::NO_CONTENT);
    let r = read(id.clone(), Some(secret.clone())).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["masked"], json!(["mobile"]));
    assert_eq!(consent(false).await.unwrap().status(), StatusCode::NO_CONTENT);
    expect_error(read(id.clone(), Some(secret.clone())).await.unwrap(), StatusCode::FORBIDDEN, "consent_required")
        .await;
    let (_, data) = s.get("/api/v1/me/data", &citizen).await;
    let reads: Vec<&Value> =
        data["accesses"].as_array().unwrap().iter().filter(|a| a["action"] == "exchange_read").collect();
    assert_eq!(reads.len(), 2, "both reads are on 我的数据");
    assert!(reads.iter().any(|a| a["purpose"] == "养老服务回访"));

    // GovStack Consent verification: the consuming department's system sees the record (now
    // withdrawn) and the check is on 我的数据; another department's system sees nothing.
    let r = s
        .client
        .post(s.url("/api/v1/exchange/clients"))
        .bearer_auth(&admin)
        .json(&json!({"department": "990000-RS", "mediator_client": "CN/GOV/990000-RS/jiuye"}))
        .send()
        .await
        .unwrap();
    let other_secret = r.json::<Value>().await.unwrap()["secret"].as_str().unwrap().to_string();
    let verify = |path: &str, client: &str, secret: &str| {
        s.client
            .get(s.url(&format!("/govstack/consent/service/verification{path}")))
            .header("Information-Mediator-Client", client)
            .header("X-Exchange-Secret", secret)
            .send()
    };
    let mz_client = "CN/GOV/990000-MZ/dibao";
    expect_error(
        verify("/consent-records/", mz_client, "wrong").await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    let agreements: Value = verify("/data-agreements/", mz_client, &secret).await.unwrap().json().await.unwrap();
    assert!(agreements["dataAgreements"].as_array().unwrap().iter().any(|a| a["id"] == da.as_str()), "{agreements}");
    let found: Value = verify(&format!("/consent-records/?dataAgreementId={da}&optIn=false"), mz_client, &secret)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["pagination"]["totalItems"], 1, "{found}");
    let record = &found["consentRecords"][0];
    assert_eq!(record["optIn"], false);
    let record_id = record["id"].as_str().unwrap().to_string();
    let r = verify(&format!("/consent-records/?dataAgreementId={da}&optIn=true"), mz_client, &secret).await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["consentRecords"], json!([]), "no one has it granted now");
    let r = verify(&format!("/consent-record/{record_id}/"), mz_client, &secret).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let one: Value = r.json().await.unwrap();
    assert_eq!(one["revision"]["objectId"], record_id.as_str(), "{one}");
    let r = verify("/consent-records/?optIn=maybe", mz_client, &secret).await.unwrap();
    expect_error(r, StatusCode::BAD_REQUEST, "invalid_body").await;
    let theirs: Value =
        verify(&format!("/consent-records/?dataAgreementId={da}"), "CN/GOV/990000-RS/jiuye", &other_secret)
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(theirs["pagination"]["totalItems"], 0, "another department's purpose: {theirs}");
    let r = verify(&format!("/consent-record/{record_id}"), "CN/GOV/990000-RS/jiuye", &other_secret).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let (_, data) = s.get("/api/v1/me/data", &citizen).await;
    assert!(
        data["accesses"].as_array().unwrap().iter().any(|a| a["action"] == "consent_verified"),
        "the person sees that their consent was checked"
    );

    // An import runs on; its status shows the outcome and the bad row.
    let csv = "id_number,name,sex,birth_date,region_code\n530102199001011234,赵一,1,1990-01-01,530102\n530102199001011235,钱二,7,1990-01-01,530102\n";
    let r = s
        .client
        .post(s.url("/api/v1/exchange/registries/population/imports?mode=skip_bad_rows&file_name=p.csv"))
        .bearer_auth(&ga)
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let started: Value = r.json().await.unwrap();
    let mut status = Value::Null;
    for _ in 0..100 {
        status = s.get(started["status"].as_str().unwrap(), &ga).await.1;
        if status["status"] != "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        (status["status"].as_str(), status["imported"].as_u64(), status["rejected"].as_u64()),
        (Some("done"), Some(1), Some(1)),
        "{status}"
    );
    assert_eq!(status["errors"][0]["row"], 3);
    let r = s
        .client
        .post(s.url("/api/v1/exchange/registries/population/imports"))
        .bearer_auth(&mz)
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "only the owner imports");
}

on_both_databases!(
    exchange_api,
    token_sign_in_with_totp_and_revocation,
    lockout_answers_429_with_retry_after,
    clerk_is_denied_another_districts_record,
    bad_input_gets_a_clear_4xx,
    health_metrics_and_openapi,
    clean_install_first_admin_and_separated_duties,
    graceful_shutdown_and_quick_restart,
    ledger_proves_and_catches_tampering,
    restore_drill,
    form_tokens_are_bound_to_the_session,
    applicant_and_staff_journey,
    govstack_registration_api,
    govstack_registries_api,
    govstack_consent_api,
    appointments_over_http,
);

/// Every error: a JSON body {code, message, request_id} whose id matches the header.
async fn expect_error(r: reqwest::Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(r.status(), status, "expected {code}");
    let header = r.headers().get("x-request-id").expect("x-request-id").to_str().unwrap().to_string();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert!(!body["message"].as_str().unwrap().is_empty());
    assert_eq!(body["request_id"], header);
    body
}

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

async fn bad_input_gets_a_clear_4xx(backend: Backend) {
    let s = Server::start(backend, &["--body-limit-bytes", "4096"]).await;
    let url = s.url("/api/v1/auth/token");
    let post = |body: &'static str, ct: Option<&'static str>| {
        let mut req = s.client.post(&url).body(body);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        req.send()
    };
    expect_error(
        post("{\"username\": ", Some("application/json")).await.unwrap(),
        StatusCode::BAD_REQUEST,
        "malformed_json",
    )
    .await;
    expect_error(
        post("{\"username\": 5, \"password\": []}", Some("application/json")).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    )
    .await;
    expect_error(
        post("{\"username\": \"a\", \"password\": \"b\", \"admin\": true}", Some("application/json")).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    )
    .await;
    expect_error(post("{}", None).await.unwrap(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").await;
    let big = format!("{{\"username\": \"{}\", \"password\": \"x\"}}", "a".repeat(10_000));
    let r = s.client.post(&url).header("content-type", "application/json").body(big).send().await.unwrap();
    expect_error(r, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large").await;

    expect_error(s.client.get(s.url("/api/v1/nothing-here")).send().await.unwrap(), StatusCode::NOT_FOUND, "not_found")
        .await;
    expect_error(
        s.client.delete(s.url("/api/v1/me")).send().await.unwrap(),
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
    expect_error(s.client.get(s.url("/api/v1/me")).send().await.unwrap(), StatusCode::UNAUTHORIZED, "unauthenticated")
        .await;
    expect_error(
        s.client.get(s.url("/api/v1/me")).bearer_auth("forged-token").send().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    let token = s.token("clerk.mingyue").await;
    expect_error(
        s.client.get(s.url("/api/v1/residents/01234567-no-such")).bearer_auth(&token).send().await.unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    expect_error(
        s.client.get(s.url("/api/v1/residents?limit=many")).bearer_auth(&token).send().await.unwrap(),
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;

    // Pages answer with pages: an unknown page, and a form post without its CSRF token.
    let r = s.client.get(s.url("/no/such/page")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r.text().await.unwrap().contains("<h1>出错了 (404)</h1>"));
    let r = s
        .client
        .post(s.url("/signin"))
        .form(&[("username", "clerk.mingyue"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("页面已过期"));
    // Bad admin requests get their own codes (the roll-back itself is checked in the
    // service test bad_identifiers_are_refused_without_half_written_accounts).
    let sysadmin = s.token("sysadmin").await;
    let r = s
        .client
        .post(s.url("/api/v1/accounts"))
        .bearer_auth(&sysadmin)
        .json(&json!({"kind": "staff", "username": "x", "display_name": "X", "department_code": "990102-MZ"}))
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    let r = s
        .client
        .post(s.url("/api/v1/accounts"))
        .bearer_auth(&sysadmin)
        .json(
            &json!({"kind": "staff", "username": "clerk.mingyue", "display_name": "X", "department_code": "990102-MZ"}),
        )
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::CONFLICT, "username_taken").await;
    assert!(!s.log().contains("panicked"), "{}", s.log());
}

async fn health_metrics_and_openapi(backend: Backend) {
    let s = Server::start(backend, &[]).await;
    for path in ["/", "/healthz", "/readyz", "/static/app.css", "/api/v1/me"] {
        let r = s.client.get(s.url(path)).send().await.unwrap();
        assert!(r.status() == StatusCode::OK || path == "/api/v1/me", "{path}");
        let h = r.headers();
        let csp = h.get("content-security-policy").unwrap().to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'")
                && !csp.contains("unsafe-inline")
                && csp.contains("frame-ancestors 'none'")
        );
        assert_eq!(h.get("x-content-type-options").unwrap(), "nosniff");
        assert!(h.get("referrer-policy").is_some() && h.get("x-request-id").is_some(), "{path}");
    }
    let metrics = s.client.get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("tongban_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("tongban_http_request_duration_seconds_bucket{"));
    assert!(metrics.contains("tongban_db_pool_connections"));

    let doc: Value = s.client.get(s.url("/api/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/api/v1/auth/token",
        "/api/v1/auth/revoke",
        "/api/v1/me",
        "/api/v1/residents",
        "/api/v1/residents/{id}",
        "/api/v1/enterprises/{id}",
        "/api/v1/regions",
        "/api/v1/departments",
        "/api/v1/accounts",
        "/api/v1/accounts/{id}/roles",
        "/api/v1/accounts/{id}/roles/{role}",
        "/api/v1/security-events",
    ] {
        assert!(paths.contains_key(p), "{p} missing from OpenAPI");
    }
    let codes = doc["components"]["schemas"]["ErrorCode"]["enum"].as_array().unwrap();
    for c in tongban::http::error::ALL_CODES {
        assert!(codes.iter().any(|x| x == c.as_str()), "{}", c.as_str());
    }
}

fn run(args: &[String]) -> (bool, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
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

async fn graceful_shutdown_and_quick_restart(backend: Backend) {
    let mut s = Server::start(backend, &[]).await;
    assert!(s.log().contains("seeding the demo province"));
    assert!(s.log().contains("clerk.mingyue"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(s.data.path().join("secrets/master.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let token = s.token("clerk.mingyue").await;
    assert!(s.stop(), "{}", s.log());
    assert!(s.log().contains("stopped cleanly"));
    // A node with another master key is refused before it serves anything.
    let other_key = s.data.path().join("other.key");
    std::fs::write(&other_key, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n").unwrap();
    let mut args = vec!["migrate".to_string(), "--master-key-file".into(), other_key.display().to_string()];
    args.extend(s.data_args());
    let (ok, out) = run(&args);
    assert!(!ok && out.contains("bound to master key"), "{out}");
    s.launch(&[]).await;
    assert_eq!(s.log().matches("seeding the demo province").count(), 1, "demo seeded twice");
    // Tokens live in the database: they survive a restart.
    let (status, _) = s.get("/api/v1/me", &token).await;
    assert_eq!(status, StatusCode::OK);
    // A restart with the same settings records nothing; a changed setting is on the trail.
    let auditor = s.token("auditor").await;
    let (_, changes) = s.get("/api/v1/security-events?kind=configuration_changed", &auditor).await;
    assert_eq!(changes.as_array().unwrap().len(), 1);
    assert!(s.stop());
    s.launch(&["--body-limit-bytes", "2048"]).await;
    let (_, changes) = s.get("/api/v1/security-events?kind=configuration_changed", &auditor).await;
    let changes = changes.as_array().unwrap();
    assert_eq!(changes.len(), 2);
    assert!(changes[0]["detail"].as_str().unwrap().contains("body_limit_bytes = 2048"));
}

#[test]
fn config_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tongban.toml");
    std::fs::write(&file, "listn = \"127.0.0.1:1\"\n").unwrap();
    let (ok, out) = run(&["config".into(), "check".into(), "--config".into(), file.display().to_string()]);
    assert!(!ok && out.contains("listn"), "{out}");
    let (ok, out) = run(&["serve".into(), "--config".into(), file.display().to_string()]);
    assert!(!ok && out.contains("listn"), "{out}");
    // The demo's published passwords never face a network.
    let (ok, out) = run(&[
        "serve".into(),
        "--listen".into(),
        "0.0.0.0:0".into(),
        "--data-dir".into(),
        dir.path().join("d").display().to_string(),
    ]);
    assert!(!ok && out.contains("--no-demo"), "{out}");
    assert!(!dir.path().join("d").exists());
    let (ok, out) = run(&["config".into(), "check".into(), "--listen".into(), "everywhere".into()]);
    assert!(!ok && out.contains("`listen`"), "{out}");
    let out = Command::new(BIN).args(["config", "check"]).env("TONGBAN_SESSION_IDLE_MINUTES", "0").output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("session_idle_minutes"));
    std::fs::write(&file, "listen = \"127.0.0.1:9999\"\n").unwrap();
    let (ok, out) = run(&["config".into(), "check".into(), "--config".into(), file.display().to_string()]);
    assert!(ok && out.contains("listen = 127.0.0.1:9999"), "{out}");
    for sub in
        [&["serve", "--help"][..], &["migrate", "--help"], &["user", "add", "--help"], &["config", "check", "--help"]]
    {
        let args: Vec<String> = sub.iter().map(|s| s.to_string()).collect();
        let (ok, out) = run(&args);
        assert!(ok && out.contains("--data-dir"), "{sub:?}: {out}");
    }
}

/// HTTPS with rustls from PEM files; cookies become `Secure`. Uses the `openssl` and `curl`
/// command-line tools (Debian's) to make a certificate and to speak TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_with_secure_cookies() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is needed for this test");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let port = free_port();
    let log = dir.path().join("log");
    struct Guard(Child);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.kill().ok();
            self.0.wait().ok();
        }
    }
    let child = Command::new(BIN)
        .args(["serve", "--no-demo", "--data-dir"])
        .arg(dir.path().join("data"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--tls-cert"])
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Guard(child);
    let curl = |path: &str| {
        Command::new("curl")
            .args(["-s", "-i", "--cacert"])
            .arg(&cert)
            .arg(format!("https://127.0.0.1:{port}{path}"))
            .output()
            .expect("curl is needed for this test")
    };
    let started = Instant::now();
    let answer = loop {
        let out = curl("/readyz");
        if out.status.success() {
            break String::from_utf8_lossy(&out.stdout).to_string();
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{}", std::fs::read_to_string(&log).unwrap_or_default());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(answer.starts_with("HTTP/") && answer.contains(" 200") && answer.ends_with("ready"), "{answer}");
    let page = String::from_utf8_lossy(&curl("/signin").stdout).to_string();
    let cookie =
        page.lines().find(|l| l.to_ascii_lowercase().starts_with("set-cookie: tb_csrf=")).expect("csrf cookie");
    assert!(cookie.contains("; Secure") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
    // Plain HTTP on the TLS port is refused.
    let plain = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", &format!("http://127.0.0.1:{port}/readyz")])
        .output()
        .unwrap();
    assert_ne!(String::from_utf8_lossy(&plain.stdout), "200");
    Command::new("kill").args(["-TERM", &child.0.id().to_string()]).status().unwrap();
    assert!(child.0.wait().unwrap().success());
}

async fn ledger_proves_and_catches_tampering(backend: Backend) {
    use base64::Engine;
    use tongban::ledger::merkle;
    use tongban::ledger::note::{Checkpoint, NoteVerifier, verify};
    let b64 =
        |s: &str| -> [u8; 32] { base64::engine::general_purpose::STANDARD.decode(s).unwrap().try_into().unwrap() };
    let mut s = Server::start(backend, &["--checkpoint-interval-seconds", "1"]).await;
    let clerk = s.token("clerk.mingyue").await;
    let auditor = s.token("auditor").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;

    // The checkpoint verifies with the published key, and proves the clerk's sign-in.
    let key = s.client.get(s.url("/ledger/audit/verifier-key")).send().await.unwrap().text().await.unwrap();
    let public_key = s.client.get(s.url("/ledger/public/verifier-key")).send().await.unwrap().text().await.unwrap();
    let certificates_key =
        s.client.get(s.url("/ledger/certificates/verifier-key")).send().await.unwrap().text().await.unwrap();
    // Each log signs with its own key.
    assert_ne!(key.split('+').nth(2), public_key.split('+').nth(2));
    let note = s.client.get(s.url("/ledger/audit/checkpoint")).send().await.unwrap().text().await.unwrap();
    let body = verify(&note, &NoteVerifier::parse(&key).unwrap()).expect("checkpoint signature");
    let cp = Checkpoint::parse(body).unwrap();
    assert_eq!(cp.origin, "tongban/audit");
    let (_, trail) = s.get("/api/v1/security-events?kind=token_issued", &auditor).await;
    let issued = trail.as_array().unwrap().iter().find(|e| e["username"] == "clerk.mingyue").unwrap();
    let index = issued["index"].as_u64().unwrap();
    let r = s
        .client
        .get(s.url(&format!("/ledger/audit/proof/inclusion?index={index}&size={}", cp.size)))
        .send()
        .await
        .unwrap();
    let proof: Value = r.json().await.unwrap();
    let path: Vec<[u8; 32]> = proof["hashes"].as_array().unwrap().iter().map(|h| b64(h.as_str().unwrap())).collect();
    assert!(merkle::verify_inclusion(index, cp.size, &b64(proof["leaf_hash"].as_str().unwrap()), &path, &cp.root));

    // Audit entries are for auditors: the clerk is refused, the auditor reads the bundle.
    let tile = format!("/ledger/audit/tile/entries/000.p/{}", cp.size.min(255));
    expect_error(s.client.get(s.url(&tile)).send().await.unwrap(), StatusCode::UNAUTHORIZED, "unauthenticated").await;
    expect_error(
        s.client.get(s.url(&tile)).bearer_auth(&clerk).send().await.unwrap(),
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let bundle = s.client.get(s.url(&tile)).bearer_auth(&auditor).send().await.unwrap().bytes().await.unwrap();
    let len = u16::from_be_bytes([bundle[0], bundle[1]]) as usize;
    let first: Value = serde_json::from_slice(&bundle[2..2 + len]).unwrap();
    assert!(first["action"].is_string() && first["at"].is_string());
    let hashes = s.client.get(s.url("/ledger/audit/tile/0/000.p/1")).bearer_auth(&auditor).send().await.unwrap();
    assert_eq!(hashes.bytes().await.unwrap().len(), 32);
    expect_error(
        s.client.get(s.url("/ledger/audit/tile/0/x999/000")).bearer_auth(&auditor).send().await.unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    expect_error(
        s.client.get(s.url("/ledger/nothing/checkpoint")).send().await.unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    expect_error(
        s.client.get(s.url("/ledger/audit/proof/consistency?from=5&to=999999999")).send().await.unwrap(),
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    assert!(s.stop());

    let data = s.data_args();
    let with = |rest: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = rest.iter().map(|x| x.to_string()).collect();
        v.extend(data.iter().cloned());
        v
    };
    let (ok, out) = run(&with(&["ledger", "verify"]));
    assert!(ok && out.contains("audit:") && out.contains("verified"), "{out}");
    // An auditor verifies with the published verifier keys and the database alone: the
    // platform's secrets are not needed (here they are not even there).
    let keys_file = s.data.path().join("verifier-keys.txt");
    std::fs::write(&keys_file, format!("{}\n{}\n{}\n", key.trim(), public_key.trim(), certificates_key.trim()))
        .unwrap();
    let secrets = s.data.path().join("secrets");
    let hidden = s.data.path().join("secrets-elsewhere");
    std::fs::rename(&secrets, &hidden).unwrap();
    let (ok, out) = run(&with(&["ledger", "verify", "--verifier-keys", &keys_file.display().to_string()]));
    std::fs::rename(&hidden, &secrets).unwrap();
    assert!(ok && out.contains("certificates:"), "{out}");
    // A witness cosigns, and the checkpoint then carries its line.
    let witness = s.data.path().join("witness.key");
    let witness_arg = witness.display().to_string();
    let (ok, out) =
        run(&with(&["ledger", "cosign", "--key", &witness_arg, "--name", "audit-bureau.example", "--log", "audit"]));
    assert!(ok && out.contains("cosigned checkpoint"), "{out}");
    let state = s.data.path().join("witness.state").display().to_string();
    let (ok, out) = run(&with(&["ledger", "verify", "--trusted", &state]));
    assert!(ok, "{out}");

    // An intruder edits an entry directly in the database: verify fails, naming it.
    let url =
        s.database_url.clone().unwrap_or_else(|| format!("sqlite://{}", s.data.path().join("tongban.db").display()));
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    let disarm = if url.starts_with("sqlite") {
        "DROP TRIGGER ledger_entries_no_update"
    } else {
        "ALTER TABLE ledger_entries DISABLE TRIGGER USER"
    };
    sqlx::query(sqlx::AssertSqlSafe(disarm)).execute(&pool).await.unwrap();
    sqlx::query("UPDATE ledger_entries SET entry = (SELECT entry FROM ledger_entries WHERE log = 'audit' AND idx = 8) WHERE log = 'audit' AND idx = 7")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let out = Command::new(BIN).args(with(&["ledger", "verify", "--log", "audit"])).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("TAMPERED") && text.contains("index 7"), "{text}");
}

/// Back up while serving, destroy the database, restore, verify, and find the same data.
async fn restore_drill(backend: Backend) {
    let mut s = Server::start(backend, &[]).await;
    let clerk = s.token("clerk.mingyue").await;
    let (_, before) = s.get("/api/v1/residents?limit=500", &clerk).await;
    let data = s.data_args();
    let with = |rest: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = rest.iter().map(|x| x.to_string()).collect();
        v.extend(data.iter().cloned());
        v
    };
    let out = s.data.path().join("backup-1");
    let (ok, text) = run(&with(&["backup", "--out", &out.display().to_string()]));
    assert!(ok && text.contains("backup written"), "{text}");
    let manifest: Value = serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let audit_size = manifest["checkpoints"]["audit"][0].as_u64().unwrap();
    assert!(audit_size > 1000);
    // A second backup into the same directory is refused rather than mixed in.
    let (ok, text) = run(&with(&["backup", "--out", &out.display().to_string()]));
    assert!(!ok && text.contains("not empty"), "{text}");
    assert!(s.stop());

    // A damaged copy is refused before anything is replaced.
    let damaged = s.data.path().join("backup-damaged");
    std::fs::create_dir(&damaged).unwrap();
    for f in std::fs::read_dir(&out).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, damaged.join(f.file_name().unwrap())).unwrap();
    }
    let file = damaged.join(manifest["files"][0]["name"].as_str().unwrap());
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&file, bytes).unwrap();
    let (ok, text) = run(&with(&["restore", "--from", &damaged.display().to_string()]));
    assert!(!ok && text.contains("damaged"), "{text}");
    // So is one whose checksum was rewritten to match: the manifest's MAC needs the master key.
    let mut forged: Value = manifest.clone();
    let digest = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(std::fs::read(&file).unwrap()))
    };
    forged["files"][0]["sha256"] = json!(digest);
    std::fs::write(damaged.join("manifest.json"), serde_json::to_string(&forged).unwrap()).unwrap();
    let (ok, text) = run(&with(&["restore", "--from", &damaged.display().to_string()]));
    assert!(!ok && text.contains("MAC"), "{text}");

    // Destroy the database.
    match &s.database_url {
        None => {
            for f in ["tongban.db", "tongban.db-wal", "tongban.db-shm"] {
                let _ = std::fs::remove_file(s.data.path().join(f));
            }
        }
        Some(url) => {
            let (admin, name) = url.rsplit_once('/').map(|(b, n)| (format!("{b}/postgres"), n.to_string())).unwrap();
            sqlx::any::install_default_drivers();
            let mut c = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)")))
                .execute(&mut c)
                .await
                .unwrap();
        }
    }
    let (ok, text) = run(&with(&["restore", "--from", &out.display().to_string()]));
    assert!(ok, "{text}");
    // The snapshot is taken after the manifest's checkpoint, so it holds at least the
    // entries that checkpoint covers (the running server may append more in between).
    let verified: u64 = text
        .split("audit: ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no audit count in {text}"));
    assert!(verified >= audit_size, "{verified} < {audit_size}: {text}");
    let (ok, text) = run(&with(&["ledger", "verify"]));
    assert!(ok, "{text}");

    // The same data, served again; the token issued before the backup still works.
    s.launch(&[]).await;
    let (status, after) = s.get("/api/v1/residents?limit=500", &clerk).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(before, after);
    assert_eq!(after.as_array().unwrap().len(), before.as_array().unwrap().len());
    assert_eq!(s.log().matches("seeding the demo province").count(), 1, "the restored data was seeded again");
}

fn set_cookie_value(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers().get_all("set-cookie").iter().find_map(|c| {
        c.to_str().ok()?.strip_prefix(&format!("{name}=")).map(|v| v.split(';').next().unwrap_or("").to_string())
    })
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

/// Search → guide → apply with prefill (bad, then good) → intake → approval, over the API
/// and the pages, as a resident and two members of staff.
async fn applicant_and_staff_journey(backend: Backend) {
    let s = Server::start(backend, &[]).await;
    let citizen = s.citizen_token().await;
    let (status, found) = s.get("/api/v1/services?q=%E4%B8%B4%E6%97%B6%E6%95%91%E5%8A%A9", &citizen).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found[0]["code"], "YLMZ0005", "{found}");
    let (_, prefill) = s.get("/api/v1/services/YLMZ0005/prefill", &citizen).await;
    assert_eq!(prefill["sources"]["id_number"], "profile.id_number");
    assert_eq!(prefill["values"]["id_number"].as_str().unwrap().len(), 18);

    let apply = |body: Value, token: Option<&str>| {
        let mut r = s.client.post(s.url("/api/v1/services/YLMZ0005/applications")).json(&body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    let r = apply(json!({"form": {}}), None).await.unwrap();
    expect_error(r, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let r = apply(json!({"form": {"household_size": "three"}}), Some(&citizen)).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "form_invalid");
    let errors = body["errors"].as_array().unwrap();
    assert!(
        errors.iter().any(|e| e["field"] == "household_size" && e["message_zh"].as_str().unwrap().contains("整数"))
    );
    assert!(errors.iter().any(|e| e["field"] == "agree"));
    let r = apply(json!({"form": {"hardship_type": "illness"}, "unknown": 1}), Some(&citizen)).await.unwrap();
    expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").await;
    let good = json!({"form": {"household_size": 3, "hardship_type": "illness", "monthly_income": 800,
        "hardship_description": "家人住院，医疗费用支出大", "agree": true}});
    let r = apply(good, Some(&citizen)).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let app: Value = r.json().await.unwrap();
    let id = app["id"].as_str().unwrap().to_string();
    assert_eq!(app["status"], "submitted");

    let clerk = s.token("clerk.mingyue").await;
    let (status, inbox) = s.get("/api/v1/inbox", &clerk).await;
    assert_eq!(status, StatusCode::OK);
    assert!(inbox["items"].as_array().unwrap().iter().any(|i| i["number"] == app["number"]), "{inbox}");
    let act = |token: String, action: &'static str| {
        s.client
            .post(s.url(&format!("/api/v1/cases/{id}/actions")))
            .bearer_auth(token)
            .json(&json!({"action": action}))
            .send()
    };
    let r = act(clerk.clone(), "approve").await.unwrap();
    expect_error(r, StatusCode::CONFLICT, "invalid_transition").await;
    let r = act(clerk.clone(), "accept").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let approver = s.token("mzapprover.mingyue").await;
    let r = act(approver, "approve").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (_, mine) = s.get(&format!("/api/v1/me/applications/{id}"), &citizen).await;
    assert_eq!(mine["status"], "completed", "{mine}");
    assert_eq!(mine["timeline"].as_array().unwrap().len(), 4);
    // Another district's clerk cannot read it.
    let other = s.token("clerk.qinghu").await;
    let r = s.client.get(s.url(&format!("/api/v1/cases/{id}"))).bearer_auth(&other).send().await.unwrap();
    expect_error(r, StatusCode::FORBIDDEN, "outside_jurisdiction").await;

    // The pages: catalog, guide, the prefilled form and its error summary.
    let html = s.client.get(s.url("/services?q=csdj")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("出生登记"));
    let html = s.client.get(s.url("/services/YLMZ0005")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("临时救助申请") && html.contains("/services/YLMZ0005/apply"));
    let r = s.client.get(s.url("/verify/nonexistent")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
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
    let html = s
        .client
        .get(s.url("/services/YLMZ0005/apply"))
        .header("cookie", &cookies)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("readonly"), "locked prefilled fields are read-only");
    let token = html.split("name=\"_csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let r = s
        .client
        .post(s.url("/services/YLMZ0005/apply"))
        .header("cookie", &cookies)
        .form(&[("_csrf", token.as_str()), ("household_size", "0")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(html.contains("error-summary") && html.contains("href=\"#f-household_size\""));

    // 我的材料: a file that is not what its name says is refused on the page; a PDF is kept
    // and offered on the form, and goes with the application once ticked.
    let html = s
        .client
        .get(s.url("/materials?service=YLMZ0005"))
        .header("cookie", &cookies)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("enctype=\"multipart/form-data\"") && html.contains("临时救助申请"), "{html}");
    let upload = |name: &'static str, bytes: &'static [u8]| {
        let form = reqwest::multipart::Form::new()
            .text("_csrf", token.clone())
            .text("service", "YLMZ0005")
            .text("material", "困难情况证明")
            .part("file", reqwest::multipart::Part::bytes(bytes).file_name(name));
        s.client.post(s.url("/materials")).header("cookie", &cookies).multipart(form).send()
    };
    let r = upload("证明.pdf", b"just some text, not a PDF").await.unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let html = r.text().await.unwrap();
    assert!(html.contains("error-summary") && html.contains("href=\"#file\"") && html.contains("PDF"), "{html}");
    let r =
        upload("证明.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n").await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/materials?service=YLMZ0005&uploaded=1");
    let html = s
        .client
        .get(s.url("/services/YLMZ0005/apply"))
        .header("cookie", &cookies)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let document = html
        .split("name=\"_documents\" value=\"")
        .nth(1)
        .expect("the upload is offered")
        .split('"')
        .next()
        .unwrap()
        .to_string();
    assert!(html.contains("困难情况证明：证明.pdf"), "{html}");
    let r = s
        .client
        .post(s.url("/services/YLMZ0005/apply"))
        .header("cookie", &cookies)
        .form(&[
            ("_csrf", token.as_str()),
            ("household_size", "3"),
            ("hardship_type", "illness"),
            ("monthly_income", "800"),
            ("hardship_description", "家人住院，医疗费用支出大"),
            ("agree", "true"),
            ("_documents", document.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", r.text().await.unwrap());
    let case = r.headers()["location"].to_str().unwrap().rsplit('/').next().unwrap().to_string();
    let (_, submitted) = s.get(&format!("/api/v1/me/applications/{case}"), &citizen).await;
    assert_eq!(submitted["documents"][0]["id"], document.as_str(), "{submitted}");
    assert_eq!(submitted["documents"][0]["content_type"], "application/pdf");
    let html = s.client.get(s.url("/materials")).header("cookie", &cookies).send().await.unwrap().text().await.unwrap();
    assert!(!html.contains("证明.pdf"), "a sent material is no longer waiting");
    let html =
        s.client.get(s.url("/applications")).header("cookie", &cookies).send().await.unwrap().text().await.unwrap();
    assert!(html.contains(app["number"].as_str().unwrap()));
}

const IMC: &str = "eGovStack/GOV/90000009/eregistrations-dev";

/// The GovStack Registration API as its published test suite calls it, with the fixtures
/// loaded while the server runs, plus a submission to a real service of the catalog.
async fn govstack_registration_api(backend: Backend) {
    let s = Server::start(backend, &[]).await;
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
    let (status, _, task) = get("/tasks/81c4445c-bff6-11ed-afa1-0242ac120002", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(task["taskId"], "81c4445c-bff6-11ed-afa1-0242ac120002");
    assert!(task["formVariables"].as_object().unwrap().values().all(Value::is_object));
    assert_eq!(get("/tasks/n0t-ex1st1ng-task", None).await.0, StatusCode::NOT_FOUND);
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
    let r = s
        .client
        .post(gs("/documents?additionalMetadata=additional%20metadata"))
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
    let r = s.client.post(gs("/documents")).send().await.unwrap();
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

/// Booking a window over the API: halls near the resident first, free slots of a working day,
/// a booking with its calendar file, bad input, and cancelling.
async fn appointments_over_http(backend: Backend) {
    let s = Server::start(backend, &[]).await;
    let citizen = s.citizen_token().await;
    let (status, halls) = s.get("/api/v1/services/YLGA0002/halls", &citizen).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(halls.as_array().unwrap().len(), 2, "{halls}");
    let hall = halls[0]["code"].as_str().unwrap().to_string();
    // The furthest day of the booking window that has free slots.
    let today = chrono::Utc::now().date_naive();
    let mut slot = None;
    for ahead in (1..=14).rev() {
        let day = today + chrono::Duration::days(ahead);
        let (status, slots) = s.get(&format!("/api/v1/halls/{hall}/slots?service=YLGA0002&date={day}"), &citizen).await;
        assert_eq!(status, StatusCode::OK, "{slots}");
        if let Some(first) = slots.as_array().unwrap().first() {
            assert_eq!(first["capacity"], 2, "two windows take 居民身份证换领");
            slot = Some(first["start"].as_str().unwrap().to_string());
            break;
        }
    }
    let start = slot.expect("a working day within two weeks");
    let (status, bad) = s.get(&format!("/api/v1/halls/{hall}/slots?service=YLGA0002&date=tomorrow"), &citizen).await;
    assert_eq!((status, bad["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_field")));
    let (status, _) = s.get("/api/v1/halls/NO-SUCH-HALL/slots?service=YLGA0002&date=2026-12-01", &citizen).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let book = |body: Value| s.client.post(s.url("/api/v1/me/appointments")).bearer_auth(&citizen).json(&body).send();
    let r = book(json!({"hall": hall, "service": "YLGA0002", "start": start})).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let booked: Value = r.json().await.unwrap();
    let id = booked["id"].as_str().unwrap().to_string();
    assert_eq!((booked["status"].as_str(), booked["changeable"].as_bool()), (Some("booked"), Some(true)));
    let r = book(json!({"hall": hall, "service": "YLGA0002", "start": start})).await.unwrap();
    expect_error(r, StatusCode::CONFLICT, "already_booked").await;
    let r =
        s.client.get(s.url(&format!("/api/v1/me/appointments/{id}/ics"))).bearer_auth(&citizen).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/calendar"));
    assert!(r.text().await.unwrap().contains("SUMMARY:居民身份证换领"));
    let r = s
        .client
        .post(s.url(&format!("/api/v1/me/appointments/{id}/cancel")))
        .bearer_auth(&citizen)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (_, mine) = s.get("/api/v1/me/appointments", &citizen).await;
    assert_eq!(mine[0]["status"], "cancelled");
}

const REGISTRIES_IMC: &str = "eGovStack/GOV/90000009/digitalregistries";

/// The GovStack Digital Registries API as its published test suite calls it, on the fixture
/// loaded while the server runs: the Data API (both path spellings), myPersonalDataUsage from
/// the fixture's history and the real access log, and the Database API.
async fn govstack_registries_api(backend: Backend) {
    let s = Server::start(backend, &[]).await;
    let mut load = vec!["fixtures".to_string(), "load".into(), "govstack-registries".into()];
    load.extend(s.data_args());
    let (ok, out) = run(&load);
    assert!(ok && out.contains("23 records and 10 database descriptions loaded"), "{out}");

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
    let (status, _) = call(Method::PUT, &format!("{data}/update"), Some(update)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "Philip is Elsa now");
    let (_, by_new_key) =
        call(Method::POST, &format!("{data}/read"), Some(json!({"query": {"content": {"ID": "EE383838348834"}}})))
            .await;
    assert_eq!(by_new_key["content"]["LastName"], "West", "the key is indexed anew");
    let entries = json!({"query": {"content": {"LastName": "Johnson"}}, "write": {"content": {"FirstName": "Bob"}}});
    let (status, updated) = call(Method::PUT, &format!("{data}/update-entries"), Some(entries)).await;
    assert_eq!((status, updated["count"].as_u64()), (StatusCode::OK, Some(2)));
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
    assert_eq!(status, StatusCode::NOT_FOUND);

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
    let s = Server::start(backend, &[]).await;
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
