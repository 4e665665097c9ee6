//! Bare JSON-RPC: MCP messages as sent, with no envelope: one message per
//! line (a tap that writes the stream as is, `tee` on a stdio pipe), a
//! JSON-RPC batch (2025-03-26) as one array, or one pretty-printed message
//! per file (the specification's examples).
//!
//! The record holds neither time, direction, server nor session:
//! - time: none is written, so the file's modification time (every message
//!   of the file then shares it, in file order);
//! - direction: from the message: a request or notification by its method
//!   (the server sends `sampling/createMessage`, `elicitation/create`,
//!   `roots/list`, `notifications/message`, `notifications/*/list_changed`,
//!   …; the client everything else), a response opposite to the request of
//!   its id, else from the server;
//! - server: the file's name (its stem), until a message names the server
//!   (`serverInfo` on `initialize` / `server/discover` results, or the
//!   2026-07-28 `_meta["io.modelcontextprotocol/serverInfo"]`);
//! - session: none (the 2026-07-28 protocol has none): requests and
//!   responses pair by the file, the server and the JSON-RPC id
//!   (`mcp_sessions.session_source` = `connection`).

use std::collections::HashSet;
use std::path::Path;

use serde_json::Value;

use crate::collect::LineOutcome;
use crate::jsondoc::{Assembler, Document};
use crate::mcp::{Body, Direction, HostContext, McpEvent, McpEventKind};
use crate::{Emit, Format, Line, Parser, Pos, SourceInfo};

/// Ids of requests remembered to give their responses a direction.
const MAX_OPEN_IDS: usize = 100_000;

/// A line that is a JSON-RPC message or batch by itself (detection).
pub fn looks_like(line: &str) -> bool {
    let t = line.trim_start();
    let t = t.strip_prefix('[').map(str::trim_start).unwrap_or(t);
    t.starts_with("{\"jsonrpc\":\"2.0\"") || t.starts_with("{\"jsonrpc\": \"2.0\"")
}

/// A pretty-printed message: `{` then `"jsonrpc": "2.0"` as its first member.
pub fn looks_like_document(head: &str) -> bool {
    let t = head.trim_start();
    let t = t.strip_prefix('[').map(str::trim_start).unwrap_or(t);
    let Some(body) = t.strip_prefix('{') else { return false };
    let b = body.trim_start();
    b.starts_with("\"jsonrpc\"") && b["\"jsonrpc\"".len()..].trim_start().strip_prefix(':').is_some_and(|r| r.trim_start().starts_with("\"2.0\""))
}

/// Methods the server sends (requests and notifications); every other
/// method is the client's.
fn server_sends(method: &str) -> bool {
    matches!(method, "sampling/createMessage" | "elicitation/create" | "roots/list" | "notifications/message" | "notifications/resources/updated" | "notifications/elicitation/complete")
        || method.starts_with("notifications/") && method.ends_with("/list_changed") && method != "notifications/roots/list_changed"
}

pub struct BareJsonRpcParser {
    doc: Assembler,
    server: String,
    ts: Option<i64>,
    /// Open request ids by direction (true: the client sent it).
    open: HashSet<(bool, String)>,
}

impl BareJsonRpcParser {
    pub fn new(info: &SourceInfo) -> Self {
        let stem = Path::new(info.path.as_ref()).file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        let server = crate::agents::bounded(stem.trim_end_matches(".jsonl").trim_end_matches(".json"), 128);
        BareJsonRpcParser { doc: Assembler::default(), server: if server.is_empty() { "unknown".into() } else { server }, ts: info.mtime_unix.map(|s| s * 1_000_000), open: HashSet::new() }
    }

