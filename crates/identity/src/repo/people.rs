//! Residents and enterprises as staff read them, and notification addresses.

use super::RegionRef;
use sqlx::AnyConnection;

use super::organisation::{RegionColumns, subtree_bounds};

// --- people records --------------------------------------------------------------------

pub struct ResidentRow {
    pub account_id: String,
    pub real_name: String,
    pub id_number_enc: String,
    pub mobile_enc: String,
    pub address_enc: Option<String>,
    pub region: RegionRef,
}

/// A resident as `resident_select!` reads one.
#[derive(sqlx::FromRow)]
pub(super) struct ResidentColumns {
    account_id: String,
    real_name: String,
    id_number_enc: String,
    mobile_enc: String,
    address_enc: Option<String>,
    #[sqlx(flatten)]
    region: RegionColumns,
}

impl From<ResidentColumns> for ResidentRow {
    fn from(r: ResidentColumns) -> Self {
        ResidentRow {
            account_id: r.account_id,
            real_name: r.real_name,
            id_number_enc: r.id_number_enc,
            mobile_enc: r.mobile_enc,
            address_enc: r.address_enc,
            region: r.region.into(),
        }
    }
}

pub async fn resident(c: &mut AnyConnection, account_id: &str) -> Result<Option<ResidentRow>, sqlx::Error> {
    let row = sqlx::query_as::<_, ResidentColumns>(concat!(resident_select!(), " WHERE c.account_id = $1"))
        .bind(account_id)
        .fetch_optional(c)
        .await?;
    Ok(row.map(ResidentRow::from))
}

pub struct EnterpriseRow {
    pub account_id: String,
    pub name: String,
    pub credit_code: String,
    pub legal_representative: String,
    pub region: RegionRef,
}

#[derive(sqlx::FromRow)]
struct EnterpriseColumns {
    account_id: String,
    #[sqlx(rename = "e_name")]
    name: String,
    credit_code: String,
    legal_representative: String,
    #[sqlx(flatten)]
    region: RegionColumns,
}

pub async fn enterprise(c: &mut AnyConnection, account_id: &str) -> Result<Option<EnterpriseRow>, sqlx::Error> {
    let row = sqlx::query_as::<_, EnterpriseColumns>(
        "SELECT e.account_id, e.name AS e_name, e.credit_code, e.legal_representative, r.id, r.code, r.name, r.level, r.path \
         FROM enterprises e JOIN accounts a ON a.id = e.account_id JOIN regions r ON r.id = a.region_id \
         WHERE e.account_id = $1",
    )
    .bind(account_id)
    .fetch_optional(c)
    .await?;
    Ok(row.map(|e| EnterpriseRow {
        account_id: e.account_id,
        name: e.name,
        credit_code: e.credit_code,
        legal_representative: e.legal_representative,
        region: e.region.into(),
    }))
}

/// Residents living in a region subtree, in a stable order.
pub async fn residents_in_subtree(
    c: &mut AnyConnection,
    path: &str,
    limit: i64,
) -> Result<Vec<ResidentRow>, sqlx::Error> {
    let rows = sqlx::query_as::<_, ResidentColumns>(concat!(
        resident_select!(),
        " WHERE r.path >= $1 AND r.path < $2 ORDER BY c.account_id LIMIT $3"
    ))
    .bind(subtree_bounds(path).0)
    .bind(subtree_bounds(path).1)
    .bind(limit)
    .fetch_all(c)
    .await?;
    Ok(rows.into_iter().map(ResidentRow::from).collect())
}

pub async fn account_id_by_username(c: &mut AnyConnection, username: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM accounts WHERE username = $1").bind(username).fetch_optional(c).await
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
    let email: Option<Option<String>> = sqlx::query_scalar("SELECT notification_email_enc FROM accounts WHERE id = $1")
        .bind(id)
        .fetch_optional(c)
        .await?;
    Ok(email.flatten())
}
