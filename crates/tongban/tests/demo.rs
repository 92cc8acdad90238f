//! The demo the binary crate seeds (`tongban::demo`), each run on SQLite and on PostgreSQL:
//! the province is complete and deterministic, the catalog publishes once and its search
//! finds services; and the service tests' copy of the built-in workflows is the binary's.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "../../services/tests/common/mod.rs"]
mod hall;
#[path = "../../identity/tests/common/mod.rs"]
mod identity_fixture;

/// The demo province 云岭省 (identity).
mod province {
    use sqlx::Row;
    use testkit::{TestDb, on_both_databases};

    use super::identity_fixture::t0;

    on_both_databases!(demo_province_is_complete_and_deterministic,);

    async fn demo_province_is_complete_and_deterministic(t: TestDb) {
        let summary = tongban::demo::seed(&t.identity, &t.console(), t0()).await.unwrap();
        assert_eq!(summary.citizens, 1000);
        assert_eq!(summary.enterprises, 200);
        // 1 province, 3 cities, 8 districts, each with 2 streets × 2 communities × 2 grids
        assert_eq!(summary.regions, 1 + 3 + 8 * (1 + 2 + 4 + 8));
        // 13 lines of work, and the 5 a 12345 hotline routes to besides, at the province and
        // in each district.
        assert_eq!(summary.departments, 18 * 9);
        for role in [
            "dispatcher",
            "hotline_operator",
            "window_clerk",
            "approver",
            "community_worker",
            "data_officer",
            "leader",
            "auditor",
            "security_admin",
            "system_admin",
            "disclosure_officer",
        ] {
            let districts: std::collections::HashSet<_> =
                summary.staff.iter().filter(|(_, r, _)| r == role).map(|(_, _, d)| d.clone()).collect();
            assert!(districts.contains("明月区") && districts.contains("青湖区"), "{role}: {districts:?}");
        }
        // Every ID number opens (from its sealed form) and is valid.
        let rows = sqlx::query(
            "SELECT c.account_id, c.id_number_enc, c.id_number_bidx, a.username FROM citizens c \
             JOIN accounts a ON a.id = c.account_id ORDER BY a.username",
        )
        .fetch_all(&t.db.pool)
        .await
        .unwrap();
        assert_eq!(rows.len(), 1000);
        for r in &rows {
            let (account, sealed): (String, String) = (r.get("account_id"), r.get("id_number_enc"));
            let id = t.identity.protector().open(&sealed, &format!("citizens.id_number:{account}")).await.unwrap();
            assert!(identity::ids::validate_resident_id(&id).is_ok(), "{}", *id);
        }
        let codes = sqlx::query("SELECT credit_code FROM enterprises").fetch_all(&t.db.pool).await.unwrap();
        assert_eq!(codes.len(), 200);
        for r in &codes {
            let code: String = r.try_get("credit_code").unwrap();
            assert!(identity::ids::validate_credit_code(&code).is_ok(), "{code}");
        }
        // Same seed, same people: a province seeded elsewhere (same master key, so the same
        // blind index) has the same first resident.
        let bidx = |rows: &[sqlx::any::AnyRow]| -> String {
            rows.iter().find(|r| r.get::<String, _>("username") == "resident-0001").unwrap().get("id_number_bidx")
        };
        let first = bidx(&rows);
        let other = TestDb::sqlite().await;
        tongban::demo::seed(&other.identity, &other.console(), t0()).await.unwrap();
        let again = sqlx::query(
            "SELECT c.id_number_bidx, a.username FROM citizens c JOIN accounts a ON a.id = c.account_id \
             WHERE a.username = 'resident-0001'",
        )
        .fetch_all(&other.db.pool)
        .await
        .unwrap();
        assert_eq!(first, bidx(&again));
        // Subtree: 明月区 holds 15 regions (itself, 2 streets, 4 communities, 8 grids).
        let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM regions WHERE path LIKE '/990000/990100/990102/%'")
            .fetch_one(&t.db.pool)
            .await
            .unwrap()
            .try_get("n")
            .unwrap();
        assert_eq!(n, 15);
    }
}

/// The demo's 数据开放: file datasets of the staffed districts and datasets de-identified
/// from the registries, each k-anonymous, with no name or ID number in them.
mod open_data {
    use openness::Openness;
    use openness::data::{DataSource, DatasetQuery, DownloadFormat, OpenLevel, Reader};
    use services::calendar::WorkingCalendar;
    use testkit::{TestDb, on_both_databases};

    use super::identity_fixture::t0;

