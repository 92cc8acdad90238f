//! The outbox: messages written in the same transaction as the change that causes them and
//! delivered afterwards, so nothing is lost on a crash. Today it carries security alerts to
//! email, people's case notifications to their address (when SMTP is configured) and consent
//! events to webhooks; the same rows can feed an external broker later.

use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

use crate::db::{Db, millis, new_id};

/// What a message is for; each topic has one deliverer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumString, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Topic {
    /// A security alert for the security team.
    Alert,
    /// A case notification for the person it concerns.
    Notification,
    /// A consent event for the webhooks subscribed to it.
    ConsentWebhook,
}

impl Topic {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

pub async fn enqueue(
    c: &mut AnyConnection,
    topic: Topic,
    payload: &serde_json::Value,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO outbox (id, topic, payload, created_at) VALUES ($1, $2, $3, $4)")
        .bind(new_id())
        .bind(topic.as_str())
        .bind(payload.to_string())
        .bind(millis(now))
        .execute(c)
        .await?;
    Ok(())
}

#[derive(Debug)]
pub struct Message {
    pub id: String,
    pub topic: Topic,
    pub payload: serde_json::Value,
    pub attempts: i64,
}

/// A pending row: a message to deliver, or one whose topic or payload does not parse (it is
/// marked failed with the reason, never delivered as something else).
#[derive(Debug)]
pub enum Pending {
    Ready(Message),
    Unreadable { id: String, reason: String },
}

/// An outbox row as stored, before its topic and payload are read.
#[derive(sqlx::FromRow)]
struct PendingColumns {
    id: String,
    topic: String,
    payload: String,
    attempts: i64,
}

pub async fn pending(db: &Db, limit: i64) -> Result<Vec<Pending>, sqlx::Error> {
    let rows = sqlx::query_as::<_, PendingColumns>(
        "SELECT id, topic, payload, attempts FROM outbox WHERE delivered_at IS NULL AND attempts < 10 \
         ORDER BY created_at LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|PendingColumns { id, topic, payload, attempts }| {
            let Ok(topic) = topic.parse::<Topic>() else {
                return Pending::Unreadable { id, reason: format!("unknown topic `{topic}`") };
            };
            match serde_json::from_str(&payload) {
                Ok(payload) => Pending::Ready(Message { id, topic, payload, attempts }),
                Err(e) => Pending::Unreadable { id, reason: format!("payload: {e}") },
            }
        })
        .collect())
}

/// Claims a message for a minute, so that of several servers delivering the same outbox
/// only one sends it.
pub async fn claim(db: &Db, id: &str, now: DateTime<Utc>) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE outbox SET claimed_until = $1 WHERE id = $2 AND delivered_at IS NULL \
         AND (claimed_until IS NULL OR claimed_until < $3)",
    )
    .bind(millis(now) + 60_000)
    .bind(id)
    .bind(millis(now))
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn delivered(db: &Db, id: &str, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE outbox SET delivered_at = $1, attempts = attempts + 1 WHERE id = $2")
        .bind(millis(now))
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

pub async fn failed(db: &Db, id: &str, error: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE outbox SET attempts = attempts + 1, last_error = $1 WHERE id = $2")
        .bind(error)
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Where email goes: `to` receives alerts. Plain SMTP (`smtp://relay:25`) to an internal relay.
#[derive(Debug, Clone)]
pub struct Mail {
    pub relay: String,
    pub port: u16,
    pub from: String,
    pub to: Vec<String>,
}

impl Mail {
    pub async fn send(&self, to: &[String], subject: &str, body: &str) -> Result<(), String> {
        use lettre::message::Mailbox;
        use lettre::{AsyncSmtpTransport, AsyncTransport, Message as Email, Tokio1Executor};
        let from: Mailbox = self.from.parse().map_err(|e| format!("from: {e}"))?;
        let mut builder = Email::builder().from(from).subject(subject);
        for to in to {
            builder = builder.to(to.parse::<Mailbox>().map_err(|e| format!("to: {e}"))?);
        }
        let email = builder.body(body.to_string()).map_err(|e| e.to_string())?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&self.relay).port(self.port).build();
        transport.send(email).await.map(|_| ()).map_err(|e| e.to_string())
    }
}
