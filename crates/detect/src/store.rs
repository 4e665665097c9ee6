//! The `_findings` table: what earlier detect runs reported, so a scheduled
//! job prints each finding once (`detect --new-only`) and keeps a history of
//! how findings grew (a row whenever a finding is new or its count or last
//! sighting changed).

use std::collections::HashMap;

use arrow::array::{Array, Int64Array, StringArray};
use mcpf_formats::{NamedRow, Val};
use mcpf_lake::txn::WriteTxn;
use mcpf_lake::{Lake, TableBuilder};
use mcpf_schema::Table;
use sha2::{Digest, Sha256};

use crate::{err, Engine, Finding, Result};

/// The latest recorded state of a finding: (count, last_seen_us).
pub type Recorded = HashMap<String, (u64, i64)>;

/// Every finding id recorded so far, with its latest count and last sighting.
pub async fn recorded(engine: &Engine) -> Result<Recorded> {
    let batches = engine
        .sql(
            "SELECT finding_id, count, CAST(last_seen AS BIGINT) AS last_us FROM (
               SELECT finding_id, count, last_seen, row_number() OVER (PARTITION BY finding_id ORDER BY ts DESC, count DESC) AS rn FROM _findings
             ) x WHERE rn = 1",
            vec![],
        )
        .await?;
    let mut out = Recorded::new();
    for b in &batches {
        let id = arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Utf8).map_err(err)?;
        let id = id.as_any().downcast_ref::<StringArray>().expect("utf8");
        let n = arrow::compute::cast(b.column(1), &arrow::datatypes::DataType::Int64).map_err(err)?;
        let n = n.as_any().downcast_ref::<Int64Array>().expect("i64");
        let last = arrow::compute::cast(b.column(2), &arrow::datatypes::DataType::Int64).map_err(err)?;
        let last = last.as_any().downcast_ref::<Int64Array>().expect("i64");
        for i in 0..b.num_rows() {
            out.insert(id.value(i).to_string(), (n.value(i).max(0) as u64, if last.is_null(i) { 0 } else { last.value(i) }));
        }
    }
    Ok(out)
}

/// Findings no earlier run recorded.
pub fn only_new(findings: Vec<Finding>, before: &Recorded) -> Vec<Finding> {
    findings.into_iter().filter(|f| !before.contains_key(&f.finding_id)).collect()
}

/// An id for one detect run: time plus a hash of what it found.
pub fn run_id(findings: &[Finding]) -> String {
    let now = chrono::Utc::now();
    let mut h = Sha256::new();
    h.update(now.timestamp_nanos_opt().unwrap_or(0).to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    for f in findings {
        h.update(f.finding_id.as_bytes());
    }
    let hex: String = h.finalize()[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("detect-{}-{hex}", now.format("%Y%m%dT%H%M%SZ"))
}

/// Append the findings that are new or changed since `before` to
/// `_findings`, in one commit inside `txn` (the caller holds the writers'
/// lock, so `before` is what every earlier run recorded). Returns how many
/// rows were written.
pub fn record(lake: &Lake, txn: &mut WriteTxn<'_>, findings: &[Finding], before: &Recorded) -> mcpf_lake::Result<usize> {
    let changed: Vec<&Finding> =
        findings.iter().filter(|f| before.get(&f.finding_id).is_none_or(|(n, last)| *n != f.count || *last != f.last_seen_us)).collect();
    if changed.is_empty() {
        return Ok(0);
    }
    let run = txn.run_id().to_string();
    let now = chrono::Utc::now().timestamp_micros();
    let date = mcpf_formats::time::date_of(now);
    let mut b = TableBuilder::new(Table::Findings);
    for f in &changed {
        let evidence_json = serde_json::to_string(&f.evidence).map_err(|e| lake_error(lake, e))?;
        // Provenance: the finding's earliest evidence row.
        let first = f.evidence.first();
        let mut row = NamedRow::new(Table::Findings);
        row.set("ts", Val::Ts(Some(now)))
            .set("date", Val::Str(Some(&date)))
            .set("finding_id", Val::Str(Some(&f.finding_id)))
            .set("rule_id", Val::Str(Some(&f.rule_id)))
            .set("severity", Val::Str(Some(f.severity.name())))
            .set("title", Val::Str(Some(&f.title)))
            .set("key", Val::Str(Some(&f.key)))
            .set("first_seen", Val::Ts(Some(f.first_seen_us)))
            .set("last_seen", Val::Ts(Some(f.last_seen_us)))
            .set("count", Val::Int(Some(f.count as i64)))
            .set("address", Val::Str(f.address.as_deref()))
            .set("sender", Val::Str(f.sender.as_deref()))
            .set("server", Val::Str(f.server.as_deref()))
            .set("version", Val::Str(f.version.as_deref()))
            .set("session", Val::Str(f.session.as_deref()))
            .set("detail", Val::Str(f.detail.as_deref()))
            .set("evidence_total", Val::Int(Some(f.evidence_total as i64)))
            .set("evidence_json", Val::Str(Some(&evidence_json)))
            .set("rule_origin", Val::Str(Some(&f.rule_origin)))
            .set("source_format", Val::Str(Some("detect")))
            .set("source_file", Val::Str(Some(first.map(|e| e.source_file.as_str()).unwrap_or(""))))
            .set("source_offset", Val::Int(Some(first.map(|e| e.source_offset).unwrap_or(0))))
            .set("source_line", Val::Int(Some(first.map(|e| e.source_line).unwrap_or(0))))
            .set("source_pointer", Val::Str(first.and_then(|e| e.source_pointer.as_deref())))
            .set("ingest_id", Val::Str(Some(&run)));
        b.append(row.cells());
    }
    lake.append(txn, Table::Findings, b.finish())?;
    Ok(changed.len())
}

/// A detect-side error as a lake error (inside a writer transaction).
pub fn lake_error(lake: &Lake, e: impl std::fmt::Display) -> mcpf_lake::LakeError {
    mcpf_lake::LakeError::Lake { path: lake.root().to_path_buf(), message: e.to_string() }
}
