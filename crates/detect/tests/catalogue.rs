//! The rule catalogue as a whole: every rule carries a positive and a negative
//! fixture and passes them; user rule folders override and report broken
//! files by name; scheduled runs see each finding once; the whole catalogue
//! stays quiet on the benign traffic of the bundled incident.

use std::path::{Path, PathBuf};

use mcpf_detect::fixtures::{coverage_problems, run_rule_tests};
use mcpf_detect::rule::Expect;
use mcpf_detect::{embedded_rules, load_rules, store, DetectConfig, DetectOptions, Engine, Finding, Lists};
use mcpf_lake::{IngestOptions, Lake};

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sample-logs")
}

#[test]
fn every_rule_has_fixtures_and_passes_them() {
    let rules = embedded_rules();
    assert!(rules.len() >= 13, "the catalogue lost rules: {}", rules.len());
    let mut failures = Vec::new();
    for r in &rules {
        if let Some(p) = coverage_problems(r) {
            failures.push(p);
        }
        for t in run_rule_tests(r) {
            if !t.passed {
                failures.push(format!("{} :: {} [{:?}]: {}", t.rule_id, t.test, t.expect, t.message));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_fixture_that_expects_the_wrong_thing_fails() {
    // The runner must be able to fail: flip a positive fixture to silent.
    let mut r = embedded_rules().into_iter().find(|r| r.id == "mail.unintended_recipient").unwrap();
    let t = r.tests.iter_mut().find(|t| t.expect == Expect::Fire).unwrap();
    t.expect = Expect::Silent;
    t.keys = None;
    let out = run_rule_tests(&r);
    assert!(out.iter().any(|o| !o.passed && o.message.contains("expected no finding")), "{out:?}");
}

const USER_RULE: &str = r#"
id = "corp.mail_to_webmail"
title = "Agent mail to a free webmail domain"
severity = "low"
description = "Mail to consumer webmail from the agent."
[parameters.domains]
type = "string"
default = "gmail.example|mail.example"
description = "Regex of webmail domains."
[query]
sql = """
SELECT recipient AS key, ts, recipient AS unit, recipient AS address, sender, CAST(NULL AS VARCHAR) AS server,
       CAST(NULL AS VARCHAR) AS version, CAST(NULL AS VARCHAR) AS session, 'webmail' AS detail,
       'mail_deliveries' AS evidence_table, source_file, source_line, source_offset
FROM mail_deliveries WHERE regexp_like(recipient_domain, concat('^(', $domains, ')$'))
"""
[[tests]]
name = "webmail"
expect = "fire"
[tests.files]
"mail.log" = '''
2026-03-01T10:01:01+00:00 mx postfix/qmgr[3]: AAAA000001: from=<agent@corp.example>, size=100, nrcpt=1 (queue active)
2026-03-01T10:01:01+00:00 mx postfix/smtp[4]: AAAA000001: to=<me@gmail.example>, relay=mx.example.net[192.0.2.9]:25, delay=0.2, delays=0/0/0/0.2, dsn=2.0.0, status=sent (250 ok)
'''
[[tests]]
name = "business mail"
expect = "silent"
[tests.files]
"mail.log" = '''
2026-03-01T10:01:01+00:00 mx postfix/qmgr[3]: AAAA000001: from=<agent@corp.example>, size=100, nrcpt=1 (queue active)
2026-03-01T10:01:01+00:00 mx postfix/smtp[4]: AAAA000001: to=<bob@partner.example>, relay=mx.example.net[192.0.2.9]:25, delay=0.2, delays=0/0/0/0.2, dsn=2.0.0, status=sent (250 ok)
'''
"#;

#[test]
fn user_rules_load_override_and_fail_by_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("webmail.toml"), USER_RULE).unwrap();
    // Override a built-in by id, with a tighter threshold in its own SQL.
    let builtin = embedded_rules().into_iter().find(|r| r.id == "mail.constant_bcc").unwrap();
    let overridden = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/mail.constant_bcc.toml"))
        .unwrap()
        .replace("title = \"An address silently copied on most of a sender's mail\"", "title = \"Local constant-Bcc rule\"");
    std::fs::write(dir.path().join("bcc.toml"), overridden).unwrap();
    let rules = load_rules(&[dir.path().to_path_buf()]).unwrap();
    assert_eq!(rules.len(), embedded_rules().len() + 1);
    let bcc = rules.iter().find(|r| r.id == builtin.id).unwrap();
    assert_eq!(bcc.title, "Local constant-Bcc rule");
    assert!(bcc.origin.ends_with("bcc.toml"));
    let web = rules.iter().find(|r| r.id == "corp.mail_to_webmail").unwrap();
    let out = run_rule_tests(web);
    assert!(out.iter().all(|o| o.passed), "{out:?}");

    // A broken file is named, with the problem.
    std::fs::write(dir.path().join("zz-broken.toml"), "id = \"x\"\ntitle = \"t\"\nseverity = \"urgent\"\n").unwrap();
    let e = load_rules(&[dir.path().to_path_buf()]).unwrap_err();
    assert!(e.contains("zz-broken.toml") && e.contains("severity"), "{e}");
    std::fs::write(dir.path().join("zz-broken.toml"), USER_RULE.replace("$domains, ')$'", "'x)$'")).unwrap();
    let e = load_rules(&[dir.path().to_path_buf()]).unwrap_err();
    assert!(e.contains("zz-broken.toml") && e.contains("never uses $domains"), "{e}");
}

#[test]
fn config_file_sets_params_lists_and_folders() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("lists")).unwrap();
    std::fs::write(dir.path().join("lists/recipient_allowlist.txt"), "corp.example\n").unwrap();
    std::fs::write(
        dir.path().join("mcpf.toml"),
        "lists = \"lists\"\n[params.\"mail.constant_bcc\"]\nmin_share = 0.5\nmin_messages = 3\n",
    )
    .unwrap();
    let mut cfg = DetectConfig::load(&dir.path().join("mcpf.toml")).unwrap();
    cfg.add_param_texts(&["mail.constant_bcc.min_messages=4".into()]).unwrap();
    let setup = cfg.setup().unwrap();
    assert_eq!(setup.params["mail.constant_bcc"]["min_share"], "0.5");
    assert_eq!(setup.params["mail.constant_bcc"]["min_messages"], "4", "the command line overrides the file");
    assert_eq!(setup.lists.lists["recipient_allowlist"][0].value, "corp.example");
    cfg.add_param_texts(&["mail.constant_bcc.min_share=lots".into()]).unwrap();
    assert!(cfg.setup().unwrap_err().contains("expected a number"));
    let mut cfg = DetectConfig::default();
    cfg.add_param_texts(&["no.such_rule.x=1".into()]).unwrap();
    assert!(cfg.setup().unwrap_err().contains("unknown rule"));
}

