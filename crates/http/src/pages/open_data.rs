//! 数据开放 pages: the catalogue with search and facets; each dataset with its metadata,
//! columns, a preview of its first rows, downloads, API examples, how it was de-identified,
//! its versions with their ledger proofs and its usage (the same address answers DCAT-AP to a
//! client that asks for RDF); applying for a conditional dataset and taking its key; 数据需求;
//! and the data officer's desk, where applications are decided and requests answered.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use chrono::Utc;
use serde::Deserialize;

use super::openness::{Errors, PublicProofs, bad_value, choice, field_error_in};
use super::{CsrfForm, CsrfMultipart, Layout, PageCtx, PageError, PageResult};
use crate::AppState;
use crate::api::open_data::{CatalogueQuery, PER_PAGE};
use crate::error::{ApiError, ErrorCode};
use crate::open_data::dcat::{self, Syntax};
use crate::open_data::{DISTRIBUTIONS, Distribution};
use kernel::authz::OpenDataPublish;
use openness::Theme;
use openness::data::files::FileReport;
use openness::data::{
    AccessApplication, Column, ColumnType, DataDemand, DataSource, Dataset, DatasetPage, DatasetSpec, Frequency,
    IssuedKey, Licence, OpenLevel, Reader, RowPage, RowQuery, UseKind,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/data", get(catalogue))
        .route("/data/datasets/{name}", get(dataset))
        .route("/data/datasets/{name}/apply", post(apply))
        .route("/data/applications", get(my_applications))
        .route("/data/applications/{id}/key", post(take_key))
        .route("/data/requests", get(demands).post(ask))
        .route("/staff/data", get(desk))
        .route("/staff/data/publish", get(publish_page).post(publish))
        .route("/staff/data/applications/{id}", post(decide))
        .route("/staff/data/requests/{id}", post(answer))
}

/// The message of a refused field, labelled from `data.field`.
fn field_error(l: &Layout, e: openness::Error) -> Result<Errors, PageError> {
    field_error_in(l, "data.field", e)
}

// --- the catalogue --------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
struct CatalogueForm {
    #[serde(default)]
    q: String,
    #[serde(default)]
    department: String,
    #[serde(default)]
    theme: String,
    #[serde(default)]
    open_level: String,
    #[serde(default)]
    frequency: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    page: String,
}

#[derive(Template)]
#[template(path = "data.html")]
struct CataloguePage {
    l: Layout,
    form: CatalogueForm,
    result: DatasetPage,
    page: usize,
    pages: usize,
    themes: &'static [Theme],
    levels: &'static [OpenLevel],
    frequencies: &'static [Frequency],
    sources: &'static [DataSource],
}

impl CataloguePage {
    fn page_link(&self, page: usize) -> String {
        let f = &self.form;
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("q", &f.q)
            .append_pair("department", &f.department)
            .append_pair("theme", &f.theme)
            .append_pair("open_level", &f.open_level)
            .append_pair("frequency", &f.frequency)
            .append_pair("source", &f.source)
            .append_pair("tag", &f.tag)
            .append_pair("page", &page.to_string())
            .finish();
        format!("/data?{query}")
    }

    fn count(&self, map: &std::collections::BTreeMap<String, usize>, key: &str) -> usize {
        map.get(key).copied().unwrap_or(0)
    }
}

async fn catalogue(State(state): State<AppState>, ctx: PageCtx, Query(form): Query<CatalogueForm>) -> PageResult {
    let page = match form.page.trim() {
        "" => 1,
        p => p.parse::<usize>().ok().filter(|p| (1..=10_000).contains(p)).ok_or_else(|| bad_value("page"))?,
    };
    let query = CatalogueQuery {
        q: form.q.chars().take(200).collect(),
        department: Some(form.department.chars().take(64).collect()),
        theme: choice("theme", &form.theme)?,
        open_level: choice("open_level", &form.open_level)?,
        frequency: choice("frequency", &form.frequency)?,
        source: choice("source", &form.source)?,
        tag: Some(form.tag.chars().take(30).collect()),
        sort: None,
        page: Some(page),
    }
    .query()?;
    let result = state.openness.catalogue().search(&query).await?;
    let pages = result.total.div_ceil(PER_PAGE).max(1);
    let page = CataloguePage {
        l: ctx.layout("data.title"),
        form,
        result,
        page,
        pages,
        themes: <Theme as strum::VariantArray>::VARIANTS,
        levels: <OpenLevel as strum::VariantArray>::VARIANTS,
        frequencies: <Frequency as strum::VariantArray>::VARIANTS,
        sources: <DataSource as strum::VariantArray>::VARIANTS,
    };
    Ok(ctx.page(StatusCode::OK, &page))
}

