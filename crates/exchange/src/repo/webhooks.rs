//! Consent webhooks.

use sqlx::AnyConnection;

// --- consent webhooks --------------------------------------------------------------------

pub struct WebhookRow {
    pub id: String,
    pub payload_url: String,
    pub content_type: String,
    pub disabled: bool,
    /// JSON array of the events subscribed to.
    pub events: String,
    pub secret_sealed: String,
    pub created_at: i64,
}

const WEBHOOK: &str =
    "SELECT id, payload_url, content_type, disabled, events, secret_sealed, created_at FROM consent_webhooks";

/// A webhook as stored: disabled is an integer (0 or 1).
#[derive(sqlx::FromRow)]
struct WebhookColumns {
    id: String,
    payload_url: String,
    content_type: String,
    disabled: i64,
    events: String,
    secret_sealed: String,
    created_at: i64,
}

impl From<WebhookColumns> for WebhookRow {
    fn from(w: WebhookColumns) -> Self {
        WebhookRow {
            id: w.id,
            payload_url: w.payload_url,
            content_type: w.content_type,
            disabled: w.disabled != 0,
            events: w.events,
            secret_sealed: w.secret_sealed,
            created_at: w.created_at,
        }
    }
}

pub async fn webhook(c: &mut AnyConnection, id: &str) -> Result<Option<WebhookRow>, sqlx::Error> {
    let q = format!("{WEBHOOK} WHERE id = $1");
    let row = sqlx::query_as::<_, WebhookColumns>(sqlx::AssertSqlSafe(q)).bind(id).fetch_optional(c).await?;
    Ok(row.map(WebhookRow::from))
}

pub async fn webhooks(c: &mut AnyConnection) -> Result<Vec<WebhookRow>, sqlx::Error> {
    let q = format!("{WEBHOOK} ORDER BY created_at, id");
    let rows = sqlx::query_as::<_, WebhookColumns>(sqlx::AssertSqlSafe(q)).fetch_all(c).await?;
    Ok(rows.into_iter().map(WebhookRow::from).collect())
}

pub async fn upsert_webhook(c: &mut AnyConnection, w: &WebhookRow, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO consent_webhooks (id, payload_url, content_type, disabled, events, secret_sealed, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO UPDATE SET payload_url = excluded.payload_url, \
         content_type = excluded.content_type, disabled = excluded.disabled, events = excluded.events, \
         secret_sealed = excluded.secret_sealed, updated_at = excluded.updated_at",
    )
    .bind(&w.id)
    .bind(&w.payload_url)
    .bind(&w.content_type)
    .bind(i64::from(w.disabled))
    .bind(&w.events)
    .bind(&w.secret_sealed)
    .bind(w.created_at)
    .bind(now)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn delete_webhook(c: &mut AnyConnection, id: &str) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM consent_webhooks WHERE id = $1").bind(id).execute(c).await?.rows_affected() > 0)
}
