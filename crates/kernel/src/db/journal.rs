//! A durable journal in front of the database, for writes whose callers must wait until
//! they are durable but need not see them in the tables at once: an exchange read's access
//! entry. On SQLite a commit is expensive per commit, not per row, and every commit empties
//! every reader's page cache; so the records are appended to files beside the database
//! (one write and one `fdatasync` for all the records waiting; under load the writer gathers
//! them for half a millisecond first), and folded into the database in large batches —
//! every second, at start-up (what a crash left behind), and before anyone reads what they
//! feed ([`crate::db::Db::settle`]).
//!
//! Exactly once: the fold writes its position in the journal (`platform_settings`) in the
//! same transaction as the rows it folds, and only one process folds a journal (a lock
//! file). Files are segments numbered in order; a process always appends to a segment of
//! its own, so a record cut short by a crash can only be the last of an older segment.
//! Each record is its length, its CRC-32 and its bytes.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::{Db, GroupFuture, read_setting, write_setting};

/// Folds records into the database, inside the fold's transaction.
pub type Apply =
    Arc<dyn for<'c> Fn(&'c mut sqlx::AnyConnection, Vec<Vec<u8>>) -> GroupFuture<'c, Result<(), String>> + Send + Sync>;

/// A segment grows to about this size before the next one starts.
const SEGMENT_BYTES: u64 = 16 * 1024 * 1024;
/// The most records one fold transaction takes: bounds how long a fold holds the write lock.
const FOLD_MAX: usize = 8192;
/// How often waiting records are folded. A fold writes each index page it touches once, and
/// an index by data subject takes a page at random for each entry: a second's records
/// share many pages that a quarter second's would each write again. Readers of what the
/// records feed settle first, so they never see this delay.
const FOLD_EVERY: Duration = Duration::from_secs(1);
/// The most records one write to the file takes.
const APPEND_MAX: usize = 1024;
/// How long the writer gathers records under load before writing them.
const GATHER: Duration = Duration::from_micros(500);
/// A record longer than this is damage, not a record.
const RECORD_MAX: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {0}: {1}")]
    Io(String, #[source] std::io::Error),
    #[error("another process holds the journal in {0}")]
    Held(String),
    #[error("the journal's writer has stopped")]
    Stopped,
    #[error("journal fold: {0}")]
    Fold(String),
}

/// The handle records are appended through. Dropping the last one stops the writer thread;
/// what was acknowledged stays on disk for the next fold.
#[derive(Clone)]
pub struct Journal {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Journal({})", self.shared.dir.display())
    }
}

type Waiting = (Vec<u8>, tokio::sync::oneshot::Sender<Result<(), String>>);

pub(super) struct Shared {
    dir: PathBuf,
    /// Where the fold's position is kept in `platform_settings`.
    setting: String,
    db: Db,
    apply: Apply,
    appends: std::sync::mpsc::Sender<Waiting>,
    /// The segment this process appends to; older ones are complete.
    current: Arc<AtomicU64>,
    /// Set by every append, cleared by the fold that starts after it.
    unfolded: Arc<AtomicBool>,
    folding: tokio::sync::Mutex<()>,
    /// Held for the process's lifetime: one process per journal.
    _lock: std::fs::File,
}