fn detect_all(lake: &Lake) -> (Vec<Finding>, store::Recorded) {
    lake.block_on(async {
        let e = Engine::open(lake).await.unwrap();
        e.register_lists(&embedded_rules(), &Lists::default()).unwrap();
        let f = e.detect(&embedded_rules(), &DetectOptions::default()).await.unwrap();
        let before = store::recorded(&e).await.unwrap();
        (f, before)
    })
}

#[test]
fn scheduled_runs_report_each_finding_once() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let lake = Lake::open(dir.path().join("lake")).unwrap();
    let day = |d: u32, extra: &str| -> String {
        let mut s = String::new();
        for i in 0..6 {
            let q = format!("ABC{d:02}{i:05}");
            s += &format!("2026-03-{d:02}T10:0{i}:00+00:00 mx postfix/qmgr[3]: {q}: from=<agent@corp.example>, size=100, nrcpt=2 (queue active)\n");
            s += &format!("2026-03-{d:02}T10:0{i}:01+00:00 mx postfix/smtp[4]: {q}: to=<client{d}{i}@c{i}.example>, relay=mx[192.0.2.9]:25, delay=0.2, delays=0/0/0/0.2, dsn=2.0.0, status=sent (250 ok)\n");
            s += &format!("2026-03-{d:02}T10:0{i}:01+00:00 mx postfix/smtp[4]: {q}: to=<{extra}>, relay=mx[192.0.2.9]:25, delay=0.2, delays=0/0/0/0.2, dsn=2.0.0, status=sent (250 ok)\n");
            s += &format!("2026-03-{d:02}T10:0{i}:02+00:00 mx postfix/qmgr[3]: {q}: removed\n");
        }
        s
    };
    // Night 1: one constant Bcc.
    std::fs::write(logs.join("mail.log"), day(1, "drop@exfil.example")).unwrap();
    lake.ingest(&[logs.clone()], &IngestOptions::default()).unwrap();
    let (f1, before) = detect_all(&lake);
    let new1 = store::only_new(f1.clone(), &before);
    assert_eq!(new1.iter().map(|f| f.key.as_str()).collect::<Vec<_>>(), ["drop@exfil.example <- agent@corp.example"]);
    assert_eq!(record(&lake, &f1, &before), 1);
    // Night 2: the log grew; the same Bcc continues and a second one starts.
    let mut grown = day(1, "drop@exfil.example");
    grown += &day(2, "drop@exfil.example");
    grown += &day(3, "other@leak.example");
    std::fs::write(logs.join("mail.log"), grown).unwrap();
    lake.ingest(&[logs.clone()], &IngestOptions::default()).unwrap();
    let (f2, before) = detect_all(&lake);
    let new2 = store::only_new(f2.clone(), &before);
    assert_eq!(new2.iter().map(|f| f.key.as_str()).collect::<Vec<_>>(), ["other@leak.example <- agent@corp.example"], "each finding once");
    // The old finding grew: its new count is recorded, not reported again.
    assert_eq!(record(&lake, &f2, &before), 2);
    // Night 3: nothing new, nothing recorded.
    let (f3, before) = detect_all(&lake);
    assert!(store::only_new(f3.clone(), &before).is_empty());
    assert_eq!(record(&lake, &f3, &before), 0);
    let old = f3.iter().find(|f| f.key.starts_with("drop@")).unwrap();
    assert_eq!(before[&old.finding_id].0, 12);
}

