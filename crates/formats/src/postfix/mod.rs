//! Postfix logs → `mail_deliveries`.
//!
//! Accepts what real servers write: classic syslog (`Jun  3 10:40:57 host
//! postfix/smtp[9710]: …`, year from `--year` or the file's time, with Dec →
//! Jan rollover), RFC 3339 stamps (rsyslog, `maillog_file`), multi-instance and
//! service names (`postfix-out/smtp`, `postfix/submission/smtpd`), short and
//! long queue ids, and non-Postfix programs in a shared file (skipped).
//!
//! A message is correlated by queue id across lines that may be hours apart
//! and interleaved with thousands of others: `client=` (smtpd/pickup),
//! `message-id=` (cleanup), `from=, size=, nrcpt=` (qmgr) are remembered, and
//! every `to=… status=…` line of a delivery agent (smtp, lmtp, local, virtual,
//! pipe, error, discard) becomes one row with that context. `removed` frees
//! the state; the state table is bounded (oldest evicted first).
//! SMTP-level rejects (`NOQUEUE: reject: RCPT …; from=<> to=<>`) become rows
//! with status `rejected`: attempted egress the MTA refused is evidence too.

mod events;
pub mod queue;

use mcpf_schema::Table;

use crate::address::normalize;
use crate::collect::{LineOutcome, NamedRow, Val};
use crate::time::{from_parts_in, month_from_abbrev, parse_rfc3339, YearTracker, Zone};
use crate::{Emit, Format, Line, Parser, Pos, SourceInfo};

use queue::{Outcome, Queues};
/// Longest response text kept per row.
const MAX_RESPONSE: usize = 1024;

/// One delivery attempt of one recipient.
#[derive(Debug, Clone, Default)]
pub struct MailDelivery {
    pub ts: i64,
    pub pos: Pos,
    pub host: Option<String>,
    pub queue_id: Option<String>,
    pub message_id: Option<String>,
    pub sender: Option<String>,
    pub sender_raw: Option<String>,
    pub header_from: Option<String>,
    pub subject: Option<String>,
    pub recipient: String,
    pub recipient_raw: Option<String>,
    pub orig_recipient: Option<String>,
    pub recipient_domain: String,
    pub recipient_role: &'static str,
    pub role_source: &'static str,
    pub status: String,
    pub dsn: Option<String>,
    pub relay: Option<String>,
    pub delay_s: Option<f64>,
    pub size_bytes: Option<i64>,
    pub nrcpt: Option<i64>,
    pub client: Option<String>,
    pub response: Option<String>,
    pub notification_of: Option<String>,
    pub related_lines: Option<String>,
    /// egress, filter_hop, local or none (see `mail_deliveries.delivery_kind`).
    pub delivery_kind: &'static str,
    pub next_queue_id: Option<String>,
}

impl MailDelivery {
    /// The row of `mail_deliveries` (provenance is added by the collector).
    pub fn row<'a>(&'a self, date: &'a str) -> NamedRow<'a> {
        let mut r = NamedRow::new(Table::MailDeliveries);
        r.set("ts", Val::Ts(Some(self.ts)))
            .set("date", Val::Str(Some(date)))
            .set("host", Val::Str(self.host.as_deref()))
            .set("queue_id", Val::Str(self.queue_id.as_deref()))
            .set("message_id", Val::Str(self.message_id.as_deref()))
            .set("sender", Val::Str(self.sender.as_deref()))
            .set("sender_raw", Val::Str(self.sender_raw.as_deref()))
            .set("header_from", Val::Str(self.header_from.as_deref()))
            .set("subject", Val::Str(self.subject.as_deref()))
            .set("recipient", Val::Str(Some(&self.recipient)))
            .set("recipient_raw", Val::Str(self.recipient_raw.as_deref()))
            .set("orig_recipient", Val::Str(self.orig_recipient.as_deref()))
            .set("recipient_domain", Val::Str(Some(&self.recipient_domain)))
            .set("recipient_role", Val::Str(Some(self.recipient_role)))
            .set("role_source", Val::Str(Some(self.role_source)))
            .set("status", Val::Str(Some(&self.status)))
            .set("dsn", Val::Str(self.dsn.as_deref()))
            .set("relay", Val::Str(self.relay.as_deref()))
            .set("delay_s", Val::Float(self.delay_s))
            .set("size_bytes", Val::Int(self.size_bytes))
            .set("nrcpt", Val::Int(self.nrcpt))
            .set("client", Val::Str(self.client.as_deref()))
            .set("response", Val::Str(self.response.as_deref()))
            .set("notification_of", Val::Str(self.notification_of.as_deref()))
            .set("related_lines", Val::Str(self.related_lines.as_deref()))
            .set("delivery_kind", Val::Str(Some(self.delivery_kind)))
            .set("next_queue_id", Val::Str(self.next_queue_id.as_deref()));
        r
    }
}

