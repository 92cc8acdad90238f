//! 12345 接诉即办: complaints, requests for help, suggestions, enquiries, reports and praise,
//! received on every channel, routed with reasons to the department that owns them and
//! answered on time. A request runs the `hotline` workflow definition (data/workflow.json)
//! on the services' workflow engine: proposed by the classifier and the district's routing
//! table, dispatched (straight away when the proposal is confident, else by a dispatcher),
//! signed for, answered and rated by the person. Owns the tables of migration 0023.

mod categories;
pub mod classifier;
mod duplicates;
mod figures;
mod handling;
mod intake;
mod limits;
mod open311;
mod public;
mod repo;
mod routing;
mod supervision;
mod tallies;
mod views;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::pool::PoolConnection;

pub use categories::{Categories, Category};
pub use figures::{Breakdown, Figures, GroupFigures};
pub use handling::{Contact, Dispatching, HandlerAction, Handling, MAX_EXTENSION_DAYS, MyRequests, StaffRequest};
pub use intake::{Caller, Intake, NewRequest};
pub use open311::{Open311, Open311Client, PostedRequest, RequestQuery, ServiceRequest};
pub use public::{PER_PAGE, Published, PublishedAnswer, deidentify};
pub use routing::{Alternative, Proposal, Route, RouteBasis, Routing};
pub use supervision::Supervision;
pub use views::{Extension, ExtensionDecision, Photo, RequestLink, RequestView, Step};

use classifier::Model;
use identity::{Denial, Identity};
use kernel::db::Db;
use services::calendar::WorkingCalendar;
use services::workflow::{Definition, Guard, WorkflowError};

/// The most photos a request carries.
pub const MAX_PHOTOS: usize = 6;

/// The labelled examples the shipped model was trained on, and the held-out set it is
/// measured on (never trained on).
pub const TRAINING_SET: &str = include_str!("../data/train.tsv");
pub const HELD_OUT_SET: &str = include_str!("../data/heldout.tsv");
/// The model `tongban voice train` wrote from [`TRAINING_SET`].
pub const SHIPPED_MODEL: &str = include_str!("../data/model.json");
const WORKFLOW: &str = include_str!("../data/workflow.json");
/// The confidence at or above which a proposal with a department is dispatched without a
/// dispatcher; the workflow definition's `route` guard holds the same figure.
pub const CONFIDENT: f64 = 0.8;

kernel::vocabulary! {
    /// What kind of request a person makes.
    #[schema(as = VoiceRequestKind)]
    pub enum RequestKind {
        /// 投诉
        Complaint,
        /// 求助
        Help,
        /// 建议
        Suggestion,
        /// 咨询
        Enquiry,
        /// 举报: the reporter is hidden from the department reported on.
        Report,
        /// 表扬
        Praise,
    }
}

kernel::vocabulary! {
    /// Where a request came in.
    #[schema(as = VoiceChannel)]
    pub enum Channel {
        Portal,
        Api,
        Hotline,
        Open311,
    }
}

kernel::vocabulary! {
    #[derive(Default)]
    #[schema(as = VoiceUrgency)]
    pub enum Urgency {
        #[default]
        Normal,
        Urgent,
    }
}

kernel::vocabulary! {
    /// Where a request stands: the states of the `hotline` workflow.
    #[schema(as = VoiceStage)]
    pub enum Stage {
        /// Only while being written: the workflow moves on at once.
        Received,
        /// 待派单: in the dispatchers' queue.
        Dispatching,
        /// 待签收: sent to a department.
        Assigned,
        /// 办理中
        Handling,
        /// 延期审核: the department asked for more time; a dispatcher decides. The handling
        /// clock keeps running meanwhile.
        Extending,
        /// 已并单: merged into an earlier request about the same thing; it receives that one's
        /// answer.
        Merged,
        /// 已答复: waiting for the person's rating.
        Answered,
        /// 已办结
        Closed,
    }
}

kernel::vocabulary! {
    /// The person's rating of the answer (回访).
    #[schema(as = VoiceRating)]
    pub enum Rating {
        /// 满意
        Satisfied,
        /// 基本满意
        BasicallySatisfied,
        /// 不满意: reopens the request once.
        Unsatisfied,
    }
}

kernel::wire_name!(Breakdown, ExtensionDecision);

