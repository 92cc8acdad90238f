//! GovStack fixture data (the building block's `test-data.json`) loaded into the catalog,
//! the application files and the tasks.

use super::*;

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
        let mut counts = FixtureCounts::default();
        // The whole file is checked before anything loads: a part that is absent is empty,
        // one of the wrong shape is refused.
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
        let required = |entry: &Map<String, Value>, list: &'static str, key: &str| -> Result<String, Error> {
            entry
                .get(key)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| Error::invalid(list, "an entry lacks its id"))
        };
        let (services, applications, tasks) = (list("services")?, list("applications")?, list("tasks")?);
        for s in &services {
            required(s, "services", "id")?;
        }
        for a in &applications {
            required(a, "applications", "fileId")?;
        }
        for t in &tasks {
            required(t, "tasks", "taskId")?;
            required(t, "tasks", "fileId")?;
        }
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
            counts.services += 1;
        }
        let mut tx = self.inner.db.begin().await?;
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
            if repo::insert_registration_file(&mut tx, &row).await? {
                counts.applications += 1;
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
                repo::insert_registration_task(&mut tx, &t).await?;
            }
        }
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
            if repo::insert_registration_task(&mut tx, &row).await? {
                counts.tasks += 1;
            }
        }
        tx.commit().await?;
        Ok(counts)
    }
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
