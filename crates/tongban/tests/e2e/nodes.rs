//! Two `tongban serve` nodes on one PostgreSQL, requests alternating between them: what one
//! node knows, the other honours.

use super::*;

/// Tokens, revocation, lockouts, an agreement's rate and the ledger's sequence across two
/// nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_postgresql() {
    let a = Server::start(Backend::Postgres, &[]).await;
    let b = a.second_node(&[]).await;
    let nodes = [&a, &b];

    // A token issued by one node serves on the other; revoked on one, it stops on the other
    // within auth_cache_seconds (2 s by default).
    let token = a.citizen_token().await;
    let (status, me) = b.get("/api/v1/me", &token).await;
    assert_eq!((status, me["username"].as_str()), (StatusCode::OK, Some("citizen.demo")));
    let r = a.client.post(a.url("/api/v1/auth/revoke")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let revoked = Instant::now();
    loop {
        let (status, _) = b.get("/api/v1/me", &token).await;
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(revoked.elapsed() < Duration::from_secs(3), "the other node still honours a revoked token");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Failed sign-ins count on both nodes together.
    let sign_in = |node: &Server, password: &str| {
        let r = node
            .client
            .post(node.url("/api/v1/auth/token"))
            .json(&json!({"username": "enterprise.demo", "password": password}));
        async move { r.send().await.unwrap().status() }
    };
    for i in 0..5 {
        assert_eq!(sign_in(nodes[i % 2], "guess-guess-guess").await, StatusCode::UNAUTHORIZED);
    }
    for node in nodes {
        assert_eq!(sign_in(node, PASSWORD).await, StatusCode::TOO_MANY_REQUESTS, "locked on both nodes");
    }

    // An agreement's calls per minute are counted across both nodes: four granted, then
    // refused on either node.
    let admin = a.token("sysadmin").await;
    let secret = a.exchange_client(&admin, "990000-MZ", "CN/GOV/990000-MZ/dibao").await;
    let data_mz = b.token("data.mz").await;
    let r = b
        .client
        .post(b.url("/api/v1/exchange/agreements"))
        .bearer_auth(&data_mz)
        .json(&json!({"registry": "population", "fields": ["sex"], "purpose": "高龄津贴资格核对",
            "legal_basis": "《老年人权益保障法》", "valid_days": 30, "rate_per_minute": 4}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let agreement = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let citizen = a.citizen_token().await;
    let (status, data) = a.get("/api/v1/me/data", &citizen).await;
    assert_eq!(status, StatusCode::OK, "{data}");
    let key = data["profile"]["id_number"].as_str().unwrap().to_string();
    let read = |node: &Server| {
        node.client
            .post(node.url("/api/v1/exchange/read"))
            .header("Information-Mediator-Client", "CN/GOV/990000-MZ/dibao")
            .header("X-Exchange-Secret", &secret)
            .json(&json!({"agreement": agreement, "key": key}))
            .send()
    };
    let mut answers = Vec::new();
    for i in 0..6 {
        answers.push(read(nodes[i % 2]).await.unwrap().status());
    }
    assert_eq!(&answers[..4], &[StatusCode::OK; 4], "{answers:?}");
    assert_eq!(&answers[4..], &[StatusCode::TOO_MANY_REQUESTS; 2], "the fifth call is over the rate on either node");

    // Concurrent appends from both nodes: every sign-in is an audit entry, and the log stays
    // one gap-free sequence that verifies.
    let mut running = Vec::new();
    for i in 0..60 {
        let node = nodes[i % 2];
        let r = node
            .client
            .post(node.url("/api/v1/auth/token"))
            .json(&json!({"username": "citizen.demo", "password": PASSWORD}));
        running.push(tokio::spawn(async move { r.send().await.unwrap().status() }));
    }
    for r in running {
        assert_eq!(r.await.unwrap(), StatusCode::OK);
    }
    let mut verify = vec!["ledger".to_string(), "verify".into()];
    verify.extend(a.data_args());
    let (ok, out) = run(&verify);
    assert!(ok && out.contains("audit:"), "{out}");
}
