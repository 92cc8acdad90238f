//! HTTP: the JSON API under /api/v1, the server-rendered pages, health, metrics, OpenAPI.
//! Handlers parse, call one service function and map the result; they never write SQL.

pub mod api;
pub mod error;
mod extract;
mod govstack;
mod i18n;
pub mod metrics;
mod open311;
mod open_data;
mod pages;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;

use error::{ApiError, ErrorBody, ErrorCode};
use identity::Identity;
use kernel::db::Db;

/// What every handler can reach. Every extractor and layer clones it for every request, so
/// it is one shared pointer rather than a handful of reference-counted handles.
#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

impl std::ops::Deref for AppState {
    type Target = AppParts;
    fn deref(&self) -> &AppParts {
        &self.0
    }
}

impl From<AppParts> for AppState {
    fn from(parts: AppParts) -> AppState {
        AppState(Arc::new(parts))
    }
}

pub struct AppParts {
    pub identity: Identity,
    pub services: services::Services,
    pub exchange: exchange::Exchange,
    pub voice: voice::Voice,
    pub openness: openness::Openness,
    pub insight: insight::Insight,
    pub ledger: ledger::Ledger,
    pub db: Db,
    pub metrics: Arc<metrics::Metrics>,
    /// Cookies get `Secure` when the platform serves TLS itself or behind a TLS proxy.
    pub secure_cookies: bool,
    /// Load balancers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Arc<Vec<std::net::IpAddr>>,
    /// X-Road security servers whose forwarded GovStack calls are believed to come from the
    /// system `Information-Mediator-Client` names (they authenticated it).
    pub security_servers: Arc<Vec<std::net::IpAddr>>,
}

#[derive(Clone, Default)]
struct MakeRequestUuidV7;

impl MakeRequestId for MakeRequestUuidV7 {
    fn make_request_id<B>(&mut self, _request: &axum::http::Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&uuid::Uuid::now_v7().to_string()).ok().map(RequestId::new)
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The whole application as a `Router`, so tests can drive it without a socket.
pub fn app(state: AppState, body_limit: usize) -> Router {
    let (api_router, mut openapi) = api::all().split_for_parts();
    api::document_common_responses(&mut openapi);
    // A description that does not serialise is a fault of this build: logged, and answered
    // as one (500) rather than as an empty document.
    let openapi_json = Arc::new(openapi.to_pretty_json().map_err(|e| {
        tracing::error!(error = %e, "the OpenAPI description does not serialise");
    }));
    Router::new()
        .merge(api_router)
        .merge(pages::router())
        .nest("/govstack/registration", govstack::registration::router())
        .nest("/govstack/registries", govstack::registries::router())
        .nest("/govstack/consent", govstack::consent::router())
        .nest("/open311/v2", open311::router())
        .merge(open_data::router())
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .route("/readyz", axum::routing::get(readyz))
        .route("/metrics", axum::routing::get(metrics::render))
        .route(
            "/api/openapi.json",
            axum::routing::get(move || {
                let doc = openapi_json.clone();
                async move {
                    match doc.as_ref() {
                        Ok(json) => Ok(([(header::CONTENT_TYPE, "application/json")], json.clone())),
                        Err(()) => Err(ApiError::internal()),
                    }
                }
            }),
        )
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "no such page or endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, ErrorCode::MethodNotAllowed, "method not allowed here")
        })
        // Runs after routing, so the route template is known.
        .layer(middleware::from_fn_with_state(state.clone(), metrics::track))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(RequestBodyLimitLayer::new(body_limit))
        .layer(CatchPanicLayer::custom(|_| ApiError::internal().into_response()))
        .layer(middleware::from_fn_with_state(state.clone(), render_errors))
        .layer(SetResponseHeaderLayer::if_not_present(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::if_not_present(header::REFERRER_POLICY, HeaderValue::from_static("same-origin")))
        .layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuidV7))
        .with_state(state)
}

async fn readyz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    if state.db.ping().await { Ok("ready") } else { Err(ApiError::unavailable()) }
}

/// Paths answered with pages rather than JSON.
fn is_page(path: &str) -> bool {
    !(path.starts_with("/api/")
        || path.starts_with("/govstack/")
        || path.starts_with("/ledger/")
        || path == "/metrics"
        || path == "/healthz"
        || path == "/readyz")
}

