//! Data-exchange pages for staff: the resource catalog with its request form and the
//! department's requests; the approval inbox of data officers; bulk imports with a progress
//! view (it refreshes itself while the import runs, no script needed) and the per-row
//! report; data quality and department figures.

use askama::Template;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde::Deserialize;

use super::{CsrfForm, CsrfMultipart, Layout, PageCtx, PageResult};
use crate::AppState;
use crate::error::{ApiError, ErrorCode};
use exchange::{
    AgreementRequest, AgreementView, Decision, DepartmentFigures, ImportMode, ImportProgress, RegistryQuality,
    RegistryView, Table,
};
use kernel::authz::{ExchangeFigures, OrganisationRead, RegistryManage, SharingDecide, SharingRequest};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/staff/exchange", get(exchange_page))
        .route("/staff/exchange/requests", post(request))
        .route("/staff/exchange/agreements/{id}/decision", post(decide))
        .route("/staff/exchange/imports", get(import_page).post(start_import))
        .route("/staff/exchange/imports/{id}", get(import_progress))
        .route("/staff/exchange/quality", get(quality_page))
}

fn failed(e: impl Into<ApiError>) -> Response {
    e.into().into_response()
}

#[derive(Template)]
#[template(path = "exchange.html")]
struct ExchangePage {
    l: Layout,
    registries: Vec<RegistryView>,
    /// Requests for the own department's registries (data officers only).
    incoming: Vec<AgreementView>,
    can_decide: bool,
    /// The own department's requests, and whether it may make more.
    outgoing: Vec<AgreementView>,
    can_request: bool,
}

/// 数据资源目录: every registry and its fields, with a request form; the department's own
/// requests; for a data officer, the requests to decide.
async fn exchange_page(State(state): State<AppState>, ctx: PageCtx) -> PageResult {
    let cap = ctx.authorize::<OrganisationRead>(&state).await?;
    let registries = match state.exchange.registries().catalog(&cap).await {
        Ok(r) => r,
        Err(e) => return Ok(failed(e)),
    };
    let principal = ctx.ready().ok().map(|s| s.principal.clone());
    let decide = principal.as_ref().and_then(|p| p.authorize::<SharingDecide>().ok());
    let incoming = match &decide {
        Some(cap) => match state.exchange.sharing().incoming_agreements(cap, Utc::now()).await {
            Ok(list) => list,
            Err(e) => return Ok(failed(e)),
        },
        None => Vec::new(),
    };
    let ask =
        principal.as_ref().and_then(|p| p.authorize::<SharingRequest>().ok()).filter(|c| c.department_id().is_some());
    let outgoing = match &ask {
        Some(cap) => match state.exchange.sharing().outgoing_agreements(cap, Utc::now()).await {
            Ok(list) => list,
            Err(e) => return Ok(failed(e)),
        },
        None => Vec::new(),
    };
    let page = ExchangePage {
        l: ctx.layout("exchange.title"),
        registries,
        incoming,
        can_decide: decide.is_some(),
        outgoing,
        can_request: ask.is_some(),
    };
    Ok(ctx.page(StatusCode::OK, &page))
}

/// The request form: `fields` repeats, one per ticked field.
async fn request(
    State(state): State<AppState>,
    ctx: PageCtx,
    CsrfForm(form): CsrfForm<Vec<(String, String)>>,
) -> PageResult {
    let cap = ctx.authorize::<SharingRequest>(&state).await?;
    let value = |k: &str| form.iter().find(|(name, _)| name == k).map(|(_, v)| v.trim().to_string());
    let ticked = |k: &str| value(k).is_some_and(|v| v == "on" || v == "true");
    let valid_days = match value("valid_days").unwrap_or_default().parse::<i64>() {
        Ok(d) => d,
        Err(_) => {
            return Ok(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidField,
                "valid_days: 1 to 1,095",
            )
            .into_response());
        }
    };
    let req = AgreementRequest {
        registry: value("registry").unwrap_or_default(),
        fields: form.iter().filter(|(k, _)| k == "fields").map(|(_, v)| v.clone()).collect(),
        purpose: value("purpose").unwrap_or_default(),
        legal_basis: value("legal_basis").unwrap_or_default(),
        verify_only: ticked("verify_only"),
        plain_values: ticked("plain_values"),
        consent_required: ticked("consent_required"),
        valid_days,
        rate_per_minute: None,
    };
    match state.exchange.sharing().request_agreement(&cap, req, Utc::now()).await {
        Ok(_) => Ok(Redirect::to("/staff/exchange#outgoing").into_response()),
        Err(e) => Ok(failed(e)),
    }
}

