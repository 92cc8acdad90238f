//! SQL for the exchange tables (migrations 0012 and 0013).

use std::sync::LazyLock;

use sqlx::FromRow;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

/// A row whose columns carry a prefix (`a_id`, `r_id`): a join of tables that share
/// column names.
struct Prefixed<'r>(&'r AnyRow, &'static str);

impl Prefixed<'_> {
    fn try_get<'r, T>(&'r self, name: &str) -> Result<T, sqlx::Error>
    where
        T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
    {
        if self.1.is_empty() { self.0.try_get(name) } else { self.0.try_get(format!("{}{name}", self.1).as_str()) }
    }
}

/// `alias.column AS alias_column, …` for a join.
fn aliased(alias: &str, columns: &str) -> String {
    columns.split(',').map(str::trim).map(|c| format!("{alias}.{c} AS {alias}_{c}")).collect::<Vec<_>>().join(", ")
}

#[derive(Debug, Clone)]
pub struct RegistryRow {
    pub id: String,
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    pub department_id: String,
    pub description: String,
    pub update_frequency: String,
    pub key_field: String,
    pub key_domain: String,
    pub mediator_trusted: bool,
    pub database_code: Option<String>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

macro_rules! registry_columns {
    () => {
        "id, code, name_zh, name_en, department_id, description, update_frequency, key_field, key_domain, \
         mediator_access, database_code, version, created_at, updated_at"
    };
}
const REGISTRY: &str = concat!("SELECT ", registry_columns!(), " FROM registries");

fn registry_row(r: &AnyRow) -> Result<RegistryRow, sqlx::Error> {
    registry_row_at(&Prefixed(r, ""))
}

fn registry_row_at(r: &Prefixed<'_>) -> Result<RegistryRow, sqlx::Error> {
    Ok(RegistryRow {
        id: r.try_get("id")?,
        code: r.try_get("code")?,
        name_zh: r.try_get("name_zh")?,
        name_en: r.try_get("name_en")?,
        department_id: r.try_get("department_id")?,
        description: r.try_get("description")?,
        update_frequency: r.try_get("update_frequency")?,
        key_field: r.try_get("key_field")?,
        key_domain: r.try_get("key_domain")?,
        mediator_trusted: r.try_get::<String>("mediator_access")? == "trusted",
        database_code: r.try_get("database_code")?,
        version: r.try_get("version")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

pub async fn registry_by_code(c: &mut AnyConnection, code: &str) -> Result<Option<RegistryRow>, sqlx::Error> {
    let q = format!("{REGISTRY} WHERE code = $1");
    sqlx::query(sqlx::AssertSqlSafe(q)).bind(code).fetch_optional(c).await?.as_ref().map(registry_row).transpose()
}

pub async fn registry_by_id(c: &mut AnyConnection, id: &str) -> Result<Option<RegistryRow>, sqlx::Error> {
    let q = format!("{REGISTRY} WHERE id = $1");
    sqlx::query(sqlx::AssertSqlSafe(q)).bind(id).fetch_optional(c).await?.as_ref().map(registry_row).transpose()
}

/// The registry GovStack clients name by its database acronym (`MCTS`).
pub async fn registry_by_database_code(
    c: &mut AnyConnection,
    database_code: &str,
) -> Result<Option<RegistryRow>, sqlx::Error> {
    let q = format!("{REGISTRY} WHERE database_code = $1 ORDER BY code LIMIT 1");
    sqlx::query(sqlx::AssertSqlSafe(q))
        .bind(database_code)
        .fetch_optional(c)
        .await?
        .as_ref()
        .map(registry_row)
        .transpose()
}

pub async fn registries(c: &mut AnyConnection) -> Result<Vec<RegistryRow>, sqlx::Error> {
    let q = format!("{REGISTRY} ORDER BY code");
    sqlx::query(sqlx::AssertSqlSafe(q)).fetch_all(c).await?.iter().map(registry_row).collect()
}

pub async fn upsert_registry(c: &mut AnyConnection, r: &RegistryRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO registries (id, code, name_zh, name_en, department_id, description, update_frequency, key_field, \
         key_domain, mediator_access, database_code, version, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
         ON CONFLICT (id) DO UPDATE SET name_zh = $3, name_en = $4, description = $6, update_frequency = $7, \
         key_field = $8, key_domain = $9, mediator_access = $10, database_code = $11, version = $12, updated_at = $14",
    )
    .bind(&r.id)
    .bind(&r.code)
    .bind(&r.name_zh)
    .bind(&r.name_en)
    .bind(&r.department_id)
    .bind(&r.description)
    .bind(&r.update_frequency)
    .bind(&r.key_field)
    .bind(&r.key_domain)
    .bind(if r.mediator_trusted { "trusted" } else { "none" })
    .bind(&r.database_code)
    .bind(r.version)
    .bind(r.created_at)
    .bind(r.updated_at)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn insert_version(
    c: &mut AnyConnection,
    registry_id: &str,
    version: i64,
    schema: &str,
    fields: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO registry_versions (registry_id, version, schema, fields, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(registry_id)
    .bind(version)
    .bind(schema)
    .bind(fields)
    .bind(now)
    .execute(c)
    .await?;
    Ok(())
}

/// (schema, fields) of one version.
pub async fn version(
    c: &mut AnyConnection,
    registry_id: &str,
    version: i64,
) -> Result<Option<(String, String)>, sqlx::Error> {
    let row = sqlx::query("SELECT schema, fields FROM registry_versions WHERE registry_id = $1 AND version = $2")
        .bind(registry_id)
        .bind(version)
        .fetch_optional(c)
        .await?;
    row.map(|r| Ok((r.try_get("schema")?, r.try_get("fields")?))).transpose()
}

#[derive(Debug, Clone)]
pub struct RecordRow {
    pub id: String,
    pub registry_id: String,
    pub version: i64,
    pub key_index: String,
    pub body: String,
    pub key_id: Option<String>,
    pub seq: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

macro_rules! record_columns {
    () => {
        "id, registry_id, version, key_index, body, key_id, seq, created_at, updated_at"
    };
}
const RECORD: &str = concat!("SELECT ", record_columns!(), " FROM registry_records");

fn record_row(r: &AnyRow) -> Result<RecordRow, sqlx::Error> {
    record_row_at(&Prefixed(r, ""))
}

fn record_row_at(r: &Prefixed<'_>) -> Result<RecordRow, sqlx::Error> {
    Ok(RecordRow {
        id: r.try_get("id")?,
        registry_id: r.try_get("registry_id")?,
        version: r.try_get("version")?,
        key_index: r.try_get("key_index")?,
        body: r.try_get("body")?,
        key_id: r.try_get("key_id")?,
        seq: r.try_get("seq")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// Inserts records with multi-row statements (bulk imports write thousands per transaction).
pub async fn insert_records(c: &mut AnyConnection, rows: &[RecordRow]) -> Result<(), sqlx::Error> {
    kernel::db::insert_rows(
        c,
        "registry_records (id, registry_id, version, key_index, body, key_id, seq, created_at, updated_at) ",
        rows,
        |q, r| {
            q.bind(&r.id)
                .bind(&r.registry_id)
                .bind(r.version)
                .bind(&r.key_index)
                .bind(&r.body)
                .bind(&r.key_id)
                .bind(r.seq)
                .bind(r.created_at)
                .bind(r.updated_at)
        },
    )
    .await
}

pub async fn update_record(c: &mut AnyConnection, r: &RecordRow) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE registry_records SET version = $1, key_index = $2, body = $3, key_id = $4, updated_at = $5 \
         WHERE id = $6 AND registry_id = $7",
    )
    .bind(r.version)
    .bind(&r.key_index)
    .bind(&r.body)
    .bind(&r.key_id)
    .bind(r.updated_at)
    .bind(&r.id)
    .bind(&r.registry_id)
    .execute(c)
    .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn record(c: &mut AnyConnection, registry_id: &str, id: &str) -> Result<Option<RecordRow>, sqlx::Error> {
    let q = format!("{RECORD} WHERE registry_id = $1 AND id = $2");
    sqlx::query(sqlx::AssertSqlSafe(q))
        .bind(registry_id)
        .bind(id)
        .fetch_optional(c)
        .await?
        .as_ref()
        .map(record_row)
        .transpose()
}

/// The records with this key, newest first.
pub async fn records_by_key(
    c: &mut AnyConnection,
    registry_id: &str,
    key_index: &str,
) -> Result<Vec<RecordRow>, sqlx::Error> {
    let q = format!("{RECORD} WHERE registry_id = $1 AND key_index = $2 ORDER BY seq DESC, id DESC LIMIT 20");
    sqlx::query(sqlx::AssertSqlSafe(q))
        .bind(registry_id)
        .bind(key_index)
        .fetch_all(c)
        .await?
        .iter()
        .map(record_row)
        .collect()
}

/// Records in insertion order after `after_seq`.
pub async fn records_after(
    c: &mut AnyConnection,
    registry_id: &str,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<RecordRow>, sqlx::Error> {
    let q = format!("{RECORD} WHERE registry_id = $1 AND seq > $2 ORDER BY seq, id LIMIT $3");
    sqlx::query(sqlx::AssertSqlSafe(q))
        .bind(registry_id)
        .bind(after_seq)
        .bind(limit)
        .fetch_all(c)
        .await?
        .iter()
        .map(record_row)
        .collect()
}

pub async fn delete_record(c: &mut AnyConnection, registry_id: &str, id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM registry_records WHERE registry_id = $1 AND id = $2")
        .bind(registry_id)
        .bind(id)
        .execute(c)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn next_seq(c: &mut AnyConnection, registry_id: &str) -> Result<i64, sqlx::Error> {
    let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) AS s FROM registry_records WHERE registry_id = $1")
        .bind(registry_id)
        .fetch_one(c)
        .await?;
    Ok(row.try_get::<i64, _>("s")? + 1)
}

/// (records, keys held by more than one record, newest update).
pub async fn record_stats(c: &mut AnyConnection, registry_id: &str) -> Result<(i64, i64, Option<i64>), sqlx::Error> {
    let row = sqlx::query("SELECT COUNT(*) AS n, MAX(updated_at) AS last FROM registry_records WHERE registry_id = $1")
        .bind(registry_id)
        .fetch_one(&mut *c)
        .await?;
    let dup = sqlx::query(
        "SELECT COUNT(*) AS d FROM (SELECT key_index FROM registry_records WHERE registry_id = $1 \
         GROUP BY key_index HAVING COUNT(*) > 1) AS dups",
    )
    .bind(registry_id)
    .fetch_one(&mut *c)
    .await?;
    Ok((row.try_get("n")?, dup.try_get("d")?, row.try_get("last")?))
}

// --- sharing agreements ------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct AgreementRow {
    pub id: String,
    pub registry_id: String,
    pub consumer_department_id: String,
    pub requested_by: String,
    pub fields: String,
    pub purpose: String,
    pub legal_basis: String,
    pub verify_only: bool,
    pub plain_values: bool,
    pub consent_required: bool,
    pub rate_per_minute: i64,
    pub status: String,
    pub valid_from: i64,
    pub valid_until: i64,
    pub reason: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
    pub created_at: i64,
}

macro_rules! agreement_columns {
    () => {
        "id, registry_id, consumer_department_id, requested_by, fields, purpose, legal_basis, verify_only, \
         plain_values, consent_required, rate_per_minute, status, valid_from, valid_until, reason, decided_by, \
         decided_at, created_at"
    };
}
const AGREEMENT: &str = concat!("SELECT ", agreement_columns!(), " FROM sharing_agreements");

fn agreement_row(r: &AnyRow) -> Result<AgreementRow, sqlx::Error> {
    agreement_row_at(&Prefixed(r, ""))
}

fn agreement_row_at(r: &Prefixed<'_>) -> Result<AgreementRow, sqlx::Error> {
    Ok(AgreementRow {
        id: r.try_get("id")?,
        registry_id: r.try_get("registry_id")?,
        consumer_department_id: r.try_get("consumer_department_id")?,
        requested_by: r.try_get("requested_by")?,
        fields: r.try_get("fields")?,
        purpose: r.try_get("purpose")?,
        legal_basis: r.try_get("legal_basis")?,
        verify_only: r.try_get::<i64>("verify_only")? != 0,
        plain_values: r.try_get::<i64>("plain_values")? != 0,
        consent_required: r.try_get::<i64>("consent_required")? != 0,
        rate_per_minute: r.try_get("rate_per_minute")?,
        status: r.try_get("status")?,
        valid_from: r.try_get("valid_from")?,
        valid_until: r.try_get("valid_until")?,
        reason: r.try_get("reason")?,
        decided_by: r.try_get("decided_by")?,
        decided_at: r.try_get("decided_at")?,
        created_at: r.try_get("created_at")?,
    })
}

pub async fn insert_agreement(c: &mut AnyConnection, a: &AgreementRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sharing_agreements (id, registry_id, consumer_department_id, requested_by, fields, purpose, \
         legal_basis, verify_only, plain_values, consent_required, rate_per_minute, status, valid_from, valid_until, \
         reason, decided_by, decided_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
    )
    .bind(&a.id)
    .bind(&a.registry_id)
    .bind(&a.consumer_department_id)
    .bind(&a.requested_by)
    .bind(&a.fields)
    .bind(&a.purpose)
    .bind(&a.legal_basis)
    .bind(i64::from(a.verify_only))
    .bind(i64::from(a.plain_values))
    .bind(i64::from(a.consent_required))
    .bind(a.rate_per_minute)
    .bind(&a.status)
    .bind(a.valid_from)
    .bind(a.valid_until)
    .bind(&a.reason)
    .bind(&a.decided_by)
    .bind(a.decided_at)
    .bind(a.created_at)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn agreement(c: &mut AnyConnection, id: &str) -> Result<Option<AgreementRow>, sqlx::Error> {
    let q = format!("{AGREEMENT} WHERE id = $1");
    sqlx::query(sqlx::AssertSqlSafe(q)).bind(id).fetch_optional(c).await?.as_ref().map(agreement_row).transpose()
}

/// What a call under an agreement needs, in one round trip: the agreement, its registry and
/// the newest record with this key index (none when nobody holds it).
pub async fn call_target(
    c: &mut AnyConnection,
    agreement_id: &str,
    key_index: &str,
) -> Result<Option<(AgreementRow, RegistryRow, Option<RecordRow>)>, sqlx::Error> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {}, {}, {} FROM sharing_agreements a JOIN registries r ON r.id = a.registry_id \
             LEFT JOIN registry_records d ON d.registry_id = a.registry_id AND d.key_index = $2 \
             WHERE a.id = $1 ORDER BY d.seq DESC, d.id DESC LIMIT 1",
            aliased("a", agreement_columns!()),
            aliased("r", registry_columns!()),
            aliased("d", record_columns!()),
        )
    });
    let Some(row) =
        sqlx::query(sqlx::AssertSqlSafe(SQL.as_str())).bind(agreement_id).bind(key_index).fetch_optional(c).await?
    else {
        return Ok(None);
    };
    let agreement = agreement_row_at(&Prefixed(&row, "a_"))?;
    let registry = registry_row_at(&Prefixed(&row, "r_"))?;
    let record = match row.try_get::<Option<String>, _>("d_id")? {
        Some(_) => Some(record_row_at(&Prefixed(&row, "d_"))?),
        None => None,
    };
    Ok(Some((agreement, registry, record)))
}

/// Moves an agreement from `from` to `to`; false when it was no longer in `from`.
pub async fn set_agreement_status(
    c: &mut AnyConnection,
    id: &str,
    from: &str,
    to: &str,
    reason: Option<&str>,
    by: &str,
    at: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE sharing_agreements SET status = $1, reason = COALESCE($2, reason), decided_by = $3, decided_at = $4 \
         WHERE id = $5 AND status = $6",
    )
    .bind(to)
    .bind(reason)
    .bind(by)
    .bind(at)
    .bind(id)
    .bind(from)
    .execute(c)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Agreements on the registries of `owner` (or consumed by `consumer`), newest first.
pub async fn agreements(
    c: &mut AnyConnection,
    owner: Option<&str>,
    consumer: Option<&str>,
) -> Result<Vec<AgreementRow>, sqlx::Error> {
    let q = format!(
        "{AGREEMENT} WHERE ($1 IS NULL OR registry_id IN (SELECT id FROM registries WHERE department_id = $1)) \
         AND ($2 IS NULL OR consumer_department_id = $2) ORDER BY created_at DESC, id LIMIT 500"
    );
    sqlx::query(sqlx::AssertSqlSafe(q))
        .bind(owner)
        .bind(consumer)
        .fetch_all(c)
        .await?
        .iter()
        .map(agreement_row)
        .collect()
}

/// Adds served calls, one (agreement, day, calls) per agreement and day, in one statement.
pub async fn count_calls(c: &mut AnyConnection, calls: &[(String, String, i64)]) -> Result<(), sqlx::Error> {
    kernel::db::upsert_rows(
        c,
        "exchange_usage (agreement_id, day, calls)",
        "ON CONFLICT (agreement_id, day) DO UPDATE SET calls = exchange_usage.calls + excluded.calls",
        calls,
        |q, (agreement_id, day, n)| q.bind(agreement_id.as_str()).bind(day.as_str()).bind(*n),
    )
    .await
}

/// Per department that owns registries: (department, registries, requests, granted,
/// decision delays in ms, calls served).
pub async fn department_figures(
    c: &mut AnyConnection,
) -> Result<Vec<(String, i64, i64, i64, Vec<i64>, i64)>, sqlx::Error> {
    let owners = sqlx::query(
        "SELECT department_id, COUNT(*) AS n FROM registries GROUP BY department_id ORDER BY department_id",
    )
    .fetch_all(&mut *c)
    .await?;
    let mut out = Vec::with_capacity(owners.len());
    for o in owners {
        let dept: String = o.try_get("department_id")?;
        let requests = sqlx::query(
            "SELECT a.status, a.created_at, a.decided_at FROM sharing_agreements a \
             JOIN registries r ON r.id = a.registry_id WHERE r.department_id = $1",
        )
        .bind(&dept)
        .fetch_all(&mut *c)
        .await?;
        let mut granted = 0;
        let mut delays = Vec::new();
        for r in &requests {
            let status: String = r.try_get("status")?;
            if status == "granted" || status == "revoked" {
                granted += 1;
            }
            if let Some(at) = r.try_get::<Option<i64>, _>("decided_at")? {
                delays.push(at - r.try_get::<i64, _>("created_at")?);
            }
        }
        let calls = sqlx::query(
            "SELECT CAST(COALESCE(SUM(u.calls), 0) AS BIGINT) AS n FROM exchange_usage u JOIN sharing_agreements a ON a.id = u.agreement_id \
             JOIN registries r ON r.id = a.registry_id WHERE r.department_id = $1",
        )
        .bind(&dept)
        .fetch_one(&mut *c)
        .await?;
        out.push((dept, o.try_get("n")?, requests.len() as i64, granted, delays, calls.try_get("n")?));
    }
    Ok(out)
}

// --- exchange clients --------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct ClientRow {
    pub id: String,
    pub account_id: String,
    pub department_id: String,
    pub mediator_client: String,
    pub secret_hash: String,
    pub revoked: bool,
}

pub async fn insert_client(c: &mut AnyConnection, r: &ClientRow, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO exchange_clients (id, account_id, department_id, mediator_client, secret_hash, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&r.id)
    .bind(&r.account_id)
    .bind(&r.department_id)
    .bind(&r.mediator_client)
    .bind(&r.secret_hash)
    .bind(now)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn client(c: &mut AnyConnection, mediator_client: &str) -> Result<Option<ClientRow>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT id, account_id, department_id, mediator_client, secret_hash, revoked_at FROM exchange_clients \
         WHERE mediator_client = $1",
    )
    .bind(mediator_client)
    .fetch_optional(c)
    .await?;
    row.map(|r| {
        Ok(ClientRow {
            id: r.try_get("id")?,
            account_id: r.try_get("account_id")?,
            department_id: r.try_get("department_id")?,
            mediator_client: r.try_get("mediator_client")?,
            secret_hash: r.try_get("secret_hash")?,
            revoked: r.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
        })
    })
    .transpose()
}

// --- imports -----------------------------------------------------------------------------

pub async fn insert_import(
    c: &mut AnyConnection,
    id: &str,
    registry_id: &str,
    file_name: &str,
    mode: &str,
    by: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO registry_imports (id, registry_id, file_name, mode, status, total_rows, done_rows, imported, \
         rejected, errors, started_by, started_at) VALUES ($1, $2, $3, $4, 'running', 0, 0, 0, 0, '[]', $5, $6)",
    )
    .bind(id)
    .bind(registry_id)
    .bind(file_name)
    .bind(mode)
    .bind(by)
    .bind(now)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn import_progress(
    c: &mut AnyConnection,
    id: &str,
    total: i64,
    done: i64,
    imported: i64,
    rejected: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE registry_imports SET total_rows = $1, done_rows = $2, imported = $3, rejected = $4 WHERE id = $5",
    )
    .bind(total)
    .bind(done)
    .bind(imported)
    .bind(rejected)
    .bind(id)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn finish_import(
    c: &mut AnyConnection,
    id: &str,
    status: &str,
    imported: i64,
    errors: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE registry_imports SET status = $1, imported = $2, errors = $3, finished_at = $4 WHERE id = $5")
        .bind(status)
        .bind(imported)
        .bind(errors)
        .bind(now)
        .bind(id)
        .execute(c)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ImportRow {
    pub id: String,
    pub registry_id: String,
    pub file_name: String,
    pub mode: String,
    pub status: String,
    pub total_rows: i64,
    pub done_rows: i64,
    pub imported: i64,
    pub rejected: i64,
    pub errors: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
}

const IMPORT: &str = "SELECT id, registry_id, file_name, mode, status, total_rows, done_rows, imported, rejected, \
                      errors, started_at, finished_at FROM registry_imports";

pub async fn import(c: &mut AnyConnection, id: &str) -> Result<Option<ImportRow>, sqlx::Error> {
    let q = format!("{IMPORT} WHERE id = $1");
    sqlx::query(sqlx::AssertSqlSafe(q)).bind(id).fetch_optional(c).await?.as_ref().map(ImportRow::from_row).transpose()
}

/// (imports, rows rejected) of a registry.
pub async fn import_rejections(c: &mut AnyConnection, registry_id: &str) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(
        "SELECT CAST(COALESCE(SUM(rejected), 0) AS BIGINT) AS n FROM registry_imports WHERE registry_id = $1",
    )
    .bind(registry_id)
    .fetch_one(c)
    .await?;
    row.try_get("n")
}

// --- consent -----------------------------------------------------------------------------

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RevisionRow {
    pub id: String,
    pub schema_name: String,
    pub object_id: String,
    pub snapshot: String,
    pub hash: String,
    pub predecessor_hash: Option<String>,
    pub authorized_by: Option<String>,
    pub created_at: i64,
}

const REVISION: &str = "SELECT id, schema_name, object_id, snapshot, hash, predecessor_hash, authorized_by, created_at \
                        FROM consent_revisions";

/// The newest revision of an object.
pub async fn latest_revision(c: &mut AnyConnection, object_id: &str) -> Result<Option<RevisionRow>, sqlx::Error> {
    let q = format!("{REVISION} WHERE object_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1");
    sqlx::query(sqlx::AssertSqlSafe(q))
        .bind(object_id)
        .fetch_optional(c)
        .await?
        .as_ref()
        .map(RevisionRow::from_row)
        .transpose()
}

/// Every revision of an object, oldest first.
pub async fn revisions_of(c: &mut AnyConnection, object_id: &str) -> Result<Vec<RevisionRow>, sqlx::Error> {
    let q = format!("{REVISION} WHERE object_id = $1 ORDER BY created_at, id");
    sqlx::query(sqlx::AssertSqlSafe(q)).bind(object_id).fetch_all(c).await?.iter().map(RevisionRow::from_row).collect()
}

/// Adds a revision and makes it the successor of the object's previous open one.
pub async fn insert_revision(c: &mut AnyConnection, r: &RevisionRow) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE consent_revisions SET successor_id = $1 WHERE object_id = $2 AND successor_id IS NULL")
        .bind(&r.id)
        .bind(&r.object_id)
        .execute(&mut *c)
        .await?;
    sqlx::query(
        "INSERT INTO consent_revisions (id, schema_name, object_id, snapshot, hash, predecessor_hash, authorized_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&r.id)
    .bind(&r.schema_name)
    .bind(&r.object_id)
    .bind(&r.snapshot)
    .bind(&r.hash)
    .bind(&r.predecessor_hash)
    .bind(&r.authorized_by)
    .bind(r.created_at)
    .execute(c)
    .await?;
    Ok(())
}

/// A policy's body, unless deleted.
pub async fn policy(c: &mut AnyConnection, id: &str) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query("SELECT body FROM consent_policies WHERE id = $1 AND deleted_at IS NULL")
        .bind(id)
        .fetch_optional(c)
        .await?;
    row.map(|r| r.try_get("body")).transpose()
}

pub async fn upsert_policy(c: &mut AnyConnection, id: &str, body: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO consent_policies (id, body, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET body = $2")
        .bind(id)
        .bind(body)
        .bind(now)
        .execute(c)
        .await?;
    Ok(())
}

pub async fn policies(c: &mut AnyConnection) -> Result<Vec<String>, sqlx::Error> {
    let rows = sqlx::query("SELECT body FROM consent_policies WHERE deleted_at IS NULL ORDER BY created_at, id")
        .fetch_all(c)
        .await?;
    rows.iter().map(|r| r.try_get("body")).collect()
}

/// Active data agreements that use a policy.
pub async fn policy_users(c: &mut AnyConnection, id: &str) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM consent_data_agreements WHERE policy_id = $1 AND active = 1 AND deleted_at IS NULL",
    )
    .bind(id)
    .fetch_one(c)
    .await?;
    row.try_get("n")
}

pub async fn delete_policy(c: &mut AnyConnection, id: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE consent_policies SET deleted_at = $1 WHERE id = $2").bind(now).bind(id).execute(c).await?;
    Ok(())
}

/// A data agreement (unless deleted): body, whether active, and the end of the sharing
/// agreement it serves, if any.
pub async fn data_agreement(
    c: &mut AnyConnection,
    id: &str,
) -> Result<Option<(String, bool, Option<i64>)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT d.body, d.active, s.valid_until FROM consent_data_agreements d \
         LEFT JOIN sharing_agreements s ON s.id = d.sharing_agreement_id WHERE d.id = $1 AND d.deleted_at IS NULL",
    )
    .bind(id)
    .fetch_optional(c)
    .await?;
    row.map(|r| Ok((r.try_get("body")?, r.try_get::<i64, _>("active")? != 0, r.try_get("valid_until")?))).transpose()
}