// --- a dataset ------------------------------------------------------------------------

/// Rows a dataset page previews.
const PREVIEW_ROWS: usize = 10;

#[derive(Template)]
#[template(path = "data_dataset.html")]
struct DatasetView {
    l: Layout,
    d: Dataset,
    /// The first rows, for a dataset open to all.
    preview: Option<RowPage>,
    distributions: &'static [Distribution],
    proofs: PublicProofs,
    origin: String,
    /// The reader's application for a conditional dataset, if any.
    mine: Option<AccessApplication>,
    purpose: String,
    errors: Errors,
}

impl DatasetView {
    /// The CKAN resource of the dataset's CSV, for the API example.
    fn csv_resource_id(&self) -> String {
        format!("{}-csv", self.d.summary.id)
    }

    fn cell(&self, row: &serde_json::Map<String, serde_json::Value>, column: &str) -> String {
        openness::data::deidentify::display(row.get(column))
    }

    fn rule_text(&self, rule: &openness::data::deidentify::FieldRule) -> String {
        use openness::data::deidentify::FieldRule;
        let name = match rule {
            FieldRule::Keep => "keep",
            FieldRule::Pseudonym => "pseudonym",
            FieldRule::AgeBand { .. } => "age_band",
            FieldRule::Region { .. } => "region",
            FieldRule::Month => "month",
            FieldRule::Year => "year",
        };
        let label = self.l.label("data.rule", name);
        match rule {
            FieldRule::AgeBand { width } => format!("{label}（{width}）"),
            FieldRule::Region { level } => {
                let level =
                    serde_json::to_value(level).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
                format!("{label}（{}）", self.l.label("data.region_level", &level))
            }
            _ => label.to_string(),
        }
    }
}

async fn dataset_page(
    state: &AppState,
    ctx: &PageCtx,
    headers: &HeaderMap,
    name: &str,
    purpose: String,
    errors: Errors,
) -> PageResult {
    let catalogue = state.openness.catalogue();
    let d = catalogue.dataset(name).await?;
    let preview = match d.summary.open_level {
        OpenLevel::Unconditional => {
            let q = RowQuery { limit: PREVIEW_ROWS, ..RowQuery::default() };
            Some(catalogue.rows(&d.summary.id, Reader::Anyone, &q, Utc::now()).await?)
        }
        OpenLevel::Conditional => None,
    };
    catalogue.count_use(&d.summary.id, UseKind::View, Utc::now()).await?;
    let mine = match ctx.session.as_ref() {
        Some(s) if d.summary.open_level == OpenLevel::Conditional => {
            state.openness.access().mine(&s.principal).await?.into_iter().find(|a| a.dataset_name == d.summary.name)
        }
        _ => None,
    };
    let proofs = PublicProofs::latest(state).await?;
    let origin = crate::open_data::site_origin(headers, state.secure_cookies);
    let l = ctx.layout("data.dataset").about(&d.summary.title);
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let view = DatasetView { l, d, preview, distributions: DISTRIBUTIONS, proofs, origin, mine, purpose, errors };
    Ok(ctx.page(status, &view))
}

