//! Google Workspace Gmail logs (the BigQuery export) → `mail_deliveries`.
//!
//! Shapes read (JSON Lines, one document or an array):
//! - rows as BigQuery's REST API returns them, values by position with the
//!   schema inline: `{"row": {"f": [{"v": …}, …]}, "schema": {"fields":
//!   […]}}`, or a query result page `{"schema": {…}, "rows": [{"f": …}]}`;
//!   nested records are `{"f": […]}`, repeated fields arrays of `{"v": …}`,
//!   integers and booleans strings (`"1753594930801601"`, `"false"`);
//! - rows by name (`bq extract` / `bq query --format=json`): objects with
//!   `event_info` and `message_info`.
//!
//! One row per `message_info.destination[]` address (`source_pointer`
//! names it in the record as written: `/row/f/11/v/f/5/v/0/v` in a REST row): `event_info.timestamp_usec` as time,
//! `rfc2822_message_id` (without brackets), `subject`, `payload_size`,
//! `source.address` (envelope sender) and `.from_header_address`,
//! `connection_info.client_ip` as client, `smtp_out_remote_host` /
//! `smtp_out_connect_ip` as relay. Status from `event_info.mail_event_type`:
//! 1 `sent`, 2 `received`, 5 `quarantined`, 10 `forwarded`, 11
//! `autoforwarded`, 30 `bounced`; 0 (a delivery stage without a
//! Security-Investigation event) `stage`, with `action_type N` as
//! response. `delivery_kind` is `egress` when the event names an outbound
//! SMTP host or address, else `local` for sent/received/forwarded and
//! `none` otherwise. Mailbox and engagement events (spam marks, opens,
//! labels, moves, downloads: 3, 4, 6–9, 12–29, 31–34) name no delivery:
//! skipped with a reason. Gmail logs no header roles: `role_source =
//! provider_recipients`.

use serde_json::{Map, Value};

use crate::address::normalize;
use crate::collect::LineOutcome;
use crate::jsondoc::{Assembler, Document};
use crate::postfix::MailDelivery;
use crate::{Emit, Format, Line, Parser, Pos, SourceInfo};

/// Deepest nesting followed in a schema or a row.
const MAX_DEPTH: usize = 16;
/// Most destinations read from one record.
const MAX_DESTINATIONS: usize = 10_000;

/// A Gmail log row in a file's head.
pub fn looks_like_document(head: &str) -> bool {
    let t = head.trim_start_matches('\u{feff}').trim_start();
    (t.starts_with('{') || t.starts_with('[')) && t.contains("message_info") && t.contains("rfc2822_message_id") && (t.contains("\"schema\"") || t.contains("\"event_info\""))
}

/// A BigQuery REST value (`{"v": …}` cells) under its schema field → the
/// value by name.
fn named(field: &Value, cell: &Value, depth: usize) -> Value {
    let v = cell.get("v").unwrap_or(cell);
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    let repeated = field.get("mode").and_then(Value::as_str) == Some("REPEATED");
    let record = matches!(field.get("type").and_then(Value::as_str), Some("RECORD" | "STRUCT"));
    let one = |x: &Value| -> Value {
        if record {
            match (field.get("fields"), x.get("f")) {
                (Some(fields), Some(f)) => zip(fields, f, depth + 1),
                _ => Value::Null,
            }
        } else {
            x.clone()
        }
    };
    if repeated {
        Value::Array(v.as_array().map(|a| a.iter().take(MAX_DESTINATIONS).map(|e| one(e.get("v").unwrap_or(e))).collect()).unwrap_or_default())
    } else {
        one(v)
    }
}

/// A REST row's positional cells with their schema's names.
fn zip(fields: &Value, cells: &Value, depth: usize) -> Value {
    let mut m = Map::new();
    if let (Some(fs), Some(cs)) = (fields.as_array(), cells.as_array()) {
        for (f, c) in fs.iter().zip(cs) {
            if let Some(name) = f.get("name").and_then(Value::as_str) {
                m.insert(name.to_string(), named(f, c, depth));
            }
        }
    }
    Value::Object(m)
}

fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |x, k| x.get(k)).filter(|x| !x.is_null())
}

fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(v, path).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

/// An INTEGER as BigQuery's REST API (a string) or an export (a number) writes it.
fn int(v: &Value, path: &[&str]) -> Option<i64> {
    at(v, path).and_then(|x| x.as_i64().or_else(|| x.as_str().and_then(|s| s.parse().ok())))
}

