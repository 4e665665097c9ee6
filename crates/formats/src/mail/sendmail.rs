//! Sendmail via syslog (`/var/log/maillog`, `/var/log/mail.log`) →
//! `mail_deliveries` and `mail_messages`.
//!
//! Sendmail logs under `sendmail`, `sm-mta`, `sm-msp-queue` and its other
//! process titles (`sm-acceptingconnections`, `sm-mta-in`). A message's
//! lines carry its queue id (`m3FMiGem016698`: eight characters of time and
//! sequence, then the process id) and `key=value, …` fields:
//! - `from=<sender>, size=, class=, nrcpts=, msgid=, proto=, daemon=,
//!   relay=`: the message was accepted (with `nrcpts=0`: every recipient
//!   was refused, nothing was queued);
//! - `to=<r1>,<r2>, [ctladdr=], delay=, xdelay=, mailer=, pri=, relay=,
//!   dsn=, stat=`: one delivery attempt to the listed recipients (a row per
//!   recipient), `stat=Sent (…)`, `Deferred: …`, or an error;
//! - `QID: NEWQID: DSN: …`: a bounce (delivery status notification) created
//!   under a new queue id;
//! - `ruleset=check_rcpt, arg1=<r>, relay=, reject=550 …` and `<r>... User
//!   unknown`: a refused recipient (a row with status `rejected`: attempted
//!   egress the MTA refused is evidence too).
//!
//! The submission program (MSP, `sendmail[pid]`, `mailer=relay` to
//! 127.0.0.1) hands a message to the daemon, which queues it under a new id
//! (`stat=Sent (NEWQID Message accepted for delivery)`): that row is a
//! `filter_hop` naming the new id, so the message leaves once, from the
//! daemon's row. Sendmail writes no "removed" line: a message's row is
//! written when every counted recipient (`nrcpts`) has a final outcome, and
//! at the end of the logs otherwise. Other lines (daemon start, AUTH,
//! STARTTLS, milters, connection checks) are skipped with a reason. State
//! per queue id is bounded and carried across a rotated set as for Postfix.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};

use super::Expansions;

use crate::collect::LineOutcome;
use crate::postfix::queue::{Outcome, Queues};
use crate::postfix::{delivery_kind, envelope, split_syslog, MailDelivery, Stamp};
use crate::time::{from_parts_in, YearTracker, Zone};
use crate::{Emit, Format, Line, Parser, SourceInfo};

/// Longest response or error text kept per row.
const MAX_TEXT: usize = 1024;
/// Most recipients taken from one `to=` list (Sendmail itself splits long
/// lists over several lines; this bounds a hostile line).
const MAX_TO: usize = 10_000;

/// The field names Sendmail writes on its message lines. A list value (`to=a,b`)
/// continues until the next `, KEY=` or `,KEY=` of a known key.
const KEYS: [&str; 34] = [
    "from", "to", "ctladdr", "delay", "xdelay", "mailer", "pri", "relay", "dsn", "stat", "size", "class", "nrcpts", "msgid", "proto", "daemon",
    "bodytype", "ruleset", "arg1", "arg2", "reject", "quarantine", "tls_verify", "tls_version", "cipher", "bits", "verify", "version", "auth",
    "ntries", "user", "orcpt", "smtputf8", "qid",
];

/// A Sendmail queue id: 8 characters of time and sequence (`m3FMiGem`),
/// then the process id in at least 6 digits (`016698`, `3529566`).
pub fn is_queue_id(s: &str) -> bool {
    let b = s.as_bytes();
    (14..=20).contains(&b.len()) && b[..8].iter().all(u8::is_ascii_alphanumeric) && b[8..].iter().all(u8::is_ascii_digit)
}

/// Sendmail's process titles as syslog program names.
fn is_sendmail_program(p: &str) -> bool {
    p == "sendmail" || p.starts_with("sendmail-") || p.starts_with("sm-")
}

