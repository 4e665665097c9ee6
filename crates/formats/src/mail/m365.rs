//! Microsoft 365 / Exchange Online message trace records → `mail_deliveries`.
//!
//! Shapes read (JSON Lines, one document, an array, or nested in an export:
//! records are found anywhere inside, e.g. a Graph page's `value`):
//! - `Get-MessageTrace` / `Get-MessageTraceV2` and the Reporting Web
//!   Service's `MessageTrace` records (`Organization, MessageId, Received,
//!   SenderAddress, RecipientAddress, Subject, Status, ToIP, FromIP, Size,
//!   MessageTraceId, StartDate, EndDate, Index`), as `ConvertTo-Json` and
//!   collectors write them;
//! - Graph's `exchangeMessageTrace` (`id, messageId, status,
//!   receivedDateTime, recipientAddress, senderAddress, subject, size,
//!   fromIP, toIP`).
//!
//! A record is one message × one recipient, so it is one row: the
//! recipient from the provider's list (`role_source =
//! provider_recipients`: no header role), `queue_id` the `MessageTraceId`
//! (Exchange Server's `network-message-id` of the same message),
//! `message_id` without its brackets (the join to Exchange Server's
//! message tracking and to what a mail tool returned), `host` the tenant
//! (`Organization`). `Status`: `Delivered` → `delivered` (`egress` when the
//! record names the receiving server's address in `ToIP`, else `local`),
//! `Failed` → `bounced`, `Pending`/`GettingStatus` → `deferred`,
//! `FilteredAsSpam` → `filtered`, `Quarantined`, `Expanded`, `Resolved`
//! as themselves (`delivery_kind = none`). Times without a zone are UTC
//! (the service's). `"<>"` as sender is the null sender.

use serde_json::Value;

use crate::address::normalize;
use crate::collect::LineOutcome;
use crate::jsondoc::{Assembler, Document};
use crate::postfix::MailDelivery;
use crate::time::parse_rfc3339;
use crate::{Emit, Format, Line, Parser, Pos, SourceInfo};

/// Deepest nesting searched for records.
const MAX_DEPTH: usize = 8;

/// A message trace record in a file's head.
pub fn looks_like_document(head: &str) -> bool {
    let t = head.trim_start_matches('\u{feff}').trim_start();
    (t.starts_with('{') || t.starts_with('['))
        && ((t.contains("\"MessageTraceId\"") && t.contains("\"RecipientAddress\""))
            || (t.contains("\"recipientAddress\"") && t.contains("\"senderAddress\"") && t.contains("\"receivedDateTime\"")))
}

/// A field by either spelling (the classic record's `PascalCase`, Graph's `camelCase`).
fn field<'a>(o: &'a serde_json::Map<String, Value>, classic: &str, graph: &str) -> Option<&'a Value> {
    o.get(classic).or_else(|| o.get(graph)).filter(|v| !v.is_null())
}

fn text<'a>(o: &'a serde_json::Map<String, Value>, classic: &str, graph: &str) -> Option<&'a str> {
    field(o, classic, graph).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

/// `2022-09-05T18:10:13.4907658` (no zone: UTC, 7 fraction digits) or RFC 3339.
fn time_of(s: &str) -> Option<i64> {
    parse_rfc3339(s).or_else(|| {
        let (base, frac) = s.split_once('.').unwrap_or((s, ""));
        if !frac.bytes().all(|b| b.is_ascii_digit()) || base.len() != 19 {
            return None;
        }
        let frac = &frac[..frac.len().min(6)];
        parse_rfc3339(&if frac.is_empty() { format!("{base}Z") } else { format!("{base}.{frac}Z") })
    })
}

fn status_of(status: &str, to_ip: Option<&str>) -> (String, &'static str) {
    let lower = status.to_ascii_lowercase();
    match lower.as_str() {
        "delivered" => ("delivered".into(), if to_ip.is_some() { "egress" } else { "local" }),
        "failed" => ("bounced".into(), "none"),
        "pending" | "gettingstatus" | "getstatus" => ("deferred".into(), "none"),
        "filteredasspam" => ("filtered".into(), "none"),
        other => (other.chars().filter(char::is_ascii_alphanumeric).take(32).collect(), "none"),
    }
}

fn address(raw: &str) -> (String, Option<String>, String) {
    if raw == "<>" {
        return (String::new(), Some(raw.to_string()), String::new());
    }
    match normalize(raw) {
        Some(a) => (a.address, a.raw, a.domain),
        None => (raw.to_lowercase(), Some(raw.to_string()), String::new()),
    }
}

