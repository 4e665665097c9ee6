//! `record --redact` masks what the rule `mcp.sensitive_data_in_arguments`
//! reports: the rule runs over a wire log of calls, the recorder's
//! detectors over the same arguments, and the kinds found must agree call
//! by call; the masked arguments must no longer trigger the rule.

use std::collections::{BTreeMap, BTreeSet};

use mcpf_detect::{embedded_rules, DetectOptions, Engine, Lists};
use mcpf_lake::{IngestOptions, Lake};
use serde_json::json;

/// Argument texts: every kind the rule knows, and look-alikes it must not take.
const BODIES: &[&str] = &[
    "creds: AKIAIOSFODNN7EXAMPLE",
    "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "token ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    "slack xoxb-123456789012-abcdefghij",
    "maps AIzaSyA1234567890abcdefghijklmnopqrstuv",
    "stripe sk_live_abcdefghijklmnop1234",
    "openai sk-proj-abcdefghijklmnopqrstuvwxyz012345",
    "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "card 4111 1111 1111 1111 exp 12/29",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
    "ssn 123-45-6789",
    "NI number QQ 12 34 56 C",
    "Order 4111111111111112 ships 2026-03-04; call +1 555 123 4567",
    "ticket 000-12-3456 and 666-12-3456; 0000000000000000",
    "Rotate the AWS access key and the private key by Friday; the token sk-short is fine",
    "both AKIAIOSFODNN7EXAMPLE and 5555 5555 5555 4444",
];

fn wire_log(bodies: &[String]) -> String {
    bodies
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let rec = json!({"ts": format!("2026-03-01T10:{:02}:00Z", i), "direction": "client_to_server", "server": format!("s{i:02}"),
                             "message": {"jsonrpc": "2.0", "id": i + 1, "method": "tools/call", "params": {"name": "send", "arguments": {"to": "x@example.com", "body": b}}}});
            format!("{rec}\n")
        })
        .collect()
}

/// Kinds the rule reports, per call (server s{i}).
fn rule_kinds(bodies: &[String]) -> BTreeMap<usize, BTreeSet<String>> {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("wire.jsonl");
    std::fs::write(&log, wire_log(bodies)).unwrap();
    let lake = Lake::open(dir.path().join("lake")).unwrap();
    lake.ingest(&[log], &IngestOptions::default()).unwrap();
    let rules: Vec<_> = embedded_rules().into_iter().filter(|r| r.id == "mcp.sensitive_data_in_arguments").collect();
    assert_eq!(rules.len(), 1);
    let findings = lake.block_on(async {
        let e = Engine::open(&lake).await.unwrap();
        e.register_lists(&rules, &Lists::default()).unwrap();
        e.detect(&rules, &DetectOptions::default()).await.unwrap()
    });
    let mut out: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    for f in findings {
        let (kind, rest) = f.key.split_once(" in s").unwrap();
        let i: usize = rest.split('/').next().unwrap().parse().unwrap();
        out.entry(i).or_default().insert(kind.to_string());
    }
    out
}

#[test]
fn the_redactor_finds_what_the_rule_finds_and_masks_it() {
    let bodies: Vec<String> = BODIES.iter().map(|b| b.to_string()).collect();
    let by_rule = rule_kinds(&bodies);
    assert!(by_rule.len() >= 12, "the rule should fire on the secret samples: {by_rule:?}");
    let mut masked = Vec::new();
    for (i, b) in bodies.iter().enumerate() {
        let raw = serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "send", "arguments": {"to": "x@example.com", "body": b}}})).unwrap();
        let red = mcpf_record::redact::redact_message(&raw);
        let mine: BTreeSet<String> = red.as_ref().map(|r| r.kinds.iter().map(|k| k.to_string()).collect()).unwrap_or_default();
        assert_eq!(mine, by_rule.get(&i).cloned().unwrap_or_default(), "call {i}: {b:?}");
        let after = red.map(|r| serde_json::from_slice::<serde_json::Value>(&r.message).unwrap()["params"]["arguments"]["body"].as_str().unwrap().to_string()).unwrap_or_else(|| b.clone());
        masked.push(after);
    }
    assert!(rule_kinds(&masked).is_empty(), "masked arguments still trigger the rule: {:?}", rule_kinds(&masked));
}
