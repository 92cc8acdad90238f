//! The demo province 云岭省: a deterministic generator (same seed, same people, same codes).
//! Seeded on first start unless `--no-demo`; everything goes through the identity service.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sqlx::AnyConnection;

use identity::{self, AccountKind, Console, Identity, NewAccount, NewDepartment, Profile, RegionRef, ids};
use kernel::secrets::SecretString;

pub const SEED: u64 = 20_261_121;
/// Every demo sign-in uses this password (demo only: `--no-demo` gives a clean install).
pub const DEMO_PASSWORD: &str = "Yunling-Demo-2026";
/// Demo staff share this authenticator secret (base32), so testers can add it once.
pub const DEMO_TOTP_SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
pub const CITIZENS: usize = 1000;
pub const ENTERPRISES: usize = 200;

const PROVINCE: (&str, &str) = ("990000", "云岭省");
/// (code, name, pinyin)
type District = (&'static str, &'static str, &'static str);
/// (code, name, districts)
const CITIES: &[(&str, &str, &[District])] = &[
    (
        "990100",
        "春城市",
        &[("990102", "明月区", "mingyue"), ("990103", "青湖区", "qinghu"), ("990104", "金马区", "jinma")],
    ),
    ("990200", "彩云市", &[("990202", "星桥区", "xingqiao"), ("990203", "松林区", "songlin")]),
    (
        "990300",
        "雪山市",
        &[("990302", "白石区", "baishi"), ("990303", "溪口区", "xikou"), ("990304", "梅园区", "meiyuan")],
    ),
];
const STREETS: &[&str] = &[
    "东风", "翠湖", "南屏", "金碧", "北辰", "龙泉", "长春", "海源", "云溪", "石林", "花红", "桃源", "玉泉", "青云",
    "望城", "凤鸣",
];
const COMMUNITIES: &[&str] = &["和平", "幸福", "团结", "光明", "春晖", "新村", "锦绣", "安宁"];

/// (abbreviation, province name, district name)
const DEPARTMENTS: &[(&str, &str, &str)] = &[
    ("GA", "公安厅", "公安分局"),
    ("MZ", "民政厅", "民政局"),
    ("RS", "人力资源和社会保障厅", "人力资源和社会保障局"),
    ("SJ", "市场监督管理局", "市场监督管理局"),
    ("WJ", "卫生健康委员会", "卫生健康局"),
    ("JY", "教育厅", "教育局"),
    ("ZJ", "住房和城乡建设厅", "住房和城乡建设局"),
    ("JT", "交通运输厅", "交通运输局"),
    ("YJ", "应急管理厅", "应急管理局"),
    ("QX", "气象局", "气象局"),
    ("HB", "生态环境厅", "生态环境分局"),
    ("CZ", "财政厅", "财政局"),
    ("SG", "数据管理局", "数据管理局"),
];

/// (username prefix, role, department abbreviation)
const STAFF_POSTS: &[(&str, &str, &str)] = &[
    ("clerk", "window_clerk", "MZ"),
    // 户籍窗口: the public-security bureau's registration desk, which answers corrections.
    ("police", "window_clerk", "GA"),
    ("approver", "approver", "SJ"),
    ("grid", "community_worker", "MZ"),
    ("dataofficer", "data_officer", "SG"),
    ("leader", "leader", "SG"),
    ("auditor", "auditor", "CZ"),
    ("secadmin", "security_admin", "SG"),
    ("sysadmin", "system_admin", "SG"),
];
/// Districts that get one staff account per built-in role.
const STAFFED_DISTRICTS: &[&str] = &["990102", "990103"];

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何", "高", "林",
    "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾", "段", "杞", "普", "和",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "秀", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "兰",
    "霞", "平", "刚", "桂", "英", "华", "红", "建", "文", "云", "海", "玉", "春", "雪", "松", "晨", "宇", "欣", "怡",
    "浩", "然",
];
const FIRMS: &[&str] =
    &["滇红", "彩云", "普洱", "雪峰", "翠屏", "金沙", "苍洱", "石林", "澄江", "腾云", "高原", "木棉"];
const TRADES: &[&str] =
    &["茶业", "餐饮管理", "建筑工程", "信息技术", "农业开发", "文化旅游", "物流", "医药", "商贸", "花卉"];

#[derive(Debug)]
pub struct DemoSummary {
    /// (username, role code, region name)
    pub staff: Vec<(String, String, String)>,
    pub citizens: usize,
    pub enterprises: usize,
    pub regions: usize,
    pub departments: usize,
}

