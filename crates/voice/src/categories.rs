//! The request categories (data/categories.tsv), after GB/T 39666-2020 where its codes could
//! be established (each row names its source), and the kind of department that usually
//! handles each.

use serde::Serialize;

use super::{Error, internal};

const SHIPPED: &str = include_str!("../data/categories.tsv");

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = VoiceCategory)]
pub struct Category {
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    /// The department kind (line of work, e.g. `SW` 水务) that handles it unless a district's
    /// routing table says otherwise.
    pub department_kind: String,
    /// Where the code and name come from.
    pub source: String,
}

#[derive(Debug, Clone)]
pub struct Categories(Vec<Category>);

impl Categories {
    pub fn shipped() -> Result<Categories, Error> {
        Categories::parse(SHIPPED).map_err(internal)
    }

    /// Reads `code<TAB>name_zh<TAB>name_en<TAB>department_kind<TAB>source` lines after a
    /// header line.
    pub fn parse(text: &str) -> Result<Categories, String> {
        let mut out: Vec<Category> = Vec::new();
        for (i, line) in text.lines().enumerate().skip(1).filter(|(_, l)| !l.trim().is_empty()) {
            let fields: Vec<&str> = line.split('\t').map(str::trim).collect();
            let [code, name_zh, name_en, department_kind, source] = fields.as_slice() else {
                return Err(format!("categories line {}: expected 5 tab-separated fields", i + 1));
            };
            if out.iter().any(|c| c.code == *code) {
                return Err(format!("categories line {}: code {code} twice", i + 1));
            }
            out.push(Category {
                code: code.to_string(),
                name_zh: name_zh.to_string(),
                name_en: name_en.to_string(),
                department_kind: department_kind.to_string(),
                source: source.to_string(),
            });
        }
        if out.is_empty() {
            return Err("no categories".into());
        }
        Ok(Categories(out))
    }

    pub fn get(&self, code: &str) -> Option<&Category> {
        self.0.iter().find(|c| c.code == code)
    }

    pub fn all(&self) -> &[Category] {
        &self.0
    }

    /// Whether two categories go to the same kind of department (a classifier that confuses
    /// them still routes right).
    pub fn same_department(&self, a: &str, b: &str) -> bool {
        match (self.get(a), self.get(b)) {
            (Some(a), Some(b)) => a.department_kind == b.department_kind,
            _ => false,
        }
    }
}
