//! The JSON API of the data exchange: the resource catalog, registries and imports, sharing
//! agreements, the calls of department systems (reads and verification-only queries), data
//! quality and department figures, and a person's own consents.
//!
//! Systems authenticate with the `Information-Mediator-Client` header and their secret in
//! `X-Exchange-Secret`. Subject keys travel in the body, never in the URL (logs keep URLs).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Authorized, Caller};
use exchange::{
    AgreementRequest, AgreementView, ConsentView, Decision, DepartmentFigures, ExchangeAnswer, ExchangeClient,
    ImportMode, ImportProgress, Predicate, Receipt, RegistryQuality, RegistrySpec, RegistryView, Table,
};
use kernel::authz::{AccountCreate, ExchangeFigures, OrganisationRead, RegistryManage, SharingDecide, SharingRequest};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(catalog, publish))
        .routes(routes!(registry))
        .routes(routes!(served_systems, serve_systems))
        .routes(routes!(import))
        .routes(routes!(import_status))
        .routes(routes!(request))
        .routes(routes!(incoming))
        .routes(routes!(outgoing))
        .routes(routes!(decide))
        .routes(routes!(revoke))
        .routes(routes!(read))
        .routes(routes!(verify))
        .routes(routes!(quality))
        .routes(routes!(figures))
        .routes(routes!(register_client))
        .routes(routes!(my_consents))
        .routes(routes!(set_consent))
}

/// The calling system, from its mediator name and secret.
pub(crate) async fn system(state: &AppState, headers: &HeaderMap) -> Result<ExchangeClient, ApiError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty());
    let (Some(client), Some(secret)) = (header("information-mediator-client"), header("x-exchange-secret")) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthenticated,
            "send Information-Mediator-Client and X-Exchange-Secret",
        ));
    };
    Ok(state.exchange.sharing().authenticate(client, secret).await?)
}

/// The resource catalog (数据资源目录): every registry with its fields' standards,
/// classification and sharing type.
#[utoipa::path(get, path = "/api/v1/exchange/registries", tag = "exchange", operation_id = "registry_catalog",
    responses((status = 200, body = Vec<RegistryView>), (status = 403, body = ErrorBody)), security(("bearer" = [])))]
async fn catalog(
    State(state): State<AppState>,
    Authorized(cap): Authorized<OrganisationRead>,
) -> Result<Json<Vec<RegistryView>>, ApiError> {
    Ok(Json(state.exchange.registries().catalog(&cap).await?))
}

/// Publish a registry, or a new version of it (the owning department's data officer).
#[utoipa::path(post, path = "/api/v1/exchange/registries", tag = "exchange", request_body = Object,
    responses((status = 201, body = RegistryView), (status = 422, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
async fn publish(
    State(state): State<AppState>,
    Authorized(cap): Authorized<RegistryManage>,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Json<RegistryView>), ApiError> {
    let spec: RegistrySpec = serde_json::from_value(body).map_err(|e| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidBody, format!("registry: {e}"))
    })?;
    Ok((StatusCode::CREATED, Json(state.exchange.registries().publish_registry(&cap, spec, Utc::now()).await?)))
}

