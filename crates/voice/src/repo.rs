//! The voice module's SQL: requests, their numbers, routing tables and corrections.

use sqlx::AnyConnection;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RequestRow {
    pub id: String,
    pub number: String,
    #[sqlx(try_from = "String")]
    pub kind: super::RequestKind,
    #[sqlx(try_from = "String")]
    pub channel: super::Channel,
    pub account_id: Option<String>,
    pub recorded_by: Option<String>,
    pub caller: Option<String>,
    pub idempotency_key: Option<String>,
    pub text: String,
    pub region_code: String,
    pub region_path: String,
    pub address: Option<String>,
    #[sqlx(try_from = "String")]
    pub urgency: super::Urgency,
    pub publishable: i64,
    pub category: String,
    pub proposed: String,
    pub confidence: f64,
    pub reasons: String,
    pub department_id: Option<String>,
    #[sqlx(try_from = "String")]
    pub state: super::Stage,
    pub workflow: String,
    pub state_due: Option<i64>,
    pub reopened: i64,
    pub supervised: i64,
    pub answer: Option<String>,
    pub rating: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// 延期: the working days asked for (0 until asked) and why.
    pub extension_days: i64,
    pub extension_reason: Option<String>,
    /// The open request nearby this one looks like, and the one it was merged into.
    pub similar_to: Option<String>,
    pub merged_into: Option<String>,
}

macro_rules! columns {
    () => {
        "id, number, kind, channel, account_id, recorded_by, caller, idempotency_key, text, region_code, \
    region_path, address, urgency, publishable, category, proposed, confidence, reasons, department_id, state, \
    workflow, state_due, reopened, supervised, answer, rating, created_at, updated_at, extension_days, \
    extension_reason, similar_to, merged_into"
    };
}

/// Reserves the next request number of a China day (counting from 1).
pub async fn next_number(c: &mut AnyConnection, day: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO voice_numbers (day, last) VALUES ($1, 1) \
         ON CONFLICT (day) DO UPDATE SET last = voice_numbers.last + 1 RETURNING last",
    )
    .bind(day)
    .fetch_one(c)
    .await
}

pub async fn insert(c: &mut AnyConnection, r: &RequestRow) -> Result<(), sqlx::Error> {
    sqlx::query(concat!(
        "INSERT INTO voice_requests (",
        columns!(),
        ") VALUES \
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, \
          $23, $24, $25, $26, $27, $28, $29, $30, $31, $32)"
    ))
    .bind(&r.id)
    .bind(&r.number)
    .bind(r.kind.as_str())
    .bind(r.channel.as_str())
    .bind(&r.account_id)
    .bind(&r.recorded_by)
    .bind(&r.caller)
    .bind(&r.idempotency_key)
    .bind(&r.text)
    .bind(&r.region_code)
    .bind(&r.region_path)
    .bind(&r.address)
    .bind(r.urgency.as_str())
    .bind(r.publishable)
    .bind(&r.category)
    .bind(&r.proposed)
    .bind(r.confidence)
    .bind(&r.reasons)
    .bind(&r.department_id)
    .bind(r.state.as_str())
    .bind(&r.workflow)
    .bind(r.state_due)
    .bind(r.reopened)
    .bind(r.supervised)
    .bind(&r.answer)
    .bind(&r.rating)
    .bind(r.created_at)
    .bind(r.updated_at)
    .bind(r.extension_days)
    .bind(&r.extension_reason)
    .bind(&r.similar_to)
    .bind(&r.merged_into)
    .execute(c)
    .await?;
    Ok(())
}

/// Writes what handling changes: category, department, state, case, deadline, answer,
/// rating, the reopen count, the extension and the merge. Guarded by the state it was read in, so two people acting
/// at once cannot both move it.
pub async fn update(c: &mut AnyConnection, r: &RequestRow, read_in: super::Stage) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE voice_requests SET category = $1, department_id = $2, state = $3, workflow = $4, state_due = $5, \
         reopened = $6, answer = $7, rating = $8, updated_at = $9, supervised = $12, extension_days = $13, \
         extension_reason = $14, merged_into = $15 WHERE id = $10 AND state = $11",
    )
    .bind(&r.category)
    .bind(&r.department_id)
    .bind(r.state.as_str())
    .bind(&r.workflow)
    .bind(r.state_due)
    .bind(r.reopened)
    .bind(&r.answer)
    .bind(&r.rating)
    .bind(r.updated_at)
    .bind(&r.id)
    .bind(read_in.as_str())
    .bind(r.supervised)
    .bind(r.extension_days)
    .bind(&r.extension_reason)
    .bind(&r.merged_into)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Open requests whose step is due before `before` and that have not yet had the notice of
