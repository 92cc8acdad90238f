//! The 12345 API: a person's requests (submit, list, read, rate the answer), the
//! dispatchers' classifier and queue, and a department's inbox (sign for, send back,
//! answer).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use chrono::Utc;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Authorized, Caller};
use kernel::authz::{OrganisationManage, OrganisationRead, ResidentRead, VoiceDispatch, VoiceHandle, VoiceRecord};
use voice::{
    Breakdown, Caller as CallerDetails, Channel, GroupFigures, HandlerAction, NewRequest, Proposal, PublishedAnswer,
    Rating, RequestKind, RequestView, Route, StaffRequest, Urgency,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(voice_classify))
        .routes(routes!(voice_my_requests, voice_submit))
        .routes(routes!(voice_my_request))
        .routes(routes!(voice_my_photo))
        .routes(routes!(voice_inbox_photo))
        .routes(routes!(voice_rate))
        .routes(routes!(voice_queue))
        .routes(routes!(voice_dispatch))
        .routes(routes!(voice_merge))
        .routes(routes!(voice_decide_extension))
        .routes(routes!(voice_routes, voice_set_route))
        .routes(routes!(voice_published))
        .routes(routes!(voice_inbox))
        .routes(routes!(voice_inbox_request))
        .routes(routes!(voice_act))
        .routes(routes!(voice_figures))
        .routes(routes!(voice_record_call))
        .routes(routes!(voice_record_rating))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClassifyRequest {
    pub text: String,
    /// Where it happened (a region code within the caller's jurisdiction); default: the
    /// dispatcher's own region.
    pub region: Option<String>,
}

/// What the platform would propose for a text: category, department, confidence and the
/// words that weighed most. Stores nothing.
#[utoipa::path(post, path = "/api/v1/voice/classify", tag = "voice", request_body = ClassifyRequest,
    responses((status = 200, body = Proposal)), security(("bearer" = [])))]
async fn voice_classify(
    State(state): State<AppState>,
    Authorized(cap): Authorized<VoiceDispatch>,
    ApiJson(body): ApiJson<ClassifyRequest>,
) -> Result<Json<Proposal>, ApiError> {
    Ok(Json(state.voice.routing().classify(&cap, &body.text, body.region.as_deref()).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    pub kind: RequestKind,
    /// What happened, in the person's words (5–2,000 characters).
    pub text: String,
    /// Where: a region code (district, street, community or grid).
    pub region: String,
    pub address: Option<String>,
    #[serde(default)]
    pub urgency: Urgency,
    /// Whether the answer may be published, de-identified.
    #[serde(default)]
    pub publishable: bool,
    /// The same key again answers the first request (the `Idempotency-Key` header works too).
    pub idempotency_key: Option<String>,
    /// Photos: ids of the person's own PNG or JPEG uploads (`POST /api/v1/documents`), at
    /// most six.
    #[serde(default)]
    pub photos: Vec<String>,
}

/// Make a request (complaint, request for help, suggestion, enquiry, report or praise).
/// It is proposed a category and department at once; a confident proposal goes straight to
/// the department, the rest to a dispatcher.
#[utoipa::path(post, path = "/api/v1/voice/requests", tag = "voice", request_body = SubmitRequest,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = RequestView)), security(("bearer" = [])))]
async fn voice_submit(
    State(state): State<AppState>,
    Caller(p): Caller,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SubmitRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let header_key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_string);
    let new = NewRequest {
        kind: body.kind,
        text: body.text,
        region_code: body.region,
        address: body.address,
        urgency: body.urgency,
        publishable: body.publishable,
        idempotency_key: body.idempotency_key.or(header_key),
        photos: body.photos,
    };
    let view = state.voice.intake().submit(&p, new, Channel::Api, Utc::now()).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// The caller's requests, newest first.
#[utoipa::path(get, path = "/api/v1/voice/requests", tag = "voice",
    responses((status = 200, body = Vec<RequestView>)), security(("bearer" = [])))]
async fn voice_my_requests(
    State(state): State<AppState>,
    Caller(p): Caller,
) -> Result<Json<Vec<RequestView>>, ApiError> {
    Ok(Json(state.voice.my_requests().list(&p, Utc::now()).await?))
}

