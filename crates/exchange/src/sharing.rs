//! Sharing agreements between departments, the systems that call the exchange, and the
//! calls themselves: reads of granted fields (masked by classification unless plain values
//! are granted) and verification-only queries answered yes or no with a signed receipt.
//! Every call, answered or refused, is an entry on the `audit` ledger naming the data
//! subject, which is what 我的数据 and `myPersonalDataUsage` show.

mod calls;

pub(crate) use calls::*;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use ed25519_dalek::Signer;
use kernel::audit::{Action, Outcome};
use kernel::error::ErrorCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use sqlx::AnyConnection;
use subtle::ConstantTimeEq;

use super::registry::normalize_key;
use super::repo::{self, AgreementRow, RegistryRow};
use super::{Error, Exchange, FieldEntry, SharingType, internal, lock};
use identity::{AccountKind, Capability, NewAccount};
use kernel::authz::{AccountCreate, SharingDecide, SharingRequest};
use kernel::db::journal::Journal;
use kernel::db::{from_millis, millis, new_id};
use kernel::secrets::{SecretString, random_token, sha256_hex};
use ledger::{self, Log};

const DEFAULT_RATE_PER_MINUTE: i64 = 600;
const OPERATORS: &[&str] = &["eq", "ne", "gt", "gte", "lt", "lte"];

/// What a consuming department asks for.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct AgreementRequest {
    /// The registry's code.
    pub registry: String,
    #[schema(min_items = 1)]
    pub fields: Vec<String>,
    /// 1–500 characters, not blank.
    #[schema(min_length = 1, max_length = 500, pattern = r"\S")]
    pub purpose: String,
    /// 1–500 characters, not blank.
    #[schema(min_length = 1, max_length = 500, pattern = r"\S")]
    pub legal_basis: String,
    /// Only yes/no questions, never the values (数据可用不可见).
    #[serde(default)]
    pub verify_only: bool,
    /// Plain values of sensitive fields (always decided by the owner).
    #[serde(default)]
    pub plain_values: bool,
    /// Each data subject must have consented (the purpose rests on consent).
    #[serde(default)]
    pub consent_required: bool,
    /// How long the grant lasts, 1 to 1,095 days.
    #[schema(minimum = 1, maximum = 1095)]
    #[serde(deserialize_with = "kernel::wire::whole_number")]
    pub valid_days: i64,
    /// Calls a minute, 1 to 100,000 (600 when not given).
    #[serde(default, deserialize_with = "kernel::wire::optional_whole_number")]
    #[schema(minimum = 1, maximum = 100000)]
    pub rate_per_minute: Option<i64>,
}

/// The owner's decision on a pending request.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[schema(as = SharingDecision)]
pub struct Decision {
    pub approve: bool,
    /// Required to refuse.
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AgreementView {
    pub id: String,
    pub registry: String,
    pub registry_name: String,
    pub owner_department: String,
    pub consumer_department: String,
    pub fields: Vec<String>,
    pub purpose: String,
    pub legal_basis: String,
    pub verify_only: bool,
    pub plain_values: bool,
    pub consent_required: bool,
    pub rate_per_minute: i64,
    pub status: AgreementStatus,
    pub valid_from: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A system of a department, as the exchange knows it after checking its secret.
#[derive(Debug, Clone)]
pub struct ExchangeClient {
    pub id: String,
    pub account_id: String,
    pub department_id: String,
    pub mediator_client: String,
}

/// A newly registered system and its secret (shown once).
#[derive(Debug)]
pub struct RegisteredClient {
    pub id: String,
    pub account_id: String,
    pub mediator_client: String,
    pub secret: SecretString,
}

/// The answer to a read: only the granted fields.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ExchangeAnswer {
    pub agreement: String,
    pub registry: String,
    pub record: String,
    #[schema(value_type = Object)]
    pub values: Map<String, Value>,
    /// The fields shown masked.
    pub masked: Vec<String>,
    pub at: DateTime<Utc>,
}

/// One condition of a verification-only query.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Predicate {
    pub field: String,
    /// eq, ne, gt, gte, lt or lte.
    pub op: String,
    #[schema(value_type = Object)]
    pub value: Value,
}