fn address(raw: &str) -> (String, Option<String>, String) {
    match normalize(raw) {
        Some(a) => (a.address, a.raw, a.domain),
        None => (raw.to_lowercase(), Some(raw.to_string()), String::new()),
    }
}

/// The rows of one Gmail log record (by name) at `ptr`: Some(rows), or None
/// when the event names no delivery.
fn record_rows(rec: &Value, dest_ptr: &dyn Fn(usize) -> String, pos: &Pos, out: &mut dyn Emit) -> Option<usize> {
    let event = int(rec, &["event_info", "mail_event_type"]).unwrap_or(0);
    let status = match event {
        0 => "stage",
        1 => "sent",
        2 => "received",
        5 => "quarantined",
        10 => "forwarded",
        11 => "autoforwarded",
        30 => "bounced",
        _ => return None,
    };
    let mi = rec.get("message_info")?;
    let ts = int(rec, &["event_info", "timestamp_usec"]).or_else(|| int(rec, &["time_usec"]))?;
    let out_host = text(mi, &["connection_info", "smtp_out_remote_host"]);
    let out_ip = text(mi, &["connection_info", "smtp_out_connect_ip"]);
    let relay = match (out_host, out_ip) {
        (Some(h), Some(i)) => Some(format!("{h}[{i}]")),
        (Some(h), None) => Some(h.to_string()),
        (None, Some(i)) => Some(format!("[{i}]")),
        (None, None) => None,
    };
    let kind = match (relay.is_some(), status) {
        (true, _) => "egress",
        (false, "sent" | "received" | "forwarded" | "autoforwarded") => "local",
        _ => "none",
    };
    let sender = text(mi, &["source", "address"]).map(address);
    let response = match event {
        0 => int(mi, &["action_type"]).map(|a| format!("action_type {a}")),
        _ => int(mi, &["connection_info", "smtp_reply_code"]).filter(|c| *c > 0).map(|c| c.to_string()),
    };
    let bounded = |s: &str, n: usize| s.chars().take(n).collect::<String>();
    let mut rows = 0;
    for (i, d) in mi.get("destination").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default().iter().enumerate().take(MAX_DESTINATIONS) {
        let Some(a) = text(d, &["address"]) else { continue };
        let (recipient, recipient_raw, recipient_domain) = address(a);
        out.delivery(MailDelivery {
            ts,
            pos: Pos { pointer: Some(dest_ptr(i)), ..pos.clone() },
            host: Some(text(rec, &["domain_name"]).map(|d| bounded(d, 255)).unwrap_or_else(|| "gmail".into())),
            message_id: text(mi, &["rfc2822_message_id"]).map(|m| bounded(m.trim_start_matches('<').trim_end_matches('>'), 998)),
            sender: sender.as_ref().map(|s| s.0.clone()),
            sender_raw: sender.as_ref().and_then(|s| s.1.clone()),
            header_from: text(mi, &["source", "from_header_address"]).map(|a| address(a).0),
            subject: text(mi, &["subject"]).map(|s| bounded(s, 998)),
            recipient,
            recipient_raw,
            recipient_domain,
            recipient_role: "envelope",
            role_source: "provider_recipients",
            status: status.to_string(),
            relay: relay.as_deref().map(|r| bounded(r, 512)),
            delay_s: int(rec, &["event_info", "elapsed_time_usec"]).map(|u| u as f64 / 1e6),
            size_bytes: int(mi, &["payload_size"]),
            client: text(mi, &["connection_info", "client_ip"]).map(|ip| format!("[{}]", bounded(ip, 64))),
            response: response.clone(),
            delivery_kind: kind,
            ..Default::default()
        });
        rows += 1;
    }
    Some(rows)
}

/// Where a REST row keeps the field at `path` (names of nested records):
/// `/f/11/v/f/5/v` for `message_info.destination`.
fn rest_pointer(fields: &Value, path: &[&str]) -> Option<String> {
    let mut out = String::new();
    let mut fs = fields;
    for name in path {
        let i = fs.as_array()?.iter().position(|f| f.get("name").and_then(Value::as_str) == Some(name))?;
        out.push_str(&format!("/f/{i}/v"));
        fs = &fs[i]["fields"];
    }
    Some(out)
}

