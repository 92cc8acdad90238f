//! The openness module's SQL: documents and their revisions, guides, requests for
//! information and the annual report's entered figures.

use sqlx::AnyConnection;

use super::{AnswerType, ApplicantKind, Change, Delivery, DocumentKind, LegalGround, RequestState, Theme, Validity};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DocumentRow {
    pub id: String,
    pub index_number: String,
    pub department_id: String,
    pub region_path: String,
    #[sqlx(try_from = "String")]
    pub kind: DocumentKind,
    #[sqlx(try_from = "String")]
    pub theme: Theme,
    pub title: String,
    pub document_number: Option<String>,
    pub written_on: String,
    pub published_at: i64,
    #[sqlx(try_from = "String")]
    pub validity: Validity,
    pub interprets: Option<String>,
    pub version: i64,
    pub body: String,
    pub updated_at: i64,
}

macro_rules! document_columns {
    () => {
        "id, index_number, department_id, region_path, kind, theme, title, document_number, written_on, \
         published_at, validity, interprets, version, body, updated_at"
    };
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RevisionRow {
    pub document_id: String,
    pub version: i64,
    #[sqlx(try_from = "String")]
    pub change: Change,
    pub title: String,
    pub document_number: Option<String>,
    pub written_on: String,
    #[sqlx(try_from = "String")]
    pub theme: Theme,
    pub body: String,
    pub note: Option<String>,
    pub sha256: String,
    pub ledger_index: i64,
    pub changed_by: String,
    pub changed_at: i64,
}

/// Reserves a department's next document number of a year (counting from 1).
pub async fn next_index_number(c: &mut AnyConnection, department_id: &str, year: i32) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO disclosure_numbers (department_id, year, last) VALUES ($1, $2, 1) \
         ON CONFLICT (department_id, year) DO UPDATE SET last = disclosure_numbers.last + 1 RETURNING last",
    )
    .bind(department_id)
    .bind(i64::from(year))
    .fetch_one(c)
    .await
}

pub async fn insert_document(c: &mut AnyConnection, d: &DocumentRow) -> Result<(), sqlx::Error> {
    sqlx::query(concat!(
        "INSERT INTO disclosure_documents (",
        document_columns!(),
        ") VALUES \
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
    ))
    .bind(&d.id)
    .bind(&d.index_number)
    .bind(&d.department_id)
    .bind(&d.region_path)
    .bind(d.kind.as_str())
    .bind(d.theme.as_str())
    .bind(&d.title)
    .bind(&d.document_number)
    .bind(&d.written_on)
    .bind(d.published_at)
    .bind(d.validity.as_str())
    .bind(&d.interprets)
    .bind(d.version)
    .bind(&d.body)
    .bind(d.updated_at)
    .execute(c)
    .await?;
    Ok(())
}

/// Writes a revision's fields over the document, guarded by the version it was read at, so
/// two officers revising at once cannot both succeed.
pub async fn update_document(c: &mut AnyConnection, d: &DocumentRow, read_at: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE disclosure_documents SET theme = $1, title = $2, document_number = $3, written_on = $4, \
         validity = $5, version = $6, body = $7, updated_at = $8 WHERE id = $9 AND version = $10",
    )
    .bind(d.theme.as_str())
    .bind(&d.title)
    .bind(&d.document_number)
    .bind(&d.written_on)
    .bind(d.validity.as_str())
    .bind(d.version)
    .bind(&d.body)
    .bind(d.updated_at)
    .bind(&d.id)
    .bind(read_at)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn document(c: &mut AnyConnection, id: &str) -> Result<Option<DocumentRow>, sqlx::Error> {
    sqlx::query_as(concat!("SELECT ", document_columns!(), " FROM disclosure_documents WHERE id = $1"))
        .bind(id)
        .fetch_optional(c)
        .await
}

/// Every document, newest publication first (the search index is built from these).
pub async fn documents(c: &mut AnyConnection) -> Result<Vec<DocumentRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        document_columns!(),
        " FROM disclosure_documents ORDER BY published_at DESC, index_number DESC"
    ))
    .fetch_all(c)
    .await
}

/// How many documents there are, their versions summed, and when the last changed: when
/// any moves, the search index is stale (every revision raises a version, even one made in
/// the same millisecond as the last).
pub async fn generation(c: &mut AnyConnection) -> Result<(i64, i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT COUNT(*), CAST(COALESCE(SUM(version), 0) AS BIGINT), CAST(COALESCE(MAX(updated_at), 0) AS BIGINT) \
         FROM disclosure_documents",
    )
    .fetch_one(c)
    .await
}

