//! Security monitoring: rules over the `audit` ledger raise alerts. An alert is raised once
//! per rule and key (subject and time bucket), written to the audit ledger itself, and sent
//! through the outbox.

use std::collections::{BTreeMap, HashSet};

use crate::repo;
use chrono::{DateTime, Datelike, Duration, FixedOffset, Timelike, Utc};
use serde::{Deserialize, Serialize};

use identity::{Capability, Identity, Scope};
use kernel::audit::{Action, Outcome};
use kernel::authz::SecurityAlertHandle;
use kernel::db::{Db, from_millis, millis, new_id};
use ledger::{self, Entry, Log};

/// Thresholds, from the `[monitoring]` table of the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// Failed sign-ins for one account within `window_minutes`.
    pub failed_sign_ins: usize,
    /// Failed sign-ins from one source address within `window_minutes`.
    pub failed_sign_ins_per_source: usize,
    /// Wrong second-factor codes for one account within `window_minutes`.
    pub mfa_failures: usize,
    /// Refused attempts on records outside the caller's jurisdiction within `window_minutes`.
    pub outside_jurisdiction: usize,
    pub window_minutes: i64,
    /// More distinct people's records than this read by one account within
    /// `bulk_window_minutes` is bulk harvesting.
    pub bulk_reads: usize,
    pub bulk_window_minutes: i64,
    /// Working hours (China Standard Time, Monday to Friday), as hours [start, end).
    pub working_hours: (u32, u32),
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            failed_sign_ins: 5,
            failed_sign_ins_per_source: 20,
            mfa_failures: 3,
            outside_jurisdiction: 3,
            window_minutes: 15,
            bulk_reads: 50,
            bulk_window_minutes: 60,
            working_hours: (8, 18),
        }
    }
}

/// Actions that change who may do what, or how data is protected.
const PRIVILEGED: &[Action] = &[
    Action::RoleGranted,
    Action::RoleRevoked,
    Action::AccountCreated,
    Action::RegionCreated,
    Action::DepartmentCreated,
    Action::DataKeyCreated,
    Action::DataKeyRetired,
];

/// Reads of personal data, for the bulk-harvesting rule.
const PERSONAL_READS: &[Action] = &[
    Action::ResidentRead,
    Action::ResidentListed,
    Action::ResidentUnmasked,
    Action::EnterpriseRead,
    Action::CorrectionRead,
];

/// The rules of the security monitor; an alert names the one that raised it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
    utoipa::ToSchema,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum AlertRule {
    /// Failed sign-ins of one account within the window.
    FailedSignIns,
    /// Failed sign-ins from one source address within the window.
    FailedSignInsPerSource,
    /// Wrong second-factor codes of one account.
    MfaFailures,
    /// Requests refused as outside the caller's jurisdiction.
    OutsideJurisdiction,
    /// Many reads of personal data by one account.
    BulkReads,
    /// Privileged changes outside working hours.
    PrivilegedAfterHours,
    /// `tongban ledger verify` found a log changed.
    LedgerVerification,
}

/// How urgent an alert is.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
    utoipa::ToSchema,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Warning,
    Critical,
}

