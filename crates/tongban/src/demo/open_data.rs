//! Demo 数据开放: each staffed district's data authority opens the datasets residents ask
//! for most (care homes, clinics, car parks, schools, air quality, …), one of them on
//! conditions; the province's public-security and human-resources bureaus open de-identified
//! datasets from the population and social-insurance registries (filled with synthetic
//! people first); and residents have asked for datasets, one answered.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use ::openness::Openness;
use ::openness::Theme;
use ::openness::data::deidentify::{ColumnRule, FieldRule, RegionLevel};
use ::openness::data::{Column, ColumnType, DatasetQuery, DatasetSpec, Frequency, Licence, OpenLevel, RegistrySource};
use kernel::authz::{OpenDataPublish, RegistryManage};

/// Synthetic people put into the population and social-insurance registries.
pub const REGISTRY_PEOPLE: usize = 600;

fn column(name: &str, title: &str, kind: ColumnType) -> Column {
    Column { name: name.into(), title: title.into(), kind, required: true, codes: Vec::new() }
}

fn coded(name: &str, title: &str, codes: &[&str]) -> Column {
    Column { codes: codes.iter().map(|c| c.to_string()).collect(), ..column(name, title, ColumnType::Code) }
}

/// A dataset every staffed district opens: its name, title, description, theme, keywords,
/// frequency, level, columns and rows.
struct Template {
    name: &'static str,
    title: &'static str,
    description: &'static str,
    theme: Theme,
    tags: &'static [&'static str],
    frequency: Frequency,
    level: OpenLevel,
    columns: fn() -> Vec<Column>,
    rows: fn(&mut ChaCha8Rng, &str) -> Vec<Vec<String>>,
}

