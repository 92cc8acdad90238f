//! The data exchange's test world: the province with GA, MZ, SJ and RS departments, a data
//! officer in each, two residents with accounts, and the demo registries with a few records.
//! Also used by the binary crate's tests (`crates/tongban/tests`), which include this file by
//! its path.
#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};
use exchange::{AgreementRequest, Decision, Error, Exchange, ExchangeClient, RegistrySpec};
use identity::{self, Principal};
use kernel::authz::{RegistryManage, SharingDecide, SharingRequest};
use kernel::secrets::MasterKey;
use serde_json::{Value, json};
use testkit::TestDb;

pub use testkit::{PASSWORD, TOTP};
pub const ID_A: &str = "11010519491231002X";
pub const ID_B: &str = "440524188001010014";

/// The demo province's base registries (人口, 婚姻, 法人, 社保): the file the binary crate's
/// `tongban::demo::registry_specs` reads.
pub fn registry_specs() -> Result<Vec<RegistrySpec>, serde_json::Error> {
    serde_json::from_str(include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../tongban/fixtures/registries.json")))
}

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 1, 0, 0).unwrap()
}

pub struct Hub {
    pub exchange: Exchange,
    pub signed_in: testkit::SignedIn,
    pub t: TestDb,
}

impl Hub {
    pub async fn principal(&self, username: &str) -> Principal {
        let staff = !username.starts_with("citizen");
        self.signed_in.principal(&self.t.identity, username, PASSWORD, staff.then_some(TOTP), t0()).await
    }

    pub async fn client(&self, department: &str, name: &str) -> ExchangeClient {
        let cap = self.t.console().grant::<kernel::authz::AccountCreate>();
        let registered = self.exchange.sharing().register_client(&cap, department, name, t0()).await.unwrap();
        self.exchange.sharing().authenticate(name, registered.secret.expose()).await.unwrap()
    }

    pub async fn request(&self, officer: &str, body: Value) -> exchange::AgreementView {
        let p = self.principal(officer).await;
        let cap = p.authorize::<SharingRequest>().unwrap();
        let req: AgreementRequest = serde_json::from_value(body).unwrap();
        self.exchange.sharing().request_agreement(&cap, req, t0()).await.unwrap()
    }

    /// 民政's unconditional grant of birth dates, and its system.
    pub async fn elder_allowance(&self) -> (exchange::AgreementView, ExchangeClient) {
        let a = self
            .request(
                "data.mz",
                json!({"registry": "population", "fields": ["birth_date"], "purpose": "高龄津贴资格核对",
                "legal_basis": "《老年人权益保障法》", "valid_days": 365}),
            )
            .await;
        (a, self.client("990000-MZ", "CN/GOV/990000-MZ/gaoling").await)
    }

    pub async fn decide(&self, officer: &str, id: &str, approve: bool) -> exchange::AgreementView {
        let p = self.principal(officer).await;
        let cap = p.authorize::<SharingDecide>().unwrap();
        let reason = (!approve).then(|| "用途与职责无关".to_string());
        self.exchange.sharing().decide_agreement(&cap, id, Decision { approve, reason }, t0()).await.unwrap()
    }
}

/// The province with GA, MZ, SJ and RS departments, a data officer in each, two residents
/// with accounts, and the demo registries with a few records.
pub async fn hub(t: TestDb) -> Hub {
    let console = t.console();
    let now = t0();
    let mut f = testkit::Founding::begin(&t, now).await;
    f.region("990102", "明月区", Some("990100")).await;
    for (kind, name) in [("GA", "公安厅"), ("MZ", "民政厅"), ("SJ", "市场监督管理局"), ("RS", "人力资源和社会保障厅")]
    {
        let code = format!("990000-{kind}");
        f.department(&code, name, "990000", kind).await;
        f.staff(&format!("data.{}", kind.to_lowercase()), "数据专员", &code, "data_officer").await;
    }
    for (username, id_number) in [("citizen.a", ID_A), ("citizen.b", ID_B)] {
        f.account(testkit::resident_account(username, "王芳", "990102", id_number, None)).await;
    }
    f.commit().await;
    let exchange = Exchange::new(t.db.clone(), t.identity.clone(), &MasterKey::from_bytes(t.key));
    let manage = console.grant::<RegistryManage>();
    let specs = registry_specs().unwrap();
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

pub fn refusal(e: Error) -> &'static str {
    match e {
        Error::Refused { code, .. } => code.as_str(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}
