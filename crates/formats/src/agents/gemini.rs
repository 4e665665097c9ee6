//! Gemini CLI: chat recordings (`~/.gemini/tmp/<project>/chats/`: one
//! `session-*.json` document `{sessionId, messages:[…]}` before 2026-04, then
//! JSON Lines of a metadata line and `MessageRecord`s) and the
//! `gemini -o stream-json` output (`init`, `tool_use`, `tool_result`, …;
//! also inside a console capture).
//!
//! A call is a `toolCalls[]` entry of a message (`id`, `name`, `args`,
//! `result`, `status`, `timestamp`) or a stream-json `tool_use`
//! (`tool_id`, `tool_name`, `parameters`) with its `tool_result` (`status`,
//! `output`). MCP tools are named `mcp_<server>_<tool>` since 2026-03
//! (split at the first `_` after `mcp_`, ambiguous when the server name
//! holds one) and `<server>__<tool>` before; other names are Gemini CLI's
//! own tools. A message re-appended as it updates (or rewound by
//! `$rewindTo`: it did execute) gives its call once.

use serde_json::Value;

use super::{bounded, content_blocks, split_prefixed, tools_call_request, tools_call_response, HostMessage, KeptResult, OpenCalls, SplitName};
use crate::collect::LineOutcome;
use crate::jsondoc::{Assembler, Document};
use crate::mcp::{Direction, HostContext};
use crate::time::parse_rfc3339;
use crate::{Emit, Format, Line, Parser, Pos, SourceInfo};

/// A line of Gemini CLI stream-json output or a JSON Lines chat recording (detection).
pub fn looks_like(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with("{\"type\":\"init\"") && t.contains("\"session_id\"")
        || (t.starts_with("{\"type\":\"tool_use\"") || t.starts_with("{\"type\":\"tool_result\"")) && t.contains("\"tool_id\"")
        || t.starts_with("{\"sessionId\"") && t.contains("\"projectHash\"")
}

/// A legacy chat recording document (detection on the head).
pub fn looks_like_document(head: &str) -> bool {
    let t = head.trim_start();
    t.starts_with('{') && t[1..].trim_start().starts_with("\"sessionId\"") && head.contains("\"projectHash\"") && head.contains("\"messages\"")
}

/// Gemini CLI's MCP tool names.
fn split_name(name: &str) -> Option<SplitName> {
    split_prefixed(name, "mcp_", "_").or_else(|| split_prefixed(name, "", "__"))
}

struct Call {
    server: String,
    session: Option<String>,
    answered: bool,
}

pub struct GeminiParser {
    doc: Assembler,
    session: Option<String>,
    calls: OpenCalls<Call>,
}

impl GeminiParser {
    pub fn new(_info: &SourceInfo) -> Self {
        GeminiParser { doc: Assembler::default(), session: None, calls: OpenCalls::default() }
    }

