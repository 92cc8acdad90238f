//! 服务数据看板: a leader's KPIs for a region within her jurisdiction and a period: tiles with
//! the numerator and denominator behind each figure and its definition, the weekly trend of
//! applications as a chart beside its table, and the drill-down to the subregions. Every
//! table downloads as CSV or Excel.

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use chrono::{Datelike, Duration, NaiveDate, Utc};
use serde::Deserialize;

use super::{CsrfForm, Layout, PageCtx, PageError, PageResult};
use crate::AppState;
use std::cmp::Ordering;

use insight::assessment::{Direction, Indicator, Period as AssessedPeriod, Scorecard};
use insight::kpis::{Breakdown, Export, GroupValues, Kpi, KpiQuery, KpiValue, Period, Unit, export};
use kernel::authz::{AssessmentManage, InsightRead};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/staff/insight", get(dashboard))
        .route("/staff/insight/download", get(download))
        .route("/staff/insight/records", get(records))
        .route("/staff/insight/assessment", get(assessment))
        .route("/staff/insight/assessment/plan", get(plan_form).post(save_plan))
}

/// The dashboard's question; every field optional (the reader's region, the last 13 weeks).
#[derive(Deserialize)]
struct DashboardQuery {
    region: Option<String>,
    from: Option<String>,
    to: Option<String>,
    /// For the download: `kpis` (the default), `trend` or `regions`, as `csv` (the default)
    /// or `xlsx`.
    table: Option<String>,
    format: Option<String>,
    /// For the records: the KPI.
    kpi: Option<String>,
}

/// One KPI as a tile: its value in the reader's words, the figures behind it, and what it means.
struct Tile {
    code: &'static str,
    /// The applications behind it can be listed.
    records: bool,
    name: String,
    value: String,
    numerator: String,
    denominator: String,
    definition: String,
}

/// One week of the trend.
struct Week {
    start: NaiveDate,
    submitted: i64,
    finished: i64,
    on_time: String,
    /// The bar: its left edge and height in the chart's units.
    x: i64,
    height: i64,
}

/// One subregion of the drill-down.
struct Subregion {
    code: String,
    name: String,
    submitted: i64,
    on_time: String,
    good: String,
    hotline_satisfied: String,
}

/// A forecast series as read.
struct ForecastView {
    name: String,
    /// The method and its held-out MASE, or why there is no forecast.
    how: String,
    /// Each week ahead: its first day and "value (lower–upper)".
    weeks: Vec<(NaiveDate, String)>,
}

/// A ranked or listed group: a department, a service or a 12345 category.
struct Ranked {
    name: String,
    volume: i64,
    on_time: String,
    good: String,
    /// The figure it is listed for (overdue: the on-time rate; bad ratings: their count).
    figure: String,
}

#[derive(Template)]
#[template(path = "insight.html")]
struct DashboardPage {
    l: Layout,
    region: String,
    region_name: String,
    from: NaiveDate,
    to: NaiveDate,
    tiles: Vec<Tile>,
    weeks: Vec<Week>,
    /// The tallest bar's value (the chart's scale).
    peak: i64,
    subregions: Vec<Subregion>,
    /// Departments by their on-time rate, best first.
    departments: Vec<Ranked>,
    /// 热点: the most used services, the least on time, the most bad ratings, the most
    /// frequent 12345 categories.
    busiest: Vec<Ranked>,
    least_on_time: Vec<Ranked>,
    most_bad: Vec<Ranked>,
    categories: Vec<Ranked>,
    forecasts: Vec<ForecastView>,
    /// The first days of the weeks forecast.
    forecast_weeks: Vec<NaiveDate>,
    /// The query string of this view, for the downloads.
    query: String,
}

/// Chart geometry: the plotting area's height and one bar's slot width, in SVG units.
const CHART_HEIGHT: i64 = 160;
const SLOT: i64 = 24;
/// How many services or categories each hot-spot list names.
const HOT: usize = 5;

impl DashboardPage {
    fn chart_width(&self) -> i64 {
        (i64::try_from(self.weeks.len()).unwrap_or(0) * SLOT).max(SLOT)
    }
}

