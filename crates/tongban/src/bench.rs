//! `tongban bench`: runs the real binary with the demo province on a free port and reports,
//! beside references measured in the same run:
//! - authenticated `GET /api/v1/me` throughput vs `GET /healthz` (target ≥ 50 %),
//! - idle RSS with the demo loaded (target ≤ 60 MB),
//! - time from restart on an existing data dir to 200 on /readyz (target ≤ 1 s).

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::body::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Seconds each throughput measurement runs.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Database for the measured server (default: SQLite in a temporary data dir).
    #[arg(long)]
    database_url: Option<String>,
}

struct Running {
    child: Child,
    base: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

async fn start(
    data_dir: &std::path::Path,
    database_url: Option<&str>,
    extra: &[&str],
    client: &Client<HttpConnector, Empty<Bytes>>,
) -> anyhow::Result<(Running, Duration)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"]).arg(data_dir);
    if let Some(url) = database_url {
        cmd.args(["--database-url", url]);
    }
    cmd.args(extra);
    let started = Instant::now();
    let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().context("starting tongban serve")?;
    let mut running = Running { child, base: format!("http://127.0.0.1:{port}") };
    loop {
        let uri: hyper::Uri = format!("{}/readyz", running.base).parse()?;
        if let Ok(r) = client.get(uri).await
            && r.status() == 200
        {
            return Ok((running, started.elapsed()));
        }
        if let Some(status) = running.child.try_wait()? {
            bail!("tongban serve exited with {status}");
        }
        if started.elapsed() > Duration::from_secs(120) {
            bail!("tongban serve was not ready within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).context("reading /proc (Linux only)")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmRSS not found")
}

async fn token(base: &str) -> anyhow::Result<String> {
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let body = serde_json::json!({"username": "citizen.demo", "password": crate::demo::DEMO_PASSWORD}).to_string();
    let req = hyper::Request::post(format!("{base}/api/v1/auth/token"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))?;
    let res = client.request(req).await?;
    let bytes = res.into_body().collect().await?.to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&bytes)?;
    v.get("access_token").and_then(|t| t.as_str()).map(str::to_string).context("no token in the sign-in answer")
}

/// Requests per second for `path` with `concurrency` keep-alive connections.
async fn throughput(
    base: &str,
    path: &str,
    bearer: Option<&str>,
    seconds: u64,
    concurrency: usize,
) -> anyhow::Result<f64> {
    let client: Client<HttpConnector, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let uri: hyper::Uri = format!("{base}{path}").parse()?;
    let auth = bearer.map(|t| format!("Bearer {t}"));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, done, failed, uri, auth) =
            (client.clone(), done.clone(), failed.clone(), uri.clone(), auth.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let mut req = hyper::Request::get(uri.clone());
                if let Some(a) = &auth {
                    req = req.header("authorization", a);
                }
                let Ok(req) = req.body(Empty::new()) else { break };
                match client.request(req).await {
                    Ok(res) if res.status() == 200 => {
                        let _ = res.into_body().collect().await;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    let started = Instant::now();
    for t in tasks {
        t.await?;
    }
    let failures = failed.load(Ordering::Relaxed);
    if failures > 0 {
        bail!("{failures} requests to {path} failed");
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let data = std::env::temp_dir().join(format!("tongban-bench-{}", uuid::Uuid::now_v7().simple()));
    let result = measure(&args, &data).await;
    let _ = std::fs::remove_dir_all(&data);
    result
}

async fn measure(args: &BenchArgs, data: &std::path::Path) -> anyhow::Result<()> {
    let client: Client<HttpConnector, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    println!("starting tongban serve with the demo province …");
    let (first, first_start) = start(data, args.database_url.as_deref(), &[], &client).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_rss_mib = rss_kib(first.child.id())? as f64 / 1024.0;
    let bearer = token(&first.base).await?;
    // Warm-up, then the reference either side of the measurement.
    throughput(&first.base, "/healthz", None, 1, args.concurrency).await?;
    let health_a = throughput(&first.base, "/healthz", None, args.seconds, args.concurrency).await?;
    let me = throughput(&first.base, "/api/v1/me", Some(&bearer), args.seconds, args.concurrency).await?;
    let health_b = throughput(&first.base, "/healthz", None, args.seconds, args.concurrency).await?;
    let health = (health_a + health_b) / 2.0;
    drop(first);
    // The restart also measures the uncached path: every request verifies its token in the
    // database.
    let (second, restart) = start(data, args.database_url.as_deref(), &["--auth-cache-seconds", "0"], &client).await?;
    let bearer = token(&second.base).await?;
    let me_uncached = throughput(&second.base, "/api/v1/me", Some(&bearer), args.seconds, args.concurrency).await?;
    let health_c = throughput(&second.base, "/healthz", None, args.seconds, args.concurrency).await?;

    println!();
    println!("| measure | value | reference (same run) | ratio | target |");
    println!("|---|---|---|---|---|");
    println!(
        "| authenticated GET /api/v1/me | {me:.0} req/s | GET /healthz {health:.0} req/s | {:.0} % | ≥ 50 % |",
        me / health * 100.0
    );
    println!(
        "| same, token cache off (every request hits the database) | {me_uncached:.0} req/s | GET /healthz {health_c:.0} req/s | {:.0} % | — |",
        me_uncached / health_c * 100.0
    );
    println!("| idle RSS, demo loaded | {idle_rss_mib:.1} MiB | — | — | ≤ 60 MB |");
    println!(
        "| restart to /readyz 200 | {:.0} ms | first start with demo seeding {:.0} ms | — | ≤ 1 s |",
        restart.as_secs_f64() * 1000.0,
        first_start.as_secs_f64() * 1000.0
    );
    Ok(())
}
