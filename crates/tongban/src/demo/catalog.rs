//! The demo catalog: services with forms and workflows, bundles, the staff posts that work
//! them, service halls, and the base registries.

use super::*;

/// Posts that make the demo catalog's workflows workable: intake and approval desks of the
/// departments whose services are in it, in each staffed district. (Created after the rest,
/// with their own random stream, so the residents above stay as they were.)
pub(super) const SERVICE_POSTS: &[(&str, &str, &str)] = &[
    ("gaapprover", "approver", "GA"),
    ("mzapprover", "approver", "MZ"),
    ("rsclerk", "window_clerk", "RS"),
    ("rsapprover", "approver", "RS"),
    ("sjclerk", "window_clerk", "SJ"),
    ("wjclerk", "window_clerk", "WJ"),
    ("wjapprover", "approver", "WJ"),
    ("zjclerk", "window_clerk", "ZJ"),
    ("zjapprover", "approver", "ZJ"),
    ("hbapprover", "approver", "HB"),
    ("yjapprover", "approver", "YJ"),
];

/// The demo catalog: services with forms and workflows, and bundles.
pub const SERVICES_JSON: &str = include_str!("../../demo/services.json");

#[derive(Debug, serde::Deserialize)]
pub(super) struct DemoCatalog {
    pub(super) services: Vec<services::catalog::ServiceSpec>,
    bundles: Vec<services::catalog::BundleSpec>,
    workflows: Vec<serde_json::Value>,
}

/// The demo province's base registries (人口, 婚姻, 法人, 社保), owned by its provincial
/// departments.
pub fn registry_specs() -> Result<Vec<exchange::RegistrySpec>, serde_json::Error> {
    serde_json::from_str(include_str!("../../fixtures/registries.json"))
}

/// The two workflows every catalog starts with: 即办件 (approved at the window) and 承诺件
/// (accepted at the window, approved by an approver).
pub fn builtin_workflows() -> Vec<serde_json::Value> {
    let common_states = serde_json::json!([
        {"id": "supplement", "phase": "supplement"},
        {"id": "approved", "phase": "approved"},
        {"id": "refused", "phase": "refused", "terminal": true},
        {"id": "rejected", "phase": "rejected", "terminal": true},
        {"id": "completed", "phase": "completed", "terminal": true}
    ]);
    let mut immediate_states =
        vec![serde_json::json!({"id": "submitted", "phase": "submitted", "sla_days": 1, "supervisor": "leader"})];
    let mut standard_states = vec![
        serde_json::json!({"id": "submitted", "phase": "submitted", "sla_days": 1, "supervisor": "leader"}),
        serde_json::json!({"id": "review", "phase": "in_review", "sla_days": 3, "supervisor": "leader"}),
    ];
    if let Some(list) = common_states.as_array() {
        immediate_states.extend(list.iter().cloned());
        standard_states.extend(list.iter().cloned());
    }
    vec![
        serde_json::json!({"code": "immediate", "version": 1, "initial": "submitted", "states": immediate_states,
        "actions": [
            {"id": "approve", "from": "submitted", "to": "approved", "roles": ["window_clerk"]},
            {"id": "refuse", "from": "submitted", "to": "refused", "roles": ["window_clerk"]},
            {"id": "request_supplement", "from": "submitted", "to": "supplement", "roles": ["window_clerk"]},
            {"id": "resubmit", "from": "supplement", "to": "submitted", "roles": ["applicant"]},
            {"id": "complete", "from": "approved", "to": "completed", "automatic": true}
        ]}),
        serde_json::json!({"code": "standard", "version": 1, "initial": "submitted", "states": standard_states,
        "actions": [
            {"id": "accept", "from": "submitted", "to": "review", "roles": ["window_clerk"]},
            {"id": "refuse", "from": "submitted", "to": "refused", "roles": ["window_clerk"]},
            {"id": "request_supplement", "from": "submitted", "to": "supplement", "roles": ["window_clerk"]},
            {"id": "resubmit", "from": "supplement", "to": "submitted", "roles": ["applicant"]},
            {"id": "approve", "from": "review", "to": "approved", "roles": ["approver"]},
            {"id": "reject", "from": "review", "to": "rejected", "roles": ["approver"]},
            {"id": "complete", "from": "approved", "to": "completed", "automatic": true}
        ]}),
    ]
}

