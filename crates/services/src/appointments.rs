//! Appointments (预约办理): service halls with windows, opening hours on working days and a
//! number of places per slot for each service; residents book, reschedule and cancel, and
//! get an iCalendar file; the window checks them in, and whoever does not come by the end
//! of the slot is recorded as a no-show. Three no-shows in 90 days suspend online booking
//! for 30 days (the usual 爽约 rule), so that places are not held by people who do not come.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use icalendar::{Calendar, Component, Event, EventLike};
use kernel::audit::{Action, Outcome};
use kernel::error::ErrorCode;
use serde::{Deserialize, Serialize};

use super::calendar::cst;
use super::{APPLICATION_CLASSIFICATION, Error, Services, internal, repo};
use identity::{Capability, Principal};
use kernel::authz::{ApplicationHandle, ServiceManage};
use kernel::db::{millis, new_id};
use ledger::{self, Log};

/// Booking opens this many days ahead.
pub const BOOKING_DAYS: i64 = 14;
/// Bookings close this long before the slot starts.
const LEAD_MINUTES: i64 = 30;
/// No-shows that suspend online booking, the window they count in, and the suspension.
const NO_SHOW_LIMIT: i64 = 3;
const NO_SHOW_WINDOW_DAYS: i64 = 90;
const SUSPENSION_DAYS: i64 = 30;

/// A service hall (政务服务中心) as published.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HallSpec {
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    /// The region the hall serves (its code).
    pub region: String,
    pub address_zh: String,
    pub address_en: String,
    /// Opening periods on working days, China Standard Time: `[["09:00", "12:00"], …]`.
    pub opening: Vec<(String, String)>,
    pub slot_minutes: u32,
    pub windows: Vec<HallWindow>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HallWindow {
    pub number: String,
    pub services: Vec<String>,
}

impl HallSpec {
    /// Places per slot for a service: one per window that handles it.
    pub fn capacity(&self, service: &str) -> u32 {
        u32::try_from(self.windows.iter().filter(|w| w.services.iter().any(|s| s == service)).count()).unwrap_or(0)
    }

    fn periods(&self) -> Result<Vec<(NaiveTime, NaiveTime)>, Error> {
        self.opening
            .iter()
            .map(|(a, b)| {
                let t = |s: &str| NaiveTime::parse_from_str(s, "%H:%M");
                match (t(a), t(b)) {
                    (Ok(a), Ok(b)) if a < b => Ok((a, b)),
                    _ => Err(Error::invalid("opening", "periods such as [\"09:00\", \"12:00\"]")),
                }
            })
            .collect()
    }