#[allow(clippy::too_many_arguments)]
pub async fn upsert_data_agreement(
    c: &mut AnyConnection,
    id: &str,
    body: &str,
    policy_id: Option<&str>,
    active: bool,
    sharing_agreement: Option<&str>,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO consent_data_agreements (id, body, policy_id, active, sharing_agreement_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO UPDATE SET body = $2, policy_id = $3, active = $4",
    )
    .bind(id)
    .bind(body)
    .bind(policy_id)
    .bind(i64::from(active))
    .bind(sharing_agreement)
    .bind(now)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn data_agreements(c: &mut AnyConnection) -> Result<Vec<String>, sqlx::Error> {
    let rows = sqlx::query("SELECT body FROM consent_data_agreements WHERE deleted_at IS NULL ORDER BY created_at, id")
        .fetch_all(c)
        .await?;
    rows.iter().map(|r| r.try_get("body")).collect()
}

pub async fn delete_data_agreement(c: &mut AnyConnection, id: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE consent_data_agreements SET deleted_at = $1, active = 0 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(c)
        .await?;
    Ok(())
}

/// Closes the data agreement of a sharing agreement to new consent.
pub async fn deactivate_data_agreements_of(c: &mut AnyConnection, sharing_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE consent_data_agreements SET active = 0 WHERE sharing_agreement_id = $1")
        .bind(sharing_id)
        .execute(c)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IndividualRow {
    pub id: String,
    pub external_id: Option<String>,
    pub external_id_type: Option<String>,
    pub identity_provider_id: Option<String>,
    pub account_id: Option<String>,
}

pub async fn insert_individual(c: &mut AnyConnection, r: &IndividualRow, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO consent_individuals (id, external_id, external_id_type, identity_provider_id, account_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&r.id)
    .bind(&r.external_id)
    .bind(&r.external_id_type)
    .bind(&r.identity_provider_id)
    .bind(&r.account_id)
    .bind(now)
    .execute(c)
    .await?;
    Ok(())
}

const INDIVIDUAL: &str =
    "SELECT id, external_id, external_id_type, identity_provider_id, account_id FROM consent_individuals";

pub async fn individual(c: &mut AnyConnection, id: &str) -> Result<Option<IndividualRow>, sqlx::Error> {
    let q = format!("{INDIVIDUAL} WHERE id = $1");
    sqlx::query(sqlx::AssertSqlSafe(q))
        .bind(id)
        .fetch_optional(c)
        .await?
        .as_ref()
        .map(IndividualRow::from_row)
        .transpose()
}

pub async fn individuals(c: &mut AnyConnection) -> Result<Vec<IndividualRow>, sqlx::Error> {
    let q = format!("{INDIVIDUAL} ORDER BY created_at, id");
    sqlx::query(sqlx::AssertSqlSafe(q)).fetch_all(c).await?.iter().map(IndividualRow::from_row).collect()
}

pub async fn update_individual(c: &mut AnyConnection, r: &IndividualRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE consent_individuals SET external_id = $1, external_id_type = $2, identity_provider_id = $3 WHERE id = $4",
    )
    .bind(&r.external_id)
    .bind(&r.external_id_type)
    .bind(&r.identity_provider_id)
    .bind(&r.id)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn individual_of_account(
    c: &mut AnyConnection,
    account_id: &str,
) -> Result<Option<IndividualRow>, sqlx::Error> {
    let q = format!("{INDIVIDUAL} WHERE account_id = $1");
    sqlx::query(sqlx::AssertSqlSafe(q))
        .bind(account_id)
        .fetch_optional(c)
        .await?
        .as_ref()
        .map(IndividualRow::from_row)
        .transpose()
}

pub async fn individual_by_external(
    c: &mut AnyConnection,
    external_id: &str,
    external_id_type: Option<&str>,
) -> Result<Option<IndividualRow>, sqlx::Error> {
    let q = format!("{INDIVIDUAL} WHERE external_id = $1 AND COALESCE(external_id_type, '') = COALESCE($2, '')");
    sqlx::query(sqlx::AssertSqlSafe(q))
        .bind(external_id)
        .bind(external_id_type)
        .fetch_optional(c)
        .await?
        .as_ref()
        .map(IndividualRow::from_row)
        .transpose()
}

/// The account's answer for the data agreement of a sharing agreement: (opt-in, expiry).
pub async fn consent_for_sharing(
    c: &mut AnyConnection,
    sharing_id: &str,
    account_id: &str,
) -> Result<Option<(bool, Option<i64>)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT r.opt_in, r.expires_at FROM consent_records r \
         JOIN consent_data_agreements d ON d.id = r.data_agreement_id \
         JOIN consent_individuals i ON i.id = r.individual_id \
         WHERE d.sharing_agreement_id = $1 AND d.active = 1 AND i.account_id = $2",
    )
    .bind(sharing_id)
    .bind(account_id)
    .fetch_optional(c)
    .await?;
    row.map(|r| Ok((r.try_get::<i64, _>("opt_in")? != 0, r.try_get("expires_at")?))).transpose()
}

