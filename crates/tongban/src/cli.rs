//! The `tongban` command line: serve, migrate, user add, region add, department add,
//! config check.

use std::io::Read;
use std::process::ExitCode;

use chrono::Utc;
use clap::{Parser, Subcommand};

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

/// The GovStack Registration building block's test-data.json (Apache License 2.0).
const GOVSTACK_REGISTRATION_FIXTURES: &str = include_str!("../fixtures/govstack-registration.json");
/// The GovStack Digital Registries building block's test-data.json (Apache License 2.0).
const GOVSTACK_REGISTRIES_FIXTURES: &str = include_str!("../fixtures/govstack-registries.json");

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
        Command::Serve(args) => serve(args.resolve()?).await,
        Command::Migrate(args) => {
            let data = args.resolve()?;
            let (db, _, _) = open(&data).await?;
            println!("migrations applied to {}", data.database_url_redacted());
            db.close().await;
            Ok(())
        }
        Command::User {
            command: UserCommand::Add { data, kind, username, name, department, region, roles, password_stdin },
        } => {
            let data = data.resolve()?;
            let (db, identity, console) = open(&data).await?;
            let kind = match kind.as_str() {
                "staff" => AccountKind::Staff,
                "system" => AccountKind::System,
                other => anyhow::bail!("--kind must be staff or system, not {other}"),
            };
            let password = if password_stdin {
                let mut text = String::new();
                std::io::stdin().read_to_string(&mut text)?;
                Some(SecretString::new(text.trim_end_matches(['\r', '\n']).to_string()))
            } else {
                None
            };
            let now = Utc::now();
            let mut tx = db.begin().await?;
            let new = NewAccount {
                kind: Some(kind),
                username,
                display_name: name,
                must_change_password: kind == AccountKind::Staff,
                password,
                department_code: department,
                region_code: region,
                ..NewAccount::default()
            };
            let created = identity
                .accounts()
                .create_account(&mut tx, &console.grant::<kernel::authz::AccountCreate>(), new, now)
                .await?;
            for role in &roles {
                identity
                    .accounts()
                    .grant_role(&mut tx, &console.grant::<kernel::authz::RoleGrant>(), &created.id, role, now)
                    .await?;
            }
            tx.commit().await?;
            println!("created {} ({})", created.username, created.id);
            if !roles.is_empty() {
                println!("roles: {}", roles.join(", "));
            }
            if let Some(p) = created.temporary_password {
                println!("temporary password: {}", p.expose());
                if kind == AccountKind::Staff {
                    println!("it must be changed at first sign-in, where an authenticator app is also enrolled");
                }
            }
            db.close().await;
            Ok(())
        }
        Command::Region { command: RegionCommand::Add { data, code, name, parent } } => {
            let data = data.resolve()?;
            let (db, identity, console) = open(&data).await?;
            let mut tx = db.begin().await?;
            let r = identity
                .organisation()
                .create_region(
                    &mut tx,
                    &console.grant::<kernel::authz::OrganisationManage>(),
                    &code,
                    &name,
                    parent.as_deref(),
                    Utc::now(),
                )
                .await?;
            tx.commit().await?;
            println!("created {} {} {} ({})", r.level, r.code, r.name, r.path);
            db.close().await;
            Ok(())
        }
        Command::Department { command: DepartmentCommand::Add { data, code, name, region, kind } } => {
            let data = data.resolve()?;
            let (db, identity, console) = open(&data).await?;
            let mut tx = db.begin().await?;
            let d = identity
                .organisation()
                .create_department(
                    &mut tx,
                    &console.grant::<kernel::authz::OrganisationManage>(),
                    identity::NewDepartment { code: &code, name: &name, region_code: &region, kind: kind.as_deref() },
                    Utc::now(),
                )
                .await?;
            tx.commit().await?;
            println!("created department {} {}", d.code, d.name);
            db.close().await;
            Ok(())
        }
        Command::Config { command: ConfigCommand::Check(args) } => {
            let s = args.resolve()?;
            println!("configuration is valid");
            println!("data_dir = {}", s.data.data_dir.display());
            println!("database_url = {}", s.data.database_url_redacted());
            println!("master_key_file = {}", s.data.master_key_file.display());
            println!("listen = {}", s.listen);
            println!("demo = {}", s.demo);
            println!("body_limit_bytes = {}", s.body_limit);
            println!("tls = {}", s.tls.is_some());
            println!("session_idle_minutes = {}", s.session.idle.as_secs() / 60);
            println!("session_absolute_hours = {}", s.session.absolute.as_secs() / 3600);
            println!("token_ttl_minutes = {}", s.session.token_ttl.as_secs() / 60);
            Ok(())
        }
        Command::Exchange { command } => exchange_command(command).await,
        Command::Fixtures { command: FixturesCommand::Load { set, file, department, systems, serve } } => {
            load_fixtures(&set, file.as_deref(), &department, &systems, &serve.resolve()?).await
        }
        Command::Backup { data, out } => {
            let data = data.resolve()?;
            let p = open_with_policy(&data, Default::default(), Default::default()).await?;
            let (key, _) = data.master_key()?;
            let documents = data.data_dir.join(backup::DOCUMENTS);
            let m = backup::backup(&p.db, data.database_url(), &key, &p.ledger, &documents, &out, Utc::now()).await?;
            println!(
                "backup written to {} (schema {}, {} file(s), {} material(s))",
                out.display(),
                m.schema_version,
                m.files.len(),
                m.documents.len()
            );
            for (log, (size, _)) in &m.checkpoints {
                println!("  {log}: checkpoint {size}");
            }
            p.db.close().await;
            Ok(())
        }
        Command::Restore { data, from, accept_fork } => {
            let data = data.resolve()?;
            create_private_dir(&data.data_dir)?;
            let (key, _) = data.master_key()?;
            let (ledger_key, _) = ledger::load_or_generate_key(&data.ledger_key_file, false, &data.ledger_origin)?;
            let sqlite_path = kernel::db::sqlite_file(data.database_url());
            let documents = data.data_dir.join(backup::DOCUMENTS);
            let target = backup::Target {
                database_url: data.database_url(),
                sqlite_path,
                master_key: &key,
                documents: &documents,
            };
            let origin = data.ledger_origin.clone();
            let restored = backup::restore(
                &from,
                &target,
                |db| Ledger::new(db, &origin, &ledger_key, CheckpointPolicy::default()).map_err(|e| e.to_string()),
                accept_fork,
                Utc::now(),
            )
            .await?;
            println!("restored the backup of {} into {}", restored.manifest.created_at, data.database_url_redacted());
            for (log, entries) in &restored.verified {
                println!("  {log}: {entries} entries verified");
            }
            println!("  {} of {} material(s) copied back", restored.documents, restored.manifest.documents.len());
            println!("the replaced database is kept as {}", restored.kept_aside);
            // The restore itself goes on the trail of the restored database.
            let db = data.connect().await?;
            let mut entry = ledger::Entry::new(Action::BackupRestored, Outcome::Success, Utc::now());
            entry.actor = Some("console".into());
            entry.detail = Some(format!("backup of {} from {}", restored.manifest.created_at, from.display()));
            let mut c = db.pool.acquire().await?;
            ledger::append(&mut c, Log::Audit, &entry).await?;
            for fork in &restored.forks {
                println!("  FORK: {fork}; tell the witnesses, whose cosigned state no longer matches");
                let mut entry = ledger::Entry::new(Action::LedgerForkAccepted, Outcome::Success, Utc::now());
                entry.actor = Some("console".into());
                entry.object = Some(format!("ledger:{}", fork.log));
                entry.detail = Some(format!(
                    "restored to checkpoint {}; checkpoints up to {} signed before the restore are abandoned",
                    fork.restored_size, fork.signed_size
                ));
                ledger::append(&mut c, Log::Audit, &entry).await?;
            }
            drop(c);
            db.close().await;
            Ok(())
        }
        Command::Keys { command: KeysCommand::List { data } } => {
            let data = data.resolve()?;
            let p = open_with_policy(&data, Default::default(), Default::default()).await?;
            let protector = p.identity.protector();
            let active = protector.active_key_id().await?;
            for k in protector.keys().await? {
                let state = match (&k.retired_at, k.id == active) {
                    (Some(at), _) => format!("retired {}", at.format("%Y-%m-%d %H:%M")),
                    (None, true) => "active".into(),
                    (None, false) => "retiring".into(),
                };
                let used = p.identity.people().citizens_under_key(&k.id).await?;
                println!("{}  created {}  {state}  seals {used} records", k.id, k.created_at.format("%Y-%m-%d %H:%M"));
            }
            p.db.close().await;
            Ok(())
        }
        Command::Keys { command: KeysCommand::Rotate { data, batch } } => {
            let data = data.resolve()?;
            let p = open_with_policy(&data, Default::default(), Default::default()).await?;
            let protector = p.identity.protector();
            let new = protector.rotate(Utc::now()).await?;
            println!("new data key {new} is active; re-sealing existing values …");
            // Servers pick up the new key within seconds; values they seal meanwhile under
            // the old key are caught by the next batch.
            let mut done = 0usize;
            reseal_all(&p.identity, batch, &mut done).await?;
            // Other servers may have sealed a few values under the old key before they
            // noticed the new one (they look again every 10 s): one more pass after that.
            eprint!("\rwaiting for every server to use the new key …   ");
            tokio::time::sleep(std::time::Duration::from_secs(11)).await;
            reseal_all(&p.identity, batch, &mut done).await?;
            eprintln!();
            for k in protector.keys().await? {
                if k.retired_at.is_none() && k.id != new {
                    let used = p.identity.people().citizens_under_key(&k.id).await?;
                    protector.retire(&k.id, used, Utc::now()).await?;
                    println!("retired data key {}", k.id);
                }
            }
            p.db.close().await;
            Ok(())
        }
        Command::Ledger { command: LedgerCommand::Verify { data, log, trusted, verifier_keys } } => {
            let data = data.resolve()?;
            let p = open_ledger(&data, verifier_keys.as_deref()).await?;
            let trusted = match &trusted {
                Some(path) => read_witness_state(path)?,
                None => Default::default(),
            };
            let mut failed = None;
            for log in logs(log.as_deref())? {
                let result = p
                    .ledger
                    .verify_against(log, trusted.get(log.as_str()).copied(), |done, total| {
                        if total >= 100_000 {
                            eprint!("\r{}: {done}/{total} entries", log.as_str());
                        }
                    })
                    .await;
                match result {
                    Ok(v) => {
                        println!("{}: {} entries and {} checkpoints verified", log.as_str(), v.entries, v.checkpoints)
                    }
                    Err(ledger::VerifyError::Tampered(t)) => {
                        println!("{}: TAMPERED: {t}", log.as_str());
                        let c = insight::security::Candidate {
                            rule: "ledger_verification",
                            account: None,
                            key: format!("{}@{}", log.as_str(), Utc::now().timestamp() / 86_400),
                            severity: "critical",
                            summary: t.to_string(),
                            first_index: t.index,
                        };
                        if let Err(e) = insight::security::raise(&p.db, &c, None, Utc::now()).await {
                            eprintln!("could not raise an alert: {e}");
                        }
                        failed = Some(t);
                    }
                    Err(ledger::VerifyError::Failed(e)) => return Err(e.into()),
                }
            }
            p.db.close().await;
            match failed {
                Some(t) => Err(Verification(t).into()),
                None => Ok(()),
            }
        }
        Command::Ledger { command: LedgerCommand::Cosign { data, key, name, log, verifier_keys } } => {
            let data = data.resolve()?;
            let p = open_ledger(&data, verifier_keys.as_deref()).await?;
            let generate = name.is_some();
            let (witness, source) = ledger::load_or_generate_key(&key, generate, name.as_deref().unwrap_or("witness"))?;
            if source == KeySource::Generated {
                println!(
                    "generated witness key {}: its verifier key is {}",
                    key.display(),
                    witness.cosigner_verifier_key()
                );
            }
            let state_path = key.with_extension("state");
            // A missing state file is a first cosignature; an unreadable one is an error, never
            // a reason to skip the consistency check.
            let mut state = if state_path.exists() { read_witness_state(&state_path)? } else { Default::default() };
            for log in logs(log.as_deref())? {
                let last = state.get(log.as_str()).copied();
                let (size, root) = p.ledger.cosign(log, &witness, last, Utc::now()).await?;
                state.insert(log.as_str().into(), (size, root));
                println!("{}: cosigned checkpoint {size}", log.as_str());
            }
            use base64::Engine;
            let text: std::collections::BTreeMap<&String, (u64, String)> = state
                .iter()
                .map(|(log, (size, root))| (log, (*size, base64::engine::general_purpose::STANDARD.encode(root))))
                .collect();
            std::fs::write(&state_path, serde_json::to_string_pretty(&text)?)?;
            p.db.close().await;
            Ok(())
        }
    }
}

