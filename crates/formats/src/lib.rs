//! Log formats → normalized rows.
//!
//! Each supported format is one [`Parser`]: it sees the physical lines of one
//! source file (already decompressed, with byte offsets and line numbers) and
//! emits normalized records through [`Emit`]. Parsers never see the lake; the
//! [`Collector`] turns their records into table rows, keeps the line
//! accounting (every line is parsed, rejected or skipped, never lost) and
//! derives the MCP tables (tool calls, intended recipients, tool definitions)
//! the same way for every MCP trace format.
//!
//! Data flow: [`source`] (files, .gz, .zst, bounded lines) → [`detect`] →
//! a parser ([`claude_desktop`], [`jsonrpc_jsonl`], [`postfix`], [`postmark`],
//! the agent hosts' own records in [`agents`]) →
//! [`Collector`] → a [`RowSink`] (the lake writer, or a test's vector).

pub mod address;
pub mod agents;
pub mod chain;
pub mod claude_desktop;
pub mod client_config;
pub mod collect;
pub mod detect;
pub mod digest;
pub mod gateway;
pub mod jsondoc;
pub mod jsonrpc;
pub mod jsonrpc_jsonl;
pub mod mail;
pub mod mcp;
pub mod otel;
pub mod package;
pub mod postmark;
pub mod postfix;
pub mod source;
#[cfg(test)]
mod test_rows;
pub mod text;
pub mod time;
pub mod vscode;

use std::sync::Arc;

pub use collect::{Collector, LineOutcome, NamedRow, RowSink, SourceStats, Val};
pub use detect::{detect_format, Format};

/// Where a record sits in its source: what every row's provenance columns hold.
#[derive(Debug, Clone, Default)]
pub struct Pos {
    /// Byte offset of the record's first byte in the decompressed stream.
    pub offset: u64,
    /// 1-based line number of the record's first line.
    pub line: u64,
    /// JSON pointer of the element inside a multi-record JSON document.
    pub pointer: Option<String>,
}

/// One physical line handed to a parser.
#[derive(Debug)]
pub struct Line<'a> {
    /// The line without its terminator (`\n` or `\r\n`); at most
    /// [`source::MAX_LINE_BYTES`] long. Parsers never see over-long lines:
    /// [`parse_file`] rejects them.
    pub bytes: &'a [u8],
    pub pos: Pos,
    /// The line was longer than the bound; `bytes` holds only its head.
    pub too_long: bool,
    /// Full length of the line in bytes (without terminator).
    pub full_len: u64,
}

/// Facts about the file a parser may need (year inference, session ids).
#[derive(Debug, Clone)]
pub struct SourceInfo {
    pub path: Arc<str>,
    /// Modification time of the file, seconds since the epoch.
    pub mtime_unix: Option<i64>,
    /// `--year` given by the user, for year-less syslog timestamps.
    pub year_hint: Option<i32>,
    /// `--tz` given by the user: the zone of stamps that carry none. `None`
    /// reads them as UTC and keeps the wide file-time bound of an unknown
    /// zone.
    pub zone: Option<time::Zone>,
    /// More files of the same rotated set follow in this run (an MTA parser
    /// hands its open messages on instead of closing them as still queued).
    pub continues: bool,
    /// Correlation state the previous file of the set ended with
    /// ([`Parser::carry_out`]).
    pub carry_in: Option<serde_json::Value>,
}

impl SourceInfo {
    /// A source with no year or zone hint, no carried state, last of its set.
    pub fn new(path: &str, mtime_unix: Option<i64>) -> SourceInfo {
        SourceInfo { path: Arc::from(path), mtime_unix, year_hint: None, zone: None, continues: false, carry_in: None }
    }
}

