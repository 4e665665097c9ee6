//! OpenTelemetry as JSON: OTLP JSON files (the file exporter's and the
//! Collector `file` exporter's JSON Lines, one `TracesData` / `LogsData`
//! request per line, or one pretty-printed request) and the same records
//! re-wrapped by a pipeline with flattened attributes (Elastic's
//! `{"events":[{attributes, resource, scope, …}]}`).
//!
//! What becomes an MCP call:
//! - a span with the MCP semantic conventions for `tools/call`
//!   (`mcp.method.name`, `gen_ai.tool.name`, `jsonrpc.request.id`,
//!   `mcp.session.id`, opt-in `gen_ai.tool.call.arguments` / `.result`;
//!   common aliases `mcp.tool.name`, `mcp.server.name`): the request at the
//!   span's start, the response at its end. The Python SDK's own CLIENT
//!   span (`MCP send tools/call TOOL`) names the tool only in its name and
//!   no server; a SERVER span's server is its service (`service.name`,
//!   `service.version`). Without `mcp.session.id` (stdio has none) the
//!   session is the process, `service.instance.id`: one stdio connection per
//!   server process, so a restart at a new version is a new session;
//! - the agents' log events: Claude Code `claude_code.tool_result` (an MCP
//!   call is `tool_name:"mcp_tool"`, server and tool inside the JSON string
//!   `tool_parameters`, arguments in `tool_input` only with
//!   `OTEL_LOG_TOOL_DETAILS=1`), Codex `codex.tool_result` (`mcp_server`,
//!   `tool_name`, `call_id`, `arguments`, `output`) and Gemini CLI
//!   `gemini_cli.tool_call` (`mcp_server_name`, `function_name`,
//!   `function_args`): the request at the event's time less its duration,
//!   the response at the event's time.
//!
//! Telemetry often leaves the arguments out (they are opt-in): such a call
//! is marked "arguments not recorded" ([`HostContext::arguments_not_recorded`]),
//! never read as a call with no recipients.

use serde_json::{json, Map, Value};

use crate::agents::{bounded, content_blocks, split_prefixed, tools_call_request, tools_call_response, HostMessage, KeptResult};
use crate::collect::LineOutcome;
use crate::jsondoc::{Assembler, Document};
use crate::mcp::{Direction, HostContext};
use crate::time::parse_rfc3339;
use crate::{Emit, Format, Line, Parser, Pos, SourceInfo};

/// The server name of a call whose record does not name one (Claude Code's
/// events without tool details).
pub const SERVER_NOT_RECORDED: &str = "(not recorded)";

/// A line or document head of OTLP JSON or a re-wrapped OTel export (detection).
pub fn looks_like(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with("{\"resourceSpans\"") || t.starts_with("{\"resourceLogs\"") || t.starts_with("\"resourceSpans\"") || t.starts_with("\"resourceLogs\"")
}

/// A pretty-printed export (detection on the whole head).
pub fn looks_like_document(head: &str) -> bool {
    let t = head.trim_start();
    let Some(body) = t.strip_prefix('{') else { return false };
    let first_key = body.trim_start();
    first_key.starts_with("\"resourceSpans\"")
        || first_key.starts_with("\"resourceLogs\"")
        // A pipeline's re-wrap of OTel records: events with OTel scope and resource.
        || first_key.starts_with("\"events\"") && head.contains("\"scope\"") && head.contains("\"resource\"") && (head.contains("\"event.name\"") || head.contains("\"span_id\"") || head.contains("\"service.name\""))
}

/// One span or log record with everything a reading needs.
struct Signal<'a> {
    /// Span start, or the log record's time.
    start: Option<i64>,
    /// Span end (spans only).
    end: Option<i64>,
    name: Option<&'a str>,
    /// Span kind: 2 = server, 3 = client.
    kind: Option<i64>,
    attrs: Map<String, Value>,
    resource: Map<String, Value>,
    span_id: Option<&'a str>,
    status_error: bool,
    pointer: String,
}

