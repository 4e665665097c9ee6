//! MCP client configuration files → `mcp_server_configs`.
//!
//! A client's configuration says how each server will be launched: which
//! package, pinned or not (`npx -y postmark-mcp` takes whatever was published
//! last), and which credentials it is handed. Shapes read:
//! - `{"mcpServers": {NAME: {"command", "args", "env", "disabled"} | {"url", "headers"}}}`:
//!   Claude Desktop `claude_desktop_config.json`, Cursor `mcp.json`, Claude Code `.mcp.json`
//!   (project scope) and `~/.claude.json` (user scope at the top, local scope per project
//!   in `projects.<dir>.mcpServers`);
//! - `{"servers": {NAME: {"type": "stdio"|"http"|"sse", "command", "args", "env", "url", "headers"}}}`:
//!   VS Code `.vscode/mcp.json`.
//!
//! Environment and header *values* are never stored (they are credentials);
//! only their names. A configuration has no timestamp of its own: rows take
//! the file's modification time, which is when that configuration was last
//! known to be in force.

use serde_json::Value;

use crate::collect::{LineOutcome, NamedRow, Val};
use crate::jsondoc::{Assembler, Document};
use crate::package::package_of;
use crate::time::date_of;
use crate::{Emit, Format, Line, Parser, Pos, SourceInfo};

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
    } else if p.ends_with("/.gemini/settings.json") || p == ".gemini/settings.json" {
        // `~/.gemini/settings.json` and a project's `.gemini/settings.json`.
        "gemini_cli"
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

/// JSON pointer escaping of one key (RFC 6901).
pub(crate) fn pointer_key(k: &str) -> String {
    k.replace('~', "~0").replace('/', "~1")
}

/// The server tables of one configuration document, each with the JSON
/// pointer of its object: the top-level `mcpServers` / `servers`, and
/// Claude Code's per-project servers in `~/.claude.json`
/// (`projects.<dir>.mcpServers`, written by `claude mcp add --scope local`).
fn server_tables(v: &Value) -> Vec<(String, &serde_json::Map<String, Value>)> {
    let mut out = Vec::new();
    match (v.get("mcpServers"), v.get("servers")) {
        (Some(Value::Object(m)), _) => out.push(("/mcpServers".to_string(), m)),
        (_, Some(Value::Object(m))) => out.push(("/servers".to_string(), m)),
        _ => {}
    }
    if let Some(Value::Object(projects)) = v.get("projects") {
        for (dir, p) in projects {
            if let Some(Value::Object(m)) = p.get("mcpServers") {
                out.push((format!("/projects/{}/mcpServers", pointer_key(dir)), m));
            }
        }
    }
    out
}

/// One `mcp_server_configs` row: server `name`, entry `e` (in the JSON
/// configurations' shape), at `pos`.
pub(crate) fn server_row(out: &mut dyn Emit, pos: &Pos, client: &'static str, ts: i64, name: &str, e: &Value) {
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
    let date = date_of(ts);
    let mut row = NamedRow::new(mcpf_schema::Table::McpServerConfigs);
    row.set("ts", Val::Ts(Some(ts)))
        .set("date", Val::Str(Some(&date)))
        .set("client", Val::Str(Some(client)))
        .set("server_name", Val::Str(Some(name)))
        .set("transport", Val::Str(Some(&transport)))
        .set("command", Val::Str(command))
        .set("args_json", Val::Str(args_json.as_deref()))
        .set("url", Val::Str(url))
        .set("package_manager", Val::Str(pkg.as_ref().map(|p| p.manager.as_str())))
        .set("package_name", Val::Str(pkg.as_ref().map(|p| p.name.as_str())))
        .set("package_spec", Val::Str(pkg.as_ref().map(|p| p.spec.as_str())))
        .set("package_version", Val::Str(pkg.as_ref().and_then(|p| p.version.as_deref())))
        .set("package_pinned", Val::Bool(pkg.as_ref().map(|p| p.pinned)))
        .set("env_names", Val::Str(env.as_deref()))
        .set("header_names", Val::Str(headers.as_deref()))
        .set("disabled", Val::Bool(Some(e.get("disabled").and_then(Value::as_bool).unwrap_or(false))));
    out.named(pos, row);
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
            let tables = server_tables(&v);
            if tables.is_empty() {
                return out.account(&d.pos, d.lines, LineOutcome::Skipped("JSON document without mcpServers/servers"));
            }
            for (at, servers) in tables {
                for (name, e) in servers {
                    let pos = Pos { pointer: Some(format!("{at}/{}", pointer_key(name))), ..d.pos.clone() };
                    server_row(out, &pos, client, ts, name, e);
                }
            }
            out.account(&d.pos, d.lines, LineOutcome::Parsed);
        });
    }

    fn finish(&mut self, out: &mut dyn Emit) {
        self.doc.finish("mcp_config", out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_code_local_scope_servers_are_found_per_project() {
        let v: Value = serde_json::from_str(r#"{"mcpServers":{"a":{"command":"npx"}},"projects":{"/w/p":{"allowedTools":[],"mcpServers":{"b":{"type":"http","url":"https://x/mcp"}}}}}"#).unwrap();
        let at: Vec<(String, Vec<&String>)> = server_tables(&v).into_iter().map(|(p, m)| (p, m.keys().collect())).collect();
        assert_eq!(at.len(), 2, "{at:?}");
        assert_eq!(at[1].0, "/projects/~1w~1p/mcpServers");
    }
}
