//! The GovStack Registration tables: services, eForms, files, tasks, documents and statistics.

use sqlx::AnyConnection;

pub async fn registration_service(c: &mut AnyConnection, service_id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT body FROM registration_services WHERE service_id = $1")
        .bind(service_id)
        .fetch_optional(c)
        .await
}

pub async fn registration_services(c: &mut AnyConnection) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as("SELECT service_id, body FROM registration_services").fetch_all(c).await
}

pub async fn upsert_registration_service(
    c: &mut AnyConnection,
    service_id: &str,
    body: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO registration_services (service_id, body) VALUES ($1, $2) \
         ON CONFLICT (service_id) DO UPDATE SET body = excluded.body",
    )
    .bind(service_id)
    .bind(body)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn registration_eform(c: &mut AnyConnection, eform_id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT body FROM registration_eforms WHERE eform_id = $1")
        .bind(eform_id)
        .fetch_optional(c)
        .await
}

pub async fn registration_eforms_of(c: &mut AnyConnection, service_id: &str) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT body FROM registration_eforms WHERE service_id = $1 ORDER BY eform_id")
        .bind(service_id)
        .fetch_all(c)
        .await
}

/// The first service to bring an eForm id keeps it (GovStack fixtures share one id among
/// several services).
pub async fn insert_registration_eform(
    c: &mut AnyConnection,
    eform_id: &str,
    service_id: &str,
    body: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO registration_eforms (eform_id, service_id, body) VALUES ($1, $2, $3) \
         ON CONFLICT (eform_id) DO NOTHING",
    )
    .bind(eform_id)
    .bind(service_id)
    .bind(body)
    .execute(c)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RegistrationFileRow {
    pub file_id: String,
    pub service_id: String,
    pub service_name: String,
    pub applicant_id: String,
    pub body: String,
    pub sealed_data: Option<String>,
    pub status: String,
    pub client: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const REGISTRATION_FILE_COLUMNS: &str =
    "file_id, service_id, service_name, applicant_id, body, sealed_data, status, client, created_at, updated_at";

/// Inserts a file; `false` when one with this id exists (fixtures load again).
pub async fn insert_registration_file(c: &mut AnyConnection, f: &RegistrationFileRow) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO registration_files ({REGISTRATION_FILE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (file_id) DO NOTHING"
    )))
    .bind(&f.file_id)
    .bind(&f.service_id)
    .bind(&f.service_name)
    .bind(&f.applicant_id)
    .bind(&f.body)
    .bind(&f.sealed_data)
    .bind(&f.status)
    .bind(&f.client)
    .bind(f.created_at)
    .bind(f.updated_at)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn registration_file(
    c: &mut AnyConnection,
    file_id: &str,
) -> Result<Option<RegistrationFileRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {REGISTRATION_FILE_COLUMNS} FROM registration_files WHERE file_id = $1"
    )))
    .bind(file_id)
    .fetch_optional(c)
    .await
}

/// Files, optionally of one service and/or applicant, oldest or newest first.
pub async fn registration_files(
    c: &mut AnyConnection,
    service_id: Option<&str>,
    applicant_id: Option<&str>,
    newest_first: bool,
    offset: i64,
    limit: i64,
) -> Result<Vec<RegistrationFileRow>, sqlx::Error> {
    let order = if newest_first { "DESC" } else { "ASC" };
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {REGISTRATION_FILE_COLUMNS} FROM registration_files \
         WHERE ($1 = '' OR service_id = $1) AND ($2 = '' OR applicant_id = $2) \
         ORDER BY created_at {order}, file_id {order} LIMIT $3 OFFSET $4"
    )))
    .bind(service_id.unwrap_or(""))
    .bind(applicant_id.unwrap_or(""))
    .bind(limit)
    .bind(offset)
    .fetch_all(c)
    .await
}

pub async fn update_registration_file(
    c: &mut AnyConnection,
    file_id: &str,
    body: &str,
    sealed_data: Option<&str>,
    status: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE registration_files SET body = $2, sealed_data = $3, status = $4, updated_at = $5 WHERE file_id = $1",
    )
    .bind(file_id)
    .bind(body)
    .bind(sealed_data)
    .bind(status)
    .bind(now)
    .execute(c)
    .await?;
    Ok(())
}

