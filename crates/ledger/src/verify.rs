//! Verification: recomputing a log from its stored entries and checking every hash and
//! signed checkpoint, optionally against the state a witness cosigned.

use super::*;

/// What `verify` found in one log.
#[derive(Debug)]
pub struct Verified {
    pub log: Log,
    pub entries: u64,
    pub checkpoints: usize,
}

#[derive(Debug)]
pub struct Tampered {
    pub log: &'static str,
    /// The first entry that differs, or may differ.
    pub index: u64,
    /// When the difference shows only in a checkpoint's root: the last entry it covers
    /// (one of `index..=through` changed; the platform holds nothing that says which).
    pub through: Option<u64>,
    pub what: String,
}

impl std::fmt::Display for Tampered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.through {
            Some(through) if through > self.index => {
                write!(f, "{}: a difference among entries {}–{through}: {}", self.log, self.index, self.what)
            }
            _ => write!(f, "{}: first difference at index {}: {}", self.log, self.index, self.what),
        }
    }
}

impl std::error::Error for Tampered {}

impl Ledger {
    /// Recomputes the whole tree of `log` from its entries and checks every stored hash,
    /// projection and checkpoint (signature, size, root). Each checkpoint's root must equal
    /// the root recomputed from the same entries at its size, so consecutive checkpoints are
    /// consistent with each other by construction. `progress` gets the count so far.
    pub async fn verify(&self, log: Log, progress: impl FnMut(u64, u64)) -> Result<Verified, VerifyError> {
        self.verify_against(log, None, progress).await
    }

