//! 绩效考核: departments and districts assessed by an indicator system kept as data. The
//! assessment office (考核办) chooses indicators among the KPIs, their weights (points out of
//! 100), targets and direction; a scorecard scores each department or subregion for a month
//! or a year, and shows for every score the figures behind it.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::kpis::{Breakdown, GroupValues, Kpi, KpiQuery, KpiValue, Unit};
use super::{Error, Insight, internal};
use identity::Capability;
use kernel::audit::{Action, Outcome};
use kernel::authz::{AssessmentManage, InsightRead};
use kernel::db::{from_millis, millis};

kernel::area! {
    /// 绩效考核: the indicator system and the scorecards.
    Assessment of Insight
}

/// The points every scorecard is out of.
pub const FULL_MARKS: u32 = 100;

/// Which way an indicator is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Direction {
    /// Reaching the target earns full points; less earns points in proportion.
    Higher,
    /// At or below the target earns full points; more earns target ÷ value of them.
    Lower,
}

/// One indicator of the system: a KPI, its points, its target and which way is better.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Indicator {
    pub kpi: Kpi,
    /// Points out of 100.
    pub weight: u32,
    /// The value that earns full points (a share between 0 and 1 for rates).
    pub target: f64,
    pub direction: Direction,
}

/// The indicator system in force.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Plan {
    /// 0 for the platform's default, which holds until the office sets one.
    pub version: i64,
    pub indicators: Vec<Indicator>,
    pub set_by: Option<String>,
    pub set_at: Option<DateTime<Utc>>,
}

impl Plan {
    /// The platform's default: on time, ratings, wholly online, speed, putting bad ratings
    /// right, and 12345 satisfaction.
    pub fn default_plan() -> Plan {
        let i = |kpi, weight, target, direction| Indicator { kpi, weight, target, direction };
        Plan {
            version: 0,
            indicators: vec![
                i(Kpi::OnTimeRate, 30, 0.98, Direction::Higher),
                i(Kpi::GoodRatingRate, 20, 0.99, Direction::Higher),
                i(Kpi::FullyOnlineRate, 15, 0.8, Direction::Higher),
                i(Kpi::AvgDurationWorkingDays, 15, 5.0, Direction::Lower),
                i(Kpi::BadRatingRectifiedRate, 10, 1.0, Direction::Higher),
                i(Kpi::HotlineSatisfactionRate, 10, 0.9, Direction::Higher),
            ],
            set_by: None,
            set_at: None,
        }
    }
}

/// Checks an indicator system: KPIs that vary by department (the tallied ones), each once,
/// whole points adding up to 100, and targets a KPI can reach.
pub fn check(indicators: &[Indicator]) -> Result<(), Error> {
    if indicators.is_empty() {
        return Err(Error::invalid("indicators", "at least one indicator"));
    }
    let tallied = Kpi::tallied();
    for (n, ind) in indicators.iter().enumerate() {
        if !tallied.contains(&ind.kpi) {
            return Err(Error::invalid("indicators", format!("{} is not scored per department", ind.kpi.as_str())));
        }
        if indicators.iter().skip(n + 1).any(|other| other.kpi == ind.kpi) {
            return Err(Error::invalid("indicators", format!("{} is named twice", ind.kpi.as_str())));
        }
        if ind.weight == 0 {
            return Err(Error::invalid("indicators", format!("{}: at least 1 point", ind.kpi.as_str())));
        }
        let ratio = ind.kpi.definition().unit == Unit::Ratio;
        if !ind.target.is_finite() || ind.target <= 0.0 || (ratio && ind.target > 1.0) {
            let range = if ratio { "above 0, at most 1" } else { "above 0" };
            return Err(Error::invalid("indicators", format!("{}: a target {range}", ind.kpi.as_str())));
        }
    }
    let total: u32 = indicators.iter().map(|i| i.weight).sum();
    if total != FULL_MARKS {
        return Err(Error::invalid("indicators", format!("the points add up to {total}, not {FULL_MARKS}")));
    }
    Ok(())
}

/// The month or year assessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Month { year: i32, month: u32 },
    Year(i32),
}

