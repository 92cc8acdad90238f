//! Open311 GeoReport v2 under `/open311/v2/`, JSON or XML by the extension (`.json`,
//! `.xml`), as the specification describes it (http://wiki.open311.org/GeoReport_v2):
//! `discovery`, `services`, `services/{service_code}`, `requests` (GET and POST),
//! `requests/{service_request_id}` and `tokens/{token}`. Errors answer in the
//! specification's format (`[{"code", "description"}]`).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::AppState;
use voice::{PostedRequest, RequestKind, RequestQuery, ServiceRequest, Urgency};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/{resource}", get(collection).post(post_request))
        .route("/services/{file}", get(service_definition))
        .route("/requests/{file}", get(one_request))
        .route("/tokens/{file}", get(token))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Xml,
}

/// `name.json` or `name.xml`: the name and the format.
fn split(file: &str) -> Option<(&str, Format)> {
    let (name, ext) = file.rsplit_once('.')?;
    match ext {
        "json" => Some((name, Format::Json)),
        "xml" => Some((name, Format::Xml)),
        _ => None,
    }
}

/// An answer in the specification's error format.
struct Failure {
    status: StatusCode,
    description: String,
    format: Format,
}

#[derive(Serialize)]
struct ErrorItem {
    code: u16,
    description: String,
}

#[derive(Serialize)]
struct Errors {
    error: Vec<ErrorItem>,
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let item = ErrorItem { code: self.status.as_u16(), description: self.description };
        let mut r = match self.format {
            Format::Json => body(Format::Json, "errors", &vec![item]),
            Format::Xml => body(Format::Xml, "errors", &Errors { error: vec![item] }),
        };
        *r.status_mut() = self.status;
        r
    }
}

fn fail(status: StatusCode, description: impl Into<String>, format: Format) -> Failure {
    Failure { status, description: description.into(), format }
}

fn failed(e: voice::Error, format: Format) -> Failure {
    match e {
        voice::Error::Invalid { field, reason } => fail(StatusCode::BAD_REQUEST, format!("{field}: {reason}"), format),
        voice::Error::NotFound(what) => fail(StatusCode::NOT_FOUND, format!("{what} not found"), format),
        voice::Error::Denied(d) => fail(StatusCode::FORBIDDEN, d.to_string(), format),
        other => {
            tracing::error!(error = %other, "open311 request failed");
            fail(StatusCode::INTERNAL_SERVER_ERROR, "the server could not answer; try again later", format)
        }
    }
}

