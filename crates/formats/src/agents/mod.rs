//! Agent hosts' own records of the MCP calls they made: session transcripts
//! and event streams written by the agent (Claude Code, …), not by a tap on
//! the wire.
//!
//! An agent host records a call as its model saw it: one tool name that
//! joins the server and the tool (`mcp__mail__send_email`), the arguments,
//! and later the result. Parsers here turn each call and result into the
//! JSON-RPC `tools/call` request and response the host exchanged with the
//! server, so [`crate::mcp`] derives the same tables as for wire traces, and
//! keep the host's own name of the tool beside the split.

pub mod claude_code;
pub mod codex;
pub mod codex_config;
pub mod copilot;
pub mod gemini;

use std::collections::{HashMap, VecDeque};

use serde_json::{json, Map, Value};

use crate::mcp::{Body, Direction, HostContext, McpEvent, McpEventKind};
use crate::Pos;

/// Calls a parser remembers for pairing with their results; past it the
/// oldest is forgotten (its result, if it comes, is skipped as unpaired).
pub const MAX_OPEN_CALLS: usize = 100_000;

/// Calls waiting for their results, by the host's call id, bounded by
/// [`MAX_OPEN_CALLS`] so a trace of calls that never complete cannot grow
/// memory without end.
#[derive(Debug)]
pub struct OpenCalls<T> {
    open: HashMap<String, T>,
    order: VecDeque<String>,
}

impl<T> Default for OpenCalls<T> {
    fn default() -> Self {
        OpenCalls { open: HashMap::new(), order: VecDeque::new() }
    }
}

impl<T> OpenCalls<T> {
    pub fn insert(&mut self, id: String, call: T) {
        if self.open.insert(id.clone(), call).is_none() {
            self.order.push_back(id);
        }
        while self.open.len() > MAX_OPEN_CALLS {
            match self.order.pop_front() {
                Some(old) => {
                    self.open.remove(&old);
                }
                None => break,
            }
        }
    }

    pub fn get(&self, id: &str) -> Option<&T> {
        self.open.get(id)
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut T> {
        self.open.get_mut(id)
    }

    /// Take the call out (its id stays in the order queue until it is
    /// trimmed, which only costs the queue entry).
    pub fn remove(&mut self, id: &str) -> Option<T> {
        let call = self.open.remove(id);
        if self.open.is_empty() {
            self.order.clear();
        }
        call
    }
}

/// The `tools/call` request a host sent for one of its records: `arguments`
/// None when the record did not keep them ("not recorded", which an
/// explicit empty object would otherwise say).
pub fn tools_call_request(id: &str, tool: &str, arguments: Option<Value>) -> Value {
    let mut params = Map::new();
    params.insert("name".into(), Value::String(tool.to_string()));
    if let Some(args) = arguments {
        params.insert("arguments".into(), args);
    }
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": Value::Object(params)})
}

/// What a host kept of a tool result.
#[derive(Debug, Default)]
pub struct KeptResult<'a> {
    pub content: Value,
    pub structured: Option<&'a Value>,
    pub meta: Option<&'a Value>,
    pub is_error: bool,
}

/// The response to `id` a host recorded, as a JSON-RPC `tools/call` result.
pub fn tools_call_response(id: &str, kept: KeptResult<'_>) -> Value {
    let mut result = Map::new();
    result.insert("content".into(), kept.content);
    if let Some(s) = kept.structured {
        result.insert("structuredContent".into(), s.clone());
    }
    if let Some(m) = kept.meta.filter(|m| m.is_object()) {
        result.insert("_meta".into(), m.clone());
    }
    if kept.is_error {
        result.insert("isError".into(), Value::Bool(true));
    }
    json!({"jsonrpc": "2.0", "id": id, "result": Value::Object(result)})
}

/// Tool result content as MCP content blocks: a host that kept only text
/// (a string) gets one text block.
pub fn content_blocks(content: Option<&Value>) -> Value {
    match content {
        Some(Value::String(text)) => json!([{"type": "text", "text": text}]),
        Some(v @ Value::Array(_)) => v.clone(),
        Some(Value::Null) | None => json!([]),
        Some(v) => json!([{"type": "text", "text": v.to_string()}]),
    }
}

/// One message of a host's record as an [`McpEvent`] for the deriver.
pub struct HostMessage {
    pub ts: i64,
    pub pos: Pos,
    pub server: String,
    pub session: Option<String>,
    pub direction: Direction,
    pub message: Value,
    pub context: HostContext,
}

impl HostMessage {
    pub fn event(self) -> McpEvent {
        McpEvent {
            ts: self.ts,
            pos: self.pos,
            host: None,
            server_name: self.server,
            session_hint: self.session,
            kind: McpEventKind::Message { direction: self.direction, body: Body::Json(self.message), truncated: false },
            host_context: self.context,
        }
    }
}

/// `s` cut to at most `max` characters (ids and names from hostile records).
pub fn bounded(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// A host's tool name split into MCP server and tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitName {
    pub server: String,
    pub tool: String,
    /// The name splits more than one way (a server or tool name that itself
    /// holds the separator); the first split is used.
    pub ambiguous: bool,
}

impl SplitName {
    /// `exact` or `ambiguous`: `tool_calls.tool_name_split`.
    pub fn quality(&self) -> &'static str {
        if self.ambiguous {
            "ambiguous"
        } else {
            "exact"
        }
    }
}

/// Split `PREFIX<server>SEP<tool>` at the first `sep` after the prefix that
/// leaves both parts non-empty: Claude Code's (and opencode's, Hermes')
/// `mcp__<server>__<tool>`, Codex's older flat `mcp__<server>__<tool>`.
/// None when the name has not that shape (a built-in tool).
pub fn split_prefixed(name: &str, prefix: &str, sep: &str) -> Option<SplitName> {
    let rest = name.strip_prefix(prefix)?;
    // Every place the separator could be, overlapping ones too (`a___b` is
    // `a_`+`b` or `a`+`_b`).
    let cuts: Vec<usize> = (1..rest.len()).filter(|&i| rest.is_char_boundary(i) && rest[i..].starts_with(sep) && i + sep.len() < rest.len()).collect();
    let &first = cuts.first()?;
    Some(SplitName { server: rest[..first].to_string(), tool: rest[first + sep.len()..].to_string(), ambiguous: cuts.len() > 1 })
}

/// Claude Code's MCP tool names: `mcp__<server>__<tool>`, the server name
/// with characters outside `[A-Za-z0-9_-]` replaced by `_`.
pub fn split_claude_code(name: &str) -> Option<SplitName> {
    split_prefixed(name, "mcp__", "__")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_code_names_split_at_the_first_separator() {
        let s = split_claude_code("mcp__mail__send_email").unwrap();
        assert_eq!((s.server.as_str(), s.tool.as_str(), s.quality()), ("mail", "send_email", "exact"));
        let s = split_claude_code("mcp__claude_ai_Slack__post_message").unwrap();
        assert_eq!((s.server.as_str(), s.tool.as_str(), s.ambiguous), ("claude_ai_Slack", "post_message", false));
        // A tool (or server) whose name holds `__` splits two ways.
        let s = split_claude_code("mcp__a__b__c").unwrap();
        assert_eq!((s.server.as_str(), s.tool.as_str(), s.quality()), ("a", "b__c", "ambiguous"));
        assert!(split_claude_code("mcp__a___b").unwrap().ambiguous);
        for builtin in ["Read", "Bash", "mcp__", "mcp__x", "mcp____t", "mcp__s__", "mcp_s_t"] {
            assert_eq!(split_claude_code(builtin), None, "{builtin}");
        }
    }
}
