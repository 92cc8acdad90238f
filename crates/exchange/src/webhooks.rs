//! GovStack Consent webhooks: a third party subscribes a URL to consent events and each
//! event is delivered there from the outbox (so a crash or an unreachable receiver loses
//! nothing), signed with the webhook's secret as `X-Tongban-Signature: sha256=<HMAC hex>`
//! over the body. Receivers are on the government network: `http://` addresses only, as the
//! platform has no client certificate store for outgoing TLS yet.

use kernel::audit::{Action, Outcome};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::{Value, json};
use sqlx::AnyConnection;

use super::consent::{iso, parse};
use super::repo::{self, WebhookRow};
use super::{Error, Exchange, internal};
use identity::Capability;
use kernel::authz::ConsentManage;
use kernel::db::{millis, new_id};
use ledger::{self, Log};

/// The events a webhook can subscribe to.
pub const EVENTS: [&str; 3] = ["consent.allowed", "consent.disallowed", "consent.signed"];
const CONTENT_TYPES: [&str; 2] = ["application/json", "application/x-www-form-urlencoded"];

fn webhook_context(id: &str) -> String {
    format!("consent_webhook:{id}")
}

/// The GovStack Webhook object. The secret is never shown again after it is set.
fn webhook_json(w: &WebhookRow) -> Result<Value, Error> {
    Ok(json!({
        "id": w.id,
        "payloadUrl": w.payload_url,
        "contentType": w.content_type,
        "disabled": w.disabled,
        "secretKey": "********",
        "subscribedEvents": parse(&w.events)?,
        "timestamp": iso(kernel::db::from_millis(w.created_at)),
    }))
}

fn check_url(url: &str) -> Result<String, Error> {
    let url = url.trim();
    let uri: hyper::Uri = url.parse().map_err(|_| Error::invalid("payloadUrl", "an http:// address"))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http"), Some(_)) => Ok(url.to_string()),
        (Some("https"), _) => {
            Err(Error::invalid("payloadUrl", "https:// receivers are not supported yet: use http://"))
        }
        _ => Err(Error::invalid("payloadUrl", "an http:// address with a host")),
    }
}

kernel::area! {
    /// Webhooks told of consent events, signed with their secret.
    Webhooks of Exchange
}

