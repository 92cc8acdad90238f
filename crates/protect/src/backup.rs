//! Online, consistent backups with a manifest, and restores that check the manifest and the
//! ledgers before replacing anything.
//!
//! SQLite: `VACUUM INTO` a single file. PostgreSQL: `pg_dump` custom format. Uploaded
//! materials (the content-addressed `documents/` store) are copied beside it, each listed in
//! the manifest with its size and hash. The master key is never in a backup (it is kept
//! apart); the manifest names the key a restore needs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Connection;

use kernel::db::{Backend, Db};
use kernel::secrets::MasterKey;
use ledger::{Ledger, Log};

pub const MANIFEST: &str = "manifest.json";
const SQLITE_FILE: &str = "tongban.db";
const PG_FILE: &str = "tongban.pgdump";
/// The materials' folder, in the data directory and in a backup alike.
pub const DOCUMENTS: &str = "documents";

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0}")]
    Io(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Tool(String),
    #[error("the backup is damaged: {0}")]
    Damaged(String),
    #[error("the backup does not fit here: {0}")]
    Mismatch(String),
    #[error("ledger: {0}")]
    Ledger(String),
    /// The database being replaced signed checkpoints beyond the backup's: restoring would
    /// give the same sizes other roots.
    #[error(
        "restoring would fork the ledger: {0}. Checkpoints of those sizes were signed (and perhaps cosigned \
         by witnesses); the restored log would sign other roots for them. Restore with --accept-fork to go on: \
         the fork is recorded in the audit log, and witnesses must be told"
    )]
    Fork(String),
}

/// A log the restore sets back behind checkpoints already signed.
#[derive(Debug, Clone)]
pub struct Fork {
    pub log: &'static str,
    /// The backup's checkpoint, where the restored log goes on from.
    pub restored_size: u64,
    /// The newest checkpoint the replaced database had signed.
    pub signed_size: u64,
}

impl std::fmt::Display for Fork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} back from {} to {}", self.log, self.signed_size, self.restored_size)
    }
}

/// The logs the restore would set back, judged by the database it replaces (nothing when
/// that database is gone: then only the witnesses know what was signed).
async fn forks(
    target: &Target<'_>,
    manifest: &Manifest,
    open_ledger: &impl Fn(Db) -> Result<Ledger, String>,
) -> Result<Vec<Fork>, BackupError> {
    if target.sqlite_path.as_ref().is_some_and(|p| !p.exists()) {
        return Ok(Vec::new());
    }
    let Ok(db) = Db::connect(target.database_url).await else { return Ok(Vec::new()) };
    let result = async {
        // A database never migrated (an empty one) signed nothing; one that was is read, and
        // a failure to read it stops the restore rather than passing for "nothing signed".
        if schema_version(&db).await.is_err() {
            return Ok(Vec::new());
        }
        let ledger = open_ledger(db.clone()).map_err(BackupError::Ledger)?;
        let mut out = Vec::new();
        for log in Log::ALL {
            let restored_size = manifest.checkpoints.get(log.as_str()).map_or(0, |(size, _)| *size);
            let latest = ledger.latest_checkpoint(log).await.map_err(|e| BackupError::Ledger(e.to_string()))?;
            let Some((signed_size, _)) = latest else { continue };
            if signed_size > restored_size {
                out.push(Fork { log: log.as_str(), restored_size, signed_size });
            }
        }
        Ok(out)
    }
    .await;
    db.close().await;
    result
}

fn io(context: &str, e: std::io::Error) -> BackupError {
    BackupError::Io(format!("{context}: {e}"))
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    pub format: u32,
    pub created_at: String,
    pub backend: String,
    /// The newest migration applied in the backed-up database.
    pub schema_version: i64,
    /// The master key the data is sealed under (the key itself is not in the backup).
    pub master_key_id: String,
    /// The latest checkpoint of each log when the backup began (size and base64 root).
    pub checkpoints: BTreeMap<String, (u64, String)>,
    pub files: Vec<ManifestFile>,
    /// Uploaded materials, by their SHA-256 (which is also their name in `documents/`).
    /// Left out of the manifest when there are none, so that manifests written before
    /// materials were backed up keep their MAC.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub documents: Vec<ManifestDocument>,
    /// HMAC-SHA-256 of the manifest without this field, under a key derived from the master
    /// key: checksums alone would let an edited backup carry matching new checksums.
    #[serde(default)]
    pub mac: String,
}

