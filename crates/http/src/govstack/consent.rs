//! The GovStack Consent building block under `/govstack/consent/`: the organisation admin's
//! operations (`/config/…`, a staff token with `consent.manage`) and the individual's
//! (`/service/…`, called by a system the Information Mediator names, for the individual
//! in `X-ConsentBB-IndividualId`). Verification (`/service/verification/…`) is for a data
//! consumer's system, authenticated with its exchange secret; audit (`/audit/…`) for a staff
//! token with `consent.audit`. Paths answer with and without their trailing slash;
//! bodies come in their envelope (`{"policy": …}`) or bare; lists take `offset` and `limit`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::{MethodRouter, get, post};
use chrono::Utc;
use serde_json::{Value, json};

use super::registration::json;
use super::{Mediated, form_pairs};
use crate::AppState;
use crate::error::{ApiError, ErrorCode};
use crate::extract::Authorized;
use exchange::{ConsentDocument as Doc, ConsentReader as Reader, ConsentRecordPage, ConsentRecordQuery};
use kernel::authz::{ConsentAudit, ConsentManage};

type Reply = Result<Response, ApiError>;

/// Registers a path with and without its trailing slash.
fn both(router: Router<AppState>, path: &str, method: MethodRouter<AppState>) -> Router<AppState> {
    router.route(path, method.clone()).route(&format!("{path}/"), method)
}

pub fn router() -> Router<AppState> {
    let mut r = Router::new();
    r = documents(r, Doc::Policy, "policy", "policies");
    r = documents(r, Doc::DataAgreement, "data-agreement", "data-agreements");
    r = both(r, "/config/individual", post(config_create_individual));
    r = both(r, "/config/individual/{id}", get(config_read_individual));
    r = both(r, "/config/individuals", get(list_individuals));
    r = both(r, "/config/webhook", post(create_webhook));
    r = both(r, "/config/webhook/{id}", get(read_webhook).put(update_webhook).delete(delete_webhook));
    r = both(r, "/config/webhooks", get(list_webhooks));
    r = both(r, "/service/individual", post(create_individual));
    r = both(r, "/service/individual/{id}", get(read_individual).put(update_individual));
    r = both(r, "/service/individual/record/data-agreement/{id}", post(give_consent).get(consent_record));
    r = both(r, "/service/individual/record/data-agreement/{id}/all", get(consent_records_for_agreement));
    r = both(r, "/service/individual/record/consent-record", get(my_consent_records).post(create_signed_record));
    r = both(r, "/service/individual/record/consent-record/draft", post(draft_record));
    r = both(r, "/service/individual/record/consent-record/{id}", axum::routing::put(update_consent_record));
    r = both(
        r,
        "/service/individual/record/consent-record/{id}/signature",
        post(start_signature).put(complete_signature),
    );
    r = both(r, "/service/individual/record", axum::routing::delete(withdraw_all));
    r = both(r, "/service/verification/data-agreements", get(verifiable_data_agreements));
    r = both(r, "/service/verification/consent-records", get(verify_consent_records));
    r = both(r, "/service/verification/consent-record/{id}", get(verify_consent_record));
    r = both(r, "/audit/consent-records", get(audit_consent_records));
    r = both(r, "/audit/consent-record/{id}", get(audit_consent_record));
    r = both(r, "/audit/data-agreements", get(audit_data_agreements));
    r = both(r, "/audit/data-agreement/{id}", get(audit_data_agreement));
    r
}

fn ok(v: Value) -> Response {
    json(StatusCode::OK, &v)
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidBody, message)
}

/// Exchange errors as this building block's clients expect them: bad input is 400.
fn failed(e: exchange::Error) -> ApiError {
    ApiError::from(e).unprocessable_as_bad_request()
}

/// The object of a body: inside its envelope, or bare.
fn envelope(body: &Bytes, key: &str) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(bad(format!("send {{\"{key}\": {{…}}}}")));
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::MalformedJson, e.to_string()))?;
    let inner = v.get(key).cloned().unwrap_or(v);
    if inner.is_object() { Ok(inner) } else { Err(bad(format!("{key} is an object"))) }
}