/// A signed yes or no. `subject` is a per-agreement pseudonym of the data subject, so a
/// receipt cannot be replayed for someone else and says nothing about who it was.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Receipt {
    pub agreement: String,
    pub registry: String,
    pub subject: String,
    pub conditions: Vec<Predicate>,
    pub answer: bool,
    pub at: String,
    /// Ed25519 over the JSON of the fields above (in this order), hex.
    pub signature: String,
    /// The verifying key, hex.
    pub key: String,
}

/// Where a sharing agreement stands. Rows store all but `Expired`, which a granted agreement
/// becomes when its validity ends.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    utoipa::ToSchema,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum AgreementStatus {
    /// Waiting for the owning department's decision.
    Pending,
    Granted,
    Refused,
    Revoked,
    Expired,
}

impl AgreementStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn is_pending(self) -> bool {
        self == AgreementStatus::Pending
    }

    /// The status a row holds (the table's CHECK admits no other); anything else is said as
    /// a fault, never read as some status.
    fn stored(value: &str) -> Result<AgreementStatus, Error> {
        match value.parse() {
            // Expired is worked out from the validity, never stored.
            Ok(AgreementStatus::Expired) | Err(_) => {
                Err(Error::Internal(format!("a sharing agreement holds the unknown status {value:?}")))
            }
            Ok(status) => Ok(status),
        }
    }

    /// The status of a row at `now`.
    fn of(a: &AgreementRow, now: DateTime<Utc>) -> Result<AgreementStatus, Error> {
        match AgreementStatus::stored(&a.status)? {
            AgreementStatus::Granted if millis(now) >= a.valid_until => Ok(AgreementStatus::Expired),
            status => Ok(status),
        }
    }
}

fn text_field(value: &str, field: &'static str, max: usize) -> Result<String, Error> {
    let v = value.trim();
    if v.is_empty() || v.chars().count() > max {
        return Err(Error::invalid(field, format!("1–{max} characters")));
    }
    Ok(v.to_string())
}

fn compare(actual: &Value, op: &str, expected: &Value) -> Result<bool, Error> {
    use std::cmp::Ordering;
    let ordering = match (actual, expected) {
        (Value::Number(a), Value::Number(b)) => a.as_f64().zip(b.as_f64()).and_then(|(a, b)| a.partial_cmp(&b)),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        (Value::Null, _) => None,
        _ => None,
    };
    Ok(match op {
        "eq" => ordering == Some(Ordering::Equal),
        "ne" => ordering != Some(Ordering::Equal),
        "gt" => ordering == Some(Ordering::Greater),
        "gte" => matches!(ordering, Some(Ordering::Greater | Ordering::Equal)),
        "lt" => ordering == Some(Ordering::Less),
        "lte" => matches!(ordering, Some(Ordering::Less | Ordering::Equal)),
        _ => return Err(Error::invalid("op", "eq, ne, gt, gte, lt or lte")),
    })
}

kernel::area! {
    /// Sharing agreements between departments, and the reads and verification-only queries of the consuming department's systems.
    Sharing of Exchange
}