/// One of the caller's requests, with its timeline.
#[utoipa::path(get, path = "/api/v1/voice/requests/{id}", tag = "voice", params(("id" = String, Path)),
    responses((status = 200, body = RequestView), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
async fn voice_my_request(
    State(state): State<AppState>,
    Caller(p): Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<RequestView>, ApiError> {
    Ok(Json(state.voice.my_requests().request(&p, &id, Utc::now()).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RatingRequest {
    pub rating: Rating,
    pub comment: Option<String>,
}

/// Rate the answer (回访). `unsatisfied` reopens the request once.
#[utoipa::path(post, path = "/api/v1/voice/requests/{id}/rating", tag = "voice", params(("id" = String, Path)),
    request_body = RatingRequest,
    responses((status = 200, body = RequestView), (status = 409, body = ErrorBody)), security(("bearer" = [])))]
async fn voice_rate(
    State(state): State<AppState>,
    Caller(p): Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<RatingRequest>,
) -> Result<Json<RequestView>, ApiError> {
    let view = state.voice.my_requests().rate(&p, &id, body.rating, body.comment.as_deref(), Utc::now()).await?;
    Ok(Json(view))
}

/// Requests waiting for a dispatcher in the caller's jurisdiction, oldest first.
#[utoipa::path(get, path = "/api/v1/voice/queue", tag = "voice",
    responses((status = 200, body = Vec<RequestView>)), security(("bearer" = [])))]
async fn voice_queue(
    State(state): State<AppState>,
    Authorized(cap): Authorized<VoiceDispatch>,
) -> Result<Json<Vec<RequestView>>, ApiError> {
    Ok(Json(state.voice.dispatching().queue(&cap, Utc::now()).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DispatchRequest {
    /// The category (the proposal's, or another: a change is kept as training data).
    pub category: String,
    /// The department's code.
    pub department: String,
}

/// 派单: send a queued request to a department.
#[utoipa::path(post, path = "/api/v1/voice/queue/{id}/dispatch", tag = "voice", params(("id" = String, Path)),
    request_body = DispatchRequest,
    responses((status = 200, body = RequestView), (status = 409, body = ErrorBody)), security(("bearer" = [])))]
async fn voice_dispatch(
    State(state): State<AppState>,
    Authorized(cap): Authorized<VoiceDispatch>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<DispatchRequest>,
) -> Result<Json<RequestView>, ApiError> {
    Ok(Json(state.voice.dispatching().dispatch(&cap, &id, &body.category, &body.department, Utc::now()).await?))
}

/// The caller's department's open requests, the nearest deadline first.
#[utoipa::path(get, path = "/api/v1/voice/inbox", tag = "voice",
    responses((status = 200, body = Vec<RequestView>)), security(("bearer" = [])))]
