//! E-certificates (电子证照): a structured document signed with Ed25519 by the issuing
//! department's key (derived from the master key, one per department), appended to the
//! public `certificates` ledger, verifiable by anyone from its id.

use kernel::audit::{Action, Outcome};
use kernel::error::ErrorCode;
use std::collections::BTreeMap;

use chrono::{DateTime, Months, Utc};
use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::AnyConnection;

use super::{Error, Services, internal, repo};
use identity::Capability;
use kernel::authz::CertificateRevoke;
use kernel::db::{from_millis, millis, new_id};
use ledger::{self, Log};

/// The signed part of a certificate. Serialised with sorted keys (field order here), so the
/// signature covers exactly these bytes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct CertificateDocument {
    pub department_id: String,
    pub department_key: String,
    /// Form fields named by the service's certificate spec.
    #[schema(value_type = Object)]
    pub fields: BTreeMap<String, Value>,
    pub holder: String,
    pub holder_id: String,
    pub id: String,
    pub issued_at: String,
    pub name_en: String,
    pub name_zh: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub valid_until: Option<String>,
}

/// A certificate as its holder sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CertificateView {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub name_zh: String,
    pub name_en: String,
    #[schema(value_type = Object)]
    pub fields: BTreeMap<String, Value>,
    /// What each field is called, from the form of the service that issued it.
    pub field_titles: BTreeMap<String, FieldTitle>,
    pub issued_at: DateTime<Utc>,
    pub valid_until: Option<DateTime<Utc>>,
    pub revoked: bool,
    pub valid: bool,
}

/// A certificate field's name in both languages.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FieldTitle {
    pub zh: String,
    pub en: String,
}

/// What the public verification page and API say about a certificate id.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CertificateCheck {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub name_zh: String,
    pub name_en: String,
    /// Masked (王*).
    pub holder: String,
    pub issuer: String,
    pub issued_at: DateTime<Utc>,
    pub valid_until: Option<DateTime<Utc>>,
    pub signature_valid: bool,
    pub revoked: bool,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revocation_reason: Option<String>,
    pub expired: bool,
    /// Signature good, not revoked, not expired.
    pub valid: bool,
    /// Index of its entry in the `certificates` ledger.
    pub ledger_index: i64,
    /// SHA-256 of the signed document, as recorded in the ledger entry.
    pub document_sha256: String,
    pub department_key: String,
}

/// A valid certificate's fields, for prefill and material replacement.
pub(super) struct HeldCertificate {
    pub kind: String,
    pub fields: BTreeMap<String, Value>,
}

kernel::area! {
    /// E-certificates: department keys, a holder's certificates, verification and revocation.
    Certificates of Services
}

