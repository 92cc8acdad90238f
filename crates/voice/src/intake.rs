//! Receiving requests: a resident's or enterprise's own (portal, API) and a call a hotline
//! operator records for the caller (话务员). Each is proposed a category and department in the
//! transaction that writes it; a confident proposal with a department goes straight to it,
//! the rest to the dispatchers' queue. A repeated submission with the same idempotency key
//! is the same request.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::duplicates;
use super::repo::{self, RequestRow};
use super::routing::checked_text;
use super::{
    Category, Channel, Error, MAX_PHOTOS, Rating, RequestKind, RequestView, Stage, Urgency, Voice, china_day, internal,
};
use identity::{AccountKind, Capability, Principal, RegionRef};
use kernel::audit::{Action, Outcome};
use kernel::authz::VoiceRecord;
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
    /// Photos: ids of the person's own PNG or JPEG uploads (at most [`MAX_PHOTOS`]).
    pub photos: Vec<String>,
}

/// Who called the hotline: kept sealed, shown to the handling department masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    pub name: String,
    pub mobile: String,
}

const MAX_ADDRESS: usize = 200;
const MAX_KEY: usize = 100;

/// Where a request comes from.
pub(crate) struct Origin<'a> {
    pub(crate) channel: Channel,
    /// The person's account, when they made it themselves.
    pub(crate) account_id: Option<&'a str>,
    /// The operator who recorded a call.
    pub(crate) recorded_by: Option<&'a str>,
    /// Who to answer, when they have no account here (a caller, an Open311 reporter).
    pub(crate) caller: Option<Caller>,
    /// The category the client chose (an Open311 service_code): not classified again.
    pub(crate) category: Option<Category>,
    /// The person's photos, checked by the upload pipeline.
    pub(crate) photos: Vec<repo::PhotoRow>,
}

