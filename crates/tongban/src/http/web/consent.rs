//! Data-exchange pages: 我的授权, where a person grants or withdraws consent for each purpose
//! that asks for it; and, for data officers, the resource catalog with the approval inbox.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde::Deserialize;

use super::{CsrfForm, Layout, PageCtx};
use crate::exchange::{AgreementView, ConsentView, Decision, RegistryView};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::identity::authz::{OrganisationRead, SharingDecide};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/consents", get(consents))
        .route("/consents/{id}", post(set_consent))
        .route("/staff/exchange", get(exchange_page))
        .route("/staff/exchange/agreements/{id}/decision", post(decide))
}

#[derive(Template)]
#[template(path = "consents.html")]
struct ConsentsPage {
    l: Layout,
    rows: Vec<ConsentView>,
}

async fn consents(State(state): State<AppState>, ctx: PageCtx) -> Response {
    let s = match ctx.ready() {
        Ok(s) => s,
        Err(r) => return *r,
    };
    match state.exchange.my_consents(&s.principal, Utc::now()).await {
        Ok(rows) => ctx.page(StatusCode::OK, &ConsentsPage { l: ctx.layout("consent.title"), rows }),
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
struct ConsentForm {
    /// "grant" or "withdraw".
    choice: String,
}

async fn set_consent(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<ConsentForm>,
) -> Response {
    let s = match ctx.ready() {
        Ok(s) => s,
        Err(r) => return *r,
    };
    match state.exchange.set_my_consent(&s.principal, &id, form.choice == "grant", Utc::now()).await {
        Ok(()) => Redirect::to("/consents").into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[derive(Template)]
#[template(path = "exchange.html")]
struct ExchangePage {
    l: Layout,
    registries: Vec<RegistryView>,
    /// Requests for the own department's registries (data officers only).
    incoming: Vec<AgreementView>,
    can_decide: bool,
}

/// 数据资源目录: every registry and its fields; for a data officer, the requests to decide.
async fn exchange_page(State(state): State<AppState>, ctx: PageCtx) -> Response {
    let cap = match ctx.authorize::<OrganisationRead>(&state).await {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let registries = match state.exchange.catalog(&cap).await {
        Ok(r) => r,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let decide = ctx.ready().ok().and_then(|s| s.principal.authorize::<SharingDecide>().ok());
    let incoming = match &decide {
        Some(cap) => match state.exchange.incoming_agreements(cap, Utc::now()).await {
            Ok(list) => list,
            Err(e) => return ApiError::from(e).into_response(),
        },
        None => Vec::new(),
    };
    let page = ExchangePage { l: ctx.layout("exchange.title"), registries, incoming, can_decide: decide.is_some() };
    ctx.page(StatusCode::OK, &page)
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
) -> Response {
    let cap = match ctx.authorize::<SharingDecide>(&state).await {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let decision = Decision { approve: form.decision == "approve", reason: Some(form.reason) };
    match state.exchange.decide_agreement(&cap, &id, decision, Utc::now()).await {
        Ok(_) => Redirect::to("/staff/exchange").into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}
