//! The tables insight owns (migration 0007's `alerts`, 0026's `assessment_plans`), and every
//! query on them.

use sqlx::{AnyConnection, AnyPool};

use crate::security::Candidate;

/// An alert as stored.
#[derive(sqlx::FromRow)]
pub struct AlertRow {
    pub id: String,
    /// A stored rule or severity this version does not know is a decoding fault.
    #[sqlx(try_from = "String")]
    pub rule: crate::security::AlertRule,
    #[sqlx(try_from = "String")]
    pub severity: crate::security::Severity,
    pub summary: String,
    pub first_index: Option<i64>,
    pub raised_at: i64,
    pub acknowledged_at: Option<i64>,
    pub acknowledged_by: Option<String>,
}

/// Raises an alert once per rule and key: `false` when it was raised before.
pub async fn insert_alert(
    c: &mut AnyConnection,
    id: &str,
    a: &Candidate,
    region_path: Option<&str>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO alerts (id, rule, key, severity, summary, first_index, raised_at, region_path) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (rule, key) DO NOTHING",
    )
    .bind(id)
    .bind(a.rule.as_str())
    .bind(&a.key)
    .bind(a.severity.as_str())
    .bind(&a.summary)
    .bind(i64::try_from(a.first_index).unwrap_or(i64::MAX))
    .bind(now)
    .bind(region_path)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Which alerts a reader sees: every one, or those about accounts within the region subtree
/// at this path, with or without the alerts about no region's account.
pub enum Within<'a> {
    Everywhere,
    Subtree { path: &'a str, unplaced: bool },
}

impl Within<'_> {
    /// The SQL condition and its bounds (`path <= region_path < upper`).
    fn condition(&self, first: usize) -> (String, Option<(String, String)>) {
        match self {
            Within::Everywhere => (String::new(), None),
            Within::Subtree { path, unplaced } => {
                let within = format!("region_path >= ${first} AND region_path < ${}", first + 1);
                let condition = if *unplaced {
                    format!(" AND ({within} OR region_path IS NULL)")
                } else {
                    format!(" AND {within}")
                };
                (condition, Some(kernel::authz::subtree_bounds(path)))
            }
        }
    }
}

/// The newest alerts, open ones first.
pub async fn alerts(pool: &AnyPool, within: &Within<'_>, limit: i64) -> Result<Vec<AlertRow>, sqlx::Error> {
    let (condition, bounds) = within.condition(2);
    let sql = format!(
        "SELECT id, rule, severity, summary, first_index, raised_at, acknowledged_at, acknowledged_by FROM alerts \
         WHERE 1 = 1{condition} ORDER BY CASE WHEN acknowledged_at IS NULL THEN 0 ELSE 1 END, raised_at DESC LIMIT $1"
    );
    let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(limit);
    if let Some((low, high)) = bounds {
        query = query.bind(low).bind(high);
    }
    query.fetch_all(pool).await
}

/// Acknowledges an open alert the reader sees: `false` when there is no such open alert.
pub async fn acknowledge(
    c: &mut AnyConnection,
    id: &str,
    within: &Within<'_>,
    by: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let (condition, bounds) = within.condition(4);
    let sql = format!(
        "UPDATE alerts SET acknowledged_at = $1, acknowledged_by = $2 WHERE id = $3 AND acknowledged_at IS NULL{condition}"
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).bind(by).bind(id);
    if let Some((low, high)) = bounds {
        query = query.bind(low).bind(high);
    }
    Ok(query.execute(c).await?.rows_affected() == 1)
}

/// A version of the indicator system.
#[derive(sqlx::FromRow)]
pub struct PlanRow {
    pub version: i64,
    pub body: String,
    pub created_by: String,
    pub created_at: i64,
}

/// The indicator system in force: the newest version.
pub async fn latest_plan(c: &mut AnyConnection) -> Result<Option<PlanRow>, sqlx::Error> {
    sqlx::query_as("SELECT version, body, created_by, created_at FROM assessment_plans ORDER BY version DESC LIMIT 1")
        .fetch_optional(c)
        .await
}

/// Writes the next version of the indicator system; its number.
pub async fn insert_plan(c: &mut AnyConnection, body: &str, by: &str, now: i64) -> Result<i64, sqlx::Error> {
    let version: i64 = sqlx::query_scalar("SELECT CAST(COALESCE(MAX(version), 0) + 1 AS BIGINT) FROM assessment_plans")
        .fetch_one(&mut *c)
        .await?;
    sqlx::query("INSERT INTO assessment_plans (version, body, created_by, created_at) VALUES ($1, $2, $3, $4)")
        .bind(version)
        .bind(body)
        .bind(by)
        .bind(now)
        .execute(c)
        .await?;
    Ok(version)
}
