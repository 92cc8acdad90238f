//! Applications: submission with prefill and sealed sensitive fields, the case run by its
//! workflow definition, one history row and one audit ledger entry per transition, the
//! staff inbox with claim, transfer and escalation, supplement (补正) once, withdrawal,
//! bundles, assisted submission, notifications and ratings.

mod casework;
mod intake;
mod my_cases;
mod ratings;
pub use casework::Casework;
pub use intake::Intake;
pub use my_cases::MyCases;
pub use ratings::Ratings;

use kernel::audit::{Action, Outcome};
use kernel::error::ErrorCode;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::AnyConnection;

use super::catalog::{Audience, BundleSpec, Level};
use super::forms::Form;
use super::workflow::{Actor, Case, Context, Decision, Definition, Phase};
use super::{Error, PublishedService, Services, internal, repo};
use identity::{AccountKind, ApplicantFacts, Capability, Denial, Principal, Scope};
use kernel::authz::{ApplicationAssist, ApplicationHandle, ServiceManage};
use kernel::db::{from_millis, millis, new_id};
use ledger::{self, Log};

/// Classification of application data: personal, sensitive (L3).
pub(super) const APPLICATION_CLASSIFICATION: u8 = 3;
/// How long a window confirmation code lives.
const ASSIST_CODE_MINUTES: i64 = 10;

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
    pub certificates: Vec<String>,
    pub rating: Option<RatingView>,
    pub documents: Vec<DocumentView>,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DueState {
    OnTime,
    DueSoon,
    Overdue,
}

impl DueState {
    pub fn parse(s: &str) -> Option<DueState> {
        match s {
            "on_time" => Some(DueState::OnTime),
            "due_soon" => Some(DueState::DueSoon),
            "overdue" => Some(DueState::Overdue),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InboxItem {
    pub task_id: String,
    pub kind: String,
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

fn phase_zh(p: Phase) -> &'static str {
    match p {
        Phase::Submitted => "已提交",
        Phase::InReview => "审查中",
        Phase::Supplement => "待补正",
        Phase::Approved => "已批准",
        Phase::Rejected => "不予批准",
        Phase::Refused => "不予受理",
        Phase::Completed => "已办结",
        Phase::Withdrawn => "已撤回",
    }
}

fn phase_en(p: Phase) -> &'static str {
    match p {
        Phase::Submitted => "submitted",
        Phase::InReview => "in review",
        Phase::Supplement => "waiting for more material",
        Phase::Approved => "approved",
        Phase::Rejected => "rejected",
        Phase::Refused => "not accepted",
        Phase::Completed => "completed",
        Phase::Withdrawn => "withdrawn",
    }
}

/// The region a service of `level` is handled at, as a path prefix of the applicant's region.
fn handling_region(path: &str, level: Level) -> String {
    let depth = match level {
        Level::Province => 1,
        Level::City => 2,
        Level::District => 3,
    };
    let codes: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let kept = codes.iter().take(depth).copied().collect::<Vec<_>>().join("/");
    format!("/{kept}/")
}

/// The state a withdrawn case is in. Any case may be withdrawn before a decision, so it is
/// not part of each definition.
const WITHDRAWN: &str = "withdrawn";

/// The phase people see while a case is in `state`.
fn phase_of(def: &Definition, state: &str) -> Result<Phase, Error> {
    if state == WITHDRAWN {
        return Ok(Phase::Withdrawn);
    }
    def.state(state)
        .map(|s| s.phase)
        .ok_or_else(|| Error::Internal(format!("workflow `{}` v{} has no state `{state}`", def.code, def.version)))
}

/// An `audit` ledger entry for a successful action by an account.
fn audit_entry(action: Action, actor_id: &str, actor_name: &str, now: DateTime<Utc>) -> ledger::Entry {
    let mut entry = ledger::Entry::new(action, Outcome::Success, now);
    entry.actor = Some(actor_id.into());
    entry.actor_name = Some(clip(actor_name, 64));
    entry
}

fn clip(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// The workflow of a bundle: intake at the lead department, then every member's department
/// in parallel (并联审批), stopping at the first rejection.
pub fn bundle_definition(bundle: &BundleSpec, members: &[PublishedService]) -> Result<Definition, Error> {
    let branches: Vec<Value> = members
        .iter()
        .map(|m| serde_json::json!({"id": m.spec.code, "role": "approver", "department": m.spec.department}))
        .collect();
    let days = members.iter().map(|m| m.spec.committed_days).max().unwrap_or(0).max(1);
    let def = serde_json::json!({
        "code": format!("bundle-{}", bundle.code), "version": 1, "initial": "submitted", "sla_days": days,
        "states": [
            {"id": "submitted", "phase": "submitted", "sla_days": 1, "supervisor": "leader"},
            {"id": "supplement", "phase": "supplement"},
            {"id": "joint_review", "phase": "in_review", "sla_days": days, "supervisor": "leader", "parallel": {
                "branches": branches, "on_approved": "approved", "on_rejected": "rejected", "stop_on_reject": true}},
            {"id": "approved", "phase": "approved"},
            {"id": "refused", "phase": "refused", "terminal": true},
            {"id": "rejected", "phase": "rejected", "terminal": true},
            {"id": "completed", "phase": "completed", "terminal": true}
        ],
        "actions": [
            {"id": "accept", "from": "submitted", "to": "joint_review", "roles": ["window_clerk"]},
            {"id": "refuse", "from": "submitted", "to": "refused", "roles": ["window_clerk"]},
            {"id": "request_supplement", "from": "submitted", "to": "supplement", "roles": ["window_clerk"]},
            {"id": "resubmit", "from": "supplement", "to": "submitted", "roles": ["applicant"]},
            {"id": "complete", "from": "approved", "to": "completed", "automatic": true}
        ]
    });
    Definition::from_json(&def.to_string()).map_err(internal)
}

/// One form made of the members' forms: each field once (the first member's definition
/// wins), required if any member requires it, sections per member.
pub fn bundle_form(bundle: &BundleSpec, forms: &[(&PublishedService, &Form)]) -> Result<Form, Error> {
    let mut properties = Map::new();
    let mut required: Vec<Value> = Vec::new();
    let mut layout: Vec<Value> = Vec::new();
    for (svc, form) in forms {
        let Some(props) = form.schema.get("properties").and_then(Value::as_object) else { continue };
        let mut fresh = Vec::new();
        for (k, v) in props {
            if !properties.contains_key(k) {
                properties.insert(k.clone(), v.clone());
                fresh.push(Value::from(k.clone()));
            }
        }
        for r in form.schema.get("required").and_then(Value::as_array).cloned().unwrap_or_default() {
            if !required.contains(&r) {
                required.push(r);
            }
        }
        if !fresh.is_empty() {
            layout
                .push(serde_json::json!({"title_zh": svc.spec.name_zh, "title_en": svc.spec.name_en, "fields": fresh}));
        }
    }
    let schema = serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": bundle.name_zh,
        "type": "object",
        "additionalProperties": false,
        "required": required,
        "properties": properties,
        "x-layout": layout,
    });
    Form::compile(schema).map_err(internal)
}

struct NewCase<'a> {
    facts: &'a ApplicantFacts,
    service: &'a PublishedService,
    bundle: Option<(&'a BundleSpec, &'a [PublishedService])>,
    data: Value,
    documents: &'a [String],
    assisted_by: Option<Assist<'a>>,
}

