//! Settings: command-line flags, `TONGBAN_*` environment variables and an optional TOML
//! file, in that order of precedence. Unknown keys and invalid values stop start-up with a
//! message naming the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use identity::SessionPolicy;
use kernel::secrets::{SecretString, read_secret_file};

fn secret(text: &str) -> Result<SecretString, String> {
    Ok(SecretString::new(text.to_string()))
}

/// Flags shared by every subcommand that touches data.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct DataArgs {
    /// TOML configuration file (keys as the long flags, with underscores).
    #[arg(long, env = "TONGBAN_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory for the embedded database, generated keys and uploads.
    #[arg(long, env = "TONGBAN_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// `sqlite:PATH` or `postgres://USER@HOST/DB`; default: SQLite inside the data dir.
    #[arg(long, env = "TONGBAN_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
    /// File holding the database password (kept out of the URL and the process list).
    #[arg(long, env = "TONGBAN_DATABASE_PASSWORD_FILE", value_name = "FILE")]
    pub database_password_file: Option<PathBuf>,
    /// Pooled database connections of this node (default: 8 on SQLite, 16 on PostgreSQL).
    #[arg(long, env = "TONGBAN_DATABASE_POOL", value_name = "N")]
    pub database_pool: Option<u32>,
    /// File holding the base64 master key; default: generated in DATA_DIR/secrets.
    #[arg(long, env = "TONGBAN_MASTER_KEY_FILE", value_name = "FILE")]
    pub master_key_file: Option<PathBuf>,
    /// The base64 master key itself (from the environment; prefer a file or a command).
    #[arg(long, env = "TONGBAN_MASTER_KEY", value_name = "BASE64", hide_env_values = true, hide = true, value_parser = secret)]
    pub master_key: Option<SecretString>,
    /// A command whose standard output is the base64 master key: the hook for a KMS or a
    /// secrets agent (run with `sh -c`).
    #[arg(long, env = "TONGBAN_MASTER_KEY_COMMAND", value_name = "COMMAND")]
    pub master_key_command: Option<String>,
    /// File holding the ledger's Ed25519 checkpoint key (Go note `PRIVATE+KEY+…` format);
    /// default: generated in DATA_DIR/secrets.
    #[arg(long, env = "TONGBAN_LEDGER_KEY_FILE", value_name = "FILE")]
    pub ledger_key_file: Option<PathBuf>,
    /// Prefix of every log's checkpoint origin, e.g. `gov.yunling.example/tongban`.
    #[arg(long, env = "TONGBAN_LEDGER_ORIGIN", value_name = "ORIGIN")]
    pub ledger_origin: Option<String>,
}

