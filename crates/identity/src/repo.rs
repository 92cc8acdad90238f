//! SQL for the identity tables. Nothing outside this module touches them.

use sqlx::FromRow;
use sqlx::{AnyConnection, Row};

use super::{AccountKind, DepartmentRef, HeldRole, RegionRef};

macro_rules! resident_select {
    () => {
        "SELECT c.account_id, c.real_name, c.id_number_enc, c.mobile_enc, c.address_enc, \
         r.id, r.code, r.name, r.level, r.path \
         FROM citizens c JOIN accounts a ON a.id = c.account_id JOIN regions r ON r.id = a.region_id"
    };
}

fn region_from(row: &sqlx::any::AnyRow) -> Result<RegionRef, sqlx::Error> {
    Ok(RegionRef {
        id: row.try_get("id")?,
        code: row.try_get("code")?,
        name: row.try_get("name")?,
        level: row.try_get("level")?,
        path: row.try_get("path")?,
    })
}

pub async fn region_by_code(c: &mut AnyConnection, code: &str) -> Result<Option<RegionRef>, sqlx::Error> {
    let row = sqlx::query("SELECT id, code, name, level, path FROM regions WHERE code = $1")
        .bind(code)
        .fetch_optional(c)
        .await?;
    row.as_ref().map(region_from).transpose()
}

pub async fn region_count(c: &mut AnyConnection) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT COUNT(*) AS n FROM regions").fetch_one(c).await?.try_get("n")
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

/// The bounds of a materialized-path subtree as a range (`path <= x < upper`), which both
/// databases answer from the unique index; `LIKE 'prefix%'` with a parameter cannot.
fn subtree_bounds(path: &str) -> (String, String) {
    // Paths end with '/', and '0' is the character after '/'.
    let upper = match path.strip_suffix('/') {
        Some(stem) => format!("{stem}0"),
        None => format!("{path}\u{10ffff}"),
    };
    (path.to_string(), upper)
}

/// Every region under (and including) the subtree at `path`.
pub async fn regions_in_subtree(c: &mut AnyConnection, path: &str) -> Result<Vec<RegionRef>, sqlx::Error> {
    let (low, high) = subtree_bounds(path);
    let rows =
        sqlx::query("SELECT id, code, name, level, path FROM regions WHERE path >= $1 AND path < $2 ORDER BY path")
            .bind(low)
            .bind(high)
            .fetch_all(c)
            .await?;
    rows.iter().map(region_from).collect()
}

pub async fn department_by_code(
    c: &mut AnyConnection,
    code: &str,
) -> Result<Option<(DepartmentRef, String)>, sqlx::Error> {
    let row = sqlx::query("SELECT id, code, name, region_id FROM departments WHERE code = $1")
        .bind(code)
        .fetch_optional(c)
        .await?;
    row.map(|r| {
        Ok((
            DepartmentRef { id: r.try_get("id")?, code: r.try_get("code")?, name: r.try_get("name")? },
            r.try_get("region_id")?,
        ))
    })
    .transpose()
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
    let row = sqlx::query("SELECT name FROM departments WHERE id = $1").bind(id).fetch_optional(c).await?;
    row.map(|r| r.try_get("name")).transpose()
}

/// The department of `kind` nearest to a region: in it, or in the closest region above.
pub async fn nearest_department(
    c: &mut AnyConnection,
    region_path: &str,
    kind: &str,
) -> Result<Option<DepartmentRef>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT d.id, d.code, d.name FROM departments d JOIN regions r ON r.id = d.region_id \
         WHERE d.kind = $1 AND substr($2, 1, length(r.path)) = r.path ORDER BY length(r.path) DESC, d.code LIMIT 1",
    )
    .bind(kind)
    .bind(region_path)
    .fetch_optional(c)
    .await?;
    row.map(|r| Ok(DepartmentRef { id: r.try_get("id")?, code: r.try_get("code")?, name: r.try_get("name")? }))
        .transpose()
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
    let row = sqlx::query(
        "SELECT a.display_name, d.name AS department FROM accounts a LEFT JOIN departments d ON d.id = a.department_id \
         WHERE a.id = $1",
    )
    .bind(account_id)
    .fetch_optional(&mut *c)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let roles = sqlx::query(
        "SELECT ro.name_zh FROM account_roles ar JOIN roles ro ON ro.code = ar.role_code WHERE ar.account_id = $1 ORDER BY ro.code",
    )
    .bind(account_id)
    .fetch_all(c)
    .await?
    .iter()
    .map(|r| r.try_get("name_zh"))
    .collect::<Result<Vec<String>, _>>()?;
    Ok(Some(Post { name: row.try_get("display_name")?, department: row.try_get("department")?, roles }))
}