impl Signal<'_> {
    fn attr(&self, key: &str) -> Option<&str> {
        self.attrs.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
    }

    fn attr_value(&self, key: &str) -> Option<&Value> {
        self.attrs.get(key).filter(|v| !v.is_null())
    }

    /// The event name: `event.name` (agents put it there), else the log
    /// record's `eventName` or body text (kept as `name`).
    fn event_name(&self) -> Option<&str> {
        self.attr("event.name").or(self.name)
    }

    fn duration_micros(&self) -> i64 {
        self.attrs.get("duration_ms").and_then(number).map(|ms| (ms * 1000.0) as i64).unwrap_or(0).max(0)
    }

    fn failed(&self) -> bool {
        self.status_error || self.attr("success") == Some("false") || self.attrs.get("success") == Some(&Value::Bool(false)) || self.attr("error.type").is_some()
    }
}

/// A number from a JSON number or a numeric string (OTLP `intValue` is a string).
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Nanoseconds since the epoch (number or string) as microseconds.
fn nanos(v: Option<&Value>) -> Option<i64> {
    let n: i128 = match v? {
        Value::Number(n) => n.as_u64().map(i128::from)?,
        Value::String(s) => s.parse().ok()?,
        _ => return None,
    };
    (n > 0).then(|| (n / 1000) as i64)
}

/// An OTLP `AnyValue` as plain JSON.
fn any_value(v: &Value) -> Value {
    let Some(o) = v.as_object() else { return v.clone() };
    if let Some(s) = o.get("stringValue") {
        return s.clone();
    }
    if let Some(b) = o.get("boolValue") {
        return b.clone();
    }
    if let Some(i) = o.get("intValue") {
        return match i {
            Value::String(s) => s.parse::<i64>().map(Value::from).unwrap_or_else(|_| i.clone()),
            other => other.clone(),
        };
    }
    if let Some(d) = o.get("doubleValue") {
        return d.clone();
    }
    if let Some(a) = o.get("arrayValue") {
        return Value::Array(a.get("values").and_then(Value::as_array).map(|vs| vs.iter().map(any_value).collect()).unwrap_or_default());
    }
    if let Some(kv) = o.get("kvlistValue") {
        return Value::Object(key_values(kv.get("values")));
    }
    if let Some(b) = o.get("bytesValue") {
        return b.clone();
    }
    Value::Null
}

/// OTLP attributes (`[{key, value}]`) or an already flat map.
fn key_values(v: Option<&Value>) -> Map<String, Value> {
    match v {
        Some(Value::Array(kvs)) => kvs
            .iter()
            .filter_map(|kv| Some((kv.get("key")?.as_str()?.to_string(), kv.get("value").map(any_value).unwrap_or(Value::Null))))
            .collect(),
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    }
}

/// Every span and log record of an OTLP request or a re-wrapped export.
fn signals<'a>(doc: &'a Value) -> Vec<Signal<'a>> {
    let mut out = Vec::new();
    for (res_key, scope_key, rec_key) in [("resourceSpans", "scopeSpans", "spans"), ("resourceLogs", "scopeLogs", "logRecords")] {
        for (i, rs) in doc.get(res_key).and_then(Value::as_array).into_iter().flatten().enumerate() {
            let resource = key_values(rs.get("resource").and_then(|r| r.get("attributes")));
            // Older exporters wrote `instrumentationLibrarySpans`.
            let scopes = rs.get(scope_key).or_else(|| rs.get(if rec_key == "spans" { "instrumentationLibrarySpans" } else { "instrumentationLibraryLogs" }));
            for (j, ss) in scopes.and_then(Value::as_array).into_iter().flatten().enumerate() {
                for (k, r) in ss.get(rec_key).and_then(Value::as_array).into_iter().flatten().enumerate() {
                    let span = rec_key == "spans";
                    let name = if span { r.get("name").and_then(Value::as_str) } else { r.get("eventName").and_then(Value::as_str).or_else(|| r.get("body").and_then(|b| b.get("stringValue")).and_then(Value::as_str)) };
                    out.push(Signal {
                        start: nanos(r.get(if span { "startTimeUnixNano" } else { "timeUnixNano" })).or_else(|| nanos(r.get("observedTimeUnixNano"))),
                        end: if span { nanos(r.get("endTimeUnixNano")) } else { None },
                        name,
                        kind: r.get("kind").and_then(number).map(|k| k as i64),
                        attrs: key_values(r.get("attributes")),
                        resource: resource.clone(),
                        span_id: r.get("spanId").and_then(Value::as_str),
                        status_error: r.get("status").and_then(|s| s.get("code")).is_some_and(|c| c == 2 || c == "STATUS_CODE_ERROR"),
                        pointer: format!("/{res_key}/{i}/{scope_key}/{j}/{rec_key}/{k}"),
                    });
                }
            }
        }
    }
    // A pipeline's re-wrap: `events[]` with flat attributes and resource.
    for (i, e) in doc.get("events").and_then(Value::as_array).into_iter().flatten().enumerate() {
        let at = e.get("@timestamp").and_then(Value::as_str).and_then(parse_rfc3339);
        let duration = e.get("duration").and_then(number).map(|ns| (ns / 1000.0) as i64);
        let name = e.get("name").and_then(Value::as_str).or_else(|| e.get("body").and_then(|b| b.get("text")).and_then(Value::as_str));
        out.push(Signal {
            start: at,
            end: duration.zip(at).map(|(d, t)| t + d),
            name,
            kind: None,
            attrs: key_values(e.get("attributes")),
            resource: key_values(e.get("resource").and_then(|r| r.get("attributes"))),
            span_id: e.get("span_id").and_then(Value::as_str),
            status_error: false,
            pointer: format!("/events/{i}"),
        });
    }
    out
}

