//! The service catalog (政务服务事项): what a service is, as published, and Chinese
//! full-text search over the published catalog (jieba segmentation in a tantivy index, plus
//! pinyin initials, so that `csdj` finds 出生登记).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use tantivy::collector::TopDocs;
use tantivy::query::QueryParser;
use tantivy::schema::{Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions, Value};
use tantivy::{Index, IndexReader, ReloadPolicy, TantivyDocument, doc};

/// A service as its owner writes it: the guide, materials, limits, form and workflow.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    /// The kind of the owning department (its line of work: `GA`, `MZ`, …); applications go
    /// to the department of this kind nearest the applicant.
    pub department: String,
    pub level: Level,
    pub audience: Audience,
    pub category_zh: String,
    pub category_en: String,
    /// Life-event or business-event tags.
    #[serde(default)]
    pub events: Vec<String>,
    pub legal_basis: String,
    pub conditions_zh: String,
    pub conditions_en: String,
    #[serde(default)]
    pub materials: Vec<Material>,
    /// Working days.
    pub statutory_days: u32,
    pub committed_days: u32,
    pub handling: Handling,
    pub fee_zh: String,
    pub fee_en: String,
    pub fee_yuan: f64,
    pub channels: Vec<Channel>,
    /// In-person visits required: 0 or 1 (最多跑一次).
    pub visits: u8,
    pub depth: Depth,
    pub workflow: String,
    #[serde(default)]
    pub certificate: Option<CertificateSpec>,
    /// JSON Schema 2020-12 with layout and prefill keywords (see `forms`).
    #[schema(value_type = Object)]
    pub form: serde_json::Value,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Province,
    City,
    District,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    Citizen,
    Enterprise,
}

/// 即办件 (handled on the spot) or 承诺件 (with a committed deadline).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Handling {
    Immediate,
    Promise,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Online,
    Window,
    Mobile,
}

/// How far a service can be done online.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Depth {
    Info,
    Booking,
    Online,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Material {
    pub name_zh: String,
    pub name_en: String,
    pub required: bool,
    /// What the applicant need not bring: an e-certificate type or a shared registry.
    #[serde(default)]
    pub replaced_by: Option<Replacement>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Replacement {
    Certificate(String),
    Shared(String),
}

/// The e-certificate an approval issues.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificateSpec {
    #[serde(rename = "type")]
    pub kind: String,
    pub name_zh: String,
    pub name_en: String,
    /// 0: no expiry.
    pub valid_years: u32,
    /// Form fields copied into the certificate.
    pub fields: Vec<String>,
}

/// A bundle (一件事一次办): several services of different departments, one submission.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BundleSpec {
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    #[serde(default)]
    pub events: Vec<String>,
    pub audience: Audience,
    pub description_zh: String,
    pub description_en: String,
    pub services: Vec<String>,
}

/// A published service as the catalog lists it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ServiceSummary {
    pub id: String,
    pub code: String,
    pub version: u32,
    pub name_zh: String,
    pub name_en: String,
    pub department: String,
    pub level: Level,
    pub audience: Audience,
    pub category_zh: String,
    pub events: Vec<String>,
    pub handling: Handling,
    pub committed_days: u32,
    pub visits: u8,
    pub depth: Depth,
}

impl ServiceSummary {
    pub fn of(id: &str, version: u32, s: &ServiceSpec) -> ServiceSummary {
        ServiceSummary {
            id: id.into(),
            code: s.code.clone(),
            version,
            name_zh: s.name_zh.clone(),
            name_en: s.name_en.clone(),
            department: s.department.clone(),
            level: s.level,
            audience: s.audience,
            category_zh: s.category_zh.clone(),
            events: s.events.clone(),
            handling: s.handling,
            committed_days: s.committed_days,
            visits: s.visits,
            depth: s.depth,
        }
    }
}