/// Who submitted for the applicant, and how the applicant confirmed.
/// A new case, ready to be written: everything read, validated and sealed beforehand.
pub(super) struct CaseToWrite {
    id: String,
    applicant_id: String,
    applicant_name: String,
    service: PublishedService,
    bundle_code: Option<String>,
    def: Arc<Definition>,
    case: Case,
    data: Value,
    form_body: String,
    sealed: Option<String>,
    prefill: String,
    documents: Vec<String>,
    assist: Option<AssistOwned>,
    department_id: String,
    region_path: String,
    /// The applicant gave an address for notifications by email.
    wants_email: bool,
}

/// A new case as written: its row, its history and its form values.
pub(super) struct WrittenCase {
    row: repo::ApplicationRow,
    history: Vec<repo::HistoryRow>,
    form: Value,
}

/// What a case's view is made of.
struct CaseParts {
    row: repo::ApplicationRow,
    service: PublishedService,
    form: Value,
    history: Vec<repo::HistoryRow>,
    tasks: Vec<repo::TaskRow>,
    applicant: String,
    certificates: Vec<String>,
    rating: Option<repo::RatingRow>,
    documents: Vec<repo::DocumentRow>,
    names: (String, String),
}

/// A new case waiting for the next group commit, and what it answers.
pub(super) type QueuedCase = (CaseToWrite, DateTime<Utc>);
pub(super) type NewCases = kernel::db::Batch<QueuedCase, Result<WrittenCase, Error>>;

/// A new case as [`Services::write_cases`] wrote its row, with what remains to do for it.
struct CaseWritten {
    row: repo::ApplicationRow,
    service: PublishedService,
    data: Value,
    documents: Vec<String>,
    wants_email: bool,
    phase: Phase,
    approved: bool,
}

/// The audit-ledger entry of a case's transition.
fn transition_entry(
    t: &super::workflow::Transition,
    actor_id: &str,
    row: &repo::ApplicationRow,
    now: DateTime<Utc>,
) -> ledger::Entry {
    let mut entry = ledger::Entry::case_transition(&clip(&t.action, 40), now);
    entry.actor = Some(if t.actor == "system" { "system".into() } else { actor_id.into() });
    entry.actor_name = Some(clip(&t.actor, 64));
    entry.object = Some(format!("application:{}", row.number));
    entry.subject = Some(row.applicant_id.clone());
    entry.jurisdiction = Some(row.region_path.clone());
    entry.detail = Some(clip(&format!("{} → {}", t.from, t.to), 200));
    entry
}

