//! Roles held, their duties, and API token accounts.

use super::HeldRole;
use sqlx::{AnyConnection, Row};

use super::accounts::account_from;
use super::*;

pub async fn roles_of(c: &mut AnyConnection, account_id: &str) -> Result<Vec<HeldRole>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT ro.code, ro.name_zh, ro.name_en, ro.scope, ro.clearance, rp.permission_code \
         FROM account_roles ar JOIN roles ro ON ro.code = ar.role_code \
         LEFT JOIN role_permissions rp ON rp.role_code = ro.code \
         WHERE ar.account_id = $1 ORDER BY ro.code, rp.permission_code",
    )
    .bind(account_id)
    .fetch_all(c)
    .await?;
    roles_from(&rows)
}

/// Folds (role, permission) rows into roles; rows without a role are skipped.
fn roles_from(rows: &[sqlx::any::AnyRow]) -> Result<Vec<HeldRole>, sqlx::Error> {
    let mut roles: Vec<HeldRole> = Vec::new();
    for r in rows {
        let Some(code) = r.try_get::<Option<String>, _>("code")? else { continue };
        let permission: Option<String> = r.try_get("permission_code")?;
        if roles.last().map(|l| l.code != code).unwrap_or(true) {
            let scope: String = r.try_get("scope")?;
            roles.push(HeldRole {
                code,
                name_zh: r.try_get("name_zh")?,
                name_en: r.try_get("name_en")?,
                platform_wide: scope == "all",
                clearance: u8::try_from(r.try_get::<i64, _>("clearance")?).unwrap_or(1),
                permissions: Vec::new(),
            });
        }
        if let (Some(p), Some(last)) = (permission, roles.last_mut()) {
            last.permissions.push(p);
        }
    }
    Ok(roles)
}

/// The account behind a live API token with its roles, in one round trip (every API
/// request pays for this).
pub async fn token_account(
    c: &mut AnyConnection,
    token_hash: &str,
    now: i64,
) -> Result<Option<(AccountRow, Vec<HeldRole>, i64)>, sqlx::Error> {
    let rows = sqlx::query(concat!(
        account_select!(),
        ", t.expires_at AS token_expires_at, ro.code, ro.name_zh, ro.name_en, ro.scope, ro.clearance, \
         rp.permission_code FROM api_tokens t JOIN accounts a ON a.id = t.account_id \
         LEFT JOIN regions r ON r.id = a.region_id LEFT JOIN departments d ON d.id = a.department_id \
         LEFT JOIN account_roles ar ON ar.account_id = a.id LEFT JOIN roles ro ON ro.code = ar.role_code \
         LEFT JOIN role_permissions rp ON rp.role_code = ro.code \
         WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND t.expires_at > $2 \
         ORDER BY ro.code, rp.permission_code"
    ))
    .bind(token_hash)
    .bind(now)
    .fetch_all(c)
    .await?;
    let Some(first) = rows.first() else { return Ok(None) };
    Ok(Some((account_from(first)?, roles_from(&rows)?, first.try_get("token_expires_at")?)))
}

/// The duty (三员分立) a role carries, if the role exists.
pub async fn role_duty(c: &mut AnyConnection, role: &str) -> Result<Option<Option<String>>, sqlx::Error> {
    let row = sqlx::query("SELECT duty FROM roles WHERE code = $1").bind(role).fetch_optional(c).await?;
    row.map(|r| r.try_get::<Option<String>, _>("duty")).transpose()
}

/// Staff of a department who hold a role: (account id, display name), by name.
pub async fn staff_holding(
    c: &mut AnyConnection,
    department_id: &str,
    role: &str,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT a.id, a.display_name FROM accounts a JOIN account_roles r ON r.account_id = a.id \
         WHERE a.kind = 'staff' AND a.department_id = $1 AND r.role_code = $2 ORDER BY a.display_name, a.id",
    )
    .bind(department_id)
    .bind(role)
    .fetch_all(c)
    .await?;
    rows.iter().map(|r| Ok((r.try_get("id")?, r.try_get("display_name")?))).collect()
}

/// The roles an account holds, with the duty each carries.
pub async fn role_codes_of(
    c: &mut AnyConnection,
    account_id: &str,
) -> Result<Vec<(String, Option<String>)>, sqlx::Error> {
    let rows = sqlx::query("SELECT role_code, duty FROM account_roles WHERE account_id = $1 ORDER BY role_code")
        .bind(account_id)
        .fetch_all(c)
        .await?;
    rows.iter().map(|r| Ok((r.try_get("role_code")?, r.try_get("duty")?))).collect()
}

pub async fn insert_account_role(
    c: &mut AnyConnection,
    account_id: &str,
    role: &str,
    duty: Option<&str>,
    granted_at: i64,
    granted_by: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO account_roles (account_id, role_code, duty, granted_at, granted_by) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(account_id)
    .bind(role)
    .bind(duty)
    .bind(granted_at)
    .bind(granted_by)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn delete_account_role(c: &mut AnyConnection, account_id: &str, role: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM account_roles WHERE account_id = $1 AND role_code = $2")
        .bind(account_id)
        .bind(role)
        .execute(c)
        .await?;
    Ok(done.rows_affected() > 0)
}
