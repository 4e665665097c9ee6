//! Zeek `smtp.log` → `mail_deliveries`: what crossed the wire, envelope and
//! headers side by side.
//!
//! Zeek logs one record per SMTP transaction: the envelope (`mailfrom`,
//! `rcptto`) and the headers it read in DATA (`from`, `to`, `cc`,
//! `msg_id`, `subject`). One row per `rcptto` address: an address the `to`
//! or `cc` header names takes that role (`role_source = header`); one no
//! header names, in a transaction whose headers were seen (a `from`, `to`
//! or `cc`), is a blind copy (`bcc`, `role_source =
//! envelope_minus_headers`); without headers (a one-sided capture, an
//! aborted DATA) the role is `envelope` (`mta_envelope`).
//!
//! Both writers: ASCII/TSV (`#separator`, `#set_separator`, `#empty_field`,
//! `#unset_field`, `#fields` read from the header, so any column order and
//! extra columns work; `-` is unset, `(empty)` an empty set) and JSON (one
//! object per line, sets as arrays; `ts` as epoch seconds or ISO 8601; a
//! Splunk export's `result._raw` is unwrapped). The transaction's
//! `last_reply` gives the status (2xx sent, 4xx deferred, 5xx rejected).
//! `ts` masked by Zeek's test canonifier (`XXXXXXXXXX.XXXXXX`) takes the
//! file's time. `queue_id` is the connection and transaction
//! (`uid/trans_depth`), so messages without a Message-ID stay apart.

use serde_json::{Map, Value};

use crate::address::{normalize, parse_list};
use crate::collect::LineOutcome;
use crate::postfix::MailDelivery;
use crate::time::parse_rfc3339;
use crate::{Emit, Format, Line, Parser, Pos, SourceInfo};

/// Most recipients read from one transaction.
const MAX_RECIPIENTS: usize = 10_000;
/// Most columns a `#fields` header may name.
const MAX_FIELDS: usize = 512;

/// A Zeek smtp.log line: its ASCII header, or a JSON record with the SMTP
/// fields.
pub fn looks_like(line: &str) -> bool {
    let t = line.trim_start();
    if t.starts_with("#path\tsmtp") || (t.starts_with("#fields\t") && t.contains("\tmailfrom\t") && t.contains("\trcptto")) {
        return true;
    }
    t.starts_with('{') && t.contains("\"uid\"") && t.contains("\"id.orig_h\"") && (t.contains("\"mailfrom\"") || t.contains("\"helo\"") || t.contains("\\\"helo\\\""))
}

pub struct ZeekSmtpParser {
    separator: String,
    set_separator: String,
    empty_field: String,
    unset_field: String,
    fields: Vec<String>,
    mtime_micros: i64,
}

impl ZeekSmtpParser {
    pub fn new(info: &SourceInfo) -> Self {
        ZeekSmtpParser {
            separator: "\t".into(),
            set_separator: ",".into(),
            empty_field: "(empty)".into(),
            unset_field: "-".into(),
            fields: Vec::new(),
            mtime_micros: info.mtime_unix.unwrap_or(0) * 1_000_000,
        }
    }

    /// `#separator \x09` and the other header lines.
    fn header(&mut self, line: &str) -> LineOutcome {
        let unescape = |v: &str| if let Some(h) = v.strip_prefix("\\x") { u8::from_str_radix(h, 16).map(|b| (b as char).to_string()).unwrap_or_else(|_| v.to_string()) } else { v.to_string() };
        if let Some(v) = line.strip_prefix("#separator ") {
            self.separator = unescape(v.trim());
            return LineOutcome::Parsed;
        }
        let (key, value) = line.split_once(self.separator.as_str()).unwrap_or((line, ""));
        match key {
            "#set_separator" => self.set_separator = unescape(value),
            "#empty_field" => self.empty_field = value.to_string(),
            "#unset_field" => self.unset_field = value.to_string(),
            "#fields" => self.fields = value.split(self.separator.as_str()).take(MAX_FIELDS).map(str::to_string).collect(),
            "#path" if value != "smtp" => return LineOutcome::Skipped("zeek: header of a log other than smtp.log"),
            "#path" | "#types" | "#open" | "#close" => {}
            _ => return LineOutcome::Skipped("zeek: comment line"),
        }
        LineOutcome::Parsed
    }

