//! Service tests of the identity module, each run on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use identity::{self, AccountKind, Denial, Error, Gate, Identity, NewAccount, PasswordChange, Profile, SignInAttempt};
use kernel::authz::{ResidentRead, SecurityEventRead};
use kernel::error::ErrorCode;
use kernel::secrets::{MasterKey, SecretString};
use sqlx::Row;
use testkit::{TestDb, on_both_databases, totp_at};

const PASSWORD: &str = "Spring-Rain-over-Dianchi";
const TOTP: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap()
}

struct Fixture {
    resident_mingyue: String,
    resident_qinghu: String,
}

/// A province, two districts with a grid each, a clerk per district, an auditor, and one
/// resident per district.
async fn fixture(t: &TestDb) -> Fixture {
    let console = t.console();
    let id = &t.identity;
    let org = console.grant::<kernel::authz::OrganisationManage>();
    let acc = console.grant::<kernel::authz::AccountCreate>();
    let roles = console.grant::<kernel::authz::RoleGrant>();
    let now = t0();
    let mut tx = t.db.begin().await.unwrap();
    id.organisation().create_region(&mut tx, &org, "990000", "云岭省", None, now).await.unwrap();
    id.organisation().create_region(&mut tx, &org, "990100", "春城市", Some("990000"), now).await.unwrap();
    for (district, name) in [("990102", "明月区"), ("990103", "青湖区")] {
        id.organisation().create_region(&mut tx, &org, district, name, Some("990100"), now).await.unwrap();
        id.organisation()
            .create_region(&mut tx, &org, &format!("{district}001"), "东风街道", Some(district), now)
            .await
            .unwrap();
        id.organisation()
            .create_region(
                &mut tx,
                &org,
                &format!("{district}001001"),
                "和平社区",
                Some(&format!("{district}001")),
                now,
            )
            .await
            .unwrap();
        id.organisation()
            .create_region(
                &mut tx,
                &org,
                &format!("{district}001001001"),
                "第一网格",
                Some(&format!("{district}001001")),
                now,
            )
            .await
            .unwrap();
        let dept = identity::NewDepartment {
            code: &format!("{district}-MZ"),
            name: &format!("{name}民政局"),
            region_code: district,
            kind: Some("MZ"),
        };
        id.organisation().create_department(&mut tx, &org, dept, now).await.unwrap();
    }
    for (code, name, region_code, kind) in
        [("990000-CZ", "云岭省财政厅", "990000", "CZ"), ("990102-GA", "明月区公安分局", "990102", "GA")]
    {
        let dept = identity::NewDepartment { code, name, region_code, kind: Some(kind) };
        id.organisation().create_department(&mut tx, &org, dept, now).await.unwrap();
    }
    let staff = [
        ("clerk.mingyue", "990102-MZ", "window_clerk"),
        ("clerk.qinghu", "990103-MZ", "window_clerk"),
        ("auditor", "990000-CZ", "auditor"),
    ];
    for (username, dept, role) in staff {
        let created = id
            .accounts()
            .create_account(
                &mut tx,
                &acc,
                NewAccount {
                    kind: Some(AccountKind::Staff),
                    username: username.into(),
                    display_name: "测试".into(),
                    password: Some(SecretString::new(PASSWORD.into())),
                    totp_secret: Some(identity::mfa::secret_from_base32(TOTP).unwrap()),
                    department_code: Some(dept.into()),
                    ..NewAccount::default()
                },
                now,
            )
            .await
            .unwrap();
        id.accounts().grant_role(&mut tx, &roles, &created.id, role, now).await.unwrap();
    }
    let mut residents = Vec::new();
    for (username, grid, id_number) in
        [("citizen.a", "990102001001001", "11010519491231002X"), ("citizen.b", "990103001001001", "440524188001010014")]
    {
        let created = id
            .accounts()
            .create_account(
                &mut tx,
                &acc,
                NewAccount {
                    kind: Some(AccountKind::Citizen),
                    username: username.into(),
                    display_name: "张三".into(),
                    password: Some(SecretString::new(PASSWORD.into())),
                    region_code: Some(grid.into()),
                    profile: Profile::Citizen {
                        real_name: "张三".into(),
                        id_number: id_number.into(),
                        mobile: "13812345678".into(),
                        address: Some("春城市明月区东风街道和平社区8号".into()),
                    },
                    ..NewAccount::default()
                },
                now,
            )
            .await
            .unwrap();
        residents.push(created.id);
    }
    tx.commit().await.unwrap();
    Fixture { resident_mingyue: residents[0].clone(), resident_qinghu: residents[1].clone() }
}

fn attempt<'a>(username: &'a str, password: &'a SecretString, source: &'a str) -> SignInAttempt<'a> {
    SignInAttempt { username, password, source, device: None }
}

async fn token_for(id: &Identity, username: &str, now: DateTime<Utc>) -> String {
    let pw = SecretString::new(PASSWORD.into());
    let code = totp_at(TOTP, now.timestamp());
    id.sign_in()
        .issue_token(&attempt(username, &pw, "10.0.0.1"), Some(&code), now)
        .await
        .unwrap()
        .token
        .expose()
        .to_string()
}

struct Event {
    outcome: String,
    username: Option<String>,
    detail: Option<String>,
}

/// The `audit` ledger's entries of one kind, oldest first.
async fn events(t: &TestDb, kind: &str) -> Vec<Event> {
    let mut rows = ledger::recent(&t.db, ledger::Log::Audit, Some(kind), None, 100_000).await.unwrap();
    rows.reverse();
    rows.into_iter().map(|(_, e)| Event { outcome: e.result, username: e.actor_name, detail: e.detail }).collect()
}

/// Platform-wide console power needs this platform's master key: another key gets nothing.
async fn the_console_is_for_the_holder_of_the_master_key(t: TestDb) {
    assert!(matches!(t.identity.console(&MasterKey::from_bytes([1u8; 32])), Err(Error::Denied(_))));
    let console = t.identity.console(&MasterKey::from_bytes(t.key)).unwrap();
    let org = console.grant::<kernel::authz::OrganisationManage>();
    let mut tx = t.db.begin().await.unwrap();
    t.identity.organisation().create_region(&mut tx, &org, "990000", "云岭省", None, t0()).await.unwrap();
    tx.commit().await.unwrap();
}

