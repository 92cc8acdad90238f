//! Sharing agreements between departments, the systems that call the exchange, and the
//! calls themselves: reads of granted fields (masked by classification unless plain values
//! are granted) and verification-only queries answered yes or no with a signed receipt.
//! Every call, answered or refused, is an entry on the `audit` ledger naming the data
//! subject, which is what 我的数据 and `myPersonalDataUsage` show.

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
            owner_department: identity
                .organisation()
                .department_name_in(c, &registry.department_id)
                .await?
                .unwrap_or_default(),
            consumer_department: identity
                .organisation()
                .department_name_in(c, &row.consumer_department_id)
                .await?
                .unwrap_or_default(),
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

    // --- systems ---------------------------------------------------------------------------

    /// Registers a system of a department: a system account named as the Information
    /// Mediator names it, and a secret shown once.
    pub async fn register_client(
        &self,
        cap: &Capability<AccountCreate>,
        department_code: &str,
        mediator_client: &str,
        now: DateTime<Utc>,
    ) -> Result<RegisteredClient, Error> {
        let name = mediator_client.trim();
        let mut tx = self.inner.db.begin().await?;
        let department = self
            .inner
            .identity
            .organisation()
            .department_by_code_in(&mut tx, department_code)
            .await?
            .ok_or(Error::NotFound("department"))?;
        let account = self
            .inner
            .identity
            .accounts()
            .create_account(
                &mut tx,
                cap,
                NewAccount {
                    kind: Some(AccountKind::System),
                    username: name.to_string(),
                    display_name: format!("{} {}", department.name, name.rsplit('/').next().unwrap_or(name)),
                    department_code: Some(department.code.clone()),
                    ..NewAccount::default()
                },
                now,
            )
            .await?;
        let secret = SecretString::new(random_token(32));
        let row = repo::ClientRow {
            id: new_id(),
            account_id: account.id.clone(),
            department_id: department.id,
            mediator_client: account.username.clone(),
            secret_hash: sha256_hex(secret.expose()),
            revoked: false,
        };
        repo::insert_client(&mut tx, &row, millis(now)).await?;
        tx.commit().await?;
        Ok(RegisteredClient { id: row.id, account_id: account.id, mediator_client: row.mediator_client, secret })
    }

    /// The calling system, by the name the Information Mediator gives and its secret. A
    /// system found is remembered for the platform's auth cache time, as API tokens are, so
    /// a busy system does not cost a round trip a call.
    pub async fn authenticate(&self, mediator_client: &str, secret: &str) -> Result<ExchangeClient, Error> {
        let name = mediator_client.trim().to_lowercase();
        let ttl = self.inner.identity.policy().auth_cache;
        let cached =
            lock(&self.inner.clients).get(&name).filter(|(_, at)| at.elapsed() < ttl).map(|(row, _)| row.clone());
        let row = match cached {
            Some(row) => row,
            None => {
                let mut c = self.conn().await?;
                let row = repo::client(&mut c, &name).await?.ok_or(Error::Unauthenticated)?;
                if !ttl.is_zero() {
                    let mut clients = lock(&self.inner.clients);
                    if clients.len() >= CACHE_LIMIT {
                        clients.clear();
                    }
                    clients.insert(name, (row.clone(), std::time::Instant::now()));
                }
                row
            }
        };
        let given = sha256_hex(secret);
        if row.revoked || !bool::from(given.as_bytes().ct_eq(row.secret_hash.as_bytes())) {
            return Err(Error::Unauthenticated);
        }
        Ok(ExchangeClient {
            id: row.id,
            account_id: row.account_id,
            department_id: row.department_id,
            mediator_client: row.mediator_client,
        })
    }

    // --- calls -----------------------------------------------------------------------------

    /// Reads the granted fields of the record with this key under an agreement.
    pub async fn read(
        &self,
        client: &ExchangeClient,
        agreement_id: &str,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<ExchangeAnswer, Error> {
        // The checks and the opening run on a pooled connection, released before the access
        // entry joins a group commit (reads need no write lock; the entry needs no reads).
        let mut c = self.conn().await?;
        let admitted = match self.admit(&mut c, client, agreement_id, key, true, now).await {
            Ok(Admitted { record: None, .. }) => Err(Error::NotFound("record")),
            other => other,
        };
        let Admitted { agreement, registry, index, subject, record: Some(record) } = (match admitted {
            Ok(admitted) => admitted,
            Err(e) => {
                drop(c);
                return Err(self.refuse(client, agreement_id, e, now).await);
            }
        }) else {
            return Err(internal("an admitted read lost its record"));
        };
        let compiled = self.registries().compiled_in(&mut c, &registry.id, registry.version).await?;
        let opened = self.registries().open_record(&mut c, &record).await?;
        drop(c);
        let granted: Vec<String> = serde_json::from_str(&agreement.fields).map_err(internal)?;
        let mut values = Map::new();
        let mut masked = Vec::new();
        for f in &granted {
            let Some(v) = opened.values.get(f) else { continue };
            match compiled.field(f) {
                Some(entry) if !agreement.plain_values && entry.classification >= 3 => {
                    values.insert(f.clone(), entry.masked(v));
                    masked.push(f.clone());
                }
                _ => {
                    values.insert(f.clone(), v.clone());
                }
            }
        }
        let access = access_entry(client, &agreement, &registry, &index, subject, Action::ExchangeRead, &record, now);
        self.record_call(access).await?;
        Ok(ExchangeAnswer {
            agreement: agreement.id,
            registry: registry.code,
            record: record.id,
            values,
            masked,
            at: now,
        })
    }

    /// Answers yes or no to conditions on the record with this key, with a signed receipt,
    /// without returning any value. No record is a "no".
    pub async fn verify(
        &self,
        client: &ExchangeClient,
        agreement_id: &str,
        key: &str,
        conditions: Vec<Predicate>,
        now: DateTime<Utc>,
    ) -> Result<Receipt, Error> {
        if conditions.is_empty() {
            return Err(Error::invalid("conditions", "ask at least one condition"));
        }
        // A bad operator is refused before the call, whether or not a record exists.
        if let Some(p) = conditions.iter().find(|p| !OPERATORS.contains(&p.op.as_str())) {
            return Err(Error::invalid("op", format!("{}: eq, ne, gt, gte, lt or lte", p.op)));
        }
        let mut c = self.conn().await?;
        let Admitted { agreement, registry, index, subject, record } =
            match self.admit(&mut c, client, agreement_id, key, false, now).await {
                Ok(admitted) => admitted,
                Err(e) => {
                    drop(c);
                    return Err(self.refuse(client, agreement_id, e, now).await);
                }
            };
        let granted: Vec<String> = serde_json::from_str(&agreement.fields).map_err(internal)?;
        if let Some(p) = conditions.iter().find(|p| !granted.contains(&p.field)) {
            return Err(Error::refused(
                ErrorCode::FieldNotGranted,
                format!("{} is not granted by this agreement", p.field),
            ));
        }
        // Nobody holds this key: the answer is no, and no record was reached.
        let mut answer = record.is_some();
        let mut access = CallEntry::counted(&agreement.id, now);
        if let Some(record) = &record {
            let opened = self.registries().open_record(&mut c, record).await?;
            for p in &conditions {
                let actual = opened.values.get(&p.field).unwrap_or(&Value::Null);
                answer &= compare(actual, &p.op, &p.value)?;
            }
            access = access_entry(client, &agreement, &registry, &index, subject, Action::ExchangeVerify, record, now);
        }
        drop(c);
        self.record_call(access).await?;
        let subject_ref = hex::encode(Sha256::digest(format!("{}\0{index}", agreement.id)));
        let at = now.to_rfc3339_opts(SecondsFormat::Millis, true);
        let payload = json!({
            "agreement": agreement.id, "registry": registry.code, "subject": subject_ref,
            "conditions": conditions, "answer": answer, "at": at,
        });
        let signature = self.inner.receipts.sign(payload.to_string().as_bytes());
        Ok(Receipt {
            agreement: agreement.id,
            registry: registry.code,
            subject: subject_ref,
            conditions,
            answer,
            at,
            signature: hex::encode(signature.to_bytes()),
            key: self.receipt_key(),
        })
    }

    /// Checks a call against its agreement and finds the record with this key, in one round
    /// trip when the agreement has been called before.
    async fn admit(
        &self,
        c: &mut AnyConnection,
        client: &ExchangeClient,
        agreement_id: &str,
        key: &str,
        read: bool,
        now: DateTime<Utc>,
    ) -> Result<Admitted, Error> {
        // The key's blind index depends on the registry's key domain. The domain seen on the
        // agreement's last call is tried first; the answer names the registry's domain, and
        // a miss (a first call, a republished key) asks once more with that one.
        let mut domain = lock(&self.inner.key_domains).get(agreement_id).cloned();
        let mut found = None;
        for _ in 0..2 {
            let index = match &domain {
                Some(d) => self.inner.protector.blind_index(d, &normalize_key(d, key)),
                None => String::new(),
            };
            let (agreement, registry, record) =
                repo::call_target(c, agreement_id, &index).await?.ok_or(Error::NotFound("agreement"))?;
            if domain.as_deref() == Some(registry.key_domain.as_str()) {
                found = Some((agreement, registry, index, record));
                break;
            }
            domain = Some(registry.key_domain.clone());
            let mut domains = lock(&self.inner.key_domains);
            if domains.len() >= CACHE_LIMIT {
                domains.clear();
            }
            domains.insert(agreement_id.to_string(), registry.key_domain);
        }
        let (agreement, registry, index, record) =
            found.ok_or_else(|| internal("the registry's key domain changed during a call"))?;
        if agreement.consumer_department_id != client.department_id {
            return Err(Error::refused(
                ErrorCode::AgreementNotYours,
                "this agreement was granted to another department",
            ));
        }
        match AgreementStatus::of(&agreement, now)? {
            AgreementStatus::Granted => {}
            AgreementStatus::Pending => {
                return Err(Error::refused(ErrorCode::AgreementPending, "the owning department has not decided yet"));
            }
            AgreementStatus::Refused => {
                return Err(Error::refused(ErrorCode::AgreementRefused, "this request was refused"));
            }
            AgreementStatus::Revoked => {
                return Err(Error::refused(ErrorCode::AgreementRevoked, "this agreement has been revoked"));
            }
            AgreementStatus::Expired => {
                return Err(Error::refused(ErrorCode::AgreementExpired, "this agreement has expired"));
            }
        }
        if read && agreement.verify_only {
            return Err(Error::refused(ErrorCode::VerifyOnly, "this agreement answers verification queries only"));
        }
        self.count_rate(c, &agreement, now).await?;
        // Whom a call names is settled when its entry is written, for many calls at once;
        // only a purpose resting on consent needs to know before answering.
        let mut subject = None;
        if agreement.consent_required {
            subject = self.subject_in(c, &registry, &index).await?;
            let consented = match &subject {
                Some(account) => self.consent().consent_valid_in(c, &agreement.id, account, now).await?,
                None => false,
            };
            if !consented {
                return Err(Error::refused(
                    ErrorCode::ConsentRequired,
                    "the data subject has not consented to this purpose",
                ));
            }
        }
        Ok(Admitted { agreement, registry, index, subject, record })
    }

    /// Holds an agreement to its calls per minute. On PostgreSQL the count is shared by every
    /// node; SQLite is one process, and counts in memory rather than write per call.
    async fn count_rate(
        &self,
        c: &mut AnyConnection,
        agreement: &AgreementRow,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let minute = now.timestamp() / 60;
        if self.inner.db.backend == kernel::db::Backend::Postgres {
            let calls = repo::count_call(c, &agreement.id, minute).await?;
            return if calls > agreement.rate_per_minute { Err(Error::RateLimited) } else { Ok(()) };
        }
        let mut calls = lock(&self.inner.calls);
        let slot = calls.entry(agreement.id.clone()).or_insert((minute, 0));
        if slot.0 != minute {
            *slot = (minute, 0);
        }
        if slot.1 >= agreement.rate_per_minute {
            return Err(Error::RateLimited);
        }
        slot.1 += 1;
        Ok(())
    }

    /// The data subject's account, when the registry is keyed by resident ID number and the
    /// resident has an account.
    pub(super) async fn subject_in(
        &self,
        c: &mut AnyConnection,
        registry: &RegistryRow,
        key_index: &str,
    ) -> Result<Option<String>, Error> {
        if registry.key_domain != "id_number" {
            return Ok(None);
        }
        Ok(self.inner.identity.people().citizen_by_id_index_in(c, key_index).await?)
    }

    /// Whom an access entry names: the resident's account when the registry links to
    /// residents, else a pseudonym of the record's key (its blind index in the registry),
    /// which `myPersonalDataUsage` finds again.
    pub(super) async fn data_subject_in(
        &self,
        c: &mut AnyConnection,
        registry: &RegistryRow,
        key_index: &str,
    ) -> Result<String, Error> {
        Ok(match self.subject_in(c, registry, key_index).await? {
            Some(account) => account,
            None => format!("registry:{}:{key_index}", registry.id),
        })
    }

    /// Writes a call's entry on the audit ledger and counts a served call: through the
    /// journal when this node holds one (folded into the ledger later, before anyone reads
    /// it), else in a group commit shared with the other calls waiting. Returns once durable:
    /// no answer leaves before its access is on disk.
    async fn record_call(&self, call: CallEntry) -> Result<(), Error> {
        if let Some(journal) = &self.inner.journal {
            let record = serde_json::to_vec(&call).map_err(internal)?;
            return journal.append(record).await.map_err(internal);
        }
        let this = self.0.clone();
        self.inner
            .db
            .write_batched(&self.inner.call_entries, call, move |c, calls| {
                Box::pin(async move { this.sharing().write_calls(c, calls).await })
            })
            .await
    }

    /// Writes waiting calls: whom each names (one lookup of residents' accounts for all),
    /// their entries with one ledger append, and one count a day per agreement.
    async fn write_calls(&self, c: &mut AnyConnection, calls: Vec<CallEntry>) -> Result<Vec<()>, Error> {
        let residents: Vec<&str> = calls
            .iter()
            .filter_map(|call| call.subject_of.as_ref())
            .filter(|s| s.key_domain == "id_number")
            .map(|s| s.key_index.as_str())
            .collect();
        let accounts = self.inner.identity.people().citizens_by_id_indexes_in(c, &residents).await?;
        let mut counts: std::collections::BTreeMap<(String, String), i64> = std::collections::BTreeMap::new();
        let mut entries = Vec::with_capacity(calls.len());
        for call in &calls {
            if let Some(counted) = &call.counted {
                *counts.entry(counted.clone()).or_insert(0) += 1;
            }
            let Some(mut entry) = call.entry.clone() else { continue };
            if let Some(of) = &call.subject_of {
                entry.subject = Some(match accounts.get(&of.key_index) {
                    Some(account) if of.key_domain == "id_number" => account.clone(),
                    _ => format!("registry:{}:{}", of.registry_id, of.key_index),
                });
            }
            entries.push(entry);
        }
        if !entries.is_empty() {
            ledger::append_many_in(c, Log::Audit, &entries).await?;
        }
        let counts: Vec<(String, String, i64)> =
            counts.into_iter().map(|((agreement, day), n)| (agreement, day, n)).collect();
        repo::count_calls(c, &counts).await?;
        Ok(vec![(); calls.len()])
    }

    /// Records a refused call on the ledger and gives back the refusal (or the storage error
    /// that kept it from being recorded).
    async fn refuse(&self, client: &ExchangeClient, agreement_id: &str, e: Error, now: DateTime<Utc>) -> Error {
        let reason = match &e {
            Error::Refused { code, .. } => code.as_str().to_string(),
            Error::NotFound(what) => format!("{what}_not_found"),
            Error::RateLimited => "rate_limited".into(),
            _ => return e,
        };
        let mut entry = ledger::Entry::new(Action::ExchangeRefused, Outcome::Denied, now);
        entry.actor = Some(client.account_id.clone());
        entry.source = Some(client.mediator_client.clone());
        entry.object = Some(format!("agreement:{agreement_id}"));
        entry.detail = Some(reason);
        match self.record_call(CallEntry { entry: Some(entry), subject_of: None, counted: None }).await {
            Ok(()) => e,
            Err(storage) => storage,
        }
    }
}

