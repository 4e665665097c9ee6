//! Claude Code: session transcripts (`~/.claude/projects/<slug>/<session>.jsonl`,
//! sub-agents in `<session>/subagents/agent-<id>.jsonl`) and the output of
//! `claude -p --output-format stream-json`.
//!
//! Both are JSON Lines of records tagged by `type`. An MCP call is an
//! `assistant` record whose `message.content[]` holds a `tool_use` block
//! named `mcp__<server>__<tool>` with the call's arguments as `input`; its
//! result is a `tool_result` block (same `tool_use_id`) on a later `user`
//! record, with `is_error` when it failed, and since 2.1.19 the MCP
//! `structuredContent` and `_meta` (which names the server) in `mcpMeta`. Transcripts stamp every record
//! (`timestamp`) and name the session (`sessionId`), the version, `cwd`,
//! `gitBranch`; sub-agent records carry `isSidechain` and `agentId`.
//! stream-json records name the session (`session_id`) but carry no time.
//!
//! Each call becomes the `tools/call` request Claude Code sent (id = the
//! `tool_use` id) and each result its response, for the server the name
//! names; the MCP session is the Claude Code session (and sub-agent) with
//! that server: `<sessionId>[/agent-<agentId>]/<server>`. Records without
//! an MCP call (prompts, text, built-in tools, progress, snapshots) are
//! skipped with their kind as the reason.

use serde_json::Value;

use super::{bounded, content_blocks, split_claude_code, tools_call_request, tools_call_response, HostMessage, KeptResult, OpenCalls};
use crate::collect::LineOutcome;
use crate::mcp::{Direction, HostContext};
use crate::time::parse_rfc3339;
use crate::{Emit, Format, Line, Parser, Pos, SourceInfo};

/// A line of a Claude Code transcript or stream-json output (detection).
pub fn looks_like(line: &str) -> bool {
    let t = line.trim_start();
    if !t.starts_with('{') {
        return false;
    }
    // Transcript records: a session and the record chain.
    let transcript = t.contains("\"sessionId\"") && (t.contains("\"parentUuid\"") || t.contains("\"type\":\"queue-operation\""));
    // Records a transcript opens with, before any session record.
    let head = t.contains("\"type\":\"summary\"") && t.contains("\"leafUuid\"") || t.contains("\"type\":\"file-history-snapshot\"");
    // stream-json: the init record, and messages with their session.
    let stream = t.contains("\"session_id\"")
        && (t.contains("\"subtype\":\"init\"") && t.contains("\"mcp_servers\"")
            || (t.contains("\"type\":\"assistant\"") || t.contains("\"type\":\"user\"")) && t.contains("\"parent_tool_use_id\""));
    transcript || head || stream
}

/// An MCP call waiting for its result.
#[derive(Debug, Clone)]
struct OpenCall {
    server: String,
    session: Option<String>,
}

pub struct ClaudeCodeParser {
    mtime_micros: Option<i64>,
    /// Time of the last stamped record: stream-json records have none.
    last_ts: Option<i64>,
    /// Claude Code's version, from the records or the stream-json init.
    version: Option<String>,
    open: OpenCalls<OpenCall>,
}

impl ClaudeCodeParser {
    pub fn new(info: &SourceInfo) -> Self {
        ClaudeCodeParser { mtime_micros: info.mtime_unix.map(|s| s * 1_000_000), last_ts: None, version: None, open: OpenCalls::default() }
    }

    fn context(&self, host_tool_name: Option<String>, split: Option<&'static str>) -> HostContext {
        HostContext { client_name: Some("claude-code".into()), client_version: self.version.clone(), host_tool_name, tool_name_split: split, ..Default::default() }
    }

