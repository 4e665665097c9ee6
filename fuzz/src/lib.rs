//! Checks shared by the fuzz targets in `fuzz_targets/`.
//!
//! Everything goes through the public API of `mcpf-formats`, the way ingest
//! uses it: `parse_reader` over the (already decompressed) bytes, rows into a
//! [`RowSink`]. A panic anywhere, or a broken invariant below, is a crash.

use std::io::Cursor;
use std::sync::Arc;

use mcpf_formats::address::Address;
use mcpf_formats::collect::Provenance;
use mcpf_formats::{parse_reader, Format, RowSink, SourceInfo, SourceStats, Val};
use mcpf_schema::{Kind, Table};

/// The file's modification time every fuzz parse claims (2023-11-14), for
/// year inference of syslog stamps and time-only stamps.
pub const MTIME: i64 = 1_700_000_000;

/// Takes rows the way the lake writer does (`TableBuilder::append` panics on a
/// wrong cell count or kind; Arrow refuses NULL in a non-nullable column) and
/// asserts it would accept them.
#[derive(Default)]
pub struct CheckingSink {
    pub rows: u64,
    /// Every row seen, as (table, cells rendered as text), when `keep` is set.
    pub kept: Vec<(Table, Vec<Option<String>>)>,
    pub keep: bool,
}

impl RowSink for CheckingSink {
    fn row(&mut self, table: Table, vals: &[Val<'_>]) {
        let cols = table.columns();
        assert_eq!(vals.len(), cols.len(), "{}: {} cells for {} columns", table.name(), vals.len(), cols.len());
        for (c, v) in cols.iter().zip(vals) {
            let (kind, null) = match *v {
                Val::Str(x) => (Kind::Utf8, x.is_none()),
                Val::Int(x) => (Kind::Int64, x.is_none()),
                Val::Float(x) => (Kind::Float64, x.is_none()),
                Val::Bool(x) => (Kind::Bool, x.is_none()),
                Val::Ts(x) => (Kind::Timestamp, x.is_none()),
            };
            assert_eq!(kind, c.kind, "{}.{}: cell of kind {kind:?}, column is {:?}", table.name(), c.name, c.kind);
            assert!(c.nullable || !null, "{}.{} is not nullable but got NULL", table.name(), c.name);
        }
        if self.keep {
            let cells = vals
                .iter()
                .map(|v| match *v {
                    Val::Str(x) => x.map(str::to_string),
                    Val::Int(x) | Val::Ts(x) => x.map(|i| i.to_string()),
                    Val::Float(x) => x.map(|f| f.to_string()),
                    Val::Bool(x) => x.map(|b| b.to_string()),
                })
                .collect();
            self.kept.push((table, cells));
        }
        self.rows += 1;
    }
}

/// Physical lines of `data` as the line reader counts them: one per `\n`,
/// plus an unterminated last line (same rule as tests/hostile.rs).
pub fn physical_lines(data: &[u8]) -> u64 {
    let n = data.iter().filter(|b| **b == b'\n').count() as u64;
    n + u64::from(data.last().is_some_and(|b| *b != b'\n'))
}

/// File names a format's parser is given. Only the client configuration
/// parser looks at the path (it tells which client a config belongs to).
pub fn paths_for(format: Format) -> &'static [&'static str] {
    match format {
        Format::McpConfig => &["/home/u/.config/Claude/claude_desktop_config.json", "/work/proj/.vscode/mcp.json"],
        Format::ClaudeDesktop => &["/home/u/.config/Claude/logs/mcp-server-fuzz.log"],
        Format::JsonRpcJsonl => &["/var/log/mcp/wire.jsonl"],
        Format::Postfix => &["/var/log/mail.log"],
        Format::Postmark => &["/exports/postmark/outbound-messages.json"],
        Format::ClaudeCode => &["/home/u/.claude/projects/-work-proj/0ce8853f-aabe-488c-bbc2-a05f10b1cdc3.jsonl"],
        Format::Codex => &["/home/u/.codex/sessions/2026/12/02/rollout-2026-12-02T16-19-16-01a2378d.jsonl"],
        Format::OtlpJson => &["/var/log/otel/logs.jsonl"],
        Format::JsonRpc => &["/var/log/mcp/mail.jsonl"],
        Format::McpGateway => &["/runs/1/mcp-logs/rpc-messages.jsonl"],
        Format::VsCode => &["/home/u/.config/Code/logs/window1/exthost/mcpServer.mail.log"],
        Format::GeminiCli => &["/home/u/.gemini/tmp/d30f9106/chats/session-2026-06-05T04-59-dcbe78d3.json"],
        Format::Copilot => &["/home/u/.copilot/session-state/049410b4-c1df-44ee-87a5-caa1c349091e/events.jsonl"],
        Format::CodexConfig => &["/home/u/.codex/config.toml"],
        Format::Exim => &["/var/log/exim4/mainlog"],
        Format::Ses => &["/exports/ses/events.jsonl"],
        Format::ZeekSmtp => &["/opt/zeek/logs/current/smtp.log"],
        Format::Sendmail => &["/var/log/maillog"],
        Format::Gmail => &["/exports/gmail/gmail_logs.json"],
        Format::M365Trace => &["/exports/m365/messagetrace.json"],
        Format::ExchangeTracking => &["C:/Program Files/Microsoft/Exchange Server/V15/TransportRoles/Logs/MessageTracking/MSGTRK2026030110-1.LOG"],
    }
}