fn value_text(l: &Layout, v: &KpiValue) -> String {
    let Some(x) = v.value else { return "—".to_string() };
    match v.unit {
        Unit::Ratio => format!("{:.1}%", x * 100.0),
        Unit::WorkingDays => format!("{x:.1} {}", l.t("insight.unit_working_days")),
        Unit::Visits => format!("{x:.2} {}", l.t("insight.unit_visits")),
        Unit::Calls => format!("{x:.0} {}", l.t("insight.unit_calls")),
        Unit::Hours => format!("{x:.1} {}", l.t("insight.unit_hours")),
        Unit::Bookings => format!("{x:.0} {}", l.t("insight.unit_bookings")),
        Unit::Uses => format!("{x:.0} {}", l.t("insight.unit_uses")),
    }
}

fn ratio_text(v: Option<&KpiValue>) -> String {
    v.and_then(|v| v.value).map_or_else(|| "—".to_string(), |x| format!("{:.1}%", x * 100.0))
}

fn find(values: &[KpiValue], code: Kpi) -> Option<&KpiValue> {
    values.iter().find(|v| v.code == code)
}

fn parse_day(field: &'static str, value: Option<&str>) -> Result<Option<NaiveDate>, insight::Error> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => {
            v.parse().map(Some).map_err(|_| insight::Error::Invalid { field, reason: "a day as YYYY-MM-DD".into() })
        }
    }
}

/// The question the page's parameters ask, with the defaults filled in.
fn question(ctx: &PageCtx, q: &DashboardQuery) -> Result<KpiQuery, PageError> {
    let today = Utc::now().with_timezone(&services::calendar::cst()).date_naive();
    let to = parse_day("to", q.to.as_deref())?.unwrap_or(today);
    let from = match parse_day("from", q.from.as_deref())? {
        Some(from) => from,
        None => to.checked_sub_days(chrono::Days::new(7 * 13 - 1)).unwrap_or(to),
    };
    let region = region_or_own(ctx, q.region.as_deref())?;
    Ok(KpiQuery { region, from, to, department: None, service: None })
}

/// The region asked about, or the reader's own.
fn region_or_own(ctx: &PageCtx, asked: Option<&str>) -> Result<String, PageError> {
    let own = ctx.ready()?.principal.region.as_ref().map(|r| r.code.clone());
    asked
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .or(own)
        .ok_or_else(|| PageError::from(insight::Error::Invalid { field: "region", reason: "choose a region".into() }))
}

