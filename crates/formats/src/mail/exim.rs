//! Exim main log (`/var/log/exim4/mainlog`, `/var/log/exim_mainlog`) →
//! `mail_deliveries` and `mail_messages`.
//!
//! Every line is `DATE TIME[.mmm] [ZONE] [[pid]] …`, written by Exim itself
//! or forwarded through syslog (`Feb 14 18:12:33 host exim[46483]: 2025-…`,
//! or without Exim's own stamp when `syslog_timestamp` is off). A message's
//! lines carry its id (`1hhlhb-006myf-8K`, 23 characters from 4.97:
//! `1tixMn-00000000C5j-1wRa`) and a flag:
//! - `<=` arrival: sender (`<>` for a bounce, with `R=` its parent), `H=`
//!   client, `U=` local user, `P=` protocol, `S=` size, `id=` Message-ID,
//!   `T=` subject, and with `+received_recipients` the envelope `for` list;
//! - `=>` a delivery, `->` a further recipient of the same transport run,
//!   `*>` a delivery suppressed by `-N`, `**` a failure, `==` a deferral:
//!   `ADDRESS [(PARENTS)] [<ORIGINAL>] [F=<sender>] [P=<return path>]
//!   R=router T=transport [H=host [ip]:port] [C="response"] [: error]`;
//! - `Completed`: every recipient is done; the message's row is written.
//!
//! An alias is the `<ORIGINAL>` of the address it expanded to (Postfix's
//! `orig_to`). Delivery rows are envelope recipients (`recipient_role =
//! envelope`, `role_source = mta_envelope`). The other lines (connections,
//! TLS, ACL decisions, queue runs) are skipped with a reason, except a
//! refused recipient (`rejected RCPT <x>`), which is a row with status
//! `rejected`: attempted egress the MTA refused is evidence too. State per
//! message id is bounded and carried across a rotated set as for Postfix.

use crate::collect::LineOutcome;
use crate::postfix::queue::{Outcome, Queues};
use crate::postfix::{delivery_kind, envelope, split_syslog, MailDelivery};
use crate::time::{from_parts_in, YearTracker, Zone};
use crate::{Emit, Format, Line, Parser, SourceInfo};

/// Longest response or error text kept per row.
const MAX_TEXT: usize = 1024;
/// Most `for` recipients counted from one arrival line.
const MAX_FOR: usize = 10_000;

/// An Exim message id: `1hhlhb-006myf-8K` (6-6-2) or `10HmaX-000000005vi-0000` (6-11-4).
pub fn is_message_id(s: &str) -> bool {
    let mut parts = s.split('-');
    let (Some(a), Some(b), Some(c), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else { return false };
    let alnum = |p: &str| p.bytes().all(|x| x.is_ascii_alphanumeric());
    a.len() == 6 && ((b.len() == 6 && c.len() == 2) || (b.len() == 11 && c.len() == 4)) && alnum(a) && alnum(b) && alnum(c)
}

/// Exim's own stamp: `2019-07-01 09:05:55[.123][ +0200]` → parts and the rest.
fn split_stamp(s: &str) -> Option<((i32, u32, u32, u32, u32, u32, u32), Option<i32>, &str)> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r).filter(|x| x.bytes().all(|c| c.is_ascii_digit())).and_then(|x| x.parse::<u32>().ok());
    let (y, mo, d, h, mi, sec) = (n(0..4)? as i32, n(5..7)?, n(8..10)?, n(11..13)?, n(14..16)?, n(17..19)?);
    let mut rest = &s[19..];
    let mut micros = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        micros = format!("{:0<6}", &frac[..digits.min(6)]).parse().ok()?;
        rest = &frac[digits..];
    }
    let mut offset = None;
    if let Some(z) = rest.strip_prefix(' ').filter(|z| z.len() >= 5 && matches!(z.as_bytes()[0], b'+' | b'-') && z.as_bytes()[1..5].iter().all(u8::is_ascii_digit)) {
        let (hh, mm): (i32, i32) = (z[1..3].parse().ok()?, z[3..5].parse().ok()?);
        offset = Some(if z.starts_with('-') { -1 } else { 1 } * (hh * 3600 + mm * 60));
        rest = &z[5..];
    }
    let rest = if rest.is_empty() { rest } else { rest.strip_prefix(' ')? };
    Some(((y, mo, d, h, mi, sec, micros), offset, rest))
}