/// Bounds the per-node caches of systems and key domains; a full cache is simply emptied.
const CACHE_LIMIT: usize = 10_000;

/// A call let through by its agreement: the record, when one holds the key, and the data
/// subject's account when consent had to be checked.
struct Admitted {
    agreement: AgreementRow,
    registry: RegistryRow,
    /// The key's blind index in the registry.
    index: String,
    subject: Option<String>,
    record: Option<repo::RecordRow>,
}

/// The journal of calls' entries, on SQLite: each call waits for one file append instead of
/// a database commit (see [`kernel::db::journal`]), and the fold writes them with
/// [`Exchange::write_calls`]. Without it (PostgreSQL, or another process holding it) calls
/// join group commits.
pub(super) fn open_call_journal(db: &kernel::db::Db, exchange: std::sync::Weak<super::Inner>) -> Option<Journal> {
    let apply: kernel::db::journal::Apply = std::sync::Arc::new(move |c, records| {
        let exchange = exchange.upgrade().map(|inner| Exchange { inner });
        Box::pin(async move {
            let exchange = exchange.ok_or("the exchange has stopped")?;
            let calls = records
                .iter()
                .map(|r| serde_json::from_slice::<CallEntry>(r))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("a journaled call cannot be read: {e}"))?;
            exchange.sharing().write_calls(c, calls).await.map(drop).map_err(|e| e.to_string())
        })
    });
    match Journal::open(db, "exchange-calls", apply) {
        Ok(journal) => journal,
        // A command run beside the server that holds it.
        Err(e @ kernel::db::journal::JournalError::Held(_)) => {
            tracing::info!(error = %e, "exchange calls are written through group commits");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "exchange calls are written through group commits instead of the journal");
            None
        }
    }
}

