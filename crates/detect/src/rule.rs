//! Rules are data: one TOML file each, with metadata, typed parameters with
//! defaults, and one SQL query. The query returns *evidence rows* in a fixed
//! shape (see [`EVIDENCE_COLUMNS`]); the engine groups them into findings.
//! Parameters are bound by DataFusion as `$name` placeholders, never pasted
//! into the SQL text.

use std::collections::BTreeMap;

use datafusion::scalar::ScalarValue;
use serde::Deserialize;

/// The rules shipped in the binary.
pub const EMBEDDED_RULES: &[(&str, &str)] = &[
    ("mail.unintended_recipient.toml", include_str!("../rules/mail.unintended_recipient.toml")),
    ("mail.constant_bcc.toml", include_str!("../rules/mail.constant_bcc.toml")),
    ("mcp.server_version_change.toml", include_str!("../rules/mcp.server_version_change.toml")),
    ("mcp.tool_definition_drift.toml", include_str!("../rules/mcp.tool_definition_drift.toml")),
];

/// Columns every rule query returns, in any order:
/// - `key`: what makes two evidence rows the same finding;
/// - `ts`: when the evidence happened;
/// - `unit`: what the finding counts (a message, a session); NULL on
///   supporting rows (e.g. the tool call behind a delivery), which are evidence
///   but neither counted nor used for first/last seen;
/// - entities `address`, `sender`, `server`, `version`, `session` (nullable);
/// - `detail`: one human sentence;
/// - provenance: `evidence_table`, `source_file`, `source_line`, `source_offset`,
///   and optionally `source_pointer` (JSON pointer inside a document).
pub const EVIDENCE_COLUMNS: [&str; 13] =
    ["key", "ts", "unit", "address", "sender", "server", "version", "session", "detail", "evidence_table", "source_file", "source_line", "source_offset"];

/// Finding severity, ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "info" => Ok(Severity::Info),
            "low" => Ok(Severity::Low),
            "medium" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            "critical" => Ok(Severity::Critical),
            _ => Err(format!("unknown severity {s:?}; expected info, low, medium, high or critical")),
        }
    }
}

/// A parameter's declared type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    Int,
    Float,
    Bool,
    String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    #[serde(rename = "type")]
    pub kind: ParamType,
    pub default: toml::Value,
    pub description: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct QuerySpec {
    sql: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    id: String,
    title: String,
    severity: Severity,
    description: String,
    #[serde(default)]
    references: Vec<String>,
    #[serde(default)]
    entities: Vec<String>,
    #[serde(default)]
    parameters: BTreeMap<String, ParamSpec>,
    query: QuerySpec,
}

/// A loaded, validated rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub description: String,
    pub references: Vec<String>,
    pub entities: Vec<String>,
    pub parameters: BTreeMap<String, ParamSpec>,
    pub sql: String,
    /// Where the rule came from: `embedded:NAME` or a file path.
    pub origin: String,
}

impl ParamSpec {
    /// Turn a TOML or command-line value into a typed scalar.
    pub fn scalar(&self, v: &toml::Value) -> Result<ScalarValue, String> {
        match (self.kind, v) {
            (ParamType::Int, toml::Value::Integer(i)) => Ok(ScalarValue::Int64(Some(*i))),
            (ParamType::Float, toml::Value::Float(f)) => Ok(ScalarValue::Float64(Some(*f))),
            (ParamType::Float, toml::Value::Integer(i)) => Ok(ScalarValue::Float64(Some(*i as f64))),
            (ParamType::Bool, toml::Value::Boolean(b)) => Ok(ScalarValue::Boolean(Some(*b))),
            (ParamType::String, toml::Value::String(s)) => Ok(ScalarValue::Utf8(Some(s.clone()))),
            (k, v) => Err(format!("expected a {k:?} value, got {v}")),
        }
    }

