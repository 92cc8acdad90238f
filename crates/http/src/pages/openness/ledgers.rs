//! The public ledgers' pages: the communities' monthly income and spending and the
//! public-resource transactions, each record with its SHA-256 and its inclusion proof; and
//! the forms the community's worker and the trading officer publish with.

use super::*;
use kernel::authz::{CommunityFinancePublish, TransactionPublish};
use openness::{
    Direction, FinanceLine, LedgerKind, MonthlyStatement, Party, PublicRecord, Stage, Subject, TransactionRecord,
};

#[derive(Template)]
#[template(path = "open_ledgers.html")]
pub(super) struct LedgersPage {
    l: Layout,
    communities: Vec<Subject>,
    projects: Vec<Subject>,
}

pub(super) async fn ledgers(State(state): State<AppState>, ctx: PageCtx) -> PageResult {
    let communities = state.openness.ledgers().subjects(LedgerKind::CommunityFinance).await?;
    let projects = state.openness.ledgers().subjects(LedgerKind::Transaction).await?;
    Ok(ctx.page(StatusCode::OK, &LedgersPage { l: ctx.layout("ledger.title"), communities, projects }))
}

#[derive(Template)]
#[template(path = "open_ledger.html")]
pub(super) struct LedgerPage {
    l: Layout,
    kind: LedgerKind,
    code: String,
    name: String,
    records: Vec<PublicRecord>,
    proofs: PublicProofs,
}

impl LedgerPage {
    fn yuan(&self, fen: &i64) -> String {
        openness::yuan(*fen)
    }
}

async fn ledger_page(state: &AppState, ctx: &PageCtx, kind: LedgerKind, code: String) -> PageResult {
    let records = state.openness.ledgers().records(kind, &code).await?;
    let name = records
        .first()
        .map(|r| r.subject_name.clone())
        .ok_or_else(|| PageError::from(ApiError::not_found("ledger")))?;
    let proofs = PublicProofs::latest(state).await?;
    let l = ctx.layout("ledger.title").about(&name);
    Ok(ctx.page(StatusCode::OK, &LedgerPage { l, kind, code, name, records, proofs }))
}

pub(super) async fn community(State(state): State<AppState>, ctx: PageCtx, Path(code): Path<String>) -> PageResult {
    ledger_page(&state, &ctx, LedgerKind::CommunityFinance, code).await
}

pub(super) async fn project(State(state): State<AppState>, ctx: PageCtx, Path(code): Path<String>) -> PageResult {
    ledger_page(&state, &ctx, LedgerKind::Transaction, code).await
}

/// The forms' fields, kept to show again with what was wrong.
#[derive(Debug, Default, Deserialize)]
pub(super) struct LedgerForm {
    /// `statement` or `transaction`.
    #[serde(default)]
    form: String,
    #[serde(default)]
    community: String,
    #[serde(default)]
    month: String,
    /// One line each: 收入 or 支出 (income or spending), 科目, amount in yuan, note.
    #[serde(default)]
    lines: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    project_code: String,
    #[serde(default)]
    project_name: String,
    #[serde(default)]
    stage: String,
    #[serde(default)]
    amount: String,
    /// One party each: name, and the amount in yuan where there is one.
    #[serde(default)]
    parties: String,
    #[serde(default)]
    details: String,
    /// The id of the record corrected, if any.
    #[serde(default)]
    corrects: String,
}

#[derive(Template)]
#[template(path = "open_ledger_publish.html")]
pub(super) struct PublishLedgerPage {
    l: Layout,
    /// The worker's community (code, name), when they publish its finances.
    community: Option<(String, String)>,
    can_trade: bool,
    stages: &'static [Stage],
    form: LedgerForm,
    errors: Errors,
}

async fn publish_ledger_page(state: &AppState, ctx: &PageCtx, form: LedgerForm, errors: Errors) -> PageResult {
    let s = ctx.ready()?;
    let finance = s.principal.authorize::<CommunityFinancePublish>().ok();
    let can_trade = s.principal.may::<TransactionPublish>();
    if finance.is_none() && !can_trade {
        ctx.authorize::<TransactionPublish>(state).await?;
    }
    // A community worker's region is their community.
    let community = match (&finance, &s.principal.region) {
        (Some(_), Some(r)) if r.level == identity::RegionLevel::Community.as_str() => {
            Some((r.code.clone(), r.name.clone()))
        }
        _ => None,
    };
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let page = PublishLedgerPage {
        l: ctx.layout("ledger.publish"),
        community,
        can_trade,
        stages: <Stage as strum::VariantArray>::VARIANTS,
        form,
        errors,
    };
    Ok(ctx.page(status, &page))
}

