//! The JSON API of the one-stop service hall: catalog and guides, forms with prefill,
//! applications, the staff inbox, assisted submission, uploads, certificates and ratings.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Authorized, Caller};
use kernel::authz::{ApplicationAssist, ApplicationHandle, CertificateRevoke};
use services::catalog::{BundleSpec, ServiceSummary};
use services::forms::{Field, FieldError, Section};
use services::{
    ApplicationSummary, ApplicationView, CertificateCheck, CertificateView, Confirmation, DocumentView, DueState,
    Inbox, InboxFilter, NotificationView, Prefill, PublishedService,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(catalog))
        .routes(routes!(service))
        .routes(routes!(service_form))
        .routes(routes!(service_prefill))
        .routes(routes!(apply))
        .routes(routes!(bundles))
        .routes(routes!(apply_bundle))
        .routes(routes!(my_applications))
        .routes(routes!(my_application))
        .routes(routes!(withdraw))
        .routes(routes!(resubmit))
        .routes(routes!(rate))
        .routes(routes!(notifications))
        .routes(routes!(my_certificates))
        .routes(routes!(upload))
        .routes(routes!(inbox))
        .routes(routes!(case))
        .routes(routes!(act))
        .routes(routes!(claim))
        .routes(routes!(transfer))
        .routes(routes!(answer_rating))
        .routes(routes!(assist_code))
        .routes(routes!(assisted_apply))
        .routes(routes!(verify_certificate))
        .routes(routes!(revoke_certificate))
}

/// A form problem list, answered with 422 `form_invalid` and one entry per field.
#[derive(Debug, Serialize, ToSchema)]
pub struct FormErrorBody {
    pub code: ErrorCode,
    pub message: String,
    pub request_id: String,
    /// One entry per field (`form_invalid`); other 422 answers (`invalid_body`) carry none.
    #[schema(required = false)]
    pub errors: Vec<FieldError>,
}

/// Maps a service error, giving form problems their per-field body.
pub fn service_error(e: services::Error) -> Response {
    match e {
        services::Error::Form(errors) => {
            let body = FormErrorBody {
                code: ErrorCode::FormInvalid,
                message: format!("the form has {} problem(s); see errors", errors.len()),
                request_id: ledger::REQUEST_ID.try_with(Clone::clone).unwrap_or_default(),
                errors,
            };
            (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
        }
        other => ApiError::from(other).into_response(),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct CatalogQuery {
    /// Words, pinyin initials (`csdj`) or a service code.
    q: Option<String>,
    /// A line of work: GA, MZ, RS, …
    department: Option<String>,
    /// A life or business event: birth, start_business, …
    event: Option<String>,
}

/// The published catalog: search it, or browse by department or life event.
#[utoipa::path(get, path = "/api/v1/services", tag = "services", params(CatalogQuery),
    responses((status = 200, body = Vec<ServiceSummary>)))]
async fn catalog(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<CatalogQuery>,
) -> Result<Json<Vec<ServiceSummary>>, ApiError> {
    let query = services::CatalogQuery { text: q.q.unwrap_or_default(), department: q.department, event: q.event };
    Ok(Json(state.services.find(&query).await?))
}

/// A service's guide (办事指南): conditions, materials, time limits, fee, channels.
#[utoipa::path(get, path = "/api/v1/services/{id}", tag = "services", params(("id" = String, Path, description = "id or code")),
    responses((status = 200, body = PublishedService), (status = 404, body = ErrorBody)))]
async fn service(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<PublishedService>, ApiError> {
    Ok(Json(state.services.service(&id).await?))
}

/// A form: its JSON Schema, and the fields and sections it renders as.
#[derive(Debug, Serialize, ToSchema)]
pub struct FormView {
    pub form_id: String,
    #[schema(value_type = Object)]
    pub schema: Value,
    pub fields: Vec<Field>,
    pub sections: Vec<Section>,
}

/// The eForm of a service.
#[utoipa::path(get, path = "/api/v1/services/{id}/form", tag = "services", params(("id" = String, Path)),
    responses((status = 200, body = FormView), (status = 404, body = ErrorBody)))]
async fn service_form(State(state): State<AppState>, ApiPath(id): ApiPath<String>) -> Result<Json<FormView>, ApiError> {
    let svc = state.services.service(&id).await?;
    let form = state.services.form(&svc.form_id).await?;
    Ok(Json(FormView {
        form_id: svc.form_id,
        schema: form.schema.clone(),
        fields: form.fields.clone(),
        sections: form.sections.clone(),
    }))
}