#[derive(sqlx::FromRow)]
pub struct CorrectionRow {
    pub id: String,
    pub account_id: String,
    pub department_id: String,
    pub department: String,
    pub field: String,
    pub requested_enc: String,
    pub reason: String,
    pub status: String,
    pub created_at: i64,
    pub region_path: String,
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_correction(
    c: &mut AnyConnection,
    id: &str,
    account_id: &str,
    department_id: &str,
    field: &str,
    requested_enc: &str,
    reason: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO correction_requests (id, account_id, department_id, field, requested_enc, reason, status, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'open', $7)",
    )
    .bind(id)
    .bind(account_id)
    .bind(department_id)
    .bind(field)
    .bind(requested_enc)
    .bind(reason)
    .bind(now)
    .execute(c)
    .await?;
    Ok(())
}

macro_rules! correction_select {
    () => {
        "SELECT q.id, q.account_id, q.department_id, d.name AS department, q.field, q.requested_enc, q.reason, q.status, q.created_at, \
         r.path AS region_path FROM correction_requests q JOIN departments d ON d.id = q.department_id \
         JOIN regions r ON r.id = d.region_id"
    };
}

/// Correction requests whose sealed value names `key_id` (the id is the ciphertext prefix).
pub async fn corrections_sealed_under(c: &mut AnyConnection, key_id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT COUNT(*) AS n FROM correction_requests WHERE requested_enc LIKE $1")
        .bind(format!("{key_id}:%"))
        .fetch_one(c)
        .await?
        .try_get("n")
}

pub async fn corrections_not_under(c: &mut AnyConnection, key_id: &str) -> Result<Vec<(String, String)>, sqlx::Error> {
    let rows = sqlx::query("SELECT id, requested_enc FROM correction_requests WHERE requested_enc NOT LIKE $1")
        .bind(format!("{key_id}:%"))
        .fetch_all(c)
        .await?;
    rows.iter().map(|r| Ok((r.try_get("id")?, r.try_get("requested_enc")?))).collect()
}

pub async fn reseal_correction(c: &mut AnyConnection, id: &str, sealed: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE correction_requests SET requested_enc = $1 WHERE id = $2")
        .bind(sealed)
        .bind(id)
        .execute(c)
        .await?;
    Ok(())
}

pub async fn corrections_of(c: &mut AnyConnection, account_id: &str) -> Result<Vec<CorrectionRow>, sqlx::Error> {
    let rows = sqlx::query(concat!(correction_select!(), " WHERE q.account_id = $1 ORDER BY q.created_at DESC"))
        .bind(account_id)
        .fetch_all(c)
        .await?;
    rows.iter().map(CorrectionRow::from_row).collect()
}

/// Open requests addressed to departments in a region subtree, oldest first.
pub async fn corrections_in_subtree(
    c: &mut AnyConnection,
    path: &str,
    limit: i64,
) -> Result<Vec<CorrectionRow>, sqlx::Error> {
    let (low, high) = subtree_bounds(path);
    let rows = sqlx::query(concat!(
        correction_select!(),
        " WHERE q.status = 'open' AND r.path >= $1 AND r.path < $2 ORDER BY q.created_at LIMIT $3"
    ))
    .bind(low)
    .bind(high)
    .bind(limit)
    .fetch_all(c)
    .await?;
    rows.iter().map(CorrectionRow::from_row).collect()
}

