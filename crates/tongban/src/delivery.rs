//! Delivery of the outbox: each topic to its channel. It lives in the binary because it
//! reaches across modules (consent webhooks in exchange, people's addresses in identity).

use chrono::{DateTime, Utc};
use kernel::db::Db;
use kernel::outbox::{Mail, Pending, Topic, claim, delivered, failed, pending};

/// Delivers pending messages: consent events to their webhooks; by email when `mail` is set,
/// alerts to the security team and people's case notifications to the address they gave. Without a channel they are marked
/// delivered (alerts remain on the alerts page, notifications in the person's account).
pub async fn deliver(
    db: &Db,
    mail: Option<&Mail>,
    identity: &identity::Identity,
    exchange: &exchange::Exchange,
    now: DateTime<Utc>,
) -> Result<usize, sqlx::Error> {
    let mut sent = 0;
    for m in pending(db, 50).await? {
        let m = match m {
            Pending::Ready(m) => m,
            Pending::Unreadable { id, reason } => {
                tracing::error!(id, reason, "outbox message cannot be read");
                failed(db, &id, &reason).await?;
                continue;
            }
        };
        // Several servers deliver the same outbox: each message is claimed by one of them
        // for a minute before it is sent.
        if !claim(db, &m.id, now).await? {
            continue;
        }
        let result = match (m.topic, mail) {
            // Consent events to the webhooks subscribed to them (no mail needed).
            (Topic::ConsentWebhook, _) => exchange.webhooks().deliver_webhook(&m.payload).await,
            (Topic::Alert, Some(mail)) => {
                let summary = m.payload.get("summary").and_then(|s| s.as_str()).unwrap_or("security alert");
                let subject = format!("[tongban] {summary}");
                mail.send(&mail.to, &subject, &serde_json::to_string_pretty(&m.payload).unwrap_or_default()).await
            }
            // A person's notification: the address is opened only now, and never stored here.
            (Topic::Notification, Some(mail)) => {
                let text = |k: &str| m.payload.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_string();
                match identity.settings().notification_email(&text("account_id")).await {
                    Ok(Some(to)) => mail.send(&[to], &text("subject"), &text("body")).await,
                    Ok(None) => Ok(()),
                    Err(e) => Err(e.to_string()),
                }
            }
            (Topic::Alert | Topic::Notification, None) => Ok(()),
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
