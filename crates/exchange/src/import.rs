//! Bulk import of registry records from CSV or XLSX: rows become typed records by the
//! registry's schema, are validated and sealed on a worker thread while the previous batch
//! is written, and every rejected row is reported with its row, column and reason.

use std::collections::HashMap;
use std::io::Cursor;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::repo::{self, RecordRow, RegistryRow};
use super::{Compiled, Error, Exchange, internal, lock};
use identity::Capability;
use kernel::audit::{Action, Outcome};
use kernel::authz::RegistryManage;
use kernel::db::{from_millis, millis, new_id};
use ledger::{self, Log};
use protect::Sealer;

/// Rows per transaction (skip-bad-rows) and per batch handed from the worker thread.
const BATCH: usize = 20_000;
/// Errors kept in a report; the count of rejected rows is always exact.
const MAX_REPORTED: usize = 1_000;

/// What to do with rows that do not validate.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, strum::IntoStaticStr, strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ImportMode {
    /// One bad row and nothing is imported.
    AllOrNothing,
    /// Good rows are imported, bad rows reported.
    SkipBadRows,
}

impl ImportMode {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Where an import stands. Rows store all but `Interrupted`, which a running import becomes
/// when the node that ran it stopped before it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema, strum::IntoStaticStr, strum::EnumString)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ImportStatus {
    Running,
    /// Finished: the good rows are in (every row, when all-or-nothing).
    Done,
    /// Nothing was imported: a bad row under all-or-nothing, or the import itself failed.
    Failed,
    Interrupted,
}

impl ImportStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn is_running(self) -> bool {
        self == ImportStatus::Running
    }
}

/// A stored value of a vocabulary the table's writers alone produce: anything else is said
/// as a fault, never read as some value.
fn stored<T: std::str::FromStr>(what: &str, value: &str) -> Result<T, Error> {
    value.parse().map_err(|_| Error::Internal(format!("an import holds the unknown {what} {value:?}")))
}

/// Why a row (as numbered in the file, the header being row 1) was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RowError {
    pub row: u64,
    pub column: String,
    pub reason: String,
}

/// An import as it stands: while it runs (from this node's memory) or when it is done.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImportProgress {
    pub id: String,
    pub registry: String,
    pub file_name: String,
    pub mode: ImportMode,
    pub status: ImportStatus,
    /// Rows in the file, once known.
    pub total_rows: u64,
    pub done_rows: u64,
    pub imported: u64,
    pub rejected: u64,
    pub errors: Vec<RowError>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl ImportProgress {
    pub fn percent(&self) -> u64 {
        match (self.done_rows * 100).checked_div(self.total_rows) {
            Some(p) => p.min(100),
            None if self.status.is_running() => 0,
            None => 100,
        }
    }
}

/// The outcome of an import.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    pub id: String,
    pub total_rows: u64,
    pub imported: u64,
    pub rejected: u64,
    /// The first rejected rows (up to 1,000).
    pub errors: Vec<RowError>,
    /// Done, or failed (all-or-nothing with bad rows: nothing was imported).
    pub status: ImportStatus,
}

/// A table read from a file: header cells and rows of cells.
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Box<dyn Iterator<Item = Result<Vec<String>, String>> + Send>,
    /// The number of data rows, when the format tells it up front.
    pub rows_hint: Option<u64>,
}

impl Table {
    /// Reads CSV (UTF-8, with or without a BOM) or XLSX (the first sheet), by content: an
    /// XLSX file is a ZIP archive.
    pub fn read(bytes: Vec<u8>) -> Result<Table, Error> {
        if bytes.starts_with(b"PK\x03\x04") { Self::xlsx(bytes) } else { Self::csv(bytes) }
    }

