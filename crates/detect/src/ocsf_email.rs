//! Delivery rows as OCSF Email Activity events (class 4009, schema 1.5.0),
//! one JSON object per line: `sql --format ocsf` over `mail_deliveries` and
//! `timeline --format ocsf`, for SIEMs that take mail telemetry as OCSF.
//!
//! Mapping of one `mail_deliveries` row (columns read by name; any may be
//! missing from a query's projection except `ts` and `recipient`):
//! - `activity_id`: 1 Send (handed to another host: `delivery_kind =
//!   egress` and a successful status), 2 Receive (`status = received`), 4
//!   Trace (every other step of the message's path: deferrals, bounces,
//!   local deliveries, filter hops, refusals);
//! - `status_id`: 1 Success (sent, delivered, accepted, received), 2 Failure
//!   (bounced, expired, rejected, discarded, filtered, quarantined), else 0
//!   Unknown; `status` is the row's status, `status_code` its enhanced code,
//!   `status_detail` the server's response;
//! - `direction_id`: 2 Outbound for egress, 3 Internal for local delivery
//!   and filter hops, 1 Inbound for a receive, else 0;
//! - `email`: `smtp_from` / `smtp_to` the envelope, `from` the header From,
//!   `to` / `cc` the recipient when its header role says so (OCSF 1.5 has no
//!   Bcc attribute: a blind copy is in `smtp_to` only, its role in
//!   `unmapped.recipient_role`), `message_uid` the Message-ID, `uid` the
//!   MTA's queue id or the provider's id, `subject`, `size`;
//! - `message_trace_uid` the queue id (Exchange's network message id);
//! - `src_endpoint` the submitting client, `dst_endpoint` the relay
//!   (`host[ip]:port` split into hostname, ip and port);
//! - `metadata.uid` a stable id of the row (its source location and
//!   recipient), so a SIEM de-duplicates a re-export;
//! - `unmapped`: what OCSF has no attribute for, with the row's provenance
//!   (`source_file`, `source_line`, `source_offset`, `source_pointer`).

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::ocsf::OCSF_VERSION;

/// A `mail_deliveries` row as JSON values by column name.
pub type Row = Map<String, Value>;

fn text<'a>(r: &'a Row, k: &str) -> Option<&'a str> {
    r.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// `mx.example.net[192.0.2.5]:25`, `host[ip]`, `[ip]`, `host` → an OCSF
/// network endpoint (an `ip` only when it parses as one).
pub fn endpoint(peer: &str) -> Option<Value> {
    let (host, rest) = match peer.split_once('[') {
        Some((h, r)) => (h, Some(r)),
        None => (peer, None),
    };
    let mut e = Map::new();
    let host = host.trim().trim_end_matches('.');
    if !host.is_empty() && !host.contains([' ', ':', '/']) && !host.eq_ignore_ascii_case("none") {
        e.insert("hostname".into(), json!(host));
    }
    if let Some(r) = rest {
        let (ip, tail) = r.split_once(']').unwrap_or((r, ""));
        let ip = ip.strip_prefix("IPv6:").unwrap_or(ip);
        if ip.parse::<std::net::IpAddr>().is_ok() {
            e.insert("ip".into(), json!(ip));
        }
        if let Some(port) = tail.strip_prefix(':').and_then(|p| p.parse::<u16>().ok()) {
            e.insert("port".into(), json!(port));
        }
    }
    (!e.is_empty()).then_some(Value::Object(e))
}

fn activity(status: &str, kind: &str) -> (u8, &'static str) {
    let ok = matches!(status, "sent" | "delivered" | "accepted");
    match (status, kind) {
        ("received", _) => (2, "Receive"),
        (_, "egress") if ok => (1, "Send"),
        _ => (4, "Trace"),
    }
}

fn status_of(status: &str) -> (u8, &'static str) {
    match status {
        "sent" | "delivered" | "accepted" | "received" => (1, "Success"),
        "bounced" | "expired" | "rejected" | "discarded" | "filtered" | "quarantined" | "undeliverable" => (2, "Failure"),
        _ => (0, "Unknown"),
    }
}

fn direction(status: &str, kind: &str) -> (u8, &'static str) {
    match (status, kind) {
        (_, "egress") => (2, "Outbound"),
        (_, "local" | "filter_hop") => (3, "Internal"),
        ("received", _) => (1, "Inbound"),
        _ => (0, "Unknown"),
    }
}

/// The event time in epoch milliseconds from the row's `ts` (RFC 3339 text
/// or epoch microseconds).
fn time_ms(r: &Row) -> Option<i64> {
    match r.get("ts")? {
        Value::Number(n) => n.as_i64().map(|us| us.div_euclid(1000)),
        Value::String(s) => mcpf_formats::time::parse_rfc3339(s).map(|us| us.div_euclid(1000)),
        _ => None,
    }
}