    /// The MCP calls of an assistant record: one request per `tool_use`
    /// block with an `mcp__` name. Returns how many.
    fn calls(&mut self, rec: &Record<'_>, pos: &Pos, out: &mut dyn Emit) -> usize {
        let mut n = 0;
        for (i, block) in rec.content().iter().enumerate() {
            if block.get("type").and_then(Value::as_str) != Some("tool_use") {
                continue;
            }
            let (Some(id), Some(name)) = (block.get("id").and_then(Value::as_str), block.get("name").and_then(Value::as_str)) else { continue };
            let Some(split) = split_claude_code(name) else { continue };
            let session = rec.session(&split.server);
            self.open.insert(id.to_string(), OpenCall { server: split.server.clone(), session: session.clone() });
            out.mcp(HostMessage {
                ts: rec.ts,
                pos: Pos { pointer: Some(format!("/message/content/{i}")), ..pos.clone() },
                server: split.server.clone(),
                session,
                direction: Direction::ClientToServer,
                message: tools_call_request(id, &split.tool, block.get("input").cloned()),
                context: self.context(Some(name.to_string()), Some(split.quality())),
            }
            .event());
            n += 1;
        }
        n
    }

    /// The results of MCP calls on a user record. Returns how many.
    fn results(&mut self, rec: &Record<'_>, pos: &Pos, out: &mut dyn Emit) -> usize {
        // What Claude Code kept of the MCP result beside the content blocks:
        // `mcpMeta` in transcripts (2.1.19+), `tool_use_result` in stream-json;
        // `_meta` names the server (2026-07-28 `io.modelcontextprotocol/serverInfo`).
        let kept = rec.v.get("mcpMeta").or_else(|| rec.v.get("tool_use_result").filter(|v| v.is_object()));
        let mut n = 0;
        for (i, block) in rec.content().iter().enumerate() {
            if block.get("type").and_then(Value::as_str) != Some("tool_result") {
                continue;
            }
            let Some(id) = block.get("tool_use_id").and_then(Value::as_str) else { continue };
            let Some(call) = self.open.remove(id) else { continue };
            let result = KeptResult {
                content: content_blocks(block.get("content")),
                structured: kept.and_then(|m| m.get("structuredContent")),
                meta: kept.and_then(|m| m.get("_meta")),
                is_error: block.get("is_error").and_then(Value::as_bool) == Some(true),
            };
            out.mcp(HostMessage {
                ts: rec.ts,
                pos: Pos { pointer: Some(format!("/message/content/{i}")), ..pos.clone() },
                server: call.server,
                session: call.session,
                direction: Direction::ServerToClient,
                message: tools_call_response(id, result),
                context: self.context(None, None),
            }
            .event());
            n += 1;
        }
        n
    }
}

/// One parsed record and what every row of it needs.
struct Record<'a> {
    v: &'a Value,
    ts: i64,
    /// `<sessionId>` or `<sessionId>/agent-<agentId>` for a sub-agent.
    session: Option<String>,
}

impl Record<'_> {
    fn content(&self) -> &[Value] {
        self.v.get("message").and_then(|m| m.get("content")).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The MCP session of this record with `server`.
    fn session(&self, server: &str) -> Option<String> {
        self.session.as_ref().map(|s| format!("{s}/{server}"))
    }
}

/// Why a record without an MCP call or result is not normalized.
fn skip_reason(kind: &str) -> &'static str {
    match kind {
        "assistant" => "claude_code: assistant record without an MCP tool call (text, thinking, built-in tools)",
        "user" => "claude_code: user record without an MCP tool result (prompt, built-in tool results)",
        "progress" => "claude_code: progress record (hooks, commands, sub-agents, MCP progress)",
        "system" => "claude_code: system record (init, hooks, compaction, errors)",
        "result" => "claude_code: stream-json result record (cost and usage)",
        "summary" | "custom-title" | "last-prompt" => "claude_code: session title or summary record",
        "file-history-snapshot" => "claude_code: file-history snapshot",
        "queue-operation" => "claude_code: prompt queue record",
        _ => "claude_code: record of another type (no MCP call)",
    }
}