    /// A TSV record as the JSON writer would write it.
    fn tsv_record(&self, line: &str) -> Result<Map<String, Value>, String> {
        if self.fields.is_empty() {
            return Err("zeek: a record before any #fields header".into());
        }
        let cells: Vec<&str> = line.split(self.separator.as_str()).collect();
        if cells.len() != self.fields.len() {
            return Err(format!("zeek: {} cells, the #fields header names {}", cells.len(), self.fields.len()));
        }
        let mut m = Map::new();
        for (name, cell) in self.fields.iter().zip(cells) {
            let v = if cell == self.unset_field {
                continue;
            } else if matches!(name.as_str(), "rcptto" | "to" | "cc" | "path" | "fuids") {
                if cell == self.empty_field {
                    Value::Array(Vec::new())
                } else {
                    Value::Array(cell.split(self.set_separator.as_str()).take(MAX_RECIPIENTS).map(|x| Value::String(x.to_string())).collect())
                }
            } else {
                Value::String(cell.to_string())
            };
            m.insert(name.clone(), v);
        }
        Ok(m)
    }
}

fn s<'a>(m: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    m.get(k).and_then(Value::as_str).filter(|x| !x.is_empty())
}

fn num(m: &Map<String, Value>, k: &str) -> Option<String> {
    match m.get(k)? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(x) if !x.is_empty() => Some(x.clone()),
        _ => None,
    }
}

/// The addresses of a header set (each element may hold a list).
fn addresses(v: Option<&Value>) -> Vec<String> {
    let mut out = Vec::new();
    for e in v.and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default().iter().take(MAX_RECIPIENTS) {
        if let Some(text) = e.as_str() {
            match parse_list(text).filter(|l| !l.is_empty()) {
                Some(l) => out.extend(l.into_iter().map(|a| a.address)),
                None => out.push(text.trim().to_lowercase()),
            }
        }
    }
    out
}

/// `ts`: epoch seconds (number or string) or ISO 8601.
fn ts_of(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_f64().filter(|f| f.is_finite() && f.abs() < 1e11).map(|f| (f * 1e6).round() as i64),
        Value::String(x) => x.parse::<f64>().ok().filter(|f| f.is_finite() && f.abs() < 1e11).map(|f| (f * 1e6).round() as i64).or_else(|| parse_rfc3339(x)),
        _ => None,
    }
}

/// The rows of one transaction; Err(reason) for a record that is not one.
fn transaction(m: &Map<String, Value>, pos: &Pos, json: bool, fallback_ts: i64, out: &mut dyn Emit) -> LineOutcome {
    let rcpts: Vec<(usize, &str)> = m.get("rcptto").and_then(Value::as_array).map(|a| a.iter().take(MAX_RECIPIENTS).enumerate().filter_map(|(i, x)| x.as_str().map(|t| (i, t))).collect()).unwrap_or_default();
    if rcpts.is_empty() {
        return LineOutcome::Skipped("zeek: SMTP transaction without envelope recipients (no rcptto)");
    }
    let to = addresses(m.get("to"));
    let cc = addresses(m.get("cc"));
    let headers_seen = m.contains_key("from") || !to.is_empty() || !cc.is_empty();
    let reply = s(m, "last_reply");
    let status = match reply.and_then(|r| r.bytes().next()) {
        Some(b'2') => "sent",
        Some(b'4') => "deferred",
        Some(b'5') => "rejected",
        _ => "unknown",
    };
    let (sender, sender_raw) = match s(m, "mailfrom").map(|f| (f, normalize(f))) {
        Some((_, Some(a))) => (Some(a.address), a.raw),
        Some((f, None)) => (Some(f.trim_matches(['<', '>']).to_lowercase()), Some(f.to_string())),
        None => (None, None),
    };
    let queue_id = s(m, "uid").map(|u| format!("{u}/{}", num(m, "trans_depth").unwrap_or_else(|| "1".into())));
    let relay = s(m, "id.resp_h").map(|h| format!("{h}:{}", num(m, "id.resp_p").unwrap_or_default()));
    let client = s(m, "id.orig_h").map(|h| format!("{h}:{}", num(m, "id.orig_p").unwrap_or_default()));
    let ts = ts_of(m.get("ts")).unwrap_or(fallback_ts);
    for (i, raw) in rcpts {
        let (recipient, recipient_raw, domain) = match normalize(raw) {
            Some(a) => (a.address, a.raw, a.domain),
            None => (raw.trim().to_lowercase(), Some(raw.to_string()), String::new()),
        };
        let (role, role_source) = if to.contains(&recipient) {
            ("to", "header")
        } else if cc.contains(&recipient) {
            ("cc", "header")
        } else if headers_seen {
            ("bcc", "envelope_minus_headers")
        } else {
            ("envelope", "mta_envelope")
        };
        let pointer = json.then(|| format!("/rcptto/{i}"));
        out.delivery(MailDelivery {
            ts,
            pos: Pos { pointer, ..pos.clone() },
            host: None,
            queue_id: queue_id.clone(),
            message_id: s(m, "msg_id").map(|x| x.trim().trim_matches(['<', '>']).chars().take(998).collect()),
            sender: sender.clone(),
            sender_raw: sender_raw.clone(),
            header_from: s(m, "from").map(str::to_string),
            subject: s(m, "subject").map(|x| x.chars().take(998).collect()),
            recipient,
            recipient_raw,
            recipient_domain: domain,
            recipient_role: role,
            role_source,
            status: status.to_string(),
            dsn: reply.and_then(|r| r.split(' ').nth(1)).filter(|c| c.split('.').count() == 3 && c.bytes().all(|b| b.is_ascii_digit() || b == b'.')).map(str::to_string),
            relay: relay.clone(),
            client: client.clone(),
            response: reply.map(|r| r.chars().take(1024).collect()),
            nrcpt: m.get("rcptto").and_then(Value::as_array).map(|a| a.len() as i64),
            // Seen on the wire: it left the sending host for the next one.
            delivery_kind: "egress",
            ..Default::default()
        });
    }
    LineOutcome::Parsed
}