/// One delivery row as an OCSF Email Activity event; None without a time or
/// a recipient.
pub fn email_activity(r: &Row) -> Option<Value> {
    let recipient = text(r, "recipient")?;
    let time = time_ms(r)?;
    let status = text(r, "status").unwrap_or("unknown");
    let kind = text(r, "delivery_kind").unwrap_or("");
    let role = text(r, "recipient_role").unwrap_or("envelope");
    let (activity_id, activity_name) = activity(status, kind);
    let (status_id, status_name) = status_of(status);
    let (direction_id, direction_name) = direction(status, kind);
    let mut email = Map::new();
    email.insert("smtp_to".into(), json!([recipient]));
    if let Some(s) = r.get("sender").and_then(Value::as_str) {
        email.insert("smtp_from".into(), json!(s));
    }
    for (k, col) in [("from", "header_from"), ("message_uid", "message_id"), ("uid", "queue_id"), ("subject", "subject")] {
        if let Some(v) = text(r, col) {
            email.insert(k.into(), json!(v));
        }
    }
    if let Some(n) = r.get("size_bytes").and_then(Value::as_i64) {
        email.insert("size".into(), json!(n));
    }
    match role {
        "to" => {
            email.insert("to".into(), json!([recipient]));
        }
        "cc" => {
            email.insert("cc".into(), json!([recipient]));
        }
        _ => {}
    }
    let mut observables = vec![json!({"name": "email.smtp_to", "type_id": 5, "type": "Email Address", "value": recipient})];
    if let Some(s) = text(r, "sender") {
        observables.push(json!({"name": "email.smtp_from", "type_id": 5, "type": "Email Address", "value": s}));
    }
    let location = [text(r, "source_file").unwrap_or(""), &r.get("source_offset").map(Value::to_string).unwrap_or_default(), text(r, "source_pointer").unwrap_or(""), recipient].join("\u{1f}");
    let uid: String = Sha256::digest(location.as_bytes()).iter().take(16).map(|b| format!("{b:02x}")).collect();
    let mut unmapped = Map::new();
    for k in ["recipient_role", "role_source", "delivery_kind", "status", "orig_recipient", "notification_of", "next_queue_id", "host", "relay", "client", "source_file", "source_line", "source_offset", "source_pointer", "ingest_id"] {
        if let Some(v) = r.get(k).filter(|v| !v.is_null()) {
            unmapped.insert(k.into(), v.clone());
        }
    }
    let mut event = json!({
        "activity_id": activity_id,
        "activity_name": activity_name,
        "category_uid": 4,
        "category_name": "Network Activity",
        "class_uid": 4009,
        "class_name": "Email Activity",
        "type_uid": 400900 + u32::from(activity_id),
        "type_name": format!("Email Activity: {activity_name}"),
        "severity_id": 1,
        "severity": "Informational",
        "status_id": status_id,
        "status": status_name,
        "direction_id": direction_id,
        "direction": direction_name,
        "time": time,
        "email": email,
        "observables": observables,
        "metadata": {
            "version": OCSF_VERSION,
            "uid": uid,
            "product": {"name": "mcp-forensics", "vendor_name": "mcp-forensics", "version": env!("CARGO_PKG_VERSION")},
            "log_name": "mail_deliveries",
        },
        "unmapped": unmapped,
    });
    let o = event.as_object_mut().expect("object");
    if let Some(v) = text(r, "dsn") {
        o.insert("status_code".into(), json!(v));
    }
    if let Some(v) = text(r, "response") {
        o.insert("status_detail".into(), json!(v));
    }
    if let Some(v) = text(r, "queue_id") {
        o.insert("message_trace_uid".into(), json!(v));
    }
    if let Some(e) = text(r, "client").and_then(endpoint) {
        o.insert("src_endpoint".into(), e);
    }
    if let Some(e) = text(r, "relay").and_then(endpoint) {
        o.insert("dst_endpoint".into(), e);
    }
    if let Some(d) = r.get("delay_s").and_then(Value::as_f64) {
        o.insert("duration".into(), json!((d * 1000.0).round() as i64));
    }
    Some(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blind_copy_is_envelope_only_and_the_relay_an_endpoint() {
        let row: Row = serde_json::from_value(json!({
            "ts": "2025-09-17T10:00:00.500000Z", "recipient": "phan@giftshop.club", "sender": "agent@corp.example", "status": "sent",
            "delivery_kind": "egress", "recipient_role": "bcc", "role_source": "envelope_minus_headers", "relay": "mx.giftshop.club[203.0.113.9]:25",
            "client": "agent-host[10.0.0.5]", "dsn": "2.0.0", "queue_id": "4BX1", "message_id": "m@corp.example", "source_file": "/var/log/mail.log", "source_offset": 120,
        }))
        .unwrap();
        let e = email_activity(&row).unwrap();
        assert_eq!((e["activity_id"].as_u64(), e["type_uid"].as_u64(), e["direction_id"].as_u64(), e["time"].as_i64()), (Some(1), Some(400901), Some(2), Some(1758103200500)));
        assert_eq!(e["email"]["smtp_to"], json!(["phan@giftshop.club"]));
        assert!(e["email"].get("to").is_none() && e["email"].get("cc").is_none());
        assert_eq!(e["unmapped"]["recipient_role"], "bcc");
        assert_eq!(e["dst_endpoint"], json!({"hostname": "mx.giftshop.club", "ip": "203.0.113.9", "port": 25}));
        assert_eq!(endpoint("[127.0.0.1][127.0.0.1]"), Some(json!({"ip": "127.0.0.1"})));
        assert_eq!(endpoint("local www-data"), None);
        let mut deferred = row.clone();
        deferred.insert("status".into(), json!("deferred"));
        let d = email_activity(&deferred).unwrap();
        assert_eq!((d["activity_id"].as_u64(), d["status_id"].as_u64()), (Some(4), Some(0)));
        assert_ne!(d["metadata"]["uid"], json!(null));
    }
}