impl Caller {
    pub(crate) fn checked(self) -> Result<Caller, Error> {
        let name = self.name.trim().to_string();
        if name.is_empty() || name.chars().count() > 50 {
            return Err(Error::invalid("caller_name", "the caller's name, at most 50 characters"));
        }
        let mobile: String = self.mobile.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
        if !(7..=15).contains(&mobile.len()) || !mobile.chars().all(|c| c.is_ascii_digit()) {
            return Err(Error::invalid("caller_mobile", "a telephone number of 7 to 15 digits"));
        }
        Ok(Caller { name, mobile })
    }
}

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
        let photos = self.photos_of(me, &new.photos).await?;
        let origin = Origin {
            channel,
            account_id: Some(&me.account_id),
            recorded_by: None,
            caller: None,
            category: None,
            photos,
        };
        self.receive(origin, new, |_| Ok(()), now).await
    }

    /// A call the operator records for the caller, within the operator's jurisdiction.
    pub async fn record_call(
        &self,
        cap: &Capability<VoiceRecord>,
        caller: Caller,
        new: NewRequest,
        now: DateTime<Utc>,
    ) -> Result<RequestView, Error> {
        let caller = caller.checked()?;
        if !new.photos.is_empty() {
            return Err(Error::invalid("photos", "a caller's photos come by the portal, on their own account"));
        }
        let origin = Origin {
            channel: Channel::Hotline,
            account_id: None,
            recorded_by: Some(cap.account_id()),
            caller: Some(caller),
            category: None,
            photos: Vec::new(),
        };
        self.receive(origin, new, |region| Ok(cap.check_record(&region.path, 1)?), now).await
    }

    /// A call recorded on the hotline, for an operator within its jurisdiction.
    pub async fn call(
        &self,
        cap: &Capability<VoiceRecord>,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<RequestView, Error> {
        let mut c = self.conn().await?;
        let row = repo::request(&mut c, id).await?.ok_or(Error::NotFound("request"))?;
        if row.channel != Channel::Hotline {
            return Err(Error::NotFound("request"));
        }
        cap.check_record(&row.region_path, 1)?;
        self.view_in(&mut c, row, now).await
    }

    /// 回访 by telephone: the operator records the rating a caller without an account gave.
    pub async fn record_rating(
        &self,
        cap: &Capability<VoiceRecord>,
        id: &str,
        rating: Rating,
        comment: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<RequestView, Error> {
        let mut c = self.conn().await?;
        let row = repo::request(&mut c, id).await?.ok_or(Error::NotFound("request"))?;
        cap.check_record(&row.region_path, 1)?;
        if row.account_id.is_some() {
            return Err(Error::invalid("request", "the person rates it on their own account"));
        }
        drop(c);
        self.rate_as(id, None, cap.account_id(), rating, comment, now).await
    }

    pub(crate) async fn receive(
        &self,
        origin: Origin<'_>,
        new: NewRequest,
        in_reach: impl Fn(&RegionRef) -> Result<(), Error>,
        now: DateTime<Utc>,
    ) -> Result<RequestView, Error> {
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
            && let Some(row) = self.by_key(&mut c, &origin, key).await?
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
        in_reach(&region)?;
        // Everything that only reads happens before the write: classification, the route and
        // the repeats of the place, on this connection; the write itself joins a group commit.
        let proposal = match &origin.category {
            Some(category) => self.routing().given_in(&mut c, category, &region.path).await?,
            None => self.routing().propose_in(&mut c, &text, &region.path).await?,
        };
        // A repeat of an open request nearby waits for a dispatcher, who may merge it.
        let similar_to = duplicates::repeated(&mut c, &text, &proposal.category.code, &region.code, now).await?;
        drop(c);
        let form = json!({
            "confidence": proposal.confidence,
            "department": proposal.department.as_ref().map(|d| d.id.clone()),
            "similar_to": similar_to,
            "reopened": 0,
        });
        let case = Case::start(&self.inner.workflow, &form, now, &self.inner.calendar);
        let state: Stage = case.state.clone().try_into().map_err(internal)?;
        let row = RequestRow {
            id: new_id(),
            // Numbered in the write, in the order of the China day.
            number: String::new(),
            kind: new.kind,
            channel: origin.channel,
            account_id: origin.account_id.map(str::to_string),
            recorded_by: origin.recorded_by.map(str::to_string),
            caller: None,
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
            state_due: self.due(state, (new.kind, &proposal.category.code, new.urgency), now),
            reopened: 0,
            supervised: 0,
            answer: None,
            rating: None,
            created_at: millis(now),
            updated_at: millis(now),
            extension_days: 0,
            extension_reason: None,
            similar_to,
            merged_into: None,
        };
        let voice = self.0.clone();
        let (caller, photos) = (origin.caller.clone(), origin.photos.clone());
        let written = self
            .inner
            .db
            .write_grouped(move |c| Box::pin(async move { voice.write_new(c, row, caller, photos, now).await }))
            .await;
        let mut c = self.conn().await?;
        match (written, &key) {
            (Ok(row), _) => self.view_in(&mut c, row, now).await,
            // The same key from a second tab at the same moment: answer the first.
            (Err(Error::Storage(sqlx::Error::Database(db))), Some(key)) if db.is_unique_violation() => {
                let first = self.by_key(&mut c, &origin, key).await?;
                let first = first.ok_or_else(|| internal("the request that holds this key is gone"))?;
                self.view_in(&mut c, first, now).await
            }
            (Err(e), _) => Err(e),
        }
    }

    /// The person's photos for a request, checked by the upload pipeline: their own, PNG or
    /// JPEG, at most [`MAX_PHOTOS`], each once.
    async fn photos_of(&self, me: &Principal, ids: &[String]) -> Result<Vec<repo::PhotoRow>, Error> {
        let mut unique: Vec<String> = Vec::with_capacity(ids.len());
        for id in ids.iter().map(|i| i.trim()).filter(|i| !i.is_empty()) {
            if !unique.iter().any(|u| u == id) {
                unique.push(id.to_string());
            }
        }
        if unique.len() > MAX_PHOTOS {
            return Err(Error::invalid("photos", format!("at most {MAX_PHOTOS} photos")));
        }
        if unique.is_empty() {
            return Ok(Vec::new());
        }
        let checked = self.inner.services.documents().photos(me, &unique).await.map_err(|e| match e {
            services::Error::Invalid { field, reason } => Error::Invalid { field, reason },
            other => Error::Uploads(other),
        })?;
        Ok(checked
            .into_iter()
            .map(|d| repo::PhotoRow {
                document_id: d.id,
                filename: d.filename,
                content_type: d.content_type,
                size: d.size,
            })
            .collect())
    }

    async fn by_key(
        &self,
        c: &mut sqlx::AnyConnection,
        origin: &Origin<'_>,
        key: &str,
    ) -> Result<Option<RequestRow>, Error> {
        Ok(match (origin.account_id, origin.recorded_by) {
            (Some(account), _) => repo::by_idempotency_key(c, account, key).await?,
            (None, Some(operator)) => repo::call_by_idempotency_key(c, operator, key).await?,
            (None, None) => None,
        })
    }
}

impl super::Voice {
    /// Writes a new request in a group commit: its number, the caller sealed under a
    /// context naming it, the row and its audit entry.
    async fn write_new(
        &self,
        c: &mut sqlx::AnyConnection,
        mut row: RequestRow,
        caller: Option<Caller>,
        photos: Vec<repo::PhotoRow>,
        now: DateTime<Utc>,
    ) -> Result<RequestRow, Error> {
        let day = china_day(now);
        row.number = format!("12345-{day}-{:06}", repo::next_number(c, &day).await?);
        if let Some(caller) = &caller {
            let plain = serde_json::to_string(caller).map_err(internal)?;
            let sealed = self.inner.identity.protector().seal_in(c, &plain, &caller_context(&row.id)).await;
            row.caller = Some(sealed.map_err(internal)?);
        }
        repo::insert(c, &row).await?;
        self.add_counts(c, None, &row).await?;
        for (position, photo) in (0..).zip(&photos) {
            repo::insert_photo(c, &row.id, position, photo).await?;
        }
        let actor = row.account_id.as_deref().or(row.recorded_by.as_deref());
        let mut entry = ledger::Entry::new(Action::VoiceRequestSubmitted, Outcome::Success, now);
        entry.actor = actor.map(str::to_string);
        entry.subject = row.account_id.clone();
        entry.object = Some(row.number.clone());
        entry.jurisdiction = Some(row.region_path.clone());
        entry.detail =
            Some(format!("{} {} {} {:.2}", row.channel.as_str(), row.kind.as_str(), row.category, row.confidence));
        ledger::append_in(c, ledger::Log::Audit, &entry).await?;
        Ok(row)
    }
}

/// The sealing context of a request's caller: a sealed value moved to another row does not
/// open.
pub(crate) fn caller_context(request_id: &str) -> String {
    format!("voice_requests.caller:{request_id}")
}