/// The database and a ledger handle, for `ledger verify` and `ledger cosign`. With published
/// verifier keys this needs no secret at all (an auditor's or a witness's position);
/// without, the checkpoint key file supplies them.
async fn open_ledger(data: &DataSettings, verifier_keys: Option<&std::path::Path>) -> anyhow::Result<LedgerOnly> {
    let db = data.connect().await?;
    let ledger = match verifier_keys {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let keys: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
            Ledger::verify_only(db.clone(), &keys)?
        }
        None => {
            let (key, _) = ledger::load_or_generate_key(&data.ledger_key_file, false, &data.ledger_origin)?;
            Ledger::new(db.clone(), &data.ledger_origin, &key, CheckpointPolicy::default())?
        }
    };
    Ok(LedgerOnly { db, ledger })
}

struct LedgerOnly {
    db: Db,
    ledger: Ledger,
}

/// One pass of re-sealing everything identity seals, with progress on stderr.
async fn reseal_all(identity: &Identity, batch: i64, done: &mut usize) -> Result<(), identity::Error> {
    loop {
        let (n, remaining) = identity.people().reseal_citizens(batch).await?;
        *done += n;
        eprint!("\rre-sealed {done} records, {remaining} to go   ");
        if remaining == 0 {
            break;
        }
    }
    *done += identity.my_data().reseal_corrections().await?;
    Ok(())
}

