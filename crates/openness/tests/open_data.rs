//! Service tests of 数据开放, each run on SQLite and on PostgreSQL: file datasets checked row
//! by row, registry datasets de-identified and held to k-anonymity, versions on the public
//! ledger with the SHA-256 of their CSV, search with facets, rows read with filters and
//! sorts, conditional access with keys and their rate limit, and 数据需求.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

extern crate tongban_openness as openness;

use chrono::{DateTime, Duration, TimeZone, Utc};
use identity::{Capability, Principal};
use kernel::authz::{OpenDataPublish, RegistryManage};
use kernel::error::ErrorCode;
use openness::data::deidentify::{ColumnRule, FieldRule, RegionLevel};
use openness::data::{
    AccessState, Column, ColumnType, DatasetQuery, DatasetSpec, DownloadFormat, Frequency, Licence, OpenLevel, Reader,
    RegistrySource, RowQuery,
};
use openness::{Error, Openness, Theme};
use services::calendar::WorkingCalendar;
use sha2::Digest;
use testkit::{PASSWORD, TOTP, TestDb, on_both_databases};

/// Monday 7 December 2026, 09:00 China time.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 1, 0, 0).unwrap()
}

struct World {
    openness: Openness,
    exchange: exchange::Exchange,
    signed_in: testkit::SignedIn,
    t: TestDb,
}

impl World {
    async fn principal(&self, username: &str) -> Principal {
        let staff = username.starts_with("data.");
        self.signed_in.principal(&self.t.identity, username, PASSWORD, staff.then_some(TOTP), t0()).await
    }

    async fn officer(&self, username: &str) -> Capability<OpenDataPublish> {
        self.principal(username).await.authorize().unwrap()
    }

    async fn registry_officer(&self, username: &str) -> Capability<RegistryManage> {
        self.principal(username).await.authorize().unwrap()
    }

    async fn search(&self, q: &str) -> openness::data::DatasetPage {
        let query = DatasetQuery { q: q.into(), rows: 20, ..DatasetQuery::default() };
        self.openness.catalogue().search(&query).await.unwrap()
    }
}

/// The province's public-security bureau (owner of the population registry) and 明月区's
/// civil-affairs bureau, a data officer of each, and a resident.
async fn world(t: TestDb) -> World {
    let mut f = testkit::Founding::begin(&t, t0()).await;
    f.region("990102", "明月区", Some("990100")).await;
    f.department("990000-GA", "省公安厅", "990000", "GA").await;
    f.department("990102-MZ", "明月区民政局", "990102", "MZ").await;
    f.staff("data.ga", "公安数据专员", "990000-GA", "data_officer").await;
    f.staff("data.mz", "民政数据专员", "990102-MZ", "data_officer").await;
    f.account(testkit::resident_account("citizen.a", "王芳", "990102", "11010519491231002X", None)).await;
    f.commit().await;
    let key = kernel::secrets::MasterKey::from_bytes(t.key);
    let exchange = exchange::Exchange::new(t.db.clone(), t.identity.clone(), &key);
    let openness = Openness::new(t.db.clone(), t.identity.clone(), exchange.clone(), WorkingCalendar::default());
    World { openness, exchange, signed_in: Default::default(), t }
}

fn columns() -> Vec<Column> {
    let column = |name: &str, title: &str, kind: ColumnType, required: bool| Column {
        name: name.into(),
        title: title.into(),
        kind,
        required,
        codes: vec![],
    };
    vec![
        column("name", "机构名称", ColumnType::Text, true),
        column("street", "所在街道", ColumnType::Text, true),
        column("beds", "床位数", ColumnType::Integer, true),
        Column { codes: vec!["公办".into(), "民办".into()], ..column("kind", "性质", ColumnType::Code, true) },
    ]
}

fn spec(name: &str, title: &str, level: OpenLevel) -> DatasetSpec {
    DatasetSpec {
        name: name.into(),
        title: title.into(),
        description: "全区养老服务机构的名称、地址和床位数。".into(),
        department: "990102-MZ".into(),
        theme: Theme::CivilAffairs,
        open_level: level,
        frequency: Frequency::Monthly,
        licence: Licence::Attribution,
        tags: vec!["养老".into(), "民生".into()],
    }
}

