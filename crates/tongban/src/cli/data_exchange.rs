//! The data exchange from the command line: registry imports, calling systems, and the
//! GovStack fixture sets.

use super::*;

/// The GovStack Registration building block's test-data.json (Apache License 2.0).
const GOVSTACK_REGISTRATION_FIXTURES: &str = include_str!("../../fixtures/govstack-registration.json");
/// The GovStack Digital Registries building block's test-data.json (Apache License 2.0).
const GOVSTACK_REGISTRIES_FIXTURES: &str = include_str!("../../fixtures/govstack-registries.json");

pub(super) async fn exchange_command(command: ExchangeCommand) -> anyhow::Result<()> {
    match command {
        ExchangeCommand::Import { registry, skip_bad_rows, file, data } => {
            let data = data.resolve()?;
            let Platform { db, identity, key, .. } =
                open_with_policy(&data, Default::default(), Default::default()).await?;
            let console = identity.console(&key)?;
            let exchange = exchange::Exchange::new(db.clone(), identity, &key);
            let bytes = std::fs::read(&file).map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
            let table = exchange::Table::read(bytes)?;
            let mode =
                if skip_bad_rows { exchange::ImportMode::SkipBadRows } else { exchange::ImportMode::AllOrNothing };
            let cap = console.grant::<kernel::authz::RegistryManage>();
            let name = file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            let started = std::time::Instant::now();
            let bar = |done: u64, total: u64| {
                let pct = (done * 100).checked_div(total).unwrap_or(0).min(100);
                let filled = usize::try_from(pct / 5).unwrap_or(0);
                eprint!("\r[{}{}] {pct:>3}%  {done}/{total} rows", "#".repeat(filled), ".".repeat(20 - filled.min(20)));
            };
            let report = exchange.imports().import(&cap, &registry, &name, table, mode, Utc::now(), &bar).await?;
            eprintln!();
            let secs = started.elapsed().as_secs_f64().max(0.001);
            println!(
                "{}: {} rows read, {} imported, {} rejected in {secs:.1} s ({:.0} rows/s)",
                report.status.as_str(),
                report.total_rows,
                report.imported,
                report.rejected,
                report.total_rows as f64 / secs
            );
            for e in &report.errors {
                println!("  row {}, column {}: {}", e.row, if e.column.is_empty() { "-" } else { &e.column }, e.reason);
            }
            db.close().await;
            if report.status != exchange::ImportStatus::Done {
                anyhow::bail!("nothing was imported: fix the rows above, or pass --skip-bad-rows");
            }
            Ok(())
        }
        ExchangeCommand::Client { department, mediator_client, data } => {
            let data = data.resolve()?;
            let Platform { db, identity, key, .. } =
                open_with_policy(&data, Default::default(), Default::default()).await?;
            let console = identity.console(&key)?;
            let exchange = exchange::Exchange::new(db.clone(), identity, &key);
            let cap = console.grant::<kernel::authz::AccountCreate>();
            let c = exchange.sharing().register_client(&cap, &department, &mediator_client, Utc::now()).await?;
            println!("{} registered; its secret (shown once): {}", c.mediator_client, c.secret.expose());
            db.close().await;
            Ok(())
        }
    }
}

pub(super) async fn load_fixtures(
    set: &str,
    file: Option<&std::path::Path>,
    department: &str,
    systems: &[String],
    settings: &ServeSettings,
) -> anyhow::Result<()> {
    let built_in = match set {
        "govstack-registration" => GOVSTACK_REGISTRATION_FIXTURES,
        "govstack-registries" => GOVSTACK_REGISTRIES_FIXTURES,
        _ => anyhow::bail!("unknown fixture set {set:?}: govstack-registration or govstack-registries"),
    };
    let text = match file {
        Some(f) => std::fs::read_to_string(f).map_err(|e| anyhow::anyhow!("reading {}: {e}", f.display()))?,
        None => built_in.to_string(),
    };
    let fixtures: serde_json::Value = serde_json::from_str(&text)?;
    let Platform { db, identity, key, .. } =
        open_with_policy(&settings.data, settings.session, settings.checkpoints).await?;
    let console = identity.console(&key)?;
    if set == "govstack-registries" {
        let exchange = exchange::Exchange::new(db.clone(), identity, &key);
        let cap = console.grant::<kernel::authz::RegistryManage>();
        let loaded = exchange.registry_data().load_registry_fixture(&cap, department, &fixtures, Utc::now()).await;
        let served = match &loaded {
            Ok(l) if !systems.is_empty() => {
                let mut served = Vec::new();
                for registry in &l.registries {
                    served.push((
                        registry.clone(),
                        exchange.systems().set_serving(&cap, registry, systems, Utc::now()).await,
                    ));
                }
                served
            }
            _ => Vec::new(),
        };
        db.close().await;
        let loaded = loaded?;
        println!(
            "govstack-registries: {} records and {} database descriptions loaded",
            loaded.records, loaded.databases
        );
        for (registry, list) in served {
            println!("registry {registry} serves: {}", list?.join(", "));
        }
        return Ok(());
    }
    let services = services_of(settings, &db, &identity, key);
    let manage = console.grant::<kernel::authz::ServiceManage>();
    // Fixture services run the built-in workflows, which a clean install may not have yet.
    for w in crate::demo::builtin_workflows() {
        let def = services::workflow::Definition::from_json(&w.to_string())?;
        services.publish_workflow(&manage, def, Utc::now()).await?;
    }
    let counts = services.registration().load_registration_fixtures(&manage, &fixtures, Utc::now()).await?;
    println!(
        "govstack-registration: {} services published; {} application files and {} tasks added",
        counts.services, counts.applications, counts.tasks
    );
    db.close().await;
    Ok(())
}
