//! OpenAI Codex CLI: session rollouts (`~/.codex/sessions/YYYY/MM/DD/
//! rollout-<ts>-<uuid>.jsonl`, rewritten cold as `.jsonl.zst`, which the
//! reader decompresses) and the event stream of `codex exec --json` (also
//! inside a console capture, whose other lines are text).
//!
//! Rollouts are JSON Lines `{timestamp, ordinal?, type, payload}`; the first
//! line, `session_meta`, names the session (`id`) and the CLI
//! (`cli_version`). An MCP call appears up to three times, and becomes one
//! request and one response:
//! - `response_item` `function_call`: what the model asked, with the server
//!   in `namespace` (`mcp__<server>`, newer builds) or in a flat name
//!   (`mcp__<server>__<tool>`, `<server>__<tool>`), arguments as a JSON
//!   string, and the `call_id`: the request.
//! - `event_msg` `item_completed` with an `McpToolCall` item (0.16x), or
//!   `mcp_tool_call_end` with `invocation{server,tool,arguments}` and a Rust
//!   `Result` (`{"Ok":CallToolResult}` / `{"Err":"…"}`): the response, with
//!   the whole CallToolResult; also the request when no `function_call`
//!   named it.
//! - `response_item` `function_call_output`: the text the model got back;
//!   the response only when no event gave it first.
//!
//! Rollouts from before autumn 2025 open with a bare `{id, timestamp,
//! originator, cli_version}` head, mark state with `{"record_type":"state"}`
//! and hold the response items themselves, unstamped.
//!
//! `exec --json` lines are `thread.started{thread_id}`, `item.started` /
//! `item.completed` with an `mcp_tool_call` item (`server`, `tool`,
//! `arguments`, `result{content, structured_content}`, `error`, `status`),
//! unstamped; older builds wrapped events as `{"id", "msg":{…}}`.
//!
//! The MCP session is the Codex thread with that server: `<thread>/<server>`.

use serde_json::Value;

use super::{bounded, content_blocks, split_claude_code, split_prefixed, tools_call_request, tools_call_response, HostMessage, KeptResult, OpenCalls, SplitName};
use crate::collect::LineOutcome;
use crate::mcp::{Direction, HostContext};
use crate::time::parse_rfc3339;
use crate::{Emit, Format, Line, Parser, Pos, SourceInfo};

/// Rollout line types (the `type` beside `payload`).
const ROLLOUT_TYPES: [&str; 8] = ["session_meta", "response_item", "event_msg", "turn_context", "compacted", "world_state", "token_usage_record", "additional_tools"];

/// A line of a Codex rollout or `exec --json` stream (detection).
pub fn looks_like(line: &str) -> bool {
    let t = line.trim_start();
    if !t.starts_with('{') {
        return false;
    }
    let rollout = t.contains("\"payload\"") && ROLLOUT_TYPES.iter().any(|k| t.contains(&format!("\"type\":\"{k}\"")));
    let legacy = t.contains("\"originator\":\"codex_") || t.starts_with("{\"record_type\":\"state\"");
    let exec = ["thread.started", "turn.started", "turn.completed", "item.started", "item.completed", "item.updated"]
        .iter()
        .any(|k| t.starts_with(&format!("{{\"type\":\"{k}\"")));
    let exec_legacy = t.starts_with("{\"id\":") && t.contains("\"msg\":{\"type\":");
    rollout || legacy || exec || exec_legacy
}

/// Where a call's server and tool came from.
struct Named {
    split: SplitName,
    /// The host's own name of the tool (`mcp__mail__send_email`).
    host_name: String,
}

