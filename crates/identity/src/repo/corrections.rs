//! Correction requests, and departments in a subtree.

use super::DepartmentRef;
use sqlx::AnyConnection;

use super::organisation::subtree_bounds;

#[derive(sqlx::FromRow)]
pub struct CorrectionRow {
    pub id: String,
    pub account_id: String,
    pub department_id: String,
    pub department: String,
    pub field: String,
    pub requested_enc: String,
    pub reason: String,
    pub status: String,
    pub created_at: i64,
    pub region_path: String,
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_correction(
    c: &mut AnyConnection,
    id: &str,
    account_id: &str,
    department_id: &str,
    field: &str,
    requested_enc: &str,
    reason: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO correction_requests (id, account_id, department_id, field, requested_enc, reason, status, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'open', $7)",
    )
    .bind(id)
    .bind(account_id)
    .bind(department_id)
    .bind(field)
    .bind(requested_enc)
    .bind(reason)
    .bind(now)
    .execute(c)
    .await?;
    Ok(())
}

macro_rules! correction_select {
    () => {
        "SELECT q.id, q.account_id, q.department_id, d.name AS department, q.field, q.requested_enc, q.reason, q.status, q.created_at, \
         r.path AS region_path FROM correction_requests q JOIN departments d ON d.id = q.department_id \
         JOIN regions r ON r.id = d.region_id"
    };
}

/// Correction requests whose sealed value names `key_id` (the id is the ciphertext prefix).
pub async fn corrections_sealed_under(c: &mut AnyConnection, key_id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) AS n FROM correction_requests WHERE requested_enc LIKE $1")
        .bind(format!("{key_id}:%"))
        .fetch_one(c)
        .await
}

pub async fn corrections_not_under(c: &mut AnyConnection, key_id: &str) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as("SELECT id, requested_enc FROM correction_requests WHERE requested_enc NOT LIKE $1")
        .bind(format!("{key_id}:%"))
        .fetch_all(c)
        .await
}

pub async fn reseal_correction(c: &mut AnyConnection, id: &str, sealed: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE correction_requests SET requested_enc = $1 WHERE id = $2")
        .bind(sealed)
        .bind(id)
        .execute(c)
        .await?;
    Ok(())
}

pub async fn corrections_of(c: &mut AnyConnection, account_id: &str) -> Result<Vec<CorrectionRow>, sqlx::Error> {
    sqlx::query_as(concat!(correction_select!(), " WHERE q.account_id = $1 ORDER BY q.created_at DESC"))
        .bind(account_id)
        .fetch_all(c)
        .await
}

/// Open requests addressed to departments in a region subtree, oldest first.
pub async fn corrections_in_subtree(
    c: &mut AnyConnection,
    path: &str,
    limit: i64,
) -> Result<Vec<CorrectionRow>, sqlx::Error> {
    let (low, high) = subtree_bounds(path);
    sqlx::query_as(concat!(
        correction_select!(),
        " WHERE q.status = 'open' AND r.path >= $1 AND r.path < $2 ORDER BY q.created_at LIMIT $3"
    ))
    .bind(low)
    .bind(high)
    .bind(limit)
    .fetch_all(c)
    .await
}

pub async fn departments_in_subtree(
    c: &mut AnyConnection,
    path: &str,
) -> Result<Vec<(DepartmentRef, String)>, sqlx::Error> {
    let rows: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT d.id, d.code, d.name, r.name AS region_name FROM departments d \
         JOIN regions r ON r.id = d.region_id WHERE r.path >= $1 AND r.path < $2 ORDER BY r.path, d.code",
    )
    .bind(subtree_bounds(path).0)
    .bind(subtree_bounds(path).1)
    .fetch_all(c)
    .await?;
    Ok(rows.into_iter().map(|(id, code, name, region_name)| (DepartmentRef { id, code, name }, region_name)).collect())
}
