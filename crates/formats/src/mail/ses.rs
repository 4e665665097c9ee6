//! Amazon SES event records → `mail_deliveries`, with each recipient's
//! header role.
//!
//! SES records one message in two lists: `mail.destination`, the envelope
//! (every address SES sent to), and `mail.commonHeaders.to` / `cc` (and
//! `bcc` where the caller put one in the headers), what the message showed.
//! An envelope address no header names was a blind copy: its role is `bcc`
//! with `role_source = envelope_minus_headers`, an exact answer rather than
//! a heuristic. Addresses a header names take that role (`role_source =
//! header`).
//!
//! Shapes read (one JSON document, pretty or compact, an array, or JSON
//! Lines; records are found anywhere inside, so an export or a test
//! snapshot that nests them works too):
//! - event publishing records (`eventType`: Send, Delivery, Bounce,
//!   DeliveryDelay, Reject, and the engagement events Complaint, Open,
//!   Click, Subscription, Rendering Failure);
//! - classic notifications (`notificationType`: Delivery, Bounce, Complaint);
//! - either inside an SNS envelope (`{"Type": "Notification", "Message":
//!   "<the record as a JSON string>"}`); a pointer through `Message`
//!   continues inside the string's JSON.
//!
//! Rows: Send → every destination `accepted`; Delivery →
//! `delivery.recipients` `delivered` (with `smtpResponse`, `reportingMTA`,
//! `processingTimeMillis`); Bounce → `bouncedRecipients` `bounced` (with
//! `diagnosticCode`, `status`); DeliveryDelay → `delayedRecipients`
//! `deferred`; Reject → every destination `rejected`. Engagement events
//! name no delivery: the record is skipped with a reason. `message_id` is
//! SES's `mail.messageId`, the id the SendEmail API returned to the caller
//! (what a mail tool reports); a record whose time is masked or missing
//! takes the file's time.

use serde_json::Value;

use crate::address::{normalize, parse_list};
use crate::collect::LineOutcome;
use crate::jsondoc::{Assembler, Document};
use crate::postfix::MailDelivery;
use crate::time::parse_rfc3339;
use crate::{Emit, Format, Line, Parser, Pos, SourceInfo};

/// Deepest nesting searched for records (exports and snapshots nest them).
const MAX_DEPTH: usize = 12;
/// Most recipients read from one list of one record.
const MAX_RECIPIENTS: usize = 10_000;

/// An SES record in a file's head (the key names, quoted or escaped inside
/// an SNS `Message` string).
pub fn looks_like_document(head: &str) -> bool {
    let t = head.trim_start();
    (t.starts_with('{') || t.starts_with('['))
        && (t.contains("eventType") || t.contains("notificationType"))
        && t.contains("\"mail\"").then_some(()).or_else(|| t.contains("\\\"mail\\\"").then_some(())).is_some()
        && (t.contains("destination") || t.contains("commonHeaders"))
}

pub struct SesParser {
    doc: Assembler,
    mtime_micros: Option<i64>,
}

impl SesParser {
    pub fn new(info: &SourceInfo) -> Self {
        SesParser { doc: Assembler::streaming(), mtime_micros: info.mtime_unix.map(|s| s * 1_000_000) }
    }
}

fn s<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str).filter(|x| !x.is_empty())
}

/// The addresses of a `commonHeaders` list (each element may itself be a
/// list: `"a@x, \"B\" <b@y>"`).
fn header_addresses(v: Option<&Value>) -> Vec<String> {
    let mut out = Vec::new();
    for e in v.and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default().iter().take(MAX_RECIPIENTS) {
        if let Some(text) = e.as_str() {
            match parse_list(text).filter(|l| !l.is_empty()) {
                Some(list) => out.extend(list.into_iter().map(|a| a.address)),
                // Not an address (masked, malformed): compared as written,
                // so it never turns its envelope twin into a blind copy.
                None => out.push(normalize(text).map(|a| a.address).unwrap_or_else(|| text.trim().to_lowercase())),
            }
        }
    }
    out
}

/// What the record's message says of itself, shared by its rows.
struct Message<'a> {
    id: Option<&'a str>,
    source: Option<&'a str>,
    subject: Option<&'a str>,
    from: Option<&'a str>,
    to: Vec<String>,
    cc: Vec<String>,
    bcc: Vec<String>,
    /// commonHeaders was recorded: the envelope-minus-headers answer holds.
    headers_known: bool,
    /// SES cut the headers it recorded (over 10 KB): an address missing
    /// from them may be in the part cut off.
    headers_truncated: bool,
    destination: usize,
    ts: Option<i64>,
}

