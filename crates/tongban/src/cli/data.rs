//! Backups, restores and the data keys of field encryption.

use super::*;

pub(super) async fn backup(data: DataArgs, out: std::path::PathBuf) -> anyhow::Result<()> {
    let data = data.resolve()?;
    let p = open_with_policy(&data, Default::default(), Default::default()).await?;
    let (key, _) = data.master_key()?;
    let documents = data.data_dir.join(backup::DOCUMENTS);
    let m = backup::backup(&p.db, data.database_url(), &key, &p.ledger, &documents, &out, Utc::now()).await?;
    println!(
        "backup written to {} (schema {}, {} file(s), {} material(s))",
        out.display(),
        m.schema_version,
        m.files.len(),
        m.documents.len()
    );
    for (log, (size, _)) in &m.checkpoints {
        println!("  {log}: checkpoint {size}");
    }
    p.db.close().await;
    Ok(())
}

pub(super) async fn restore(data: DataArgs, from: std::path::PathBuf, accept_fork: bool) -> anyhow::Result<()> {
    let data = data.resolve()?;
    create_private_dir(&data.data_dir)?;
    let (key, _) = data.master_key()?;
    let (ledger_key, _) = ledger::load_or_generate_key(&data.ledger_key_file, false, &data.ledger_origin)?;
    let sqlite_path = kernel::db::sqlite_file(data.database_url());
    let documents = data.data_dir.join(backup::DOCUMENTS);
    let target =
        backup::Target { database_url: data.database_url(), sqlite_path, master_key: &key, documents: &documents };
    let origin = data.ledger_origin.clone();
    let restored = backup::restore(
        &from,
        &target,
        |db| Ledger::new(db, &origin, &ledger_key, CheckpointPolicy::default()).map_err(|e| e.to_string()),
        accept_fork,
        Utc::now(),
    )
    .await?;
    println!("restored the backup of {} into {}", restored.manifest.created_at, data.database_url_redacted());
    for (log, entries) in &restored.verified {
        println!("  {log}: {entries} entries verified");
    }
    println!("  {} of {} material(s) copied back", restored.documents, restored.manifest.documents.len());
    println!("the replaced database is kept as {}", restored.kept_aside);
    // The restore itself goes on the trail of the restored database.
    let db = data.connect().await?;
    let mut entry = ledger::Entry::new(Action::BackupRestored, Outcome::Success, Utc::now());
    entry.actor = Some("console".into());
    entry.detail = Some(format!("backup of {} from {}", restored.manifest.created_at, from.display()));
    let mut c = db.pool.acquire().await?;
    ledger::append(&mut c, Log::Audit, &entry).await?;
    for fork in &restored.forks {
        println!("  FORK: {fork}; tell the witnesses, whose cosigned state no longer matches");
        let mut entry = ledger::Entry::new(Action::LedgerForkAccepted, Outcome::Success, Utc::now());
        entry.actor = Some("console".into());
        entry.object = Some(format!("ledger:{}", fork.log));
        entry.detail = Some(format!(
            "restored to checkpoint {}; checkpoints up to {} signed before the restore are abandoned",
            fork.restored_size, fork.signed_size
        ));
        ledger::append(&mut c, Log::Audit, &entry).await?;
    }
    drop(c);
    db.close().await;
    Ok(())
}

pub(super) async fn keys(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::List { data } => keys_list(data).await,
        KeysCommand::Rotate { data, batch } => keys_rotate(data, batch).await,
    }
}

async fn keys_list(data: DataArgs) -> anyhow::Result<()> {
    let data = data.resolve()?;
    let p = open_with_policy(&data, Default::default(), Default::default()).await?;
    let protector = p.identity.protector();
    let active = protector.active_key_id().await?;
    for k in protector.keys().await? {
        let state = match (&k.retired_at, k.id == active) {
            (Some(at), _) => format!("retired {}", at.format("%Y-%m-%d %H:%M")),
            (None, true) => "active".into(),
            (None, false) => "retiring".into(),
        };
        let used = p.identity.people().citizens_under_key(&k.id).await?;
        println!("{}  created {}  {state}  seals {used} records", k.id, k.created_at.format("%Y-%m-%d %H:%M"));
    }
    p.db.close().await;
    Ok(())
}

async fn keys_rotate(data: DataArgs, batch: i64) -> anyhow::Result<()> {
    let data = data.resolve()?;
    let p = open_with_policy(&data, Default::default(), Default::default()).await?;
    let protector = p.identity.protector();
    let new = protector.rotate(Utc::now()).await?;
    println!("new data key {new} is active; re-sealing existing values …");
    // Servers pick up the new key within seconds; values they seal meanwhile under
    // the old key are caught by the next batch.
    let mut done = 0usize;
    reseal_all(&p.identity, batch, &mut done).await?;
    // Other servers may have sealed a few values under the old key before they
    // noticed the new one (they look again every 10 s): one more pass after that.
    eprint!("\rwaiting for every server to use the new key …   ");
    tokio::time::sleep(std::time::Duration::from_secs(11)).await;
    reseal_all(&p.identity, batch, &mut done).await?;
    eprintln!();
    for k in protector.keys().await? {
        if k.retired_at.is_none() && k.id != new {
            let used = p.identity.people().citizens_under_key(&k.id).await?;
            protector.retire(&k.id, used, Utc::now()).await?;
            println!("retired data key {}", k.id);
        }
    }
    p.db.close().await;
    Ok(())
}

/// One pass of re-sealing everything identity seals, with progress on stderr.
async fn reseal_all(identity: &Identity, batch: i64, done: &mut usize) -> Result<(), identity::Error> {
    loop {
        let (n, remaining) = identity.people().reseal_citizens(batch).await?;
        *done += n;
        eprint!("\rre-sealed {done} records, {remaining} to go   ");
        if remaining == 0 {
            break;
        }
    }
    *done += identity.my_data().reseal_corrections().await?;
    Ok(())
}
