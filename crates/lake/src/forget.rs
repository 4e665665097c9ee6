//! Forgetting a source: its rows leave every table, its `_ingest_log`
//! records stay as history.
//!
//! A source ingested with the wrong `--year`, `--tz` or `--format` is either
//! dropped (`forget`) or read again (`ingest --force`). Both run as one
//! writer transaction: the rows read from the source are deleted (a Delta
//! DELETE per table) and, for `--force`, the source's new rows appended, and
//! readers see both at once when the run publishes. A killed run is rolled
//! back like any other.
//!
//! `_ingest_log` is append-only evidence: the run adds a record with status
//! `forgotten` for each source. Records of the same path from earlier runs
//! stop counting as "ingested" (see [`LIVE_INGEST_LOG`]), so the next ingest
//! reads the file again, and `verify` no longer checks it.

use std::collections::{BTreeMap, BTreeSet};

use deltalake::datafusion::prelude::{col, lit};
use mcpf_formats::{NamedRow, RowSink, Val};
use mcpf_schema::Table;

use crate::sink::LakeSink;
use crate::txn::WriteTxn;
use crate::{Lake, Result};

/// `_ingest_log` as the lake's own bookkeeping reads it (table `l`): the
/// records of sources still in the lake. A record is void once a later run
/// forgot its path; the `forgotten` records themselves are history, not
/// ingests.
pub(crate) const LIVE_INGEST_LOG: &str = "WITH l AS (
  SELECT a.* FROM ingest_log_records a
  WHERE a.status <> 'forgotten'
    AND NOT EXISTS (
      SELECT 1 FROM ingest_log_records f
      WHERE f.status = 'forgotten' AND f.source_file = a.source_file AND f.ingest_id <> a.ingest_id AND f.ts >= a.ts))
";

/// Tables that hold rows read from sources (all but the run's own records).
fn data_tables() -> impl Iterator<Item = Table> {
    Table::ALL.into_iter().filter(|t| !matches!(t, Table::IngestLog | Table::Findings))
}

/// One source a run forgot: its path and the rows removed per table.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ForgottenSource {
    pub source_file: String,
    pub rows_removed: BTreeMap<&'static str, u64>,
}

impl ForgottenSource {
    /// Rows removed from every table together.
    pub fn total(&self) -> u64 {
        self.rows_removed.values().sum()
    }
}

/// What `forget` did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ForgetReport {
    pub run_id: String,
    pub sources: Vec<ForgottenSource>,
}

impl Lake {
    /// Drop every row read from the sources named by `specs` (a path as
    /// ingest recorded it in `_ingest_log.source_file`, or a source's
    /// sha256, whole or its first 12+ hex digits) and record that in
    /// `_ingest_log`, in one published run. Naming a source the lake does
    /// not hold is an error that says how to list them.
    pub fn forget(&self, specs: &[String], on_wait: &mut dyn FnMut(&str)) -> Result<ForgetReport> {
        let run_id = format!("forget-{}", chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ"));
        let mut txn = WriteTxn::begin(self, "forget", &run_id, None, on_wait)?;
        let outcome = (|| {
            let paths = self.resolve_sources(specs)?;
            let sources = self.delete_rows_of(&mut txn, &paths)?;
            let mut sink = LakeSink::open(self, &run_id)?;
            for s in &sources {
                log_forgotten(self, &mut sink, &run_id, s)?;
            }
            sink.commit(&mut txn)?;
            Ok(ForgetReport { run_id: run_id.clone(), sources })
        })();
        match outcome {
            Ok(report) => {
                txn.publish()?;
                Ok(report)
            }
            Err(e) => {
                txn.abort();
                Err(e)
            }
        }
    }

    /// The recorded paths `specs` name, each once, in the order given.
    fn resolve_sources(&self, specs: &[String]) -> Result<Vec<String>> {
        let batches = self.block_on(self.query_ingest_log("SELECT DISTINCT source_file, source_sha256, coalesce(content_sha256, '') FROM l WHERE status <> 'failed'"))?;
        let mut known: Vec<(String, String, String)> = Vec::new();
        for b in &batches {
            let (f, s, c) = (crate::utf8_column(b, 0), crate::utf8_column(b, 1), crate::utf8_column(b, 2));
            let (f, s, c) = (f.map_err(|e| self.lake_err(e))?, s.map_err(|e| self.lake_err(e))?, c.map_err(|e| self.lake_err(e))?);
            for i in 0..b.num_rows() {
                known.push((f.value(i).to_string(), s.value(i).to_ascii_lowercase(), c.value(i).to_ascii_lowercase()));
            }
        }
        let mut out: Vec<String> = Vec::new();
        for spec in specs {
            let lower = spec.to_ascii_lowercase();
            let is_hash = lower.len() >= 12 && lower.bytes().all(|b| b.is_ascii_hexdigit());
            // The same file named another way (relative here, absolute at
            // ingest, or through a link) is the same source.
            let same_file = |recorded: &str| match (std::fs::canonicalize(spec), std::fs::canonicalize(mcpf_formats::text::path_from_text(recorded))) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            };
            let hits: BTreeSet<&str> = known
                .iter()
                .filter(|(f, s, c)| f == spec || (is_hash && (s.starts_with(&lower) || (!c.is_empty() && c.starts_with(&lower)))))
                .map(|(f, _, _)| f.as_str())
                .collect();
            let hits = if hits.is_empty() { known.iter().filter(|(f, _, _)| same_file(f)).map(|(f, _, _)| f.as_str()).collect() } else { hits };
            if hits.is_empty() && lower.len() < 12 && lower.len() >= 4 && lower.bytes().all(|b| b.is_ascii_hexdigit()) && !known.iter().any(|(f, _, _)| f == spec) {
                return Err(self.lake_err(format!("{spec:?}: a sha256 prefix needs 12 or more hex digits (a shorter one could name more than one source)")));
            }
            if hits.is_empty() {
                return Err(self.lake_err(format!(
                    "no ingested source is {spec:?} (give the path exactly as ingest recorded it, or a sha256 of 12+ hex digits); list them with: mcp-forensics sql --lake {} \"SELECT DISTINCT source_file, source_sha256 FROM _ingest_log WHERE status NOT IN ('failed', 'forgotten')\" (a source forgotten before stays in _ingest_log as history)",
                    self.root().display()
                )));
            }
            for h in hits {
                if !out.iter().any(|o| o == h) {
                    out.push(h.to_string());
                }
            }
        }
        Ok(out)
    }