fn manifest_mac(key: &MasterKey, m: &Manifest) -> Result<String, BackupError> {
    use hmac::{Hmac, Mac};
    let unsigned = Manifest { mac: String::new(), ..m.clone() };
    let bytes = serde_json::to_vec(&unsigned).map_err(|e| BackupError::Io(e.to_string()))?;
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.derive("backup-manifest").as_ref())
        .map_err(|e| BackupError::Io(e.to_string()))?;
    mac.update(&bytes);
    Ok(hex::encode(mac.finalize().into_bytes()))
}

/// A PostgreSQL URL without its password, and the password (for `PGPASSWORD`): the command
/// line of pg_dump is visible to every local user.
fn without_password(url: &str) -> (String, Option<String>) {
    let Some((scheme, rest)) = url.split_once("://") else { return (url.to_string(), None) };
    match rest.split_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, password)) => {
                let decoded = percent_decode(password);
                (format!("{scheme}://{user}@{host}"), Some(decoded))
            }
            None => (url.to_string(), None),
        },
        None => (url.to_string(), None),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(v) = u8::from_str_radix(hex, 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).to_string()
}

/// One uploaded material in a backup.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ManifestDocument {
    pub sha256: String,
    pub bytes: u64,
}

/// Where a material lives under a `documents/` folder: `ab/abcdef…`.
fn document_path(root: &Path, sha256: &str) -> Option<PathBuf> {
    let valid = sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    valid.then(|| root.join(&sha256[..2]).join(sha256))
}