impl<'a> Message<'a> {
    fn of(mail: &'a Value) -> Message<'a> {
        let ch = mail.get("commonHeaders");
        Message {
            id: s(mail, "messageId"),
            source: s(mail, "source"),
            subject: ch.and_then(|c| s(c, "subject")),
            from: ch.and_then(|c| c.get("from")).and_then(Value::as_array).and_then(|a| a.first()).and_then(Value::as_str),
            to: header_addresses(ch.and_then(|c| c.get("to"))),
            cc: header_addresses(ch.and_then(|c| c.get("cc"))),
            bcc: header_addresses(ch.and_then(|c| c.get("bcc"))),
            // A message always has a From: commonHeaders without one (and
            // without To or Cc) recorded no headers (a raw send SES did
            // not parse), so it says nothing of blind copies.
            headers_known: ch.is_some_and(|c| ["from", "to", "cc"].iter().any(|k| c.get(*k).is_some())),
            headers_truncated: mail.get("headersTruncated").and_then(Value::as_bool).unwrap_or(false),
            destination: mail.get("destination").and_then(Value::as_array).map_or(0, Vec::len),
            ts: s(mail, "timestamp").and_then(parse_rfc3339),
        }
    }

    /// The header role of an envelope address, and where it came from.
    fn role(&self, address: &str) -> (&'static str, &'static str) {
        if !self.headers_known {
            return ("envelope", "provider_recipients");
        }
        if self.to.iter().any(|a| a == address) {
            ("to", "header")
        } else if self.cc.iter().any(|a| a == address) {
            ("cc", "header")
        } else if self.bcc.iter().any(|a| a == address) {
            ("bcc", "header")
        } else if self.headers_truncated {
            ("envelope", "provider_recipients")
        } else {
            ("bcc", "envelope_minus_headers")
        }
    }
}

/// One recipient's row.
struct Outcome<'a> {
    status: &'static str,
    ts: Option<i64>,
    response: Option<&'a str>,
    dsn: Option<&'a str>,
    relay: Option<&'a str>,
    delay_s: Option<f64>,
}

fn emit_row(out: &mut dyn Emit, pos: &Pos, pointer: String, fallback_ts: i64, m: &Message<'_>, recipient: &str, o: &Outcome<'_>) {
    let (rcpt, rcpt_raw, domain) = match normalize(recipient) {
        Some(a) => (a.address, a.raw, a.domain),
        None => (recipient.trim().to_lowercase(), Some(recipient.to_string()), String::new()),
    };
    let (role, role_source) = m.role(&rcpt);
    let (sender, sender_raw) = match m.source.and_then(normalize) {
        Some(a) => (Some(a.address), a.raw),
        None => (m.source.map(str::to_lowercase), m.source.map(str::to_string)),
    };
    out.delivery(MailDelivery {
        ts: o.ts.or(m.ts).unwrap_or(fallback_ts),
        pos: Pos { pointer: Some(pointer), ..pos.clone() },
        host: Some("amazonses".to_string()),
        message_id: m.id.map(str::to_string),
        sender,
        sender_raw,
        header_from: m.from.map(str::to_string),
        subject: m.subject.map(|t| t.chars().take(998).collect()),
        recipient: rcpt,
        recipient_raw: rcpt_raw,
        recipient_domain: domain,
        recipient_role: role,
        role_source,
        status: o.status.to_string(),
        dsn: o.dsn.map(str::to_string).or_else(|| o.response.and_then(dsn_in)),
        relay: o.relay.map(str::to_string),
        delay_s: o.delay_s,
        nrcpt: Some(m.destination as i64),
        response: o.response.map(|r| r.chars().take(1024).collect()),
        // SES handed it to the recipient's server (or tried to).
        delivery_kind: "egress",
        ..Default::default()
    });
}

/// An enhanced status code inside a response (`smtp; 550 5.1.1 user unknown`).
fn dsn_in(text: &str) -> Option<String> {
    text.split([' ', ';', ',', '(', ')']).find(|w| {
        let p: Vec<&str> = w.split('.').collect();
        p.len() == 3 && matches!(p[0], "2" | "4" | "5") && p.iter().all(|x| !x.is_empty() && x.len() <= 3 && x.bytes().all(|b| b.is_ascii_digit()))
    }).map(str::to_string)
}