    /// Parse a command-line text for this parameter's type.
    pub fn parse_text(&self, text: &str) -> Result<ScalarValue, String> {
        let v = match self.kind {
            ParamType::Int => toml::Value::Integer(text.parse().map_err(|_| format!("expected an integer, got {text:?}"))?),
            ParamType::Float => toml::Value::Float(text.parse().map_err(|_| format!("expected a number, got {text:?}"))?),
            ParamType::Bool => toml::Value::Boolean(text.parse().map_err(|_| format!("expected true or false, got {text:?}"))?),
            ParamType::String => toml::Value::String(text.to_string()),
        };
        self.scalar(&v)
    }
}

impl Rule {
    /// Parse and validate a rule file; errors name the origin and the problem.
    pub fn parse(origin: &str, text: &str) -> Result<Rule, String> {
        let f: RuleFile = toml::from_str(text).map_err(|e| format!("{origin}: not a valid rule file: {e}"))?;
        if f.id.is_empty() || !f.id.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
            return Err(format!("{origin}: rule id {:?} must be non-empty and use only letters, digits, '.', '_' and '-'", f.id));
        }
        for (name, p) in &f.parameters {
            p.scalar(&p.default).map_err(|e| format!("{origin}: parameter {name}: default: {e}"))?;
            if !f.query.sql.contains(&format!("${name}")) {
                return Err(format!("{origin}: parameter {name} is declared but the query never uses ${name}"));
            }
        }
        Ok(Rule {
            id: f.id,
            title: f.title,
            severity: f.severity,
            description: f.description.trim().to_string(),
            references: f.references,
            entities: f.entities,
            parameters: f.parameters,
            sql: f.query.sql,
            origin: origin.to_string(),
        })
    }

    /// Parameters with defaults, overridden by `overrides` (`name` → text).
    pub fn bound_params(&self, overrides: &BTreeMap<String, String>) -> Result<Vec<(String, ScalarValue)>, String> {
        for k in overrides.keys() {
            if !self.parameters.contains_key(k) {
                let known: Vec<_> = self.parameters.keys().cloned().collect();
                return Err(format!("rule {} has no parameter {k:?} (it has: {})", self.id, if known.is_empty() { "none".into() } else { known.join(", ") }));
            }
        }
        self.parameters
            .iter()
            .map(|(name, spec)| {
                let v = match overrides.get(name) {
                    Some(t) => spec.parse_text(t).map_err(|e| format!("--param {}.{name}: {e}", self.id))?,
                    None => spec.scalar(&spec.default).expect("validated at load"),
                };
                Ok((name.clone(), v))
            })
            .collect()
    }
}

/// The embedded rules, parsed. A broken embedded rule is a build bug that the
/// test `embedded_rules_parse` catches.
pub fn embedded_rules() -> Vec<Rule> {
    EMBEDDED_RULES
        .iter()
        .map(|(name, text)| Rule::parse(&format!("embedded:{name}"), text).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_rules_parse() {
        let rules = embedded_rules();
        assert_eq!(rules.len(), EMBEDDED_RULES.len());
        let mut ids: Vec<_> = rules.iter().map(|r| r.id.clone()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), rules.len());
    }

    #[test]
    fn broken_rule_is_named() {
        let e = Rule::parse("x.toml", "id = 'a'\n").unwrap_err();
        assert!(e.starts_with("x.toml: not a valid rule file"), "{e}");
        let e = Rule::parse(
            "y.toml",
            "id='a'\ntitle='t'\nseverity='low'\ndescription='d'\n[parameters.p]\ntype='int'\ndefault=1\ndescription='x'\n[query]\nsql='select 1'\n",
        )
        .unwrap_err();
        assert!(e.contains("never uses $p"), "{e}");
    }

    #[test]
    fn params_are_typed() {
        let r = &embedded_rules()[1];
        let mut o = BTreeMap::new();
        o.insert("min_share".to_string(), "abc".to_string());
        assert!(r.bound_params(&o).unwrap_err().contains("expected a number"));
        o.insert("min_share".to_string(), "0.5".to_string());
        assert!(r.bound_params(&o).is_ok());
        o.insert("nope".to_string(), "1".to_string());
        assert!(r.bound_params(&o).unwrap_err().contains("has no parameter"));
    }
}