async fn dashboard(State(state): State<AppState>, ctx: PageCtx, Query(q): Query<DashboardQuery>) -> PageResult {
    let cap = ctx.authorize::<InsightRead>(&state).await?;
    let question = question(&ctx, &q)?;
    let kpis = state.insight.kpis();
    let values = kpis.figures(&cap, &question).await?;
    let trend = kpis.trend(&cap, &question, Period::Week).await?;
    let regions = kpis.breakdown(&cap, &question, Breakdown::Region).await?;
    let l = ctx.layout("insight.title");
    let tiles = values
        .iter()
        .map(|v| {
            let d = v.code.definition();
            Tile {
                code: v.code.as_str(),
                records: v.code.has_records(),
                name: l.pick(d.name_zh, d.name_en).to_string(),
                value: value_text(&l, v),
                numerator: v.numerator.map_or_else(|| "—".to_string(), |n| n.to_string()),
                denominator: v.denominator.map_or_else(|| "—".to_string(), |n| n.to_string()),
                definition: l.pick(d.definition_zh, d.definition_en).to_string(),
            }
        })
        .collect();
    let submitted = |values: &[KpiValue]| find(values, Kpi::InstantRate).and_then(|v| v.denominator).unwrap_or(0);
    let peak = trend.iter().map(|t| submitted(&t.values)).max().unwrap_or(0).max(1);
    let weeks = (0..)
        .zip(&trend)
        .map(|(i, t)| Week {
            start: t.start,
            submitted: submitted(&t.values),
            finished: find(&t.values, Kpi::OnTimeRate).and_then(|v| v.denominator).unwrap_or(0),
            on_time: ratio_text(find(&t.values, Kpi::OnTimeRate)),
            x: i * SLOT,
            height: submitted(&t.values) * CHART_HEIGHT / peak,
        })
        .collect();
    let subregions = regions
        .into_iter()
        .map(|g| Subregion {
            submitted: submitted(&g.values),
            on_time: ratio_text(find(&g.values, Kpi::OnTimeRate)),
            good: ratio_text(find(&g.values, Kpi::GoodRatingRate)),
            hotline_satisfied: ratio_text(find(&g.values, Kpi::HotlineSatisfactionRate)),
            code: g.code,
            name: g.name,
        })
        .collect();
    let ranked = |g: &GroupValues, figure: String| Ranked {
        name: g.name.clone(),
        volume: g.volume,
        on_time: ratio_text(find(&g.values, Kpi::OnTimeRate)),
        good: ratio_text(find(&g.values, Kpi::GoodRatingRate)),
        figure,
    };
    let on_time = |g: &GroupValues| find(&g.values, Kpi::OnTimeRate).and_then(|v| v.value);
    let mut by_department = kpis.breakdown(&cap, &question, Breakdown::Department).await?;
    by_department.sort_by(|a, b| on_time(b).partial_cmp(&on_time(a)).unwrap_or(Ordering::Equal));
    let departments = by_department.iter().map(|g| ranked(g, String::new())).collect();
    let by_service = kpis.breakdown(&cap, &question, Breakdown::Service).await?;
    let busiest = by_service.iter().filter(|g| g.volume > 0).take(HOT).map(|g| ranked(g, String::new())).collect();
    let mut late: Vec<&GroupValues> = by_service.iter().filter(|g| on_time(g).is_some_and(|r| r < 1.0)).collect();
    late.sort_by(|a, b| on_time(a).partial_cmp(&on_time(b)).unwrap_or(Ordering::Equal));
    let least_on_time =
        late.into_iter().take(HOT).map(|g| ranked(g, ratio_text(find(&g.values, Kpi::OnTimeRate)))).collect();
    let bad = |g: &GroupValues| find(&g.values, Kpi::BadRatingRectifiedRate).and_then(|v| v.denominator).unwrap_or(0);
    let mut worst: Vec<&GroupValues> = by_service.iter().filter(|g| bad(g) > 0).collect();
    worst.sort_by_key(|g| std::cmp::Reverse(bad(g)));
    let most_bad = worst.into_iter().take(HOT).map(|g| ranked(g, bad(g).to_string())).collect();
    let named = state.voice.categories().all();
    let mut categories = Vec::new();
    for mut g in kpis.breakdown(&cap, &question, Breakdown::Category).await?.into_iter().take(HOT) {
        if let Some(c) = named.iter().find(|c| c.code == g.code) {
            g.name = l.pick(&c.name_zh, &c.name_en).to_string();
        }
        categories.push(ranked(&g, ratio_text(find(&g.values, Kpi::HotlineSatisfactionRate))));
    }
    let today = Utc::now().with_timezone(&services::calendar::cst()).date_naive();
    let next_week = insight::kpis::period_start(today, Period::Week) + Duration::weeks(1);
    let forecast_weeks: Vec<NaiveDate> =
        (0..insight::forecast::HORIZON).map(|k| next_week + Duration::weeks(i64::try_from(k).unwrap_or(0))).collect();
    let forecasts = kpis
        .forecasts(&cap, &question.region, today)
        .await?
        .into_iter()
        .map(|f| {
            let name = l.pick(&f.name, &f.name_en).to_string();
            match f.forecast {
                Some(fc) => ForecastView {
                    name,
                    how: format!(
                        "{} · MASE {}",
                        l.label("insight.method", fc.method.as_str()),
                        fc.mase.map_or_else(|| "—".to_string(), |m| format!("{m:.2}"))
                    ),
                    weeks: forecast_weeks
                        .iter()
                        .zip(&fc.weeks)
                        .map(|(d, w)| (*d, format!("{:.0} ({:.0}–{:.0})", w.value, w.lower, w.upper)))
                        .collect(),
                },
                None => ForecastView {
                    name,
                    how: format!("{} {}", l.t("insight.too_short"), f.history_weeks),
                    weeks: Vec::new(),
                },
            }
        })
        .collect();
    let mut c = state.db.pool.acquire().await.map_err(identity::Error::Storage)?;
    let region_name = state
        .identity
        .organisation()
        .region_in(&mut c, &question.region)
        .await?
        .map(|r| r.name)
        .ok_or(insight::Error::NotFound("region"))?;
    drop(c);
    let query = format!("region={}&from={}&to={}", question.region, question.from, question.to);
    let page = DashboardPage {
        l,
        region: question.region,
        region_name,
        from: question.from,
        to: question.to,
        tiles,
        weeks,
        peak,
        subregions,
        departments,
        busiest,
        least_on_time,
        most_bad,
        categories,
        forecasts,
        forecast_weeks,
        query,
    };
    Ok(ctx.page(StatusCode::OK, &page))
}