/// The server and tool of a `function_call` item, when it is an MCP call.
fn function_call_name(item: &Value) -> Option<Named> {
    let name = item.get("name").and_then(Value::as_str)?;
    match item.get("namespace").and_then(Value::as_str) {
        // Newer builds: the tool in `name`, the server in the namespace.
        Some(ns) => {
            let server = ns.strip_prefix("mcp__")?.trim_end_matches('_');
            (!server.is_empty() && !name.is_empty()).then(|| Named {
                split: SplitName { server: server.to_string(), tool: name.to_string(), ambiguous: false },
                host_name: format!("{ns}__{name}"),
            })
        }
        // Older builds: one flat name; only MCP tools hold `__`.
        None => split_claude_code(name).or_else(|| split_prefixed(name, "", "__")).map(|split| Named { split, host_name: name.to_string() }),
    }
}

/// An MCP call waiting for its result.
#[derive(Debug)]
struct OpenCall {
    server: String,
    session: Option<String>,
    /// An event or output already gave the response.
    answered: bool,
}

/// What a record says of one MCP call.
struct CallRecord<'a> {
    id: &'a str,
    named: Named,
    arguments: Option<Value>,
    /// The response, when the record has one.
    result: Option<KeptResult<'a>>,
    pointer: String,
}

pub struct CodexParser {
    mtime_micros: Option<i64>,
    last_ts: Option<i64>,
    /// The Codex thread (session) id.
    thread: Option<String>,
    version: Option<String>,
    open: OpenCalls<OpenCall>,
}

impl CodexParser {
    pub fn new(info: &SourceInfo) -> Self {
        CodexParser { mtime_micros: info.mtime_unix.map(|s| s * 1_000_000), last_ts: None, thread: None, version: None, open: OpenCalls::default() }
    }

    fn context(&self, named: Option<&Named>) -> HostContext {
        HostContext {
            client_name: Some("codex".into()),
            client_version: self.version.clone(),
            host_tool_name: named.map(|n| n.host_name.clone()),
            tool_name_split: named.map(|n| n.split.quality()),
            ..Default::default()
        }
    }

    fn session(&self, server: &str) -> Option<String> {
        self.thread.as_ref().map(|t| format!("{t}/{server}"))
    }

    fn message(&self, ts: i64, pos: &Pos, pointer: &str, server: &str, session: Option<String>, direction: Direction, message: Value, context: HostContext) -> HostMessage {
        HostMessage { ts, pos: Pos { pointer: Some(pointer.to_string()), ..pos.clone() }, server: server.to_string(), session, direction, message, context }
    }

    /// A call record: the request unless one was already emitted for its
    /// id, then the response if it has one and none was given. Returns
    /// whether it emitted anything.
    fn call(&mut self, rec: CallRecord<'_>, ts: i64, pos: &Pos, out: &mut dyn Emit) -> bool {
        let mut emitted = false;
        if self.open.get(rec.id).is_none() {
            let session = self.session(&rec.named.split.server);
            let request = tools_call_request(rec.id, &rec.named.split.tool, rec.arguments);
            let context = self.context(Some(&rec.named));
            out.mcp(self.message(ts, pos, &rec.pointer, &rec.named.split.server, session.clone(), Direction::ClientToServer, request, context).event());
            self.open.insert(rec.id.to_string(), OpenCall { server: rec.named.split.server.clone(), session, answered: false });
            emitted = true;
        }
        if let Some(result) = rec.result {
            emitted |= self.answer(rec.id, result, ts, pos, &rec.pointer, out);
        }
        emitted
    }

    /// The response to an open call, unless it was answered already.
    fn answer(&mut self, id: &str, result: KeptResult<'_>, ts: i64, pos: &Pos, pointer: &str, out: &mut dyn Emit) -> bool {
        let Some(call) = self.open.get(id).filter(|c| !c.answered) else { return false };
        let (server, session) = (call.server.clone(), call.session.clone());
        let context = self.context(None);
        out.mcp(self.message(ts, pos, pointer, &server, session, Direction::ServerToClient, tools_call_response(id, result), context).event());
        if let Some(c) = self.open.get_mut(id) {
            c.answered = true;
        }
        true
    }