fn param(params: &[(String, String)], name: &str) -> Option<String> {
    params.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
}

/// The `offset` and `limit` of a list (10 by default, at most 1,000).
fn bounds(raw: Option<&str>) -> Result<(usize, usize), ApiError> {
    let p = form_pairs(raw);
    let number = |name: &str, default: usize| match param(&p, name) {
        None => Ok(default),
        Some(v) => v.trim().parse::<usize>().map_err(|_| bad(format!("{name}: a whole number"))),
    };
    Ok((number("offset", 0)?, number("limit", 10)?.clamp(1, 1000)))
}

/// The pagination object of a page of `total` items.
fn pagination(total: usize, offset: usize, limit: usize) -> Value {
    json!({
        "currentPage": offset / limit + 1,
        "totalItems": total,
        "totalPages": total.div_ceil(limit),
        "limit": limit,
        "hasPrevious": offset > 0,
        "hasNext": offset.saturating_add(limit) < total,
    })
}

/// One page of a list held in full, and its pagination object.
fn page(items: Vec<Value>, raw: Option<&str>) -> Result<(Vec<Value>, Value), ApiError> {
    let (offset, limit) = bounds(raw)?;
    let total = items.len();
    let shown: Vec<Value> = items.into_iter().skip(offset).take(limit).collect();
    Ok((shown, pagination(total, offset, limit)))
}

/// The consent records a verifier or auditor asks for: `consentRecordId` (or `id`),
/// `dataAgreementId`, `individualId` (or the X-ConsentBB-IndividualId header) and `optIn`.
fn record_query(headers: &HeaderMap, raw: Option<&str>) -> Result<ConsentRecordQuery, ApiError> {
    let p = form_pairs(raw);
    let given = |names: &[&str]| {
        names.iter().find_map(|n| param(&p, n)).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
    };
    let opt_in = match given(&["optIn"]).map(|v| v.to_ascii_lowercase()).as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => return Err(bad("optIn is true or false")),
    };
    let header_individual = headers
        .get("x-consentbb-individualid")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty());
    Ok(ConsentRecordQuery {
        id: given(&["consentRecordId", "id"]),
        data_agreement_id: given(&["dataAgreementId"]),
        individual_id: given(&["individualId"]).or(header_individual),
        opt_in,
    })
}

/// A page of consent records as the building block answers it.
fn record_page(page: ConsentRecordPage, offset: usize, limit: usize) -> Response {
    ok(json!({"consentRecords": page.records, "pagination": pagination(page.total, offset, limit)}))
}

/// The individual a service call is for: the header, else the `individualId` parameter.
fn individual(headers: &HeaderMap, raw: Option<&str>) -> Result<String, ApiError> {
    headers
        .get("x-consentbb-individualid")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| param(&form_pairs(raw), "individualId"))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| bad("name the individual in X-ConsentBB-IndividualId"))
}

/// A revision, with its fields at the top as well (clients read either).
fn deleted(revision: Value) -> Value {
    let mut out = revision.clone();
    if let Some(o) = out.as_object_mut() {
        o.insert("revision".into(), revision);
    }
    out
}

// --- organisation admin -----------------------------------------------------------------

/// The routes of one kind of document: `/config/{one}…` for its administrator, and
/// `/service/{one}/{id}` for the systems acting for individuals.
fn documents(mut r: Router<AppState>, doc: Doc, one: &str, many: &str) -> Router<AppState> {
    r = both(
        r,
        &format!("/config/{one}"),
        post(move |state: State<AppState>, cap: Authorized<ConsentManage>, body: Bytes| {
            put_document(doc, state, cap, None, body)
        }),
    );
    r = both(
        r,
        &format!("/config/{one}/{{id}}"),
        get(move |state: State<AppState>, cap: Authorized<ConsentManage>, id: Path<String>, q: RawQuery| {
            read_document(doc, state, cap, id, q)
        })
        .put(move |state: State<AppState>, cap: Authorized<ConsentManage>, Path(id): Path<String>, body: Bytes| {
            put_document(doc, state, cap, Some(id), body)
        })
        .delete(move |state: State<AppState>, cap: Authorized<ConsentManage>, id: Path<String>| {
            delete_document(doc, state, cap, id)
        }),
    );
    r = both(
        r,
        &format!("/config/{one}/{{id}}/revisions"),
        get(move |state: State<AppState>, cap: Authorized<ConsentManage>, id: Path<String>, q: RawQuery| {
            document_revisions(doc, state, cap, id, q)
        }),
    );
    r = both(
        r,
        &format!("/config/{many}"),
        get(move |state: State<AppState>, cap: Authorized<ConsentManage>, q: RawQuery| {
            list_documents(doc, state, cap, q)
        }),
    );
    both(
        r,
        &format!("/service/{one}/{{id}}"),
        get(move |state: State<AppState>, system: Mediated, id: Path<String>, q: RawQuery| {
            service_document(doc, state, system, id, q)
        }),
    )
}

