//! Findings, evidence, rules and table counts as Arrow record batches.
//!
//! The CLI prints these as text; the Python bindings hand the same batches
//! to pyarrow, pandas, polars and DuckDB without a copy. Keeping the shapes
//! here means a notebook and a SIEM export see the same columns. Text is
//! carried exactly as logged (an analyst needs the bytes); the text outputs
//! in [`crate::output`] are the ones that neutralize escapes and formulas.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Int64Array, ListBuilder, StringArray, StringBuilder, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use mcpf_schema::Table;

use crate::{err, Finding, Result, Rule};

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn text_list_field(name: &str) -> Field {
    Field::new(name, DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))), false)
}

fn text_lists<'a>(rows: impl Iterator<Item = &'a Vec<String>>) -> ArrayRef {
    let mut b = ListBuilder::new(StringBuilder::new());
    for row in rows {
        for v in row {
            b.values().append_value(v);
        }
        b.append(true);
    }
    Arc::new(b.finish())
}

fn texts<'a>(v: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(v.collect::<StringArray>())
}

/// Columns of [`findings_batch`].
pub fn findings_schema() -> SchemaRef {
    let t = |n: &str| Field::new(n, DataType::Utf8, false);
    let o = |n: &str| Field::new(n, DataType::Utf8, true);
    Arc::new(Schema::new(vec![
        t("finding_id"),
        t("rule_id"),
        t("severity"),
        t("title"),
        t("key"),
        Field::new("first_seen", ts_type(), false),
        Field::new("last_seen", ts_type(), false),
        Field::new("count", DataType::Int64, false),
        o("address"),
        o("sender"),
        o("server"),
        o("version"),
        o("session"),
        o("detail"),
        Field::new("evidence_total", DataType::Int64, false),
        t("rule_origin"),
        text_list_field("references"),
    ]))
}

/// One row per finding, in the order given (the engine sorts by severity,
/// then first sighting).
pub fn findings_batch(findings: &[Finding]) -> Result<RecordBatch> {
    let f = findings;
    let cols: Vec<ArrayRef> = vec![
        texts(f.iter().map(|x| Some(x.finding_id.as_str()))),
        texts(f.iter().map(|x| Some(x.rule_id.as_str()))),
        texts(f.iter().map(|x| Some(x.severity.name()))),
        texts(f.iter().map(|x| Some(x.title.as_str()))),
        texts(f.iter().map(|x| Some(x.key.as_str()))),
        Arc::new(TimestampMicrosecondArray::from(f.iter().map(|x| x.first_seen_us).collect::<Vec<_>>()).with_timezone("UTC")),
        Arc::new(TimestampMicrosecondArray::from(f.iter().map(|x| x.last_seen_us).collect::<Vec<_>>()).with_timezone("UTC")),
        Arc::new(Int64Array::from(f.iter().map(|x| x.count as i64).collect::<Vec<_>>())),
        texts(f.iter().map(|x| x.address.as_deref())),
        texts(f.iter().map(|x| x.sender.as_deref())),
        texts(f.iter().map(|x| x.server.as_deref())),
        texts(f.iter().map(|x| x.version.as_deref())),
        texts(f.iter().map(|x| x.session.as_deref())),
        texts(f.iter().map(|x| x.detail.as_deref())),
        Arc::new(Int64Array::from(f.iter().map(|x| x.evidence_total as i64).collect::<Vec<_>>())),
        texts(f.iter().map(|x| Some(x.rule_origin.as_str()))),
        text_lists(f.iter().map(|x| &x.references)),
    ];
    RecordBatch::try_new(findings_schema(), cols).map_err(err)
}

/// Columns of [`evidence_batch`].
pub fn evidence_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("finding_id", DataType::Utf8, false),
        Field::new("rule_id", DataType::Utf8, false),
        Field::new("ts", ts_type(), true),
        Field::new("evidence_table", DataType::Utf8, false),
        Field::new("source_file", DataType::Utf8, false),
        Field::new("source_line", DataType::Int64, false),
        Field::new("source_offset", DataType::Int64, false),
        Field::new("source_pointer", DataType::Utf8, true),
        Field::new("detail", DataType::Utf8, true),
        Field::new("raw_line", DataType::Utf8, true),
        Field::new("raw_note", DataType::Utf8, true),
    ]))
}

