//! SQL of the services module (tables of migration 0008).

use sqlx::FromRow;
use sqlx::{AnyConnection, Row};

pub async fn workflow_latest(c: &mut AnyConnection, code: &str) -> Result<Option<(i64, String)>, sqlx::Error> {
    let row =
        sqlx::query("SELECT version, body FROM workflow_definitions WHERE code = $1 ORDER BY version DESC LIMIT 1")
            .bind(code)
            .fetch_optional(c)
            .await?;
    row.map(|r| Ok((r.try_get("version")?, r.try_get("body")?))).transpose()
}

pub async fn workflow(c: &mut AnyConnection, code: &str, version: i64) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query("SELECT body FROM workflow_definitions WHERE code = $1 AND version = $2")
        .bind(code)
        .bind(version)
        .fetch_optional(c)
        .await?;
    row.map(|r| r.try_get("body")).transpose()
}

pub async fn insert_workflow(
    c: &mut AnyConnection,
    code: &str,
    version: i64,
    body: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO workflow_definitions (code, version, body, created_at) VALUES ($1, $2, $3, $4)")
        .bind(code)
        .bind(version)
        .bind(body)
        .bind(now)
        .execute(c)
        .await?;
    Ok(())
}

/// (id, published version) of a service by id or code.
pub async fn service_ref(
    c: &mut AnyConnection,
    id_or_code: &str,
) -> Result<Option<(String, Option<i64>)>, sqlx::Error> {
    let row = sqlx::query("SELECT id, published_version FROM services WHERE id = $1 OR code = $1")
        .bind(id_or_code)
        .fetch_optional(c)
        .await?;
    row.map(|r| Ok((r.try_get("id")?, r.try_get("published_version")?))).transpose()
}

pub async fn insert_service(c: &mut AnyConnection, id: &str, code: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO services (id, code, published_version, created_at) VALUES ($1, $2, NULL, $3)")
        .bind(id)
        .bind(code)
        .bind(now)
        .execute(c)
        .await?;
    Ok(())
}

pub async fn latest_service_version(c: &mut AnyConnection, id: &str) -> Result<Option<(i64, String)>, sqlx::Error> {
    let row =
        sqlx::query("SELECT version, body FROM service_versions WHERE service_id = $1 ORDER BY version DESC LIMIT 1")
            .bind(id)
            .fetch_optional(c)
            .await?;
    row.map(|r| Ok((r.try_get("version")?, r.try_get("body")?))).transpose()
}

pub struct VersionRow<'a> {
    pub service_id: &'a str,
    pub version: i64,
    pub body: &'a str,
    pub form_id: &'a str,
    pub form_body: &'a str,
    pub workflow_code: &'a str,
    pub workflow_version: i64,
    pub now: i64,
}

pub async fn insert_service_version(c: &mut AnyConnection, v: &VersionRow<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO service_versions (service_id, version, body, form_id, workflow_code, workflow_version, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(v.service_id)
    .bind(v.version)
    .bind(v.body)
    .bind(v.form_id)
    .bind(v.workflow_code)
    .bind(v.workflow_version)
    .bind(v.now)
    .execute(&mut *c)
    .await?;
    sqlx::query("INSERT INTO forms (id, service_id, service_version, body, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(v.form_id)
        .bind(v.service_id)
        .bind(v.version)
        .bind(v.form_body)
        .bind(v.now)
        .execute(&mut *c)
        .await?;
    sqlx::query("UPDATE services SET published_version = $1 WHERE id = $2")
        .bind(v.version)
        .bind(v.service_id)
        .execute(c)
        .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
pub struct ServiceVersion {
    pub service_id: String,
    pub version: i64,
    pub body: String,
    pub form_id: String,
    pub workflow_code: String,
    pub workflow_version: i64,
}

pub async fn service_version(
    c: &mut AnyConnection,
    id: &str,
    version: i64,
) -> Result<Option<ServiceVersion>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT service_id, version, body, form_id, workflow_code, workflow_version FROM service_versions \
         WHERE service_id = $1 AND version = $2",
    )
    .bind(id)
    .bind(version)
    .fetch_optional(c)
    .await?;
    row.as_ref().map(ServiceVersion::from_row).transpose()
}

/// Every published service version, in code order.
pub async fn published(c: &mut AnyConnection) -> Result<Vec<ServiceVersion>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT v.service_id, v.version, v.body, v.form_id, v.workflow_code, v.workflow_version \
         FROM services s JOIN service_versions v ON v.service_id = s.id AND v.version = s.published_version \
         ORDER BY s.code",
    )
    .fetch_all(c)
    .await?;
    rows.iter().map(ServiceVersion::from_row).collect()
}

