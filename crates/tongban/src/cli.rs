//! The `tongban` command line: serve, migrate, user add, region add, department add,
//! config check.

use std::io::Read;
use std::process::ExitCode;

use chrono::Utc;
use clap::{Parser, Subcommand};

mod admin;
mod data;
mod data_exchange;
mod logs;
mod serve;
mod voice;

use admin::*;
use logs::Verification;
use serve::services_of;

use crate::config::{DataArgs, DataSettings, ServeArgs, ServeSettings};
use identity::{self, AccountKind, Console, Identity, NewAccount};
use kernel::audit::{Action, Outcome};
use kernel::db::Db;
use kernel::secrets::{KeySource, SecretString};
use ledger::{self, CheckpointPolicy, Ledger, Log};
use protect::backup;

#[derive(Parser, Debug)]
#[command(name = "tongban", version, about = "通办 — integrated digital-government platform", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the platform (default data dir ./tongban-data, SQLite, demo province on first start).
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate(DataArgs),
    /// Manage accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage the region tree.
    Region {
        #[command(subcommand)]
        command: RegionCommand,
    },
    /// Manage departments.
    Department {
        #[command(subcommand)]
        command: DepartmentCommand,
    },
    /// Validate configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Take an online, consistent backup with a manifest into a new directory.
    Backup {
        #[command(flatten)]
        data: DataArgs,
        /// The directory to create (must not exist, or be empty).
        #[arg(long, value_name = "DIR")]
        out: std::path::PathBuf,
    },
    /// Restore a backup after checking its manifest and every ledger in it. Stop the server
    /// first; the master key file must be the one the backup names.
    Restore {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long, value_name = "DIR")]
        from: std::path::PathBuf,
        /// Go on although the database being replaced signed checkpoints beyond the backup's
        /// (the ledger forks: the fork is recorded, and witnesses must be told).
        #[arg(long)]
        accept_fork: bool,
    },
    /// Data keys of the field encryption.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// The tamper-evident logs.
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
    },
    /// The data exchange: registry imports and the systems that call it.
    Exchange {
        #[command(subcommand)]
        command: ExchangeCommand,
    },
    /// The 12345 classifier: train its model, measure it, collect dispatchers' corrections.
    Voice {
        #[command(subcommand)]
        command: VoiceCommand,
    },
    /// Service KPIs: check (and repair) the tallies they are summed from.
    Insight {
        #[command(subcommand)]
        command: InsightCommand,
    },
    /// Open311 GeoReport v2 client applications.
    Open311 {
        #[command(subcommand)]
        command: Open311Command,
    },
    /// Test data of the standard APIs.
    Fixtures {
        #[command(subcommand)]
        command: FixturesCommand,
    },
}

#[derive(Subcommand, Debug)]
enum FixturesCommand {
    /// Load a building block's fixture data (safe while the server runs).
    /// `govstack-registration`: the services, eForms, application files and tasks the GovStack
    /// Registration test suite expects (loading again changes nothing).
    /// `govstack-registries`: the registries, records and database descriptions the GovStack
    /// Digital Registries test suite expects (loading again resets them to the fixture).
    Load {
        /// Which fixtures: govstack-registration or govstack-registries.
        set: String,
        /// Another fixture file of the same shape (default: the copy built in).
        #[arg(long, value_name = "FILE")]
        file: Option<std::path::PathBuf>,
        /// The department that owns the fixture registries (govstack-registries).
        #[arg(long, default_value = "990000-SG")]
        department: String,
        /// A system the fixture registry serves (`INSTANCE/CLASS/MEMBER/SUBSYSTEM`; repeat
        /// for more). Given, it replaces the list; the Data API serves no other system.
        #[arg(long = "system", value_name = "SYSTEM")]
        systems: Vec<String>,
        #[command(flatten)]
        serve: ServeArgs,
    },
}

