//! The officer's workbench: the department's documents (publish, revise, repeal), its guide
//! and the requests addressed to it.

use super::*;

/// The code of the officer's department.
pub(super) async fn own_department<P: identity::Permission>(
    state: &AppState,
    cap: &identity::Capability<P>,
) -> Result<Option<String>, PageError> {
    match cap.department_id() {
        Some(id) => Ok(state.identity.organisation().placed_department_by_id(id).await?.map(|d| d.department.code)),
        None => Ok(None),
    }
}

#[derive(Template)]
#[template(path = "open_workbench.html")]
pub(super) struct WorkbenchPage {
    l: Layout,
    department: Option<Guide>,
    documents: Vec<DocumentSummary>,
    requests: Vec<InformationRequest>,
    can_publish: bool,
    can_answer: bool,
    year: String,
    errors: Errors,
}

impl WorkbenchPage {
    fn deadline_class(&self, d: &Deadline) -> &'static str {
        deadline_class(d)
    }
}

pub(super) async fn workbench_page(state: &AppState, ctx: &PageCtx, errors: Errors) -> PageResult {
    let s = ctx.ready()?;
    let publish = s.principal.authorize::<DisclosurePublish>().ok();
    let answer = s.principal.authorize::<DisclosureAnswer>().ok();
    if publish.is_none() && answer.is_none() {
        ctx.authorize::<DisclosurePublish>(state).await?;
    }
    let code = match (&publish, &answer) {
        (Some(cap), _) => own_department(state, cap).await?,
        (None, Some(cap)) => own_department(state, cap).await?,
        (None, None) => None,
    };
    let department = match &code {
        Some(code) => Some(state.openness.documents().guide(code).await?),
        None => None,
    };
    let documents = match &publish {
        Some(cap) => state.openness.publishing().mine(cap).await?,
        None => Vec::new(),
    };
    let requests = match &answer {
        Some(cap) => state.openness.handling().inbox(cap, Utc::now()).await?,
        None => Vec::new(),
    };
    let page = WorkbenchPage {
        l: ctx.layout("open.workbench"),
        department,
        documents,
        requests,
        can_publish: publish.is_some(),
        can_answer: answer.is_some(),
        year: super::super::china_time(Utc::now(), "%Y"),
        errors,
    };
    let status = if page.errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok(ctx.page(status, &page))
}

pub(super) async fn workbench(State(state): State<AppState>, ctx: PageCtx) -> PageResult {
    workbench_page(&state, &ctx, Vec::new()).await
}

#[derive(Debug, Deserialize)]
pub(super) struct GuideForm {
    #[serde(default)]
    guide: String,
}

