//! Online, consistent backups with a manifest, and restores that check the manifest and the
//! ledgers before replacing anything.
//!
//! SQLite: `VACUUM INTO` a single file. PostgreSQL: `pg_dump` custom format. The master key is
//! never in a backup (it is kept apart); the manifest names the key a restore needs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{Connection, Row};

use crate::db::{Backend, Db};
use crate::ledger::{Ledger, Log};

pub const MANIFEST: &str = "manifest.json";
const SQLITE_FILE: &str = "tongban.db";
const PG_FILE: &str = "tongban.pgdump";

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
}

fn io(context: &str, e: std::io::Error) -> BackupError {
    BackupError::Io(format!("{context}: {e}"))
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
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
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
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
    Ok(sqlx::query("SELECT MAX(version) AS v FROM _sqlx_migrations").fetch_one(&db.pool).await?.try_get("v")?)
}

/// Runs a command-line tool (pg_dump, pg_restore), reporting its own error text.
async fn tool(program: &str, args: &[&str]) -> Result<(), BackupError> {
    let out = tokio::process::Command::new(program)
        .args(args)
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
pub async fn backup(
    db: &Db,
    database_url: &str,
    master_key_id: &str,
    ledger: &Ledger,
    out: &Path,
    now: DateTime<Utc>,
) -> Result<Manifest, BackupError> {
    if out.exists() && std::fs::read_dir(out).map_err(|e| io("output", e))?.next().is_some() {
        return Err(BackupError::Io(format!("{} is not empty", out.display())));
    }
    private_dir(out)?;
    // Checkpoint first: everything the checkpoints cover is in the snapshot taken after.
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
            tool("pg_dump", &["--format=custom", "--no-owner", "--no-privileges", "--file", &path, database_url])
                .await?;
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
    let manifest = Manifest {
        format: 1,
        created_at: now.to_rfc3339_opts(SecondsFormat::Secs, true),
        backend: db.backend.name().into(),
        schema_version: schema_version(db).await?,
        master_key_id: master_key_id.into(),
        checkpoints,
        files: vec![ManifestFile { name: file.into(), bytes, sha256 }],
    };
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| BackupError::Io(e.to_string()))?;
    std::fs::write(out.join(MANIFEST), text).map_err(|e| io("manifest", e))?;
    Ok(manifest)
}

/// Reads a backup's manifest and checks every file against it.
pub fn check(from: &Path) -> Result<Manifest, BackupError> {
    let text = std::fs::read_to_string(from.join(MANIFEST))
        .map_err(|e| BackupError::Damaged(format!("{} cannot be read: {e}", from.join(MANIFEST).display())))?;
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| BackupError::Damaged(format!("manifest: {e}")))?;
    if manifest.format != 1 || manifest.files.is_empty() {
        return Err(BackupError::Damaged("unknown manifest format".into()));
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
    Ok(manifest)
}

/// Where a restore puts the data, and how to open it.
pub struct Target<'a> {
    pub database_url: &'a str,
    /// The SQLite file (for SQLite targets).
    pub sqlite_path: Option<PathBuf>,
    pub master_key_id: &'a str,
}

/// What a restore checked.
#[derive(Debug)]
pub struct Restored {
    pub manifest: Manifest,
    /// (log, entries verified)
    pub verified: Vec<(&'static str, u64)>,
}

/// Checks the manifest, stages the data beside the target, migrates it, checks the
/// manifest's checkpoints and verifies every ledger on the staged copy, and only then
/// replaces the target. The server must be stopped.
pub async fn restore(
    from: &Path,
    target: &Target<'_>,
    open_ledger: impl Fn(Db) -> Result<Ledger, String>,
) -> Result<Restored, BackupError> {
    let manifest = check(from)?;
    let backend =
        Backend::from_url(target.database_url).ok_or(BackupError::Mismatch("unsupported database URL".into()))?;
    if manifest.backend != backend.name() {
        return Err(BackupError::Mismatch(format!("a {} backup cannot go into {}", manifest.backend, backend.name())));
    }
    if manifest.master_key_id != target.master_key_id {
        return Err(BackupError::Mismatch(format!(
            "the data is sealed under master key {}, but the key given is {}",
            manifest.master_key_id, target.master_key_id
        )));
    }
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
            let verified = check_staged(&staged_url, &manifest, &open_ledger).await;
            let verified = match verified {
                Ok(v) => v,
                Err(e) => {
                    let _ = std::fs::remove_file(&staged);
                    return Err(e);
                }
            };
            for suffix in ["-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", target_path.display()));
            }
            std::fs::rename(&staged, &target_path).map_err(|e| io("installing the restored database", e))?;
            Ok(Restored { manifest, verified })
        }
        Backend::Postgres => {
            sqlx::any::install_default_drivers();
            let (admin, name) = split_pg_url(target.database_url)?;
            let staged_name = format!("{name}_restoring");
            let staged_url = target.database_url.replace(&format!("/{name}"), &format!("/{staged_name}"));
            let mut conn = sqlx::AnyConnection::connect(&admin).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{staged_name}\" WITH (FORCE)")))
                .execute(&mut conn)
                .await?;
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{staged_name}\""))).execute(&mut conn).await?;
            let path = file.display().to_string();
            let restored = async {
                tool(
                    "pg_restore",
                    &["--no-owner", "--no-privileges", "--exit-on-error", "--dbname", &staged_url, &path],
                )
                .await?;
                check_staged(&staged_url, &manifest, &open_ledger).await
            }
            .await;
            let verified = match restored {
                Ok(v) => v,
                Err(e) => {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS \"{staged_name}\" WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await;
                    return Err(e);
                }
            };
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")))
                .execute(&mut conn)
                .await?;
            sqlx::query(sqlx::AssertSqlSafe(format!("ALTER DATABASE \"{staged_name}\" RENAME TO \"{name}\"")))
                .execute(&mut conn)
                .await?;
            Ok(Restored { manifest, verified })
        }
    }
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
    fn prune_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["tongban-20261101-000000", "tongban-20261102-000000", "tongban-20261103-000000", "other"] {
            std::fs::create_dir(dir.path().join(n)).unwrap();
        }
        let removed = prune(dir.path(), 2).unwrap();
        assert_eq!(removed, vec![dir.path().join("tongban-20261101-000000")]);
        assert!(dir.path().join("other").exists());
    }

    #[test]
    fn a_changed_byte_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tongban.db"), b"data").unwrap();
        let (bytes, sha256) = sha256_file(&dir.path().join("tongban.db")).unwrap();
        let manifest = Manifest {
            format: 1,
            created_at: "2026-11-21T00:00:00Z".into(),
            backend: "sqlite".into(),
            schema_version: 6,
            master_key_id: "k".into(),
            checkpoints: BTreeMap::new(),
            files: vec![ManifestFile { name: "tongban.db".into(), bytes, sha256 }],
        };
        std::fs::write(dir.path().join(MANIFEST), serde_json::to_string(&manifest).unwrap()).unwrap();
        assert_eq!(check(dir.path()).unwrap(), manifest);
        std::fs::write(dir.path().join("tongban.db"), b"dara").unwrap();
        assert!(matches!(check(dir.path()), Err(BackupError::Damaged(_))));
    }
}
