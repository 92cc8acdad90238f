//! The CKAN Action API (v3) over the open-data catalogue, under `/api/3/action/` and
//! `/api/action/` (where ckanapi calls it), GET with query parameters or POST with a JSON
//! object or a form, answering CKAN's `{help, success, result}` envelope and its error
//! objects (`__type` "Not Found Error", "Validation Error", "Authorization Error", "Search
//! Query Error"), so existing CKAN clients and harvesters read tongban unchanged.
//!
//! Mapping: a department is an organization (its code, lower-cased, is the name); a 主题分类
//! is a group; keywords are tags; each dataset has two resources, its CSV and its JSON, both
//! in the datastore (`datastore_search` pages, filters, searches and sorts their rows).

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::{DISTRIBUTIONS, Distribution, key_of, site_origin};
use crate::AppState;
use crate::i18n::{Lang, text};
use openness::data::{ColumnType, DatasetQuery, DatasetSort, DatasetSummary, Licence, OpenLevel, Reader};

/// The CKAN release whose API this follows.
const CKAN_VERSION: &str = "2.10.4";
/// Datasets a `package_search` returns at most (CKAN's default limit).
const MAX_ROWS: usize = 1_000;

/// A CKAN error: its HTTP status and error object.
struct Failure {
    status: StatusCode,
    error: Value,
}

type Reply = Result<Value, Failure>;

fn not_found(what: &str) -> Failure {
    Failure {
        status: StatusCode::NOT_FOUND,
        error: json!({"__type": "Not Found Error", "message": format!("Not found: {what}")}),
    }
}

fn invalid(field: &str, message: &str) -> Failure {
    Failure { status: StatusCode::CONFLICT, error: json!({"__type": "Validation Error", field: [message]}) }
}

fn query_error(message: &str) -> Failure {
    Failure {
        status: StatusCode::CONFLICT,
        error: json!({"__type": "Search Query Error", "message": format!("Search Query Error: {message}")}),
    }
}

fn from_openness(e: openness::Error) -> Failure {
    use openness::Error as E;
    match e {
        E::NotFound(what) => not_found(what),
        E::Invalid { field, reason } => invalid(field, &reason),
        E::Rejected { reason, .. } => invalid("data", &reason),
        E::AccessRequired | E::InvalidApiKey | E::Denied(_) => Failure {
            status: StatusCode::FORBIDDEN,
            error: json!({"__type": "Authorization Error", "message": e.to_string()}),
        },
        E::RateLimited { .. } => Failure {
            status: StatusCode::TOO_MANY_REQUESTS,
            error: json!({"__type": "Authorization Error", "message": e.to_string()}),
        },
        E::Conflict { .. } => invalid("data", &e.to_string()),
        E::Storage(_) | E::Internal(_) => {
            tracing::error!(error = %e, "a CKAN action failed");
            Failure {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                error: json!({"__type": "Internal Server Error", "message": "internal error"}),
            }
        }
    }
}

/// GET: parameters in the query string (lists and objects as JSON text).
pub async fn action_get(
    State(state): State<AppState>,
    Path(action): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let mut params = Map::new();
    for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        params.insert(k.into_owned(), Value::String(v.into_owned()));
    }
    answer(&state, &action, &headers, params).await
}

/// POST: a JSON object, or a form.
pub async fn action_post(
    State(state): State<AppState>,
    Path(action): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    let params = if form {
        form_urlencoded::parse(&body).map(|(k, v)| (k.into_owned(), Value::String(v.into_owned()))).collect()
    } else if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(map)) => map,
            _ => {
                let f = Failure {
                    status: StatusCode::BAD_REQUEST,
                    error: json!({"__type": "Bad request", "message": "Bad request - JSON Error: the body is not a JSON object"}),
                };
                return envelope(&headers, &state, &action, Err(f));
            }
        }
    };
    answer(&state, &action, &headers, params).await
}

