//! The ledger on SQLite and PostgreSQL: transactional appends, sequencing under concurrency
//! and in group commits, batched appends, proofs and tiles that verify against signed
//! checkpoints, tampering caught by verify, and journaled entries that reach the ledger once
//! after a crash.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

// The package is `tongban-ledger`; the code calls it `ledger`, as its dependents do.
extern crate tongban_ledger as ledger;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{TimeZone, Utc};
use kernel::audit::{Action, Outcome};
use kernel::db::journal::{Apply, Journal, JournalError};
use ledger::merkle::{self, Hash};
use ledger::note::{Checkpoint, NoteSigner, NoteVerifier};
use ledger::tiles::TilePath;
use ledger::{CheckpointPolicy, Entry, Ledger, Log, VerifyError};
use sqlx::Connection;
use testkit::{TestDb, on_both_databases};

fn ledger(t: &TestDb) -> Ledger {
    Ledger::new(t.db.clone(), "test.tongban", &NoteSigner::new("k", &[1u8; 32]).unwrap(), CheckpointPolicy::default())
        .unwrap()
}

fn entry(i: u64) -> Entry {
    let now = Utc.timestamp_opt(1_800_000_000 + i as i64, 0).unwrap();
    let mut e = Entry::new(Action::ConfigurationChanged, Outcome::Success, now);
    e.object = Some(format!("object-{i}"));
    e.subject = Some(format!("person-{}", i % 7));
    e
}

async fn fill(t: &TestDb, n: u64) {
    let mut c = t.db.pool.acquire().await.unwrap();
    for i in 0..n {
        ledger::append(&mut c, Log::Public, &entry(i)).await.unwrap();
    }
}

fn b64(h: &str) -> Hash {
    B64.decode(h).unwrap().try_into().unwrap()
}

/// The objects of the test entries on the public log, newest first.
async fn kept_objects(t: &TestDb) -> Vec<Option<String>> {
    ledger::recent(&t.db, Log::Public, Some("configuration_changed"), None, 1_000)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, e)| e.object)
        .collect()
}

fn checkpoint_of(l: &Ledger, note: &str) -> Checkpoint {
    let v = NoteVerifier::parse(&l.verifier_key(Log::Public).unwrap()).unwrap();
    Checkpoint::parse(ledger::note::verify(note, &v).unwrap()).unwrap()
}

on_both_databases!(
    appends_commit_or_roll_back_with_the_change,
    concurrent_appends_get_contiguous_indexes,
    group_commits_keep_each_units_writes_apart,
    a_lone_unit_that_fails_leaves_nothing,
    an_idle_writer_writes_again,
    batched_appends_build_the_same_tree,
    proofs_and_tiles_verify_against_signed_checkpoints,
    verify_names_the_first_tampered_index,
    journaled_entries_reach_the_ledger_once_after_a_crash,
);

async fn appends_commit_or_roll_back_with_the_change(t: TestDb) {
    let l = ledger(&t);
    let mut tx = t.db.begin().await.unwrap();
    ledger::append(&mut tx, Log::Public, &entry(0)).await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(l.size(Log::Public).await.unwrap(), 0);
    let mut tx = t.db.begin().await.unwrap();
    assert_eq!(ledger::append(&mut tx, Log::Public, &entry(0)).await.unwrap(), 0);
    assert_eq!(ledger::append(&mut tx, Log::Public, &entry(1)).await.unwrap(), 1);
    tx.commit().await.unwrap();
    assert_eq!(l.size(Log::Public).await.unwrap(), 2);
    // Canonical bytes: sorted keys, no whitespace, absent fields omitted.
    let (_, stored) = ledger::recent(&t.db, Log::Public, None, None, 1).await.unwrap().remove(0);
    let text = String::from_utf8(stored.canonical().unwrap()).unwrap();
    assert!(
        text.starts_with(
            "{\"action\":\"configuration_changed\",\"at\":\"2027-01-15T08:00:01.000Z\",\"object\":\"object-1\""
        ),
        "{text}"
    );
    let resorted: std::collections::BTreeMap<String, serde_json::Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(serde_json::to_string(&resorted).unwrap(), text);
}