/// Gives every error response its body: `{code, message, request_id}` for API clients, an
/// error page for browsers. Responses that already carry a JSON or HTML body are left alone.
async fn render_errors(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let request_id = request.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let page = is_page(request.uri().path()).then(|| {
        (pages::PagePrefs::from_headers(request.headers()), pages::expected_form_token(&state, request.headers()))
    });
    let secure = state.secure_cookies;
    let started = Instant::now();
    // Ledger entries written while serving this request carry its id.
    let mut response = ledger::REQUEST_ID.scope(request_id.clone(), next.run(request)).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let explicit = response.extensions_mut().remove::<ApiError>();
    let has_body = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ["application/json", "text/html", "text/xml"].iter().any(|t| ct.starts_with(t)));
    if explicit.is_none() && has_body {
        return response;
    }
    let error = explicit.unwrap_or_else(|| {
        let code = crate::error::code_for_status(status);
        let message = match code {
            ErrorCode::BodyTooLarge => "the request body is larger than allowed".to_string(),
            ErrorCode::MethodNotAllowed => "method not allowed here".to_string(),
            ErrorCode::Internal => "internal error; quote the request id when reporting it".to_string(),
            _ => status.canonical_reason().unwrap_or("error").to_string(),
        };
        ApiError::new(status, code, message)
    });
    if status.is_server_error() {
        tracing::warn!(
            request_id,
            code = error.code.as_str(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "server error"
        );
    }
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = match page {
        Some((prefs, csrf)) => {
            parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
            // The page's forms (language, elder mode) need a CSRF cookie like any other page.
            let csrf = match csrf {
                Some(c) => c,
                None => {
                    let fresh = kernel::secrets::random_token(32);
                    parts.headers.append(header::SET_COOKIE, pages::csrf_cookie(&fresh, secure));
                    fresh
                }
            };
            Body::from(pages::error_page(&prefs, &csrf, &error, &request_id))
        }
        None => {
            parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            let body = ErrorBody { code: error.code, message: error.message, request_id };
            Body::from(serde_json::to_vec(&body).unwrap_or_default())
        }
    };
    Response::from_parts(parts, body)
}

/// Binds, serves until SIGTERM or Ctrl-C, lets in-flight requests finish, then returns.
pub async fn serve(router: Router, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await
}

pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

/// The route template of a request, for metrics labels.
fn route_of(request: &Request) -> String {
    request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_else(|| "unmatched".into())
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(o) => {
                if let Some(Value::String(r)) = o.get("$ref") {
                    out.push(r);
                }
                o.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    /// What generated clients trip over: a query parameter declared in the path, a reference
    /// to a schema that is not there, an undocumented 401, a decision body that is not the
    /// one the server takes.
    #[test]
    fn the_api_description_holds_together() {
        let (_, mut doc) = super::api::all().split_for_parts();
        super::api::document_common_responses(&mut doc);
        let v = serde_json::to_value(&doc).unwrap();
        let schemas = v["components"]["schemas"].as_object().unwrap();
        let mut found = Vec::new();
        refs(&v, &mut found);
        for r in found {
            let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("{r}"));
            assert!(schemas.contains_key(name), "{r} is referenced but not described");
        }
        let mut operation_ids = std::collections::HashSet::new();
        for (path, item) in v["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
                assert!(operation_ids.insert(id.to_string()), "{method} {path}: operationId {id} is used twice");
                for p in op["parameters"].as_array().into_iter().flatten() {
                    let (name, place) = (p["name"].as_str().unwrap(), p["in"].as_str().unwrap());
                    let in_template = path.contains(&format!("{{{name}}}"));
                    assert_eq!(place == "path", in_template, "{method} {path}: {name} is declared in {place}");
                }
                if op["security"].as_array().is_some_and(|s| !s.is_empty()) {
                    assert!(op["responses"]["401"].is_object(), "{method} {path} does not document 401");
                }
            }
        }
        let decision = &v["paths"]["/api/v1/exchange/agreements/{id}/decision"]["post"]["requestBody"];
        assert_eq!(decision["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/SharingDecision");
        assert!(schemas["SharingDecision"]["properties"]["approve"].is_object());
    }
}
