//! Service tests of the data exchange, each run on SQLite and on PostgreSQL: registries and
//! their catalog, the sharing-agreement lifecycle, masking per classification, every refusal,
//! verification-only answers with receipts, consent taking effect at once, bulk import, and
//! access entries visible to the data subject.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use exchange::{
    AgreementRequest, AgreementStatus, Decision, Error, Exchange, ExchangeClient, ImportMode, Predicate, Table,
};
use identity::{self, AccountKind, NewAccount, Principal, Profile};
use kernel::authz::{ExchangeFigures, RegistryManage, SharingDecide, SharingRequest};
use kernel::error::ErrorCode;
use kernel::secrets::{MasterKey, SecretString};
use serde_json::{Value, json};
use testkit::{TestDb, on_both_databases};

const PASSWORD: &str = "Spring-Rain-over-Dianchi";
const TOTP: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
const ID_A: &str = "11010519491231002X";
const ID_B: &str = "440524188001010014";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 1, 0, 0).unwrap()
}

struct Hub {
    exchange: Exchange,
    signed_in: testkit::SignedIn,
    t: TestDb,
}

impl Hub {
    async fn principal(&self, username: &str) -> Principal {
        let staff = !username.starts_with("citizen");
        self.signed_in.principal(&self.t.identity, username, PASSWORD, staff.then_some(TOTP), t0()).await
    }

    async fn client(&self, department: &str, name: &str) -> ExchangeClient {
        let cap = self.t.console().grant::<kernel::authz::AccountCreate>();
        let registered = self.exchange.sharing().register_client(&cap, department, name, t0()).await.unwrap();
        self.exchange.sharing().authenticate(name, registered.secret.expose()).await.unwrap()
    }

    async fn request(&self, officer: &str, body: Value) -> exchange::AgreementView {
        let p = self.principal(officer).await;
        let cap = p.authorize::<SharingRequest>().unwrap();
        let req: AgreementRequest = serde_json::from_value(body).unwrap();
        self.exchange.sharing().request_agreement(&cap, req, t0()).await.unwrap()
    }

    /// 民政's unconditional grant of birth dates, and its system.
    async fn elder_allowance(&self) -> (exchange::AgreementView, ExchangeClient) {
        let a = self
            .request(
                "data.mz",
                json!({"registry": "population", "fields": ["birth_date"], "purpose": "高龄津贴资格核对",
                "legal_basis": "《老年人权益保障法》", "valid_days": 365}),
            )
            .await;
        (a, self.client("990000-MZ", "CN/GOV/990000-MZ/gaoling").await)
    }

    async fn decide(&self, officer: &str, id: &str, approve: bool) -> exchange::AgreementView {
        let p = self.principal(officer).await;
        let cap = p.authorize::<SharingDecide>().unwrap();
        let reason = (!approve).then(|| "用途与职责无关".to_string());
        self.exchange.sharing().decide_agreement(&cap, id, Decision { approve, reason }, t0()).await.unwrap()
    }
}

