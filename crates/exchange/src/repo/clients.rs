//! Department systems registered with the exchange.

use sqlx::{AnyConnection, Row};

// --- exchange clients --------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct ClientRow {
    pub id: String,
    pub account_id: String,
    pub department_id: String,
    pub mediator_client: String,
    pub secret_hash: String,
    pub revoked: bool,
}

pub async fn insert_client(c: &mut AnyConnection, r: &ClientRow, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO exchange_clients (id, account_id, department_id, mediator_client, secret_hash, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&r.id)
    .bind(&r.account_id)
    .bind(&r.department_id)
    .bind(&r.mediator_client)
    .bind(&r.secret_hash)
    .bind(now)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn client(c: &mut AnyConnection, mediator_client: &str) -> Result<Option<ClientRow>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT id, account_id, department_id, mediator_client, secret_hash, revoked_at FROM exchange_clients \
         WHERE mediator_client = $1",
    )
    .bind(mediator_client)
    .fetch_optional(c)
    .await?;
    row.map(|r| {
        Ok(ClientRow {
            id: r.try_get("id")?,
            account_id: r.try_get("account_id")?,
            department_id: r.try_get("department_id")?,
            mediator_client: r.try_get("mediator_client")?,
            secret_hash: r.try_get("secret_hash")?,
            revoked: r.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
        })
    })
    .transpose()
}
