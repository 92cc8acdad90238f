//! The outbox delivery of the binary crate (`tongban::delivery::deliver`), each run on SQLite
//! and on PostgreSQL: security alerts raised once and mailed to the security team, case
//! notifications mailed to the residents who ask for them, two nodes delivering and firing
//! timers at once (each mail, escalation and no-show once), and consent events delivered to
//! the webhooks subscribed to them, signed with their secret.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "../../services/tests/common/mod.rs"]
mod hall;
#[path = "../../exchange/tests/common/mod.rs"]
mod hub;
#[path = "../../identity/tests/common/mod.rs"]
mod identity_fixture;

/// Security alerts (insight), mailed through the outbox.
mod alerts {
    use chrono::Utc;
    use kernel::secrets::SecretString;
    use testkit::{TestDb, on_both_databases};

    use super::identity_fixture::*;

    on_both_databases!(monitoring_raises_each_alert_once_audits_it_and_mails_it,);

    async fn monitoring_raises_each_alert_once_audits_it_and_mails_it(t: TestDb) {
        use insight::security::{self, Thresholds};
        fixture(&t).await;
        let id = &t.identity;
        let now = Utc::now();
        let wrong = SecretString::new("not-the-password".into());
        for i in 0..5 {
            let _ = id.sign_in().begin_sign_in(&attempt("citizen.a", &wrong, &format!("10.7.0.{i}")), "t", now).await;
        }
        let thresholds = Thresholds::default();
        assert!(security::scan(&t.db, &t.identity, &thresholds, now).await.unwrap() >= 1);
        // The same trail scanned again raises nothing new.
        assert_eq!(security::scan(&t.db, &t.identity, &thresholds, now).await.unwrap(), 0);
        let auditor = id.sessions().token_principal(&token_for(id, "auditor", now).await, now).await.unwrap();
        let cap = auditor.authorize::<kernel::authz::SecurityAlertHandle>().unwrap();
        let alerts = security::alerts(&t.db, &cap, 50).await.unwrap();
        let alert = alerts
            .iter()
            .find(|a| a.rule == insight::security::AlertRule::FailedSignIns)
            .expect("a failed sign-in alert");
        assert!(alert.summary.contains("citizen.a"), "{}", alert.summary);
        assert_eq!(events(&t, "alert_raised").await.len(), alerts.len());
        // The outbox mails it.
        let (port, seen) = testkit::fake_smtp().await;
        let exchange =
            exchange::Exchange::new(t.db.clone(), t.identity.clone(), &kernel::secrets::MasterKey::from_bytes(t.key));
        let mail = kernel::outbox::Mail {
            relay: "127.0.0.1".into(),
            port,
            from: "tongban@gov.example".into(),
            to: vec!["soc@gov.example".into()],
        };
        assert!(tongban::delivery::deliver(&t.db, Some(&mail), &t.identity, &exchange, now).await.unwrap() >= 1);
        let transcript = seen.lock().await.clone();
        assert!(
            transcript.contains("RCPT TO:<soc@gov.example>") && transcript.contains("failed_sign_ins"),
            "{transcript}"
        );
        assert_eq!(tongban::delivery::deliver(&t.db, Some(&mail), &t.identity, &exchange, now).await.unwrap(), 0);
        // Acknowledging is recorded; twice is not found. A clerk may not see alerts at all.
        security::acknowledge(&t.db, &cap, &alert.id, now).await.unwrap();
        assert!(matches!(security::acknowledge(&t.db, &cap, &alert.id, now).await, Err(security::Error::NotFound)));
        assert_eq!(events(&t, "alert_acknowledged").await.len(), 1);
        let clerk = id.sessions().token_principal(&token_for(id, "clerk.mingyue", now).await, now).await.unwrap();
        assert!(clerk.authorize::<kernel::authz::SecurityAlertHandle>().is_err());
    }
}

/// Case notifications of the service hall, mailed through the outbox.
mod notifications {
    use chrono::Duration;
    use kernel::secrets::MasterKey;
    use serde_json::json;
    use services::calendar::WorkingCalendar;
    use services::{Services, UploadPolicy};
    use testkit::{TestDb, on_both_databases};

    use super::hall::*;

    on_both_databases!(case_notifications_go_by_email_to_those_who_ask, racing_nodes_deliver_and_fire_timers_once,);

