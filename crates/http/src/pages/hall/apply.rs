//! Applying with a prefilled form, bundles, 我的材料, and staff submitting for a resident (帮办代办).

use super::*;

// --- applying ------------------------------------------------------------------------------

pub(super) struct Choice {
    value: String,
    label: String,
    selected: bool,
}

pub(super) struct Input {
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

pub(super) struct SectionView {
    title: String,
    inputs: Vec<Input>,
}

#[derive(Template)]
#[template(path = "apply.html")]
pub(super) struct ApplyPage {
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
pub(super) struct Attachments {
    /// Where to upload more (none when a clerk fills the form, or for a bundle).
    upload_link: Option<String>,
    materials: Vec<MaterialRow>,
    uploads: Vec<UploadChoice>,
}

pub(super) struct UploadChoice {
    id: String,
    label: String,
    checked: bool,
}

/// The service's materials and the caller's unattached uploads, `chosen` ticked.
pub(super) async fn attachments(
    state: &AppState,
    ctx: &PageCtx,
    me: &identity::Principal,
    svc: &services::PublishedService,
    chosen: &[String],
) -> Result<Attachments, PageError> {
    let uploads = state.services.documents().my_uploads(me).await?;
    Ok(Attachments {
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
    })
}

pub(super) fn source_text(lang: Lang, source: &str) -> &'static str {
    if source.starts_with("profile.") {
        text(lang, "hall.source_profile")
    } else if source.starts_with("enterprise.") {
        text(lang, "hall.source_enterprise")
    } else {
        text(lang, "hall.source_certificate")
    }
}

pub(super) fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub(super) fn sections(
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
pub(super) async fn service_form(
    state: &AppState,
    code: &str,
) -> Result<(services::PublishedService, std::sync::Arc<Form>), PageError> {
    let svc = state.services.service(code).await?;
    let form = state.services.form(&svc.form_id).await?;
    Ok((svc, form))
}

pub(super) struct FormState<'a> {
    values: &'a serde_json::Map<String, Value>,
    sources: &'a BTreeMap<String, String>,
    errors: BTreeMap<String, String>,
    attach: Attachments,
}

/// What is applied for: a service or a bundle.
pub(super) struct Target {
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

pub(super) struct AssistInfo {
    id_number: String,
    service: String,
}

pub(super) fn apply_form(
    ctx: &PageCtx,
    target: Target,
    form: &Form,
    f: FormState<'_>,
    status: StatusCode,
) -> PageResult {
    Ok(assisted_form(ctx, target, form, f, status, None))
}

pub(super) fn assisted_form(
    ctx: &PageCtx,
    target: Target,
    form: &Form,
    f: FormState<'_>,
    status: StatusCode,
    assist: Option<AssistInfo>,
) -> Response {
    let page = ApplyPage {
        l: ctx.layout(if assist.is_some() { "assist.title" } else { "hall.apply" }).about(&target.name),
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

pub(super) async fn apply_page(State(state): State<AppState>, ctx: PageCtx, Path(code): Path<String>) -> PageResult {
    let s = ctx.ready()?;
    let (svc, form) = service_form(&state, &code).await?;
    // Say so before the form is filled in, not on submitting it.
    services::Services::check_audience(svc.spec.audience, s.principal.kind)?;
    let attach = attachments(&state, &ctx, &s.principal, &svc, &[]).await?;
    prefilled_form(&state, &ctx, &s.principal, Target::service(&ctx, &svc), &form, attach).await
}

/// The form filled with what the applicant's record and certificates say.
pub(super) async fn prefilled_form(
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
pub(super) fn field_errors(ctx: &PageCtx, errors: &[services::forms::FieldError]) -> BTreeMap<String, String> {
    errors.iter().map(|e| (e.field.clone(), pick(ctx, &e.message_zh, &e.message_en).to_string())).collect()
}

pub(super) async fn apply(
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
pub(super) async fn after_submit(
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
                Some((svc, chosen)) => attachments(state, ctx, me, svc, chosen).await?,
                None => Attachments::default(),
            };
            let f = FormState { values: &values, sources: &sources, errors, attach };
            apply_form(ctx, target, form, f, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(e) => Err(e.into()),
    }
}

/// One form for every service of a bundle (一件事一次办).
pub(super) async fn bundle_apply_page(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(code): Path<String>,
) -> PageResult {
    let s = ctx.ready()?;
    let (bundle, form) = state.services.intake().bundle_form(&code).await?;
    services::Services::check_audience(bundle.audience, s.principal.kind)?;
    prefilled_form(&state, &ctx, &s.principal, Target::bundle(&ctx, &bundle), &form, Attachments::default()).await
}

pub(super) async fn bundle_apply(
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
pub(super) struct MaterialsPage {
    l: Layout,
    /// The service being applied for, when the page was opened from its form: (code, name).
    service: Option<(String, String)>,
    materials: Vec<MaterialRow>,
    uploads: Vec<services::DocumentView>,
    error: Option<String>,
    uploaded: bool,
}

#[derive(Deserialize)]
pub(super) struct MaterialsQuery {
    service: Option<String>,
    uploaded: Option<String>,
}

pub(super) async fn materials_page(
    State(state): State<AppState>,
    ctx: PageCtx,
    Query(q): Query<MaterialsQuery>,
) -> PageResult {
    let s = ctx.ready()?;
    let shown = MaterialsShown { service: q.service.as_deref(), error: None, uploaded: q.uploaded.is_some() };
    materials_view(&state, &ctx, &s.principal, shown, StatusCode::OK).await
}

pub(super) struct MaterialsShown<'a> {
    service: Option<&'a str>,
    error: Option<String>,
    uploaded: bool,
}

pub(super) async fn materials_view(
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

pub(super) async fn upload_material(State(state): State<AppState>, ctx: PageCtx, form: CsrfMultipart) -> PageResult {
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
pub(super) struct AssistPage {
    l: Layout,
    services: Vec<(String, String)>,
}

pub(super) async fn assist_page(State(state): State<AppState>, ctx: PageCtx) -> PageResult {
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
pub(super) struct AssistStart {
    #[serde(default)]
    id_number: String,
    #[serde(default)]
    service: String,
}

/// What the resident record will fill: shown as locked, without the values (the clerk sees
/// them on the case once submitted).
pub(super) fn record_sources(form: &Form) -> BTreeMap<String, String> {
    form.fields.iter().filter_map(|f| f.prefill.clone().map(|p| (f.name.clone(), p))).collect()
}

pub(super) fn assist_target(ctx: &PageCtx, svc: &services::PublishedService) -> Target {
    Target { action: "/staff/assist/submit".into(), back: "/staff/assist".into(), ..Target::service(ctx, svc) }
}

pub(super) async fn assist_code(
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

pub(super) async fn assist_submit(
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
