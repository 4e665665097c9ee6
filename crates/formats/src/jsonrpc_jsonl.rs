//! The JSON-RPC wire log: one JSON object per line, written by a stdio or
//! HTTP tap between an MCP client and server.
//!
//! ```json
//! {"ts":"2026-11-25T10:00:00.123Z","direction":"client_to_server","server":"postmark",
//!  "session":"optional id","host":"optional","message":{"jsonrpc":"2.0","id":1,"method":"tools/call",...}}
//! ```
//! `ts` is RFC 3339 or epoch seconds (number); `direction` is
//! `client_to_server` or `server_to_client`; `message` is the JSON-RPC
//! message exactly as sent. `session` and `host` are optional; without
//! `session`, sessions are inferred from `initialize` as for other traces.
//! Lines with the literal key `"truncated": true` keep their row, marked.

use serde_json::Value;

use crate::collect::LineOutcome;
use crate::mcp::{Body, Direction, McpEvent, McpEventKind};
use crate::time::parse_rfc3339;
use crate::{Emit, Format, Line, Parser, SourceInfo};

/// A line of the wire-tap format: an object whose `direction` is one of the
/// tap's two values (other gateways' logs also have a `direction` key, with
/// other values, and mention `message` inside their payloads).
pub fn looks_like(line: &str) -> bool {
    let t = line.trim_start();
    if !t.starts_with('{') || !t.contains("\"message\"") {
        return false;
    }
    let Some(at) = t.find("\"direction\"") else { return false };
    let rest = t[at + "\"direction\"".len()..].trim_start();
    let Some(rest) = rest.strip_prefix(':') else { return false };
    let rest = rest.trim_start();
    rest.starts_with("\"client_to_server\"") || rest.starts_with("\"server_to_client\"")
}

pub struct JsonRpcJsonlParser;

impl JsonRpcJsonlParser {
    pub fn new(_info: &SourceInfo) -> Self {
        JsonRpcJsonlParser
    }
}

fn ts_of(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => parse_rfc3339(s),
        Value::Number(n) => n.as_f64().filter(|f| f.is_finite() && f.abs() < 1e11).map(|f| (f * 1e6).round() as i64),
        _ => None,
    }
}

impl Parser for JsonRpcJsonlParser {
    fn format(&self) -> Format {
        Format::JsonRpcJsonl
    }

    fn line(&mut self, line: &Line<'_>, out: &mut dyn Emit) {
        let Some(v) = crate::jsondoc::object_line(line, "jsonrpc_jsonl", "{\"ts\",\"direction\",\"server\",\"message\"}", out) else { return };
        let missing = |field: &str, what: &str| format!("jsonrpc_jsonl: field \"{field}\" missing or invalid; expected {what}");
        let Some(ts) = v.get("ts").and_then(ts_of) else {
            out.reject(&line.pos, 1, missing("ts", "an RFC 3339 string or epoch seconds"), line.bytes, None);
            return;
        };
        let direction = match v.get("direction").and_then(Value::as_str) {
            Some("client_to_server") => Direction::ClientToServer,
            Some("server_to_client") => Direction::ServerToClient,
            _ => {
                out.reject(&line.pos, 1, missing("direction", "\"client_to_server\" or \"server_to_client\""), line.bytes, Some(ts));
                return;
            }
        };
        let Some(server) = v.get("server").and_then(Value::as_str).filter(|s| !s.is_empty()) else {
            out.reject(&line.pos, 1, missing("server", "the server's configured name"), line.bytes, Some(ts));
            return;
        };
        let message = match v.get("message") {
            Some(m @ Value::Object(_)) => {
                let mut m = m.clone();
                let lossy_id = matches!(m.get("id"), Some(Value::Number(n)) if n.is_f64());
                if let Some(text) = lossy_id.then_some(()).and_then(|_| std::str::from_utf8(line.bytes).ok()).and_then(|l| crate::mcp::member_text(l, "message")) {
                    crate::mcp::keep_exact_id(&mut m, text);
                }
                m
            }
            _ => {
                out.reject(&line.pos, 1, missing("message", "the JSON-RPC message object"), line.bytes, Some(ts));
                return;
            }
        };
        let truncated = v.get("truncated").and_then(Value::as_bool).unwrap_or(false);
        out.mcp(McpEvent {
            ts,
            pos: line.pos.clone(),
            host: v.get("host").and_then(Value::as_str).map(str::to_string),
            server_name: server.to_string(),
            session_hint: v.get("session").and_then(Value::as_str).map(str::to_string),
            kind: McpEventKind::Message { direction, body: Body::Json(message), truncated },
            host_context: Default::default(),
        });
        out.account(&line.pos, 1, LineOutcome::Parsed);
    }

    fn finish(&mut self, _out: &mut dyn Emit) {}
}
