//! Postfix actions that are not deliveries: rejects at CONNECT/EHLO/VRFY,
//! milter and header_checks redirects, proxy rejects, null recipients →
//! `mail_events`.
//!
//! smtpd, cleanup and milters log an action as
//! `ACTION: STAGE from CLIENT: TEXT; from=<S> to=<R> proto=P helo=<H>`, and a
//! redirect adds `: TARGET` after the helo. A redirect is the line that says a
//! filter changed where the message goes, which is exactly what a tampering
//! filter does.

use mcpf_schema::Table;

use crate::collect::{NamedRow, Val};
use crate::time::date_of;
use crate::{Emit, Pos};

/// Longest text kept.
const MAX_REASON: usize = 1024;

/// Actions smtpd, cleanup and the milter client log with this shape.
pub fn is_action(a: &str) -> bool {
    matches!(
        a,
        "reject" | "milter-reject" | "proxy-reject" | "discard" | "milter-discard" | "hold" | "milter-hold" | "redirect" | "milter-redirect" | "milter-header-redirect" | "milter-body-redirect" | "filter"
    )
}

/// The `mail_events.event` of an action.
pub fn event_name(a: &str) -> &'static str {
    match a {
        "reject" => "reject",
        "milter-reject" => "milter_reject",
        "proxy-reject" => "proxy_reject",
        "discard" | "milter-discard" => "discard",
        "hold" | "milter-hold" => "hold",
        "redirect" | "milter-redirect" | "milter-header-redirect" | "milter-body-redirect" => "header_redirect",
        "filter" => "filter",
        _ => "other",
    }
}

/// One parsed action line.
#[derive(Debug, Clone)]
pub struct Action<'a> {
    pub stage: Option<&'a str>,
    pub client: Option<&'a str>,
    pub text: &'a str,
    pub dsn: Option<&'a str>,
    pub kv: Vec<(&'a str, &'a str)>,
    pub redirect_to: Option<&'a str>,
}

/// `STAGE from CLIENT: TEXT[; from=<S> to=<R> proto=P helo=<H>[: TARGET]]`.
pub fn parse_action<'a>(action: &str, rest: &'a str) -> Option<Action<'a>> {
    let (head, mut tail) = match rest.rsplit_once("; ") {
        Some((h, t)) if t.contains('=') => (h, t),
        _ => (rest, ""),
    };
    let mut redirect_to = None;
    if action.contains("redirect") {
        if let Some(i) = tail.rfind(">: ") {
            redirect_to = Some(tail[i + 3..].trim()).filter(|t| !t.is_empty());
            tail = &tail[..i + 1];
        }
    }
    let kv: Vec<(&str, &str)> = tail.split(' ').filter_map(|p| p.split_once('=')).collect();
    // `STAGE from CLIENT: TEXT`; for header and body checks `header NAME:
    // VALUE from CLIENT`, where the value may itself say " from ".
    let checks = head.starts_with("header ") || head.starts_with("body ");
    let split = if checks { head.rsplit_once(" from ") } else { head.split_once(" from ") };
    let (stage, client, text) = match split {
        Some((stage, after)) => {
            let (client, text) = if checks { (after, head) } else { after.split_once(": ").unwrap_or((after, head)) };
            (stage.split_whitespace().next(), Some(client), text)
        }
        None => (head.split(':').next().map(str::trim), None, head),
    };
    let stage = stage.map(|s| s.trim_end_matches(':')).filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-'));
    let dsn = text.split_whitespace().find(|w| w.len() >= 5 && w.as_bytes()[1] == b'.' && w.as_bytes()[0].is_ascii_digit());
    if head.is_empty() && kv.is_empty() {
        return None;
    }
    Some(Action { stage, client, text, dsn, kv, redirect_to })
}

/// A `mail_events` row.
#[derive(Debug, Clone, Default)]
pub struct MailEvent<'a> {
    pub host: &'a str,
    pub queue_id: Option<&'a str>,
    pub event: &'static str,
    pub stage: Option<&'a str>,
    pub client: Option<&'a str>,
    pub helo: Option<&'a str>,
    pub sender: Option<&'a str>,
    pub recipient: Option<&'a str>,
    pub redirect_to: Option<&'a str>,
    pub dsn: Option<&'a str>,
    pub reason: &'a str,
}

