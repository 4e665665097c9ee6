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
    /// Claude Code session transcripts and `--output-format stream-json` output.
    ClaudeCode,
    /// Codex CLI session rollouts (both layouts) and `codex exec --json` events.
    Codex,
    /// OpenTelemetry OTLP JSON (traces and logs) and re-wrapped OTel exports.
    OtlpJson,
    /// Bare JSON-RPC messages and batches (no envelope), one per line or document.
    JsonRpc,
    /// MCP gateway RPC message logs (GitHub Agentic Workflows `rpc-messages.jsonl`).
    McpGateway,
    /// The VS Code MCP output channel (`[editor -> server]`, `[Client Says]`).
    VsCode,
    /// GitHub Copilot CLI session events (`session-state/<id>/events.jsonl`).
    Copilot,
    /// Gemini CLI chat recordings (legacy document and JSON Lines) and `-o stream-json` output.
    GeminiCli,
    /// Codex CLI configuration (`config.toml`) with `[mcp_servers.NAME]` tables.
    CodexConfig,
    /// Exim main log (plain, or forwarded through syslog).
    Exim,
    /// Amazon SES event records and notifications (also inside SNS envelopes).
    Ses,
    /// Zeek `smtp.log` (ASCII/TSV with its header, or JSON).
    ZeekSmtp,
    /// Sendmail via syslog (`sendmail`, `sm-mta`, `sm-msp-queue`).
    Sendmail,
    /// Microsoft Exchange Server message tracking logs (`MSGTRK*.LOG`, CSV).
    ExchangeTracking,
    /// Microsoft 365 / Exchange Online message trace records (JSON).
    M365Trace,
    /// Google Workspace Gmail logs (BigQuery rows, REST or by name).
    Gmail,
}

