//! 有条件开放: a resident or enterprise applies for a conditional dataset with a purpose;
//! the owning department approves or refuses; on approval the applicant takes an API key —
//! shown once, kept only as its SHA-256 — and reads within a limit of calls per minute that
//! every node counts alike. The department can revoke access at any time.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::repo::{self, AccessRow};
use super::{AccessState, OpenLevel};
use crate::{Error, Openness, conflict, internal, text_between};
use identity::{Capability, Principal};
use kernel::audit::{Action, Outcome};
use kernel::authz::OpenDataPublish;
use kernel::db::{from_millis, millis};
use kernel::error::ErrorCode;

kernel::area! {
    /// Applications for conditional datasets, and the keys they grant.
    DataAccess of Openness
}

/// Calls per minute a key gets unless the department sets another limit.
pub const DEFAULT_CALLS_PER_MINUTE: i64 = 60;

/// An application for a conditional dataset.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AccessApplication {
    pub id: String,
    pub dataset_name: String,
    pub dataset_title: String,
    /// The applicant's name: shown to the department, and to the applicant.
    pub applicant: String,
    pub purpose: String,
    pub state: AccessState,
    pub decision_note: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub calls_per_minute: i64,
    /// Whether the applicant has taken a key.
    pub has_key: bool,
    pub created_at: DateTime<Utc>,
}

/// A key as its holder sees it, once.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IssuedKey {
    pub application: String,
    pub key: String,
    pub calls_per_minute: i64,
}

/// What one call with a key used of its minute.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct KeyUse {
    pub calls_this_minute: i64,
    pub calls_per_minute: i64,
}

