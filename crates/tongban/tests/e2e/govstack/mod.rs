//! The GovStack building blocks as their published clients call them: Registration, Digital
//! Registries, Consent (one file each); here, how every one of them learns which system calls.

use super::*;

mod consent;
mod registration;
mod registries;

/// The header alone proves nothing: without a security server in front, a GovStack call
/// proves its system with its exchange secret, and a registry serves only the systems its
/// department lists.
async fn govstack_systems_prove_who_they_are(backend: Backend) {
    let s = Server::start(backend, &[]).await;
    let mut load = vec!["fixtures".to_string(), "load".into(), "govstack-registries".into()];
    load.extend(["--department".into(), "990000-MZ".into()]);
    load.extend(s.data_args());
    let (ok, out) = run(&load);
    assert!(ok, "{out}");
    let admin = s.token("sysadmin").await;
    let system = "CN/GOV/990000MZ/minzheng-app";
    let secret = s.exchange_client(&admin, "990000-MZ", system).await;
    let call = |method: reqwest::Method, path: &str, imc: &str, secret: Option<&str>| {
        let mut r = s.client.request(method, s.url(path)).header("Information-Mediator-Client", imc);
        if let Some(secret) = secret {
            r = r.header("X-Exchange-Secret", secret);
        }
        if path.ends_with("/create") {
            r = r.json(&json!({"ID": "EE000111222333", "FirstName": "Mallory"}));
        }
        if path.ends_with("/service/individual/") {
            r = r.json(&json!({"individual": {"externalId": "E-9", "externalIdType": "passport"}}));
        }
        async move {
            let r = r.send().await.unwrap();
            let status = r.status();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    use reqwest::Method;
    let data = "/govstack/registries/data/registryname/111";

    // A well-formed name with no proof: nothing is read, written or listed.
    let forged = "Random/Attacker/Nobody/x";
    for (method, path) in [
        (Method::GET, data.to_string()),
        (Method::POST, format!("{data}/create")),
        (Method::GET, "/govstack/registries/data/myPersonalDataUsage?userId=EE378129127223&databaseId=MCTS".into()),
        (Method::GET, "/govstack/registries/databases".into()),
        (Method::GET, "/govstack/registration/applications".into()),
        (Method::GET, "/govstack/registration/tasks".into()),
        (Method::POST, "/govstack/consent/service/individual/".into()),
    ] {
        for imc in [forged, system] {
            let (status, body) = call(method.clone(), &path, imc, None).await;
            assert_eq!(
                (status, body["code"].as_str()),
                (StatusCode::UNAUTHORIZED, Some("unauthenticated")),
                "{method} {path} as {imc}: {body}"
            );
        }
    }
    // Operations the published API declares without the header: from outside a security
    // server, naming no system proves nothing either.
    for (method, path) in [
        (Method::GET, "/govstack/registration/tasks/81c4445c-bff6-11ed-afa1-0242ac120002"),
        (Method::POST, "/govstack/registration/tasks/d1e33d56-c5c7-4272-aeb6-bc2732cce1f2/complete"),
        (Method::POST, "/govstack/registration/documents"),
    ] {
        let r = s.client.request(method.clone(), s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{method} {path} with no header");
    }
    let (status, _) = call(Method::GET, data, system, Some("not-the-secret")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a wrong secret");
    let (status, _) = call(Method::GET, data, forged, Some(&secret)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "another system's secret");

    // Proven, but the registry does not serve it yet.
    let (status, body) = call(Method::GET, data, system, Some(&secret)).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("system_not_served")), "{body}");
    let (status, _) = call(Method::POST, &format!("{data}/create"), system, Some(&secret)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let usage = "/govstack/registries/data/myPersonalDataUsage?userId=EE378129127223&databaseId=MCTS";
    let (status, _) = call(Method::GET, usage, system, Some(&secret)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a person's usage history is the registry's too");

    // The owning department's data officer lists it; another department's cannot.
    let systems = "/api/v1/exchange/registries/registryname/systems";
    let put = |token: String, body: Value| {
        let r = s.client.put(s.url(systems)).bearer_auth(token).json(&body);
        async move {
            let r = r.send().await.unwrap();
            let status = r.status();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, _) = put(s.token("data.ga").await, json!({"systems": [system]})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "not the owning department");
    let mz = s.token("data.mz").await;
    let (status, body) = put(mz.clone(), json!({"systems": ["not a system"]})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = put(mz.clone(), json!({"systems": [system]})).await;
    assert_eq!((status, body["systems"].clone()), (StatusCode::OK, json!([system.to_lowercase()])), "{body}");
    let (status, listed) = s.get(systems, &mz).await;
    assert_eq!((status, listed["systems"].clone()), (StatusCode::OK, json!([system.to_lowercase()])));

    let (status, all) = call(Method::GET, data, system, Some(&secret)).await;
    assert_eq!((status, all["count"].as_u64()), (StatusCode::OK, Some(23)), "{all}");
    let (status, created) = call(Method::POST, &format!("{data}/create"), system, Some(&secret)).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let (status, usage) = call(Method::GET, usage, system, Some(&secret)).await;
    assert_eq!(status, StatusCode::OK, "{usage}");
    assert!(
        usage.as_array().unwrap().iter().any(|u| u["ReaderID"] == system.to_lowercase()),
        "the access log names the proven system: {usage}"
    );
    let (status, _) = call(Method::GET, "/govstack/registration/applications", system, Some(&secret)).await;
    assert_eq!(status, StatusCode::OK);

    // Withdrawn: refused again.
    let (status, _) = put(mz, json!({"systems": []})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(Method::GET, data, system, Some(&secret)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

on_both_databases!(govstack_systems_prove_who_they_are);
