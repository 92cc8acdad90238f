//! What applications add to the platform's tallies (`kernel::tally`), as pure functions of the
//! records: the write paths add them in the transaction of the change, and
//! [`Services::recount`] derives them all again from the records, so the two cannot differ
//! in what they count.

use chrono::{DateTime, NaiveDate, Utc};

use kernel::tally::{Channel, Count, Key, Measure, Module};

use super::appointments::AppointmentStatus;
use super::calendar::{WorkingCalendar, cst};
use super::catalog::{Handling, ServiceSpec};
use super::workflow::Phase;
use super::{Error, Services, internal, repo};
use kernel::db::from_millis;

/// How many working days a department has to answer a bad rating (整改).
pub(crate) const RECTIFICATION_DAYS: u32 = 15;

fn day(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&cst()).date_naive()
}

fn key(row: &repo::ApplicationRow, spec: &ServiceSpec, at: DateTime<Utc>) -> Key {
    Key {
        day: day(at),
        region_path: kernel::tally::tally_region(&row.region_path),
        department_id: row.department_id.clone(),
        service: spec.code.clone(),
        channel: if row.assisted_by.is_some() { Channel::Window } else { Channel::Online },
    }
}

fn count(key: &Key, measure: Measure, value: i64) -> Count {
    Count { key: key.clone(), measure, value }
}

/// In-person visits a case takes: those its service requires (0 or 1, 最多跑一次), and the
/// one to the window when it was submitted there.
fn visits(row: &repo::ApplicationRow, spec: &ServiceSpec) -> i64 {
    i64::from(spec.visits).max(i64::from(row.assisted_by.is_some()))
}

/// A submission: the application, whether its service is 即办, and its required materials
/// with those the service's definition lets the platform supply (shared data, e-certificates).
pub(crate) fn submitted(row: &repo::ApplicationRow, spec: &ServiceSpec) -> Vec<Count> {
    let k = key(row, spec, from_millis(row.created_at));
    let required = spec.materials.iter().filter(|m| m.required);
    let exempted = required.clone().filter(|m| m.replaced_by.is_some()).count();
    vec![
        count(&k, Measure::Submitted, 1),
        count(&k, Measure::SubmittedInstant, i64::from(spec.handling == Handling::Immediate)),
        count(&k, Measure::MaterialsRequired, i64::try_from(required.count()).unwrap_or(i64::MAX)),
        count(&k, Measure::MaterialsExempted, i64::try_from(exempted).unwrap_or(i64::MAX)),
    ]
}

/// A case reaching a final phase at `at`: withdrawn, or finished (办结) with its time against
/// the deadline, its working days from submission and its visits.
pub(crate) fn finished(
    row: &repo::ApplicationRow,
    spec: &ServiceSpec,
    phase: Phase,
    at: DateTime<Utc>,
    calendar: &WorkingCalendar,
) -> Vec<Count> {
    let k = key(row, spec, at);
    if phase == Phase::Withdrawn {
        return vec![count(&k, Measure::Withdrawn, 1)];
    }
    let on_time = row.due_at.is_none_or(|due| from_millis(due) >= at);
    let days = calendar.working_days_between(day(from_millis(row.created_at)), day(at));
    let visits = visits(row, spec);
    vec![
        count(&k, Measure::Finished, 1),
        count(&k, Measure::FinishedOnTime, i64::from(on_time)),
        count(&k, Measure::FinishedOnline, i64::from(visits == 0)),
        count(&k, Measure::WorkingDays, i64::from(days)),
        count(&k, Measure::Visits, visits),
    ]
}

/// A 好差评 rating of `score` given at `at`.
pub(crate) fn rated(row: &repo::ApplicationRow, spec: &ServiceSpec, score: i64, at: DateTime<Utc>) -> Vec<Count> {
    let k = key(row, spec, at);
    vec![
        count(&k, Measure::Rated, 1),
        count(&k, Measure::RatedGood, i64::from(score >= 4)),
        count(&k, Measure::RatedBad, i64::from(score <= 2)),
    ]
}

