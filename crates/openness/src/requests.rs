//! 依申请公开: a person or enterprise asks a department for information; the department
//! answers within 20 working days (条例 第三十三条), may extend once by at most 20 with a
//! reason, and may once ask for a clarification within 7 working days of receipt (第三十条),
//! after which the 20 days count again from the day the clarification arrives. Every step is
//! on the audit trail, with the person as its subject.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::repo::{self, RequestRow};
use super::{
    ANSWER_WORKING_DAYS, AnswerType, ApplicantKind, DeadlineStatus, Delivery, Error, LegalGround,
    MAX_EXTENSION_WORKING_DAYS, NEAR_WORKING_DAYS, Openness, RequestState, china_day, conflict, internal,
    optional_text, text_between,
};
use identity::{AccountKind, Capability, Principal};
use kernel::audit::{Action, Outcome};
use kernel::authz::DisclosureAnswer;
use kernel::db::{from_millis, millis};
use kernel::error::ErrorCode;

/// How long after receipt a department may still ask for a clarification (第三十条).
pub const CLARIFY_WITHIN_WORKING_DAYS: u32 = 7;
/// How long answered requests stay on a department's list.
const ANSWERED_SHOWN_DAYS: i64 = 90;

kernel::area! {
    /// A person's requests for information.
    Requests of Openness
}

kernel::area! {
    /// A department's handling of the requests addressed to it.
    RequestHandling of Openness
}

/// What a person asks for.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = DisclosureNewRequest)]
pub struct NewInformationRequest {
    /// The department asked, by code.
    pub department: String,
    /// 所需信息的名称、文号或者便于行政机关查询的其他特征性描述
    pub description: String,
    /// What the information is for (optional since 2019).
    #[serde(default)]
    pub purpose: Option<String>,
    pub delivery: Delivery,
    /// The same key sent twice makes one request (a double click, a retried POST).
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// A department's answer.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = DisclosureAnswer)]
pub struct Answer {
    #[serde(rename = "type")]
    pub answer_type: AnswerType,
    /// The answer the person reads: the information, or where and how it is given.
    pub text: String,
    /// What a partial or full withholding rests on.
    #[serde(default)]
    pub legal_ground: Option<LegalGround>,
    /// 非本机关负责: who holds the information and how to reach them.
    #[serde(default)]
    pub referral: Option<String>,
}

/// When a request must be answered, and how that stands.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = DisclosureDeadline)]
pub struct Deadline {
    /// The last day (China time); none while waiting for a clarification.
    pub due_on: Option<NaiveDate>,
    pub status: DeadlineStatus,
    /// Working days left until the last day (negative once past); none when answered or
    /// paused.
    pub working_days_left: Option<i64>,
}

/// A request for information as the person and the department read it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = DisclosureRequest)]
pub struct InformationRequest {
    pub id: String,
    pub number: String,
    pub applicant_kind: ApplicantKind,
    pub department_code: String,
    pub department_name: String,
    pub description: String,
    pub purpose: Option<String>,
    pub delivery: Delivery,
    pub state: RequestState,
    pub received_at: DateTime<Utc>,
    /// The day the working days count from: receipt, or the clarification's arrival.
    pub clock_from: NaiveDate,
    pub deadline: Deadline,
    pub extension_days: i64,
    pub extension_reason: Option<String>,
    /// What the department asked to be made clear, and the person's clarification.
    pub clarification_ask: Option<String>,
    pub clarification: Option<String>,
    pub answer: Option<Answer>,
    pub answered_at: Option<DateTime<Utc>>,
}

/// What a department does with a request.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
#[schema(as = DisclosureHandlingAction)]
pub enum HandlingAction {
    /// 补正: asks the person, once, to make the request clear; the clock stops.
    AskClarification {
        text: String,
    },
    /// 延期: once, by at most 20 working days, with the reason.
    Extend {
        working_days: u32,
        reason: String,
    },
    Answer(Answer),
}

impl Requests<'_> {
    /// Receives a request from a signed-in resident or enterprise.
    pub async fn submit(
        &self,
        person: &Principal,
        new: NewInformationRequest,
        now: DateTime<Utc>,
    ) -> Result<InformationRequest, Error> {
        let applicant_kind = match person.kind {
            AccountKind::Citizen => ApplicantKind::Person,
            AccountKind::Enterprise => ApplicantKind::Enterprise,
            AccountKind::Staff | AccountKind::System => {
                return Err(Error::invalid(
                    "account",
                    "requests are made from a resident's or an enterprise's account",
                ));
            }
        };
        let description = text_between("description", &new.description, 5, 2_000)?;
        let purpose = optional_text("purpose", new.purpose.as_deref(), 500)?;
        let key = optional_text("idempotency_key", new.idempotency_key.as_deref(), 100)?;
        let department = self
            .inner
            .identity
            .organisation()
            .placed_department(new.department.trim())
            .await?
            .ok_or_else(|| Error::invalid("department", "no department has this code"))?;
        if let Some(k) = &key {
            let mut c = self.conn().await?;
            if let Some(done) = repo::request_by_key(&mut c, &person.account_id, k).await? {
                drop(c);
                return self.view(done, now).await;
            }
        }
        let today = china_day(now);
        let mut tx = self.inner.db.begin().await?;
        let day = today.format("%Y%m%d").to_string();
        let n = repo::next_request_number(&mut tx, &day).await?;
        let row = RequestRow {
            id: kernel::db::new_id(),
            number: format!("GK-{day}-{n:04}"),
            account_id: person.account_id.clone(),
            applicant_kind,
            department_id: department.department.id.clone(),
            region_path: department.region_path.clone(),
            description,
            purpose,
            delivery: new.delivery,
            idempotency_key: key.clone(),
            state: RequestState::Handling,
            received_at: millis(now),
            clock_from: today.to_string(),
            due_on: Some(self.inner.calendar.add_working_days(today, ANSWER_WORKING_DAYS).to_string()),
            extension_days: 0,
            extension_reason: None,
            clarification_ask: None,
            clarification: None,
            answer_type: None,
            answer_text: None,
            legal_ground: None,
            referral: None,
            answered_by: None,
            answered_at: None,
            supervised: 0,
            updated_at: millis(now),
        };
        if let Err(e) = repo::insert_request(&mut tx, &row).await {
            // Two submissions with one key at once: the other one's request is the answer.
            drop(tx);
            if let Some(k) = &key {
                let mut c = self.conn().await?;
                if let Some(done) = repo::request_by_key(&mut c, &person.account_id, k).await? {
                    drop(c);
                    return self.view(done, now).await;
                }
            }
            return Err(e.into());
        }
        audit(&mut tx, &row, (Action::DisclosureRequested, &person.account_id), now).await?;
        tx.commit().await?;
        self.view(row, now).await
    }

