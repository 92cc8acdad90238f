//! Pages of the one-stop service hall: the catalog with search, service guides, applying with
//! a prefilled form, the applicant's cases, the staff inbox and case page, and the public
//! certificate verification page.

use std::collections::BTreeMap;

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde::Deserialize;
use serde_json::Value;

use super::{CsrfForm, CsrfMultipart, EmptyForm, Layout, PageCtx, PageError, PageResult};
use crate::AppState;
use crate::error::ApiError;
use crate::i18n::{Lang, text};
use kernel::authz::{ApplicationAssist, ApplicationHandle, CertificateRevoke};
use services::catalog::{EVENTS, ServiceSummary};
use services::forms::{FieldKind, Form};
use services::workflow::Phase;
use services::{ApplicationSummary, ApplicationView, CertificateCheck, DEPARTMENT_KINDS, InboxItem};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/services", get(catalog))
        .route("/services/{code}", get(guide))
        .route("/services/{code}/apply", get(apply_page).post(apply))
        .route("/bundles/{code}/apply", get(bundle_apply_page).post(bundle_apply))
        .route("/applications", get(my_applications))
        .route("/materials", get(materials_page).post(upload_material))
        .route("/certificates", get(my_certificates))
        .route("/applications/{id}", get(my_application))
        .route("/applications/{id}/withdraw", post(withdraw))
        .route("/applications/{id}/rate", post(rate))
        .route("/staff/inbox", get(inbox))
        .route("/staff/tasks/{id}/claim", post(claim))
        .route("/staff/tasks/{id}/transfer", get(transfer_page).post(transfer))
        .route("/notifications", get(notifications))
        .route("/staff/assist", get(assist_page))
        .route("/staff/assist/code", post(assist_code))
        .route("/staff/assist/submit", post(assist_submit))
        .route("/staff/cases/{id}", get(case_page).post(act))
        .route("/staff/cases/{id}/rating-reply", post(rating_reply))
        .route("/staff/certificates/{id}/revoke", post(revoke))
        .route("/verify/{id}", get(verify))
}

fn zh(ctx: &PageCtx) -> bool {
    ctx.prefs.lang == Lang::Zh
}

fn pick<'a>(ctx: &PageCtx, zh_text: &'a str, en_text: &'a str) -> &'a str {
    if zh(ctx) { zh_text } else { en_text }
}

fn phase_text(lang: Lang, p: Phase) -> &'static str {
    text(lang, &format!("phase.{}", p.as_str()))
}

// --- catalog and guide ---------------------------------------------------------------------

#[derive(Deserialize, Default)]
struct CatalogQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    department: String,
    #[serde(default)]
    event: String,
}

struct Facet {
    code: String,
    name: String,
    current: bool,
}

struct Listed {
    code: String,
    name: String,
    department: String,
    committed_days: u32,
    online: bool,
    visits: u8,
}

#[derive(Template)]
#[template(path = "services.html")]
struct CatalogPage {
    l: Layout,
    q: String,
    events: Vec<Facet>,
    departments: Vec<Facet>,
    services: Vec<Listed>,
    /// (code, member services, name)
    bundles: Vec<(String, String, String)>,
}

fn listed(ctx: &PageCtx, s: ServiceSummary) -> Listed {
    let dept = DEPARTMENT_KINDS.iter().find(|(k, _, _)| *k == s.department);
    Listed {
        name: pick(ctx, &s.name_zh, &s.name_en).to_string(),
        department: dept.map(|(_, z, e)| pick(ctx, z, e).to_string()).unwrap_or_default(),
        code: s.code,
        committed_days: s.committed_days,
        online: s.depth == services::catalog::Depth::Online,
        visits: s.visits,
    }
}

async fn catalog(State(state): State<AppState>, ctx: PageCtx, Query(q): Query<CatalogQuery>) -> PageResult {
    let query = services::CatalogQuery {
        text: q.q.clone(),
        department: Some(q.department.clone()).filter(|d| !d.is_empty()),
        event: Some(q.event.clone()).filter(|e| !e.is_empty()),
    };
    let found = state.services.find(&query).await?;
    let bundles = state.services.bundles().await.unwrap_or_default();
    let page = CatalogPage {
        l: ctx.layout("hall.catalog"),
        events: EVENTS
            .iter()
            .map(|(c, z, e)| Facet { code: c.to_string(), name: pick(&ctx, z, e).into(), current: q.event == *c })
            .collect(),
        departments: DEPARTMENT_KINDS
            .iter()
            .filter(|(k, _, _)| *k != "SG" && *k != "QX")
            .map(|(c, z, e)| Facet { code: c.to_string(), name: pick(&ctx, z, e).into(), current: q.department == *c })
            .collect(),
        services: found.into_iter().map(|s| listed(&ctx, s)).collect(),
        bundles: bundles
            .into_iter()
            .map(|b| (b.code.clone(), b.services.join("、"), pick(&ctx, &b.name_zh, &b.name_en).to_string()))
            .collect(),
        q: q.q,
    };
    Ok(ctx.page(StatusCode::OK, &page))
}

