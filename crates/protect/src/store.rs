//! SQL for the protect tables.

use sqlx::{AnyConnection, Row};

pub async fn wrapped_key(c: &mut AnyConnection, id: &str) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query("SELECT wrapped FROM data_keys WHERE id = $1").bind(id).fetch_optional(c).await?;
    row.map(|r| r.try_get("wrapped")).transpose()
}

/// The newest key that is not retired.
pub async fn active_key(c: &mut AnyConnection) -> Result<Option<String>, sqlx::Error> {
    let row =
        sqlx::query("SELECT id FROM data_keys WHERE retired_at IS NULL ORDER BY created_at DESC, id DESC LIMIT 1")
            .fetch_optional(c)
            .await?;
    row.map(|r| r.try_get("id")).transpose()
}

pub async fn insert_key(c: &mut AnyConnection, id: &str, wrapped: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO data_keys (id, wrapped, created_at) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(wrapped)
        .bind(now)
        .execute(c)
        .await?;
    Ok(())
}

pub async fn retire_key(c: &mut AnyConnection, id: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE data_keys SET retired_at = $1 WHERE id = $2 AND retired_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(c)
        .await?;
    Ok(())
}

pub async fn keys(c: &mut AnyConnection) -> Result<Vec<(String, i64, Option<i64>)>, sqlx::Error> {
    let rows =
        sqlx::query("SELECT id, created_at, retired_at FROM data_keys ORDER BY created_at, id").fetch_all(c).await?;
    rows.iter().map(|r| Ok((r.try_get("id")?, r.try_get("created_at")?, r.try_get("retired_at")?))).collect()
}

pub async fn field_masks(c: &mut AnyConnection) -> Result<Vec<(String, String)>, sqlx::Error> {
    let rows = sqlx::query("SELECT field, mask FROM field_masks").fetch_all(c).await?;
    rows.iter().map(|r| Ok((r.try_get("field")?, r.try_get("mask")?))).collect()
}

pub async fn unmasking_rules(c: &mut AnyConnection) -> Result<Vec<(String, String)>, sqlx::Error> {
    let rows = sqlx::query("SELECT field, role_code FROM unmasking_rules").fetch_all(c).await?;
    rows.iter().map(|r| Ok((r.try_get("field")?, r.try_get("role_code")?))).collect()
}
