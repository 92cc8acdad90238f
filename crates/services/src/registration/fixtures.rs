//! GovStack fixture data (the building block's `test-data.json`) loaded into the catalog,
//! the application files and the tasks.

use super::*;
use sqlx::AnyConnection;

impl Registration<'_> {
    /// Loads GovStack fixture data (the building block's `test-data.json`): its services are
    /// published in the catalog with their descriptors and eForms, its files and tasks kept
    /// as given. Loading again changes nothing.
    pub async fn load_registration_fixtures(
        &self,
        cap: &Capability<ServiceManage>,
        fixtures: &Value,
        now: DateTime<Utc>,
    ) -> Result<FixtureCounts, Error> {
        let file = FixtureFile::read(fixtures)?;
        let services = self.load_fixture_services(cap, file.services, now).await?;
        let mut tx = self.inner.db.begin().await?;
        let applications = load_fixture_applications(&mut tx, file.applications, now).await?;
        let tasks = load_fixture_tasks(&mut tx, file.tasks, now).await?;
        tx.commit().await?;
        Ok(FixtureCounts { services, applications, tasks })
    }

    /// Publishes each fixture service in the catalog with its descriptor and eForms.
    async fn load_fixture_services(
        &self,
        cap: &Capability<ServiceManage>,
        services: Vec<Map<String, Value>>,
        now: DateTime<Utc>,
    ) -> Result<usize, Error> {
        let mut loaded = 0;
        for s in services {
            let id = required(&s, "services", "id")?;
            let name = s.get("name").and_then(Value::as_str).unwrap_or(&id);
            let published = self.publish_service(cap, Some(&id), fixture_spec(&id, name), now).await?;
            let mut descriptor = s.clone();
            let eforms = descriptor.remove("eForms");
            descriptor.remove("id");
            let mut tx = self.inner.db.begin().await?;
            repo::upsert_registration_service(&mut tx, &published.id, &Value::Object(descriptor).to_string()).await?;
            for e in eforms.as_ref().and_then(Value::as_array).into_iter().flatten() {
                if let Some(eid) = e.get("eFormId").and_then(Value::as_str) {
                    repo::insert_registration_eform(&mut tx, eid, &published.id, &e.to_string()).await?;
                }
            }
            tx.commit().await?;
            loaded += 1;
        }
        Ok(loaded)
    }
}

/// A fixture file's parts, checked whole before anything loads: a part that is absent is
/// empty, one of the wrong shape is refused, and every entry has its ids.
struct FixtureFile {
    services: Vec<Map<String, Value>>,
    applications: Vec<Map<String, Value>>,
    tasks: Vec<Map<String, Value>>,
}

impl FixtureFile {
    fn read(fixtures: &Value) -> Result<FixtureFile, Error> {
        let list = |key: &'static str| -> Result<Vec<Map<String, Value>>, Error> {
            match fixtures.get(key) {
                None => Ok(Vec::new()),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|v| v.as_object().cloned().ok_or_else(|| Error::invalid(key, "each entry must be an object")))
                    .collect(),
                Some(_) => Err(Error::invalid(key, "must be a list")),
            }
        };
        let file =
            FixtureFile { services: list("services")?, applications: list("applications")?, tasks: list("tasks")? };
        for s in &file.services {
            required(s, "services", "id")?;
        }
        for a in &file.applications {
            required(a, "applications", "fileId")?;
        }
        for t in &file.tasks {
            required(t, "tasks", "taskId")?;
            required(t, "tasks", "fileId")?;
        }
        Ok(file)
    }
}

/// An id an entry of `list` must have.
fn required(entry: &Map<String, Value>, list: &'static str, key: &str) -> Result<String, Error> {
    entry
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| Error::invalid(list, "an entry lacks its id"))
}