/// A JSON value an attribute holds as a string of JSON (or as structure).
fn json_attr(v: Option<&Value>) -> Option<Value> {
    match v? {
        Value::String(s) => Some(serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone()))),
        Value::Null => None,
        other => Some(other.clone()),
    }
}

/// What one signal says of one MCP tool call.
struct Call {
    id: String,
    server: String,
    tool: String,
    host_tool_name: Option<String>,
    split: &'static str,
    session: Option<String>,
    arguments: Option<Value>,
    result: Option<Value>,
    failed: bool,
    start: i64,
    end: i64,
    /// The MCP client (the agent) and its version, where the record says.
    client: Option<(String, Option<String>)>,
    /// The server's own version, where the server wrote the record.
    server_version: Option<String>,
}

/// Read a signal as an MCP tool call, if it is one.
fn call_of(s: &Signal<'_>, fallback_ts: i64) -> Option<Call> {
    if s.attr("mcp.method.name").is_some() || s.attr("rpc.method").is_some_and(|m| m == "tools/call") {
        return semconv_call(s, fallback_ts);
    }
    match s.event_name()? {
        "tool_result" | "claude_code.tool_result" => claude_code_call(s, fallback_ts),
        "codex.tool_result" => codex_call(s, fallback_ts),
        "gemini_cli.tool_call" | "tool_call" => gemini_call(s, fallback_ts),
        _ => None,
    }
}

/// An event's end time and its start (end less `duration_ms`).
fn event_times(s: &Signal<'_>, fallback_ts: i64) -> (i64, i64) {
    let end = s.attr("event.timestamp").and_then(parse_rfc3339).or(s.start).unwrap_or(fallback_ts);
    (end - s.duration_micros(), end)
}

fn semconv_call(s: &Signal<'_>, fallback_ts: i64) -> Option<Call> {
    let method = s.attr("mcp.method.name").or_else(|| s.attr("rpc.method"))?;
    if method != "tools/call" {
        return None;
    }
    // The semconv span name is `tools/call TOOL`; the Python SDK's CLIENT
    // span is `MCP send tools/call TOOL` and carries no tool attribute.
    let tool = s.attr("gen_ai.tool.name").or_else(|| s.attr("mcp.tool.name")).or_else(|| s.name.and_then(|n| n.split_once("tools/call ")).map(|(_, t)| t.trim()).filter(|t| !t.is_empty()))?;
    // No attribute names the MCP server: an alias where a library sets one,
    // else the server's own service name on its SERVER span, else the
    // address the client reached.
    let service = s.resource.get("service.name").and_then(Value::as_str);
    let server = s.attr("mcp.server.name").or(if s.kind == Some(2) { service } else { None }).or_else(|| s.attr("server.address")).unwrap_or(SERVER_NOT_RECORDED);
    let start = s.start.unwrap_or(fallback_ts);
    let id = s.attrs.get("jsonrpc.request.id").map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())).or_else(|| s.span_id.map(str::to_string))?;
    // On a CLIENT span the service is the agent: the MCP client.
    let service_version = s.resource.get("service.version").and_then(Value::as_str).map(|v| bounded(v, 128));
    let client = service.filter(|_| s.kind == Some(3)).map(|n| (bounded(n, 128), service_version.clone()));
    // On a SERVER span named by its service, the service's version is the server's.
    let server_version = service_version.filter(|_| s.kind == Some(2) && s.attr("mcp.server.name").is_none());
    Some(Call {
        id,
        server: server.to_string(),
        tool: tool.to_string(),
        host_tool_name: None,
        split: "exact",
        session: s.attr("mcp.session.id").or_else(|| s.resource.get("service.instance.id").and_then(Value::as_str)).map(|x| bounded(x, 128)),
        arguments: json_attr(s.attr_value("gen_ai.tool.call.arguments")),
        result: json_attr(s.attr_value("gen_ai.tool.call.result")),
        failed: s.failed(),
        start,
        end: s.end.unwrap_or(start),
        client,
        server_version,
    })
}