impl Parser for ZeekSmtpParser {
    fn format(&self) -> Format {
        Format::ZeekSmtp
    }

    fn line(&mut self, line: &Line<'_>, out: &mut dyn Emit) {
        let text = String::from_utf8_lossy(line.bytes);
        let t = text.trim_end_matches('\r');
        if t.trim().is_empty() {
            return out.account(&line.pos, 1, LineOutcome::Skipped("blank line"));
        }
        if t.starts_with('#') {
            let o = self.header(t);
            return out.account(&line.pos, 1, o);
        }
        let outcome = if t.trim_start().starts_with('{') {
            match serde_json::from_str::<Value>(t) {
                Ok(Value::Object(mut m)) => {
                    // A Splunk export wraps the record as the string `result._raw`.
                    if let Some(raw) = m.get("result").and_then(|r| r.get("_raw")).and_then(Value::as_str) {
                        match serde_json::from_str::<Value>(raw) {
                            Ok(Value::Object(inner)) => m = inner,
                            _ => return out.reject(&line.pos, 1, "zeek: result._raw is not a JSON record".into(), line.bytes, None),
                        }
                    }
                    transaction(&m, &line.pos, true, self.mtime_micros, out)
                }
                Ok(_) => return out.reject(&line.pos, 1, "zeek: JSON that is not an object".into(), line.bytes, None),
                Err(e) => return out.reject(&line.pos, 1, format!("zeek: invalid JSON ({e})"), line.bytes, None),
            }
        } else {
            match self.tsv_record(t) {
                Ok(m) => transaction(&m, &line.pos, false, self.mtime_micros, out),
                Err(why) => return out.reject(&line.pos, 1, why, line.bytes, None),
            }
        };
        out.account(&line.pos, 1, outcome);
    }

    fn finish(&mut self, _out: &mut dyn Emit) {}
}

#[cfg(test)]
mod tests {
    use mcpf_schema::Table;

    use crate::test_rows::parse;
    use crate::Format;

    #[test]
    fn envelope_minus_headers_is_a_blind_copy_and_a_one_sided_capture_is_not() {
        let tsv = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tsmtp\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\ttrans_depth\tmailfrom\trcptto\tfrom\tto\tcc\tmsg_id\tlast_reply\n\
1772359260.5\tC1\t10.0.0.5\t40000\t192.0.2.9\t25\t1\tagent@corp.example\tbob@partner.example,drop@exfil.example\tagent@corp.example\tBob <bob@partner.example>\t-\t<m1@corp.example>\t250 2.0.0 Ok: queued\n\
1772359261.5\tC2\t10.0.0.5\t40001\t192.0.2.9\t25\t1\tagent@corp.example\tcarol@partner.example\t-\t-\t-\t-\t250 Ok\n";
        let (stats, rows) = parse(Format::ZeekSmtp, "/var/log/zeek/smtp.log", tsv, None);
        assert_eq!((stats.parsed, stats.rejected), (8, 0), "{stats:?}");
        let d = rows.of(Table::MailDeliveries);
        let got: Vec<(&str, &str, &str)> = d.iter().map(|r| (r["recipient"].as_str(), r["recipient_role"].as_str(), r["role_source"].as_str())).collect();
        assert_eq!(got, vec![("bob@partner.example", "to", "header"), ("drop@exfil.example", "bcc", "envelope_minus_headers"), ("carol@partner.example", "envelope", "mta_envelope")]);
        assert_eq!((d[0]["ts"].as_str(), d[0]["queue_id"].as_str(), d[0]["message_id"].as_str(), d[0]["dsn"].as_str()), ("1772359260500000", "C1/1", "m1@corp.example", "2.0.0"));
        // A record with a cell too many is rejected, not shifted.
        let (stats, _) = parse(Format::ZeekSmtp, "/smtp.log", &format!("{}x\textra\n", tsv.lines().take(7).collect::<Vec<_>>().join("\n") + "\n"), None);
        assert_eq!(stats.rejected, 1);
    }
}