/// Errors of the voice module; each maps to one stable client code in the HTTP layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error(transparent)]
    Denied(#[from] Denial),
    #[error(transparent)]
    Workflow(#[from] WorkflowError),
    #[error("storage: {0}")]
    Storage(#[from] sqlx::Error),
    /// The upload pipeline refused or failed (a photo).
    #[error(transparent)]
    Uploads(#[from] services::Error),
    #[error("internal: {0}")]
    Internal(String),
}

impl Error {
    fn invalid(field: &'static str, reason: impl Into<String>) -> Error {
        Error::Invalid { field, reason: reason.into() }
    }
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(e.to_string())
}

identity::from_identity_error!(Error);

/// The voice module's handle: what its areas share.
#[derive(Clone)]
pub struct Voice {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    identity: Identity,
    /// The upload pipeline photos come through, and the calendar limits count on.
    services: services::Services,
    calendar: WorkingCalendar,
    model: Model,
    categories: Categories,
    workflow: Definition,
    limits: limits::Limits,
}

impl Voice {
    /// The module with the shipped model, category table and workflow; photos come through
    /// the services' uploads, and limits count on their calendar.
    pub fn new(db: Db, identity: Identity, services: services::Services) -> Result<Voice, Error> {
        let calendar = services.calendar().clone();
        let model: Model = serde_json::from_str(SHIPPED_MODEL).map_err(internal)?;
        let categories = Categories::shipped()?;
        for class in &model.classes {
            categories
                .get(class)
                .ok_or_else(|| internal(format!("the model knows category {class}, the table not")))?;
        }
        let workflow = Definition::from_json(WORKFLOW).map_err(internal)?;
        let guard = workflow.actions.iter().find(|a| a.id == "route").and_then(|a| a.guard.as_ref());
        if guard.and_then(threshold) != Some(CONFIDENT) {
            return Err(internal("the workflow's route guard and CONFIDENT disagree"));
        }
        let limits = limits::Limits::shipped()?;
        if let Some(unknown) = limits.categories().find(|c| categories.get(c).is_none()) {
            return Err(internal(format!("the limits name no category {unknown}")));
        }
        Ok(Voice { inner: Arc::new(Inner { db, identity, services, calendar, model, categories, workflow, limits }) })
    }

    pub fn categories(&self) -> &Categories {
        &self.inner.categories
    }

    async fn conn(&self) -> Result<PoolConnection<sqlx::Any>, Error> {
        Ok(self.inner.db.pool.acquire().await?)
    }

    /// Proposals (classify and route).
    pub fn routing(&self) -> Routing<'_> {
        Routing(self)
    }

    /// Receiving requests, on every channel.
    pub fn intake(&self) -> Intake<'_> {
        Intake(self)
    }

    /// The dispatchers' queue (派单).
    pub fn dispatching(&self) -> Dispatching<'_> {
        Dispatching(self)
    }

    /// A department's 12345 inbox: sign for, send back, answer.
    pub fn handling(&self) -> Handling<'_> {
        Handling(self)
    }

    /// How departments answer: 响应率, 解决率, 满意率 and the times behind them.
    pub fn figures(&self) -> Figures<'_> {
        Figures(self)
    }

    /// Open311 GeoReport v2: client applications, services and public requests.
    pub fn open311(&self) -> Open311<'_> {
        Open311(self)
    }

    /// The answered requests whose authors agreed to publish them, de-identified.
    pub fn published(&self) -> Published<'_> {
        Published(self)
    }

    /// The person's own requests: the timeline and the rating.
    pub fn my_requests(&self) -> MyRequests<'_> {
        MyRequests(self)
    }
}

/// The confidence a guard asks for (`confidence >= x`, alone or among others).
fn threshold(guard: &Guard) -> Option<f64> {
    match guard {
        Guard::Compare(field, op, value) if field == "confidence" && op == ">=" => value.as_f64(),
        Guard::All(guards) => guards.iter().find_map(threshold),
        _ => None,
    }
}

impl Voice {
    /// When the step a request is now in is due.
    fn due(&self, stage: Stage, of: (RequestKind, &str, Urgency), from: DateTime<Utc>) -> Option<i64> {
        self.inner.limits.due(stage, of, from, &self.inner.calendar).map(kernel::db::millis)
    }
}

/// The China day of an instant, as request numbers count them.
fn china_day(now: DateTime<Utc>) -> String {
    now.with_timezone(&services::calendar::cst()).format("%Y%m%d").to_string()
}
