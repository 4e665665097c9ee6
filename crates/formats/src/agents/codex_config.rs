//! Codex CLI configuration (`~/.codex/config.toml`, a project's
//! `.codex/config.toml`) → `mcp_server_configs`.
//!
//! Codex keeps its MCP servers in TOML, one table per server, as
//! `codex mcp add` writes them:
//!
//! ```toml
//! [mcp_servers.postmark]
//! command = "npx"
//! args = ["-y", "postmark-mcp"]
//!
//! [mcp_servers.postmark.env]
//! POSTMARK_SERVER_TOKEN = "…"
//!
//! [mcp_servers.remote]
//! url = "https://mcp.example.com/mcp"
//! bearer_token_env_var = "MAIL_TOKEN"
//! ```
//!
//! Keys read: `command`, `args`, `env` (names only, never values),
//! `url`, `http_headers` / `env_http_headers` (names only; a
//! `bearer_token_env_var` counts as the `Authorization` header), `enabled =
//! false` (disabled). The same row builder as the JSON configurations, so a
//! pinned or unpinned package reads the same whichever client holds it.
//!
//! TOML is not line-oriented (a table's keys may come anywhere below it), so
//! the file is read whole, bounded by [`MAX_CONFIG_BYTES`]; each server row
//! points at its `[mcp_servers.NAME]` header line, with the pointer
//! `/mcp_servers/NAME`.

use serde_json::{json, Map, Value};

use crate::client_config::{pointer_key, server_row};
use crate::collect::LineOutcome;
use crate::{Emit, Format, Line, Parser, Pos, SourceInfo};

/// A configuration larger than this is rejected whole (Codex's own are a
/// few kilobytes).
pub const MAX_CONFIG_BYTES: usize = 4 * 1024 * 1024;

/// A `[mcp_servers.NAME]` (or `[mcp_servers]`) table header, the mark of a
/// Codex configuration with MCP servers.
fn is_servers_header(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with("[mcp_servers.") || t.starts_with("[mcp_servers]") || t.starts_with("mcp_servers.") || t.starts_with("mcp_servers =")
}

/// A configuration document (for detection over a file's head): TOML with
/// an MCP servers table, not JSON (a JSON document, array or JSON Lines
/// file is another format's, even when a string in it holds such a line).
pub fn looks_like_document(head: &str) -> bool {
    let t = head.trim_start();
    let json = t.starts_with('{') || t.starts_with("[{") || t.starts_with("[\"") || t.starts_with("[]") || head.lines().any(|l| l.trim_start().starts_with("{\""));
    !json && head.lines().any(is_servers_header)
}

pub struct CodexConfigParser {
    text: String,
    start: Option<Pos>,
    lines: u64,
    /// The header line of each server, by name, as first seen.
    headers: Vec<(String, Pos)>,
    overflow: bool,
    ts: i64,
}

impl CodexConfigParser {
    pub fn new(info: &SourceInfo) -> Self {
        CodexConfigParser { text: String::new(), start: None, lines: 0, headers: Vec::new(), overflow: false, ts: info.mtime_unix.unwrap_or(0) * 1_000_000 }
    }
}

/// The server a table header names: `[mcp_servers.NAME]`,
/// `[mcp_servers."NAME"]`, `[mcp_servers.NAME.env]` (the same server).
fn header_server(line: &str) -> Option<String> {
    let rest = line.trim().strip_prefix("[mcp_servers.")?.strip_suffix(']')?;
    let name = if let Some(q) = rest.strip_prefix('"') {
        q.split_once('"')?.0
    } else if let Some(q) = rest.strip_prefix('\'') {
        q.split_once('\'')?.0
    } else {
        rest.split('.').next()?
    };
    Some(name.trim().to_string()).filter(|n| !n.is_empty())
}

/// The names of a table's keys, sorted, as the JSON configurations keep them.
fn key_names(v: Option<&Value>) -> Vec<String> {
    let mut k: Vec<String> = v.and_then(Value::as_object).map(|m| m.keys().cloned().collect()).unwrap_or_default();
    k.sort_unstable();
    k
}

