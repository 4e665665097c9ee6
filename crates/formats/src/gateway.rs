//! MCP gateway audit logs: the GitHub Agentic Workflows gateway ("MCPG")
//! `mcp-logs/rpc-messages.jsonl`, one JSON-RPC message per line with the
//! gateway's envelope:
//!
//! ```json
//! {"timestamp":"2026-02-13T12:37:36.022577384Z","direction":"OUT","type":"REQUEST","server_id":"github",
//!  "method":"tools/call","payload":{"jsonrpc":"2.0","method":"tools/call","params":{…}}}
//! {"timestamp":"…","direction":"IN","type":"RESPONSE","server_id":"github","payload":{"id":1,"jsonrpc":"2.0","result":{…}}}
//! ```
//! and the v2 schema (2026-08), where `"event":"rpc_request"|"rpc_response"`
//! and `"_schema":"rpc-message/v2"` replace `type`.
//!
//! `OUT` is gateway to server (the gateway is the client), `IN` the
//! server's answer. Requests are logged without their JSON-RPC id and the
//! ids on responses do not identify the request (every response of one
//! server can say `"id":1`): requests and responses pair per `server_id` in
//! order, first request with first response. The pairing id each gets is
//! `gw-<server>-<n>`; the workflow run (the file) is the session.

use std::collections::{HashMap, VecDeque};

use serde_json::Value;

use crate::collect::LineOutcome;
use crate::mcp::{Body, Direction, HostContext, McpEvent, McpEventKind};
use crate::time::parse_rfc3339;
use crate::{Emit, Format, Line, Parser, Pos, SourceInfo};

/// Requests per server waiting for their responses; past it the oldest is
/// forgotten (answered by nothing).
const MAX_OPEN_PER_SERVER: usize = 10_000;
/// Servers tracked at once.
const MAX_SERVERS: usize = 10_000;

/// A line of a gateway's RPC message log (detection).
pub fn looks_like(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with('{') && t.contains("\"server_id\"") && t.contains("\"payload\"") && (t.contains("\"direction\":\"OUT\"") || t.contains("\"direction\":\"IN\"") || t.contains("\"_schema\":\"rpc-message/"))
}

#[derive(Default)]
pub struct GatewayParser {
    /// Per server: the pairing ids of requests not answered yet, oldest first.
    open: HashMap<String, VecDeque<String>>,
    /// Requests seen per server (the `n` of `gw-<server>-<n>`).
    seq: HashMap<String, u64>,
}

impl GatewayParser {
    pub fn new(_info: &SourceInfo) -> Self {
        GatewayParser::default()
    }

    /// Give a request its pairing id (requests that carry an id keep it).
    fn request_id(&mut self, server: &str, payload: &mut Value) -> Option<String> {
        if payload.get("id").is_some_and(|id| !id.is_null()) || payload.get("method").is_none() {
            return None;
        }
        if !self.open.contains_key(server) && self.open.len() >= MAX_SERVERS {
            return None;
        }
        let n = self.seq.entry(server.to_string()).or_default();
        *n += 1;
        let id = format!("gw-{server}-{n}");
        let q = self.open.entry(server.to_string()).or_default();
        q.push_back(id.clone());
        if q.len() > MAX_OPEN_PER_SERVER {
            q.pop_front();
        }
        payload["id"] = Value::String(id.clone());
        Some(id)
    }

    /// A response takes the pairing id of its server's oldest open request.
    fn response_id(&mut self, server: &str, payload: &mut Value) {
        if let Some(id) = self.open.get_mut(server).and_then(VecDeque::pop_front) {
            payload["id"] = Value::String(id);
        }
    }
}

impl Parser for GatewayParser {
    fn format(&self) -> Format {
        Format::McpGateway
    }

    fn line(&mut self, line: &Line<'_>, out: &mut dyn Emit) {
        let Some(v) = crate::jsondoc::object_line(line, "mcp_gateway", "a gateway RPC message record", out) else { return };
        let s = |k: &str| v.get(k).and_then(Value::as_str);
        let Some(ts) = s("timestamp").and_then(parse_rfc3339) else {
            return out.reject(&line.pos, 1, "mcp_gateway: \"timestamp\" missing or not RFC 3339".into(), line.bytes, None);
        };
        let Some(server) = s("server_id").filter(|x| !x.is_empty()).map(|x| crate::agents::bounded(x, 128)) else {
            return out.reject(&line.pos, 1, "mcp_gateway: \"server_id\" missing".into(), line.bytes, None);
        };
        let Some(mut payload) = v.get("payload").filter(|p| p.is_object()).cloned() else {
            return out.reject(&line.pos, 1, "mcp_gateway: \"payload\" missing or not a JSON-RPC object".into(), line.bytes, None);
        };
        let kind = s("type").or_else(|| s("event")).unwrap_or("");
        let is_request = matches!(kind, "REQUEST" | "rpc_request" | "NOTIFICATION" | "rpc_notification") || payload.get("method").is_some();
        // OUT: the gateway (client) to the server; IN: back.
        let direction = match s("direction") {
            Some("IN") => Direction::ServerToClient,
            Some("OUT") => Direction::ClientToServer,
            _ if is_request => Direction::ClientToServer,
            _ => Direction::ServerToClient,
        };
        if is_request && direction == Direction::ClientToServer {
            self.request_id(&server, &mut payload);
        } else if !is_request {
            self.response_id(&server, &mut payload);
        }
        out.mcp(McpEvent {
            ts,
            pos: Pos { pointer: Some("/payload".into()), ..line.pos.clone() },
            host: None,
            server_name: server,
            session_hint: None,
            kind: McpEventKind::Message { direction, body: Body::Json(payload), truncated: false },
            host_context: HostContext { client_name: Some("gh-aw-mcp-gateway".into()), ..Default::default() },
        });
        out.account(&line.pos, 1, LineOutcome::Parsed);
    }

    fn finish(&mut self, _out: &mut dyn Emit) {}
}
