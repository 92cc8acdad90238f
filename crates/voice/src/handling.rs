//! Handling a request after intake: the dispatchers' queue (派单), the department's inbox
//! (签收, 退单, 答复) and the person's own requests (the timeline and the rating, 回访).
//! Every move is a workflow action on the request's case, written with its audit entry in
//! one transaction and guarded by the state it was read in.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::AnyConnection;

use super::repo::{self, RequestRow};
use super::{Error, Photo, Rating, RequestKind, RequestView, Stage, Voice, internal};
use identity::{Capability, Principal};
use kernel::audit::{Action, Outcome};
use kernel::authz::{ResidentRead, Scope, VoiceDispatch, VoiceHandle, subtree_bounds};
use kernel::db::millis;
use services::workflow::{Actor, Case, Context};

/// How many requests a list shows at most.
const PAGE: i64 = 200;

kernel::area! {
    /// The dispatchers' queue (派单).
    Dispatching of Voice
}

kernel::area! {
    /// A department's 12345 inbox.
    Handling of Voice
}

kernel::area! {
    /// The person's own requests.
    MyRequests of Voice
}

/// The person behind a request, as the handling department sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "contact", rename_all = "snake_case")]
#[schema(as = VoiceContact)]
pub enum Contact {
    /// Name and mobile, masked (王*, 138****5678) unless shown for a stated purpose.
    Shown { name: String, mobile: String, masked: bool },
    /// A 举报: the reporter is never shown to the department.
    Hidden,
    /// Made without an account (a hotline caller or an Open311 client).
    NoAccount,
    /// The reader may not look up residents, or not this one.
    NotPermitted,
}

/// A request as its handling department reads it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = VoiceStaffRequest)]
pub struct StaffRequest {
    pub request: RequestView,
    pub contact: Contact,
}

/// What a department does with a request addressed to it.
#[derive(Debug, Clone)]
pub enum HandlerAction {
    /// 签收: takes it on.
    Sign,
    /// 退单: not this department's; back to the dispatchers with the reason.
    SendBack { reason: String },
    /// 答复: the answer the person reads and rates.
    Answer { text: String },
    /// 延期: asks a dispatcher for more working days, once per request.
    AskExtension { days: u32, reason: String },
}

/// The most working days an extension may add.
pub const MAX_EXTENSION_DAYS: u32 = 10;

fn text_between(field: &'static str, text: &str, min: usize, max: usize) -> Result<String, Error> {
    kernel::wire::text_within(text, min, max).map_err(|reason| Error::invalid(field, reason))
}

/// A workflow action taken on a request: which, in which of the workflow's roles
/// (`dispatcher`, `handler`, `person`), by which account, with what comment.
pub(crate) struct Move<'a> {
    pub(crate) action: &'a str,
    pub(crate) role: &'a str,
    pub(crate) by: &'a str,
    pub(crate) comment: Option<&'a str>,
}

impl Voice {
    /// Takes the move on the request, with `form` for the guards.
    pub(crate) fn act(&self, row: &mut RequestRow, m: Move<'_>, form: &Value, now: DateTime<Utc>) -> Result<(), Error> {
        let mut case: Case = serde_json::from_str(&row.workflow).map_err(internal)?;
        let roles = [m.role.to_string()];
        let ctx = Context { form, now, calendar: &self.inner.calendar };
        case.act(&self.inner.workflow, m.action, &Actor { name: m.by, roles: &roles }, m.comment, ctx)?;
        row.state = case.state.clone().try_into().map_err(internal)?;
        row.state_due = self.due(row.state, (row.kind, &row.category, row.urgency), now);
        row.supervised = 0;
        row.workflow = serde_json::to_string(&case).map_err(internal)?;
        row.updated_at = millis(now);
        Ok(())
    }