const HOMES: &str = "机构名称,所在街道,床位数,性质\n彩云养老院,彩云街道,120,公办\n湖滨颐养中心,湖滨街道,80,民办\n\
                     和平日间照料中心,和平街道,30,公办\n";

on_both_databases!(
    a_file_dataset_is_checked_row_by_row_published_on_the_ledger_and_read,
    a_registry_dataset_is_published_only_when_k_anonymous,
    a_conditional_dataset_is_read_with_an_approved_key_within_its_limit,
    people_ask_for_datasets_and_departments_answer_publicly,
);

async fn a_file_dataset_is_checked_row_by_row_published_on_the_ledger_and_read(t: TestDb) {
    let w = world(t).await;
    let mz = w.officer("data.mz").await;
    let publishing = w.openness.data_publishing();

    // A file with bad rows: the report names each, and publishing refuses the whole file.
    let bad = format!("{HOMES}青湖敬老院,青湖街道,很多,公私合营\n");
    let report = publishing.check_file(&mz, &columns(), bad.clone().into_bytes()).await.unwrap();
    assert_eq!((report.rows, report.rows_refused), (4, 1));
    let named: Vec<(u64, &str)> = report.problems.iter().map(|p| (p.row, p.column.as_str())).collect();
    assert_eq!(named, vec![(5, "beds"), (5, "kind")], "row 5 of the file, both cells");
    let refused = publishing
        .publish_file(
            &mz,
            &spec("elderly-homes", "养老服务机构名录", OpenLevel::Unconditional),
            columns(),
            bad.into_bytes(),
            t0(),
        )
        .await;
    assert!(matches!(refused, Err(Error::Rejected { code: ErrorCode::RowsRejected, .. })), "{refused:?}");
    assert_eq!(w.search("").await.total, 0, "nothing was half-written");

    // Another department's officer cannot publish for 民政局.
    let ga = w.officer("data.ga").await;
    let denied = publishing
        .publish_file(
            &ga,
            &spec("elderly-homes", "养老服务机构名录", OpenLevel::Unconditional),
            columns(),
            HOMES.into(),
            t0(),
        )
        .await;
    assert!(matches!(denied, Err(Error::Denied(_))), "{denied:?}");

    let dataset = publishing
        .publish_file(
            &mz,
            &spec("elderly-homes", "养老服务机构名录", OpenLevel::Unconditional),
            columns(),
            HOMES.into(),
            t0(),
        )
        .await
        .unwrap();
    assert_eq!((dataset.summary.version, dataset.summary.row_count), (1, 3));
    assert_eq!(dataset.summary.department_name, "明月区民政局");
    let taken = publishing
        .publish_file(&mz, &spec("elderly-homes", "另一个", OpenLevel::Unconditional), columns(), HOMES.into(), t0())
        .await;
    assert!(matches!(taken, Err(Error::Conflict { code: ErrorCode::DatasetNameTaken, .. })), "{taken:?}");

    // The CSV anyone downloads hashes to what the public ledger carries.
    let catalogue = w.openness.catalogue();
    let (_, csv) = catalogue.download("elderly-homes", None, DownloadFormat::Csv, Reader::Anyone, t0()).await.unwrap();
    let text = String::from_utf8(csv.clone()).unwrap();
    assert!(text.starts_with("name,street,beds,kind\r\n彩云养老院,彩云街道,120,公办\r\n"), "{text}");
    let sha = hex::encode(sha2::Sha256::digest(&csv));
    assert_eq!(dataset.versions[0].sha256, sha);
    let entries = ledger::recent(&w.t.db, ledger::Log::Public, Some("open_dataset_published"), None, 10).await.unwrap();
    let (_, entry) = entries.iter().find(|(i, _)| *i as i64 == dataset.versions[0].ledger_index).unwrap();
    assert!(entry.detail.as_deref().unwrap().contains(&sha), "the ledger entry carries the CSV's SHA-256");
    let (_, json) =
        catalogue.download("elderly-homes", Some(1), DownloadFormat::Json, Reader::Anyone, t0()).await.unwrap();
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&json).unwrap();
    assert_eq!(rows.len(), 3);

    // Rows: filtered, searched, sorted, paged, with chosen fields.
    let mut q = RowQuery { limit: 10, ..RowQuery::default() };
    q.filters.insert("kind".into(), vec!["公办".into()]);
    q.sort.push(("beds".into(), false));
    let page = catalogue.rows("elderly-homes", Reader::Anyone, &q, t0()).await.unwrap();
    assert_eq!(page.total, 2);
    assert_eq!(page.rows[0]["name"], "和平日间照料中心", "30 beds before 120");
    let q = RowQuery { q: Some("湖滨".into()), fields: vec!["name".into()], limit: 10, ..RowQuery::default() };
    let page = catalogue.rows("elderly-homes", Reader::Anyone, &q, t0()).await.unwrap();
    assert_eq!((page.total, page.fields.len()), (1, 1));
    assert!(page.rows[0].get("street").is_none());
    let q = RowQuery { sort: vec![("nope".into(), false)], limit: 10, ..RowQuery::default() };
    assert!(matches!(catalogue.rows("elderly-homes", Reader::Anyone, &q, t0()).await, Err(Error::Invalid { .. })));

    // Search with Chinese words and facets.
    let relief = DatasetSpec {
        description: "城乡居民最低生活保障的月标准。".into(),
        tags: vec!["低保".into(), "民生".into()],
        ..spec("relief-standards", "最低生活保障标准", OpenLevel::Unconditional)
    };
    publishing.publish_file(&mz, &relief, columns(), HOMES.into(), t0()).await.unwrap();
    let found = w.search("养老机构").await;
    assert_eq!(found.total, 1, "养老 and 机构 are both words of the first dataset only");
    assert_eq!(found.datasets[0].name, "elderly-homes");
    assert_eq!(w.search("生活保障").await.datasets[0].name, "relief-standards");
    let all = w.search("").await;
    assert_eq!(all.total, 2);
    assert_eq!(all.facets.department["990102-MZ"].1, 2);
    assert_eq!((all.facets.tags["民生"], all.facets.tags["养老"]), (2, 1));

    // A new version: the stale editor is refused, the history kept.
    let more = format!("{HOMES}青湖敬老院,青湖街道,60,公办\n");
    let replaced = publishing
        .replace_file(&mz, "elderly-homes", 1, more.clone().into_bytes(), "新增一家机构", t0())
        .await
        .unwrap();
    assert_eq!((replaced.summary.version, replaced.summary.row_count, replaced.versions.len()), (2, 4, 2));
    let stale = publishing.replace_file(&mz, "elderly-homes", 1, more.into_bytes(), "再次更新", t0()).await;
    assert!(matches!(stale, Err(Error::Conflict { code: ErrorCode::RecordChanged, .. })), "{stale:?}");
    let (_, old) =
        catalogue.download("elderly-homes", Some(1), DownloadFormat::Csv, Reader::Anyone, t0()).await.unwrap();
    assert_eq!(old, csv, "version 1 still downloads as published");

    // Usage: two CSV downloads, a JSON one and the old version, three row reads.
    catalogue.count_use(&dataset.summary.id, openness::data::UseKind::View, t0()).await.unwrap();
    let usage = catalogue.dataset("elderly-homes").await.unwrap().usage;
    assert_eq!((usage.views, usage.downloads, usage.api_calls), (1, 3, 2));
    // Insight's tallies count the same uses, and a recount from the records agrees.
    let mut c = w.t.db.pool.acquire().await.unwrap();
    let stored = kernel::tally::stored(&mut c, kernel::tally::Module::Openness).await.unwrap();
    drop(c);
    let downloads: i64 = stored
        .iter()
        .filter(|n| n.measure == kernel::tally::Measure::DatasetDownloaded && n.key.service == "elderly-homes")
        .map(|n| n.value)
        .sum();
    assert_eq!(downloads, 3);
    let mut recounted = catalogue.recount().await.unwrap();
    let mut stored = stored;
    recounted.sort();
    stored.sort();
    assert_eq!(recounted, stored);
}

