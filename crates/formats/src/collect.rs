//! The [`Collector`]: parsers' records → table rows, with line accounting.
//!
//! Invariant kept here for every source: `lines = parsed + rejected + skipped`.
//! A grown file is re-read from its start so that cross-line state (sessions,
//! queue ids) is rebuilt exactly, but only rows and lines at or after
//! `emit_from` are written: re-ingesting adds only what is new.

use std::collections::BTreeMap;
use std::sync::Arc;

use mcpf_schema::Table;

use crate::mcp::{McpDeriver, McpEvent};
use crate::postfix::MailDelivery;
use crate::time::date_of;
use crate::{Emit, Format, Pos};

/// How long a raw record may be in `_rejects` before it is cut.
pub const MAX_REJECT_RAW_BYTES: usize = 8 * 1024;

/// A cell value for [`RowSink::row`]; cells are given in the table's column
/// order without the provenance columns, which the collector appends.
#[derive(Debug, Clone, Copy)]
pub enum Val<'a> {
    Str(Option<&'a str>),
    Int(Option<i64>),
    Float(Option<f64>),
    Bool(Option<bool>),
    /// UTC microseconds.
    Ts(Option<i64>),
}

impl Val<'_> {
    /// The NULL of a column kind.
    pub fn null(kind: mcpf_schema::Kind) -> Val<'static> {
        use mcpf_schema::Kind;
        match kind {
            Kind::Utf8 => Val::Str(None),
            Kind::Int64 => Val::Int(None),
            Kind::Float64 => Val::Float(None),
            Kind::Bool => Val::Bool(None),
            Kind::Timestamp => Val::Ts(None),
        }
    }

    fn kind(&self) -> mcpf_schema::Kind {
        use mcpf_schema::Kind;
        match self {
            Val::Str(_) => Kind::Utf8,
            Val::Int(_) => Kind::Int64,
            Val::Float(_) => Kind::Float64,
            Val::Bool(_) => Kind::Bool,
            Val::Ts(_) => Kind::Timestamp,
        }
    }
}

/// A row built by column name rather than by position, so that a column
/// added to or moved in the schema cannot shift a value into the wrong
/// column. Cells start NULL.
#[derive(Debug, Clone)]
pub struct NamedRow<'a> {
    table: Table,
    cells: Vec<Val<'a>>,
}

impl<'a> NamedRow<'a> {
    pub fn new(table: Table) -> Self {
        NamedRow { table, cells: table.columns_static().iter().map(|c| Val::null(c.kind)).collect() }
    }

    /// Set a column. An unknown name or a value of the wrong kind is a bug
    /// in the caller (names are constants of this program), caught by any
    /// test that writes the row.
    pub fn set(&mut self, name: &str, v: Val<'a>) -> &mut Self {
        let i = self.table.column_index(name).unwrap_or_else(|| panic!("table {} has no column {name}", self.table.name()));
        let want = self.table.columns_static()[i].kind;
        assert_eq!(v.kind(), want, "{}.{name} is {want:?}", self.table.name());
        self.cells[i] = v;
        self
    }

    /// The cells in the table's column order.
    pub fn cells(&self) -> &[Val<'a>] {
        &self.cells
    }

    pub fn table(&self) -> Table {
        self.table
    }
}