pub async fn form(c: &mut AnyConnection, id: &str) -> Result<Option<(String, i64, String)>, sqlx::Error> {
    let row = sqlx::query("SELECT service_id, service_version, body FROM forms WHERE id = $1")
        .bind(id)
        .fetch_optional(c)
        .await?;
    row.map(|r| Ok((r.try_get("service_id")?, r.try_get("service_version")?, r.try_get("body")?))).transpose()
}

pub async fn upsert_bundle(c: &mut AnyConnection, code: &str, body: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO bundles (code, body, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (code) DO UPDATE SET body = excluded.body",
    )
    .bind(code)
    .bind(body)
    .bind(now)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn bundles(c: &mut AnyConnection) -> Result<Vec<String>, sqlx::Error> {
    let rows = sqlx::query("SELECT body FROM bundles ORDER BY code").fetch_all(c).await?;
    rows.iter().map(|r| r.try_get("body")).collect()
}

/// The next case number of a day (counting from 1).
/// Reserves `n` case numbers of a day; returns the first.
pub async fn reserve_numbers(c: &mut AnyConnection, day: &str, n: i64) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO application_numbers (day, last) VALUES ($1, $2) \
         ON CONFLICT (day) DO UPDATE SET last = application_numbers.last + $2 RETURNING last",
    )
    .bind(day)
    .bind(n)
    .fetch_one(c)
    .await?;
    Ok(row.try_get::<i64, _>("last")? - n + 1)
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
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {APPLICATION_COLUMNS} FROM applications WHERE id = $1 OR number = $1"
    )))
    .bind(id_or_number)
    .fetch_optional(c)
    .await?;
    row.as_ref().map(ApplicationRow::from_row).transpose()
}

pub async fn applications_of(
    c: &mut AnyConnection,
    applicant_id: &str,
    limit: i64,
) -> Result<Vec<ApplicationRow>, sqlx::Error> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {APPLICATION_COLUMNS} FROM applications WHERE applicant_id = $1 ORDER BY created_at DESC LIMIT $2"
    )))
    .bind(applicant_id)
    .bind(limit)
    .fetch_all(c)
    .await?;
    rows.iter().map(ApplicationRow::from_row).collect()
}

pub async fn status_counts(c: &mut AnyConnection) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM applications GROUP BY status").fetch_all(c).await?;
    rows.iter().map(|r| Ok((r.try_get("status")?, r.try_get("n")?))).collect()
}

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
    let rows = sqlx::query(
        "SELECT seq, action, from_state, to_state, actor_id, actor_name, comment, explanation, at, ledger_index \
         FROM application_history WHERE application_id = $1 ORDER BY seq",
    )
    .bind(application_id)
    .fetch_all(c)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(HistoryRow {
                seq: r.try_get("seq")?,
                action: r.try_get("action")?,
                from_state: r.try_get("from_state")?,
                to_state: r.try_get("to_state")?,
                actor_id: r.try_get("actor_id")?,
                actor_name: r.try_get("actor_name")?,
                comment: r.try_get("comment")?,
                explanation: r.try_get("explanation")?,
                at: r.try_get("at")?,
                ledger_index: r.try_get("ledger_index")?,
            })
        })
        .collect()
}