/// A JSON body, or an XML document with `root` as its element.
fn body<T: Serialize>(format: Format, root: &str, value: &T) -> Response {
    let (text, content_type) = match format {
        Format::Json => (serde_json::to_string(value).map_err(|e| e.to_string()), "application/json"),
        Format::Xml => (
            quick_xml::se::to_string_with_root(root, value)
                .map(|x| format!("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n{x}"))
                .map_err(|e| e.to_string()),
            "text/xml; charset=utf-8",
        ),
    };
    match text {
        Ok(text) => {
            let mut r = text.into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "an Open311 answer did not serialise");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

type Reply = Result<Response, Failure>;

#[derive(Serialize)]
struct Service {
    service_code: String,
    service_name: String,
    description: String,
    metadata: bool,
    r#type: &'static str,
    keywords: String,
    group: String,
}

#[derive(Serialize)]
struct Services {
    service: Vec<Service>,
}

#[derive(Serialize)]
struct Requests {
    request: Vec<ServiceRequest>,
}

#[derive(Serialize)]
struct Posted {
    service_request_id: String,
    service_notice: Option<String>,
    account_id: Option<String>,
}

#[derive(Serialize)]
struct PostedList {
    request: Vec<Posted>,
}

#[derive(Serialize)]
struct Formats {
    format: Vec<&'static str>,
}

#[derive(Serialize)]
struct Endpoint {
    specification: &'static str,
    url: String,
    changeset: &'static str,
    r#type: &'static str,
    formats: Formats,
}

#[derive(Serialize)]
struct Endpoints {
    endpoint: Vec<Endpoint>,
}

#[derive(Serialize)]
struct Discovery {
    changeset: &'static str,
    contact: &'static str,
    key_service: &'static str,
    endpoints: Endpoints,
}

/// When this endpoint's description last changed.
const CHANGESET: &str = "2026-12-07T00:00:00+08:00";

/// This endpoint's address as clients reach it.
fn base_url(headers: &HeaderMap, secure: bool) -> String {
    format!("{}/open311/v2", crate::open_data::site_origin(headers, secure))
}

async fn collection(
    State(state): State<AppState>,
    Path(resource): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Reply {
    let Some((name, format)) = split(&resource) else {
        return Err(fail(StatusCode::NOT_FOUND, "ask for name.json or name.xml", Format::Json));
    };
    match name {
        "discovery" => {
            let url = base_url(&headers, state.secure_cookies);
            let formats = vec!["text/xml", "application/json"];
            let contact = "12345 政务服务便民热线";
            let key_service = "Run `tongban open311 client add --name NAME` on the server for an api_key.";
            let spec = "http://wiki.open311.org/GeoReport_v2";
            Ok(match format {
                // JSON lists the endpoints and formats bare; XML wraps each list in its element.
                Format::Json => body(
                    format,
                    "discovery",
                    &serde_json::json!({"changeset": CHANGESET, "contact": contact, "key_service": key_service,
                        "endpoints": [{"specification": spec, "url": url, "changeset": CHANGESET,
                            "type": "production", "formats": formats}]}),
                ),
                Format::Xml => body(
                    format,
                    "discovery",
                    &Discovery {
                        changeset: CHANGESET,
                        contact,
                        key_service,
                        endpoints: Endpoints {
                            endpoint: vec![Endpoint {
                                specification: spec,
                                url,
                                changeset: CHANGESET,
                                r#type: "production",
                                formats: Formats { format: formats },
                            }],
                        },
                    },
                ),
            })
        }
        "services" => {
            let list: Vec<Service> = state
                .voice
                .open311()
                .services()
                .iter()
                .map(|c| Service {
                    service_code: c.code.clone(),
                    service_name: c.name_zh.clone(),
                    description: c.name_en.clone(),
                    // Every service takes the same attributes: the kind of request and urgency.
                    metadata: true,
                    r#type: "realtime",
                    keywords: String::new(),
                    group: "12345".into(),
                })
                .collect();
            Ok(match format {
                Format::Json => body(format, "services", &list),
                Format::Xml => body(format, "services", &Services { service: list }),
            })
        }
        "requests" => {
            let query = request_query(q.as_deref(), format)?;
            let list = state.voice.open311().requests(&query, Utc::now()).await.map_err(|e| failed(e, format))?;
            Ok(requests_body(format, list))
        }
        _ => Err(fail(StatusCode::NOT_FOUND, format!("no resource {name}"), format)),
    }
}

fn requests_body(format: Format, list: Vec<ServiceRequest>) -> Response {
    match format {
        Format::Json => body(format, "service_requests", &list),
        Format::Xml => body(format, "service_requests", &Requests { request: list }),
    }
}

fn pairs(raw: Option<&str>) -> Vec<(String, String)> {
    raw.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default()
}

fn field(p: &[(String, String)], name: &str) -> Option<String> {
    p.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

fn date(p: &[(String, String)], name: &str, format: Format) -> Result<Option<DateTime<Utc>>, Failure> {
    match field(p, name).filter(|v| !v.trim().is_empty()) {
        None => Ok(None),
        Some(v) => DateTime::parse_from_rfc3339(v.trim())
            .map(|d| Some(d.with_timezone(&Utc)))
            .map_err(|_| fail(StatusCode::BAD_REQUEST, format!("{name}: a w3 (ISO 8601) date-time"), format)),
    }
}

fn request_query(raw: Option<&str>, format: Format) -> Result<RequestQuery, Failure> {
    let p = pairs(raw);
    let list = |name: &str| -> Vec<String> {
        field(&p, name)
            .map(|v| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
            .unwrap_or_default()
    };
    Ok(RequestQuery {
        ids: list("service_request_id"),
        service_codes: list("service_code"),
        start: date(&p, "start_date", format)?,
        end: date(&p, "end_date", format)?,
        status: field(&p, "status"),
    })
}

async fn post_request(State(state): State<AppState>, Path(resource): Path<String>, body_bytes: Bytes) -> Reply {
    let Some(("requests", format)) = split(&resource) else {
        return Err(fail(StatusCode::NOT_FOUND, "post to requests.json or requests.xml", Format::Json));
    };
    let text = std::str::from_utf8(&body_bytes)
        .map_err(|_| fail(StatusCode::BAD_REQUEST, "send the fields form-encoded in UTF-8", format))?;
    let p = pairs(Some(text));
    let key = field(&p, "api_key").filter(|k| !k.trim().is_empty());
    let key = key.ok_or_else(|| fail(StatusCode::FORBIDDEN, "api_key is required", format))?;
    let client = state.voice.open311().client(&key).await.map_err(|e| failed(e, format))?;
    let client = client.ok_or_else(|| fail(StatusCode::FORBIDDEN, "api_key is not valid", format))?;
    let service_code = field(&p, "service_code").filter(|c| !c.trim().is_empty());
    let service_code = service_code.ok_or_else(|| fail(StatusCode::BAD_REQUEST, "service_code is required", format))?;
    let (kind, urgency) = attributes(&p, format)?;
    let posted = PostedRequest {
        service_code,
        kind,
        urgency,
        jurisdiction_id: field(&p, "jurisdiction_id"),
        description: field(&p, "description").unwrap_or_default(),
        address_string: field(&p, "address_string"),
        lat: field(&p, "lat"),
        long: field(&p, "long"),
        first_name: field(&p, "first_name"),
        last_name: field(&p, "last_name"),
        phone: field(&p, "phone"),
    };
    let made = state.voice.open311().post(&client, posted, Utc::now()).await.map_err(|e| failed(e, format))?;
    let notice = made.agency_responsible.as_ref().map(|a| format!("已转 {a} 办理"));
    let item = Posted { service_request_id: made.service_request_id, service_notice: notice, account_id: None };
    let mut r = match format {
        Format::Json => body(format, "service_requests", &vec![item]),
        Format::Xml => body(format, "service_requests", &PostedList { request: vec![item] }),
    };
    *r.status_mut() = StatusCode::CREATED;
    Ok(r)
}

/// The attributes a POST may carry (`attribute[kind]`, `attribute[urgency]`), checked
/// against the service definition: an unknown code or value answers 400.
fn attributes(p: &[(String, String)], format: Format) -> Result<(Option<RequestKind>, Option<Urgency>), Failure> {
    let (mut kind, mut urgency) = (None, None);
    for (k, v) in p {
        let Some(code) = k.strip_prefix("attribute[").and_then(|r| r.strip_suffix(']')) else { continue };
        let bad = |what: &str| fail(StatusCode::BAD_REQUEST, format!("attribute[{code}]: {what}"), format);
        match code {
            "kind" => kind = Some(v.trim().parse().map_err(|_| bad("one of the definition's keys"))?),
            "urgency" => urgency = Some(v.trim().parse().map_err(|_| bad("normal or urgent"))?),
            _ => return Err(bad("not an attribute of this service")),
        }
    }
    Ok((kind, urgency))
}

#[derive(Serialize)]
struct AttributeValue {
    key: &'static str,
    name: &'static str,
}

#[derive(Serialize)]
struct AttributeValues {
    value: Vec<AttributeValue>,
}

/// A service attribute as GeoReport v2 defines it.
#[derive(Serialize)]
struct Attribute {
    variable: bool,
    code: &'static str,
    datatype: &'static str,
    required: bool,
    datatype_description: Option<&'static str>,
    order: u32,
    description: &'static str,
    values: AttributeValues,
}

/// Every service's attributes: the kind of request (default 求助) and urgency (default
/// normal), their values named in Chinese as the portal names them.
fn service_attributes() -> Vec<Attribute> {
    let named = |group: &str, key: &'static str| AttributeValue {
        key,
        name: crate::i18n::text(crate::i18n::Lang::Zh, &format!("voice.{group}.{key}")),
    };
    let kinds = <RequestKind as strum::VariantArray>::VARIANTS.iter().map(|k| named("kind", k.as_str())).collect();
    let urgencies = <Urgency as strum::VariantArray>::VARIANTS.iter().map(|u| named("urgency", u.as_str())).collect();
    vec![
        Attribute {
            variable: true,
            code: "kind",
            datatype: "singlevaluelist",
            required: false,
            datatype_description: None,
            order: 1,
            description: "诉求类型 (kind of request; default help)",
            values: AttributeValues { value: kinds },
        },
        Attribute {
            variable: true,
            code: "urgency",
            datatype: "singlevaluelist",
            required: false,
            datatype_description: None,
            order: 2,
            description: "紧急程度 (urgency; default normal)",
            values: AttributeValues { value: urgencies },
        },
    ]
}

#[derive(Serialize)]
struct Attributes {
    attribute: Vec<Attribute>,
}

#[derive(Serialize)]
struct ServiceDefinition {
    service_code: String,
    attributes: Attributes,
}

async fn service_definition(State(state): State<AppState>, Path(file): Path<String>) -> Reply {
    let (code, format) =
        split(&file).ok_or_else(|| fail(StatusCode::NOT_FOUND, "ask for CODE.json or CODE.xml", Format::Json))?;
    if !state.voice.open311().services().iter().any(|c| c.code == code) {
        return Err(fail(StatusCode::NOT_FOUND, format!("no service {code}"), format));
    }
    Ok(match format {
        // JSON lists the attributes and values bare; XML wraps each list in its element.
        Format::Json => {
            let attributes: Vec<serde_json::Value> = service_attributes()
                .into_iter()
                .map(|a| {
                    serde_json::json!({"variable": a.variable, "code": a.code, "datatype": a.datatype,
                        "required": a.required, "datatype_description": a.datatype_description,
                        "order": a.order, "description": a.description, "values": a.values.value})
                })
                .collect();
            body(format, "service_definition", &serde_json::json!({"service_code": code, "attributes": attributes}))
        }
        Format::Xml => body(
            format,
            "service_definition",
            &ServiceDefinition {
                service_code: code.to_string(),
                attributes: Attributes { attribute: service_attributes() },
            },
        ),
    })
}

async fn one_request(State(state): State<AppState>, Path(file): Path<String>) -> Reply {
    let (id, format) =
        split(&file).ok_or_else(|| fail(StatusCode::NOT_FOUND, "ask for ID.json or ID.xml", Format::Json))?;
    let found = state.voice.open311().request(id).await.map_err(|e| failed(e, format))?;
    Ok(requests_body(format, vec![found]))
}

/// Requests are given their id at once, so no token is ever outstanding.
async fn token(Path(file): Path<String>) -> Reply {
    let format = split(&file).map_or(Format::Json, |(_, f)| f);
    Err(fail(StatusCode::NOT_FOUND, "this endpoint answers service_request_id at once and issues no tokens", format))
}
