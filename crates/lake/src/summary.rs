//! What an ingest run did, source by source: the summary `ingest` prints
//! and the Python bindings return.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use mcpf_formats::text::printable_path;
use mcpf_formats::{Format, SourceStats};

/// What happened to one source.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceAction {
    /// Parsed from the start.
    Full,
    /// The file grew: parsed, rows from this byte offset on written.
    Resumed(u64),
    /// Same content as an earlier ingest: nothing written.
    AlreadyIngested,
    /// Could not be read at all (missing, not a regular file, unreadable):
    /// nothing written; recorded in `_ingest_log` with the error and tried
    /// again by the next ingest.
    Failed,
}

/// The outcome of one source.
#[derive(Debug, Clone)]
pub struct SourceReport {
    pub path: PathBuf,
    pub format: Option<Format>,
    pub action: SourceAction,
    pub stats: SourceStats,
    /// Bytes of content read, from where reading started (decompressed
    /// bytes for a compressed file).
    pub bytes: u64,
    pub duration_ms: f64,
    /// Why reading stopped early (`Failed`), or stopped before the end of a
    /// source whose lines before the error were kept (a truncated `.gz`).
    pub error: Option<String>,
    /// A doubt about the format: what an unrecognized file looks like, or a
    /// claimed file with a large share of rejected lines.
    pub note: Option<String>,
    /// Bytes at the end of a live log not read yet: a line still being
    /// written (no newline). The next ingest reads them once the line is
    /// complete.
    pub held_back: u64,
    /// The hash chain of a trace `record` wrote, as read
    /// ([`mcpf_formats::chain::ChainState::to_json`]); None: not a recorded trace.
    pub chain: Option<serde_json::Value>,
}

impl SourceReport {
    /// `ok`, `partial` (read stopped at an error; the lines before it are in
    /// the lake) or `failed` (nothing read): `_ingest_log.status`.
    pub fn status(&self) -> &'static str {
        match (&self.action, &self.error) {
            (SourceAction::Failed, _) => "failed",
            (_, Some(_)) => "partial",
            _ => "ok",
        }
    }
}

/// The outcome of one ingest run.
#[derive(Debug, Clone, Default)]
pub struct IngestSummary {
    pub ingest_id: String,
    pub sources: Vec<SourceReport>,
    pub rows: BTreeMap<&'static str, u64>,
    pub bytes: u64,
    pub duration_ms: f64,
    /// Interrupted earlier runs whose rows were removed first.
    pub recovered: Vec<String>,
    /// Sources read again with `--force`: the rows of their earlier ingests
    /// that this run removed.
    pub replaced: Vec<crate::ForgottenSource>,
}

