//! Browser sessions and API tokens.

use sqlx::AnyConnection;

// --- sessions and tokens ---------------------------------------------------------------

#[derive(sqlx::FromRow)]
pub struct SessionRow {
    pub id: String,
    pub account_id: String,
    pub stage: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub source: String,
    pub user_agent: String,
}

pub async fn insert_session(c: &mut AnyConnection, token_hash: &str, s: &SessionRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sessions (token_hash, id, account_id, stage, created_at, last_seen_at, expires_at, source, user_agent) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(token_hash)
    .bind(&s.id)
    .bind(&s.account_id)
    .bind(&s.stage)
    .bind(s.created_at)
    .bind(s.last_seen_at)
    .bind(s.expires_at)
    .bind(&s.source)
    .bind(&s.user_agent)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn session_by_hash(c: &mut AnyConnection, token_hash: &str) -> Result<Option<SessionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, account_id, stage, created_at, last_seen_at, expires_at, source, user_agent FROM sessions \
         WHERE token_hash = $1 AND revoked_at IS NULL",
    )
    .bind(token_hash)
    .fetch_optional(c)
    .await
}

pub async fn touch_session(c: &mut AnyConnection, id: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2").bind(now).bind(id).execute(c).await?;
    Ok(())
}

pub async fn active_sessions(
    c: &mut AnyConnection,
    account_id: &str,
    now: i64,
) -> Result<Vec<SessionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, account_id, stage, created_at, last_seen_at, expires_at, source, user_agent FROM sessions \
         WHERE account_id = $1 AND revoked_at IS NULL AND expires_at > $2 AND stage = 'full' ORDER BY created_at DESC",
    )
    .bind(account_id)
    .bind(now)
    .fetch_all(c)
    .await
}

pub async fn revoke_session(c: &mut AnyConnection, account_id: &str, id: &str, now: i64) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND account_id = $3 AND revoked_at IS NULL")
            .bind(now)
            .bind(id)
            .bind(account_id)
            .execute(c)
            .await?;
    Ok(done.rows_affected() > 0)
}

/// Revokes every session of an account except `keep` (a session id), returning how many.
pub async fn revoke_sessions(
    c: &mut AnyConnection,
    account_id: &str,
    keep: Option<&str>,
    now: i64,
) -> Result<u64, sqlx::Error> {
    let done =
        sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE account_id = $2 AND revoked_at IS NULL AND id <> $3")
            .bind(now)
            .bind(account_id)
            .bind(keep.unwrap_or(""))
            .execute(c)
            .await?;
    Ok(done.rows_affected())
}

pub async fn insert_token(
    c: &mut AnyConnection,
    token_hash: &str,
    id: &str,
    account_id: &str,
    created_at: i64,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO api_tokens (token_hash, id, account_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash)
    .bind(id)
    .bind(account_id)
    .bind(created_at)
    .bind(expires_at)
    .execute(c)
    .await?;
    Ok(())
}

/// (token id, account id) of a live token.
pub async fn live_token(
    c: &mut AnyConnection,
    token_hash: &str,
    now: i64,
) -> Result<Option<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, account_id FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(c)
    .await
}

pub async fn revoke_token(c: &mut AnyConnection, token_hash: &str, now: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(token_hash)
        .execute(c)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn revoke_tokens(c: &mut AnyConnection, account_id: &str, now: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE account_id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(account_id)
        .execute(c)
        .await?;
    Ok(done.rows_affected())
}
