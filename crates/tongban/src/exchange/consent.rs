//! Consent (GovStack Consent building block): policies, data agreements, individuals and
//! consent records. Every change is a revision (a snapshot and its SHA-1, linked to the
//! previous one). A sharing agreement that rests on consent opens a data agreement; the
//! exchange refuses a call about a person without their valid opt-in, and a withdrawal
//! takes effect on the next call (nothing is cached).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sha1::{Digest, Sha1};
use sqlx::{AnyConnection, Row};

use super::repo::{AgreementRow, RegistryRow};
use super::{Error, Exchange, internal};
use crate::db::{from_millis, millis, new_id};
use crate::identity::Capability;
use crate::identity::Principal;
use crate::identity::authz::ConsentManage;
use crate::ledger::{self, Log};

const LAWFUL_BASES: &[&str] =
    &["consent", "legal_obligation", "contract", "vital_interest", "public_task", "legitimate_interest"];

/// A person as the Consent building block knows them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IndividualRef {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_provider_id: Option<String>,
}

/// A purpose the signed-in person may consent to, and where they stand.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ConsentView {
    pub data_agreement: String,
    pub purpose: String,
    /// Who asks (the consuming department) and whose data (the registry).
    pub requester: String,
    pub registry: String,
    pub fields: Vec<String>,
    pub granted: bool,
    pub expires_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// Sets a key of a JSON object (objects only; the callers check that first).
