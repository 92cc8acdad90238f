//! 我的授权: where a person grants or withdraws consent for each purpose that asks for it.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use chrono::Utc;
use serde::Deserialize;

use super::{CsrfForm, Layout, PageCtx, PageResult};
use crate::AppState;
use exchange::ConsentView;

pub fn router() -> Router<AppState> {
    Router::new().route("/consents", get(consents)).route("/consents/{id}", post(set_consent))
}

#[derive(Template)]
#[template(path = "consents.html")]
struct ConsentsPage {
    l: Layout,
    rows: Vec<ConsentView>,
}

async fn consents(State(state): State<AppState>, ctx: PageCtx) -> PageResult {
    let s = ctx.ready()?;
    let rows = state.exchange.consent().my_consents(&s.principal, Utc::now()).await?;
    Ok(ctx.page(StatusCode::OK, &ConsentsPage { l: ctx.layout("consent.title"), rows }))
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
) -> PageResult {
    let s = ctx.ready()?;
    state.exchange.consent().set_my_consent(&s.principal, &id, form.choice == "grant", Utc::now()).await?;
    Ok(Redirect::to("/consents").into_response())
}
