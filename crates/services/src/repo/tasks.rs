//! Tasks, the inbox, time limits and notifications.

use sqlx::AnyConnection;

/// What a task is for: the values of `tasks.kind`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString, serde::Serialize, utoipa::ToSchema,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// A step of a case's workflow.
    Case,
    /// Answering a bad rating (整改) to the applicant.
    Rectification,
}

impl TaskKind {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
    pub fn is_rectification(self) -> bool {
        self == TaskKind::Rectification
    }
}

impl TryFrom<String> for TaskKind {
    type Error = strum::ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// Where a task stands: the values of `tasks.status` (the table's CHECK admits no other).
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString)]
#[strum(serialize_all = "snake_case")]
pub enum TaskStatus {
    /// In someone's inbox.
    Open,
    /// Its step was taken.
    Done,
    /// Its case ended another way (withdrawn by the applicant).
    Cancelled,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl TryFrom<String> for TaskStatus {
    type Error = strum::ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TaskRow {
    pub id: String,
    /// A stored kind that is not one is a decoding fault, never read as some other kind.
    #[sqlx(try_from = "String")]
    pub kind: TaskKind,
    pub application_id: String,
    pub state: String,
    pub branch: Option<String>,
    pub role: String,
    pub department_id: String,
    pub region_path: String,
    pub assignee_id: Option<String>,
    #[sqlx(try_from = "String")]
    pub status: TaskStatus,
    pub due_at: Option<i64>,
    pub warned_at: Option<i64>,
    pub escalated_to: Option<String>,
    pub created_at: i64,
}

impl TaskRow {
    pub fn is_open(&self) -> bool {
        self.status == TaskStatus::Open
    }
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
                .bind(t.kind.as_str())
                .bind(&t.application_id)
                .bind(&t.state)
                .bind(&t.branch)
                .bind(&t.role)
                .bind(&t.department_id)
                .bind(&t.region_path)
                .bind(&t.assignee_id)
                .bind(t.status.as_str())
                .bind(t.due_at)
                .bind(t.created_at)
        },
    )
    .await
}

pub async fn open_tasks_of(c: &mut AnyConnection, application_id: &str) -> Result<Vec<TaskRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {TASK_COLUMNS} FROM tasks t WHERE t.application_id = $1 AND t.status = 'open' ORDER BY t.created_at"
    )))
    .bind(application_id)
    .fetch_all(c)
    .await
}

pub async fn close_task(c: &mut AnyConnection, id: &str, status: TaskStatus, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE tasks SET status = $1, closed_at = $2 WHERE id = $3 AND status = 'open'")
        .bind(status.as_str())
        .bind(now)
        .bind(id)
        .execute(c)
        .await?;
    Ok(())
}

pub async fn task(c: &mut AnyConnection, id: &str) -> Result<Option<TaskRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {TASK_COLUMNS} FROM tasks t WHERE t.id = $1")))
        .bind(id)
        .fetch_optional(c)
        .await
}

pub async fn assign_task(c: &mut AnyConnection, id: &str, assignee: Option<&str>) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE tasks SET assignee_id = $1 WHERE id = $2").bind(assignee).bind(id).execute(c).await?;
    Ok(())
}

/// A task with what the inbox shows of its case.
#[derive(sqlx::FromRow)]
pub struct InboxRow {
    #[sqlx(flatten)]
    pub task: TaskRow,
    pub number: String,
    pub service_id: String,
    pub service_version: i64,
    #[sqlx(rename = "a_status")]
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
    let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(department_id).bind(region_prefix).bind(limit);
    for r in roles {
        q = q.bind(r);
    }
    q.fetch_all(c).await
}

/// Open tasks due before `before` that have not been warned about / escalated.
pub async fn tasks_due(c: &mut AnyConnection, before: i64, limit: i64) -> Result<Vec<TaskRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {TASK_COLUMNS} FROM tasks t WHERE t.status = 'open' AND t.due_at IS NOT NULL AND t.due_at < $1 \
         AND (t.warned_at IS NULL OR t.escalated_at IS NULL) ORDER BY t.due_at LIMIT $2"
    )))
    .bind(before)
    .bind(limit)
    .fetch_all(c)
    .await
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

/// A notification as stored: read when it has a time it was read.
#[derive(sqlx::FromRow)]
struct NotificationColumns {
    id: String,
    application_id: Option<String>,
    text_zh: String,
    text_en: String,
    created_at: i64,
    read_at: Option<i64>,
}

impl From<NotificationColumns> for NotificationRow {
    fn from(n: NotificationColumns) -> Self {
        NotificationRow {
            id: n.id,
            application_id: n.application_id,
            text_zh: n.text_zh,
            text_en: n.text_en,
            created_at: n.created_at,
            read: n.read_at.is_some(),
        }
    }
}

pub async fn notifications(
    c: &mut AnyConnection,
    account_id: &str,
    limit: i64,
) -> Result<Vec<NotificationRow>, sqlx::Error> {
    let rows = sqlx::query_as::<_, NotificationColumns>(
        "SELECT id, application_id, text_zh, text_en, created_at, read_at FROM notifications \
         WHERE account_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
    )
    .bind(account_id)
    .bind(limit)
    .fetch_all(c)
    .await?;
    Ok(rows.into_iter().map(NotificationRow::from).collect())
}

pub async fn mark_notifications_read(c: &mut AnyConnection, account_id: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE notifications SET read_at = $1 WHERE account_id = $2 AND read_at IS NULL")
        .bind(now)
        .bind(account_id)
        .execute(c)
        .await?;
    Ok(())
}