/// A witness's state file: per log, the size and base64 root it cosigned last.
fn read_witness_state(path: &std::path::Path) -> anyhow::Result<std::collections::BTreeMap<String, (u64, [u8; 32])>> {
    use base64::Engine;
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let raw: std::collections::BTreeMap<String, (u64, String)> =
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    raw.into_iter()
        .map(|(log, (size, root))| {
            let root = base64::engine::general_purpose::STANDARD
                .decode(&root)
                .ok()
                .and_then(|r| <[u8; 32]>::try_from(r).ok())
                .ok_or_else(|| anyhow::anyhow!("{} is damaged", path.display()))?;
            Ok((log, (size, root)))
        })
        .collect()
}

/// A failed ledger verification: exit status 1, unlike other errors (2).
#[derive(Debug, thiserror::Error)]
#[error("ledger verification failed: {0}")]
struct Verification(ledger::Tampered);

fn logs(only: Option<&str>) -> anyhow::Result<Vec<Log>> {
    match only {
        None => Ok(Log::ALL.to_vec()),
        Some(name) => Ok(vec![
            Log::parse(name).ok_or_else(|| anyhow::anyhow!("no log named {name}: audit, certificates or public"))?,
        ]),
    }
}

/// Data dir, keys, database and migrations: what every data command needs.
/// The database, identity and the console of the operator who holds the master key.
async fn open(data: &DataSettings) -> anyhow::Result<(Db, Identity, Console)> {
    let p = open_with_policy(data, identity::SessionPolicy::default(), CheckpointPolicy::default()).await?;
    let console = p.identity.console(&p.key)?;
    Ok((p.db, p.identity, console))
}

