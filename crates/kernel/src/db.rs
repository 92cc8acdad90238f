//! Storage: one pool over SQLite or PostgreSQL, and the embedded migrations.
//!
//! Queries are written once with `$n` placeholders, which both SQLite and PostgreSQL accept;
//! values are limited to the types the `Any` driver carries (text, integers, floats, bytes).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

pub mod journal;
mod migrations;

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
    writer: Writer,
    /// Work waiting to join the next group commit ([`Db::write_grouped`]).
    group: tokio::sync::mpsc::Sender<GroupUnit>,
    /// The SQLite database's file, beside which its journals live.
    file: Option<std::path::PathBuf>,
    /// Journals whose records [`Db::settle`] folds before a read.
    journals: Arc<std::sync::Mutex<Vec<std::sync::Weak<journal::Shared>>>>,
}

/// Opens write transactions. SQLite has one writer: writers queue on `lock`, in order and
/// without holding a pooled connection, instead of spinning in the busy handler with
/// connections the readers need.
#[derive(Clone, Debug)]
struct Writer {
    pool: AnyPool,
    backend: Backend,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl Writer {
    async fn begin(&self) -> Result<WriteTx, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => {
                let writer = self.lock.clone().lock_owned().await;
                Ok(WriteTx { tx: self.pool.begin_with("BEGIN IMMEDIATE").await?, _writer: Some(writer), bulk: false })
            }
            Backend::Postgres => Ok(WriteTx { tx: self.pool.begin().await?, _writer: None, bulk: false }),
        }
    }
}

/// A future borrowing the shared transaction's connection.
pub type GroupFuture<'c, R> = std::pin::Pin<Box<dyn std::future::Future<Output = R> + Send + 'c>>;

/// One caller's work in a group commit, type-erased: it runs in its own savepoint and says
/// whether to keep its writes and how to hand its result over once the group has committed.
type GroupUnit = Box<dyn for<'c> FnOnce(&'c mut sqlx::AnyConnection) -> GroupFuture<'c, Settled> + Send>;

struct Settled {
    keep: bool,
    deliver: Box<dyn FnOnce() + Send>,
}

/// Items waiting for [`Db::write_batched`], each with the channel its answer goes back on.
pub struct Batch<T, R> {
    queue: std::sync::Mutex<Vec<(T, tokio::sync::oneshot::Sender<R>)>>,
}

impl<T, R> Default for Batch<T, R> {
    fn default() -> Self {
        Batch { queue: std::sync::Mutex::new(Vec::new()) }
    }
}

impl<T, R> Batch<T, R> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(T, tokio::sync::oneshot::Sender<R>)>> {
        self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl<T, R> std::fmt::Debug for Batch<T, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Batch")
    }
}

/// The most units one group commit takes: bounds the latency a late unit adds to the others.
const GROUP_MAX: usize = 256;
/// How long the group writer keeps its connection without work.
const WRITER_IDLE: Duration = Duration::from_secs(5);

/// SQLite settings for every connection: WAL (readers beside the writer), foreign keys, a
/// busy wait, a flush at every commit, and a checkpoint once the WAL holds 4,000 pages
/// (16 MiB) rather than SQLite's 1,000: a page changed by many commits (an index's, the
/// ledger's newest) is copied into the database once for all of them.
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; \
     PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 4000;";

/// The group-commit writer. It runs on a thread of its own with a connection of its own: a
/// group is many statements in a row, and on the shared runtime each of them would wait
/// behind the request tasks before the next could start.
struct GroupWriter {
    options: AnyConnectOptions,
    backend: Backend,
    /// SQLite's one-writer queue, shared with [`Db::begin`].
    lock: Arc<tokio::sync::Mutex<()>>,
    conn: Option<sqlx::AnyConnection>,
}