    on_both_databases!(demo_departments_open_datasets_de_identified_where_they_hold_people,);

    async fn demo_departments_open_datasets_de_identified_where_they_hold_people(t: TestDb) {
        tongban::demo::seed(&t.identity, &t.console(), t0()).await.unwrap();
        let key = kernel::secrets::MasterKey::from_bytes(t.key);
        let exchange = exchange::Exchange::new(t.db.clone(), t.identity.clone(), &key);
        tongban::demo::seed_registries(&t.identity, &t.console(), &exchange, t0()).await.unwrap();
        let openness = Openness::new(t.db.clone(), t.identity.clone(), exchange.clone(), WorkingCalendar::default());
        let opened = tongban::demo::seed_open_data(&t.identity, &exchange, &openness, t0()).await.unwrap();
        assert_eq!(opened, 18);
        assert_eq!(tongban::demo::seed_open_data(&t.identity, &exchange, &openness, t0()).await.unwrap(), 0, "once");
        let all = openness.catalogue().search(&DatasetQuery { rows: 100, ..DatasetQuery::default() }).await.unwrap();
        assert_eq!(all.total, 18);
        assert_eq!(all.facets.open_level.get("conditional"), Some(&2));
        for d in all.datasets.iter().filter(|d| d.source == DataSource::Registry) {
            assert!(d.k_reached.unwrap() >= 5, "{} reached k {:?}", d.name, d.k_reached);
            assert!(d.row_count > 100, "{}: {} rows", d.name, d.row_count);
            let (_, csv) =
                openness.catalogue().download(&d.name, None, DownloadFormat::Csv, Reader::Anyone, t0()).await.unwrap();
            let text = String::from_utf8(csv).unwrap();
            assert!(!text.contains("居民0"), "{}: no names (居民0000 …)", d.name);
            // The first column is the pseudonym: 16 hex digits where the ID number was.
            for line in text.lines().skip(1) {
                let first = line.split(',').next().unwrap();
                assert!(first.len() == 16 && first.chars().all(|c| c.is_ascii_hexdigit()), "{}: {line}", d.name);
            }
        }
        let conditional = all.datasets.iter().find(|d| d.open_level == OpenLevel::Conditional).unwrap();
        let q = openness::data::RowQuery { limit: 5, ..Default::default() };
        assert!(openness.catalogue().rows(&conditional.name, Reader::Anyone, &q, t0()).await.is_err());
        let demands = openness.data_demands().list(None).await.unwrap();
        assert_eq!(demands.len(), 2);
        assert_eq!(demands.iter().filter(|d| d.answer.is_some()).count(), 1);
    }
}

/// The demo's 政务公开 (openness).
mod disclosure {
    use openness::{DeadlineStatus, DocumentFilter, DocumentKind, Openness, RequestState, Validity};
    use services::calendar::WorkingCalendar;
    use testkit::{TestDb, on_both_databases};

    use super::identity_fixture::t0;

    on_both_databases!(demo_departments_publish_and_answer_requests_in_every_state,);

