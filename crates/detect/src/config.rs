//! The detection config file: what a scheduled job would otherwise repeat on
//! every command line (rule folders, the lists folder, parameter values).
//!
//! ```toml
//! rules = ["rules.d"]            # user rule folders, relative to this file
//! lists = "lists"                # folder of allowlists (NAME.txt -> list_NAME)
//!
//! [params."mail.constant_bcc"]
//! min_share = 0.5
//! ```
//!
//! Command-line `--rules`, `--lists` and `--param` add to and override it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::rule::{value_text, Rule};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    rules: Vec<PathBuf>,
    #[serde(default)]
    lists: Option<PathBuf>,
    #[serde(default)]
    params: BTreeMap<String, BTreeMap<String, toml::Value>>,
}

/// Rule folders, lists folder and parameter overrides, resolved.
#[derive(Debug, Clone, Default)]
pub struct DetectConfig {
    pub rule_dirs: Vec<PathBuf>,
    pub lists_dir: Option<PathBuf>,
    /// rule id -> parameter -> value text.
    pub params: BTreeMap<String, BTreeMap<String, String>>,
}

impl DetectConfig {
    /// Read a config file; relative paths are taken from the file's folder.
    pub fn load(path: &Path) -> Result<DetectConfig, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read the config file: {e}", path.display()))?;
        let f: ConfigFile = toml::from_str(&text).map_err(|e| format!("{}: not a valid config file: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        Ok(DetectConfig {
            rule_dirs: f.rules.into_iter().map(resolve).collect(),
            lists_dir: f.lists.map(resolve),
            params: f.params.into_iter().map(|(r, m)| (r, m.iter().map(|(k, v)| (k.clone(), value_text(v))).collect())).collect(),
        })
    }

    /// Parse `RULE_ID.NAME=VALUE` texts (from `--param`) over the config's values.
    pub fn add_param_texts(&mut self, texts: &[String]) -> Result<(), String> {
        for p in texts {
            let (k, v) = p.split_once('=').ok_or_else(|| format!("--param {p:?}: expected RULE_ID.NAME=VALUE"))?;
            let (rule, name) = k.rsplit_once('.').ok_or_else(|| format!("--param {p:?}: expected RULE_ID.NAME=VALUE"))?;
            self.params.entry(rule.to_string()).or_default().insert(name.to_string(), v.to_string());
        }
        Ok(())
    }

    /// Every parameter names a known rule and one of its parameters, with a
    /// value of the right type: checked before anything runs.
    pub fn check_params(&self, rules: &[Rule]) -> Result<(), String> {
        for (rule_id, values) in &self.params {
            let rule = rules.iter().find(|r| &r.id == rule_id).ok_or_else(|| {
                let known: Vec<_> = rules.iter().map(|r| r.id.as_str()).collect();
                format!("parameter for unknown rule {rule_id:?}; known rules: {}", known.join(", "))
            })?;
            rule.bound_params(values)?;
        }
        Ok(())
    }
}

/// Everything a detection run needs, loaded and checked.
#[derive(Debug, Clone)]
pub struct RuleSetup {
    pub rules: Vec<Rule>,
    pub lists: crate::Lists,
    pub params: BTreeMap<String, BTreeMap<String, String>>,
}

impl DetectConfig {
    /// Load the rules (embedded, then the folders), the lists, and check the
    /// parameters against the rules.
    pub fn setup(&self) -> Result<RuleSetup, String> {
        let rules = crate::rule::load_rules(&self.rule_dirs)?;
        let lists = match &self.lists_dir {
            Some(d) => crate::Lists::load_dir(d)?,
            None => crate::Lists::default(),
        };
        self.check_params(&rules)?;
        Ok(RuleSetup { rules, lists, params: self.params.clone() })
    }
}