/// A call waiting to be written: its ledger entry, whose data it concerns when that is
/// still to be looked up, and the agreement and day it counts for when it was served.
#[derive(Serialize, Deserialize)]
pub(super) struct CallEntry {
    entry: Option<ledger::Entry>,
    subject_of: Option<SubjectOf>,
    counted: Option<(String, String)>,
}

/// A record's key in a registry, which names its data subject.
#[derive(Serialize, Deserialize)]
struct SubjectOf {
    registry_id: String,
    key_domain: String,
    key_index: String,
}

impl CallEntry {
    /// A served call that reached no record: counted, with no entry.
    fn counted(agreement_id: &str, now: DateTime<Utc>) -> CallEntry {
        CallEntry { entry: None, subject_of: None, counted: Some(call_day(agreement_id, now)) }
    }
}

fn call_day(agreement_id: &str, now: DateTime<Utc>) -> (String, String) {
    (agreement_id.to_string(), now.format("%Y-%m-%d").to_string())
}

/// The access entry of a call that reached a record. It names the resident's account when
/// the registry links to residents, else a pseudonym of the record's key (its blind index
/// in the registry), which `myPersonalDataUsage` finds again.
#[allow(clippy::too_many_arguments)]
fn access_entry(
    client: &ExchangeClient,
    agreement: &AgreementRow,
    registry: &RegistryRow,
    index: &str,
    subject: Option<String>,
    action: Action,
    record: &repo::RecordRow,
    now: DateTime<Utc>,
) -> CallEntry {
    let mut entry = ledger::Entry::new(action, Outcome::Success, now);
    entry.actor = Some(client.account_id.clone());
    entry.source = Some(client.mediator_client.clone());
    entry.object = Some(format!("agreement:{}", agreement.id));
    entry.purpose = Some(agreement.purpose.clone());
    entry.detail = Some(format!("registry:{}:{}", registry.code, record.id));
    let subject_of = match subject {
        Some(account) => {
            entry.subject = Some(account);
            None
        }
        None => Some(SubjectOf {
            registry_id: registry.id.clone(),
            key_domain: registry.key_domain.clone(),
            key_index: index.to_string(),
        }),
    };
    CallEntry { entry: Some(entry), subject_of, counted: Some(call_day(&agreement.id, now)) }
}
