//! Exchange reads and verifications over HTTP against plain reads of the same rows.

use super::*;

/// A JSON request with an optional bearer token: (status, body).
pub(super) async fn call(
    method: &str,
    url: &str,
    bearer: Option<&str>,
    content_type: &str,
    body: Vec<u8>,
) -> anyhow::Result<(u16, serde_json::Value)> {
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut req = hyper::Request::builder().method(method).uri(url).header("content-type", content_type);
    if let Some(t) = bearer {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let res = client.request(req.body(Full::new(Bytes::from(body)))?).await?;
    let status = res.status().as_u16();
    let bytes = res.into_body().collect().await?.to_bytes();
    Ok((status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null)))
}

/// A demo staff member's token (password and a fresh TOTP code).
pub(super) async fn staff_token(base: &str, username: &str) -> anyhow::Result<String> {
    let secret = identity::mfa::secret_from_base32(tongban::demo::DEMO_TOTP_SECRET).context("demo secret")?;
    let code = identity::mfa::totp(&secret, username)?.generate(chrono::Utc::now().timestamp().unsigned_abs());
    sign_in(base, serde_json::json!({"username": username, "password": tongban::demo::DEMO_PASSWORD, "totp": code}))
        .await
}

/// Exchange reads over HTTP by a department system under granted agreements (agreement and
/// rate checks, the record found by its blind index, sealed values opened and masked, one
/// durable access entry per read), beside plain indexed reads of rows of the same size.
pub(super) async fn exchange_bench(args: &BenchArgs, data: &std::path::Path) -> anyhow::Result<()> {
    const RECORDS: u64 = 2_000;
    let client: Client<HttpConnector, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    println!("starting tongban serve with the demo province for exchange reads …");
    let (server, _) = start(data, args.database_url.as_deref(), &[], &client).await?;
    let base = server.base.clone();
    // The public-security bureau loads the records; the civil-affairs bureau reads them.
    let ga = staff_token(&base, "data.ga").await?;
    let (csv, keys) = population_csv(RECORDS);
    let url = format!("{base}/api/v1/exchange/registries/population/imports?file_name=bench.csv");
    let (status, started) = call("POST", &url, Some(&ga), "text/csv", csv.into_bytes()).await?;
    let status_url = started.get("status").and_then(|s| s.as_str()).context("import status")?.to_string();
    if status != 202 {
        bail!("import answered {status}: {started}");
    }
    loop {
        let (_, p) = call("GET", &format!("{base}{status_url}"), Some(&ga), "application/json", Vec::new()).await?;
        match p.get("status").and_then(|s| s.as_str()) {
            Some("running") => tokio::time::sleep(Duration::from_millis(100)).await,
            Some("done") => break,
            _ => bail!("import ended: {p}"),
        }
    }
    let mz = staff_token(&base, "data.mz").await?;
    // Four agreements, so that the per-agreement rate limit (100,000 a minute) is not what
    // is measured.
    let mut agreements = Vec::new();
    for i in 0..4 {
        let req = serde_json::json!({
            "registry": "population", "fields": ["sex", "birth_date", "region_code"],
            "purpose": format!("高龄津贴资格核对 {i}"), "legal_basis": "《老年人权益保障法》",
            "valid_days": 30, "rate_per_minute": 100_000,
        });
        let (status, a) = call(
            "POST",
            &format!("{base}/api/v1/exchange/agreements"),
            Some(&mz),
            "application/json",
            req.to_string().into_bytes(),
        )
        .await?;
        if status != 201 && status != 200 {
            bail!("the agreement answered {status}: {a}");
        }
        agreements.push(a.get("id").and_then(|v| v.as_str()).context("agreement id")?.to_string());
    }
    let mut cmd = Command::new(tongban_binary()?);
    cmd.args(["exchange", "client", "--department", "990000-MZ", "--mediator-client", "CN/GOV/990000MZ/bench"]);
    cmd.arg("--data-dir").arg(data);
    if let Some(u) = &args.database_url {
        cmd.args(["--database-url", u]);
    }
    let out = cmd.output()?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let secret =
        text.rsplit(": ").next().map(str::trim).filter(|s| !s.is_empty()).context("client secret")?.to_string();
    // A second of warm-up (compiled schemas, cached keys), then the measurement.
    let uri: hyper::Uri = format!("{base}/api/v1/exchange/read").parse()?;
    let headers = [("information-mediator-client", "CN/GOV/990000MZ/bench".to_string()), ("x-exchange-secret", secret)];
    let body = |i: usize| {
        serde_json::json!({
            "agreement": agreements.get(i % agreements.len().max(1)),
            "key": keys.get(i % keys.len().max(1)),
        })
        .to_string()
    };
    post_reads(&uri, &headers, &body, 1, args.concurrency).await?;
    let (cpu_before, started) = (cpu_seconds(server.child.id())?, Instant::now());
    let reads = post_reads(&uri, &headers, &body, args.seconds, args.concurrency).await?;
    let cpu_per_read = (cpu_seconds(server.child.id())? - cpu_before) / (reads * started.elapsed().as_secs_f64());
    drop(server);
    let plain_url = match &args.database_url {
        Some(url) => url.clone(),
        None => format!("sqlite://{}?mode=rwc", data.join("plain-read.db").display()),
    };
    let (plain_http, plain) = plain_reads(&plain_url, &keys, args.seconds, args.concurrency).await?;
    let backend = if plain_url.starts_with("postgres") { "PostgreSQL" } else { "SQLite" };
    println!();
    println!("| exchange reads ({backend}) | value | reference (same run) | ratio | target |");
    println!("|---|---|---|---|---|");
    println!(
        "| reads by blind-indexed ID over HTTP, {} connections (agreement checks, masking, an access entry each) | {reads:.0} /s | plain indexed row reads over HTTP {plain_http:.0} /s | {:.1} % | ≥ 30 % |",
        args.concurrency,
        reads / plain_http * 100.0
    );
    println!(
        "| same | {reads:.0} /s | plain indexed row reads in process, no HTTP {plain:.0} /s | {:.1} % | — |",
        reads / plain * 100.0
    );
    println!("| server CPU per read (user and system, all its threads) | {:.0} µs | — | — | — |", cpu_per_read * 1e6);
    Ok(())
}

