//! Demo applications in every phase, so the inbox, timelines and statistics have something
//! to show.

use super::*;

/// How many demo applications are seeded.
pub const DEMO_APPLICATIONS: usize = 320;

/// Where a demo case is taken after submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DemoOutcome {
    Submitted,
    InReview,
    Supplement,
    Approved,
    Refused,
    Rejected,
    Withdrawn,
}

pub(super) const OUTCOMES: [DemoOutcome; 10] = [
    DemoOutcome::Submitted,
    DemoOutcome::Submitted,
    DemoOutcome::InReview,
    DemoOutcome::InReview,
    DemoOutcome::Supplement,
    DemoOutcome::Approved,
    DemoOutcome::Approved,
    DemoOutcome::Refused,
    DemoOutcome::Rejected,
    DemoOutcome::Withdrawn,
];

/// A value a form field accepts, for fields the applicant's record does not prefill.
pub(super) fn sample_value(name: &str, p: &serde_json::Value, i: usize) -> serde_json::Value {
    use serde_json::{Value, json};
    if let Some(c) = p.get("const") {
        return c.clone();
    }
    if let Some(first) = p.get("enum").and_then(Value::as_array).and_then(|v| v.get(i % v.len().max(1))) {
        return first.clone();
    }
    let min = p.get("minimum").and_then(Value::as_f64);
    let max = p.get("maximum").and_then(Value::as_f64);
    match p.get("type").and_then(Value::as_str) {
        Some("boolean") => json!(true),
        Some("integer") => {
            let lo = min.unwrap_or(1.0).max(1.0) as i64;
            let hi = max.map(|m| m as i64).unwrap_or(lo + 4).max(lo);
            json!(lo + (i as i64) % (hi - lo + 1).min(5))
        }
        Some("number") => json!(min.unwrap_or(0.0).max(max.map(|m| m.min(800.0)).unwrap_or(800.0))),
        _ => {
            if p.get("format").and_then(Value::as_str) == Some("date") {
                return json!(format!("2026-{:02}-{:02}", 1 + i % 10, 1 + i % 27));
            }
            match p.get("pattern").and_then(Value::as_str) {
                Some("^[0-9]{12,19}$") => json!(format!("62220202{:011}", i)),
                Some("^[0-9]{17}[0-9X]$") => json!(format!("53010220150601{:04}", i % 10_000)),
                Some("^[0-9]{17}[0-9X][1-7][1-4]$") => json!(format!("53010219800101{:04}11", i % 10_000)),
                Some("^[0-9]{15}$") => json!(format!("{:015}", 110_000_000_000_000u64 + i as u64)),
                _ => {
                    let text = match name {
                        n if n.contains("address") => "明月区彩云路 18 号",
                        n if n.contains("name") => "李明",
                        _ => "按要求如实填写",
                    };
                    let max_len = p.get("maxLength").and_then(Value::as_u64).unwrap_or(200) as usize;
                    json!(text.chars().take(max_len.max(1)).collect::<String>())
                }
            }
        }
    }
}

