//! Case numbers, applications and their history.

use sqlx::AnyConnection;

/// Reserves `n` case numbers of a day (counting from 1); returns the first.
pub async fn reserve_numbers(c: &mut AnyConnection, day: &str, n: i64) -> Result<i64, sqlx::Error> {
    let last: i64 = sqlx::query_scalar(
        "INSERT INTO application_numbers (day, last) VALUES ($1, $2) \
         ON CONFLICT (day) DO UPDATE SET last = application_numbers.last + $2 RETURNING last",
    )
    .bind(day)
    .bind(n)
    .fetch_one(c)
    .await?;
    Ok(last - n + 1)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApplicationRow {
    pub id: String,
    pub number: String,
    pub service_id: String,
    pub service_version: i64,
    pub bundle_code: Option<String>,
    pub applicant_id: String,
    pub assisted_by: Option<String>,
    pub confirmed_by: Option<String>,
    pub department_id: String,
    pub region_path: String,
    pub status: String,
    pub state: String,
    pub workflow_code: String,
    pub workflow_version: i64,
    pub case_body: String,
    pub form_body: String,
    pub sealed_form: Option<String>,
    pub prefill: String,
    pub supplements: i64,
    pub supplement_note: Option<String>,
    pub revision: i64,
    pub due_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

const APPLICATION_COLUMNS: &str = "id, number, service_id, service_version, bundle_code, applicant_id, assisted_by, \
    confirmed_by, department_id, region_path, status, state, workflow_code, workflow_version, case_body, form_body, \
    sealed_form, prefill, supplements, supplement_note, revision, due_at, created_at, updated_at";

pub async fn insert_applications(c: &mut AnyConnection, rows: &[ApplicationRow]) -> Result<(), sqlx::Error> {
    kernel::db::insert_rows(
        c,
        "applications (id, number, service_id, service_version, bundle_code, applicant_id, \
         assisted_by, confirmed_by, department_id, region_path, status, state, workflow_code, \
         workflow_version, case_body, form_body, sealed_form, prefill, supplements, \
         supplement_note, revision, due_at, created_at, updated_at)",
        rows,
        |q, a| {
            q.bind(&a.id)
                .bind(&a.number)
                .bind(&a.service_id)
                .bind(a.service_version)
                .bind(&a.bundle_code)
                .bind(&a.applicant_id)
                .bind(&a.assisted_by)
                .bind(&a.confirmed_by)
                .bind(&a.department_id)
                .bind(&a.region_path)
                .bind(&a.status)
                .bind(&a.state)
                .bind(&a.workflow_code)
                .bind(a.workflow_version)
                .bind(&a.case_body)
                .bind(&a.form_body)
                .bind(&a.sealed_form)
                .bind(&a.prefill)
                .bind(a.supplements)
                .bind(&a.supplement_note)
                .bind(a.revision)
                .bind(a.due_at)
                .bind(a.created_at)
                .bind(a.updated_at)
        },
    )
    .await
}

/// Saves a changed case if nobody changed it meanwhile; false when they did.
pub async fn update_application(c: &mut AnyConnection, a: &ApplicationRow) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE applications SET status = $1, state = $2, case_body = $3, form_body = $4, sealed_form = $5, \
         prefill = $6, supplements = $7, supplement_note = $8, due_at = $9, updated_at = $10, revision = revision + 1 \
         WHERE id = $11 AND revision = $12",
    )
    .bind(&a.status)
    .bind(&a.state)
    .bind(&a.case_body)
    .bind(&a.form_body)
    .bind(&a.sealed_form)
    .bind(&a.prefill)
    .bind(a.supplements)
    .bind(&a.supplement_note)
    .bind(a.due_at)
    .bind(a.updated_at)
    .bind(&a.id)
    .bind(a.revision)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn application(c: &mut AnyConnection, id_or_number: &str) -> Result<Option<ApplicationRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {APPLICATION_COLUMNS} FROM applications WHERE id = $1 OR number = $1"
    )))
    .bind(id_or_number)
    .fetch_optional(c)
    .await
}