/// A dashboard table as a file (CSV or Excel): the KPIs, the weekly trend or the subregions.
async fn download(State(state): State<AppState>, ctx: PageCtx, Query(q): Query<DashboardQuery>) -> PageResult {
    let cap = ctx.authorize::<InsightRead>(&state).await?;
    let question = question(&ctx, &q)?;
    let file = match q.format.as_deref() {
        None | Some("") | Some("csv") => Export::Csv,
        Some("xlsx") => Export::Xlsx,
        Some(_) => return Err(insight::Error::Invalid { field: "format", reason: "csv or xlsx".into() }.into()),
    };
    let kpis = state.insight.kpis();
    let (name, body) = match q.table.as_deref() {
        None | Some("") | Some("kpis") => {
            let values = kpis.figures(&cap, &question).await?;
            ("kpis", export(&values.iter().map(|v| (question.region.clone(), v)).collect::<Vec<_>>(), file)?)
        }
        Some("trend") => {
            let points = kpis.trend(&cap, &question, Period::Week).await?;
            let rows =
                points.iter().flat_map(|t| t.values.iter().map(|v| (t.start.to_string(), v))).collect::<Vec<_>>();
            ("kpi-trend", export(&rows, file)?)
        }
        Some("regions") => {
            let groups = kpis.breakdown(&cap, &question, Breakdown::Region).await?;
            let rows = groups.iter().flat_map(|g| g.values.iter().map(|v| (g.code.clone(), v))).collect::<Vec<_>>();
            ("kpi-regions", export(&rows, file)?)
        }
        Some(_) => {
            return Err(insight::Error::Invalid { field: "table", reason: "kpis, trend or regions".into() }.into());
        }
    };
    let disposition = format!(
        "attachment; filename=\"{name}-{}-{}-{}.{}\"",
        question.region,
        question.from,
        question.to,
        file.extension()
    );
    Ok(([(header::CONTENT_TYPE, file.content_type().to_string()), (header::CONTENT_DISPOSITION, disposition)], body)
        .into_response())
}

#[derive(Template)]
#[template(path = "insight_records.html")]
struct RecordsPage {
    l: Layout,
    name: String,
    definition: String,
    region: String,
    from: NaiveDate,
    to: NaiveDate,
    sections: [RecordSection; 2],
}

/// The numerator's or the denominator's applications.
struct RecordSection {
    /// The message key of its heading.
    heading: &'static str,
    id: &'static str,
    rows: Vec<services::CountedCase>,
}

/// The applications behind a KPI's numerator and denominator.
async fn records(State(state): State<AppState>, ctx: PageCtx, Query(q): Query<DashboardQuery>) -> PageResult {
    let cap = ctx.authorize::<InsightRead>(&state).await?;
    let question = question(&ctx, &q)?;
    let kpi: Kpi = q
        .kpi
        .as_deref()
        .unwrap_or_default()
        .parse()
        .map_err(|_| insight::Error::Invalid { field: "kpi", reason: "a KPI code".into() })?;
    let found = state.insight.kpis().records(&cap, &question, kpi).await?;
    let l = ctx.layout("insight.records");
    let d = kpi.definition();
    let page = RecordsPage {
        name: l.pick(d.name_zh, d.name_en).to_string(),
        definition: l.pick(d.definition_zh, d.definition_en).to_string(),
        l,
        region: question.region,
        from: question.from,
        to: question.to,
        sections: [
            RecordSection { heading: "insight.numerator", id: "records-numerator", rows: found.numerator },
            RecordSection { heading: "insight.denominator", id: "records-denominator", rows: found.denominator },
        ],
    };
    Ok(ctx.page(StatusCode::OK, &page))
}