impl Certificates<'_> {
    fn department_key(&self, department_id: &str) -> SigningKey {
        let seed = self.inner.master.derive(&format!("certificates/{department_id}"));
        SigningKey::from_bytes(&seed)
    }

    /// The public key a department signs certificates with (base64).
    pub fn department_public_key(&self, department_id: &str) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(self.department_key(department_id).verifying_key().as_bytes())
    }

    /// Issues the certificates an approval yields, in the approving transaction.
    pub(super) async fn issue_for(
        &self,
        tx: &mut AnyConnection,
        row: &repo::ApplicationRow,
        data: &Value,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let mut members = Vec::new();
        match &row.bundle_code {
            Some(code) => {
                for s in Services::bundle_in(tx, code).await?.services {
                    members.push(self.service_in(tx, &s).await?);
                }
            }
            None => members.push(self.service_version(tx, &row.service_id, row.service_version).await?),
        }
        let holder = self.inner.identity.accounts().display_name_in(tx, &row.applicant_id).await?;
        for m in members {
            let Some(spec) = &m.spec.certificate else { continue };
            let fields: BTreeMap<String, Value> =
                spec.fields.iter().filter_map(|f| data.get(f).map(|v| (f.clone(), v.clone()))).collect();
            let valid_until =
                (spec.valid_years > 0).then(|| now.checked_add_months(Months::new(spec.valid_years * 12))).flatten();
            let id = new_id();
            let doc = CertificateDocument {
                department_id: row.department_id.clone(),
                department_key: self.department_public_key(&row.department_id),
                fields,
                holder: holder.clone(),
                holder_id: row.applicant_id.clone(),
                id: id.clone(),
                issued_at: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                name_en: spec.name_en.clone(),
                name_zh: spec.name_zh.clone(),
                kind: spec.kind.clone(),
                valid_until: valid_until.map(|v| v.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            };
            let body = serde_json::to_string(&doc).map_err(internal)?;
            let signature = self.department_key(&row.department_id).sign(body.as_bytes());
            // The public log carries no personal data: the id, the type and the document's hash.
            let mut entry = ledger::Entry::new(Action::CertificateIssued, Outcome::Success, now);
            entry.object = Some(format!("certificate:{id}"));
            entry.detail = Some(format!("{} sha256:{}", spec.kind, kernel::secrets::sha256_hex(&body)));
            entry.actor = Some(row.department_id.clone());
            let index = ledger::append_in(tx, Log::Certificates, &entry).await?;
            repo::insert_certificate(
                tx,
                &repo::CertificateRow {
                    id,
                    kind: spec.kind.clone(),
                    holder_id: row.applicant_id.clone(),
                    department_id: row.department_id.clone(),
                    application_id: Some(row.id.clone()),
                    body,
                    signature: hex::encode(signature.to_bytes()),
                    issued_at: millis(now),
                    valid_until: valid_until.map(millis),
                    revoked_at: None,
                    revocation_reason: None,
                    ledger_index: i64::try_from(index).unwrap_or(i64::MAX),
                },
            )
            .await?;
        }
        Ok(())
    }

    pub(super) async fn valid_certificates_of(
        &self,
        holder_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<HeldCertificate>, Error> {
        Ok(self
            .my_certificates_by_id(holder_id, now)
            .await?
            .into_iter()
            .filter(|c| c.valid)
            .map(|c| HeldCertificate { kind: c.kind, fields: c.fields })
            .collect())
    }

    async fn my_certificates_by_id(&self, holder_id: &str, now: DateTime<Utc>) -> Result<Vec<CertificateView>, Error> {
        // Read, then let the connection go: the titles below take one of their own.
        let rows = repo::certificates_of(&mut *self.conn().await?, holder_id).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let doc: CertificateDocument = serde_json::from_str(&r.body).map_err(internal)?;
            let expired = r.valid_until.is_some_and(|v| v < millis(now));
            let field_titles = match &r.application_id {
                Some(application_id) => self.field_titles(application_id, &doc.fields).await?,
                None => BTreeMap::new(),
            };
            out.push(CertificateView {
                id: r.id,
                kind: r.kind,
                name_zh: doc.name_zh,
                name_en: doc.name_en,
                fields: doc.fields,
                field_titles,
                issued_at: from_millis(r.issued_at),
                valid_until: r.valid_until.map(from_millis),
                revoked: r.revoked_at.is_some(),
                valid: r.revoked_at.is_none() && !expired,
            });
        }
        Ok(out)
    }

    /// The titles of a certificate's fields in the form of the application that issued it.
    async fn field_titles(
        &self,
        application_id: &str,
        fields: &BTreeMap<String, Value>,
    ) -> Result<BTreeMap<String, FieldTitle>, Error> {
        let service = {
            let mut c = self.conn().await?;
            let app = repo::application(&mut c, application_id).await?.ok_or(Error::NotFound("application"))?;
            self.service_version(&mut c, &app.service_id, app.service_version).await?
        };
        // The form may need a connection of its own to load: none is held here.
        let form = self.form(&service.form_id).await?;
        Ok(fields
            .keys()
            .filter_map(|k| {
                form.field(k).map(|f| (k.clone(), FieldTitle { zh: f.title_zh.clone(), en: f.title_en.clone() }))
            })
            .collect())
    }

    /// The caller's certificates, newest first.
    pub async fn my_certificates(
        &self,
        me: &identity::Principal,
        now: DateTime<Utc>,
    ) -> Result<Vec<CertificateView>, Error> {
        self.my_certificates_by_id(&me.account_id, now).await
    }

    /// Public verification: signature, revocation, expiry and the ledger entry's position.
    pub async fn verify_certificate(&self, id: &str, now: DateTime<Utc>) -> Result<CertificateCheck, Error> {
        let mut c = self.conn().await?;
        let r = repo::certificate(&mut c, id).await?.ok_or(Error::NotFound("certificate"))?;
        let doc: CertificateDocument = serde_json::from_str(&r.body).map_err(internal)?;
        let key = self.department_key(&r.department_id).verifying_key();
        let signature_valid = verify_signature(&key, &r.body, &r.signature);
        drop(c);
        let issuer = self
            .inner
            .identity
            .organisation()
            .department_name(&r.department_id)
            .await?
            .ok_or_else(|| Error::Internal(format!("certificate {id} names an unknown department")))?;
        let expired = r.valid_until.is_some_and(|v| v < millis(now));
        let revoked = r.revoked_at.is_some();
        Ok(CertificateCheck {
            id: r.id,
            kind: r.kind,
            name_zh: doc.name_zh,
            name_en: doc.name_en,
            holder: protect::Mask::Name.apply(&doc.holder),
            issuer,
            issued_at: from_millis(r.issued_at),
            valid_until: r.valid_until.map(from_millis),
            signature_valid,
            revoked,
            revoked_at: r.revoked_at.map(from_millis),
            revocation_reason: r.revocation_reason,
            expired,
            valid: signature_valid && !revoked && !expired,
            ledger_index: r.ledger_index,
            document_sha256: kernel::secrets::sha256_hex(&r.body),
            department_key: doc.department_key,
        })
    }

    /// Revokes a certificate the caller's department issued (recorded in the public log).
    pub async fn revoke_certificate(
        &self,
        cap: &Capability<CertificateRevoke>,
        id: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 200 {
            return Err(Error::invalid("reason", "why it is revoked, at most 200 characters"));
        }
        let mut tx = self.inner.db.begin().await?;
        let r = repo::certificate(&mut tx, id).await?.ok_or(Error::NotFound("certificate"))?;
        if cap.department_id() != Some(r.department_id.as_str()) {
            return Err(Error::NotFound("certificate of your department"));
        }
        if !repo::revoke_certificate(&mut tx, id, reason, millis(now)).await? {
            return Err(Error::conflict(ErrorCode::AlreadyRevoked, "this certificate is already revoked"));
        }
        let mut entry = ledger::Entry::new(Action::CertificateRevoked, Outcome::Success, now);
        entry.object = Some(format!("certificate:{id}"));
        entry.actor = Some(r.department_id.clone());
        entry.detail = Some(reason.chars().take(200).collect());
        ledger::append_in(&mut tx, Log::Certificates, &entry).await?;
        tx.commit().await?;
        Ok(())
    }
}

fn verify_signature(key: &VerifyingKey, body: &str, signature_hex: &str) -> bool {
    let Ok(bytes) = hex::decode(signature_hex) else { return false };
    let Ok(sig) = ed25519_dalek::Signature::from_slice(&bytes) else { return false };
    key.verify(body.as_bytes(), &sig).is_ok()
}
