//! Rendering findings and query results: table, JSON, JSON Lines, CSV.
//!
//! Log content is attacker-controlled and ends up in these outputs, so:
//! terminal output escapes control characters (no ANSI escape passthrough),
//! CSV neutralizes spreadsheet formulas (a cell starting with `= + - @`, tab
//! or CR gets a leading `'`), JSON escapes by construction.

use std::io::{self, Write};

use arrow::array::Array;
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::Finding;

/// Output formats shared by `detect` and `sql`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Json,
    Jsonl,
    Csv,
    /// OCSF, one JSON object per line: findings as Detection Finding (class
    /// 2004), delivery rows (`sql`, `timeline`) as Email Activity (class 4009).
    Ocsf,
    /// Timelines only: JSON Lines that Timesketch imports (message, datetime, timestamp_desc).
    Timesketch,
}

impl std::str::FromStr for OutputFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "table" => Ok(OutputFormat::Table),
            "json" => Ok(OutputFormat::Json),
            "jsonl" => Ok(OutputFormat::Jsonl),
            "csv" => Ok(OutputFormat::Csv),
            "ocsf" => Ok(OutputFormat::Ocsf),
            "timesketch" => Ok(OutputFormat::Timesketch),
            _ => Err(format!("unknown output format {s:?}; expected table, json, jsonl, csv, ocsf (findings) or timesketch (timeline)")),
        }
    }
}

/// Text for a terminal or table: control characters, bidi controls and
/// invisible characters shown as escapes (see [`mcpf_formats::text`]).
pub fn terminal_safe(s: &str) -> String {
    mcpf_formats::text::printable(s)
}

/// Like [`terminal_safe`] but keeps newlines and tabs (multi-line text such as
/// a rule's SQL), escaping every other control character.
pub fn terminal_safe_block(s: &str) -> String {
    mcpf_formats::text::printable_block(s)
}

/// A CSV cell that a spreadsheet will not evaluate, escaped for the terminal.
pub fn csv_safe(s: &str) -> String {
    let s = terminal_safe(s);
    let cell = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) || s.starts_with("\\t") || s.starts_with("\\r") { format!("'{s}") } else { s };
    // `;` is the field separator of spreadsheets in many locales: quoted, a
    // `x;=cmd` cell stays one cell there too, and it does not start with `=`.
    if cell.contains([',', '"', '\n', ';']) || cell.starts_with(' ') || cell.ends_with(' ') {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell
    }
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// `file:line`, or `file:line#/json/pointer` inside a JSON document.
pub fn evidence_location(e: &crate::Evidence) -> String {
    match &e.source_pointer {
        Some(p) => format!("{}:{}#{}", e.source_file, e.source_line, p),
        None => format!("{}:{}", e.source_file, e.source_line),
    }
}

const FINDING_COLUMNS: [&str; 16] = [
    "finding_id", "rule_id", "severity", "title", "key", "first_seen", "last_seen", "count", "address", "sender", "server", "version", "session", "detail",
    "evidence_total", "evidence",
];

fn finding_cells(f: &Finding) -> Vec<String> {
    let o = |x: &Option<String>| x.clone().unwrap_or_default();
    let ev: Vec<String> = f.evidence.iter().map(evidence_location).collect();
    vec![
        f.finding_id.clone(),
        f.rule_id.clone(),
        f.severity.name().to_string(),
        f.title.clone(),
        f.key.clone(),
        f.first_seen.clone(),
        f.last_seen.clone(),
        f.count.to_string(),
        o(&f.address),
        o(&f.sender),
        o(&f.server),
        o(&f.version),
        o(&f.session),
        o(&f.detail),
        f.evidence_total.to_string(),
        ev.join(" "),
    ]
}