#[derive(Deserialize)]
struct DecisionForm {
    /// "approve" or "refuse".
    decision: String,
    #[serde(default)]
    reason: String,
}

async fn decide(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<DecisionForm>,
) -> PageResult {
    let cap = ctx.authorize::<SharingDecide>(&state).await?;
    let decision = Decision { approve: form.decision == "approve", reason: Some(form.reason) };
    match state.exchange.sharing().decide_agreement(&cap, &id, decision, Utc::now()).await {
        Ok(_) => Ok(Redirect::to("/staff/exchange").into_response()),
        Err(e) => Ok(failed(e)),
    }
}

#[derive(Template)]
#[template(path = "exchange_import.html")]
struct ImportPage {
    l: Layout,
    /// The registries the department owns.
    registries: Vec<RegistryView>,
}

async fn import_page(State(state): State<AppState>, ctx: PageCtx) -> PageResult {
    let cap = ctx.authorize::<RegistryManage>(&state).await?;
    let registries = match state.exchange.registries().registries_to_manage(&cap).await {
        Ok(r) => r,
        Err(e) => return Ok(failed(e)),
    };
    Ok(ctx.page(StatusCode::OK, &ImportPage { l: ctx.layout("exchange.import_title"), registries }))
}

async fn start_import(State(state): State<AppState>, ctx: PageCtx, form: CsrfMultipart) -> PageResult {
    let cap = ctx.authorize::<RegistryManage>(&state).await?;
    let registry = form.field("registry").unwrap_or_default().to_string();
    let skip = form.field("mode") == Some("skip_bad_rows");
    let Some((file_name, file)) = form.file.filter(|(_, bytes)| !bytes.is_empty()) else {
        return Ok(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::InvalidBody,
            "choose a CSV or XLSX file",
        )
        .into_response());
    };
    let table = match Table::read(file) {
        Ok(t) => t,
        Err(e) => return Ok(failed(e)),
    };
    let mode = if skip { ImportMode::SkipBadRows } else { ImportMode::AllOrNothing };
    match state.exchange.imports().start_import(cap, &registry, &file_name, table, mode, Utc::now()).await {
        Ok(id) => Ok(Redirect::to(&format!("/staff/exchange/imports/{id}")).into_response()),
        Err(e) => Ok(failed(e)),
    }
}

#[derive(Template)]
#[template(path = "exchange_progress.html")]
struct ProgressPage {
    l: Layout,
    p: ImportProgress,
    /// Reload every few seconds while the import runs, unless the person turned it off.
    refresh: bool,
    mode_key: String,
    status_key: String,
}

async fn import_progress(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> PageResult {
    let cap = ctx.authorize::<RegistryManage>(&state).await?;
    match state.exchange.imports().import_status(&cap, &id).await {
        Ok(p) => {
            let refresh = p.status.is_running() && !q.as_deref().unwrap_or_default().contains("manual=1");
            let (mode_key, status_key) =
                (format!("exchange.mode_{}", p.mode.as_str()), format!("exchange.import_{}", p.status.as_str()));
            let page = ProgressPage { l: ctx.layout("exchange.progress_title"), p, refresh, mode_key, status_key };
            Ok(ctx.page(StatusCode::OK, &page))
        }
        Err(e) => Ok(failed(e)),
    }
}

#[derive(Template)]
#[template(path = "exchange_quality.html")]
struct QualityPage {
    l: Layout,
    registries: Vec<RegistryQuality>,
    departments: Vec<DepartmentFigures>,
}

/// 数据质量与部门指标, for data officers and leaders.
async fn quality_page(State(state): State<AppState>, ctx: PageCtx) -> PageResult {
    let cap = ctx.authorize::<ExchangeFigures>(&state).await?;
    let registries = match state.exchange.quality().report(&cap, Utc::now()).await {
        Ok(q) => q,
        Err(e) => return Ok(failed(e)),
    };
    let departments = match state.exchange.quality().department_figures(&cap).await {
        Ok(f) => f,
        Err(e) => return Ok(failed(e)),
    };
    Ok(ctx.page(StatusCode::OK, &QualityPage { l: ctx.layout("exchange.quality_title"), registries, departments }))
}
