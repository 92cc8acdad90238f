//! Service tests of the public ledgers, each run on SQLite and on PostgreSQL: a community's
//! monthly income and spending, once a month with corrections kept beside what they correct;
//! a public-resource transaction's stages, opened by its tender notice and kept to its
//! department; each record an entry on the `public` ledger whose SHA-256 anyone recomputes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

extern crate tongban_openness as openness;

use chrono::{DateTime, TimeZone, Utc};
use identity::Principal;
use kernel::authz::{CommunityFinancePublish, TransactionPublish};
use kernel::error::ErrorCode;
use openness::{
    Direction, Error, FinanceLine, LedgerKind, MonthlyStatement, Openness, Party, Stage, TransactionRecord,
};
use services::calendar::WorkingCalendar;
use sha2::Digest;
use testkit::{PASSWORD, TOTP, TestDb, on_both_databases};

/// Monday 23 November 2026, 09:00 China time.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 1, 0, 0).unwrap()
}

const COMMUNITY: &str = "990102001001";
const OTHER_COMMUNITY: &str = "990102001002";

struct World {
    openness: Openness,
    signed_in: testkit::SignedIn,
    t: TestDb,
}

impl World {
    async fn principal(&self, username: &str) -> Principal {
        self.signed_in.principal(&self.t.identity, username, PASSWORD, Some(TOTP), t0()).await
    }
}

/// 明月区 with a street and two communities; a community worker of the first; the trading
/// officers of the district's 政务服务管理局 (ZW) and of its 财政局 (CZ).
async fn world(t: TestDb) -> World {
    let mut f = testkit::Founding::begin(&t, t0()).await;
    f.region("990102", "明月区", Some("990100")).await;
    f.region("990102001", "东风街道", Some("990102")).await;
    f.region(COMMUNITY, "和平社区", Some("990102001")).await;
    f.region(OTHER_COMMUNITY, "幸福社区", Some("990102001")).await;
    f.department("990102-MZ", "明月区民政局", "990102", "MZ").await;
    f.department("990102-ZW", "明月区政务服务管理局", "990102", "ZW").await;
    f.department("990102-CZ", "明月区财政局", "990102", "CZ").await;
    let mut worker = testkit::staff_account("grid.heping", "和平社区网格员", "990102-MZ");
    worker.region_code = Some(COMMUNITY.into());
    let worker = f.account(worker).await;
    f.grant(&worker, "community_worker").await;
    f.staff("trade.zw", "交易中心专员", "990102-ZW", "trading_officer").await;
    f.staff("trade.cz", "财政局交易专员", "990102-CZ", "trading_officer").await;
    f.commit().await;
    let openness = Openness::new(
        t.db.clone(),
        t.identity.clone(),
        exchange::Exchange::new(t.db.clone(), t.identity.clone(), &kernel::secrets::MasterKey::from_bytes(t.key)),
        WorkingCalendar::default(),
    );
    World { openness, signed_in: Default::default(), t }
}

fn line(direction: Direction, category: &str, amount_fen: i64) -> FinanceLine {
    FinanceLine { amount_fen, category: category.into(), direction, note: None }
}

fn statement(community: &str, month: &str) -> MonthlyStatement {
    MonthlyStatement {
        community: community.into(),
        lines: vec![
            line(Direction::Income, "上级补助", 12_000_000),
            line(Direction::Spending, "办公费", 356_050),
            line(Direction::Spending, "环境整治", 1_200_000),
        ],
        month: month.into(),
        note: None,
    }
}

on_both_databases!(
    a_community_publishes_each_month_once_and_corrections_stand_beside_it,
    a_project_opens_with_its_tender_notice_and_stays_with_its_department,
);

async fn a_community_publishes_each_month_once_and_corrections_stand_beside_it(t: TestDb) {
    let w = world(t).await;
    let worker = w.principal("grid.heping").await.authorize::<CommunityFinancePublish>().unwrap();
    let l = w.openness.ledgers();
    let october = l.publish_statement(&worker, &statement(COMMUNITY, "2026-10"), None, t0()).await.unwrap();
    assert_eq!(october.totals, Some((12_000_000, 1_556_050)));
    assert_eq!((october.subject_name.as_str(), october.period.as_str()), ("和平社区", "2026-10"));
    // The SHA-256 is over the record's compact JSON with its keys in order; the ledger carries it.
    let recomputed = hex::encode(sha2::Sha256::digest(serde_json::to_vec(&october.body).unwrap()));
    assert_eq!(october.sha256, recomputed);
    let entries = ledger::recent(&w.t.db, ledger::Log::Public, None, None, 10).await.unwrap();
    let (index, entry) = entries.first().unwrap();
    assert_eq!((*index as i64, entry.action.as_str()), (october.ledger_index, "community_finance_published"));
    assert!(entry.detail.as_deref().unwrap().contains(&recomputed));

    let again = l.publish_statement(&worker, &statement(COMMUNITY, "2026-10"), None, t0()).await;
    assert!(matches!(again, Err(Error::Conflict { code: ErrorCode::AlreadyPublished, .. })), "{again:?}");
    let mut fixed = statement(COMMUNITY, "2026-10");
    fixed.lines[1].amount_fen = 365_050;
    fixed.note = Some("更正办公费金额".into());
    let correction = l.publish_statement(&worker, &fixed, Some(&october.id), t0()).await.unwrap();
    assert_eq!(correction.corrects.as_deref(), Some(october.id.as_str()));
    let twice = l.publish_statement(&worker, &fixed, Some(&october.id), t0()).await;
    assert!(matches!(twice, Err(Error::Conflict { code: ErrorCode::RecordChanged, .. })));
    let november = l.publish_statement(&worker, &statement(COMMUNITY, "2026-11"), Some(&october.id), t0()).await;
    assert!(matches!(november, Err(Error::Invalid { field: "corrects", .. })), "{november:?}");
    let records = l.records(LedgerKind::CommunityFinance, COMMUNITY).await.unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].corrected_by.as_deref(), Some(correction.id.as_str()));

    // Outside the worker's community, a month to come, nothing to count, not a community.
    let theirs = l.publish_statement(&worker, &statement(OTHER_COMMUNITY, "2026-10"), None, t0()).await;
    assert!(matches!(theirs, Err(Error::Denied(_))), "{theirs:?}");
    let future = l.publish_statement(&worker, &statement(COMMUNITY, "2026-12"), None, t0()).await;
    assert!(matches!(future, Err(Error::Invalid { field: "month", .. })));
    let mut zero = statement(COMMUNITY, "2026-09");
    zero.lines[0].amount_fen = 0;
    assert!(matches!(
        l.publish_statement(&worker, &zero, None, t0()).await,
        Err(Error::Invalid { field: "amount_fen", .. })
    ));
    let street = l.publish_statement(&worker, &statement("990102001", "2026-09"), None, t0()).await;
    assert!(matches!(street, Err(Error::Invalid { field: "community", .. })));
    assert!(w.principal("trade.zw").await.authorize::<CommunityFinancePublish>().is_err());
    let subjects = l.subjects(LedgerKind::CommunityFinance).await.unwrap();
    assert_eq!(subjects.iter().map(|s| (s.code.as_str(), s.records)).collect::<Vec<_>>(), [(COMMUNITY, 2)]);
    assert_eq!(ledger::recent(&w.t.db, ledger::Log::Public, None, None, 10).await.unwrap().len(), 2);
}