/// Copies every material of the store at `from` into `to`, checking that each still has the
/// content its name says (a damaged file fails the backup rather than being saved as good).
fn copy_documents(from: &Path, to: &Path) -> Result<Vec<ManifestDocument>, BackupError> {
    let mut out = Vec::new();
    if !from.exists() {
        return Ok(out);
    }
    let read = |dir: &Path| std::fs::read_dir(dir).map_err(|e| io(&dir.display().to_string(), e));
    for shard in read(from)? {
        let shard = shard.map_err(|e| io("documents", e))?.path();
        if !shard.is_dir() {
            continue;
        }
        for file in read(&shard)? {
            let file = file.map_err(|e| io("documents", e))?.path();
            // Staging files of uploads in progress start with a dot and are not materials yet.
            let Some(name) = file.file_name().and_then(|n| n.to_str()).filter(|n| !n.starts_with('.')) else {
                continue;
            };
            let Some(target) = document_path(to, name) else { continue };
            if let Some(dir) = target.parent() {
                std::fs::create_dir_all(dir).map_err(|e| io("documents", e))?;
            }
            std::fs::copy(&file, &target).map_err(|e| io(&file.display().to_string(), e))?;
            let (bytes, sha256) = sha256_file(&target)?;
            if sha256 != name {
                return Err(BackupError::Damaged(format!(
                    "the stored material {} no longer has the content it was saved with",
                    file.display()
                )));
            }
            out.push(ManifestDocument { sha256, bytes });
        }
    }
    out.sort_by(|a, b| a.sha256.cmp(&b.sha256));
    Ok(out)
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ManifestFile {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

fn sha256_file(path: &Path) -> Result<(u64, String), BackupError> {
    let mut file = std::fs::File::open(path).map_err(|e| io(&path.display().to_string(), e))?;
    let mut hasher = Sha256::new();
    let bytes = std::io::copy(&mut file, &mut hasher).map_err(|e| io(&path.display().to_string(), e))?;
    Ok((bytes, hex::encode(hasher.finalize())))
}

fn private_dir(dir: &Path) -> Result<(), BackupError> {
    std::fs::create_dir_all(dir).map_err(|e| io(&dir.display().to_string(), e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| io("permissions", e))?;
    }
    Ok(())
}

async fn schema_version(db: &Db) -> Result<i64, BackupError> {
    Ok(sqlx::query_scalar("SELECT MAX(version) AS v FROM _sqlx_migrations").fetch_one(&db.pool).await?)
}

/// Runs a command-line tool (pg_dump, pg_restore), reporting its own error text.
async fn tool(program: &str, args: &[&str], password: Option<&str>) -> Result<(), BackupError> {
    let mut command = tokio::process::Command::new(program);
    command.args(args);
    if let Some(p) = password {
        command.env("PGPASSWORD", p);
    }
    let out = command
        .output()
        .await
        .map_err(|e| BackupError::Tool(format!("cannot run {program} (install postgresql-client): {e}")))?;
    if !out.status.success() {
        return Err(BackupError::Tool(format!("{program} failed: {}", String::from_utf8_lossy(&out.stderr).trim())));
    }
    Ok(())
}

/// Takes a consistent snapshot into `out` (which must not exist or be empty) while the
/// platform keeps serving, and writes its manifest.
/// `documents` is the materials' store (`DATA_DIR/documents`).
pub async fn backup(
    db: &Db,
    database_url: &str,
    master_key: &MasterKey,
    ledger: &Ledger,
    documents: &Path,
    out: &Path,
    now: DateTime<Utc>,
) -> Result<Manifest, BackupError> {
    if out.exists() && std::fs::read_dir(out).map_err(|e| io("output", e))?.next().is_some() {
        return Err(BackupError::Io(format!("{} is not empty", out.display())));
    }
    private_dir(out)?;
    let written = write_backup(db, database_url, master_key, ledger, documents, out, now).await;
    if written.is_err() {
        // No half-written backup is left to be mistaken for a good one.
        let _ = std::fs::remove_dir_all(out);
    }
    written
}

async fn write_backup(
    db: &Db,
    database_url: &str,
    master_key: &MasterKey,
    ledger: &Ledger,
    documents: &Path,
    out: &Path,
    now: DateTime<Utc>,
) -> Result<Manifest, BackupError> {
    // Checkpoints first (the ledger folds journaled entries before it reads a tree): everything
    // acknowledged before the backup and everything the checkpoints cover is in the snapshot
    // taken after.
    let mut checkpoints = BTreeMap::new();
    for log in Log::ALL {
        ledger.checkpoint_if_behind(log, now).await.map_err(|e| BackupError::Ledger(e.to_string()))?;
        if let Some((size, root)) =
            ledger.latest_checkpoint(log).await.map_err(|e| BackupError::Ledger(e.to_string()))?
        {
            checkpoints.insert(log.as_str().to_string(), (size, B64.encode(root)));
        }
    }
    let file = match db.backend {
        Backend::Sqlite => {
            let path = out.join(SQLITE_FILE);
            sqlx::query("VACUUM INTO $1").bind(path.display().to_string()).execute(&db.pool).await?;
            SQLITE_FILE
        }
        Backend::Postgres => {
            let path = out.join(PG_FILE).display().to_string();
            let (url, password) = without_password(database_url);
            let args = ["--format=custom", "--no-owner", "--no-privileges", "--file", &path, &url];
            tool("pg_dump", &args, password.as_deref()).await?;
            PG_FILE
        }
    };
    let path = out.join(file);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(|e| io("permissions", e))?;
    }
    let (bytes, sha256) = sha256_file(&path)?;
    // After the snapshot: a material is on disk before the row naming it commits, so every
    // material the snapshot names is copied (and perhaps a few newer ones, named by nothing).
    let documents = tokio::task::spawn_blocking({
        let (from, to) = (documents.to_path_buf(), out.join(DOCUMENTS));
        move || copy_documents(&from, &to)
    })
    .await
    .map_err(|e| BackupError::Io(e.to_string()))??;
    let mut manifest = Manifest {
        format: 1,
        created_at: now.to_rfc3339_opts(SecondsFormat::Secs, true),
        backend: db.backend.name().into(),
        schema_version: schema_version(db).await?,
        master_key_id: master_key.id().into(),
        checkpoints,
        files: vec![ManifestFile { name: file.into(), bytes, sha256 }],
        documents,
        mac: String::new(),
    };
    manifest.mac = manifest_mac(master_key, &manifest)?;
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| BackupError::Io(e.to_string()))?;
    std::fs::write(out.join(MANIFEST), text).map_err(|e| io("manifest", e))?;
    Ok(manifest)
}

