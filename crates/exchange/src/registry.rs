//! Registries: publishing a versioned schema with its catalog, writing records (validated,
//! sensitive values sealed, the key blind-indexed), and opening them again.

use kernel::audit::{Action, Outcome};
use kernel::error::ErrorCode;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::AnyConnection;

use super::import::RowError;
use super::repo::{self, RecordRow, RegistryRow};
use super::{Compiled, Error, Exchange, FREQUENCIES, FieldEntry, RegistrySpec, SharingType, internal, lock};
use identity::Capability;
use kernel::authz::{OrganisationRead, RegistryManage};
use kernel::db::{from_millis, millis, new_id};
use ledger::{self, Log};
use protect::Sealer;

/// A registry and its catalog, as the resource catalog shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RegistryView {
    pub id: String,
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    pub department_id: String,
    pub department: String,
    pub description: String,
    pub update_frequency: String,
    pub key_field: String,
    pub version: i64,
    pub fields: Vec<FieldEntry>,
    /// The JSON Schema of the current version.
    #[schema(value_type = Object)]
    pub schema: Value,
    pub mediator_trusted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_code: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// What a de-identified release reads from a registry.
#[derive(Debug, Clone)]
pub struct Release<'a> {
    pub registry: &'a str,
    /// Fields opened as they are (the caller generalises them).
    pub fields: &'a [String],
    /// Fields replaced by a keyed hash.
    pub pseudonymised: &'a [String],
    /// Where the hashes hold: the same value hashes alike within it.
    pub pseudonym_domain: &'a str,
}

/// A record with its values opened.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RecordView {
    pub id: String,
    pub version: i64,
    #[schema(value_type = Object)]
    pub values: Map<String, Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn record_context(registry_id: &str, record_id: &str, field: &str) -> String {
    format!("registry_records:{registry_id}:{record_id}:{field}")
}

/// The key as it is indexed: trimmed, and an ID number's check letter upper-cased.
pub(super) fn normalize_key(domain: &str, value: &str) -> String {
    let v = value.trim();
    if domain == "id_number" { v.to_ascii_uppercase() } else { v.to_string() }
}

pub(super) fn key_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn check_spec(spec: &RegistrySpec) -> Result<(), Error> {
    let code_ok = |c: &str| {
        (2..=64).contains(&c.len()) && c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
    };
    if !code_ok(&spec.code) {
        return Err(Error::invalid("code", "2–64 letters, digits, _ or -"));
    }
    if spec.name_zh.trim().is_empty() || spec.name_en.trim().is_empty() {
        return Err(Error::invalid("name", "a name in Chinese and in English"));
    }
    if !FREQUENCIES.iter().any(|(f, _)| *f == spec.update_frequency) {
        return Err(Error::invalid("update_frequency", "realtime, daily, weekly, monthly, quarterly or yearly"));
    }
    if spec.schema.get("type").and_then(Value::as_str) != Some("object") {
        return Err(Error::invalid("schema", "a record schema is an object schema"));
    }
    let properties: Vec<&String> =
        spec.schema.get("properties").and_then(Value::as_object).map(|p| p.keys().collect()).unwrap_or_default();
    for p in &properties {
        if !spec.fields.iter().any(|f| &&f.name == p) {
            return Err(Error::invalid("fields", format!("property {p} has no catalog entry")));
        }
    }
    for f in &spec.fields {
        if !properties.contains(&&f.name) {
            return Err(Error::invalid("fields", format!("catalog entry {} is not a property of the schema", f.name)));
        }
        if !(1..=4).contains(&f.classification) {
            return Err(Error::invalid("fields", format!("{}: classification is 1 to 4", f.name)));
        }
        if f.sharing != SharingType::Unconditional && f.legal_basis.as_deref().is_none_or(|b| b.trim().is_empty()) {
            return Err(Error::invalid(
                "fields",
                format!("{}: conditional and not-shareable fields name their legal basis", f.name),
            ));
        }
        if let Some(m) = &f.mask
            && protect::Mask::parse(m).is_none()
        {
            return Err(Error::invalid(
                "fields",
                format!("{}: mask is id_number, mobile, name, address or full", f.name),
            ));
        }
    }
    if !spec.fields.iter().any(|f| f.name == spec.key_field) {
        return Err(Error::invalid("key_field", "the key field must be a field of the registry"));
    }
    Ok(())
}