    /// One rollout or exec item; `pointer` is where the item sits in the line.
    fn item(&mut self, item: &Value, pointer: &str, ts: i64, pos: &Pos, out: &mut dyn Emit) -> LineOutcome {
        let kind = item.get("type").and_then(Value::as_str).unwrap_or("");
        let outcome = match kind {
            "function_call" => function_call(item, pointer).map(|rec| self.call(rec, ts, pos, out)),
            "function_call_output" => self.function_output(item, pointer, ts, pos, out),
            "McpToolCall" | "mcp_tool_call" => tool_call_item(item, pointer).map(|rec| self.call(rec, ts, pos, out)),
            "mcp_tool_call_end" | "mcp_tool_call_begin" => invocation_event(item, pointer).map(|rec| self.call(rec, ts, pos, out)),
            _ => None,
        };
        match outcome {
            Some(true) => LineOutcome::Parsed,
            Some(false) => LineOutcome::Skipped("codex: MCP call already recorded by an earlier line (request, event or output)"),
            None => LineOutcome::Skipped(skip_reason(kind)),
        }
    }

    fn function_output(&mut self, item: &Value, pointer: &str, ts: i64, pos: &Pos, out: &mut dyn Emit) -> Option<bool> {
        let id = item.get("call_id").and_then(Value::as_str)?;
        self.open.get(id)?;
        let (content, is_error) = match item.get("output") {
            // Older builds: {content, success}.
            Some(Value::Object(o)) => (content_blocks(o.get("content")), o.get("success").and_then(Value::as_bool) == Some(false)),
            Some(Value::Array(parts)) => (Value::Array(parts.iter().map(input_text_block).collect()), false),
            other => (content_blocks(other), false),
        };
        Some(self.answer(id, KeptResult { content, structured: None, meta: None, is_error }, ts, pos, pointer, out))
    }

    /// A rollout line: `{timestamp, type, payload}`.
    fn rollout_line(&mut self, kind: &str, payload: &Value, ts: i64, pos: &Pos, out: &mut dyn Emit) -> LineOutcome {
        match kind {
            "session_meta" => {
                self.head(payload);
                LineOutcome::Skipped("codex: session metadata")
            }
            "response_item" => self.item(payload, "/payload", ts, pos, out),
            "event_msg" => match payload.get("type").and_then(Value::as_str) {
                Some("item_completed") | Some("item_started") => match payload.get("item") {
                    Some(item) => self.item(item, "/payload/item", ts, pos, out),
                    None => LineOutcome::Skipped(skip_reason("")),
                },
                _ => self.item(payload, "/payload", ts, pos, out),
            },
            other => LineOutcome::Skipped(skip_reason(other)),
        }
    }

    /// A session head (rollout `session_meta` payload, or the bare legacy head).
    fn head(&mut self, v: &Value) {
        if let Some(id) = v.get("id").or_else(|| v.get("session_id")).and_then(Value::as_str) {
            self.thread = Some(bounded(id, 128));
        }
        if let Some(ver) = v.get("cli_version").and_then(Value::as_str) {
            self.version = Some(bounded(ver, 64));
        }
    }

    /// An `exec --json` line.
    fn exec_line(&mut self, kind: &str, v: &Value, ts: i64, pos: &Pos, out: &mut dyn Emit) -> LineOutcome {
        match kind {
            "thread.started" => {
                if let Some(id) = v.get("thread_id").and_then(Value::as_str) {
                    self.thread = Some(bounded(id, 128));
                }
                LineOutcome::Skipped("codex: exec thread start")
            }
            "item.started" | "item.completed" | "item.updated" => match v.get("item") {
                Some(item) => self.item(item, "/item", ts, pos, out),
                None => LineOutcome::Skipped(skip_reason("")),
            },
            other => LineOutcome::Skipped(skip_reason(other)),
        }
    }
}

/// An `input_text` part of a failed call's output, as a text block.
fn input_text_block(part: &Value) -> Value {
    match part.get("text").and_then(Value::as_str) {
        Some(text) => serde_json::json!({"type": "text", "text": text}),
        None => part.clone(),
    }
}