#[derive(Deserialize)]
struct AssessmentQuery {
    region: Option<String>,
    period: Option<String>,
    by: Option<String>,
}

/// One indicator's line in a scorecard, as read.
struct ScoreLine {
    name: String,
    value: String,
    target: String,
    points: String,
    weight: u32,
}

/// A scorecard as read.
struct CardView {
    rank: String,
    name: String,
    total: String,
    lines: Vec<ScoreLine>,
}

#[derive(Template)]
#[template(path = "insight_assessment.html")]
struct AssessmentPage {
    l: Layout,
    region: String,
    region_name: String,
    period: String,
    by: &'static str,
    cards: Vec<CardView>,
    plan_version: i64,
    can_manage: bool,
}

fn card_view(l: &Layout, card: Scorecard) -> CardView {
    let lines = card
        .scores
        .iter()
        .map(|s| {
            let d = s.indicator.kpi.definition();
            let target = KpiValue { value: Some(s.indicator.target), ..s.value.clone() };
            let arrow = match s.indicator.direction {
                Direction::Higher => "≥",
                Direction::Lower => "≤",
            };
            ScoreLine {
                name: l.pick(d.name_zh, d.name_en).to_string(),
                value: format!(
                    "{} ({} / {})",
                    value_text(l, &s.value),
                    s.value.numerator.map_or_else(|| "—".to_string(), |n| n.to_string()),
                    s.value.denominator.map_or_else(|| "—".to_string(), |n| n.to_string())
                ),
                target: format!("{arrow} {}", value_text(l, &target)),
                points: s.points.map_or_else(|| l.t("insight.not_counted").to_string(), |p| format!("{p:.1}")),
                weight: s.indicator.weight,
            }
        })
        .collect();
    CardView {
        rank: card.rank.map_or_else(|| "—".to_string(), |r| r.to_string()),
        name: card.name,
        total: card.total.map_or_else(|| "—".to_string(), |t| format!("{t:.1}")),
        lines,
    }
}

/// 绩效考核: the scorecards of the reader's region's departments or subregions.
async fn assessment(State(state): State<AppState>, ctx: PageCtx, Query(q): Query<AssessmentQuery>) -> PageResult {
    let cap = ctx.authorize::<InsightRead>(&state).await?;
    let s = ctx.ready()?;
    let today = Utc::now().with_timezone(&services::calendar::cst()).date_naive();
    let period = match q.period.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        Some(p) => AssessedPeriod::parse(p)?,
        // The year so far: a month just begun has little to score.
        None => AssessedPeriod::Year(today.year()),
    };
    let (by, breakdown) = match q.by.as_deref() {
        None | Some("") | Some("department") => ("department", Breakdown::Department),
        Some("region") => ("region", Breakdown::Region),
        Some(_) => return Err(insight::Error::Invalid { field: "by", reason: "department or region".into() }.into()),
    };
    let region = region_or_own(&ctx, q.region.as_deref())?;
    let assessment = state.insight.assessment();
    let cards = assessment.scorecards(&cap, &region, period, breakdown).await?;
    let plan = assessment.plan().await?;
    let mut c = state.db.pool.acquire().await.map_err(identity::Error::Storage)?;
    let region_name = state
        .identity
        .organisation()
        .region_in(&mut c, &region)
        .await?
        .map(|r| r.name)
        .ok_or(insight::Error::NotFound("region"))?;
    drop(c);
    let l = ctx.layout("insight.assessment");
    let cards = cards.into_iter().map(|c| card_view(&l, c)).collect();
    let page = AssessmentPage {
        can_manage: s.principal.may::<AssessmentManage>(),
        l,
        region,
        region_name,
        period: period.to_string(),
        by,
        cards,
        plan_version: plan.version,
    };
    Ok(ctx.page(StatusCode::OK, &page))
}