pub async fn history_len(c: &mut AnyConnection, application_id: &str) -> Result<i64, sqlx::Error> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM application_history WHERE application_id = $1")
        .bind(application_id)
        .fetch_one(c)
        .await?;
    row.try_get("n")
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TaskRow {
    pub id: String,
    pub kind: String,
    pub application_id: String,
    pub state: String,
    pub branch: Option<String>,
    pub role: String,
    pub department_id: String,
    pub region_path: String,
    pub assignee_id: Option<String>,
    pub status: String,
    pub due_at: Option<i64>,
    pub warned_at: Option<i64>,
    pub escalated_to: Option<String>,
    pub created_at: i64,
}

const TASK_COLUMNS: &str = "t.id, t.kind, t.application_id, t.state, t.branch, t.role, t.department_id, t.region_path, \
    t.assignee_id, t.status, t.due_at, t.warned_at, t.escalated_to, t.created_at";

pub async fn insert_task(c: &mut AnyConnection, t: &TaskRow) -> Result<(), sqlx::Error> {
    insert_tasks(c, std::slice::from_ref(t)).await
}

pub async fn insert_tasks(c: &mut AnyConnection, tasks: &[TaskRow]) -> Result<(), sqlx::Error> {
    kernel::db::insert_rows(
        c,
        "tasks (id, kind, application_id, state, branch, role, department_id, region_path, \
         assignee_id, status, due_at, created_at)",
        tasks,
        |q, t| {
            q.bind(&t.id)
                .bind(&t.kind)
                .bind(&t.application_id)
                .bind(&t.state)
                .bind(&t.branch)
                .bind(&t.role)
                .bind(&t.department_id)
                .bind(&t.region_path)
                .bind(&t.assignee_id)
                .bind(&t.status)
                .bind(t.due_at)
                .bind(t.created_at)
        },
    )
    .await
}

pub async fn open_tasks_of(c: &mut AnyConnection, application_id: &str) -> Result<Vec<TaskRow>, sqlx::Error> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {TASK_COLUMNS} FROM tasks t WHERE t.application_id = $1 AND t.status = 'open' ORDER BY t.created_at"
    )))
    .bind(application_id)
    .fetch_all(c)
    .await?;
    rows.iter().map(TaskRow::from_row).collect()
}

pub async fn close_task(c: &mut AnyConnection, id: &str, status: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE tasks SET status = $1, closed_at = $2 WHERE id = $3 AND status = 'open'")
        .bind(status)
        .bind(now)
        .bind(id)
        .execute(c)
        .await?;
    Ok(())
}

pub async fn task(c: &mut AnyConnection, id: &str) -> Result<Option<TaskRow>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {TASK_COLUMNS} FROM tasks t WHERE t.id = $1")))
        .bind(id)
        .fetch_optional(c)
        .await?;
    row.as_ref().map(TaskRow::from_row).transpose()
}

pub async fn assign_task(c: &mut AnyConnection, id: &str, assignee: Option<&str>) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE tasks SET assignee_id = $1 WHERE id = $2").bind(assignee).bind(id).execute(c).await?;
    Ok(())
}

/// A task with what the inbox shows of its case.
pub struct InboxRow {
    pub task: TaskRow,
    pub number: String,
    pub service_id: String,
    pub service_version: i64,
    pub status: String,
    pub applicant_id: String,
    pub submitted_at: i64,
}

