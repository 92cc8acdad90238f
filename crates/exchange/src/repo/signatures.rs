//! Consent signatures.

use sqlx::AnyConnection;

use super::consent::REVISION;
use super::*;

// --- consent signatures ------------------------------------------------------------------

pub async fn revision(c: &mut AnyConnection, id: &str) -> Result<Option<RevisionRow>, sqlx::Error> {
    let q = format!("{REVISION} WHERE id = $1");
    sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(id).fetch_optional(c).await
}

pub struct SignatureRow {
    pub id: String,
    pub record_id: String,
    pub body: String,
    pub verified: bool,
}

pub async fn insert_signature(c: &mut AnyConnection, s: &SignatureRow, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO consent_signatures (id, record_id, body, verified, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(&s.id)
    .bind(&s.record_id)
    .bind(&s.body)
    .bind(i64::from(s.verified))
    .bind(now)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn update_signature(c: &mut AnyConnection, s: &SignatureRow, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE consent_signatures SET body = $1, verified = $2, updated_at = $3 WHERE id = $4")
        .bind(&s.body)
        .bind(i64::from(s.verified))
        .bind(now)
        .bind(&s.id)
        .execute(c)
        .await?;
    Ok(())
}

/// The newest signature of a record.
pub async fn latest_signature(c: &mut AnyConnection, record_id: &str) -> Result<Option<SignatureRow>, sqlx::Error> {
    let row = sqlx::query_as::<_, SignatureColumns>(
        "SELECT id, record_id, body, verified FROM consent_signatures WHERE record_id = $1 \
         ORDER BY created_at DESC, id DESC LIMIT 1",
    )
    .bind(record_id)
    .fetch_optional(c)
    .await?;
    Ok(row.map(SignatureRow::from))
}

/// A signature as stored: verified is an integer (0 or 1).
#[derive(sqlx::FromRow)]
pub(super) struct SignatureColumns {
    id: String,
    record_id: String,
    body: String,
    verified: i64,
}

impl From<SignatureColumns> for SignatureRow {
    fn from(s: SignatureColumns) -> Self {
        SignatureRow { id: s.id, record_id: s.record_id, body: s.body, verified: s.verified != 0 }
    }
}

pub async fn set_record_state(
    c: &mut AnyConnection,
    record_id: &str,
    state: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE consent_records SET state = $1, updated_at = $2 WHERE id = $3")
        .bind(state)
        .bind(now)
        .bind(record_id)
        .execute(c)
        .await?;
    Ok(())
}
