//! Failed sign-in counters and locks.

use sqlx::AnyConnection;

// --- throttles -------------------------------------------------------------------------

/// Until when `key` is locked (0: not locked).
pub async fn locked_until(c: &mut AnyConnection, key: &str) -> Result<i64, sqlx::Error> {
    let until: Option<i64> = sqlx::query_scalar("SELECT locked_until FROM sign_in_throttles WHERE key = $1")
        .bind(key)
        .fetch_optional(c)
        .await?;
    Ok(until.unwrap_or(0))
}

/// Counts one failure atomically (failures older than `window_start` no longer count) and
/// returns the new count, so parallel guesses cannot share one increment.
pub async fn count_failure(c: &mut AnyConnection, key: &str, now: i64, window_start: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO sign_in_throttles (key, failures, last_failure, locked_until) VALUES ($1, 1, $2, 0) \
         ON CONFLICT (key) DO UPDATE SET \
         failures = CASE WHEN sign_in_throttles.last_failure >= $3 THEN sign_in_throttles.failures + 1 ELSE 1 END, \
         last_failure = $2 RETURNING failures",
    )
    .bind(key)
    .bind(now)
    .bind(window_start)
    .fetch_one(c)
    .await
}

pub async fn lock_until(c: &mut AnyConnection, key: &str, until: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE sign_in_throttles SET locked_until = $1 WHERE key = $2 AND locked_until < $1")
        .bind(until)
        .bind(key)
        .execute(c)
        .await?;
    Ok(())
}

pub async fn clear_throttle(c: &mut AnyConnection, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sign_in_throttles WHERE key = $1").bind(key).execute(c).await?;
    Ok(())
}