impl IngestSummary {
    /// The summary as `ingest` prints it (paths as given: callers that print
    /// to a terminal neutralize escapes).
    pub fn report(&self, verbose: bool) -> String {
        use std::fmt::Write as _;
        let s = self;
        let mut out = String::new();
        let t = s.totals();
        let already = s.sources.iter().filter(|x| x.action == SourceAction::AlreadyIngested).count();
        let failed = s.sources.iter().filter(|x| x.action == SourceAction::Failed).count();
        let new = s.sources.len() - already - failed;
        for r in &s.recovered {
            let _ = writeln!(out, "recovered: {r}");
        }
        for r in &s.replaced {
            let _ = writeln!(out, "--force: removed the {} row(s) of the earlier ingest of {}; read again", r.total(), r.source_file);
        }
        if verbose {
            for src in &s.sources {
                let action = match &src.action {
                    SourceAction::Full => "ingested".to_string(),
                    SourceAction::Resumed(o) => format!("grown, from byte {o}"),
                    SourceAction::AlreadyIngested => "already ingested".to_string(),
                    SourceAction::Failed => "FAILED".to_string(),
                };
                let _ = writeln!(
                    out,
                    "  {} [{}] {action}: {} lines = {} parsed + {} rejected + {} skipped",
                    printable_path(&src.path),
                    src.format.map(|f| f.name()).unwrap_or("unrecognized"),
                    src.stats.lines,
                    src.stats.parsed,
                    src.stats.rejected,
                    src.stats.skipped
                );
            }
        }
        let secs = (s.duration_ms / 1000.0).max(1e-9);
        let _ = writeln!(
            out,
            "ingest {}: {} files ({} new, {} already ingested{}), {:.2} MB in {:.2}s ({:.1} MB/s)",
            s.ingest_id,
            s.sources.len(),
            new,
            already,
            if failed > 0 { format!(", {failed} FAILED") } else { String::new() },
            s.bytes as f64 / 1e6,
            secs,
            s.bytes as f64 / 1e6 / secs
        );
        let _ = writeln!(out, "lines: {} = {} parsed + {} rejected + {} skipped", t.lines, t.parsed, t.rejected, t.skipped);
        for (table, n) in &s.rows {
            let _ = writeln!(out, "  {table:<20} {n:>10} rows");
        }
        if !t.skipped_reasons.is_empty() {
            let _ = writeln!(out, "skipped lines by reason:");
            let mut reasons: Vec<_> = t.skipped_reasons.iter().collect();
            reasons.sort_by(|a, b| b.1.cmp(a.1));
            for (reason, n) in reasons {
                let _ = writeln!(out, "  {n:>10}  {reason}");
            }
        }
        if t.rejected > 0 {
            let _ = writeln!(out, "{} rejected lines are in the _rejects table with their reason: mcp-forensics sql --lake DIR \"SELECT source_file, source_line, reason FROM _rejects\"", t.rejected);
        }
        let troubled: Vec<_> = s.sources.iter().filter(|x| x.error.is_some()).collect();
        if !troubled.is_empty() {
            let _ = writeln!(out, "error: {} source(s) could not be read to the end; the rest of the run is committed (a failed source is tried again by the next ingest):", troubled.len());
            for src in &troubled {
                let kept = if src.action == SourceAction::Failed { "nothing read".to_string() } else { format!("{} lines before the error kept", src.stats.lines) };
                let _ = writeln!(out, "  {}: {} ({kept})", printable_path(&src.path), src.error.as_deref().unwrap_or(""));
            }
        }
        for src in s.sources.iter() {
            let Some(chain) = src.chain.as_ref().filter(|c| c["state"] == "broken") else { continue };
            let first = chain["first_problem"].as_str().unwrap_or("");
            let _ = writeln!(out, "warning: {}: the recorder's hash chain is BROKEN ({} problem(s); first at {first}); the rows are kept: run mcp-forensics verify on the file for every position", printable_path(&src.path), chain["problems"]);
        }
        for src in s.sources.iter().filter(|x| x.format.is_some() && x.note.is_some()) {
            let _ = writeln!(out, "warning: {}: {}", printable_path(&src.path), src.note.as_deref().unwrap_or(""));
        }
        let unrecognized: Vec<_> = s.sources.iter().filter(|x| x.format.is_none() && matches!(x.action, SourceAction::Full | SourceAction::Resumed(_))).collect();
        if !unrecognized.is_empty() {
            let _ = writeln!(out, "warning: {} files matched no format and were counted as skipped (force a parser with --format):", unrecognized.len());
            for u in unrecognized.iter().take(10) {
                let note = u.note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
                let _ = writeln!(out, "  {}{note}", printable_path(&u.path));
            }
        }
        out
    }