    /// Slot starts of a day, in UTC.
    fn slot_starts(&self, day: NaiveDate) -> Result<Vec<DateTime<Utc>>, Error> {
        let step = Duration::minutes(i64::from(self.slot_minutes.max(5)));
        let mut out = Vec::new();
        for (open, close) in self.periods()? {
            let mut t = day.and_time(open);
            while t + step <= day.and_time(close) {
                if let Some(local) = cst().from_local_datetime(&t).single() {
                    out.push(local.with_timezone(&Utc));
                }
                t += step;
            }
        }
        Ok(out)
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HallView {
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    pub address_zh: String,
    pub address_en: String,
    pub region_path: String,
    pub opening: Vec<(String, String)>,
    pub slot_minutes: u32,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SlotView {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub capacity: u32,
    pub remaining: u32,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, strum::IntoStaticStr, strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum AppointmentStatus {
    Booked,
    Cancelled,
    Attended,
    NoShow,
}

impl AppointmentStatus {
    pub(crate) fn as_str(self) -> &'static str {
        self.into()
    }

    /// The status a row holds; anything else is said as a fault, never read as booked.
    pub(crate) fn stored(value: &str) -> Result<AppointmentStatus, Error> {
        value.parse().map_err(|_| Error::Internal(format!("an appointment holds the unknown status {value:?}")))
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AppointmentView {
    pub id: String,
    /// Shown at the window and on the queue screen.
    pub ticket: String,
    pub hall: HallView,
    pub service_code: String,
    pub service_name_zh: String,
    pub service_name_en: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub status: AppointmentStatus,
    /// Whether it can still be rescheduled or cancelled.
    pub changeable: bool,
    /// For staff lists: who booked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub person: Option<String>,
}

/// What the no-show pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct NoShowReport {
    pub recorded: usize,
}

fn hall_view(row: &repo::HallRow, spec: &HallSpec) -> HallView {
    HallView {
        code: spec.code.clone(),
        name_zh: spec.name_zh.clone(),
        name_en: spec.name_en.clone(),
        address_zh: spec.address_zh.clone(),
        address_en: spec.address_en.clone(),
        region_path: row.region_path.clone(),
        opening: spec.opening.clone(),
        slot_minutes: spec.slot_minutes,
    }
}

fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

kernel::area! {
    /// Service halls, window slots, bookings, check-in and no-shows.
    Appointments of Services
}

impl Appointments<'_> {
    /// Publishes (or updates) a hall. Bookings already made keep their slots.
    pub async fn publish_hall(
        &self,
        _cap: &Capability<ServiceManage>,
        spec: HallSpec,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let code_ok = !spec.code.is_empty()
            && spec.code.len() <= 40
            && spec.code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !code_ok {
            return Err(Error::invalid("code", "letters, digits and '-', at most 40"));
        }
        if !(5..=240).contains(&spec.slot_minutes) {
            return Err(Error::invalid("slot_minutes", "between 5 and 240 minutes"));
        }
        spec.periods()?;
        if spec.windows.is_empty() {
            return Err(Error::invalid("windows", "at least one window"));
        }
        let region = self.inner.identity.organisation().region_path(&spec.region).await?;
        let body = serde_json::to_string(&spec).map_err(internal)?;
        let mut tx = self.inner.db.begin().await?;
        repo::upsert_hall(&mut tx, &new_id(), &spec.code, &region, &body, millis(now)).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn hall(&self, code: &str) -> Result<(repo::HallRow, HallSpec), Error> {
        let mut c = self.conn().await?;
        let row = repo::hall_by_code(&mut c, code).await?.ok_or(Error::NotFound("hall"))?;
        let spec = serde_json::from_str(&row.body).map_err(internal)?;
        Ok((row, spec))
    }

    /// Halls where a service can be booked, those of the caller's own district first.
    pub async fn halls_for(&self, service: &str, near: Option<&str>) -> Result<Vec<HallView>, Error> {
        let s = self.service(service).await?;
        let mut c = self.conn().await?;
        let mut out = Vec::new();
        for row in repo::halls(&mut c).await? {
            let spec: HallSpec = serde_json::from_str(&row.body).map_err(internal)?;
            if spec.capacity(&s.spec.code) > 0 {
                out.push(hall_view(&row, &spec));
            }
        }
        out.sort_by_key(|h| !near.is_some_and(|p| p.starts_with(&h.region_path)));
        Ok(out)
    }

    /// The slots of a day with their free places; none on a day off or outside the
    /// booking window.
    pub async fn slots(
        &self,
        hall: &str,
        service: &str,
        day: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<Vec<SlotView>, Error> {
        let (row, spec) = self.hall(hall).await?;
        let service = self.service(service).await?;
        let capacity = spec.capacity(&service.spec.code);
        if capacity == 0 {
            return Err(Error::NotFound("this service at this hall"));
        }
        let today = now.with_timezone(&cst()).date_naive();
        if !self.inner.calendar.is_working_day(day) || day < today || day > today + Duration::days(BOOKING_DAYS) {
            return Ok(Vec::new());
        }
        let starts = spec.slot_starts(day)?;
        let (Some(first), Some(last)) = (starts.first(), starts.last()) else { return Ok(Vec::new()) };
        let mut c = self.conn().await?;
        let booked = repo::slot_counts(&mut c, &row.id, &service.spec.code, millis(*first), millis(*last)).await?;
        let step = Duration::minutes(i64::from(spec.slot_minutes));
        Ok(starts
            .into_iter()
            .filter(|s| *s - Duration::minutes(LEAD_MINUTES) > now)
            .map(|s| {
                let taken = booked.iter().find(|(t, _)| *t == millis(s)).map(|(_, n)| *n).unwrap_or(0);
                let remaining = u32::try_from(i64::from(capacity) - taken).unwrap_or(0);
                SlotView { start: s, end: s + step, capacity, remaining }
            })
            .collect())
    }

    /// Checks that `start` is a bookable slot of the hall for the service.
    async fn check_slot(
        &self,
        spec: &HallSpec,
        service_code: &str,
        start: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(u32, DateTime<Utc>), Error> {
        let capacity = spec.capacity(service_code);
        if capacity == 0 {
            return Err(Error::NotFound("this service at this hall"));
        }
        let day = start.with_timezone(&cst()).date_naive();
        let today = now.with_timezone(&cst()).date_naive();
        if start - Duration::minutes(LEAD_MINUTES) <= now {
            return Err(Error::conflict(ErrorCode::SlotUnavailable, "this time has passed or is about to start"));
        }
        if day > today + Duration::days(BOOKING_DAYS) || !self.inner.calendar.is_working_day(day) {
            return Err(Error::conflict(ErrorCode::SlotUnavailable, "the hall does not take bookings for that day"));
        }
        if !spec.slot_starts(day)?.contains(&start) {
            return Err(Error::invalid("start", "the start of one of the hall's slots"));
        }
        Ok((capacity, start + Duration::minutes(i64::from(spec.slot_minutes))))
    }

    async fn check_not_suspended(&self, me: &Principal, now: DateTime<Utc>) -> Result<(), Error> {
        let mut c = self.conn().await?;
        let since = millis(now - Duration::days(NO_SHOW_WINDOW_DAYS));
        let no_shows = repo::no_shows_since(&mut c, &me.account_id, since).await?;
        if no_shows.len() >= usize::try_from(NO_SHOW_LIMIT).unwrap_or(3)
            && let Some(latest) = no_shows.first()
            && at(*latest) + Duration::days(SUSPENSION_DAYS) > now
        {
            let until = (at(*latest) + Duration::days(SUSPENSION_DAYS)).with_timezone(&cst()).format("%Y-%m-%d");
            return Err(Error::conflict(
                ErrorCode::BookingSuspended,
                format!(
                    "{NO_SHOW_LIMIT} missed appointments in {NO_SHOW_WINDOW_DAYS} days: online booking is open again on {until}; the hall still serves you in person"
                ),
            ));
        }
        Ok(())
    }

    /// Books a place. One open booking per service and person.
    pub async fn book(
        &self,
        me: &Principal,
        hall: &str,
        service: &str,
        start: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<AppointmentView, Error> {
        let (row, spec) = self.hall(hall).await?;
        let service = self.service(service).await?;
        let code = service.spec.code.clone();
        let (capacity, end) = self.check_slot(&spec, &code, start, now).await?;
        self.check_not_suspended(me, now).await?;
        let id = new_id();
        let mut tx = self.inner.db.begin().await?;
        if repo::open_booking(&mut tx, &me.account_id, &code, millis(now)).await?.is_some() {
            return Err(Error::conflict(
                ErrorCode::AlreadyBooked,
                "you already have a booking for this service: change that one",
            ));
        }
        if !repo::take_place(&mut tx, &row.id, &code, millis(start), i64::from(capacity)).await? {
            return Err(Error::conflict(ErrorCode::SlotFull, "this time is fully booked: choose another"));
        }
        let ticket =
            format!("{}{:03}", spec.code.chars().rev().take(1).collect::<String>(), rand::random::<u16>() % 1000);
        let booked = repo::AppointmentRow {
            id: id.clone(),
            hall_id: row.id.clone(),
            service_code: code,
            account_id: me.account_id.clone(),
            slot_start: millis(start),
            slot_end: millis(end),
            status: AppointmentStatus::Booked.as_str().into(),
            ticket,
            created_at: millis(now),
            updated_at: millis(now),
        };
        repo::insert_appointment(&mut tx, &booked).await?;
        kernel::tally::add(&mut tx, &crate::tallies::booking_change(None, &booked, &row.region_path)?).await?;
        tx.commit().await?;
        self.my_appointment(me, &id, now).await
    }

    /// Moves a booking to another slot of the same hall and service, keeping the old place
    /// until the new one is taken.
    pub async fn reschedule(
        &self,
        me: &Principal,
        id: &str,
        start: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<AppointmentView, Error> {
        let current = self.own_appointment(me, id).await?;
        if !changeable(&current, now) {
            return Err(Error::conflict(ErrorCode::AppointmentClosed, "this appointment can no longer be changed"));
        }
        let mut c = self.conn().await?;
        let row = repo::hall_by_id(&mut c, &current.hall_id).await?.ok_or(Error::NotFound("hall"))?;
        drop(c);
        let spec: HallSpec = serde_json::from_str(&row.body).map_err(internal)?;
        let (capacity, end) = self.check_slot(&spec, &current.service_code, start, now).await?;
        let mut tx = self.inner.db.begin().await?;
        if !repo::take_place(&mut tx, &row.id, &current.service_code, millis(start), i64::from(capacity)).await? {
            return Err(Error::conflict(ErrorCode::SlotFull, "this time is fully booked: choose another"));
        }
        repo::release_place(&mut tx, &row.id, &current.service_code, current.slot_start).await?;
        if !repo::move_appointment(&mut tx, id, current.updated_at, millis(start), millis(end), millis(now)).await? {
            return Err(Error::conflict(ErrorCode::CaseChanged, "the appointment changed meanwhile: reload it"));
        }
        let moved = repo::AppointmentRow { slot_start: millis(start), slot_end: millis(end), ..current.clone() };
        kernel::tally::add(&mut tx, &crate::tallies::booking_change(Some(&current), &moved, &row.region_path)?).await?;
        tx.commit().await?;
        self.my_appointment(me, id, now).await
    }

    /// Cancels a booking before its slot; the place is free again at once.
    pub async fn cancel_appointment(
        &self,
        me: &Principal,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<AppointmentView, Error> {
        let current = self.own_appointment(me, id).await?;
        if !changeable(&current, now) {
            return Err(Error::conflict(ErrorCode::AppointmentClosed, "this appointment can no longer be changed"));
        }
        let mut tx = self.inner.db.begin().await?;
        if !repo::set_appointment_status(
            &mut tx,
            id,
            AppointmentStatus::Booked,
            AppointmentStatus::Cancelled,
            millis(now),
        )
        .await?
        {
            return Err(Error::conflict(ErrorCode::CaseChanged, "the appointment changed meanwhile: reload it"));
        }
        repo::release_place(&mut tx, &current.hall_id, &current.service_code, current.slot_start).await?;
        self.count_status(&mut tx, &current, AppointmentStatus::Cancelled).await?;
        tx.commit().await?;
        self.my_appointment(me, id, now).await
    }

    /// Adds what a booking's new status changes in the tallies, in the transaction of the change.
    async fn count_status(
        &self,
        tx: &mut sqlx::AnyConnection,
        before: &repo::AppointmentRow,
        status: AppointmentStatus,
    ) -> Result<(), Error> {
        let hall = repo::hall_by_id(tx, &before.hall_id).await?.ok_or(Error::NotFound("hall"))?;
        let after = repo::AppointmentRow { status: status.as_str().into(), ..before.clone() };
        kernel::tally::add(tx, &crate::tallies::booking_change(Some(before), &after, &hall.region_path)?).await?;
        Ok(())
    }

    async fn own_appointment(&self, me: &Principal, id: &str) -> Result<repo::AppointmentRow, Error> {
        let mut c = self.conn().await?;
        repo::appointment(&mut c, id)
            .await?
            .filter(|a| a.account_id == me.account_id)
            .ok_or(Error::NotFound("appointment"))
    }

    async fn appointment_view(
        &self,
        a: &repo::AppointmentRow,
        now: DateTime<Utc>,
        person: Option<String>,
    ) -> Result<AppointmentView, Error> {
        let mut c = self.conn().await?;
        let row = repo::hall_by_id(&mut c, &a.hall_id).await?.ok_or(Error::NotFound("hall"))?;
        drop(c);
        let spec: HallSpec = serde_json::from_str(&row.body).map_err(internal)?;
        let (name_zh, name_en) = match self.service(&a.service_code).await {
            Ok(s) => (s.spec.name_zh.clone(), s.spec.name_en.clone()),
            Err(_) => (a.service_code.clone(), a.service_code.clone()),
        };
        Ok(AppointmentView {
            id: a.id.clone(),
            ticket: a.ticket.clone(),
            hall: hall_view(&row, &spec),
            service_code: a.service_code.clone(),
            service_name_zh: name_zh,
            service_name_en: name_en,
            start: at(a.slot_start),
            end: at(a.slot_end),
            status: AppointmentStatus::stored(&a.status)?,
            changeable: changeable(a, now),
            person,
        })
    }

    pub async fn my_appointment(&self, me: &Principal, id: &str, now: DateTime<Utc>) -> Result<AppointmentView, Error> {
        let a = self.own_appointment(me, id).await?;
        self.appointment_view(&a, now, None).await
    }

    /// The caller's bookings, the coming ones first.
    pub async fn my_appointments(&self, me: &Principal, now: DateTime<Utc>) -> Result<Vec<AppointmentView>, Error> {
        let mut c = self.conn().await?;
        let rows = repo::appointments_of(&mut c, &me.account_id).await?;
        drop(c);
        let mut out = Vec::with_capacity(rows.len());
        for a in &rows {
            out.push(self.appointment_view(a, now, None).await?);
        }
        out.sort_by_key(|a| (a.status != AppointmentStatus::Booked, a.start));
        Ok(out)
    }

    /// The booking as an iCalendar (RFC 5545) file for the person's calendar.
    pub async fn appointment_ics(&self, me: &Principal, id: &str, now: DateTime<Utc>) -> Result<String, Error> {
        let a = self.my_appointment(me, id, now).await?;
        let event = Event::new()
            .uid(&format!("{}@tongban", a.id))
            .timestamp(now)
            .starts(a.start)
            .ends(a.end)
            .summary(&format!("{} · {}", a.service_name_zh, a.hall.name_zh))
            .description(&format!(
                "预约号 {}。请携带本人有效身份证件，提前 10 分钟到达。\nTicket {}: bring your ID and arrive 10 minutes early.",
                a.ticket, a.ticket
            ))
            .location(&a.hall.address_zh)
            .done();
        let mut calendar = Calendar::new();
        calendar.name("通办 预约").push(event);
        Ok(calendar.done().to_string())
    }

    /// A hall's bookings of one day (today by default), for the window, within the clerk's
    /// jurisdiction.
    pub async fn hall_day(
        &self,
        cap: &Capability<ApplicationHandle>,
        hall: &str,
        day: Option<NaiveDate>,
        now: DateTime<Utc>,
    ) -> Result<Vec<AppointmentView>, Error> {
        let day = day.unwrap_or_else(|| now.with_timezone(&cst()).date_naive());
        let (row, _) = self.hall(hall).await?;
        cap.check_record(&row.region_path, APPLICATION_CLASSIFICATION)?;
        let from = cst().from_local_datetime(&day.and_time(NaiveTime::MIN)).single().ok_or_else(|| internal("day"))?;
        let mut c = self.conn().await?;
        let rows = repo::hall_appointments(
            &mut c,
            &row.id,
            millis(from.with_timezone(&Utc)),
            millis((from + Duration::days(1)).with_timezone(&Utc)),
        )
        .await?;
        drop(c);
        let mut out = Vec::with_capacity(rows.len());
        for a in &rows {
            let name = self.inner.identity.accounts().display_name(&a.account_id).await?;
            out.push(self.appointment_view(a, now, Some(name)).await?);
        }
        Ok(out)
    }

    /// Halls whose region lies within the caller's jurisdiction.
    pub async fn halls_of(&self, cap: &Capability<ApplicationHandle>) -> Result<Vec<HallView>, Error> {
        let mut c = self.conn().await?;
        let mut out = Vec::new();
        for row in repo::halls(&mut c).await? {
            if cap.check_record(&row.region_path, APPLICATION_CLASSIFICATION).is_ok() {
                let spec: HallSpec = serde_json::from_str(&row.body).map_err(internal)?;
                out.push(hall_view(&row, &spec));
            }
        }
        Ok(out)
    }

    /// The window records that the person came.
    pub async fn check_in(
        &self,
        cap: &Capability<ApplicationHandle>,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<AppointmentView, Error> {
        let mut c = self.conn().await?;
        let a = repo::appointment(&mut c, id).await?.ok_or(Error::NotFound("appointment"))?;
        let hall = repo::hall_by_id(&mut c, &a.hall_id).await?.ok_or(Error::NotFound("hall"))?;
        drop(c);
        cap.check_record(&hall.region_path, APPLICATION_CLASSIFICATION)?;
        let day = |t: DateTime<Utc>| t.with_timezone(&cst()).date_naive();
        if day(at(a.slot_start)) != day(now) {
            return Err(Error::conflict(ErrorCode::AppointmentClosed, "only today's appointments can be checked in"));
        }
        let mut tx = self.inner.db.begin().await?;
        if !repo::set_appointment_status(
            &mut tx,
            id,
            AppointmentStatus::Booked,
            AppointmentStatus::Attended,
            millis(now),
        )
        .await?
        {
            return Err(Error::conflict(ErrorCode::AppointmentClosed, "this appointment is not open"));
        }
        self.count_status(&mut tx, &a, AppointmentStatus::Attended).await?;
        let mut entry = ledger::Entry::new(Action::AppointmentCheckedIn, Outcome::Success, now);
        entry.actor = Some(cap.account_id().into());
        entry.actor_name = Some(cap.username().into());
        entry.object = Some(format!("appointment:{id}"));
        entry.subject = Some(a.account_id.clone());
        entry.jurisdiction = Some(hall.region_path.clone());
        ledger::append_in(&mut tx, Log::Audit, &entry).await?;
        tx.commit().await?;
        let name = self.inner.identity.accounts().display_name(&a.account_id).await?;
        let mut c = self.conn().await?;
        let a = repo::appointment(&mut c, id).await?.ok_or(Error::NotFound("appointment"))?;
        drop(c);
        self.appointment_view(&a, now, Some(name)).await
    }

    /// Records as no-shows the bookings whose slot ended without a check-in, with an entry
    /// in the person's record of what happened to their data.
    pub async fn record_no_shows(&self, now: DateTime<Utc>) -> Result<NoShowReport, Error> {
        let mut c = self.conn().await?;
        let due = repo::unattended_before(&mut c, millis(now)).await?;
        drop(c);
        let mut report = NoShowReport::default();
        for a in due {
            let mut tx = self.inner.db.begin().await?;
            if repo::set_appointment_status(
                &mut tx,
                &a.id,
                AppointmentStatus::Booked,
                AppointmentStatus::NoShow,
                millis(now),
            )
            .await?
            {
                self.count_status(&mut tx, &a, AppointmentStatus::NoShow).await?;
                let mut entry = ledger::Entry::new(Action::AppointmentNoShow, Outcome::Success, now);
                entry.actor = Some("system".into());
                entry.object = Some(format!("appointment:{}", a.id));
                entry.subject = Some(a.account_id.clone());
                ledger::append_in(&mut tx, Log::Audit, &entry).await?;
                report.recorded += 1;
            }
            tx.commit().await?;
        }
        Ok(report)
    }
}

fn changeable(a: &repo::AppointmentRow, now: DateTime<Utc>) -> bool {
    a.status == AppointmentStatus::Booked.as_str() && at(a.slot_start) - Duration::minutes(LEAD_MINUTES) > now
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hall() -> HallSpec {
        HallSpec {
            code: "H1".into(),
            name_zh: "明月区政务服务中心".into(),
            name_en: "Mingyue service centre".into(),
            region: "990102".into(),
            address_zh: "明月区彩云路 1 号".into(),
            address_en: "1 Caiyun Road".into(),
            opening: vec![("09:00".into(), "12:00".into()), ("13:30".into(), "17:00".into())],
            slot_minutes: 30,
            windows: vec![
                HallWindow { number: "1".into(), services: vec!["A".into(), "B".into()] },
                HallWindow { number: "2".into(), services: vec!["A".into()] },
            ],
        }
    }

    #[test]
    fn slots_follow_opening_hours_in_china_time() {
        let h = hall();
        let day = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap_or_default();
        let starts = h.slot_starts(day).unwrap_or_default();
        assert_eq!(starts.len(), 6 + 7);
        assert_eq!(starts.first().map(|s| s.to_rfc3339()), Some("2026-11-23T01:00:00+00:00".to_string()));
        assert_eq!(starts.last().map(|s| s.to_rfc3339()), Some("2026-11-23T08:30:00+00:00".to_string()));
        assert_eq!((h.capacity("A"), h.capacity("B"), h.capacity("C")), (2, 1, 0));
    }
}