pub async fn departments_in_subtree(
    c: &mut AnyConnection,
    path: &str,
) -> Result<Vec<(DepartmentRef, String)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT d.id, d.code, d.name, r.name AS region_name FROM departments d \
         JOIN regions r ON r.id = d.region_id WHERE r.path >= $1 AND r.path < $2 ORDER BY r.path, d.code",
    )
    .bind(subtree_bounds(path).0)
    .bind(subtree_bounds(path).1)
    .fetch_all(c)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                DepartmentRef { id: r.try_get("id")?, code: r.try_get("code")?, name: r.try_get("name")? },
                r.try_get("region_name")?,
            ))
        })
        .collect()
}

pub struct NewAccountRow<'a> {
    pub id: &'a str,
    pub kind: AccountKind,
    pub username: &'a str,
    pub display_name: &'a str,
    pub password_hash: Option<&'a str>,
    pub must_change_password: bool,
    pub totp_secret: Option<&'a str>,
    pub region_id: Option<&'a str>,
    pub department_id: Option<&'a str>,
    pub created_at: i64,
}

pub async fn insert_account(c: &mut AnyConnection, a: &NewAccountRow<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO accounts (id, kind, username, display_name, password_hash, must_change_password, \
         totp_secret, region_id, department_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(a.id)
    .bind(a.kind.as_str())
    .bind(a.username)
    .bind(a.display_name)
    .bind(a.password_hash)
    .bind(i64::from(a.must_change_password))
    .bind(a.totp_secret)
    .bind(a.region_id)
    .bind(a.department_id)
    .bind(a.created_at)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn username_taken(c: &mut AnyConnection, username: &str) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query("SELECT 1 AS one FROM accounts WHERE username = $1")
        .bind(username)
        .fetch_optional(c)
        .await?
        .is_some())
}

/// A citizen's protected identifiers as stored: sealed values and blind indexes.
pub struct SealedCitizen<'a> {
    pub id_number_enc: &'a str,
    pub id_number_bidx: &'a str,
    pub mobile_enc: &'a str,
    pub mobile_bidx: &'a str,
    pub address_enc: Option<&'a str>,
    pub key_id: &'a str,
}

pub async fn insert_citizen(
    c: &mut AnyConnection,
    account_id: &str,
    real_name: &str,
    s: &SealedCitizen<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO citizens (account_id, real_name, id_number_enc, id_number_bidx, mobile_enc, mobile_bidx, \
         address_enc, key_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(account_id)
    .bind(real_name)
    .bind(s.id_number_enc)
    .bind(s.id_number_bidx)
    .bind(s.mobile_enc)
    .bind(s.mobile_bidx)
    .bind(s.address_enc)
    .bind(s.key_id)
    .execute(c)
    .await?;
    Ok(())
}

/// Rows whose ciphertexts are not under `key_id`, for re-encryption.
pub async fn citizens_not_under(
    c: &mut AnyConnection,
    key_id: &str,
    limit: i64,
) -> Result<Vec<ResidentRow>, sqlx::Error> {
    let rows = sqlx::query(concat!(resident_select!(), " WHERE c.key_id <> $1 ORDER BY c.account_id LIMIT $2"))
        .bind(key_id)
        .bind(limit)
        .fetch_all(c)
        .await?;
    rows.iter().map(resident_from).collect()
}

pub async fn reseal_citizen(
    c: &mut AnyConnection,
    account_id: &str,
    id_number_enc: &str,
    mobile_enc: &str,
    address_enc: Option<&str>,
    key_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE citizens SET id_number_enc = $1, mobile_enc = $2, address_enc = $3, key_id = $4 WHERE account_id = $5",
    )
    .bind(id_number_enc)
    .bind(mobile_enc)
    .bind(address_enc)
    .bind(key_id)
    .bind(account_id)
    .execute(c)
    .await?;
    Ok(())
}