    /// As [`Ledger::verify`], and the tree must also have had `trusted` = (size, root) — a
    /// checkpoint known from outside the database (a witness's last cosignature, a saved
    /// checkpoint). Without one, deleting the newest entries together with their checkpoints
    /// cannot be told apart from a shorter log.
    pub async fn verify_against(
        &self,
        log: Log,
        trusted: Option<(u64, Hash)>,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<Verified, VerifyError> {
        let name = log.as_str();
        let origin = self.origin(log)?;
        let verifier = NoteVerifier::parse(&self.verifier_key(log)?).map_err(|e| Error::Invalid(e.to_string()))?;
        let mut c = self.db.pool.acquire().await.map_err(Error::from)?;
        // Checkpoints first, then the size: on a live log both only grow, so every
        // checkpoint read is within the size read after it, and entries past that size
        // (appended during the run) are simply not looked at.
        let checkpoints = store::checkpoints(&mut c, name).await.map_err(Error::from)?;
        let size = store::size(&mut c, name).await.map_err(Error::from)?;
        if let Some((trusted_size, _)) = trusted
            && trusted_size > size
        {
            return Err(VerifyError::Tampered(Tampered {
                log: name,
                through: None,
                index: size,
                what: format!("the log holds {size} entries but a trusted checkpoint has {trusted_size}"),
            }));
        }
        let tampered =
            |index: u64, what: String| VerifyError::Tampered(Tampered { log: name, index, through: None, what });
        let mut next_checkpoint = checkpoints.iter().peekable();
        let mut tree = merkle::Frontier::default();
        // The empty-tree checkpoint, if any, comes first.
        while let Some(cp) = next_checkpoint.next_if(|cp| cp.size == 0) {
            check_checkpoint(cp, &origin, &verifier, &merkle::empty_root()).map_err(|w| tampered(0, w.into_text()))?;
        }
        let mut expected = 0u64;
        // Entries up to here matched a checkpoint: a later mismatch lies after it.
        let mut vouched = 0u64;
        while expected < size {
            let batch =
                store::entries(&mut c, name, expected, 10_000.min(size - expected)).await.map_err(Error::from)?;
            if batch.is_empty() {
                break;
            }
            for e in &batch {
                if e.idx != expected {
                    return Err(tampered(expected, format!("entry {expected} is missing (next stored is {})", e.idx)));
                }

                let leaf = merkle::leaf_hash(&e.entry);
                if e.leaf_hash != leaf {
                    return Err(tampered(e.idx, "the entry does not match its stored leaf hash".into()));
                }
                let parsed: Entry = serde_json::from_slice(&e.entry)
                    .map_err(|_| tampered(e.idx, "the entry is not a ledger entry".into()))?;
                if parsed.canonical().ok().as_ref() != Some(&e.entry) {
                    return Err(tampered(e.idx, "the entry is not in canonical form".into()));
                }
                let at = DateTime::parse_from_rfc3339(&parsed.at).map(|t| millis(t.with_timezone(&Utc))).unwrap_or(-1);
                if parsed.action != e.action || parsed.actor != e.actor || parsed.subject != e.subject || at != e.at {
                    return Err(tampered(e.idx, "the query columns disagree with the entry".into()));
                }
                for (height, index, hash) in tree.push(leaf) {
                    if height % 8 == 0 && height > 0 {
                        let stored =
                            store::level_hashes(&mut c, name, height / 8, index, 1).await.map_err(Error::from)?;
                        if stored.first() != Some(&hash) {
                            return Err(tampered(e.idx, format!("stored subtree hash {}/{index} differs", height / 8)));
                        }
                    }
                }
                expected += 1;
                while let Some(cp) = next_checkpoint.next_if(|cp| cp.size == expected) {
                    // A changed entry whose stored hashes were recomputed shows only here: it
                    // is one of those this checkpoint added, and the first of them is named.
                    check_checkpoint(cp, &origin, &verifier, &tree.root()).map_err(|fault| match fault {
                        CheckpointFault::Forged(w) => tampered(expected - 1, w),
                        CheckpointFault::RootDiffers(w) => VerifyError::Tampered(Tampered {
                            log: name,
                            index: vouched,
                            through: Some(expected - 1),
                            what: format!("{w}: an entry it added changed since it was signed"),
                        }),
                    })?;
                    vouched = expected;
                }
                if let Some((trusted_size, trusted_root)) = trusted
                    && trusted_size == expected
                    && tree.root() != trusted_root
                {
                    return Err(tampered(
                        expected - 1,
                        format!("the tree of {expected} differs from the trusted checkpoint"),
                    ));
                }
            }
            progress(expected, size);
        }
        if expected != size {
            return Err(tampered(expected, format!("the log records {size} entries but {expected} are stored")));
        }
        // Entries beyond the size the log records: only an insertion makes them (appends
        // move the size first, in the same transaction).
        let beyond = store::entries(&mut c, name, size, 1).await.map_err(Error::from)?;
        let recounted = store::size(&mut c, name).await.map_err(Error::from)?;
        if let Some(extra) = beyond.first().filter(|e| e.idx >= recounted) {
            return Err(tampered(extra.idx, format!("an entry beyond the recorded size {recounted}")));
        }
        if let Some(cp) = next_checkpoint.next() {
            return Err(tampered(size, format!("a checkpoint claims size {} beyond the log", cp.size)));
        }
        Ok(Verified { log, entries: expected, checkpoints: checkpoints.len() })
    }
}

/// What is wrong with a stored checkpoint.
enum CheckpointFault {
    /// The checkpoint itself: its signature, origin, or stored size and root.
    Forged(String),
    /// A genuine checkpoint whose root the entries no longer give.
    RootDiffers(String),
}

impl CheckpointFault {
    fn into_text(self) -> String {
        match self {
            CheckpointFault::Forged(w) | CheckpointFault::RootDiffers(w) => w,
        }
    }
}

fn check_checkpoint(
    cp: &store::CheckpointRow,
    origin: &str,
    verifier: &NoteVerifier,
    root: &Hash,
) -> Result<(), CheckpointFault> {
    let forged = CheckpointFault::Forged;
    let text = note::verify(&cp.note, verifier).map_err(|e| forged(format!("checkpoint {}: {e}", cp.size)))?;
    let parsed = Checkpoint::parse(text).ok_or_else(|| forged(format!("checkpoint {} does not parse", cp.size)))?;
    if parsed.origin != origin {
        return Err(forged(format!("checkpoint {} names origin {}, not {origin}", cp.size, parsed.origin)));
    }
    if parsed.size != cp.size || parsed.root.as_slice() != cp.root.as_slice() {
        return Err(forged(format!("checkpoint {} disagrees with its stored size or root", cp.size)));
    }
    if parsed.root != *root {
        return Err(CheckpointFault::RootDiffers(format!(
            "checkpoint {} root differs from the recomputed tree",
            cp.size
        )));
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Tampered(#[from] Tampered),
    #[error(transparent)]
    Failed(#[from] Error),
}