/// The message part of a line, without the syslog frame, Exim's stamp and
/// `[pid]`, with the time parts when Exim wrote its own stamp.
struct Framed<'a> {
    stamp: Option<((i32, u32, u32, u32, u32, u32, u32), Option<i32>)>,
    syslog: Option<crate::postfix::SyslogLine<'a>>,
    message: &'a str,
    /// `[n/m]` (not `[1\m]`): the rest of a line Exim split for syslog.
    continuation: bool,
}

fn strip_pid(s: &str) -> &str {
    match s.strip_prefix('[').and_then(|r| r.split_once("] ")) {
        Some((pid, rest)) if !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) => rest,
        _ => s,
    }
}

/// A split-line marker `[1\2]` (first part) or `[2/2]` (continuation).
fn strip_split_marker(s: &str) -> (&str, bool) {
    if let Some((m, rest)) = s.strip_prefix('[').and_then(|r| r.split_once("] ")) {
        if let Some((a, b)) = m.split_once('\\') {
            if a.bytes().all(|c| c.is_ascii_digit()) && b.bytes().all(|c| c.is_ascii_digit()) && !a.is_empty() {
                return (rest, false);
            }
        }
        if let Some((a, b)) = m.split_once('/') {
            if a.bytes().all(|c| c.is_ascii_digit()) && b.bytes().all(|c| c.is_ascii_digit()) && !a.is_empty() {
                return (rest, true);
            }
        }
    }
    (s, false)
}

fn frame(line: &str) -> Option<Framed<'_>> {
    if let Some((parts, offset, rest)) = split_stamp(line) {
        return Some(Framed { stamp: Some((parts, offset)), syslog: None, message: strip_pid(rest), continuation: false });
    }
    let Some(sys) = split_syslog(line) else {
        // `host exim[pid]: …`: a relay that kept the host but not the date.
        let (_, rest) = line.split_once(' ')?;
        let (tag, message) = rest.split_once(": ")?;
        if !tag.starts_with("exim") || tag.contains(' ') {
            return None;
        }
        let (parts, offset, rest) = split_stamp(message)?;
        return Some(Framed { stamp: Some((parts, offset)), syslog: None, message: strip_pid(rest), continuation: false });
    };
    if !sys.program.starts_with("exim") {
        return None;
    }
    let (inner, continuation) = strip_split_marker(sys.message);
    let (stamp, message) = match split_stamp(inner) {
        Some((parts, offset, rest)) => (Some((parts, offset)), strip_pid(rest)),
        None => (None, inner),
    };
    Some(Framed { stamp, syslog: Some(sys), message, continuation })
}

