//! Storage: one pool over SQLite or PostgreSQL, embedded migrations for each.
//!
//! Queries are written once with `$n` placeholders, which both SQLite and PostgreSQL accept;
//! values are limited to the types the `Any` driver carries (text, integers, floats, bytes).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor, Row};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// The database handle every module's repository uses.
#[derive(Clone, Debug)]
pub struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
    /// SQLite has one writer: writers queue here, in order and without holding a pooled
    /// connection, instead of spinning in the busy handler with connections the readers need.
    writer: Arc<tokio::sync::Mutex<()>>,
}

/// A write transaction from [`Db::begin`]; derefs to its connection. Dropping it
/// without committing rolls back.
pub struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _writer: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

impl WriteTx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database URL must start with sqlite: or postgres://")]
    UnsupportedUrl,
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Query(#[source] sqlx::Error),
    #[error(
        "this database is bound to master key {stored}, but the key given is {given}: start every node with the same \
         master key file"
    )]
    MasterKeyMismatch { stored: String, given: String },
}

impl Db {
    pub async fn connect(url: &str) -> Result<Db, DbError> {
        let max = match Backend::from_url(url) {
            Some(Backend::Postgres) => 16,
            _ => 8,
        };
        Db::connect_with_pool(url, max).await
    }

    /// [`Db::connect`] with a pool of `max_connections`. Code never waits for a second
    /// pooled connection while it holds one (that deadlocks once every connection is held
    /// by a request doing the same), so the service tests run on a pool of one to prove it.
    pub async fn connect_with_pool(url: &str, max_connections: u32) -> Result<Db, DbError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url).ok_or(DbError::UnsupportedUrl)?;
        let options = AnyConnectOptions::from_str(url).map_err(DbError::Connect)?;
        let pool_options =
            AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10)).max_connections(max_connections);
        let pool_options = match backend {
            // A file cannot drop the connection: no ping before every checkout (a round trip
            // through the connection's worker thread each time).
            Backend::Sqlite => pool_options.test_before_acquire(false).after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; \
                         PRAGMA busy_timeout = 10000; PRAGMA synchronous = FULL;",
                    )
                    .await?;
                    Ok(())
                })
            }),
            Backend::Postgres => pool_options,
        };
        let pool = pool_options.connect_with(options).await.map_err(DbError::Connect)?;
        Ok(Db { pool, backend, writer: Arc::new(tokio::sync::Mutex::new(())) })
    }

    pub async fn migrate(&self) -> Result<(), DbError> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await?,
        }
        Ok(())
    }

    /// A write transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`):
    /// a deferred transaction that reads first would fail with SQLITE_BUSY when another
    /// connection commits before its first write.
    pub async fn begin(&self) -> Result<WriteTx, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => {
                let writer = self.writer.clone().lock_owned().await;
                Ok(WriteTx { tx: self.pool.begin_with("BEGIN IMMEDIATE").await?, _writer: Some(writer) })
            }
            Backend::Postgres => Ok(WriteTx { tx: self.pool.begin().await?, _writer: None }),
        }
    }

    /// Binds the database to a master key on first use; afterwards refuses another key, so
    /// that a node started with a different (say, freshly generated) key cannot serve
    /// secrets it cannot open.
    pub async fn bind_master_key(&self, key_id: &str) -> Result<(), DbError> {
        let mut tx = self.begin().await.map_err(DbError::Query)?;
        let stored: Option<String> = sqlx::query("SELECT value FROM platform_settings WHERE key = 'master_key_id'")
            .fetch_optional(&mut *tx)
            .await
            .map_err(DbError::Query)?
            .map(|r| r.try_get("value"))
            .transpose()
            .map_err(DbError::Query)?;
        match stored {
            Some(id) if id == key_id => Ok(()),
            Some(id) => Err(DbError::MasterKeyMismatch { stored: id, given: key_id.to_string() }),
            None => {
                sqlx::query("INSERT INTO platform_settings (key, value) VALUES ('master_key_id', $1)")
                    .bind(key_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(DbError::Query)?;
                tx.commit().await.map_err(DbError::Query)
            }
        }
    }

    /// True when the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A fact in `platform_settings`.
pub async fn read_setting(c: &mut sqlx::AnyConnection, key: &str) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query("SELECT value FROM platform_settings WHERE key = $1").bind(key).fetch_optional(c).await?;
    row.map(|r| r.try_get("value")).transpose()
}

pub async fn write_setting(c: &mut sqlx::AnyConnection, key: &str, value: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO platform_settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(key)
    .bind(value)
    .execute(c)
    .await?;
    Ok(())
}

/// Milliseconds since the Unix epoch, the storage form of every timestamp (always UTC).
pub fn millis(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_millis()
}

pub fn from_millis(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// A new time-ordered identifier (UUIDv7) as text.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
