//! Service KPIs in the national practice of evaluating government services (GB/T 39735-2020
//! 政务服务评价工作指南, the 好差评 rules, the 12345 三率): each a stable code, a definition, a
//! numerator and a denominator. Most are sums of the platform's tallies (`kernel::tally`), kept
//! in the transactions of the changes they count; two come from the published catalog and two
//! from the exchange. Every figure is scoped: a leader asks for a region within her
//! jurisdiction, a period, and optionally one department or service.

use std::collections::BTreeMap;

use chrono::{Datelike, Duration, NaiveDate};
use serde::Serialize;

use super::{Error, Insight};
use crate::forecast::SeriesForecast;
use identity::Capability;
use kernel::authz::{InsightRead, subtree_bounds};
use kernel::tally::{self, Filter, Group, Measure};
use services::catalog::Depth;

kernel::area! {
    /// Service KPIs, their trends and breakdowns.
    Kpis of Insight
}

/// The years a question may ask about (so that weeks and months around them always exist).
pub const YEARS: std::ops::RangeInclusive<i32> = 2000..=2100;

/// The longest period one question may span.
pub const MAX_DAYS: i64 = 3 * 366;

/// A KPI, by its stable code.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Kpi {
    OnlineAvailableRate,
    FullyOnlineRate,
    InstantRate,
    TimeLimitCompression,
    OnTimeRate,
    AvgDurationWorkingDays,
    VisitsPerCase,
    MaterialsExemptedRate,
    GoodRatingRate,
    BadRatingRectifiedRate,
    ExchangeCallsServed,
    ExchangeMedianApprovalHours,
    HotlineResponseRate,
    HotlineResolutionRate,
    HotlineSatisfactionRate,
    HallBookings,
    HallNoShowRate,
    OpenDataViews,
    OpenDataDownloads,
    OpenDataApiCalls,
}

/// What a KPI's value is measured in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Unit {
    /// A share between 0 and 1 (shown as a percentage).
    Ratio,
    WorkingDays,
    Visits,
    Calls,
    Hours,
    Bookings,
    /// Uses of open datasets: page views, downloads or API calls.
    Uses,
}

/// Where a KPI's numerator and denominator come from.
enum Source {
    /// Sums of tallies: numerator (its measures added, then the subtracted ones taken off)
    /// over the denominator measure.
    Tallies { plus: Measure, minus: Option<Measure>, over: Measure },
    /// One measure's sum, as it is.
    Count(Measure),
    /// The published catalog.
    Catalog,
    /// The exchange's figures.
    Exchange,
}

/// A KPI's explanation, in both languages.
pub struct Definition {
    pub name_zh: &'static str,
    pub name_en: &'static str,
    pub definition_zh: &'static str,
    pub definition_en: &'static str,
    pub unit: Unit,
}