    /// One row per source: path, format, action, resumed_from, bytes, lines,
    /// parsed, rejected, skipped, duration_ms, status, error (the Python
    /// bindings' table).
    pub fn sources_batch(&self) -> arrow::record_batch::RecordBatch {
        use arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray};
        use arrow::datatypes::{DataType, Field, Schema};
        let src = &self.sources;
        let int = |f: &dyn Fn(&SourceReport) -> u64| -> ArrayRef { Arc::new(Int64Array::from(src.iter().map(|s| f(s) as i64).collect::<Vec<_>>())) };
        let schema = Arc::new(Schema::new(vec![
            Field::new("path", DataType::Utf8, false),
            Field::new("format", DataType::Utf8, false),
            Field::new("action", DataType::Utf8, false),
            Field::new("resumed_from", DataType::Int64, false),
            Field::new("bytes", DataType::Int64, false),
            Field::new("lines", DataType::Int64, false),
            Field::new("parsed", DataType::Int64, false),
            Field::new("rejected", DataType::Int64, false),
            Field::new("skipped", DataType::Int64, false),
            Field::new("duration_ms", DataType::Float64, false),
            Field::new("status", DataType::Utf8, false),
            Field::new("error", DataType::Utf8, true),
        ]));
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(src.iter().map(|s| s.path.display().to_string()).collect::<Vec<_>>())),
            Arc::new(StringArray::from(src.iter().map(|s| s.format.map(|f| f.name()).unwrap_or("unrecognized")).collect::<Vec<_>>())),
            Arc::new(StringArray::from(src.iter().map(|s| action_name(&s.action)).collect::<Vec<_>>())),
            int(&|s| if let SourceAction::Resumed(o) = s.action { o } else { 0 }),
            int(&|s| s.bytes),
            int(&|s| s.stats.lines),
            int(&|s| s.stats.parsed),
            int(&|s| s.stats.rejected),
            int(&|s| s.stats.skipped),
            Arc::new(Float64Array::from(src.iter().map(|s| s.duration_ms).collect::<Vec<_>>())),
            Arc::new(StringArray::from(src.iter().map(|s| s.status()).collect::<Vec<_>>())),
            Arc::new(StringArray::from(src.iter().map(|s| s.error.clone()).collect::<Vec<_>>())),
        ];
        arrow::record_batch::RecordBatch::try_new(schema, cols).expect("columns match the schema")
    }

    /// The summary as one JSON object (`ingest --progress-json`): the same
    /// figures as [`IngestSummary::report`], for scheduled jobs.
    pub fn to_json(&self) -> serde_json::Value {
        let t = self.totals();
        let count = |a: &dyn Fn(&SourceReport) -> bool| self.sources.iter().filter(|s| a(s)).count();
        let sources: Vec<serde_json::Value> = self
            .sources
            .iter()
            .map(|s| {
                serde_json::json!({
                    "path": mcpf_formats::text::path_text(&s.path),
                    "format": s.format.map(|f| f.name()).unwrap_or("unrecognized"),
                    "action": action_name(&s.action),
                    "resumed_from": if let SourceAction::Resumed(o) = s.action { o } else { 0 },
                    "bytes": s.bytes, "lines": s.stats.lines, "parsed": s.stats.parsed, "rejected": s.stats.rejected, "skipped": s.stats.skipped,
                    "rows": s.stats.rows, "duration_ms": s.duration_ms, "status": s.status(), "error": s.error, "note": s.note, "held_back_bytes": s.held_back,
                })
            })
            .collect();
        serde_json::json!({
            "event": "summary",
            "ingest_id": self.ingest_id,
            "duration_ms": self.duration_ms,
            "bytes": self.bytes,
            "files": {
                "total": self.sources.len(),
                "new": count(&|s| matches!(s.action, SourceAction::Full | SourceAction::Resumed(_))),
                "already_ingested": count(&|s| s.action == SourceAction::AlreadyIngested),
                "failed": count(&|s| s.action == SourceAction::Failed),
            },
            "lines": {"total": t.lines, "parsed": t.parsed, "rejected": t.rejected, "skipped": t.skipped, "skipped_reasons": t.skipped_reasons},
            "rows": self.rows,
            "replaced": self.replaced,
            "recovered": self.recovered,
            "sources": sources,
        })
    }

    /// Sources that could not be read to their end.
    pub fn failed_sources(&self) -> usize {
        self.sources.iter().filter(|x| x.error.is_some()).count()
    }

    /// Line accounting summed over the run's sources.
    pub fn totals(&self) -> SourceStats {
        let mut t = SourceStats::default();
        for s in &self.sources {
            t.lines += s.stats.lines;
            t.parsed += s.stats.parsed;
            t.rejected += s.stats.rejected;
            t.skipped += s.stats.skipped;
            for (k, v) in &s.stats.skipped_reasons {
                *t.skipped_reasons.entry(k.clone()).or_insert(0) += v;
            }
        }
        t
    }
}

/// `ingested`, `grown`, `already ingested` or `failed`.
fn action_name(a: &SourceAction) -> &'static str {
    match a {
        SourceAction::Full => "ingested",
        SourceAction::Resumed(_) => "grown",
        SourceAction::AlreadyIngested => "already ingested",
        SourceAction::Failed => "failed",
    }
}
