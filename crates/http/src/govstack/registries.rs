//! The GovStack Digital Registries building block under `/govstack/registries/`: the Data
//! API over registries marked trusted and the Database API, as their OpenAPI files and the
//! published test suite call them (see ../shared/govstack/README.md). Bodies come flat or
//! wrapped (`{"query": {"content": …}}`); errors are `{"detail", "code"}`; every call names
//! its system in `Information-Mediator-Client`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use chrono::Utc;
use serde_json::{Map, Value, json};

use super::registration::json;
use super::{Mediated, form_pairs};
use crate::AppState;
use crate::error::{ApiError, ErrorCode};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use exchange::{DatabaseChange, RecordFilter};
use identity::CallingSystem;

pub fn router() -> Router<AppState> {
    Router::new()
        // Static segments win over parameters: these are not registries named `data`.
        .route("/data/myPersonalDataUsage", get(personal_data_usage))
        .route("/data/MyPersonalDataUsage/1.0", get(personal_data_usage))
        .route("/data/{registry}/{version}", get(list))
        .route("/data/{registry}/{version}/create", post(create))
        .route("/data/{registry}/{version}/exists", post(exists))
        .route("/data/{registry}/{version}/read", post(read))
        .route("/data/{registry}/{version}/update", put(update))
        .route("/data/{registry}/{version}/updateEntries", put(update_entries))
        .route("/data/{registry}/{version}/update-entries", put(update_entries))
        .route("/data/{registry}/{version}/updateOrCreate", post(update_or_create))
        .route("/data/{registry}/{version}/update-or-create", post(update_or_create))
        .route("/data/{registry}/{version}/{id}/delete", delete(delete_record))
        .route("/data/{registry}/{version}/{id}/readValue/{file}", get(read_value))
        .route("/data/{registry}/{version}/{id}/read-value/{file}", get(read_value))
        .route("/databases", get(databases))
        .route("/database/modify", post(modify_database))
        .route("/database/{id}", get(database).delete(delete_database))
}

/// A GovStack error: `{"detail": …, "code": …}`; bad input is 400 here, as the building
/// block's clients expect.
struct Failure {
    status: StatusCode,
    code: ErrorCode,
    detail: String,
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        json(self.status, &json!({"detail": self.detail, "code": self.code.as_str()}))
    }
}

type Reply = Result<Response, Failure>;

fn failure(status: StatusCode, code: ErrorCode, detail: &str) -> Failure {
    Failure { status, code, detail: detail.into() }
}

fn bad(detail: &str) -> Failure {
    failure(StatusCode::BAD_REQUEST, ErrorCode::InvalidBody, detail)
}

fn exchange_failure(e: exchange::Error) -> Failure {
    let record_missing = matches!(e, exchange::Error::NotFound("record"));
    let api = ApiError::from(e).unprocessable_as_bad_request();
    let detail = if record_missing { "no record found" } else { api.message.as_str() };
    failure(api.status, api.code, detail)
}

/// The calling system, proven (see the module `govstack`); refusals in this API's shape.
struct Caller(CallingSystem);

impl FromRequestParts<AppState> for Caller {
    type Rejection = Failure;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Failure> {
        let Mediated(system) =
            Mediated::from_request_parts(parts, state).await.map_err(|e| failure(e.status, e.code, &e.message))?;
        Ok(Caller(system))
    }
}

fn body_json(body: &Bytes) -> Result<Value, Failure> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(bad("send a JSON body"));
    }
    serde_json::from_slice(body).map_err(|e| failure(StatusCode::BAD_REQUEST, ErrorCode::MalformedJson, &e.to_string()))
}

fn object_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Map<String, Value>> {
    path.iter().try_fold(v, |v, k| v.get(k)).and_then(Value::as_object)
}

/// The record or query a body carries: under `wrapper.content`, under `content`, or flat.
fn content(v: &Value, wrapper: &str) -> Result<Map<String, Value>, Failure> {
    object_at(v, &[wrapper, "content"])
        .or_else(|| object_at(v, &["content"]))
        .or_else(|| v.as_object().filter(|o| !o.contains_key(wrapper)))
        .cloned()
        .ok_or_else(|| bad(&format!("send the fields as an object, flat or as {{\"{wrapper}\": {{\"content\": …}}}}")))
}

type Fields = Map<String, Value>;

