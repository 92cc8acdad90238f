//! `tongban-bench`: runs the real `tongban` binary (the one beside this one, or `--server`) with the demo province on a free port and reports,
//! beside references measured in the same run:
//! - authenticated `GET /api/v1/me` throughput vs `GET /healthz` (target ≥ 50 %),
//! - idle RSS with the demo loaded (target ≤ 60 MB),
//! - time from restart on an existing data dir to 200 on /readyz (target ≤ 1 s);
//! - sustained application submissions over HTTP vs durable single-row inserts into the same
//!   database (SQLite targets: ≥ 2,000/s, p99 ≤ 25 ms at 500/s, ≥ 40 % of the raw rate);
//! - exchange reads by blind-indexed ID over HTTP (agreement checks, masking, an access entry
//!   each) vs plain indexed row reads of the same database over HTTP (target ≥ 30 %), and in
//!   process for comparison;
//! - bulk import of generated population records (target ≥ 20,000 rows/s on SQLite).

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

#[derive(clap::Parser, Debug)]
#[command(name = "tongban-bench", about = "Benchmarks of tongban, each beside its reference from the same run")]
pub struct BenchArgs {
    /// The `tongban` binary to measure (default: the one beside `tongban-bench`).
    #[arg(long, value_name = "FILE")]
    server: Option<std::path::PathBuf>,
    /// Seconds each throughput measurement runs.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Database for the measured server (default: SQLite in a temporary data dir).
    #[arg(long)]
    database_url: Option<String>,
    /// Which measurements: http, submit, nodes (PostgreSQL only), ledger, protect, import,
    /// exchange or all.
    #[arg(long, default_value = "all")]
    only: String,
    /// Ledger size for the proof and verification measurements (the issue's targets are
    /// given at 1M and 10M).
    #[arg(long, default_value_t = 10_000_000)]
    ledger_entries: u64,
    /// Generated population records for the registry import measurement.
    #[arg(long, default_value_t = 1_000_000)]
    import_rows: u64,
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
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).context("reading /proc (Linux only)")?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks: u64 = [11, 12].iter().filter_map(|i| fields.get(*i)?.parse::<u64>().ok()).sum();
    // Clock ticks are 1/100 s on Linux (USER_HZ).
    Ok(ticks as f64 / 100.0)
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).context("reading /proc (Linux only)")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmRSS not found")
}

/// The demo resident's token (no second factor).
async fn token(base: &str) -> anyhow::Result<String> {
    sign_in(base, serde_json::json!({"username": "citizen.demo", "password": tongban::demo::DEMO_PASSWORD})).await
}

