//! GitHub Copilot CLI session events (`~/.copilot/session-state/<session>/
//! events.jsonl`; VS Code Copilot Chat writes the same schema to its
//! `transcripts/<session>.jsonl`).
//!
//! JSON Lines `{type, data, id, timestamp, parentId}`: `session.start`
//! names the session (`sessionId`) and the CLI (`copilotVersion`); a tool
//! call is `tool.execution_start` (`toolCallId`, `toolName`, `arguments` as
//! an object or a JSON string) and its end `tool.execution_complete`
//! (`success`, `result.content`, `error.message`). An MCP tool carries
//! `mcpServerName` and `mcpToolName` beside the joined `toolName`
//! (`<server>-<tool>`, which alone cannot be split reliably); calls without
//! them are Copilot's own tools, counted as skipped.

use serde_json::Value;

use super::{bounded, content_blocks, tools_call_request, tools_call_response, HostMessage, KeptResult, OpenCalls, SplitName};
use crate::collect::LineOutcome;
use crate::mcp::{Direction, HostContext};
use crate::time::parse_rfc3339;
use crate::{Emit, Format, Line, Parser, Pos, SourceInfo};

/// A line of a Copilot session event log (detection).
pub fn looks_like(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with("{\"type\":\"")
        && t.contains("\"data\":")
        && ["session.", "tool.execution_", "assistant.", "user.message", "system.message"].iter().any(|k| t.starts_with(&format!("{{\"type\":\"{k}")))
}

struct OpenCall {
    server: String,
    session: Option<String>,
}

pub struct CopilotParser {
    session: Option<String>,
    version: Option<String>,
    open: OpenCalls<OpenCall>,
}

impl CopilotParser {
    pub fn new(_info: &SourceInfo) -> Self {
        CopilotParser { session: None, version: None, open: OpenCalls::default() }
    }

    fn context(&self, host: Option<(&str, &'static str)>) -> HostContext {
        HostContext {
            client_name: Some("copilot-cli".into()),
            client_version: self.version.clone(),
            host_tool_name: host.map(|(n, _)| n.to_string()),
            tool_name_split: host.map(|(_, q)| q),
            ..Default::default()
        }
    }

    /// The server and tool of an MCP tool start event.
    fn split(data: &Value) -> Option<(SplitName, &str)> {
        let joined = data.get("toolName").and_then(Value::as_str)?;
        let server = data.get("mcpServerName").and_then(Value::as_str).filter(|s| !s.is_empty())?;
        let tool = data.get("mcpToolName").and_then(Value::as_str).filter(|t| !t.is_empty()).or_else(|| joined.strip_prefix(server).and_then(|r| r.strip_prefix('-')))?;
        Some((SplitName { server: server.to_string(), tool: tool.to_string(), ambiguous: false }, joined))
    }

    fn start(&mut self, data: &Value, ts: i64, pos: &Pos, out: &mut dyn Emit) -> bool {
        let (Some(id), Some((split, joined))) = (data.get("toolCallId").and_then(Value::as_str), Self::split(data)) else { return false };
        // Arguments are an object or, in some builds, a JSON string.
        let arguments = data.get("arguments").map(|a| match a {
            Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| a.clone()),
            other => other.clone(),
        });
        let session = self.session.as_ref().map(|s| format!("{s}/{}", split.server));
        let context = self.context(Some((joined, split.quality())));
        out.mcp(HostMessage {
            ts,
            pos: Pos { pointer: Some("/data".into()), ..pos.clone() },
            server: split.server.clone(),
            session: session.clone(),
            direction: Direction::ClientToServer,
            message: tools_call_request(id, &split.tool, arguments),
            context,
        }
        .event());
        self.open.insert(id.to_string(), OpenCall { server: split.server, session });
        true
    }

    fn complete(&mut self, data: &Value, ts: i64, pos: &Pos, out: &mut dyn Emit) -> bool {
        let Some(id) = data.get("toolCallId").and_then(Value::as_str) else { return false };
        let Some(call) = self.open.remove(id) else { return false };
        let result = data.get("result");
        let content = match (result.and_then(|r| r.get("content")), data.get("error").and_then(|e| e.get("message"))) {
            (Some(c), _) => content_blocks(Some(c)),
            (None, Some(m)) => content_blocks(Some(m)),
            (None, None) => content_blocks(None),
        };
        let kept = KeptResult { content, structured: None, meta: None, is_error: data.get("success").and_then(Value::as_bool) == Some(false) };
        out.mcp(HostMessage {
            ts,
            pos: Pos { pointer: Some("/data".into()), ..pos.clone() },
            server: call.server,
            session: call.session,
            direction: Direction::ServerToClient,
            message: tools_call_response(id, kept),
            context: self.context(None),
        }
        .event());
        true
    }
}

impl Parser for CopilotParser {
    fn format(&self) -> Format {
        Format::Copilot
    }