#[utoipa::path(get, path = "/api/v1/exchange/registries/{code}", tag = "exchange", params(("code" = String, Path)),
    responses((status = 200, body = RegistryView), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
async fn registry(
    State(state): State<AppState>,
    Authorized(cap): Authorized<OrganisationRead>,
    ApiPath(code): ApiPath<String>,
) -> Result<Json<RegistryView>, ApiError> {
    Ok(Json(state.exchange.registries().registry(&cap, &code).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ImportQuery {
    /// all_or_nothing (default) or skip_bad_rows.
    #[param(inline)]
    mode: Option<ImportMode>,
    /// The file's name, for the report.
    file_name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
struct ImportStarted {
    id: String,
    /// Where its progress and report are.
    status: String,
}

/// Import a CSV or XLSX file (the request body) into a registry. The import runs on; its
/// progress and per-row report are at the returned address.
#[utoipa::path(post, path = "/api/v1/exchange/registries/{code}/imports", tag = "exchange",
    params(("code" = String, Path), ImportQuery), request_body(content = Vec<u8>, content_type = "text/csv"),
    responses((status = 202, body = ImportStarted), (status = 422, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
async fn import(
    State(state): State<AppState>,
    Authorized(cap): Authorized<RegistryManage>,
    ApiPath(code): ApiPath<String>,
    ApiQuery(q): ApiQuery<ImportQuery>,
    body: Bytes,
) -> Result<(StatusCode, Json<ImportStarted>), ApiError> {
    let table = Table::read(body.to_vec())?;
    let file_name = q.file_name.unwrap_or_else(|| "upload".into());
    let mode = q.mode.unwrap_or(ImportMode::AllOrNothing);
    let id = state.exchange.imports().start_import(cap, &code, &file_name, table, mode, Utc::now()).await?;
    let status = format!("/api/v1/exchange/imports/{id}");
    Ok((StatusCode::ACCEPTED, Json(ImportStarted { id, status })))
}

/// The systems a registry's GovStack Data API serves.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
struct ServedSystems {
    /// `INSTANCE/CLASS/MEMBER/SUBSYSTEM`, as the Information Mediator names them.
    systems: Vec<String>,
}

/// The systems this registry's GovStack Data API serves (the owning department's data officer).
#[utoipa::path(get, path = "/api/v1/exchange/registries/{code}/systems", tag = "exchange",
    params(("code" = String, Path)),
    responses((status = 200, body = ServedSystems), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn served_systems(
    State(state): State<AppState>,
    Authorized(cap): Authorized<RegistryManage>,
    ApiPath(code): ApiPath<String>,
) -> Result<Json<ServedSystems>, ApiError> {
    Ok(Json(ServedSystems { systems: state.exchange.systems().serving(&cap, &code).await? }))
}

/// Replaces the systems this registry's GovStack Data API serves; every other system is
/// refused with 403 `system_not_served`, however it proves who it is.
#[utoipa::path(put, path = "/api/v1/exchange/registries/{code}/systems", tag = "exchange",
    params(("code" = String, Path)), request_body = ServedSystems,
    responses((status = 200, body = ServedSystems), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn serve_systems(
    State(state): State<AppState>,
    Authorized(cap): Authorized<RegistryManage>,
    ApiPath(code): ApiPath<String>,
    ApiJson(body): ApiJson<ServedSystems>,
) -> Result<Json<ServedSystems>, ApiError> {
    let systems = state.exchange.systems().set_serving(&cap, &code, &body.systems, Utc::now()).await?;
    Ok(Json(ServedSystems { systems }))
}

#[utoipa::path(get, path = "/api/v1/exchange/imports/{id}", tag = "exchange", params(("id" = String, Path)),
    responses((status = 200, body = ImportProgress), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
async fn import_status(
    State(state): State<AppState>,
    Authorized(cap): Authorized<RegistryManage>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ImportProgress>, ApiError> {
    Ok(Json(state.exchange.imports().import_status(&cap, &id).await?))
}

/// Ask for fields of another department's registry.
#[utoipa::path(post, path = "/api/v1/exchange/agreements", tag = "exchange", request_body = AgreementRequest,
    responses((status = 201, body = AgreementView), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
async fn request(
    State(state): State<AppState>,
    Authorized(cap): Authorized<SharingRequest>,
    ApiJson(body): ApiJson<AgreementRequest>,
) -> Result<(StatusCode, Json<AgreementView>), ApiError> {
    Ok((StatusCode::CREATED, Json(state.exchange.sharing().request_agreement(&cap, body, Utc::now()).await?)))
}

/// Requests for the own department's registries (the approval inbox).
#[utoipa::path(get, path = "/api/v1/exchange/agreements/incoming", tag = "exchange",
    responses((status = 200, body = Vec<AgreementView>)), security(("bearer" = [])))]
async fn incoming(
    State(state): State<AppState>,
    Authorized(cap): Authorized<SharingDecide>,
) -> Result<Json<Vec<AgreementView>>, ApiError> {
    Ok(Json(state.exchange.sharing().incoming_agreements(&cap, Utc::now()).await?))
}

/// The own department's requests.
#[utoipa::path(get, path = "/api/v1/exchange/agreements/outgoing", tag = "exchange",
    responses((status = 200, body = Vec<AgreementView>)), security(("bearer" = [])))]
async fn outgoing(
    State(state): State<AppState>,
    Authorized(cap): Authorized<SharingRequest>,
) -> Result<Json<Vec<AgreementView>>, ApiError> {
    Ok(Json(state.exchange.sharing().outgoing_agreements(&cap, Utc::now()).await?))
}

#[utoipa::path(post, path = "/api/v1/exchange/agreements/{id}/decision", tag = "exchange", params(("id" = String, Path)),
    request_body = Decision,
    responses((status = 200, body = AgreementView), (status = 409, description = "already_decided", body = ErrorBody)),
    security(("bearer" = [])))]
async fn decide(
    State(state): State<AppState>,
    Authorized(cap): Authorized<SharingDecide>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Decision>,
) -> Result<Json<AgreementView>, ApiError> {
    Ok(Json(state.exchange.sharing().decide_agreement(&cap, &id, body, Utc::now()).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = AgreementRevocation)]
struct RevokeRequest {
    /// 1–500 characters, not blank.
    #[schema(min_length = 1, max_length = 500, pattern = r"\S")]
    reason: String,
}

#[utoipa::path(post, path = "/api/v1/exchange/agreements/{id}/revoke", tag = "exchange", params(("id" = String, Path)),
    request_body = RevokeRequest,
    responses((status = 200, body = AgreementView), (status = 409, description = "already_revoked", body = ErrorBody)),
    security(("bearer" = [])))]
async fn revoke(
    State(state): State<AppState>,
    Authorized(cap): Authorized<SharingDecide>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<RevokeRequest>,
) -> Result<Json<AgreementView>, ApiError> {
    Ok(Json(state.exchange.sharing().revoke_agreement(&cap, &id, &body.reason, Utc::now()).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
struct ReadRequest {
    agreement: String,
    /// The record's key (ID number, credit code, …).
    key: String,
}

/// A system reads the granted fields of one record under its department's agreement.
#[utoipa::path(post, path = "/api/v1/exchange/read", tag = "exchange", request_body = ReadRequest,
    params(("Information-Mediator-Client" = String, Header), ("X-Exchange-Secret" = String, Header)),
    responses((status = 200, body = ExchangeAnswer), (status = 401, body = ErrorBody),
        (status = 403, description = "agreement_* / verify_only / consent_required", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn read(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ReadRequest>,
) -> Result<Json<ExchangeAnswer>, ApiError> {
    let client = system(&state, &headers).await?;
    Ok(Json(state.exchange.sharing().read(&client, &body.agreement, &body.key, Utc::now()).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
struct VerifyRequest {
    agreement: String,
    key: String,
    conditions: Vec<Predicate>,
}

/// A verification-only query (数据可用不可见): yes or no, with a signed receipt.
#[utoipa::path(post, path = "/api/v1/exchange/verify", tag = "exchange", request_body = VerifyRequest,
    params(("Information-Mediator-Client" = String, Header), ("X-Exchange-Secret" = String, Header)),
    responses((status = 200, body = Receipt), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn verify(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<VerifyRequest>,
) -> Result<Json<Receipt>, ApiError> {
    let client = system(&state, &headers).await?;
    Ok(Json(state.exchange.sharing().verify(&client, &body.agreement, &body.key, body.conditions, Utc::now()).await?))
}

#[utoipa::path(get, path = "/api/v1/exchange/quality", tag = "exchange",
    responses((status = 200, body = Vec<RegistryQuality>)), security(("bearer" = [])))]
async fn quality(
    State(state): State<AppState>,
    Authorized(cap): Authorized<ExchangeFigures>,
) -> Result<Json<Vec<RegistryQuality>>, ApiError> {
    Ok(Json(state.exchange.quality().report(&cap, Utc::now()).await?))
}

#[utoipa::path(get, path = "/api/v1/exchange/figures", tag = "exchange",
    responses((status = 200, body = Vec<DepartmentFigures>)), security(("bearer" = [])))]
async fn figures(
    State(state): State<AppState>,
    Authorized(cap): Authorized<ExchangeFigures>,
) -> Result<Json<Vec<DepartmentFigures>>, ApiError> {
    Ok(Json(state.exchange.quality().department_figures(&cap).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
struct ClientRequest {
    department: String,
    /// INSTANCE/CLASS/MEMBER/SUBSYSTEM
    mediator_client: String,
}

#[derive(Debug, Serialize, ToSchema)]
struct ClientCreated {
    id: String,
    account_id: String,
    mediator_client: String,
    /// Shown once; send it as X-Exchange-Secret.
    secret: String,
}

/// Register a department's system with the exchange (system administrators).
#[utoipa::path(post, path = "/api/v1/exchange/clients", tag = "exchange", request_body = ClientRequest,
    responses((status = 201, body = ClientCreated), (status = 409, body = ErrorBody)), security(("bearer" = [])))]
async fn register_client(
    State(state): State<AppState>,
    Authorized(cap): Authorized<AccountCreate>,
    ApiJson(body): ApiJson<ClientRequest>,
) -> Result<(StatusCode, Json<ClientCreated>), ApiError> {
    let c = state.exchange.sharing().register_client(&cap, &body.department, &body.mediator_client, Utc::now()).await?;
    Ok((
        StatusCode::CREATED,
        Json(ClientCreated {
            id: c.id,
            account_id: c.account_id,
            mediator_client: c.mediator_client,
            secret: c.secret.expose().to_string(),
        }),
    ))
}

/// The purposes that ask for the caller's consent (我的授权), and their answers.
#[utoipa::path(get, path = "/api/v1/me/consents", tag = "exchange",
    responses((status = 200, body = Vec<ConsentView>)), security(("bearer" = [])))]
async fn my_consents(State(state): State<AppState>, Caller(p): Caller) -> Result<Json<Vec<ConsentView>>, ApiError> {
    Ok(Json(state.exchange.consent().my_consents(&p, Utc::now()).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
struct ConsentChoice {
    granted: bool,
}

/// Grant or withdraw consent for one purpose; a withdrawal applies to the next call.
#[utoipa::path(put, path = "/api/v1/me/consents/{id}", tag = "exchange", params(("id" = String, Path)),
    request_body = ConsentChoice, responses((status = 204), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
async fn set_consent(
    State(state): State<AppState>,
    Caller(p): Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ConsentChoice>,
) -> Result<Response, ApiError> {
    state.exchange.consent().set_my_consent(&p, &id, body.granted, Utc::now()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