/// The history row of a transition; its ledger index is set once the entry has one.
fn history_row(t: &super::workflow::Transition, seq: i64, actor_id: &str) -> repo::HistoryRow {
    repo::HistoryRow {
        seq,
        action: t.action.clone(),
        from_state: t.from.clone(),
        to_state: t.to.clone(),
        actor_id: (t.actor != "system").then(|| actor_id.to_string()),
        actor_name: clip(&t.actor, 64),
        comment: t.comment.as_deref().map(|c| clip(c, 1000)),
        explanation: t.explanation.as_deref().map(|c| clip(c, 1000)),
        at: millis(t.at),
        ledger_index: 0,
    }
}

/// What the applicant is told when their case reaches a phase (Chinese, English).
fn phase_notice(row: &repo::ApplicationRow, service: &PublishedService, phase: Phase) -> (String, String) {
    let name = &service.spec.name_zh;
    (
        format!("您的申请 {}（{name}）{}。", row.number, phase_zh(phase)),
        format!("Your application {} ({}) is {}.", row.number, service.spec.name_en, phase_en(phase)),
    )
}

/// Queues the notice by email (the outbox sends it after commit).
async fn email_notice(
    tx: &mut AnyConnection,
    row: &repo::ApplicationRow,
    phase: Phase,
    text_zh: &str,
    text_en: &str,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let subject = format!("【通办】{} {}", row.number, phase_zh(phase));
    let payload = serde_json::json!({"account_id": row.applicant_id, "subject": subject,
        "body": format!("{text_zh}\n\n{text_en}\n")});
    kernel::outbox::enqueue(tx, kernel::outbox::Topic::Notification, &payload, now).await?;
    Ok(())
}

/// [`Assist`] carried into the group commit.
struct AssistOwned {
    staff_id: String,
    staff_name: String,
    confirmed_by: String,
    code: Option<String>,
}

struct Assist<'a> {
    staff_id: &'a str,
    staff_name: &'a str,
    confirmed_by: &'a str,
    /// The hash of the code they were sent; used up in the submitting transaction.
    code: Option<String>,
}

impl Services {
    /// The applicant's facts: profile data plus the fields of their valid certificates.
    async fn facts(&self, account_id: &str, now: DateTime<Utc>) -> Result<ApplicantFacts, Error> {
        let mut facts = self.inner.identity.people().applicant_facts(account_id, now).await?;
        for cert in self.certificates().valid_certificates_of(account_id, now).await? {
            for (field, value) in cert.fields {
                facts.facts.insert(format!("certificate:{}.{field}", cert.kind), value);
            }
        }
        Ok(facts)
    }

    /// Refuses an applicant the service (or bundle) is not for: `wrong_audience`.
    pub fn check_audience(audience: Audience, kind: AccountKind) -> Result<(), Error> {
        match (audience, kind) {
            (Audience::Citizen, AccountKind::Citizen) | (Audience::Enterprise, AccountKind::Enterprise) => Ok(()),
            (Audience::Citizen, _) => Err(Error::conflict(ErrorCode::WrongAudience, "this service is for residents")),
            (Audience::Enterprise, _) => {
                Err(Error::conflict(ErrorCode::WrongAudience, "this service is for enterprises"))
            }
        }
    }

