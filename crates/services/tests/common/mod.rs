//! The service hall's test world: two districts with civil-affairs (MZ) and health (WJ)
//! departments, their staff, two residents, the two built-in workflows and a small catalog
//! with a bundle. Also used by the binary crate's tests (`crates/tongban/tests`), which
//! include this file by its path.
#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};
use identity::{self, Principal};
use kernel::authz::ApplicationHandle;
use kernel::secrets::MasterKey;
use serde_json::{Value, json};
use services::calendar::WorkingCalendar;
use services::catalog::{BundleSpec, ServiceSpec};
use services::workflow::Definition;
use services::{Error, Services, UploadPolicy};
use testkit::TestDb;

pub use testkit::{PASSWORD, TOTP};
/// Born 1949-12-31: 76 on the test day.
pub const ID_A: &str = "11010519491231002X";

/// The two workflows every catalog starts with (即办件 and 承诺件), as the binary crate's
/// `tongban::demo::builtin_workflows` defines them; its test
/// `the_service_tests_publish_the_built_in_workflows` (crates/tongban/tests/demo.rs) keeps
/// this copy equal to them.
pub fn builtin_workflows() -> Vec<Value> {
    serde_json::from_str(include_str!("workflows.json")).unwrap()
}

/// A Saturday morning would make deadlines odd; this is a Monday.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 1, 0, 0).unwrap()
}

pub struct Hall {
    pub services: Services,
    pub signed_in: testkit::SignedIn,
    pub _uploads: tempfile::TempDir,
    pub t: TestDb,
}

impl Hall {
    pub async fn principal(&self, username: &str) -> Principal {
        let staff = username.contains('.') && !username.starts_with("citizen");
        self.signed_in.principal(&self.t.identity, username, PASSWORD, staff.then_some(TOTP), t0()).await
    }
}

pub fn form_schema(extra: Value) -> Value {
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

pub fn spec(code: &str, department: &str, workflow: &str, certificate: Option<&str>, form: Value) -> ServiceSpec {
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
pub async fn hall(t: TestDb) -> Hall {
    let console = t.console();
    let now = t0();
    let mut f = testkit::Founding::begin(&t, now).await;
    for (district, name) in [("990102", "明月区"), ("990103", "青湖区")] {
        f.region(district, name, Some("990100")).await;
        f.region(&format!("{district}001"), "东风街道", Some(district)).await;
        for (kind, dept) in [("MZ", "民政局"), ("WJ", "卫生健康局")] {
            f.department(&format!("{district}-{kind}"), &format!("{name}{dept}"), district, kind).await;
        }
    }
    for (username, dept, role) in [
        ("clerk.mingyue", "990102-MZ", "window_clerk"),
        ("clerk2.mingyue", "990102-MZ", "window_clerk"),
        ("approver.mingyue", "990102-MZ", "approver"),
        ("leader.mingyue", "990102-MZ", "leader"),
        ("wj.mingyue", "990102-WJ", "approver"),
        ("clerk.qinghu", "990103-MZ", "window_clerk"),
    ] {
        f.staff(username, "工作人员", dept, role).await;
    }
    for (username, region, id_number) in
        [("citizen.a", "990102001", ID_A), ("citizen.b", "990103001", "440524188001010014")]
    {
        let address = Some("春城市明月区东风街道8号");
        f.account(testkit::resident_account(username, "王芳", region, id_number, address)).await;
    }
    f.commit().await;

    let uploads = tempfile::tempdir().unwrap();
    let services = Services::new(
        t.db.clone(),
        t.identity.clone(),
        MasterKey::from_bytes(t.key),
        WorkingCalendar::default(),
        UploadPolicy { dir: uploads.path().to_path_buf(), max_bytes: 1024 * 1024, scan_command: None },
    );
    let manage = console.grant::<kernel::authz::ServiceManage>();
    for w in builtin_workflows() {
        services.publish_workflow(&manage, Definition::from_json(&w.to_string()).unwrap(), now).await.unwrap();
    }
    // Residents 75 and over get the allowance without review: an automatic action.
    let mut elderly = builtin_workflows()[1].clone();
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

pub fn good_form() -> Value {
    json!({"monthly_income": 1200.5, "amount": 800, "agree": true})
}

pub fn handle(p: &Principal) -> identity::Capability<ApplicationHandle> {
    p.authorize::<ApplicationHandle>().unwrap()
}

pub fn at(rfc: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc).unwrap().with_timezone(&Utc)
}

pub fn conflict(r: Result<impl std::fmt::Debug, Error>) -> &'static str {
    match r {
        Err(Error::Conflict { code, .. }) => code.as_str(),
        other => panic!("expected a conflict, got {other:?}"),
    }
}
