//! `tongban serve`: the HTTP server with its background work (timers, outbox, backups,
//! the security monitor and checkpoint signing).

use super::*;

pub(super) async fn serve(settings: ServeSettings) -> anyhow::Result<()> {
    if settings.demo && !settings.listen.ip().is_loopback() {
        anyhow::bail!(
            "the demo province has published passwords: it is only served on a loopback address. \
             Use --no-demo to serve {} (or listen on 127.0.0.1)",
            settings.listen
        );
    }
    let Platform { db, identity, ledger, key } =
        open_with_policy(&settings.data, settings.session, settings.checkpoints).await?;
    let console = identity.console(&key)?;
    let exchange = exchange::Exchange::new(db.clone(), identity.clone(), &key);
    let services = services_of(&settings, &db, &identity, key);
    let voice = ::voice::Voice::new(db.clone(), identity.clone(), services.clone())?;
    count_records_once(&db, &services, &voice).await?;
    let openness =
        ::openness::Openness::new(db.clone(), identity.clone(), exchange.clone(), services.calendar().clone());
    if settings.demo {
        seed_demo(&identity, &console, &services, &exchange, (&voice, &openness)).await?;
    }
    record_configuration(&db, &settings).await?;
    // Registry datasets refresh under the console's grant: the schedule acts for the
    // departments that defined them.
    let refresh = console.grant::<kernel::authz::RegistryManage>();
    let timers = tokio::spawn(run_timers(services.clone(), voice.clone(), (openness.clone(), refresh)));
    let metrics = tongban_http::metrics::Metrics::new();
    let checkpointer = tokio::spawn(sign_checkpoints(ledger.clone()));
    let monitor = tokio::spawn(monitor(
        db.clone(),
        ledger.clone(),
        settings.monitoring.clone(),
        settings.mail.clone(),
        identity.clone(),
        exchange.clone(),
    ));
    let backups = settings.backups.clone().map(|schedule| {
        let (db, ledger, url) = (db.clone(), ledger.clone(), settings.data.database_url().to_string());
        let key = settings.data.master_key();
        let documents = settings.data.data_dir.join(backup::DOCUMENTS);
        tokio::spawn(async move {
            match key {
                Ok((key, _)) => scheduled_backups(schedule, db, ledger, url, key, documents).await,
                Err(e) => tracing::error!(error = %e, "scheduled backups are off: no master key"),
            }
        })
    });
    let insight = insight::Insight::new(db.clone(), identity.clone(), services.clone(), exchange.clone());
    let state = tongban_http::AppState::from(tongban_http::AppParts {
        exchange,
        services,
        voice,
        openness,
        insight,
        identity,
        ledger: ledger.clone(),
        db: db.clone(),
        metrics,
        secure_cookies: settings.secure_cookies,
        trusted_proxies: std::sync::Arc::new(settings.trusted_proxies.clone()),
        security_servers: std::sync::Arc::new(settings.security_servers.clone()),
    });
    listen(state, &settings).await?;
    checkpointer.abort();
    monitor.abort();
    timers.abort();
    if let Some(task) = backups {
        task.abort();
    }
    settle_and_sign(&db, &ledger).await;
    db.close().await;
    println!("stopped cleanly");
    Ok(())
}

/// The first start of a database whose records predate the tallies (an upgrade) counts them
/// once, so the KPIs include them; later starts find tallies and skip this.
async fn count_records_once(db: &Db, services: &services::Services, voice: &::voice::Voice) -> anyhow::Result<()> {
    let mut c = db.pool.acquire().await?;
    let empty = kernel::tally::is_empty(&mut c).await?;
    drop(c);
    if !empty {
        return Ok(());
    }
    let (applications, requests) = (services.recount().await?, voice.recount().await?);
    if applications.is_empty() && requests.is_empty() {
        return Ok(());
    }
    services.store_recount(&applications).await?;
    voice.store_recount(&requests).await?;
    tracing::info!(applications = applications.len(), requests = requests.len(), "tallies counted from the records");
    Ok(())
}

