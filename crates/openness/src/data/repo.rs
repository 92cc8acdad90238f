//! The SQL of open data: datasets, their versions and rows, applications and keys, usage
//! and 数据需求.

use sqlx::AnyConnection;

use super::{AccessState, DataSource, DemandState, Frequency, Licence, OpenLevel, UseKind};
use crate::Theme;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DatasetRow {
    pub id: String,
    pub name: String,
    pub title: String,
    pub description: String,
    pub department_id: String,
    pub region_path: String,
    #[sqlx(try_from = "String")]
    pub theme: Theme,
    #[sqlx(try_from = "String")]
    pub open_level: OpenLevel,
    #[sqlx(try_from = "String")]
    pub frequency: Frequency,
    #[sqlx(try_from = "String")]
    pub licence: Licence,
    pub tags: String,
    #[sqlx(try_from = "String")]
    pub source: DataSource,
    pub columns: String,
    pub registry_code: Option<String>,
    pub rules: Option<String>,
    pub k_required: Option<i64>,
    pub version: i64,
    pub row_count: i64,
    pub k_reached: Option<i64>,
    pub published_at: i64,
    pub updated_at: i64,
    pub refresh_due_at: Option<i64>,
}

macro_rules! dataset_columns {
    () => {
        "id, name, title, description, department_id, region_path, theme, open_level, frequency, licence, tags, \
         source, columns, registry_code, rules, k_required, version, row_count, k_reached, published_at, \
         updated_at, refresh_due_at"
    };
}

pub async fn insert_dataset(c: &mut AnyConnection, d: &DatasetRow) -> Result<(), sqlx::Error> {
    sqlx::query(concat!(
        "INSERT INTO open_datasets (",
        dataset_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, \
         $21, $22)"
    ))
    .bind(&d.id)
    .bind(&d.name)
    .bind(&d.title)
    .bind(&d.description)
    .bind(&d.department_id)
    .bind(&d.region_path)
    .bind(d.theme.as_str())
    .bind(d.open_level.as_str())
    .bind(d.frequency.as_str())
    .bind(d.licence.as_str())
    .bind(&d.tags)
    .bind(d.source.as_str())
    .bind(&d.columns)
    .bind(&d.registry_code)
    .bind(&d.rules)
    .bind(d.k_required)
    .bind(d.version)
    .bind(d.row_count)
    .bind(d.k_reached)
    .bind(d.published_at)
    .bind(d.updated_at)
    .bind(d.refresh_due_at)
    .execute(c)
    .await?;
    Ok(())
}

/// Writes a new version's figures, if the dataset is still at `from_version`.
pub async fn advance_dataset(c: &mut AnyConnection, d: &DatasetRow, from_version: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE open_datasets SET version = $1, row_count = $2, k_reached = $3, updated_at = $4, \
         refresh_due_at = $5 WHERE id = $6 AND version = $7",
    )
    .bind(d.version)
    .bind(d.row_count)
    .bind(d.k_reached)
    .bind(d.updated_at)
    .bind(d.refresh_due_at)
    .bind(&d.id)
    .bind(from_version)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Moves a dataset's next refresh (when a refresh found nothing new, or failed).
pub async fn set_refresh_due(c: &mut AnyConnection, id: &str, due: Option<i64>) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE open_datasets SET refresh_due_at = $1 WHERE id = $2").bind(due).bind(id).execute(c).await?;
    Ok(())
}

pub async fn dataset(c: &mut AnyConnection, name_or_id: &str) -> Result<Option<DatasetRow>, sqlx::Error> {
    sqlx::query_as(concat!("SELECT ", dataset_columns!(), " FROM open_datasets WHERE name = $1 OR id = $1"))
        .bind(name_or_id)
        .fetch_optional(c)
        .await
}

pub async fn datasets(c: &mut AnyConnection) -> Result<Vec<DatasetRow>, sqlx::Error> {
    sqlx::query_as(concat!("SELECT ", dataset_columns!(), " FROM open_datasets ORDER BY published_at DESC, id"))
        .fetch_all(c)
        .await
}

pub async fn refresh_due(c: &mut AnyConnection, now: i64) -> Result<Vec<DatasetRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        dataset_columns!(),
        " FROM open_datasets WHERE refresh_due_at IS NOT NULL AND refresh_due_at <= $1 ORDER BY refresh_due_at"
    ))
    .bind(now)
    .fetch_all(c)
    .await
}

/// What the catalogue's cache was built from: datasets, their versions summed, last change.
pub async fn generation(c: &mut AnyConnection) -> Result<(i64, i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT COUNT(*), CAST(COALESCE(SUM(version), 0) AS BIGINT), CAST(COALESCE(MAX(updated_at), 0) AS BIGINT) \
         FROM open_datasets",
    )
    .fetch_one(c)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VersionRow {
    pub dataset_id: String,
    pub version: i64,
    pub row_count: i64,
    pub k_reached: Option<i64>,
    pub sha256: String,
    pub ledger_index: i64,
    pub note: Option<String>,
    pub published_by: Option<String>,
    pub published_at: i64,
}