    /// Stores the generated workflow of a bundle (so its cases keep their version).
    pub async fn publish_bundle_workflow(
        &self,
        cap: &Capability<ServiceManage>,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<u32, Error> {
        let bundle = self.bundle(code).await?;
        let mut members = Vec::new();
        for s in &bundle.services {
            members.push(self.service(s).await?);
        }
        let def = bundle_definition(&bundle, &members)?;
        self.publish_workflow(cap, def, now).await
    }

    async fn assisted_person(
        &self,
        cap: &Capability<ApplicationAssist>,
        id_number: &str,
        now: DateTime<Utc>,
    ) -> Result<(String, ApplicantFacts), Error> {
        let account_id = self
            .inner
            .identity
            .people()
            .citizen_by_id_number(id_number)
            .await?
            .ok_or(Error::NotFound("resident with this ID number"))?;
        let facts = self.facts(&account_id, now).await?;
        let path = facts.region.as_ref().map(|r| r.path.clone()).unwrap_or_default();
        cap.check_record(&path, APPLICATION_CLASSIFICATION)?;
        Ok((account_id, facts))
    }

    async fn create(&self, n: NewCase<'_>, now: DateTime<Utc>) -> Result<WrittenCase, Error> {
        let NewCase { facts, service, bundle, mut data, documents, assisted_by } = n;
        let (form, def) = match bundle {
            Some((b, _)) => {
                let (_, form) = self.intake().bundle_form(&b.code).await?;
                let mut c = self.conn().await?;
                let code = format!("bundle-{}", b.code);
                let (version, _) =
                    repo::workflow_latest(&mut c, &code).await?.ok_or(Error::NotFound("bundle workflow"))?;
                drop(c);
                (form, self.definition(&code, version).await?)
            }
            None => (
                self.form(&service.form_id).await?,
                self.definition(&service.workflow, i64::from(service.workflow_version)).await?,
            ),
        };
        if !data.is_object() {
            return Err(Error::invalid("form", "the form values are a JSON object"));
        }
        let prefill = form.apply_prefill(&mut data, &facts.facts);
        form.validate(&data).map_err(Error::Form)?;
        let region = facts.region.as_ref().ok_or_else(|| {
            Error::conflict(ErrorCode::NoRegion, "the applicant has no registered region: apply at a window")
        })?;
        let at = handling_region(&region.path, service.spec.level);
        let department = self
            .inner
            .identity
            .organisation()
            .nearest_department(&at, &service.spec.department)
            .await?
            .ok_or(Error::NotFound("department handling this service for your region"))?;
        let calendar = &self.inner.calendar;
        let mut case = Case::start(&def, &data, now, calendar);
        let committed = bundle
            .map(|(_, ms)| ms.iter().map(|m| m.spec.committed_days).max().unwrap_or(0))
            .unwrap_or(service.spec.committed_days);
        if def.sla_days.is_none() && committed > 0 {
            case.case_due = Some(calendar.deadline(now, committed));
        }
        let (plain, sensitive) = form.split_sensitive(&data);
        let id = new_id();
        // Sealed before the write transaction: it needs no lock, and SQLite has one writer.
        let sealed = if sensitive.is_empty() {
            None
        } else {
            let text = serde_json::to_string(&sensitive).map_err(internal)?;
            Some(self.inner.identity.protector().seal(&text, &form_context(&id)).await.map_err(internal)?)
        };
        let write = CaseToWrite {
            id: id.clone(),
            applicant_id: facts.account_id.clone(),
            applicant_name: facts.display_name.clone(),
            service: service.clone(),
            bundle_code: bundle.map(|(b, _)| b.code.clone()),
            def,
            case,
            data,
            form_body: serde_json::to_string(&plain).map_err(internal)?,
            sealed,
            prefill: prefill.to_string(),
            documents: documents.to_vec(),
            assist: assisted_by.map(|a| AssistOwned {
                staff_id: a.staff_id.to_string(),
                staff_name: a.staff_name.to_string(),
                confirmed_by: a.confirmed_by.to_string(),
                code: a.code,
            }),
            department_id: department.id.clone(),
            region_path: region.path.clone(),
            wants_email: facts.wants_email,
        };
        self.write_new_case(write, now).await
    }

    /// Queues a new case for the next group commit and waits until it is durable: the
    /// cases queued together are written with one multi-row statement a table, so a burst
    /// of submissions costs the writer a handful of statements instead of ten each.
    async fn write_new_case(&self, case: CaseToWrite, now: DateTime<Utc>) -> Result<WrittenCase, Error> {
        let this = self.clone();
        self.inner
            .db
            .write_batched(&self.inner.new_cases, (case, now), move |tx, cases| {
                Box::pin(async move { this.write_queued(tx, cases).await })
            })
            .await?
    }

    /// Writes the queued cases, answering them in order. Those with materials or a window
    /// confirmation have checks that can fail, so each runs in a savepoint of its own; the
    /// rest are written together.
    async fn write_queued(
        &self,
        tx: &mut AnyConnection,
        cases: Vec<QueuedCase>,
    ) -> Result<Vec<Result<WrittenCase, Error>>, Error> {
        use sqlx::Connection;
        let mut answers: Vec<Option<Result<WrittenCase, Error>>> = Vec::with_capacity(cases.len());
        let (mut plain, mut plain_at) = (Vec::with_capacity(cases.len()), Vec::with_capacity(cases.len()));
        for (at, (case, now)) in cases.into_iter().enumerate() {
            if case.documents.is_empty() && case.assist.is_none() {
                plain.push((case, now));
                plain_at.push(at);
                answers.push(None);
                continue;
            }
            let mut savepoint = tx.begin().await?;
            let result = self
                .write_cases(&mut savepoint, vec![(case, now)])
                .await
                .and_then(|mut w| w.pop().ok_or_else(|| internal("a written case is missing")));
            if result.is_ok() {
                savepoint.commit().await?;
            } else {
                savepoint.rollback().await?;
            }
            answers.push(Some(result));
        }
        if !plain.is_empty() {
            let written = self.write_cases(tx, plain).await?;
            for (at, case) in plain_at.into_iter().zip(written) {
                if let Some(slot) = answers.get_mut(at) {
                    *slot = Some(Ok(case));
                }
            }
        }
        Ok(answers.into_iter().map(|a| a.unwrap_or_else(|| Err(internal("a queued case was not written")))).collect())
    }

    /// Writes new cases: their numbers, rows, first history rows and ledger entries, tasks,
    /// notifications and materials. An assisted citizen's code is used up here, so a wrong
    /// code writes nothing.
    async fn write_cases(
        &self,
        tx: &mut AnyConnection,
        cases: Vec<(CaseToWrite, DateTime<Utc>)>,
    ) -> Result<Vec<WrittenCase>, Error> {
        for (w, now) in &cases {
            if let Some(AssistOwned { staff_id, code: Some(hash), .. }) = &w.assist
                && !repo::consume_assist_code(tx, &w.applicant_id, staff_id, hash, millis(*now)).await?
            {
                return Err(Error::conflict(ErrorCode::InvalidCode, "the confirmation code is wrong or has expired"));
            }
        }
        // One range of numbers a day (cases queued across midnight take two).
        let days: Vec<String> = cases
            .iter()
            .map(|(_, now)| now.with_timezone(&super::calendar::cst()).format("%Y%m%d").to_string())
            .collect();
        let mut next_number: HashMap<&str, i64> = HashMap::new();
        for day in &days {
            if !next_number.contains_key(day.as_str()) {
                let count = days.iter().filter(|d| *d == day).count();
                let first = repo::reserve_numbers(tx, day, i64::try_from(count).unwrap_or(i64::MAX)).await?;
                next_number.insert(day, first);
            }
        }
        let mut written = Vec::with_capacity(cases.len());
        let mut entries = Vec::with_capacity(cases.len());
        let mut histories = Vec::with_capacity(cases.len());
        let mut tasks = Vec::with_capacity(cases.len());
        for ((w, now), day) in cases.into_iter().zip(&days) {
            let n = next_number.get_mut(day.as_str()).ok_or_else(|| internal("no number reserved"))?;
            let number = format!("YL-{day}-{n:06}");
            *n += 1;
            let CaseToWrite { id, applicant_id, applicant_name, service, bundle_code, def, mut case, data, .. } = w;
            let phase = phase_of(&def, &case.state)?;
            let mut row = repo::ApplicationRow {
                id,
                number,
                service_id: service.id.clone(),
                service_version: i64::from(service.version),
                bundle_code,
                applicant_id: applicant_id.clone(),
                assisted_by: w.assist.as_ref().map(|a| a.staff_id.clone()),
                confirmed_by: w.assist.as_ref().map(|a| a.confirmed_by.clone()),
                department_id: w.department_id,
                region_path: w.region_path,
                status: phase.as_str().into(),
                state: case.state.clone(),
                workflow_code: def.code.clone(),
                workflow_version: i64::from(def.version),
                case_body: String::new(),
                form_body: w.form_body,
                sealed_form: w.sealed,
                prefill: w.prefill,
                supplements: 0,
                supplement_note: None,
                revision: 0,
                due_at: case.case_due.map(millis),
                created_at: millis(now),
                updated_at: millis(now),
            };
            let (actor_id, actor_name) = match &w.assist {
                Some(a) => (a.staff_id.clone(), format!("{}（帮办）", a.staff_name)),
                None => (applicant_id.clone(), applicant_name),
            };
            // The submission itself is the first row of the history.
            case.history.insert(
                0,
                super::workflow::Transition {
                    action: "submit".into(),
                    from: String::new(),
                    to: def.initial.clone(),
                    actor: actor_name,
                    comment: None,
                    at: now,
                    explanation: w.assist.as_ref().map(|a| format!("confirmed by {}", a.confirmed_by)),
                },
            );
            row.case_body = case_body(&case)?;
            let mut approved = false;
            for (seq, t) in (1..).zip(case.history.drain(..)) {
                approved |= phase_of(&def, &t.to)? == Phase::Approved;
                entries.push(transition_entry(&t, &actor_id, &row, now));
                histories.push((written.len(), history_row(&t, seq, &actor_id)));
            }
            tasks.extend(self.wanted_tasks(tx, &row, &case, &def).await?);
            written.push(CaseWritten {
                row,
                service,
                data,
                documents: w.documents,
                wants_email: w.wants_email,
                phase,
                approved,
            });
        }
        repo::insert_applications(tx, &written.iter().map(|c| c.row.clone()).collect::<Vec<_>>()).await?;
        let indexes = ledger::append_many_in(tx, Log::Audit, &entries).await?;
        for ((_, h), index) in histories.iter_mut().zip(indexes) {
            h.ledger_index = i64::try_from(index).unwrap_or(i64::MAX);
        }
        let rows: Vec<(&str, &repo::HistoryRow)> =
            histories.iter().filter_map(|(i, h)| written.get(*i).map(|c| (c.row.id.as_str(), h))).collect();
        repo::insert_histories(tx, &rows).await?;
        repo::insert_tasks(tx, &tasks).await?;
        let notices: Vec<(String, String)> =
            written.iter().map(|c| phase_notice(&c.row, &c.service, c.phase)).collect();
        let notifications: Vec<repo::NewNotification<'_>> = written
            .iter()
            .zip(&notices)
            .map(|(c, (zh, en))| repo::NewNotification {
                account_id: &c.row.applicant_id,
                application_id: Some(&c.row.id),
                text_zh: zh,
                text_en: en,
                at: c.row.created_at,
            })
            .collect();
        repo::insert_notifications(tx, &notifications).await?;
        for (c, (zh, en)) in written.iter().zip(&notices) {
            let now = from_millis(c.row.created_at);
            if c.wants_email {
                email_notice(tx, &c.row, c.phase, zh, en, now).await?;
            }
            for d in &c.documents {
                if !repo::attach_document(tx, d, &c.row.applicant_id, &c.row.id).await? {
                    return Err(Error::invalid(
                        "documents",
                        format!("document {d} is not an unattached upload of yours"),
                    ));
                }
            }
            if c.approved {
                self.certificates().issue_for(tx, &c.row, &c.data, now).await?;
            }
        }
        let mut cases: Vec<WrittenCase> = written
            .into_iter()
            .map(|c| WrittenCase { row: c.row, history: Vec::with_capacity(1), form: c.data })
            .collect();
        for (i, h) in histories {
            if let Some(c) = cases.get_mut(i) {
                c.history.push(h);
            }
        }
        Ok(cases)
    }

    /// Writes what a step did: history rows and ledger entries, tasks closed and opened, the
    /// new status, the applicant's notification, and certificates on approval.
    async fn record_change(
        &self,
        tx: &mut AnyConnection,
        row: &mut repo::ApplicationRow,
        case: &mut Case,
        before: (&str, Phase),
        ctx: &Change<'_>,
    ) -> Result<(), Error> {
        let Change { def, service, data, actor_id, now } = *ctx;
        let mut seq = repo::history_len(tx, &row.id).await?;
        let mut approved_now = false;
        for t in case.history.drain(..) {
            approved_now |= phase_of(def, &t.to)? == Phase::Approved;
            let index = ledger::append_in(tx, Log::Audit, &transition_entry(&t, actor_id, row, now)).await?;
            seq += 1;
            let mut history = history_row(&t, seq, actor_id);
            history.ledger_index = i64::try_from(index).unwrap_or(i64::MAX);
            repo::insert_history(tx, &row.id, &history).await?;
        }
        let state_changed = before.0 != case.state;
        for t in repo::open_tasks_of(tx, &row.id).await?.iter().filter(|t| t.kind == "case") {
            let branch_decided = t.branch.as_ref().is_some_and(|b| case.branches.get(b) != Some(&Decision::Pending));
            if state_changed || branch_decided {
                repo::close_task(tx, &t.id, repo::TaskStatus::Done, millis(now)).await?;
            }
        }
        if state_changed {
            let tasks = self.wanted_tasks(tx, row, case, def).await?;
            repo::insert_tasks(tx, &tasks).await?;
        }
        let phase = phase_of(def, &case.state)?;
        row.status = phase.as_str().into();
        row.state = case.state.clone();
        row.case_body = case_body(case)?;
        row.updated_at = millis(now);
        if before.1 != phase {
            let (text_zh, text_en) = phase_notice(row, service, phase);
            repo::insert_notification(tx, &row.applicant_id, Some(&row.id), &text_zh, &text_en, millis(now)).await?;
            // By email too, for those who gave an address (sent from the outbox after commit).
            if self.inner.identity.settings().wants_email_in(tx, &row.applicant_id).await? {
                email_notice(tx, row, phase, &text_zh, &text_en, now).await?;
            }
        }
        if approved_now {
            self.certificates().issue_for(tx, row, data, now).await?;
        }
        Ok(())
    }

    /// The tasks a case in its current state waits on: one per parallel branch (at the
    /// department the branch names, nearest the case), else one for the role that acts next.
    async fn wanted_tasks(
        &self,
        tx: &mut AnyConnection,
        row: &repo::ApplicationRow,
        case: &Case,
        def: &Definition,
    ) -> Result<Vec<repo::TaskRow>, Error> {
        let Some(state) = def.state(&case.state) else { return Ok(Vec::new()) };
        if state.terminal {
            return Ok(Vec::new());
        }
        let mut wanted: Vec<(Option<String>, String, String)> = Vec::new();
        if let Some(p) = &state.parallel {
            for b in &p.branches {
                let department = match &b.department {
                    Some(kind) => {
                        let at = handling_region(&row.region_path, Level::District);
                        self.inner
                            .identity
                            .organisation()
                            .nearest_department_in(tx, &at, kind)
                            .await?
                            .map(|d| d.id)
                            .ok_or(Error::NotFound("department for a parallel branch"))?
                    }
                    None => row.department_id.clone(),
                };
                wanted.push((Some(b.id.clone()), b.role.clone(), department));
            }
        } else if let Some(role) = def
            .actions
            .iter()
            .filter(|a| a.from == case.state && !a.automatic)
            .flat_map(|a| a.roles.iter())
            .find(|r| r.as_str() != "applicant")
        {
            wanted.push((None, role.clone(), row.department_id.clone()));
        }
        Ok(wanted
            .into_iter()
            .map(|(branch, role, department_id)| repo::TaskRow {
                id: new_id(),
                kind: "case".into(),
                application_id: row.id.clone(),
                state: case.state.clone(),
                branch,
                role,
                department_id,
                region_path: row.region_path.clone(),
                assignee_id: None,
                status: repo::TaskStatus::Open.as_str().into(),
                due_at: case.state_due.or(case.case_due).map(millis),
                warned_at: None,
                escalated_to: None,
                created_at: row.updated_at,
            })
            .collect())
    }

    /// Form values in plain: the stored ones and the sealed ones opened.
    async fn form_values(&self, c: &mut AnyConnection, row: &repo::ApplicationRow) -> Result<Value, Error> {
        let mut values: Map<String, Value> = serde_json::from_str(&row.form_body).map_err(internal)?;
        if let Some(sealed) = &row.sealed_form {
            let opened =
                self.inner.identity.protector().open_in(c, sealed, &form_context(&row.id)).await.map_err(internal)?;
            let sensitive: Map<String, Value> = serde_json::from_str(&opened).map_err(internal)?;
            values.extend(sensitive);
        }
        Ok(Value::Object(values))
    }

    /// What a case is called: its bundle's name, or its service's.
    async fn case_name(
        c: &mut AnyConnection,
        row: &repo::ApplicationRow,
        service: &PublishedService,
    ) -> (String, String) {
        if let Some(code) = &row.bundle_code
            && let Ok(b) = Self::bundle_in(c, code).await
        {
            return (b.name_zh, b.name_en);
        }
        (service.spec.name_zh.clone(), service.spec.name_en.clone())
    }

    /// A case as stored, with its workflow definition and service. The versions of both
    /// never change for a case, so they are looked up before a write transaction, which must
    /// not wait for a second pooled connection.
    async fn case_setup(
        &self,
        id: &str,
    ) -> Result<(repo::ApplicationRow, std::sync::Arc<Definition>, PublishedService), Error> {
        let mut c = self.conn().await?;
        let row = repo::application(&mut c, id).await?.ok_or(Error::NotFound("application"))?;
        let service = self.service_version(&mut c, &row.service_id, row.service_version).await?;
        drop(c);
        let def = self.definition(&row.workflow_code, row.workflow_version).await?;
        Ok((row, def, service))
    }

    async fn view(&self, id: &str, viewer: Viewer<'_>) -> Result<ApplicationView, Error> {
        let mut c = self.conn().await?;
        let row = repo::application(&mut c, id).await?.ok_or(Error::NotFound("application"))?;
        let service = self.service_version(&mut c, &row.service_id, row.service_version).await?;
        let parts = CaseParts {
            form: self.form_values(&mut c, &row).await?,
            history: repo::history(&mut c, &row.id).await?,
            tasks: match viewer {
                Viewer::Staff { .. } => repo::open_tasks_of(&mut c, &row.id).await?,
                Viewer::Applicant => Vec::new(),
            },
            applicant: self.inner.identity.accounts().display_name_in(&mut c, &row.applicant_id).await?,
            certificates: repo::certificate_ids_of_application(&mut c, &row.id).await?,
            rating: repo::rating(&mut c, &row.id).await?,
            documents: repo::documents_of(&mut c, &row.id).await?,
            names: Self::case_name(&mut c, &row, &service).await,
            row,
            service,
        };
        // The definition may need a connection of its own: never wait for one holding this.
        drop(c);
        self.assemble(parts, viewer).await
    }

    /// A case's view from its parts, as loaded or as just written.
    async fn assemble(&self, parts: CaseParts, viewer: Viewer<'_>) -> Result<ApplicationView, Error> {
        let CaseParts { row, service, form, history, tasks, applicant, certificates, rating, documents, names } = parts;
        let (name_zh, name_en) = names;
        let case: Case = serde_json::from_str(&row.case_body).map_err(internal)?;
        let def = self.definition(&row.workflow_code, row.workflow_version).await?;
        let phase = stored_phase(&row.status)?;
        let actions = match viewer {
            Viewer::Applicant => {
                let mut a = Vec::new();
                if phase == Phase::Supplement {
                    a.push("resubmit".to_string());
                }
                if !(phase.is_final() || phase == Phase::Approved) {
                    a.push("withdraw".to_string());
                }
                if phase.is_final() && phase != Phase::Withdrawn && rating.is_none() {
                    a.push("rate".to_string());
                }
                a
            }
            Viewer::Staff { department_id, roles } => {
                match tasks.iter().find(|t| t.kind == "case" && task_is_for(t, department_id, roles)) {
                    Some(t) if t.branch.is_some() => vec!["approve".into(), "reject".into()],
                    Some(t) => {
                        let escalated = t.escalated_to.as_ref().is_some_and(|r| roles.contains(r));
                        def.actions
                            .iter()
                            .filter(|a| a.from == case.state && !a.automatic)
                            .filter(|a| escalated || a.roles.iter().any(|r| roles.contains(r)))
                            .filter(|a| !(a.id == "request_supplement" && row.supplements >= 1))
                            .map(|a| a.id.clone())
                            .collect()
                    }
                    None => Vec::new(),
                }
            }
        };
        let rating = rating.map(|r| RatingView {
            score: r.score,
            comment: r.comment,
            created_at: from_millis(r.created_at),
            reply: r.reply,
            replied_at: r.replied_at.map(from_millis),
        });
        let documents = documents.into_iter().map(super::documents::document_view).collect();
        Ok(ApplicationView {
            id: row.id,
            number: row.number,
            service_id: row.service_id,
            service_code: service.spec.code.clone(),
            service_name_zh: name_zh,
            service_name_en: name_en,
            bundle: row.bundle_code,
            status: phase,
            state: row.state,
            applicant_id: row.applicant_id,
            applicant,
            assisted: row.assisted_by.is_some(),
            department_id: row.department_id,
            form,
            prefill: serde_json::from_str(&row.prefill).unwrap_or(Value::Null),
            supplement_note: row.supplement_note,
            supplements: row.supplements,
            branches: case.branches,
            due_at: row.due_at.map(from_millis),
            created_at: from_millis(row.created_at),
            updated_at: from_millis(row.updated_at),
            timeline: history
                .into_iter()
                .map(|h| TimelineEntry {
                    seq: h.seq,
                    action: h.action,
                    from: h.from_state,
                    to: h.to_state,
                    actor: h.actor_name,
                    comment: h.comment,
                    explanation: h.explanation,
                    at: from_millis(h.at),
                    ledger_index: h.ledger_index,
                })
                .collect(),
            actions,
            certificates,
            rating,
            documents,
        })
    }

    /// Counts of applications by phase (for the public statistics).
    pub async fn status_counts(&self) -> Result<BTreeMap<Phase, i64>, Error> {
        let mut c = self.conn().await?;
        let mut out = BTreeMap::new();
        for (status, n) in repo::status_counts(&mut c).await? {
            out.insert(stored_phase(&status)?, n);
        }
        Ok(out)
    }
}

/// Who is looking at a case.
#[derive(Clone, Copy)]
enum Viewer<'a> {
    Applicant,
    Staff { department_id: Option<&'a str>, roles: &'a [String] },
}

