//! Postmark API data → `mail_deliveries`: the provider's own record of what
//! left, with To/Cc/Bcc roles.
//!
//! In the postmark-mcp backdoor no MTA of the victim saw the stolen copy: the
//! tool added `Bcc` to the payload it posted to Postmark. Postmark's outbound
//! message records list that Bcc, and carry the same `MessageID` the tool
//! returned to the agent, so the join with intent is exact.
//!
//! Accepted shapes (as `curl` loops and exports write them): one JSON
//! document (pretty or compact), a JSON array, or JSON Lines, of
//! - outbound message search results `{"TotalCount", "Messages": [...]}` and
//!   single outbound messages (`MessageID`, `From`, `To[]`, `Cc[]`, `Bcc[]`,
//!   `Recipients[]`, `Subject`, `ReceivedAt`, `Status`, `Tag`, `MessageStream`);
//! - outbound message details with `MessageEvents` (Delivered, Bounced,
//!   Transient, Opened, LinkClicked …, with `DeliveryMessage`, `DestinationServer`);
//! - send responses (`To`, `SubmittedAt`, `MessageID`, `ErrorCode`, `Message`);
//! - bounce records and lists (`Bounces[]`: `Email`, `BouncedAt`, `Type`, `Details`);
//! - delivery / bounce / open webhook payloads (`RecordType`).
//!
//! Each row's provenance is the byte offset and line of the JSON record it
//! came from plus the JSON pointer of the element (`/Messages/3/Bcc/0`).
//! Records of other kinds (error bodies, stats, open lists) are counted as
//! skipped.

use std::collections::HashMap;
use std::sync::OnceLock;

use regex::Regex;
use serde_json::Value;

use crate::address::normalize;
use crate::collect::LineOutcome;
use crate::postfix::MailDelivery;
use crate::time::parse_rfc3339;
use crate::jsondoc::{Assembler, Document};
use crate::{Emit, Format, Line, Parser, Pos, SourceInfo};

/// Keys that mark a Postmark record, for detection over a file's head.
pub fn looks_like_document(head: &str) -> bool {
    let t = head.trim_start();
    (t.starts_with('{') || t.starts_with('['))
        && t.contains("\"MessageID\"")
        && ["\"ReceivedAt\"", "\"SubmittedAt\"", "\"BouncedAt\"", "\"DeliveredAt\"", "\"RecordType\""].iter().any(|k| t.contains(k))
        && !t.contains("\"direction\"")
}

pub struct PostmarkParser {
    doc: Assembler,
}

impl PostmarkParser {
    pub fn new(_info: &SourceInfo) -> Self {
        // Exports of months of messages are one JSON document: stream it.
        PostmarkParser { doc: Assembler::streaming() }
    }
}

/// One complete JSON record → rows, and the line accounting of the record.
fn record(d: Document<'_>, out: &mut dyn Emit) {
    match serde_json::from_str::<Value>(d.text) {
        Ok(v) => {
            let mut rows = 0usize;
            let mut problems = Vec::new();
            match d.pointer.as_deref() {
                // An element of `Messages` handed out on its own: read it as
                // the search result's loop would.
                Some(p) if p.rsplit_once('/').is_some_and(|(parent, _)| parent == "/Messages") => outbound(&v, p, &d.pos, out, &mut rows, &mut problems),
                p => walk(&v, p.unwrap_or(""), &d.pos, out, &mut rows, &mut problems),
            }
            if rows > 0 || d.streamed {
                out.account(&d.pos, d.lines, LineOutcome::Parsed);
            } else if let Some(p) = problems.first() {
                out.reject(&d.pos, d.lines, format!("postmark: {p}"), d.text.as_bytes(), None);
            } else {
                out.account(&d.pos, d.lines, LineOutcome::Skipped("provider record without message data (error body, stats, opens list)"));
            }
        }
        Err(e) => out.reject(&d.pos, d.lines, format!("postmark: invalid JSON ({e}); expected a JSON document, array or JSON Lines"), d.text.as_bytes(), None),
    }
}

fn s<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str).filter(|x| !x.is_empty())
}

fn dsn_of(text: &str) -> Option<String> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| Regex::new(r"\b([245]\.\d{1,3}\.\d{1,3})\b").unwrap());
    re.captures(text).map(|c| c[1].to_string())
}

