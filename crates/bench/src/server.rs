//! A tongban server started for a benchmark, what it uses (CPU seconds, resident memory), and
//! signing in to it.

use super::*;

pub(super) struct Running {
    pub(super) child: Child,
    pub(super) base: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

pub(super) async fn start(
    data_dir: &std::path::Path,
    database_url: Option<&str>,
    extra: &[&str],
    client: &Client<HttpConnector, Empty<Bytes>>,
) -> anyhow::Result<(Running, Duration)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut cmd = Command::new(tongban_binary()?);
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"]).arg(data_dir);
    if let Some(url) = database_url {
        cmd.args(["--database-url", url]);
    }
    cmd.args(extra);
    // The server's log is kept beside its data, so that a failed run can be explained.
    let log = std::fs::OpenOptions::new().create(true).append(true).open(data_dir.join("bench-server.log"))?;
    let started = Instant::now();
    let child = cmd.stdout(Stdio::null()).stderr(Stdio::from(log)).spawn().context("starting tongban serve")?;
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

/// CPU time a process has used, user and system, in seconds (Linux: `/proc/<pid>/stat`).
pub(super) fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).context("reading /proc (Linux only)")?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks: u64 = [11, 12].iter().filter_map(|i| fields.get(*i)?.parse::<u64>().ok()).sum();
    // Clock ticks are 1/100 s on Linux (USER_HZ).
    Ok(ticks as f64 / 100.0)
}

pub(super) fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).context("reading /proc (Linux only)")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmRSS not found")
}

/// The demo resident's token (no second factor).
pub(super) async fn token(base: &str) -> anyhow::Result<String> {
    sign_in(base, serde_json::json!({"username": "citizen.demo", "password": tongban::demo::DEMO_PASSWORD})).await
}

pub(super) async fn sign_in(base: &str, body: serde_json::Value) -> anyhow::Result<String> {
    let url = format!("{base}/api/v1/auth/token");
    let (status, v) = call("POST", &url, None, "application/json", body.to_string().into_bytes()).await?;
    if status != 200 {
        bail!("signing in answered {status}: {v}");
    }
    v.get("access_token").and_then(|t| t.as_str()).map(str::to_string).context("no token in the sign-in answer")
}

/// Requests per second for `path` with `concurrency` keep-alive connections.
pub(super) async fn throughput(
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

/// The measured binary: `--server`, else `tongban` in the directory of this executable
/// (`cargo build --release` puts both in target/release).
pub(super) fn tongban_binary() -> anyhow::Result<std::path::PathBuf> {
    if let Some(path) = SERVER.get() {
        return Ok(path.clone());
    }
    let me = std::env::current_exe()?;
    let dir = me.parent().context("the benchmark's own directory")?;
    Ok(dir.join(format!("tongban{}", std::env::consts::EXE_SUFFIX)))
}