/// Life events and business events, with their names, in the order the catalog shows them.
pub const EVENTS: &[(&str, &str, &str)] = &[
    ("birth", "出生", "Birth"),
    ("school", "上学", "School"),
    ("employment", "就业", "Employment"),
    ("marriage", "婚姻", "Marriage"),
    ("housing", "住房", "Housing"),
    ("retirement", "退休", "Retirement"),
    ("elderly_care", "养老", "Elderly care"),
    ("social_assistance", "社会救助", "Social assistance"),
    ("disability", "残疾人服务", "Disability"),
    ("death", "身后事", "Death"),
    ("health", "医疗健康", "Health"),
    ("transport", "交通出行", "Transport"),
    ("start_business", "开办企业", "Starting a business"),
    ("business_change", "企业变更", "Business changes"),
    ("construction", "工程建设", "Construction"),
    ("closing_business", "企业注销", "Closing a business"),
];

/// The first letter of each character's pinyin (出生登记 → csdj); other characters kept.
pub fn pinyin_initials(text: &str) -> String {
    use pinyin::ToPinyin;
    text.chars()
        .filter_map(|c| match c.to_pinyin() {
            Some(p) => p.first_letter().chars().next(),
            None => c.is_ascii_alphanumeric().then(|| c.to_ascii_lowercase()),
        })
        .collect()
}

/// A search index over the published catalog, rebuilt whenever the catalog changes (it holds
/// thousands of services, which takes milliseconds).
pub struct SearchIndex {
    reader: IndexReader,
    parser: QueryParser,
    code: Field,
    /// code → (pinyin initials of the name, summary)
    services: HashMap<String, (String, ServiceSummary)>,
    /// Codes in catalog order, for an empty query.
    order: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("search index: {0}")]