/// What the data commands work with.
struct Platform {
    db: Db,
    identity: Identity,
    ledger: Ledger,
    key: kernel::secrets::MasterKey,
}

async fn open_with_policy(
    data: &DataSettings,
    policy: identity::SessionPolicy,
    checkpoints: CheckpointPolicy,
) -> anyhow::Result<Platform> {
    create_private_dir(&data.data_dir)?;
    let (key, source) = data.master_key()?;
    if source == KeySource::Generated {
        println!(
            "generated a new master key at {} (mode 0600): back it up; without it sealed secrets are lost",
            data.master_key_file.display()
        );
    }
    let db = data.connect().await?;
    db.migrate().await?;
    db.bind_master_key(key.id()).await?;
    let (ledger_key, source) =
        ledger::load_or_generate_key(&data.ledger_key_file, data.generate_ledger_key, &data.ledger_origin)?;
    if source == KeySource::Generated {
        println!(
            "generated a new ledger checkpoint key at {} (mode 0600): publish its verifier keys (GET /ledger/LOG/verifier-key)",
            data.ledger_key_file.display()
        );
    }
    let ledger = Ledger::new(db.clone(), &data.ledger_origin, &ledger_key, checkpoints)?;
    let identity = Identity::new(db.clone(), key.clone(), policy);
    identity.protector().ensure_key(Utc::now()).await?;
    Ok(Platform { db, identity, ledger, key })
}