impl Webhooks<'_> {
    /// Creates (`id` None) or replaces a webhook; returns (webhook, revision).
    pub async fn put_webhook(
        &self,
        cap: &Capability<ConsentManage>,
        id: Option<&str>,
        body: &Value,
        now: DateTime<Utc>,
    ) -> Result<(Value, Value), Error> {
        let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::trim).filter(|v| !v.is_empty());
        let payload_url = check_url(text("payloadUrl").ok_or_else(|| Error::invalid("payloadUrl", "required"))?)?;
        let content_type = text("contentType").unwrap_or(CONTENT_TYPES[0]).to_ascii_lowercase();
        if !CONTENT_TYPES.contains(&content_type.as_str()) {
            return Err(Error::invalid("contentType", format!("one of {}", CONTENT_TYPES.join(", "))));
        }
        let disabled = match body.get("disabled") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(Error::invalid("disabled", "true or false")),
        };
        let events: Vec<String> = match body.get("subscribedEvents") {
            None | Some(Value::Null) => EVENTS.iter().map(|e| (*e).to_string()).collect(),
            Some(Value::Array(list)) => {
                let mut out = Vec::new();
                for e in list {
                    match e.as_str() {
                        Some(name) if EVENTS.contains(&name) => out.push(name.to_string()),
                        _ => {
                            return Err(Error::invalid(
                                "subscribedEvents",
                                format!("each one of {}", EVENTS.join(", ")),
                            ));
                        }
                    }
                }
                out
            }
            Some(_) => return Err(Error::invalid("subscribedEvents", "a list of event names")),
        };
        let secret = text("secretKey").filter(|s| *s != "********");
        if secret.is_some_and(|s| s.len() < 16) {
            return Err(Error::invalid("secretKey", "at least 16 characters"));
        }
        let replacing = id.is_some();
        let id = id.map(str::to_string).unwrap_or_else(new_id);
        // Sealed before the write transaction (it reads the data key).
        let sealed = match secret {
            Some(s) => Some(self.inner.protector.seal(s, &webhook_context(&id)).await.map_err(internal)?),
            None => None,
        };
        let mut tx = self.inner.db.begin().await?;
        let existing = repo::webhook(&mut tx, &id).await?;
        if replacing && existing.is_none() {
            return Err(Error::NotFound("webhook"));
        }
        let secret_sealed = match (sealed, &existing) {
            (Some(s), _) => s,
            (None, Some(w)) => w.secret_sealed.clone(),
            (None, None) => return Err(Error::invalid("secretKey", "required, at least 16 characters")),
        };
        let row = WebhookRow {
            id: id.clone(),
            payload_url,
            content_type,
            disabled,
            events: serde_json::to_string(&events).map_err(internal)?,
            secret_sealed,
            created_at: existing.as_ref().map(|w| w.created_at).unwrap_or(millis(now)),
        };
        repo::upsert_webhook(&mut tx, &row, millis(now)).await?;
        let webhook = webhook_json(&row)?;
        let revision = super::consent::revise(&mut tx, "Webhook", &id, &webhook, cap.account_id(), now).await?;
        let mut entry = ledger::Entry::new(Action::ConsentWebhookSaved, Outcome::Success, now);
        entry.actor = Some(cap.account_id().to_string());
        entry.object = Some(format!("webhook:{id}"));
        entry.detail = Some(row.payload_url.clone());
        ledger::append_in(&mut tx, Log::Audit, &entry).await?;
        tx.commit().await?;
        Ok((webhook, revision))
    }

    pub async fn webhook(&self, _cap: &Capability<ConsentManage>, id: &str) -> Result<Value, Error> {
        let mut c = self.conn().await?;
        webhook_json(&repo::webhook(&mut c, id).await?.ok_or(Error::NotFound("webhook"))?)
    }

    pub async fn list(&self, _cap: &Capability<ConsentManage>) -> Result<Vec<Value>, Error> {
        let mut c = self.conn().await?;
        repo::webhooks(&mut c).await?.iter().map(webhook_json).collect()
    }

    /// Deletes a webhook (deliveries still queued for it are dropped); returns the revision.
    pub async fn delete_webhook(
        &self,
        cap: &Capability<ConsentManage>,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Value, Error> {
        let mut tx = self.inner.db.begin().await?;
        let row = repo::webhook(&mut tx, id).await?.ok_or(Error::NotFound("webhook"))?;
        repo::delete_webhook(&mut tx, id).await?;
        let deleted = json!({"deleted": true, "webhook": webhook_json(&row)?});
        let revision = super::consent::revise(&mut tx, "Webhook", id, &deleted, cap.account_id(), now).await?;
        let mut entry = ledger::Entry::new(Action::ConsentWebhookDeleted, Outcome::Success, now);
        entry.actor = Some(cap.account_id().to_string());
        entry.object = Some(format!("webhook:{id}"));
        ledger::append_in(&mut tx, Log::Audit, &entry).await?;
        tx.commit().await?;
        Ok(revision)
    }

    /// Queues `event` for every enabled webhook subscribed to it, in the caller's
    /// transaction: the event is delivered if and only if the change commits.
    pub(super) async fn notify_in(
        &self,
        c: &mut AnyConnection,
        event: &str,
        data: Value,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        for w in repo::webhooks(c).await? {
            let events: Vec<String> = serde_json::from_str(&w.events).map_err(internal)?;
            if w.disabled || !events.iter().any(|e| e == event) {
                continue;
            }
            let payload =
                json!({"webhook_id": w.id, "event": event, "data": data, "at": iso(now), "delivery": new_id()});
            kernel::outbox::enqueue(c, kernel::outbox::Topic::ConsentWebhook, &payload, now).await?;
        }
        Ok(())
    }

    /// Delivers one queued event (from the outbox). A webhook deleted or disabled since is
    /// skipped; any answer but 2xx is a failure to retry.
    pub async fn deliver_webhook(&self, queued: &Value) -> Result<(), String> {
        let text = |k: &str| queued.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        let webhook = {
            let mut c = self.conn().await.map_err(|e| e.to_string())?;
            repo::webhook(&mut c, &text("webhook_id")).await.map_err(|e| e.to_string())?
        };
        let Some(webhook) = webhook.filter(|w| !w.disabled) else { return Ok(()) };
        let secret = self
            .inner
            .protector
            .open(&webhook.secret_sealed, &webhook_context(&webhook.id))
            .await
            .map_err(|e| e.to_string())?;
        let event = json!({
            "event": text("event"), "deliveryId": text("delivery"), "timestamp": text("at"),
            "data": queued.get("data").cloned().unwrap_or(Value::Null),
        });
        let body = if webhook.content_type == "application/json" {
            event.to_string()
        } else {
            serde_urlencoded::to_string([("payload", event.to_string())]).map_err(|e| e.to_string())?
        };
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).map_err(|e| e.to_string())?;
        mac.update(body.as_bytes());
        let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let request = hyper::Request::post(webhook.payload_url.as_str())
            .header("content-type", &webhook.content_type)
            .header("x-tongban-event", text("event"))
            .header("x-tongban-delivery", text("delivery"))
            .header("x-tongban-signature", signature)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
        let answer = tokio::time::timeout(Duration::from_secs(10), async {
            let response = client.request(request).await.map_err(|e| e.to_string())?;
            let status = response.status();
            // Read the answer so the connection closes cleanly; its content is not kept.
            let _ = response.into_body().collect().await;
            Ok::<_, String>(status)
        })
        .await
        .map_err(|_| "the receiver did not answer within 10 s".to_string())??;
        if answer.is_success() { Ok(()) } else { Err(format!("the receiver answered {answer}")) }
    }
}