/// Every Gmail record inside `v`: (records with a delivery event, records without).
fn walk(v: &Value, ptr: &str, depth: usize, pos: &Pos, out: &mut dyn Emit) -> (usize, usize) {
    if depth > MAX_DEPTH {
        return (0, 0);
    }
    let count = |r: Option<usize>| if r.is_some() { (1, 0) } else { (0, 1) };
    match v {
        // A REST row with its schema, or a result page of rows.
        Value::Object(o) if o.contains_key("schema") && (o.contains_key("row") || o.contains_key("rows")) => {
            let fields = &v["schema"]["fields"];
            let rows: Vec<(String, &Value)> = match (o.get("row"), o.get("rows").and_then(Value::as_array)) {
                (Some(r), _) => vec![(format!("{ptr}/row"), r)],
                (None, Some(a)) => a.iter().enumerate().map(|(i, r)| (format!("{ptr}/rows/{i}"), r)).collect(),
                _ => vec![],
            };
            let dest = rest_pointer(fields, &["message_info", "destination"]).unwrap_or_default();
            rows.into_iter().fold((0, 0), |n, (p, r)| {
                let rec = zip(fields, &r["f"], 0);
                let c = count(record_rows(&rec, &|i| format!("{p}{dest}/{i}/v"), pos, out));
                (n.0 + c.0, n.1 + c.1)
            })
        }
        Value::Object(o) if o.contains_key("message_info") && o.contains_key("event_info") => count(record_rows(v, &|i| format!("{ptr}/message_info/destination/{i}"), pos, out)),
        Value::Array(a) => a.iter().enumerate().fold((0, 0), |n, (i, x)| {
            let c = walk(x, &format!("{ptr}/{i}"), depth + 1, pos, out);
            (n.0 + c.0, n.1 + c.1)
        }),
        _ => (0, 0),
    }
}

fn record(d: Document<'_>, out: &mut dyn Emit) {
    let v: Value = match serde_json::from_str(d.text.trim_start_matches('\u{feff}')) {
        Ok(v) => v,
        Err(e) => return out.reject(&d.pos, d.lines, format!("gmail: invalid JSON ({e}); expected Gmail log rows from BigQuery"), d.text.as_bytes(), None),
    };
    let (with, without) = walk(&v, d.pointer.as_deref().unwrap_or(""), 0, &d.pos, out);
    let outcome = if with > 0 || d.streamed {
        LineOutcome::Parsed
    } else if without > 0 {
        LineOutcome::Skipped("gmail: mailbox or engagement event without a delivery (spam mark, open, label, move, download)")
    } else {
        LineOutcome::Skipped("gmail: JSON without a Gmail log row")
    };
    out.account(&d.pos, d.lines, outcome);
}

pub struct GmailParser {
    doc: Assembler,
}

impl GmailParser {
    pub fn new(_info: &SourceInfo) -> Self {
        GmailParser { doc: Assembler::streaming() }
    }
}

impl Parser for GmailParser {
    fn format(&self) -> Format {
        Format::Gmail
    }

    fn line(&mut self, line: &Line<'_>, out: &mut dyn Emit) {
        self.doc.line(line, "gmail", out, &mut record);
    }

    fn finish(&mut self, out: &mut dyn Emit) {
        self.doc.finish("gmail", out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rows::parse;
    use mcpf_schema::Table;

    #[test]
    fn rows_by_name_and_engagement_events() {
        let sent = r#"{"event_info":{"timestamp_usec":1753594930801601,"mail_event_type":1},"message_info":{"rfc2822_message_id":"<m@x.example>","source":{"address":"agent@corp.example"},"destination":[{"address":"a@b.example"},{"address":"phan@giftshop.club"}],"connection_info":{"smtp_out_remote_host":"mx.b.example"}}}"#;
        let open = r#"{"event_info":{"timestamp_usec":1753594930801601,"mail_event_type":7},"message_info":{"rfc2822_message_id":"<m@x.example>","destination":[{"address":"a@b.example"}]}}"#;
        let (stats, rows) = parse(Format::Gmail, "/gmail.json", &format!("{sent}\n{open}\n"), None);
        assert_eq!((stats.parsed, stats.skipped), (1, 1));
        let d = rows.of(Table::MailDeliveries);
        assert_eq!(d.len(), 2);
        assert_eq!((d[1]["recipient"].as_str(), d[1]["status"].as_str(), d[1]["delivery_kind"].as_str()), ("phan@giftshop.club", "sent", "egress"));
        assert_eq!((d[1]["message_id"].as_str(), d[1]["source_pointer"].as_str()), ("m@x.example", "/message_info/destination/1"));
    }
}