fn create_private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    if !dir.exists() {
        std::fs::create_dir_all(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
    }
    Ok(())
}

/// Deadline warnings and escalation of overdue tasks, once a minute.
async fn run_timers(services: services::Services) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        match services.casework().run_timers(Utc::now()).await {
            Ok(r) if r.escalated > 0 => tracing::info!(warned = r.warned, escalated = r.escalated, "task timers"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "task timers failed"),
        }
        match services.appointments().record_no_shows(Utc::now()).await {
            Ok(r) if r.recorded > 0 => tracing::info!(recorded = r.recorded, "appointment no-shows"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "no-show pass failed"),
        }
    }
}

fn services_of(
    settings: &ServeSettings,
    db: &Db,
    identity: &Identity,
    key: kernel::secrets::MasterKey,
) -> services::Services {
    services::Services::new(
        db.clone(),
        identity.clone(),
        key,
        settings.calendar.clone(),
        services::UploadPolicy {
            dir: settings.data.data_dir.join(backup::DOCUMENTS),
            max_bytes: settings.body_limit,
            scan_command: settings.upload_scan_command.clone(),
        },
    )
}

async fn exchange_command(command: ExchangeCommand) -> anyhow::Result<()> {
    match command {
        ExchangeCommand::Import { registry, skip_bad_rows, file, data } => {
            let data = data.resolve()?;
            let Platform { db, identity, key, .. } =
                open_with_policy(&data, Default::default(), Default::default()).await?;
            let console = identity.console(&key)?;
            let exchange = exchange::Exchange::new(db.clone(), identity, &key);
            let bytes = std::fs::read(&file).map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
            let table = exchange::Table::read(bytes)?;
            let mode =
                if skip_bad_rows { exchange::ImportMode::SkipBadRows } else { exchange::ImportMode::AllOrNothing };
            let cap = console.grant::<kernel::authz::RegistryManage>();
            let name = file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            let started = std::time::Instant::now();
            let bar = |done: u64, total: u64| {
                let pct = (done * 100).checked_div(total).unwrap_or(0).min(100);
                let filled = usize::try_from(pct / 5).unwrap_or(0);
                eprint!("\r[{}{}] {pct:>3}%  {done}/{total} rows", "#".repeat(filled), ".".repeat(20 - filled.min(20)));
            };
            let report = exchange.imports().import(&cap, &registry, &name, table, mode, Utc::now(), &bar).await?;
            eprintln!();
            let secs = started.elapsed().as_secs_f64().max(0.001);
            println!(
                "{}: {} rows read, {} imported, {} rejected in {secs:.1} s ({:.0} rows/s)",
                report.status.as_str(),
                report.total_rows,
                report.imported,
                report.rejected,
                report.total_rows as f64 / secs
            );
            for e in &report.errors {
                println!("  row {}, column {}: {}", e.row, if e.column.is_empty() { "-" } else { &e.column }, e.reason);
            }
            db.close().await;
            if report.status != exchange::ImportStatus::Done {
                anyhow::bail!("nothing was imported: fix the rows above, or pass --skip-bad-rows");
            }
            Ok(())
        }
        ExchangeCommand::Client { department, mediator_client, data } => {
            let data = data.resolve()?;
            let Platform { db, identity, key, .. } =
                open_with_policy(&data, Default::default(), Default::default()).await?;
            let console = identity.console(&key)?;
            let exchange = exchange::Exchange::new(db.clone(), identity, &key);
            let cap = console.grant::<kernel::authz::AccountCreate>();
            let c = exchange.sharing().register_client(&cap, &department, &mediator_client, Utc::now()).await?;
            println!("{} registered; its secret (shown once): {}", c.mediator_client, c.secret.expose());
            db.close().await;
            Ok(())
        }
    }
}