#[derive(Debug, Clone)]
pub struct ConsentRecordRow {
    pub id: String,
    pub data_agreement_id: String,
    pub agreement_revision: String,
    /// The consented revision's hash.
    pub revision_hash: String,
    pub individual_id: String,
    pub opt_in: bool,
    pub state: String,
    pub expires_at: Option<i64>,
    pub created_at: i64,
}

const CONSENT_RECORD: &str = "SELECT r.id, r.data_agreement_id, r.agreement_revision, v.hash, r.individual_id, r.opt_in, \
                              r.state, r.expires_at, r.created_at FROM consent_records r \
                              JOIN consent_revisions v ON v.id = r.agreement_revision";

fn consent_record_row(r: &AnyRow) -> Result<ConsentRecordRow, sqlx::Error> {
    Ok(ConsentRecordRow {
        id: r.try_get("id")?,
        data_agreement_id: r.try_get("data_agreement_id")?,
        agreement_revision: r.try_get("agreement_revision")?,
        revision_hash: r.try_get("hash")?,
        individual_id: r.try_get("individual_id")?,
        opt_in: r.try_get::<i64, _>("opt_in")? != 0,
        state: r.try_get("state")?,
        expires_at: r.try_get("expires_at")?,
        created_at: r.try_get("created_at")?,
    })
}