impl Kpi {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn all() -> &'static [Kpi] {
        <Kpi as strum::VariantArray>::VARIANTS
    }

    /// The KPIs that are sums of tallies, which have trends and breakdowns.
    /// Whether the applications behind it can be listed ([`Kpis::records`]).
    pub fn has_records(self) -> bool {
        matches!(self.source(), Source::Tallies { plus, .. } if plus.subject() == tally::Subject::Application)
    }

    pub fn tallied() -> Vec<Kpi> {
        Kpi::all().iter().copied().filter(|k| matches!(k.source(), Source::Tallies { .. } | Source::Count(_))).collect()
    }

    fn source(self) -> Source {
        use Measure as M;
        let t = |plus, over| Source::Tallies { plus, minus: None, over };
        match self {
            Kpi::OnlineAvailableRate | Kpi::TimeLimitCompression => Source::Catalog,
            Kpi::ExchangeCallsServed | Kpi::ExchangeMedianApprovalHours => Source::Exchange,
            Kpi::FullyOnlineRate => t(M::FinishedOnline, M::Finished),
            Kpi::InstantRate => t(M::SubmittedInstant, M::Submitted),
            Kpi::OnTimeRate => t(M::FinishedOnTime, M::Finished),
            Kpi::AvgDurationWorkingDays => t(M::WorkingDays, M::Finished),
            Kpi::VisitsPerCase => t(M::Visits, M::Finished),
            Kpi::MaterialsExemptedRate => t(M::MaterialsExempted, M::MaterialsRequired),
            Kpi::GoodRatingRate => t(M::RatedGood, M::Rated),
            Kpi::BadRatingRectifiedRate => t(M::BadRectifiedOnTime, M::RatedBad),
            Kpi::HotlineResponseRate => t(M::HotlineSignedOnTime, M::HotlineSigned),
            Kpi::HotlineResolutionRate => {
                Source::Tallies { plus: M::HotlineAnswered, minus: Some(M::HotlineReopened), over: M::HotlineAnswered }
            }
            Kpi::HotlineSatisfactionRate => t(M::HotlineSatisfied, M::HotlineRated),
            Kpi::HallBookings => Source::Count(M::HallBooked),
            Kpi::HallNoShowRate => t(M::HallNoShow, M::HallBooked),
            Kpi::OpenDataViews => Source::Count(M::DatasetViewed),
            Kpi::OpenDataDownloads => Source::Count(M::DatasetDownloaded),
            Kpi::OpenDataApiCalls => Source::Count(M::DatasetApiCalled),
        }
    }

    pub fn definition(self) -> Definition {
        let d = |name_zh, name_en, definition_zh, definition_en, unit| Definition {
            name_zh,
            name_en,
            definition_zh,
            definition_en,
            unit,
        };
        match self {
            Kpi::OnlineAvailableRate => d(
                "网上可办率",
                "Services available online",
                "可全程网上办理的已发布事项数 ÷ 已发布事项总数（按部门或事项筛选时只计其事项）。",
                "Published services that can be handled wholly online ÷ all published services (of the department or service asked for).",
                Unit::Ratio,
            ),
            Kpi::FullyOnlineRate => d(
                "全程网办率",
                "Handled wholly online",
                "期内办结、申请人无需到场的办件数 ÷ 期内办结的办件数。",
                "Cases finished in the period without the applicant coming to a hall ÷ cases finished in the period.",
                Unit::Ratio,
            ),
            Kpi::InstantRate => d(
                "即办件占比",
                "Handled on the spot",
                "期内提交的即办件申请数 ÷ 期内提交的申请数。",
                "Applications submitted in the period to services handled on the spot ÷ applications submitted in the period.",
                Unit::Ratio,
            ),
            Kpi::TimeLimitCompression => d(
                "承诺时限压缩率",
                "Time limit compression",
                "各事项（法定时限 − 承诺时限）之和 ÷ 法定时限之和（已发布、有法定时限的事项）。",
                "Sum over published services of (statutory − committed working days) ÷ sum of statutory working days.",
                Unit::Ratio,
            ),
            Kpi::OnTimeRate => d(
                "按时办结率",
                "Finished on time",
                "期内在办理期限内办结的办件数 ÷ 期内办结的办件数（办结：办结、不予批准或不予受理；撤回不计）。",
                "Cases finished by their deadline in the period ÷ cases finished in the period (completed, rejected or refused; withdrawn ones do not count).",
                Unit::Ratio,
            ),
            Kpi::AvgDurationWorkingDays => d(
                "平均办理时长",
                "Average working days to finish",
                "期内办结办件从提交到办结的工作日数之和 ÷ 期内办结的办件数（按工作日历，含调休）。",
                "Working days from submission to finish, summed over the cases finished in the period ÷ those cases (on the working-day calendar).",
                Unit::WorkingDays,
            ),
            Kpi::VisitsPerCase => d(
                "跑动次数",
                "Visits per case",
                "期内办结办件的到场次数之和 ÷ 期内办结的办件数（事项要求到场计 1 次，窗口代办计 1 次，两者不重复计）。",
                "In-person visits of the cases finished in the period ÷ those cases (1 when the service requires a visit or the case was submitted at a window).",
                Unit::Visits,
            ),
            Kpi::MaterialsExemptedRate => d(
                "材料免提交率",
                "Materials exempted",
                "期内提交申请中由共享数据或电子证照替代的必交材料数 ÷ 必交材料总数。",
                "Required materials of the applications submitted in the period that shared data or e-certificates replace ÷ all required materials.",
                Unit::Ratio,
            ),
            Kpi::GoodRatingRate => d(
                "好评率",
                "Good ratings",
                "期内 4–5 分的评价数 ÷ 期内的评价数。",
                "Ratings of 4 or 5 given in the period ÷ ratings given in the period.",
                Unit::Ratio,
            ),
            Kpi::BadRatingRectifiedRate => d(
                "差评整改率",
                "Bad ratings put right",
                "期内在 15 个工作日内整改答复的差评数 ÷ 期内收到的差评（1–2 分）数。",
                "Bad ratings answered within 15 working days in the period ÷ bad ratings (1 or 2) given in the period.",
                Unit::Ratio,
            ),
            Kpi::ExchangeCallsServed => d(
                "数据共享调用量",
                "Exchange calls served",
                "期内辖区内部门的资源被调用的次数。",
                "Calls the registries of the departments in the region served in the period.",
                Unit::Calls,
            ),
            Kpi::ExchangeMedianApprovalHours => d(
                "共享申请审批时长（中位数）",
                "Median time to decide a sharing request",
                "期内作出决定的共享申请从申请到决定的小时数中位数；分母为决定数。",
                "Median hours from request to decision of the sharing requests decided in the period; the denominator is how many were decided.",
                Unit::Hours,
            ),
            Kpi::HotlineResponseRate => d(
                "12345 响应率",
                "12345 response rate",
                "期内在签收时限内签收的诉求数 ÷ 期内签收的诉求数。",
                "Requests signed for within the signing limit in the period ÷ requests signed for in the period.",
                Unit::Ratio,
            ),
            Kpi::HotlineResolutionRate => d(
                "12345 解决率",
                "12345 resolution rate",
                "（期内答复的诉求数 − 其中被重办的数）÷ 期内答复的诉求数。",
                "(Requests answered in the period − those reopened) ÷ requests answered in the period.",
                Unit::Ratio,
            ),
            Kpi::HotlineSatisfactionRate => d(
                "12345 满意率",
                "12345 satisfaction rate",
                "期内评价为满意或基本满意的数 ÷ 期内的评价数。",
                "Ratings of satisfied or basically satisfied given in the period ÷ ratings given in the period.",
                Unit::Ratio,
            ),
            Kpi::HallBookings => d(
                "大厅预约量",
                "Hall bookings",
                "期内各日预约时段的预约数（已取消的不计）。",
                "Bookings for slots on the days of the period (cancelled ones do not count).",
                Unit::Bookings,
            ),
            Kpi::HallNoShowRate => d(
                "预约爽约率",
                "Missed bookings",
                "期内时段结束仍未签到的预约数 ÷ 期内未取消的预约数（尚未到来的时段计入分母）。",
                "Bookings whose slot in the period ended without a check-in ÷ bookings in the period not cancelled (slots still to come count in the denominator).",
                Unit::Ratio,
            ),
            Kpi::OpenDataViews => d(
                "开放数据浏览量",
                "Open-data page views",
                "期内开放数据集页面的浏览次数（按发布部门和数据集计）。",
                "Views of open datasets' pages in the period (by publishing department and dataset).",
                Unit::Uses,
            ),
            Kpi::OpenDataDownloads => d(
                "开放数据下载量",
                "Open-data downloads",
                "期内开放数据集的下载次数（任一格式、任一版本）。",
                "Downloads of open datasets in the period (any format, any version).",
                Unit::Uses,
            ),
            Kpi::OpenDataApiCalls => d(
                "开放数据接口调用量",
                "Open-data API calls",
                "期内通过接口（JSON 接口或 CKAN datastore_search）读取开放数据集的次数。",
                "Reads of open datasets' rows through the API (the JSON API or CKAN's datastore_search) in the period.",
                Unit::Uses,
            ),
        }
    }
}

