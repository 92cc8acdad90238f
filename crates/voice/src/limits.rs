//! Time limits of each step (data/limits.toml): by urgency, with overrides by kind and by
//! category, in working days on the platform calendar or in clock hours.

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
    #[serde(default)]
    category: HashMap<String, Steps>,
}

impl Limits {
    pub fn shipped() -> Result<Limits, Error> {
        let limits: Limits = toml::from_str(SHIPPED).map_err(internal)?;
        let overrides = limits.kind.values().chain(limits.category.values());
        for steps in [&limits.normal, &limits.urgent].into_iter().chain(overrides) {
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

    /// The categories the limits name, for the module to check against its table.
    pub fn categories(&self) -> impl Iterator<Item = &str> {
        self.category.keys().map(String::as_str)
    }

    /// When a request entering `stage` at `from` is due, if the step has a limit: the
    /// shortest of its urgency's, its kind's and its category's.
    pub fn due(
        &self,
        stage: Stage,
        (kind, category, urgency): (RequestKind, &str, Urgency),
        from: DateTime<Utc>,
        calendar: &WorkingCalendar,
    ) -> Option<DateTime<Utc>> {
        let by_urgency = match urgency {
            Urgency::Normal => &self.normal,
            Urgency::Urgent => &self.urgent,
        };
        // An urgent request keeps its urgency's limit where that is shorter than the kind's.
        let for_kind = self.kind.get(kind.as_str()).and_then(|steps| steps.get(stage.as_str()));
        let for_category = self.category.get(category).and_then(|steps| steps.get(stage.as_str()));
        let candidates = [by_urgency.get(stage.as_str()), for_kind, for_category];
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_category_shortens_its_limits_and_others_keep_theirs() {
        let limits = Limits::shipped().unwrap();
        let calendar = WorkingCalendar::default();
        // Monday 09:00 China time.
        let monday = Utc.with_ymd_and_hms(2026, 11, 23, 1, 0, 0).unwrap();
        let china = |d: Option<DateTime<Utc>>| {
            d.unwrap().with_timezone(&services::calendar::cst()).format("%a %H:%M").to_string()
        };
        let normal = (RequestKind::Complaint, "L02", Urgency::Normal);
        let safety = (RequestKind::Complaint, "L14", Urgency::Normal);
        assert_eq!(china(limits.due(Stage::Handling, normal, monday, &calendar)), "Mon 23:59");
        assert_eq!(china(limits.due(Stage::Handling, safety, monday, &calendar)), "Tue 23:59");
        assert_eq!(limits.due(Stage::Assigned, safety, monday, &calendar), Some(monday + Duration::hours(2)));
        // An enquiry about safety keeps the shorter of the two.
        let enquiry = (RequestKind::Enquiry, "L14", Urgency::Normal);
        assert_eq!(china(limits.due(Stage::Handling, enquiry, monday, &calendar)), "Tue 23:59");
    }
}