/// Where finished rows go: the lake writer, or a vector in tests.
pub trait RowSink {
    /// One complete row, provenance included, in the table's column order.
    fn row(&mut self, table: Table, vals: &[Val<'_>]);
}

/// How one or more physical lines ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineOutcome {
    /// Contributed to at least one row (alone or with other lines).
    Parsed,
    /// Deliberately not normalized; the reason is counted per source.
    Skipped(&'static str),
}

/// Per-source accounting, written to `_ingest_log` and printed by `ingest`.
#[derive(Debug, Clone, Default)]
pub struct SourceStats {
    pub lines: u64,
    pub parsed: u64,
    pub rejected: u64,
    pub skipped: u64,
    pub skipped_reasons: BTreeMap<String, u64>,
    pub rows: BTreeMap<&'static str, u64>,
}

impl SourceStats {
    /// True when every line was accounted for exactly once.
    pub fn balanced(&self) -> bool {
        self.lines == self.parsed + self.rejected + self.skipped
    }
}

/// Provenance shared by every row of one source.
#[derive(Debug, Clone)]
pub struct Provenance {
    pub format: Format,
    pub file: Arc<str>,
    pub ingest_id: Arc<str>,
}

/// Writes a source's rows with provenance, keeping its line accounting.
/// The half of [`Collector`] the MCP deriver writes through.
pub(crate) struct RowOut<'s> {
    sink: &'s mut dyn RowSink,
    prov: Provenance,
    emit_from: u64,
    stats: SourceStats,
}

impl RowOut<'_> {
    /// Write one row built by name whose provenance is `pos` (and `file`,
    /// or this source's file), if it lies in the emitted part.
    /// `filter_offset` decides whether it is new (for rows built from several
    /// records, the last record's offset).
    pub(crate) fn named(&mut self, filter_offset: u64, pos: &Pos, row: NamedRow<'_>, file: Option<&str>) {
        if filter_offset < self.emit_from {
            return;
        }
        let table = row.table();
        let mut row: NamedRow<'_> = row;
        row.set("source_format", Val::Str(Some(self.prov.format.name())))
            .set("source_file", Val::Str(Some(file.unwrap_or(&self.prov.file))))
            .set("source_offset", Val::Int(Some(pos.offset as i64)))
            .set("source_line", Val::Int(Some(pos.line as i64)))
            .set("source_pointer", Val::Str(pos.pointer.as_deref()))
            .set("ingest_id", Val::Str(Some(&self.prov.ingest_id)));
        self.sink.row(table, row.cells());
        *self.stats.rows.entry(table.name()).or_insert(0) += 1;
    }

    fn counts(&self, pos: &Pos) -> bool {
        pos.offset >= self.emit_from
    }
}

/// Implements [`Emit`] for one source file: rows go out through [`RowOut`],
/// MCP events through the deriver, which writes its rows to the same place.
pub struct Collector<'s> {
    out: RowOut<'s>,
    mcp: McpDeriver,
}

impl<'s> Collector<'s> {
    pub fn new(sink: &'s mut dyn RowSink, prov: Provenance, emit_from: u64) -> Self {
        let mcp = McpDeriver::new(prov.file.clone());
        Collector { out: RowOut { sink, prov, emit_from, stats: SourceStats::default() }, mcp }
    }

    /// Flush derived state (unanswered calls) at the end of the source.
    pub fn finish(mut self) -> SourceStats {
        self.mcp.finish(&mut self.out);
        self.out.stats
    }
}

impl Emit for Collector<'_> {
    fn mcp(&mut self, event: McpEvent) {
        self.mcp.event(event, &mut self.out);
    }

    fn delivery(&mut self, d: MailDelivery) {
        let date = date_of(d.ts);
        self.out.named(d.pos.offset, &d.pos, d.row(&date), None);
    }

    fn named(&mut self, pos: &Pos, row: NamedRow<'_>) {
        self.out.named(pos.offset, pos, row, None);
    }

    fn named_elsewhere(&mut self, file: &str, pos: &Pos, row: NamedRow<'_>) {
        // Not a line of this source: never held back as "already ingested".
        self.out.named(u64::MAX, pos, row, Some(file));
    }

    fn account(&mut self, pos: &Pos, lines: u64, outcome: LineOutcome) {
        if !self.out.counts(pos) {
            return;
        }
        let stats = &mut self.out.stats;
        stats.lines += lines;
        match outcome {
            LineOutcome::Parsed => stats.parsed += lines,
            LineOutcome::Skipped(reason) => {
                stats.skipped += lines;
                *stats.skipped_reasons.entry(reason.to_string()).or_insert(0) += lines;
            }
        }
    }

    fn reject(&mut self, pos: &Pos, lines: u64, reason: String, raw: &[u8], ts_micros: Option<i64>) {
        if !self.out.counts(pos) {
            return;
        }
        self.out.stats.lines += lines;
        self.out.stats.rejected += lines;
        let cut = raw.len().min(MAX_REJECT_RAW_BYTES);
        let text = String::from_utf8_lossy(&raw[..cut]);
        let ts = ts_micros.unwrap_or(0);
        let date = date_of(ts);
        let mut row = NamedRow::new(Table::Rejects);
        row.set("ts", Val::Ts(Some(ts)))
            .set("date", Val::Str(Some(&date)))
            .set("reason", Val::Str(Some(&reason)))
            .set("raw", Val::Str(Some(&text)))
            .set("raw_len", Val::Int(Some(raw.len() as i64)))
            .set("raw_truncated", Val::Bool(Some(cut < raw.len())));
        self.out.named(pos.offset, pos, row, None);
    }
}