/// One row per evidence row of every finding, with the raw log line read
/// back from the source at its byte offset when `raw` is set. Relative
/// source paths are resolved from `base`. Raw lines of rules marked
/// `sensitive` are withheld, and a line that cannot be read says why in
/// `raw_note` (the row is kept).
pub fn evidence_batch(findings: &[Finding], rules: &[Rule], raw: bool, base: Option<&Path>) -> Result<RecordBatch> {
    let mut finding_id = Vec::new();
    let mut rule_id = Vec::new();
    let mut ts: Vec<Option<i64>> = Vec::new();
    let mut table = Vec::new();
    let mut file = Vec::new();
    let mut line = Vec::new();
    let mut offset = Vec::new();
    let mut pointer = Vec::new();
    let mut detail = Vec::new();
    let mut raw_line: Vec<Option<String>> = Vec::new();
    let mut raw_note: Vec<Option<String>> = Vec::new();
    for f in findings {
        let sensitive = rules.iter().find(|r| r.id == f.rule_id).is_some_and(|r| r.sensitive);
        for e in &f.evidence {
            finding_id.push(f.finding_id.clone());
            rule_id.push(f.rule_id.clone());
            ts.push(mcpf_formats::time::parse_rfc3339(&e.ts));
            table.push(e.table.clone());
            file.push(e.source_file.clone());
            line.push(e.source_line);
            offset.push(e.source_offset);
            pointer.push(e.source_pointer.clone());
            detail.push(e.detail.clone());
            let (l, note) = if !raw {
                (None, None)
            } else if sensitive {
                (None, Some("withheld: this rule's matches are secrets; read the line at source_offset".to_string()))
            } else {
                let p = crate::explain::source_path(&e.source_file, base);
                match crate::explain::raw_line(&p, e.source_offset.max(0) as u64) {
                    Ok(l) => (Some(l), None),
                    Err(er) => (None, Some(format!("cannot read {}: {er}", p.display()))),
                }
            };
            raw_line.push(l);
            raw_note.push(note);
        }
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(finding_id)),
        Arc::new(StringArray::from(rule_id)),
        Arc::new(TimestampMicrosecondArray::from(ts).with_timezone("UTC")),
        Arc::new(StringArray::from(table)),
        Arc::new(StringArray::from(file)),
        Arc::new(Int64Array::from(line)),
        Arc::new(Int64Array::from(offset)),
        Arc::new(StringArray::from(pointer)),
        Arc::new(StringArray::from(detail)),
        Arc::new(StringArray::from(raw_line)),
        Arc::new(StringArray::from(raw_note)),
    ];
    RecordBatch::try_new(evidence_schema(), cols).map_err(err)
}

/// One row per rule: what `rules list` and `rules show` print.
pub fn rules_batch(rules: &[Rule]) -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("severity", DataType::Utf8, false),
        Field::new("title", DataType::Utf8, false),
        Field::new("description", DataType::Utf8, false),
        text_list_field("references"),
        text_list_field("entities"),
        Field::new("parameters", DataType::Utf8, false),
        text_list_field("lists"),
        Field::new("sensitive", DataType::Boolean, false),
        Field::new("fixtures", DataType::Int64, false),
        Field::new("origin", DataType::Utf8, false),
        Field::new("sql", DataType::Utf8, false),
    ]));
    let params: Vec<String> = rules
        .iter()
        .map(|r| {
            let m: serde_json::Map<String, serde_json::Value> = r
                .parameters
                .iter()
                .map(|(k, p)| (k.clone(), serde_json::json!({"type": format!("{:?}", p.kind).to_lowercase(), "default": crate::rule::value_text(&p.default), "description": p.description})))
                .collect();
            serde_json::Value::Object(m).to_string()
        })
        .collect();
    let lists: Vec<Vec<String>> = rules.iter().map(|r| r.lists.keys().cloned().collect()).collect();
    let cols: Vec<ArrayRef> = vec![
        texts(rules.iter().map(|r| Some(r.id.as_str()))),
        texts(rules.iter().map(|r| Some(r.severity.name()))),
        texts(rules.iter().map(|r| Some(r.title.as_str()))),
        texts(rules.iter().map(|r| Some(r.description.trim()))),
        text_lists(rules.iter().map(|r| &r.references)),
        text_lists(rules.iter().map(|r| &r.entities)),
        Arc::new(StringArray::from(params)),
        text_lists(lists.iter()),
        Arc::new(BooleanArray::from(rules.iter().map(|r| r.sensitive).collect::<Vec<_>>())),
        Arc::new(Int64Array::from(rules.iter().map(|r| r.tests.len() as i64).collect::<Vec<_>>())),
        texts(rules.iter().map(|r| Some(r.origin.as_str()))),
        texts(rules.iter().map(|r| Some(r.sql.trim()))),
    ];
    RecordBatch::try_new(schema, cols).map_err(err)
}

/// One row per lake table: name, row count, what it holds.
pub fn tables_batch(counts: &[(Table, i64)]) -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("table", DataType::Utf8, false),
        Field::new("rows", DataType::Int64, false),
        Field::new("description", DataType::Utf8, false),
    ]));
    let cols: Vec<ArrayRef> = vec![
        texts(counts.iter().map(|(t, _)| Some(t.name()))),
        Arc::new(Int64Array::from(counts.iter().map(|(_, n)| *n).collect::<Vec<_>>())),
        texts(counts.iter().map(|(t, _)| Some(t.doc()))),
    ];
    RecordBatch::try_new(schema, cols).map_err(err)
}
