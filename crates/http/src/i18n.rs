//! Page text in Simplified Chinese (the default) and English, from embedded TOML catalogs.

use std::collections::HashMap;
use std::sync::LazyLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "zh-CN" | "zh" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    pub fn other(self) -> Lang {
        match self {
            Lang::Zh => Lang::En,
            Lang::En => Lang::Zh,
        }
    }
}

fn flatten(prefix: &str, table: &toml::Table, out: &mut HashMap<String, String>) {
    for (key, value) in table {
        let full = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        match value {
            toml::Value::Table(t) => flatten(&full, t, out),
            toml::Value::String(s) => {
                out.insert(full, s.clone());
            }
            other => {
                out.insert(full, other.to_string());
            }
        }
    }
}

fn load(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    match text.parse::<toml::Table>() {
        Ok(table) => flatten("", &table, &mut out),
        Err(e) => tracing::error!(error = %e, "message catalog does not parse"),
    }
    out
}

static ZH: LazyLock<HashMap<String, String>> = LazyLock::new(|| load(include_str!("../i18n/zh-CN.toml")));
static EN: LazyLock<HashMap<String, String>> = LazyLock::new(|| load(include_str!("../i18n/en.toml")));

/// The text for `key`, or the key itself when a catalog lacks it (a test keeps them equal).
pub fn text(lang: Lang, key: &str) -> &'static str {
    let catalog: &'static HashMap<String, String> = match lang {
        Lang::Zh => &ZH,
        Lang::En => &EN,
    };
    match catalog.get(key) {
        Some(s) => s.as_str(),
        None => {
            tracing::warn!(key, lang = lang.code(), "missing message");
            ""
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogs_parse_and_have_the_same_keys() {
        let zh: std::collections::BTreeSet<_> = ZH.keys().collect();
        let en: std::collections::BTreeSet<_> = EN.keys().collect();
        assert!(zh.len() > 50, "{}", zh.len());
        assert_eq!(zh.difference(&en).collect::<Vec<_>>(), Vec::<&&String>::new(), "missing in en");
        assert_eq!(en.difference(&zh).collect::<Vec<_>>(), Vec::<&&String>::new(), "missing in zh-CN");
        assert!(ZH.values().chain(EN.values()).all(|v| !v.trim().is_empty()));
    }

    #[test]
    fn every_error_code_has_a_message() {
        for code in crate::error::ErrorCode::all() {
            let key = format!("error.{}", code.as_str());
            assert!(ZH.contains_key(&key), "{key}");
        }
    }

    /// 我的数据 and the security pages name every action in the reader's language, the
    /// built-in workflows' case steps included.
    #[test]
    fn every_audited_action_has_a_label() {
        let fixed = kernel::audit::Action::all().iter().map(|a| a.as_str().to_string());
        let steps = ["submit", "accept", "review", "approve", "complete", "refuse", "reject"]
            .into_iter()
            .chain(["request_supplement", "resubmit", "withdraw", "join"])
            .map(|s| format!("application_{s}"));
        for action in fixed.chain(steps) {
            let key = format!("action.{action}");
            assert!(ZH.contains_key(&key) && EN.contains_key(&key), "{key}");
        }
    }

    /// The security page names each alert's rule and severity in words.
    #[test]
    fn every_alert_rule_and_severity_has_a_label() {
        use strum::VariantArray;
        let rules = insight::security::AlertRule::VARIANTS.iter().map(|r| format!("security.rule_{}", r.as_str()));
        let severities =
            insight::security::Severity::VARIANTS.iter().map(|s| format!("security.severity_{}", s.as_str()));
        let frequencies = exchange::FREQUENCIES.iter().map(|(f, _)| format!("exchange.frequency_{f}"));
        let methods = insight::forecast::Method::VARIANTS.iter().map(|m| format!("insight.method.{}", m.as_str()));
        for key in rules.chain(severities).chain(frequencies).chain(methods) {
            assert!(ZH.contains_key(&key) && EN.contains_key(&key), "{key}");
        }
    }

    #[test]
    fn every_key_used_in_templates_and_code_exists() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/templates");
        let mut sources: Vec<(String, &str)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| (std::fs::read_to_string(e.unwrap().path()).unwrap(), "l.t(\""))
            .collect();
        // Every page handler's source, however the pages are split into files.
        let mut dirs = vec![std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/src/pages"))];
        let mut files = 0;
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let source = std::fs::read_to_string(&path).unwrap();
                    for call in ["ctx.layout(\"", "text(lang, \"", "text(ctx.prefs.lang, \"", "self.t(\"", "l.t(\""] {
                        sources.push((source.clone(), call));
                    }
                    files += 1;
                }
            }
        }
        assert!(files > 10, "{files} page sources");
        let mut checked = 0;
        for (source, call) in sources {
            for piece in source.split(call).skip(1) {
                let key = piece.split('"').next().unwrap();
                assert!(ZH.contains_key(key), "{key} missing");
                checked += 1;
            }
        }
        assert!(checked > 50, "{checked}");
    }
}
