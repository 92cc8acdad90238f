//! What anyone may read of open data: the catalogue with search and facets, each dataset
//! with its versions and usage, its rows (filtered, searched, sorted, paged) and downloads.
//! Conditional datasets show their description to all and their rows to holders of an
//! approved key.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use tantivy::tokenizer::TextAnalyzer;

use super::deidentify::{self, ColumnRule};
use super::publishing::{CsvEncoder, StoredRules};
use super::repo::{self, DatasetRow};
use super::{
    Column, ColumnType, DataSource, Dataset, DatasetSummary, DatasetVersion, Frequency, OpenLevel, Reader, Usage,
    UseKind,
};
use crate::{Error, Openness, Theme, china_day, internal};
use kernel::db::from_millis;

kernel::area! {
    /// What anyone may read of open data.
    DataCatalogue of Openness
}

/// The most rows a search, filter or sort over a dataset's rows reads; larger datasets are
/// paged as stored, or downloaded.
const MAX_SCAN_ROWS: i64 = 300_000;
/// The most rows one page of rows returns (CKAN's own limit).
pub const MAX_PAGE_ROWS: usize = 32_000;

/// How a search orders its results.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DatasetSort {
    /// Best match first; newest first without words.
    #[default]
    Relevance,
    Newest,
    /// Last changed first.
    Updated,
    Name,
    Title,
}

/// What a catalogue search asks for.
#[derive(Debug, Clone, Default)]
pub struct DatasetQuery {
    /// Words to find in titles, descriptions, keywords and departments.
    pub q: String,
    pub department: Option<String>,
    pub theme: Option<Theme>,
    pub open_level: Option<OpenLevel>,
    pub frequency: Option<Frequency>,
    pub source: Option<DataSource>,
    /// Every one must be a keyword of the dataset.
    pub tags: Vec<String>,
    pub sort: DatasetSort,
    pub start: usize,
    pub rows: usize,
}

/// How many of the matching datasets fall in each value of a facet.
#[derive(Debug, Clone, Default, serde::Serialize, utoipa::ToSchema)]
pub struct Facets {
    /// department code → (name, count)
    pub department: BTreeMap<String, (String, usize)>,
    pub theme: BTreeMap<String, usize>,
    pub open_level: BTreeMap<String, usize>,
    pub frequency: BTreeMap<String, usize>,
    pub source: BTreeMap<String, usize>,
    pub tags: BTreeMap<String, usize>,
}

/// A page of a catalogue search.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct DatasetPage {
    pub total: usize,
    pub datasets: Vec<DatasetSummary>,
    pub facets: Facets,
}

/// What a read of rows asks for.
#[derive(Debug, Clone, Default)]
pub struct RowQuery {
    /// Words any cell holds (case-insensitive).
    pub q: Option<String>,
    /// column → the values it may hold.
    pub filters: BTreeMap<String, Vec<String>>,
    /// (column, descending)
    pub sort: Vec<(String, bool)>,
    /// Columns to return; all when empty.
    pub fields: Vec<String>,
    pub offset: usize,
    pub limit: usize,
}

/// A page of a dataset's rows.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct RowPage {
    pub dataset: String,
    pub version: i64,
    pub total: u64,
    pub fields: Vec<Column>,
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<Map<String, Value>>,
}

/// The datasets as the catalogue searches them, with the text each is matched on.
pub(crate) struct Shelf {
    datasets: Vec<DatasetSummary>,
    haystacks: Vec<String>,
    jieba: TextAnalyzer,
}

pub(crate) type Generation = (i64, i64, i64);

impl Shelf {
    fn words(&self, q: &str) -> Vec<String> {
        let mut words = Vec::new();
        let mut analyzer = self.jieba.clone();
        let mut tokens = analyzer.token_stream(q);
        while tokens.advance() {
            let word: String = tokens.token().text.chars().filter(|c| c.is_alphanumeric()).collect();
            if !word.is_empty() && !words.contains(&word.to_lowercase()) {
                words.push(word.to_lowercase());
            }
        }
        words
    }
}