/// How many citizens' ciphertexts use `key_id`, and how many do not.
pub async fn citizens_by_key(c: &mut AnyConnection, key_id: &str) -> Result<(i64, i64), sqlx::Error> {
    let row = sqlx::query(
        "SELECT COALESCE(SUM(CASE WHEN key_id = $1 THEN 1 ELSE 0 END), 0) AS under, \
         COALESCE(SUM(CASE WHEN key_id <> $1 THEN 1 ELSE 0 END), 0) AS other FROM citizens",
    )
    .bind(key_id)
    .fetch_one(c)
    .await?;
    Ok((row.try_get("under")?, row.try_get("other")?))
}

pub async fn citizen_by_id_number_index(c: &mut AnyConnection, bidx: &str) -> Result<Option<String>, sqlx::Error> {
    let row =
        sqlx::query("SELECT account_id FROM citizens WHERE id_number_bidx = $1").bind(bidx).fetch_optional(c).await?;
    row.map(|r| r.try_get("account_id")).transpose()
}

/// The residents' accounts among these ID-number blind indexes: (index, account).
pub async fn citizens_by_id_number_indexes(
    c: &mut AnyConnection,
    indexes: &[&str],
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let mut found = Vec::new();
    for chunk in indexes.chunks(kernel::db::rows_per_insert(1)) {
        let list: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql =
            format!("SELECT id_number_bidx, account_id FROM citizens WHERE id_number_bidx IN ({})", list.join(", "));
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for index in chunk {
            q = q.bind(*index);
        }
        for r in q.fetch_all(&mut *c).await? {
            found.push((r.try_get("id_number_bidx")?, r.try_get("account_id")?));
        }
    }
    Ok(found)
}

pub async fn insert_enterprise(
    c: &mut AnyConnection,
    account_id: &str,
    name: &str,
    credit_code: &str,
    legal_representative: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO enterprises (account_id, name, credit_code, legal_representative) VALUES ($1, $2, $3, $4)",
    )
    .bind(account_id)
    .bind(name)
    .bind(credit_code)
    .bind(legal_representative)
    .execute(c)
    .await?;
    Ok(())
}

/// What sign-in needs to know about an account.
pub struct Credentials {
    pub id: String,
    pub kind: AccountKind,
    pub username: String,
    pub password_hash: Option<String>,
    pub totp_secret: Option<String>,
    pub totp_last_step: i64,
    pub must_change_password: bool,
}

fn credentials_from(r: &sqlx::any::AnyRow) -> Result<Credentials, sqlx::Error> {
    let kind: String = r.try_get("kind")?;
    Ok(Credentials {
        id: r.try_get("id")?,
        kind: AccountKind::parse(&kind).ok_or_else(|| sqlx::Error::Decode(format!("account kind {kind}").into()))?,
        username: r.try_get("username")?,
        password_hash: r.try_get("password_hash")?,
        totp_secret: r.try_get("totp_secret")?,
        totp_last_step: r.try_get("totp_last_step")?,
        must_change_password: r.try_get::<i64, _>("must_change_password")? != 0,
    })
}

macro_rules! credentials_select {
    () => {
        "SELECT id, kind, username, password_hash, totp_secret, totp_last_step, must_change_password FROM accounts"
    };
}

pub async fn credentials_by_username(
    c: &mut AnyConnection,
    username: &str,
) -> Result<Option<Credentials>, sqlx::Error> {
    let row =
        sqlx::query(concat!(credentials_select!(), " WHERE username = $1")).bind(username).fetch_optional(c).await?;
    row.as_ref().map(credentials_from).transpose()
}

pub async fn credentials_by_id(c: &mut AnyConnection, id: &str) -> Result<Option<Credentials>, sqlx::Error> {
    let row = sqlx::query(concat!(credentials_select!(), " WHERE id = $1")).bind(id).fetch_optional(c).await?;
    row.as_ref().map(credentials_from).transpose()
}

/// Profile of an account as the principal sees it.
#[derive(Clone)]
pub struct AccountRow {
    pub id: String,
    pub kind: AccountKind,
    pub username: String,
    pub display_name: String,
    pub must_change_password: bool,
    pub has_totp: bool,
    pub locale: Option<String>,
    pub elder_mode: bool,
    pub region: Option<RegionRef>,
    pub department: Option<DepartmentRef>,
}

