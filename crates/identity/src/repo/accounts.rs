//! Accounts, residents' and enterprises' records as written, credentials and account rows.

use super::{AccountKind, DepartmentRef, RegionRef};
use sqlx::AnyConnection;

use super::people::ResidentColumns;
use super::*;

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
    let rows = sqlx::query_as::<_, ResidentColumns>(concat!(
        resident_select!(),
        " WHERE c.key_id <> $1 ORDER BY c.account_id LIMIT $2"
    ))
    .bind(key_id)
    .bind(limit)
    .fetch_all(c)
    .await?;
    Ok(rows.into_iter().map(ResidentRow::from).collect())
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
    sqlx::query_as(
        "SELECT COALESCE(SUM(CASE WHEN key_id = $1 THEN 1 ELSE 0 END), 0) AS under, \
         COALESCE(SUM(CASE WHEN key_id <> $1 THEN 1 ELSE 0 END), 0) AS other FROM citizens",
    )
    .bind(key_id)
    .fetch_one(c)
    .await
}

pub async fn citizen_by_id_number_index(c: &mut AnyConnection, bidx: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT account_id FROM citizens WHERE id_number_bidx = $1").bind(bidx).fetch_optional(c).await
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
        let mut q = sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(sql));
        for index in chunk {
            q = q.bind(*index);
        }
        found.extend(q.fetch_all(&mut *c).await?);
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
    /// Known-device tokens issued before this (Unix seconds) are void.
    pub devices_valid_after: i64,
}

fn account_kind(kind: &str) -> Result<AccountKind, sqlx::Error> {
    AccountKind::parse(kind).ok_or_else(|| sqlx::Error::Decode(format!("account kind {kind}").into()))
}

/// A value a LEFT JOIN gives when its row matched: missing, it is as wrong as a NULL in a
/// column that allows none.
pub(super) fn joined<T>(value: Option<T>, column: &str) -> Result<T, sqlx::Error> {
    value.ok_or_else(|| sqlx::Error::ColumnDecode {
        index: column.to_string(),
        source: Box::new(sqlx::error::UnexpectedNullError),
    })
}

/// Credentials as stored: the kind is text, the flag an integer (0 or 1).
#[derive(sqlx::FromRow)]
struct CredentialsColumns {
    id: String,
    kind: String,
    username: String,
    password_hash: Option<String>,
    totp_secret: Option<String>,
    totp_last_step: i64,
    must_change_password: i64,
    devices_valid_after: i64,
}

impl TryFrom<CredentialsColumns> for Credentials {
    type Error = sqlx::Error;

    fn try_from(r: CredentialsColumns) -> Result<Self, sqlx::Error> {
        Ok(Credentials {
            id: r.id,
            kind: account_kind(&r.kind)?,
            username: r.username,
            password_hash: r.password_hash,
            totp_secret: r.totp_secret,
            totp_last_step: r.totp_last_step,
            must_change_password: r.must_change_password != 0,
            devices_valid_after: r.devices_valid_after,
        })
    }
}

macro_rules! credentials_select {
    () => {
        "SELECT id, kind, username, password_hash, totp_secret, totp_last_step, must_change_password, \
         devices_valid_after FROM accounts"
    };
}

pub async fn credentials_by_username(
    c: &mut AnyConnection,
    username: &str,
) -> Result<Option<Credentials>, sqlx::Error> {
    let row = sqlx::query_as::<_, CredentialsColumns>(concat!(credentials_select!(), " WHERE username = $1"))
        .bind(username)
        .fetch_optional(c)
        .await?;
    row.map(Credentials::try_from).transpose()
}

pub async fn credentials_by_id(c: &mut AnyConnection, id: &str) -> Result<Option<Credentials>, sqlx::Error> {
    let row = sqlx::query_as::<_, CredentialsColumns>(concat!(credentials_select!(), " WHERE id = $1"))
        .bind(id)
        .fetch_optional(c)
        .await?;
    row.map(Credentials::try_from).transpose()
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
        let mut q = sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            q = q.bind(*id);
        }
        out.extend(q.fetch_all(&mut *c).await?);
    }
    Ok(out)
}

pub async fn account(c: &mut AnyConnection, id: &str) -> Result<Option<AccountRow>, sqlx::Error> {
    let row = sqlx::query_as::<_, AccountColumns>(concat!(
        account_select!(),
        " FROM accounts a LEFT JOIN regions r ON r.id = a.region_id \
         LEFT JOIN departments d ON d.id = a.department_id WHERE a.id = $1"
    ))
    .bind(id)
    .fetch_optional(c)
    .await?;
    row.map(AccountRow::try_from).transpose()
}

/// An account as `account_select!` reads it: flags are integers (0 or 1), and the region
/// and department come from LEFT JOINs (all NULL when the account has none).
#[derive(sqlx::FromRow)]
pub(super) struct AccountColumns {
    id: String,
    kind: String,
    username: String,
    display_name: String,
    must_change_password: i64,
    has_totp: i64,
    locale: Option<String>,
    elder_mode: i64,
    r_id: Option<String>,
    r_code: Option<String>,
    r_name: Option<String>,
    r_level: Option<String>,
    r_path: Option<String>,
    d_id: Option<String>,
    d_code: Option<String>,
    d_name: Option<String>,
}

impl TryFrom<AccountColumns> for AccountRow {
    type Error = sqlx::Error;

    fn try_from(r: AccountColumns) -> Result<Self, sqlx::Error> {
        let region = match r.r_id {
            Some(id) => Some(RegionRef {
                id,
                code: joined(r.r_code, "r_code")?,
                name: joined(r.r_name, "r_name")?,
                level: joined(r.r_level, "r_level")?,
                path: joined(r.r_path, "r_path")?,
            }),
            None => None,
        };
        let department = match r.d_id {
            Some(id) => {
                Some(DepartmentRef { id, code: joined(r.d_code, "d_code")?, name: joined(r.d_name, "d_name")? })
            }
            None => None,
        };
        Ok(AccountRow {
            id: r.id,
            kind: account_kind(&r.kind)?,
            username: r.username,
            display_name: r.display_name,
            must_change_password: r.must_change_password != 0,
            has_totp: r.has_totp != 0,
            locale: r.locale,
            elder_mode: r.elder_mode != 0,
            region,
            department,
        })
    }
}

/// Voids the account's known-device tokens issued before `now` (Unix seconds).
pub async fn forget_devices(c: &mut AnyConnection, account_id: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE accounts SET devices_valid_after = $1 WHERE id = $2")
        .bind(now)
        .bind(account_id)
        .execute(c)
        .await?;
    Ok(())
}
