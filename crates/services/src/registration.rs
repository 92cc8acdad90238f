//! The GovStack Registration building block over the same catalog and forms: other systems,
//! calling through the Information Mediator, list services and eForms, submit application
//! files (validated against the service's form, sensitive values sealed), and work their
//! tasks; leaders get statistics. Files and tasks live in the tables of migration 0009.
//!
//! Trust: the Information Mediator (an X-Road security server) authenticates the calling
//! system; this module records the `Information-Mediator-Client` it names on every write and
//! in the audit ledger.

mod fixtures;

pub use fixtures::FixtureCounts;

use chrono::{DateTime, NaiveDate, SecondsFormat, TimeZone, Utc};
use kernel::audit::{Action, Outcome};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::applications::stored_phase;
use super::catalog::{Audience, Channel, Depth, Handling, Level, ServiceSpec};
use super::workflow::Phase;
use super::{Error, PublishedService, Services, internal, repo};
use identity::{CallingSystem, Capability};
use kernel::authz::ServiceManage;
use kernel::db::{millis, new_id};
use ledger::{self, Log};

/// A GovStack file status.
const PENDING: &str = "PENDING";
const APPROVED: &str = "APPROVED";
const SENDBACK: &str = "SENDBACK";
const REJECTED: &str = "REJECTED";

fn status(code: &str) -> Value {
    let title = match code {
        APPROVED => "Approved",
        SENDBACK => "Sent back",
        REJECTED => "Rejected",
        "COMPLETED" => "Completed",
        _ => "Pending",
    };
    json!({ "code": code, "title": title })
}