/// Seeds the demo province on first start, and its catalog, desks, registries and
/// applications (each only once).
async fn seed_demo(
    identity: &Identity,
    console: &Console,
    services: &services::Services,
    exchange: &exchange::Exchange,
    (voice, openness): (&::voice::Voice, &::openness::Openness),
) -> anyhow::Result<()> {
    if identity.organisation().region_count().await? == 0 {
        println!("seeding the demo province 云岭省 (first start) …");
        let summary = crate::demo::seed(identity, console, Utc::now()).await?;
        println!(
            "demo: {} regions, {} departments, {} staff, {} residents, {} enterprises",
            summary.regions,
            summary.departments,
            summary.staff.len(),
            summary.citizens,
            summary.enterprises
        );
        println!("demo sign-ins (password {} for all):", crate::demo::DEMO_PASSWORD);
        println!("  citizen.demo      resident of 明月区 (no second factor)");
        println!("  enterprise.demo   enterprise account");
        for (username, role, region) in &summary.staff {
            println!("  {username:<22} {role:<17} {region}");
        }
        println!(
            "staff sign in with a TOTP code; add this secret to any authenticator app: {}",
            crate::demo::DEMO_TOTP_SECRET
        );
    }
    let catalog = crate::demo::seed_catalog(identity, console, services, Utc::now()).await?;
    if !catalog.staff.is_empty() {
        println!("demo catalog: {} services, {} bundles; service desks:", catalog.services, catalog.bundles);
        for (username, role, region) in &catalog.staff {
            println!("  {username:<22} {role:<17} {region}");
        }
    }
    let registries = crate::demo::seed_registries(identity, console, exchange, Utc::now()).await?;
    if registries > 0 {
        println!("demo registries: {registries} published (人口, 婚姻, 法人, 社保) with the demo resident's records");
    }
    let seeded = crate::demo::seed_applications(identity, services, Utc::now()).await?;
    if seeded > 0 {
        println!("demo applications: {seeded}, in every phase, worked by the desks of 明月区 and 青湖区");
    }
    if voice.intake().count().await? == 0 {
        let routes = crate::demo::seed_routes(voice, console, Utc::now()).await?;
        let requests = crate::demo::seed_requests(identity, voice, Utc::now()).await?;
        println!("demo 12345: {routes} routes, {requests} requests in every state");
    }
    let (documents, requests) = crate::demo::seed_disclosure(identity, openness, Utc::now()).await?;
    if documents > 0 {
        println!("demo 政务公开: {documents} documents published, {requests} requests for information");
    }
    let datasets = crate::demo::seed_open_data(identity, exchange, openness, Utc::now()).await?;
    if datasets > 0 {
        println!("demo 数据开放: {datasets} datasets opened, two of them de-identified from registries");
    }
    Ok(())
}

/// Serves the platform on the configured address, over TLS when a certificate is set,
/// until a shutdown signal.
async fn listen(state: tongban_http::AppState, settings: &ServeSettings) -> anyhow::Result<()> {
    let router = tongban_http::app(state, settings.body_limit);
    match &settings.tls {
        None => {
            let listener = tokio::net::TcpListener::bind(settings.listen)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.listen))?;
            println!("tongban is serving on http://{}", listener.local_addr()?);
            tongban_http::serve(router, listener).await?;
        }
        Some((cert, key)) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .map_err(|e| anyhow::anyhow!("cannot load TLS certificate or key: {e}"))?;
            let handle = axum_server::Handle::new();
            let shutdown = handle.clone();
            tokio::spawn(async move {
                tongban_http::shutdown_signal().await;
                shutdown.graceful_shutdown(Some(std::time::Duration::from_secs(30)));
            });
            println!("tongban is serving on https://{}", settings.listen);
            axum_server::bind_rustls(settings.listen, config)
                .handle(handle)
                .serve(router.into_make_service_with_connect_info::<std::net::SocketAddr>())
                .await?;
        }
    }
    Ok(())
}

/// The last entries are folded from the journals and get their checkpoint before the
/// database closes.
async fn settle_and_sign(db: &Db, ledger: &Ledger) {
    if let Err(e) = db.settle().await {
        eprintln!("journaled entries stay on disk until the next start: {e}");
    }
    for log in Log::ALL {
        if let Err(e) = ledger.checkpoint_if_behind(log, Utc::now()).await {
            eprintln!("could not sign the final {} checkpoint: {e}", log.as_str());
        }
    }
}

