//! Registries, their versions and records.

use sqlx::AnyConnection;

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

/// A registry as stored: mediator access is text (`trusted` or `none`).
#[derive(sqlx::FromRow)]
pub(super) struct RegistryColumns {
    pub(super) id: String,
    pub(super) code: String,
    pub(super) name_zh: String,
    pub(super) name_en: String,
    pub(super) department_id: String,
    pub(super) description: String,
    pub(super) update_frequency: String,
    pub(super) key_field: String,
    pub(super) key_domain: String,
    pub(super) mediator_access: String,
    pub(super) database_code: Option<String>,
    pub(super) version: i64,
    pub(super) created_at: i64,
    pub(super) updated_at: i64,
}

impl From<RegistryColumns> for RegistryRow {
    fn from(r: RegistryColumns) -> Self {
        RegistryRow {
            id: r.id,
            code: r.code,
            name_zh: r.name_zh,
            name_en: r.name_en,
            department_id: r.department_id,
            description: r.description,
            update_frequency: r.update_frequency,
            key_field: r.key_field,
            key_domain: r.key_domain,
            mediator_trusted: r.mediator_access == "trusted",
            database_code: r.database_code,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

pub async fn registry_by_code(c: &mut AnyConnection, code: &str) -> Result<Option<RegistryRow>, sqlx::Error> {
    let q = format!("{REGISTRY} WHERE code = $1");
    let row = sqlx::query_as::<_, RegistryColumns>(sqlx::AssertSqlSafe(q)).bind(code).fetch_optional(c).await?;
    Ok(row.map(RegistryRow::from))
}

pub async fn registry_by_id(c: &mut AnyConnection, id: &str) -> Result<Option<RegistryRow>, sqlx::Error> {
    let q = format!("{REGISTRY} WHERE id = $1");
    let row = sqlx::query_as::<_, RegistryColumns>(sqlx::AssertSqlSafe(q)).bind(id).fetch_optional(c).await?;
    Ok(row.map(RegistryRow::from))
}

/// The registry GovStack clients name by its database acronym (`MCTS`).
pub async fn registry_by_database_code(
    c: &mut AnyConnection,
    database_code: &str,
) -> Result<Option<RegistryRow>, sqlx::Error> {
    let q = format!("{REGISTRY} WHERE database_code = $1 ORDER BY code LIMIT 1");
    let row =
        sqlx::query_as::<_, RegistryColumns>(sqlx::AssertSqlSafe(q)).bind(database_code).fetch_optional(c).await?;
    Ok(row.map(RegistryRow::from))
}

pub async fn registries(c: &mut AnyConnection) -> Result<Vec<RegistryRow>, sqlx::Error> {
    let q = format!("{REGISTRY} ORDER BY code");
    let rows = sqlx::query_as::<_, RegistryColumns>(sqlx::AssertSqlSafe(q)).fetch_all(c).await?;
    Ok(rows.into_iter().map(RegistryRow::from).collect())
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
    sqlx::query_as("SELECT schema, fields FROM registry_versions WHERE registry_id = $1 AND version = $2")
        .bind(registry_id)
        .bind(version)
        .fetch_optional(c)
        .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
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
    sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(registry_id).bind(id).fetch_optional(c).await
}

/// The records with this key, newest first.
pub async fn records_by_key(
    c: &mut AnyConnection,
    registry_id: &str,
    key_index: &str,
) -> Result<Vec<RecordRow>, sqlx::Error> {
    let q = format!("{RECORD} WHERE registry_id = $1 AND key_index = $2 ORDER BY seq DESC, id DESC LIMIT 20");
    sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(registry_id).bind(key_index).fetch_all(c).await
}

/// Records in insertion order after `after_seq`.
pub async fn records_after(
    c: &mut AnyConnection,
    registry_id: &str,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<RecordRow>, sqlx::Error> {
    let q = format!("{RECORD} WHERE registry_id = $1 AND seq > $2 ORDER BY seq, id LIMIT $3");
    sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(registry_id).bind(after_seq).bind(limit).fetch_all(c).await
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
    let last: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) AS s FROM registry_records WHERE registry_id = $1")
            .bind(registry_id)
            .fetch_one(c)
            .await?;
    Ok(last + 1)
}

/// (records, keys held by more than one record, newest update).
pub async fn record_stats(c: &mut AnyConnection, registry_id: &str) -> Result<(i64, i64, Option<i64>), sqlx::Error> {
    let (n, last): (i64, Option<i64>) =
        sqlx::query_as("SELECT COUNT(*) AS n, MAX(updated_at) AS last FROM registry_records WHERE registry_id = $1")
            .bind(registry_id)
            .fetch_one(&mut *c)
            .await?;
    let dup: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) AS d FROM (SELECT key_index FROM registry_records WHERE registry_id = $1 \
         GROUP BY key_index HAVING COUNT(*) > 1) AS dups",
    )
    .bind(registry_id)
    .fetch_one(&mut *c)
    .await?;
    Ok((n, dup, last))
}
