//! Time limits of each step (data/limits.toml): by urgency, with overrides by kind, in
//! working days on the platform calendar or in clock hours.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use services::calendar::WorkingCalendar;

use super::{Error, RequestKind, Stage, Urgency, internal};

const SHIPPED: &str = include_str!("../data/limits.toml");

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    working_days: Option<u32>,
    hours: Option<i64>,
}

type Steps = HashMap<String, Limit>;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    normal: Steps,
    urgent: Steps,
    #[serde(default)]
    kind: HashMap<String, Steps>,
}

impl Limits {
    pub fn shipped() -> Result<Limits, Error> {
        let limits: Limits = toml::from_str(SHIPPED).map_err(internal)?;
        for steps in [&limits.normal, &limits.urgent].into_iter().chain(limits.kind.values()) {
            for (step, limit) in steps {
                step.parse::<Stage>().map_err(|_| internal(format!("the limits name no step {step}")))?;
                if limit.working_days.is_some() == limit.hours.is_some() {
                    return Err(internal(format!("the limit of {step}: give working_days or hours")));
                }
            }
        }
        for kind in limits.kind.keys() {
            kind.parse::<RequestKind>().map_err(|_| internal(format!("the limits name no kind {kind}")))?;
        }
        Ok(limits)
    }

    /// When a request entering `stage` at `from` is due, if the step has a limit.
    pub fn due(
        &self,
        stage: Stage,
        kind: RequestKind,
        urgency: Urgency,
        from: DateTime<Utc>,
        calendar: &WorkingCalendar,
    ) -> Option<DateTime<Utc>> {
        let by_urgency = match urgency {
            Urgency::Normal => &self.normal,
            Urgency::Urgent => &self.urgent,
        };
        // An urgent request keeps its urgency's limit where that is shorter than the kind's.
        let for_kind = self.kind.get(kind.as_str()).and_then(|steps| steps.get(stage.as_str()));
        let candidates = [by_urgency.get(stage.as_str()), for_kind];
        candidates
            .into_iter()
            .flatten()
            .map(|l| match (l.working_days, l.hours) {
                (Some(days), _) => calendar.deadline(from, days),
                (None, Some(hours)) => from + Duration::hours(hours),
                (None, None) => from,
            })
            .min()
    }
}
