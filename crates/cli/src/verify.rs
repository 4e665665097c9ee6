//! `verify`: the lake's sources against their fingerprints, and the hash
//! chains of recorded traces.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use mcpf_detect::output::{self, OutputFormat};
use mcpf_lake::Lake;
use mcpf_record::verify::{anchors_in, ChainReport, Finding, Unchained};
use serde_json::{json, Value};

use crate::UserError;

/// Run `verify`; exit 1 when a source or a chain is not intact.
pub fn command(out: &mut dyn Write, lake: Option<&Lake>, base: Option<&Path>, checkpoints: Option<&Path>, format: OutputFormat, traces: &[PathBuf]) -> Result<ExitCode, UserError> {
    if !matches!(format, OutputFormat::Table | OutputFormat::Json | OutputFormat::Jsonl) {
        return Err(UserError(format!("verify prints table, json or jsonl, not {format:?}")));
    }
    let checks = match lake {
        Some(l) => {
            let c = l.verify(base)?;
            if c.is_empty() && traces.is_empty() {
                return Err(UserError(format!("{}: the lake records no ingested sources", l.root().display())));
            }
            c
        }
        None => Vec::new(),
    };
    let anchors = match checkpoints {
        Some(p) => anchors_in(&std::fs::read_to_string(p).map_err(|e| UserError(format!("--checkpoints {}: {e}", p.display())))?),
        None => Vec::new(),
    };
    // The lake's recorded traces are followed too (their chain, not only
    // their fingerprint): the files still there, as verify found them.
    let mut paths: Vec<PathBuf> = traces.to_vec();
    paths.extend(checks.iter().filter(|c| c.state.intact() && c.checked_path.extension().is_some_and(|x| x == "jsonl")).map(|c| c.checked_path.clone()));
    let (chains, unchained) = mcpf_record::verify::verify(&paths, &anchors).map_err(|e| UserError(format!("reading the traces: {e}")))?;
    // Files the user named that are not recorded traces are reported; the
    // lake's other JSONL sources are not (they were never chained).
    let named_unchained: Vec<&Unchained> = unchained.iter().filter(|u| traces.iter().any(|t| u.file.starts_with(t))).collect();
    if !traces.is_empty() && chains.is_empty() && lake.is_none() {
        let why = named_unchained.first().map(|u| format!("{}: {}", u.file.display(), u.why)).unwrap_or_else(|| "no .jsonl files".into());
        return Err(UserError(format!("no recorded trace found in the paths given ({why}); record writes them: mcp-forensics record --out DIR -- SERVER…")));
    }
    let bad_sources = checks.iter().filter(|c| !c.state.intact()).count();
    let bad_chains = chains.iter().filter(|c| c.state == "broken").count();
    match format {
        OutputFormat::Table => {
            for c in &checks {
                writeln!(out, "{:<10} {}  ({} bytes at ingest, sha256 {}…) {}", c.state.name().to_uppercase(), output::terminal_safe(&c.checked_path.display().to_string()), c.recorded_size, &c.recorded_sha256[..c.recorded_sha256.len().min(12)], c.state.note())?;
            }
            if lake.is_some() {
                writeln!(out, "{} source(s): {} intact, {} not", checks.len(), checks.len() - bad_sources, bad_sources)?;
            }
            for c in &chains {
                print_chain(out, c)?;
            }
            for u in &named_unchained {
                writeln!(out, "NOT CHAINED {}: {}", output::terminal_safe(&u.file.display().to_string()), u.why)?;
            }
            if !chains.is_empty() {
                writeln!(out, "{} recorded run(s): {} intact, {} open, {} broken", chains.len(), chains.iter().filter(|c| c.state == "intact").count(), chains.iter().filter(|c| c.state == "open").count(), bad_chains)?;
            }
        }
        _ => {
            let mut rows: Vec<Value> = checks
                .iter()
                .map(|c| {
                    json!({
                        "kind": "source", "state": c.state.name(), "intact": c.state.intact(), "source_file": c.source_file,
                        "checked_path": c.checked_path.display().to_string(), "recorded_size": c.recorded_size,
                        "recorded_sha256": c.recorded_sha256, "ingested_at": mcpf_formats::time::to_rfc3339(c.ingested_at_us),
                        "note": c.state.note(),
                    })
                })
                .collect();
            rows.extend(chains.iter().map(chain_json));
            rows.extend(named_unchained.iter().map(|u| json!({"kind": "not_chained", "file": u.file.display().to_string(), "why": u.why})));
            if format == OutputFormat::Json {
                serde_json::to_writer_pretty(&mut *out, &rows)?;
                writeln!(out)?;
            } else {
                for r in rows {
                    serde_json::to_writer(&mut *out, &r)?;
                    writeln!(out)?;
                }
            }
        }
    }
    Ok(if bad_sources + bad_chains > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn position(p: &Finding) -> String {
    let seq = p.seq.map(|s| format!(", record {s}")).unwrap_or_default();
    if p.line == 0 {
        format!("{}{seq}", p.file.display())
    } else {
        format!("{}:{}{seq}", p.file.display(), p.line)
    }
}

fn print_chain(out: &mut dyn Write, c: &ChainReport) -> std::io::Result<()> {
    let what = match c.state {
        "intact" => "INTACT".to_string(),
        "open" => "OPEN".to_string(),
        _ => "BROKEN".to_string(),
    };
    let server = c.server.as_deref().map(|s| format!(" server {}", output::terminal_safe(s))).unwrap_or_default();
    let head = c.head.as_deref().map(|h| format!(", head {}…", &h[..12])).unwrap_or_default();
    let anchors = if c.checkpoints.0 > 0 { format!(", {}/{} checkpoints matched", c.checkpoints.1, c.checkpoints.0) } else { String::new() };
    writeln!(out, "{what:<10} recorded run {}{server}: {} file(s), {} records{head}{anchors}", c.chain, c.files.len(), c.records)?;
    if c.state == "open" {
        writeln!(out, "           no close record after record {}: the recorder is still running, was killed, or records were cut from the end (a --checkpoint-cmd anchor tells these apart)", c.last_seq.map(|s| s.to_string()).unwrap_or_else(|| "-".into()))?;
    }
    for p in &c.problems {
        writeln!(out, "  {:<13} {}: {}", p.kind.to_uppercase(), output::terminal_safe(&position(p)), output::terminal_safe(&p.detail))?;
    }
    Ok(())
}

fn chain_json(c: &ChainReport) -> Value {
    json!({
        "kind": "chain", "state": c.state, "intact": c.state != "broken", "chain": c.chain, "server": c.server,
        "files": c.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
        "records": c.records, "last_seq": c.last_seq, "head": c.head,
        "checkpoints": {"found": c.checkpoints.0, "matched": c.checkpoints.1},
        "problems": c.problems.iter().map(|p| json!({"kind": p.kind, "file": p.file.display().to_string(), "line": p.line, "seq": p.seq, "detail": p.detail})).collect::<Vec<_>>(),
    })
}
