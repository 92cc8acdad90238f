//! End-to-end: the real `tongban` binary on a free port, driven over HTTP, on SQLite and on
//! PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::{Backend, Scratch, on_both_databases, totp_at};

mod accounts;
mod data_exchange;
mod govstack;
mod nodes;
mod platform;
mod service_hall;
mod voice;

const BIN: &str = env!("CARGO_BIN_EXE_tongban");

const PASSWORD: &str = tongban::demo::DEMO_PASSWORD;

const TOTP: &str = tongban::demo::DEMO_TOTP_SECRET;

/// A running `tongban serve`; killed and cleaned up on drop.
struct Server {
    child: Option<Child>,
    base: String,
    data: tempfile::TempDir,
    database_url: Option<String>,
    _scratch: Option<Scratch>,
    client: reqwest::Client,
    /// Another node's data directory this one shares (its keys and materials); `data` then
    /// holds only this node's log.
    shared: Option<PathBuf>,
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
            // A request the server never answers fails the test with its address, not a hang.
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            shared: None,
        };
        server.launch(extra).await;
        server
    }

    /// A second node on this one's database and data directory (PostgreSQL).
    async fn second_node(&self, extra: &[&str]) -> Server {
        let mut node = Server {
            child: None,
            base: String::new(),
            data: tempfile::tempdir().unwrap(),
            database_url: self.database_url.clone(),
            _scratch: None,
            client: self.client.clone(),
            shared: Some(self.data.path().to_path_buf()),
        };
        node.launch(extra).await;
        node
    }

    fn data_args(&self) -> Vec<String> {
        let dir = self.shared.clone().unwrap_or_else(|| self.data.path().to_path_buf());
        let mut args = vec!["--data-dir".to_string(), dir.display().to_string()];
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

    /// The demo resident signed in on the pages: the cookie header to send.
    async fn citizen_cookies(&self) -> String {
        let page = self.client.get(self.url("/signin")).send().await.unwrap();
        let anon = set_cookie_value(&page, "tb_csrf").unwrap();
        let r = self
            .client
            .post(self.url("/signin"))
            .header("cookie", format!("tb_csrf={anon}"))
            .form(&[("_csrf", anon.as_str()), ("username", "citizen.demo"), ("password", PASSWORD)])
            .send()
            .await
            .unwrap();
        let session = set_cookie_value(&r, "tb_session").unwrap();
        format!("tb_session={session}; tb_csrf={anon}")
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

    /// Registers a department's system for the exchange (as an administrator holding that
    /// power, `admin`'s token) and answers its secret, which is shown only this once.
    async fn exchange_client(&self, admin: &str, department: &str, name: &str) -> String {
        let r = self
            .client
            .post(self.url("/api/v1/exchange/clients"))
            .bearer_auth(admin)
            .json(&json!({"department": department, "mediator_client": name}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json::<Value>().await.unwrap()["secret"].as_str().unwrap().to_string()
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let r = self.client.get(self.url(path)).bearer_auth(token).send().await.unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A failing test shows what the server said.
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("server log {} (last lines):", self.base);
            tail.iter().rev().for_each(|line| eprintln!("{line}"));
        }
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

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

fn set_cookie_value(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers().get_all("set-cookie").iter().find_map(|c| {
        c.to_str().ok()?.strip_prefix(&format!("{name}=")).map(|v| v.split(';').next().unwrap_or("").to_string())
    })
}

fn run(args: &[String]) -> (bool, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}
