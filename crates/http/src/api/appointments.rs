//! The appointments API: halls that serve a service, free slots, booking, rescheduling,
//! cancelling, the iCalendar file, and the window's day list with check-in.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Authorized, Caller};
use kernel::authz::ApplicationHandle;
use services::{AppointmentView, HallView, SlotView};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(halls))
        .routes(routes!(slots))
        .routes(routes!(my_appointments, book))
        .routes(routes!(reschedule))
        .routes(routes!(cancel))
        .routes(routes!(ics))
        .routes(routes!(hall_day))
        .routes(routes!(check_in))
}

fn day(s: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidField, "date: YYYY-MM-DD"))
}

/// Halls where a service can be booked, those of the caller's district first.
#[utoipa::path(get, path = "/api/v1/services/{code}/halls", tag = "appointments", params(("code" = String, Path)),
    responses((status = 200, body = Vec<HallView>), (status = 404, body = ErrorBody)))]
async fn halls(State(state): State<AppState>, ApiPath(code): ApiPath<String>) -> Result<Json<Vec<HallView>>, ApiError> {
    Ok(Json(state.services.appointments().halls_for(&code, None).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct SlotQuery {
    service: String,
    /// YYYY-MM-DD (China Standard Time).
    #[param(format = Date)]
    date: String,
}

/// The slots of a day with their free places (none on days off).
#[utoipa::path(get, path = "/api/v1/halls/{code}/slots", tag = "appointments", params(("code" = String, Path), SlotQuery),
    responses((status = 200, body = Vec<SlotView>), (status = 404, body = ErrorBody)))]
async fn slots(
    State(state): State<AppState>,
    ApiPath(code): ApiPath<String>,
    ApiQuery(q): ApiQuery<SlotQuery>,
) -> Result<Json<Vec<SlotView>>, ApiError> {
    Ok(Json(state.services.appointments().slots(&code, &q.service, day(&q.date)?, Utc::now()).await?))
}

/// The caller's bookings, the coming ones first.
#[utoipa::path(get, path = "/api/v1/me/appointments", tag = "appointments",
    responses((status = 200, body = Vec<AppointmentView>), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
async fn my_appointments(
    State(state): State<AppState>,
    Caller(p): Caller,
) -> Result<Json<Vec<AppointmentView>>, ApiError> {
    Ok(Json(state.services.appointments().my_appointments(&p, Utc::now()).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BookingRequest {
    pub hall: String,
    pub service: String,
    /// The slot's start (RFC 3339).
    pub start: DateTime<Utc>,
}

/// Book a place (one open booking per service).
#[utoipa::path(post, path = "/api/v1/me/appointments", tag = "appointments", request_body = BookingRequest,
    responses((status = 201, body = AppointmentView), (status = 409, body = ErrorBody)), security(("bearer" = [])))]
async fn book(
    State(state): State<AppState>,
    Caller(p): Caller,
    ApiJson(body): ApiJson<BookingRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let a = state.services.appointments().book(&p, &body.hall, &body.service, body.start, Utc::now()).await?;
    Ok((StatusCode::CREATED, Json(a)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RescheduleRequest {
    pub start: DateTime<Utc>,
}

/// Move a booking to another slot of the same hall.
#[utoipa::path(post, path = "/api/v1/me/appointments/{id}/reschedule", tag = "appointments",
    params(("id" = String, Path)), request_body = RescheduleRequest,
    responses((status = 200, body = AppointmentView), (status = 409, body = ErrorBody)), security(("bearer" = [])))]
async fn reschedule(
    State(state): State<AppState>,
    Caller(p): Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<RescheduleRequest>,
) -> Result<Json<AppointmentView>, ApiError> {
    Ok(Json(state.services.appointments().reschedule(&p, &id, body.start, Utc::now()).await?))
}

/// Cancel a booking before its slot.
#[utoipa::path(post, path = "/api/v1/me/appointments/{id}/cancel", tag = "appointments", params(("id" = String, Path)),
    responses((status = 200, body = AppointmentView), (status = 409, body = ErrorBody)), security(("bearer" = [])))]
async fn cancel(
    State(state): State<AppState>,
    Caller(p): Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<AppointmentView>, ApiError> {
    Ok(Json(state.services.appointments().cancel_appointment(&p, &id, Utc::now()).await?))
}

/// The booking as an iCalendar file.
#[utoipa::path(get, path = "/api/v1/me/appointments/{id}/ics", tag = "appointments", params(("id" = String, Path)),
    responses((status = 200, content_type = "text/calendar", body = String)), security(("bearer" = [])))]
async fn ics(
    State(state): State<AppState>,
    Caller(p): Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let text = state.services.appointments().appointment_ics(&p, &id, Utc::now()).await?;
    Ok(calendar_file(text, &id))
}

/// An .ics download.
pub fn calendar_file(text: String, id: &str) -> Response {
    let mut r = text.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/calendar; charset=utf-8"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"appointment-{id}.ics\"")) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct DayQuery {
    /// YYYY-MM-DD; today by default.
    #[param(format = Date)]
    date: Option<String>,
}

/// A hall's bookings of one day, for the window.
#[utoipa::path(get, path = "/api/v1/halls/{code}/appointments", tag = "appointments",
    params(("code" = String, Path), DayQuery),
    responses((status = 200, body = Vec<AppointmentView>), (status = 403, body = ErrorBody)), security(("bearer" = [])))]
async fn hall_day(
    State(state): State<AppState>,
    Authorized(cap): Authorized<ApplicationHandle>,
    ApiPath(code): ApiPath<String>,
    ApiQuery(q): ApiQuery<DayQuery>,
) -> Result<Json<Vec<AppointmentView>>, ApiError> {
    let date = q.date.as_deref().map(day).transpose()?;
    Ok(Json(state.services.appointments().hall_day(&cap, &code, date, Utc::now()).await?))
}

/// The person came: check them in.
#[utoipa::path(post, path = "/api/v1/appointments/{id}/check-in", tag = "appointments", params(("id" = String, Path)),
    responses((status = 200, body = AppointmentView), (status = 409, body = ErrorBody)), security(("bearer" = [])))]
async fn check_in(
    State(state): State<AppState>,
    Authorized(cap): Authorized<ApplicationHandle>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<AppointmentView>, ApiError> {
    Ok(Json(state.services.appointments().check_in(&cap, &id, Utc::now()).await?))
}