/// The dataset's page, or its DCAT-AP description for a client that asks for RDF.
async fn dataset(
    State(state): State<AppState>,
    ctx: PageCtx,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> PageResult {
    if let Some(syntax) = Syntax::from_accept(&headers) {
        return Ok(dcat::dataset(&state, &headers, &name, syntax).await?);
    }
    dataset_page(&state, &ctx, &headers, &name, String::new(), Vec::new()).await
}

#[derive(Debug, Default, Deserialize)]
struct ApplyForm {
    #[serde(default)]
    purpose: String,
}

async fn apply(
    State(state): State<AppState>,
    ctx: PageCtx,
    headers: HeaderMap,
    Path(name): Path<String>,
    CsrfForm(form): CsrfForm<ApplyForm>,
) -> PageResult {
    let s = ctx.ready()?;
    match state.openness.access().apply(&s.principal, &name, &form.purpose, Utc::now()).await {
        Ok(_) => Ok(Redirect::to("/data/applications").into_response()),
        Err(e) => {
            let errors = field_error(&ctx.layout("data.dataset"), e)?;
            dataset_page(&state, &ctx, &headers, &name, form.purpose, errors).await
        }
    }
}

// --- a person's applications ----------------------------------------------------------

#[derive(Template)]
#[template(path = "data_applications.html")]
struct ApplicationsPage {
    l: Layout,
    rows: Vec<AccessApplication>,
    /// A key just taken, shown this once.
    issued: Option<IssuedKey>,
}

async fn applications_page(state: &AppState, ctx: &PageCtx, issued: Option<IssuedKey>) -> PageResult {
    let s = ctx.ready()?;
    let rows = state.openness.access().mine(&s.principal).await?;
    Ok(ctx.page(StatusCode::OK, &ApplicationsPage { l: ctx.layout("data.applications"), rows, issued }))
}

async fn my_applications(State(state): State<AppState>, ctx: PageCtx) -> PageResult {
    applications_page(&state, &ctx, None).await
}

#[derive(Debug, Default, Deserialize)]
struct Empty {}

async fn take_key(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> PageResult {
    let s = ctx.ready()?;
    let issued = state.openness.access().issue_key(&s.principal, &id).await?;
    applications_page(&state, &ctx, Some(issued)).await
}

// --- 数据需求 ------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
struct DemandForm {
    #[serde(default)]
    department: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: String,
}

#[derive(Template)]
#[template(path = "data_requests.html")]
struct DemandsPage {
    l: Layout,
    rows: Vec<DataDemand>,
    departments: Vec<(String, String)>,
    form: DemandForm,
    errors: Errors,
}

async fn demands_page(state: &AppState, ctx: &PageCtx, form: DemandForm, errors: Errors) -> PageResult {
    let rows = state.openness.data_demands().list(None).await?;
    let mut departments: Vec<(String, String)> =
        state.identity.organisation().departments_under("/").await?.into_iter().map(|d| (d.code, d.name)).collect();
    departments.sort();
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let page = DemandsPage { l: ctx.layout("data.requests"), rows, departments, form, errors };
    Ok(ctx.page(status, &page))
}

async fn demands(State(state): State<AppState>, ctx: PageCtx) -> PageResult {
    demands_page(&state, &ctx, DemandForm::default(), Vec::new()).await
}

async fn ask(State(state): State<AppState>, ctx: PageCtx, CsrfForm(form): CsrfForm<DemandForm>) -> PageResult {
    let s = ctx.ready()?;
    let asked = state
        .openness
        .data_demands()
        .ask(&s.principal, &form.department, &form.title, &form.description, Utc::now())
        .await;
    match asked {
        Ok(d) => Ok(Redirect::to(&format!("/data/requests#request-{}", d.id)).into_response()),
        Err(e) => {
            let errors = field_error(&ctx.layout("data.requests"), e)?;
            demands_page(&state, &ctx, form, errors).await
        }
    }
}

// --- the data officer's desk ----------------------------------------------------------

#[derive(Template)]
#[template(path = "data_desk.html")]
struct DeskPage {
    l: Layout,
    applications: Vec<AccessApplication>,
    requests: Vec<DataDemand>,
    errors: Errors,
}

async fn desk_page(state: &AppState, ctx: &PageCtx, errors: Errors) -> PageResult {
    let cap = ctx.authorize::<OpenDataPublish>(state).await?;
    let applications = state.openness.access().applications(&cap).await?;
    let requests = state.openness.data_demands().inbox(&cap).await?;
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok(ctx.page(status, &DeskPage { l: ctx.layout("data.desk"), applications, requests, errors }))
}

async fn desk(State(state): State<AppState>, ctx: PageCtx) -> PageResult {
    desk_page(&state, &ctx, Vec::new()).await
}

#[derive(Debug, Default, Deserialize)]
struct DecisionForm {
    /// approve, refuse or revoke
    #[serde(default)]
    decision: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    calls_per_minute: String,
}

async fn decide(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<DecisionForm>,
) -> PageResult {
    let cap = ctx.authorize::<OpenDataPublish>(&state).await?;
    let l = ctx.layout("data.desk");
    let limit = match form.calls_per_minute.trim() {
        "" => None,
        n => match n.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => return desk_page(&state, &ctx, vec![("main", l.t("data.bad_limit").to_string())]).await,
        },
    };
    let access = state.openness.access();
    let now = Utc::now();
    let done = match form.decision.as_str() {
        "approve" => access.decide(&cap, &id, true, &form.note, limit, now).await,
        "refuse" => access.decide(&cap, &id, false, &form.note, None, now).await,
        "revoke" => access.revoke(&cap, &id, &form.note, now).await,
        _ => return Err(bad_value("decision")),
    };
    match done {
        Ok(_) => Ok(Redirect::to("/staff/data").into_response()),
        Err(e) => {
            let errors = field_error(&l, e)?;
            desk_page(&state, &ctx, errors).await
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct AnswerForm {
    #[serde(default)]
    answer: String,
    #[serde(default)]
    dataset: String,
}

async fn answer(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<AnswerForm>,
) -> PageResult {
    let cap = ctx.authorize::<OpenDataPublish>(&state).await?;
    let dataset = Some(form.dataset.as_str()).filter(|d| !d.trim().is_empty());
    match state.openness.data_demands().answer(&cap, &id, &form.answer, dataset, Utc::now()).await {
        Ok(_) => Ok(Redirect::to("/staff/data").into_response()),
        Err(e) => {
            let errors = field_error(&ctx.layout("data.desk"), e)?;
            desk_page(&state, &ctx, errors).await
        }
    }
}

// --- publishing a file ----------------------------------------------------------------

/// The publishing form's fields, kept to show again with what was wrong.
#[derive(Debug, Default)]
struct PublishForm {
    name: String,
    title: String,
    description: String,
    theme: String,
    open_level: String,
    frequency: String,
    licence: String,
    tags: String,
    /// One column a line: name, title, type, `required` or not, and for a coded column its
    /// codes separated by `|`.
    columns: String,
}

impl PublishForm {
    fn of(form: &CsrfMultipart) -> PublishForm {
        let f = |name: &str| form.field(name).unwrap_or_default().to_string();
        PublishForm {
            name: f("name"),
            title: f("title"),
            description: f("description"),
            theme: f("theme"),
            open_level: f("open_level"),
            frequency: f("frequency"),
            licence: f("licence"),
            tags: f("tags"),
            columns: f("columns"),
        }
    }
}

#[derive(Template)]
#[template(path = "data_publish.html")]
struct PublishPage {
    l: Layout,
    department: String,
    form: PublishForm,
    themes: &'static [Theme],
    levels: &'static [OpenLevel],
    frequencies: &'static [Frequency],
    licences: &'static [Licence],
    report: Option<FileReport>,
    errors: Errors,
}

async fn publish_form(
    state: &AppState,
    ctx: &PageCtx,
    form: PublishForm,
    report: Option<FileReport>,
    errors: Errors,
) -> PageResult {
    ctx.authorize::<OpenDataPublish>(state).await?;
    let s = ctx.ready()?;
    let department = s.principal.department.as_ref().map(|d| d.name.clone()).unwrap_or_default();
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let page = PublishPage {
        l: ctx.layout("data.publish"),
        department,
        form,
        themes: <Theme as strum::VariantArray>::VARIANTS,
        levels: <OpenLevel as strum::VariantArray>::VARIANTS,
        frequencies: <Frequency as strum::VariantArray>::VARIANTS,
        licences: <Licence as strum::VariantArray>::VARIANTS,
        report,
        errors,
    };
    Ok(ctx.page(status, &page))
}

async fn publish_page(State(state): State<AppState>, ctx: PageCtx) -> PageResult {
    let form = PublishForm { columns: "name,名称,text,required\n".into(), ..PublishForm::default() };
    publish_form(&state, &ctx, form, None, Vec::new()).await
}

/// The declared columns, one a line: `name,title,type[,required][,code|code…]`.
fn parse_columns(l: &Layout, text: &str) -> Result<Vec<Column>, Errors> {
    let mut out = Vec::new();
    for (i, line) in text.lines().map(str::trim).filter(|l| !l.is_empty()).enumerate() {
        let parts: Vec<&str> = line.split([',', '，']).map(str::trim).collect();
        let bad = || vec![("columns", format!("{} {}：{line}", l.t("data.bad_column"), i + 1))];
        let (Some(name), Some(title), Some(kind)) = (parts.first(), parts.get(1), parts.get(2)) else {
            return Err(bad());
        };
        let kind: ColumnType = kind.parse().map_err(|_| bad())?;
        let rest = parts.get(3..).unwrap_or_default();
        let required = rest.contains(&"required");
        let codes = rest
            .iter()
            .filter(|p| **p != "required" && !p.is_empty())
            .flat_map(|p| p.split('|'))
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .collect();
        out.push(Column { name: (*name).to_string(), title: (*title).to_string(), kind, required, codes });
    }
    Ok(out)
}

async fn publish(State(state): State<AppState>, ctx: PageCtx, multipart: CsrfMultipart) -> PageResult {
    let cap = ctx.authorize::<OpenDataPublish>(&state).await?;
    let l = ctx.layout("data.publish");
    let form = PublishForm::of(&multipart);
    let columns = match parse_columns(&l, &form.columns) {
        Ok(c) => c,
        Err(errors) => return publish_form(&state, &ctx, form, None, errors).await,
    };
    let Some((_, file)) = multipart.file.clone().filter(|(_, bytes)| !bytes.is_empty()) else {
        let errors = vec![("file", l.t("data.choose_file").to_string())];
        return publish_form(&state, &ctx, form, None, errors).await;
    };
    let publishing = state.openness.data_publishing();
    if multipart.field("action") == Some("check") {
        return match publishing.check_file(&cap, &columns, file).await {
            Ok(report) => publish_form(&state, &ctx, form, Some(report), Vec::new()).await,
            Err(e) => {
                let errors = field_error(&l, e)?;
                publish_form(&state, &ctx, form, None, errors).await
            }
        };
    }
    let (Some(theme), Some(open_level), Some(frequency), Some(licence)) = (
        choice::<Theme>("theme", &form.theme)?,
        choice::<OpenLevel>("open_level", &form.open_level)?,
        choice::<Frequency>("frequency", &form.frequency)?,
        choice::<Licence>("licence", &form.licence)?,
    ) else {
        let errors = vec![("theme", l.t("data.choose_all").to_string())];
        return publish_form(&state, &ctx, form, None, errors).await;
    };
    let Some(department) = ctx.ready()?.principal.department.as_ref().map(|d| d.code.clone()) else {
        let e = ApiError::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, "datasets are published for a department");
        return Err(e.into());
    };
    let spec = DatasetSpec {
        name: form.name.clone(),
        title: form.title.clone(),
        description: form.description.clone(),
        department,
        theme,
        open_level,
        frequency,
        licence,
        tags: form.tags.split([',', '，', '、']).map(str::trim).filter(|t| !t.is_empty()).map(String::from).collect(),
    };
    match publishing.publish_file(&cap, &spec, columns.clone(), file.clone(), Utc::now()).await {
        Ok(d) => Ok(Redirect::to(&format!("/data/datasets/{}", d.summary.name)).into_response()),
        // Rows that do not fit: the report says which, row by row.
        Err(openness::Error::Rejected { reason, .. }) => {
            let report = publishing.check_file(&cap, &columns, file).await.ok();
            publish_form(&state, &ctx, form, report, vec![("file", reason)]).await
        }
        Err(e) => {
            let errors = field_error(&l, e)?;
            publish_form(&state, &ctx, form, None, errors).await
        }
    }
}