/// `ID FLAG rest` → (id, flag, rest); flag is `<=`, `=>`, `->`, `*>`, `**`,
/// `==`, `Completed` or any other first word.
fn split_message(message: &str) -> Option<(&str, &str, &str)> {
    let (id, rest) = message.split_once(' ').unwrap_or((message, ""));
    if !is_message_id(id) {
        return None;
    }
    let (flag, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    Some((id, flag, rest))
}

/// Words only Exim's daemon lines use (connections, ACL decisions,
/// authenticators, queue runs).
const DAEMON_MARKERS: [&str; 12] = [
    " H=", " F=<", "SMTP connection from", "authenticator failed for", "rejected RCPT", "rejected MAIL", "rejected after DATA",
    "Start queue run", "End queue run", "SMTP protocol synchronization error", "no host name found for IP address", "SMTP command timeout",
];

pub fn looks_like(line: &str) -> bool {
    let Some(f) = frame(line) else { return false };
    // Exim's stamp alone is any program's: a message id with its flag, Exim's
    // own daemon words, or an `exim` syslog tag makes it Exim's.
    split_message(f.message).is_some_and(|(_, flag, _)| matches!(flag, "<=" | "=>" | "->" | "*>" | "**" | "==" | "Completed"))
        || f.syslog.is_some()
        || DAEMON_MARKERS.iter().any(|m| f.message.contains(m))
}

/// Exim's escaping of a logged string (`T="\316\261…"`: octal bytes of
/// UTF-8, `\n`, `\t`, `\\`) undone.
fn unescape(v: &str) -> String {
    if !v.contains('\\') {
        return v.to_string();
    }
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            let oct = &b[i + 1..(i + 4).min(b.len())];
            if oct.len() == 3 && oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let n = u32::from(oct[0] - b'0') * 64 + u32::from(oct[1] - b'0') * 8 + u32::from(oct[2] - b'0');
                if let Ok(byte) = u8::try_from(n) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
            let c = match b[i + 1] {
                b'n' => Some(b'\n'),
                b't' => Some(b'\t'),
                b'\\' => Some(b'\\'),
                b'"' => Some(b'"'),
                _ => None,
            };
            if let Some(c) = c {
                out.push(c);
                i += 2;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The words of a field list: split at spaces outside `"…"` (Exim quotes
/// `T=` and `C=` values, with `\"` inside).
fn words(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut esc) = (None, false, false);
    for (i, c) in s.char_indices() {
        if esc {
            esc = false;
            continue;
        }
        match c {
            '\\' if quoted => esc = true,
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if let Some(st) = start.take() {
                    out.push(&s[st..i]);
                }
                continue;
            }
            _ => {}
        }
        start.get_or_insert(i);
    }
    if let Some(st) = start {
        out.push(&s[st..]);
    }
    out
}

/// `KEY=value` fields; a word that is no field continues the previous
/// value (`H=mx.example.net [192.0.2.1]:25`, `H=(helo) [ip]`).
fn fields<'a>(words: &[&'a str]) -> Vec<(&'a str, String)> {
    let mut out: Vec<(&'a str, String)> = Vec::new();
    for w in words {
        let key = w.split_once('=').map(|(k, _)| k).filter(|k| !k.is_empty() && k.len() <= 12 && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'*'));
        match key {
            Some(k) => out.push((k, unquote(&w[k.len() + 1..]))),
            // Only a host takes more words: `H=mx.example.net [192.0.2.1]:25`,
            // `H=(helo) [ip]`, `H=host (helo) [ip]`; other bare words
            // (`defer (-44)`) are no field's.
            None => {
                if let Some((_, v)) = out.last_mut().filter(|(k, _)| *k == "H" && (w.starts_with('[') || w.starts_with('('))) {
                    v.push(' ');
                    v.push_str(w);
                }
            }
        }
    }
    out
}

/// A value without its quotes; escapes are kept (see [`unescape`]).
fn unquote(v: &str) -> String {
    v.strip_prefix('"').and_then(|x| x.strip_suffix('"')).unwrap_or(v).to_string()
}

fn field<'a>(f: &'a [(&str, String)], key: &str) -> Option<&'a str> {
    f.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str())
}

