//! Applications: submission with prefill and sealed sensitive fields, the case run by its
//! workflow definition, one history row and one audit ledger entry per transition, the
//! staff inbox with claim, transfer and escalation, supplement (补正) once, withdrawal,
//! bundles, assisted submission, notifications and ratings.

mod casework;
mod intake;
mod my_cases;
mod ratings;
mod views;
mod writing;
pub use casework::Casework;
pub use intake::Intake;
pub use my_cases::MyCases;
pub use ratings::Ratings;
pub use views::*;
pub(crate) use writing::*;

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
        let mut action_weights = BTreeMap::new();
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
                match tasks.iter().find(|t| t.kind == repo::TaskKind::Case && task_is_for(t, department_id, roles)) {
                    Some(t) if t.branch.is_some() => {
                        action_weights.insert("reject".into(), ActionWeight::Ends);
                        vec!["approve".into(), "reject".into()]
                    }
                    Some(t) => {
                        let escalated = t.escalated_to.as_ref().is_some_and(|r| roles.contains(r));
                        let mut ids = Vec::new();
                        for a in def.actions.iter().filter(|a| a.from == case.state && !a.automatic) {
                            if !(escalated || a.roles.iter().any(|r| roles.contains(r)))
                                || (a.id == "request_supplement" && row.supplements >= 1)
                            {
                                continue;
                            }
                            let weight = match phase_of(&def, &a.to)? {
                                Phase::Refused | Phase::Rejected => ActionWeight::Ends,
                                Phase::Supplement => ActionWeight::Returns,
                                _ => ActionWeight::Advances,
                            };
                            action_weights.insert(a.id.clone(), weight);
                            ids.push(a.id.clone());
                        }
                        ids
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
            form_id: service.form_id.clone(),
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
            action_weights,
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