/// The row of one record at `ptr`; false when it is no message trace record.
fn record_row(o: &serde_json::Map<String, Value>, ptr: &str, pos: &Pos, fallback_ts: i64, out: &mut dyn Emit) -> bool {
    let Some(rcpt) = text(o, "RecipientAddress", "recipientAddress") else { return false };
    let (recipient, recipient_raw, recipient_domain) = address(rcpt);
    let sender = text(o, "SenderAddress", "senderAddress").map(address);
    let to_ip = text(o, "ToIP", "toIP");
    let (status, kind) = status_of(text(o, "Status", "status").unwrap_or("unknown"), to_ip);
    let bounded = |s: &str, n: usize| s.chars().take(n).collect::<String>();
    out.delivery(MailDelivery {
        ts: text(o, "Received", "receivedDateTime").and_then(time_of).unwrap_or(fallback_ts),
        pos: Pos { pointer: Some(ptr.to_string()), ..pos.clone() },
        host: text(o, "Organization", "organization").map(|h| bounded(h, 255)),
        queue_id: text(o, "MessageTraceId", "id").map(|q| bounded(q, 128)),
        message_id: text(o, "MessageId", "messageId").map(|m| bounded(m.trim_start_matches('<').trim_end_matches('>'), 998)),
        sender: sender.as_ref().map(|s| s.0.clone()),
        sender_raw: sender.and_then(|s| s.1),
        subject: text(o, "Subject", "subject").map(|s| bounded(s, 998)),
        recipient,
        recipient_raw,
        recipient_domain,
        recipient_role: "envelope",
        role_source: "provider_recipients",
        status,
        relay: to_ip.map(|ip| format!("[{}]", bounded(ip, 64))),
        size_bytes: field(o, "Size", "size").and_then(|v| v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))),
        client: text(o, "FromIP", "fromIP").map(|ip| format!("[{}]", bounded(ip, 64))),
        delivery_kind: kind,
        ..Default::default()
    });
    true
}

fn walk(v: &Value, ptr: &str, depth: usize, pos: &Pos, fallback_ts: i64, out: &mut dyn Emit) -> usize {
    if depth > MAX_DEPTH {
        return 0;
    }
    match v {
        Value::Object(o) if record_row(o, ptr, pos, fallback_ts, out) => 1,
        Value::Object(o) => o.iter().map(|(k, x)| walk(x, &format!("{ptr}/{}", k.replace('~', "~0").replace('/', "~1")), depth + 1, pos, fallback_ts, out)).sum(),
        Value::Array(a) => a.iter().enumerate().map(|(i, x)| walk(x, &format!("{ptr}/{i}"), depth + 1, pos, fallback_ts, out)).sum(),
        _ => 0,
    }
}

fn record(d: Document<'_>, mtime: Option<i64>, out: &mut dyn Emit) {
    let v: Value = match serde_json::from_str(d.text.trim_start_matches('\u{feff}')) {
        Ok(v) => v,
        Err(e) => return out.reject(&d.pos, d.lines, format!("m365: invalid JSON ({e}); expected message trace records"), d.text.as_bytes(), None),
    };
    let n = walk(&v, d.pointer.as_deref().unwrap_or(""), 0, &d.pos, mtime.unwrap_or(0), out);
    let outcome = if n > 0 || d.streamed { LineOutcome::Parsed } else { LineOutcome::Skipped("m365: JSON without a message trace record (a paging marker, an error body)") };
    out.account(&d.pos, d.lines, outcome);
}

pub struct M365TraceParser {
    doc: Assembler,
    mtime_micros: Option<i64>,
}

impl M365TraceParser {
    pub fn new(info: &SourceInfo) -> Self {
        M365TraceParser { doc: Assembler::streaming(), mtime_micros: info.mtime_unix.map(|s| s * 1_000_000) }
    }
}

impl Parser for M365TraceParser {
    fn format(&self) -> Format {
        Format::M365Trace
    }

    fn line(&mut self, line: &Line<'_>, out: &mut dyn Emit) {
        let mtime = self.mtime_micros;
        self.doc.line(line, "m365", out, &mut |d, out| record(d, mtime, out));
    }

    fn finish(&mut self, out: &mut dyn Emit) {
        self.doc.finish("m365", out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rows::parse;
    use mcpf_schema::Table;

    #[test]
    fn a_graph_page_and_zone_less_times() {
        assert_eq!(time_of("2022-09-05T18:10:13.4907658"), parse_rfc3339("2022-09-05T18:10:13.490765Z"));
        assert_eq!(time_of("2022-09-05T18:10:13"), parse_rfc3339("2022-09-05T18:10:13Z"));
        assert_eq!(time_of("yesterday"), None);
        let page = r#"{"@odata.context":"x","value":[{"id":"t1","messageId":"<m@x>","status":"failed","receivedDateTime":"2026-02-10T11:15:58.842Z","recipientAddress":"A@B.example","senderAddress":"s@x.example","size":1}]}"#;
        let (stats, rows) = parse(Format::M365Trace, "/trace.json", page, None);
        assert_eq!((stats.parsed, stats.rejected), (1, 0));
        let d = rows.of(Table::MailDeliveries);
        assert_eq!((d[0]["recipient"].as_str(), d[0]["status"].as_str(), d[0]["source_pointer"].as_str()), ("a@b.example", "bounced", "/value/0"));
    }
}
