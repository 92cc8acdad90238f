//! The GovStack Consent building block as its clients call it.

use super::*;

/// The GovStack Consent API: the organisation admin's policies and data agreements with their
/// revisions (a staff token), and an individual's consent through a mediated system, with the
/// envelopes, bare bodies, forms and trailing slashes clients send.
async fn govstack_consent_api(backend: Backend) {
    // The test plays the X-Road security server, which authenticated the system it forwards.
    let s = Server::start(backend, &["--security-servers", "127.0.0.1"]).await;
    let officer = s.token("data.mz").await;
    let url = |path: &str| s.url(&format!("/govstack/consent{path}"));
    let admin = |method: reqwest::Method, path: &str, body: Option<Value>| {
        let mut r = s.client.request(method, url(path)).bearer_auth(&officer);
        if let Some(b) = body {
            r = r.json(&b);
        }
        async move {
            let r = r.send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    use reqwest::Method;

    let r = s.client.get(url("/config/policies/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "the organisation admin signs in");
    let clerk = s.token("clerk.mingyue").await;
    let r = s.client.get(url("/config/policies/")).bearer_auth(&clerk).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "and holds consent.manage");

    // Policies: create, replace (a revision linked to the first), list, revisions.
    let policy = json!({"name": "婚姻登记数据使用政策", "version": "1.0", "url": "https://mz.example.gov/policy", "jurisdiction": "CN"});
    let (status, created) = admin(Method::POST, "/config/policy/", Some(json!({"policy": policy}))).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let policy_id = created["policy"]["id"].as_str().unwrap().to_string();
    assert_eq!(created["revision"]["schemaName"], "Policy");
    let first_hash = created["revision"]["serializedHash"].as_str().unwrap().to_string();
    let (status, replaced) = admin(
        Method::PUT,
        &format!("/config/policy/{policy_id}"),
        Some(json!({"name": "婚姻登记数据使用政策", "version": "1.1", "url": "https://mz.example.gov/policy"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "a bare body and no trailing slash: {replaced}");
    assert_eq!(replaced["revision"]["predecessorHash"], first_hash.as_str());
    let (_, revisions) = admin(Method::GET, &format!("/config/policy/{policy_id}/revisions/"), None).await;
    assert_eq!(revisions["revisions"].as_array().unwrap().len(), 2);
    // A policy as it was at a revision, and as it is now.
    let first_revision = created["revision"]["id"].as_str().unwrap().to_string();
    let (status, then) =
        admin(Method::GET, &format!("/config/policy/{policy_id}/?revisionId={first_revision}"), None).await;
    assert_eq!(status, StatusCode::OK, "{then}");
    assert_eq!(
        (then["policy"]["version"].as_str(), then["policy"]["id"].as_str()),
        (Some("1.0"), Some(policy_id.as_str()))
    );
    assert_eq!(then["revision"]["id"], first_revision.as_str());
    let (_, current) = admin(Method::GET, &format!("/config/policy/{policy_id}"), None).await;
    assert_eq!(current["policy"]["version"], "1.1");
    let (status, _) = admin(Method::GET, &format!("/config/policy/{policy_id}?revisionId=nope"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(revisions["revisions"][1]["objectId"], policy_id.as_str());
    let (status, body) = admin(Method::POST, "/config/policy/", Some(json!({"policy": {"name": "no version"}}))).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_field")));
    let r = s
        .client
        .post(url("/config/policy/"))
        .bearer_auth(&officer)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // A data agreement under the policy; the policy is then in use.
    let agreement = json!({"dataAgreement": {
        "version": "1.0", "controller": {"id": "990000-MZ", "name": "省民政厅", "url": "https://mz.example.gov"},
        "policy": {"id": policy_id}, "purpose": "婚姻状况核验", "lawfulBasis": "consent", "dpia": "DPIA-2026-01",
        "active": true, "forgettable": false,
    }});
    let (status, da) = admin(Method::POST, "/config/data-agreement/", Some(agreement)).await;
    assert_eq!(status, StatusCode::OK, "{da}");
    let da_id = da["dataAgreement"]["id"].as_str().unwrap().to_string();
    assert_eq!(da["dataAgreement"]["policy"]["version"], "1.1", "the policy is embedded as stored");
    let (_, list) = admin(Method::GET, "/config/data-agreements/?limit=100", None).await;
    for key in ["dataAgreement", "dataAgreements"] {
        assert!(list[key].as_array().unwrap().iter().any(|a| a["id"] == da_id.as_str()), "{key}: {list}");
    }
    let (status, _) = admin(Method::DELETE, &format!("/config/policy/{policy_id}/"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "an active data agreement uses it");

    // Webhooks: created, listed, read without their secret, replaced, deleted.
    let hook = json!({"webhook": {"payloadUrl": "http://127.0.0.1:9/consent", "contentType": "application/json",
        "disabled": false, "secretKey": "a-secret-for-the-receiver"}});
    let (status, created_hook) = admin(Method::POST, "/config/webhook/", Some(hook)).await;
    assert_eq!(status, StatusCode::OK, "{created_hook}");
    assert_eq!(created_hook["webhook"]["secretKey"], "********");
    let hook_id = created_hook["webhook"]["id"].as_str().unwrap().to_string();
    let (status, refused) = admin(
        Method::POST,
        "/config/webhook",
        Some(json!({"payloadUrl": "gopher://x", "secretKey": "a-secret-for-the-receiver"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    let (_, hooks) = admin(Method::GET, "/config/webhooks/", None).await;
    assert_eq!(hooks["webhooks"].as_array().unwrap().len(), 1, "{hooks}");
    let (status, replaced_hook) = admin(
        Method::PUT,
        &format!("/config/webhook/{hook_id}"),
        Some(json!({"payloadUrl": "http://127.0.0.1:9/v2", "disabled": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "the secret is kept when not sent: {replaced_hook}");
    let (_, read_hook) = admin(Method::GET, &format!("/config/webhook/{hook_id}/"), None).await;
    assert_eq!(
        (read_hook["webhook"]["payloadUrl"].as_str(), read_hook["webhook"]["disabled"].as_bool()),
        (Some("http://127.0.0.1:9/v2"), Some(true))
    );
    let (status, _) =
        admin(Method::PUT, "/config/webhook/nope/", Some(json!({"payloadUrl": "http://127.0.0.1:9/"}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = admin(Method::DELETE, &format!("/config/webhook/{hook_id}/"), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = admin(Method::GET, &format!("/config/webhook/{hook_id}/"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The individual's operations go through a mediated system.
    let imc = "CN/GOV/990000MZ/marriage-app";
    let service = |method: reqwest::Method, path: &str, individual: Option<&str>| {
        let mut r = s.client.request(method, url(path)).header("Information-Mediator-Client", imc);
        if let Some(i) = individual {
            r = r.header("X-ConsentBB-IndividualId", i);
        }
        r
    };
    let r = s
        .client
        .post(url("/service/individual/"))
        .json(&json!({"individual": {"externalId": "x"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "no system named");
    let r = service(Method::POST, "/service/individual/", None)
        .json(&json!({"individual": {"externalId": "E-2026-0001", "externalIdType": "passport"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let person = r.json::<Value>().await.unwrap()["individual"]["id"].as_str().unwrap().to_string();
    let r = service(Method::POST, "/service/individual", None)
        .json(&json!({"externalId": "E-2026-0001", "externalIdType": "passport"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT, "one individual per external id");

    let given: Value =
        service(Method::POST, &format!("/service/individual/record/data-agreement/{da_id}/"), Some(&person))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(given["consentRecord"]["optIn"], true, "{given}");
    assert_eq!(given["consentRecord"]["individualId"], person.as_str());
    assert_eq!(given["consentRecord"]["dataAgreementId"], da_id.as_str());
    let record_id = given["consentRecord"]["id"].as_str().unwrap().to_string();
    assert_eq!(given["revision"]["objectId"], record_id.as_str());

    // Withdraw by a form, grant again by an envelope; a bad value is refused.
    let path = format!("/service/individual/record/consent-record/{record_id}/");
    let r = service(Method::PUT, &path, None).form(&[("optIn", "False")]).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["consentRecord"]["optIn"], false);
    let r = service(Method::PUT, &path, None).json(&json!({"consentRecord": {"optIn": true}})).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["consentRecord"]["optIn"], true);
    let r = service(Method::PUT, &path, None).json(&json!({"optIn": "yes"})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = service(Method::PUT, "/service/individual/record/consent-record/nope/", None)
        .json(&json!({"optIn": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let mine: Value = service(Method::GET, "/service/individual/record/consent-record/", Some(&person))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(mine["consentRecords"].as_array().unwrap().len(), 1);
    assert_eq!(mine["pagination"]["totalItems"], 1);

    // Forget me: every consent withdrawn, the history kept.
    let gone: Value = service(Method::DELETE, "/service/individual/record/", Some(&person))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(gone["withdrawn"], 1);
    let now: Value = service(Method::GET, &format!("/service/individual/record/data-agreement/{da_id}"), Some(&person))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(now["consentRecord"]["optIn"], false);
    let (_, history) = admin(Method::GET, &format!("/config/data-agreement/{da_id}/revisions"), None).await;
    assert_eq!(history["revisions"].as_array().unwrap().len(), 1);

    // Signed consent: the draft to sign, then the record and its signature in one call.
    use ed25519_dalek::Signer;
    let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let public = hex::encode(key.verifying_key().as_bytes());
    let r = service(Method::POST, "/service/individual/", None)
        .json(&json!({"individual": {"externalId": "E-2026-0002", "externalIdType": "passport"}}))
        .send()
        .await
        .unwrap();
    let signer = r.json::<Value>().await.unwrap()["individual"]["id"].as_str().unwrap().to_string();
    let draft: Value = service(
        Method::POST,
        &format!("/service/individual/record/consent-record/draft/?dataAgreementId={da_id}"),
        Some(&signer),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert!(draft["consentRecord"].get("id").is_none(), "a draft is stored nowhere: {draft}");
    assert_eq!(draft["consentRecord"]["state"], "unsigned");
    let mut signature = draft["signature"].clone();
    let mut payload: Value = serde_json::from_str(signature["payload"].as_str().unwrap()).unwrap();
    assert_eq!(payload["verificationPayload"], signature["verificationPayload"]);
    payload["verificationSignedBy"] = json!(public);
    let payload = payload.to_string();
    signature["verificationSignedBy"] = json!(public);
    signature["payload"] = json!(payload);
    let submit = |sig: &Value| {
        service(Method::POST, "/service/individual/record/consent-record/", Some(&signer))
            .json(&json!({"consentRecord": draft["consentRecord"], "signature": sig}))
            .send()
    };
    let mut forged = signature.clone();
    forged["signature"] = json!(hex::encode(key.sign(b"something else").to_bytes()));
    let r = submit(&forged).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "a signature of something else is refused");
    assert!(r.text().await.unwrap().contains("signature"));
    signature["signature"] = json!(hex::encode(key.sign(payload.as_bytes()).to_bytes()));
    let r = submit(&signature).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let signed: Value = r.json().await.unwrap();
    assert_eq!(signed["consentRecord"]["state"], "signed", "{signed}");
    assert_eq!(signed["consentRecord"]["optIn"], true);
    let signed_id = signed["consentRecord"]["id"].as_str().unwrap().to_string();
    assert_eq!(signed["signature"]["objectReference"], signed_id.as_str());
    assert!(signed["signature"]["id"].is_string());

    // Withdrawing changes the record; signing it again starts from the record as it stands.
    let path = format!("/service/individual/record/consent-record/{signed_id}/");
    let r = service(Method::PUT, &path, None).json(&json!({"optIn": false})).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["consentRecord"]["state"], "unsigned");
    let sig_path = format!("{path}signature/");
    let r = service(Method::POST, &sig_path, Some(&person)).json(&json!({"signature": {}})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "only the record's own individual signs it");
    let started: Value = service(Method::POST, &sig_path, Some(&signer))
        .json(&json!({"signature": {"verificationSignedBy": public}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let to_sign = started["signature"]["payload"].as_str().unwrap().to_string();
    assert!(to_sign.contains("\\\"optIn\\\":false"), "{to_sign}");
    let r = service(Method::PUT, &sig_path, Some(&signer))
        .json(&json!({"signature": {"signature": hex::encode(key.sign(to_sign.as_bytes()).to_bytes())}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = service(Method::GET, &format!("/service/individual/record/data-agreement/{da_id}"), Some(&signer))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["consentRecord"]["state"], "signed");

    // Deleting answers the deletion's revision, at the top and under `revision`.
    let (status, deleted) = admin(Method::DELETE, &format!("/config/data-agreement/{da_id}/"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (deleted["objectId"].as_str(), deleted["revision"]["schemaName"].as_str()),
        (Some(da_id.as_str()), Some("DataAgreement"))
    );
    let (status, _) = admin(Method::GET, &format!("/config/data-agreement/{da_id}/"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = admin(Method::DELETE, &format!("/config/policy/{policy_id}/"), None).await;
    assert_eq!(status, StatusCode::OK, "no agreement uses it now");
    let (_, people) = admin(Method::GET, "/config/individuals/?limit=1", None).await;
    assert_eq!(people["individuals"].as_array().unwrap().len(), 1);
    assert_eq!(people["pagination"]["limit"], 1);

    // The Data Processing Auditor reads everything, deleted agreements too, and checks the
    // signed record's revisions and signatures; a row edited behind the platform's back shows.
    let auditor = s.token("auditor").await;
    let audit = |path: &str, token: &str| {
        let r = s.client.get(url(&format!("/audit{path}"))).bearer_auth(token).send();
        async move {
            let r = r.await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, _) = audit("/consent-records/", &officer).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the organisation admin is not the auditor");
    let (status, records) = audit(&format!("/consent-records/?dataAgreementId={da_id}&limit=1"), &auditor).await;
    assert_eq!(status, StatusCode::OK, "{records}");
    assert_eq!(records["pagination"]["totalItems"], 2, "both people's records: {records}");
    assert_eq!(records["consentRecords"].as_array().unwrap().len(), 1);
    assert_eq!(records["pagination"]["hasNext"], true);
    let (_, signed) = audit(&format!("/consent-record/{signed_id}/"), &auditor).await;
    assert_eq!(
        signed["integrity"],
        json!({"revisionsIntact": true, "matchesLatestRevision": true, "signaturesValid": true}),
        "{signed}"
    );
    assert!(signed["revisions"].as_array().unwrap().len() >= 2, "{signed}");
    let (_, agreements) = audit("/data-agreements/", &auditor).await;
    let gone = agreements["dataAgreements"].as_array().unwrap().iter().find(|a| a["id"] == da_id.as_str()).unwrap();
    assert!(gone["x-deletedAt"].is_string(), "the deleted agreement is still there for the auditor: {gone}");
    let (status, agreement) = audit(&format!("/data-agreement/{da_id}"), &auditor).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(agreement["integrity"]["revisionsIntact"], true, "{agreement}");
    let (status, _) = audit("/consent-record/nope/", &auditor).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let db_url =
        s.database_url.clone().unwrap_or_else(|| format!("sqlite://{}", s.data.path().join("tongban.db").display()));
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db_url).await.unwrap();
    sqlx::query("UPDATE consent_records SET opt_in = 1 - opt_in WHERE id = $1")
        .bind(&signed_id)
        .execute(&pool)
        .await
        .unwrap();
    let (_, tampered) = audit(&format!("/consent-record/{signed_id}/"), &auditor).await;
    assert_eq!(tampered["integrity"]["matchesLatestRevision"], false, "{tampered}");
}

on_both_databases!(govstack_consent_api);
