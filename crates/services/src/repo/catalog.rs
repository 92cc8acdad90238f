//! Workflow definitions, services and their versions, forms and bundles.

use sqlx::AnyConnection;

pub async fn workflow_latest(c: &mut AnyConnection, code: &str) -> Result<Option<(i64, String)>, sqlx::Error> {
    sqlx::query_as("SELECT version, body FROM workflow_definitions WHERE code = $1 ORDER BY version DESC LIMIT 1")
        .bind(code)
        .fetch_optional(c)
        .await
}

pub async fn workflow(c: &mut AnyConnection, code: &str, version: i64) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT body FROM workflow_definitions WHERE code = $1 AND version = $2")
        .bind(code)
        .bind(version)
        .fetch_optional(c)
        .await
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
    sqlx::query_as("SELECT id, published_version FROM services WHERE id = $1 OR code = $1")
        .bind(id_or_code)
        .fetch_optional(c)
        .await
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
    sqlx::query_as("SELECT version, body FROM service_versions WHERE service_id = $1 ORDER BY version DESC LIMIT 1")
        .bind(id)
        .fetch_optional(c)
        .await
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
    sqlx::query_as(
        "SELECT service_id, version, body, form_id, workflow_code, workflow_version FROM service_versions \
         WHERE service_id = $1 AND version = $2",
    )
    .bind(id)
    .bind(version)
    .fetch_optional(c)
    .await
}

/// Every published service version, in code order.
pub async fn published(c: &mut AnyConnection) -> Result<Vec<ServiceVersion>, sqlx::Error> {
    sqlx::query_as(
        "SELECT v.service_id, v.version, v.body, v.form_id, v.workflow_code, v.workflow_version \
         FROM services s JOIN service_versions v ON v.service_id = s.id AND v.version = s.published_version \
         ORDER BY s.code",
    )
    .fetch_all(c)
    .await
}

pub async fn form(c: &mut AnyConnection, id: &str) -> Result<Option<(String, i64, String)>, sqlx::Error> {
    sqlx::query_as("SELECT service_id, service_version, body FROM forms WHERE id = $1").bind(id).fetch_optional(c).await
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
    sqlx::query_scalar("SELECT body FROM bundles ORDER BY code").fetch_all(c).await
}