/// A bad rating given at `rated_at` answered at `answered_at`: counted when within the 15
/// working days of 整改.
pub(crate) fn rectified(
    row: &repo::ApplicationRow,
    spec: &ServiceSpec,
    rated_at: DateTime<Utc>,
    answered_at: DateTime<Utc>,
    calendar: &WorkingCalendar,
) -> Vec<Count> {
    let in_time = answered_at <= calendar.deadline(rated_at, RECTIFICATION_DAYS);
    vec![count(&key(row, spec, answered_at), Measure::BadRectifiedOnTime, i64::from(in_time))]
}

/// An application behind a figure: what it counted of one measure, and on which day.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct CountedCase {
    pub number: String,
    pub service_code: String,
    pub service_name_zh: String,
    pub service_name_en: String,
    pub department_id: String,
    /// The China day it was counted on.
    pub day: NaiveDate,
    pub value: i64,
}

/// Which applications a figure is asked about: a region subtree (`lower <= path < upper`),
/// China days `from..=to`, optionally one department id or service code.
pub struct CountedQuery<'a> {
    pub region: (&'a str, &'a str),
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub department_id: Option<&'a str>,
    pub service: Option<&'a str>,
}

/// The most applications one question lists, and the most it looks through.
const COUNTED_SHOWN: usize = 200;
const COUNTED_SCANNED: i64 = 20_000;

/// What a booking counts, at the hall's region on the day of its slot: booked unless
/// cancelled, attended or missed once its status says so.
pub(crate) fn booking(row: &repo::AppointmentRow, hall_region: &str) -> Result<Vec<Count>, Error> {
    let k = Key {
        day: day(from_millis(row.slot_start)),
        region_path: kernel::tally::tally_region(hall_region),
        department_id: String::new(),
        service: row.service_code.clone(),
        channel: Channel::Online,
    };
    let status = AppointmentStatus::stored(&row.status)?;
    Ok(vec![
        count(&k, Measure::HallBooked, i64::from(status != AppointmentStatus::Cancelled)),
        count(&k, Measure::HallAttended, i64::from(status == AppointmentStatus::Attended)),
        count(&k, Measure::HallNoShow, i64::from(status == AppointmentStatus::NoShow)),
    ])
}

/// What a write to a booking changes in its counts (`before` none for a new booking).
pub(crate) fn booking_change(
    before: Option<&repo::AppointmentRow>,
    after: &repo::AppointmentRow,
    hall_region: &str,
) -> Result<Vec<Count>, Error> {
    let mut counts = booking(after, hall_region)?;
    if let Some(before) = before {
        counts.extend(booking(before, hall_region)?.into_iter().map(|n| Count { value: -n.value, ..n }));
    }
    Ok(counts)
}

