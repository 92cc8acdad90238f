//! Applications: submission with prefill and sealed sensitive fields, the case run by its
//! workflow definition, one history row and one audit ledger entry per transition, the
//! staff inbox with claim, transfer and escalation, supplement (补正) once, withdrawal,
//! bundles, assisted submission, notifications and ratings.

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
fn phase_of(def: &Definition, state: &str) -> Phase {
    if state == WITHDRAWN {
        return Phase::Withdrawn;
    }
    def.state(state).map(|s| s.phase).unwrap_or_default()
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
    /// What the form of a service can be prefilled with for the caller.
    pub async fn prefill(&self, me: &Principal, form: &Form, now: DateTime<Utc>) -> Result<Prefill, Error> {
        let facts = self.facts(&me.account_id, now).await?;
        let (values, sources) = form.prefill(&facts.facts);
        Ok(Prefill { values, sources })
    }

    /// The applicant's facts: profile data plus the fields of their valid certificates.
    async fn facts(&self, account_id: &str, now: DateTime<Utc>) -> Result<ApplicantFacts, Error> {
        let mut facts = self.inner.identity.applicant_facts(account_id, now).await?;
        for cert in self.valid_certificates_of(account_id, now).await? {
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

    /// Submits an application: the form is validated, prefilled values that may not be
    /// changed are taken from the source, sensitive values are sealed, and the case starts.
    pub async fn submit(
        &self,
        me: &Principal,
        service: &str,
        data: Value,
        documents: &[String],
        now: DateTime<Utc>,
    ) -> Result<ApplicationView, Error> {
        let service = self.service(service).await?;
        Self::check_audience(service.spec.audience, me.kind)?;
        if service.spec.depth != super::catalog::Depth::Online {
            return Err(Error::conflict(
                ErrorCode::NotOnline,
                "this service cannot be applied for online: see its guide",
            ));
        }
        let facts = self.facts(&me.account_id, now).await?;
        let written = self
            .create(NewCase { facts: &facts, service: &service, bundle: None, data, documents, assisted_by: None }, now)
            .await?;
        // A plain new case is answered from what was written; one with materials or a
        // certificate issued at once is read back.
        if !documents.is_empty() || Phase::parse(&written.row.status) == Some(Phase::Approved) {
            return self.view(&written.row.id, Viewer::Applicant).await;
        }
        let names = (service.spec.name_zh.clone(), service.spec.name_en.clone());
        let parts = CaseParts {
            row: written.row,
            service,
            form: written.form,
            history: written.history,
            tasks: Vec::new(),
            applicant: facts.display_name,
            certificates: Vec::new(),
            rating: None,
            documents: Vec::new(),
            names,
        };
        self.assemble(parts, Viewer::Applicant).await
    }

    /// Submits a bundle (一件事一次办): one form, one case, every member department at once.
    pub async fn submit_bundle(
        &self,
        me: &Principal,
        code: &str,
        data: Value,
        now: DateTime<Utc>,
    ) -> Result<ApplicationView, Error> {
        let bundle = self.bundle(code).await?;
        let mut members = Vec::with_capacity(bundle.services.len());
        for s in &bundle.services {
            members.push(self.service(s).await?);
        }
        let lead = members.first().cloned().ok_or(Error::NotFound("bundle service"))?;
        Self::check_audience(bundle.audience, me.kind)?;
        let facts = self.facts(&me.account_id, now).await?;
        let written = self
            .create(
                NewCase {
                    facts: &facts,
                    service: &lead,
                    bundle: Some((&bundle, &members)),
                    data,
                    documents: &[],
                    assisted_by: None,
                },
                now,
            )
            .await?;
        self.view(&written.row.id, Viewer::Applicant).await
    }

    /// The combined form of a bundle.
    pub async fn bundle_form(&self, code: &str) -> Result<(BundleSpec, std::sync::Arc<Form>), Error> {
        let bundle = self.bundle(code).await?;
        let key = format!("bundle:{code}");
        let mut members = Vec::new();
        for s in &bundle.services {
            members.push(self.service(s).await?);
        }
        let versions: Vec<String> = members.iter().map(|m| format!("{}@{}", m.id, m.version)).collect();
        let key = format!("{key}:{}", versions.join(","));
        if let Some(f) = self.inner.forms.lock().map_err(internal)?.get(&key) {
            return Ok((bundle, f.clone()));
        }
        let mut forms = Vec::new();
        for m in &members {
            forms.push((m, self.form(&m.form_id).await?));
        }
        let pairs: Vec<(&PublishedService, &Form)> = forms.iter().map(|(m, f)| (*m, f.as_ref())).collect();
        let form = std::sync::Arc::new(bundle_form(&bundle, &pairs)?);
        self.inner.forms.lock().map_err(internal)?.insert(key, form.clone());
        Ok((bundle, form))
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

    /// Sends the applicant a one-time code to confirm a submission made for them at the
    /// window (in-app, and by text message where a gateway is configured).
    pub async fn send_assist_code(
        &self,
        cap: &Capability<ApplicationAssist>,
        id_number: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let (account_id, facts) = self.assisted_person(cap, id_number, now).await?;
        let code = format!("{:06}", rand::random::<u32>() % 1_000_000);
        let mut tx = self.inner.db.begin().await?;
        let hash = kernel::secrets::sha256_hex(&code);
        let expires = millis(now) + ASSIST_CODE_MINUTES * 60_000;
        repo::replace_assist_code(&mut tx, &account_id, cap.account_id(), &hash, expires).await?;
        let text_zh = format!(
            "【通办】窗口工作人员正在为您代办事项，确认码 {code}，{ASSIST_CODE_MINUTES} 分钟内有效。如非本人在场，请勿告知。"
        );
        let text_en = format!(
            "tongban: a window clerk is submitting an application for you. Confirmation code {code}, valid for \
             {ASSIST_CODE_MINUTES} minutes. Do not share it unless you are there."
        );
        repo::insert_notification(&mut tx, &account_id, None, &text_zh, &text_en, millis(now)).await?;
        let mut entry = audit_entry(Action::AssistCodeSent, cap.account_id(), cap.username(), now);
        entry.subject = Some(account_id.clone());
        entry.jurisdiction = facts.region.as_ref().map(|r| r.path.clone());
        entry.purpose = Some("帮办代办 assisted submission".into());
        ledger::append(&mut tx, Log::Audit, &entry).await?;
        tx.commit().await?;
        if let Some(mobile) = &facts.mobile {
            tracing::info!(mobile = %protect::Mask::Mobile.apply(mobile), "assist code issued");
        }
        Ok(())
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
            .citizen_by_id_number(id_number)
            .await?
            .ok_or(Error::NotFound("resident with this ID number"))?;
        let facts = self.facts(&account_id, now).await?;
        let path = facts.region.as_ref().map(|r| r.path.clone()).unwrap_or_default();
        cap.check_record(&path, APPLICATION_CLASSIFICATION)?;
        Ok((account_id, facts))
    }

    /// Submits for a citizen who is present (帮办代办), after they confirmed with the code
    /// sent to their mobile or by signing at the window. The case records who assisted.
    pub async fn submit_assisted(
        &self,
        cap: &Capability<ApplicationAssist>,
        id_number: &str,
        service: &str,
        data: Value,
        confirmation: Confirmation,
        now: DateTime<Utc>,
    ) -> Result<ApplicationView, Error> {
        let (_, facts) = self.assisted_person(cap, id_number, now).await?;
        let service = self.service(service).await?;
        Self::check_audience(service.spec.audience, facts.kind)?;
        let (confirmed_by, code) = match confirmation {
            Confirmation::Signature => ("signature", None),
            Confirmation::Code(code) => ("mobile_code", Some(kernel::secrets::sha256_hex(code.trim()))),
        };
        let written = self
            .create(
                NewCase {
                    facts: &facts,
                    service: &service,
                    bundle: None,
                    data,
                    documents: &[],
                    assisted_by: Some(Assist {
                        staff_id: cap.account_id(),
                        staff_name: cap.username(),
                        confirmed_by,
                        code,
                    }),
                },
                now,
            )
            .await?;
        self.view(&written.row.id, Viewer::Applicant).await
    }

    async fn create(&self, n: NewCase<'_>, now: DateTime<Utc>) -> Result<WrittenCase, Error> {
        let NewCase { facts, service, bundle, mut data, documents, assisted_by } = n;
        let (form, def) = match bundle {
            Some((b, _)) => {
                let (_, form) = self.bundle_form(&b.code).await?;
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
            let phase = phase_of(&def, &case.state);
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
                approved |= phase_of(&def, &t.to) == Phase::Approved;
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
                self.issue_for(tx, &c.row, &c.data, now).await?;
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
            approved_now |= phase_of(def, &t.to) == Phase::Approved;
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
                repo::close_task(tx, &t.id, "done", millis(now)).await?;
            }
        }
        if state_changed {
            let tasks = self.wanted_tasks(tx, row, case, def).await?;
            repo::insert_tasks(tx, &tasks).await?;
        }
        let phase = phase_of(def, &case.state);
        row.status = phase.as_str().into();
        row.state = case.state.clone();
        row.case_body = case_body(case)?;
        row.updated_at = millis(now);
        if before.1 != phase {
            let (text_zh, text_en) = phase_notice(row, service, phase);
            repo::insert_notification(tx, &row.applicant_id, Some(&row.id), &text_zh, &text_en, millis(now)).await?;
            // By email too, for those who gave an address (sent from the outbox after commit).
            if self.inner.identity.wants_email_in(tx, &row.applicant_id).await? {
                email_notice(tx, row, phase, &text_zh, &text_en, now).await?;
            }
        }
        if approved_now {
            self.issue_for(tx, row, data, now).await?;
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
                status: "open".into(),
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

    /// A staff action on a case: the workflow's action (accept, approve, …) or, in a
    /// parallel review, `approve` / `reject` of the caller's branch.
    pub async fn act(
        &self,
        cap: &Capability<ApplicationHandle>,
        id: &str,
        action: &str,
        comment: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<ApplicationView, Error> {
        let comment = comment.map(str::trim).filter(|c| !c.is_empty());
        if comment.is_some_and(|c| c.chars().count() > 1000) {
            return Err(Error::invalid("comment", "at most 1000 characters"));
        }
        let (_, def, service) = self.case_setup(id).await?;
        let mut tx = self.inner.db.begin().await?;
        let mut row = repo::application(&mut tx, id).await?.ok_or(Error::NotFound("application"))?;
        cap.check_record(&row.region_path, APPLICATION_CLASSIFICATION)?;
        let tasks = repo::open_tasks_of(&mut tx, &row.id).await?;
        let task = tasks
            .iter()
            .filter(|t| t.kind == "case")
            .find(|t| task_is_for(t, cap.department_id(), cap.roles()))
            .cloned()
            .ok_or(Denial::Forbidden("application.handle"))?;
        let data = self.form_values(&mut tx, &row).await?;
        let mut case: Case = serde_json::from_str(&row.case_body).map_err(internal)?;
        let before_state = case.state.clone();
        let before_phase = stored_phase(&row.status)?;
        let roles: Vec<String> = cap.roles().to_vec();
        let actor = Actor { name: cap.username(), roles: &roles };
        let ctx = Context { form: &data, now, calendar: &self.inner.calendar };
        if action == "request_supplement" {
            if row.supplements >= 1 {
                return Err(Error::conflict(
                    ErrorCode::SupplementAlreadyRequested,
                    "a case is returned for supplement once; decide on what is there",
                ));
            }
            let note = comment.ok_or_else(|| Error::invalid("comment", "list what is missing"))?;
            row.supplements += 1;
            row.supplement_note = Some(clip(note, 1000));
        }
        match &task.branch {
            Some(branch) => {
                let approve = match action {
                    "approve" => true,
                    "reject" => false,
                    _ => return Err(Error::invalid("action", "approve or reject this department's branch")),
                };
                if !approve && comment.is_none() {
                    return Err(Error::invalid("comment", "give the reason for rejecting"));
                }
                case.decide(&def, branch, approve, &actor, comment, ctx)?;
            }
            None => {
                if matches!(action, "reject" | "refuse") && comment.is_none() {
                    return Err(Error::invalid("comment", "give the reason"));
                }
                case.act(&def, action, &actor, comment, ctx)?;
            }
        }
        let change = Change { def: &def, service: &service, data: &data, actor_id: cap.account_id(), now };
        self.record_change(&mut tx, &mut row, &mut case, (&before_state, before_phase), &change).await?;
        row.due_at = case.case_due.map(millis);
        if !repo::update_application(&mut tx, &row).await? {
            return Err(Error::conflict(ErrorCode::CaseChanged, "someone else changed this case meanwhile; reload it"));
        }
        tx.commit().await?;
        self.view(&row.id, Viewer::Staff { department_id: cap.department_id(), roles: cap.roles() }).await
    }

    /// The applicant answers a supplement request: corrected form values, and the case goes
    /// back to intake.
    pub async fn resubmit(
        &self,
        me: &Principal,
        id: &str,
        data: Value,
        now: DateTime<Utc>,
    ) -> Result<ApplicationView, Error> {
        let (stored, def, service) = self.case_setup(id).await?;
        let form = match &stored.bundle_code {
            Some(code) => self.bundle_form(code).await?.1,
            None => self.form(&service.form_id).await?,
        };
        let facts = self.facts(&me.account_id, now).await?;
        let mut tx = self.inner.db.begin().await?;
        let mut row = own_application(&mut tx, id, &me.account_id).await?;
        if row.status != Phase::Supplement.as_str() {
            return Err(Error::conflict(
                ErrorCode::NotInSupplement,
                "this application is not waiting for more material",
            ));
        }
        let mut data = data;
        if !data.is_object() {
            return Err(Error::invalid("form", "the form values are a JSON object"));
        }
        let prefill = form.apply_prefill(&mut data, &facts.facts);
        form.validate(&data).map_err(Error::Form)?;
        let (plain, sensitive) = form.split_sensitive(&data);
        row.form_body = serde_json::to_string(&plain).map_err(internal)?;
        row.sealed_form = if sensitive.is_empty() {
            None
        } else {
            let text = serde_json::to_string(&sensitive).map_err(internal)?;
            Some(
                self.inner
                    .identity
                    .protector()
                    .seal_in(&mut tx, &text, &form_context(&row.id))
                    .await
                    .map_err(internal)?,
            )
        };
        row.prefill = prefill.to_string();
        let mut case: Case = serde_json::from_str(&row.case_body).map_err(internal)?;
        let before = case.state.clone();
        let roles = vec!["applicant".to_string()];
        let actor = Actor { name: &me.display_name, roles: &roles };
        case.act(&def, "resubmit", &actor, None, Context { form: &data, now, calendar: &self.inner.calendar })?;
        let change = Change { def: &def, service: &service, data: &data, actor_id: &me.account_id, now };
        self.record_change(&mut tx, &mut row, &mut case, (&before, Phase::Supplement), &change).await?;
        if !repo::update_application(&mut tx, &row).await? {
            return Err(Error::conflict(ErrorCode::CaseChanged, "the case changed meanwhile; reload it"));
        }
        tx.commit().await?;
        self.view(&row.id, Viewer::Applicant).await
    }

    /// The applicant withdraws before a decision.
    pub async fn withdraw(&self, me: &Principal, id: &str, now: DateTime<Utc>) -> Result<ApplicationView, Error> {
        let (_, def, service) = self.case_setup(id).await?;
        let mut tx = self.inner.db.begin().await?;
        let mut row = own_application(&mut tx, id, &me.account_id).await?;
        let phase = stored_phase(&row.status)?;
        if phase.is_final() || phase == Phase::Approved {
            return Err(Error::conflict(ErrorCode::AlreadyDecided, "a decided application cannot be withdrawn"));
        }
        let mut case: Case = serde_json::from_str(&row.case_body).map_err(internal)?;
        let from = case.state.clone();
        case.history.push(super::workflow::Transition {
            action: "withdraw".into(),
            from: from.clone(),
            to: WITHDRAWN.into(),
            actor: me.display_name.clone(),
            comment: None,
            at: now,
            explanation: None,
        });
        case.state = WITHDRAWN.into();
        case.branches.clear();
        for t in repo::open_tasks_of(&mut tx, &row.id).await? {
            repo::close_task(&mut tx, &t.id, "cancelled", millis(now)).await?;
        }
        let data = Value::Null;
        let change = Change { def: &def, service: &service, data: &data, actor_id: &me.account_id, now };
        self.record_change(&mut tx, &mut row, &mut case, (&from, phase), &change).await?;
        if !repo::update_application(&mut tx, &row).await? {
            return Err(Error::conflict(ErrorCode::CaseChanged, "the case changed meanwhile; reload it"));
        }
        tx.commit().await?;
        self.view(&row.id, Viewer::Applicant).await
    }

    /// The caller's applications, newest first.
    pub async fn my_applications(&self, me: &Principal) -> Result<Vec<ApplicationSummary>, Error> {
        let mut c = self.conn().await?;
        let rows = repo::applications_of(&mut c, &me.account_id, 500).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let s = self.service_version(&mut c, &r.service_id, r.service_version).await?;
            let (zh, en) = Self::case_name(&mut c, &r, &s).await;
            out.push(ApplicationSummary {
                id: r.id,
                number: r.number,
                service_id: r.service_id,
                service_name_zh: zh,
                service_name_en: en,
                status: stored_phase(&r.status)?,
                due_at: r.due_at.map(from_millis),
                created_at: from_millis(r.created_at),
                updated_at: from_millis(r.updated_at),
            });
        }
        Ok(out)
    }

    /// One of the caller's applications.
    pub async fn my_application(&self, me: &Principal, id: &str) -> Result<ApplicationView, Error> {
        let mut c = self.conn().await?;
        let row = own_application(&mut c, id, &me.account_id).await?;
        drop(c);
        self.view(&row.id, Viewer::Applicant).await
    }

    /// A case as staff see it: values opened for handling it, with an audit entry naming the
    /// purpose. Only staff whose department has (or had) work on the case see it.
    pub async fn case_for_staff(
        &self,
        cap: &Capability<ApplicationHandle>,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<ApplicationView, Error> {
        let mut tx = self.inner.db.begin().await?;
        let row = repo::application(&mut tx, id).await?.ok_or(Error::NotFound("application"))?;
        cap.check_record(&row.region_path, APPLICATION_CLASSIFICATION)?;
        let department = cap.department_id().unwrap_or_default();
        let involved = repo::department_involved(&mut tx, &row.id, department).await?;
        if !involved && Some(row.department_id.as_str()) != cap.department_id() {
            return Err(Denial::OutsideJurisdiction.into());
        }
        let mut entry = audit_entry(Action::ApplicationRead, cap.account_id(), cap.username(), now);
        entry.object = Some(format!("application:{}", row.number));
        entry.subject = Some(row.applicant_id.clone());
        entry.jurisdiction = Some(row.region_path.clone());
        entry.purpose = Some("审查办件 handling the application".into());
        ledger::append(&mut tx, Log::Audit, &entry).await?;
        tx.commit().await?;
        self.view(&row.id, Viewer::Staff { department_id: cap.department_id(), roles: cap.roles() }).await
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
            applicant: self.inner.identity.display_name_in(&mut c, &row.applicant_id).await?,
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

    /// The caller's inbox: open tasks of their department and roles within jurisdiction.
    pub async fn inbox(
        &self,
        cap: &Capability<ApplicationHandle>,
        filter: &InboxFilter,
        now: DateTime<Utc>,
    ) -> Result<Inbox, Error> {
        let Some(department) = cap.department_id() else {
            return Ok(Inbox { items: Vec::new(), counts: InboxCounts::default() });
        };
        let prefix = match cap.scope() {
            Scope::All => "/".to_string(),
            Scope::Subtree(p) => p.clone(),
        };
        let mut c = self.conn().await?;
        let rows = repo::inbox(&mut c, department, &prefix, cap.roles(), 1000).await?;
        let soon = millis(self.inner.calendar.deadline(now, 1));
        let mut counts = InboxCounts::default();
        let mut items = Vec::with_capacity(rows.len());
        for r in rows {
            let due = match r.task.due_at {
                Some(d) if d < millis(now) => DueState::Overdue,
                Some(d) if d <= soon => DueState::DueSoon,
                _ => DueState::OnTime,
            };
            counts.total += 1;
            match due {
                DueState::OnTime => counts.on_time += 1,
                DueState::DueSoon => counts.due_soon += 1,
                DueState::Overdue => counts.overdue += 1,
            }
            let mine = r.task.assignee_id.as_deref() == Some(cap.account_id());
            counts.mine += usize::from(mine);
            if filter.due.is_some_and(|d| d != due) || (filter.mine && !mine) {
                continue;
            }
            let s = self.service_version(&mut c, &r.service_id, r.service_version).await?;
            if filter.service.as_ref().is_some_and(|code| &s.spec.code != code) {
                continue;
            }
            items.push(InboxItem {
                task_id: r.task.id,
                kind: r.task.kind,
                application_id: r.task.application_id,
                number: r.number,
                service_name_zh: s.spec.name_zh.clone(),
                service_name_en: s.spec.name_en.clone(),
                applicant: protect::Mask::Name.apply(&r.applicant_name),
                status: stored_phase(&r.status)?,
                state: r.task.state,
                branch: r.task.branch,
                escalated: r.task.escalated_to.as_ref().is_some_and(|e| cap.roles().contains(e)),
                role: r.task.role,
                assignee_id: r.task.assignee_id,
                due_at: r.task.due_at.map(from_millis),
                due,
                submitted_at: from_millis(r.submitted_at),
            });
        }
        Ok(Inbox { items, counts })
    }

    /// Takes a task (or hands it to a colleague of the same department who holds its role).
    pub async fn assign(
        &self,
        cap: &Capability<ApplicationHandle>,
        task_id: &str,
        to: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        // Looked up before the write transaction, which must not wait for a second connection.
        let colleague = match to {
            Some(other) => Some(self.inner.identity.staff_post(other).await?.ok_or(Error::NotFound("colleague"))?),
            None => None,
        };
        let mut tx = self.inner.db.begin().await?;
        let task = repo::task(&mut tx, task_id).await?.ok_or(Error::NotFound("task"))?;
        cap.check_record(&task.region_path, APPLICATION_CLASSIFICATION)?;
        if task.status != "open" || !task_is_for(&task, cap.department_id(), cap.roles()) {
            return Err(Error::NotFound("open task of yours"));
        }
        let assignee = match (to, colleague) {
            (Some(other), Some((dept, roles))) => {
                if dept.as_deref() != Some(task.department_id.as_str()) || !roles.contains(&task.role) {
                    return Err(Error::conflict(
                        ErrorCode::NotEligible,
                        "the colleague does not hold this task's role here",
                    ));
                }
                other.to_string()
            }
            _ => cap.account_id().to_string(),
        };
        repo::assign_task(&mut tx, task_id, Some(&assignee)).await?;
        let mut entry = audit_entry(
            if to.is_some() { Action::TaskTransferred } else { Action::TaskClaimed },
            cap.account_id(),
            cap.username(),
            now,
        );
        entry.object = Some(format!("task:{task_id}"));
        entry.detail = Some(format!("assignee {assignee}"));
        entry.jurisdiction = Some(task.region_path.clone());
        ledger::append(&mut tx, Log::Audit, &entry).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Who an open task of the caller's can be transferred to: the other staff of the task's
    /// department holding its role.
    pub async fn transfer_choice(
        &self,
        cap: &Capability<ApplicationHandle>,
        task_id: &str,
    ) -> Result<TransferChoice, Error> {
        let mut c = self.conn().await?;
        let task = repo::task(&mut c, task_id).await?.ok_or(Error::NotFound("task"))?;
        drop(c);
        cap.check_record(&task.region_path, APPLICATION_CLASSIFICATION)?;
        if task.status != "open" || !task_is_for(&task, cap.department_id(), cap.roles()) {
            return Err(Error::NotFound("open task of yours"));
        }
        let colleagues = self
            .inner
            .identity
            .staff_holding(&task.department_id, &task.role)
            .await?
            .into_iter()
            .filter(|(id, _)| id != cap.account_id())
            .map(|(account_id, name)| Colleague { account_id, name })
            .collect();
        Ok(TransferChoice { task_id: task.id, application_id: task.application_id, role: task.role, colleagues })
    }

    /// The timer pass: marks tasks due within a working day (the inbox shows them as due
    /// soon) and escalates overdue ones to the state's supervising role.
    pub async fn run_timers(&self, now: DateTime<Utc>) -> Result<TimerReport, Error> {
        let soon = millis(self.inner.calendar.deadline(now, 1));
        // Supervisors are looked up before the write transaction: a definition not yet cached
        // needs a pooled connection, and on PostgreSQL the transaction holds the ledger's row
        // lock that the submissions queued on the pool are waiting for.
        let mut c = self.conn().await?;
        let due = repo::tasks_due(&mut c, soon, 1000).await?;
        let overdue: Vec<&repo::TaskRow> =
            due.iter().filter(|t| t.due_at.is_some_and(|d| d < millis(now)) && t.escalated_to.is_none()).collect();
        let mut cases: HashMap<String, repo::ApplicationRow> = HashMap::new();
        for t in &overdue {
            if let Some(r) = repo::application(&mut c, &t.application_id).await? {
                cases.insert(t.id.clone(), r);
            }
        }
        drop(c);
        // Task id → (supervising role, the staff of the task's department holding it).
        let mut supervisors: HashMap<String, (String, Vec<(String, String)>)> = HashMap::new();
        for t in overdue {
            let supervisor = match cases.get(&t.id) {
                Some(r) => self
                    .definition(&r.workflow_code, r.workflow_version)
                    .await?
                    .state(&t.state)
                    .and_then(|s| s.supervisor.clone()),
                None => None,
            }
            .unwrap_or_else(|| "leader".to_string());
            let holders = self.inner.identity.staff_holding(&t.department_id, &supervisor).await?;
            supervisors.insert(t.id.clone(), (supervisor, holders));
        }
        let mut tx = self.inner.db.begin().await?;
        let mut report = TimerReport::default();
        for t in due {
            let Some(due) = t.due_at else { continue };
            if t.warned_at.is_none() {
                repo::mark_warned(&mut tx, &t.id, millis(now)).await?;
                report.warned += 1;
            }
            if let Some((supervisor, holders)) = supervisors.get(&t.id)
                && repo::escalate(&mut tx, &t.id, supervisor, millis(now)).await?
            {
                let mut entry = ledger::Entry::new(Action::TaskEscalated, Outcome::Success, now);
                entry.actor = Some("system".into());
                entry.object = Some(format!("task:{}", t.id));
                entry.detail =
                    Some(format!("overdue since {}; escalated to {supervisor}", from_millis(due).to_rfc3339()));
                entry.jurisdiction = Some(t.region_path.clone());
                ledger::append_in(&mut tx, Log::Audit, &entry).await?;
                // The supervisors hear of it, not only see it in their inbox.
                let number = cases.get(&t.id).map(|r| r.number.as_str()).unwrap_or_default();
                for (account_id, _) in holders {
                    repo::insert_notification(
                        &mut tx,
                        account_id,
                        Some(&t.application_id),
                        &format!("待办 {number} 已超期，已升级给您督办。"),
                        &format!("The task of case {number} is overdue and was escalated to you."),
                        millis(now),
                    )
                    .await?;
                }
                report.escalated += 1;
            }
        }
        tx.commit().await?;
        Ok(report)
    }

    pub async fn notifications(&self, me: &Principal, now: DateTime<Utc>) -> Result<Vec<NotificationView>, Error> {
        let mut tx = self.inner.db.begin().await?;
        let rows = repo::notifications(&mut tx, &me.account_id, 100).await?;
        repo::mark_notifications_read(&mut tx, &me.account_id, millis(now)).await?;
        tx.commit().await?;
        Ok(rows
            .into_iter()
            .map(|n| NotificationView {
                id: n.id,
                application_id: n.application_id,
                text_zh: n.text_zh,
                text_en: n.text_en,
                created_at: from_millis(n.created_at),
                read: n.read,
            })
            .collect())
    }

    /// 好差评: the applicant rates a finished case 1–5. A 1 or 2 opens a rectification task
    /// for the department (15 working days) that must be answered to the applicant.
    pub async fn rate(
        &self,
        me: &Principal,
        id: &str,
        score: i64,
        comment: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        if !(1..=5).contains(&score) {
            return Err(Error::invalid("score", "1 (非常不满意) to 5 (非常满意)"));
        }
        let comment = comment.map(str::trim).filter(|c| !c.is_empty());
        if comment.is_some_and(|c| c.chars().count() > 500) {
            return Err(Error::invalid("comment", "at most 500 characters"));
        }
        if score <= 2 && comment.is_none() {
            return Err(Error::invalid("comment", "tell us what went wrong, so the department can put it right"));
        }
        let mut tx = self.inner.db.begin().await?;
        let row = own_application(&mut tx, id, &me.account_id).await?;
        let phase = stored_phase(&row.status)?;
        if !phase.is_final() || phase == Phase::Withdrawn {
            return Err(Error::conflict(ErrorCode::NotFinished, "a case is rated once it is finished"));
        }
        if !repo::insert_rating(&mut tx, &row.id, &me.account_id, &row.department_id, score, comment, millis(now))
            .await?
        {
            return Err(Error::conflict(ErrorCode::AlreadyRated, "this case has been rated"));
        }
        if score <= 2 {
            repo::insert_task(
                &mut tx,
                &repo::TaskRow {
                    id: new_id(),
                    kind: "rectification".into(),
                    application_id: row.id.clone(),
                    state: "rectification".into(),
                    branch: None,
                    role: "window_clerk".into(),
                    department_id: row.department_id.clone(),
                    region_path: row.region_path.clone(),
                    assignee_id: None,
                    status: "open".into(),
                    due_at: Some(millis(self.inner.calendar.deadline(now, 15))),
                    warned_at: None,
                    escalated_to: None,
                    created_at: millis(now),
                },
            )
            .await?;
        }
        let mut entry = audit_entry(Action::ApplicationRated, &me.account_id, &me.username, now);
        entry.object = Some(format!("application:{}", row.number));
        entry.detail = Some(format!("score {score}"));
        entry.jurisdiction = Some(row.region_path.clone());
        ledger::append(&mut tx, Log::Audit, &entry).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The department's answer to a bad rating: closes the rectification task and tells the
    /// applicant.
    pub async fn answer_rating(
        &self,
        cap: &Capability<ApplicationHandle>,
        id: &str,
        reply: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let reply = reply.trim();
        if reply.is_empty() || reply.chars().count() > 1000 {
            return Err(Error::invalid("reply", "the department's answer, at most 1000 characters"));
        }
        let mut tx = self.inner.db.begin().await?;
        let row = repo::application(&mut tx, id).await?.ok_or(Error::NotFound("application"))?;
        cap.check_record(&row.region_path, APPLICATION_CLASSIFICATION)?;
        let task = repo::open_tasks_of(&mut tx, &row.id)
            .await?
            .into_iter()
            .find(|t| t.kind == "rectification" && task_is_for(t, cap.department_id(), cap.roles()))
            .ok_or(Error::NotFound("open rectification task of yours"))?;
        if !repo::reply_rating(&mut tx, &row.id, &clip(reply, 1000), millis(now)).await? {
            return Err(Error::conflict(ErrorCode::AlreadyAnswered, "this rating has been answered"));
        }
        repo::close_task(&mut tx, &task.id, "done", millis(now)).await?;
        let text_zh = format!("您对办件 {} 的评价已收到整改答复：{}", row.number, clip(reply, 200));
        let text_en = format!("The department answered your rating of {}: {}", row.number, clip(reply, 200));
        repo::insert_notification(&mut tx, &row.applicant_id, Some(&row.id), &text_zh, &text_en, millis(now)).await?;
        let mut entry = audit_entry(Action::RatingAnswered, cap.account_id(), cap.username(), now);
        entry.object = Some(format!("application:{}", row.number));
        entry.jurisdiction = Some(row.region_path.clone());
        ledger::append(&mut tx, Log::Audit, &entry).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Counts of applications by phase (for the public statistics).
    pub async fn status_counts(&self) -> Result<BTreeMap<Phase, i64>, Error> {
        let mut c = self.conn().await?;
        let mut out = BTreeMap::new();
        for (status, n) in repo::status_counts(&mut c).await? {
            if let Some(p) = Phase::parse(&status) {
                out.insert(p, n);
            }
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
fn stored_phase(status: &str) -> Result<Phase, Error> {
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
