//! The vocabulary of authorization that every layer shares: permissions as types, how far a
//! grant reaches, and why a check failed. Capabilities themselves are minted by identity
//! only (`identity::Capability`); crates below identity see them through [`Grant`].

use serde::Serialize;

/// A permission, as a type, so that a service function names the one it needs.
pub trait Permission {
    const CODE: &'static str;
}

macro_rules! permissions {
    ($($(#[$doc:meta])* $name:ident => $code:literal,)*) => {
        $( $(#[$doc])* #[derive(Debug)] pub struct $name;
           impl Permission for $name { const CODE: &'static str = $code; } )*
        /// Every permission code the code base checks.
        pub const ALL_PERMISSIONS: &[&str] = &[$($code),*];
    };
}

permissions! {
    /// Look up a resident's record within jurisdiction.
    ResidentRead => "resident.read",
    /// Look up an enterprise's record within jurisdiction.
    EnterpriseRead => "enterprise.read",
    /// Read regions, departments and the staff directory.
    OrganisationRead => "organisation.read",
    /// Create regions and departments.
    OrganisationManage => "organisation.manage",
    /// Create staff and system accounts.
    AccountCreate => "account.create",
    /// Grant and revoke roles.
    RoleGrant => "role.grant",
    /// Read the security event trail.
    SecurityEventRead => "security_event.read",
    /// See and acknowledge security alerts.
    SecurityAlertHandle => "security_alert.handle",
    /// Work on applications in the inbox within jurisdiction.
    ApplicationHandle => "application.handle",
    /// Submit an application for a citizen at the window (帮办代办).
    ApplicationAssist => "application.assist",
    /// Publish services, forms and workflow definitions.
    ServiceManage => "service.manage",
    /// Revoke an e-certificate issued by the own department.
    CertificateRevoke => "certificate.revoke",
    /// Publish the own department's registries and write or import their records.
    RegistryManage => "registry.manage",
    /// Request access to another department's registry for the own department.
    SharingRequest => "sharing.request",
    /// Decide and revoke requests for the own department's registries.
    SharingDecide => "sharing.decide",
    /// See data quality and the departments' sharing figures.
    ExchangeFigures => "exchange.figures",
    /// Manage consent policies and data agreements (GovStack Consent, organisation admin).
    ConsentManage => "consent.manage",
    /// Read every consent record and data agreement (GovStack Consent, Data Processing Auditor).
    ConsentAudit => "consent.audit",
    /// Record a 12345 call for the caller (话务员).
    VoiceRecord => "voice.record",
    /// Dispatch 12345 requests to departments within jurisdiction (派单).
    VoiceDispatch => "voice.dispatch",
    /// Sign for, handle and answer the own department's 12345 requests.
    VoiceHandle => "voice.handle",
    /// See the service KPIs and dashboards within jurisdiction.
    InsightRead => "insight.read",
    /// Set the indicator system departments are assessed by (考核办).
    AssessmentManage => "assessment.manage",
    /// Publish, revise and repeal the own department's government information (主动公开).
    DisclosurePublish => "disclosure.publish",
    /// Answer requests for the own department's government information (依申请公开).
    DisclosureAnswer => "disclosure.answer",
    /// Publish the own community's monthly income and spending (社区财务公开).
    CommunityFinancePublish => "ledger.community_finance",
    /// Publish public-resource transactions of the own department (公共资源交易).
    TransactionPublish => "ledger.transactions",
    /// Open the own department's datasets, decide applications for them and answer 数据需求.
    OpenDataPublish => "opendata.publish",
}

/// How far a grant reaches.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Scope {
    /// The holder's own region and everything below it (a materialized path prefix).
    Subtree(String),
    /// The whole platform.
    All,
}

/// The bounds of a materialized-path subtree as a range (`path <= x < upper`), which both
/// databases answer from an index; `LIKE 'prefix%'` with a parameter cannot.
pub fn subtree_bounds(path: &str) -> (String, String) {
    // Paths end with '/', and '0' is the character after '/'.
    let upper = match path.strip_suffix('/') {
        Some(stem) => format!("{stem}0"),
        None => format!("{path}\u{10ffff}"),
    };
    (path.to_string(), upper)
}

impl Scope {
    pub fn covers(&self, region_path: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Subtree(prefix) => region_path.starts_with(prefix.as_str()),
        }
    }

    /// Whether what belongs to no region (an event by an unknown name, an alert about an
    /// address) falls to this scope: the platform's, or a subtree at the top of the region
    /// tree (the province).
    pub fn covers_unplaced(&self) -> bool {
        match self {
            Scope::All => true,
            Scope::Subtree(prefix) => prefix.trim_matches('/').split('/').count() == 1,
        }
    }

    pub fn wider(self, other: Scope) -> Scope {
        match (self, other) {
            (Scope::All, _) | (_, Scope::All) => Scope::All,
            // Two subtrees of one account come from the same region; keep the shorter prefix.
            (Scope::Subtree(a), Scope::Subtree(b)) => Scope::Subtree(if a.len() <= b.len() { a } else { b }),
        }
    }
}

/// Why an authorization check failed. Both are recorded as security events by the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    #[error("no role grants `{0}`")]
    Forbidden(&'static str),
    #[error("the record lies outside the caller's jurisdiction")]
    OutsideJurisdiction,
    #[error("the record's classification exceeds the caller's clearance")]
    InsufficientClearance,
    #[error("nobody changes the roles of their own account")]
    OwnAccount,
    #[error("the caller's roles may not see this value unmasked")]
    MaskedForRole,
}

/// A capability as the crates below identity see it. `identity::Capability<P>` is its one
/// implementation: holding a `&impl Grant<P>` means identity checked permission `P`.
pub trait Grant<P: Permission> {
    fn account_id(&self) -> &str;
}

#[cfg(test)]
mod tests {
    use super::Scope;

    #[test]
    fn only_the_top_of_the_tree_takes_what_has_no_region() {
        assert!(Scope::All.covers_unplaced());
        assert!(Scope::Subtree("/990000/".into()).covers_unplaced());
        assert!(!Scope::Subtree("/990000/990100/990102/".into()).covers_unplaced());
    }

    #[test]
    fn subtree_bounds_cover_exactly_the_subtree() {
        let (low, high) = super::subtree_bounds("/990000/990100/990102/");
        for inside in ["/990000/990100/990102/", "/990000/990100/990102/990102001/"] {
            assert!(low.as_str() <= inside && inside < high.as_str(), "{inside}");
        }
        for outside in ["/990000/990100/990103/", "/990000/990100/9901020/", "/990000/990100/"] {
            assert!(!(low.as_str() <= outside && outside < high.as_str()), "{outside}");
        }
    }
}