/// The province with GA, MZ, SJ and RS departments, a data officer in each, two residents
/// with accounts, and the demo registries with a few records.
async fn hub(t: TestDb) -> Hub {
    let console = t.console();
    let id = &t.identity;
    let org = console.grant::<kernel::authz::OrganisationManage>();
    let acc = console.grant::<kernel::authz::AccountCreate>();
    let roles = console.grant::<kernel::authz::RoleGrant>();
    let now = t0();
    let mut tx = t.db.begin().await.unwrap();
    id.organisation().create_region(&mut tx, &org, "990000", "云岭省", None, now).await.unwrap();
    id.organisation().create_region(&mut tx, &org, "990100", "春城市", Some("990000"), now).await.unwrap();
    id.organisation().create_region(&mut tx, &org, "990102", "明月区", Some("990100"), now).await.unwrap();
    for (kind, name) in [("GA", "公安厅"), ("MZ", "民政厅"), ("SJ", "市场监督管理局"), ("RS", "人力资源和社会保障厅")]
    {
        let code = format!("990000-{kind}");
        let d = identity::NewDepartment { code: &code, name, region_code: "990000", kind: Some(kind) };
        id.organisation().create_department(&mut tx, &org, d, now).await.unwrap();
        let created = id
            .accounts()
            .create_account(
                &mut tx,
                &acc,
                NewAccount {
                    kind: Some(AccountKind::Staff),
                    username: format!("data.{}", kind.to_lowercase()),
                    display_name: "数据专员".into(),
                    password: Some(SecretString::new(PASSWORD.into())),
                    totp_secret: Some(identity::mfa::secret_from_base32(TOTP).unwrap()),
                    department_code: Some(code.clone()),
                    ..NewAccount::default()
                },
                now,
            )
            .await
            .unwrap();
        id.accounts().grant_role(&mut tx, &roles, &created.id, "data_officer", now).await.unwrap();
    }
    for (username, id_number) in [("citizen.a", ID_A), ("citizen.b", ID_B)] {
        id.accounts()
            .create_account(
                &mut tx,
                &acc,
                NewAccount {
                    kind: Some(AccountKind::Citizen),
                    username: username.into(),
                    display_name: "王芳".into(),
                    password: Some(SecretString::new(PASSWORD.into())),
                    region_code: Some("990102".into()),
                    profile: Profile::Citizen {
                        real_name: "王芳".into(),
                        id_number: id_number.into(),
                        mobile: "13812345678".into(),
                        address: None,
                    },
                    ..NewAccount::default()
                },
                now,
            )
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let exchange = Exchange::new(t.db.clone(), t.identity.clone(), &MasterKey::from_bytes(t.key));
    let manage = console.grant::<RegistryManage>();
    let specs = tongban::demo::registry_specs().unwrap();
    assert_eq!(specs.len(), 4);
    for spec in specs {
        exchange.registries().publish_registry(&manage, spec, now).await.unwrap();
    }
    let people = [
        json!({"id_number": ID_A, "name": "王芳", "sex": "2", "birth_date": "1949-12-31", "region_code": "990102",
               "address": "春城市明月区东风街道8号", "mobile": "13812345678", "fingerprint_ref": "FP-1"}),
        json!({"id_number": ID_B, "name": "李强", "sex": "1", "birth_date": "1880-01-01", "region_code": "990102"}),
    ];
    for p in people {
        exchange.registries().put_record(&manage, "population", None, p, now).await.unwrap();
    }
    exchange
        .registries()
        .put_record(
            &manage,
            "marriage",
            None,
            json!({"id_number": ID_A, "status": "married", "registered_on": "1970-05-01",
            "spouse_name": "张伟", "certificate_no": "J990102-1970-000123"}),
            now,
        )
        .await
        .unwrap();
    exchange
        .registries()
        .put_record(
            &manage,
            "legal_entities",
            None,
            json!({"credit_code": "91530100MA6K8XXX1Q", "name": "滇红茶业有限公司",
            "legal_representative": "张三", "registered_capital": 500, "status": "存续"}),
            now,
        )
        .await
        .unwrap();
    Hub { exchange, signed_in: Default::default(), t }
}

fn refusal(e: Error) -> &'static str {
    match e {
        Error::Refused { code, .. } => code.as_str(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

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

/// A minimal HTTP receiver: every request's headers (lower-cased) and body, answered 204.
async fn receiver() -> (u16, std::sync::Arc<tokio::sync::Mutex<Vec<(Vec<(String, String)>, String)>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(tokio::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut raw = Vec::new();
            let mut buf = [0u8; 4096];
            let (head, body) = loop {
                let n = socket.read(&mut buf).await.unwrap();
                raw.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&raw).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| l.to_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    if body.len() >= length || n == 0 {
                        break (head.to_string(), body.to_string());
                    }
                }
            };
            let headers = head
                .lines()
                .skip(1)
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
                .collect();
            log.lock().await.push((headers, body));
            let _ =
                socket.write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
        }
    });
    (port, seen)
}