pub async fn insert_version(c: &mut AnyConnection, v: &VersionRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO open_dataset_versions (dataset_id, version, row_count, k_reached, sha256, ledger_index, note, \
         published_by, published_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&v.dataset_id)
    .bind(v.version)
    .bind(v.row_count)
    .bind(v.k_reached)
    .bind(&v.sha256)
    .bind(v.ledger_index)
    .bind(&v.note)
    .bind(&v.published_by)
    .bind(v.published_at)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn versions(c: &mut AnyConnection, dataset_id: &str) -> Result<Vec<VersionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT dataset_id, version, row_count, k_reached, sha256, ledger_index, note, published_by, published_at \
         FROM open_dataset_versions WHERE dataset_id = $1 ORDER BY version DESC",
    )
    .bind(dataset_id)
    .fetch_all(c)
    .await
}

/// Writes rows of a version: (row number, JSON object).
pub async fn insert_rows(
    c: &mut AnyConnection,
    dataset_id: &str,
    version: i64,
    rows: &[(i64, String)],
) -> Result<(), sqlx::Error> {
    kernel::db::insert_rows(c, "open_rows (dataset_id, version, row_no, body) ", rows, |q, (n, body)| {
        q.bind(dataset_id).bind(version).bind(*n).bind(body.as_str())
    })
    .await
}

/// Rows of a version in order, from `offset`.
pub async fn rows(
    c: &mut AnyConnection,
    dataset_id: &str,
    version: i64,
    offset: i64,
    limit: i64,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT body FROM open_rows WHERE dataset_id = $1 AND version = $2 AND row_no >= $3 ORDER BY row_no LIMIT $4",
    )
    .bind(dataset_id)
    .bind(version)
    .bind(offset)
    .bind(limit)
    .fetch_all(c)
    .await
}

/// Counts one use of a dataset on a China day.
pub async fn count_use(c: &mut AnyConnection, dataset_id: &str, day: &str, kind: UseKind) -> Result<(), sqlx::Error> {
    let (v, d, a) = match kind {
        UseKind::View => (1, 0, 0),
        UseKind::Download => (0, 1, 0),
        UseKind::ApiCall => (0, 0, 1),
    };
    sqlx::query(
        "INSERT INTO open_usage (dataset_id, day, views, downloads, api_calls) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (dataset_id, day) DO UPDATE SET views = open_usage.views + excluded.views, \
         downloads = open_usage.downloads + excluded.downloads, api_calls = open_usage.api_calls + excluded.api_calls",
    )
    .bind(dataset_id)
    .bind(day)
    .bind(v)
    .bind(d)
    .bind(a)
    .execute(c)
    .await?;
    Ok(())
}

/// Views, downloads and API calls of each dataset, from `since_day` (YYYY-MM-DD) on.
pub async fn usage(c: &mut AnyConnection, since_day: &str) -> Result<Vec<(String, i64, i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT dataset_id, CAST(SUM(views) AS BIGINT), CAST(SUM(downloads) AS BIGINT), \
         CAST(SUM(api_calls) AS BIGINT) FROM open_usage WHERE day >= $1 GROUP BY dataset_id",
    )
    .bind(since_day)
    .fetch_all(c)
    .await
}

/// Every dataset's uses by day: (dataset, day, views, downloads, API calls).
pub async fn usage_days(c: &mut AnyConnection) -> Result<Vec<(String, String, i64, i64, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT dataset_id, day, views, downloads, api_calls FROM open_usage ORDER BY dataset_id, day")
        .fetch_all(c)
        .await
}

pub async fn usage_of(c: &mut AnyConnection, dataset_id: &str) -> Result<(i64, i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(views), 0) AS BIGINT), CAST(COALESCE(SUM(downloads), 0) AS BIGINT), \
         CAST(COALESCE(SUM(api_calls), 0) AS BIGINT) FROM open_usage WHERE dataset_id = $1",
    )
    .bind(dataset_id)
    .fetch_one(c)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AccessRow {
    pub id: String,
    pub dataset_id: String,
    pub account_id: String,
    pub purpose: String,
    #[sqlx(try_from = "String")]
    pub state: AccessState,
    pub decision_note: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
    pub key_sha256: Option<String>,
    pub calls_per_minute: i64,
    pub created_at: i64,
}

macro_rules! access_columns {
    () => {
        "id, dataset_id, account_id, purpose, state, decision_note, decided_by, decided_at, key_sha256, \
         calls_per_minute, created_at"
    };
}

pub async fn insert_access(c: &mut AnyConnection, a: &AccessRow) -> Result<(), sqlx::Error> {
    sqlx::query(concat!(
        "INSERT INTO open_access (",
        access_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    ))
    .bind(&a.id)
    .bind(&a.dataset_id)
    .bind(&a.account_id)
    .bind(&a.purpose)
    .bind(a.state.as_str())
    .bind(&a.decision_note)
    .bind(&a.decided_by)
    .bind(a.decided_at)
    .bind(&a.key_sha256)
    .bind(a.calls_per_minute)
    .bind(a.created_at)
    .execute(c)
    .await?;
    Ok(())
}

