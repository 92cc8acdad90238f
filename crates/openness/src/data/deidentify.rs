//! De-identification of registry records for an open dataset: each published column comes
//! from one registry field by a rule (kept, replaced by a keyed hash, or generalised), every
//! other field is dropped, and the rows are held to k-anonymity over the quasi-identifiers:
//! each combination of their values must be shared by at least k rows, else publication is
//! refused naming the combinations that fail (or, when the officer allows it, their rows are
//! left out).

use std::collections::HashMap;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Column, ColumnType};
use crate::Error;

/// The smallest group a quasi-identifier combination may describe, unless a dataset asks
/// for more.
pub const DEFAULT_K: u32 = 5;
/// Failing combinations a report names.
const MAX_NAMED: usize = 20;

/// How a region code is generalised: GB/T 2260 codes are 6 digits, two per level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RegionLevel {
    /// 省: 2 digits kept (`990000`).
    Province,
    /// 市: 4 digits kept (`990100`).
    City,
    /// 区县: all 6 digits.
    District,
}

/// What is published of one registry field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum FieldRule {
    /// As it is: only for fields that identify no one by themselves.
    Keep,
    /// Replaced by a keyed hash: the same value gives the same token within the dataset,
    /// and no one without the platform's key can compute it from an ID number.
    Pseudonym,
    /// A date of birth becomes an age band of `width` years on the day of publication
    /// (`30-39`).
    AgeBand { width: u32 },
    /// A region code cut to a level.
    Region { level: RegionLevel },
    /// A date to its month (`2024-05`).
    Month,
    /// A date to its year.
    Year,
}

impl FieldRule {
    /// Whether the rule generalises (and the column is then a quasi-identifier).
    fn generalises(&self) -> bool {
        matches!(self, FieldRule::AgeBand { .. } | FieldRule::Region { .. } | FieldRule::Month | FieldRule::Year)
    }
}

/// One published column: the registry field it comes from and the rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ColumnRule {
    /// The registry field.
    pub field: String,
    /// The column's title, as readers see it.
    pub title: String,
    #[serde(flatten)]
    pub rule: FieldRule,
    /// Counted in k-anonymity. Generalised columns always are; a kept column (such as sex)
    /// is when the officer says so.
    #[serde(default)]
    pub quasi_identifier: bool,
}

impl ColumnRule {
    pub fn is_quasi(&self) -> bool {
        self.quasi_identifier || self.rule.generalises()
    }

    /// The published column this rule makes.
    pub fn column(&self) -> Column {
        let kind = match self.rule {
            FieldRule::AgeBand { .. } | FieldRule::Region { .. } | FieldRule::Pseudonym => ColumnType::Text,
            FieldRule::Month => ColumnType::Month,
            FieldRule::Year => ColumnType::Integer,
            FieldRule::Keep => ColumnType::Text,
        };
        Column { name: self.field.clone(), title: self.title.clone(), kind, required: false, codes: Vec::new() }
    }
}

/// What a registry field is, as far as de-identification cares.
#[derive(Debug, Clone)]
pub struct SourceField {
    pub name: String,
    /// Identifies a person by itself (the key, an ID number, a name, a mobile, an address).
    pub direct_identifier: bool,
    /// Classified sensitive or core (3 or 4), or stored sealed.
    pub sensitive: bool,
}

/// Checks rules against the registry's fields: each names a field once, keeps no
/// identifying or sensitive value as it is, and generalises sensibly.
pub fn check_rules(rules: &[ColumnRule], fields: &[SourceField]) -> Result<(), Error> {
    if rules.is_empty() {
        return Err(Error::invalid("rules", "name at least one field to publish"));
    }
    let mut seen = std::collections::HashSet::new();
    for r in rules {
        let Some(field) = fields.iter().find(|f| f.name == r.field) else {
            return Err(Error::invalid("rules", format!("the registry has no field {}", r.field)));
        };
        if !seen.insert(r.field.as_str()) {
            return Err(Error::invalid("rules", format!("{} is named twice", r.field)));
        }
        crate::text_between("rules", &r.title, 1, 60)?;
        if r.rule == FieldRule::Keep && (field.direct_identifier || field.sensitive) {
            return Err(Error::invalid(
                "rules",
                format!(
                    "{} identifies people or is sensitive: replace it by a pseudonym, generalise it or leave it out",
                    r.field
                ),
            ));
        }
        if r.quasi_identifier && r.rule == FieldRule::Pseudonym {
            return Err(Error::invalid(
                "rules",
                format!("{} is a pseudonym: it cannot be a quasi-identifier", r.field),
            ));
        }
        if let FieldRule::AgeBand { width } = r.rule
            && !(1..=50).contains(&width)
        {
            return Err(Error::invalid("rules", "an age band is 1 to 50 years wide"));
        }
    }
    Ok(())
}

