//! The normalized tables of the mcp-forensics lake.
//!
//! Every parser writes into these tables and every rule reads from them, so
//! this crate is the contract between the two halves of the system. It is
//! deliberately tiny (Arrow only): the Python bindings, the lake writer and the
//! detection engine all agree on one definition of each column.
//!
//! Conventions: snake_case names; timestamps are UTC microseconds; `date` is the
//! `YYYY-MM-DD` of `ts` and the Delta partition column; every table ends with
//! the provenance columns of [`PROVENANCE_COLUMNS`], which point back to the raw
//! log bytes a row came from.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Bumped whenever a column is added, removed or changes meaning.
pub const SCHEMA_VERSION: u32 = 9;

/// The columns every row carries so that a finding can be followed back to the
/// exact bytes of the raw log it came from.
pub const PROVENANCE_COLUMNS: [&str; 6] =
    ["source_format", "source_file", "source_offset", "source_line", "source_pointer", "ingest_id"];

/// One column: name, Arrow type, nullability and the analyst-facing doc string
/// that `tables` prints.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
    pub nullable: bool,
    pub doc: &'static str,
}

/// The few logical types the lake uses; kept small so every engine (DataFusion,
/// DuckDB, Spark, polars) reads the tables without surprises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Utf8,
    Int64,
    Float64,
    Bool,
    /// UTC, microseconds.
    Timestamp,
}

impl Kind {
    pub fn arrow(self) -> DataType {
        match self {
            Kind::Utf8 => DataType::Utf8,
            Kind::Int64 => DataType::Int64,
            Kind::Float64 => DataType::Float64,
            Kind::Bool => DataType::Boolean,
            Kind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        }
    }
}

const fn col(name: &'static str, kind: Kind, nullable: bool, doc: &'static str) -> Column {
    Column { name, kind, nullable, doc }
}

use Kind::*;

const TS: Column = col("ts", Timestamp, false, "When the event happened (UTC).");
const DATE: Column = col("date", Utf8, false, "YYYY-MM-DD of ts; the partition column.");
const PROVENANCE: [Column; 6] = [
    col("source_format", Utf8, false, "Parser that produced the row (claude_desktop, jsonrpc_jsonl, postfix, ...)."),
    col("source_file", Utf8, false, "Path of the raw log file as given to ingest (inside .gz: the .gz path)."),
    col("source_offset", Int64, false, "Byte offset of the record's first line in the (decompressed) file."),
    col("source_line", Int64, false, "1-based line number of the record's first line."),
    col("source_pointer", Utf8, true, "JSON pointer of the element inside a multi-record JSON document (/Messages/3/Bcc/0), or of the block inside a JSON Lines record (/message/content/2); NULL when the record is the whole line."),
    col("ingest_id", Utf8, false, "Id of the ingest run that wrote the row (see _ingest_log)."),
];

/// The tables of the lake. Their order is the order `tables` prints them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    McpMessages,
    McpSessions,
    McpServerConfigs,
    ToolCalls,
    IntendedRecipients,
    CallMessageIds,
    ToolDefinitions,
    MailDeliveries,
    MailMessages,
    MailEvents,
    Rejects,
    IngestLog,
    Findings,
}

/// A table's columns, kept once, with an index by name length.
struct TableCatalog {
    columns: Vec<Column>,
    by_len: Vec<Vec<(&'static str, usize)>>,
}

impl TableCatalog {
    fn new(columns: Vec<Column>) -> TableCatalog {
        let mut by_len: Vec<Vec<(&'static str, usize)>> = vec![];
        for (i, c) in columns.iter().enumerate() {
            if by_len.len() <= c.name.len() {
                by_len.resize(c.name.len() + 1, vec![]);
            }
            by_len[c.name.len()].push((c.name, i));
        }
        TableCatalog { columns, by_len }
    }
}

impl Table {
    pub const ALL: [Table; 13] = [
        Table::McpMessages,
        Table::McpSessions,
        Table::McpServerConfigs,
        Table::ToolCalls,
        Table::IntendedRecipients,
        Table::CallMessageIds,
        Table::ToolDefinitions,
        Table::MailDeliveries,
        Table::MailMessages,
        Table::MailEvents,
        Table::Rejects,
        Table::IngestLog,
        Table::Findings,
    ];

