//! Proposals: the classifier's category for a text, and the department that handles it
//! where the request is: the district's routing table (the route of the request's region or
//! the nearest one above), else the nearest department of the category's usual kind.

use serde::Serialize;
use sqlx::AnyConnection;

use super::{Category, Error, Voice, repo};
use identity::{Capability, DepartmentRef};
use kernel::authz::Scope;
use kernel::authz::{OrganisationManage, OrganisationRead, VoiceDispatch};

/// Texts shorter than this say too little to act on; longer ones are cut by the caller.
pub const MIN_TEXT: usize = 5;
pub const MAX_TEXT: usize = 2000;

/// Why a department was proposed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "basis", rename_all = "snake_case")]
#[schema(as = VoiceRouteBasis)]
pub enum RouteBasis {
    /// The routing table of this region names the department for the category.
    RoutingTable { region_code: String },
    /// No route: the nearest department of the category's usual kind.
    NearestOfKind { kind: String },
    /// No department of that kind serves the region: a dispatcher decides.
    Unrouted,
}

/// The classifier's proposal for a request, with its reasons.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = VoiceProposal)]
pub struct Proposal {
    pub category: Category,
    pub department: Option<DepartmentRef>,
    /// The classifier's probability for the category (0–1).
    pub confidence: f64,
    /// The words that weighed most for the category, heaviest first.
    pub reasons: Vec<String>,
    pub route: RouteBasis,
    /// The next most likely categories.
    pub alternatives: Vec<Alternative>,
}

/// One line of a district's routing table.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = VoiceRoute)]
pub struct Route {
    pub region_code: String,
    pub region_name: String,
    pub category: Category,
    pub department_code: String,
    pub department_name: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = VoiceAlternative)]
pub struct Alternative {
    pub category: String,
    pub confidence: f64,
}

kernel::area! {
    /// Proposals (classify and route), and the routing tables.
    Routing of Voice
}

/// The text of a request, trimmed and checked.
pub(crate) fn checked_text(text: &str) -> Result<String, Error> {
    let text = text.trim();
    let n = text.chars().count();
    if n < MIN_TEXT {
        return Err(Error::invalid("text", format!("say what happened in at least {MIN_TEXT} characters")));
    }
    if n > MAX_TEXT {
        return Err(Error::invalid("text", format!("at most {MAX_TEXT} characters")));
    }
    if text.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') {
        return Err(Error::invalid("text", "control characters are not allowed"));
    }
    Ok(text.to_string())
}

