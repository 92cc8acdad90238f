//! Consent signatures.

use sqlx::FromRow;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::consent::REVISION;
use super::*;

// --- consent signatures ------------------------------------------------------------------

pub async fn revision(c: &mut AnyConnection, id: &str) -> Result<Option<RevisionRow>, sqlx::Error> {
    let q = format!("{REVISION} WHERE id = $1");
    sqlx::query(sqlx::AssertSqlSafe(q))
        .bind(id)
        .fetch_optional(c)
        .await?
        .as_ref()
        .map(RevisionRow::from_row)
        .transpose()
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
    let row = sqlx::query(
        "SELECT id, record_id, body, verified FROM consent_signatures WHERE record_id = $1 \
         ORDER BY created_at DESC, id DESC LIMIT 1",
    )
    .bind(record_id)
    .fetch_optional(c)
    .await?;
    row.as_ref().map(signature_row).transpose()
}

pub(super) fn signature_row(r: &AnyRow) -> Result<SignatureRow, sqlx::Error> {
    Ok(SignatureRow {
        id: r.try_get("id")?,
        record_id: r.try_get("record_id")?,
        body: r.try_get("body")?,
        verified: r.try_get::<i64, _>("verified")? != 0,
    })
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