fn claude_code_call(s: &Signal<'_>, fallback_ts: i64) -> Option<Call> {
    let tool_name = s.attr("tool_name")?;
    let params = json_attr(s.attr_value("tool_parameters"));
    let (server, tool, split, host) = if tool_name == "mcp_tool" {
        let p = params.as_ref();
        match (p.and_then(|p| p.get("mcp_server_name")).and_then(Value::as_str), p.and_then(|p| p.get("mcp_tool_name")).and_then(Value::as_str)) {
            (Some(sv), Some(t)) => (sv.to_string(), t.to_string(), "exact", format!("mcp__{sv}__{t}")),
            // Without OTEL_LOG_TOOL_DETAILS the event says only "an MCP tool".
            _ => (SERVER_NOT_RECORDED.to_string(), SERVER_NOT_RECORDED.to_string(), "not_recorded", tool_name.to_string()),
        }
    } else {
        let sp = split_prefixed(tool_name, "mcp__", "__")?;
        let q = sp.quality();
        (sp.server, sp.tool, q, tool_name.to_string())
    };
    let (start, end) = event_times(s, fallback_ts);
    let id = s.attr("tool_use_id").map(str::to_string).unwrap_or_else(|| format!("{}@{end}", s.pointer));
    let version = s.resource.get("service.version").and_then(Value::as_str).map(str::to_string);
    Some(Call {
        id,
        session: s.attr("session.id").map(|x| format!("{}/{server}", bounded(x, 128))),
        server,
        tool,
        host_tool_name: Some(host),
        split,
        arguments: json_attr(s.attr_value("tool_input")),
        result: None,
        failed: s.failed(),
        start,
        end,
        client: Some(("claude-code".into(), version)),
        server_version: None,
    })
}

fn codex_call(s: &Signal<'_>, fallback_ts: i64) -> Option<Call> {
    let server = s.attr("mcp_server")?;
    let tool_name = s.attr("tool_name")?;
    let tool = tool_name.strip_prefix(&format!("mcp__{server}__")).unwrap_or(tool_name);
    let (start, end) = event_times(s, fallback_ts);
    let id = s.attr("call_id").map(str::to_string).unwrap_or_else(|| format!("{}@{end}", s.pointer));
    let session = s.attr("conversation.id").or_else(|| s.attr("thread.id")).or_else(|| s.attr("session.id"));
    Some(Call {
        id,
        session: session.map(|x| format!("{}/{server}", bounded(x, 128))),
        server: server.to_string(),
        tool: tool.to_string(),
        host_tool_name: Some(tool_name.to_string()),
        split: "exact",
        arguments: json_attr(s.attr_value("arguments")),
        result: s.attr_value("output").cloned(),
        failed: s.failed(),
        start,
        end,
        client: Some(("codex".into(), s.attr("app.version").or_else(|| s.resource.get("service.version").and_then(Value::as_str)).map(str::to_string))),
        server_version: None,
    })
}