fn bounded(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// A delivery line's recipient part: `ADDRESS [(PARENTS)] [<ORIGINAL>]`,
/// then its fields, then (`**`, `==`) the error after `: `.
struct Recipient<'a> {
    address: &'a str,
    original: Option<&'a str>,
    fields: Vec<(&'a str, String)>,
    error: Option<&'a str>,
}

fn recipient(rest: &str) -> Option<Recipient<'_>> {
    let w = words(rest);
    let (&address, mut tail) = w.split_first()?;
    // `** addr: error`: no fields, the error after the address (but
    // `:blackhole:` and `:fail:` are a router's outcomes, not an address
    // and a colon).
    if let Some(a) = address.strip_suffix(':').filter(|_| !address.starts_with(':')) {
        let error = rest.split_once(": ").map(|(_, e)| e.trim());
        return Some(Recipient { address: a, original: None, fields: Vec::new(), error });
    }
    if tail.first().is_some_and(|t| t.starts_with('(')) {
        let end = tail.iter().position(|t| t.ends_with(')') || t.ends_with("):")).unwrap_or(tail.len() - 1);
        tail = &tail[end + 1..];
    }
    let mut original = None;
    if let Some(t) = tail.first().filter(|t| t.starts_with('<')) {
        original = Some(t.trim_end_matches(':').trim_start_matches('<').trim_end_matches('>'));
        tail = &tail[1..];
    }
    // The error text follows the first word ending in `:` (outside quotes).
    let colon = tail.iter().position(|t| t.ends_with(':') && !t.starts_with('"'));
    let (field_words, error) = match colon {
        Some(i) => {
            let last = tail[i];
            let start = last.as_ptr() as usize - rest.as_ptr() as usize + last.len();
            (&tail[..=i], Some(rest[start..].trim()))
        }
        None => (tail, None),
    };
    let mut fw: Vec<&str> = field_words.to_vec();
    if let Some(l) = fw.last_mut() {
        *l = l.strip_suffix(':').unwrap_or(l);
    }
    // Exim appends `DT=` (`+deliver_time`) after a failure's error text.
    let (error, dt) = match error.and_then(|e| e.rsplit_once(" DT=").filter(|(_, d)| duration_s(d).is_some())) {
        Some((e, d)) => (Some(e), Some(d)),
        None => (error, None),
    };
    let mut fields = fields(&fw);
    if let Some(d) = dt {
        fields.push(("DT", d.to_string()));
    }
    Some(Recipient { address, original, fields, error })
}

pub struct EximParser {
    years: YearTracker,
    zone: Zone,
    last_ts: Option<i64>,
    queues: Queues,
    file: std::sync::Arc<str>,
    continues: bool,
}

impl EximParser {
    pub fn new(info: &SourceInfo) -> Self {
        EximParser {
            years: YearTracker::new(info.year_hint, info.mtime_unix).with_zone(info.zone),
            zone: info.zone.unwrap_or_default(),
            last_ts: None,
            queues: Queues::default(),
            file: info.path.clone(),
            continues: info.continues,
        }
    }

    fn ts(&mut self, f: &Framed<'_>) -> Option<i64> {
        let ts = match (&f.stamp, &f.syslog) {
            (Some(((y, mo, d, h, mi, s, us), offset)), _) => match offset {
                // A stamp with its zone (`log_timezone`) is exact.
                Some(off) => from_parts_in(&Zone::Utc, None, *y, *mo, *d, *h, *mi, *s, *us).map(|t| t - i64::from(*off) * 1_000_000),
                None => from_parts_in(&self.zone, self.last_ts, *y, *mo, *d, *h, *mi, *s, *us),
            },
            (None, Some(sys)) => match sys.stamp {
                crate::postfix::Stamp::Rfc3339(s) => crate::time::parse_rfc3339(s),
                crate::postfix::Stamp::Classic(mo, d, h, m, s, us) => {
                    let y = self.years.year_for_stamp(mo, d, h * 3600 + m * 60 + s);
                    from_parts_in(&self.zone, self.last_ts, y, mo, d, h, m, s, us)
                }
            },
            (None, None) => None,
        };
        if ts.is_some() {
            self.last_ts = ts;
        }
        ts
    }

