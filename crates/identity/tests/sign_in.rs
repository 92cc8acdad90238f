//! Service tests of signing in (identity), each run on SQLite and on PostgreSQL: the second
//! factor and replayed codes, lockout and its back-off, throttling by source address, codes
//! and guesses raced in parallel, and the first sign-in that forces a new password and an
//! authenticator.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

// The package is `tongban-identity`; the code calls it `identity`, as its dependents do.
extern crate tongban_identity as identity;

use chrono::Duration;
use identity::{AccountKind, Error, Gate, NewAccount, PasswordChange, SignInAttempt};
use kernel::error::ErrorCode;
use kernel::secrets::SecretString;
use testkit::{TestDb, on_both_databases, totp_at};

mod common;
use common::*;

on_both_databases!(
    browser_sign_in_needs_the_code_and_refuses_a_replayed_step,
    lockout_backs_off_and_is_recorded,
    source_address_is_throttled_across_usernames,
    a_code_is_accepted_once_even_when_raced,
    parallel_guesses_are_each_counted,
    first_sign_in_forces_password_change_then_authenticator,
);

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

async fn first_sign_in_forces_password_change_then_authenticator(t: TestDb) {
    let console = t.console();
    fixture(&t).await;
    let id = &t.identity;
    let now = t0();
    let created = id
        .accounts()
        .create_account(
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