fn gemini_call(s: &Signal<'_>, fallback_ts: i64) -> Option<Call> {
    let server = s.attr("mcp_server_name")?;
    let name = s.attr("function_name")?;
    // `mcp_<server>_<tool>` since 2026-03, `<server>__<tool>` before, or bare.
    let tool = name.strip_prefix(&format!("mcp_{server}_")).or_else(|| name.strip_prefix(&format!("{server}__"))).unwrap_or(name);
    let (start, end) = event_times(s, fallback_ts);
    Some(Call {
        id: s.attr("prompt_id").map(|p| format!("{p}/{name}@{end}")).unwrap_or_else(|| format!("{}@{end}", s.pointer)),
        session: s.attr("session.id").map(|x| format!("{}/{server}", bounded(x, 128))),
        server: server.to_string(),
        tool: tool.to_string(),
        host_tool_name: Some(name.to_string()),
        split: "exact",
        arguments: json_attr(s.attr_value("function_args")),
        result: None,
        failed: s.failed(),
        start,
        end,
        client: Some(("gemini-cli".into(), s.resource.get("service.version").and_then(Value::as_str).map(str::to_string))),
        server_version: None,
    })
}

/// A recorded result as CallToolResult content: a CallToolResult object
/// as is, text as one text block.
fn result_of(v: Option<&Value>) -> (Value, Option<&Value>, Option<&Value>) {
    match v {
        Some(Value::Object(o)) if o.contains_key("content") => (content_blocks(o.get("content")), o.get("structuredContent"), o.get("_meta")),
        Some(Value::Object(_)) => (json!([]), v, None),
        other => (content_blocks(other), None, None),
    }
}

pub struct OtlpJsonParser {
    doc: Assembler,
    mtime_micros: Option<i64>,
}

impl OtlpJsonParser {
    pub fn new(info: &SourceInfo) -> Self {
        OtlpJsonParser { doc: Assembler::default(), mtime_micros: info.mtime_unix.map(|s| s * 1_000_000) }
    }
}

/// One request (or export document): its MCP calls, accounted as parsed
/// when it held at least one.
fn record(d: Document<'_>, mtime: Option<i64>, out: &mut dyn Emit) {
    let v: Value = match serde_json::from_str(d.text) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return out.reject(&d.pos, d.lines, "otlp_json: JSON that is not an object; expected an OTLP TracesData / LogsData request".into(), d.text.as_bytes(), None),
        Err(e) => return out.reject(&d.pos, d.lines, format!("otlp_json: invalid JSON ({e})"), d.text.as_bytes(), None),
    };
    let signals = signals(&v);
    let mut calls = 0;
    for s in &signals {
        let Some(fallback) = s.start.or(mtime) else { continue };
        let Some(call) = call_of(s, fallback) else { continue };
        emit(call, &d.pos, &s.pointer, out);
        calls += 1;
    }
    let outcome = if calls > 0 {
        LineOutcome::Parsed
    } else if signals.is_empty() {
        LineOutcome::Skipped("otlp_json: request without spans or log records (metrics, empty batch)")
    } else {
        LineOutcome::Skipped("otlp_json: spans and log records without an MCP tool call")
    };
    out.account(&d.pos, d.lines, outcome);
}

fn emit(call: Call, pos: &Pos, pointer: &str, out: &mut dyn Emit) {
    let arguments_recorded = call.arguments.is_some();
    let context = |host: Option<String>, split: Option<&'static str>| HostContext {
        client_name: call.client.as_ref().map(|(n, _)| n.to_string()),
        client_version: call.client.as_ref().and_then(|(_, v)| v.clone()),
        host_tool_name: host,
        tool_name_split: split,
        arguments_not_recorded: !arguments_recorded,
        server_version: call.server_version.clone(),
    };
    let at = Pos { pointer: Some(pointer.to_string()), ..pos.clone() };
    let request = tools_call_request(&call.id, &call.tool, call.arguments.clone());
    out.mcp(HostMessage { ts: call.start, pos: at.clone(), server: call.server.clone(), session: call.session.clone(), direction: Direction::ClientToServer, message: request, context: context(call.host_tool_name.clone(), Some(call.split)) }.event());
    let (content, structured, meta) = result_of(call.result.as_ref());
    let response = tools_call_response(&call.id, KeptResult { content, structured, meta, is_error: call.failed });
    out.mcp(HostMessage { ts: call.end.max(call.start), pos: at, server: call.server, session: call.session, direction: Direction::ServerToClient, message: response, context: context(None, None) }.event());
}