impl AlertRule {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl TryFrom<String> for AlertRule {
    type Error = strum::ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl TryFrom<String> for Severity {
    type Error = strum::ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    pub rule: AlertRule,
    /// The account (username) whose behaviour raised it, if any: its region decides which
    /// district's administrators see the alert.
    pub account: Option<String>,
    pub key: String,
    pub severity: Severity,
    pub summary: String,
    pub first_index: u64,
}

fn at(e: &Entry) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(&e.at).ok().map(|t| t.with_timezone(&Utc))
}

fn bucket(t: DateTime<Utc>, minutes: i64) -> i64 {
    t.timestamp() / (minutes.max(1) * 60)
}

/// Alerts when `threshold` entries of one group fall within any span of `window_minutes`
/// (a sliding window: a burst across a clock boundary counts). The key is the group and the
/// bucket in which the burst began, so one burst raises one alert.
fn threshold_rule(
    entries: &[(u64, Entry)],
    t: &Thresholds,
    rule: AlertRule,
    per_account: bool,
    threshold: usize,
    select: impl Fn(&Entry) -> Option<String>,
    summary: impl Fn(&str, usize) -> String,
) -> Vec<Candidate> {
    let mut groups: BTreeMap<String, Vec<(DateTime<Utc>, u64)>> = BTreeMap::new();
    for (idx, e) in entries {
        if let (Some(group), Some(time)) = (select(e), at(e)) {
            groups.entry(group).or_default().push((time, *idx));
        }
    }
    let n = threshold.max(1);
    let window = Duration::minutes(t.window_minutes.max(1));
    let mut out = Vec::new();
    for (group, mut events) in groups {
        events.sort();
        let burst = events.windows(n).find(|w| match (w.first(), w.last()) {
            (Some(first), Some(last)) => last.0 - first.0 <= window,
            _ => false,
        });
        if let Some((start, first_index)) = burst.and_then(|w| w.first()).copied() {
            let count = events.iter().filter(|(time, _)| *time >= start && *time - start <= window).count();
            out.push(Candidate {
                rule,
                account: per_account.then(|| group.clone()),
                key: format!("{group}@{}", bucket(start, t.window_minutes)),
                severity: Severity::Warning,
                summary: summary(&group, count),
                first_index,
            });
        }
    }
    out
}

/// Applies every rule to a window of audit entries (oldest first). Pure: the same entries
/// give the same candidates, so re-evaluating a window raises nothing twice.
pub fn evaluate(entries: &[(u64, Entry)], t: &Thresholds) -> Vec<Candidate> {
    let failed = |e: &Entry| e.is(Action::SignIn) && e.result == Outcome::Failure.as_str();
    let mut out = Vec::new();
    out.extend(threshold_rule(
        entries,
        t,
        AlertRule::FailedSignIns,
        true,
        t.failed_sign_ins,
        |e| failed(e).then(|| e.actor_name.clone()).flatten(),
        |u, n| format!("{n} failed sign-ins for {u}"),
    ));
    out.extend(threshold_rule(
        entries,
        t,
        AlertRule::FailedSignInsPerSource,
        false,
        t.failed_sign_ins_per_source,
        |e| failed(e).then(|| e.source.clone()).flatten(),
        |s, n| format!("{n} failed sign-ins from {s}"),
    ));
    out.extend(threshold_rule(
        entries,
        t,
        AlertRule::MfaFailures,
        true,
        t.mfa_failures,
        |e| (failed(e) && e.detail.as_deref() == Some("bad_code")).then(|| e.actor_name.clone()).flatten(),
        |u, n| format!("{n} wrong second-factor codes for {u}"),
    ));
    out.extend(threshold_rule(
        entries,
        t,
        AlertRule::OutsideJurisdiction,
        true,
        t.outside_jurisdiction,
        |e| {
            let outside = e.is(Action::Access)
                && e.detail.as_deref().is_some_and(|d| d.contains("outside the caller's jurisdiction"));
            outside.then(|| e.actor_name.clone().or(e.actor.clone())).flatten()
        },
        |u, n| format!("{n} attempts by {u} on records outside their jurisdiction"),
    ));
    // Bulk harvesting: distinct people per actor.
    let mut people: BTreeMap<(String, i64), (HashSet<String>, u64)> = BTreeMap::new();
    for (idx, e) in entries {
        if let (true, Some(actor), Some(subject), Some(time)) =
            (PERSONAL_READS.iter().any(|a| e.is(*a)), &e.actor_name, &e.subject, at(e))
        {
            let slot = people
                .entry((actor.clone(), bucket(time, t.bulk_window_minutes)))
                .or_insert_with(|| (HashSet::new(), *idx));
            slot.0.insert(subject.clone());
        }
    }
    for ((actor, b), (subjects, first)) in people {
        if subjects.len() > t.bulk_reads {
            out.push(Candidate {
                rule: AlertRule::BulkReads,
                account: Some(actor.clone()),
                key: format!("{actor}@{b}"),
                severity: Severity::Critical,
                summary: format!(
                    "{actor} read {} people's records within {} minutes",
                    subjects.len(),
                    t.bulk_window_minutes
                ),
                first_index: first,
            });
        }
    }
    // Privileged actions outside working hours (China Standard Time), per actor and hour.
    let Some(cst) = FixedOffset::east_opt(8 * 3600) else { return out };
    let mut after_hours: BTreeMap<(String, i64), (usize, u64)> = BTreeMap::new();
    for (idx, e) in entries {
        let Some(time) = at(e) else { continue };
        if !PRIVILEGED.iter().any(|a| e.is(*a)) {
            continue;
        }
        let local = time.with_timezone(&cst);
        let weekday = local.weekday().num_days_from_monday() < 5;
        let (start, end) = t.working_hours;
        if weekday && (start..end).contains(&local.hour()) {
            continue;
        }
        let actor = e.actor_name.clone().or(e.actor.clone()).unwrap_or_else(|| "unknown".into());
        let slot = after_hours.entry((actor, bucket(time, 60))).or_insert((0, *idx));
        slot.0 += 1;
    }
    for ((actor, b), (n, first)) in after_hours {
        out.push(Candidate {
            rule: AlertRule::PrivilegedAfterHours,
            account: Some(actor.clone()),
            key: format!("{actor}@{b}"),
            severity: Severity::Warning,
            summary: format!("{n} privileged action(s) by {actor} outside working hours"),
            first_index: first,
        });
    }
    out
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Alert {
    pub id: String,
    pub rule: AlertRule,
    pub severity: Severity,
    pub summary: String,
    /// The audit entry that started it.
    pub first_index: Option<u64>,
    pub raised_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("storage: {0}")]
    Storage(#[from] sqlx::Error),
    #[error("ledger: {0}")]
    Ledger(String),
    #[error("no such alert")]
    NotFound,
    #[error(transparent)]
    Identity(#[from] identity::Error),
}

/// The alerts a holder of this capability sees: those about accounts in her jurisdiction;
/// at the top of the region tree (the province), also those about no region's account (an
/// address, an unknown name, the ledger itself).
fn within<P: kernel::authz::Permission>(cap: &Capability<P>) -> repo::Within<'_> {
    match cap.scope() {
        Scope::All => repo::Within::Everywhere,
        Scope::Subtree(path) => repo::Within::Subtree { path, unplaced: cap.scope().covers_unplaced() },
    }
}

/// Raises an alert unless one with the same rule and key exists; returns whether it did.
/// The alert, its audit entry and its outbox message commit together.
/// `region_path` is the region of the account it is about (see [`Candidate::account`]).
pub async fn raise(db: &Db, c: &Candidate, region_path: Option<&str>, now: DateTime<Utc>) -> Result<bool, Error> {
    let mut tx = db.begin().await?;
    let id = new_id();
    let inserted = repo::insert_alert(&mut tx, &id, c, region_path, millis(now)).await?;
    if !inserted {
        return Ok(false);
    }
    let mut entry = Entry::new(Action::AlertRaised, Outcome::Success, now);
    entry.object = Some(format!("alert:{id}"));
    entry.detail = Some(format!("{}: {}", c.rule.as_str(), c.summary));
    ledger::append_in(&mut tx, Log::Audit, &entry).await?;
    let payload = serde_json::json!({"id": id, "rule": c.rule, "severity": c.severity, "summary": c.summary, "first_index": c.first_index});
    kernel::outbox::enqueue(&mut tx, kernel::outbox::Topic::Alert, &payload, now).await?;
    tx.commit().await?;
    tracing::warn!(rule = c.rule.as_str(), summary = c.summary, "security alert");
    Ok(true)
}

/// One pass of the monitor over the recent audit trail; returns how many alerts it raised.
pub async fn scan(db: &Db, identity: &Identity, t: &Thresholds, now: DateTime<Utc>) -> Result<usize, Error> {
    let span = Duration::minutes(t.window_minutes.max(t.bulk_window_minutes).max(60));
    // Only the actions some rule looks at are read.
    let watched: Vec<Action> =
        [Action::SignIn, Action::Access].iter().chain(PERSONAL_READS).chain(PRIVILEGED).copied().collect();
    let entries =
        ledger::since(db, Log::Audit, now - span, &watched).await.map_err(|e| Error::Ledger(e.to_string()))?;
    let mut raised = 0;
    for c in evaluate(&entries, t) {
        let region = match &c.account {
            Some(account) => identity.accounts().region_path_of(account).await?,
            None => None,
        };
        if raise(db, &c, region.as_deref(), now).await? {
            raised += 1;
        }
    }
    Ok(raised)
}

/// The newest alerts, open ones first.
pub async fn alerts(db: &Db, cap: &Capability<SecurityAlertHandle>, limit: i64) -> Result<Vec<Alert>, Error> {
    let rows = repo::alerts(&db.pool, &within(cap), limit.clamp(1, 500)).await?;
    rows.into_iter()
        .map(|r| {
            Ok(Alert {
                id: r.id,
                rule: r.rule,
                severity: r.severity,
                summary: r.summary,
                first_index: r.first_index.and_then(|i| u64::try_from(i).ok()),
                raised_at: from_millis(r.raised_at),
                acknowledged_at: r.acknowledged_at.map(from_millis),
                acknowledged_by: r.acknowledged_by,
            })
        })
        .collect()
}

/// Acknowledges an alert (recorded in the audit ledger).
pub async fn acknowledge(
    db: &Db,
    cap: &Capability<SecurityAlertHandle>,
    id: &str,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let mut tx = db.begin().await?;
    let acknowledged = repo::acknowledge(&mut tx, id, &within(cap), cap.username(), millis(now)).await?;
    if !acknowledged {
        return Err(Error::NotFound);
    }
    let mut entry = Entry::new(Action::AlertAcknowledged, Outcome::Success, now);
    entry.actor = Some(cap.account_id().to_string());
    entry.actor_name = Some(cap.username().to_string());
    entry.object = Some(format!("alert:{id}"));
    ledger::append_in(&mut tx, Log::Audit, &entry).await?;
    tx.commit().await?;
    Ok(())
}

/// Counts used on the security page.
pub fn open_count(alerts: &[Alert]) -> usize {
    alerts.iter().filter(|a| a.acknowledged_at.is_none()).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn e(action: &str, result: &str, at: DateTime<Utc>, f: impl FnOnce(&mut Entry)) -> Entry {
        let (action, result): (Action, Outcome) = (action.parse().unwrap(), result.parse().unwrap());
        let mut entry = Entry::new(action, result, at);
        f(&mut entry);
        entry
    }

    /// A Wednesday, 10:00 in Beijing.
    fn office() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 18, 2, 0, 0).unwrap()
    }