    /// The person's own requests, newest first.
    pub async fn mine(&self, person: &Principal, now: DateTime<Utc>) -> Result<Vec<InformationRequest>, Error> {
        let mut c = self.conn().await?;
        let rows = repo::requests_of_account(&mut c, &person.account_id).await?;
        drop(c);
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(self.view(row, now).await?);
        }
        Ok(out)
    }

    /// One of the person's own requests.
    pub async fn get(&self, person: &Principal, id: &str, now: DateTime<Utc>) -> Result<InformationRequest, Error> {
        let row = self.own(person, id).await?;
        self.view(row, now).await
    }

    /// The person's clarification (补正): the working days count again from today.
    pub async fn clarify(
        &self,
        person: &Principal,
        id: &str,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<InformationRequest, Error> {
        let text = text_between("clarification", text, 2, 2_000)?;
        let mut row = self.own(person, id).await?;
        if row.state != RequestState::AwaitingClarification {
            return Err(conflict(
                ErrorCode::NotAwaitingClarification,
                "the department is not waiting for a clarification",
            ));
        }
        let read_at = row.updated_at;
        let today = china_day(now);
        let days = ANSWER_WORKING_DAYS + u32::try_from(row.extension_days).map_err(internal)?;
        row.state = RequestState::Handling;
        row.clarification = Some(text);
        row.clock_from = today.to_string();
        row.due_on = Some(self.inner.calendar.add_working_days(today, days).to_string());
        row.supervised = 0;
        self.write(row, read_at, (Action::DisclosureClarification, &person.account_id), now).await
    }

    async fn own(&self, person: &Principal, id: &str) -> Result<RequestRow, Error> {
        let mut c = self.conn().await?;
        match repo::request(&mut c, id).await? {
            Some(row) if row.account_id == person.account_id => Ok(row),
            // Another person's request is as absent as an unknown one.
            _ => Err(Error::NotFound("request")),
        }
    }
}