/// that level (1: due soon, 2: overdue).
pub async fn due_before(c: &mut AnyConnection, before: i64, now: i64) -> Result<Vec<RequestRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM voice_requests WHERE state IN ('dispatching', 'assigned', 'handling', 'extending') AND state_due < $1 \
         AND (supervised = 0 OR (supervised = 1 AND state_due < $2)) ORDER BY state_due LIMIT 500"
    ))
    .bind(before)
    .bind(now)
    .fetch_all(c)
    .await
}

/// Answered requests whose time to rate has passed.
pub async fn unrated_before(c: &mut AnyConnection, now: i64) -> Result<Vec<RequestRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM voice_requests WHERE state = 'answered' AND state_due < $1 ORDER BY state_due LIMIT 500"
    ))
    .bind(now)
    .fetch_all(c)
    .await
}

/// Marks the notice of a level given, unless the request moved on meanwhile.
pub async fn mark_supervised(
    c: &mut AnyConnection,
    id: &str,
    state: super::Stage,
    level: i64,
) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("UPDATE voice_requests SET supervised = $1 WHERE id = $2 AND state = $3 AND supervised < $1")
            .bind(level)
            .bind(id)
            .bind(state.as_str())
            .execute(c)
            .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn count(c: &mut AnyConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM voice_requests").fetch_one(c).await
}

pub async fn request(c: &mut AnyConnection, id_or_number: &str) -> Result<Option<RequestRow>, sqlx::Error> {
    sqlx::query_as(concat!("SELECT ", columns!(), " FROM voice_requests WHERE id = $1 OR number = $1"))
        .bind(id_or_number)
        .fetch_optional(c)
        .await
}

/// The call an operator recorded under a key.
pub async fn call_by_idempotency_key(
    c: &mut AnyConnection,
    operator_id: &str,
    key: &str,
) -> Result<Option<RequestRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM voice_requests WHERE recorded_by = $1 AND idempotency_key = $2"
    ))
    .bind(operator_id)
    .bind(key)
    .fetch_optional(c)
    .await
}

pub async fn by_idempotency_key(
    c: &mut AnyConnection,
    account_id: &str,
    key: &str,
) -> Result<Option<RequestRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM voice_requests WHERE account_id = $1 AND idempotency_key = $2"
    ))
    .bind(account_id)
    .bind(key)
    .fetch_optional(c)
    .await
}

/// A person's requests, newest first.
pub async fn of_account(c: &mut AnyConnection, account_id: &str, limit: i64) -> Result<Vec<RequestRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM voice_requests WHERE account_id = $1 ORDER BY created_at DESC, number DESC LIMIT $2"
    ))
    .bind(account_id)
    .bind(limit)
    .fetch_all(c)
    .await
}

/// Requests waiting for a dispatcher (to dispatch, or an extension to decide) within a region
/// subtree (`lower <= path < upper`), oldest first.
pub async fn queue(
    c: &mut AnyConnection,
    lower: &str,
    upper: &str,
    limit: i64,
) -> Result<Vec<RequestRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM voice_requests WHERE state IN ('dispatching', 'extending') AND region_path >= $1 \
         AND region_path < $2 ORDER BY created_at, number LIMIT $3"
    ))
    .bind(lower)
    .bind(upper)
    .bind(limit)
    .fetch_all(c)
    .await
}

/// A department's open requests (to sign for, in handling, waiting for a rating), the
/// nearest deadline first.
pub async fn department_open(
    c: &mut AnyConnection,
    department_id: &str,
    limit: i64,
) -> Result<Vec<RequestRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM voice_requests WHERE department_id = $1 \
         AND state IN ('assigned', 'handling', 'extending', 'answered') ORDER BY state_due, created_at LIMIT $2"
    ))
    .bind(department_id)
    .bind(limit)
    .fetch_all(c)
    .await
}

/// Every request after `after` in id order, `limit` at a time (a recount's walk).
pub async fn after(c: &mut AnyConnection, after: &str, limit: i64) -> Result<Vec<RequestRow>, sqlx::Error> {
    sqlx::query_as(concat!("SELECT ", columns!(), " FROM voice_requests WHERE id > $1 ORDER BY id LIMIT $2"))
        .bind(after)
        .bind(limit)
        .fetch_all(c)
        .await
}

