//! The 数据开放 API: the catalogue and each dataset's rows (public; conditional datasets
//! with an `X-API-Key`), publishing from files and from registries for data officers,
//! applications for conditional datasets and their keys, and 数据需求. CKAN clients read the
//! same catalogue under /api/3/action (see `ckan`).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use base64::Engine;
use chrono::Utc;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Authorized, Caller};
use kernel::authz::{OpenDataPublish, RegistryManage};
use openness::Theme;
use openness::data::files::FileReport;
use openness::data::{
    AccessApplication, Column, DataDemand, DataSource, Dataset, DatasetPage, DatasetQuery, DatasetSort, DatasetSpec,
    Deidentification, Frequency, IssuedKey, OpenLevel, Reader, RegistrySource, RowPage, RowQuery,
};

/// The header a key for a conditional dataset travels in.
pub const API_KEY_HEADER: &str = "x-api-key";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(open_data_search, open_data_publish_file))
        .routes(routes!(open_data_dataset))
        .routes(routes!(open_data_rows))
        .routes(routes!(open_data_replace_file))
        .routes(routes!(open_data_check_file))
        .routes(routes!(open_data_publish_registry))
        .routes(routes!(open_data_preview_registry))
        .routes(routes!(open_data_apply))
        .routes(routes!(open_data_my_applications))
        .routes(routes!(open_data_issue_key))
        .routes(routes!(open_data_department_applications))
        .routes(routes!(open_data_decide))
        .routes(routes!(open_data_demands, open_data_ask))
        .routes(routes!(open_data_answer))
}

fn bad(what: &str) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidField, format!("{what} is out of bounds"))
}

/// The key a request carries, if any.
pub fn reader(headers: &HeaderMap) -> Reader<'_> {
    match headers.get(API_KEY_HEADER).and_then(|v| v.to_str().ok()).map(str::trim).filter(|k| !k.is_empty()) {
        Some(key) => Reader::Key(key),
        None => Reader::Anyone,
    }
}

/// A catalogue search.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CatalogueQuery {
    /// Words to find in titles, descriptions, keywords and departments.
    #[serde(default)]
    #[param(max_length = 200)]
    pub q: String,
    /// A department's code.
    #[param(max_length = 64)]
    pub department: Option<String>,
    pub theme: Option<Theme>,
    pub open_level: Option<OpenLevel>,
    pub frequency: Option<Frequency>,
    pub source: Option<DataSource>,
    /// A keyword every result has.
    #[param(max_length = 30)]
    pub tag: Option<String>,
    /// Best match first when not given.
    #[param(inline)]
    pub sort: Option<CatalogueSort>,
    /// From 1; 20 datasets a page.
    #[param(minimum = 1, maximum = 10000)]
    pub page: Option<usize>,
}

/// How the catalogue orders what it finds.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CatalogueSort {
    /// Best match first; newest first without words.
    Relevance,
    Newest,
    /// Last changed first.
    Updated,
    Name,
    Title,
}

/// Datasets a catalogue page holds.
pub const PER_PAGE: usize = 20;

impl CatalogueQuery {
    pub fn query(&self) -> Result<DatasetQuery, ApiError> {
        if self.q.chars().count() > 200 {
            return Err(bad("q"));
        }
        if self.department.as_ref().is_some_and(|d| d.chars().count() > 64) {
            return Err(bad("department"));
        }
        if self.tag.as_ref().is_some_and(|t| t.chars().count() > 30) {
            return Err(bad("tag"));
        }
        let page = self.page.unwrap_or(1);
        if !(1..=10_000).contains(&page) {
            return Err(bad("page"));
        }
        let sort = match self.sort.unwrap_or(CatalogueSort::Relevance) {
            CatalogueSort::Relevance => DatasetSort::Relevance,
            CatalogueSort::Newest => DatasetSort::Newest,
            CatalogueSort::Updated => DatasetSort::Updated,
            CatalogueSort::Name => DatasetSort::Name,
            CatalogueSort::Title => DatasetSort::Title,
        };
        Ok(DatasetQuery {
            q: self.q.clone(),
            department: self.department.clone().filter(|d| !d.trim().is_empty()),
            theme: self.theme,
            open_level: self.open_level,
            frequency: self.frequency,
            source: self.source,
            tags: self.tag.iter().filter(|t| !t.trim().is_empty()).cloned().collect(),
            sort,
            start: (page - 1) * PER_PAGE,
            rows: PER_PAGE,
        })
    }
}

