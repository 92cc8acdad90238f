//! 政务公开 pages: the public search of published documents with its facets, each
//! document with its metadata, history and ledger proofs, departments' guides and
//! catalogues, annual reports and the Atom feed; a person's requests for information
//! (依申请公开); and the officer's workbench (publish, revise, repeal, the guide, the
//! requests inbox and the report's entered figures).

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{NaiveDate, Utc};
use serde::Deserialize;

use super::{CsrfForm, Layout, PageCtx, PageError, PageResult};
use crate::AppState;
use crate::api::disclosure::PER_PAGE;
use crate::error::{ApiError, ErrorCode};
use kernel::authz::{DisclosureAnswer, DisclosurePublish};
use openness::{
    AnnualReport, Answer, AnswerType, Deadline, DeadlineStatus, Delivery, Document, DocumentDraft, DocumentFilter,
    DocumentKind, DocumentSummary, DocumentText, Guide, HandlingAction, InformationRequest, LegalGround,
    NewInformationRequest, ReportInputs, Revision, SearchResult, Theme,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/open", get(search))
        .route("/open/feed.atom", get(feed))
        .route("/open/documents/{id}", get(document))
        .route("/open/departments/{code}", get(department))
        .route("/open/reports/{code}/{year}", get(report).post(set_report_inputs))
        .route("/open/requests", get(my_requests).post(submit_request))
        .route("/open/requests/{id}", get(my_request))
        .route("/open/requests/{id}/clarification", post(clarify))
        .route("/staff/open", get(workbench))
        .route("/staff/open/guide", post(set_guide))
        .route("/staff/open/publish", get(publish_page).post(publish))
        .route("/staff/open/documents/{id}", get(revise_page).post(revise))
        .route("/staff/open/documents/{id}/repeal", post(repeal))
        .route("/staff/open/requests/{id}", get(handled).post(act))
}

type Errors = Vec<(&'static str, String)>;

/// The message of a refused field, in the reader's language where the field has a label.
fn field_error(l: &Layout, e: openness::Error) -> Result<Errors, PageError> {
    match e {
        openness::Error::Invalid { field, reason } => {
            Ok(vec![(field, format!("{}：{reason}", l.t(&format!("open.field.{field}"))))])
        }
        // Not one field's fault: the summary links to the page's main content.
        openness::Error::Conflict { code, .. } => {
            Ok(vec![("main", l.t(&format!("error.{}", code.as_str())).to_string())])
        }
        other => Err(other.into()),
    }
}

fn bad_value(what: &str) -> PageError {
    ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, format!("{what} is not one of the choices")).into()
}

/// A choice from a form: empty is none, anything else must be one of the values.
fn choice<T: std::str::FromStr>(field: &str, value: &str) -> Result<Option<T>, PageError> {
    match value.trim() {
        "" => Ok(None),
        v => v.parse().map(Some).map_err(|_| bad_value(field)),
    }
}

// --- the public pages -----------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
struct SearchForm {
    #[serde(default)]
    q: String,
    #[serde(default)]
    department: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    theme: String,
    #[serde(default)]
    validity: String,
    #[serde(default)]
    year: String,
    #[serde(default)]
    page: String,
}

#[derive(Template)]
#[template(path = "open.html")]
struct SearchPage {
    l: Layout,
    form: SearchForm,
    result: SearchResult,
    page: usize,
    pages: usize,
    kinds: &'static [DocumentKind],
    themes: &'static [Theme],
    publishers: Vec<(String, String, usize)>,
}

impl SearchPage {
    /// The link to another page of the same search.
    fn page_link(&self, page: usize) -> String {
        let f = &self.form;
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("q", &f.q)
            .append_pair("department", &f.department)
            .append_pair("kind", &f.kind)
            .append_pair("theme", &f.theme)
            .append_pair("validity", &f.validity)
            .append_pair("year", &f.year)
            .append_pair("page", &page.to_string())
            .finish();
        format!("/open?{query}")
    }