    fn direction(&mut self, m: &serde_json::Map<String, Value>) -> Direction {
        let id = m.get("id").filter(|v| !v.is_null()).map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()));
        match (m.get("method").and_then(Value::as_str), id) {
            (Some(method), id) => {
                let from_client = !server_sends(method);
                if let Some(id) = id {
                    if self.open.len() >= MAX_OPEN_IDS {
                        self.open.clear();
                    }
                    self.open.insert((from_client, id));
                }
                if from_client {
                    Direction::ClientToServer
                } else {
                    Direction::ServerToClient
                }
            }
            // A response travels against its request.
            (None, Some(id)) if self.open.remove(&(false, id.clone())) => Direction::ClientToServer,
            (None, Some(id)) => {
                self.open.remove(&(true, id));
                Direction::ServerToClient
            }
            (None, None) => Direction::ServerToClient,
        }
    }

    fn record(&mut self, d: Document<'_>, out: &mut dyn Emit) {
        let v: Value = match serde_json::from_str(d.text) {
            Ok(v) => v,
            Err(e) => return out.reject(&d.pos, d.lines, format!("jsonrpc: invalid JSON ({e})"), d.text.as_bytes(), None),
        };
        let Some(ts) = self.ts else {
            return out.reject(&d.pos, d.lines, "jsonrpc: bare messages carry no time, and the file has no modification time".into(), d.text.as_bytes(), None);
        };
        // A batch is an array of messages; each keeps its index as pointer.
        let messages: Vec<(Option<String>, Value)> = match v {
            Value::Array(items) => items.into_iter().enumerate().map(|(i, m)| (Some(format!("/{i}")), m)).collect(),
            other => vec![(None, other)],
        };
        let mut n = 0;
        for (pointer, m) in messages {
            let Some(obj) = m.as_object().filter(|o| o.get("jsonrpc").and_then(Value::as_str) == Some("2.0")) else { continue };
            if !(obj.contains_key("method") || obj.contains_key("result") || obj.contains_key("error")) {
                continue;
            }
            let direction = self.direction(obj);
            out.mcp(McpEvent {
                ts,
                pos: Pos { pointer, ..d.pos.clone() },
                host: None,
                server_name: self.server.clone(),
                session_hint: None,
                kind: McpEventKind::Message { direction, body: Body::Json(m), truncated: false },
                host_context: HostContext::default(),
            });
            n += 1;
        }
        if n > 0 {
            out.account(&d.pos, d.lines, LineOutcome::Parsed);
        } else {
            out.reject(&d.pos, d.lines, "jsonrpc: JSON that is not a JSON-RPC 2.0 message (no \"jsonrpc\":\"2.0\" with a method, result or error)".into(), d.text.as_bytes(), None);
        }
    }
}

impl Parser for BareJsonRpcParser {
    fn format(&self) -> Format {
        Format::JsonRpc
    }

    fn line(&mut self, line: &Line<'_>, out: &mut dyn Emit) {
        // The assembler is taken out while its documents are read, so each
        // is handed to `record` without a copy.
        let mut doc = std::mem::take(&mut self.doc);
        doc.line(line, "jsonrpc", out, &mut |d, out| self.record(d, out));
        self.doc = doc;
    }

    fn finish(&mut self, out: &mut dyn Emit) {
        self.doc.finish("jsonrpc", out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directions_follow_the_method_and_the_request() {
        let mut p = BareJsonRpcParser { doc: Assembler::default(), server: "s".into(), ts: Some(1), open: HashSet::new() };
        let obj = |t: &str| serde_json::from_str::<Value>(t).unwrap().as_object().unwrap().clone();
        assert_eq!(p.direction(&obj(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#)), Direction::ClientToServer);
        assert_eq!(p.direction(&obj(r#"{"jsonrpc":"2.0","id":"s1","method":"sampling/createMessage"}"#)), Direction::ServerToClient);
        assert_eq!(p.direction(&obj(r#"{"jsonrpc":"2.0","id":"s1","result":{}}"#)), Direction::ClientToServer, "the client answers the server's request");
        assert_eq!(p.direction(&obj(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#)), Direction::ServerToClient);
        assert_eq!(p.direction(&obj(r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#)), Direction::ServerToClient);
        assert_eq!(p.direction(&obj(r#"{"jsonrpc":"2.0","method":"notifications/roots/list_changed"}"#)), Direction::ClientToServer);
        assert_eq!(p.direction(&obj(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)), Direction::ClientToServer);
        assert!(looks_like(r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#) && looks_like_document("{\n  \"jsonrpc\": \"2.0\",\n  \"id\": 1"));
        assert!(!looks_like(r#"{"ts":1,"message":{"jsonrpc":"2.0"}}"#));
    }
}
