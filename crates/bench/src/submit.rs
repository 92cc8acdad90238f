//! Submitting applications over HTTP against durable single-row inserts, on one node and on
//! two.

use super::*;

/// One application of 临时救助申请 (YLMZ0005): validated against its form, prefilled from the
/// resident record, its sensitive fields sealed, its workflow started, one history row and one
/// ledger entry written, committed.
pub(super) const SUBMISSION: &str = r#"{"form": {"household_size": 3, "hardship_type": "illness", "monthly_income": 800,
    "hardship_description": "家人住院，医疗费用支出大", "agree": true}}"#;

pub(super) const SUBMIT_PATH: &str = "/api/v1/services/YLMZ0005/applications";

/// What a closed loop posts: to one path, the bodies in turn.
#[derive(Clone)]
pub(super) struct Posting {
    pub path: &'static str,
    pub bodies: Arc<Vec<Bytes>>,
}

impl Posting {
    /// The application of [`SUBMISSION`], again and again.
    pub(super) fn applications() -> Posting {
        Posting { path: SUBMIT_PATH, bodies: Arc::new(vec![Bytes::from_static(SUBMISSION.as_bytes())]) }
    }

    fn body(&self, n: usize) -> anyhow::Result<Bytes> {
        let i = n % self.bodies.len().max(1);
        self.bodies.get(i).cloned().context("nothing to post")
    }
}

pub(super) async fn submit_once(
    client: &Client<HttpConnector, Full<Bytes>>,
    uri: &hyper::Uri,
    auth: &str,
    body: Bytes,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let req = hyper::Request::post(uri.clone())
        .header("authorization", auth)
        .header("content-type", "application/json")
        .body(Full::new(body))?;
    let res = client.request(req).await?;
    let status = res.status();
    let body = res.into_body().collect().await?.to_bytes();
    if status != 201 {
        bail!("submission answered {status}: {}", String::from_utf8_lossy(&body));
    }
    Ok(started.elapsed())
}