impl Parser for ClaudeCodeParser {
    fn format(&self) -> Format {
        Format::ClaudeCode
    }

    fn line(&mut self, line: &Line<'_>, out: &mut dyn Emit) {
        let Some(v) = crate::jsondoc::object_line(line, "claude_code", "a transcript record", out) else { return };
        let Some(kind) = v.get("type").and_then(Value::as_str) else {
            return out.reject(&line.pos, 1, "claude_code: record without a \"type\"".into(), line.bytes, None);
        };
        if let Some(ver) = v.get("version").or_else(|| v.get("claude_code_version")).and_then(Value::as_str) {
            self.version = Some(bounded(ver, 64));
        }
        let stamped = v.get("timestamp").and_then(Value::as_str).and_then(parse_rfc3339);
        if stamped.is_some() {
            self.last_ts = stamped;
        }
        if kind != "assistant" && kind != "user" {
            return out.account(&line.pos, 1, LineOutcome::Skipped(skip_reason(kind)));
        }
        // stream-json has no times: the last stamped record's, else the
        // file's (written as the run ended).
        let Some(ts) = stamped.or(self.last_ts).or(self.mtime_micros) else {
            return out.reject(&line.pos, 1, "claude_code: record without a timestamp, and the file has no modification time".into(), line.bytes, None);
        };
        let session = v.get("sessionId").or_else(|| v.get("session_id")).and_then(Value::as_str).map(|s| {
            let s = bounded(s, 128);
            match v.get("agentId").and_then(Value::as_str).filter(|_| v.get("isSidechain").and_then(Value::as_bool) == Some(true)) {
                Some(agent) => format!("{s}/agent-{}", bounded(agent, 64)),
                None => s,
            }
        });
        let rec = Record { v: &v, ts, session };
        let n = if kind == "assistant" { self.calls(&rec, &line.pos, out) } else { self.results(&rec, &line.pos, out) };
        let outcome = if n > 0 { LineOutcome::Parsed } else { LineOutcome::Skipped(skip_reason(kind)) };
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
        crate::test_rows::parse(Format::ClaudeCode, "/home/u/.claude/projects/-w/s.jsonl", text, mtime)
    }