/// Flags of `tongban serve`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ServeArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Address to listen on.
    #[arg(long, env = "TONGBAN_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// Do not seed the demo province (a clean install).
    #[arg(long, env = "TONGBAN_NO_DEMO")]
    pub no_demo: bool,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "TONGBAN_BODY_LIMIT_BYTES", value_name = "BYTES")]
    pub body_limit_bytes: Option<String>,
    /// PEM certificate chain; with --tls-key, serve HTTPS.
    #[arg(long, env = "TONGBAN_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "TONGBAN_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Minutes of inactivity after which a browser session ends.
    #[arg(long, env = "TONGBAN_SESSION_IDLE_MINUTES", value_name = "MIN")]
    pub session_idle_minutes: Option<String>,
    /// Hours after sign-in at which a browser session ends regardless of activity.
    #[arg(long, env = "TONGBAN_SESSION_ABSOLUTE_HOURS", value_name = "HOURS")]
    pub session_absolute_hours: Option<String>,
    /// Minutes an API access token stays valid.
    #[arg(long, env = "TONGBAN_TOKEN_TTL_MINUTES", value_name = "MIN")]
    pub token_ttl_minutes: Option<String>,
    /// Sign a ledger checkpoint at least this often while there are new entries.
    #[arg(long, env = "TONGBAN_CHECKPOINT_INTERVAL_SECONDS", value_name = "SECS")]
    pub checkpoint_interval_seconds: Option<String>,
    /// …or as soon as this many new entries have arrived.
    #[arg(long, env = "TONGBAN_CHECKPOINT_ENTRIES", value_name = "N")]
    pub checkpoint_entries: Option<String>,
    /// Take scheduled backups into this directory (one subdirectory per backup).
    #[arg(long, env = "TONGBAN_BACKUP_DIR", value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,
    /// Hours between scheduled backups.
    #[arg(long, env = "TONGBAN_BACKUP_INTERVAL_HOURS", value_name = "HOURS")]
    pub backup_interval_hours: Option<String>,
    /// Scheduled backups to keep.
    #[arg(long, env = "TONGBAN_BACKUP_KEEP", value_name = "N")]
    pub backup_keep: Option<String>,
    /// Addresses of load balancers whose X-Forwarded-For header is believed (comma-separated).
    #[arg(long, env = "TONGBAN_TRUSTED_PROXIES", value_name = "ADDRS")]
    pub trusted_proxies: Option<String>,
    /// Addresses of X-Road security servers (comma-separated): a GovStack call they forward
    /// is taken to come from the system its Information-Mediator-Client names, because the
    /// security server authenticated it. Calls from anywhere else prove their system with
    /// its exchange secret.
    #[arg(long, env = "TONGBAN_SECURITY_SERVERS", value_name = "ADDRS")]
    pub security_servers: Option<String>,
    /// Mark cookies Secure although this server speaks plain HTTP (TLS ends at a proxy).
    #[arg(long, env = "TONGBAN_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// Send security alerts by email through this relay: `smtp://HOST[:PORT]` (plain SMTP to
    /// an internal relay).
    #[arg(long, env = "TONGBAN_SMTP_URL", value_name = "URL")]
    pub smtp_url: Option<String>,
    /// Sender address of alert email.
    #[arg(long, env = "TONGBAN_SMTP_FROM", value_name = "ADDR")]
    pub smtp_from: Option<String>,
    /// Recipients of alert email, comma-separated.
    #[arg(long, env = "TONGBAN_ALERT_EMAIL_TO", value_name = "ADDRS")]
    pub alert_email_to: Option<String>,
    /// Seconds a node may reuse a verified API token without asking the database again
    /// (revocation on another node takes at most this long; 0 disables).
    #[arg(long, env = "TONGBAN_AUTH_CACHE_SECONDS", value_name = "SECS")]
    pub auth_cache_seconds: Option<String>,
}

/// The TOML file: every key optional, unknown keys refused.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    database_password_file: Option<PathBuf>,
    database_pool: Option<u32>,
    master_key_file: Option<PathBuf>,
    master_key_command: Option<String>,
    ledger_key_file: Option<PathBuf>,
    ledger_origin: Option<String>,
    checkpoint_interval_seconds: Option<u64>,
    checkpoint_entries: Option<u64>,
    backup_dir: Option<PathBuf>,
    backup_interval_hours: Option<u64>,
    backup_keep: Option<u64>,
    smtp_url: Option<String>,
    smtp_from: Option<String>,
    alert_email_to: Option<String>,
    trusted_proxies: Option<String>,
    security_servers: Option<String>,
    secure_cookies: Option<bool>,
    /// Security monitoring thresholds (see `insight::security::Thresholds`).
    monitoring: Option<insight::security::Thresholds>,
    /// Public holidays and make-up working days (调休) for every deadline:
    /// `[calendar] holidays = ["2026-10-01", …]`, `makeup_days = ["2026-09-27", …]`.
    calendar: Option<services::calendar::WorkingCalendar>,
    /// A virus scanner run on each upload (program and arguments; the file path is appended).
    upload_scan_command: Option<Vec<String>>,
    listen: Option<String>,
    no_demo: Option<bool>,
    body_limit_bytes: Option<u64>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    session_idle_minutes: Option<u64>,
    session_absolute_hours: Option<u64>,
    token_ttl_minutes: Option<u64>,
    auth_cache_seconds: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("invalid value for `{key}`: {reason}")]
    Invalid { key: &'static str, reason: String },
    #[error(transparent)]
    Secret(#[from] kernel::secrets::SecretError),
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key, reason: reason.into() }
}

