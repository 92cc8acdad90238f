//! Service halls, slots and appointments.

use sqlx::AnyConnection;

use crate::appointments::AppointmentStatus;

#[derive(sqlx::FromRow)]
pub struct HallRow {
    pub id: String,
    pub region_path: String,
    pub body: String,
}

pub async fn upsert_hall(
    c: &mut AnyConnection,
    id: &str,
    code: &str,
    region_path: &str,
    body: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO halls (id, code, region_path, body, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (code) DO UPDATE SET region_path = excluded.region_path, body = excluded.body",
    )
    .bind(id)
    .bind(code)
    .bind(region_path)
    .bind(body)
    .bind(now)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn halls(c: &mut AnyConnection) -> Result<Vec<HallRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, region_path, body FROM halls ORDER BY code").fetch_all(c).await
}

pub async fn hall_by_code(c: &mut AnyConnection, code: &str) -> Result<Option<HallRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, region_path, body FROM halls WHERE code = $1").bind(code).fetch_optional(c).await
}

pub async fn hall_by_id(c: &mut AnyConnection, id: &str) -> Result<Option<HallRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, region_path, body FROM halls WHERE id = $1").bind(id).fetch_optional(c).await
}

/// Places taken per slot start between `from` and `to` (inclusive).
pub async fn slot_counts(
    c: &mut AnyConnection,
    hall_id: &str,
    service_code: &str,
    from: i64,
    to: i64,
) -> Result<Vec<(i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT slot_start, booked FROM appointment_slots \
         WHERE hall_id = $1 AND service_code = $2 AND slot_start >= $3 AND slot_start <= $4",
    )
    .bind(hall_id)
    .bind(service_code)
    .bind(from)
    .bind(to)
    .fetch_all(c)
    .await
}

/// Takes one place of a slot if any is left: `false` when it is full. One UPDATE, so two
/// bookings cannot both take the last place.
pub async fn take_place(
    c: &mut AnyConnection,
    hall_id: &str,
    service_code: &str,
    slot_start: i64,
    capacity: i64,
) -> Result<bool, sqlx::Error> {
    sqlx::query(
        "INSERT INTO appointment_slots (hall_id, service_code, slot_start, booked) VALUES ($1, $2, $3, 0) \
         ON CONFLICT (hall_id, service_code, slot_start) DO NOTHING",
    )
    .bind(hall_id)
    .bind(service_code)
    .bind(slot_start)
    .execute(&mut *c)
    .await?;
    let done = sqlx::query(
        "UPDATE appointment_slots SET booked = booked + 1 \
         WHERE hall_id = $1 AND service_code = $2 AND slot_start = $3 AND booked < $4",
    )
    .bind(hall_id)
    .bind(service_code)
    .bind(slot_start)
    .bind(capacity)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn release_place(
    c: &mut AnyConnection,
    hall_id: &str,
    service_code: &str,
    slot_start: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE appointment_slots SET booked = booked - 1 \
         WHERE hall_id = $1 AND service_code = $2 AND slot_start = $3 AND booked > 0",
    )
    .bind(hall_id)
    .bind(service_code)
    .bind(slot_start)
    .execute(c)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AppointmentRow {
    pub id: String,
    pub hall_id: String,
    pub service_code: String,
    pub account_id: String,
    pub slot_start: i64,
    pub slot_end: i64,
    pub status: String,
    pub ticket: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Every booking after `after` in id order, `limit` at a time (a recount's walk).
pub async fn appointments_after(
    c: &mut AnyConnection,
    after: &str,
    limit: i64,
) -> Result<Vec<AppointmentRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {APPOINTMENT_COLUMNS} FROM appointments WHERE id > $1 ORDER BY id LIMIT $2"
    )))
    .bind(after)
    .bind(limit)
    .fetch_all(c)
    .await
}

const APPOINTMENT_COLUMNS: &str =
    "id, hall_id, service_code, account_id, slot_start, slot_end, status, ticket, created_at, updated_at";

pub async fn insert_appointment(c: &mut AnyConnection, a: &AppointmentRow) -> Result<(), sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO appointments ({APPOINTMENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    )))
    .bind(&a.id)
    .bind(&a.hall_id)
    .bind(&a.service_code)
    .bind(&a.account_id)
    .bind(a.slot_start)
    .bind(a.slot_end)
    .bind(&a.status)
    .bind(&a.ticket)
    .bind(a.created_at)
    .bind(a.updated_at)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn appointment(c: &mut AnyConnection, id: &str) -> Result<Option<AppointmentRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {APPOINTMENT_COLUMNS} FROM appointments WHERE id = $1")))
        .bind(id)
        .fetch_optional(c)
        .await
}

/// A booking of the person for the service that is still to come.
pub async fn open_booking(
    c: &mut AnyConnection,
    account_id: &str,
    service_code: &str,
    now: i64,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM appointments WHERE account_id = $1 AND service_code = $2 AND status = 'booked' \
         AND slot_end > $3 LIMIT 1",
    )
    .bind(account_id)
    .bind(service_code)
    .bind(now)
    .fetch_optional(c)
    .await
}

pub async fn appointments_of(c: &mut AnyConnection, account_id: &str) -> Result<Vec<AppointmentRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {APPOINTMENT_COLUMNS} FROM appointments WHERE account_id = $1 ORDER BY slot_start DESC LIMIT 200"
    )))
    .bind(account_id)
    .fetch_all(c)
    .await
}

pub async fn hall_appointments(
    c: &mut AnyConnection,
    hall_id: &str,
    from: i64,
    to: i64,
) -> Result<Vec<AppointmentRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {APPOINTMENT_COLUMNS} FROM appointments WHERE hall_id = $1 AND slot_start >= $2 AND slot_start < $3 \
         AND status <> 'cancelled' ORDER BY slot_start, ticket"
    )))
    .bind(hall_id)
    .bind(from)
    .bind(to)
    .fetch_all(c)
    .await
}

/// Changes the status if it still is `from`; `false` otherwise.
pub async fn set_appointment_status(
    c: &mut AnyConnection,
    id: &str,
    from: AppointmentStatus,
    to: AppointmentStatus,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE appointments SET status = $3, updated_at = $4 WHERE id = $1 AND status = $2")
        .bind(id)
        .bind(from.as_str())
        .bind(to.as_str())
        .bind(now)
        .execute(c)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Moves a booking if nobody changed it since `seen` (its `updated_at`).
pub async fn move_appointment(
    c: &mut AnyConnection,
    id: &str,
    seen: i64,
    start: i64,
    end: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE appointments SET slot_start = $3, slot_end = $4, updated_at = $5 \
         WHERE id = $1 AND updated_at = $2 AND status = 'booked'",
    )
    .bind(id)
    .bind(seen)
    .bind(start)
    .bind(end)
    .bind(now)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Start times of the person's no-shows since `since`, newest first.
pub async fn no_shows_since(c: &mut AnyConnection, account_id: &str, since: i64) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT slot_start FROM appointments WHERE account_id = $1 AND status = 'no_show' AND slot_start >= $2 \
         ORDER BY slot_start DESC",
    )
    .bind(account_id)
    .bind(since)
    .fetch_all(c)
    .await
}

/// Bookings whose slot ended before `now` without a check-in.
pub async fn unattended_before(c: &mut AnyConnection, now: i64) -> Result<Vec<AppointmentRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {APPOINTMENT_COLUMNS} FROM appointments WHERE status = 'booked' AND slot_end < $1 LIMIT 1000"
    )))
    .bind(now)
    .fetch_all(c)
    .await
}
