//! One-stop services: the catalog (政务服务事项) with Chinese search, eForms with prefill,
//! applications run by versioned workflow definitions under working-day time limits, the
//! staff inbox with escalation, bundles (一件事一次办), assisted submission (帮办代办),
//! e-certificates on the `certificates` ledger, and ratings (好差评). Owns the tables of
//! migration 0008.

mod applications;
mod appointments;
pub mod calendar;
pub mod catalog;
mod certificates;
mod documents;
pub mod forms;
mod registration;
mod repo;
mod tallies;
pub use tallies::{CountedCase, CountedQuery};
pub mod workflow;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::pool::PoolConnection;

pub use applications::*;
pub use appointments::Appointments;
pub use appointments::{
    AppointmentStatus, AppointmentView, BOOKING_DAYS, HallSpec, HallView, HallWindow, NoShowReport, SlotView,
};
use calendar::WorkingCalendar;
use catalog::{BundleSpec, SearchIndex, ServiceSpec, ServiceSummary};
pub use certificates::*;
pub use documents::Documents;
use forms::{FieldError, Form};
use identity::{Capability, Denial, Identity};
use kernel::authz::ServiceManage;
use kernel::db::{Db, millis, new_id};
use kernel::secrets::MasterKey;
pub use registration::Registration;
pub use registration::{FileSubmission, FixtureCounts, ListQuery, StatisticsQuery};
pub use repo::TaskKind;
use workflow::{Definition, WorkflowError};

/// Errors of the services module; each maps to one stable client code in the HTTP layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// The form has per-field problems.
    #[error("the form has {} problem(s)", .0.len())]
    Form(Vec<FieldError>),
    #[error("{message}")]
    Conflict { code: kernel::error::ErrorCode, message: String },
    #[error(transparent)]
    Denied(#[from] Denial),
    #[error(transparent)]
    Workflow(#[from] WorkflowError),
    #[error("storage: {0}")]
    Storage(#[from] sqlx::Error),
    #[error("internal: {0}")]
    Internal(String),
}

impl Error {
    fn invalid(field: &'static str, reason: impl Into<String>) -> Error {
        Error::Invalid { field, reason: reason.into() }
    }

    fn conflict(code: kernel::error::ErrorCode, message: impl Into<String>) -> Error {
        Error::Conflict { code, message: message.into() }
    }
}

identity::from_identity_error!(Error);

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(e.to_string())
}

/// Where uploaded files go and what checks them.
#[derive(Debug, Clone)]
pub struct UploadPolicy {
    /// Content-addressed store: `<dir>/<sha256[0..2]>/<sha256>`.
    pub dir: PathBuf,
    pub max_bytes: usize,
    /// A virus scanner to run on each upload: the program and its arguments; the file's path
    /// is appended. Exit status 0 means clean.
    pub scan_command: Option<Vec<String>>,
}

/// The one-stop service hall. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    identity: Identity,
    master: MasterKey,
    calendar: WorkingCalendar,
    uploads: UploadPolicy,
    /// Compiled forms and definitions never change once stored, so they are kept.
    forms: Mutex<HashMap<String, Arc<Form>>>,
    definitions: Mutex<HashMap<(String, i64), Arc<Definition>>>,
    specs: Mutex<HashMap<(String, i64), Arc<ServiceSpec>>>,
    /// The search index and the catalog generation it was built from.
    index: Mutex<Option<(i64, Arc<SearchIndex>)>>,
    /// New cases waiting for the next group commit.
    new_cases: Arc<applications::NewCases>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Services")
    }
}

/// A published service: its id, version, guide and form.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PublishedService {
    pub id: String,
    pub version: u32,
    pub form_id: String,
    pub workflow: String,
    pub workflow_version: u32,
    #[schema(value_type = ServiceSpec)]
    pub spec: Arc<ServiceSpec>,
}

const CATALOG_GENERATION: &str = "catalog_generation";