    /// The normalized (non-bookkeeping) tables rules query.
    pub const DATA: [Table; 10] = [
        Table::McpMessages,
        Table::McpSessions,
        Table::McpServerConfigs,
        Table::ToolCalls,
        Table::IntendedRecipients,
        Table::CallMessageIds,
        Table::ToolDefinitions,
        Table::MailDeliveries,
        Table::MailMessages,
        Table::MailEvents,
    ];

    /// Directory name under the lake root, and the SQL table name.
    pub fn name(self) -> &'static str {
        match self {
            Table::McpMessages => "mcp_messages",
            Table::McpSessions => "mcp_sessions",
            Table::McpServerConfigs => "mcp_server_configs",
            Table::ToolCalls => "tool_calls",
            Table::IntendedRecipients => "intended_recipients",
            Table::CallMessageIds => "call_message_ids",
            Table::ToolDefinitions => "tool_definitions",
            Table::MailDeliveries => "mail_deliveries",
            Table::MailMessages => "mail_messages",
            Table::MailEvents => "mail_events",
            Table::Rejects => "_rejects",
            Table::IngestLog => "_ingest_log",
            Table::Findings => "_findings",
        }
    }

    pub fn from_name(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == name)
    }

    /// One sentence for `tables` and the README.
    pub fn doc(self) -> &'static str {
        match self {
            Table::McpMessages => "One row per JSON-RPC message seen between an MCP client and server.",
            Table::McpServerConfigs => "One row per server entry of an MCP client configuration file: how it would be launched (names of credentials, never values).",
            Table::McpSessions => "One row per client-server session: how the server was launched (package, version) and what it said it was.",
            Table::ToolCalls => "One row per tools/call request, paired with its response by session and rpc id.",
            Table::IntendedRecipients => "Every e-mail address found in a tool call's arguments: who the agent meant to reach.",
            Table::CallMessageIds => "Message ids a tool call's result returned, to join deliveries exactly.",
            Table::ToolDefinitions => "One row per tool per tools/list response, with a hash of its canonical definition.",
            Table::MailDeliveries => "One row per message x envelope recipient x delivery attempt: what really left (delivery_kind tells hops to a content filter from mail that left).",
            Table::MailMessages => "One row per message an MTA accepted, with its final state (delivered, deferred, bounced, expired, filtered, still queued at the end of the log ...); a message still open is written again when later logs close it (latest last_seen wins).",
            Table::MailEvents => "MTA events that name no delivered recipient: connection/EHLO/VRFY rejects, milter header redirects (a filter changed where mail goes), proxy rejects, null recipients.",
            Table::Rejects => "Input the parsers could not read, with the reason and the raw bytes (bounded).",
            Table::IngestLog => "One row per source per ingest run: fingerprint, line accounting, rows per table.",
            Table::Findings => "Findings recorded by detect --record / --new-only: one row per finding when new or changed (for scheduled runs).",
        }
    }

    /// Columns in order, provenance last.
    pub fn columns(self) -> Vec<Column> {
        let mut cols: Vec<Column> = match self {
            Table::McpMessages => vec![
                TS,
                DATE,
                col("host", Utf8, true, "Machine or client host the log came from, where known."),
                col("session_id", Utf8, false, "One client-server connection (stable hash; see README)."),
                col("client_name", Utf8, true, "clientInfo.name from initialize."),
                col("client_version", Utf8, true, "clientInfo.version from initialize."),
                col("server_name", Utf8, false, "Server name as the client configured it (log tag / wire field)."),
                col("server_version", Utf8, true, "serverInfo.version from the session's initialize result."),
                col("server_info_name", Utf8, true, "serverInfo.name from the session's initialize result."),
                col("direction", Utf8, false, "client_to_server or server_to_client."),
                col("message_kind", Utf8, false, "request, response, notification or error."),
                col("method", Utf8, true, "JSON-RPC method (requests, notifications; responses inherit their request's)."),
                col("rpc_id", Utf8, true, "JSON-RPC id as text."),
                col("tool_name", Utf8, true, "params.name of tools/call."),
                col("params_json", Utf8, true, "params as compact JSON."),
                col("result_json", Utf8, true, "result as compact JSON."),
                col("error_json", Utf8, true, "error as compact JSON."),
                col("is_error", Bool, false, "A JSON-RPC error, or a tool result with isError=true."),
                col("truncated", Bool, false, "The log elided part of the payload ([N chars truncated]); JSON fields may be partial."),
            ],
            Table::McpSessions => vec![
                TS,
                DATE,
                col("session_id", Utf8, false, "See mcp_messages.session_id."),
                col("host", Utf8, true, "See mcp_messages.host."),
                col("server_name", Utf8, false, "Server name as the client configured it."),
                col("client_name", Utf8, true, "clientInfo.name."),
                col("client_version", Utf8, true, "clientInfo.version."),
                col("server_info_name", Utf8, true, "serverInfo.name from initialize."),
                col("server_version", Utf8, true, "serverInfo.version from initialize (may be hard-coded by the server and never move)."),
                col("launch_command", Utf8, true, "Command and arguments the client launched the server with (from launch lines)."),
                col("package_manager", Utf8, true, "npx, bunx, pnpm dlx, uvx, pipx ... when the server was started from a package."),
                col("package_name", Utf8, true, "The package launched, e.g. postmark-mcp or @azure/mcp."),
                col("package_spec", Utf8, true, "The package as requested, e.g. postmark-mcp@1.0.16, mcp-remote@latest."),
                col("package_version", Utf8, true, "Exact version requested; NULL when unpinned."),
                col("package_pinned", Bool, true, "The launch named an exact version (not a tag like latest, a range, or nothing)."),
                col("messages", Int64, false, "JSON-RPC messages seen in the session."),
                col("session_source", Utf8, true, "What the session is keyed on, and so what its requests and responses were paired by (with the JSON-RPC id): recorded (a session id the trace carries: an MCP session id, an agent's session and server) or connection (none: the source file and server, one initialize to the next; the stateless 2026-07-28 protocol has no session). NULL: written by an older release."),
            ],
            Table::McpServerConfigs => vec![
                TS,
                DATE,
                col("client", Utf8, false, "Client the file configures, from its name and shape: claude_desktop, cursor, vscode, claude_code or unknown."),
                col("server_name", Utf8, false, "The server's configured name (the key under mcpServers / servers)."),
                col("transport", Utf8, false, "stdio (command) or http/sse (url)."),
                col("command", Utf8, true, "Command the client runs."),
                col("args_json", Utf8, true, "Arguments as a JSON array."),
                col("url", Utf8, true, "Remote server URL."),
                col("package_manager", Utf8, true, "See mcp_sessions.package_manager."),
                col("package_name", Utf8, true, "See mcp_sessions.package_name."),
                col("package_spec", Utf8, true, "See mcp_sessions.package_spec."),
                col("package_version", Utf8, true, "Exact version pinned; NULL when unpinned."),
                col("package_pinned", Bool, true, "The entry names an exact package version."),
                col("env_names", Utf8, true, "Names of environment variables passed (comma separated); values are never stored."),
                col("header_names", Utf8, true, "Names of HTTP headers passed (comma separated); values are never stored."),
                col("disabled", Bool, false, "The entry is present but disabled."),
            ],
            Table::ToolCalls => vec![
                TS,
                DATE,
                col("call_id", Utf8, false, "Stable id of the call: hash of session, rpc id and request position."),
                col("ts_end", Timestamp, true, "When the response was seen; null when none was."),
                col("duration_ms", Float64, true, "ts_end - ts in milliseconds."),
                col("session_id", Utf8, false, "See mcp_messages.session_id."),
                col("host", Utf8, true, "See mcp_messages.host."),
                col("server_name", Utf8, false, "See mcp_messages.server_name."),
                col("server_version", Utf8, true, "serverInfo.version of the session at the time of the call."),
                col("tool_name", Utf8, true, "The tool called."),
                col("rpc_id", Utf8, true, "JSON-RPC id of the request."),
                col("arguments_json", Utf8, true, "params.arguments as compact JSON."),
                col("result_json", Utf8, true, "The response's result (or error) as compact JSON."),
                col("is_error", Bool, true, "Error response or isError=true; null when unanswered."),
                col("truncated", Bool, false, "Request or response payload was elided by the log."),
                col("response_source_line", Int64, true, "Line of the response in the same source file."),
                col("recipients_observed", Bool, false, "Every address in the arguments is in intended_recipients. False when the log cut the request (truncated) or it held more addresses than are kept (100,000): a delivered recipient missing from the call is then not observed, not unintended."),
                col("host_tool_name", Utf8, true, "The tool's name as the agent host recorded it (Claude Code mcp__mail__send_email), from which server_name and tool_name were split; NULL for wire traces, which name them separately."),
                col("tool_name_split", Utf8, true, "exact, or ambiguous when host_tool_name splits more than one way (a server or tool name holding the separator: the first split is used; compare mcp_server_configs); not_recorded when the record did not name the server; NULL when not split."),
                col("arguments_observed", Bool, true, "The record kept the call's arguments. False when it did not (telemetry without its opt-in, a gateway that drops values): the call's recipients are unknown, not none, and its deliveries are neither unintended nor unexplained (mail.intent_not_observable counts them). NULL: written by an older release."),
            ],
            Table::IntendedRecipients => vec![
                TS,
                DATE,
                col("call_id", Utf8, false, "The tool call (tool_calls.call_id)."),
                col("session_id", Utf8, false, "See mcp_messages.session_id."),
                col("server_name", Utf8, false, "See mcp_messages.server_name."),
                col("server_version", Utf8, true, "serverInfo.version at the time of the call."),
                col("tool_name", Utf8, true, "The tool called."),
                col("arg_path", Utf8, false, "Where in the arguments the address was: to, cc[1], message.bcc, ..."),
                col("arg_role", Utf8, false, "to, cc, bcc, from, reply_to or other, from the argument's name."),
                col("address", Utf8, false, "Normalized address (see README: address normalization)."),
                col("address_raw", Utf8, true, "The address as written, where it differs from address."),
                col("domain", Utf8, false, "Domain part of address."),
            ],
            Table::CallMessageIds => vec![
                TS,
                DATE,
                col("call_id", Utf8, false, "The tool call (tool_calls.call_id)."),
                col("session_id", Utf8, false, "See mcp_messages.session_id."),
                col("server_name", Utf8, false, "See mcp_messages.server_name."),
                col("message_id", Utf8, false, "Message id without angle brackets."),
                col("found_in", Utf8, false, "text (MessageID: ...), json (a message id field) or header (Message-ID:)."),
            ],
            Table::ToolDefinitions => vec![
                TS,
                DATE,
                col("session_id", Utf8, false, "See mcp_messages.session_id."),
                col("server_name", Utf8, false, "See mcp_messages.server_name."),
                col("server_version", Utf8, true, "serverInfo.version of the session."),
                col("tool_name", Utf8, false, "Tool name."),
                col("description", Utf8, true, "Tool description."),
                col("input_schema_json", Utf8, true, "inputSchema as canonical JSON."),
                col("annotations_json", Utf8, true, "annotations as canonical JSON."),
                col("definition_sha256", Utf8, false, "sha256 of canonical JSON of name, description, inputSchema, annotations."),
            ],
            Table::MailDeliveries => vec![
                TS,
                DATE,
                col("host", Utf8, true, "Mail host that logged the delivery."),
                col("queue_id", Utf8, true, "MTA queue id (Postfix) or provider id."),
                col("message_id", Utf8, true, "Message-ID without angle brackets."),
                col("sender", Utf8, true, "Envelope sender, normalized; empty string for the null sender <>."),
                col("sender_raw", Utf8, true, "Envelope sender as logged, where it differs."),
                col("header_from", Utf8, true, "From: header where the log shows it."),
                col("subject", Utf8, true, "Subject where the log shows it."),
                col("recipient", Utf8, false, "Envelope recipient, normalized."),
                col("recipient_raw", Utf8, true, "Recipient as logged, where it differs."),
                col("orig_recipient", Utf8, true, "Original recipient before alias/virtual expansion (orig_to)."),
                col("recipient_domain", Utf8, false, "Domain of recipient."),
                col("recipient_role", Utf8, false, "to, cc, bcc, or envelope when the log cannot tell."),
                col("role_source", Utf8, false, "Where recipient_role came from: mta_envelope (an MTA's envelope: no role), provider (the provider lists the role, e.g. Postmark's Bcc), provider_recipients (the provider's recipient list, no role), header (the message's To/Cc/Bcc headers as the source recorded them), envelope_minus_headers (in the envelope but in no header: a Bcc, exactly, e.g. Amazon SES)."),
                col("status", Utf8, false, "sent, deferred, bounced, expired, delivered, ..."),
                col("dsn", Utf8, true, "Enhanced status code, e.g. 2.0.0."),
                col("relay", Utf8, true, "Next hop, e.g. mx.example.net[203.0.113.5]:25."),
                col("delay_s", Float64, true, "Total delay in seconds."),
                col("size_bytes", Int64, true, "Message size."),
                col("nrcpt", Int64, true, "Number of envelope recipients of the message."),
                col("client", Utf8, true, "Submitting client (host[ip], SASL user) or provider stream."),
                col("response", Utf8, true, "Remote server response text (bounded)."),
                col("notification_of", Utf8, true, "For a bounce/delay notification: the queue id of the original message."),
                col("related_lines", Utf8, true, "Other source lines of the same message (client, message-id, from), comma separated."),
                col("delivery_kind", Utf8, false, "egress (handed to another host: it left), filter_hop (handed to a content filter on this machine, which re-injects it: not a delivery), local (into a mailbox here), none (not handed anywhere: rejected, or no relay)."),
                col("next_queue_id", Utf8, true, "For a filter_hop: the queue id the filter re-injected the message under (follow it to the final delivery)."),
            ],
            Table::MailMessages => vec![
                col("ts", Timestamp, false, "When the message was first seen (its first line)."),
                DATE,
                col("host", Utf8, true, "Mail host."),
                col("queue_id", Utf8, false, "MTA queue id."),
                col("message_key", Utf8, false, "host, queue id and first-seen time: one message even when the queue id is reused."),
                col("message_id", Utf8, true, "Message-ID without angle brackets."),
                col("sender", Utf8, true, "Envelope sender, normalized; empty for <>."),
                col("client", Utf8, true, "Submitting client (host[ip], local uid)."),
                col("size_bytes", Int64, true, "Message size."),
                col("nrcpt", Int64, true, "Envelope recipients the MTA counted."),
                col("last_seen", Timestamp, false, "The message's latest line."),
                col("final_state", Utf8, false, "delivered, partially_delivered, deferred, bounced, expired, filtered (passed to a content filter: continues as filtered_to), rejected, discarded, still_queued (open at the end of the logs read), removed (removed with no delivery seen)."),
                col("recipients", Int64, false, "Distinct recipients with a delivery attempt."),
                col("delivered", Int64, false, "Recipients whose last attempt was a delivery (egress or local)."),
                col("deferred", Int64, false, "Recipients whose last attempt was deferred."),
                col("bounced", Int64, false, "Recipients bounced, expired or rejected."),
                col("filtered_to", Utf8, true, "Queue id a content filter re-injected this message under."),
                col("filtered_from", Utf8, true, "Queue id of the message this one was re-injected from by a content filter."),
                col("notification_of", Utf8, true, "For a bounce or delay notification: the queue id of the original message."),
                col("related_lines", Utf8, true, "Lines of the message in the source of this row (bounded), comma separated."),
            ],
            Table::MailEvents => vec![
                TS,
                DATE,
                col("host", Utf8, true, "Mail host."),
                col("queue_id", Utf8, true, "Queue id, NULL for NOQUEUE."),
                col("event", Utf8, false, "reject, milter_reject, header_redirect, proxy_reject, null_recipient ..."),
                col("stage", Utf8, true, "SMTP stage or check: CONNECT, EHLO, VRFY, RCPT, DATA, END-OF-MESSAGE, header, body."),
                col("client", Utf8, true, "Client host[ip]."),
                col("helo", Utf8, true, "HELO/EHLO name the client gave."),
                col("sender", Utf8, true, "Envelope sender, normalized."),
                col("recipient", Utf8, true, "Envelope recipient, normalized, where the event names one."),
                col("redirect_to", Utf8, true, "For a header_redirect: where the filter redirected the message."),
                col("dsn", Utf8, true, "Enhanced status code."),
                col("reason", Utf8, false, "The MTA's text (bounded)."),
            ],
            Table::Rejects => vec![
                TS,
                DATE,
                col("reason", Utf8, false, "Why the record was not parsed, and what was expected."),
                col("raw", Utf8, false, "The raw bytes (lossy UTF-8), bounded; see raw_truncated."),
                col("raw_len", Int64, false, "Length of the raw record in bytes."),
                col("raw_truncated", Bool, false, "raw holds only the first bytes of the record."),
            ],
            Table::IngestLog => vec![
                TS,
                DATE,
                col("source_sha256", Utf8, false, "sha256 of the whole raw file as read (compressed bytes for .gz)."),
                col("source_size", Int64, false, "Bytes of the raw file at ingest."),
                col("resumed_from", Int64, false, "Content offset ingest started from (decompressed bytes for a compressed file): >0 when a grown or rotated file added only its new part."),
                col("prefix_sha256", Utf8, false, "sha256 of the content before resumed_from (empty hash when 0)."),
                col("lines", Int64, false, "Lines read (from resumed_from)."),
                col("lines_parsed", Int64, false, "Lines that contributed to rows."),
                col("lines_rejected", Int64, false, "Lines that went to _rejects."),
                col("lines_skipped", Int64, false, "Lines deliberately not normalized (other programs, stderr, comments)."),
                col("skipped_reasons", Utf8, false, "JSON object: reason -> line count."),
                col("rows_json", Utf8, false, "JSON object: table -> rows written (a `forgotten` record: rows removed)."),
                col("duration_ms", Float64, false, "Wall time of parsing this source."),
                col("tool_version", Utf8, false, "mcp-forensics version that ingested it."),
                col("status", Utf8, false, "ok; partial (reading stopped at an error: the lines before it are in the lake, the error is in error and _rejects); failed (nothing could be read: tried again by the next ingest); forgotten (forget or ingest --force removed the source's rows: its earlier records are history, the next ingest reads it again)."),
                col("error", Utf8, true, "Why reading stopped early or failed; NULL when status is ok."),
                col("rotation_group", Utf8, false, "The rotated set the file belongs to: its folder and base name (mail.log.2.gz -> DIR/mail.log)."),
                col("carry_in_json", Utf8, true, "MTA correlation state the file was read with (open messages from the previous file of its set); NULL when none."),
                col("carry_out_json", Utf8, true, "MTA correlation state at the file's end, for the next file of its set (bounded: messages seen in the last 7 days, at most 50,000)."),
                col("chain_json", Utf8, true, "For a trace mcp-forensics record wrote: its hash chain as ingest read it, JSON {state: intact|open|broken, chain, first_seq, last_seq, head, records, ended_with, problems, first_problem}. NULL: not a recorded trace, or written by an older release."),
                col("held_back_bytes", Int64, true, "Bytes after source_size not read yet: a live log's last line still being written (no newline). The next ingest reads them from source_size. NULL: written by an older release."),
                col("content_sha256", Utf8, true, "sha256 of the content the parsers read: the decompressed bytes of a .gz/.zst file (the raw bytes when they cannot be decompressed to their end), source_sha256 for a plain file. A log that logrotate compressed (mail.log.1 -> mail.log.2.gz) has the content it had and is not read twice. NULL: written by an older release (the content is source_sha256)."),
                col("content_size", Int64, true, "Bytes of that content; NULL: written by an older release (source_size)."),
                col("stamp_zone", Utf8, true, "The zone (--tz) that timestamps without offset were read in (syslog `Jan  5 10:00:00`); NULL: none given, read as UTC."),
            ],
            Table::Findings => vec![
                col("ts", Timestamp, false, "When the detect run recorded the finding (UTC)."),
                DATE,
                col("finding_id", Utf8, false, "Stable id: the same rule and key give the same id in every run."),
                col("rule_id", Utf8, false, "The rule that found it."),
                col("severity", Utf8, false, "info, low, medium, high or critical."),
                col("title", Utf8, false, "The rule's title."),
                col("key", Utf8, false, "What makes it one finding (e.g. the address, or address <- sender)."),
                col("first_seen", Timestamp, false, "Earliest counted evidence."),
                col("last_seen", Timestamp, false, "Latest counted evidence."),
                col("count", Int64, false, "Distinct counted units (messages, sessions, calls) so far."),
                col("address", Utf8, true, "Entity: e-mail address."),
                col("sender", Utf8, true, "Entity: envelope sender."),
                col("server", Utf8, true, "Entity: MCP server name."),
                col("version", Utf8, true, "Entity: server / package version."),
                col("session", Utf8, true, "Entity: MCP session id."),
                col("detail", Utf8, true, "One human sentence from the earliest evidence."),
                col("evidence_total", Int64, false, "Evidence rows behind the finding."),
                col("evidence_json", Utf8, false, "Evidence locations as a JSON array (bounded by the detect engine)."),
                col("rule_origin", Utf8, false, "embedded:FILE or the path of a user rule file."),
            ],
        };
        // The ingest log is about sources; its own provenance is the source itself.
        cols.extend(PROVENANCE);
        cols
    }

    /// The Arrow schema of the table.
    pub fn schema(self) -> SchemaRef {
        let fields: Vec<Field> = self
            .columns()
            .iter()
            .map(|c| Field::new(c.name, c.kind.arrow(), c.nullable))
            .collect();
        Arc::new(Schema::new(fields))
    }

    /// [`Table::columns`], built once per table: what row builders look
    /// names up in for every cell.
    pub fn columns_static(self) -> &'static [Column] {
        &self.catalog().columns
    }

    /// Position of a column by name. Called for every cell a parser sets, so
    /// names are looked up among the columns of the same length only (one or
    /// two candidates), not compared with every column.
    pub fn column_index(self, name: &str) -> Option<usize> {
        let by_len = &self.catalog().by_len;
        // The same literal is usually the same address: compare that first.
        by_len.get(name.len())?.iter().find(|(n, _)| std::ptr::eq(n.as_ptr(), name.as_ptr()) || *n == name).map(|(_, i)| *i)
    }

    fn catalog(self) -> &'static TableCatalog {
        static CATALOG: std::sync::OnceLock<Vec<TableCatalog>> = std::sync::OnceLock::new();
        let all = CATALOG.get_or_init(|| Table::ALL.iter().map(|t| TableCatalog::new(t.columns())).collect());
        // ALL lists the variants in declaration order (a test checks it).
        &all[self as usize]
    }

    /// Partition columns of the Delta table.
    pub fn partition_columns(self) -> &'static [&'static str] {
        &["date"]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_the_variants_in_declaration_order_and_names_resolve() {
        for (i, t) in Table::ALL.iter().enumerate() {
            assert_eq!(*t as usize, i, "{}", t.name());
            for (j, c) in t.columns().iter().enumerate() {
                assert_eq!(t.column_index(c.name), Some(j), "{}.{}", t.name(), c.name);
            }
            assert_eq!(t.column_index("no_such_column"), None);
            assert_eq!(t.column_index(""), None);
        }
    }

    #[test]
    fn every_table_has_provenance_and_partition() {
        for t in Table::ALL {
            let s = t.schema();
            for p in PROVENANCE_COLUMNS {
                assert!(s.field_with_name(p).is_ok(), "{} lacks {p}", t.name());
            }
            assert!(s.field_with_name("date").is_ok());
            assert!(s.field_with_name("ts").is_ok());
            assert_eq!(Table::from_name(t.name()), Some(t));
        }
    }

    #[test]
    fn column_names_are_unique() {
        for t in Table::ALL {
            let mut names: Vec<_> = t.columns().iter().map(|c| c.name).collect();
            let n = names.len();
            names.sort();
            names.dedup();
            assert_eq!(n, names.len(), "duplicate column in {}", t.name());
        }
    }
}