/// A line's syslog frame and whether it is Sendmail's.
fn framed(line: &str) -> Option<Owned> {
    // Also with a `<facility.level>` token before the host
    // (`Jun 17 14:37:39 <mail.notice> robin sm-mta[…]`, a syslog-ng template).
    let text = match split_syslog(line) {
        Some(_) => Cow::Borrowed(line),
        None => Cow::Owned(strip_priority(line)?),
    };
    let sys = split_syslog(&text)?;
    let sendmail = is_sendmail_program(sys.program);
    let stamp = match sys.stamp {
        Stamp::Rfc3339(s) => OwnedStamp::Rfc3339(s.to_string()),
        Stamp::Classic(mo, d, h, m, s, us) => OwnedStamp::Classic(mo, d, h, m, s, us),
    };
    Some(Owned { stamp, host: sys.host.to_string(), sendmail, message: sys.message.to_string() })
}

/// `Jun 17 14:37:39 <mail.notice> robin …` → `Jun 17 14:37:39 robin …`.
fn strip_priority(line: &str) -> Option<String> {
    let open = line.find(" <")?;
    let close = open + 2 + line[open + 2..].find("> ")?;
    let tag = &line[open + 2..close];
    let priority = tag.split_once('.').is_some_and(|(f, l)| !f.is_empty() && !l.is_empty()) && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.');
    (priority && open <= 32).then(|| format!("{}{}", &line[..open], &line[close + 1..]))
}

enum OwnedStamp {
    Rfc3339(String),
    Classic(u32, u32, u32, u32, u32, u32),
}

/// A syslog line's parts, owned (the frame may have been rewritten).
struct Owned {
    stamp: OwnedStamp,
    host: String,
    sendmail: bool,
    message: String,
}

pub fn looks_like(line: &str) -> bool {
    framed(line).is_some_and(|f| f.sendmail)
}

/// `key=value, key=value, …` of a message line. `stat=` and `reject=` take
/// the rest of the line (their text holds commas); a list (`to=a,b`) runs
/// to the next known key.
fn fields(s: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut rest = s.trim_start();
    while let Some(eq) = rest.find('=') {
        let key = &rest[..eq];
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            break;
        }
        let value_start = eq + 1;
        if matches!(key, "stat" | "reject") {
            out.push((key, rest[value_start..].trim_end()));
            break;
        }
        let end = next_key(&rest[value_start..]).map(|e| value_start + e);
        match end {
            Some(e) => {
                out.push((key, rest[value_start..e].trim_end_matches([',', ' '])));
                rest = rest[e..].trim_start_matches([',', ' ']);
            }
            None => {
                out.push((key, rest[value_start..].trim_end()));
                break;
            }
        }
    }
    out
}

/// Where the next `KEY=` field begins in a value: after `, ` or `,` when
/// the word is a known key.
fn next_key(v: &str) -> Option<usize> {
    let b = v.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b',' {
            let start = if b.get(i + 1) == Some(&b' ') { i + 2 } else { i + 1 };
            let word: String = v[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if v[start + word.len()..].starts_with('=') && KEYS.contains(&word.as_str()) {
                return Some(i);
            }
        }
        i += 1;
    }
    None
}

fn get<'a>(f: &[(&str, &'a str)], key: &str) -> Option<&'a str> {
    f.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