    fn csv(bytes: Vec<u8>) -> Result<Table, Error> {
        let body = match bytes.strip_prefix("\u{feff}".as_bytes()) {
            Some(rest) => rest.to_vec(),
            None => bytes,
        };
        let rows_hint = Some(bytecount_lines(&body).saturating_sub(1));
        let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(Cursor::new(body));
        let headers = reader
            .headers()
            .map_err(|e| Error::invalid("file", format!("the header row cannot be read: {e}")))?
            .iter()
            .map(|h| h.trim().to_string())
            .collect();
        let rows = reader.into_records().map(|r| match r {
            Ok(rec) => Ok(rec.iter().map(str::to_string).collect()),
            Err(e) => Err(format!("not CSV: {e}")),
        });
        Ok(Table { headers, rows: Box::new(rows), rows_hint })
    }

    fn xlsx(bytes: Vec<u8>) -> Result<Table, Error> {
        use calamine::Reader;
        let mut book = calamine::open_workbook_auto_from_rs(Cursor::new(bytes))
            .map_err(|e| Error::invalid("file", format!("not a readable XLSX file: {e}")))?;
        let range = book
            .worksheet_range_at(0)
            .ok_or_else(|| Error::invalid("file", "the workbook has no sheet"))?
            .map_err(|e| Error::invalid("file", format!("the first sheet cannot be read: {e}")))?;
        let mut all = range.rows().map(|r| r.iter().map(|c| c.to_string()).collect::<Vec<String>>());
        let headers: Vec<String> = all.next().unwrap_or_default().into_iter().map(|h| h.trim().to_string()).collect();
        let rows: Vec<Result<Vec<String>, String>> = all.map(Ok).collect();
        let rows_hint = Some(rows.len() as u64);
        Ok(Table { headers, rows: Box::new(rows.into_iter()), rows_hint })
    }
}

fn bytecount_lines(b: &[u8]) -> u64 {
    let n = b.iter().filter(|&&c| c == b'\n').count() as u64;
    if b.last().is_some_and(|&c| c != b'\n') { n + 1 } else { n }
}

