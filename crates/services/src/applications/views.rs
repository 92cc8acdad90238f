//! What applicants and staff see of cases: views, summaries, the inbox and notices.

use super::*;

/// One step of a case as the applicant and staff see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TimelineEntry {
    pub seq: i64,
    pub action: String,
    pub from: String,
    pub to: String,
    pub actor: String,
    pub comment: Option<String>,
    /// Why an automatic step was taken.
    pub explanation: Option<String>,
    pub at: DateTime<Utc>,
    /// Its entry in the `audit` ledger.
    pub ledger_index: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RatingView {
    pub score: i64,
    pub comment: Option<String>,
    pub created_at: DateTime<Utc>,
    pub reply: Option<String>,
    pub replied_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DocumentView {
    pub id: String,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub material: Option<String>,
}

/// An application with its form values, timeline and what the viewer may do next.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ApplicationView {
    pub id: String,
    pub number: String,
    pub service_id: String,
    pub service_code: String,
    /// The form of the service version the case was submitted under.
    pub form_id: String,
    pub service_name_zh: String,
    pub service_name_en: String,
    pub bundle: Option<String>,
    pub status: Phase,
    pub state: String,
    pub applicant_id: String,
    pub applicant: String,
    pub assisted: bool,
    pub department_id: String,
    /// Form values (sensitive ones opened for the applicant, or for staff with an audit entry).
    #[schema(value_type = Object)]
    pub form: Value,
    /// Where prefilled values came from: `{field: {source, changed}}`.
    #[schema(value_type = Object)]
    pub prefill: Value,
    /// What a supplement request (补正) asked for.
    pub supplement_note: Option<String>,
    pub supplements: i64,
    /// Branch decisions of a parallel review (并联审批).
    pub branches: BTreeMap<String, Decision>,
    pub due_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub timeline: Vec<TimelineEntry>,
    /// Actions the viewer may take now.
    pub actions: Vec<String>,
    /// For staff: what each action does to the case, so that the page can set apart the
    /// ones that end it or send it back.
    pub action_weights: BTreeMap<String, ActionWeight>,
    pub certificates: Vec<String>,
    pub rating: Option<RatingView>,
    pub documents: Vec<DocumentView>,
}

/// What a staff action does to a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionWeight {
    /// Moves it on (accept, approve).
    Advances,
    /// Sends it back to the applicant (补正).
    Returns,
    /// Ends it without what was asked (不予受理, 不予批准).
    Ends,
}

/// A case in the applicant's list.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ApplicationSummary {
    pub id: String,
    pub number: String,
    pub service_id: String,
    pub service_name_zh: String,
    pub service_name_en: String,
    pub status: Phase,
    pub due_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Whether a task is on time, due within the next working day, or late.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::IntoStaticStr, strum::EnumString, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum DueState {
    OnTime,
    DueSoon,
    Overdue,
}

impl DueState {
    pub fn parse(s: &str) -> Option<DueState> {
        s.parse().ok()
    }
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InboxItem {
    pub task_id: String,
    pub kind: crate::repo::TaskKind,
    pub application_id: String,
    pub number: String,
    pub service_name_zh: String,
    pub service_name_en: String,
    pub applicant: String,
    pub status: Phase,
    pub state: String,
    pub branch: Option<String>,
    pub role: String,
    pub escalated: bool,
    pub assignee_id: Option<String>,
    pub due_at: Option<DateTime<Utc>>,
    pub due: DueState,
    pub submitted_at: DateTime<Utc>,
}

#[derive(Debug, Default, Clone, Serialize, utoipa::ToSchema)]
pub struct InboxCounts {
    pub total: usize,
    pub on_time: usize,
    pub due_soon: usize,
    pub overdue: usize,
    pub mine: usize,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Inbox {
    pub items: Vec<InboxItem>,
    /// Counts before filtering.
    pub counts: InboxCounts,
}

#[derive(Debug, Default, Clone)]
pub struct InboxFilter {
    pub due: Option<DueState>,
    pub mine: bool,
    pub service: Option<String>,
}

/// A colleague a task can be handed to.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Colleague {
    pub account_id: String,
    pub name: String,
}

/// An open task of the caller's and who could take it over.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TransferChoice {
    pub task_id: String,
    pub application_id: String,
    pub role: String,
    pub colleagues: Vec<Colleague>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NotificationView {
    pub id: String,
    pub application_id: Option<String>,
    pub text_zh: String,
    pub text_en: String,
    pub created_at: DateTime<Utc>,
    pub read: bool,
}

/// How the applicant confirmed a submission made for them at the window.
#[derive(Debug, Clone)]
pub enum Confirmation {
    /// The one-time code sent to their registered mobile.
    Code(String),
    /// They signed the printed form at the window; the clerk attests it.
    Signature,
}

/// What the timer pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TimerReport {
    pub warned: usize,
    pub escalated: usize,
}

/// What the prefill of a form holds for the applicant.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Prefill {
    #[schema(value_type = Object)]
    pub values: Map<String, Value>,
    pub sources: BTreeMap<String, String>,
}