/// Reads a backup's manifest, checks its MAC under `key` and every file against it.
pub fn check(from: &Path, key: &MasterKey) -> Result<Manifest, BackupError> {
    let text = std::fs::read_to_string(from.join(MANIFEST))
        .map_err(|e| BackupError::Damaged(format!("{} cannot be read: {e}", from.join(MANIFEST).display())))?;
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| BackupError::Damaged(format!("manifest: {e}")))?;
    if manifest.format != 1 || manifest.files.is_empty() {
        return Err(BackupError::Damaged("unknown manifest format".into()));
    }
    if manifest.master_key_id != key.id() {
        return Err(BackupError::Mismatch(format!(
            "the data is sealed under master key {}, but the key given is {}",
            manifest.master_key_id,
            key.id()
        )));
    }
    let expected = manifest_mac(key, &manifest)?;
    if !bool::from(subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), manifest.mac.as_bytes())) {
        return Err(BackupError::Damaged("the manifest's MAC does not match: it was changed".into()));
    }
    for log in Log::ALL {
        if !manifest.checkpoints.contains_key(log.as_str()) {
            return Err(BackupError::Damaged(format!("the manifest lacks the {} checkpoint", log.as_str())));
        }
    }
    for f in &manifest.files {
        if f.name.contains('/') || f.name.contains("..") {
            return Err(BackupError::Damaged(format!("file name {}", f.name)));
        }
        let (bytes, sha256) = sha256_file(&from.join(&f.name)).map_err(|e| BackupError::Damaged(e.to_string()))?;
        if bytes != f.bytes || sha256 != f.sha256 {
            return Err(BackupError::Damaged(format!("{} does not match its checksum in the manifest", f.name)));
        }
    }
    for d in &manifest.documents {
        let path = document_path(&from.join(DOCUMENTS), &d.sha256)
            .ok_or_else(|| BackupError::Damaged(format!("material name {}", d.sha256)))?;
        let (bytes, sha256) = sha256_file(&path).map_err(|e| BackupError::Damaged(e.to_string()))?;
        if bytes != d.bytes || sha256 != d.sha256 {
            return Err(BackupError::Damaged(format!("material {} does not match the manifest", d.sha256)));
        }
    }
    Ok(manifest)
}

/// Puts the backup's materials into the store at `to`: each checked again after copying,
/// those already there with the right content left alone.
fn restore_documents(from: &Path, manifest: &Manifest, to: &Path) -> Result<usize, BackupError> {
    let mut copied = 0;
    for d in &manifest.documents {
        let (Some(source), Some(target)) = (document_path(from, &d.sha256), document_path(to, &d.sha256)) else {
            return Err(BackupError::Damaged(format!("material name {}", d.sha256)));
        };
        if sha256_file(&target).is_ok_and(|(_, sha)| sha == d.sha256) {
            continue;
        }
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io("documents", e))?;
        }
        let staging = target.with_file_name(format!(".{}.restoring", d.sha256));
        std::fs::copy(&source, &staging).map_err(|e| io(&source.display().to_string(), e))?;
        if sha256_file(&staging)?.1 != d.sha256 {
            let _ = std::fs::remove_file(&staging);
            return Err(BackupError::Damaged(format!("material {} changed while it was restored", d.sha256)));
        }
        std::fs::rename(&staging, &target).map_err(|e| io("documents", e))?;
        copied += 1;
    }
    Ok(copied)
}

/// Where a restore puts the data, and how to open it.
pub struct Target<'a> {
    pub database_url: &'a str,
    /// The SQLite file (for SQLite targets).
    pub sqlite_path: Option<PathBuf>,
    pub master_key: &'a MasterKey,
    /// The materials' store to restore into (`DATA_DIR/documents`).
    pub documents: &'a Path,
}

