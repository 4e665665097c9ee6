//! Format auto-detection from a file's first lines.
//!
//! Each format says whether a line looks like one of its own; the format that
//! claims the most of the first non-blank lines wins. A file no format claims
//! is reported (every line skipped as "unrecognized format") rather than
//! guessed at: `--format` forces a parser.

use std::fmt;
use std::str::FromStr;

/// The supported input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Format {
    /// Claude Desktop `mcp.log` / `mcp-server-NAME.log` (and `main.log` launch lines).
    ClaudeDesktop,
    /// JSON Lines of `{"ts","direction","server","message"}`: the wire-tap format.
    JsonRpcJsonl,
    /// Postfix via syslog (classic or RFC 3339 timestamps) or `maillog_file`.
    Postfix,
    /// Postmark API data: outbound messages, details, send responses, bounces, webhooks.
    Postmark,
    /// MCP client configuration files (`mcpServers` / `servers`).
    McpConfig,
}

impl Format {
    pub const ALL: [Format; 5] = [Format::ClaudeDesktop, Format::JsonRpcJsonl, Format::Postfix, Format::Postmark, Format::McpConfig];

    pub fn name(self) -> &'static str {
        match self {
            Format::ClaudeDesktop => "claude_desktop",
            Format::JsonRpcJsonl => "jsonrpc_jsonl",
            Format::Postfix => "postfix",
            Format::Postmark => "postmark",
            Format::McpConfig => "mcp_config",
        }
    }

    fn looks_like(self, line: &str) -> bool {
        match self {
            Format::ClaudeDesktop => crate::claude_desktop::looks_like(line),
            Format::JsonRpcJsonl => crate::jsonrpc_jsonl::looks_like(line),
            Format::Postfix => crate::postfix::looks_like(line),
            Format::Postmark => crate::postmark::looks_like_document(line),
            Format::McpConfig => crate::client_config::looks_like_document(line),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Format::ALL.into_iter().find(|f| f.name() == s).ok_or_else(|| {
            let names: Vec<_> = Format::ALL.iter().map(|f| f.name()).collect();
            format!("unknown format {s:?}; expected one of: {}", names.join(", "))
        })
    }
}

/// Pick the format of a file from its first bytes (decompressed).
pub fn detect_format(head: &[u8]) -> Option<Format> {
    let text = String::from_utf8_lossy(head);
    // Provider exports are JSON documents whose keys span lines: judge the head whole.
    if crate::postmark::looks_like_document(&text) {
        return Some(Format::Postmark);
    }
    if crate::client_config::looks_like_document(&text) {
        return Some(Format::McpConfig);
    }
    let mut lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).take(200).collect();
    // The last line of a head may be cut in the middle.
    if head.len() >= 64 * 1024 && lines.len() > 1 {
        lines.pop();
    }
    let mut best: Option<(Format, usize)> = None;
    for f in Format::ALL {
        let hits = lines.iter().filter(|l| f.looks_like(l)).count();
        if hits > 0 && best.is_none_or(|(_, b)| hits > b) {
            best = Some((f, hits));
        }
    }
    // A syslog file with no Postfix line yet (mail.err, a shared syslog):
    // the Postfix parser accounts for its lines as other programs.
    best.map(|(f, _)| f).or_else(|| {
        let syslog = lines.iter().filter(|l| crate::postfix::split_syslog(l).is_some()).count();
        (syslog > 0 && syslog * 2 >= lines.len()).then_some(Format::Postfix)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each() {
        assert_eq!(
            detect_format(b"2025-07-20T13:44:40.933Z [info] [weather] Message from client: {\"method\":\"x\",\"jsonrpc\":\"2.0\",\"id\":8}\n"),
            Some(Format::ClaudeDesktop)
        );
        assert_eq!(
            detect_format(b"{\"ts\":\"2025-01-01T00:00:00Z\",\"direction\":\"client_to_server\",\"server\":\"s\",\"message\":{\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"id\":1}}\n"),
            Some(Format::JsonRpcJsonl)
        );
        assert_eq!(
            detect_format(b"Nov 25 01:40:58 mx1 postfix/qmgr[3984]: 89AE498C146: removed\n"),
            Some(Format::Postfix)
        );
        assert_eq!(detect_format(b"pattern: x\ndata: y\n"), None);
        assert_eq!(detect_format(b"{\n  \"TotalCount\": 1,\n  \"Messages\": [{\"MessageID\": \"x\", \"ReceivedAt\": \"2017-02-25T13:59:44-05:00\"}]}"), Some(Format::Postmark));
        assert_eq!(detect_format(b"Jun  3 10:40:57 mail dovecot: imap(u): Disconnected\n"), Some(Format::Postfix));
        assert_eq!("postfix".parse::<Format>(), Ok(Format::Postfix));
        assert!("nope".parse::<Format>().is_err());
    }
}
