//! Service tests of the KPIs, each run on SQLite and on PostgreSQL: the numerators and
//! denominators of a small hand-built history (on time and late, withdrawn, a bad rating put
//! right, holidays in the working days), jurisdiction, filters, trends and drill-down, and
//! tallies kept in the write paths equal to a recount from the records.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

extern crate tongban_insight as insight;

use chrono::{Duration, NaiveDate};
use insight::kpis::{Breakdown, Kpi, KpiQuery, KpiValue, Period};
use insight::{Error, Insight};
use kernel::authz::InsightRead;
use kernel::secrets::MasterKey;
use kernel::tally::Module;
use services::workflow::Phase;
use testkit::{TestDb, on_both_databases};

#[path = "../../services/tests/common/mod.rs"]
mod common;
use common::*;

on_both_databases!(
    kpis_count_what_happened_within_the_leaders_jurisdiction,
    departments_are_scored_by_the_plan_in_force
);

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn kpi(values: &[KpiValue], code: Kpi) -> &KpiValue {
    values.iter().find(|v| v.code == code).unwrap()
}

/// (numerator, denominator) of a KPI.
fn parts(values: &[KpiValue], code: Kpi) -> (Option<i64>, Option<i64>) {
    let v = kpi(values, code);
    (v.numerator, v.denominator)
}

/// The service hall's test world, with insight over it.
async fn world(t: TestDb) -> (Hall, Insight) {
    let hall = hall(t).await;
    let key = MasterKey::from_bytes(hall.t.key);
    let exchange = exchange::Exchange::new(hall.t.db.clone(), hall.t.identity.clone(), &key);
    let insight = Insight::new(hall.t.db.clone(), hall.t.identity.clone(), hall.services.clone(), exchange);
    (hall, insight)
}

