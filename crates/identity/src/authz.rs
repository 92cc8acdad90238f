//! Authorization: deny by default. A [`Capability`] proves that its holder's roles grant a
//! permission, and carries the jurisdiction and clearance that come with it. Only this
//! module can mint one, so a domain function that takes `&Capability<P>` cannot be reached
//! without the check.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use kernel::authz::{Denial, Grant, Permission, Scope};
use serde::Serialize;

/// One role as held by an account.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct HeldRole {
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    /// true: platform-wide; false: the holder's jurisdiction.
    pub platform_wide: bool,
    pub clearance: u8,
    pub permissions: Vec<String>,
}

/// What a permission allows this account: the widest scope and highest clearance among the
/// roles that grant it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Allowance {
    scope: Scope,
    clearance: u8,
}

/// Computes per-permission allowances from roles. `region_path` is the account's region;
/// jurisdiction-scoped roles of an account without a region grant nothing.
fn allowances(roles: &[HeldRole], region_path: Option<&str>) -> BTreeMap<String, Allowance> {
    let mut map: BTreeMap<String, Allowance> = BTreeMap::new();
    for role in roles {
        let scope = if role.platform_wide {
            Scope::All
        } else {
            match region_path {
                Some(path) => Scope::Subtree(path.to_string()),
                None => continue,
            }
        };
        for permission in &role.permissions {
            let next = Allowance { scope: scope.clone(), clearance: role.clearance };
            let merged = match map.remove(permission) {
                Some(prev) => {
                    Allowance { scope: prev.scope.wider(next.scope), clearance: prev.clearance.max(next.clearance) }
                }
                None => next,
            };
            map.insert(permission.clone(), merged);
        }
    }
    map
}

/// Who is calling, with what roles, from where. Built by the identity service from a
/// session or token; never from client input.
#[derive(Debug, Clone)]
pub struct Principal {
    pub account_id: String,
    pub username: String,
    pub display_name: String,
    pub kind: super::AccountKind,
    pub region: Option<super::RegionRef>,
    pub department: Option<super::DepartmentRef>,
    pub roles: Vec<HeldRole>,
    allowances: BTreeMap<String, Allowance>,
}

impl Principal {
    pub(crate) fn new(
        account_id: String,
        username: String,
        display_name: String,
        kind: super::AccountKind,
        region: Option<super::RegionRef>,
        department: Option<super::DepartmentRef>,
        roles: Vec<HeldRole>,
    ) -> Principal {
        let allowances = allowances(&roles, region.as_ref().map(|r| r.path.as_str()));
        Principal { account_id, username, display_name, kind, region, department, roles, allowances }
    }

    /// The role check. Jurisdiction and classification are checked against each record
    /// through the returned capability.
    pub fn authorize<P: Permission>(&self) -> Result<Capability<P>, Denial> {
        let allowance = self.allowances.get(P::CODE).ok_or(Denial::Forbidden(P::CODE))?;
        Ok(Capability {
            account_id: self.account_id.clone(),
            username: self.username.clone(),
            scope: allowance.scope.clone(),
            clearance: allowance.clearance,
            roles: self.roles.iter().map(|r| r.code.clone()).collect(),
            department_id: self.department.as_ref().map(|d| d.id.clone()),
            _permission: PhantomData,
        })
    }

    /// Whether some role grants permission `P` (to show or hide what needs it).
    pub fn may<P: Permission>(&self) -> bool {
        self.allowances.contains_key(P::CODE)
    }
}

/// Proof that `account_id` may exercise permission `P` within `scope` up to `clearance`.
#[derive(Debug)]
pub struct Capability<P: Permission> {
    account_id: String,
    username: String,
    scope: Scope,
    clearance: u8,
    /// The holder's role codes, for data policies keyed by role (masking).
    roles: Vec<String>,
    /// The holder's department, for work addressed to departments.
    department_id: Option<String>,
    _permission: PhantomData<P>,
}

impl<P: Permission> Capability<P> {
    pub fn account_id(&self) -> &str {
        &self.account_id
    }

    pub fn username(&self) -> &str {
        &self.username
    }

    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    pub fn roles(&self) -> &[String] {
        &self.roles
    }

    pub fn department_id(&self) -> Option<&str> {
        self.department_id.as_deref()
    }

    /// Checks one record: its region (materialized path) and data classification (1–4).
    pub fn check_record(&self, region_path: &str, classification: u8) -> Result<(), Denial> {
        if !self.scope.covers(region_path) {
            return Err(Denial::OutsideJurisdiction);
        }
        if classification > self.clearance {
            return Err(Denial::InsufficientClearance);
        }
        Ok(())
    }