impl Format {
    pub const ALL: [Format; 21] = [
        Format::ClaudeDesktop,
        Format::JsonRpcJsonl,
        Format::Postfix,
        Format::Postmark,
        Format::McpConfig,
        Format::ClaudeCode,
        Format::Codex,
        Format::OtlpJson,
        Format::JsonRpc,
        Format::McpGateway,
        Format::VsCode,
        Format::Copilot,
        Format::GeminiCli,
        Format::CodexConfig,
        Format::Exim,
        Format::Ses,
        Format::ZeekSmtp,
        Format::Sendmail,
        Format::ExchangeTracking,
        Format::M365Trace,
        Format::Gmail,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::ClaudeDesktop => "claude_desktop",
            Format::JsonRpcJsonl => "jsonrpc_jsonl",
            Format::Postfix => "postfix",
            Format::Postmark => "postmark",
            Format::McpConfig => "mcp_config",
            Format::ClaudeCode => "claude_code",
            Format::Codex => "codex",
            Format::OtlpJson => "otlp_json",
            Format::JsonRpc => "jsonrpc",
            Format::McpGateway => "mcp_gateway",
            Format::VsCode => "vscode",
            Format::Copilot => "copilot",
            Format::GeminiCli => "gemini_cli",
            Format::CodexConfig => "codex_config",
            Format::Exim => "exim",
            Format::Ses => "ses",
            Format::ZeekSmtp => "zeek_smtp",
            Format::Sendmail => "sendmail",
            Format::ExchangeTracking => "exchange_tracking",
            Format::M365Trace => "m365_trace",
            Format::Gmail => "gmail",
        }
    }

    /// The format keeps per-message state across the files of a rotated
    /// set (a mail log's queue), handed on by `Parser::carry_out`.
    pub fn carries_state(self) -> bool {
        matches!(self, Format::Postfix | Format::Exim | Format::Sendmail)
    }

    /// The format is read line by line, so its last line can be caught half
    /// written (JSON documents and configurations are whole files).
    pub fn reads_lines(self) -> bool {
        matches!(self, Format::Postfix | Format::Exim | Format::Sendmail | Format::ExchangeTracking | Format::JsonRpcJsonl | Format::ClaudeDesktop)
    }

    fn looks_like(self, line: &str) -> bool {
        match self {
            Format::ClaudeDesktop => crate::claude_desktop::looks_like(line),
            Format::JsonRpcJsonl => crate::jsonrpc_jsonl::looks_like(line),
            Format::Postfix => crate::postfix::looks_like(line),
            Format::Postmark => crate::postmark::looks_like_document(line),
            Format::McpConfig => crate::client_config::looks_like_document(line),
            Format::ClaudeCode => crate::agents::claude_code::looks_like(line),
            Format::Codex => crate::agents::codex::looks_like(line),
            Format::OtlpJson => crate::otel::looks_like(line),
            Format::JsonRpc => crate::jsonrpc::looks_like(line),
            Format::McpGateway => crate::gateway::looks_like(line),
            Format::VsCode => crate::vscode::looks_like(line),
            Format::Copilot => crate::agents::copilot::looks_like(line),
            Format::GeminiCli => crate::agents::gemini::looks_like(line),
            Format::CodexConfig => crate::agents::codex_config::looks_like_document(line),
            Format::Exim => crate::mail::exim::looks_like(line),
            Format::Ses => crate::mail::ses::looks_like_document(line),
            Format::ZeekSmtp => crate::mail::zeek::looks_like(line),
            Format::Sendmail => crate::mail::sendmail::looks_like(line),
            Format::ExchangeTracking => crate::mail::exchange::looks_like(line),
            Format::M365Trace => crate::mail::m365::looks_like_document(line),
            Format::Gmail => crate::mail::gmail::looks_like_document(line),
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
    // An Elastic pipeline test's expected output (`{"expected": [ECS
    // documents]}`) is an oracle, not a log: its documents repeat the
    // records of the input they were made from.
    if is_pipeline_oracle(&text) {
        return None;
    }
    // Provider exports are JSON documents whose keys span lines: judge the head whole.
    if crate::postmark::looks_like_document(&text) {
        return Some(Format::Postmark);
    }
    if crate::mail::ses::looks_like_document(&text) {
        return Some(Format::Ses);
    }
    if crate::mail::m365::looks_like_document(&text) {
        return Some(Format::M365Trace);
    }
    if crate::mail::gmail::looks_like_document(&text) {
        return Some(Format::Gmail);
    }
    if crate::client_config::looks_like_document(&text) {
        return Some(Format::McpConfig);
    }
    if crate::agents::codex_config::looks_like_document(&text) {
        return Some(Format::CodexConfig);
    }
    if crate::otel::looks_like_document(&text) {
        return Some(Format::OtlpJson);
    }
    if crate::agents::gemini::looks_like_document(&text) {
        return Some(Format::GeminiCli);
    }
    if crate::jsonrpc::looks_like_document(&text) {
        return Some(Format::JsonRpc);
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
    // the Postfix parser accounts for its lines as other programs. But not
    // another MTA's log: a Sendmail or Exim syslog file read as Postfix gives
    // no row and would not be named as unrecognized.
    best.map(|(f, _)| f).or_else(|| {
        let syslog: Vec<_> = lines.iter().filter_map(|l| crate::postfix::split_syslog(l)).collect();
        if syslog.iter().any(|s| s.program.starts_with("exim")) {
            return Some(Format::Exim);
        }
        let foreign = syslog.iter().any(|s| other_mta(s.program).is_some());
        (!foreign && !syslog.is_empty() && syslog.len() * 2 >= lines.len()).then_some(Format::Postfix)
    })
}

/// `{"expected": [` as the first key of a document.
fn is_pipeline_oracle(text: &str) -> bool {
    let t = text.trim_start_matches('\u{feff}').trim_start();
    t.strip_prefix('{').map(str::trim_start).is_some_and(|r| r.starts_with("\"expected\"") && r["\"expected\"".len()..].trim_start().strip_prefix(':').is_some_and(|v| v.trim_start().starts_with('[')))
}

/// The mail system a syslog program tag belongs to, for MTAs this tool has
/// no parser for yet (their lines are not Postfix lines).
pub fn other_mta(program: &str) -> Option<&'static str> {
    let base = program.rsplit('/').next().unwrap_or(program);
    match base {
        "smtpd" | "smtp" | "lookup" | "queue" if program == base => Some("OpenSMTPD (or another MTA without a postfix/ prefix)"),
        "qmail" | "qmail-send" | "qmail-smtpd" | "qmail-remote" | "tcpserver" => Some("qmail"),
        "courieresmtpd" | "courierd" | "courier" => Some("Courier"),
        _ => None,
    }
}

/// For a file no format claimed: what it most likely is, when the head
/// says (another MTA's syslog lines), to name in the ingest summary.
pub fn likely_unsupported(head: &[u8]) -> Option<&'static str> {
    let text = String::from_utf8_lossy(head);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).take(200).collect();
    for l in &lines {
        if let Some(mta) = crate::postfix::split_syslog(l).and_then(|s| other_mta(s.program)) {
            return Some(mta);
        }
    }
    None
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
        // Another MTA's syslog lines are not Postfix lines.
        let sendmail = b"Nov 14 14:42:33 precise64 sm-mta[7527]: uAEKY1Xl007527: from=k@m.com, size=55, class=0, nrcpts=1, msgid=<2@p>, proto=SMTP, daemon=MTA-v4, relay=localhost [127.0.0.1]\n";
        assert_eq!(detect_format(sendmail), Some(Format::Sendmail));
        let qmail = b"Nov 14 14:42:33 mx qmail-send[752]: new msg 3145\n";
        assert_eq!(detect_format(qmail), None);
        assert_eq!(likely_unsupported(qmail), Some("qmail"));
        let exim_syslog = b"Feb 14 10:00:00 mx exim[1234]: 1t1ABC-000123-AB <= a@b.example H=(x) [192.0.2.1] P=esmtp S=100\n";
        assert_eq!(detect_format(exim_syslog), Some(Format::Exim));
        let exim_main = b"2015-09-01 12:00:00 1ZWlsV-0003Yy-QK <= a@b.example U=alaveteli P=local S=2116\n";
        assert_eq!(detect_format(exim_main), Some(Format::Exim));
        // Exim's stamp alone is not Exim's: Python's logging writes it too.
        assert_eq!(detect_format(b"2015-09-01 12:00:00 INFO worker started\n2015-09-01 12:00:01 INFO done\n"), None);
        // The agentic-workflows gateway log carries "direction" and a payload
        // that mentions "message", but it is not the wire-tap format.
        let gateway = br#"{"timestamp":"2026-02-13T12:37:10.865Z","direction":"OUT","type":"REQUEST","server_id":"github","method":"tools/list","payload":{"jsonrpc":"2.0","method":"tools/list","params":{"message":"x"}}}"#;
        assert_eq!(detect_format(gateway), Some(Format::McpGateway));
        assert_eq!(detect_format(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}\n"), Some(Format::JsonRpc));
        assert_eq!(detect_format(b"{\n  \"jsonrpc\": \"2.0\",\n  \"id\": \"x\",\n  \"result\": {}\n}\n"), Some(Format::JsonRpc));
        let transcript = br#"{"parentUuid":null,"isSidechain":false,"type":"user","message":{"role":"user","content":"hi"},"uuid":"u","timestamp":"2026-12-02T09:59:04.613Z","sessionId":"s","version":"2.1.328"}"#;
        assert_eq!(detect_format(transcript), Some(Format::ClaudeCode));
        let stream = br#"{"type":"assistant","message":{"content":[]},"parent_tool_use_id":null,"session_id":"s"}"#;
        assert_eq!(detect_format(stream), Some(Format::ClaudeCode));
        let rollout = br#"{"timestamp":"2026-12-02T16:19:18.239Z","ordinal":0,"type":"session_meta","payload":{"id":"t","cli_version":"0.169.0"}}"#;
        assert_eq!(detect_format(rollout), Some(Format::Codex));
        let legacy = br#"{"id":"t","timestamp":"2025-08-01T09:00:00Z","cwd":"/w","originator":"codex_cli_rs","cli_version":"0.34.0"}"#;
        assert_eq!(detect_format(legacy), Some(Format::Codex));
        let exec = b"codex exec \"x\"\n{\"type\":\"thread.started\",\"thread_id\":\"t\"}\n{\"type\":\"turn.started\"}\n";
        assert_eq!(detect_format(exec), Some(Format::Codex));
        assert_eq!("postfix".parse::<Format>(), Ok(Format::Postfix));
        assert!("nope".parse::<Format>().is_err());
    }
}