on_both_databases!(
    the_console_is_for_the_holder_of_the_master_key,
    demo_province_is_complete_and_deterministic,
    browser_sign_in_needs_the_code_and_refuses_a_replayed_step,
    lockout_backs_off_and_is_recorded,
    source_address_is_throttled_across_usernames,
    api_tokens_expire_and_can_be_revoked,
    revocation_reaches_other_nodes_within_the_cache_time,
    sessions_time_out_and_sign_out_everywhere_ends_them,
    a_code_is_accepted_once_even_when_raced,
    parallel_guesses_are_each_counted,
    system_clients_get_tokens_with_their_secret,
    language_and_elder_mode_are_remembered_per_account,
    identifiers_are_sealed_and_unmasked_only_with_a_purpose,
    key_rotation_reseals_everything_then_retires_the_old_key,
    citizens_see_their_data_who_used_it_and_ask_for_corrections,
    monitoring_raises_each_alert_once_audits_it_and_mails_it,
    clerk_is_confined_to_her_district,
    separated_duties_cannot_be_combined,
    security_events_cannot_be_edited_or_deleted,
    first_sign_in_forces_password_change_then_authenticator,
    region_codes_must_extend_their_parent,
    bad_identifiers_are_refused_without_half_written_accounts,
);

async fn demo_province_is_complete_and_deterministic(t: TestDb) {
    let summary = tongban::demo::seed(&t.identity, &t.console(), t0()).await.unwrap();
    assert_eq!(summary.citizens, 1000);
    assert_eq!(summary.enterprises, 200);
    // 1 province, 3 cities, 8 districts, each with 2 streets × 2 communities × 2 grids
    assert_eq!(summary.regions, 1 + 3 + 8 * (1 + 2 + 4 + 8));
    assert_eq!(summary.departments, 13 * 9);
    for role in [
        "window_clerk",
        "approver",
        "community_worker",
        "data_officer",
        "leader",
        "auditor",
        "security_admin",
        "system_admin",
    ] {
        let districts: std::collections::HashSet<_> =
            summary.staff.iter().filter(|(_, r, _)| r == role).map(|(_, _, d)| d.clone()).collect();
        assert!(districts.contains("明月区") && districts.contains("青湖区"), "{role}: {districts:?}");
    }
    // Every ID number opens (from its sealed form) and is valid.
    let rows = sqlx::query(
        "SELECT c.account_id, c.id_number_enc, c.id_number_bidx, a.username FROM citizens c \
         JOIN accounts a ON a.id = c.account_id ORDER BY a.username",
    )
    .fetch_all(&t.db.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 1000);
    for r in &rows {
        let (account, sealed): (String, String) = (r.get("account_id"), r.get("id_number_enc"));
        let id = t.identity.protector().open(&sealed, &format!("citizens.id_number:{account}")).await.unwrap();
        assert!(identity::ids::validate_resident_id(&id).is_ok(), "{}", *id);
    }
    let codes = sqlx::query("SELECT credit_code FROM enterprises").fetch_all(&t.db.pool).await.unwrap();
    assert_eq!(codes.len(), 200);
    for r in &codes {
        let code: String = r.try_get("credit_code").unwrap();
        assert!(identity::ids::validate_credit_code(&code).is_ok(), "{code}");
    }
    // Same seed, same people: a province seeded elsewhere (same master key, so the same
    // blind index) has the same first resident.
    let bidx = |rows: &[sqlx::any::AnyRow]| -> String {
        rows.iter().find(|r| r.get::<String, _>("username") == "resident-0001").unwrap().get("id_number_bidx")
    };
    let first = bidx(&rows);
    let other = TestDb::sqlite().await;
    tongban::demo::seed(&other.identity, &other.console(), t0()).await.unwrap();
    let again = sqlx::query(
        "SELECT c.id_number_bidx, a.username FROM citizens c JOIN accounts a ON a.id = c.account_id \
         WHERE a.username = 'resident-0001'",
    )
    .fetch_all(&other.db.pool)
    .await
    .unwrap();
    assert_eq!(first, bidx(&again));
    // Subtree: 明月区 holds 15 regions (itself, 2 streets, 4 communities, 8 grids).
    let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM regions WHERE path LIKE '/990000/990100/990102/%'")
        .fetch_one(&t.db.pool)
        .await
        .unwrap()
        .try_get("n")
        .unwrap();
    assert_eq!(n, 15);
}

async fn browser_sign_in_needs_the_code_and_refuses_a_replayed_step(t: TestDb) {
    fixture(&t).await;
    let id = &t.identity;
    let now = t0();
    let pw = SecretString::new(PASSWORD.into());
    let step = id.sign_in().begin_sign_in(&attempt("clerk.mingyue", &pw, "10.0.0.1"), "test", now).await.unwrap();
    assert!(step.awaiting_code);
    // A pending sign-in is not a session.
    assert!(matches!(id.sessions().session(step.token.expose(), now).await, Err(Error::Unauthenticated)));
    assert!(matches!(
        id.sign_in().complete_sign_in(step.token.expose(), "000000", "10.0.0.1", "test", now).await,
        Err(Error::InvalidCode)
    ));
    let code = totp_at(TOTP, now.timestamp());
    let full = id.sign_in().complete_sign_in(step.token.expose(), &code, "10.0.0.1", "test", now).await.unwrap();
    let session = id.sessions().session(full.token.expose(), now).await.unwrap();
    assert_eq!(session.gate, Gate::Ready);
    assert_eq!(session.principal.region.as_ref().unwrap().name, "明月区");
    assert_eq!(session.principal.department.as_ref().unwrap().name, "明月区民政局");
    // The pending token was replaced (rotation), and the same code cannot be used again.
    assert!(id.sign_in().pending_sign_in(step.token.expose(), now).await.is_err());
    // A replayed code is told apart from a wrong one, and counts towards no lockout however
    // often it comes.
    for _ in 0..7 {
        let again = id.sign_in().begin_sign_in(&attempt("clerk.mingyue", &pw, "10.0.0.1"), "test", now).await.unwrap();
        assert!(matches!(
            id.sign_in().complete_sign_in(again.token.expose(), &code, "10.0.0.1", "test", now).await,
            Err(Error::CodeReused)
        ));
    }
    let next = totp_at(TOTP, now.timestamp() + 30);
    let later = now + Duration::seconds(30);
    let again = id.sign_in().begin_sign_in(&attempt("clerk.mingyue", &pw, "10.0.0.1"), "test", later).await.unwrap();
    id.sign_in().complete_sign_in(again.token.expose(), &next, "10.0.0.1", "test", later).await.unwrap();
    let ok = events(&t, "sign_in").await;
    assert!(ok.iter().any(|e| e.outcome == "success" && e.username.as_deref() == Some("clerk.mingyue")));
    assert_eq!(ok.iter().filter(|e| e.outcome == "failure" && e.detail.as_deref() == Some("bad_code")).count(), 1);
    assert_eq!(ok.iter().filter(|e| e.detail.as_deref() == Some("code_reused")).count(), 7);
}

