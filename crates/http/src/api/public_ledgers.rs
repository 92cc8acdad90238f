//! The public ledgers' API: community finance (社区财务公开) and public-resource transactions
//! (公共资源交易). Reading is open to anyone; publishing is for the community's worker and the
//! department's trading officer.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::Utc;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, Authorized};
use kernel::authz::{CommunityFinancePublish, TransactionPublish};
use openness::{LedgerKind, MonthlyStatement, PublicRecord, Subject, TransactionRecord};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(communities, publish_statement))
        .routes(routes!(community_statements))
        .routes(routes!(projects, publish_transaction))
        .routes(routes!(project_records))
}

/// The communities that publish their finances, the latest first.
#[utoipa::path(get, path = "/api/v1/public-ledgers/community-finance", tag = "public ledgers",
    responses((status = 200, body = Vec<Subject>)))]
async fn communities(State(state): State<AppState>) -> Result<Json<Vec<Subject>>, ApiError> {
    Ok(Json(state.openness.ledgers().subjects(LedgerKind::CommunityFinance).await?))
}

/// A community's monthly statements, oldest first, each with its ledger entry and SHA-256.
#[utoipa::path(get, path = "/api/v1/public-ledgers/community-finance/{community}", tag = "public ledgers",
    params(("community" = String, Path, description = "the community's region code")),
    responses((status = 200, body = Vec<PublicRecord>)))]
async fn community_statements(
    State(state): State<AppState>,
    ApiPath(community): ApiPath<String>,
) -> Result<Json<Vec<PublicRecord>>, ApiError> {
    Ok(Json(state.openness.ledgers().records(LedgerKind::CommunityFinance, &community).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatementRequest {
    pub statement: MonthlyStatement,
    /// The id of the month's statement this one corrects.
    pub corrects: Option<String>,
}

/// Publish the worker's community's income and spending of a month, once a month (a change is
/// a correction naming the statement it corrects).
#[utoipa::path(post, path = "/api/v1/public-ledgers/community-finance", tag = "public ledgers",
    request_body = StatementRequest,
    responses((status = 201, body = PublicRecord), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn publish_statement(
    State(state): State<AppState>,
    Authorized(cap): Authorized<CommunityFinancePublish>,
    ApiJson(b): ApiJson<StatementRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let ledgers = state.openness.ledgers();
    let record = ledgers.publish_statement(&cap, &b.statement, b.corrects.as_deref(), Utc::now()).await?;
    Ok((StatusCode::CREATED, Json(record)))
}

/// The public-resource transactions, the latest first.
#[utoipa::path(get, path = "/api/v1/public-ledgers/transactions", tag = "public ledgers",
    responses((status = 200, body = Vec<Subject>)))]
async fn projects(State(state): State<AppState>) -> Result<Json<Vec<Subject>>, ApiError> {
    Ok(Json(state.openness.ledgers().subjects(LedgerKind::Transaction).await?))
}

/// A project's published stages, oldest first.
#[utoipa::path(get, path = "/api/v1/public-ledgers/transactions/{project}", tag = "public ledgers",
    params(("project" = String, Path)), responses((status = 200, body = Vec<PublicRecord>)))]
async fn project_records(
    State(state): State<AppState>,
    ApiPath(project): ApiPath<String>,
) -> Result<Json<Vec<PublicRecord>>, ApiError> {
    Ok(Json(state.openness.ledgers().records(LedgerKind::Transaction, &project).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransactionRequest {
    pub record: TransactionRecord,
    /// The id of the record of the same stage this one corrects.
    pub corrects: Option<String>,
}

/// Publish a stage of a public-resource transaction of the officer's department: the tender
/// notice first, then bid openings, the award and the contract.
#[utoipa::path(post, path = "/api/v1/public-ledgers/transactions", tag = "public ledgers",
    request_body = TransactionRequest,
    responses((status = 201, body = PublicRecord), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn publish_transaction(
    State(state): State<AppState>,
    Authorized(cap): Authorized<TransactionPublish>,
    ApiJson(b): ApiJson<TransactionRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let ledgers = state.openness.ledgers();
    let record = ledgers.publish_transaction(&cap, &b.record, b.corrects.as_deref(), Utc::now()).await?;
    Ok((StatusCode::CREATED, Json(record)))
}
