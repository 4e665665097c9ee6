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
//!
//! `mcp-forensics record` writes this format with more members (see
//! `docs/recording.md`): `pid`, `http`, `redacted`, the hash chain
//! (`chain`, [`crate::chain`]), and lifecycle records with `event` instead of
//! `direction` (`start` carries the launch command: a new session).
//! Ingest follows the chain and records its state per source.

use serde_json::Value;

use crate::chain::{ChainChecker, ChainState};
use crate::collect::LineOutcome;
use crate::mcp::{Body, Direction, McpEvent, McpEventKind};
use crate::time::parse_rfc3339;
use crate::{Emit, Format, Line, Parser, SourceInfo};

/// A line of the wire-tap format: an object whose `direction` is one of the
/// tap's two values (other gateways' logs also have a `direction` key, with
/// other values, and mention `message` inside their payloads).
pub fn looks_like(line: &str) -> bool {
    let t = line.trim_start();
    if looks_like_recorder_event(t) {
        return true;
    }
    if !t.starts_with('{') || !t.contains("\"message\"") {
        return false;
    }
    let Some(at) = t.find("\"direction\"") else { return false };
    let rest = t[at + "\"direction\"".len()..].trim_start();
    let Some(rest) = rest.strip_prefix(':') else { return false };
    let rest = rest.trim_start();
    rest.starts_with("\"client_to_server\"") || rest.starts_with("\"server_to_client\"")
}

/// A lifecycle record of `mcp-forensics record` (`start`, `exit`, `stderr`,
/// `rotate`, `close` ...): an `event` and the recorder's chain.
fn looks_like_recorder_event(t: &str) -> bool {
    t.starts_with("{\"ts\":") && t.contains(",\"event\":\"") && t.contains(",\"chain\":{\"id\":\"")
}

/// The wire-log parser. It follows the hash chain of recorded traces (see
/// [`crate::chain`]) alongside the messages.
pub struct JsonRpcJsonlParser {
    chain: ChainChecker,
    chained: bool,
}

impl JsonRpcJsonlParser {
    pub fn new(_info: &SourceInfo) -> Self {
        JsonRpcJsonlParser { chain: ChainChecker::new(), chained: false }
    }

    fn follow_chain(&mut self, line: &Line<'_>, record: Option<&Value>) {
        match record {
            Some(v) if v.get("chain").is_some() || self.chained => {
                self.chained = true;
                self.chain.record(line.pos.line, line.bytes, v);
            }
            Some(_) => {}
            None if self.chained => self.chain.not_a_record(line.pos.line),
            None => {}
        }
    }

    /// A recorder lifecycle record: `start` opens a session with its launch
    /// command; the others are accounted as skipped, by kind.
    fn recorder_event(&mut self, line: &Line<'_>, v: &Value, event: &str, out: &mut dyn Emit) {
        let ts = v.get("ts").and_then(ts_of);
        let server = v.get("server").and_then(Value::as_str).filter(|s| !s.is_empty());
        match (event, ts, server) {
            // An HTTP proxy's start launches nothing: its sessions are the
            // Mcp-Session-Ids of its messages.
            ("start", Some(_), Some(_)) if v.get("command").is_none() => out.account(&line.pos, 1, LineOutcome::Skipped("recorder: start of an HTTP proxy run")),
            ("start", Some(ts), Some(server)) => {
                let argv: Vec<String> = v.get("command").and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect()).unwrap_or_default();
                out.mcp(wire_event(line, v, ts, server, McpEventKind::Launch { command: argv.first().cloned(), args: argv.get(1..).map(<[String]>::to_vec).unwrap_or_default() }));
                out.account(&line.pos, 1, LineOutcome::Parsed);
            }
            ("start", _, _) => out.reject(&line.pos, 1, "jsonrpc_jsonl: recorder start record without ts or server".into(), line.bytes, ts),
            _ => out.account(&line.pos, 1, LineOutcome::Skipped(skip_reason(event))),
        }
    }

    /// The chain as this source showed it (None: not a recorded trace).
    pub fn chain_state(&self) -> Option<&ChainState> {
        self.chained.then(|| self.chain.state())
    }
}

/// An event of a wire-log line: its time, server and the optional `host`
/// and `session` members.
fn wire_event(line: &Line<'_>, v: &Value, ts: i64, server: &str, kind: McpEventKind) -> McpEvent {
    McpEvent {
        ts,
        pos: line.pos.clone(),
        host: v.get("host").and_then(Value::as_str).map(str::to_string),
        server_name: server.to_string(),
        session_hint: v.get("session").and_then(Value::as_str).map(str::to_string),
        kind,
        host_context: Default::default(),
    }
}

fn skip_reason(event: &str) -> &'static str {
    match event {
        "stderr" => "recorder: server stderr line",
        "exit" => "recorder: server exit",
        "package" => "recorder: resolved package",
        "rotate" | "close" | "checkpoint" => "recorder: chain bookkeeping (rotate, close, checkpoint)",
        "lost" => "recorder: records it could not write (see the record)",
        "http" => "recorder: HTTP exchange without a JSON-RPC message",
        _ => "recorder: other lifecycle record",
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
        let parsed = crate::jsondoc::object_line(line, "jsonrpc_jsonl", "{\"ts\",\"direction\",\"server\",\"message\"}", out);
        let blank = line.bytes.iter().all(u8::is_ascii_whitespace);
        if !blank {
            self.follow_chain(line, parsed.as_ref());
        }
        let Some(v) = parsed else { return };
        if let Some(event) = v.get("event").and_then(Value::as_str).filter(|_| v.get("direction").is_none()) {
            let event = event.to_string();
            self.recorder_event(line, &v, &event, out);
            return;
        }
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
                // The recorder keeps what it could not embed as `raw` and says why.
                let reason = match (v.get("invalid").and_then(Value::as_str), v.get("size").and_then(Value::as_u64)) {
                    (Some(why), _) => format!("jsonrpc_jsonl: the recorder saw a line that is not a JSON-RPC message ({why}); it is kept as sent in raw"),
                    (None, Some(size)) if v.get("truncated").and_then(Value::as_bool) == Some(true) => {
                        format!("jsonrpc_jsonl: a {size}-byte message the recorder kept only the head of (raw) with its sha256")
                    }
                    _ => missing("message", "the JSON-RPC message object"),
                };
                out.reject(&line.pos, 1, reason, line.bytes, Some(ts));
                return;
            }
        };
        let truncated = v.get("truncated").and_then(Value::as_bool).unwrap_or(false);
        out.mcp(wire_event(line, &v, ts, server, McpEventKind::Message { direction, body: Body::Json(message), truncated }));
        out.account(&line.pos, 1, LineOutcome::Parsed);
    }

    fn finish(&mut self, _out: &mut dyn Emit) {
        self.chain.finish();
    }

    fn chain_state(&self) -> Option<serde_json::Value> {
        JsonRpcJsonlParser::chain_state(self).map(ChainState::to_json)
    }
}