impl RequestHandling<'_> {
    /// The requests addressed to the officer's department: open ones first, the nearest
    /// deadline first, then those answered in the last 90 days.
    pub async fn inbox(
        &self,
        cap: &Capability<DisclosureAnswer>,
        now: DateTime<Utc>,
    ) -> Result<Vec<InformationRequest>, Error> {
        let department = cap.department_id().ok_or(Error::NotFound("department"))?;
        let mut c = self.conn().await?;
        let since = millis(now - chrono::Duration::days(ANSWERED_SHOWN_DAYS));
        let rows = repo::requests_of_department(&mut c, department, since).await?;
        drop(c);
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(self.view(row, now).await?);
        }
        out.sort_by_key(|r| (r.state == RequestState::Answered, r.deadline.due_on, std::cmp::Reverse(r.answered_at)));
        Ok(out)
    }

    pub async fn get(
        &self,
        cap: &Capability<DisclosureAnswer>,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<InformationRequest, Error> {
        let row = self.addressed(cap, id).await?;
        self.view(row, now).await
    }

    /// Asks for a clarification, extends the deadline, or answers.
    pub async fn act(
        &self,
        cap: &Capability<DisclosureAnswer>,
        id: &str,
        action: HandlingAction,
        now: DateTime<Utc>,
    ) -> Result<InformationRequest, Error> {
        let mut row = self.addressed(cap, id).await?;
        let read_at = row.updated_at;
        let today = china_day(now);
        if row.state != RequestState::Handling {
            return Err(match row.state {
                RequestState::AwaitingClarification => {
                    conflict(ErrorCode::AwaitingClarification, "the request waits for the person's clarification")
                }
                _ => conflict(ErrorCode::RequestAnswered, "the request is already answered"),
            });
        }
        let action_done = match action {
            HandlingAction::AskClarification { text } => {
                let text = text_between("text", &text, 5, 2_000)?;
                if row.clarification_ask.is_some() {
                    return Err(conflict(
                        ErrorCode::ClarificationAlreadyAsked,
                        "a clarification is asked for once only",
                    ));
                }
                let received = china_day(from_millis(row.received_at));
                if self.inner.calendar.working_days_between(received, today) > CLARIFY_WITHIN_WORKING_DAYS {
                    return Err(conflict(
                        ErrorCode::DeadlinePassed,
                        "a clarification is asked for within 7 working days of receipt",
                    ));
                }
                row.state = RequestState::AwaitingClarification;
                row.clarification_ask = Some(text);
                row.due_on = None;
                Action::DisclosureClarification
            }
            HandlingAction::Extend { working_days, reason } => {
                let reason = text_between("reason", &reason, 5, 500)?;
                if !(1..=MAX_EXTENSION_WORKING_DAYS).contains(&working_days) {
                    return Err(Error::invalid("working_days", "from 1 to 20 working days"));
                }
                if row.extension_days > 0 {
                    return Err(conflict(ErrorCode::AlreadyExtended, "the deadline is extended once only"));
                }
                let due = due_on(&row)?.ok_or_else(|| internal("a request in handling has no deadline"))?;
                if today > due {
                    return Err(conflict(
                        ErrorCode::DeadlinePassed,
                        "the deadline has passed: an extension is asked for before it",
                    ));
                }
                row.extension_days = i64::from(working_days);
                row.extension_reason = Some(reason);
                row.due_on = Some(self.inner.calendar.add_working_days(due, working_days).to_string());
                row.supervised = 0;
                Action::DisclosureExtended
            }
            HandlingAction::Answer(answer) => {
                let text = text_between("text", &answer.text, 2, 20_000)?;
                match (answer.answer_type.needs_ground(), answer.legal_ground) {
                    (true, None) => {
                        return Err(Error::invalid("legal_ground", "name the article the withholding rests on"));
                    }
                    (false, Some(_)) => {
                        return Err(Error::invalid("legal_ground", "only a withholding rests on a legal ground"));
                    }
                    _ => {}
                }
                let referral = optional_text("referral", answer.referral.as_deref(), 500)?;
                match (answer.answer_type, &referral) {
                    (AnswerType::NotHeld, None) => {
                        return Err(Error::invalid("referral", "say who holds the information"));
                    }
                    (AnswerType::NotHeld, Some(_)) | (_, None) => {}
                    (_, Some(_)) => return Err(Error::invalid("referral", "only 非本机关负责 refers elsewhere")),
                }
                row.state = RequestState::Answered;
                row.answer_type = Some(answer.answer_type.as_str().to_string());
                row.answer_text = Some(text);
                row.legal_ground = answer.legal_ground.map(|g| g.as_str().to_string());
                row.referral = referral;
                row.answered_by = Some(cap.account_id().to_string());
                row.answered_at = Some(millis(now));
                Action::DisclosureAnswered
            }
        };
        self.write(row, read_at, (action_done, cap.account_id()), now).await
    }

    async fn addressed(&self, cap: &Capability<DisclosureAnswer>, id: &str) -> Result<RequestRow, Error> {
        let mut c = self.conn().await?;
        let row = repo::request(&mut c, id).await?.ok_or(Error::NotFound("request"))?;
        cap.check_department(&row.department_id)?;
        Ok(row)
    }
}