pub async fn consent_record(
    c: &mut AnyConnection,
    data_agreement_id: &str,
    individual_id: &str,
) -> Result<Option<ConsentRecordRow>, sqlx::Error> {
    let q = format!("{CONSENT_RECORD} WHERE r.data_agreement_id = $1 AND r.individual_id = $2");
    sqlx::query(sqlx::AssertSqlSafe(q))
        .bind(data_agreement_id)
        .bind(individual_id)
        .fetch_optional(c)
        .await?
        .as_ref()
        .map(consent_record_row)
        .transpose()
}

pub async fn consent_record_by_id(c: &mut AnyConnection, id: &str) -> Result<Option<ConsentRecordRow>, sqlx::Error> {
    let q = format!("{CONSENT_RECORD} WHERE r.id = $1");
    sqlx::query(sqlx::AssertSqlSafe(q)).bind(id).fetch_optional(c).await?.as_ref().map(consent_record_row).transpose()
}

pub async fn consent_records_of(
    c: &mut AnyConnection,
    individual_id: &str,
) -> Result<Vec<ConsentRecordRow>, sqlx::Error> {
    let q = format!("{CONSENT_RECORD} WHERE r.individual_id = $1 ORDER BY r.created_at, r.id");
    sqlx::query(sqlx::AssertSqlSafe(q)).bind(individual_id).fetch_all(c).await?.iter().map(consent_record_row).collect()
}