/// An address element: `{"Email": "...", "Name": "..."}` or a string.
fn email_of(v: &Value) -> Option<&str> {
    match v {
        Value::String(x) => Some(x.as_str()),
        Value::Object(_) => s(v, "Email"),
        _ => None,
    }
}

struct Base<'a> {
    message_id: Option<&'a str>,
    from: Option<&'a str>,
    subject: Option<&'a str>,
    stream: Option<String>,
}

#[allow(clippy::too_many_arguments)]
fn row(out: &mut dyn Emit, pos: &Pos, pointer: String, ts: i64, b: &Base<'_>, recipient: &str, role: &'static str, status: &str, response: Option<&str>, relay: Option<&str>) {
    let (rcpt, rcpt_raw, domain) = match normalize(recipient) {
        Some(a) => (a.address, a.raw, a.domain),
        None => (recipient.trim().to_lowercase(), Some(recipient.to_string()), String::new()),
    };
    let (sender, sender_raw) = match b.from.and_then(normalize) {
        Some(a) => (Some(a.address), a.raw),
        None => (None, b.from.map(str::to_string)),
    };
    let mut p = pos.clone();
    p.pointer = Some(if pointer.is_empty() { "/".to_string() } else { pointer });
    out.delivery(MailDelivery {
        ts,
        pos: p,
        host: Some("postmark".to_string()),
        queue_id: None,
        message_id: b.message_id.map(str::to_string),
        sender,
        sender_raw,
        header_from: b.from.map(str::to_string),
        subject: b.subject.map(str::to_string),
        recipient: rcpt,
        recipient_raw: rcpt_raw,
        orig_recipient: None,
        recipient_domain: domain,
        recipient_role: role,
        role_source: if role == "envelope" { "provider_recipients" } else { "provider" },
        status: status.to_string(),
        dsn: response.and_then(dsn_of),
        relay: relay.map(str::to_string),
        delay_s: None,
        size_bytes: None,
        nrcpt: None,
        client: b.stream.clone(),
        response: response.map(|r| r.chars().take(1024).collect()),
        notification_of: None,
        related_lines: None,
        // The provider handed it to the recipient's server (or tried to).
        delivery_kind: "egress",
        next_queue_id: None,
    });
}

fn event_status(kind: &str) -> String {
    match kind {
        "Delivered" | "Delivery" => "delivered".into(),
        "Bounced" | "Bounce" => "bounced".into(),
        "Transient" => "deferred".into(),
        "Opened" | "Open" => "opened".into(),
        "LinkClicked" | "Click" => "clicked".into(),
        "SpamComplaint" => "complained".into(),
        other => other.to_ascii_lowercase(),
    }
}

/// One outbound message (search result element or details document).
fn outbound(m: &Value, ptr: &str, pos: &Pos, out: &mut dyn Emit, rows: &mut usize, problems: &mut Vec<String>) {
    let Some(ts) = s(m, "ReceivedAt").and_then(parse_rfc3339) else {
        problems.push(format!("outbound message at {} has no valid ReceivedAt", if ptr.is_empty() { "/" } else { ptr }));
        return;
    };
    let b = Base {
        message_id: s(m, "MessageID"),
        from: s(m, "From"),
        subject: s(m, "Subject"),
        stream: Some(format!("postmark:{}", s(m, "MessageStream").unwrap_or("outbound"))),
    };
    let status = s(m, "Status").map(str::to_ascii_lowercase).unwrap_or_else(|| "sent".into());
    let mut roles: HashMap<String, &'static str> = HashMap::new();
    for (key, role) in [("To", "to"), ("Cc", "cc"), ("Bcc", "bcc")] {
        let list: Vec<&Value> = match m.get(key) {
            Some(Value::Array(a)) => a.iter().collect(),
            Some(v @ Value::String(_)) => vec![v],
            _ => vec![],
        };
        for (i, e) in list.iter().enumerate() {
            let Some(addr) = email_of(e) else { continue };
            // A string may hold a comma list ("a@x, b@y").
            let parts = crate::address::parse_list(addr).map(|l| l.into_iter().map(|a| a.address).collect()).unwrap_or_else(|| vec![addr.to_string()]);
            for (j, a) in parts.iter().enumerate() {
                let p = if parts.len() > 1 { format!("{ptr}/{key}/{i}<{j}>") } else { format!("{ptr}/{key}/{i}") };
                row(out, pos, p, ts, &b, a, role, &status, None, None);
                *rows += 1;
                roles.entry(normalize(a).map(|x| x.address).unwrap_or_default()).or_insert(role);
            }
        }
    }
    if let Some(Value::Array(list)) = m.get("Recipients") {
        for (i, e) in list.iter().enumerate() {
            let Some(addr) = email_of(e) else { continue };
            let key = normalize(addr).map(|x| x.address).unwrap_or_default();
            if !roles.contains_key(&key) {
                row(out, pos, format!("{ptr}/Recipients/{i}"), ts, &b, addr, "envelope", &status, None, None);
                *rows += 1;
            }
        }
    }
    if let Some(Value::Array(events)) = m.get("MessageEvents") {
        for (i, e) in events.iter().enumerate() {
            let (Some(kind), Some(rcpt)) = (s(e, "Type"), s(e, "Recipient")) else { continue };
            let ets = s(e, "ReceivedAt").and_then(parse_rfc3339).unwrap_or(ts);
            let d = e.get("Details").cloned().unwrap_or(Value::Null);
            let response = s(&d, "DeliveryMessage").or_else(|| s(&d, "Summary")).or_else(|| s(&d, "Details"));
            let role = roles.get(&normalize(rcpt).map(|x| x.address).unwrap_or_default()).copied().unwrap_or("envelope");
            row(out, pos, format!("{ptr}/MessageEvents/{i}"), ets, &b, rcpt, role, &event_status(kind), response, s(&d, "DestinationServer"));
            *rows += 1;
        }
    }
}