    fn of(rows: &Rows, t: Table) -> Vec<&std::collections::BTreeMap<&'static str, String>> {
        rows.of(t)
    }

    const CALL: &str = r#"{"parentUuid":"p1","isSidechain":false,"type":"assistant","uuid":"a1","timestamp":"2026-12-02T09:59:04.613Z","sessionId":"S1","version":"2.1.328","message":{"role":"assistant","content":[{"type":"text","text":"sending"},{"type":"tool_use","id":"toolu_1","name":"mcp__mail__send_email","input":{"to":["alice@example.com"],"cc":"bob@example.com"}},{"type":"tool_use","id":"toolu_2","name":"Read","input":{"file_path":"/x"}}]}}"#;
    const RESULT: &str = r#"{"parentUuid":"a1","isSidechain":false,"type":"user","uuid":"u1","timestamp":"2026-12-02T09:59:05.000Z","sessionId":"S1","version":"2.1.328","message":{"role":"user","content":[{"tool_use_id":"toolu_2","type":"tool_result","content":"file"},{"tool_use_id":"toolu_1","type":"tool_result","content":[{"type":"text","text":"Email sent successfully! MessageID: 8e5b6cf6@corp.example"}]}]},"mcpMeta":{"_meta":{"io.modelcontextprotocol/serverInfo":{"name":"mail-mcp","version":"1.0.16"}}}}"#;

    #[test]
    fn an_mcp_tool_use_and_its_result_are_one_answered_call() {
        let (stats, rows) = parse(&format!("{CALL}\n{RESULT}\n"), None);
        assert_eq!((stats.parsed, stats.skipped, stats.rejected), (2, 0, 0));
        let calls = of(&rows, Table::ToolCalls);
        assert_eq!(calls.len(), 1, "the built-in Read is not an MCP call");
        let c = calls[0];
        assert_eq!(c["session_id"], "S1/mail");
        assert_eq!((c["tool_name"].as_str(), c["host_tool_name"].as_str(), c["tool_name_split"].as_str()), ("send_email", "mcp__mail__send_email", "exact"));
        assert_eq!(c["rpc_id"], "toolu_1");
        assert_eq!(c["source_pointer"], "/message/content/1");
        assert_eq!(c["is_error"], "false");
        assert_eq!(c["recipients_observed"], "true");
        // The server named itself on the result (2026-07-28 _meta).
        assert_eq!(c["server_version"], "1.0.16");
        let ids: Vec<&str> = of(&rows, Table::CallMessageIds).iter().map(|m| m["message_id"].as_str()).collect();
        assert_eq!(ids, ["8e5b6cf6@corp.example"]);
        let to: Vec<(&str, &str)> = of(&rows, Table::IntendedRecipients).iter().map(|m| (m["address"].as_str(), m["arg_role"].as_str())).collect();
        assert_eq!(to, [("alice@example.com", "to"), ("bob@example.com", "cc")]);
        let s = of(&rows, Table::McpSessions);
        assert_eq!((s[0]["client_name"].as_str(), s[0]["client_version"].as_str(), s[0]["server_info_name"].as_str()), ("claude-code", "2.1.328", "mail-mcp"));
    }

    #[test]
    fn sub_agents_have_their_own_sessions_and_unpaired_results_are_skipped() {
        let sidechain = CALL.replace("\"isSidechain\":false", "\"isSidechain\":true,\"agentId\":\"a2898e3\"");
        let orphan = RESULT.replace("toolu_1", "toolu_9");
        let (stats, rows) = parse(&format!("{sidechain}\n{orphan}\n"), None);
        assert_eq!(of(&rows, Table::ToolCalls)[0]["session_id"], "S1/agent-a2898e3/mail");
        assert!(of(&rows, Table::ToolCalls)[0].get("ts_end").is_none(), "unanswered");
        assert_eq!(stats.skipped_reasons.get("claude_code: user record without an MCP tool result (prompt, built-in tool results)"), Some(&1));
    }

    #[test]
    fn records_without_time_take_the_last_stamp_or_the_file_time() {
        let stream = r#"{"type":"assistant","message":{"content":[{"type":"tool_use","id":"toolu_1","name":"mcp__a__b__c","input":{}}]},"parent_tool_use_id":null,"session_id":"S2"}"#;
        let (_, rows) = parse(&format!("{stream}\n"), Some(1_700_000_000));
        let c = of(&rows, Table::ToolCalls)[0].clone();
        assert_eq!(c["ts"], "1700000000000000");
        assert_eq!((c["server_name"].as_str(), c["tool_name"].as_str(), c["tool_name_split"].as_str()), ("a", "b__c", "ambiguous"));
        let (stats, _) = parse(&format!("{stream}\n"), None);
        assert_eq!(stats.rejected, 1, "no time at all: rejected with the reason");
        let (stats, rows) = parse(&format!("{CALL}\n{stream}\n"), None);
        assert_eq!(stats.rejected, 0);
        assert!(of(&rows, Table::ToolCalls).iter().all(|c| c["ts"] == "1796205544613000"));
    }

    #[test]
    fn other_records_are_skipped_by_kind_and_garbage_is_rejected() {
        let text = "{\"type\":\"summary\",\"summary\":\"t\",\"leafUuid\":\"x\"}\n{\"type\":\"progress\",\"data\":{\"type\":\"hook_progress\"}}\n\n[1]\n{\"no\":\"type\"}\nnot json\n";
        let (stats, rows) = parse(text, None);
        assert_eq!((stats.lines, stats.skipped, stats.rejected), (6, 3, 3));
        assert!(rows.0.iter().all(|(t, _)| *t == Table::Rejects));
    }
}