async fn load_fixtures(
    set: &str,
    file: Option<&std::path::Path>,
    department: &str,
    systems: &[String],
    settings: &ServeSettings,
) -> anyhow::Result<()> {
    let built_in = match set {
        "govstack-registration" => GOVSTACK_REGISTRATION_FIXTURES,
        "govstack-registries" => GOVSTACK_REGISTRIES_FIXTURES,
        _ => anyhow::bail!("unknown fixture set {set:?}: govstack-registration or govstack-registries"),
    };
    let text = match file {
        Some(f) => std::fs::read_to_string(f).map_err(|e| anyhow::anyhow!("reading {}: {e}", f.display()))?,
        None => built_in.to_string(),
    };
    let fixtures: serde_json::Value = serde_json::from_str(&text)?;
    let Platform { db, identity, key, .. } =
        open_with_policy(&settings.data, settings.session, settings.checkpoints).await?;
    let console = identity.console(&key)?;
    if set == "govstack-registries" {
        let exchange = exchange::Exchange::new(db.clone(), identity, &key);
        let cap = console.grant::<kernel::authz::RegistryManage>();
        let loaded = exchange.registry_data().load_registry_fixture(&cap, department, &fixtures, Utc::now()).await;
        let served = match &loaded {
            Ok(l) if !systems.is_empty() => {
                let mut served = Vec::new();
                for registry in &l.registries {
                    served.push((
                        registry.clone(),
                        exchange.systems().set_serving(&cap, registry, systems, Utc::now()).await,
                    ));
                }
                served
            }
            _ => Vec::new(),
        };
        db.close().await;
        let loaded = loaded?;
        println!(
            "govstack-registries: {} records and {} database descriptions loaded",
            loaded.records, loaded.databases
        );
        for (registry, list) in served {
            println!("registry {registry} serves: {}", list?.join(", "));
        }
        return Ok(());
    }
    let services = services_of(settings, &db, &identity, key);
    let manage = console.grant::<kernel::authz::ServiceManage>();
    // Fixture services run the built-in workflows, which a clean install may not have yet.
    for w in crate::demo::builtin_workflows() {
        let def = services::workflow::Definition::from_json(&w.to_string())?;
        services.publish_workflow(&manage, def, Utc::now()).await?;
    }
    let counts = services.registration().load_registration_fixtures(&manage, &fixtures, Utc::now()).await?;
    println!(
        "govstack-registration: {} services published; {} application files and {} tasks added",
        counts.services, counts.applications, counts.tasks
    );
    db.close().await;
    Ok(())
}