    fn arrival(&mut self, line: &Line<'_>, ts: i64, host: &str, id: &str, rest: &str) {
        // `<= sender fields… [from <x>] [for r1 r2 …]`
        let w = words(rest);
        let Some((&sender, tail)) = w.split_first() else { return };
        let for_at = tail.iter().position(|t| *t == "for");
        let head = &tail[..for_at.unwrap_or(tail.len())];
        let head = &head[..head.iter().position(|t| *t == "from").unwrap_or(head.len())];
        let recipients = for_at.map(|i| tail[i + 1..].len().min(MAX_FOR));
        let tail = head;
        let f = fields(tail);
        self.queues.remove(id);
        let at = (&*self.file, line.pos.offset, line.pos.line);
        let s = self.queues.touch(id, host, ts, at);
        let (addr, raw, _) = envelope(sender);
        s.sender = Some(addr);
        s.sender_raw = raw;
        s.size = field(&f, "S").and_then(|v| v.parse().ok());
        s.message_id = field(&f, "id").or_else(|| field(&f, "id*")).map(|m| bounded(m.trim_matches(['<', '>']), 998));
        s.subject = field(&f, "T").map(|t| bounded(&unescape(t), 998));
        s.client = field(&f, "H").map(|h| bounded(h, 512)).or_else(|| field(&f, "U").map(|u| format!("local {u}")));
        if sender == "<>" {
            s.notification_of = field(&f, "R").map(str::to_string);
        }
        if let Some(n) = recipients {
            s.nrcpt = Some(n as i64);
        }
        s.note_line(line.pos.line);
    }

    #[allow(clippy::too_many_arguments)]
    fn delivery(&mut self, line: &Line<'_>, ts: i64, host: &str, id: &str, flag: &str, rest: &str, out: &mut dyn Emit) -> bool {
        let Some(r) = recipient(rest) else { return false };
        // A local delivery names the local part (or a file, a pipe,
        // `:blackhole:`) first and the address in <…>.
        let special = r.address.starts_with(['/', '|']) || r.address == ":blackhole:" || r.address == ":fail:";
        let (addr_text, original) = match (r.address.contains('@') && !special, r.original) {
            (true, o) => (r.address, o),
            (false, Some(o)) => (o, None),
            (false, None) => (r.address, None),
        };
        let (recipient, recipient_raw, recipient_domain) = envelope(addr_text);
        if recipient.is_empty() {
            return false;
        }
        let orig_recipient = original.map(|o| envelope(o).0).filter(|o| !o.is_empty() && *o != recipient);
        let relay = field(&r.fields, "H");
        let response = field(&r.fields, "C").map(unescape).or_else(|| r.error.map(str::to_string));
        let response = response.as_deref();
        let (status, kind) = match flag {
            "=>" | "->" if r.address == ":blackhole:" => ("discarded", "none"),
            "=>" | "->" => ("sent", exim_kind(relay, field(&r.fields, "T"), special, response)),
            "*>" => ("suppressed", "none"),
            "**" => ("bounced", if relay.is_some() { "egress" } else { "none" }),
            _ => ("deferred", if relay.is_some() { "egress" } else { "none" }),
        };
        let at = (&*self.file, line.pos.offset, line.pos.line);
        let st = {
            let s = self.queues.touch(id, host, ts, at);
            s.note_line(line.pos.line);
            if let Some(o) = Outcome::of(status, kind) {
                s.note_outcome(&recipient, o);
            }
            s.clone()
        };
        let (sender, sender_raw) = match field(&r.fields, "F") {
            Some(f) => {
                let (a, raw, _) = envelope(f);
                (Some(a), raw)
            }
            None => (st.sender.clone(), st.sender_raw.clone()),
        };
        let related = Some(st.lines.iter().map(u64::to_string).collect::<Vec<_>>().join(",")).filter(|s| !s.is_empty());
        out.delivery(MailDelivery {
            ts,
            pos: line.pos.clone(),
            host: (!host.is_empty()).then(|| host.to_string()),
            queue_id: Some(id.to_string()),
            message_id: st.message_id,
            sender,
            sender_raw,
            header_from: st.header_from,
            subject: st.subject,
            recipient,
            recipient_raw,
            orig_recipient,
            recipient_domain,
            recipient_role: "envelope",
            role_source: "mta_envelope",
            status: status.to_string(),
            dsn: response.and_then(dsn_of),
            relay: relay.map(|h| bounded(h, 512)),
            delay_s: field(&r.fields, "DT").or_else(|| field(&r.fields, "QT")).and_then(duration_s),
            size_bytes: st.size,
            nrcpt: st.nrcpt,
            client: st.client,
            response: response.map(|t| bounded(t, MAX_TEXT)),
            notification_of: st.notification_of,
            related_lines: related,
            delivery_kind: kind,
            next_queue_id: None,
        });
        true
    }

