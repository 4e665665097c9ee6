//! How `Rows` and `Findings` look in a REPL and in Jupyter: a bounded,
//! readable text table (`__repr__`) and an HTML table (`_repr_html_`), as
//! polars and DuckDB show theirs. At most [`MAX_ROWS`] rows and
//! [`MAX_COLUMNS`] columns, cells cut to [`MAX_CELL`] characters, the
//! columns that matter first; every cell is log content, so the text view
//! escapes control characters and the HTML view escapes markup.

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use mcpf_detect::output::terminal_safe;

/// Rows shown (the first ones; the total is always said).
pub const MAX_ROWS: usize = 10;
/// Columns shown; the rest are named in a footer.
pub const MAX_COLUMNS: usize = 8;
/// Characters per cell before it is cut with an ellipsis.
pub const MAX_CELL: usize = 40;

/// The columns of a findings table worth reading first.
pub const FINDING_COLUMNS: [&str; 8] = ["severity", "rule_id", "key", "count", "first_seen", "last_seen", "server", "detail"];

/// What to show of a result: the columns (preferred ones first) and the
/// first rows' cells as text.
struct View {
    title: String,
    columns: Vec<String>,
    hidden: Vec<String>,
    rows: Vec<Vec<String>>,
    total: usize,
}

fn view(kind: &str, schema: &SchemaRef, batches: &[RecordBatch], preferred: &[&str]) -> View {
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let mut order: Vec<usize> = preferred.iter().filter_map(|p| names.iter().position(|n| n == p)).collect();
    let rest: Vec<usize> = (0..names.len()).filter(|i| !order.contains(i)).collect();
    order.extend(rest);
    let (shown, hidden) = order.split_at(order.len().min(MAX_COLUMNS));
    let total: usize = batches.iter().map(|b| b.num_rows()).sum();
    let opts = FormatOptions::default().with_null("null");
    let mut rows = Vec::new();
    'outer: for b in batches {
        let fmts: Vec<Option<ArrayFormatter>> = shown.iter().map(|i| ArrayFormatter::try_new(b.column(*i).as_ref(), &opts).ok()).collect();
        for r in 0..b.num_rows() {
            if rows.len() == MAX_ROWS {
                break 'outer;
            }
            rows.push(fmts.iter().map(|f| f.as_ref().map(|f| cut(&f.value(r).to_string())).unwrap_or_default()).collect());
        }
    }
    View {
        title: format!("{kind}: {total} row{} x {} column{}", if total == 1 { "" } else { "s" }, names.len(), if names.len() == 1 { "" } else { "s" }),
        columns: shown.iter().map(|i| names[*i].clone()).collect(),
        hidden: hidden.iter().map(|i| names[*i].clone()).collect(),
        rows,
        total,
    }
}

fn cut(s: &str) -> String {
    let one_line: String = s.chars().map(|c| if c == '\n' || c == '\r' || c == '\t' { ' ' } else { c }).collect();
    if one_line.chars().count() <= MAX_CELL {
        one_line
    } else {
        format!("{}…", one_line.chars().take(MAX_CELL - 1).collect::<String>())
    }
}

fn footer(v: &View) -> Vec<String> {
    let mut out = Vec::new();
    if v.total > v.rows.len() {
        out.push(format!("… {} more row(s); to_pandas(), to_polars() or to_pyarrow() for all", v.total - v.rows.len()));
    }
    if !v.hidden.is_empty() {
        out.push(format!("{} more column(s): {}", v.hidden.len(), v.hidden.join(", ")));
    }
    out
}

/// The text view (`__repr__`).
pub fn text(kind: &str, schema: &SchemaRef, batches: &[RecordBatch], preferred: &[&str]) -> String {
    let v = view(kind, schema, batches, preferred);
    let cells: Vec<Vec<String>> = v.rows.iter().map(|r| r.iter().map(|c| terminal_safe(c)).collect()).collect();
    let heads: Vec<String> = v.columns.iter().map(|c| terminal_safe(c)).collect();
    let mut widths: Vec<usize> = heads.iter().map(|h| h.chars().count()).collect();
    for r in &cells {
        for (j, c) in r.iter().enumerate() {
            widths[j] = widths[j].max(c.chars().count());
        }
    }
    let line = |vals: &[String]| vals.iter().enumerate().map(|(j, x)| format!("{:<w$}", x, w = widths[j])).collect::<Vec<_>>().join(" | ").trim_end().to_string();
    let mut out = vec![v.title.clone()];
    if !v.columns.is_empty() {
        out.push(line(&heads));
        out.push(widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("-+-"));
        out.extend(cells.iter().map(|r| line(r)));
    }
    out.extend(footer(&v).iter().map(|f| terminal_safe(f)));
    out.join("\n")
}

/// Markup escaped, after control and bidi characters were made visible
/// (`\u{202e}`) as in the text view.
fn html_escape(s: &str) -> String {
    let s = terminal_safe(s);
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The HTML view (`_repr_html_`): a plain table Jupyter styles itself.
pub fn html(kind: &str, schema: &SchemaRef, batches: &[RecordBatch], preferred: &[&str]) -> String {
    let v = view(kind, schema, batches, preferred);
    let mut out = String::from("<div class=\"mcp-forensics\">");
    out.push_str(&format!("<p><b>{}</b></p><table class=\"dataframe\"><thead><tr>", html_escape(&v.title)));
    for c in &v.columns {
        out.push_str(&format!("<th>{}</th>", html_escape(c)));
    }
    out.push_str("</tr></thead><tbody>");
    for r in &v.rows {
        out.push_str("<tr>");
        for c in r {
            out.push_str(&format!("<td>{}</td>", html_escape(c)));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    for f in footer(&v) {
        out.push_str(&format!("<p><i>{}</i></p>", html_escape(&f)));
    }
    out.push_str("</div>");
    out
}