/// Parse `data` with `format` through `parse_reader`, rows into `sink`.
pub fn parse_into(format: Format, path: &str, data: &[u8], emit_from: u64, sink: &mut CheckingSink) -> SourceStats {
    let info = SourceInfo::new(path, Some(MTIME));
    let prov = Provenance { format, file: info.path.clone(), ingest_id: Arc::from("fuzz") };
    let out = parse_reader(Box::new(Cursor::new(data)), format, &info, prov, emit_from, sink, None);
    // An in-memory reader cannot fail and nothing sets the stop flag.
    assert!(out.error.is_none(), "{format}: read error on an in-memory source: {:?}", out.error);
    out.stats
}

/// The whole contract of one format on arbitrary bytes:
/// - no panic; every row acceptable to the lake ([`CheckingSink`]);
/// - `lines == parsed + rejected + skipped`, and `lines` is every physical line;
/// - the per-table row counts in the stats add up to the rows written;
/// - re-reading a grown file (`emit_from` at a later line start) stays
///   balanced and writes no more lines or rows than the full read.
pub fn check_format(format: Format, data: &[u8]) {
    for path in paths_for(format) {
        let mut sink = CheckingSink::default();
        let st = parse_into(format, path, data, 0, &mut sink);
        assert!(st.balanced(), "{format}: unbalanced stats {st:?}");
        assert_eq!(st.lines, physical_lines(data), "{format}: lines counted vs physical lines; {st:?}");
        assert_eq!(st.rows.values().sum::<u64>(), sink.rows, "{format}: stats.rows vs rows written; {st:?}");

        if let Some(from) = later_line_start(data) {
            let mut again = CheckingSink::default();
            let st2 = parse_into(format, path, data, from, &mut again);
            assert!(st2.balanced(), "{format}: unbalanced stats with emit_from={from}: {st2:?}");
            assert!(st2.lines <= st.lines, "{format}: emit_from={from} counted {} lines, full read {}", st2.lines, st.lines);
            assert!(again.rows <= sink.rows, "{format}: emit_from={from} wrote {} rows, full read {}", again.rows, sink.rows);
        }
    }
}

/// The start of the line after the middle of `data`, if there is one.
fn later_line_start(data: &[u8]) -> Option<u64> {
    let mid = data.len() / 2;
    let nl = data[mid..].iter().position(|b| *b == b'\n')?;
    let at = mid + nl + 1;
    (at < data.len()).then_some(at as u64)
}

/// What [`mcpf_formats::address::normalize`] promises for any address it returns.
pub fn check_address(a: &Address, input: &str) {
    let at = a.address.rfind('@').unwrap_or_else(|| panic!("{input:?} → {a:?}: no @"));
    assert!(at > 0, "{input:?} → {a:?}: empty local part");
    assert_eq!(&a.address[at + 1..], a.domain, "{input:?} → {a:?}: domain column differs from the address's domain");
    assert!(!a.domain.is_empty(), "{input:?} → {a:?}: empty domain");
    assert!(!a.domain.bytes().any(|b| b.is_ascii_uppercase()), "{input:?} → {a:?}: domain not lowercased");
    assert!(a.domain.is_ascii(), "{input:?} → {a:?}: domain not ASCII (punycode)");
    assert!(!a.domain.ends_with('.'), "{input:?} → {a:?}: trailing dot kept");
    assert_ne!(a.raw.as_deref(), Some(a.address.as_str()), "{input:?} → {a:?}: raw kept although equal");
    // Both sides of a comparison are normalized, and a normalized address
    // can be normalized again (egress rows, rule inputs): it must not move.
    let again = mcpf_formats::address::normalize(&a.address).unwrap_or_else(|| panic!("{input:?} → {a:?}: its own address does not normalize"));
    assert_eq!(again.address, a.address, "{input:?}: normalize is not idempotent");
    assert_eq!(again.domain, a.domain, "{input:?}: normalize is not idempotent (domain)");
    assert_eq!(again.raw, None, "{input:?} → {a:?}: normalized form has a raw form");
}