fn bounded(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// A `to=` list: `<a@x>,<b@y>`, `a@x,b@y`, `"|/usr/bin/procmail"`,
/// `/var/mail/file`, `root`.
fn recipients(list: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut angle) = (0, false, false);
    for (i, c) in list.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                out.push(list[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(list[start..].trim());
    out.retain(|r| !r.is_empty());
    out.truncate(MAX_TO);
    out
}

/// `relay=mx.example.net. [192.0.2.1] (may be forged)` → Postfix's
/// `mx.example.net[192.0.2.1]` (the client's or the next hop's).
fn compact_relay(relay: &str) -> String {
    let r = relay.split(" (may be forged)").next().unwrap_or(relay).trim();
    let (host, ip) = match r.split_once(" [") {
        Some((h, ip)) => (h.trim_end_matches('.'), Some(ip.trim_end_matches(']'))),
        None if r.starts_with('[') => ("", Some(r.trim_start_matches('[').trim_end_matches(']'))),
        None => (r.trim_end_matches('.'), None),
    };
    let s = match ip {
        Some(ip) => format!("{host}[{ip}]"),
        None => host.to_string(),
    };
    bounded(&s, 512)
}

/// `delay=20:38:23`, `delay=2+01:00:00` (days) → seconds.
fn delay_s(v: &str) -> Option<f64> {
    let (days, hms) = match v.split_once('+') {
        Some((d, r)) => (d.parse::<u64>().ok()?, r),
        None => (0, v),
    };
    let p: Vec<u64> = hms.split(':').map(|x| x.parse::<u64>().ok()).collect::<Option<_>>()?;
    let [h, m, s] = p[..] else { return None };
    Some((days * 86_400 + h * 3600 + m * 60 + s) as f64)
}

/// The row status of a `stat=` text and its `dsn=`.
fn status_of(stat: &str, dsn: Option<&str>) -> &'static str {
    if stat.starts_with("Sent") {
        return "sent";
    }
    if stat.starts_with("Deferred") || stat.starts_with("queued") {
        return "deferred";
    }
    // `Cannot send message for 5 days`: the queue lifetime ran out.
    if stat.contains("Cannot send message for") {
        return "expired";
    }
    match dsn.and_then(|d| d.chars().next()) {
        Some('2') => "sent",
        Some('4') => "deferred",
        Some('5') => "bounced",
        // Sendmail's temporary failures without a DSN (sysexits EX_OSERR,
        // EX_IOERR, EX_PROTOCOL, EX_TEMPFAIL).
        _ if ["Operating system error", "I/O error", "Remote protocol error", "Connection timed out", "Deferred"].iter().any(|t| stat.starts_with(t)) => "deferred",
        _ => "bounced",
    }
}

/// `NEWQID Message accepted for delivery`: the daemon that took the message
/// over queued it under this id.
fn accepted_as(response: &str) -> Option<&str> {
    let text = response.trim_start_matches("Sent").trim().trim_start_matches('(');
    let (id, rest) = text.split_once(' ')?;
    (is_queue_id(id) && rest.starts_with("Message accepted for delivery")).then_some(id)
}

fn loopback(relay: &str) -> bool {
    let addr = relay.split_once('[').and_then(|(_, r)| r.split(']').next()).unwrap_or(relay);
    addr.starts_with("127.") || addr == "::1" || addr.eq_ignore_ascii_case("IPv6:::1") || relay.starts_with("localhost")
}

/// Where a delivery went, from the mailer: local mailers store here, the
/// SMTP mailers are judged as Postfix's relay is.
fn kind_of(mailer: Option<&str>, relay: Option<&str>, response: &str, next: Option<&str>) -> &'static str {
    match mailer.unwrap_or("") {
        "local" | "prog" | "*file*" | "*include*" | "cyrus" | "cyrusv2" | "procmail" | "mail11" => "local",
        "error" | "discard" => "none",
        m => {
            if next.is_some() && relay.is_some_and(loopback) {
                return "filter_hop";
            }
            let daemon = if m.contains("lmtp") { "lmtp" } else { "smtp" };
            delivery_kind(daemon, relay, Some(response))
        }
    }
}

pub struct SendmailParser {
    years: YearTracker,
    zone: Zone,
    last_ts: Option<i64>,
    queues: Queues,
    /// Alias expansions (`alias A => m1, m2`, LogLevel 11) per queue id.
    expansions: Expansions,
    /// Recipients refused at RCPT, held until the message's `from=` line
    /// (Sendmail logs it after the refusals) gives them their sender.
    refusals: Refusals,
    file: std::sync::Arc<str>,
    continues: bool,
}

/// Most refused-recipient rows held for their `from=` line at once.
const MAX_HELD_REFUSALS: usize = 10_000;

