//! Microsoft Exchange Server message tracking logs (`MSGTRK*.LOG`, CSV) →
//! `mail_deliveries`.
//!
//! A file starts with `#Software`, `#Version`, `#Log-type: Message Tracking
//! Log`, `#Date` and `#Fields: date-time,client-ip,…` (the column names; a
//! file without them is read with Exchange 2013–2019's 30 columns when a
//! row has exactly that many). Each row is one event of one message on one
//! server, with every recipient it concerns in `recipient-address` (`;`
//! separated) and their SMTP status, in the same order, in
//! `recipient-status`. Rows (one per recipient, `source_pointer`
//! `/recipient-address/N`):
//! - `RECEIVE` → `received` (the server accepted the message for these
//!   recipients; `delivery_kind = none`);
//! - `SEND`, `SENDEXTERNAL` → `sent`, `egress` (handed by SMTP to the host
//!   in `server-hostname`/`server-ip`: the next hop, inside the
//!   organisation or out of it);
//! - `DELIVER` → `delivered`, `local` (into a mailbox here);
//! - `FAIL`, `DELIVERFAIL` → `bounced`; `DEFER` → `deferred`; `DROP` →
//!   `discarded`.
//!
//! `EXPAND` (a distribution group, in `related-recipient-address`, expanded
//! to its members), `RESOLVE` (a proxy address resolved to the primary one)
//! and `REDIRECT` (a recipient redirected) give no row: they make the
//! related address the `orig_recipient` of the listed recipients' later
//! rows of the same message. The other events (`SUBMIT`, `NOTIFYMAPI`,
//! `AGENTINFO`, `TRANSFER`, `DSN`, the shadow-redundancy `HA*` events, …)
//! are skipped with a reason. `queue_id` is the `network-message-id`, the
//! id that stays the same on every server and in Exchange Online's message
//! trace (`MessageTraceId`); `sender` is `return-path` (SMTP MAIL FROM),
//! `header_from` is `sender-address`. No header roles are logged: every
//! recipient is `envelope` (`role_source = mta_envelope`).

use super::Expansions;
use crate::address::normalize;
use crate::collect::LineOutcome;
use crate::postfix::MailDelivery;
use crate::time::parse_rfc3339;
use crate::{Emit, Format, Line, Parser, Pos, SourceInfo};

/// Exchange 2013, 2016 and 2019's columns, for a file whose `#Fields`
/// header is not in what was collected.
const DEFAULT_FIELDS: [&str; 30] = [
    "date-time", "client-ip", "client-hostname", "server-ip", "server-hostname", "source-context", "connector-id", "source", "event-id",
    "internal-message-id", "message-id", "network-message-id", "recipient-address", "recipient-status", "total-bytes", "recipient-count",
    "related-recipient-address", "reference", "message-subject", "sender-address", "return-path", "message-info", "directionality",
    "tenant-id", "original-client-ip", "original-server-ip", "custom-data", "transport-traffic-type", "log-id", "schema-version",
];

/// The event ids message tracking writes.
const EVENTS: [&str; 42] = [
    "AGENTINFO", "BADMAIL", "CLIENTSUBMISSION", "DEFER", "DELIVER", "DELIVERFAIL", "DROP", "DSN", "DUPLICATEDELIVER", "DUPLICATEEXPAND",
    "DUPLICATEREDIRECT", "EXPAND", "FAIL", "HADISCARD", "HARECEIVE", "HAREDIRECT", "HAREDIRECTFAIL", "INITMESSAGECREATED", "LOAD",
    "MODERATIONEXPIRE", "MODERATORAPPROVE", "MODERATORREJECT", "MODERATORSALLNDR", "NOTIFYMAPI", "NOTIFYSHADOW", "POISONMESSAGE", "PROCESS",
    "PROCESSMEETINGMESSAGE", "RECEIVE", "REDIRECT", "RESOLVE", "RESUBMIT", "RESUBMITDEFER", "RESUBMITFAIL", "SEND", "SENDEXTERNAL", "SUBMIT",
    "SUBMITDEFER", "SUBMITFAIL", "SUPPRESSED", "THROTTLE", "TRANSFER",
];

