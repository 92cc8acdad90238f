//! Service tests of sharing between departments, each run on SQLite and on PostgreSQL: the
//! sharing-agreement lifecycle and every refusal, masking per classification,
//! verification-only answers with signed receipts, consent taking effect at once, access
//! entries visible to the data subject, concurrent calls, and the agreed rate across nodes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

// The package is `tongban-exchange`; the code calls it `exchange`, as its dependents do.
extern crate tongban_exchange as exchange;

use chrono::Duration;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use exchange::{AgreementStatus, Decision, Error, Exchange, Predicate};
use kernel::authz::{ExchangeFigures, SharingDecide};
use kernel::error::ErrorCode;
use kernel::secrets::MasterKey;
use serde_json::json;
use testkit::{TestDb, on_both_databases};

mod common;
use common::*;

on_both_databases!(
    agreement_lifecycle,
    masking_per_level,
    verification_only,
    consent_takes_effect_at_once,
    access_entries_reach_the_data_subject,
    concurrent_calls_each_leave_their_entry,
    the_agreed_rate_holds_across_nodes,
);

async fn agreement_lifecycle(t: TestDb) {
    let h = hub(t).await;
    let now = t0();
    // Unconditional fields: granted on request.
    let open = h
        .request(
            "data.mz",
            json!({"registry": "population", "fields": ["sex", "birth_date", "region_code"],
            "purpose": "高龄津贴资格核对", "legal_basis": "《老年人权益保障法》", "valid_days": 365}),
        )
        .await;
    assert_eq!(open.status, AgreementStatus::Granted);
    // Conditional fields wait for the owner; the owner's approval grants them.
    let cond = h
        .request(
            "data.mz",
            json!({"registry": "population", "fields": ["name", "address"],
            "purpose": "低保家庭住址核实", "legal_basis": "《社会救助暂行办法》第十一条", "valid_days": 30}),
        )
        .await;
    assert_eq!(cond.status, AgreementStatus::Pending);
    let incoming = {
        let p = h.principal("data.ga").await;
        h.exchange.sharing().incoming_agreements(&p.authorize::<SharingDecide>().unwrap(), now).await.unwrap()
    };
    assert!(incoming.iter().any(|a| a.id == cond.id && a.status == AgreementStatus::Pending));
    // Another department cannot decide the public-security bureau's requests.
    {
        let p = h.principal("data.sj").await;
        let e = h
            .exchange
            .sharing()
            .decide_agreement(
                &p.authorize::<SharingDecide>().unwrap(),
                &cond.id,
                Decision { approve: true, reason: None },
                now,
            )
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Denied(_)), "{e:?}");
    }
    let granted = h.decide("data.ga", &cond.id, true).await;
    assert_eq!(granted.status, AgreementStatus::Granted);
    // A second decision is refused.
    {
        let p = h.principal("data.ga").await;
        let e = h
            .exchange
            .sharing()
            .decide_agreement(
                &p.authorize::<SharingDecide>().unwrap(),
                &cond.id,
                Decision { approve: false, reason: Some("x".into()) },
                now,
            )
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Conflict { code: ErrorCode::AlreadyDecided, .. }), "{e:?}");
    }
    // Not shareable: refused at once, with the legal basis as the reason.
    let never = h
        .request(
            "data.mz",
            json!({"registry": "population", "fields": ["name", "fingerprint_ref"],
            "purpose": "身份核验", "legal_basis": "内部需要", "valid_days": 30}),
        )
        .await;
    assert_eq!(never.status, AgreementStatus::Refused);
    assert!(never.reason.as_deref().unwrap().contains("第六条"), "{:?}", never.reason);

    let mz = h.client("990000-MZ", "CN/GOV/990000-MZ/dibao").await;
    let answer = h.exchange.sharing().read(&mz, &cond.id, ID_A, now).await.unwrap();
    assert_eq!(answer.values.len(), 2, "only the granted fields: {:?}", answer.values);
    assert!(answer.values.contains_key("name") && answer.values.contains_key("address"));
    // Refusals: a pending, refused, foreign, expired or revoked agreement; an unknown record.
    assert_eq!(refusal(h.exchange.sharing().read(&mz, &never.id, ID_A, now).await.unwrap_err()), "agreement_refused");
    let sj = h.client("990000-SJ", "CN/GOV/990000-SJ/licensing").await;
    assert_eq!(refusal(h.exchange.sharing().read(&sj, &cond.id, ID_A, now).await.unwrap_err()), "agreement_not_yours");
    let later = now + Duration::days(31);
    assert_eq!(refusal(h.exchange.sharing().read(&mz, &cond.id, ID_A, later).await.unwrap_err()), "agreement_expired");
    assert!(matches!(
        h.exchange.sharing().read(&mz, &cond.id, "110105194912310039", now).await.unwrap_err(),
        Error::NotFound("record")
    ));
    {
        let p = h.principal("data.ga").await;
        let revoked = h
            .exchange
            .sharing()
            .revoke_agreement(&p.authorize::<SharingDecide>().unwrap(), &cond.id, "用途已完成", now)
            .await
            .unwrap();
        assert_eq!(revoked.status, AgreementStatus::Revoked);
    }
    assert_eq!(refusal(h.exchange.sharing().read(&mz, &cond.id, ID_A, now).await.unwrap_err()), "agreement_revoked");
    // A wrong secret is not a client.
    assert!(matches!(
        h.exchange.sharing().authenticate("CN/GOV/990000-MZ/dibao", "guess").await.unwrap_err(),
        Error::Unauthenticated
    ));
    // The department figures count what happened.
    let p = h.principal("data.ga").await;
    let figures = h.exchange.quality().department_figures(&p.authorize::<ExchangeFigures>().unwrap()).await.unwrap();
    let ga = figures.iter().find(|f| f.department == "公安厅").unwrap();
    assert_eq!((ga.resources, ga.requests_received, ga.requests_granted), (1, 3, 2));
    assert_eq!(ga.calls_served, 1);
}

