//! 政务公开 pages: the public search of published documents with its facets, each
//! document with its metadata, history and ledger proofs, departments' guides and
//! catalogues, annual reports and the Atom feed; a person's requests for information
//! (依申请公开); and the officer's workbench (publish, revise, repeal, the guide, the
//! requests inbox and the report's entered figures); the public ledgers of community finance
//! and public-resource transactions.

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

mod ledgers;
mod requests;
mod workbench;

use ledgers::*;
use requests::*;
use workbench::*;

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
        .route("/open/ledgers", get(ledgers))
        .route("/open/ledgers/community-finance/{code}", get(community))
        .route("/open/ledgers/transactions/{code}", get(project))
        .route("/staff/open/ledgers", get(publish_ledger).post(publish_ledger_record))
        .route("/staff/open", get(workbench))
        .route("/staff/open/guide", post(set_guide))
        .route("/staff/open/publish", get(publish_page).post(publish))
        .route("/staff/open/documents/{id}", get(revise_page).post(revise))
        .route("/staff/open/documents/{id}/repeal", post(repeal))
        .route("/staff/open/requests/{id}", get(handled).post(act))
}

pub(super) type Errors = Vec<(&'static str, String)>;

/// The message of a refused field, in the reader's language where the field has a label.
fn field_error(l: &Layout, e: openness::Error) -> Result<Errors, PageError> {
    field_error_in(l, "open.field", e)
}

/// [`field_error`] with the field labels of `group` (`open.field`, `data.field`).
pub(super) fn field_error_in(l: &Layout, group: &str, e: openness::Error) -> Result<Errors, PageError> {
    match e {
        openness::Error::Invalid { field, reason } => {
            Ok(vec![(field, format!("{}：{reason}", l.t(&format!("{group}.{field}"))))])
        }
        // Not one field's fault: the summary links to the page's main content.
        openness::Error::Conflict { code, .. } => {
            Ok(vec![("main", l.t(&format!("error.{}", code.as_str())).to_string())])
        }
        other => Err(other.into()),
    }
}

pub(super) fn bad_value(what: &str) -> PageError {
    ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, format!("{what} is not one of the choices")).into()
}

/// A choice from a form: empty is none, anything else must be one of the values.
pub(super) fn choice<T: std::str::FromStr>(field: &str, value: &str) -> Result<Option<T>, PageError> {
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

/// Where the `public` log's entries are proven: the size of its latest signed checkpoint,
/// below which an entry has an inclusion proof.
pub(super) struct PublicProofs {
    tree_size: u64,
}

impl PublicProofs {
    pub(super) async fn latest(state: &AppState) -> Result<PublicProofs, PageError> {
        let tree_size = state.ledger.latest_checkpoint(ledger::Log::Public).await?.map_or(0, |(size, _)| size);
        Ok(PublicProofs { tree_size })
    }

    /// The inclusion proof of the entry at `ledger_index`, once a checkpoint covers it.
    pub(super) fn link(&self, ledger_index: &i64) -> Option<String> {
        let index = u64::try_from(*ledger_index).ok()?;
        (index < self.tree_size)
            .then(|| format!("/ledger/public/proof/inclusion?index={index}&size={}", self.tree_size))
    }
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
    proofs: PublicProofs,
}

impl DocumentPage {
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
    let proofs = PublicProofs::latest(&state).await?;
    let l = ctx.layout("open.document").about(&shown.title);
    Ok(ctx.page(StatusCode::OK, &DocumentPage { l, doc, shown, proofs }))
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