/// Sets an individual's answer for a data agreement (one record per pair).
pub async fn upsert_consent_record(c: &mut AnyConnection, r: &ConsentRecordRow, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO consent_records (id, data_agreement_id, agreement_revision, individual_id, opt_in, state, expires_at, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (data_agreement_id, individual_id) DO UPDATE SET opt_in = $5, agreement_revision = $3, \
         expires_at = $7, updated_at = $9",
    )
    .bind(&r.id)
    .bind(&r.data_agreement_id)
    .bind(&r.agreement_revision)
    .bind(&r.individual_id)
    .bind(i64::from(r.opt_in))
    .bind(&r.state)
    .bind(r.expires_at)
    .bind(r.created_at)
    .bind(now)
    .execute(c)
    .await?;
    Ok(())
}

/// The data agreements a person may answer (active, or answered before), newest first, with
/// their answer: (id, body, opt-in, expiry, answered at).
#[allow(clippy::type_complexity)]
pub async fn consents_of_account(
    c: &mut AnyConnection,
    account_id: &str,
) -> Result<Vec<(String, String, Option<bool>, Option<i64>, Option<i64>)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT d.id, d.body, r.opt_in, r.expires_at, r.updated_at FROM consent_data_agreements d \
         LEFT JOIN consent_individuals i ON i.account_id = $1 \
         LEFT JOIN consent_records r ON r.data_agreement_id = d.id AND r.individual_id = i.id \
         WHERE d.deleted_at IS NULL AND (d.active = 1 OR r.id IS NOT NULL) ORDER BY d.created_at DESC, d.id",
    )
    .bind(account_id)
    .fetch_all(c)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("id")?,
                r.try_get("body")?,
                r.try_get::<Option<i64>, _>("opt_in")?.map(|v| v != 0),
                r.try_get("expires_at")?,
                r.try_get("updated_at")?,
            ))
        })
        .collect()
}

