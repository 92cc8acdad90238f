//! 12345 pages: 我的诉求 (make a request, follow it, rate the answer), the public list of
//! answers, the dispatchers' queue (派单, 并单, 延期审核), the routing tables, the figures,
//! and a department's 12345 inbox (签收, 退单, 延期, 答复).

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use chrono::Utc;
use serde::Deserialize;

use super::{CsrfForm, Layout, PageCtx, PageError, PageResult};
use crate::AppState;
use identity::{DepartmentView, RegionRef};
use kernel::authz::{OrganisationManage, OrganisationRead, ResidentRead, VoiceDispatch, VoiceHandle, VoiceRecord};
use voice::{
    Breakdown, Category, Channel, Contact, GroupFigures, HandlerAction, NewRequest, PublishedAnswer, Rating,
    RequestKind, RequestView, Route, Stage, Urgency,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/voice", get(my_requests))
        .route("/voice/new", get(new_request).post(submit))
        .route("/voice/published", get(published))
        .route("/staff/voice/routes", get(routes).post(set_route))
        .route("/staff/voice/queue/{id}/merge", post(merge))
        .route("/staff/voice/queue/{id}/extension", post(decide_extension))
        .route("/voice/{id}", get(my_request))
        .route("/voice/{id}/photos/{photo}", get(my_photo))
        .route("/staff/voice/{id}/photos/{photo}", get(handled_photo))
        .route("/staff/voice/queue/{id}/photos/{photo}", get(queued_photo))
        .route("/voice/{id}/rating", post(rate))
        .route("/staff/voice", get(inbox))
        .route("/staff/voice/queue", get(queue))
        .route("/staff/voice/figures", get(figures))
        .route("/staff/voice/calls/new", get(new_call).post(record_call))
        .route("/staff/voice/calls/{id}", get(call))
        .route("/staff/voice/calls/{id}/rating", post(record_rating))
        .route("/staff/voice/queue/{id}", get(queued).post(dispatch))
        .route("/staff/voice/{id}", get(handled).post(act))
        .route("/staff/voice/{id}/contact", post(reveal_contact))
}

impl From<voice::Error> for PageError {
    fn from(e: voice::Error) -> PageError {
        crate::error::ApiError::from(e).into()
    }
}

#[derive(Template)]
#[template(path = "voice_list.html")]
struct ListPage {
    l: Layout,
    /// The person's own requests, or a department's or the dispatchers' list.
    rows: Vec<RequestView>,
    /// Where a row links: `/voice`, `/staff/voice` or `/staff/voice/queue`.
    base: &'static str,
    empty_key: &'static str,
    /// Staff lists show the deadline; the person's list shows the department.
    staff: bool,
}

#[derive(Template)]
#[template(path = "voice_figures.html")]
struct FiguresPage {
    l: Layout,
    rows: Vec<GroupFigures>,
    by: Breakdown,
    breakdowns: &'static [Breakdown],
    categories: Vec<Category>,
}

impl FiguresPage {
    /// A category in the reader's language; departments and districts by their own names.
    fn group_name(&self, f: &GroupFigures) -> String {
        match (self.by, self.categories.iter().find(|c| c.code == f.code)) {
            (Breakdown::Category, Some(c)) => self.l.pick(&c.name_zh, &c.name_en).to_string(),
            _ => f.name.clone(),
        }
    }

    fn percent(&self, rate: &Option<f64>) -> String {
        rate.map_or_else(|| "—".to_string(), |r| format!("{:.0}%", r * 100.0))
    }

    fn hours(&self, hours: &Option<f64>) -> String {
        hours.map_or_else(|| "—".to_string(), |h| format!("{h:.1}"))
    }
}

