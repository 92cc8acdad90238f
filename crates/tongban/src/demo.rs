//! The demo province 云岭省: a deterministic generator (same seed, same people, same codes).
//! Seeded on first start unless `--no-demo`; everything goes through the identity service.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sqlx::AnyConnection;

use identity::{self, AccountKind, Console, Identity, NewAccount, NewDepartment, Profile, RegionRef, ids};
use kernel::secrets::SecretString;

mod applications;
mod catalog;
mod open_data;
mod openness;
mod voice;

pub use applications::*;
pub use catalog::*;
pub use open_data::*;
pub use openness::*;
pub use voice::*;

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
    // The departments a 12345 hotline routes to besides those above.
    ("CG", "住房和城乡建设厅城市管理局", "城市管理综合执法局"),
    ("SW", "水利厅", "水务局"),
    ("ZR", "自然资源厅", "自然资源局"),
    ("NY", "农业农村厅", "农业农村局"),
    ("ZW", "政务服务管理局", "政务服务管理局"),
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
/// The 12345 posts of each staffed district, seeded after the residents so that the random
/// stream (and with it every demo person) stays as it was before the hotline.
const HOTLINE_POSTS: &[(&str, &str, &str)] = &[
    ("dispatcher", "dispatcher", "ZW"),
    ("operator", "hotline_operator", "ZW"),
    ("water", "window_clerk", "SW"),
    ("city", "window_clerk", "CG"),
];
/// The departments of each staffed district with a 政务公开 officer.
pub const DISCLOSING_DEPARTMENTS: &[&str] = &["MZ", "RS", "CZ"];
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
    let mut demo = Seeding { identity, console, now, rng: &mut rng, c: &mut tx };
    // One random stream in a fixed order: the same seed gives the same people and codes.
    let places = demo.organisation().await?;
    let mut staff = demo.staff(&places).await?;
    demo.residents(&places.grids).await?;
    demo.enterprises(&places.grids).await?;
    staff.extend(demo.hotline_staff().await?);
    staff.extend(demo.insight_staff().await?);
    staff.extend(demo.disclosure_staff().await?);
    tx.commit().await?;
    Ok(DemoSummary {
        staff,
        citizens: CITIZENS,
        enterprises: ENTERPRISES,
        regions: places.regions,
        departments: places.departments,
    })
}

/// The demo's region tree as created.
struct Places {
    regions: usize,
    departments: usize,
    grids: Vec<RegionRef>,
    /// (district code, a community in it)
    communities: Vec<(String, RegionRef)>,
}

/// What every seeding step works with.
struct Seeding<'a> {
    identity: &'a Identity,
    console: &'a Console,
    now: DateTime<Utc>,
    rng: &'a mut ChaCha8Rng,
    c: &'a mut AnyConnection,
}