/// The syslog frame of a line.
#[derive(Debug, PartialEq)]
pub struct SyslogLine<'a> {
    pub stamp: Stamp<'a>,
    pub host: &'a str,
    pub program: &'a str,
    pub pid: Option<&'a str>,
    pub message: &'a str,
}

#[derive(Debug, PartialEq)]
pub enum Stamp<'a> {
    /// `Jun  3 10:40:57[.ffffff]`: month, day, h, m, s, micros.
    Classic(u32, u32, u32, u32, u32, u32),
    Rfc3339(&'a str),
}

fn num(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 2 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Split a syslog line into stamp, host, program, pid and message.
pub fn split_syslog(line: &str) -> Option<SyslogLine<'_>> {
    let (stamp, rest) = if line.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        let (t, rest) = line.split_once(' ')?;
        if t.len() < 20 || t.as_bytes().get(10) != Some(&b'T') {
            return None;
        }
        (Stamp::Rfc3339(t), rest)
    } else {
        let month = month_from_abbrev(line.get(..3)?)?;
        let rest = line.get(3..)?.strip_prefix(' ')?.trim_start_matches(' ');
        let (day, rest) = rest.split_once(' ')?;
        let day = num(day)?;
        let (time, rest) = rest.split_once(' ')?;
        let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
        let mut it = hms.split(':');
        let (h, m, s) = (num(it.next()?)?, num(it.next()?)?, num(it.next()?)?);
        if it.next().is_some() || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let micros = if frac.is_empty() { 0 } else { format!("{:0<6}", &frac[..frac.len().min(6)]).parse().ok()? };
        (Stamp::Classic(month, day, h, m, s, micros), rest)
    };
    let (host, rest) = rest.split_once(' ')?;
    let (tag, message) = rest.split_once(": ").or_else(|| rest.strip_suffix(':').map(|t| (t, "")))?;
    if tag.is_empty() || tag.contains(' ') {
        return None;
    }
    let (program, pid) = match tag.split_once('[') {
        Some((p, pid)) => (p, Some(pid.strip_suffix(']')?)),
        None => (tag, None),
    };
    Some(SyslogLine { stamp, host, program, pid, message })
}

/// Postfix writes under its `syslog_name`: `postfix`, `postfix-out`, `postfix/submission`, …
fn is_postfix_program(program: &str) -> bool {
    program.split('/').next().is_some_and(|first| first.starts_with("postfix"))
}

pub fn looks_like(line: &str) -> bool {
    split_syslog(line).is_some_and(|s| is_postfix_program(s.program))
}

fn is_short_qid(s: &str) -> bool {
    // Hex; real logs show 5 up to 13+ characters.
    (5..=16).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
}

fn is_long_qid(s: &str) -> bool {
    // enable_long_queue_ids: base-52 without vowels, time part + inode part.
    (12..=20).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() && !b"AEIOUaeiou".contains(&b))
        && s.bytes().any(|b| b.is_ascii_lowercase() || b.is_ascii_uppercase())
}

/// `QUEUEID: rest` → (queue id, rest).
pub fn split_queue_id(message: &str) -> Option<(&str, &str)> {
    let (id, rest) = message.split_once(": ")?;
    if id == "NOQUEUE" || is_short_qid(id) || is_long_qid(id) {
        Some((id, rest))
    } else {
        None
    }
}