/// `n` people of 明月区, born in `year`, all women.
fn people(from: usize, n: usize, year: i32) -> String {
    let mut csv = String::from("id_number,name,sex,birth_date,region_code,mobile\n");
    for i in from..from + n {
        let born = format!("{year}0{}1{}", 1 + i % 9, i % 10);
        let first17 = format!("990102{born}{:03}", i % 1000);
        let check = identity::ids::resident_id_check(&first17).unwrap();
        let date = format!("{}-{}-{}", &born[..4], &born[4..6], &born[6..8]);
        csv.push_str(&format!("{first17}{check},居民{i},2,{date},990102,1381234{i:04}\n"));
    }
    csv
}

async fn a_registry_dataset_is_published_only_when_k_anonymous(t: TestDb) {
    let w = world(t).await;
    let manage = w.registry_officer("data.ga").await;
    let specs: Vec<exchange::RegistrySpec> =
        serde_json::from_str(include_str!("../../tongban/fixtures/registries.json")).unwrap();
    let population = specs.into_iter().find(|s| s.code == "population").unwrap();
    w.exchange.registries().publish_registry(&manage, population, t0()).await.unwrap();
    // Twelve people born in 1956 and three born in 1931: the oldest are too few.
    let file = format!(
        "{}{}",
        people(0, 12, 1956),
        &people(100, 3, 1931)["id_number,name,sex,birth_date,region_code,mobile\n".len()..]
    );
    let table = exchange::Table::read(file.into_bytes()).unwrap();
    let imported = w
        .exchange
        .imports()
        .import(&manage, "population", "people.csv", table, exchange::ImportMode::AllOrNothing, t0(), &|_, _| {})
        .await
        .unwrap();
    assert_eq!(imported.imported, 15, "{imported:?}");

    let ga = w.officer("data.ga").await;
    let publishing = w.openness.data_publishing();
    let rule = |field: &str, title: &str, rule: FieldRule| ColumnRule {
        field: field.into(),
        title: title.into(),
        rule,
        quasi_identifier: false,
    };
    let mut sex = rule("sex", "性别", FieldRule::Keep);
    sex.quasi_identifier = true;
    let rules = vec![
        rule("id_number", "人员编号", FieldRule::Pseudonym),
        sex,
        rule("birth_date", "年龄段", FieldRule::AgeBand { width: 10 }),
        rule("region_code", "所在地", FieldRule::Region { level: RegionLevel::City }),
    ];
    let spec = DatasetSpec {
        name: "population-by-age".into(),
        title: "户籍人口年龄结构".into(),
        description: "按性别、年龄段和所在市统计的户籍人口明细（已脱敏）。".into(),
        department: "990000-GA".into(),
        theme: Theme::Population,
        open_level: OpenLevel::Unconditional,
        frequency: Frequency::Monthly,
        licence: Licence::Attribution,
        tags: vec!["人口".into()],
    };
    let mut source =
        RegistrySource { registry: "population".into(), rules: rules.clone(), k: None, leave_out_small_groups: false };

    // A name kept as it is identifies people: refused before anything is read.
    let mut naming = source.clone();
    naming.rules.push(rule("name", "姓名", FieldRule::Keep));
    let refused = publishing.publish_registry(&ga, &manage, &spec, &naming, t0()).await;
    assert!(matches!(refused, Err(Error::Invalid { field: "rules", .. })), "{refused:?}");

    // The preview names the combination below k = 5; publishing refuses and names it too.
    let preview = publishing.preview_registry(&ga, &manage, &spec.name, &source, t0()).await.unwrap();
    assert_eq!((preview.rows, preview.anonymity.k_reached, preview.anonymity.failing_rows), (15, 3, 3));
    let failing = &preview.anonymity.failing[0].values;
    assert!(failing.contains(&("birth_date".to_string(), "90-99".to_string())), "{failing:?}");
    let refused = publishing.publish_registry(&ga, &manage, &spec, &source, t0()).await;
    match refused {
        Err(Error::Rejected { code: ErrorCode::KAnonymityNotMet, reason }) => {
            assert!(reason.contains("90-99"), "{reason}")
        }
        other => panic!("expected k_anonymity_not_met, got {other:?}"),
    }
    assert_eq!(w.search("").await.total, 0);

    // Leaving the small group out publishes the rest, k-anonymous, with no name or ID number.
    source.leave_out_small_groups = true;
    let dataset = publishing.publish_registry(&ga, &manage, &spec, &source, t0()).await.unwrap();
    assert_eq!((dataset.summary.row_count, dataset.summary.k_reached), (12, Some(12)));
    assert_eq!(dataset.rules.as_ref().unwrap().len(), 4, "the page shows the rules applied");
    let catalogue = w.openness.catalogue();
    let (_, csv) = catalogue.download(&spec.name, None, DownloadFormat::Csv, Reader::Anyone, t0()).await.unwrap();
    let text = String::from_utf8(csv).unwrap();
    assert!(text.starts_with("id_number,sex,birth_date,region_code\r\n"), "{text}");
    assert!(text.contains(",2,70-79,990100\r\n"), "born 1956, 70 on 7 December 2026 for some: {text}");
    assert!(!text.contains("居民") && !text.contains("990102195"), "no name, no ID number: {text}");
    let first_pseudonym = text.lines().nth(1).unwrap().split(',').next().unwrap().to_string();
    assert_eq!(first_pseudonym.len(), 16);

    // The monthly refresh: nothing due yet; a month on, a new person makes version 2 with
    // the same pseudonyms for the same people.
    assert_eq!(publishing.refresh_due(&manage, t0() + Duration::days(1)).await.unwrap(), 0);
    let table = exchange::Table::read(people(200, 1, 1956).into_bytes()).unwrap();
    w.exchange
        .imports()
        .import(&manage, "population", "more.csv", table, exchange::ImportMode::AllOrNothing, t0(), &|_, _| {})
        .await
        .unwrap();
    let later = t0() + Duration::days(31);
    assert_eq!(publishing.refresh_due(&manage, later).await.unwrap(), 1);
    let refreshed = catalogue.dataset(&spec.name).await.unwrap();
    assert_eq!((refreshed.summary.version, refreshed.summary.row_count), (2, 13));
    let (_, csv) = catalogue.download(&spec.name, None, DownloadFormat::Csv, Reader::Anyone, later).await.unwrap();
    assert!(String::from_utf8(csv).unwrap().contains(&first_pseudonym), "pseudonyms hold across versions");
    assert_eq!(publishing.refresh_due(&manage, later).await.unwrap(), 0, "next one is a month away");
}

