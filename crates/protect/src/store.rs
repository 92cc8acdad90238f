//! SQL for the protect tables.

use sqlx::AnyConnection;

pub async fn wrapped_key(c: &mut AnyConnection, id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT wrapped FROM data_keys WHERE id = $1").bind(id).fetch_optional(c).await
}

/// The newest key that is not retired.
pub async fn active_key(c: &mut AnyConnection) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM data_keys WHERE retired_at IS NULL ORDER BY created_at DESC, id DESC LIMIT 1")
        .fetch_optional(c)
        .await
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
    sqlx::query_as("SELECT id, created_at, retired_at FROM data_keys ORDER BY created_at, id").fetch_all(c).await
}

pub async fn field_masks(c: &mut AnyConnection) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as("SELECT field, mask FROM field_masks").fetch_all(c).await
}

pub async fn unmasking_rules(c: &mut AnyConnection) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as("SELECT field, role_code FROM unmasking_rules").fetch_all(c).await
}
