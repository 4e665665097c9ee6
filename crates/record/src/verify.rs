//! `verify` for recorded traces: follow each recorder run's chain through
//! its files in order and report every break with its file, line and
//! record number; optionally check the heads that `--checkpoint-cmd`
//! anchored elsewhere.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use mcpf_formats::chain::{record_hash, ChainChecker, Link, Problem};
use serde_json::Value;

/// Longest record line read (the recorder writes less; ingest's limit).
const MAX_RECORD: usize = 4 * 1024 * 1024;

/// One problem, located.
#[derive(Debug, Clone)]
pub struct Finding {
    pub file: PathBuf,
    pub line: u64,
    pub seq: Option<u64>,
    pub kind: &'static str,
    pub detail: String,
}

/// One recorder run (a chain) and what `verify` found in it.
#[derive(Debug, Clone)]
pub struct ChainReport {
    pub chain: String,
    pub server: Option<String>,
    pub files: Vec<PathBuf>,
    pub records: u64,
    pub last_seq: Option<u64>,
    pub head: Option<String>,
    /// `intact` (closed, no problem), `open` (no problem, no close record:
    /// running, killed, or cut at a record boundary), `broken`.
    pub state: &'static str,
    pub problems: Vec<Finding>,
    /// Checkpoints found for this chain and how many matched.
    pub checkpoints: (u64, u64),
}

/// A file that is not a recorded trace (no chained first record).
#[derive(Debug, Clone)]
pub struct Unchained {
    pub file: PathBuf,
    pub why: String,
}

/// A head a checkpoint anchored: `mcpf-checkpoint chain=ID seq=N head=HASH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    pub chain: String,
    pub seq: u64,
    pub head: String,
    /// The file the record was in when anchored (`file=`).
    pub file: Option<String>,
}

/// The anchors in a text (any line containing the checkpoint's words:
/// the checkpoint command's own output, a syslog line, a signed note).
pub fn anchors_in(text: &str) -> Vec<Anchor> {
    text.lines()
        .filter_map(|l| {
            let at = l.find("mcpf-checkpoint ")?;
            let mut chain = None;
            let mut seq = None;
            let mut head = None;
            let mut file = None;
            for word in l[at..].split_whitespace() {
                match word.split_once('=') {
                    Some(("chain", v)) => chain = Some(v.to_string()),
                    Some(("seq", v)) => seq = v.parse().ok(),
                    Some(("head", v)) if v.len() == 64 => head = Some(v.to_ascii_lowercase()),
                    Some(("file", v)) => file = Some(v.to_string()),
                    _ => {}
                }
            }
            Some(Anchor { chain: chain?, seq: seq?, head: head?, file })
        })
        .collect()
}

/// The `.jsonl` files under the given paths (files as given, folders recursively).
pub fn trace_files(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut stack = vec![p.clone()];
            while let Some(d) = stack.pop() {
                for e in std::fs::read_dir(&d)? {
                    let e = e?;
                    let path = e.path();
                    if e.file_type()?.is_dir() {
                        stack.push(path);
                    } else if path.extension().is_some_and(|x| x == "jsonl") {
                        out.push(path);
                    }
                }
            }
        } else {
            std::fs::metadata(p)?;
            out.push(p.clone());
        }
    }
    out.sort();
    Ok(out)
}

/// The first chained record of a file: (chain id, seq, server).
fn first_link(path: &Path) -> Result<(Link, Option<String>), String> {
    let f = File::open(path).map_err(|e| e.to_string())?;
    let mut r = BufReader::new(f).take(MAX_RECORD as u64 * 4);
    let mut line = Vec::new();
    for _ in 0..8 {
        line.clear();
        if r.read_until(b'\n', &mut line).map_err(|e| e.to_string())? == 0 {
            return Err("empty file".into());
        }
        if let Ok(v) = serde_json::from_slice::<Value>(&line) {
            return match Link::of(&v) {
                Some(l) => Ok((l, v.get("server").and_then(Value::as_str).map(str::to_string))),
                None => Err("its records carry no hash chain (not written by mcp-forensics record)".into()),
            };
        }
    }
    Err("no JSON record in its first lines".into())
}

