//! 年度报告: a department's annual report on government information disclosure, in the
//! tables of the State Council's format — documents published, repealed and in force by kind;
//! requests received, carried over and answered by answer type, for natural persons and
//! organisations apart — computed from the records, with the figures the platform cannot know
//! (administrative reconsiderations and lawsuits, the problems and what else to report)
//! entered by the department's officers.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use super::repo;
use super::{AnswerType, ApplicantKind, Change, DocumentKind, Error, Openness, china_day, internal};
use identity::{Capability, PlacedDepartment};
use kernel::audit::{Action, Outcome};
use kernel::authz::DisclosurePublish;
use kernel::db::millis;

kernel::area! {
    /// The annual report (年度报告).
    Reports of Openness
}

/// The most reviews or lawsuits of one outcome a year's report states (its API bound).
pub const MAX_CASES: u32 = 100_000;

/// The first year a report covers: the regulation's first version took effect in 2008.
pub const FIRST_YEAR: i32 = 2008;

/// How reviews of the department's disclosure decisions ended (结果维持, 结果纠正, 其他结果,
/// 尚未审结).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = DisclosureOutcomes)]
pub struct Outcomes {
    #[schema(maximum = 100000)]
    pub upheld: u32,
    #[schema(maximum = 100000)]
    pub corrected: u32,
    #[schema(maximum = 100000)]
    pub other: u32,
    #[schema(maximum = 100000)]
    pub pending: u32,
}

impl Outcomes {
    pub fn total(&self) -> u64 {
        u64::from(self.upheld) + u64::from(self.corrected) + u64::from(self.other) + u64::from(self.pending)
    }
}

/// The figures staff enter: 行政复议 and 行政诉讼 (brought directly, or after a
/// reconsideration), 存在的主要问题及改进情况 and 其他需要报告的事项.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = DisclosureReportInputs)]
pub struct ReportInputs {
    pub reconsideration: Outcomes,
    pub lawsuit_direct: Outcomes,
    pub lawsuit_after_reconsideration: Outcomes,
    #[serde(default)]
    #[schema(max_length = 5000)]
    pub problems: String,
    #[serde(default)]
    #[schema(max_length = 5000)]
    pub other_matters: String,
}

/// Documents of one kind in the year.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = DisclosurePublicationRow)]
pub struct PublicationRow {
    pub kind: DocumentKind,
    /// 本年制发件数
    pub published: i64,
    pub revised: i64,
    /// 本年废止件数
    pub repealed: i64,
    /// 现行有效件数 at the end of the year
    pub in_force: i64,
}

/// One line of the requests table: natural persons, organisations, and the total.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = DisclosureReportRow)]
pub struct ReportRow {
    /// `received`, `carried_in`, an answer type, `answered` or `carried_out`.
    pub line: String,
    pub person: i64,
    pub enterprise: i64,
    pub total: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = DisclosureAnnualReport)]
pub struct AnnualReport {
    pub department_code: String,
    pub department_name: String,
    pub year: i32,
    pub publications: Vec<PublicationRow>,
    pub requests: Vec<ReportRow>,
    pub inputs: ReportInputs,
    /// Whether the department has entered its figures for the year.
    pub inputs_entered: bool,
}