async fn concurrent_appends_get_contiguous_indexes(t: TestDb) {
    let tasks: Vec<_> = (0..8u64)
        .map(|w| {
            let db = t.db.clone();
            tokio::spawn(async move {
                for i in 0..40u64 {
                    let mut tx = db.begin().await.unwrap();
                    ledger::append(&mut tx, Log::Public, &entry(w * 1000 + i)).await.unwrap();
                    tx.commit().await.unwrap();
                }
            })
        })
        .collect();
    // Verification and checkpointing run while the appends do, and never cry wolf.
    let l = ledger(&t);
    for _ in 0..5 {
        l.sign_checkpoint(Log::Public, Utc::now()).await.unwrap();
        l.verify(Log::Public, |_, _| {}).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(l.size(Log::Public).await.unwrap(), 320);
    l.sign_checkpoint(Log::Public, Utc::now()).await.unwrap();
    let report = l.verify(Log::Public, |_, _| {}).await.unwrap();
    assert_eq!(report.entries, 320);
}

/// Appends joining group commits (mixed with plain transactions) get distinct indexes; a
/// unit that fails leaves none of its writes while the units beside it commit; what the
/// callers were told was written is in a tree that verifies.
async fn group_commits_keep_each_units_writes_apart(t: TestDb) {
    let tasks: Vec<_> = (0..60u64)
        .map(|i| {
            let db = t.db.clone();
            tokio::spawn(async move {
                if i % 10 == 9 {
                    // A writer outside the groups interleaves with them.
                    let mut tx = db.begin().await.unwrap();
                    ledger::append_in(&mut tx, Log::Public, &entry(i)).await.unwrap();
                    tx.commit().await.unwrap();
                    return (i, Ok(u64::MAX));
                }
                let written = db
                    .write_grouped(move |c| {
                        Box::pin(async move {
                            let index = ledger::append_in(c, Log::Public, &entry(i)).await?;
                            if i % 4 == 0 {
                                return Err(sqlx::Error::Protocol(format!("unit {i} refuses after writing")));
                            }
                            Ok(index)
                        })
                    })
                    .await;
                (i, written)
            })
        })
        .collect();
    let mut indexes = std::collections::BTreeSet::new();
    let mut refused = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (i, Ok(index)) => {
                assert!(i % 4 != 0, "unit {i} should have failed");
                assert!(index == u64::MAX || indexes.insert(index), "index {index} given twice");
            }
            (i, Err(e)) => {
                assert_eq!(i % 4, 0, "unit {i} failed: {e}");
                refused.push(i);
            }
        }
    }
    assert_eq!(refused.len(), 15);
    let l = ledger(&t);
    assert_eq!(l.size(Log::Public).await.unwrap(), 45);
    let kept = kept_objects(&t).await;
    assert_eq!(kept.len(), 45);
    for i in refused {
        assert!(!kept.contains(&Some(format!("object-{i}"))), "the refused unit {i} left its entry");
    }
    l.sign_checkpoint(Log::Public, Utc::now()).await.unwrap();
    assert_eq!(l.verify(Log::Public, |_, _| {}).await.unwrap().entries, 45);
}

/// A unit alone in its group runs without a savepoint of its own: when it fails, none of
/// its writes stay, and the next unit gets the index it would have had.
async fn a_lone_unit_that_fails_leaves_nothing(t: TestDb) {
    let refused =
        t.db.write_grouped(|c| {
            Box::pin(async move {
                ledger::append_in(c, Log::Public, &entry(0)).await?;
                Err::<u64, _>(sqlx::Error::Protocol("refuses after writing".into()))
            })
        })
        .await;
    assert!(refused.is_err());
    let kept =
        t.db.write_grouped(|c| Box::pin(async move { ledger::append_in(c, Log::Public, &entry(1)).await }))
            .await
            .unwrap();
    assert_eq!(kept, 0);
    let l = ledger(&t);
    assert_eq!(l.size(Log::Public).await.unwrap(), 1);
    let kept = kept_objects(&t).await;
    assert_eq!(kept, vec![Some("object-1".to_string())]);
}

