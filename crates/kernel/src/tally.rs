//! Tallies: counters of what the modules do (applications submitted and finished, ratings,
//! 12345 requests signed for and answered, …) by day × region × department × service ×
//! channel. A module adds to them in the same transaction as the change they count, so a
//! crash can neither lose nor double one; insight sums them for its KPIs, and each module can
//! recount its own measures from its records to check them (`tongban insight recount`).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use sqlx::AnyConnection;

use crate::db::{AnyQuery, upsert_rows};

/// What a tally counts. The module that counts a measure is the only one that adds to it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    // services, on the day of submission
    /// Applications submitted.
    Submitted,
    /// Applications submitted to a 即办件 (a service handled on the spot).
    SubmittedInstant,
    /// Required materials of the applications submitted.
    MaterialsRequired,
    /// Of those, materials the platform supplied from shared data or e-certificates.
    MaterialsExempted,
    // services, on the day a case finished (办结: completed, rejected or refused)
    /// Cases finished.
    Finished,
    /// Cases finished by their deadline.
    FinishedOnTime,
    /// Cases finished without the applicant coming to a hall (全程网办).
    FinishedOnline,
    /// Working days from submission to finish, summed over the cases finished.
    WorkingDays,
    /// Times applicants came to a hall for the cases finished, summed.
    Visits,
    /// Cases the applicant withdrew.
    Withdrawn,
    // services, on the day of the rating or the answer to it
    /// 好差评 ratings given.
    Rated,
    /// Ratings of 4 or 5 (好评).
    RatedGood,
    /// Ratings of 1 or 2 (差评), each of which opens a rectification.
    RatedBad,
    /// Bad ratings answered (整改) within 15 working days, counted on the day of the answer.
    BadRectifiedOnTime,
    // services, service halls: on the day of the booked slot
    /// Bookings not cancelled.
    HallBooked,
    /// Bookings the person came to (checked in at the window).
    HallAttended,
    /// Bookings whose slot ended without a check-in.
    HallNoShow,
    // voice (12345)
    /// Requests received.
    HotlineReceived,
    /// Requests a department signed for.
    HotlineSigned,
    /// Of those, signed for within the signing limit.
    HotlineSignedOnTime,
    /// Requests answered by the department.
    HotlineAnswered,
    /// Answered requests reopened by a dispatcher.
    HotlineReopened,
    /// Requests the person rated.
    HotlineRated,
    /// Ratings that are 满意 or 基本满意.
    HotlineSatisfied,
    // openness (数据开放), on the day of the use; `service` is the dataset's name
    /// A dataset's page viewed.
    DatasetViewed,
    /// A dataset downloaded (any format, any version).
    DatasetDownloaded,
    /// A dataset's rows read through the API (the JSON API or CKAN's datastore).
    DatasetApiCalled,
}

impl Measure {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The records this measure counts.
    pub fn subject(self) -> Subject {
        use Measure::*;
        match self {
            HotlineReceived | HotlineSigned | HotlineSignedOnTime | HotlineAnswered | HotlineReopened
            | HotlineRated | HotlineSatisfied => Subject::HotlineRequest,
            HallBooked | HallAttended | HallNoShow => Subject::Booking,
            DatasetViewed | DatasetDownloaded | DatasetApiCalled => Subject::DatasetUse,
            Submitted | SubmittedInstant | MaterialsRequired | MaterialsExempted | Finished | FinishedOnTime
            | FinishedOnline | WorkingDays | Visits | Withdrawn | Rated | RatedGood | RatedBad | BadRectifiedOnTime => {
                Subject::Application
            }
        }
    }

    /// The module that counts this measure, and recounts it from its records.
    pub fn module(self) -> Module {
        match self.subject() {
            Subject::Application | Subject::Booking => Module::Services,
            Subject::HotlineRequest => Module::Voice,
            Subject::DatasetUse => Module::Openness,
        }
    }

    /// The measures a module counts.
    pub fn of(module: Module) -> Vec<Measure> {
        <Measure as strum::VariantArray>::VARIANTS.iter().copied().filter(|m| m.module() == module).collect()
    }
}