/// Consent given, withdrawn or signed is delivered to the webhooks subscribed to it, signed
/// with their secret; a disabled or deleted webhook hears nothing; bad subscriptions are
/// refused with the field named.
async fn consent_events_reach_webhooks(t: TestDb) {
    let console = t.console();
    use hmac::{Hmac, Mac};
    let h = hub(t).await;
    let now = t0();
    let admin = console.grant::<kernel::authz::ConsentManage>();
    let (port, seen) = receiver().await;
    let url = format!("http://127.0.0.1:{port}/consent-events");
    let secret = "receiver-shared-secret-2026";
    for (body, field) in [
        (json!({"payloadUrl": "https://x.example/hook", "secretKey": secret}), "payloadUrl"),
        (json!({"payloadUrl": "ftp://x", "secretKey": secret}), "payloadUrl"),
        (json!({"payloadUrl": url, "secretKey": "short"}), "secretKey"),
        (json!({"payloadUrl": url}), "secretKey"),
        (json!({"payloadUrl": url, "secretKey": secret, "subscribedEvents": ["consent.eaten"]}), "subscribedEvents"),
        (json!({"payloadUrl": url, "secretKey": secret, "contentType": "text/xml"}), "contentType"),
    ] {
        match h.exchange.webhooks().put_webhook(&admin, None, &body, now).await {
            Err(Error::Invalid { field: f, .. }) => assert_eq!(f, field, "{body}"),
            other => panic!("{body} was not refused: {other:?}"),
        }
    }
    assert!(matches!(
        h.exchange
            .webhooks()
            .put_webhook(&admin, Some("nope"), &json!({"payloadUrl": url, "secretKey": secret}), now)
            .await,
        Err(Error::NotFound(_))
    ));
    let (hook, revision) = h
        .exchange
        .webhooks().put_webhook(
            &admin,
            None,
            &json!({"payloadUrl": url, "secretKey": secret, "subscribedEvents": ["consent.allowed", "consent.disallowed"]}),
            now,
        )
        .await
        .unwrap();
    assert_eq!(hook["secretKey"], "********", "the secret is never shown again");
    assert_eq!(revision["schemaName"], "Webhook");
    let hook_id = hook["id"].as_str().unwrap().to_string();
    let (port_off, seen_off) = receiver().await;
    h.exchange
        .webhooks()
        .put_webhook(
            &admin,
            None,
            &json!({"payloadUrl": format!("http://127.0.0.1:{port_off}/"), "secretKey": secret, "disabled": true}),
            now,
        )
        .await
        .unwrap();
    assert_eq!(h.exchange.webhooks().list(&admin).await.unwrap().len(), 2);

    let a = h
        .request(
            "data.rs",
            json!({"registry": "population", "fields": ["mobile"], "purpose": "就业援助回访",
            "legal_basis": "本人同意", "valid_days": 180, "consent_required": true}),
        )
        .await;
    h.decide("data.ga", &a.id, true).await;
    let me = h.principal("citizen.a").await;
    let ask = h
        .exchange
        .consent()
        .my_consents(&me, now)
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.purpose == "就业援助回访")
        .unwrap();
    h.exchange.consent().set_my_consent(&me, &ask.data_agreement, true, now).await.unwrap();
    h.exchange.consent().set_my_consent(&me, &ask.data_agreement, false, now).await.unwrap();
    let deliver = || tongban::delivery::deliver(&h.t.db, None, &h.t.identity, &h.exchange, now);
    assert_eq!(deliver().await.unwrap(), 2, "two events, for the enabled webhook only");
    let got = seen.lock().await.clone();
    assert_eq!(got.len(), 2);
    for ((headers, body), event, opt_in) in
        got.iter().zip(["consent.allowed", "consent.disallowed"]).map(|(g, e)| (g, e, e == "consent.allowed"))
    {
        let header = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
        assert_eq!(header("x-tongban-event"), event);
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body.as_bytes());
        assert_eq!(header("x-tongban-signature"), format!("sha256={}", hex::encode(mac.finalize().into_bytes())));
        let v: Value = serde_json::from_str(body).unwrap();
        assert_eq!((v["event"].as_str(), v["data"]["optIn"].as_bool()), (Some(event), Some(opt_in)), "{v}");
        assert_eq!(v["data"]["dataAgreementId"], ask.data_agreement.as_str());
    }
    assert!(seen_off.lock().await.is_empty(), "a disabled webhook hears nothing");
    assert_eq!(deliver().await.unwrap(), 0, "each event is delivered once");

    h.exchange.webhooks().delete_webhook(&admin, &hook_id, now).await.unwrap();
    h.exchange.consent().set_my_consent(&me, &ask.data_agreement, true, now).await.unwrap();
    deliver().await.unwrap();
    assert_eq!(seen.lock().await.len(), 2, "a deleted webhook hears nothing more");
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

