//! The KPI API: every service KPI for a region within the caller's jurisdiction and a
//! period, its trend by week or month, and its breakdown by subregion, department or
//! service; JSON or CSV.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde::Deserialize;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiQuery, Authorized};
use insight::assessment::{Indicator, Period as AssessedPeriod, Plan, Scorecard};
use insight::kpis::{Breakdown, Export, GroupValues, Kpi, KpiQuery, KpiRecords, KpiValue, Period, TrendPoint, export};
use kernel::authz::{AssessmentManage, InsightRead};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(insight_kpis))
        .routes(routes!(insight_trend))
        .routes(routes!(insight_breakdown))
        .routes(routes!(insight_records))
        .routes(routes!(assessment_plan, assessment_set_plan))
        .routes(routes!(assessment_scorecards))
        .routes(routes!(insight_forecasts))
}

/// What JSON or CSV.
#[derive(Debug, Clone, Copy, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    #[default]
    Json,
    Csv,
    Xlsx,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct KpiParams {
    /// A region code within the caller's jurisdiction.
    #[param(pattern = r"^[0-9A-Za-z]{1,32}$")]
    region: String,
    /// First China day of the period, YYYY-MM-DD.
    #[param(value_type = String, format = Date)]
    from: NaiveDate,
    /// Last China day of the period (included), at most 1,098 days after `from`.
    #[param(value_type = String, format = Date)]
    to: NaiveDate,
    /// One department's code.
    #[param(pattern = r"\S")]
    department: Option<String>,
    /// One service's code.
    #[param(pattern = r"\S")]
    service: Option<String>,
    /// For the trend: `week` (the default) or `month`.
    #[param(inline)]
    period: Option<Period>,
    /// For the breakdown: `region` (the subregions, the default), `department` or `service`.
    #[param(inline)]
    by: Option<Breakdown>,
    /// For the records: the KPI whose applications to list.
    #[param(inline)]
    kpi: Option<Kpi>,
    /// `json` (the default), `csv` or `xlsx`.
    #[param(inline)]
    format: Option<Format>,
}

impl KpiParams {
    fn query(&self) -> KpiQuery {
        KpiQuery {
            region: self.region.clone(),
            from: self.from,
            to: self.to,
            department: self.department.clone(),
            service: self.service.clone(),
        }
    }
}

/// A table as a file, or JSON.
fn respond<T: serde::Serialize>(
    format: Option<Format>,
    json: T,
    name: &str,
    rows: impl FnOnce(&T) -> Vec<(String, &KpiValue)>,
) -> Result<Response, ApiError> {
    let file = match format.unwrap_or_default() {
        Format::Json => return Ok(Json(json).into_response()),
        Format::Csv => Export::Csv,
        Format::Xlsx => Export::Xlsx,
    };
    let body = export(&rows(&json), file)?;
    let disposition = format!("attachment; filename=\"{name}.{}\"", file.extension());
    Ok(([(header::CONTENT_TYPE, file.content_type().to_string()), (header::CONTENT_DISPOSITION, disposition)], body)
        .into_response())
}

/// Every KPI for the region and period: `[{code, name, value, numerator, denominator,
/// unit}]`. A region outside the caller's jurisdiction answers 403 `outside_jurisdiction`.
#[utoipa::path(get, path = "/api/v1/insight/kpis", tag = "insight", params(KpiParams),
    responses((status = 200, body = Vec<KpiValue>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn insight_kpis(
    State(state): State<AppState>,
    Authorized(cap): Authorized<InsightRead>,
    ApiQuery(p): ApiQuery<KpiParams>,
) -> Result<Response, ApiError> {
    let values = state.insight.kpis().figures(&cap, &p.query()).await?;
    respond(p.format, values, "kpis", |values| values.iter().map(|v| (p.region.clone(), v)).collect())
}

/// The tallied KPIs week by week or month by month.
#[utoipa::path(get, path = "/api/v1/insight/kpis/trend", tag = "insight", params(KpiParams),
    responses((status = 200, body = Vec<TrendPoint>), (status = 403, body = ErrorBody)), security(("bearer" = [])))]
async fn insight_trend(
    State(state): State<AppState>,
    Authorized(cap): Authorized<InsightRead>,
    ApiQuery(p): ApiQuery<KpiParams>,
) -> Result<Response, ApiError> {
    let points = state.insight.kpis().trend(&cap, &p.query(), p.period.unwrap_or_default()).await?;
    respond(p.format, points, "kpi-trend", |points| {
        points.iter().flat_map(|t| t.values.iter().map(|v| (t.start.to_string(), v))).collect()
    })
}

/// The tallied KPIs per subregion (drill-down), department or service.
#[utoipa::path(get, path = "/api/v1/insight/kpis/breakdown", tag = "insight", params(KpiParams),
    responses((status = 200, body = Vec<GroupValues>), (status = 403, body = ErrorBody)), security(("bearer" = [])))]