/// Record findings the way `detect --record` does: in a writer transaction.
fn record(lake: &Lake, findings: &[mcpf_detect::Finding], before: &store::Recorded) -> usize {
    lake.write("detect", &store::run_id(findings), None, |txn| store::record(lake, txn, findings, before)).unwrap()
}

#[test]
fn verify_reports_a_one_byte_edit_truncation_and_deletion() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    for (i, name) in ["a.log", "b.log", "c.log", "d.log"].iter().enumerate() {
        // Different content each: identical copies are recognized and ingested once.
        std::fs::write(logs.join(name), format!("2026-03-01T10:01:0{i}+00:00 mx postfix/qmgr[3]: AAAA00000{i}: removed\n2026-03-01T10:01:02+00:00 mx postfix/qmgr[3]: AAAA000009: removed\n")).unwrap();
    }
    let lake = Lake::open(dir.path().join("lake")).unwrap();
    lake.ingest(&[logs.clone()], &IngestOptions::default()).unwrap();
    let state = |lake: &Lake| -> Vec<(String, String)> {
        lake.verify(None).unwrap().into_iter().map(|c| (Path::new(&c.source_file).file_name().unwrap().to_string_lossy().to_string(), c.state.name().to_string())).collect()
    };
    assert!(state(&lake).iter().all(|(_, s)| s == "unchanged"));
    // One byte changed in place, same length.
    let mut b = std::fs::read(logs.join("a.log")).unwrap();
    b[40] = b'X';
    std::fs::write(logs.join("a.log"), b).unwrap();
    // Appended: intact.
    std::fs::OpenOptions::new().append(true).open(logs.join("b.log")).and_then(|mut f| std::io::Write::write_all(&mut f, b"more\n")).unwrap();
    std::fs::write(logs.join("c.log"), "short\n").unwrap();
    std::fs::remove_file(logs.join("d.log")).unwrap();
    assert_eq!(
        state(&lake),
        [("a.log".into(), "modified".into()), ("b.log".into(), "grown".into()), ("c.log".into(), "truncated".into()), ("d.log".into(), "missing".into())]
    );
}

#[test]
fn whole_catalogue_on_the_bundled_incident_flags_only_the_attack() {
    let s = samples();
    if !s.join("manifest.json").exists() {
        eprintln!("skipped: {} not found", s.display());
        return;
    }
    let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(s.join("manifest.json")).unwrap()).unwrap();
    let attacker = manifest["attacker"].as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().join("lake")).unwrap();
    let year = manifest["year"].as_i64().map(|y| y as i32);
    lake.ingest(&[s.join("mcp"), s.join("postfix"), s.join("postmark")], &IngestOptions { format: None, year, ..Default::default() }).unwrap();
    let (findings, _) = detect_all(&lake);
    assert_eq!(mcpf_detect::materialize::fallbacks(), 0, "a rule's CTE rewrite failed and ran as written");
    let rules: std::collections::BTreeSet<&str> = findings.iter().map(|f| f.rule_id.as_str()).collect();
    for must in ["mail.unintended_recipient", "mail.constant_bcc", "mail.new_recipient_after_change", "mcp.server_version_change"] {
        assert!(rules.contains(must), "{must} missing: {rules:?}");
    }
    for f in &findings {
        match &f.address {
            Some(a) => assert_eq!(a, &attacker, "a benign address was flagged: {f:#?}"),
            None => assert_eq!(f.rule_id, "mcp.server_version_change", "unexpected finding: {f:#?}"),
        }
    }
}