fn walk(v: &Value, ptr: &str, pos: &Pos, out: &mut dyn Emit, rows: &mut usize, problems: &mut Vec<String>) {
    match v {
        Value::Array(a) => {
            for (i, e) in a.iter().enumerate() {
                walk(e, &format!("{ptr}/{i}"), pos, out, rows, problems);
            }
        }
        Value::Object(_) => {
            if let Some(Value::Array(ms)) = v.get("Messages") {
                // `null`: an element already handed out on its own (streamed).
                for (i, m) in ms.iter().enumerate().filter(|(_, m)| !m.is_null()) {
                    outbound(m, &format!("{ptr}/Messages/{i}"), pos, out, rows, problems);
                }
            } else if let Some(b @ Value::Object(_)) = v.get("Bounce") {
                // PUT /bounces/{id}/activate: {"Message": "OK", "Bounce": {...}}
                walk(b, &format!("{ptr}/Bounce"), pos, out, rows, problems);
            } else if let Some(Value::Array(bs)) = v.get("Bounces") {
                for (i, b) in bs.iter().enumerate() {
                    walk(b, &format!("{ptr}/Bounces/{i}"), pos, out, rows, problems);
                }
            } else if let Some(kind) = s(v, "RecordType") {
                // Webhook payloads.
                let (rcpt, at) = match kind {
                    "Delivery" => (s(v, "Recipient"), s(v, "DeliveredAt")),
                    "Bounce" | "SpamComplaint" => (s(v, "Email"), s(v, "BouncedAt")),
                    "Open" | "Click" => (s(v, "Recipient"), s(v, "ReceivedAt")),
                    _ => (None, None),
                };
                let (Some(rcpt), Some(ts)) = (rcpt, at.and_then(parse_rfc3339)) else { return };
                let b = Base { message_id: s(v, "MessageID"), from: s(v, "From"), subject: s(v, "Subject"), stream: s(v, "MessageStream").map(|x| format!("postmark:{x}")) };
                let resp = s(v, "Details").or_else(|| s(v, "Description"));
                row(out, pos, ptr.to_string(), ts, &b, rcpt, "envelope", &event_status(kind), resp, None);
                *rows += 1;
            } else if v.get("MessageEvents").is_some() || (v.get("MessageID").is_some() && v.get("ReceivedAt").is_some() && (v.get("To").is_some() || v.get("Recipients").is_some())) {
                outbound(v, ptr, pos, out, rows, problems);
            } else if let (Some(at), Some(_)) = (s(v, "SubmittedAt"), v.get("MessageID")) {
                // Send response: only To is echoed; ErrorCode 0 = accepted.
                let Some(ts) = parse_rfc3339(at) else {
                    problems.push(format!("send response at {} has an invalid SubmittedAt", if ptr.is_empty() { "/" } else { ptr }));
                    return;
                };
                let code = v.get("ErrorCode").and_then(Value::as_i64).unwrap_or(0);
                let status = if code == 0 { "accepted" } else { "rejected" };
                let b = Base { message_id: s(v, "MessageID"), from: None, subject: None, stream: None };
                let to = s(v, "To").unwrap_or("");
                let list = crate::address::parse_list(to).map(|l| l.into_iter().map(|a| a.address).collect::<Vec<_>>()).unwrap_or_default();
                for (i, a) in list.iter().enumerate() {
                    let p = if list.len() > 1 { format!("{ptr}/To<{i}>") } else { format!("{ptr}/To") };
                    row(out, pos, p, ts, &b, a, "to", status, s(v, "Message"), None);
                    *rows += 1;
                }
            } else if let (Some(email), Some(at)) = (s(v, "Email"), s(v, "BouncedAt")) {
                let Some(ts) = parse_rfc3339(at) else { return };
                let b = Base { message_id: s(v, "MessageID"), from: s(v, "From"), subject: s(v, "Subject"), stream: s(v, "MessageStream").map(|x| format!("postmark:{x}")) };
                let resp = match (s(v, "Type"), s(v, "Details")) {
                    (Some(t), Some(d)) => Some(format!("{t}: {d}")),
                    (t, d) => t.or(d).map(str::to_string),
                };
                row(out, pos, ptr.to_string(), ts, &b, email, "envelope", "bounced", resp.as_deref(), None);
                *rows += 1;
            }
        }
        _ => {}
    }
}