/// Refused-recipient rows waiting for their message's `from=` line, by
/// queue id, oldest first; bounded (past it the oldest are written as
/// they are).
#[derive(Default)]
struct Refusals {
    by_qid: HashMap<String, Vec<MailDelivery>>,
    order: VecDeque<String>,
    held: usize,
}

impl Refusals {
    fn hold(&mut self, qid: &str, d: MailDelivery, out: &mut dyn Emit) {
        if !self.by_qid.contains_key(qid) {
            self.order.push_back(qid.to_string());
        }
        self.by_qid.entry(qid.to_string()).or_default().push(d);
        self.held += 1;
        while self.held > MAX_HELD_REFUSALS {
            let Some(old) = self.order.pop_front() else { break };
            for d in self.take(&old) {
                out.delivery(d);
            }
        }
    }

    fn take(&mut self, qid: &str) -> Vec<MailDelivery> {
        let rows = self.by_qid.remove(qid).unwrap_or_default();
        self.held -= rows.len();
        rows
    }

    fn flush(&mut self, out: &mut dyn Emit) {
        for qid in std::mem::take(&mut self.order) {
            for d in self.take(&qid) {
                out.delivery(d);
            }
        }
    }
}

impl SendmailParser {
    pub fn new(info: &SourceInfo) -> Self {
        SendmailParser {
            years: YearTracker::new(info.year_hint, info.mtime_unix).with_zone(info.zone),
            zone: info.zone.unwrap_or_default(),
            last_ts: None,
            queues: Queues::default(),
            expansions: Expansions::default(),
            refusals: Refusals::default(),
            file: info.path.clone(),
            continues: info.continues,
        }
    }

    fn ts(&mut self, stamp: &OwnedStamp) -> Option<i64> {
        let ts = match *stamp {
            OwnedStamp::Rfc3339(ref s) => crate::time::parse_rfc3339(s),
            OwnedStamp::Classic(mo, d, h, m, s, us) => {
                let y = self.years.year_for_stamp(mo, d, h * 3600 + m * 60 + s);
                from_parts_in(&self.zone, self.last_ts, y, mo, d, h, m, s, us)
            }
        };
        if ts.is_some() {
            self.last_ts = ts;
        }
        ts
    }

    /// `from=…, size=…, nrcpts=…, msgid=…, relay=…`: the message was accepted
    /// (or, with `nrcpts=0`, every recipient refused).
    fn arrival(&mut self, line: &Line<'_>, ts: i64, host: &str, qid: &str, f: &[(&str, &str)], out: &mut dyn Emit) {
        let at = (&*self.file, line.pos.offset, line.pos.line);
        let s = self.queues.touch(qid, host, ts, at);
        let (addr, raw, _) = envelope(get(f, "from").unwrap_or(""));
        s.sender = Some(addr);
        s.sender_raw = raw;
        s.size = get(f, "size").and_then(|v| v.parse().ok());
        s.nrcpt = get(f, "nrcpts").and_then(|v| v.parse().ok());
        s.message_id = get(f, "msgid").map(|m| bounded(m.trim_matches(['<', '>']), 998));
        s.client = get(f, "relay").map(compact_relay);
        s.note_line(line.pos.line);
        let (sender, sender_raw, nrcpt) = (s.sender.clone(), s.sender_raw.clone(), s.nrcpt);
        // The recipients refused before this line were this sender's.
        let refused = self.refusals.take(qid);
        for mut d in refused {
            d.sender.clone_from(&sender);
            d.sender_raw.clone_from(&sender_raw);
            if nrcpt == Some(0) {
                // They are all the message had: it was refused, not queued.
                if let Some(s) = self.queues.map.get_mut(qid) {
                    s.note_outcome(&d.recipient, Outcome::Rejected);
                }
            }
            out.delivery(d);
        }
        if nrcpt == Some(0) {
            // Nothing was queued: the message ends here.
            self.write_message(line, qid, out);
        }
    }

