//! The GovStack Digital Registries Data API over the registries their departments mark
//! trusted. The Information Mediator authenticates the calling system, so a call needs no
//! sharing agreement; every record read or written is still an `audit` ledger entry naming
//! the system and the data subject, and `myPersonalDataUsage` answers from those entries.
//!
//! GovStack clients spell field names loosely (`ID`, `id`, `Firstname`): names are matched
//! to the schema's properties without regard to case or spaces.

use kernel::audit::{Action, Outcome};
use std::cmp::Ordering;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use sqlx::AnyConnection;

use super::registry::{RecordView, key_text, normalize_key};
use super::repo::{self, RecordRow, RegistryRow};
use super::{Compiled, Error, Exchange, FieldEntry, RegistrySpec, SharingType};
use identity::{CallingSystem, Capability};
use kernel::authz::RegistryManage;
use kernel::error::ErrorCode;
use ledger::{self, Log};
use protect::Sealer;

/// The usage history a registry brought from its previous system (GovStack's field name):
/// kept with the record and reported by `myPersonalDataUsage`, never written by clients.
const USAGE_HISTORY: &str = "PersonalData";
/// Records a page holds at most (and a list without paging).
const MAX_PAGE: usize = 1000;
/// Larger registries are searched by their key field only.
const MAX_SCAN: usize = 100_000;
/// The audit actions that are a use of a person's data.
const USES: &[Action] =
    &[Action::RegistryRecordRead, Action::RegistryRecordChecked, Action::ExchangeRead, Action::ExchangeVerify];

/// What a list asks for.
#[derive(Debug, Clone, Default)]
pub struct RecordFilter {
    /// Free text or a regular expression, matched without regard to case: against the
    /// `filter` field when it names one, else against every field.
    pub search: Option<String>,
    pub filter: Option<String>,
    /// asc, ascending, desc or descending: by the filter field, else by the key.
    pub ordering: Option<String>,
    /// From 1.
    pub page: Option<usize>,
    pub page_size: Option<usize>,
    /// Exact values per field (`query.FirstName=John`).
    pub fields: Map<String, Value>,
}

/// One page of records.
#[derive(Debug, Clone)]
pub struct RecordPage {
    pub count: usize,
    pub page: usize,
    pub page_size: usize,
    pub has_next: bool,
    pub results: Vec<Value>,
}

/// What a fixture load wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FixtureLoad {
    /// The registries' codes.
    pub registries: Vec<String>,
    pub records: usize,
    pub databases: usize,
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn same(have: &Value, want: &Value) -> bool {
    have == want || scalar_text(have).is_some_and(|h| scalar_text(want).is_some_and(|w| h == w))
}

/// The schema's name for a field a client names loosely (`Firstname`, `First name`).
fn field_name(compiled: &Compiled, name: &str) -> String {
    let squeezed: String = name.chars().filter(|c| !c.is_whitespace()).collect();
    compiled
        .fields
        .iter()
        .find(|f| f.name.eq_ignore_ascii_case(&squeezed))
        .map(|f| f.name.clone())
        .unwrap_or_else(|| name.to_string())
}

/// A client's record or query with the schema's field names; `uuid` names the record
/// itself and is kept only in queries; the usage history is never taken from a client.
fn canonical(compiled: &Compiled, content: &Map<String, Value>, query: bool) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in content {
        if k.eq_ignore_ascii_case("uuid") {
            if query {
                out.insert("uuid".into(), v.clone());
            }
            continue;
        }
        let name = field_name(compiled, k);
        if name != USAGE_HISTORY {
            out.insert(name, v.clone());
        }
    }
    out
}

fn matches(row: &RecordRow, view: &RecordView, query: &Map<String, Value>) -> bool {
    query.iter().all(|(k, want)| {
        if k == "uuid" {
            return scalar_text(want).is_some_and(|w| w == row.id);
        }
        view.values.get(k).is_some_and(|have| same(have, want))
    })
}

