//! The 政府信息公开 API: published documents with their history, search, departments'
//! guides and catalogues and annual reports (all public); publishing, revising and
//! repealing for a department's officers; requests for information for the person who makes
//! them and the department that answers.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use chrono::{NaiveDate, Utc};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Authorized, Caller};
use kernel::authz::{DisclosureAnswer, DisclosurePublish};
use openness::{
    AnnualReport, Document, DocumentDraft, DocumentFilter, DocumentKind, DocumentText, Guide, HandlingAction,
    InformationRequest, NewInformationRequest, ReportInputs, SearchResult, Theme, Validity,
};

/// Results a search page holds.
pub const PER_PAGE: usize = 20;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(disclosure_search, disclosure_publish))
        .routes(routes!(disclosure_document, disclosure_revise))
        .routes(routes!(disclosure_repeal))
        .routes(routes!(disclosure_guide))
        .routes(routes!(disclosure_set_guide))
        .routes(routes!(disclosure_report, disclosure_set_report_inputs))
        .routes(routes!(disclosure_my_requests, disclosure_submit))
        .routes(routes!(disclosure_my_request))
        .routes(routes!(disclosure_clarify))
        .routes(routes!(disclosure_inbox))
        .routes(routes!(disclosure_inbox_request, disclosure_act))
}

/// A search of published documents.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Words to find in titles, 文号 and text (Chinese is segmented into words).
    #[serde(default)]
    #[param(max_length = 200)]
    pub q: String,
    /// A department's code.
    #[param(max_length = 64)]
    pub department: Option<String>,
    pub kind: Option<DocumentKind>,
    pub theme: Option<Theme>,
    pub validity: Option<Validity>,
    /// The year of publication (China time).
    #[param(minimum = 1949, maximum = 2100)]
    pub year: Option<i32>,
    /// From 1; 20 documents a page.
    #[param(minimum = 1, maximum = 10000)]
    pub page: Option<usize>,
}

impl SearchQuery {
    /// The search asked for, or the parameter that is out of its bounds.
    fn filter(&self) -> Result<(DocumentFilter, usize), ApiError> {
        let bad = |what: &str| {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidField, format!("{what} is out of bounds"))
        };
        if self.q.chars().count() > 200 {
            return Err(bad("q"));
        }
        if self.department.as_ref().is_some_and(|d| d.chars().count() > 64) {
            return Err(bad("department"));
        }
        if self.year.is_some_and(|y| !(1949..=2100).contains(&y)) {
            return Err(bad("year"));
        }
        let page = self.page.unwrap_or(1);
        if !(1..=10_000).contains(&page) {
            return Err(bad("page"));
        }
        let filter = DocumentFilter {
            q: self.q.clone(),
            department: self.department.clone(),
            kind: self.kind,
            theme: self.theme,
            validity: self.validity,
            year: self.year,
        };
        Ok((filter, page))
    }
}