    async fn case_notifications_go_by_email_to_those_who_ask(t: TestDb) {
        let h = hall(t).await;
        let s = &h.services;
        let now = t0();
        let a = h.principal("citizen.a").await;
        let b = h.principal("citizen.b").await;
        assert!(h.t.identity.settings().set_notification_email(&a, Some("not an address"), now).await.is_err());
        h.t.identity.settings().set_notification_email(&a, Some("wangfang@example.cn"), now).await.unwrap();
        let mine = s.intake().submit(&a, "TSMZ0001", good_form(), &[], now).await.unwrap();
        s.intake().submit(&b, "TSMZ0001", good_form(), &[], now).await.unwrap();
        let (port, seen) = testkit::fake_smtp().await;
        let exchange = exchange::Exchange::new(
            h.t.db.clone(),
            h.t.identity.clone(),
            &kernel::secrets::MasterKey::from_bytes(h.t.key),
        );
        let mail = kernel::outbox::Mail {
            relay: "127.0.0.1".into(),
            port,
            from: "tongban@gov.example".into(),
            to: vec!["soc@gov.example".into()],
        };
        let sent = tongban::delivery::deliver(&h.t.db, Some(&mail), &h.t.identity, &exchange, now).await.unwrap();
        assert_eq!(sent, 1, "only the resident who gave an address is mailed");
        let transcript = seen.lock().await.clone();
        assert!(transcript.contains("RCPT TO:<wangfang@example.cn>"), "{transcript}");
        assert!(transcript.contains(&mine.number), "the mail names the case: {transcript}");
        assert!(!transcript.contains("soc@gov.example>"), "notifications do not go to the security team");
        let outbox: String = sqlx::query_scalar("SELECT payload FROM outbox WHERE topic = 'notification'")
            .fetch_one(&h.t.db.pool)
            .await
            .unwrap();
        assert!(!outbox.contains("wangfang"), "the address is not copied into the outbox: {outbox}");
    }