impl Parser for OtlpJsonParser {
    fn format(&self) -> Format {
        Format::OtlpJson
    }

    fn line(&mut self, line: &Line<'_>, out: &mut dyn Emit) {
        let mtime = self.mtime_micros;
        self.doc.line(line, "otlp_json", out, &mut |d, out| record(d, mtime, out));
    }

    fn finish(&mut self, out: &mut dyn Emit) {
        self.doc.finish("otlp_json", out);
    }
}

#[cfg(test)]
mod tests {
    use mcpf_schema::Table;

    use crate::test_rows::Rows;
    use crate::{Format, SourceStats};

    fn parse(text: &str) -> (SourceStats, Rows) {
        crate::test_rows::parse(Format::OtlpJson, "/var/log/otel/traces.jsonl", text, None)
    }

    fn of(rows: &Rows, t: Table) -> Vec<&std::collections::BTreeMap<&'static str, String>> {
        rows.of(t)
    }

    fn kv(k: &str, v: &str) -> String {
        format!(r#"{{"key":"{k}","value":{{"stringValue":{}}}}}"#, serde_json::Value::String(v.into()))
    }

    fn span(kind: u8, attrs: &[String]) -> String {
        format!(
            r#"{{"resourceSpans":[{{"resource":{{"attributes":[{}]}},"scopeSpans":[{{"scope":{{"name":"opentelemetry.instrumentation.mcp"}},"spans":[{{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"tools/call send_email","kind":{kind},"startTimeUnixNano":"1772359260000000000","endTimeUnixNano":1772359260500000000,"attributes":[{}]}}]}}]}}]}}"#,
            kv("service.name", "mail-agent"),
            attrs.join(",")
        )
    }

    #[test]
    fn an_mcp_client_span_is_a_call_with_its_arguments_and_result() {
        let line = span(
            3,
            &[
                kv("mcp.method.name", "tools/call"),
                kv("gen_ai.tool.name", "send_email"),
                kv("jsonrpc.request.id", "7"),
                kv("mcp.session.id", "sess-1"),
                kv("mcp.server.name", "mail"),
                kv("gen_ai.tool.call.arguments", r#"{"to":"alice@example.com"}"#),
                kv("gen_ai.tool.call.result", r#"{"content":[{"type":"text","text":"sent, MessageID: abc@corp.example"}]}"#),
            ],
        );
        let (stats, rows) = parse(&format!("{line}\n"));
        assert_eq!(stats.parsed, 1);
        let c = of(&rows, Table::ToolCalls)[0];
        assert_eq!((c["server_name"].as_str(), c["tool_name"].as_str(), c["rpc_id"].as_str()), ("mail", "send_email", "7"));
        assert_eq!((c["ts"].as_str(), c["ts_end"].as_str()), ("1772359260000000", "1772359260500000"));
        assert_eq!(c["source_pointer"], "/resourceSpans/0/scopeSpans/0/spans/0");
        assert_eq!((c["arguments_observed"].as_str(), c["recipients_observed"].as_str()), ("true", "true"));
        assert_eq!(of(&rows, Table::CallMessageIds)[0]["message_id"], "abc@corp.example");
        assert_eq!(of(&rows, Table::IntendedRecipients)[0]["address"], "alice@example.com");
        assert_eq!(of(&rows, Table::McpSessions)[0]["client_name"], "mail-agent");
    }

    #[test]
    fn without_the_opt_in_the_arguments_are_not_observed() {
        let (_, rows) = parse(&format!("{}\n", span(3, &[kv("mcp.method.name", "tools/call"), kv("gen_ai.tool.name", "send_email")])));
        let c = of(&rows, Table::ToolCalls)[0];
        assert_eq!((c["arguments_observed"].as_str(), c["recipients_observed"].as_str()), ("false", "false"));
        assert_eq!(c["rpc_id"], "eee19b7ec3c1b174", "no request id: the span's");
        assert_eq!(c["server_name"], super::SERVER_NOT_RECORDED);
        // Other MCP methods and other spans are no tool calls.
        let (stats, rows) = parse(&format!("{}\n{}\n", span(3, &[kv("mcp.method.name", "tools/list")]), span(1, &[kv("http.method", "GET")])));
        assert!(of(&rows, Table::ToolCalls).is_empty());
        assert_eq!(stats.skipped_reasons.get("otlp_json: spans and log records without an MCP tool call"), Some(&2));
    }

    /// Verbatim lines written by the Python MCP SDK 2.3.0's own spans and the
    /// OpenTelemetry SDK 1.45.2 OTLP JSON file exporter (tests/harness/sdk_otel.py,
    /// `incident.py --otel`): the agent's CLIENT span and the server's SERVER span.
    const SDK_CLIENT_SPAN: &str = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"telemetry.sdk.language","value":{"stringValue":"python"}},{"key":"telemetry.sdk.name","value":{"stringValue":"opentelemetry"}},{"key":"telemetry.sdk.version","value":{"stringValue":"1.45.2"}},{"key":"service.instance.id","value":{"stringValue":"dbda4dc3-e824-48fb-919c-216868907cf5"}},{"key":"service.name","value":{"stringValue":"mail-agent"}},{"key":"service.version","value":{"stringValue":"1.4.2"}}]},"scopeSpans":[{"scope":{"name":"mcp-python-sdk"},"spans":[{"traceId":"305d3ba17a5a14ad17d323b150bca386","spanId":"096c2793b6d947f5","flags":256,"name":"MCP send tools/call sendEmail","kind":3,"startTimeUnixNano":"1796242090092141848","endTimeUnixNano":"1796242090100766397","attributes":[{"key":"mcp.method.name","value":{"stringValue":"tools/call"}},{"key":"jsonrpc.request.id","value":{"stringValue":"4"}}],"status":{}}]}]}]}"#;
    const SDK_SERVER_SPAN: &str = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"telemetry.sdk.language","value":{"stringValue":"python"}},{"key":"telemetry.sdk.name","value":{"stringValue":"opentelemetry"}},{"key":"telemetry.sdk.version","value":{"stringValue":"1.45.2"}},{"key":"service.instance.id","value":{"stringValue":"c70d3bf8-8e54-435f-b418-dbe5fc57de74"}},{"key":"service.name","value":{"stringValue":"postmark-mcp"}},{"key":"service.version","value":{"stringValue":"1.0.15"}}]},"scopeSpans":[{"scope":{"name":"mcp-python-sdk"},"spans":[{"traceId":"2cb3c7d86ba706c28fd56ca5909f3355","spanId":"28c7af5ff05a8276","parentSpanId":"f30a869199a4fb7e","flags":768,"name":"tools/call sendEmail","kind":2,"startTimeUnixNano":"1796242089985233383","endTimeUnixNano":"1796242089995150717","attributes":[{"key":"mcp.method.name","value":{"stringValue":"tools/call"}},{"key":"mcp.protocol.version","value":{"stringValue":"2025-11-25"}},{"key":"jsonrpc.request.id","value":{"stringValue":"3"}},{"key":"gen_ai.operation.name","value":{"stringValue":"execute_tool"}},{"key":"gen_ai.tool.name","value":{"stringValue":"sendEmail"}}],"status":{}}]}]}]}"#;

    #[test]
    fn the_python_sdks_own_spans_name_the_tool_and_leave_the_arguments_unobserved() {
        let (stats, rows) = parse(&format!("{SDK_CLIENT_SPAN}\n{SDK_SERVER_SPAN}\n"));
        assert_eq!(stats.parsed, 2);
        let calls = of(&rows, Table::ToolCalls);
        let (client, server) = (calls[0], calls[1]);
        // The CLIENT span names the tool only in its name, and no server.
        assert_eq!((client["tool_name"].as_str(), client["rpc_id"].as_str(), client["server_name"].as_str()), ("sendEmail", "4", super::SERVER_NOT_RECORDED));
        assert_eq!((client["arguments_observed"].as_str(), client["recipients_observed"].as_str()), ("false", "false"));
        // The SERVER span is the server's own service, with its version.
        assert_eq!((server["tool_name"].as_str(), server["server_name"].as_str(), server["server_version"].as_str()), ("sendEmail", "postmark-mcp", "1.0.15"));
        assert_eq!(server["arguments_observed"], "false");
        // Each side's session is its process (no MCP session id on stdio).
        let sessions = of(&rows, Table::McpSessions);
        assert_eq!(sessions.len(), 2, "{sessions:?}");
        assert!(sessions.iter().any(|s| s["client_name"] == "mail-agent" && s["client_version"] == "1.4.2"), "{sessions:?}");
        assert!(sessions.iter().all(|s| s["session_source"] == "recorded"), "{sessions:?}");
    }

    fn log(attrs: &[String]) -> String {
        format!(
            r#"{{"resourceLogs":[{{"resource":{{"attributes":[{},{}]}},"scopeLogs":[{{"scope":{{"name":"com.anthropic.claude_code.events"}},"logRecords":[{{"timeUnixNano":"1772359260000000000","body":{{"stringValue":"claude_code.tool_result"}},"attributes":[{}]}}]}}]}}]}}"#,
            kv("service.name", "claude-code"),
            kv("service.version", "2.1.328"),
            attrs.join(",")
        )
    }

    #[test]
    fn agent_events_name_server_and_tool_inside_json_strings() {
        let with = log(&[
            kv("event.name", "tool_result"),
            kv("session.id", "S1"),
            kv("tool_name", "mcp_tool"),
            kv("tool_use_id", "toolu_1"),
            kv("success", "false"),
            kv("duration_ms", "250"),
            kv("tool_parameters", r#"{"mcp_server_name":"mail","mcp_tool_name":"send_email"}"#),
            kv("tool_input", r#"{"to":"bob@example.com"}"#),
        ]);
        let without = log(&[kv("event.name", "tool_result"), kv("session.id", "S1"), kv("tool_name", "mcp_tool"), kv("tool_use_id", "toolu_2"), kv("success", "true")]);
        let builtin = log(&[kv("event.name", "tool_result"), kv("tool_name", "Bash"), kv("tool_use_id", "toolu_3")]);
        let (stats, rows) = parse(&format!("{with}\n{without}\n{builtin}\n"));
        assert_eq!((stats.parsed, stats.skipped), (2, 1));
        let calls = of(&rows, Table::ToolCalls);
        assert_eq!(calls.len(), 2);
        let c = calls.iter().find(|c| c["rpc_id"] == "toolu_1").unwrap();
        assert_eq!((c["session_id"].as_str(), c["server_name"].as_str(), c["tool_name"].as_str()), ("S1/mail", "mail", "send_email"));
        assert_eq!((c["host_tool_name"].as_str(), c["is_error"].as_str()), ("mcp__mail__send_email", "true"));
        assert_eq!((c["ts"].as_str(), c["ts_end"].as_str()), ("1772359259750000", "1772359260000000"), "the event is the end; its duration gives the start");
        let blind = calls.iter().find(|c| c["rpc_id"] == "toolu_2").unwrap();
        assert_eq!((blind["server_name"].as_str(), blind["tool_name_split"].as_str(), blind["arguments_observed"].as_str()), (super::SERVER_NOT_RECORDED, "not_recorded", "false"));
        let s = of(&rows, Table::McpSessions);
        assert!(s.iter().all(|s| s["client_name"] == "claude-code" && s["client_version"] == "2.1.328"));
    }

    #[test]
    fn a_pretty_request_is_one_record_and_garbage_is_rejected() {
        let pretty = serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(&log(&[kv("event.name", "codex.tool_result"), kv("mcp_server", "mail"), kv("tool_name", "send_email"), kv("call_id", "call_1"), kv("arguments", r#"{"to":"c@example.com"}"#), kv("output", "sent")])).unwrap()).unwrap();
        let n = pretty.lines().count() as u64;
        let (stats, rows) = parse(&format!("{pretty}\n{{\"resourceSpans\": [\n"));
        assert_eq!((stats.lines, stats.parsed, stats.rejected), (n + 1, n, 1));
        let c = of(&rows, Table::ToolCalls)[0];
        assert_eq!((c["server_name"].as_str(), c["rpc_id"].as_str()), ("mail", "call_1"));
        assert_eq!(of(&rows, Table::IntendedRecipients)[0]["address"], "c@example.com");
    }
}
