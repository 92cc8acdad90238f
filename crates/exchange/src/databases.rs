//! The GovStack Digital Registries Database API: descriptions of registry databases
//! (schema, number format, flags, services), in groups, as registry systems exchange them.
//! They are kept in GovStack's own shape (DatabaseInfo, snake_case); every change and
//! deletion is on the `audit` ledger with the calling system.

use chrono::{DateTime, SecondsFormat, Utc};
use kernel::audit::{Action, Outcome};
use serde_json::{Map, Value, json};
use sqlx::AnyConnection;

use super::repo::{self, DatabaseGroupRow, DatabaseRow};
use super::{Error, Exchange, internal, set};
use identity::{CallingSystem, Capability};
use kernel::authz::RegistryManage;
use kernel::db::millis;
use ledger::{self, Log};

/// A change of a database's schema, or a new database (GovStack `modify`).
#[derive(Debug, Clone)]
pub struct DatabaseChange {
    /// The group (catalog) the database belongs to.
    pub catalog_name: Option<String>,
    pub group_name: Option<String>,
    /// The database's name (its acronym, `MCTS`).
    pub code: String,
    pub schema: Value,
}

fn info_of(row: &DatabaseRow) -> Result<Value, Error> {
    serde_json::from_str(&row.info).map_err(internal)
}

/// `1.1` becomes `1.2`; anything else gains a `.1`.
fn next_version(v: &str) -> String {
    match v.rsplit_once('.') {
        Some((major, minor)) if minor.parse::<u64>().is_ok() => {
            format!("{major}.{}", minor.parse::<u64>().unwrap_or(0).saturating_add(1))
        }
        _ if v.is_empty() => "1.0".into(),
        _ => format!("{v}.1"),
    }
}

fn group_json(g: &DatabaseGroupRow, databases: Vec<Value>) -> Value {
    json!({
        "id": g.id,
        "name": g.name,
        "code": g.code,
        "databases": databases,
        "group_id": g.group_id,
        "order": g.display_order,
        "data_index_increment": g.data_index_increment,
    })
}

kernel::area! {
    /// The GovStack Digital Registries Database API: descriptions of registry databases.
    RegistryDatabases of Exchange
}