/// The catalogue: datasets matching words and filters, 20 a page, with facet counts.
#[utoipa::path(get, path = "/api/v1/open-data/datasets", tag = "open data", params(CatalogueQuery),
    responses((status = 200, body = DatasetPage), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn open_data_search(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<CatalogueQuery>,
) -> Result<Json<DatasetPage>, ApiError> {
    Ok(Json(state.openness.catalogue().search(&q.query()?).await?))
}

/// One dataset: columns, how it was made (the rules and k of a registry dataset), its
/// versions with their SHA-256 and ledger entries, and its usage.
#[utoipa::path(get, path = "/api/v1/open-data/datasets/{name}", tag = "open data",
    params(("name" = String, Path, max_length = 100)),
    responses((status = 200, body = Dataset), (status = 404, body = ErrorBody)))]
async fn open_data_dataset(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Dataset>, ApiError> {
    Ok(Json(state.openness.catalogue().dataset(&name).await?))
}

/// A read of a dataset's rows.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RowsQuery {
    /// Words any cell holds.
    #[param(max_length = 200)]
    pub q: Option<String>,
    /// Exact values as a JSON object: `{"kind": "公办"}` or `{"kind": ["公办", "民办"]}`.
    #[param(max_length = 2000)]
    pub filters: Option<String>,
    /// Columns, each optionally followed by `desc`: `beds desc, name`.
    #[param(max_length = 500)]
    pub sort: Option<String>,
    /// Columns to return, comma-separated.
    #[param(max_length = 2000)]
    pub fields: Option<String>,
    #[param(minimum = 0, maximum = 10000000)]
    pub offset: Option<usize>,
    /// 1–32,000; 100 when not given.
    #[param(minimum = 1, maximum = 32000)]
    pub limit: Option<usize>,
}

/// Turns CKAN-style parameters into a query of rows: shared by the API and CKAN's
/// `datastore_search`.
pub fn row_query(
    q: Option<String>,
    filters: Option<serde_json::Value>,
    sort: Option<&str>,
    fields: Vec<String>,
    offset: usize,
    limit: usize,
) -> Result<RowQuery, ApiError> {
    let mut out = RowQuery { q: q.filter(|q| !q.trim().is_empty()), fields, offset, limit, ..RowQuery::default() };
    match filters {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::Object(map)) => {
            for (column, value) in map {
                let values = match value {
                    serde_json::Value::Array(items) => items.iter().map(cell).collect(),
                    other => vec![cell(&other)],
                };
                out.filters.insert(column, values);
            }
        }
        Some(_) => return Err(bad("filters")),
    }
    for part in sort.unwrap_or("").split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let mut words = part.split_whitespace();
        let column = words.next().unwrap_or_default().trim_matches('"').to_string();
        let descending = match words.next().map(str::to_ascii_lowercase).as_deref() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(_) => return Err(bad("sort")),
        };
        out.sort.push((column, descending));
    }
    Ok(out)
}

