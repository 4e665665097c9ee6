//! Evidence integrity under crashes, overlapping jobs and growing logs, tried
//! through the real binary as a scheduled job would run it:
//! - SIGKILL and aborts at every commit point never change what readers see,
//!   and a re-run then equals one clean ingest;
//! - overlapping ingests (different logs, or the same logs twice) land every
//!   row exactly once;
//! - a log appended while it is read is neither duplicated nor lost;
//! - two `detect --new-only` at once report each finding once;
//! - a folder that is not a lake is an error, never "no findings";
//! - SQL is read-only.
//!
//! Crash points are set with `MCPF_FAILPOINT` (see `mcpf_lake::failpoint`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mcp-forensics");

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn cli(args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args).env_remove("MCPF_FAILPOINT");
    c
}

fn run(args: &[&str]) -> Output {
    cli(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A Postfix log of `messages` messages with 2 recipients each, ids from `tag`.
fn postfix_log(messages: usize, tag: u32) -> String {
    postfix_messages(0, messages, tag)
}

/// Messages `from..from + n` of [`postfix_log`].
fn postfix_messages(from: usize, n: usize, tag: u32) -> String {
    let mut s = String::new();
    for i in from..from + n {
        let q = format!("{:X}{:07X}", tag, i);
        let t = format!("2026-03-{:02}T{:02}:{:02}:{:02}+00:00", 1 + (i / 86_400) % 28, (i / 3600) % 24, (i / 60) % 60, i % 60);
        s += &format!("{t} mx postfix/smtpd[1]: {q}: client=agent-host[10.0.0.5]\n");
        s += &format!("{t} mx postfix/cleanup[2]: {q}: message-id=<m{i}.{tag}@corp.example>\n");
        s += &format!("{t} mx postfix/qmgr[3]: {q}: from=<agent{}@corp.example>, size=900, nrcpt=2 (queue active)\n", i % 7);
        for r in 0..2 {
            s += &format!("{t} mx postfix/smtp[4]: {q}: to=<r{r}.{}@dest{}.example>, relay=mx.dest.example[192.0.2.1]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)\n", i % 50, i % 13);
        }
        s += &format!("{t} mx postfix/qmgr[3]: {q}: removed\n");
    }
    s
}

/// What a lake holds, table by table: rows, and sums of provenance that any
/// lost or duplicated row changes.
fn state(lake: &Path) -> String {
    let q = ["mail_deliveries", "mcp_messages", "tool_calls", "_rejects", "_ingest_log"]
        .iter()
        .map(|t| format!("SELECT '{t}' AS t, count(*) AS n, coalesce(sum(source_offset), 0) AS o, coalesce(sum(source_line), 0) AS l, count(DISTINCT source_file) AS f FROM {t}"))
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
        + " ORDER BY t";
    let o = run(&["sql", "--lake", lake.to_str().unwrap(), "--format", "csv", &q]);
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn ingest(lake: &Path, inputs: &[&Path]) -> Output {
    let mut args = vec!["ingest".to_string(), "--lake".into(), lake.display().to_string(), "--year".into(), "2026".into()];
    args.extend(inputs.iter().map(|p| p.display().to_string()));
    cli(&args.iter().map(String::as_str).collect::<Vec<_>>()).output().unwrap()
}

fn spawn_ingest(lake: &Path, inputs: &[&Path], failpoint: Option<&str>) -> std::process::Child {
    let mut c = cli(&["ingest", "--lake", lake.to_str().unwrap(), "--year", "2026"]);
    c.args(inputs).stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(f) = failpoint {
        c.env("MCPF_FAILPOINT", f);
    }
    c.spawn().unwrap()
}

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture { dir: tempfile::tempdir().unwrap() }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }
}

/// A small xorshift generator: the test prints its seed so a failure can be replayed.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn parquet_files(dir: &Path) -> usize {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(d) else { continue };
        for e in rd.flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else if e.path().extension().is_some_and(|x| x == "parquet") {
                n += 1;
            }
        }
    }
    n
}