async fn bulk_import_reports_bad_rows(t: TestDb) {
    let h = hub(t).await;
    let now = t0();
    let p = h.principal("data.ga").await;
    let cap = p.authorize::<RegistryManage>().unwrap();
    // Headers by field name or Chinese title; row 3 has a bad sex code, row 4 a bad date.
    let csv = "\u{feff}公民身份号码,姓名,sex,出生日期,region_code\n\
               530102199001011234,赵一,1,1990-01-01,530102\n\
               530102199001011235,钱二,7,1990-01-01,530102\n\
               530102199001011236,孙三,2,1990-13-01,530102\n\
               530102199001011237,李四,2,1990-02-01,530102\n";
    let table = Table::read(csv.as_bytes().to_vec()).unwrap();
    let none = h
        .exchange
        .imports()
        .import(&cap, "population", "people.csv", table, ImportMode::AllOrNothing, now, &|_, _| {})
        .await
        .unwrap();
    assert_eq!((none.status.as_str(), none.imported, none.rejected), ("failed", 0, 2));
    let rows: Vec<(u64, &str)> = none.errors.iter().map(|e| (e.row, e.column.as_str())).collect();
    assert_eq!(rows, vec![(3, "sex"), (4, "birth_date")]);
    let seen = std::sync::Mutex::new(Vec::new());
    let table = Table::read(csv.as_bytes().to_vec()).unwrap();
    let some = h
        .exchange
        .imports()
        .import(&cap, "population", "people.csv", table, ImportMode::SkipBadRows, now, &|done, total| {
            seen.lock().unwrap().push((done, total))
        })
        .await
        .unwrap();
    assert_eq!((some.status.as_str(), some.imported, some.rejected, some.total_rows), ("done", 2, 2, 4));
    assert_eq!(seen.lock().unwrap().last(), Some(&(4, 4)));
    let status = h.exchange.imports().import_status(&cap, &some.id).await.unwrap();
    assert_eq!((status.status.as_str(), status.imported, status.percent()), ("done", 2, 100));
    // An import whose node stopped before it finished reads as interrupted; row errors that
    // do not read are a fault, not an empty list.
    let alter = |sql: &'static str| {
        let (pool, id) = (h.t.db.pool.clone(), some.id.clone());
        async move { sqlx::query(sql).bind(id).execute(&pool).await.unwrap() }
    };
    alter("UPDATE registry_imports SET status = 'running', finished_at = NULL WHERE id = $1").await;
    let stopped = h.exchange.imports().import_status(&cap, &some.id).await.unwrap();
    assert_eq!(stopped.status, exchange::ImportStatus::Interrupted);
    alter("UPDATE registry_imports SET errors = 'not a list' WHERE id = $1").await;
    let unreadable = h.exchange.imports().import_status(&cap, &some.id).await;
    assert!(matches!(unreadable, Err(Error::Internal(_))), "{unreadable:?}");
    let found = h.exchange.registries().records_by_key(&cap, "population", "530102199001011237", now).await.unwrap();
    assert_eq!(found[0].values["name"], json!("李四"));
    // Unknown columns are refused before anything is read; so is another department.
    let table = Table::read(b"id_number,shoe_size\n1,2\n".to_vec()).unwrap();
    let e = h
        .exchange
        .imports()
        .import(&cap, "population", "x.csv", table, ImportMode::SkipBadRows, now, &|_, _| {})
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Invalid { field: "file", .. }), "{e:?}");
    let mz = h.principal("data.mz").await;
    let table = Table::read(csv.as_bytes().to_vec()).unwrap();
    let e = h
        .exchange
        .imports()
        .import(
            &mz.authorize::<RegistryManage>().unwrap(),
            "population",
            "x.csv",
            table,
            ImportMode::SkipBadRows,
            now,
            &|_, _| {},
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Denied(_)), "{e:?}");
    // Quality: the rejected rows and the records are counted.
    let q = h.exchange.quality().report(&p.authorize::<ExchangeFigures>().unwrap(), now).await.unwrap();
    let pop = q.iter().find(|r| r.code == "population").unwrap();
    assert_eq!((pop.records, pop.validation_failures, pop.duplicate_candidates), (4, 4, 0));
    assert!(pop.fresh);
    let mobile = pop.completeness.iter().find(|f| f.field == "mobile").unwrap();
    assert!((mobile.percent - 25.0).abs() < 0.01, "{}", mobile.percent);
    // An XLSX workbook (its first sheet): numeric cells become text where the schema says
    // text; the bad sex code of row 3 is reported.
    let table = Table::read(include_bytes!("fixtures/people.xlsx").to_vec()).unwrap();
    let xlsx = h
        .exchange
        .imports()
        .import(&cap, "population", "people.xlsx", table, ImportMode::SkipBadRows, now, &|_, _| {})
        .await
        .unwrap();
    assert_eq!((xlsx.status.as_str(), xlsx.imported, xlsx.rejected), ("done", 1, 1));
    assert_eq!(xlsx.errors.iter().map(|e| (e.row, e.column.as_str())).collect::<Vec<_>>(), vec![(3, "sex")]);
    let found = h.exchange.registries().records_by_key(&cap, "population", "530102199001011240", now).await.unwrap();
    assert_eq!(
        (found[0].values["name"].clone(), found[0].values["region_code"].clone()),
        (json!("周五"), json!("530102"))
    );
}

