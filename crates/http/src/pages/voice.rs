//! 12345 pages: 我的诉求 (make a request, follow it, rate the answer), the dispatchers'
//! queue (派单) and a department's 12345 inbox (签收, 退单, 答复).

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use chrono::Utc;
use serde::Deserialize;

use super::{CsrfForm, Layout, PageCtx, PageError, PageResult};
use crate::AppState;
use identity::{DepartmentView, RegionRef};
use kernel::authz::{OrganisationRead, ResidentRead, VoiceDispatch, VoiceHandle, VoiceRecord};
use voice::{
    Category, Channel, Contact, DepartmentFigures, HandlerAction, NewRequest, Rating, RequestKind, RequestView, Stage,
    Urgency,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/voice", get(my_requests))
        .route("/voice/new", get(new_request).post(submit))
        .route("/voice/{id}", get(my_request))
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
    rows: Vec<DepartmentFigures>,
}

impl FiguresPage {
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
    form: SubmitForm,
    errors: Vec<(&'static str, String)>,
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
        }
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
    let page = NewPage {
        l: ctx.layout("voice.new"),
        places,
        kinds: <RequestKind as strum::VariantArray>::VARIANTS,
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

async fn submit(State(state): State<AppState>, ctx: PageCtx, CsrfForm(form): CsrfForm<SubmitForm>) -> PageResult {
    let s = ctx.ready()?;
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

async fn figures(State(state): State<AppState>, ctx: PageCtx) -> PageResult {
    let cap = ctx.authorize::<VoiceDispatch>(&state).await?;
    let rows = state.voice.figures().by_department(&cap, Utc::now()).await?;
    Ok(ctx.page(StatusCode::OK, &FiguresPage { l: ctx.layout("voice.figures"), rows }))
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
        _ => return Err(voice::Error::Invalid { field: "action", reason: "sign, send_back or answer".into() }.into()),
    };
    let r = state.voice.handling().act(&cap, &id, action, Utc::now()).await?;
    // Sent back, it is no longer this department's to see.
    let to = if r.stage == Stage::Dispatching { "/staff/voice".to_string() } else { format!("/staff/voice/{id}") };
    Ok(Redirect::to(&to).into_response())
}
