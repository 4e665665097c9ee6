//! E-mail address normalization and extraction.
//!
//! Intent (tool arguments) and egress (mail logs) write the same mailbox in
//! different ways: `"Bob" <Bob@Example.COM>`, `<bob@example.com>`,
//! `bob@xn--exmple-cua.com`. Rules compare addresses, so both sides go through
//! [`normalize`]. Choices (documented in the README):
//! - trim, strip display name and angle brackets, strip a trailing dot of the domain;
//! - lowercase the domain (DNS is case-insensitive) and the local part (RFC 5321
//!   allows case-sensitive local parts, but no mainstream mailbox provider uses
//!   them, and a case difference must not raise a finding);
//! - IDN domains to punycode (ASCII), so `bücher.example` equals `xn--bcher-kva.example`;
//! - no sub-addressing (`+tag`) or dot folding: those are different envelope
//!   recipients and a rule may care.

/// A normalized address and its raw form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub address: String,
    pub domain: String,
    /// The raw text, kept only when it differs from `address`.
    pub raw: Option<String>,
}

/// Normalize one address (with or without display name / angle brackets).
/// Returns None when the text is not a plausible single mailbox.
pub fn normalize(raw: &str) -> Option<Address> {
    let trimmed = raw.trim();
    let inner = match (trimmed.rfind('<'), trimmed.rfind('>')) {
        (Some(l), Some(r)) if l < r => &trimmed[l + 1..r],
        _ => trimmed,
    };
    let inner = inner.trim().trim_matches(|c| c == '"' || c == '\'');
    let at = inner.rfind('@')?;
    let (local, domain) = (&inner[..at], &inner[at + 1..]);
    if local.is_empty() || domain.is_empty() || local.len() > 256 || domain.len() > 255 {
        return None;
    }
    if local.chars().any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>' || c == ',' || c == ';')
        && !(local.starts_with('"') && local.ends_with('"'))
    {
        return None;
    }
    let domain = domain.trim_end_matches('.');
    let domain_norm = if domain.starts_with('[') {
        // An address literal: [IPv4] or [IPv6:...] (RFC 5321), nothing else.
        address_literal(domain)?
    } else {
        if domain.chars().any(|c| c.is_whitespace() || c.is_control() || "<>,;\"'()[]\\@".contains(c)) {
            return None;
        }
        let d = if domain.is_ascii() { domain.to_ascii_lowercase() } else { idna::domain_to_ascii(domain).ok()?.to_ascii_lowercase() };
        // After IDNA mapping every label is letters, digits, '-' or '_'
        // (fullwidth dots and quotes map to ASCII ones: checked here, so a
        // normalized address normalizes to itself).
        let labels_ok = d.split('.').all(|l| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        if !labels_ok {
            return None;
        }
        d
    };
    if !domain_norm.contains('.') && !domain_norm.starts_with('[') && domain_norm != "localhost" {
        return None;
    }
    // The limits hold for the normalized form too: punycode is longer than
    // the Unicode it encodes, and lowercasing can lengthen a local part, so a
    // result past them would not normalize again (found by fuzzing).
    let local = local.to_lowercase();
    if domain_norm.len() > 255 || local.len() > 256 {
        return None;
    }
    let address = format!("{local}@{domain_norm}");
    let raw_kept = if raw == address { None } else { Some(raw.to_string()) };
    Some(Address { address, domain: domain_norm, raw: raw_kept })
}

/// The longest string read as an address list (a log line is at most 4 MiB;
/// a provider document's field may be longer): past it the string is not
/// read, and callers that care say the list was not observed whole.
pub const MAX_LIST_BYTES: usize = 16 * 1024 * 1024;

/// `[192.0.2.1]` or `[IPv6:2001:db8::1]`, lower-cased; None otherwise.
fn address_literal(d: &str) -> Option<String> {
    let inner = d.strip_prefix('[')?.strip_suffix(']')?;
    let ok = match inner.get(..5) {
        Some(p) if p.eq_ignore_ascii_case("ipv6:") => inner[5..].parse::<std::net::Ipv6Addr>().is_ok(),
        _ => inner.parse::<std::net::Ipv4Addr>().is_ok(),
    };
    ok.then(|| d.to_ascii_lowercase())
}

/// Split an address-list string (`a@x, "B" <b@y>; c@z`) into addresses.
///
/// Returns None unless *every* element is an address: a string that merely
/// mentions an address in prose (an e-mail body) is not a recipient list.
pub fn parse_list(text: &str) -> Option<Vec<Address>> {
    if text.len() > MAX_LIST_BYTES || !text.contains('@') {
        return None;
    }
    let mut out = Vec::new();
    for part in split_list(text) {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let a = normalize(part)?;
        // A display name may contain spaces, a bare address may not.
        let bare = !part.contains('<');
        if bare && part.split_whitespace().count() > 1 {
            return None;
        }
        out.push(a);
    }
    if out.is_empty() {
        None
    } else {
        Some(out)
    }
}

/// Split on commas/semicolons outside double quotes and angle brackets.
fn split_list(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut in_quote, mut in_angle, mut start) = (false, false, 0);
    for (i, c) in text.char_indices() {
        match c {
            '"' => in_quote = !in_quote,
            '<' if !in_quote => in_angle = true,
            '>' if !in_quote => in_angle = false,
            ',' | ';' if !in_quote && !in_angle => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// The role of an argument from its name: `to`, `cc`, `bcc`, `from`,
/// `reply_to` or `other`. Names are compared without case and punctuation,
/// so `toAddresses`, `CC`, `reply-to` and `bccRecipients` all resolve.
pub fn role_of_arg(name: &str) -> &'static str {
    let n: String = name.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase();
    let n = n.as_str();
    if n.starts_with("bcc") || n.starts_with("blindcarbon") {
        "bcc"
    } else if n.starts_with("cc") || n.starts_with("carboncopy") {
        "cc"
    } else if n.starts_with("replyto") {
        "reply_to"
    } else if n == "from" || n.starts_with("fromaddress") || n.starts_with("fromemail") || n == "sender" || n.starts_with("senderemail") || n.starts_with("senderaddress") {
        "from"
    } else if n == "to" || n.starts_with("toaddress") || n.starts_with("toemail") || n.starts_with("recipient") || n == "email" || n == "address" || n.starts_with("emailaddress") || n == "addresses" || n == "emails" {
        "to"
    } else {
        "other"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzz_found_domains_that_did_not_renormalize() {
        // Found by the address fuzz target: garbage in brackets was taken as
        // an address literal and came out as "xn--[096|||...".
        let input = "users\u{91}\u{91}[@[096|||;|||\u{31a}|||%||1p.2.1]";
        assert!(normalize(input).is_none());
        // The target's minimized input (bytes 9b 40 5b cc 9a 2e 5d, read lossily).
        assert!(normalize("\u{fffd}@[\u{31a}.]").is_none());
        assert_eq!(normalize("a@[192.0.2.1]").unwrap().address, "a@[192.0.2.1]");
        assert_eq!(normalize("a@[IPv6:2001:DB8::1]").unwrap().address, "a@[ipv6:2001:db8::1]");
        assert!(normalize("a@[not-an-ip]").is_none());
        // Fullwidth dot maps to '.', and the result normalizes to itself.
        let a = normalize("x@example\u{3002}com").unwrap();
        assert_eq!(normalize(&a.address).unwrap().address, a.address);
        for bad in ["x@exa|mple.com", "x@example..com", "x@ex%ample.com", "x@example.com\u{ff02}"] {
            if let Some(a) = normalize(bad) {
                assert_eq!(normalize(&a.address).map(|b| b.address), Some(a.address.clone()), "{bad}");
            }
        }
    }

    #[test]
    fn an_address_whose_punycode_domain_is_too_long_is_refused() {
        // 200-odd bytes of Cyrillic-laced labels: within the limit as
        // Unicode, past it as punycode (fuzz crash a5fa7130).
        let domain = "p.\u{43f}co.trp.t.eo\u{43f}carbo.".repeat(9) + "example";
        assert!(domain.len() <= 255);
        assert_eq!(normalize(&format!("x@{domain}")), None);
        let ok = normalize("x@p.\u{43f}co.example").unwrap();
        assert_eq!(normalize(&ok.address).unwrap().address, ok.address);
    }

    #[test]
    fn normalizes_forms() {
        let a = normalize("\"Bob Smith\" <Bob@Example.COM>").unwrap();
        assert_eq!(a.address, "bob@example.com");
        assert_eq!(a.domain, "example.com");
        assert!(a.raw.is_some());
        assert_eq!(normalize("<x@y.org>").unwrap().address, "x@y.org");
        assert_eq!(normalize("x@y.org").unwrap().raw, None);
        assert_eq!(normalize("x@bücher.example").unwrap().domain, "xn--bcher-kva.example");
        assert_eq!(normalize("x@Example.com.").unwrap().address, "x@example.com");
        assert!(normalize("not an address").is_none());
        assert!(normalize("a@b").is_none());
        assert!(normalize("@b.com").is_none());
    }

    #[test]
    fn lists_but_not_prose() {
        let v = parse_list("a@x.com, \"Doe, Jane\" <jane@y.org>; c@z.net").unwrap();
        let got: Vec<_> = v.iter().map(|a| a.address.as_str()).collect();
        assert_eq!(got, ["a@x.com", "jane@y.org", "c@z.net"]);
        assert!(parse_list("Hi Bob, please write to me at a@x.com tomorrow").is_none());
        assert!(parse_list("no address").is_none());
    }

    #[test]
    fn roles() {
        assert_eq!(role_of_arg("to"), "to");
        assert_eq!(role_of_arg("toAddresses"), "to");
        assert_eq!(role_of_arg("CC"), "cc");
        assert_eq!(role_of_arg("bccRecipients"), "bcc");
        assert_eq!(role_of_arg("reply-to"), "reply_to");
        assert_eq!(role_of_arg("from"), "from");
        assert_eq!(role_of_arg("subject"), "other");
    }
}