/// A `function_call` response item.
fn function_call<'a>(item: &'a Value, pointer: &str) -> Option<CallRecord<'a>> {
    let id = item.get("call_id").and_then(Value::as_str)?;
    let named = function_call_name(item)?;
    // The arguments are a JSON string; one that does not parse (cut by the
    // model's output limit) is kept as the string it was.
    let arguments = item.get("arguments").map(|a| match a {
        Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| a.clone()),
        other => other.clone(),
    });
    Some(CallRecord { id, named, arguments, result: None, pointer: pointer.to_string() })
}

/// The server and tool an event names in separate fields.
fn named(server: Option<&str>, tool: Option<&str>) -> Option<Named> {
    let (server, tool) = (server.filter(|s| !s.is_empty())?, tool.filter(|t| !t.is_empty())?);
    Some(Named { host_name: format!("mcp__{server}__{tool}"), split: SplitName { server: server.to_string(), tool: tool.to_string(), ambiguous: false } })
}

/// An `McpToolCall` (rollout) or `mcp_tool_call` (exec) item.
fn tool_call_item<'a>(item: &'a Value, pointer: &str) -> Option<CallRecord<'a>> {
    let id = item.get("id").and_then(Value::as_str)?;
    let named = named(item.get("server").and_then(Value::as_str), item.get("tool").and_then(Value::as_str))?;
    let status = item.get("status").and_then(Value::as_str);
    let result = match (item.get("result").filter(|r| r.is_object()), item.get("error").filter(|e| !e.is_null())) {
        (Some(r), _) => Some(KeptResult {
            content: content_blocks(r.get("content")),
            structured: r.get("structuredContent").or_else(|| r.get("structured_content")).filter(|s| !s.is_null()),
            meta: r.get("_meta"),
            is_error: r.get("isError").and_then(Value::as_bool) == Some(true) || status == Some("failed"),
        }),
        // The call failed in Codex (server gone, timeout): its message.
        (None, Some(e)) => Some(KeptResult { content: content_blocks(e.get("message").or(Some(e))), is_error: true, ..Default::default() }),
        (None, None) if status == Some("failed") => Some(KeptResult { content: content_blocks(None), is_error: true, ..Default::default() }),
        (None, None) => None,
    };
    Some(CallRecord { id, named, arguments: item.get("arguments").cloned(), result, pointer: pointer.to_string() })
}

/// `mcp_tool_call_begin` / `mcp_tool_call_end` events with an `invocation`.
fn invocation_event<'a>(ev: &'a Value, pointer: &str) -> Option<CallRecord<'a>> {
    let id = ev.get("call_id").and_then(Value::as_str)?;
    let inv = ev.get("invocation")?;
    let named = named(inv.get("server").and_then(Value::as_str), inv.get("tool").and_then(Value::as_str))?;
    let result = ev.get("result").map(|r| match (r.get("Ok"), r.get("Err")) {
        (Some(ok), _) => KeptResult {
            content: content_blocks(ok.get("content")),
            structured: ok.get("structuredContent").or_else(|| ok.get("structured_content")).filter(|s| !s.is_null()),
            meta: ok.get("_meta"),
            is_error: ok.get("isError").or_else(|| ok.get("is_error")).and_then(Value::as_bool) == Some(true),
        },
        (None, Some(err)) => KeptResult { content: content_blocks(Some(err)), is_error: true, ..Default::default() },
        (None, None) => KeptResult { content: content_blocks(r.get("content")), structured: r.get("structuredContent"), meta: r.get("_meta"), is_error: r.get("isError").and_then(Value::as_bool) == Some(true) },
    });
    Some(CallRecord { id, named, arguments: inv.get("arguments").cloned(), result, pointer: pointer.to_string() })
}

