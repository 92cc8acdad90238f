//! 督办: a pass (every minute while serving) that tells the handling department when a
//! request's step is due within a few hours and again when it is overdue, once each per
//! step, with an audit entry; the lists then show it as supervised.

use chrono::{DateTime, Duration, Utc};

use super::repo;
use super::{Error, Stage, Voice};
use kernel::audit::{Action, Outcome};
use kernel::db::millis;

/// How long before its limit a step counts as due soon.
const DUE_SOON_HOURS: i64 = 4;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Supervision {
    pub due_soon: usize,
    pub overdue: usize,
    /// Answered requests closed because the time to rate them passed.
    pub closed_unrated: usize,
}

impl Voice {
    pub async fn supervise(&self, now: DateTime<Utc>) -> Result<Supervision, Error> {
        let mut c = self.conn().await?;
        let soon = millis(now + Duration::hours(DUE_SOON_HOURS));
        let rows = repo::due_before(&mut c, soon, millis(now)).await?;
        drop(c);
        let mut report = Supervision::default();
        for row in rows {
            let overdue = row.state_due.is_some_and(|d| d < millis(now));
            let level = if overdue { 2 } else { 1 };
            // The department's desks and leaders hear of it; the dispatchers' queue shows it.
            let mut told = Vec::new();
            if let (Some(department), true) = (&row.department_id, row.state != Stage::Dispatching) {
                for role in ["window_clerk", "leader"] {
                    told.extend(self.inner.identity.organisation().staff_holding(department, role).await?);
                }
            }
            let mut tx = self.inner.db.begin().await?;
            if !repo::mark_supervised(&mut tx, &row.id, row.state, level).await? {
                continue;
            }
            let mut entry = ledger::Entry::new(Action::VoiceRequestSupervised, Outcome::Success, now);
            entry.actor = Some("system".into());
            entry.object = Some(row.number.clone());
            entry.jurisdiction = Some(row.region_path.clone());
            entry.detail = Some(format!("{} {}", row.state.as_str(), if overdue { "overdue" } else { "due_soon" }));
            ledger::append_in(&mut tx, ledger::Log::Audit, &entry).await?;
            let (zh, en) = if overdue { ("已超时", "is overdue") } else { ("即将超时", "is due soon") };
            for (account_id, _) in told {
                let payload = serde_json::json!({
                    "account_id": account_id,
                    "subject": format!("【12345督办】{} {zh}", row.number),
                    "body": format!("12345 工单 {} {zh}，请尽快办理。\n\n12345 request {} {en}.\n", row.number, row.number),
                });
                kernel::outbox::enqueue(&mut tx, kernel::outbox::Topic::Notification, &payload, now).await?;
            }
            tx.commit().await?;
            if overdue {
                report.overdue += 1;
            } else {
                report.due_soon += 1;
            }
        }
        report.closed_unrated = self.close_unrated(now).await?;
        Ok(report)
    }

    async fn close_unrated(&self, now: DateTime<Utc>) -> Result<usize, Error> {
        let mut c = self.conn().await?;
        let rows = repo::unrated_before(&mut c, millis(now)).await?;
        drop(c);
        let mut closed = 0;
        for mut row in rows {
            let mut tx = self.inner.db.begin().await?;
            let read_in = row.state;
            let m = super::handling::Move { action: "lapse", role: "system", by: "system", comment: None };
            self.act(&mut row, m, &serde_json::json!({}), now)?;
            // Someone rated it meanwhile: theirs stands.
            match self.write_move(&mut tx, &row, read_in, (Action::VoiceRequestLapsed, "system", None), now).await {
                Ok(()) => {
                    tx.commit().await?;
                    closed += 1;
                }
                Err(Error::Workflow(_)) => tx.rollback().await?,
                Err(e) => return Err(e),
            }
        }
        Ok(closed)
    }
}
