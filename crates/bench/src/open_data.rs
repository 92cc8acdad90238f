//! 数据开放 benchmarks: CKAN's `package_search` over 10,000 datasets through the real server
//! (p95) beside the same searches in process; and de-identifying a generated population
//! registry into a dataset (rows/s) beside a plain export of the same rows.

use super::*;
use kernel::authz::{OpenDataPublish, RegistryManage};
use openness::Theme;
use openness::data::deidentify::{ColumnRule, FieldRule, RegionLevel};
use openness::data::{Column, ColumnType, DatasetQuery, DatasetSpec, Frequency, Licence, OpenLevel, RegistrySource};

/// What people search the catalogue for: words alone, and words with CKAN filter queries.
const QUERIES: &[(&str, &str)] = &[
    ("养老", ""),
    ("停车", ""),
    ("学校 名录", ""),
    ("空气质量", "organization:990102-sg"),
    ("", "tags:民生服务"),
    ("卫生", "res_format:CSV"),
    ("明月区 公厕", ""),
    ("低保", "groups:civil_affairs"),
    ("", ""),
    ("便民服务", "organization:990103-sg"),
];

const PLACES: &[&str] = &["明月区", "青湖区", "金马区", "星桥区", "松林区", "白石区", "溪口区", "梅园区"];
const TOPICS: &[(&str, &str, Theme)] = &[
    ("养老服务机构", "养老", Theme::CivilAffairs),
    ("公共停车场", "停车", Theme::Industry),
    ("中小学校", "教育", Theme::Education),
    ("空气质量", "环境", Theme::Urban),
    ("社区卫生服务中心", "医疗", Theme::Health),
    ("公共厕所", "市政设施", Theme::Urban),
    ("便民服务站点", "民生服务", Theme::General),
    ("最低生活保障", "低保", Theme::CivilAffairs),
    ("公交站点", "交通", Theme::Industry),
    ("农贸市场", "商贸", Theme::Commerce),
];
const KINDS: &[&str] = &["名录", "分布", "统计", "月报", "年报"];

