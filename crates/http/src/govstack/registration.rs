//! The GovStack Registration building block API under `/govstack/registration/`, as its
//! OpenAPI file and its published test suite call it (see ../shared/govstack/README.md):
//! `/data/statistics` also as `/data/statistics/1.0`, documents as form fields, JSON or
//! multipart, and fields that are absent left out rather than null.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use chrono::Utc;
use serde_json::{Map, Value};

use super::{Mediated, Relayed, form_pairs};
use crate::AppState;
use crate::api::services::service_error;
use crate::error::{ApiError, ErrorCode};
use identity::MediatorClient;
use services::{FileSubmission, ListQuery, StatisticsQuery};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/services", get(services))
        .route("/services/{id}", get(service))
        .route("/services/{id}/eForms", get(eforms))
        .route("/services/{id}/applications", post(submit))
        .route("/eForms/{id}", get(eform))
        .route("/documents", post(upload))
        .route("/applications", get(files))
        .route("/applications/{id}", get(file).put(update))
        .route("/tasks", get(tasks))
        // A POST here names no operation: the task is not found rather than the method wrong.
        .route("/tasks/{id}", get(task).post(|| async { not_found("task") }))
        .route("/tasks/{id}/complete", post(complete))
        .route("/data/statistics", get(statistics))
        .route("/data/statistics/1.0", get(statistics))
}

const JSON_UTF8: &str = "application/json; charset=utf-8";

pub(super) fn json(status: StatusCode, v: &Value) -> Response {
    let mut r = (status, v.to_string()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8));
    r
}

fn ok(v: Value) -> Response {
    json(StatusCode::OK, &v)
}

fn not_found(what: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, format!("{what} not found"))
}

fn bad(code: ErrorCode, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

/// The calling system's name, when the header is sent (reading the catalog needs no proof);
/// a header that is sent must be well formed.
fn named(headers: &HeaderMap) -> Result<Option<MediatorClient>, ApiError> {
    match headers.get("information-mediator-client") {
        None => Ok(None),
        Some(v) => v.to_str().ok().and_then(MediatorClient::parse).map(Some).ok_or_else(|| {
            bad(
                ErrorCode::InvalidMediatorClient,
                "Information-Mediator-Client must read INSTANCE/CLASS/MEMBER/SUBSYSTEM",
            )
        }),
    }
}

/// Query parameters, the first of each name winning (some clients repeat them).
fn params(raw: Option<&str>) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in form_pairs(raw) {
        out.entry(k).or_insert(Value::String(v));
    }
    out
}

fn text(p: &Map<String, Value>, key: &str) -> Option<String> {
    p.get(key).and_then(Value::as_str).map(str::to_string)
}

fn number(p: &Map<String, Value>, key: &str) -> Result<Option<i64>, ApiError> {
    match text(p, key) {
        None => Ok(None),
        Some(s) => s.trim().parse().map(Some).map_err(|_| bad(ErrorCode::InvalidField, format!("{key}: a number"))),
    }
}

fn list_query(raw: Option<&str>) -> Result<ListQuery, ApiError> {
    let p = params(raw);
    Ok(ListQuery {
        service_id: text(&p, "serviceId"),
        applicant_id: text(&p, "applicantId"),
        file_id: text(&p, "fileId"),
        main_task_id: text(&p, "mainTaskId"),
        assignee_id: text(&p, "assigneeId"),
        first_result: number(&p, "firstResult")?,
        max_result: number(&p, "maxResult")?,
        newest_first: text(&p, "sortOrder").is_none_or(|o| !o.eq_ignore_ascii_case("asc")),
    })
}

