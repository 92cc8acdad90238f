//! Service tests of the organisation and its accounts (identity), each run on SQLite and on
//! PostgreSQL: the console needs the master key, region codes extend their parent, separated
//! duties cannot be combined, bad identifiers leave no half-written account, and security
//! events cannot be edited or deleted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

// The package is `tongban-identity`; the code calls it `identity`, as its dependents do.
extern crate tongban_identity as identity;

use identity::{AccountKind, Denial, Error, NewAccount, Profile};
use kernel::error::ErrorCode;
use kernel::secrets::{MasterKey, SecretString};
use testkit::{TestDb, on_both_databases};

mod common;
use common::*;

on_both_databases!(
    the_console_is_for_the_holder_of_the_master_key,
    region_codes_must_extend_their_parent,
    separated_duties_cannot_be_combined,
    bad_identifiers_are_refused_without_half_written_accounts,
    security_events_cannot_be_edited_or_deleted,
);

/// Platform-wide console power needs this platform's master key: another key gets nothing.
async fn the_console_is_for_the_holder_of_the_master_key(t: TestDb) {
    assert!(matches!(t.identity.console(&MasterKey::from_bytes([1u8; 32])), Err(Error::Denied(_))));
    let console = t.identity.console(&MasterKey::from_bytes(t.key)).unwrap();
    let org = console.grant::<kernel::authz::OrganisationManage>();
    let mut tx = t.db.begin().await.unwrap();
    t.identity.organisation().create_region_in(&mut tx, &org, "990000", "云岭省", None, t0()).await.unwrap();
    tx.commit().await.unwrap();
}

async fn region_codes_must_extend_their_parent(t: TestDb) {
    let console = t.console();
    fixture(&t).await;
    let now = t0();
    let org = console.grant::<kernel::authz::OrganisationManage>();
    let mut tx = t.db.begin().await.unwrap();
    let id = &t.identity;
    for (code, parent) in [
        ("880100", Some("990000")),    // city outside the province
        ("99010", Some("990000")),     // too short
        ("990102002", Some("990100")), // street code under a city
        ("990102", Some("990100")),    // exists
        ("99a102", Some("990100")),    // not digits
    ] {
        let e = id.organisation().create_region_in(&mut tx, &org, code, "X", parent, now).await.unwrap_err();
        assert!(matches!(e, Error::Invalid { .. } | Error::Conflict { .. }), "{code}: {e:?}");
    }
    assert!(matches!(
        id.organisation().create_region_in(&mut tx, &org, "990105", "X", Some("999999"), now).await,
        Err(Error::NotFound(_))
    ));
    let r = id.organisation().create_region_in(&mut tx, &org, "990105", "新区", Some("990100"), now).await.unwrap();
    assert_eq!(r.level, "district");
    assert_eq!(r.path, "/990000/990100/990105/");
    tx.commit().await.unwrap();
}

async fn separated_duties_cannot_be_combined(t: TestDb) {
    let console = t.console();
    fixture(&t).await;
    let id = &t.identity;
    let now = t0();
    let roles = console.grant::<kernel::authz::RoleGrant>();
    let auditor = id.accounts().account_id("auditor").await.unwrap();
    for duty in ["system_admin", "security_admin"] {
        match id.accounts().grant_role(&roles, &auditor, duty, now).await {
            Err(Error::Conflict { code: ErrorCode::DutyConflict, .. }) => {}
            other => panic!("{duty}: {other:?}"),
        }
    }
    // An administrative duty is held alone: no business role beside it, and a clerk cannot
    // become an administrator.
    assert!(matches!(
        id.accounts().grant_role(&roles, &auditor, "leader", now).await,
        Err(Error::Conflict { code: ErrorCode::DutyConflict, .. })
    ));
    let clerk = id.accounts().account_id("clerk.mingyue").await.unwrap();
    assert!(matches!(
        id.accounts().grant_role(&roles, &clerk, "security_admin", now).await,
        Err(Error::Conflict { code: ErrorCode::DutyConflict, .. })
    ));
    // Business roles combine; granting again is a no-op.
    assert!(id.accounts().grant_role(&roles, &clerk, "leader", now).await.unwrap());
    assert!(!id.accounts().grant_role(&roles, &clerk, "leader", now).await.unwrap());
    assert!(matches!(id.accounts().grant_role(&roles, &clerk, "no_such_role", now).await, Err(Error::NotFound(_))));
    // Nobody grants roles to themselves, whatever their permission.
    let secadmin = id
        .accounts()
        .create_account(
            &console.grant::<kernel::authz::AccountCreate>(),
            NewAccount {
                kind: Some(AccountKind::Staff),
                username: "sec.admin".into(),
                display_name: "安全管理员".into(),
                password: Some(SecretString::new(PASSWORD.into())),
                totp_secret: Some(identity::mfa::secret_from_base32(TOTP).unwrap()),
                department_code: Some("990000-CZ".into()),
                ..NewAccount::default()
            },
            now,
        )
        .await
        .unwrap();
    id.accounts().grant_role(&roles, &secadmin.id, "security_admin", now).await.unwrap();
    let p = id.sessions().token_principal(&token_for(id, "sec.admin", now).await, now).await.unwrap();
    let cap = p.authorize::<kernel::authz::RoleGrant>().unwrap();
    assert!(matches!(
        id.accounts().grant_role(&cap, &secadmin.id, "window_clerk", now).await,
        Err(Error::Denied(Denial::OwnAccount))
    ));
    assert!(id.accounts().grant_role(&cap, &clerk, "approver", now).await.unwrap());
    // The database itself refuses a second duty, whoever writes.
    let direct = sqlx::query(
        "INSERT INTO account_roles (account_id, role_code, duty, granted_at) VALUES ($1, 'system_admin', 'system_admin', 0)",
    )
    .bind(&auditor)
    .execute(&t.db.pool)
    .await;
    assert!(direct.is_err());
    // Roles are held by staff, not residents.
    let citizen = id.accounts().account_id("citizen.a").await.unwrap();
    assert!(matches!(id.accounts().grant_role(&roles, &citizen, "leader", now).await, Err(Error::Invalid { .. })));
}