async fn masking_per_level(t: TestDb) {
    let h = hub(t).await;
    let now = t0();
    let fields = json!(["id_number", "name", "sex", "mobile"]);
    let masked = h
        .request("data.mz", json!({"registry": "population", "fields": fields, "purpose": "核对", "legal_basis": "《社会救助暂行办法》", "valid_days": 30}))
        .await;
    h.decide("data.ga", &masked.id, true).await;
    let plain = h
        .request("data.mz", json!({"registry": "population", "fields": fields, "purpose": "核对", "legal_basis": "《社会救助暂行办法》", "valid_days": 30, "plain_values": true}))
        .await;
    assert_eq!(plain.status, AgreementStatus::Pending, "plain values of sensitive fields are the owner's decision");
    h.decide("data.ga", &plain.id, true).await;
    let mz = h.client("990000-MZ", "CN/GOV/990000-MZ/dibao").await;
    let a = h.exchange.sharing().read(&mz, &masked.id, ID_A, now).await.unwrap();
    assert_eq!(a.values["id_number"], json!("110105********002X"));
    assert_eq!(a.values["name"], json!("王*"));
    assert_eq!(a.values["mobile"], json!("138****5678"));
    assert_eq!(a.values["sex"], json!("2"), "L2 values are shown as they are");
    assert_eq!(a.masked, vec!["id_number", "mobile", "name"]);
    let b = h.exchange.sharing().read(&mz, &plain.id, ID_A, now).await.unwrap();
    assert_eq!(b.values["id_number"], json!(ID_A));
    assert_eq!(b.values["name"], json!("王芳"));
    assert!(b.masked.is_empty());
    // The key's letter is matched whatever its case.
    let lower = h.exchange.sharing().read(&mz, &plain.id, &ID_A.to_lowercase(), now).await.unwrap();
    assert_eq!(lower.record, b.record);
}