    /// Checks work that belongs to one department (its registries, the requests addressed to
    /// it): the holder's own department; the console, with no department and platform scope,
    /// acts for any.
    pub fn check_department(&self, department_id: &str) -> Result<(), Denial> {
        match (&self.department_id, &self.scope) {
            (Some(d), _) if d == department_id => Ok(()),
            (None, Scope::All) => Ok(()),
            _ => Err(Denial::Forbidden(P::CODE)),
        }
    }

    /// The local operator at the console (`tongban user add`, the demo seeder): whoever can
    /// run the binary against the data directory already holds every key.
    pub(crate) fn console() -> Capability<P> {
        Capability {
            account_id: "console".into(),
            username: "console".into(),
            scope: Scope::All,
            clearance: 4,
            roles: Vec::new(),
            department_id: None,
            _permission: PhantomData,
        }
    }
}

impl<P: Permission> Grant<P> for Capability<P> {
    fn account_id(&self) -> &str {
        &self.account_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AccountKind, RegionRef};
    use kernel::authz::*;

    /// The built-in roles exactly as migration 0002 defines them.
    fn builtin() -> Vec<HeldRole> {
        let sql = include_str!("../../kernel/migrations/common/0002_builtin_roles.sql");
        let mut roles = Vec::new();
        for line in sql.lines().map(str::trim) {
            // ('window_clerk',     '窗口工作人员', 'Window clerk', 'jurisdiction', 3, NULL),
            if line.starts_with("('") && (line.contains("'jurisdiction'") || line.contains("'all'")) {
                let fields: Vec<String> = line
                    .trim_start_matches('(')
                    .trim_end_matches([',', ';', ')'])
                    .split(',')
                    .map(|f| f.trim().trim_matches('\'').to_string())
                    .collect();
                roles.push(HeldRole {
                    code: fields[0].clone(),
                    name_zh: fields[1].clone(),
                    name_en: fields[2].clone(),
                    platform_wide: fields[3] == "all",
                    clearance: fields[4].parse().unwrap(),
                    permissions: Vec::new(),
                });
            }
        }
        // Later migrations that narrow roles to their jurisdiction.
        let narrowed = include_str!("../../kernel/migrations/common/0020_administrators_in_jurisdiction.sql");
        let listed = narrowed.split("IN (").nth(1).unwrap().split(')').next().unwrap();
        for code in listed.split(',').map(|c| c.trim().trim_matches('\'')) {
            roles.iter_mut().find(|r| r.code == code).unwrap().platform_wide = false;
        }
        let grants = sql.split("INSERT INTO role_permissions").nth(1).unwrap();
        for pair in grants.split("('").skip(1) {
            let mut it = pair.split('\'');
            let role = it.next().unwrap();
            let permission = it.nth(1).unwrap();
            roles.iter_mut().find(|r| r.code == role).unwrap().permissions.push(permission.into());
        }
        roles
    }

    fn region(path: &str) -> RegionRef {
        RegionRef { id: path.into(), code: path.into(), name: path.into(), level: "district".into(), path: path.into() }
    }

    fn staff(roles: &[&str], path: &str) -> Principal {
        let all = builtin();
        let held = roles.iter().map(|code| all.iter().find(|r| r.code == *code).unwrap().clone()).collect();
        Principal::new("a".into(), "u".into(), "U".into(), AccountKind::Staff, Some(region(path)), None, held)
    }

    const MINGYUE: &str = "/990000/990100/990102/";
    const MINGYUE_COMMUNITY: &str = "/990000/990100/990102/990102001/990102001001/";
    const QINGHU: &str = "/990000/990100/990103/";

    #[test]
    fn every_checked_permission_exists_in_the_migration() {
        let sql = concat!(
            include_str!("../../kernel/migrations/common/0002_builtin_roles.sql"),
            include_str!("../../kernel/migrations/common/0008_services.sql"),
            include_str!("../../kernel/migrations/common/0012_exchange.sql"),
            include_str!("../../kernel/migrations/common/0017_consent_audit.sql"),
            include_str!("../../kernel/migrations/common/0023_voice.sql"),
            include_str!("../../kernel/migrations/common/0025_tallies.sql"),
            include_str!("../../kernel/migrations/common/0026_assessment.sql"),
            include_str!("../../kernel/migrations/common/0027_openness.sql"),
            include_str!("../../kernel/migrations/common/0028_public_ledgers.sql"),
            include_str!("../../kernel/migrations/common/0029_open_data.sql")
        );
        for code in ALL_PERMISSIONS {
            assert!(sql.contains(&format!("('{code}',")), "{code} missing from migration");
        }
        assert_eq!(builtin().len(), 8);
    }