async fn answer(state: &AppState, action: &str, headers: &HeaderMap, p: Map<String, Value>) -> Response {
    let origin = site_origin(headers, state.secure_cookies);
    let result = match action {
        "status_show" => Ok(json!({
            "site_title": "通办 · 开放数据",
            "site_description": "政府数据开放目录：无条件开放的数据集任何人可下载和调用，有条件开放的数据集经申请获批后以 API 密钥调用。",
            "site_url": origin,
            "ckan_version": CKAN_VERSION,
            "error_emails_to": null,
            "locale_default": "zh_Hans_CN",
            "extensions": ["datastore", "dcat"],
        })),
        "site_read" => Ok(Value::Bool(true)),
        "package_list" => package_list(state, &p).await,
        "current_package_list_with_resources" => current_packages(state, &origin, &p).await,
        "package_search" => package_search(state, &origin, &p).await,
        "package_show" => package_show(state, &origin, &p).await,
        "resource_show" => resource_show(state, &origin, &p).await,
        "organization_list" => organization_list(state, &p).await,
        "organization_show" => organization_show(state, &origin, &p).await,
        "group_list" => group_list(state, &p).await,
        "group_show" => group_show(state, &origin, &p).await,
        "tag_list" => tag_list(state, &p).await,
        "license_list" => {
            Ok(Value::Array([Licence::Attribution, Licence::PublicDomain].into_iter().map(licence).collect()))
        }
        "datastore_search" => datastore_search(state, headers, &p).await,
        other => Err(Failure {
            status: StatusCode::BAD_REQUEST,
            error: json!({"__type": "Bad request", "message": format!("Bad request - Action name not known: {other}")}),
        }),
    };
    envelope(headers, state, action, result)
}

fn envelope(headers: &HeaderMap, state: &AppState, action: &str, result: Reply) -> Response {
    let help = format!("{}/api/3/action/help_show?name={action}", site_origin(headers, state.secure_cookies));
    let (status, body) = match result {
        Ok(result) => (StatusCode::OK, json!({"help": help, "success": true, "result": result})),
        Err(f) => (f.status, json!({"help": help, "success": false, "error": f.error})),
    };
    let mut r = (status, axum::Json(body)).into_response();
    r.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, header::HeaderValue::from_static("*"));
    r
}

// --- parameters ----------------------------------------------------------------------

fn text_param(p: &Map<String, Value>, key: &str) -> Option<String> {
    match p.get(key) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::Bool(b)) => Some(b.to_string()),
        _ => None,
    }
}

fn required(p: &Map<String, Value>, key: &str) -> Result<String, Failure> {
    text_param(p, key)
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().to_string())
        .ok_or_else(|| invalid(key, "Missing value"))
}

fn number(p: &Map<String, Value>, key: &str, default: usize, max: usize) -> Result<usize, Failure> {
    match p.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Number(n)) => {
            n.as_u64().map(|n| (n as usize).min(max)).ok_or_else(|| invalid(key, "Must be a natural number"))
        }
        Some(Value::String(s)) if s.trim().is_empty() => Ok(default),
        Some(Value::String(s)) => {
            s.trim().parse::<usize>().map(|n| n.min(max)).map_err(|_| invalid(key, "Invalid integer"))
        }
        Some(_) => Err(invalid(key, "Invalid integer")),
    }
}

fn flag(p: &Map<String, Value>, key: &str) -> bool {
    match p.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => matches!(s.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on"),
        Some(Value::Number(n)) => n.as_u64().is_some_and(|n| n != 0),
        _ => false,
    }
}

/// A list parameter: a JSON array, JSON text of one, or comma-separated text.
fn list(p: &Map<String, Value>, key: &str) -> Vec<String> {
    let from_array = |items: &Vec<Value>| items.iter().filter_map(|v| v.as_str().map(str::to_string)).collect();
    match p.get(key) {
        Some(Value::Array(items)) => from_array(items),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Array(items)) => from_array(&items),
            _ => s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect(),
        },
        _ => Vec::new(),
    }
}

/// An object parameter: a JSON object or JSON text of one.
fn object(p: &Map<String, Value>, key: &str) -> Result<Option<Value>, Failure> {
    match p.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Object(_)) => Ok(Some(v.clone())),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(v @ Value::Object(_)) => Ok(Some(v)),
            _ => Err(invalid(key, "Not a JSON Object")),
        },
        Some(_) => Err(invalid(key, "Not a JSON Object")),
    }
}

// --- the mapping ---------------------------------------------------------------------

/// CKAN's timestamp: UTC without an offset, microseconds.
fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

fn organization_name(code: &str) -> String {
    code.to_lowercase()
}

fn theme_title(theme: openness::Theme) -> &'static str {
    text(Lang::Zh, &format!("open.theme.{}", theme.as_str()))
}

fn licence(l: Licence) -> Value {
    json!({"id": l.ckan_id(), "title": l.title(), "url": l.url(), "od_conformance": "approved",
        "osd_conformance": "not reviewed", "domain_content": false, "domain_data": true, "domain_software": false,
        "status": "active", "maintainer": "", "family": ""})
}