/// Verify every recorded trace under `paths`.
pub fn verify(paths: &[PathBuf], anchors: &[Anchor]) -> std::io::Result<(Vec<ChainReport>, Vec<Unchained>)> {
    let mut runs: BTreeMap<String, Vec<(u64, PathBuf, Option<String>)>> = BTreeMap::new();
    let mut unchained = Vec::new();
    for file in trace_files(paths)? {
        match first_link(&file) {
            Ok((link, server)) => runs.entry(link.id).or_default().push((link.seq, file, server)),
            Err(why) => unchained.push(Unchained { file, why }),
        }
    }
    let mut reports = Vec::new();
    for (chain, mut files) in runs {
        files.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        let mine: Vec<&Anchor> = anchors.iter().filter(|a| a.chain == chain).collect();
        reports.push(verify_run(&chain, &files, &mine)?);
    }
    Ok((reports, unchained))
}

fn verify_run(chain: &str, files: &[(u64, PathBuf, Option<String>)], anchors: &[&Anchor]) -> std::io::Result<ChainReport> {
    let mut problems = Vec::new();
    let mut prev_end: Option<(String, u64, Option<String>, PathBuf)> = None; // head, seq, next, file
    let mut records = 0;
    let mut anchored: BTreeMap<u64, &str> = anchors.iter().map(|a| (a.seq, a.head.as_str())).collect();
    let mut matched = 0;
    let mut last: Option<(String, u64)> = None;
    let mut ended_closed = false;
    for (i, (first_seq, file, _)) in files.iter().enumerate() {
        let mut checker = ChainChecker::new();
        match &prev_end {
            None if *first_seq > 0 => problems.push(Finding { file: file.clone(), line: 1, seq: Some(*first_seq), kind: "start_missing", detail: format!("the run's first file is missing: this file starts at record {first_seq}, records 0..{} are not here", first_seq - 1) }),
            None => {}
            Some((head, seq, next, prev_file)) => {
                let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
                match next {
                    Some(n) if Some(n) != name.as_ref() => problems.push(Finding { file: prev_file.clone(), line: 0, seq: Some(*seq), kind: "missing", detail: format!("its rotate record names {n}, which is not among the files given; {} follows instead", name.unwrap_or_default()) }),
                    None => problems.push(Finding { file: prev_file.clone(), line: 0, seq: Some(*seq), kind: "truncated", detail: "the file does not end with a rotate record, yet a later file of the run follows: its last records were cut".into() }),
                    _ => {}
                }
                checker.continue_from(chain, head, *seq);
            }
        }
        let end = check_file(file, &mut checker, &mut anchored, &mut matched, &mut problems)?;
        records += checker.state().records;
        problems.extend(checker.problems().iter().map(|p: &Problem| Finding { file: file.clone(), line: p.line, seq: p.seq, kind: p.kind, detail: p.detail.clone() }));
        if checker.state().problems as usize > checker.problems().len() {
            problems.push(Finding { file: file.clone(), line: 0, seq: None, kind: "more", detail: format!("{} more problems in this file", checker.state().problems as usize - checker.problems().len()) });
        }
        let ended = checker.state().ended.clone();
        ended_closed = ended.as_deref() == Some("close");
        if let Some((h, s)) = checker.head() {
            last = Some((h.to_string(), s));
        }
        if ended_closed && i + 1 < files.len() {
            problems.push(Finding { file: file.clone(), line: end.lines, seq: checker.state().last_seq, kind: "reordered", detail: "the run's close record is here, yet later files of the run follow".into() });
        }
        prev_end = last.clone().map(|(h, s)| (h, s, end.next.clone(), file.clone()));
    }
    // Anchors no record matched: the file they name is gone, or records were cut.
    let names: Vec<String> = files.iter().filter_map(|f| f.1.file_name().map(|n| n.to_string_lossy().into_owned())).collect();
    for (seq, head) in &anchored {
        let anchor = anchors.iter().find(|a| a.seq == *seq);
        let anchored_file = anchor.and_then(|a| a.file.clone());
        let base = anchored_file.as_deref().and_then(|f| Path::new(f).file_name()).map(|n| n.to_string_lossy().into_owned());
        let (file, kind, detail) = match (&base, &last) {
            (Some(b), _) if !names.contains(b) => (PathBuf::from(anchored_file.clone().unwrap_or_default()), "missing", format!("a checkpoint anchors record {seq} (head {}) in {b}, which is not among the files given: the file was removed", &head[..12])),
            (_, Some((_, s))) if seq > s => (files.last().map(|f| f.1.clone()).unwrap_or_default(), "truncated", format!("a checkpoint anchors record {seq} (head {}), but the run ends at record {s}: records after it were cut", &head[..12])),
            _ => (files.last().map(|f| f.1.clone()).unwrap_or_default(), "missing", format!("a checkpoint anchors record {seq} (head {}), which is not in the files given", &head[..12])),
        };
        problems.push(Finding { file, line: 0, seq: Some(*seq), kind, detail });
    }
    let broken = problems.iter().any(|p| p.kind != "more");
    let state = if broken { "broken" } else if ended_closed { "intact" } else { "open" };
    let server = files.iter().find_map(|f| f.2.clone());
    Ok(ChainReport { chain: chain.to_string(), server, files: files.iter().map(|f| f.1.clone()).collect(), records, last_seq: last.as_ref().map(|l| l.1), head: last.map(|l| l.0), state, problems, checkpoints: (anchors.len() as u64, matched) })
}

