//! Service tests of the one-stop service hall, each run on SQLite and on PostgreSQL: the
//! catalog, applications through their workflows, the inbox, bundles, assisted submission,
//! certificates and ratings.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use identity::{self, AccountKind, NewAccount, Principal, Profile};
use kernel::authz::{ApplicationAssist, ApplicationHandle, CertificateRevoke};
use kernel::error::ErrorCode;
use kernel::secrets::{MasterKey, SecretString};
use serde_json::{Value, json};
use services::calendar::WorkingCalendar;
use services::catalog::{BundleSpec, ServiceSpec};
use services::workflow::{Decision, Definition, Phase};
use services::{Confirmation, DueState, Error, InboxFilter, Services, UploadPolicy};
use testkit::{TestDb, on_both_databases};

const PASSWORD: &str = "Spring-Rain-over-Dianchi";
const TOTP: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
/// Born 1949-12-31: 76 on the test day.
const ID_A: &str = "11010519491231002X";

/// A Saturday morning would make deadlines odd; this is a Monday.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 1, 0, 0).unwrap()
}

struct Hall {
    services: Services,
    signed_in: testkit::SignedIn,
    _uploads: tempfile::TempDir,
    t: TestDb,
}

impl Hall {
    async fn principal(&self, username: &str) -> Principal {
        let staff = username.contains('.') && !username.starts_with("citizen");
        self.signed_in.principal(&self.t.identity, username, PASSWORD, staff.then_some(TOTP), t0()).await
    }
}

fn form_schema(extra: Value) -> Value {
    let mut properties = json!({
        "applicant_name": {"type": "string", "minLength": 1, "maxLength": 50, "title": "申请人姓名", "x-title-en": "Name",
                           "x-prefill": "profile.name", "x-prefill-editable": false},
        "id_number": {"type": "string", "pattern": "^[0-9]{17}[0-9X]$", "title": "公民身份号码", "x-title-en": "ID number",
                      "x-prefill": "profile.id_number", "x-prefill-editable": false, "x-sensitive": true},
        "mobile": {"type": "string", "title": "手机号码", "x-title-en": "Mobile", "x-prefill": "profile.mobile", "x-sensitive": true},
        "monthly_income": {"type": "number", "minimum": 0, "title": "家庭月收入", "x-title-en": "Monthly income", "x-sensitive": true},
        "amount": {"type": "integer", "minimum": 1, "maximum": 5000, "title": "申请金额", "x-title-en": "Amount"},
        "agree": {"type": "boolean", "const": true, "title": "承诺属实", "x-title-en": "I declare"}
    });
    if let (Some(p), Some(e)) = (properties.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    let fields: Vec<String> = properties.as_object().unwrap().keys().cloned().collect();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": false,
        "required": ["applicant_name", "id_number", "monthly_income", "amount", "agree"],
        "properties": properties,
        "x-layout": [{"title_zh": "申请", "title_en": "Application", "fields": fields}]
    })
}

fn spec(code: &str, department: &str, workflow: &str, certificate: Option<&str>, form: Value) -> ServiceSpec {
    serde_json::from_value(json!({
        "code": code, "name_zh": format!("测试事项{code}"), "name_en": format!("Test service {code}"),
        "department": department, "level": "district", "audience": "citizen",
        "category_zh": "社会救助", "category_en": "Social assistance", "events": ["social_assistance"],
        "legal_basis": "《社会救助暂行办法》", "conditions_zh": "本区户籍居民", "conditions_en": "Residents",
        "materials": [], "statutory_days": 20, "committed_days": 10, "handling": "promise",
        "fee_zh": "不收费", "fee_en": "Free", "fee_yuan": 0, "channels": ["online", "window"], "visits": 0,
        "depth": "online", "workflow": workflow,
        "certificate": certificate.map(|t| json!({"type": t, "name_zh": "救助决定书", "name_en": "Decision",
            "valid_years": 1, "fields": ["applicant_name", "amount"]})),
        "form": form
    }))
    .unwrap()
}

