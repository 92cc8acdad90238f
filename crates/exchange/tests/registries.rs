//! Service tests of registries, each run on SQLite and on PostgreSQL: publishing a registry
//! is checked, records must fit its schema, and bulk import (CSV and XLSX) reports its bad
//! rows, survives an interrupted node and feeds the data-quality report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

// The package is `tongban-exchange`; the code calls it `exchange`, as its dependents do.
extern crate tongban_exchange as exchange;

use exchange::{Error, ImportMode, Table};
use kernel::authz::{ExchangeFigures, RegistryManage};
use serde_json::json;
use testkit::{TestDb, on_both_databases};

mod common;
use common::*;

on_both_databases!(bulk_import_reports_bad_rows, registry_publication_is_checked,);

async fn bulk_import_reports_bad_rows(t: TestDb) {
    let h = hub(t).await;
    let now = t0();
    let p = h.principal("data.ga").await;
    let cap = p.authorize::<RegistryManage>().unwrap();
    // Headers by field name or Chinese title; row 3 has a bad sex code, row 4 a bad date.
    let csv = "\u{feff}公民身份号码,姓名,sex,出生日期,region_code\n\
               530102199001011234,赵一,1,1990-01-01,530102\n\
               530102199001011235,钱二,7,1990-01-01,530102\n\
               530102199001011236,孙三,2,1990-13-01,530102\n\
               530102199001011237,李四,2,1990-02-01,530102\n";
    let table = Table::read(csv.as_bytes().to_vec()).unwrap();
    let none = h
        .exchange
        .imports()
        .import(&cap, "population", "people.csv", table, ImportMode::AllOrNothing, now, &|_, _| {})
        .await
        .unwrap();
    assert_eq!((none.status.as_str(), none.imported, none.rejected), ("failed", 0, 2));
    let rows: Vec<(u64, &str)> = none.errors.iter().map(|e| (e.row, e.column.as_str())).collect();
    assert_eq!(rows, vec![(3, "sex"), (4, "birth_date")]);
    let seen = std::sync::Mutex::new(Vec::new());
    let table = Table::read(csv.as_bytes().to_vec()).unwrap();
    let some = h
        .exchange
        .imports()
        .import(&cap, "population", "people.csv", table, ImportMode::SkipBadRows, now, &|done, total| {
            seen.lock().unwrap().push((done, total))
        })
        .await
        .unwrap();
    assert_eq!((some.status.as_str(), some.imported, some.rejected, some.total_rows), ("done", 2, 2, 4));
    assert_eq!(seen.lock().unwrap().last(), Some(&(4, 4)));
    let status = h.exchange.imports().import_status(&cap, &some.id).await.unwrap();
    assert_eq!((status.status.as_str(), status.imported, status.percent()), ("done", 2, 100));
    // An import whose node stopped before it finished reads as interrupted; row errors that
    // do not read are a fault, not an empty list.
    let alter = |sql: &'static str| {
        let (pool, id) = (h.t.db.pool.clone(), some.id.clone());
        async move { sqlx::query(sql).bind(id).execute(&pool).await.unwrap() }
    };
    alter("UPDATE registry_imports SET status = 'running', finished_at = NULL WHERE id = $1").await;
    let stopped = h.exchange.imports().import_status(&cap, &some.id).await.unwrap();
    assert_eq!(stopped.status, exchange::ImportStatus::Interrupted);
    alter("UPDATE registry_imports SET errors = 'not a list' WHERE id = $1").await;
    let unreadable = h.exchange.imports().import_status(&cap, &some.id).await;
    assert!(matches!(unreadable, Err(Error::Internal(_))), "{unreadable:?}");
    let found = h.exchange.registries().records_by_key(&cap, "population", "530102199001011237", now).await.unwrap();
    assert_eq!(found[0].values["name"], json!("李四"));
    // Unknown columns are refused before anything is read; so is another department.
    let table = Table::read(b"id_number,shoe_size\n1,2\n".to_vec()).unwrap();
    let e = h
        .exchange
        .imports()
        .import(&cap, "population", "x.csv", table, ImportMode::SkipBadRows, now, &|_, _| {})
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Invalid { field: "file", .. }), "{e:?}");
    let mz = h.principal("data.mz").await;
    let table = Table::read(csv.as_bytes().to_vec()).unwrap();
    let e = h
        .exchange
        .imports()
        .import(
            &mz.authorize::<RegistryManage>().unwrap(),
            "population",
            "x.csv",
            table,
            ImportMode::SkipBadRows,
            now,
            &|_, _| {},
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Denied(_)), "{e:?}");
    // Quality: the rejected rows and the records are counted.
    let q = h.exchange.quality().report(&p.authorize::<ExchangeFigures>().unwrap(), now).await.unwrap();
    let pop = q.iter().find(|r| r.code == "population").unwrap();
    assert_eq!((pop.records, pop.validation_failures, pop.duplicate_candidates), (4, 4, 0));
    assert!(pop.fresh);
    let mobile = pop.completeness.iter().find(|f| f.field == "mobile").unwrap();
    assert!((mobile.percent - 25.0).abs() < 0.01, "{}", mobile.percent);
    // An XLSX workbook (its first sheet): numeric cells become text where the schema says
    // text; the bad sex code of row 3 is reported.
    let table = Table::read(include_bytes!("fixtures/people.xlsx").to_vec()).unwrap();
    let xlsx = h
        .exchange
        .imports()
        .import(&cap, "population", "people.xlsx", table, ImportMode::SkipBadRows, now, &|_, _| {})
        .await
        .unwrap();
    assert_eq!((xlsx.status.as_str(), xlsx.imported, xlsx.rejected), ("done", 1, 1));
    assert_eq!(xlsx.errors.iter().map(|e| (e.row, e.column.as_str())).collect::<Vec<_>>(), vec![(3, "sex")]);
    let found = h.exchange.registries().records_by_key(&cap, "population", "530102199001011240", now).await.unwrap();
    assert_eq!(
        (found[0].values["name"].clone(), found[0].values["region_code"].clone()),
        (json!("周五"), json!("530102"))
    );
}

async fn registry_publication_is_checked(t: TestDb) {
    let h = hub(t).await;
    let p = h.principal("data.mz").await;
    let cap = p.authorize::<RegistryManage>().unwrap();
    let mut spec = registry_specs().unwrap().remove(0);
    // The civil-affairs officer cannot publish the public-security registry.
    let e = h.exchange.registries().publish_registry(&cap, spec.clone(), t0()).await.unwrap_err();
    assert!(matches!(e, Error::Denied(_)), "{e:?}");
    spec.department = "990000-MZ".into();
    spec.code = "population_copy".into();
    spec.fields.retain(|f| f.name != "mobile");
    let e = h.exchange.registries().publish_registry(&cap, spec.clone(), t0()).await.unwrap_err();
    assert!(matches!(e, Error::Invalid { field: "fields", .. }), "{e:?}");
    // A record that does not fit its schema is refused with the field.
    let ga = h.principal("data.ga").await;
    let e = h
        .exchange
        .registries()
        .put_record(&ga.authorize::<RegistryManage>().unwrap(), "population", None, json!({"id_number": "x"}), t0())
        .await
        .unwrap_err();
    let Error::Record(rows) = e else { panic!("{e:?}") };
    assert!(rows.iter().any(|r| r.column == "id_number"));
    assert!(rows.iter().any(|r| r.column == "name"));
}