/// Open tasks of a department in a region subtree, for any of `roles` (directly, or
/// escalated to one of them). Soonest due first.
pub async fn inbox(
    c: &mut AnyConnection,
    department_id: &str,
    region_prefix: &str,
    roles: &[String],
    limit: i64,
) -> Result<Vec<InboxRow>, sqlx::Error> {
    // Roles are few (a handful per account): one placeholder each.
    let placeholders: Vec<String> = (0..roles.len()).map(|i| format!("${}", i + 4)).collect();
    let list = if placeholders.is_empty() { "NULL".to_string() } else { placeholders.join(", ") };
    let sql = format!(
        "SELECT {TASK_COLUMNS}, a.number, a.service_id, a.service_version, a.status AS a_status, \
         a.applicant_id, a.created_at AS submitted_at \
         FROM tasks t JOIN applications a ON a.id = t.application_id \
         WHERE t.status = 'open' AND t.department_id = $1 AND substr(t.region_path, 1, length($2)) = $2 \
         AND (t.role IN ({list}) OR t.escalated_to IN ({list})) \
         ORDER BY CASE WHEN t.due_at IS NULL THEN 1 ELSE 0 END, t.due_at, t.created_at LIMIT $3"
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(department_id).bind(region_prefix).bind(limit);
    for r in roles {
        q = q.bind(r);
    }
    let rows = q.fetch_all(c).await?;
    rows.iter()
        .map(|r| {
            Ok(InboxRow {
                task: TaskRow::from_row(r)?,
                number: r.try_get("number")?,
                service_id: r.try_get("service_id")?,
                service_version: r.try_get("service_version")?,
                status: r.try_get("a_status")?,
                applicant_id: r.try_get("applicant_id")?,
                submitted_at: r.try_get("submitted_at")?,
            })
        })
        .collect()
}

/// Open tasks due before `before` that have not been warned about / escalated.
pub async fn tasks_due(c: &mut AnyConnection, before: i64, limit: i64) -> Result<Vec<TaskRow>, sqlx::Error> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {TASK_COLUMNS} FROM tasks t WHERE t.status = 'open' AND t.due_at IS NOT NULL AND t.due_at < $1 \
         AND (t.warned_at IS NULL OR t.escalated_at IS NULL) ORDER BY t.due_at LIMIT $2"
    )))
    .bind(before)
    .bind(limit)
    .fetch_all(c)
    .await?;
    rows.iter().map(TaskRow::from_row).collect()
}

pub async fn mark_warned(c: &mut AnyConnection, id: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE tasks SET warned_at = $1 WHERE id = $2 AND warned_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(c)
        .await?;
    Ok(())
}

/// Escalates an open task once: `false` when it already was (by another node) or closed.
pub async fn escalate(c: &mut AnyConnection, id: &str, to_role: &str, now: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE tasks SET escalated_to = $1, escalated_at = $2, warned_at = COALESCE(warned_at, $2) \
         WHERE id = $3 AND escalated_to IS NULL AND status = 'open'",
    )
    .bind(to_role)
    .bind(now)
    .bind(id)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn insert_notification(
    c: &mut AnyConnection,
    account_id: &str,
    application_id: Option<&str>,
    text_zh: &str,
    text_en: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    insert_notifications(c, &[NewNotification { account_id, application_id, text_zh, text_en, at: now }]).await
}

/// An in-app notification to write.
pub struct NewNotification<'a> {
    pub account_id: &'a str,
    pub application_id: Option<&'a str>,
    pub text_zh: &'a str,
    pub text_en: &'a str,
    pub at: i64,
}

pub async fn insert_notifications(c: &mut AnyConnection, notes: &[NewNotification<'_>]) -> Result<(), sqlx::Error> {
    kernel::db::insert_rows(
        c,
        "notifications (id, account_id, application_id, text_zh, text_en, created_at)",
        notes,
        |q, n| {
            q.bind(kernel::db::new_id())
                .bind(n.account_id)
                .bind(n.application_id)
                .bind(n.text_zh)
                .bind(n.text_en)
                .bind(n.at)
        },
    )
    .await
}

pub struct NotificationRow {
    pub id: String,
    pub application_id: Option<String>,
    pub text_zh: String,
    pub text_en: String,
    pub created_at: i64,
    pub read: bool,
}

pub async fn notifications(
    c: &mut AnyConnection,
    account_id: &str,
    limit: i64,
) -> Result<Vec<NotificationRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, application_id, text_zh, text_en, created_at, read_at FROM notifications \
         WHERE account_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
    )
    .bind(account_id)
    .bind(limit)
    .fetch_all(c)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(NotificationRow {
                id: r.try_get("id")?,
                application_id: r.try_get("application_id")?,
                text_zh: r.try_get("text_zh")?,
                text_en: r.try_get("text_en")?,
                created_at: r.try_get("created_at")?,
                read: r.try_get::<Option<i64>, _>("read_at")?.is_some(),
            })
        })
        .collect()
}

