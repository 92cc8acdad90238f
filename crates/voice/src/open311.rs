//! Open311 GeoReport v2: client applications with api keys, the services (our categories),
//! posting a request, and the public list of requests whose authors agreed to publication.
//! The HTTP adapter (`tongban-http`'s `open311`) speaks the specification's JSON and XML.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::intake::{Caller, Origin};
use super::repo::{self, Open311ClientRow, RequestRow};
use super::{Category, Channel, Error, NewRequest, RequestKind, Stage, Urgency, Voice, internal};
use kernel::db::{from_millis, millis, new_id};

kernel::area! {
    /// Open311 GeoReport v2.
    Open311 of Voice
}

/// A registered client application (its key is never stored, only its hash).
#[derive(Debug, Clone, Serialize)]
pub struct Open311Client {
    pub id: String,
    pub name: String,
    pub region_code: String,
    pub created_at: DateTime<Utc>,
    pub revoked: bool,
}

impl From<Open311ClientRow> for Open311Client {
    fn from(r: Open311ClientRow) -> Open311Client {
        Open311Client {
            id: r.id,
            name: r.name,
            region_code: r.region_code,
            created_at: from_millis(r.created_at),
            revoked: r.revoked_at.is_some(),
        }
    }
}

/// A request as GeoReport v2 describes it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ServiceRequest {
    pub service_request_id: String,
    /// open or closed
    pub status: &'static str,
    pub status_notes: Option<String>,
    pub service_name: String,
    pub service_code: String,
    pub description: String,
    pub agency_responsible: Option<String>,
    pub service_notice: Option<String>,
    pub requested_datetime: String,
    pub updated_datetime: String,
    pub expected_datetime: Option<String>,
    pub address: Option<String>,
    pub address_id: Option<String>,
    pub zipcode: Option<String>,
    pub lat: Option<f64>,
    pub long: Option<f64>,
    pub media_url: Option<String>,
}

/// What an Open311 client posts.
#[derive(Debug, Clone, Default)]
pub struct PostedRequest {
    pub service_code: String,
    pub jurisdiction_id: Option<String>,
    pub description: String,
    pub address_string: Option<String>,
    pub lat: Option<String>,
    pub long: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    /// The service definition's attributes: the kind of request (default 求助) and urgency.
    pub kind: Option<RequestKind>,
    pub urgency: Option<Urgency>,
}

/// Which requests a GET asks for.
#[derive(Debug, Clone, Default)]
pub struct RequestQuery {
    pub ids: Vec<String>,
    pub service_codes: Vec<String>,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    /// `open` or `closed`
    pub status: Option<String>,
}

/// The default window of a GET without dates, and the most it answers.
const DEFAULT_DAYS: i64 = 90;
const MAX_RESULTS: i64 = 1000;

fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.trim().as_bytes()))
}

fn iso(t: DateTime<Utc>) -> String {
    t.with_timezone(&services::calendar::cst()).to_rfc3339_opts(SecondsFormat::Secs, false)
}