async fn voice_inbox(
    State(state): State<AppState>,
    Authorized(cap): Authorized<VoiceHandle>,
) -> Result<Json<Vec<RequestView>>, ApiError> {
    Ok(Json(state.voice.handling().inbox(&cap, Utc::now()).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ContactQuery {
    /// Why the person's plain name and mobile are needed (the reading names it on their
    /// 我的数据); without it they are masked.
    #[param(min_length = 1, max_length = 200, pattern = r"\S")]
    purpose: Option<String>,
}

/// A photo as its bytes, for the reader only (never cached by the way).
pub(crate) fn photo_response(photo: voice::Photo, bytes: Vec<u8>) -> axum::response::Response {
    let mut r = bytes.into_response();
    let headers = r.headers_mut();
    if let Ok(v) = axum::http::HeaderValue::from_str(&photo.content_type) {
        headers.insert(axum::http::header::CONTENT_TYPE, v);
    }
    headers.insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("private, no-store"));
    r
}

/// A photo of the caller's own request.
#[utoipa::path(get, path = "/api/v1/voice/requests/{id}/photos/{photo}", tag = "voice",
    params(("id" = String, Path), ("photo" = String, Path)),
    responses((status = 200, content_type = "image/png", body = Vec<u8>), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn voice_my_photo(
    State(state): State<AppState>,
    Caller(p): Caller,
    ApiPath((id, photo)): ApiPath<(String, String)>,
) -> Result<axum::response::Response, ApiError> {
    let (photo, bytes) = state.voice.my_requests().photo(&p, &id, &photo).await?;
    Ok(photo_response(photo, bytes))
}

/// A photo of a request addressed to the caller's department.
#[utoipa::path(get, path = "/api/v1/voice/inbox/{id}/photos/{photo}", tag = "voice",
    params(("id" = String, Path), ("photo" = String, Path)),
    responses((status = 200, content_type = "image/png", body = Vec<u8>), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn voice_inbox_photo(
    State(state): State<AppState>,
    Authorized(cap): Authorized<VoiceHandle>,
    ApiPath((id, photo)): ApiPath<(String, String)>,
) -> Result<axum::response::Response, ApiError> {
    let (photo, bytes) = state.voice.handling().photo(&cap, &id, &photo).await?;
    Ok(photo_response(photo, bytes))
}

/// One request addressed to the caller's department, with the person behind it: masked, or
/// plain for a stated `purpose`; hidden for a 举报.
#[utoipa::path(get, path = "/api/v1/voice/inbox/{id}", tag = "voice", params(("id" = String, Path), ContactQuery),
    responses((status = 200, body = StaffRequest), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
async fn voice_inbox_request(
    State(state): State<AppState>,
    Authorized(cap): Authorized<VoiceHandle>,
    Caller(p): Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ContactQuery>,
) -> Result<Json<StaffRequest>, ApiError> {
    // Not every handler may look residents up: then the person is not shown.
    let read = p.authorize::<ResidentRead>().ok();
    let found = state.voice.handling().request(&cap, read.as_ref(), &id, q.purpose.as_deref(), Utc::now()).await?;
    Ok(Json(found))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum HandlingRequest {
    /// 签收
    Sign,
    /// 退单, with the reason (2–500 characters).
    SendBack { reason: String },
    /// 答复 (5–2,000 characters).
    Answer { answer: String },
    /// 延期: more working days (1–10), with the reason; once per request, decided by a
    /// dispatcher.
    AskExtension { days: u32, reason: String },
}

/// Sign for, send back, answer or ask more time for a request addressed to the caller's
/// department.
#[utoipa::path(post, path = "/api/v1/voice/inbox/{id}/actions", tag = "voice", params(("id" = String, Path)),
    request_body = HandlingRequest,
    responses((status = 200, body = RequestView), (status = 409, body = ErrorBody)), security(("bearer" = [])))]
async fn voice_act(
    State(state): State<AppState>,
    Authorized(cap): Authorized<VoiceHandle>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<HandlingRequest>,
) -> Result<Json<RequestView>, ApiError> {
    let action = match body {
        HandlingRequest::Sign => HandlerAction::Sign,
        HandlingRequest::SendBack { reason } => HandlerAction::SendBack { reason },
        HandlingRequest::Answer { answer } => HandlerAction::Answer { text: answer },
        HandlingRequest::AskExtension { days, reason } => HandlerAction::AskExtension { days, reason },
    };
    Ok(Json(state.voice.handling().act(&cap, &id, action, Utc::now()).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct FiguresQuery {
    /// Group by `department` (the default), `district` or `category`.
    #[param(inline)]
    by: Option<Breakdown>,
}

/// How 12345 requests in the caller's jurisdiction are answered, per department, district or
/// category: 响应率, 解决率, 满意率, the counts behind each, average times and the top
/// categories.
#[utoipa::path(get, path = "/api/v1/voice/figures", tag = "voice", params(FiguresQuery),
    responses((status = 200, body = Vec<GroupFigures>)), security(("bearer" = [])))]
async fn voice_figures(
    State(state): State<AppState>,
    Authorized(cap): Authorized<VoiceDispatch>,
    ApiQuery(q): ApiQuery<FiguresQuery>,
) -> Result<Json<Vec<GroupFigures>>, ApiError> {
    Ok(Json(state.voice.figures().table(&cap, q.by.unwrap_or_default(), Utc::now()).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeRequest {
    /// The earlier open request about the same thing (id or number).
    pub into: String,
}

/// 并单: merge a queued request into an earlier open one about the same thing; it then
/// receives that one's answer.
#[utoipa::path(post, path = "/api/v1/voice/queue/{id}/merge", tag = "voice", params(("id" = String, Path)),
    request_body = MergeRequest,
    responses((status = 200, body = RequestView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
async fn voice_merge(
    State(state): State<AppState>,
    Authorized(cap): Authorized<VoiceDispatch>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<MergeRequest>,
) -> Result<Json<RequestView>, ApiError> {
    Ok(Json(state.voice.dispatching().merge(&cap, &id, &body.into, Utc::now()).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtensionDecisionRequest {
    /// true grants the days asked for, counted on from the handling limit; false refuses.
    pub grant: bool,
}

/// 延期审核: grant or refuse the extension a department asked for.
#[utoipa::path(post, path = "/api/v1/voice/queue/{id}/extension", tag = "voice", params(("id" = String, Path)),
    request_body = ExtensionDecisionRequest,
    responses((status = 200, body = RequestView), (status = 409, body = ErrorBody)), security(("bearer" = [])))]
async fn voice_decide_extension(
    State(state): State<AppState>,
    Authorized(cap): Authorized<VoiceDispatch>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ExtensionDecisionRequest>,
) -> Result<Json<RequestView>, ApiError> {
    Ok(Json(state.voice.dispatching().decide_extension(&cap, &id, body.grant, Utc::now()).await?))
}

/// The routing tables within the caller's jurisdiction: which department handles which
/// category in a region.
#[utoipa::path(get, path = "/api/v1/voice/routes", tag = "voice",
    responses((status = 200, body = Vec<Route>)), security(("bearer" = [])))]
async fn voice_routes(
    State(state): State<AppState>,
    Authorized(cap): Authorized<OrganisationRead>,
) -> Result<Json<Vec<Route>>, ApiError> {
    Ok(Json(state.voice.routing().routes(&cap).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteRequest {
    /// A region within the caller's jurisdiction (usually a district).
    pub region: String,
    /// A category code.
    pub category: String,
    /// The department's code.
    pub department: String,
}

/// Set a region's route for a category (administrators of the region).
#[utoipa::path(put, path = "/api/v1/voice/routes", tag = "voice", request_body = RouteRequest,
    responses((status = 204), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn voice_set_route(
    State(state): State<AppState>,
    Authorized(cap): Authorized<OrganisationManage>,
    ApiJson(body): ApiJson<RouteRequest>,
) -> Result<StatusCode, ApiError> {
    state.voice.routing().set_route(&cap, &body.region, &body.category, &body.department, Utc::now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct PublishedQuery {
    /// From 1; 20 answers a page.
    #[param(minimum = 1, maximum = 10000)]
    page: Option<u32>,
}

/// Answered requests whose authors agreed to publish them, without who made them and with
/// long numbers and e-mail addresses masked; the latest answered first. Open to everyone.
#[utoipa::path(get, path = "/api/v1/voice/published", tag = "voice", params(PublishedQuery),
    responses((status = 200, body = Vec<PublishedAnswer>), (status = 422, body = ErrorBody)))]
async fn voice_published(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<PublishedQuery>,
) -> Result<Json<Vec<PublishedAnswer>>, ApiError> {
    Ok(Json(state.voice.published().page(q.page.unwrap_or(1)).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallRequest {
    pub caller_name: String,
    /// 7 to 15 digits.
    pub caller_mobile: String,
    pub kind: RequestKind,
    pub text: String,
    pub region: String,
    pub address: Option<String>,
    #[serde(default)]
    pub urgency: Urgency,
    #[serde(default)]
    pub publishable: bool,
    pub idempotency_key: Option<String>,
}

/// A call the hotline operator records for the caller (话务员), within their jurisdiction.
#[utoipa::path(post, path = "/api/v1/voice/calls", tag = "voice", request_body = CallRequest,
    responses((status = 201, body = RequestView)), security(("bearer" = [])))]
async fn voice_record_call(
    State(state): State<AppState>,
    Authorized(cap): Authorized<VoiceRecord>,
    ApiJson(body): ApiJson<CallRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = CallerDetails { name: body.caller_name, mobile: body.caller_mobile };
    let new = NewRequest {
        kind: body.kind,
        text: body.text,
        region_code: body.region,
        address: body.address,
        urgency: body.urgency,
        publishable: body.publishable,
        idempotency_key: body.idempotency_key,
        photos: Vec::new(),
    };
    let view = state.voice.intake().record_call(&cap, caller, new, Utc::now()).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// 回访 by telephone: the rating a caller without an account gave the answer.
#[utoipa::path(post, path = "/api/v1/voice/calls/{id}/rating", tag = "voice", params(("id" = String, Path)),
    request_body = RatingRequest,
    responses((status = 200, body = RequestView), (status = 409, body = ErrorBody)), security(("bearer" = [])))]
async fn voice_record_rating(
    State(state): State<AppState>,
    Authorized(cap): Authorized<VoiceRecord>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<RatingRequest>,
) -> Result<Json<RequestView>, ApiError> {
    let view = state.voice.intake().record_rating(&cap, &id, body.rating, body.comment.as_deref(), Utc::now()).await?;
    Ok(Json(view))
}
