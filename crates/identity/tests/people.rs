//! Service tests of residents' personal data (identity), each run on SQLite and on PostgreSQL:
//! identifiers stored sealed and shown plain only with a purpose, a clerk confined to her
//! district, key rotation that reseals everything, and 我的数据 (who used my data, and
//! corrections routed to the owning department).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

// The package is `tongban-identity`; the code calls it `identity`, as its dependents do.
extern crate tongban_identity as identity;

use chrono::Duration;
use identity::{AccountKind, Denial, Error, NewAccount};
use kernel::authz::{ResidentRead, SecurityEventRead};
use kernel::secrets::SecretString;
use sqlx::Row;
use testkit::{TestDb, on_both_databases};

mod common;
use common::*;

on_both_databases!(
    identifiers_are_sealed_and_unmasked_only_with_a_purpose,
    clerk_is_confined_to_her_district,
    key_rotation_reseals_everything_then_retires_the_old_key,
    citizens_see_their_data_who_used_it_and_ask_for_corrections,
);

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
        .create_account(
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
        .grant_role(&console.grant::<kernel::authz::RoleGrant>(), &worker.id, "community_worker", now)
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
        .create_account(
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
        .grant_role(&console.grant::<kernel::authz::RoleGrant>(), &police.id, "window_clerk", now)
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