async fn verification_only(t: TestDb) {
    let h = hub(t).await;
    let now = t0();
    let v = h
        .request(
            "data.ga",
            json!({"registry": "marriage", "fields": ["status"], "purpose": "户口迁移婚姻状况核验",
            "legal_basis": "《户口登记条例》", "valid_days": 90, "verify_only": true}),
        )
        .await;
    h.decide("data.mz", &v.id, true).await;
    let ga = h.client("990000-GA", "CN/GOV/990000-GA/hukou").await;
    assert_eq!(refusal(h.exchange.sharing().read(&ga, &v.id, ID_A, now).await.unwrap_err()), "verify_only");
    let married = vec![Predicate { field: "status".into(), op: "eq".into(), value: json!("married") }];
    let yes = h.exchange.sharing().verify(&ga, &v.id, ID_A, married.clone(), now).await.unwrap();
    assert!(yes.answer);
    let no = h.exchange.sharing().verify(&ga, &v.id, ID_B, married.clone(), now).await.unwrap();
    assert!(!no.answer, "nobody registered: no");
    assert_ne!(yes.subject, no.subject);
    // The receipt verifies with the published key, and not once altered.
    let key = VerifyingKey::from_bytes(&hex::decode(&yes.key).unwrap().try_into().unwrap()).unwrap();
    let payload = json!({"agreement": yes.agreement, "registry": yes.registry, "subject": yes.subject,
        "conditions": yes.conditions, "answer": yes.answer, "at": yes.at});
    let sig = Signature::from_slice(&hex::decode(&yes.signature).unwrap()).unwrap();
    assert!(key.verify(payload.to_string().as_bytes(), &sig).is_ok());
    let mut forged = payload.clone();
    forged["answer"] = json!(false);
    assert!(key.verify(forged.to_string().as_bytes(), &sig).is_err());
    // A bad operator is refused even when nobody holds the key.
    let odd = vec![Predicate { field: "status".into(), op: "like".into(), value: json!("m%") }];
    let e = h.exchange.sharing().verify(&ga, &v.id, ID_B, odd, now).await.unwrap_err();
    assert!(matches!(e, Error::Invalid { field: "op", .. }), "{e:?}");
    // Only granted fields may be asked about.
    let other = vec![Predicate { field: "spouse_name".into(), op: "eq".into(), value: json!("张伟") }];
    assert_eq!(
        refusal(h.exchange.sharing().verify(&ga, &v.id, ID_A, other, now).await.unwrap_err()),
        "field_not_granted"
    );
    // Registered capital at least 300 (10k yuan)?
    let cap = h
        .request(
            "data.mz",
            json!({"registry": "legal_entities", "fields": ["registered_capital"], "purpose": "养老机构设立条件核验",
            "legal_basis": "《养老机构管理办法》", "valid_days": 90, "verify_only": true}),
        )
        .await;
    h.decide("data.sj", &cap.id, true).await;
    let mz = h.client("990000-MZ", "CN/GOV/990000-MZ/yanglao").await;
    let at_least = |z: i64| vec![Predicate { field: "registered_capital".into(), op: "gte".into(), value: json!(z) }];
    assert!(h.exchange.sharing().verify(&mz, &cap.id, "91530100MA6K8XXX1Q", at_least(300), now).await.unwrap().answer);
    assert!(
        !h.exchange.sharing().verify(&mz, &cap.id, "91530100MA6K8XXX1Q", at_least(1000), now).await.unwrap().answer
    );
}

async fn consent_takes_effect_at_once(t: TestDb) {
    let h = hub(t).await;
    let now = t0();
    let a = h
        .request(
            "data.rs",
            json!({"registry": "population", "fields": ["address", "mobile"], "purpose": "就业援助回访",
            "legal_basis": "本人同意", "valid_days": 180, "consent_required": true}),
        )
        .await;
    assert_eq!(a.status, AgreementStatus::Pending);
    h.decide("data.ga", &a.id, true).await;
    let rs = h.client("990000-RS", "CN/GOV/990000-RS/jiuye").await;
    assert_eq!(refusal(h.exchange.sharing().read(&rs, &a.id, ID_A, now).await.unwrap_err()), "consent_required");
    let me = h.principal("citizen.a").await;
    let asks = h.exchange.consent().my_consents(&me, now).await.unwrap();
    let ask = asks.iter().find(|c| c.purpose == "就业援助回访").unwrap();
    assert!(!ask.granted);
    assert_eq!(ask.requester, "人力资源和社会保障厅");
    h.exchange.consent().set_my_consent(&me, &ask.data_agreement, true, now).await.unwrap();
    assert!(h.exchange.sharing().read(&rs, &a.id, ID_A, now).await.is_ok());
    // Another resident's consent is theirs alone.
    assert_eq!(refusal(h.exchange.sharing().read(&rs, &a.id, ID_B, now).await.unwrap_err()), "consent_required");
    h.exchange.consent().set_my_consent(&me, &ask.data_agreement, false, now).await.unwrap();
    assert_eq!(refusal(h.exchange.sharing().read(&rs, &a.id, ID_A, now).await.unwrap_err()), "consent_required");
    let after = h.exchange.consent().my_consents(&me, now).await.unwrap();
    assert!(!after.iter().find(|c| c.data_agreement == ask.data_agreement).unwrap().granted);
}