/// Two districts with MZ and WJ departments, staff, two residents and a small catalog.
async fn hall(t: TestDb) -> Hall {
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
        for (kind, dept) in [("MZ", "民政局"), ("WJ", "卫生健康局")] {
            let code = format!("{district}-{kind}");
            let name = format!("{name}{dept}");
            let d = identity::NewDepartment { code: &code, name: &name, region_code: district, kind: Some(kind) };
            id.organisation().create_department(&mut tx, &org, d, now).await.unwrap();
        }
    }
    let staff = [
        ("clerk.mingyue", "990102-MZ", "window_clerk"),
        ("clerk2.mingyue", "990102-MZ", "window_clerk"),
        ("approver.mingyue", "990102-MZ", "approver"),
        ("leader.mingyue", "990102-MZ", "leader"),
        ("wj.mingyue", "990102-WJ", "approver"),
        ("clerk.qinghu", "990103-MZ", "window_clerk"),
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
                    display_name: "工作人员".into(),
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
    for (username, region, id_number) in
        [("citizen.a", "990102001", ID_A), ("citizen.b", "990103001", "440524188001010014")]
    {
        id.accounts()
            .create_account(
                &mut tx,
                &acc,
                NewAccount {
                    kind: Some(AccountKind::Citizen),
                    username: username.into(),
                    display_name: "王芳".into(),
                    password: Some(SecretString::new(PASSWORD.into())),
                    region_code: Some(region.into()),
                    profile: Profile::Citizen {
                        real_name: "王芳".into(),
                        id_number: id_number.into(),
                        mobile: "13812345678".into(),
                        address: Some("春城市明月区东风街道8号".into()),
                    },
                    ..NewAccount::default()
                },
                now,
            )
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();

    let uploads = tempfile::tempdir().unwrap();
    let services = Services::new(
        t.db.clone(),
        t.identity.clone(),
        MasterKey::from_bytes(t.key),
        WorkingCalendar::default(),
        UploadPolicy { dir: uploads.path().to_path_buf(), max_bytes: 1024 * 1024, scan_command: None },
    );
    let manage = console.grant::<kernel::authz::ServiceManage>();
    for w in tongban::demo::builtin_workflows() {
        services.publish_workflow(&manage, Definition::from_json(&w.to_string()).unwrap(), now).await.unwrap();
    }
    // Residents 75 and over get the allowance without review: an automatic action.
    let mut elderly = tongban::demo::builtin_workflows()[1].clone();
    elderly["code"] = json!("elderly");
    elderly["actions"].as_array_mut().unwrap().push(json!({"id": "auto_approve", "from": "review", "to": "approved",
        "automatic": true, "guard": {"compare": ["age", ">=", 75]}}));
    services.publish_workflow(&manage, Definition::from_json(&elderly.to_string()).unwrap(), now).await.unwrap();
    let age = json!({"age": {"type": "integer", "title": "年龄", "x-title-en": "Age", "x-prefill": "profile.age", "x-prefill-editable": false}});
    for s in [
        spec("TSMZ0001", "MZ", "standard", Some("assistance_decision"), form_schema(json!({}))),
        spec("TSMZ0002", "MZ", "elderly", None, form_schema(age)),
        spec("TSWJ0001", "WJ", "standard", None, form_schema(json!({}))),
    ] {
        services.publish_service(&manage, None, s, now).await.unwrap();
    }
    let bundle: BundleSpec = serde_json::from_value(json!({
        "code": "TSBD0001", "name_zh": "测试一件事", "name_en": "Test bundle", "events": [], "audience": "citizen",
        "description_zh": "两个部门并联审批", "description_en": "Two departments in parallel",
        "services": ["TSMZ0001", "TSWJ0001"]
    }))
    .unwrap();
    services.publish_bundle(&manage, bundle, now).await.unwrap();
    services.publish_bundle_workflow(&manage, "TSBD0001", now).await.unwrap();
    Hall { services, signed_in: Default::default(), _uploads: uploads, t }
}

fn good_form() -> Value {
    json!({"monthly_income": 1200.5, "amount": 800, "agree": true})
}

fn handle(p: &Principal) -> identity::Capability<ApplicationHandle> {
    p.authorize::<ApplicationHandle>().unwrap()
}

async fn demo_catalog_publishes_and_search_finds_services(t: TestDb) {
    let console = t.console();
    let h = hall(t).await;
    let (services, bundles) = tongban::demo::publish_catalog(&h.services, &console, t0()).await.unwrap();
    assert!(services >= 30, "{services} demo services");
    assert_eq!(bundles, 2);
    let names =
        |v: Vec<services::catalog::ServiceSummary>| -> Vec<String> { v.into_iter().map(|s| s.name_zh).collect() };
    assert_eq!(names(h.services.search("身份证", 5).await.unwrap()).first().unwrap(), "居民身份证换领");
    assert!(names(h.services.search("csdj", 5).await.unwrap()).contains(&"出生登记".to_string()));
    assert!(names(h.services.search("营业执照 个体", 10).await.unwrap()).contains(&"个体工商户设立登记".to_string()));
    // Publishing again changes nothing: every service keeps version 1.
    tongban::demo::publish_catalog(&h.services, &console, t0()).await.unwrap();
    assert_eq!(h.services.service("YLMZ0001").await.unwrap().version, 1);
    // A changed service gets a new version; the public sees only that one.
    let manage = console.grant::<kernel::authz::ServiceManage>();
    let mut s = (*h.services.service("YLMZ0001").await.unwrap().spec).clone();
    s.committed_days = 3;
    let published = h.services.publish_service(&manage, None, s, t0()).await.unwrap();
    assert_eq!(published.version, 2);
    assert_eq!(h.services.service("YLMZ0001").await.unwrap().spec.committed_days, 3);
    let births = services::CatalogQuery { event: Some("birth".into()), ..Default::default() };
    assert!(names(h.services.find(&births).await.unwrap()).contains(&"出生登记".to_string()));
    // The catalog's rules hold for every caller: a search text and a filter narrow together,
    // and an overlong text is refused rather than cut.
    let searched = services::CatalogQuery { text: "登记".into(), event: Some("birth".into()), ..Default::default() };
    let found = names(h.services.find(&searched).await.unwrap());
    assert!(found.contains(&"出生登记".to_string()) && found.iter().all(|n| n != "个体工商户设立登记"), "{found:?}");
    let long = services::CatalogQuery { text: "证".repeat(101), ..Default::default() };
    assert!(matches!(h.services.find(&long).await, Err(Error::Invalid { .. })));
}

async fn a_case_goes_through_supplement_approval_certificate_and_rating(t: TestDb) {
    let h = hall(t).await;
    let s = &h.services;
    let citizen = h.principal("citizen.a").await;
    let now = t0();
    // The name is prefilled and locked: what the applicant sends for it is ignored.
    let mut data = good_form();
    data["applicant_name"] = json!("李四");
    let app = s.intake().submit(&citizen, "TSMZ0001", data, &[], now).await.unwrap();
    assert_eq!(app.status, Phase::Submitted);
    assert!(app.number.starts_with("YL-20261123-"), "{}", app.number);
    assert_eq!(app.form["applicant_name"], json!("王芳"));
    assert_eq!(app.form["id_number"], json!(ID_A));
    assert_eq!(app.prefill["id_number"]["source"], json!("profile.id_number"));
    // Sensitive values are stored sealed.
    let raw: String =
        sqlx::query_scalar("SELECT COALESCE(sealed_form, '') || form_body FROM applications WHERE id = $1")
            .bind(&app.id)
            .fetch_one(&h.t.db.pool)
            .await
            .unwrap();
    assert!(!raw.contains(ID_A) && !raw.contains("1200.5"), "{raw}");

    // The clerk of another district does not see it; the local clerk does.
    let other = h.principal("clerk.qinghu").await;
    assert_eq!(s.casework().inbox(&handle(&other), &InboxFilter::default(), now).await.unwrap().counts.total, 0);
    assert!(s.casework().act(&handle(&other), &app.id, "accept", None, now).await.is_err());
    let clerk = h.principal("clerk.mingyue").await;
    let inbox = s.casework().inbox(&handle(&clerk), &InboxFilter::default(), now).await.unwrap();
    assert_eq!(inbox.counts.total, 1);
    assert_eq!(inbox.items[0].number, app.number);
    // An approver has nothing to do at intake.
    let approver = h.principal("approver.mingyue").await;
    assert!(matches!(s.casework().act(&handle(&approver), &app.id, "accept", None, now).await, Err(Error::Denied(_))));

    // 补正: once, with the list of what is missing.
    assert!(matches!(
        s.casework().act(&handle(&clerk), &app.id, "request_supplement", None, now).await,
        Err(Error::Invalid { field: "comment", .. })
    ));
    let back =
        s.casework().act(&handle(&clerk), &app.id, "request_supplement", Some("请补充收入证明"), now).await.unwrap();
    assert_eq!(back.status, Phase::Supplement);
    let mine = s.my_cases().my_application(&citizen, &app.number).await.unwrap();
    assert_eq!(mine.supplement_note.as_deref(), Some("请补充收入证明"));
    assert!(mine.actions.contains(&"resubmit".to_string()));
    let bad = s.my_cases().resubmit(&citizen, &app.id, json!({"amount": 99999, "agree": true}), now).await;
    let Err(Error::Form(errors)) = bad else { panic!("expected form errors") };
    assert!(errors.iter().any(|e| e.field == "amount" && e.message_zh.contains("5000")));
    assert!(errors.iter().any(|e| e.field == "monthly_income" && e.message_en.contains("required")));
    let again = s.my_cases().resubmit(&citizen, &app.id, good_form(), now).await.unwrap();
    assert_eq!(again.status, Phase::Submitted);
    let second = s.casework().act(&handle(&clerk), &app.id, "request_supplement", Some("再补"), now).await;
    assert!(matches!(second, Err(Error::Conflict { code: ErrorCode::SupplementAlreadyRequested, .. })));

    let reviewing = s.casework().act(&handle(&clerk), &app.id, "accept", Some("材料齐全"), now).await.unwrap();
    assert_eq!(reviewing.status, Phase::InReview);
    assert_eq!(s.casework().inbox(&handle(&clerk), &InboxFilter::default(), now).await.unwrap().counts.total, 0);
    assert_eq!(s.casework().inbox(&handle(&approver), &InboxFilter::default(), now).await.unwrap().counts.total, 1);
    // Staff reading the case is recorded as a use of the applicant's data.
    let seen = s.casework().case_for_staff(&handle(&approver), &app.number, now).await.unwrap();
    assert_eq!(seen.actions, vec!["approve".to_string(), "reject".to_string()]);
    let done = s.casework().act(&handle(&approver), &app.id, "approve", None, now).await.unwrap();
    assert_eq!(done.status, Phase::Completed);
    let steps: Vec<&str> = done.timeline.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(steps, ["submit", "request_supplement", "resubmit", "accept", "approve", "complete"]);
    let mut indexes: Vec<i64> = done.timeline.iter().map(|e| e.ledger_index).collect();
    indexes.dedup();
    assert_eq!(indexes.len(), 6, "one ledger entry per transition");
    assert!(s.casework().act(&handle(&approver), &app.id, "approve", None, now).await.is_err());

    // The approval issued a signed certificate that verifies and can be revoked.
    assert_eq!(done.certificates.len(), 1);
    let check = s.certificates().verify_certificate(&done.certificates[0], now).await.unwrap();
    assert!(check.valid && check.signature_valid, "{check:?}");
    assert_eq!(check.holder, "王*");
    let held = s.certificates().my_certificates(&citizen, now).await.unwrap();
    assert_eq!(held[0].fields["amount"], json!(800));
    // Its fields prefill later forms while it is valid.
    let uses_it = services::forms::Form::compile(json!({
        "type": "object",
        "properties": {"granted": {"type": "integer", "title": "已获救助", "x-prefill": "certificate:assistance_decision.amount"}}
    }))
    .unwrap();
    let prefill = s.intake().prefill(&citizen, &uses_it, now).await.unwrap();
    assert_eq!(prefill.values["granted"], json!(800));
    assert_eq!(prefill.sources["granted"], "certificate:assistance_decision.amount");
    // It expires after its validity.
    let later = s.certificates().verify_certificate(&done.certificates[0], now + Duration::days(400)).await.unwrap();
    assert!(later.expired && !later.valid);
    let revoke = approver.authorize::<CertificateRevoke>().unwrap();
    s.certificates().revoke_certificate(&revoke, &done.certificates[0], "发现虚假材料", now).await.unwrap();
    assert!(s.certificates().verify_certificate(&done.certificates[0], now).await.unwrap().revoked);
    assert!(
        s.intake().prefill(&citizen, &uses_it, now).await.unwrap().values.is_empty(),
        "a revoked certificate prefills nothing"
    );

    // Every change reached the applicant.
    let notes = s.my_cases().notifications(&citizen, now).await.unwrap();
    assert!(notes.iter().any(|n| n.text_zh.contains("待补正")));
    assert!(notes.iter().any(|n| n.text_zh.contains("已办结")));

    // 好差评: a bad rating needs a reason and opens a rectification task answered to the applicant.
    assert!(matches!(s.ratings().rate(&citizen, &app.id, 2, None, now).await, Err(Error::Invalid { .. })));
    s.ratings().rate(&citizen, &app.id, 2, Some("等待时间太长"), now).await.unwrap();
    assert!(matches!(
        s.ratings().rate(&citizen, &app.id, 5, None, now).await,
        Err(Error::Conflict { code: ErrorCode::AlreadyRated, .. })
    ));
    let inbox = s.casework().inbox(&handle(&clerk), &InboxFilter::default(), now).await.unwrap();
    assert_eq!(inbox.items.iter().filter(|i| i.kind == services::TaskKind::Rectification).count(), 1);
    s.ratings().answer_rating(&handle(&clerk), &app.id, "已优化窗口排班，感谢监督", now).await.unwrap();
    let rated = s.my_cases().my_application(&citizen, &app.id).await.unwrap();
    assert_eq!(rated.rating.unwrap().reply.as_deref(), Some("已优化窗口排班，感谢监督"));
    assert!(s.my_cases().notifications(&citizen, now).await.unwrap().iter().any(|n| n.text_zh.contains("整改答复")));

    // Someone else's case number is simply not found.
    let stranger = h.principal("citizen.b").await;
    assert!(matches!(s.my_cases().my_application(&stranger, &app.number).await, Err(Error::NotFound(_))));
    assert!(matches!(s.my_cases().withdraw(&stranger, &app.id, now).await, Err(Error::NotFound(_))));
}

/// Submissions made at once are written together (one group commit): each case has its own
/// consecutive number, its history row on the ledger, its task and its notification.
async fn concurrent_submissions_each_get_their_own_case(t: TestDb) {
    let h = hall(t).await;
    let citizen = h.principal("citizen.a").await;
    let now = t0();
    let submissions: Vec<_> = (0..24)
        .map(|_| {
            let (s, citizen) = (h.services.clone(), citizen.clone());
            tokio::spawn(async move { s.intake().submit(&citizen, "TSMZ0001", good_form(), &[], now).await })
        })
        .collect();
    let mut cases = Vec::new();
    for s in submissions {
        cases.push(s.await.unwrap().unwrap());
    }
    let mut numbers: Vec<u32> = cases.iter().map(|c| c.number.rsplit('-').next().unwrap().parse().unwrap()).collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=24).collect::<Vec<u32>>(), "consecutive and distinct");
    let mut indexes: Vec<i64> = cases.iter().map(|c| c.timeline[0].ledger_index).collect();
    indexes.sort_unstable();
    indexes.dedup();
    assert_eq!(indexes.len(), 24, "one ledger entry each");
    for c in &cases {
        assert_eq!((c.timeline.len(), c.status), (1, Phase::Submitted));
        assert_eq!(c.form["id_number"], json!(ID_A), "the sealed value answers opened");
        // The answer built from what was written is what reading the case back shows.
        let stored = h.services.my_cases().my_application(&citizen, &c.id).await.unwrap();
        assert_eq!(serde_json::to_value(c).unwrap(), serde_json::to_value(&stored).unwrap());
    }
    let clerk = h.principal("clerk.mingyue").await;
    assert_eq!(
        h.services.casework().inbox(&handle(&clerk), &InboxFilter::default(), now).await.unwrap().counts.total,
        24
    );
    let notes: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM notifications WHERE application_id IS NOT NULL")
        .fetch_one(&h.t.db.pool)
        .await
        .unwrap();
    assert_eq!(notes, 24);
}