async fn a_conditional_dataset_is_read_with_an_approved_key_within_its_limit(t: TestDb) {
    let w = world(t).await;
    let mz = w.officer("data.mz").await;
    w.openness
        .data_publishing()
        .publish_file(
            &mz,
            &spec("relief-households", "低保家庭分布", OpenLevel::Conditional),
            columns(),
            HOMES.into(),
            t0(),
        )
        .await
        .unwrap();
    let catalogue = w.openness.catalogue();
    let q = RowQuery { limit: 10, ..RowQuery::default() };
    let anonymous = catalogue.rows("relief-households", Reader::Anyone, &q, t0()).await;
    assert!(matches!(anonymous, Err(Error::AccessRequired)), "{anonymous:?}");
    assert_eq!(w.search("低保").await.total, 1, "its description is public");

    let citizen = w.principal("citizen.a").await;
    let access = w.openness.access();
    let short = access.apply(&citizen, "relief-households", "研究", t0()).await;
    assert!(matches!(short, Err(Error::Invalid { field: "purpose", .. })));
    let purpose = "开展社会救助政策效果的学术研究，仅用于统计分析。";
    let application = access.apply(&citizen, "relief-households", purpose, t0()).await.unwrap();
    assert_eq!(application.state, AccessState::Pending);
    let again = access.apply(&citizen, "relief-households", purpose, t0()).await.unwrap();
    assert_eq!(again.id, application.id, "applying twice is one application");
    let early = access.issue_key(&citizen, &application.id).await;
    assert!(matches!(early, Err(Error::Conflict { .. })), "no key before approval");

    let ga = w.officer("data.ga").await;
    let denied = access.decide(&ga, &application.id, true, "同意", Some(2), t0()).await;
    assert!(matches!(denied, Err(Error::Denied(_))), "only the owning department decides");
    assert_eq!(access.applications(&mz).await.unwrap().len(), 1);
    let approved = access.decide(&mz, &application.id, true, "同意，用于学术研究", Some(2), t0()).await.unwrap();
    assert_eq!((approved.state, approved.calls_per_minute), (AccessState::Approved, 2));
    let twice = access.decide(&mz, &application.id, false, "不同意", None, t0()).await;
    assert!(matches!(twice, Err(Error::Conflict { code: ErrorCode::AlreadyDecided, .. })));

    let key = access.issue_key(&citizen, &application.id).await.unwrap();
    assert!(access.mine(&citizen).await.unwrap()[0].has_key);
    let with_key = Reader::Key(&key.key);
    assert_eq!(catalogue.rows("relief-households", with_key, &q, t0()).await.unwrap().total, 3);
    catalogue.download("relief-households", None, DownloadFormat::Csv, with_key, t0()).await.unwrap();
    let limited = catalogue.rows("relief-households", with_key, &q, t0()).await;
    assert!(matches!(limited, Err(Error::RateLimited { .. })), "two calls a minute: {limited:?}");
    let next_minute = t0() + Duration::minutes(1);
    catalogue.rows("relief-households", with_key, &q, next_minute).await.unwrap();
    let wrong = catalogue.rows("relief-households", Reader::Key("tbod_not-a-key"), &q, next_minute).await;
    assert!(matches!(wrong, Err(Error::InvalidApiKey)));

    access.revoke(&mz, &application.id, "研究已结束", next_minute).await.unwrap();
    let revoked = catalogue.rows("relief-households", with_key, &q, t0() + Duration::minutes(2)).await;
    assert!(matches!(revoked, Err(Error::InvalidApiKey)), "a revoked key stops at once: {revoked:?}");
}

