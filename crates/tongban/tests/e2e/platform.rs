//! Running the platform: health, metrics and OpenAPI, bad input, restart, configuration, HTTPS, the ledger's proofs and tampering, backup and restore.

use super::*;

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
        // Without a token /api/v1/me is refused; the security headers come on refusals too.
        let expected = if path == "/api/v1/me" { StatusCode::UNAUTHORIZED } else { StatusCode::OK };
        assert_eq!(r.status(), expected, "{path}");
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
    for c in tongban_http::error::ErrorCode::all() {
        assert!(codes.iter().any(|x| x == c.as_str()), "{}", c.as_str());
    }
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
    use ledger::merkle;
    use ledger::note::{Checkpoint, NoteVerifier, verify};
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
        StatusCode::NOT_FOUND,
        "not_found",
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
    // A resident's uploaded material, which lives on disk beside the database.
    let pdf = b"%PDF-1.7 the birth certificate of a restore drill".to_vec();
    let r = s
        .client
        .post(s.url(
            "/api/v1/documents?filename=birth.pdf&material=%E5%87%BA%E7%94%9F%E5%8C%BB%E5%AD%A6%E8%AF%81%E6%98%8E",
        ))
        .bearer_auth(s.citizen_token().await)
        .body(pdf.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let sha = r.json::<Value>().await.unwrap()["sha256"].as_str().unwrap().to_string();
    let stored = s.data.path().join("documents").join(&sha[..2]).join(&sha);
    assert_eq!(std::fs::read(&stored).unwrap(), pdf);
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
    let materials = manifest["documents"].as_array().unwrap();
    assert!(materials.iter().any(|d| d["sha256"] == sha.as_str()), "the material is in the manifest: {manifest}");
    assert_eq!(std::fs::read(out.join("documents").join(&sha[..2]).join(&sha)).unwrap(), pdf);
    // A second backup into the same directory is refused rather than mixed in.
    let (ok, text) = run(&with(&["backup", "--out", &out.display().to_string()]));
    assert!(!ok && text.contains("not empty"), "{text}");
    // The platform goes on, and signs checkpoints beyond the first backup's.
    s.token("clerk.qinghu").await;
    let later = s.data.path().join("backup-2");
    let (ok, text) = run(&with(&["backup", "--out", &later.display().to_string()]));
    assert!(ok, "{text}");
    assert!(s.stop());

    // Going back to the first backup over the database that signed them would fork the
    // ledger: refused unless accepted, and then recorded.
    let (ok, text) = run(&with(&["restore", "--from", &out.display().to_string()]));
    assert!(!ok && text.contains("fork the ledger") && text.contains("audit back from"), "{text}");
    let (ok, text) = run(&with(&["restore", "--from", &out.display().to_string(), "--accept-fork"]));
    assert!(ok && text.contains("FORK: audit back from"), "{text}");
    let url =
        s.database_url.clone().unwrap_or_else(|| format!("sqlite://{}", s.data.path().join("tongban.db").display()));
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    let recorded: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM ledger_entries WHERE log = 'audit' AND action = 'ledger_fork_accepted'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    assert!(recorded >= 1, "the fork is on the audit trail");

    // A damaged copy is refused before anything is replaced.
    let damaged = s.data.path().join("backup-damaged");
    std::fs::create_dir(&damaged).unwrap();
    fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
        std::fs::create_dir_all(to).unwrap();
        for f in std::fs::read_dir(from).unwrap() {
            let f = f.unwrap().path();
            let target = to.join(f.file_name().unwrap());
            if f.is_dir() { copy_tree(&f, &target) } else { std::fs::copy(&f, target).map(|_| ()).unwrap() }
        }
    }
    copy_tree(&out, &damaged);
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
    // And one whose material was changed.
    std::fs::write(damaged.join("manifest.json"), serde_json::to_string(&manifest).unwrap()).unwrap();
    std::fs::write(&file, std::fs::read(out.join(manifest["files"][0]["name"].as_str().unwrap())).unwrap()).unwrap();
    std::fs::write(damaged.join("documents").join(&sha[..2]).join(&sha), b"%PDF-1.7 something else").unwrap();
    let (ok, text) = run(&with(&["restore", "--from", &damaged.display().to_string()]));
    assert!(!ok && text.contains("damaged") && text.contains(&sha), "{text}");

    // Destroy the database and the materials.
    std::fs::remove_dir_all(s.data.path().join("documents")).unwrap();
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
    assert!(text.contains(&format!("{n} of {n} material(s) copied back", n = materials.len())), "{text}");
    assert_eq!(std::fs::read(&stored).unwrap(), pdf, "the material is back");
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

on_both_databases!(
    health_metrics_and_openapi,
    bad_input_gets_a_clear_4xx,
    graceful_shutdown_and_quick_restart,
    restore_drill,
    ledger_proves_and_catches_tampering,
);