    fn count(&self, map: &std::collections::BTreeMap<String, usize>, key: &str) -> usize {
        map.get(key).copied().unwrap_or(0)
    }
}

async fn search(State(state): State<AppState>, ctx: PageCtx, Query(form): Query<SearchForm>) -> PageResult {
    let year = match form.year.trim() {
        "" => None,
        y => Some(y.parse::<i32>().ok().filter(|y| (1949..=2100).contains(y)).ok_or_else(|| bad_value("year"))?),
    };
    let page = match form.page.trim() {
        "" => 1,
        p => p.parse::<usize>().ok().filter(|p| (1..=10_000).contains(p)).ok_or_else(|| bad_value("page"))?,
    };
    let filter = DocumentFilter {
        q: form.q.chars().take(200).collect(),
        department: Some(form.department.clone()).filter(|d| !d.trim().is_empty()),
        kind: choice("kind", &form.kind)?,
        theme: choice("theme", &form.theme)?,
        validity: choice("validity", &form.validity)?,
        year,
    };
    let result = state.openness.documents().search(&filter, page, PER_PAGE).await?;
    let publishers = state.openness.documents().publishers().await?;
    let pages = result.total.div_ceil(PER_PAGE).max(1);
    let page = SearchPage {
        l: ctx.layout("open.title"),
        form,
        result,
        page,
        pages,
        kinds: <DocumentKind as strum::VariantArray>::VARIANTS,
        themes: <Theme as strum::VariantArray>::VARIANTS,
        publishers,
    };
    Ok(ctx.page(StatusCode::OK, &page))
}

#[derive(Debug, Default, Deserialize)]
struct VersionQuery {
    version: Option<i64>,
}

#[derive(Template)]
#[template(path = "open_document.html")]
struct DocumentPage {
    l: Layout,
    doc: Document,
    /// The revision shown: the one in force, or an earlier one asked for.
    shown: Revision,
    /// The `public` log's size at its latest signed checkpoint: entries below it have a proof.
    tree_size: u64,
}

impl DocumentPage {
    fn proof(&self, r: &Revision) -> Option<String> {
        let index = u64::try_from(r.ledger_index).ok()?;
        (index < self.tree_size)
            .then(|| format!("/ledger/public/proof/inclusion?index={index}&size={}", self.tree_size))
    }

    fn is_current(&self) -> bool {
        self.shown.version == self.doc.summary.version
    }
}

async fn document(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    Query(q): Query<VersionQuery>,
) -> PageResult {
    let doc = state.openness.documents().document(&id).await?;
    let shown = match q.version {
        None => doc.current().cloned(),
        Some(v) => doc.history.iter().find(|r| r.version == v).cloned(),
    }
    .ok_or_else(|| PageError::from(ApiError::not_found("version")))?;
    let tree_size = state.ledger.latest_checkpoint(ledger::Log::Public).await?.map_or(0, |(size, _)| size);
    let l = ctx.layout("open.document").about(&shown.title);
    Ok(ctx.page(StatusCode::OK, &DocumentPage { l, doc, shown, tree_size }))
}

#[derive(Template)]
#[template(path = "open_department.html")]
struct DepartmentPage {
    l: Layout,
    guide: Guide,
    year: i32,
}

async fn department(State(state): State<AppState>, ctx: PageCtx, Path(code): Path<String>) -> PageResult {
    let guide = state.openness.documents().guide(&code).await?;
    let l = ctx.layout("open.guide").about(&guide.department_name);
    let year = super::china_time(Utc::now(), "%Y").parse::<i32>().map_err(|_| ApiError::internal())?;
    Ok(ctx.page(StatusCode::OK, &DepartmentPage { l, guide, year }))
}

#[derive(Template)]
#[template(path = "open_report.html")]
struct ReportPage {
    l: Layout,
    report: AnnualReport,
    /// The department's officer may enter the figures the platform cannot know.
    editable: bool,
    errors: Errors,
}