/// The group writer lets its connection go after a few idle seconds: the next write (and a
/// burst of them beside a plain transaction) lands as before.
async fn an_idle_writer_writes_again(t: TestDb) {
    let append = |db: kernel::db::Db, i: u64| async move {
        db.write_grouped(move |c| Box::pin(async move { ledger::append_in(c, Log::Public, &entry(i)).await })).await
    };
    assert_eq!(append(t.db.clone(), 0).await.unwrap(), 0);
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let burst: Vec<_> = (1..=8u64).map(|i| tokio::spawn(append(t.db.clone(), i))).collect();
    let mut tx = t.db.begin().await.unwrap();
    ledger::append_in(&mut tx, Log::Public, &entry(9)).await.unwrap();
    tx.commit().await.unwrap();
    for task in burst {
        task.await.unwrap().unwrap();
    }
    assert_eq!(ledger(&t).size(Log::Public).await.unwrap(), 10);
    assert_eq!(kept_objects(&t).await.len(), 10);
}

/// Entries appended in batches of uneven size (one crossing a 256-entry subtree) get
/// consecutive indexes and make the tree one-at-a-time appends make: every proof verifies.
async fn batched_appends_build_the_same_tree(t: TestDb) {
    let l = ledger(&t);
    let mut next = 0u64;
    for size in [1u64, 254, 45] {
        let batch: Vec<_> = (next..next + size).map(entry).collect();
        let mut tx = t.db.begin().await.unwrap();
        let indexes = ledger::append_many_in(&mut tx, Log::Public, &batch).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(indexes, next..next + size);
        next += size;
    }
    l.sign_checkpoint(Log::Public, Utc::now()).await.unwrap();
    let head = checkpoint_of(&l, &l.checkpoint(Log::Public).await.unwrap());
    assert_eq!(head.size, 300);
    assert_eq!(l.verify(Log::Public, |_, _| {}).await.unwrap().entries, 300);
    for i in [0u64, 254, 255, 256, 299] {
        let p = l.inclusion_proof(Log::Public, i, 300).await.unwrap();
        let leaf = merkle::leaf_hash(&entry(i).canonical().unwrap());
        let path: Vec<Hash> = p.hashes.iter().map(|h| b64(h)).collect();
        assert!(merkle::verify_inclusion(i, 300, &leaf, &path, &head.root), "entry {i}");
    }
}

async fn proofs_and_tiles_verify_against_signed_checkpoints(t: TestDb) {
    let l = ledger(&t);
    fill(&t, 300).await;
    l.sign_checkpoint(Log::Public, Utc::now()).await.unwrap();
    let old = checkpoint_of(&l, &l.checkpoint(Log::Public).await.unwrap());
    assert_eq!((old.origin.as_str(), old.size), ("test.tongban/public", 300));
    fill(&t, 300).await; // 600 in all, across two 256-entry subtrees
    l.sign_checkpoint(Log::Public, Utc::now()).await.unwrap();
    let new = checkpoint_of(&l, &l.checkpoint(Log::Public).await.unwrap());
    assert_eq!(new.size, 600);

    for i in [0u64, 1, 255, 256, 299, 511, 512, 599] {
        let p = l.inclusion_proof(Log::Public, i, 600).await.unwrap();
        let leaf = merkle::leaf_hash(&entry(if i < 300 { i } else { i - 300 }).canonical().unwrap());
        assert_eq!(b64(&p.leaf_hash), leaf);
        let path: Vec<Hash> = p.hashes.iter().map(|h| b64(h)).collect();
        assert!(merkle::verify_inclusion(i, 600, &leaf, &path, &new.root), "entry {i}");
    }
    let c = l.consistency_proof(Log::Public, 300, 600).await.unwrap();
    let path: Vec<Hash> = c.hashes.iter().map(|h| b64(h)).collect();
    assert!(merkle::verify_consistency(300, 600, &old.root, &new.root, &path));
    assert!(l.inclusion_proof(Log::Public, 600, 600).await.is_err());
    assert!(l.consistency_proof(Log::Public, 300, 601).await.is_err());

    // Tiles rebuild the same tree: level 0 full tiles and the partial edge, level 1 partial.
    let mut leaves = Vec::new();
    for (index, width) in [(0u64, 256u16), (1, 256), (2, 88)] {
        let tile = l.tile(Log::Public, &TilePath { entries: false, level: 0, index, width }).await.unwrap();
        assert_eq!(tile.len(), 32 * width as usize);
        leaves.extend(tile.chunks(32).map(|c| <Hash>::try_from(c).unwrap()));
    }
    let mut tree = merkle::MemoryTree::new();
    for leaf in &leaves {
        tree.push(*leaf);
    }
    assert_eq!(tree.root_at(600), new.root);
    let level1 = l.tile(Log::Public, &TilePath { entries: false, level: 1, index: 0, width: 2 }).await.unwrap();
    assert_eq!(&level1[..32], &tree.subtree(8, 0));
    assert!(l.tile(Log::Public, &TilePath { entries: false, level: 1, index: 0, width: 3 }).await.is_err());
    assert!(l.tile(Log::Public, &TilePath { entries: false, level: 0, index: 2, width: 256 }).await.is_err());
    let bundle = l.entry_bundle(Log::Public, &TilePath { entries: true, level: 0, index: 2, width: 88 }).await.unwrap();
    let len = u16::from_be_bytes([bundle[0], bundle[1]]) as usize;
    assert_eq!(merkle::leaf_hash(&bundle[2..2 + len]), leaves[512]);
}

