//! A department's data officers open datasets: from a file checked against declared
//! columns, or from a registry de-identified by rules and held to k-anonymity. Every
//! version's rows are kept and its CSV's SHA-256 is an entry on the `public` ledger.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use sqlx::AnyConnection;

use super::deidentify::{self, Anonymity, ColumnRule, DEFAULT_K, Groups, SourceField};
use super::files::{self, FileReport};
use super::repo::{self, DatasetRow, VersionRow};
use super::{Column, DataSource, Dataset, Frequency, Licence, OpenLevel};
use crate::{Error, Openness, Theme, china_day, conflict, internal, text_between};
use identity::{Capability, PlacedDepartment};
use kernel::audit::{Action, Outcome};
use kernel::authz::{OpenDataPublish, RegistryManage};
use kernel::db::millis;
use kernel::error::ErrorCode;

kernel::area! {
    /// A department's data officers open datasets and refresh them.
    DataPublishing of Openness
}

/// Rows written per statement batch.
const WRITE_BATCH: usize = 5_000;
/// Sample rows a de-identification preview shows.
const SAMPLE_ROWS: usize = 10;

/// What describes a dataset, whatever its source.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct DatasetSpec {
    /// Lower-case letters, digits, - and _ (2–100): the dataset's name in URLs.
    pub name: String,
    pub title: String,
    pub description: String,
    /// The publishing department's code: the officer's own.
    pub department: String,
    pub theme: Theme,
    pub open_level: OpenLevel,
    pub frequency: Frequency,
    pub licence: Licence,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A registry dataset's source: the registry, the rules, the k required, and whether rows
/// of combinations below k are left out rather than refusing publication.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct RegistrySource {
    pub registry: String,
    pub rules: Vec<ColumnRule>,
    /// At least 2; 5 when not given.
    #[serde(default)]
    pub k: Option<u32>,
    #[serde(default)]
    pub leave_out_small_groups: bool,
}

impl RegistrySource {
    fn k(&self) -> Result<u32, Error> {
        match self.k {
            None => Ok(DEFAULT_K),
            Some(k) if (2..=1000).contains(&k) => Ok(k),
            Some(_) => Err(Error::invalid("k", "from 2 to 1000")),
        }
    }
}

/// What a registry dataset would publish: the rows, the rows left out, how the
/// quasi-identifiers stand, and the first rows as they would read.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Deidentification {
    pub rows: u64,
    pub rows_left_out: u64,
    pub anonymity: Anonymity,
    pub columns: Vec<Column>,
    #[schema(value_type = Vec<Object>)]
    pub sample: Vec<Map<String, Value>>,
}

impl Deidentification {
    pub fn publishable(&self) -> bool {
        self.anonymity.failing_combinations == 0 && self.rows > 0
    }
}

/// The rows a registry release made, as stored (JSON objects), with the report.
struct Extract {
    rows: Vec<String>,
    report: Deidentification,
}

impl DatasetSpec {
    fn checked(&self) -> Result<DatasetSpec, Error> {
        let name = self.name.trim().to_string();
        let name_ok = (2..=100).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !name_ok {
            return Err(Error::invalid("name", "2–100 lower-case letters, digits, - and _"));
        }
        if self.tags.len() > 20 {
            return Err(Error::invalid("tags", "at most 20 keywords"));
        }
        let mut tags = Vec::with_capacity(self.tags.len());
        for t in &self.tags {
            let t = text_between("tags", t, 1, 30)?;
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
        Ok(DatasetSpec {
            name,
            title: text_between("title", &self.title, 2, 200)?,
            description: text_between("description", &self.description, 2, 4_000)?,
            department: self.department.trim().to_string(),
            tags,
            ..self.clone()
        })
    }
}

/// Writes rows as the CSV a download serves: a header of column names, then one line per
/// row. Its SHA-256 is what the ledger carries, so the downloaded bytes can be checked.
pub(super) struct CsvEncoder {
    writer: csv::Writer<Vec<u8>>,
}

fn csv_writer() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new())
}

impl CsvEncoder {
    pub(super) fn new(columns: &[Column]) -> Result<CsvEncoder, Error> {
        let mut writer = csv_writer();
        writer.write_record(columns.iter().map(|c| c.name.as_str())).map_err(internal)?;
        Ok(CsvEncoder { writer })
    }

    pub(super) fn row(&mut self, columns: &[Column], row: &Map<String, Value>) -> Result<(), Error> {
        self.writer.write_record(columns.iter().map(|c| deidentify::display(row.get(&c.name)))).map_err(internal)
    }

