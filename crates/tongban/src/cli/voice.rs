//! `voice train`, `voice eval` and `voice corrections`: the 12345 classifier's model, how well
//! it does on the held-out set, and the dispatchers' corrections for the next training run.

use std::fmt::Write as _;

use super::*;
use ::voice::classifier::{self, Model};

pub(super) async fn run(command: VoiceCommand) -> anyhow::Result<()> {
    match command {
        VoiceCommand::Train { file, corrections, out } => train(file.as_deref(), corrections.as_deref(), &out),
        VoiceCommand::Eval { model, file } => eval(model.as_deref(), file.as_deref()),
        VoiceCommand::Classify { text } => classify(&text),
        VoiceCommand::Corrections { data } => corrections(data).await,
    }
}

/// The voice module over a data dir, for commands that run beside the server: photos are
/// read from the same upload store.
fn voice_of(
    data: &DataSettings,
    db: Db,
    identity: Identity,
    key: kernel::secrets::MasterKey,
) -> anyhow::Result<::voice::Voice> {
    let uploads = services::UploadPolicy {
        dir: data.data_dir.join(backup::DOCUMENTS),
        max_bytes: 1024 * 1024,
        scan_command: None,
    };
    let services = services::Services::new(db.clone(), identity.clone(), key, Default::default(), uploads);
    Ok(::voice::Voice::new(db, identity, services)?)
}

fn read(path: Option<&std::path::Path>, built_in: &'static str) -> anyhow::Result<String> {
    match path {
        Some(p) => std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("reading {}: {e}", p.display())),
        None => Ok(built_in.to_string()),
    }
}

fn train(
    file: Option<&std::path::Path>,
    corrections: Option<&std::path::Path>,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    let mut text = read(file, ::voice::TRAINING_SET)?;
    if let Some(extra) = corrections {
        text.push('\n');
        text.push_str(&read(Some(extra), "")?);
    }
    let examples = classifier::read_labelled(&text).map_err(|e| anyhow::anyhow!(e))?;
    let categories = ::voice::Categories::shipped()?;
    if let Some(unknown) = examples.iter().find(|e| categories.get(e.class).is_none()) {
        anyhow::bail!("category {} is not in the category table", unknown.class);
    }
    let model = Model::train(&examples);
    let json = serde_json::to_string(&model)?;
    std::fs::write(out, format!("{json}\n")).map_err(|e| anyhow::anyhow!("writing {}: {e}", out.display()))?;
    println!(
        "trained on {} examples in {} categories: {} features, {} KiB → {}",
        examples.len(),
        model.classes.len(),
        model.counts.len(),
        json.len() / 1024,
        out.display()
    );
    Ok(())
}

/// The evaluation as printed: top-1 accuracy for the category and for the department, per
/// category recall, and how the confidence threshold splits the set.
pub fn evaluation_report(model: &Model, held_out: &str) -> anyhow::Result<String> {
    let examples = classifier::read_labelled(held_out).map_err(|e| anyhow::anyhow!(e))?;
    let categories = ::voice::Categories::shipped()?;
    let by_category = classifier::evaluate(model, &examples, |a, b| a == b);
    let by_department = classifier::evaluate(model, &examples, |a, b| categories.same_department(a, b));
    let mut out = String::new();
    writeln!(out, "held-out examples: {}", by_category.examples)?;
    writeln!(out, "top-1 category:   {:.1} %", by_category.accuracy() * 100.0)?;
    writeln!(out, "top-1 department: {:.1} %", by_department.accuracy() * 100.0)?;
    let tops: Vec<(bool, f64)> = examples
        .iter()
        .filter_map(|e| {
            let top = model.classify(e.text).into_iter().next()?;
            Some((categories.same_department(e.class, &top.class), top.confidence))
        })
        .collect();
    writeln!(out, "sent straight to a department, by confidence threshold (the rest go to a dispatcher):")?;
    let mut thresholds = vec![0.5, 0.8, 0.9, 0.95, 0.99];
    if !thresholds.contains(&::voice::CONFIDENT) {
        thresholds.push(::voice::CONFIDENT);
    }
    for threshold in thresholds {
        let sent: Vec<bool> = tops.iter().filter(|(_, c)| *c >= threshold).map(|(right, _)| *right).collect();
        let right = sent.iter().filter(|r| **r).count();
        let mark = if threshold == ::voice::CONFIDENT { "  ← the platform's" } else { "" };
        writeln!(
            out,
            "  ≥ {threshold:.2}: {} of {} ({:.0} %), {:.1} % of them to the right department{mark}",
            sent.len(),
            tops.len(),
            sent.len() as f64 * 100.0 / tops.len().max(1) as f64,
            right as f64 * 100.0 / sent.len().max(1) as f64
        )?;
    }
    writeln!(out, "recall per category:")?;
    for (code, (right, total)) in &by_category.per_class {
        let name = categories.get(code).map_or("?", |c| c.name_zh.as_str());
        writeln!(out, "  {code} {name}: {right}/{total} ({:.0} %)", *right as f64 * 100.0 / (*total).max(1) as f64)?;
    }
    Ok(out)
}

