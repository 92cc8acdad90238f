//! 我的数据 with correction requests, the staff correction inbox, and the security alerts page.

use super::*;

#[derive(Template)]
#[template(path = "my_data.html")]
pub(super) struct MyDataPage {
    l: Layout,
    data: identity::MyData,
    /// The audit tree size the proof links refer to.
    tree_size: u64,
    error: Option<(String, String)>,
    notice: Option<String>,
}

impl MyDataPage {
    fn action(&self, action: &str) -> String {
        let label = text(self.l.lang, &format!("action.{action}"));
        if label.is_empty() { action.to_string() } else { label.to_string() }
    }

    fn field<'a>(&self, field: &'a str) -> &'a str {
        resident_field(&self.l, field)
    }

    fn status(&self, status: &identity::CorrectionStatus) -> &'static str {
        self.l.t(match status {
            identity::CorrectionStatus::Open => "mydata.status_open",
            identity::CorrectionStatus::Done => "mydata.status_done",
            identity::CorrectionStatus::Rejected => "mydata.status_rejected",
        })
    }

    fn date(&self, t: &chrono::DateTime<chrono::Utc>) -> String {
        china_time(*t, "%Y-%m-%d")
    }
}

/// The label of a resident field a correction request names (the form offers no other); an
/// unknown name is shown as it is.
pub(super) fn resident_field<'a>(l: &Layout, field: &'a str) -> &'a str {
    match field {
        "name" => l.t("account.name"),
        "id_number" => l.t("mydata.id_number"),
        "mobile" => l.t("mydata.mobile"),
        "address" => l.t("mydata.address"),
        other => other,
    }
}

#[derive(Template)]
#[template(path = "corrections.html")]
pub(super) struct CorrectionsPage {
    l: Layout,
    requests: Vec<identity::CorrectionView>,
}

impl CorrectionsPage {
    fn field<'a>(&self, field: &'a str) -> &'a str {
        resident_field(&self.l, field)
    }

    fn time(&self, t: &chrono::DateTime<chrono::Utc>) -> String {
        china_time(*t, "%Y-%m-%d %H:%M")
    }
}

#[derive(Template)]
#[template(path = "security.html")]
pub(super) struct SecurityPage {
    l: Layout,
    alerts: Vec<insight::security::Alert>,
    open: usize,
}

pub(super) async fn my_data_page(
    state: &AppState,
    ctx: &PageCtx,
    error: Option<(String, String)>,
    notice: Option<String>,
) -> PageResult {
    let s = ctx.ready()?;
    let data = state.identity.my_data().overview(&s.principal, Utc::now()).await?;
    // Proofs refer to the latest signed checkpoint, which a citizen can verify.
    let tree_size = match state.ledger.latest_checkpoint(ledger::Log::Audit).await {
        Ok(Some((size, _))) => size,
        _ => 0,
    };
    let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    Ok(ctx.page(status, &MyDataPage { l: ctx.layout("mydata.title"), data, tree_size, error, notice }))
}

pub(super) async fn my_data(State(state): State<AppState>, ctx: PageCtx) -> PageResult {
    my_data_page(&state, &ctx, None, None).await
}

pub(super) async fn my_data_export(State(state): State<AppState>, ctx: PageCtx) -> PageResult {
    let s = ctx.ready()?;
    let d = state.identity.my_data().overview(&s.principal, Utc::now()).await?;
    // A person's own data never downloads as an empty file: a fault is answered as one.
    let json = serde_json::to_string_pretty(&d).map_err(|e| {
        tracing::error!(error = %e, "my data does not serialise");
        ApiError::internal()
    })?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"my-data.json\""),
        ],
        json,
    )
        .into_response())
}

#[derive(Deserialize)]
pub(super) struct CorrectionForm {
    #[serde(default)]
    field: String,
    #[serde(default)]
    requested: String,
    #[serde(default)]
    reason: String,
}

pub(super) async fn request_correction(
    State(state): State<AppState>,
    ctx: PageCtx,
    CsrfForm(form): CsrfForm<CorrectionForm>,
) -> PageResult {
    let s = ctx.ready()?;
    match state
        .identity
        .my_data()
        .request_correction(&s.principal, &form.field, &form.requested, &form.reason, Utc::now())
        .await
    {
        Ok(view) => {
            let notice = format!("{} {}", text(ctx.prefs.lang, "mydata.sent_to"), view.department);
            my_data_page(&state, &ctx, None, Some(notice)).await
        }
        Err(e) => {
            let field = match &e {
                identity::Error::Invalid { field, .. } => (*field).to_string(),
                _ => "requested".to_string(),
            };
            let message = error_text(ctx.prefs.lang, &ApiError::from(e));
            my_data_page(&state, &ctx, Some((field, message)), None).await
        }
    }
}

pub(super) async fn security_page(State(state): State<AppState>, ctx: PageCtx) -> PageResult {
    let cap = ctx.authorize::<kernel::authz::SecurityAlertHandle>(&state).await?;
    let alerts = insight::security::alerts(&state.db, &cap, 200).await?;
    let open = insight::security::open_count(&alerts);
    Ok(ctx.page(StatusCode::OK, &SecurityPage { l: ctx.layout("security.title"), alerts, open }))
}

#[derive(Deserialize)]
pub(super) struct AcknowledgeForm {
    #[serde(default)]
    alert_id: String,
}

pub(super) async fn acknowledge_alert(
    State(state): State<AppState>,
    ctx: PageCtx,
    CsrfForm(form): CsrfForm<AcknowledgeForm>,
) -> PageResult {
    let cap = ctx.authorize::<kernel::authz::SecurityAlertHandle>(&state).await?;
    insight::security::acknowledge(&state.db, &cap, &form.alert_id, Utc::now()).await?;
    Ok(Redirect::to("/security").into_response())
}

/// The correction requests addressed to departments in the caller's jurisdiction.
pub(super) async fn corrections_page(State(state): State<AppState>, ctx: PageCtx) -> PageResult {
    let cap = ctx.authorize::<kernel::authz::ResidentRead>(&state).await?;
    let requests = state.identity.my_data().corrections(&cap, Utc::now()).await?;
    Ok(ctx.page(StatusCode::OK, &CorrectionsPage { l: ctx.layout("corrections.title"), requests }))
}