fn cell(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Rows of a dataset's current version: searched, filtered, sorted and paged. A
/// conditional dataset needs the `X-API-Key` of an approved application; each call counts
/// against the key's limit per minute (429 past it, with `Retry-After`).
#[utoipa::path(get, path = "/api/v1/open-data/datasets/{name}/rows", tag = "open data",
    params(("name" = String, Path, max_length = 100), RowsQuery,
        ("X-API-Key" = Option<String>, Header, description = "The key of an approved application")),
    responses((status = 200, body = RowPage), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn open_data_rows(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<RowsQuery>,
) -> Result<Json<RowPage>, ApiError> {
    let within = |s: &Option<String>, max: usize| s.as_ref().is_none_or(|s| s.chars().count() <= max);
    if !within(&q.q, 200) || !within(&q.filters, 2000) || !within(&q.sort, 500) || !within(&q.fields, 2000) {
        return Err(bad("a parameter"));
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=32_000).contains(&limit) || q.offset.is_some_and(|o| o > 10_000_000) {
        return Err(bad("limit or offset"));
    }
    let filters = match q.filters.as_deref().filter(|f| !f.trim().is_empty()) {
        None => None,
        Some(text) => Some(serde_json::from_str(text).map_err(|_| bad("filters"))?),
    };
    let fields = q
        .fields
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(String::from)
        .collect();
    let query = row_query(q.q, filters, q.sort.as_deref(), fields, q.offset.unwrap_or(0), limit)?;
    Ok(Json(state.openness.catalogue().rows(&name, reader(&headers), &query, Utc::now()).await?))
}

/// A file and its declared columns.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FileCheck {
    pub columns: Vec<Column>,
    /// The CSV, XLSX or JSON file, base64-encoded.
    pub file: String,
}

fn file_bytes(base64: &str) -> Result<Vec<u8>, ApiError> {
    base64::engine::general_purpose::STANDARD
        .decode(base64.trim())
        .map_err(|_| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidField, "file: not base64"))
}