    /// `to=…, mailer=…, relay=…, dsn=…, stat=…`: a row per listed recipient.
    fn delivery(&mut self, line: &Line<'_>, ts: i64, host: &str, qid: &str, f: &[(&str, &str)], out: &mut dyn Emit) -> bool {
        let Some(list) = get(f, "to") else { return false };
        let stat = get(f, "stat").unwrap_or("");
        let dsn = get(f, "dsn").filter(|d| !d.is_empty());
        let status = status_of(stat, dsn);
        let relay = get(f, "relay").map(compact_relay);
        let next = accepted_as(stat).map(str::to_string);
        let kind = kind_of(get(f, "mailer"), relay.as_deref(), stat, next.as_deref());
        let at = (&*self.file, line.pos.offset, line.pos.line);
        let st = {
            let s = self.queues.touch(qid, host, ts, at);
            s.note_line(line.pos.line);
            if kind == "filter_hop" {
                s.filtered_to = next.clone();
            }
            s.clone()
        };
        if let Some(n) = next.as_deref().filter(|_| kind == "filter_hop") {
            // The daemon's copy may already be logged (and written) when
            // the submission program logs its hand-off.
            if let Some(d) = self.queues.map.get_mut(n) {
                d.filtered_from = Some(qid.to_string());
            }
        }
        // A sender taken from `ctladdr=` (the controlling user) only when
        // the message's arrival is not in these logs.
        let (sender, sender_raw) = match (&st.sender, get(f, "ctladdr")) {
            (None, Some(c)) => {
                let (a, raw, _) = envelope(c.split(" (").next().unwrap_or(c));
                (Some(a), raw)
            }
            _ => (st.sender.clone(), st.sender_raw.clone()),
        };
        let related = Some(st.lines.iter().map(u64::to_string).collect::<Vec<_>>().join(",")).filter(|s| !s.is_empty());
        let mut wrote = false;
        for r in recipients(list) {
            let (recipient, recipient_raw, recipient_domain) = envelope(r.trim_matches('"'));
            if recipient.is_empty() {
                continue;
            }
            if let Some(o) = Outcome::of(status, kind) {
                if let Some(s) = self.queues.map.get_mut(qid) {
                    s.note_outcome(&recipient, o);
                }
            }
            // The address a local alias expanded to this recipient; for a
            // pipe or a file (`to="|prog"`), the alias is the controlling address.
            let orig_recipient = self.expansions.get(qid, &recipient).cloned().or_else(|| {
                let c = get(f, "ctladdr")?.split(" (").next()?;
                (recipient.starts_with(['|', '/']) && c.contains('@')).then(|| envelope(c).0).filter(|o| !o.is_empty())
            });
            out.delivery(MailDelivery {
                ts,
                pos: line.pos.clone(),
                host: (!host.is_empty()).then(|| host.to_string()),
                queue_id: Some(qid.to_string()),
                message_id: st.message_id.clone(),
                sender: sender.clone(),
                sender_raw: sender_raw.clone(),
                subject: None,
                orig_recipient,
                recipient,
                recipient_raw,
                recipient_domain,
                recipient_role: "envelope",
                role_source: "mta_envelope",
                status: status.to_string(),
                dsn: dsn.map(|d| bounded(d, 16)),
                relay: relay.clone(),
                delay_s: get(f, "delay").and_then(delay_s),
                size_bytes: st.size,
                nrcpt: st.nrcpt,
                client: st.client.clone(),
                response: Some(bounded(stat, MAX_TEXT)).filter(|r| !r.is_empty()),
                notification_of: st.notification_of.clone(),
                related_lines: related.clone(),
                delivery_kind: kind,
                next_queue_id: next.clone().filter(|_| kind == "filter_hop"),
                ..Default::default()
            });
            wrote = true;
        }
        self.close_if_done(line, qid, out);
        wrote
    }