fn due_on(row: &RequestRow) -> Result<Option<NaiveDate>, Error> {
    row.due_on
        .as_deref()
        .map(|d| d.parse().map_err(|_| internal(format!("a stored due date does not parse: {d}"))))
        .transpose()
}

/// The request's audit entry: `action` by `actor`, the person as subject.
async fn audit(
    tx: &mut sqlx::AnyConnection,
    row: &RequestRow,
    (action, actor): (Action, &str),
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let mut entry = ledger::Entry::new(action, Outcome::Success, now);
    entry.actor = Some(actor.to_string());
    entry.subject = Some(row.account_id.clone());
    entry.object = Some(row.number.clone());
    entry.jurisdiction = Some(row.region_path.clone());
    ledger::append_in(tx, ledger::Log::Audit, &entry).await?;
    Ok(())
}

impl Openness {
    /// Writes a moved request with its audit entry; refuses when someone moved it first.
    async fn write(
        &self,
        mut row: RequestRow,
        read_at: i64,
        (action, actor): (Action, &str),
        now: DateTime<Utc>,
    ) -> Result<InformationRequest, Error> {
        // Two moves within one millisecond must still differ in their guard.
        row.updated_at = millis(now).max(read_at + 1);
        let mut tx = self.inner.db.begin().await?;
        if !repo::update_request(&mut tx, &row, read_at).await? {
            return Err(conflict(ErrorCode::RecordChanged, "the request changed since you opened it"));
        }
        audit(&mut tx, &row, (action, actor), now).await?;
        tx.commit().await?;
        self.view(row, now).await
    }

    async fn view(&self, row: RequestRow, now: DateTime<Utc>) -> Result<InformationRequest, Error> {
        let department = self
            .inner
            .identity
            .organisation()
            .placed_department_by_id(&row.department_id)
            .await?
            .ok_or_else(|| internal("a request's department is gone"))?;
        let deadline = self.deadline(&row, china_day(now))?;
        let answer = match row.answer_type().map_err(internal)? {
            Some(answer_type) => Some(Answer {
                answer_type,
                text: row.answer_text.clone().ok_or_else(|| internal("an answer without its text"))?,
                legal_ground: row.legal_ground().map_err(internal)?,
                referral: row.referral.clone(),
            }),
            None => None,
        };
        Ok(InformationRequest {
            id: row.id,
            number: row.number,
            applicant_kind: row.applicant_kind,
            department_code: department.department.code,
            department_name: department.department.name,
            description: row.description,
            purpose: row.purpose,
            delivery: row.delivery,
            state: row.state,
            received_at: from_millis(row.received_at),
            clock_from: row.clock_from.parse().map_err(|_| internal("a stored date does not parse"))?,
            deadline,
            extension_days: row.extension_days,
            extension_reason: row.extension_reason,
            clarification_ask: row.clarification_ask,
            clarification: row.clarification,
            answer,
            answered_at: row.answered_at.map(from_millis),
        })
    }