async fn lockout_backs_off_and_is_recorded(t: TestDb) {
    fixture(&t).await;
    let id = &t.identity;
    let wrong = SecretString::new("not-the-password".into());
    let right = SecretString::new(PASSWORD.into());
    let now = t0();
    for i in 0..5 {
        let e = id
            .sign_in()
            .begin_sign_in(&attempt("citizen.a", &wrong, &format!("10.0.1.{i}")), "t", now)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::InvalidCredentials), "{e:?}");
    }
    // Locked now, even with the right password, and from another address.
    match id.sign_in().begin_sign_in(&attempt("citizen.a", &right, "10.0.1.9"), "t", now).await {
        Err(Error::Locked { retry_after_secs }) => assert_eq!(retry_after_secs, 30),
        other => panic!("{other:?}"),
    }
    // One more failure after the lock ends doubles the next lock.
    let later = now + Duration::seconds(31);
    assert!(matches!(
        id.sign_in().begin_sign_in(&attempt("citizen.a", &wrong, "10.0.1.9"), "t", later).await,
        Err(Error::InvalidCredentials)
    ));
    match id.sign_in().begin_sign_in(&attempt("citizen.a", &right, "10.0.1.9"), "t", later).await {
        Err(Error::Locked { retry_after_secs }) => assert_eq!(retry_after_secs, 60),
        other => panic!("{other:?}"),
    }
    // Once it expires the right password works and the count starts again.
    let after = later + Duration::seconds(61);
    id.sign_in().begin_sign_in(&attempt("citizen.a", &right, "10.0.1.9"), "t", after).await.unwrap();
    assert!(matches!(
        id.sign_in().begin_sign_in(&attempt("citizen.a", &wrong, "10.0.1.9"), "t", after).await,
        Err(Error::InvalidCredentials)
    ));
    id.sign_in().begin_sign_in(&attempt("citizen.a", &right, "10.0.1.9"), "t", after).await.unwrap();
    assert_eq!(events(&t, "lockout").await.len(), 2);
    let sign_ins = events(&t, "sign_in").await;
    assert_eq!(sign_ins.iter().filter(|e| e.outcome == "failure").count(), 7);
    assert_eq!(sign_ins.iter().filter(|e| e.outcome == "denied").count(), 2);
    assert_eq!(sign_ins.iter().filter(|e| e.outcome == "success").count(), 2);
}

/// Twenty failures from one address lock that address, but not the people behind it: a
/// browser that signed in to an account before, and an account with a second factor still to
/// pass, get through with the right password.
async fn source_address_is_throttled_across_usernames(t: TestDb) {
    fixture(&t).await;
    let id = &t.identity;
    let wrong = SecretString::new("not-the-password".into());
    let right = SecretString::new(PASSWORD.into());
    let now = t0();
    let home = id.sign_in().begin_sign_in(&attempt("citizen.b", &right, "198.51.100.1"), "t", now).await.unwrap();
    let device = home.device.expect("a full sign-in makes the browser known");
    for i in 0..20 {
        let _ = id.sign_in().begin_sign_in(&attempt(&format!("nobody{i}"), &wrong, "203.0.113.7"), "t", now).await;
    }
    let shared = async |username: &str, password: &SecretString, device: Option<&str>| {
        let attempt = SignInAttempt { username, password, source: "203.0.113.7", device };
        id.sign_in().begin_sign_in(&attempt, "t", now).await
    };
    let (wrong, right, device) = (&wrong, &right, device.expose());
    // The right password alone, from a browser never seen: refused while the lock lasts.
    assert!(matches!(shared("citizen.b", right, None).await, Err(Error::Locked { .. })));
    // The browser that signed in to citizen.b before: through.
    let step = shared("citizen.b", right, Some(device)).await.unwrap();
    assert!(!step.awaiting_code);
    // Its token is no good for another account, nor with the wrong password.
    assert!(matches!(shared("citizen.a", right, Some(device)).await, Err(Error::Locked { .. })));
    assert!(matches!(shared("citizen.b", wrong, Some(device)).await, Err(Error::Locked { .. })));
    // Signing out everywhere forgets the browsers the account was known on.
    let session = id.sessions().session(step.token.expose(), now).await.unwrap();
    id.sessions().sign_out_everywhere(&session, "198.51.100.1", now + Duration::seconds(1)).await.unwrap();
    assert!(matches!(shared("citizen.b", right, Some(device)).await, Err(Error::Locked { .. })));
    // A staff account goes on to its second factor with the right password only.
    assert!(shared("clerk.mingyue", right, None).await.unwrap().awaiting_code);
    assert!(matches!(shared("clerk.mingyue", wrong, None).await, Err(Error::Locked { .. })));
    // A right password refused at a locked address is not a failure; a wrong one is.
    let failures = events(&t, "sign_in").await;
    let failed =
        |who: &str| failures.iter().filter(|e| e.outcome == "failure" && e.username.as_deref() == Some(who)).count();
    assert_eq!((failed("citizen.a"), failed("citizen.b"), failed("clerk.mingyue")), (0, 1, 1));
    // Other addresses are unaffected.
    id.sign_in().begin_sign_in(&attempt("citizen.a", right, "203.0.113.8"), "t", now).await.unwrap();
}

