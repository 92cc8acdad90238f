//! Consent (GovStack Consent building block): policies, data agreements, individuals and
//! consent records. Every change is a revision (a snapshot and its SHA-1, linked to the
//! previous one). A sharing agreement that rests on consent opens a data agreement; the
//! exchange refuses a call about a person without their valid opt-in, and a withdrawal
//! takes effect on the next call (nothing is cached).

use chrono::{DateTime, SecondsFormat, Utc};
use kernel::audit::{Action, Outcome};
use kernel::error::ErrorCode;
use serde::Serialize;
use serde_json::{Value, json};
use sha1::{Digest, Sha1};
use sqlx::AnyConnection;

use super::repo::{self, AgreementRow, ConsentRecordRow, IndividualRow, RegistryRow, RevisionRow};
use super::{Error, Exchange, internal, set};
use identity::{CallingSystem, Capability, Principal};
use kernel::authz::ConsentManage;
use kernel::db::{from_millis, millis, new_id};
use ledger::{self, Log};

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

/// Who reads consent's configuration and individuals: the organisation's consent
/// administrator, or a calling system proven at the door (acting for an individual). The
/// reads take one, so none happens for a caller nobody checked.
#[derive(Clone, Copy)]
pub enum ConsentReader<'a> {
    Administrator(&'a Capability<ConsentManage>),
    System(&'a CallingSystem),
}

/// The two documents an organisation's consent administrator writes, each with its own
/// revisions: a policy, and a data agreement that names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentDocument {
    Policy,
    DataAgreement,
}

impl ConsentDocument {
    /// The key the building block wraps the document in (`{"policy": …}`).
    pub fn key(self) -> &'static str {
        match self {
            ConsentDocument::Policy => "policy",
            ConsentDocument::DataAgreement => "dataAgreement",
        }
    }
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

pub(super) fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A GovStack Revision object.
pub(super) fn revision_json(r: &RevisionRow) -> Value {
    let mut v = json!({
        "id": r.id,
        "schemaName": r.schema_name,
        "objectId": r.object_id,
        "signedWithoutObjectId": false,
        "serializedSnapshot": r.snapshot,
        "serializedHash": r.hash,
        "timestamp": iso(from_millis(r.created_at)),
    });
    if let Some(p) = &r.predecessor_hash {
        set(&mut v, "predecessorHash", Value::String(p.clone()));
    }
    if let Some(by) = &r.authorized_by {
        set(&mut v, "authorizedByOther", Value::String(by.clone()));
    }
    v
}

/// Writes a revision of `object`, linked to the previous one.
pub(super) async fn revise(
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
    let previous = repo::latest_revision(c, object_id).await?;
    let row = RevisionRow {
        id: new_id(),
        schema_name: schema.into(),
        object_id: object_id.into(),
        hash: hex::encode(Sha1::digest(snapshot.as_bytes())),
        snapshot,
        predecessor_hash: previous.map(|p| p.hash),
        authorized_by: Some(by.into()),
        created_at: millis(now),
    };
    repo::insert_revision(c, &row).await?;
    Ok(revision_json(&row))
}

async fn latest_revision(c: &mut AnyConnection, object_id: &str) -> Result<Value, Error> {
    Ok(repo::latest_revision(c, object_id).await?.as_ref().map(revision_json).unwrap_or(Value::Null))
}

pub(super) fn parse(body: &str) -> Result<Value, Error> {
    serde_json::from_str(body).map_err(internal)
}

fn required_text(o: &Value, key: &str, field: &'static str) -> Result<String, Error> {
    match o.get(key).and_then(Value::as_str).map(str::trim) {
        Some(v) if !v.is_empty() => Ok(v.to_string()),
        _ => Err(Error::invalid(field, format!("{key} is required"))),
    }
}

fn individual_ref(r: IndividualRow) -> IndividualRef {
    IndividualRef {
        id: r.id,
        external_id: r.external_id,
        external_id_type: r.external_id_type,
        identity_provider_id: r.identity_provider_id,
    }
}

