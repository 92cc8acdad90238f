//! Residents and enterprises as staff read them, and notification addresses.

use super::RegionRef;
use sqlx::{AnyConnection, Row};

use super::organisation::{region_from, subtree_bounds};

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

pub(super) fn resident_from(r: &sqlx::any::AnyRow) -> Result<ResidentRow, sqlx::Error> {
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
