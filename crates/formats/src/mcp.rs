//! MCP traces → `mcp_messages`, `tool_calls`, `intended_recipients`,
//! `call_message_ids`, `tool_definitions`.
//!
//! Parsers of MCP trace formats only say "this JSON-RPC message went this way
//! at this time for this server"; everything derived from the protocol (which
//! session, which server version, which request a response answers, who a
//! tool call meant to e-mail) is done here once, so every trace format yields
//! the same tables.
//!
//! Sessions: a session is one client-server connection. In a per-file trace
//! it starts at a launch/initialize event of a server and ends at the next; a
//! format that carries its own session id (the JSONL wire format's `session`)
//! uses it. `session_id` is a stable hash of the file, the server name and
//! the byte offset where the session began.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, OnceLock};

use mcpf_schema::Table;
use regex::Regex;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::address;
use crate::digest::hex;
use crate::collect::{NamedRow, RowOut, Val};
use crate::time::date_of;
use crate::Pos;

/// At most this many requests wait for a response per session; past it the
/// oldest is written as unanswered (bounded memory on hostile traces).
const MAX_PENDING_PER_SESSION: usize = 10_000;
/// At most this many sessions are tracked per file.
const MAX_SESSIONS: usize = 10_000;
/// `_meta` key of the server's identity on results (2026-07-28).
pub const SERVER_INFO_META: &str = "io.modelcontextprotocol/serverInfo";
/// `_meta` key of the client's identity on requests (2026-07-28).
pub const CLIENT_INFO_META: &str = "io.modelcontextprotocol/clientInfo";
/// Addresses taken from one call's arguments at most.
const MAX_ADDRESSES_PER_CALL: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    ClientToServer,
    ServerToClient,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::ClientToServer => "client_to_server",
            Direction::ServerToClient => "server_to_client",
        }
    }
    fn opposite(self) -> Direction {
        match self {
            Direction::ClientToServer => Direction::ServerToClient,
            Direction::ServerToClient => Direction::ClientToServer,
        }
    }
}

/// What a log line said about one MCP message.
#[derive(Debug, Clone)]
pub enum Body {
    /// The whole JSON-RPC message.
    Json(Value),
    /// Only part of it is known: a summary line, or a payload the log cut.
    Partial {
        method: Option<String>,
        id: Option<String>,
        is_response: bool,
        tool_name: Option<String>,
        /// The (cut) payload text as logged, if any.
        raw: Option<String>,
    },
}

#[derive(Debug, Clone)]
pub enum McpEventKind {
    /// A server process was launched / a connection opened: a new session.
    /// `command`/`args` are what the client ran, where the log says.
    Launch { command: Option<String>, args: Vec<String> },
    Message { direction: Direction, body: Body, truncated: bool },
}

/// One event of an MCP trace, from any trace format.
#[derive(Debug, Clone)]
pub struct McpEvent {
    pub ts: i64,
    pub pos: Pos,
    pub host: Option<String>,
    pub server_name: String,
    /// A session id the format itself carries.
    pub session_hint: Option<String>,
    pub kind: McpEventKind,
    /// What an agent host's own record adds (empty for wire traces).
    pub host_context: HostContext,
}

/// What an agent host's record of a call says beyond the JSON-RPC message:
/// which client it is, and the tool name as the host wrote it.
#[derive(Debug, Clone, Default)]
pub struct HostContext {
    /// The agent host as MCP client (`claude-code`), when the record names
    /// it; used where no `initialize` says.
    pub client_name: Option<String>,
    pub client_version: Option<String>,
    /// The host's name for the tool (`mcp__mail__send_email`), split into
    /// the event's server and the request's tool name.
    pub host_tool_name: Option<String>,
    /// `exact` or `ambiguous` (see [`crate::agents::SplitName`]), or
    /// `not_recorded` when the record did not name the server.
    pub tool_name_split: Option<&'static str>,
    /// The record left the call's arguments out (telemetry without its
    /// opt-in): a request without `arguments` is then "not observed", not
    /// a call with none.
    pub arguments_not_recorded: bool,
    /// The server's version as the host's record states it outside the
    /// protocol (an OpenTelemetry SERVER span's `service.version`); it
    /// applies from this message on, as a `serverInfo` would.
    pub server_version: Option<String>,
}