async fn a_bundle_goes_to_both_departments_and_stops_at_a_rejection(t: TestDb) {
    let h = hall(t).await;
    let s = &h.services;
    let citizen = h.principal("citizen.a").await;
    let now = t0();
    let (_, form) = s.intake().bundle_form("TSBD0001").await.unwrap();
    assert_eq!(form.sections.len(), 1, "shared fields appear once");
    for outcome in ["approve", "reject"] {
        let app = s.intake().submit_bundle(&citizen, "TSBD0001", good_form(), now).await.unwrap();
        assert_eq!(app.bundle.as_deref(), Some("TSBD0001"));
        let clerk = h.principal("clerk.mingyue").await;
        let app = s.casework().act(&handle(&clerk), &app.id, "accept", None, now).await.unwrap();
        assert_eq!(app.branches.len(), 2);
        let mz = h.principal("approver.mingyue").await;
        let wj = h.principal("wj.mingyue").await;
        assert_eq!(s.casework().inbox(&handle(&wj), &InboxFilter::default(), now).await.unwrap().counts.total, 1);
        let app = s.casework().act(&handle(&mz), &app.id, "approve", None, now).await.unwrap();
        assert_eq!(app.status, Phase::InReview, "waits for the other department");
        assert_eq!(app.branches["TSMZ0001"], Decision::Approved);
        let comment = (outcome == "reject").then_some("不符合条件");
        let app = s.casework().act(&handle(&wj), &app.id, outcome, comment, now).await.unwrap();
        let expected = if outcome == "approve" { Phase::Completed } else { Phase::Rejected };
        assert_eq!(app.status, expected);
        assert_eq!(s.casework().inbox(&handle(&wj), &InboxFilter::default(), now).await.unwrap().counts.total, 0);
        if outcome == "approve" {
            assert_eq!(app.certificates.len(), 1, "the member that issues one did");
        }
    }
}

