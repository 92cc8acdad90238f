//! Appointment pages: choose a hall, a day and a slot; see, reschedule and cancel bookings and
//! download them as calendar files; the window's day list with check-in.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use chrono::{DateTime, Duration, FixedOffset, NaiveDate, Utc};
use serde::Deserialize;

use super::{CsrfForm, EmptyForm, Layout, PageCtx, PageResult};
use crate::AppState;
use crate::error::ApiError;
use crate::i18n::{Lang, text};
use kernel::authz::ApplicationHandle;
use services::{AppointmentStatus, AppointmentView, BOOKING_DAYS, HallView};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/services/{code}/book", get(book_page).post(book))
        .route("/appointments", get(my_appointments))
        .route("/appointments/{id}/cancel", post(cancel))
        .route("/appointments/{id}/ics", get(ics))
        .route("/staff/appointments", get(hall_day))
        .route("/staff/appointments/{id}/check-in", post(check_in))
}

/// Times are shown in China Standard Time, as the halls keep them.
fn china(t: DateTime<Utc>) -> DateTime<FixedOffset> {
    t.with_timezone(&services::calendar::cst())
}

fn status_text(lang: Lang, s: AppointmentStatus) -> &'static str {
    text(
        lang,
        match s {
            AppointmentStatus::Booked => "booking.status_booked",
            AppointmentStatus::Cancelled => "booking.status_cancelled",
            AppointmentStatus::Attended => "booking.status_attended",
            AppointmentStatus::NoShow => "booking.status_no_show",
        },
    )
}

#[derive(Deserialize, Default)]
struct BookQuery {
    #[serde(default)]
    hall: String,
    #[serde(default)]
    date: String,
    #[serde(default)]
    reschedule: String,
}

struct Choice {
    value: String,
    label: String,
    current: bool,
}

struct SlotRow {
    value: String,
    label: String,
    remaining: u32,
}

#[derive(Template)]
#[template(path = "book.html")]
struct BookPage {
    l: Layout,
    code: String,
    service: String,
    halls: Vec<Choice>,
    days: Vec<Choice>,
    hall: String,
    date: String,
    reschedule: String,
    slots: Vec<SlotRow>,
    chosen: bool,
}

async fn book_page(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(code): Path<String>,
    Query(q): Query<BookQuery>,
) -> PageResult {
    let s = ctx.ready()?;
    let svc = state.services.service(&code).await?;
    let zh = ctx.prefs.lang == Lang::Zh;
    let near = s.principal.region.as_ref().map(|r| r.path.clone());
    let halls: Vec<HallView> = state.services.appointments().halls_for(&code, near.as_deref()).await?;
    let hall =
        if q.hall.is_empty() { halls.first().map(|h| h.code.clone()).unwrap_or_default() } else { q.hall.clone() };
    let now = Utc::now();
    let today = china(now).date_naive();
    let weekday = |d: NaiveDate| {
        let names_zh = ["一", "二", "三", "四", "五", "六", "日"];
        let i = d.format("%u").to_string().parse::<usize>().unwrap_or(1).saturating_sub(1);
        if zh {
            format!("{}（周{}）", d.format("%m月%d日"), names_zh.get(i).unwrap_or(&""))
        } else {
            d.format("%a %d %b").to_string()
        }
    };
    let days: Vec<NaiveDate> = (0..=BOOKING_DAYS)
        .map(|i| today + Duration::days(i))
        .filter(|d| state.services.calendar().is_working_day(*d))
        .collect();
    let date = NaiveDate::parse_from_str(&q.date, "%Y-%m-%d").ok().filter(|d| days.contains(d));
    let mut slots = Vec::new();
    if let Some(d) = date
        && !hall.is_empty()
    {
        match state.services.appointments().slots(&hall, &code, d, now).await {
            Ok(list) => {
                slots = list
                    .into_iter()
                    .map(|x| SlotRow {
                        value: x.start.to_rfc3339(),
                        label: format!("{}–{}", china(x.start).format("%H:%M"), china(x.end).format("%H:%M")),
                        remaining: x.remaining,
                    })
                    .collect()
            }
            Err(e) => return Err(e.into()),
        }
    }
    let page = BookPage {
        l: ctx.layout("booking.title"),
        code: svc.spec.code.clone(),
        service: if zh { svc.spec.name_zh.clone() } else { svc.spec.name_en.clone() },
        halls: halls
            .iter()
            .map(|h| Choice {
                value: h.code.clone(),
                label: format!(
                    "{} · {}",
                    if zh { &h.name_zh } else { &h.name_en },
                    if zh { &h.address_zh } else { &h.address_en }
                ),
                current: h.code == hall,
            })
            .collect(),
        days: days
            .iter()
            .map(|d| Choice { value: d.to_string(), label: weekday(*d), current: Some(*d) == date })
            .collect(),
        hall,
        date: date.map(|d| d.to_string()).unwrap_or_default(),
        reschedule: q.reschedule.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(64).collect(),
        slots,
        chosen: date.is_some(),
    };
    Ok(ctx.page(StatusCode::OK, &page))
}