    /// `H=(helo) [ip] F=<sender> rejected RCPT <rcpt>: reason`: a refused recipient.
    fn rejected_rcpt(&mut self, line: &Line<'_>, ts: i64, host: &str, message: &str, out: &mut dyn Emit) -> bool {
        let Some((before, after)) = message.split_once(" rejected RCPT ") else { return false };
        let (rcpt, reason) = after.split_once(": ").unwrap_or((after, ""));
        let (recipient, recipient_raw, recipient_domain) = envelope(rcpt.trim());
        if recipient.is_empty() {
            return false;
        }
        let f = fields(&words(before));
        let (sender, sender_raw) = match field(&f, "F") {
            Some(s) => {
                let (a, raw, _) = envelope(s);
                (Some(a), raw)
            }
            None => (None, None),
        };
        out.delivery(MailDelivery {
            ts,
            pos: line.pos.clone(),
            host: (!host.is_empty()).then(|| host.to_string()),
            sender,
            sender_raw,
            recipient,
            recipient_raw,
            recipient_domain,
            recipient_role: "envelope",
            role_source: "mta_envelope",
            status: "rejected".into(),
            dsn: dsn_of(reason),
            client: field(&f, "H").map(|h| bounded(h, 512)),
            response: Some(bounded(reason, MAX_TEXT)).filter(|r| !r.is_empty()),
            delivery_kind: "none",
            ..Default::default()
        });
        true
    }

    fn completed(&mut self, line: &Line<'_>, id: &str, out: &mut dyn Emit) {
        self.queues.close(id, &line.pos, &self.file, out);
    }
}

/// Where an Exim delivery went, in Postfix's terms: an SMTP/LMTP host is
/// judged as Postfix's relay is; without a host it stayed on this machine.
fn exim_kind(relay: Option<&str>, transport: Option<&str>, special: bool, response: Option<&str>) -> &'static str {
    match relay {
        Some(h) => {
            // `host [ip]:port` → Postfix's `host[ip]:port`.
            let compact = h.replacen(" [", "[", 1);
            let daemon = if transport.is_some_and(|t| t.contains("lmtp")) { "lmtp" } else { "smtp" };
            delivery_kind(daemon, Some(&compact), response)
        }
        None if special => "local",
        None => "local",
    }
}

/// The enhanced status code at the start of an SMTP response (`250 2.0.0 …`).
fn dsn_of(text: &str) -> Option<String> {
    let reply = text.rsplit(": ").next().unwrap_or(text);
    let is_dsn = |code: &str| {
        let parts: Vec<&str> = code.split('.').collect();
        parts.len() == 3 && matches!(parts[0], "2" | "4" | "5") && parts.iter().all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
    };
    // `550 5.1.1 text` or `550-5.1.1 text`: the code is the first or second word.
    reply.split([' ', '-']).take(2).map(|w| w.trim_end_matches(',')).find(|w| is_dsn(w)).map(str::to_string)
}

/// `DT=0.004s`, `QT=1m2s`, `QT=1h2m3s`, `QT=2d3h` → seconds.
fn duration_s(v: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut num = String::new();
    for c in v.chars() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
        } else {
            let n: f64 = num.parse().ok()?;
            num.clear();
            total += n * match c {
                's' => 1.0,
                'm' => 60.0,
                'h' => 3600.0,
                'd' => 86_400.0,
                'w' => 604_800.0,
                _ => return None,
            };
        }
    }
    if !num.is_empty() {
        total += num.parse::<f64>().ok()?;
    }
    Some(total)
}