async fn automatic_actions_explain_themselves(t: TestDb) {
    let h = hall(t).await;
    let s = &h.services;
    let citizen = h.principal("citizen.a").await;
    let clerk = h.principal("clerk.mingyue").await;
    let now = t0();
    let app = s.intake().submit(&citizen, "TSMZ0002", good_form(), &[], now).await.unwrap();
    assert_eq!(app.form["age"], json!(76));
    let app = s.casework().act(&handle(&clerk), &app.id, "accept", None, now).await.unwrap();
    assert_eq!(app.status, Phase::Completed);
    let auto = app.timeline.iter().find(|e| e.action == "auto_approve").unwrap();
    assert_eq!(auto.actor, "system");
    assert!(auto.explanation.as_deref().unwrap().contains("age = 76 >= 75"), "{:?}", auto.explanation);
}

async fn overdue_tasks_escalate_and_withdrawal_cancels_them(t: TestDb) {
    let h = hall(t).await;
    let s = &h.services;
    let citizen = h.principal("citizen.a").await;
    let now = t0();
    let app = s.intake().submit(&citizen, "TSMZ0001", good_form(), &[], now).await.unwrap();
    let clerk = h.principal("clerk.mingyue").await;
    let leader = h.principal("leader.mingyue").await;
    // Intake has one working day: due soon at once, overdue after it.
    let inbox = s.casework().inbox(&handle(&clerk), &InboxFilter::default(), now).await.unwrap();
    assert_eq!(inbox.items[0].due, DueState::DueSoon);
    assert_eq!(s.casework().inbox(&handle(&leader), &InboxFilter::default(), now).await.unwrap().counts.total, 0);
    let later = now + Duration::days(3);
    let report = s.casework().run_timers(later).await.unwrap();
    assert_eq!((report.warned, report.escalated), (1, 1));
    assert_eq!(s.casework().run_timers(later).await.unwrap().escalated, 0, "escalated once");
    let told = s.my_cases().notifications(&leader, later).await.unwrap();
    assert!(
        told.iter().any(|n| n.application_id.as_deref() == Some(app.id.as_str()) && n.text_en.contains("escalated")),
        "the supervisor is told of the escalation: {told:?}"
    );
    let leader_inbox = s.casework().inbox(&handle(&leader), &InboxFilter::default(), later).await.unwrap();
    assert_eq!(leader_inbox.counts.overdue, 1);
    assert!(leader_inbox.items[0].escalated);
    let overdue = InboxFilter { due: Some(DueState::Overdue), ..InboxFilter::default() };
    assert_eq!(s.casework().inbox(&handle(&clerk), &overdue, later).await.unwrap().items.len(), 1);
    // The supervisor may act on the escalated task.
    let taken = s.casework().case_for_staff(&handle(&leader), &app.id, later).await.unwrap();
    assert!(taken.actions.contains(&"accept".to_string()));
    s.casework().assign(&handle(&clerk), &leader_inbox.items[0].task_id, None, later).await.unwrap();
    let mine = InboxFilter { mine: true, ..InboxFilter::default() };
    assert_eq!(s.casework().inbox(&handle(&clerk), &mine, later).await.unwrap().items.len(), 1);
    // Transfer: only to a colleague of the same department holding the task's role.
    let task_id = &leader_inbox.items[0].task_id;
    let choice = s.casework().transfer_choice(&handle(&clerk), task_id).await.unwrap();
    let clerk2 = h.principal("clerk2.mingyue").await;
    let names: Vec<&str> = choice.colleagues.iter().map(|c| c.account_id.as_str()).collect();
    assert_eq!(names, vec![clerk2.account_id.as_str()], "not the caller, not another role or district");
    let approver = h.principal("approver.mingyue").await;
    assert!(matches!(
        s.casework().assign(&handle(&clerk), task_id, Some(&approver.account_id), later).await,
        Err(Error::Conflict { code: ErrorCode::NotEligible, .. })
    ));
    s.casework().assign(&handle(&clerk), task_id, Some(&clerk2.account_id), later).await.unwrap();
    assert_eq!(s.casework().inbox(&handle(&clerk2), &mine, later).await.unwrap().items.len(), 1);
    assert_eq!(s.casework().inbox(&handle(&clerk), &mine, later).await.unwrap().items.len(), 0);
    let other = h.principal("clerk.qinghu").await;
    assert!(s.casework().transfer_choice(&handle(&other), task_id).await.is_err(), "another district's task");

    let gone = s.my_cases().withdraw(&citizen, &app.id, later).await.unwrap();
    assert_eq!(gone.status, Phase::Withdrawn);
    assert_eq!(s.casework().inbox(&handle(&clerk), &InboxFilter::default(), later).await.unwrap().counts.total, 0);
    assert!(matches!(
        s.my_cases().withdraw(&citizen, &app.id, later).await,
        Err(Error::Conflict { code: ErrorCode::AlreadyDecided, .. })
    ));
    assert!(matches!(
        s.ratings().rate(&citizen, &app.id, 5, None, later).await,
        Err(Error::Conflict { code: ErrorCode::NotFinished, .. })
    ));
}