/// One KPI's figure: its value with the numerator and denominator behind it. A value is
/// absent when there is nothing to divide by.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct KpiValue {
    pub code: Kpi,
    /// The name in Chinese (`name_en` in English).
    pub name: String,
    pub name_en: String,
    pub value: Option<f64>,
    pub numerator: Option<i64>,
    pub denominator: Option<i64>,
    pub unit: Unit,
}

impl KpiValue {
    fn new(code: Kpi, numerator: Option<i64>, denominator: Option<i64>, value: Option<f64>) -> KpiValue {
        let d = code.definition();
        KpiValue {
            code,
            name: d.name_zh.into(),
            name_en: d.name_en.into(),
            value,
            numerator,
            denominator,
            unit: d.unit,
        }
    }

    fn ratio(code: Kpi, numerator: i64, denominator: i64) -> KpiValue {
        let value = (denominator > 0).then(|| numerator as f64 / denominator as f64);
        KpiValue::new(code, Some(numerator), Some(denominator), value)
    }
}

/// What a leader asks: a region (by code), a period of China days (both ends included),
/// and optionally one department or service (by code).
#[derive(Debug, Clone)]
pub struct KpiQuery {
    pub region: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub department: Option<String>,
    pub service: Option<String>,
}

/// A question checked against the reader's jurisdiction and resolved.
struct Scoped {
    region_path: String,
    filter: Filter,
    /// The department's line of work, for the catalog KPIs.
    department_kind: Option<String>,
    /// The departments whose exchange figures count.
    departments: Vec<String>,
}