impl GroupWriter {
    fn spawn(self, units: tokio::sync::mpsc::Receiver<GroupUnit>) -> Result<(), DbError> {
        std::thread::Builder::new()
            .name("group-commit".into())
            .spawn(move || match self.runtime() {
                Ok(runtime) => runtime.block_on(self.run(units)),
                // The units are dropped: every caller sees its write fail.
                Err(e) => tracing::error!(error = %e, "the group-commit writer could not start"),
            })
            .map(drop)
            .map_err(|e| DbError::Query(sqlx::Error::Io(e)))
    }

    /// Takes the waiting units and commits them together: many durable writes for one
    /// flush. Ends when every [`Db`] handle is gone. A writer idle for [`WRITER_IDLE`] lets
    /// its connection go, and with it SQLite's page cache: an idle server gives the memory
    /// back, and the next write reconnects.
    async fn run(mut self, mut units: tokio::sync::mpsc::Receiver<GroupUnit>) {
        loop {
            let next = match self.conn.is_some() {
                true => match tokio::time::timeout(WRITER_IDLE, units.recv()).await {
                    Ok(next) => next,
                    Err(_idle) => {
                        if let Some(conn) = self.conn.take()
                            && let Err(e) = sqlx::Connection::close(conn).await
                        {
                            tracing::debug!(error = %e, "closing the idle group-commit connection");
                        }
                        continue;
                    }
                },
                false => units.recv().await,
            };
            let Some(first) = next else { break };
            let mut group = Vec::with_capacity(16);
            group.push(first);
            while group.len() < GROUP_MAX {
                match units.try_recv() {
                    Ok(unit) => group.push(unit),
                    Err(_) => break,
                }
            }
            let conn = match self.conn.take() {
                Some(c) => c,
                None => match self.connect().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::error!(error = %e, "the group-commit writer cannot connect; the writes were refused");
                        continue;
                    }
                },
            };
            // Its own task: a panic drops that group's answers (its callers see a failed
            // write) and its connection, and the next group runs on a new one.
            match tokio::spawn(commit_group(conn, self.backend, self.lock.clone(), group)).await {
                Ok(kept) => self.conn = kept,
                Err(e) => tracing::error!(error = %e, "a group commit panicked; its writes were rolled back"),
            }
        }
    }

    /// The writer's runtime. SQLite's connection answers from a thread of its own, not a
    /// socket: without an I/O driver the runtime parks on a futex, and each statement's
    /// answer wakes it without an eventfd write and an epoll round.
    fn runtime(&self) -> std::io::Result<tokio::runtime::Runtime> {
        let mut builder = tokio::runtime::Builder::new_current_thread();
        match self.backend {
            Backend::Sqlite => builder.enable_time(),
            Backend::Postgres => builder.enable_all(),
        };
        builder.build()
    }

    async fn connect(&self) -> Result<sqlx::AnyConnection, sqlx::Error> {
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect_with(&self.options).await?;
        if self.backend == Backend::Sqlite {
            conn.execute(SQLITE_PRAGMAS).await?;
            // The group writer does most of the writing (journal folds among it): a page
            // cache of 32 MiB instead of SQLite's 2 keeps the index pages it touches from
            // being read back from the file for every batch.
            conn.execute("PRAGMA cache_size = -32768").await?;
        }
        Ok(conn)
    }
}

