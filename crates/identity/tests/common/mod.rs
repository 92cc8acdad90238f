//! The identity service tests' world: a province, two districts with a grid each, a clerk per
//! district, an auditor and one resident per district; signing in and reading the audit
//! trail. Also used by the binary crate's tests (`crates/tongban/tests`), which include this
//! file by its path.
#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};
use identity::{self, Identity, SignInAttempt};
use kernel::secrets::SecretString;
use testkit::{TestDb, totp_at};

pub use testkit::{PASSWORD, TOTP};

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap()
}

pub struct Fixture {
    pub resident_mingyue: String,
    pub resident_qinghu: String,
}

/// A province, two districts with a grid each, a clerk per district, an auditor, and one
/// resident per district.
pub async fn fixture(t: &TestDb) -> Fixture {
    let mut f = testkit::Founding::begin(t, t0()).await;
    for (district, name) in [("990102", "明月区"), ("990103", "青湖区")] {
        f.region(district, name, Some("990100")).await;
        f.region(&format!("{district}001"), "东风街道", Some(district)).await;
        f.region(&format!("{district}001001"), "和平社区", Some(&format!("{district}001"))).await;
        f.region(&format!("{district}001001001"), "第一网格", Some(&format!("{district}001001"))).await;
        f.department(&format!("{district}-MZ"), &format!("{name}民政局"), district, "MZ").await;
    }
    f.department("990000-CZ", "云岭省财政厅", "990000", "CZ").await;
    f.department("990102-GA", "明月区公安分局", "990102", "GA").await;
    f.staff("clerk.mingyue", "测试", "990102-MZ", "window_clerk").await;
    f.staff("clerk.qinghu", "测试", "990103-MZ", "window_clerk").await;
    f.staff("auditor", "测试", "990000-CZ", "auditor").await;
    let mut residents = Vec::new();
    for (username, grid, id_number) in
        [("citizen.a", "990102001001001", "11010519491231002X"), ("citizen.b", "990103001001001", "440524188001010014")]
    {
        let address = Some("春城市明月区东风街道和平社区8号");
        residents.push(f.account(testkit::resident_account(username, "张三", grid, id_number, address)).await);
    }
    f.commit().await;
    Fixture { resident_mingyue: residents[0].clone(), resident_qinghu: residents[1].clone() }
}

pub fn attempt<'a>(username: &'a str, password: &'a SecretString, source: &'a str) -> SignInAttempt<'a> {
    SignInAttempt { username, password, source, device: None }
}

pub async fn token_for(id: &Identity, username: &str, now: DateTime<Utc>) -> String {
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

pub struct Event {
    pub outcome: String,
    pub username: Option<String>,
    pub detail: Option<String>,
}

/// The `audit` ledger's entries of one kind, oldest first.
pub async fn events(t: &TestDb, kind: &str) -> Vec<Event> {
    let mut rows = ledger::recent(&t.db, ledger::Log::Audit, Some(kind), None, 100_000).await.unwrap();
    rows.reverse();
    rows.into_iter().map(|(_, e)| Event { outcome: e.result, username: e.actor_name, detail: e.detail }).collect()
}