/// What a restore checked.
#[derive(Debug)]
pub struct Restored {
    pub manifest: Manifest,
    /// (log, entries verified)
    pub verified: Vec<(&'static str, u64)>,
    /// Where the replaced database was kept (a file path, or a PostgreSQL database name).
    pub kept_aside: String,
    /// Materials copied back into the store (those already there are left alone).
    pub documents: usize,
    /// The logs set back behind checkpoints the replaced database had signed (only with
    /// `accept_fork`).
    pub forks: Vec<Fork>,
}

/// Checks the manifest, stages the data beside the target, migrates it, checks the
/// manifest's checkpoints and verifies every ledger on the staged copy, and only then
/// replaces the target, keeping the old database aside. The server must be stopped.
///
/// A restore that would set a log back behind checkpoints the replaced database signed is
/// refused unless `accept_fork`: the caller then records the fork.
pub async fn restore(
    from: &Path,
    target: &Target<'_>,
    open_ledger: impl Fn(Db) -> Result<Ledger, String>,
    accept_fork: bool,
    now: DateTime<Utc>,
) -> Result<Restored, BackupError> {
    let manifest = check(from, target.master_key)?;
    let backend =
        Backend::from_url(target.database_url).ok_or(BackupError::Mismatch("unsupported database URL".into()))?;
    if manifest.backend != backend.name() {
        return Err(BackupError::Mismatch(format!("a {} backup cannot go into {}", manifest.backend, backend.name())));
    }
    let forks = forks(target, &manifest, &open_ledger).await?;
    if !forks.is_empty() && !accept_fork {
        let list: Vec<String> = forks.iter().map(Fork::to_string).collect();
        return Err(BackupError::Fork(list.join(", ")));
    }
    let aside = format!("before_restore_{}", now.format("%Y%m%d%H%M%S"));
    let file = from.join(&manifest.files.first().ok_or(BackupError::Damaged("no files".into()))?.name);
    match backend {
        Backend::Sqlite => {
            let target_path = target.sqlite_path.clone().ok_or(BackupError::Mismatch("no SQLite path".into()))?;
            let staged = target_path.with_extension("db.restoring");
            if let Some(dir) = staged.parent() {
                private_dir(dir)?;
            }
            std::fs::copy(&file, &staged).map_err(|e| io("staging", e))?;
            let staged_url = format!("sqlite://{}?mode=rw", staged.display());
            let verified = match check_staged(&staged_url, &manifest, &open_ledger).await {
                Ok(v) => v,
                Err(e) => {
                    let _ = std::fs::remove_file(&staged);
                    return Err(e);
                }
            };
            // Materials go back before the database that names them.
            let documents = match restore_documents(&from.join(DOCUMENTS), &manifest, target.documents) {
                Ok(n) => n,
                Err(e) => {
                    let _ = std::fs::remove_file(&staged);
                    return Err(e);
                }
            };
            // The old database, with its WAL and the journals not yet folded into it, is
            // kept aside, not deleted.
            for suffix in ["", "-wal", "-shm", ".journal"] {
                let old = PathBuf::from(format!("{}{suffix}", target_path.display()));
                if old.exists() {
                    let kept = PathBuf::from(format!("{}.{aside}{suffix}", target_path.display()));
                    std::fs::rename(&old, &kept).map_err(|e| io("keeping the old database aside", e))?;
                }
            }
            std::fs::rename(&staged, &target_path).map_err(|e| io("installing the restored database", e))?;
            let kept_aside = format!("{}.{aside}", target_path.display());
            Ok(Restored { manifest, verified, kept_aside, documents, forks })
        }
        Backend::Postgres => {
            sqlx::any::install_default_drivers();
            let (admin, name) = split_pg_url(target.database_url)?;
            let staged_name = format!("{name}_restoring");
            let staged_url = with_database(target.database_url, &staged_name)?;
            let (staged_tool_url, password) = without_password(&staged_url);
            let mut conn = sqlx::AnyConnection::connect(&admin).await?;
            let drop_staged = format!("DROP DATABASE IF EXISTS \"{staged_name}\" WITH (FORCE)");
            sqlx::query(sqlx::AssertSqlSafe(drop_staged.clone())).execute(&mut conn).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{staged_name}\""))).execute(&mut conn).await?;
            let path = file.display().to_string();
            let restored = async {
                let args = ["--no-owner", "--no-privileges", "--exit-on-error", "--dbname", &staged_tool_url, &path];
                tool("pg_restore", &args, password.as_deref()).await?;
                let verified = check_staged(&staged_url, &manifest, &open_ledger).await?;
                // Materials go back before the database that names them.
                let documents = restore_documents(&from.join(DOCUMENTS), &manifest, target.documents)?;
                Ok((verified, documents))
            }
            .await;
            let (verified, documents) = match restored {
                Ok(v) => v,
                Err(e) => {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(drop_staged)).execute(&mut conn).await;
                    return Err(e);
                }
            };
            // The old database is kept aside under another name, not dropped.
            let kept = format!("{name}_{aside}");
            let exists = sqlx::query("SELECT 1 AS one FROM pg_database WHERE datname = $1")
                .bind(&name)
                .fetch_optional(&mut conn)
                .await?;
            if exists.is_some() {
                let rename = format!("ALTER DATABASE \"{name}\" RENAME TO \"{kept}\"");
                sqlx::query(sqlx::AssertSqlSafe(rename)).execute(&mut conn).await?;
            }
            let install = format!("ALTER DATABASE \"{staged_name}\" RENAME TO \"{name}\"");
            sqlx::query(sqlx::AssertSqlSafe(install)).execute(&mut conn).await?;
            Ok(Restored { manifest, verified, kept_aside: kept, documents, forks })
        }
    }
}