#[test]
fn kills_at_any_point_never_change_what_readers_see_and_a_rerun_equals_one_clean_ingest() {
    let fx = Fixture::new();
    let logs = fx.path("logs");
    fx.file("logs/postfix/mail.log", &postfix_log(6000, 1));
    fx.file("logs/postfix/mail.log.1", &postfix_log(300, 2));
    let samples = repo().join("sample-logs");
    let mcp = samples.join("mcp");
    let clean = fx.path("clean");
    let o = ingest(&clean, &[&logs, &mcp]);
    assert!(o.status.success(), "{}", text(&o));
    let want = state(&clean);
    let clean_files = parquet_files(&clean);

    // An empty lake's state, as readers must see it until a run completes.
    let lake = fx.path("lake");
    let empty_dir = fx.path("empty-logs");
    std::fs::create_dir_all(&empty_dir).unwrap();
    assert!(ingest(&lake, &[&empty_dir]).status.success());
    let empty = state(&lake);

    // Deterministic crashes at every commit point of the run.
    let points = [
        "ingest-after-open",
        "ingest-after-fingerprint",
        "ingest-before-commit",
        "ingest-after-commit-mail_deliveries",
        "ingest-after-commit-mcp_messages",
        "ingest-after-commit-_rejects",
        "ingest-after-commit-_ingest_log",
        "ingest-before-publish",
    ];
    for p in points {
        let out = spawn_ingest(&lake, &[&logs, &mcp], Some(p)).wait_with_output().unwrap();
        assert!(!out.status.success(), "{p}: the failpoint did not fire: {}", text(&out));
        assert_eq!(state(&lake), empty, "after a crash at {p}, readers see rows of the dead run");
    }

    // Random SIGKILLs across parsing and committing.
    let t0 = Instant::now();
    assert!(ingest(&fx.path("timing"), &[&logs, &mcp]).status.success());
    let full_ms = t0.elapsed().as_millis() as u64;
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    eprintln!("random kills: seed {seed}, a clean run takes {full_ms} ms");
    let mut rng = Rng(seed);
    let mut completed = 0;
    for i in 0..20 {
        let mut child = spawn_ingest(&lake, &[&logs, &mcp], None);
        std::thread::sleep(Duration::from_millis(rng.below(full_ms + 200)));
        let _ = child.kill(); // SIGKILL
        let out = child.wait_with_output().unwrap();
        let seen = state(&lake);
        if out.status.success() {
            completed += 1;
        }
        assert!(seen == empty || seen == want, "kill {i} (seed {seed}): readers see a partial run:\n{seen}\nwant either\n{empty}\nor\n{want}");
    }
    eprintln!("{completed} of 20 killed runs had completed before the kill");

    // A re-run finishes the job; the lake equals one clean ingest.
    let o = ingest(&lake, &[&logs, &mcp]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(state(&lake), want);
    // No data file of a dead run is left for read_parquet/pandas to count.
    // (Recovery rollbacks add no data file; the empty run's lake had none.)
    assert_eq!(parquet_files(&lake), clean_files, "stray Parquet files are left in the lake folder");
}

#[test]
fn overlapping_ingests_of_different_logs_both_land() {
    let fx = Fixture::new();
    let a = fx.file("a/mail.log", &postfix_log(3000, 3));
    let b = fx.file("b/mail.log", &postfix_log(500, 4));
    let (clean_a, clean_b, both) = (fx.path("clean-a"), fx.path("clean-b"), fx.path("both"));
    assert!(ingest(&clean_a, &[&a]).status.success());
    assert!(ingest(&clean_b, &[&b]).status.success());
    let rows = |lake: &Path| -> i64 {
        let o = run(&["sql", "--lake", lake.to_str().unwrap(), "--format", "csv", "SELECT count(*) FROM mail_deliveries"]);
        String::from_utf8_lossy(&o.stdout).lines().nth(1).unwrap().trim().parse().unwrap()
    };
    // The first run pauses between its data commit and its _ingest_log commit:
    // the window in which a second run used to "recover" its rows away.
    let first = spawn_ingest(&both, &[&a], Some("ingest-after-commit-mail_deliveries=sleep:2500"));
    std::thread::sleep(Duration::from_millis(800));
    let second = spawn_ingest(&both, &[&b], None);
    let (o1, o2) = (first.wait_with_output().unwrap(), second.wait_with_output().unwrap());
    assert!(o1.status.success(), "{}", text(&o1));
    assert!(o2.status.success(), "{}", text(&o2));
    assert!(!text(&o2).contains("recovered"), "the second run treated the first as dead: {}", text(&o2));
    assert!(text(&o2).contains("waiting for the lake's writers' lock"), "{}", text(&o2));
    assert_eq!(rows(&both), rows(&clean_a) + rows(&clean_b));
}

#[test]
fn the_same_logs_ingested_twice_at_once_land_once() {
    let fx = Fixture::new();
    let a = fx.file("a/mail.log", &postfix_log(12_000, 5));
    let (clean, lake) = (fx.path("clean"), fx.path("lake"));
    assert!(ingest(&clean, &[&a]).status.success());
    // Two overlapping cron jobs over the same logs, started together.
    let first = spawn_ingest(&lake, &[&a], None);
    let second = spawn_ingest(&lake, &[&a], None);
    let (o1, o2) = (first.wait_with_output().unwrap(), second.wait_with_output().unwrap());
    assert!(o1.status.success() && o2.status.success(), "{}\n{}", text(&o1), text(&o2));
    assert!(text(&o1).contains("1 already ingested") || text(&o2).contains("1 already ingested"), "{}\n{}", text(&o1), text(&o2));
    assert_eq!(state(&lake), state(&clean), "the second job duplicated the first one's rows");
}

#[test]
fn a_log_appended_while_it_is_read_is_neither_duplicated_nor_lost() {
    let fx = Fixture::new();
    // Messages are numbered; chunks of them are appended while ingest runs,
    // as syslog does to /var/log/mail.log under the nightly job.
    let log = fx.file("mail.log", &postfix_log(12_000, 6));
    let lake = fx.path("lake");
    let mut total = 12_000;
    let mut child = spawn_ingest(&lake, &[&log], None);
    let chunks: Vec<String> = (0..40).map(|i| postfix_messages(12_000 + i * 50, 50, 6)).collect();
    let mut appended = 0;
    for c in &chunks {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::fs::OpenOptions::new().append(true).open(&log).unwrap().write_all(c.as_bytes()).unwrap();
        appended += 1;
        total += 50;
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(appended > 0, "the ingest ended before anything was appended");
    // The rest of the chunks after it, then the next nightly run.
    for c in &chunks[appended..] {
        std::fs::OpenOptions::new().append(true).open(&log).unwrap().write_all(c.as_bytes()).unwrap();
        total += 50;
    }
    let o = ingest(&lake, &[&log]);
    assert!(o.status.success(), "{}", text(&o));
    let q = "SELECT count(*) AS n, count(DISTINCT source_offset) AS d FROM mail_deliveries";
    let o = run(&["sql", "--lake", lake.to_str().unwrap(), "--format", "csv", q]);
    let want = format!("{},{}", 2 * total, 2 * total);
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().nth(1).unwrap(), want, "every delivery exactly once ({appended} chunks appended during the first run): {}", text(&o));
}

#[test]
fn two_new_only_runs_at_once_report_each_finding_once() {
    let fx = Fixture::new();
    let lake = fx.path("lake");
    let samples = repo().join("sample-logs");
    let inputs: Vec<PathBuf> = ["mcp", "postfix", "postmark"].iter().map(|d| samples.join(d)).collect();
    let refs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
    assert!(ingest(&lake, &refs).status.success());
    let detect = || {
        cli(&["detect", "--lake", lake.to_str().unwrap(), "--new-only", "--format", "jsonl"])
            .env("MCPF_FAILPOINT", "detect-before-record=sleep:1000")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (detect(), detect());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success() && b.status.success(), "{}\n{}", text(&a), text(&b));
    let ids = |o: &Output| -> Vec<String> {
        String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["finding_id"].as_str().unwrap().to_string()).collect()
    };
    let mut all = ids(&a);
    all.extend(ids(&b));
    let n = all.len();
    all.sort();
    all.dedup();
    assert!(n > 0, "the sample incident has findings");
    assert_eq!(n, all.len(), "a finding was reported as new by both runs");
    // And a third run has nothing new.
    let o = run(&["detect", "--lake", lake.to_str().unwrap(), "--new-only", "--format", "jsonl"]);
    assert!(o.status.success() && o.stdout.is_empty(), "{}", text(&o));
}

