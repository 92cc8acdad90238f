//! The GovStack building blocks tongban implements, each under its own prefix: Registration
//! (`/govstack/registration/`), Digital Registries (`/govstack/registries/`) and Consent
//! (`/govstack/consent/`). See ../shared/govstack/ for their specifications.
//!
//! A system calling them names itself in `Information-Mediator-Client`, and must prove it:
//! with the secret of the exchange client registered under that name (`X-Exchange-Secret`),
//! or by calling through an X-Road security server listed in `security_servers`, which
//! authenticated the member with mutual TLS before forwarding the call.

pub mod consent;
pub mod registration;
pub mod registries;

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;

use crate::AppState;
use crate::error::{ApiError, ErrorCode};
use crate::extract::client_address;
use identity::{CallingSystem, MediatorClient};

/// The name/value pairs of a query string or a form body, in order. Form decoding has
/// nothing to refuse: a stray `%` is kept as it is, bytes that are not UTF-8 become U+FFFD.
pub(crate) fn form_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.unwrap_or_default().as_bytes()).into_owned().collect()
}

/// The calling system, proven by its secret or by the security server it came through.
pub(crate) struct Mediated(pub CallingSystem);

fn malformed() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        ErrorCode::InvalidMediatorClient,
        "send Information-Mediator-Client as INSTANCE/CLASS/MEMBER/SUBSYSTEM",
    )
}

fn unproven() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        ErrorCode::Unauthenticated,
        "prove the calling system: send its exchange secret in X-Exchange-Secret, or call through a security \
         server this platform trusts",
    )
}

fn header<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

/// The security server the call came through, when it came through one this platform trusts.
fn security_server(parts: &Parts, state: &AppState) -> Option<IpAddr> {
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let from = client_address(peer, &parts.headers, &state.trusted_proxies).parse::<IpAddr>().ok()?;
    state.security_servers.contains(&from).then_some(from)
}

impl FromRequestParts<AppState> for Mediated {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let name = header(parts, "information-mediator-client").ok_or_else(malformed)?;
        if let Some(secret) = header(parts, "x-exchange-secret") {
            return Ok(Mediated(state.exchange.systems().authenticate(name, secret).await?));
        }
        let client = MediatorClient::parse(name).ok_or_else(malformed)?;
        match security_server(parts, state) {
            Some(_) => Ok(Mediated(CallingSystem::vouched_by_security_server(client))),
            None => Err(unproven()),
        }
    }
}

/// The caller of an operation whose published API declares no `Information-Mediator-Client`
/// (Registration's tasks and documents): proven as [`Mediated`] when the header is sent;
/// without it, only a trusted security server may forward the call, and it is recorded as
/// that security server.
pub(crate) struct Relayed(pub CallingSystem);

impl FromRequestParts<AppState> for Relayed {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if header(parts, "information-mediator-client").is_some() {
            let Mediated(system) = Mediated::from_request_parts(parts, state).await?;
            return Ok(Relayed(system));
        }
        match security_server(parts, state) {
            Some(address) => Ok(Relayed(CallingSystem::forwarded_by_security_server(address))),
            None => Err(unproven()),
        }
    }
}