/// A comma-separated list of IP addresses.
fn addresses(key: &'static str, list: Option<String>) -> Result<Vec<std::net::IpAddr>, ConfigError> {
    let mut out = Vec::new();
    for a in list.unwrap_or_default().split(',').map(str::trim).filter(|a| !a.is_empty()) {
        out.push(a.parse().map_err(|_| invalid(key, format!("{a} is not an IP address")))?);
    }
    Ok(out)
}

/// Where the data lives: resolved from [`DataArgs`].
#[derive(Debug, Clone)]
pub struct DataSettings {
    pub data_dir: PathBuf,
    database_url: SecretString,
    database_pool: Option<u32>,
    pub master_key_file: PathBuf,
    /// The master key file is ours to generate (no explicit source was given).
    pub generate_master_key: bool,
    /// The key given in the environment, or the command that prints it.
    pub master_key_env: Option<SecretString>,
    pub master_key_command: Option<String>,
    pub ledger_key_file: PathBuf,
    pub generate_ledger_key: bool,
    pub ledger_origin: String,
}

impl DataSettings {
    /// Loads the master key from wherever it was configured (generating the default file on
    /// a first start).
    pub fn master_key(&self) -> Result<(kernel::secrets::MasterKey, kernel::secrets::KeySource), ConfigError> {
        use kernel::secrets::{KeySource, MasterKey};
        if let Some(key) = &self.master_key_env {
            return Ok((MasterKey::from_base64(key.expose(), "TONGBAN_MASTER_KEY")?, KeySource::Loaded));
        }
        if let Some(command) = &self.master_key_command {
            let out = std::process::Command::new("sh")
                .args(["-c", command])
                .output()
                .map_err(|e| invalid("master_key_command", format!("cannot run it: {e}")))?;
            if !out.status.success() {
                return Err(invalid(
                    "master_key_command",
                    format!("it failed: {}", String::from_utf8_lossy(&out.stderr).trim()),
                ));
            }
            let text = zeroize::Zeroizing::new(String::from_utf8_lossy(&out.stdout).to_string());
            return Ok((MasterKey::from_base64(&text, "master_key_command")?, KeySource::Loaded));
        }
        Ok(MasterKey::load_or_generate(&self.master_key_file, self.generate_master_key)?)
    }

    pub fn database_url(&self) -> &str {
        self.database_url.expose()
    }

    /// Opens the configured database with the configured pool.
    pub async fn connect(&self) -> Result<kernel::db::Db, kernel::db::DbError> {
        match self.database_pool {
            Some(n) => kernel::db::Db::connect_with_pool(self.database_url(), n).await,
            None => kernel::db::Db::connect(self.database_url()).await,
        }
    }

    /// The URL with any password removed, for logs and messages.
    pub fn database_url_redacted(&self) -> String {
        redact_url(self.database_url.expose())
    }
}

