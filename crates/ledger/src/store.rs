//! SQL for the ledger tables. Nothing outside the ledger module touches them.

use sqlx::AnyConnection;

use super::merkle::Hash;

fn hash_of(bytes: Vec<u8>) -> Result<Hash, sqlx::Error> {
    bytes.try_into().map_err(|_| sqlx::Error::Decode("a stored hash is not 32 bytes".into()))
}

/// Reserves the next `n` indexes of `log` and returns the first, locking the log row until
/// the transaction ends (so appends from several processes are sequenced by the database).
pub async fn reserve(c: &mut AnyConnection, log: &str, n: u64) -> Result<u64, sqlx::Error> {
    let size: i64 = sqlx::query_scalar("UPDATE ledger_logs SET size = size + $1 WHERE name = $2 RETURNING size")
        .bind(as_i64(n))
        .bind(log)
        .fetch_one(c)
        .await?;
    Ok(stored_count(size, "ledger_logs.size")?.saturating_sub(n))
}

pub async fn size(c: &mut AnyConnection, log: &str) -> Result<u64, sqlx::Error> {
    let size: i64 = sqlx::query_scalar("SELECT size FROM ledger_logs WHERE name = $1").bind(log).fetch_one(c).await?;
    stored_count(size, "ledger_logs.size")
}

/// A stored size or index, which is never negative; one that is is a fault, not zero.
fn stored_count(v: i64, column: &str) -> Result<u64, sqlx::Error> {
    u64::try_from(v).map_err(|_| sqlx::Error::Decode(format!("{column} is negative ({v})").into()))
}

pub struct EntryRow<'a> {
    pub log: &'a str,
    pub idx: u64,
    pub entry: &'a [u8],
    pub leaf_hash: &'a Hash,
    pub at: i64,
    pub action: &'a str,
    pub actor: Option<&'a str>,
    pub subject: Option<&'a str>,
}