/// Appends `configuration_changed` to the audit ledger when the effective settings differ
/// from those of the previous start (the first start records them too).
async fn record_configuration(db: &Db, settings: &ServeSettings) -> anyhow::Result<()> {
    let summary = settings.summary();
    let digest = kernel::secrets::sha256_hex(&summary);
    let mut tx = db.begin().await?;
    if kernel::db::read_setting(&mut tx, "config_digest").await?.as_deref() != Some(digest.as_str()) {
        let mut entry = ledger::Entry::new(Action::ConfigurationChanged, Outcome::Success, Utc::now());
        entry.actor = Some("console".into());
        entry.detail = Some(summary);
        ledger::append_in(&mut tx, Log::Audit, &entry).await?;
        kernel::db::write_setting(&mut tx, "config_digest", &digest).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Takes a backup every `interval` into `dir/tongban-YYYYMMDD-HHMMSS`, keeping the newest.
async fn scheduled_backups(
    schedule: crate::config::BackupSchedule,
    db: Db,
    ledger: Ledger,
    url: String,
    key: kernel::secrets::MasterKey,
    documents: std::path::PathBuf,
) {
    let mut tick = tokio::time::interval(schedule.interval);
    loop {
        tick.tick().await;
        let now = Utc::now();
        let out = schedule.dir.join(format!("tongban-{}", now.format("%Y%m%d-%H%M%S")));
        match backup::backup(&db, &url, &key, &ledger, &documents, &out, now).await {
            Ok(_) => tracing::info!(dir = %out.display(), "scheduled backup written"),
            Err(e) => tracing::error!(error = %e, "scheduled backup failed"),
        }
        if let Err(e) = backup::prune(&schedule.dir, schedule.keep) {
            tracing::warn!(error = %e, "old backups not pruned");
        }
    }
}

/// Security monitoring: scans the audit trail every ten seconds, delivers the outbox, and
/// re-verifies every ledger at start and daily (a failed verification is an alert).
async fn monitor(
    db: Db,
    ledger: Ledger,
    thresholds: insight::security::Thresholds,
    mail: Option<kernel::outbox::Mail>,
    identity: Identity,
    exchange: exchange::Exchange,
) {
    use insight::security;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(10));
    let mut last_verify: Option<std::time::Instant> = None;
    loop {
        tick.tick().await;
        if let Err(e) = security::scan(&db, &identity, &thresholds, Utc::now()).await {
            tracing::warn!(error = %e, "security scan failed");
        }
        if let Err(e) = crate::delivery::deliver(&db, mail.as_ref(), &identity, &exchange, Utc::now()).await {
            tracing::warn!(error = %e, "outbox delivery failed");
        }
        if last_verify.is_none_or(|t| t.elapsed() > std::time::Duration::from_secs(24 * 3600)) {
            last_verify = Some(std::time::Instant::now());
            for log in Log::ALL {
                if let Err(ledger::VerifyError::Tampered(t)) = ledger.verify(log, |_, _| {}).await {
                    let c = security::Candidate {
                        rule: insight::security::AlertRule::LedgerVerification,
                        account: None,
                        key: format!("{}@{}", log.as_str(), Utc::now().timestamp() / 86_400),
                        severity: insight::security::Severity::Critical,
                        summary: t.to_string(),
                        first_index: t.index,
                    };
                    if let Err(e) = security::raise(&db, &c, None, Utc::now()).await {
                        tracing::error!(error = %e, "could not raise the ledger alert");
                    }
                }
            }
        }
    }
}

/// Signs checkpoints as the policy asks, every second, for as long as the server runs.
async fn sign_checkpoints(ledger: Ledger) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tick.tick().await;
        for log in Log::ALL {
            if let Err(e) = ledger.checkpoint_if_due(log, Utc::now()).await {
                tracing::warn!(log = log.as_str(), error = %e, "checkpoint not signed");
            }
        }
    }
}

/// Deadline warnings and escalation of overdue tasks, once a minute.
async fn run_timers(
    services: services::Services,
    voice: ::voice::Voice,
    (openness, refresh): (::openness::Openness, identity::Capability<kernel::authz::RegistryManage>),
) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        match services.casework().run_timers(Utc::now()).await {
            Ok(r) if r.escalated > 0 => tracing::info!(warned = r.warned, escalated = r.escalated, "task timers"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "task timers failed"),
        }
        match services.appointments().record_no_shows(Utc::now()).await {
            Ok(r) if r.recorded > 0 => tracing::info!(recorded = r.recorded, "appointment no-shows"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "no-show pass failed"),
        }
        match voice.supervise(Utc::now()).await {
            Ok(r) if r.due_soon + r.overdue + r.closed_unrated > 0 => tracing::info!(
                due_soon = r.due_soon,
                overdue = r.overdue,
                closed_unrated = r.closed_unrated,
                "12345 supervision"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "12345 supervision failed"),
        }
        match openness.supervise(Utc::now()).await {
            Ok(r) if r.near + r.overdue > 0 => {
                tracing::info!(near = r.near, overdue = r.overdue, "requests for information escalated")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "disclosure supervision failed"),
        }
        match openness.data_publishing().refresh_due(&refresh, Utc::now()).await {
            Ok(n) if n > 0 => tracing::info!(refreshed = n, "open datasets refreshed from their registries"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "open dataset refresh failed"),
        }
    }
}

pub(super) fn services_of(
    settings: &ServeSettings,
    db: &Db,
    identity: &Identity,
    key: kernel::secrets::MasterKey,
) -> services::Services {
    services::Services::new(
        db.clone(),
        identity.clone(),
        key,
        settings.calendar.clone(),
        services::UploadPolicy {
            dir: settings.data.data_dir.join(backup::DOCUMENTS),
            max_bytes: settings.body_limit,
            scan_command: settings.upload_scan_command.clone(),
        },
    )
}