/// The rows of one SES record at `ptr`; false when it names no delivery.
fn record_rows(rec: &Value, ptr: &str, pos: &Pos, fallback_ts: i64, out: &mut dyn Emit) -> bool {
    let Some(mail) = rec.get("mail") else { return false };
    let kind = s(rec, "eventType").or_else(|| s(rec, "notificationType")).unwrap_or("");
    let m = Message::of(mail);
    let list = |v: Option<&Value>| -> Vec<(usize, Value)> { v.and_then(Value::as_array).map(|a| a.iter().take(MAX_RECIPIENTS).cloned().enumerate().collect()).unwrap_or_default() };
    let mut rows = 0;
    match kind {
        "Send" | "Reject" => {
            let status = if kind == "Send" { "accepted" } else { "rejected" };
            let reason = rec.get("reject").and_then(|r| s(r, "reason"));
            for (i, d) in list(mail.get("destination")) {
                let Some(a) = d.as_str() else { continue };
                let o = Outcome { status, ts: None, response: reason, dsn: None, relay: None, delay_s: None };
                emit_row(out, pos, format!("{ptr}/mail/destination/{i}"), fallback_ts, &m, a, &o);
                rows += 1;
            }
        }
        "Delivery" => {
            let d = rec.get("delivery").unwrap_or(&Value::Null);
            let ts = s(d, "timestamp").and_then(parse_rfc3339);
            let delay = d.get("processingTimeMillis").and_then(Value::as_f64).map(|ms| ms / 1000.0);
            for (i, r) in list(d.get("recipients")) {
                let Some(a) = r.as_str() else { continue };
                let o = Outcome { status: "delivered", ts, response: s(d, "smtpResponse"), dsn: None, relay: s(d, "remoteMtaIp").or_else(|| s(d, "reportingMTA")), delay_s: delay };
                emit_row(out, pos, format!("{ptr}/delivery/recipients/{i}"), fallback_ts, &m, a, &o);
                rows += 1;
            }
        }
        "Bounce" => {
            let b = rec.get("bounce").unwrap_or(&Value::Null);
            let ts = s(b, "timestamp").and_then(parse_rfc3339);
            for (i, r) in list(b.get("bouncedRecipients")) {
                let Some(a) = s(&r, "emailAddress") else { continue };
                let o = Outcome { status: "bounced", ts, response: s(&r, "diagnosticCode"), dsn: s(&r, "status"), relay: s(b, "reportingMTA"), delay_s: None };
                emit_row(out, pos, format!("{ptr}/bounce/bouncedRecipients/{i}"), fallback_ts, &m, a, &o);
                rows += 1;
            }
        }
        "DeliveryDelay" => {
            let d = rec.get("deliveryDelay").unwrap_or(&Value::Null);
            let ts = s(d, "timestamp").and_then(parse_rfc3339);
            for (i, r) in list(d.get("delayedRecipients")) {
                let Some(a) = s(&r, "emailAddress") else { continue };
                let o = Outcome { status: "deferred", ts, response: s(&r, "diagnosticCode"), dsn: s(&r, "status"), relay: s(d, "reportingMTA"), delay_s: None };
                emit_row(out, pos, format!("{ptr}/deliveryDelay/delayedRecipients/{i}"), fallback_ts, &m, a, &o);
                rows += 1;
            }
        }
        _ => {}
    }
    rows > 0
}

/// Every SES record inside `v` (at `ptr`): (records with rows, records without).
fn walk(v: &Value, ptr: &str, depth: usize, pos: &Pos, fallback_ts: i64, out: &mut dyn Emit) -> (usize, usize) {
    if depth > MAX_DEPTH {
        return (0, 0);
    }
    match v {
        Value::Object(o) if o.contains_key("mail") && (o.contains_key("eventType") || o.contains_key("notificationType")) => {
            if record_rows(v, ptr, pos, fallback_ts, out) {
                (1, 0)
            } else {
                (0, 1)
            }
        }
        Value::Object(o) => {
            let mut n = (0, 0);
            for (k, x) in o {
                let p = format!("{ptr}/{}", k.replace('~', "~0").replace('/', "~1"));
                // SNS carries the record as a JSON string.
                let inner;
                let x = match (k.as_str(), x) {
                    ("Message", Value::String(text)) if text.trim_start().starts_with('{') => match serde_json::from_str::<Value>(text) {
                        Ok(parsed) => {
                            inner = parsed;
                            &inner
                        }
                        Err(_) => x,
                    },
                    _ => x,
                };
                let (a, b) = walk(x, &p, depth + 1, pos, fallback_ts, out);
                n = (n.0 + a, n.1 + b);
            }
            n
        }
        Value::Array(a) => a.iter().enumerate().fold((0, 0), |n, (i, x)| {
            let (a, b) = walk(x, &format!("{ptr}/{i}"), depth + 1, pos, fallback_ts, out);
            (n.0 + a, n.1 + b)
        }),
        _ => (0, 0),
    }
}