/// Aggregates of the published catalog, for the catalog KPIs.
#[derive(Debug, Default)]
struct CatalogTerms {
    services: i64,
    online: i64,
    statutory_days: i64,
    saved_days: i64,
}

/// How a trend groups days.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Deserialize,
    Serialize,
    utoipa::ToSchema,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Period {
    #[default]
    Week,
    Month,
}

/// The first day of the week (Monday) or month a day falls in.
pub fn period_start(day: NaiveDate, period: Period) -> NaiveDate {
    match period {
        Period::Week => day - Duration::days(i64::from(day.weekday().num_days_from_monday())),
        Period::Month => day.with_day(1).unwrap_or(day),
    }
}

/// One period of a trend.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TrendPoint {
    /// The first day of the week or month.
    pub start: NaiveDate,
    /// Applications submitted.
    pub submitted: i64,
    /// 12345 requests received.
    pub received: i64,
    pub values: Vec<KpiValue>,
}

/// What a breakdown groups by.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Deserialize,
    Serialize,
    utoipa::ToSchema,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Breakdown {
    /// The regions one level below the one asked about (drill-down).
    #[default]
    Region,
    Department,
    Service,
    /// 12345 categories (named by their codes; the voice module names them).
    Category,
}

/// One group of a breakdown: a subregion, a department or a service.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GroupValues {
    pub code: String,
    pub name: String,
    /// Applications submitted and 12345 requests received in the period.
    pub volume: i64,
    pub values: Vec<KpiValue>,
}

/// What a forecast series counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SeriesKind {
    Applications,
    /// One service's applications.
    Service,
    HotlineRequests,
}

/// A forecast series: its history and its forecast, or why there is none.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NamedForecast {
    pub kind: SeriesKind,
    /// The service's code, for a service's series.
    pub service: Option<String>,
    pub name: String,
    pub name_en: String,
    /// Weeks of history used (from the first week anything was counted).
    pub history_weeks: usize,
    pub forecast: Option<SeriesForecast>,
    /// Why there is no forecast.
    pub unavailable: Option<String>,
}

fn named(
    kind: SeriesKind,
    service: Option<String>,
    name: &str,
    name_en: &str,
    weekly: impl Iterator<Item = i64>,
) -> NamedForecast {
    let history: Vec<f64> = weekly.skip_while(|n| *n == 0).map(|n| n as f64).collect();
    let (forecast, unavailable) = match crate::forecast::forecast(&history) {
        Ok(f) => (Some(f), None),
        Err(e) => (None, Some(e.to_string())),
    };
    NamedForecast {
        kind,
        service,
        name: name.to_string(),
        name_en: name_en.to_string(),
        history_weeks: history.len(),
        forecast,
        unavailable,
    }
}