impl DataCatalogue<'_> {
    async fn shelf(&self) -> Result<Arc<Shelf>, Error> {
        let mut c = self.conn().await?;
        let generation = repo::generation(&mut c).await?;
        if let Ok(guard) = self.inner.datasets.read()
            && let Some((g, shelf)) = guard.as_ref()
            && *g == generation
        {
            return Ok(shelf.clone());
        }
        let rows = repo::datasets(&mut c).await?;
        drop(c);
        let mut names: HashMap<String, (String, String)> = HashMap::new();
        let mut datasets = Vec::with_capacity(rows.len());
        let mut haystacks = Vec::with_capacity(rows.len());
        for row in &rows {
            if !names.contains_key(&row.department_id) {
                let d = self.department_of(&row.department_id).await?;
                names.insert(row.department_id.clone(), d);
            }
            let (code, name) = names.get(&row.department_id).cloned().ok_or_else(|| internal("department"))?;
            let s = summary(row, code, name)?;
            haystacks.push(
                format!("{}\n{}\n{}\n{}\n{}", s.title, s.name, s.tags.join(" "), s.department_name, s.description)
                    .to_lowercase(),
            );
            datasets.push(s);
        }
        let jieba = TextAnalyzer::from(tantivy_jieba::JiebaTokenizer::new());
        let shelf = Arc::new(Shelf { datasets, haystacks, jieba });
        if let Ok(mut guard) = self.inner.datasets.write() {
            *guard = Some((generation, shelf.clone()));
        }
        Ok(shelf)
    }

    async fn department_of(&self, id: &str) -> Result<(String, String), Error> {
        let d = self
            .inner
            .identity
            .organisation()
            .placed_department_by_id(id)
            .await?
            .ok_or(Error::NotFound("department"))?;
        Ok((d.department.code, d.department.name))
    }

    /// Every dataset, newest first.
    pub async fn all(&self) -> Result<Vec<DatasetSummary>, Error> {
        Ok(self.shelf().await?.datasets.clone())
    }

    /// Searches the catalogue: words, filters, facets over what matched, a page.
    pub async fn search(&self, q: &DatasetQuery) -> Result<DatasetPage, Error> {
        let shelf = self.shelf().await?;
        let words = shelf.words(&q.q);
        let mut hits: Vec<(usize, &DatasetSummary)> = Vec::new();
        for (d, hay) in shelf.datasets.iter().zip(&shelf.haystacks) {
            if !words.iter().all(|w| hay.contains(w.as_str())) {
                continue;
            }
            let keep = q.department.as_deref().is_none_or(|c| c == d.department_code)
                && q.theme.is_none_or(|t| t == d.theme)
                && q.open_level.is_none_or(|l| l == d.open_level)
                && q.frequency.is_none_or(|f| f == d.frequency)
                && q.source.is_none_or(|s| s == d.source)
                && q.tags.iter().all(|t| d.tags.contains(t));
            if keep {
                let title = d.title.to_lowercase();
                let score = words.iter().filter(|w| title.contains(w.as_str())).count() * 3
                    + words.iter().filter(|w| d.tags.iter().any(|t| t.to_lowercase().contains(w.as_str()))).count();
                hits.push((score, d));
            }
        }
        match (q.sort, words.is_empty()) {
            (DatasetSort::Relevance, false) => hits.sort_by_key(|h| std::cmp::Reverse(h.0)),
            (DatasetSort::Relevance, true) | (DatasetSort::Newest, _) => {}
            (DatasetSort::Updated, _) => hits.sort_by_key(|h| std::cmp::Reverse(h.1.updated_at)),
            (DatasetSort::Name, _) => hits.sort_by(|a, b| a.1.name.cmp(&b.1.name)),
            (DatasetSort::Title, _) => hits.sort_by(|a, b| a.1.title.cmp(&b.1.title)),
        }
        let mut facets = Facets::default();
        for (_, d) in &hits {
            facets.department.entry(d.department_code.clone()).or_insert_with(|| (d.department_name.clone(), 0)).1 += 1;
            *facets.theme.entry(d.theme.as_str().to_string()).or_default() += 1;
            *facets.open_level.entry(d.open_level.as_str().to_string()).or_default() += 1;
            *facets.frequency.entry(d.frequency.as_str().to_string()).or_default() += 1;
            *facets.source.entry(d.source.as_str().to_string()).or_default() += 1;
            for t in &d.tags {
                *facets.tags.entry(t.clone()).or_default() += 1;
            }
        }
        let total = hits.len();
        let datasets = hits.into_iter().skip(q.start).take(q.rows).map(|(_, d)| d.clone()).collect();
        Ok(DatasetPage { total, datasets, facets })
    }

    /// A dataset by name or id, with its columns, rules, versions and usage.
    pub async fn dataset(&self, name_or_id: &str) -> Result<Dataset, Error> {
        let mut c = self.conn().await?;
        let row = repo::dataset(&mut c, name_or_id.trim()).await?.ok_or(Error::NotFound("dataset"))?;
        let versions = repo::versions(&mut c, &row.id).await?;
        let (views, downloads, api_calls) = repo::usage_of(&mut c, &row.id).await?;
        drop(c);
        let (code, name) = self.department_of(&row.department_id).await?;
        let columns: Vec<Column> = serde_json::from_str(&row.columns).map_err(internal)?;
        let rules: Option<Vec<ColumnRule>> = match &row.rules {
            None => None,
            Some(text) => Some(serde_json::from_str::<StoredRules>(text).map_err(internal)?.rules),
        };
        Ok(Dataset {
            columns,
            registry: row.registry_code.clone(),
            rules,
            k_required: row.k_required,
            versions: versions
                .into_iter()
                .map(|v| DatasetVersion {
                    version: v.version,
                    row_count: v.row_count,
                    k_reached: v.k_reached,
                    sha256: v.sha256,
                    ledger_index: v.ledger_index,
                    note: v.note,
                    published_at: from_millis(v.published_at),
                })
                .collect(),
            usage: Usage { views, downloads, api_calls },
            next_refresh_at: row.refresh_due_at.map(from_millis),
            summary: summary(&row, code, name)?,
        })
    }

    /// Counts a use of a dataset (a page view, a download, an API call): on the dataset's
    /// day in `open_usage`, and in the same transaction on insight's tallies.
    pub async fn count_use(&self, dataset_id: &str, kind: UseKind, now: DateTime<Utc>) -> Result<(), Error> {
        let mut c = self.conn().await?;
        let row = repo::dataset(&mut c, dataset_id).await?.ok_or(Error::NotFound("dataset"))?;
        drop(c);
        self.count_row_use(&row, kind, now).await
    }

    async fn count_row_use(&self, row: &DatasetRow, kind: UseKind, now: DateTime<Utc>) -> Result<(), Error> {
        let day = china_day(now);
        let mut tx = self.inner.db.begin().await?;
        repo::count_use(&mut tx, &row.id, &day.to_string(), kind).await?;
        kernel::tally::add(&mut tx, &[use_count(row, day, kind, 1)]).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every tally of dataset uses, derived again from `open_usage`.
    pub async fn recount(&self) -> Result<Vec<kernel::tally::Count>, Error> {
        let mut c = self.conn().await?;
        let rows = repo::datasets(&mut c).await?;
        let usage = repo::usage_days(&mut c).await?;
        drop(c);
        let by_id: HashMap<&str, &DatasetRow> = rows.iter().map(|r| (r.id.as_str(), r)).collect();
        let mut counts = Vec::new();
        for (dataset_id, day, views, downloads, api_calls) in usage {
            let row = by_id.get(dataset_id.as_str()).ok_or_else(|| internal("a use of an unknown dataset"))?;
            let day: chrono::NaiveDate = day.parse().map_err(internal)?;
            for (kind, n) in [(UseKind::View, views), (UseKind::Download, downloads), (UseKind::ApiCall, api_calls)] {
                counts.push(use_count(row, day, kind, n));
            }
        }
        Ok(kernel::tally::settle(counts))
    }

    /// Replaces the stored tallies of dataset uses with a recount, in one transaction.
    pub async fn store_recount(&self, counts: &[kernel::tally::Count]) -> Result<(), Error> {
        let mut tx = self.inner.db.begin().await?;
        kernel::tally::replace(&mut tx, kernel::tally::Module::Openness, counts).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The dataset a reader may read rows of: anyone for an unconditional one, an approved
    /// key for a conditional one (each call counted against the key's limit).
    async fn readable(&self, name_or_id: &str, reader: Reader<'_>, now: DateTime<Utc>) -> Result<DatasetRow, Error> {
        let mut c = self.conn().await?;
        let row = repo::dataset(&mut c, name_or_id.trim()).await?.ok_or(Error::NotFound("dataset"))?;
        drop(c);
        match (reader, row.open_level) {
            (Reader::Key(key), _) => {
                self.access().authorise(key, &row, now).await?;
            }
            (Reader::Anyone, OpenLevel::Unconditional) => {}
            (Reader::Anyone, OpenLevel::Conditional) => return Err(Error::AccessRequired),
        }
        Ok(row)
    }

    /// Rows of the dataset's current version: searched, filtered and sorted when asked,
    /// then paged. Counted as an API call.
    pub async fn rows(
        &self,
        name_or_id: &str,
        reader: Reader<'_>,
        q: &RowQuery,
        now: DateTime<Utc>,
    ) -> Result<RowPage, Error> {
        let row = self.readable(name_or_id, reader, now).await?;
        let columns: Vec<Column> = serde_json::from_str(&row.columns).map_err(internal)?;
        for name in q.filters.keys().chain(q.sort.iter().map(|(n, _)| n)).chain(&q.fields) {
            if !columns.iter().any(|c| &c.name == name) {
                return Err(Error::invalid("fields", format!("the dataset has no column {name}")));
            }
        }
        let limit = q.limit.min(MAX_PAGE_ROWS);
        let words: Vec<String> = q.q.as_deref().unwrap_or("").split_whitespace().map(str::to_lowercase).collect();
        let plain = words.is_empty() && q.filters.is_empty() && q.sort.is_empty();
        let mut c = self.conn().await?;
        let (total, mut rows) = if plain {
            let offset = i64::try_from(q.offset).map_err(|_| Error::invalid("offset", "too large"))?;
            let bodies = repo::rows(&mut c, &row.id, row.version, offset, limit as i64).await?;
            (u64::try_from(row.row_count).map_err(internal)?, parse_rows(&bodies)?)
        } else {
            if row.row_count > MAX_SCAN_ROWS {
                return Err(Error::invalid(
                    "q",
                    format!("the dataset has more than {MAX_SCAN_ROWS} rows: page it without search, or download it"),
                ));
            }
            let bodies = repo::rows(&mut c, &row.id, row.version, 0, MAX_SCAN_ROWS).await?;
            let mut all = parse_rows(&bodies)?;
            all.retain(|r| {
                let text_ok = words.is_empty() || {
                    let hay: String =
                        r.values().map(|v| deidentify::display(Some(v)).to_lowercase()).collect::<Vec<_>>().join("\n");
                    words.iter().all(|w| hay.contains(w.as_str()))
                };
                text_ok && q.filters.iter().all(|(col, values)| values.contains(&deidentify::display(r.get(col))))
            });
            for (col, descending) in q.sort.iter().rev() {
                let kind = columns.iter().find(|c| &c.name == col).map(|c| c.kind);
                all.sort_by(|a, b| {
                    let o = compare(kind, a.get(col), b.get(col));
                    if *descending { o.reverse() } else { o }
                });
            }
            let total = all.len() as u64;
            (total, all.into_iter().skip(q.offset).take(limit).collect())
        };
        drop(c);
        let fields: Vec<Column> = if q.fields.is_empty() {
            columns
        } else {
            for r in &mut rows {
                r.retain(|k, _| q.fields.contains(k));
            }
            columns.into_iter().filter(|c| q.fields.contains(&c.name)).collect()
        };
        self.count_row_use(&row, UseKind::ApiCall, now).await?;
        Ok(RowPage { dataset: row.name, version: row.version, total, fields, rows })
    }

    /// A version (the current one when none is named) as CSV — the bytes whose SHA-256 its
    /// ledger entry carries — or as a JSON array. Counted as a download.
    pub async fn download(
        &self,
        name_or_id: &str,
        version: Option<i64>,
        format: DownloadFormat,
        reader: Reader<'_>,
        now: DateTime<Utc>,
    ) -> Result<(DatasetSummary, Vec<u8>), Error> {
        let row = self.readable(name_or_id, reader, now).await?;
        let version = version.unwrap_or(row.version);
        let mut c = self.conn().await?;
        if !repo::versions(&mut c, &row.id).await?.iter().any(|v| v.version == version) {
            return Err(Error::NotFound("version"));
        }
        let columns: Vec<Column> = serde_json::from_str(&row.columns).map_err(internal)?;
        let mut out = Vec::new();
        let mut csv = CsvEncoder::new(&columns)?;
        if format == DownloadFormat::Json {
            out.push(b'[');
        }
        let mut offset = 0i64;
        loop {
            let bodies = repo::rows(&mut c, &row.id, version, offset, 5_000).await?;
            if bodies.is_empty() {
                break;
            }
            offset += bodies.len() as i64;
            for body in &bodies {
                match format {
                    DownloadFormat::Csv => {
                        let r: Map<String, Value> = serde_json::from_str(body).map_err(internal)?;
                        csv.row(&columns, &r)?;
                    }
                    DownloadFormat::Json => {
                        if out.len() > 1 {
                            out.push(b',');
                        }
                        out.extend_from_slice(body.as_bytes());
                    }
                }
            }
            if format == DownloadFormat::Csv {
                out.extend(csv.take()?);
            }
        }
        match format {
            DownloadFormat::Csv => out.extend(csv.take()?),
            DownloadFormat::Json => out.push(b']'),
        }
        drop(c);
        let (code, name) = self.department_of(&row.department_id).await?;
        self.count_row_use(&row, UseKind::Download, now).await?;
        Ok((summary(&row, code, name)?, out))
    }

    /// Views, downloads and API calls per dataset since a day (YYYY-MM-DD), busiest first.
    pub async fn usage_since(&self, day: chrono::NaiveDate) -> Result<Vec<(DatasetSummary, Usage)>, Error> {
        let shelf = self.shelf().await?;
        let mut c = self.conn().await?;
        let figures = repo::usage(&mut c, &day.to_string()).await?;
        let by_id: HashMap<&str, &DatasetSummary> = shelf.datasets.iter().map(|d| (d.id.as_str(), d)).collect();
        let mut out: Vec<(DatasetSummary, Usage)> = figures
            .into_iter()
            .filter_map(|(id, views, downloads, api_calls)| {
                by_id.get(id.as_str()).map(|d| ((*d).clone(), Usage { views, downloads, api_calls }))
            })
            .collect();
        out.sort_by(|a, b| {
            (b.1.views + b.1.downloads + b.1.api_calls).cmp(&(a.1.views + a.1.downloads + a.1.api_calls))
        });
        Ok(out)
    }
}

/// A use of a dataset as insight's tallies count it: on the China day, at the publishing
/// department's region, under the dataset's name.
fn use_count(row: &DatasetRow, day: chrono::NaiveDate, kind: UseKind, value: i64) -> kernel::tally::Count {
    use kernel::tally::{Channel, Count, Key, Measure};
    let measure = match kind {
        UseKind::View => Measure::DatasetViewed,
        UseKind::Download => Measure::DatasetDownloaded,
        UseKind::ApiCall => Measure::DatasetApiCalled,
    };
    let key = Key {
        day,
        region_path: kernel::tally::tally_region(&row.region_path),
        department_id: row.department_id.clone(),
        service: row.name.clone(),
        channel: Channel::Online,
    };
    Count { key, measure, value }
}

/// The formats a dataset downloads in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownloadFormat {
    Csv,
    Json,
}