fn organization(d: &DatasetSummary, count: Option<usize>) -> Value {
    let mut o = json!({"id": d.department_code, "name": organization_name(&d.department_code), "title": d.department_name,
        "display_name": d.department_name, "description": "", "type": "organization", "state": "active",
        "is_organization": true, "approval_status": "approved", "image_url": "", "created": stamp(d.published_at)});
    if let (Some(n), Some(map)) = (count, o.as_object_mut()) {
        map.insert("package_count".into(), json!(n));
    }
    o
}

fn group(theme: openness::Theme, count: Option<usize>) -> Value {
    let mut g = json!({"id": theme.as_str(), "name": theme.as_str(), "title": theme_title(theme),
        "display_name": theme_title(theme), "description": "", "type": "group", "state": "active",
        "is_organization": false, "approval_status": "approved", "image_url": ""});
    if let (Some(n), Some(map)) = (count, g.as_object_mut()) {
        map.insert("package_count".into(), json!(n));
    }
    g
}

fn resource(origin: &str, d: &DatasetSummary, position: usize, dist: &Distribution) -> Value {
    json!({
        "id": format!("{}-{}", d.id, dist.suffix),
        "package_id": d.id,
        "name": format!("{}（{}）", d.title, dist.format),
        "description": dist.description,
        "format": dist.format,
        "mimetype": dist.media_type,
        "url": format!("{origin}/data/datasets/{}/{}", d.name, dist.file),
        "url_type": null,
        "datastore_active": true,
        "state": "active",
        "position": position,
        "created": stamp(d.published_at),
        "last_modified": stamp(d.updated_at),
        "metadata_modified": stamp(d.updated_at),
    })
}

fn package(origin: &str, d: &DatasetSummary) -> Value {
    let resources: Vec<Value> =
        DISTRIBUTIONS.iter().enumerate().map(|(i, dist)| resource(origin, d, i, dist)).collect();
    let tags: Vec<Value> = d
        .tags
        .iter()
        .map(|t| json!({"id": t, "name": t, "display_name": t, "state": "active", "vocabulary_id": null}))
        .collect();
    json!({
        "id": d.id,
        "name": d.name,
        "title": d.title,
        "notes": d.description,
        "type": "dataset",
        "state": "active",
        "private": false,
        "version": d.version.to_string(),
        "url": format!("{origin}/data/datasets/{}", d.name),
        "author": d.department_name,
        "author_email": null,
        "maintainer": d.department_name,
        "maintainer_email": null,
        "license_id": d.licence.ckan_id(),
        "license_title": d.licence.title(),
        "license_url": d.licence.url(),
        "isopen": d.open_level == OpenLevel::Unconditional,
        "metadata_created": stamp(d.published_at),
        "metadata_modified": stamp(d.updated_at),
        "owner_org": d.department_code,
        "organization": organization(d, None),
        "groups": [group(d.theme, None)],
        "tags": tags,
        "num_tags": d.tags.len(),
        "resources": resources,
        "num_resources": DISTRIBUTIONS.len(),
        "extras": [
            {"key": "open_level", "value": d.open_level.as_str()},
            {"key": "update_frequency", "value": d.frequency.as_str()},
            {"key": "source", "value": d.source.as_str()},
            {"key": "rows", "value": d.row_count.to_string()},
        ],
    })
}

async fn all(state: &AppState) -> Result<Vec<DatasetSummary>, Failure> {
    state.openness.catalogue().all().await.map_err(from_openness)
}

async fn dataset_named(state: &AppState, id: &str) -> Result<DatasetSummary, Failure> {
    all(state).await?.into_iter().find(|d| d.name == id || d.id == id).ok_or_else(|| not_found("Dataset"))
}

// --- actions -------------------------------------------------------------------------

async fn package_list(state: &AppState, p: &Map<String, Value>) -> Reply {
    let limit = number(p, "limit", usize::MAX, usize::MAX)?;
    let offset = number(p, "offset", 0, usize::MAX)?;
    let mut names: Vec<String> = all(state).await?.into_iter().map(|d| d.name).collect();
    names.sort();
    Ok(json!(names.into_iter().skip(offset).take(limit).collect::<Vec<_>>()))
}

async fn current_packages(state: &AppState, origin: &str, p: &Map<String, Value>) -> Reply {
    let limit = number(p, "limit", usize::MAX, usize::MAX)?;
    let offset = number(p, "offset", 0, usize::MAX)?;
    let mut datasets = all(state).await?;
    datasets.sort_by_key(|d| std::cmp::Reverse(d.updated_at));
    Ok(Value::Array(datasets.iter().skip(offset).take(limit).map(|d| package(origin, d)).collect()))
}