pub struct IndexError(#[from] tantivy::TantivyError);

impl SearchIndex {
    pub fn build(
        services: Vec<ServiceSummary>,
        department_names: &HashMap<String, String>,
    ) -> Result<Self, IndexError> {
        let mut sb = Schema::builder();
        let zh = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer("jieba")
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        let code = sb.add_text_field("code", STRING | STORED);
        let name_zh = sb.add_text_field("name_zh", zh.clone());
        let keywords = sb.add_text_field("keywords", zh);
        let name_en = sb.add_text_field("name_en", tantivy::schema::TEXT);
        let code_term = sb.add_text_field("code_term", STRING);
        let index = Index::create_in_ram(sb.build());
        index.tokenizers().register("jieba", tantivy_jieba::JiebaTokenizer::new());
        let mut writer: tantivy::IndexWriter = index.writer_with_num_threads(1, 15_000_000)?;
        let mut map = HashMap::with_capacity(services.len());
        let mut order = Vec::with_capacity(services.len());
        for s in services {
            let events: Vec<&str> =
                s.events.iter().filter_map(|e| EVENTS.iter().find(|(c, _, _)| c == e).map(|(_, zh, _)| *zh)).collect();
            let dept = department_names.get(&s.department).map(String::as_str).unwrap_or_default();
            writer.add_document(doc!(
                code => s.code.as_str(),
                code_term => s.code.to_lowercase(),
                name_zh => s.name_zh.as_str(),
                keywords => format!("{} {} {}", s.category_zh, events.join(" "), dept),
                name_en => s.name_en.as_str(),
            ))?;
            order.push(s.code.clone());
            map.insert(s.code.clone(), (pinyin_initials(&s.name_zh), s));
        }
        writer.commit()?;
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        let mut parser = QueryParser::for_index(&index, vec![name_zh, keywords, name_en, code_term]);
        parser.set_field_boost(name_zh, 3.0);
        Ok(SearchIndex { reader, parser, code, services: map, order })
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub fn get(&self, code: &str) -> Option<&ServiceSummary> {
        self.services.get(code).map(|(_, s)| s)
    }

    /// Published services, best match first; everything in catalog order for an empty query.
    pub fn search(&self, query: &str, limit: usize) -> Vec<ServiceSummary> {
        let query = query.trim();
        if query.is_empty() {
            return self.order.iter().take(limit).filter_map(|c| self.get(c).cloned()).collect();
        }
        let mut out: Vec<ServiceSummary> = Vec::new();
        // Pinyin initials first: someone typing `sfz` wants 身份证 before anything else.
        let lower = query.to_lowercase();
        if lower.chars().all(|c| c.is_ascii_alphabetic()) && lower.len() >= 2 {
            for code in &self.order {
                if let Some((initials, s)) = self.services.get(code)
                    && initials.contains(&lower)
                {
                    out.push(s.clone());
                }
            }
        }
        // Query syntax characters typed by people are words, not operators.
        let cleaned: String =
            query.chars().map(|c| if "+-&|!(){}[]^\"~*?:\\/'".contains(c) { ' ' } else { c }).collect();
        let (parsed, _) = self.parser.parse_query_lenient(&cleaned);
        let searcher = self.reader.searcher();
        // The index is in memory: a failure is a fault to log, and the pinyin matches above
        // still answer.
        let hits = searcher.search(&parsed, &TopDocs::with_limit(limit).order_by_score()).unwrap_or_else(|e| {
            tracing::error!(error = %e, "the catalog's search index failed a query");
            Vec::new()
        });
        for (_, address) in hits {
            let Ok(d) = searcher.doc::<TantivyDocument>(address) else { continue };
            let Some(code) = d.get_first(self.code).and_then(|v| v.as_str().map(str::to_string)) else { continue };
            if out.iter().any(|s| s.code == code) {
                continue;
            }
            if let Some(s) = self.get(&code) {
                out.push(s.clone());
            }
        }
        out.truncate(limit);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(code: &str, zh: &str, en: &str, events: &[&str]) -> ServiceSummary {
        ServiceSummary {
            id: code.into(),
            code: code.into(),
            version: 1,
            name_zh: zh.into(),
            name_en: en.into(),
            department: "GA".into(),
            level: Level::District,
            audience: Audience::Citizen,
            category_zh: "户籍办理".into(),
            events: events.iter().map(|e| e.to_string()).collect(),
            handling: Handling::Promise,
            committed_days: 5,
            visits: 0,
            depth: Depth::Online,
        }
    }

    fn index() -> SearchIndex {
        let services = vec![
            summary("YLGA0001", "出生登记", "Birth registration", &["birth"]),
            summary("YLGA0002", "居民身份证换领", "Renewing a resident ID card", &[]),
            summary("YLMZ0001", "最低生活保障申请", "Minimum living allowance", &["social_assistance"]),
            summary("YLMZ0002", "高龄津贴申领", "Old-age allowance", &["elderly_care"]),
        ];
        let depts = HashMap::from([("GA".to_string(), "公安分局".to_string())]);
        SearchIndex::build(services, &depts).unwrap()
    }

    fn codes(v: Vec<ServiceSummary>) -> Vec<String> {
        v.into_iter().map(|s| s.code).collect()
    }

    #[test]
    fn chinese_words_find_services() {
        let idx = index();
        assert_eq!(codes(idx.search("身份证", 10)).first().map(String::as_str), Some("YLGA0002"));
        assert_eq!(codes(idx.search("低保 生活保障", 10)).first().map(String::as_str), Some("YLMZ0001"));
        assert_eq!(codes(idx.search("津贴", 10)), vec!["YLMZ0002"]);
        // Tags: the life event 出生 and the department's name.
        assert!(codes(idx.search("出生", 10)).contains(&"YLGA0001".to_string()));
        assert!(codes(idx.search("公安", 10)).contains(&"YLGA0002".to_string()));
        assert!(idx.search("火箭发射", 10).is_empty());
    }

    #[test]
    fn pinyin_initials_english_and_codes_find_services() {
        let idx = index();
        assert_eq!(pinyin_initials("出生登记"), "csdj");
        assert_eq!(codes(idx.search("csdj", 10)), vec!["YLGA0001"]);
        assert_eq!(codes(idx.search("allowance", 10)).len(), 2);
        assert_eq!(codes(idx.search("ylmz0002", 10)).first().map(String::as_str), Some("YLMZ0002"));
    }

    #[test]
    fn query_syntax_typed_by_people_is_harmless() {
        let idx = index();
        for q in ["身份证\"", "(出生", "AND OR", "code:*", "~~~", "津贴 -"] {
            let _ = idx.search(q, 10);
        }
        assert_eq!(idx.search("", 2).len(), 2);
    }
}