// --- GovStack database descriptions (migration 0013) ------------------------------------------

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DatabaseGroupRow {
    pub id: i64,
    pub name: String,
    pub code: String,
    pub group_id: i64,
    pub display_order: i64,
    pub data_index_increment: i64,
}

/// Groups in display order.
pub async fn database_groups(c: &mut AnyConnection) -> Result<Vec<DatabaseGroupRow>, sqlx::Error> {
    sqlx::query(
        "SELECT id, name, code, group_id, display_order, data_index_increment FROM registry_database_groups \
         ORDER BY display_order, id",
    )
    .fetch_all(c)
    .await?
    .iter()
    .map(DatabaseGroupRow::from_row)
    .collect()
}

pub async fn upsert_database_group(c: &mut AnyConnection, g: &DatabaseGroupRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO registry_database_groups (id, name, code, group_id, display_order, data_index_increment) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO UPDATE SET name = $2, code = $3, group_id = $4, \
         display_order = $5, data_index_increment = $6",
    )
    .bind(g.id)
    .bind(&g.name)
    .bind(&g.code)
    .bind(g.group_id)
    .bind(g.display_order)
    .bind(g.data_index_increment)
    .execute(c)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DatabaseRow {
    pub id: i64,
    pub group_id: i64,
    pub name: String,
    pub info: String,
    pub modified_at: i64,
}