/// Most recipients read from one row.
const MAX_RECIPIENTS: usize = 10_000;
/// Longest text kept from one field.
const MAX_TEXT: usize = 1024;

/// The columns of one CSV row (quotes and `""` as Exchange writes them).
fn columns(line: &str) -> Option<Vec<String>> {
    let mut r = csv::ReaderBuilder::new().has_headers(false).flexible(true).buffer_capacity(line.len() + 8).from_reader(line.as_bytes());
    let rec = r.records().next()?.ok()?;
    Some(rec.iter().map(str::to_string).collect())
}

/// A line of a message tracking log: one of its headers, or a row whose
/// first column is a time and whose ninth is an event id.
pub fn looks_like(line: &str) -> bool {
    let line = line.trim_start_matches('\u{feff}');
    if line.starts_with("#Log-type: Message Tracking Log") || line.starts_with("#Fields: date-time,") {
        return true;
    }
    if !line.as_bytes().first().is_some_and(u8::is_ascii_digit) || line.matches(',').count() < 20 {
        return false;
    }
    columns(line).is_some_and(|c| c.len() == DEFAULT_FIELDS.len() && parse_rfc3339(&c[0]).is_some() && EVENTS.contains(&c[8].as_str()))
}

/// How an event counts for a recipient: (status, delivery_kind).
fn delivery_event(event: &str) -> Option<(&'static str, &'static str)> {
    Some(match event {
        "RECEIVE" => ("received", "none"),
        "SEND" | "SENDEXTERNAL" => ("sent", "egress"),
        "DELIVER" => ("delivered", "local"),
        "FAIL" | "DELIVERFAIL" => ("bounced", "none"),
        "DEFER" => ("deferred", "none"),
        "DROP" => ("discarded", "none"),
        _ => return None,
    })
}

/// The enhanced status code in a recipient status (`250 2.1.5 Recipient
/// OK`, also as logged without the space: `250 2.1.5Recipient OK`).
fn dsn_of(status: &str) -> Option<String> {
    status.split(' ').take(3).find_map(|w| {
        let code: String = w.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
        let code = code.trim_end_matches('.');
        let p: Vec<&str> = code.split('.').collect();
        (p.len() == 3 && matches!(p[0], "2" | "4" | "5") && p.iter().all(|x| !x.is_empty() && x.len() <= 3)).then(|| code.to_string())
    })
}