async fn bad_identifiers_are_refused_without_half_written_accounts(t: TestDb) {
    let console = t.console();
    fixture(&t).await;
    let id = &t.identity;
    let acc = console.grant::<kernel::authz::AccountCreate>();
    let citizen = |username: &str, id_number: &str| NewAccount {
        kind: Some(AccountKind::Citizen),
        username: username.into(),
        display_name: "李四".into(),
        region_code: Some("990102001001001".into()),
        profile: Profile::Citizen {
            real_name: "李四".into(),
            id_number: id_number.into(),
            mobile: "13912345678".into(),
            address: None,
        },
        ..NewAccount::default()
    };
    assert!(matches!(
        id.accounts().create_account(&acc, citizen("citizen.c", "110105194912310021"), t0()).await,
        Err(Error::Invalid { field: "id_number", .. })
    ));
    // A duplicate ID number fails after the account row was written: the transaction
    // rolls back, so no account without a profile is left behind.
    match id.accounts().create_account(&acc, citizen("citizen.d", "11010519491231002X"), t0()).await {
        Err(Error::Conflict { code: ErrorCode::IdNumberTaken, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert!(matches!(id.accounts().account_id("citizen.d").await, Err(Error::NotFound(_))));
    let enterprise = NewAccount {
        kind: Some(AccountKind::Enterprise),
        username: "firm.x".into(),
        display_name: "X".into(),
        region_code: Some("990102".into()),
        profile: Profile::Enterprise {
            name: "X".into(),
            credit_code: "91350100M000100Y44".into(),
            legal_representative: "王五".into(),
        },
        ..NewAccount::default()
    };
    assert!(matches!(
        id.accounts().create_account(&acc, enterprise, t0()).await,
        Err(Error::Invalid { field: "credit_code", .. })
    ));
    let system = NewAccount {
        kind: Some(AccountKind::System),
        username: "not a client name".into(),
        display_name: "X".into(),
        ..NewAccount::default()
    };
    assert!(matches!(
        id.accounts().create_account(&acc, system, t0()).await,
        Err(Error::Invalid { field: "username", .. })
    ));
}

async fn security_events_cannot_be_edited_or_deleted(t: TestDb) {
    fixture(&t).await;
    let pw = SecretString::new("wrong-password-x".into());
    let _ = t.identity.sign_in().begin_sign_in(&attempt("citizen.a", &pw, "s"), "t", t0()).await;
    assert_eq!(events(&t, "sign_in").await.len(), 1);
    let update =
        sqlx::query("UPDATE ledger_entries SET action = 'nothing' WHERE action = 'sign_in'").execute(&t.db.pool).await;
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = sqlx::query("DELETE FROM ledger_entries WHERE action = 'sign_in'").execute(&t.db.pool).await;
    assert!(delete.unwrap_err().to_string().contains("append-only"));
    let e = events(&t, "sign_in").await;
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].outcome, "failure");
}
