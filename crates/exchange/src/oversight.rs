//! Consent oversight (GovStack Consent): a data consumer verifies that consent exists before
//! it processes a person's data (`/service/verification/…`), and the Data Processing
//! Auditor reads every consent record and data agreement with its revision chain and
//! signatures and checks that none was changed behind the platform's back (`/audit/…`).
//! Neither changes anything. A verifier sees the data agreements of its own department's
//! sharing agreements and the organisation's own; each verification is an access entry on
//! the audit ledger, so the person can see who checked their consent.

use chrono::{DateTime, Utc};
use kernel::audit::{Action, Outcome};
use serde_json::{Value, json};
use sha1::{Digest, Sha1};

use super::consent::{iso, parse, record_json, revision_json};
use super::repo::{self, ConsentRecordQuery, ConsentRecordRow, RevisionRow};
use super::signatures::signature_holds;
use super::{Error, Exchange, ExchangeClient};
use identity::Capability;
use kernel::authz::ConsentAudit;
use kernel::db::from_millis;
use ledger::{self, Log};

/// One page of consent records and how many the query selects in all.
#[derive(Debug)]
pub struct ConsentRecordPage {
    pub records: Vec<Value>,
    pub total: usize,
}

/// Whether each revision's hash is the SHA-1 of its snapshot and names the one before it.
fn chain_intact(revisions: &[RevisionRow]) -> bool {
    let mut previous: Option<&str> = None;
    revisions.iter().all(|r| {
        let holds =
            hex::encode(Sha1::digest(r.snapshot.as_bytes())) == r.hash && r.predecessor_hash.as_deref() == previous;
        previous = Some(&r.hash);
        holds
    })
}

/// Whether a consent record says what its latest revision recorded (the answer, the
/// agreement revision and the individual): a row edited without a revision does not.
fn matches_revision(record: &ConsentRecordRow, latest: Option<&RevisionRow>) -> bool {
    let Some(data) = latest.and_then(|r| parse(&r.snapshot).ok()).and_then(|s| s.get("objectData").cloned()) else {
        return false;
    };
    let text = |key: &str| data.get(key).and_then(Value::as_str).map(str::to_string);
    data.get("optIn").and_then(Value::as_bool) == Some(record.opt_in)
        && text("dataAgreementId").as_deref() == Some(record.data_agreement_id.as_str())
        && text("dataAgreementRevisionId").as_deref() == Some(record.agreement_revision.as_str())
        && text("individualId").as_deref() == Some(record.individual_id.as_str())
}

/// A data agreement as the auditor sees it: a deleted one says when.
fn audited(body: &str, deleted: Option<i64>) -> Result<Value, Error> {
    let mut agreement = parse(body)?;
    if let Some(at) = deleted {
        super::set(&mut agreement, "x-deletedAt", Value::String(iso(from_millis(at))));
    }
    Ok(agreement)
}

fn page_bounds(offset: usize, limit: usize) -> (i64, i64) {
    (i64::try_from(offset).unwrap_or(i64::MAX), i64::try_from(limit).unwrap_or(i64::MAX))
}

kernel::area! {
    /// Consent oversight: consumers verify consent before processing, and the Data Processing Auditor reads every record and agreement.
    Oversight of Exchange
}