impl Period {
    /// `YYYY-MM` or `YYYY`.
    pub fn parse(s: &str) -> Result<Period, Error> {
        let bad = || Error::invalid("period", "a month (YYYY-MM) or a year (YYYY)");
        let s = s.trim();
        let period = match s.split_once('-') {
            Some((y, m)) => Period::Month { year: y.parse().map_err(|_| bad())?, month: m.parse().map_err(|_| bad())? },
            None => Period::Year(s.parse().map_err(|_| bad())?),
        };
        period.days().map(|_| period).ok_or_else(bad)
    }

    /// The first and last day.
    pub fn days(self) -> Option<(NaiveDate, NaiveDate)> {
        match self {
            Period::Month { year, month } => {
                let first = NaiveDate::from_ymd_opt(year, month, 1)?;
                let last = first.checked_add_months(chrono::Months::new(1))?.pred_opt()?;
                Some((first, last))
            }
            Period::Year(year) => Some((NaiveDate::from_ymd_opt(year, 1, 1)?, NaiveDate::from_ymd_opt(year, 12, 31)?)),
        }
    }
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Period::Month { year, month } => write!(f, "{year}-{month:02}"),
            Period::Year(year) => write!(f, "{year}"),
        }
    }
}

/// One indicator's score in a scorecard, with the figure behind it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Score {
    pub indicator: Indicator,
    pub value: KpiValue,
    /// Points earned; none when the KPI had nothing to count (it then does not count).
    pub points: Option<f64>,
}

/// A department's or subregion's scorecard.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Scorecard {
    pub code: String,
    pub name: String,
    /// Points earned of the points of the indicators that had something to count, out of
    /// 100; none when none had.
    pub total: Option<f64>,
    /// 1 for the best total; none without a total.
    pub rank: Option<u32>,
    pub scores: Vec<Score>,
}

/// Points an indicator earns for a value.
pub fn points(ind: &Indicator, value: f64) -> f64 {
    let weight = f64::from(ind.weight);
    let share = match ind.direction {
        Direction::Higher => value / ind.target,
        Direction::Lower if value <= 0.0 => 1.0,
        Direction::Lower => ind.target / value,
    };
    weight * share.clamp(0.0, 1.0)
}

/// Scores one group's KPI values by the plan.
fn scorecard(plan: &Plan, group: GroupValues) -> Result<Scorecard, Error> {
    let mut scores = Vec::with_capacity(plan.indicators.len());
    for ind in &plan.indicators {
        let value = group
            .values
            .iter()
            .find(|v| v.code == ind.kpi)
            .cloned()
            .ok_or_else(|| internal(format!("the breakdown has no {}", ind.kpi.as_str())))?;
        let points = value.value.map(|v| points(ind, v));
        scores.push(Score { indicator: ind.clone(), value, points });
    }
    let counted: u32 = scores.iter().filter(|s| s.points.is_some()).map(|s| s.indicator.weight).sum();
    let earned: f64 = scores.iter().filter_map(|s| s.points).sum();
    let total = (counted > 0).then(|| earned / f64::from(counted) * f64::from(FULL_MARKS));
    Ok(Scorecard { code: group.code, name: group.name, total, rank: None, scores })
}

#[derive(Serialize, Deserialize)]
struct PlanBody {
    indicators: Vec<Indicator>,
}