impl Journal {
    /// Opens the journal `name` of `db` (a directory beside its SQLite file) with the
    /// function that folds its records. `None` when `db` has no file (PostgreSQL, whose
    /// nodes keep nothing on local disk, or an in-memory database).
    pub fn open(db: &Db, name: &str, apply: Apply) -> Result<Option<Journal>, JournalError> {
        let Some(file) = &db.file else { return Ok(None) };
        let dir = PathBuf::from(format!("{}.journal", file.display())).join(name);
        let io = |what: &str, e| JournalError::Io(format!("{} ({what})", dir.display()), e);
        std::fs::create_dir_all(&dir).map_err(|e| io("creating", e))?;
        let lock = private_file(&dir.join("LOCK"), false).map_err(|e| io("lock file", e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(JournalError::Held(dir.display().to_string())),
            Err(std::fs::TryLockError::Error(e)) => return Err(io("locking", e)),
        }
        let existing = segments(&dir).map_err(|e| io("listing", e))?;
        let current = existing.last().map_or(1, |n| n + 1);
        let segment = private_file(&segment_path(&dir, current), true).map_err(|e| io("new segment", e))?;
        sync_dir(&dir).map_err(|e| io("syncing", e))?;
        let (appends, waiting) = std::sync::mpsc::channel();
        let current = Arc::new(AtomicU64::new(current));
        // What an earlier process left is folded first.
        let unfolded = Arc::new(AtomicBool::new(!existing.is_empty()));
        Appender { dir: dir.clone(), segment, written: 0, current: current.clone(), unfolded: unfolded.clone() }
            .spawn(waiting)
            .map_err(|e| io("starting its writer", e))?;
        let shared = Arc::new(Shared {
            setting: format!("journal:{name}"),
            dir,
            db: db.clone(),
            apply,
            appends,
            current,
            unfolded,
            folding: tokio::sync::Mutex::new(()),
            _lock: lock,
        });
        db.register_journal(Arc::downgrade(&shared));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(fold_now_and_then(Arc::downgrade(&shared)));
        }
        Ok(Some(Journal { shared }))
    }

    /// Appends `record` and returns once it is on disk.
    pub async fn append(&self, record: Vec<u8>) -> Result<(), JournalError> {
        let (done, written) = tokio::sync::oneshot::channel();
        self.shared.appends.send((record, done)).map_err(|_| JournalError::Stopped)?;
        match written.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(JournalError::Io(self.shared.dir.display().to_string(), std::io::Error::other(e))),
            Err(_) => Err(JournalError::Stopped),
        }
    }

    /// The directory of its segments.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }
}

impl Shared {
    async fn fold(self: &Arc<Self>) -> Result<(), JournalError> {
        let _one = self.folding.lock().await;
        if !self.unfolded.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let result = self.fold_all().await;
        if result.is_err() {
            self.unfolded.store(true, Ordering::Release);
        }
        result
    }

    async fn fold_all(self: &Arc<Self>) -> Result<(), JournalError> {
        loop {
            let this = self.clone();
            let folded: Result<(usize, u64), JournalError> = self
                .db
                .write_grouped(move |c| {
                    Box::pin(async move {
                        let at = match read_setting(c, &this.setting).await? {
                            Some(text) => Position::parse(&text)
                                .ok_or_else(|| JournalError::Fold(format!("unreadable position {text:?}")))?,
                            None => Position::default(),
                        };
                        // Read before the segments: a segment older than this is complete.
                        let current = this.current.load(Ordering::Acquire);
                        let (records, to) = read_records(&this.dir, at, current, FOLD_MAX)
                            .map_err(|e| JournalError::Io(this.dir.display().to_string(), e))?;
                        let n = records.len();
                        if to != at {
                            if n > 0 {
                                (this.apply)(c, records).await.map_err(JournalError::Fold)?;
                            }
                            write_setting(c, &this.setting, &to.to_string()).await?;
                        }
                        Ok((n, to.segment))
                    })
                })
                .await;
            let (n, segment) = folded?;
            // Segments wholly before the position are folded: they can go.
            for old in segments(&self.dir).map_err(|e| JournalError::Io(self.dir.display().to_string(), e))? {
                if old < segment {
                    let path = segment_path(&self.dir, old);
                    if let Err(e) = std::fs::remove_file(&path) {
                        tracing::warn!(error = %e, path = %path.display(), "a folded journal segment was not removed");
                    }
                }
            }
            if n < FOLD_MAX {
                return Ok(());
            }
        }
    }
}

impl From<sqlx::Error> for JournalError {
    fn from(e: sqlx::Error) -> Self {
        JournalError::Fold(e.to_string())
    }
}

