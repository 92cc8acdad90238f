//! Cross-department data exchange: base registries described by versioned JSON Schemas and
//! catalogued field by field (standard, classification L1–L4, sharing type and legal basis);
//! bulk import; sharing agreements between departments; reads and verification-only queries
//! by systems of the consuming department, each on the `audit` ledger with the data subject;
//! consent (GovStack Consent); data quality and department figures; the GovStack Digital
//! Registries Data and Database APIs. Owns the tables of migrations 0012 and 0013.

mod consent;
mod databases;
mod import;
mod mediated;
mod oversight;
mod quality;
mod registry;
mod repo;
mod sharing;
mod signatures;
mod systems;
mod webhooks;

pub use consent::Consent;
pub use databases::RegistryDatabases;
pub use import::Imports;
pub use mediated::RegistryData;
pub use oversight::Oversight;
pub use quality::Quality;
pub use registry::Registries;
pub use sharing::Sharing;
pub use signatures::ConsentSignatures;
pub use systems::Systems;
pub use webhooks::Webhooks;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::pool::PoolConnection;

use identity::{Denial, Identity};
use kernel::db::Db;
use kernel::secrets::MasterKey;
use protect::Protector;

pub use consent::{ConsentDocument, ConsentReader, ConsentView, IndividualRef};
pub use databases::DatabaseChange;
pub use import::{ImportMode, ImportProgress, ImportReport, ImportStatus, RowError, Table};
pub use mediated::{RecordFilter, RecordPage};
pub use oversight::ConsentRecordPage;
pub use quality::{DepartmentFigures, FieldCompleteness, RegistryQuality};
pub use registry::{RecordView, RegistryView, Release};
pub use repo::ConsentRecordQuery;
pub use sharing::{
    AgreementRequest, AgreementStatus, AgreementView, Decision, ExchangeAnswer, ExchangeClient, Predicate, Receipt,
    RegisteredClient,
};

/// Errors of the exchange; each maps to one stable client code in the HTTP layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// A record does not validate against its registry's schema.
    #[error("the record has {} problem(s)", .0.len())]
    Record(Vec<RowError>),
    /// The exchange refuses a call (agreement not granted, expired, no consent, …).
    #[error("{message}")]
    Refused { code: kernel::error::ErrorCode, message: String },
    #[error("{message}")]
    Conflict { code: kernel::error::ErrorCode, message: String },
    #[error(transparent)]
    Denied(#[from] Denial),
    #[error("the calling system is not known or its secret does not match")]
    Unauthenticated,
    #[error("this agreement's rate limit is reached; try again in a minute")]
    RateLimited,
    #[error("storage: {0}")]
    Storage(#[from] sqlx::Error),
    #[error("internal: {0}")]
    Internal(String),
}

impl Error {
    fn invalid(field: &'static str, reason: impl Into<String>) -> Error {
        Error::Invalid { field, reason: reason.into() }
    }

    fn refused(code: kernel::error::ErrorCode, message: impl Into<String>) -> Error {
        Error::Refused { code, message: message.into() }
    }

    fn conflict(code: kernel::error::ErrorCode, message: impl Into<String>) -> Error {
        Error::Conflict { code, message: message.into() }
    }
}

/// Sets a key of a JSON object (objects only; the callers check that first).
fn set(v: &mut Value, key: &str, value: Value) {
    if let Some(o) = v.as_object_mut() {
        o.insert(key.to_string(), value);
    }
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(e.to_string())
}

/// The name of a department the exchange's rows refer to. One that identity does not know
/// is a fault in the data, never shown as a blank name.
async fn department_name(identity: &Identity, c: &mut sqlx::AnyConnection, id: &str) -> Result<String, Error> {
    identity
        .organisation()
        .department_name_in(c, id)
        .await?
        .ok_or_else(|| Error::Internal(format!("department {id} is not known to identity")))
}

identity::from_identity_error!(Error);

impl From<protect::Error> for Error {
    fn from(e: protect::Error) -> Error {
        match e {
            protect::Error::Storage(s) => Error::Storage(s),
            other => Error::Internal(other.to_string()),
        }
    }
}

/// How a resource may be shared (共享类型).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SharingType {
    /// 无条件共享: granted on request.
    Unconditional,
    /// 有条件共享: the owning department decides.
    Conditional,
    /// 不予共享: refused, with the legal basis as the reason.
    None,
}