#[derive(Template)]
#[template(path = "voice_new.html")]
struct NewPage {
    l: Layout,
    places: Vec<RegionRef>,
    kinds: &'static [RequestKind],
    /// The person's own photos among their uploads (我的材料), to tick.
    uploads: Vec<services::DocumentView>,
    form: SubmitForm,
    errors: Vec<(&'static str, String)>,
}

impl NewPage {
    fn ticked(&self, id: &str) -> bool {
        self.form.photos.iter().any(|p| p == id)
    }
}

/// Who reads a request's page, and what they may do there.
enum Reader {
    Person,
    /// The hotline operator, for a caller without an account.
    Operator,
    Dispatcher {
        categories: Vec<Category>,
        departments: Vec<DepartmentView>,
    },
    Department,
}

#[derive(Template)]
#[template(path = "voice_request.html")]
struct RequestPage {
    l: Layout,
    req: RequestView,
    reader: Reader,
    ratings: &'static [Rating],
    /// The person behind it, for the handling department.
    contact: Option<Contact>,
}

impl RequestPage {
    fn is_person(&self) -> bool {
        matches!(self.reader, Reader::Person)
    }

    fn is_operator(&self) -> bool {
        matches!(self.reader, Reader::Operator)
    }

    fn is_dispatcher(&self) -> bool {
        matches!(self.reader, Reader::Dispatcher { .. })
    }

    fn categories(&self) -> &[Category] {
        match &self.reader {
            Reader::Dispatcher { categories, .. } => categories,
            _ => &[],
        }
    }

    fn departments(&self) -> &[DepartmentView] {
        match &self.reader {
            Reader::Dispatcher { departments, .. } => departments,
            _ => &[],
        }
    }

    /// Where the request's photos are read from, for this reader.
    fn photo_base(&self) -> &'static str {
        match self.reader {
            Reader::Person => "/voice",
            Reader::Dispatcher { .. } => "/staff/voice/queue",
            Reader::Department | Reader::Operator => "/staff/voice",
        }
    }

    /// The list this page belongs to: (path, label key).
    fn crumb(&self) -> (&'static str, &'static str) {
        match self.reader {
            Reader::Person => ("/voice", "voice.mine"),
            Reader::Operator => ("/staff/voice/calls/new", "voice.new_call"),
            Reader::Dispatcher { .. } => ("/staff/voice/queue", "voice.queue"),
            Reader::Department => ("/staff/voice", "voice.inbox"),
        }
    }

    fn confidence_percent(&self) -> String {
        format!("{:.0}", self.req.confidence * 100.0)
    }
}

async fn my_requests(State(state): State<AppState>, ctx: PageCtx) -> PageResult {
    let s = ctx.ready()?;
    let rows = state.voice.my_requests().list(&s.principal, Utc::now()).await?;
    let page = ListPage { l: ctx.layout("voice.mine"), rows, base: "/voice", empty_key: "voice.none", staff: false };
    Ok(ctx.page(StatusCode::OK, &page))
}

