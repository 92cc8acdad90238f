//! GovStack database descriptions (migration 0013).

use sqlx::AnyConnection;

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
    sqlx::query_as(
        "SELECT id, name, code, group_id, display_order, data_index_increment FROM registry_database_groups \
         ORDER BY display_order, id",
    )
    .fetch_all(c)
    .await
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
    sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(group_id).fetch_all(c).await
}

pub async fn database(c: &mut AnyConnection, id: i64) -> Result<Option<DatabaseRow>, sqlx::Error> {
    let q = format!("{DATABASE} WHERE id = $1");
    sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(id).fetch_optional(c).await
}

/// The description with this name (names are compared without regard to case).
pub async fn database_by_name(c: &mut AnyConnection, name: &str) -> Result<Option<DatabaseRow>, sqlx::Error> {
    let q = format!("{DATABASE} WHERE LOWER(name) = LOWER($1) ORDER BY id LIMIT 1");
    sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(name).fetch_optional(c).await
}

pub async fn next_database_id(c: &mut AnyConnection) -> Result<i64, sqlx::Error> {
    let max: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) AS m FROM registry_databases").fetch_one(c).await?;
    Ok(max.saturating_add(1))
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
