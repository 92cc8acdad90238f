//! The ledger: append-only, tamper-evident logs. Each log is an RFC 6962 Merkle tree over
//! canonical JSON entries, with signed C2SP checkpoints, tlog-tiles for clients, and
//! inclusion and consistency proofs. Appends join the caller's transaction, so a change and
//! its record commit together or not at all.

pub mod merkle;
pub mod note;
mod store;
pub mod tiles;
mod verify;

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Connection};

use kernel::audit::{Action, Outcome};
use kernel::authz::{Grant, SecurityEventRead};
use kernel::db::{Db, millis};
use merkle::Hash;
use note::{Checkpoint, NoteSigner, NoteVerifier};
pub use verify::{Tampered, Verified, VerifyError};

/// The named logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Log {
    /// Every security-relevant event and every access to personal data (auditors only).
    Audit,
    /// Every e-certificate issued or revoked (public).
    Certificates,
    /// Disclosures, public-resource transactions, community finance (public).
    Public,
}

impl Log {
    pub const ALL: [Log; 3] = [Log::Audit, Log::Certificates, Log::Public];

    pub fn as_str(self) -> &'static str {
        match self {
            Log::Audit => "audit",
            Log::Certificates => "certificates",
            Log::Public => "public",
        }
    }

    pub fn parse(s: &str) -> Option<Log> {
        Log::ALL.into_iter().find(|l| l.as_str() == s)
    }

    /// Whether anyone may read the entries (checkpoints and proofs are always public).
    pub fn entries_public(self) -> bool {
        self != Log::Audit
    }
}

/// One ledger entry. Serialised as canonical JSON: fields in sorted order (their declaration
/// order here), absent fields omitted, no insignificant whitespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Entry {
    pub action: String,
    /// The acting account's id (or `console` for the local operator).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub actor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub actor_name: Option<String>,
    /// RFC 3339 UTC with milliseconds.
    pub at: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub detail: Option<String>,
    /// The region path the action concerns.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub jurisdiction: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub object: Option<String>,
    /// The stated purpose of a personal-data access.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub purpose: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub request_id: Option<String>,
    /// success, failure or denied.
    pub result: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub source: Option<String>,
    /// The account id of the person the data is about, if any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub subject: Option<String>,
}

impl Entry {
    pub fn new(action: Action, outcome: Outcome, now: DateTime<Utc>) -> Entry {
        Entry::named(action.as_str(), outcome, now)
    }

    /// The entry of a case's transition: `application_<action>`, the action as its workflow
    /// definition names it.
    pub fn case_transition(workflow_action: &str, now: DateTime<Utc>) -> Entry {
        Entry::named(&format!("application_{workflow_action}"), Outcome::Success, now)
    }

    /// Whether this entry records `action`.
    pub fn is(&self, action: Action) -> bool {
        self.action == action.as_str()
    }

    fn named(action: &str, outcome: Outcome, now: DateTime<Utc>) -> Entry {
        Entry {
            action: action.into(),
            result: outcome.as_str().into(),
            at: now.to_rfc3339_opts(SecondsFormat::Millis, true),
            request_id: current_request_id(),
            ..Entry::default()
        }
    }

    /// The bytes the log hashes: the JSON of the fields in declaration order, absent ones
    /// left out.
    pub fn canonical(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }
}

tokio::task_local! {
    /// The id of the HTTP request being served, for the entries it causes.
    pub static REQUEST_ID: String;
}

fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    NotFound(&'static str),
    /// A proof between sizes, or of an entry, that this log cannot give (a size it has not
    /// reached, an index past the tree): nothing by that description exists.
    #[error("{0}")]
    NoProof(String),
    #[error("{0}")]
    Invalid(String),
    #[error("storage: {0}")]
    Storage(#[from] sqlx::Error),
    #[error("the stored tree is inconsistent: {0}")]
    Corrupt(String),
    #[error("the entries of this log are for auditors only")]
    Forbidden,
    #[error(transparent)]
    Key(#[from] kernel::secrets::SecretError),
    #[error(transparent)]
    Journal(#[from] kernel::db::journal::JournalError),
}

/// Loads the checkpoint key from `path`, or generates one there (mode 0600) when allowed.
pub fn load_or_generate_key(
    path: &std::path::Path,
    generate: bool,
    name: &str,
) -> Result<(NoteSigner, kernel::secrets::KeySource), Error> {
    use kernel::secrets::{KeySource, SecretError, write_private_file};
    use rand::RngCore;
    if !path.exists() && generate {
        let mut seed = zeroize::Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(seed.as_mut());
        let signer = NoteSigner::new(name, &seed).map_err(|e| Error::Invalid(e.to_string()))?;
        write_private_file(path, signer.private_key().as_bytes())?;
        return Ok((signer, KeySource::Generated));
    }
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|source| SecretError::Read { path: path.display().to_string(), source })?,
    );
    let signer = NoteSigner::parse(&text).map_err(|_| SecretError::Malformed { path: path.display().to_string() })?;
    Ok((signer, KeySource::Loaded))
}

/// The largest entry accepted.
pub const MAX_ENTRY_BYTES: usize = 16 * 1024;

/// Appends `entry` to `log` as a unit of its own and returns its index: in a transaction of
/// its own on a plain connection, a savepoint inside a caller's transaction. Completed
/// 256-entry subtrees get their hash stored for the upper tile levels.
pub async fn append(c: &mut AnyConnection, log: Log, entry: &Entry) -> Result<u64, sqlx::Error> {
    let mut tx = c.begin().await?;
    let idx = append_in(&mut tx, log, entry).await?;
    tx.commit().await?;
    Ok(idx)
}

/// [`append`] joining the write transaction the caller holds ([`kernel::db::Db::begin`]):
/// no savepoint, two statements fewer. Across the platform `foo_in(c, …)` means this: it
/// works inside the caller's transaction and commits nothing itself.
pub async fn append_in(tx: &mut AnyConnection, log: Log, entry: &Entry) -> Result<u64, sqlx::Error> {
    Ok(append_many_in(tx, log, std::slice::from_ref(entry)).await?.start)
}

/// Appends entries in order with one index reservation and multi-row inserts (a group
/// commit's worth of submissions); returns their indexes.
pub async fn append_many_in(
    tx: &mut AnyConnection,
    log: Log,
    entries: &[Entry],
) -> Result<std::ops::Range<u64>, sqlx::Error> {
    let mut encoded = Vec::with_capacity(entries.len());
    for entry in entries {
        let bytes = entry.canonical().map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        // Entry bundles length-prefix each entry with 16 bits; nothing legitimate comes close.
        if bytes.len() > MAX_ENTRY_BYTES {
            return Err(sqlx::Error::Protocol(format!("a ledger entry of {} bytes is too large", bytes.len())));
        }
        let leaf = merkle::leaf_hash(&bytes);
        let at = DateTime::parse_from_rfc3339(&entry.at)
            .map(|t| millis(t.with_timezone(&Utc)))
            .map_err(|_| sqlx::Error::Protocol(format!("a ledger entry's time {:?} is not RFC 3339", entry.at)))?;
        encoded.push((bytes, leaf, at));
    }
    let name = log.as_str();
    let n = u64::try_from(entries.len()).unwrap_or(u64::MAX);
    let first = store::reserve(tx, name, n).await?;
    let rows: Vec<store::EntryRow<'_>> = entries
        .iter()
        .zip(&encoded)
        .zip(first..)
        .map(|((entry, (bytes, leaf, at)), idx)| store::EntryRow {
            log: name,
            idx,
            entry: bytes,
            leaf_hash: leaf,
            at: *at,
            action: &entry.action,
            actor: entry.actor.as_deref(),
            subject: entry.subject.as_deref(),
        })
        .collect();
    store::insert_entries(tx, &rows).await?;
    // Every subtree these entries complete gets its hash, lowest level first.
    for idx in first..first + n {
        let mut level = 1u32;
        let mut completed = idx + 1;
        while completed % 256 == 0 {
            completed /= 256;
            let index = completed - 1;
            let children = store::level_hashes(tx, name, level - 1, index * 256, 256).await?;
            store::insert_level_hash(tx, name, level, index, &fold(&children)).await?;
            level += 1;
        }
    }
    Ok(first..first + n)
}

/// The newest entries of a log, filtered by action and/or data subject, with their indexes.
pub async fn recent(
    db: &Db,
    log: Log,
    action_name: Option<&str>,
    subject: Option<&str>,
    limit: u64,
) -> Result<Vec<(u64, Entry)>, Error> {
    db.settle().await?;
    let mut c = db.pool.acquire().await?;
    let rows = store::recent(&mut c, log.as_str(), action_name, subject, limit).await?;
    rows.into_iter()
        .map(|r| {
            let entry =
                serde_json::from_slice(&r.entry).map_err(|e| Error::Corrupt(format!("entry {}: {e}", r.idx)))?;
            Ok((r.idx, entry))
        })
        .collect()
}

/// Entries with one of `actions` recorded at or after `from`, oldest first (for monitoring
/// rules).
pub async fn since(db: &Db, log: Log, from: DateTime<Utc>, actions: &[Action]) -> Result<Vec<(u64, Entry)>, Error> {
    db.settle().await?;
    let mut c = db.pool.acquire().await?;
    let actions: Vec<&str> = actions.iter().map(|a| a.as_str()).collect();
    let rows = store::since(&mut c, log.as_str(), millis(from), &actions).await?;
    rows.into_iter()
        .map(|r| {
            let entry =
                serde_json::from_slice(&r.entry).map_err(|e| Error::Corrupt(format!("entry {}: {e}", r.idx)))?;
            Ok((r.idx, entry))
        })
        .collect()
}

/// The hash of a complete subtree from its 2^k leaves (or lower subtrees).
fn fold(hashes: &[Hash]) -> Hash {
    let mut level: Vec<Hash> = hashes.to_vec();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|p| match p {
                [l, r] => merkle::node_hash(l, r),
                [one] => *one,
                _ => [0u8; 32],
            })
            .collect();
    }
    level.first().copied().unwrap_or_else(merkle::empty_root)
}

