//! Bulk imports and their per-row reports.

use sqlx::AnyConnection;

// --- imports -----------------------------------------------------------------------------

pub async fn insert_import(
    c: &mut AnyConnection,
    id: &str,
    registry_id: &str,
    file_name: &str,
    mode: &str,
    by: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO registry_imports (id, registry_id, file_name, mode, status, total_rows, done_rows, imported, \
         rejected, errors, started_by, started_at) VALUES ($1, $2, $3, $4, 'running', 0, 0, 0, 0, '[]', $5, $6)",
    )
    .bind(id)
    .bind(registry_id)
    .bind(file_name)
    .bind(mode)
    .bind(by)
    .bind(now)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn import_progress(
    c: &mut AnyConnection,
    id: &str,
    total: i64,
    done: i64,
    imported: i64,
    rejected: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE registry_imports SET total_rows = $1, done_rows = $2, imported = $3, rejected = $4 WHERE id = $5",
    )
    .bind(total)
    .bind(done)
    .bind(imported)
    .bind(rejected)
    .bind(id)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn finish_import(
    c: &mut AnyConnection,
    id: &str,
    status: &str,
    imported: i64,
    errors: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE registry_imports SET status = $1, imported = $2, errors = $3, finished_at = $4 WHERE id = $5")
        .bind(status)
        .bind(imported)
        .bind(errors)
        .bind(now)
        .bind(id)
        .execute(c)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ImportRow {
    pub id: String,
    pub registry_id: String,
    pub file_name: String,
    pub mode: String,
    pub status: String,
    pub total_rows: i64,
    pub done_rows: i64,
    pub imported: i64,
    pub rejected: i64,
    pub errors: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
}

const IMPORT: &str = "SELECT id, registry_id, file_name, mode, status, total_rows, done_rows, imported, rejected, \
                      errors, started_at, finished_at FROM registry_imports";

pub async fn import(c: &mut AnyConnection, id: &str) -> Result<Option<ImportRow>, sqlx::Error> {
    let q = format!("{IMPORT} WHERE id = $1");
    sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(id).fetch_optional(c).await
}

/// How many rows the imports into a registry have rejected, all told.
pub async fn import_rejections(c: &mut AnyConnection, registry_id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(rejected), 0) AS BIGINT) AS n FROM registry_imports WHERE registry_id = $1",
    )
    .bind(registry_id)
    .fetch_one(c)
    .await
}