fn stage(stage: Stage, parties: &[(&str, Option<i64>)]) -> TransactionRecord {
    TransactionRecord {
        amount_fen: Some(480_000_000),
        details: "明月区东风街道老旧小区改造工程施工，工期 180 日历天。".into(),
        parties: parties
            .iter()
            .map(|(name, amount_fen)| Party { amount_fen: *amount_fen, name: (*name).into() })
            .collect(),
        project_code: "MY-GC-2026-001".into(),
        project_name: "东风街道老旧小区改造工程".into(),
        stage,
    }
}

async fn a_project_opens_with_its_tender_notice_and_stays_with_its_department(t: TestDb) {
    let w = world(t).await;
    let zw = w.principal("trade.zw").await.authorize::<TransactionPublish>().unwrap();
    let cz = w.principal("trade.cz").await.authorize::<TransactionPublish>().unwrap();
    let l = w.openness.ledgers();
    let bids = [("云岭建工集团有限公司", Some(462_000_000)), ("春城市政工程有限公司", Some(455_500_000))];
    let early = l.publish_transaction(&zw, &stage(Stage::BidOpening, &bids), None, t0()).await;
    assert!(matches!(early, Err(Error::Invalid { field: "stage", .. })), "{early:?}");
    let notice = l.publish_transaction(&zw, &stage(Stage::TenderNotice, &[]), None, t0()).await.unwrap();
    assert_eq!((notice.subject_code.as_str(), notice.period.as_str()), ("MY-GC-2026-001", "tender_notice"));
    let award = l.publish_transaction(&zw, &stage(Stage::Award, &[]), None, t0()).await;
    assert!(matches!(award, Err(Error::Invalid { field: "parties", .. })));
    l.publish_transaction(&zw, &stage(Stage::BidOpening, &bids), None, t0()).await.unwrap();
    // A second bid opening (a re-tender) is its own record; a second notice is not.
    l.publish_transaction(&zw, &stage(Stage::BidOpening, &bids[..1]), None, t0()).await.unwrap();
    let notice_again = l.publish_transaction(&zw, &stage(Stage::TenderNotice, &[]), None, t0()).await;
    assert!(matches!(notice_again, Err(Error::Conflict { code: ErrorCode::AlreadyPublished, .. })));
    let theirs = l.publish_transaction(&cz, &stage(Stage::Award, &bids[1..]), None, t0()).await;
    assert!(matches!(theirs, Err(Error::Denied(_))), "{theirs:?}");
    let mut renamed = stage(Stage::Award, &bids[1..]);
    renamed.project_name = "另一个名字的工程".into();
    assert!(matches!(
        l.publish_transaction(&zw, &renamed, None, t0()).await,
        Err(Error::Invalid { field: "project_name", .. })
    ));
    let mut bad = stage(Stage::Award, &bids[1..]);
    bad.project_code = "MY GC/1".into();
    assert!(matches!(
        l.publish_transaction(&zw, &bad, None, t0()).await,
        Err(Error::Invalid { field: "project_code", .. })
    ));
    l.publish_transaction(&zw, &stage(Stage::Award, &bids[1..]), None, t0()).await.unwrap();
    let records = l.records(LedgerKind::Transaction, "MY-GC-2026-001").await.unwrap();
    let stages: Vec<&str> = records.iter().map(|r| r.period.as_str()).collect();
    assert_eq!(stages, ["tender_notice", "bid_opening", "bid_opening", "award"]);
    assert_eq!(serde_json::to_value(&records[3].body).unwrap()["parties"][0]["name"], "春城市政工程有限公司");
    let entries =
        ledger::recent(&w.t.db, ledger::Log::Public, Some("public_transaction_published"), None, 10).await.unwrap();
    assert_eq!(entries.len(), 4);
}