async fn insight_breakdown(
    State(state): State<AppState>,
    Authorized(cap): Authorized<InsightRead>,
    ApiQuery(p): ApiQuery<KpiParams>,
) -> Result<Response, ApiError> {
    let groups = state.insight.kpis().breakdown(&cap, &p.query(), p.by.unwrap_or_default()).await?;
    respond(p.format, groups, "kpi-breakdown", |groups| {
        groups.iter().flat_map(|g| g.values.iter().map(|v| (g.code.clone(), v))).collect()
    })
}

/// The applications behind a KPI's numerator and denominator in the period (application KPIs;
/// at most 200 each, newest first).
#[utoipa::path(get, path = "/api/v1/insight/kpis/records", tag = "insight", params(KpiParams),
    responses((status = 200, body = KpiRecords), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn insight_records(
    State(state): State<AppState>,
    Authorized(cap): Authorized<InsightRead>,
    ApiQuery(p): ApiQuery<KpiParams>,
) -> Result<Json<KpiRecords>, ApiError> {
    let kpi = p.kpi.ok_or_else(|| insight::Error::Invalid { field: "kpi", reason: "name the KPI".into() })?;
    Ok(Json(state.insight.kpis().records(&cap, &p.query(), kpi).await?))
}

/// 绩效考核: the indicator system in force (the platform's default, version 0, until the
/// assessment office sets one).
#[utoipa::path(get, path = "/api/v1/insight/assessment/plan", tag = "insight",
    responses((status = 200, body = Plan)), security(("bearer" = [])))]
async fn assessment_plan(
    State(state): State<AppState>,
    Authorized(_cap): Authorized<InsightRead>,
) -> Result<Json<Plan>, ApiError> {
    Ok(Json(state.insight.assessment().plan().await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanRequest {
    /// KPIs scored per department, each once, whole points adding up to 100.
    pub indicators: Vec<Indicator>,
}

/// Puts a new indicator system in force (考核办, `assessment.manage`).
#[utoipa::path(put, path = "/api/v1/insight/assessment/plan", tag = "insight", request_body = PlanRequest,
    responses((status = 200, body = Plan), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn assessment_set_plan(
    State(state): State<AppState>,
    Authorized(cap): Authorized<AssessmentManage>,
    crate::extract::ApiJson(body): crate::extract::ApiJson<PlanRequest>,
) -> Result<Json<Plan>, ApiError> {
    Ok(Json(state.insight.assessment().set_plan(&cap, body.indicators, chrono::Utc::now()).await?))
}

/// Whom a scorecard ranks.
#[derive(Debug, Clone, Copy, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Assessed {
    #[default]
    Department,
    /// The subregions one level down.
    Region,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ScorecardParams {
    /// A region code within the caller's jurisdiction.
    #[param(pattern = r"^[0-9A-Za-z]{1,32}$")]
    region: String,
    /// A month (`YYYY-MM`) or a year (`YYYY`).
    #[param(pattern = r"^[0-9]{4}(-(0[1-9]|1[0-2]))?$")]
    period: String,
    /// `department` (the default) or `region`.
    #[param(inline)]
    by: Option<Assessed>,
}

/// The scorecards of the region's departments or subregions for a month or year: each
/// indicator's value, target and points, the total out of 100 and the rank.
#[utoipa::path(get, path = "/api/v1/insight/assessment/scorecards", tag = "insight", params(ScorecardParams),
    responses((status = 200, body = Vec<Scorecard>), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn assessment_scorecards(
    State(state): State<AppState>,
    Authorized(cap): Authorized<InsightRead>,
    ApiQuery(p): ApiQuery<ScorecardParams>,
) -> Result<Json<Vec<Scorecard>>, ApiError> {
    let period = AssessedPeriod::parse(&p.period)?;
    let by = match p.by.unwrap_or_default() {
        Assessed::Department => Breakdown::Department,
        Assessed::Region => Breakdown::Region,
    };
    Ok(Json(state.insight.assessment().scorecards(&cap, &p.region, period, by).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ForecastParams {
    /// A region code within the caller's jurisdiction.
    #[param(pattern = r"^[0-9A-Za-z]{1,32}$")]
    region: String,
}

/// Forecasts of the region's weekly volumes (all applications, 12345 requests, the three
/// most used services), 8 weeks ahead with 80 % intervals, each with its method and its MASE
/// on the held-out weeks; or why a series has none (too little history).
#[utoipa::path(get, path = "/api/v1/insight/forecasts", tag = "insight", params(ForecastParams),
    responses((status = 200, body = Vec<insight::kpis::NamedForecast>), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
async fn insight_forecasts(
    State(state): State<AppState>,
    Authorized(cap): Authorized<InsightRead>,
    ApiQuery(p): ApiQuery<ForecastParams>,
) -> Result<Json<Vec<insight::kpis::NamedForecast>>, ApiError> {
    let today = chrono::Utc::now().with_timezone(&services::calendar::cst()).date_naive();
    Ok(Json(state.insight.kpis().forecasts(&cap, &p.region, today).await?))
}
