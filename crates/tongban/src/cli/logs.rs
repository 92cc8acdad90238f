//! `ledger verify` and `ledger cosign`: checking the tamper-evident logs, as the platform
//! or as an outside witness.

use super::*;

pub(super) async fn run(command: LedgerCommand) -> anyhow::Result<()> {
    match command {
        LedgerCommand::Verify { data, log, trusted, verifier_keys } => verify(data, log, trusted, verifier_keys).await,
        LedgerCommand::Cosign { data, key, name, log, verifier_keys } => {
            cosign(data, key, name, log, verifier_keys).await
        }
    }
}

async fn verify(
    data: DataArgs,
    log: Option<String>,
    trusted: Option<std::path::PathBuf>,
    verifier_keys: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    let data = data.resolve()?;
    let p = open_ledger(&data, verifier_keys.as_deref()).await?;
    let trusted = match &trusted {
        Some(path) => read_witness_state(path)?,
        None => Default::default(),
    };
    let mut failed = None;
    for log in logs(log.as_deref())? {
        let result = p
            .ledger
            .verify_against(log, trusted.get(log.as_str()).copied(), |done, total| {
                if total >= 100_000 {
                    eprint!("\r{}: {done}/{total} entries", log.as_str());
                }
            })
            .await;
        match result {
            Ok(v) => {
                println!("{}: {} entries and {} checkpoints verified", log.as_str(), v.entries, v.checkpoints)
            }
            Err(ledger::VerifyError::Tampered(t)) => {
                println!("{}: TAMPERED: {t}", log.as_str());
                let c = insight::security::Candidate {
                    rule: insight::security::AlertRule::LedgerVerification,
                    account: None,
                    key: format!("{}@{}", log.as_str(), Utc::now().timestamp() / 86_400),
                    severity: insight::security::Severity::Critical,
                    summary: t.to_string(),
                    first_index: t.index,
                };
                if let Err(e) = insight::security::raise(&p.db, &c, None, Utc::now()).await {
                    eprintln!("could not raise an alert: {e}");
                }
                failed = Some(t);
            }
            Err(ledger::VerifyError::Failed(e)) => return Err(e.into()),
        }
    }
    p.db.close().await;
    match failed {
        Some(t) => Err(Verification(t).into()),
        None => Ok(()),
    }
}

async fn cosign(
    data: DataArgs,
    key: std::path::PathBuf,
    name: Option<String>,
    log: Option<String>,
    verifier_keys: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    let data = data.resolve()?;
    let p = open_ledger(&data, verifier_keys.as_deref()).await?;
    let generate = name.is_some();
    let (witness, source) = ledger::load_or_generate_key(&key, generate, name.as_deref().unwrap_or("witness"))?;
    if source == KeySource::Generated {
        println!("generated witness key {}: its verifier key is {}", key.display(), witness.cosigner_verifier_key());
    }
    let state_path = key.with_extension("state");
    // A missing state file is a first cosignature; an unreadable one is an error, never
    // a reason to skip the consistency check.
    let mut state = if state_path.exists() { read_witness_state(&state_path)? } else { Default::default() };
    for log in logs(log.as_deref())? {
        let last = state.get(log.as_str()).copied();
        let (size, root) = p.ledger.cosign(log, &witness, last, Utc::now()).await?;
        state.insert(log.as_str().into(), (size, root));
        println!("{}: cosigned checkpoint {size}", log.as_str());
    }
    use base64::Engine;
    let text: std::collections::BTreeMap<&String, (u64, String)> = state
        .iter()
        .map(|(log, (size, root))| (log, (*size, base64::engine::general_purpose::STANDARD.encode(root))))
        .collect();
    std::fs::write(&state_path, serde_json::to_string_pretty(&text)?)?;
    p.db.close().await;
    Ok(())
}

/// The database and a ledger handle, for `ledger verify` and `ledger cosign`. With published
/// verifier keys this needs no secret at all (an auditor's or a witness's position);
/// without, the checkpoint key file supplies them.
async fn open_ledger(data: &DataSettings, verifier_keys: Option<&std::path::Path>) -> anyhow::Result<LedgerOnly> {
    let db = data.connect().await?;
    let ledger = match verifier_keys {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let keys: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
            Ledger::verify_only(db.clone(), &keys)?
        }
        None => {
            let (key, _) = ledger::load_or_generate_key(&data.ledger_key_file, false, &data.ledger_origin)?;
            Ledger::new(db.clone(), &data.ledger_origin, &key, CheckpointPolicy::default())?
        }
    };
    Ok(LedgerOnly { db, ledger })
}

struct LedgerOnly {
    db: Db,
    ledger: Ledger,
}

/// A witness's state file: per log, the size and base64 root it cosigned last.
fn read_witness_state(path: &std::path::Path) -> anyhow::Result<std::collections::BTreeMap<String, (u64, [u8; 32])>> {
    use base64::Engine;
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let raw: std::collections::BTreeMap<String, (u64, String)> =
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    raw.into_iter()
        .map(|(log, (size, root))| {
            let root = base64::engine::general_purpose::STANDARD
                .decode(&root)
                .ok()
                .and_then(|r| <[u8; 32]>::try_from(r).ok())
                .ok_or_else(|| anyhow::anyhow!("{} is damaged", path.display()))?;
            Ok((log, (size, root)))
        })
        .collect()
}

/// A failed ledger verification: exit status 1, unlike other errors (2).
#[derive(Debug, thiserror::Error)]
#[error("ledger verification failed: {0}")]
pub(super) struct Verification(ledger::Tampered);

pub(super) fn logs(only: Option<&str>) -> anyhow::Result<Vec<Log>> {
    match only {
        None => Ok(Log::ALL.to_vec()),
        Some(name) => Ok(vec![
            Log::parse(name).ok_or_else(|| anyhow::anyhow!("no log named {name}: audit, certificates or public"))?,
        ]),
    }
}
