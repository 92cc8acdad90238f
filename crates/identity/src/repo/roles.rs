//! Roles held, their duties, and API token accounts.

use super::HeldRole;
use sqlx::{AnyConnection, FromRow};

use super::accounts::{AccountColumns, joined};
use super::*;

pub async fn roles_of(c: &mut AnyConnection, account_id: &str) -> Result<Vec<HeldRole>, sqlx::Error> {
    let rows = sqlx::query_as::<_, RoleColumns>(
        "SELECT ro.code, ro.name_zh, ro.name_en, ro.scope, ro.clearance, rp.permission_code \
         FROM account_roles ar JOIN roles ro ON ro.code = ar.role_code \
         LEFT JOIN role_permissions rp ON rp.role_code = ro.code \
         WHERE ar.account_id = $1 ORDER BY ro.code, rp.permission_code",
    )
    .bind(account_id)
    .fetch_all(c)
    .await?;
    roles_from(rows)
}

/// A (role, permission) row. Each column may be NULL: the role comes from a LEFT JOIN in
/// [`token_account`], the permission from one everywhere.
#[derive(sqlx::FromRow)]
struct RoleColumns {
    code: Option<String>,
    name_zh: Option<String>,
    name_en: Option<String>,
    scope: Option<String>,
    clearance: Option<i64>,
    permission_code: Option<String>,
}

/// Folds (role, permission) rows into roles; rows without a role are skipped.
fn roles_from(rows: Vec<RoleColumns>) -> Result<Vec<HeldRole>, sqlx::Error> {
    let mut roles: Vec<HeldRole> = Vec::new();
    for r in rows {
        let Some(code) = r.code else { continue };
        if roles.last().map(|l| l.code != code).unwrap_or(true) {
            roles.push(HeldRole {
                code,
                name_zh: joined(r.name_zh, "name_zh")?,
                name_en: joined(r.name_en, "name_en")?,
                platform_wide: joined(r.scope, "scope")? == "all",
                clearance: u8::try_from(joined(r.clearance, "clearance")?)
                    .map_err(|_| sqlx::Error::Decode("a role's clearance is out of range".into()))?,
                permissions: Vec::new(),
            });
        }
        if let (Some(p), Some(last)) = (r.permission_code, roles.last_mut()) {
            last.permissions.push(p);
        }
    }
    Ok(roles)
}

/// The account and token columns of [`token_account`]'s rows (the same in each).
#[derive(sqlx::FromRow)]
struct TokenAccountColumns {
    #[sqlx(flatten)]
    account: AccountColumns,
    token_expires_at: i64,
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
    let TokenAccountColumns { account, token_expires_at } = TokenAccountColumns::from_row(first)?;
    let roles = rows.iter().map(RoleColumns::from_row).collect::<Result<Vec<_>, _>>()?;
    Ok(Some((account.try_into()?, roles_from(roles)?, token_expires_at)))
}

/// The duty (三员分立) a role carries, if the role exists.
pub async fn role_duty(c: &mut AnyConnection, role: &str) -> Result<Option<Option<String>>, sqlx::Error> {
    sqlx::query_scalar("SELECT duty FROM roles WHERE code = $1").bind(role).fetch_optional(c).await
}

/// Staff of a department who hold a role: (account id, display name), by name.
pub async fn staff_holding(
    c: &mut AnyConnection,
    department_id: &str,
    role: &str,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT a.id, a.display_name FROM accounts a JOIN account_roles r ON r.account_id = a.id \
         WHERE a.kind = 'staff' AND a.department_id = $1 AND r.role_code = $2 ORDER BY a.display_name, a.id",
    )
    .bind(department_id)
    .bind(role)
    .fetch_all(c)
    .await
}

/// The roles an account holds, with the duty each carries.
pub async fn role_codes_of(
    c: &mut AnyConnection,
    account_id: &str,
) -> Result<Vec<(String, Option<String>)>, sqlx::Error> {
    sqlx::query_as("SELECT role_code, duty FROM account_roles WHERE account_id = $1 ORDER BY role_code")
        .bind(account_id)
        .fetch_all(c)
        .await
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
