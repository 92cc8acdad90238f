//! The data exchange over HTTP: systems, agreements, reads, imports.

use super::*;

/// The exchange over HTTP: a system registered by the system administrator reads under an
/// agreement, is refused without its secret, without consent and after a withdrawal; a
/// data officer imports a CSV and watches it finish; the resident sees the read.
async fn exchange_api(backend: Backend) {
    let s = Server::start(backend, &[]).await;
    let admin = s.token("sysadmin").await;
    let secret = s.exchange_client(&admin, "990000-MZ", "CN/GOV/990000-MZ/dibao").await;
    let mz = s.token("data.mz").await;
    let ga = s.token("data.ga").await;
    let citizen = s.citizen_token().await;
    let (status, me) = s.get("/api/v1/me", &citizen).await;
    assert_eq!(status, StatusCode::OK);
    let (status, data) = s.get("/api/v1/me/data", &citizen).await;
    assert_eq!(status, StatusCode::OK);
    let id_number = data["profile"]["id_number"].as_str().unwrap().to_string();
    assert!(me["username"].as_str().is_some());
    let (status, catalog) = s.get("/api/v1/exchange/registries", &mz).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(catalog.as_array().unwrap().len(), 4);

    let request = |body: Value| s.client.post(s.url("/api/v1/exchange/agreements")).bearer_auth(&mz).json(&body).send();
    let r = request(json!({"registry": "population", "fields": ["sex", "birth_date"], "purpose": "高龄津贴资格核对",
        "legal_basis": "《老年人权益保障法》", "valid_days": 30}))
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let open: Value = r.json().await.unwrap();
    assert_eq!(open["status"], "granted");
    let read = |agreement: String, secret: Option<String>| {
        let mut r = s
            .client
            .post(s.url("/api/v1/exchange/read"))
            .header("Information-Mediator-Client", "CN/GOV/990000-MZ/dibao")
            .json(&json!({"agreement": agreement, "key": id_number}));
        if let Some(secret) = secret {
            r = r.header("X-Exchange-Secret", secret);
        }
        r.send()
    };
    let r = read(open["id"].as_str().unwrap().into(), Some(secret.clone())).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["values"].as_object().unwrap().len(), 2, "{answer}");
    expect_error(
        read(open["id"].as_str().unwrap().into(), None).await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    expect_error(
        read(open["id"].as_str().unwrap().into(), Some("wrong".into())).await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    expect_error(
        read("no-such-agreement".into(), Some(secret.clone())).await.unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let r = s
        .client
        .post(s.url("/api/v1/exchange/read"))
        .header("Information-Mediator-Client", "CN/GOV/990000-MZ/dibao")
        .header("X-Exchange-Secret", &secret)
        .header("content-type", "application/json")
        .body("{\"agreement\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // Consent: the owner approves; reads wait for the resident's opt-in and stop at withdrawal.
    let r = request(json!({"registry": "population", "fields": ["mobile"], "purpose": "养老服务回访",
        "legal_basis": "本人同意", "valid_days": 30, "consent_required": true}))
    .await
    .unwrap();
    let asked: Value = r.json().await.unwrap();
    assert_eq!(asked["status"], "pending");
    let id = asked["id"].as_str().unwrap().to_string();
    let r = s
        .client
        .post(s.url(&format!("/api/v1/exchange/agreements/{id}/decision")))
        .bearer_auth(&mz)
        .json(&json!({"approve": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "only the owner decides");
    let r = s
        .client
        .post(s.url(&format!("/api/v1/exchange/agreements/{id}/decision")))
        .bearer_auth(&ga)
        .json(&json!({"approve": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    expect_error(read(id.clone(), Some(secret.clone())).await.unwrap(), StatusCode::FORBIDDEN, "consent_required")
        .await;
    let (status, consents) = s.get("/api/v1/me/consents", &citizen).await;
    assert_eq!(status, StatusCode::OK, "{consents}");
    let da = consents.as_array().unwrap().iter().find(|c| c["purpose"] == "养老服务回访").unwrap()["data_agreement"]
        .as_str()
        .unwrap()
        .to_string();
    let consent = |granted: bool| {
        s.client
            .put(s.url(&format!("/api/v1/me/consents/{da}")))
            .bearer_auth(&citizen)
            .json(&json!({"granted": granted}))
            .send()
    };
    assert_eq!(consent(true).await.unwrap().status(), StatusCode::NO_CONTENT);
    let r = read(id.clone(), Some(secret.clone())).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["masked"], json!(["mobile"]));
    assert_eq!(consent(false).await.unwrap().status(), StatusCode::NO_CONTENT);
    expect_error(read(id.clone(), Some(secret.clone())).await.unwrap(), StatusCode::FORBIDDEN, "consent_required")
        .await;
    let (status, data) = s.get("/api/v1/me/data", &citizen).await;
    assert_eq!(status, StatusCode::OK, "{data}");
    let reads: Vec<&Value> =
        data["accesses"].as_array().unwrap().iter().filter(|a| a["action"] == "exchange_read").collect();
    assert_eq!(reads.len(), 2, "both reads are on 我的数据");
    assert!(reads.iter().any(|a| a["purpose"] == "养老服务回访"));

    // GovStack Consent verification: the consuming department's system sees the record (now
    // withdrawn) and the check is on 我的数据; another department's system sees nothing.
    let other_secret = s.exchange_client(&admin, "990000-RS", "CN/GOV/990000-RS/jiuye").await;
    let verify = |path: &str, client: &str, secret: &str| {
        s.client
            .get(s.url(&format!("/govstack/consent/service/verification{path}")))
            .header("Information-Mediator-Client", client)
            .header("X-Exchange-Secret", secret)
            .send()
    };
    let mz_client = "CN/GOV/990000-MZ/dibao";
    expect_error(
        verify("/consent-records/", mz_client, "wrong").await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    let agreements: Value = verify("/data-agreements/", mz_client, &secret).await.unwrap().json().await.unwrap();
    assert!(agreements["dataAgreements"].as_array().unwrap().iter().any(|a| a["id"] == da.as_str()), "{agreements}");
    let found: Value = verify(&format!("/consent-records/?dataAgreementId={da}&optIn=false"), mz_client, &secret)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["pagination"]["totalItems"], 1, "{found}");
    let record = &found["consentRecords"][0];
    assert_eq!(record["optIn"], false);
    let record_id = record["id"].as_str().unwrap().to_string();
    let r = verify(&format!("/consent-records/?dataAgreementId={da}&optIn=true"), mz_client, &secret).await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["consentRecords"], json!([]), "no one has it granted now");
    let r = verify(&format!("/consent-record/{record_id}/"), mz_client, &secret).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let one: Value = r.json().await.unwrap();
    assert_eq!(one["revision"]["objectId"], record_id.as_str(), "{one}");
    let r = verify("/consent-records/?optIn=maybe", mz_client, &secret).await.unwrap();
    expect_error(r, StatusCode::BAD_REQUEST, "invalid_body").await;
    let theirs: Value =
        verify(&format!("/consent-records/?dataAgreementId={da}"), "CN/GOV/990000-RS/jiuye", &other_secret)
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(theirs["pagination"]["totalItems"], 0, "another department's purpose: {theirs}");
    let r = verify(&format!("/consent-record/{record_id}"), "CN/GOV/990000-RS/jiuye", &other_secret).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let (status, data) = s.get("/api/v1/me/data", &citizen).await;
    assert_eq!(status, StatusCode::OK, "{data}");
    assert!(
        data["accesses"].as_array().unwrap().iter().any(|a| a["action"] == "consent_verified"),
        "the person sees that their consent was checked"
    );

    // An import runs on; its status shows the outcome and the bad row.
    let csv = "id_number,name,sex,birth_date,region_code\n530102199001011234,赵一,1,1990-01-01,530102\n530102199001011235,钱二,7,1990-01-01,530102\n";
    let r = s
        .client
        .post(s.url("/api/v1/exchange/registries/population/imports?mode=skip_bad_rows&file_name=p.csv"))
        .bearer_auth(&ga)
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let started: Value = r.json().await.unwrap();
    let mut status = Value::Null;
    for _ in 0..100 {
        status = s.get(started["status"].as_str().unwrap(), &ga).await.1;
        if status["status"] != "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        (status["status"].as_str(), status["imported"].as_u64(), status["rejected"].as_u64()),
        (Some("done"), Some(1), Some(1)),
        "{status}"
    );
    assert_eq!(status["errors"][0]["row"], 3);
    let r = s
        .client
        .post(s.url("/api/v1/exchange/registries/population/imports"))
        .bearer_auth(&mz)
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "only the owner imports");
}

on_both_databases!(exchange_api,);