#[derive(Debug, Clone)]
pub struct ServeSettings {
    pub data: DataSettings,
    pub listen: SocketAddr,
    pub demo: bool,
    pub body_limit: usize,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub session: SessionPolicy,
    pub checkpoints: ledger::CheckpointPolicy,
    pub backups: Option<BackupSchedule>,
    pub monitoring: insight::security::Thresholds,
    pub mail: Option<kernel::outbox::Mail>,
    pub trusted_proxies: Vec<std::net::IpAddr>,
    pub security_servers: Vec<std::net::IpAddr>,
    pub secure_cookies: bool,
    pub calendar: services::calendar::WorkingCalendar,
    pub upload_scan_command: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
pub struct BackupSchedule {
    pub dir: PathBuf,
    pub interval: Duration,
    pub keep: usize,
}

impl ServeSettings {
    /// The effective settings as `key = value` lines, secrets left out: what an operator
    /// changed between two starts shows up on the audit trail.
    pub fn summary(&self) -> String {
        let mut lines = vec![
            format!("listen = {}", self.listen),
            format!("database_url = {}", self.data.database_url_redacted()),
            format!("demo = {}", self.demo),
            format!("body_limit_bytes = {}", self.body_limit),
            format!("tls = {}", self.tls.is_some()),
            format!("secure_cookies = {}", self.secure_cookies),
            format!("trusted_proxies = {:?}", self.trusted_proxies),
            format!("security_servers = {:?}", self.security_servers),
            format!("session_idle_minutes = {}", self.session.idle.as_secs() / 60),
            format!("session_absolute_hours = {}", self.session.absolute.as_secs() / 3600),
            format!("token_ttl_minutes = {}", self.session.token_ttl.as_secs() / 60),
            format!("auth_cache_seconds = {}", self.session.auth_cache.as_secs()),
            format!("checkpoint_interval_seconds = {}", self.checkpoints.interval.as_secs()),
            format!("checkpoint_entries = {}", self.checkpoints.entries),
            format!("ledger_origin = {}", self.data.ledger_origin),
            format!("monitoring = {:?}", self.monitoring),
            format!(
                "calendar = {} holidays, {} make-up days",
                self.calendar.holidays.len(),
                self.calendar.makeup_days.len()
            ),
            format!("upload_scan_command = {:?}", self.upload_scan_command),
        ];
        if let Some(b) = &self.backups {
            lines.push(format!(
                "backup_dir = {} every {} h keeping {}",
                b.dir.display(),
                b.interval.as_secs() / 3600,
                b.keep
            ));
        }
        if let Some(m) = &self.mail {
            lines.push(format!("smtp = {}:{} from {} to {}", m.relay, m.port, m.from, m.to.join(",")));
        }
        lines.join("\n")
    }
}

fn load_file(path: Option<&Path>) -> Result<FileConfig, ConfigError> {
    let Some(path) = path else { return Ok(FileConfig::default()) };
    let shown = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|e| ConfigError::File { path: shown.clone(), reason: e.to_string() })?;
    toml::from_str(&text).map_err(|e| ConfigError::File { path: shown, reason: e.to_string() })
}

fn resolve_data(args: &DataArgs, file: &FileConfig) -> Result<DataSettings, ConfigError> {
    let data_dir =
        args.data_dir.clone().or_else(|| file.data_dir.clone()).unwrap_or_else(|| PathBuf::from("tongban-data"));
    if data_dir.as_os_str().is_empty() {
        return Err(invalid("data_dir", "must not be empty"));
    }
    let url = match args.database_url.clone().or_else(|| file.database_url.clone()) {
        Some(url) => url,
        None => format!("sqlite://{}?mode=rwc", data_dir.join("tongban.db").display()),
    };
    if kernel::db::Backend::from_url(&url).is_none() {
        return Err(invalid("database_url", "must start with sqlite: or postgres://"));
    }
    let password_file = args.database_password_file.clone().or_else(|| file.database_password_file.clone());
    let url = match password_file {
        Some(path) => {
            let password = read_secret_file(&path)?;
            with_password(&url, password.expose())
                .ok_or_else(|| invalid("database_password_file", "the database URL must be a postgres:// URL"))?
        }
        None => url,
    };
    let database_pool = args.database_pool.or(file.database_pool);
    if database_pool == Some(0) {
        return Err(invalid("database_pool", "at least one connection"));
    }
    let explicit_key = args.master_key_file.clone().or_else(|| file.master_key_file.clone());
    let master_key_env = args.master_key.clone();
    let master_key_command = args.master_key_command.clone().or_else(|| file.master_key_command.clone());
    if [explicit_key.is_some(), master_key_env.is_some(), master_key_command.is_some()].iter().filter(|x| **x).count()
        > 1
    {
        return Err(invalid(
            "master_key_file",
            "give the master key one way: a file, TONGBAN_MASTER_KEY, or a command",
        ));
    }
    let ledger_key = args.ledger_key_file.clone().or_else(|| file.ledger_key_file.clone());
    let ledger_origin =
        args.ledger_origin.clone().or_else(|| file.ledger_origin.clone()).unwrap_or_else(|| "tongban".into());
    let origin_ok = !ledger_origin.is_empty()
        && ledger_origin.len() <= 200
        && !ledger_origin.contains('+')
        && !ledger_origin.chars().any(|c| c.is_whitespace() || c.is_control());
    if !origin_ok {
        return Err(invalid("ledger_origin", "a non-empty name without spaces or '+'"));
    }
    Ok(DataSettings {
        master_key_file: explicit_key.clone().unwrap_or_else(|| data_dir.join("secrets").join("master.key")),
        generate_master_key: explicit_key.is_none() && master_key_env.is_none() && master_key_command.is_none(),
        master_key_env,
        master_key_command,
        ledger_key_file: ledger_key.clone().unwrap_or_else(|| data_dir.join("secrets").join("ledger.key")),
        generate_ledger_key: ledger_key.is_none(),
        ledger_origin,
        data_dir,
        database_url: SecretString::new(url),
        database_pool,
    })
}