/// Published documents, best match first (newest first without words), 20 a page, with how
/// many matched by kind, theme and department.
#[utoipa::path(get, path = "/api/v1/disclosure/documents", tag = "disclosure", params(SearchQuery),
    responses((status = 200, body = SearchResult), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn disclosure_search(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> Result<Json<SearchResult>, ApiError> {
    let (filter, page) = q.filter()?;
    Ok(Json(state.openness.documents().search(&filter, page, PER_PAGE).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    /// The publishing department's code: the officer's own.
    pub department: String,
    pub kind: DocumentKind,
    /// For a `interpretation` (政策解读): the id of the policy it explains.
    pub interprets: Option<String>,
    pub theme: Theme,
    /// 2–200 characters.
    pub title: String,
    /// 文号, such as 明民发〔2026〕7号.
    pub document_number: Option<String>,
    /// 成文日期: not after today.
    pub written_on: NaiveDate,
    /// The text (10–200,000 characters).
    pub body: String,
}

/// Publish a document of the officer's department (主动公开): it gets its 索引号 and an
/// entry on the `public` ledger.
#[utoipa::path(post, path = "/api/v1/disclosure/documents", tag = "disclosure", request_body = PublishRequest,
    responses((status = 201, body = Document), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn disclosure_publish(
    State(state): State<AppState>,
    Authorized(cap): Authorized<DisclosurePublish>,
    ApiJson(b): ApiJson<PublishRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let text = DocumentText {
        theme: b.theme,
        title: b.title,
        document_number: b.document_number,
        written_on: b.written_on,
        body: b.body,
    };
    let draft = DocumentDraft { department: b.department, kind: b.kind, interprets: b.interprets, text };
    let document = state.openness.publishing().publish(&cap, draft, Utc::now()).await?;
    Ok((StatusCode::CREATED, Json(document)))
}

/// A published document with its text, every revision (each with the SHA-256 its `public`
/// ledger entry carries) and its interpretations.
#[utoipa::path(get, path = "/api/v1/disclosure/documents/{id}", tag = "disclosure", params(("id" = String, Path)),
    responses((status = 200, body = Document), (status = 404, body = ErrorBody)))]
async fn disclosure_document(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Document>, ApiError> {
    Ok(Json(state.openness.documents().document(&id).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviseRequest {
    /// The version the officer edited; if it was revised since, nothing is written (409).
    pub read_version: i64,
    /// What changed and why (2–500 characters).
    pub note: String,
    pub theme: Theme,
    pub title: String,
    pub document_number: Option<String>,
    pub written_on: NaiveDate,
    pub body: String,
}

/// Revise a document in force; the earlier text stays in its history.
#[utoipa::path(put, path = "/api/v1/disclosure/documents/{id}", tag = "disclosure", params(("id" = String, Path)),
    request_body = ReviseRequest,
    responses((status = 200, body = Document), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
async fn disclosure_revise(
    State(state): State<AppState>,
    Authorized(cap): Authorized<DisclosurePublish>,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<ReviseRequest>,
) -> Result<Json<Document>, ApiError> {
    let text = DocumentText {
        theme: b.theme,
        title: b.title,
        document_number: b.document_number,
        written_on: b.written_on,
        body: b.body,
    };
    Ok(Json(state.openness.publishing().revise(&cap, &id, b.read_version, text, &b.note, Utc::now()).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RepealRequest {
    pub read_version: i64,
    /// Why (2–500 characters).
    pub reason: String,
}

/// Repeal a document (废止): it stays readable, marked repealed.
#[utoipa::path(post, path = "/api/v1/disclosure/documents/{id}/repeal", tag = "disclosure",
    params(("id" = String, Path)), request_body = RepealRequest,
    responses((status = 200, body = Document), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
async fn disclosure_repeal(
    State(state): State<AppState>,
    Authorized(cap): Authorized<DisclosurePublish>,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<RepealRequest>,
) -> Result<Json<Document>, ApiError> {
    Ok(Json(state.openness.publishing().repeal(&cap, &id, b.read_version, &b.reason, Utc::now()).await?))
}

/// A department's 政府信息公开指南 and 目录 (every document it published, newest first).
#[utoipa::path(get, path = "/api/v1/disclosure/departments/{code}", tag = "disclosure",
    params(("code" = String, Path)), responses((status = 200, body = Guide), (status = 404, body = ErrorBody)))]
async fn disclosure_guide(
    State(state): State<AppState>,
    ApiPath(code): ApiPath<String>,
) -> Result<Json<Guide>, ApiError> {
    Ok(Json(state.openness.documents().guide(&code).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GuideRequest {
    /// 10–20,000 characters.
    pub guide: String,
}

/// Set the officer's department's 政府信息公开指南.
#[utoipa::path(put, path = "/api/v1/disclosure/departments/{code}/guide", tag = "disclosure",
    params(("code" = String, Path)), request_body = GuideRequest,
    responses((status = 204), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn disclosure_set_guide(
    State(state): State<AppState>,
    Authorized(cap): Authorized<DisclosurePublish>,
    ApiPath(code): ApiPath<String>,
    ApiJson(b): ApiJson<GuideRequest>,
) -> Result<StatusCode, ApiError> {
    state.openness.publishing().set_guide(&cap, &code, &b.guide, Utc::now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A department's annual report for a year (the running year's so far): documents by kind,
/// requests by answer type for persons and organisations, and the figures it entered.
#[utoipa::path(get, path = "/api/v1/disclosure/reports/{department}/{year}", tag = "disclosure",
    params(("department" = String, Path), ("year" = i32, Path, minimum = 2008, maximum = 2100)),
    responses((status = 200, body = AnnualReport), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn disclosure_report(
    State(state): State<AppState>,
    ApiPath((department, year)): ApiPath<(String, i32)>,
) -> Result<Json<AnnualReport>, ApiError> {
    Ok(Json(state.openness.reports().annual(&department, year, Utc::now()).await?))
}

/// Enter the annual report's figures the platform cannot know (reconsiderations, lawsuits,
/// problems, other matters), for the officer's department.
#[utoipa::path(put, path = "/api/v1/disclosure/reports/{department}/{year}", tag = "disclosure",
    params(("department" = String, Path), ("year" = i32, Path, minimum = 2008, maximum = 2100)),
    request_body = ReportInputs,
    responses((status = 204), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn disclosure_set_report_inputs(
    State(state): State<AppState>,
    Authorized(cap): Authorized<DisclosurePublish>,
    ApiPath((department, year)): ApiPath<(String, i32)>,
    ApiJson(inputs): ApiJson<ReportInputs>,
) -> Result<StatusCode, ApiError> {
    state.openness.reports().set_inputs(&cap, &department, year, inputs, Utc::now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ask a department for information (依申请公开). It answers within 20 working days. The
/// same idempotency key (in the body or the `Idempotency-Key` header) answers the first
/// request again.
#[utoipa::path(post, path = "/api/v1/disclosure/requests", tag = "disclosure", request_body = NewInformationRequest,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = InformationRequest), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn disclosure_submit(
    State(state): State<AppState>,
    Caller(p): Caller,
    headers: HeaderMap,
    ApiJson(mut new): ApiJson<NewInformationRequest>,
) -> Result<impl IntoResponse, ApiError> {
    if new.idempotency_key.is_none() {
        new.idempotency_key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_string);
    }
    let request = state.openness.requests().submit(&p, new, Utc::now()).await?;
    Ok((StatusCode::CREATED, Json(request)))
}

/// The caller's requests for information, newest first.
#[utoipa::path(get, path = "/api/v1/disclosure/requests", tag = "disclosure",
    responses((status = 200, body = Vec<InformationRequest>)), security(("bearer" = [])))]
async fn disclosure_my_requests(
    State(state): State<AppState>,
    Caller(p): Caller,
) -> Result<Json<Vec<InformationRequest>>, ApiError> {
    Ok(Json(state.openness.requests().mine(&p, Utc::now()).await?))
}

/// One of the caller's requests, with its deadline and answer.
#[utoipa::path(get, path = "/api/v1/disclosure/requests/{id}", tag = "disclosure", params(("id" = String, Path)),
    responses((status = 200, body = InformationRequest), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
async fn disclosure_my_request(
    State(state): State<AppState>,
    Caller(p): Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<InformationRequest>, ApiError> {
    Ok(Json(state.openness.requests().get(&p, &id, Utc::now()).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClarifyRequest {
    /// 2–2,000 characters.
    pub text: String,
}

/// Send the clarification the department asked for (补正): the 20 working days count again
/// from today.
#[utoipa::path(post, path = "/api/v1/disclosure/requests/{id}/clarification", tag = "disclosure",
    params(("id" = String, Path)), request_body = ClarifyRequest,
    responses((status = 200, body = InformationRequest), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
async fn disclosure_clarify(
    State(state): State<AppState>,
    Caller(p): Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<ClarifyRequest>,
) -> Result<Json<InformationRequest>, ApiError> {
    Ok(Json(state.openness.requests().clarify(&p, &id, &b.text, Utc::now()).await?))
}

/// The requests addressed to the officer's department: open ones first, the nearest
/// deadline first, then those answered in the last 90 days.
#[utoipa::path(get, path = "/api/v1/disclosure/inbox", tag = "disclosure",
    responses((status = 200, body = Vec<InformationRequest>), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
async fn disclosure_inbox(
    State(state): State<AppState>,
    Authorized(cap): Authorized<DisclosureAnswer>,
) -> Result<Json<Vec<InformationRequest>>, ApiError> {
    Ok(Json(state.openness.handling().inbox(&cap, Utc::now()).await?))
}

/// A request addressed to the officer's department.
#[utoipa::path(get, path = "/api/v1/disclosure/inbox/{id}", tag = "disclosure", params(("id" = String, Path)),
    responses((status = 200, body = InformationRequest), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn disclosure_inbox_request(
    State(state): State<AppState>,
    Authorized(cap): Authorized<DisclosureAnswer>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<InformationRequest>, ApiError> {
    Ok(Json(state.openness.handling().get(&cap, &id, Utc::now()).await?))
}

/// Ask for a clarification (once, within 7 working days of receipt), extend the deadline
/// (once, by at most 20 working days, before it passes) or answer.
#[utoipa::path(post, path = "/api/v1/disclosure/inbox/{id}", tag = "disclosure", params(("id" = String, Path)),
    request_body = HandlingAction,
    responses((status = 200, body = InformationRequest), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn disclosure_act(
    State(state): State<AppState>,
    Authorized(cap): Authorized<DisclosureAnswer>,
    ApiPath(id): ApiPath<String>,
    ApiJson(action): ApiJson<HandlingAction>,
) -> Result<Json<InformationRequest>, ApiError> {
    Ok(Json(state.openness.handling().act(&cap, &id, action, Utc::now()).await?))
}