/// Write findings in a format.
pub fn write_findings(w: &mut dyn Write, findings: &[Finding], format: OutputFormat) -> io::Result<()> {
    match format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut *w, findings)?;
            writeln!(w)
        }
        OutputFormat::Jsonl => {
            for f in findings {
                serde_json::to_writer(&mut *w, f)?;
                writeln!(w)?;
            }
            Ok(())
        }
        OutputFormat::Ocsf => {
            for f in findings {
                serde_json::to_writer(&mut *w, &crate::ocsf::detection_finding(f))?;
                writeln!(w)?;
            }
            Ok(())
        }
        OutputFormat::Timesketch => Err(io::Error::new(io::ErrorKind::InvalidInput, "--format timesketch is for timelines; for findings use ocsf, json, jsonl, csv or table")),
        OutputFormat::Csv => {
            writeln!(w, "{}", FINDING_COLUMNS.join(","))?;
            for f in findings {
                let cells: Vec<String> = finding_cells(f).iter().map(|c| csv_safe(c)).collect();
                writeln!(w, "{}", cells.join(","))?;
            }
            Ok(())
        }
        OutputFormat::Table => {
            if findings.is_empty() {
                return writeln!(w, "no findings");
            }
            for f in findings {
                let t = terminal_safe;
                writeln!(w, "[{}] {}  {}", f.severity.name().to_uppercase(), t(&f.rule_id), t(&f.title))?;
                writeln!(w, "  key:        {}", t(&f.key))?;
                for (label, v) in [("address", &f.address), ("sender", &f.sender), ("server", &f.server), ("version", &f.version), ("session", &f.session)] {
                    if let Some(v) = v {
                        writeln!(w, "  {label:<11} {}", t(v))?;
                    }
                }
                writeln!(w, "  seen:       {} .. {}  ({} counted, finding {})", f.first_seen, f.last_seen, f.count, f.finding_id)?;
                if let Some(d) = &f.detail {
                    writeln!(w, "  detail:     {}", t(&cut(d, 400)))?;
                }
                writeln!(w, "  evidence ({}):", f.evidence_total)?;
                for e in f.evidence.iter().take(8) {
                    writeln!(w, "    {}  [{}]", t(&evidence_location(e)), e.table)?;
                }
                if f.evidence.len() > 8 {
                    writeln!(w, "    … {} more (use --format json for all)", f.evidence_total.saturating_sub(8))?;
                }
                writeln!(w)?;
            }
            Ok(())
        }
    }
}

/// Write query results in a format.
pub fn write_batches(w: &mut dyn Write, batches: &[RecordBatch], format: OutputFormat) -> io::Result<()> {
    let opts = FormatOptions::default().with_null("");
    let schema = match batches.first() {
        Some(b) => b.schema(),
        None => {
            if format == OutputFormat::Json {
                writeln!(w, "[]")?;
            } else if format == OutputFormat::Table {
                writeln!(w, "(0 rows)")?;
            }
            return Ok(());
        }
    };
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    // Numbers and booleans stay JSON numbers and booleans.
    let literal: Vec<bool> = schema.fields().iter().map(|f| f.data_type().is_numeric() || *f.data_type() == arrow::datatypes::DataType::Boolean).collect();
    let json_value = |j: usize, v: &Option<String>| -> serde_json::Value {
        match v {
            None => serde_json::Value::Null,
            Some(t) if literal[j] => serde_json::from_str(t).unwrap_or_else(|_| serde_json::Value::String(t.clone())),
            Some(t) => serde_json::Value::String(t.clone()),
        }
    };
    if format == OutputFormat::Ocsf && !(names.iter().any(|n| n == "ts") && names.iter().any(|n| n == "recipient")) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--format ocsf on query results writes delivery rows as OCSF Email Activity and needs mail_deliveries columns (at least ts and recipient): SELECT * FROM mail_deliveries WHERE …; for other results use table, json, jsonl or csv",
        ));
    }
    let rows = text_rows(batches, &opts)?;
    match format {
        OutputFormat::Ocsf => {
            for r in &rows {
                let row: crate::ocsf_email::Row = names.iter().zip(r).enumerate().map(|(j, (n, v))| (n.clone(), json_value(j, v))).collect();
                if let Some(event) = crate::ocsf_email::email_activity(&row) {
                    serde_json::to_writer(&mut *w, &event)?;
                    writeln!(w)?;
                }
            }
            Ok(())
        }
        OutputFormat::Timesketch => {
            // Timesketch's JSONL import needs message, datetime and timestamp_desc;
            // every other column rides along as an attribute.
            for want in ["ts", "message", "timestamp_desc"] {
                if !names.iter().any(|n| n == want) {
                    return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("--format timesketch needs a column {want:?} (timeline output has it)")));
                }
            }
            for r in &rows {
                let mut m = serde_json::Map::new();
                for (j, (n, v)) in names.iter().zip(r).enumerate() {
                    let v = json_value(j, v);
                    if n == "ts" {
                        let text = v.as_str().unwrap_or_default().to_string();
                        let micros = mcpf_formats::time::parse_rfc3339(&text);
                        m.insert("datetime".into(), serde_json::Value::String(micros.map(mcpf_formats::time::to_rfc3339).unwrap_or(text)));
                        m.insert("timestamp".into(), micros.map(serde_json::Value::from).unwrap_or(serde_json::Value::Null));
                    } else {
                        m.insert(n.clone(), v);
                    }
                }
                serde_json::to_writer(&mut *w, &serde_json::Value::Object(m))?;
                writeln!(w)?;
            }
            Ok(())
        }
        OutputFormat::Json | OutputFormat::Jsonl => {
            let objs: Vec<serde_json::Value> = rows
                .iter()
                .map(|r| {
                    let m: serde_json::Map<String, serde_json::Value> = names.iter().zip(r).enumerate().map(|(j, (n, v))| (n.clone(), json_value(j, v))).collect();
                    serde_json::Value::Object(m)
                })
                .collect();
            if format == OutputFormat::Json {
                serde_json::to_writer_pretty(&mut *w, &objs)?;
                writeln!(w)
            } else {
                for o in objs {
                    serde_json::to_writer(&mut *w, &o)?;
                    writeln!(w)?;
                }
                Ok(())
            }
        }
        OutputFormat::Csv => {
            writeln!(w, "{}", names.iter().map(|n| csv_safe(n)).collect::<Vec<_>>().join(","))?;
            for r in &rows {
                writeln!(w, "{}", r.iter().map(|c| csv_safe(c.as_deref().unwrap_or(""))).collect::<Vec<_>>().join(","))?;
            }
            Ok(())
        }
        OutputFormat::Table => {
            table(w, &names, &rows)?;
            writeln!(w, "({} rows)", rows.len())
        }
    }
}