fn name(rng: &mut ChaCha8Rng) -> String {
    let mut n = pick(rng, SURNAMES).to_string();
    for _ in 0..rng.gen_range(1..=2) {
        n.push_str(pick(rng, GIVEN));
    }
    n
}

fn pick<'a>(rng: &mut ChaCha8Rng, list: &[&'a str]) -> &'a str {
    list.get(rng.gen_range(0..list.len().max(1))).copied().unwrap_or_default()
}

fn resident_id(rng: &mut ChaCha8Rng, district: &str) -> String {
    loop {
        let start = NaiveDate::from_ymd_opt(1940, 1, 1).unwrap_or_default();
        let birth = start + chrono::Duration::days(rng.gen_range(0..25_000));
        let body = format!("{district}{}{:03}", birth.format("%Y%m%d"), rng.gen_range(1..1000));
        if let Some(check) = ids::resident_id_check(&body) {
            return format!("{body}{check}");
        }
    }
}

fn credit_code(rng: &mut ChaCha8Rng, district: &str) -> String {
    loop {
        let org8: String = (0..8).map(|_| char::from(b'0' + rng.gen_range(0..10u8))).collect();
        let Some(org_check) = ids::organisation_code_check(&org8) else { continue };
        let body = format!("91{district}{org8}{org_check}");
        if let Some(check) = ids::credit_code_check(&body) {
            return format!("{body}{check}");
        }
    }
}

fn mobile(rng: &mut ChaCha8Rng) -> String {
    let prefix = pick(rng, &["138", "139", "150", "151", "158", "177", "180", "187", "199"]);
    format!("{prefix}{:08}", rng.gen_range(0..100_000_000u32))
}