async fn api_tokens_expire_and_can_be_revoked(t: TestDb) {
    fixture(&t).await;
    let id = &t.identity;
    let now = t0();
    let pw = SecretString::new(PASSWORD.into());
    assert!(matches!(
        id.sign_in().issue_token(&attempt("clerk.mingyue", &pw, "s"), None, now).await,
        Err(Error::MfaRequired)
    ));
    assert!(matches!(
        id.sign_in().issue_token(&attempt("clerk.mingyue", &pw, "s"), Some("123456"), now).await,
        Err(Error::InvalidCredentials)
    ));
    let bad = SecretString::new("wrong-password-x".into());
    assert!(matches!(
        id.sign_in().issue_token(&attempt("clerk.mingyue", &bad, "s"), Some("123456"), now).await,
        Err(Error::InvalidCredentials)
    ));
    let token = token_for(id, "clerk.mingyue", now).await;
    let p = id.sessions().token_principal(&token, now).await.unwrap();
    assert_eq!(p.username, "clerk.mingyue");
    assert!(p.may::<ResidentRead>());
    // Expiry
    assert!(matches!(
        id.sessions().token_principal(&token, now + Duration::minutes(61)).await,
        Err(Error::Unauthenticated)
    ));
    // Revocation
    id.sessions().revoke_token(&token, "s", now).await.unwrap();
    assert!(matches!(id.sessions().token_principal(&token, now).await, Err(Error::Unauthenticated)));
    assert_eq!(events(&t, "token_revoked").await.len(), 1);
    // Citizens without a second factor get tokens with the password alone.
    id.sign_in().issue_token(&attempt("citizen.a", &pw, "s"), None, now).await.unwrap();
}

async fn revocation_reaches_other_nodes_within_the_cache_time(t: TestDb) {
    let console = t.console();
    fixture(&t).await;
    let a = &t.identity;
    let b = t.another_node();
    let now = t0();
    let token = token_for(a, "clerk.mingyue", now).await;
    b.sessions().token_principal(&token, now).await.unwrap();
    a.sessions().token_principal(&token, now).await.unwrap();
    a.sessions().revoke_token(&token, "s", now).await.unwrap();
    // This node forgets at once; the other node trusts its copy for at most the cache time.
    assert!(a.sessions().token_principal(&token, now).await.is_err());
    assert!(b.sessions().token_principal(&token, now + Duration::seconds(1)).await.is_ok());
    assert!(b.sessions().token_principal(&token, now + Duration::seconds(2)).await.is_err());
    // Role changes apply at once on the node that made them.
    let token = token_for(a, "clerk.qinghu", now + Duration::seconds(30)).await;
    let p = a.sessions().token_principal(&token, now).await.unwrap();
    assert_eq!(p.roles.len(), 1);
    let id = a.accounts().account_id("clerk.qinghu").await.unwrap();
    a.accounts().grant_role_recorded(&console.grant::<kernel::authz::RoleGrant>(), &id, "leader", now).await.unwrap();
    assert_eq!(a.sessions().token_principal(&token, now).await.unwrap().roles.len(), 2);
}

async fn sessions_time_out_and_sign_out_everywhere_ends_them(t: TestDb) {
    fixture(&t).await;
    let id = &t.identity;
    let now = t0();
    let pw = SecretString::new(PASSWORD.into());
    let a = id.sign_in().begin_sign_in(&attempt("citizen.a", &pw, "s"), "phone", now).await.unwrap();
    assert!(!a.awaiting_code);
    let s = id.sessions().session(a.token.expose(), now + Duration::minutes(20)).await.unwrap();
    assert_eq!(s.principal.kind, AccountKind::Citizen);
    // Activity at +20 min keeps it alive until +49; idle past 30 minutes ends it.
    id.sessions().session(a.token.expose(), now + Duration::minutes(45)).await.unwrap();
    assert!(id.sessions().session(a.token.expose(), now + Duration::minutes(80)).await.is_err());
    // Absolute timeout even with activity.
    let b = id.sign_in().begin_sign_in(&attempt("citizen.a", &pw, "s"), "laptop", now).await.unwrap();
    let mut at = now;
    for _ in 0..30 {
        at += Duration::minutes(25);
        if at > now + Duration::hours(12) {
            break;
        }
        id.sessions().session(b.token.expose(), at).await.unwrap();
    }
    assert!(id.sessions().session(b.token.expose(), now + Duration::hours(12) + Duration::minutes(1)).await.is_err());
    // Sign out everywhere ends sessions and tokens.
    let c = id.sign_in().begin_sign_in(&attempt("citizen.a", &pw, "s"), "tablet", now).await.unwrap();
    let d = id.sign_in().begin_sign_in(&attempt("citizen.a", &pw, "s"), "desktop", now).await.unwrap();
    let token = id.sign_in().issue_token(&attempt("citizen.a", &pw, "s"), None, now).await.unwrap();
    let s = id.sessions().session(c.token.expose(), now).await.unwrap();
    assert_eq!(id.sessions().list(&s, now).await.unwrap().len(), 3);
    id.sessions().sign_out_everywhere(&s, "s", now).await.unwrap();
    assert!(id.sessions().session(c.token.expose(), now).await.is_err());
    assert!(id.sessions().session(d.token.expose(), now).await.is_err());
    assert!(id.sessions().token_principal(token.token.expose(), now).await.is_err());
}

async fn a_code_is_accepted_once_even_when_raced(t: TestDb) {
    fixture(&t).await;
    let now = t0();
    let pw = SecretString::new(PASSWORD.into());
    let code = totp_at(TOTP, now.timestamp());
    let mut pending = Vec::new();
    for _ in 0..4 {
        pending.push(
            t.identity.sign_in().begin_sign_in(&attempt("clerk.mingyue", &pw, "s"), "t", now).await.unwrap().token,
        );
    }
    let tasks: Vec<_> = pending
        .into_iter()
        .map(|token| {
            let id = t.identity.clone();
            let code = code.clone();
            tokio::spawn(
                async move { id.sign_in().complete_sign_in(token.expose(), &code, "s", "t", now).await.is_ok() },
            )
        })
        .collect();
    let mut accepted = 0;
    for task in tasks {
        accepted += usize::from(task.await.unwrap());
    }
    assert_eq!(accepted, 1);
}

async fn parallel_guesses_are_each_counted(t: TestDb) {
    fixture(&t).await;
    let now = t0();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let id = t.identity.clone();
            tokio::spawn(async move {
                let wrong = SecretString::new(format!("guess-number-{i}"));
                id.sign_in().begin_sign_in(&attempt("citizen.b", &wrong, &format!("10.9.0.{i}")), "t", now).await
            })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap().is_err());
    }
    let failures = events(&t, "sign_in").await.into_iter().filter(|e| e.outcome == "failure").count();
    let refused = events(&t, "sign_in").await.into_iter().filter(|e| e.outcome == "denied").count();
    assert_eq!(failures + refused, 8);
    // However they interleaved, at least five failures were counted and the account is locked.
    assert!(failures >= 5, "{failures}");
    let right = SecretString::new(PASSWORD.into());
    assert!(matches!(
        t.identity.sign_in().begin_sign_in(&attempt("citizen.b", &right, "10.9.1.1"), "t", now).await,
        Err(Error::Locked { .. })
    ));
}