/// The interpretations (政策解读) of a document: (id, title).
pub async fn interpretations(c: &mut AnyConnection, id: &str) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as("SELECT id, title FROM disclosure_documents WHERE interprets = $1 ORDER BY published_at")
        .bind(id)
        .fetch_all(c)
        .await
}

pub async fn insert_revision(c: &mut AnyConnection, r: &RevisionRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO disclosure_revisions (document_id, version, change, title, document_number, written_on, theme, \
         body, note, sha256, ledger_index, changed_by, changed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(&r.document_id)
    .bind(r.version)
    .bind(r.change.as_str())
    .bind(&r.title)
    .bind(&r.document_number)
    .bind(&r.written_on)
    .bind(r.theme.as_str())
    .bind(&r.body)
    .bind(&r.note)
    .bind(&r.sha256)
    .bind(r.ledger_index)
    .bind(&r.changed_by)
    .bind(r.changed_at)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn revisions(c: &mut AnyConnection, id: &str) -> Result<Vec<RevisionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT document_id, version, change, title, document_number, written_on, theme, body, note, sha256, \
         ledger_index, changed_by, changed_at FROM disclosure_revisions WHERE document_id = $1 ORDER BY version",
    )
    .bind(id)
    .fetch_all(c)
    .await
}

pub async fn guide(c: &mut AnyConnection, department_id: &str) -> Result<Option<(String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT body, updated_at FROM disclosure_guides WHERE department_id = $1")
        .bind(department_id)
        .fetch_optional(c)
        .await
}

pub async fn set_guide(
    c: &mut AnyConnection,
    department_id: &str,
    body: &str,
    by: &str,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO disclosure_guides (department_id, body, updated_by, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (department_id) DO UPDATE SET body = $2, updated_by = $3, updated_at = $4",
    )
    .bind(department_id)
    .bind(body)
    .bind(by)
    .bind(at)
    .execute(c)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RequestRow {
    pub id: String,
    pub number: String,
    pub account_id: String,
    #[sqlx(try_from = "String")]
    pub applicant_kind: ApplicantKind,
    pub department_id: String,
    pub region_path: String,
    pub description: String,
    pub purpose: Option<String>,
    #[sqlx(try_from = "String")]
    pub delivery: Delivery,
    pub idempotency_key: Option<String>,
    #[sqlx(try_from = "String")]
    pub state: RequestState,
    pub received_at: i64,
    pub clock_from: String,
    pub due_on: Option<String>,
    pub extension_days: i64,
    pub extension_reason: Option<String>,
    pub clarification_ask: Option<String>,
    pub clarification: Option<String>,
    pub answer_type: Option<String>,
    pub answer_text: Option<String>,
    pub legal_ground: Option<String>,
    pub referral: Option<String>,
    pub answered_by: Option<String>,
    pub answered_at: Option<i64>,
    /// 督办 of the present deadline: 0 none, 1 told it is near, 2 told it is past.
    pub supervised: i64,
    pub updated_at: i64,
}

impl RequestRow {
    pub fn answer_type(&self) -> Result<Option<AnswerType>, strum::ParseError> {
        self.answer_type.as_deref().map(str::parse).transpose()
    }

    pub fn legal_ground(&self) -> Result<Option<LegalGround>, strum::ParseError> {
        self.legal_ground.as_deref().map(str::parse).transpose()
    }
}

macro_rules! request_columns {
    () => {
        "id, number, account_id, applicant_kind, department_id, region_path, description, purpose, delivery, \
         idempotency_key, state, received_at, clock_from, due_on, extension_days, extension_reason, \
         clarification_ask, clarification, answer_type, answer_text, legal_ground, referral, answered_by, \
         answered_at, supervised, updated_at"
    };
}

/// Reserves the next request number of a China day (counting from 1).
pub async fn next_request_number(c: &mut AnyConnection, day: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO disclosure_request_numbers (day, last) VALUES ($1, 1) \
         ON CONFLICT (day) DO UPDATE SET last = disclosure_request_numbers.last + 1 RETURNING last",
    )
    .bind(day)
    .fetch_one(c)
    .await
}