impl Oversight<'_> {
    // --- verification (data consumers) --------------------------------------------------------

    /// The data agreements a consuming system may verify consent against.
    pub async fn verifiable_data_agreements(&self, client: &ExchangeClient) -> Result<Vec<Value>, Error> {
        let mut c = self.conn().await?;
        repo::data_agreements_for(&mut c, Some(&client.department_id)).await?.iter().map(|(b, _)| parse(b)).collect()
    }

    /// The consent records a query selects among those the system may verify. One access
    /// entry records the check; it names the person when the query names one individual.
    pub async fn verify_consent_records(
        &self,
        client: &ExchangeClient,
        query: &ConsentRecordQuery,
        offset: usize,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<ConsentRecordPage, Error> {
        let mut c = self.conn().await?;
        let (offset, limit) = page_bounds(offset, limit);
        let (rows, total) =
            repo::consent_records_where(&mut c, query, Some(&client.department_id), offset, limit).await?;
        let subject = match &query.individual_id {
            Some(id) => repo::individual(&mut c, id).await?.and_then(|i| i.account_id),
            None => None,
        };
        drop(c);
        let object = query.data_agreement_id.as_ref().map(|id| format!("data_agreement:{id}"));
        self.record_verification(client, subject, object, format!("{total} consent records"), now).await?;
        Ok(ConsentRecordPage {
            records: rows.iter().map(record_json).collect(),
            total: usize::try_from(total).map_err(super::internal)?,
        })
    }

    /// One consent record the system may verify, and its latest revision.
    pub async fn verify_consent_record(
        &self,
        client: &ExchangeClient,
        record_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(Value, Value), Error> {
        let mut c = self.conn().await?;
        let query = ConsentRecordQuery { id: Some(record_id.to_string()), ..ConsentRecordQuery::default() };
        let (rows, _) = repo::consent_records_where(&mut c, &query, Some(&client.department_id), 0, 1).await?;
        let record = rows.into_iter().next().ok_or(Error::NotFound("consent record"))?;
        let revision = repo::latest_revision(&mut c, &record.id).await?;
        let subject = repo::individual(&mut c, &record.individual_id).await?.and_then(|i| i.account_id);
        drop(c);
        let object = Some(format!("data_agreement:{}", record.data_agreement_id));
        self.record_verification(client, subject, object, format!("consent record {}", record.id), now).await?;
        Ok((record_json(&record), revision.as_ref().map(revision_json).unwrap_or(Value::Null)))
    }

    async fn record_verification(
        &self,
        client: &ExchangeClient,
        subject: Option<String>,
        object: Option<String>,
        detail: String,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let mut entry = ledger::Entry::new(Action::ConsentVerified, Outcome::Success, now);
        entry.actor = Some(client.account_id.clone());
        entry.source = Some(client.mediator_client.clone());
        entry.subject = subject;
        entry.object = object;
        entry.purpose = Some("consent verification".into());
        entry.detail = Some(detail);
        self.inner
            .db
            .write_grouped(move |c| {
                Box::pin(async move { ledger::append_in(c, Log::Audit, &entry).await.map(drop).map_err(Error::from) })
            })
            .await
    }

    // --- audit (Data Processing Auditor) -------------------------------------------------------

    /// Every consent record a query selects.
    pub async fn audit_consent_records(
        &self,
        _cap: &Capability<ConsentAudit>,
        query: &ConsentRecordQuery,
        offset: usize,
        limit: usize,
    ) -> Result<ConsentRecordPage, Error> {
        let mut c = self.conn().await?;
        let (offset, limit) = page_bounds(offset, limit);
        let (rows, total) = repo::consent_records_where(&mut c, query, None, offset, limit).await?;
        Ok(ConsentRecordPage {
            records: rows.iter().map(record_json).collect(),
            total: usize::try_from(total).map_err(super::internal)?,
        })
    }

    /// A consent record with its revisions, its signatures and what checking them found:
    /// `revisionsIntact` (each hash is its snapshot's, each names its predecessor),
    /// `matchesLatestRevision` (the record says what was last recorded) and
    /// `signaturesValid` (every completed signature verifies; null when there is none).
    pub async fn audit_consent_record(&self, _cap: &Capability<ConsentAudit>, record_id: &str) -> Result<Value, Error> {
        let mut c = self.conn().await?;
        let record = repo::consent_record_by_id(&mut c, record_id).await?.ok_or(Error::NotFound("consent record"))?;
        let revisions = repo::revisions_of(&mut c, record_id).await?;
        let signatures = repo::signatures_of(&mut c, record_id).await?;
        let mut bodies = Vec::with_capacity(signatures.len());
        let mut completed = 0usize;
        let mut holding = 0usize;
        for s in &signatures {
            let body = parse(&s.body)?;
            if s.verified {
                completed += 1;
                holding += usize::from(signature_holds(&body, record_id));
            }
            bodies.push(body);
        }
        Ok(json!({
            "consentRecord": record_json(&record),
            "revisions": revisions.iter().map(revision_json).collect::<Vec<_>>(),
            "signatures": bodies,
            "integrity": {
                "revisionsIntact": chain_intact(&revisions),
                "matchesLatestRevision": matches_revision(&record, revisions.last()),
                "signaturesValid": (completed > 0).then_some(holding == completed),
            },
        }))
    }

    /// Every data agreement, deleted ones too (`x-deletedAt`).
    pub async fn audit_data_agreements(&self, _cap: &Capability<ConsentAudit>) -> Result<Vec<Value>, Error> {
        let mut c = self.conn().await?;
        repo::data_agreements_for(&mut c, None).await?.iter().map(|(body, deleted)| audited(body, *deleted)).collect()
    }

    /// A data agreement (deleted too) with its revisions and whether their chain holds.
    pub async fn audit_data_agreement(&self, _cap: &Capability<ConsentAudit>, id: &str) -> Result<Value, Error> {
        let mut c = self.conn().await?;
        let (body, deleted) = repo::data_agreement_ever(&mut c, id).await?.ok_or(Error::NotFound("data agreement"))?;
        let agreement = audited(&body, deleted)?;
        let revisions = repo::revisions_of(&mut c, id).await?;
        Ok(json!({
            "dataAgreement": agreement,
            "revisions": revisions.iter().map(revision_json).collect::<Vec<_>>(),
            "integrity": {"revisionsIntact": chain_intact(&revisions)},
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revision(id: &str, snapshot: &str, predecessor: Option<&str>) -> RevisionRow {
        RevisionRow {
            id: id.into(),
            schema_name: "ConsentRecord".into(),
            object_id: "r1".into(),
            snapshot: snapshot.into(),
            hash: hex::encode(Sha1::digest(snapshot.as_bytes())),
            predecessor_hash: predecessor.map(str::to_string),
            authorized_by: None,
            created_at: 0,
        }
    }

    #[test]
    fn a_chain_breaks_where_a_snapshot_or_a_link_was_changed() {
        let first = revision("a", r#"{"objectData":{"optIn":true}}"#, None);
        let second = revision("b", r#"{"objectData":{"optIn":false}}"#, Some(&first.hash));
        assert!(chain_intact(&[first.clone(), second.clone()]));
        assert!(chain_intact(&[]));
        let mut edited = second.clone();
        edited.snapshot = r#"{"objectData":{"optIn":true}}"#.into();
        assert!(!chain_intact(&[first.clone(), edited]));
        let mut relinked = second.clone();
        relinked.predecessor_hash = None;
        assert!(!chain_intact(&[first.clone(), relinked]));
        // A removed first revision leaves the second pointing at nothing known.
        assert!(!chain_intact(&[second]));
    }
}