impl Seeding<'_> {
    async fn region(&mut self, code: &str, name: &str, parent: Option<&str>) -> Result<RegionRef, identity::Error> {
        let org = self.console.grant::<kernel::authz::OrganisationManage>();
        self.identity.organisation().create_region_in(self.c, &org, code, name, parent, self.now).await
    }

    async fn department(&mut self, code: &str, name: &str, region: &str, kind: &str) -> Result<(), identity::Error> {
        let org = self.console.grant::<kernel::authz::OrganisationManage>();
        let new = NewDepartment { code, name, region_code: region, kind: Some(kind) };
        self.identity.organisation().create_department_in(self.c, &org, new, self.now).await?;
        Ok(())
    }

    /// The province, its cities and districts with a department of each line of work, and
    /// streets, communities and grids below each district.
    async fn organisation(&mut self) -> Result<Places, identity::Error> {
        let mut places = Places { regions: 0, departments: 0, grids: Vec::new(), communities: Vec::new() };
        self.region(PROVINCE.0, PROVINCE.1, None).await?;
        places.regions += 1;
        for (abbr, province_name, _) in DEPARTMENTS {
            self.department(&format!("{}-{abbr}", PROVINCE.0), &format!("云岭省{province_name}"), PROVINCE.0, abbr)
                .await?;
            places.departments += 1;
        }
        let mut street_names = STREETS.iter().cycle();
        for (city_code, city_name, districts) in CITIES {
            self.region(city_code, city_name, Some(PROVINCE.0)).await?;
            places.regions += 1;
            for (district_code, district_name, _) in *districts {
                self.region(district_code, district_name, Some(city_code)).await?;
                places.regions += 1;
                for (abbr, _, district_dept) in DEPARTMENTS {
                    let (code, name) = (format!("{district_code}-{abbr}"), format!("{district_name}{district_dept}"));
                    self.department(&code, &name, district_code, abbr).await?;
                    places.departments += 1;
                }
                for s in 1..=2 {
                    let street_code = format!("{district_code}{s:03}");
                    let street_name = format!("{}街道", street_names.next().copied().unwrap_or("新"));
                    self.region(&street_code, &street_name, Some(district_code)).await?;
                    places.regions += 1;
                    for m in 1..=2 {
                        let community_code = format!("{street_code}{m:03}");
                        let community_name = format!("{}社区", pick(self.rng, COMMUNITIES));
                        let community = self.region(&community_code, &community_name, Some(&street_code)).await?;
                        places.regions += 1;
                        places.communities.push((district_code.to_string(), community));
                        for (g, grid_name) in [(1, "第一网格"), (2, "第二网格")] {
                            let grid_code = format!("{community_code}{g:03}");
                            places.grids.push(self.region(&grid_code, grid_name, Some(&community_code)).await?);
                            places.regions += 1;
                        }
                    }
                }
            }
        }
        Ok(places)
    }

    /// The 12345 posts of each staffed district.
    async fn hotline_staff(&mut self) -> Result<Vec<(String, String, String)>, identity::Error> {
        let mut staff = Vec::new();
        for (district, district_name, pinyin) in staffed_districts() {
            for (prefix, role, dept) in HOTLINE_POSTS {
                let username = format!("{prefix}.{pinyin}");
                let username = self.staff_account(username, role, format!("{district}-{dept}"), None).await?;
                staff.push((username, (*role).to_string(), (*district_name).to_string()));
            }
        }
        Ok(staff)
    }

    /// The province's leader (the KPIs of the whole province, down to its streets) and its
    /// assessment office (考核办), seeded last so the random stream before them stays.
    async fn insight_staff(&mut self) -> Result<Vec<(String, String, String)>, identity::Error> {
        let mut staff = Vec::new();
        for (username, role) in [("leader", "leader"), ("assessor", "assessor")] {
            let username = self.staff_account(username.into(), role, format!("{}-SG", PROVINCE.0), None).await?;
            staff.push((username, role.to_string(), PROVINCE.1.to_string()));
        }
        Ok(staff)
    }

    /// The 政务公开 officers of each staffed district's civil-affairs, human-resources and
    /// finance bureaus, and its 公共资源交易 officer, seeded last so the random stream before
    /// them stays.
    async fn disclosure_staff(&mut self) -> Result<Vec<(String, String, String)>, identity::Error> {
        let mut staff = Vec::new();
        for (district, district_name, pinyin) in staffed_districts() {
            for dept in DISCLOSING_DEPARTMENTS {
                let username = format!("open.{}.{pinyin}", dept.to_lowercase());
                let username =
                    self.staff_account(username, "disclosure_officer", format!("{district}-{dept}"), None).await?;
                staff.push((username, "disclosure_officer".to_string(), (*district_name).to_string()));
            }
            let username = self
                .staff_account(format!("trade.{pinyin}"), "trading_officer", format!("{district}-ZW"), None)
                .await?;
            staff.push((username, "trading_officer".to_string(), (*district_name).to_string()));
        }
        Ok(staff)
    }

    /// A staff account with the demo password and authenticator, holding `role`.
    async fn staff_account(
        &mut self,
        username: String,
        role: &str,
        department_code: String,
        region_code: Option<String>,
    ) -> Result<String, identity::Error> {
        let new = NewAccount {
            kind: Some(AccountKind::Staff),
            username,
            display_name: name(self.rng),
            password: Some(SecretString::new(DEMO_PASSWORD.into())),
            totp_secret: Some(ids_totp_secret()?),
            department_code: Some(department_code),
            region_code,
            ..NewAccount::default()
        };
        let accounts = self.identity.accounts();
        let created = accounts
            .create_account_in(self.c, &self.console.grant::<kernel::authz::AccountCreate>(), new, self.now)
            .await?;
        let roles = self.console.grant::<kernel::authz::RoleGrant>();
        accounts.grant_role_in(self.c, &roles, &created.id, role, self.now).await?;
        Ok(created.username)
    }

    /// The province's administrators, auditor and data officers, and the posts of each
    /// staffed district; (username, role, region name) of each.
    async fn staff(&mut self, places: &Places) -> Result<Vec<(String, String, String)>, identity::Error> {
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
            let username = self.staff_account((*prefix).into(), role, format!("{}-{dept}", PROVINCE.0), None).await?;
            staff.push((username, (*role).to_string(), PROVINCE.1.to_string()));
        }
        for (district, district_name, pinyin) in staffed_districts() {
            for (prefix, role, dept) in STAFF_POSTS {
                // A community worker works in one community, not the whole district.
                let region_code = if *role == "community_worker" {
                    places.communities.iter().find(|(d, _)| d == district).map(|(_, r)| r.code.clone())
                } else {
                    None
                };
                let username = format!("{prefix}.{pinyin}");
                let username = self.staff_account(username, role, format!("{district}-{dept}"), region_code).await?;
                staff.push((username, (*role).to_string(), (*district_name).to_string()));
            }
        }
        Ok(staff)
    }

    fn random_grid(&mut self, grids: &[RegionRef]) -> Result<RegionRef, identity::Error> {
        grids
            .get(self.rng.gen_range(0..grids.len().max(1)))
            .cloned()
            .ok_or(identity::Error::Internal("no grids".into()))
    }

    async fn create(&mut self, new: NewAccount) -> Result<(), identity::Error> {
        let accounts = self.console.grant::<kernel::authz::AccountCreate>();
        self.identity.accounts().create_account_in(self.c, &accounts, new, self.now).await?;
        Ok(())
    }

    /// Residents in random grids; the first is the demo sign-in, living in 明月区.
    async fn residents(&mut self, grids: &[RegionRef]) -> Result<(), identity::Error> {
        let mut seen_ids = HashSet::new();
        for i in 0..CITIZENS {
            let grid = self.random_grid(grids)?;
            let district = grid.code.get(..6).unwrap_or(PROVINCE.0).to_string();
            let mut id_number = resident_id(self.rng, &district);
            while !seen_ids.insert(id_number.clone()) {
                id_number = resident_id(self.rng, &district);
            }
            let real_name = name(self.rng);
            let (username, region, password) = if i == 0 {
                let home = grids.iter().find(|g| g.code.starts_with("990102")).cloned().unwrap_or(grid);
                ("citizen.demo".to_string(), home, Some(SecretString::new(DEMO_PASSWORD.into())))
            } else {
                (format!("resident-{i:04}"), grid, None)
            };
            let profile = Profile::Citizen {
                real_name: real_name.clone(),
                id_number,
                mobile: mobile(self.rng),
                address: Some(format!("{}{}号", region.name, self.rng.gen_range(1..200))),
            };
            self.create(NewAccount {
                kind: Some(AccountKind::Citizen),
                username,
                display_name: real_name,
                password,
                region_code: Some(region.code.clone()),
                profile,
                ..NewAccount::default()
            })
            .await?;
        }
        Ok(())
    }

    /// Enterprises in random grids; the first is the demo sign-in.
    async fn enterprises(&mut self, grids: &[RegionRef]) -> Result<(), identity::Error> {
        let mut seen_codes = HashSet::new();
        for i in 0..ENTERPRISES {
            let grid = self.random_grid(grids)?;
            let district = grid.code.get(..6).unwrap_or(PROVINCE.0).to_string();
            let mut code = credit_code(self.rng, &district);
            while !seen_codes.insert(code.clone()) {
                code = credit_code(self.rng, &district);
            }
            let firm = format!("云岭{}{}有限公司", pick(self.rng, FIRMS), pick(self.rng, TRADES));
            let (username, password) = if i == 0 {
                ("enterprise.demo".to_string(), Some(SecretString::new(DEMO_PASSWORD.into())))
            } else {
                (format!("enterprise-{i:04}"), None)
            };
            let profile =
                Profile::Enterprise { name: firm.clone(), credit_code: code, legal_representative: name(self.rng) };
            self.create(NewAccount {
                kind: Some(AccountKind::Enterprise),
                username,
                display_name: firm,
                password,
                region_code: Some(grid.code.clone()),
                profile,
                ..NewAccount::default()
            })
            .await?;
        }
        Ok(())
    }
}

/// The districts that are staffed: (code, name, pinyin).
fn staffed_districts() -> impl Iterator<Item = &'static District> {
    let districts = || CITIES.iter().flat_map(|(_, _, d)| d.iter());
    STAFFED_DISTRICTS.iter().filter_map(move |code| districts().find(|(c, _, _)| c == code))
}

/// The demo authenticator's secret (shared by every demo staff account).
fn ids_totp_secret() -> Result<Vec<u8>, identity::Error> {
    identity::mfa::secret_from_base32(DEMO_TOTP_SECRET)
        .ok_or_else(|| identity::Error::Internal("the demo TOTP secret is not base32".into()))
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
        for (prefix, _, _) in STAFF_POSTS.iter().chain(HOTLINE_POSTS) {
            assert_eq!(identity::password::check_policy(&format!("{prefix}.mingyue"), DEMO_PASSWORD), Ok(()));
        }
        assert_eq!(ids_totp_secret().unwrap().len(), 20);
    }
}