/// Runs a group in one transaction, each unit in a savepoint, and hands the answers over
/// after the commit. Gives the connection back unless it failed (the next group reconnects).
async fn commit_group(
    mut conn: sqlx::AnyConnection,
    backend: Backend,
    lock: Arc<tokio::sync::Mutex<()>>,
    mut group: Vec<GroupUnit>,
) -> Option<sqlx::AnyConnection> {
    use sqlx::Connection;
    let size = group.len();
    let _writer = match backend {
        Backend::Sqlite => Some(lock.lock_owned().await),
        Backend::Postgres => None,
    };
    let result = async {
        let mut tx = match backend {
            Backend::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => conn.begin().await?,
        };
        // A unit alone needs no savepoint: the transaction is its own. A savepoint copies
        // every page the unit changes to a statement journal, and costs two more statements.
        if size == 1
            && let Some(unit) = group.pop()
        {
            let settled = unit(&mut tx).await;
            end(tx, settled.keep).await?;
            return Ok(vec![settled.deliver]);
        }
        let mut delivered = Vec::with_capacity(size);
        for unit in group {
            let mut savepoint = tx.begin().await?;
            let settled = unit(&mut savepoint).await;
            end(savepoint, settled.keep).await?;
            delivered.push(settled.deliver);
        }
        tx.commit().await?;
        Ok::<_, sqlx::Error>(delivered)
    }
    .await;
    match result {
        Ok(delivered) => {
            delivered.into_iter().for_each(|deliver| deliver());
            Some(conn)
        }
        // The callers' answers are dropped with the group: each sees its write fail.
        Err(e) => {
            tracing::error!(error = %e, size, "a group commit failed; its writes were rolled back");
            None
        }
    }
}

/// Commits a transaction or savepoint whose work is kept, else rolls it back.
async fn end(tx: sqlx::Transaction<'_, sqlx::Any>, keep: bool) -> Result<(), sqlx::Error> {
    if keep { tx.commit().await } else { tx.rollback().await }
}

/// A write transaction from [`Db::begin`]; derefs to its connection. Dropping it
/// without committing rolls back.
pub struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _writer: Option<tokio::sync::OwnedMutexGuard<()>>,
    /// A bulk write's SQLite connection has a large page cache until it ends.
    bulk: bool,
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

/// The page cache of a bulk write's SQLite connection while it lasts (KiB), and SQLite's
/// default that it goes back to.
const BULK_CACHE_KIB: u32 = 256 * 1024;
const DEFAULT_CACHE_KIB: u32 = 2_000;

impl WriteTx {
    pub async fn commit(mut self) -> Result<(), sqlx::Error> {
        self.end_bulk().await?;
        self.tx.commit().await
    }

    pub async fn rollback(mut self) -> Result<(), sqlx::Error> {
        self.end_bulk().await?;
        self.tx.rollback().await
    }

    /// The pooled connection goes back with the default cache.
    async fn end_bulk(&mut self) -> Result<(), sqlx::Error> {
        if self.bulk {
            set_cache_size(&mut self.tx, DEFAULT_CACHE_KIB).await?;
        }
        Ok(())
    }
}