impl ReportPage {
    /// The review tables' rows: (form prefix, label key, figures).
    fn reviews(&self) -> [(&'static str, &'static str, openness::Outcomes); 3] {
        let i = &self.report.inputs;
        [
            ("reconsideration", "open.review.reconsideration", i.reconsideration),
            ("direct", "open.review.direct", i.lawsuit_direct),
            ("after", "open.review.after", i.lawsuit_after_reconsideration),
        ]
    }
}

async fn report_page(state: &AppState, ctx: &PageCtx, (code, year): (String, i32), errors: Errors) -> PageResult {
    let report = state.openness.reports().annual(&code, year, Utc::now()).await?;
    let editable = match ctx.session.as_ref().map(|s| s.principal.authorize::<DisclosurePublish>()) {
        Some(Ok(cap)) => own_department(state, &cap).await?.as_deref() == Some(report.department_code.as_str()),
        _ => false,
    };
    let l = ctx.layout("open.report").about(&format!("{} {year}", report.department_name));
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok(ctx.page(status, &ReportPage { l, report, editable, errors }))
}

async fn report(State(state): State<AppState>, ctx: PageCtx, Path((code, year)): Path<(String, i32)>) -> PageResult {
    report_page(&state, &ctx, (code, year), Vec::new()).await
}

#[derive(Debug, Deserialize)]
struct InputsForm {
    reconsideration_upheld: u32,
    reconsideration_corrected: u32,
    reconsideration_other: u32,
    reconsideration_pending: u32,
    direct_upheld: u32,
    direct_corrected: u32,
    direct_other: u32,
    direct_pending: u32,
    after_upheld: u32,
    after_corrected: u32,
    after_other: u32,
    after_pending: u32,
    #[serde(default)]
    problems: String,
    #[serde(default)]
    other_matters: String,
}

async fn set_report_inputs(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path((code, year)): Path<(String, i32)>,
    CsrfForm(f): CsrfForm<InputsForm>,
) -> PageResult {
    let cap = ctx.authorize::<DisclosurePublish>(&state).await?;
    let outcomes = |upheld, corrected, other, pending| openness::Outcomes { upheld, corrected, other, pending };
    let inputs = ReportInputs {
        reconsideration: outcomes(
            f.reconsideration_upheld,
            f.reconsideration_corrected,
            f.reconsideration_other,
            f.reconsideration_pending,
        ),
        lawsuit_direct: outcomes(f.direct_upheld, f.direct_corrected, f.direct_other, f.direct_pending),
        lawsuit_after_reconsideration: outcomes(f.after_upheld, f.after_corrected, f.after_other, f.after_pending),
        problems: f.problems,
        other_matters: f.other_matters,
    };
    match state.openness.reports().set_inputs(&cap, &code, year, inputs, Utc::now()).await {
        Ok(()) => Ok(Redirect::to(&format!("/open/reports/{code}/{year}")).into_response()),
        Err(e) => {
            let errors = field_error(&ctx.layout("open.report"), e)?;
            report_page(&state, &ctx, (code, year), errors).await
        }
    }
}

#[derive(Template)]
#[template(path = "open_feed.xml")]
struct Feed {
    updated: String,
    base: String,
    entries: Vec<Document>,
}

impl Feed {
    fn rfc3339(&self, t: &chrono::DateTime<Utc>) -> String {
        t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }
}

/// How many changes the feed carries.
const FEED_ENTRIES: usize = 50;

/// The Atom feed of publications, revisions and repeals, newest first.
async fn feed(State(state): State<AppState>) -> Result<Response, PageError> {
    let entries = state.openness.documents().recent(FEED_ENTRIES).await?;
    let updated = entries.first().map_or_else(Utc::now, |d| d.summary.updated_at);
    let feed =
        Feed { updated: updated.to_rfc3339_opts(chrono::SecondsFormat::Secs, true), base: "/open".into(), entries };
    let xml = feed.render().map_err(|e| {
        tracing::error!(error = %e, "feed template");
        PageError::from(ApiError::internal())
    })?;
    Ok(([(header::CONTENT_TYPE, "application/atom+xml; charset=utf-8")], xml).into_response())
}

