//! Running a rule's fixtures: each fixture's raw logs are ingested into a
//! fresh temporary lake exactly as a user's logs would be (format detection,
//! the same parsers), then the rule runs with the fixture's parameters and
//! lists, and the outcome is compared with what the fixture expects.
//!
//! `cargo test` runs the fixtures of every embedded rule; `mcp-forensics
//! rules test [DIR]` runs them for user rules too, without a rebuild.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mcpf_lake::{IngestOptions, Lake};

use crate::rule::{value_text, Expect, Rule, RuleTest};
use crate::{DetectOptions, Engine, Lists};

/// The result of one fixture.
#[derive(Debug, Clone)]
pub struct TestOutcome {
    pub rule_id: String,
    pub test: String,
    pub expect: Expect,
    pub passed: bool,
    /// What went wrong, or what the rule found.
    pub message: String,
}

/// A fixture file name must be a plain name: fixtures cannot write outside
/// their temporary folder.
fn safe_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}

fn run_one(rule: &Rule, t: &RuleTest) -> Result<String, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("cannot create a temporary folder: {e}"))?;
    let mut inputs: Vec<PathBuf> = Vec::new();
    for (name, text) in &t.files {
        if !safe_name(name) {
            return Err(format!("fixture file name {name:?} must be a plain file name"));
        }
        let p = dir.path().join(name);
        std::fs::write(&p, text).map_err(|e| format!("cannot write {name}: {e}"))?;
        inputs.push(p);
    }
    if !t.paths.is_empty() {
        if rule.origin.starts_with("embedded:") {
            return Err("embedded rules give fixtures inline (files = ...), not as paths".into());
        }
        let base = Path::new(&rule.origin).parent().unwrap_or(Path::new("."));
        for p in &t.paths {
            let path = base.join(p);
            if !path.exists() {
                return Err(format!("fixture path {} does not exist (paths are relative to the rule file)", path.display()));
            }
            inputs.push(path);
        }
    }
    let lake = Lake::open(dir.path().join("lake")).map_err(|e| e.to_string())?;
    let summary = lake.ingest(&inputs, &IngestOptions { format: None, year: t.year, ..Default::default() }).map_err(|e| e.to_string())?;
    let unrecognized: Vec<String> = summary.sources.iter().filter(|s| s.format.is_none()).map(|s| s.path.file_name().unwrap_or_default().to_string_lossy().to_string()).collect();
    if !unrecognized.is_empty() {
        return Err(format!("no parser recognized fixture file(s) {}; name them like the logs they imitate (mail.log, *.jsonl, mcp-server-NAME.log, ...)", unrecognized.join(", ")));
    }
    let mut lists = Lists::default();
    for (name, entries) in &t.lists {
        lists.add(name, &format!("fixture:{}", t.name), entries.iter().map(String::as_str));
    }
    let mut opts = DetectOptions::default();
    let params: BTreeMap<String, String> = t.params.iter().map(|(k, v)| (k.clone(), value_text(v))).collect();
    opts.params.insert(rule.id.clone(), params);
    let findings = lake
        .block_on(async {
            let engine = Engine::open(&lake).await?;
            engine.register_lists(std::slice::from_ref(rule), &lists)?;
            engine.run_rule(rule, &opts).await
        })
        .map_err(|e| e.to_string())?;
    let mut keys: Vec<String> = findings.iter().map(|f| f.key.clone()).collect();
    keys.sort();
    match t.expect {
        Expect::Silent if !keys.is_empty() => Err(format!("expected no finding, got {}: {}", keys.len(), keys.join(" | "))),
        Expect::Silent => Ok("silent".into()),
        Expect::Fire if keys.is_empty() => Err("expected a finding, got none".into()),
        Expect::Fire => match &t.keys {
            Some(want) => {
                let mut want = want.clone();
                want.sort();
                if want == keys {
                    Ok(format!("fired: {}", keys.join(" | ")))
                } else {
                    Err(format!("expected keys {want:?}, got {keys:?}"))
                }
            }
            None => Ok(format!("fired: {}", keys.join(" | "))),
        },
    }
}

/// Run every fixture of a rule.
pub fn run_rule_tests(rule: &Rule) -> Vec<TestOutcome> {
    rule.tests
        .iter()
        .map(|t| {
            let r = run_one(rule, t);
            TestOutcome {
                rule_id: rule.id.clone(),
                test: t.name.clone(),
                expect: t.expect,
                passed: r.is_ok(),
                message: r.unwrap_or_else(|e| e),
            }
        })
        .collect()
}

/// Fixture coverage problems of a rule: every rule needs at least one
/// positive and one negative fixture.
pub fn coverage_problems(rule: &Rule) -> Option<String> {
    let fire = rule.tests.iter().any(|t| t.expect == Expect::Fire);
    let silent = rule.tests.iter().any(|t| t.expect == Expect::Silent);
    match (fire, silent) {
        (true, true) => None,
        (false, true) => Some(format!("{}: no positive fixture (expect = \"fire\")", rule.id)),
        (true, false) => Some(format!("{}: no negative fixture (expect = \"silent\")", rule.id)),
        (false, false) => Some(format!("{}: no fixtures ([[tests]] with expect = \"fire\" and \"silent\")", rule.id)),
    }
}