fn eval(model: Option<&std::path::Path>, file: Option<&std::path::Path>) -> anyhow::Result<()> {
    let model: Model = serde_json::from_str(&read(model, ::voice::SHIPPED_MODEL)?)?;
    print!("{}", evaluation_report(&model, &read(file, ::voice::HELD_OUT_SET)?)?);
    Ok(())
}

fn classify(text: &str) -> anyhow::Result<()> {
    let model: Model = serde_json::from_str(::voice::SHIPPED_MODEL)?;
    let categories = ::voice::Categories::shipped()?;
    for s in model.classify(text).into_iter().take(3) {
        let name = categories.get(&s.class).map_or("?", |c| c.name_zh.as_str());
        println!("{} {name}: {:.2}  {}", s.class, s.confidence, s.reasons.join(" "));
    }
    Ok(())
}

async fn corrections(data: DataArgs) -> anyhow::Result<()> {
    let data = data.resolve()?;
    let Platform { db, identity, key, .. } = open_with_policy(&data, Default::default(), Default::default()).await?;
    let console = identity.console(&key)?;
    let voice = voice_of(&data, db, identity, key)?;
    print!("{}", voice.dispatching().corrections(&console.grant()).await?);
    Ok(())
}

/// `insight recount`: the tallies of applications, of 12345 and of open-data uses recounted
/// from the records, compared with the stored ones (and, with `repair`, put in their place).
pub(super) async fn recount(settings: &ServeSettings, repair: bool) -> anyhow::Result<()> {
    let Platform { db, identity, key, .. } =
        open_with_policy(&settings.data, settings.session, settings.checkpoints).await?;
    let services = super::serve::services_of(settings, &db, &identity, key.clone());
    let voice = ::voice::Voice::new(db.clone(), identity.clone(), services.clone())?;
    let exchange = exchange::Exchange::new(db.clone(), identity.clone(), &key);
    let openness = ::openness::Openness::new(db.clone(), identity, exchange, services.calendar().clone());
    let mut differing = 0;
    for module in <kernel::tally::Module as strum::VariantArray>::VARIANTS.iter().copied() {
        let recount = match module {
            kernel::tally::Module::Services => services.recount().await?,
            kernel::tally::Module::Voice => voice.recount().await?,
            kernel::tally::Module::Openness => openness.catalogue().recount().await?,
        };
        let mut c = db.pool.acquire().await?;
        let stored = kernel::tally::stored(&mut c, module).await?;
        drop(c);
        let name: &str = module.into();
        let stored_set: std::collections::BTreeSet<_> = stored.iter().collect();
        let recount_set: std::collections::BTreeSet<_> = recount.iter().collect();
        let missing = recount_set.difference(&stored_set).count();
        let extra = stored_set.difference(&recount_set).count();
        println!(
            "{name}: {} counters recounted, {} stored; {missing} missing or different, {extra} not in the recount",
            recount.len(),
            stored.len()
        );
        differing += missing + extra;
        if repair && (missing + extra) > 0 {
            match module {
                kernel::tally::Module::Services => services.store_recount(&recount).await?,
                kernel::tally::Module::Voice => voice.store_recount(&recount).await?,
                kernel::tally::Module::Openness => openness.catalogue().store_recount(&recount).await?,
            }
            println!("{name}: the stored tallies are replaced by the recount");
        }
    }
    db.close().await;
    if differing > 0 && !repair {
        anyhow::bail!("the stored tallies differ from the records; run again with --repair");
    }
    println!("the tallies agree with the records");
    Ok(())
}

pub(super) async fn open311_client(command: Open311ClientCommand) -> anyhow::Result<()> {
    let data = match &command {
        Open311ClientCommand::Add { data, .. }
        | Open311ClientCommand::Revoke { data, .. }
        | Open311ClientCommand::List { data } => data.clone(),
    };
    let data = data.resolve()?;
    let Platform { db, identity, key, .. } = open_with_policy(&data, Default::default(), Default::default()).await?;
    let console = identity.console(&key)?;
    let voice = voice_of(&data, db, identity.clone(), key)?;
    let open311 = voice.open311();
    match command {
        Open311ClientCommand::Add { name, region, .. } => {
            let region = match region {
                Some(r) => r,
                None => {
                    let regions = identity.organisation().regions(&console.grant()).await?;
                    regions
                        .into_iter()
                        .next()
                        .map(|r| r.code)
                        .ok_or_else(|| anyhow::anyhow!("no region yet: add one first"))?
                }
            };
            let (client, api_key) = open311.register_client(&name, &region, Utc::now()).await?;
            println!("registered Open311 client {} (requests routed in region {})", client.name, client.region_code);
            println!("api_key (shown once; send it as api_key with each POST):");
            println!("{api_key}");
        }
        Open311ClientCommand::Revoke { name, .. } => {
            open311.revoke_client(&name, Utc::now()).await?;
            println!("revoked: {name}");
        }
        Open311ClientCommand::List { .. } => {
            for c in open311.clients().await? {
                let state = if c.revoked { "revoked" } else { "active" };
                println!("{:<30} {:<8} {:<10} {}", c.name, state, c.region_code, c.created_at.format("%Y-%m-%d"));
            }
        }
    }
    Ok(())
}
