//! 好差评: applicants rate a finished case; the department answers a bad rating.

use super::*;

kernel::area! {
    /// 好差评: applicants rate a finished case; the department answers a bad rating.
    Ratings of Services
}

impl Ratings<'_> {
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
        let spec = self.service_version(&mut tx, &row.service_id, row.service_version).await?.spec;
        kernel::tally::add(&mut tx, &crate::tallies::rated(&row, &spec, score, now)).await?;
        if score <= 2 {
            repo::insert_task(
                &mut tx,
                &repo::TaskRow {
                    id: new_id(),
                    kind: repo::TaskKind::Rectification,
                    application_id: row.id.clone(),
                    state: "rectification".into(),
                    branch: None,
                    role: "window_clerk".into(),
                    department_id: row.department_id.clone(),
                    region_path: row.region_path.clone(),
                    assignee_id: None,
                    status: repo::TaskStatus::Open,
                    due_at: Some(millis(self.inner.calendar.deadline(now, crate::tallies::RECTIFICATION_DAYS))),
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
        ledger::append_in(&mut tx, Log::Audit, &entry).await?;
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
            .find(|t| t.kind == repo::TaskKind::Rectification && task_is_for(t, cap.department_id(), cap.roles()))
            .ok_or(Error::NotFound("open rectification task of yours"))?;
        if !repo::reply_rating(&mut tx, &row.id, &clip(reply, 1000), millis(now)).await? {
            return Err(Error::conflict(ErrorCode::AlreadyAnswered, "this rating has been answered"));
        }
        repo::close_task(&mut tx, &task.id, repo::TaskStatus::Done, millis(now)).await?;
        let rating = repo::rating(&mut tx, &row.id).await?.ok_or(Error::NotFound("rating"))?;
        let spec = self.service_version(&mut tx, &row.service_id, row.service_version).await?.spec;
        let counts = crate::tallies::rectified(&row, &spec, from_millis(rating.created_at), now, &self.inner.calendar);
        kernel::tally::add(&mut tx, &counts).await?;
        let text_zh = format!("您对办件 {} 的评价已收到整改答复：{}", row.number, clip(reply, 200));
        let text_en = format!("The department answered your rating of {}: {}", row.number, clip(reply, 200));
        repo::insert_notification(&mut tx, &row.applicant_id, Some(&row.id), &text_zh, &text_en, millis(now)).await?;
        let mut entry = audit_entry(Action::RatingAnswered, cap.account_id(), cap.username(), now);
        entry.object = Some(format!("application:{}", row.number));
        entry.jurisdiction = Some(row.region_path.clone());
        ledger::append_in(&mut tx, Log::Audit, &entry).await?;
        tx.commit().await?;
        Ok(())
    }
}