/// Writes a decision or a new key, if the application is still in `from` state.
pub async fn update_access(c: &mut AnyConnection, a: &AccessRow, from: AccessState) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE open_access SET state = $1, decision_note = $2, decided_by = $3, decided_at = $4, key_sha256 = $5, \
         calls_per_minute = $6 WHERE id = $7 AND state = $8",
    )
    .bind(a.state.as_str())
    .bind(&a.decision_note)
    .bind(&a.decided_by)
    .bind(a.decided_at)
    .bind(&a.key_sha256)
    .bind(a.calls_per_minute)
    .bind(&a.id)
    .bind(from.as_str())
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn access(c: &mut AnyConnection, id: &str) -> Result<Option<AccessRow>, sqlx::Error> {
    sqlx::query_as(concat!("SELECT ", access_columns!(), " FROM open_access WHERE id = $1"))
        .bind(id)
        .fetch_optional(c)
        .await
}

pub async fn access_by_key(c: &mut AnyConnection, key_sha256: &str) -> Result<Option<AccessRow>, sqlx::Error> {
    sqlx::query_as(concat!("SELECT ", access_columns!(), " FROM open_access WHERE key_sha256 = $1"))
        .bind(key_sha256)
        .fetch_optional(c)
        .await
}

pub async fn access_of_account(c: &mut AnyConnection, account_id: &str) -> Result<Vec<AccessRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        access_columns!(),
        " FROM open_access WHERE account_id = $1 ORDER BY created_at DESC, id"
    ))
    .bind(account_id)
    .fetch_all(c)
    .await
}

/// Applications for the datasets of a department, newest first.
pub async fn access_for_department(c: &mut AnyConnection, department_id: &str) -> Result<Vec<AccessRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        access_columns!(),
        " FROM open_access WHERE dataset_id IN (SELECT id FROM open_datasets WHERE department_id = $1) \
         ORDER BY created_at DESC, id LIMIT 500"
    ))
    .bind(department_id)
    .fetch_all(c)
    .await
}

/// Counts a call with a key in its minute; returns the calls of that minute so far.
pub async fn count_key_call(c: &mut AnyConnection, access_id: &str, minute: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO open_key_calls (access_id, minute, calls) VALUES ($1, $2, 1) \
         ON CONFLICT (access_id, minute) DO UPDATE SET calls = open_key_calls.calls + 1 RETURNING calls",
    )
    .bind(access_id)
    .bind(minute)
    .fetch_one(c)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DemandRow {
    pub id: String,
    pub account_id: String,
    pub department_id: String,
    pub title: String,
    pub description: String,
    #[sqlx(try_from = "String")]
    pub state: DemandState,
    pub answer: Option<String>,
    pub dataset_id: Option<String>,
    pub answered_by: Option<String>,
    pub answered_at: Option<i64>,
    pub created_at: i64,
}

macro_rules! demand_columns {
    () => {
        "id, account_id, department_id, title, description, state, answer, dataset_id, answered_by, answered_at, \
         created_at"
    };
}

pub async fn insert_demand(c: &mut AnyConnection, d: &DemandRow) -> Result<(), sqlx::Error> {
    sqlx::query(concat!(
        "INSERT INTO open_data_requests (",
        demand_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    ))
    .bind(&d.id)
    .bind(&d.account_id)
    .bind(&d.department_id)
    .bind(&d.title)
    .bind(&d.description)
    .bind(d.state.as_str())
    .bind(&d.answer)
    .bind(&d.dataset_id)
    .bind(&d.answered_by)
    .bind(d.answered_at)
    .bind(d.created_at)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn answer_demand(c: &mut AnyConnection, d: &DemandRow) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE open_data_requests SET state = $1, answer = $2, dataset_id = $3, answered_by = $4, answered_at = $5 \
         WHERE id = $6 AND state = $7",
    )
    .bind(d.state.as_str())
    .bind(&d.answer)
    .bind(&d.dataset_id)
    .bind(&d.answered_by)
    .bind(d.answered_at)
    .bind(&d.id)
    .bind(DemandState::Open.as_str())
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn demand(c: &mut AnyConnection, id: &str) -> Result<Option<DemandRow>, sqlx::Error> {
    sqlx::query_as(concat!("SELECT ", demand_columns!(), " FROM open_data_requests WHERE id = $1"))
        .bind(id)
        .fetch_optional(c)
        .await
}

/// The newest 数据需求, of one department or all.
pub async fn demands(c: &mut AnyConnection, department_id: Option<&str>) -> Result<Vec<DemandRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        demand_columns!(),
        " FROM open_data_requests WHERE (CAST($1 AS TEXT) IS NULL OR department_id = $1) ORDER BY created_at DESC, id LIMIT 200"
    ))
    .bind(department_id)
    .fetch_all(c)
    .await
}