macro_rules! account_select {
    () => {
        "SELECT a.id, a.kind, a.username, a.display_name, a.must_change_password, \
         CASE WHEN a.totp_secret IS NULL THEN 0 ELSE 1 END AS has_totp, a.locale, a.elder_mode, \
         r.id AS r_id, r.code AS r_code, r.name AS r_name, r.level AS r_level, r.path AS r_path, \
         d.id AS d_id, d.code AS d_code, d.name AS d_name"
    };
}

/// Display names by account id, for the ids that exist.
pub async fn display_names(
    c: &mut AnyConnection,
    ids: &[&str],
) -> Result<std::collections::HashMap<String, String>, sqlx::Error> {
    let mut out = std::collections::HashMap::new();
    for chunk in ids.chunks(500) {
        let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!("SELECT id, display_name FROM accounts WHERE id IN ({})", placeholders.join(", "));
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            q = q.bind(*id);
        }
        for r in q.fetch_all(&mut *c).await? {
            out.insert(r.try_get("id")?, r.try_get("display_name")?);
        }
    }
    Ok(out)
}

pub async fn account(c: &mut AnyConnection, id: &str) -> Result<Option<AccountRow>, sqlx::Error> {
    let row = sqlx::query(concat!(
        account_select!(),
        " FROM accounts a LEFT JOIN regions r ON r.id = a.region_id \
         LEFT JOIN departments d ON d.id = a.department_id WHERE a.id = $1"
    ))
    .bind(id)
    .fetch_optional(c)
    .await?;
    row.as_ref().map(account_from).transpose()
}

fn account_from(r: &sqlx::any::AnyRow) -> Result<AccountRow, sqlx::Error> {
    let kind: String = r.try_get("kind")?;
    let region = match r.try_get::<Option<String>, _>("r_id")? {
        Some(id) => Some(RegionRef {
            id,
            code: r.try_get("r_code")?,
            name: r.try_get("r_name")?,
            level: r.try_get("r_level")?,
            path: r.try_get("r_path")?,
        }),
        None => None,
    };
    let department = match r.try_get::<Option<String>, _>("d_id")? {
        Some(id) => Some(DepartmentRef { id, code: r.try_get("d_code")?, name: r.try_get("d_name")? }),
        None => None,
    };
    Ok(AccountRow {
        id: r.try_get("id")?,
        kind: AccountKind::parse(&kind).ok_or_else(|| sqlx::Error::Decode(format!("account kind {kind}").into()))?,
        username: r.try_get("username")?,
        display_name: r.try_get("display_name")?,
        must_change_password: r.try_get::<i64, _>("must_change_password")? != 0,
        has_totp: r.try_get::<i64, _>("has_totp")? != 0,
        locale: r.try_get("locale")?,
        elder_mode: r.try_get::<i64, _>("elder_mode")? != 0,
        region,
        department,
    })
}

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

pub async fn set_password(
    c: &mut AnyConnection,
    account_id: &str,
    phc: &str,
    must_change: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE accounts SET password_hash = $1, must_change_password = $2 WHERE id = $3")
        .bind(phc)
        .bind(i64::from(must_change))
        .bind(account_id)
        .execute(c)
        .await?;
    Ok(())
}

/// Claims a TOTP time step: true only for the one request that moves the step forward, so
/// a code cannot be used twice even by concurrent requests on several nodes.
pub async fn claim_totp_step(c: &mut AnyConnection, account_id: &str, step: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE accounts SET totp_last_step = $1 WHERE id = $2 AND totp_last_step < $1")
        .bind(step)
        .bind(account_id)
        .execute(c)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn pending_totp(c: &mut AnyConnection, account_id: &str) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query("SELECT totp_pending_secret FROM accounts WHERE id = $1")
        .bind(account_id)
        .fetch_optional(c)
        .await?;
    Ok(row.map(|r| r.try_get::<Option<String>, _>("totp_pending_secret")).transpose()?.flatten())
}

