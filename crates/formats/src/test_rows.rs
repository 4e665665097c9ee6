//! Test support: parse a text with one format and keep every row as
//! column -> text (non-null cells), for the parsers' unit tests.

use std::collections::BTreeMap;
use std::sync::Arc;

use mcpf_schema::Table;

use crate::collect::Provenance;
use crate::{parse_reader, Format, RowSink, SourceInfo, SourceStats, Val};

/// Every row written, with its table.
#[derive(Default)]
pub struct Rows(pub Vec<(Table, BTreeMap<&'static str, String>)>);

impl RowSink for Rows {
    fn row(&mut self, t: Table, vals: &[Val<'_>]) {
        let cells = t.columns_static().iter().zip(vals).filter_map(|(c, v)| {
            let text = match v {
                Val::Str(s) => s.map(str::to_string),
                Val::Int(i) => i.map(|x| x.to_string()),
                Val::Bool(b) => b.map(|x| x.to_string()),
                Val::Ts(t) => t.map(|x| x.to_string()),
                Val::Float(f) => f.map(|x| x.to_string()),
            }?;
            Some((c.name, text))
        });
        self.0.push((t, cells.collect()));
    }
}

impl Rows {
    /// The rows of one table, in order.
    pub fn of(&self, t: Table) -> Vec<&BTreeMap<&'static str, String>> {
        self.0.iter().filter(|(tt, _)| *tt == t).map(|(_, m)| m).collect()
    }
}

/// Parse `text` as `format` from a file at `path` (modified at `mtime`),
/// asserting that every line is accounted for.
pub fn parse(format: Format, path: &str, text: &str, mtime: Option<i64>) -> (SourceStats, Rows) {
    let info = SourceInfo::new(path, mtime);
    let prov = Provenance { format, file: info.path.clone(), ingest_id: Arc::from("t") };
    let mut rows = Rows::default();
    let out = parse_reader(Box::new(std::io::Cursor::new(text.as_bytes().to_vec())), format, &info, prov, 0, &mut rows, None);
    assert!(out.stats.balanced(), "{:?}", out.stats);
    (out.stats, rows)
}