fn compile(schema: &Value, fields: Vec<FieldEntry>) -> Result<Compiled, Error> {
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(schema)
        .map_err(|e| Error::invalid("schema", e.to_string()))?;
    Ok(Compiled { validator, schema: schema.clone(), fields })
}

kernel::area! {
    /// Base registries: publishing them with their schema and catalog, and the department's own reads and writes.
    Registries of Exchange
}

impl Registries<'_> {
    /// Publishes a registry, or a new version of it: the schema and catalog are checked,
    /// the version is kept, and the publication is on the `audit` ledger.
    pub async fn publish_registry(
        &self,
        cap: &Capability<RegistryManage>,
        spec: RegistrySpec,
        now: DateTime<Utc>,
    ) -> Result<RegistryView, Error> {
        check_spec(&spec)?;
        // Compile before writing: a schema that does not compile is refused whole.
        compile(&spec.schema, spec.fields.clone())?;
        let mut tx = self.inner.db.begin().await?;
        let department = self
            .inner
            .identity
            .organisation()
            .department_by_code_in(&mut tx, &spec.department)
            .await?
            .ok_or_else(|| Error::invalid("department", format!("no department {}", spec.department)))?;
        cap.check_department(&department.id)?;
        let existing = repo::registry_by_code(&mut tx, &spec.code).await?;
        if let Some(e) = &existing
            && e.department_id != department.id
        {
            return Err(Error::conflict(
                ErrorCode::RegistryExists,
                "another department owns a registry with this code",
            ));
        }
        let row = RegistryRow {
            id: existing.as_ref().map(|e| e.id.clone()).unwrap_or_else(new_id),
            code: spec.code.clone(),
            name_zh: spec.name_zh.trim().into(),
            name_en: spec.name_en.trim().into(),
            department_id: department.id.clone(),
            description: spec.description.trim().into(),
            update_frequency: spec.update_frequency.clone(),
            key_field: spec.key_field.clone(),
            key_domain: spec.key_domain.clone().unwrap_or_else(|| format!("{}.{}", spec.code, spec.key_field)),
            mediator_trusted: spec.mediator_trusted,
            database_code: spec.database_code.clone(),
            version: match (spec.version, &existing) {
                (Some(v), Some(e)) if v <= e.version => {
                    return Err(Error::invalid("version", format!("above the current version {}", e.version)));
                }
                (Some(v), _) if v < 1 => return Err(Error::invalid("version", "a positive number")),
                (Some(v), _) => v,
                (None, e) => e.as_ref().map(|e| e.version + 1).unwrap_or(1),
            },
            created_at: existing.as_ref().map(|e| e.created_at).unwrap_or(millis(now)),
            updated_at: millis(now),
        };
        repo::upsert_registry(&mut tx, &row).await?;
        let fields = serde_json::to_string(&spec.fields).map_err(internal)?;
        repo::insert_version(&mut tx, &row.id, row.version, &spec.schema.to_string(), &fields, millis(now)).await?;
        let mut entry = ledger::Entry::new(Action::RegistryPublished, Outcome::Success, now);
        entry.actor = Some(cap.account_id().into());
        entry.object = Some(format!("registry:{}", row.code));
        entry.detail = Some(format!("version {}", row.version));
        ledger::append_in(&mut tx, Log::Audit, &entry).await?;
        tx.commit().await?;
        Ok(RegistryView {
            id: row.id,
            code: row.code,
            name_zh: row.name_zh,
            name_en: row.name_en,
            department_id: row.department_id,
            department: department.name,
            description: row.description,
            update_frequency: row.update_frequency,
            key_field: row.key_field,
            version: row.version,
            fields: spec.fields,
            schema: spec.schema,
            mediator_trusted: row.mediator_trusted,
            database_code: row.database_code,
            updated_at: now,
        })
    }

    /// The resource catalog: every registry with its current fields. Any staff member may
    /// browse it (the catalog holds no personal data).
    pub async fn catalog(&self, _cap: &Capability<OrganisationRead>) -> Result<Vec<RegistryView>, Error> {
        self.registries_where(|_| true).await
    }

    /// The registries the caller may publish and import into: their department's (every
    /// registry for the console).
    pub async fn registries_to_manage(&self, cap: &Capability<RegistryManage>) -> Result<Vec<RegistryView>, Error> {
        self.registries_where(|r| cap.check_department(&r.department_id).is_ok()).await
    }

    async fn registries_where(&self, keep: impl Fn(&RegistryRow) -> bool) -> Result<Vec<RegistryView>, Error> {
        let mut c = self.conn().await?;
        let rows = repo::registries(&mut c).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows.into_iter().filter(|r| keep(r)) {
            out.push(self.view_in(&mut c, row).await?);
        }
        Ok(out)
    }

    /// One registry of the catalog.
    pub async fn registry(&self, _cap: &Capability<OrganisationRead>, code: &str) -> Result<RegistryView, Error> {
        let mut c = self.conn().await?;
        let row = repo::registry_by_code(&mut c, code).await?.ok_or(Error::NotFound("registry"))?;
        self.view_in(&mut c, row).await
    }

    pub(super) async fn view_in(&self, c: &mut AnyConnection, row: RegistryRow) -> Result<RegistryView, Error> {
        let (schema, fields) =
            repo::version(c, &row.id, row.version).await?.ok_or(Error::NotFound("registry version"))?;
        let department = super::department_name(&self.inner.identity, c, &row.department_id).await?;
        Ok(RegistryView {
            id: row.id,
            code: row.code,
            name_zh: row.name_zh,
            name_en: row.name_en,
            department_id: row.department_id,
            department,
            description: row.description,
            update_frequency: row.update_frequency,
            key_field: row.key_field,
            version: row.version,
            fields: serde_json::from_str(&fields).map_err(internal)?,
            schema: serde_json::from_str(&schema).map_err(internal)?,
            mediator_trusted: row.mediator_trusted,
            database_code: row.database_code,
            updated_at: from_millis(row.updated_at),
        })
    }

    /// A registry version, compiled once and kept (versions never change once stored).
    pub(super) async fn compiled_in(
        &self,
        c: &mut AnyConnection,
        registry_id: &str,
        version: i64,
    ) -> Result<Arc<Compiled>, Error> {
        let key = (registry_id.to_string(), version);
        if let Some(found) = lock(&self.inner.compiled).get(&key) {
            return Ok(found.clone());
        }
        let (schema, fields) =
            repo::version(c, registry_id, version).await?.ok_or(Error::NotFound("registry version"))?;
        let schema: Value = serde_json::from_str(&schema).map_err(internal)?;
        let fields: Vec<FieldEntry> = serde_json::from_str(&fields).map_err(internal)?;
        let compiled = Arc::new(compile(&schema, fields)?);
        lock(&self.inner.compiled).insert(key, compiled.clone());
        Ok(compiled)
    }

    pub(super) async fn registry_in(
        &self,
        c: &mut AnyConnection,
        code: &str,
    ) -> Result<(RegistryRow, Arc<Compiled>), Error> {
        let row = repo::registry_by_code(c, code).await?.ok_or(Error::NotFound("registry"))?;
        let compiled = self.compiled_in(c, &row.id, row.version).await?;
        Ok((row, compiled))
    }

    /// Writes one record (a new one, or the record `id` replaced), validated against the
    /// registry's current schema. Only the owning department writes.
    pub async fn put_record(
        &self,
        cap: &Capability<RegistryManage>,
        code: &str,
        id: Option<&str>,
        values: Value,
        now: DateTime<Utc>,
    ) -> Result<String, Error> {
        let mut tx = self.inner.db.begin().await?;
        let (registry, compiled) = self.registry_in(&mut tx, code).await?;
        cap.check_department(&registry.department_id)?;
        let sealer = self.inner.protector.sealer_in(&mut tx).await?;
        let id = self.write_record_in(&mut tx, &sealer, &registry, &compiled, id, values, now).await?;
        let mut entry = ledger::Entry::new(Action::RegistryRecordWritten, Outcome::Success, now);
        entry.actor = Some(cap.account_id().into());
        entry.object = Some(format!("registry:{}:{id}", registry.code));
        ledger::append_in(&mut tx, Log::Audit, &entry).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Validates, seals and stores a record on the caller's transaction (no audit entry:
    /// the caller writes the one that fits).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn write_record_in(
        &self,
        c: &mut AnyConnection,
        sealer: &Sealer,
        registry: &RegistryRow,
        compiled: &Compiled,
        id: Option<&str>,
        values: Value,
        now: DateTime<Utc>,
    ) -> Result<String, Error> {
        let existing = match id {
            Some(id) => repo::record(c, &registry.id, id).await?,
            None => None,
        };
        let id = id.map(str::to_string).unwrap_or_else(new_id);
        let (key_index, body) = self.seal_record(sealer, registry, compiled, &id, &values).map_err(Error::Record)?;
        let row = RecordRow {
            id: id.clone(),
            registry_id: registry.id.clone(),
            version: registry.version,
            key_index,
            body,
            key_id: Some(sealer.key_id().to_string()),
            seq: match &existing {
                Some(e) => e.seq,
                None => repo::next_seq(c, &registry.id).await?,
            },
            created_at: existing.as_ref().map(|e| e.created_at).unwrap_or(millis(now)),
            updated_at: millis(now),
        };
        if existing.is_some() {
            repo::update_record(c, &row).await?;
        } else {
            repo::insert_records(c, std::slice::from_ref(&row)).await?;
        }
        Ok(id)
    }

    /// Checks a record against its schema and seals its sensitive values: (key index, body).
    pub(super) fn seal_record(
        &self,
        sealer: &Sealer,
        registry: &RegistryRow,
        compiled: &Compiled,
        record_id: &str,
        values: &Value,
    ) -> Result<(String, String), Vec<RowError>> {
        let errors: Vec<RowError> = compiled
            .validator
            .iter_errors(values)
            .map(|e| {
                let column = match e.kind() {
                    jsonschema::error::ValidationErrorKind::Required { property } => {
                        property.as_str().map(str::to_string).unwrap_or_default()
                    }
                    _ => {
                        e.instance_path().as_str().trim_start_matches('/').split('/').next().unwrap_or_default().into()
                    }
                };
                RowError { row: 0, column, reason: e.to_string() }
            })
            .collect();
        if !errors.is_empty() {
            return Err(errors);
        }
        let Some(object) = values.as_object() else {
            return Err(vec![RowError { row: 0, column: String::new(), reason: "a record is an object".into() }]);
        };
        let Some(key) = object.get(&registry.key_field).and_then(key_text) else {
            return Err(vec![RowError {
                row: 0,
                column: registry.key_field.clone(),
                reason: "the key is missing".into(),
            }]);
        };
        let key_index =
            self.inner.protector.blind_index(&registry.key_domain, &normalize_key(&registry.key_domain, &key));
        let mut body = Map::with_capacity(object.len());
        for (name, value) in object {
            let sealed = compiled.field(name).is_some_and(FieldEntry::sealed) && !value.is_null();
            if sealed {
                let plain = value.to_string();
                let s = sealer.seal(&plain, &record_context(&registry.id, record_id, name)).map_err(|e| {
                    vec![RowError { row: 0, column: name.clone(), reason: format!("cannot seal: {e}") }]
                })?;
                body.insert(name.clone(), Value::String(s));
            } else {
                body.insert(name.clone(), value.clone());
            }
        }
        Ok((key_index, Value::Object(body).to_string()))
    }

    /// A stored record with its sealed values opened.
    pub(super) async fn open_record(&self, c: &mut AnyConnection, row: &RecordRow) -> Result<RecordView, Error> {
        let compiled = self.compiled_in(c, &row.registry_id, row.version).await?;
        let body: Map<String, Value> = serde_json::from_str(&row.body).map_err(internal)?;
        let mut values = Map::with_capacity(body.len());
        for (name, value) in body {
            let opened = match (compiled.field(&name).is_some_and(FieldEntry::sealed), &value) {
                (true, Value::String(sealed)) => {
                    let plain = self
                        .inner
                        .protector
                        .open_in(c, sealed, &record_context(&row.registry_id, &row.id, &name))
                        .await?;
                    serde_json::from_str(&plain).map_err(internal)?
                }
                _ => value,
            };
            values.insert(name, opened);
        }
        Ok(RecordView {
            id: row.id.clone(),
            version: row.version,
            values,
            created_at: from_millis(row.created_at),
            updated_at: from_millis(row.updated_at),
        })
    }

    /// Every record of a registry of the caller's department, for a de-identified release
    /// (数据开放): only `fields` are opened; the values of `pseudonymised` fields are replaced
    /// by a keyed hash in `pseudonym_domain`, the same for the same value within the domain
    /// and not recomputable without the platform's key. Rows reach `sink` one at a time, in
    /// insertion order, so a million records are never held at once. One audit entry
    /// records the release.
    pub async fn release(
        &self,
        cap: &Capability<RegistryManage>,
        release: &Release<'_>,
        now: DateTime<Utc>,
        mut sink: impl FnMut(Map<String, Value>) -> Result<(), Error>,
    ) -> Result<u64, Error> {
        let mut c = self.conn().await?;
        let (registry, compiled) = self.registry_in(&mut c, release.registry).await?;
        cap.check_department(&registry.department_id)?;
        for name in release.fields.iter().chain(release.pseudonymised) {
            if compiled.field(name).is_none() {
                return Err(Error::invalid("fields", format!("the registry has no field {name}")));
            }
        }
        let mut after = 0;
        let mut released = 0u64;
        loop {
            let batch = repo::records_after(&mut c, &registry.id, after, 1000).await?;
            let Some(last) = batch.last() else { break };
            after = last.seq;
            for row in &batch {
                let mut body: Map<String, Value> = serde_json::from_str(&row.body).map_err(internal)?;
                let mut out = Map::with_capacity(release.fields.len() + release.pseudonymised.len());
                for name in release.fields.iter().chain(release.pseudonymised) {
                    let Some(value) = body.remove(name.as_str()) else { continue };
                    let value = match (compiled.field(name).is_some_and(FieldEntry::sealed), value) {
                        (true, Value::String(sealed)) => {
                            let context = record_context(&row.registry_id, &row.id, name);
                            let plain = self.inner.protector.open_in(&mut c, &sealed, &context).await?;
                            serde_json::from_str(&plain).map_err(internal)?
                        }
                        (_, value) => value,
                    };
                    let value = if release.pseudonymised.contains(name) {
                        let text = key_text(&value).unwrap_or_else(|| value.to_string());
                        let domain = format!("{}:{name}", release.pseudonym_domain);
                        Value::String(self.inner.protector.blind_index(&domain, &text).chars().take(16).collect())
                    } else {
                        value
                    };
                    out.insert(name.clone(), value);
                }
                sink(out)?;
                released += 1;
            }
        }
        let mut entry = ledger::Entry::new(Action::RegistryReleased, Outcome::Success, now);
        entry.actor = Some(cap.account_id().into());
        entry.object = Some(format!("registry:{}", registry.code));
        entry.detail = Some(format!("{released} record(s) for {}", release.pseudonym_domain));
        ledger::append(&mut c, Log::Audit, &entry).await?;
        Ok(released)
    }

    /// The owning department's view of the records with this key (newest first).
    pub async fn records_by_key(
        &self,
        cap: &Capability<RegistryManage>,
        code: &str,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<RecordView>, Error> {
        let mut c = self.conn().await?;
        let (registry, _) = self.registry_in(&mut c, code).await?;
        cap.check_department(&registry.department_id)?;
        let index = self.inner.protector.blind_index(&registry.key_domain, &normalize_key(&registry.key_domain, key));
        let rows = repo::records_by_key(&mut c, &registry.id, &index).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(self.open_record(&mut c, row).await?);
        }
        // The owner's own reads are personal-data reads too: the person sees them.
        let subject = self.sharing().subject_in(&mut c, &registry, &index).await?;
        let mut entry = ledger::Entry::new(Action::RegistryRecordRead, Outcome::Success, now);
        entry.actor = Some(cap.account_id().into());
        entry.subject = subject;
        entry.object = Some(format!("registry:{}", registry.code));
        entry.detail = Some(format!("{} record(s) by key", out.len()));
        ledger::append(&mut c, Log::Audit, &entry).await?;
        Ok(out)
    }
}
