//! Insight: what the platform's records say to leaders and supervisors. Service KPIs over the
//! tallies the modules keep (`kpis`), department assessment by an indicator system kept as
//! data (`assessment`, table `assessment_plans`), and security monitoring over the audit ledger
//! (`security`, which owns the `alerts` table, migration 0007; its SQL is in `repo`).

pub mod assessment;
pub mod forecast;
pub mod kpis;
mod repo;
pub mod security;

use std::sync::Arc;

use identity::{Denial, Identity};
use kernel::db::Db;

pub use assessment::Assessment;
pub use kpis::Kpis;

/// The insight module's handle: what its areas share.
#[derive(Clone)]
pub struct Insight {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    identity: Identity,
    services: services::Services,
    exchange: exchange::Exchange,
}

impl Insight {
    pub fn new(db: Db, identity: Identity, services: services::Services, exchange: exchange::Exchange) -> Insight {
        Insight { inner: Arc::new(Inner { db, identity, services, exchange }) }
    }

    /// Service KPIs, their trends and breakdowns.
    pub fn kpis(&self) -> Kpis<'_> {
        Kpis(self)
    }

    /// 绩效考核: the indicator system and the scorecards.
    pub fn assessment(&self) -> Assessment<'_> {
        Assessment(self)
    }

    async fn conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, Error> {
        Ok(self.inner.db.pool.acquire().await?)
    }
}

/// Errors of the KPIs; each maps to one stable client code in the HTTP layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error(transparent)]
    Denied(#[from] Denial),
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

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(e.to_string())
}

identity::from_identity_error!(Error);

impl From<services::Error> for Error {
    fn from(e: services::Error) -> Error {
        match e {
            services::Error::NotFound(what) => Error::NotFound(what),
            services::Error::Storage(s) => Error::Storage(s),
            other => Error::Internal(other.to_string()),
        }
    }
}

impl From<exchange::Error> for Error {
    fn from(e: exchange::Error) -> Error {
        match e {
            exchange::Error::Storage(s) => Error::Storage(s),
            other => Error::Internal(other.to_string()),
        }
    }
}