/// Requests with a department, within a region subtree.
pub async fn with_department(c: &mut AnyConnection, lower: &str, upper: &str) -> Result<Vec<RequestRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM voice_requests WHERE department_id IS NOT NULL AND region_path >= $1 AND region_path < $2"
    ))
    .bind(lower)
    .bind(upper)
    .fetch_all(c)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RouteRow {
    pub region_code: String,
    pub department_code: String,
}

/// The routes of a category in any of these regions.
pub async fn routes_for(c: &mut AnyConnection, category: &str, regions: &[&str]) -> Result<Vec<RouteRow>, sqlx::Error> {
    if regions.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (2..regions.len() + 2).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT region_code, department_code FROM voice_routes WHERE category = $1 AND region_code IN ({})",
        placeholders.join(", ")
    );
    // Only numbered placeholders are formatted in; the values are bound.
    let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(category);
    for r in regions {
        q = q.bind(*r);
    }
    q.fetch_all(c).await
}

pub async fn set_route(
    c: &mut AnyConnection,
    region_code: &str,
    category: &str,
    department_code: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO voice_routes (region_code, category, department_code) VALUES ($1, $2, $3) \
         ON CONFLICT (region_code, category) DO UPDATE SET department_code = $3",
    )
    .bind(region_code)
    .bind(category)
    .bind(department_code)
    .execute(c)
    .await?;
    Ok(())
}

/// Keeps a dispatcher's change of category as a labelled example for the next training run.
pub async fn record_correction(
    c: &mut AnyConnection,
    request_id: &str,
    text: &str,
    proposed: &str,
    chosen: &str,
    by: &str,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO voice_corrections (request_id, text, proposed, chosen, by_account, at) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (request_id) DO UPDATE SET chosen = $4, by_account = $5, at = $6",
    )
    .bind(request_id)
    .bind(text)
    .bind(proposed)
    .bind(chosen)
    .bind(by)
    .bind(at)
    .execute(c)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CorrectionRow {
    pub text: String,
    pub chosen: String,
}

/// Every correction, oldest first.
pub async fn corrections(c: &mut AnyConnection) -> Result<Vec<CorrectionRow>, sqlx::Error> {
    sqlx::query_as("SELECT text, chosen FROM voice_corrections ORDER BY at, request_id").fetch_all(c).await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Open311ClientRow {
    pub id: String,
    pub name: String,
    pub region_code: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

pub async fn insert_open311_client(
    c: &mut AnyConnection,
    row: &Open311ClientRow,
    key_hash: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO open311_clients (id, name, key_hash, region_code, created_at, revoked_at) \
         VALUES ($1, $2, $3, $4, $5, NULL)",
    )
    .bind(&row.id)
    .bind(&row.name)
    .bind(key_hash)
    .bind(&row.region_code)
    .bind(row.created_at)
    .execute(c)
    .await?;
    Ok(())
}

/// The client holding this key, unless revoked.
pub async fn open311_client_by_key(
    c: &mut AnyConnection,
    key_hash: &str,
) -> Result<Option<Open311ClientRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, name, region_code, created_at, revoked_at FROM open311_clients \
         WHERE key_hash = $1 AND revoked_at IS NULL",
    )
    .bind(key_hash)
    .fetch_optional(c)
    .await
}

pub async fn open311_clients(c: &mut AnyConnection) -> Result<Vec<Open311ClientRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, name, region_code, created_at, revoked_at FROM open311_clients ORDER BY name")
        .fetch_all(c)
        .await
}

pub async fn revoke_open311_client(c: &mut AnyConnection, name: &str, at: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE open311_clients SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL")
        .bind(at)
        .bind(name)
        .execute(c)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// What a public list is narrowed to: request numbers, categories, and open (false) or
/// answered (true); empty lists and `None` narrow nothing.
pub struct PublicFilter<'a> {
    pub numbers: &'a [String],
    pub categories: &'a [String],
    pub answered: Option<bool>,
}

