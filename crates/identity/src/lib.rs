//! Identity: regions, departments, accounts, roles, sign-in, sessions, API tokens and the
//! access policy. Owns the tables of migration 0001/0002.

pub mod authz;
mod device;
pub mod ids;
mod mediator;
pub mod mfa;
pub mod password;
mod repo;
mod service;

use std::time::Duration;

use serde::Serialize;

pub use authz::{Capability, HeldRole, Principal};
pub use device::KNOWN_DEVICE_DAYS;
/// The vocabulary capabilities speak, shared with the crates below identity.
pub use kernel::authz::{Denial, Permission, Scope};
pub use mediator::{CallingSystem, MediatorClient, SystemProof};
pub use password::PolicyViolation;
pub use service::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    Citizen,
    Enterprise,
    Staff,
    System,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::Citizen => "citizen",
            AccountKind::Enterprise => "enterprise",
            AccountKind::Staff => "staff",
            AccountKind::System => "system",
        }
    }

    pub fn parse(s: &str) -> Option<AccountKind> {
        match s {
            "citizen" => Some(AccountKind::Citizen),
            "enterprise" => Some(AccountKind::Enterprise),
            "staff" => Some(AccountKind::Staff),
            "system" => Some(AccountKind::System),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RegionLevel {
    Province,
    City,
    District,
    Street,
    Community,
    Grid,
}

impl RegionLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            RegionLevel::Province => "province",
            RegionLevel::City => "city",
            RegionLevel::District => "district",
            RegionLevel::Street => "street",
            RegionLevel::Community => "community",
            RegionLevel::Grid => "grid",
        }
    }

    /// The level directly below, if any.
    pub fn child(self) -> Option<RegionLevel> {
        match self {
            RegionLevel::Province => Some(RegionLevel::City),
            RegionLevel::City => Some(RegionLevel::District),
            RegionLevel::District => Some(RegionLevel::Street),
            RegionLevel::Street => Some(RegionLevel::Community),
            RegionLevel::Community => Some(RegionLevel::Grid),
            RegionLevel::Grid => None,
        }
    }

    /// Code length: 6-digit administrative division codes down to district, then
    /// 9 (street), 12 (community) and 15 (grid).
    pub fn code_len(self) -> usize {
        match self {
            RegionLevel::Province | RegionLevel::City | RegionLevel::District => 6,
            RegionLevel::Street => 9,
            RegionLevel::Community => 12,
            RegionLevel::Grid => 15,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RegionRef {
    pub id: String,
    pub code: String,
    pub name: String,
    pub level: String,
    /// Materialized path of codes, e.g. `/990000/990100/990102/`.
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DepartmentRef {
    pub id: String,
    pub code: String,
    pub name: String,
}

/// A department with where it sits and its line of work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedDepartment {
    pub department: DepartmentRef,
    pub region_path: String,
    /// The line of work, by its usual abbreviation (`MZ` 民政, `GA` 公安, …).
    pub kind: Option<String>,
}

/// The conversion of identity's errors into a domain crate's `Error`, which has the same
/// `NotFound`, `Invalid`, `Denied`, `Storage` and `Internal` variants: a lookup that finds
/// nothing, a refused value, a refusal and a storage failure keep their meaning; anything else
/// is internal. `identity::from_identity_error!(Error);` in the crate that owns `Error`.
#[macro_export]
macro_rules! from_identity_error {
    ($error:ident) => {
        impl From<$crate::Error> for $error {
            fn from(e: $crate::Error) -> $error {
                match e {
                    $crate::Error::NotFound(what) => $error::NotFound(what),
                    $crate::Error::Invalid { field, reason } => $error::Invalid { field, reason },
                    $crate::Error::Storage(s) => $error::Storage(s),
                    $crate::Error::Denied(d) => $error::Denied(d),
                    other => $error::Internal(other.to_string()),
                }
            }
        }
    };
}

/// Errors of the identity service. Each maps to one stable client code in the HTTP layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("wrong username or password")]
    InvalidCredentials,
    #[error("a one-time code from the authenticator app is required")]
    MfaRequired,
    #[error("the one-time code is wrong")]
    InvalidCode,
    /// The code is right but its time step was already used: not a guess, so not a failure.
    #[error("that code was already used; wait for the next one from the authenticator app")]
    CodeReused,
    #[error("this account must set up an authenticator app first")]
    MfaEnrolmentRequired,
    #[error("this account must change its password first")]
    PasswordChangeRequired,
    #[error("too many failed sign-ins; try again in {retry_after_secs} seconds")]
    Locked { retry_after_secs: u64 },
    #[error("not signed in, or the session or token has expired")]
    Unauthenticated,
    #[error(transparent)]
    Denied(#[from] Denial),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{message}")]
    Conflict { code: kernel::error::ErrorCode, message: String },
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error(transparent)]
    WeakPassword(#[from] PolicyViolation),
    #[error("storage: {0}")]
    Storage(#[from] sqlx::Error),
    #[error("internal: {0}")]
    Internal(String),
}

impl Error {
    fn invalid(field: &'static str, reason: impl Into<String>) -> Error {
        Error::Invalid { field, reason: reason.into() }
    }
}

/// How long sessions and API tokens live.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    pub idle: Duration,
    pub absolute: Duration,
    pub token_ttl: Duration,
    /// How long a verified API token may be reused from memory.
    pub auth_cache: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy {
            idle: Duration::from_secs(30 * 60),
            absolute: Duration::from_secs(12 * 3600),
            token_ttl: Duration::from_secs(60 * 60),
            auth_cache: Duration::from_secs(2),
        }
    }
}