impl Assessment<'_> {
    /// The indicator system in force.
    pub async fn plan(&self) -> Result<Plan, Error> {
        let mut c = self.conn().await?;
        let Some(row) = crate::repo::latest_plan(&mut c).await? else { return Ok(Plan::default_plan()) };
        let body: PlanBody = serde_json::from_str(&row.body).map_err(internal)?;
        Ok(Plan {
            version: row.version,
            indicators: body.indicators,
            set_by: Some(row.created_by),
            set_at: Some(from_millis(row.created_at)),
        })
    }

    /// Puts a new indicator system in force, on the audit trail.
    pub async fn set_plan(
        &self,
        cap: &Capability<AssessmentManage>,
        indicators: Vec<Indicator>,
        now: DateTime<Utc>,
    ) -> Result<Plan, Error> {
        check(&indicators)?;
        let body = serde_json::to_string(&PlanBody { indicators }).map_err(internal)?;
        let mut tx = self.inner.db.begin().await?;
        let version = crate::repo::insert_plan(&mut tx, &body, cap.username(), millis(now)).await?;
        let mut entry = ledger::Entry::new(Action::AssessmentPlanSet, Outcome::Success, now);
        entry.actor = Some(cap.account_id().to_string());
        entry.actor_name = Some(cap.username().to_string());
        entry.object = Some(format!("assessment_plan:{version}"));
        entry.detail = Some(body.chars().take(200).collect());
        ledger::append_in(&mut tx, ledger::Log::Audit, &entry).await.map_err(internal)?;
        tx.commit().await?;
        self.plan().await
    }

    /// The scorecards of a region's departments or subregions for a month or year, best
    /// first, ranked.
    pub async fn scorecards(
        &self,
        cap: &Capability<InsightRead>,
        region: &str,
        period: Period,
        by: Breakdown,
    ) -> Result<Vec<Scorecard>, Error> {
        if !matches!(by, Breakdown::Department | Breakdown::Region) {
            return Err(Error::invalid("by", "department or region"));
        }
        let (from, to) = period.days().ok_or_else(|| Error::invalid("period", "a month or a year"))?;
        let q = KpiQuery { region: region.to_string(), from, to, department: None, service: None };
        let plan = self.plan().await?;
        let groups = self.kpis().breakdown(cap, &q, by).await?;
        let mut cards = groups.into_iter().map(|g| scorecard(&plan, g)).collect::<Result<Vec<_>, _>>()?;
        cards.sort_by(|a, b| {
            b.total.partial_cmp(&a.total).unwrap_or(std::cmp::Ordering::Equal).then_with(|| a.name.cmp(&b.name))
        });
        let mut rank = 0;
        for card in cards.iter_mut().filter(|c| c.total.is_some()) {
            rank += 1;
            card.rank = Some(rank);
        }
        Ok(cards)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_in_proportion_to_the_target_and_capped() {
        let higher = Indicator { kpi: Kpi::OnTimeRate, weight: 30, target: 0.9, direction: Direction::Higher };
        assert!((points(&higher, 0.45) - 15.0).abs() < 1e-9);
        assert!((points(&higher, 1.0) - 30.0).abs() < 1e-9, "beyond the target earns no more");
        let lower =
            Indicator { kpi: Kpi::AvgDurationWorkingDays, weight: 20, target: 5.0, direction: Direction::Lower };
        assert!((points(&lower, 10.0) - 10.0).abs() < 1e-9);
        assert!((points(&lower, 3.0) - 20.0).abs() < 1e-9);
        assert!((points(&lower, 0.0) - 20.0).abs() < 1e-9);
    }

    #[test]
    fn a_plan_names_each_scored_kpi_once_and_adds_up_to_100() {
        assert!(check(&Plan::default_plan().indicators).is_ok());
        let mut twice = Plan::default_plan().indicators;
        twice[1].kpi = Kpi::OnTimeRate;
        assert!(matches!(check(&twice), Err(Error::Invalid { .. })));
        let mut short = Plan::default_plan().indicators;
        short[0].weight = 20;
        assert!(matches!(check(&short), Err(Error::Invalid { reason, .. }) if reason.contains("90")));
        let mut catalog = Plan::default_plan().indicators;
        catalog[0].kpi = Kpi::OnlineAvailableRate;
        assert!(matches!(check(&catalog), Err(Error::Invalid { .. })));
        let mut over = Plan::default_plan().indicators;
        over[0].target = 1.5;
        assert!(matches!(check(&over), Err(Error::Invalid { .. })), "a rate cannot exceed 1");
    }

    #[test]
    fn periods_are_months_or_years() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(Period::parse("2026-02").unwrap().days(), Some((d("2026-02-01"), d("2026-02-28"))));
        assert_eq!(Period::parse("2026").unwrap().days(), Some((d("2026-01-01"), d("2026-12-31"))));
        assert!(Period::parse("2026-13").is_err());
        assert!(Period::parse("soon").is_err());
        assert_eq!(Period::parse("2026-03").unwrap().to_string(), "2026-03");
    }
}