    /// Delete the rows read from `paths` from every data table, one commit
    /// per table that held any, inside `txn`.
    pub(crate) fn delete_rows_of(&self, txn: &mut WriteTxn<'_>, paths: &[String]) -> Result<Vec<ForgottenSource>> {
        let mut sources: Vec<ForgottenSource> = paths.iter().map(|p| ForgottenSource { source_file: p.clone(), ..Default::default() }).collect();
        if paths.is_empty() {
            return Ok(sources);
        }
        for t in data_tables() {
            let per_path = self.block_on(self.count_rows_of(t, paths))?;
            if per_path.values().all(|n| *n == 0) {
                continue;
            }
            let predicate = col("source_file").in_list(paths.iter().map(|p| lit(p.clone())).collect(), false);
            let version = self.block_on(self.store().delete_where(t, predicate, txn.run_id())).map_err(|e| self.lake_err(e))?;
            txn.committed(t, version);
            for s in &mut sources {
                if let Some(n) = per_path.get(&s.source_file).filter(|n| **n > 0) {
                    s.rows_removed.insert(t.name(), *n);
                }
            }
        }
        Ok(sources)
    }

    /// Rows of `t` per source path, at the table's latest version (the
    /// writer's view: what this run will delete).
    async fn count_rows_of(&self, t: Table, paths: &[String]) -> Result<BTreeMap<String, u64>> {
        let Some(table) = self.store().load(t, None).await.map_err(|e| self.lake_err(e))? else { return Ok(BTreeMap::new()) };
        let ctx = deltalake::datafusion::prelude::SessionContext::new();
        let provider = table.table_provider().await.map_err(|e| self.lake_err(e))?;
        let df = ctx.read_table(provider).map_err(|e| self.lake_err(e))?;
        let df = df
            .filter(col("source_file").in_list(paths.iter().map(|p| lit(p.clone())).collect(), false))
            .and_then(|d| d.aggregate(vec![col("source_file")], vec![deltalake::datafusion::functions_aggregate::count::count_all()]))
            .map_err(|e| self.lake_err(e))?;
        let mut out = BTreeMap::new();
        for b in df.collect().await.map_err(|e| self.lake_err(e))? {
            let f = crate::utf8_column(&b, 0).map_err(|e| self.lake_err(e))?;
            let n = crate::i64_column(&b, 1).map_err(|e| self.lake_err(e))?;
            for i in 0..b.num_rows() {
                out.insert(f.value(i).to_string(), n.value(i).max(0) as u64);
            }
        }
        Ok(out)
    }
}

/// The `_ingest_log` record of a forgotten source: status `forgotten`, the
/// rows removed per table in `rows_json`.
pub(crate) fn log_forgotten(lake: &Lake, sink: &mut LakeSink<'_>, run_id: &str, s: &ForgottenSource) -> Result<()> {
    let now = chrono::Utc::now().timestamp_micros();
    let date = mcpf_formats::time::date_of(now);
    let rows = serde_json::to_string(&s.rows_removed).unwrap_or_default();
    let zero = || Val::Int(Some(0));
    let empty = crate::fingerprint::empty_sha();
    let mut row = NamedRow::new(Table::IngestLog);
    row.set("ts", Val::Ts(Some(now)))
        .set("date", Val::Str(Some(&date)))
        .set("source_sha256", Val::Str(Some(&empty)))
        .set("source_size", zero())
        .set("resumed_from", zero())
        .set("prefix_sha256", Val::Str(Some(&empty)))
        .set("lines", zero())
        .set("lines_parsed", zero())
        .set("lines_rejected", zero())
        .set("lines_skipped", zero())
        .set("skipped_reasons", Val::Str(Some("{}")))
        .set("rows_json", Val::Str(Some(&rows)))
        .set("duration_ms", Val::Float(Some(0.0)))
        .set("tool_version", Val::Str(Some(env!("CARGO_PKG_VERSION"))))
        .set("status", Val::Str(Some("forgotten")))
        .set("rotation_group", Val::Str(Some("")))
        .set("held_back_bytes", zero())
        .set("source_format", Val::Str(Some("forgotten")))
        .set("source_file", Val::Str(Some(&s.source_file)))
        .set("source_offset", zero())
        .set("source_line", zero())
        .set("ingest_id", Val::Str(Some(run_id)));
    sink.row(Table::IngestLog, row.cells());
    match sink.take_error() {
        Some(e) => Err(lake.lake_err(e)),
        None => Ok(()),
    }
}