    /// role × jurisdiction × action.
    #[test]
    fn permission_matrix() {
        let cases: &[(&str, &str, bool, bool, bool, bool)] = &[
            // role, permission, own district, own community record, other district, platform-wide
            ("window_clerk", ResidentRead::CODE, true, true, false, false),
            ("approver", ResidentRead::CODE, true, true, false, false),
            ("community_worker", ResidentRead::CODE, true, true, false, false),
            ("data_officer", ResidentRead::CODE, false, false, false, false),
            ("leader", ResidentRead::CODE, false, false, false, false),
            ("auditor", ResidentRead::CODE, false, false, false, false),
            ("security_admin", ResidentRead::CODE, false, false, false, false),
            ("system_admin", ResidentRead::CODE, false, false, false, false),
            ("window_clerk", SecurityEventRead::CODE, false, false, false, false),
            ("auditor", SecurityEventRead::CODE, true, true, false, false),
            ("security_admin", RoleGrant::CODE, true, true, false, false),
            ("system_admin", RoleGrant::CODE, false, false, false, false),
            ("system_admin", AccountCreate::CODE, true, true, false, false),
            ("auditor", AccountCreate::CODE, false, false, false, false),
            ("leader", OrganisationRead::CODE, true, true, false, false),
        ];
        for (role, permission, own, community, other, wide) in cases {
            let p = staff(&[role], MINGYUE);
            let check = |path: &str| -> bool {
                let Some(a) = p.allowances.get(*permission) else { return false };
                a.scope.covers(path)
            };
            assert_eq!(check(MINGYUE), *own, "{role} {permission} own district");
            assert_eq!(check(MINGYUE_COMMUNITY), *community, "{role} {permission} own community");
            assert_eq!(check(QINGHU), *other, "{role} {permission} other district");
            assert_eq!(p.allowances.get(*permission).map(|a| a.scope == Scope::All).unwrap_or(false), *wide);
        }
    }

    #[test]
    fn capability_checks_jurisdiction_and_clearance() {
        let clerk = staff(&["window_clerk"], MINGYUE);
        let cap = clerk.authorize::<ResidentRead>().unwrap();
        assert_eq!(cap.check_record(MINGYUE_COMMUNITY, 3), Ok(()));
        assert_eq!(cap.check_record(QINGHU, 1), Err(Denial::OutsideJurisdiction));
        assert_eq!(cap.check_record(MINGYUE, 4), Err(Denial::InsufficientClearance));
        assert_eq!(clerk.authorize::<RoleGrant>().unwrap_err(), Denial::Forbidden("role.grant"));
        // A community worker is confined to the community, not the district.
        let worker = staff(&["community_worker"], MINGYUE_COMMUNITY);
        let cap = worker.authorize::<ResidentRead>().unwrap();
        assert_eq!(cap.check_record(MINGYUE, 1), Err(Denial::OutsideJurisdiction));
        assert_eq!(cap.check_record(MINGYUE_COMMUNITY, 2), Ok(()));
        assert_eq!(cap.check_record(MINGYUE_COMMUNITY, 3), Err(Denial::InsufficientClearance));
    }

    #[test]
    fn deny_by_default() {
        let citizen = Principal::new("c".into(), "c".into(), "C".into(), AccountKind::Citizen, None, None, vec![]);
        for code in ALL_PERMISSIONS {
            assert!(!citizen.allowances.contains_key(*code));
        }
        assert!(citizen.authorize::<ResidentRead>().is_err());
        // A jurisdiction-scoped role without a region grants nothing.
        let clerk_role = builtin().into_iter().find(|r| r.code == "window_clerk").unwrap();
        let lost = Principal::new("s".into(), "s".into(), "S".into(), AccountKind::Staff, None, None, vec![clerk_role]);
        assert!(lost.authorize::<ResidentRead>().is_err());
    }

    #[test]
    fn several_roles_combine_to_the_widest_grant() {
        let p = staff(&["community_worker", "window_clerk"], MINGYUE);
        let cap = p.authorize::<ResidentRead>().unwrap();
        assert_eq!(cap.check_record(MINGYUE, 3), Ok(()));
    }
}
