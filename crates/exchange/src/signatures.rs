//! Signed consent (GovStack Consent signatures) and reads of policies and data agreements as
//! they were at a revision. An individual signs a consent record's serialised form with an
//! Ed25519 key of their own (a wallet's, say); the record is `signed` once the signature
//! checks against that key. Which person holds the key is for the signing system to vouch
//! for: the platform keeps the key, the payload and the signature together, so anyone can
//! check later what was signed and by which key.

use base64::Engine;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, VerifyingKey};
use kernel::error::ErrorCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::consent::{iso, parse, record_json, revision_json};
use super::repo::{self, SignatureRow};
use super::{Error, Exchange};
use kernel::db::{millis, new_id};

/// The one verification method offered: Ed25519 over the UTF-8 bytes of `payload`.
const METHOD: &str = "ed25519";

/// What a signature covers: the object's serialised form and who signs.
struct Signed<'a> {
    verification_payload: &'a str,
    signed_by: &'a str,
    timestamp: &'a str,
    object_reference: Option<&'a str>,
}

impl Signed<'_> {
    /// The fields the payload serialises (GovStack: the signature's fields but `signature`).
    fn payload(&self) -> Value {
        json!({
            "verificationPayload": self.verification_payload,
            "verificationPayloadHash": hex::encode(Sha256::digest(self.verification_payload.as_bytes())),
            "verificationMethod": METHOD,
            "verificationSignedBy": self.signed_by,
            "timestamp": self.timestamp,
            "signedWithoutObjectReference": self.object_reference.is_none(),
            "objectType": "ConsentRecord",
            "objectReference": self.object_reference,
        })
    }

    /// The GovStack Signature object with `payload` as serialised and `signature` given
    /// (empty until signed).
    fn object(&self, payload: &str, signature: &str) -> Value {
        let mut object = self.payload();
        super::set(&mut object, "payload", Value::String(payload.into()));
        super::set(&mut object, "signature", Value::String(signature.into()));
        object
    }

    /// Checks a submitted signature: its `payload` (as the signer serialised it, else ours)
    /// must state exactly these fields, and `signature` must verify over those bytes with
    /// the key in `verificationSignedBy`. Returns the signed object.
    fn verify(&self, submitted: &Value) -> Result<Value, Error> {
        let method = text(submitted, "verificationMethod");
        if !method.is_empty() && !method.eq_ignore_ascii_case(METHOD) {
            return Err(Error::invalid("verificationMethod", format!("{method}: only {METHOD} is accepted")));
        }
        let expected = self.payload();
        let payload = match submitted.get("payload").and_then(Value::as_str).unwrap_or_default() {
            "" => expected.to_string(),
            given => {
                let stated: Value = serde_json::from_str(given)
                    .map_err(|_| Error::invalid("payload", "the payload is the JSON the signer signed"))?;
                if stated != expected {
                    return Err(Error::invalid("payload", "the payload does not state this record, signer and time"));
                }
                given.to_string()
            }
        };
        let key: [u8; 32] = decode(self.signed_by)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| Error::invalid("verificationSignedBy", "the signer's Ed25519 public key, hex or base64"))?;
        let key = VerifyingKey::from_bytes(&key)
            .map_err(|_| Error::invalid("verificationSignedBy", "not an Ed25519 public key"))?;
        let given = text(submitted, "signature");
        let signature: [u8; 64] = decode(given)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| Error::invalid("signature", "the Ed25519 signature of payload, hex or base64"))?;
        key.verify_strict(payload.as_bytes(), &Signature::from_bytes(&signature))
            .map_err(|_| Error::invalid("signature", "the signature does not match the payload and key"))?;
        Ok(self.object(&payload, given))
    }
}

/// Whether a stored Signature object of a record still holds: its `signature` verifies
/// over its `payload` with the key in `verificationSignedBy`, and the payload names this
/// record or none (signed before the record had an id). The auditor's integrity check.
pub(super) fn signature_holds(object: &Value, record_id: &str) -> bool {
    let key = decode(text(object, "verificationSignedBy"))
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .and_then(|k| VerifyingKey::from_bytes(&k).ok());
    let signature = decode(text(object, "signature")).and_then(|b| <[u8; 64]>::try_from(b).ok());
    let payload = object.get("payload").and_then(Value::as_str).unwrap_or_default();
    let names_record = serde_json::from_str::<Value>(payload).is_ok_and(|p| match p.get("objectReference") {
        None | Some(Value::Null) => true,
        Some(r) => r.as_str() == Some(record_id),
    });
    match (key, signature) {
        (Some(key), Some(signature)) => {
            names_record && key.verify_strict(payload.as_bytes(), &Signature::from_bytes(&signature)).is_ok()
        }
        _ => false,
    }
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).map(str::trim).unwrap_or_default()
}