pub async fn mark_notifications_read(c: &mut AnyConnection, account_id: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE notifications SET read_at = $1 WHERE account_id = $2 AND read_at IS NULL")
        .bind(now)
        .bind(account_id)
        .execute(c)
        .await?;
    Ok(())
}

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

pub async fn insert_rating(
    c: &mut AnyConnection,
    application_id: &str,
    applicant_id: &str,
    department_id: &str,
    score: i64,
    comment: Option<&str>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO ratings (application_id, applicant_id, department_id, score, comment, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (application_id) DO NOTHING",
    )
    .bind(application_id)
    .bind(applicant_id)
    .bind(department_id)
    .bind(score)
    .bind(comment)
    .bind(now)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub struct RatingRow {
    pub score: i64,
    pub comment: Option<String>,
    pub created_at: i64,
    pub reply: Option<String>,
    pub replied_at: Option<i64>,
}

pub async fn rating(c: &mut AnyConnection, application_id: &str) -> Result<Option<RatingRow>, sqlx::Error> {
    let row =
        sqlx::query("SELECT score, comment, created_at, reply, replied_at FROM ratings WHERE application_id = $1")
            .bind(application_id)
            .fetch_optional(c)
            .await?;
    row.map(|r| {
        Ok(RatingRow {
            score: r.try_get("score")?,
            comment: r.try_get("comment")?,
            created_at: r.try_get("created_at")?,
            reply: r.try_get("reply")?,
            replied_at: r.try_get("replied_at")?,
        })
    })
    .transpose()
}

pub async fn reply_rating(
    c: &mut AnyConnection,
    application_id: &str,
    reply: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("UPDATE ratings SET reply = $1, replied_at = $2 WHERE application_id = $3 AND reply IS NULL")
            .bind(reply)
            .bind(now)
            .bind(application_id)
            .execute(c)
            .await?;
    Ok(done.rows_affected() == 1)
}

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

pub async fn documents_of(c: &mut AnyConnection, application_id: &str) -> Result<Vec<DocumentRow>, sqlx::Error> {
    let q = format!("{DOCUMENT} WHERE application_id = $1 ORDER BY created_at");
    sqlx::query(sqlx::AssertSqlSafe(q))
        .bind(application_id)
        .fetch_all(c)
        .await?
        .iter()
        .map(DocumentRow::from_row)
        .collect()
}

/// A person's uploads not yet attached to an application, newest first.
pub async fn unattached_documents(c: &mut AnyConnection, owner_id: &str) -> Result<Vec<DocumentRow>, sqlx::Error> {
    let q = format!("{DOCUMENT} WHERE owner_id = $1 AND application_id IS NULL ORDER BY created_at DESC LIMIT 200");
    sqlx::query(sqlx::AssertSqlSafe(q)).bind(owner_id).fetch_all(c).await?.iter().map(DocumentRow::from_row).collect()
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
    let rows = sqlx::query("SELECT id FROM certificates WHERE application_id = $1 ORDER BY issued_at")
        .bind(application_id)
        .fetch_all(c)
        .await?;
    rows.iter().map(|r| r.try_get("id")).collect()
}

// GovStack registration (tables of migration 0009).

pub async fn registration_service(c: &mut AnyConnection, service_id: &str) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query("SELECT body FROM registration_services WHERE service_id = $1")
        .bind(service_id)
        .fetch_optional(c)
        .await?;
    row.map(|r| r.try_get("body")).transpose()
}