/// `{"query": {"content": …}, "write": {"content": …}}` (older clients put the query
/// inside `write`).
fn query_and_write(v: &Value) -> Result<(Fields, Fields), Failure> {
    let write = object_at(v, &["write", "content"]).cloned().ok_or_else(|| bad("send write.content"))?;
    let query = object_at(v, &["query", "content"])
        .or_else(|| object_at(v, &["write", "query", "content"]))
        .cloned()
        .unwrap_or_default();
    Ok((query, write))
}

fn ok(v: &Value) -> Response {
    json(StatusCode::OK, v)
}

fn number(raw: &str, name: &str) -> Result<usize, Failure> {
    raw.trim().parse().map_err(|_| bad(&format!("{name}: a whole number")))
}

async fn list(
    State(state): State<AppState>,
    Caller(client): Caller,
    uri: Uri,
    Path((registry, version)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Reply {
    let mut filter = RecordFilter::default();
    let params = form_pairs(q.as_deref());
    for (k, v) in &params {
        match k.as_str() {
            "search" => filter.search = Some(v.clone()),
            "filter" => filter.filter = Some(v.clone()),
            "ordering" => filter.ordering = Some(v.clone()),
            "page" => filter.page = Some(number(v, "page")?),
            "pageSize" | "page_size" => filter.page_size = Some(number(v, "pageSize")?),
            _ => {
                if let Some(field) = k.strip_prefix("query.") {
                    filter.fields.insert(field.to_string(), Value::String(v.clone()));
                }
            }
        }
    }
    let page = state
        .exchange
        .registry_data()
        .mediated_list(&client, &registry, &version, &filter, Utc::now())
        .await
        .map_err(exchange_failure)?;
    // Links keep every other parameter and move the page.
    let link = |n: usize| {
        let mut kept: Vec<(String, String)> =
            params.iter().filter(|(k, _)| k != "page" && k != "pageSize" && k != "page_size").cloned().collect();
        kept.push(("page".into(), n.to_string()));
        kept.push(("pageSize".into(), page.page_size.to_string()));
        format!("{}?{}", uri.path(), form_urlencoded::Serializer::new(String::new()).extend_pairs(kept).finish())
    };
    let mut out = json!({"count": page.count, "previous": null, "results": page.results});
    if let Some(o) = out.as_object_mut() {
        if page.has_next {
            o.insert("next".into(), Value::String(link(page.page + 1)));
        }
        if page.page > 1 {
            o.insert("previous".into(), Value::String(link(page.page - 1)));
        }
    }
    Ok(ok(&out))
}

async fn create(
    State(state): State<AppState>,
    Caller(client): Caller,
    Path((registry, version)): Path<(String, String)>,
    body: Bytes,
) -> Reply {
    let record = content(&body_json(&body)?, "write")?;
    let created = state
        .exchange
        .registry_data()
        .mediated_create(&client, &registry, &version, &record, Utc::now())
        .await
        .map_err(exchange_failure)?;
    Ok(ok(&json!({"content": created})))
}

async fn exists(
    State(state): State<AppState>,
    Caller(client): Caller,
    Path((registry, version)): Path<(String, String)>,
    body: Bytes,
) -> Reply {
    let query = content(&body_json(&body)?, "query")?;
    let found = state
        .exchange
        .registry_data()
        .mediated_exists(&client, &registry, &version, &query, Utc::now())
        .await
        .map_err(exchange_failure)?;
    let message = if found { "Object found from database" } else { "Object not found" };
    Ok(ok(&json!({"answer": {"status": found, "message": message}})))
}

async fn read(
    State(state): State<AppState>,
    Caller(client): Caller,
    Path((registry, version)): Path<(String, String)>,
    body: Bytes,
) -> Reply {
    let query = content(&body_json(&body)?, "query")?;
    let record = state
        .exchange
        .registry_data()
        .mediated_read(&client, &registry, &version, &query, Utc::now())
        .await
        .map_err(exchange_failure)?;
    Ok(ok(&json!({"content": record})))
}

async fn update(
    State(state): State<AppState>,
    Caller(client): Caller,
    Path((registry, version)): Path<(String, String)>,
    body: Bytes,
) -> Reply {
    let (query, write) = query_and_write(&body_json(&body)?)?;
    let updated = state
        .exchange
        .registry_data()
        .mediated_update(&client, &registry, &version, &query, &write, false, Utc::now())
        .await
        .map_err(exchange_failure)?;
    Ok(ok(&json!({"content": updated.into_iter().next()})))
}

async fn update_entries(
    State(state): State<AppState>,
    Caller(client): Caller,
    Path((registry, version)): Path<(String, String)>,
    body: Bytes,
) -> Reply {
    let (query, write) = query_and_write(&body_json(&body)?)?;
    let updated = state
        .exchange
        .registry_data()
        .mediated_update(&client, &registry, &version, &query, &write, true, Utc::now())
        .await
        .map_err(exchange_failure)?;
    Ok(ok(&json!({"count": updated.len(), "content": updated})))
}

async fn update_or_create(
    State(state): State<AppState>,
    Caller(client): Caller,
    Path((registry, version)): Path<(String, String)>,
    body: Bytes,
) -> Reply {
    let (query, write) = query_and_write(&body_json(&body)?)?;
    let record = state
        .exchange
        .registry_data()
        .mediated_update_or_create(&client, &registry, &version, &query, &write, Utc::now())
        .await
        .map_err(exchange_failure)?;
    Ok(ok(&json!({"content": record})))
}

async fn delete_record(
    State(state): State<AppState>,
    Caller(client): Caller,
    Path((registry, version, id)): Path<(String, String, String)>,
) -> Reply {
    state
        .exchange
        .registry_data()
        .mediated_delete(&client, &registry, &version, &id, Utc::now())
        .await
        .map_err(exchange_failure)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn read_value(
    State(state): State<AppState>,
    Caller(client): Caller,
    Path((registry, version, id, file)): Path<(String, String, String, String)>,
) -> Reply {
    let (field, format) = file.rsplit_once('.').ok_or_else(|| bad("name the value as {field}.{format}, as json"))?;
    let value = state
        .exchange
        .registry_data()
        .mediated_value(&client, &registry, &version, &id, field, format, Utc::now())
        .await
        .map_err(exchange_failure)?;
    Ok(ok(&value))
}

/// Parameter names are read without regard to case (`userId`, `userID`).
async fn personal_data_usage(State(state): State<AppState>, Caller(caller): Caller, RawQuery(q): RawQuery) -> Reply {
    let params = form_pairs(q.as_deref());
    let param = |name: &str| params.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
    let (Some(user), Some(database)) = (param("userId"), param("databaseId")) else {
        return Err(bad("send userId and databaseId"));
    };
    let usage =
        state.exchange.registry_data().personal_data_usage(&caller, user, database).await.map_err(exchange_failure)?;
    Ok(ok(&Value::Array(usage)))
}

async fn databases(State(state): State<AppState>, Caller(client): Caller) -> Reply {
    Ok(ok(&state.exchange.databases().database_group(&client).await.map_err(exchange_failure)?))
}

fn database_id(raw: &str) -> Result<i64, Failure> {
    raw.trim().parse().map_err(|_| bad("a database id is a whole number"))
}

async fn database(State(state): State<AppState>, Caller(client): Caller, Path(id): Path<String>) -> Reply {
    Ok(ok(&state.exchange.databases().database(&client, database_id(&id)?).await.map_err(exchange_failure)?))
}

async fn delete_database(State(state): State<AppState>, Caller(client): Caller, Path(id): Path<String>) -> Reply {
    state
        .exchange
        .databases()
        .delete_database(&client, database_id(&id)?, Utc::now())
        .await
        .map_err(exchange_failure)?;
    Ok(ok(&json!("Success")))
}

/// `{group_name, catalog_name, code, schema}` (or camelCase). The building block's smoke
/// test posts nothing: an empty body changes nothing and answers an empty object.
async fn modify_database(State(state): State<AppState>, Caller(client): Caller, body: Bytes) -> Reply {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(ok(&json!({})));
    }
    let v = body_json(&body)?;
    let text = |a: &str, b: &str| v.get(a).or_else(|| v.get(b)).and_then(Value::as_str).map(str::to_string);
    let change = DatabaseChange {
        catalog_name: text("catalog_name", "catalogName"),
        group_name: text("group_name", "groupName"),
        code: text("code", "code").ok_or_else(|| bad("send the database's code"))?,
        schema: v.get("schema").cloned().ok_or_else(|| bad("send the schema"))?,
    };
    Ok(ok(&state.exchange.databases().modify_database(&client, change, Utc::now()).await.map_err(exchange_failure)?))
}