/// Folds at once (an earlier process's records), then every [`FOLD_EVERY`] while the
/// journal is open.
async fn fold_now_and_then(journal: Weak<Shared>) {
    let mut tick = tokio::time::interval(FOLD_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(shared) = journal.upgrade() else { return };
        if let Err(e) = shared.fold().await {
            tracing::error!(error = %e, "journal records could not be folded into the database; they stay on disk");
        }
    }
}

/// Folds every live journal of a database (see [`crate::db::Db::settle`]).
pub(super) async fn settle(journals: Vec<Weak<Shared>>) -> Result<(), JournalError> {
    for journal in journals {
        if let Some(shared) = journal.upgrade() {
            shared.fold().await?;
        }
    }
    Ok(())
}

/// A place in the journal: a segment and a byte offset in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Position {
    segment: u64,
    offset: u64,
}

impl Position {
    fn parse(text: &str) -> Option<Position> {
        let (segment, offset) = text.split_once(':')?;
        Some(Position { segment: segment.parse().ok()?, offset: offset.parse().ok()? })
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.segment, self.offset)
    }
}

/// Up to `max` whole records from `at` on, and the position after the last. A record cut
/// short ends a segment older than `current` (a crash) and, in `current`, ends what has
/// been written so far.
fn read_records(dir: &Path, at: Position, current: u64, max: usize) -> std::io::Result<(Vec<Vec<u8>>, Position)> {
    let mut records = Vec::new();
    let mut to = at;
    for segment in segments(dir)?.into_iter().filter(|s| *s >= at.segment && *s <= current) {
        if segment != to.segment {
            to = Position { segment, offset: 0 };
        }
        let mut file = std::fs::File::open(segment_path(dir, segment))?;
        file.seek(SeekFrom::Start(to.offset))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let mut rest = bytes.as_slice();
        while let Some((record, after)) = next_record(rest) {
            records.push(record.to_vec());
            to.offset += (rest.len() - after.len()) as u64;
            rest = after;
            if records.len() == max {
                return Ok((records, to));
            }
        }
        if segment == current {
            break;
        }
    }
    Ok((records, to))
}

/// The first record of `bytes` and what follows it, if it is whole and intact.
fn next_record(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = bytes.split_first_chunk::<4>()?;
    let (crc, rest) = rest.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_le_bytes(*len)).ok().filter(|n| *n <= RECORD_MAX)?;
    let (record, after) = rest.split_at_checked(len)?;
    (crc32fast::hash(record) == u32::from_le_bytes(*crc)).then_some((record, after))
}

fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:012}.log"))
}