/// Why a line without an MCP call is not normalized.
fn skip_reason(kind: &str) -> &'static str {
    match kind {
        "message" | "reasoning" | "agent_message" | "user_message" | "agent_reasoning" | "AgentMessage" | "UserMessage" | "Reasoning" => "codex: message or reasoning (no MCP call)",
        "function_call" | "custom_tool_call" | "local_shell_call" | "command_execution" | "file_change" | "web_search" | "web_search_call" | "exec_command_end" | "patch_apply_end" => {
            "codex: built-in tool call (shell, patch, search: not MCP)"
        }
        "function_call_output" | "custom_tool_call_output" => "codex: output of a built-in tool call",
        "turn_context" | "world_state" | "additional_tools" => "codex: turn context (model, policies, tools offered)",
        "token_count" | "token_usage_record" | "turn.completed" | "turn.started" | "task_started" | "task_complete" | "thread_settings_applied" => "codex: turn bookkeeping (start, end, token usage)",
        "compacted" => "codex: compacted history",
        _ => "codex: record of another type (no MCP call)",
    }
}

impl Parser for CodexParser {
    fn format(&self) -> Format {
        Format::Codex
    }

    fn line(&mut self, line: &Line<'_>, out: &mut dyn Emit) {
        let trimmed = line.bytes.trim_ascii_start();
        // A console capture holds the exec output between JSON events:
        // text lines are the capture's, not damaged records.
        if !trimmed.starts_with(b"{\"") {
            let reason = if trimmed.is_empty() { "blank line" } else { "codex: console text (not a JSON event)" };
            return out.account(&line.pos, 1, LineOutcome::Skipped(reason));
        }
        let Some(v) = crate::jsondoc::object_line(line, "codex", "a rollout line or exec event", out) else { return };
        let stamped = v.get("timestamp").and_then(Value::as_str).and_then(parse_rfc3339);
        if stamped.is_some() {
            self.last_ts = stamped;
        }
        let Some(ts) = stamped.or(self.last_ts).or(self.mtime_micros) else {
            return out.reject(&line.pos, 1, "codex: line without a timestamp, and the file has no modification time".into(), line.bytes, None);
        };
        let kind = v.get("type").and_then(Value::as_str);
        let outcome = match (kind, v.get("payload"), v.get("msg")) {
            (Some(kind), Some(payload), _) => self.rollout_line(kind, payload, ts, &line.pos, out),
            (Some(kind), None, _) if kind.contains('.') => self.exec_line(kind, &v, ts, &line.pos, out),
            // Older exec streams: {"id", "msg": event}.
            (None, None, Some(msg)) => self.item(msg, "/msg", ts, &line.pos, out),
            // Legacy rollouts: the bare head, state marks, bare items.
            (None, None, None) if v.get("originator").is_some() || v.get("cli_version").is_some() => {
                self.head(&v);
                LineOutcome::Skipped("codex: session metadata")
            }
            (None, None, None) if v.get("record_type").is_some() => LineOutcome::Skipped("codex: rollout state mark"),
            (Some(_), None, _) => self.item(&v, "", ts, &line.pos, out),
            _ => return out.reject(&line.pos, 1, "codex: line without a \"type\"".into(), line.bytes, None),
        };
        out.account(&line.pos, 1, outcome);
    }

    fn finish(&mut self, _out: &mut dyn Emit) {}
}

#[cfg(test)]
mod tests {
    use mcpf_schema::Table;

    use crate::test_rows::Rows;
    use crate::{Format, SourceStats};

    fn parse(text: &str, mtime: Option<i64>) -> (SourceStats, Rows) {
        crate::test_rows::parse(Format::Codex, "/home/u/.codex/sessions/2026/12/02/rollout-x.jsonl", text, mtime)
    }