pub async fn registration_services(c: &mut AnyConnection) -> Result<Vec<(String, String)>, sqlx::Error> {
    let rows = sqlx::query("SELECT service_id, body FROM registration_services").fetch_all(c).await?;
    rows.iter().map(|r| Ok((r.try_get("service_id")?, r.try_get("body")?))).collect()
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
    let row = sqlx::query("SELECT body FROM registration_eforms WHERE eform_id = $1")
        .bind(eform_id)
        .fetch_optional(c)
        .await?;
    row.map(|r| r.try_get("body")).transpose()
}

pub async fn registration_eforms_of(c: &mut AnyConnection, service_id: &str) -> Result<Vec<String>, sqlx::Error> {
    let rows = sqlx::query("SELECT body FROM registration_eforms WHERE service_id = $1 ORDER BY eform_id")
        .bind(service_id)
        .fetch_all(c)
        .await?;
    rows.iter().map(|r| r.try_get("body")).collect()
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
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {REGISTRATION_FILE_COLUMNS} FROM registration_files WHERE file_id = $1"
    )))
    .bind(file_id)
    .fetch_optional(c)
    .await?;
    row.as_ref().map(RegistrationFileRow::from_row).transpose()
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
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {REGISTRATION_FILE_COLUMNS} FROM registration_files \
         WHERE ($1 = '' OR service_id = $1) AND ($2 = '' OR applicant_id = $2) \
         ORDER BY created_at {order}, file_id {order} LIMIT $3 OFFSET $4"
    )))
    .bind(service_id.unwrap_or(""))
    .bind(applicant_id.unwrap_or(""))
    .bind(limit)
    .bind(offset)
    .fetch_all(c)
    .await?;
    rows.iter().map(RegistrationFileRow::from_row).collect()
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
    let rows = sqlx::query(
        "SELECT service_id, status, COUNT(*) AS n FROM registration_files \
         WHERE created_at >= $1 AND created_at < $2 GROUP BY service_id, status",
    )
    .bind(from)
    .bind(to)
    .fetch_all(c)
    .await?;
    rows.iter().map(|r| Ok((r.try_get("service_id")?, r.try_get("status")?, r.try_get("n")?))).collect()
}

/// Applications per service and status, created in `[from, to)`, with how many were sent
/// back for supplement.
pub async fn application_status_counts(
    c: &mut AnyConnection,
    from: i64,
    to: i64,
) -> Result<Vec<(String, String, i64, i64)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT service_id, status, COUNT(*) AS n, SUM(CASE WHEN supplements > 0 THEN 1 ELSE 0 END) AS sent_back \
         FROM applications WHERE created_at >= $1 AND created_at < $2 GROUP BY service_id, status",
    )
    .bind(from)
    .bind(to)
    .fetch_all(c)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("service_id")?, r.try_get("status")?, r.try_get("n")?, r.try_get("sent_back")?)))
        .collect()
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
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {REGISTRATION_TASK_COLUMNS} FROM registration_tasks WHERE task_id = $1"
    )))
    .bind(task_id)
    .fetch_optional(c)
    .await?;
    row.as_ref().map(RegistrationTaskRow::from_row).transpose()
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
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
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
    .await?;
    rows.iter().map(RegistrationTaskRow::from_row).collect()
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

pub struct HallRow {
    pub id: String,
    pub region_path: String,
    pub body: String,
}

fn hall_from(r: &sqlx::any::AnyRow) -> Result<HallRow, sqlx::Error> {
    Ok(HallRow { id: r.try_get("id")?, region_path: r.try_get("region_path")?, body: r.try_get("body")? })
}