pub async fn insert_request(c: &mut AnyConnection, r: &RequestRow) -> Result<(), sqlx::Error> {
    sqlx::query(concat!(
        "INSERT INTO disclosure_requests (",
        request_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
         $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26)"
    ))
    .bind(&r.id)
    .bind(&r.number)
    .bind(&r.account_id)
    .bind(r.applicant_kind.as_str())
    .bind(&r.department_id)
    .bind(&r.region_path)
    .bind(&r.description)
    .bind(&r.purpose)
    .bind(r.delivery.as_str())
    .bind(&r.idempotency_key)
    .bind(r.state.as_str())
    .bind(r.received_at)
    .bind(&r.clock_from)
    .bind(&r.due_on)
    .bind(r.extension_days)
    .bind(&r.extension_reason)
    .bind(&r.clarification_ask)
    .bind(&r.clarification)
    .bind(&r.answer_type)
    .bind(&r.answer_text)
    .bind(&r.legal_ground)
    .bind(&r.referral)
    .bind(&r.answered_by)
    .bind(r.answered_at)
    .bind(r.supervised)
    .bind(r.updated_at)
    .execute(c)
    .await?;
    Ok(())
}

/// Writes what handling changes, guarded by the state and time it was read at.
pub async fn update_request(c: &mut AnyConnection, r: &RequestRow, read_at: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE disclosure_requests SET state = $1, clock_from = $2, due_on = $3, extension_days = $4, \
         extension_reason = $5, clarification_ask = $6, clarification = $7, answer_type = $8, answer_text = $9, \
         legal_ground = $10, referral = $11, answered_by = $12, answered_at = $13, updated_at = $14, \
         supervised = $17 WHERE id = $15 AND updated_at = $16",
    )
    .bind(r.state.as_str())
    .bind(&r.clock_from)
    .bind(&r.due_on)
    .bind(r.extension_days)
    .bind(&r.extension_reason)
    .bind(&r.clarification_ask)
    .bind(&r.clarification)
    .bind(&r.answer_type)
    .bind(&r.answer_text)
    .bind(&r.legal_ground)
    .bind(&r.referral)
    .bind(&r.answered_by)
    .bind(r.answered_at)
    .bind(r.updated_at)
    .bind(&r.id)
    .bind(read_at)
    .bind(r.supervised)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Requests in handling whose last day is `cutoff` or earlier and that have not been told
/// of the latest level yet (2, past).
pub async fn due_requests(c: &mut AnyConnection, cutoff: &str) -> Result<Vec<RequestRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        request_columns!(),
        " FROM disclosure_requests WHERE state = 'handling' AND due_on <= $1 AND supervised < 2 \
         ORDER BY due_on LIMIT 1000"
    ))
    .bind(cutoff)
    .fetch_all(c)
    .await
}

/// Marks the level of 督办 told, unless the request moved or was told already.
pub async fn mark_supervised(
    c: &mut AnyConnection,
    id: &str,
    (read_at, level): (i64, i64),
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE disclosure_requests SET supervised = $1 WHERE id = $2 AND updated_at = $3 AND supervised < $1",
    )
    .bind(level)
    .bind(id)
    .bind(read_at)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn request(c: &mut AnyConnection, id: &str) -> Result<Option<RequestRow>, sqlx::Error> {
    sqlx::query_as(concat!("SELECT ", request_columns!(), " FROM disclosure_requests WHERE id = $1"))
        .bind(id)
        .fetch_optional(c)
        .await
}

pub async fn request_by_key(
    c: &mut AnyConnection,
    account_id: &str,
    key: &str,
) -> Result<Option<RequestRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        request_columns!(),
        " FROM disclosure_requests WHERE account_id = $1 AND idempotency_key = $2"
    ))
    .bind(account_id)
    .bind(key)
    .fetch_optional(c)
    .await
}

pub async fn requests_of_account(c: &mut AnyConnection, account_id: &str) -> Result<Vec<RequestRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        request_columns!(),
        " FROM disclosure_requests WHERE account_id = $1 ORDER BY received_at DESC LIMIT 500"
    ))
    .bind(account_id)
    .fetch_all(c)
    .await
}

/// A department's requests: the open ones, and those answered since `answered_since`.
pub async fn requests_of_department(
    c: &mut AnyConnection,
    department_id: &str,
    answered_since: i64,
) -> Result<Vec<RequestRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        request_columns!(),
        " FROM disclosure_requests WHERE department_id = $1 \
         AND (state <> 'answered' OR answered_at >= $2) ORDER BY received_at LIMIT 2000"
    ))
    .bind(department_id)
    .bind(answered_since)
    .fetch_all(c)
    .await
}