pub async fn set_pending_totp(c: &mut AnyConnection, account_id: &str, sealed: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE accounts SET totp_pending_secret = $1 WHERE id = $2")
        .bind(sealed)
        .bind(account_id)
        .execute(c)
        .await?;
    Ok(())
}

pub async fn enable_totp(c: &mut AnyConnection, account_id: &str, sealed: &str, step: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE accounts SET totp_secret = $1, totp_pending_secret = NULL, totp_last_step = $2 WHERE id = $3")
        .bind(sealed)
        .bind(step)
        .bind(account_id)
        .execute(c)
        .await?;
    Ok(())
}

pub async fn replace_recovery_codes(
    c: &mut AnyConnection,
    account_id: &str,
    hashes: &[String],
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM recovery_codes WHERE account_id = $1").bind(account_id).execute(&mut *c).await?;
    for h in hashes {
        sqlx::query("INSERT INTO recovery_codes (account_id, code_hash) VALUES ($1, $2)")
            .bind(account_id)
            .bind(h)
            .execute(&mut *c)
            .await?;
    }
    Ok(())
}

/// Marks an unused recovery code as used; false when there is no such unused code.
pub async fn use_recovery_code(
    c: &mut AnyConnection,
    account_id: &str,
    hash: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE recovery_codes SET used_at = $1 WHERE account_id = $2 AND code_hash = $3 AND used_at IS NULL",
    )
    .bind(now)
    .bind(account_id)
    .bind(hash)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn unused_recovery_codes(c: &mut AnyConnection, account_id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT COUNT(*) AS n FROM recovery_codes WHERE account_id = $1 AND used_at IS NULL")
        .bind(account_id)
        .fetch_one(c)
        .await?
        .try_get("n")
}

pub async fn set_preferences(
    c: &mut AnyConnection,
    account_id: &str,
    locale: Option<&str>,
    elder_mode: Option<bool>,
) -> Result<(), sqlx::Error> {
    if let Some(locale) = locale {
        sqlx::query("UPDATE accounts SET locale = $1 WHERE id = $2")
            .bind(locale)
            .bind(account_id)
            .execute(&mut *c)
            .await?;
    }
    if let Some(elder) = elder_mode {
        sqlx::query("UPDATE accounts SET elder_mode = $1 WHERE id = $2")
            .bind(i64::from(elder))
            .bind(account_id)
            .execute(&mut *c)
            .await?;
    }
    Ok(())
}

// --- throttles -------------------------------------------------------------------------

/// Until when `key` is locked (0: not locked).
pub async fn locked_until(c: &mut AnyConnection, key: &str) -> Result<i64, sqlx::Error> {
    let row =
        sqlx::query("SELECT locked_until FROM sign_in_throttles WHERE key = $1").bind(key).fetch_optional(c).await?;
    Ok(row.map(|r| r.try_get("locked_until")).transpose()?.unwrap_or(0))
}

/// Counts one failure atomically (failures older than `window_start` no longer count) and
/// returns the new count, so parallel guesses cannot share one increment.
pub async fn count_failure(c: &mut AnyConnection, key: &str, now: i64, window_start: i64) -> Result<i64, sqlx::Error> {
    sqlx::query(
        "INSERT INTO sign_in_throttles (key, failures, last_failure, locked_until) VALUES ($1, 1, $2, 0) \
         ON CONFLICT (key) DO UPDATE SET \
         failures = CASE WHEN sign_in_throttles.last_failure >= $3 THEN sign_in_throttles.failures + 1 ELSE 1 END, \
         last_failure = $2 RETURNING failures",
    )
    .bind(key)
    .bind(now)
    .bind(window_start)
    .fetch_one(c)
    .await?
    .try_get("failures")
}

pub async fn lock_until(c: &mut AnyConnection, key: &str, until: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE sign_in_throttles SET locked_until = $1 WHERE key = $2 AND locked_until < $1")
        .bind(until)
        .bind(key)
        .execute(c)
        .await?;
    Ok(())
}