/// Removes the append-only guard, as an intruder with database access could.
async fn disarm(t: &TestDb) {
    let statements: &[&str] = match t.backend {
        "sqlite" => &[
            "DROP TRIGGER ledger_entries_no_update",
            "DROP TRIGGER ledger_entries_no_delete",
            "DROP TRIGGER ledger_checkpoints_no_update",
            "DROP TRIGGER ledger_checkpoints_no_delete",
            "DROP TRIGGER ledger_hashes_no_update",
            "DROP TRIGGER ledger_hashes_no_delete",
        ],
        _ => &[
            "ALTER TABLE ledger_entries DISABLE TRIGGER USER",
            "ALTER TABLE ledger_checkpoints DISABLE TRIGGER USER",
            "ALTER TABLE ledger_hashes DISABLE TRIGGER USER",
        ],
    };
    for s in statements {
        sqlx::query(sqlx::AssertSqlSafe(*s)).execute(&t.db.pool).await.unwrap();
    }
}

async fn exec(t: &TestDb, sql: &'static str) {
    let mut c = t.db.pool.acquire().await.unwrap();
    let mut tx = c.begin().await.unwrap();
    sqlx::query(sql).execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
}

/// Applies `tamper`, expects `verify` to fail at an index in `at`, then applies `undo`.
async fn expect_caught(
    t: &TestDb,
    l: &Ledger,
    tamper: &'static str,
    undo: &'static str,
    at: std::ops::RangeInclusive<u64>,
) {
    exec(t, tamper).await;
    match l.verify(Log::Public, |_, _| {}).await {
        Err(VerifyError::Tampered(e)) => {
            let named = e.index..=e.through.unwrap_or(e.index);
            assert!(named == at, "{tamper}: reported {e}, expected {at:?}");
        }
        other => panic!("{tamper}: not caught: {other:?}"),
    }
    exec(t, undo).await;
    l.verify(Log::Public, |_, _| {}).await.unwrap_or_else(|e| panic!("after undoing {tamper}: {e}"));
}

