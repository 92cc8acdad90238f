//! Receiving requests. Each is proposed a category and department in the transaction that
//! writes it; a confident proposal with a department goes straight to it, the rest to the
//! dispatchers' queue. A repeated submission with the same idempotency key is the same
//! request.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::repo::{self, RequestRow};
use super::routing::checked_text;
use super::{Channel, Error, RequestKind, RequestView, Stage, Urgency, Voice, china_day, internal};
use identity::{AccountKind, Principal};
use kernel::audit::{Action, Outcome};
use kernel::db::{millis, new_id};
use services::workflow::Case;

kernel::area! {
    /// Receiving requests, on every channel.
    Intake of Voice
}

/// What a person tells the platform.
#[derive(Debug, Clone)]
pub struct NewRequest {
    pub kind: RequestKind,
    pub text: String,
    /// Where it happened: a region code (district, street, community or grid).
    pub region_code: String,
    pub address: Option<String>,
    pub urgency: Urgency,
    pub publishable: bool,
    /// The same key again (a double click, a retried POST) answers the first request.
    pub idempotency_key: Option<String>,
}

const MAX_ADDRESS: usize = 200;
const MAX_KEY: usize = 100;

impl Intake<'_> {
    /// How many requests the platform holds.
    pub async fn count(&self) -> Result<i64, Error> {
        let mut c = self.conn().await?;
        Ok(repo::count(&mut c).await?)
    }

    /// A resident's or enterprise's own request, from the portal or the API.
    pub async fn submit(
        &self,
        me: &Principal,
        new: NewRequest,
        channel: Channel,
        now: DateTime<Utc>,
    ) -> Result<RequestView, Error> {
        if !matches!(me.kind, AccountKind::Citizen | AccountKind::Enterprise) {
            return Err(Error::invalid("account", "requests are made by residents and enterprises"));
        }
        let text = checked_text(&new.text)?;
        let address = new.address.as_deref().map(str::trim).filter(|a| !a.is_empty()).map(str::to_string);
        if address.as_ref().is_some_and(|a| a.chars().count() > MAX_ADDRESS) {
            return Err(Error::invalid("address", format!("at most {MAX_ADDRESS} characters")));
        }
        let key = new.idempotency_key.as_deref().map(str::trim).filter(|k| !k.is_empty()).map(str::to_string);
        if key.as_ref().is_some_and(|k| k.len() > MAX_KEY) {
            return Err(Error::invalid("idempotency_key", format!("at most {MAX_KEY} characters")));
        }
        let mut c = self.conn().await?;
        if let Some(key) = &key
            && let Some(row) = repo::by_idempotency_key(&mut c, &me.account_id, key).await?
        {
            return self.view_in(&mut c, row, now).await;
        }
        let region = self
            .inner
            .identity
            .organisation()
            .region_in(&mut c, new.region_code.trim())
            .await?
            .ok_or_else(|| Error::invalid("region", "not a region of this platform"))?;
        drop(c);

        let mut tx = self.inner.db.begin().await?;
        let proposal = self.routing().propose_in(&mut tx, &text, &region.path).await?;
        let form = json!({
            "confidence": proposal.confidence,
            "department": proposal.department.as_ref().map(|d| d.id.clone()),
            "reopened": 0,
        });
        let def = &self.inner.workflow;
        let case = Case::start(def, &form, now, &self.inner.calendar);
        let state: Stage = case.state.clone().try_into().map_err(internal)?;
        let number = format!("12345-{}-{:06}", china_day(now), repo::next_number(&mut tx, &china_day(now)).await?);
        let row = RequestRow {
            id: new_id(),
            number,
            kind: new.kind,
            channel,
            account_id: Some(me.account_id.clone()),
            recorded_by: None,
            idempotency_key: key.clone(),
            text,
            region_code: region.code.clone(),
            region_path: region.path.clone(),
            address,
            urgency: new.urgency,
            publishable: i64::from(new.publishable),
            category: proposal.category.code.clone(),
            proposed: proposal.category.code.clone(),
            confidence: proposal.confidence,
            reasons: serde_json::to_string(&proposal.reasons).map_err(internal)?,
            department_id: if state == Stage::Assigned { proposal.department.map(|d| d.id) } else { None },
            state,
            workflow: serde_json::to_string(&case).map_err(internal)?,
            state_due: case.state_due.map(millis),
            reopened: 0,
            answer: None,
            rating: None,
            created_at: millis(now),
            updated_at: millis(now),
        };
        if let Err(e) = repo::insert(&mut tx, &row).await {
            // The same key from a second tab at the same moment: answer the first.
            if let (Some(key), sqlx::Error::Database(db)) = (&key, &e)
                && db.is_unique_violation()
            {
                tx.rollback().await?;
                let mut c = self.conn().await?;
                let first = repo::by_idempotency_key(&mut c, &me.account_id, key).await?;
                let first = first.ok_or_else(|| internal("the request that holds this key is gone"))?;
                return self.view_in(&mut c, first, now).await;
            }
            return Err(e.into());
        }
        let mut entry = ledger::Entry::new(Action::VoiceRequestSubmitted, Outcome::Success, now);
        entry.actor = Some(me.account_id.clone());
        entry.subject = Some(me.account_id.clone());
        entry.object = Some(row.number.clone());
        entry.jurisdiction = Some(row.region_path.clone());
        entry.detail = Some(format!("{} {} {:.2}", row.kind.as_str(), row.category, row.confidence));
        ledger::append_in(&mut tx, ledger::Log::Audit, &entry).await?;
        let view = self.view_in(&mut tx, row, now).await?;
        tx.commit().await?;
        Ok(view)
    }
}