/// An application file as JSON, or the same fields form-encoded or as multipart text parts
/// (the published suite submits forms). A form value that reads as a JSON object or list
/// (`formData`, `documentUrls`) is taken as one; every other value is text.
async fn submission(state: &AppState, request: Request) -> Result<FileSubmission, ApiError> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let invalid = |e: String| bad(ErrorCode::InvalidBody, format!("application file: {e}"));
    let mut fields = Map::new();
    let mut field = |name: String, value: String| {
        let value = match serde_json::from_str::<Value>(&value) {
            Ok(v @ (Value::Object(_) | Value::Array(_))) => v,
            _ => Value::String(value),
        };
        fields.entry(name).or_insert(value);
    };
    if content_type.starts_with("multipart/form-data") {
        let mut multipart =
            axum::extract::Multipart::from_request(request, state).await.map_err(|e| invalid(e.body_text()))?;
        while let Some(part) = multipart.next_field().await.map_err(|e| invalid(e.body_text()))? {
            let Some(name) = part.name().map(str::to_string) else { continue };
            field(name, part.text().await.map_err(|e| invalid(e.body_text()))?);
        }
    } else {
        let body = Bytes::from_request(request, state).await.map_err(|e| invalid(e.body_text()))?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(bad(ErrorCode::InvalidBody, "send the application file as JSON with at least applicantId"));
        }
        if !content_type.starts_with("application/x-www-form-urlencoded") {
            return serde_json::from_slice(&body).map_err(|e| invalid(e.to_string()));
        }
        let text = std::str::from_utf8(&body).map_err(|_| invalid("the form is not UTF-8".into()))?;
        for (name, value) in form_pairs(Some(text)) {
            field(name, value);
        }
    }
    serde_json::from_value(Value::Object(fields)).map_err(|e| invalid(e.to_string()))
}

/// A body that cannot be read answers 404 when the service does not exist either: the
/// service is what the path names, so it is found first.
async fn submission_for(state: &AppState, service: &str, request: Request) -> Result<FileSubmission, Response> {
    match submission(state, request).await {
        Ok(s) => Ok(s),
        Err(e) => match state.services.registration().registration_service(service).await {
            Err(missing) => Err(service_error(missing)),
            Ok(_) => Err(e.into_response()),
        },
    }
}

async fn services(State(state): State<AppState>, RawQuery(q): RawQuery) -> Result<Response, Response> {
    let p = params(q.as_deref());
    let list = state
        .services
        .registration()
        .registration_services(text(&p, "name").as_deref())
        .await
        .map_err(service_error)?;
    Ok(ok(Value::Array(list)))
}

/// One service, answered as a one-element list as the test suite expects.
async fn service(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    named(&headers).map_err(IntoResponse::into_response)?;
    let s = state.services.registration().registration_service(&id).await.map_err(service_error)?;
    Ok(ok(Value::Array(vec![s])))
}