/// Applies the rules to one record (its pseudonyms already made by the registry). A value
/// that cannot be generalised (a malformed date) is an error naming the field: publishing
/// a value the rules did not cover would defeat them.
pub fn apply(rules: &[ColumnRule], record: &Map<String, Value>, today: NaiveDate) -> Result<Map<String, Value>, Error> {
    let mut out = Map::with_capacity(rules.len());
    for r in rules {
        let value = match record.get(&r.field) {
            None | Some(Value::Null) => Value::Null,
            Some(v) => generalise(&r.rule, v, today).ok_or_else(|| {
                Error::invalid("rules", format!("a value of {} does not suit the rule for it", r.field))
            })?,
        };
        out.insert(r.field.clone(), value);
    }
    Ok(out)
}

fn date_of(v: &Value) -> Option<NaiveDate> {
    let text = v.as_str()?;
    NaiveDate::parse_from_str(text.get(..10)?, "%Y-%m-%d").ok()
}

fn generalise(rule: &FieldRule, v: &Value, today: NaiveDate) -> Option<Value> {
    match rule {
        FieldRule::Keep | FieldRule::Pseudonym => Some(v.clone()),
        FieldRule::AgeBand { width } => {
            let born = date_of(v)?;
            let age = today.years_since(born)?;
            let low = age / width * width;
            Some(Value::String(if *width == 1 { low.to_string() } else { format!("{low}-{}", low + width - 1) }))
        }
        FieldRule::Region { level } => {
            let code = match v {
                Value::String(s) => s.trim().to_string(),
                Value::Number(n) => n.to_string(),
                _ => return None,
            };
            let keep = match level {
                RegionLevel::Province => 2,
                RegionLevel::City => 4,
                RegionLevel::District => 6,
            };
            if code.len() < 6 || !code.chars().all(|c| c.is_ascii_digit()) {
                return None;
            }
            Some(Value::String(format!("{}{}", code.get(..keep)?, "0".repeat(6 - keep))))
        }
        FieldRule::Month => date_of(v).map(|d| Value::String(d.format("%Y-%m").to_string())),
        FieldRule::Year => date_of(v).map(|d| Value::from(d.year())),
    }
}

/// A combination of quasi-identifier values and how many rows share it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Combination {
    /// (column, value) in the order of the rules.
    pub values: Vec<(String, String)>,
    pub rows: u64,
}

/// How the rows stand against k-anonymity.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Anonymity {
    /// The columns counted.
    pub quasi_identifiers: Vec<String>,
    pub k_required: u32,
    /// The smallest group; the number of rows when no column is a quasi-identifier.
    pub k_reached: u64,
    /// Combinations below k (up to 20 named, smallest first).
    pub failing: Vec<Combination>,
    /// How many combinations fail, and the rows they hold.
    pub failing_combinations: u64,
    pub failing_rows: u64,
}

/// Counts the rows of each quasi-identifier combination. A row keeps the number of its
/// combination, so a million rows hold a number each, not their values again.
#[derive(Debug, Default)]
pub struct Groups {
    index: HashMap<String, u32>,
    keys: Vec<String>,
    counts: Vec<u64>,
    rows: u64,
}

impl Groups {
    /// The combination of a row: its quasi-identifier values joined with a separator no
    /// value holds.
    pub fn key(rules: &[ColumnRule], row: &Map<String, Value>) -> String {
        let mut key = String::new();
        for r in rules.iter().filter(|r| r.is_quasi()) {
            key.push_str(&display(row.get(&r.field)));
            key.push('\u{1f}');
        }
        key
    }

    /// Counts a row of a combination; returns the combination's number.
    pub fn add(&mut self, key: String) -> Result<u32, Error> {
        self.rows += 1;
        if let Some(&n) = self.index.get(&key) {
            if let Some(count) = self.counts.get_mut(n as usize) {
                *count += 1;
            }
            return Ok(n);
        }
        let n = u32::try_from(self.keys.len()).map_err(|_| Error::invalid("rules", "too many combinations"))?;
        self.index.insert(key.clone(), n);
        self.keys.push(key);
        self.counts.push(1);
        Ok(n)
    }

    /// The rows of combination `n`.
    pub fn count(&self, n: u32) -> u64 {
        self.counts.get(n as usize).copied().unwrap_or(0)
    }