impl Routing<'_> {
    /// What the platform would propose for a text, stored nowhere. The region is the
    /// dispatcher's own unless one within their jurisdiction is named.
    pub async fn classify(
        &self,
        cap: &Capability<VoiceDispatch>,
        text: &str,
        region_code: Option<&str>,
    ) -> Result<Proposal, Error> {
        let text = checked_text(text)?;
        let path = match region_code.map(str::trim).filter(|r| !r.is_empty()) {
            Some(code) => {
                let path = self.inner.identity.organisation().region_path(code).await?;
                cap.check_record(&path, 1)?;
                path
            }
            None => match cap.scope() {
                Scope::Subtree(path) => path.clone(),
                Scope::All => "/".to_string(),
            },
        };
        let mut c = self.conn().await?;
        self.propose_in(&mut c, &text, &path).await
    }

    pub(crate) async fn propose_in(
        &self,
        c: &mut AnyConnection,
        text: &str,
        region_path: &str,
    ) -> Result<Proposal, Error> {
        let mut scored = self.inner.model.classify(text).into_iter();
        let top = scored.next().ok_or_else(|| Error::Internal("the model has no categories".into()))?;
        let category = self
            .inner
            .categories
            .get(&top.class)
            .cloned()
            .ok_or_else(|| Error::Internal(format!("category {} is not in the table", top.class)))?;
        let (department, route) = self.department_for_in(c, &category, region_path).await?;
        Ok(Proposal {
            category,
            department,
            confidence: top.confidence,
            reasons: top.reasons,
            route,
            alternatives: scored.take(2).map(|s| Alternative { category: s.class, confidence: s.confidence }).collect(),
        })
    }

    /// The proposal for a category the client chose itself: routed, not classified.
    pub(crate) async fn given_in(
        &self,
        c: &mut AnyConnection,
        category: &Category,
        region_path: &str,
    ) -> Result<Proposal, Error> {
        let (department, route) = self.department_for_in(c, category, region_path).await?;
        Ok(Proposal {
            category: category.clone(),
            department,
            confidence: 1.0,
            reasons: Vec::new(),
            route,
            alternatives: Vec::new(),
        })
    }

    /// The department that handles `category` in the region at `region_path`, and why.
    pub(crate) async fn department_for_in(
        &self,
        c: &mut AnyConnection,
        category: &Category,
        region_path: &str,
    ) -> Result<(Option<DepartmentRef>, RouteBasis), Error> {
        let codes: Vec<&str> = region_path.split('/').filter(|s| !s.is_empty()).collect();
        let routes = repo::routes_for(c, &category.code, &codes).await?;
        // The deepest region's route wins.
        if let Some(route) = codes.iter().rev().find_map(|code| routes.iter().find(|r| r.region_code == *code)) {
            let department =
                self.inner.identity.organisation().department_by_code_in(c, &route.department_code).await?;
            let department = department.ok_or_else(|| {
                Error::Internal(format!("route {}/{} names no department", route.region_code, category.code))
            })?;
            return Ok((Some(department), RouteBasis::RoutingTable { region_code: route.region_code.clone() }));
        }
        let kind = category.department_kind.clone();
        match self.inner.identity.organisation().nearest_department_in(c, region_path, &kind).await? {
            Some(d) => Ok((Some(d), RouteBasis::NearestOfKind { kind })),
            None => Ok((None, RouteBasis::Unrouted)),
        }
    }

    /// Sets a region's route for a category (the district's routing table), on the audit
    /// trail.
    pub async fn set_route(
        &self,
        cap: &Capability<OrganisationManage>,
        region_code: &str,
        category: &str,
        department_code: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), Error> {
        let (region_code, department_code) = (region_code.trim(), department_code.trim());
        self.inner.categories.get(category).ok_or_else(|| Error::invalid("category", "not a known category"))?;
        let path = self.inner.identity.organisation().region_path(region_code).await?;
        cap.check_record(&path, 1)?;
        let mut tx = self.inner.db.begin().await?;
        self.inner
            .identity
            .organisation()
            .department_by_code_in(&mut tx, department_code)
            .await?
            .ok_or(Error::NotFound("department"))?;
        repo::set_route(&mut tx, region_code, category, department_code).await?;
        let mut entry = ledger::Entry::new(kernel::audit::Action::VoiceRouteSet, kernel::audit::Outcome::Success, now);
        entry.actor = Some(cap.account_id().to_string());
        entry.object = Some(format!("{region_code}/{category}"));
        entry.jurisdiction = Some(path);
        entry.detail = Some(department_code.to_string());
        ledger::append_in(&mut tx, ledger::Log::Audit, &entry).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The routing tables of the regions within the reader's jurisdiction, by region and
    /// category.
    pub async fn routes(&self, cap: &Capability<OrganisationRead>) -> Result<Vec<Route>, Error> {
        let mut c = self.conn().await?;
        let organisation = self.inner.identity.organisation();
        let mut out = Vec::new();
        for row in repo::all_routes(&mut c).await? {
            let region = organisation.region_in(&mut c, &row.region_code).await?;
            let region =
                region.ok_or_else(|| Error::Internal(format!("route of unknown region {}", row.region_code)))?;
            if cap.check_record(&region.path, 1).is_err() {
                continue;
            }
            let category = self.inner.categories.get(&row.category).cloned();
            let category =
                category.ok_or_else(|| Error::Internal(format!("route of unknown category {}", row.category)))?;
            let department = organisation.department_by_code_in(&mut c, &row.department_code).await?;
            let department = department
                .ok_or_else(|| Error::Internal(format!("route to unknown department {}", row.department_code)))?;
            out.push(Route {
                region_code: region.code,
                region_name: region.name,
                category,
                department_code: department.code,
                department_name: department.name,
            });
        }
        Ok(out)
    }
}