struct FileEnd {
    lines: u64,
    /// The file named by its last record, when that is a `rotate`.
    next: Option<String>,
}

/// Follow one file's records; check anchored heads on the way.
fn check_file(path: &Path, checker: &mut ChainChecker, anchored: &mut BTreeMap<u64, &str>, matched: &mut u64, lost: &mut Vec<Finding>) -> std::io::Result<FileEnd> {
    let mut r = BufReader::new(File::open(path)?);
    let mut buf = Vec::new();
    let mut n = 0;
    let mut next = None;
    loop {
        buf.clear();
        let read = (&mut r).take(MAX_RECORD as u64 + 1).read_until(b'\n', &mut buf)?;
        if read == 0 {
            break;
        }
        n += 1;
        let complete = buf.ends_with(b"\n");
        if !complete && buf.len() > MAX_RECORD {
            skip_line(&mut r)?;
        }
        let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let parsed = serde_json::from_slice::<Value>(line).ok().filter(|v| v.is_object());
        match parsed {
            Some(v) if complete || Link::of(&v).is_some() => {
                if let Some(link) = Link::of(&v) {
                    if let Some(want) = anchored.get(&link.seq) {
                        if *want == record_hash(line) {
                            *matched += 1;
                        } else {
                            checker.report(n, Some(link.seq), "edited", format!("record {} differs from the head a checkpoint anchored: it was changed after the checkpoint", link.seq));
                        }
                        anchored.remove(&link.seq);
                    }
                }
                next = (v.get("event").and_then(Value::as_str) == Some("rotate")).then(|| v.get("next").and_then(Value::as_str).map(str::to_string)).flatten();
                if v.get("event").and_then(Value::as_str) == Some("lost") {
                    let (line_no, n) = (n, v.get("records").and_then(Value::as_u64).unwrap_or(0));
                    lost.push(Finding { file: path.to_path_buf(), line: line_no, seq: Link::of(&v).map(|l| l.seq), kind: "lost", detail: format!("the recorder could not write {n} record(s) before this one (a full disk, an unwritable folder): the proxy forwarded them unrecorded") });
                }
                checker.record(n, line, &v);
                if !complete {
                    checker.damaged(n, "truncated", "the last record has no newline: the file was cut after it, or is still being written");
                }
            }
            _ => {
                // With its newline it is damage inside the file, whatever follows.
                if complete {
                    checker.damaged(n, "edited", "a line that is not a record (inserted, or a record corrupted)");
                } else {
                    checker.damaged(n, "truncated", "the last line has no newline and is not a whole record: the file was cut");
                }
            }
        }
    }
    checker.finish();
    Ok(FileEnd { lines: n, next })
}

/// Skip to the end of the current line without holding it (a hostile file
/// may have one line of gigabytes).
fn skip_line(r: &mut impl BufRead) -> std::io::Result<()> {
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        match buf.iter().position(|b| *b == b'\n') {
            Some(i) => {
                r.consume(i + 1);
                return Ok(());
            }
            None => {
                let n = buf.len();
                r.consume(n);
            }
        }
    }
}