pub async fn clear_throttle(c: &mut AnyConnection, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sign_in_throttles WHERE key = $1").bind(key).execute(c).await?;
    Ok(())
}

// --- sessions and tokens ---------------------------------------------------------------

#[derive(sqlx::FromRow)]
pub struct SessionRow {
    pub id: String,
    pub account_id: String,
    pub stage: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub source: String,
    pub user_agent: String,
}

pub async fn insert_session(c: &mut AnyConnection, token_hash: &str, s: &SessionRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sessions (token_hash, id, account_id, stage, created_at, last_seen_at, expires_at, source, user_agent) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(token_hash)
    .bind(&s.id)
    .bind(&s.account_id)
    .bind(&s.stage)
    .bind(s.created_at)
    .bind(s.last_seen_at)
    .bind(s.expires_at)
    .bind(&s.source)
    .bind(&s.user_agent)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn session_by_hash(c: &mut AnyConnection, token_hash: &str) -> Result<Option<SessionRow>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT id, account_id, stage, created_at, last_seen_at, expires_at, source, user_agent FROM sessions \
         WHERE token_hash = $1 AND revoked_at IS NULL",
    )
    .bind(token_hash)
    .fetch_optional(c)
    .await?;
    row.as_ref().map(SessionRow::from_row).transpose()
}

pub async fn touch_session(c: &mut AnyConnection, id: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2").bind(now).bind(id).execute(c).await?;
    Ok(())
}

pub async fn active_sessions(
    c: &mut AnyConnection,
    account_id: &str,
    now: i64,
) -> Result<Vec<SessionRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, account_id, stage, created_at, last_seen_at, expires_at, source, user_agent FROM sessions \
         WHERE account_id = $1 AND revoked_at IS NULL AND expires_at > $2 AND stage = 'full' ORDER BY created_at DESC",
    )
    .bind(account_id)
    .bind(now)
    .fetch_all(c)
    .await?;
    rows.iter().map(SessionRow::from_row).collect()
}

pub async fn revoke_session(c: &mut AnyConnection, account_id: &str, id: &str, now: i64) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND account_id = $3 AND revoked_at IS NULL")
            .bind(now)
            .bind(id)
            .bind(account_id)
            .execute(c)
            .await?;
    Ok(done.rows_affected() > 0)
}

/// Revokes every session of an account except `keep` (a session id), returning how many.
pub async fn revoke_sessions(
    c: &mut AnyConnection,
    account_id: &str,
    keep: Option<&str>,
    now: i64,
) -> Result<u64, sqlx::Error> {
    let done =
        sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE account_id = $2 AND revoked_at IS NULL AND id <> $3")
            .bind(now)
            .bind(account_id)
            .bind(keep.unwrap_or(""))
            .execute(c)
            .await?;
    Ok(done.rows_affected())
}

pub async fn insert_token(
    c: &mut AnyConnection,
    token_hash: &str,
    id: &str,
    account_id: &str,
    created_at: i64,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO api_tokens (token_hash, id, account_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash)
    .bind(id)
    .bind(account_id)
    .bind(created_at)
    .bind(expires_at)
    .execute(c)
    .await?;
    Ok(())
}

/// (token id, account id) of a live token.
pub async fn live_token(
    c: &mut AnyConnection,
    token_hash: &str,
    now: i64,
) -> Result<Option<(String, String)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT id, account_id FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(c)
    .await?;
    row.map(|r| Ok((r.try_get("id")?, r.try_get("account_id")?))).transpose()
}