impl DataArgs {
    pub fn resolve(&self) -> Result<DataSettings, ConfigError> {
        let file = load_file(self.config.as_deref())?;
        resolve_data(self, &file)
    }
}

fn number(key: &'static str, cli: Option<&str>, file: Option<u64>, default: u64) -> Result<u64, ConfigError> {
    match cli {
        Some(text) => text.trim().parse::<u64>().map_err(|_| invalid(key, format!("`{text}` is not a whole number"))),
        None => Ok(file.unwrap_or(default)),
    }
}

fn positive(key: &'static str, value: u64) -> Result<u64, ConfigError> {
    if value == 0 { Err(invalid(key, "must be greater than zero")) } else { Ok(value) }
}

impl ServeArgs {
    pub fn resolve(&self) -> Result<ServeSettings, ConfigError> {
        let file = load_file(self.data.config.as_deref())?;
        let data = resolve_data(&self.data, &file)?;
        let listen_text =
            self.listen.clone().or_else(|| file.listen.clone()).unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen: SocketAddr = listen_text
            .parse()
            .map_err(|_| invalid("listen", format!("`{listen_text}` is not an address like 127.0.0.1:8080")))?;
        let body_limit = positive(
            "body_limit_bytes",
            number("body_limit_bytes", self.body_limit_bytes.as_deref(), file.body_limit_bytes, 1024 * 1024)?,
        )?;
        let tls = match (self.tls_cert.clone().or(file.tls_cert.clone()), self.tls_key.clone().or(file.tls_key.clone()))
        {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            (Some(_), None) => return Err(invalid("tls_key", "required when tls_cert is set")),
            (None, Some(_)) => return Err(invalid("tls_cert", "required when tls_key is set")),
        };
        let idle = positive(
            "session_idle_minutes",
            number("session_idle_minutes", self.session_idle_minutes.as_deref(), file.session_idle_minutes, 30)?,
        )?;
        let absolute = positive(
            "session_absolute_hours",
            number("session_absolute_hours", self.session_absolute_hours.as_deref(), file.session_absolute_hours, 12)?,
        )?;
        let token_ttl = positive(
            "token_ttl_minutes",
            number("token_ttl_minutes", self.token_ttl_minutes.as_deref(), file.token_ttl_minutes, 60)?,
        )?;
        let auth_cache = number("auth_cache_seconds", self.auth_cache_seconds.as_deref(), file.auth_cache_seconds, 2)?;
        if auth_cache > 60 {
            return Err(invalid("auth_cache_seconds", "at most 60 seconds"));
        }
        let checkpoint_interval = positive(
            "checkpoint_interval_seconds",
            number(
                "checkpoint_interval_seconds",
                self.checkpoint_interval_seconds.as_deref(),
                file.checkpoint_interval_seconds,
                10,
            )?,
        )?;
        let checkpoint_entries = positive(
            "checkpoint_entries",
            number("checkpoint_entries", self.checkpoint_entries.as_deref(), file.checkpoint_entries, 1000)?,
        )?;
        let backups = self.backup_schedule(&file)?;
        let mail = self.mail(&file)?;
        let monitoring = file.monitoring.clone().unwrap_or_default();
        if monitoring.window_minutes <= 0
            || monitoring.bulk_window_minutes <= 0
            || monitoring.working_hours.0 >= monitoring.working_hours.1
        {
            return Err(invalid(
                "monitoring",
                "windows must be positive and working_hours [start, end) with start < end",
            ));
        }
        let trusted_proxies =
            addresses("trusted_proxies", self.trusted_proxies.clone().or(file.trusted_proxies.clone()))?;
        let security_servers =
            addresses("security_servers", self.security_servers.clone().or(file.security_servers.clone()))?;
        let secure_cookies = self.secure_cookies || file.secure_cookies.unwrap_or(false) || tls.is_some();
        let calendar = file.calendar.clone().unwrap_or_default();
        if let Some(day) = calendar.holidays.intersection(&calendar.makeup_days).next() {
            return Err(invalid("calendar", format!("{day} is both a holiday and a make-up working day")));
        }
        if file.upload_scan_command.as_ref().is_some_and(|c| c.is_empty()) {
            return Err(invalid("upload_scan_command", "name the program to run"));
        }
        Ok(ServeSettings {
            calendar,
            upload_scan_command: file.upload_scan_command.clone(),
            trusted_proxies,
            security_servers,
            secure_cookies,
            mail,
            monitoring,
            backups,
            checkpoints: ledger::CheckpointPolicy {
                interval: Duration::from_secs(checkpoint_interval),
                entries: checkpoint_entries,
            },
            data,
            listen,
            demo: !(self.no_demo || file.no_demo.unwrap_or(false)),
            body_limit: usize::try_from(body_limit).map_err(|_| invalid("body_limit_bytes", "too large"))?,
            tls,
            session: SessionPolicy {
                idle: Duration::from_secs(idle.saturating_mul(60)),
                absolute: Duration::from_secs(absolute.saturating_mul(3600)),
                token_ttl: Duration::from_secs(token_ttl.saturating_mul(60)),
                auth_cache: Duration::from_secs(auth_cache),
            },
        })
    }