struct MaterialRow {
    name: String,
    required: bool,
    replaced: Option<String>,
    /// The signed-in applicant holds a valid e-certificate that replaces it (免提交).
    held: bool,
}

/// A service's materials in the page's language; `held` are the certificate types the
/// applicant holds (those materials need not be brought).
fn material_rows(ctx: &PageCtx, s: &services::catalog::ServiceSpec, held: &[String]) -> Vec<MaterialRow> {
    use services::catalog::Replacement;
    s.materials
        .iter()
        .map(|m| MaterialRow {
            name: pick(ctx, &m.name_zh, &m.name_en).into(),
            required: m.required,
            held: matches!(&m.replaced_by, Some(Replacement::Certificate(kind)) if held.contains(kind)),
            replaced: m.replaced_by.as_ref().map(|r| match r {
                Replacement::Certificate(_) => text(ctx.prefs.lang, "hall.replaced_certificate").into(),
                Replacement::Shared(_) => text(ctx.prefs.lang, "hall.replaced_shared").into(),
            }),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "service.html")]
struct GuidePage {
    l: Layout,
    code: String,
    name: String,
    department: String,
    category: String,
    legal_basis: String,
    conditions: String,
    materials: Vec<MaterialRow>,
    statutory_days: u32,
    committed_days: u32,
    immediate: bool,
    fee: String,
    channels: Vec<&'static str>,
    visits: u8,
    online: bool,
    /// A hall takes bookings for it.
    bookable: bool,
}

async fn guide(State(state): State<AppState>, ctx: PageCtx, Path(code): Path<String>) -> PageResult {
    let svc = state.services.service(&code).await?;
    let s = &svc.spec;
    let dept = DEPARTMENT_KINDS.iter().find(|(k, _, _)| *k == s.department);
    let lang = ctx.prefs.lang;
    // Certificate types the signed-in applicant holds, valid today.
    let held: Vec<String> = match &ctx.session {
        Some(session) => state
            .services
            .certificates()
            .my_certificates(&session.principal, Utc::now())
            .await
            .map(|list| list.into_iter().filter(|c| c.valid).map(|c| c.kind).collect())
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let page = GuidePage {
        l: ctx.layout("hall.guide"),
        code: s.code.clone(),
        name: pick(&ctx, &s.name_zh, &s.name_en).into(),
        department: dept.map(|(_, z, e)| pick(&ctx, z, e).to_string()).unwrap_or_default(),
        category: pick(&ctx, &s.category_zh, &s.category_en).into(),
        legal_basis: s.legal_basis.clone(),
        conditions: pick(&ctx, &s.conditions_zh, &s.conditions_en).into(),
        materials: material_rows(&ctx, s, &held),
        statutory_days: s.statutory_days,
        committed_days: s.committed_days,
        immediate: s.handling == services::catalog::Handling::Immediate,
        fee: pick(&ctx, &s.fee_zh, &s.fee_en).into(),
        channels: s
            .channels
            .iter()
            .map(|c| match c {
                services::catalog::Channel::Online => text(lang, "hall.channel_online"),
                services::catalog::Channel::Window => text(lang, "hall.channel_window"),
                services::catalog::Channel::Mobile => text(lang, "hall.channel_mobile"),
            })
            .collect(),
        visits: s.visits,
        online: s.depth == services::catalog::Depth::Online,
        bookable: state.services.appointments().halls_for(&s.code, None).await.is_ok_and(|h| !h.is_empty()),
    };
    Ok(ctx.page(StatusCode::OK, &page))
}

// --- applying ------------------------------------------------------------------------------

struct Choice {
    value: String,
    label: String,
    selected: bool,
}

struct Input {
    name: String,
    label: String,
    hint: Option<String>,
    /// text, textarea, number, date, checkbox, radio, select
    widget: &'static str,
    step: &'static str,
    value: String,
    checked: bool,
    required: bool,
    locked: bool,
    source: Option<&'static str>,
    error: Option<String>,
    choices: Vec<Choice>,
}

struct SectionView {
    title: String,
    inputs: Vec<Input>,
}

#[derive(Template)]
#[template(path = "apply.html")]
struct ApplyPage {
    l: Layout,
    /// Set when a clerk fills the form for someone at the window.
    assist: Option<AssistInfo>,
    /// Where the form posts, and the page it came from.
    action: String,
    back: String,
    name: String,
    sections: Vec<SectionView>,
    /// (field, message) for the summary at the top.
    errors: Vec<(String, String)>,
    attach: Attachments,
}

/// The materials of a service and the applicant's uploads to attach to the application.
#[derive(Default)]
struct Attachments {
    /// Where to upload more (none when a clerk fills the form, or for a bundle).
    upload_link: Option<String>,
    materials: Vec<MaterialRow>,
    uploads: Vec<UploadChoice>,
}

struct UploadChoice {
    id: String,
    label: String,
    checked: bool,
}

/// The service's materials and the caller's unattached uploads, `chosen` ticked.
async fn attachments(
    state: &AppState,
    ctx: &PageCtx,
    me: &identity::Principal,
    svc: &services::PublishedService,
    chosen: &[String],
) -> Attachments {
    let uploads = state.services.documents().my_uploads(me).await.unwrap_or_default();
    Attachments {
        upload_link: Some(format!("/materials?service={}", svc.spec.code)),
        materials: material_rows(ctx, &svc.spec, &[]),
        uploads: uploads
            .into_iter()
            .map(|d| UploadChoice {
                checked: chosen.contains(&d.id),
                label: match &d.material {
                    Some(m) => format!("{m}：{}", d.filename),
                    None => d.filename,
                },
                id: d.id,
            })
            .collect(),
    }
}

fn source_text(lang: Lang, source: &str) -> &'static str {
    if source.starts_with("profile.") {
        text(lang, "hall.source_profile")
    } else if source.starts_with("enterprise.") {
        text(lang, "hall.source_enterprise")
    } else {
        text(lang, "hall.source_certificate")
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn sections(
    ctx: &PageCtx,
    form: &Form,
    values: &serde_json::Map<String, Value>,
    sources: &BTreeMap<String, String>,
    errors: &BTreeMap<String, String>,
) -> Vec<SectionView> {
    let lang = ctx.prefs.lang;
    form.sections
        .iter()
        .map(|s| SectionView {
            title: pick(ctx, &s.title_zh, &s.title_en).to_string(),
            inputs: s
                .fields
                .iter()
                .filter_map(|name| form.field(name))
                .map(|f| {
                    let value = values.get(&f.name).map(value_text).unwrap_or_default();
                    let widget = match f.kind {
                        FieldKind::Text => "text",
                        FieldKind::Textarea => "textarea",
                        FieldKind::Integer | FieldKind::Number => "number",
                        FieldKind::Date => "date",
                        FieldKind::Boolean => "checkbox",
                        FieldKind::Choice if f.radio => "radio",
                        FieldKind::Choice => "select",
                    };
                    let source = sources.get(&f.name).map(|s| source_text(lang, s));
                    Input {
                        label: pick(ctx, &f.title_zh, &f.title_en).to_string(),
                        hint: if zh(ctx) { f.hint_zh.clone() } else { f.hint_en.clone().or(f.hint_zh.clone()) },
                        widget,
                        step: if f.kind == FieldKind::Number { "any" } else { "1" },
                        checked: values.get(&f.name) == Some(&Value::Bool(true)),
                        required: f.required,
                        locked: source.is_some() && !f.prefill_editable,
                        source,
                        error: errors.get(&f.name).cloned(),
                        choices: f
                            .choices
                            .iter()
                            .map(|c| Choice {
                                selected: c.value == value,
                                value: c.value.clone(),
                                label: pick(ctx, &c.label_zh, &c.label_en).to_string(),
                            })
                            .collect(),
                        value,
                        name: f.name.clone(),
                    }
                })
                .collect(),
        })
        .collect()
}

/// The service and its compiled form, or the error page.
async fn service_form(
    state: &AppState,
    code: &str,
) -> Result<(services::PublishedService, std::sync::Arc<Form>), PageError> {
    let svc = state.services.service(code).await?;
    let form = state.services.form(&svc.form_id).await?;
    Ok((svc, form))
}

struct FormState<'a> {
    values: &'a serde_json::Map<String, Value>,
    sources: &'a BTreeMap<String, String>,
    errors: BTreeMap<String, String>,
    attach: Attachments,
}

/// What is applied for: a service or a bundle.
struct Target {
    name: String,
    action: String,
    back: String,
}

impl Target {
    fn service(ctx: &PageCtx, svc: &services::PublishedService) -> Target {
        Target {
            name: pick(ctx, &svc.spec.name_zh, &svc.spec.name_en).into(),
            action: format!("/services/{}/apply", svc.spec.code),
            back: format!("/services/{}", svc.spec.code),
        }
    }

    fn bundle(ctx: &PageCtx, b: &services::catalog::BundleSpec) -> Target {
        Target {
            name: pick(ctx, &b.name_zh, &b.name_en).into(),
            action: format!("/bundles/{}/apply", b.code),
            back: "/services#bundles".into(),
        }
    }
}

struct AssistInfo {
    id_number: String,
    service: String,
}

fn apply_form(ctx: &PageCtx, target: Target, form: &Form, f: FormState<'_>, status: StatusCode) -> PageResult {
    Ok(assisted_form(ctx, target, form, f, status, None))
}

fn assisted_form(
    ctx: &PageCtx,
    target: Target,
    form: &Form,
    f: FormState<'_>,
    status: StatusCode,
    assist: Option<AssistInfo>,
) -> Response {
    let page = ApplyPage {
        l: ctx.layout(if assist.is_some() { "assist.title" } else { "hall.apply" }),
        assist,
        name: target.name,
        action: target.action,
        back: target.back,
        sections: sections(ctx, form, f.values, f.sources, &f.errors),
        errors: f.errors.into_iter().collect(),
        attach: f.attach,
    };
    ctx.page(status, &page)
}

async fn apply_page(State(state): State<AppState>, ctx: PageCtx, Path(code): Path<String>) -> PageResult {
    let s = ctx.ready()?;
    let (svc, form) = service_form(&state, &code).await?;
    // Say so before the form is filled in, not on submitting it.
    services::Services::check_audience(svc.spec.audience, s.principal.kind)?;
    let attach = attachments(&state, &ctx, &s.principal, &svc, &[]).await;
    prefilled_form(&state, &ctx, &s.principal, Target::service(&ctx, &svc), &form, attach).await
}

/// The form filled with what the applicant's record and certificates say.
async fn prefilled_form(
    state: &AppState,
    ctx: &PageCtx,
    me: &identity::Principal,
    target: Target,
    form: &Form,
    attach: Attachments,
) -> PageResult {
    let p = state.services.intake().prefill(me, form, Utc::now()).await?;
    let f = FormState { values: &p.values, sources: &p.sources, errors: BTreeMap::new(), attach };
    apply_form(ctx, target, form, f, StatusCode::OK)
}

/// Per-field problems in the page's language, for the form and its error summary.
fn field_errors(ctx: &PageCtx, errors: &[services::forms::FieldError]) -> BTreeMap<String, String> {
    errors.iter().map(|e| (e.field.clone(), pick(ctx, &e.message_zh, &e.message_en).to_string())).collect()
}

async fn apply(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(code): Path<String>,
    CsrfForm(posted): CsrfForm<Vec<(String, String)>>,
) -> PageResult {
    let s = ctx.ready()?;
    let (svc, form) = service_form(&state, &code).await?;
    let data = form.coerce(&posted);
    // The uploads ticked to go with the application (我的材料).
    let documents: Vec<String> = posted.iter().filter(|(k, _)| k == "_documents").map(|(_, v)| v.clone()).collect();
    let done = state.services.intake().submit(&s.principal, &code, data.clone(), &documents, Utc::now()).await;
    let target = Target::service(&ctx, &svc);
    after_submit(&state, &ctx, &s.principal, target, &form, data, Some((&svc, &documents)), done).await
}

/// The case page after a submission, or the form again with its problems (and the uploads
/// that were ticked still ticked).
#[allow(clippy::too_many_arguments)]
async fn after_submit(
    state: &AppState,
    ctx: &PageCtx,
    me: &identity::Principal,
    target: Target,
    form: &Form,
    data: Value,
    attached: Option<(&services::PublishedService, &[String])>,
    done: Result<ApplicationView, services::Error>,
) -> PageResult {
    match done {
        Ok(view) => Ok(Redirect::to(&format!("/applications/{}", view.id)).into_response()),
        Err(services::Error::Form(errors)) => {
            let prefill = state.services.intake().prefill(me, form, Utc::now()).await.ok();
            let sources = prefill.map(|p| p.sources).unwrap_or_default();
            let errors = field_errors(ctx, &errors);
            let values = data.as_object().cloned().unwrap_or_default();
            let attach = match attached {
                Some((svc, chosen)) => attachments(state, ctx, me, svc, chosen).await,
                None => Attachments::default(),
            };
            let f = FormState { values: &values, sources: &sources, errors, attach };
            apply_form(ctx, target, form, f, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(e) => Err(e.into()),
    }
}

/// One form for every service of a bundle (一件事一次办).
async fn bundle_apply_page(State(state): State<AppState>, ctx: PageCtx, Path(code): Path<String>) -> PageResult {
    let s = ctx.ready()?;
    let (bundle, form) = state.services.intake().bundle_form(&code).await?;
    services::Services::check_audience(bundle.audience, s.principal.kind)?;
    prefilled_form(&state, &ctx, &s.principal, Target::bundle(&ctx, &bundle), &form, Attachments::default()).await
}

async fn bundle_apply(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(code): Path<String>,
    CsrfForm(posted): CsrfForm<Vec<(String, String)>>,
) -> PageResult {
    let s = ctx.ready()?;
    let (bundle, form) = state.services.intake().bundle_form(&code).await?;
    let data = form.coerce(&posted);
    let done = state.services.intake().submit_bundle(&s.principal, &code, data.clone(), Utc::now()).await;
    after_submit(&state, &ctx, &s.principal, Target::bundle(&ctx, &bundle), &form, data, None, done).await
}

// --- materials (我的材料) ---------------------------------------------------------------------

#[derive(Template)]
#[template(path = "materials.html")]
struct MaterialsPage {
    l: Layout,
    /// The service being applied for, when the page was opened from its form: (code, name).
    service: Option<(String, String)>,
    materials: Vec<MaterialRow>,
    uploads: Vec<services::DocumentView>,
    error: Option<String>,
    uploaded: bool,
}

#[derive(Deserialize)]
struct MaterialsQuery {
    service: Option<String>,
    uploaded: Option<String>,
}

async fn materials_page(State(state): State<AppState>, ctx: PageCtx, Query(q): Query<MaterialsQuery>) -> PageResult {
    let s = ctx.ready()?;
    let shown = MaterialsShown { service: q.service.as_deref(), error: None, uploaded: q.uploaded.is_some() };
    materials_view(&state, &ctx, &s.principal, shown, StatusCode::OK).await
}

struct MaterialsShown<'a> {
    service: Option<&'a str>,
    error: Option<String>,
    uploaded: bool,
}

async fn materials_view(
    state: &AppState,
    ctx: &PageCtx,
    me: &identity::Principal,
    shown: MaterialsShown<'_>,
    status: StatusCode,
) -> PageResult {
    // An unknown service code just shows the page without a service.
    let svc = match shown.service.filter(|c| !c.trim().is_empty()) {
        Some(code) => state.services.service(code.trim()).await.ok(),
        None => None,
    };
    let uploads = state.services.documents().my_uploads(me).await?;
    let page = MaterialsPage {
        l: ctx.layout("hall.my_materials"),
        materials: svc.as_ref().map(|v| material_rows(ctx, &v.spec, &[])).unwrap_or_default(),
        service: svc.map(|v| (v.spec.code.clone(), pick(ctx, &v.spec.name_zh, &v.spec.name_en).to_string())),
        uploads,
        error: shown.error,
        uploaded: shown.uploaded,
    };
    Ok(ctx.page(status, &page))
}

async fn upload_material(State(state): State<AppState>, ctx: PageCtx, form: CsrfMultipart) -> PageResult {
    let s = ctx.ready()?;
    let service = form.field("service").map(str::trim).filter(|c| !c.is_empty());
    let failed = |error: String| MaterialsShown { service, error: Some(error), uploaded: false };
    let Some((name, bytes)) = form.file.as_ref() else {
        let shown = failed(text(ctx.prefs.lang, "hall.choose_file").into());
        return materials_view(&state, &ctx, &s.principal, shown, StatusCode::UNPROCESSABLE_ENTITY).await;
    };
    match state.services.documents().upload(&s.principal, name, form.field("material"), bytes, Utc::now()).await {
        Ok(_) => {
            let query = serde_urlencoded::to_string([("service", service.unwrap_or_default()), ("uploaded", "1")])
                .unwrap_or_default();
            Ok(Redirect::to(&format!("/materials?{query}")).into_response())
        }
        Err(e) => {
            // The problem is shown on the page, beside the file input, in the service's words.
            let api = ApiError::from(e);
            materials_view(&state, &ctx, &s.principal, failed(api.message), api.status).await
        }
    }
}

// --- assisted submission (帮办代办) -----------------------------------------------------------

#[derive(Template)]
#[template(path = "assist.html")]
struct AssistPage {
    l: Layout,
    services: Vec<(String, String)>,
}

async fn assist_page(State(state): State<AppState>, ctx: PageCtx) -> PageResult {
    let s = ctx.ready()?;
    s.principal.authorize::<ApplicationAssist>()?;
    let services = match state.services.search("", usize::MAX).await {
        Ok(list) => list
            .into_iter()
            .filter(|x| x.audience == services::catalog::Audience::Citizen)
            .map(|x| (x.code.clone(), format!("{} · {}", pick(&ctx, &x.name_zh, &x.name_en), x.code)))
            .collect(),
        Err(e) => return Err(e.into()),
    };
    Ok(ctx.page(StatusCode::OK, &AssistPage { l: ctx.layout("assist.title"), services }))
}

#[derive(Deserialize)]
struct AssistStart {
    #[serde(default)]
    id_number: String,
    #[serde(default)]
    service: String,
}

/// What the resident record will fill: shown as locked, without the values (the clerk sees
/// them on the case once submitted).
fn record_sources(form: &Form) -> BTreeMap<String, String> {
    form.fields.iter().filter_map(|f| f.prefill.clone().map(|p| (f.name.clone(), p))).collect()
}

fn assist_target(ctx: &PageCtx, svc: &services::PublishedService) -> Target {
    Target { action: "/staff/assist/submit".into(), back: "/staff/assist".into(), ..Target::service(ctx, svc) }
}

async fn assist_code(
    State(state): State<AppState>,
    ctx: PageCtx,
    CsrfForm(start): CsrfForm<AssistStart>,
) -> PageResult {
    let s = ctx.ready()?;
    let cap = s.principal.authorize::<ApplicationAssist>()?;
    let (svc, form) = service_form(&state, &start.service).await?;
    state.services.intake().send_assist_code(&cap, &start.id_number, Utc::now()).await?;
    let sources = record_sources(&form);
    let f = FormState {
        values: &serde_json::Map::new(),
        sources: &sources,
        errors: BTreeMap::new(),
        attach: Attachments::default(),
    };
    let info = AssistInfo { id_number: start.id_number.trim().to_uppercase(), service: svc.spec.code.clone() };
    Ok(assisted_form(&ctx, assist_target(&ctx, &svc), &form, f, StatusCode::OK, Some(info)))
}

async fn assist_submit(
    State(state): State<AppState>,
    ctx: PageCtx,
    CsrfForm(posted): CsrfForm<Vec<(String, String)>>,
) -> PageResult {
    let s = ctx.ready()?;
    let cap = s.principal.authorize::<ApplicationAssist>()?;
    let field =
        |k: &str| posted.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.trim().to_string()).unwrap_or_default();
    let (id_number, service) = (field("_assist_id_number"), field("_assist_service"));
    let (svc, form) = service_form(&state, &service).await?;
    let confirmation = if field("_assist_confirm") == "signature" {
        services::Confirmation::Signature
    } else {
        services::Confirmation::Code(field("_assist_code"))
    };
    let data = form.coerce(&posted);
    match state
        .services
        .intake()
        .submit_assisted(&cap, &id_number, &service, data.clone(), confirmation, Utc::now())
        .await
    {
        Ok(view) => Ok(Redirect::to(&format!("/staff/cases/{}", view.id)).into_response()),
        Err(services::Error::Form(errors)) => {
            let sources = record_sources(&form);
            let errors = field_errors(&ctx, &errors);
            let values = data.as_object().cloned().unwrap_or_default();
            let f = FormState { values: &values, sources: &sources, errors, attach: Attachments::default() };
            let info = AssistInfo { id_number, service: svc.spec.code.clone() };
            Ok(assisted_form(&ctx, assist_target(&ctx, &svc), &form, f, StatusCode::UNPROCESSABLE_ENTITY, Some(info)))
        }
        Err(e) => Err(e.into()),
    }
}

// --- the holder's certificates (我的证照) ---------------------------------------------------

struct CertificateRow {
    id: String,
    name: String,
    fields: String,
    issued: String,
    valid_until: String,
    valid: bool,
    revoked: bool,
}

#[derive(Template)]
#[template(path = "certificates.html")]
struct CertificatesPage {
    l: Layout,
    rows: Vec<CertificateRow>,
}

async fn my_certificates(State(state): State<AppState>, ctx: PageCtx) -> PageResult {
    let s = ctx.ready()?;
    let list = state.services.certificates().my_certificates(&s.principal, Utc::now()).await?;
    let rows = list
        .into_iter()
        .map(|c| CertificateRow {
            name: pick(&ctx, &c.name_zh, &c.name_en).to_string(),
            fields: c.fields.iter().map(|(k, v)| format!("{k}: {}", value_text(v))).collect::<Vec<_>>().join("；"),
            issued: c.issued_at.format("%Y-%m-%d").to_string(),
            valid_until: c.valid_until.map(|t| t.format("%Y-%m-%d").to_string()).unwrap_or_default(),
            valid: c.valid,
            revoked: c.revoked,
            id: c.id,
        })
        .collect();
    Ok(ctx.page(StatusCode::OK, &CertificatesPage { l: ctx.layout("hall.my_certificates"), rows }))
}

// --- the applicant's cases -----------------------------------------------------------------

#[derive(Template)]
#[template(path = "applications.html")]
struct ApplicationsPage {
    l: Layout,
    rows: Vec<(ApplicationSummary, String, String)>,
}

async fn my_applications(State(state): State<AppState>, ctx: PageCtx) -> PageResult {
    let s = ctx.ready()?;
    let list = state.services.my_cases().my_applications(&s.principal).await?;
    let rows = list
        .into_iter()
        .map(|a| {
            let name = pick(&ctx, &a.service_name_zh, &a.service_name_en).to_string();
            let status = phase_text(ctx.prefs.lang, a.status).to_string();
            (a, name, status)
        })
        .collect();
    Ok(ctx.page(StatusCode::OK, &ApplicationsPage { l: ctx.layout("hall.my_applications"), rows }))
}

struct Step {
    when: String,
    action: String,
    actor: String,
    comment: Option<String>,
    explanation: Option<String>,
    ledger_index: i64,
}

#[derive(Template)]
#[template(path = "application.html")]
struct ApplicationPage {
    l: Layout,
    app: ApplicationView,
    name: String,
    status: String,
    form_rows: Vec<(String, String)>,
    steps: Vec<Step>,
    staff: bool,
    can_withdraw: bool,
    can_rate: bool,
    can_revoke: bool,
    actions: Vec<(String, String)>,
    notice: Option<String>,
}

fn steps(ctx: &PageCtx, app: &ApplicationView) -> Vec<Step> {
    app.timeline
        .iter()
        .map(|t| Step {
            when: cst(t.at),
            action: {
                let key = format!("step.{}", t.action.split(':').next_back().unwrap_or(&t.action));
                let label = text(ctx.prefs.lang, &key);
                if label.is_empty() || label == key { t.action.clone() } else { label.to_string() }
            },
            actor: t.actor.clone(),
            comment: t.comment.clone(),
            explanation: t.explanation.clone(),
            ledger_index: t.ledger_index,
        })
        .collect()
}

/// A time as people here read it: China Standard Time.
fn cst(t: chrono::DateTime<Utc>) -> String {
    super::china_time(t, "%Y-%m-%d %H:%M")
}

async fn form_rows(state: &AppState, ctx: &PageCtx, app: &ApplicationView) -> Vec<(String, String)> {
    let form = match state.services.service(&app.service_id).await {
        Ok(svc) if app.bundle.is_none() => state.services.form(&svc.form_id).await.ok(),
        _ => None,
    };
    let Some(values) = app.form.as_object() else { return Vec::new() };
    values
        .iter()
        .map(|(k, v)| {
            let label = form
                .as_ref()
                .and_then(|f| f.field(k).map(|f| pick(ctx, &f.title_zh, &f.title_en).to_string()))
                .unwrap_or_else(|| k.clone());
            (label, value_text(v))
        })
        .collect()
}

async fn application_page(
    state: &AppState,
    ctx: &PageCtx,
    app: ApplicationView,
    staff: bool,
    notice: Option<String>,
) -> Response {
    let lang = ctx.prefs.lang;
    let rows = form_rows(state, ctx, &app).await;
    let page = ApplicationPage {
        l: ctx.layout(if staff { "hall.case" } else { "hall.my_application" }),
        name: pick(ctx, &app.service_name_zh, &app.service_name_en).to_string(),
        status: phase_text(lang, app.status).to_string(),
        form_rows: rows,
        steps: steps(ctx, &app),
        staff,
        can_withdraw: !staff && app.actions.iter().any(|a| a == "withdraw"),
        can_rate: !staff && app.actions.iter().any(|a| a == "rate"),
        can_revoke: staff && ctx.session.as_ref().is_some_and(|s| s.principal.authorize::<CertificateRevoke>().is_ok()),
        actions: if staff {
            app.actions
                .iter()
                .map(|a| {
                    let label = text(lang, &format!("step.{a}"));
                    (a.clone(), if label.is_empty() { a.clone() } else { label.to_string() })
                })
                .collect()
        } else {
            Vec::new()
        },
        notice,
        app,
    };
    ctx.page(StatusCode::OK, &page)
}

async fn my_application(State(state): State<AppState>, ctx: PageCtx, Path(id): Path<String>) -> PageResult {
    let s = ctx.ready()?;
    let app = state.services.my_cases().my_application(&s.principal, &id).await?;
    Ok(application_page(&state, &ctx, app, false, None).await)
}

async fn withdraw(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> PageResult {
    let s = ctx.ready()?;
    let app = state.services.my_cases().withdraw(&s.principal, &id, Utc::now()).await?;
    Ok(Redirect::to(&format!("/applications/{}", app.id)).into_response())
}

#[derive(Deserialize)]
struct RateForm {
    #[serde(default)]
    score: String,
    #[serde(default)]
    comment: String,
}

async fn rate(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<RateForm>,
) -> PageResult {
    let s = ctx.ready()?;
    let score = form.score.trim().parse::<i64>().unwrap_or(0);
    let comment = Some(form.comment.as_str()).filter(|c| !c.trim().is_empty());
    state.services.ratings().rate(&s.principal, &id, score, comment, Utc::now()).await?;
    Ok(Redirect::to(&format!("/applications/{id}")).into_response())
}

// --- staff ---------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "inbox.html")]
struct InboxPage {
    l: Layout,
    counts: services::InboxCounts,
    items: Vec<(InboxItem, String, String, &'static str)>,
    due: String,
    mine: bool,
    me: String,
}

#[derive(Deserialize, Default)]
struct InboxQuery {
    #[serde(default)]
    due: String,
    /// `1`: only the tasks the caller has claimed or been given.
    #[serde(default)]
    mine: String,
}

async fn inbox(State(state): State<AppState>, ctx: PageCtx, Query(q): Query<InboxQuery>) -> PageResult {
    let cap = ctx.authorize::<ApplicationHandle>(&state).await?;
    let mine = q.mine == "1";
    let filter =
        services::InboxFilter { due: services::DueState::parse(&q.due), mine, ..services::InboxFilter::default() };
    let inbox = state.services.casework().inbox(&cap, &filter, Utc::now()).await?;
    let lang = ctx.prefs.lang;
    let items = inbox
        .items
        .into_iter()
        .map(|i| {
            let name = pick(&ctx, &i.service_name_zh, &i.service_name_en).to_string();
            let status = phase_text(lang, i.status).to_string();
            let due = match i.due {
                services::DueState::OnTime => text(lang, "hall.due_on_time"),
                services::DueState::DueSoon => text(lang, "hall.due_soon"),
                services::DueState::Overdue => text(lang, "hall.due_overdue"),
            };
            (i, name, status, due)
        })
        .collect();
    Ok(ctx.page(
        StatusCode::OK,
        &InboxPage {
            l: ctx.layout("hall.inbox"),
            counts: inbox.counts,
            items,
            due: q.due,
            mine,
            me: cap.account_id().to_string(),
        },
    ))
}

/// Claims an open task of the caller's roles: it shows under 我的待办 (mine).
async fn claim(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> PageResult {
    let cap = ctx.authorize::<ApplicationHandle>(&state).await?;
    state.services.casework().assign(&cap, &id, None, Utc::now()).await?;
    Ok(Redirect::to("/staff/inbox?mine=1").into_response())
}

#[derive(Template)]
#[template(path = "transfer.html")]
struct TransferPage {
    l: Layout,
    choice: services::TransferChoice,
    error: Option<String>,
}

async fn transfer_page(State(state): State<AppState>, ctx: PageCtx, Path(id): Path<String>) -> PageResult {
    let cap = ctx.authorize::<ApplicationHandle>(&state).await?;
    let choice = state.services.casework().transfer_choice(&cap, &id).await?;
    Ok(ctx.page(StatusCode::OK, &TransferPage { l: ctx.layout("hall.transfer"), choice, error: None }))
}

#[derive(Deserialize)]
struct TransferForm {
    #[serde(default)]
    to: String,
}

/// Hands an open task to a colleague of the same department holding its role.
async fn transfer(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<TransferForm>,
) -> PageResult {
    let cap = ctx.authorize::<ApplicationHandle>(&state).await?;
    let to = form.to.trim();
    let refused = if to.is_empty() {
        text(ctx.prefs.lang, "hall.transfer_pick").to_string()
    } else {
        match state.services.casework().assign(&cap, &id, Some(to), Utc::now()).await {
            Ok(()) => return Ok(Redirect::to("/staff/inbox").into_response()),
            Err(e @ (services::Error::Conflict { .. } | services::Error::NotFound("colleague"))) => {
                tracing::info!(error = %e, "transfer refused");
                text(ctx.prefs.lang, "hall.transfer_not_eligible").to_string()
            }
            Err(e) => return Err(e.into()),
        }
    };
    match state.services.casework().transfer_choice(&cap, &id).await {
        Ok(choice) => Ok(ctx.page(
            StatusCode::UNPROCESSABLE_ENTITY,
            &TransferPage { l: ctx.layout("hall.transfer"), choice, error: Some(refused) },
        )),
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "notifications.html")]
struct NotificationsPage {
    l: Layout,
    rows: Vec<(services::NotificationView, String, String)>,
    staff: bool,
}

/// 消息: the signed-in person's notifications, newest first (opening the page reads them).
async fn notifications(State(state): State<AppState>, ctx: PageCtx) -> PageResult {
    let s = ctx.ready()?;
    let list = state.services.my_cases().notifications(&s.principal, Utc::now()).await?;
    let rows = list
        .into_iter()
        .map(|n| {
            let t = pick(&ctx, &n.text_zh, &n.text_en).to_string();
            let at = cst(n.created_at);
            (n, t, at)
        })
        .collect();
    let staff = s.principal.kind == identity::AccountKind::Staff;
    Ok(ctx.page(StatusCode::OK, &NotificationsPage { l: ctx.layout("nav.notifications"), rows, staff }))
}

async fn case_page(State(state): State<AppState>, ctx: PageCtx, Path(id): Path<String>) -> PageResult {
    let cap = ctx.authorize::<ApplicationHandle>(&state).await?;
    let app = state.services.casework().case_for_staff(&cap, &id, Utc::now()).await?;
    Ok(application_page(&state, &ctx, app, true, None).await)
}

#[derive(Deserialize)]
struct ActForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    comment: String,
}

async fn act(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<ActForm>,
) -> PageResult {
    let cap = ctx.authorize::<ApplicationHandle>(&state).await?;
    let comment = Some(form.comment.as_str()).filter(|c| !c.trim().is_empty());
    let app = state.services.casework().act(&cap, &id, &form.action, comment, Utc::now()).await?;
    let notice = Some(text(ctx.prefs.lang, "hall.done").to_string());
    Ok(application_page(&state, &ctx, app, true, notice).await)
}

#[derive(Deserialize)]
struct ReplyForm {
    #[serde(default)]
    reply: String,
}

/// The department answers a poor rating, which closes its rectification task.
async fn rating_reply(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<ReplyForm>,
) -> PageResult {
    let cap = ctx.authorize::<ApplicationHandle>(&state).await?;
    state.services.ratings().answer_rating(&cap, &id, &form.reply, Utc::now()).await?;
    Ok(Redirect::to(&format!("/staff/cases/{id}")).into_response())
}

#[derive(Deserialize)]
struct RevokeForm {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    case: String,
}

async fn revoke(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<RevokeForm>,
) -> PageResult {
    let cap = ctx.authorize::<CertificateRevoke>(&state).await?;
    state.services.certificates().revoke_certificate(&cap, &id, &form.reason, Utc::now()).await?;
    let case: String = form.case.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(64).collect();
    Ok(Redirect::to(&if case.is_empty() { format!("/verify/{id}") } else { format!("/staff/cases/{case}") })
        .into_response())
}

// --- certificates --------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "certificate.html")]
struct VerifyPage {
    l: Layout,
    c: CertificateCheck,
    name: String,
    qr_svg: String,
    url: String,
}

async fn verify(State(state): State<AppState>, ctx: PageCtx, Path(id): Path<String>) -> Response {
    match state.services.certificates().verify_certificate(&id, Utc::now()).await {
        Ok(c) => {
            let url = format!("/verify/{}", c.id);
            let qr_svg = qrcode::QrCode::new(url.as_bytes())
                .map(|q| q.render::<qrcode::render::svg::Color>().min_dimensions(160, 160).build())
                .unwrap_or_default();
            let name = pick(&ctx, &c.name_zh, &c.name_en).to_string();
            ctx.page(StatusCode::OK, &VerifyPage { l: ctx.layout("hall.verify"), c, name, qr_svg, url })
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}
