//! Open data for machines: the downloads of each dataset (CSV and JSON, any version), the
//! CKAN Action API and the DCAT-AP catalogue. The JSON API under /api/v1/open-data is in
//! `api::open_data`; the portal's pages in `pages::data`.

mod ckan;
pub(crate) mod dcat;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use serde::Deserialize;

use crate::AppState;
use crate::error::ApiError;
use openness::data::{DownloadFormat, Reader};

/// A form a dataset is distributed in: a file of the download route, and the resource it
/// is to CKAN and DCAT.
pub struct Distribution {
    /// The end of the CKAN resource's id (`<dataset id>-csv`).
    pub suffix: &'static str,
    pub file: &'static str,
    pub format: &'static str,
    pub media_type: &'static str,
    pub description: &'static str,
    pub download: DownloadFormat,
}

pub const DISTRIBUTIONS: &[Distribution] = &[
    Distribution {
        suffix: "csv",
        file: "data.csv",
        format: "CSV",
        media_type: "text/csv",
        description: "UTF-8 CSV；首行为字段名。其 SHA-256 记入公开账本。",
        download: DownloadFormat::Csv,
    },
    Distribution {
        suffix: "json",
        file: "data.json",
        format: "JSON",
        media_type: "application/json",
        description: "JSON 数组，每条记录一个对象，键为字段名。",
        download: DownloadFormat::Json,
    },
];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/3/action/{action}", get(ckan::action_get).post(ckan::action_post))
        .route("/api/action/{action}", get(ckan::action_get).post(ckan::action_post))
        .route("/data/datasets/{name}/{file}", get(download))
        .merge(dcat::router())
}

/// The platform's address as clients reach it: https where it is served over TLS (directly
/// or behind its proxy, as its secure cookies say).
pub fn site_origin(headers: &HeaderMap, secure: bool) -> String {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    format!("{}://{host}", if secure { "https" } else { "http" })
}

/// The API key a request carries: `X-API-Key`, or as CKAN clients send it (`Authorization`
/// holding the key itself, or `X-CKAN-API-Key`).
pub fn key_of(headers: &HeaderMap) -> Option<&str> {
    ["x-api-key", "x-ckan-api-key", "authorization"]
        .iter()
        .filter_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()))
        .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).trim())
        .find(|v| v.starts_with("tbod_"))
}

#[derive(Debug, Deserialize)]
struct DownloadQuery {
    version: Option<i64>,
}

/// A dataset's rows as a file (`data.csv`, `data.json`): the current version, or
/// `?version=N`; a conditional dataset needs the key of an approved application. Or its
/// DCAT-AP description (`dcat.ttl`, `dcat.rdf`, `dcat.jsonld`).
async fn download(
    State(state): State<AppState>,
    Path((name, file)): Path<(String, String)>,
    crate::extract::ApiQuery(q): crate::extract::ApiQuery<DownloadQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(syntax) = file.strip_prefix("dcat.").and_then(dcat::Syntax::from_extension) {
        return dcat::dataset(&state, &headers, &name, syntax).await;
    }
    let dist = DISTRIBUTIONS.iter().find(|d| d.file == file).ok_or_else(|| ApiError::not_found("file"))?;
    let reader = key_of(&headers).map_or(Reader::Anyone, Reader::Key);
    let (dataset, bytes) =
        state.openness.catalogue().download(&name, q.version, dist.download, reader, Utc::now()).await?;
    let mut r = bytes.into_response();
    let media = format!("{}; charset=utf-8", dist.media_type);
    if let Ok(v) = HeaderValue::from_str(&media) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    let version = q.version.unwrap_or(dataset.version);
    let disposition = format!("attachment; filename=\"{}-v{version}.{}\"", dataset.name, dist.suffix);
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    r.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    Ok(r)
}