/// A few hundred applications in every phase, from residents of the staffed districts,
/// worked by the demo desks, so that inboxes and dashboards have something to show. Only on
/// a platform without applications; the same every time.
pub async fn seed_applications(
    identity: &Identity,
    services: &services::Services,
    now: DateTime<Utc>,
) -> Result<usize, CatalogError> {
    if services.status_counts().await?.values().sum::<i64>() > 0 {
        return Ok(0);
    }
    let catalog: DemoCatalog = serde_json::from_str(SERVICES_JSON).map_err(|e| CatalogError::Parse(e.to_string()))?;
    let offered: Vec<&services::catalog::ServiceSpec> = catalog
        .services
        .iter()
        .filter(|s| s.audience == services::catalog::Audience::Citizen)
        .filter(|s| s.depth == services::catalog::Depth::Online)
        .filter(|s| s.workflow == "standard" || s.workflow == "immediate")
        .collect();
    let mut residents = Vec::new();
    for i in 1..CITIZENS {
        let p = identity.sign_in().console_principal(&format!("resident-{i:04}")).await?;
        let home = p.region.as_ref().map(|r| r.path.clone()).unwrap_or_default();
        if STAFFED_DISTRICTS.iter().any(|d| home.contains(&format!("/{d}/"))) {
            residents.push(p);
        }
    }
    let mut cases: HashMap<String, (DemoOutcome, DateTime<Utc>, usize)> = HashMap::new();
    let mut seeded = 0;
    for i in 0..DEMO_APPLICATIONS {
        let (Some(spec), Some(me)) = (offered.get(i % offered.len().max(1)), residents.get(i % residents.len().max(1)))
        else {
            break;
        };
        let mut data = serde_json::Map::new();
        let required: Vec<&str> = spec
            .form
            .get("required")
            .and_then(serde_json::Value::as_array)
            .map(|r| r.iter().filter_map(serde_json::Value::as_str).collect())
            .unwrap_or_default();
        if let Some(props) = spec.form.get("properties").and_then(serde_json::Value::as_object) {
            for (name, p) in props {
                // The resident record prefills `profile.*`; certificates they may not hold.
                let from_profile =
                    p.get("x-prefill").and_then(serde_json::Value::as_str).is_some_and(|s| s.starts_with("profile."));
                if required.contains(&name.as_str()) && !from_profile {
                    data.insert(name.clone(), sample_value(name, p, i));
                }
            }
        }
        // Spread over the last three weeks, so some cases are due soon or overdue.
        let at = now - chrono::Duration::hours(i64::try_from((i * 37) % (21 * 24)).unwrap_or(0) + 1);
        let outcome = OUTCOMES.get(i % OUTCOMES.len()).copied().unwrap_or(DemoOutcome::Submitted);
        match services.intake().submit(me, &spec.code, serde_json::Value::Object(data), &[], at).await {
            Ok(view) => {
                seeded += 1;
                if outcome == DemoOutcome::Withdrawn {
                    services.my_cases().withdraw(me, &view.id, at + chrono::Duration::minutes(30)).await?;
                } else {
                    cases.insert(view.id, (outcome, at, i % residents.len().max(1)));
                }
            }
            Err(e) => tracing::warn!(service = %spec.code, error = %e, "a demo application was not accepted"),
        }
    }
    // The desks work their inboxes until every case is where it should be.
    let mut desks = Vec::new();
    for district in ["mingyue", "qinghu"] {
        for (prefix, _, _) in STAFF_POSTS.iter().chain(SERVICE_POSTS) {
            if let Ok(p) = identity.sign_in().console_principal(&format!("{prefix}.{district}")).await
                && let Ok(cap) = p.authorize::<kernel::authz::ApplicationHandle>()
            {
                desks.push(cap);
            }
        }
    }
    for _ in 0..3 {
        for cap in &desks {
            let inbox = services.casework().inbox(cap, &services::InboxFilter::default(), now).await?;
            for item in inbox.items {
                let Some((outcome, at, resident)) = cases.get(&item.application_id).copied() else { continue };
                let later = (at + chrono::Duration::hours(2)).min(now);
                const APPROVE: (&str, Option<&str>) = ("approve", Some("材料齐全，符合条件。"));
                let steps: &[(&str, Option<&str>)] = match (outcome, item.state.as_str()) {
                    (DemoOutcome::InReview | DemoOutcome::Rejected, "submitted") => &[("accept", None)],
                    // 即办件 are approved at the window; 承诺件 are accepted there first.
                    (DemoOutcome::Approved, "submitted") => &[("accept", None), APPROVE],
                    (DemoOutcome::Approved, "review") => &[APPROVE],
                    (DemoOutcome::Rejected, "review") => &[("reject", Some("经核查不符合申请条件。"))],
                    (DemoOutcome::Supplement, "submitted") => {
                        &[("request_supplement", Some("请补充：户口簿本人页复印件；近三个月收入证明。"))]
                    }
                    (DemoOutcome::Refused, "submitted") => &[("refuse", Some("不属于本部门受理范围。"))],
                    _ => &[],
                };
                for (action, comment) in steps {
                    if services.casework().act(cap, &item.application_id, action, *comment, later).await.is_err() {
                        continue;
                    }
                    if *action == "approve"
                        && let Some(me) = residents.get(resident)
                    {
                        let (score, remark) =
                            if resident % 7 == 0 { (2, Some("等待时间太长。")) } else { (5, None) };
                        services.ratings().rate(me, &item.application_id, score, remark, later).await?;
                    }
                    break;
                }
            }
        }
    }
    Ok(seeded)
}