async fn system_clients_get_tokens_with_their_secret(t: TestDb) {
    let console = t.console();
    fixture(&t).await;
    let now = t0();
    let created = t
        .identity
        .accounts()
        .create_account_recorded(
            &console.grant::<kernel::authz::AccountCreate>(),
            NewAccount {
                kind: Some(AccountKind::System),
                username: "CN-YL/GOV/DEPT-PSB/population".into(),
                display_name: "公安人口库".into(),
                ..NewAccount::default()
            },
            now,
        )
        .await
        .unwrap();
    assert_eq!(created.username, "cn-yl/gov/dept-psb/population");
    let secret = created.temporary_password.unwrap();
    let token = t
        .identity
        .sign_in()
        .issue_token(&attempt("CN-YL/GOV/DEPT-PSB/population", &secret, "s"), None, now)
        .await
        .unwrap();
    let p = t.identity.sessions().token_principal(token.token.expose(), now).await.unwrap();
    assert_eq!(p.kind, AccountKind::System);
}

async fn identifiers_are_sealed_and_unmasked_only_with_a_purpose(t: TestDb) {
    let console = t.console();
    let f = fixture(&t).await;
    let id = &t.identity;
    let now = t0();
    // Stored sealed: the plain ID number and mobile appear nowhere in the row.
    let row = sqlx::query("SELECT * FROM citizens WHERE account_id = $1")
        .bind(&f.resident_mingyue)
        .fetch_one(&t.db.pool)
        .await
        .unwrap();
    for col in ["id_number_enc", "mobile_enc", "address_enc", "id_number_bidx", "mobile_bidx"] {
        let v: String = row.get(col);
        assert!(
            !v.contains("11010519491231002X") && !v.contains("13812345678") && !v.contains("和平社区"),
            "{col}: {v}"
        );
    }
    let clerk = id.sessions().token_principal(&token_for(id, "clerk.mingyue", now).await, now).await.unwrap();
    let cap = clerk.authorize::<ResidentRead>().unwrap();
    // A stated purpose shows plain values, and the trail names the purpose and the person.
    let plain =
        id.people().resident(&cap, &f.resident_mingyue, Some("办理户籍迁移 YL-20261121-000001"), now).await.unwrap();
    assert_eq!(
        (plain.id_number.as_str(), plain.mobile.as_str(), plain.name.as_str()),
        ("11010519491231002X", "13812345678", "张三")
    );
    assert!(!plain.masked);
    let trail = ledger::recent(&t.db, ledger::Log::Audit, Some("resident_unmasked"), None, 10).await.unwrap();
    assert_eq!(trail.len(), 1);
    assert_eq!(trail[0].1.purpose.as_deref(), Some("办理户籍迁移 YL-20261121-000001"));
    assert_eq!(trail[0].1.subject.as_deref(), Some(f.resident_mingyue.as_str()));
    assert!(matches!(
        id.people().resident(&cap, &f.resident_mingyue, Some("  "), now).await,
        Err(Error::Invalid { field: "purpose", .. })
    ));
    // Lookup by ID number uses the blind index.
    let found = id.people().resident_by_id_number(&cap, "11010519491231002x", None, now).await.unwrap();
    assert_eq!(found.id, f.resident_mingyue);
    assert!(matches!(
        id.people().resident_by_id_number(&cap, "440524188001010014", None, now).await,
        Err(Error::Denied(Denial::OutsideJurisdiction))
    ));
    assert!(matches!(
        id.people().resident_by_id_number(&cap, "110105194912310029", None, now).await,
        Err(Error::Invalid { .. })
    ));
    // A role that policy keeps masked cannot unmask, whatever the purpose.
    let worker = id
        .accounts()
        .create_account_recorded(
            &console.grant::<kernel::authz::AccountCreate>(),
            NewAccount {
                kind: Some(AccountKind::Staff),
                username: "grid.mingyue".into(),
                display_name: "网格员".into(),
                password: Some(SecretString::new(PASSWORD.into())),
                totp_secret: Some(identity::mfa::secret_from_base32(TOTP).unwrap()),
                department_code: Some("990102-MZ".into()),
                ..NewAccount::default()
            },
            now,
        )
        .await
        .unwrap();
    id.accounts()
        .grant_role_recorded(&console.grant::<kernel::authz::RoleGrant>(), &worker.id, "community_worker", now)
        .await
        .unwrap();
    let p = id.sessions().token_principal(&token_for(id, "grid.mingyue", now).await, now).await.unwrap();
    let cap = p.authorize::<ResidentRead>().unwrap();
    assert!(matches!(
        id.people().resident(&cap, &f.resident_mingyue, Some("核实"), now).await,
        Err(Error::Denied(Denial::MaskedForRole))
    ));
    assert!(id.people().resident(&cap, &f.resident_mingyue, None, now).await.unwrap().masked);
}

async fn key_rotation_reseals_everything_then_retires_the_old_key(t: TestDb) {
    let f = fixture(&t).await;
    let id = &t.identity;
    let p = id.protector();
    let now = t0();
    let old = p.active_key_id().await.unwrap();
    assert_eq!(id.people().citizens_under_key(&old).await.unwrap(), 2);
    let new = p.rotate(now).await.unwrap();
    assert_ne!(old, new);
    // The old key cannot retire while values use it.
    assert!(p.retire(&old, id.people().citizens_under_key(&old).await.unwrap(), now).await.is_err());
    let (done, remaining) = id.people().reseal_citizens(1).await.unwrap();
    assert_eq!((done, remaining), (1, 1));
    let (done, remaining) = id.people().reseal_citizens(100).await.unwrap();
    assert_eq!((done, remaining), (1, 0));
    assert_eq!(id.people().reseal_citizens(100).await.unwrap(), (0, 0));
    p.retire(&old, id.people().citizens_under_key(&old).await.unwrap(), now).await.unwrap();
    assert!(p.keys().await.unwrap().iter().any(|k| k.id == old && k.retired_at.is_some()));
    // Everything still opens, under the new key, on a node that has never seen either key.
    let fresh = t.another_node();
    let clerk = fresh.sessions().token_principal(&token_for(&fresh, "clerk.mingyue", now).await, now).await.unwrap();
    let r = fresh
        .people()
        .resident(&clerk.authorize::<ResidentRead>().unwrap(), &f.resident_mingyue, Some("核验"), now)
        .await
        .unwrap();
    assert_eq!(r.id_number, "11010519491231002X");
    let audit = ledger::recent(&t.db, ledger::Log::Audit, Some("data_key_retired"), None, 10).await.unwrap();
    assert_eq!(audit.len(), 1);
}