impl SharingType {
    pub fn as_str(self) -> &'static str {
        match self {
            SharingType::Unconditional => "unconditional",
            SharingType::Conditional => "conditional",
            SharingType::None => "none",
        }
    }
}

/// The catalog entry (数据资源目录) of one field of a registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FieldEntry {
    pub name: String,
    pub title_zh: String,
    pub title_en: String,
    /// The data standard the value follows (for example `GB 11643-1999`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standard: Option<String>,
    /// The code table of coded values (for example `GB/T 2261.1-2003` for sex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_table: Option<String>,
    /// 1 public, 2 internal, 3 sensitive, 4 core.
    pub classification: u8,
    pub sharing: SharingType,
    /// Required for conditional and not-shareable fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_basis: Option<String>,
    /// Stored encrypted (always for L3 and L4).
    #[serde(default)]
    pub sensitive: bool,
    /// How the value is masked when shown masked: id_number, mobile, name, address, full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<String>,
}

impl FieldEntry {
    fn sealed(&self) -> bool {
        self.sensitive || self.classification >= 3
    }

    /// The value as a consumer without plain access sees it: L1 and L2 as they are, L3 and
    /// L4 masked.
    fn masked(&self, value: &Value) -> Value {
        if self.classification < 3 {
            return value.clone();
        }
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Null => return Value::Null,
            other => other.to_string(),
        };
        let mask = self.mask.as_deref().and_then(protect::Mask::parse).unwrap_or(protect::Mask::Full);
        Value::String(mask.apply(&text))
    }
}

/// A registry as its owning department publishes it.
#[derive(Debug, Clone, Deserialize)]
pub struct RegistrySpec {
    /// Stable code, used in URLs (`population`).
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    /// The owning department's code (`990000-GA`).
    pub department: String,
    pub description: String,
    /// realtime, daily, weekly, monthly, quarterly or yearly.
    pub update_frequency: String,
    /// The field records are looked up by (ID number, credit code, …).
    pub key_field: String,
    /// The blind-index domain of the key; `id_number` links records to residents' accounts.
    #[serde(default)]
    pub key_domain: Option<String>,
    /// The GovStack Data API serves this registry to the systems the Information Mediator
    /// vouches for, without a sharing agreement (every call is still an access entry).
    #[serde(default)]
    pub mediator_trusted: bool,
    /// The GovStack database acronym (`MCTS`) for `myPersonalDataUsage`.
    #[serde(default)]
    pub database_code: Option<String>,
    /// The version number to publish as, in the department's own numbering (GovStack
    /// clients address registries by it); above the current one. Default: the next one.
    #[serde(default)]
    pub version: Option<i64>,
    /// JSON Schema (2020-12) of a record.
    pub schema: Value,
    /// One catalog entry per property of the schema.
    pub fields: Vec<FieldEntry>,
}

/// How often a registry is updated, and within how many days a fresh one has changed.
pub const FREQUENCIES: &[(&str, i64)] =
    &[("realtime", 1), ("daily", 1), ("weekly", 7), ("monthly", 31), ("quarterly", 92), ("yearly", 366)];

/// A compiled registry version: schema validator and catalog.
struct Compiled {
    validator: jsonschema::Validator,
    schema: Value,
    fields: Vec<FieldEntry>,
}