/// Every node runs the timers once a minute: two nodes passing over the same overdue tasks
/// and missed bookings at the same moment escalate each task once, tell its supervisor once,
/// and record each no-show once.
async fn racing_nodes_deliver_and_fire_timers_once(t: TestDb) {
    let console = t.console();
    let h = hall(t).await;
    let (a, b) = (
        &h.services,
        &Services::new(
            h.t.db.clone(),
            h.t.another_node(),
            MasterKey::from_bytes(h.t.key),
            WorkingCalendar::default(),
            UploadPolicy { dir: h._uploads.path().to_path_buf(), max_bytes: 1024 * 1024, scan_command: None },
        ),
    );
    let now = t0();
    let citizen = h.principal("citizen.a").await;
    h.t.identity.settings().set_notification_email(&citizen, Some("wangfang@example.cn"), now).await.unwrap();
    for _ in 0..6 {
        a.intake().submit(&citizen, "TSMZ0001", good_form(), &[], now).await.unwrap();
    }
    // Both nodes deliver the outbox at once: each message is claimed by one and mailed once.
    let (port, seen) = testkit::fake_smtp().await;
    let mail = kernel::outbox::Mail {
        relay: "127.0.0.1".into(),
        port,
        from: "tongban@gov.example".into(),
        to: vec!["soc@gov.example".into()],
    };
    let key = kernel::secrets::MasterKey::from_bytes(h.t.key);
    let (exchange_a, exchange_b) = (
        exchange::Exchange::new(h.t.db.clone(), h.t.identity.clone(), &key),
        exchange::Exchange::new(h.t.db.clone(), h.t.another_node(), &key),
    );
    let identity_b = h.t.another_node();
    let (sent_a, sent_b) = tokio::join!(
        tongban::delivery::deliver(&h.t.db, Some(&mail), &h.t.identity, &exchange_a, now),
        tongban::delivery::deliver(&h.t.db, Some(&mail), &identity_b, &exchange_b, now),
    );
    assert_eq!(sent_a.unwrap() + sent_b.unwrap(), 6, "six submissions, six mails");
    let transcript = seen.lock().await.clone();
    assert_eq!(transcript.matches("RCPT TO:<wangfang@example.cn>").count(), 6, "each mailed once: {transcript}");
    let hall_spec: services::HallSpec = serde_json::from_value(json!({
        "code": "HALL-R", "name_zh": "明月区政务服务中心", "name_en": "Mingyue centre", "region": "990102",
        "address_zh": "明月区彩云路 18 号", "address_en": "18 Caiyun Road",
        "opening": [["09:00", "12:00"]], "slot_minutes": 30,
        "windows": [{"number": "1", "services": ["TSMZ0001"]}, {"number": "2", "services": ["TSMZ0001"]}]
    }))
    .unwrap();
    a.appointments().publish_hall(&console.grant::<kernel::authz::ServiceManage>(), hall_spec, now).await.unwrap();
    let other = h.principal("citizen.b").await;
    for who in [&citizen, &other] {
        a.appointments().book(who, "HALL-R", "TSMZ0001", at("2026-11-24T01:00:00Z"), now).await.unwrap();
    }

    let later = now + Duration::days(3);
    let (work_a, work_b) = (a.casework(), b.casework());
    let (first, second) = tokio::join!(work_a.run_timers(later), work_b.run_timers(later));
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(first.escalated + second.escalated, 6, "each overdue task escalated by one node: {first:?} {second:?}");
    let leader = h.principal("leader.mingyue").await;
    let told = a.my_cases().notifications(&leader, later).await.unwrap();
    assert_eq!(
        told.iter().filter(|n| n.text_en.contains("escalated")).count(),
        6,
        "the supervisor is told once a task"
    );
    let escalations: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM ledger_entries WHERE log = 'audit' AND action = 'task_escalated'")
            .fetch_one(&h.t.db.pool)
            .await
            .unwrap();
    assert_eq!(escalations, 6, "one audit entry a task");

    let missed = at("2026-11-24T03:00:00Z");
    let (desk_a, desk_b) = (a.appointments(), b.appointments());
    let (first, second) = tokio::join!(desk_a.record_no_shows(missed), desk_b.record_no_shows(missed));
    assert_eq!(first.unwrap().recorded + second.unwrap().recorded, 2, "each missed booking recorded by one node");
    assert_eq!(a.appointments().record_no_shows(missed).await.unwrap().recorded, 0);
}