/// `key=value, key=value, ..., status=word (text)` → values by key, and the
/// parenthesized text after the status.
pub fn key_values(s: &str) -> (Vec<(&str, &str)>, Option<&str>) {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq].trim();
        if key.is_empty() || key.contains(' ') {
            break;
        }
        let after = &rest[eq + 1..];
        // Values in <…> may contain ", " (quoted local parts).
        let end = if after.starts_with('<') {
            after.find('>').map(|i| i + 1).unwrap_or(after.len())
        } else if key == "status" {
            after.find(' ').unwrap_or(after.len())
        } else {
            after.find(", ").unwrap_or(after.len())
        };
        let value = &after[..end];
        out.push((key, value));
        let tail = &after[end..];
        if key == "status" {
            let text = tail.trim();
            let text = text.strip_prefix('(').and_then(|t| t.strip_suffix(')')).unwrap_or(text);
            return (out, if text.is_empty() { None } else { Some(text) });
        }
        rest = tail.strip_prefix(',').unwrap_or(tail).trim_start();
    }
    (out, None)
}

fn get<'a>(kv: &[(&'a str, &'a str)], key: &str) -> Option<&'a str> {
    kv.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

fn strip_angle(s: &str) -> &str {
    s.strip_prefix('<').and_then(|x| x.strip_suffix('>')).unwrap_or(s)
}

fn bounded(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Parser state for one file (and, carried, for the files after it in its
/// rotated set).
pub struct PostfixParser {
    years: YearTracker,
    /// Zone of year-less stamps (`--tz`; UTC when not given).
    zone: Zone,
    /// The previous stamp's instant: orders the hour repeated at a DST change.
    last_ts: Option<i64>,
    queues: Queues,
    file: std::sync::Arc<str>,
    /// More files of the same rotated set follow in this run: messages still
    /// open at the end are handed on, not written as still queued.
    continues: bool,
}

/// Normalize an envelope address: (normalized, raw if different, domain).
pub(crate) fn envelope(raw: &str) -> (String, Option<String>, String) {
    let inner = strip_angle(raw);
    if inner.is_empty() {
        return (String::new(), if raw.is_empty() { None } else { Some(raw.to_string()) }, String::new());
    }
    match normalize(inner) {
        Some(a) => {
            let raw_kept = if a.address == inner { None } else { Some(inner.to_string()) };
            (a.address, raw_kept, a.domain)
        }
        None => {
            let lower = inner.to_lowercase();
            let domain = lower.rsplit_once('@').map(|(_, d)| d.to_string()).unwrap_or_default();
            let raw_kept = if lower == inner { None } else { Some(inner.to_string()) };
            (lower, raw_kept, domain)
        }
    }
}

/// Where a delivery went: `egress` (another host, or a process on this
/// machine that does not re-queue it here: it left this MTA), `filter_hop`
/// (a content filter on this machine that re-injects it, e.g. amavis on
/// 127.0.0.1:10024 answering "queued as ID"), `local` (a mailbox here),
/// `none` (handed nowhere).
pub(crate) fn delivery_kind(daemon: &str, relay: Option<&str>, response: Option<&str>) -> &'static str {
    let relay = relay.unwrap_or("none");
    let host = relay.split(['[', ':']).next().unwrap_or(relay);
    let addr = relay.split_once('[').and_then(|(_, r)| r.split(']').next()).unwrap_or(host);
    let loopback = addr.starts_with("127.") || addr == "::1" || addr.eq_ignore_ascii_case("ipv6:::1") || host.eq_ignore_ascii_case("localhost");
    let requeued = response.is_some_and(|r| r.contains("queued as "));
    if matches!(daemon, "local" | "virtual" | "pipe") || relay == "local" || relay == "virtual" {
        return "local";
    }
    if relay == "none" || daemon == "error" || daemon == "discard" || daemon == "retry" {
        return "none";
    }
    if loopback {
        // A hop on this machine that answers "queued as ID" re-queued the
        // message here (amavis, a second instance): a filter. LMTP on
        // loopback stores into a mailbox (dovecot on 127.0.0.1:24). Anything
        // else took the message away from this MTA (a local smarthost or
        // tunnel): as far as this log can tell, it left.
        return if requeued {
            "filter_hop"
        } else if daemon == "lmtp" {
            "local"
        } else {
            "egress"
        };
    }
    if relay.starts_with("private/") || relay.starts_with("public/") || relay.contains("dovecot") {
        return "local";
    }
    "egress"
}

/// The queue id a filter re-injected the message under (`queued as ID`).
fn queued_as(response: Option<&str>) -> Option<String> {
    let r = response?;
    let id = r.rsplit_once("queued as ")?.1.trim().trim_end_matches([')', '.']);
    (is_short_qid(id) || is_long_qid(id)).then(|| id.to_string())
}

impl PostfixParser {
    pub fn new(info: &SourceInfo) -> Self {
        PostfixParser {
            years: YearTracker::new(info.year_hint, info.mtime_unix).with_zone(info.zone),
            zone: info.zone.unwrap_or_default(),
            last_ts: None,
            queues: Queues::default(),
            file: info.path.clone(),
            continues: info.continues,
        }
    }

    fn ts(&mut self, stamp: &Stamp<'_>) -> Option<i64> {
        let ts = match *stamp {
            Stamp::Rfc3339(s) => parse_rfc3339(s),
            Stamp::Classic(mo, d, h, m, s, us) => {
                let y = self.years.year_for_stamp(mo, d, h * 3600 + m * 60 + s);
                from_parts_in(&self.zone, self.last_ts, y, mo, d, h, m, s, us)
            }
        };
        if ts.is_some() {
            self.last_ts = ts;
        }
        ts
    }

    /// Build a delivery row from a `to=…` record and the queue's state.
    #[allow(clippy::too_many_arguments)]
    fn delivery(&mut self, line: &Line<'_>, ts: i64, host: &str, daemon: &str, qid: Option<&str>, kv: &[(&str, &str)], status: &str, response: Option<&str>, out: &mut dyn Emit) {
        let Some(to) = get(kv, "to") else { return };
        let (recipient, recipient_raw, recipient_domain) = envelope(to);
        if recipient.is_empty() {
            // `to=<>`: not a recipient; the event is kept, not a delivery.
            let ev = events::MailEvent { event: "null_recipient", reason: response.unwrap_or(status), ..events::MailEvent::from_kv(host, qid, kv) };
            return ev.emit(ts, &line.pos, out);
        }
        let orig = get(kv, "orig_to").map(|o| envelope(o).0);
        let st = qid.and_then(|q| self.queues.map.get(q)).cloned().unwrap_or_default();
        let (sender, sender_raw) = match get(kv, "from") {
            Some(f) => {
                let (s, r, _) = envelope(f);
                (Some(s), r)
            }
            None => (st.sender.clone(), st.sender_raw.clone()),
        };
        let relay = get(kv, "relay");
        let kind = delivery_kind(daemon, relay, response);
        let next = if kind == "filter_hop" { queued_as(response) } else { None };
        if let Some(q) = qid.filter(|q| *q != "NOQUEUE") {
            if let Some(o) = Outcome::of(status, kind) {
                self.queues.state(q).note_outcome(&recipient, o);
            }
            if let Some(n) = &next {
                self.queues.state(q).filtered_to = Some(n.clone());
                self.queues.state(n).filtered_from = Some(q.to_string());
            }
        }
        let related = if st.lines.is_empty() { None } else { Some(st.lines.iter().map(u64::to_string).collect::<Vec<_>>().join(",")) };
        let d = MailDelivery {
            ts,
            pos: line.pos.clone(),
            host: Some(host.to_string()),
            queue_id: qid.filter(|q| *q != "NOQUEUE").map(str::to_string),
            message_id: st.message_id,
            sender,
            sender_raw,
            header_from: st.header_from,
            subject: st.subject,
            recipient,
            recipient_raw,
            orig_recipient: orig,
            recipient_domain,
            recipient_role: "envelope",
            role_source: "mta_envelope",
            status: status.to_string(),
            dsn: get(kv, "dsn").map(str::to_string),
            relay: relay.map(str::to_string),
            delay_s: get(kv, "delay").and_then(|d| d.parse().ok()),
            size_bytes: st.size,
            nrcpt: st.nrcpt,
            client: st.client,
            response: response.map(|r| bounded(r, MAX_RESPONSE)),
            notification_of: st.notification_of,
            related_lines: related,
            delivery_kind: kind,
            next_queue_id: next,
        };
        out.delivery(d);
    }

    /// `reject: RCPT from h[ip]: 554 5.7.1 <x>: text; from=<a> to=<b> proto=ESMTP helo=<h>`
    /// and the other actions of smtpd, cleanup and milters. A refused
    /// recipient at RCPT/DATA/END-OF-MESSAGE is a delivery row (attempted
    /// egress the MTA refused is evidence too); what names no recipient (a
    /// CONNECT, EHLO or VRFY reject) and every redirect is a `mail_events` row.
    #[allow(clippy::too_many_arguments)]
    fn smtp_action(&mut self, line: &Line<'_>, ts: i64, host: &str, daemon: &str, qid: &str, action: &str, rest: &str, out: &mut dyn Emit) -> bool {
        let Some(act) = events::parse_action(action, rest) else { return false };
        let recipient = act.kv.iter().find(|(k, _)| *k == "to").map(|(_, v)| strip_angle(v)).filter(|v| !v.is_empty());
        if let Some(c) = act.client {
            if qid != "NOQUEUE" {
                self.queues.state(qid).client.get_or_insert_with(|| c.to_string());
            }
        }
        let is_redirect = action.contains("redirect");
        let names_recipient = recipient.is_some() && !matches!(act.stage, Some("CONNECT" | "EHLO" | "HELO" | "VRFY" | "ETRN"));
        if is_redirect || !names_recipient {
            let q = (qid != "NOQUEUE").then_some(qid);
            let mut ev = events::MailEvent::from_kv(host, q, &act.kv);
            ev.event = events::event_name(action);
            ev.stage = act.stage;
            ev.client = act.client;
            ev.dsn = act.dsn;
            ev.reason = act.text;
            ev.redirect_to = act.redirect_to;
            ev.emit(ts, &line.pos, out);
            return true;
        }
        let mut kv = act.kv.clone();
        if let Some(d) = act.dsn {
            kv.push(("dsn", d));
        }
        if qid == "NOQUEUE" {
            if let Some(c) = act.client {
                kv.push(("client", c));
            }
        }
        let status = match action {
            "reject" | "milter-reject" | "proxy-reject" => "rejected",
            "discard" | "milter-discard" => "discarded",
            "hold" | "milter-hold" => "held",
            _ => "filtered",
        };
        self.delivery(line, ts, host, daemon, Some(qid), &kv, status, Some(act.text), out);
        true
    }

    fn queue_line(&mut self, line: &Line<'_>, ts: i64, host: &str, daemon: &str, qid: &str, rest: &str, out: &mut dyn Emit) {
        let parsed = LineOutcome::Parsed;
        let n = line.pos.line;
        let at = (&*self.file, line.pos.offset, n);
        if rest.starts_with("client=") || (daemon == "pickup" && rest.starts_with("uid=")) {
            // A new message under this id: start afresh (queue ids are reused).
            self.queues.remove(qid);
            let client = match rest.strip_prefix("client=") {
                Some(c) => c.to_string(),
                None => format!("local {}", rest.split(" from=").next().unwrap_or(rest)),
            };
            let s = self.queues.touch(qid, host, ts, at);
            s.client = Some(client);
            s.note_line(n);
            return out.account(&line.pos, 1, parsed);
        }
        if qid != "NOQUEUE" {
            self.queues.touch(qid, host, ts, at).note_line(n);
        }
        if let Some(m) = rest.strip_prefix("message-id=").or_else(|| rest.strip_prefix("resent-message-id=")) {
            let id = strip_angle(m.trim()).trim();
            if !id.is_empty() {
                self.queues.state(qid).message_id = Some(bounded(id, 998));
            }
            return out.account(&line.pos, 1, parsed);
        }
        if rest == "removed" {
            self.queues.close(qid, &line.pos, &self.file, out);
            return out.account(&line.pos, 1, parsed);
        }
        if let Some(h) = rest.strip_prefix("info: header ").or_else(|| rest.strip_prefix("warning: header ")) {
            // header_checks INFO/WARN: `Subject: text from host[ip]; from=<> to=<> …`
            let value = h.rsplit_once(" from ").map(|x| x.0).unwrap_or(h);
            let s = self.queues.state(qid);
            if let Some(v) = value.strip_prefix("Subject: ") {
                s.subject = Some(bounded(v, 998));
            } else if let Some(v) = value.strip_prefix("From: ") {
                s.header_from = Some(bounded(v, 998));
            }
            return out.account(&line.pos, 1, parsed);
        }
        for prefix in ["sender non-delivery notification: ", "sender delivery status notification: ", "postmaster non-delivery notification: ", "sender delay notification: "] {
            if let Some(new_id) = rest.strip_prefix(prefix) {
                let new_id = new_id.trim();
                if is_short_qid(new_id) || is_long_qid(new_id) {
                    self.queues.state(new_id).notification_of = Some(qid.to_string());
                }
                return out.account(&line.pos, 1, parsed);
            }
        }
        if rest.starts_with("to=<") || rest.starts_with("to=") {
            let (kv, response) = key_values(rest);
            match get(&kv, "status") {
                Some(status) if !status.is_empty() => {
                    self.delivery(line, ts, host, daemon, Some(qid), &kv, status, response, out);
                    let to = get(&kv, "to").unwrap_or("").to_string();
                    let s = self.queues.state(qid);
                    s.deferred.retain(|d| !d.starts_with(&format!("to={to},")));
                    if status == "deferred" && s.deferred.len() < 64 {
                        s.deferred.push(rest.split(", status=").next().unwrap_or(rest).to_string());
                    }
                    return out.account(&line.pos, 1, parsed);
                }
                _ => {
                    return out.reject(&line.pos, 1, "postfix: delivery line without status= (expected 'to=<…>, relay=…, delay=…, dsn=…, status=…')".into(), line.bytes, Some(ts));
                }
            }
        }
        if rest.starts_with("from=") && rest.contains("status=expired") {
            // qmgr gave up: every recipient still deferred expired here.
            let pending = self.queues.map.get(qid).map(|s| s.deferred.clone()).unwrap_or_default();
            for d in pending {
                let (kv, _) = key_values(&d);
                self.delivery(line, ts, host, daemon, Some(qid), &kv, "expired", Some("returned to sender"), out);
            }
            self.queues.state(qid).deferred.clear();
            return out.account(&line.pos, 1, parsed);
        }
        if rest.starts_with("from=") {
            let (kv, _) = key_values(rest.split(" (").next().unwrap_or(rest));
            let s = self.queues.state(qid);
            if let Some(f) = get(&kv, "from") {
                let (addr, raw, _) = envelope(f);
                s.sender = Some(addr);
                s.sender_raw = raw;
            }
            if let Some(v) = get(&kv, "size").and_then(|v| v.parse().ok()) {
                s.size = Some(v);
            }
            if let Some(v) = get(&kv, "nrcpt").and_then(|v| v.split(' ').next()).and_then(|v| v.parse().ok()) {
                s.nrcpt = Some(v);
            }
            return out.account(&line.pos, 1, parsed);
        }
        if let Some((action, r)) = rest.split_once(": ") {
            if events::is_action(action) && self.smtp_action(line, ts, host, daemon, qid, action, r, out) {
                return out.account(&line.pos, 1, parsed);
            }
        }
        out.account(&line.pos, 1, LineOutcome::Skipped("postfix: queue event without delivery data"));
    }
}

impl Parser for PostfixParser {
    fn format(&self) -> Format {
        Format::Postfix
    }

    fn line(&mut self, line: &Line<'_>, out: &mut dyn Emit) {
        let text = String::from_utf8_lossy(line.bytes);
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return out.account(&line.pos, 1, LineOutcome::Skipped("blank line"));
        }
        if trimmed.starts_with('#') {
            return out.account(&line.pos, 1, LineOutcome::Skipped("comment line"));
        }
        let Some(sys) = split_syslog(&text) else {
            return out.reject(
                &line.pos,
                1,
                "postfix: not a syslog line (expected 'Mon DD HH:MM:SS host program[pid]: message' or an RFC 3339 timestamp first)".into(),
                line.bytes,
                None,
            );
        };
        if !is_postfix_program(sys.program) {
            return out.account(&line.pos, 1, LineOutcome::Skipped("other program in shared syslog (not postfix)"));
        }
        let Some(ts) = self.ts(&sys.stamp) else {
            return out.reject(&line.pos, 1, "postfix: timestamp is not a valid date/time".into(), line.bytes, None);
        };
        let daemon = sys.program.rsplit('/').next().unwrap_or(sys.program);
        match split_queue_id(sys.message) {
            Some((qid, rest)) => self.queue_line(line, ts, sys.host, daemon, qid, rest, out),
            // `proxy-reject: END-OF-MESSAGE: …` without a queue id.
            None => match sys.message.split_once(": ") {
                Some((action, rest)) if events::is_action(action) && self.smtp_action(line, ts, sys.host, daemon, "NOQUEUE", action, rest, out) => out.account(&line.pos, 1, LineOutcome::Parsed),
                _ => out.account(&line.pos, 1, LineOutcome::Skipped("postfix: daemon event without delivery data")),
            },
        }
    }

    /// At the end of the last file of a set read in this run, every message
    /// still in the queue gets its row (`still_queued`, or what its
    /// recipients reached); the next file, in a later run, writes it again
    /// when it closes.
    fn finish(&mut self, out: &mut dyn Emit) {
        if !self.continues {
            self.queues.write_open(&self.file, out);
        }
    }

    fn carry_out(&mut self) -> Option<serde_json::Value> {
        self.queues.carry_json(&self.years)
    }

    fn carry_in(&mut self, state: &serde_json::Value) {
        self.queues.resume(state, &mut self.years);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syslog_frames() {
        let s = split_syslog("Jun  3 10:40:57 mail postfix/submission/smtpd[9708]: connect from x[1.2.3.4]").unwrap();
        assert_eq!(s.stamp, Stamp::Classic(6, 3, 10, 40, 57, 0));
        assert_eq!((s.host, s.program, s.pid), ("mail", "postfix/submission/smtpd", Some("9708")));
        let s = split_syslog("2022-01-08T19:42:12.572958+00:00 mail postfix/smtpd[1]: x").unwrap();
        assert_eq!(s.stamp, Stamp::Rfc3339("2022-01-08T19:42:12.572958+00:00"));
        let s = split_syslog("Mar 7 06:33:59 mail postfix-smo/submission/smtpd[1]: y").unwrap();
        assert_eq!(s.program, "postfix-smo/submission/smtpd");
        let s = split_syslog("Jun  3 10:40:57 mail dovecot: imap(user)").unwrap();
        assert_eq!((s.program, s.pid), ("dovecot", None));
        assert!(split_syslog("pattern: ^%{POSTFIX_SMTP}$").is_none());
    }

    #[test]
    fn queue_ids() {
        assert_eq!(split_queue_id("0D9633D: to=<a@b.c>").map(|x| x.0), Some("0D9633D"));
        assert_eq!(split_queue_id("44JCRG5tYPzCqt2: client=x").map(|x| x.0), Some("44JCRG5tYPzCqt2"));
        assert_eq!(split_queue_id("NOQUEUE: reject: x").map(|x| x.0), Some("NOQUEUE"));
        assert!(split_queue_id("warning: hostname x").is_none());
        assert!(split_queue_id("statistics: max connection").is_none());
    }

    #[test]
    fn delivery_kinds() {
        let q = Some("250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as BF76C3012027");
        assert_eq!(delivery_kind("smtp", Some("127.0.0.1[127.0.0.1]:10024"), q), "filter_hop");
        assert_eq!(queued_as(q).as_deref(), Some("BF76C3012027"));
        assert_eq!(delivery_kind("smtp", Some("127.0.0.1[127.0.0.1]:40297"), Some("250 2.0.0 Ok")), "egress", "a sink or smarthost on loopback");
        assert_eq!(delivery_kind("lmtp", Some("127.0.0.1[127.0.0.1]:24"), Some("250 2.0.0 <a@b> Saved")), "local");
        assert_eq!(delivery_kind("smtp", Some("mx.example.net[192.0.2.5]:25"), Some("250 2.0.0 Ok: queued as 4Fxyz")), "egress");
        assert_eq!(delivery_kind("local", Some("local"), None), "local");
        assert_eq!(delivery_kind("lmtp", Some("private/dovecot-lmtp"), None), "local");
        assert_eq!(delivery_kind("smtp", Some("none"), None), "none");
    }

    #[test]
    fn delivery_key_values() {
        let (kv, resp) = key_values("to=<jos@example.com>, orig_to=<bestuur@example.com>, relay=mail1.example.net[10.74.103.11]:25, delay=11, delays=5.4/0.06/5.1/0.03, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as F12DF84004)");
        assert_eq!(get(&kv, "to"), Some("<jos@example.com>"));
        assert_eq!(get(&kv, "orig_to"), Some("<bestuur@example.com>"));
        assert_eq!(get(&kv, "relay"), Some("mail1.example.net[10.74.103.11]:25"));
        assert_eq!(get(&kv, "status"), Some("sent"));
        assert_eq!(resp, Some("250 2.0.0 Ok: queued as F12DF84004"));
    }
}
