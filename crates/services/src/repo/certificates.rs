//! E-certificates.

use sqlx::{AnyConnection, Row};

pub struct CertificateRow {
    pub id: String,
    pub kind: String,
    pub holder_id: String,
    pub department_id: String,
    pub application_id: Option<String>,
    pub body: String,
    pub signature: String,
    pub issued_at: i64,
    pub valid_until: Option<i64>,
    pub revoked_at: Option<i64>,
    pub revocation_reason: Option<String>,
    pub ledger_index: i64,
}

const CERT_COLUMNS: &str = "id, type, holder_id, department_id, application_id, body, signature, issued_at, \
    valid_until, revoked_at, revocation_reason, ledger_index";

fn certificate_from(r: &sqlx::any::AnyRow) -> Result<CertificateRow, sqlx::Error> {
    Ok(CertificateRow {
        id: r.try_get("id")?,
        kind: r.try_get("type")?,
        holder_id: r.try_get("holder_id")?,
        department_id: r.try_get("department_id")?,
        application_id: r.try_get("application_id")?,
        body: r.try_get("body")?,
        signature: r.try_get("signature")?,
        issued_at: r.try_get("issued_at")?,
        valid_until: r.try_get("valid_until")?,
        revoked_at: r.try_get("revoked_at")?,
        revocation_reason: r.try_get("revocation_reason")?,
        ledger_index: r.try_get("ledger_index")?,
    })
}

pub async fn insert_certificate(c: &mut AnyConnection, x: &CertificateRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO certificates (id, type, holder_id, department_id, application_id, body, signature, issued_at, \
         valid_until, ledger_index) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&x.id)
    .bind(&x.kind)
    .bind(&x.holder_id)
    .bind(&x.department_id)
    .bind(&x.application_id)
    .bind(&x.body)
    .bind(&x.signature)
    .bind(x.issued_at)
    .bind(x.valid_until)
    .bind(x.ledger_index)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn certificate(c: &mut AnyConnection, id: &str) -> Result<Option<CertificateRow>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {CERT_COLUMNS} FROM certificates WHERE id = $1")))
        .bind(id)
        .fetch_optional(c)
        .await?;
    row.as_ref().map(certificate_from).transpose()
}

pub async fn certificates_of(c: &mut AnyConnection, holder_id: &str) -> Result<Vec<CertificateRow>, sqlx::Error> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {CERT_COLUMNS} FROM certificates WHERE holder_id = $1 ORDER BY issued_at DESC"
    )))
    .bind(holder_id)
    .fetch_all(c)
    .await?;
    rows.iter().map(certificate_from).collect()
}

pub async fn revoke_certificate(c: &mut AnyConnection, id: &str, reason: &str, now: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE certificates SET revoked_at = $1, revocation_reason = $2 WHERE id = $3 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(reason)
    .bind(id)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}