async fn eforms(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, Response> {
    Ok(ok(Value::Array(state.services.registration().registration_eforms(&id).await.map_err(service_error)?)))
}

async fn eform(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, Response> {
    Ok(ok(state.services.registration().registration_eform(&id).await.map_err(service_error)?))
}

async fn submit(
    State(state): State<AppState>,
    Mediated(client): Mediated,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, Response> {
    let submission = submission_for(&state, &id, request).await?;
    let file = state
        .services
        .registration()
        .registration_submit(Some(&client), &id, submission, Utc::now())
        .await
        .map_err(service_error)?;
    Ok(ok(file))
}

async fn files(
    State(state): State<AppState>,
    Mediated(_): Mediated,
    RawQuery(q): RawQuery,
) -> Result<Response, Response> {
    let q = list_query(q.as_deref()).map_err(IntoResponse::into_response)?;
    Ok(ok(Value::Array(state.services.registration().registration_files(&q).await.map_err(service_error)?)))
}

async fn file(
    State(state): State<AppState>,
    Mediated(_): Mediated,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    Ok(ok(state.services.registration().registration_file(&id).await.map_err(service_error)?))
}

async fn update(
    State(state): State<AppState>,
    Mediated(client): Mediated,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, Response> {
    let submission = submission(&state, request).await.map_err(IntoResponse::into_response)?;
    let file = state
        .services
        .registration()
        .registration_update(Some(&client), &id, submission, Utc::now())
        .await
        .map_err(service_error)?;
    Ok(ok(file))
}

async fn tasks(
    State(state): State<AppState>,
    Relayed(_): Relayed,
    RawQuery(q): RawQuery,
) -> Result<Response, Response> {
    let q = list_query(q.as_deref()).map_err(IntoResponse::into_response)?;
    Ok(ok(Value::Array(state.services.registration().registration_tasks(&q).await.map_err(service_error)?)))
}

async fn task(
    State(state): State<AppState>,
    Relayed(_): Relayed,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    Ok(ok(state.services.registration().registration_task(&id).await.map_err(service_error)?))
}

async fn complete(
    State(state): State<AppState>,
    Relayed(client): Relayed,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, Response> {
    let data = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| bad(ErrorCode::InvalidBody, format!("task data: {e}")).into_response())?;
        match v.get("data") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => return Err(bad(ErrorCode::InvalidBody, "data is an object").into_response()),
        }
    };
    let done = state
        .services
        .registration()
        .registration_complete(Some(&client), &id, data, Utc::now())
        .await
        .map_err(service_error)?;
    Ok(ok(done))
}

/// The files of an upload: `file=<base64>` form fields, a JSON `{"file": …}` (one string or
/// a list) or multipart parts named `file` (raw bytes).
async fn upload(
    State(state): State<AppState>,
    Relayed(client): Relayed,
    headers: HeaderMap,
    request: Request,
) -> Result<Response, Response> {
    let query = params(request.uri().query());
    let metadata = text(&query, "additionalMetadata");
    let content_type =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_ascii_lowercase();
    let missing = || bad(ErrorCode::FileMissing, "send the file as file=<base64>, JSON or multipart").into_response();
    let bad_base64 = || bad(ErrorCode::InvalidField, "file: base64 content").into_response();
    let b64 = |s: &str| {
        let s = s.trim();
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(s.trim_end_matches('=')))
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')))
            .ok()
    };
    let mut files: Vec<Vec<u8>> = Vec::new();
    if content_type.starts_with("multipart/form-data") {
        let mut multipart = axum::extract::Multipart::from_request(request, &state)
            .await
            .map_err(|e| bad(ErrorCode::InvalidBody, e.body_text()).into_response())?;
        while let Some(field) =
            multipart.next_field().await.map_err(|e| bad(ErrorCode::InvalidBody, e.body_text()).into_response())?
        {
            if field.name() == Some("file") {
                let bytes =
                    field.bytes().await.map_err(|e| bad(ErrorCode::InvalidBody, e.body_text()).into_response())?;
                files.push(bytes.to_vec());
            }
        }
    } else {
        let body = Bytes::from_request(request, &state).await.map_err(IntoResponse::into_response)?;
        if content_type.starts_with("application/json") {
            let v: Value = serde_json::from_slice(&body)
                .map_err(|e| bad(ErrorCode::InvalidBody, format!("upload: {e}")).into_response())?;
            match v.get("file") {
                Some(Value::String(s)) => files.push(b64(s).ok_or_else(bad_base64)?),
                Some(Value::Array(items)) => {
                    for s in items.iter().filter_map(Value::as_str) {
                        files.push(b64(s).ok_or_else(bad_base64)?);
                    }
                }
                _ => {}
            }
        } else if !body.is_empty() {
            let text = std::str::from_utf8(&body).map_err(|_| missing())?;
            for (k, v) in form_pairs(Some(text)) {
                if k == "file" {
                    files.push(b64(&v).ok_or_else(bad_base64)?);
                }
            }
        }
    }
    files.retain(|f| !f.is_empty());
    if files.is_empty() {
        return Err(missing());
    }
    let mut first = None;
    for f in &files {
        let stored = state
            .services
            .registration()
            .registration_upload(Some(&client), f, metadata.as_deref(), Utc::now())
            .await
            .map_err(service_error)?;
        first.get_or_insert(stored);
    }
    Ok(ok(first.unwrap_or(Value::Null)))
}

/// Statistics, for a proven calling system; 404 for a registration that does not exist.
async fn statistics(
    State(state): State<AppState>,
    Mediated(_): Mediated,
    RawQuery(q): RawQuery,
) -> Result<Response, Response> {
    let p = params(q.as_deref());
    let q = StatisticsQuery {
        start_date: text(&p, "startDate"),
        end_date: text(&p, "endDate"),
        registration_name: text(&p, "registrationName"),
        operator: text(&p, "operator"),
        role: text(&p, "role"),
        timeframe: text(&p, "timeframe"),
    };
    match state.services.registration().registration_statistics(&q).await {
        Ok(v) => Ok(ok(v)),
        Err(services::Error::NotFound(_)) => {
            Err(json(StatusCode::NOT_FOUND, &serde_json::json!({"code": "not_found", "message": "Requests not found"})))
        }
        Err(e) => Err(service_error(e)),
    }
}