/// What the caller's form would be prefilled with (减材料), and from where.
#[utoipa::path(get, path = "/api/v1/services/{id}/prefill", tag = "services", params(("id" = String, Path)),
    responses((status = 200, body = Prefill), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn service_prefill(
    State(state): State<AppState>,
    Caller(p): Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Prefill>, ApiError> {
    let svc = state.services.service(&id).await?;
    let form = state.services.form(&svc.form_id).await?;
    Ok(Json(state.services.intake().prefill(&p, &form, Utc::now()).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyRequest {
    /// Form values by field name.
    #[schema(value_type = Object)]
    pub form: Value,
    /// Ids of the caller's uploads to attach.
    #[serde(default)]
    pub documents: Vec<String>,
}

/// Apply online.
#[utoipa::path(post, path = "/api/v1/services/{id}/applications", tag = "services", params(("id" = String, Path)),
    request_body = ApplyRequest,
    responses((status = 201, body = ApplicationView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "wrong_audience, not_online, no_region", body = ErrorBody),
        (status = 422, description = "form_invalid", body = FormErrorBody)),
    security(("bearer" = [])))]
async fn apply(
    State(state): State<AppState>,
    Caller(p): Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ApplyRequest>,
) -> Response {
    match state.services.intake().submit(&p, &id, body.form, &body.documents, Utc::now()).await {
        Ok(view) => (StatusCode::CREATED, Json(view)).into_response(),
        Err(e) => service_error(e),
    }
}

/// Bundles (一件事一次办).
#[utoipa::path(get, path = "/api/v1/bundles", tag = "services", responses((status = 200, body = Vec<BundleSpec>)))]
async fn bundles(State(state): State<AppState>) -> Result<Json<Vec<BundleSpec>>, ApiError> {
    Ok(Json(state.services.bundles().await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BundleApplyRequest {
    #[schema(value_type = Object)]
    pub form: Value,
}

/// Apply for a bundle: one combined form, every department at once.
#[utoipa::path(post, path = "/api/v1/bundles/{code}/applications", tag = "services", params(("code" = String, Path)),
    request_body = BundleApplyRequest,
    responses((status = 201, body = ApplicationView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "wrong_audience, not_online, no_region", body = ErrorBody),
        (status = 422, description = "form_invalid", body = FormErrorBody)),
    security(("bearer" = [])))]
async fn apply_bundle(
    State(state): State<AppState>,
    Caller(p): Caller,
    ApiPath(code): ApiPath<String>,
    ApiJson(body): ApiJson<BundleApplyRequest>,
) -> Response {
    match state.services.intake().submit_bundle(&p, &code, body.form, Utc::now()).await {
        Ok(view) => (StatusCode::CREATED, Json(view)).into_response(),
        Err(e) => service_error(e),
    }
}

/// The caller's applications, newest first.
#[utoipa::path(get, path = "/api/v1/me/applications", tag = "services",
    responses((status = 200, body = Vec<ApplicationSummary>), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
async fn my_applications(
    State(state): State<AppState>,
    Caller(p): Caller,
) -> Result<Json<Vec<ApplicationSummary>>, ApiError> {
    Ok(Json(state.services.my_cases().my_applications(&p).await?))
}

/// One of the caller's applications, with its timeline.
#[utoipa::path(get, path = "/api/v1/me/applications/{id}", tag = "services", params(("id" = String, Path, description = "id or case number")),
    responses((status = 200, body = ApplicationView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn my_application(
    State(state): State<AppState>,
    Caller(p): Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ApplicationView>, ApiError> {
    Ok(Json(state.services.my_cases().my_application(&p, &id).await?))
}

/// Withdraw before a decision.
#[utoipa::path(post, path = "/api/v1/me/applications/{id}/withdraw", tag = "services", params(("id" = String, Path)),
    responses((status = 200, body = ApplicationView), (status = 404, body = ErrorBody), (status = 409, description = "already_decided", body = ErrorBody)),
    security(("bearer" = [])))]
async fn withdraw(
    State(state): State<AppState>,
    Caller(p): Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ApplicationView>, ApiError> {
    Ok(Json(state.services.my_cases().withdraw(&p, &id, Utc::now()).await?))
}

/// Answer a supplement request (补正) with corrected form values.
#[utoipa::path(post, path = "/api/v1/me/applications/{id}/resubmit", tag = "services", params(("id" = String, Path)),
    request_body = BundleApplyRequest,
    responses((status = 200, body = ApplicationView), (status = 404, body = ErrorBody), (status = 409, description = "not_in_supplement", body = ErrorBody),
        (status = 422, description = "form_invalid", body = FormErrorBody)),
    security(("bearer" = [])))]
async fn resubmit(
    State(state): State<AppState>,
    Caller(p): Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<BundleApplyRequest>,
) -> Response {
    match state.services.my_cases().resubmit(&p, &id, body.form, Utc::now()).await {
        Ok(view) => Json(view).into_response(),
        Err(e) => service_error(e),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RatingRequest {
    /// 1 (非常不满意) … 5 (非常满意).
    #[schema(minimum = 1, maximum = 5)]
    #[serde(deserialize_with = "kernel::wire::whole_number")]
    pub score: i64,
    pub comment: Option<String>,
}

/// 好差评: rate a finished case.
#[utoipa::path(post, path = "/api/v1/me/applications/{id}/rating", tag = "services", params(("id" = String, Path)),
    request_body = RatingRequest,
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, description = "not_finished, already_rated", body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn rate(
    State(state): State<AppState>,
    Caller(p): Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<RatingRequest>,
) -> Result<StatusCode, ApiError> {
    state.services.ratings().rate(&p, &id, body.score, body.comment.as_deref(), Utc::now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's notifications (marked read).
#[utoipa::path(get, path = "/api/v1/me/notifications", tag = "services",
    responses((status = 200, body = Vec<NotificationView>), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
async fn notifications(
    State(state): State<AppState>,
    Caller(p): Caller,
) -> Result<Json<Vec<NotificationView>>, ApiError> {
    Ok(Json(state.services.my_cases().notifications(&p, Utc::now()).await?))
}

/// The caller's e-certificates (电子证照).
#[utoipa::path(get, path = "/api/v1/me/certificates", tag = "services",
    responses((status = 200, body = Vec<CertificateView>), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
async fn my_certificates(
    State(state): State<AppState>,
    Caller(p): Caller,
) -> Result<Json<Vec<CertificateView>>, ApiError> {
    Ok(Json(state.services.certificates().my_certificates(&p, Utc::now()).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct UploadQuery {
    filename: String,
    /// The material it is (e.g. 出生医学证明).
    material: Option<String>,
}

/// Upload a material: the request body is the file (PDF, PNG or JPEG, by content).
#[utoipa::path(post, path = "/api/v1/documents", tag = "services", params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = DocumentView), (status = 413, description = "file_too_large", body = ErrorBody),
        (status = 415, description = "unsupported_file_type", body = ErrorBody)),
    security(("bearer" = [])))]
async fn upload(
    State(state): State<AppState>,
    Caller(p): Caller,
    ApiQuery(q): ApiQuery<UploadQuery>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let doc = state.services.documents().upload(&p, &q.filename, q.material.as_deref(), &body, Utc::now()).await?;
    Ok((StatusCode::CREATED, Json(doc)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct InboxQuery {
    /// on_time, due_soon or overdue.
    #[param(pattern = "^(on_time|due_soon|overdue)?$")]
    due: Option<String>,
    /// Only tasks assigned to the caller.
    mine: Option<bool>,
    /// A service code.
    service: Option<String>,
}

/// The staff inbox: open tasks of the caller's department and roles within jurisdiction.
#[utoipa::path(get, path = "/api/v1/inbox", tag = "workbench", params(InboxQuery),
    responses((status = 200, body = Inbox), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
async fn inbox(
    State(state): State<AppState>,
    Authorized(cap): Authorized<ApplicationHandle>,
    ApiQuery(q): ApiQuery<InboxQuery>,
) -> Result<Json<Inbox>, ApiError> {
    let due = match q.due.as_deref() {
        None | Some("") => None,
        Some(d) => Some(DueState::parse(d).ok_or_else(|| {
            ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidField, "due: on_time, due_soon or overdue")
        })?),
    };
    let filter = InboxFilter { due, mine: q.mine.unwrap_or(false), service: q.service };
    Ok(Json(state.services.casework().inbox(&cap, &filter, Utc::now()).await?))
}

/// A case as staff see it (the read is audited with its purpose).
#[utoipa::path(get, path = "/api/v1/cases/{id}", tag = "workbench", params(("id" = String, Path, description = "id or case number")),
    responses((status = 200, body = ApplicationView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn case(
    State(state): State<AppState>,
    Authorized(cap): Authorized<ApplicationHandle>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ApplicationView>, ApiError> {
    Ok(Json(state.services.casework().case_for_staff(&cap, &id, Utc::now()).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    /// accept, refuse, request_supplement, approve, reject, … (see the case's `actions`).
    pub action: String,
    /// Required for refusals, rejections and supplement requests.
    pub comment: Option<String>,
}

/// Act on a case.
#[utoipa::path(post, path = "/api/v1/cases/{id}/actions", tag = "workbench", params(("id" = String, Path)),
    request_body = ActionRequest,
    responses((status = 200, body = ApplicationView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "invalid_transition, case_changed, supplement_already_requested", body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn act(
    State(state): State<AppState>,
    Authorized(cap): Authorized<ApplicationHandle>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ActionRequest>,
) -> Result<Json<ApplicationView>, ApiError> {
    Ok(Json(state.services.casework().act(&cap, &id, &body.action, body.comment.as_deref(), Utc::now()).await?))
}

/// Take a task.
#[utoipa::path(post, path = "/api/v1/tasks/{id}/claim", tag = "workbench", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
async fn claim(
    State(state): State<AppState>,
    Authorized(cap): Authorized<ApplicationHandle>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.services.casework().assign(&cap, &id, None, Utc::now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    /// The colleague's account id.
    pub to: String,
}

/// Hand a task to a colleague of the same department who holds its role.
#[utoipa::path(post, path = "/api/v1/tasks/{id}/transfer", tag = "workbench", params(("id" = String, Path)),
    request_body = TransferRequest,
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, description = "not_eligible", body = ErrorBody)),
    security(("bearer" = [])))]
async fn transfer(
    State(state): State<AppState>,
    Authorized(cap): Authorized<ApplicationHandle>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<TransferRequest>,
) -> Result<StatusCode, ApiError> {
    state.services.casework().assign(&cap, &id, Some(&body.to), Utc::now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RatingReply {
    /// At most 1,000 characters, not blank.
    #[schema(min_length = 1, max_length = 1000, pattern = r"\S")]
    pub reply: String,
}

/// The department's answer to a rating of 1 or 2 (closes the rectification task).
#[utoipa::path(post, path = "/api/v1/cases/{id}/rating-reply", tag = "workbench", params(("id" = String, Path)),
    request_body = RatingReply,
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)), security(("bearer" = [])))]
async fn answer_rating(
    State(state): State<AppState>,
    Authorized(cap): Authorized<ApplicationHandle>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<RatingReply>,
) -> Result<StatusCode, ApiError> {
    state.services.ratings().answer_rating(&cap, &id, &body.reply, Utc::now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssistCodeRequest {
    pub id_number: String,
}

/// 帮办代办, step 1: send the citizen a confirmation code.
#[utoipa::path(post, path = "/api/v1/assisted/code", tag = "workbench", request_body = AssistCodeRequest,
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
async fn assist_code(
    State(state): State<AppState>,
    Authorized(cap): Authorized<ApplicationAssist>,
    ApiJson(body): ApiJson<AssistCodeRequest>,
) -> Result<StatusCode, ApiError> {
    state.services.intake().send_assist_code(&cap, &body.id_number, Utc::now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssistedApplyRequest {
    pub id_number: String,
    pub service: String,
    #[schema(value_type = Object)]
    pub form: Value,
    /// The code the citizen received; or `signed: true` when they signed at the window.
    pub code: Option<String>,
    #[serde(default)]
    pub signed: bool,
}

/// 帮办代办, step 2: submit for the citizen who is present.
#[utoipa::path(post, path = "/api/v1/assisted/applications", tag = "workbench", request_body = AssistedApplyRequest,
    responses((status = 201, body = ApplicationView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, description = "invalid_code, form_invalid", body = FormErrorBody)),
    security(("bearer" = [])))]
async fn assisted_apply(
    State(state): State<AppState>,
    Authorized(cap): Authorized<ApplicationAssist>,
    ApiJson(body): ApiJson<AssistedApplyRequest>,
) -> Response {
    let confirmation = match (body.code, body.signed) {
        (Some(code), false) => Confirmation::Code(code),
        (None, true) => Confirmation::Signature,
        _ => {
            return ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidField,
                "confirm with either the code sent to the citizen or signed: true",
            )
            .into_response();
        }
    };
    match state
        .services
        .intake()
        .submit_assisted(&cap, &body.id_number, &body.service, body.form, confirmation, Utc::now())
        .await
    {
        Ok(view) => (StatusCode::CREATED, Json(view)).into_response(),
        Err(e) => service_error(e),
    }
}

/// Public verification of an e-certificate: signature, revocation, expiry, ledger entry.
#[utoipa::path(get, path = "/api/v1/certificates/{id}", tag = "services", params(("id" = String, Path)),
    responses((status = 200, body = CertificateCheck), (status = 404, body = ErrorBody)))]
async fn verify_certificate(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<CertificateCheck>, ApiError> {
    Ok(Json(state.services.certificates().verify_certificate(&id, Utc::now()).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CertificateRevocation)]
pub struct RevokeRequest {
    /// Why it is revoked, at most 200 characters, not blank.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub reason: String,
}

/// Revoke a certificate the caller's department issued.
#[utoipa::path(post, path = "/api/v1/certificates/{id}/revoke", tag = "workbench", params(("id" = String, Path)),
    request_body = RevokeRequest,
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, description = "already_revoked", body = ErrorBody)),
    security(("bearer" = [])))]
async fn revoke_certificate(
    State(state): State<AppState>,
    Authorized(cap): Authorized<CertificateRevoke>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<RevokeRequest>,
) -> Result<StatusCode, ApiError> {
    state.services.certificates().revoke_certificate(&cap, &id, &body.reason, Utc::now()).await?;
    Ok(StatusCode::NO_CONTENT)
}