/// Keeps the fixture's application files as given, with the main task each names; returns
/// how many were new.
async fn load_fixture_applications(
    tx: &mut AnyConnection,
    applications: Vec<Map<String, Value>>,
    now: DateTime<Utc>,
) -> Result<usize, Error> {
    let mut loaded = 0;
    for a in applications {
        let file_id = required(&a, "applications", "fileId")?;
        // Descriptive fields the fixture may leave out.
        let text = |k: &str| a.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        let created = parse_time(a.get("created")).unwrap_or(millis(now));
        let mut body = Map::new();
        for key in ["applicationName", "description", "documentUrls", "additionalMeta"] {
            if let Some(v) = a.get(key) {
                body.insert(key.into(), v.clone());
            }
        }
        if let Some(e) = a.get("eformId") {
            body.insert("formData".into(), json!({"data": {}, "eFormId": e}));
        }
        let row = repo::RegistrationFileRow {
            file_id: file_id.clone(),
            service_id: text("serviceId"),
            service_name: text("serviceName"),
            applicant_id: text("applicantId"),
            body: Value::Object(body).to_string(),
            sealed_data: None,
            status: fixture_status(&a),
            client: None,
            created_at: created,
            updated_at: millis(now),
        };
        if repo::insert_registration_file(tx, &row).await? {
            loaded += 1;
        }
        if let Some(main) = a.get("mainTaskId").and_then(Value::as_str) {
            let mut task = Map::new();
            for (from, to) in [
                ("taskTitle", "taskName"),
                ("roleId", "roleId"),
                ("roleName", "roleName"),
                ("operatorName", "operatorName"),
                ("serviceId", "serviceId"),
                ("serviceName", "serviceName"),
                ("description", "description"),
            ] {
                if let Some(v) = a.get(from) {
                    task.insert(to.into(), v.clone());
                }
            }
            if let Some(e) = a.get("eformId") {
                task.insert("eFormId".into(), e.clone());
            }
            let t = repo::RegistrationTaskRow {
                task_id: main.into(),
                file_id: file_id.clone(),
                main_task_id: Some(main.into()),
                assignee_id: a.get("assigneeId").and_then(Value::as_str).map(str::to_string),
                body: Value::Object(task).to_string(),
                status: PENDING.into(),
                created_at: created,
                completed_at: None,
            };
            repo::insert_registration_task(tx, &t).await?;
        }
    }
    Ok(loaded)
}

/// Keeps the fixture's tasks as given; returns how many were new.
async fn load_fixture_tasks(
    tx: &mut AnyConnection,
    tasks: Vec<Map<String, Value>>,
    now: DateTime<Utc>,
) -> Result<usize, Error> {
    let mut loaded = 0;
    for t in tasks {
        let task_id = required(&t, "tasks", "taskId")?;
        let file_id = required(&t, "tasks", "fileId")?;
        let mut body = t.clone();
        for key in ["taskId", "fileId", "mainTaskId", "assigneeId", "created", "status"] {
            body.remove(key);
        }
        let row = repo::RegistrationTaskRow {
            task_id,
            file_id,
            main_task_id: t.get("mainTaskId").and_then(Value::as_str).map(str::to_string),
            assignee_id: t.get("assigneeId").and_then(Value::as_str).map(str::to_string),
            body: Value::Object(body).to_string(),
            status: fixture_status(&t),
            created_at: parse_time(t.get("created")).unwrap_or(millis(now)),
            completed_at: None,
        };
        if repo::insert_registration_task(tx, &row).await? {
            loaded += 1;
        }
    }
    Ok(loaded)
}

/// An entry's `status.code`; one without a status is pending.
fn fixture_status(entry: &Map<String, Value>) -> String {
    entry.get("status").and_then(|s| s.get("code")).and_then(Value::as_str).unwrap_or(PENDING).into()
}

/// What a fixture load added.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FixtureCounts {
    pub services: usize,
    pub applications: usize,
    pub tasks: usize,
}

/// A catalog entry for a service a GovStack client defines: fully online, handled by the
/// provincial data administration, with an open form (the client's eForm describes it).
fn fixture_spec(id: &str, name: &str) -> ServiceSpec {
    let code: String = id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(36).collect();
    ServiceSpec {
        code: format!("GS-{code}"),
        name_zh: name.chars().take(100).collect(),
        name_en: name.into(),
        department: "SG".into(),
        level: Level::Province,
        audience: Audience::Citizen,
        category_zh: "GovStack 接入事项".into(),
        category_en: "GovStack services".into(),
        events: Vec::new(),
        legal_basis: "GovStack Registration building block".into(),
        conditions_zh: "由接入系统办理。".into(),
        conditions_en: "Handled by the connected system.".into(),
        materials: Vec::new(),
        statutory_days: 20,
        committed_days: 10,
        handling: Handling::Promise,
        fee_zh: "不收费".into(),
        fee_en: "Free".into(),
        fee_yuan: 0.0,
        channels: vec![Channel::Online],
        visits: 0,
        depth: Depth::Online,
        workflow: "standard".into(),
        certificate: None,
        form: json!({"type": "object", "properties": {}}),
    }
}