    /// Scheduled backups: none without a backup directory.
    fn backup_schedule(&self, file: &FileConfig) -> Result<Option<BackupSchedule>, ConfigError> {
        Ok(match self.backup_dir.clone().or(file.backup_dir.clone()) {
            None => None,
            Some(dir) => {
                let hours = positive(
                    "backup_interval_hours",
                    number(
                        "backup_interval_hours",
                        self.backup_interval_hours.as_deref(),
                        file.backup_interval_hours,
                        24,
                    )?,
                )?;
                let keep =
                    positive("backup_keep", number("backup_keep", self.backup_keep.as_deref(), file.backup_keep, 7)?)?;
                Some(BackupSchedule {
                    dir,
                    interval: Duration::from_secs(hours.saturating_mul(3600)),
                    keep: usize::try_from(keep).unwrap_or(usize::MAX),
                })
            }
        })
    }

    /// Mail for alerts and notices: none without an SMTP relay.
    fn mail(&self, file: &FileConfig) -> Result<Option<kernel::outbox::Mail>, ConfigError> {
        Ok(match self.smtp_url.clone().or(file.smtp_url.clone()) {
            None => None,
            Some(url) => {
                let rest =
                    url.strip_prefix("smtp://").ok_or_else(|| invalid("smtp_url", "must look like smtp://relay:25"))?;
                let (relay, port) = match rest.trim_end_matches('/').rsplit_once(':') {
                    Some((h, p)) => {
                        (h.to_string(), p.parse().map_err(|_| invalid("smtp_url", format!("bad port {p}")))?)
                    }
                    None => (rest.trim_end_matches('/').to_string(), 25),
                };
                let from = self
                    .smtp_from
                    .clone()
                    .or(file.smtp_from.clone())
                    .ok_or_else(|| invalid("smtp_from", "required with smtp_url"))?;
                let to: Vec<String> = self
                    .alert_email_to
                    .clone()
                    .or(file.alert_email_to.clone())
                    .unwrap_or_default()
                    .split(',')
                    .map(|a| a.trim().to_string())
                    .filter(|a| !a.is_empty())
                    .collect();
                if to.is_empty() {
                    return Err(invalid("alert_email_to", "required with smtp_url"));
                }
                for address in std::iter::once(&from).chain(to.iter()) {
                    if address.parse::<lettre::message::Mailbox>().is_err() {
                        return Err(invalid("alert_email_to", format!("{address} is not an email address")));
                    }
                }
                Some(kernel::outbox::Mail { relay, port, from, to })
            }
        })
    }
}

