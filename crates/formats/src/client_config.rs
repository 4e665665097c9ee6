//! MCP client configuration files → `mcp_server_configs`.
//!
//! A client's configuration says how each server will be launched: which
//! package, pinned or not (`npx -y postmark-mcp` takes whatever was published
//! last), and which credentials it is handed. Shapes read:
//! - `{"mcpServers": {NAME: {"command", "args", "env", "disabled"} | {"url", "headers"}}}`:
//!   Claude Desktop `claude_desktop_config.json`, Cursor `mcp.json`, Claude Code `.mcp.json`;
//! - `{"servers": {NAME: {"type": "stdio"|"http"|"sse", "command", "args", "env", "url", "headers"}}}`:
//!   VS Code `.vscode/mcp.json`.
//!
//! Environment and header *values* are never stored (they are credentials);
//! only their names. A configuration has no timestamp of its own: rows take
//! the file's modification time, which is when that configuration was last
//! known to be in force.

use serde_json::Value;

use crate::collect::{LineOutcome, Val};
use crate::jsondoc::{Assembler, Document};
use crate::package::package_of;
use crate::time::date_of;
use crate::{Emit, Format, Line, Parser, SourceInfo};

/// A configuration document (for detection over a file's head).
pub fn looks_like_document(head: &str) -> bool {
    let t = head.trim_start();
    t.starts_with('{')
        && (t.contains("\"mcpServers\"") || (t.contains("\"servers\"") && (t.contains("\"command\"") || t.contains("\"url\""))))
        && !t.contains("\"jsonrpc\"")
}

pub struct ClientConfigParser {
    doc: Assembler,
    client: &'static str,
    ts: i64,
}

fn client_of(path: &str) -> &'static str {
    let p = path.replace('\\', "/").to_ascii_lowercase();
    if p.ends_with("claude_desktop_config.json") {
        "claude_desktop"
    } else if p.contains("/.cursor/") || p.ends_with("cursor/mcp.json") {
        "cursor"
    } else if p.contains("/.vscode/") {
        "vscode"
    } else if p.ends_with(".mcp.json") || p.ends_with(".claude.json") {
        "claude_code"
    } else {
        "unknown"
    }
}

impl ClientConfigParser {
    pub fn new(info: &SourceInfo) -> Self {
        ClientConfigParser { doc: Assembler::default(), client: client_of(&info.path), ts: info.mtime_unix.unwrap_or(0) * 1_000_000 }
    }
}

fn names(v: Option<&Value>) -> Option<String> {
    let m = v?.as_object()?;
    let mut k: Vec<&str> = m.keys().map(String::as_str).collect();
    k.sort_unstable();
    Some(k.join(","))
}

impl Parser for ClientConfigParser {
    fn format(&self) -> Format {
        Format::McpConfig
    }

    fn line(&mut self, line: &Line<'_>, out: &mut dyn Emit) {
        let (client, ts) = (self.client, self.ts);
        self.doc.line(line, "mcp_config", out, &mut |d: Document<'_>, out: &mut dyn Emit| {
            let v: Value = match serde_json::from_str(d.text) {
                Ok(v) => v,
                Err(e) => return out.reject(&d.pos, d.lines, format!("mcp_config: invalid JSON ({e})"), d.text.as_bytes(), None),
            };
            let (key, servers) = match (v.get("mcpServers"), v.get("servers")) {
                (Some(Value::Object(m)), _) => ("mcpServers", m),
                (_, Some(Value::Object(m))) => ("servers", m),
                _ => return out.account(&d.pos, d.lines, LineOutcome::Skipped("JSON document without mcpServers/servers")),
            };
            let date = date_of(ts);
            for (name, e) in servers {
                let command = e.get("command").and_then(Value::as_str);
                let args: Vec<String> = e.get("args").and_then(Value::as_array).map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect()).unwrap_or_default();
                let url = e.get("url").or_else(|| e.get("serverUrl")).and_then(Value::as_str);
                let transport = match (e.get("type").and_then(Value::as_str), command, url) {
                    (Some(t), _, _) => t.to_ascii_lowercase(),
                    (None, Some(_), _) => "stdio".into(),
                    (None, None, Some(u)) if u.trim_end_matches('/').ends_with("/sse") => "sse".into(),
                    (None, None, Some(_)) => "http".into(),
                    _ => "unknown".into(),
                };
                let pkg = command.and_then(|c| package_of(c, &args));
                let args_json = if args.is_empty() && e.get("args").is_none() { None } else { Some(serde_json::to_string(&args).unwrap_or_default()) };
                let env = names(e.get("env"));
                let headers = names(e.get("headers"));
                let mut pos = d.pos.clone();
                pos.pointer = Some(format!("/{key}/{}", name.replace('~', "~0").replace('/', "~1")));
                out.row(
                    mcpf_schema::Table::McpServerConfigs,
                    &pos,
                    &[
                        Val::Ts(Some(ts)),
                        Val::Str(Some(&date)),
                        Val::Str(Some(client)),
                        Val::Str(Some(name)),
                        Val::Str(Some(&transport)),
                        Val::Str(command),
                        Val::Str(args_json.as_deref()),
                        Val::Str(url),
                        Val::Str(pkg.as_ref().map(|p| p.manager.as_str())),
                        Val::Str(pkg.as_ref().map(|p| p.name.as_str())),
                        Val::Str(pkg.as_ref().map(|p| p.spec.as_str())),
                        Val::Str(pkg.as_ref().and_then(|p| p.version.as_deref())),
                        Val::Bool(pkg.as_ref().map(|p| p.pinned)),
                        Val::Str(env.as_deref()),
                        Val::Str(headers.as_deref()),
                        Val::Bool(Some(e.get("disabled").and_then(Value::as_bool).unwrap_or(false))),
                    ],
                );
            }
            out.account(&d.pos, d.lines, LineOutcome::Parsed);
        });
    }

    fn finish(&mut self, out: &mut dyn Emit) {
        self.doc.finish("mcp_config", out);
    }
}