/// A GovStack ConsentRecord object.
pub(super) fn record_json(r: &ConsentRecordRow) -> Value {
    let mut v = json!({
        "id": r.id,
        "dataAgreement": {"id": r.data_agreement_id},
        "dataAgreementRevision": {"id": r.agreement_revision},
        "dataAgreementRevisionHash": r.revision_hash,
        "individual": {"id": r.individual_id},
        // Flat ids as well, as the building block's clients read them.
        "dataAgreementId": r.data_agreement_id,
        "dataAgreementRevisionId": r.agreement_revision,
        "individualId": r.individual_id,
        "optIn": r.opt_in,
        "state": r.state,
    });
    if let Some(t) = r.expires_at {
        set(&mut v, "x-expiresAt", Value::String(iso(from_millis(t))));
    }
    v
}

/// What a webhook is told of a consent record.
pub(super) fn event_data(r: &ConsentRecordRow) -> Value {
    json!({"consentRecordId": r.id, "dataAgreementId": r.data_agreement_id, "individualId": r.individual_id,
        "optIn": r.opt_in})
}

kernel::area! {
    /// Consent (GovStack Consent): policies, data agreements, individuals and their consent records.
    Consent of Exchange
}

impl Consent<'_> {
    // --- policies and data agreements (organisation admin) -----------------------------------

    /// Creates (`id` None) or replaces a document; returns (document, revision).
    pub async fn put(
        &self,
        doc: ConsentDocument,
        cap: &Capability<ConsentManage>,
        id: Option<&str>,
        body: Value,
        now: DateTime<Utc>,
    ) -> Result<(Value, Value), Error> {
        match doc {
            ConsentDocument::Policy => self.put_policy(cap, id, body, now).await,
            ConsentDocument::DataAgreement => self.put_data_agreement(cap, id, body, now).await,
        }
    }

    /// The documents of a kind (not deleted), oldest first.
    pub async fn documents(&self, doc: ConsentDocument, cap: &Capability<ConsentManage>) -> Result<Vec<Value>, Error> {
        match doc {
            ConsentDocument::Policy => self.policies(cap).await,
            ConsentDocument::DataAgreement => self.data_agreements(cap).await,
        }
    }

    /// A document and its latest revision.
    pub async fn document(
        &self,
        doc: ConsentDocument,
        reader: ConsentReader<'_>,
        id: &str,
    ) -> Result<(Value, Value), Error> {
        match doc {
            ConsentDocument::Policy => self.policy(reader, id).await,
            ConsentDocument::DataAgreement => self.data_agreement(reader, id).await,
        }
    }

    /// Deletes a document; returns the deletion's revision.
    pub async fn delete(
        &self,
        doc: ConsentDocument,
        cap: &Capability<ConsentManage>,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Value, Error> {
        match doc {
            ConsentDocument::Policy => self.delete_policy(cap, id, now).await,
            ConsentDocument::DataAgreement => self.delete_data_agreement(cap, id, now).await,
        }
    }

    /// Creates (`id` None) or replaces a policy; returns (policy, revision).
    async fn put_policy(
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
                repo::policy(&mut tx, id).await?.ok_or(Error::NotFound("policy"))?;
                id.to_string()
            }
            None => new_id(),
        };
        let mut policy = policy;
        set(&mut policy, "id", Value::String(id.clone()));
        repo::upsert_policy(&mut tx, &id, &policy.to_string(), millis(now)).await?;
        let revision = revise(&mut tx, "Policy", &id, &policy, cap.account_id(), now).await?;
        tx.commit().await?;
        Ok((policy, revision))
    }

    /// Policies (not deleted), oldest first.
    async fn policies(&self, _cap: &Capability<ConsentManage>) -> Result<Vec<Value>, Error> {
        let mut c = self.conn().await?;
        repo::policies(&mut c).await?.iter().map(|b| parse(b)).collect()
    }

    /// A policy and its latest revision.
    async fn policy(&self, _reader: ConsentReader<'_>, id: &str) -> Result<(Value, Value), Error> {
        let mut c = self.conn().await?;
        let policy = parse(&repo::policy(&mut c, id).await?.ok_or(Error::NotFound("policy"))?)?;
        Ok((policy, latest_revision(&mut c, id).await?))
    }

    /// Deletes a policy that no active data agreement uses; returns the deletion's revision.
    async fn delete_policy(
        &self,
        cap: &Capability<ConsentManage>,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Value, Error> {
        let mut tx = self.inner.db.begin().await?;
        let policy = parse(&repo::policy(&mut tx, id).await?.ok_or(Error::NotFound("policy"))?)?;
        if repo::policy_users(&mut tx, id).await? > 0 {
            return Err(Error::conflict(ErrorCode::PolicyInUse, "an active data agreement uses this policy"));
        }
        repo::delete_policy(&mut tx, id, millis(now)).await?;
        let deleted = json!({"deleted": true, "policy": policy});
        let revision = revise(&mut tx, "Policy", id, &deleted, cap.account_id(), now).await?;
        tx.commit().await?;
        Ok(revision)
    }

    /// Creates or replaces a data agreement; returns (data agreement, revision).
    async fn put_data_agreement(
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
            let body = repo::policy(c, pid)
                .await?
                .ok_or_else(|| Error::invalid("dataAgreement", format!("no policy {pid}")))?;
            set(&mut agreement, "policy", parse(&body)?);
        }
        let id = match id {
            Some(id) => {
                repo::data_agreement(c, id).await?.ok_or(Error::NotFound("data agreement"))?;
                id.to_string()
            }
            None => new_id(),
        };
        set(&mut agreement, "id", Value::String(id.clone()));
        let active = agreement.get("active").and_then(Value::as_bool).unwrap_or(true);
        set(&mut agreement, "active", Value::Bool(active));
        let body = agreement.to_string();
        repo::upsert_data_agreement(c, &id, &body, policy_id.as_deref(), active, sharing_agreement, millis(now))
            .await?;
        let revision = revise(c, "DataAgreement", &id, &agreement, by, now).await?;
        Ok((agreement, revision))
    }

    async fn data_agreements(&self, _cap: &Capability<ConsentManage>) -> Result<Vec<Value>, Error> {
        let mut c = self.conn().await?;
        repo::data_agreements(&mut c).await?.iter().map(|b| parse(b)).collect()
    }

    async fn data_agreement(&self, _reader: ConsentReader<'_>, id: &str) -> Result<(Value, Value), Error> {
        let mut c = self.conn().await?;
        let (body, _, _) = repo::data_agreement(&mut c, id).await?.ok_or(Error::NotFound("data agreement"))?;
        Ok((parse(&body)?, latest_revision(&mut c, id).await?))
    }

    async fn delete_data_agreement(
        &self,
        cap: &Capability<ConsentManage>,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Value, Error> {
        let mut tx = self.inner.db.begin().await?;
        let (body, _, _) = repo::data_agreement(&mut tx, id).await?.ok_or(Error::NotFound("data agreement"))?;
        repo::delete_data_agreement(&mut tx, id, millis(now)).await?;
        let deleted = json!({"deleted": true, "dataAgreement": parse(&body)?});
        let revision = revise(&mut tx, "DataAgreement", id, &deleted, cap.account_id(), now).await?;
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
        let consumer = self
            .inner
            .identity
            .organisation()
            .department_name_in(c, &sharing.consumer_department_id)
            .await?
            .unwrap_or_default();
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
        Ok(repo::deactivate_data_agreements_of(c, sharing_id).await?)
    }

    // --- individuals and their records ---------------------------------------------------

    /// The Consent individual of a platform account, created on first use.
    async fn individual_of_in(
        &self,
        c: &mut AnyConnection,
        account_id: &str,
        now: DateTime<Utc>,
    ) -> Result<String, Error> {
        if let Some(found) = repo::individual_of_account(c, account_id).await? {
            return Ok(found.id);
        }
        let row = IndividualRow {
            id: new_id(),
            external_id: Some(account_id.into()),
            external_id_type: Some("tongban_account".into()),
            identity_provider_id: Some("tongban".into()),
            account_id: Some(account_id.into()),
        };
        repo::insert_individual(c, &row, millis(now)).await?;
        Ok(row.id)
    }

    /// Registers an individual by external id (GovStack `POST /service/individual/`);
    /// a duplicate external id is refused.
    pub async fn create_individual(
        &self,
        _by: ConsentReader<'_>,
        individual: &Value,
        now: DateTime<Utc>,
    ) -> Result<IndividualRef, Error> {
        let text = |k: &str| {
            individual.get(k).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
        };
        let row = IndividualRow {
            id: new_id(),
            external_id: text("externalId"),
            external_id_type: text("externalIdType"),
            identity_provider_id: text("identityProviderId"),
            account_id: None,
        };
        let mut c = self.conn().await?;
        if let Some(external) = &row.external_id
            && repo::individual_by_external(&mut c, external, row.external_id_type.as_deref()).await?.is_some()
        {
            return Err(Error::conflict(
                ErrorCode::IndividualExists,
                "an individual with this external id already exists",
            ));
        }
        repo::insert_individual(&mut c, &row, millis(now)).await?;
        Ok(individual_ref(row))
    }

    pub async fn individual(&self, _reader: ConsentReader<'_>, id: &str) -> Result<IndividualRef, Error> {
        let mut c = self.conn().await?;
        Ok(individual_ref(repo::individual(&mut c, id).await?.ok_or(Error::NotFound("individual"))?))
    }

    pub async fn individuals(&self, _cap: &Capability<ConsentManage>) -> Result<Vec<IndividualRef>, Error> {
        let mut c = self.conn().await?;
        Ok(repo::individuals(&mut c).await?.into_iter().map(individual_ref).collect())
    }

    /// Changes an individual's external identity (GovStack `PUT /service/individual/{id}/`).
    pub async fn update_individual(
        &self,
        _by: &CallingSystem,
        id: &str,
        individual: &Value,
    ) -> Result<IndividualRef, Error> {
        let text = |k: &str| {
            individual.get(k).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
        };
        let mut tx = self.inner.db.begin().await?;
        let mut row = repo::individual(&mut tx, id).await?.ok_or(Error::NotFound("individual"))?;
        row.external_id = text("externalId").or(row.external_id);
        row.external_id_type = text("externalIdType").or(row.external_id_type);
        row.identity_provider_id = text("identityProviderId").or(row.identity_provider_id);
        if let Some(external) = &row.external_id
            && repo::individual_by_external(&mut tx, external, row.external_id_type.as_deref())
                .await?
                .is_some_and(|other| other.id != row.id)
        {
            return Err(Error::conflict(
                ErrorCode::IndividualExists,
                "an individual with this external id already exists",
            ));
        }
        repo::update_individual(&mut tx, &row).await?;
        tx.commit().await?;
        Ok(individual_ref(row))
    }

    /// Every revision of a policy, data agreement or consent record, oldest first.
    pub async fn revisions(&self, _cap: &Capability<ConsentManage>, object_id: &str) -> Result<Vec<Value>, Error> {
        let mut c = self.conn().await?;
        let rows = repo::revisions_of(&mut c, object_id).await?;
        if rows.is_empty() {
            return Err(Error::NotFound("revision"));
        }
        Ok(rows.iter().map(revision_json).collect())
    }

    /// An individual's consent record for a data agreement.
    pub async fn consent_record_for(&self, individual_id: &str, data_agreement_id: &str) -> Result<Value, Error> {
        let mut c = self.conn().await?;
        let row = repo::consent_record(&mut c, data_agreement_id, individual_id)
            .await?
            .ok_or(Error::NotFound("consent record"))?;
        Ok(record_json(&row))
    }

    /// Grants or withdraws by the record's id; the individual is the record's own.
    pub async fn update_consent_record(
        &self,
        record_id: &str,
        opt_in: bool,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<(Value, Value), Error> {
        let mut tx = self.inner.db.begin().await?;
        let row = repo::consent_record_by_id(&mut tx, record_id).await?.ok_or(Error::NotFound("consent record"))?;
        let answer = self.set_consent_in(&mut tx, &row.individual_id, &row.data_agreement_id, opt_in, by, now).await?;
        tx.commit().await?;
        Ok(answer)
    }

    /// Withdraws every consent an individual has given (GovStack `DELETE
    /// /service/individual/record/`); the records and their revisions stay as history.
    /// All at once: a failure withdraws nothing.
    pub async fn withdraw_all(&self, individual_id: &str, by: &str, now: DateTime<Utc>) -> Result<usize, Error> {
        let mut tx = self.inner.db.begin().await?;
        repo::individual(&mut tx, individual_id).await?.ok_or(Error::NotFound("individual"))?;
        let given: Vec<ConsentRecordRow> =
            repo::consent_records_of(&mut tx, individual_id).await?.into_iter().filter(|r| r.opt_in).collect();
        for r in &given {
            self.set_consent_in(&mut tx, individual_id, &r.data_agreement_id, false, by, now).await?;
        }
        tx.commit().await?;
        Ok(given.len())
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
        Ok(repo::consent_for_sharing(c, sharing_id, account_id)
            .await?
            .is_some_and(|(opt_in, expires)| opt_in && expires.is_none_or(|t| t > millis(now))))
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
        let answer = self.set_consent_in(&mut tx, individual_id, data_agreement_id, opt_in, by, now).await?;
        tx.commit().await?;
        Ok(answer)
    }

    pub(super) async fn set_consent_in(
        &self,
        tx: &mut AnyConnection,
        individual_id: &str,
        data_agreement_id: &str,
        opt_in: bool,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<(Value, Value), Error> {
        let (_, active, expires) =
            repo::data_agreement(&mut *tx, data_agreement_id).await?.ok_or(Error::NotFound("data agreement"))?;
        if opt_in && !active {
            return Err(Error::conflict(ErrorCode::AgreementInactive, "this data agreement takes no new consent"));
        }
        let individual = repo::individual(&mut *tx, individual_id).await?.ok_or(Error::NotFound("individual"))?;
        let revision =
            repo::latest_revision(&mut *tx, data_agreement_id).await?.ok_or(Error::NotFound("data agreement"))?;
        let existing = repo::consent_record(&mut *tx, data_agreement_id, individual_id).await?;
        let record = ConsentRecordRow {
            id: existing.as_ref().map(|e| e.id.clone()).unwrap_or_else(new_id),
            data_agreement_id: data_agreement_id.into(),
            agreement_revision: revision.id,
            revision_hash: revision.hash,
            individual_id: individual_id.into(),
            opt_in,
            state: "unsigned".into(),
            expires_at: expires,
            created_at: existing.map(|e| e.created_at).unwrap_or(millis(now)),
        };
        repo::upsert_consent_record(&mut *tx, &record, millis(now)).await?;
        let json = record_json(&record);
        let revision = revise(&mut *tx, "ConsentRecord", &record.id, &json, by, now).await?;
        let mut entry = ledger::Entry::new(
            if opt_in { Action::ConsentGranted } else { Action::ConsentWithdrawn },
            Outcome::Success,
            now,
        );
        entry.actor = Some(by.to_string());
        entry.subject = individual.account_id;
        entry.object = Some(format!("data_agreement:{data_agreement_id}"));
        ledger::append_in(&mut *tx, Log::Audit, &entry).await?;
        let event = if opt_in { "consent.allowed" } else { "consent.disallowed" };
        self.webhooks().notify_in(&mut *tx, event, event_data(&record), now).await?;
        Ok((json, revision))
    }

    /// An individual's consent records.
    pub async fn consent_records(&self, individual_id: &str) -> Result<Vec<Value>, Error> {
        let mut c = self.conn().await?;
        Ok(repo::consent_records_of(&mut c, individual_id).await?.iter().map(record_json).collect())
    }

    /// The individual of a signed-in person (created on first use).
    pub async fn my_individual(&self, me: &Principal, now: DateTime<Utc>) -> Result<String, Error> {
        let mut c = self.conn().await?;
        self.individual_of_in(&mut c, &me.account_id, now).await
    }

    /// 我的授权: the purposes that ask for the signed-in person's consent, and their answer.
    pub async fn my_consents(&self, me: &Principal, now: DateTime<Utc>) -> Result<Vec<ConsentView>, Error> {
        let mut c = self.conn().await?;
        let rows = repo::consents_of_account(&mut c, &me.account_id).await?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, body, opt_in, expires, updated) in rows {
            let body = parse(&body)?;
            let granted = opt_in.unwrap_or(false) && expires.is_none_or(|t| t > millis(now));
            let text = |p: &str| body.pointer(p).and_then(Value::as_str).unwrap_or_default().to_string();
            out.push(ConsentView {
                data_agreement: id,
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
                updated_at: updated.map(from_millis),
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