async fn citizens_see_their_data_who_used_it_and_ask_for_corrections(t: TestDb) {
    let console = t.console();
    let f = fixture(&t).await;
    let id = &t.identity;
    let now = t0();
    let clerk = id.sessions().token_principal(&token_for(id, "clerk.mingyue", now).await, now).await.unwrap();
    id.people()
        .resident(&clerk.authorize::<ResidentRead>().unwrap(), &f.resident_mingyue, Some("核验身份 YL-1"), now)
        .await
        .unwrap();
    let pw = SecretString::new(PASSWORD.into());
    let me = id
        .sessions()
        .token_principal(
            id.sign_in().issue_token(&attempt("citizen.a", &pw, "s"), None, now).await.unwrap().token.expose(),
            now,
        )
        .await
        .unwrap();
    let data = id.my_data().overview(&me, now).await.unwrap();
    let profile = data.profile.unwrap();
    assert_eq!((profile.id_number.as_str(), profile.mobile.as_str()), ("11010519491231002X", "13812345678"));
    let read = data.accesses.iter().find(|a| a.action == "resident_unmasked").expect("the clerk's read is listed");
    assert_eq!(read.department.as_deref(), Some("明月区民政局"));
    assert_eq!(read.post.as_deref(), Some("窗口工作人员"));
    assert_eq!(read.staff.as_deref(), Some("测*"));
    assert_eq!(read.purpose.as_deref(), Some("核验身份 YL-1"));
    assert!(!read.by_self);
    // The index really is that entry in the audit ledger.
    let (index, entry) =
        ledger::recent(&t.db, ledger::Log::Audit, Some("resident_unmasked"), None, 1).await.unwrap().remove(0);
    assert_eq!(index, read.index);
    assert_eq!(entry.subject.as_deref(), Some(f.resident_mingyue.as_str()));
    // Another person sees none of it.
    let other = id
        .sessions()
        .token_principal(
            id.sign_in().issue_token(&attempt("citizen.b", &pw, "s"), None, now).await.unwrap().token.expose(),
            now,
        )
        .await
        .unwrap();
    assert!(id.my_data().overview(&other, now).await.unwrap().accesses.iter().all(|a| a.action != "resident_unmasked"));

    // A correction goes to the public-security bureau of the person's district.
    assert!(matches!(
        id.my_data().request_correction(&me, "salary", "x", "y", now).await,
        Err(Error::Invalid { field: "field", .. })
    ));
    assert!(matches!(
        id.my_data().request_correction(&me, "address", "x", " ", now).await,
        Err(Error::Invalid { field: "reason", .. })
    ));
    let q = id
        .my_data()
        .request_correction(&me, "address", "春城市明月区东风街道和平社区9号", "门牌号有误", now)
        .await
        .unwrap();
    assert_eq!(q.department, "明月区公安分局");
    assert_eq!(id.my_data().overview(&me, now).await.unwrap().corrections.len(), 1);
    // It lands in the inbox of that department only, not in the civil-affairs clerk's.
    assert!(id.my_data().corrections(&clerk.authorize::<ResidentRead>().unwrap(), now).await.unwrap().is_empty());
    let police = id
        .accounts()
        .create_account_recorded(
            &console.grant::<kernel::authz::AccountCreate>(),
            NewAccount {
                kind: Some(AccountKind::Staff),
                username: "police.mingyue".into(),
                display_name: "户籍民警".into(),
                password: Some(SecretString::new(PASSWORD.into())),
                totp_secret: Some(identity::mfa::secret_from_base32(TOTP).unwrap()),
                department_code: Some("990102-GA".into()),
                ..NewAccount::default()
            },
            now,
        )
        .await
        .unwrap();
    id.accounts()
        .grant_role_recorded(&console.grant::<kernel::authz::RoleGrant>(), &police.id, "window_clerk", now)
        .await
        .unwrap();
    let officer = id.sessions().token_principal(&token_for(id, "police.mingyue", now).await, now).await.unwrap();
    let inbox = id.my_data().corrections(&officer.authorize::<ResidentRead>().unwrap(), now).await.unwrap();
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].requested.as_deref(), Some("春城市明月区东风街道和平社区9号"));
    let opened = ledger::recent(&t.db, ledger::Log::Audit, Some("correction_read"), None, 5).await.unwrap();
    assert!(opened[0].1.purpose.is_some());
    let elsewhere = id
        .sessions()
        .token_principal(&token_for(id, "clerk.qinghu", now + Duration::seconds(30)).await, now)
        .await
        .unwrap();
    assert!(id.my_data().corrections(&elsewhere.authorize::<ResidentRead>().unwrap(), now).await.unwrap().is_empty());
}

async fn monitoring_raises_each_alert_once_audits_it_and_mails_it(t: TestDb) {
    use insight::security::{self, Thresholds};
    fixture(&t).await;
    let id = &t.identity;
    let now = Utc::now();
    let wrong = SecretString::new("not-the-password".into());
    for i in 0..5 {
        let _ = id.sign_in().begin_sign_in(&attempt("citizen.a", &wrong, &format!("10.7.0.{i}")), "t", now).await;
    }
    let thresholds = Thresholds::default();
    assert!(security::scan(&t.db, &t.identity, &thresholds, now).await.unwrap() >= 1);
    // The same trail scanned again raises nothing new.
    assert_eq!(security::scan(&t.db, &t.identity, &thresholds, now).await.unwrap(), 0);
    let auditor = id.sessions().token_principal(&token_for(id, "auditor", now).await, now).await.unwrap();
    let cap = auditor.authorize::<kernel::authz::SecurityAlertHandle>().unwrap();
    let alerts = security::alerts(&t.db, &cap, 50).await.unwrap();
    let alert = alerts.iter().find(|a| a.rule == "failed_sign_ins").expect("a failed sign-in alert");
    assert!(alert.summary.contains("citizen.a"), "{}", alert.summary);
    assert_eq!(events(&t, "alert_raised").await.len(), alerts.len());
    // The outbox mails it.
    let (port, seen) = testkit::fake_smtp().await;
    let exchange =
        exchange::Exchange::new(t.db.clone(), t.identity.clone(), &kernel::secrets::MasterKey::from_bytes(t.key));
    let mail = kernel::outbox::Mail {
        relay: "127.0.0.1".into(),
        port,
        from: "tongban@gov.example".into(),
        to: vec!["soc@gov.example".into()],
    };
    assert!(tongban::delivery::deliver(&t.db, Some(&mail), &t.identity, &exchange, now).await.unwrap() >= 1);
    let transcript = seen.lock().await.clone();
    assert!(transcript.contains("RCPT TO:<soc@gov.example>") && transcript.contains("failed_sign_ins"), "{transcript}");
    assert_eq!(tongban::delivery::deliver(&t.db, Some(&mail), &t.identity, &exchange, now).await.unwrap(), 0);
    // Acknowledging is recorded; twice is not found. A clerk may not see alerts at all.
    security::acknowledge(&t.db, &cap, &alert.id, now).await.unwrap();
    assert!(matches!(security::acknowledge(&t.db, &cap, &alert.id, now).await, Err(security::Error::NotFound)));
    assert_eq!(events(&t, "alert_acknowledged").await.len(), 1);
    let clerk = id.sessions().token_principal(&token_for(id, "clerk.mingyue", now).await, now).await.unwrap();
    assert!(clerk.authorize::<kernel::authz::SecurityAlertHandle>().is_err());
}

