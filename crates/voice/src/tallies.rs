//! What 12345 requests add to the platform's tallies (`kernel::tally`): a request's counts are
//! a function of its row and history ([`Voice::counts`]); each write adds the difference
//! between the request's counts after and before it, and a recount sums them over every
//! request, so the two agree by construction.

use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

use kernel::db::from_millis;
use kernel::tally::{Count, Key, Measure, Module};
use services::calendar::cst;
use services::workflow::Case;

use super::repo::{self, RequestRow};
use super::{Channel, Error, Rating, Stage, Voice, internal};

/// The rating steps of the workflow: the person's verdict on an answer.
const RATING_ACTIONS: &[&str] = &["satisfied", "reopen", "close_unsatisfied"];

fn channel(c: Channel) -> kernel::tally::Channel {
    match c {
        Channel::Portal | Channel::Api => kernel::tally::Channel::Online,
        Channel::Hotline => kernel::tally::Channel::Hotline,
        Channel::Open311 => kernel::tally::Channel::Open311,
    }
}

impl Voice {
    /// A request's counts: received on the day it came in; signed for (on time or not) on
    /// the day of its last signing; answered on the day of its first answer; reopened on the
    /// day of its first reopening; rated (and whether satisfied) on the day of its last rating.
    pub(crate) fn counts(&self, row: &RequestRow) -> Result<Vec<Count>, Error> {
        let case: Case = serde_json::from_str(&row.workflow).map_err(internal)?;
        let key = |at: DateTime<Utc>| Key {
            day: at.with_timezone(&cst()).date_naive(),
            region_path: kernel::tally::tally_region(&row.region_path),
            department_id: row.department_id.clone().unwrap_or_default(),
            service: row.category.clone(),
            channel: channel(row.channel),
        };
        let count = |at, measure, value| Count { key: key(at), measure, value };
        let mut out = vec![count(from_millis(row.created_at), Measure::HotlineReceived, 1)];
        if let Some(signed) = case.history.iter().rev().find(|t| t.action == "sign") {
            let arrived = case.history.iter().rev().find(|t| t.to == "assigned" && t.at <= signed.at).map(|t| t.at);
            let limit = arrived
                .and_then(|a| self.due(Stage::Assigned, (row.kind, &row.category, row.urgency), a))
                .map(from_millis);
            out.push(count(signed.at, Measure::HotlineSigned, 1));
            out.push(count(signed.at, Measure::HotlineSignedOnTime, i64::from(limit.is_none_or(|l| signed.at <= l))));
        }
        if let Some(answered) = case.history.iter().find(|t| t.action == "answer" || t.action == "answer_merged") {
            out.push(count(answered.at, Measure::HotlineAnswered, 1));
        }
        if let Some(reopened) = case.history.iter().find(|t| t.action == "reopen") {
            out.push(count(reopened.at, Measure::HotlineReopened, 1));
        }
        if let (Some(rating), Some(rated)) =
            (row.rating.as_deref(), case.history.iter().rev().find(|t| RATING_ACTIONS.contains(&t.action.as_str())))
        {
            let rating = Rating::try_from(rating.to_string()).map_err(internal)?;
            out.push(count(rated.at, Measure::HotlineRated, 1));
            let satisfied = matches!(rating, Rating::Satisfied | Rating::BasicallySatisfied);
            out.push(count(rated.at, Measure::HotlineSatisfied, i64::from(satisfied)));
        }
        Ok(out)
    }

    /// Adds what a write changed in a request's counts: `before` is the row as stored, none
    /// for a new request.
    pub(crate) async fn add_counts(
        &self,
        c: &mut AnyConnection,
        before: Option<&RequestRow>,
        after: &RequestRow,
    ) -> Result<(), Error> {
        let mut counts = self.counts(after)?;
        if let Some(before) = before {
            counts.extend(self.counts(before)?.into_iter().map(|n| Count { value: -n.value, ..n }));
        }
        kernel::tally::add(c, &counts).await?;
        Ok(())
    }

    /// Every tally 12345 requests add, derived again from the records.
    pub async fn recount(&self) -> Result<Vec<Count>, Error> {
        let mut c = self.conn().await?;
        let mut counts = Vec::new();
        let mut after = String::new();
        loop {
            let rows = repo::after(&mut c, &after, 500).await?;
            let Some(last) = rows.last() else { break };
            after = last.id.clone();
            for row in &rows {
                counts.extend(self.counts(row)?);
            }
        }
        Ok(kernel::tally::settle(counts))
    }

    /// Replaces the stored tallies of 12345 with a recount, in one transaction.
    pub async fn store_recount(&self, counts: &[Count]) -> Result<(), Error> {
        let mut tx = self.inner.db.begin().await?;
        kernel::tally::replace(&mut tx, Module::Voice, counts).await?;
        tx.commit().await?;
        Ok(())
    }
}