fn angle(s: &str) -> &str {
    s.strip_prefix('<').and_then(|x| x.strip_suffix('>')).unwrap_or(s)
}

impl<'a> MailEvent<'a> {
    /// Host, queue id and the from/to/helo of a key=value tail.
    pub fn from_kv(host: &'a str, queue_id: Option<&'a str>, kv: &[(&'a str, &'a str)]) -> MailEvent<'a> {
        let get = |k: &str| kv.iter().find(|(key, _)| *key == k).map(|(_, v)| angle(v));
        MailEvent { host, queue_id, sender: get("from"), recipient: get("to").filter(|r| !r.is_empty()), helo: get("helo"), ..Default::default() }
    }

    pub fn emit(&self, ts: i64, pos: &Pos, out: &mut dyn Emit) {
        let date = date_of(ts);
        let norm = |a: Option<&str>| a.map(|a| crate::address::normalize(a).map(|n| n.address).unwrap_or_else(|| a.to_lowercase()));
        let (sender, recipient, redirect) = (norm(self.sender), norm(self.recipient), norm(self.redirect_to));
        let reason = super::bounded(self.reason, MAX_REASON);
        let mut r = NamedRow::new(Table::MailEvents);
        r.set("ts", Val::Ts(Some(ts)))
            .set("date", Val::Str(Some(&date)))
            .set("host", Val::Str(Some(self.host)))
            .set("queue_id", Val::Str(self.queue_id))
            .set("event", Val::Str(Some(self.event)))
            .set("stage", Val::Str(self.stage))
            .set("client", Val::Str(self.client))
            .set("helo", Val::Str(self.helo))
            .set("sender", Val::Str(sender.as_deref()))
            .set("recipient", Val::Str(recipient.as_deref()))
            .set("redirect_to", Val::Str(redirect.as_deref()))
            .set("dsn", Val::Str(self.dsn))
            .set("reason", Val::Str(Some(&reason)));
        out.named(pos, r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_milter_header_redirect_names_its_target() {
        let rest = "header X-Spam-Status: Yes, score=39.3 required=5.0 from 061238241086.static.ctinets.com[61.238.241.86]; from=<wumt5@cchfdc.com> to=<voorzitter@example.com> proto=ESMTP helo=<ecsolved.com>: tom@example.com";
        let a = parse_action("milter-header-redirect", rest).unwrap();
        assert_eq!(a.redirect_to, Some("tom@example.com"));
        assert_eq!(a.stage, Some("header"));
        assert_eq!(a.client, Some("061238241086.static.ctinets.com[61.238.241.86]"));
        let ev = MailEvent::from_kv("mx", Some("4104E3D"), &a.kv);
        assert_eq!((ev.sender, ev.recipient, ev.helo), (Some("wumt5@cchfdc.com"), Some("voorzitter@example.com"), Some("ecsolved.com")));
    }

    #[test]
    fn rejects_without_recipient() {
        let a = parse_action("reject", "CONNECT from [1.2.3.4]:1337: too many connections").unwrap();
        assert_eq!((a.stage, a.client, a.text), (Some("CONNECT"), Some("[1.2.3.4]:1337"), "too many connections"));
        assert!(a.kv.is_empty());
        let a = parse_action("reject", "VRFY from unknown[2001:db8::2]: 454 4.7.1 <aap@henk.com>: Relay access denied; to=<aap@henk.com> proto=SMTP helo=<me>").unwrap();
        assert_eq!((a.stage, a.dsn), (Some("VRFY"), Some("4.7.1")));
        let a = parse_action("proxy-reject", "END-OF-MESSAGE: 554 5.7.0 Reject, id=31619-02 - spam; from=<> to=<user2@example2.com> proto=SMTP helo=<17.33.12.53>").unwrap();
        assert_eq!(a.stage, Some("END-OF-MESSAGE"));
        assert_eq!(a.dsn, Some("5.7.0"));
    }
}