#[derive(Template)]
#[template(path = "voice_call.html")]
struct CallPage {
    l: Layout,
    places: Vec<RegionRef>,
    kinds: &'static [RequestKind],
    form: CallForm,
    errors: Vec<(&'static str, String)>,
}

#[derive(Debug, Default, Deserialize)]
struct CallForm {
    #[serde(default)]
    caller_name: String,
    #[serde(default)]
    caller_mobile: String,
    #[serde(flatten)]
    request: SubmitForm,
}

async fn call_page(state: &AppState, ctx: &PageCtx, form: CallForm, errors: Vec<(&'static str, String)>) -> PageResult {
    let s = ctx.ready()?;
    let places = match &s.principal.region {
        Some(r) => state.identity.organisation().places_near(&r.path).await?,
        None => Vec::new(),
    };
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let kinds = <RequestKind as strum::VariantArray>::VARIANTS;
    Ok(ctx.page(status, &CallPage { l: ctx.layout("voice.new_call"), places, kinds, form, errors }))
}

async fn new_call(State(state): State<AppState>, ctx: PageCtx) -> PageResult {
    ctx.authorize::<VoiceRecord>(&state).await?;
    let form =
        CallForm { request: SubmitForm { key: kernel::db::new_id(), ..SubmitForm::default() }, ..CallForm::default() };
    call_page(&state, &ctx, form, Vec::new()).await
}

async fn record_call(State(state): State<AppState>, ctx: PageCtx, CsrfForm(form): CsrfForm<CallForm>) -> PageResult {
    let cap = ctx.authorize::<VoiceRecord>(&state).await?;
    let Ok(kind) = form.request.kind.parse::<RequestKind>() else {
        let message = ctx.layout("voice.new_call").t("voice.choose_kind").to_string();
        return call_page(&state, &ctx, form, vec![("kind", message)]).await;
    };
    let caller = voice::Caller { name: form.caller_name.clone(), mobile: form.caller_mobile.clone() };
    let new = form.request.to_new(kind);
    match state.voice.intake().record_call(&cap, caller, new, Utc::now()).await {
        Ok(v) => Ok(Redirect::to(&format!("/staff/voice/calls/{}", v.id)).into_response()),
        Err(voice::Error::Invalid { field, reason }) => {
            let l = ctx.layout("voice.new_call");
            let message = format!("{}：{reason}", l.t(&format!("voice.field.{field}")));
            call_page(&state, &ctx, form, vec![(field, message)]).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn call(State(state): State<AppState>, ctx: PageCtx, Path(id): Path<String>) -> PageResult {
    let cap = ctx.authorize::<VoiceRecord>(&state).await?;
    let r = state.voice.intake().call(&cap, &id, Utc::now()).await?;
    let l = ctx.layout("voice.request").about(&r.number);
    let ratings = <Rating as strum::VariantArray>::VARIANTS;
    Ok(ctx.page(StatusCode::OK, &RequestPage { l, req: r, reader: Reader::Operator, ratings, contact: None }))
}

async fn record_rating(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<RatingForm>,
) -> PageResult {
    let cap = ctx.authorize::<VoiceRecord>(&state).await?;
    let rating = form
        .rating
        .parse::<Rating>()
        .map_err(|_| voice::Error::Invalid {
            field: "rating", reason: "choose 满意, 基本满意 or 不满意".into()
        })?;
    state.voice.intake().record_rating(&cap, &id, rating, Some(form.comment.as_str()), Utc::now()).await?;
    Ok(Redirect::to(&format!("/staff/voice/calls/{id}")).into_response())
}

#[derive(Debug, Default, Deserialize)]
struct SubmitForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    urgent: Option<String>,
    #[serde(default)]
    publishable: Option<String>,
    /// Written into the form when it is shown: a second click sends the same key.
    #[serde(default)]
    key: String,
    /// The uploads ticked as photos (the portal's form only).
    #[serde(skip)]
    photos: Vec<String>,
}

impl SubmitForm {
    /// The request the form describes, kept for showing the form again.
    fn to_new(&self, kind: RequestKind) -> NewRequest {
        NewRequest {
            kind,
            text: self.text.clone(),
            region_code: self.region.clone(),
            address: Some(self.address.clone()),
            urgency: if self.urgent.is_some() { Urgency::Urgent } else { Urgency::Normal },
            publishable: self.publishable.is_some(),
            idempotency_key: Some(self.key.clone()),
            photos: self.photos.clone(),
        }
    }

    /// The portal's form, whose photos come as one `photos` field per ticked upload.
    fn from_pairs(pairs: Vec<(String, String)>) -> SubmitForm {
        let mut f = SubmitForm::default();
        for (k, v) in pairs {
            match k.as_str() {
                "kind" => f.kind = v,
                "text" => f.text = v,
                "region" => f.region = v,
                "address" => f.address = v,
                "urgent" => f.urgent = Some(v),
                "publishable" => f.publishable = Some(v),
                "key" => f.key = v,
                "photos" => f.photos.push(v),
                _ => {}
            }
        }
        f
    }
}

async fn new_page(
    state: &AppState,
    ctx: &PageCtx,
    form: SubmitForm,
    errors: Vec<(&'static str, String)>,
) -> PageResult {
    let s = ctx.ready()?;
    let places = match &s.principal.region {
        Some(r) => state.identity.organisation().places_near(&r.path).await?,
        None => Vec::new(),
    };
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let uploads = state.services.documents().my_photos(&s.principal).await?;
    let page = NewPage {
        l: ctx.layout("voice.new"),
        places,
        kinds: <RequestKind as strum::VariantArray>::VARIANTS,
        uploads,
        form,
        errors,
    };
    Ok(ctx.page(status, &page))
}

async fn new_request(State(state): State<AppState>, ctx: PageCtx) -> PageResult {
    let s = ctx.ready()?;
    let form = SubmitForm {
        region: s.principal.region.as_ref().map(|r| r.code.clone()).unwrap_or_default(),
        key: kernel::db::new_id(),
        ..SubmitForm::default()
    };
    new_page(&state, &ctx, form, Vec::new()).await
}

async fn submit(
    State(state): State<AppState>,
    ctx: PageCtx,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> PageResult {
    let s = ctx.ready()?;
    let form = SubmitForm::from_pairs(pairs);
    let Ok(kind) = form.kind.parse::<RequestKind>() else {
        let message = ctx.layout("voice.new").t("voice.choose_kind").to_string();
        return new_page(&state, &ctx, form, vec![("kind", message)]).await;
    };
    let new = form.to_new(kind);
    match state.voice.intake().submit(&s.principal, new, Channel::Portal, Utc::now()).await {
        Ok(v) => Ok(Redirect::to(&format!("/voice/{}", v.id)).into_response()),
        Err(voice::Error::Invalid { field, reason }) => {
            let l = ctx.layout("voice.new");
            let message = format!("{}：{reason}", l.t(&format!("voice.field.{field}")));
            new_page(&state, &ctx, form, vec![(field, message)]).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn my_request(State(state): State<AppState>, ctx: PageCtx, Path(id): Path<String>) -> PageResult {
    let s = ctx.ready()?;
    let r = state.voice.my_requests().request(&s.principal, &id, Utc::now()).await?;
    let l = ctx.layout("voice.request").about(&r.number);
    let ratings = <Rating as strum::VariantArray>::VARIANTS;
    Ok(ctx.page(StatusCode::OK, &RequestPage { l, req: r, reader: Reader::Person, ratings, contact: None }))
}

async fn my_photo(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path((id, photo)): Path<(String, String)>,
) -> PageResult {
    let s = ctx.ready()?;
    let (photo, bytes) = state.voice.my_requests().photo(&s.principal, &id, &photo).await?;
    Ok(crate::api::voice::photo_response(photo, bytes))
}

async fn handled_photo(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path((id, photo)): Path<(String, String)>,
) -> PageResult {
    let cap = ctx.authorize::<VoiceHandle>(&state).await?;
    let (photo, bytes) = state.voice.handling().photo(&cap, &id, &photo).await?;
    Ok(crate::api::voice::photo_response(photo, bytes))
}

async fn queued_photo(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path((id, photo)): Path<(String, String)>,
) -> PageResult {
    let cap = ctx.authorize::<VoiceDispatch>(&state).await?;
    let (photo, bytes) = state.voice.dispatching().photo(&cap, &id, &photo).await?;
    Ok(crate::api::voice::photo_response(photo, bytes))
}

#[derive(Deserialize)]
struct RatingForm {
    #[serde(default)]
    rating: String,
    #[serde(default)]
    comment: String,
}

async fn rate(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<RatingForm>,
) -> PageResult {
    let s = ctx.ready()?;
    let rating = form
        .rating
        .parse::<Rating>()
        .map_err(|_| voice::Error::Invalid {
            field: "rating", reason: "choose 满意, 基本满意 or 不满意".into()
        })?;
    let comment = Some(form.comment.as_str());
    state.voice.my_requests().rate(&s.principal, &id, rating, comment, Utc::now()).await?;
    Ok(Redirect::to(&format!("/voice/{id}")).into_response())
}

async fn inbox(State(state): State<AppState>, ctx: PageCtx) -> PageResult {
    let cap = ctx.authorize::<VoiceHandle>(&state).await?;
    let rows = state.voice.handling().inbox(&cap, Utc::now()).await?;
    let l = ctx.layout("voice.inbox");
    Ok(ctx
        .page(StatusCode::OK, &ListPage { l, rows, base: "/staff/voice", empty_key: "voice.inbox_empty", staff: true }))
}

async fn queue(State(state): State<AppState>, ctx: PageCtx) -> PageResult {
    let cap = ctx.authorize::<VoiceDispatch>(&state).await?;
    let rows = state.voice.dispatching().queue(&cap, Utc::now()).await?;
    let l = ctx.layout("voice.queue");
    let page = ListPage { l, rows, base: "/staff/voice/queue", empty_key: "voice.queue_empty", staff: true };
    Ok(ctx.page(StatusCode::OK, &page))
}

async fn queued(State(state): State<AppState>, ctx: PageCtx, Path(id): Path<String>) -> PageResult {
    let cap = ctx.authorize::<VoiceDispatch>(&state).await?;
    let r = state.voice.dispatching().request(&cap, &id, Utc::now()).await?;
    let departments =
        state.identity.organisation().departments(&ctx.authorize::<OrganisationRead>(&state).await?).await?;
    let reader = Reader::Dispatcher { categories: state.voice.categories().all().to_vec(), departments };
    let l = ctx.layout("voice.request").about(&r.number);
    Ok(ctx.page(StatusCode::OK, &RequestPage { l, req: r, reader, ratings: &[], contact: None }))
}

#[derive(Deserialize)]
struct FiguresQuery {
    #[serde(default)]
    by: Option<String>,
}

async fn figures(State(state): State<AppState>, ctx: PageCtx, Query(q): Query<FiguresQuery>) -> PageResult {
    let cap = ctx.authorize::<VoiceDispatch>(&state).await?;
    let by = match q.by.as_deref() {
        None | Some("") => Breakdown::Department,
        Some(by) => by
            .parse()
            .map_err(|_| voice::Error::Invalid { field: "by", reason: "department, district or category".into() })?,
    };
    let rows = state.voice.figures().table(&cap, by, Utc::now()).await?;
    let breakdowns = <Breakdown as strum::VariantArray>::VARIANTS;
    let categories = state.voice.categories().all().to_vec();
    let page = FiguresPage { l: ctx.layout("voice.figures"), rows, by, breakdowns, categories };
    Ok(ctx.page(StatusCode::OK, &page))
}

#[derive(Template)]
#[template(path = "voice_published.html")]
struct PublishedPage {
    l: Layout,
    rows: Vec<PublishedAnswer>,
    page: u32,
    /// A full page: there may be another.
    more: bool,
}

#[derive(Deserialize)]
struct PageQuery {
    #[serde(default)]
    page: Option<String>,
}

/// 诉求公开: answered requests whose authors agreed, de-identified; open to everyone.
async fn published(State(state): State<AppState>, ctx: PageCtx, Query(q): Query<PageQuery>) -> PageResult {
    let page = match q.page.as_deref() {
        None | Some("") => 1,
        Some(p) => p.parse().map_err(|_| voice::Error::Invalid { field: "page", reason: "a page number".into() })?,
    };
    let rows = state.voice.published().page(page).await?;
    let more = rows.len() == voice::PER_PAGE as usize;
    Ok(ctx.page(StatusCode::OK, &PublishedPage { l: ctx.layout("voice.published"), rows, page, more }))
}

#[derive(Template)]
#[template(path = "voice_routes.html")]
struct RoutesPage {
    l: Layout,
    rows: Vec<Route>,
    /// Shown to administrators of the region, who may change a line.
    editor: Option<RouteEditor>,
    saved: bool,
}

struct RouteEditor {
    regions: Vec<RegionRef>,
    categories: Vec<Category>,
    departments: Vec<DepartmentView>,
}

#[derive(Deserialize)]
struct SavedQuery {
    #[serde(default)]
    saved: Option<String>,
}

/// The routing tables within the reader's jurisdiction; administrators change a line here.
async fn routes(State(state): State<AppState>, ctx: PageCtx, Query(q): Query<SavedQuery>) -> PageResult {
    let read = ctx.authorize::<OrganisationRead>(&state).await?;
    let rows = state.voice.routing().routes(&read).await?;
    let editor = match ctx.ready()?.principal.authorize::<OrganisationManage>() {
        Ok(_) => Some(RouteEditor {
            regions: state.identity.organisation().regions(&read).await?,
            categories: state.voice.categories().all().to_vec(),
            departments: state.identity.organisation().departments(&read).await?,
        }),
        Err(_) => None,
    };
    let page = RoutesPage { l: ctx.layout("voice.routes"), rows, editor, saved: q.saved.is_some() };
    Ok(ctx.page(StatusCode::OK, &page))
}

#[derive(Deserialize)]
struct RouteForm {
    #[serde(default)]
    region: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    department: String,
}

async fn set_route(State(state): State<AppState>, ctx: PageCtx, CsrfForm(form): CsrfForm<RouteForm>) -> PageResult {
    let cap = ctx.authorize::<OrganisationManage>(&state).await?;
    state.voice.routing().set_route(&cap, &form.region, &form.category, &form.department, Utc::now()).await?;
    Ok(Redirect::to("/staff/voice/routes?saved=1").into_response())
}

#[derive(Deserialize)]
struct MergeForm {
    #[serde(default)]
    into: String,
}

async fn merge(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<MergeForm>,
) -> PageResult {
    let cap = ctx.authorize::<VoiceDispatch>(&state).await?;
    state.voice.dispatching().merge(&cap, &id, &form.into, Utc::now()).await?;
    Ok(Redirect::to(&format!("/staff/voice/queue/{id}")).into_response())
}

#[derive(Deserialize)]
struct ExtensionForm {
    #[serde(default)]
    decision: String,
}

async fn decide_extension(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<ExtensionForm>,
) -> PageResult {
    let cap = ctx.authorize::<VoiceDispatch>(&state).await?;
    let grant = match form.decision.as_str() {
        "grant" => true,
        "refuse" => false,
        _ => return Err(voice::Error::Invalid { field: "decision", reason: "grant or refuse".into() }.into()),
    };
    state.voice.dispatching().decide_extension(&cap, &id, grant, Utc::now()).await?;
    Ok(Redirect::to("/staff/voice/queue").into_response())
}

#[derive(Deserialize)]
struct DispatchForm {
    #[serde(default)]
    category: String,
    #[serde(default)]
    department: String,
}

async fn dispatch(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<DispatchForm>,
) -> PageResult {
    let cap = ctx.authorize::<VoiceDispatch>(&state).await?;
    state.voice.dispatching().dispatch(&cap, &id, &form.category, &form.department, Utc::now()).await?;
    Ok(Redirect::to("/staff/voice/queue").into_response())
}

async fn handled(State(state): State<AppState>, ctx: PageCtx, Path(id): Path<String>) -> PageResult {
    staff_request(&state, &ctx, &id, None).await
}

#[derive(Deserialize)]
struct RevealForm {
    #[serde(default)]
    purpose: String,
}

/// The person's plain name and mobile, for a stated purpose; the page shows them once.
async fn reveal_contact(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<RevealForm>,
) -> PageResult {
    staff_request(&state, &ctx, &id, Some(form.purpose.as_str())).await
}

async fn staff_request(state: &AppState, ctx: &PageCtx, id: &str, reveal: Option<&str>) -> PageResult {
    let cap = ctx.authorize::<VoiceHandle>(state).await?;
    let read = ctx.ready()?.principal.authorize::<ResidentRead>().ok();
    let found = state.voice.handling().request(&cap, read.as_ref(), id, reveal, Utc::now()).await?;
    let l = ctx.layout("voice.request").about(&found.request.number);
    let page =
        RequestPage { l, req: found.request, reader: Reader::Department, ratings: &[], contact: Some(found.contact) };
    Ok(ctx.page(StatusCode::OK, &page))
}

#[derive(Deserialize)]
struct ActForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    text: String,
    /// The working days an extension asks for.
    #[serde(default)]
    days: String,
}

async fn act(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<ActForm>,
) -> PageResult {
    let cap = ctx.authorize::<VoiceHandle>(&state).await?;
    let action = match form.action.as_str() {
        "sign" => HandlerAction::Sign,
        "send_back" => HandlerAction::SendBack { reason: form.text },
        "answer" => HandlerAction::Answer { text: form.text },
        "ask_extension" => {
            let days = form.days.trim().parse().map_err(|_| voice::Error::Invalid {
                field: "days",
                reason: format!("between 1 and {} working days", voice::MAX_EXTENSION_DAYS),
            })?;
            HandlerAction::AskExtension { days, reason: form.text }
        }
        _ => {
            let reason = "sign, send_back, ask_extension or answer".into();
            return Err(voice::Error::Invalid { field: "action", reason }.into());
        }
    };
    let r = state.voice.handling().act(&cap, &id, action, Utc::now()).await?;
    // Sent back, it is no longer this department's to see.
    let to = if r.stage == Stage::Dispatching { "/staff/voice".to_string() } else { format!("/staff/voice/{id}") };
    Ok(Redirect::to(&to).into_response())
}