    /// The same counts without the rows of combinations below `k`.
    pub fn without_small(&self, k: u32) -> Groups {
        let mut kept = Groups::default();
        for (key, &n) in self.keys.iter().zip(&self.counts) {
            if n >= u64::from(k) {
                kept.index.insert(key.clone(), kept.keys.len() as u32);
                kept.keys.push(key.clone());
                kept.counts.push(n);
                kept.rows += n;
            }
        }
        kept
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn anonymity(&self, rules: &[ColumnRule], k: u32) -> Anonymity {
        let quasi: Vec<String> = rules.iter().filter(|r| r.is_quasi()).map(|r| r.field.clone()).collect();
        let k_reached = if quasi.is_empty() { self.rows } else { self.counts.iter().copied().min().unwrap_or(0) };
        let mut failing: Vec<(&String, u64)> = if quasi.is_empty() {
            Vec::new()
        } else {
            self.keys.iter().zip(self.counts.iter().copied()).filter(|(_, n)| *n < u64::from(k)).collect()
        };
        failing.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(b.0)));
        let failing_rows = failing.iter().map(|(_, n)| n).sum();
        let failing_combinations = failing.len() as u64;
        let failing = failing
            .into_iter()
            .take(MAX_NAMED)
            .map(|(key, rows)| Combination {
                values: quasi.iter().cloned().zip(key.split('\u{1f}').map(str::to_string)).collect(),
                rows,
            })
            .collect();
        Anonymity { quasi_identifiers: quasi, k_required: k, k_reached, failing, failing_combinations, failing_rows }
    }
}

/// A value as a cell shows it.
pub fn display(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(field: &str, rule: FieldRule) -> ColumnRule {
        ColumnRule { field: field.into(), title: field.into(), rule, quasi_identifier: false }
    }

    #[test]
    fn generalisations_hide_the_detail() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        let rules = [
            rule("birth_date", FieldRule::AgeBand { width: 10 }),
            rule("region_code", FieldRule::Region { level: RegionLevel::City }),
            rule("since", FieldRule::Month),
            rule("registered", FieldRule::Year),
        ];
        let record = json!({"birth_date": "1956-12-08", "region_code": "990102", "since": "2015-03-09",
            "registered": "2001-01-01", "name": "王秀英"});
        let out = apply(&rules, record.as_object().unwrap(), today).unwrap();
        assert_eq!(out["birth_date"], json!("60-69"), "69 until the day before the 70th birthday");
        assert_eq!(out["region_code"], json!("990100"));
        assert_eq!(out["since"], json!("2015-03"));
        assert_eq!(out["registered"], json!(2001));
        assert!(out.get("name").is_none(), "a field no rule names is dropped");
        let bad = json!({"birth_date": "unknown"});
        assert!(apply(&rules, bad.as_object().unwrap(), today).is_err(), "a value the rule cannot cover is refused");
    }

    #[test]
    fn identifying_fields_are_not_kept_as_they_are() {
        let fields = [
            SourceField { name: "id_number".into(), direct_identifier: true, sensitive: true },
            SourceField { name: "sex".into(), direct_identifier: false, sensitive: false },
        ];
        assert!(check_rules(&[rule("id_number", FieldRule::Keep)], &fields).is_err());
        assert!(check_rules(&[rule("id_number", FieldRule::Pseudonym), rule("sex", FieldRule::Keep)], &fields).is_ok());
        assert!(check_rules(&[rule("nope", FieldRule::Keep)], &fields).is_err());
    }

    #[test]
    fn k_anonymity_names_the_small_groups() {
        let mut sex = rule("sex", FieldRule::Keep);
        sex.quasi_identifier = true;
        let rules = [sex, rule("age", FieldRule::Keep)];
        let mut groups = Groups::default();
        for (s, n) in [("1", 6), ("2", 5), ("9", 2)] {
            for _ in 0..n {
                groups.add(Groups::key(&rules, json!({"sex": s, "age": 1}).as_object().unwrap())).unwrap();
            }
        }
        let a = groups.anonymity(&rules, 5);
        assert_eq!(a.k_reached, 2);
        assert_eq!(a.failing_combinations, 1);
        assert_eq!(a.failing_rows, 2);
        assert_eq!(a.failing[0].values, vec![("sex".to_string(), "9".to_string())]);
        assert_eq!(groups.anonymity(&rules, 2).failing.len(), 0);
        let kept = groups.without_small(5);
        assert_eq!((kept.rows(), kept.anonymity(&rules, 5).k_reached), (11, 5), "leaving the small group out");
    }
}