    fn line(&mut self, line: &Line<'_>, out: &mut dyn Emit) {
        let Some(v) = crate::jsondoc::object_line(line, "copilot", "a session event", out) else { return };
        let (Some(kind), Some(data)) = (v.get("type").and_then(Value::as_str), v.get("data")) else {
            return out.reject(&line.pos, 1, "copilot: event without \"type\" and \"data\"".into(), line.bytes, None);
        };
        let Some(ts) = v.get("timestamp").and_then(Value::as_str).and_then(parse_rfc3339) else {
            return out.reject(&line.pos, 1, "copilot: event without an RFC 3339 \"timestamp\"".into(), line.bytes, None);
        };
        let outcome = match kind {
            "session.start" | "session.resume" => {
                if let Some(id) = data.get("sessionId").and_then(Value::as_str) {
                    self.session = Some(bounded(id, 128));
                }
                if let Some(ver) = data.get("copilotVersion").and_then(Value::as_str) {
                    self.version = Some(bounded(ver, 64));
                }
                LineOutcome::Skipped("copilot: session start")
            }
            "tool.execution_start" if self.start(data, ts, &line.pos, out) => LineOutcome::Parsed,
            "tool.execution_complete" if self.complete(data, ts, &line.pos, out) => LineOutcome::Parsed,
            "tool.execution_start" | "tool.execution_complete" => LineOutcome::Skipped("copilot: Copilot's own tool (no MCP server named)"),
            _ => LineOutcome::Skipped("copilot: message, turn or session event (no tool call)"),
        };
        out.account(&line.pos, 1, outcome);
    }

    fn finish(&mut self, _out: &mut dyn Emit) {}
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use mcpf_schema::Table;

    use crate::collect::Provenance;
    use crate::{parse_reader, Format, RowSink, SourceInfo, Val};

    #[derive(Default)]
    struct Calls(Vec<Vec<(&'static str, String)>>);
    impl RowSink for Calls {
        fn row(&mut self, t: Table, vals: &[Val<'_>]) {
            if t != Table::ToolCalls {
                return;
            }
            let cells = t.columns_static().iter().zip(vals).filter_map(|(c, v)| match v {
                Val::Str(Some(s)) => Some((c.name, s.to_string())),
                Val::Bool(Some(b)) => Some((c.name, b.to_string())),
                _ => None,
            });
            self.0.push(cells.collect());
        }
    }

    #[test]
    fn mcp_tools_are_named_by_their_server_and_own_tools_are_skipped() {
        let text = concat!(
            r#"{"type":"session.start","data":{"sessionId":"S1","producer":"copilot-agent","copilotVersion":"1.0.78"},"id":"e1","timestamp":"2026-08-05T20:40:13.490Z"}"#, "\n",
            r#"{"type":"tool.execution_start","data":{"toolCallId":"c1","toolName":"mail-relay-send_email","mcpServerName":"mail-relay","mcpToolName":"send_email","arguments":"{\"to\":\"a@example.com\"}"},"id":"e2","timestamp":"2026-08-05T20:40:14.000Z"}"#, "\n",
            r#"{"type":"tool.execution_start","data":{"toolCallId":"c2","toolName":"view","arguments":{"path":"x"}},"id":"e3","timestamp":"2026-08-05T20:40:14.100Z"}"#, "\n",
            r#"{"type":"tool.execution_complete","data":{"toolCallId":"c2","success":true,"result":{"content":"x"}},"id":"e4","timestamp":"2026-08-05T20:40:14.200Z"}"#, "\n",
            r#"{"type":"tool.execution_complete","data":{"toolCallId":"c1","success":false,"error":{"message":"denied"}},"id":"e5","timestamp":"2026-08-05T20:40:15.000Z"}"#, "\n",
        );
        let info = SourceInfo::new("/home/u/.copilot/session-state/S1/events.jsonl", None);
        let prov = Provenance { format: Format::Copilot, file: info.path.clone(), ingest_id: Arc::from("t") };
        let mut calls = Calls::default();
        let out = parse_reader(Box::new(std::io::Cursor::new(text.as_bytes().to_vec())), Format::Copilot, &info, prov, 0, &mut calls, None);
        assert!(out.stats.balanced());
        assert_eq!((out.stats.parsed, out.stats.skipped), (2, 3));
        assert_eq!(calls.0.len(), 1);
        let c: std::collections::BTreeMap<_, _> = calls.0[0].iter().cloned().collect();
        assert_eq!((c["session_id"].as_str(), c["server_name"].as_str(), c["tool_name"].as_str()), ("S1/mail-relay", "mail-relay", "send_email"));
        assert_eq!((c["host_tool_name"].as_str(), c["is_error"].as_str(), c["recipients_observed"].as_str()), ("mail-relay-send_email", "true", "true"));
    }
}
