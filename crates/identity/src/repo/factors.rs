//! Passwords, authenticator codes, recovery codes and preferences.

use sqlx::AnyConnection;

pub async fn set_password(
    c: &mut AnyConnection,
    account_id: &str,
    phc: &str,
    must_change: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE accounts SET password_hash = $1, must_change_password = $2 WHERE id = $3")
        .bind(phc)
        .bind(i64::from(must_change))
        .bind(account_id)
        .execute(c)
        .await?;
    Ok(())
}

/// Claims a TOTP time step: true only for the one request that moves the step forward, so
/// a code cannot be used twice even by concurrent requests on several nodes.
pub async fn claim_totp_step(c: &mut AnyConnection, account_id: &str, step: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE accounts SET totp_last_step = $1 WHERE id = $2 AND totp_last_step < $1")
        .bind(step)
        .bind(account_id)
        .execute(c)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn pending_totp(c: &mut AnyConnection, account_id: &str) -> Result<Option<String>, sqlx::Error> {
    let pending: Option<Option<String>> = sqlx::query_scalar("SELECT totp_pending_secret FROM accounts WHERE id = $1")
        .bind(account_id)
        .fetch_optional(c)
        .await?;
    Ok(pending.flatten())
}

pub async fn set_pending_totp(c: &mut AnyConnection, account_id: &str, sealed: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE accounts SET totp_pending_secret = $1 WHERE id = $2")
        .bind(sealed)
        .bind(account_id)
        .execute(c)
        .await?;
    Ok(())
}

pub async fn enable_totp(c: &mut AnyConnection, account_id: &str, sealed: &str, step: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE accounts SET totp_secret = $1, totp_pending_secret = NULL, totp_last_step = $2 WHERE id = $3")
        .bind(sealed)
        .bind(step)
        .bind(account_id)
        .execute(c)
        .await?;
    Ok(())
}

pub async fn replace_recovery_codes(
    c: &mut AnyConnection,
    account_id: &str,
    hashes: &[String],
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM recovery_codes WHERE account_id = $1").bind(account_id).execute(&mut *c).await?;
    for h in hashes {
        sqlx::query("INSERT INTO recovery_codes (account_id, code_hash) VALUES ($1, $2)")
            .bind(account_id)
            .bind(h)
            .execute(&mut *c)
            .await?;
    }
    Ok(())
}

/// Marks an unused recovery code as used; false when there is no such unused code.
pub async fn use_recovery_code(
    c: &mut AnyConnection,
    account_id: &str,
    hash: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE recovery_codes SET used_at = $1 WHERE account_id = $2 AND code_hash = $3 AND used_at IS NULL",
    )
    .bind(now)
    .bind(account_id)
    .bind(hash)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn unused_recovery_codes(c: &mut AnyConnection, account_id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) AS n FROM recovery_codes WHERE account_id = $1 AND used_at IS NULL")
        .bind(account_id)
        .fetch_one(c)
        .await
}

pub async fn set_preferences(
    c: &mut AnyConnection,
    account_id: &str,
    locale: Option<&str>,
    elder_mode: Option<bool>,
) -> Result<(), sqlx::Error> {
    if let Some(locale) = locale {
        sqlx::query("UPDATE accounts SET locale = $1 WHERE id = $2")
            .bind(locale)
            .bind(account_id)
            .execute(&mut *c)
            .await?;
    }
    if let Some(elder) = elder_mode {
        sqlx::query("UPDATE accounts SET elder_mode = $1 WHERE id = $2")
            .bind(i64::from(elder))
            .bind(account_id)
            .execute(&mut *c)
            .await?;
    }
    Ok(())
}