    /// Write the message's row once every counted recipient has a final
    /// outcome (Sendmail logs no removal).
    fn close_if_done(&mut self, line: &Line<'_>, qid: &str, out: &mut dyn Emit) {
        let done = self.queues.map.get(qid).is_some_and(|s| {
            s.nrcpt.is_some_and(|n| n > 0 && s.outcomes.len() as i64 >= n) && s.outcomes.values().all(|o| *o != Outcome::Deferred)
        });
        if done {
            self.write_message(line, qid, out);
        }
    }

    /// `QID: NEWQID: DSN: Cannot send message for 5 days`: the queue's
    /// lifetime ran out for every recipient still deferred; each gets an
    /// `expired` row at this line (Sendmail writes no `stat=` for them).
    fn expired(&mut self, line: &Line<'_>, ts: i64, host: &str, qid: &str, reason: &str, out: &mut dyn Emit) {
        let Some(st) = self.queues.map.get(qid).cloned() else { return };
        let deferred: Vec<String> = st.outcomes.iter().filter(|(_, o)| **o == Outcome::Deferred).map(|(r, _)| r.clone()).collect();
        for r in deferred {
            let (recipient, recipient_raw, recipient_domain) = envelope(&r);
            if let Some(s) = self.queues.map.get_mut(qid) {
                s.note_outcome(&recipient, Outcome::Expired);
            }
            out.delivery(MailDelivery {
                ts,
                pos: line.pos.clone(),
                host: (!host.is_empty()).then(|| host.to_string()),
                queue_id: Some(qid.to_string()),
                message_id: st.message_id.clone(),
                sender: st.sender.clone(),
                sender_raw: st.sender_raw.clone(),
                orig_recipient: self.expansions.get(qid, &recipient).cloned(),
                recipient,
                recipient_raw,
                recipient_domain,
                recipient_role: "envelope",
                role_source: "mta_envelope",
                status: "expired".into(),
                size_bytes: st.size,
                nrcpt: st.nrcpt,
                client: st.client.clone(),
                response: Some(bounded(reason, MAX_TEXT)),
                delivery_kind: "none",
                ..Default::default()
            });
        }
        self.close_if_done(line, qid, out);
    }

    /// A refused recipient: `ruleset=check_rcpt, arg1=<r>, relay=…, reject=…`
    /// or `<r>... User unknown`.
    fn refused(&mut self, line: &Line<'_>, ts: i64, host: &str, qid: Option<&str>, rcpt: &str, client: Option<String>, reason: &str, out: &mut dyn Emit) -> bool {
        let (recipient, recipient_raw, recipient_domain) = envelope(rcpt.trim());
        if recipient.is_empty() {
            return false;
        }
        if let Some(q) = qid {
            let at = (&*self.file, line.pos.offset, line.pos.line);
            self.queues.touch(q, host, ts, at).note_line(line.pos.line);
        }
        let dsn = reason.split(' ').nth(1).filter(|c| c.split('.').count() == 3 && c.bytes().all(|b| b.is_ascii_digit() || b == b'.'));
        let d = MailDelivery {
            ts,
            pos: line.pos.clone(),
            host: (!host.is_empty()).then(|| host.to_string()),
            queue_id: qid.map(str::to_string),
            recipient,
            recipient_raw,
            recipient_domain,
            recipient_role: "envelope",
            role_source: "mta_envelope",
            status: "rejected".into(),
            dsn: dsn.map(str::to_string),
            client,
            response: Some(bounded(reason, MAX_TEXT)).filter(|r| !r.is_empty()),
            delivery_kind: "none",
            ..Default::default()
        };
        // Refused in a message's SMTP session: its sender comes with the
        // `from=` line Sendmail logs after DATA.
        match qid {
            Some(q) => self.refusals.hold(q, d, out),
            None => out.delivery(d),
        }
        true
    }

    fn write_message(&mut self, line: &Line<'_>, qid: &str, out: &mut dyn Emit) {
        self.queues.close(qid, &line.pos, &self.file, out);
    }

