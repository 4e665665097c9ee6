//! Message-id extraction on arbitrary text.
//!
//! - `mcp::message_ids_in`: ids a tool result returned (JSON fields, text
//!   `MessageID: …`, `Message-ID:` headers, JSON inside text content);
//! - Postfix `cleanup` `message-id=` lines (the extraction is private to the
//!   Postfix parser, so it is reached through `parse_reader`): the id must
//!   arrive on the delivery row of the same queue id, bounded.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use mcpf_formats::{mcp, Format};
use mcpf_schema::Table;
use serde_json::{json, Value};

fn check_ids(v: &Value) {
    let ids = mcp::message_ids_in(v);
    let mut seen = HashSet::new();
    for (id, kind) in &ids {
        assert!(!id.is_empty(), "empty id from {v}");
        assert!(matches!(*kind, "json" | "text" | "header"), "kind {kind:?}");
        assert!(seen.insert(id.as_str()), "duplicate id {id:?}");
        if *kind != "json" {
            // Taken by the regex: [A-Za-z0-9][A-Za-z0-9._%+\-@$=/]{2,250}, then trimmed.
            assert!(id.len() <= 251, "text id of {} bytes", id.len());
            assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._%+-@$=/".contains(&b)), "text id {id:?}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let text: &str = &text;

    // As text content, as a CallToolResult, as a JSON field, and as JSON.
    check_ids(&Value::String(text.to_string()));
    check_ids(&json!({ "content": [{ "type": "text", "text": text }], "isError": false }));
    check_ids(&json!({ "structuredContent": { "MessageID": text, "messageId": text, "message_id": [text] } }));
    if let Ok(v) = serde_json::from_slice::<Value>(data) {
        check_ids(&v);
    }

    // Postfix: cleanup's message-id= line, then a delivery of the same queue id.
    let line = text.split(['\n', '\r']).next().unwrap_or("");
    let log = format!(
        "Nov 13 01:40:57 mx1 postfix/cleanup[3982]: 89AE498C146: message-id={line}\n\
         Nov 13 01:40:58 mx1 postfix/smtp[3991]: 89AE498C146: to=<carol@other.example>, relay=127.0.0.1[127.0.0.1]:25, delay=0.03, delays=0.01/0.01/0/0, dsn=2.0.0, status=sent (250 2.0.0 Ok)\n"
    );
    let mut sink = mcpf_fuzz::CheckingSink { keep: true, ..Default::default() };
    let st = mcpf_fuzz::parse_into(Format::Postfix, "/var/log/mail.log", log.as_bytes(), 0, &mut sink);
    assert!(st.balanced(), "{st:?}");
    assert_eq!(st.lines, 2, "{st:?}");
    let col = Table::MailDeliveries.column_index("message_id").expect("mail_deliveries.message_id");
    for (t, cells) in &sink.kept {
        if *t == Table::MailDeliveries {
            if let Some(id) = &cells[col] {
                assert!(!id.is_empty(), "empty message_id kept");
                // At most 998 bytes (RFC 5322 line limit) and an ellipsis.
                assert!(id.len() <= 998 + '…'.len_utf8(), "message_id of {} bytes", id.len());
            }
        }
    }
});