impl Services {
    /// Service halls, window slots, bookings, check-in and no-shows.
    pub fn appointments(&self) -> Appointments<'_> {
        Appointments(self)
    }

    /// E-certificates: department keys, a holder's certificates, verification and revocation.
    pub fn certificates(&self) -> Certificates<'_> {
        Certificates(self)
    }

    /// 我的材料: uploaded materials, typed by content and checked before they are kept.
    pub fn documents(&self) -> Documents<'_> {
        Documents(self)
    }

    /// The GovStack Registration building block: services, eForms, application files, tasks and statistics.
    pub fn registration(&self) -> Registration<'_> {
        Registration(self)
    }

    /// Applying: prefill, submission of a service or a bundle, and assisted submission at the window (帮办代办).
    pub fn intake(&self) -> Intake<'_> {
        Intake(self)
    }

    /// The staff inbox: cases within jurisdiction, decisions, claiming and transferring tasks, time limits and escalation.
    pub fn casework(&self) -> Casework<'_> {
        Casework(self)
    }

    /// An applicant's own cases: the list, one case, supplements, withdrawal and notifications.
    pub fn my_cases(&self) -> MyCases<'_> {
        MyCases(self)
    }

    /// 好差评: applicants rate a finished case; the department answers a bad rating.
    pub fn ratings(&self) -> Ratings<'_> {
        Ratings(self)
    }

    pub fn new(
        db: Db,
        identity: Identity,
        master: MasterKey,
        calendar: WorkingCalendar,
        uploads: UploadPolicy,
    ) -> Self {
        Services {
            inner: Arc::new(Inner {
                db,
                identity,
                master,
                calendar,
                uploads,
                forms: Mutex::new(HashMap::new()),
                definitions: Mutex::new(HashMap::new()),
                specs: Mutex::new(HashMap::new()),
                index: Mutex::new(None),
                new_cases: Arc::default(),
            }),
        }
    }

    pub fn calendar(&self) -> &WorkingCalendar {
        &self.inner.calendar
    }

    async fn conn(&self) -> Result<PoolConnection<sqlx::Any>, Error> {
        Ok(self.inner.db.pool.acquire().await?)
    }

    /// Stores a workflow definition; an identical body keeps its version, a changed one gets
    /// the next. Running cases keep the version they started with.
    pub async fn publish_workflow(
        &self,
        _cap: &Capability<ServiceManage>,
        mut def: Definition,
        now: DateTime<Utc>,
    ) -> Result<u32, Error> {
        def.validate().map_err(|e| Error::invalid("workflow", e.to_string()))?;
        let mut tx = self.inner.db.begin().await?;
        let latest = repo::workflow_latest(&mut tx, &def.code).await?;
        if let Some((version, body)) = &latest {
            def.version = u32::try_from(*version).unwrap_or(0);
            if serde_json::to_string(&def).map_err(internal)? == *body {
                return Ok(def.version);
            }
        }
        def.version = latest.map(|(v, _)| u32::try_from(v).unwrap_or(0) + 1).unwrap_or(1);
        let body = serde_json::to_string(&def).map_err(internal)?;
        repo::insert_workflow(&mut tx, &def.code, i64::from(def.version), &body, millis(now)).await?;
        tx.commit().await?;
        Ok(def.version)
    }

    /// Publishes a service: a new version (guide, form, workflow) when anything changed.
    /// `id` lets outside systems (GovStack clients) name their own; by default the code's
    /// service keeps its id.
    pub async fn publish_service(
        &self,
        _cap: &Capability<ServiceManage>,
        id: Option<&str>,
        spec: ServiceSpec,
        now: DateTime<Utc>,
    ) -> Result<PublishedService, Error> {
        check_spec(&spec)?;
        Form::compile(spec.form.clone()).map_err(|e| Error::invalid("form", e.to_string()))?;
        let mut tx = self.inner.db.begin().await?;
        let (workflow_version, _) = repo::workflow_latest(&mut tx, &spec.workflow)
            .await?
            .ok_or_else(|| Error::invalid("workflow", format!("no workflow {} is defined", spec.workflow)))?;
        let body = serde_json::to_string(&spec).map_err(internal)?;
        let service_id = match repo::service_ref(&mut tx, id.unwrap_or(&spec.code)).await? {
            Some((existing, _)) => existing,
            None => {
                let fresh = id.map(str::to_string).unwrap_or_else(new_id);
                repo::insert_service(&mut tx, &fresh, &spec.code, millis(now)).await?;
                fresh
            }
        };
        let latest = repo::latest_service_version(&mut tx, &service_id).await?;
        let latest_version = latest.as_ref().map(|(v, _)| *v).unwrap_or(0);
        if let Some((v, old)) = &latest
            && *old == body
            && let Some(row) = repo::service_version(&mut tx, &service_id, *v).await?
            && row.workflow_version == workflow_version
        {
            return Ok(PublishedService {
                id: service_id,
                version: u32::try_from(*v).unwrap_or(0),
                form_id: row.form_id,
                workflow: row.workflow_code,
                workflow_version: u32::try_from(workflow_version).unwrap_or(0),
                spec: Arc::new(spec),
            });
        }
        let version = latest_version + 1;
        let form_id = format!("{service_id}-form-v{version}");
        let form_body = serde_json::to_string(&spec.form).map_err(internal)?;
        repo::insert_service_version(
            &mut tx,
            &repo::VersionRow {
                service_id: &service_id,
                version,
                body: &body,
                form_id: &form_id,
                form_body: &form_body,
                workflow_code: &spec.workflow,
                workflow_version,
                now: millis(now),
            },
        )
        .await?;
        bump_generation(&mut tx).await?;
        tx.commit().await?;
        Ok(PublishedService {
            id: service_id,
            version: u32::try_from(version).unwrap_or(0),
            form_id,
            workflow: spec.workflow.clone(),
            workflow_version: u32::try_from(workflow_version).unwrap_or(0),
            spec: Arc::new(spec),
        })
    }

    pub async fn publish_bundle(
        &self,
        _cap: &Capability<ServiceManage>,
        spec: BundleSpec,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let mut departments = Vec::new();
        for code in &spec.services {
            let s = self.service(code).await?;
            if !departments.contains(&s.spec.department) {
                departments.push(s.spec.department.clone());
            }
        }
        if departments.len() < 2 {
            return Err(Error::invalid("services", "a bundle joins services of at least two departments"));
        }
        let mut tx = self.inner.db.begin().await?;
        repo::upsert_bundle(&mut tx, &spec.code, &serde_json::to_string(&spec).map_err(internal)?, millis(now)).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn bundles(&self) -> Result<Vec<BundleSpec>, Error> {
        let mut c = self.conn().await?;
        Self::bundles_in(&mut c).await
    }

    async fn bundles_in(c: &mut sqlx::AnyConnection) -> Result<Vec<BundleSpec>, Error> {
        repo::bundles(c).await?.iter().map(|b| serde_json::from_str(b).map_err(internal)).collect()
    }

    pub async fn bundle(&self, code: &str) -> Result<BundleSpec, Error> {
        let mut c = self.conn().await?;
        Self::bundle_in(&mut c, code).await
    }

    /// [`Services::bundle`] on the caller's connection (or transaction).
    async fn bundle_in(c: &mut sqlx::AnyConnection, code: &str) -> Result<BundleSpec, Error> {
        Self::bundles_in(c).await?.into_iter().find(|b| b.code == code).ok_or(Error::NotFound("bundle"))
    }

    /// The published version of a service, by id or code.
    pub async fn service(&self, id_or_code: &str) -> Result<PublishedService, Error> {
        let mut c = self.conn().await?;
        self.service_in(&mut c, id_or_code).await
    }

    /// [`Services::service`] on the caller's connection (or transaction).
    async fn service_in(&self, c: &mut sqlx::AnyConnection, id_or_code: &str) -> Result<PublishedService, Error> {
        let (id, version) = repo::service_ref(c, id_or_code).await?.ok_or(Error::NotFound("service"))?;
        let version = version.ok_or(Error::NotFound("service"))?;
        self.service_version(c, &id, version).await
    }

    async fn service_version(
        &self,
        c: &mut sqlx::AnyConnection,
        id: &str,
        version: i64,
    ) -> Result<PublishedService, Error> {
        let row = repo::service_version(c, id, version).await?.ok_or(Error::NotFound("service"))?;
        let key = (id.to_string(), version);
        let cached = self.inner.specs.lock().map_err(internal)?.get(&key).cloned();
        let spec = match cached {
            Some(s) => s,
            None => {
                let s: Arc<ServiceSpec> = Arc::new(serde_json::from_str(&row.body).map_err(internal)?);
                self.inner.specs.lock().map_err(internal)?.insert(key, s.clone());
                s
            }
        };
        Ok(PublishedService {
            id: row.service_id,
            version: u32::try_from(row.version).unwrap_or(0),
            form_id: row.form_id,
            workflow: row.workflow_code,
            workflow_version: u32::try_from(row.workflow_version).unwrap_or(0),
            spec,
        })
    }

    /// A compiled form by id.
    pub async fn form(&self, form_id: &str) -> Result<Arc<Form>, Error> {
        if let Some(f) = self.inner.forms.lock().map_err(internal)?.get(form_id) {
            return Ok(f.clone());
        }
        let mut c = self.conn().await?;
        let (_, _, body) = repo::form(&mut c, form_id).await?.ok_or(Error::NotFound("form"))?;
        let schema = serde_json::from_str(&body).map_err(internal)?;
        let form = Arc::new(Form::compile(schema).map_err(internal)?);
        self.inner.forms.lock().map_err(internal)?.insert(form_id.to_string(), form.clone());
        Ok(form)
    }

    /// The service a form belongs to.
    pub async fn service_of_form(&self, form_id: &str) -> Result<PublishedService, Error> {
        let mut c = self.conn().await?;
        let (id, version, _) = repo::form(&mut c, form_id).await?.ok_or(Error::NotFound("form"))?;
        self.service_version(&mut c, &id, version).await
    }

    async fn definition(&self, code: &str, version: i64) -> Result<Arc<Definition>, Error> {
        let key = (code.to_string(), version);
        if let Some(d) = self.inner.definitions.lock().map_err(internal)?.get(&key) {
            return Ok(d.clone());
        }
        let mut c = self.conn().await?;
        let body = repo::workflow(&mut c, code, version).await?.ok_or(Error::NotFound("workflow"))?;
        let def = Arc::new(Definition::from_json(&body).map_err(internal)?);
        self.inner.definitions.lock().map_err(internal)?.insert(key, def.clone());
        Ok(def)
    }

    /// The search index of the published catalog, rebuilt when the catalog changed (on any
    /// node: the generation lives in the database).
    async fn index(&self) -> Result<Arc<SearchIndex>, Error> {
        let mut c = self.conn().await?;
        let generation: i64 =
            kernel::db::read_setting(&mut c, CATALOG_GENERATION).await?.and_then(|g| g.parse().ok()).unwrap_or(0);
        {
            let current = self.inner.index.lock().map_err(internal)?;
            if let Some((g, index)) = current.as_ref()
                && *g == generation
            {
                return Ok(index.clone());
            }
        }
        let mut summaries = Vec::new();
        for row in repo::published(&mut c).await? {
            let spec: ServiceSpec = serde_json::from_str(&row.body).map_err(internal)?;
            summaries.push(ServiceSummary::of(&row.service_id, u32::try_from(row.version).unwrap_or(0), &spec));
        }
        let names = department_names();
        let built = Arc::new(SearchIndex::build(summaries, &names).map_err(internal)?);
        *self.inner.index.lock().map_err(internal)? = Some((generation, built.clone()));
        Ok(built)
    }

    /// The published version of every service.
    pub async fn published_specs(&self) -> Result<Vec<Arc<ServiceSpec>>, Error> {
        let mut c = self.conn().await?;
        let mut out = Vec::new();
        for row in repo::published(&mut c).await? {
            out.push(self.service_version(&mut c, &row.service_id, row.version).await?.spec);
        }
        Ok(out)
    }

    /// Searches the published catalog (an empty query lists it).
    pub async fn search(&self, query: &str, limit: usize) -> Result<Vec<ServiceSummary>, Error> {
        Ok(self.index().await?.search(query, limit))
    }

    /// The catalog as people ask it, on the API and the pages alike: words (searched), or
    /// nothing (every published service), narrowed to a line of work and a life event.
    pub async fn find(&self, q: &CatalogQuery) -> Result<Vec<ServiceSummary>, Error> {
        if q.text.chars().count() > MAX_QUERY_CHARS {
            return Err(Error::invalid("q", format!("at most {MAX_QUERY_CHARS} characters")));
        }
        let index = self.index().await?;
        let hits = if q.text.trim().is_empty() { index.search("", usize::MAX) } else { index.search(&q.text, 200) };
        Ok(hits
            .into_iter()
            .filter(|s| q.department.as_ref().is_none_or(|d| &s.department == d))
            .filter(|s| q.event.as_ref().is_none_or(|e| s.events.contains(e)))
            .collect())
    }
}