/// Registration files per status, created in `[from, to)`, of the given services (all when
/// empty).
pub async fn registration_status_counts(
    c: &mut AnyConnection,
    from: i64,
    to: i64,
) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT service_id, status, COUNT(*) AS n FROM registration_files \
         WHERE created_at >= $1 AND created_at < $2 GROUP BY service_id, status",
    )
    .bind(from)
    .bind(to)
    .fetch_all(c)
    .await
}

/// Applications per service and status, created in `[from, to)`, with how many were sent
/// back for supplement.
pub async fn application_status_counts(
    c: &mut AnyConnection,
    from: i64,
    to: i64,
) -> Result<Vec<(String, String, i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT service_id, status, COUNT(*) AS n, SUM(CASE WHEN supplements > 0 THEN 1 ELSE 0 END) AS sent_back \
         FROM applications WHERE created_at >= $1 AND created_at < $2 GROUP BY service_id, status",
    )
    .bind(from)
    .bind(to)
    .fetch_all(c)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RegistrationTaskRow {
    pub task_id: String,
    pub file_id: String,
    pub main_task_id: Option<String>,
    pub assignee_id: Option<String>,
    pub body: String,
    pub status: String,
    pub created_at: i64,
    pub completed_at: Option<i64>,
}

const REGISTRATION_TASK_COLUMNS: &str =
    "task_id, file_id, main_task_id, assignee_id, body, status, created_at, completed_at";

pub async fn insert_registration_task(c: &mut AnyConnection, t: &RegistrationTaskRow) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO registration_tasks ({REGISTRATION_TASK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (task_id) DO NOTHING"
    )))
    .bind(&t.task_id)
    .bind(&t.file_id)
    .bind(&t.main_task_id)
    .bind(&t.assignee_id)
    .bind(&t.body)
    .bind(&t.status)
    .bind(t.created_at)
    .bind(t.completed_at)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn registration_task(
    c: &mut AnyConnection,
    task_id: &str,
) -> Result<Option<RegistrationTaskRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {REGISTRATION_TASK_COLUMNS} FROM registration_tasks WHERE task_id = $1"
    )))
    .bind(task_id)
    .fetch_optional(c)
    .await
}

pub async fn registration_tasks(
    c: &mut AnyConnection,
    file_id: Option<&str>,
    main_task_id: Option<&str>,
    assignee_id: Option<&str>,
    newest_first: bool,
    offset: i64,
    limit: i64,
) -> Result<Vec<RegistrationTaskRow>, sqlx::Error> {
    let order = if newest_first { "DESC" } else { "ASC" };
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {REGISTRATION_TASK_COLUMNS} FROM registration_tasks \
         WHERE ($1 = '' OR file_id = $1) AND ($2 = '' OR main_task_id = $2) AND ($3 = '' OR assignee_id = $3) \
         ORDER BY created_at {order}, task_id {order} LIMIT $4 OFFSET $5"
    )))
    .bind(file_id.unwrap_or(""))
    .bind(main_task_id.unwrap_or(""))
    .bind(assignee_id.unwrap_or(""))
    .bind(limit)
    .bind(offset)
    .fetch_all(c)
    .await
}

pub async fn complete_registration_task(
    c: &mut AnyConnection,
    task_id: &str,
    body: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE registration_tasks SET body = $2, status = 'COMPLETED', completed_at = $3 WHERE task_id = $1")
        .bind(task_id)
        .bind(body)
        .bind(now)
        .execute(c)
        .await?;
    Ok(())
}

pub struct RegistrationDocumentRow<'a> {
    pub id: &'a str,
    pub sha256: &'a str,
    pub content_type: &'a str,
    pub size: i64,
    pub metadata: Option<&'a str>,
    pub client: Option<&'a str>,
    pub created_at: i64,
}

pub async fn insert_registration_document(
    c: &mut AnyConnection,
    d: &RegistrationDocumentRow<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO registration_documents (id, sha256, content_type, size, metadata, client, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(d.id)
    .bind(d.sha256)
    .bind(d.content_type)
    .bind(d.size)
    .bind(d.metadata)
    .bind(d.client)
    .bind(d.created_at)
    .execute(c)
    .await?;
    Ok(())
}

// Appointments (tables of migration 0010).