    /// Every node runs the timers once a minute: two nodes passing over the same overdue tasks
    /// and missed bookings at the same moment escalate each task once, tell its supervisor once,
    /// and record each no-show once.
    async fn racing_nodes_deliver_and_fire_timers_once(t: TestDb) {
        let console = t.console();
        let h = hall(t).await;
        let (a, b) = (
            &h.services,
            &Services::new(
                h.t.db.clone(),
                h.t.another_node(),
                MasterKey::from_bytes(h.t.key),
                WorkingCalendar::default(),
                UploadPolicy { dir: h._uploads.path().to_path_buf(), max_bytes: 1024 * 1024, scan_command: None },
            ),
        );
        let now = t0();
        let citizen = h.principal("citizen.a").await;
        h.t.identity.settings().set_notification_email(&citizen, Some("wangfang@example.cn"), now).await.unwrap();
        for _ in 0..6 {
            a.intake().submit(&citizen, "TSMZ0001", good_form(), &[], now).await.unwrap();
        }
        // Both nodes deliver the outbox at once: each message is claimed by one and mailed once.
        let (port, seen) = testkit::fake_smtp().await;
        let mail = kernel::outbox::Mail {
            relay: "127.0.0.1".into(),
            port,
            from: "tongban@gov.example".into(),
            to: vec!["soc@gov.example".into()],
        };
        let key = kernel::secrets::MasterKey::from_bytes(h.t.key);
        let (exchange_a, exchange_b) = (
            exchange::Exchange::new(h.t.db.clone(), h.t.identity.clone(), &key),
            exchange::Exchange::new(h.t.db.clone(), h.t.another_node(), &key),
        );
        let identity_b = h.t.another_node();
        let (sent_a, sent_b) = tokio::join!(
            tongban::delivery::deliver(&h.t.db, Some(&mail), &h.t.identity, &exchange_a, now),
            tongban::delivery::deliver(&h.t.db, Some(&mail), &identity_b, &exchange_b, now),
        );
        assert_eq!(sent_a.unwrap() + sent_b.unwrap(), 6, "six submissions, six mails");
        let transcript = seen.lock().await.clone();
        assert_eq!(transcript.matches("RCPT TO:<wangfang@example.cn>").count(), 6, "each mailed once: {transcript}");
        let hall_spec: services::HallSpec = serde_json::from_value(json!({
            "code": "HALL-R", "name_zh": "明月区政务服务中心", "name_en": "Mingyue centre", "region": "990102",
            "address_zh": "明月区彩云路 18 号", "address_en": "18 Caiyun Road",
            "opening": [["09:00", "12:00"]], "slot_minutes": 30,
            "windows": [{"number": "1", "services": ["TSMZ0001"]}, {"number": "2", "services": ["TSMZ0001"]}]
        }))
        .unwrap();
        a.appointments().publish_hall(&console.grant::<kernel::authz::ServiceManage>(), hall_spec, now).await.unwrap();
        let other = h.principal("citizen.b").await;
        for who in [&citizen, &other] {
            a.appointments().book(who, "HALL-R", "TSMZ0001", at("2026-11-24T01:00:00Z"), now).await.unwrap();
        }

        let later = now + Duration::days(3);
        let (work_a, work_b) = (a.casework(), b.casework());
        let (first, second) = tokio::join!(work_a.run_timers(later), work_b.run_timers(later));
        let (first, second) = (first.unwrap(), second.unwrap());
        assert_eq!(
            first.escalated + second.escalated,
            6,
            "each overdue task escalated by one node: {first:?} {second:?}"
        );
        let leader = h.principal("leader.mingyue").await;
        let told = a.my_cases().notifications(&leader, later).await.unwrap();
        assert_eq!(
            told.iter().filter(|n| n.text_en.contains("escalated")).count(),
            6,
            "the supervisor is told once a task"
        );
        let escalations: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM ledger_entries WHERE log = 'audit' AND action = 'task_escalated'")
                .fetch_one(&h.t.db.pool)
                .await
                .unwrap();
        assert_eq!(escalations, 6, "one audit entry a task");

        let missed = at("2026-11-24T03:00:00Z");
        let (desk_a, desk_b) = (a.appointments(), b.appointments());
        let (first, second) = tokio::join!(desk_a.record_no_shows(missed), desk_b.record_no_shows(missed));
        assert_eq!(first.unwrap().recorded + second.unwrap().recorded, 2, "each missed booking recorded by one node");
        assert_eq!(a.appointments().record_no_shows(missed).await.unwrap().recorded, 0);
    }
}

/// Consent events of the data exchange, delivered to webhooks through the outbox.
mod webhooks {
    use exchange::Error;
    use serde_json::{Value, json};
    use testkit::{TestDb, on_both_databases};

    use super::hub::*;

    on_both_databases!(consent_events_reach_webhooks,);

