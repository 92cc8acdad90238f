//! The holder's certificates and the applicant's cases: timeline, withdrawal, rating.

use super::*;

// --- the holder's certificates (我的证照) ---------------------------------------------------

pub(super) struct CertificateRow {
    id: String,
    name: String,
    fields: String,
    issued: String,
    valid_until: Option<String>,
    valid: bool,
    revoked: bool,
}

#[derive(Template)]
#[template(path = "certificates.html")]
pub(super) struct CertificatesPage {
    l: Layout,
    rows: Vec<CertificateRow>,
}

pub(super) async fn my_certificates(State(state): State<AppState>, ctx: PageCtx) -> PageResult {
    let s = ctx.ready()?;
    let list = state.services.certificates().my_certificates(&s.principal, Utc::now()).await?;
    let rows = list
        .into_iter()
        .map(|c| CertificateRow {
            name: pick(&ctx, &c.name_zh, &c.name_en).to_string(),
            fields: c
                .fields
                .iter()
                .map(|(k, v)| {
                    let title = c.field_titles.get(k).map(|t| pick(&ctx, &t.zh, &t.en)).unwrap_or(k);
                    format!("{title}：{}", value_text(v))
                })
                .collect::<Vec<_>>()
                .join("；"),
            issued: crate::pages::china_time(c.issued_at, "%Y-%m-%d"),
            valid_until: c.valid_until.map(|t| crate::pages::china_time(t, "%Y-%m-%d")),
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
pub(super) struct ApplicationsPage {
    l: Layout,
    rows: Vec<(ApplicationSummary, String, String)>,
}

pub(super) async fn my_applications(State(state): State<AppState>, ctx: PageCtx) -> PageResult {
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

pub(super) struct Step {
    when: String,
    action: String,
    actor: String,
    comment: Option<String>,
    explanation: Option<String>,
    ledger_index: i64,
}

#[derive(Template)]
#[template(path = "application.html")]
pub(super) struct ApplicationPage {
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
    /// (action, label, button style)
    actions: Vec<(String, String, &'static str)>,
    /// A decision that ends or returns the case, waiting for the second click.
    confirm: Option<PendingDecision>,
    notice: Option<String>,
}

pub(super) fn steps(ctx: &PageCtx, app: &ApplicationView) -> Vec<Step> {
    app.timeline
        .iter()
        .map(|t| Step {
            when: crate::pages::china_time(t.at, "%Y-%m-%d %H:%M"),
            action: {
                let key = format!("step.{}", t.action.split(':').next_back().unwrap_or(&t.action));
                let label = text(ctx.prefs.lang, &key);
                if label.is_empty() || label == key { t.action.clone() } else { label.to_string() }
            },
            // Automatic steps are the platform's, said in words.
            actor: if t.actor == "system" {
                text(ctx.prefs.lang, "hall.actor_system").to_string()
            } else {
                t.actor.clone()
            },
            comment: t.comment.clone(),
            explanation: t.explanation.clone(),
            ledger_index: t.ledger_index,
        })
        .collect()
}

/// The case's form as people read it: each field by its title, choices by their label, yes
/// or no for a box ticked or not.
pub(super) async fn form_rows(
    state: &AppState,
    ctx: &PageCtx,
    app: &ApplicationView,
) -> Result<Vec<(String, String)>, PageError> {
    let form = match &app.bundle {
        Some(code) => state.services.intake().bundle_form(code).await?.1,
        None => state.services.form(&app.form_id).await?,
    };
    let Some(values) = app.form.as_object() else { return Ok(Vec::new()) };
    Ok(values
        .iter()
        .map(|(k, v)| match form.field(k) {
            Some(f) => (pick(ctx, &f.title_zh, &f.title_en).to_string(), shown_value(ctx, f, v)),
            None => (k.clone(), value_text(v)),
        })
        .collect())
}

fn shown_value(ctx: &PageCtx, field: &services::forms::Field, v: &Value) -> String {
    match v {
        Value::Bool(b) => text(ctx.prefs.lang, if *b { "hall.yes" } else { "hall.no" }).to_string(),
        Value::String(s) => match field.choices.iter().find(|c| &c.value == s) {
            Some(c) => pick(ctx, &c.label_zh, &c.label_en).to_string(),
            None => s.clone(),
        },
        other => value_text(other),
    }
}

/// A staff decision that ends or returns a case, shown back for confirmation before it is taken.
pub(super) struct PendingDecision {
    pub(super) action: String,
    pub(super) label: String,
    pub(super) comment: String,
}

pub(super) async fn application_page(
    state: &AppState,
    ctx: &PageCtx,
    app: ApplicationView,
    staff: bool,
    notice: Option<String>,
    confirm: Option<PendingDecision>,
) -> PageResult {
    let lang = ctx.prefs.lang;
    let rows = form_rows(state, ctx, &app).await?;
    let page = ApplicationPage {
        l: ctx.layout(if staff { "hall.case" } else { "hall.my_application" }).about(&app.number),
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
                    // Ending a case or sending it back is set apart from moving it on.
                    let style = match app.action_weights.get(a) {
                        Some(services::ActionWeight::Ends) => "warning",
                        Some(services::ActionWeight::Returns) => "secondary",
                        _ => "",
                    };
                    (a.clone(), if label.is_empty() { a.clone() } else { label.to_string() }, style)
                })
                .collect()
        } else {
            Vec::new()
        },
        notice,
        confirm,
        app,
    };
    Ok(ctx.page(StatusCode::OK, &page))
}

pub(super) async fn my_application(State(state): State<AppState>, ctx: PageCtx, Path(id): Path<String>) -> PageResult {
    let s = ctx.ready()?;
    let app = state.services.my_cases().my_application(&s.principal, &id).await?;
    application_page(&state, &ctx, app, false, None, None).await
}

pub(super) async fn withdraw(
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
pub(super) struct RateForm {
    #[serde(default)]
    score: String,
    #[serde(default)]
    comment: String,
}

pub(super) async fn rate(
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
