//! Claude Desktop MCP logs: `mcp.log`, `mcp-server-NAME.log`, `main.log`.
//!
//! Line shapes seen in real logs (see `../shared/real-logs/mcp/claude-desktop`):
//! - `TS [NAME] [LEVEL] Message from client|server: {json} { metadata: undefined }`
//!   (per-server files; the suffix appears from mid-2025 on);
//! - `TS [LEVEL] [NAME] Message from …: {json}` (the aggregate `mcp.log`);
//! - `HH:MM:SS.mmmZ [NAME] Message from client: method="tools/list" id=1 params`
//!   (a 2026 summary format without date or payload);
//! - `TS [NAME] [info] Using MCP server command: … with args and path: {` followed
//!   by a multi-line `metadata` block closed by `} %o` (a server launch);
//! - `YYYY-MM-DD HH:MM:SS [info] …` (`main.log`, launch notes only);
//! - lines without a timestamp: the server's own stderr, interleaved.
//!
//! Payloads the client cut (`[N chars truncated]`) keep their row, marked
//! `truncated`, with what can still be read (method, id, tool name).

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use regex::Regex;
use serde_json::Value;

use crate::collect::LineOutcome;
use crate::mcp::{Body, Direction, McpEvent, McpEventKind};
use crate::time::{parse_naive_in, parse_rfc3339, Zone};
use crate::{Emit, Format, Line, Parser, Pos, SourceInfo};

/// Longest launch block kept (lines); a longer one is closed and accounted.
const MAX_LAUNCH_LINES: u64 = 10_000;

const LEVELS: [&str; 8] = ["info", "warn", "warning", "error", "debug", "trace", "verbose", "notice"];

/// A line of this format (used for detection).
pub fn looks_like(line: &str) -> bool {
    match split_header(line) {
        // main.log: `2026-04-12 12:53:22 [info] Launching MCP Server: NAME`
        Some(Header { stamp: Stamp::Naive(_), level: Some(_), rest, .. }) => rest.contains("MCP Server"),
        Some(h) => h.name.is_some() && (h.rest.starts_with("Message from ") || h.rest.starts_with("Using MCP server command") || h.rest.starts_with("Initializing server") || h.rest.starts_with("Server started")),
        None => false,
    }
}

#[derive(Debug)]
enum Stamp<'a> {
    Full(&'a str),
    Naive(&'a str),
    TimeOnly(&'a str),
}

#[derive(Debug)]
struct Header<'a> {
    stamp: Stamp<'a>,
    name: Option<&'a str>,
    level: Option<&'a str>,
    rest: &'a str,
}

fn is_level(s: &str) -> bool {
    LEVELS.iter().any(|l| l.eq_ignore_ascii_case(s))
}

fn split_header(line: &str) -> Option<Header<'_>> {
    let b = line.as_bytes();
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    // Log content is attacker-controlled: every cut below is at an ASCII
    // space or checked with `get`, never inside a UTF-8 character.
    let (stamp, mut rest) = if b.len() > 20 && digit(0) && digit(3) && b[4] == b'-' && b[10] == b'T' {
        let end = line.find(' ')?;
        (Stamp::Full(&line[..end]), &line[end + 1..])
    } else if b.len() > 19 && digit(0) && b[4] == b'-' && b[10] == b' ' && b[13] == b':' {
        (Stamp::Naive(line.get(..19)?), line.get(19..)?.trim_start())
    } else if b.len() > 9 && digit(0) && digit(1) && b[2] == b':' && b[5] == b':' {
        let end = line.find(' ')?;
        if !line[..end].ends_with('Z') {
            return None;
        }
        (Stamp::TimeOnly(&line[..end]), &line[end + 1..])
    } else {
        return None;
    };
    let mut name = None;
    let mut level = None;
    for _ in 0..2 {
        if !rest.starts_with('[') {
            break;
        }
        let close = rest.find("] ").or_else(|| if rest.ends_with(']') { Some(rest.len() - 1) } else { None })?;
        let inner = &rest[1..close];
        if is_level(inner) && level.is_none() {
            level = Some(inner);
        } else if name.is_none() {
            name = Some(inner);
        } else {
            break;
        }
        rest = rest.get(close + 2..).unwrap_or("");
    }
    Some(Header { stamp, name, level, rest })
}

fn truncation_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"(?:\.\.\.\s*)?\[\+?(\d+) chars truncated\](?:\s*\.\.\.)?").unwrap())
}

