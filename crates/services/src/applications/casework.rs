//! The staff inbox: cases within jurisdiction, decisions, claiming and transferring tasks, time limits and escalation.

use super::*;

kernel::area! {
    /// The staff inbox: cases within jurisdiction, decisions, claiming and transferring tasks, time limits and escalation.
    Casework of Services
}

impl Casework<'_> {
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
            .filter(|t| t.kind == repo::TaskKind::Case)
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
        if !repo::update_application(&mut tx, &row).await? {
            return Err(Error::conflict(ErrorCode::CaseChanged, "someone else changed this case meanwhile; reload it"));
        }
        tx.commit().await?;
        self.view(&row.id, Viewer::Staff { department_id: cap.department_id(), roles: cap.roles() }).await
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
        // Staff without a department handle no cases.
        let department = cap.department_id().ok_or(Denial::OutsideJurisdiction)?;
        let involved = repo::department_involved(&mut tx, &row.id, department).await?;
        if !involved && row.department_id != department {
            return Err(Denial::OutsideJurisdiction.into());
        }
        let mut entry = audit_entry(Action::ApplicationRead, cap.account_id(), cap.username(), now);
        entry.object = Some(format!("application:{}", row.number));
        entry.subject = Some(row.applicant_id.clone());
        entry.jurisdiction = Some(row.region_path.clone());
        entry.purpose = Some("审查办件 handling the application".into());
        ledger::append_in(&mut tx, Log::Audit, &entry).await?;
        tx.commit().await?;
        self.view(&row.id, Viewer::Staff { department_id: cap.department_id(), roles: cap.roles() }).await
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
        // Applicants' names are identity's: one lookup for the whole inbox.
        let ids: Vec<&str> = rows.iter().map(|r| r.applicant_id.as_str()).collect();
        let names = self.inner.identity.accounts().display_names_in(&mut c, &ids).await?;
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
                applicant: protect::Mask::Name.apply(
                    names.get(&r.applicant_id).ok_or(Error::Internal(format!("no account {}", r.applicant_id)))?,
                ),
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
            Some(other) => {
                Some(self.inner.identity.organisation().staff_post(other).await?.ok_or(Error::NotFound("colleague"))?)
            }
            None => None,
        };
        let mut tx = self.inner.db.begin().await?;
        let task = repo::task(&mut tx, task_id).await?.ok_or(Error::NotFound("task"))?;
        cap.check_record(&task.region_path, APPLICATION_CLASSIFICATION)?;
        if !task.is_open() || !task_is_for(&task, cap.department_id(), cap.roles()) {
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
        ledger::append_in(&mut tx, Log::Audit, &entry).await?;
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
        if !task.is_open() || !task_is_for(&task, cap.department_id(), cap.roles()) {
            return Err(Error::NotFound("open task of yours"));
        }
        let colleagues = self
            .inner
            .identity
            .organisation()
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
            let holders = self.inner.identity.organisation().staff_holding(&t.department_id, &supervisor).await?;
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
}