async fn package_show(state: &AppState, origin: &str, p: &Map<String, Value>) -> Reply {
    let id = required(p, "id")?;
    Ok(package(origin, &dataset_named(state, &id).await?))
}

async fn resource_show(state: &AppState, origin: &str, p: &Map<String, Value>) -> Reply {
    let id = required(p, "id")?;
    let (dataset, dist) = resource_of(state, &id).await?;
    let position = DISTRIBUTIONS.iter().position(|d| d.suffix == dist.suffix).unwrap_or(0);
    Ok(resource(origin, &dataset, position, dist))
}

async fn resource_of(state: &AppState, id: &str) -> Result<(DatasetSummary, &'static Distribution), Failure> {
    let (dataset_id, suffix) = id.rsplit_once('-').ok_or_else(|| not_found("Resource"))?;
    let dist = DISTRIBUTIONS.iter().find(|d| d.suffix == suffix).ok_or_else(|| not_found("Resource"))?;
    let dataset = all(state).await?.into_iter().find(|d| d.id == dataset_id).ok_or_else(|| not_found("Resource"))?;
    Ok((dataset, dist))
}

/// One `field:value` clause of `q` or `fq`.
fn clauses(text: &str) -> Vec<(Option<String>, String)> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        rest = rest.trim_start_matches(['+', ' ']);
        if rest.is_empty() {
            break;
        }
        let (field, after) = match rest.find(':') {
            Some(i) if !rest.get(..i).unwrap_or("").contains([' ', '"']) => {
                (Some(rest.get(..i).unwrap_or("").to_string()), rest.get(i + 1..).unwrap_or(""))
            }
            _ => (None, rest),
        };
        let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (quoted.get(..end).unwrap_or(""), quoted.get(end + 1..).unwrap_or("")),
                None => (quoted, ""),
            }
        } else {
            match after.find(' ') {
                Some(end) => (after.get(..end).unwrap_or(""), after.get(end..).unwrap_or("")),
                None => (after, ""),
            }
        };
        if value != "AND" || field.is_some() {
            out.push((field, value.to_string()));
        }
        rest = tail;
    }
    out
}

/// A dataset's value of a CKAN search field.
fn field_values(d: &DatasetSummary, field: &str) -> Option<Vec<String>> {
    Some(match field {
        "organization" | "owner_org" => vec![organization_name(&d.department_code), d.department_code.clone()],
        "groups" => vec![d.theme.as_str().to_string()],
        "tags" => d.tags.clone(),
        "res_format" => DISTRIBUTIONS.iter().map(|x| x.format.to_string()).collect(),
        "license_id" => vec![d.licence.ckan_id().to_string()],
        "name" => vec![d.name.clone()],
        "id" => vec![d.id.clone()],
        "title" => vec![d.title.clone()],
        "open_level" => vec![d.open_level.as_str().to_string()],
        "update_frequency" => vec![d.frequency.as_str().to_string()],
        _ => return None,
    })
}

