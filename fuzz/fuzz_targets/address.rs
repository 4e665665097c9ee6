//! Address normalization and extraction (`mcpf_formats::address`,
//! `mcp::addresses_in_arguments`) on arbitrary text: no panic, and every
//! address returned is well-formed and a fixed point of `normalize`
//! (see `mcpf_fuzz::check_address`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcpf_formats::{address, mcp};
use serde_json::{json, Value};

const ROLES: [&str; 6] = ["to", "cc", "bcc", "from", "reply_to", "other"];

fn check_arguments(args: &Value) {
    for a in mcp::addresses_in_arguments(args) {
        assert!(ROLES.contains(&a.role), "role {:?}", a.role);
        mcpf_fuzz::check_address(&a.address, &a.arg_path);
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let text: &str = &text;

    if let Some(a) = address::normalize(text) {
        mcpf_fuzz::check_address(&a, text);
    }
    if let Some(list) = address::parse_list(text) {
        assert!(!list.is_empty(), "parse_list returned Some(empty)");
        for a in &list {
            mcpf_fuzz::check_address(a, text);
        }
    }
    let role = address::role_of_arg(text);
    assert!(ROLES.contains(&role), "role_of_arg({text:?}) = {role:?}");

    // The same text as a tool call's arguments: as a recipient field, inside a
    // list, as a key, and (when it is JSON) as the arguments themselves.
    check_arguments(&json!({ "to": text, "subject": "s" }));
    check_arguments(&json!({ "recipients": [text, { "email": text }] }));
    check_arguments(&json!({ text: "a@example.com" }));
    if let Ok(v) = serde_json::from_slice::<Value>(data) {
        check_arguments(&v);
    }
});