impl Sharing<'_> {
    // --- agreements ------------------------------------------------------------------------

    /// A consuming department asks for fields of a registry. Unconditional fields are granted
    /// at once; conditional ones (and plain values of sensitive fields) wait for the owning
    /// department; a field that is not shareable refuses the request with its legal basis.
    pub async fn request_agreement(
        &self,
        cap: &Capability<SharingRequest>,
        req: AgreementRequest,
        now: DateTime<Utc>,
    ) -> Result<AgreementView, Error> {
        let consumer = cap
            .department_id()
            .ok_or_else(|| Error::invalid("department", "only staff of a department request data"))?
            .to_string();
        let purpose = text_field(&req.purpose, "purpose", 500)?;
        let legal_basis = text_field(&req.legal_basis, "legal_basis", 500)?;
        if !(1..=1095).contains(&req.valid_days) {
            return Err(Error::invalid("valid_days", "1 to 1,095 days"));
        }
        let rate = req.rate_per_minute.unwrap_or(DEFAULT_RATE_PER_MINUTE);
        if !(1..=100_000).contains(&rate) {
            return Err(Error::invalid("rate_per_minute", "1 to 100,000 calls a minute"));
        }
        let mut fields: Vec<String> = req.fields.iter().map(|f| f.trim().to_string()).collect();
        fields.sort();
        fields.dedup();
        if fields.is_empty() {
            return Err(Error::invalid("fields", "name at least one field"));
        }
        let mut tx = self.inner.db.begin().await?;
        let (registry, compiled) = self.registries().registry_in(&mut tx, &req.registry).await?;
        let mut entries: Vec<&FieldEntry> = Vec::with_capacity(fields.len());
        for f in &fields {
            entries.push(
                compiled
                    .field(f)
                    .ok_or_else(|| Error::invalid("fields", format!("{f} is not a field of {}", registry.code)))?,
            );
        }
        let not_shareable: Vec<String> = entries
            .iter()
            .filter(|e| e.sharing == SharingType::None)
            .map(|e| format!("{}（{}）", e.title_zh, e.legal_basis.as_deref().unwrap_or_default()))
            .collect();
        let needs_decision = entries.iter().any(|e| e.sharing == SharingType::Conditional)
            || (req.plain_values && entries.iter().any(|e| e.classification >= 3))
            || req.consent_required;
        let (status, reason, decided_at) = if !not_shareable.is_empty() {
            (AgreementStatus::Refused, Some(format!("不予共享: {}", not_shareable.join("；"))), Some(millis(now)))
        } else if needs_decision {
            (AgreementStatus::Pending, None, None)
        } else {
            (AgreementStatus::Granted, None, Some(millis(now)))
        };
        let row = AgreementRow {
            id: new_id(),
            registry_id: registry.id.clone(),
            consumer_department_id: consumer,
            requested_by: cap.account_id().into(),
            fields: serde_json::to_string(&fields).map_err(internal)?,
            purpose,
            legal_basis,
            verify_only: req.verify_only,
            plain_values: req.plain_values,
            consent_required: req.consent_required,
            rate_per_minute: rate,
            status: status.as_str().into(),
            valid_from: millis(now),
            valid_until: millis(now + Duration::days(req.valid_days)),
            reason,
            decided_by: None,
            decided_at,
            created_at: millis(now),
        };
        repo::insert_agreement(&mut tx, &row).await?;
        let mut entry = ledger::Entry::new(Action::SharingRequested, Outcome::Success, now);
        entry.actor = Some(cap.account_id().into());
        entry.object = Some(format!("agreement:{}", row.id));
        entry.purpose = Some(row.purpose.clone());
        entry.detail = Some(format!("{} [{}] → {status}", registry.code, fields.join(",")));
        ledger::append_in(&mut tx, Log::Audit, &entry).await?;
        let view = self.agreement_view_in(&mut tx, &row, &registry, now).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// The owning department approves or refuses a pending request. An approval that needs
    /// consent opens a consent data agreement that the data subjects can grant.
    pub async fn decide_agreement(
        &self,
        cap: &Capability<SharingDecide>,
        id: &str,
        decision: Decision,
        now: DateTime<Utc>,
    ) -> Result<AgreementView, Error> {
        let reason = decision.reason.as_deref().map(str::trim).filter(|r| !r.is_empty()).map(str::to_string);
        if !decision.approve && reason.is_none() {
            return Err(Error::invalid("reason", "a refusal gives its reason"));
        }
        let mut tx = self.inner.db.begin().await?;
        let row = repo::agreement(&mut tx, id).await?.ok_or(Error::NotFound("agreement"))?;
        let registry = repo::registry_by_id(&mut tx, &row.registry_id).await?.ok_or(Error::NotFound("registry"))?;
        cap.check_department(&registry.department_id)?;
        let to = if decision.approve { AgreementStatus::Granted } else { AgreementStatus::Refused };
        if !repo::set_agreement_status(
            &mut tx,
            id,
            AgreementStatus::Pending,
            to,
            reason.as_deref(),
            cap.account_id(),
            millis(now),
        )
        .await?
        {
            return Err(Error::conflict(ErrorCode::AlreadyDecided, "this request has already been decided"));
        }
        if decision.approve && row.consent_required {
            self.consent().open_consent_agreement_in(&mut tx, &row, &registry, now).await?;
        }
        let mut entry = ledger::Entry::new(
            if decision.approve { Action::SharingGranted } else { Action::SharingRefused },
            Outcome::Success,
            now,
        );
        entry.actor = Some(cap.account_id().into());
        entry.object = Some(format!("agreement:{id}"));
        entry.detail = reason;
        ledger::append_in(&mut tx, Log::Audit, &entry).await?;
        let row = repo::agreement(&mut tx, id).await?.ok_or(Error::NotFound("agreement"))?;
        let view = self.agreement_view_in(&mut tx, &row, &registry, now).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// The owning department withdraws a grant; the next call is refused.
    pub async fn revoke_agreement(
        &self,
        cap: &Capability<SharingDecide>,
        id: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<AgreementView, Error> {
        let reason = text_field(reason, "reason", 500)?;
        let mut tx = self.inner.db.begin().await?;
        let row = repo::agreement(&mut tx, id).await?.ok_or(Error::NotFound("agreement"))?;
        let registry = repo::registry_by_id(&mut tx, &row.registry_id).await?.ok_or(Error::NotFound("registry"))?;
        cap.check_department(&registry.department_id)?;
        if !repo::set_agreement_status(
            &mut tx,
            id,
            AgreementStatus::Granted,
            AgreementStatus::Revoked,
            Some(&reason),
            cap.account_id(),
            millis(now),
        )
        .await?
        {
            return Err(Error::conflict(ErrorCode::AlreadyRevoked, "only a granted agreement can be revoked"));
        }
        self.consent().close_consent_agreement_in(&mut tx, id).await?;
        let mut entry = ledger::Entry::new(Action::SharingRevoked, Outcome::Success, now);
        entry.actor = Some(cap.account_id().into());
        entry.object = Some(format!("agreement:{id}"));
        entry.detail = Some(reason);
        ledger::append_in(&mut tx, Log::Audit, &entry).await?;
        let row = repo::agreement(&mut tx, id).await?.ok_or(Error::NotFound("agreement"))?;
        let view = self.agreement_view_in(&mut tx, &row, &registry, now).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Requests for the own department's registries (the approval inbox), newest first.
    pub async fn incoming_agreements(
        &self,
        cap: &Capability<SharingDecide>,
        now: DateTime<Utc>,
    ) -> Result<Vec<AgreementView>, Error> {
        let dept = cap.department_id().ok_or(Error::NotFound("department"))?.to_string();
        self.agreements_where(Some(&dept), None, now).await
    }

    /// The own department's requests, newest first.
    pub async fn outgoing_agreements(
        &self,
        cap: &Capability<SharingRequest>,
        now: DateTime<Utc>,
    ) -> Result<Vec<AgreementView>, Error> {
        let dept = cap.department_id().ok_or(Error::NotFound("department"))?.to_string();
        self.agreements_where(None, Some(&dept), now).await
    }

    async fn agreements_where(
        &self,
        owner: Option<&str>,
        consumer: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Vec<AgreementView>, Error> {
        let mut c = self.conn().await?;
        let rows = repo::agreements(&mut c, owner, consumer).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let registry = repo::registry_by_id(&mut c, &row.registry_id).await?.ok_or(Error::NotFound("registry"))?;
            out.push(self.agreement_view_in(&mut c, &row, &registry, now).await?);
        }
        Ok(out)
    }

    async fn agreement_view_in(
        &self,
        c: &mut AnyConnection,
        row: &AgreementRow,
        registry: &RegistryRow,
        now: DateTime<Utc>,
    ) -> Result<AgreementView, Error> {
        let identity = &self.inner.identity;
        Ok(AgreementView {
            id: row.id.clone(),
            registry: registry.code.clone(),
            registry_name: registry.name_zh.clone(),
            owner_department: super::department_name(identity, c, &registry.department_id).await?,
            consumer_department: super::department_name(identity, c, &row.consumer_department_id).await?,
            fields: serde_json::from_str(&row.fields).map_err(internal)?,
            purpose: row.purpose.clone(),
            legal_basis: row.legal_basis.clone(),
            verify_only: row.verify_only,
            plain_values: row.plain_values,
            consent_required: row.consent_required,
            rate_per_minute: row.rate_per_minute,
            status: AgreementStatus::of(row, now)?,
            valid_from: from_millis(row.valid_from),
            valid_until: from_millis(row.valid_until),
            reason: row.reason.clone(),
            decided_at: row.decided_at.map(from_millis),
            created_at: from_millis(row.created_at),
        })
    }
}