async fn access_entries_reach_the_data_subject(t: TestDb) {
    let h = hub(t).await;
    let now = t0();
    let (a, mz) = h.elder_allowance().await;
    h.exchange.sharing().read(&mz, &a.id, ID_A, now).await.unwrap();
    let me = h.principal("citizen.a").await;
    let mine = h.t.identity.my_data().overview(&me, now).await.unwrap();
    let read = mine.accesses.iter().find(|x| x.action == "exchange_read").expect("the read is on 我的数据");
    assert_eq!(read.purpose.as_deref(), Some("高龄津贴资格核对"));
    assert_eq!(read.department.as_deref(), Some("民政厅"));
    // The other resident sees nothing of it.
    let other = h.principal("citizen.b").await;
    let theirs = h.t.identity.my_data().overview(&other, now).await.unwrap();
    assert!(!theirs.accesses.iter().any(|x| x.action == "exchange_read"));
}

/// Calls at once share their group commits: each still leaves its own entry naming its own
/// data subject, and each served call is counted once, under two agreements and across
/// midnight (several counts written by one batch).
async fn concurrent_calls_each_leave_their_entry(t: TestDb) {
    let h = hub(t).await;
    let now = t0();
    let (a, mz) = h.elder_allowance().await;
    let b = h
        .request(
            "data.mz",
            json!({"registry": "population", "fields": ["birth_date"], "purpose": "困难群众救助核对",
            "legal_basis": "《社会救助暂行办法》", "valid_days": 365}),
        )
        .await;
    let calls: Vec<_> = (0..30)
        .map(|i| {
            let id = if i % 2 == 0 { a.id.clone() } else { b.id.clone() };
            let at = if i % 5 == 0 { now + Duration::days(1) } else { now };
            let (exchange, mz) = (h.exchange.clone(), mz.clone());
            tokio::spawn(async move {
                // Every third call is for resident B, and one asks for a key nobody holds.
                let key = match i {
                    29 => "110105194912310039",
                    i if i % 3 == 0 => ID_B,
                    _ => ID_A,
                };
                exchange.sharing().read(&mz, &id, key, at).await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for call in calls {
        answers.push(call.await.unwrap());
    }
    assert!(matches!(answers[29], Err(Error::NotFound("record"))));
    assert!(answers[..29].iter().all(Result::is_ok));
    let reads_of = |mine: &identity::MyData| mine.accesses.iter().filter(|x| x.action == "exchange_read").count();
    let me = h.principal("citizen.a").await;
    assert_eq!(reads_of(&h.t.identity.my_data().overview(&me, now).await.unwrap()), 19);
    let other = h.principal("citizen.b").await;
    assert_eq!(reads_of(&h.t.identity.my_data().overview(&other, now).await.unwrap()), 10);
    let p = h.principal("data.ga").await;
    let figures = h.exchange.quality().department_figures(&p.authorize::<ExchangeFigures>().unwrap()).await.unwrap();
    assert_eq!(figures.iter().find(|f| f.department == "公安厅").unwrap().calls_served, 29);
}

/// An agreement's calls per minute hold however many nodes answer them: on PostgreSQL two
/// exchange handles over one database (two nodes) count together; SQLite is one node.
async fn the_agreed_rate_holds_across_nodes(t: TestDb) {
    let h = hub(t).await;
    let agreement = h
        .request(
            "data.mz",
            json!({"registry": "population", "fields": ["birth_date"], "purpose": "高龄津贴资格核对",
            "legal_basis": "《老年人权益保障法》", "valid_days": 365, "rate_per_minute": 3}),
        )
        .await;
    let client = h.client("990000-MZ", "CN/GOV/990000-MZ/gaoling").await;
    let second = Exchange::new(h.t.db.clone(), h.t.identity.clone(), &MasterKey::from_bytes(h.t.key));
    let postgres = h.t.db.backend == kernel::db::Backend::Postgres;
    let nodes = [&h.exchange, if postgres { &second } else { &h.exchange }];
    let now = t0();
    for i in 0..3 {
        nodes[i % 2].sharing().read(&client, &agreement.id, ID_A, now).await.unwrap();
    }
    for node in nodes {
        let refused = node.sharing().read(&client, &agreement.id, ID_A, now + Duration::seconds(30)).await;
        assert!(matches!(refused, Err(Error::RateLimited)), "{refused:?}");
    }
    // The next minute starts afresh.
    nodes[1].sharing().read(&client, &agreement.id, ID_A, now + Duration::seconds(60)).await.unwrap();
}