/// The applications behind a KPI's numerator and denominator.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KpiRecords {
    pub kpi: Kpi,
    pub numerator: Vec<services::CountedCase>,
    pub denominator: Vec<services::CountedCase>,
}

/// The tally KPIs of a set of sums.
fn tallied_values(sums: &BTreeMap<Measure, i64>) -> Vec<KpiValue> {
    let get = |m: &Measure| sums.get(m).copied().unwrap_or(0);
    Kpi::tallied()
        .into_iter()
        .filter_map(|k| match k.source() {
            Source::Tallies { plus, minus, over } => {
                Some(KpiValue::ratio(k, get(&plus) - minus.as_ref().map_or(0, get), get(&over)))
            }
            Source::Count(m) => Some(KpiValue::new(k, Some(get(&m)), None, Some(get(&m) as f64))),
            Source::Catalog | Source::Exchange => None,
        })
        .collect()
}

impl Kpis<'_> {
    /// Every KPI for the question, in the order of [`Kpi`].
    pub async fn figures(&self, cap: &Capability<InsightRead>, q: &KpiQuery) -> Result<Vec<KpiValue>, Error> {
        let s = self.scope(cap, q).await?;
        let mut c = self.conn().await?;
        let sums = tally::sums(&mut c, &s.filter, Group::Nothing).await?.remove("").unwrap_or_default();
        drop(c);
        let mut tallied = tallied_values(&sums).into_iter();
        let catalog = self.catalog_terms(&s).await?;
        let served = self.inner.exchange.quality().served(cap, &s.departments, (q.from, q.to)).await?;
        let mut out = Vec::with_capacity(Kpi::all().len());
        for &k in Kpi::all() {
            out.push(match k {
                Kpi::OnlineAvailableRate => KpiValue::ratio(k, catalog.online, catalog.services),
                Kpi::TimeLimitCompression => KpiValue::ratio(k, catalog.saved_days, catalog.statutory_days),
                Kpi::ExchangeCallsServed => KpiValue::new(k, Some(served.calls), None, Some(served.calls as f64)),
                Kpi::ExchangeMedianApprovalHours => {
                    KpiValue::new(k, None, Some(served.decided), served.median_decision_hours)
                }
                _ => tallied.next().ok_or_else(|| super::internal("a tallied KPI is missing"))?,
            });
        }
        Ok(out)
    }

    /// The tallied KPIs week by week or month by month over the period (periods with
    /// nothing counted are included, so a chart's axis has no gaps).
    pub async fn trend(
        &self,
        cap: &Capability<InsightRead>,
        q: &KpiQuery,
        period: Period,
    ) -> Result<Vec<TrendPoint>, Error> {
        let s = self.scope(cap, q).await?;
        let mut c = self.conn().await?;
        let per_day = tally::sums(&mut c, &s.filter, Group::Day).await?;
        let mut per: BTreeMap<NaiveDate, BTreeMap<Measure, i64>> = BTreeMap::new();
        let mut start = period_start(q.from, period);
        while start <= q.to {
            per.insert(start, BTreeMap::new());
            start = match period {
                Period::Week => start + Duration::days(7),
                Period::Month => start.checked_add_months(chrono::Months::new(1)).unwrap_or(q.to + Duration::days(1)),
            };
        }
        for (day, sums) in per_day {
            let day: NaiveDate = day.parse().map_err(super::internal)?;
            let slot = per.entry(period_start(day, period)).or_default();
            for (m, v) in sums {
                *slot.entry(m).or_default() += v;
            }
        }
        Ok(per
            .into_iter()
            .map(|(start, sums)| TrendPoint {
                start,
                submitted: sums.get(&Measure::Submitted).copied().unwrap_or(0),
                received: sums.get(&Measure::HotlineReceived).copied().unwrap_or(0),
                values: tallied_values(&sums),
            })
            .collect())
    }

    /// The tallied KPIs per subregion (drill-down), department or service, most
    /// applications submitted first.
    pub async fn breakdown(
        &self,
        cap: &Capability<InsightRead>,
        q: &KpiQuery,
        by: Breakdown,
    ) -> Result<Vec<GroupValues>, Error> {
        let s = self.scope(cap, q).await?;
        let organisation = self.inner.identity.organisation();
        let mut groups: Vec<(String, String, BTreeMap<Measure, i64>)> = Vec::new();
        match by {
            // Tallies are kept down to the street: a street has no subregions to show.
            Breakdown::Region if s.region_path.matches('/').count() > tally::REGION_DEPTH => {}
            Breakdown::Region => {
                let mut c = self.conn().await?;
                let per_path = tally::sums(&mut c, &s.filter, Group::Region).await?;
                drop(c);
                for region in organisation.subregions(&s.region_path).await? {
                    let mut sums = BTreeMap::new();
                    for (_, part) in per_path.iter().filter(|(p, _)| p.starts_with(&region.path)) {
                        for (m, v) in part {
                            *sums.entry(*m).or_default() += v;
                        }
                    }
                    groups.push((region.code, region.name, sums));
                }
            }
            Breakdown::Department => {
                let mut c = self.conn().await?;
                let per = tally::sums(&mut c, &s.filter, Group::Department).await?;
                drop(c);
                for (id, sums) in per.into_iter().filter(|(id, _)| !id.is_empty()) {
                    let name = organisation.department_name(&id).await?.unwrap_or_else(|| id.clone());
                    groups.push((id, name, sums));
                }
            }
            Breakdown::Category => {
                let mut c = self.conn().await?;
                let per = tally::sums(&mut c, &s.filter, Group::Service).await?;
                drop(c);
                for (code, sums) in per {
                    if sums.keys().any(|m| m.module() == tally::Module::Voice) {
                        groups.push((code.clone(), code, sums));
                    }
                }
            }
            Breakdown::Service => {
                let mut c = self.conn().await?;
                let per = tally::sums(&mut c, &s.filter, Group::Service).await?;
                drop(c);
                for (code, sums) in per {
                    // 12345 categories share the column; they have no service behind them.
                    match self.inner.services.service(&code).await {
                        Ok(service) => groups.push((code, service.spec.name_zh.clone(), sums)),
                        Err(services::Error::NotFound(_)) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        let submitted = |sums: &BTreeMap<Measure, i64>| {
            sums.get(&Measure::Submitted).copied().unwrap_or(0)
                + sums.get(&Measure::HotlineReceived).copied().unwrap_or(0)
        };
        groups.sort_by(|a, b| submitted(&b.2).cmp(&submitted(&a.2)).then(a.0.cmp(&b.0)));
        Ok(groups
            .into_iter()
            .map(|(code, name, sums)| GroupValues {
                code,
                name,
                volume: submitted(&sums),
                values: tallied_values(&sums),
            })
            .collect())
    }

    /// The applications behind a KPI: those its numerator counted and those its denominator
    /// counted in the period, newest first (at most 200 each). Application KPIs only; the
    /// catalog's, the exchange's and 12345's have their own pages.
    pub async fn records(&self, cap: &Capability<InsightRead>, q: &KpiQuery, kpi: Kpi) -> Result<KpiRecords, Error> {
        let (Source::Tallies { plus, over, .. }, true) = (kpi.source(), kpi.has_records()) else {
            return Err(Error::invalid("kpi", "records are listed for the KPIs counted from applications"));
        };
        let s = self.scope(cap, q).await?;
        let query = services::CountedQuery {
            region: (&s.filter.region.0, &s.filter.region.1),
            from: q.from,
            to: q.to,
            department_id: s.filter.department_id.as_deref(),
            service: s.filter.service.as_deref(),
        };
        let services = &self.inner.services;
        Ok(KpiRecords {
            kpi,
            numerator: services.counted(cap, plus, &query).await?,
            denominator: services.counted(cap, over, &query).await?,
        })
    }

    /// Forecasts of the region's weekly volumes: all applications, the three most used
    /// services, and 12345 requests, each from the weeks before the current one (up to three
    /// years, from the first week anything was counted).
    pub async fn forecasts(
        &self,
        cap: &Capability<InsightRead>,
        region: &str,
        today: NaiveDate,
    ) -> Result<Vec<NamedForecast>, Error> {
        let this_week = period_start(today, Period::Week);
        let q = KpiQuery {
            region: region.to_string(),
            from: this_week - Duration::weeks(3 * 52),
            to: this_week - Duration::days(1),
            department: None,
            service: None,
        };
        let weeks = self.trend(cap, &q, Period::Week).await?;
        let mut out = vec![
            named(SeriesKind::Applications, None, "全部申请", "All applications", weeks.iter().map(|w| w.submitted)),
            named(SeriesKind::HotlineRequests, None, "12345 诉求", "12345 requests", weeks.iter().map(|w| w.received)),
        ];
        let services = self.breakdown(cap, &q, Breakdown::Service).await?;
        for service in services.into_iter().filter(|g| g.volume > 0).take(3) {
            let one = KpiQuery { service: Some(service.code.clone()), ..q.clone() };
            let weeks = self.trend(cap, &one, Period::Week).await?;
            let name = service.name.clone();
            out.push(named(SeriesKind::Service, Some(service.code), &name, &name, weeks.iter().map(|w| w.submitted)));
        }
        Ok(out)
    }

    /// Checks the question and the reader's jurisdiction over its region.
    async fn scope(&self, cap: &Capability<InsightRead>, q: &KpiQuery) -> Result<Scoped, Error> {
        for (field, day) in [("from", q.from), ("to", q.to)] {
            if !YEARS.contains(&day.year()) {
                return Err(Error::invalid(field, format!("a day in the years {} to {}", YEARS.start(), YEARS.end())));
            }
        }
        if q.to < q.from {
            return Err(Error::invalid("to", "the period ends before it starts"));
        }
        if (q.to - q.from).num_days() >= MAX_DAYS {
            return Err(Error::invalid("to", format!("a period of at most {MAX_DAYS} days")));
        }
        let organisation = self.inner.identity.organisation();
        let region_path = organisation.region_path(&q.region).await?;
        cap.check_record(&region_path, 0)?;
        let (department_id, department_kind, departments) = match &q.department {
            Some(code) => {
                let placed = organisation.placed_department(code).await?.ok_or(Error::NotFound("department"))?;
                let id = placed.department.id;
                (Some(id.clone()), placed.kind, vec![id])
            }
            None => {
                let under = organisation.departments_under(&region_path).await?;
                (None, None, under.into_iter().map(|d| d.id).collect())
            }
        };
        let service = match &q.service {
            Some(code) => Some(self.inner.services.service(code).await?.spec.code.clone()),
            None => None,
        };
        Ok(Scoped {
            filter: Filter { region: subtree_bounds(&region_path), from: q.from, to: q.to, department_id, service },
            region_path,
            department_kind,
            departments,
        })
    }

    async fn catalog_terms(&self, s: &Scoped) -> Result<CatalogTerms, Error> {
        let mut t = CatalogTerms::default();
        for spec in self.inner.services.published_specs().await? {
            if s.filter.service.as_ref().is_some_and(|code| code != &spec.code)
                || s.department_kind.as_ref().is_some_and(|kind| kind != &spec.department)
            {
                continue;
            }
            t.services += 1;
            t.online += i64::from(spec.depth == Depth::Online);
            if spec.statutory_days > 0 {
                t.statutory_days += i64::from(spec.statutory_days);
                t.saved_days += i64::from(spec.statutory_days.saturating_sub(spec.committed_days));
            }
        }
        Ok(t)
    }
}

/// A file a table of KPI values downloads as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Export {
    Csv,
    Xlsx,
}

impl Export {
    pub fn content_type(self) -> &'static str {
        match self {
            Export::Csv => "text/csv; charset=utf-8",
            Export::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Export::Csv => "csv",
            Export::Xlsx => "xlsx",
        }
    }
}

const HEADER: [&str; 7] = ["group", "code", "name", "value", "numerator", "denominator", "unit"];

/// KPI values as a file: one row a KPI (and a group or period), with the numerator and
/// denominator behind each value; an absent value is an empty cell.
pub fn export(rows: &[(String, &KpiValue)], format: Export) -> Result<Vec<u8>, Error> {
    match format {
        Export::Csv => to_csv(rows),
        Export::Xlsx => to_xlsx(rows),
    }
}

fn to_csv(rows: &[(String, &KpiValue)]) -> Result<Vec<u8>, Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(HEADER).map_err(super::internal)?;
    for (group, v) in rows {
        let opt = |n: Option<i64>| n.map(|n| n.to_string()).unwrap_or_default();
        w.write_record([
            group.as_str(),
            v.code.as_str(),
            v.name.as_str(),
            &v.value.map(|x| format!("{x:.4}")).unwrap_or_default(),
            &opt(v.numerator),
            &opt(v.denominator),
            <&str>::from(v.unit),
        ])
        .map_err(super::internal)?;
    }
    w.into_inner().map_err(super::internal)
}

