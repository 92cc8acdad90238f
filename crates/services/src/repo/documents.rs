//! Uploaded materials, window confirmation codes, and which departments worked on a case.

use sqlx::AnyConnection;

#[derive(sqlx::FromRow)]
pub struct DocumentRow {
    pub id: String,
    pub owner_id: String,
    pub sha256: String,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    pub application_id: Option<String>,
    pub material: Option<String>,
    pub created_at: i64,
}

pub async fn insert_document(c: &mut AnyConnection, d: &DocumentRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO documents (id, owner_id, sha256, filename, content_type, size, application_id, material, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&d.id)
    .bind(&d.owner_id)
    .bind(&d.sha256)
    .bind(&d.filename)
    .bind(&d.content_type)
    .bind(d.size)
    .bind(&d.application_id)
    .bind(&d.material)
    .bind(d.created_at)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn attach_document(
    c: &mut AnyConnection,
    id: &str,
    owner_id: &str,
    application_id: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE documents SET application_id = $1 WHERE id = $2 AND owner_id = $3 AND application_id IS NULL",
    )
    .bind(application_id)
    .bind(id)
    .bind(owner_id)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

const DOCUMENT: &str = "SELECT id, owner_id, sha256, filename, content_type, size, application_id, material, created_at \
                        FROM documents";

pub async fn document(c: &mut AnyConnection, id: &str) -> Result<Option<DocumentRow>, sqlx::Error> {
    let q = format!("{DOCUMENT} WHERE id = $1");
    sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(id).fetch_optional(c).await
}

pub async fn documents_of(c: &mut AnyConnection, application_id: &str) -> Result<Vec<DocumentRow>, sqlx::Error> {
    let q = format!("{DOCUMENT} WHERE application_id = $1 ORDER BY created_at");
    sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(application_id).fetch_all(c).await
}

/// A person's uploads not yet attached to an application, newest first.
pub async fn unattached_documents(c: &mut AnyConnection, owner_id: &str) -> Result<Vec<DocumentRow>, sqlx::Error> {
    let q = format!("{DOCUMENT} WHERE owner_id = $1 AND application_id IS NULL ORDER BY created_at DESC LIMIT 200");
    sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(owner_id).fetch_all(c).await
}

/// Replaces the pending window confirmation code one clerk sent one citizen.
pub async fn replace_assist_code(
    c: &mut AnyConnection,
    account_id: &str,
    staff_id: &str,
    code_hash: &str,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM assist_codes WHERE account_id = $1 AND staff_id = $2")
        .bind(account_id)
        .bind(staff_id)
        .execute(&mut *c)
        .await?;
    sqlx::query("INSERT INTO assist_codes (account_id, staff_id, code_hash, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(account_id)
        .bind(staff_id)
        .bind(code_hash)
        .bind(expires_at)
        .execute(c)
        .await?;
    Ok(())
}

/// Uses up a confirmation code: true when it was the live one.
pub async fn consume_assist_code(
    c: &mut AnyConnection,
    account_id: &str,
    staff_id: &str,
    code_hash: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM assist_codes WHERE account_id = $1 AND staff_id = $2 AND code_hash = $3 AND expires_at > $4",
    )
    .bind(account_id)
    .bind(staff_id)
    .bind(code_hash)
    .bind(now)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Whether a department has (or had) work on a case.
pub async fn department_involved(
    c: &mut AnyConnection,
    application_id: &str,
    department_id: &str,
) -> Result<bool, sqlx::Error> {
    let row = sqlx::query("SELECT 1 AS one FROM tasks WHERE application_id = $1 AND department_id = $2 LIMIT 1")
        .bind(application_id)
        .bind(department_id)
        .fetch_optional(c)
        .await?;
    Ok(row.is_some())
}

pub async fn certificate_ids_of_application(
    c: &mut AnyConnection,
    application_id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM certificates WHERE application_id = $1 ORDER BY issued_at")
        .bind(application_id)
        .fetch_all(c)
        .await
}

// GovStack registration (tables of migration 0009).