/// The longest search text the catalog takes.
pub const MAX_QUERY_CHARS: usize = 100;

/// A question to the catalog: search text (may be empty) and filters.
#[derive(Debug, Default, Clone)]
pub struct CatalogQuery {
    pub text: String,
    /// A line of work: GA, MZ, RS, …
    pub department: Option<String>,
    /// A life or business event: birth, start_business, …
    pub event: Option<String>,
}

/// Names of the lines of work, for the catalog's department facet and search.
pub const DEPARTMENT_KINDS: &[(&str, &str, &str)] = &[
    ("GA", "公安", "Public security"),
    ("MZ", "民政", "Civil affairs"),
    ("RS", "人力资源和社会保障", "Human resources and social security"),
    ("SJ", "市场监督管理", "Market regulation"),
    ("WJ", "卫生健康", "Health"),
    ("JY", "教育", "Education"),
    ("ZJ", "住房和城乡建设", "Housing and construction"),
    ("JT", "交通运输", "Transport"),
    ("YJ", "应急管理", "Emergency management"),
    ("HB", "生态环境", "Ecology and environment"),
    ("CZ", "财政", "Finance"),
    ("QX", "气象", "Meteorology"),
    ("SG", "数据管理", "Data administration"),
];

fn department_names() -> HashMap<String, String> {
    DEPARTMENT_KINDS.iter().map(|(k, zh, _)| (k.to_string(), zh.to_string())).collect()
}