    /// The bytes written so far, taken out.
    pub(super) fn take(&mut self) -> Result<Vec<u8>, Error> {
        let writer = std::mem::replace(&mut self.writer, csv_writer());
        writer.into_inner().map_err(internal)
    }
}

/// The public ledger's record of a dataset version.
#[derive(Serialize)]
struct LedgerDetail<'a> {
    name: &'a str,
    version: i64,
    rows: i64,
    sha256: &'a str,
}

impl DataPublishing<'_> {
    /// Reads a file against columns and reports every row that does not fit; nothing is
    /// written.
    pub async fn check_file(
        &self,
        _cap: &Capability<OpenDataPublish>,
        columns: &[Column],
        bytes: Vec<u8>,
    ) -> Result<FileReport, Error> {
        files::check_columns(columns)?;
        let columns = columns.to_vec();
        let file = tokio_blocking(move || files::read(bytes, &columns)).await?;
        Ok(file.report)
    }

    /// Opens a dataset from a file. Any row that does not fit its column refuses the whole
    /// file (`rows_rejected`, naming the first rows): a dataset is published complete.
    pub async fn publish_file(
        &self,
        cap: &Capability<OpenDataPublish>,
        spec: &DatasetSpec,
        columns: Vec<Column>,
        bytes: Vec<u8>,
        now: DateTime<Utc>,
    ) -> Result<Dataset, Error> {
        let spec = spec.checked()?;
        files::check_columns(&columns)?;
        let department = self.department(cap, &spec.department).await?;
        self.name_free(&spec.name).await?;
        let rows = self.file_rows(&columns, bytes).await?;
        let row = new_row(&spec, &department, DataSource::File, &columns, None, now)?;
        self.write_version(cap.account_id(), row, &columns, rows, None, now).await
    }

    /// A new version of a file dataset, with the same columns. `read_version` is the version
    /// the officer replaced: if another officer published one since, nothing is written.
    pub async fn replace_file(
        &self,
        cap: &Capability<OpenDataPublish>,
        name: &str,
        read_version: i64,
        bytes: Vec<u8>,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<Dataset, Error> {
        let note = text_between("note", note, 2, 500)?;
        let mut c = self.conn().await?;
        let mut row = repo::dataset(&mut c, name).await?.ok_or(Error::NotFound("dataset"))?;
        drop(c);
        cap.check_department(&row.department_id)?;
        if row.source != DataSource::File {
            return Err(Error::invalid("name", "a registry dataset is refreshed from its registry"));
        }
        if row.version != read_version {
            return Err(conflict(ErrorCode::RecordChanged, "a newer version was published since you opened it"));
        }
        let columns: Vec<Column> = serde_json::from_str(&row.columns).map_err(internal)?;
        let rows = self.file_rows(&columns, bytes).await?;
        row.version += 1;
        self.write_version(cap.account_id(), row, &columns, rows, Some(note), now).await
    }

    async fn file_rows(&self, columns: &[Column], bytes: Vec<u8>) -> Result<Vec<String>, Error> {
        let owned = columns.to_vec();
        let file = tokio_blocking(move || files::read(bytes, &owned)).await?;
        if !file.report.accepted() {
            let first: Vec<String> = file
                .report
                .problems
                .iter()
                .take(3)
                .map(|p| format!("row {} {}: {}", p.row, p.column, p.reason))
                .collect();
            let reason = if file.report.rows == 0 {
                "the file has no rows".to_string()
            } else {
                format!(
                    "{} of {} rows do not fit the columns: {}",
                    file.report.rows_refused,
                    file.report.rows,
                    first.join("; ")
                )
            };
            return Err(Error::Rejected { code: ErrorCode::RowsRejected, reason });
        }
        file.rows.iter().map(|r| serde_json::to_string(r).map_err(internal)).collect()
    }

    /// What a registry dataset would publish under `source`: nothing is written. The
    /// release is audited, as every read of a registry is.
    pub async fn preview_registry(
        &self,
        cap: &Capability<OpenDataPublish>,
        manage: &Capability<RegistryManage>,
        name: &str,
        source: &RegistrySource,
        now: DateTime<Utc>,
    ) -> Result<Deidentification, Error> {
        let _ = cap;
        Ok(self.extract(manage, name, source, now).await?.report)
    }

    /// Opens a dataset from a registry, de-identified by `source`'s rules. Refused
    /// (`k_anonymity_not_met`, naming the combinations) when a combination of
    /// quasi-identifiers is shared by fewer than k rows, unless the source leaves such rows
    /// out.
    pub async fn publish_registry(
        &self,
        cap: &Capability<OpenDataPublish>,
        manage: &Capability<RegistryManage>,
        spec: &DatasetSpec,
        source: &RegistrySource,
        now: DateTime<Utc>,
    ) -> Result<Dataset, Error> {
        let spec = spec.checked()?;
        let department = self.department(cap, &spec.department).await?;
        self.name_free(&spec.name).await?;
        let extract = self.extract(manage, &spec.name, source, now).await?;
        refuse_unless_anonymous(&extract.report)?;
        let mut row = new_row(&spec, &department, DataSource::Registry, &extract.report.columns, Some(source), now)?;
        row.k_reached = Some(i64::try_from(extract.report.anonymity.k_reached).map_err(internal)?);
        self.write_version(cap.account_id(), row, &extract.report.columns, extract.rows, None, now).await
    }

    /// Refreshes the registry datasets whose time has come: a new version when the rows
    /// changed, else only the next date. A dataset whose refresh fails (its rows no longer
    /// k-anonymous, a rule that no longer fits) keeps its version and is tried again at the
    /// next period; the failure is logged. Returns the datasets given a new version.
    pub async fn refresh_due(&self, manage: &Capability<RegistryManage>, now: DateTime<Utc>) -> Result<usize, Error> {
        let mut c = self.conn().await?;
        let due = repo::refresh_due(&mut c, millis(now)).await?;
        drop(c);
        let mut refreshed = 0;
        for row in due {
            let next = row.frequency.period().map(|p| millis(now + p));
            match self.refresh(manage, row.clone(), now).await {
                Ok(true) => refreshed += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!(dataset = %row.name, error = %e, "open dataset refresh failed"),
            }
            let mut c = self.conn().await?;
            repo::set_refresh_due(&mut c, &row.id, next).await?;
        }
        Ok(refreshed)
    }

    async fn refresh(
        &self,
        manage: &Capability<RegistryManage>,
        mut row: DatasetRow,
        now: DateTime<Utc>,
    ) -> Result<bool, Error> {
        let stored: StoredRules =
            serde_json::from_str(row.rules.as_deref().ok_or_else(|| internal("a registry dataset without rules"))?)
                .map_err(internal)?;
        let source = RegistrySource {
            registry: row.registry_code.clone().ok_or_else(|| internal("a registry dataset without its registry"))?,
            rules: stored.rules,
            k: row.k_required.map(u32::try_from).transpose().map_err(internal)?,
            leave_out_small_groups: stored.leave_out_small_groups,
        };
        let extract = self.extract(manage, &row.name, &source, now).await?;
        refuse_unless_anonymous(&extract.report)?;
        let mut c = self.conn().await?;
        let current = repo::versions(&mut c, &row.id).await?;
        drop(c);
        let sha256 = csv_sha256(&extract.report.columns, &extract.rows)?;
        if current.first().is_some_and(|v| v.sha256 == sha256) {
            return Ok(false);
        }
        row.version += 1;
        row.k_reached = Some(i64::try_from(extract.report.anonymity.k_reached).map_err(internal)?);
        self.write_version("", row, &extract.report.columns, extract.rows, Some("按更新频率自动更新".into()), now)
            .await?;
        Ok(true)
    }

    async fn extract(
        &self,
        manage: &Capability<RegistryManage>,
        name: &str,
        source: &RegistrySource,
        now: DateTime<Utc>,
    ) -> Result<Extract, Error> {
        let k = source.k()?;
        let registries = self.inner.exchange.registries().registries_to_manage(manage).await.map_err(exchange_error)?;
        let registry = registries
            .iter()
            .find(|r| r.code == source.registry.trim())
            .ok_or_else(|| Error::invalid("registry", "no registry of your department has this code"))?;
        let fields: Vec<SourceField> = registry
            .fields
            .iter()
            .map(|f| SourceField {
                name: f.name.clone(),
                direct_identifier: f.name == registry.key_field
                    || matches!(f.mask.as_deref(), Some("id_number" | "mobile" | "name" | "address")),
                sensitive: f.sensitive || f.classification >= 3,
            })
            .collect();
        deidentify::check_rules(&source.rules, &fields)?;
        let (pseudonymised, opened): (Vec<&ColumnRule>, Vec<&ColumnRule>) =
            source.rules.iter().partition(|r| r.rule == deidentify::FieldRule::Pseudonym);
        let pseudonymised: Vec<String> = pseudonymised.into_iter().map(|r| r.field.clone()).collect();
        let opened: Vec<String> = opened.into_iter().map(|r| r.field.clone()).collect();
        let domain = format!("open_data:{name}");
        let release = exchange::Release {
            registry: &registry.code,
            fields: &opened,
            pseudonymised: &pseudonymised,
            pseudonym_domain: &domain,
        };
        let today = china_day(now);
        let mut groups = Groups::default();
        let mut rows: Vec<(u32, String)> = Vec::new();
        let mut failure: Option<Error> = None;
        let rules = &source.rules;
        self.inner
            .exchange
            .registries()
            .release(manage, &release, now, |record| {
                match deidentify::apply(rules, &record, today).and_then(|row| {
                    let n = groups.add(Groups::key(rules, &row))?;
                    Ok((n, serde_json::to_string(&row).map_err(internal)?))
                }) {
                    Ok(r) => rows.push(r),
                    Err(e) => {
                        failure.get_or_insert(e);
                    }
                }
                Ok(())
            })
            .await
            .map_err(exchange_error)?;
        if let Some(e) = failure {
            return Err(e);
        }
        let total = groups.rows();
        let (kept_groups, kept) = if source.leave_out_small_groups {
            let kept_groups = groups.without_small(k);
            let kept: Vec<String> =
                rows.into_iter().filter(|(n, _)| groups.count(*n) >= u64::from(k)).map(|(_, r)| r).collect();
            (kept_groups, kept)
        } else {
            (groups, rows.into_iter().map(|(_, r)| r).collect())
        };
        let anonymity = kept_groups.anonymity(rules, k);
        let sample = kept
            .iter()
            .take(SAMPLE_ROWS)
            .map(|r| serde_json::from_str(r).map_err(internal))
            .collect::<Result<Vec<Map<String, Value>>, Error>>()?;
        let report = Deidentification {
            rows: kept.len() as u64,
            rows_left_out: total - kept.len() as u64,
            anonymity,
            columns: rules.iter().map(ColumnRule::column).collect(),
            sample,
        };
        Ok(Extract { rows: kept, report })
    }

    /// Writes a version: its rows, the SHA-256 of its CSV on the `public` ledger, and the
    /// dataset's new figures, in one transaction. `by` is empty for the schedule.
    async fn write_version(
        &self,
        by: &str,
        mut row: DatasetRow,
        columns: &[Column],
        rows: Vec<String>,
        note: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Dataset, Error> {
        let sha256 = csv_sha256(columns, &rows)?;
        row.row_count = i64::try_from(rows.len()).map_err(internal)?;
        row.updated_at = millis(now);
        row.refresh_due_at = match row.source {
            DataSource::Registry => row.frequency.period().map(|p| millis(now + p)),
            DataSource::File => None,
        };
        let mut tx = self.inner.db.begin().await?;
        if row.version == 1 {
            repo::insert_dataset(&mut tx, &row).await?;
        } else if !repo::advance_dataset(&mut tx, &row, row.version - 1).await? {
            return Err(conflict(ErrorCode::RecordChanged, "a newer version was published meanwhile"));
        }
        let mut n = 0i64;
        for chunk in rows.chunks(WRITE_BATCH) {
            let numbered: Vec<(i64, String)> = chunk
                .iter()
                .map(|r| {
                    n += 1;
                    (n - 1, r.clone())
                })
                .collect();
            repo::insert_rows(&mut tx, &row.id, row.version, &numbered).await?;
        }
        let ledger_index = self.record(&mut tx, by, &row, &sha256, now).await?;
        let version = VersionRow {
            dataset_id: row.id.clone(),
            version: row.version,
            row_count: row.row_count,
            k_reached: row.k_reached,
            sha256,
            ledger_index,
            note,
            published_by: Some(by.to_string()).filter(|b| !b.is_empty()),
            published_at: millis(now),
        };
        repo::insert_version(&mut tx, &version).await?;
        tx.commit().await?;
        self.catalogue().dataset(&row.id).await
    }

    async fn record(
        &self,
        tx: &mut AnyConnection,
        by: &str,
        row: &DatasetRow,
        sha256: &str,
        now: DateTime<Utc>,
    ) -> Result<i64, Error> {
        let detail = LedgerDetail { name: &row.name, version: row.version, rows: row.row_count, sha256 };
        let mut entry = ledger::Entry::new(Action::OpenDatasetPublished, Outcome::Success, now);
        entry.actor = Some(by.to_string()).filter(|b| !b.is_empty());
        entry.object = Some(row.id.clone());
        entry.jurisdiction = Some(row.region_path.clone());
        entry.detail = Some(serde_json::to_string(&detail).map_err(internal)?);
        let index = ledger::append_in(tx, ledger::Log::Public, &entry).await?;
        i64::try_from(index).map_err(internal)
    }

    async fn department(&self, cap: &Capability<OpenDataPublish>, code: &str) -> Result<PlacedDepartment, Error> {
        self.department_for(cap, code).await
    }

    async fn name_free(&self, name: &str) -> Result<(), Error> {
        let mut c = self.conn().await?;
        match repo::dataset(&mut c, name).await? {
            Some(_) => Err(conflict(ErrorCode::DatasetNameTaken, "another dataset has this name")),
            None => Ok(()),
        }
    }
}

/// A registry dataset's rules as stored with it, for its refreshes.
#[derive(Serialize, Deserialize)]
pub(super) struct StoredRules {
    pub rules: Vec<ColumnRule>,
    pub leave_out_small_groups: bool,
}

fn refuse_unless_anonymous(report: &Deidentification) -> Result<(), Error> {
    if report.rows == 0 {
        return Err(Error::invalid("registry", "no rows to publish"));
    }
    if report.publishable() {
        return Ok(());
    }
    let named: Vec<String> = report
        .anonymity
        .failing
        .iter()
        .take(5)
        .map(|c| {
            let values: Vec<String> = c.values.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{} ({} rows)", values.join(", "), c.rows)
        })
        .collect();
    Err(Error::Rejected {
        code: ErrorCode::KAnonymityNotMet,
        reason: format!(
            "{} combinations of {} hold fewer than {} rows: {}",
            report.anonymity.failing_combinations,
            report.anonymity.quasi_identifiers.join(", "),
            report.anonymity.k_required,
            named.join("; ")
        ),
    })
}

fn new_row(
    spec: &DatasetSpec,
    department: &PlacedDepartment,
    source: DataSource,
    columns: &[Column],
    registry: Option<&RegistrySource>,
    now: DateTime<Utc>,
) -> Result<DatasetRow, Error> {
    let (registry_code, rules, k_required) = match registry {
        None => (None, None, None),
        Some(r) => {
            let stored = StoredRules { rules: r.rules.clone(), leave_out_small_groups: r.leave_out_small_groups };
            (
                Some(r.registry.trim().to_string()),
                Some(serde_json::to_string(&stored).map_err(internal)?),
                Some(i64::from(r.k()?)),
            )
        }
    };
    Ok(DatasetRow {
        id: kernel::db::new_id(),
        name: spec.name.clone(),
        title: spec.title.clone(),
        description: spec.description.clone(),
        department_id: department.department.id.clone(),
        region_path: department.region_path.clone(),
        theme: spec.theme,
        open_level: spec.open_level,
        frequency: spec.frequency,
        licence: spec.licence,
        tags: serde_json::to_string(&spec.tags).map_err(internal)?,
        source,
        columns: serde_json::to_string(columns).map_err(internal)?,
        registry_code,
        rules,
        k_required,
        version: 1,
        row_count: 0,
        k_reached: None,
        published_at: millis(now),
        updated_at: millis(now),
        refresh_due_at: None,
    })
}

/// The SHA-256 (hex) of rows' CSV as a download serves it.
pub(super) fn csv_sha256(columns: &[Column], rows: &[String]) -> Result<String, Error> {
    let mut hasher = Sha256::new();
    let mut csv = CsvEncoder::new(columns)?;
    for (i, r) in rows.iter().enumerate() {
        let row: Map<String, Value> = serde_json::from_str(r).map_err(internal)?;
        csv.row(columns, &row)?;
        if i % 1024 == 0 {
            hasher.update(csv.take()?);
        }
    }
    hasher.update(csv.take()?);
    Ok(hex::encode(hasher.finalize()))
}

fn exchange_error(e: exchange::Error) -> Error {
    match e {
        exchange::Error::NotFound(what) => Error::NotFound(what),
        exchange::Error::Denied(d) => Error::Denied(d),
        exchange::Error::Invalid { field, reason } => Error::Invalid { field, reason },
        exchange::Error::Storage(s) => Error::Storage(s),
        other => Error::Internal(other.to_string()),
    }
}

/// Runs file parsing off the async threads: a 200,000-row file takes a while.
async fn tokio_blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, Error> + Send + 'static) -> Result<T, Error> {
    tokio::task::spawn_blocking(f).await.map_err(internal)?
}