// --- a person's requests for information ---------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
struct RequestForm {
    #[serde(default)]
    department: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    purpose: String,
    #[serde(default)]
    delivery: String,
    /// Written into the form when it is shown: a second click sends the same key.
    #[serde(default)]
    key: String,
}

#[derive(Template)]
#[template(path = "open_requests.html")]
struct RequestsPage {
    l: Layout,
    rows: Vec<InformationRequest>,
    departments: Vec<(String, String, usize)>,
    deliveries: &'static [Delivery],
    form: RequestForm,
    errors: Errors,
}

async fn requests_page(state: &AppState, ctx: &PageCtx, form: RequestForm, errors: Errors) -> PageResult {
    let s = ctx.ready()?;
    let rows = state.openness.requests().mine(&s.principal, Utc::now()).await?;
    let departments = all_departments(state).await?;
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let page = RequestsPage {
        l: ctx.layout("open.requests"),
        rows,
        departments,
        deliveries: <Delivery as strum::VariantArray>::VARIANTS,
        form,
        errors,
    };
    Ok(ctx.page(status, &page))
}

/// Every department a person can ask: (code, name, documents published).
async fn all_departments(state: &AppState) -> Result<Vec<(String, String, usize)>, PageError> {
    let published = state.openness.documents().publishers().await?;
    let mut all: Vec<(String, String, usize)> = state
        .identity
        .organisation()
        .departments_under("/")
        .await?
        .into_iter()
        .map(|d| {
            let n = published.iter().find(|(code, _, _)| *code == d.code).map_or(0, |(_, _, n)| *n);
            (d.code, d.name, n)
        })
        .collect();
    all.sort();
    Ok(all)
}

async fn my_requests(State(state): State<AppState>, ctx: PageCtx) -> PageResult {
    let form = RequestForm { key: kernel::db::new_id(), ..RequestForm::default() };
    requests_page(&state, &ctx, form, Vec::new()).await
}

async fn submit_request(
    State(state): State<AppState>,
    ctx: PageCtx,
    CsrfForm(form): CsrfForm<RequestForm>,
) -> PageResult {
    let s = ctx.ready()?;
    let l = ctx.layout("open.requests");
    let Some(delivery) = choice::<Delivery>("delivery", &form.delivery)? else {
        let errors = vec![("delivery", l.t("open.choose_delivery").to_string())];
        return requests_page(&state, &ctx, form, errors).await;
    };
    let new = NewInformationRequest {
        department: form.department.clone(),
        description: form.description.clone(),
        purpose: Some(form.purpose.clone()),
        delivery,
        idempotency_key: Some(form.key.clone()),
    };
    match state.openness.requests().submit(&s.principal, new, Utc::now()).await {
        Ok(r) => Ok(Redirect::to(&format!("/open/requests/{}", r.id)).into_response()),
        Err(e) => {
            let errors = field_error(&l, e)?;
            requests_page(&state, &ctx, form, errors).await
        }
    }
}

#[derive(Template)]
#[template(path = "open_request.html")]
struct RequestPage {
    l: Layout,
    r: InformationRequest,
    /// The answering department's officer (else the person who asked).
    staff: bool,
    answer_types: &'static [AnswerType],
    grounds: &'static [LegalGround],
    form: ActForm,
    errors: Errors,
}

impl RequestPage {
    /// Working days left, while there are some.
    fn days_left(&self) -> Option<i64> {
        self.r.deadline.working_days_left.filter(|n| *n >= 0)
    }

    fn deadline_class(&self, d: &Deadline) -> &'static str {
        deadline_class(d)
    }
}

fn deadline_class(d: &Deadline) -> &'static str {
    match d.status {
        DeadlineStatus::Overdue | DeadlineStatus::AnsweredLate => "due-overdue",
        DeadlineStatus::Near => "due-soon",
        _ => "due-ok",
    }
}

