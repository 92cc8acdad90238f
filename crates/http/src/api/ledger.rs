//! The public ledger API: C2SP checkpoints, verifier keys and tlog-tiles, plus JSON
//! inclusion and consistency proofs. `audit` entries are for auditors; everything else here
//! is public.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{ApiPath, ApiQuery, Authorized};
use kernel::authz::SecurityEventRead;
use ledger::{self, ConsistencyProof, InclusionProof, Log};

/// The tile route takes a multi-segment wildcard, which the OpenAPI path cannot spell, so it
/// is documented here and routed by hand.
#[derive(utoipa::OpenApi)]
#[openapi(paths(tile))]
struct TileDoc;

pub fn router() -> OpenApiRouter<AppState> {
    use utoipa::OpenApi;
    OpenApiRouter::with_openapi(TileDoc::openapi())
        .routes(routes!(checkpoint))
        .routes(routes!(verifier_key))
        .route("/ledger/{log}/tile/{*path}", axum::routing::get(tile))
        .routes(routes!(inclusion))
        .routes(routes!(consistency))
}

impl From<ledger::Error> for ApiError {
    fn from(e: ledger::Error) -> ApiError {
        match e {
            ledger::Error::NotFound(what) => ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, what),
            ledger::Error::NoProof(why) => ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, why),
            ledger::Error::Invalid(why) => ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, why),
            ledger::Error::Forbidden => ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::Forbidden,
                "the entries of this log are for auditors only",
            ),
            ledger::Error::Storage(cause) => identity::Error::Storage(cause).into(),
            other => {
                tracing::error!(error = %other, "ledger");
                ApiError::internal()
            }
        }
    }
}

fn log_named(name: &str) -> Result<Log, ApiError> {
    Log::parse(name).ok_or_else(|| ApiError::not_found("log"))
}

fn text(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

/// The latest signed checkpoint (C2SP tlog-checkpoint in a signed note, with cosignatures).
#[utoipa::path(get, path = "/ledger/{log}/checkpoint", tag = "ledger", params(("log" = Log, Path)),
    responses((status = 200, content_type = "text/plain", body = String), (status = 404, body = ErrorBody)))]
async fn checkpoint(State(state): State<AppState>, ApiPath(log): ApiPath<String>) -> Result<Response, ApiError> {
    Ok(text(state.ledger.checkpoint(log_named(&log)?).await?))
}

/// The note verifier key (`name+hash+base64`) of the log's checkpoints.
#[utoipa::path(get, path = "/ledger/{log}/verifier-key", tag = "ledger", params(("log" = Log, Path)),
    responses((status = 200, content_type = "text/plain", body = String), (status = 404, body = ErrorBody)))]
async fn verifier_key(State(state): State<AppState>, ApiPath(log): ApiPath<String>) -> Result<Response, ApiError> {
    Ok(text(format!("{}\n", state.ledger.verifier_key(log_named(&log)?)?)))
}

/// The bearer's auditor capability, if any; refusals of `audit` tiles are recorded.
struct MaybeAuditor(Option<identity::Capability<SecurityEventRead>>);

impl FromRequestParts<AppState> for MaybeAuditor {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        // Whether the log's entries are public is the log's own rule, not this layer's.
        let log =
            parts.uri.path().strip_prefix("/ledger/").and_then(|rest| rest.split('/').next()).and_then(Log::parse);
        if log.is_none_or(Log::entries_public) {
            return Ok(MaybeAuditor(None));
        }
        let Authorized(cap) = Authorized::<SecurityEventRead>::from_request_parts(parts, state).await?;
        Ok(MaybeAuditor(Some(cap)))
    }
}

/// A C2SP tlog-tiles resource: `tile/<L>/<N>[.p/<W>]` (hashes) or
/// `tile/entries/<N>[.p/<W>]` (entries). `audit` tiles need an auditor's bearer token.
#[utoipa::path(get, path = "/ledger/{log}/tile/{path}", tag = "ledger",
    params(("log" = Log, Path), ("path" = String, Path, description = "e.g. 0/x001/234 or entries/005.p/17")),
    responses(
        (status = 200, content_type = "application/octet-stream", body = Vec<u8>),
        (status = 401, description = "unauthenticated (audit)", body = ErrorBody),
        (status = 403, description = "forbidden (audit)", body = ErrorBody),
        (status = 404, description = "not_found: no such tile yet", body = ErrorBody),
    ))]
async fn tile(
    State(state): State<AppState>,
    MaybeAuditor(auditor): MaybeAuditor,
    ApiPath((log, path)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let log = log_named(&log)?;
    let tile = ledger::tiles::TilePath::parse(&path).ok_or_else(|| ApiError::not_found("tile"))?;
    let bytes = state.ledger.read_tile(log, &tile, auditor.as_ref()).await?;
    // Full tiles never change; partial ones grow into full ones.
    let cache = match (tile.width, log.entries_public()) {
        (256, true) => "public, max-age=31536000, immutable",
        (_, true) => "public, max-age=5",
        _ => "private, no-store",
    };
    Ok(([(header::CONTENT_TYPE, "application/octet-stream"), (header::CACHE_CONTROL, cache)], bytes).into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct InclusionQuery {
    /// The entry's index.
    index: u64,
    /// The tree size (of a checkpoint) to prove inclusion in.
    #[param(minimum = 1)]
    size: u64,
}

/// The RFC 6962 audit path of entry `index` in the tree of `size` entries.
#[utoipa::path(get, path = "/ledger/{log}/proof/inclusion", tag = "ledger", params(("log" = Log, Path), InclusionQuery),
    responses((status = 200, body = InclusionProof), (status = 400, description = "bad_request", body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn inclusion(
    State(state): State<AppState>,
    ApiPath(log): ApiPath<String>,
    ApiQuery(q): ApiQuery<InclusionQuery>,
) -> Result<Json<InclusionProof>, ApiError> {
    Ok(Json(state.ledger.inclusion_proof(log_named(&log)?, q.index, q.size).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ConsistencyQuery {
    #[param(minimum = 1)]
    from: u64,
    #[param(minimum = 1)]
    to: u64,
}

/// The RFC 6962 consistency proof between tree sizes `from` and `to`.
#[utoipa::path(get, path = "/ledger/{log}/proof/consistency", tag = "ledger", params(("log" = Log, Path), ConsistencyQuery),
    responses((status = 200, body = ConsistencyProof), (status = 400, description = "bad_request", body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn consistency(
    State(state): State<AppState>,
    ApiPath(log): ApiPath<String>,
    ApiQuery(q): ApiQuery<ConsistencyQuery>,
) -> Result<Json<ConsistencyProof>, ApiError> {
    Ok(Json(state.ledger.consistency_proof(log_named(&log)?, q.from, q.to).await?))
}