/// A record as GovStack clients see it: its values and its `uuid`.
fn record_json(view: &RecordView) -> Value {
    let mut m = Map::with_capacity(view.values.len() + 1);
    m.insert("uuid".into(), Value::String(view.id.clone()));
    for (k, v) in &view.values {
        if k != USAGE_HISTORY {
            m.insert(k.clone(), v.clone());
        }
    }
    Value::Object(m)
}

fn search_pattern(search: &str) -> Result<regex::Regex, Error> {
    let build = |p: &str| regex::RegexBuilder::new(p).case_insensitive(true).size_limit(1 << 20).build();
    // Not a valid expression: searched for as written.
    build(search).or_else(|_| build(&regex::escape(search))).map_err(|_| Error::invalid("search", "too long"))
}

fn compare(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    let text = |v: Option<&Value>| v.and_then(scalar_text);
    match (a.and_then(Value::as_f64), b.and_then(Value::as_f64)) {
        (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        _ => text(a).cmp(&text(b)),
    }
}

fn nonempty(m: &Map<String, Value>, field: &'static str) -> Result<(), Error> {
    if m.is_empty() { Err(Error::invalid(field, "name at least one field")) } else { Ok(()) }
}

kernel::area! {
    /// The GovStack Digital Registries Data API over registries marked trusted, for systems the Information Mediator names.
    RegistryData of Exchange
}

impl RegistryData<'_> {
    /// A registry the Data API serves to this system, at a version it was published as;
    /// records are written against the current one.
    async fn trusted_in(
        &self,
        c: &mut AnyConnection,
        client: &CallingSystem,
        code: &str,
        version: &str,
    ) -> Result<(RegistryRow, Arc<Compiled>), Error> {
        let row =
            repo::registry_by_code(c, code).await?.filter(|r| r.mediator_trusted).ok_or(Error::NotFound("registry"))?;
        self.served_in(c, client, &row).await?;
        let asked: i64 = version.trim().parse().map_err(|_| Error::NotFound("registry version"))?;
        if asked != row.version && repo::version(c, &row.id, asked).await?.is_none() {
            return Err(Error::NotFound("registry version"));
        }
        let compiled = self.registries().compiled_in(c, &row.id, row.version).await?;
        Ok((row, compiled))
    }

    async fn served_in(&self, c: &mut AnyConnection, client: &CallingSystem, row: &RegistryRow) -> Result<(), Error> {
        if self.systems().serves_in(c, &row.id, client).await? {
            return Ok(());
        }
        Err(Error::refused(
            ErrorCode::SystemNotServed,
            format!(
                "registry {} does not serve {}: its department lists the systems it serves",
                row.code,
                client.as_str()
            ),
        ))
    }

    fn key_index(&self, registry: &RegistryRow, key: &str) -> String {
        self.inner.protector.blind_index(&registry.key_domain, &normalize_key(&registry.key_domain, key))
    }

    /// The record the write's key names, when it already holds every written value.
    async fn holding_in(
        &self,
        c: &mut AnyConnection,
        registry: &RegistryRow,
        compiled: &Compiled,
        write: &Map<String, Value>,
    ) -> Result<Option<(RecordRow, RecordView)>, Error> {
        if write.get(&registry.key_field).and_then(key_text).is_none() {
            return Ok(None);
        }
        Ok(self.matching_in(c, registry, compiled, write).await?.into_iter().next())
    }

    /// The records matching every field of a client's query, in the order they were written.
    async fn matching_in(
        &self,
        c: &mut AnyConnection,
        registry: &RegistryRow,
        compiled: &Compiled,
        query: &Map<String, Value>,
    ) -> Result<Vec<(RecordRow, RecordView)>, Error> {
        let query = &canonical(compiled, query, true);
        let rows = match query.get(&registry.key_field).and_then(key_text) {
            Some(key) => {
                let mut rows = repo::records_by_key(c, &registry.id, &self.key_index(registry, &key)).await?;
                rows.reverse();
                rows
            }
            None => match query.get("uuid").and_then(scalar_text) {
                Some(id) => repo::record(c, &registry.id, &id).await?.into_iter().collect(),
                None => self.all_records_in(c, registry).await?,
            },
        };
        let mut out = Vec::new();
        for row in rows {
            let view = self.registries().open_record(c, &row).await?;
            if matches(&row, &view, query) {
                out.push((row, view));
            }
        }
        Ok(out)
    }

    async fn all_records_in(&self, c: &mut AnyConnection, registry: &RegistryRow) -> Result<Vec<RecordRow>, Error> {
        let mut rows = Vec::new();
        let mut after = 0;
        loop {
            let batch = repo::records_after(c, &registry.id, after, 1000).await?;
            let Some(last) = batch.last() else { break };
            after = last.seq;
            rows.extend(batch);
            if rows.len() > MAX_SCAN {
                return Err(Error::invalid(
                    "query",
                    format!("this registry is large: search it by {}", registry.key_field),
                ));
            }
        }
        Ok(rows)
    }

    /// The access entry of one record read, checked or written by a mediated system.
    async fn mediated_use_in(
        &self,
        c: &mut AnyConnection,
        client: &CallingSystem,
        registry: &RegistryRow,
        record: &RecordRow,
        action: Action,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let mut entry = ledger::Entry::new(action, Outcome::Success, now);
        entry.source = Some(client.as_str().into());
        entry.subject = Some(self.sharing().data_subject_in(c, registry, &record.key_index).await?);
        entry.object = Some(format!("registry:{}:{}", registry.code, record.id));
        ledger::append_in(c, Log::Audit, &entry).await?;
        Ok(())
    }

    /// Lists records: exact field values, then the search, the ordering and the page.
    pub async fn mediated_list(
        &self,
        client: &CallingSystem,
        code: &str,
        version: &str,
        filter: &RecordFilter,
        now: DateTime<Utc>,
    ) -> Result<RecordPage, Error> {
        let descending = match filter.ordering.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("") => None,
            Some("asc" | "ascending") => Some(false),
            Some("desc" | "descending") => Some(true),
            Some(_) => return Err(Error::invalid("ordering", "asc, ascending, desc or descending")),
        };
        if filter.page == Some(0) || filter.page_size == Some(0) {
            return Err(Error::invalid("page", "pages and page sizes count from 1"));
        }
        let mut tx = self.inner.db.begin().await?;
        let (registry, compiled) = self.trusted_in(&mut tx, client, code, version).await?;
        let mut found = self.matching_in(&mut tx, &registry, &compiled, &filter.fields).await?;
        let field = filter.filter.as_deref().filter(|f| !f.trim().is_empty()).map(|f| field_name(&compiled, f));
        if let Some(search) = filter.search.as_deref().filter(|s| !s.is_empty()) {
            let pattern = search_pattern(search)?;
            let hit = |v: &Value| scalar_text(v).is_some_and(|t| pattern.is_match(&t));
            found.retain(|(_, view)| match &field {
                // A filter that names no field matches nothing.
                Some(f) => view.values.get(f).is_some_and(hit),
                None => view.values.iter().any(|(k, v)| k != USAGE_HISTORY && hit(v)),
            });
        }
        if let Some(descending) = descending {
            let by = field.filter(|f| compiled.field(f).is_some()).unwrap_or_else(|| registry.key_field.clone());
            found.sort_by(|a, b| compare(a.1.values.get(&by), b.1.values.get(&by)));
            if descending {
                found.reverse();
            }
        }
        let page_size = filter.page_size.unwrap_or(MAX_PAGE).min(MAX_PAGE);
        let page = filter.page.unwrap_or(1);
        let count = found.len();
        let start = (page - 1).saturating_mul(page_size);
        let shown: Vec<(RecordRow, RecordView)> = found.into_iter().skip(start).take(page_size).collect();
        for (row, _) in &shown {
            self.mediated_use_in(&mut tx, client, &registry, row, Action::RegistryRecordRead, now).await?;
        }
        tx.commit().await?;
        Ok(RecordPage {
            count,
            page,
            page_size,
            has_next: start.saturating_add(page_size) < count,
            results: shown.iter().map(|(_, v)| record_json(v)).collect(),
        })
    }

    /// The first record matching the query.
    pub async fn mediated_read(
        &self,
        client: &CallingSystem,
        code: &str,
        version: &str,
        query: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<Value, Error> {
        nonempty(query, "query")?;
        let mut tx = self.inner.db.begin().await?;
        let (registry, compiled) = self.trusted_in(&mut tx, client, code, version).await?;
        let found = self.matching_in(&mut tx, &registry, &compiled, query).await?;
        let (row, view) = found.into_iter().next().ok_or(Error::NotFound("record"))?;
        self.mediated_use_in(&mut tx, client, &registry, &row, Action::RegistryRecordRead, now).await?;
        tx.commit().await?;
        Ok(record_json(&view))
    }

    /// Whether a record matches the query (a check of the person's data when it does).
    pub async fn mediated_exists(
        &self,
        client: &CallingSystem,
        code: &str,
        version: &str,
        query: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<bool, Error> {
        nonempty(query, "query")?;
        let mut tx = self.inner.db.begin().await?;
        let (registry, compiled) = self.trusted_in(&mut tx, client, code, version).await?;
        let found = self.matching_in(&mut tx, &registry, &compiled, query).await?;
        if let Some((row, _)) = found.first() {
            self.mediated_use_in(&mut tx, client, &registry, row, Action::RegistryRecordChecked, now).await?;
        }
        tx.commit().await?;
        Ok(!found.is_empty())
    }

    /// A new record, validated against the registry's schema.
    pub async fn mediated_create(
        &self,
        client: &CallingSystem,
        code: &str,
        version: &str,
        content: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<Value, Error> {
        nonempty(content, "content")?;
        let mut tx = self.inner.db.begin().await?;
        let (registry, compiled) = self.trusted_in(&mut tx, client, code, version).await?;
        let sealer = self.inner.protector.sealer_in(&mut tx).await?;
        let values = Value::Object(canonical(&compiled, content, false));
        let id = self.registries().write_record_in(&mut tx, &sealer, &registry, &compiled, None, values, now).await?;
        let out = self.written_in(&mut tx, client, &registry, &id, now).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn written_in(
        &self,
        c: &mut AnyConnection,
        client: &CallingSystem,
        registry: &RegistryRow,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Value, Error> {
        let row = repo::record(c, &registry.id, id).await?.ok_or(Error::NotFound("record"))?;
        self.mediated_use_in(c, client, registry, &row, Action::RegistryRecordWritten, now).await?;
        Ok(record_json(&self.registries().open_record(c, &row).await?))
    }

    /// Writes `write` over a stored record (a shallow merge; the usage history stays).
    #[allow(clippy::too_many_arguments)]
    async fn merge_in(
        &self,
        c: &mut AnyConnection,
        sealer: &Sealer,
        client: &CallingSystem,
        registry: &RegistryRow,
        compiled: &Compiled,
        view: &RecordView,
        write: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<Value, Error> {
        let mut values = view.values.clone();
        for (k, v) in write {
            values.insert(k.clone(), v.clone());
        }
        self.registries()
            .write_record_in(c, sealer, registry, compiled, Some(&view.id), Value::Object(values), now)
            .await?;
        self.written_in(c, client, registry, &view.id, now).await
    }

    /// Updates the first record matching `query`, or each of them with `all`: the records
    /// as written. With `all`, no match is an empty list. Without it, no match is an error
    /// unless the record the write names by its key already holds the write (the same
    /// update sent again): then that record, unchanged.
    #[allow(clippy::too_many_arguments)]
    pub async fn mediated_update(
        &self,
        client: &CallingSystem,
        code: &str,
        version: &str,
        query: &Map<String, Value>,
        write: &Map<String, Value>,
        all: bool,
        now: DateTime<Utc>,
    ) -> Result<Vec<Value>, Error> {
        nonempty(query, "query")?;
        nonempty(write, "write")?;
        let mut tx = self.inner.db.begin().await?;
        let (registry, compiled) = self.trusted_in(&mut tx, client, code, version).await?;
        let write = canonical(&compiled, write, false);
        let mut found = self.matching_in(&mut tx, &registry, &compiled, query).await?;
        if found.is_empty() && !all {
            // A repeated update finds its record already written: the same answer again.
            let holding = self.holding_in(&mut tx, &registry, &compiled, &write).await?;
            let Some((row, view)) = holding else { return Err(Error::NotFound("record")) };
            self.mediated_use_in(&mut tx, client, &registry, &row, Action::RegistryRecordRead, now).await?;
            tx.commit().await?;
            return Ok(vec![record_json(&view)]);
        }
        if !all {
            found.truncate(1);
        }
        let sealer = self.inner.protector.sealer_in(&mut tx).await?;
        let mut out = Vec::with_capacity(found.len());
        for (_, view) in &found {
            out.push(self.merge_in(&mut tx, &sealer, client, &registry, &compiled, view, &write, now).await?);
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Updates the first record matching `query`, or creates one from `write`.
    pub async fn mediated_update_or_create(
        &self,
        client: &CallingSystem,
        code: &str,
        version: &str,
        query: &Map<String, Value>,
        write: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<Value, Error> {
        nonempty(write, "write")?;
        let mut tx = self.inner.db.begin().await?;
        let (registry, compiled) = self.trusted_in(&mut tx, client, code, version).await?;
        let write = canonical(&compiled, write, false);
        let sealer = self.inner.protector.sealer_in(&mut tx).await?;
        let first = if query.is_empty() {
            None
        } else {
            self.matching_in(&mut tx, &registry, &compiled, query).await?.into_iter().next()
        };
        let out = match first {
            Some((_, view)) => {
                self.merge_in(&mut tx, &sealer, client, &registry, &compiled, &view, &write, now).await?
            }
            None => {
                let values = Value::Object(write);
                let id = self
                    .registries()
                    .write_record_in(&mut tx, &sealer, &registry, &compiled, None, values, now)
                    .await?;
                self.written_in(&mut tx, client, &registry, &id, now).await?
            }
        };
        tx.commit().await?;
        Ok(out)
    }

    /// Deletes the records with this key (or this record id): how many (none when they are
    /// already gone: deleting is idempotent).
    pub async fn mediated_delete(
        &self,
        client: &CallingSystem,
        code: &str,
        version: &str,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, Error> {
        let mut tx = self.inner.db.begin().await?;
        let (registry, _) = self.trusted_in(&mut tx, client, code, version).await?;
        let mut rows = repo::records_by_key(&mut tx, &registry.id, &self.key_index(&registry, id)).await?;
        if rows.is_empty() {
            rows.extend(repo::record(&mut tx, &registry.id, id).await?);
        }
        for row in &rows {
            repo::delete_record(&mut tx, &registry.id, &row.id).await?;
            self.mediated_use_in(&mut tx, client, &registry, row, Action::RegistryRecordDeleted, now).await?;
        }
        tx.commit().await?;
        Ok(rows.len())
    }

    /// One value of one record, by the record's id.
    #[allow(clippy::too_many_arguments)]
    pub async fn mediated_value(
        &self,
        client: &CallingSystem,
        code: &str,
        version: &str,
        record_id: &str,
        field: &str,
        format: &str,
        now: DateTime<Utc>,
    ) -> Result<Value, Error> {
        if !format.eq_ignore_ascii_case("json") {
            return Err(Error::invalid("format", "values are served as json"));
        }
        let mut tx = self.inner.db.begin().await?;
        let (registry, compiled) = self.trusted_in(&mut tx, client, code, version).await?;
        let row = repo::record(&mut tx, &registry.id, record_id).await?.ok_or(Error::NotFound("record"))?;
        let view = self.registries().open_record(&mut tx, &row).await?;
        let name = field_name(&compiled, field);
        let value =
            view.values.get(&name).filter(|_| name != USAGE_HISTORY).cloned().ok_or(Error::NotFound("field"))?;
        self.mediated_use_in(&mut tx, client, &registry, &row, Action::RegistryRecordRead, now).await?;
        tx.commit().await?;
        Ok(value)
    }

    /// Who used the person's data in the registry of this GovStack database: the usage
    /// history the registry brought with it, then every access entry naming the person.
    pub async fn personal_data_usage(
        &self,
        client: &CallingSystem,
        user_id: &str,
        database_code: &str,
    ) -> Result<Vec<Value>, Error> {
        let id_ok = |s: &str, max: usize| {
            !s.is_empty() && s.len() <= max && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        if !id_ok(user_id, 64) {
            return Err(Error::invalid("userId", "a person's identifier: letters, digits and -"));
        }
        if !id_ok(database_code, 32) {
            return Err(Error::invalid("databaseId", "a database acronym such as MCTS"));
        }
        let (mut usage, subject) = {
            let mut c = self.conn().await?;
            let registry = repo::registry_by_database_code(&mut c, database_code)
                .await?
                .filter(|r| r.mediator_trusted)
                .ok_or_else(|| Error::invalid("databaseId", format!("no database {database_code}")))?;
            self.served_in(&mut c, client, &registry).await?;
            let index = self.key_index(&registry, user_id);
            let mut usage = Vec::new();
            let rows = repo::records_by_key(&mut c, &registry.id, &index).await?;
            for row in rows.iter().rev() {
                let view = self.registries().open_record(&mut c, row).await?;
                if let Some(Value::Array(history)) = view.values.get(USAGE_HISTORY) {
                    usage.extend(history.iter().cloned());
                }
            }
            (usage, self.sharing().data_subject_in(&mut c, &registry, &index).await?)
        };
        // The connection is back in the pool before the ledger takes one.
        let entries =
            ledger::recent(&self.inner.db, Log::Audit, None, Some(&subject), 500).await.map_err(super::internal)?;
        for (idx, e) in entries.into_iter().rev().filter(|(_, e)| USES.iter().any(|a| e.is(*a))) {
            let reader = e.source.clone().or(e.actor.clone()).unwrap_or_default();
            let parts: Vec<&str> = reader.split('/').collect();
            let (institution, application) = match parts.as_slice() {
                [_, _, member, subsystem] => ((*member).to_string(), (*subsystem).to_string()),
                _ => (String::new(), String::new()),
            };
            usage.push(json!({
                "ID": idx.to_string(),
                "ReaderID": reader,
                "ReaderInitials": "",
                "ReaderInstitutionID": institution,
                "ReaderInstitutionName": institution,
                "ReaderApplicationName": application,
                "SearchDateTime": e.at,
                "Refrences": [{"ReferenceID": e.object.unwrap_or_default()}],
                "Action": e.action,
                "Purpose": e.purpose,
            }));
        }
        if usage.is_empty() {
            return Err(Error::NotFound("person"));
        }
        Ok(usage)
    }

    /// Loads the GovStack Digital Registries fixture (`test-data.json`): each registry it
    /// names (one object or a list; published once, owned by `department`, served to
    /// mediated systems) with its records reset to the fixture's, and the database
    /// descriptions.
    pub async fn load_registry_fixture(
        &self,
        cap: &Capability<RegistryManage>,
        department: &str,
        fixture: &Value,
        now: DateTime<Utc>,
    ) -> Result<FixtureLoad, Error> {
        let registries = match fixture.get("registries") {
            Some(Value::Array(list)) => list.iter().collect(),
            Some(one @ Value::Object(_)) => vec![one],
            _ => return Err(Error::invalid("registries", "a registry or a list of registries")),
        };
        let groups: &[Value] = match fixture.get("databases") {
            None => &[],
            Some(Value::Array(list)) => list,
            Some(_) => return Err(Error::invalid("databases", "a list of database descriptions")),
        };
        let mut load = FixtureLoad::default();
        for registry in registries {
            let (code, records) = self.load_fixture_registry(cap, department, registry, now).await?;
            load.registries.push(code);
            load.records += records;
        }
        let mut tx = self.inner.db.begin().await?;
        load.databases = self.databases().load_databases_in(&mut tx, cap, groups, now).await?;
        tx.commit().await?;
        Ok(load)
    }

    /// One registry of the fixture: its code and how many records it holds now.
    async fn load_fixture_registry(
        &self,
        cap: &Capability<RegistryManage>,
        department: &str,
        registry: &Value,
        now: DateTime<Utc>,
    ) -> Result<(String, usize), Error> {
        let text = |k: &'static str| {
            registry
                .get(k)
                .and_then(scalar_text)
                .filter(|s| !s.trim().is_empty())
                .ok_or_else(|| Error::invalid(k, "missing"))
        };
        let (code, version, database) = (text("registryname")?, text("versionnumber")?, text("databaseID")?);
        let version: i64 = version.trim().parse().map_err(|_| Error::invalid("versionnumber", "a number"))?;
        let records: Vec<&Map<String, Value>> = match registry.get("records") {
            None => Vec::new(),
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_object).collect(),
            Some(_) => return Err(Error::invalid("records", "a list of records")),
        };
        // Every field the records use, as text; `id` is the key, spelt as clients spell it.
        let mut names: Vec<String> = vec!["ID".into()];
        for r in &records {
            for k in r.keys() {
                if !k.eq_ignore_ascii_case("uuid")
                    && k != USAGE_HISTORY
                    && !names.iter().any(|n| n.eq_ignore_ascii_case(k))
                {
                    names.push(k.clone());
                }
            }
        }
        let current = {
            let mut c = self.conn().await?;
            repo::registry_by_code(&mut c, &code).await?
        };
        if current.as_ref().is_none_or(|r| r.version < version) {
            self.registries()
                .publish_registry(cap, fixture_spec(&code, department, &database, version, &names), now)
                .await?;
        }
        let mut tx = self.inner.db.begin().await?;
        let (row, compiled) = self.registries().registry_in(&mut tx, &code).await?;
        cap.check_department(&row.department_id)?;
        let sealer = self.inner.protector.sealer_in(&mut tx).await?;
        for r in &records {
            let id = r
                .get("uuid")
                .and_then(scalar_text)
                .ok_or_else(|| Error::invalid("records", "a record without uuid"))?;
            let mut values = canonical(&compiled, r, false);
            values.insert(USAGE_HISTORY.into(), r.get(USAGE_HISTORY).cloned().unwrap_or_else(|| json!([])));
            self.registries()
                .write_record_in(&mut tx, &sealer, &row, &compiled, Some(&id), Value::Object(values), now)
                .await?;
        }
        let mut entry = ledger::Entry::new(Action::RegistryFixtureLoaded, Outcome::Success, now);
        entry.actor = Some(cap.account_id().into());
        entry.object = Some(format!("registry:{code}"));
        entry.detail = Some(format!("{} record(s)", records.len()));
        ledger::append_in(&mut tx, Log::Audit, &entry).await?;
        tx.commit().await?;
        Ok((code, records.len()))
    }
}

/// The registry a GovStack fixture describes: its fields as text (personal data, L3), plus
/// the usage history it brought.
fn fixture_spec(code: &str, department: &str, database: &str, version: i64, names: &[String]) -> RegistrySpec {
    let mut properties = Map::new();
    let mut fields = Vec::new();
    for n in names {
        properties.insert(n.clone(), json!({"type": "string"}));
        fields.push(FieldEntry {
            name: n.clone(),
            title_zh: n.clone(),
            title_en: n.clone(),
            standard: None,
            code_table: None,
            classification: 3,
            sharing: SharingType::Conditional,
            legal_basis: Some("GovStack Digital Registries: served to mediated systems".into()),
            sensitive: true,
            mask: None,
        });
    }
    properties.insert(USAGE_HISTORY.into(), json!({"type": "array", "items": {"type": "object"}}));
    fields.push(FieldEntry {
        name: USAGE_HISTORY.into(),
        title_zh: "原系统使用记录".into(),
        title_en: "Usage history from the previous system".into(),
        standard: None,
        code_table: None,
        classification: 2,
        sharing: SharingType::None,
        legal_basis: Some("Kept for the person's own usage report".into()),
        sensitive: false,
        mask: None,
    });
    RegistrySpec {
        code: code.into(),
        name_zh: format!("GovStack 登记库 {database}"),
        name_en: format!("GovStack registry {database}"),
        department: department.into(),
        description: "Loaded from the GovStack Digital Registries fixture".into(),
        update_frequency: "realtime".into(),
        key_field: "ID".into(),
        key_domain: None,
        mediator_trusted: true,
        database_code: Some(database.into()),
        version: Some(version),
        schema: json!({"type": "object", "properties": properties, "required": ["ID"]}),
        fields,
    }
}