/// Closed loop: as many submissions as `concurrency` connections can make, the connections
/// spread over the nodes at `bases` in turn.
pub(super) async fn submit_throughput(
    bases: &[&str],
    auth: &str,
    seconds: u64,
    concurrency: usize,
    posting: &Posting,
) -> anyhow::Result<f64> {
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let uris =
        bases.iter().map(|base| format!("{base}{}", posting.path).parse()).collect::<Result<Vec<hyper::Uri>, _>>()?;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (task, uri) in uris.iter().cycle().take(concurrency).enumerate() {
        let (client, uri, auth, posting) = (client.clone(), uri.clone(), auth.to_string(), posting.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                // Each connection starts elsewhere in the bodies.
                let body = posting.body(task * 7919 + usize::try_from(n)?)?;
                submit_once(&client, &uri, &auth, body).await?;
                n += 1;
            }
            anyhow::Ok(n)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    Ok(per_sec(total, started.elapsed()))
}

/// Open loop: one submission every `1/rate` s whatever the answers do; latencies in ms, sorted.
pub(super) async fn submit_at_rate(base: &str, auth: &str, seconds: u64, rate: u64) -> anyhow::Result<Vec<f64>> {
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let uri: hyper::Uri = format!("{base}{SUBMIT_PATH}").parse()?;
    let mut ticks = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate.max(1)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::new();
    for _ in 0..seconds * rate {
        ticks.tick().await;
        let (client, uri, auth) = (client.clone(), uri.clone(), auth.to_string());
        let body = Bytes::from_static(SUBMISSION.as_bytes());
        tasks.push(tokio::spawn(async move { submit_once(&client, &uri, &auth, body).await }));
    }
    let mut latencies = Vec::with_capacity(tasks.len());
    for t in tasks {
        latencies.push(t.await??.as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    Ok(latencies)
}

/// The reference: single-row inserts, each its own durable transaction, into the same kind of
/// database with the same settings, from `concurrency` tasks.
pub(super) async fn raw_inserts(url: &str, seconds: u64, concurrency: usize) -> anyhow::Result<f64> {
    let db = kernel::db::Db::connect(url).await?;
    sqlx::query("DROP TABLE IF EXISTS bench_raw_insert").execute(&db.pool).await?;
    sqlx::query("CREATE TABLE bench_raw_insert (id TEXT PRIMARY KEY, body TEXT NOT NULL, created_at BIGINT NOT NULL)")
        .execute(&db.pool)
        .await?;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let pool = db.pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                sqlx::query("INSERT INTO bench_raw_insert (id, body, created_at) VALUES ($1, $2, $3)")
                    .bind(kernel::db::new_id())
                    .bind(SUBMISSION)
                    .bind(kernel::db::millis(chrono::Utc::now()))
                    .execute(&pool)
                    .await?;
                n += 1;
            }
            anyhow::Ok(n)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    let rate = per_sec(total, started.elapsed());
    sqlx::query("DROP TABLE bench_raw_insert").execute(&db.pool).await?;
    Ok(rate)
}

/// 12345 intake over HTTP: each request validated, classified, compared with the open
/// requests of its place, routed, written with its workflow case and its ledger entry, and
/// committed; beside durable single-row inserts.
pub(super) async fn intake_bench(args: &BenchArgs, data: &std::path::Path) -> anyhow::Result<()> {
    let client: Client<HttpConnector, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    println!("starting tongban serve with the demo province for 12345 intake …");
    let (server, _) = start(data, args.database_url.as_deref(), &[], &client).await?;
    let bearer = token(&server.base).await?;
    let (status, me) = call("GET", &format!("{}/api/v1/me", server.base), Some(&bearer), "", Vec::new()).await?;
    let region = me.pointer("/region/code").and_then(|c| c.as_str()).context(format!("no region: {status} {me}"))?;
    // The held-out texts, as residents wrote them, all about the resident's own place.
    let bodies = voice::classifier::read_labelled(voice::HELD_OUT_SET)
        .map_err(|e| anyhow::anyhow!(e))?
        .into_iter()
        .map(|e| Bytes::from(serde_json::json!({"kind": "complaint", "text": e.text, "region": region}).to_string()))
        .collect();
    let posting = Posting { path: "/api/v1/voice/requests", bodies: Arc::new(bodies) };
    let auth = format!("Bearer {bearer}");
    submit_throughput(&[&server.base], &auth, 1, args.concurrency, &posting).await?;
    let sustained = submit_throughput(&[&server.base], &auth, args.seconds, args.concurrency, &posting).await?;
    drop(server);
    let (raw, backend) = raw_reference(args, data).await?;
    println!();
    println!("| 12345 intake ({backend}) | value | reference (same run) | ratio | target |");
    println!("|---|---|---|---|---|");
    println!(
        "| requests over HTTP, {} connections | {sustained:.0} /s | durable single-row inserts {raw:.0} /s | {:.0} % | ≥ 30 % |",
        args.concurrency,
        sustained / raw * 100.0
    );
    Ok(())
}

/// The reference of a submission measurement: durable single-row inserts into the same kind
/// of database (per second), and the database's name.
async fn raw_reference(args: &BenchArgs, data: &std::path::Path) -> anyhow::Result<(f64, &'static str)> {
    let raw_url = match &args.database_url {
        Some(url) => url.clone(),
        None => format!("sqlite://{}?mode=rwc", data.join("raw-insert.db").display()),
    };
    let raw = raw_inserts(&raw_url, args.seconds, args.concurrency).await?;
    Ok((raw, if raw_url.starts_with("postgres") { "PostgreSQL" } else { "SQLite" }))
}

pub(super) fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(f64::NAN)
}

pub(super) async fn submit_bench(args: &BenchArgs, data: &std::path::Path) -> anyhow::Result<()> {
    let client: Client<HttpConnector, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    println!("starting tongban serve with the demo province for submissions …");
    let (server, _) = start(data, args.database_url.as_deref(), &[], &client).await?;
    let auth = format!("Bearer {}", token(&server.base).await?);
    let posting = Posting::applications();
    submit_throughput(&[&server.base], &auth, 1, args.concurrency, &posting).await?;
    let sustained = submit_throughput(&[&server.base], &auth, args.seconds, args.concurrency, &posting).await?;
    let latencies = submit_at_rate(&server.base, &auth, args.seconds, 500).await?;
    drop(server);
    let (raw, backend) = raw_reference(args, data).await?;
    println!();
    println!("| submissions ({backend}) | value | reference (same run) | ratio | target (SQLite) |");
    println!("|---|---|---|---|---|");
    println!(
        "| sustained submissions over HTTP, {} connections | {sustained:.0} /s | durable single-row inserts {raw:.0} /s | {:.0} % | ≥ 2,000 /s and ≥ 40 % |",
        args.concurrency,
        sustained / raw * 100.0
    );
    println!(
        "| latency at 500 submissions/s ({} requests) | p50 {:.1} ms, p99 {:.1} ms | — | — | p99 ≤ 25 ms |",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );
    Ok(())
}

/// Submissions per second on one node, then on two nodes of the same PostgreSQL sharing its
/// data dir (secrets, uploads), the same connections spread over both.
pub(super) async fn nodes_bench(args: &BenchArgs, data: &std::path::Path) -> anyhow::Result<()> {
    let url = args
        .database_url
        .as_deref()
        .filter(|u| u.starts_with("postgres"))
        .context("--only nodes needs --database-url postgres://…: the nodes share one PostgreSQL")?;
    let client: Client<HttpConnector, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    println!("starting a first tongban serve node on PostgreSQL with the demo province …");
    let (first, _) = start(data, Some(url), &[], &client).await?;
    let auth = format!("Bearer {}", token(&first.base).await?);
    let posting = Posting::applications();
    submit_throughput(&[&first.base], &auth, 1, args.concurrency, &posting).await?;
    let one = submit_throughput(&[&first.base], &auth, args.seconds, args.concurrency, &posting).await?;
    println!("starting a second node on the same database …");
    let (second, _) = start(data, Some(url), &[], &client).await?;
    submit_throughput(&[&second.base], &auth, 1, args.concurrency, &posting).await?;
    let two = submit_throughput(&[&first.base, &second.base], &auth, args.seconds, args.concurrency, &posting).await?;
    drop((first, second));
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!();
    println!("| submissions on PostgreSQL | one node | two nodes (same run) | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| sustained over HTTP, {} connections, {cores} cores for nodes, database and client | {one:.0} /s | {two:.0} /s | {:.0} % |",
        args.concurrency,
        two / one * 100.0
    );
    Ok(())
}