async fn verify_names_the_first_tampered_index(t: TestDb) {
    let l = ledger(&t);
    fill(&t, 200).await;
    l.sign_checkpoint(Log::Public, Utc::now()).await.unwrap();
    fill(&t, 400).await;
    l.sign_checkpoint(Log::Public, Utc::now()).await.unwrap();
    let ok = l.verify(Log::Public, |_, _| {}).await.unwrap();
    assert_eq!((ok.entries, ok.checkpoints), (600, 2));
    let trusted = l.latest_checkpoint(Log::Public).await.unwrap().unwrap();
    // Checkpoints and stored hashes are guarded like the entries.
    assert!(sqlx::query("DELETE FROM ledger_checkpoints").execute(&t.db.pool).await.is_err());
    assert!(sqlx::query("UPDATE ledger_hashes SET idx = idx + 1").execute(&t.db.pool).await.is_err());
    disarm(&t).await;
    exec(&t, "CREATE TABLE saved AS SELECT * FROM ledger_entries WHERE log = 'public'").await;
    exec(&t, "CREATE TABLE saved_hashes AS SELECT * FROM ledger_hashes WHERE log = 'public'").await;
    let restore = "INSERT INTO ledger_entries SELECT * FROM saved WHERE idx NOT IN (SELECT idx FROM ledger_entries WHERE log = 'public')";
    // An edited entry.
    expect_caught(
        &t,
        &l,
        "UPDATE ledger_entries SET entry = (SELECT entry FROM saved WHERE idx = 124) WHERE log = 'public' AND idx = 123",
        "UPDATE ledger_entries SET entry = (SELECT entry FROM saved WHERE idx = 123) WHERE log = 'public' AND idx = 123",
        123..=123,
    )
    .await;
    // An edited entry with a matching leaf hash: only the checkpoint that signed it tells,
    // and verify names the entries that checkpoint added.
    expect_caught(
        &t,
        &l,
        "UPDATE ledger_entries SET entry = (SELECT entry FROM saved WHERE idx = 124), \
         leaf_hash = (SELECT leaf_hash FROM saved WHERE idx = 124), at = (SELECT at FROM saved WHERE idx = 124), \
         subject = (SELECT subject FROM saved WHERE idx = 124) WHERE log = 'public' AND idx = 123",
        "UPDATE ledger_entries SET entry = (SELECT entry FROM saved WHERE idx = 123), leaf_hash = (SELECT leaf_hash FROM saved WHERE idx = 123), \
         at = (SELECT at FROM saved WHERE idx = 123), subject = (SELECT subject FROM saved WHERE idx = 123) \
         WHERE log = 'public' AND idx = 123",
        0..=199,
    )
    .await;
    // A deleted entry.
    expect_caught(&t, &l, "DELETE FROM ledger_entries WHERE log = 'public' AND idx = 300", restore, 300..=300).await;
    // An inserted entry beyond the recorded size.
    expect_caught(
        &t,
        &l,
        "INSERT INTO ledger_entries SELECT log, 600, entry, leaf_hash, at, action, actor, subject FROM saved WHERE idx = 5",
        "DELETE FROM ledger_entries WHERE log = 'public' AND idx = 600",
        600..=600,
    )
    .await;
    // Two entries swapped, hashes and all: the order is part of the tree.
    expect_caught(
        &t,
        &l,
        "UPDATE ledger_entries SET \
         entry = (SELECT s.entry FROM saved s WHERE s.idx = 21 - ledger_entries.idx), \
         leaf_hash = (SELECT s.leaf_hash FROM saved s WHERE s.idx = 21 - ledger_entries.idx), \
         at = (SELECT s.at FROM saved s WHERE s.idx = 21 - ledger_entries.idx), \
         subject = (SELECT s.subject FROM saved s WHERE s.idx = 21 - ledger_entries.idx) \
         WHERE log = 'public' AND idx IN (10, 11)",
        "UPDATE ledger_entries SET \
         entry = (SELECT s.entry FROM saved s WHERE s.idx = ledger_entries.idx), \
         leaf_hash = (SELECT s.leaf_hash FROM saved s WHERE s.idx = ledger_entries.idx), \
         at = (SELECT s.at FROM saved s WHERE s.idx = ledger_entries.idx), \
         subject = (SELECT s.subject FROM saved s WHERE s.idx = ledger_entries.idx) \
         WHERE log = 'public' AND idx IN (10, 11)",
        0..=199,
    )
    .await;
    // A changed query column (what the citizen's page filters on).
    expect_caught(
        &t,
        &l,
        "UPDATE ledger_entries SET subject = 'someone-else' WHERE log = 'public' AND idx = 42",
        "UPDATE ledger_entries SET subject = (SELECT subject FROM saved WHERE idx = 42) WHERE log = 'public' AND idx = 42",
        42..=42,
    )
    .await;
    // A forged checkpoint: another root in the note breaks its signature.
    expect_caught(
        &t,
        &l,
        "UPDATE ledger_checkpoints SET note = REPLACE(note, '\n200\n', '\n201\n') WHERE log = 'public' AND size = 200",
        "UPDATE ledger_checkpoints SET note = REPLACE(note, '\n201\n', '\n200\n') WHERE log = 'public' AND size = 200",
        199..=199,
    )
    .await;
    // The newest entries cut off together with their checkpoint and the recorded size: the
    // shorter log is consistent in itself, and only a checkpoint known from outside (a
    // witness's) tells.
    exec(&t, "CREATE TABLE saved_checkpoints AS SELECT * FROM ledger_checkpoints WHERE log = 'public'").await;
    exec(&t, "DELETE FROM ledger_entries WHERE log = 'public' AND idx >= 550").await;
    exec(&t, "DELETE FROM ledger_checkpoints WHERE log = 'public' AND size = 600").await;
    exec(&t, "UPDATE ledger_logs SET size = 550 WHERE name = 'public'").await;
    l.verify(Log::Public, |_, _| {}).await.expect("a truncated log is consistent in itself");
    match l.verify_against(Log::Public, Some(trusted), |_, _| {}).await {
        Err(VerifyError::Tampered(e)) => assert_eq!(e.index, 550, "{e}"),
        other => panic!("truncation not caught: {other:?}"),
    }
    exec(&t, restore).await;
    exec(&t, "INSERT INTO ledger_checkpoints SELECT * FROM saved_checkpoints WHERE size = 600").await;
    exec(&t, "UPDATE ledger_logs SET size = 600 WHERE name = 'public'").await;
    l.verify_against(Log::Public, Some(trusted), |_, _| {}).await.unwrap();
    // A changed stored subtree hash.
    expect_caught(
        &t,
        &l,
        "UPDATE ledger_hashes SET hash = (SELECT leaf_hash FROM saved WHERE idx = 0) WHERE log = 'public' AND level = 1 AND idx = 1",
        "UPDATE ledger_hashes SET hash = (SELECT s.hash FROM saved_hashes s WHERE s.level = 1 AND s.idx = 1) \
         WHERE log = 'public' AND level = 1 AND idx = 1",
        511..=511,
    )
    .await;
}