async fn registry_publication_is_checked(t: TestDb) {
    let h = hub(t).await;
    let p = h.principal("data.mz").await;
    let cap = p.authorize::<RegistryManage>().unwrap();
    let mut spec = tongban::demo::registry_specs().unwrap().remove(0);
    // The civil-affairs officer cannot publish the public-security registry.
    let e = h.exchange.registries().publish_registry(&cap, spec.clone(), t0()).await.unwrap_err();
    assert!(matches!(e, Error::Denied(_)), "{e:?}");
    spec.department = "990000-MZ".into();
    spec.code = "population_copy".into();
    spec.fields.retain(|f| f.name != "mobile");
    let e = h.exchange.registries().publish_registry(&cap, spec.clone(), t0()).await.unwrap_err();
    assert!(matches!(e, Error::Invalid { field: "fields", .. }), "{e:?}");
    // A record that does not fit its schema is refused with the field.
    let ga = h.principal("data.ga").await;
    let e = h
        .exchange
        .registries()
        .put_record(&ga.authorize::<RegistryManage>().unwrap(), "population", None, json!({"id_number": "x"}), t0())
        .await
        .unwrap_err();
    let Error::Record(rows) = e else { panic!("{e:?}") };
    assert!(rows.iter().any(|r| r.column == "id_number"));
    assert!(rows.iter().any(|r| r.column == "name"));
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

on_both_databases!(
    the_agreed_rate_holds_across_nodes,
    agreement_lifecycle,
    masking_per_level,
    verification_only,
    consent_takes_effect_at_once,
    consent_events_reach_webhooks,
    access_entries_reach_the_data_subject,
    concurrent_calls_each_leave_their_entry,
    bulk_import_reports_bad_rows,
    registry_publication_is_checked,
);
