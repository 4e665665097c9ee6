//! `detect --explain`: for each rule run, the SQL, the parameter values bound
//! to it, and every finding's evidence rows with the raw log line each points
//! to, read back from the source file at the recorded byte offset. An analyst
//! checks a finding against the bytes, not against our parse of them.

use std::fmt::Write as _;
use std::io::{BufRead, Read};
use std::path::Path;

use crate::output::{evidence_location, terminal_safe, terminal_safe_block};
use crate::{Finding, Rule};

/// Longest raw line shown.
pub const MAX_RAW_BYTES: usize = 4096;

/// The line starting at `offset` of the (decompressed) file, bounded.
pub fn raw_line(path: &Path, offset: u64) -> std::io::Result<String> {
    let (mut r, _) = mcpf_formats::source::open_decompressed(path)?;
    // Skip to the offset (seekable or not: .gz streams are skipped by reading).
    let skipped = std::io::copy(&mut r.by_ref().take(offset), &mut std::io::sink())?;
    if skipped < offset {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, format!("the file is shorter than offset {offset} (truncated since ingest? run verify)")));
    }
    let mut buf = Vec::new();
    r.take(MAX_RAW_BYTES as u64 + 1).read_until(b'\n', &mut buf)?;
    let more = buf.len() > MAX_RAW_BYTES;
    buf.truncate(MAX_RAW_BYTES);
    while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        buf.pop();
    }
    let mut s = String::from_utf8_lossy(&buf).into_owned();
    if more {
        s.push_str(" [...]");
    }
    Ok(s)
}

/// Where a recorded source path is read from: relative paths under `base`.
pub fn source_path(source_file: &str, base: Option<&Path>) -> std::path::PathBuf {
    let resolve = |p: &Path| match base {
        Some(b) if p.is_relative() => b.join(p),
        _ => p.to_path_buf(),
    };
    let literal = resolve(Path::new(source_file));
    if literal.exists() {
        return literal;
    }
    // A name that was not UTF-8 is stored with \xNN escapes.
    resolve(&mcpf_formats::text::path_from_text(source_file))
}

/// The explanation of a detection run: [`explain`] for every rule the run
/// selected (all when `opts.rules` is empty), with the parameters it bound.
pub fn explain_run(rules: &[Rule], opts: &crate::DetectOptions, findings: &[Finding], base: Option<&Path>, max_evidence: usize) -> Result<String, String> {
    let mut out = String::new();
    for r in rules.iter().filter(|r| opts.rules.is_empty() || opts.rules.contains(&r.id)) {
        let params = r.bound_params(opts.params.get(&r.id).unwrap_or(&Default::default()))?;
        let mine: Vec<&Finding> = findings.iter().filter(|f| f.rule_id == r.id).collect();
        out.push_str(&explain(r, &params, &mine, base, max_evidence));
        out.push('\n');
    }
    Ok(out)
}

/// The explanation of one rule's run and findings, as terminal-safe text.
/// `base` resolves relative evidence paths; rules marked `sensitive` (their
/// matches are secrets) do not print raw lines.
pub fn explain(rule: &Rule, params: &[(String, datafusion::scalar::ScalarValue)], findings: &[&Finding], base: Option<&Path>, max_evidence: usize) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "== rule {} ({})", rule.id, terminal_safe(&rule.origin));
    if params.is_empty() {
        let _ = writeln!(s, "parameters: none");
    } else {
        let _ = writeln!(s, "parameters (bound as $name, never pasted into the SQL):");
        for (k, v) in params {
            let _ = writeln!(s, "  ${k} = {v} ({})", v.data_type());
        }
    }
    let _ = writeln!(s, "sql:\n{}\n", terminal_safe_block(rule.sql.trim()));
    let _ = writeln!(s, "{} finding(s)", findings.len());
    for f in findings {
        let _ = writeln!(s, "\n-- {} [{}] {}", f.finding_id, f.severity.name(), terminal_safe(&f.key));
        let _ = writeln!(s, "   count {} from {} to {}; {} evidence row(s)", f.count, f.first_seen, f.last_seen, f.evidence_total);
        for e in f.evidence.iter().take(max_evidence) {
            let _ = writeln!(s, "   {}  [{} @ byte {}] {}", terminal_safe(&evidence_location(e)), e.table, e.source_offset, e.ts);
            if let Some(d) = &e.detail {
                let _ = writeln!(s, "     why: {}", terminal_safe(d));
            }
            let raw = if rule.sensitive {
                "[raw line withheld: this rule's matches are secrets; read it at the byte offset above]".to_string()
            } else {
                let p = source_path(&e.source_file, base);
                match raw_line(&p, e.source_offset.max(0) as u64) {
                    Ok(l) => format!("raw: {}", terminal_safe(&l)),
                    Err(err) => format!("raw: [cannot read {}: {err}]", terminal_safe(&p.display().to_string())),
                }
            };
            let _ = writeln!(s, "     {raw}");
        }
        if f.evidence.len() > max_evidence {
            let _ = writeln!(s, "   ... {} more evidence rows (--format json lists them all)", f.evidence.len() - max_evidence);
        }
    }
    s
}
