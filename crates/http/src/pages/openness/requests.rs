//! A person's requests for information (依申请公开), and the request page the answering
//! department shares.

use super::*;

#[derive(Debug, Default, Deserialize)]
pub(super) struct RequestForm {
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
pub(super) struct RequestsPage {
    l: Layout,
    rows: Vec<InformationRequest>,
    departments: Vec<(String, String, usize)>,
    deliveries: &'static [Delivery],
    form: RequestForm,
    errors: Errors,
}

pub(super) async fn requests_page(state: &AppState, ctx: &PageCtx, form: RequestForm, errors: Errors) -> PageResult {
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
pub(super) async fn all_departments(state: &AppState) -> Result<Vec<(String, String, usize)>, PageError> {
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

pub(super) async fn my_requests(State(state): State<AppState>, ctx: PageCtx) -> PageResult {
    let form = RequestForm { key: kernel::db::new_id(), ..RequestForm::default() };
    requests_page(&state, &ctx, form, Vec::new()).await
}

pub(super) async fn submit_request(
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
pub(super) struct RequestPage {
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

pub(super) fn deadline_class(d: &Deadline) -> &'static str {
    match d.status {
        DeadlineStatus::Overdue | DeadlineStatus::AnsweredLate => "due-overdue",
        DeadlineStatus::Near => "due-soon",
        _ => "due-ok",
    }
}

pub(super) async fn my_request(State(state): State<AppState>, ctx: PageCtx, Path(id): Path<String>) -> PageResult {
    let s = ctx.ready()?;
    let r = state.openness.requests().get(&s.principal, &id, Utc::now()).await?;
    request_page(&ctx, r, false, ActForm::default(), Vec::new())
}

pub(super) fn request_page(
    ctx: &PageCtx,
    r: InformationRequest,
    staff: bool,
    form: ActForm,
    errors: Errors,
) -> PageResult {
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
pub(super) struct ClarifyForm {
    #[serde(default)]
    text: String,
}

pub(super) async fn clarify(
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