fn bounded(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// `host` and `ip` as Postfix writes a peer: `host[ip]`.
fn peer(host: Option<&str>, ip: Option<&str>) -> Option<String> {
    match (host.filter(|h| !h.is_empty()), ip.filter(|i| !i.is_empty())) {
        (Some(h), Some(i)) => Some(bounded(&format!("{h}[{i}]"), 512)),
        (Some(h), None) => Some(bounded(h, 512)),
        (None, Some(i)) => Some(format!("[{}]", bounded(i, 64))),
        (None, None) => None,
    }
}

/// An address as logged → (normalized, raw if different, domain).
fn address(raw: &str) -> (String, Option<String>, String) {
    let t = raw.trim();
    if t == "<>" {
        return (String::new(), Some(t.to_string()), String::new());
    }
    match normalize(t) {
        Some(a) => (a.address, a.raw, a.domain),
        None => {
            let lower = t.to_lowercase();
            let domain = lower.rsplit_once('@').map(|(_, d)| d.to_string()).unwrap_or_default();
            (lower.clone(), (lower != t).then(|| t.to_string()), domain)
        }
    }
}

pub struct ExchangeTrackingParser {
    fields: Option<Vec<String>>,
    expansions: Expansions,
}

impl ExchangeTrackingParser {
    pub fn new(_info: &SourceInfo) -> Self {
        ExchangeTrackingParser { fields: None, expansions: Expansions::default() }
    }

    fn header(&mut self, line: &str) -> LineOutcome {
        if let Some(f) = line.strip_prefix("#Fields:") {
            self.fields = Some(f.trim().split(',').map(|c| c.trim().to_ascii_lowercase()).collect());
        }
        LineOutcome::Skipped("exchange: log header (#Software, #Version, #Log-type, #Date, #Fields)")
    }

    fn row(&mut self, line: &Line<'_>, text: &str, out: &mut dyn Emit) {
        let Some(cols) = columns(text) else {
            return out.reject(&line.pos, 1, "exchange: not a CSV row".into(), line.bytes, None);
        };
        let names: Vec<&str> = match &self.fields {
            Some(f) => f.iter().map(String::as_str).collect(),
            None => DEFAULT_FIELDS.to_vec(),
        };
        if cols.len() != names.len() {
            let why = match self.fields {
                Some(_) => format!("exchange: {} columns where #Fields names {}", cols.len(), names.len()),
                None => format!("exchange: no #Fields header and {} columns (Exchange 2013-2019 write {}); ingest the file with its header", cols.len(), names.len()),
            };
            return out.reject(&line.pos, 1, why, line.bytes, None);
        }
        let get = |k: &str| names.iter().position(|n| *n == k).map(|i| cols[i].as_str()).filter(|v| !v.is_empty());
        let Some(ts) = get("date-time").and_then(parse_rfc3339) else {
            return out.reject(&line.pos, 1, "exchange: date-time is not an ISO 8601 time".into(), line.bytes, None);
        };
        let event = get("event-id").unwrap_or("").to_ascii_uppercase();
        let message = get("network-message-id").or_else(|| get("internal-message-id")).unwrap_or("").to_string();
        let recipients: Vec<&str> = get("recipient-address").map(|r| r.split(';').map(str::trim).filter(|a| !a.is_empty()).take(MAX_RECIPIENTS).collect()).unwrap_or_default();
        if matches!(event.as_str(), "EXPAND" | "RESOLVE" | "REDIRECT") {
            if let Some(group) = get("related-recipient-address").and_then(|r| r.split(';').next()).map(|g| address(g).0).filter(|g| !g.is_empty()) {
                for r in &recipients {
                    self.expansions.note(&message, address(r).0, group.clone());
                }
            }
            return out.account(&line.pos, 1, LineOutcome::Parsed);
        }
        let Some((status, kind)) = delivery_event(&event).filter(|_| !recipients.is_empty()) else {
            return out.account(&line.pos, 1, LineOutcome::Skipped("exchange: event without a delivery (SUBMIT, NOTIFYMAPI, AGENTINFO, TRANSFER, DSN, HA*, ...)"));
        };
        let statuses: Vec<&str> = get("recipient-status").map(|s| s.split(';').collect()).unwrap_or_default();
        let sending = kind == "egress";
        // The logging server is the SMTP client of a SEND; elsewhere the server.
        let host = if sending { get("client-hostname") } else { get("server-hostname") };
        let (sender, sender_raw, _) = get("return-path").map(address).unwrap_or_default();
        for (i, r) in recipients.iter().enumerate() {
            let (recipient, recipient_raw, recipient_domain) = address(r);
            if recipient.is_empty() {
                continue;
            }
            let response = statuses.get(i).filter(|_| statuses.len() == recipients.len()).map(|s| s.trim()).filter(|s| !s.is_empty());
            out.delivery(MailDelivery {
                ts,
                pos: Pos { pointer: Some(format!("/recipient-address/{i}")), ..line.pos.clone() },
                host: host.map(|h| bounded(h, 255)),
                queue_id: Some(bounded(&message, 128)).filter(|m| !m.is_empty()),
                message_id: get("message-id").map(|m| bounded(m.trim().trim_start_matches('<').trim_end_matches('>'), 998)),
                sender: get("return-path").map(|_| sender.clone()),
                sender_raw: sender_raw.clone(),
                header_from: get("sender-address").map(|a| address(a).0),
                subject: get("message-subject").map(|s| bounded(s, 998)),
                orig_recipient: self.expansions.get(&message, &recipient).filter(|g| **g != recipient).cloned(),
                recipient,
                recipient_raw,
                recipient_domain,
                recipient_role: "envelope",
                role_source: "mta_envelope",
                status: status.to_string(),
                dsn: response.and_then(dsn_of),
                relay: if sending { peer(get("server-hostname"), get("server-ip")) } else { None },
                size_bytes: get("total-bytes").and_then(|b| b.parse().ok()),
                nrcpt: get("recipient-count").and_then(|b| b.parse().ok()),
                client: if sending { None } else { peer(get("client-hostname"), get("client-ip")) },
                response: response.map(|s| bounded(s, MAX_TEXT)),
                delivery_kind: kind,
                ..Default::default()
            });
        }
        out.account(&line.pos, 1, LineOutcome::Parsed);
    }
}

impl Parser for ExchangeTrackingParser {
    fn format(&self) -> Format {
        Format::ExchangeTracking
    }

    fn line(&mut self, line: &Line<'_>, out: &mut dyn Emit) {
        let text = String::from_utf8_lossy(line.bytes);
        let text = text.trim_start_matches('\u{feff}').trim_end_matches('\r');
        if text.trim().is_empty() {
            return out.account(&line.pos, 1, LineOutcome::Skipped("blank line"));
        }
        if text.starts_with('#') {
            let o = self.header(text);
            return out.account(&line.pos, 1, o);
        }
        self.row(line, text, out);
    }

    fn finish(&mut self, _out: &mut dyn Emit) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rows::parse;
    use mcpf_schema::Table;

    #[test]
    fn a_header_names_the_columns_and_expansion_names_the_group() {
        let log = "\u{feff}#Software: Microsoft Exchange Server\n#Version: 15.02.1118.007\n#Log-type: Message Tracking Log\n#Date: 2026-03-01T10:00:00.000Z\n#Fields: date-time,event-id,network-message-id,message-id,recipient-address,recipient-status,related-recipient-address,return-path,sender-address,message-subject,client-hostname,server-hostname,server-ip\n\
2026-03-01T10:00:01.000Z,EXPAND,n1,<m1@x.example>,a@corp.example;b@corp.example,,team@corp.example,s@corp.example,s@corp.example,Hi,ex1,ex1,\n\
2026-03-01T10:00:02.000Z,SENDEXTERNAL,n1,<m1@x.example>,a@corp.example;c@evil.example,250 2.1.5 Recipient OK;250 2.1.5Recipient OK,,s@corp.example,s@corp.example,Hi,ex1,mx.evil.example,192.0.2.7\n\
2026-03-01T10:00:03.000Z,SUBMIT,n1,<m1@x.example>,,,,,,,,ex1,\n";
        let (stats, rows) = parse(Format::ExchangeTracking, "/MSGTRK2026030110-1.LOG", log, None);
        assert_eq!((stats.parsed, stats.skipped, stats.rejected), (2, 6, 0));
        let d = rows.of(Table::MailDeliveries);
        assert_eq!(d.len(), 2);
        assert_eq!((d[0]["recipient"].as_str(), d[0]["orig_recipient"].as_str(), d[0]["status"].as_str()), ("a@corp.example", "team@corp.example", "sent"));
        assert_eq!((d[1]["recipient"].as_str(), d[1]["dsn"].as_str(), d[1]["relay"].as_str()), ("c@evil.example", "2.1.5", "mx.evil.example[192.0.2.7]"));
        assert_eq!((d[1]["queue_id"].as_str(), d[1]["message_id"].as_str(), d[1]["source_pointer"].as_str()), ("n1", "m1@x.example", "/recipient-address/1"));
        // A row that does not fit its header is rejected with why.
        let (stats, _) = parse(Format::ExchangeTracking, "/x.LOG", "#Fields: date-time,event-id\n2026-03-01T10:00:01.000Z,SEND,extra\n", None);
        assert_eq!(stats.rejected, 1);
    }
}
