//! Staff pages: the inbox, claim and transfer, notifications, the case page with its
//! actions, rating replies and revocation; and the public certificate check.

use super::*;

// --- staff ---------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "inbox.html")]
pub(super) struct InboxPage {
    l: Layout,
    counts: services::InboxCounts,
    items: Vec<(InboxItem, String, String, &'static str)>,
    due: String,
    mine: bool,
    me: String,
}

#[derive(Deserialize, Default)]
pub(super) struct InboxQuery {
    #[serde(default)]
    due: String,
    /// `1`: only the tasks the caller has claimed or been given.
    #[serde(default)]
    mine: String,
}

pub(super) async fn inbox(State(state): State<AppState>, ctx: PageCtx, Query(q): Query<InboxQuery>) -> PageResult {
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
pub(super) async fn claim(
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
pub(super) struct TransferPage {
    l: Layout,
    choice: services::TransferChoice,
    error: Option<String>,
}

pub(super) async fn transfer_page(State(state): State<AppState>, ctx: PageCtx, Path(id): Path<String>) -> PageResult {
    let cap = ctx.authorize::<ApplicationHandle>(&state).await?;
    let choice = state.services.casework().transfer_choice(&cap, &id).await?;
    Ok(ctx.page(StatusCode::OK, &TransferPage { l: ctx.layout("hall.transfer"), choice, error: None }))
}

#[derive(Deserialize)]
pub(super) struct TransferForm {
    #[serde(default)]
    to: String,
}

/// Hands an open task to a colleague of the same department holding its role.
pub(super) async fn transfer(
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
pub(super) struct NotificationsPage {
    l: Layout,
    rows: Vec<(services::NotificationView, String, String)>,
    staff: bool,
}

/// 消息: the signed-in person's notifications, newest first (opening the page reads them).
pub(super) async fn notifications(State(state): State<AppState>, ctx: PageCtx) -> PageResult {
    let s = ctx.ready()?;
    let list = state.services.my_cases().notifications(&s.principal, Utc::now()).await?;
    let rows = list
        .into_iter()
        .map(|n| {
            let t = pick(&ctx, &n.text_zh, &n.text_en).to_string();
            let at = crate::pages::china_time(n.created_at, "%Y-%m-%d %H:%M");
            (n, t, at)
        })
        .collect();
    let staff = s.principal.kind == identity::AccountKind::Staff;
    Ok(ctx.page(StatusCode::OK, &NotificationsPage { l: ctx.layout("nav.notifications"), rows, staff }))
}

pub(super) async fn case_page(State(state): State<AppState>, ctx: PageCtx, Path(id): Path<String>) -> PageResult {
    let cap = ctx.authorize::<ApplicationHandle>(&state).await?;
    let app = state.services.casework().case_for_staff(&cap, &id, Utc::now()).await?;
    application_page(&state, &ctx, app, true, None, None).await
}

#[derive(Deserialize)]
pub(super) struct ActForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    comment: String,
    /// A decision that ends or returns the case, asked again before it is taken: its button
    /// sends the action here, and the confirmation form then sends it as `action`. A plain
    /// decision goes straight through, with no extra read of the case on the audit trail.
    review: Option<String>,
}

pub(super) async fn act(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<ActForm>,
) -> PageResult {
    let cap = ctx.authorize::<ApplicationHandle>(&state).await?;
    if let Some(action) = form.review {
        let app = state.services.casework().case_for_staff(&cap, &id, Utc::now()).await?;
        let label = text(ctx.prefs.lang, &format!("step.{action}"));
        let label = if label.is_empty() { action.clone() } else { label.to_string() };
        let confirm = PendingDecision { action, label, comment: form.comment };
        return application_page(&state, &ctx, app, true, None, Some(confirm)).await;
    }
    let comment = Some(form.comment.as_str()).filter(|c| !c.trim().is_empty());
    let app = state.services.casework().act(&cap, &id, &form.action, comment, Utc::now()).await?;
    let notice = Some(text(ctx.prefs.lang, "hall.done").to_string());
    application_page(&state, &ctx, app, true, notice, None).await
}

#[derive(Deserialize)]
pub(super) struct ReplyForm {
    #[serde(default)]
    reply: String,
}

/// The department answers a poor rating, which closes its rectification task.
pub(super) async fn rating_reply(
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
pub(super) struct RevokeForm {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    case: String,
}

pub(super) async fn revoke(
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
pub(super) struct VerifyPage {
    l: Layout,
    c: CertificateCheck,
    name: String,
    qr_svg: String,
    url: String,
}

pub(super) async fn verify(State(state): State<AppState>, ctx: PageCtx, Path(id): Path<String>) -> Response {
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