#[derive(Subcommand, Debug)]
enum InsightCommand {
    /// Recount every tally from the records and compare with the stored ones; with
    /// --repair, replace the stored ones with the recount. Run it with the server stopped
    /// (writes meanwhile would be counted twice or not at all).
    Recount {
        /// Replace the stored tallies with the recount.
        #[arg(long)]
        repair: bool,
        #[command(flatten)]
        serve: ServeArgs,
    },
}

#[derive(Subcommand, Debug)]
enum Open311Command {
    /// Manage the client applications that post requests.
    Client {
        #[command(subcommand)]
        command: Open311ClientCommand,
    },
}

#[derive(Subcommand, Debug)]
enum Open311ClientCommand {
    /// Register a client application; prints its api_key on the last line (shown once).
    Add {
        #[arg(long)]
        name: String,
        /// The region its requests are routed in unless they name a jurisdiction_id
        /// (default: the top of the region tree).
        #[arg(long)]
        region: Option<String>,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Revoke a client's api_key: its posts are refused from then on.
    Revoke {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// List the client applications.
    List {
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Subcommand, Debug)]
enum VoiceCommand {
    /// Train the classifier from a labelled file (`category<TAB>text` lines; default: the
    /// training set built in) and write the model.
    Train {
        #[arg(long, value_name = "FILE")]
        file: Option<std::path::PathBuf>,
        /// Dispatchers' corrections to learn from as well (from `voice corrections`).
        #[arg(long, value_name = "FILE")]
        corrections: Option<std::path::PathBuf>,
        #[arg(long, value_name = "FILE", default_value = "crates/voice/data/model.json")]
        out: std::path::PathBuf,
    },
    /// Measure a model (default: the shipped one) on the held-out set: top-1 accuracy for
    /// the category and the department, and recall per category.
    Eval {
        #[arg(long, value_name = "FILE")]
        model: Option<std::path::PathBuf>,
        /// Another labelled file to measure on.
        #[arg(long, value_name = "FILE")]
        file: Option<std::path::PathBuf>,
    },
    /// Show what the shipped model makes of a text: the categories it weighs, their
    /// confidence and the words that weighed most.
    Classify { text: String },
    /// Print the categories dispatchers chose where the classifier proposed another, as
    /// labelled lines for the next training run.
    Corrections {
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Subcommand, Debug)]
enum ExchangeCommand {
    /// Import a CSV or XLSX file into a registry, with a progress bar and a per-row report
    /// (as the console operator; the demo registries are published on first start).
    Import {
        /// The registry's code (population, marriage, …).
        #[arg(long)]
        registry: String,
        /// Import the good rows and report the bad ones (default: all or nothing).
        #[arg(long)]
        skip_bad_rows: bool,
        file: std::path::PathBuf,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Register a department's system: prints the secret it sends as X-Exchange-Secret.
    Client {
        /// The department's code (990000-MZ).
        #[arg(long)]
        department: String,
        /// INSTANCE/CLASS/MEMBER/SUBSYSTEM, as the Information Mediator names it.
        #[arg(long)]
        mediator_client: String,
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Subcommand, Debug)]
enum KeysCommand {
    /// List data keys and how many values each seals.
    List {
        #[command(flatten)]
        data: DataArgs,
    },
    /// Make a new data key active, re-seal every value under it in batches (safe while the
    /// server runs), then retire the keys nothing uses any more.
    Rotate {
        #[command(flatten)]
        data: DataArgs,
        /// Values re-sealed per transaction.
        #[arg(long, default_value_t = 500)]
        batch: i64,
    },
}

#[derive(Subcommand, Debug)]
enum LedgerCommand {
    /// Recompute every tree from its stored entries and check every stored hash and signed
    /// checkpoint; exit 1 naming the first index where anything differs.
    Verify {
        #[command(flatten)]
        data: DataArgs,
        /// Only this log (audit, certificates or public).
        #[arg(long)]
        log: Option<String>,
        /// A witness's state file (from `ledger cosign`): the log must still contain the
        /// checkpoints it cosigned, which catches the newest entries cut off with their
        /// checkpoints.
        #[arg(long, value_name = "FILE")]
        trusted: Option<std::path::PathBuf>,
        /// The logs' published verifier keys (one per line, from GET /ledger/LOG/verifier-key):
        /// verify with the database alone, holding none of the platform's secrets.
        #[arg(long, value_name = "FILE")]
        verifier_keys: Option<std::path::PathBuf>,
    },
    /// As a witness: check the latest checkpoint's consistency with the one this key
    /// cosigned last, then add a C2SP cosignature.
    Cosign {
        #[command(flatten)]
        data: DataArgs,
        /// The witness's key file (Go note `PRIVATE+KEY+…`); created when missing if --name is given.
        #[arg(long, value_name = "FILE")]
        key: std::path::PathBuf,
        /// The witness's name, for a new key (e.g. `audit-bureau.yunling.example`).
        #[arg(long)]
        name: Option<String>,
        /// Only this log.
        #[arg(long)]
        log: Option<String>,
        /// The logs' published verifier keys: witness with the database alone, holding none
        /// of the platform's secrets.
        #[arg(long, value_name = "FILE")]
        verifier_keys: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum UserCommand {
    /// Create a staff or system account. Prints a temporary password unless
    /// --password-stdin is given; staff must change it at first sign-in.
    Add {
        #[command(flatten)]
        data: DataArgs,
        /// staff or system
        #[arg(long, default_value = "staff")]
        kind: String,
        /// Login name (system clients: INSTANCE/CLASS/MEMBER/SUBSYSTEM).
        #[arg(long)]
        username: String,
        /// Name shown in the interface.
        #[arg(long)]
        name: String,
        /// Department code (the staff member's region defaults to the department's).
        #[arg(long)]
        department: Option<String>,
        /// Region code, if it differs from the department's.
        #[arg(long)]
        region: Option<String>,
        /// Role to grant; repeat for several (system_admin, security_admin and auditor
        /// exclude each other).
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Read the initial password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand, Debug)]
enum RegionCommand {
    /// Add a region: a province (no --parent), or a child of --parent.
    Add {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long)]
        code: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        parent: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum DepartmentCommand {
    /// Add a department in a region.
    Add {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long)]
        code: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        region: String,
        /// Line of work by abbreviation (GA 公安, MZ 民政, RS 人社, …): routes requests such as
        /// data corrections to the right department.
        #[arg(long)]
        kind: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Resolve flags, environment and config file; print the result (secrets redacted) or
    /// the first problem.
    Check(ServeArgs),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    // Every database connection goes through sqlx's Any driver; install it before any.
    sqlx::any::install_default_drivers();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<Verification>() => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TONGBAN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => serve::serve(args.resolve()?).await,
        Command::Migrate(args) => admin::migrate(args).await,
        Command::User { command } => admin::user(command).await,
        Command::Region { command } => admin::region(command).await,
        Command::Department { command } => admin::department(command).await,
        Command::Config { command: ConfigCommand::Check(args) } => admin::config_check(args),
        Command::Exchange { command } => data_exchange::exchange_command(command).await,
        Command::Voice { command } => voice::run(command).await,
        Command::Open311 { command: Open311Command::Client { command } } => voice::open311_client(command).await,
        Command::Insight { command: InsightCommand::Recount { repair, serve } } => {
            voice::recount(&serve.resolve()?, repair).await
        }
        Command::Fixtures { command: FixturesCommand::Load { set, file, department, systems, serve } } => {
            data_exchange::load_fixtures(&set, file.as_deref(), &department, &systems, &serve.resolve()?).await
        }
        Command::Backup { data, out } => data::backup(data, out).await,
        Command::Restore { data, from, accept_fork } => data::restore(data, from, accept_fork).await,
        Command::Keys { command } => data::keys(command).await,
        Command::Ledger { command } => logs::run(command).await,
    }
}