impl DataAccess<'_> {
    /// Applies for a conditional dataset. Applying again while an application is pending
    /// or approved returns that one.
    pub async fn apply(
        &self,
        person: &Principal,
        dataset: &str,
        purpose: &str,
        now: DateTime<Utc>,
    ) -> Result<AccessApplication, Error> {
        let purpose = text_between("purpose", purpose, 10, 2_000)?;
        let mut c = self.conn().await?;
        let d = repo::dataset(&mut c, dataset.trim()).await?.ok_or(Error::NotFound("dataset"))?;
        if d.open_level != OpenLevel::Conditional {
            return Err(Error::invalid("dataset", "this dataset is open to all: no application is needed"));
        }
        let existing = repo::access_of_account(&mut c, &person.account_id).await?;
        if let Some(a) = existing
            .into_iter()
            .find(|a| a.dataset_id == d.id && matches!(a.state, AccessState::Pending | AccessState::Approved))
        {
            drop(c);
            return self.view(a).await;
        }
        let row = AccessRow {
            id: kernel::db::new_id(),
            dataset_id: d.id.clone(),
            account_id: person.account_id.clone(),
            purpose,
            state: AccessState::Pending,
            decision_note: None,
            decided_by: None,
            decided_at: None,
            key_sha256: None,
            calls_per_minute: DEFAULT_CALLS_PER_MINUTE,
            created_at: millis(now),
        };
        repo::insert_access(&mut c, &row).await?;
        drop(c);
        self.view(row).await
    }

    /// The person's applications, newest first.
    pub async fn mine(&self, person: &Principal) -> Result<Vec<AccessApplication>, Error> {
        let mut c = self.conn().await?;
        let rows = repo::access_of_account(&mut c, &person.account_id).await?;
        drop(c);
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(self.view(row).await?);
        }
        Ok(out)
    }

    /// Takes a key for an approved application: a new one each time, the earlier one
    /// stops working. Shown once.
    pub async fn issue_key(&self, person: &Principal, id: &str) -> Result<IssuedKey, Error> {
        let mut c = self.conn().await?;
        let mut row = repo::access(&mut c, id)
            .await?
            .filter(|a| a.account_id == person.account_id)
            .ok_or(Error::NotFound("application"))?;
        if row.state != AccessState::Approved {
            return Err(conflict(ErrorCode::InvalidTransition, "a key is issued for an approved application only"));
        }
        let key = format!("tbod_{}", kernel::secrets::random_token(24));
        row.key_sha256 = Some(kernel::secrets::sha256_hex(&key));
        if !repo::update_access(&mut c, &row, AccessState::Approved).await? {
            return Err(conflict(ErrorCode::RecordChanged, "the application changed meanwhile"));
        }
        Ok(IssuedKey { application: row.id, key, calls_per_minute: row.calls_per_minute })
    }

    /// The applications for the officer's department's datasets, newest first.
    pub async fn applications(&self, cap: &Capability<OpenDataPublish>) -> Result<Vec<AccessApplication>, Error> {
        let department = cap.department_id().ok_or(Error::NotFound("department"))?;
        let mut c = self.conn().await?;
        let rows = repo::access_for_department(&mut c, department).await?;
        drop(c);
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(self.view(row).await?);
        }
        Ok(out)
    }

    /// Approves (with a limit of calls per minute) or refuses a pending application.
    pub async fn decide(
        &self,
        cap: &Capability<OpenDataPublish>,
        id: &str,
        approve: bool,
        note: &str,
        calls_per_minute: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<AccessApplication, Error> {
        let note = text_between("note", note, 2, 500)?;
        let limit = calls_per_minute.unwrap_or(DEFAULT_CALLS_PER_MINUTE);
        if !(1..=6_000).contains(&limit) {
            return Err(Error::invalid("calls_per_minute", "from 1 to 6000"));
        }
        let mut row = self.owned(cap, id).await?;
        if row.state != AccessState::Pending {
            return Err(conflict(ErrorCode::AlreadyDecided, "the application is already decided"));
        }
        row.state = if approve { AccessState::Approved } else { AccessState::Refused };
        row.calls_per_minute = limit;
        self.write_decision(cap, row, AccessState::Pending, note, now).await
    }

    /// Revokes an approved application: its key stops working at once.
    pub async fn revoke(
        &self,
        cap: &Capability<OpenDataPublish>,
        id: &str,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<AccessApplication, Error> {
        let note = text_between("note", note, 2, 500)?;
        let mut row = self.owned(cap, id).await?;
        if row.state != AccessState::Approved {
            return Err(conflict(ErrorCode::InvalidTransition, "only approved access is revoked"));
        }
        row.state = AccessState::Revoked;
        row.key_sha256 = None;
        self.write_decision(cap, row, AccessState::Approved, note, now).await
    }

    async fn owned(&self, cap: &Capability<OpenDataPublish>, id: &str) -> Result<AccessRow, Error> {
        let mut c = self.conn().await?;
        let row = repo::access(&mut c, id).await?.ok_or(Error::NotFound("application"))?;
        let d = repo::dataset(&mut c, &row.dataset_id).await?.ok_or(Error::NotFound("dataset"))?;
        cap.check_department(&d.department_id)?;
        Ok(row)
    }

    async fn write_decision(
        &self,
        cap: &Capability<OpenDataPublish>,
        mut row: AccessRow,
        from: AccessState,
        note: String,
        now: DateTime<Utc>,
    ) -> Result<AccessApplication, Error> {
        row.decision_note = Some(note);
        row.decided_by = Some(cap.account_id().to_string());
        row.decided_at = Some(millis(now));
        let mut tx = self.inner.db.begin().await?;
        if !repo::update_access(&mut tx, &row, from).await? {
            return Err(conflict(ErrorCode::RecordChanged, "the application changed meanwhile"));
        }
        let mut entry = ledger::Entry::new(Action::OpenDataAccessDecided, Outcome::Success, now);
        entry.actor = Some(cap.account_id().into());
        entry.object = Some(format!("open_access:{}", row.id));
        entry.detail = Some(row.state.as_str().to_string());
        ledger::append_in(&mut tx, ledger::Log::Audit, &entry).await?;
        tx.commit().await?;
        self.view(row).await
    }

    /// Checks a key for a dataset and counts the call in its minute: 401 `invalid_api_key`
    /// for a key that is unknown, revoked or for another dataset; 429 past the limit.
    pub(super) async fn authorise(
        &self,
        key: &str,
        dataset: &repo::DatasetRow,
        now: DateTime<Utc>,
    ) -> Result<KeyUse, Error> {
        let mut c = self.conn().await?;
        let row = repo::access_by_key(&mut c, &kernel::secrets::sha256_hex(key.trim()))
            .await?
            .filter(|a| a.state == AccessState::Approved && a.dataset_id == dataset.id)
            .ok_or(Error::InvalidApiKey)?;
        let minute = millis(now).div_euclid(60_000);
        let calls = repo::count_key_call(&mut c, &row.id, minute).await?;
        if calls > row.calls_per_minute {
            let retry_after_secs = u64::try_from(60 - millis(now).rem_euclid(60_000) / 1000).unwrap_or(60);
            return Err(Error::RateLimited { retry_after_secs });
        }
        Ok(KeyUse { calls_this_minute: calls, calls_per_minute: row.calls_per_minute })
    }

    async fn view(&self, row: AccessRow) -> Result<AccessApplication, Error> {
        let mut c = self.conn().await?;
        let d = repo::dataset(&mut c, &row.dataset_id).await?.ok_or_else(|| internal("an application's dataset"))?;
        drop(c);
        let applicant = self.inner.identity.accounts().display_name(&row.account_id).await?;
        Ok(AccessApplication {
            id: row.id,
            dataset_name: d.name,
            dataset_title: d.title,
            applicant,
            purpose: row.purpose,
            state: row.state,
            decision_note: row.decision_note,
            decided_at: row.decided_at.map(from_millis),
            calls_per_minute: row.calls_per_minute,
            has_key: row.key_sha256.is_some(),
            created_at: from_millis(row.created_at),
        })
    }
}