    async fn demo_departments_publish_and_answer_requests_in_every_state(t: TestDb) {
        tongban::demo::seed(&t.identity, &t.console(), t0()).await.unwrap();
        let openness = Openness::new(
            t.db.clone(),
            t.identity.clone(),
            exchange::Exchange::new(t.db.clone(), t.identity.clone(), &kernel::secrets::MasterKey::from_bytes(t.key)),
            WorkingCalendar::default(),
        );
        let (documents, requests) = tongban::demo::seed_disclosure(&t.identity, &openness, t0()).await.unwrap();
        assert_eq!((documents, requests), (24, 6));
        let all = openness.documents().search(&DocumentFilter::default(), 1, 100).await.unwrap();
        assert_eq!(all.total, 24);
        // Each staffed district's three bureaus published, with interpretations of policies.
        assert_eq!(all.by_department.len(), 6);
        assert_eq!(all.by_kind.get("interpretation"), Some(&4));
        let repealed = DocumentFilter { validity: Some(Validity::Repealed), ..DocumentFilter::default() };
        let repealed = openness.documents().search(&repealed, 1, 10).await.unwrap();
        assert!(repealed.documents.iter().all(|d| d.kind == DocumentKind::Personnel) && repealed.total == 2);
        assert!(all.documents.iter().any(|d| d.version == 2), "one policy is revised");
        let guide = openness.documents().guide("990102-MZ").await.unwrap();
        assert!(guide.guide.is_some_and(|g| g.contains("20 个工作日")));
        // The demo resident's requests: answered, extended, due; the enterprise's waits.
        let citizen = t.identity.sign_in().console_principal("citizen.demo").await.unwrap();
        let mine = openness.requests().mine(&citizen, t0()).await.unwrap();
        assert_eq!(mine.len(), 4);
        assert!(mine.iter().any(|r| r.state == RequestState::Answered));
        assert!(mine.iter().any(|r| r.extension_days > 0));
        let enterprise = t.identity.sign_in().console_principal("enterprise.demo").await.unwrap();
        let theirs = openness.requests().mine(&enterprise, t0()).await.unwrap();
        assert!(theirs.iter().any(|r| r.deadline.status == DeadlineStatus::Paused));
        assert!(theirs.iter().any(|r| r.deadline.status == DeadlineStatus::Overdue));
        // The public ledgers: each staffed district's community and its renovation project.
        let communities = openness.ledgers().subjects(openness::LedgerKind::CommunityFinance).await.unwrap();
        assert_eq!(communities.iter().map(|s| s.records).collect::<Vec<_>>(), [4, 4]);
        let projects = openness.ledgers().subjects(openness::LedgerKind::Transaction).await.unwrap();
        assert_eq!(projects.len(), 2);
        let stages = openness.ledgers().records(openness::LedgerKind::Transaction, &projects[0].code).await.unwrap();
        assert_eq!(
            stages.iter().map(|r| r.period.as_str()).collect::<Vec<_>>(),
            ["tender_notice", "bid_opening", "award", "contract"]
        );
        // Once only.
        assert_eq!(tongban::demo::seed_disclosure(&t.identity, &openness, t0()).await.unwrap(), (0, 0));
    }
}

/// The demo service catalog (services).
mod catalog {
    use services::Error;
    use testkit::{TestDb, on_both_databases};

    use super::hall::*;

    on_both_databases!(demo_catalog_publishes_and_search_finds_services,);

    async fn demo_catalog_publishes_and_search_finds_services(t: TestDb) {
        let console = t.console();
        let h = hall(t).await;
        let (services, bundles) = tongban::demo::publish_catalog(&h.services, &console, t0()).await.unwrap();
        assert!(services >= 30, "{services} demo services");
        assert_eq!(bundles, 2);
        let names =
            |v: Vec<services::catalog::ServiceSummary>| -> Vec<String> { v.into_iter().map(|s| s.name_zh).collect() };
        assert_eq!(names(h.services.search("身份证", 5).await.unwrap()).first().unwrap(), "居民身份证换领");
        assert!(names(h.services.search("csdj", 5).await.unwrap()).contains(&"出生登记".to_string()));
        assert!(
            names(h.services.search("营业执照 个体", 10).await.unwrap()).contains(&"个体工商户设立登记".to_string())
        );
        // Publishing again changes nothing: every service keeps version 1.
        tongban::demo::publish_catalog(&h.services, &console, t0()).await.unwrap();
        assert_eq!(h.services.service("YLMZ0001").await.unwrap().version, 1);
        // A changed service gets a new version; the public sees only that one.
        let manage = console.grant::<kernel::authz::ServiceManage>();
        let mut s = (*h.services.service("YLMZ0001").await.unwrap().spec).clone();
        s.committed_days = 3;
        let published = h.services.publish_service(&manage, None, s, t0()).await.unwrap();
        assert_eq!(published.version, 2);
        assert_eq!(h.services.service("YLMZ0001").await.unwrap().spec.committed_days, 3);
        let births = services::CatalogQuery { event: Some("birth".into()), ..Default::default() };
        assert!(names(h.services.find(&births).await.unwrap()).contains(&"出生登记".to_string()));
        // The catalog's rules hold for every caller: a search text and a filter narrow together,
        // and an overlong text is refused rather than cut.
        let searched =
            services::CatalogQuery { text: "登记".into(), event: Some("birth".into()), ..Default::default() };
        let found = names(h.services.find(&searched).await.unwrap());
        assert!(
            found.contains(&"出生登记".to_string()) && found.iter().all(|n| n != "个体工商户设立登记"),
            "{found:?}"
        );
        let long = services::CatalogQuery { text: "证".repeat(101), ..Default::default() };
        assert!(matches!(h.services.find(&long).await, Err(Error::Invalid { .. })));
    }
}

/// The service tests (crates/services/tests) publish a copy of the built-in workflows, since
/// they cannot depend on the binary crate: the copy is what `tongban::demo` publishes.
#[test]
fn the_service_tests_publish_the_built_in_workflows() {
    assert_eq!(hall::builtin_workflows(), tongban::demo::builtin_workflows());
}