/// A Codex server table in the JSON configurations' terms.
fn as_client_entry(e: &Value) -> Value {
    let mut headers: Vec<String> = key_names(e.get("http_headers"));
    headers.extend(key_names(e.get("env_http_headers")));
    if e.get("bearer_token_env_var").is_some() || e.get("bearer_token").is_some() {
        headers.push("Authorization".into());
    }
    headers.sort_unstable();
    headers.dedup();
    let mut m = Map::new();
    for k in ["command", "args", "env", "url"] {
        if let Some(v) = e.get(k) {
            m.insert(k.into(), v.clone());
        }
    }
    if !headers.is_empty() {
        m.insert("headers".into(), Value::Object(headers.into_iter().map(|h| (h, Value::Null)).collect()));
    }
    m.insert("disabled".into(), json!(e.get("enabled").and_then(Value::as_bool) == Some(false)));
    Value::Object(m)
}

impl Parser for CodexConfigParser {
    fn format(&self) -> Format {
        Format::CodexConfig
    }

    fn line(&mut self, line: &Line<'_>, _out: &mut dyn Emit) {
        if self.start.is_none() {
            self.start = Some(line.pos.clone());
        }
        self.lines += 1;
        if self.overflow {
            return;
        }
        let text = String::from_utf8_lossy(line.bytes);
        if line.too_long || self.text.len() + text.len() + 1 > MAX_CONFIG_BYTES {
            // Rejected whole at the end: a cut TOML document cannot be read.
            self.overflow = true;
            self.text = String::new();
            return;
        }
        if let Some(name) = header_server(&text) {
            if !self.headers.iter().any(|(n, _)| *n == name) {
                self.headers.push((name, line.pos.clone()));
            }
        }
        self.text.push_str(&text);
        self.text.push('\n');
    }

    fn finish(&mut self, out: &mut dyn Emit) {
        let Some(start) = self.start.take() else { return };
        let lines = std::mem::take(&mut self.lines);
        if self.overflow {
            let reason = format!("codex_config: configuration larger than {MAX_CONFIG_BYTES} bytes");
            return out.reject(&start, lines, reason, b"", None);
        }
        let text = std::mem::take(&mut self.text);
        let doc: Value = match toml::from_str::<toml::Table>(&text) {
            Ok(t) => serde_json::to_value(t).unwrap_or(Value::Null),
            Err(e) => {
                let why: String = e.message().chars().take(200).collect();
                return out.reject(&start, lines, format!("codex_config: invalid TOML ({why})"), text.as_bytes(), None);
            }
        };
        let Some(servers) = doc.get("mcp_servers").and_then(Value::as_object).filter(|m| !m.is_empty()) else {
            return out.account(&start, lines, LineOutcome::Skipped("codex_config: configuration without mcp_servers"));
        };
        for (name, e) in servers {
            let at = self.headers.iter().find(|(n, _)| n == name).map(|(_, p)| p.clone()).unwrap_or_else(|| start.clone());
            let pos = Pos { pointer: Some(format!("/mcp_servers/{}", pointer_key(name))), ..at };
            server_row(out, &pos, "codex", self.ts, name, &as_client_entry(e));
        }
        out.account(&start, lines, LineOutcome::Parsed);
    }
}

#[cfg(test)]
mod tests {
    use mcpf_schema::Table;

    use crate::test_rows::parse;
    use crate::Format;

    #[test]
    fn headers_name_their_server() {
        assert_eq!(super::header_server("[mcp_servers.mail]").as_deref(), Some("mail"));
        assert_eq!(super::header_server("[mcp_servers.mail.env]").as_deref(), Some("mail"));
        assert_eq!(super::header_server(r#"[mcp_servers."my.server"]"#).as_deref(), Some("my.server"));
        assert_eq!(super::header_server("[profiles.x]"), None);
    }

    #[test]
    fn invalid_toml_is_rejected_whole_and_a_config_without_servers_skipped() {
        let (stats, _) = parse(Format::CodexConfig, "/h/.codex/config.toml", "[mcp_servers.a]\ncommand = \n", None);
        assert_eq!((stats.rejected, stats.parsed), (2, 0), "{stats:?}");
        let (stats, rows) = parse(Format::CodexConfig, "/h/.codex/config.toml", "model = \"o3\"\n\n[profiles.x]\nmodel = \"o4\"\n", None);
        assert_eq!(stats.skipped, 4);
        assert!(rows.of(Table::McpServerConfigs).is_empty());
    }
}