async fn my_request(State(state): State<AppState>, ctx: PageCtx, Path(id): Path<String>) -> PageResult {
    let s = ctx.ready()?;
    let r = state.openness.requests().get(&s.principal, &id, Utc::now()).await?;
    request_page(&ctx, r, false, ActForm::default(), Vec::new())
}

fn request_page(ctx: &PageCtx, r: InformationRequest, staff: bool, form: ActForm, errors: Errors) -> PageResult {
    let l = ctx.layout("open.request").about(&r.number);
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let page = RequestPage {
        l,
        r,
        staff,
        answer_types: <AnswerType as strum::VariantArray>::VARIANTS,
        grounds: <LegalGround as strum::VariantArray>::VARIANTS,
        form,
        errors,
    };
    Ok(ctx.page(status, &page))
}

#[derive(Debug, Deserialize)]
struct ClarifyForm {
    #[serde(default)]
    text: String,
}

async fn clarify(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<ClarifyForm>,
) -> PageResult {
    let s = ctx.ready()?;
    match state.openness.requests().clarify(&s.principal, &id, &f.text, Utc::now()).await {
        Ok(_) => Ok(Redirect::to(&format!("/open/requests/{id}")).into_response()),
        Err(e) => {
            let errors = field_error(&ctx.layout("open.request"), e)?;
            let r = state.openness.requests().get(&s.principal, &id, Utc::now()).await?;
            let form = ActForm { text: f.text, ..ActForm::default() };
            request_page(&ctx, r, false, form, errors)
        }
    }
}

// --- the officer's workbench -----------------------------------------------------------------------

/// The code of the officer's department.
async fn own_department<P: identity::Permission>(
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
struct WorkbenchPage {
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

async fn workbench_page(state: &AppState, ctx: &PageCtx, errors: Errors) -> PageResult {
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
        year: super::china_time(Utc::now(), "%Y"),
        errors,
    };
    let status = if page.errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok(ctx.page(status, &page))
}

async fn workbench(State(state): State<AppState>, ctx: PageCtx) -> PageResult {
    workbench_page(&state, &ctx, Vec::new()).await
}

#[derive(Debug, Deserialize)]
struct GuideForm {
    #[serde(default)]
    guide: String,
}

async fn set_guide(State(state): State<AppState>, ctx: PageCtx, CsrfForm(f): CsrfForm<GuideForm>) -> PageResult {
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
struct DocumentForm {
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
struct PublishPage {
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

async fn publish_form(state: &AppState, ctx: &PageCtx, form: DocumentForm, errors: Errors) -> PageResult {
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

async fn publish_page(State(state): State<AppState>, ctx: PageCtx) -> PageResult {
    let form = DocumentForm { written_on: super::china_time(Utc::now(), "%Y-%m-%d"), ..DocumentForm::default() };
    publish_form(&state, &ctx, form, Vec::new()).await
}

async fn publish(State(state): State<AppState>, ctx: PageCtx, CsrfForm(form): CsrfForm<DocumentForm>) -> PageResult {
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

async fn revise_form(
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

async fn revise_page(State(state): State<AppState>, ctx: PageCtx, Path(id): Path<String>) -> PageResult {
    revise_form(&state, &ctx, &id, (None, String::new()), Vec::new()).await
}

async fn revise(
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
struct RepealForm {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    read_version: i64,
}

async fn repeal(
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
struct ActForm {
    /// `clarify`, `extend` or `answer`.
    #[serde(default)]
    action: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    working_days: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    answer_type: String,
    #[serde(default)]
    legal_ground: String,
    #[serde(default)]
    referral: String,
}

async fn handled(State(state): State<AppState>, ctx: PageCtx, Path(id): Path<String>) -> PageResult {
    let cap = ctx.authorize::<DisclosureAnswer>(&state).await?;
    let r = state.openness.handling().get(&cap, &id, Utc::now()).await?;
    request_page(&ctx, r, true, ActForm::default(), Vec::new())
}

async fn act(
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
