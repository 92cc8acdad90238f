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
//! - bulk import of generated population records (target ≥ 20,000 rows/s on SQLite);
//! - the 12345 classifier on one core (target ≥ 5,000 texts/s);
//! - CKAN `package_search` over 10,000 open datasets (p95) vs the same searches in process,
//!   and de-identifying a generated registry into a dataset vs a plain export of its rows.

mod forecast;
mod open_data;
mod reads;
mod server;
mod storage;
mod submit;

use reads::*;
use server::*;
use storage::*;
use submit::*;

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
    /// exchange, voice, forecast, opendata or all.
    #[arg(long, default_value = "all")]
    only: String,
    /// Ledger size for the proof and verification measurements (the targets are
    /// given at 1M and 10M).
    #[arg(long, default_value_t = 10_000_000)]
    ledger_entries: u64,
    /// Synthetic weekly series for the forecast backtest.
    #[arg(long, default_value_t = 200)]
    forecast_series: usize,
    /// Generated population records for the registry import measurement.
    #[arg(long, default_value_t = 1_000_000)]
    import_rows: u64,
    /// Open datasets in the catalogue the search measurement searches.
    #[arg(long, default_value_t = 10_000)]
    open_datasets: usize,
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

static SERVER: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

async fn run(mut args: BenchArgs) -> anyhow::Result<()> {
    if let Some(server) = args.server.take() {
        SERVER.set(server).ok();
    }
    let all = args.only == "all";
    if !["all", "http", "submit", "nodes", "ledger", "protect", "import", "exchange", "voice", "forecast", "opendata"]
        .contains(&args.only.as_str())
    {
        bail!("--only takes http, submit, nodes, ledger, protect, import, exchange, voice, forecast, opendata or all");
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
    if all || args.only == "voice" {
        voice_bench(args.seconds)?;
        let data = scratch_dir()?;
        keep_on_failure(intake_bench(&args, &data).await, &data)?;
    }
    if all || args.only == "forecast" {
        forecast::forecast_bench(args.forecast_series)?;
    }
    if all || args.only == "exchange" {
        let data = scratch_dir()?;
        keep_on_failure(exchange_bench(&args, &data).await, &data)?;
    }
    if all || args.only == "opendata" {
        let data = scratch_dir()?;
        keep_on_failure(open_data::open_data_bench(&args, &data).await, &data)?;
    }
    if all || args.only == "import" {
        let data = scratch_dir()?;
        let result = import_bench(&args, &data).await;
        let _ = std::fs::remove_dir_all(&data);
        result?;
    }
    Ok(())
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