    #[test]
    fn failed_sign_ins_alert_once_at_the_threshold() {
        let t = Thresholds::default();
        let mut entries: Vec<(u64, Entry)> = (0..4)
            .map(|i| {
                (
                    i,
                    e("sign_in", "failure", office() + Duration::seconds(i as i64), |x| {
                        x.actor_name = Some("wang".into())
                    }),
                )
            })
            .collect();
        assert!(evaluate(&entries, &t).is_empty());
        entries.push((
            4,
            e("sign_in", "failure", office() + Duration::seconds(5), |x| x.actor_name = Some("wang".into())),
        ));
        let c = evaluate(&entries, &t);
        assert_eq!(c.len(), 1);
        assert_eq!((c[0].rule, c[0].first_index), (AlertRule::FailedSignIns, 0));
        // The same window evaluated again yields the same key: raise() dedupes on it.
        assert_eq!(evaluate(&entries, &t), c);
    }

    #[test]
    fn a_burst_across_a_clock_boundary_still_alerts() {
        let t = Thresholds::default();
        // 10:14:30 … 10:15:10 Beijing: the 15-minute boundary falls inside the burst.
        let start = Utc.with_ymd_and_hms(2026, 11, 18, 2, 14, 30).unwrap();
        let entries: Vec<(u64, Entry)> = (0..5)
            .map(|i| {
                (
                    i,
                    e("sign_in", "failure", start + Duration::seconds(10 * i as i64), |x| {
                        x.actor_name = Some("wang".into())
                    }),
                )
            })
            .collect();
        assert_eq!(evaluate(&entries, &t).len(), 1);
        // Spread over more than the window, the same five do not.
        let spread: Vec<(u64, Entry)> = (0..5)
            .map(|i| {
                (
                    i,
                    e("sign_in", "failure", start + Duration::minutes(5 * i as i64), |x| {
                        x.actor_name = Some("wang".into())
                    }),
                )
            })
            .collect();
        assert!(evaluate(&spread, &t).is_empty());
    }