#[derive(Debug)]
struct Pending {
    method: Option<String>,
    rpc_id: String,
    ts: i64,
    pos: Pos,
    tool_name: Option<String>,
    arguments_json: Option<String>,
    call_id: String,
    truncated: bool,
    /// Every address of the arguments was kept (see `tool_calls.recipients_observed`).
    recipients_complete: bool,
    server_version: Option<String>,
    host: Option<String>,
    host_tool_name: Option<String>,
    tool_name_split: Option<&'static str>,
    arguments_observed: bool,
}

#[derive(Debug, Default)]
struct Session {
    id: String,
    server_name: String,
    host: Option<String>,
    start_ts: i64,
    start_pos: Pos,
    messages: i64,
    launch_command: Option<String>,
    package: Option<crate::package::Package>,
    client_name: Option<String>,
    client_version: Option<String>,
    server_version: Option<String>,
    server_info_name: Option<String>,
    seen_initialize: bool,
    seen_messages: bool,
    /// The trace carried the session id (else: keyed on file and server).
    recorded: bool,
    pending: HashMap<(bool, String), Pending>,
    order: VecDeque<(bool, String)>,
}

/// Derives the MCP tables from the events of one source file.
pub struct McpDeriver {
    file: Arc<str>,
    sessions: HashMap<String, Session>,
    session_order: VecDeque<String>,
}

fn short_hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    hex(&h.finalize()[..8])
}


/// Compact JSON text of a value.
fn json_text(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Keep a JSON-RPC id exactly as written. serde_json reads a number into an
/// f64 when it does not fit 64 bits, so `1180591620717411303424` and
/// `1180591620717411303425` would become the same id (and `-0` would become
/// `-0.0`), pairing a request with another's response. `text` is the
/// message's JSON text; when the number's text as parsed differs from what
/// is written, the id becomes the written text (ids are compared as text).
pub fn keep_exact_id(message: &mut Value, text: &str) {
    let Some(Value::Number(n)) = message.get("id") else { return };
    // Integers that fit 64 bits are exact already.
    if !n.is_f64() {
        return;
    }
    let Some(written) = member_text(text, "id") else { return };
    let written = written.trim();
    if written != n.to_string() {
        message["id"] = Value::String(written.to_string());
    }
}

/// The JSON text of member `key` of the top-level object in `object_text`
/// (the first such member), found by scanning: no number is converted on
/// the way. None when the text is not an object or has no such member.
pub fn member_text<'a>(object_text: &'a str, key: &str) -> Option<&'a str> {
    let b = object_text.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    loop {
        i = skip_ws(b, i);
        match b.get(i)? {
            b'}' => return None,
            b',' => {
                i += 1;
                continue;
            }
            b'"' => {}
            _ => return None,
        }
        let key_end = skip_string(b, i)?;
        let name: String = serde_json::from_str(&object_text[i..key_end]).ok()?;
        i = skip_ws(b, key_end);
        if b.get(i) != Some(&b':') {
            return None;
        }
        let start = skip_ws(b, i + 1);
        let end = skip_value(b, start)?;
        if name == key {
            return object_text.get(start..end);
        }
        i = end;
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
        i += 1;
    }
    i
}

/// `b[i]` is `"`: the index just past the closing quote.
fn skip_string(b: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// The index just past the JSON value starting at `i` (iterative: nesting
/// depth cannot exhaust the stack).
fn skip_value(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => skip_string(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = skip_string(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b'}' | b']') && !b[j].is_ascii_whitespace() {
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}

/// JSON-RPC ids are numbers or strings; compare them as text.
fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Null => None,
        other => Some(json_text(other)),
    }
}

/// Canonical JSON: object keys sorted, no insignificant whitespace. The tool
/// definition hash is over this, so key order in the log does not matter.
pub fn canonical_json(v: &Value) -> String {
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::to_string(k).unwrap_or_default());
                    out.push(':');
                    write(&m[*k], out);
                }
                out.push('}');
            }
            Value::Array(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(x, out);
                }
                out.push(']');
            }
            other => out.push_str(&json_text(other)),
        }
    }
    let mut s = String::new();
    write(v, &mut s);
    s
}