const DATABASE: &str = "SELECT id, group_id, name, info, modified_at FROM registry_databases";

pub async fn databases_of_group(c: &mut AnyConnection, group_id: i64) -> Result<Vec<DatabaseRow>, sqlx::Error> {
    let q = format!("{DATABASE} WHERE group_id = $1 ORDER BY id");
    sqlx::query(sqlx::AssertSqlSafe(q)).bind(group_id).fetch_all(c).await?.iter().map(DatabaseRow::from_row).collect()
}

pub async fn database(c: &mut AnyConnection, id: i64) -> Result<Option<DatabaseRow>, sqlx::Error> {
    let q = format!("{DATABASE} WHERE id = $1");
    sqlx::query(sqlx::AssertSqlSafe(q))
        .bind(id)
        .fetch_optional(c)
        .await?
        .as_ref()
        .map(DatabaseRow::from_row)
        .transpose()
}

/// The description with this name (names are compared without regard to case).
pub async fn database_by_name(c: &mut AnyConnection, name: &str) -> Result<Option<DatabaseRow>, sqlx::Error> {
    let q = format!("{DATABASE} WHERE LOWER(name) = LOWER($1) ORDER BY id LIMIT 1");
    sqlx::query(sqlx::AssertSqlSafe(q))
        .bind(name)
        .fetch_optional(c)
        .await?
        .as_ref()
        .map(DatabaseRow::from_row)
        .transpose()
}

pub async fn next_database_id(c: &mut AnyConnection) -> Result<i64, sqlx::Error> {
    let row = sqlx::query("SELECT COALESCE(MAX(id), 0) AS m FROM registry_databases").fetch_one(c).await?;
    Ok(row.try_get::<i64, _>("m")?.saturating_add(1))
}