async fn language_and_elder_mode_are_remembered_per_account(t: TestDb) {
    fixture(&t).await;
    let id = &t.identity;
    let now = t0();
    let pw = SecretString::new(PASSWORD.into());
    let first = id.sign_in().begin_sign_in(&attempt("citizen.a", &pw, "s"), "phone", now).await.unwrap();
    let s = id.sessions().session(first.token.expose(), now).await.unwrap();
    assert_eq!((s.locale.as_deref(), s.elder_mode), (None, false));
    id.settings().set_preferences(&s, Some("en"), Some(true)).await.unwrap();
    // Another device, another session: the choice follows the account.
    let second = id.sign_in().begin_sign_in(&attempt("citizen.a", &pw, "s"), "laptop", now).await.unwrap();
    let s = id.sessions().session(second.token.expose(), now).await.unwrap();
    assert_eq!((s.locale.as_deref(), s.elder_mode), (Some("en"), true));
    id.settings().set_preferences(&s, None, Some(false)).await.unwrap();
    let s = id.sessions().session(second.token.expose(), now).await.unwrap();
    assert_eq!((s.locale.as_deref(), s.elder_mode), (Some("en"), false));
}

async fn clerk_is_confined_to_her_district(t: TestDb) {
    let f = fixture(&t).await;
    let id = &t.identity;
    let now = t0();
    let token = token_for(id, "clerk.mingyue", now).await;
    let clerk = id.sessions().token_principal(&token, now).await.unwrap();
    let cap = clerk.authorize::<ResidentRead>().unwrap();
    let own = id.people().resident(&cap, &f.resident_mingyue, None, now).await.unwrap();
    assert_eq!(own.id_number, "110105********002X");
    assert_eq!(own.mobile, "138****5678");
    assert_eq!(own.name, "张*");
    assert_eq!(own.address.as_deref(), Some("春城市明月区***"));
    assert!(own.masked);
    match id.people().resident(&cap, &f.resident_qinghu, None, now).await {
        Err(Error::Denied(Denial::OutsideJurisdiction)) => {}
        other => panic!("{other:?}"),
    }
    assert!(matches!(id.people().resident(&cap, "no-such-id", None, now).await, Err(Error::NotFound(_))));
    // The refused attempt is on the trail, and the auditor can read it.
    let auditor = id.sessions().token_principal(&token_for(id, "auditor", now).await, now).await.unwrap();
    let trail = id
        .trail()
        .security_events(&auditor.authorize::<SecurityEventRead>().unwrap(), Some("access"), 10)
        .await
        .unwrap();
    assert_eq!(trail.len(), 1);
    assert_eq!(trail[0].outcome, "denied");
    assert_eq!(trail[0].object.as_deref(), Some(format!("resident:{}", f.resident_qinghu).as_str()));
    assert!(clerk.authorize::<SecurityEventRead>().is_err());
    // The other district's clerk sees her own resident.
    let other = id
        .sessions()
        .token_principal(&token_for(id, "clerk.qinghu", now + Duration::seconds(30)).await, now)
        .await
        .unwrap();
    id.people().resident(&other.authorize::<ResidentRead>().unwrap(), &f.resident_qinghu, None, now).await.unwrap();
}