    /// One queue-id line of Sendmail's; `None` when it is no message event.
    fn message_line(&mut self, line: &Line<'_>, ts: i64, host: &str, qid: &str, rest: &str, out: &mut dyn Emit) -> LineOutcome {
        let f = fields(rest);
        match f.first().map(|(k, _)| *k) {
            Some("from") => {
                self.arrival(line, ts, host, qid, &f, out);
                return LineOutcome::Parsed;
            }
            Some("to") => {
                return if self.delivery(line, ts, host, qid, &f, out) {
                    LineOutcome::Parsed
                } else {
                    LineOutcome::Skipped("sendmail: delivery line without a recipient address")
                };
            }
            Some("ruleset") if get(&f, "ruleset") == Some("check_rcpt") => {
                let client = get(&f, "relay").map(compact_relay);
                if let (Some(r), Some(reason)) = (get(&f, "arg1"), get(&f, "reject")) {
                    if self.refused(line, ts, host, Some(qid), r, client, reason, out) {
                        return LineOutcome::Parsed;
                    }
                }
            }
            _ => {}
        }
        // `QID: <r>... User unknown`: the recipient refused at RCPT.
        if let Some((r, reason)) = rest.strip_prefix('<').and_then(|r| r.split_once(">... ")) {
            if self.refused(line, ts, host, Some(qid), r, None, reason, out) {
                return LineOutcome::Parsed;
            }
        }
        // `QID: alias <A> => m1, m2` (LogLevel 11): A's members.
        if let Some((alias, members)) = rest.strip_prefix("alias ").and_then(|r| r.split_once(" => ")) {
            let alias = envelope(alias.trim()).0;
            if !alias.is_empty() {
                for m in recipients(members) {
                    let m = envelope(m.trim_matches('"')).0;
                    if !m.is_empty() {
                        self.expansions.note(qid, m, alias.clone());
                    }
                }
                if let Some(s) = self.queues.map.get_mut(qid) {
                    s.note_line(line.pos.line);
                }
                return LineOutcome::Parsed;
            }
        }
        // `QID: done; delay=…, ntries=…` (LogLevel 11): the message left the queue.
        if rest == "done" || rest.starts_with("done;") {
            self.write_message(line, qid, out);
            return LineOutcome::Parsed;
        }
        // `QID: NEWQID: DSN: …` / `postmaster notify: …` / `return to sender: …`.
        if let Some((child, note)) = rest.split_once(": ").filter(|(c, _)| is_queue_id(c)) {
            let at = (&*self.file, line.pos.offset, line.pos.line);
            let s = self.queues.touch(child, host, ts, at);
            s.note_line(line.pos.line);
            s.notification_of = Some(qid.to_string());
            // A notification's envelope sender is the null sender.
            s.sender.get_or_insert_with(String::new);
            if note.contains("Cannot send message for") {
                self.expired(line, ts, host, qid, note, out);
            }
            return LineOutcome::Parsed;
        }
        if let Some(s) = self.queues.map.get_mut(qid) {
            s.note_line(line.pos.line);
        }
        LineOutcome::Skipped("sendmail: message event without delivery data (ruleset, milter, STARTTLS, AUTH, notify, lost input)")
    }
}

impl Parser for SendmailParser {
    fn format(&self) -> Format {
        Format::Sendmail
    }