pub async fn upsert_hall(
    c: &mut AnyConnection,
    id: &str,
    code: &str,
    region_path: &str,
    body: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO halls (id, code, region_path, body, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (code) DO UPDATE SET region_path = excluded.region_path, body = excluded.body",
    )
    .bind(id)
    .bind(code)
    .bind(region_path)
    .bind(body)
    .bind(now)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn halls(c: &mut AnyConnection) -> Result<Vec<HallRow>, sqlx::Error> {
    let rows = sqlx::query("SELECT id, region_path, body FROM halls ORDER BY code").fetch_all(c).await?;
    rows.iter().map(hall_from).collect()
}

pub async fn hall_by_code(c: &mut AnyConnection, code: &str) -> Result<Option<HallRow>, sqlx::Error> {
    let row =
        sqlx::query("SELECT id, region_path, body FROM halls WHERE code = $1").bind(code).fetch_optional(c).await?;
    row.as_ref().map(hall_from).transpose()
}

pub async fn hall_by_id(c: &mut AnyConnection, id: &str) -> Result<Option<HallRow>, sqlx::Error> {
    let row = sqlx::query("SELECT id, region_path, body FROM halls WHERE id = $1").bind(id).fetch_optional(c).await?;
    row.as_ref().map(hall_from).transpose()
}

/// Places taken per slot start between `from` and `to` (inclusive).
pub async fn slot_counts(
    c: &mut AnyConnection,
    hall_id: &str,
    service_code: &str,
    from: i64,
    to: i64,
) -> Result<Vec<(i64, i64)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT slot_start, booked FROM appointment_slots \
         WHERE hall_id = $1 AND service_code = $2 AND slot_start >= $3 AND slot_start <= $4",
    )
    .bind(hall_id)
    .bind(service_code)
    .bind(from)
    .bind(to)
    .fetch_all(c)
    .await?;
    rows.iter().map(|r| Ok((r.try_get("slot_start")?, r.try_get("booked")?))).collect()
}

/// Takes one place of a slot if any is left: `false` when it is full. One UPDATE, so two
/// bookings cannot both take the last place.
pub async fn take_place(
    c: &mut AnyConnection,
    hall_id: &str,
    service_code: &str,
    slot_start: i64,
    capacity: i64,
) -> Result<bool, sqlx::Error> {
    sqlx::query(
        "INSERT INTO appointment_slots (hall_id, service_code, slot_start, booked) VALUES ($1, $2, $3, 0) \
         ON CONFLICT (hall_id, service_code, slot_start) DO NOTHING",
    )
    .bind(hall_id)
    .bind(service_code)
    .bind(slot_start)
    .execute(&mut *c)
    .await?;
    let done = sqlx::query(
        "UPDATE appointment_slots SET booked = booked + 1 \
         WHERE hall_id = $1 AND service_code = $2 AND slot_start = $3 AND booked < $4",
    )
    .bind(hall_id)
    .bind(service_code)
    .bind(slot_start)
    .bind(capacity)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn release_place(
    c: &mut AnyConnection,
    hall_id: &str,
    service_code: &str,
    slot_start: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE appointment_slots SET booked = booked - 1 \
         WHERE hall_id = $1 AND service_code = $2 AND slot_start = $3 AND booked > 0",
    )
    .bind(hall_id)
    .bind(service_code)
    .bind(slot_start)
    .execute(c)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AppointmentRow {
    pub id: String,
    pub hall_id: String,
    pub service_code: String,
    pub account_id: String,
    pub slot_start: i64,
    pub slot_end: i64,
    pub status: String,
    pub ticket: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const APPOINTMENT_COLUMNS: &str =
    "id, hall_id, service_code, account_id, slot_start, slot_end, status, ticket, created_at, updated_at";

pub async fn insert_appointment(c: &mut AnyConnection, a: &AppointmentRow) -> Result<(), sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO appointments ({APPOINTMENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    )))
    .bind(&a.id)
    .bind(&a.hall_id)
    .bind(&a.service_code)
    .bind(&a.account_id)
    .bind(a.slot_start)
    .bind(a.slot_end)
    .bind(&a.status)
    .bind(&a.ticket)
    .bind(a.created_at)
    .bind(a.updated_at)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn appointment(c: &mut AnyConnection, id: &str) -> Result<Option<AppointmentRow>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {APPOINTMENT_COLUMNS} FROM appointments WHERE id = $1")))
        .bind(id)
        .fetch_optional(c)
        .await?;
    row.as_ref().map(AppointmentRow::from_row).transpose()
}