fn rfc3339(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_time(v: Option<&Value>) -> Option<i64> {
    v.and_then(Value::as_str).and_then(|s| DateTime::parse_from_rfc3339(s).ok()).map(|t| t.timestamp_millis())
}

/// What a client submits or an operator updates (`applicationFileSubmit`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileSubmission {
    pub applicant_id: String,
    #[serde(default)]
    pub application_name: Option<String>,
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub form_data: Option<FormData>,
    #[serde(default)]
    pub document_urls: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FormData {
    #[serde(default)]
    pub data: Map<String, Value>,
    #[serde(default, rename = "eFormId")]
    pub e_form_id: Option<String>,
}

/// Paging and filters of the file and task lists.
#[derive(Debug, Default, Clone)]
pub struct ListQuery {
    pub service_id: Option<String>,
    pub applicant_id: Option<String>,
    pub file_id: Option<String>,
    pub main_task_id: Option<String>,
    pub assignee_id: Option<String>,
    pub first_result: Option<i64>,
    pub max_result: Option<i64>,
    pub newest_first: bool,
}

impl ListQuery {
    fn page(&self) -> (i64, i64) {
        (self.first_result.unwrap_or(0).max(0), self.max_result.unwrap_or(100).clamp(1, 1000))
    }
}

/// The statistics query; unparsable values are echoed but do not filter.
#[derive(Debug, Default, Clone)]
pub struct StatisticsQuery {
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    pub registration_name: Option<String>,
    pub operator: Option<String>,
    pub role: Option<String>,
    pub timeframe: Option<String>,
}

fn clean(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

kernel::area! {
    /// The GovStack Registration building block: services, eForms, application files, tasks and statistics.
    Registration of Services
}

impl Registration<'_> {
    /// A service as GovStack describes it: its own descriptor when a client registered one,
    /// else one derived from the guide.
    async fn registration_service_view(&self, s: &PublishedService) -> Result<Value, Error> {
        let mut c = self.conn().await?;
        if let Some(body) = repo::registration_service(&mut c, &s.id).await? {
            let mut v: Map<String, Value> = serde_json::from_str(&body).map_err(internal)?;
            v.insert("id".into(), json!(s.id));
            v.insert("name".into(), json!(s.spec.name_en));
            return Ok(Value::Object(v));
        }
        let spec = &s.spec;
        Ok(json!({
            "id": s.id,
            "name": spec.name_zh,
            "version": s.version.to_string(),
            "type": "Public",
            "isExecutable": spec.depth == Depth::Online,
            "isClosed": false,
            "description": spec.conditions_zh,
            "serviceBody": [
                {"code": "code", "value": spec.code},
                {"code": "name_en", "value": spec.name_en},
                {"code": "department", "value": spec.department},
                {"code": "legal_basis", "value": spec.legal_basis},
                {"code": "committed_days", "value": spec.committed_days.to_string()},
            ],
        }))
    }

    /// Published services, optionally only those named exactly `name` (in Chinese or English).
    pub async fn registration_services(&self, name: Option<&str>) -> Result<Vec<Value>, Error> {
        let name = clean(name);
        let mut out = Vec::new();
        for summary in self.search("", usize::MAX).await? {
            if name.is_some_and(|n| n != summary.name_zh && n != summary.name_en) {
                continue;
            }
            let s = self.service(&summary.id).await?;
            let mut v = self.registration_service_view(&s).await?;
            if let (Some(n), Some(obj)) = (name, v.as_object_mut()) {
                obj.insert("name".into(), json!(n));
            }
            out.push(v);
        }
        Ok(out)
    }

    pub async fn registration_service(&self, id: &str) -> Result<Value, Error> {
        let s = self.service(id).await?;
        self.registration_service_view(&s).await
    }

    /// The eForms of a service: those a client registered, else the service's own form.
    pub async fn registration_eforms(&self, service_id: &str) -> Result<Vec<Value>, Error> {
        let s = self.service(service_id).await?;
        let mut c = self.conn().await?;
        let registered = repo::registration_eforms_of(&mut c, &s.id).await?;
        if registered.is_empty() {
            return Ok(vec![json!({
                "eFormId": s.form_id,
                "name": s.spec.name_zh,
                "description": s.spec.name_en,
                "version": s.version.to_string(),
                "latest": true,
            })]);
        }
        registered
            .iter()
            .map(|b| {
                let mut v: Map<String, Value> = serde_json::from_str(b).map_err(internal)?;
                v.remove("schema");
                Ok(Value::Object(v))
            })
            .collect()
    }

    pub async fn registration_eform(&self, eform_id: &str) -> Result<Value, Error> {
        let mut c = self.conn().await?;
        if let Some(body) = repo::registration_eform(&mut c, eform_id).await? {
            return serde_json::from_str(&body).map_err(internal);
        }
        drop(c);
        let s = self.service_of_form(eform_id).await?;
        let form = self.form(eform_id).await?;
        let current = self.service(&s.id).await.map(|p| p.form_id == eform_id).unwrap_or(false);
        Ok(json!({
            "eFormId": eform_id,
            "name": s.spec.name_zh,
            "description": s.spec.name_en,
            "version": s.version.to_string(),
            "latest": current,
            "schema": form.schema,
        }))
    }

    /// Submits an application file to a published service. Form data is validated against the
    /// service's form when it has fields; sensitive values are sealed.
    pub async fn registration_submit(
        &self,
        client: Option<&CallingSystem>,
        service_id: &str,
        submission: FileSubmission,
        now: DateTime<Utc>,
    ) -> Result<Value, Error> {
        let service = self.service(service_id).await?;
        let applicant_id = submission.applicant_id.trim().to_string();
        if applicant_id.is_empty() || applicant_id.len() > 200 {
            return Err(Error::invalid("applicantId", "the applicant's id, at most 200 characters"));
        }
        let file_id = new_id();
        let (body, sealed) = self.registration_body(&service, &file_id, &submission).await?;
        let created = parse_time(body.get("created")).unwrap_or(millis(now));
        let row = repo::RegistrationFileRow {
            file_id: file_id.clone(),
            service_id: service.id.clone(),
            service_name: service.spec.name_zh.clone(),
            applicant_id,
            body: serde_json::to_string(&body).map_err(internal)?,
            sealed_data: sealed,
            status: PENDING.into(),
            client: client.map(|c| c.as_str().to_string()),
            created_at: created,
            updated_at: millis(now),
        };
        let task = repo::RegistrationTaskRow {
            task_id: new_id(),
            file_id: file_id.clone(),
            main_task_id: Some(file_id.clone()),
            assignee_id: None,
            body: json!({
                "taskName": "审查申请 Review the application",
                "name": "review",
                "roleName": "Registrar",
                "roleId": "registrar",
                "description": format!("{} — {}", service.spec.name_zh, service.spec.name_en),
                "serviceId": service.id,
                "serviceName": service.spec.name_zh,
                "eFormId": service.form_id,
                "formVariables": {},
                "data": {},
            })
            .to_string(),
            status: PENDING.into(),
            created_at: millis(now),
            completed_at: None,
        };
        let mut tx = self.inner.db.begin().await?;
        repo::insert_registration_file(&mut tx, &row).await?;
        repo::insert_registration_task(&mut tx, &task).await?;
        let mut entry = ledger::Entry::new(Action::RegistrationFileSubmitted, Outcome::Success, now);
        entry.actor = Some(client.map(|c| c.as_str().to_string()).unwrap_or_else(|| "govstack".into()));
        entry.object = Some(format!("registration_file:{file_id}"));
        entry.detail = Some(format!("service {}", service.spec.code));
        ledger::append_in(&mut tx, Log::Audit, &entry).await?;
        tx.commit().await?;
        self.registration_file(&file_id).await
    }

    /// The stored application data: plain values in the body, sensitive form values sealed.
    async fn registration_body(
        &self,
        service: &PublishedService,
        file_id: &str,
        s: &FileSubmission,
    ) -> Result<(Map<String, Value>, Option<String>), Error> {
        let mut body = Map::new();
        body.insert("applicantId".into(), json!(s.applicant_id.trim()));
        if let Some(n) = clean(s.application_name.as_deref()) {
            body.insert("applicationName".into(), json!(n.chars().take(200).collect::<String>()));
        }
        if let Some(c) = clean(s.created.as_deref()) {
            if DateTime::parse_from_rfc3339(c).is_err() {
                return Err(Error::invalid("created", "a date-time such as 2026-11-21T09:00:00.000Z"));
            }
            body.insert("created".into(), json!(c));
        }
        if s.document_urls.len() > 100 || s.document_urls.iter().any(|u| u.len() > 2000) {
            return Err(Error::invalid("documentUrls", "at most 100 links of at most 2000 characters"));
        }
        body.insert("documentUrls".into(), json!(s.document_urls));
        let mut sealed = None;
        if let Some(fd) = &s.form_data {
            let form = self.form(&service.form_id).await?;
            let data = Value::Object(fd.data.clone());
            let (plain, sensitive) = if form.fields.is_empty() {
                (fd.data.clone(), Map::new())
            } else {
                form.validate(&data).map_err(Error::Form)?;
                form.split_sensitive(&data)
            };
            if !sensitive.is_empty() {
                let text = serde_json::to_string(&sensitive).map_err(internal)?;
                let context = format!("registration_files:sealed_data:{file_id}");
                sealed = Some(self.inner.identity.protector().seal(&text, &context).await.map_err(internal)?);
            }
            let mut form_data = Map::new();
            form_data.insert("data".into(), Value::Object(plain));
            form_data.insert("eFormId".into(), json!(fd.e_form_id.clone().unwrap_or_else(|| service.form_id.clone())));
            body.insert("formData".into(), Value::Object(form_data));
        }
        Ok((body, sealed))
    }

    /// A file as `applicationFileResponse`, its sensitive values opened.
    pub async fn registration_file(&self, file_id: &str) -> Result<Value, Error> {
        let mut c = self.conn().await?;
        let row = repo::registration_file(&mut c, file_id).await?.ok_or(Error::NotFound("application file"))?;
        drop(c);
        self.file_response(&row).await
    }

    async fn file_response(&self, row: &repo::RegistrationFileRow) -> Result<Value, Error> {
        let mut data: Map<String, Value> = serde_json::from_str(&row.body).map_err(internal)?;
        if let Some(sealed) = &row.sealed_data {
            let context = format!("registration_files:sealed_data:{}", row.file_id);
            let opened = self.inner.identity.protector().open(sealed, &context).await.map_err(internal)?;
            let sensitive: Map<String, Value> = serde_json::from_str(&opened).map_err(internal)?;
            if let Some(Value::Object(fd)) = data.get_mut("formData")
                && let Some(Value::Object(values)) = fd.get_mut("data")
            {
                values.extend(sensitive);
            }
        }
        data.insert("applicantId".into(), json!(row.applicant_id));
        Ok(json!({
            "fileId": row.file_id,
            "registered": rfc3339(row.created_at),
            "serviceId": row.service_id,
            "serviceName": row.service_name,
            "status": status(&row.status),
            "ended": row.status == APPROVED || row.status == REJECTED,
            "applicationData": data,
        }))
    }

    /// Files, newest first unless asked otherwise, each with its open task.
    pub async fn registration_files(&self, q: &ListQuery) -> Result<Vec<Value>, Error> {
        let (offset, limit) = q.page();
        let mut c = self.conn().await?;
        let rows = repo::registration_files(
            &mut c,
            clean(q.service_id.as_deref()),
            clean(q.applicant_id.as_deref()),
            q.newest_first,
            offset,
            limit,
        )
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let body: Map<String, Value> = serde_json::from_str(&row.body).map_err(internal)?;
            let tasks = repo::registration_tasks(&mut c, Some(&row.file_id), None, None, true, 0, 1).await?;
            let mut item = Map::new();
            item.insert("fileId".into(), json!(row.file_id));
            if let Some(t) = tasks.first() {
                let task: Map<String, Value> = serde_json::from_str(&t.body).map_err(internal)?;
                item.insert("mainTaskId".into(), json!(t.main_task_id.clone().unwrap_or_else(|| t.task_id.clone())));
                for (from, to) in [("taskName", "taskTitle"), ("roleId", "roleId"), ("roleName", "roleName")] {
                    if let Some(v) = task.get(from).filter(|v| v.is_string()) {
                        item.insert(to.into(), v.clone());
                    }
                }
                if let Some(a) = &t.assignee_id {
                    item.insert("assigneeId".into(), json!(a));
                }
                if let Some(v) = task.get("operatorName").filter(|v| v.is_string()) {
                    item.insert("operatorName".into(), v.clone());
                }
            }
            item.insert("status".into(), status(&row.status));
            item.insert("applicantId".into(), json!(row.applicant_id));
            item.insert("created".into(), json!(rfc3339(row.created_at)));
            item.insert("registered".into(), json!(rfc3339(row.created_at)));
            if let Some(d) = body.get("description").or_else(|| body.get("applicationName")).filter(|v| v.is_string()) {
                item.insert("description".into(), d.clone());
            }
            item.insert("serviceName".into(), json!(row.service_name));
            item.insert("serviceId".into(), json!(row.service_id));
            if let Some(e) = body.get("formData").and_then(|f| f.get("eFormId")).filter(|v| v.is_string()) {
                item.insert("eformId".into(), e.clone());
            }
            if let Some(d) = body.get("documentUrls").filter(|v| v.is_array()) {
                item.insert("documentUrls".into(), d.clone());
            }
            out.push(Value::Object(item));
        }
        Ok(out)
    }

    /// An operator's update of a file's data (the applicant stays who they were).
    pub async fn registration_update(
        &self,
        client: Option<&CallingSystem>,
        file_id: &str,
        submission: FileSubmission,
        now: DateTime<Utc>,
    ) -> Result<Value, Error> {
        let mut c = self.conn().await?;
        let row = repo::registration_file(&mut c, file_id).await?.ok_or(Error::NotFound("application file"))?;
        drop(c);
        let service = self.service(&row.service_id).await.ok();
        let (mut body, sealed) = match &service {
            Some(s) => self.registration_body(s, file_id, &submission).await?,
            // A file of a service this platform does not publish keeps its data as given.
            None => {
                let mut b: Map<String, Value> = serde_json::from_str(&row.body).map_err(internal)?;
                if let Some(fd) = &submission.form_data {
                    b.insert("formData".into(), json!({"data": fd.data, "eFormId": fd.e_form_id}));
                }
                b.insert("documentUrls".into(), json!(submission.document_urls));
                (b, row.sealed_data.clone())
            }
        };
        body.insert("applicantId".into(), json!(row.applicant_id));
        let mut tx = self.inner.db.begin().await?;
        let text = serde_json::to_string(&body).map_err(internal)?;
        repo::update_registration_file(&mut tx, file_id, &text, sealed.as_deref(), &row.status, millis(now)).await?;
        let mut entry = ledger::Entry::new(Action::RegistrationFileUpdated, Outcome::Success, now);
        entry.actor = Some(client.map(|c| c.as_str().to_string()).unwrap_or_else(|| "govstack".into()));
        entry.object = Some(format!("registration_file:{file_id}"));
        ledger::append_in(&mut tx, Log::Audit, &entry).await?;
        tx.commit().await?;
        self.registration_file(file_id).await
    }

    fn task_view(row: &repo::RegistrationTaskRow) -> Result<Value, Error> {
        let mut v: Map<String, Value> = serde_json::from_str(&row.body).map_err(internal)?;
        v.insert("taskId".into(), json!(row.task_id));
        v.insert("fileId".into(), json!(row.file_id));
        if let Some(m) = &row.main_task_id {
            v.insert("mainTaskId".into(), json!(m));
        }
        if let Some(a) = &row.assignee_id {
            v.insert("assigneeId".into(), json!(a));
        }
        v.insert("created".into(), json!(rfc3339(row.created_at)));
        v.insert("status".into(), status(&row.status));
        for key in ["formVariables", "data"] {
            // Values are objects in the API: anything else is wrapped.
            let mut map = match v.remove(key) {
                Some(Value::Object(m)) => m,
                _ => Map::new(),
            };
            for value in map.values_mut() {
                if !value.is_object() {
                    *value = json!({ "value": value.take() });
                }
            }
            v.insert(key.into(), Value::Object(map));
        }
        Ok(Value::Object(v))
    }

    pub async fn registration_tasks(&self, q: &ListQuery) -> Result<Vec<Value>, Error> {
        let (offset, limit) = q.page();
        let mut c = self.conn().await?;
        let rows = repo::registration_tasks(
            &mut c,
            clean(q.file_id.as_deref()),
            clean(q.main_task_id.as_deref()),
            clean(q.assignee_id.as_deref()),
            q.newest_first,
            offset,
            limit,
        )
        .await?;
        rows.iter().map(Self::task_view).collect()
    }

    pub async fn registration_task(&self, task_id: &str) -> Result<Value, Error> {
        let mut c = self.conn().await?;
        let row = repo::registration_task(&mut c, task_id).await?.ok_or(Error::NotFound("task"))?;
        Self::task_view(&row)
    }

    /// Completes a task with the operator's data. `data.decision` (`approve`, `sendback`,
    /// `reject`; approve by default) decides the file. Completing a completed task again
    /// answers what the first completion did and changes nothing.
    pub async fn registration_complete(
        &self,
        client: Option<&CallingSystem>,
        task_id: &str,
        data: Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<Value, Error> {
        let mut tx = self.inner.db.begin().await?;
        let row = repo::registration_task(&mut tx, task_id).await?.ok_or(Error::NotFound("task"))?;
        let file = repo::registration_file(&mut tx, &row.file_id).await?;
        let mut body: Map<String, Value> = serde_json::from_str(&row.body).map_err(internal)?;
        let service_id = file
            .as_ref()
            .map(|f| f.service_id.clone())
            .or_else(|| body.get("serviceId").and_then(Value::as_str).map(str::to_string));
        if row.completed_at.is_none() {
            let decision = match data.get("decision").and_then(Value::as_str).unwrap_or("approve") {
                "approve" | "approved" => APPROVED,
                "sendback" | "send_back" => SENDBACK,
                "reject" | "rejected" => REJECTED,
                other => return Err(Error::invalid("decision", format!("approve, sendback or reject, not {other:?}"))),
            };
            body.insert("data".into(), Value::Object(data.clone()));
            body.insert("decision".into(), json!(decision));
            repo::complete_registration_task(&mut tx, task_id, &Value::Object(body.clone()).to_string(), millis(now))
                .await?;
            if let Some(f) = &file {
                repo::update_registration_file(
                    &mut tx,
                    &f.file_id,
                    &f.body,
                    f.sealed_data.as_deref(),
                    decision,
                    millis(now),
                )
                .await?;
            }
            let mut entry = ledger::Entry::new(Action::RegistrationTaskCompleted, Outcome::Success, now);
            entry.actor = Some(client.map(|c| c.as_str().to_string()).unwrap_or_else(|| "govstack".into()));
            entry.object = Some(format!("registration_task:{task_id}"));
            entry.detail = Some(format!("file {} {decision}", row.file_id));
            ledger::append_in(&mut tx, Log::Audit, &entry).await?;
            tx.commit().await?;
        }
        let decision = body.get("decision").and_then(Value::as_str).unwrap_or(APPROVED).to_string();
        let variables = match body.get("data") {
            Some(Value::Object(m)) => m.clone(),
            _ => data,
        };
        let mut out = Map::new();
        out.insert("taskId".into(), json!(task_id));
        out.insert("fileId".into(), json!(row.file_id));
        if let Some(s) = service_id {
            out.insert("serviceId".into(), json!(s));
        }
        out.insert("status".into(), status(&decision));
        out.insert("variables".into(), Value::Object(variables));
        Ok(Value::Object(out))
    }

    /// Keeps a document for a later application; any media type (GovStack clients send
    /// scans, forms and photos), size-limited and scanned like every upload.
    pub async fn registration_upload(
        &self,
        client: Option<&CallingSystem>,
        bytes: &[u8],
        metadata: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Value, Error> {
        self.check_upload_size(bytes)?;
        let sha = self.store_content(bytes).await?;
        let content_type = super::documents::sniff(bytes).unwrap_or("application/octet-stream");
        let id = new_id();
        let metadata = clean(metadata).map(|m| m.chars().take(1000).collect::<String>());
        let mut tx = self.inner.db.begin().await?;
        repo::insert_registration_document(
            &mut tx,
            &repo::RegistrationDocumentRow {
                id: &id,
                sha256: &sha,
                content_type,
                size: i64::try_from(bytes.len()).unwrap_or(i64::MAX),
                metadata: metadata.as_deref(),
                client: client.map(CallingSystem::as_str),
                created_at: millis(now),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(json!({
            "code": 200,
            "type": content_type,
            "message": "uploaded",
            "url": format!("/govstack/registration/documents/{id}"),
        }))
    }

    /// Processed, approved, sent back and rejected applications (of this platform and of
    /// GovStack clients), optionally of one service and period.
    pub async fn registration_statistics(&self, q: &StatisticsQuery) -> Result<Value, Error> {
        let day = |s: Option<&str>| clean(s).and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
        let start = day(q.start_date.as_deref());
        let end = day(q.end_date.as_deref());
        let ms = |d: NaiveDate| d.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp_millis());
        let from = start.and_then(ms).unwrap_or(0);
        let to = end.and_then(|d| d.succ_opt()).and_then(ms).unwrap_or(i64::MAX);
        let services = match clean(q.registration_name.as_deref()) {
            None => None,
            Some(name) => {
                let mut found: Vec<String> = self
                    .search("", usize::MAX)
                    .await?
                    .into_iter()
                    .filter(|s| s.name_zh == name || s.name_en == name || s.code == name)
                    .map(|s| s.id)
                    .collect();
                // A client's descriptor may give its registration a short name (MCTS).
                let mut c = self.conn().await?;
                for (id, body) in repo::registration_services(&mut c).await? {
                    let v: Value = serde_json::from_str(&body).map_err(internal)?;
                    if v.get("shortName").and_then(Value::as_str) == Some(name) {
                        found.push(id);
                    }
                }
                if found.is_empty() {
                    return Err(Error::NotFound("registration"));
                }
                Some(found)
            }
        };
        let wanted = |id: &str| services.as_ref().is_none_or(|s| s.iter().any(|x| x == id));
        let mut c = self.conn().await?;
        let (mut processed, mut approved, mut sent_back, mut rejected) = (0i64, 0i64, 0i64, 0i64);
        for (service, phase, n, back) in repo::application_status_counts(&mut c, from, to).await? {
            if !wanted(&service) {
                continue;
            }
            sent_back += back;
            let phase = stored_phase(&phase)?;
            match phase {
                Phase::Approved | Phase::Completed => approved += n,
                Phase::Rejected | Phase::Refused => rejected += n,
                _ => {}
            }
            if !matches!(phase, Phase::Submitted | Phase::InReview) {
                processed += n;
            }
        }
        for (service, code, n) in repo::registration_status_counts(&mut c, from, to).await? {
            if !wanted(&service) {
                continue;
            }
            match code.as_str() {
                APPROVED => approved += n,
                SENDBACK => sent_back += n,
                REJECTED => rejected += n,
                _ => continue,
            }
            processed += n;
        }
        let mut references = Map::new();
        for (key, value) in [
            ("startDate", &q.start_date),
            ("endDate", &q.end_date),
            ("registrationName", &q.registration_name),
            ("operator", &q.operator),
            ("role", &q.role),
        ] {
            if let Some(v) = value {
                references.insert(key.into(), json!(v));
            }
        }
        let timeframe = q.timeframe.as_deref().unwrap_or("");
        for (key, name) in
            [("timeframeDay", "day"), ("timeframeWeek", "week"), ("timeframeMonth", "month"), ("timeframeYear", "year")]
        {
            references.insert(key.into(), json!(timeframe.starts_with(name)));
        }
        Ok(json!([{
            "processed": processed,
            "approved": approved,
            "sentBack": sent_back,
            "rejected": rejected,
            "references": references,
        }]))
    }
}

#[cfg(test)]
mod tests {
    use identity::MediatorClient;

    #[test]
    fn mediator_client_has_four_parts() {
        assert!(MediatorClient::parse("eGovStack/GOV/90000009/eregistrations-dev").is_some());
        assert!(MediatorClient::parse("CN/GOV/990000-MZ/dibao").is_some(), "member codes may hold a dash");
        for bad in ["", "''", "invalid_header", "eGovStack/GOV/90000009/", "a/b/c/d/e", "a/b c/d/e"] {
            assert_eq!(MediatorClient::parse(bad), None, "{bad}");
        }
    }
}