    fn of(rows: &Rows, t: Table) -> Vec<&std::collections::BTreeMap<&'static str, String>> {
        rows.of(t)
    }

    const META: &str = r#"{"timestamp":"2026-12-02T16:19:18.239Z","ordinal":0,"type":"session_meta","payload":{"id":"T1","cwd":"/w","originator":"codex_exec","cli_version":"0.169.0","source":"exec"}}"#;
    const CALL: &str = r#"{"timestamp":"2026-12-02T16:19:19.335Z","ordinal":13,"type":"response_item","payload":{"type":"function_call","status":"completed","id":"fc_1","name":"send_email","namespace":"mcp__mail","arguments":"{\"to\":\"alice@example.com\",\"cc\":\"bob@example.com\"}","call_id":"call_1"}}"#;
    const DONE: &str = r#"{"timestamp":"2026-12-02T16:19:19.407Z","ordinal":15,"type":"event_msg","payload":{"type":"item_completed","thread_id":"T1","item":{"type":"McpToolCall","id":"call_1","server":"mail","tool":"send_email","arguments":{"to":"alice@example.com","cc":"bob@example.com"},"status":"completed","result":{"content":[{"type":"text","text":"sent, MessageID: 8e5b6cf6@corp.example"}],"structuredContent":{"ok":true},"isError":false}}}}"#;
    const OUTPUT: &str = r#"{"timestamp":"2026-12-02T16:19:19.412Z","ordinal":16,"type":"response_item","payload":{"type":"function_call_output","call_id":"call_1","output":"Wall time: 0.06 seconds\nOutput:\nsent"}}"#;

    #[test]
    fn a_rollout_call_is_one_request_and_one_response() {
        let (stats, rows) = parse(&format!("{META}\n{CALL}\n{DONE}\n{OUTPUT}\n"), None);
        assert_eq!((stats.parsed, stats.skipped, stats.rejected), (2, 2, 0), "{stats:?}");
        assert_eq!(stats.skipped_reasons.get("codex: MCP call already recorded by an earlier line (request, event or output)"), Some(&1));
        let calls = of(&rows, Table::ToolCalls);
        assert_eq!(calls.len(), 1);
        let c = calls[0];
        assert_eq!((c["session_id"].as_str(), c["server_name"].as_str(), c["tool_name"].as_str()), ("T1/mail", "mail", "send_email"));
        assert_eq!((c["host_tool_name"].as_str(), c["tool_name_split"].as_str()), ("mcp__mail__send_email", "exact"));
        assert_eq!((c["rpc_id"].as_str(), c["source_pointer"].as_str(), c["is_error"].as_str()), ("call_1", "/payload", "false"));
        assert_eq!(c["ts_end"], "1796228359407000", "answered by the McpToolCall event, not the later output");
        let ids: Vec<&str> = of(&rows, Table::CallMessageIds).iter().map(|m| m["message_id"].as_str()).collect();
        assert_eq!(ids, ["8e5b6cf6@corp.example"]);
        let to: Vec<(&str, &str)> = of(&rows, Table::IntendedRecipients).iter().map(|m| (m["address"].as_str(), m["arg_role"].as_str())).collect();
        assert_eq!(to, [("alice@example.com", "to"), ("bob@example.com", "cc")]);
        let s = of(&rows, Table::McpSessions);
        assert_eq!((s[0]["client_name"].as_str(), s[0]["client_version"].as_str()), ("codex", "0.169.0"));
    }

    #[test]
    fn the_end_event_alone_gives_request_and_response_and_errors_are_errors() {
        let end_ok = r#"{"timestamp":"2025-10-01T10:00:00Z","type":"event_msg","payload":{"type":"mcp_tool_call_end","call_id":"m1","invocation":{"server":"scholar","tool":"search_papers","arguments":{"query":"albedo"}},"duration":{"secs":0,"nanos":5},"result":{"Ok":{"content":[{"type":"text","text":"3 articles"}]}}}}"#;
        let end_err = r#"{"timestamp":"2025-10-01T10:00:01Z","type":"event_msg","payload":{"type":"mcp_tool_call_end","call_id":"m2","invocation":{"server":"scholar","tool":"search_papers","arguments":{}},"result":{"Err":"tool call timed out"}}}"#;
        let (stats, rows) = parse(&format!("{end_ok}\n{end_err}\n"), None);
        assert_eq!(stats.parsed, 2);
        let calls = of(&rows, Table::ToolCalls);
        assert_eq!(calls.len(), 2);
        assert_eq!((calls[0]["tool_name"].as_str(), calls[0]["is_error"].as_str(), calls[0]["source_pointer"].as_str()), ("search_papers", "false", "/payload"));
        assert_eq!(calls[1]["is_error"], "true");
        assert!(calls.iter().all(|c| c.get("ts_end").is_some()));
    }

    #[test]
    fn legacy_rollouts_and_flat_names_split_with_their_quality() {
        let text = concat!(
            r#"{"id":"0199-legacy","timestamp":"2025-08-01T09:00:00.000Z","cwd":"/w","originator":"codex_cli_rs","cli_version":"0.34.0"}"#, "\n",
            r#"{"record_type":"state"}"#, "\n",
            r#"{"type":"function_call","name":"mail__send_email","arguments":"{\"to\":\"x@example.com\"}","call_id":"c1"}"#, "\n",
            r#"{"type":"function_call_output","call_id":"c1","output":{"content":"ok","success":true}}"#, "\n",
            r#"{"type":"function_call","name":"shell","arguments":"{\"command\":[\"ls\"]}","call_id":"c2"}"#, "\n",
            r#"{"type":"function_call","name":"mcp__a__b__c","arguments":"{not json","call_id":"c3"}"#, "\n",
        );
        let (stats, rows) = parse(text, None);
        assert_eq!((stats.parsed, stats.skipped, stats.rejected), (3, 3, 0), "{stats:?}");
        let calls = of(&rows, Table::ToolCalls);
        assert_eq!(calls.len(), 2, "shell is built in");
        assert_eq!((calls[0]["session_id"].as_str(), calls[0]["server_name"].as_str(), calls[0]["tool_name_split"].as_str()), ("0199-legacy/mail", "mail", "exact"));
        assert_eq!(calls[0]["ts"], "1754038800000000", "unstamped items take the head's time");
        assert!(calls[0].get("ts_end").is_some(), "answered by the output");
        assert_eq!((calls[1]["server_name"].as_str(), calls[1]["tool_name"].as_str(), calls[1]["tool_name_split"].as_str()), ("a", "b__c", "ambiguous"));
    }

    #[test]
    fn exec_json_events_and_console_text() {
        let text = concat!(
            "codex exec \"send it\"\n",
            "OpenAI Codex v0.77.0 (research preview)\n",
            r#"{"type":"thread.started","thread_id":"T9"}"#, "\n",
            r#"{"type":"item.started","item":{"id":"item_0","type":"mcp_tool_call","server":"mail","tool":"send_email","arguments":{"to":"a@example.com"},"result":null,"error":null,"status":"in_progress"}}"#, "\n",
            r#"{"type":"item.completed","item":{"id":"item_0","type":"mcp_tool_call","server":"mail","tool":"send_email","arguments":{"to":"a@example.com"},"result":{"content":[{"type":"text","text":"bad"}],"structured_content":null},"error":null,"status":"failed"}}"#, "\n",
            r#"{"type":"turn.completed","usage":{"input_tokens":1}}"#, "\n",
            "{\"type\":\"item.completed\",\"item\":{\"id\":\"item_1\",\"type\":\"mcp_tool_call\",\"server\":\"mail\"", "\n",
        );
        let (stats, rows) = parse(text, Some(1_800_000_000));
        assert_eq!((stats.parsed, stats.skipped, stats.rejected), (2, 4, 1), "{stats:?}");
        let calls = of(&rows, Table::ToolCalls);
        assert_eq!((calls[0]["session_id"].as_str(), calls[0]["source_pointer"].as_str(), calls[0]["is_error"].as_str()), ("T9/mail", "/item", "true"));
        assert_eq!(calls[0]["ts"], "1800000000000000", "exec events have no time: the file's");
    }
}