pub async fn revoke_token(c: &mut AnyConnection, token_hash: &str, now: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(token_hash)
        .execute(c)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn revoke_tokens(c: &mut AnyConnection, account_id: &str, now: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE account_id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(account_id)
        .execute(c)
        .await?;
    Ok(done.rows_affected())
}

// --- people records --------------------------------------------------------------------

pub struct ResidentRow {
    pub account_id: String,
    pub real_name: String,
    pub id_number_enc: String,
    pub mobile_enc: String,
    pub address_enc: Option<String>,
    pub region: RegionRef,
}

pub async fn resident(c: &mut AnyConnection, account_id: &str) -> Result<Option<ResidentRow>, sqlx::Error> {
    let row =
        sqlx::query(concat!(resident_select!(), " WHERE c.account_id = $1")).bind(account_id).fetch_optional(c).await?;
    row.as_ref().map(resident_from).transpose()
}

fn resident_from(r: &sqlx::any::AnyRow) -> Result<ResidentRow, sqlx::Error> {
    Ok(ResidentRow {
        account_id: r.try_get("account_id")?,
        real_name: r.try_get("real_name")?,
        id_number_enc: r.try_get("id_number_enc")?,
        mobile_enc: r.try_get("mobile_enc")?,
        address_enc: r.try_get("address_enc")?,
        region: region_from(r)?,
    })
}

pub struct EnterpriseRow {
    pub account_id: String,
    pub name: String,
    pub credit_code: String,
    pub legal_representative: String,
    pub region: RegionRef,
}

pub async fn enterprise(c: &mut AnyConnection, account_id: &str) -> Result<Option<EnterpriseRow>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT e.account_id, e.name AS e_name, e.credit_code, e.legal_representative, r.id, r.code, r.name, r.level, r.path \
         FROM enterprises e JOIN accounts a ON a.id = e.account_id JOIN regions r ON r.id = a.region_id \
         WHERE e.account_id = $1",
    )
    .bind(account_id)
    .fetch_optional(c)
    .await?;
    row.map(|r| {
        Ok(EnterpriseRow {
            account_id: r.try_get("account_id")?,
            name: r.try_get("e_name")?,
            credit_code: r.try_get("credit_code")?,
            legal_representative: r.try_get("legal_representative")?,
            region: region_from(&r)?,
        })
    })
    .transpose()
}

/// Residents living in a region subtree, in a stable order.
pub async fn residents_in_subtree(
    c: &mut AnyConnection,
    path: &str,
    limit: i64,
) -> Result<Vec<ResidentRow>, sqlx::Error> {
    let rows =
        sqlx::query(concat!(resident_select!(), " WHERE r.path >= $1 AND r.path < $2 ORDER BY c.account_id LIMIT $3"))
            .bind(subtree_bounds(path).0)
            .bind(subtree_bounds(path).1)
            .bind(limit)
            .fetch_all(c)
            .await?;
    rows.iter().map(resident_from).collect()
}

pub async fn account_id_by_username(c: &mut AnyConnection, username: &str) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query("SELECT id FROM accounts WHERE username = $1").bind(username).fetch_optional(c).await?;
    row.map(|r| r.try_get("id")).transpose()
}

pub async fn set_notification_email(c: &mut AnyConnection, id: &str, sealed: Option<&str>) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE accounts SET notification_email_enc = $2 WHERE id = $1")
        .bind(id)
        .bind(sealed)
        .execute(c)
        .await?;
    Ok(())
}

pub async fn notification_email(c: &mut AnyConnection, id: &str) -> Result<Option<String>, sqlx::Error> {
    let row =
        sqlx::query("SELECT notification_email_enc FROM accounts WHERE id = $1").bind(id).fetch_optional(c).await?;
    Ok(row.map(|r| r.try_get::<Option<String>, _>("notification_email_enc")).transpose()?.flatten())
}

#[cfg(test)]
mod tests {
    #[test]
    fn subtree_bounds_cover_exactly_the_subtree() {
        let (low, high) = super::subtree_bounds("/990000/990100/990102/");
        for inside in ["/990000/990100/990102/", "/990000/990100/990102/990102001/"] {
            assert!(low.as_str() <= inside && inside < high.as_str(), "{inside}");
        }
        for outside in ["/990000/990100/990103/", "/990000/990100/9901020/", "/990000/990100/"] {
            assert!(!(low.as_str() <= outside && outside < high.as_str()), "{outside}");
        }
    }
}