/// Every cell of `batches` as text (None for NULL).
fn text_rows(batches: &[RecordBatch], opts: &FormatOptions) -> io::Result<Vec<Vec<Option<String>>>> {
    let mut rows: Vec<Vec<Option<String>>> = Vec::new();
    for b in batches {
        let fmts: Vec<ArrayFormatter> = b.columns().iter().map(|c| ArrayFormatter::try_new(c.as_ref(), opts)).collect::<Result<_, _>>().map_err(io::Error::other)?;
        for i in 0..b.num_rows() {
            rows.push((0..b.num_columns()).map(|j| if b.column(j).is_null(i) { None } else { Some(fmts[j].value(i).to_string()) }).collect());
        }
    }
    Ok(rows)
}

/// The rows of `batches` as an aligned, terminal-safe table without the
/// row-count footer (the caller says how many rows there are in all).
pub fn write_table_rows(w: &mut dyn Write, batches: &[RecordBatch]) -> io::Result<()> {
    let Some(schema) = batches.first().map(|b| b.schema()) else { return Ok(()) };
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    table(w, &names, &text_rows(batches, &FormatOptions::default().with_null(""))?)
}

fn table(w: &mut dyn Write, names: &[String], rows: &[Vec<Option<String>>]) -> io::Result<()> {
    const MAX_CELL: usize = 120;
    let cells: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(|c| cut(&terminal_safe(c.as_deref().unwrap_or("")), MAX_CELL)).collect()).collect();
    let mut widths: Vec<usize> = names.iter().map(|n| terminal_safe(n).chars().count()).collect();
    for r in &cells {
        for (j, c) in r.iter().enumerate() {
            widths[j] = widths[j].max(c.chars().count());
        }
    }
    let line = |w: &mut dyn Write, vals: &[String]| -> io::Result<()> {
        let parts: Vec<String> = vals.iter().enumerate().map(|(j, v)| format!("{:<width$}", v, width = widths[j])).collect();
        writeln!(w, "{}", parts.join(" | ").trim_end())
    };
    line(w, &names.iter().map(|n| terminal_safe(n)).collect::<Vec<_>>())?;
    writeln!(w, "{}", widths.iter().map(|n| "-".repeat(*n)).collect::<Vec<_>>().join("-+-"))?;
    for r in &cells {
        line(w, r)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_is_neutralized() {
        assert_eq!(terminal_safe("a\x1b[31mred"), "a\\u{1b}[31mred");
        assert_eq!(csv_safe("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_safe("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_safe("plain"), "plain");
        assert_eq!(csv_safe("-1+2"), "'-1+2");
        // A second cell in a ';'-separated import.
        assert_eq!(csv_safe("a;=cmd|' /C calc'!A0"), "\"a;=cmd|' /C calc'!A0\"");
        // Bidi controls and invisible characters never reach a terminal raw.
        for c in ['\u{202e}', '\u{202a}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}', '\u{200b}', '\u{200f}', '\u{feff}', '\u{2028}', '\u{061c}'] {
            let shown = terminal_safe(&format!("evil{c}moc.example"));
            assert!(!shown.contains(c) && shown.contains("\\u{"), "{c:?}: {shown}");
            assert!(!csv_safe(&format!("x{c}y")).contains(c));
            assert!(!terminal_safe_block(&format!("x{c}y")).contains(c));
        }
        assert_eq!(terminal_safe("bob@exämple.com"), "bob@exämple.com", "ordinary non-ASCII stays");
    }
}
