//! The tables insight owns (migration 0007's `alerts`), and every query on them.

use sqlx::{AnyConnection, AnyPool};

use crate::security::Candidate;

/// An alert as stored.
#[derive(sqlx::FromRow)]
pub struct AlertRow {
    pub id: String,
    pub rule: String,
    pub severity: String,
    pub summary: String,
    pub first_index: Option<i64>,
    pub raised_at: i64,
    pub acknowledged_at: Option<i64>,
    pub acknowledged_by: Option<String>,
}

/// Raises an alert once per rule and key: `false` when it was raised before.
pub async fn insert_alert(c: &mut AnyConnection, id: &str, a: &Candidate, now: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO alerts (id, rule, key, severity, summary, first_index, raised_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (rule, key) DO NOTHING",
    )
    .bind(id)
    .bind(a.rule)
    .bind(&a.key)
    .bind(a.severity)
    .bind(&a.summary)
    .bind(i64::try_from(a.first_index).unwrap_or(i64::MAX))
    .bind(now)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The newest alerts, open ones first.
pub async fn alerts(pool: &AnyPool, limit: i64) -> Result<Vec<AlertRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, rule, severity, summary, first_index, raised_at, acknowledged_at, acknowledged_by FROM alerts \
         ORDER BY CASE WHEN acknowledged_at IS NULL THEN 0 ELSE 1 END, raised_at DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Acknowledges an open alert: `false` when there is no such open alert.
pub async fn acknowledge(c: &mut AnyConnection, id: &str, by: &str, now: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE alerts SET acknowledged_at = $1, acknowledged_by = $2 WHERE id = $3 AND acknowledged_at IS NULL",
    )
    .bind(now)
    .bind(by)
    .bind(id)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}