pub(super) async fn set_guide(
    State(state): State<AppState>,
    ctx: PageCtx,
    CsrfForm(f): CsrfForm<GuideForm>,
) -> PageResult {
    let cap = ctx.authorize::<DisclosurePublish>(&state).await?;
    let code = own_department(&state, &cap).await?.ok_or_else(|| PageError::from(ApiError::not_found("department")))?;
    match state.openness.publishing().set_guide(&cap, &code, &f.guide, Utc::now()).await {
        Ok(()) => Ok(Redirect::to("/staff/open").into_response()),
        Err(e) => {
            let errors = field_error(&ctx.layout("open.workbench"), e)?;
            workbench_page(&state, &ctx, errors).await
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct DocumentForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    interprets: String,
    #[serde(default)]
    theme: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    document_number: String,
    #[serde(default)]
    written_on: String,
    #[serde(default)]
    body: String,
    /// A revision: what changed and why, and the version edited.
    #[serde(default)]
    note: String,
    #[serde(default)]
    read_version: i64,
}

impl DocumentForm {
    fn of(d: &Document) -> DocumentForm {
        let s = &d.summary;
        DocumentForm {
            kind: s.kind.as_str().into(),
            interprets: s.interprets.clone().unwrap_or_default(),
            theme: s.theme.as_str().into(),
            title: s.title.clone(),
            document_number: s.document_number.clone().unwrap_or_default(),
            written_on: s.written_on.to_string(),
            body: d.body.clone(),
            note: String::new(),
            read_version: s.version,
        }
    }

    /// The text the form describes, or the field that does not parse.
    fn text(&self, l: &Layout) -> Result<DocumentText, Errors> {
        let Ok(Some(theme)) = choice::<Theme>("theme", &self.theme) else {
            return Err(vec![("theme", l.t("open.choose_theme").to_string())]);
        };
        let Ok(written_on) = self.written_on.trim().parse::<NaiveDate>() else {
            return Err(vec![("written_on", l.t("open.choose_date").to_string())]);
        };
        Ok(DocumentText {
            theme,
            title: self.title.clone(),
            document_number: Some(self.document_number.clone()),
            written_on,
            body: self.body.clone(),
        })
    }
}

#[derive(Template)]
#[template(path = "open_publish.html")]
pub(super) struct PublishPage {
    l: Layout,
    /// The document revised; none when publishing a new one.
    doc: Option<Document>,
    form: DocumentForm,
    kinds: &'static [DocumentKind],
    themes: &'static [Theme],
    /// The department's policies an interpretation can explain.
    policies: Vec<DocumentSummary>,
    errors: Errors,
    repeal_reason: String,
}

impl PublishPage {
    /// A new document, or one in force: a repealed one is not edited.
    fn editable(&self) -> bool {
        self.doc.as_ref().is_none_or(|d| d.summary.validity == openness::Validity::InForce)
    }
}

pub(super) async fn publish_form(state: &AppState, ctx: &PageCtx, form: DocumentForm, errors: Errors) -> PageResult {
    let cap = ctx.authorize::<DisclosurePublish>(state).await?;
    let policies = state
        .openness
        .publishing()
        .mine(&cap)
        .await?
        .into_iter()
        .filter(|d| d.kind != DocumentKind::Interpretation)
        .collect();
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let page = PublishPage {
        l: ctx.layout("open.publish"),
        doc: None,
        form,
        kinds: <DocumentKind as strum::VariantArray>::VARIANTS,
        themes: <Theme as strum::VariantArray>::VARIANTS,
        policies,
        errors,
        repeal_reason: String::new(),
    };
    Ok(ctx.page(status, &page))
}

pub(super) async fn publish_page(State(state): State<AppState>, ctx: PageCtx) -> PageResult {
    let form = DocumentForm { written_on: super::super::china_time(Utc::now(), "%Y-%m-%d"), ..DocumentForm::default() };
    publish_form(&state, &ctx, form, Vec::new()).await
}

pub(super) async fn publish(
    State(state): State<AppState>,
    ctx: PageCtx,
    CsrfForm(form): CsrfForm<DocumentForm>,
) -> PageResult {
    let cap = ctx.authorize::<DisclosurePublish>(&state).await?;
    let l = ctx.layout("open.publish");
    let Ok(Some(kind)) = choice::<DocumentKind>("kind", &form.kind) else {
        let errors = vec![("kind", l.t("open.choose_kind").to_string())];
        return publish_form(&state, &ctx, form, errors).await;
    };
    let text = match form.text(&l) {
        Ok(text) => text,
        Err(errors) => return publish_form(&state, &ctx, form, errors).await,
    };
    let department =
        own_department(&state, &cap).await?.ok_or_else(|| PageError::from(ApiError::not_found("department")))?;
    let draft = DocumentDraft { department, kind, interprets: Some(form.interprets.clone()), text };
    match state.openness.publishing().publish(&cap, draft, Utc::now()).await {
        Ok(d) => Ok(Redirect::to(&format!("/open/documents/{}", d.summary.id)).into_response()),
        Err(e) => {
            let errors = field_error(&l, e)?;
            publish_form(&state, &ctx, form, errors).await
        }
    }
}

pub(super) async fn revise_form(
    state: &AppState,
    ctx: &PageCtx,
    id: &str,
    (form, repeal_reason): (Option<DocumentForm>, String),
    errors: Errors,
) -> PageResult {
    ctx.authorize::<DisclosurePublish>(state).await?;
    let doc = state.openness.documents().document(id).await?;
    let form = form.unwrap_or_else(|| DocumentForm::of(&doc));
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let page = PublishPage {
        l: ctx.layout("open.revise").about(&doc.summary.title),
        doc: Some(doc),
        form,
        kinds: <DocumentKind as strum::VariantArray>::VARIANTS,
        themes: <Theme as strum::VariantArray>::VARIANTS,
        policies: Vec::new(),
        errors,
        repeal_reason,
    };
    Ok(ctx.page(status, &page))
}

pub(super) async fn revise_page(State(state): State<AppState>, ctx: PageCtx, Path(id): Path<String>) -> PageResult {
    revise_form(&state, &ctx, &id, (None, String::new()), Vec::new()).await
}

pub(super) async fn revise(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<DocumentForm>,
) -> PageResult {
    let cap = ctx.authorize::<DisclosurePublish>(&state).await?;
    let l = ctx.layout("open.revise");
    let text = match form.text(&l) {
        Ok(text) => text,
        Err(errors) => return revise_form(&state, &ctx, &id, (Some(form), String::new()), errors).await,
    };
    match state.openness.publishing().revise(&cap, &id, form.read_version, text, &form.note, Utc::now()).await {
        Ok(d) => Ok(Redirect::to(&format!("/open/documents/{}", d.summary.id)).into_response()),
        Err(e) => {
            let errors = field_error(&l, e)?;
            revise_form(&state, &ctx, &id, (Some(form), String::new()), errors).await
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct RepealForm {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    read_version: i64,
}

pub(super) async fn repeal(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<RepealForm>,
) -> PageResult {
    let cap = ctx.authorize::<DisclosurePublish>(&state).await?;
    match state.openness.publishing().repeal(&cap, &id, f.read_version, &f.reason, Utc::now()).await {
        Ok(d) => Ok(Redirect::to(&format!("/open/documents/{}", d.summary.id)).into_response()),
        Err(e) => {
            let errors = field_error(&ctx.layout("open.revise"), e)?;
            revise_form(&state, &ctx, &id, (None, f.reason), errors).await
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct ActForm {
    /// `clarify`, `extend` or `answer`.
    #[serde(default)]
    pub(super) action: String,
    #[serde(default)]
    pub(super) text: String,
    #[serde(default)]
    pub(super) working_days: String,
    #[serde(default)]
    pub(super) reason: String,
    #[serde(default)]
    pub(super) answer_type: String,
    #[serde(default)]
    pub(super) legal_ground: String,
    #[serde(default)]
    pub(super) referral: String,
}

pub(super) async fn handled(State(state): State<AppState>, ctx: PageCtx, Path(id): Path<String>) -> PageResult {
    let cap = ctx.authorize::<DisclosureAnswer>(&state).await?;
    let r = state.openness.handling().get(&cap, &id, Utc::now()).await?;
    request_page(&ctx, r, true, ActForm::default(), Vec::new())
}

pub(super) async fn act(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<ActForm>,
) -> PageResult {
    let cap = ctx.authorize::<DisclosureAnswer>(&state).await?;
    let l = ctx.layout("open.request");
    let action = match form.action.as_str() {
        "clarify" => Ok(HandlingAction::AskClarification { text: form.text.clone() }),
        "extend" => match form.working_days.trim().parse::<u32>() {
            Ok(working_days) => Ok(HandlingAction::Extend { working_days, reason: form.reason.clone() }),
            Err(_) => Err(vec![("working_days", l.t("open.choose_days").to_string())]),
        },
        "answer" => match (
            choice::<AnswerType>("answer_type", &form.answer_type),
            choice::<LegalGround>("legal_ground", &form.legal_ground),
        ) {
            (Ok(Some(answer_type)), Ok(legal_ground)) => Ok(HandlingAction::Answer(Answer {
                answer_type,
                text: form.text.clone(),
                legal_ground,
                referral: Some(form.referral.clone()),
            })),
            (Ok(None), _) => Err(vec![("answer_type", l.t("open.choose_answer").to_string())]),
            _ => return Err(bad_value("answer")),
        },
        _ => return Err(bad_value("action")),
    };
    let result = match action {
        Ok(action) => {
            state.openness.handling().act(&cap, &id, action, Utc::now()).await.map_err(|e| field_error(&l, e))
        }
        Err(errors) => Err(Ok(errors)),
    };
    match result {
        Ok(_) => Ok(Redirect::to(&format!("/staff/open/requests/{id}")).into_response()),
        Err(errors) => {
            let r = state.openness.handling().get(&cap, &id, Utc::now()).await?;
            request_page(&ctx, r, true, form, errors?)
        }
    }
}