pub async fn upsert_database(c: &mut AnyConnection, d: &DatabaseRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO registry_databases (id, group_id, name, info, modified_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (id) DO UPDATE SET group_id = $2, name = $3, info = $4, modified_at = $5",
    )
    .bind(d.id)
    .bind(d.group_id)
    .bind(&d.name)
    .bind(&d.info)
    .bind(d.modified_at)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn delete_database(c: &mut AnyConnection, id: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM registry_databases WHERE id = $1").bind(id).execute(c).await?;
    Ok(done.rows_affected() > 0)
}

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

fn signature_row(r: &AnyRow) -> Result<SignatureRow, sqlx::Error> {
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

// --- consent webhooks --------------------------------------------------------------------

pub struct WebhookRow {
    pub id: String,
    pub payload_url: String,
    pub content_type: String,
    pub disabled: bool,
    /// JSON array of the events subscribed to.
    pub events: String,
    pub secret_sealed: String,
    pub created_at: i64,
}

const WEBHOOK: &str =
    "SELECT id, payload_url, content_type, disabled, events, secret_sealed, created_at FROM consent_webhooks";

fn webhook_row(r: &AnyRow) -> Result<WebhookRow, sqlx::Error> {
    Ok(WebhookRow {
        id: r.try_get("id")?,
        payload_url: r.try_get("payload_url")?,
        content_type: r.try_get("content_type")?,
        disabled: r.try_get::<i64, _>("disabled")? != 0,
        events: r.try_get("events")?,
        secret_sealed: r.try_get("secret_sealed")?,
        created_at: r.try_get("created_at")?,
    })
}

pub async fn webhook(c: &mut AnyConnection, id: &str) -> Result<Option<WebhookRow>, sqlx::Error> {
    let q = format!("{WEBHOOK} WHERE id = $1");
    sqlx::query(sqlx::AssertSqlSafe(q)).bind(id).fetch_optional(c).await?.as_ref().map(webhook_row).transpose()
}

pub async fn webhooks(c: &mut AnyConnection) -> Result<Vec<WebhookRow>, sqlx::Error> {
    let q = format!("{WEBHOOK} ORDER BY created_at, id");
    sqlx::query(sqlx::AssertSqlSafe(q)).fetch_all(c).await?.iter().map(webhook_row).collect()
}

pub async fn upsert_webhook(c: &mut AnyConnection, w: &WebhookRow, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO consent_webhooks (id, payload_url, content_type, disabled, events, secret_sealed, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO UPDATE SET payload_url = excluded.payload_url, \
         content_type = excluded.content_type, disabled = excluded.disabled, events = excluded.events, \
         secret_sealed = excluded.secret_sealed, updated_at = excluded.updated_at",
    )
    .bind(&w.id)
    .bind(&w.payload_url)
    .bind(&w.content_type)
    .bind(i64::from(w.disabled))
    .bind(&w.events)
    .bind(&w.secret_sealed)
    .bind(w.created_at)
    .bind(now)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn delete_webhook(c: &mut AnyConnection, id: &str) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM consent_webhooks WHERE id = $1").bind(id).execute(c).await?.rows_affected() > 0)
}

// --- consent verification and audit ------------------------------------------------------

/// Which consent records a verifier or an auditor asks for (GovStack ConsentRecordFilter:
/// id and opt-in; and the agreement and individual a verifier knows).
#[derive(Debug, Default)]
pub struct ConsentRecordQuery {
    pub id: Option<String>,
    pub data_agreement_id: Option<String>,
    pub individual_id: Option<String>,
    pub opt_in: Option<bool>,
}

/// Whose data agreements a query reaches: a consuming department sees those of its own
/// sharing agreements and the organisation's own (tied to no sharing agreement).
const VISIBLE_TO: &str = "(d.sharing_agreement_id IS NULL OR d.sharing_agreement_id IN \
                          (SELECT id FROM sharing_agreements WHERE consumer_department_id = $1))";

/// One page of the consent records a query selects, oldest first, and how many there are.
pub async fn consent_records_where(
    c: &mut AnyConnection,
    q: &ConsentRecordQuery,
    consumer_department: Option<&str>,
    offset: i64,
    limit: i64,
) -> Result<(Vec<ConsentRecordRow>, i64), sqlx::Error> {
    // $1 is always the department (unused when none is given), so the others number alike.
    let mut conditions = vec![if consumer_department.is_some() { VISIBLE_TO } else { "$1 IS NULL" }.to_string()];
    let mut texts = Vec::new();
    for (column, value) in
        [("r.id", &q.id), ("r.data_agreement_id", &q.data_agreement_id), ("r.individual_id", &q.individual_id)]
    {
        if let Some(v) = value {
            texts.push(v.clone());
            conditions.push(format!("{column} = ${}", texts.len() + 1));
        }
    }
    if let Some(opt_in) = q.opt_in {
        conditions.push(format!("r.opt_in = {}", i64::from(opt_in)));
    }
    let from = format!(
        "FROM consent_records r JOIN consent_revisions v ON v.id = r.agreement_revision \
         JOIN consent_data_agreements d ON d.id = r.data_agreement_id WHERE {}",
        conditions.join(" AND ")
    );
    let count = format!("SELECT COUNT(*) AS n {from}");
    let list = format!(
        "SELECT r.id, r.data_agreement_id, r.agreement_revision, v.hash, r.individual_id, r.opt_in, r.state, \
         r.expires_at, r.created_at {from} ORDER BY r.created_at, r.id LIMIT {limit} OFFSET {offset}"
    );
    let mut total = sqlx::query(sqlx::AssertSqlSafe(count)).bind(consumer_department.map(str::to_string));
    let mut rows = sqlx::query(sqlx::AssertSqlSafe(list)).bind(consumer_department.map(str::to_string));
    for t in &texts {
        total = total.bind(t.clone());
        rows = rows.bind(t.clone());
    }
    let total: i64 = total.fetch_one(&mut *c).await?.try_get("n")?;
    let rows = rows.fetch_all(c).await?.iter().map(consent_record_row).collect::<Result<_, _>>()?;
    Ok((rows, total))
}

/// Data agreements as a verifier (a consuming department, live ones) or an auditor (every
/// one, deleted too, with when) sees them.
pub async fn data_agreements_for(
    c: &mut AnyConnection,
    consumer_department: Option<&str>,
) -> Result<Vec<(String, Option<i64>)>, sqlx::Error> {
    let filter = if consumer_department.is_some() {
        format!("WHERE d.deleted_at IS NULL AND {VISIBLE_TO}")
    } else {
        "WHERE $1 IS NULL".to_string()
    };
    let q = format!("SELECT d.body, d.deleted_at FROM consent_data_agreements d {filter} ORDER BY d.created_at, d.id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(q)).bind(consumer_department.map(str::to_string)).fetch_all(c).await?;
    rows.iter().map(|r| Ok((r.try_get("body")?, r.try_get("deleted_at")?))).collect()
}

/// A data agreement by id, deleted too (the auditor's read): (body, deleted at).
pub async fn data_agreement_ever(
    c: &mut AnyConnection,
    id: &str,
) -> Result<Option<(String, Option<i64>)>, sqlx::Error> {
    let row = sqlx::query("SELECT body, deleted_at FROM consent_data_agreements WHERE id = $1")
        .bind(id)
        .fetch_optional(c)
        .await?;
    row.map(|r| Ok((r.try_get("body")?, r.try_get("deleted_at")?))).transpose()
}

/// Every signature of a record, oldest first.
pub async fn signatures_of(c: &mut AnyConnection, record_id: &str) -> Result<Vec<SignatureRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, record_id, body, verified FROM consent_signatures WHERE record_id = $1 ORDER BY created_at, id",
    )
    .bind(record_id)
    .fetch_all(c)
    .await?;
    rows.iter().map(signature_row).collect()
}