/// Reads the complete subtrees a computation needs: height `h` = 8·L + r comes from 2^r
/// stored hashes at tile level L.
async fn subtrees(c: &mut AnyConnection, log: &str, needed: &[(u32, u64)]) -> Result<HashMap<(u32, u64), Hash>, Error> {
    let mut out = HashMap::with_capacity(needed.len());
    for &(h, i) in needed {
        let (level, r) = (h / 8, h % 8);
        let count = 1u64 << r;
        let hashes = store::level_hashes(c, log, level, i << r, count).await?;
        if hashes.len() as u64 != count {
            return Err(Error::Corrupt(format!("subtree {h}/{i} is incomplete")));
        }
        out.insert((h, i), fold(&hashes));
    }
    Ok(out)
}

async fn root_at(c: &mut AnyConnection, log: &str, size: u64) -> Result<Hash, Error> {
    let needed = merkle::subtrees_needed(|f| {
        merkle::root(size, f);
    });
    let known = subtrees(c, log, &needed).await?;
    from_known(&known, |f| merkle::root(size, f))
}

/// Runs a tree computation over the subtree hashes read for it. It asks only for what
/// `subtrees_needed` listed, so a hash that was not read is a fault, reported as one rather
/// than computed over as zeros.
fn from_known<T>(
    known: &HashMap<(u32, u64), Hash>,
    compute: impl FnOnce(&mut dyn FnMut(u32, u64) -> Hash) -> T,
) -> Result<T, Error> {
    let mut missing = None;
    let out = compute(&mut |h, i| match known.get(&(h, i)) {
        Some(hash) => *hash,
        None => {
            missing = Some((h, i));
            Hash::default()
        }
    });
    match missing {
        Some((h, i)) => Err(Error::Corrupt(format!("subtree {h}/{i} was needed but not read"))),
        None => Ok(out),
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InclusionProof {
    pub log: Log,
    pub index: u64,
    pub tree_size: u64,
    /// base64 SHA-256 leaf hash of the entry.
    pub leaf_hash: String,
    /// base64 hashes of the audit path, bottom up.
    pub hashes: Vec<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConsistencyProof {
    pub log: Log,
    pub from: u64,
    pub to: u64,
    pub hashes: Vec<String>,
}

/// Checkpoint policy: sign at least every `interval` when there are new entries, or as soon
/// as `entries` new ones have arrived.
#[derive(Debug, Clone, Copy)]
pub struct CheckpointPolicy {
    pub interval: std::time::Duration,
    pub entries: u64,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        CheckpointPolicy { interval: std::time::Duration::from_secs(10), entries: 1000 }
    }
}

/// A log's signing side: the database and the checkpoint key.
#[derive(Clone)]
pub struct Ledger {
    db: Db,
    /// Empty for a verify-only handle (an auditor's or a witness's).
    signers: std::sync::Arc<HashMap<Log, NoteSigner>>,
    /// Each log's verifier key, `name+hash+base64`.
    verifiers: std::sync::Arc<HashMap<Log, String>>,
    pub policy: CheckpointPolicy,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ledger")
    }
}

impl Ledger {
    /// `origin` prefixes each log's checkpoint origin (`origin/audit`); `key` is the Ed25519
    /// checkpoint key, named per log by its origin.
    pub fn new(db: Db, origin: &str, key: &NoteSigner, policy: CheckpointPolicy) -> Result<Ledger, Error> {
        let mut signers = HashMap::new();
        for log in Log::ALL {
            let signer =
                key.derive(&format!("{origin}/{}", log.as_str())).map_err(|e| Error::Invalid(e.to_string()))?;
            signers.insert(log, signer);
        }
        let verifiers = signers.iter().map(|(log, s)| (*log, s.verifier_key())).collect();
        Ok(Ledger { db, signers: std::sync::Arc::new(signers), verifiers: std::sync::Arc::new(verifiers), policy })
    }

    /// A handle that can read, prove and verify but not sign, from the logs' published
    /// verifier keys (`GET /ledger/LOG/verifier-key`): what an auditor or a witness holds,
    /// without any of the platform's secrets. Each key's name must end in `/LOG`.
    pub fn verify_only(db: Db, verifier_keys: &[String]) -> Result<Ledger, Error> {
        let mut verifiers = HashMap::new();
        for key in verifier_keys {
            let v = NoteVerifier::parse(key).map_err(|e| Error::Invalid(format!("verifier key {key}: {e}")))?;
            let log = v
                .name
                .rsplit_once('/')
                .and_then(|(_, log)| Log::parse(log))
                .ok_or_else(|| Error::Invalid(format!("verifier key {key} does not name a log")))?;
            verifiers.insert(log, key.trim().to_string());
        }
        Ok(Ledger {
            db,
            signers: std::sync::Arc::new(HashMap::new()),
            verifiers: std::sync::Arc::new(verifiers),
            policy: CheckpointPolicy::default(),
        })
    }

    fn signer(&self, log: Log) -> Result<&NoteSigner, Error> {
        self.signers.get(&log).ok_or(Error::Invalid(format!("this ledger handle cannot sign the {} log", log.as_str())))
    }

    /// `name+hash+base64`: what a tile client or witness configures to verify checkpoints.
    pub fn verifier_key(&self, log: Log) -> Result<String, Error> {
        self.verifiers.get(&log).cloned().ok_or(Error::NotFound("no verifier key for that log"))
    }

    pub fn origin(&self, log: Log) -> Result<String, Error> {
        let key = self.verifier_key(log)?;
        Ok(key.split('+').next().unwrap_or_default().to_string())
    }

    /// A connection that sees every entry appended so far: entries waiting in the exchange
    /// journal are folded in first, so no reader of the ledger has to remember to.
    async fn reader(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, Error> {
        self.db.settle().await?;
        Ok(self.db.pool.acquire().await?)
    }

    pub async fn size(&self, log: Log) -> Result<u64, Error> {
        Ok(store::size(&mut *self.reader().await?, log.as_str()).await?)
    }

    /// Signs a checkpoint of the current tree when the policy says one is due; returns its size.
    pub async fn checkpoint_if_due(&self, log: Log, now: DateTime<Utc>) -> Result<Option<u64>, Error> {
        let mut c = self.reader().await?;
        let size = store::size(&mut c, log.as_str()).await?;
        let latest = store::latest_checkpoint(&mut c, log.as_str()).await?;
        let due = match &latest {
            None => true,
            Some(cp) if cp.size >= size => false,
            Some(cp) => {
                size - cp.size >= self.policy.entries
                    || millis(now) - cp.created_at >= i64::try_from(self.policy.interval.as_millis()).unwrap_or(0)
            }
        };
        drop(c);
        if !due {
            return Ok(None);
        }
        self.sign_checkpoint(log, now).await.map(Some)
    }

    /// Signs a checkpoint when the tree has grown past the latest one (at shutdown).
    pub async fn checkpoint_if_behind(&self, log: Log, now: DateTime<Utc>) -> Result<Option<u64>, Error> {
        let mut c = self.reader().await?;
        let size = store::size(&mut c, log.as_str()).await?;
        let latest = store::latest_checkpoint(&mut c, log.as_str()).await?.map(|cp| cp.size);
        drop(c);
        if latest == Some(size) {
            return Ok(None);
        }
        self.sign_checkpoint(log, now).await.map(Some)
    }

    /// Signs a checkpoint of the tree as it is now (the empty tree included).
    pub async fn sign_checkpoint(&self, log: Log, now: DateTime<Utc>) -> Result<u64, Error> {
        let mut c = self.reader().await?;
        let size = store::size(&mut c, log.as_str()).await?;
        let root = root_at(&mut c, log.as_str(), size).await?;
        let signer = self.signer(log)?;
        let body = Checkpoint { origin: signer.name().to_string(), size, root }.body();
        let note = note::assemble(&body, &[signer.sign(&body)]);
        let row = store::CheckpointRow { size, root: root.to_vec(), note, created_at: millis(now) };
        store::insert_checkpoint(&mut c, log.as_str(), &row).await?;
        Ok(size)
    }

    /// The latest checkpoint's size and root.
    pub async fn latest_checkpoint(&self, log: Log) -> Result<Option<(u64, Hash)>, Error> {
        let mut c = self.reader().await?;
        let cp = store::latest_checkpoint(&mut c, log.as_str()).await?;
        cp.map(|cp| Ok((cp.size, <Hash>::try_from(cp.root).map_err(|_| Error::Corrupt("checkpoint root".into()))?)))
            .transpose()
    }

    /// The root of the stored checkpoint of `size`, if there is one.
    pub async fn checkpoint_root(&self, log: Log, size: u64) -> Result<Option<Hash>, Error> {
        let mut c = self.reader().await?;
        let found = store::checkpoints(&mut c, log.as_str()).await?.into_iter().find(|cp| cp.size == size);
        found.map(|cp| <Hash>::try_from(cp.root).map_err(|_| Error::Corrupt("checkpoint root".into()))).transpose()
    }

    /// The latest signed checkpoint as a note, with any witness cosignatures.
    pub async fn checkpoint(&self, log: Log) -> Result<String, Error> {
        let mut c = self.reader().await?;
        let cp = store::latest_checkpoint(&mut c, log.as_str()).await?.ok_or(Error::NotFound("no checkpoint yet"))?;
        let mut note = cp.note;
        for (_, line) in store::cosignatures(&mut c, log.as_str(), cp.size).await? {
            note.push_str(&line);
        }
        Ok(note)
    }

    pub async fn inclusion_proof(&self, log: Log, index: u64, size: u64) -> Result<InclusionProof, Error> {
        let mut c = self.reader().await?;
        if size > store::size(&mut c, log.as_str()).await? || index >= size {
            return Err(Error::NoProof(format!("no entry {index} in a tree of {size}")));
        }
        let needed = merkle::subtrees_needed(|f| {
            merkle::inclusion_proof(index, size, f);
        });
        let known = subtrees(&mut c, log.as_str(), &needed).await?;
        let proof = from_known(&known, |f| merkle::inclusion_proof(index, size, f))?
            .ok_or(Error::Invalid("index out of range".into()))?;
        let leaf = store::level_hashes(&mut c, log.as_str(), 0, index, 1).await?;
        let leaf = leaf.first().ok_or(Error::Corrupt(format!("entry {index} is missing")))?;
        Ok(InclusionProof {
            log,
            index,
            tree_size: size,
            leaf_hash: B64.encode(leaf),
            hashes: proof.iter().map(|h| B64.encode(h)).collect(),
        })
    }

    pub async fn consistency_proof(&self, log: Log, from: u64, to: u64) -> Result<ConsistencyProof, Error> {
        let mut c = self.reader().await?;
        if to > store::size(&mut c, log.as_str()).await? || from == 0 || from > to {
            return Err(Error::NoProof(format!("no consistency proof from {from} to {to}")));
        }
        let needed = merkle::subtrees_needed(|f| {
            merkle::consistency_proof(from, to, f);
        });
        let known = subtrees(&mut c, log.as_str(), &needed).await?;
        let proof = from_known(&known, |f| merkle::consistency_proof(from, to, f))?
            .ok_or(Error::Invalid("sizes out of range".into()))?;
        Ok(ConsistencyProof { log, from, to, hashes: proof.iter().map(|h| B64.encode(h)).collect() })
    }

    /// A tile: hashes, or an entry bundle. The `audit` log's tiles need an auditor's
    /// capability; the others are public.
    pub async fn read_tile(
        &self,
        log: Log,
        tile: &tiles::TilePath,
        auditor: Option<&impl Grant<SecurityEventRead>>,
    ) -> Result<Vec<u8>, Error> {
        if !log.entries_public() && auditor.is_none() {
            return Err(Error::Forbidden);
        }
        if tile.entries { self.entry_bundle(log, tile).await } else { self.tile(log, tile).await }
    }

    /// A hash tile (C2SP tlog-tiles): `width` hashes of tile `index` at `level`.
    pub async fn tile(&self, log: Log, tile: &tiles::TilePath) -> Result<Vec<u8>, Error> {
        let mut c = self.reader().await?;
        let size = store::size(&mut c, log.as_str()).await?;
        let available = tiles::stored_at_level(size, tile.level);
        tiles::check_width(tile, available)?;
        let hashes =
            store::level_hashes(&mut c, log.as_str(), tile.level, tile.index * 256, u64::from(tile.width)).await?;
        Ok(hashes.concat())
    }

    /// An entry bundle: each entry as a big-endian u16 length and its bytes.
    pub async fn entry_bundle(&self, log: Log, tile: &tiles::TilePath) -> Result<Vec<u8>, Error> {
        let mut c = self.reader().await?;
        let size = store::size(&mut c, log.as_str()).await?;
        tiles::check_width(tile, size)?;
        let rows = store::entries(&mut c, log.as_str(), tile.index * 256, u64::from(tile.width)).await?;
        let mut out = Vec::new();
        for r in rows {
            let len = u16::try_from(r.entry.len()).map_err(|_| Error::Corrupt(format!("entry {} too long", r.idx)))?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&r.entry);
        }
        Ok(out)
    }

    /// Adds a witness's cosignature line to the checkpoint of `size`.
    pub async fn add_cosignature(&self, log: Log, size: u64, witness: &str, line: &str) -> Result<(), Error> {
        let mut c = self.reader().await?;
        if store::checkpoints(&mut c, log.as_str()).await?.iter().all(|cp| cp.size != size) {
            return Err(Error::NotFound("no checkpoint of that size"));
        }
        store::insert_cosignature(&mut c, log.as_str(), size, witness, line).await?;
        Ok(())
    }

    /// As a witness: checks the latest checkpoint's signature and its consistency with the
    /// checkpoint this witness cosigned last (`last`), then cosigns it. Returns what to
    /// remember for next time.
    pub async fn cosign(
        &self,
        log: Log,
        witness: &NoteSigner,
        last: Option<(u64, Hash)>,
        now: DateTime<Utc>,
    ) -> Result<(u64, Hash), Error> {
        let note = self.checkpoint(log).await?;
        let verifier = NoteVerifier::parse(&self.verifier_key(log)?).map_err(|e| Error::Invalid(e.to_string()))?;
        let body = note::verify(&note, &verifier).map_err(|e| Error::Invalid(format!("checkpoint signature: {e}")))?;
        let cp = Checkpoint::parse(body).ok_or(Error::Invalid("the checkpoint does not parse".into()))?;
        if cp.origin != self.origin(log)? {
            return Err(Error::Invalid(format!("the checkpoint names origin {}", cp.origin)));
        }
        if let Some((old_size, old_root)) = last {
            let consistent = if old_size > cp.size {
                false
            } else if old_size == cp.size {
                old_root == cp.root
            } else if old_size == 0 {
                old_root == merkle::empty_root()
            } else {
                let proof = self.consistency_proof(log, old_size, cp.size).await?;
                // The proof is this ledger's own: a hash that does not decode is a fault here,
                // not an inconsistent log.
                let hashes = proof
                    .hashes
                    .iter()
                    .map(|h| B64.decode(h).ok().and_then(|b| <Hash>::try_from(b).ok()))
                    .collect::<Option<Vec<Hash>>>()
                    .ok_or_else(|| Error::Corrupt("a consistency proof hash does not decode".into()))?;
                merkle::verify_consistency(old_size, cp.size, &old_root, &cp.root, &hashes)
            };
            if !consistent {
                return Err(Error::Invalid(format!(
                    "checkpoint {} is not consistent with checkpoint {old_size} cosigned before: refusing to cosign",
                    cp.size
                )));
            }
        }
        let line = witness.cosign(body, u64::try_from(now.timestamp()).unwrap_or(0));
        self.add_cosignature(log, cp.size, witness.name(), &line).await?;
        Ok((cp.size, cp.root))
    }
}