async fn serve(settings: ServeSettings) -> anyhow::Result<()> {
    if settings.demo && !settings.listen.ip().is_loopback() {
        anyhow::bail!(
            "the demo province has published passwords: it is only served on a loopback address. \
             Use --no-demo to serve {} (or listen on 127.0.0.1)",
            settings.listen
        );
    }
    let Platform { db, identity, ledger, key } =
        open_with_policy(&settings.data, settings.session, settings.checkpoints).await?;
    let console = identity.console(&key)?;
    let exchange = exchange::Exchange::new(db.clone(), identity.clone(), &key);
    let services = services_of(&settings, &db, &identity, key);
    if settings.demo && identity.organisation().region_count().await? == 0 {
        println!("seeding the demo province 云岭省 (first start) …");
        let summary = crate::demo::seed(&identity, &console, Utc::now()).await?;
        println!(
            "demo: {} regions, {} departments, {} staff, {} residents, {} enterprises",
            summary.regions,
            summary.departments,
            summary.staff.len(),
            summary.citizens,
            summary.enterprises
        );
        println!("demo sign-ins (password {} for all):", crate::demo::DEMO_PASSWORD);
        println!("  citizen.demo      resident of 明月区 (no second factor)");
        println!("  enterprise.demo   enterprise account");
        for (username, role, region) in &summary.staff {
            println!("  {username:<22} {role:<17} {region}");
        }
        println!(
            "staff sign in with a TOTP code; add this secret to any authenticator app: {}",
            crate::demo::DEMO_TOTP_SECRET
        );
    }
    if settings.demo {
        let catalog = crate::demo::seed_catalog(&identity, &console, &services, Utc::now()).await?;
        if !catalog.staff.is_empty() {
            println!("demo catalog: {} services, {} bundles; service desks:", catalog.services, catalog.bundles);
            for (username, role, region) in &catalog.staff {
                println!("  {username:<22} {role:<17} {region}");
            }
        }
        let registries = crate::demo::seed_registries(&identity, &console, &exchange, Utc::now()).await?;
        if registries > 0 {
            println!(
                "demo registries: {registries} published (人口, 婚姻, 法人, 社保) with the demo resident's records"
            );
        }
        let seeded = crate::demo::seed_applications(&identity, &services, Utc::now()).await?;
        if seeded > 0 {
            println!("demo applications: {seeded}, in every phase, worked by the desks of 明月区 and 青湖区");
        }
    }
    record_configuration(&db, &settings).await?;
    let timers = tokio::spawn(run_timers(services.clone()));
    let metrics = tongban_http::metrics::Metrics::new();
    let checkpointer = tokio::spawn(sign_checkpoints(ledger.clone()));
    let monitor = tokio::spawn(monitor(
        db.clone(),
        ledger.clone(),
        settings.monitoring.clone(),
        settings.mail.clone(),
        identity.clone(),
        exchange.clone(),
    ));
    let backups = settings.backups.clone().map(|schedule| {
        let (db, ledger, url) = (db.clone(), ledger.clone(), settings.data.database_url().to_string());
        let key = settings.data.master_key();
        let documents = settings.data.data_dir.join(backup::DOCUMENTS);
        tokio::spawn(async move {
            match key {
                Ok((key, _)) => scheduled_backups(schedule, db, ledger, url, key, documents).await,
                Err(e) => tracing::error!(error = %e, "scheduled backups are off: no master key"),
            }
        })
    });
    let state = tongban_http::AppState::from(tongban_http::AppParts {
        exchange,
        services,
        identity,
        ledger: ledger.clone(),
        db: db.clone(),
        metrics,
        secure_cookies: settings.secure_cookies,
        trusted_proxies: std::sync::Arc::new(settings.trusted_proxies.clone()),
        security_servers: std::sync::Arc::new(settings.security_servers.clone()),
    });
    let router = tongban_http::app(state, settings.body_limit);
    match &settings.tls {
        None => {
            let listener = tokio::net::TcpListener::bind(settings.listen)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.listen))?;
            println!("tongban is serving on http://{}", listener.local_addr()?);
            tongban_http::serve(router, listener).await?;
        }
        Some((cert, key)) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .map_err(|e| anyhow::anyhow!("cannot load TLS certificate or key: {e}"))?;
            let handle = axum_server::Handle::new();
            let shutdown = handle.clone();
            tokio::spawn(async move {
                tongban_http::shutdown_signal().await;
                shutdown.graceful_shutdown(Some(std::time::Duration::from_secs(30)));
            });
            println!("tongban is serving on https://{}", settings.listen);
            axum_server::bind_rustls(settings.listen, config)
                .handle(handle)
                .serve(router.into_make_service_with_connect_info::<std::net::SocketAddr>())
                .await?;
        }
    }
    checkpointer.abort();
    monitor.abort();
    timers.abort();
    if let Some(task) = backups {
        task.abort();
    }
    // The last entries are folded from the journals and get their checkpoint before the
    // database closes.
    if let Err(e) = db.settle().await {
        eprintln!("journaled entries stay on disk until the next start: {e}");
    }
    for log in Log::ALL {
        if let Err(e) = ledger.checkpoint_if_behind(log, Utc::now()).await {
            eprintln!("could not sign the final {} checkpoint: {e}", log.as_str());
        }
    }
    db.close().await;
    println!("stopped cleanly");
    Ok(())
}