fn to_xlsx(rows: &[(String, &KpiValue)]) -> Result<Vec<u8>, Error> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (col, title) in (0..).zip(HEADER) {
        sheet.write_string(0, col, title).map_err(super::internal)?;
    }
    for (row, (group, v)) in (1..).zip(rows) {
        sheet.write_string(row, 0, group).map_err(super::internal)?;
        sheet.write_string(row, 1, v.code.as_str()).map_err(super::internal)?;
        sheet.write_string(row, 2, &v.name).map_err(super::internal)?;
        for (col, n) in [(3, v.value), (4, v.numerator.map(|n| n as f64)), (5, v.denominator.map(|n| n as f64))] {
            if let Some(n) = n {
                sheet.write_number(row, col, n).map_err(super::internal)?;
            }
        }
        sheet.write_string(row, 6, <&str>::from(v.unit)).map_err(super::internal)?;
    }
    book.save_to_buffer().map_err(super::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<KpiValue> {
        vec![KpiValue::ratio(Kpi::OnTimeRate, 3, 4), KpiValue::ratio(Kpi::GoodRatingRate, 0, 0)]
    }

    #[test]
    fn a_table_downloads_as_csv_and_as_a_workbook_with_the_same_cells() {
        let values = rows();
        let table: Vec<(String, &KpiValue)> = values.iter().map(|v| ("990102".to_string(), v)).collect();
        let csv = String::from_utf8(export(&table, Export::Csv).unwrap()).unwrap();
        assert_eq!(
            csv,
            "group,code,name,value,numerator,denominator,unit\n\
             990102,on_time_rate,按时办结率,0.7500,3,4,ratio\n\
             990102,good_rating_rate,好评率,,0,0,ratio\n"
        );
        use calamine::Reader;
        let bytes = export(&table, Export::Xlsx).unwrap();
        let mut book = calamine::open_workbook_auto_from_rs(std::io::Cursor::new(bytes)).unwrap();
        let sheet = book.worksheet_range_at(0).unwrap().unwrap();
        let cells: Vec<Vec<String>> = sheet.rows().map(|r| r.iter().map(|c| c.to_string()).collect()).collect();
        assert_eq!(cells[0], HEADER);
        assert_eq!(cells[1], ["990102", "on_time_rate", "按时办结率", "0.75", "3", "4", "ratio"]);
        assert_eq!(cells[2][3], "", "an absent value is an empty cell");
    }

    #[test]
    fn weeks_start_on_monday_and_months_on_the_first() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(period_start(d("2026-12-06"), Period::Week), d("2026-11-30"));
        assert_eq!(period_start(d("2026-11-30"), Period::Week), d("2026-11-30"));
        assert_eq!(period_start(d("2026-12-31"), Period::Month), d("2026-12-01"));
    }
}
