//! Rules are data: one TOML file each, with metadata, typed parameters with
//! defaults, and one SQL query. The query returns *evidence rows* in a fixed
//! shape (see [`EVIDENCE_COLUMNS`]); the engine groups them into findings.
//! Parameters are bound by DataFusion as `$name` placeholders, never pasted
//! into the SQL text.

use std::collections::BTreeMap;

use datafusion::scalar::ScalarValue;
use serde::Deserialize;

/// The rules shipped in the binary: every file of `crates/detect/rules/`
/// (see build.rs), as (file name, TOML text).
pub const EMBEDDED_RULES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/embedded_rules.rs"));

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
    /// Every severity, lowest first.
    pub const ALL: [Severity; 5] = [Severity::Info, Severity::Low, Severity::Medium, Severity::High, Severity::Critical];

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

/// What `detect --since` may leave unread for a rule (its `[since]`
/// section). A rule without one reads every table whole: its findings can
/// depend on any earlier row (first sightings, baselines, shares of a
/// sender's mail).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SincePruning {
    /// Rows dated more than this many days before `--since` cannot change a
    /// finding counted from `--since` on (for mail matched to tool calls:
    /// the longest a message may wait in a queue, 5 days by default in
    /// Postfix, Exim and Sendmail, plus margin). Their day partitions are
    /// not read.
    pub lookback_days: u32,
    /// Tables read whole all the same: small tables whose old rows enrich
    /// new findings (a session launched months ago names the package a call
    /// today came from).
    #[serde(default)]
    pub read_whole: Vec<String>,
}

/// What a fixture expects of its rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// At least one finding (and exactly `keys`, when given).
    Fire,
    /// No finding.
    Silent,
}

/// A fixture: small raw logs the rule must fire on or stay silent on. Rules
/// carry their own, so a user rule dropped into a folder is tested like a
/// built-in one (`mcp-forensics rules test DIR`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleTest {
    pub name: String,
    pub expect: Expect,
    /// Year of year-less syslog stamps in the fixture's files.
    #[serde(default)]
    pub year: Option<i32>,
    /// Parameter overrides for this fixture.
    #[serde(default)]
    pub params: BTreeMap<String, toml::Value>,
    /// With `expect = "fire"`: the exact set of finding keys.
    #[serde(default)]
    pub keys: Option<Vec<String>>,
    /// Raw log files inline: file name (it drives format detection) -> content.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// Raw log files on disk, relative to the rule file (user rules only).
    #[serde(default)]
    pub paths: Vec<String>,
    /// List contents for the fixture: list name -> entries.
    #[serde(default)]
    pub lists: BTreeMap<String, Vec<String>>,
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
    #[serde(default)]
    lists: BTreeMap<String, String>,
    #[serde(default)]
    sensitive: bool,
    #[serde(default)]
    since: Option<SincePruning>,
    query: QuerySpec,
    #[serde(default)]
    tests: Vec<RuleTest>,
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
    /// Lists the query reads as tables `list_NAME` (name -> what belongs on it).
    pub lists: BTreeMap<String, String>,
    /// The rule's matches are secrets: `--explain` does not print raw lines.
    pub sensitive: bool,
    /// How `detect --since` may prune the tables the rule reads (None: read whole).
    pub since: Option<SincePruning>,
    pub sql: String,
    /// Positive and negative fixtures.
    pub tests: Vec<RuleTest>,
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
        for name in f.lists.keys() {
            if !crate::lists::valid_list_name(name) {
                return Err(format!("{origin}: list name {name:?} must use only lower-case letters, digits and '_'"));
            }
            if !f.query.sql.contains(&format!("list_{name}")) {
                return Err(format!("{origin}: list {name} is declared but the query never reads table list_{name}"));
            }
        }
        if let Some(p) = &f.since {
            if p.lookback_days > 3660 {
                return Err(format!("{origin}: [since] lookback_days = {} is more than ten years; leave [since] out to read the tables whole", p.lookback_days));
            }
            for name in &p.read_whole {
                if mcpf_schema::Table::from_name(name).is_none() {
                    let known: Vec<_> = mcpf_schema::Table::ALL.iter().map(|t| t.name()).collect();
                    return Err(format!("{origin}: [since] read_whole names {name:?}, which is not a lake table (tables: {})", known.join(", ")));
                }
            }
        }
        for t in &f.tests {
            let at = format!("{origin}: test {:?}", t.name);
            for (k, v) in &t.params {
                let spec = f.parameters.get(k).ok_or_else(|| format!("{at}: no parameter {k:?} is declared"))?;
                spec.scalar(v).map_err(|e| format!("{at}: parameter {k}: {e}"))?;
            }
            for k in t.lists.keys() {
                if !f.lists.contains_key(k) {
                    return Err(format!("{at}: the rule declares no list {k:?}"));
                }
            }
            if t.files.is_empty() && t.paths.is_empty() {
                return Err(format!("{at}: give the fixture's logs as files = {{ \"NAME\" = \"\"\"...\"\"\" }} or paths = [...]"));
            }
            if t.keys.is_some() && t.expect == Expect::Silent {
                return Err(format!("{at}: keys only go with expect = \"fire\""));
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
            lists: f.lists,
            sensitive: f.sensitive,
            since: f.since,
            sql: f.query.sql,
            tests: f.tests,
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

/// A TOML value as the text `--param` would give.
pub fn value_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The embedded rules, then every `*.toml` in `dirs` (sorted, one level): a
/// user rule with the id of an earlier one replaces it. Errors name the file.
pub fn load_rules(dirs: &[std::path::PathBuf]) -> Result<Vec<Rule>, String> {
    let mut rules = embedded_rules();
    for dir in dirs {
        let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: cannot read the rules directory: {e}", dir.display()))?;
        let mut files: Vec<std::path::PathBuf> =
            entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file()).collect();
        files.sort();
        let mut seen_here: BTreeMap<String, String> = BTreeMap::new();
        for f in files {
            let origin = f.display().to_string();
            let text = std::fs::read_to_string(&f).map_err(|e| format!("{origin}: cannot read: {e}"))?;
            let rule = Rule::parse(&origin, &text)?;
            if let Some(other) = seen_here.insert(rule.id.clone(), origin.clone()) {
                return Err(format!("{origin}: rule id {} is also defined in {other}; ids must be unique within a folder", rule.id));
            }
            match rules.iter_mut().find(|r| r.id == rule.id) {
                Some(slot) => *slot = rule,
                None => rules.push(rule),
            }
        }
    }
    Ok(rules)
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
        let rules = embedded_rules();
        let r = rules.iter().find(|r| r.id == "mail.constant_bcc").unwrap();
        let mut o = BTreeMap::new();
        o.insert("min_share".to_string(), "abc".to_string());
        assert!(r.bound_params(&o).unwrap_err().contains("expected a number"));
        o.insert("min_share".to_string(), "0.5".to_string());
        assert!(r.bound_params(&o).is_ok());
        o.insert("nope".to_string(), "1".to_string());
        assert!(r.bound_params(&o).unwrap_err().contains("has no parameter"));
    }
}