fn parse_rows(bodies: &[String]) -> Result<Vec<Map<String, Value>>, Error> {
    bodies.iter().map(|b| serde_json::from_str(b).map_err(internal)).collect()
}

/// Orders two cells by their column's type; empty cells last.
fn compare(kind: Option<ColumnType>, a: Option<&Value>, b: Option<&Value>) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let a = a.filter(|v| !v.is_null());
    let b = b.filter(|v| !v.is_null());
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(a), Some(b)) => match (kind, a.as_f64(), b.as_f64()) {
            (Some(ColumnType::Integer | ColumnType::Number), Some(x), Some(y)) => x.total_cmp(&y),
            _ => deidentify::display(Some(a)).cmp(&deidentify::display(Some(b))),
        },
    }
}

fn summary(row: &DatasetRow, department_code: String, department_name: String) -> Result<DatasetSummary, Error> {
    Ok(DatasetSummary {
        id: row.id.clone(),
        name: row.name.clone(),
        title: row.title.clone(),
        description: row.description.clone(),
        department_code,
        department_name,
        theme: row.theme,
        open_level: row.open_level,
        frequency: row.frequency,
        licence: row.licence,
        tags: serde_json::from_str(&row.tags).map_err(internal)?,
        source: row.source,
        version: row.version,
        row_count: row.row_count,
        k_reached: row.k_reached,
        published_at: from_millis(row.published_at),
        updated_at: from_millis(row.updated_at),
    })
}