async fn sign_in(base: &str, body: serde_json::Value) -> anyhow::Result<String> {
    let url = format!("{base}/api/v1/auth/token");
    let (status, v) = call("POST", &url, None, "application/json", body.to_string().into_bytes()).await?;
    if status != 200 {
        bail!("signing in answered {status}: {v}");
    }
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

// mimalloc, as in the measured binary, so the in-process figures compare.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let args = <BenchArgs as clap::Parser>::parse();
    sqlx::any::install_default_drivers();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The measured binary: `--server`, else `tongban` in the directory of this executable
/// (`cargo build --release` puts both in target/release).
fn tongban_binary() -> anyhow::Result<std::path::PathBuf> {
    if let Some(path) = SERVER.get() {
        return Ok(path.clone());
    }
    let me = std::env::current_exe()?;
    let dir = me.parent().context("the benchmark's own directory")?;
    Ok(dir.join(format!("tongban{}", std::env::consts::EXE_SUFFIX)))
}

static SERVER: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

async fn run(mut args: BenchArgs) -> anyhow::Result<()> {
    if let Some(server) = args.server.take() {
        SERVER.set(server).ok();
    }
    let all = args.only == "all";
    if !["all", "http", "submit", "nodes", "ledger", "protect", "import", "exchange"].contains(&args.only.as_str()) {
        bail!("--only takes http, submit, nodes, ledger, protect, import, exchange or all");
    }
    if all || args.only == "http" {
        let data = scratch_dir()?;
        keep_on_failure(measure(&args, &data).await, &data)?;
    }
    if all || args.only == "submit" {
        let data = scratch_dir()?;
        keep_on_failure(submit_bench(&args, &data).await, &data)?;
    }
    // Two nodes need a database both reach: with PostgreSQL only.
    let on_postgres = args.database_url.as_deref().is_some_and(|u| u.starts_with("postgres"));
    if args.only == "nodes" || (all && on_postgres) {
        let data = scratch_dir()?;
        keep_on_failure(nodes_bench(&args, &data).await, &data)?;
    }
    if all || args.only == "ledger" {
        ledger_bench(args.ledger_entries).await?;
    }
    if all || args.only == "protect" {
        protect_bench().await?;
    }
    if all || args.only == "exchange" {
        let data = scratch_dir()?;
        keep_on_failure(exchange_bench(&args, &data).await, &data)?;
    }
    if all || args.only == "import" {
        let data = scratch_dir()?;
        let result = import_bench(&args, &data).await;
        let _ = std::fs::remove_dir_all(&data);
        result?;
    }
    Ok(())
}

/// Bulk import of generated population records (CSV) into the population registry: each
/// row typed, validated against the schema, four fields sealed, the ID number blind-indexed,
/// durably committed in batches.
async fn import_bench(args: &BenchArgs, data: &std::path::Path) -> anyhow::Result<()> {
    use kernel::authz::RegistryManage;
    let url = match &args.database_url {
        Some(u) => u.clone(),
        None => format!("sqlite://{}?mode=rwc", data.join("import.db").display()),
    };
    let db = kernel::db::Db::connect(&url).await?;
    db.migrate().await?;
    let key = kernel::secrets::MasterKey::from_bytes([7u8; 32]);
    let identity = identity::Identity::new(db.clone(), key.clone(), Default::default());
    let now = chrono::Utc::now();
    identity.protector().ensure_key(now).await?;
    let console = identity.console(&key)?;
    let org = console.grant::<kernel::authz::OrganisationManage>();
    let mut tx = db.begin().await?;
    identity.organisation().create_region(&mut tx, &org, "990000", "云岭省", None, now).await?;
    let dept =
        identity::NewDepartment { code: "990000-GA", name: "公安厅", region_code: "990000", kind: Some("GA") };
    identity.organisation().create_department(&mut tx, &org, dept, now).await?;
    tx.commit().await?;
    let exchange = exchange::Exchange::new(db.clone(), identity, &key);
    let manage = console.grant::<RegistryManage>();
    let population =
        tongban::demo::registry_specs()?.into_iter().find(|s| s.code == "population").context("population spec")?;
    exchange.registries().publish_registry(&manage, population, now).await?;
    let (csv, _) = population_csv(args.import_rows);
    let table = exchange::Table::read(csv.into_bytes())?;
    let mode = exchange::ImportMode::SkipBadRows;
    let started = Instant::now();
    let report = exchange.imports().import(&manage, "population", "bench.csv", table, mode, now, &|_, _| {}).await?;
    let took = started.elapsed();
    println!();
    println!("| registry import ({}) | value | target |", db.backend.name());
    println!("|---|---|---|");
    println!(
        "| {} generated population rows (validate, seal 4 fields, blind index, durable batches) | {:.0} rows per second ({} imported, {} rejected, {:.1} s) | ≥ 20,000 rows per second on SQLite |",
        report.total_rows,
        per_sec(report.total_rows, took),
        report.imported,
        report.rejected,
        took.as_secs_f64()
    );
    db.close().await;
    Ok(())
}

/// `n` generated population rows as CSV, and their ID numbers.
fn population_csv(n: u64) -> (String, Vec<String>) {
    let mut csv = String::with_capacity(usize::try_from(n).unwrap_or(0).saturating_mul(120));
    let mut ids = Vec::new();
    csv.push_str("id_number,name,sex,birth_date,region_code,address,mobile\n");
    for i in 0..n {
        let birth = chrono::NaiveDate::from_ymd_opt(1940, 1, 1).unwrap_or_default()
            + chrono::Duration::days((i % 25_000) as i64);
        let body = format!("990102{}{:03}", birth.format("%Y%m%d"), i % 1000);
        let check = identity::ids::resident_id_check(&body).unwrap_or('0');
        csv.push_str(&format!(
            "{body}{check},居民{i},{},{birth},990102,春城市明月区东风街道{}号,13{:09}\n",
            if i % 2 == 0 { "1" } else { "2" },
            i % 500,
            i
        ));
        if ids.len() < 10_000 {
            ids.push(format!("{body}{check}"));
        }
    }
    (csv, ids)
}

fn scratch_dir() -> anyhow::Result<std::path::PathBuf> {
    let data = std::env::temp_dir().join(format!("tongban-bench-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&data)?;
    Ok(data)
}

/// Removes a measurement's data dir when it succeeded; keeps it, with the server's log, when not.
fn keep_on_failure(result: anyhow::Result<()>, data: &std::path::Path) -> anyhow::Result<()> {
    match result {
        Ok(()) => {
            let _ = std::fs::remove_dir_all(data);
            Ok(())
        }
        Err(e) => Err(e.context(format!("the server's log is {}", data.join("bench-server.log").display()))),
    }
}

fn per_sec(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

/// Typical audit entries (canonical JSON, ~250 bytes).
fn sample_entries(n: u64) -> Result<Vec<Vec<u8>>, serde_json::Error> {
    let now = chrono::Utc::now();
    (0..n)
        .map(|i| {
            let mut e = ledger::Entry::new(kernel::audit::Action::ResidentRead, kernel::audit::Outcome::Success, now);
            e.actor = Some(format!("01a1fd88-{i:04x}-7000-8000-000000000000"));
            e.actor_name = Some("clerk.mingyue".into());
            e.object = Some(format!("resident:{i}"));
            e.subject = Some(format!("01a1fd88-{:04x}-7000-8000-000000000001", i % 9973));
            e.jurisdiction = Some("/990000/990100/990102/".into());
            e.canonical()
        })
        .collect()
}

async fn ledger_bench(big: u64) -> anyhow::Result<()> {
    use ledger::merkle::{self, Frontier, MemoryTree};
    use sha2::{Digest, Sha256};
    println!();
    println!("| ledger | value | reference (same run) | ratio | target |");
    println!("|---|---|---|---|---|");
    // 1. Appending: leaf hash plus every interior hash it completes, vs one raw SHA-256 of
    //    the same bytes.
    let entries = sample_entries(1_000_000)?;
    let bytes: u64 = entries.iter().map(|e| e.len() as u64).sum();
    let started = Instant::now();
    let mut sink = 0u8;
    for e in &entries {
        sink ^= Sha256::digest(e).first().copied().unwrap_or(0);
    }
    let raw = started.elapsed();
    let started = Instant::now();
    let mut f = Frontier::default();
    for e in &entries {
        let _ = f.push(merkle::leaf_hash(e));
    }
    let root = f.root();
    let tree = started.elapsed();
    sink ^= root.first().copied().unwrap_or(0);
    println!(
        "| append 1M entries to the tree ({} MB) | {:.0} entries/s | raw SHA-256 of the bytes {:.0} entries/s | {:.0} % | ≥ 50 % |",
        bytes / 1_000_000,
        per_sec(1_000_000, tree),
        per_sec(1_000_000, raw),
        raw.as_secs_f64() / tree.as_secs_f64() * 100.0
    );
    // Appends through the database, batched 1,000 per transaction (what the platform does
    // under load), on SQLite in a temporary directory.
    let dir = std::env::temp_dir().join(format!("tongban-bench-ledger-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir)?;
    let db = kernel::db::Db::connect(&format!("sqlite://{}?mode=rwc", dir.join("b.db").display())).await?;
    db.migrate().await?;
    let n_db = 100_000u64;
    let decoded: Vec<ledger::Entry> =
        entries.iter().take(n_db as usize).filter_map(|e| serde_json::from_slice(e).ok()).collect();
    let started = Instant::now();
    for chunk in decoded.chunks(1000) {
        let mut tx = db.begin().await?;
        for e in chunk {
            ledger::append(&mut tx, ledger::Log::Public, e).await?;
        }
        tx.commit().await?;
    }
    let db_time = started.elapsed();
    let raw_100k: f64 = raw.as_secs_f64() * (n_db as f64 / 1_000_000.0);
    println!(
        "| append 100k entries through SQLite, 1,000 per transaction | {:.0} entries/s | raw SHA-256 {:.0} entries/s | {:.1} % | — |",
        per_sec(n_db, db_time),
        per_sec(1_000_000, raw),
        raw_100k / db_time.as_secs_f64() * 100.0
    );
    db.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    drop(entries);

    // 2. Proofs and verification at scale, over the tree's hashes held in memory (the form
    //    tiles take): build once, then time proof generation.
    let entry = |i: u64| {
        // The shape and size (~270 bytes) of a real audit entry.
        format!(
            "{{\"action\":\"resident_read\",\"actor\":\"01a1fd88-{i:08x}-7000-8000\",\"actor_name\":\"clerk.mingyue\",\
             \"at\":\"2026-11-21T10:00:00.000Z\",\"jurisdiction\":\"/990000/990100/990102/\",\"object\":\"resident:{i}\",\
             \"request_id\":\"01a1fd88-0000-7000-8000-{i:012x}\",\"result\":\"success\",\"subject\":\"01a1fd88-{:08x}\"}}",
            i % 9973
        )
    };
    let mut sizes = vec![1_000_000u64];
    if big != 1_000_000 {
        sizes.push(big);
    }
    for size in sizes {
        let started = Instant::now();
        let mut t = MemoryTree::new();
        for i in 0..size {
            t.push(merkle::leaf_hash(entry(i).as_bytes()));
        }
        let built = started.elapsed();
        let mut subtree = |h: u32, i: u64| t.subtree(h, i);
        let rounds = 10_000u64;
        let started = Instant::now();
        for k in 0..rounds {
            let index = (k * 7919) % size;
            let p = merkle::inclusion_proof(index, size, &mut subtree);
            sink ^= p.and_then(|p| p.first().map(|h| h[0])).unwrap_or(0);
        }
        let inclusion = started.elapsed() / u32::try_from(rounds).unwrap_or(1);
        let started = Instant::now();
        for k in 0..rounds {
            let m = 1 + (k * 104_729) % (size - 1);
            let p = merkle::consistency_proof(m, size, &mut subtree);
            sink ^= p.and_then(|p| p.first().map(|h| h[0])).unwrap_or(0);
        }
        let consistency = started.elapsed() / u32::try_from(rounds).unwrap_or(1);
        println!(
            "| inclusion proof at {size} entries | {:.1} µs | tree built in {:.1} s | — | ≤ 50 µs |",
            inclusion.as_secs_f64() * 1e6,
            built.as_secs_f64()
        );
        println!(
            "| consistency proof at {size} entries | {:.1} µs | — | — | ≤ 50 µs |",
            consistency.as_secs_f64() * 1e6
        );
        if size == big || big == 1_000_000 {
            // Verification recomputes leaf and interior hashes and compares roots; the
            // reference is hashing every entry once.
            let started = Instant::now();
            for i in 0..size {
                sink ^= merkle::leaf_hash(entry(i).as_bytes()).first().copied().unwrap_or(0);
            }
            let leaves_hashed = started.elapsed();
            let started = Instant::now();
            let mut f = Frontier::default();
            for i in 0..size {
                let _ = f.push(merkle::leaf_hash(entry(i).as_bytes()));
            }
            let verify = started.elapsed();
            sink ^= u8::from(f.root() == t.root_at(size));
            println!(
                "| verify {size} entries (recompute the tree) | {:.1} s | hashing them once {:.1} s | {:.2}× | ≤ 2× |",
                verify.as_secs_f64(),
                leaves_hashed.as_secs_f64(),
                verify.as_secs_f64() / leaves_hashed.as_secs_f64().max(1e-9)
            );
        }
    }
    std::hint::black_box(sink);
    Ok(())
}

async fn protect_bench() -> anyhow::Result<()> {
    println!();
    println!("| protect | value | target |");
    println!("|---|---|---|");
    let dir = std::env::temp_dir().join(format!("tongban-bench-protect-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir)?;
    let db = kernel::db::Db::connect(&format!("sqlite://{}?mode=rwc", dir.join("p.db").display())).await?;
    db.migrate().await?;
    let p = protect::Protector::new(db.clone(), kernel::secrets::MasterKey::from_bytes([9u8; 32]));
    p.ensure_key(chrono::Utc::now()).await?;
    let n = 1_000_000u64;
    let ids: Vec<String> = (0..n)
        .map(|i| {
            let body = format!("990102{}{:03}", 19_400_101 + (i % 600_000), i % 1000);
            let check = identity::ids::resident_id_check(&body).unwrap_or('0');
            format!("{body}{check}")
        })
        .collect();
    // One core: this loop runs on one task.
    let started = Instant::now();
    let mut sink = 0usize;
    for (i, id) in ids.iter().enumerate() {
        let sealed = p.seal(id, &format!("citizens.id_number:{i}")).await?;
        let index = p.blind_index("id_number", id);
        sink ^= sealed.len() ^ index.len();
    }
    let took = started.elapsed();
    std::hint::black_box(sink);
    println!(
        "| seal (AES-256-GCM) and blind-index (HMAC-SHA-256) 1M ID numbers, one core | {:.0} per second | ≥ 200,000 per second |",
        per_sec(n, took)
    );
    db.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
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

/// One application of 临时救助申请 (YLMZ0005): validated against its form, prefilled from the
/// resident record, its sensitive fields sealed, its workflow started, one history row and one
/// ledger entry written, committed.
const SUBMISSION: &str = r#"{"form": {"household_size": 3, "hardship_type": "illness", "monthly_income": 800,
    "hardship_description": "家人住院，医疗费用支出大", "agree": true}}"#;
const SUBMIT_PATH: &str = "/api/v1/services/YLMZ0005/applications";

async fn submit_once(
    client: &Client<HttpConnector, Full<Bytes>>,
    uri: &hyper::Uri,
    auth: &str,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let req = hyper::Request::post(uri.clone())
        .header("authorization", auth)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(SUBMISSION.as_bytes())))?;
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
async fn submit_throughput(bases: &[&str], auth: &str, seconds: u64, concurrency: usize) -> anyhow::Result<f64> {
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let uris =
        bases.iter().map(|base| format!("{base}{SUBMIT_PATH}").parse()).collect::<Result<Vec<hyper::Uri>, _>>()?;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for uri in uris.iter().cycle().take(concurrency) {
        let (client, uri, auth) = (client.clone(), uri.clone(), auth.to_string());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                submit_once(&client, &uri, &auth).await?;
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
async fn submit_at_rate(base: &str, auth: &str, seconds: u64, rate: u64) -> anyhow::Result<Vec<f64>> {
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let uri: hyper::Uri = format!("{base}{SUBMIT_PATH}").parse()?;
    let mut ticks = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate.max(1)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::new();
    for _ in 0..seconds * rate {
        ticks.tick().await;
        let (client, uri, auth) = (client.clone(), uri.clone(), auth.to_string());
        tasks.push(tokio::spawn(async move { submit_once(&client, &uri, &auth).await }));
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
async fn raw_inserts(url: &str, seconds: u64, concurrency: usize) -> anyhow::Result<f64> {
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

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(f64::NAN)
}

async fn submit_bench(args: &BenchArgs, data: &std::path::Path) -> anyhow::Result<()> {
    let client: Client<HttpConnector, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    println!("starting tongban serve with the demo province for submissions …");
    let (server, _) = start(data, args.database_url.as_deref(), &[], &client).await?;
    let auth = format!("Bearer {}", token(&server.base).await?);
    submit_throughput(&[&server.base], &auth, 1, args.concurrency).await?;
    let sustained = submit_throughput(&[&server.base], &auth, args.seconds, args.concurrency).await?;
    let latencies = submit_at_rate(&server.base, &auth, args.seconds, 500).await?;
    drop(server);
    let raw_url = match &args.database_url {
        Some(url) => url.clone(),
        None => format!("sqlite://{}?mode=rwc", data.join("raw-insert.db").display()),
    };
    let raw = raw_inserts(&raw_url, args.seconds, args.concurrency).await?;
    let backend = if raw_url.starts_with("postgres") { "PostgreSQL" } else { "SQLite" };
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
async fn nodes_bench(args: &BenchArgs, data: &std::path::Path) -> anyhow::Result<()> {
    let url = args
        .database_url
        .as_deref()
        .filter(|u| u.starts_with("postgres"))
        .context("--only nodes needs --database-url postgres://…: the nodes share one PostgreSQL")?;
    let client: Client<HttpConnector, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    println!("starting a first tongban serve node on PostgreSQL with the demo province …");
    let (first, _) = start(data, Some(url), &[], &client).await?;
    let auth = format!("Bearer {}", token(&first.base).await?);
    submit_throughput(&[&first.base], &auth, 1, args.concurrency).await?;
    let one = submit_throughput(&[&first.base], &auth, args.seconds, args.concurrency).await?;
    println!("starting a second node on the same database …");
    let (second, _) = start(data, Some(url), &[], &client).await?;
    submit_throughput(&[&second.base], &auth, 1, args.concurrency).await?;
    let two = submit_throughput(&[&first.base, &second.base], &auth, args.seconds, args.concurrency).await?;
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

/// A JSON request with an optional bearer token: (status, body).
async fn call(
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
async fn staff_token(base: &str, username: &str) -> anyhow::Result<String> {
    let secret = identity::mfa::secret_from_base32(tongban::demo::DEMO_TOTP_SECRET).context("demo secret")?;
    let code = identity::mfa::totp(&secret, username)?.generate(chrono::Utc::now().timestamp().unsigned_abs());
    sign_in(base, serde_json::json!({"username": username, "password": tongban::demo::DEMO_PASSWORD, "totp": code}))
        .await
}

/// Exchange reads over HTTP by a department system under granted agreements (agreement and
/// rate checks, the record found by its blind index, sealed values opened and masked, one
/// durable access entry per read), beside plain indexed reads of rows of the same size.
async fn exchange_bench(args: &BenchArgs, data: &std::path::Path) -> anyhow::Result<()> {
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
async fn post_reads(
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
async fn plain_reads(url: &str, keys: &[String], seconds: u64, concurrency: usize) -> anyhow::Result<(f64, f64)> {
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

async fn plain_read(pool: &sqlx::AnyPool, key: String) -> Result<Option<String>, sqlx::Error> {
    use sqlx::Row;
    sqlx::query("SELECT body FROM bench_plain_read WHERE key_index = $1")
        .bind(key)
        .fetch_optional(pool)
        .await?
        .map(|r| r.try_get("body"))
        .transpose()
}

/// The plain read as `POST /read {"key": …}`, served by axum on a runtime of its own.
async fn plain_reads_over_http(
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