async fn set_cache_size(c: &mut sqlx::AnyConnection, kib: u32) -> Result<(), sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA cache_size = -{kib}"))).execute(c).await?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database URL must start with sqlite: or postgres://")]
    UnsupportedUrl,
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("the embedded migrations are inconsistent: {0}")]
    Migrations(String),
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
            // Pooled connections stay open: with sqlx's `idle_timeout`, a pool of one SQLite
            // connection lost it for good under the end-to-end tests, and every later
            // request waited out the acquire timeout.
            Backend::Sqlite => pool_options.test_before_acquire(false).after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute(SQLITE_PRAGMAS).await?;
                    Ok(())
                })
            }),
            Backend::Postgres => pool_options,
        };
        let pool = pool_options.connect_with(options.clone()).await.map_err(DbError::Connect)?;
        let writer = Writer { pool: pool.clone(), backend, lock: Arc::new(tokio::sync::Mutex::new(())) };
        let (group, units) = tokio::sync::mpsc::channel(4 * GROUP_MAX);
        GroupWriter { options, backend, lock: writer.lock.clone(), conn: None }.spawn(units)?;
        Ok(Db { pool, backend, writer, group, file: sqlite_file(url), journals: Arc::default() })
    }

    fn register_journal(&self, journal: std::sync::Weak<journal::Shared>) {
        let mut journals = self.journals.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        journals.retain(|j| j.strong_count() > 0);
        journals.push(journal);
    }

    /// Folds what this database's journals hold into its tables, so that a read after this
    /// sees every write acknowledged before it. Call it before reading what a journal feeds
    /// (the audit ledger), holding no connection or transaction.
    pub async fn settle(&self) -> Result<(), journal::JournalError> {
        let journals = self.journals.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        journal::settle(journals).await
    }

    pub async fn migrate(&self) -> Result<(), DbError> {
        let migrator = migrations::migrator(self.backend).map_err(DbError::Migrations)?;
        migrator.run(&self.pool).await?;
        Ok(())
    }

    /// A write transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`):
    /// a deferred transaction that reads first would fail with SQLITE_BUSY when another
    /// connection commits before its first write.
    pub async fn begin(&self) -> Result<WriteTx, sqlx::Error> {
        self.writer.begin().await
    }

    /// [`Db::begin`] for a bulk load. On SQLite its connection gets a large page cache while
    /// the transaction lasts: rows landing at random places in an index (a blind index, say)
    /// would otherwise read its pages again for every insert once it outgrows the default
    /// 2 MiB.
    pub async fn begin_bulk(&self) -> Result<WriteTx, sqlx::Error> {
        let mut tx = self.begin().await?;
        if self.backend == Backend::Sqlite {
            set_cache_size(&mut tx, BULK_CACHE_KIB).await?;
            tx.bulk = true;
        }
        Ok(tx)
    }

    /// Runs `work` in a write transaction shared with the other work waiting at that moment
    /// (group commit), in a savepoint of its own: an `Err` undoes only this work's writes.
    /// Returns once the shared transaction has committed, so an `Ok` is as durable as after
    /// [`Db::begin`] and a commit. Do the reads and the cryptography first, on a pooled
    /// connection released before this call: the writer runs the units one after another.
    pub async fn write_grouped<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: for<'c> FnOnce(&'c mut sqlx::AnyConnection) -> GroupFuture<'c, Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<sqlx::Error> + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let unit: GroupUnit = Box::new(move |c| {
            Box::pin(async move {
                let result = work(c).await;
                Settled {
                    keep: result.is_ok(),
                    deliver: Box::new(move || {
                        // The caller may have gone (a dropped request); the write stands.
                        let _ = answer.send(result);
                    }),
                }
            })
        });
        let failed = || E::from(sqlx::Error::Protocol("the group commit failed; nothing was written".into()));
        self.group.send(unit).await.map_err(|_| E::from(sqlx::Error::PoolClosed))?;
        answered.await.unwrap_or_else(|_| Err(failed()))
    }

    /// Queues `item` in `batch` and returns its answer once the group commit that wrote it
    /// has committed. The first item to wait opens one [`Db::write_grouped`] unit, from a
    /// task of its own so that a dropped request cannot take the other items' answers with
    /// it; when the unit runs, `write` gets every item queued by then (many rows in one
    /// statement instead of a savepoint and statements each) and answers them in order.
    /// An `Err` from `write` undoes the whole batch and every caller in it sees a failed
    /// write.
    pub async fn write_batched<T, R, E, F>(&self, batch: &Arc<Batch<T, R>>, item: T, write: F) -> Result<R, E>
    where
        T: Send + 'static,
        R: Send + 'static,
        E: From<sqlx::Error> + std::fmt::Display + Send + 'static,
        F: for<'c> FnOnce(&'c mut sqlx::AnyConnection, Vec<T>) -> GroupFuture<'c, Result<Vec<R>, E>> + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let leads = {
            let mut queue = batch.lock();
            queue.push((item, answer));
            queue.len() == 1
        };
        if leads {
            let (db, batch) = (self.clone(), batch.clone());
            tokio::spawn(async move {
                let written = db
                    .write_grouped(move |c| {
                        Box::pin(async move {
                            let (items, answers): (Vec<T>, Vec<_>) =
                                std::mem::take(&mut *batch.lock()).into_iter().unzip();
                            let results = write(c, items).await?;
                            if results.len() != answers.len() {
                                return Err(E::from(sqlx::Error::Protocol("a batch was answered short".into())));
                            }
                            Ok(answers.into_iter().zip(results).collect::<Vec<_>>())
                        })
                    })
                    .await;
                match written {
                    Ok(answers) => {
                        for (to, result) in answers {
                            // The caller may have gone (a dropped request); the write stands.
                            let _ = to.send(result);
                        }
                    }
                    // The answers went with the unit: every caller in it sees a failed write.
                    Err(e) => tracing::error!(error = %e, "a batch could not be written"),
                }
            });
        }
        answered
            .await
            .map_err(|_| E::from(sqlx::Error::Protocol("the group commit failed; nothing was written".into())))
    }

    /// Binds the database to a master key on first use; afterwards refuses another key, so
    /// that a node started with a different (say, freshly generated) key cannot serve
    /// secrets it cannot open.
    pub async fn bind_master_key(&self, key_id: &str) -> Result<(), DbError> {
        let mut tx = self.begin().await.map_err(DbError::Query)?;
        let stored: Option<String> =
            sqlx::query_scalar("SELECT value FROM platform_settings WHERE key = 'master_key_id'")
                .fetch_optional(&mut *tx)
                .await
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

/// The file of a SQLite URL (`sqlite://path?options`); `None` for an in-memory database or
/// another backend's URL.
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then(|| std::path::PathBuf::from(path))
}