impl TryFrom<String> for Measure {
    type Error = strum::ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// What a measure counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    Application,
    /// A booking of a service hall's slot.
    Booking,
    /// A 12345 request.
    HotlineRequest,
    /// A use of an open dataset.
    DatasetUse,
}

/// The modules that keep tallies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum Module {
    Services,
    Voice,
    Openness,
}

/// How a request or application reached the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, strum::IntoStaticStr, strum::EnumString)]
#[strum(serialize_all = "snake_case")]
pub enum Channel {
    /// The person, on the portal or the API.
    Online,
    /// At a service hall's window (帮办代办).
    Window,
    /// A 12345 call recorded by an operator.
    Hotline,
    /// An Open311 client.
    Open311,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl TryFrom<String> for Channel {
    type Error = strum::ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// Where and when what is counted happened. `service` is a service code for applications, a
/// category code for 12345 requests and a dataset's name for its uses.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// The China-time day.
    pub day: NaiveDate,
    pub region_path: String,
    pub department_id: String,
    pub service: String,
    pub channel: Channel,
}

/// How deep in the region tree tallies are kept: province, city, district, street.
pub const REGION_DEPTH: usize = 4;

/// The region a tally is kept at: the street a path lies in (or the path itself when it
/// stops higher). Figures drill down to streets; counting per community or grid would
/// multiply the counters by the grids with no question that asks for them.
pub fn tally_region(path: &str) -> String {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).take(REGION_DEPTH).collect();
    if parts.is_empty() { "/".to_string() } else { format!("/{}/", parts.join("/")) }
}

/// One counter's value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Count {
    pub key: Key,
    pub measure: Measure,
    pub value: i64,
}

/// Adds the counts, in the transaction of the change they count. Counts with the same key
/// and measure are summed first (one statement may not update a row twice).
pub async fn add(c: &mut AnyConnection, counts: &[Count]) -> Result<(), sqlx::Error> {
    let mut merged: BTreeMap<(&Key, Measure), i64> = BTreeMap::new();
    for n in counts.iter().filter(|n| n.value != 0) {
        *merged.entry((&n.key, n.measure)).or_default() += n.value;
    }
    let rows: Vec<((&Key, Measure), i64)> = merged.into_iter().collect();
    upsert_rows(
        c,
        "tallies (day, region_path, department_id, service, channel, measure, value)",
        "ON CONFLICT (measure, day, region_path, department_id, service, channel) \
         DO UPDATE SET value = tallies.value + excluded.value",
        &rows,
        bind_row,
    )
    .await
}

fn bind_row<'q>(q: AnyQuery<'q>, ((key, measure), value): &'q ((&Key, Measure), i64)) -> AnyQuery<'q> {
    q.bind(key.day.to_string())
        .bind(key.region_path.as_str())
        .bind(key.department_id.as_str())
        .bind(key.service.as_str())
        .bind(key.channel.as_str())
        .bind(measure.as_str())
        .bind(*value)
}

/// Which counters a sum takes: a region subtree (`lower <= region_path < upper`, see
/// [`crate::authz::subtree_bounds`]), a range of days (both ends included), and optionally one
/// department or service.
#[derive(Debug, Clone)]
pub struct Filter {
    pub region: (String, String),
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub department_id: Option<String>,
    pub service: Option<String>,
}

/// What sums are grouped by, besides the measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Nothing,
    Day,
    Region,
    Department,
    Service,
}

impl Group {
    fn column(self) -> &'static str {
        match self {
            Group::Nothing => "''",
            Group::Day => "day",
            Group::Region => "region_path",
            Group::Department => "department_id",
            Group::Service => "service",
        }
    }
}

#[derive(sqlx::FromRow)]
struct SumRow {
    grp: String,
    #[sqlx(try_from = "String")]
    measure: Measure,
    total: i64,
}