async fn package_search(state: &AppState, origin: &str, p: &Map<String, Value>) -> Reply {
    let rows = number(p, "rows", 10, MAX_ROWS)?;
    let start = number(p, "start", 0, usize::MAX)?;
    let q = text_param(p, "q").unwrap_or_default();
    let fq = text_param(p, "fq").unwrap_or_default();
    let mut words = Vec::new();
    let mut exact: Vec<(String, String)> = Vec::new();
    for (field, value) in clauses(&q).into_iter().chain(clauses(&fq)) {
        match field {
            None if value == "*:*" || value == "*" => {}
            None => words.push(value),
            Some(f) if f == "*" && value == "*" => {}
            Some(f) if f == "text" => words.push(value),
            Some(f) if field_values_known(&f) => exact.push((f, value)),
            Some(f) => return Err(query_error(&format!("unknown field {f}"))),
        }
    }
    let sort_text = text_param(p, "sort").unwrap_or_else(|| "score desc, metadata_modified desc".into());
    let sort = match sort_text.split(',').next().unwrap_or("").trim() {
        "" | "score desc" | "relevance asc" | "rank desc" => DatasetSort::Relevance,
        "metadata_modified desc" => DatasetSort::Updated,
        "metadata_created desc" => DatasetSort::Newest,
        "name asc" => DatasetSort::Name,
        "title_string asc" | "title asc" => DatasetSort::Title,
        other => return Err(query_error(&format!("cannot sort by {other}"))),
    };
    let query = DatasetQuery { q: words.join(" "), sort, start: 0, rows: usize::MAX, ..DatasetQuery::default() };
    let page = state.openness.catalogue().search(&query).await.map_err(from_openness)?;
    let matched: Vec<&DatasetSummary> = page
        .datasets
        .iter()
        .filter(|d| exact.iter().all(|(f, v)| field_values(d, f).is_some_and(|vals| vals.iter().any(|x| x == v))))
        .collect();
    let mut facets = Map::new();
    let mut search_facets = Map::new();
    let limit = number(p, "facet.limit", 50, 1000)?;
    for field in list(p, "facet.field") {
        if !field_values_known(&field) {
            return Err(query_error(&format!("cannot facet by {field}")));
        }
        let mut counts: BTreeMap<String, (String, usize)> = BTreeMap::new();
        for d in &matched {
            for v in field_values(d, &field).unwrap_or_default() {
                if field == "organization" && v == d.department_code {
                    continue;
                }
                let shown = match field.as_str() {
                    "organization" => d.department_name.clone(),
                    "groups" => theme_title(d.theme).to_string(),
                    _ => v.clone(),
                };
                counts.entry(v).or_insert((shown, 0)).1 += 1;
            }
        }
        let mut items: Vec<(String, (String, usize))> = counts.into_iter().collect();
        items.sort_by(|a, b| b.1.1.cmp(&a.1.1).then_with(|| a.0.cmp(&b.0)));
        items.truncate(limit);
        facets.insert(field.clone(), Value::Object(items.iter().map(|(k, (_, n))| (k.clone(), json!(n))).collect()));
        search_facets.insert(
            field.clone(),
            json!({"title": field, "items": items.iter().map(|(k, (shown, n))| json!({"name": k, "display_name": shown, "count": n})).collect::<Vec<_>>()}),
        );
    }
    let results: Vec<Value> = matched.iter().skip(start).take(rows).map(|d| package(origin, d)).collect();
    Ok(
        json!({"count": matched.len(), "sort": sort_text, "facets": facets, "search_facets": search_facets, "results": results}),
    )
}

fn field_values_known(field: &str) -> bool {
    [
        "organization",
        "owner_org",
        "groups",
        "tags",
        "res_format",
        "license_id",
        "name",
        "id",
        "title",
        "open_level",
        "update_frequency",
    ]
    .contains(&field)
}

/// Departments that publish, each once with its datasets counted.
async fn organizations(state: &AppState) -> Result<Vec<(DatasetSummary, usize)>, Failure> {
    let mut by: BTreeMap<String, (DatasetSummary, usize)> = BTreeMap::new();
    for d in all(state).await? {
        by.entry(organization_name(&d.department_code)).or_insert_with(|| (d.clone(), 0)).1 += 1;
    }
    Ok(by.into_values().collect())
}

async fn organization_list(state: &AppState, p: &Map<String, Value>) -> Reply {
    let limit = number(p, "limit", 1000, 1000)?;
    let offset = number(p, "offset", 0, usize::MAX)?;
    let orgs = organizations(state).await?.into_iter().skip(offset).take(limit);
    Ok(if flag(p, "all_fields") {
        Value::Array(orgs.map(|(d, n)| organization(&d, Some(n))).collect())
    } else {
        Value::Array(orgs.map(|(d, _)| json!(organization_name(&d.department_code))).collect())
    })
}

async fn organization_show(state: &AppState, origin: &str, p: &Map<String, Value>) -> Reply {
    let id = required(p, "id")?.to_lowercase();
    let (first, n) = organizations(state)
        .await?
        .into_iter()
        .find(|(d, _)| organization_name(&d.department_code) == id)
        .ok_or_else(|| not_found("Organization"))?;
    let mut o = organization(&first, Some(n));
    if flag(p, "include_datasets") {
        let datasets: Vec<Value> = all(state)
            .await?
            .iter()
            .filter(|d| d.department_code == first.department_code)
            .take(1000)
            .map(|d| package(origin, d))
            .collect();
        if let Some(map) = o.as_object_mut() {
            map.insert("packages".into(), Value::Array(datasets));
        }
    }
    Ok(o)
}

