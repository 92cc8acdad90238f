//! Department systems registered with the exchange.

use sqlx::AnyConnection;

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

/// A client as stored: revoked when it has a revocation time.
#[derive(sqlx::FromRow)]
struct ClientColumns {
    id: String,
    account_id: String,
    department_id: String,
    mediator_client: String,
    secret_hash: String,
    revoked_at: Option<i64>,
}

impl From<ClientColumns> for ClientRow {
    fn from(r: ClientColumns) -> Self {
        ClientRow {
            id: r.id,
            account_id: r.account_id,
            department_id: r.department_id,
            mediator_client: r.mediator_client,
            secret_hash: r.secret_hash,
            revoked: r.revoked_at.is_some(),
        }
    }
}

pub async fn client(c: &mut AnyConnection, mediator_client: &str) -> Result<Option<ClientRow>, sqlx::Error> {
    let row = sqlx::query_as::<_, ClientColumns>(
        "SELECT id, account_id, department_id, mediator_client, secret_hash, revoked_at FROM exchange_clients \
         WHERE mediator_client = $1",
    )
    .bind(mediator_client)
    .fetch_optional(c)
    .await?;
    Ok(row.map(ClientRow::from))
}

// --- systems a registry serves through the GovStack Data API ------------------------------

/// Whether the registry's department lets this system (its mediator name, lower case) use it.
pub async fn registry_serves(c: &mut AnyConnection, registry_id: &str, system: &str) -> Result<bool, sqlx::Error> {
    let row = sqlx::query("SELECT 1 FROM registry_systems WHERE registry_id = $1 AND mediator_client = $2")
        .bind(registry_id)
        .bind(system)
        .fetch_optional(c)
        .await?;
    Ok(row.is_some())
}

pub async fn registry_systems(c: &mut AnyConnection, registry_id: &str) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT mediator_client FROM registry_systems WHERE registry_id = $1 ORDER BY mediator_client")
        .bind(registry_id)
        .fetch_all(c)
        .await
}

/// Replaces the list of systems a registry serves.
pub async fn set_registry_systems(
    c: &mut AnyConnection,
    registry_id: &str,
    systems: &[String],
    by: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM registry_systems WHERE registry_id = $1").bind(registry_id).execute(&mut *c).await?;
    for system in systems {
        sqlx::query(
            "INSERT INTO registry_systems (registry_id, mediator_client, granted_by, granted_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(registry_id)
        .bind(system)
        .bind(by)
        .bind(now)
        .execute(&mut *c)
        .await?;
    }
    Ok(())
}
