//! The outbox: messages written in the same transaction as the change that causes them and
//! delivered afterwards, so nothing is lost on a crash. Today it carries security alerts to
//! email, people's case notifications to their address (when SMTP is configured) and consent
//! events to webhooks; the same rows can feed an external broker later.

use chrono::{DateTime, Utc};
use sqlx::{AnyConnection, Row};

use crate::db::{Db, millis, new_id};

pub async fn enqueue(
    c: &mut AnyConnection,
    topic: &str,
    payload: &serde_json::Value,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO outbox (id, topic, payload, created_at) VALUES ($1, $2, $3, $4)")
        .bind(new_id())
        .bind(topic)
        .bind(payload.to_string())
        .bind(millis(now))
        .execute(c)
        .await?;
    Ok(())
}

#[derive(Debug)]
pub struct Message {
    pub id: String,
    pub topic: String,
    pub payload: serde_json::Value,
    pub attempts: i64,
}

pub async fn pending(db: &Db, limit: i64) -> Result<Vec<Message>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, topic, payload, attempts FROM outbox WHERE delivered_at IS NULL AND attempts < 10 \
         ORDER BY created_at LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            let payload: String = r.try_get("payload")?;
            Ok(Message {
                id: r.try_get("id")?,
                topic: r.try_get("topic")?,
                payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null),
                attempts: r.try_get("attempts")?,
            })
        })
        .collect()
}

async fn claim(db: &Db, id: &str, now: DateTime<Utc>) -> Result<bool, sqlx::Error> {
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
    async fn send(&self, to: &[String], subject: &str, body: &str) -> Result<(), String> {
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

/// Delivers pending messages: consent events to their webhooks; by email when `mail` is set,
/// alerts to the security team and people's case notifications to the address they gave. Without a channel they are marked
/// delivered (alerts remain on the alerts page, notifications in the person's account).
pub async fn deliver(
    db: &Db,
    mail: Option<&Mail>,
    identity: &crate::identity::Identity,
    exchange: &crate::exchange::Exchange,
    now: DateTime<Utc>,
) -> Result<usize, sqlx::Error> {
    let mut sent = 0;
    for m in pending(db, 50).await? {
        // Several servers deliver the same outbox: each message is claimed by one of them
        // for a minute before it is sent.
        if !claim(db, &m.id, now).await? {
            continue;
        }
        let result = match (m.topic.as_str(), mail) {
            // Consent events to the webhooks subscribed to them (no mail needed).
            ("consent_webhook", _) => exchange.deliver_webhook(&m.payload).await,
            ("alert", Some(mail)) => {
                let summary = m.payload.get("summary").and_then(|s| s.as_str()).unwrap_or("security alert");
                let subject = format!("[tongban] {summary}");
                mail.send(&mail.to, &subject, &serde_json::to_string_pretty(&m.payload).unwrap_or_default()).await
            }
            // A person's notification: the address is opened only now, and never stored here.
            ("notification", Some(mail)) => {
                let text = |k: &str| m.payload.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_string();
                match identity.notification_email(&text("account_id")).await {
                    Ok(Some(to)) => mail.send(&[to], &text("subject"), &text("body")).await,
                    Ok(None) => Ok(()),
                    Err(e) => Err(e.to_string()),
                }
            }
            _ => Ok(()),
        };
        match result {
            Ok(()) => {
                delivered(db, &m.id, now).await?;
                sent += 1;
            }
            Err(e) => {
                tracing::warn!(id = m.id, attempts = m.attempts + 1, error = e, "outbox delivery failed");
                failed(db, &m.id, &e).await?;
            }
        }
    }
    Ok(sent)
}