/// The same URL naming another database.
fn with_database(url: &str, database: &str) -> Result<String, BackupError> {
    let (base, rest) = url.rsplit_once('/').ok_or(BackupError::Mismatch("database URL without a name".into()))?;
    let query = rest.split_once('?').map(|(_, q)| format!("?{q}")).unwrap_or_default();
    Ok(format!("{base}/{database}{query}"))
}

/// `postgres://…/name?…` → (the same server's `postgres` database URL, name).
fn split_pg_url(url: &str) -> Result<(String, String), BackupError> {
    let (base, rest) = url.rsplit_once('/').ok_or(BackupError::Mismatch("database URL without a name".into()))?;
    let (name, query) = match rest.split_once('?') {
        Some((n, q)) => (n, format!("?{q}")),
        None => (rest, String::new()),
    };
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(BackupError::Mismatch(format!("database name {name:?}")));
    }
    Ok((format!("{base}/postgres{query}"), name.to_string()))
}

async fn check_staged(
    url: &str,
    manifest: &Manifest,
    open_ledger: &impl Fn(Db) -> Result<Ledger, String>,
) -> Result<Vec<(&'static str, u64)>, BackupError> {
    let db = Db::connect(url).await.map_err(|e| BackupError::Damaged(e.to_string()))?;
    let result = async {
        let version = schema_version(&db).await?;
        if version != manifest.schema_version {
            return Err(BackupError::Damaged(format!(
                "schema version {version}, manifest says {}",
                manifest.schema_version
            )));
        }
        db.migrate().await.map_err(|e| BackupError::Damaged(e.to_string()))?;
        let ledger = open_ledger(db.clone()).map_err(BackupError::Ledger)?;
        let mut verified = Vec::new();
        for log in Log::ALL {
            if let Some((size, root)) = manifest.checkpoints.get(log.as_str()) {
                let stored =
                    ledger.checkpoint_root(log, *size).await.map_err(|e| BackupError::Ledger(e.to_string()))?;
                if stored.map(|r| B64.encode(r)).as_deref() != Some(root.as_str()) {
                    return Err(BackupError::Damaged(format!(
                        "the {} checkpoint {size} differs from the manifest",
                        log.as_str()
                    )));
                }
            }
            let v = ledger.verify(log, |_, _| {}).await.map_err(|e| BackupError::Damaged(e.to_string()))?;
            verified.push((log.as_str(), v.entries));
        }
        Ok(verified)
    }
    .await;
    db.close().await;
    result
}

