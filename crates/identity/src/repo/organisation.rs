//! Regions, departments and the posts staff hold.

use super::{DepartmentRef, RegionRef};
use sqlx::AnyConnection;

/// A region's columns, as `SELECT id, code, name, level, path` reads them.
#[derive(sqlx::FromRow)]
pub(super) struct RegionColumns {
    id: String,
    code: String,
    name: String,
    level: String,
    path: String,
}

impl From<RegionColumns> for RegionRef {
    fn from(r: RegionColumns) -> Self {
        RegionRef { id: r.id, code: r.code, name: r.name, level: r.level, path: r.path }
    }
}

pub async fn region_by_code(c: &mut AnyConnection, code: &str) -> Result<Option<RegionRef>, sqlx::Error> {
    let row = sqlx::query_as::<_, RegionColumns>("SELECT id, code, name, level, path FROM regions WHERE code = $1")
        .bind(code)
        .fetch_optional(c)
        .await?;
    Ok(row.map(RegionRef::from))
}

pub async fn region_path_by_id(c: &mut AnyConnection, id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT path FROM regions WHERE id = $1").bind(id).fetch_optional(c).await
}

pub async fn region_count(c: &mut AnyConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) AS n FROM regions").fetch_one(c).await
}

pub async fn insert_region(
    c: &mut AnyConnection,
    id: &str,
    code: &str,
    name: &str,
    level: &str,
    parent_id: Option<&str>,
    path: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO regions (id, code, name, level, parent_id, path) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(id)
        .bind(code)
        .bind(name)
        .bind(level)
        .bind(parent_id)
        .bind(path)
        .execute(c)
        .await?;
    Ok(())
}

pub(super) use kernel::authz::subtree_bounds;

/// Every region under (and including) the subtree at `path`.
pub async fn regions_in_subtree(c: &mut AnyConnection, path: &str) -> Result<Vec<RegionRef>, sqlx::Error> {
    let (low, high) = subtree_bounds(path);
    let rows = sqlx::query_as::<_, RegionColumns>(
        "SELECT id, code, name, level, path FROM regions WHERE path >= $1 AND path < $2 ORDER BY path",
    )
    .bind(low)
    .bind(high)
    .fetch_all(c)
    .await?;
    Ok(rows.into_iter().map(RegionRef::from).collect())
}

pub async fn department_by_code(
    c: &mut AnyConnection,
    code: &str,
) -> Result<Option<(DepartmentRef, String)>, sqlx::Error> {
    let row: Option<(String, String, String, String)> =
        sqlx::query_as("SELECT id, code, name, region_id FROM departments WHERE code = $1")
            .bind(code)
            .fetch_optional(c)
            .await?;
    Ok(row.map(|(id, code, name, region_id)| (DepartmentRef { id, code, name }, region_id)))
}

/// A department by its code, with the path of its region and its line of work.
/// How a department is looked up.
#[derive(Debug, Clone, Copy)]
pub enum DepartmentKey {
    Code,
    Id,
}

pub async fn department_placed(
    c: &mut AnyConnection,
    key: DepartmentKey,
    value: &str,
) -> Result<Option<(DepartmentRef, String, Option<String>)>, sqlx::Error> {
    let sql = match key {
        DepartmentKey::Code => {
            "SELECT d.id, d.code, d.name, r.path, d.kind FROM departments d JOIN regions r ON r.id = d.region_id \
             WHERE d.code = $1"
        }
        DepartmentKey::Id => {
            "SELECT d.id, d.code, d.name, r.path, d.kind FROM departments d JOIN regions r ON r.id = d.region_id \
             WHERE d.id = $1"
        }
    };
    let row: Option<(String, String, String, String, Option<String>)> =
        sqlx::query_as(sql).bind(value).fetch_optional(c).await?;
    Ok(row.map(|(id, code, name, path, kind)| (DepartmentRef { id, code, name }, path, kind)))
}

pub async fn insert_department(
    c: &mut AnyConnection,
    id: &str,
    code: &str,
    name: &str,
    region_id: &str,
    kind: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO departments (id, code, name, region_id, kind) VALUES ($1, $2, $3, $4, $5)")
        .bind(id)
        .bind(code)
        .bind(name)
        .bind(region_id)
        .bind(kind)
        .execute(c)
        .await?;
    Ok(())
}

pub async fn department_name(c: &mut AnyConnection, id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT name FROM departments WHERE id = $1").bind(id).fetch_optional(c).await
}

/// The department of `kind` nearest to a region: in it, or in the closest region above.
pub async fn nearest_department(
    c: &mut AnyConnection,
    region_path: &str,
    kind: &str,
) -> Result<Option<DepartmentRef>, sqlx::Error> {
    let row: Option<(String, String, String)> = sqlx::query_as(
        "SELECT d.id, d.code, d.name FROM departments d JOIN regions r ON r.id = d.region_id \
         WHERE d.kind = $1 AND substr($2, 1, length(r.path)) = r.path ORDER BY length(r.path) DESC, d.code LIMIT 1",
    )
    .bind(kind)
    .bind(region_path)
    .fetch_optional(c)
    .await?;
    Ok(row.map(|(id, code, name)| DepartmentRef { id, code, name }))
}

/// Who an acting account is: name, department and role names.
#[derive(Debug, Clone)]
pub struct Post {
    pub name: String,
    pub department: Option<String>,
    pub roles: Vec<String>,
}

/// An acting account's post, for showing who accessed data.
pub async fn post_of(c: &mut AnyConnection, account_id: &str) -> Result<Option<Post>, sqlx::Error> {
    let row: Option<(String, Option<String>)> = sqlx::query_as(
        "SELECT a.display_name, d.name AS department FROM accounts a LEFT JOIN departments d ON d.id = a.department_id \
         WHERE a.id = $1",
    )
    .bind(account_id)
    .fetch_optional(&mut *c)
    .await?;
    let Some((name, department)) = row else { return Ok(None) };
    let roles = sqlx::query_scalar(
        "SELECT ro.name_zh FROM account_roles ar JOIN roles ro ON ro.code = ar.role_code WHERE ar.account_id = $1 ORDER BY ro.code",
    )
    .bind(account_id)
    .fetch_all(c)
    .await?;
    Ok(Some(Post { name, department, roles }))
}