async fn kpis_count_what_happened_within_the_leaders_jurisdiction(t: TestDb) {
    let (hall, insight) = world(t).await;
    let s = &hall.services;
    let citizen = hall.principal("citizen.a").await;
    let other = hall.principal("citizen.b").await;
    let clerk = hall.principal("clerk.mingyue").await;
    let approver = hall.principal("approver.mingyue").await;
    let leader = hall.principal("leader.mingyue").await.authorize::<InsightRead>().unwrap();
    let now = t0(); // Monday 2026-11-23

    // On time: accepted Monday, approved Wednesday (2 working days).
    let on_time = s.intake().submit(&citizen, "TSMZ0001", good_form(), &[], now).await.unwrap();
    s.casework().act(&handle(&clerk), &on_time.id, "accept", None, now).await.unwrap();
    let done =
        s.casework().act(&handle(&approver), &on_time.id, "approve", None, now + Duration::days(2)).await.unwrap();
    assert_eq!(done.status, Phase::Completed, "an approval completes a case with a certificate");

    // Late: committed 10 working days, decided 30 calendar days later (rejected, still 办结).
    let late = s.intake().submit(&citizen, "TSMZ0001", good_form(), &[], now).await.unwrap();
    s.casework().act(&handle(&clerk), &late.id, "accept", None, now).await.unwrap();
    let rejected = s
        .casework()
        .act(&handle(&approver), &late.id, "reject", Some("收入超过标准"), now + Duration::days(30))
        .await
        .unwrap();
    assert_eq!(rejected.status, Phase::Rejected);

    // Withdrawn: counted as submitted, never as finished.
    let withdrawn = s.intake().submit(&citizen, "TSMZ0001", good_form(), &[], now).await.unwrap();
    s.my_cases().withdraw(&citizen, &withdrawn.id, now + Duration::days(1)).await.unwrap();

    // A step that fails writes no tally: approving before acceptance.
    let open = s.intake().submit(&citizen, "TSWJ0001", good_form(), &[], now).await.unwrap();
    assert!(s.casework().act(&handle(&approver), &open.id, "approve", None, now).await.is_err());

    // Another district's case, outside leader.mingyue's jurisdiction.
    s.intake().submit(&other, "TSMZ0001", good_form(), &[], now).await.unwrap();

    // A bad rating on the late case, put right within 15 working days; a good one on time.
    let rated_at = now + Duration::days(31);
    s.ratings().rate(&citizen, &late.id, 1, Some("等了一个月"), rated_at).await.unwrap();
    s.ratings()
        .answer_rating(&handle(&clerk), &late.id, "已复核并说明标准", rated_at + Duration::days(3))
        .await
        .unwrap();
    s.ratings().rate(&citizen, &on_time.id, 5, None, now + Duration::days(3)).await.unwrap();

    let q = |region: &str| KpiQuery {
        region: region.into(),
        from: day("2026-11-01"),
        to: day("2027-01-31"),
        department: None,
        service: None,
    };
    let k = insight.kpis();
    let v = k.figures(&leader, &q("990102")).await.unwrap();
    assert_eq!(v.len(), Kpi::all().len());
    assert_eq!(parts(&v, Kpi::InstantRate), (Some(0), Some(4)), "four submissions in 明月区, none 即办");
    assert_eq!(parts(&v, Kpi::OnTimeRate), (Some(1), Some(2)), "two finished, the rejection late; the withdrawal not");
    assert_eq!(kpi(&v, Kpi::OnTimeRate).value, Some(0.5));
    // 2 working days, and 11-23 → 12-23 on the default calendar: 22 working days after the Monday.
    assert_eq!(parts(&v, Kpi::AvgDurationWorkingDays), (Some(2 + 22), Some(2)));
    assert_eq!(parts(&v, Kpi::FullyOnlineRate), (Some(2), Some(2)));
    assert_eq!(parts(&v, Kpi::VisitsPerCase), (Some(0), Some(2)));
    assert_eq!(parts(&v, Kpi::GoodRatingRate), (Some(1), Some(2)));
    assert_eq!(parts(&v, Kpi::BadRatingRectifiedRate), (Some(1), Some(1)));
    assert_eq!(kpi(&v, Kpi::MaterialsExemptedRate).value, None, "no required materials: nothing to divide by");
    assert_eq!(parts(&v, Kpi::OnlineAvailableRate), (Some(3), Some(3)), "three published services, all online");
    assert_eq!(parts(&v, Kpi::TimeLimitCompression), (Some(30), Some(60)), "(20 − 10) saved of 20, three times");
    assert_eq!(parts(&v, Kpi::HotlineResponseRate), (Some(0), Some(0)));

    // A period that ends before the late decision sees only the one on time.
    let early = KpiQuery { to: day("2026-11-30"), ..q("990102") };
    let v = k.figures(&leader, &early).await.unwrap();
    assert_eq!(parts(&v, Kpi::OnTimeRate), (Some(1), Some(1)));

    // One department, one service.
    let wj = KpiQuery { department: Some("990102-WJ".into()), ..q("990102") };
    let v = k.figures(&leader, &wj).await.unwrap();
    assert_eq!(parts(&v, Kpi::InstantRate), (Some(0), Some(1)));
    assert_eq!(parts(&v, Kpi::OnlineAvailableRate), (Some(1), Some(1)), "the catalog of 卫生健康 alone");
    let one = KpiQuery { service: Some("TSMZ0001".into()), ..q("990102") };
    assert_eq!(parts(&k.figures(&leader, &one).await.unwrap(), Kpi::InstantRate), (Some(0), Some(3)));

    // Jurisdiction, unknown codes and a backwards period.
    assert!(matches!(
        k.figures(&leader, &q("990103")).await,
        Err(Error::Denied(identity::Denial::OutsideJurisdiction))
    ));
    assert!(matches!(k.figures(&leader, &q("999999")).await, Err(Error::NotFound(_))));
    let nowhere = KpiQuery { department: Some("990102-XX".into()), ..q("990102") };
    assert!(matches!(k.figures(&leader, &nowhere).await, Err(Error::NotFound(_))));
    let backwards = KpiQuery { from: day("2026-12-31"), to: day("2026-12-01"), ..q("990102") };
    assert!(matches!(k.figures(&leader, &backwards).await, Err(Error::Invalid { .. })));
    let far = KpiQuery { from: NaiveDate::MIN, to: NaiveDate::MIN, ..q("990102") };
    assert!(
        matches!(k.trend(&leader, &far, Period::Month).await, Err(Error::Invalid { .. })),
        "no panic at the calendar's edge"
    );
    let clerk_cap = clerk.authorize::<InsightRead>();
    assert!(clerk_cap.is_err(), "a clerk has no dashboard");

    // Weekly trend: every week of the period, the submissions in the first.
    let weeks = k.trend(&leader, &q("990102"), Period::Week).await.unwrap();
    assert_eq!(weeks.first().unwrap().start, day("2026-10-26"), "weeks start on Monday");
    assert!(weeks.windows(2).all(|w| w[1].start - w[0].start == Duration::days(7)));
    let week = weeks.iter().find(|w| w.start == day("2026-11-23")).unwrap();
    assert_eq!(parts(&week.values, Kpi::InstantRate), (Some(0), Some(4)));
    let months = k.trend(&leader, &q("990102"), Period::Month).await.unwrap();
    assert_eq!(
        months.iter().map(|m| m.start).collect::<Vec<_>>(),
        [day("2026-11-01"), day("2026-12-01"), day("2027-01-01")]
    );
    assert_eq!(parts(&months[1].values, Kpi::OnTimeRate), (Some(0), Some(1)), "December: the late rejection");

    // Drill-down to the streets, and by department.
    let streets = k.breakdown(&leader, &q("990102"), Breakdown::Region).await.unwrap();
    assert_eq!(streets.len(), 1);
    assert_eq!(
        (streets[0].code.as_str(), parts(&streets[0].values, Kpi::InstantRate)),
        ("990102001", (Some(0), Some(4)))
    );
    let below_street = k.breakdown(&leader, &q("990102001"), Breakdown::Region).await.unwrap();
    assert!(below_street.is_empty(), "figures are kept down to the street: {below_street:?}");
    let departments = k.breakdown(&leader, &q("990102"), Breakdown::Department).await.unwrap();
    assert_eq!(departments.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(), ["明月区民政局", "明月区卫生健康局"]);

    // Forecasts need 24 weeks of history; these few weeks are said to be too few.
    let forecasts = k.forecasts(&leader, "990102", day("2027-01-06")).await.unwrap();
    assert_eq!(forecasts.first().map(|f| (f.history_weeks, f.forecast.is_none())), Some((6, true)));
    assert!(forecasts.iter().all(|f| f.unavailable.as_deref().is_some_and(|u| u.contains("24"))), "{forecasts:?}");
    assert!(forecasts.iter().any(|f| f.service.as_deref() == Some("TSMZ0001")), "the most used service has its series");

    // The applications behind a figure: the numerator's and the denominator's.
    let records = k.records(&leader, &q("990102"), Kpi::OnTimeRate).await.unwrap();
    let numbers = |list: &[services::CountedCase]| list.iter().map(|c| c.number.clone()).collect::<Vec<_>>();
    assert_eq!(numbers(&records.numerator), std::slice::from_ref(&on_time.number));
    let mut finished = numbers(&records.denominator);
    finished.sort();
    let mut want = vec![on_time.number.clone(), late.number.clone()];
    want.sort();
    assert_eq!(finished, want);
    let days = k.records(&leader, &q("990102"), Kpi::AvgDurationWorkingDays).await.unwrap();
    assert_eq!(days.numerator.iter().map(|c| c.value).sum::<i64>(), 24, "the working days behind the average");
    assert!(matches!(k.records(&leader, &q("990102"), Kpi::HotlineResponseRate).await, Err(Error::Invalid { .. })));
    assert!(matches!(k.records(&leader, &q("990103"), Kpi::OnTimeRate).await, Err(Error::Denied(_))));

    // The tallies kept in the write paths are what a recount from the records gives.
    let mut c = hall.t.db.pool.acquire().await.unwrap();
    let stored = kernel::tally::stored(&mut c, Module::Services).await.unwrap();
    drop(c);
    let recount = s.recount().await.unwrap();
    assert!(!recount.is_empty());
    assert_eq!(stored, recount);

    // A damaged tally is found by the comparison and repaired by storing the recount.
    let mut c = hall.t.db.pool.acquire().await.unwrap();
    sqlx::query("UPDATE tallies SET value = value + 5 WHERE measure = 'submitted'").execute(&mut *c).await.unwrap();
    assert_ne!(kernel::tally::stored(&mut c, Module::Services).await.unwrap(), recount);
    drop(c);
    s.store_recount(&recount).await.unwrap();
    let mut c = hall.t.db.pool.acquire().await.unwrap();
    assert_eq!(kernel::tally::stored(&mut c, Module::Services).await.unwrap(), recount);
    drop(c);
}

