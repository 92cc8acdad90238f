//! E-certificates.

use sqlx::AnyConnection;

#[derive(sqlx::FromRow)]
pub struct CertificateRow {
    pub id: String,
    #[sqlx(rename = "type")]
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
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {CERT_COLUMNS} FROM certificates WHERE id = $1")))
        .bind(id)
        .fetch_optional(c)
        .await
}

pub async fn certificates_of(c: &mut AnyConnection, holder_id: &str) -> Result<Vec<CertificateRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {CERT_COLUMNS} FROM certificates WHERE holder_id = $1 ORDER BY issued_at DESC"
    )))
    .bind(holder_id)
    .fetch_all(c)
    .await
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
