//! The workflow engine: definitions are data (JSON or TOML), versioned; a running case keeps
//! the version it started with. Actions move a case between states when the actor holds an
//! allowed role and the action's guard holds on the form data; parallel states fan out to
//! several departments and join; automatic actions record why they fired; SLAs are counted
//! in working days.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::calendar::WorkingCalendar;

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    pub code: String,
    pub version: u32,
    pub initial: String,
    pub states: Vec<StateDef>,
    #[serde(default)]
    pub actions: Vec<ActionDef>,
    /// The whole case, in working days.
    #[serde(default)]
    pub sla_days: Option<u32>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StateDef {
    pub id: String,
    /// No action leaves a final state.
    #[serde(default)]
    pub terminal: bool,
    /// Time allowed in this state, in working days.
    #[serde(default)]
    pub sla_days: Option<u32>,
    /// The role that supervises this state: overdue tasks escalate to it.
    #[serde(default)]
    pub supervisor: Option<String>,
    /// The lifecycle phase people see while a case is here.
    #[serde(default)]
    pub phase: Phase,
    /// Fan out to several departments (并联审批).
    #[serde(default)]
    pub parallel: Option<Parallel>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Parallel {
    pub branches: Vec<Branch>,
    /// Where the case goes when every branch approves.
    pub on_approved: String,
    /// Where it goes when a branch rejects.
    pub on_rejected: String,
    /// Stop at the first rejection (true), or wait for every branch to decide (false).
    #[serde(default = "yes")]
    pub stop_on_reject: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Branch {
    pub id: String,
    /// The role that decides this branch.
    pub role: String,
    /// The kind of department the branch goes to (its line of work, e.g. `ZJ`); by default the
    /// department handling the case.
    #[serde(default)]
    pub department: Option<String>,
}

/// Where an application stands, as its applicant and the public statistics see it.
/// A workflow state that names no phase is shown as submitted (the definition's default);
/// a stored status that is not a phase is an error (see `stored_phase`), never this default.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    #[default]
    Submitted,
    InReview,
    Supplement,
    Approved,
    Rejected,
    Refused,
    Completed,
    Withdrawn,
}

impl Phase {
    pub const ALL: [Phase; 8] = [
        Phase::Submitted,
        Phase::InReview,
        Phase::Supplement,
        Phase::Approved,
        Phase::Rejected,
        Phase::Refused,
        Phase::Completed,
        Phase::Withdrawn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Submitted => "submitted",
            Phase::InReview => "in_review",
            Phase::Supplement => "supplement",
            Phase::Approved => "approved",
            Phase::Rejected => "rejected",
            Phase::Refused => "refused",
            Phase::Completed => "completed",
            Phase::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(s: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Decided: nothing more happens to the case.
    pub fn is_final(self) -> bool {
        matches!(self, Phase::Rejected | Phase::Refused | Phase::Completed | Phase::Withdrawn)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ActionDef {
    pub id: String,
    pub from: String,
    pub to: String,
    /// Roles that may take it; empty for automatic actions.
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub guard: Option<Guard>,
    /// Taken by the engine on entering `from`, when the guard holds.
    #[serde(default)]
    pub automatic: bool,
}

/// A condition on the form data.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Guard {
    All(Vec<Guard>),
    Any(Vec<Guard>),
    Not(Box<Guard>),
    /// `field op value`, e.g. `{"compare": ["age", ">=", 80]}`.
    Compare(String, String, Value),
    Present(String),
}

impl Guard {
    /// Evaluates against the form, with a readable account of why.
    pub fn eval(&self, form: &Value) -> (bool, String) {
        match self {
            Guard::All(gs) => {
                let parts: Vec<(bool, String)> = gs.iter().map(|g| g.eval(form)).collect();
                let ok = parts.iter().all(|(b, _)| *b);
                (ok, format!("all of [{}]", parts.iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>().join("; ")))
            }
            Guard::Any(gs) => {
                let parts: Vec<(bool, String)> = gs.iter().map(|g| g.eval(form)).collect();
                let ok = parts.iter().any(|(b, _)| *b);
                (ok, format!("any of [{}]", parts.iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>().join("; ")))
            }
            Guard::Not(g) => {
                let (b, s) = g.eval(form);
                (!b, format!("not ({s})"))
            }
            Guard::Present(field) => {
                let ok = form.get(field).is_some_and(|v| !v.is_null() && v != &Value::String(String::new()));
                (ok, format!("{field} {}", if ok { "is given" } else { "is missing" }))
            }
            Guard::Compare(field, op, expected) => {
                let actual = form.get(field).cloned().unwrap_or(Value::Null);
                let ok = compare(&actual, op, expected);
                (ok, format!("{field} = {actual} {op} {expected}: {}", if ok { "yes" } else { "no" }))
            }
        }
    }
}

fn compare(actual: &Value, op: &str, expected: &Value) -> bool {
    match (actual.as_f64(), expected.as_f64()) {
        (Some(a), Some(b)) => match op {
            "==" => a == b,
            "!=" => a != b,
            ">" => a > b,
            ">=" => a >= b,
            "<" => a < b,
            "<=" => a <= b,
            _ => false,
        },
        _ => match op {
            "==" => actual == expected,
            "!=" => actual != expected,
            _ => false,
        },
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DefinitionError {
    #[error("the definition does not parse: {0}")]
    Parse(String),
    #[error("{0}")]
    Invalid(String),
}

impl Definition {
    pub fn from_json(text: &str) -> Result<Definition, DefinitionError> {
        let d: Definition = serde_json::from_str(text).map_err(|e| DefinitionError::Parse(e.to_string()))?;
        d.validate()?;
        Ok(d)
    }

    pub fn from_toml(text: &str) -> Result<Definition, DefinitionError> {
        let d: Definition = toml::from_str(text).map_err(|e| DefinitionError::Parse(e.to_string()))?;
        d.validate()?;
        Ok(d)
    }

    pub fn state(&self, id: &str) -> Option<&StateDef> {
        self.states.iter().find(|s| s.id == id)
    }

    /// Every name refers to something defined; terminal states have no way out; operators
    /// are known.
    pub fn validate(&self) -> Result<(), DefinitionError> {
        let bad = |m: String| Err(DefinitionError::Invalid(m));
        let ids: BTreeSet<&str> = self.states.iter().map(|s| s.id.as_str()).collect();
        if ids.len() != self.states.len() {
            return bad("state ids repeat".into());
        }
        if !ids.contains(self.initial.as_str()) {
            return bad(format!("initial state {} is not defined", self.initial));
        }
        let mut action_ids = BTreeSet::new();
        for a in &self.actions {
            if !action_ids.insert((a.from.as_str(), a.id.as_str())) {
                return bad(format!("action {} leaves {} twice", a.id, a.from));
            }
            for s in [&a.from, &a.to] {
                if !ids.contains(s.as_str()) {
                    return bad(format!("action {} names unknown state {s}", a.id));
                }
            }
            if self.state(&a.from).is_some_and(|s| s.terminal || s.parallel.is_some()) {
                return bad(format!("action {} leaves {}, which is terminal or parallel", a.id, a.from));
            }
            if a.automatic != a.roles.is_empty() {
                return bad(format!("action {}: automatic actions have no roles, manual ones need some", a.id));
            }
            if let Some(g) = &a.guard {
                check_guard(g).map_err(DefinitionError::Invalid)?;
            }
        }
        for s in &self.states {
            if let Some(p) = &s.parallel {
                if p.branches.is_empty() {
                    return bad(format!("parallel state {} has no branches", s.id));
                }
                for t in [&p.on_approved, &p.on_rejected] {
                    if !ids.contains(t.as_str()) {
                        return bad(format!("parallel state {} joins into unknown state {t}", s.id));
                    }
                }
            }
        }
        Ok(())
    }
}

fn check_guard(g: &Guard) -> Result<(), String> {
    match g {
        Guard::All(gs) | Guard::Any(gs) => gs.iter().try_for_each(check_guard),
        Guard::Not(g) => check_guard(g),
        Guard::Present(_) => Ok(()),
        Guard::Compare(_, op, _) => {
            if ["==", "!=", ">", ">=", "<", "<="].contains(&op.as_str()) {
                Ok(())
            } else {
                Err(format!("unknown operator {op}"))
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = BranchDecision)]
pub enum Decision {
    Pending,
    Approved,
    Rejected,
}

/// One row of a case's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub action: String,
    pub from: String,
    pub to: String,
    pub actor: String,
    pub comment: Option<String>,
    pub at: DateTime<Utc>,
    /// Why an automatic action fired (or a join resolved).
    pub explanation: Option<String>,
}

/// A running case: its state, branch decisions and deadlines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    pub definition: String,
    pub version: u32,
    pub state: String,
    pub branches: BTreeMap<String, Decision>,
    pub state_due: Option<DateTime<Utc>>,
    pub case_due: Option<DateTime<Utc>>,
    pub history: Vec<Transition>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WorkflowError {
    #[error("the case is closed")]
    Closed,
    #[error("no action {action} from state {state}")]
    NoSuchAction { action: String, state: String },
    #[error("the caller's roles may not take {0}")]
    RoleNotAllowed(String),
    #[error("the condition of {action} does not hold: {why}")]
    GuardFailed { action: String, why: String },
    #[error("no branch {0} here, or it has decided")]
    NoSuchBranch(String),
}

/// What every step sees: the form data, the time, and the working-day calendar.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub form: &'a Value,
    pub now: DateTime<Utc>,
    pub calendar: &'a WorkingCalendar,
}

/// Who acts: a name for the history, and roles.
pub struct Actor<'a> {
    pub name: &'a str,
    pub roles: &'a [String],
}

impl Case {
    /// Starts a case at the definition's initial state (automatic actions run at once).
    pub fn start(def: &Definition, form: &Value, now: DateTime<Utc>, calendar: &WorkingCalendar) -> Case {
        let mut case = Case {
            definition: def.code.clone(),
            version: def.version,
            state: def.initial.clone(),
            branches: BTreeMap::new(),
            state_due: None,
            case_due: def.sla_days.map(|d| calendar.deadline(now, d)),
            history: Vec::new(),
        };
        case.enter(def, &def.initial.clone(), form, now, calendar);
        case
    }

    pub fn is_closed(&self, def: &Definition) -> bool {
        def.state(&self.state).is_some_and(|s| s.terminal)
    }

    /// Enters `state`: deadlines, branches, then any automatic action whose guard holds.
    fn enter(&mut self, def: &Definition, state: &str, form: &Value, now: DateTime<Utc>, calendar: &WorkingCalendar) {
        let mut state = state.to_string();
        // Automatic actions can chain; a definition cannot make them loop past its size.
        for _ in 0..=def.states.len() {
            self.state = state.clone();
            let s = def.state(&state);
            self.state_due = s.and_then(|s| s.sla_days).map(|d| calendar.deadline(now, d));
            self.branches = s
                .and_then(|s| s.parallel.as_ref())
                .map(|p| p.branches.iter().map(|b| (b.id.clone(), Decision::Pending)).collect())
                .unwrap_or_default();
            let auto = def.actions.iter().filter(|a| a.automatic && a.from == state).find_map(|a| {
                // An unguarded step needs no reason beyond itself.
                let (ok, why) = match a.guard.as_ref().map(|g| g.eval(form)) {
                    Some((ok, why)) => (ok, Some(why)),
                    None => (true, None),
                };
                ok.then(|| (a.clone(), why))
            });
            let Some((a, why)) = auto else { return };
            self.history.push(Transition {
                action: a.id.clone(),
                from: state.clone(),
                to: a.to.clone(),
                actor: "system".into(),
                comment: None,
                at: now,
                explanation: why,
            });
            state = a.to.clone();
        }
    }

    /// Takes a manual action.
    pub fn act(
        &mut self,
        def: &Definition,
        action: &str,
        actor: &Actor<'_>,
        comment: Option<&str>,
        ctx: Context<'_>,
    ) -> Result<(), WorkflowError> {
        let Context { form, now, calendar } = ctx;
        if self.is_closed(def) {
            return Err(WorkflowError::Closed);
        }
        let a = def
            .actions
            .iter()
            .find(|a| a.id == action && a.from == self.state && !a.automatic)
            .ok_or_else(|| WorkflowError::NoSuchAction { action: action.into(), state: self.state.clone() })?;
        if !a.roles.iter().any(|r| actor.roles.contains(r)) {
            return Err(WorkflowError::RoleNotAllowed(action.into()));
        }
        let explanation = match &a.guard {
            Some(g) => {
                let (ok, why) = g.eval(form);
                if !ok {
                    return Err(WorkflowError::GuardFailed { action: action.into(), why });
                }
                Some(why)
            }
            None => None,
        };
        self.history.push(Transition {
            action: action.into(),
            from: self.state.clone(),
            to: a.to.clone(),
            actor: actor.name.into(),
            comment: comment.map(Into::into),
            at: now,
            explanation,
        });
        let to = a.to.clone();
        self.enter(def, &to, form, now, calendar);
        Ok(())
    }

    /// One department's decision in a parallel state; the join moves the case on.
    pub fn decide(
        &mut self,
        def: &Definition,
        branch: &str,
        approve: bool,
        actor: &Actor<'_>,
        comment: Option<&str>,
        ctx: Context<'_>,
    ) -> Result<(), WorkflowError> {
        let Context { form, now, calendar } = ctx;
        if self.is_closed(def) {
            return Err(WorkflowError::Closed);
        }
        let parallel = def
            .state(&self.state)
            .and_then(|s| s.parallel.clone())
            .ok_or_else(|| WorkflowError::NoSuchBranch(branch.into()))?;
        let b = parallel
            .branches
            .iter()
            .find(|b| b.id == branch)
            .ok_or_else(|| WorkflowError::NoSuchBranch(branch.into()))?;
        if self.branches.get(branch) != Some(&Decision::Pending) {
            return Err(WorkflowError::NoSuchBranch(branch.into()));
        }
        if !actor.roles.contains(&b.role) {
            return Err(WorkflowError::RoleNotAllowed(format!("branch {branch}")));
        }
        let decision = if approve { Decision::Approved } else { Decision::Rejected };
        self.branches.insert(branch.into(), decision);
        let action = format!("{branch}:{}", if approve { "approve" } else { "reject" });
        self.history.push(Transition {
            action,
            from: self.state.clone(),
            to: self.state.clone(),
            actor: actor.name.into(),
            comment: comment.map(Into::into),
            at: now,
            explanation: None,
        });
        let rejected = self.branches.values().any(|d| *d == Decision::Rejected);
        let pending = self.branches.values().any(|d| *d == Decision::Pending);
        let joined = if rejected && (parallel.stop_on_reject || !pending) {
            Some((&parallel.on_rejected, "a branch rejected"))
        } else if !pending && !rejected {
            Some((&parallel.on_approved, "every branch approved"))
        } else {
            None
        };
        if let Some((to, why)) = joined {
            self.history.push(Transition {
                action: "join".into(),
                from: self.state.clone(),
                to: to.clone(),
                actor: "system".into(),
                comment: None,
                at: now,
                explanation: Some(why.into()),
            });
            let to = to.clone();
            self.enter(def, &to, form, now, calendar);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;
    use serde_json::json;

    /// 开办餐饮店-like: intake, then market supervision and health in parallel, then done;
    /// applicants 80 and over skip intake review (an automatic action).
    fn definition() -> Definition {
        Definition::from_json(
            &json!({
                "code": "restaurant", "version": 2, "initial": "submitted", "sla_days": 20,
                "states": [
                    {"id": "submitted", "sla_days": 1, "supervisor": "leader"},
                    {"id": "review", "parallel": {
                        "branches": [{"id": "market", "role": "approver"}, {"id": "health", "role": "health_officer"}],
                        "on_approved": "approved", "on_rejected": "rejected"}, "sla_days": 10},
                    {"id": "supplement"},
                    {"id": "approved", "terminal": true},
                    {"id": "rejected", "terminal": true},
                    {"id": "withdrawn", "terminal": true}
                ],
                "actions": [
                    {"id": "fast_track", "from": "submitted", "to": "review", "automatic": true,
                     "guard": {"compare": ["age", ">=", 80]}},
                    {"id": "accept", "from": "submitted", "to": "review", "roles": ["window_clerk"],
                     "guard": {"present": "licence_area"}},
                    {"id": "ask_supplement", "from": "submitted", "to": "supplement", "roles": ["window_clerk"]},
                    {"id": "resubmit", "from": "supplement", "to": "submitted", "roles": ["applicant"]},
                    {"id": "withdraw", "from": "submitted", "to": "withdrawn", "roles": ["applicant"]}
                ]
            })
            .to_string(),
        )
        .unwrap()
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 18, 2, 0, 0).unwrap()
    }

    fn roles(r: &[&str]) -> Vec<String> {
        r.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn definitions_are_checked() {
        let mut d = definition();
        d.actions[1].to = "nowhere".into();
        assert!(d.validate().is_err());
        let mut d = definition();
        d.actions.push(ActionDef {
            id: "reopen".into(),
            from: "approved".into(),
            to: "submitted".into(),
            roles: roles(&["x"]),
            guard: None,
            automatic: false,
        });
        assert!(d.validate().is_err());
        assert!(Definition::from_json("{\"code\": 1}").is_err());
        let toml = "code = \"t\"\nversion = 1\ninitial = \"a\"\n[[states]]\nid = \"a\"\n[[states]]\nid = \"b\"\nterminal = true\n\
                    [[actions]]\nid = \"go\"\nfrom = \"a\"\nto = \"b\"\nroles = [\"approver\"]\n";
        assert_eq!(Definition::from_toml(toml).unwrap().states.len(), 2);
    }

    #[test]
    fn roles_guards_and_the_parallel_join() {
        let d = definition();
        let cal = WorkingCalendar::default();
        let form = json!({"age": 40});
        let mut c = Case::start(&d, &form, now(), &cal);
        assert_eq!(c.state, "submitted");
        let clerk = roles(&["window_clerk"]);
        let applicant = roles(&["applicant"]);
        let act = |c: &mut Case, a: &str, r: &[String], f: &Value| {
            c.act(&d, a, &Actor { name: "x", roles: r }, None, Context { form: f, now: now(), calendar: &cal })
        };
        assert_eq!(act(&mut c, "accept", &applicant, &form), Err(WorkflowError::RoleNotAllowed("accept".into())));
        assert!(matches!(act(&mut c, "accept", &clerk, &form), Err(WorkflowError::GuardFailed { .. })));
        let form = json!({"age": 40, "licence_area": 120});
        act(&mut c, "accept", &clerk, &form).unwrap();
        assert_eq!(c.state, "review");
        assert_eq!(c.branches.len(), 2);
        let approver = roles(&["approver"]);
        let health = roles(&["health_officer"]);
        let decide = |c: &mut Case, b: &str, ok: bool, r: &[String]| {
            c.decide(
                &d,
                b,
                ok,
                &Actor { name: "y", roles: r },
                None,
                Context { form: &form, now: now(), calendar: &cal },
            )
        };
        assert_eq!(
            decide(&mut c, "health", true, &approver),
            Err(WorkflowError::RoleNotAllowed("branch health".into()))
        );
        decide(&mut c, "market", true, &approver).unwrap();
        assert_eq!(c.state, "review");
        assert!(decide(&mut c, "market", true, &approver).is_err(), "a branch decides once");
        decide(&mut c, "health", true, &health).unwrap();
        assert_eq!(c.state, "approved");
        assert_eq!(c.history.last().unwrap().explanation.as_deref(), Some("every branch approved"));
        assert_eq!(act(&mut c, "withdraw", &applicant, &form), Err(WorkflowError::Closed));
    }

    #[test]
    fn automatic_actions_record_why() {
        let d = definition();
        let c = Case::start(&d, &json!({"age": 82}), now(), &WorkingCalendar::default());
        assert_eq!(c.state, "review");
        let t = &c.history[0];
        assert_eq!((t.action.as_str(), t.actor.as_str()), ("fast_track", "system"));
        assert!(t.explanation.as_deref().unwrap().contains("age = 82 >= 80: yes"));
    }

    #[test]
    fn deadlines_use_the_calendar() {
        let d = definition();
        let cal = WorkingCalendar::from_toml("holidays = [\"2026-11-19\"]\n").unwrap();
        let c = Case::start(&d, &json!({}), now(), &cal);
        // Wednesday 18 Nov + 1 working day skips the holiday on the 19th: Friday 20th.
        assert_eq!(c.state_due, Some(Utc.with_ymd_and_hms(2026, 11, 20, 15, 59, 59).unwrap()));
        assert!(c.case_due.unwrap() > c.state_due.unwrap());
    }

    proptest! {
        /// Whatever is attempted, by whomever: the case only ever rests in defined states,
        /// every recorded move is a defined action, a branch decision or the join, and a
        /// closed case stays closed.
        #[test]
        fn no_transition_outside_the_definition(
            steps in proptest::collection::vec((0usize..8, 0usize..4, any::<bool>()), 0..40),
            age in 0i64..100,
        ) {
            let d = definition();
            let cal = WorkingCalendar::default();
            let form = json!({"age": age, "licence_area": 10});
            let mut c = Case::start(&d, &form, now(), &cal);
            let names = ["accept", "ask_supplement", "resubmit", "withdraw", "fast_track", "market", "health", "bogus"];
            let who = [roles(&["window_clerk"]), roles(&["applicant"]), roles(&["approver"]), roles(&["health_officer"])];
            let mut closed_at = None;
            for (i, (name, role, flag)) in steps.into_iter().enumerate() {
                let actor = Actor { name: "p", roles: &who[role] };
                let before = c.clone();
                let r = if name == 5 || name == 6 {
                    c.decide(&d, names[name], flag, &actor, None, Context { form: &form, now: now(), calendar: &cal })
                } else {
                    c.act(&d, names[name], &actor, None, Context { form: &form, now: now(), calendar: &cal })
                };
                if r.is_err() {
                    prop_assert_eq!(&c, &before, "a refused step changes nothing");
                }
                if closed_at.is_some() {
                    prop_assert!(r.is_err());
                }
                if c.is_closed(&d) && closed_at.is_none() {
                    closed_at = Some(i);
                }
            }
            for t in &c.history {
                prop_assert!(d.state(&t.from).is_some() && d.state(&t.to).is_some());
                let defined = d.actions.iter().any(|a| a.id == t.action && a.from == t.from && a.to == t.to);
                let branch = t.action.ends_with(":approve") || t.action.ends_with(":reject");
                prop_assert!(defined || branch || t.action == "join", "undefined move {:?}", t);
            }
            // A join to approval only when every branch approved.
            if c.state == "approved" {
                prop_assert!(c.history.iter().any(|t| t.action == "market:approve"));
                prop_assert!(c.history.iter().any(|t| t.action == "health:approve"));
            }
        }
    }
}