#[test]
fn a_path_that_is_not_a_lake_is_an_error_everywhere() {
    let fx = Fixture::new();
    let empty = fx.path("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let file = fx.file("a-file", "x");
    let checkout = repo();
    for lake in [empty.as_path(), file.as_path(), checkout.as_path(), fx.path("missing").as_path()] {
        let l = lake.to_str().unwrap();
        for args in [
            vec!["detect", "--lake", l],
            vec!["sql", "--lake", l, "SELECT 1"],
            vec!["tables", "--lake", l],
            vec!["timeline", "--lake", l, "--entity", "a@b.c"],
            vec!["verify", "--lake", l],
        ] {
            let o = run(&args);
            assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
            let t = text(&o);
            assert!(t.contains("not an mcp-forensics lake") || t.contains("not a lake folder") || t.contains("no such lake folder"), "{args:?}: {t}");
            assert!(!t.contains("no findings"), "{t}");
        }
    }
    // Ingest never writes tables into a folder that holds other things.
    let o = run(&["ingest", "--lake", checkout.to_str().unwrap(), fx.path("a-file").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(!checkout.join("_lake").exists() && !checkout.join("mail_deliveries").exists());
    let o = run(&["ingest", "--lake", file.to_str().unwrap(), file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("is a file"), "{}", text(&o));
    // A new or empty folder becomes a lake.
    let o = run(&["ingest", "--lake", empty.to_str().unwrap(), file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(run(&["detect", "--lake", empty.to_str().unwrap()]).status.success());
}

#[test]
fn sql_and_rule_packs_cannot_write() {
    let fx = Fixture::new();
    let lake = fx.path("lake");
    let log = fx.file("mail.log", &postfix_log(5, 7));
    assert!(ingest(&lake, &[&log]).status.success());
    let before = state(&lake);
    let target = fx.path("exfil.csv");
    let l = lake.to_str().unwrap();
    for q in [
        format!("COPY (SELECT * FROM mail_deliveries) TO '{}' STORED AS CSV", target.display()),
        format!("CREATE EXTERNAL TABLE x (a BIGINT) STORED AS CSV LOCATION '{}'", fx.path("ext").display()),
        "INSERT INTO mail_deliveries SELECT * FROM mail_deliveries".to_string(),
        "DELETE FROM mail_deliveries".to_string(),
        "SET datafusion.execution.target_partitions = 1".to_string(),
    ] {
        let o = run(&["sql", "--lake", l, &q]);
        assert_eq!(o.status.code(), Some(2), "{q}: {}", text(&o));
        assert!(text(&o).contains("refused") || text(&o).contains("SQL error"), "{q}: {}", text(&o));
    }
    assert!(!target.exists(), "COPY wrote a file");
    assert_eq!(state(&lake), before, "a statement changed the lake");

    // A downloaded rule pack whose rule writes: `rules test` runs nothing of it.
    let pack = fx.path("pack");
    fx.file(
        "pack/evil.toml",
        &format!(
            r#"id = "user.evil"
title = "Looks harmless"
severity = "low"
description = "copies the lake out"

[query]
sql = """
COPY (SELECT 1 AS x) TO '{}' STORED AS CSV
"""

[[tests]]
name = "anything"
expect = "silent"
[tests.files]
"mail.log" = "2026-03-01T10:00:00+00:00 mx postfix/qmgr[3]: 1A2B3C4D5E: removed\n"
"#,
            target.display()
        ),
    );
    let o = run(&["rules", "test", pack.to_str().unwrap()]);
    assert!(!target.exists(), "rules test executed a COPY: {}", text(&o));
    let o = run(&["detect", "--lake", l, "--rules", pack.to_str().unwrap(), "--rule", "user.evil"]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(!target.exists());
}

#[test]
fn fifos_and_dangling_links_are_reported_not_skipped_and_the_rest_commits() {
    let fx = Fixture::new();
    let dir = fx.path("logs");
    fx.file("logs/mail.log", &postfix_log(5, 8));
    std::os::unix::fs::symlink(fx.path("nowhere"), dir.join("dangling.log")).unwrap();
    let fifo = dir.join("pipe.log");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let lake = fx.path("lake");
    let o = ingest(&lake, &[&dir]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("dangling.log") && t.contains("pipe.log") && t.contains("a FIFO"), "{t}");
    let q = "SELECT status, count(*) FROM _ingest_log GROUP BY status ORDER BY status";
    let o = run(&["sql", "--lake", lake.to_str().unwrap(), "--format", "csv", q]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "status,count(*)\nfailed,2\nok,1\n");
}

#[test]
fn sql_parameters_are_text_unless_typed() {
    let fx = Fixture::new();
    let lake = fx.path("lake");
    let log = fx.file("mail.log", &postfix_log(2, 9));
    assert!(ingest(&lake, &[&log]).status.success());
    let l = lake.to_str().unwrap();
    let o = run(&["sql", "--lake", l, "--format", "csv", "--param", "q=8713254", "--param", "n:int=5", "SELECT arrow_typeof($q) AS q, arrow_typeof($n) AS n, $q = '8713254' AS same"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "q,n,same\nUtf8,Int64,true\n", "{}", text(&o));
    let o = run(&["sql", "--lake", l, "--param", "n:int=five", "SELECT $n"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("expected an integer"), "{}", text(&o));
}

/// `--tz`: year-less syslog stamps are read in the zone given (with its
/// daylight-saving rules), the zone is kept in `_ingest_log`, stamps with an
/// offset stay as written, and a zone that does not exist is a usage error.
#[test]
fn tz_sets_the_zone_of_zone_less_stamps() {
    let fx = Fixture::new();
    let syslog = "Jul 15 10:00:00 mx postfix/smtpd[1]: 1A2B3C4D5E: client=agent-host[10.0.0.5]\n\
                  Jul 15 10:00:00 mx postfix/qmgr[3]: 1A2B3C4D5E: from=<agent@corp.example>, size=900, nrcpt=1 (queue active)\n\
                  Jul 15 10:00:01 mx postfix/smtp[4]: 1A2B3C4D5E: to=<x@a.example>, relay=mx.a.example[192.0.2.1]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)\n";
    let log = fx.file("mail.log", syslog);
    let iso = fx.file("iso.log", &postfix_log(1, 3));
    for (zone, expect) in [("America/New_York", "2026-07-15T14:00:01"), ("+05:30", "2026-07-15T04:30:01"), ("UTC", "2026-07-15T10:00:01")] {
        let lake = fx.path(&format!("lake-{}", zone.replace(['/', ':', '+'], "_")));
        let l = lake.to_str().unwrap();
        let o = run(&["ingest", "--lake", l, "--year", "2026", "--tz", zone, log.to_str().unwrap(), iso.to_str().unwrap()]);
        assert!(o.status.success(), "{}", text(&o));
        let o = run(&["sql", "--lake", l, "--format", "csv", "SELECT CAST(ts AS VARCHAR) AS t FROM mail_deliveries WHERE recipient = 'x@a.example'"]);
        assert!(String::from_utf8_lossy(&o.stdout).contains(expect), "{zone}: {}", text(&o));
        // The ISO-stamped file carries +00:00: the zone does not move it.
        let o = run(&["sql", "--lake", l, "--format", "csv", "SELECT CAST(min(ts) AS VARCHAR) AS t FROM mail_deliveries WHERE recipient <> 'x@a.example'"]);
        assert!(String::from_utf8_lossy(&o.stdout).contains("2026-03-01T00:00:00"), "{zone}: {}", text(&o));
        let o = run(&["sql", "--lake", l, "--format", "csv", "SELECT DISTINCT stamp_zone FROM _ingest_log"]);
        // CSV neutralizes a leading `+` (a spreadsheet formula).
        let want = if zone == "+05:30" { "'+05:30" } else { zone };
        assert_eq!(String::from_utf8_lossy(&o.stdout), format!("stamp_zone\n{want}\n"), "{}", text(&o));
    }
    let o = run(&["ingest", "--lake", fx.path("bad").to_str().unwrap(), "--tz", "Europe/Atlantis", log.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("IANA name"), "{}", text(&o));
    assert!(!fx.path("bad").exists(), "nothing is created for a usage error");
}

/// `ingest -`: a pipe (`zcat maillog-*.gz | …`, or the compressed bytes
/// themselves) is kept in the lake as the file its rows point back to; the
/// same bytes piped again add nothing; `verify` re-reads the kept copy.
#[test]
fn standard_input_is_kept_as_evidence_and_read_once() {
    let fx = Fixture::new();
    let lake = fx.path("lake");
    let l = lake.to_str().unwrap();
    let log = postfix_log(20, 9);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(log.as_bytes()).unwrap();
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    bz.write_all(postfix_log(5, 10).as_bytes()).unwrap();
    let pipe = |bytes: &[u8]| {
        let mut c = cli(&["ingest", "--lake", l, "--year", "2026", "-"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        c.stdin.take().unwrap().write_all(bytes).unwrap();
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
        o
    };
    pipe(&gz.finish().unwrap());
    let count = |q: &str| {
        let o = run(&["sql", "--lake", l, "--format", "csv", q]);
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout).lines().nth(1).unwrap_or_default().to_string()
    };
    assert_eq!(count("SELECT count(*) FROM mail_deliveries"), "40");
    assert_eq!(count("SELECT count(*) FROM mail_deliveries WHERE source_file NOT LIKE '%/_lake/spool/stdin-%'"), "0");
    let o = pipe(&{
        let mut again = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        again.write_all(log.as_bytes()).unwrap();
        again.finish().unwrap()
    });
    assert!(text(&o).contains("already"), "the same content again is known: {}", text(&o));
    assert_eq!(count("SELECT count(*) FROM mail_deliveries"), "40");
    pipe(&bz.finish().unwrap());
    assert_eq!(count("SELECT count(*) FROM mail_deliveries"), "50");
    assert_eq!(count("SELECT count(DISTINCT source_file) FROM mail_deliveries"), "2");
    let o = run(&["verify", "--lake", l]);
    assert!(o.status.success(), "{}", text(&o));
}

/// The data files a Delta table references at `version`, from its log
/// (adds minus removes of commits 0..=version).
fn files_at_version(table: &Path, version: u64) -> std::collections::BTreeSet<String> {
    let mut live = std::collections::BTreeSet::new();
    for v in 0..=version {
        let Ok(log) = std::fs::read_to_string(table.join("_delta_log").join(format!("{v:020}.json"))) else { continue };
        for line in log.lines() {
            let a: serde_json::Value = serde_json::from_str(line).unwrap();
            if let Some(p) = a.pointer("/add/path").and_then(|p| p.as_str()) {
                live.insert(p.to_string());
            }
            if let Some(p) = a.pointer("/remove/path").and_then(|p| p.as_str()) {
                live.remove(p);
            }
        }
    }
    live
}

/// The version of `table` in the snapshot the first `detect` run published.
fn detect_snapshot_version(lake: &Path, table: &str) -> u64 {
    let dir = lake.join("_lake/snapshots");
    let mut names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    for p in names {
        let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        if s["kind"] == "detect" {
            return s["tables"][table].as_u64().unwrap();
        }
    }
    panic!("no detect snapshot in {}", dir.display());
}

/// Schedule-like history: the sample incident, a recorded detect run, then
/// five small ingests (five commits, five small files per partition).
fn lake_with_history(fx: &Fixture, name: &str, record: bool) -> (PathBuf, Vec<PathBuf>) {
    let lake = fx.path(name);
    let samples = repo().join("sample-logs");
    let inputs: Vec<PathBuf> = ["mcp", "postfix", "postmark"].iter().map(|d| samples.join(d)).collect();
    let refs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
    assert!(ingest(&lake, &refs).status.success());
    if record {
        let o = run(&["detect", "--lake", lake.to_str().unwrap(), "--record", "--format", "jsonl"]);
        assert!(o.status.code() == Some(0) || o.status.code() == Some(1), "{}", text(&o));
        assert!(!o.stdout.is_empty(), "the sample incident has findings to record");
    }
    let mut all = inputs.clone();
    for k in 0..5u32 {
        let f = fx.file(&format!("{name}-small/{k}.log"), &postfix_log(30, 0xA0 + k));
        assert!(ingest(&lake, &[&f]).status.success());
        all.push(f);
    }
    (lake, all)
}

fn maintenance(args: &[&str]) -> serde_json::Value {
    let o = run(args);
    assert!(o.status.success(), "{}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)))
}

fn table_report<'a>(report: &'a serde_json::Value, table: &str) -> &'a serde_json::Value {
    report["tables"].as_array().unwrap().iter().find(|t| t["table"] == table).unwrap_or_else(|| panic!("{table} not in {report}"))
}

#[test]
fn optimize_compacts_without_changing_a_row_and_vacuum_keeps_what_recorded_findings_were_computed_from() {
    let fx = Fixture::new();
    for (name, record) in [("recorded", true), ("unrecorded", false)] {
        let (lake, inputs) = lake_with_history(&fx, name, record);
        let l = lake.to_str().unwrap();
        let deliveries = lake.join("mail_deliveries");
        let before = state(&lake);
        let o = maintenance(&["optimize", "--lake", l, "--sort-by-time", "--format", "json"]);
        let d = table_report(&o, "mail_deliveries");
        assert!(d["files_removed"].as_u64().unwrap() >= 5 && d["files_added"].as_u64().unwrap() < d["files_removed"].as_u64().unwrap(), "{o}");
        assert_eq!(state(&lake), before, "optimize changed what the lake holds");
        // Compaction is not new data: the same logs again add nothing.
        let refs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
        assert!(ingest(&lake, &refs).status.success());
        assert_eq!(state(&lake), before);

        // The old small files are still on disk until vacuum; a dry run deletes none.
        let on_disk = parquet_files(&deliveries);
        let dry = maintenance(&["vacuum", "--lake", l, "--retain-hours", "0", "--dry-run", "--format", "json"]);
        assert!(table_report(&dry, "mail_deliveries")["files_removed"].as_u64().unwrap() > 0, "{dry}");
        assert_eq!(parquet_files(&deliveries), on_disk);
        let v = maintenance(&["vacuum", "--lake", l, "--retain-hours", "0", "--format", "json"]);
        assert_eq!(state(&lake), before, "vacuum changed what the lake holds");
        assert!(parquet_files(&deliveries) < on_disk, "{v}");

        if record {
            // Every file of the version the recorded run read is still there.
            let version = detect_snapshot_version(&lake, "mail_deliveries");
            assert_eq!(table_report(&v, "mail_deliveries")["kept_versions"], serde_json::json!([version]), "{v}");
            for f in files_at_version(&deliveries, version) {
                assert!(deliveries.join(&f).is_file(), "vacuum deleted {f}, which the recorded findings were computed from");
            }
        } else {
            // Without recorded findings the same history's replaced files go
            // (what makes the check above able to fail).
            let first_small = files_at_version(&deliveries, 2);
            assert!(first_small.iter().any(|f| !deliveries.join(f).is_file()), "vacuum kept every replaced file");
        }
        // With the default retention (a week) nothing just replaced goes.
        let o = maintenance(&["optimize", "--lake", l, "--sort-by-time", "--format", "json"]);
        assert!(table_report(&o, "mail_deliveries")["files_removed"].as_u64().unwrap() > 0, "{o}");
        let on_disk = parquet_files(&deliveries);
        let v = maintenance(&["vacuum", "--lake", l, "--format", "json"]);
        assert_eq!(table_report(&v, "mail_deliveries")["files_removed"], 0, "{v}");
        assert_eq!(parquet_files(&deliveries), on_disk);
        assert_eq!(state(&lake), before);
    }
}

#[test]
fn a_first_run_killed_after_a_commit_shows_readers_nothing() {
    // The lake's very first run dies after committing one table and before
    // it publishes anything: no snapshot exists yet, and readers must see an
    // empty lake, not that table at its latest version.
    let fx = Fixture::new();
    let logs = fx.path("logs");
    fx.file("logs/postfix/mail.log", &postfix_log(200, 1));
    let clean = fx.path("clean");
    assert!(ingest(&clean, &[&logs]).status.success());
    let lake = fx.path("lake");
    let out = spawn_ingest(&lake, &[&logs], Some("ingest-after-commit-mail_deliveries")).wait_with_output().unwrap();
    assert!(!out.status.success(), "the failpoint did not fire: {}", text(&out));
    let seen = state(&lake);
    for line in seen.lines().skip(1) {
        let n: i64 = line.split(',').nth(1).unwrap().parse().unwrap();
        assert_eq!(n, 0, "a reader saw rows of a run that never published: {seen}");
    }
    let again = ingest(&lake, &[&logs]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(text(&again).contains("rolled back"), "{}", text(&again));
    assert_eq!(state(&lake), state(&clean));
}
