//! Accounts, regions, departments and configuration from the command line, and opening the
//! data directory every data command works on.

use super::*;

pub(super) async fn migrate(args: DataArgs) -> anyhow::Result<()> {
    let data = args.resolve()?;
    let (db, _, _) = open(&data).await?;
    println!("migrations applied to {}", data.database_url_redacted());
    db.close().await;
    Ok(())
}

pub(super) async fn user(command: UserCommand) -> anyhow::Result<()> {
    let UserCommand::Add { data, kind, username, name, department, region, roles, password_stdin } = command;
    let data = data.resolve()?;
    let (db, identity, console) = open(&data).await?;
    let kind = match kind.as_str() {
        "staff" => AccountKind::Staff,
        "system" => AccountKind::System,
        other => anyhow::bail!("--kind must be staff or system, not {other}"),
    };
    let password = if password_stdin {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        Some(SecretString::new(text.trim_end_matches(['\r', '\n']).to_string()))
    } else {
        None
    };
    let now = Utc::now();
    let mut tx = db.begin().await?;
    let new = NewAccount {
        kind: Some(kind),
        username,
        display_name: name,
        must_change_password: kind == AccountKind::Staff,
        password,
        department_code: department,
        region_code: region,
        ..NewAccount::default()
    };
    let created = identity
        .accounts()
        .create_account_in(&mut tx, &console.grant::<kernel::authz::AccountCreate>(), new, now)
        .await?;
    for role in &roles {
        identity
            .accounts()
            .grant_role_in(&mut tx, &console.grant::<kernel::authz::RoleGrant>(), &created.id, role, now)
            .await?;
    }
    tx.commit().await?;
    println!("created {} ({})", created.username, created.id);
    if !roles.is_empty() {
        println!("roles: {}", roles.join(", "));
    }
    if let Some(p) = created.temporary_password {
        println!("temporary password: {}", p.expose());
        if kind == AccountKind::Staff {
            println!("it must be changed at first sign-in, where an authenticator app is also enrolled");
        }
    }
    db.close().await;
    Ok(())
}

pub(super) async fn region(command: RegionCommand) -> anyhow::Result<()> {
    let RegionCommand::Add { data, code, name, parent } = command;
    let data = data.resolve()?;
    let (db, identity, console) = open(&data).await?;
    let mut tx = db.begin().await?;
    let r = identity
        .organisation()
        .create_region_in(
            &mut tx,
            &console.grant::<kernel::authz::OrganisationManage>(),
            &code,
            &name,
            parent.as_deref(),
            Utc::now(),
        )
        .await?;
    tx.commit().await?;
    println!("created {} {} {} ({})", r.level, r.code, r.name, r.path);
    db.close().await;
    Ok(())
}

pub(super) async fn department(command: DepartmentCommand) -> anyhow::Result<()> {
    let DepartmentCommand::Add { data, code, name, region, kind } = command;
    let data = data.resolve()?;
    let (db, identity, console) = open(&data).await?;
    let mut tx = db.begin().await?;
    let d = identity
        .organisation()
        .create_department_in(
            &mut tx,
            &console.grant::<kernel::authz::OrganisationManage>(),
            identity::NewDepartment { code: &code, name: &name, region_code: &region, kind: kind.as_deref() },
            Utc::now(),
        )
        .await?;
    tx.commit().await?;
    println!("created department {} {}", d.code, d.name);
    db.close().await;
    Ok(())
}

pub(super) fn config_check(args: ServeArgs) -> anyhow::Result<()> {
    let s = args.resolve()?;
    println!("configuration is valid");
    println!("data_dir = {}", s.data.data_dir.display());
    println!("database_url = {}", s.data.database_url_redacted());
    println!("master_key_file = {}", s.data.master_key_file.display());
    println!("listen = {}", s.listen);
    println!("demo = {}", s.demo);
    println!("body_limit_bytes = {}", s.body_limit);
    println!("tls = {}", s.tls.is_some());
    println!("session_idle_minutes = {}", s.session.idle.as_secs() / 60);
    println!("session_absolute_hours = {}", s.session.absolute.as_secs() / 3600);
    println!("token_ttl_minutes = {}", s.session.token_ttl.as_secs() / 60);
    Ok(())
}

/// The database, identity and the console of the operator who holds the master key.
pub(super) async fn open(data: &DataSettings) -> anyhow::Result<(Db, Identity, Console)> {
    let p = open_with_policy(data, identity::SessionPolicy::default(), CheckpointPolicy::default()).await?;
    let console = p.identity.console(&p.key)?;
    Ok((p.db, p.identity, console))
}

/// What the data commands work with.
pub(super) struct Platform {
    pub(super) db: Db,
    pub(super) identity: Identity,
    pub(super) ledger: Ledger,
    pub(super) key: kernel::secrets::MasterKey,
}

/// Data dir, keys, database and migrations: what every data command needs.
pub(super) async fn open_with_policy(
    data: &DataSettings,
    policy: identity::SessionPolicy,
    checkpoints: CheckpointPolicy,
) -> anyhow::Result<Platform> {
    create_private_dir(&data.data_dir)?;
    let (key, source) = data.master_key()?;
    if source == KeySource::Generated {
        println!(
            "generated a new master key at {} (mode 0600): back it up; without it sealed secrets are lost",
            data.master_key_file.display()
        );
    }
    let db = data.connect().await?;
    db.migrate().await?;
    db.bind_master_key(key.id()).await?;
    let (ledger_key, source) =
        ledger::load_or_generate_key(&data.ledger_key_file, data.generate_ledger_key, &data.ledger_origin)?;
    if source == KeySource::Generated {
        println!(
            "generated a new ledger checkpoint key at {} (mode 0600): publish its verifier keys (GET /ledger/LOG/verifier-key)",
            data.ledger_key_file.display()
        );
    }
    let ledger = Ledger::new(db.clone(), &data.ledger_origin, &ledger_key, checkpoints)?;
    let identity = Identity::new(db.clone(), key.clone(), policy);
    identity.protector().ensure_key(Utc::now()).await?;
    Ok(Platform { db, identity, ledger, key })
}

pub(super) fn create_private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    if !dir.exists() {
        std::fs::create_dir_all(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
    }
    Ok(())
}