/// One KPI's line in the plan form.
struct PlanLine {
    code: &'static str,
    name: String,
    /// Points (0: not an indicator), target and direction, as the form shows them.
    weight: String,
    target: String,
    lower: bool,
}

#[derive(Template)]
#[template(path = "insight_plan.html")]
struct PlanPage {
    l: Layout,
    lines: Vec<PlanLine>,
    version: i64,
    errors: Vec<(&'static str, String)>,
}

fn plan_lines(l: &Layout, indicators: &[Indicator]) -> Vec<PlanLine> {
    Kpi::tallied()
        .into_iter()
        .map(|kpi| {
            let d = kpi.definition();
            let ind = indicators.iter().find(|i| i.kpi == kpi);
            PlanLine {
                code: kpi.as_str(),
                name: l.pick(d.name_zh, d.name_en).to_string(),
                weight: ind.map_or_else(|| "0".to_string(), |i| i.weight.to_string()),
                target: ind.map(|i| i.target.to_string()).unwrap_or_default(),
                lower: ind.map_or(d.unit != Unit::Ratio, |i| i.direction == Direction::Lower),
            }
        })
        .collect()
}

/// The indicator system, for the assessment office to change.
async fn plan_form(State(state): State<AppState>, ctx: PageCtx) -> PageResult {
    ctx.authorize::<AssessmentManage>(&state).await?;
    let plan = state.insight.assessment().plan().await?;
    let l = ctx.layout("insight.plan");
    let lines = plan_lines(&l, &plan.indicators);
    Ok(ctx.page(StatusCode::OK, &PlanPage { l, lines, version: plan.version, errors: Vec::new() }))
}

/// Reads the plan form: `weight_CODE`, `target_CODE`, `direction_CODE` for each KPI; a
/// weight of 0 (or none) leaves the KPI out.
fn read_plan(form: &std::collections::HashMap<String, String>) -> Result<Vec<Indicator>, (&'static str, String)> {
    let mut out = Vec::new();
    for kpi in Kpi::tallied() {
        let field = |name: &str| form.get(&format!("{name}_{}", kpi.as_str())).map(|v| v.trim().to_string());
        let weight: u32 = match field("weight").filter(|w| !w.is_empty()) {
            None => 0,
            Some(w) => w.parse().map_err(|_| ("weight", format!("{}: points as a whole number", kpi.as_str())))?,
        };
        if weight == 0 {
            continue;
        }
        let target: f64 = field("target")
            .unwrap_or_default()
            .parse()
            .map_err(|_| ("target", format!("{}: a target as a number", kpi.as_str())))?;
        let direction = match field("direction").as_deref() {
            Some("lower") => Direction::Lower,
            _ => Direction::Higher,
        };
        out.push(Indicator { kpi, weight, target, direction });
    }
    Ok(out)
}

async fn save_plan(
    State(state): State<AppState>,
    ctx: PageCtx,
    CsrfForm(form): CsrfForm<std::collections::HashMap<String, String>>,
) -> PageResult {
    let cap = ctx.authorize::<AssessmentManage>(&state).await?;
    let assessment = state.insight.assessment();
    let (indicators, error) = match read_plan(&form) {
        Ok(indicators) => match assessment.set_plan(&cap, indicators.clone(), Utc::now()).await {
            Ok(_) => return Ok(Redirect::to("/staff/insight/assessment?saved=1").into_response()),
            Err(insight::Error::Invalid { field, reason }) => (indicators, (field, reason)),
            Err(e) => return Err(e.into()),
        },
        Err(e) => (Vec::new(), e),
    };
    let l = ctx.layout("insight.plan");
    let mut lines = plan_lines(&l, &indicators);
    // Show what was typed, not what was read.
    for line in &mut lines {
        if let Some(w) = form.get(&format!("weight_{}", line.code)) {
            line.weight = w.clone();
        }
        if let Some(t) = form.get(&format!("target_{}", line.code)) {
            line.target = t.clone();
        }
        line.lower = form.get(&format!("direction_{}", line.code)).is_some_and(|d| d == "lower");
    }
    let version = assessment.plan().await?.version;
    Ok(ctx.page(StatusCode::UNPROCESSABLE_ENTITY, &PlanPage { l, lines, version, errors: vec![error] }))
}
