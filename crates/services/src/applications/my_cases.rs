//! An applicant's own cases: the list, one case, supplements, withdrawal and notifications.

use super::*;

kernel::area! {
    /// An applicant's own cases: the list, one case, supplements, withdrawal and notifications.
    MyCases of Services
}

impl MyCases<'_> {
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
            Some(code) => self.intake().bundle_form(code).await?.1,
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
        case.history.push(crate::workflow::Transition {
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
            repo::close_task(&mut tx, &t.id, repo::TaskStatus::Cancelled, millis(now)).await?;
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
            let (zh, en) = Services::case_name(&mut c, &r, &s).await;
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
}
