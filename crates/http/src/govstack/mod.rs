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

/// The calling system, proven by its secret or by the security server it came through.
pub(crate) struct Mediated(pub CallingSystem);

impl FromRequestParts<AppState> for Mediated {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header =
            |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty());
        let malformed = || {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidMediatorClient,
                "send Information-Mediator-Client as INSTANCE/CLASS/MEMBER/SUBSYSTEM",
            )
        };
        let name = header("information-mediator-client").ok_or_else(malformed)?;
        if let Some(secret) = header("x-exchange-secret") {
            return Ok(Mediated(state.exchange.systems().authenticate(name, secret).await?));
        }
        let client = MediatorClient::parse(name).ok_or_else(malformed)?;
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        let from = client_address(peer, &parts.headers, &state.trusted_proxies).parse::<IpAddr>().ok();
        if from.is_some_and(|ip| state.security_servers.contains(&ip)) {
            return Ok(Mediated(CallingSystem::vouched_by_security_server(client)));
        }
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthenticated,
            "prove the calling system: send its exchange secret in X-Exchange-Secret, or call through a security \
             server this platform trusts",
        ))
    }
}