impl Parser for PostmarkParser {
    fn format(&self) -> Format {
        Format::Postmark
    }

    fn line(&mut self, line: &Line<'_>, out: &mut dyn Emit) {
        self.doc.line(line, "postmark", out, &mut record);
    }

    fn finish(&mut self, out: &mut dyn Emit) {
        self.doc.finish("postmark", out);
    }
}

#[cfg(test)]
mod streaming_tests {
    use crate::collect::Provenance;
    use crate::{parse_reader, Format, RowSink, SourceInfo, Val};
    use mcpf_schema::Table;
    use std::sync::Arc;

    #[derive(Default)]
    struct Rows(Vec<(Table, String, String)>);
    impl RowSink for Rows {
        fn row(&mut self, t: Table, vals: &[Val<'_>]) {
            let cols = t.columns();
            let get = |name: &str| match vals[cols.iter().position(|c| c.name == name).unwrap()] {
                Val::Str(Some(s)) => s.to_string(),
                _ => String::new(),
            };
            if t == Table::MailDeliveries {
                self.0.push((t, get("recipient"), get("source_pointer")));
            }
        }
    }

    fn doc(n: usize) -> String {
        let msgs: Vec<String> = (0..n)
            .map(|i| format!(r#"{{"MessageID":"m{i}","ReceivedAt":"2026-03-01T10:00:00Z","From":"a@corp.example","To":[{{"Email":"to{i}@x.example"}}],"Bcc":[{{"Email":"b@y.example"}}],"Subject":"{}","Status":"Sent"}}"#, "s".repeat(200)))
            .collect();
        format!("{{\n  \"TotalCount\": {n},\n  \"Messages\": [\n{}\n  ]\n}}\n", msgs.join(",\n"))
    }

    /// A document larger than the streaming threshold gives the same rows as
    /// a small one would, element by element, with the same pointers.
    #[test]
    fn a_large_export_is_streamed_with_the_same_rows() {
        let n = 40_000; // ~12 MB, past STREAM_AFTER_BYTES
        let text = doc(n);
        assert!(text.len() > crate::jsondoc::STREAM_AFTER_BYTES);
        let info = SourceInfo::new("big.json", Some(0));
        let prov = Provenance { format: Format::Postmark, file: info.path.clone(), ingest_id: Arc::from("t") };
        let mut rows = Rows::default();
        let out = parse_reader(Box::new(std::io::Cursor::new(text.into_bytes())), Format::Postmark, &info, prov, 0, &mut rows, None);
        assert!(out.stats.balanced(), "{:?}", out.stats);
        assert_eq!(out.stats.rejected, 0, "{:?}", out.stats);
        assert_eq!(rows.0.len(), 2 * n);
        assert!(rows.0.contains((&(Table::MailDeliveries, "to39999@x.example".to_string(), "/Messages/39999/To/0".to_string())).into()));
        assert_eq!(rows.0.iter().filter(|r| r.1 == "b@y.example").count(), n);
    }
}