impl Open311<'_> {
    /// Registers a client application; answers it with its api_key, shown this once.
    pub async fn register_client(
        &self,
        name: &str,
        region_code: &str,
        now: DateTime<Utc>,
    ) -> Result<(Open311Client, String), Error> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(Error::invalid("name", "a name of at most 100 characters"));
        }
        let mut c = self.conn().await?;
        self.inner
            .identity
            .organisation()
            .region_in(&mut c, region_code.trim())
            .await?
            .ok_or_else(|| Error::invalid("region", "not a region of this platform"))?;
        let mut bytes = [0u8; 24];
        rand::thread_rng().fill_bytes(&mut bytes);
        let key = hex::encode(bytes);
        let row = Open311ClientRow {
            id: new_id(),
            name: name.to_string(),
            region_code: region_code.trim().to_string(),
            created_at: millis(now),
            revoked_at: None,
        };
        match repo::insert_open311_client(&mut c, &row, &key_hash(&key)).await {
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                Err(Error::invalid("name", "a client of that name is registered"))
            }
            other => other.map_err(Error::from),
        }?;
        Ok((row.into(), key))
    }

    pub async fn clients(&self) -> Result<Vec<Open311Client>, Error> {
        let mut c = self.conn().await?;
        Ok(repo::open311_clients(&mut c).await?.into_iter().map(Into::into).collect())
    }

    pub async fn revoke_client(&self, name: &str, now: DateTime<Utc>) -> Result<(), Error> {
        let mut c = self.conn().await?;
        if repo::revoke_open311_client(&mut c, name.trim(), millis(now)).await? {
            Ok(())
        } else {
            Err(Error::NotFound("client"))
        }
    }

    /// The client an api_key belongs to, unless revoked.
    pub async fn client(&self, api_key: &str) -> Result<Option<Open311Client>, Error> {
        let mut c = self.conn().await?;
        Ok(repo::open311_client_by_key(&mut c, &key_hash(api_key)).await?.map(Into::into))
    }

    /// The services: every category.
    pub fn services(&self) -> &[Category] {
        self.inner.categories.all()
    }

    /// Posts a request for the client: the service_code is the category; the request is
    /// routed in `jurisdiction_id` (a region code) or the client's region, and public.
    pub async fn post(
        &self,
        client: &Open311Client,
        posted: PostedRequest,
        now: DateTime<Utc>,
    ) -> Result<ServiceRequest, Error> {
        let category = self
            .inner
            .categories
            .get(posted.service_code.trim())
            .cloned()
            .ok_or_else(|| Error::invalid("service_code", "not a service of this endpoint"))?;
        let located = posted.address_string.as_deref().is_some_and(|a| !a.trim().is_empty())
            || (posted.lat.is_some() && posted.long.is_some());
        if !located {
            return Err(Error::invalid("address_string", "give lat and long, or address_string"));
        }
        let mut address = posted.address_string.clone().filter(|a| !a.trim().is_empty());
        if let (Some(lat), Some(long)) = (&posted.lat, &posted.long) {
            let (lat, long) = (lat.trim().parse::<f64>(), long.trim().parse::<f64>());
            let (Ok(lat), Ok(long)) = (lat, long) else {
                return Err(Error::invalid("lat", "lat and long are decimal degrees"));
            };
            if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&long) {
                return Err(Error::invalid("lat", "lat within ±90 and long within ±180"));
            }
            address.get_or_insert_with(|| format!("{lat:.6},{long:.6}"));
        }
        let name = [posted.last_name.as_deref(), posted.first_name.as_deref()]
            .into_iter()
            .flatten()
            .map(str::trim)
            .collect::<String>();
        let caller = match posted.phone.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
            Some(phone) => Some(
                Caller { name: if name.is_empty() { "—".into() } else { name }, mobile: phone.to_string() }
                    .checked()?,
            ),
            None => None,
        };
        let region =
            posted.jurisdiction_id.clone().filter(|j| !j.trim().is_empty()).unwrap_or(client.region_code.clone());
        let new = NewRequest {
            kind: posted.kind.unwrap_or(RequestKind::Help),
            text: posted.description,
            region_code: region,
            address,
            urgency: posted.urgency.unwrap_or_default(),
            publishable: true,
            idempotency_key: None,
            photos: Vec::new(),
        };
        let origin = Origin {
            channel: Channel::Open311,
            account_id: None,
            recorded_by: None,
            caller,
            category: Some(category),
            photos: Vec::new(),
        };
        let view = self.intake().receive(origin, new, |_| Ok(()), now).await?;
        let mut c = self.conn().await?;
        let row = repo::request(&mut c, &view.id).await?.ok_or_else(|| internal("the request just written is gone"))?;
        self.service_request_in(&mut c, row).await
    }

    /// Public requests matching the query: by default those of the last 90 days, at most
    /// 1,000, newest first.
    pub async fn requests(&self, q: &RequestQuery, now: DateTime<Utc>) -> Result<Vec<ServiceRequest>, Error> {
        let end = q.end.unwrap_or(now + Duration::seconds(1));
        let start = q.start.unwrap_or(end - Duration::days(DEFAULT_DAYS));
        if start > end {
            return Err(Error::invalid("start_date", "start_date is before end_date"));
        }
        let answered = match q.status.as_deref().map(str::trim) {
            None | Some("") => None,
            Some("open") => Some(false),
            Some("closed") => Some(true),
            Some(_) => return Err(Error::invalid("status", "open or closed")),
        };
        if q.ids.len() + q.service_codes.len() > 200 {
            return Err(Error::invalid("service_request_id", "at most 200 ids and service codes together"));
        }
        let mut c = self.conn().await?;
        // The filters go into the query, so that the limit counts only what matches.
        let filter = repo::PublicFilter { numbers: &q.ids, categories: &q.service_codes, answered };
        let rows = repo::public_requests(&mut c, millis(start), millis(end), &filter, MAX_RESULTS).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(self.service_request_in(&mut c, row).await?);
        }
        Ok(out)
    }

    /// One public request by its number.
    pub async fn request(&self, number: &str) -> Result<ServiceRequest, Error> {
        let mut c = self.conn().await?;
        let row =
            repo::request(&mut c, number.trim()).await?.filter(|r| r.publishable != 0 && r.number == number.trim());
        let row = row.ok_or(Error::NotFound("request"))?;
        self.service_request_in(&mut c, row).await
    }

    async fn service_request_in(&self, c: &mut sqlx::AnyConnection, row: RequestRow) -> Result<ServiceRequest, Error> {
        let category = self
            .inner
            .categories
            .get(&row.category)
            .ok_or_else(|| internal(format!("request {} has unknown category {}", row.number, row.category)))?;
        let agency = match &row.department_id {
            Some(id) => self.inner.identity.organisation().department_name_in(c, id).await?,
            None => None,
        };
        let closed = matches!(row.state, Stage::Answered | Stage::Closed);
        let (lat, long) = coordinates(row.address.as_deref());
        Ok(ServiceRequest {
            service_request_id: row.number,
            status: if closed { "closed" } else { "open" },
            // Answers are the department's words to the public; the text is the reporter's.
            status_notes: if closed { row.answer.as_deref().map(super::deidentify).transpose()? } else { None },
            service_name: category.name_zh.clone(),
            service_code: category.code.clone(),
            description: super::deidentify(&row.text)?,
            agency_responsible: agency,
            service_notice: None,
            requested_datetime: iso(from_millis(row.created_at)),
            updated_datetime: iso(from_millis(row.updated_at)),
            expected_datetime: row.state_due.map(|d| iso(from_millis(d))),
            address: if lat.is_some() { None } else { row.address },
            address_id: None,
            zipcode: None,
            lat,
            long,
            media_url: None,
        })
    }
}

/// Coordinates kept as the address (`lat,long`) when a client sent no address.
fn coordinates(address: Option<&str>) -> (Option<f64>, Option<f64>) {
    let parsed = address.and_then(|a| a.split_once(',')).and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)));
    match parsed {
        Some((lat, long)) => (Some(lat), Some(long)),
        None => (None, None),
    }
}