impl Services {
    /// The applications a measure counted (non-zero) in the period, newest first, at most 200:
    /// the records behind a KPI's numerator or denominator. The caller has checked that the
    /// region lies within the reader's jurisdiction.
    pub async fn counted(
        &self,
        _cap: &identity::Capability<kernel::authz::InsightRead>,
        measure: Measure,
        q: &CountedQuery<'_>,
    ) -> Result<Vec<CountedCase>, Error> {
        if measure.subject() != kernel::tally::Subject::Application {
            return Err(Error::invalid("measure", "a measure of applications"));
        }
        let midnight = |d: NaiveDate| {
            use chrono::TimeZone;
            cst()
                .from_local_datetime(&d.and_time(chrono::NaiveTime::MIN))
                .single()
                .map(|t| t.with_timezone(&chrono::Utc))
        };
        let start = midnight(q.from).ok_or_else(|| Error::invalid("from", "a day of the calendar"))?;
        let end = q.to.succ_opt().and_then(midnight).ok_or_else(|| Error::invalid("to", "a day of the calendar"))?;
        let mut c = self.conn().await?;
        let rows = repo::counted_candidates(
            &mut c,
            q.region,
            (kernel::db::millis(start), kernel::db::millis(end)),
            COUNTED_SCANNED,
        )
        .await?;
        let mut out = Vec::new();
        for row in rows {
            if q.department_id.is_some_and(|d| d != row.department_id) {
                continue;
            }
            let spec = self.service_version(&mut c, &row.service_id, row.service_version).await?.spec;
            if q.service.is_some_and(|s| s != spec.code) {
                continue;
            }
            let counts = self.counts_of(&mut c, &row, &spec).await?;
            for n in counts.into_iter().filter(|n| n.measure == measure && n.value != 0) {
                if (q.from..=q.to).contains(&n.key.day) {
                    out.push(CountedCase {
                        number: row.number.clone(),
                        service_code: spec.code.clone(),
                        service_name_zh: spec.name_zh.clone(),
                        service_name_en: spec.name_en.clone(),
                        department_id: row.department_id.clone(),
                        day: n.key.day,
                        value: n.value,
                    });
                }
            }
            if out.len() >= COUNTED_SHOWN {
                break;
            }
        }
        Ok(out)
    }

    /// Everything one application counts, from its row, history and rating.
    async fn counts_of(
        &self,
        c: &mut sqlx::AnyConnection,
        row: &repo::ApplicationRow,
        spec: &ServiceSpec,
    ) -> Result<Vec<Count>, Error> {
        let mut counts = submitted(row, spec);
        let phase = super::applications::stored_phase(&row.status)?;
        if phase.is_final() {
            let history = repo::history(c, &row.id).await?;
            let at = history
                .iter()
                .rev()
                .find(|h| h.to_state == row.state && h.from_state != h.to_state)
                .map(|h| from_millis(h.at))
                .ok_or_else(|| internal(format!("finished case {} has no history", row.number)))?;
            counts.extend(finished(row, spec, phase, at, &self.inner.calendar));
        }
        if let Some(r) = repo::rating(c, &row.id).await? {
            let rated_at = from_millis(r.created_at);
            counts.extend(rated(row, spec, r.score, rated_at));
            if r.score <= 2
                && let Some(replied) = r.replied_at
            {
                counts.extend(rectified(row, spec, rated_at, from_millis(replied), &self.inner.calendar));
            }
        }
        Ok(counts)
    }

    /// Every tally applications add, derived again from the records: what the write paths
    /// should have added up to. `tongban insight recount` compares it with what is stored.
    pub async fn recount(&self) -> Result<Vec<Count>, Error> {
        let mut c = self.conn().await?;
        let mut counts = Vec::new();
        let mut after = String::new();
        loop {
            let rows = repo::applications_after(&mut c, &after, 500).await?;
            let Some(last) = rows.last() else { break };
            after = last.id.clone();
            for row in &rows {
                let spec = self.service_version(&mut c, &row.service_id, row.service_version).await?.spec;
                counts.extend(self.counts_of(&mut c, row, &spec).await?);
            }
        }
        let halls: std::collections::HashMap<String, String> =
            repo::halls(&mut c).await?.into_iter().map(|h| (h.id, h.region_path)).collect();
        let mut after = String::new();
        loop {
            let rows = repo::appointments_after(&mut c, &after, 500).await?;
            let Some(last) = rows.last() else { break };
            after = last.id.clone();
            for row in &rows {
                let region =
                    halls.get(&row.hall_id).ok_or_else(|| internal(format!("booking {} has no hall", row.id)))?;
                counts.extend(booking(row, region)?);
            }
        }
        Ok(kernel::tally::settle(counts))
    }

    /// Replaces the stored tallies of applications with a recount, in one transaction.
    pub async fn store_recount(&self, counts: &[Count]) -> Result<(), Error> {
        let mut tx = self.inner.db.begin().await?;
        kernel::tally::replace(&mut tx, Module::Services, counts).await?;
        tx.commit().await?;
        Ok(())
    }
}