/// Puts a percent-encoded password into a postgres:// URL; None for other schemes.
fn with_password(url: &str, password: &str) -> Option<String> {
    let rest = url.strip_prefix("postgres://").or_else(|| url.strip_prefix("postgresql://"))?;
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let (user, host) = authority.rsplit_once('@')?;
    let user = user.split(':').next().unwrap_or(user);
    let encoded: String = password
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    Some(format!("postgres://{user}:{encoded}@{host}{tail}"))
}

fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    match rest.split_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn unknown_key_is_named() {
        let f = write("listen = \"127.0.0.1:9000\"\nlisten_port = 1\n");
        let args =
            ServeArgs { data: DataArgs { config: Some(f.path().into()), ..Default::default() }, ..Default::default() };
        let err = args.resolve().unwrap_err().to_string();
        assert!(err.contains("listen_port"), "{err}");
    }

    #[test]
    fn invalid_values_name_the_key() {
        let args = ServeArgs { listen: Some("localhost".into()), ..Default::default() };
        assert!(args.resolve().unwrap_err().to_string().contains("`listen`"));
        let args = ServeArgs { body_limit_bytes: Some("lots".into()), ..Default::default() };
        assert!(args.resolve().unwrap_err().to_string().contains("`body_limit_bytes`"));
        let args = ServeArgs {
            data: DataArgs { database_url: Some("mysql://x".into()), ..Default::default() },
            ..Default::default()
        };
        assert!(args.resolve().unwrap_err().to_string().contains("`database_url`"));
        let f = write("session_idle_minutes = \"ten\"\n");
        let args =
            ServeArgs { data: DataArgs { config: Some(f.path().into()), ..Default::default() }, ..Default::default() };
        assert!(args.resolve().unwrap_err().to_string().contains("session_idle_minutes"));
    }

    #[test]
    fn flags_override_file_and_defaults_apply() {
        let f = write("listen = \"127.0.0.1:9000\"\nno_demo = true\ndata_dir = \"/tmp/x\"\n");
        let args = ServeArgs {
            data: DataArgs { config: Some(f.path().into()), ..Default::default() },
            listen: Some("127.0.0.1:9001".into()),
            ..Default::default()
        };
        let s = args.resolve().unwrap();
        assert_eq!(s.listen.port(), 9001);
        assert!(!s.demo);
        assert_eq!(s.data.database_url(), "sqlite:///tmp/x/tongban.db?mode=rwc");
        assert_eq!(s.body_limit, 1024 * 1024);
    }

    #[test]
    fn master_key_from_the_environment_or_a_command() {
        let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let args = DataArgs { master_key: Some(SecretString::new(key.into())), ..Default::default() };
        assert!(!format!("{args:?}").contains(key));
        let env = args.resolve().unwrap();
        assert!(!env.generate_master_key);
        let from_env = env.master_key().unwrap().0;
        let hook =
            DataArgs { master_key_command: Some(format!("echo {key}")), ..Default::default() }.resolve().unwrap();
        assert_eq!(hook.master_key().unwrap().0.id(), from_env.id());
        assert!(!format!("{env:?}").contains(key));
        let failing = DataArgs { master_key_command: Some("exit 3".into()), ..Default::default() }.resolve().unwrap();
        assert!(failing.master_key().unwrap_err().to_string().contains("master_key_command"));
        let both = DataArgs {
            master_key: Some(SecretString::new(key.into())),
            master_key_command: Some("true".into()),
            ..Default::default()
        };
        assert!(both.resolve().is_err());
    }

    #[test]
    fn password_file_goes_into_url_but_not_into_debug() {
        let pw = write("s3cr:t/pw\n");
        let args = DataArgs {
            database_url: Some("postgres://tb@db.internal:5432/tongban".into()),
            database_password_file: Some(pw.path().into()),
            ..Default::default()
        };
        let s = args.resolve().unwrap();
        assert_eq!(s.database_url(), "postgres://tb:s3cr%3At%2Fpw@db.internal:5432/tongban");
        assert!(!format!("{s:?}").contains("s3cr"));
        assert_eq!(s.database_url_redacted(), "postgres://tb:***@db.internal:5432/tongban");
    }
}