fn set(v: &mut Value, key: &str, value: Value) {
    if let Some(o) = v.as_object_mut() {
        o.insert(key.to_string(), value);
    }
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A GovStack Revision object for a stored revision row.
fn revision_json(r: &sqlx::any::AnyRow) -> Result<Value, sqlx::Error> {
    let mut v = json!({
        "id": r.try_get::<String, _>("id")?,
        "schemaName": r.try_get::<String, _>("schema_name")?,
        "objectId": r.try_get::<String, _>("object_id")?,
        "signedWithoutObjectId": false,
        "serializedSnapshot": r.try_get::<String, _>("snapshot")?,
        "serializedHash": r.try_get::<String, _>("hash")?,
        "timestamp": iso(from_millis(r.try_get("created_at")?)),
    });
    if let Some(p) = r.try_get::<Option<String>, _>("predecessor_hash")? {
        set(&mut v, "predecessorHash", Value::String(p));
    }
    if let Some(by) = r.try_get::<Option<String>, _>("authorized_by")? {
        set(&mut v, "authorizedByOther", Value::String(by));
    }
    Ok(v)
}

/// Writes a revision of `object` and links the previous one to it.
async fn revise(
    c: &mut AnyConnection,
    schema: &str,
    object_id: &str,
    object: &Value,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Value, Error> {
    let mut data = object.clone();
    if let Some(o) = data.as_object_mut() {
        o.remove("id");
    }
    let snapshot = json!({
        "objectData": data, "schemaName": schema, "objectId": object_id, "signedWithoutObjectId": false,
        "timestamp": iso(now), "authorizedByOther": by,
    })
    .to_string();
    let hash = hex::encode(Sha1::digest(snapshot.as_bytes()));
    let previous = sqlx::query(
        "SELECT id, hash FROM consent_revisions WHERE object_id = $1 AND successor_id IS NULL ORDER BY created_at DESC LIMIT 1",
    )
    .bind(object_id)
    .fetch_optional(&mut *c)
    .await?;
    let id = new_id();
    let predecessor: Option<(String, String)> =
        previous.map(|r| Ok::<_, sqlx::Error>((r.try_get("id")?, r.try_get("hash")?))).transpose()?;
    sqlx::query(
        "INSERT INTO consent_revisions (id, schema_name, object_id, snapshot, hash, predecessor_hash, authorized_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&id)
    .bind(schema)
    .bind(object_id)
    .bind(&snapshot)
    .bind(&hash)
    .bind(predecessor.as_ref().map(|p| p.1.clone()))
    .bind(by)
    .bind(millis(now))
    .execute(&mut *c)
    .await?;
    if let Some((prev, _)) = predecessor {
        sqlx::query("UPDATE consent_revisions SET successor_id = $1 WHERE id = $2")
            .bind(&id)
            .bind(prev)
            .execute(&mut *c)
            .await?;
    }
    let row = sqlx::query(
        "SELECT id, schema_name, object_id, snapshot, hash, predecessor_hash, authorized_by, created_at \
         FROM consent_revisions WHERE id = $1",
    )
    .bind(&id)
    .fetch_one(&mut *c)
    .await?;
    Ok(revision_json(&row)?)
}

async fn latest_revision(c: &mut AnyConnection, object_id: &str) -> Result<Option<Value>, Error> {
    let row = sqlx::query(
        "SELECT id, schema_name, object_id, snapshot, hash, predecessor_hash, authorized_by, created_at \
         FROM consent_revisions WHERE object_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1",
    )
    .bind(object_id)
    .fetch_optional(c)
    .await?;
    Ok(row.as_ref().map(revision_json).transpose()?)
}

fn required_text(o: &Value, key: &str, field: &'static str) -> Result<String, Error> {
    match o.get(key).and_then(Value::as_str).map(str::trim) {
        Some(v) if !v.is_empty() => Ok(v.to_string()),
        _ => Err(Error::invalid(field, format!("{key} is required"))),
    }
}

impl Exchange {
    // --- policies and data agreements (organisation admin) -----------------------------------

    /// Creates (`id` None) or replaces a policy; returns (policy, revision).
    pub async fn put_policy(
        &self,
        cap: &Capability<ConsentManage>,
        id: Option<&str>,
        policy: Value,
        now: DateTime<Utc>,
    ) -> Result<(Value, Value), Error> {
        if !policy.is_object() {
            return Err(Error::invalid("policy", "an object"));
        }
        for key in ["name", "version", "url"] {
            required_text(&policy, key, "policy")?;
        }
        if let Some(d) = policy.get("dataRetentionPeriodDays")
            && !d.is_i64()
        {
            return Err(Error::invalid("policy", "dataRetentionPeriodDays is a whole number"));
        }
        let mut tx = self.inner.db.begin().await?;
        let id = match id {
            Some(id) => {
                let live = sqlx::query("SELECT id FROM consent_policies WHERE id = $1 AND deleted_at IS NULL")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
                live.ok_or(Error::NotFound("policy"))?;
                id.to_string()
            }
            None => new_id(),
        };
        let mut policy = policy;
        set(&mut policy, "id", Value::String(id.clone()));
        sqlx::query(
            "INSERT INTO consent_policies (id, body, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET body = $2",
        )
        .bind(&id)
        .bind(policy.to_string())
        .bind(millis(now))
        .execute(&mut *tx)
        .await?;
        let revision = revise(&mut tx, "Policy", &id, &policy, cap.account_id(), now).await?;
        tx.commit().await?;
        Ok((policy, revision))
    }

    /// Policies (not deleted), oldest first.
    pub async fn policies(&self, _cap: &Capability<ConsentManage>) -> Result<Vec<Value>, Error> {
        let mut c = self.conn().await?;
        let rows = sqlx::query("SELECT body FROM consent_policies WHERE deleted_at IS NULL ORDER BY created_at, id")
            .fetch_all(&mut *c)
            .await?;
        rows.iter().map(|r| serde_json::from_str(&r.try_get::<String, _>("body")?).map_err(internal)).collect()
    }

    /// A policy and its latest revision.
    pub async fn policy(&self, id: &str) -> Result<(Value, Value), Error> {
        let mut c = self.conn().await?;
        let row = sqlx::query("SELECT body FROM consent_policies WHERE id = $1 AND deleted_at IS NULL")
            .bind(id)
            .fetch_optional(&mut *c)
            .await?
            .ok_or(Error::NotFound("policy"))?;
        let policy: Value = serde_json::from_str(&row.try_get::<String, _>("body")?).map_err(internal)?;
        let revision = latest_revision(&mut c, id).await?.unwrap_or(Value::Null);
        Ok((policy, revision))
    }

    /// Deletes a policy that no active data agreement uses; returns the deletion's revision.
    pub async fn delete_policy(
        &self,
        cap: &Capability<ConsentManage>,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Value, Error> {
        let (policy, _) = self.policy(id).await?;
        let mut tx = self.inner.db.begin().await?;
        let used = sqlx::query(
            "SELECT COUNT(*) AS n FROM consent_data_agreements WHERE policy_id = $1 AND active = 1 AND deleted_at IS NULL",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        if used.try_get::<i64, _>("n")? > 0 {
            return Err(Error::conflict("policy_in_use", "an active data agreement uses this policy"));
        }
        sqlx::query("UPDATE consent_policies SET deleted_at = $1 WHERE id = $2")
            .bind(millis(now))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let revision =
            revise(&mut tx, "Policy", id, &json!({"deleted": true, "policy": policy}), cap.account_id(), now).await?;
        tx.commit().await?;
        Ok(revision)
    }

    /// Creates or replaces a data agreement; returns (data agreement, revision).
    pub async fn put_data_agreement(
        &self,
        cap: &Capability<ConsentManage>,
        id: Option<&str>,
        agreement: Value,
        now: DateTime<Utc>,
    ) -> Result<(Value, Value), Error> {
        let mut tx = self.inner.db.begin().await?;
        let (agreement, revision) =
            self.put_data_agreement_in(&mut tx, cap.account_id(), id, agreement, None, now).await?;
        tx.commit().await?;
        Ok((agreement, revision))
    }

    async fn put_data_agreement_in(
        &self,
        c: &mut AnyConnection,
        by: &str,
        id: Option<&str>,
        agreement: Value,
        sharing_agreement: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(Value, Value), Error> {
        if !agreement.is_object() {
            return Err(Error::invalid("dataAgreement", "an object"));
        }
        for key in ["version", "purpose", "dpia"] {
            required_text(&agreement, key, "dataAgreement")?;
        }
        let basis = required_text(&agreement, "lawfulBasis", "dataAgreement")?;
        if !LAWFUL_BASES.contains(&basis.as_str()) {
            return Err(Error::invalid("dataAgreement", format!("lawfulBasis is one of {}", LAWFUL_BASES.join(", "))));
        }
        for key in ["active", "forgettable"] {
            if agreement.get(key).is_some_and(|v| !v.is_boolean()) {
                return Err(Error::invalid("dataAgreement", format!("{key} is true or false")));
            }
        }
        let mut agreement = agreement;
        // The policy is named by id (a full object is accepted) and embedded as stored.
        let policy_id = agreement.pointer("/policy/id").and_then(Value::as_str).map(str::to_string);
        if let Some(pid) = &policy_id {
            let row = sqlx::query("SELECT body FROM consent_policies WHERE id = $1 AND deleted_at IS NULL")
                .bind(pid)
                .fetch_optional(&mut *c)
                .await?
                .ok_or_else(|| Error::invalid("dataAgreement", format!("no policy {pid}")))?;
            set(&mut agreement, "policy", serde_json::from_str(&row.try_get::<String, _>("body")?).map_err(internal)?);
        }
        let id = match id {
            Some(id) => {
                sqlx::query("SELECT id FROM consent_data_agreements WHERE id = $1 AND deleted_at IS NULL")
                    .bind(id)
                    .fetch_optional(&mut *c)
                    .await?
                    .ok_or(Error::NotFound("data agreement"))?;
                id.to_string()
            }
            None => new_id(),
        };
        set(&mut agreement, "id", Value::String(id.clone()));
        let active = agreement.get("active").and_then(Value::as_bool).unwrap_or(true);
        set(&mut agreement, "active", Value::Bool(active));
        sqlx::query(
            "INSERT INTO consent_data_agreements (id, body, policy_id, active, sharing_agreement_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (id) DO UPDATE SET body = $2, policy_id = $3, active = $4",
        )
        .bind(&id)
        .bind(agreement.to_string())
        .bind(&policy_id)
        .bind(i64::from(active))
        .bind(sharing_agreement)
        .bind(millis(now))
        .execute(&mut *c)
        .await?;
        let revision = revise(c, "DataAgreement", &id, &agreement, by, now).await?;
        Ok((agreement, revision))
    }

    pub async fn data_agreements(&self) -> Result<Vec<Value>, Error> {
        let mut c = self.conn().await?;
        let rows =
            sqlx::query("SELECT body FROM consent_data_agreements WHERE deleted_at IS NULL ORDER BY created_at, id")
                .fetch_all(&mut *c)
                .await?;
        rows.iter().map(|r| serde_json::from_str(&r.try_get::<String, _>("body")?).map_err(internal)).collect()
    }

    pub async fn data_agreement(&self, id: &str) -> Result<(Value, Value), Error> {
        let mut c = self.conn().await?;
        let row = sqlx::query("SELECT body FROM consent_data_agreements WHERE id = $1 AND deleted_at IS NULL")
            .bind(id)
            .fetch_optional(&mut *c)
            .await?
            .ok_or(Error::NotFound("data agreement"))?;
        let agreement: Value = serde_json::from_str(&row.try_get::<String, _>("body")?).map_err(internal)?;
        let revision = latest_revision(&mut c, id).await?.unwrap_or(Value::Null);
        Ok((agreement, revision))
    }

    pub async fn delete_data_agreement(
        &self,
        cap: &Capability<ConsentManage>,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Value, Error> {
        let (agreement, _) = self.data_agreement(id).await?;
        let mut tx = self.inner.db.begin().await?;
        sqlx::query("UPDATE consent_data_agreements SET deleted_at = $1, active = 0 WHERE id = $2")
            .bind(millis(now))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let revision = revise(
            &mut tx,
            "DataAgreement",
            id,
            &json!({"deleted": true, "dataAgreement": agreement}),
            cap.account_id(),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(revision)
    }

    /// Opens the data agreement of a sharing agreement that rests on consent.
    pub(super) async fn open_consent_agreement_in(
        &self,
        c: &mut AnyConnection,
        sharing: &AgreementRow,
        registry: &RegistryRow,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let consumer =
            self.inner.identity.department_name_in(c, &sharing.consumer_department_id).await?.unwrap_or_default();
        let fields: Vec<String> = serde_json::from_str(&sharing.fields).map_err(internal)?;
        let agreement = json!({
            "version": "1.0",
            "purpose": sharing.purpose,
            "lawfulBasis": "consent",
            "dpia": sharing.legal_basis,
            "dataUse": "data_using_service",
            "active": true,
            "forgettable": false,
            "controller": {"id": sharing.consumer_department_id, "name": consumer, "url": ""},
            "dataAttributes": fields.iter().map(|f| json!({"name": f, "category": registry.code, "sensitivity": "personal"})).collect::<Vec<_>>(),
            "x-tongban": {"sharingAgreement": sharing.id, "registry": registry.code, "registryName": registry.name_zh},
        });
        self.put_data_agreement_in(c, "sharing", None, agreement, Some(&sharing.id), now).await?;
        Ok(())
    }

    /// Closes it again when the sharing agreement is revoked.
    pub(super) async fn close_consent_agreement_in(
        &self,
        c: &mut AnyConnection,
        sharing_id: &str,
    ) -> Result<(), Error> {
        sqlx::query("UPDATE consent_data_agreements SET active = 0 WHERE sharing_agreement_id = $1")
            .bind(sharing_id)
            .execute(c)
            .await?;
        Ok(())
    }

    // --- individuals and their records ---------------------------------------------------

    /// The Consent individual of a platform account, created on first use.
    async fn individual_of_in(
        &self,
        c: &mut AnyConnection,
        account_id: &str,
        now: DateTime<Utc>,
    ) -> Result<String, Error> {
        let found = sqlx::query("SELECT id FROM consent_individuals WHERE account_id = $1")
            .bind(account_id)
            .fetch_optional(&mut *c)
            .await?;
        if let Some(r) = found {
            return Ok(r.try_get("id")?);
        }
        let id = new_id();
        sqlx::query(
            "INSERT INTO consent_individuals (id, external_id, external_id_type, identity_provider_id, account_id, created_at) \
             VALUES ($1, $2, 'tongban_account', 'tongban', $2, $3)",
        )
        .bind(&id)
        .bind(account_id)
        .bind(millis(now))
        .execute(&mut *c)
        .await?;
        Ok(id)
    }

    /// Registers an individual by external id (GovStack `POST /service/individual/`);
    /// a duplicate external id is refused.
    pub async fn create_individual(&self, individual: &Value, now: DateTime<Utc>) -> Result<IndividualRef, Error> {
        let text = |k: &str| {
            individual.get(k).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
        };
        let (external_id, external_id_type) = (text("externalId"), text("externalIdType"));
        let mut c = self.conn().await?;
        if external_id.is_some() {
            let dup = sqlx::query(
                "SELECT id FROM consent_individuals WHERE external_id = $1 AND COALESCE(external_id_type, '') = COALESCE($2, '')",
            )
            .bind(&external_id)
            .bind(&external_id_type)
            .fetch_optional(&mut *c)
            .await?;
            if dup.is_some() {
                return Err(Error::conflict("individual_exists", "an individual with this external id already exists"));
            }
        }
        let id = new_id();
        let provider = text("identityProviderId");
        sqlx::query(
            "INSERT INTO consent_individuals (id, external_id, external_id_type, identity_provider_id, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&id)
        .bind(&external_id)
        .bind(&external_id_type)
        .bind(&provider)
        .bind(millis(now))
        .execute(&mut *c)
        .await?;
        Ok(IndividualRef { id, external_id, external_id_type, identity_provider_id: provider })
    }

    pub async fn individual(&self, id: &str) -> Result<IndividualRef, Error> {
        let mut c = self.conn().await?;
        let r = sqlx::query(
            "SELECT id, external_id, external_id_type, identity_provider_id FROM consent_individuals WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&mut *c)
        .await?
        .ok_or(Error::NotFound("individual"))?;
        Ok(IndividualRef {
            id: r.try_get("id")?,
            external_id: r.try_get("external_id")?,
            external_id_type: r.try_get("external_id_type")?,
            identity_provider_id: r.try_get("identity_provider_id")?,
        })
    }

    /// Whether the account holds a valid opt-in for the data agreement of a sharing
    /// agreement.
    pub(super) async fn consent_valid_in(
        &self,
        c: &mut AnyConnection,
        sharing_id: &str,
        account_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, Error> {
        let row = sqlx::query(
            "SELECT r.opt_in, r.expires_at FROM consent_records r \
             JOIN consent_data_agreements d ON d.id = r.data_agreement_id \
             JOIN consent_individuals i ON i.id = r.individual_id \
             WHERE d.sharing_agreement_id = $1 AND d.active = 1 AND i.account_id = $2",
        )
        .bind(sharing_id)
        .bind(account_id)
        .fetch_optional(c)
        .await?;
        Ok(match row {
            Some(r) => {
                r.try_get::<i64, _>("opt_in")? != 0
                    && r.try_get::<Option<i64>, _>("expires_at")?.is_none_or(|t| t > millis(now))
            }
            None => false,
        })
    }

    /// Sets an individual's opt-in for a data agreement (grant or withdraw); the record
    /// expires with the agreement it serves. Returns (record, revision) in GovStack shape.
    pub async fn set_consent_for(
        &self,
        individual_id: &str,
        data_agreement_id: &str,
        opt_in: bool,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<(Value, Value), Error> {
        let mut tx = self.inner.db.begin().await?;
        let da = sqlx::query(
            "SELECT d.body, d.active, s.valid_until FROM consent_data_agreements d \
             LEFT JOIN sharing_agreements s ON s.id = d.sharing_agreement_id WHERE d.id = $1 AND d.deleted_at IS NULL",
        )
        .bind(data_agreement_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Error::NotFound("data agreement"))?;
        if opt_in && da.try_get::<i64, _>("active")? == 0 {
            return Err(Error::conflict("agreement_inactive", "this data agreement takes no new consent"));
        }
        let expires: Option<i64> = da.try_get("valid_until")?;
        let revision_id: String = sqlx::query(
            "SELECT id FROM consent_revisions WHERE object_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1",
        )
        .bind(data_agreement_id)
        .fetch_one(&mut *tx)
        .await?
        .try_get("id")?;
        let existing = sqlx::query(
            "SELECT id, created_at FROM consent_records WHERE data_agreement_id = $1 AND individual_id = $2",
        )
        .bind(data_agreement_id)
        .bind(individual_id)
        .fetch_optional(&mut *tx)
        .await?;
        let (id, created) = match existing {
            Some(r) => (r.try_get::<String, _>("id")?, r.try_get::<i64, _>("created_at")?),
            None => (new_id(), millis(now)),
        };
        sqlx::query(
            "INSERT INTO consent_records (id, data_agreement_id, agreement_revision, individual_id, opt_in, state, expires_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 'unsigned', $6, $7, $8) \
             ON CONFLICT (data_agreement_id, individual_id) DO UPDATE SET opt_in = $5, agreement_revision = $3, expires_at = $6, updated_at = $8",
        )
        .bind(&id)
        .bind(data_agreement_id)
        .bind(&revision_id)
        .bind(individual_id)
        .bind(i64::from(opt_in))
        .bind(expires)
        .bind(created)
        .bind(millis(now))
        .execute(&mut *tx)
        .await?;
        let record = self.record_json_in(&mut tx, &id).await?;
        let revision = revise(&mut tx, "ConsentRecord", &id, &record, by, now).await?;
        let account: Option<String> = sqlx::query("SELECT account_id FROM consent_individuals WHERE id = $1")
            .bind(individual_id)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get("account_id"))
            .transpose()?
            .flatten();
        let mut entry =
            ledger::Entry::new(if opt_in { "consent_granted" } else { "consent_withdrawn" }, "success", now);
        entry.actor = Some(by.to_string());
        entry.subject = account;
        entry.object = Some(format!("data_agreement:{data_agreement_id}"));
        ledger::append_in(&mut tx, Log::Audit, &entry).await?;
        tx.commit().await?;
        Ok((record, revision))
    }

    async fn record_json_in(&self, c: &mut AnyConnection, id: &str) -> Result<Value, Error> {
        let r = sqlx::query(
            "SELECT r.id, r.data_agreement_id, r.agreement_revision, r.individual_id, r.opt_in, r.state, r.expires_at, \
             v.hash FROM consent_records r JOIN consent_revisions v ON v.id = r.agreement_revision WHERE r.id = $1",
        )
        .bind(id)
        .fetch_optional(c)
        .await?
        .ok_or(Error::NotFound("consent record"))?;
        let mut v = json!({
            "id": r.try_get::<String, _>("id")?,
            "dataAgreement": {"id": r.try_get::<String, _>("data_agreement_id")?},
            "dataAgreementRevision": {"id": r.try_get::<String, _>("agreement_revision")?},
            "dataAgreementRevisionHash": r.try_get::<String, _>("hash")?,
            "individual": {"id": r.try_get::<String, _>("individual_id")?},
            "optIn": r.try_get::<i64, _>("opt_in")? != 0,
            "state": r.try_get::<String, _>("state")?,
        });
        if let Some(t) = r.try_get::<Option<i64>, _>("expires_at")? {
            set(&mut v, "x-expiresAt", Value::String(iso(from_millis(t))));
        }
        Ok(v)
    }

    /// An individual's consent records.
    pub async fn consent_records(&self, individual_id: &str) -> Result<Vec<Value>, Error> {
        let mut c = self.conn().await?;
        let ids: Vec<String> =
            sqlx::query("SELECT id FROM consent_records WHERE individual_id = $1 ORDER BY created_at, id")
                .bind(individual_id)
                .fetch_all(&mut *c)
                .await?
                .iter()
                .map(|r| r.try_get("id"))
                .collect::<Result<_, _>>()?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.record_json_in(&mut c, &id).await?);
        }
        Ok(out)
    }

    /// The individual of a signed-in person (created on first use).
    pub async fn my_individual(&self, me: &Principal, now: DateTime<Utc>) -> Result<String, Error> {
        let mut c = self.conn().await?;
        self.individual_of_in(&mut c, &me.account_id, now).await
    }

    /// 我的授权: the purposes that ask for the signed-in person's consent, and their answer.
    pub async fn my_consents(&self, me: &Principal, now: DateTime<Utc>) -> Result<Vec<ConsentView>, Error> {
        let mut c = self.conn().await?;
        let rows = sqlx::query(
            "SELECT d.id, d.body, r.opt_in, r.expires_at, r.updated_at FROM consent_data_agreements d \
             LEFT JOIN consent_individuals i ON i.account_id = $1 \
             LEFT JOIN consent_records r ON r.data_agreement_id = d.id AND r.individual_id = i.id \
             WHERE d.deleted_at IS NULL AND (d.active = 1 OR r.id IS NOT NULL) ORDER BY d.created_at DESC, d.id",
        )
        .bind(&me.account_id)
        .fetch_all(&mut *c)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let body: Value = serde_json::from_str(&r.try_get::<String, _>("body")?).map_err(internal)?;
            let expires: Option<i64> = r.try_get("expires_at")?;
            let granted =
                r.try_get::<Option<i64>, _>("opt_in")?.unwrap_or(0) != 0 && expires.is_none_or(|t| t > millis(now));
            let text = |p: &str| body.pointer(p).and_then(Value::as_str).unwrap_or_default().to_string();
            out.push(ConsentView {
                data_agreement: r.try_get("id")?,
                purpose: text("/purpose"),
                requester: text("/controller/name"),
                registry: text("/x-tongban/registryName"),
                fields: body
                    .get("dataAttributes")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter().filter_map(|x| x.get("name").and_then(Value::as_str).map(str::to_string)).collect()
                    })
                    .unwrap_or_default(),
                granted,
                expires_at: expires.map(from_millis),
                updated_at: r.try_get::<Option<i64>, _>("updated_at")?.map(from_millis),
            });
        }
        Ok(out)
    }

    /// The signed-in person grants or withdraws consent for one purpose.
    pub async fn set_my_consent(
        &self,
        me: &Principal,
        data_agreement_id: &str,
        opt_in: bool,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let individual = self.my_individual(me, now).await?;
        self.set_consent_for(&individual, data_agreement_id, opt_in, &me.account_id, now).await?;
        Ok(())
    }
}