impl Compiled {
    fn field(&self, name: &str) -> Option<&FieldEntry> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// The data exchange. Cheap to clone.
#[derive(Clone)]
pub struct Exchange {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    identity: Identity,
    protector: Protector,
    /// Signs verification receipts (derived from the master key, so every node signs alike).
    receipts: SigningKey,
    compiled: Mutex<HashMap<(String, i64), Arc<Compiled>>>,
    /// Calls per agreement in the current minute, on SQLite (one node; PostgreSQL counts in
    /// the database).
    calls: Mutex<HashMap<String, (i64, i64)>>,
    /// Imports running on this node, for their progress pages.
    imports: Mutex<HashMap<String, ImportProgress>>,
    /// Calling systems by mediator name, with when they were read (see `authenticate`).
    clients: Mutex<HashMap<String, (repo::ClientRow, std::time::Instant)>>,
    /// The key domain of each called agreement's registry, as last seen.
    key_domains: Mutex<HashMap<String, String>>,
    /// Calls waiting for their ledger entries to be written.
    call_entries: Arc<kernel::db::Batch<sharing::CallEntry, ()>>,
    /// On SQLite, calls' entries are journaled and folded into the ledger in large batches.
    journal: Option<kernel::db::journal::Journal>,
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Exchange")
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Exchange {
    /// Base registries: publishing them with their schema and catalog, and the department's own reads and writes.
    pub fn registries(&self) -> Registries<'_> {
        Registries(self)
    }

    /// Bulk imports of CSV and XLSX files into a registry, with progress and a per-row report.
    pub fn imports(&self) -> Imports<'_> {
        Imports(self)
    }

    /// Sharing agreements between departments, and the reads and verification-only queries of the consuming department's systems.
    pub fn sharing(&self) -> Sharing<'_> {
        Sharing(self)
    }

    /// Consent (GovStack Consent): policies, data agreements, individuals and their consent records.
    pub fn consent(&self) -> Consent<'_> {
        Consent(self)
    }

    /// Signed consent records and revisions read at a revision.
    pub fn signatures(&self) -> ConsentSignatures<'_> {
        ConsentSignatures(self)
    }

    /// Webhooks told of consent events, signed with their secret.
    pub fn webhooks(&self) -> Webhooks<'_> {
        Webhooks(self)
    }

    /// The GovStack Digital Registries Data API over registries marked trusted, for systems the Information Mediator names.
    pub fn registry_data(&self) -> RegistryData<'_> {
        RegistryData(self)
    }

    /// Calling systems: proving who they are, and the registries that serve them.
    pub fn systems(&self) -> Systems<'_> {
        Systems(self)
    }

    /// The GovStack Digital Registries Database API: descriptions of registry databases.
    pub fn databases(&self) -> RegistryDatabases<'_> {
        RegistryDatabases(self)
    }

    /// Consent oversight: consumers verify consent before processing, and the Data Processing Auditor reads every record and agreement.
    pub fn oversight(&self) -> Oversight<'_> {
        Oversight(self)
    }

    /// Data quality of registries and the departments' sharing figures.
    pub fn quality(&self) -> Quality<'_> {
        Quality(self)
    }

    pub fn new(db: Db, identity: Identity, master: &MasterKey) -> Exchange {
        let seed = master.derive("exchange/receipts");
        Exchange {
            inner: Arc::new_cyclic(|this| Inner {
                journal: sharing::open_call_journal(&db, this.clone()),
                protector: identity.protector().clone(),
                db,
                identity,
                receipts: SigningKey::from_bytes(&seed),
                compiled: Mutex::new(HashMap::new()),
                calls: Mutex::new(HashMap::new()),
                imports: Mutex::new(HashMap::new()),
                clients: Mutex::new(HashMap::new()),
                key_domains: Mutex::new(HashMap::new()),
                call_entries: Arc::default(),
            }),
        }
    }

    async fn conn(&self) -> Result<PoolConnection<sqlx::Any>, Error> {
        Ok(self.inner.db.pool.acquire().await?)
    }

    /// The public key that verifies receipts (hex), for relying parties.
    pub fn receipt_key(&self) -> String {
        hex::encode(self.inner.receipts.verifying_key().as_bytes())
    }
}