/// A column of the file: the field it fills and the field's JSON type, or nothing.
type Column = Option<(String, &'static str)>;

/// Turns the cells of a row into a record by the schema's property types. Empty cells are
/// left out.
fn typed_record(columns: &[Column], cells: Vec<String>, row: u64) -> Result<Value, Vec<RowError>> {
    let mut out = Map::new();
    let mut errors = Vec::new();
    for (cell, column) in cells.into_iter().zip(columns) {
        let Some((name, kind)) = column else { continue };
        let text = cell.trim();
        if text.is_empty() {
            continue;
        }
        let value = match *kind {
            "integer" => text.parse::<i64>().map(Value::from).map_err(|_| "a whole number"),
            "number" => {
                text.parse::<f64>().ok().and_then(serde_json::Number::from_f64).map(Value::Number).ok_or("a number")
            }
            "boolean" => match text {
                "true" | "TRUE" | "1" | "是" => Ok(Value::Bool(true)),
                "false" | "FALSE" | "0" | "否" => Ok(Value::Bool(false)),
                _ => Err("true/false (是/否)"),
            },
            _ => Ok(Value::String(text.to_string())),
        };
        match value {
            Ok(v) => {
                out.insert(name.clone(), v);
            }
            Err(expected) => {
                errors.push(RowError { row, column: name.clone(), reason: format!("{text:?} is not {expected}") })
            }
        }
    }
    if errors.is_empty() { Ok(Value::Object(out)) } else { Err(errors) }
}

/// An import whose registry, key and record of progress are set up.
struct StartedImport {
    id: String,
    file_name: String,
    registry: RegistryRow,
    compiled: Arc<Compiled>,
    sealer: Arc<Sealer>,
    /// When it started, to date its end as `now` plus the time it took (the clock is a
    /// parameter of domain code, read once by the caller).
    began: std::time::Instant,
}

/// One batch from the worker thread: sealed rows and refused rows.
struct Batch {
    rows: Vec<RecordRow>,
    errors: Vec<RowError>,
    read: u64,
}

kernel::area! {
    /// Bulk imports of CSV and XLSX files into a registry, with progress and a per-row report.
    Imports of Exchange
}

impl Imports<'_> {
    /// Imports a table into a registry. Progress is visible through [`Exchange::import_status`]
    /// while it runs; the outcome is stored and on the `audit` ledger. `on_progress` is told
    /// (rows done, rows in the file) after each batch (the CLI draws its bar with it).
    #[allow(clippy::too_many_arguments)]
    pub async fn import(
        &self,
        cap: &Capability<RegistryManage>,
        code: &str,
        file_name: &str,
        table: Table,
        mode: ImportMode,
        now: DateTime<Utc>,
        on_progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<ImportReport, Error> {
        let started = self.prepare_import(cap, code, file_name, table.rows_hint, mode, now).await?;
        self.finish_import(started, cap.account_id(), table, mode, now, on_progress).await
    }

    /// Starts an import that runs on after the call returns (the web and API answer at once
    /// and show progress); returns its id.
    pub async fn start_import(
        &self,
        cap: Capability<RegistryManage>,
        code: &str,
        file_name: &str,
        table: Table,
        mode: ImportMode,
        now: DateTime<Utc>,
    ) -> Result<String, Error> {
        let started = self.prepare_import(&cap, code, file_name, table.rows_hint, mode, now).await?;
        let id = started.id.clone();
        let exchange = self.0.clone();
        tokio::spawn(async move {
            let account = cap.account_id().to_string();
            if let Err(e) = exchange.imports().finish_import(started, &account, table, mode, now, &|_, _| {}).await {
                tracing::error!(error = %e, "registry import failed");
            }
        });
        Ok(id)
    }

    async fn prepare_import(
        &self,
        cap: &Capability<RegistryManage>,
        code: &str,
        file_name: &str,
        rows_hint: Option<u64>,
        mode: ImportMode,
        now: DateTime<Utc>,
    ) -> Result<StartedImport, Error> {
        let id = new_id();
        let mut c = self.conn().await?;
        let (registry, compiled) = self.registries().registry_in(&mut c, code).await?;
        cap.check_department(&registry.department_id)?;
        let sealer = self.inner.protector.sealer_in(&mut c).await?;
        repo::insert_import(&mut c, &id, &registry.id, file_name, mode.as_str(), cap.account_id(), millis(now)).await?;
        let progress = ImportProgress {
            id: id.clone(),
            registry: registry.code.clone(),
            file_name: file_name.to_string(),
            mode,
            status: ImportStatus::Running,
            total_rows: rows_hint.unwrap_or(0),
            done_rows: 0,
            imported: 0,
            rejected: 0,
            errors: Vec::new(),
            started_at: now,
            finished_at: None,
        };
        lock(&self.inner.imports).insert(id.clone(), progress);
        Ok(StartedImport {
            id,
            file_name: file_name.to_string(),
            registry,
            compiled,
            sealer,
            began: std::time::Instant::now(),
        })
    }

    async fn finish_import(
        &self,
        started: StartedImport,
        account: &str,
        table: Table,
        mode: ImportMode,
        now: DateTime<Utc>,
        on_progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<ImportReport, Error> {
        let StartedImport { id, file_name, registry, compiled, sealer, began } = started;
        let outcome = self.run_import(&id, registry.clone(), compiled, sealer, table, mode, now, on_progress).await;
        let finished = millis(now + chrono::Duration::from_std(began.elapsed()).unwrap_or_default());
        let mut c = self.conn().await?;
        let report = match outcome {
            Ok(report) => report,
            Err(e) => {
                // Keep the failure on record, then report it.
                let reason =
                    serde_json::to_string(&[RowError { row: 0, column: String::new(), reason: e.to_string() }])
                        .map_err(internal)?;
                repo::finish_import(&mut c, &id, ImportStatus::Failed.as_str(), 0, &reason, finished).await?;
                lock(&self.inner.imports).remove(&id);
                return Err(e);
            }
        };
        let errors = serde_json::to_string(&report.errors).map_err(internal)?;
        repo::import_progress(
            &mut c,
            &id,
            report.total_rows as i64,
            report.total_rows as i64,
            report.imported as i64,
            report.rejected as i64,
        )
        .await?;
        repo::finish_import(&mut c, &id, report.status.as_str(), report.imported as i64, &errors, finished).await?;
        let result = if report.status == ImportStatus::Done { Outcome::Success } else { Outcome::Failure };
        let mut entry = ledger::Entry::new(Action::RegistryImported, result, now);
        entry.actor = Some(account.into());
        entry.object = Some(format!("registry:{}", registry.code));
        entry.detail = Some(format!(
            "{file_name}: {} imported, {} rejected ({})",
            report.imported,
            report.rejected,
            mode.as_str()
        ));
        ledger::append(&mut c, Log::Audit, &entry).await?;
        lock(&self.inner.imports).remove(&id);
        Ok(report)
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_import(
        &self,
        id: &str,
        registry: RegistryRow,
        compiled: Arc<Compiled>,
        sealer: Arc<Sealer>,
        table: Table,
        mode: ImportMode,
        now: DateTime<Utc>,
        on_progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<ImportReport, Error> {
        let (columns, unknown) = self.columns(&compiled, &table.headers);
        if !unknown.is_empty() {
            return Err(Error::invalid(
                "file",
                format!("these columns are not fields of the registry: {}", unknown.join(", ")),
            ));
        }
        if !columns.iter().flatten().any(|(n, _)| n == &registry.key_field) {
            return Err(Error::invalid("file", format!("the file has no {} column (the key)", registry.key_field)));
        }
        let first_seq = {
            let mut c = self.conn().await?;
            repo::next_seq(&mut c, &registry.id).await?
        };
        let total_hint = table.rows_hint.unwrap_or(0);
        let (send, mut receive) = tokio::sync::mpsc::channel::<Batch>(2);
        let exchange = self.0.clone();
        let worker_registry = registry.clone();
        let worker = tokio::task::spawn_blocking(move || {
            let mut rows = table.rows;
            let mut line: u64 = 1;
            let mut seq = first_seq;
            loop {
                let mut batch = Batch { rows: Vec::with_capacity(BATCH), errors: Vec::new(), read: 0 };
                for cells in rows.by_ref().take(BATCH) {
                    line += 1;
                    batch.read += 1;
                    let record = cells
                        .map_err(|reason| vec![RowError { row: line, column: String::new(), reason }])
                        .and_then(|cells| typed_record(&columns, cells, line));
                    let record_id = new_id();
                    let sealed = record.and_then(|values| {
                        exchange
                            .registries()
                            .seal_record(&sealer, &worker_registry, &compiled, &record_id, &values)
                            .map_err(|errs| errs.into_iter().map(|e| RowError { row: line, ..e }).collect::<Vec<_>>())
                    });
                    match sealed {
                        Ok((key_index, body)) => {
                            batch.rows.push(RecordRow {
                                id: record_id,
                                registry_id: worker_registry.id.clone(),
                                version: worker_registry.version,
                                key_index,
                                body,
                                key_id: Some(sealer.key_id().to_string()),
                                seq,
                                created_at: millis(now),
                                updated_at: millis(now),
                            });
                            seq += 1;
                        }
                        Err(errs) => batch.errors.extend(errs.into_iter().take(5)),
                    }
                }
                if batch.read == 0 || send.blocking_send(batch).is_err() {
                    break;
                }
            }
        });
        let mut report = ImportReport {
            id: id.to_string(),
            total_rows: 0,
            imported: 0,
            rejected: 0,
            errors: Vec::new(),
            status: ImportStatus::Done,
        };
        // All-or-nothing holds one transaction to the end; skip-bad-rows commits each batch.
        let mut tx = self.inner.db.begin_bulk().await?;
        while let Some(batch) = receive.recv().await {
            report.total_rows += batch.read;
            let bad_rows: std::collections::BTreeSet<u64> = batch.errors.iter().map(|e| e.row).collect();
            report.rejected += bad_rows.len() as u64;
            let room = MAX_REPORTED.saturating_sub(report.errors.len());
            report.errors.extend(batch.errors.into_iter().take(room));
            if mode == ImportMode::AllOrNothing && report.rejected > 0 {
                // Keep reading, to report every bad row; write nothing more.
            } else {
                repo::insert_records(&mut tx, &batch.rows).await?;
                report.imported += batch.rows.len() as u64;
                if mode == ImportMode::SkipBadRows {
                    tx.commit().await?;
                    tx = self.inner.db.begin_bulk().await?;
                }
            }
            let total = total_hint.max(report.total_rows);
            if let Some(p) = lock(&self.inner.imports).get_mut(id) {
                p.total_rows = total;
                p.done_rows = report.total_rows;
                p.imported = report.imported;
                p.rejected = report.rejected;
                p.errors = report.errors.iter().take(50).cloned().collect();
            }
            on_progress(report.total_rows, total);
        }
        worker.await.map_err(internal)?;
        if mode == ImportMode::AllOrNothing && report.rejected > 0 {
            tx.rollback().await?;
            report.imported = 0;
            report.status = ImportStatus::Failed;
        } else {
            tx.commit().await?;
        }
        Ok(report)
    }

    /// Maps header cells to fields (by name, or by the Chinese or English title) and their
    /// schema types; returns the headers that match no field.
    fn columns(&self, compiled: &Compiled, headers: &[String]) -> (Vec<Column>, Vec<String>) {
        let types: HashMap<&str, &'static str> = compiled
            .fields
            .iter()
            .map(|f| {
                let kind = compiled
                    .schema
                    .pointer(&format!("/properties/{}/type", f.name))
                    .and_then(Value::as_str)
                    .map(|t| match t {
                        "integer" => "integer",
                        "number" => "number",
                        "boolean" => "boolean",
                        _ => "string",
                    })
                    .unwrap_or("string");
                (f.name.as_str(), kind)
            })
            .collect();
        let mut unknown = Vec::new();
        let columns = headers
            .iter()
            .map(|h| {
                let found = compiled.fields.iter().find(|f| &f.name == h || &f.title_zh == h || &f.title_en == h);
                match found {
                    Some(f) => Some((f.name.clone(), types.get(f.name.as_str()).copied().unwrap_or("string"))),
                    None if h.is_empty() => None,
                    None => {
                        unknown.push(h.clone());
                        None
                    }
                }
            })
            .collect();
        (columns, unknown)
    }

    /// An import: live progress while it runs on this node, else its stored outcome.
    pub async fn import_status(&self, cap: &Capability<RegistryManage>, id: &str) -> Result<ImportProgress, Error> {
        let live = lock(&self.inner.imports).get(id).cloned();
        let mut c = self.conn().await?;
        let row = repo::import(&mut c, id).await?.ok_or(Error::NotFound("import"))?;
        let registry = repo::registry_by_id(&mut c, &row.registry_id).await?.ok_or(Error::NotFound("registry"))?;
        cap.check_department(&registry.department_id)?;
        if let Some(p) = live {
            return Ok(p);
        }
        let errors = serde_json::from_str(&row.errors)
            .map_err(|e| Error::Internal(format!("import {}: its stored row errors do not read: {e}", row.id)))?;
        Ok(ImportProgress {
            id: row.id,
            registry: registry.code,
            file_name: row.file_name,
            mode: stored("mode", &row.mode)?,
            // An import that was running when its node stopped did not finish.
            status: match stored("status", &row.status)? {
                ImportStatus::Running if row.finished_at.is_none() => ImportStatus::Interrupted,
                status => status,
            },
            total_rows: row.total_rows as u64,
            done_rows: row.done_rows as u64,
            imported: row.imported as u64,
            rejected: row.rejected as u64,
            errors,
            started_at: from_millis(row.started_at),
            finished_at: row.finished_at.map(from_millis),
        })
    }
}