impl Parser for EximParser {
    fn format(&self) -> Format {
        Format::Exim
    }

    fn line(&mut self, line: &Line<'_>, out: &mut dyn Emit) {
        let text = String::from_utf8_lossy(line.bytes);
        if text.trim().is_empty() {
            return out.account(&line.pos, 1, LineOutcome::Skipped("blank line"));
        }
        if text.starts_with('#') {
            // Exim writes none: annotations of a collected or test log.
            return out.account(&line.pos, 1, LineOutcome::Skipped("exim: comment line (not written by Exim)"));
        }
        let Some(f) = frame(&text) else {
            return match split_syslog(&text) {
                Some(_) => out.account(&line.pos, 1, LineOutcome::Skipped("other program in shared syslog (not exim)")),
                None => out.reject(&line.pos, 1, "exim: not an Exim log line (expected 'YYYY-MM-DD HH:MM:SS' first, or a syslog line of exim)".into(), line.bytes, None),
            };
        };
        if f.continuation {
            return out.account(&line.pos, 1, LineOutcome::Skipped("exim: rest of a line split for syslog ([n/m])"));
        }
        let Some(ts) = self.ts(&f) else {
            return out.reject(&line.pos, 1, "exim: timestamp is not a valid date/time".into(), line.bytes, None);
        };
        let host = f.syslog.as_ref().map(|s| s.host.to_string()).unwrap_or_default();
        let outcome = match split_message(f.message) {
            Some((id, "<=", rest)) => {
                self.arrival(line, ts, &host, id, rest);
                LineOutcome::Parsed
            }
            Some((id, flag @ ("=>" | "->" | "*>" | "**" | "=="), rest)) => {
                if self.delivery(line, ts, &host, id, flag, rest, out) {
                    LineOutcome::Parsed
                } else {
                    LineOutcome::Skipped("exim: delivery line without a recipient address")
                }
            }
            Some((id, "Completed", _)) | Some((id, "removed", _)) => {
                self.completed(line, id, out);
                LineOutcome::Parsed
            }
            Some((id, _, _)) => {
                let at = (&*self.file, line.pos.offset, line.pos.line);
                self.queues.touch(id, &host, ts, at).note_line(line.pos.line);
                LineOutcome::Skipped("exim: message event without delivery data (frozen, spool, TLS, DKIM, retry)")
            }
            None if self.rejected_rcpt(line, ts, &host, f.message, out) => LineOutcome::Parsed,
            None => LineOutcome::Skipped("exim: daemon event without a message (connection, ACL, TLS, queue run, start)"),
        };
        out.account(&line.pos, 1, outcome);
    }

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
    fn message_ids_old_and_new() {
        assert!(is_message_id("1hhlhb-006myf-8K"));
        assert!(is_message_id("10HmaX-000000005vi-0000"));
        assert!(is_message_id("1tixMn-00000000C5j-1wRa"));
        assert!(!is_message_id("2019-07-01"));
        assert!(!is_message_id("abc-def-gh"));
    }

    #[test]
    fn frames_plain_and_syslog_forwarded() {
        let f = frame("2019-07-01 09:05:55 1hhlhb-006myf-8K <= a@b.c S=1").unwrap();
        assert_eq!(f.message, "1hhlhb-006myf-8K <= a@b.c S=1");
        let f = frame("Feb 14 18:12:33 192.168.55.51 exim[46483]: 2025-02-14 18:12:33.470 [46483] 1tixMn-00000000C5j-1wRa <= root@domain.ru U=root").unwrap();
        assert_eq!(f.message, "1tixMn-00000000C5j-1wRa <= root@domain.ru U=root");
        assert_eq!(f.stamp.unwrap().0 .6, 470_000);
        let f = frame("Feb 14 18:12:33 h exim[1]: [2/2]  Suggested action: use keep_environment.").unwrap();
        assert!(f.continuation);
        let f = frame("2017-07-30 18:51:05.712 +0200 [123] 10HmaX-000000005vi-0000 Completed").unwrap();
        assert_eq!((f.stamp.unwrap().1, f.message), (Some(7200), "10HmaX-000000005vi-0000 Completed"));
        assert!(frame("Jun  3 10:40:57 mail postfix/smtp[9710]: x").is_none());
        let f = frame("mail.example.com exim[3751842]: 2021-07-17 23:20:49 plain_server authenticator failed for ([192.0.2.17]) [192.0.2.27]: 535").unwrap();
        assert!(f.message.starts_with("plain_server authenticator failed"));
        let r = recipient(":blackhole: <b@dump.ex> R=r_dump").unwrap();
        assert_eq!((r.address, r.original, field(&r.fields, "R")), (":blackhole:", Some("b@dump.ex"), Some("r_dump")));
    }

