//! The catalog with search and facets, and each service's guide (办事指南).

use super::*;

// --- catalog and guide ---------------------------------------------------------------------

#[derive(Deserialize, Default)]
pub(super) struct CatalogQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    department: String,
    #[serde(default)]
    event: String,
}

pub(super) struct Facet {
    code: String,
    name: String,
    current: bool,
}

pub(super) struct Listed {
    code: String,
    name: String,
    department: String,
    committed_days: u32,
    online: bool,
    visits: u8,
}

#[derive(Template)]
#[template(path = "services.html")]
pub(super) struct CatalogPage {
    l: Layout,
    q: String,
    events: Vec<Facet>,
    departments: Vec<Facet>,
    services: Vec<Listed>,
    /// (code, member services, name)
    bundles: Vec<(String, String, String)>,
}

pub(super) fn listed(ctx: &PageCtx, s: ServiceSummary) -> Listed {
    let dept = DEPARTMENT_KINDS.iter().find(|(k, _, _)| *k == s.department);
    Listed {
        name: pick(ctx, &s.name_zh, &s.name_en).to_string(),
        department: dept.map(|(_, z, e)| pick(ctx, z, e).to_string()).unwrap_or_default(),
        code: s.code,
        committed_days: s.committed_days,
        online: s.depth == services::catalog::Depth::Online,
        visits: s.visits,
    }
}

pub(super) async fn catalog(State(state): State<AppState>, ctx: PageCtx, Query(q): Query<CatalogQuery>) -> PageResult {
    let query = services::CatalogQuery {
        text: q.q.clone(),
        department: Some(q.department.clone()).filter(|d| !d.is_empty()),
        event: Some(q.event.clone()).filter(|e| !e.is_empty()),
    };
    let found = state.services.find(&query).await?;
    let bundles = state.services.bundles().await?;
    let page = CatalogPage {
        l: ctx.layout("hall.catalog"),
        events: EVENTS
            .iter()
            .map(|(c, z, e)| Facet { code: c.to_string(), name: pick(&ctx, z, e).into(), current: q.event == *c })
            .collect(),
        departments: DEPARTMENT_KINDS
            .iter()
            .filter(|(k, _, _)| *k != "SG" && *k != "QX")
            .map(|(c, z, e)| Facet { code: c.to_string(), name: pick(&ctx, z, e).into(), current: q.department == *c })
            .collect(),
        services: found.into_iter().map(|s| listed(&ctx, s)).collect(),
        bundles: bundles
            .into_iter()
            .map(|b| (b.code.clone(), b.services.join("、"), pick(&ctx, &b.name_zh, &b.name_en).to_string()))
            .collect(),
        q: q.q,
    };
    Ok(ctx.page(StatusCode::OK, &page))
}

pub(super) struct MaterialRow {
    pub(super) name: String,
    pub(super) required: bool,
    pub(super) replaced: Option<String>,
    /// The signed-in applicant holds a valid e-certificate that replaces it (免提交).
    pub(super) held: bool,
}

/// A service's materials in the page's language; `held` are the certificate types the
/// applicant holds (those materials need not be brought).
pub(super) fn material_rows(ctx: &PageCtx, s: &services::catalog::ServiceSpec, held: &[String]) -> Vec<MaterialRow> {
    use services::catalog::Replacement;
    s.materials
        .iter()
        .map(|m| MaterialRow {
            name: pick(ctx, &m.name_zh, &m.name_en).into(),
            required: m.required,
            held: matches!(&m.replaced_by, Some(Replacement::Certificate(kind)) if held.contains(kind)),
            replaced: m.replaced_by.as_ref().map(|r| match r {
                Replacement::Certificate(_) => text(ctx.prefs.lang, "hall.replaced_certificate").into(),
                Replacement::Shared(_) => text(ctx.prefs.lang, "hall.replaced_shared").into(),
            }),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "service.html")]
pub(super) struct GuidePage {
    l: Layout,
    code: String,
    name: String,
    department: String,
    category: String,
    legal_basis: String,
    conditions: String,
    materials: Vec<MaterialRow>,
    statutory_days: u32,
    committed_days: u32,
    immediate: bool,
    fee: String,
    channels: Vec<&'static str>,
    visits: u8,
    online: bool,
    /// A hall takes bookings for it.
    bookable: bool,
}

pub(super) async fn guide(State(state): State<AppState>, ctx: PageCtx, Path(code): Path<String>) -> PageResult {
    let svc = state.services.service(&code).await?;
    let s = &svc.spec;
    let dept = DEPARTMENT_KINDS.iter().find(|(k, _, _)| *k == s.department);
    let lang = ctx.prefs.lang;
    // Certificate types the signed-in applicant holds, valid today.
    let held: Vec<String> = match &ctx.session {
        Some(session) => state
            .services
            .certificates()
            .my_certificates(&session.principal, Utc::now())
            .await
            .map(|list| list.into_iter().filter(|c| c.valid).map(|c| c.kind).collect())
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let page = GuidePage {
        l: ctx.layout("hall.guide").about(pick(&ctx, &s.name_zh, &s.name_en)),
        code: s.code.clone(),
        name: pick(&ctx, &s.name_zh, &s.name_en).into(),
        department: dept.map(|(_, z, e)| pick(&ctx, z, e).to_string()).unwrap_or_default(),
        category: pick(&ctx, &s.category_zh, &s.category_en).into(),
        legal_basis: s.legal_basis.clone(),
        conditions: pick(&ctx, &s.conditions_zh, &s.conditions_en).into(),
        materials: material_rows(&ctx, s, &held),
        statutory_days: s.statutory_days,
        committed_days: s.committed_days,
        immediate: s.handling == services::catalog::Handling::Immediate,
        fee: pick(&ctx, &s.fee_zh, &s.fee_en).into(),
        channels: s
            .channels
            .iter()
            .map(|c| match c {
                services::catalog::Channel::Online => text(lang, "hall.channel_online"),
                services::catalog::Channel::Window => text(lang, "hall.channel_window"),
                services::catalog::Channel::Mobile => text(lang, "hall.channel_mobile"),
            })
            .collect(),
        visits: s.visits,
        online: s.depth == services::catalog::Depth::Online,
        bookable: state.services.appointments().halls_for(&s.code, None).await.is_ok_and(|h| !h.is_empty()),
    };
    Ok(ctx.page(StatusCode::OK, &page))
}