impl Reports<'_> {
    /// A department's report for a year (the running year's so far). Published reports are
    /// public (条例 第五十条), so anyone may read it.
    pub async fn annual(&self, department_code: &str, year: i32, now: DateTime<Utc>) -> Result<AnnualReport, Error> {
        let department = self.reported(department_code, year, now).await?;
        let (from, before) = year_bounds(year)?;
        let id = &department.department.id;
        let mut c = self.conn().await?;
        let mut publications: BTreeMap<&'static str, PublicationRow> = BTreeMap::new();
        for kind in <DocumentKind as strum::VariantArray>::VARIANTS {
            let row = PublicationRow { kind: *kind, published: 0, revised: 0, repealed: 0, in_force: 0 };
            publications.insert(kind.as_str(), row);
        }
        for (kind, change) in repo::changes_in(&mut c, id, (from, before)).await? {
            let row = publications.get_mut(kind.as_str()).ok_or_else(|| internal(format!("stored kind {kind}")))?;
            match change.parse::<Change>().map_err(internal)? {
                Change::Published => row.published += 1,
                Change::Revised => row.revised += 1,
                Change::Repealed => row.repealed += 1,
            }
        }
        for (kind, n) in repo::in_force_at(&mut c, id, before).await? {
            publications.get_mut(kind.as_str()).ok_or_else(|| internal(format!("stored kind {kind}")))?.in_force = n;
        }
        // line → (persons, organisations)
        let mut lines: BTreeMap<&'static str, (i64, i64)> = BTreeMap::new();
        let mut add = |line: &'static str, kind: ApplicantKind| {
            let counts = lines.entry(line).or_default();
            match kind {
                ApplicantKind::Person => counts.0 += 1,
                ApplicantKind::Enterprise => counts.1 += 1,
            }
        };
        for r in repo::requests_for_report(&mut c, id, (from, before)).await? {
            if r.received_at >= from {
                add("received", r.applicant_kind);
            } else {
                add("carried_in", r.applicant_kind);
            }
            match (r.answer_type().map_err(internal)?, r.answered_at) {
                (Some(t), Some(at)) if at < before => {
                    add(t.as_str(), r.applicant_kind);
                    add("answered", r.applicant_kind);
                }
                _ => add("carried_out", r.applicant_kind),
            }
        }
        let order = ["received", "carried_in"]
            .into_iter()
            .chain(<AnswerType as strum::VariantArray>::VARIANTS.iter().map(|t| t.as_str()))
            .chain(["answered", "carried_out"]);
        let requests = order
            .map(|line| {
                let (person, enterprise) = lines.get(line).copied().unwrap_or((0, 0));
                ReportRow { line: line.to_string(), person, enterprise, total: person + enterprise }
            })
            .collect();
        let stored = repo::report_inputs(&mut c, id, year).await?;
        let inputs_entered = stored.is_some();
        let inputs = match stored {
            Some(body) => serde_json::from_str(&body).map_err(internal)?,
            None => ReportInputs::default(),
        };
        Ok(AnnualReport {
            department_code: department.department.code,
            department_name: department.department.name,
            year,
            publications: publications.into_values().collect(),
            requests,
            inputs,
            inputs_entered,
        })
    }

    /// Enters the figures the platform cannot know, for the officer's department.
    pub async fn set_inputs(
        &self,
        cap: &Capability<DisclosurePublish>,
        department_code: &str,
        year: i32,
        inputs: ReportInputs,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let department = self.reported(department_code, year, now).await?;
        cap.check_department(&department.department.id)?;
        let counts = [&inputs.reconsideration, &inputs.lawsuit_direct, &inputs.lawsuit_after_reconsideration];
        if counts.iter().any(|o| [o.upheld, o.corrected, o.other, o.pending].iter().any(|n| *n > MAX_CASES)) {
            return Err(Error::invalid("reconsideration", format!("each count at most {MAX_CASES}")));
        }
        for (field, text) in [("problems", &inputs.problems), ("other_matters", &inputs.other_matters)] {
            if text.chars().count() > 5_000 {
                return Err(Error::invalid(field, "at most 5000 characters"));
            }
        }
        let body = serde_json::to_string(&inputs).map_err(internal)?;
        let mut tx = self.inner.db.begin().await?;
        repo::set_report_inputs(&mut tx, &department.department.id, year, &body, (cap.account_id(), millis(now)))
            .await?;
        let mut entry = ledger::Entry::new(Action::DisclosureReportInputSet, Outcome::Success, now);
        entry.actor = Some(cap.account_id().to_string());
        entry.object = Some(format!("{}/{year}", department.department.code));
        entry.jurisdiction = Some(department.region_path.clone());
        ledger::append_in(&mut tx, ledger::Log::Audit, &entry).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn reported(&self, department_code: &str, year: i32, now: DateTime<Utc>) -> Result<PlacedDepartment, Error> {
        if year < FIRST_YEAR {
            return Err(Error::invalid("year", format!("a year from {FIRST_YEAR}")));
        }
        // A year that has not begun has no report yet.
        if year > china_day(now).year() {
            return Err(Error::NotFound("report"));
        }
        self.inner
            .identity
            .organisation()
            .placed_department(department_code.trim())
            .await?
            .ok_or(Error::NotFound("department"))
    }
}

/// The instants a China year runs between: [from, before) in milliseconds.
fn year_bounds(year: i32) -> Result<(i64, i64), Error> {
    let start = |y: i32| {
        NaiveDate::from_ymd_opt(y, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .and_then(|t| services::calendar::cst().from_local_datetime(&t).single())
            .map(|t| millis(t.with_timezone(&Utc)))
            .ok_or_else(|| internal(format!("the start of {y}")))
    };
    Ok((start(year)?, start(year + 1)?))
}