    /// Writes the moved request and its audit entry (`action` by `actor`, with `detail`);
    /// refuses when someone moved it first.
    pub(crate) async fn write_move(
        &self,
        c: &mut AnyConnection,
        row: &RequestRow,
        read_in: Stage,
        (action, actor, detail): (Action, &str, Option<String>),
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let before = repo::request(c, &row.id).await?.ok_or(Error::NotFound("request"))?;
        if !repo::update(c, row, read_in).await? {
            return Err(Error::Workflow(services::workflow::WorkflowError::NoSuchAction {
                action: "this step".into(),
                state: "one someone else has just changed".into(),
            }));
        }
        self.add_counts(c, Some(&before), row).await?;
        let mut entry = ledger::Entry::new(action, Outcome::Success, now);
        entry.actor = Some(actor.to_string());
        entry.object = Some(row.number.clone());
        entry.jurisdiction = Some(row.region_path.clone());
        entry.detail = detail;
        ledger::append_in(c, ledger::Log::Audit, &entry).await?;
        Ok(())
    }

    /// Records a rating of the answer, by the person (`owner`, who must have made the
    /// request) or by an operator for a caller without an account (`owner` None).
    pub(crate) async fn rate_as(
        &self,
        id: &str,
        owner: Option<&str>,
        by: &str,
        rating: Rating,
        comment: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<RequestView, Error> {
        let comment = match comment.map(str::trim).filter(|c| !c.is_empty()) {
            Some(c) => Some(text_between("comment", c, 1, 500)?),
            None => None,
        };
        let mut tx = self.inner.db.begin().await?;
        let mut row = self.row_in(&mut tx, id).await?;
        if row.account_id.as_deref() != owner {
            return Err(Error::NotFound("request"));
        }
        if row.state != Stage::Answered {
            return Err(Error::Workflow(services::workflow::WorkflowError::NoSuchAction {
                action: "rate".into(),
                state: row.state.as_str().into(),
            }));
        }
        let read_in = row.state;
        let form = json!({"reopened": row.reopened});
        let action = match rating {
            Rating::Satisfied | Rating::BasicallySatisfied => "satisfied",
            Rating::Unsatisfied if row.reopened < 1 => "reopen",
            Rating::Unsatisfied => "close_unsatisfied",
        };
        let m = Move { action, role: "person", by, comment: comment.as_deref() };
        self.act(&mut row, m, &form, now)?;
        if action == "reopen" {
            row.reopened += 1;
        }
        row.rating = Some(rating.as_str().to_string());
        let detail = Some(rating.as_str().to_string());
        self.write_move(&mut tx, &row, read_in, (Action::VoiceRequestRated, by, detail), now).await?;
        let view = self.view_in(&mut tx, row, now).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Gives the requests merged into `root` its answer and department: each then waits for
    /// its own person's rating.
    async fn answer_merged_in(
        &self,
        c: &mut AnyConnection,
        root: &RequestRow,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let Some(answer) = root.answer.clone() else { return Ok(()) };
        for mut row in repo::merged_waiting(c, &root.id).await? {
            let read_in = row.state;
            let m = Move { action: "answer_merged", role: "system", by: "system", comment: Some(&answer) };
            self.act(&mut row, m, &json!({}), now)?;
            row.answer = Some(answer.clone());
            row.department_id.clone_from(&root.department_id);
            let detail = Some(root.number.clone());
            self.write_move(c, &row, read_in, (Action::VoiceRequestAnswered, "system", detail), now).await?;
        }
        Ok(())
    }

    /// One of a request's photos, with its bytes, once the reader's right to the request is
    /// checked.
    async fn photo_of(
        &self,
        mut c: sqlx::pool::PoolConnection<sqlx::Any>,
        row: &RequestRow,
        document_id: &str,
    ) -> Result<(Photo, Vec<u8>), Error> {
        let found = repo::photos_of(&mut c, &row.id).await?.into_iter().find(|p| p.document_id == document_id);
        // The upload store takes a connection of its own.
        drop(c);
        let p = found.ok_or(Error::NotFound("photo"))?;
        let (_, bytes) = self.inner.services.documents().content(&p.document_id).await?;
        Ok((
            Photo { document_id: p.document_id, filename: p.filename, content_type: p.content_type, size: p.size },
            bytes,
        ))
    }

    async fn row_in(&self, c: &mut AnyConnection, id: &str) -> Result<RequestRow, Error> {
        repo::request(c, id).await?.ok_or(Error::NotFound("request"))
    }
}

impl Dispatching<'_> {
    /// Requests waiting for a dispatcher within the dispatcher's jurisdiction, oldest first.
    pub async fn queue(&self, cap: &Capability<VoiceDispatch>, now: DateTime<Utc>) -> Result<Vec<RequestView>, Error> {
        let (lower, upper) = match cap.scope() {
            Scope::Subtree(path) => subtree_bounds(path),
            Scope::All => subtree_bounds("/"),
        };
        let mut c = self.conn().await?;
        let rows = repo::queue(&mut c, &lower, &upper, PAGE).await?;
        self.views_in(&mut c, rows, now).await
    }

    /// A request in the dispatcher's jurisdiction.
    pub async fn request(
        &self,
        cap: &Capability<VoiceDispatch>,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<RequestView, Error> {
        let mut c = self.conn().await?;
        let row = self.row_in(&mut c, id).await?;
        cap.check_record(&row.region_path, 1)?;
        self.view_in(&mut c, row, now).await
    }

    /// 派单: sends a queued request to a department, in the category the dispatcher chose;
    /// a changed category is kept as a training example.
    pub async fn dispatch(
        &self,
        cap: &Capability<VoiceDispatch>,
        id: &str,
        category: &str,
        department_code: &str,
        now: DateTime<Utc>,
    ) -> Result<RequestView, Error> {
        let category =
            self.inner.categories.get(category).ok_or_else(|| Error::invalid("category", "not a known category"))?;
        let mut tx = self.inner.db.begin().await?;
        let mut row = self.row_in(&mut tx, id).await?;
        cap.check_record(&row.region_path, 1)?;
        let department = self
            .inner
            .identity
            .organisation()
            .department_by_code_in(&mut tx, department_code.trim())
            .await?
            .ok_or_else(|| Error::invalid("department", "not a department of this platform"))?;
        let read_in = row.state;
        if category.code != row.proposed {
            let text = row.text.clone();
            repo::record_correction(
                &mut tx,
                &row.id,
                &text,
                &row.proposed,
                &category.code,
                cap.account_id(),
                millis(now),
            )
            .await?;
        }
        row.category = category.code.clone();
        row.department_id = Some(department.id.clone());
        let m = Move { action: "dispatch", role: "dispatcher", by: cap.account_id(), comment: None };
        self.act(&mut row, m, &json!({}), now)?;
        let detail = format!("{} → {}", category.code, department.code);
        let record = (Action::VoiceRequestDispatched, cap.account_id(), Some(detail));
        self.write_move(&mut tx, &row, read_in, record, now).await?;
        let view = self.view_in(&mut tx, row, now).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// 延期审核: grants the working days the department asked for, counted on from the
    /// handling limit, or refuses them and the limit stands.
    pub async fn decide_extension(
        &self,
        cap: &Capability<VoiceDispatch>,
        id: &str,
        grant: bool,
        now: DateTime<Utc>,
    ) -> Result<RequestView, Error> {
        let mut tx = self.inner.db.begin().await?;
        let mut row = self.row_in(&mut tx, id).await?;
        cap.check_record(&row.region_path, 1)?;
        let read_in = row.state;
        let due = row.state_due;
        let action = if grant { "grant_extension" } else { "refuse_extension" };
        let m = Move { action, role: "dispatcher", by: cap.account_id(), comment: None };
        self.act(&mut row, m, &json!({}), now)?;
        let days = u32::try_from(row.extension_days).map_err(internal)?;
        row.state_due = match (grant, due) {
            (true, Some(due)) => Some(millis(self.inner.calendar.deadline(kernel::db::from_millis(due), days))),
            _ => due,
        };
        let detail = if grant { format!("granted {days}") } else { "refused".to_string() };
        let record = (Action::VoiceExtensionDecided, cap.account_id(), Some(detail));
        self.write_move(&mut tx, &row, read_in, record, now).await?;
        let view = self.view_in(&mut tx, row, now).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// 并单: merges a queued request into an earlier open one about the same thing, within
    /// the dispatcher's jurisdiction. It then follows that one: answered with its answer,
    /// at once if that one is answered already.
    pub async fn merge(
        &self,
        cap: &Capability<VoiceDispatch>,
        id: &str,
        into: &str,
        now: DateTime<Utc>,
    ) -> Result<RequestView, Error> {
        let mut tx = self.inner.db.begin().await?;
        let mut row = self.row_in(&mut tx, id).await?;
        cap.check_record(&row.region_path, 1)?;
        let root = repo::request(&mut tx, into.trim()).await?.ok_or(Error::NotFound("request"))?;
        cap.check_record(&root.region_path, 1)?;
        if root.id == row.id || root.merged_into.is_some() || matches!(root.state, Stage::Closed | Stage::Merged) {
            return Err(Error::invalid("into", "an open request that is not itself merged"));
        }
        let read_in = row.state;
        let m = Move { action: "merge", role: "dispatcher", by: cap.account_id(), comment: Some(&root.number) };
        self.act(&mut row, m, &json!({}), now)?;
        row.merged_into = Some(root.id.clone());
        let record = (Action::VoiceRequestMerged, cap.account_id(), Some(root.number.clone()));
        self.write_move(&mut tx, &row, read_in, record, now).await?;
        if matches!(root.state, Stage::Answered) {
            self.answer_merged_in(&mut tx, &root, now).await?;
        }
        let row = self.row_in(&mut tx, id).await?;
        let view = self.view_in(&mut tx, row, now).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// A photo of a request in the dispatcher's jurisdiction.
    pub async fn photo(
        &self,
        cap: &Capability<VoiceDispatch>,
        id: &str,
        document_id: &str,
    ) -> Result<(Photo, Vec<u8>), Error> {
        let mut c = self.conn().await?;
        let row = self.row_in(&mut c, id).await?;
        cap.check_record(&row.region_path, 1)?;
        self.photo_of(c, &row, document_id).await
    }

    /// The dispatchers' corrections, as `category<TAB>text` lines for the next training run.
    pub async fn corrections(&self, _cap: &Capability<VoiceDispatch>) -> Result<String, Error> {
        let mut c = self.conn().await?;
        let rows = repo::corrections(&mut c).await?;
        Ok(rows.iter().map(|r| format!("{}\t{}\n", r.chosen, r.text.replace(['\t', '\n', '\r'], " "))).collect())
    }
}

impl Handling<'_> {
    fn own<'r>(&self, cap: &Capability<VoiceHandle>, row: &'r RequestRow) -> Result<&'r RequestRow, Error> {
        // Another department's request does not exist for this one.
        match &row.department_id {
            Some(d) if cap.check_department(d).is_ok() => Ok(row),
            _ => Err(Error::NotFound("request")),
        }
    }

    /// A hotline caller's name and mobile: masked, or plain for a stated purpose; each
    /// reading an audit entry naming the request and the purpose.
    async fn caller_contact(
        &self,
        c: &mut AnyConnection,
        cap: &Capability<VoiceHandle>,
        request: &RequestView,
        sealed: &str,
        reveal: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Contact, Error> {
        let purpose = match reveal.map(str::trim) {
            None => None,
            Some(p) if p.is_empty() || p.chars().count() > 200 => {
                return Err(Error::invalid(
                    "purpose",
                    "state why the plain value is needed, in at most 200 characters",
                ));
            }
            Some(p) => Some(p.to_string()),
        };
        let plain = self
            .inner
            .identity
            .protector()
            .open_in(c, sealed, &crate::intake::caller_context(&request.id))
            .await
            .map_err(internal)?;
        let caller: crate::Caller = serde_json::from_str(&plain).map_err(internal)?;
        let mut entry = ledger::Entry::new(Action::VoiceCallerRead, Outcome::Success, now);
        entry.actor = Some(cap.account_id().to_string());
        entry.actor_name = Some(cap.username().to_string());
        entry.object = Some(request.number.clone());
        entry.purpose = purpose.clone();
        ledger::append(c, ledger::Log::Audit, &entry).await?;
        Ok(if purpose.is_some() {
            Contact::Shown { name: caller.name, mobile: caller.mobile, masked: false }
        } else {
            Contact::Shown {
                name: protect::Mask::Name.apply(&caller.name),
                mobile: protect::Mask::Mobile.apply(&caller.mobile),
                masked: true,
            }
        })
    }

    /// A photo of a request addressed to the department.
    pub async fn photo(
        &self,
        cap: &Capability<VoiceHandle>,
        id: &str,
        document_id: &str,
    ) -> Result<(Photo, Vec<u8>), Error> {
        let mut c = self.conn().await?;
        let row = self.row_in(&mut c, id).await?;
        self.own(cap, &row)?;
        self.photo_of(c, &row, document_id).await
    }

    /// The department's open requests, the nearest deadline first.
    pub async fn inbox(&self, cap: &Capability<VoiceHandle>, now: DateTime<Utc>) -> Result<Vec<RequestView>, Error> {
        let department = cap
            .department_id()
            .ok_or_else(|| Error::invalid("department", "a department's staff handle its requests"))?;
        let mut c = self.conn().await?;
        let rows = repo::department_open(&mut c, department, PAGE).await?;
        self.views_in(&mut c, rows, now).await
    }

    /// A request addressed to the department, with the person behind it as the department
    /// may see them: masked, or in plain for a stated purpose (`reveal`). Either way the
    /// reading is an access entry on the person's 我的数据; a 举报's reporter stays hidden.
    pub async fn request(
        &self,
        cap: &Capability<VoiceHandle>,
        read: Option<&Capability<ResidentRead>>,
        id: &str,
        reveal: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<StaffRequest, Error> {
        let mut c = self.conn().await?;
        let row = self.row_in(&mut c, id).await?;
        self.own(cap, &row)?;
        let kind = row.kind;
        let account = row.account_id.clone();
        let caller = row.caller.clone();
        let request = self.view_in(&mut c, row, now).await?;
        let contact = match (kind, account, caller, read) {
            // The department reported on must not learn who reported it.
            (RequestKind::Report, ..) => Contact::Hidden,
            (_, Some(_), _, None) => Contact::NotPermitted,
            (_, Some(account), _, Some(read)) => {
                drop(c);
                match self.inner.identity.people().resident(read, &account, reveal, now).await {
                    Ok(r) => Contact::Shown { name: r.name, mobile: r.mobile, masked: r.masked },
                    Err(identity::Error::Denied(_)) => Contact::NotPermitted,
                    Err(e) => return Err(e.into()),
                }
            }
            (_, None, Some(sealed), _) => self.caller_contact(&mut c, cap, &request, &sealed, reveal, now).await?,
            (_, None, None, _) => Contact::NoAccount,
        };
        Ok(StaffRequest { request, contact })
    }

    pub async fn act(
        &self,
        cap: &Capability<VoiceHandle>,
        id: &str,
        action: HandlerAction,
        now: DateTime<Utc>,
    ) -> Result<RequestView, Error> {
        let mut tx = self.inner.db.begin().await?;
        let mut row = self.row_in(&mut tx, id).await?;
        self.own(cap, &row)?;
        let read_in = row.state;
        let by = cap.account_id();
        let (audit, detail) = match action {
            HandlerAction::Sign => {
                let m = Move { action: "sign", role: "handler", by, comment: None };
                Voice::act(self, &mut row, m, &json!({}), now)?;
                (Action::VoiceRequestSigned, None)
            }
            HandlerAction::SendBack { reason } => {
                let reason = text_between("reason", &reason, 2, 500)?;
                let m = Move { action: "send_back", role: "handler", by, comment: Some(&reason) };
                Voice::act(self, &mut row, m, &json!({}), now)?;
                row.department_id = None;
                (Action::VoiceRequestSentBack, Some(reason))
            }
            HandlerAction::Answer { text } => {
                let text = text_between("answer", &text, 5, 2000)?;
                let m = Move { action: "answer", role: "handler", by, comment: Some(&text) };
                Voice::act(self, &mut row, m, &json!({}), now)?;
                row.answer = Some(text);
                (Action::VoiceRequestAnswered, None)
            }
            HandlerAction::AskExtension { days, reason } => {
                if !(1..=MAX_EXTENSION_DAYS).contains(&days) {
                    return Err(Error::invalid("days", format!("between 1 and {MAX_EXTENSION_DAYS} working days")));
                }
                let reason = text_between("reason", &reason, 2, 500)?;
                let due = row.state_due;
                let form = json!({"extension_reason": row.extension_reason});
                let m = Move { action: "ask_extension", role: "handler", by, comment: Some(&reason) };
                Voice::act(self, &mut row, m, &form, now)?;
                // The handling clock keeps running while a dispatcher decides.
                row.state_due = due;
                row.extension_days = i64::from(days);
                row.extension_reason = Some(reason);
                (Action::VoiceExtensionAsked, Some(days.to_string()))
            }
        };
        self.write_move(&mut tx, &row, read_in, (audit, by, detail), now).await?;
        if row.state == Stage::Answered {
            self.answer_merged_in(&mut tx, &row, now).await?;
        }
        let view = self.view_in(&mut tx, row, now).await?;
        tx.commit().await?;
        Ok(view)
    }
}

impl MyRequests<'_> {
    fn own<'r>(&self, me: &Principal, row: &'r RequestRow) -> Result<&'r RequestRow, Error> {
        if row.account_id.as_deref() == Some(me.account_id.as_str()) {
            Ok(row)
        } else {
            Err(Error::NotFound("request"))
        }
    }

    /// The person's requests, newest first.
    pub async fn list(&self, me: &Principal, now: DateTime<Utc>) -> Result<Vec<RequestView>, Error> {
        let mut c = self.conn().await?;
        let rows = repo::of_account(&mut c, &me.account_id, PAGE).await?;
        self.views_in(&mut c, rows, now).await
    }

    pub async fn request(&self, me: &Principal, id: &str, now: DateTime<Utc>) -> Result<RequestView, Error> {
        let mut c = self.conn().await?;
        let row = self.row_in(&mut c, id).await?;
        self.own(me, &row)?;
        self.view_in(&mut c, row, now).await
    }

    /// A photo of the person's own request.
    pub async fn photo(&self, me: &Principal, id: &str, document_id: &str) -> Result<(Photo, Vec<u8>), Error> {
        let mut c = self.conn().await?;
        let row = self.row_in(&mut c, id).await?;
        self.own(me, &row)?;
        self.photo_of(c, &row, document_id).await
    }

    /// 回访: the person rates the answer. 不满意 reopens the request once; after that it
    /// closes with the rating on record.
    pub async fn rate(
        &self,
        me: &Principal,
        id: &str,
        rating: Rating,
        comment: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<RequestView, Error> {
        self.rate_as(id, Some(&me.account_id), &me.account_id, rating, comment, now).await
    }
}