#[derive(Debug)]
pub struct CatalogSummary {
    pub services: usize,
    pub bundles: usize,
    pub staff: Vec<(String, String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("the demo catalog does not parse: {0}")]
    Parse(String),
    #[error(transparent)]
    Identity(#[from] identity::Error),
    #[error(transparent)]
    Services(#[from] services::Error),
    #[error("storage: {0}")]
    Storage(#[from] sqlx::Error),
}

/// Publishes the demo catalog and staffs its desks. Publishing is idempotent: unchanged
/// services keep their version.
pub async fn seed_catalog(
    identity: &Identity,
    console: &Console,
    services: &services::Services,
    now: DateTime<Utc>,
) -> Result<CatalogSummary, CatalogError> {
    let (n_services, n_bundles) = publish_catalog(services, console, now).await?;
    let mut staff = Vec::new();
    let staffed = match identity.accounts().account_id("gaapprover.mingyue").await {
        Ok(_) => true,
        Err(identity::Error::NotFound(_)) => false,
        Err(e) => return Err(e.into()),
    };
    if !staffed {
        // A random stream of their own, so the residents seeded before stay as they were.
        let mut rng = ChaCha8Rng::seed_from_u64(SEED + 1);
        let mut tx = identity.db().begin().await?;
        let mut demo = Seeding { identity, console, now, rng: &mut rng, c: &mut tx };
        for (district, district_name, pinyin) in staffed_districts() {
            for (prefix, role, dept) in SERVICE_POSTS {
                let username = format!("{prefix}.{pinyin}");
                let username = demo.staff_account(username, role, format!("{district}-{dept}"), None).await?;
                staff.push((username, (*role).to_string(), (*district_name).to_string()));
            }
        }
        tx.commit().await?;
    }
    Ok(CatalogSummary { services: n_services, bundles: n_bundles, staff })
}

/// Publishes the demo catalog's workflows, services and bundles; returns how many services
/// and bundles it holds.
pub async fn publish_catalog(
    services: &services::Services,
    console: &Console,
    now: DateTime<Utc>,
) -> Result<(usize, usize), CatalogError> {
    let catalog: DemoCatalog = serde_json::from_str(SERVICES_JSON).map_err(|e| CatalogError::Parse(e.to_string()))?;
    let manage = console.grant::<kernel::authz::ServiceManage>();
    for w in builtin_workflows().into_iter().chain(catalog.workflows) {
        let def = services::workflow::Definition::from_json(&w.to_string())
            .map_err(|e| CatalogError::Parse(e.to_string()))?;
        services.publish_workflow(&manage, def, now).await?;
    }
    for s in &catalog.services {
        services.publish_service(&manage, None, s.clone(), now).await?;
    }
    for hall in demo_halls() {
        services.appointments().publish_hall(&manage, hall, now).await?;
    }
    for b in &catalog.bundles {
        services.publish_bundle(&manage, b.clone(), now).await?;
        services.publish_bundle_workflow(&manage, &b.code, now).await?;
    }
    Ok((catalog.services.len(), catalog.bundles.len()))
}

/// The service halls of the staffed districts: windows for public security, civil affairs,
/// social security and housing, open on working days 9:00–12:00 and 13:30–17:00.
pub fn demo_halls() -> Vec<services::HallSpec> {
    use services::{HallSpec, HallWindow};
    let window = |n: &str, services: &[&str]| HallWindow {
        number: n.into(),
        services: services.iter().map(|s| s.to_string()).collect(),
    };
    [
        ("990102", "明月区", "Mingyue", "彩云路 18 号", "18 Caiyun Road"),
        ("990103", "青湖区", "Qinghu", "湖滨大道 66 号", "66 Hubin Avenue"),
    ]
    .iter()
    .map(|(region, zh, en, street_zh, street_en)| HallSpec {
        code: format!("HALL-{region}"),
        name_zh: format!("{zh}政务服务中心"),
        name_en: format!("{en} District Government Service Centre"),
        region: region.to_string(),
        address_zh: format!("{zh}{street_zh}"),
        address_en: format!("{street_en}, {en} District"),
        opening: vec![("09:00".into(), "12:00".into()), ("13:30".into(), "17:00".into())],
        slot_minutes: 30,
        windows: vec![
            window("1", &["YLGA0002", "YLGA0001", "YLGA0003", "YLGA0004"]),
            window("2", &["YLGA0002", "YLGA0005"]),
            window("3", &["YLMZ0003", "YLMZ0001", "YLMZ0002", "YLMZ0004", "YLMZ0005", "YLMZ0006"]),
            window("4", &["YLRS0001", "YLRS0002", "YLRS0003", "YLRS0005", "YLWJ0003"]),
            window("5", &["YLZJ0003", "YLJY0001"]),
        ],
    })
    .collect()
}

/// Publishes the demo registries (once) with the records of the demo resident and enterprise,
/// so that the catalog, the exchange and 我的授权 have something to show. Returns how many
/// registries were published now.
pub async fn seed_registries(
    identity: &Identity,
    console: &Console,
    exchange: &exchange::Exchange,
    now: DateTime<Utc>,
) -> Result<usize, exchange::Error> {
    let manage = console.grant::<kernel::authz::RegistryManage>();
    let read = console.grant::<kernel::authz::OrganisationRead>();
    if exchange.registries().registry(&read, "population").await.is_ok() {
        return Ok(0);
    }
    let specs =
        registry_specs().map_err(|e| exchange::Error::Internal(format!("the demo registries do not read: {e}")))?;
    let published = specs.len();
    for spec in specs {
        exchange.registries().publish_registry(&manage, spec, now).await?;
    }
    if let Ok(id) = identity.accounts().account_id("citizen.demo").await {
        let facts = identity.people().applicant_facts(&id, now).await?.facts;
        let fact = |k: &str| facts.get(k).and_then(serde_json::Value::as_str).unwrap_or_default().to_string();
        let id_number = fact("profile.id_number");
        let region = id_number.get(..6).unwrap_or("990102").to_string();
        let person = serde_json::json!({"id_number": id_number, "name": fact("profile.name"), "sex": fact("profile.sex"),
            "birth_date": fact("profile.birth_date"), "region_code": region, "mobile": fact("profile.mobile")});
        exchange.registries().put_record(&manage, "population", None, person, now).await?;
        let insured = serde_json::json!({"id_number": fact("profile.id_number"), "insured": true, "scheme": "城乡居民", "since": "2015-01-01"});
        exchange.registries().put_record(&manage, "social_insurance", None, insured, now).await?;
    }
    Ok(published)
}