impl RegistryDatabases<'_> {
    /// The first group with its databases (GovStack answers one group).
    pub async fn database_group(&self, _client: &CallingSystem) -> Result<Value, Error> {
        let mut c = self.conn().await?;
        let group = repo::database_groups(&mut c).await?.into_iter().next().ok_or(Error::NotFound("database group"))?;
        let mut databases = Vec::new();
        for row in repo::databases_of_group(&mut c, group.id).await? {
            databases.push(info_of(&row)?);
        }
        Ok(group_json(&group, databases))
    }

    pub async fn database(&self, _client: &CallingSystem, id: i64) -> Result<Value, Error> {
        let mut c = self.conn().await?;
        info_of(&repo::database(&mut c, id).await?.ok_or(Error::NotFound("database"))?)
    }

    /// Deletes a database description; one already gone is no error (deleting is
    /// idempotent), and nothing is recorded for it.
    pub async fn delete_database(&self, client: &CallingSystem, id: i64, now: DateTime<Utc>) -> Result<(), Error> {
        let mut tx = self.inner.db.begin().await?;
        let Some(row) = repo::database(&mut tx, id).await? else { return Ok(()) };
        repo::delete_database(&mut tx, id).await?;
        let mut entry = ledger::Entry::new(Action::RegistryDatabaseDeleted, Outcome::Success, now);
        entry.source = Some(client.as_str().into());
        entry.object = Some(format!("database:{id}"));
        entry.detail = Some(row.name);
        ledger::append_in(&mut tx, Log::Audit, &entry).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces the schema of the database named `code` (its version goes up), or adds the
    /// database to its group: the schema as stored.
    pub async fn modify_database(
        &self,
        client: &CallingSystem,
        change: DatabaseChange,
        now: DateTime<Utc>,
    ) -> Result<Value, Error> {
        let code = change.code.trim();
        if code.is_empty() || code.len() > 64 {
            return Err(Error::invalid("code", "the database's name, at most 64 characters"));
        }
        if !change.schema.is_object() {
            return Err(Error::invalid("schema", "a schema object"));
        }
        let at = now.to_rfc3339_opts(SecondsFormat::Micros, true);
        let mut tx = self.inner.db.begin().await?;
        let (row, action) = match repo::database_by_name(&mut tx, code).await? {
            Some(mut row) => {
                let mut info = info_of(&row)?;
                let version = info.get("version").and_then(Value::as_str).map(next_version).unwrap_or("1.0".into());
                set(&mut info, "version", Value::String(version));
                set(&mut info, "schema", change.schema.clone());
                set(&mut info, "modified_at", Value::String(at));
                set(&mut info, "by_user_name", Value::String(client.as_str().into()));
                row.info = info.to_string();
                row.modified_at = millis(now);
                (row, Action::RegistryDatabaseModified)
            }
            None => {
                let group = self.group_for_in(&mut tx, &change, code).await?;
                let id = repo::next_database_id(&mut tx).await?;
                let info = json!({
                    "id": id, "version": "1.0", "name": code,
                    "description": change.catalog_name.clone().unwrap_or_default(),
                    "institution": change.group_name.clone().unwrap_or_default(),
                    "number_format": "{code}{indexNoByCode}", "schema": change.schema,
                    "schema_tags": [], "schema_flags": [], "fields_uniques": [],
                    "is_draft": false, "is_disabled": false, "is_archived": false, "modified_at": at,
                    "by_user_name": client.as_str(), "by_user_auth_id": 0,
                    "by_on_behalf_of_user_auth_id": 0, "by_on_behalf_of_user_name": null,
                    "generic_services": [], "data_index_increment": 0, "has_logo": false,
                });
                let row = DatabaseRow {
                    id,
                    group_id: group,
                    name: code.into(),
                    info: info.to_string(),
                    modified_at: millis(now),
                };
                (row, Action::RegistryDatabaseCreated)
            }
        };
        repo::upsert_database(&mut tx, &row).await?;
        let mut entry = ledger::Entry::new(action, Outcome::Success, now);
        entry.source = Some(client.as_str().into());
        entry.object = Some(format!("database:{}", row.id));
        entry.detail = Some(row.name.clone());
        ledger::append_in(&mut tx, Log::Audit, &entry).await?;
        tx.commit().await?;
        Ok(change.schema)
    }

    /// The group a new database joins: the one named by the change, else the first, else a
    /// new group.
    async fn group_for_in(&self, c: &mut AnyConnection, change: &DatabaseChange, code: &str) -> Result<i64, Error> {
        let groups = repo::database_groups(c).await?;
        let named = |n: &Option<String>| {
            n.as_deref().and_then(|n| groups.iter().find(|g| g.name.eq_ignore_ascii_case(n.trim()) || g.code == n))
        };
        if let Some(g) = named(&change.catalog_name).or_else(|| named(&change.group_name)).or(groups.first()) {
            return Ok(g.id);
        }
        let group = DatabaseGroupRow {
            id: 1,
            name: change.catalog_name.clone().or(change.group_name.clone()).unwrap_or_else(|| code.into()),
            code: code.into(),
            group_id: 1,
            display_order: 1,
            data_index_increment: 0,
        };
        repo::upsert_database_group(c, &group).await?;
        Ok(group.id)
    }

    /// Loads GovStack database groups as a fixture gives them (each reset to the fixture's
    /// description; entries that are not objects, such as comments, are skipped).
    pub(super) async fn load_databases_in(
        &self,
        c: &mut AnyConnection,
        _cap: &Capability<RegistryManage>,
        groups: &[Value],
        now: DateTime<Utc>,
    ) -> Result<usize, Error> {
        let int = |v: &Value, k: &'static str| v.get(k).and_then(Value::as_i64).ok_or(Error::invalid(k, "a number"));
        let text = |v: &Value, k: &'static str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        let mut loaded = 0;
        for g in groups.iter().filter(|g| g.is_object()) {
            let group = DatabaseGroupRow {
                id: int(g, "id")?,
                name: text(g, "name"),
                code: text(g, "code"),
                group_id: g.get("group_id").and_then(Value::as_i64).unwrap_or(0),
                display_order: g.get("order").and_then(Value::as_i64).unwrap_or(0),
                data_index_increment: g.get("data_index_increment").and_then(Value::as_i64).unwrap_or(0),
            };
            repo::upsert_database_group(c, &group).await?;
            let databases: Vec<&Map<String, Value>> = g
                .get("databases")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_object).collect())
                .unwrap_or_default();
            for d in databases {
                let info = Value::Object(d.clone());
                let row = DatabaseRow {
                    id: int(&info, "id")?,
                    group_id: group.id,
                    name: text(&info, "name"),
                    info: info.to_string(),
                    modified_at: millis(now),
                };
                repo::upsert_database(c, &row).await?;
                loaded += 1;
            }
        }
        Ok(loaded)
    }
}