async fn withdrawing_in_review_tells_the_applicant_once(t: TestDb) {
    let h = hall(t).await;
    let s = &h.services;
    let citizen = h.principal("citizen.a").await;
    let clerk = h.principal("clerk.mingyue").await;
    let now = t0();
    let app = s.intake().submit(&citizen, "TSMZ0001", good_form(), &[], now).await.unwrap();
    s.casework().act(&handle(&clerk), &app.id, "accept", None, now).await.unwrap();
    s.my_cases().notifications(&citizen, now).await.unwrap();
    let gone = s.my_cases().withdraw(&citizen, &app.id, now).await.unwrap();
    assert_eq!(gone.status, Phase::Withdrawn);
    assert_eq!(gone.timeline.last().unwrap().action, "withdraw");
    let unread: Vec<String> = s
        .my_cases()
        .notifications(&citizen, now)
        .await
        .unwrap()
        .into_iter()
        .filter(|n| !n.read)
        .map(|n| n.text_zh)
        .collect();
    assert_eq!(unread.len(), 1, "{unread:?}");
    assert!(unread[0].contains("已撤回"), "{unread:?}");
    let approver = h.principal("approver.mingyue").await;
    assert_eq!(s.casework().inbox(&handle(&approver), &InboxFilter::default(), now).await.unwrap().counts.total, 0);
}

async fn assisted_submission_needs_the_citizens_confirmation(t: TestDb) {
    let h = hall(t).await;
    let s = &h.services;
    let now = t0();
    let clerk = h.principal("clerk.mingyue").await;
    let assist = clerk.authorize::<ApplicationAssist>().unwrap();
    let wrong = s
        .intake()
        .submit_assisted(&assist, ID_A, "TSMZ0001", good_form(), Confirmation::Code("000000".into()), now)
        .await;
    assert!(matches!(wrong, Err(Error::Conflict { code: ErrorCode::InvalidCode, .. })));
    s.intake().send_assist_code(&assist, ID_A, now).await.unwrap();
    let citizen = h.principal("citizen.a").await;
    let note = s
        .my_cases()
        .notifications(&citizen, now)
        .await
        .unwrap()
        .into_iter()
        .find(|n| n.text_zh.contains("确认码"))
        .unwrap();
    let code: String = note.text_zh.chars().filter(char::is_ascii_digit).take(6).collect();
    // A form with mistakes does not use the code up: nothing of that attempt is kept.
    let bad = s
        .intake()
        .submit_assisted(&assist, ID_A, "TSMZ0001", json!({"amount": 0}), Confirmation::Code(code.clone()), now)
        .await;
    assert!(matches!(bad, Err(Error::Form(_))));
    let app = s
        .intake()
        .submit_assisted(&assist, ID_A, "TSMZ0001", good_form(), Confirmation::Code(code.clone()), now)
        .await
        .unwrap();
    assert!(app.assisted);
    assert!(app.timeline[0].actor.contains("帮办"));
    assert!(s.my_cases().my_applications(&citizen).await.unwrap().iter().any(|a| a.id == app.id));
    // A code works once.
    let reuse = s.intake().submit_assisted(&assist, ID_A, "TSMZ0001", good_form(), Confirmation::Code(code), now).await;
    assert!(matches!(reuse, Err(Error::Conflict { code: ErrorCode::InvalidCode, .. })));
    // A clerk of another district cannot serve a resident of this one.
    let other = h.principal("clerk.qinghu").await.authorize::<ApplicationAssist>().unwrap();
    assert!(matches!(
        s.intake().submit_assisted(&other, ID_A, "TSMZ0001", good_form(), Confirmation::Signature, now).await,
        Err(Error::Denied(_))
    ));
}