fn record(d: Document<'_>, mtime: Option<i64>, out: &mut dyn Emit) {
    let v: Value = match serde_json::from_str(d.text) {
        Ok(v) => v,
        Err(e) => return out.reject(&d.pos, d.lines, format!("ses: invalid JSON ({e}); expected SES event records or notifications"), d.text.as_bytes(), None),
    };
    let (with_rows, without) = walk(&v, d.pointer.as_deref().unwrap_or(""), 0, &d.pos, mtime.unwrap_or(0), out);
    let outcome = if with_rows > 0 || d.streamed {
        LineOutcome::Parsed
    } else if without > 0 {
        LineOutcome::Skipped("ses: engagement or notice event without a delivery (open, click, complaint, subscription, rendering failure)")
    } else {
        LineOutcome::Skipped("ses: JSON without an SES record (an SNS subscription notice, an error body)")
    };
    out.account(&d.pos, d.lines, outcome);
}

impl Parser for SesParser {
    fn format(&self) -> Format {
        Format::Ses
    }

    fn line(&mut self, line: &Line<'_>, out: &mut dyn Emit) {
        let mtime = self.mtime_micros;
        self.doc.line(line, "ses", out, &mut |d, out| record(d, mtime, out));
    }

    fn finish(&mut self, out: &mut dyn Emit) {
        self.doc.finish("ses", out);
    }
}

#[cfg(test)]
mod tests {
    use mcpf_schema::Table;

    use crate::test_rows::parse;
    use crate::Format;

    #[test]
    fn an_envelope_address_no_header_names_is_an_exact_bcc() {
        let rec = r#"{"eventType":"Send","mail":{"timestamp":"2026-03-01T10:00:00.000Z","source":"agent@corp.example","messageId":"0100018e-aaaa","destination":["bob@partner.example","Carol <carol@partner.example>","drop@exfil.example"],"headersTruncated":false,"commonHeaders":{"from":["agent@corp.example"],"to":["\"Bob\" <bob@partner.example>"],"cc":["carol@partner.example"],"messageId":"0100018e-aaaa","subject":"Q"}},"send":{}}"#;
        let sns = serde_json::json!({"Type": "Notification", "MessageId": "m1", "Message": rec}).to_string();
        for text in [rec.to_string(), sns] {
            let (stats, rows) = parse(Format::Ses, "/exports/ses/events.jsonl", &format!("{text}\n"), None);
            assert_eq!(stats.parsed, 1, "{text}");
            let d = rows.of(Table::MailDeliveries);
            let roles: Vec<(&str, &str, &str)> = d.iter().map(|r| (r["recipient"].as_str(), r["recipient_role"].as_str(), r["role_source"].as_str())).collect();
            assert_eq!(roles, vec![("bob@partner.example", "to", "header"), ("carol@partner.example", "cc", "header"), ("drop@exfil.example", "bcc", "envelope_minus_headers")]);
            assert!(d.iter().all(|r| r["status"] == "accepted" && r["message_id"] == "0100018e-aaaa" && r["sender"] == "agent@corp.example"));
            assert!(d[2]["source_pointer"].ends_with("/mail/destination/2"), "{:?}", d[2]);
        }
    }

    #[test]
    fn engagement_events_are_skipped_and_garbage_rejected() {
        let open = r#"{"eventType":"Open","mail":{"timestamp":"2026-03-01T10:00:00.000Z","source":"a@b.example","messageId":"x","destination":["c@d.example"]},"open":{"timestamp":"2026-03-01T11:00:00.000Z"}}"#;
        let (stats, rows) = parse(Format::Ses, "/e.jsonl", &format!("{open}\n{{\"eventType\":\n"), None);
        assert!(rows.of(Table::MailDeliveries).is_empty());
        assert_eq!((stats.skipped, stats.rejected), (1, 1), "{stats:?}");
    }
}