/// Appends `configuration_changed` to the audit ledger when the effective settings differ
/// from those of the previous start (the first start records them too).
async fn record_configuration(db: &Db, settings: &ServeSettings) -> anyhow::Result<()> {
    let summary = settings.summary();
    let digest = kernel::secrets::sha256_hex(&summary);
    let mut tx = db.begin().await?;
    if kernel::db::read_setting(&mut tx, "config_digest").await?.as_deref() != Some(digest.as_str()) {
        let mut entry = ledger::Entry::new(Action::ConfigurationChanged, Outcome::Success, Utc::now());
        entry.actor = Some("console".into());
        entry.detail = Some(summary);
        ledger::append(&mut tx, Log::Audit, &entry).await?;
        kernel::db::write_setting(&mut tx, "config_digest", &digest).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Takes a backup every `interval` into `dir/tongban-YYYYMMDD-HHMMSS`, keeping the newest.
async fn scheduled_backups(
    schedule: crate::config::BackupSchedule,
    db: Db,
    ledger: Ledger,
    url: String,
    key: kernel::secrets::MasterKey,
    documents: std::path::PathBuf,
) {
    let mut tick = tokio::time::interval(schedule.interval);
    loop {
        tick.tick().await;
        let now = Utc::now();
        let out = schedule.dir.join(format!("tongban-{}", now.format("%Y%m%d-%H%M%S")));
        match backup::backup(&db, &url, &key, &ledger, &documents, &out, now).await {
            Ok(_) => tracing::info!(dir = %out.display(), "scheduled backup written"),
            Err(e) => tracing::error!(error = %e, "scheduled backup failed"),
        }
        if let Err(e) = backup::prune(&schedule.dir, schedule.keep) {
            tracing::warn!(error = %e, "old backups not pruned");
        }
    }
}

/// Security monitoring: scans the audit trail every ten seconds, delivers the outbox, and
/// re-verifies every ledger at start and daily (a failed verification is an alert).
async fn monitor(
    db: Db,
    ledger: Ledger,
    thresholds: insight::security::Thresholds,
    mail: Option<kernel::outbox::Mail>,
    identity: Identity,
    exchange: exchange::Exchange,
) {
    use insight::security;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(10));
    let mut last_verify: Option<std::time::Instant> = None;
    loop {
        tick.tick().await;
        if let Err(e) = security::scan(&db, &identity, &thresholds, Utc::now()).await {
            tracing::warn!(error = %e, "security scan failed");
        }
        if let Err(e) = crate::delivery::deliver(&db, mail.as_ref(), &identity, &exchange, Utc::now()).await {
            tracing::warn!(error = %e, "outbox delivery failed");
        }
        if last_verify.is_none_or(|t| t.elapsed() > std::time::Duration::from_secs(24 * 3600)) {
            last_verify = Some(std::time::Instant::now());
            for log in Log::ALL {
                if let Err(ledger::VerifyError::Tampered(t)) = ledger.verify(log, |_, _| {}).await {
                    let c = security::Candidate {
                        rule: "ledger_verification",
                        account: None,
                        key: format!("{}@{}", log.as_str(), Utc::now().timestamp() / 86_400),
                        severity: "critical",
                        summary: t.to_string(),
                        first_index: t.index,
                    };
                    if let Err(e) = security::raise(&db, &c, None, Utc::now()).await {
                        tracing::error!(error = %e, "could not raise the ledger alert");
                    }
                }
            }
        }
    }
}

/// Signs checkpoints as the policy asks, every second, for as long as the server runs.
async fn sign_checkpoints(ledger: Ledger) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tick.tick().await;
        for log in Log::ALL {
            if let Err(e) = ledger.checkpoint_if_due(log, Utc::now()).await {
                tracing::warn!(log = log.as_str(), error = %e, "checkpoint not signed");
            }
        }
    }
}