async fn groups(state: &AppState) -> Result<Vec<(openness::Theme, usize)>, Failure> {
    let mut by: BTreeMap<String, (openness::Theme, usize)> = BTreeMap::new();
    for d in all(state).await? {
        by.entry(d.theme.as_str().to_string()).or_insert((d.theme, 0)).1 += 1;
    }
    Ok(by.into_values().collect())
}

async fn group_list(state: &AppState, p: &Map<String, Value>) -> Reply {
    let groups = groups(state).await?;
    Ok(if flag(p, "all_fields") {
        Value::Array(groups.into_iter().map(|(t, n)| group(t, Some(n))).collect())
    } else {
        Value::Array(groups.into_iter().map(|(t, _)| json!(t.as_str())).collect())
    })
}

async fn group_show(state: &AppState, origin: &str, p: &Map<String, Value>) -> Reply {
    let id = required(p, "id")?;
    let (theme, n) =
        groups(state).await?.into_iter().find(|(t, _)| t.as_str() == id).ok_or_else(|| not_found("Group"))?;
    let mut g = group(theme, Some(n));
    if flag(p, "include_datasets") {
        let datasets: Vec<Value> =
            all(state).await?.iter().filter(|d| d.theme == theme).take(1000).map(|d| package(origin, d)).collect();
        if let Some(map) = g.as_object_mut() {
            map.insert("packages".into(), Value::Array(datasets));
        }
    }
    Ok(g)
}

async fn tag_list(state: &AppState, p: &Map<String, Value>) -> Reply {
    let query = text_param(p, "query").unwrap_or_default().to_lowercase();
    let mut tags: Vec<String> = all(state).await?.into_iter().flat_map(|d| d.tags).collect();
    tags.sort();
    tags.dedup();
    tags.retain(|t| t.to_lowercase().contains(&query));
    Ok(if flag(p, "all_fields") {
        Value::Array(tags.iter().map(|t| json!({"id": t, "name": t, "vocabulary_id": null})).collect())
    } else {
        json!(tags)
    })
}

fn datastore_type(kind: ColumnType) -> &'static str {
    match kind {
        ColumnType::Integer => "int",
        ColumnType::Number => "numeric",
        ColumnType::Date => "date",
        ColumnType::Boolean => "bool",
        ColumnType::Text | ColumnType::Month | ColumnType::Code => "text",
    }
}

async fn datastore_search(state: &AppState, headers: &HeaderMap, p: &Map<String, Value>) -> Reply {
    let resource_id = required(p, "resource_id").or_else(|_| required(p, "id"))?;
    let (dataset, _) = resource_of(state, &resource_id).await?;
    let limit = number(p, "limit", 100, openness::data::MAX_PAGE_ROWS)?;
    let offset = number(p, "offset", 0, 10_000_000)?;
    let q = match p.get("q") {
        Some(Value::Object(_)) => return Err(invalid("q", "Search by column is not supported: use filters")),
        _ => text_param(p, "q"),
    };
    let query = crate::api::open_data::row_query(
        q,
        object(p, "filters")?,
        text_param(p, "sort").as_deref(),
        list(p, "fields"),
        offset,
        limit,
    )
    .map_err(|e| invalid("query", &e.message))?;
    let reader = key_of(headers).map_or(Reader::Anyone, Reader::Key);
    let page = state.openness.catalogue().rows(&dataset.id, reader, &query, Utc::now()).await.map_err(from_openness)?;
    let fields: Vec<Value> = page
        .fields
        .iter()
        .map(|c| json!({"id": c.name, "type": datastore_type(c.kind), "info": {"label": c.title}}))
        .collect();
    let base = format!("/api/3/action/datastore_search?resource_id={resource_id}");
    Ok(json!({
        "resource_id": resource_id,
        "fields": fields,
        "records": page.rows,
        "total": page.total,
        "total_was_estimated": false,
        "limit": limit,
        "offset": offset,
        "records_format": "objects",
        "include_total": true,
        "_links": {"start": base, "next": format!("{base}&offset={}", offset + limit)},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solr_clauses_are_read_as_ckan_clients_write_them() {
        let c = clauses(r#"organization:"990102-mz" +tags:养老 AND res_format:CSV 低保"#);
        let want: Vec<(Option<String>, String)> = vec![
            (Some("organization".into()), "990102-mz".into()),
            (Some("tags".into()), "养老".into()),
            (Some("res_format".into()), "CSV".into()),
            (None, "低保".into()),
        ];
        assert_eq!(c, want);
        assert_eq!(clauses("*:*"), vec![(Some("*".into()), "*".into())]);
    }
}
