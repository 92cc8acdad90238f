//! The one-stop service hall: an application from the applicant to the approval, and appointments.

use super::*;

/// Search → guide → apply with prefill (bad, then good) → intake → approval, over the API
/// and the pages, as a resident and two members of staff.
async fn applicant_and_staff_journey(backend: Backend) {
    let s = Server::start(backend, &[]).await;
    let citizen = s.citizen_token().await;
    let (status, found) = s.get("/api/v1/services?q=%E4%B8%B4%E6%97%B6%E6%95%91%E5%8A%A9", &citizen).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found[0]["code"], "YLMZ0005", "{found}");
    let (_, prefill) = s.get("/api/v1/services/YLMZ0005/prefill", &citizen).await;
    assert_eq!(prefill["sources"]["id_number"], "profile.id_number");
    assert_eq!(prefill["values"]["id_number"].as_str().unwrap().len(), 18);

    let apply = |body: Value, token: Option<&str>| {
        let mut r = s.client.post(s.url("/api/v1/services/YLMZ0005/applications")).json(&body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    let r = apply(json!({"form": {}}), None).await.unwrap();
    expect_error(r, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let r = apply(json!({"form": {"household_size": "three"}}), Some(&citizen)).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "form_invalid");
    let errors = body["errors"].as_array().unwrap();
    assert!(
        errors.iter().any(|e| e["field"] == "household_size" && e["message_zh"].as_str().unwrap().contains("整数"))
    );
    assert!(errors.iter().any(|e| e["field"] == "agree"));
    let r = apply(json!({"form": {"hardship_type": "illness"}, "unknown": 1}), Some(&citizen)).await.unwrap();
    expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").await;
    let good = json!({"form": {"household_size": 3, "hardship_type": "illness", "monthly_income": 800,
        "hardship_description": "家人住院，医疗费用支出大", "agree": true}});
    let r = apply(good, Some(&citizen)).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let app: Value = r.json().await.unwrap();
    let id = app["id"].as_str().unwrap().to_string();
    assert_eq!(app["status"], "submitted");

    let clerk = s.token("clerk.mingyue").await;
    let (status, inbox) = s.get("/api/v1/inbox", &clerk).await;
    assert_eq!(status, StatusCode::OK);
    assert!(inbox["items"].as_array().unwrap().iter().any(|i| i["number"] == app["number"]), "{inbox}");
    let act = |token: String, action: &'static str| {
        s.client
            .post(s.url(&format!("/api/v1/cases/{id}/actions")))
            .bearer_auth(token)
            .json(&json!({"action": action}))
            .send()
    };
    let r = act(clerk.clone(), "approve").await.unwrap();
    expect_error(r, StatusCode::CONFLICT, "invalid_transition").await;
    let r = act(clerk.clone(), "accept").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let approver = s.token("mzapprover.mingyue").await;
    let r = act(approver, "approve").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (status, mine) = s.get(&format!("/api/v1/me/applications/{id}"), &citizen).await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    assert_eq!(mine["status"], "completed", "{mine}");
    assert_eq!(mine["timeline"].as_array().unwrap().len(), 4);
    // Another district's clerk cannot read it.
    let other = s.token("clerk.qinghu").await;
    let r = s.client.get(s.url(&format!("/api/v1/cases/{id}"))).bearer_auth(&other).send().await.unwrap();
    expect_error(r, StatusCode::FORBIDDEN, "outside_jurisdiction").await;

    // The pages: catalog, guide, the prefilled form and its error summary.
    let html = s.client.get(s.url("/services?q=csdj")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("出生登记"));
    let html = s.client.get(s.url("/services/YLMZ0005")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("临时救助申请") && html.contains("/services/YLMZ0005/apply"));
    // The title says which guide it is.
    assert!(html.contains("<title>临时救助申请 · 办事指南 · 通办</title>"), "{html}");
    let r = s.client.get(s.url("/verify/nonexistent")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let cookies = s.citizen_cookies().await;
    let html = s
        .client
        .get(s.url("/services/YLMZ0005/apply"))
        .header("cookie", &cookies)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("readonly"), "locked prefilled fields are read-only");
    let token = html.split("name=\"_csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let r = s
        .client
        .post(s.url("/services/YLMZ0005/apply"))
        .header("cookie", &cookies)
        .form(&[("_csrf", token.as_str()), ("household_size", "0")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(html.contains("error-summary") && html.contains("href=\"#f-household_size\""));

    // 我的材料: a file that is not what its name says is refused on the page; a PDF is kept
    // and offered on the form, and goes with the application once ticked.
    let html = s
        .client
        .get(s.url("/materials?service=YLMZ0005"))
        .header("cookie", &cookies)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("enctype=\"multipart/form-data\"") && html.contains("临时救助申请"), "{html}");
    let upload = |name: &'static str, bytes: &'static [u8]| {
        let form = reqwest::multipart::Form::new()
            .text("_csrf", token.clone())
            .text("service", "YLMZ0005")
            .text("material", "困难情况证明")
            .part("file", reqwest::multipart::Part::bytes(bytes).file_name(name));
        s.client.post(s.url("/materials")).header("cookie", &cookies).multipart(form).send()
    };
    let r = upload("证明.pdf", b"just some text, not a PDF").await.unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let html = r.text().await.unwrap();
    assert!(html.contains("error-summary") && html.contains("href=\"#file\"") && html.contains("PDF"), "{html}");
    let r =
        upload("证明.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n").await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/materials?service=YLMZ0005&uploaded=1");
    let html = s
        .client
        .get(s.url("/services/YLMZ0005/apply"))
        .header("cookie", &cookies)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let document = html
        .split("name=\"_documents\" value=\"")
        .nth(1)
        .expect("the upload is offered")
        .split('"')
        .next()
        .unwrap()
        .to_string();
    assert!(html.contains("困难情况证明：证明.pdf"), "{html}");
    let r = s
        .client
        .post(s.url("/services/YLMZ0005/apply"))
        .header("cookie", &cookies)
        .form(&[
            ("_csrf", token.as_str()),
            ("household_size", "3"),
            ("hardship_type", "illness"),
            ("monthly_income", "800"),
            ("hardship_description", "家人住院，医疗费用支出大"),
            ("agree", "true"),
            ("_documents", document.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", r.text().await.unwrap());
    let case = r.headers()["location"].to_str().unwrap().rsplit('/').next().unwrap().to_string();
    let (status, submitted) = s.get(&format!("/api/v1/me/applications/{case}"), &citizen).await;
    assert_eq!(status, StatusCode::OK, "{submitted}");
    assert_eq!(submitted["documents"][0]["id"], document.as_str(), "{submitted}");
    assert_eq!(submitted["documents"][0]["content_type"], "application/pdf");
    let html = s.client.get(s.url("/materials")).header("cookie", &cookies).send().await.unwrap().text().await.unwrap();
    assert!(!html.contains("证明.pdf"), "a sent material is no longer waiting");
    let html =
        s.client.get(s.url("/applications")).header("cookie", &cookies).send().await.unwrap().text().await.unwrap();
    assert!(html.contains(app["number"].as_str().unwrap()));
}

/// Booking a window over the API: halls near the resident first, free slots of a working day,
/// a booking with its calendar file, bad input, and cancelling.
async fn appointments_over_http(backend: Backend) {
    let s = Server::start(backend, &[]).await;
    let citizen = s.citizen_token().await;
    let (status, halls) = s.get("/api/v1/services/YLGA0002/halls", &citizen).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(halls.as_array().unwrap().len(), 2, "{halls}");
    let hall = halls[0]["code"].as_str().unwrap().to_string();
    // The furthest day of the booking window that has free slots.
    let today = chrono::Utc::now().date_naive();
    let mut slot = None;
    for ahead in (1..=14).rev() {
        let day = today + chrono::Duration::days(ahead);
        let (status, slots) = s.get(&format!("/api/v1/halls/{hall}/slots?service=YLGA0002&date={day}"), &citizen).await;
        assert_eq!(status, StatusCode::OK, "{slots}");
        if let Some(first) = slots.as_array().unwrap().first() {
            assert_eq!(first["capacity"], 2, "two windows take 居民身份证换领");
            slot = Some(first["start"].as_str().unwrap().to_string());
            break;
        }
    }
    let start = slot.expect("a working day within two weeks");
    let (status, bad) = s.get(&format!("/api/v1/halls/{hall}/slots?service=YLGA0002&date=tomorrow"), &citizen).await;
    assert_eq!((status, bad["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_field")));
    let (status, _) = s.get("/api/v1/halls/NO-SUCH-HALL/slots?service=YLGA0002&date=2026-12-01", &citizen).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let book = |body: Value| s.client.post(s.url("/api/v1/me/appointments")).bearer_auth(&citizen).json(&body).send();
    let r = book(json!({"hall": hall, "service": "YLGA0002", "start": start})).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let booked: Value = r.json().await.unwrap();
    let id = booked["id"].as_str().unwrap().to_string();
    assert_eq!((booked["status"].as_str(), booked["changeable"].as_bool()), (Some("booked"), Some(true)));
    let r = book(json!({"hall": hall, "service": "YLGA0002", "start": start})).await.unwrap();
    expect_error(r, StatusCode::CONFLICT, "already_booked").await;
    let r =
        s.client.get(s.url(&format!("/api/v1/me/appointments/{id}/ics"))).bearer_auth(&citizen).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/calendar"));
    assert!(r.text().await.unwrap().contains("SUMMARY:居民身份证换领"));
    let r = s
        .client
        .post(s.url(&format!("/api/v1/me/appointments/{id}/cancel")))
        .bearer_auth(&citizen)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (status, mine) = s.get("/api/v1/me/appointments", &citizen).await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    assert_eq!(mine[0]["status"], "cancelled");
}

on_both_databases!(applicant_and_staff_journey, appointments_over_http,);