/// sha256 (hex) over the canonical JSON of a tool's name, description,
/// inputSchema and annotations: what the agent was told the tool is.
pub fn tool_definition_sha256(tool: &Value) -> String {
    let pick = |k: &str| tool.get(k).cloned().unwrap_or(Value::Null);
    let def = serde_json::json!({
        "name": pick("name"),
        "description": pick("description"),
        "inputSchema": pick("inputSchema"),
        "annotations": pick("annotations"),
    });
    crate::digest::sha256_hex(canonical_json(&def).as_bytes())
}

/// One address found in tool arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct ArgAddress {
    pub arg_path: String,
    pub role: &'static str,
    pub address: address::Address,
}

/// Every address in a tool call's arguments, recursively: strings that are
/// address lists (not prose), inside arrays and nested objects. The role is
/// taken from the nearest enclosing object key.
pub fn addresses_in_arguments(args: &Value) -> Vec<ArgAddress> {
    addresses_in_arguments_checked(args).0
}

/// [`addresses_in_arguments`], and whether every address was kept: false
/// when a limit cut the list (more than 100,000 addresses, nesting deeper
/// than 64, an address-bearing string over 16 MiB).
pub fn addresses_in_arguments_checked(args: &Value) -> (Vec<ArgAddress>, bool) {
    let mut complete = true;
    fn walk(v: &Value, path: &mut String, role: &'static str, depth: usize, out: &mut Vec<ArgAddress>, complete: &mut bool) {
        if depth > 64 || out.len() >= MAX_ADDRESSES_PER_CALL {
            *complete = false;
            return;
        }
        match v {
            Value::String(s) => {
                if s.len() > address::MAX_LIST_BYTES && s.contains('@') {
                    *complete = false;
                }
                if let Some(list) = address::parse_list(s) {
                    let many = list.len() > 1;
                    if out.len() + list.len() > MAX_ADDRESSES_PER_CALL {
                        *complete = false;
                    }
                    for (i, a) in list.into_iter().take(MAX_ADDRESSES_PER_CALL - out.len()).enumerate() {
                        let p = if many { format!("{path}<{i}>") } else { path.clone() };
                        out.push(ArgAddress { arg_path: p, role, address: a });
                    }
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    walk(x, path, role, depth + 1, out, complete);
                    path.truncate(len);
                }
            }
            Value::Object(m) => {
                // {"email": "x@y", "name": "X"} inside "to": keep the outer role.
                for (k, x) in m {
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(k);
                    let r = match address::role_of_arg(k) {
                        "other" => role,
                        "to" if role != "other" => role,
                        specific => specific,
                    };
                    walk(x, path, r, depth + 1, out, complete);
                    path.truncate(len);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(args, &mut String::new(), "other", 0, &mut out, &mut complete);
    (out, complete)
}

fn message_id_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r#"(?i)\b(message[-_ ]?id)\b"?\s*[:=]\s*"?<?([A-Za-z0-9][A-Za-z0-9._%+\-@$=/]{2,250})>?"#).unwrap()
    })
}

/// Message ids a tool's result returned: `MessageID: …` in text,
/// `"MessageID"`/`message_id`/`messageId` JSON fields (also inside text
/// content that is itself JSON), and `Message-ID:` headers.
pub fn message_ids_in(result: &Value) -> Vec<(String, &'static str)> {
    fn clean(s: &str) -> String {
        s.trim().trim_start_matches('<').trim_end_matches('>').trim_end_matches(['.', ',', ')']).to_string()
    }
    fn walk(v: &Value, depth: usize, out: &mut Vec<(String, &'static str)>) {
        if depth > 64 || out.len() > 1000 {
            return;
        }
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    let norm: String = k.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase();
                    if norm == "messageid" {
                        if let Some(s) = x.as_str() {
                            if !s.trim().is_empty() {
                                out.push((clean(s), "json"));
                            }
                            continue;
                        }
                    }
                    walk(x, depth + 1, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, depth + 1, out)),
            Value::String(s) => {
                let t = s.trim_start();
                if (t.starts_with('{') || t.starts_with('[')) && t.len() < 1 << 20 {
                    if let Ok(inner) = serde_json::from_str::<Value>(t) {
                        walk(&inner, depth + 1, out);
                        return;
                    }
                }
                for c in message_id_regex().captures_iter(s) {
                    let label = c.get(1).map(|m| m.as_str()).unwrap_or("");
                    let kind = if label.eq_ignore_ascii_case("message-id") { "header" } else { "text" };
                    out.push((clean(&c[2]), kind));
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(result, 0, &mut out);
    let mut seen = std::collections::HashSet::new();
    out.retain(|(id, _)| !id.is_empty() && seen.insert(id.clone()));
    out
}

impl McpDeriver {
    pub fn new(file: Arc<str>) -> Self {
        McpDeriver { file, sessions: HashMap::new(), session_order: VecDeque::new() }
    }

    fn session_key(ev: &McpEvent) -> String {
        match &ev.session_hint {
            Some(h) => format!("hint\0{h}"),
            None => format!("server\0{}", ev.server_name),
        }
    }

    fn new_session(&self, ev: &McpEvent) -> Session {
        let id = match &ev.session_hint {
            Some(h) => h.chars().take(128).collect(),
            None => short_hash(&[&self.file, &ev.server_name, &ev.pos.offset.to_string()]),
        };
        Session {
            id,
            server_name: ev.server_name.clone(),
            host: ev.host.clone(),
            start_ts: ev.ts,
            start_pos: ev.pos.clone(),
            recorded: ev.session_hint.is_some(),
            ..Default::default()
        }
    }

    /// Start a new session for the event's key, closing the old one.
    fn restart(&mut self, key: &str, ev: &McpEvent, out: &mut RowOut<'_>) {
        if let Some(old) = self.sessions.remove(key) {
            Self::close(old, out);
        }
        let s = self.new_session(ev);
        self.insert(key.to_string(), s, out);
    }

    fn insert(&mut self, key: String, s: Session, out: &mut RowOut<'_>) {
        if self.sessions.len() >= MAX_SESSIONS {
            while let Some(k) = self.session_order.pop_front() {
                if let Some(old) = self.sessions.remove(&k) {
                    Self::close(old, out);
                    break;
                }
            }
        }
        self.session_order.push_back(key.clone());
        self.sessions.insert(key, s);
    }

    pub(crate) fn event(&mut self, ev: McpEvent, out: &mut RowOut<'_>) {
        let key = Self::session_key(&ev);
        match &ev.kind {
            McpEventKind::Launch { command, args } => {
                let busy = self.sessions.get(&key).is_some_and(|s| s.seen_messages);
                if busy || !self.sessions.contains_key(&key) {
                    self.restart(&key, &ev, out);
                }
                if let (Some(cmd), Some(s)) = (command, self.sessions.get_mut(&key)) {
                    let mut full = vec![cmd.clone()];
                    full.extend(args.iter().cloned());
                    s.launch_command = Some(full.join(" "));
                    s.package = crate::package::package_of(cmd, args);
                }
            }
            McpEventKind::Message { direction, body, truncated } => {
                let is_init_request = match body {
                    Body::Json(v) => v.get("method").and_then(Value::as_str) == Some("initialize") && v.get("id").is_some(),
                    Body::Partial { method, is_response, .. } => !is_response && method.as_deref() == Some("initialize"),
                };
                let needs_new = match self.sessions.get(&key) {
                    None => true,
                    Some(s) => is_init_request && s.seen_initialize && ev.session_hint.is_none(),
                };
                if needs_new {
                    self.restart(&key, &ev, out);
                }
                let session = self.sessions.get_mut(&key).expect("session exists");
                session.seen_messages = true;
                session.messages += 1;
                if is_init_request {
                    session.seen_initialize = true;
                }
                Self::message(session, &ev, *direction, body, *truncated, out);
            }
        }
    }

    fn message(s: &mut Session, ev: &McpEvent, dir: Direction, body: &Body, truncated: bool, out: &mut RowOut<'_>) {
        let date = date_of(ev.ts);
        // Classify and extract.
        let (kind, mut method, rpc_id, mut tool_name, params, result, error) = match body {
            Body::Json(v) => {
                let method = v.get("method").and_then(Value::as_str).map(str::to_string);
                let id = v.get("id").and_then(id_text);
                let kind = if method.is_some() {
                    if id.is_some() { "request" } else { "notification" }
                } else if v.get("error").is_some() {
                    "error"
                } else {
                    "response"
                };
                let params = v.get("params").cloned();
                let tool = if method.as_deref() == Some("tools/call") {
                    params.as_ref().and_then(|p| p.get("name")).and_then(Value::as_str).map(str::to_string)
                } else {
                    None
                };
                (kind, method, id, tool, params, v.get("result").cloned(), v.get("error").cloned())
            }
            Body::Partial { method, id, is_response, tool_name, .. } => {
                let kind = if *is_response { "response" } else if id.is_some() { "request" } else { "notification" };
                (kind, method.clone(), id.clone(), tool_name.clone(), None, None, None)
            }
        };
        let raw_partial = match body {
            Body::Partial { raw, .. } => raw.clone(),
            _ => None,
        };

        // Lifecycle facts.
        if s.client_name.is_none() && ev.host_context.client_name.is_some() {
            s.client_name = ev.host_context.client_name.clone();
            s.client_version = ev.host_context.client_version.clone();
        }
        if let Some(v) = ev.host_context.server_version.as_deref().filter(|v| !v.is_empty()) {
            s.server_version = Some(v.to_string());
        }
        // 2026-07-28: the client names itself in every request's `_meta`.
        if let Some(ci) = params.as_ref().and_then(|p| p.get("_meta")).and_then(|m| m.get(CLIENT_INFO_META)) {
            s.client_name = ci.get("name").and_then(Value::as_str).map(str::to_string).or(s.client_name.take());
            s.client_version = ci.get("version").and_then(Value::as_str).map(str::to_string).or(s.client_version.take());
        }
        if method.as_deref() == Some("initialize") && kind == "request" {
            if let Some(ci) = params.as_ref().and_then(|p| p.get("clientInfo")) {
                s.client_name = ci.get("name").and_then(Value::as_str).map(str::to_string);
                s.client_version = ci.get("version").and_then(Value::as_str).map(str::to_string);
            }
        }
        let is_error_payload = error.is_some()
            || result.as_ref().and_then(|r| r.get("isError")).and_then(Value::as_bool).unwrap_or(false);

        // Responses: find their request.
        let mut answered: Option<Pending> = None;
        if kind == "response" || kind == "error" {
            if let Some(id) = &rpc_id {
                let k = (dir.opposite() == Direction::ClientToServer, id.clone());
                if let Some(p) = s.pending.remove(&k) {
                    method = method.or(p.method.clone());
                    tool_name = tool_name.or(p.tool_name.clone());
                    answered = Some(p);
                }
            }
            // 2026-07-28 has no initialize: a server may name itself on every
            // result. The latest name applies from this message on.
            if let Some(si) = result.as_ref().and_then(|r| r.get("_meta")).and_then(|m| m.get(SERVER_INFO_META)) {
                s.server_info_name = si.get("name").and_then(Value::as_str).filter(|v| !v.is_empty()).map(str::to_string).or(s.server_info_name.take());
                s.server_version = si.get("version").and_then(Value::as_str).filter(|v| !v.is_empty()).map(str::to_string).or(s.server_version.take());
                if let Some(p) = answered.as_mut() {
                    p.server_version = s.server_version.clone();
                }
            }
            if let Some(r) = &result {
                if method.as_deref() == Some("initialize") || r.get("serverInfo").is_some() {
                    if let Some(si) = r.get("serverInfo") {
                        s.server_info_name = si.get("name").and_then(Value::as_str).map(str::to_string);
                        s.server_version = si.get("version").and_then(Value::as_str).map(str::to_string);
                    }
                }
            }
        }

        // The message row.
        let params_json = params.as_ref().map(json_text).or_else(|| if kind == "request" || kind == "notification" { raw_partial.clone() } else { None });
        let result_json = result.as_ref().map(json_text).or_else(|| if kind == "response" { raw_partial.clone() } else { None });
        let error_json = error.as_ref().map(json_text);
        let mut row = NamedRow::new(Table::McpMessages);
        row.set("ts", Val::Ts(Some(ev.ts)))
            .set("date", Val::Str(Some(&date)))
            .set("host", Val::Str(ev.host.as_deref()))
            .set("session_id", Val::Str(Some(&s.id)))
            .set("client_name", Val::Str(s.client_name.as_deref()))
            .set("client_version", Val::Str(s.client_version.as_deref()))
            .set("server_name", Val::Str(Some(&s.server_name)))
            .set("server_version", Val::Str(s.server_version.as_deref()))
            .set("server_info_name", Val::Str(s.server_info_name.as_deref()))
            .set("direction", Val::Str(Some(dir.name())))
            .set("message_kind", Val::Str(Some(kind)))
            .set("method", Val::Str(method.as_deref()))
            .set("rpc_id", Val::Str(rpc_id.as_deref()))
            .set("tool_name", Val::Str(tool_name.as_deref()))
            .set("params_json", Val::Str(params_json.as_deref()))
            .set("result_json", Val::Str(result_json.as_deref()))
            .set("error_json", Val::Str(error_json.as_deref()))
            .set("is_error", Val::Bool(Some(is_error_payload)))
            .set("truncated", Val::Bool(Some(truncated)));
        out.named(ev.pos.offset, &ev.pos, row, None);

        // Requests wait for their response.
        if kind == "request" {
            if let Some(id) = &rpc_id {
                let call_id = short_hash(&[&s.id, id, &ev.pos.offset.to_string()]);
                let arguments = params.as_ref().and_then(|p| p.get("arguments"));
                let arguments_observed = !ev.host_context.arguments_not_recorded;
                let recipients_complete = if method.as_deref() == Some("tools/call") {
                    Self::intended(s, ev, &call_id, tool_name.as_deref(), arguments, raw_partial.as_deref(), out) && !truncated && arguments_observed
                } else {
                    true
                };
                let p = Pending {
                    method: method.clone(),
                    rpc_id: id.clone(),
                    ts: ev.ts,
                    pos: ev.pos.clone(),
                    tool_name: tool_name.clone(),
                    arguments_json: arguments.map(json_text).or_else(|| raw_partial.clone()),
                    call_id,
                    truncated,
                    recipients_complete,
                    server_version: s.server_version.clone(),
                    host: ev.host.clone(),
                    host_tool_name: ev.host_context.host_tool_name.clone(),
                    tool_name_split: ev.host_context.tool_name_split,
                    arguments_observed,
                };
                let k = (dir == Direction::ClientToServer, id.clone());
                if let Some(old) = s.pending.insert(k.clone(), p) {
                    // Same id reused before its answer: the older request stays unanswered.
                    Self::unanswered(s, old, out);
                }
                s.order.push_back(k);
                while s.pending.len() > MAX_PENDING_PER_SESSION {
                    if let Some(k) = s.order.pop_front() {
                        if let Some(old) = s.pending.remove(&k) {
                            Self::unanswered(s, old, out);
                        }
                    }
                }
                if s.order.len() > 4 * MAX_PENDING_PER_SESSION {
                    let pending = &s.pending;
                    s.order.retain(|k| pending.contains_key(k));
                }
            }
        }

        // Answered requests.
        if let Some(p) = answered {
            match p.method.as_deref() {
                Some("tools/call") => {
                    let result_text = result.as_ref().or(error.as_ref()).map(json_text).or(raw_partial.clone());
                    Self::call_row(s, &p, Some((ev, is_error_payload, truncated, result_text.as_deref())), out);
                    if let Some(r) = &result {
                        for (mid, found_in) in message_ids_in(r) {
                            let mut row = NamedRow::new(Table::CallMessageIds);
                            row.set("ts", Val::Ts(Some(ev.ts)))
                                .set("date", Val::Str(Some(&date)))
                                .set("call_id", Val::Str(Some(&p.call_id)))
                                .set("session_id", Val::Str(Some(&s.id)))
                                .set("server_name", Val::Str(Some(&s.server_name)))
                                .set("message_id", Val::Str(Some(&mid)))
                                .set("found_in", Val::Str(Some(found_in)));
                            out.named(ev.pos.offset, &ev.pos, row, None);
                        }
                    }
                }
                Some("tools/list") => {
                    if let Some(tools) = result.as_ref().and_then(|r| r.get("tools")).and_then(Value::as_array) {
                        for t in tools {
                            Self::definition(s, ev, &date, t, out);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    fn intended(
        s: &Session,
        ev: &McpEvent,
        call_id: &str,
        tool: Option<&str>,
        arguments: Option<&Value>,
        raw_partial: Option<&str>,
        out: &mut RowOut<'_>,
    ) -> bool {
        let date = date_of(ev.ts);
        let (found, complete) = match arguments {
            Some(a) => addresses_in_arguments_checked(a),
            // A cut payload: every quoted address-list string, path unknown.
            None => raw_partial
                .map(|raw| {
                    let mut v = Vec::new();
                    for piece in raw.split('"') {
                        if let Some(list) = address::parse_list(piece) {
                            for a in list {
                                v.push(ArgAddress { arg_path: "(truncated)".into(), role: "other", address: a });
                            }
                        }
                    }
                    (v, false)
                })
                .unwrap_or((Vec::new(), arguments.is_some() || raw_partial.is_none())),
        };
        for a in found {
            let mut row = NamedRow::new(Table::IntendedRecipients);
            row.set("ts", Val::Ts(Some(ev.ts)))
                .set("date", Val::Str(Some(&date)))
                .set("call_id", Val::Str(Some(call_id)))
                .set("session_id", Val::Str(Some(&s.id)))
                .set("server_name", Val::Str(Some(&s.server_name)))
                .set("server_version", Val::Str(s.server_version.as_deref()))
                .set("tool_name", Val::Str(tool))
                .set("arg_path", Val::Str(Some(&a.arg_path)))
                .set("arg_role", Val::Str(Some(a.role)))
                .set("address", Val::Str(Some(&a.address.address)))
                .set("address_raw", Val::Str(a.address.raw.as_deref()))
                .set("domain", Val::Str(Some(&a.address.domain)));
            out.named(ev.pos.offset, &ev.pos, row, None);
        }
        complete
    }

    fn definition(s: &Session, ev: &McpEvent, date: &str, tool: &Value, out: &mut RowOut<'_>) {
        let Some(name) = tool.get("name").and_then(Value::as_str) else { return };
        let desc = tool.get("description").and_then(Value::as_str);
        let schema = tool.get("inputSchema").map(canonical_json);
        let ann = tool.get("annotations").map(canonical_json);
        let sha = tool_definition_sha256(tool);
        let mut row = NamedRow::new(Table::ToolDefinitions);
        row.set("ts", Val::Ts(Some(ev.ts)))
            .set("date", Val::Str(Some(date)))
            .set("session_id", Val::Str(Some(&s.id)))
            .set("server_name", Val::Str(Some(&s.server_name)))
            .set("server_version", Val::Str(s.server_version.as_deref()))
            .set("tool_name", Val::Str(Some(name)))
            .set("description", Val::Str(desc))
            .set("input_schema_json", Val::Str(schema.as_deref()))
            .set("annotations_json", Val::Str(ann.as_deref()))
            .set("definition_sha256", Val::Str(Some(&sha)));
        out.named(ev.pos.offset, &ev.pos, row, None);
    }

    /// A tools/call row. `response` is (event, is_error, truncated, result text).
    fn call_row(s: &Session, p: &Pending, response: Option<(&McpEvent, bool, bool, Option<&str>)>, out: &mut RowOut<'_>) {
        let date = date_of(p.ts);
        let (ts_end, dur, is_err, trunc, result, resp_line, filter) = match response {
            Some((ev, e, t, r)) => (
                Some(ev.ts),
                Some((ev.ts - p.ts) as f64 / 1000.0),
                Some(e),
                t || p.truncated,
                r,
                Some(ev.pos.line as i64),
                ev.pos.offset,
            ),
            None => (None, None, None, p.truncated, None, None, p.pos.offset),
        };
        let mut row = NamedRow::new(Table::ToolCalls);
        row.set("ts", Val::Ts(Some(p.ts)))
            .set("date", Val::Str(Some(&date)))
            .set("call_id", Val::Str(Some(&p.call_id)))
            .set("ts_end", Val::Ts(ts_end))
            .set("duration_ms", Val::Float(dur))
            .set("session_id", Val::Str(Some(&s.id)))
            .set("host", Val::Str(p.host.as_deref()))
            .set("server_name", Val::Str(Some(&s.server_name)))
            .set("server_version", Val::Str(p.server_version.as_deref()))
            .set("tool_name", Val::Str(p.tool_name.as_deref()))
            .set("rpc_id", Val::Str(Some(&p.rpc_id)))
            .set("arguments_json", Val::Str(p.arguments_json.as_deref()))
            .set("result_json", Val::Str(result))
            .set("is_error", Val::Bool(is_err))
            .set("truncated", Val::Bool(Some(trunc)))
            .set("response_source_line", Val::Int(resp_line))
            .set("recipients_observed", Val::Bool(Some(p.recipients_complete)))
            .set("host_tool_name", Val::Str(p.host_tool_name.as_deref()))
            .set("tool_name_split", Val::Str(p.tool_name_split))
            .set("arguments_observed", Val::Bool(Some(p.arguments_observed)));
        out.named(filter, &p.pos, row, None);
    }

    fn unanswered(s: &Session, p: Pending, out: &mut RowOut<'_>) {
        if p.method.as_deref() == Some("tools/call") {
            Self::call_row(s, &p, None, out);
        }
    }

    fn close(mut s: Session, out: &mut RowOut<'_>) {
        let pending: Vec<Pending> = s.order.drain(..).filter_map(|k| s.pending.remove(&k)).collect();
        for p in pending {
            Self::unanswered(&s, p, out);
        }
        let date = date_of(s.start_ts);
        let pkg = s.package.as_ref();
        let mut row = NamedRow::new(Table::McpSessions);
        row.set("ts", Val::Ts(Some(s.start_ts)))
            .set("date", Val::Str(Some(&date)))
            .set("session_id", Val::Str(Some(&s.id)))
            .set("host", Val::Str(s.host.as_deref()))
            .set("server_name", Val::Str(Some(&s.server_name)))
            .set("client_name", Val::Str(s.client_name.as_deref()))
            .set("client_version", Val::Str(s.client_version.as_deref()))
            .set("server_info_name", Val::Str(s.server_info_name.as_deref()))
            .set("server_version", Val::Str(s.server_version.as_deref()))
            .set("launch_command", Val::Str(s.launch_command.as_deref()))
            .set("package_manager", Val::Str(pkg.map(|p| p.manager.as_str())))
            .set("package_name", Val::Str(pkg.map(|p| p.name.as_str())))
            .set("package_spec", Val::Str(pkg.map(|p| p.spec.as_str())))
            .set("package_version", Val::Str(pkg.and_then(|p| p.version.as_deref())))
            .set("package_pinned", Val::Bool(pkg.map(|p| p.pinned)))
            .set("messages", Val::Int(Some(s.messages)))
            .set("session_source", Val::Str(Some(if s.recorded { "recorded" } else { "connection" })));
        out.named(s.start_pos.offset, &s.start_pos, row, None);
    }

    /// End of the source: requests never answered become unanswered calls.
    pub(crate) fn finish(&mut self, out: &mut RowOut<'_>) {
        let keys: Vec<String> = self.session_order.drain(..).collect();
        for k in keys {
            if let Some(s) = self.sessions.remove(&k) {
                Self::close(s, out);
            }
        }
    }
}

#[cfg(test)]
mod exact_id_tests {
    use super::*;

    /// The message's id after [`keep_exact_id`].
    fn exact(text: &str) -> Value {
        let mut v: Value = serde_json::from_str(text).unwrap();
        keep_exact_id(&mut v, text);
        v["id"].clone()
    }

    #[test]
    fn ids_beyond_64_bits_stay_exact() {
        let a = exact(r#"{"jsonrpc":"2.0","id":1180591620717411303425,"result":{}}"#);
        let b = exact(r#"{"jsonrpc":"2.0","id":1180591620717411303424,"result":{}}"#);
        assert_eq!(id_text(&a).unwrap(), "1180591620717411303425");
        assert_ne!(id_text(&a), id_text(&b));
        assert_eq!(id_text(&exact(r#"{"jsonrpc":"2.0","id":-0,"result":{}}"#)).unwrap(), "-0");
        assert_eq!(exact(r#"{"jsonrpc":"2.0","id":7,"result":{}}"#), serde_json::json!(7), "ordinary ids keep their type");
        assert_eq!(member_text(r#"{"a":1,"message":{"id":12345678901234567890123}}"#, "message"), Some(r#"{"id":12345678901234567890123}"#));
        assert_eq!(member_text(r#" { "s" : "x\"}" , "id" : 5 } "#, "id"), Some("5"));
        assert_eq!(member_text(r#"{"nested":{"id":1},"id":[1,{"a":"]"}]}"#, "id"), Some(r#"[1,{"a":"]"}]"#));
        for bad in ["", "[1]", "{", r#"{"id""#, r#"{"a":"#, "{\"a\":1", "{]]]]"] {
            let _ = member_text(bad, "id");
        }
    }
}