    #[test]
    fn bulk_reads_count_distinct_people() {
        let t = Thresholds { bulk_reads: 3, ..Thresholds::default() };
        let read = |i: u64, who: &str| {
            (
                i,
                e("resident_read", "success", office(), |x| {
                    x.actor_name = Some("clerk".into());
                    x.subject = Some(who.into());
                }),
            )
        };
        let same: Vec<_> = (0..10).map(|i| read(i, "p1")).collect();
        assert!(evaluate(&same, &t).iter().all(|c| c.rule != AlertRule::BulkReads));
        let many: Vec<_> = (0..4).map(|i| read(i, &format!("p{i}"))).collect();
        let c = evaluate(&many, &t);
        assert_eq!(c.iter().filter(|c| c.rule == AlertRule::BulkReads).count(), 1);
    }

    #[test]
    fn privileged_actions_at_night_and_on_weekends() {
        let t = Thresholds::default();
        let grant = |at| vec![(0, e("role_granted", "success", at, |x| x.actor_name = Some("secadmin".into())))];
        assert!(evaluate(&grant(office()), &t).is_empty());
        let night = Utc.with_ymd_and_hms(2026, 11, 18, 15, 0, 0).unwrap(); // 23:00 Beijing
        assert_eq!(evaluate(&grant(night), &t)[0].rule, AlertRule::PrivilegedAfterHours);
        let saturday = Utc.with_ymd_and_hms(2026, 11, 21, 2, 0, 0).unwrap();
        assert_eq!(evaluate(&grant(saturday), &t)[0].rule, AlertRule::PrivilegedAfterHours);
    }