/// A journal of entries for the public log, opened from a thread outside the runtime so that
/// nothing folds it in the background: only `settle` does.
fn journal(t: &TestDb) -> Result<Option<Journal>, JournalError> {
    let db = t.db.clone();
    std::thread::spawn(move || {
        let apply: Apply = std::sync::Arc::new(|c, records| {
            Box::pin(async move {
                let entries: Vec<Entry> = records.iter().map(|r| serde_json::from_slice(r).unwrap()).collect();
                ledger::append_many_in(c, Log::Public, &entries).await.map(drop).map_err(|e| e.to_string())
            })
        });
        Journal::open(&db, "test", apply)
    })
    .join()
    .unwrap()
}

/// What a journal acknowledged survives a crash (a write cut short at its end included) and
/// reaches the ledger exactly once, in order; folded segments are removed.
async fn journaled_entries_reach_the_ledger_once_after_a_crash(t: TestDb) {
    let Some(j) = journal(&t).unwrap() else {
        // PostgreSQL nodes keep nothing on local disk: writes go to the database directly.
        assert_eq!(t.backend, "postgres");
        return;
    };
    let dir = j.dir().to_path_buf();
    let objects = |n: u64| (0..n).rev().map(|i| Some(format!("object-{i}"))).collect::<Vec<_>>();
    for i in 0..3 {
        j.append(serde_json::to_vec(&entry(i)).unwrap()).await.unwrap();
    }
    let on_ledger: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ledger_entries WHERE log = 'public'")
        .fetch_one(&t.db.pool)
        .await
        .unwrap();
    assert_eq!(on_ledger, 0, "nothing folded yet: the journal was opened outside the runtime");
    assert!(matches!(journal(&t), Err(JournalError::Held(_))), "one process per journal");
    // The crash: nothing folded, and a last write cut short.
    drop(j);
    let segments = || {
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".log"))
            .collect();
        names.sort();
        names
    };
    let last = dir.join(segments().last().unwrap());
    let mut torn = std::fs::OpenOptions::new().append(true).open(&last).unwrap();
    std::io::Write::write_all(&mut torn, &[200, 0, 0, 0, 1, 2, 3]).unwrap();
    drop(torn);

    let j = journal(&t).unwrap().unwrap();
    assert_eq!(kept_objects(&t).await, objects(3), "settled before the read, the torn write skipped");
    j.append(serde_json::to_vec(&entry(3)).unwrap()).await.unwrap();
    assert_eq!(kept_objects(&t).await, objects(4));
    drop(j);
    let _j = journal(&t).unwrap().unwrap();
    assert_eq!(kept_objects(&t).await, objects(4), "folded once");
    assert_eq!(segments().len(), 1, "only the open segment is left: {:?}", segments());
    let l = ledger(&t);
    l.verify(Log::Public, |_, _| {}).await.unwrap();
}