    fn line(&mut self, line: &Line<'_>, out: &mut dyn Emit) {
        let text = String::from_utf8_lossy(line.bytes);
        if text.trim().is_empty() {
            return out.account(&line.pos, 1, LineOutcome::Skipped("blank line"));
        }
        if text.starts_with('#') {
            return out.account(&line.pos, 1, LineOutcome::Skipped("sendmail: comment line (not written by Sendmail)"));
        }
        let Some(f) = framed(&text) else {
            return out.reject(&line.pos, 1, "sendmail: not a syslog line (expected 'Mon DD HH:MM:SS host sendmail[pid]: …')".into(), line.bytes, None);
        };
        if !f.sendmail {
            return out.account(&line.pos, 1, LineOutcome::Skipped("other program in shared syslog (not sendmail)"));
        }
        let Some(ts) = self.ts(&f.stamp) else {
            return out.reject(&line.pos, 1, "sendmail: timestamp is not a valid date/time".into(), line.bytes, None);
        };
        let outcome = match f.message.split_once(": ").filter(|(q, _)| is_queue_id(q)) {
            Some((qid, rest)) => self.message_line(line, ts, &f.host, qid, rest, out),
            None => {
                let fl = fields(&f.message);
                match (get(&fl, "ruleset"), get(&fl, "arg1"), get(&fl, "reject")) {
                    (Some("check_rcpt"), Some(r), Some(reason)) if self.refused(line, ts, &f.host, None, r, get(&fl, "relay").map(compact_relay), reason, out) => LineOutcome::Parsed,
                    _ => LineOutcome::Skipped("sendmail: daemon event without a message (start, alias rebuild, connection check, SYSERR)"),
                }
            }
        };
        out.account(&line.pos, 1, outcome);
    }

    fn finish(&mut self, out: &mut dyn Emit) {
        // Refusals whose `from=` line is not in this file keep their line, without a sender.
        self.refusals.flush(out);
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
    fn queue_ids() {
        assert!(is_queue_id("m3FMiGem016698"));
        assert!(is_queue_id("xA32R2PQ3529566"));
        assert!(!is_queue_id("1hhlhb-006myf-8K"));
        assert!(!is_queue_id("3F1C31E0B4"));
    }

    #[test]
    fn fields_lists_and_terminal_texts() {
        let f = fields("to=<a@x.example>,<b@x.example>, ctladdr=<w@h> (33/33), delay=00:00:02, mailer=esmtp, relay=mx. [192.0.2.1], dsn=4.0.0, stat=Deferred: 421 a, b, c");
        assert_eq!(get(&f, "to"), Some("<a@x.example>,<b@x.example>"));
        assert_eq!(get(&f, "ctladdr"), Some("<w@h> (33/33)"));
        assert_eq!(get(&f, "stat"), Some("Deferred: 421 a, b, c"));
        assert_eq!(recipients(get(&f, "to").unwrap()), vec!["<a@x.example>", "<b@x.example>"]);
        // As logged: no space after the comma before `stat=`.
        let f = fields("to=<admin@c.bz>, relay=mx. [64.71.138.90], dsn=5.0.0,stat=Service unavailable");
        assert_eq!((get(&f, "dsn"), get(&f, "stat")), (Some("5.0.0"), Some("Service unavailable")));
        assert_eq!(compact_relay("mail2.mailinator.com. [45.33.83.75]"), "mail2.mailinator.com[45.33.83.75]");
        assert_eq!(compact_relay("[127.0.0.1] [127.0.0.1]"), "[127.0.0.1][127.0.0.1]");
        assert_eq!(compact_relay("x.example [192.0.2.1] (may be forged)"), "x.example[192.0.2.1]");
        assert_eq!(delay_s("20:38:23"), Some(74303.0));
        assert_eq!(delay_s("1+00:00:05"), Some(86405.0));
        assert_eq!(accepted_as("Sent (m3FMiVh2016699 Message accepted for delivery)"), Some("m3FMiVh2016699"));
        assert_eq!(status_of("Operating system error", Some("4.5.0")), "deferred");
        assert_eq!(status_of("Service unavailable", Some("5.0.0")), "bounced");
        assert_eq!(status_of("User unknown", None), "bounced");
    }

    #[test]
    fn priority_token_before_the_host() {
        let f = framed("Jun 17 14:37:39 <mail.info> robin sm-mta[2794]: 55HIbcGI002794: from=<root@yourhost.com>, size=108").unwrap();
        assert!(f.sendmail);
        assert_eq!(f.host, "robin");
        assert!(f.message.starts_with("55HIbcGI002794: from="));
        assert!(!looks_like("Dec  6 19:21:41 cutiebunny postfix/postqueue[13145]: fatal: Queue report unavailable"));
    }
}