/// The `i`th of `items`, round and round.
fn pick(items: &[&'static str], i: usize) -> &'static str {
    items.get(i % items.len().max(1)).copied().unwrap_or("")
}

fn streets(rng: &mut ChaCha8Rng, n: usize) -> Vec<String> {
    (0..n).map(|_| format!("{}街道", pick(STREETS, rng.gen_range(0..STREETS.len())))).collect()
}

const TEMPLATES: &[Template] = &[
    Template {
        name: "elderly-care-homes",
        title: "养老服务机构名录",
        description: "辖区内养老院、颐养中心和日间照料中心的名称、所在街道、床位数和性质，每月更新。",
        theme: Theme::CivilAffairs,
        tags: &["养老", "民生服务"],
        frequency: Frequency::Monthly,
        level: OpenLevel::Unconditional,
        columns: || {
            vec![
                column("name", "机构名称", ColumnType::Text),
                column("street", "所在街道", ColumnType::Text),
                column("beds", "床位数", ColumnType::Integer),
                coded("kind", "性质", &["公办", "民办", "公建民营"]),
            ]
        },
        rows: |rng, district| {
            let kinds = ["公办", "民办", "公建民营"];
            streets(rng, 12)
                .into_iter()
                .enumerate()
                .map(|(i, s)| {
                    let kind = pick(&kinds, i);
                    let name = format!(
                        "{district}{}{}",
                        s.trim_end_matches("街道"),
                        pick(&["养老院", "颐养中心", "日间照料中心"], i)
                    );
                    vec![name, s, rng.gen_range(20..300).to_string(), kind.to_string()]
                })
                .collect()
        },
    },
    Template {
        name: "community-health-centres",
        title: "社区卫生服务中心",
        description: "社区卫生服务中心和服务站的名称、地址、全科医生人数和门诊时间。",
        theme: Theme::Health,
        tags: &["医疗", "民生服务"],
        frequency: Frequency::Quarterly,
        level: OpenLevel::Unconditional,
        columns: || {
            vec![
                column("name", "名称", ColumnType::Text),
                column("street", "所在街道", ColumnType::Text),
                column("doctors", "全科医生人数", ColumnType::Integer),
                column("hours", "门诊时间", ColumnType::Text),
            ]
        },
        rows: |rng, district| {
            streets(rng, 8)
                .into_iter()
                .map(|s| {
                    let name = format!("{district}{}社区卫生服务中心", s.trim_end_matches("街道"));
                    vec![name, s, rng.gen_range(3..25).to_string(), "周一至周日 8:00—17:30".to_string()]
                })
                .collect()
        },
    },
    Template {
        name: "public-car-parks",
        title: "公共停车场",
        description: "公共停车场的名称、所在街道、泊位数、充电桩数和收费标准（元/小时）。",
        theme: Theme::Industry,
        tags: &["交通", "停车"],
        frequency: Frequency::Monthly,
        level: OpenLevel::Unconditional,
        columns: || {
            vec![
                column("name", "停车场名称", ColumnType::Text),
                column("street", "所在街道", ColumnType::Text),
                column("spaces", "泊位数", ColumnType::Integer),
                column("chargers", "充电桩数", ColumnType::Integer),
                column("price", "收费标准（元/小时）", ColumnType::Number),
            ]
        },
        rows: |rng, _| {
            streets(rng, 15)
                .into_iter()
                .enumerate()
                .map(|(i, s)| {
                    let name = format!("{}{}号公共停车场", s.trim_end_matches("街道"), i + 1);
                    let price = pick(&["2", "3", "4", "5"], rng.gen_range(0..4));
                    vec![
                        name,
                        s,
                        rng.gen_range(40..600).to_string(),
                        rng.gen_range(0..40).to_string(),
                        price.to_string(),
                    ]
                })
                .collect()
        },
    },
    Template {
        name: "schools",
        title: "中小学校名录",
        description: "公办和民办中小学校的名称、学段、所在街道和在校生人数。",
        theme: Theme::Education,
        tags: &["教育", "民生服务"],
        frequency: Frequency::Yearly,
        level: OpenLevel::Unconditional,
        columns: || {
            vec![
                column("name", "学校名称", ColumnType::Text),
                coded("level", "学段", &["小学", "初级中学", "九年一贯制"]),
                column("street", "所在街道", ColumnType::Text),
                column("students", "在校生人数", ColumnType::Integer),
            ]
        },
        rows: |rng, district| {
            let levels = ["小学", "初级中学", "九年一贯制"];
            streets(rng, 14)
                .into_iter()
                .enumerate()
                .map(|(i, s)| {
                    let level = pick(&levels, i);
                    let name =
                        format!("{district}{}{}", s.trim_end_matches("街道"), pick(&["小学", "中学", "学校"], i));
                    vec![name, level.to_string(), s, rng.gen_range(300..2500).to_string()]
                })
                .collect()
        },
    },
    Template {
        name: "air-quality-monthly",
        title: "空气质量月报",
        description: "国控监测点的月均空气质量指数、PM2.5 浓度（微克/立方米）和优良天数。",
        theme: Theme::Urban,
        tags: &["环境", "空气质量"],
        frequency: Frequency::Monthly,
        level: OpenLevel::Unconditional,
        columns: || {
            vec![
                column("month", "月份", ColumnType::Month),
                column("aqi", "空气质量指数", ColumnType::Integer),
                column("pm25", "PM2.5", ColumnType::Number),
                column("good_days", "优良天数", ColumnType::Integer),
            ]
        },
        rows: |rng, _| {
            (1..=11)
                .map(|m| {
                    vec![
                        format!("2026-{m:02}"),
                        rng.gen_range(28..75).to_string(),
                        format!("{:.1}", rng.gen_range(12.0..38.0)),
                        rng.gen_range(25..31).min(28 + (m % 3)).to_string(),
                    ]
                })
                .collect()
        },
    },
    Template {
        name: "public-toilets",
        title: "公共厕所分布",
        description: "城市公共厕所的名称、所在街道、开放时间以及是否设有无障碍设施。",
        theme: Theme::Urban,
        tags: &["市政设施", "无障碍"],
        frequency: Frequency::Quarterly,
        level: OpenLevel::Unconditional,
        columns: || {
            vec![
                column("name", "名称", ColumnType::Text),
                column("street", "所在街道", ColumnType::Text),
                column("hours", "开放时间", ColumnType::Text),
                column("accessible", "无障碍设施", ColumnType::Boolean),
            ]
        },
        rows: |rng, _| {
            streets(rng, 16)
                .into_iter()
                .enumerate()
                .map(|(i, s)| {
                    let name = format!("{}{}号公厕", s.trim_end_matches("街道"), i + 1);
                    vec![name, s, "全天".to_string(), rng.gen_bool(0.7).to_string()]
                })
                .collect()
        },
    },
    Template {
        name: "service-points",
        title: "便民服务站点",
        description: "街道和社区便民服务站的名称、所在街道和可办理的政务服务事项数。",
        theme: Theme::General,
        tags: &["政务服务", "民生服务"],
        frequency: Frequency::Irregular,
        level: OpenLevel::Unconditional,
        columns: || {
            vec![
                column("name", "站点名称", ColumnType::Text),
                column("street", "所在街道", ColumnType::Text),
                column("services", "可办事项数", ColumnType::Integer),
            ]
        },
        rows: |rng, _| {
            streets(rng, 10)
                .into_iter()
                .map(|s| {
                    let name = format!("{}便民服务中心", s.trim_end_matches("街道"));
                    vec![name, s, rng.gen_range(30..160).to_string()]
                })
                .collect()
        },
    },
    Template {
        name: "relief-households-by-community",
        title: "最低生活保障家庭分布",
        description: "各社区城乡低保家庭户数和保障人数。涉及困难群众，经申请获批后开放，仅用于政策研究。",
        theme: Theme::CivilAffairs,
        tags: &["社会救助", "低保"],
        frequency: Frequency::Monthly,
        level: OpenLevel::Conditional,
        columns: || {
            vec![
                column("community", "社区", ColumnType::Text),
                column("households", "家庭户数", ColumnType::Integer),
                column("people", "保障人数", ColumnType::Integer),
            ]
        },
        rows: |rng, _| {
            COMMUNITIES
                .iter()
                .map(|c| {
                    let households = rng.gen_range(12..80);
                    vec![
                        format!("{c}社区"),
                        households.to_string(),
                        (households * 2 + rng.gen_range(0..20)).to_string(),
                    ]
                })
                .collect()
        },
    },
];

fn csv_of(columns: &[Column], rows: &[Vec<String>]) -> Vec<u8> {
    let mut out = columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>().join(",");
    out.push('\n');
    for r in rows {
        out.push_str(&r.join(","));
        out.push('\n');
    }
    out.into_bytes()
}

/// Synthetic people of the province for the registries: (population CSV, social-insurance CSV).
fn registry_people(rng: &mut ChaCha8Rng) -> Result<(String, String), identity::Error> {
    let mut population = String::from("id_number,name,sex,birth_date,region_code,mobile\n");
    let mut insured = String::from("id_number,insured,scheme,since,monthly_base\n");
    let districts: Vec<&str> = CITIES.iter().flat_map(|(_, _, d)| d.iter().map(|(c, _, _)| *c)).collect();
    for i in 0..REGISTRY_PEOPLE {
        let born = NaiveDate::from_ymd_opt(rng.gen_range(1940..2008), rng.gen_range(1..13), rng.gen_range(1..29))
            .ok_or_else(|| identity::Error::Internal("a demo birth date".into()))?;
        let region = districts.get(rng.gen_range(0..3)).copied().unwrap_or("990102");
        let sex = if rng.gen_bool(0.5) { "1" } else { "2" };
        let first17 = format!("{region}{}{:03}", born.format("%Y%m%d"), (i % 500) * 2 + usize::from(sex == "1"));
        let check = ids::resident_id_check(&first17).ok_or_else(|| identity::Error::Internal("an ID check".into()))?;
        population.push_str(&format!("{first17}{check},居民{i:04},{sex},{born},{region},139{:08}\n", i));
        let scheme = if rng.gen_bool(0.6) { "城镇职工" } else { "城乡居民" };
        let since = NaiveDate::from_ymd_opt(rng.gen_range(2000..2026), rng.gen_range(1..13), 1)
            .ok_or_else(|| identity::Error::Internal("a demo date".into()))?;
        insured.push_str(&format!("{first17}{check},true,{scheme},{since},{}\n", rng.gen_range(3000..12000)));
    }
    Ok((population, insured))
}

/// Opens the demo datasets (once) and answers a 数据需求; returns how many datasets.
pub async fn seed_open_data(
    identity: &Identity,
    exchange: &exchange::Exchange,
    openness: &Openness,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    if openness.catalogue().search(&DatasetQuery { rows: 1, ..DatasetQuery::default() }).await?.total > 0 {
        return Ok(0);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(SEED + 7);
    let mut published = 0;
    for (district, district_name, pinyin) in staffed_districts() {
        // A platform seeded before the data officers could open data keeps its state.
        let Ok(officer) = identity.sign_in().console_principal(&format!("dataofficer.{pinyin}")).await else {
            return Ok(0);
        };
        let cap = officer.authorize::<OpenDataPublish>()?;
        for t in TEMPLATES {
            let columns = (t.columns)();
            let rows = (t.rows)(&mut rng, district_name);
            let spec = DatasetSpec {
                name: format!("{pinyin}-{}", t.name),
                title: format!("{district_name}{}", t.title),
                description: t.description.to_string(),
                department: format!("{district}-SG"),
                theme: t.theme,
                open_level: t.level,
                frequency: t.frequency,
                licence: Licence::Attribution,
                tags: t.tags.iter().map(|s| s.to_string()).collect(),
            };
            let file = csv_of(&columns, &rows);
            openness.data_publishing().publish_file(&cap, &spec, columns, file, now).await?;
            published += 1;
        }
    }
    published += seed_registry_datasets(identity, exchange, openness, &mut rng, now).await?;
    seed_demands(identity, openness, now).await?;
    Ok(published)
}

async fn seed_registry_datasets(
    identity: &Identity,
    exchange: &exchange::Exchange,
    openness: &Openness,
    rng: &mut ChaCha8Rng,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    let (population, insured) = registry_people(rng)?;
    let ga = identity.sign_in().console_principal("data.ga").await?;
    let rs = identity.sign_in().console_principal("data.rs").await?;
    for (officer, code, csv) in [(&ga, "population", population), (&rs, "social_insurance", insured)] {
        let manage = officer.authorize::<RegistryManage>()?;
        let table = exchange::Table::read(csv.into_bytes())?;
        exchange
            .imports()
            .import(&manage, code, "demo-people.csv", table, exchange::ImportMode::SkipBadRows, now, &|_, _| {})
            .await?;
    }
    let rule = |field: &str, title: &str, rule: FieldRule, quasi: bool| ColumnRule {
        field: field.into(),
        title: title.into(),
        rule,
        quasi_identifier: quasi,
    };
    let datasets = [
        (
            &ga,
            DatasetSpec {
                name: "province-population-age-structure".into(),
                title: "云岭省户籍人口年龄结构（脱敏）".into(),
                description: "人口基础信息库按性别、十岁年龄段和所在市脱敏后的明细，人员编号为不可逆的假名；每个准标识符组合至少 5 人。".into(),
                department: "990000-GA".into(),
                theme: Theme::Population,
                open_level: OpenLevel::Unconditional,
                frequency: Frequency::Monthly,
                licence: Licence::Attribution,
                tags: vec!["人口".into(), "年龄结构".into()],
            },
            RegistrySource {
                registry: "population".into(),
                rules: vec![
                    rule("id_number", "人员编号（假名）", FieldRule::Pseudonym, false),
                    rule("sex", "性别", FieldRule::Keep, true),
                    rule("birth_date", "年龄段", FieldRule::AgeBand { width: 10 }, true),
                    rule("region_code", "所在市", FieldRule::Region { level: RegionLevel::City }, true),
                ],
                k: Some(5),
                leave_out_small_groups: true,
            },
        ),
        (
            &rs,
            DatasetSpec {
                name: "province-insured-by-scheme".into(),
                title: "云岭省基本养老保险参保情况（脱敏）".into(),
                description: "社会保险登记库按参保险种和参保年份脱敏后的明细；缴费基数等敏感字段不开放。".into(),
                department: "990000-RS".into(),
                theme: Theme::Labour,
                open_level: OpenLevel::Unconditional,
                frequency: Frequency::Quarterly,
                licence: Licence::PublicDomain,
                tags: vec!["社会保险".into(), "养老保险".into()],
            },
            RegistrySource {
                registry: "social_insurance".into(),
                rules: vec![
                    rule("id_number", "人员编号（假名）", FieldRule::Pseudonym, false),
                    rule("scheme", "参保险种", FieldRule::Keep, true),
                    rule("since", "参保年份", FieldRule::Year, true),
                ],
                k: Some(5),
                leave_out_small_groups: true,
            },
        ),
    ];
    for (officer, spec, source) in &datasets {
        let cap = officer.authorize::<OpenDataPublish>()?;
        let manage = officer.authorize::<RegistryManage>()?;
        openness.data_publishing().publish_registry(&cap, &manage, spec, source, now).await?;
    }
    Ok(datasets.len())
}

async fn seed_demands(identity: &Identity, openness: &Openness, now: DateTime<Utc>) -> anyhow::Result<()> {
    let citizen = identity.sign_in().console_principal("citizen.demo").await?;
    let demands = openness.data_demands();
    let canteens = demands
        .ask(
            &citizen,
            "990102-SG",
            "社区老年食堂名录",
            "希望开放各社区老年食堂的地址、供餐时间和价格，方便家里老人就近用餐。",
            now,
        )
        .await?;
    demands
        .ask(
            &citizen,
            "990103-SG",
            "公交线路和站点",
            "希望开放公交线路、站点位置和首末班时间，便于开发出行小程序。",
            now,
        )
        .await?;
    let officer = identity.sign_in().console_principal("dataofficer.mingyue").await?;
    let cap = officer.authorize::<OpenDataPublish>()?;
    demands
        .answer(
            &cap,
            &canteens.id,
            "老年食堂信息正在与民政局核实，已先开放养老服务机构名录，食堂名录预计下月开放。",
            Some("mingyue-elderly-care-homes"),
            now,
        )
        .await?;
    Ok(())
}