async fn bump_generation(c: &mut sqlx::AnyConnection) -> Result<(), sqlx::Error> {
    let current: i64 = kernel::db::read_setting(c, CATALOG_GENERATION).await?.and_then(|g| g.parse().ok()).unwrap_or(0);
    kernel::db::write_setting(c, CATALOG_GENERATION, &(current + 1).to_string()).await
}

fn check_spec(s: &ServiceSpec) -> Result<(), Error> {
    let code_ok =
        !s.code.is_empty() && s.code.len() <= 40 && s.code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !code_ok {
        return Err(Error::invalid("code", "letters, digits and '-', at most 40"));
    }
    if s.name_zh.trim().is_empty() || s.name_zh.chars().count() > 100 {
        return Err(Error::invalid("name_zh", "a name of at most 100 characters"));
    }
    if !DEPARTMENT_KINDS.iter().any(|(k, _, _)| *k == s.department) {
        return Err(Error::invalid("department", "a known line of work (GA, MZ, RS, …)"));
    }
    if s.committed_days > s.statutory_days {
        return Err(Error::invalid("committed_days", "at most the statutory time limit"));
    }
    if s.visits > 1 {
        return Err(Error::invalid("visits", "0 or 1 (最多跑一次)"));
    }
    if let Some(c) = &s.certificate
        && (c.kind.is_empty() || c.fields.is_empty())
    {
        return Err(Error::invalid("certificate", "a type and the fields it carries"));
    }
    if s.events.iter().any(|e| !catalog::EVENTS.iter().any(|(c, _, _)| c == e)) {
        return Err(Error::invalid("events", "known life or business events"));
    }
    Ok(())
}