/// The segment numbers in `dir`, in order.
fn segments(dir: &Path) -> std::io::Result<Vec<u64>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        if let Some(n) = name.to_str().and_then(|n| n.strip_suffix(".log")).and_then(|n| n.parse().ok()) {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

fn private_file(path: &Path, new: bool) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true);
    if new {
        options.create_new(true).append(true);
    } else {
        options.create(true).truncate(false);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Makes a new segment's name durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// The writer thread: everything waiting goes out in one write and one `fdatasync`.
struct Appender {
    dir: PathBuf,
    segment: std::fs::File,
    written: u64,
    current: Arc<AtomicU64>,
    unfolded: Arc<AtomicBool>,
}

impl Appender {
    fn spawn(mut self, waiting: std::sync::mpsc::Receiver<Waiting>) -> std::io::Result<()> {
        std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || {
                let mut last = 0;
                // Ends when every handle is gone.
                while let Ok(first) = waiting.recv() {
                    let mut batch = vec![first];
                    // Under load (the last write carried more than one record) the writer
                    // sleeps a moment so that one flush serves more callers, as PostgreSQL's
                    // commit_delay does; a sleeping writer is not woken by each record as a
                    // waiting one is. A lone caller is written at once.
                    if last > 1 {
                        std::thread::sleep(GATHER);
                    }
                    batch.extend(waiting.try_iter().take(APPEND_MAX - 1));
                    last = batch.len();
                    let result = self.write(&batch).map_err(|e| {
                        tracing::error!(error = %e, dir = %self.dir.display(), "journal records could not be written");
                        e.to_string()
                    });
                    for (_, done) in batch {
                        // The caller may have gone (a dropped request); the record stands.
                        let _ = done.send(result.clone());
                    }
                }
            })
            .map(drop)
    }

    fn write(&mut self, batch: &[Waiting]) -> std::io::Result<()> {
        let mut bytes = Vec::with_capacity(batch.iter().map(|(r, _)| r.len() + 8).sum());
        for (record, _) in batch {
            let len = u32::try_from(record.len())
                .ok()
                .filter(|n| *n as usize <= RECORD_MAX)
                .ok_or_else(|| std::io::Error::other("a journal record is too large"))?;
            bytes.extend_from_slice(&len.to_le_bytes());
            bytes.extend_from_slice(&crc32fast::hash(record).to_le_bytes());
            bytes.extend_from_slice(record);
        }
        if let Err(e) = self.segment.write_all(&bytes).and_then(|()| self.segment.sync_data()) {
            // A write that failed part-way leaves a torn record: go on in a new segment,
            // where the fold finds it as the end of this one.
            self.next_segment()?;
            return Err(e);
        }
        self.written += bytes.len() as u64;
        self.unfolded.store(true, Ordering::Release);
        if self.written >= SEGMENT_BYTES {
            self.next_segment()?;
        }
        Ok(())
    }

    fn next_segment(&mut self) -> std::io::Result<()> {
        let next = self.current.load(Ordering::Acquire) + 1;
        self.segment = private_file(&segment_path(&self.dir, next), true)?;
        sync_dir(&self.dir)?;
        self.written = 0;
        // Everything written to the older segment happened before this store.
        self.current.store(next, Ordering::Release);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(bytes: &[u8]) -> Vec<u8> {
        let mut out = (bytes.len() as u32).to_le_bytes().to_vec();
        out.extend_from_slice(&crc32fast::hash(bytes).to_le_bytes());
        out.extend_from_slice(bytes);
        out
    }

    #[test]
    fn a_record_cut_short_ends_an_older_segment_and_waits_in_the_current_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = record(b"one");
        first.extend(record(b"two"));
        let whole = first.len() as u64;
        first.extend(&record(b"three")[..6]);
        std::fs::write(segment_path(dir.path(), 1), &first).unwrap();
        std::fs::write(segment_path(dir.path(), 2), record(b"four")).unwrap();

        // Segment 1 is older than the current one: its torn tail is skipped.
        let (records, to) = read_records(dir.path(), Position::default(), 2, 100).unwrap();
        assert_eq!(records, vec![b"one".to_vec(), b"two".to_vec(), b"four".to_vec()]);
        assert_eq!(to, Position { segment: 2, offset: 12 });

        // In the current segment the same bytes may still be being written: wait there.
        let (records, to) = read_records(dir.path(), Position::default(), 1, 100).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(to, Position { segment: 1, offset: whole });
    }

    #[test]
    fn damaged_bytes_are_not_a_record() {
        let mut r = record(b"entry");
        *r.last_mut().unwrap() ^= 1;
        assert!(next_record(&r).is_none());
        let mut huge = record(b"x");
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(next_record(&huge).is_none());
        assert_eq!(next_record(&record(b"entry")).map(|(r, _)| r.to_vec()), Some(b"entry".to_vec()));
    }

    #[test]
    fn reading_stops_at_the_limit_and_goes_on_from_there() {
        let dir = tempfile::tempdir().unwrap();
        let bytes: Vec<u8> = (0..5u8).flat_map(|i| record(&[i])).collect();
        std::fs::write(segment_path(dir.path(), 3), bytes).unwrap();
        let (first, to) = read_records(dir.path(), Position::default(), 3, 2).unwrap();
        assert_eq!(first, vec![vec![0], vec![1]]);
        let (rest, end) = read_records(dir.path(), to, 3, 100).unwrap();
        assert_eq!(rest, vec![vec![2], vec![3], vec![4]]);
        assert_eq!(end, Position { segment: 3, offset: 45 });
        assert_eq!(Position::parse(&end.to_string()), Some(end));
    }
}