async fn separated_duties_cannot_be_combined(t: TestDb) {
    let console = t.console();
    fixture(&t).await;
    let id = &t.identity;
    let now = t0();
    let roles = console.grant::<kernel::authz::RoleGrant>();
    let auditor = id.accounts().account_id("auditor").await.unwrap();
    for duty in ["system_admin", "security_admin"] {
        match id.accounts().grant_role_recorded(&roles, &auditor, duty, now).await {
            Err(Error::Conflict { code: ErrorCode::DutyConflict, .. }) => {}
            other => panic!("{duty}: {other:?}"),
        }
    }
    // An administrative duty is held alone: no business role beside it, and a clerk cannot
    // become an administrator.
    assert!(matches!(
        id.accounts().grant_role_recorded(&roles, &auditor, "leader", now).await,
        Err(Error::Conflict { code: ErrorCode::DutyConflict, .. })
    ));
    let clerk = id.accounts().account_id("clerk.mingyue").await.unwrap();
    assert!(matches!(
        id.accounts().grant_role_recorded(&roles, &clerk, "security_admin", now).await,
        Err(Error::Conflict { code: ErrorCode::DutyConflict, .. })
    ));
    // Business roles combine; granting again is a no-op.
    assert!(id.accounts().grant_role_recorded(&roles, &clerk, "leader", now).await.unwrap());
    assert!(!id.accounts().grant_role_recorded(&roles, &clerk, "leader", now).await.unwrap());
    assert!(matches!(
        id.accounts().grant_role_recorded(&roles, &clerk, "no_such_role", now).await,
        Err(Error::NotFound(_))
    ));
    // Nobody grants roles to themselves, whatever their permission.
    let secadmin = id
        .accounts()
        .create_account_recorded(
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
    id.accounts().grant_role_recorded(&roles, &secadmin.id, "security_admin", now).await.unwrap();
    let p = id.sessions().token_principal(&token_for(id, "sec.admin", now).await, now).await.unwrap();
    let cap = p.authorize::<kernel::authz::RoleGrant>().unwrap();
    assert!(matches!(
        id.accounts().grant_role_recorded(&cap, &secadmin.id, "window_clerk", now).await,
        Err(Error::Denied(Denial::OwnAccount))
    ));
    assert!(id.accounts().grant_role_recorded(&cap, &clerk, "approver", now).await.unwrap());
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
    assert!(matches!(
        id.accounts().grant_role_recorded(&roles, &citizen, "leader", now).await,
        Err(Error::Invalid { .. })
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

async fn first_sign_in_forces_password_change_then_authenticator(t: TestDb) {
    let console = t.console();
    fixture(&t).await;
    let id = &t.identity;
    let now = t0();
    let created = id
        .accounts()
        .create_account_recorded(
            &console.grant::<kernel::authz::AccountCreate>(),
            NewAccount {
                kind: Some(AccountKind::Staff),
                username: "new.clerk".into(),
                display_name: "新同事".into(),
                department_code: Some("990102-MZ".into()),
                ..NewAccount::default()
            },
            now,
        )
        .await
        .unwrap();
    let temp = created.temporary_password.unwrap();
    assert!(matches!(
        id.sign_in().issue_token(&attempt("new.clerk", &temp, "s"), None, now).await,
        Err(Error::MfaEnrolmentRequired | Error::PasswordChangeRequired)
    ));
    let step = id.sign_in().begin_sign_in(&attempt("new.clerk", &temp, "s"), "t", now).await.unwrap();
    let s = id.sessions().session(step.token.expose(), now).await.unwrap();
    assert_eq!(s.gate, Gate::MustChangePassword);
    let weak = SecretString::new("1234567890".into());
    assert!(matches!(
        id.settings().change_password(&s, PasswordChange { current: &temp, new: &weak }, "s", "t", now).await,
        Err(Error::WeakPassword(identity::PolicyViolation::Common))
    ));
    let mine = SecretString::new("my-own-passphrase-2026".into());
    assert!(matches!(
        id.settings().change_password(&s, PasswordChange { current: &mine, new: &mine }, "s", "t", now).await,
        Err(Error::InvalidCredentials)
    ));
    let token =
        id.settings().change_password(&s, PasswordChange { current: &temp, new: &mine }, "s", "t", now).await.unwrap();
    // The old session ended; the new one must enrol an authenticator next.
    assert!(id.sessions().session(step.token.expose(), now).await.is_err());
    let s = id.sessions().session(token.expose(), now).await.unwrap();
    assert_eq!(s.gate, Gate::MustEnrolMfa);
    let enrolment = id.settings().begin_totp_enrolment(&s).await.unwrap();
    assert!(enrolment.uri.starts_with("otpauth://totp/tongban:new.clerk?"));
    // Resuming shows the same secret until confirmed.
    assert_eq!(id.settings().begin_totp_enrolment(&s).await.unwrap().secret_base32, enrolment.secret_base32);
    assert!(matches!(id.settings().confirm_totp_enrolment(&s, "000000", "s", "t", now).await, Err(Error::InvalidCode)));
    let code = totp_at(&enrolment.secret_base32, now.timestamp());
    let (codes, token) = id.settings().confirm_totp_enrolment(&s, &code, "s", "t", now).await.unwrap();
    assert_eq!(codes.len(), 10);
    let s = id.sessions().session(token.expose(), now).await.unwrap();
    assert_eq!(s.gate, Gate::Ready);
    assert_eq!(s.unused_recovery_codes, 10);
    // A working authenticator cannot be replaced from a session alone.
    assert!(matches!(
        id.settings().begin_totp_enrolment(&s).await,
        Err(Error::Conflict { code: ErrorCode::MfaAlreadyEnrolled, .. })
    ));
    assert!(matches!(
        id.settings().confirm_totp_enrolment(&s, &code, "s", "t", now).await,
        Err(Error::Conflict { code: ErrorCode::MfaAlreadyEnrolled, .. })
    ));
    // A recovery code stands in for the authenticator, once.
    let later = now + Duration::minutes(5);
    let step = id.sign_in().begin_sign_in(&attempt("new.clerk", &mine, "s"), "t", later).await.unwrap();
    id.sign_in().complete_sign_in(step.token.expose(), &codes[3].to_uppercase(), "s", "t", later).await.unwrap();
    let step = id.sign_in().begin_sign_in(&attempt("new.clerk", &mine, "s"), "t", later).await.unwrap();
    assert!(matches!(
        id.sign_in().complete_sign_in(step.token.expose(), &codes[3], "s", "t", later).await,
        Err(Error::InvalidCode)
    ));
    let t2 = id
        .sign_in()
        .issue_token(
            &attempt("new.clerk", &mine, "s"),
            Some(&totp_at(&enrolment.secret_base32, later.timestamp())),
            later,
        )
        .await;
    assert!(t2.is_ok(), "{t2:?}");
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
        let e = id.organisation().create_region(&mut tx, &org, code, "X", parent, now).await.unwrap_err();
        assert!(matches!(e, Error::Invalid { .. } | Error::Conflict { .. }), "{code}: {e:?}");
    }
    assert!(matches!(
        id.organisation().create_region(&mut tx, &org, "990105", "X", Some("999999"), now).await,
        Err(Error::NotFound(_))
    ));
    let r = id.organisation().create_region(&mut tx, &org, "990105", "新区", Some("990100"), now).await.unwrap();
    assert_eq!(r.level, "district");
    assert_eq!(r.path, "/990000/990100/990105/");
    tx.commit().await.unwrap();
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
        id.accounts().create_account_recorded(&acc, citizen("citizen.c", "110105194912310021"), t0()).await,
        Err(Error::Invalid { field: "id_number", .. })
    ));
    // A duplicate ID number fails after the account row was written: the transaction
    // rolls back, so no account without a profile is left behind.
    match id.accounts().create_account_recorded(&acc, citizen("citizen.d", "11010519491231002X"), t0()).await {
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
        id.accounts().create_account_recorded(&acc, enterprise, t0()).await,
        Err(Error::Invalid { field: "credit_code", .. })
    ));
    let system = NewAccount {
        kind: Some(AccountKind::System),
        username: "not a client name".into(),
        display_name: "X".into(),
        ..NewAccount::default()
    };
    assert!(matches!(
        id.accounts().create_account_recorded(&acc, system, t0()).await,
        Err(Error::Invalid { field: "username", .. })
    ));
}
