//! eForms: JSON Schema 2020-12 plus a few keywords of ours. The schema validates on the
//! server; the keywords drive rendering and prefill:
//!
//! - `title` / `x-title-en`, `description` / `x-hint-en`: label and hint in both languages;
//! - `x-widget`: `textarea`, `radio` or `select`; `x-enum-zh` / `x-enum-en`: option labels;
//! - `x-prefill`: where the value comes from (`profile.name`, `enterprise.credit_code`,
//!   `certificate:business_licence.name`, …) and `x-prefill-editable` (default true);
//! - `x-sensitive`: stored sealed;
//! - top-level `x-layout`: sections, each a title and its fields.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    Text,
    Textarea,
    Integer,
    Number,
    Boolean,
    Date,
    Choice,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Choice {
    pub value: String,
    pub label_zh: String,
    pub label_en: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Field {
    pub name: String,
    pub title_zh: String,
    pub title_en: String,
    pub hint_zh: Option<String>,
    pub hint_en: Option<String>,
    pub kind: FieldKind,
    /// Choices shown as radio buttons rather than a list.
    pub radio: bool,
    pub choices: Vec<Choice>,
    pub required: bool,
    pub sensitive: bool,
    pub prefill: Option<String>,
    pub prefill_editable: bool,
    pub max_length: Option<u64>,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Section {
    pub title_zh: String,
    pub title_en: String,
    pub fields: Vec<String>,
}

/// One field's problem, in both languages. `field` is `_form` for the form as a whole.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message_zh: String,
    pub message_en: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormError {
    #[error("the form is not a valid JSON Schema: {0}")]
    Schema(String),
    #[error("{0}")]
    Invalid(String),
}

/// A compiled form.
pub struct Form {
    pub schema: Value,
    validator: jsonschema::Validator,
    pub fields: Vec<Field>,
    pub sections: Vec<Section>,
}

impl std::fmt::Debug for Form {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Form").field("fields", &self.fields.len()).finish()
    }
}

/// Where prefilled values may come from.
pub fn prefill_source_allowed(source: &str) -> bool {
    const SOURCES: &[&str] = &[
        "profile.name",
        "profile.id_number",
        "profile.mobile",
        "profile.address",
        "profile.birth_date",
        "profile.sex",
        "profile.age",
        "enterprise.name",
        "enterprise.credit_code",
        "enterprise.legal_representative",
    ];
    SOURCES.contains(&source)
        || source.strip_prefix("certificate:").is_some_and(|rest| {
            rest.split_once('.').is_some_and(|(t, f)| !t.is_empty() && !f.is_empty() && !rest.contains(' '))
        })
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|x| x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string())).collect())
        .unwrap_or_default()
}