    fn context(host: Option<(&str, &'static str)>) -> HostContext {
        HostContext { client_name: Some("gemini-cli".into()), host_tool_name: host.map(|(n, _)| n.to_string()), tool_name_split: host.map(|(_, q)| q), ..Default::default() }
    }

    /// The request of a call seen for the first time. Returns whether it was emitted.
    fn request(&mut self, id: &str, name: &str, args: Option<&Value>, ts: i64, pos: &Pos, out: &mut dyn Emit) -> bool {
        if self.calls.get(id).is_some() {
            return false;
        }
        let Some(split) = split_name(name) else { return false };
        let session = self.session.as_ref().map(|s| format!("{s}/{}", split.server));
        out.mcp(HostMessage { ts, pos: pos.clone(), server: split.server.clone(), session: session.clone(), direction: Direction::ClientToServer, message: tools_call_request(id, &split.tool, args.cloned()), context: Self::context(Some((name, split.quality()))) }.event());
        self.calls.insert(id.to_string(), Call { server: split.server, session, answered: false });
        true
    }

    /// The response of an open call not answered yet.
    fn response(&mut self, id: &str, output: Option<&Value>, failed: bool, ts: i64, pos: &Pos, out: &mut dyn Emit) -> bool {
        let Some(call) = self.calls.get_mut(id).filter(|c| !c.answered) else { return false };
        call.answered = true;
        let (server, session) = (call.server.clone(), call.session.clone());
        let kept = KeptResult { content: content_blocks(output), is_error: failed, ..Default::default() };
        out.mcp(HostMessage { ts, pos: pos.clone(), server, session, direction: Direction::ServerToClient, message: tools_call_response(id, kept), context: Self::context(None) }.event());
        true
    }

    /// The `toolCalls` of one message record.
    fn message(&mut self, m: &Value, base: &str, pos: &Pos, out: &mut dyn Emit) -> usize {
        let mut n = 0;
        let msg_ts = m.get("timestamp").and_then(Value::as_str).and_then(parse_rfc3339);
        for (j, c) in m.get("toolCalls").and_then(Value::as_array).into_iter().flatten().enumerate() {
            let (Some(id), Some(name)) = (c.get("id").and_then(Value::as_str), c.get("name").and_then(Value::as_str)) else { continue };
            // A call's own `timestamp` is when it finished (Gemini CLI 0.61
            // writes the record once the call is done); the model message
            // that asked for it is when it was requested.
            let done_ts = c.get("timestamp").and_then(Value::as_str).and_then(parse_rfc3339);
            let Some(end) = done_ts.or(msg_ts) else { continue };
            let start = msg_ts.filter(|t| *t <= end).unwrap_or(end);
            let at = Pos { pointer: Some(format!("{base}/toolCalls/{j}")), ..pos.clone() };
            let mut emitted = self.request(id, name, c.get("args"), start, &at, out);
            let status = c.get("status").and_then(Value::as_str).unwrap_or("");
            if matches!(status, "success" | "error" | "cancelled") {
                emitted |= self.response(id, c.get("resultDisplay").or_else(|| c.get("result")), status != "success", end, &at, out);
            }
            n += usize::from(emitted);
        }
        n
    }

    fn record(&mut self, d: Document<'_>, out: &mut dyn Emit) {
        let v: Value = match serde_json::from_str(d.text) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => return out.reject(&d.pos, d.lines, "gemini_cli: JSON that is not an object".into(), d.text.as_bytes(), None),
            Err(e) => return out.reject(&d.pos, d.lines, format!("gemini_cli: invalid JSON ({e})"), d.text.as_bytes(), None),
        };
        if let Some(id) = v.get("sessionId").or_else(|| v.get("session_id")).and_then(Value::as_str) {
            self.session = Some(bounded(id, 128));
        }
        let ts = v.get("timestamp").and_then(Value::as_str).and_then(parse_rfc3339);
        let s = |k: &str| v.get(k).and_then(Value::as_str);
        let emitted = match (s("type"), ts) {
            (Some("tool_use"), Some(ts)) => match (s("tool_id"), s("tool_name")) {
                (Some(id), Some(name)) => usize::from(self.request(id, name, v.get("parameters"), ts, &Pos { pointer: Some(String::new()), ..d.pos.clone() }, out)),
                _ => 0,
            },
            (Some("tool_result"), Some(ts)) => match s("tool_id") {
                Some(id) => usize::from(self.response(id, v.get("output").or_else(|| v.get("error")), s("status") != Some("success"), ts, &Pos { pointer: Some(String::new()), ..d.pos.clone() }, out)),
                None => 0,
            },
            _ => match v.get("messages").and_then(Value::as_array) {
                // The legacy document: every message's calls.
                Some(msgs) => msgs.iter().enumerate().map(|(i, m)| self.message(m, &format!("/messages/{i}"), &d.pos, out)).sum(),
                None => self.message(&v, "", &d.pos, out),
            },
        };
        let outcome = if emitted > 0 { LineOutcome::Parsed } else { LineOutcome::Skipped("gemini_cli: record without a new MCP tool call or result (messages, Gemini CLI's own tools, metadata)") };
        out.account(&d.pos, d.lines, outcome);
    }
}

impl Parser for GeminiParser {
    fn format(&self) -> Format {
        Format::GeminiCli
    }

    fn line(&mut self, line: &Line<'_>, out: &mut dyn Emit) {
        // A console capture holds text between the stream-json records.
        let t = line.bytes.trim_ascii_start();
        // `[SessionSummary] …` is text; a JSON array opens with a value.
        let array = t.first() == Some(&b'[') && t[1..].trim_ascii_start().first().is_none_or(|c| matches!(c, b'{' | b'[' | b']' | b'"'));
        if !t.starts_with(b"{") && !array && !t.is_empty() && self.doc.is_idle() {
            return out.account(&line.pos, 1, LineOutcome::Skipped("gemini_cli: console text (not a JSON record)"));
        }
        // The assembler is taken out while its documents are read, so each
        // is handed to `record` without a copy.
        let mut doc = std::mem::take(&mut self.doc);
        doc.line(line, "gemini_cli", out, &mut |d, out| self.record(d, out));
        self.doc = doc;
    }

    fn finish(&mut self, out: &mut dyn Emit) {
        self.doc.finish("gemini_cli", out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mcp_names_split_and_own_tools_do_not() {
        let s = split_name("mcp_mail_send_email").unwrap();
        assert_eq!((s.server.as_str(), s.tool.as_str(), s.quality()), ("mail", "send_email", "ambiguous"));
        let s = split_name("mail__send").unwrap();
        assert_eq!((s.server.as_str(), s.tool.as_str(), s.quality()), ("mail", "send", "exact"));
        for own in ["run_shell_command", "read_file", "google_web_search"] {
            assert!(split_name(own).is_none(), "{own}");
        }
    }
}