/// What a parser reports; implemented by [`Collector`].
pub trait Emit {
    /// A JSON-RPC message (or lifecycle event) of an MCP trace.
    fn mcp(&mut self, event: mcp::McpEvent);
    /// One delivery attempt of one recipient.
    fn delivery(&mut self, delivery: postfix::MailDelivery);
    /// `lines` physical lines starting at `pos` were read and how they ended.
    fn account(&mut self, pos: &Pos, lines: u64, outcome: LineOutcome);
    /// A row built by column name (provenance is added from `pos`).
    fn named(&mut self, pos: &Pos, row: NamedRow<'_>);
    /// [`Emit::named`] for a record last seen in another file of the same
    /// rotated set (a message still open when the logs end).
    fn named_elsewhere(&mut self, file: &str, pos: &Pos, row: NamedRow<'_>);
    /// A record that could not be parsed: counted as rejected lines and kept
    /// in `_rejects` with the reason and its (bounded) raw bytes.
    fn reject(&mut self, pos: &Pos, lines: u64, reason: String, raw: &[u8], ts_micros: Option<i64>);
}

/// One format's parser. A parser is fed every line of one file in order, then
/// `finish` once; it keeps whatever state multi-line records and cross-line
/// correlation need, bounded in size.
pub trait Parser {
    fn format(&self) -> Format;
    fn line(&mut self, line: &Line<'_>, out: &mut dyn Emit);
    fn finish(&mut self, out: &mut dyn Emit);
    /// Correlation state still open at the end of the source, for the next
    /// file of its rotated set (a message whose first lines are in
    /// `mail.log.1` and last lines in `mail.log`). None: the format keeps none.
    fn carry_out(&mut self) -> Option<serde_json::Value> {
        None
    }
    /// Start from the state the previous file of the set ended with.
    fn carry_in(&mut self, _state: &serde_json::Value) {}
    /// The hash chain of a recorded trace as this source showed it (see
    /// [`chain`]), for `_ingest_log.chain_json`. None: the source has none.
    fn chain_state(&self) -> Option<serde_json::Value> {
        None
    }
}

/// What reading one source gave: its line accounting, and the read error
/// that ended it early, if one did.
#[derive(Debug)]
pub struct ParseOutcome {
    pub stats: SourceStats,
    /// A read or decompression error (a truncated `.gz`, an I/O error, the
    /// stop flag): the lines before it were parsed and are in `stats`; the
    /// error is also kept in `_rejects` at the offset where reading stopped.
    pub error: Option<std::io::Error>,
    /// The parser's state at the end, for the next file of the rotated set.
    pub carry: Option<serde_json::Value>,
    /// The hash chain of a recorded trace, as [`Parser::chain_state`] saw it.
    pub chain: Option<serde_json::Value>,
}

/// Parse one whole file with `format`, writing rows to `sink`; a read error
/// is an `Err` (see [`parse_reader`] for the form that keeps partial work).
///
/// The file is always read from its start so cross-line state is exact;
/// only rows and lines at or after byte `emit_from` are written/counted.
/// Setting `stop` makes the next read fail with [`source::STOPPED`].
pub fn parse_file(
    path: &std::path::Path,
    format: Format,
    info: &SourceInfo,
    prov: collect::Provenance,
    emit_from: u64,
    sink: &mut dyn RowSink,
    stop: Option<&std::sync::atomic::AtomicBool>,
) -> std::io::Result<SourceStats> {
    let (reader, _) = source::open_decompressed(path)?;
    let out = parse_reader(reader, format, info, prov, emit_from, sink, stop);
    match out.error {
        Some(e) => Err(e),
        None => Ok(out.stats),
    }
}

/// Parse the (decompressed) bytes of one source with `format`, writing rows
/// to `sink`. A read error ends the source: everything before it is kept
/// and accounted for, the parser's open state is flushed, and the error is
/// recorded in `_rejects` where reading stopped.
pub fn parse_reader(
    reader: Box<dyn std::io::BufRead + '_>,
    format: Format,
    info: &SourceInfo,
    prov: collect::Provenance,
    emit_from: u64,
    sink: &mut dyn RowSink,
    stop: Option<&std::sync::atomic::AtomicBool>,
) -> ParseOutcome {
    let never = std::sync::atomic::AtomicBool::new(false);
    let reader = source::StoppableReader::new(reader, stop.unwrap_or(&never));
    let mut parser = parser_for(format, info);
    if let Some(c) = &info.carry_in {
        parser.carry_in(c);
    }
    let mut collector = Collector::new(sink, prov, emit_from);
    let mut lines = source::LineReader::new(reader);
    let result = lines.for_each(|line| {
        // Every format rejects an over-long line the same way, with its head kept.
        if line.too_long {
            let reason = format!("line of {} bytes exceeds the {} byte limit", line.full_len, source::MAX_LINE_BYTES);
            collector.reject(&line.pos, 1, reason, line.bytes, None);
        } else {
            parser.line(line, &mut collector)
        }
    });
    parser.finish(&mut collector);
    let error = result.err();
    if let Some(e) = &error {
        if e.to_string() != source::STOPPED {
            let at = Pos { offset: lines.offset(), line: lines.lines_read() + 1, pointer: None };
            let reason = format!("read error at byte {} of the decompressed stream: {e}; the lines before it are kept, the rest of the source could not be read", at.offset);
            collector.reject(&at, 0, reason, b"", None);
        }
    }
    let carry = parser.carry_out();
    let chain = parser.chain_state();
    ParseOutcome { stats: collector.finish(), error, carry, chain }
}

/// Build the parser for a format.
pub fn parser_for(format: Format, info: &SourceInfo) -> Box<dyn Parser> {
    match format {
        Format::ClaudeDesktop => Box::new(claude_desktop::ClaudeDesktopParser::new(info)),
        Format::JsonRpcJsonl => Box::new(jsonrpc_jsonl::JsonRpcJsonlParser::new(info)),
        Format::Postfix => Box::new(postfix::PostfixParser::new(info)),
        Format::Exim => Box::new(mail::exim::EximParser::new(info)),
        Format::Sendmail => Box::new(mail::sendmail::SendmailParser::new(info)),
        Format::ExchangeTracking => Box::new(mail::exchange::ExchangeTrackingParser::new(info)),
        Format::M365Trace => Box::new(mail::m365::M365TraceParser::new(info)),
        Format::Gmail => Box::new(mail::gmail::GmailParser::new(info)),
        Format::Ses => Box::new(mail::ses::SesParser::new(info)),
        Format::ZeekSmtp => Box::new(mail::zeek::ZeekSmtpParser::new(info)),
        Format::Postmark => Box::new(postmark::PostmarkParser::new(info)),
        Format::McpConfig => Box::new(client_config::ClientConfigParser::new(info)),
        Format::ClaudeCode => Box::new(agents::claude_code::ClaudeCodeParser::new(info)),
        Format::Codex => Box::new(agents::codex::CodexParser::new(info)),
        Format::OtlpJson => Box::new(otel::OtlpJsonParser::new(info)),
        Format::JsonRpc => Box::new(jsonrpc::BareJsonRpcParser::new(info)),
        Format::McpGateway => Box::new(gateway::GatewayParser::new(info)),
        Format::VsCode => Box::new(vscode::VsCodeParser::new(info)),
        Format::Copilot => Box::new(agents::copilot::CopilotParser::new(info)),
        Format::GeminiCli => Box::new(agents::gemini::GeminiParser::new(info)),
        Format::CodexConfig => Box::new(agents::codex_config::CodexConfigParser::new(info)),
    }
}