/// What every recorded step shares.
#[derive(Clone, Copy)]
struct Change<'a> {
    def: &'a Definition,
    service: &'a PublishedService,
    data: &'a Value,
    actor_id: &'a str,
    now: DateTime<Utc>,
}

fn task_is_for(t: &repo::TaskRow, department_id: Option<&str>, roles: &[String]) -> bool {
    department_id == Some(t.department_id.as_str())
        && (roles.contains(&t.role) || t.escalated_to.as_ref().is_some_and(|e| roles.contains(e)))
}

fn form_context(application_id: &str) -> String {
    format!("applications.form:{application_id}")
}

fn case_body(case: &Case) -> Result<String, Error> {
    // History lives in its own table.
    let mut c = case.clone();
    c.history.clear();
    serde_json::to_string(&c).map_err(internal)
}

/// An application of the caller's; someone else's is "not found", never "forbidden", so
/// case numbers cannot be probed.
async fn own_application(c: &mut AnyConnection, id: &str, account_id: &str) -> Result<repo::ApplicationRow, Error> {
    match repo::application(c, id).await? {
        Some(row) if row.applicant_id == account_id => Ok(row),
        _ => Err(Error::NotFound("application")),
    }
}

/// A case's stored status. One that is not a phase is a fault in the database, reported as
/// such, never read as some other phase.
pub(crate) fn stored_phase(status: &str) -> Result<Phase, Error> {
    Phase::parse(status).ok_or_else(|| Error::Internal(format!("stored application status `{status}` is not a phase")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_are_handled_at_their_level() {
        let home = "/990000/990100/990102/990102001/";
        assert_eq!(handling_region(home, Level::District), "/990000/990100/990102/");
        assert_eq!(handling_region(home, Level::City), "/990000/990100/");
        assert_eq!(handling_region(home, Level::Province), "/990000/");
    }
}
