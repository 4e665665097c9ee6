//! The VS Code MCP output channel (one channel per server, "MCP: <name>"),
//! both generations:
//!
//! ```text
//! 2025-03-23 16:38:00.970 [info] [Client Says] {"jsonrpc":"2.0","id":4,"method":"tools/call",…}
//! 2025-03-23 16:38:00.989 [info] [Server Says] {"jsonrpc":"2.0","id":4,"result":{…}}
//! 2026-07-24 02:03:14.031 [info] Starting server mcp-taskfile-server
//! 2026-07-24 02:03:14.032 [debug] Server command line: /home/user/go/bin/mcp-taskfile-server
//! 2026-07-24 02:03:14.089 [debug] [editor -> server] {"jsonrpc":"2.0","id":1,"method":"initialize",…}
//! 2026-07-24 02:03:14.151 [debug] [server -> editor] {"jsonrpc":"2.0","id":1,"result":{…}}
//! ```
//! Bodies are written only at debug or trace level (older builds: info).
//! Stamps are local wall time without zone: `--tz` gives it (UTC otherwise).
//! The server is named only on its `Starting server <name>` line; before
//! one, the file's name stands in. Each start is a new session.

use std::path::Path;

use crate::collect::LineOutcome;
use crate::mcp::{Body, Direction, HostContext, McpEvent, McpEventKind};
use crate::time::{parse_naive_in, Zone};
use crate::{Emit, Format, Line, Parser, Pos, SourceInfo};

/// Length of `YYYY-MM-DD HH:MM:SS.mmm`.
const STAMP_LEN: usize = 23;

/// Direction tags, both generations.
const TAGS: [(&str, Direction); 4] = [
    ("[editor -> server] ", Direction::ClientToServer),
    ("[server -> editor] ", Direction::ServerToClient),
    ("[Client Says] ", Direction::ClientToServer),
    ("[Server Says] ", Direction::ServerToClient),
];

/// A stamped line and the text after its level.
fn split(line: &str) -> Option<(&str, &str)> {
    let stamp = line.get(..STAMP_LEN)?;
    let b = stamp.as_bytes();
    if !(b[4] == b'-' && b[7] == b'-' && b[10] == b' ' && b[13] == b':' && b[19] == b'.' && b[..4].iter().all(u8::is_ascii_digit)) {
        return None;
    }
    let rest = line[STAMP_LEN..].strip_prefix(" [")?;
    let (level, text) = rest.split_once("] ")?;
    matches!(level, "info" | "debug" | "trace" | "warning" | "error").then_some((stamp, text))
}

/// A line of the VS Code MCP output channel (detection).
pub fn looks_like(line: &str) -> bool {
    let Some((_, text)) = split(line.trim_end()) else { return false };
    TAGS.iter().any(|(t, _)| text.starts_with(t))
        || text.starts_with("Starting server ")
        || text.starts_with("Connection state: ")
        || text.starts_with("Server command line: ")
        || text.starts_with("Discovered ") && text.ends_with(" tools")
}

pub struct VsCodeParser {
    zone: Zone,
    server: String,
    last: Option<i64>,
    /// A `Starting server` line not followed by its command line yet: its
    /// session starts at the next event.
    starting: Option<(i64, Pos)>,
}

impl VsCodeParser {
    pub fn new(info: &SourceInfo) -> Self {
        let stem = Path::new(info.path.as_ref()).file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        VsCodeParser { zone: info.zone.clone().unwrap_or(Zone::Utc), server: crate::agents::bounded(&stem, 128), last: None, starting: None }
    }

    /// The session a `Starting server` line opened, when nothing said its command.
    fn started(&mut self, out: &mut dyn Emit) {
        if let Some((ts, pos)) = self.starting.take() {
            out.mcp(self.event(ts, &pos, McpEventKind::Launch { command: None, args: Vec::new() }));
        }
    }

    fn event(&self, ts: i64, pos: &Pos, kind: McpEventKind) -> McpEvent {
        McpEvent { ts, pos: pos.clone(), host: None, server_name: self.server.clone(), session_hint: None, kind, host_context: HostContext { client_name: Some("vscode".into()), ..Default::default() } }
    }
}

impl Parser for VsCodeParser {
    fn format(&self) -> Format {
        Format::VsCode
    }

    fn line(&mut self, line: &Line<'_>, out: &mut dyn Emit) {
        let text = String::from_utf8_lossy(line.bytes);
        let text = text.trim_end();
        if text.is_empty() {
            return out.account(&line.pos, 1, LineOutcome::Skipped("blank line"));
        }
        let Some((stamp, body)) = split(text) else {
            return out.account(&line.pos, 1, LineOutcome::Skipped("vscode: continuation or unstamped line"));
        };
        let Some(ts) = parse_naive_in(stamp, &self.zone, self.last) else {
            return out.reject(&line.pos, 1, format!("vscode: invalid time stamp {stamp:?}"), line.bytes, None);
        };
        self.last = Some(ts);
        if let Some(name) = body.strip_prefix("Starting server ").filter(|n| !n.starts_with("from ")) {
            self.started(out);
            self.server = crate::agents::bounded(name.trim(), 128);
            self.starting = Some((ts, line.pos.clone()));
            return out.account(&line.pos, 1, LineOutcome::Parsed);
        }
        if let Some(cmd) = body.strip_prefix("Server command line: ") {
            let mut words = cmd.split_whitespace().map(str::to_string);
            let command = words.next();
            // The command line belongs to the start before it: one session.
            self.starting = None;
            out.mcp(self.event(ts, &line.pos, McpEventKind::Launch { command, args: words.collect() }));
            return out.account(&line.pos, 1, LineOutcome::Parsed);
        }
        let Some((tag, direction)) = TAGS.iter().find(|(t, _)| body.starts_with(t)) else {
            return out.account(&line.pos, 1, LineOutcome::Skipped("vscode: lifecycle line (connection state, discovery, stderr)"));
        };
        self.started(out);
        let json = &body[tag.len()..];
        match serde_json::from_str::<serde_json::Value>(json) {
            Ok(v @ serde_json::Value::Object(_)) => {
                out.mcp(self.event(ts, &line.pos, McpEventKind::Message { direction: *direction, body: Body::Json(v), truncated: false }));
                out.account(&line.pos, 1, LineOutcome::Parsed);
            }
            _ => out.reject(&line.pos, 1, "vscode: message body is not a JSON-RPC object (cut by the channel?)".into(), line.bytes, None),
        }
    }

    fn finish(&mut self, out: &mut dyn Emit) {
        self.started(out);
    }
}