/// Check a file against columns: every row, column and reason that does not fit (the first
/// 1,000); nothing is published.
#[utoipa::path(post, path = "/api/v1/open-data/file-checks", tag = "open data", request_body = FileCheck,
    responses((status = 200, body = FileReport), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn open_data_check_file(
    State(state): State<AppState>,
    Authorized(cap): Authorized<OpenDataPublish>,
    ApiJson(b): ApiJson<FileCheck>,
) -> Result<Json<FileReport>, ApiError> {
    let bytes = file_bytes(&b.file)?;
    Ok(Json(state.openness.data_publishing().check_file(&cap, &b.columns, bytes).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FilePublication {
    pub dataset: DatasetSpec,
    pub columns: Vec<Column>,
    /// The CSV, XLSX or JSON file, base64-encoded.
    pub file: String,
}

/// Open a dataset from a file of the officer's department. Any row that does not fit its
/// column refuses the file (422 `rows_rejected`; `file-checks` reports every row).
#[utoipa::path(post, path = "/api/v1/open-data/datasets", tag = "open data", request_body = FilePublication,
    responses((status = 201, body = Dataset), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn open_data_publish_file(
    State(state): State<AppState>,
    Authorized(cap): Authorized<OpenDataPublish>,
    ApiJson(b): ApiJson<FilePublication>,
) -> Result<impl IntoResponse, ApiError> {
    let bytes = file_bytes(&b.file)?;
    let dataset = state.openness.data_publishing().publish_file(&cap, &b.dataset, b.columns, bytes, Utc::now()).await?;
    Ok((StatusCode::CREATED, Json(dataset)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FileVersion {
    /// The version the officer replaces: 409 `record_changed` if another was published since.
    pub version: i64,
    /// Why (2–500 characters).
    pub note: String,
    /// The CSV, XLSX or JSON file, base64-encoded, with the dataset's columns.
    pub file: String,
}

/// Publish a new version of a file dataset.
#[utoipa::path(post, path = "/api/v1/open-data/datasets/{name}/versions", tag = "open data",
    params(("name" = String, Path, max_length = 100)), request_body = FileVersion,
    responses((status = 201, body = Dataset), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn open_data_replace_file(
    State(state): State<AppState>,
    Authorized(cap): Authorized<OpenDataPublish>,
    ApiPath(name): ApiPath<String>,
    ApiJson(b): ApiJson<FileVersion>,
) -> Result<impl IntoResponse, ApiError> {
    let bytes = file_bytes(&b.file)?;
    let dataset =
        state.openness.data_publishing().replace_file(&cap, &name, b.version, bytes, &b.note, Utc::now()).await?;
    Ok((StatusCode::CREATED, Json(dataset)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistryPublication {
    pub dataset: DatasetSpec,
    pub source: RegistrySource,
}

/// Open a dataset from a registry of the officer's department, de-identified by the rules:
/// refused (422 `k_anonymity_not_met`, naming the combinations) below k unless the source
/// leaves small groups out. Needs `opendata.publish` and `registry.manage`.
#[utoipa::path(post, path = "/api/v1/open-data/registry-datasets", tag = "open data",
    request_body = RegistryPublication,
    responses((status = 201, body = Dataset), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn open_data_publish_registry(
    State(state): State<AppState>,
    Authorized(cap): Authorized<OpenDataPublish>,
    Authorized(manage): Authorized<RegistryManage>,
    ApiJson(b): ApiJson<RegistryPublication>,
) -> Result<impl IntoResponse, ApiError> {
    let publishing = state.openness.data_publishing();
    let dataset = publishing.publish_registry(&cap, &manage, &b.dataset, &b.source, Utc::now()).await?;
    Ok((StatusCode::CREATED, Json(dataset)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistryPreview {
    /// The dataset's name (pseudonyms are keyed by it).
    pub name: String,
    pub source: RegistrySource,
}

/// What a registry dataset would publish: rows, rows left out, the k reached and the
/// combinations below it, the first rows. Nothing is written; the read is audited.
#[utoipa::path(post, path = "/api/v1/open-data/registry-previews", tag = "open data", request_body = RegistryPreview,
    responses((status = 200, body = Deidentification), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn open_data_preview_registry(
    State(state): State<AppState>,
    Authorized(cap): Authorized<OpenDataPublish>,
    Authorized(manage): Authorized<RegistryManage>,
    ApiJson(b): ApiJson<RegistryPreview>,
) -> Result<Json<Deidentification>, ApiError> {
    let publishing = state.openness.data_publishing();
    Ok(Json(publishing.preview_registry(&cap, &manage, &b.name, &b.source, Utc::now()).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessRequest {
    /// What the data is for (10–2,000 characters).
    pub purpose: String,
}

/// Apply for a conditional dataset (有条件开放). Applying again while one is pending or
/// approved returns that one.
#[utoipa::path(post, path = "/api/v1/open-data/datasets/{name}/applications", tag = "open data",
    params(("name" = String, Path, max_length = 100)), request_body = AccessRequest,
    responses((status = 201, body = AccessApplication), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn open_data_apply(
    State(state): State<AppState>,
    Caller(person): Caller,
    ApiPath(name): ApiPath<String>,
    ApiJson(b): ApiJson<AccessRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let application = state.openness.access().apply(&person, &name, &b.purpose, Utc::now()).await?;
    Ok((StatusCode::CREATED, Json(application)))
}

/// The caller's applications for conditional datasets.
#[utoipa::path(get, path = "/api/v1/open-data/applications", tag = "open data",
    responses((status = 200, body = Vec<AccessApplication>), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
async fn open_data_my_applications(
    State(state): State<AppState>,
    Caller(person): Caller,
) -> Result<Json<Vec<AccessApplication>>, ApiError> {
    Ok(Json(state.openness.access().mine(&person).await?))
}

/// Take a key for an approved application: shown once; taking another stops the earlier.
#[utoipa::path(post, path = "/api/v1/open-data/applications/{id}/key", tag = "open data",
    params(("id" = String, Path, max_length = 64)),
    responses((status = 201, body = IssuedKey), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
async fn open_data_issue_key(
    State(state): State<AppState>,
    Caller(person): Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok((StatusCode::CREATED, Json(state.openness.access().issue_key(&person, &id).await?)))
}

/// Applications for the officer's department's conditional datasets.
#[utoipa::path(get, path = "/api/v1/open-data/department/applications", tag = "open data",
    responses((status = 200, body = Vec<AccessApplication>), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
async fn open_data_department_applications(
    State(state): State<AppState>,
    Authorized(cap): Authorized<OpenDataPublish>,
) -> Result<Json<Vec<AccessApplication>>, ApiError> {
    Ok(Json(state.openness.access().applications(&cap).await?))
}

/// What an officer decides about an application.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccessDecision {
    Approve,
    Refuse,
    /// Ends approved access; the key stops at once.
    Revoke,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessDecisionRequest {
    pub decision: AccessDecision,
    /// The reason (2–500 characters), shown to the applicant.
    #[schema(min_length = 2, max_length = 500)]
    pub note: String,
    /// For an approval: calls per minute (1–6,000; 60 when not given).
    #[schema(minimum = 1, maximum = 6000)]
    pub calls_per_minute: Option<i64>,
}

/// Approve, refuse or revoke an application for a dataset of the officer's department.
#[utoipa::path(post, path = "/api/v1/open-data/department/applications/{id}", tag = "open data",
    params(("id" = String, Path, max_length = 64)), request_body = AccessDecisionRequest,
    responses((status = 200, body = AccessApplication), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn open_data_decide(
    State(state): State<AppState>,
    Authorized(cap): Authorized<OpenDataPublish>,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<AccessDecisionRequest>,
) -> Result<Json<AccessApplication>, ApiError> {
    let access = state.openness.access();
    let now = Utc::now();
    let decided = match b.decision {
        AccessDecision::Approve => access.decide(&cap, &id, true, &b.note, b.calls_per_minute, now).await?,
        AccessDecision::Refuse => access.decide(&cap, &id, false, &b.note, None, now).await?,
        AccessDecision::Revoke => access.revoke(&cap, &id, &b.note, now).await?,
    };
    Ok(Json(decided))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DemandsQuery {
    /// A department's code.
    #[param(max_length = 64)]
    pub department: Option<String>,
}

/// 数据需求: what people asked for and the departments' answers (never who asked).
#[utoipa::path(get, path = "/api/v1/open-data/requests", tag = "open data", params(DemandsQuery),
    responses((status = 200, body = Vec<DataDemand>), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn open_data_demands(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<DemandsQuery>,
) -> Result<Json<Vec<DataDemand>>, ApiError> {
    if q.department.as_ref().is_some_and(|d| d.chars().count() > 64) {
        return Err(bad("department"));
    }
    Ok(Json(state.openness.data_demands().list(q.department.as_deref()).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DemandRequest {
    /// The department asked: its code.
    pub department: String,
    /// 2–100 characters.
    pub title: String,
    /// What data, and why (10–2,000 characters).
    pub description: String,
}

/// Ask a department for a dataset it has not opened.
#[utoipa::path(post, path = "/api/v1/open-data/requests", tag = "open data", request_body = DemandRequest,
    responses((status = 201, body = DataDemand), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn open_data_ask(
    State(state): State<AppState>,
    Caller(person): Caller,
    ApiJson(b): ApiJson<DemandRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let demand =
        state.openness.data_demands().ask(&person, &b.department, &b.title, &b.description, Utc::now()).await?;
    Ok((StatusCode::CREATED, Json(demand)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DemandAnswer {
    /// The public answer (2–2,000 characters).
    pub answer: String,
    /// The name of the dataset that meets the request, if one does.
    pub dataset: Option<String>,
}

/// Answer a request for a dataset addressed to the officer's department, publicly.
#[utoipa::path(post, path = "/api/v1/open-data/requests/{id}/answer", tag = "open data",
    params(("id" = String, Path, max_length = 64)), request_body = DemandAnswer,
    responses((status = 200, body = DataDemand), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn open_data_answer(
    State(state): State<AppState>,
    Authorized(cap): Authorized<OpenDataPublish>,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<DemandAnswer>,
) -> Result<Json<DataDemand>, ApiError> {
    let demands = state.openness.data_demands();
    Ok(Json(demands.answer(&cap, &id, &b.answer, b.dataset.as_deref(), Utc::now()).await?))
}