    /// A minimal HTTP receiver: every request's headers (lower-cased) and body, answered 204.
    async fn receiver() -> (u16, std::sync::Arc<tokio::sync::Mutex<Vec<(Vec<(String, String)>, String)>>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = std::sync::Arc::new(tokio::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut raw = Vec::new();
                let mut buf = [0u8; 4096];
                let (head, body) = loop {
                    let n = socket.read(&mut buf).await.unwrap();
                    raw.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&raw).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let length = head
                            .lines()
                            .find_map(|l| {
                                l.to_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string())
                            })
                            .and_then(|v| v.parse::<usize>().ok())
                            .unwrap_or(0);
                        if body.len() >= length || n == 0 {
                            break (head.to_string(), body.to_string());
                        }
                    }
                };
                let headers = head
                    .lines()
                    .skip(1)
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
                    .collect();
                log.lock().await.push((headers, body));
                let _ = socket
                    .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
            }
        });
        (port, seen)
    }

    /// Consent given, withdrawn or signed is delivered to the webhooks subscribed to it, signed
    /// with their secret; a disabled or deleted webhook hears nothing; bad subscriptions are
    /// refused with the field named.
    async fn consent_events_reach_webhooks(t: TestDb) {
        let console = t.console();
        use hmac::{Hmac, Mac};
        let h = hub(t).await;
        let now = t0();
        let admin = console.grant::<kernel::authz::ConsentManage>();
        let (port, seen) = receiver().await;
        let url = format!("http://127.0.0.1:{port}/consent-events");
        let secret = "receiver-shared-secret-2026";
        for (body, field) in [
            (json!({"payloadUrl": "https://x.example/hook", "secretKey": secret}), "payloadUrl"),
            (json!({"payloadUrl": "ftp://x", "secretKey": secret}), "payloadUrl"),
            (json!({"payloadUrl": url, "secretKey": "short"}), "secretKey"),
            (json!({"payloadUrl": url}), "secretKey"),
            (
                json!({"payloadUrl": url, "secretKey": secret, "subscribedEvents": ["consent.eaten"]}),
                "subscribedEvents",
            ),
            (json!({"payloadUrl": url, "secretKey": secret, "contentType": "text/xml"}), "contentType"),
        ] {
            match h.exchange.webhooks().put_webhook(&admin, None, &body, now).await {
                Err(Error::Invalid { field: f, .. }) => assert_eq!(f, field, "{body}"),
                other => panic!("{body} was not refused: {other:?}"),
            }
        }
        assert!(matches!(
            h.exchange
                .webhooks()
                .put_webhook(&admin, Some("nope"), &json!({"payloadUrl": url, "secretKey": secret}), now)
                .await,
            Err(Error::NotFound(_))
        ));
        let (hook, revision) = h
            .exchange
            .webhooks().put_webhook(
                &admin,
                None,
                &json!({"payloadUrl": url, "secretKey": secret, "subscribedEvents": ["consent.allowed", "consent.disallowed"]}),
                now,
            )
            .await
            .unwrap();
        assert_eq!(hook["secretKey"], "********", "the secret is never shown again");
        assert_eq!(revision["schemaName"], "Webhook");
        let hook_id = hook["id"].as_str().unwrap().to_string();
        let (port_off, seen_off) = receiver().await;
        h.exchange
            .webhooks()
            .put_webhook(
                &admin,
                None,
                &json!({"payloadUrl": format!("http://127.0.0.1:{port_off}/"), "secretKey": secret, "disabled": true}),
                now,
            )
            .await
            .unwrap();
        assert_eq!(h.exchange.webhooks().list(&admin).await.unwrap().len(), 2);

        let a = h
            .request(
                "data.rs",
                json!({"registry": "population", "fields": ["mobile"], "purpose": "就业援助回访",
                "legal_basis": "本人同意", "valid_days": 180, "consent_required": true}),
            )
            .await;
        h.decide("data.ga", &a.id, true).await;
        let me = h.principal("citizen.a").await;
        let ask = h
            .exchange
            .consent()
            .my_consents(&me, now)
            .await
            .unwrap()
            .into_iter()
            .find(|c| c.purpose == "就业援助回访")
            .unwrap();
        h.exchange.consent().set_my_consent(&me, &ask.data_agreement, true, now).await.unwrap();
        h.exchange.consent().set_my_consent(&me, &ask.data_agreement, false, now).await.unwrap();
        let deliver = || tongban::delivery::deliver(&h.t.db, None, &h.t.identity, &h.exchange, now);
        assert_eq!(deliver().await.unwrap(), 2, "two events, for the enabled webhook only");
        let got = seen.lock().await.clone();
        assert_eq!(got.len(), 2);
        for ((headers, body), event, opt_in) in
            got.iter().zip(["consent.allowed", "consent.disallowed"]).map(|(g, e)| (g, e, e == "consent.allowed"))
        {
            let header = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
            assert_eq!(header("x-tongban-event"), event);
            let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
            mac.update(body.as_bytes());
            assert_eq!(header("x-tongban-signature"), format!("sha256={}", hex::encode(mac.finalize().into_bytes())));
            let v: Value = serde_json::from_str(body).unwrap();
            assert_eq!((v["event"].as_str(), v["data"]["optIn"].as_bool()), (Some(event), Some(opt_in)), "{v}");
            assert_eq!(v["data"]["dataAgreementId"], ask.data_agreement.as_str());
        }
        assert!(seen_off.lock().await.is_empty(), "a disabled webhook hears nothing");
        assert_eq!(deliver().await.unwrap(), 0, "each event is delivered once");

        h.exchange.webhooks().delete_webhook(&admin, &hook_id, now).await.unwrap();
        h.exchange.consent().set_my_consent(&me, &ask.data_agreement, true, now).await.unwrap();
        deliver().await.unwrap();
        assert_eq!(seen.lock().await.len(), 2, "a deleted webhook hears nothing more");
    }
}