async fn bad_input_is_refused_without_half_written_cases(t: TestDb) {
    let h = hall(t).await;
    let s = &h.services;
    let citizen = h.principal("citizen.a").await;
    let now = t0();
    assert!(matches!(s.intake().submit(&citizen, "NOPE", good_form(), &[], now).await, Err(Error::NotFound(_))));
    assert!(matches!(
        s.intake().submit(&citizen, "TSMZ0001", json!([1, 2]), &[], now).await,
        Err(Error::Invalid { .. })
    ));
    let Err(Error::Form(errors)) =
        s.intake().submit(&citizen, "TSMZ0001", json!({"amount": "lots", "extra": 1}), &[], now).await
    else {
        panic!("expected form errors")
    };
    assert!(errors.iter().any(|e| e.field == "amount"));
    assert!(errors.iter().any(|e| e.field == "agree"));
    let attach = s.intake().submit(&citizen, "TSMZ0001", good_form(), &["not-a-document".to_string()], now).await;
    assert!(matches!(attach, Err(Error::Invalid { field: "documents", .. })));
    assert!(s.my_cases().my_applications(&citizen).await.unwrap().is_empty(), "nothing half-written");
    // Uploads: the content decides the type; attached once to the uploader's own case.
    assert!(matches!(
        s.documents().upload(&citizen, "photo.jpg", None, b"MZ\x90 not an image", now).await,
        Err(Error::Conflict { code: ErrorCode::UnsupportedFileType, .. })
    ));
    let doc = s.documents().upload(&citizen, "../收入证明.pdf", Some("收入证明"), b"%PDF-1.7 test", now).await.unwrap();
    assert_eq!(doc.filename, "收入证明.pdf");
    let app = s.intake().submit(&citizen, "TSMZ0001", good_form(), std::slice::from_ref(&doc.id), now).await.unwrap();
    assert_eq!(app.documents.len(), 1);
    let again = s.intake().submit(&citizen, "TSMZ0001", good_form(), &[doc.id], now).await;
    assert!(matches!(again, Err(Error::Invalid { field: "documents", .. })));
}

on_both_databases!(
    concurrent_submissions_each_get_their_own_case,
    demo_catalog_publishes_and_search_finds_services,
    a_case_goes_through_supplement_approval_certificate_and_rating,
    a_bundle_goes_to_both_departments_and_stops_at_a_rejection,
    automatic_actions_explain_themselves,
    overdue_tasks_escalate_and_withdrawal_cancels_them,
    withdrawing_in_review_tells_the_applicant_once,
    assisted_submission_needs_the_citizens_confirmation,
    bad_input_is_refused_without_half_written_cases,
    appointments_respect_capacity_and_record_no_shows,
    case_notifications_go_by_email_to_those_who_ask,
    racing_nodes_deliver_and_fire_timers_once,
);

fn at(rfc: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc).unwrap().with_timezone(&Utc)
}

fn conflict(r: Result<impl std::fmt::Debug, Error>) -> &'static str {
    match r {
        Err(Error::Conflict { code, .. }) => code.as_str(),
        other => panic!("expected a conflict, got {other:?}"),
    }
}