/// Read what a cut or summary payload still says.
fn partial_from_text(text: &str, raw: Option<String>) -> Body {
    static METHOD: OnceLock<Regex> = OnceLock::new();
    static ID: OnceLock<Regex> = OnceLock::new();
    static NAME: OnceLock<Regex> = OnceLock::new();
    let method_re = METHOD.get_or_init(|| Regex::new(r#""?method"?\s*[:=]\s*"([^"]{1,200})""#).unwrap());
    let id_re = ID.get_or_init(|| Regex::new(r#"(?:^|[,{\s])"?id"?\s*[:=]\s*("?)([A-Za-z0-9_\-.]{1,100})"#).unwrap());
    let name_re = NAME.get_or_init(|| Regex::new(r#""params"\s*:\s*\{\s*"name"\s*:\s*"([^"]{1,200})""#).unwrap());
    let method = method_re.captures(text).map(|c| c[1].to_string());
    let id = id_re.captures(text).map(|c| c[2].to_string());
    let is_response = method.is_none() && (text.contains("result") || text.contains("\"error\"") || text.ends_with(" error"));
    let tool_name = if method.as_deref() == Some("tools/call") { name_re.captures(text).map(|c| c[1].to_string()) } else { None };
    Body::Partial { method, id, is_response, tool_name, raw }
}

struct LaunchBlock {
    pos: Pos,
    ts: i64,
    server: String,
    lines: u64,
    text: String,
}

/// Parser state for one file.
pub struct ClaudeDesktopParser {
    /// Day (UTC micros at midnight) for time-only stamps, and last time of day.
    day_start: Option<i64>,
    last_tod: i64,
    mtime: Option<i64>,
    /// Zone of stamps without offset (`--tz`; UTC when not given).
    zone: Zone,
    /// The previous stamp's instant: orders the hour repeated at a DST change.
    last_ts: Option<i64>,
    launch: Option<LaunchBlock>,
}

impl ClaudeDesktopParser {
    pub fn new(info: &SourceInfo) -> Self {
        ClaudeDesktopParser { day_start: None, last_tod: 0, mtime: info.mtime_unix, zone: info.zone.unwrap_or_default(), last_ts: None, launch: None }
    }

    /// A time of day without date: the day is the file's, then follows the
    /// lines. Days are counted in wall time of the stamps' zone (`Z`: UTC).
    fn time_only(&mut self, s: &str) -> Option<i64> {
        let zone = if s.ends_with('Z') { Zone::Utc } else { self.zone };
        let t = s.trim_end_matches('Z');
        let mut it = t.split([':', '.']);
        let h: i64 = it.next()?.parse().ok()?;
        let m: i64 = it.next()?.parse().ok()?;
        let sec: i64 = it.next()?.parse().ok()?;
        let frac = it.next().unwrap_or("0");
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let micros: i64 = format!("{:0<6}", &frac[..frac.len().min(6)]).parse().ok()?;
        if h > 23 || m > 59 || sec > 60 {
            return None;
        }
        let tod = ((h * 60 + m) * 60 + sec) * 1_000_000 + micros;
        const DAY: i64 = 86_400_000_000;
        let day = match self.day_start {
            Some(d) => {
                // Midnight passed when the time of day steps back by more than 12 h.
                if tod + DAY / 2 < self.last_tod { d + DAY } else { d }
            }
            None => {
                // The date is not in the line: the file's modification day,
                // or the day before when this time lies after the mtime's.
                let mtime = self.mtime.unwrap_or(0);
                let m = mtime.saturating_add(zone.offset_at(mtime)).saturating_mul(1_000_000);
                let mday = m - m.rem_euclid(DAY);
                if tod > m - mday { mday - DAY } else { mday }
            }
        };
        self.day_start = Some(day);
        self.last_tod = tod;
        let wall = DateTime::<Utc>::from_timestamp_micros(day.checked_add(tod)?)?.naive_utc();
        zone.to_utc_micros(&wall, self.last_ts)
    }

    fn stamp(&mut self, s: &Stamp<'_>) -> Option<i64> {
        let ts = match s {
            Stamp::Full(t) => parse_rfc3339(t),
            Stamp::Naive(t) => parse_naive_in(t, &self.zone, self.last_ts),
            Stamp::TimeOnly(t) => self.time_only(t),
        };
        if ts.is_some() {
            self.last_ts = ts;
        }
        ts
    }

    fn close_launch(&mut self, out: &mut dyn Emit) {
        if let Some(b) = self.launch.take() {
            let (command, args) = match launch_command(&b.text) {
                Some((c, a)) => (Some(c), a),
                None => (None, vec![]),
            };
            out.mcp(McpEvent {
                ts: b.ts,
                pos: b.pos.clone(),
                host: None,
                server_name: b.server,
                session_hint: None,
                kind: McpEventKind::Launch { command, args },
                host_context: Default::default(),
            });
            out.account(&b.pos, b.lines, LineOutcome::Parsed);
        }
    }

    fn message(&mut self, line: &Line<'_>, ts: i64, server: &str, dir: Direction, payload: &str, out: &mut dyn Emit) {
        let payload = payload.trim_end();
        let payload = payload.strip_suffix("{ metadata: undefined }").map(str::trim_end).unwrap_or(payload);
        // The marker may cut JSON structure or sit inside a string value: either way content is missing.
        let cut = truncation_regex().is_match(payload);
        let (body, truncated) = if payload.starts_with('{') {
            match serde_json::from_str::<Value>(payload) {
                Ok(mut v) if v.is_object() => {
                    crate::mcp::keep_exact_id(&mut v, payload);
                    (Body::Json(v), cut)
                }
                _ => {
                    if cut {
                        let joined = truncation_regex().replace_all(payload, "");
                        match serde_json::from_str::<Value>(&joined) {
                            Ok(v) if v.is_object() => (Body::Json(v), true),
                            _ => (partial_from_text(payload, Some(payload.to_string())), true),
                        }
                    } else {
                        out.reject(
                            &line.pos,
                            1,
                            format!("claude_desktop: payload after 'Message from {}:' is not valid JSON and carries no '[N chars truncated]' marker", if dir == Direction::ClientToServer { "client" } else { "server" }),
                            line.bytes,
                            Some(ts),
                        );
                        return;
                    }
                }
            }
        } else {
            // Summary format: `method="tools/list" id=1 params` / `id=1 result`.
            (partial_from_text(payload, None), false)
        };
        out.mcp(McpEvent {
            ts,
            pos: line.pos.clone(),
            host: None,
            server_name: server.to_string(),
            session_hint: None,
            kind: McpEventKind::Message { direction: dir, body, truncated },
            host_context: Default::default(),
        });
        out.account(&line.pos, 1, LineOutcome::Parsed);
    }
}

/// `Using MCP server command: CMD with args and path: { metadata: { args: [ 'a', 'b', [length]: 2 ] … } } %o`
/// → (`CMD`, [`a`, `b`]).
fn launch_command(text: &str) -> Option<(String, Vec<String>)> {
    let after = text.split_once("Using MCP server command:")?.1;
    let cmd = after.split(" with args and path").next()?.trim().to_string();
    let mut args = vec![];
    if let Some(list) = text.split_once("args: [").map(|x| x.1) {
        let end = list.find("[length]").or_else(|| list.find(']')).unwrap_or(list.len());
        for piece in list[..end].split('\'').skip(1).step_by(2) {
            args.push(piece.to_string());
        }
    }
    Some((cmd, args))
}

impl Parser for ClaudeDesktopParser {
    fn format(&self) -> Format {
        Format::ClaudeDesktop
    }

    fn line(&mut self, line: &Line<'_>, out: &mut dyn Emit) {
        let text = String::from_utf8_lossy(line.bytes);
        let header = split_header(&text);

        // Inside a launch block, everything up to `} %o` belongs to it.
        if let Some(b) = &mut self.launch {
            if header.is_none() && b.lines < MAX_LAUNCH_LINES {
                b.lines += 1;
                if b.text.len() < 64 * 1024 {
                    b.text.push('\n');
                    b.text.push_str(&text);
                }
                if text.starts_with('}') {
                    self.close_launch(out);
                }
                return;
            }
            self.close_launch(out);
        }

        let Some(h) = header else {
            let reason = if text.trim().is_empty() { "blank line" } else { "server stderr or continuation line (no timestamp)" };
            out.account(&line.pos, 1, LineOutcome::Skipped(reason));
            return;
        };
        let Some(ts) = self.stamp(&h.stamp) else {
            out.reject(&line.pos, 1, "claude_desktop: timestamp is not a valid date/time (expected e.g. 2025-07-20T13:44:16.367Z)".into(), line.bytes, None);
            return;
        };
        let Some(server) = h.name else {
            out.account(&line.pos, 1, LineOutcome::Skipped("client log event without server name (main.log)"));
            return;
        };
        let rest = h.rest;
        if let Some(p) = rest.strip_prefix("Message from client:") {
            self.message(line, ts, server, Direction::ClientToServer, p.trim_start(), out);
        } else if let Some(p) = rest.strip_prefix("Message from server:") {
            self.message(line, ts, server, Direction::ServerToClient, p.trim_start(), out);
        } else if rest.starts_with("Using MCP server command:") {
            let block = LaunchBlock { pos: line.pos.clone(), ts, server: server.to_string(), lines: 1, text: text.to_string() };
            let open = rest.trim_end().ends_with('{');
            self.launch = Some(block);
            if !open {
                self.close_launch(out);
            }
        } else if rest.starts_with("Initializing server") {
            out.mcp(McpEvent {
                ts,
                pos: line.pos.clone(),
                host: None,
                server_name: server.to_string(),
                session_hint: None,
                kind: McpEventKind::Launch { command: None, args: vec![] },
                host_context: Default::default(),
            });
            out.account(&line.pos, 1, LineOutcome::Parsed);
        } else {
            out.account(&line.pos, 1, LineOutcome::Skipped("client log event (not a JSON-RPC message)"));
        }
    }

    fn finish(&mut self, out: &mut dyn Emit) {
        self.close_launch(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_in_both_orders() {
        let h = split_header("2025-07-20T13:44:40.933Z [info] [weather] Message from client: {}").unwrap();
        assert_eq!((h.name, h.level), (Some("weather"), Some("info")));
        let h = split_header("2025-07-20T13:44:40.933Z [weather] [info] Message from client: {}").unwrap();
        assert_eq!((h.name, h.level), (Some("weather"), Some("info")));
        let h = split_header("20:23:53.331Z [obsidian-vault] Message from client: method=\"initialize\" id=0 params").unwrap();
        assert_eq!((h.name, h.level), (Some("obsidian-vault"), None));
        let h = split_header("2026-04-12 12:53:22 [info] Launching MCP Server: go-mcp-server").unwrap();
        assert_eq!((h.name, h.level), (None, Some("info")));
        assert!(split_header("[07/20/25 19:14:18] INFO     Processing request").is_none());
    }

    #[test]
    fn partial_summary_lines() {
        match partial_from_text("method=\"tools/list\" id=1 params", None) {
            Body::Partial { method, id, is_response, .. } => {
                assert_eq!(method.as_deref(), Some("tools/list"));
                assert_eq!(id.as_deref(), Some("1"));
                assert!(!is_response);
            }
            _ => panic!(),
        }
        match partial_from_text("id=1 result", None) {
            Body::Partial { method, id, is_response, .. } => {
                assert_eq!((method, id.as_deref(), is_response), (None, Some("1"), true));
            }
            _ => panic!(),
        }
    }

    #[test]
    fn launch_command_from_block() {
        let t = "2025-09-04T10:08:38.607Z [rebe] [info] Using MCP server command: /usr/local/bin/npx with args and path: {\n  metadata: {\n    args: [ 'mcp-remote@latest', 'http://localhost:8081/mcp', [length]: 2 ],\n } %o";
        let (cmd, args) = launch_command(t).unwrap();
        assert_eq!(cmd, "/usr/local/bin/npx");
        assert_eq!(args, ["mcp-remote@latest", "http://localhost:8081/mcp"]);
    }

    #[test]
    fn zone_less_stamps_are_read_in_the_given_zone() {
        let t = |s: &str| crate::time::parse_rfc3339(s).unwrap();
        // mtime 2026-04-12 18:00Z; stamps shaped as in the real
        // `main.go-mcp-server.2026-04-12.log` and `20:23:53.331Z [name]` logs.
        let info = SourceInfo { zone: Some("Europe/Berlin".parse().unwrap()), ..SourceInfo::new("x.log", Some(t("2026-04-12T18:00:00Z") / 1_000_000)) };
        let mut p = ClaudeDesktopParser::new(&info);
        assert_eq!(p.stamp(&Stamp::Naive("2026-04-12 12:53:22")), Some(t("2026-04-12T10:53:22Z")));
        assert_eq!(p.stamp(&Stamp::Full("2026-04-12T12:53:22.000Z")), Some(t("2026-04-12T12:53:22Z")));
        // A time of day alone: the file's day in Berlin, then Berlin's offset.
        assert_eq!(p.stamp(&Stamp::TimeOnly("19:30:00.000")), Some(t("2026-04-12T17:30:00Z")));
        let mut p = ClaudeDesktopParser::new(&info);
        assert_eq!(p.stamp(&Stamp::TimeOnly("17:30:00.000Z")), Some(t("2026-04-12T17:30:00Z")));
        // Without --tz the same stamps are UTC.
        let mut p = ClaudeDesktopParser::new(&SourceInfo::new("x.log", Some(t("2026-04-12T18:00:00Z") / 1_000_000)));
        assert_eq!(p.stamp(&Stamp::Naive("2026-04-12 12:53:22")), Some(t("2026-04-12T12:53:22Z")));
    }
}