/// Requests open to the public (their authors agreed, or an Open311 client posted them),
/// created within `[from, to)` and matching the filter, newest first.
pub async fn public_requests(
    c: &mut AnyConnection,
    from: i64,
    to: i64,
    filter: &PublicFilter<'_>,
    limit: i64,
) -> Result<Vec<RequestRow>, sqlx::Error> {
    // Only numbered placeholders are formatted in; every value is bound.
    let mut sql = String::from(concat!(
        "SELECT ",
        columns!(),
        " FROM voice_requests WHERE publishable = 1 AND created_at >= $1 AND created_at < $2"
    ));
    let mut next = 4;
    let mut placeholders = |n: usize| {
        let list: Vec<String> = (next..next + n).map(|i| format!("${i}")).collect();
        next += n;
        list.join(", ")
    };
    if !filter.numbers.is_empty() {
        sql.push_str(&format!(" AND number IN ({})", placeholders(filter.numbers.len())));
    }
    if !filter.categories.is_empty() {
        sql.push_str(&format!(" AND category IN ({})", placeholders(filter.categories.len())));
    }
    match filter.answered {
        Some(true) => sql.push_str(" AND state IN ('answered', 'closed')"),
        Some(false) => sql.push_str(" AND state NOT IN ('answered', 'closed')"),
        None => {}
    }
    sql.push_str(" ORDER BY created_at DESC, number DESC LIMIT $3");
    let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(from).bind(to).bind(limit);
    for v in filter.numbers.iter().chain(filter.categories) {
        q = q.bind(v.as_str());
    }
    q.fetch_all(c).await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Candidate {
    pub id: String,
    pub text: String,
    pub category: String,
}

/// Open requests of a region since an instant, not merged: the candidates a new request
/// may repeat, newest first.
pub async fn open_in_region_since(
    c: &mut AnyConnection,
    region_code: &str,
    since: i64,
    limit: i64,
) -> Result<Vec<Candidate>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, text, category FROM voice_requests WHERE region_code = $1 AND created_at >= $2 \
         AND merged_into IS NULL AND state NOT IN ('closed', 'merged') ORDER BY created_at DESC LIMIT $3",
    )
    .bind(region_code)
    .bind(since)
    .bind(limit)
    .fetch_all(c)
    .await
}

/// Requests merged into this one and waiting for its answer.
pub async fn merged_waiting(c: &mut AnyConnection, into: &str) -> Result<Vec<RequestRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM voice_requests WHERE merged_into = $1 AND state = 'merged' ORDER BY created_at"
    ))
    .bind(into)
    .fetch_all(c)
    .await
}

/// How many requests are about the same thing as the group rooted at `root`, the root
/// included: those merged into it or proposed as repeating it.
pub async fn group_size(c: &mut AnyConnection, root: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM voice_requests WHERE id = $1 OR merged_into = $1 OR similar_to = $1")
        .bind(root)
        .fetch_one(c)
        .await
}

/// The number of a request, for links between requests.
pub async fn number_of(c: &mut AnyConnection, id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT number FROM voice_requests WHERE id = $1").bind(id).fetch_optional(c).await
}

/// Answered requests whose authors agreed to publish them, the latest answered first.
pub async fn published_answers(c: &mut AnyConnection, limit: i64, offset: i64) -> Result<Vec<RequestRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM voice_requests WHERE publishable = 1 AND state IN ('answered', 'closed') AND answer IS NOT NULL \
         ORDER BY updated_at DESC, number DESC LIMIT $1 OFFSET $2"
    ))
    .bind(limit)
    .bind(offset)
    .fetch_all(c)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RouteLine {
    pub region_code: String,
    pub category: String,
    pub department_code: String,
}

/// Every routing table, by region and category.
pub async fn all_routes(c: &mut AnyConnection) -> Result<Vec<RouteLine>, sqlx::Error> {
    sqlx::query_as("SELECT region_code, category, department_code FROM voice_routes ORDER BY region_code, category")
        .fetch_all(c)
        .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PhotoRow {
    pub document_id: String,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
}

pub async fn insert_photo(
    c: &mut AnyConnection,
    request_id: &str,
    position: i64,
    p: &PhotoRow,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO voice_photos (request_id, document_id, position, filename, content_type, size) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(request_id)
    .bind(&p.document_id)
    .bind(position)
    .bind(&p.filename)
    .bind(&p.content_type)
    .bind(p.size)
    .execute(c)
    .await?;
    Ok(())
}

/// A request's photos, in the order the person gave them.
pub async fn photos_of(c: &mut AnyConnection, request_id: &str) -> Result<Vec<PhotoRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT document_id, filename, content_type, size FROM voice_photos WHERE request_id = $1 ORDER BY position",
    )
    .bind(request_id)
    .fetch_all(c)
    .await
}