/// A fact in `platform_settings`.
pub async fn read_setting(c: &mut sqlx::AnyConnection, key: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT value FROM platform_settings WHERE key = $1").bind(key).fetch_optional(c).await
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

/// A statement being built with the `Any` driver.
pub type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// Inserts `rows` with multi-row statements of [`rows_per_insert`] rows each. `into` is the
/// table and its columns, `applications (id, number, …)`; `bind` binds one row's values in
/// that order.
pub async fn insert_rows<'q, T>(
    c: &mut sqlx::AnyConnection,
    into: &str,
    rows: &'q [T],
    bind: impl Fn(AnyQuery<'q>, &'q T) -> AnyQuery<'q>,
) -> Result<(), sqlx::Error> {
    upsert_rows(c, into, "", rows, bind).await
}

/// [`insert_rows`] with an `ON CONFLICT …` clause after the rows. Its update reads the
/// row's new values as `excluded.column`; no two rows may name the same key (PostgreSQL
/// refuses to update one row twice in a statement).
pub async fn upsert_rows<'q, T>(
    c: &mut sqlx::AnyConnection,
    into: &str,
    on_conflict: &str,
    rows: &'q [T],
    bind: impl Fn(AnyQuery<'q>, &'q T) -> AnyQuery<'q>,
) -> Result<(), sqlx::Error> {
    let columns = into.split_once('(').map_or(1, |(_, list)| list.matches(',').count() + 1);
    for chunk in rows.chunks(rows_per_insert(columns)) {
        let sql = format!("INSERT INTO {into} VALUES {} {on_conflict}", values_rows(chunk.len(), columns));
        let q = chunk.iter().fold(sqlx::query(sqlx::AssertSqlSafe(sql)), &bind);
        q.execute(&mut *c).await?;
    }
    Ok(())
}

/// The VALUES list of a multi-row insert, `($1, $2), ($3, $4)` for 2 rows of 2 columns.
pub fn values_rows(rows: usize, columns: usize) -> String {
    let mut out = String::with_capacity(rows * columns * 5);
    for r in 0..rows {
        out.push_str(if r == 0 { "(" } else { ", (" });
        for c in 1..=columns {
            if c > 1 {
                out.push_str(", ");
            }
            out.push('$');
            out.push_str(&(r * columns + c).to_string());
        }
        out.push(')');
    }
    out
}

/// How many rows of `columns` one multi-row insert takes: about 200 parameters. More is
/// slower, not faster: SQLite finds a `$n` parameter's name by a linear scan, so binding
/// costs grow with the square of the parameter count.
pub fn rows_per_insert(columns: usize) -> usize {
    (200 / columns.max(1)).max(1)
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