    #[test]
    fn wrong_codes_and_outside_jurisdiction() {
        let t = Thresholds::default();
        let codes: Vec<_> = (0..3)
            .map(|i| {
                (
                    i,
                    e("sign_in", "failure", office(), |x| {
                        x.actor_name = Some("li".into());
                        x.detail = Some("bad_code".into());
                    }),
                )
            })
            .collect();
        assert!(evaluate(&codes, &t).iter().any(|c| c.rule == AlertRule::MfaFailures));
        let denied: Vec<_> = (0..3)
            .map(|i| {
                (
                    i,
                    e("access", "denied", office(), |x| {
                        x.actor_name = Some("clerk".into());
                        x.detail = Some("resident.read: the record lies outside the caller's jurisdiction".into());
                    }),
                )
            })
            .collect();
        assert!(evaluate(&denied, &t).iter().any(|c| c.rule == AlertRule::OutsideJurisdiction));
    }

    #[test]
    fn thresholds_parse_from_toml_and_refuse_unknown_keys() {
        let t: Thresholds = toml::from_str("failed_sign_ins = 3\nworking_hours = [9, 17]\n").unwrap();
        assert_eq!((t.failed_sign_ins, t.working_hours, t.mfa_failures), (3, (9, 17), 3));
        assert!(toml::from_str::<Thresholds>("failed_signins = 3\n").is_err());
    }
}
