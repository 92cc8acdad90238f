//! How departments answer 12345 (the 三率 and the times behind them), per department,
//! district or category, computed from the requests' own histories within the reader's
//! jurisdiction. Definitions:
//! - 响应率 (`response_rate`): requests signed for within the signing limit, of those sent to
//!   the department whose limit has passed or that were signed for;
//! - 解决率 (`resolution_rate`): requests answered and not reopened, of those sent;
//! - 满意率 (`satisfaction_rate`): ratings that are 满意 or 基本满意, of the ratings given.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::repo;
use super::{Error, Rating, Stage, Voice, internal};
use identity::Capability;
use kernel::authz::{Scope, VoiceDispatch, subtree_bounds};
use services::workflow::Case;

kernel::area! {
    /// The departments' 12345 figures.
    Figures of Voice
}

/// What the figures are grouped by.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
#[schema(as = VoiceBreakdown)]
pub enum Breakdown {
    /// The handling department.
    #[default]
    Department,
    /// The district (区县) the request is about.
    District,
    /// The request's category.
    Category,
}

/// One group's figures: a department's, a district's or a category's.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
#[schema(as = VoiceFigures)]
pub struct GroupFigures {
    /// The department id, the district's region code or the category code.
    pub code: String,
    pub name: String,
    /// Requests sent to a department.
    pub requests: u32,
    pub signed_on_time: u32,
    /// Requests whose signing was due by now or done.
    pub signing_due: u32,
    pub answered: u32,
    pub reopened: u32,
    pub rated: u32,
    pub satisfied: u32,
    /// Open requests past their step's limit.
    pub overdue: u32,
    pub response_rate: Option<f64>,
    pub resolution_rate: Option<f64>,
    pub satisfaction_rate: Option<f64>,
    pub avg_hours_to_sign: Option<f64>,
    pub avg_hours_to_answer: Option<f64>,
    /// The most frequent categories (code, count), most first.
    pub top_categories: Vec<(String, u32)>,
}

/// One group's counts while the requests are read.
#[derive(Default)]
struct Tally {
    figures: GroupFigures,
    hours_to_sign: Vec<f64>,
    hours_to_answer: Vec<f64>,
    categories: BTreeMap<String, u32>,
}

fn rate(part: u32, whole: u32) -> Option<f64> {
    (whole > 0).then(|| f64::from(part) / f64::from(whole))
}

fn mean(hours: &[f64]) -> Option<f64> {
    (!hours.is_empty()).then(|| hours.iter().sum::<f64>() / hours.len() as f64)
}

/// The district of a region path (`/province/city/district/…`), or the deepest region above
/// it when the path stops higher; none for an empty path.
fn district_of(path: &str) -> Option<&str> {
    path.split('/').filter(|p| !p.is_empty()).take(3).last()
}

impl Figures<'_> {
    /// The figures of every department, district or category that has requests sent to a
    /// department in the reader's jurisdiction, most requests first.
    pub async fn table(
        &self,
        cap: &Capability<VoiceDispatch>,
        by: Breakdown,
        now: DateTime<Utc>,
    ) -> Result<Vec<GroupFigures>, Error> {
        let (lower, upper) = match cap.scope() {
            Scope::Subtree(path) => subtree_bounds(path),
            Scope::All => subtree_bounds("/"),
        };
        let mut c = self.conn().await?;
        let rows = repo::with_department(&mut c, &lower, &upper).await?;
        let mut per: BTreeMap<String, Tally> = BTreeMap::new();
        for row in rows {
            let Some(department) = row.department_id.clone() else { continue };
            let case: Case = serde_json::from_str(&row.workflow).map_err(internal)?;
            let code = match by {
                Breakdown::Department => department,
                Breakdown::District => district_of(&row.region_path)
                    .ok_or_else(|| internal(format!("request {} has no region path", row.number)))?
                    .to_string(),
                Breakdown::Category => row.category.clone(),
            };
            let entry = per.entry(code.clone()).or_default();
            let f = &mut entry.figures;
            f.code = code;
            f.requests += 1;
            *entry.categories.entry(row.category.clone()).or_default() += 1;
            let created = kernel::db::from_millis(row.created_at);
            // The last time it reached the department, and what happened after.
            let arrived = case.history.iter().rev().find(|t| t.to == "assigned").map(|t| t.at);
            let signed = case.history.iter().rev().find(|t| t.action == "sign").map(|t| t.at);
            let answered = case.history.iter().find(|t| t.action == "answer").map(|t| t.at);
            if let Some(arrived) = arrived
                && let Some(limit) = self
                    .due(Stage::Assigned, (row.kind, &row.category, row.urgency), arrived)
                    .map(kernel::db::from_millis)
            {
                if signed.is_some() || limit < now {
                    f.signing_due += 1;
                }
                if let Some(signed) = signed {
                    f.signed_on_time += u32::from(signed <= limit);
                    entry.hours_to_sign.push((signed - arrived).num_minutes() as f64 / 60.0);
                }
            }
            if let Some(answered) = answered {
                entry.hours_to_answer.push((answered - created).num_minutes() as f64 / 60.0);
            }
            let done = matches!(row.state, Stage::Answered | Stage::Closed);
            f.answered += u32::from(done);
            f.reopened += u32::from(row.reopened > 0);
            if let Some(r) = row.rating.as_deref() {
                f.rated += 1;
                let r = Rating::try_from(r.to_string()).map_err(internal)?;
                f.satisfied += u32::from(matches!(r, Rating::Satisfied | Rating::BasicallySatisfied));
            }
            let open = !matches!(row.state, Stage::Closed | Stage::Answered);
            f.overdue += u32::from(open && row.state_due.is_some_and(|d| kernel::db::from_millis(d) < now));
        }
        let organisation = self.inner.identity.organisation();
        let mut out = Vec::with_capacity(per.len());
        for Tally { figures: mut f, hours_to_sign, hours_to_answer, categories } in per.into_values() {
            f.name = match by {
                Breakdown::Department => organisation.department_name_in(&mut c, &f.code).await?,
                Breakdown::District => organisation.region_in(&mut c, &f.code).await?.map(|r| r.name),
                Breakdown::Category => self.inner.categories.get(&f.code).map(|c| c.name_zh.clone()),
            }
            .ok_or_else(|| internal(format!("{} {} is not known", by.as_str(), f.code)))?;
            f.response_rate = rate(f.signed_on_time, f.signing_due);
            f.resolution_rate = rate(f.answered.saturating_sub(f.reopened.min(f.answered)), f.requests);
            f.satisfaction_rate = rate(f.satisfied, f.rated);
            f.avg_hours_to_sign = mean(&hours_to_sign);
            f.avg_hours_to_answer = mean(&hours_to_answer);
            let mut top: Vec<(String, u32)> = categories.into_iter().collect();
            top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            top.truncate(3);
            f.top_categories = top;
            out.push(f);
        }
        out.sort_by(|a, b| b.requests.cmp(&a.requests).then(a.name.cmp(&b.name)));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_district_is_the_third_region_of_a_path() {
        assert_eq!(super::district_of("/990000/990100/990102/990102001/"), Some("990102"));
        assert_eq!(super::district_of("/990000/990100/990102/"), Some("990102"));
        assert_eq!(super::district_of("/990000/990100/"), Some("990100"));
        assert_eq!(super::district_of("/"), None);
    }
}