/// Scheduled backups: `DIR/tongban-YYYYMMDD-HHMMSS`, keeping the newest `keep`.
pub fn prune(dir: &Path, keep: usize) -> Result<Vec<PathBuf>, BackupError> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| io(&dir.display().to_string(), e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir() && p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("tongban-")))
        // Only complete backups (with a manifest) count towards `keep`.
        .filter(|p| p.join(MANIFEST).exists())
        .collect();
    found.sort();
    let excess = found.len().saturating_sub(keep);
    let removed: Vec<PathBuf> = found.into_iter().take(excess).collect();
    for p in &removed {
        std::fs::remove_dir_all(p).map_err(|e| io(&p.display().to_string(), e))?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pg_urls() {
        assert_eq!(
            split_pg_url("postgres://u:p@h:5432/tongban?sslmode=disable").unwrap(),
            ("postgres://u:p@h:5432/postgres?sslmode=disable".to_string(), "tongban".to_string())
        );
        assert!(split_pg_url("postgres://h/bad name").is_err());
    }

    #[test]
    fn prune_keeps_the_newest_complete_backups() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["tongban-20261101-000000", "tongban-20261102-000000", "tongban-20261103-000000", "other"] {
            std::fs::create_dir(dir.path().join(n)).unwrap();
            std::fs::write(dir.path().join(n).join(MANIFEST), "{}").unwrap();
        }
        // A failed backup without a manifest neither counts towards `keep` nor is pruned.
        std::fs::create_dir(dir.path().join("tongban-20261104-000000")).unwrap();
        let removed = prune(dir.path(), 2).unwrap();
        assert_eq!(removed, vec![dir.path().join("tongban-20261101-000000")]);
        assert!(dir.path().join("other").exists());
    }

    #[test]
    fn passwords_leave_the_url() {
        assert_eq!(
            without_password("postgres://tb:s3cr%3At@db:5432/tongban"),
            ("postgres://tb@db:5432/tongban".to_string(), Some("s3cr:t".to_string()))
        );
        assert_eq!(without_password("postgres://tb@db/tongban"), ("postgres://tb@db/tongban".to_string(), None));
        // The user may have the database's name: only the database part changes.
        assert_eq!(
            with_database("postgres://tongban@h/tongban?x=1", "tongban_restoring").unwrap(),
            "postgres://tongban@h/tongban_restoring?x=1"
        );
    }

    #[test]
    fn a_changed_byte_or_a_recomputed_checksum_is_refused() {
        let key = MasterKey::from_bytes([1u8; 32]);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tongban.db"), b"data").unwrap();
        let (bytes, sha256) = sha256_file(&dir.path().join("tongban.db")).unwrap();
        let checkpoints = Log::ALL.iter().map(|l| (l.as_str().to_string(), (1u64, "root".to_string()))).collect();
        let mut manifest = Manifest {
            format: 1,
            created_at: "2026-11-21T00:00:00Z".into(),
            backend: "sqlite".into(),
            schema_version: 6,
            master_key_id: key.id().into(),
            checkpoints,
            files: vec![ManifestFile { name: "tongban.db".into(), bytes, sha256 }],
            documents: Vec::new(),
            mac: String::new(),
        };
        manifest.mac = manifest_mac(&key, &manifest).unwrap();
        std::fs::write(dir.path().join(MANIFEST), serde_json::to_string(&manifest).unwrap()).unwrap();
        assert_eq!(check(dir.path(), &key).unwrap(), manifest);
        assert!(matches!(check(dir.path(), &MasterKey::from_bytes([2u8; 32])), Err(BackupError::Mismatch(_))));
        std::fs::write(dir.path().join("tongban.db"), b"dara").unwrap();
        assert!(matches!(check(dir.path(), &key), Err(BackupError::Damaged(_))));
        // An intruder who also rewrites the checksum is caught by the MAC.
        let (bytes, sha256) = sha256_file(&dir.path().join("tongban.db")).unwrap();
        let forged = Manifest { files: vec![ManifestFile { name: "tongban.db".into(), bytes, sha256 }], ..manifest };
        std::fs::write(dir.path().join(MANIFEST), serde_json::to_string(&forged).unwrap()).unwrap();
        assert!(matches!(check(dir.path(), &key), Err(BackupError::Damaged(m)) if m.contains("MAC")));
    }
}