/// A booking of the person for the service that is still to come.
pub async fn open_booking(
    c: &mut AnyConnection,
    account_id: &str,
    service_code: &str,
    now: i64,
) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT id FROM appointments WHERE account_id = $1 AND service_code = $2 AND status = 'booked' \
         AND slot_end > $3 LIMIT 1",
    )
    .bind(account_id)
    .bind(service_code)
    .bind(now)
    .fetch_optional(c)
    .await?;
    row.map(|r| r.try_get("id")).transpose()
}

pub async fn appointments_of(c: &mut AnyConnection, account_id: &str) -> Result<Vec<AppointmentRow>, sqlx::Error> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {APPOINTMENT_COLUMNS} FROM appointments WHERE account_id = $1 ORDER BY slot_start DESC LIMIT 200"
    )))
    .bind(account_id)
    .fetch_all(c)
    .await?;
    rows.iter().map(AppointmentRow::from_row).collect()
}

pub async fn hall_appointments(
    c: &mut AnyConnection,
    hall_id: &str,
    from: i64,
    to: i64,
) -> Result<Vec<AppointmentRow>, sqlx::Error> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {APPOINTMENT_COLUMNS} FROM appointments WHERE hall_id = $1 AND slot_start >= $2 AND slot_start < $3 \
         AND status <> 'cancelled' ORDER BY slot_start, ticket"
    )))
    .bind(hall_id)
    .bind(from)
    .bind(to)
    .fetch_all(c)
    .await?;
    rows.iter().map(AppointmentRow::from_row).collect()
}

/// Changes the status if it still is `from`; `false` otherwise.
pub async fn set_appointment_status(
    c: &mut AnyConnection,
    id: &str,
    from: &str,
    to: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE appointments SET status = $3, updated_at = $4 WHERE id = $1 AND status = $2")
        .bind(id)
        .bind(from)
        .bind(to)
        .bind(now)
        .execute(c)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Moves a booking if nobody changed it since `seen` (its `updated_at`).
pub async fn move_appointment(
    c: &mut AnyConnection,
    id: &str,
    seen: i64,
    start: i64,
    end: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE appointments SET slot_start = $3, slot_end = $4, updated_at = $5 \
         WHERE id = $1 AND updated_at = $2 AND status = 'booked'",
    )
    .bind(id)
    .bind(seen)
    .bind(start)
    .bind(end)
    .bind(now)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Start times of the person's no-shows since `since`, newest first.
pub async fn no_shows_since(c: &mut AnyConnection, account_id: &str, since: i64) -> Result<Vec<i64>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT slot_start FROM appointments WHERE account_id = $1 AND status = 'no_show' AND slot_start >= $2 \
         ORDER BY slot_start DESC",
    )
    .bind(account_id)
    .bind(since)
    .fetch_all(c)
    .await?;
    rows.iter().map(|r| r.try_get("slot_start")).collect()
}

/// Bookings whose slot ended before `now` without a check-in.
pub async fn unattended_before(c: &mut AnyConnection, now: i64) -> Result<Vec<AppointmentRow>, sqlx::Error> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {APPOINTMENT_COLUMNS} FROM appointments WHERE status = 'booked' AND slot_end < $1 LIMIT 1000"
    )))
    .bind(now)
    .fetch_all(c)
    .await?;
    rows.iter().map(AppointmentRow::from_row).collect()
}