pub(super) async fn publish_ledger(State(state): State<AppState>, ctx: PageCtx) -> PageResult {
    let month = super::super::china_time(Utc::now(), "%Y-%m");
    publish_ledger_page(&state, &ctx, LedgerForm { month, ..LedgerForm::default() }, Vec::new()).await
}

/// An amount typed in yuan, as fen; the field's error otherwise.
fn fen(field: &'static str, l: &Layout, text: &str) -> Result<i64, Errors> {
    openness::fen_of_yuan(text).ok_or_else(|| vec![(field, l.t("ledger.bad_amount").to_string())])
}

fn statement_of(f: &LedgerForm, l: &Layout) -> Result<MonthlyStatement, Errors> {
    let mut lines = Vec::new();
    for row in f.lines.lines().map(str::trim).filter(|r| !r.is_empty()) {
        let cells: Vec<&str> = row.split([',', '，']).map(str::trim).collect();
        let (direction, category, amount, note) = match cells.as_slice() {
            [d, c, a] => (*d, *c, *a, None),
            [d, c, a, n] => (*d, *c, *a, Some((*n).to_string())),
            _ => return Err(vec![("lines", format!("{}：{row}", l.t("ledger.bad_line")))]),
        };
        let direction = match direction {
            "收入" | "income" => Direction::Income,
            "支出" | "spending" => Direction::Spending,
            _ => return Err(vec![("lines", format!("{}：{row}", l.t("ledger.bad_line")))]),
        };
        let amount_fen = fen("lines", l, amount)?;
        lines.push(FinanceLine { amount_fen, category: category.to_string(), direction, note });
    }
    Ok(MonthlyStatement {
        community: f.community.clone(),
        lines,
        month: f.month.clone(),
        note: Some(f.note.clone()).filter(|n| !n.trim().is_empty()),
    })
}

fn transaction_of(f: &LedgerForm, l: &Layout) -> Result<TransactionRecord, Errors> {
    let Ok(Some(stage)) = choice::<Stage>("stage", &f.stage) else {
        return Err(vec![("stage", l.t("ledger.choose_stage").to_string())]);
    };
    let mut parties = Vec::new();
    for row in f.parties.lines().map(str::trim).filter(|r| !r.is_empty()) {
        let (name, amount) = match row.rsplit_once([',', '，']) {
            Some((name, amount)) => (name.trim(), Some(fen("parties", l, amount)?)),
            None => (row, None),
        };
        parties.push(Party { amount_fen: amount, name: name.to_string() });
    }
    let amount_fen = match f.amount.trim() {
        "" => None,
        a => Some(fen("amount", l, a)?),
    };
    Ok(TransactionRecord {
        amount_fen,
        details: f.details.clone(),
        parties,
        project_code: f.project_code.clone(),
        project_name: f.project_name.clone(),
        stage,
    })
}

pub(super) async fn publish_ledger_record(
    State(state): State<AppState>,
    ctx: PageCtx,
    CsrfForm(form): CsrfForm<LedgerForm>,
) -> PageResult {
    let l = ctx.layout("ledger.publish");
    let corrects = Some(form.corrects.trim()).filter(|c| !c.is_empty());
    let ledgers = state.openness.ledgers();
    let result = match form.form.as_str() {
        "statement" => {
            let cap = ctx.authorize::<CommunityFinancePublish>(&state).await?;
            match statement_of(&form, &l) {
                Ok(s) => {
                    ledgers.publish_statement(&cap, &s, corrects, Utc::now()).await.map_err(|e| field_error(&l, e))
                }
                Err(errors) => Err(Ok(errors)),
            }
        }
        "transaction" => {
            let cap = ctx.authorize::<TransactionPublish>(&state).await?;
            match transaction_of(&form, &l) {
                Ok(t) => {
                    ledgers.publish_transaction(&cap, &t, corrects, Utc::now()).await.map_err(|e| field_error(&l, e))
                }
                Err(errors) => Err(Ok(errors)),
            }
        }
        _ => return Err(bad_value("form")),
    };
    match result {
        Ok(r) => {
            let base = match r.kind {
                LedgerKind::CommunityFinance => "community-finance",
                LedgerKind::Transaction => "transactions",
            };
            Ok(Redirect::to(&format!("/open/ledgers/{base}/{}", r.subject_code)).into_response())
        }
        Err(errors) => {
            // Amounts and categories are typed inside the lines or the parties.
            let statement = form.form == "statement";
            let errors = errors?
                .into_iter()
                .map(|(field, message)| match field {
                    "amount_fen" | "category" if statement => ("lines", message),
                    "amount_fen" => ("parties", message),
                    other => (other, message),
                })
                .collect();
            publish_ledger_page(&state, &ctx, form, errors).await
        }
    }
}