pub async fn applications_of(
    c: &mut AnyConnection,
    applicant_id: &str,
    limit: i64,
) -> Result<Vec<ApplicationRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {APPLICATION_COLUMNS} FROM applications WHERE applicant_id = $1 ORDER BY created_at DESC LIMIT $2"
    )))
    .bind(applicant_id)
    .bind(limit)
    .fetch_all(c)
    .await
}

/// Every application after `after` in id order, `limit` at a time (a recount's walk).
pub async fn applications_after(
    c: &mut AnyConnection,
    after: &str,
    limit: i64,
) -> Result<Vec<ApplicationRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {APPLICATION_COLUMNS} FROM applications WHERE id > $1 ORDER BY id LIMIT $2"
    )))
    .bind(after)
    .bind(limit)
    .fetch_all(c)
    .await
}

/// Applications in a region subtree that may have counted something within `[start, end)`:
/// submitted before its end, and changed, rated or answered since its start; newest first.
pub async fn counted_candidates(
    c: &mut AnyConnection,
    (lower, upper): (&str, &str),
    (start, end): (i64, i64),
    limit: i64,
) -> Result<Vec<ApplicationRow>, sqlx::Error> {
    let columns = APPLICATION_COLUMNS.split(", ").map(|c| format!("a.{}", c.trim())).collect::<Vec<_>>().join(", ");
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {columns} FROM applications a \
         WHERE a.region_path >= $1 AND a.region_path < $2 AND a.created_at < $4 \
         AND (a.updated_at >= $3 OR EXISTS (SELECT 1 FROM ratings r WHERE r.application_id = a.id \
              AND (r.created_at >= $3 OR r.replied_at >= $3))) \
         ORDER BY a.created_at DESC LIMIT $5"
    )))
    .bind(lower)
    .bind(upper)
    .bind(start)
    .bind(end)
    .bind(limit)
    .fetch_all(c)
    .await
}

pub async fn status_counts(c: &mut AnyConnection) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT status, COUNT(*) AS n FROM applications GROUP BY status").fetch_all(c).await
}

#[derive(sqlx::FromRow)]
pub struct HistoryRow {
    pub seq: i64,
    pub action: String,
    pub from_state: String,
    pub to_state: String,
    pub actor_id: Option<String>,
    pub actor_name: String,
    pub comment: Option<String>,
    pub explanation: Option<String>,
    pub at: i64,
    pub ledger_index: i64,
}

pub async fn insert_history(c: &mut AnyConnection, application_id: &str, h: &HistoryRow) -> Result<(), sqlx::Error> {
    insert_histories(c, &[(application_id, h)]).await
}

/// History rows of one or many cases: (application id, row).
pub async fn insert_histories(c: &mut AnyConnection, rows: &[(&str, &HistoryRow)]) -> Result<(), sqlx::Error> {
    kernel::db::insert_rows(
        c,
        "application_history (application_id, seq, action, from_state, to_state, actor_id, \
         actor_name, comment, explanation, at, ledger_index)",
        rows,
        |q, &(application_id, h)| {
            q.bind(application_id)
                .bind(h.seq)
                .bind(&h.action)
                .bind(&h.from_state)
                .bind(&h.to_state)
                .bind(&h.actor_id)
                .bind(&h.actor_name)
                .bind(&h.comment)
                .bind(&h.explanation)
                .bind(h.at)
                .bind(h.ledger_index)
        },
    )
    .await
}

pub async fn history(c: &mut AnyConnection, application_id: &str) -> Result<Vec<HistoryRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT seq, action, from_state, to_state, actor_id, actor_name, comment, explanation, at, ledger_index \
         FROM application_history WHERE application_id = $1 ORDER BY seq",
    )
    .bind(application_id)
    .fetch_all(c)
    .await
}

pub async fn history_len(c: &mut AnyConnection, application_id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) AS n FROM application_history WHERE application_id = $1")
        .bind(application_id)
        .fetch_one(c)
        .await
}
