//! Service tests of sessions and API tokens (identity), each run on SQLite and on PostgreSQL:
//! expiry and revocation, revocation reaching another node within the cache time, idle and
//! absolute timeouts, signing out everywhere, system clients' tokens, and preferences that
//! follow the account.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

// The package is `tongban-identity`; the code calls it `identity`, as its dependents do.
extern crate tongban_identity as identity;

use chrono::Duration;
use identity::{AccountKind, Error, NewAccount};
use kernel::authz::ResidentRead;
use kernel::secrets::SecretString;
use testkit::{TestDb, on_both_databases};

mod common;
use common::*;

on_both_databases!(
    api_tokens_expire_and_can_be_revoked,
    revocation_reaches_other_nodes_within_the_cache_time,
    sessions_time_out_and_sign_out_everywhere_ends_them,
    system_clients_get_tokens_with_their_secret,
    language_and_elder_mode_are_remembered_per_account,
);

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
    a.accounts().grant_role(&console.grant::<kernel::authz::RoleGrant>(), &id, "leader", now).await.unwrap();
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

async fn system_clients_get_tokens_with_their_secret(t: TestDb) {
    let console = t.console();
    fixture(&t).await;
    let now = t0();
    let created = t
        .identity
        .accounts()
        .create_account(
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