/// POSTs JSON bodies (`body(i)` for the i-th request of a connection) to `uri` from
/// `concurrency` keep-alive connections for `seconds`; every answer must be a 200.
pub(super) async fn post_reads(
    uri: &hyper::Uri,
    headers: &[(&'static str, String)],
    body: &(dyn Fn(usize) -> String + Sync),
    seconds: u64,
    concurrency: usize,
) -> anyhow::Result<f64> {
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..concurrency {
        // Each connection walks the keys from its own place, with its bodies made up front
        // so that the loop measures the server, not the JSON.
        let bodies: Vec<Bytes> = (0..512).map(|n| Bytes::from(body(t.wrapping_mul(7919).wrapping_add(n)))).collect();
        let (client, uri, headers) = (client.clone(), uri.clone(), headers.to_vec());
        tasks.push(tokio::spawn(async move {
            let mut n = 0usize;
            while Instant::now() < deadline {
                let mut req = hyper::Request::post(uri.clone()).header("content-type", "application/json");
                for (name, value) in &headers {
                    req = req.header(*name, value);
                }
                let req = req.body(Full::new(bodies.get(n % bodies.len()).cloned().unwrap_or_default()))?;
                let res = client.request(req).await?;
                let status = res.status();
                let bytes = res.into_body().collect().await?.to_bytes();
                if status != 200 {
                    bail!("{uri} answered {status}: {}", String::from_utf8_lossy(&bytes));
                }
                n += 1;
            }
            anyhow::Ok(n as u64)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    Ok(per_sec(total, started.elapsed()))
}

/// The references: `SELECT … WHERE key = $1` on an indexed table of records of the same
/// size, answered over HTTP by a bare handler (no checks, no log) on a runtime of its own
/// as the platform's server has, and the same query in process without HTTP. Returns
/// (over HTTP, in process).
pub(super) async fn plain_reads(
    url: &str,
    keys: &[String],
    seconds: u64,
    concurrency: usize,
) -> anyhow::Result<(f64, f64)> {
    let db = kernel::db::Db::connect(url).await?;
    sqlx::query("DROP TABLE IF EXISTS bench_plain_read").execute(&db.pool).await?;
    sqlx::query("CREATE TABLE bench_plain_read (id TEXT PRIMARY KEY, key_index TEXT NOT NULL, body TEXT NOT NULL)")
        .execute(&db.pool)
        .await?;
    sqlx::query("CREATE INDEX bench_plain_read_key ON bench_plain_read (key_index)").execute(&db.pool).await?;
    let mut tx = db.pool.begin().await?;
    for k in keys {
        sqlx::query("INSERT INTO bench_plain_read (id, key_index, body) VALUES ($1, $2, $3)")
            .bind(kernel::db::new_id())
            .bind(k)
            .bind(format!(r#"{{"id_number":"{k}","sex":"1","birth_date":"1950-01-01","region_code":"990102"}}"#))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    let over_http = plain_reads_over_http(&db, keys, seconds, concurrency).await;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..concurrency {
        let (pool, keys) = (db.pool.clone(), keys.to_vec());
        tasks.push(tokio::spawn(async move {
            let mut n = 0usize;
            while Instant::now() < deadline {
                let key =
                    keys.get(t.wrapping_mul(7919).wrapping_add(n) % keys.len().max(1)).cloned().unwrap_or_default();
                if plain_read(&pool, key).await?.is_none() {
                    bail!("a plain read found nothing");
                }
                n += 1;
            }
            anyhow::Ok(n as u64)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    let in_process = per_sec(total, started.elapsed());
    sqlx::query("DROP TABLE bench_plain_read").execute(&db.pool).await?;
    db.close().await;
    Ok((over_http?, in_process))
}

pub(super) async fn plain_read(pool: &sqlx::AnyPool, key: String) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT body FROM bench_plain_read WHERE key_index = $1").bind(key).fetch_optional(pool).await
}

/// The plain read as `POST /read {"key": …}`, served by axum on a runtime of its own.
pub(super) async fn plain_reads_over_http(
    db: &kernel::db::Db,
    keys: &[String],
    seconds: u64,
    concurrency: usize,
) -> anyhow::Result<f64> {
    #[derive(serde::Deserialize)]
    struct Key {
        key: String,
    }
    async fn read(
        axum::extract::State(pool): axum::extract::State<sqlx::AnyPool>,
        axum::Json(k): axum::Json<Key>,
    ) -> Result<([(axum::http::HeaderName, &'static str); 1], String), axum::http::StatusCode> {
        match plain_read(&pool, k.key).await {
            Ok(Some(body)) => Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], body)),
            Ok(None) => Err(axum::http::StatusCode::NOT_FOUND),
            Err(_) => Err(axum::http::StatusCode::INTERNAL_SERVER_ERROR),
        }
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let uri: hyper::Uri = format!("http://{}/read", listener.local_addr()?).parse()?;
    let app = axum::Router::new().route("/read", axum::routing::post(read)).with_state(db.pool.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || -> anyhow::Result<()> {
        tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            axum::serve(listener, app).with_graceful_shutdown(async move { stopped.await.unwrap_or(()) }).await?;
            anyhow::Ok(())
        })
    });
    let body = |i: usize| serde_json::json!({ "key": keys.get(i % keys.len().max(1)) }).to_string();
    let measured = async {
        post_reads(&uri, &[], &body, 1, concurrency).await?;
        post_reads(&uri, &[], &body, seconds, concurrency).await
    }
    .await;
    let _ = stop.send(());
    server.join().map_err(|_| anyhow::anyhow!("the reference server panicked"))??;
    measured
}
