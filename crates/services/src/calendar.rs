//! Working days: Monday to Friday, less public holidays, plus make-up working days (调休)
//! that fall on weekends. Every deadline in the platform is counted in these.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Days, FixedOffset, NaiveDate, NaiveTime, Offset, TimeZone, Utc, Weekday};
use serde::Deserialize;

/// China Standard Time, in which working days, deadlines, hall hours and case numbers are counted.
pub fn cst() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| Utc.fix())
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WorkingCalendar {
    /// Days off that would otherwise be working days (春节, 国庆节, …).
    #[serde(default)]
    pub holidays: BTreeSet<NaiveDate>,
    /// Weekend days that are working days (调休).
    #[serde(default)]
    pub makeup_days: BTreeSet<NaiveDate>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CalendarError {
    #[error("the calendar does not parse: {0}")]
    Parse(String),
    #[error("{0} is both a holiday and a make-up working day")]
    Both(NaiveDate),
}

impl WorkingCalendar {
    /// From TOML: `holidays = ["2026-10-01", …]` and `makeup_days = ["2026-09-27", …]`.
    pub fn from_toml(text: &str) -> Result<WorkingCalendar, CalendarError> {
        let c: WorkingCalendar = toml::from_str(text).map_err(|e| CalendarError::Parse(e.to_string()))?;
        if let Some(d) = c.holidays.intersection(&c.makeup_days).next() {
            return Err(CalendarError::Both(*d));
        }
        Ok(c)
    }

    pub fn is_working_day(&self, day: NaiveDate) -> bool {
        if self.holidays.contains(&day) {
            return false;
        }
        if self.makeup_days.contains(&day) {
            return true;
        }
        !matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
    }

    /// The `n`th working day after `day` (`day` itself does not count; n = 0 gives `day`).
    pub fn add_working_days(&self, day: NaiveDate, n: u32) -> NaiveDate {
        let mut d = day;
        let mut left = n;
        while left > 0 {
            d = d.checked_add_days(Days::new(1)).unwrap_or(d);
            if self.is_working_day(d) {
                left -= 1;
            }
        }
        d
    }

    /// Working days in (`from`, `to`]: how many a case has used, for example.
    pub fn working_days_between(&self, from: NaiveDate, to: NaiveDate) -> u32 {
        let mut count = 0;
        let mut d = from;
        while d < to {
            d = d.checked_add_days(Days::new(1)).unwrap_or(to);
            if self.is_working_day(d) {
                count += 1;
            }
        }
        count
    }

    /// The deadline `n` working days after the moment `start`: the end (23:59:59 CST) of the
    /// `n`th working day after the local day of `start`.
    pub fn deadline(&self, start: DateTime<Utc>, n: u32) -> DateTime<Utc> {
        let local_day = start.with_timezone(&cst()).date_naive();
        let day = self.add_working_days(local_day, n);
        let end = day.and_time(NaiveTime::from_hms_opt(23, 59, 59).unwrap_or_default());
        cst().from_local_datetime(&end).single().map(|t| t.with_timezone(&Utc)).unwrap_or(start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    /// A 国庆 week with make-up Saturdays either side, as the State Council arranges them.
    fn national_day() -> WorkingCalendar {
        WorkingCalendar::from_toml(
            "holidays = [\"2026-10-01\", \"2026-10-02\", \"2026-10-05\", \"2026-10-06\", \"2026-10-07\"]\n\
             makeup_days = [\"2026-09-26\", \"2026-10-10\"]\n",
        )
        .unwrap()
    }

    #[test]
    fn holidays_and_makeup_days() {
        let c = national_day();
        assert!(!c.is_working_day(d("2026-10-01")));
        assert!(c.is_working_day(d("2026-09-26"))); // a Saturday, worked
        assert!(!c.is_working_day(d("2026-10-03"))); // a plain Saturday
        // Wednesday 30 Sept + 3 working days: 8 (Thu), 9 (Fri), 10 (the make-up Saturday).
        assert_eq!(c.add_working_days(d("2026-09-30"), 3), d("2026-10-10"));
        assert_eq!(c.working_days_between(d("2026-09-30"), d("2026-10-10")), 3);
        assert_eq!(c.add_working_days(d("2026-09-30"), 0), d("2026-09-30"));
        assert!(WorkingCalendar::from_toml("holidays = [\"2026-10-01\"]\nmakeup_days = [\"2026-10-01\"]\n").is_err());
        assert!(WorkingCalendar::from_toml("holidayz = []\n").is_err());
    }

    #[test]
    fn deadlines_end_at_the_end_of_the_local_day() {
        let c = national_day();
        // 23:30 UTC on 29 Sept is already 30 Sept in Beijing.
        let start = Utc.with_ymd_and_hms(2026, 9, 29, 23, 30, 0).unwrap();
        let due = c.deadline(start, 3);
        assert_eq!(due, Utc.with_ymd_and_hms(2026, 10, 10, 15, 59, 59).unwrap());
    }

    proptest! {
        /// Whatever the holidays and make-up days: the result is a working day, exactly n
        /// working days lie in between, and adding is monotonic.
        #[test]
        fn sla_arithmetic(
            start in 0u32..730, n in 0u32..60,
            holidays in proptest::collection::btree_set(0u32..800, 0..40),
            makeup in proptest::collection::btree_set(0u32..800, 0..10),
        ) {
            let base = d("2026-01-01");
            let day = |k: u32| base.checked_add_days(Days::new(u64::from(k))).unwrap();
            let holidays: BTreeSet<NaiveDate> = holidays.iter().map(|k| day(*k)).collect();
            let makeup_days: BTreeSet<NaiveDate> = makeup.iter().map(|k| day(*k)).filter(|x| !holidays.contains(x)).collect();
            let c = WorkingCalendar { holidays, makeup_days };
            let from = day(start);
            let due = c.add_working_days(from, n);
            prop_assert_eq!(c.working_days_between(from, due), n);
            if n > 0 {
                prop_assert!(c.is_working_day(due));
                prop_assert!(c.add_working_days(from, n - 1) < due);
            }
        }
    }
}