fn as_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub async fn insert_entries(c: &mut AnyConnection, entries: &[EntryRow<'_>]) -> Result<(), sqlx::Error> {
    kernel::db::insert_rows(
        c,
        "ledger_entries (log, idx, entry, leaf_hash, at, action, actor, subject)",
        entries,
        |q, e| {
            q.bind(e.log)
                .bind(as_i64(e.idx))
                .bind(e.entry.to_vec())
                .bind(e.leaf_hash.to_vec())
                .bind(e.at)
                .bind(e.action)
                .bind(e.actor)
                .bind(e.subject)
        },
    )
    .await
}

/// Hashes at a tile level (0: leaf hashes; L ≥ 1: subtrees of 256^L entries), `count` from
/// `start`, in order. Fewer are returned when the tree is not that large.
pub async fn level_hashes(
    c: &mut AnyConnection,
    log: &str,
    level: u32,
    start: u64,
    count: u64,
) -> Result<Vec<Hash>, sqlx::Error> {
    let end = as_i64(start.saturating_add(count));
    let hashes: Vec<Vec<u8>> = if level == 0 {
        sqlx::query_scalar(
            "SELECT leaf_hash AS hash FROM ledger_entries WHERE log = $1 AND idx >= $2 AND idx < $3 ORDER BY idx",
        )
        .bind(log)
        .bind(as_i64(start))
        .bind(end)
        .fetch_all(c)
        .await?
    } else {
        sqlx::query_scalar(
            "SELECT hash FROM ledger_hashes WHERE log = $1 AND level = $2 AND idx >= $3 AND idx < $4 ORDER BY idx",
        )
        .bind(log)
        .bind(i64::from(level))
        .bind(as_i64(start))
        .bind(end)
        .fetch_all(c)
        .await?
    };
    hashes.into_iter().map(hash_of).collect()
}

pub async fn insert_level_hash(
    c: &mut AnyConnection,
    log: &str,
    level: u32,
    idx: u64,
    hash: &Hash,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO ledger_hashes (log, level, idx, hash) VALUES ($1, $2, $3, $4)")
        .bind(log)
        .bind(i64::from(level))
        .bind(as_i64(idx))
        .bind(hash.to_vec())
        .execute(c)
        .await?;
    Ok(())
}

pub struct StoredEntry {
    pub idx: u64,
    pub entry: Vec<u8>,
    pub leaf_hash: Vec<u8>,
    pub at: i64,
    pub action: String,
    pub actor: Option<String>,
    pub subject: Option<String>,
}

/// An entry as stored: the index is a signed integer.
#[derive(sqlx::FromRow)]
struct EntryColumns {
    idx: i64,
    entry: Vec<u8>,
    leaf_hash: Vec<u8>,
    at: i64,
    action: String,
    actor: Option<String>,
    subject: Option<String>,
}

impl TryFrom<EntryColumns> for StoredEntry {
    type Error = sqlx::Error;
    fn try_from(r: EntryColumns) -> Result<Self, sqlx::Error> {
        Ok(StoredEntry {
            idx: stored_count(r.idx, "ledger_entries.idx")?,
            entry: r.entry,
            leaf_hash: r.leaf_hash,
            at: r.at,
            action: r.action,
            actor: r.actor,
            subject: r.subject,
        })
    }
}

/// Entries from `start` in index order, at most `limit` (verification streams these).
pub async fn entries(
    c: &mut AnyConnection,
    log: &str,
    start: u64,
    limit: u64,
) -> Result<Vec<StoredEntry>, sqlx::Error> {
    let rows = sqlx::query_as::<_, EntryColumns>(
        "SELECT idx, entry, leaf_hash, at, action, actor, subject FROM ledger_entries \
         WHERE log = $1 AND idx >= $2 ORDER BY idx LIMIT $3",
    )
    .bind(log)
    .bind(as_i64(start))
    .bind(as_i64(limit))
    .fetch_all(c)
    .await?;
    rows.into_iter().map(StoredEntry::try_from).collect()
}

/// The newest entries matching an action and/or a data subject, newest first.
pub async fn recent(
    c: &mut AnyConnection,
    log: &str,
    action: Option<&str>,
    subject: Option<&str>,
    limit: u64,
) -> Result<Vec<StoredEntry>, sqlx::Error> {
    let rows = sqlx::query_as::<_, EntryColumns>(
        "SELECT idx, entry, leaf_hash, at, action, actor, subject FROM ledger_entries \
         WHERE log = $1 AND ($2 = '' OR action = $2) AND ($3 = '' OR subject = $3) ORDER BY idx DESC LIMIT $4",
    )
    .bind(log)
    .bind(action.unwrap_or(""))
    .bind(subject.unwrap_or(""))
    .bind(as_i64(limit))
    .fetch_all(c)
    .await?;
    rows.into_iter().map(StoredEntry::try_from).collect()
}

/// The entries with one of `actions` appended since `from` (ms), oldest first. The time
/// bound becomes an index bound first, so that the actions' index is read from there on
/// instead of every entry of the period: a busy exchange appends thousands an hour that
/// no rule looks at.
pub async fn since(
    c: &mut AnyConnection,
    log: &str,
    from: i64,
    actions: &[&str],
) -> Result<Vec<StoredEntry>, sqlx::Error> {
    let first: Option<i64> =
        sqlx::query_scalar("SELECT idx FROM ledger_entries WHERE log = $1 AND at >= $2 ORDER BY at LIMIT 1")
            .bind(log)
            .bind(from)
            .fetch_optional(&mut *c)
            .await?;
    let Some(first) = first else { return Ok(Vec::new()) };
    if actions.is_empty() {
        return Ok(Vec::new());
    }
    let list: Vec<String> = (0..actions.len()).map(|i| format!("${}", i + 3)).collect();
    let sql = format!(
        "SELECT idx, entry, leaf_hash, at, action, actor, subject FROM ledger_entries \
         WHERE log = $1 AND idx >= $2 AND action IN ({}) ORDER BY idx LIMIT 200000",
        list.join(", ")
    );
    let mut q = sqlx::query_as::<_, EntryColumns>(sqlx::AssertSqlSafe(sql)).bind(log).bind(first);
    for a in actions {
        q = q.bind(*a);
    }
    let rows = q.fetch_all(c).await?;
    // Entries appended together by different nodes may be a little out of time order.
    rows.into_iter().filter(|r| r.at >= from).map(StoredEntry::try_from).collect()
}

pub struct CheckpointRow {
    pub size: u64,
    pub root: Vec<u8>,
    pub note: String,
    pub created_at: i64,
}

/// A checkpoint as stored: the size is a signed integer.
#[derive(sqlx::FromRow)]
struct CheckpointColumns {
    size: i64,
    root: Vec<u8>,
    note: String,
    created_at: i64,
}

impl TryFrom<CheckpointColumns> for CheckpointRow {
    type Error = sqlx::Error;
    fn try_from(r: CheckpointColumns) -> Result<Self, sqlx::Error> {
        let size = stored_count(r.size, "ledger_checkpoints.size")?;
        Ok(CheckpointRow { size, root: r.root, note: r.note, created_at: r.created_at })
    }
}

pub async fn latest_checkpoint(c: &mut AnyConnection, log: &str) -> Result<Option<CheckpointRow>, sqlx::Error> {
    let row = sqlx::query_as::<_, CheckpointColumns>(
        "SELECT size, root, note, created_at FROM ledger_checkpoints WHERE log = $1 ORDER BY size DESC LIMIT 1",
    )
    .bind(log)
    .fetch_optional(c)
    .await?;
    row.map(CheckpointRow::try_from).transpose()
}

pub async fn checkpoints(c: &mut AnyConnection, log: &str) -> Result<Vec<CheckpointRow>, sqlx::Error> {
    let rows = sqlx::query_as::<_, CheckpointColumns>(
        "SELECT size, root, note, created_at FROM ledger_checkpoints WHERE log = $1 ORDER BY size",
    )
    .bind(log)
    .fetch_all(c)
    .await?;
    rows.into_iter().map(CheckpointRow::try_from).collect()
}

/// Stores a checkpoint; another process may have signed the same size first, which is fine.
pub async fn insert_checkpoint(c: &mut AnyConnection, log: &str, cp: &CheckpointRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO ledger_checkpoints (log, size, root, note, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (log, size) DO NOTHING",
    )
    .bind(log)
    .bind(as_i64(cp.size))
    .bind(cp.root.clone())
    .bind(&cp.note)
    .bind(cp.created_at)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn cosignatures(c: &mut AnyConnection, log: &str, size: u64) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as("SELECT witness, signature FROM ledger_cosignatures WHERE log = $1 AND size = $2 ORDER BY witness")
        .bind(log)
        .bind(as_i64(size))
        .fetch_all(c)
        .await
}

pub async fn insert_cosignature(
    c: &mut AnyConnection,
    log: &str,
    size: u64,
    witness: &str,
    line: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO ledger_cosignatures (log, size, witness, signature) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (log, size, witness) DO UPDATE SET signature = excluded.signature",
    )
    .bind(log)
    .bind(as_i64(size))
    .bind(witness)
    .bind(line)
    .execute(c)
    .await?;
    Ok(())
}
