//! Writing new cases: one case or many in a group commit, with their history, tasks,
//! ledger entries and notices, and recording each later step of a case.

use super::*;

pub(super) struct NewCase<'a> {
    pub(super) facts: &'a ApplicantFacts,
    pub(super) service: &'a PublishedService,
    pub(super) bundle: Option<(&'a BundleSpec, &'a [PublishedService])>,
    pub(super) data: Value,
    pub(super) documents: &'a [String],
    pub(super) assisted_by: Option<Assist<'a>>,
}

/// A new case, ready to be written: everything read, validated and sealed beforehand.
pub(crate) struct CaseToWrite {
    pub(super) id: String,
    pub(super) applicant_id: String,
    pub(super) applicant_name: String,
    pub(super) service: PublishedService,
    pub(super) bundle_code: Option<String>,
    pub(super) def: Arc<Definition>,
    pub(super) case: Case,
    pub(super) data: Value,
    pub(super) form_body: String,
    pub(super) sealed: Option<String>,
    pub(super) prefill: String,
    pub(super) documents: Vec<String>,
    pub(super) assist: Option<AssistOwned>,
    pub(super) department_id: String,
    pub(super) region_path: String,
    /// The applicant gave an address for notifications by email.
    pub(super) wants_email: bool,
}

/// A new case as written: its row, its history and its form values.
pub(crate) struct WrittenCase {
    pub(super) row: repo::ApplicationRow,
    pub(super) history: Vec<repo::HistoryRow>,
    pub(super) form: Value,
}

/// A new case waiting for the next group commit, and what it answers.
pub(crate) type QueuedCase = (CaseToWrite, DateTime<Utc>);
pub(crate) type NewCases = kernel::db::Batch<QueuedCase, Result<WrittenCase, Error>>;

/// A new case as [`Services::write_cases`] wrote its row, with what remains to do for it.
pub(super) struct CaseWritten {
    pub(super) row: repo::ApplicationRow,
    pub(super) service: PublishedService,
    pub(super) data: Value,
    pub(super) documents: Vec<String>,
    pub(super) wants_email: bool,
    pub(super) phase: Phase,
    pub(super) approved: bool,
}

/// The audit-ledger entry of a case's transition.
pub(super) fn transition_entry(
    t: &crate::workflow::Transition,
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
pub(super) fn history_row(t: &crate::workflow::Transition, seq: i64, actor_id: &str) -> repo::HistoryRow {
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
pub(super) fn phase_notice(row: &repo::ApplicationRow, service: &PublishedService, phase: Phase) -> (String, String) {
    let name = &service.spec.name_zh;
    (
        format!("您的申请 {}（{name}）{}。", row.number, phase_zh(phase)),
        format!("Your application {} ({}) is {}.", row.number, service.spec.name_en, phase_en(phase)),
    )
}

/// Queues the notice by email (the outbox sends it after commit).
pub(super) async fn email_notice(
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
pub(super) struct AssistOwned {
    pub(super) staff_id: String,
    pub(super) staff_name: String,
    pub(super) confirmed_by: String,
    pub(super) code: Option<String>,
}

/// Who submitted for the applicant, and how the applicant confirmed.
pub(super) struct Assist<'a> {
    pub(super) staff_id: &'a str,
    pub(super) staff_name: &'a str,
    pub(super) confirmed_by: &'a str,
    /// The hash of the code they were sent; used up in the submitting transaction.
    pub(super) code: Option<String>,
}

impl Services {
    pub(super) async fn create(&self, n: NewCase<'_>, now: DateTime<Utc>) -> Result<WrittenCase, Error> {
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
    pub(super) async fn write_new_case(&self, case: CaseToWrite, now: DateTime<Utc>) -> Result<WrittenCase, Error> {
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
    pub(super) async fn write_queued(
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
    pub(super) async fn write_cases(
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
            .map(|(_, now)| now.with_timezone(&crate::calendar::cst()).format("%Y%m%d").to_string())
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
                crate::workflow::Transition {
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
        let mut counts = Vec::with_capacity(written.len() * 4);
        for c in &written {
            counts.extend(crate::tallies::submitted(&c.row, &c.service.spec));
            if c.phase.is_final() {
                let at = from_millis(c.row.created_at);
                counts.extend(crate::tallies::finished(&c.row, &c.service.spec, c.phase, at, &self.inner.calendar));
            }
        }
        kernel::tally::add(tx, &counts).await?;
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
    pub(super) async fn record_change(
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
        for t in repo::open_tasks_of(tx, &row.id).await?.iter().filter(|t| t.kind == repo::TaskKind::Case) {
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
        row.due_at = case.case_due.map(millis);
        row.updated_at = millis(now);
        if before.1 != phase && phase.is_final() {
            let counts = crate::tallies::finished(row, &service.spec, phase, now, &self.inner.calendar);
            kernel::tally::add(tx, &counts).await?;
        }
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
    pub(super) async fn wanted_tasks(
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
                kind: repo::TaskKind::Case,
                application_id: row.id.clone(),
                state: case.state.clone(),
                branch,
                role,
                department_id,
                region_path: row.region_path.clone(),
                assignee_id: None,
                status: repo::TaskStatus::Open,
                due_at: case.state_due.or(case.case_due).map(millis),
                warned_at: None,
                escalated_to: None,
                created_at: row.updated_at,
            })
            .collect())
    }
}