fn p95(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    let at =
        |q: f64| v.get(((v.len() as f64 * q) as usize).min(v.len().saturating_sub(1))).copied().unwrap_or_default();
    (at(0.5), at(0.95))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub(super) async fn open_data_bench(args: &BenchArgs, data: &std::path::Path) -> anyhow::Result<()> {
    search_bench(args, data).await?;
    let scratch = scratch_dir()?;
    let result = deidentify_bench(args, &scratch).await;
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

/// The platform of a data dir, in process, with the server's own master key.
async fn platform(
    args: &BenchArgs,
    data: &std::path::Path,
) -> anyhow::Result<(kernel::db::Db, identity::Identity, openness::Openness, identity::Console)> {
    let url = match &args.database_url {
        Some(u) => u.clone(),
        None => format!("sqlite://{}?mode=rwc", data.join("tongban.db").display()),
    };
    let db = kernel::db::Db::connect(&url).await?;
    let (key, _) = kernel::secrets::MasterKey::load_or_generate(&data.join("secrets").join("master.key"), false)?;
    let identity = identity::Identity::new(db.clone(), key.clone(), Default::default());
    let console = identity.console(&key)?;
    let exchange = exchange::Exchange::new(db.clone(), identity.clone(), &key);
    let openness = openness::Openness::new(db.clone(), identity.clone(), exchange, Default::default());
    Ok((db, identity, openness, console))
}

async fn search_bench(args: &BenchArgs, data: &std::path::Path) -> anyhow::Result<()> {
    let client: Client<HttpConnector, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    println!("starting tongban serve with the demo province (its 18 open datasets) …");
    let (first, _) = start(data, args.database_url.as_deref(), &[], &client).await?;
    drop(first);
    let (db, identity, openness, _console) = platform(args, data).await?;
    // The demo districts' data officers publish, each for their own data authority.
    let officer = |username: &'static str| {
        let identity = identity.clone();
        async move {
            let principal = identity.sign_in().console_principal(username).await?;
            anyhow::Ok(principal.authorize::<OpenDataPublish>()?)
        }
    };
    let (mingyue, qinghu) = (officer("dataofficer.mingyue").await?, officer("dataofficer.qinghu").await?);
    let have = openness.catalogue().search(&DatasetQuery { rows: 1, ..DatasetQuery::default() }).await?.total;
    let columns = vec![
        Column { name: "name".into(), title: "名称".into(), kind: ColumnType::Text, required: true, codes: vec![] },
        Column {
            name: "count".into(), title: "数量".into(), kind: ColumnType::Integer, required: true, codes: vec![]
        },
    ];
    let started = Instant::now();
    for i in have..args.open_datasets {
        let place = PLACES.get(i % PLACES.len()).copied().unwrap_or_default();
        let (topic, tag, theme) = TOPICS.get((i / PLACES.len()) % TOPICS.len()).copied().context("topics")?;
        let kind = KINDS.get(i % KINDS.len()).copied().unwrap_or_default();
        let (department, cap) = if i % 2 == 0 { ("990102-SG", &mingyue) } else { ("990103-SG", &qinghu) };
        let spec = DatasetSpec {
            name: format!("bench-{i:05}"),
            title: format!("{place}{topic}{kind}（{i}）"),
            description: format!("{place}{topic}的{kind}数据，按月更新，供社会公众查询和开发利用。"),
            department: department.into(),
            theme,
            open_level: if i % 10 == 0 { OpenLevel::Conditional } else { OpenLevel::Unconditional },
            frequency: Frequency::Monthly,
            licence: Licence::Attribution,
            tags: vec![tag.into(), "民生服务".into()],
        };
        let file = format!("name,count\n{place}{topic}一,{}\n{place}{topic}二,{}\n", i % 97, i % 89);
        openness
            .data_publishing()
            .publish_file(cap, &spec, columns.clone(), file.into_bytes(), chrono::Utc::now())
            .await?;
    }
    let published = args.open_datasets.saturating_sub(have);
    println!("published {published} datasets in {:.1} s", started.elapsed().as_secs_f64());

    // In process: the catalogue search itself (built once, then read), with CKAN's filters
    // applied as the CKAN adapter applies them.
    openness.catalogue().search(&DatasetQuery { rows: 10, ..DatasetQuery::default() }).await?;
    let mut local = Vec::new();
    for round in 0..30 {
        for (q, _) in QUERIES {
            let t = Instant::now();
            let page = openness
                .catalogue()
                .search(&DatasetQuery { q: (*q).into(), rows: usize::MAX, ..DatasetQuery::default() })
                .await?;
            std::hint::black_box((round, page.total));
            local.push(t.elapsed());
        }
    }
    db.close().await;

    let (server, _) = start(data, args.database_url.as_deref(), &[], &client).await?;
    let mut remote = Vec::new();
    let mut total = 0u64;
    for _ in 0..30 {
        for (q, fq) in QUERIES {
            let query = form_urlencoded_pairs(&[
                ("q", q),
                ("fq", fq),
                ("rows", "10"),
                ("facet.field", "[\"organization\",\"tags\"]"),
            ]);
            let url = format!("{}/api/3/action/package_search?{query}", server.base);
            let t = Instant::now();
            let (status, body) = call("GET", &url, None, "application/json", Vec::new()).await?;
            remote.push(t.elapsed());
            if status != 200 {
                bail!("package_search answered {status}: {body}");
            }
            total += body.pointer("/result/count").and_then(serde_json::Value::as_u64).unwrap_or(0);
        }
    }
    drop(server);
    let (l50, l95) = p95(local);
    let (r50, r95) = p95(remote);
    println!();
    println!("| open-data catalogue ({} datasets) | p50 | p95 | reference (same run) | target |", args.open_datasets);
    println!("|---|---|---|---|---|");
    println!(
        "| CKAN package_search over HTTP, 10 queries × 30 (words, fq, facets, 10 rows; {total} hits summed) | {:.2} ms | {:.2} ms | the same searches in process: p50 {:.2} ms, p95 {:.2} ms | reported |",
        ms(r50),
        ms(r95),
        ms(l50),
        ms(l95)
    );
    Ok(())
}

/// A query string of these pairs.
fn form_urlencoded_pairs(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

/// A generated population registry, then a plain export of its rows (the reference) and
/// their de-identification into a dataset (pseudonym, age band, city, sex; k = 5).
async fn deidentify_bench(args: &BenchArgs, data: &std::path::Path) -> anyhow::Result<()> {
    let (db, identity, exchange, console) = population_registry(args, data, "deidentify.db").await?;
    let now = chrono::Utc::now();
    // The bureau's data officer, who publishes the dataset (versions name their publisher).
    let officer = identity::NewAccount {
        kind: Some(identity::AccountKind::Staff),
        username: "data.ga".into(),
        display_name: "公安厅数据专员".into(),
        password: Some(kernel::secrets::SecretString::new(tongban::demo::DEMO_PASSWORD.into())),
        department_code: Some("990000-GA".into()),
        ..identity::NewAccount::default()
    };
    let mut tx = db.begin().await?;
    let officer = identity.accounts().create_account_in(&mut tx, &console.grant(), officer, now).await?;
    identity.accounts().grant_role_in(&mut tx, &console.grant(), &officer.id, "data_officer", now).await?;
    tx.commit().await?;
    let officer = identity.sign_in().console_principal("data.ga").await?;
    let manage = console.grant::<RegistryManage>();
    let (csv, _) = population_csv(args.import_rows);
    let table = exchange::Table::read(csv.into_bytes())?;
    println!("importing {} generated population rows for the de-identification …", args.import_rows);
    exchange
        .imports()
        .import(&manage, "population", "bench.csv", table, exchange::ImportMode::SkipBadRows, now, &|_, _| {})
        .await?;

    // The reference: the same fields read and written out as CSV, nothing generalised.
    let fields: Vec<String> = ["id_number", "sex", "birth_date", "region_code"].iter().map(|s| s.to_string()).collect();
    let release =
        exchange::Release { registry: "population", fields: &fields, pseudonymised: &[], pseudonym_domain: "bench" };
    let started = Instant::now();
    let mut out = Vec::with_capacity(64 << 20);
    let exported = exchange
        .registries()
        .release(&manage, &release, now, |row| {
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(openness::data::deidentify::display(row.get(f)).as_bytes());
            }
            out.extend_from_slice(b"\r\n");
            Ok(())
        })
        .await?;
    let export_took = started.elapsed();
    std::hint::black_box(out.len());
    drop(out);

    let openness = openness::Openness::new(db.clone(), identity.clone(), exchange, Default::default());
    let rule = |field: &str, rule: FieldRule, quasi: bool| ColumnRule {
        field: field.into(),
        title: field.into(),
        rule,
        quasi_identifier: quasi,
    };
    let source = RegistrySource {
        registry: "population".into(),
        rules: vec![
            rule("id_number", FieldRule::Pseudonym, false),
            rule("sex", FieldRule::Keep, true),
            rule("birth_date", FieldRule::AgeBand { width: 10 }, true),
            rule("region_code", FieldRule::Region { level: RegionLevel::City }, true),
        ],
        k: Some(5),
        leave_out_small_groups: true,
    };
    let spec = DatasetSpec {
        name: "bench-population".into(),
        title: "户籍人口年龄结构（脱敏）".into(),
        description: "基准测试生成的人口数据脱敏后的明细。".into(),
        department: "990000-GA".into(),
        theme: Theme::Population,
        open_level: OpenLevel::Unconditional,
        frequency: Frequency::Monthly,
        licence: Licence::Attribution,
        tags: vec!["人口".into()],
    };
    let started = Instant::now();
    let (publish, officer_manage) = (officer.authorize::<OpenDataPublish>()?, officer.authorize::<RegistryManage>()?);
    let dataset = openness.data_publishing().publish_registry(&publish, &officer_manage, &spec, &source, now).await?;
    let took = started.elapsed();
    let rows = u64::try_from(dataset.summary.row_count)?;
    println!();
    println!("| de-identification ({}) | value | reference (same run) | ratio | target |", db.backend.name());
    println!("|---|---|---|---|---|");
    println!(
        "| {exported} registry rows into a dataset: ID numbers opened and pseudonymised, age bands, cities, k-anonymity (k = 5, reached {}), rows, CSV SHA-256 and ledger entry written in one transaction | {:.0} rows/s ({rows} published, {:.1} s) | plain export of the same rows and fields to CSV: {:.0} rows/s ({:.1} s) | {:.0} % | reported |",
        dataset.summary.k_reached.unwrap_or(0),
        per_sec(exported, took),
        took.as_secs_f64(),
        per_sec(exported, export_took),
        export_took.as_secs_f64(),
        per_sec(exported, took) / per_sec(exported, export_took) * 100.0
    );
    db.close().await;
    Ok(())
}
