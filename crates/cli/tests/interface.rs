//! The responder's interface, tried through the real binary as a new user
//! would: re-reading a source ingested with the wrong year (`--force`) and
//! dropping one (`forget`); `sql` that prints a screenful and the total; SQL
//! errors said once, with the position and the real names; no progress
//! display in a pipe, JSON progress for scheduled jobs; `--output`,
//! `--min-severity`, completions, the man page and `stats`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_mcp-forensics");

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).env_remove("MCPF_FAILPOINT").env_remove("NO_COLOR").output().unwrap()
}

fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(o.status.success(), "{args:?}: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Tables of rows read from sources (everything but the runs' own records).
const DATA_TABLES: [&str; 11] =
    ["mcp_messages", "mcp_sessions", "mcp_server_configs", "tool_calls", "intended_recipients", "call_message_ids", "tool_definitions", "mail_deliveries", "mail_messages", "mail_events", "_rejects"];

/// Every row of every data table but the id of the run that wrote it, sorted.
fn contents(lake: &Path) -> Vec<String> {
    let l = lake.to_str().unwrap();
    let mut all = Vec::new();
    for t in DATA_TABLES {
        let text = ok(&["sql", "--lake", l, "--format", "jsonl", &format!("SELECT '{t}' AS t, * EXCLUDE (ingest_id) FROM {t}")]);
        all.extend(text.lines().map(str::to_string));
    }
    all.sort();
    all
}

/// The findings without anything that names the run.
fn findings(lake: &Path) -> Vec<String> {
    let text = ok(&["detect", "--lake", lake.to_str().unwrap(), "--format", "jsonl"]);
    let mut out: Vec<String> = text.lines().map(str::to_string).collect();
    out.sort();
    out
}

fn samples() -> Vec<String> {
    ["sample-logs/postfix", "sample-logs/mcp", "sample-logs/postmark"].iter().map(|p| repo().join(p).display().to_string()).collect()
}

fn ingest(lake: &Path, year: &str, extra: &[&str]) -> Output {
    let mut args = vec!["ingest", "--lake", lake.to_str().unwrap(), "--year", year];
    args.extend_from_slice(extra);
    let inputs = samples();
    args.extend(inputs.iter().map(String::as_str));
    run(&args)
}

#[test]
fn force_after_a_wrong_year_leaves_the_lake_as_if_the_right_year_came_first() {
    let dir = tempfile::tempdir().unwrap();
    let (wrong, right) = (dir.path().join("wrong"), dir.path().join("right"));
    assert!(ingest(&wrong, "2019", &[]).status.success());
    assert!(ingest(&right, "2026", &[]).status.success());
    let before = contents(&wrong);
    assert_ne!(before, contents(&right), "the year must matter for this test to mean anything");

    // Without --force the same files are "already ingested" and nothing changes.
    let again = ingest(&wrong, "2026", &[]);
    assert!(stderr(&again).contains("already ingested"), "{}", stderr(&again));
    assert_eq!(contents(&wrong), before);

    let forced = ingest(&wrong, "2026", &["--force"]);
    assert!(forced.status.success(), "{}", stderr(&forced));
    assert!(stderr(&forced).contains("--force: removed the"), "{}", stderr(&forced));
    assert_eq!(contents(&wrong), contents(&right), "after --force the rows differ from a clean ingest with the right year");
    assert_eq!(findings(&wrong), findings(&right));

    // The earlier ingest is history, not gone: forgotten records name each replaced source.
    let l = wrong.to_str().unwrap();
    let log = ok(&["sql", "--lake", l, "--format", "csv", "SELECT status, count(*) FROM _ingest_log GROUP BY status ORDER BY status"]);
    let forgotten: u64 = log.lines().find_map(|r| r.strip_prefix("forgotten,")).and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(forgotten >= 3, "{log}");
    // And a plain re-run adds nothing.
    assert!(stderr(&ingest(&wrong, "2026", &[])).contains("0 new"));
    assert_eq!(contents(&wrong), contents(&right));
}

#[test]
fn forget_drops_a_sources_rows_in_one_run_and_the_next_ingest_reads_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let l = lake.to_str().unwrap();
    assert!(ingest(&lake, "2026", &[]).status.success());
    let full = contents(&lake);
    let mail_log = repo().join("sample-logs/postfix/mail.log").display().to_string();
    let sha = ok(&["sql", "--lake", l, "--format", "csv", "--param", &format!("f={mail_log}"), "SELECT source_sha256 FROM _ingest_log WHERE source_file = $f"]);
    let sha = sha.lines().nth(1).unwrap().to_string();

    // By its sha256 prefix: every row of that file goes, the other sources' stay.
    let out = ok(&["forget", "--lake", l, "--source", &sha[..16], "--format", "json"]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["sources"][0]["source_file"], serde_json::json!(mail_log), "{out}");
    let left = contents(&lake);
    assert!(left.len() < full.len());
    assert!(left.iter().all(|r| !r.contains(&format!("\"source_file\":\"{mail_log}\""))), "rows of the forgotten file are left");
    let removed: u64 = report["sources"][0]["rows_removed"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(removed as usize, full.len() - left.len(), "{out}");
    // verify no longer checks it; the next ingest reads it again and the lake is whole.
    assert!(!ok(&["verify", "--lake", l]).contains("postfix/mail.log"));
    let again = ingest(&lake, "2026", &[]);
    assert!(stderr(&again).contains("1 new"), "{}", stderr(&again));
    assert_eq!(contents(&lake), full);

    // A name the lake does not hold says how to list the real ones.
    let o = run(&["forget", "--lake", l, "--source", "no/such.log"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("SELECT DISTINCT source_file"), "{}", stderr(&o));
}

fn sample_lake(dir: &Path) -> PathBuf {
    let lake = dir.join("lake");
    assert!(ingest(&lake, "2026", &[]).status.success());
    lake
}

#[test]
fn sql_shows_a_bounded_table_and_the_total() {
    let dir = tempfile::tempdir().unwrap();
    let lake = sample_lake(dir.path());
    let l = lake.to_str().unwrap();
    let total: u64 = ok(&["sql", "--lake", l, "--format", "csv", "SELECT count(*) FROM mail_deliveries"]).lines().nth(1).unwrap().parse().unwrap();
    assert!(total > 40, "the sample must hold more rows than a screenful ({total})");
    let table = ok(&["sql", "--lake", l, "SELECT * FROM mail_deliveries"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2 + 40 + 1, "header, rule, 40 rows, footer:\n{table}");
    assert_eq!(*lines.last().unwrap(), format!("({total} rows, 40 shown; --limit N or --all for more, --format csv|jsonl for every row)"));
    assert_eq!(ok(&["sql", "--lake", l, "--limit", "5", "SELECT * FROM mail_deliveries"]).lines().count(), 2 + 5 + 1);
    assert_eq!(ok(&["sql", "--lake", l, "--all", "SELECT * FROM mail_deliveries"]).lines().count() as u64, 2 + total + 1);
    // Machine formats print every row unless a limit is given.
    assert_eq!(ok(&["sql", "--lake", l, "--format", "jsonl", "SELECT * FROM mail_deliveries"]).lines().count() as u64, total);
    assert_eq!(ok(&["sql", "--lake", l, "--format", "jsonl", "--limit", "3", "SELECT * FROM mail_deliveries"]).lines().count(), 3);
    assert!(ok(&["sql", "--lake", l, "SELECT * FROM mail_deliveries WHERE false"]).contains("(0 rows)"));
}

#[test]
fn sql_errors_are_said_once_with_the_position_and_the_real_names() {
    let dir = tempfile::tempdir().unwrap();
    let lake = sample_lake(dir.path());
    let l = lake.to_str().unwrap();
    let o = run(&["sql", "--lake", l, "SELECT (recipient FROM mail_deliveries"]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(e.matches("SQL").count(), 1, "{e}");
    assert!(e.contains("at line 1, column 19") && e.contains("    SELECT (recipient FROM mail_deliveries\n                      ^") && !e.contains("ParserError"), "{e}");
    let e = stderr(&run(&["sql", "--lake", l, "SELECT * FROM mail_delivery"]));
    assert!(e.contains("did you mean mail_deliveries?") && e.contains("tool_calls") && e.contains("_ingest_log"), "{e}");
    let e = stderr(&run(&["sql", "--lake", l, "SELECT recipent FROM mail_deliveries"]));
    assert!(e.contains("Did you mean 'mail_deliveries.recipient'?") && e.matches("SQL error").count() == 1 && !e.contains("Schema error"), "{e}");
}

#[test]
fn the_format_list_comes_from_the_parser_registry() {
    // A wrong name lists every parser; help lists the same names.
    let o = run(&["ingest", "--lake", "x", "--format", "nope", "y"]);
    let e = stderr(&o);
    let listed: Vec<String> = e.split("possible values: ").nth(1).expect(&e).lines().next().unwrap().split(", ").map(|s| s.trim().to_string()).collect();
    assert!(listed.len() >= 20 && listed.iter().any(|f| f == "sendmail") && listed.iter().any(|f| f == "postfix"), "{e}");
    let help = ok(&["ingest", "--help"]);
    for f in &listed {
        assert!(help.contains(f.as_str()), "ingest --help does not list {f}");
    }
}

#[test]
fn no_progress_in_a_pipe_and_json_progress_for_scheduled_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let o = ingest(&lake, "2026", &[]);
    let e = stderr(&o);
    assert!(!e.contains('\r') && !e.contains('\x1b'), "a pipe got terminal control: {e:?}");
    assert!(e.starts_with("ingest ") || e.contains("\ningest "), "{e}");

    let json_lake = dir.path().join("json");
    let o = ingest(&json_lake, "2026", &["--progress-json"]);
    assert!(o.status.success());
    let progress: Vec<serde_json::Value> = stderr(&o).lines().map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}"))).collect();
    let last = progress.last().expect("at least the final progress record");
    assert_eq!(last["event"], "progress");
    assert_eq!(last["bytes_done"], last["bytes_total"], "{last}");
    assert!(last["lines"].as_u64().unwrap() > 0 && last["sources_done"] == last["sources_total"], "{last}");
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["files"]["new"].as_u64(), summary["files"]["total"].as_u64());
    let l = &summary["lines"];
    assert_eq!(l["total"].as_u64().unwrap(), l["parsed"].as_u64().unwrap() + l["rejected"].as_u64().unwrap() + l["skipped"].as_u64().unwrap());
    assert_eq!(last["lines"], l["total"], "the progress line count is the summary's");

    // A detection run in a pipe shows no spinner either.
    let d = run(&["detect", "--lake", lake.to_str().unwrap()]);
    assert!(d.status.success() && d.stderr.is_empty(), "{}", stderr(&d));

    let quiet = run(&["ingest", "--lake", dir.path().join("q").to_str().unwrap(), "--quiet", "--year", "2026", &samples()[0]]);
    assert!(quiet.status.success() && quiet.stderr.is_empty(), "{}", stderr(&quiet));
}

#[test]
fn output_file_min_severity_and_colors() {
    let dir = tempfile::tempdir().unwrap();
    let lake = sample_lake(dir.path());
    let l = lake.to_str().unwrap();
    let all: Vec<serde_json::Value> = ok(&["detect", "--lake", l, "--format", "jsonl"]).lines().map(|x| serde_json::from_str(x).unwrap()).collect();
    let high: Vec<serde_json::Value> = ok(&["detect", "--lake", l, "--format", "jsonl", "--min-severity", "high"]).lines().map(|x| serde_json::from_str(x).unwrap()).collect();
    assert!(!high.is_empty() && high.len() < all.len());
    assert!(high.iter().all(|f| f["severity"] == "high" || f["severity"] == "critical"));
    let expected: Vec<&serde_json::Value> = all.iter().filter(|f| f["severity"] == "high" || f["severity"] == "critical").collect();
    assert_eq!(high.iter().collect::<Vec<_>>(), expected);

    let file = dir.path().join("findings.csv");
    let o = run(&["detect", "--lake", l, "--format", "csv", "--output", file.to_str().unwrap()]);
    assert!(o.status.success() && o.stdout.is_empty());
    assert!(std::fs::read_to_string(&file).unwrap().contains("phan@giftshop.club"));

    // A pipe gets no color unless asked for; NO_COLOR wins over auto only.
    assert!(!ok(&["detect", "--lake", l]).contains('\x1b'));
    assert!(ok(&["detect", "--lake", l, "--color", "always"]).contains("\x1b[31m[HIGH]"));
}

#[test]
fn completions_man_page_and_stats() {
    let bash = ok(&["completions", "bash"]);
    assert!(bash.contains("mcp-forensics") && bash.contains("--lake") && bash.contains("forget"));
    assert!(ok(&["completions", "zsh"]).contains("#compdef mcp-forensics"));
    let man = ok(&["man"]);
    assert!(man.starts_with(".ie") || man.contains(".TH mcp-forensics"), "{}", &man[..200.min(man.len())]);
    assert!(man.contains("ingest") && man.contains("stats"));

    let dir = tempfile::tempdir().unwrap();
    let lake = sample_lake(dir.path());
    let l = lake.to_str().unwrap();
    let text = ok(&["stats", "--lake", l]);
    for head in ["== events per day", "== events per host", "== MCP servers", "== envelope senders"] {
        assert!(text.contains(head), "{text}");
    }
    // The sender view counts what mail_deliveries holds per sender.
    let senders: Vec<serde_json::Value> = ok(&["stats", "--lake", l, "--by", "sender", "--format", "jsonl", "--top", "100"]).lines().map(|x| serde_json::from_str(x).unwrap()).collect();
    let total: u64 = senders.iter().map(|s| s["deliveries"].as_u64().unwrap()).sum();
    let direct: u64 = ok(&["sql", "--lake", l, "--format", "csv", "SELECT count(*) FROM mail_deliveries WHERE notification_of IS NULL"]).lines().nth(1).unwrap().parse().unwrap();
    assert_eq!(total, direct);
    let top1 = ok(&["stats", "--lake", l, "--by", "sender", "--format", "jsonl", "--top", "1"]);
    assert_eq!(top1.lines().count(), 1);
}

#[test]
fn force_never_replaces_rows_with_nothing_when_the_source_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let log = dir.path().join("mail.log");
    std::fs::copy(repo().join("sample-logs/postfix/mail.log"), &log).unwrap();
    let l = lake.to_str().unwrap();
    assert!(run(&["ingest", "--lake", l, "--year", "2026", log.to_str().unwrap()]).status.success());
    let before = contents(&lake);
    std::fs::remove_file(&log).unwrap();
    let o = run(&["ingest", "--lake", l, "--year", "2026", "--force", log.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(!stderr(&o).contains("--force: removed"), "{}", stderr(&o));
    assert_eq!(contents(&lake), before, "a missing source's rows were dropped by --force");
}

#[test]
fn a_failed_command_never_empties_an_earlier_output_file() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.txt");
    std::fs::write(&report, "yesterday's findings\n").unwrap();
    let o = run(&["detect", "--lake", dir.path().join("no-lake").to_str().unwrap(), "-o", report.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(std::fs::read_to_string(&report).unwrap(), "yesterday's findings\n");
    // Success replaces it whole; no temporary file stays behind.
    let lake = sample_lake(dir.path());
    assert!(run(&["stats", "--lake", lake.to_str().unwrap(), "--by", "day", "--format", "csv", "-o", report.to_str().unwrap()]).status.success());
    assert!(std::fs::read_to_string(&report).unwrap().starts_with("date,mail_deliveries"));
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(left.len(), 2, "{left:?}");
    // A machine format of stats is one view at a time.
    let o = run(&["stats", "--lake", lake.to_str().unwrap(), "--format", "json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("add --by"), "{}", stderr(&o));
}

#[test]
fn timeline_shows_a_bounded_table_and_forget_knows_a_file_by_any_name() {
    let dir = tempfile::tempdir().unwrap();
    let lake = sample_lake(dir.path());
    let l = lake.to_str().unwrap();
    let all = ok(&["timeline", "--lake", l, "--entity", "phan@giftshop.club", "--format", "jsonl"]).lines().count();
    assert!(all > 5);
    let table = ok(&["timeline", "--lake", l, "--entity", "phan@giftshop.club", "--limit", "5"]);
    assert_eq!(table.lines().count(), 2 + 5 + 1, "{table}");
    assert!(table.ends_with(&format!("({all} events, the first 5 shown; --limit N or --all for more, --format csv|jsonl for every event)\n")), "{table}");
    assert_eq!(ok(&["timeline", "--lake", l, "--entity", "phan@giftshop.club", "--all"]).lines().count(), 2 + all + 1);

    // Ingest recorded the absolute path; a relative name of the same file is that source.
    let rel = Command::new(BIN).current_dir(repo()).args(["forget", "--lake", l, "--source", "sample-logs/postfix/mail.log", "--format", "json"]).output().unwrap();
    assert!(rel.status.success(), "{}", stderr(&rel));
    let report: serde_json::Value = serde_json::from_slice(&rel.stdout).unwrap();
    assert_eq!(report["sources"][0]["source_file"], serde_json::json!(repo().join("sample-logs/postfix/mail.log").display().to_string()));
    // A prefix too short to be unique is said to be that.
    let o = run(&["forget", "--lake", l, "--source", "0546e70"]);
    assert!(stderr(&o).contains("12 or more hex digits"), "{}", stderr(&o));
}