    #[test]
    fn a_completed_message_row_keeps_its_syslog_host() {
        let log = "Feb 14 18:12:33 mx7 exim[1]: 2025-02-14 18:12:33 1tixMn-00000000C5j-1wRa <= a@corp.example U=root P=local S=362 id=m1@corp.example\n\
Feb 14 18:12:34 mx7 exim[2]: 2025-02-14 18:12:34 1tixMn-00000000C5j-1wRa => b@x.example R=dnslookup T=remote_smtp H=mx.x.example [192.0.2.1]\n\
Feb 14 18:12:34 mx7 exim[2]: 2025-02-14 18:12:34 1tixMn-00000000C5j-1wRa Completed\n";
        let (_, rows) = crate::test_rows::parse(Format::Exim, "/var/log/syslog", log, None);
        let m = rows.of(mcpf_schema::Table::MailMessages);
        assert_eq!(m.len(), 1);
        assert_eq!((m[0]["host"].as_str(), m[0]["final_state"].as_str(), m[0]["source_line"].as_str()), ("mx7", "delivered", "3"));
        assert!(m[0]["message_key"].starts_with("mx7:1tixMn-00000000C5j-1wRa:"));
    }

    #[test]
    fn delivery_parts() {
        let r = recipient("samvid++sent@pochta.ru (samvid++Sent@pochta.ru, samvid@bk.ru) <samvid@bk.ru> F=<samvid@pochta.ru> P=<> R=virtuser_lmtp T=lmtp H=127.0.0.1 [127.0.0.1]:24 C=\"250 2.0.0 <x> Saved\"").unwrap();
        assert_eq!((r.address, r.original), ("samvid++sent@pochta.ru", Some("samvid@bk.ru")));
        assert_eq!(field(&r.fields, "H"), Some("127.0.0.1 [127.0.0.1]:24"));
        assert_eq!(field(&r.fields, "C"), Some("250 2.0.0 <x> Saved"));
        let r = recipient("xxx@unknown.test.ex: Unrouteable address").unwrap();
        assert_eq!((r.address, r.error), ("xxx@unknown.test.ex", Some("Unrouteable address")));
        let r = recipient("userx@test.ex R=r1 T=t1 defer (-44) H=127.0.0.1 [127.0.0.1]: SMTP error from remote mail server after RCPT TO:<userx@test.ex>: 451 Temporary error").unwrap();
        assert_eq!((field(&r.fields, "T"), field(&r.fields, "H")), (Some("t1"), Some("127.0.0.1 [127.0.0.1]")));
        assert!(r.error.unwrap().ends_with("451 Temporary error"));
        assert_eq!(dsn_of(r.error.unwrap()), None);
        assert_eq!(dsn_of("SMTP error from remote mail server after RCPT TO:<a@b>: 550 5.1.1 No such user").as_deref(), Some("5.1.1"));
        assert_eq!(duration_s("1m2s"), Some(62.0));
        assert_eq!(unescape(r"Freedom of Information \316\261\316\257 - TEST\n PIOs"), "Freedom of Information αί - TEST\n PIOs");
        assert_eq!(duration_s("0.004s"), Some(0.004));
    }
}
