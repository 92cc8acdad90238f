//! The 12345 tests' world: two districts, each with a water (SW), city-management (CG) and
//! civil-affairs (MZ) department; a dispatcher, an operator, a water and a city-management
//! clerk per district, and four streets; a resident in each district.
#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};
use identity::Principal;
use kernel::authz::{VoiceDispatch, VoiceHandle};
use services::calendar::WorkingCalendar;
use testkit::{PASSWORD, TOTP, TestDb};
use voice::{Category, Voice};

/// A Monday morning, China time.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 1, 0, 0).unwrap()
}

pub struct Hotline {
    pub voice: Voice,
    /// The upload pipeline photos come through, and where it keeps them.
    pub services: services::Services,
    pub uploads: tempfile::TempDir,
    pub signed_in: testkit::SignedIn,
    pub t: TestDb,
}

impl Hotline {
    pub async fn principal(&self, username: &str) -> Principal {
        let staff = !username.starts_with("citizen");
        self.signed_in.principal(&self.t.identity, username, PASSWORD, staff.then_some(TOTP), t0()).await
    }

    pub async fn dispatcher(&self, district: &str) -> identity::Capability<VoiceDispatch> {
        self.principal(&format!("dispatcher.{district}")).await.authorize().unwrap()
    }

    pub async fn water_clerk(&self, district: &str) -> identity::Capability<VoiceHandle> {
        self.principal(&format!("water.{district}")).await.authorize().unwrap()
    }

    /// The first category the water department handles.
    pub fn water(&self) -> Category {
        self.category_of("SW")
    }

    pub fn category_of(&self, kind: &str) -> Category {
        self.voice.categories().all().iter().find(|c| c.department_kind == kind).cloned().unwrap()
    }
}

pub async fn hotline(t: TestDb) -> Hotline {
    let mut f = testkit::Founding::begin(&t, t0()).await;
    for (district, name, short) in [("990102", "明月区", "mingyue"), ("990103", "青湖区", "qinghu")] {
        f.region(district, name, Some("990100")).await;
        // Streets 002–004 keep requests that are alike apart: the same text in one place
        // within a week is proposed as a repeat.
        for (street, street_name) in
            [("001", "东风街道"), ("002", "西湖街道"), ("003", "南山街道"), ("004", "北城街道")]
        {
            f.region(&format!("{district}{street}"), street_name, Some(district)).await;
        }
        for (kind, dept) in [("SW", "水务局"), ("CG", "城市管理综合执法局"), ("MZ", "民政局")] {
            f.department(&format!("{district}-{kind}"), &format!("{name}{dept}"), district, kind).await;
        }
        f.staff(&format!("dispatcher.{short}"), "派单员", &format!("{district}-MZ"), "dispatcher").await;
        f.staff(&format!("water.{short}"), "水务窗口", &format!("{district}-SW"), "window_clerk").await;
        f.staff(&format!("city.{short}"), "城管窗口", &format!("{district}-CG"), "window_clerk").await;
        f.staff(&format!("operator.{short}"), "话务员", &format!("{district}-MZ"), "hotline_operator").await;
    }
    for (username, region, id_number) in
        [("citizen.a", "990102001", "11010519491231002X"), ("citizen.b", "990103001", "440524188001010014")]
    {
        f.account(testkit::resident_account(username, "王芳", region, id_number, None)).await;
    }
    f.commit().await;
    let uploads = tempfile::tempdir().unwrap();
    let policy =
        services::UploadPolicy { dir: uploads.path().to_path_buf(), max_bytes: 1024 * 1024, scan_command: None };
    let key = kernel::secrets::MasterKey::from_bytes(t.key);
    let services = services::Services::new(t.db.clone(), t.identity.clone(), key, WorkingCalendar::default(), policy);
    let voice = Voice::new(t.db.clone(), t.identity.clone(), services.clone()).unwrap();
    Hotline { voice, services, uploads, signed_in: Default::default(), t }
}

/// The tallies 12345 kept as it wrote equal a recount from the records.
pub async fn assert_tallies_match_recount(h: &Hotline) {
    let mut c = h.t.db.pool.acquire().await.unwrap();
    let stored = kernel::tally::stored(&mut c, kernel::tally::Module::Voice).await.unwrap();
    drop(c);
    assert!(!stored.is_empty());
    assert_eq!(stored, h.voice.recount().await.unwrap());
}