/// Hex or base64 (standard or URL-safe, padded or not).
fn decode(value: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    if let Ok(bytes) = hex::decode(value) {
        return Some(bytes);
    }
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD].iter().find_map(|e| e.decode(value).ok())
}

/// The serialised form of a consent record an individual signs before it exists.
fn draft_record(individual_id: &str, data_agreement_id: &str, revision: &repo::RevisionRow) -> Value {
    json!({
        "dataAgreementId": data_agreement_id,
        "dataAgreementRevisionId": revision.id,
        "dataAgreementRevisionHash": revision.hash,
        "individualId": individual_id,
        "optIn": true,
        "state": "unsigned",
    })
}

/// A consent record of this individual (another's is not found).
async fn own_record(
    c: &mut sqlx::AnyConnection,
    individual_id: &str,
    record_id: &str,
) -> Result<repo::ConsentRecordRow, Error> {
    repo::consent_record_by_id(c, record_id)
        .await?
        .filter(|r| r.individual_id == individual_id)
        .ok_or(Error::NotFound("consent record"))
}

kernel::area! {
    /// Signed consent records and revisions read at a revision.
    ConsentSignatures of Exchange
}

impl ConsentSignatures<'_> {
    /// A policy or data agreement as it was at one of its revisions: (object, revision).
    pub async fn at_revision(
        &self,
        _reader: super::ConsentReader<'_>,
        object_id: &str,
        revision_id: &str,
    ) -> Result<(Value, Value), Error> {
        let mut c = self.conn().await?;
        let revision = repo::revision(&mut c, revision_id)
            .await?
            .filter(|r| r.object_id == object_id)
            .ok_or(Error::NotFound("revision"))?;
        let snapshot = parse(&revision.snapshot)?;
        let mut object = snapshot.get("objectData").cloned().unwrap_or_else(|| json!({}));
        if let Some(o) = object.as_object_mut() {
            o.insert("id".into(), Value::String(object_id.into()));
        }
        Ok((object, revision_json(&revision)))
    }

    /// The revision a new consent would point to: the agreement's latest; a named older one
    /// is refused, as consent is only ever given to the agreement as it now stands.
    async fn consentable_revision(
        &self,
        c: &mut sqlx::AnyConnection,
        individual_id: &str,
        data_agreement_id: &str,
        revision_id: Option<&str>,
    ) -> Result<repo::RevisionRow, Error> {
        repo::individual(c, individual_id).await?.ok_or(Error::NotFound("individual"))?;
        let (_, active, _) =
            repo::data_agreement(c, data_agreement_id).await?.ok_or(Error::NotFound("data agreement"))?;
        if !active {
            return Err(Error::conflict(ErrorCode::AgreementInactive, "this data agreement takes no new consent"));
        }
        let latest = repo::latest_revision(c, data_agreement_id).await?.ok_or(Error::NotFound("data agreement"))?;
        match revision_id {
            Some(id) if id != latest.id => {
                repo::revision(c, id)
                    .await?
                    .filter(|r| r.object_id == data_agreement_id)
                    .ok_or(Error::NotFound("revision"))?;
                Err(Error::conflict(
                    ErrorCode::RevisionOutdated,
                    "the data agreement has a newer revision: consent to that one",
                ))
            }
            _ => Ok(latest),
        }
    }

    /// A draft consent record and the signature object to sign, stored nowhere.
    pub async fn draft_consent_record(
        &self,
        individual_id: &str,
        data_agreement_id: &str,
        revision_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(Value, Value), Error> {
        let mut c = self.conn().await?;
        let revision = self.consentable_revision(&mut c, individual_id, data_agreement_id, revision_id).await?;
        let record = draft_record(individual_id, data_agreement_id, &revision);
        let serialised = record.to_string();
        let draft =
            Signed { verification_payload: &serialised, signed_by: "", timestamp: &iso(now), object_reference: None };
        let signature = draft.object(&draft.payload().to_string(), "");
        Ok((record, signature))
    }

    /// Gives consent with its signature at once (the draft's record, signed): checks the
    /// signature against the draft, then stores the record `signed` and the signature.
    /// Returns (record, revision, signature).
    pub async fn create_signed_consent(
        &self,
        individual_id: &str,
        record: &Value,
        submitted: &Value,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<(Value, Value, Value), Error> {
        let data_agreement_id = match text(record, "dataAgreementId") {
            "" => record.pointer("/dataAgreement/id").and_then(Value::as_str).unwrap_or_default(),
            id => id,
        }
        .to_string();
        if data_agreement_id.is_empty() {
            return Err(Error::invalid("dataAgreementId", "name the data agreement"));
        }
        if record.get("optIn").and_then(Value::as_bool) == Some(false) {
            return Err(Error::invalid("optIn", "a signed consent record gives consent"));
        }
        let revision_id = Some(text(record, "dataAgreementRevisionId")).filter(|v| !v.is_empty());
        let signed_by = text(submitted, "verificationSignedBy").to_string();
        let timestamp = text(submitted, "timestamp").to_string();
        let mut tx = self.inner.db.begin().await?;
        let revision = self.consentable_revision(&mut tx, individual_id, &data_agreement_id, revision_id).await?;
        let serialised = draft_record(individual_id, &data_agreement_id, &revision).to_string();
        let draft = Signed {
            verification_payload: &serialised,
            signed_by: &signed_by,
            timestamp: &timestamp,
            object_reference: None,
        };
        let mut signature = draft.verify(submitted)?;
        let (mut record, revision) =
            self.consent().set_consent_in(&mut tx, individual_id, &data_agreement_id, true, by, now).await?;
        let record_id = text(&record, "id").to_string();
        // Signed before the record had an id: the reference is filled in afterwards.
        let id = new_id();
        super::set(&mut signature, "id", Value::String(id.clone()));
        super::set(&mut signature, "objectReference", Value::String(record_id.clone()));
        let row = SignatureRow { id, record_id: record_id.clone(), body: signature.to_string(), verified: true };
        repo::insert_signature(&mut tx, &row, millis(now)).await?;
        repo::set_record_state(&mut tx, &record_id, "signed", millis(now)).await?;
        let data = json!({"consentRecordId": record_id, "dataAgreementId": data_agreement_id,
            "individualId": individual_id, "optIn": true});
        self.webhooks().notify_in(&mut tx, "consent.signed", data, now).await?;
        tx.commit().await?;
        super::set(&mut record, "state", Value::String("signed".into()));
        Ok((record, revision, signature))
    }

    /// Starts a signature of an existing record of this individual: the object to sign,
    /// over the record as it now stands.
    pub async fn start_signature(
        &self,
        individual_id: &str,
        record_id: &str,
        submitted: &Value,
        now: DateTime<Utc>,
    ) -> Result<Value, Error> {
        let mut tx = self.inner.db.begin().await?;
        let row = own_record(&mut tx, individual_id, record_id).await?;
        let serialised = record_json(&row).to_string();
        let start = Signed {
            verification_payload: &serialised,
            signed_by: text(submitted, "verificationSignedBy"),
            timestamp: &iso(now),
            object_reference: Some(record_id),
        };
        let mut signature = start.object(&start.payload().to_string(), "");
        let id = new_id();
        super::set(&mut signature, "id", Value::String(id.clone()));
        let stored = SignatureRow { id, record_id: record_id.into(), body: signature.to_string(), verified: false };
        repo::insert_signature(&mut tx, &stored, millis(now)).await?;
        tx.commit().await?;
        Ok(signature)
    }

    /// Completes the record's open signature: checks it against the payload and key, and
    /// marks the record `signed`. A record changed since the signature started must be
    /// signed again.
    pub async fn complete_signature(
        &self,
        individual_id: &str,
        record_id: &str,
        submitted: &Value,
        now: DateTime<Utc>,
    ) -> Result<Value, Error> {
        let mut tx = self.inner.db.begin().await?;
        let row = own_record(&mut tx, individual_id, record_id).await?;
        let mut stored = repo::latest_signature(&mut tx, record_id)
            .await?
            .filter(|s| !s.verified)
            .ok_or(Error::NotFound("unsigned signature (start one with POST)"))?;
        let started = parse(&stored.body)?;
        let serialised = record_json(&row).to_string();
        if text(&started, "verificationPayload") != serialised {
            return Err(Error::conflict(
                ErrorCode::RecordChanged,
                "the record changed since this signature started: start again",
            ));
        }
        let signed_by = match text(submitted, "verificationSignedBy") {
            "" => text(&started, "verificationSignedBy"),
            given => given,
        };
        let mut signature = Signed {
            verification_payload: &serialised,
            signed_by,
            timestamp: text(&started, "timestamp"),
            object_reference: Some(record_id),
        }
        .verify(submitted)?;
        super::set(&mut signature, "id", Value::String(stored.id.clone()));
        stored.body = signature.to_string();
        stored.verified = true;
        repo::update_signature(&mut tx, &stored, millis(now)).await?;
        repo::set_record_state(&mut tx, record_id, "signed", millis(now)).await?;
        self.webhooks().notify_in(&mut tx, "consent.signed", super::consent::event_data(&row), now).await?;
        tx.commit().await?;
        Ok(signature)
    }
}