async fn departments_are_scored_by_the_plan_in_force(t: TestDb) {
    use insight::assessment::{Direction, Indicator, Period as Assessed};
    let (hall, insight) = world(t).await;
    let s = &hall.services;
    let citizen = hall.principal("citizen.a").await;
    let clerk = hall.principal("clerk.mingyue").await;
    let approver = hall.principal("approver.mingyue").await;
    let leader = hall.principal("leader.mingyue").await.authorize::<InsightRead>().unwrap();
    let now = t0();
    // 民政: one finished on time (2 working days) and one late (22), one rated 5 and one 1.
    for (days, score) in [(2, 5), (30, 1)] {
        let app = s.intake().submit(&citizen, "TSMZ0001", good_form(), &[], now).await.unwrap();
        s.casework().act(&handle(&clerk), &app.id, "accept", None, now).await.unwrap();
        s.casework().act(&handle(&approver), &app.id, "approve", None, now + Duration::days(days)).await.unwrap();
        let comment = (score < 3).then_some("太慢了");
        s.ratings().rate(&citizen, &app.id, score, comment, now + Duration::days(days)).await.unwrap();
    }
    // 卫生健康: submitted, never finished: nothing to score.
    s.intake().submit(&citizen, "TSWJ0001", good_form(), &[], now).await.unwrap();

    let a = insight.assessment();
    assert_eq!(a.plan().await.unwrap().version, 0, "the default until the office sets one");
    let plan = vec![
        Indicator { kpi: Kpi::OnTimeRate, weight: 50, target: 1.0, direction: Direction::Higher },
        Indicator { kpi: Kpi::AvgDurationWorkingDays, weight: 30, target: 6.0, direction: Direction::Lower },
        Indicator { kpi: Kpi::GoodRatingRate, weight: 20, target: 0.8, direction: Direction::Higher },
    ];
    // The office's capability comes from its role; a leader has none.
    assert!(hall.principal("leader.mingyue").await.authorize::<kernel::authz::AssessmentManage>().is_err());
    let console = hall.t.console();
    let office = console.grant::<kernel::authz::AssessmentManage>();
    let mut wrong = plan.clone();
    wrong[0].weight = 40;
    assert!(matches!(a.set_plan(&office, wrong, now).await, Err(Error::Invalid { .. })));
    assert_eq!(a.plan().await.unwrap().version, 0, "a refused plan changes nothing");
    let set = a.set_plan(&office, plan.clone(), now).await.unwrap();
    assert_eq!((set.version, set.indicators.clone()), (1, plan));

    let cards = a.scorecards(&leader, "990102", Assessed::parse("2026").unwrap(), Breakdown::Department).await.unwrap();
    let mz = cards.iter().find(|c| c.name == "明月区民政局").unwrap();
    // On time 1/2 of 1.0 → 25 of 50; 12 days average against 6 → 15 of 30; good 1/2 of 0.8 → 12.5 of 20.
    let points: Vec<f64> = mz.scores.iter().map(|s| s.points.unwrap()).collect();
    assert_eq!(points, [25.0, 15.0, 12.5]);
    assert_eq!((mz.total, mz.rank), (Some(52.5), Some(1)));
    assert_eq!(mz.scores[1].value.numerator, Some(24), "the figures behind each score are shown");
    let wj = cards.iter().find(|c| c.name == "明月区卫生健康局").unwrap();
    assert_eq!((wj.total, wj.rank), (None, None), "nothing to score is no score, not zero");
    // A month with nothing in it, a bad period, and another district.
    let empty =
        a.scorecards(&leader, "990102", Assessed::parse("2026-01").unwrap(), Breakdown::Department).await.unwrap();
    assert!(empty.iter().all(|c| c.total.is_none()));
    assert!(matches!(Assessed::parse("2026-13"), Err(Error::Invalid { .. })));
    assert!(matches!(
        a.scorecards(&leader, "990103", Assessed::parse("2026").unwrap(), Breakdown::Department).await,
        Err(Error::Denied(_))
    ));
    let trail = ledger::recent(&hall.t.db, ledger::Log::Audit, Some("assessment_plan_set"), None, 10).await.unwrap();
    assert_eq!(trail.len(), 1);
}