/// A department's requests received before `before` and not answered before `from`: what
/// a year's report counts (received in the year, carried over into it, or out of it).
pub async fn requests_for_report(
    c: &mut AnyConnection,
    department_id: &str,
    (from, before): (i64, i64),
) -> Result<Vec<RequestRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        request_columns!(),
        " FROM disclosure_requests WHERE department_id = $1 AND received_at < $2 \
         AND (answered_at IS NULL OR answered_at >= $3)"
    ))
    .bind(department_id)
    .bind(before)
    .bind(from)
    .fetch_all(c)
    .await
}

/// A department's documents with the revisions that fall in a period: (kind, change).
pub async fn changes_in(
    c: &mut AnyConnection,
    department_id: &str,
    (from, before): (i64, i64),
) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT d.kind, r.change FROM disclosure_revisions r JOIN disclosure_documents d ON d.id = r.document_id \
         WHERE d.department_id = $1 AND r.changed_at >= $2 AND r.changed_at < $3",
    )
    .bind(department_id)
    .bind(from)
    .bind(before)
    .fetch_all(c)
    .await
}

/// A department's documents in force at an instant: (kind, how many).
pub async fn in_force_at(
    c: &mut AnyConnection,
    department_id: &str,
    at: i64,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT d.kind, COUNT(*) FROM disclosure_documents d WHERE d.department_id = $1 AND d.published_at < $2 \
         AND NOT EXISTS (SELECT 1 FROM disclosure_revisions r WHERE r.document_id = d.id \
                         AND r.change = 'repealed' AND r.changed_at < $2) \
         GROUP BY d.kind",
    )
    .bind(department_id)
    .bind(at)
    .fetch_all(c)
    .await
}

pub async fn report_inputs(
    c: &mut AnyConnection,
    department_id: &str,
    year: i32,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT body FROM disclosure_report_inputs WHERE department_id = $1 AND year = $2")
        .bind(department_id)
        .bind(i64::from(year))
        .fetch_optional(c)
        .await
}

pub async fn set_report_inputs(
    c: &mut AnyConnection,
    department_id: &str,
    year: i32,
    body: &str,
    (by, at): (&str, i64),
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO disclosure_report_inputs (department_id, year, body, updated_by, updated_at) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (department_id, year) DO UPDATE SET body = $3, updated_by = $4, updated_at = $5",
    )
    .bind(department_id)
    .bind(i64::from(year))
    .bind(body)
    .bind(by)
    .bind(at)
    .execute(c)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PublicRecordRow {
    pub id: String,
    #[sqlx(try_from = "String")]
    pub kind: super::LedgerKind,
    pub subject_code: String,
    pub subject_name: String,
    pub period: String,
    pub region_path: String,
    pub department_id: Option<String>,
    pub body: String,
    pub sha256: String,
    pub ledger_index: i64,
    pub corrects: Option<String>,
    pub published_by: String,
    pub published_at: i64,
}

pub async fn insert_public_record(c: &mut AnyConnection, r: &PublicRecordRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO public_records (id, kind, subject_code, subject_name, period, region_path, department_id, body, \
         sha256, ledger_index, corrects, published_by, published_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(&r.id)
    .bind(r.kind.as_str())
    .bind(&r.subject_code)
    .bind(&r.subject_name)
    .bind(&r.period)
    .bind(&r.region_path)
    .bind(&r.department_id)
    .bind(&r.body)
    .bind(&r.sha256)
    .bind(r.ledger_index)
    .bind(&r.corrects)
    .bind(&r.published_by)
    .bind(r.published_at)
    .execute(c)
    .await?;
    Ok(())
}

/// A community's statements or a project's stages, oldest first.
pub async fn public_records(
    c: &mut AnyConnection,
    kind: super::LedgerKind,
    subject_code: &str,
) -> Result<Vec<PublicRecordRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, kind, subject_code, subject_name, period, region_path, department_id, body, sha256, \
         ledger_index, corrects, published_by, published_at FROM public_records \
         WHERE kind = $1 AND subject_code = $2 ORDER BY published_at, ledger_index",
    )
    .bind(kind.as_str())
    .bind(subject_code)
    .fetch_all(c)
    .await
}

/// The communities or projects with records: (code, name, records, last published), newest
/// first.
pub async fn public_subjects(
    c: &mut AnyConnection,
    kind: super::LedgerKind,
) -> Result<Vec<(String, String, i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT subject_code, MIN(subject_name), COUNT(*), MAX(published_at) FROM public_records WHERE kind = $1 \
         GROUP BY subject_code ORDER BY MAX(published_at) DESC LIMIT 1000",
    )
    .bind(kind.as_str())
    .fetch_all(c)
    .await
}