/// A document as it now is, or at `?revisionId=`.
async fn at_revision(
    state: &AppState,
    doc: Doc,
    reader: Reader<'_>,
    id: &str,
    q: Option<&str>,
) -> Result<Response, ApiError> {
    let found = match param(&form_pairs(q), "revisionId").filter(|r| !r.trim().is_empty()) {
        Some(revision) => state.exchange.signatures().at_revision(reader, id, revision.trim()).await,
        None => state.exchange.consent().document(doc, reader, id).await,
    };
    let (document, revision) = found.map_err(failed)?;
    Ok(ok(json!({doc.key(): document, "revision": revision})))
}

async fn put_document(
    doc: Doc,
    State(state): State<AppState>,
    Authorized(cap): Authorized<ConsentManage>,
    id: Option<String>,
    body: Bytes,
) -> Reply {
    let document = envelope(&body, doc.key())?;
    let (document, revision) =
        state.exchange.consent().put(doc, &cap, id.as_deref(), document, Utc::now()).await.map_err(failed)?;
    Ok(ok(json!({doc.key(): document, "revision": revision})))
}

async fn read_document(
    doc: Doc,
    State(state): State<AppState>,
    Authorized(cap): Authorized<ConsentManage>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Reply {
    at_revision(&state, doc, Reader::Administrator(&cap), &id, q.as_deref()).await
}

async fn delete_document(
    doc: Doc,
    State(state): State<AppState>,
    Authorized(cap): Authorized<ConsentManage>,
    Path(id): Path<String>,
) -> Reply {
    Ok(ok(deleted(state.exchange.consent().delete(doc, &cap, &id, Utc::now()).await.map_err(failed)?)))
}

async fn document_revisions(
    doc: Doc,
    State(state): State<AppState>,
    Authorized(cap): Authorized<ConsentManage>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Reply {
    let consent = state.exchange.consent();
    let (document, _) = consent.document(doc, Reader::Administrator(&cap), &id).await.map_err(failed)?;
    let revisions = consent.revisions(&cap, &id).await.map_err(failed)?;
    let (revisions, pagination) = page(revisions, q.as_deref())?;
    Ok(ok(json!({doc.key(): document, "revisions": revisions, "pagination": pagination})))
}

/// Policies under `policies`; data agreements under the specification's key
/// (`dataAgreement`) and the one clients read (`dataAgreements`).
async fn list_documents(
    doc: Doc,
    State(state): State<AppState>,
    Authorized(cap): Authorized<ConsentManage>,
    RawQuery(q): RawQuery,
) -> Reply {
    let all = state.exchange.consent().documents(doc, &cap).await.map_err(failed)?;
    let (documents, pagination) = page(all, q.as_deref())?;
    Ok(ok(match doc {
        Doc::Policy => json!({"policies": documents, "pagination": pagination}),
        Doc::DataAgreement => {
            json!({"dataAgreement": documents, "dataAgreements": documents, "pagination": pagination})
        }
    }))
}

async fn config_create_individual(
    State(state): State<AppState>,
    Authorized(cap): Authorized<ConsentManage>,
    body: Bytes,
) -> Reply {
    let individual = envelope(&body, "individual")?;
    let by = Reader::Administrator(&cap);
    let created = state.exchange.consent().create_individual(by, &individual, Utc::now()).await.map_err(failed)?;
    Ok(ok(json!({"individual": created})))
}

async fn config_read_individual(
    State(state): State<AppState>,
    Authorized(cap): Authorized<ConsentManage>,
    Path(id): Path<String>,
) -> Reply {
    let individual = state.exchange.consent().individual(Reader::Administrator(&cap), &id).await.map_err(failed)?;
    Ok(ok(json!({"individual": individual})))
}

async fn list_individuals(
    State(state): State<AppState>,
    Authorized(cap): Authorized<ConsentManage>,
    RawQuery(q): RawQuery,
) -> Reply {
    let all = state.exchange.consent().individuals(&cap).await.map_err(failed)?;
    let all: Vec<Value> = all.iter().map(|i| json!(i)).collect();
    let (individuals, pagination) = page(all, q.as_deref())?;
    Ok(ok(json!({"individuals": individuals, "pagination": pagination})))
}

// --- individuals, through their systems -------------------------------------------------

async fn service_document(
    doc: Doc,
    State(state): State<AppState>,
    Mediated(system): Mediated,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Reply {
    at_revision(&state, doc, Reader::System(&system), &id, q.as_deref()).await
}

async fn create_individual(State(state): State<AppState>, Mediated(system): Mediated, body: Bytes) -> Reply {
    let individual = envelope(&body, "individual")?;
    let by = Reader::System(&system);
    let created = state.exchange.consent().create_individual(by, &individual, Utc::now()).await.map_err(failed)?;
    Ok(ok(json!({"individual": created})))
}

async fn read_individual(State(state): State<AppState>, Mediated(system): Mediated, Path(id): Path<String>) -> Reply {
    let individual = state.exchange.consent().individual(Reader::System(&system), &id).await.map_err(failed)?;
    Ok(ok(json!({"individual": individual})))
}

async fn update_individual(
    State(state): State<AppState>,
    Mediated(system): Mediated,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    let individual = envelope(&body, "individual")?;
    let updated = state.exchange.consent().update_individual(&system, &id, &individual).await.map_err(failed)?;
    Ok(ok(json!({"individual": updated})))
}

async fn give_consent(
    State(state): State<AppState>,
    Mediated(client): Mediated,
    headers: HeaderMap,
    Path(agreement): Path<String>,
    RawQuery(q): RawQuery,
) -> Reply {
    let individual = individual(&headers, q.as_deref())?;
    let (record, revision) = state
        .exchange
        .consent()
        .set_consent_for(&individual, &agreement, true, client.as_str(), Utc::now())
        .await
        .map_err(failed)?;
    Ok(ok(json!({"consentRecord": record, "revision": revision})))
}

async fn consent_record(
    State(state): State<AppState>,
    Mediated(_): Mediated,
    headers: HeaderMap,
    Path(agreement): Path<String>,
    RawQuery(q): RawQuery,
) -> Reply {
    let individual = individual(&headers, q.as_deref())?;
    Ok(ok(
        json!({"consentRecord": state.exchange.consent().consent_record_for(&individual, &agreement).await.map_err(failed)?}),
    ))
}

/// One record per individual and agreement here: the list holds it.
async fn consent_records_for_agreement(
    State(state): State<AppState>,
    Mediated(_): Mediated,
    headers: HeaderMap,
    Path(agreement): Path<String>,
    RawQuery(q): RawQuery,
) -> Reply {
    let individual = individual(&headers, q.as_deref())?;
    let record = state.exchange.consent().consent_record_for(&individual, &agreement).await.map_err(failed)?;
    let (records, pagination) = page(vec![record], q.as_deref())?;
    Ok(ok(json!({"consentRecords": records, "pagination": pagination})))
}

async fn my_consent_records(
    State(state): State<AppState>,
    Mediated(_): Mediated,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Reply {
    let individual = individual(&headers, q.as_deref())?;
    let (records, pagination) =
        page(state.exchange.consent().consent_records(&individual).await.map_err(failed)?, q.as_deref())?;
    Ok(ok(json!({"consentRecords": records, "pagination": pagination})))
}

/// `{"consentRecord": {"optIn": …}}`, a bare `{"optIn": …}`, or a form `optIn=true`.
async fn update_consent_record(
    State(state): State<AppState>,
    Mediated(client): Mediated,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let opt_in = if form {
        let text = std::str::from_utf8(&body).map_err(|_| bad("a form in UTF-8"))?;
        match param(&form_pairs(Some(text)), "optIn").map(|v| v.to_ascii_lowercase()).as_deref() {
            Some("true") => Some(true),
            Some("false") => Some(false),
            _ => None,
        }
    } else {
        envelope(&body, "consentRecord")?.get("optIn").and_then(Value::as_bool)
    };
    let opt_in = opt_in.ok_or_else(|| bad("optIn is true or false"))?;
    let (record, revision) = state
        .exchange
        .consent()
        .update_consent_record(&id, opt_in, client.as_str(), Utc::now())
        .await
        .map_err(failed)?;
    Ok(ok(json!({"consentRecord": record, "revision": revision})))
}

async fn withdraw_all(
    State(state): State<AppState>,
    Mediated(client): Mediated,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Reply {
    let individual = individual(&headers, q.as_deref())?;
    let withdrawn =
        state.exchange.consent().withdraw_all(&individual, client.as_str(), Utc::now()).await.map_err(failed)?;
    Ok(ok(json!({"withdrawn": withdrawn})))
}

/// A draft consent record and its signature object (`?individualId=&dataAgreementId=`,
/// optional `revisionId`), stored nowhere.
async fn draft_record(
    State(state): State<AppState>,
    Mediated(_): Mediated,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Reply {
    let individual = individual(&headers, q.as_deref())?;
    let p = form_pairs(q.as_deref());
    let agreement = param(&p, "dataAgreementId")
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| bad("dataAgreementId is required"))?;
    let revision = param(&p, "revisionId").filter(|v| !v.trim().is_empty());
    let (record, signature) = state
        .exchange
        .signatures()
        .draft_consent_record(&individual, agreement.trim(), revision.as_deref().map(str::trim), Utc::now())
        .await
        .map_err(failed)?;
    Ok(ok(json!({"consentRecord": record, "signature": signature})))
}

/// `{"consentRecord": …, "signature": …}`: consent given and signed in one call.
async fn create_signed_record(
    State(state): State<AppState>,
    Mediated(client): Mediated,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Reply {
    let individual = individual(&headers, q.as_deref())?;
    let record = envelope(&body, "consentRecord")?;
    let signature = envelope(&body, "signature")?;
    let (record, revision, signature) = state
        .exchange
        .signatures()
        .create_signed_consent(&individual, &record, &signature, client.as_str(), Utc::now())
        .await
        .map_err(failed)?;
    Ok(ok(json!({"consentRecord": record, "revision": revision, "signature": signature})))
}

async fn start_signature(
    State(state): State<AppState>,
    Mediated(_): Mediated,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Reply {
    let individual = individual(&headers, q.as_deref())?;
    let submitted = if body.iter().all(u8::is_ascii_whitespace) { json!({}) } else { envelope(&body, "signature")? };
    let signature =
        state.exchange.signatures().start_signature(&individual, &id, &submitted, Utc::now()).await.map_err(failed)?;
    Ok(ok(json!({"signature": signature})))
}

async fn complete_signature(
    State(state): State<AppState>,
    Mediated(_): Mediated,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Reply {
    let individual = individual(&headers, q.as_deref())?;
    let submitted = envelope(&body, "signature")?;
    let signature = state
        .exchange
        .signatures()
        .complete_signature(&individual, &id, &submitted, Utc::now())
        .await
        .map_err(failed)?;
    Ok(ok(json!({"signature": signature})))
}

async fn create_webhook(
    State(state): State<AppState>,
    Authorized(cap): Authorized<ConsentManage>,
    body: Bytes,
) -> Reply {
    let webhook = envelope(&body, "webhook")?;
    let (webhook, revision) =
        state.exchange.webhooks().put_webhook(&cap, None, &webhook, Utc::now()).await.map_err(failed)?;
    Ok(ok(json!({"webhook": webhook, "revision": revision})))
}

async fn read_webhook(
    State(state): State<AppState>,
    Authorized(cap): Authorized<ConsentManage>,
    Path(id): Path<String>,
) -> Reply {
    Ok(ok(json!({"webhook": state.exchange.webhooks().webhook(&cap, &id).await.map_err(failed)?})))
}

async fn update_webhook(
    State(state): State<AppState>,
    Authorized(cap): Authorized<ConsentManage>,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    let webhook = envelope(&body, "webhook")?;
    let (webhook, revision) =
        state.exchange.webhooks().put_webhook(&cap, Some(&id), &webhook, Utc::now()).await.map_err(failed)?;
    Ok(ok(json!({"webhook": webhook, "revision": revision})))
}

async fn delete_webhook(
    State(state): State<AppState>,
    Authorized(cap): Authorized<ConsentManage>,
    Path(id): Path<String>,
) -> Reply {
    Ok(ok(deleted(state.exchange.webhooks().delete_webhook(&cap, &id, Utc::now()).await.map_err(failed)?)))
}

async fn list_webhooks(
    State(state): State<AppState>,
    Authorized(cap): Authorized<ConsentManage>,
    RawQuery(q): RawQuery,
) -> Reply {
    let (webhooks, pagination) = page(state.exchange.webhooks().list(&cap).await.map_err(failed)?, q.as_deref())?;
    Ok(ok(json!({"webhooks": webhooks, "pagination": pagination})))
}

// --- verification (a data consumer's system) ----------------------------------------------

async fn verifiable_data_agreements(State(state): State<AppState>, headers: HeaderMap, RawQuery(q): RawQuery) -> Reply {
    let client = crate::api::exchange::system(&state, &headers).await?;
    let all = state.exchange.oversight().verifiable_data_agreements(&client).await.map_err(failed)?;
    let (agreements, pagination) = page(all, q.as_deref())?;
    Ok(ok(json!({"dataAgreements": agreements, "pagination": pagination})))
}

async fn verify_consent_records(State(state): State<AppState>, headers: HeaderMap, RawQuery(q): RawQuery) -> Reply {
    let client = crate::api::exchange::system(&state, &headers).await?;
    let query = record_query(&headers, q.as_deref())?;
    let (offset, limit) = bounds(q.as_deref())?;
    let found = state
        .exchange
        .oversight()
        .verify_consent_records(&client, &query, offset, limit, Utc::now())
        .await
        .map_err(failed)?;
    Ok(record_page(found, offset, limit))
}

async fn verify_consent_record(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Reply {
    let client = crate::api::exchange::system(&state, &headers).await?;
    let (record, revision) =
        state.exchange.oversight().verify_consent_record(&client, &id, Utc::now()).await.map_err(failed)?;
    Ok(ok(json!({"consentRecord": record, "revision": revision})))
}

// --- audit (the Data Processing Auditor) ---------------------------------------------------

async fn audit_consent_records(
    State(state): State<AppState>,
    Authorized(cap): Authorized<ConsentAudit>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Reply {
    let query = record_query(&headers, q.as_deref())?;
    let (offset, limit) = bounds(q.as_deref())?;
    let found = state.exchange.oversight().audit_consent_records(&cap, &query, offset, limit).await.map_err(failed)?;
    Ok(record_page(found, offset, limit))
}

async fn audit_consent_record(
    State(state): State<AppState>,
    Authorized(cap): Authorized<ConsentAudit>,
    Path(id): Path<String>,
) -> Reply {
    Ok(ok(state.exchange.oversight().audit_consent_record(&cap, &id).await.map_err(failed)?))
}

async fn audit_data_agreements(
    State(state): State<AppState>,
    Authorized(cap): Authorized<ConsentAudit>,
    RawQuery(q): RawQuery,
) -> Reply {
    let (agreements, pagination) =
        page(state.exchange.oversight().audit_data_agreements(&cap).await.map_err(failed)?, q.as_deref())?;
    Ok(ok(json!({"dataAgreements": agreements, "pagination": pagination})))
}

async fn audit_data_agreement(
    State(state): State<AppState>,
    Authorized(cap): Authorized<ConsentAudit>,
    Path(id): Path<String>,
) -> Reply {
    Ok(ok(state.exchange.oversight().audit_data_agreement(&cap, &id).await.map_err(failed)?))
}