/// Seeds the demo province inside one transaction: all of it or nothing.
pub async fn seed(identity: &Identity, console: &Console, now: DateTime<Utc>) -> Result<DemoSummary, identity::Error> {
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let mut tx = identity.db().begin().await?;
    let org = console.grant::<kernel::authz::OrganisationManage>();
    let accounts = console.grant::<kernel::authz::AccountCreate>();
    let roles = console.grant::<kernel::authz::RoleGrant>();
    let c: &mut AnyConnection = &mut tx;

    let mut regions = 0usize;
    let mut departments = 0usize;
    identity.organisation().create_region(c, &org, PROVINCE.0, PROVINCE.1, None, now).await?;
    regions += 1;
    for (abbr, province_name, _) in DEPARTMENTS {
        identity
            .organisation()
            .create_department(
                c,
                &org,
                NewDepartment {
                    code: &format!("{}-{abbr}", PROVINCE.0),
                    name: &format!("云岭省{province_name}"),
                    region_code: PROVINCE.0,
                    kind: Some(abbr),
                },
                now,
            )
            .await?;
        departments += 1;
    }
    let mut grids: Vec<RegionRef> = Vec::new();
    let mut communities_by_district: Vec<(String, RegionRef)> = Vec::new();
    let mut street_names = STREETS.iter().cycle();
    for (city_code, city_name, districts) in CITIES {
        identity.organisation().create_region(c, &org, city_code, city_name, Some(PROVINCE.0), now).await?;
        regions += 1;
        for (district_code, district_name, _) in *districts {
            identity.organisation().create_region(c, &org, district_code, district_name, Some(city_code), now).await?;
            regions += 1;
            for (abbr, _, district_dept) in DEPARTMENTS {
                identity
                    .organisation()
                    .create_department(
                        c,
                        &org,
                        NewDepartment {
                            code: &format!("{district_code}-{abbr}"),
                            name: &format!("{district_name}{district_dept}"),
                            region_code: district_code,
                            kind: Some(abbr),
                        },
                        now,
                    )
                    .await?;
                departments += 1;
            }
            for s in 1..=2 {
                let street_code = format!("{district_code}{s:03}");
                let street_name = format!("{}街道", street_names.next().copied().unwrap_or("新"));
                identity
                    .organisation()
                    .create_region(c, &org, &street_code, &street_name, Some(district_code), now)
                    .await?;
                regions += 1;
                for m in 1..=2 {
                    let community_code = format!("{street_code}{m:03}");
                    let community_name = format!("{}社区", pick(&mut rng, COMMUNITIES));
                    let community = identity
                        .organisation()
                        .create_region(c, &org, &community_code, &community_name, Some(&street_code), now)
                        .await?;
                    regions += 1;
                    communities_by_district.push((district_code.to_string(), community));
                    for g in 1..=2 {
                        let grid_name = if g == 1 { "第一网格" } else { "第二网格" };
                        grids.push(
                            identity
                                .organisation()
                                .create_region(
                                    c,
                                    &org,
                                    &format!("{community_code}{g:03}"),
                                    grid_name,
                                    Some(&community_code),
                                    now,
                                )
                                .await?,
                        );
                        regions += 1;
                    }
                }
            }
        }
    }

    let password = || Some(SecretString::new(DEMO_PASSWORD.into()));
    let totp = ids_totp_secret();
    let mut staff = Vec::new();
    let province_posts: &[(&str, &str, &str)] = &[
        ("sysadmin", "system_admin", "SG"),
        ("secadmin", "security_admin", "SG"),
        ("auditor", "auditor", "CZ"),
        // The data officers of the departments that own the base registries.
        ("data.ga", "data_officer", "GA"),
        ("data.mz", "data_officer", "MZ"),
        ("data.rs", "data_officer", "RS"),
    ];
    for (prefix, role, dept) in province_posts {
        let created = identity
            .accounts()
            .create_account(
                c,
                &accounts,
                NewAccount {
                    kind: Some(AccountKind::Staff),
                    username: (*prefix).into(),
                    display_name: name(&mut rng),
                    password: password(),
                    totp_secret: Some(totp.clone()),
                    department_code: Some(format!("{}-{dept}", PROVINCE.0)),
                    ..NewAccount::default()
                },
                now,
            )
            .await?;
        identity.accounts().grant_role(c, &roles, &created.id, role, now).await?;
        staff.push((created.username, (*role).to_string(), PROVINCE.1.to_string()));
    }
    for district in STAFFED_DISTRICTS {
        let Some((_, district_name, pinyin)) =
            CITIES.iter().flat_map(|(_, _, d)| d.iter()).find(|(code, _, _)| code == district)
        else {
            continue;
        };
        for (prefix, role, dept) in STAFF_POSTS {
            // A community worker works in one community, not the whole district.
            let region_code = if *role == "community_worker" {
                communities_by_district.iter().find(|(d, _)| d == district).map(|(_, r)| r.code.clone())
            } else {
                None
            };
            let created = identity
                .accounts()
                .create_account(
                    c,
                    &accounts,
                    NewAccount {
                        kind: Some(AccountKind::Staff),
                        username: format!("{prefix}.{pinyin}"),
                        display_name: name(&mut rng),
                        password: password(),
                        totp_secret: Some(totp.clone()),
                        department_code: Some(format!("{district}-{dept}")),
                        region_code,
                        ..NewAccount::default()
                    },
                    now,
                )
                .await?;
            identity.accounts().grant_role(c, &roles, &created.id, role, now).await?;
            staff.push((created.username, (*role).to_string(), (*district_name).to_string()));
        }
    }

    let mut seen_ids = HashSet::new();
    for i in 0..CITIZENS {
        let grid = grids
            .get(rng.gen_range(0..grids.len().max(1)))
            .cloned()
            .ok_or(identity::Error::Internal("no grids".into()))?;
        let district = grid.code.get(..6).unwrap_or(PROVINCE.0).to_string();
        let mut id_number = resident_id(&mut rng, &district);
        while !seen_ids.insert(id_number.clone()) {
            id_number = resident_id(&mut rng, &district);
        }
        let real_name = name(&mut rng);
        // The first resident is the demo sign-in, living in 明月区.
        let (username, region, pw) = if i == 0 {
            let home = grids.iter().find(|g| g.code.starts_with("990102")).cloned().unwrap_or(grid);
            ("citizen.demo".to_string(), home, password())
        } else {
            (format!("resident-{i:04}"), grid, None)
        };
        identity
            .accounts()
            .create_account(
                c,
                &accounts,
                NewAccount {
                    kind: Some(AccountKind::Citizen),
                    username,
                    display_name: real_name.clone(),
                    password: pw,
                    region_code: Some(region.code.clone()),
                    profile: Profile::Citizen {
                        real_name,
                        id_number,
                        mobile: mobile(&mut rng),
                        address: Some(format!("{}{}号", region.name, rng.gen_range(1..200))),
                    },
                    ..NewAccount::default()
                },
                now,
            )
            .await?;
    }
    let mut seen_codes = HashSet::new();
    for i in 0..ENTERPRISES {
        let grid = grids
            .get(rng.gen_range(0..grids.len().max(1)))
            .cloned()
            .ok_or(identity::Error::Internal("no grids".into()))?;
        let district = grid.code.get(..6).unwrap_or(PROVINCE.0).to_string();
        let mut code = credit_code(&mut rng, &district);
        while !seen_codes.insert(code.clone()) {
            code = credit_code(&mut rng, &district);
        }
        let firm = format!("云岭{}{}有限公司", pick(&mut rng, FIRMS), pick(&mut rng, TRADES));
        let (username, pw) =
            if i == 0 { ("enterprise.demo".to_string(), password()) } else { (format!("enterprise-{i:04}"), None) };
        identity
            .accounts()
            .create_account(
                c,
                &accounts,
                NewAccount {
                    kind: Some(AccountKind::Enterprise),
                    username,
                    display_name: firm.clone(),
                    password: pw,
                    region_code: Some(grid.code.clone()),
                    profile: Profile::Enterprise {
                        name: firm,
                        credit_code: code,
                        legal_representative: name(&mut rng),
                    },
                    ..NewAccount::default()
                },
                now,
            )
            .await?;
    }
    tx.commit().await?;
    Ok(DemoSummary { staff, citizens: CITIZENS, enterprises: ENTERPRISES, regions, departments })
}

