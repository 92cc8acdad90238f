//! Data quality per registry (completeness per field, validation failures, duplicate
//! candidates, freshness) and sharing figures per department, for data officers and leaders.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::repo;
use super::{Error, Exchange, FREQUENCIES, internal};
use identity::Capability;
use kernel::authz::{ExchangeFigures, InsightRead};
use kernel::db::from_millis;

/// Records scanned for completeness: enough for a stable share, bounded for big registries.
const SAMPLE: i64 = 20_000;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FieldCompleteness {
    pub field: String,
    pub title_zh: String,
    /// Share of scanned records with a value, 0–100.
    pub percent: f64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RegistryQuality {
    pub code: String,
    pub name_zh: String,
    pub department: String,
    pub records: i64,
    /// Records the completeness figures are computed from (the first ones, up to 20,000).
    pub scanned: i64,
    pub completeness: Vec<FieldCompleteness>,
    /// Rows refused by imports.
    pub validation_failures: i64,
    /// Keys held by more than one record.
    pub duplicate_candidates: i64,
    pub last_update: Option<DateTime<Utc>>,
    pub update_frequency: String,
    /// Updated within its declared frequency.
    pub fresh: bool,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DepartmentFigures {
    pub department: String,
    pub resources: i64,
    pub requests_received: i64,
    pub requests_granted: i64,
    /// Median time from request to decision, in hours.
    pub median_decision_hours: Option<f64>,
    pub calls_served: i64,
}

/// What the exchange served for some departments' registries over a period.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Served {
    pub calls: i64,
    /// Requests for access decided in the period.
    pub decided: i64,
    /// Median time from request to decision of those, in hours.
    pub median_decision_hours: Option<f64>,
}

kernel::area! {
    /// Data quality of registries and the departments' sharing figures.
    Quality of Exchange
}

impl Quality<'_> {
    /// Quality figures of every registry.
    pub async fn report(
        &self,
        _cap: &Capability<ExchangeFigures>,
        now: DateTime<Utc>,
    ) -> Result<Vec<RegistryQuality>, Error> {
        let mut c = self.conn().await?;
        let registries = repo::registries(&mut c).await?;
        let mut out = Vec::with_capacity(registries.len());
        for r in registries {
            let compiled = self.registries().compiled_in(&mut c, &r.id, r.version).await?;
            let (records, duplicates, last) = repo::record_stats(&mut c, &r.id).await?;
            let sample = repo::records_after(&mut c, &r.id, 0, SAMPLE).await?;
            let mut filled = vec![0i64; compiled.fields.len()];
            for row in &sample {
                let body: Map<String, Value> = serde_json::from_str(&row.body).map_err(internal)?;
                for (i, f) in compiled.fields.iter().enumerate() {
                    let has = match body.get(&f.name) {
                        None | Some(Value::Null) => false,
                        Some(Value::String(s)) => !s.trim().is_empty(),
                        Some(_) => true,
                    };
                    if has && let Some(n) = filled.get_mut(i) {
                        *n += 1;
                    }
                }
            }
            let scanned = sample.len() as i64;
            let completeness = compiled
                .fields
                .iter()
                .zip(&filled)
                .map(|(f, n)| FieldCompleteness {
                    field: f.name.clone(),
                    title_zh: f.title_zh.clone(),
                    percent: if scanned == 0 { 0.0 } else { (*n as f64) * 100.0 / scanned as f64 },
                })
                .collect();
            let period = FREQUENCIES.iter().find(|(f, _)| *f == r.update_frequency).map(|(_, d)| *d).unwrap_or(366);
            let last_update = last.map(from_millis);
            out.push(RegistryQuality {
                department: super::department_name(&self.inner.identity, &mut c, &r.department_id).await?,
                code: r.code,
                name_zh: r.name_zh,
                records,
                scanned,
                completeness,
                validation_failures: repo::import_rejections(&mut c, &r.id).await?,
                duplicate_candidates: duplicates,
                fresh: last_update.is_some_and(|t| now - t <= Duration::days(period)),
                last_update,
                update_frequency: r.update_frequency,
            });
        }
        Ok(out)
    }

    /// Sharing figures of every department that publishes registries.
    pub async fn department_figures(
        &self,
        _cap: &Capability<ExchangeFigures>,
    ) -> Result<Vec<DepartmentFigures>, Error> {
        // Calls still in the journal are counted too.
        self.inner.db.settle().await.map_err(super::internal)?;
        let mut c = self.conn().await?;
        let rows = repo::department_figures(&mut c).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let department = super::department_name(&self.inner.identity, &mut c, &row.department_id).await?;
            out.push(DepartmentFigures {
                department,
                resources: row.registries,
                requests_received: row.requests,
                requests_granted: row.granted,
                median_decision_hours: median(&row.decision_delays).map(|ms| ms / 3_600_000.0),
                calls_served: row.calls,
            });
        }
        Ok(out)
    }
}

impl Quality<'_> {
    /// What the registries of these departments served on the China days `from..=to`: calls,
    /// and the median time to decide the requests for access decided then.
    pub async fn served(
        &self,
        _cap: &Capability<InsightRead>,
        departments: &[String],
        (from, to): (NaiveDate, NaiveDate),
    ) -> Result<Served, Error> {
        self.inner.db.settle().await.map_err(super::internal)?;
        let start = day_start(from);
        let end = day_start(to.succ_opt().unwrap_or(to));
        let (from, to) = (from.to_string(), to.to_string());
        let mut c = self.conn().await?;
        let mut served = Served::default();
        let mut delays = Vec::new();
        for d in departments {
            let (calls, mut decided) = repo::department_served(&mut c, d, (&from, &to), (start, end)).await?;
            served.calls += calls;
            delays.append(&mut decided);
        }
        delays.sort_unstable();
        served.decided = i64::try_from(delays.len()).unwrap_or(i64::MAX);
        served.median_decision_hours = median(&delays).map(|ms| ms / 3_600_000.0);
        Ok(served)
    }
}

/// The first millisecond of a China day.
fn day_start(day: NaiveDate) -> i64 {
    let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    kernel::db::millis(midnight.and_utc() - chrono::Duration::hours(8))
}

/// The median of values sorted shortest first; none of none.
fn median(sorted: &[i64]) -> Option<f64> {
    let mid = sorted.len() / 2;
    match (sorted.len() % 2, sorted.get(mid)) {
        (_, None) => None,
        (1, Some(m)) => Some(*m as f64),
        (_, Some(m)) => sorted.get(mid - 1).map(|l| (*l + *m) as f64 / 2.0),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn median_of_odd_even_and_none() {
        assert_eq!(super::median(&[]), None);
        assert_eq!(super::median(&[7]), Some(7.0));
        assert_eq!(super::median(&[1, 2, 10]), Some(2.0));
        assert_eq!(super::median(&[1, 2, 4, 10]), Some(3.0));
    }
}