async fn people_ask_for_datasets_and_departments_answer_publicly(t: TestDb) {
    let w = world(t).await;
    let citizen = w.principal("citizen.a").await;
    let demands = w.openness.data_demands();
    let asked = demands
        .ask(&citizen, "990102-MZ", "社区食堂名录", "希望开放各社区老年食堂的地址、开放时间和价格。", t0())
        .await
        .unwrap();
    let nowhere = demands.ask(&citizen, "000000-XX", "社区食堂名录", "希望开放各社区老年食堂的地址。", t0()).await;
    assert!(matches!(nowhere, Err(Error::Invalid { field: "department", .. })));
    let listed = demands.list(None).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].department_name, "明月区民政局");

    let ga = w.officer("data.ga").await;
    assert!(matches!(demands.answer(&ga, &asked.id, "不是我们的数据", None, t0()).await, Err(Error::Denied(_))));
    let mz = w.officer("data.mz").await;
    assert_eq!(demands.inbox(&mz).await.unwrap().len(), 1);
    w.openness
        .data_publishing()
        .publish_file(
            &mz,
            &spec("elderly-homes", "养老服务机构名录", OpenLevel::Unconditional),
            columns(),
            HOMES.into(),
            t0(),
        )
        .await
        .unwrap();
    let answered = demands
        .answer(&mz, &asked.id, "已开放养老服务机构名录，老年食堂将在下月纳入。", Some("elderly-homes"), t0())
        .await
        .unwrap();
    assert_eq!(answered.dataset.as_ref().map(|d| d.0.as_str()), Some("elderly-homes"));
    let again = demands.answer(&mz, &asked.id, "再答一次", None, t0()).await;
    assert!(matches!(again, Err(Error::Conflict { code: ErrorCode::AlreadyAnswered, .. })));
    let public = demands.list(Some("990102-MZ")).await.unwrap();
    assert!(public[0].answer.as_deref().unwrap().contains("老年食堂"));
}