#[derive(Deserialize)]
struct BookForm {
    #[serde(default)]
    hall: String,
    #[serde(default)]
    start: String,
    #[serde(default)]
    reschedule: String,
}

async fn book(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(code): Path<String>,
    CsrfForm(form): CsrfForm<BookForm>,
) -> PageResult {
    let s = ctx.ready()?;
    let Ok(start) = DateTime::parse_from_rfc3339(form.start.trim()).map(|t| t.with_timezone(&Utc)) else {
        return Ok(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            crate::error::ErrorCode::InvalidField,
            "choose a time",
        )
        .into_response());
    };
    let now = Utc::now();
    let done = if form.reschedule.is_empty() {
        state.services.appointments().book(&s.principal, &form.hall, &code, start, now).await
    } else {
        state.services.appointments().reschedule(&s.principal, &form.reschedule, start, now).await
    };
    done?;
    Ok(Redirect::to("/appointments").into_response())
}

struct Row {
    a: AppointmentView,
    service: String,
    hall: String,
    address: String,
    when: String,
    status: &'static str,
}

#[derive(Template)]
#[template(path = "appointments.html")]
struct AppointmentsPage {
    l: Layout,
    rows: Vec<Row>,
}

fn rows(lang: Lang, list: Vec<AppointmentView>) -> Vec<Row> {
    let zh = lang == Lang::Zh;
    list.into_iter()
        .map(|a| Row {
            service: if zh { a.service_name_zh.clone() } else { a.service_name_en.clone() },
            hall: if zh { a.hall.name_zh.clone() } else { a.hall.name_en.clone() },
            address: if zh { a.hall.address_zh.clone() } else { a.hall.address_en.clone() },
            when: format!("{}–{}", china(a.start).format("%Y-%m-%d %H:%M"), china(a.end).format("%H:%M")),
            status: status_text(lang, a.status),
            a,
        })
        .collect()
}

async fn my_appointments(State(state): State<AppState>, ctx: PageCtx) -> PageResult {
    let s = ctx.ready()?;
    match state.services.appointments().my_appointments(&s.principal, Utc::now()).await {
        Ok(list) => Ok(ctx.page(
            StatusCode::OK,
            &AppointmentsPage { l: ctx.layout("booking.mine"), rows: rows(ctx.prefs.lang, list) },
        )),
        Err(e) => Err(e.into()),
    }
}

async fn cancel(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> PageResult {
    let s = ctx.ready()?;
    state.services.appointments().cancel_appointment(&s.principal, &id, Utc::now()).await?;
    Ok(Redirect::to("/appointments").into_response())
}

async fn ics(State(state): State<AppState>, ctx: PageCtx, Path(id): Path<String>) -> PageResult {
    let s = ctx.ready()?;
    let text = state.services.appointments().appointment_ics(&s.principal, &id, Utc::now()).await?;
    Ok(crate::api::appointments::calendar_file(text, &id))
}

#[derive(Deserialize, Default)]
struct DayQuery {
    #[serde(default)]
    hall: String,
    #[serde(default)]
    date: String,
}

#[derive(Template)]
#[template(path = "hall_day.html")]
struct HallDayPage {
    l: Layout,
    halls: Vec<Choice>,
    date: String,
    rows: Vec<Row>,
    today: bool,
}

async fn hall_day(State(state): State<AppState>, ctx: PageCtx, Query(q): Query<DayQuery>) -> PageResult {
    let s = ctx.ready()?;
    let cap = s.principal.authorize::<ApplicationHandle>()?;
    let zh = ctx.prefs.lang == Lang::Zh;
    let halls = state.services.appointments().halls_of(&cap).await?;
    let hall =
        if q.hall.is_empty() { halls.first().map(|h| h.code.clone()).unwrap_or_default() } else { q.hall.clone() };
    let now = Utc::now();
    let today = china(now).date_naive();
    let date = NaiveDate::parse_from_str(&q.date, "%Y-%m-%d").unwrap_or(today);
    let list = if hall.is_empty() {
        Vec::new()
    } else {
        state.services.appointments().hall_day(&cap, &hall, Some(date), now).await?
    };
    let page = HallDayPage {
        l: ctx.layout("booking.staff_title"),
        halls: halls
            .iter()
            .map(|h| Choice {
                value: h.code.clone(),
                label: if zh { h.name_zh.clone() } else { h.name_en.clone() },
                current: h.code == hall,
            })
            .collect(),
        date: date.to_string(),
        rows: rows(ctx.prefs.lang, list),
        today: date == today,
    };
    Ok(ctx.page(StatusCode::OK, &page))
}

async fn check_in(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> PageResult {
    let s = ctx.ready()?;
    let cap = s.principal.authorize::<ApplicationHandle>()?;
    let a = state.services.appointments().check_in(&cap, &id, Utc::now()).await?;
    Ok(Redirect::to(&format!("/staff/appointments?hall={}", a.hall.code)).into_response())
}