    fn deadline(&self, row: &RequestRow, today: NaiveDate) -> Result<Deadline, Error> {
        let due = due_on(row)?;
        let calendar = &self.inner.calendar;
        let (status, working_days_left) = match (row.state, due) {
            (RequestState::AwaitingClarification, _) => (DeadlineStatus::Paused, None),
            (RequestState::Answered, Some(due)) => {
                let answered = china_day(from_millis(row.answered_at.ok_or_else(|| internal("answered, but when?"))?));
                (if answered <= due { DeadlineStatus::AnsweredOnTime } else { DeadlineStatus::AnsweredLate }, None)
            }
            (RequestState::Handling, Some(due)) if today > due => {
                (DeadlineStatus::Overdue, Some(-i64::from(calendar.working_days_between(due, today))))
            }
            (RequestState::Handling, Some(due)) => {
                let left = calendar.working_days_between(today, due);
                let status = if left <= NEAR_WORKING_DAYS { DeadlineStatus::Near } else { DeadlineStatus::OnTrack };
                (status, Some(i64::from(left)))
            }
            (_, None) => return Err(internal("a request without its deadline")),
        };
        Ok(Deadline { due_on: due, status, working_days_left })
    }
}

/// What a pass of 督办 did: requests told near their deadline, and past it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Supervision {
    pub near: usize,
    pub overdue: usize,
}

impl Openness {
    /// 督办 (every minute while serving): tells the department's officers and leaders when a
    /// request's last day is within [`NEAR_WORKING_DAYS`] working days, and again when it has
    /// passed, once each per deadline (an extension or a clarification starts a new one),
    /// with an audit entry and a notification each through the outbox.
    pub async fn supervise(&self, now: DateTime<Utc>) -> Result<Supervision, Error> {
        let today = china_day(now);
        let cutoff = self.inner.calendar.add_working_days(today, NEAR_WORKING_DAYS).to_string();
        let mut c = self.conn().await?;
        let rows = repo::due_requests(&mut c, &cutoff).await?;
        drop(c);
        let mut report = Supervision::default();
        for row in rows {
            let due = due_on(&row)?.ok_or_else(|| internal("a request in handling has no deadline"))?;
            let overdue = today > due;
            let level = if overdue { 2 } else { 1 };
            if row.supervised >= level {
                continue;
            }
            let mut told = Vec::new();
            for role in ["disclosure_officer", "leader"] {
                told.extend(self.inner.identity.organisation().staff_holding(&row.department_id, role).await?);
            }
            let mut tx = self.inner.db.begin().await?;
            if !repo::mark_supervised(&mut tx, &row.id, (row.updated_at, level)).await? {
                continue;
            }
            let mut entry = ledger::Entry::new(Action::DisclosureSupervised, Outcome::Success, now);
            entry.actor = Some("system".into());
            entry.object = Some(row.number.clone());
            entry.jurisdiction = Some(row.region_path.clone());
            entry.detail = Some(format!("{} {due}", if overdue { "overdue" } else { "near" }));
            ledger::append_in(&mut tx, ledger::Log::Audit, &entry).await?;
            let (zh, en) = if overdue {
                ("已超过答复期限", "is past its deadline")
            } else {
                ("即将到期", "is due soon")
            };
            for (account_id, _) in told {
                let payload = serde_json::json!({
                    "account_id": account_id,
                    "subject": format!("【政府信息公开督办】{} {zh}", row.number),
                    "body": format!(
                        "政府信息公开申请 {} {zh}（答复期限 {due}），请尽快答复。\n\nRequest for information {} {en} ({due}).\n",
                        row.number, row.number
                    ),
                });
                kernel::outbox::enqueue(&mut tx, kernel::outbox::Topic::Notification, &payload, now).await?;
            }
            tx.commit().await?;
            if overdue {
                report.overdue += 1;
            } else {
                report.near += 1;
            }
        }
        Ok(report)
    }
}