/// The sums of the counters the filter takes, per group value and measure.
pub async fn sums(
    c: &mut AnyConnection,
    filter: &Filter,
    group: Group,
) -> Result<BTreeMap<String, BTreeMap<Measure, i64>>, sqlx::Error> {
    let mut sql = format!(
        "SELECT {col} AS grp, measure, CAST(SUM(value) AS BIGINT) AS total FROM tallies \
         WHERE region_path >= $1 AND region_path < $2 AND day >= $3 AND day <= $4",
        col = group.column()
    );
    let mut next = 5;
    if filter.department_id.is_some() {
        sql.push_str(&format!(" AND department_id = ${next}"));
        next += 1;
    }
    if filter.service.is_some() {
        sql.push_str(&format!(" AND service = ${next}"));
    }
    sql.push_str(
        match group {
            Group::Nothing => " GROUP BY measure".to_string(),
            _ => format!(" GROUP BY {}, measure", group.column()),
        }
        .as_str(),
    );
    let mut q = sqlx::query_as::<_, SumRow>(sqlx::AssertSqlSafe(sql))
        .bind(filter.region.0.as_str())
        .bind(filter.region.1.as_str())
        .bind(filter.from.to_string())
        .bind(filter.to.to_string());
    if let Some(d) = &filter.department_id {
        q = q.bind(d.as_str());
    }
    if let Some(s) = &filter.service {
        q = q.bind(s.as_str());
    }
    let mut out: BTreeMap<String, BTreeMap<Measure, i64>> = BTreeMap::new();
    for row in q.fetch_all(c).await? {
        *out.entry(row.grp).or_default().entry(row.measure).or_default() += row.total;
    }
    Ok(out)
}

#[derive(sqlx::FromRow)]
struct StoredRow {
    day: String,
    region_path: String,
    department_id: String,
    service: String,
    #[sqlx(try_from = "String")]
    channel: Channel,
    #[sqlx(try_from = "String")]
    measure: Measure,
    value: i64,
}

/// Every stored counter of a module's measures, in key order.
pub async fn stored(c: &mut AnyConnection, module: Module) -> Result<Vec<Count>, sqlx::Error> {
    let mut out = Vec::new();
    for measure in Measure::of(module) {
        let rows = sqlx::query_as::<_, StoredRow>(
            "SELECT day, region_path, department_id, service, channel, measure, value FROM tallies \
             WHERE measure = $1 AND value <> 0",
        )
        .bind(measure.as_str())
        .fetch_all(&mut *c)
        .await?;
        for r in rows {
            let day = r.day.parse::<NaiveDate>().map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
            out.push(Count {
                key: Key {
                    day,
                    region_path: r.region_path,
                    department_id: r.department_id,
                    service: r.service,
                    channel: r.channel,
                },
                measure: r.measure,
                value: r.value,
            });
        }
    }
    out.sort();
    Ok(out)
}

/// Sums counts with the same key and measure, drops zeros, and sorts them: the form
/// [`stored`] answers in, so that a recount compares with it directly.
pub fn settle(counts: Vec<Count>) -> Vec<Count> {
    let mut merged: BTreeMap<(Key, Measure), i64> = BTreeMap::new();
    for n in counts {
        *merged.entry((n.key, n.measure)).or_default() += n.value;
    }
    merged.into_iter().filter(|(_, v)| *v != 0).map(|((key, measure), value)| Count { key, measure, value }).collect()
}

/// Whether no counter is stored at all (a database whose records predate the tallies).
pub async fn is_empty(c: &mut AnyConnection) -> Result<bool, sqlx::Error> {
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM (SELECT measure FROM tallies LIMIT 1) AS one").fetch_one(c).await?;
    Ok(n == 0)
}

/// Replaces a module's counters with these (a recount), in the caller's transaction.
pub async fn replace(c: &mut AnyConnection, module: Module, counts: &[Count]) -> Result<(), sqlx::Error> {
    for measure in Measure::of(module) {
        sqlx::query("DELETE FROM tallies WHERE measure = $1").bind(measure.as_str()).execute(&mut *c).await?;
    }
    add(c, counts).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn tallies_are_kept_down_to_the_street() {
        assert_eq!(
            super::tally_region("/990000/990100/990102/990102001/990102001001/"),
            "/990000/990100/990102/990102001/"
        );
        assert_eq!(super::tally_region("/990000/990100/990102/"), "/990000/990100/990102/");
        assert_eq!(super::tally_region(""), "/");
    }
}