async fn appointments_respect_capacity_and_record_no_shows(t: TestDb) {
    let console = t.console();
    let h = hall(t).await;
    let s = &h.services;
    let now = t0();
    let hall_spec: services::HallSpec = serde_json::from_value(json!({
        "code": "HALL-T", "name_zh": "明月区政务服务中心", "name_en": "Mingyue centre", "region": "990102",
        "address_zh": "明月区彩云路 18 号", "address_en": "18 Caiyun Road",
        "opening": [["09:00", "12:00"], ["13:30", "17:00"]], "slot_minutes": 30,
        "windows": [{"number": "1", "services": ["TSMZ0001"]}, {"number": "2", "services": ["TSMZ0001", "TSWJ0001"]}]
    }))
    .unwrap();
    s.appointments().publish_hall(&console.grant::<kernel::authz::ServiceManage>(), hall_spec, now).await.unwrap();
    assert_eq!(s.appointments().halls_for("TSWJ0001", None).await.unwrap().len(), 1);

    let tuesday = chrono::NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
    let slots = s.appointments().slots("HALL-T", "TSWJ0001", tuesday, now).await.unwrap();
    assert_eq!(slots.len(), 13);
    assert!(slots.iter().all(|x| x.capacity == 1 && x.remaining == 1));
    let saturday = chrono::NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
    assert!(
        s.appointments().slots("HALL-T", "TSWJ0001", saturday, now).await.unwrap().is_empty(),
        "closed on days off"
    );

    let a = h.principal("citizen.a").await;
    let b = h.principal("citizen.b").await;
    let nine = at("2026-11-24T01:00:00Z");
    let mine = s.appointments().book(&a, "HALL-T", "TSWJ0001", nine, now).await.unwrap();
    assert_eq!(conflict(s.appointments().book(&b, "HALL-T", "TSWJ0001", nine, now).await), "slot_full");
    assert_eq!(
        conflict(s.appointments().book(&a, "HALL-T", "TSWJ0001", at("2026-11-24T02:00:00Z"), now).await),
        "already_booked"
    );
    assert!(matches!(
        s.appointments().book(&b, "HALL-T", "TSWJ0001", at("2026-11-24T01:10:00Z"), now).await,
        Err(Error::Invalid { field: "start", .. })
    ));
    assert_eq!(
        conflict(s.appointments().book(&b, "HALL-T", "TSWJ0001", at("2026-11-28T01:00:00Z"), now).await),
        "slot_unavailable"
    );
    assert_eq!(
        conflict(s.appointments().book(&b, "HALL-T", "TSWJ0001", at("2026-12-15T01:00:00Z"), now).await),
        "slot_unavailable"
    );
    assert_eq!(s.appointments().slots("HALL-T", "TSWJ0001", tuesday, now).await.unwrap()[0].remaining, 0);

    // Rescheduling frees the old place; the calendar file follows the booking.
    let moved = s.appointments().reschedule(&a, &mine.id, at("2026-11-24T01:30:00Z"), now).await.unwrap();
    assert_eq!(moved.start, at("2026-11-24T01:30:00Z"));
    let theirs = s.appointments().book(&b, "HALL-T", "TSWJ0001", nine, now).await.unwrap();
    let ics = s.appointments().appointment_ics(&a, &mine.id, now).await.unwrap();
    assert!(ics.contains("BEGIN:VEVENT") && ics.contains("DTSTART:20261124T013000Z"), "{ics}");
    assert!(ics.contains("LOCATION:明月区彩云路 18 号"), "{ics}");
    assert!(
        matches!(s.appointments().my_appointment(&b, &mine.id, now).await, Err(Error::NotFound(_))),
        "not someone else's"
    );
    let cancelled = s.appointments().cancel_appointment(&a, &mine.id, now).await.unwrap();
    assert_eq!(cancelled.status, services::AppointmentStatus::Cancelled);
    assert_eq!(
        conflict(s.appointments().reschedule(&a, &mine.id, at("2026-11-24T02:00:00Z"), now).await),
        "appointment_closed"
    );

    // The window sees its day and checks people in; another district cannot.
    let clerk = handle(&h.principal("clerk.mingyue").await);
    let day = s.appointments().hall_day(&clerk, "HALL-T", Some(tuesday), now).await.unwrap();
    assert_eq!(day.len(), 1, "cancelled bookings are not listed");
    assert_eq!(day[0].person.as_deref(), Some("王芳"));
    assert_eq!(
        conflict(s.appointments().check_in(&clerk, &theirs.id, now).await),
        "appointment_closed",
        "only on the day"
    );
    let other = handle(&h.principal("clerk.qinghu").await);
    assert!(matches!(s.appointments().hall_day(&other, "HALL-T", Some(tuesday), now).await, Err(Error::Denied(_))));
    let came = s.appointments().check_in(&clerk, &theirs.id, at("2026-11-24T01:05:00Z")).await.unwrap();
    assert_eq!(came.status, services::AppointmentStatus::Attended);

    // Bookings nobody came to become no-shows; three suspend online booking.
    for (i, d) in ["24", "25", "26"].iter().enumerate() {
        let when = at(&format!("2026-11-{d}T06:00:00Z"));
        let booked_at = when - Duration::hours(2);
        s.appointments().book(&b, "HALL-T", "TSMZ0001", when, booked_at).await.unwrap();
        let report = s.appointments().record_no_shows(when + Duration::hours(1)).await.unwrap();
        assert_eq!(report.recorded, 1, "round {i}");
    }
    let r =
        s.appointments().book(&b, "HALL-T", "TSMZ0001", at("2026-11-30T02:00:00Z"), at("2026-11-27T02:00:00Z")).await;
    assert_eq!(conflict(r), "booking_suspended");
    assert_eq!(
        s.appointments().record_no_shows(at("2026-11-30T00:00:00Z")).await.unwrap().recorded,
        0,
        "recorded once"
    );
}

async fn case_notifications_go_by_email_to_those_who_ask(t: TestDb) {
    let h = hall(t).await;
    let s = &h.services;
    let now = t0();
    let a = h.principal("citizen.a").await;
    let b = h.principal("citizen.b").await;
    assert!(h.t.identity.settings().set_notification_email(&a, Some("not an address"), now).await.is_err());
    h.t.identity.settings().set_notification_email(&a, Some("wangfang@example.cn"), now).await.unwrap();
    let mine = s.intake().submit(&a, "TSMZ0001", good_form(), &[], now).await.unwrap();
    s.intake().submit(&b, "TSMZ0001", good_form(), &[], now).await.unwrap();
    let (port, seen) = testkit::fake_smtp().await;
    let exchange =
        exchange::Exchange::new(h.t.db.clone(), h.t.identity.clone(), &kernel::secrets::MasterKey::from_bytes(h.t.key));
    let mail = kernel::outbox::Mail {
        relay: "127.0.0.1".into(),
        port,
        from: "tongban@gov.example".into(),
        to: vec!["soc@gov.example".into()],
    };
    let sent = tongban::delivery::deliver(&h.t.db, Some(&mail), &h.t.identity, &exchange, now).await.unwrap();
    assert_eq!(sent, 1, "only the resident who gave an address is mailed");
    let transcript = seen.lock().await.clone();
    assert!(transcript.contains("RCPT TO:<wangfang@example.cn>"), "{transcript}");
    assert!(transcript.contains(&mine.number), "the mail names the case: {transcript}");
    assert!(!transcript.contains("soc@gov.example>"), "notifications do not go to the security team");
    let outbox: String = sqlx::query_scalar("SELECT payload FROM outbox WHERE topic = 'notification'")
        .fetch_one(&h.t.db.pool)
        .await
        .unwrap();
    assert!(!outbox.contains("wangfang"), "the address is not copied into the outbox: {outbox}");
}