fn ids_totp_secret() -> Vec<u8> {
    identity::mfa::secret_from_base32(DEMO_TOTP_SECRET).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_identifiers_are_valid_and_deterministic() {
        let mut a = ChaCha8Rng::seed_from_u64(SEED);
        let mut b = ChaCha8Rng::seed_from_u64(SEED);
        for _ in 0..200 {
            let id = resident_id(&mut a, "990102");
            assert_eq!(ids::validate_resident_id(&id), Ok(id.clone()));
            assert_eq!(id, resident_id(&mut b, "990102"));
            let code = credit_code(&mut a, "990203");
            assert_eq!(ids::validate_credit_code(&code), Ok(code.clone()));
            assert_eq!(code, credit_code(&mut b, "990203"));
        }
    }

    #[test]
    fn demo_password_meets_the_policy() {
        for (prefix, _, _) in STAFF_POSTS {
            assert_eq!(identity::password::check_policy(&format!("{prefix}.mingyue"), DEMO_PASSWORD), Ok(()));
        }
        assert_eq!(ids_totp_secret().len(), 20);
    }
}

/// Posts that make the demo catalog's workflows workable: intake and approval desks of the
/// departments whose services are in it, in each staffed district. (Created after the rest,
/// with their own random stream, so the residents above stay as they were.)
const SERVICE_POSTS: &[(&str, &str, &str)] = &[
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
pub const SERVICES_JSON: &str = include_str!("../demo/services.json");

#[derive(Debug, serde::Deserialize)]
struct DemoCatalog {
    services: Vec<services::catalog::ServiceSpec>,
    bundles: Vec<services::catalog::BundleSpec>,
    workflows: Vec<serde_json::Value>,
}

/// The demo province's base registries (人口, 婚姻, 法人, 社保), owned by its provincial
/// departments.
pub fn registry_specs() -> Result<Vec<exchange::RegistrySpec>, serde_json::Error> {
    serde_json::from_str(include_str!("../fixtures/registries.json"))
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
    if identity.accounts().account_id("gaapprover.mingyue").await.is_err() {
        let mut rng = ChaCha8Rng::seed_from_u64(SEED + 1);
        let mut tx = identity.db().begin().await?;
        let accounts = console.grant::<kernel::authz::AccountCreate>();
        let roles = console.grant::<kernel::authz::RoleGrant>();
        let totp = ids_totp_secret();
        for district in STAFFED_DISTRICTS {
            let Some((_, district_name, pinyin)) =
                CITIES.iter().flat_map(|(_, _, d)| d.iter()).find(|(code, _, _)| code == district)
            else {
                continue;
            };
            for (prefix, role, dept) in SERVICE_POSTS {
                let created = identity
                    .accounts()
                    .create_account(
                        &mut tx,
                        &accounts,
                        NewAccount {
                            kind: Some(AccountKind::Staff),
                            username: format!("{prefix}.{pinyin}"),
                            display_name: name(&mut rng),
                            password: Some(SecretString::new(DEMO_PASSWORD.into())),
                            totp_secret: Some(totp.clone()),
                            department_code: Some(format!("{district}-{dept}")),
                            ..NewAccount::default()
                        },
                        now,
                    )
                    .await?;
                identity.accounts().grant_role(&mut tx, &roles, &created.id, role, now).await?;
                staff.push((created.username, (*role).to_string(), (*district_name).to_string()));
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

/// How many demo applications are seeded.
pub const DEMO_APPLICATIONS: usize = 320;

/// Where a demo case is taken after submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DemoOutcome {
    Submitted,
    InReview,
    Supplement,
    Approved,
    Refused,
    Rejected,
    Withdrawn,
}

const OUTCOMES: [DemoOutcome; 10] = [
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
fn sample_value(name: &str, p: &serde_json::Value, i: usize) -> serde_json::Value {
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