impl Form {
    pub fn compile(schema: Value) -> Result<Form, FormError> {
        let bad = |m: String| Err(FormError::Invalid(m));
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&schema)
            .map_err(|e| FormError::Schema(e.to_string()))?;
        if schema.get("type").and_then(Value::as_str) != Some("object") {
            return bad("a form is an object schema".into());
        }
        let required: Vec<String> = strings(&schema, "required");
        let Some(props) = schema.get("properties").and_then(Value::as_object) else {
            return bad("a form needs properties".into());
        };
        let mut fields = Vec::with_capacity(props.len());
        for (name, p) in props {
            let title_zh = text(p, "title").unwrap_or_else(|| name.clone());
            let title_en = text(p, "x-title-en").unwrap_or_else(|| title_zh.clone());
            let values = strings(p, "enum");
            let widget = text(p, "x-widget");
            let kind = match (p.get("type").and_then(Value::as_str), text(p, "format").as_deref()) {
                _ if !values.is_empty() => FieldKind::Choice,
                (Some("string"), Some("date")) => FieldKind::Date,
                (Some("string"), _) if widget.as_deref() == Some("textarea") => FieldKind::Textarea,
                (Some("string"), _) => FieldKind::Text,
                (Some("integer"), _) => FieldKind::Integer,
                (Some("number"), _) => FieldKind::Number,
                (Some("boolean"), _) => FieldKind::Boolean,
                (other, _) => return bad(format!("field {name}: type {other:?} is not supported in forms")),
            };
            let (zh, en) = (strings(p, "x-enum-zh"), strings(p, "x-enum-en"));
            if !values.is_empty() && (zh.len() != values.len() || en.len() != values.len()) {
                return bad(format!("field {name}: x-enum-zh and x-enum-en must label every option"));
            }
            let choices = values
                .iter()
                .zip(zh.iter().zip(en.iter()))
                .map(|(v, (z, e))| Choice { value: v.clone(), label_zh: z.clone(), label_en: e.clone() })
                .collect();
            let prefill = text(p, "x-prefill");
            if let Some(s) = &prefill
                && !prefill_source_allowed(s)
            {
                return bad(format!("field {name}: unknown prefill source {s}"));
            }
            fields.push(Field {
                name: name.clone(),
                title_zh,
                title_en,
                hint_zh: text(p, "description"),
                hint_en: text(p, "x-hint-en"),
                kind,
                radio: widget.as_deref() == Some("radio"),
                choices,
                required: required.contains(name),
                sensitive: p.get("x-sensitive").and_then(Value::as_bool).unwrap_or(false),
                prefill,
                prefill_editable: p.get("x-prefill-editable").and_then(Value::as_bool).unwrap_or(true),
                max_length: p.get("maxLength").and_then(Value::as_u64),
            });
        }
        let sections = match schema.get("x-layout").and_then(Value::as_array) {
            Some(layout) => {
                let mut sections = Vec::with_capacity(layout.len());
                let mut placed = BTreeMap::new();
                for s in layout {
                    let names = strings(s, "fields");
                    for n in &names {
                        if !props.contains_key(n) {
                            return bad(format!("layout names unknown field {n}"));
                        }
                        if placed.insert(n.clone(), ()).is_some() {
                            return bad(format!("layout places {n} twice"));
                        }
                    }
                    sections.push(Section {
                        title_zh: text(s, "title_zh").unwrap_or_default(),
                        title_en: text(s, "title_en").unwrap_or_default(),
                        fields: names,
                    });
                }
                if let Some(missing) = props.keys().find(|k| !placed.contains_key(*k)) {
                    return bad(format!("layout leaves out field {missing}"));
                }
                sections
            }
            None => vec![Section {
                title_zh: String::new(),
                title_en: String::new(),
                fields: fields.iter().map(|f| f.name.clone()).collect(),
            }],
        };
        Ok(Form { schema, validator, fields, sections })
    }

    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Turns the strings of an HTML form post into typed values. Empty inputs are absent;
    /// values that do not parse are kept as strings, so validation reports them by field.
    pub fn coerce(&self, posted: &[(String, String)]) -> Value {
        let mut out = Map::new();
        for f in &self.fields {
            let raw = posted.iter().rev().find(|(k, _)| k == &f.name).map(|(_, v)| v.trim());
            let value = match (raw, &f.kind) {
                (None, FieldKind::Boolean) => Value::Bool(false),
                (None, _) | (Some(""), _) => continue,
                (Some(v), FieldKind::Integer) => v.parse::<i64>().map(Value::from).unwrap_or_else(|_| v.into()),
                (Some(v), FieldKind::Number) => v
                    .parse::<f64>()
                    .ok()
                    .and_then(|n| serde_json::Number::from_f64(n).map(Value::Number))
                    .unwrap_or_else(|| v.into()),
                (Some(v), FieldKind::Boolean) => Value::Bool(matches!(v, "true" | "on" | "1" | "yes")),
                (Some(v), _) => Value::String(v.to_string()),
            };
            out.insert(f.name.clone(), value);
        }
        Value::Object(out)
    }

    /// Validates on the server, with one message per field in Chinese and English.
    pub fn validate(&self, data: &Value) -> Result<(), Vec<FieldError>> {
        let mut errors: Vec<FieldError> = Vec::new();
        for e in self.validator.iter_errors(data) {
            let field = match e.kind() {
                jsonschema::error::ValidationErrorKind::Required { property } => {
                    property.as_str().map(str::to_string).unwrap_or_default()
                }
                _ => e.instance_path().as_str().trim_start_matches('/').split('/').next().unwrap_or_default().into(),
            };
            if errors.iter().any(|x| x.field == field) {
                continue;
            }
            errors.push(self.message(&field, e.kind()));
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    fn message(&self, field: &str, kind: &jsonschema::error::ValidationErrorKind) -> FieldError {
        use jsonschema::error::ValidationErrorKind as K;
        let Some(f) = self.field(field) else {
            let unexpected = match kind {
                K::AdditionalProperties { unexpected } => unexpected.join(", "),
                _ => String::new(),
            };
            return FieldError {
                field: "_form".into(),
                message_zh: format!("表单含有未定义的内容：{unexpected}"),
                message_en: format!("The form has fields it does not define: {unexpected}"),
            };
        };
        let (zh, en) = (&f.title_zh, &f.title_en);
        let (message_zh, message_en) = match kind {
            K::Required { .. } => (format!("请填写「{zh}」"), format!("{en} is required")),
            K::MinLength { .. } => (format!("请填写「{zh}」"), format!("{en} is required")),
            K::MaxLength { limit } => {
                (format!("「{zh}」最多 {limit} 个字"), format!("{en}: at most {limit} characters"))
            }
            K::Minimum { limit } | K::ExclusiveMinimum { limit } => {
                (format!("「{zh}」不能小于 {limit}"), format!("{en} must be at least {limit}"))
            }
            K::Maximum { limit } | K::ExclusiveMaximum { limit } => {
                (format!("「{zh}」不能大于 {limit}"), format!("{en} must be at most {limit}"))
            }
            K::Enum { .. } => (format!("请从选项中选择「{zh}」"), format!("Choose one of the options for {en}")),
            K::Constant { .. } => (format!("请确认「{zh}」"), format!("Please confirm: {en}")),
            K::Format { .. } => {
                (format!("「{zh}」应为日期，例如 2026-11-21"), format!("{en} must be a date such as 2026-11-21"))
            }
            K::Type { .. } if matches!(f.kind, FieldKind::Integer) => {
                (format!("「{zh}」应为整数"), format!("{en} must be a whole number"))
            }
            K::Type { .. } if matches!(f.kind, FieldKind::Number) => {
                (format!("「{zh}」应为数字"), format!("{en} must be a number"))
            }
            _ => (format!("「{zh}」的格式不正确"), format!("{en} is not in the expected format")),
        };
        FieldError { field: field.into(), message_zh, message_en }
    }

    /// Splits values into those stored plain and those sealed.
    pub fn split_sensitive(&self, data: &Value) -> (Map<String, Value>, Map<String, Value>) {
        let mut plain = Map::new();
        let mut sensitive = Map::new();
        if let Some(obj) = data.as_object() {
            for (k, v) in obj {
                if self.field(k).is_some_and(|f| f.sensitive) {
                    sensitive.insert(k.clone(), v.clone());
                } else {
                    plain.insert(k.clone(), v.clone());
                }
            }
        }
        (plain, sensitive)
    }

    /// Values prefilled from what the government already holds (`facts`: source → value),
    /// with the source of each.
    pub fn prefill(&self, facts: &BTreeMap<String, Value>) -> (Map<String, Value>, BTreeMap<String, String>) {
        let mut values = Map::new();
        let mut sources = BTreeMap::new();
        for f in &self.fields {
            if let Some(source) = &f.prefill
                && let Some(v) = facts.get(source)
            {
                values.insert(f.name.clone(), v.clone());
                sources.insert(f.name.clone(), source.clone());
            }
        }
        (values, sources)
    }

    /// Applies prefill to what the applicant submitted: values policy does not let them
    /// change are taken from the source whatever was sent; the rest keep the applicant's
    /// value. Returns the record of where each value came from (`changed` when corrected).
    pub fn apply_prefill(&self, data: &mut Value, facts: &BTreeMap<String, Value>) -> Value {
        let (values, sources) = self.prefill(facts);
        let mut record = Map::new();
        let Some(obj) = data.as_object_mut() else { return Value::Object(record) };
        for (name, source) in sources {
            let Some(held) = values.get(&name) else { continue };
            let editable = self.field(&name).is_some_and(|f| f.prefill_editable);
            let changed = match obj.get(&name) {
                Some(given) if editable => given != held,
                _ => {
                    obj.insert(name.clone(), held.clone());
                    false
                }
            };
            record.insert(name, serde_json::json!({"source": source, "changed": changed}));
        }
        Value::Object(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn form() -> Form {
        Form::compile(json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "required": ["name", "id_number", "reason", "agree"],
            "additionalProperties": false,
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 20, "title": "姓名", "x-title-en": "Name",
                         "x-prefill": "profile.name", "x-prefill-editable": false},
                "id_number": {"type": "string", "pattern": "^[0-9]{17}[0-9X]$", "title": "公民身份号码",
                              "x-title-en": "ID number", "x-sensitive": true, "x-prefill": "profile.id_number"},
                "mobile": {"type": "string", "title": "手机", "x-title-en": "Mobile", "x-prefill": "profile.mobile"},
                "reason": {"type": "string", "enum": ["lost", "expired"], "x-enum-zh": ["遗失", "到期"],
                           "x-enum-en": ["Lost", "Expired"], "title": "原因", "x-title-en": "Reason", "x-widget": "radio"},
                "household": {"type": "integer", "minimum": 1, "maximum": 20, "title": "家庭人口", "x-title-en": "Household"},
                "moved_on": {"type": "string", "format": "date", "title": "迁入日期", "x-title-en": "Moved in on"},
                "agree": {"type": "boolean", "const": true, "title": "承诺属实", "x-title-en": "I declare"}
            },
            "x-layout": [
                {"title_zh": "申请人", "title_en": "Applicant", "fields": ["name", "id_number", "mobile"]},
                {"title_zh": "事项", "title_en": "Request", "fields": ["reason", "household", "moved_on", "agree"]}
            ]
        }))
        .unwrap()
    }

    fn posted(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn a_good_post_validates() {
        let f = form();
        let data = f.coerce(&posted(&[
            ("name", "王芳"),
            ("id_number", "11010519491231002X"),
            ("reason", "lost"),
            ("household", "3"),
            ("moved_on", "2026-01-05"),
            ("agree", "true"),
        ]));
        assert_eq!(data["household"], json!(3));
        assert_eq!(f.validate(&data), Ok(()));
        let (plain, sealed) = f.split_sensitive(&data);
        assert!(sealed.contains_key("id_number") && !plain.contains_key("id_number"));
        assert_eq!(f.sections.len(), 2);
        assert!(f.field("reason").unwrap().radio);
    }

    #[test]
    fn each_bad_field_gets_its_own_message_in_both_languages() {
        let f = form();
        let data = f.coerce(&posted(&[
            ("id_number", "123"),
            ("reason", "stolen"),
            ("household", "three"),
            ("moved_on", "yesterday"),
        ]));
        let errors = f.validate(&data).unwrap_err();
        let by: BTreeMap<&str, &FieldError> = errors.iter().map(|e| (e.field.as_str(), e)).collect();
        assert_eq!(by["name"].message_zh, "请填写「姓名」");
        assert_eq!(by["name"].message_en, "Name is required");
        assert!(by["id_number"].message_zh.contains("公民身份号码"));
        assert!(by["reason"].message_en.contains("Choose one"));
        assert!(by["household"].message_zh.contains("整数"));
        assert!(by["moved_on"].message_en.contains("date"));
        assert!(by["agree"].message_zh.contains("承诺属实"));
        let over = f.coerce(&posted(&[("household", "99")]));
        let errors = f.validate(&over).unwrap_err();
        assert!(errors.iter().any(|e| e.field == "household" && e.message_zh.contains("20")));
        let extra = json!({"name": "x", "sneaky": 1});
        assert!(f.validate(&extra).unwrap_err().iter().any(|e| e.field == "_form"));
    }

    #[test]
    fn prefill_shows_sources_and_locks_what_policy_locks() {
        let f = form();
        let facts = BTreeMap::from([
            ("profile.name".to_string(), json!("王芳")),
            ("profile.id_number".to_string(), json!("11010519491231002X")),
            ("profile.mobile".to_string(), json!("13800000000")),
        ]);
        let (values, sources) = f.prefill(&facts);
        assert_eq!(values["name"], json!("王芳"));
        assert_eq!(sources["mobile"], "profile.mobile");
        // The applicant corrects the mobile (allowed) and tries to change the name (not allowed).
        let mut data = json!({"name": "李四", "mobile": "13900000000"});
        let record = f.apply_prefill(&mut data, &facts);
        assert_eq!(data["name"], json!("王芳"));
        assert_eq!(data["mobile"], json!("13900000000"));
        assert_eq!(data["id_number"], json!("11010519491231002X"));
        assert_eq!(record["mobile"]["changed"], json!(true));
        assert_eq!(record["name"]["changed"], json!(false));
    }

    #[test]
    fn bad_forms_are_refused() {
        assert!(Form::compile(json!({"type": "object", "properties": {"a": {"type": "array"}}})).is_err());
        assert!(
            Form::compile(json!({"type": "object", "properties": {"a": {"type": "string", "x-prefill": "bank.pin"}}}))
                .is_err()
        );
        assert!(
            Form::compile(
                json!({"type": "object", "properties": {"a": {"type": "string"}}, "x-layout": [{"fields": []}]})
            )
            .is_err()
        );
        assert!(
            Form::compile(json!({"type": "object", "properties": {"a": {"type": "string", "pattern": "("}}})).is_err()
        );
    }
}
