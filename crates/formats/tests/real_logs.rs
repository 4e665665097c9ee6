//! Conformance on real third-party logs (`../shared/real-logs`, by path).
//!
//! Every file must parse without panic and account for every line
//! (parsed + rejected + skipped = lines); where the source ships an oracle
//! (whyscream's grok cases, fail2ban's failJSON times) fields must equal it;
//! elsewhere the test states facts read off the files themselves.
//! When `../shared` is absent the tests say so and pass vacuously.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mcpf_formats::collect::Provenance;
use mcpf_formats::{detect_format, parse_file, Format, RowSink, SourceInfo, SourceStats, Val};
use mcpf_schema::Table;

fn shared() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/real-logs");
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("SKIP: {} is absent (the shared real-log corpus sits beside the checkout)", p.display());
        None
    }
}

#[derive(Default)]
struct Rows(Vec<(Table, BTreeMap<&'static str, Option<String>>)>);

impl RowSink for Rows {
    fn row(&mut self, table: Table, vals: &[Val<'_>]) {
        let cols = table.columns();
        assert_eq!(cols.len(), vals.len(), "{}: cell count", table.name());
        let mut m = BTreeMap::new();
        for (c, v) in cols.iter().zip(vals) {
            let s = match v {
                Val::Str(s) => s.map(str::to_string),
                Val::Int(i) => i.map(|x| x.to_string()),
                Val::Float(f) => f.map(|x| x.to_string()),
                Val::Bool(b) => b.map(|x| x.to_string()),
                Val::Ts(t) => t.map(mcpf_formats::time::to_rfc3339),
            };
            m.insert(c.name, s);
        }
        self.0.push((table, m));
    }
}

impl Rows {
    fn of(&self, t: Table) -> Vec<&BTreeMap<&'static str, Option<String>>> {
        self.0.iter().filter(|(tt, _)| *tt == t).map(|(_, m)| m).collect()
    }
}

fn get<'a>(m: &'a BTreeMap<&'static str, Option<String>>, k: &str) -> Option<&'a str> {
    m.get(k).and_then(|v| v.as_deref())
}

fn parse(path: &Path, format: Format, year: Option<i32>) -> (SourceStats, Rows) {
    parse_in(path, format, year, None)
}

fn parse_in(path: &Path, format: Format, year: Option<i32>, zone: Option<mcpf_formats::time::Zone>) -> (SourceStats, Rows) {
    let info = SourceInfo { year_hint: year, zone, ..SourceInfo::new(&path.to_string_lossy(), Some(1_700_000_000)) };
    let prov = Provenance { format, file: info.path.clone(), ingest_id: Arc::from("test") };
    let mut rows = Rows::default();
    let stats = parse_file(path, format, &info, prov, 0, &mut rows, None).expect("readable");
    assert!(stats.balanced(), "{}: lines {} != parsed {} + rejected {} + skipped {}", path.display(), stats.lines, stats.parsed, stats.rejected, stats.skipped);
    (stats, rows)
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p)
            } else {
                out.push(p)
            }
        }
    }
    out.sort();
    out
}

fn line_count(path: &Path) -> u64 {
    let (mut r, _) = mcpf_formats::source::open_decompressed(path).unwrap();
    let mut buf = Vec::new();
    std::io::Read::read_to_end(&mut r, &mut buf).unwrap();
    let n = buf.iter().filter(|b| **b == b'\n').count() as u64;
    n + u64::from(!buf.is_empty() && *buf.last().unwrap() != b'\n')
}

/// Every real Postfix and MCP file: each recognised file under every parser
/// that claims it parses with all lines accounted for.
#[test]
fn every_real_file_accounts_for_every_line() {
    let Some(root) = shared() else { return };
    for sub in ["postfix", "mcp"] {
        for f in files_under(&root.join(sub)) {
            let head = mcpf_formats::source::read_head(&f, 64 * 1024).unwrap().0;
            // Whatever is detected, and every parser forced, must stay balanced and not panic.
            for fmt in Format::ALL {
                let (stats, _) = parse(&f, fmt, Some(2022));
                assert_eq!(stats.lines, line_count(&f), "{}: line count under {fmt}", f.display());
            }
            let rel = f.strip_prefix(&root).unwrap().to_string_lossy().to_string();
            let expected = if rel.starts_with("postfix/lightmeter") || rel.starts_with("postfix/fail2ban") {
                Some(Format::Postfix)
            } else if rel.starts_with("mcp/claude-desktop") {
                Some(Format::ClaudeDesktop)
            } else if rel.starts_with("mcp/claude-code") {
                Some(Format::ClaudeCode)
            } else if rel.starts_with("mcp/codex") {
                Some(Format::Codex)
            } else if rel.starts_with("mcp/gemini-cli") {
                Some(Format::GeminiCli)
            } else if rel.starts_with("mcp/copilot-cli") && rel.ends_with("events.jsonl") {
                Some(Format::Copilot)
            } else {
                None
            };
            if expected.is_some() {
                assert_eq!(detect_format(&head), expected, "{rel}");
            }
        }
    }
}

/// Minimal reader for whyscream's flat YAML cases.
fn yaml_case(text: &str) -> (String, String, BTreeMap<String, String>) {
    let unquote = |s: &str| {
        let s = s.trim();
        if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
            s[1..s.len() - 1].replace("\\\"", "\"").replace("\\\\", "\\")
        } else if s.len() >= 2 && s.starts_with('\'') && s.ends_with('\'') {
            s[1..s.len() - 1].replace("''", "'")
        } else {
            s.to_string()
        }
    };
    let (mut pattern, mut data, mut results) = (String::new(), String::new(), BTreeMap::new());
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("pattern:") {
            pattern = unquote(v);
        } else if let Some(v) = line.strip_prefix("data:") {
            data = unquote(v);
        } else if line.starts_with("    ") {
            if let Some((k, v)) = line.trim().split_once(':') {
                results.insert(k.trim().to_string(), unquote(v));
            }
        }
    }
    (pattern, data, results)
}

/// whyscream's cases of actions that deliver nothing: CONNECT and VRFY
/// rejects, milter redirects, proxy rejects. Each is one `mail_events` row
/// (never skipped, never an empty recipient) with the oracle's stage, status
/// code and redirect target; a proxy reject at END-OF-MESSAGE refused a
/// recipient, so it is a `rejected` delivery row as well as an event-free line.
#[test]
fn grok_oracle_events() {
    let Some(root) = shared() else { return };
    let dir = root.join("postfix/whyscream-grok-cases");
    let tmp = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for f in files_under(&dir) {
        let (pattern, data, res) = yaml_case(&std::fs::read_to_string(&f).unwrap());
        let is_event = data.contains("reject: CONNECT") || data.contains("reject: VRFY") || data.contains("reject: EHLO") || data.contains("redirect:") || data.contains("proxy-reject:");
        if !is_event {
            continue;
        }
        let daemon = pattern.trim_start_matches("^%{POSTFIX_").split('}').next().unwrap_or("").to_lowercase();
        let p = tmp.path().join(f.file_name().unwrap());
        std::fs::write(&p, format!("Jan  5 10:00:00 mx postfix/{daemon}[1]: {data}\n")).unwrap();
        let (stats, rows) = parse(&p, Format::Postfix, Some(2020));
        assert_eq!((stats.parsed, stats.skipped), (1, 0), "{}: {stats:?}", f.display());
        let ev = rows.of(Table::MailEvents);
        let d = rows.of(Table::MailDeliveries);
        if data.contains("proxy-reject:") {
            assert_eq!((ev.len(), d.len()), (0, 1), "{}", f.display());
            assert_eq!(get(d[0], "status"), Some("rejected"));
            assert_eq!(get(d[0], "dsn"), res.get("postfix_proxy_status_code_enhanced").map(String::as_str), "{}", f.display());
            checked += 1;
            continue;
        }
        assert_eq!((ev.len(), d.len()), (1, 0), "{}: {data}", f.display());
        let e = ev[0];
        if let Some(stage) = res.get("postfix_smtp_stage").or(res.get("postfix_proxy_smtp_stage")) {
            assert_eq!(get(e, "stage"), Some(stage.as_str()), "{}", f.display());
        }
        if let Some(dsn) = res.get("postfix_status_code_enhanced") {
            assert_eq!(get(e, "dsn"), Some(dsn.as_str()), "{}", f.display());
        }
        if let Some(ip) = res.get("postfix_client_ip") {
            assert!(get(e, "client").is_some_and(|c| c.contains(ip.as_str())), "{}: {e:?}", f.display());
        }
        if res.get("postfix_milter_result").is_some_and(|r| r.contains("redirect")) {
            assert_eq!(get(e, "event"), Some("header_redirect"));
            assert_eq!(get(e, "redirect_to"), res.get("postfix_milter_data").map(String::as_str), "{}", f.display());
        }
        checked += 1;
    }
    assert!(checked >= 6, "{checked} event cases");
}

/// whyscream/postfix-grok-patterns: the oracle's fields for delivery,
/// qmgr and cleanup lines must equal ours.
#[test]
fn grok_oracle_cases() {
    let Some(root) = shared() else { return };
    let dir = root.join("postfix/whyscream-grok-cases");
    let tmp = std::env::temp_dir().join(format!("mcpf-grok-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let mut checked = BTreeMap::<&str, usize>::new();
    for f in files_under(&dir) {
        let (pattern, data, res) = yaml_case(&std::fs::read_to_string(&f).unwrap());
        let daemon = match pattern.trim_start_matches("^%{POSTFIX_").split('}').next().unwrap_or("") {
            "SMTP" => "smtp",
            "LMTP" => "lmtp",
            "LOCAL" => "local",
            "VIRTUAL" => "virtual",
            "PIPE" => "pipe",
            "ERROR" => "error",
            "QMGR" => "qmgr",
            "CLEANUP" => "cleanup",
            _ => continue,
        };
        let Some(qid) = res.get("postfix_queueid") else { continue };
        // The case line, then (for context lines) a delivery of the same queue id.
        let mut log = format!("Jan  5 10:00:00 mx postfix/{daemon}[1]: {data}\n");
        if daemon == "qmgr" || daemon == "cleanup" {
            log.push_str(&format!("Jan  5 10:00:01 mx postfix/smtp[2]: {qid}: to=<probe@example.org>, relay=none, delay=1, delays=1/0/0/0, dsn=4.4.1, status=deferred (test)\n"));
        }
        let p = tmp.join(f.file_name().unwrap());
        std::fs::write(&p, &log).unwrap();
        let (_, rows) = parse(&p, Format::Postfix, Some(2020));
        let d = rows.of(Table::MailDeliveries);
        let kv = res.get("postfix_keyvalue_data").cloned().unwrap_or_default();
        match daemon {
            "qmgr" => {
                if !kv.starts_with("from=") || data.contains("status=expired") {
                    continue;
                }
                assert_eq!(d.len(), 1, "{}", f.display());
                let want_from = kv.split("from=<").nth(1).and_then(|x| x.split('>').next()).unwrap().to_lowercase();
                assert_eq!(get(d[0], "sender"), Some(want_from.as_str()), "{}", f.display());
                if let Some(size) = kv.split("size=").nth(1).and_then(|x| x.split(',').next()) {
                    assert_eq!(get(d[0], "size_bytes"), Some(size), "{}", f.display());
                }
            }
            "cleanup" => {
                let Some(mid) = res.get("postfix_message-id") else { continue };
                assert_eq!(d.len(), 1, "{}", f.display());
                // An empty message-id=<> is no id at all: NULL, not "".
                let want = if mid.is_empty() { None } else { Some(mid.as_str()) };
                assert_eq!(get(d[0], "message_id"), want, "{}", f.display());
            }
            _ => {
                let Some(status) = res.get("postfix_status") else {
                    // TLS, connection and warning lines of delivery agents: no delivery row.
                    // (tls_features_* cases are deliveries whose oracle keeps only TLS fields.)
                    if !f.file_name().unwrap().to_string_lossy().starts_with(daemon) {
                        continue;
                    }
                    assert!(d.is_empty(), "{}: {data} gave {d:?}", f.display());
                    *checked.entry("no-delivery").or_insert(0) += 1;
                    continue;
                };
                assert_eq!(d.len(), 1, "{}: {data}", f.display());
                let row = d[0];
                assert_eq!(get(row, "queue_id"), Some(qid.as_str()), "{}", f.display());
                assert_eq!(get(row, "status"), Some(status.as_str()), "{}", f.display());
                let field = |k: &str| kv.split(&format!("{k}=")).nth(1).map(|x| x.split(", ").next().unwrap().trim_end_matches(',').to_string());
                if let Some(to) = field("to") {
                    assert_eq!(get(row, "recipient").map(str::to_string), Some(to.trim_matches(['<', '>']).to_lowercase()), "{}", f.display());
                }
                if let Some(orig) = field("orig_to") {
                    assert_eq!(get(row, "orig_recipient").map(str::to_string), Some(orig.trim_matches(['<', '>']).to_lowercase()), "{}", f.display());
                }
                for k in ["relay", "dsn"] {
                    if let Some(v) = field(k) {
                        assert_eq!(get(row, k), Some(v.as_str()), "{}: {k}", f.display());
                    }
                }
                for k in ["postfix_smtp_response", "postfix_lmtp_response", "postfix_local_response", "postfix_pipe_response", "postfix_virtual_response", "postfix_error_response"] {
                    if let Some(v) = res.get(k) {
                        assert_eq!(get(row, "response"), Some(v.as_str()), "{}: {k}", f.display());
                    }
                }
            }
        }
        *checked.entry(daemon).or_insert(0) += 1;
    }
    std::fs::remove_dir_all(&tmp).ok();
    eprintln!("grok oracle cases checked: {checked:?}");
    // Every delivery case of the oracle (5 smtp, 4 pipe, 2 local, 2 error, 1 lmtp, 1 virtual).
    assert!(checked.get("smtp").copied().unwrap_or(0) >= 5, "{checked:?}");
    assert!(checked.get("pipe").copied().unwrap_or(0) >= 4, "{checked:?}");
    assert!(checked.get("no-delivery").copied().unwrap_or(0) >= 9, "{checked:?}");
    assert!(checked.get("qmgr").copied().unwrap_or(0) >= 1, "{checked:?}");
    assert!(checked.get("cleanup").copied().unwrap_or(0) >= 4, "{checked:?}");
}

/// fail2ban's postfix sample: each line after a `# failJSON` oracle has the
/// oracle's month, day and time (the year is the harness's assumption).
#[test]
fn fail2ban_times() {
    let Some(root) = shared() else { return };
    let text = std::fs::read_to_string(root.join("postfix/fail2ban/postfix")).unwrap();
    let mut expected: Option<String> = None;
    let mut checked = 0;
    for line in text.lines() {
        if let Some(j) = line.strip_prefix("# failJSON:") {
            expected = serde_json::from_str::<serde_json::Value>(j.trim()).ok().and_then(|v| v.get("time").and_then(|t| t.as_str()).map(str::to_string));
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some(want) = expected.take() else { continue };
        let s = mcpf_formats::postfix::split_syslog(line).unwrap_or_else(|| panic!("not parsed: {line}"));
        let mcpf_formats::postfix::Stamp::Classic(mo, d, h, mi, se, _) = s.stamp else { panic!("{line}") };
        // The oracle writes unpadded fields (2005-03-7T02:09:33).
        let want: Vec<u32> = want.split(['-', 'T', ':']).skip(1).map(|x| x.parse().unwrap()).collect();
        assert_eq!(want, vec![mo, d, h, mi, se], "{line}");
        checked += 1;
    }
    assert!(checked >= 50, "only {checked} oracle lines");
}

/// lightmeter's real mail.log set: facts read off the files.
#[test]
fn lightmeter_facts() {
    let Some(root) = shared() else { return };
    let ind = root.join("postfix/lightmeter/individual");
    // Alias/local expansion: orig_to kept.
    let (_, rows) = parse(&ind.join("21_deliveries_with_local_daemon.log"), Format::Postfix, Some(2020));
    let d = rows.of(Table::MailDeliveries);
    assert!(d.iter().filter(|r| get(r, "orig_recipient").is_some()).count() >= 3);
    // Deferred, retried, then expired: one expired row per deferred recipient.
    let (_, rows) = parse(&ind.join("18_expired.log"), Format::Postfix, Some(2020));
    let statuses: Vec<_> = rows.of(Table::MailDeliveries).iter().filter_map(|r| get(r, "status").map(str::to_string)).collect();
    assert!(statuses.iter().filter(|s| *s == "deferred").count() >= 5, "{statuses:?}");
    assert!(statuses.iter().any(|s| s == "expired"), "{statuses:?}");
    // RFC 3339 stamps with microseconds.
    let (_, rows) = parse(&ind.join("25_authclean_cleanup.log"), Format::Postfix, None);
    let d = rows.of(Table::MailDeliveries);
    assert_eq!(d.len(), 1);
    assert!(get(d[0], "ts").unwrap().starts_with("2022-01-08T19:42:"));
    assert!(get(d[0], "message_id").is_some());
    // Content-filter re-queue: the same Message-ID under two queue ids.
    let (_, rows) = parse(&ind.join("1_bounce_simple.log"), Format::Postfix, Some(2020));
    let d = rows.of(Table::MailDeliveries);
    let mids: std::collections::BTreeSet<_> = d.iter().filter_map(|r| get(r, "message_id")).collect();
    let qids: std::collections::BTreeSet<_> = d.iter().filter_map(|r| get(r, "queue_id")).collect();
    assert!(qids.len() > mids.len(), "{qids:?} {mids:?}");
    assert!(d.iter().any(|r| get(r, "status") == Some("bounced") && get(r, "dsn") == Some("5.1.1")));
    // Queue id reuse: rows of different messages under one id keep their own message id.
    let (stats, rows) = parse(&ind.join("14_reuse_of_queueid.log"), Format::Postfix, Some(2020));
    assert!(stats.parsed > 100);
    assert!(!rows.of(Table::MailDeliveries).is_empty());
}

/// The rotated set spans December → January: the year advances once.
#[test]
fn year_rollover_on_rotated_set() {
    let Some(root) = shared() else { return };
    let p = root.join("postfix/lightmeter/logs_sample/mail.warn.4.gz");
    let (mut r, _) = mcpf_formats::source::open_decompressed(&p).unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut r, &mut text).unwrap();
    let mut years = mcpf_formats::time::YearTracker::new(Some(2021), None);
    let mut last = i64::MIN;
    let (mut dec, mut jan) = (0, 0);
    for line in text.lines() {
        let s = mcpf_formats::postfix::split_syslog(line).unwrap();
        let mcpf_formats::postfix::Stamp::Classic(mo, d, h, mi, se, us) = s.stamp else { panic!() };
        let y = years.year_for(mo);
        let t = mcpf_formats::time::from_parts(y, mo, d, h, mi, se, us).unwrap();
        assert!(t >= last, "time went backwards at {line}");
        last = t;
        match (y, mo) {
            (2021, 12) => dec += 1,
            (2022, 1) => jan += 1,
            other => panic!("unexpected {other:?} at {line}"),
        }
    }
    assert!(dec > 0 && jan > 0, "dec {dec} jan {jan}");
    // And the whole rotated directory ingests balanced.
    for f in files_under(&root.join("postfix/lightmeter/logs_sample")) {
        parse(&f, Format::Postfix, Some(2021));
    }
}

/// Claude Desktop logs: facts read off the files.
#[test]
fn claude_desktop_facts() {
    let Some(root) = shared() else { return };
    let cd = root.join("mcp/claude-desktop");
    for f in files_under(&cd) {
        let head = mcpf_formats::source::read_head(&f, 65536).unwrap().0;
        assert_eq!(detect_format(&head), Some(Format::ClaudeDesktop), "{}", f.display());
    }
    // Per-server log, [name] [level] order, multi-line launch, stderr interleaved.
    let (stats, rows) = parse(&cd.join("mcp-server-weather.2025-07-20.log"), Format::ClaudeDesktop, None);
    let m = rows.of(Table::McpMessages);
    assert_eq!(m.len(), 10);
    assert!(m.iter().skip(1).all(|r| get(r, "server_version") == Some("1.12.0")));
    assert!(m.iter().all(|r| get(r, "client_name") == Some("claude-ai")));
    let sessions: std::collections::BTreeSet<_> = m.iter().map(|r| get(r, "session_id")).collect();
    assert_eq!(sessions.len(), 1);
    assert_eq!(stats.skipped_reasons.get("server stderr or continuation line (no timestamp)"), Some(&9));
    let calls = rows.of(Table::ToolCalls);
    assert_eq!(calls.len(), 1, "get_alerts is never answered in the excerpt");
    assert_eq!(get(calls[0], "tool_name"), Some("get_alerts"));
    assert_eq!(get(calls[0], "ts_end"), None);
    // Aggregate mcp.log, [level] [name] order, no suffix.
    let (_, rows) = parse(&cd.join("mcp.2025-07-20.log"), Format::ClaudeDesktop, None);
    let m = rows.of(Table::McpMessages);
    assert_eq!(m.len(), 11);
    assert!(m.iter().all(|r| get(r, "server_name") == Some("weather")));
    assert_eq!(m.iter().filter(|r| get(r, "message_kind") == Some("response")).count(), 5);
    // 2026 Go server: answered calls with structuredContent.
    let (_, rows) = parse(&cd.join("mcp-server-go-mcp-server.2026-04-12.log"), Format::ClaudeDesktop, None);
    let calls = rows.of(Table::ToolCalls);
    assert_eq!(calls.len(), 3);
    assert!(calls.iter().all(|c| get(c, "is_error") == Some("false") && get(c, "ts_end").is_some()));
    // Summary format: method and id without payload.
    let (stats, rows) = parse(&cd.join("mcp.summary-format.2026-07.log"), Format::ClaudeDesktop, None);
    let m = rows.of(Table::McpMessages);
    let methods: Vec<_> = m.iter().map(|r| get(r, "method").unwrap_or("")).collect();
    assert_eq!(methods, ["initialize", "initialize", "notifications/initialized", "tools/list", "tools/list"]);
    assert_eq!((stats.parsed, stats.skipped), (5, 1));
    // Stdout pollution error line and the initialize response that follows.
    let (stats, rows) = parse(&cd.join("mcp.golang-mcp-testing.2025-06-27.log"), Format::ClaudeDesktop, None);
    assert_eq!(stats.skipped, 1);
    assert!(rows.of(Table::McpMessages).iter().any(|r| get(r, "server_version") == Some("1.0.0")));
    // Launch lines only (duplicated as Desktop writes them): all parsed or skipped, no rows of messages.
    let (stats, rows) = parse(&cd.join("mcp-server-rebe.2025-09-04.log"), Format::ClaudeDesktop, None);
    assert_eq!(stats.lines, 19);
    assert!(rows.of(Table::McpMessages).is_empty());
    assert!(stats.parsed >= 16, "launch block lines are parsed: {stats:?}");
    // JSON-RPC error responses.
    let (_, rows) = parse(&cd.join("mcp-server-ably.2025-04-11.log"), Format::ClaudeDesktop, None);
    let m = rows.of(Table::McpMessages);
    assert_eq!(m.iter().filter(|r| get(r, "message_kind") == Some("error")).count(), 1);
    assert_eq!(get(m[1], "method"), Some("prompts/list"), "the error inherits its request's method");
}

/// A payload Desktop cut in the middle keeps its row, marked truncated, with
/// what is still readable. (Built from the real weather log's line shape.)
#[test]
fn truncated_payload_keeps_row() {
    let dir = std::env::temp_dir().join(format!("mcpf-trunc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("mcp-server-mail.log");
    std::fs::write(
        &p,
        "2025-07-20T14:12:07.571Z [mail] [info] Message from client: {\"method\":\"tools/call\",\"params\":{\"name\":\"sendEmail\",\"arguments\":{\"to\":\"a@x.example\",\"textBody\":\"Hel... [52311 chars truncated] ...\",\"cc\":\"b@y.example\"}},\"jsonrpc\":\"2.0\",\"id\":18} { metadata: undefined }\n\
2025-07-20T14:12:08.000Z [mail] [info] Message from server: {\"jsonrpc\":\"2.0\",\"id\":18,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"Email sent successfully!\\nMessageID: abc-123\"}]}} { metadata: undefined }\n\
2025-07-20T14:13:00.000Z [mail] [info] Message from client: {\"method\":\"tools/call\",\"params\":{\"name\":\"sendEmail\",\"arguments\":{\"to\":\"c@z.example\",[9120 chars truncated]ody\":\"x\"}},\"jsonrpc\":\"2.0\",\"id\":19} { metadata: undefined }\n",
    )
    .unwrap();
    let (stats, rows) = parse(&p, Format::ClaudeDesktop, None);
    assert_eq!((stats.parsed, stats.rejected), (3, 0));
    let m = rows.of(Table::McpMessages);
    // Structure cut: still a tools/call request with id 19 and its readable address.
    assert_eq!((get(m[2], "method"), get(m[2], "rpc_id"), get(m[2], "tool_name"), get(m[2], "truncated")), (Some("tools/call"), Some("19"), Some("sendEmail"), Some("true")));
    assert_eq!(get(m[0], "truncated"), Some("true"));
    assert_eq!(get(m[0], "method"), Some("tools/call"));
    assert_eq!(get(m[0], "rpc_id"), Some("18"));
    assert_eq!(get(m[0], "tool_name"), Some("sendEmail"));
    let calls = rows.of(Table::ToolCalls);
    assert_eq!(calls.len(), 2, "the cut call 19 stays, unanswered");
    assert!(calls.iter().all(|c| get(c, "truncated") == Some("true")));
    let addrs: Vec<_> = rows.of(Table::IntendedRecipients).iter().map(|r| (get(r, "address").unwrap().to_string(), get(r, "arg_path").unwrap().to_string())).collect();
    assert_eq!(addrs, [("a@x.example".into(), "to".into()), ("b@y.example".into(), "cc".into()), ("c@z.example".into(), "(truncated)".into())]);
    assert_eq!(rows.of(Table::CallMessageIds).len(), 1);
    std::fs::remove_dir_all(&dir).ok();
}

/// Postmark API recordings (postmarker's cassettes, decoded): recipients,
/// roles, statuses and MessageIDs as the provider recorded them.
#[test]
fn postmark_recordings() {
    let Some(root) = shared() else { return };
    let dir = root.join("providers/postmark/postmarker-decoded");
    let one = |name: &str| {
        let p = dir.join(name);
        let head = mcpf_formats::source::read_head(&p, 65536).unwrap().0;
        assert_eq!(detect_format(&head), Some(Format::Postmark), "{name}");
        let (stats, rows) = parse(&p, Format::Postmark, None);
        assert_eq!(stats.rejected, 0, "{name}");
        rows.of(Table::MailDeliveries).into_iter().cloned().collect::<Vec<_>>()
    };
    // Outbound message search.
    let r = one("messages-01-GET-messages_outbound.json");
    assert_eq!(r.len(), 1);
    assert_eq!((get(&r[0], "message_id"), get(&r[0], "recipient"), get(&r[0], "recipient_role"), get(&r[0], "status")), (Some("21895802-5d50-442b-b039-27cf5b462c54"), Some("test@example.com"), Some("to"), Some("sent")));
    assert_eq!((get(&r[0], "sender"), get(&r[0], "header_from"), get(&r[0], "source_pointer")), (Some("test@test.com"), Some("Test <test@test.com>"), Some("/Messages/0/To/0")));
    assert_eq!(get(&r[0], "ts"), Some("2017-02-25T18:59:44.045361Z"));
    // Details with a Delivered event.
    let r = one("messages-02-GET-messages_outbound_21895802-5d50-442b-b039-27cf5b462c54_details.json");
    let ev: Vec<_> = r.iter().filter(|x| get(x, "source_pointer") == Some("/MessageEvents/0")).collect();
    assert_eq!(ev.len(), 1);
    assert_eq!((get(ev[0], "status"), get(ev[0], "dsn"), get(ev[0], "relay")), (Some("delivered"), Some("2.0.0"), Some("ASPMX.L.GOOGLE.com (127.0.0.1)")));
    assert_eq!(get(ev[0], "response"), Some("smtp;250 2.0.0 OK 1488049184 u12si5307395ite.25 - gsmtp"));
    // Details with a Bounced event.
    let r = one("bounces-14-GET-messages_outbound_086415ac-9326-4ddb-9d95-c0d8db13532b_details.json");
    assert!(r.iter().any(|x| get(x, "status") == Some("bounced") && get(x, "message_id") == Some("ccf148f9-a81b-4c9c-a763-3912fe21197b")));
    // Bounce record and bounce list.
    let r = one("bounces-01-GET-bounces_723626745.json");
    assert_eq!((get(&r[0], "recipient"), get(&r[0], "status"), get(&r[0], "dsn"), get(&r[0], "message_id")), (Some("example@example.com"), Some("bounced"), Some("5.1.1"), Some("086415ac-9326-4ddb-9d95-c0d8db13532b")));
    let r = one("bounces-06-GET-bounces.json");
    let ids: Vec<_> = r.iter().map(|x| get(x, "message_id").unwrap()).collect();
    assert_eq!(ids, ["b1d5dfa8-2d7c-4176-a24e-8a47ff860615", "aa9fa9ca-6c99-4970-ac17-2e63f9515e8d"]);
    assert!(get(&r[1], "response").unwrap().starts_with("SoftBounce: X-Postfix; Mailbox is full"));
    let r = one("bounces-03-PUT-bounces_723626745_activate.json");
    assert_eq!(get(&r[0], "source_pointer"), Some("/Bounce"));
    // Send responses.
    for (f, id) in [("emails-01-POST-email.json", "806aa9ad-689d-48d3-9887-ac0c2bc6f57d"), ("emails-04-POST-email_withTemplate.json", "cf639975-1685-4c70-aba1-b1115b4f6d12")] {
        let r = one(f);
        assert_eq!((get(&r[0], "recipient"), get(&r[0], "status"), get(&r[0], "message_id")), (Some("receiver@example.com"), Some("accepted"), Some(id)), "{f}");
    }
    // Every recording parses without a reject; opens lists are skipped, not rows.
    for f in files_under(&dir) {
        let (stats, _) = parse(&f, Format::Postmark, None);
        if f.extension().is_some_and(|e| e == "json") {
            assert_eq!(stats.rejected, 0, "{}", f.display());
        }
    }
}

/// Package identity from Claude Desktop launch blocks.
#[test]
fn sessions_record_the_launched_package() {
    let Some(root) = shared() else { return };
    let cd = root.join("mcp/claude-desktop");
    let (_, rows) = parse(&cd.join("mcp-server-rebe.2025-09-04.log"), Format::ClaudeDesktop, None);
    let s = rows.of(Table::McpSessions);
    assert_eq!(s.len(), 1);
    assert_eq!(get(s[0], "launch_command"), Some("/usr/local/bin/npx mcp-remote@latest http://localhost:8081/mcp"));
    assert_eq!((get(s[0], "package_name"), get(s[0], "package_spec"), get(s[0], "package_version"), get(s[0], "package_pinned")), (Some("mcp-remote"), Some("mcp-remote@latest"), None, Some("false")));
    let (_, rows) = parse(&cd.join("mcp-server-weather.2025-07-20.log"), Format::ClaudeDesktop, None);
    let s = rows.of(Table::McpSessions);
    assert_eq!(s.len(), 1);
    assert!(get(s[0], "launch_command").unwrap().ends_with("uv --directory /Users/harshitgangwar/Documents/MyProjects/prototypes/weather-for-mcp run weather.py"));
    assert_eq!((get(s[0], "package_name"), get(s[0], "server_version"), get(s[0], "messages")), (None, Some("1.12.0"), Some("10")));
}

/// Client configuration files. No captured user configuration is in the
/// shared corpus, so these use the documented shapes (Claude Desktop's
/// claude_desktop_config.json, VS Code's .vscode/mcp.json).
#[test]
fn client_configurations() {
    let dir = std::env::temp_dir().join(format!("mcpf-cfg-{}", std::process::id()));
    std::fs::create_dir_all(dir.join(".vscode")).unwrap();
    let desktop = dir.join("claude_desktop_config.json");
    std::fs::write(&desktop, r#"{
  "mcpServers": {
    "postmark": {
      "command": "npx",
      "args": ["-y", "postmark-mcp"],
      "env": { "POSTMARK_SERVER_TOKEN": "secret-token-value", "DEFAULT_SENDER_EMAIL": "a@b.example" }
    },
    "fetch": { "command": "uvx", "args": ["mcp-server-fetch==0.6.2"] },
    "remote": { "url": "https://mcp.example.net/sse", "headers": { "Authorization": "Bearer abc" } }
  }
}
"#).unwrap();
    let head = mcpf_formats::source::read_head(&desktop, 65536).unwrap().0;
    assert_eq!(detect_format(&head), Some(Format::McpConfig));
    let (stats, rows) = parse(&desktop, Format::McpConfig, None);
    assert_eq!((stats.lines, stats.parsed, stats.rejected), (11, 11, 0));
    let r = rows.of(Table::McpServerConfigs);
    assert_eq!(r.len(), 3);
    let by = |n: &str| r.iter().find(|x| get(x, "server_name") == Some(n)).unwrap();
    let pm = by("postmark");
    assert_eq!((get(pm, "client"), get(pm, "transport"), get(pm, "package_name"), get(pm, "package_pinned")), (Some("claude_desktop"), Some("stdio"), Some("postmark-mcp"), Some("false")));
    assert_eq!(get(pm, "env_names"), Some("DEFAULT_SENDER_EMAIL,POSTMARK_SERVER_TOKEN"));
    assert_eq!(get(pm, "source_pointer"), Some("/mcpServers/postmark"));
    assert_eq!(get(by("fetch"), "package_version"), Some("0.6.2"));
    let remote = by("remote");
    assert_eq!((get(remote, "transport"), get(remote, "header_names")), (Some("sse"), Some("Authorization")));
    // Credential values are never stored anywhere.
    assert!(!rows.0.iter().any(|(_, m)| m.values().flatten().any(|v| v.contains("secret-token-value") || v.contains("Bearer abc"))));
    let vs = dir.join(".vscode/mcp.json");
    std::fs::write(&vs, r#"{"servers": {"gh": {"type": "http", "url": "https://api.example.com/mcp/"}, "pm": {"type": "stdio", "command": "npx", "args": ["postmark-mcp@1.0.15"]}}}"#).unwrap();
    let (_, rows) = parse(&vs, Format::McpConfig, None);
    let r = rows.of(Table::McpServerConfigs);
    assert!(r.iter().all(|x| get(x, "client") == Some("vscode")));
    assert!(r.iter().any(|x| get(x, "server_name") == Some("pm") && get(x, "package_version") == Some("1.0.15")));
    std::fs::remove_dir_all(&dir).ok();
}

/// `--tz`: zone-less stamps move by the zone's offset at that date (winter
/// and summer differ), stamps with an offset do not move, and the line
/// accounting is the same.
#[test]
fn zone_less_stamps_follow_tz() {
    let Some(root) = shared() else { return };
    let berlin: mcpf_formats::time::Zone = "Europe/Berlin".parse().unwrap();
    let secs = |v: Option<&str>| mcpf_formats::time::parse_rfc3339(v.unwrap()).unwrap() / 1_000_000;
    // Postfix syslog, late January: Berlin is UTC+1, so every delivery is
    // an hour earlier in UTC.
    let p = root.join("postfix/lightmeter/logs_sample/mail.log");
    let (plain_stats, plain) = parse(&p, Format::Postfix, Some(2021));
    let (zoned_stats, zoned) = parse_in(&p, Format::Postfix, Some(2021), Some(berlin));
    assert_eq!((plain_stats.lines, plain_stats.parsed, plain_stats.rejected), (zoned_stats.lines, zoned_stats.parsed, zoned_stats.rejected));
    let (a, b) = (plain.of(Table::MailDeliveries), zoned.of(Table::MailDeliveries));
    assert!(!a.is_empty() && a.len() == b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(secs(get(x, "ts")) - secs(get(y, "ts")), 3600, "{:?}", get(x, "source_line"));
    }
    // A summer day: UTC+2.
    let p = root.join("postfix/lightmeter/individual/11_single_successful_delivery.log");
    let first = std::fs::read_to_string(&p).unwrap();
    let (_, plain) = parse(&p, Format::Postfix, Some(2026));
    let (_, zoned) = parse_in(&p, Format::Postfix, Some(2026), Some(berlin));
    let (x, y) = (plain.of(Table::MailDeliveries), zoned.of(Table::MailDeliveries));
    let month = first.get(..3).and_then(mcpf_formats::time::month_from_abbrev).unwrap();
    let expect = if (4..=9).contains(&month) { 7200 } else { 3600 };
    assert_eq!(secs(get(x[0], "ts")) - secs(get(y[0], "ts")), expect);
    // Claude Desktop stamps with `Z` do not move.
    let zulu = root.join("mcp/claude-desktop/mcp-server-weather.2025-07-20.log");
    let (_, plain) = parse(&zulu, Format::ClaudeDesktop, None);
    let (_, zoned) = parse_in(&zulu, Format::ClaudeDesktop, None, Some(berlin));
    let ts = |r: &Rows| r.of(Table::McpMessages).iter().map(|m| get(m, "ts").map(str::to_string)).collect::<Vec<_>>();
    assert_eq!(ts(&plain), ts(&zoned));
}

/// Claude Code transcripts and stream-json: every `mcp__` tool_use block is
/// one tool call (counted here from the raw JSON), paired with the
/// tool_result of the same id when the file holds it.
#[test]
fn claude_code_calls_match_the_raw_records() {
    let Some(root) = shared() else { return };
    let mut total_calls = 0;
    for f in files_under(&root.join("mcp/claude-code")) {
        let (stats, rows) = parse(&f, Format::ClaudeCode, None);
        let text = std::fs::read_to_string(&f).unwrap();
        let mut calls = std::collections::HashSet::new();
        let mut answered = 0;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let blocks = v["message"]["content"].as_array().cloned().unwrap_or_default();
            for b in blocks {
                match b["type"].as_str() {
                    Some("tool_use") if b["name"].as_str().is_some_and(|n| n.starts_with("mcp__")) => {
                        calls.insert(b["id"].as_str().unwrap().to_string());
                    }
                    Some("tool_result") if calls.contains(b["tool_use_id"].as_str().unwrap_or("")) => answered += 1,
                    _ => {}
                }
            }
        }
        let got = rows.of(Table::ToolCalls);
        assert_eq!(got.len(), calls.len(), "{}", f.display());
        assert_eq!(got.iter().filter(|r| get(r, "ts_end").is_some()).count(), answered, "{}", f.display());
        assert_eq!(stats.rejected, 0, "{}: {:?}", f.display(), stats);
        total_calls += calls.len();
    }
    assert!(total_calls >= 3, "the stream-json capture has MCP calls");

    // The stream-json capture, call by call.
    let (_, rows) = parse(&root.join("mcp/claude-code/stream-json.jira-mcp.bitovi.jsonl"), Format::ClaudeCode, None);
    let mut calls: Vec<_> = rows.of(Table::ToolCalls).into_iter().map(|r| (get(r, "tool_name").unwrap().to_string(), get(r, "is_error").map(str::to_string), r.clone())).collect();
    calls.sort_by(|a, b| a.0.cmp(&b.0));
    let names: Vec<(&str, Option<&str>)> = calls.iter().map(|(n, e, _)| (n.as_str(), e.as_deref())).collect();
    assert_eq!(names, [("createJiraIssue", Some("true")), ("getAccessibleAtlassianResources", Some("false")), ("getVisibleJiraProjects", Some("true"))]);
    let create = &calls[0].2;
    assert_eq!(get(create, "server_name"), Some("jira"));
    assert_eq!(get(create, "host_tool_name"), Some("mcp__jira__createJiraIssue"));
    assert_eq!(get(create, "tool_name_split"), Some("exact"));
    assert_eq!(get(create, "rpc_id"), Some("toolu_01HjxGPdkuSjRioaCW3t65iA"));
    assert_eq!(get(create, "session_id"), Some("0ce8853f-aabe-488c-bbc2-a05f10b1cdc3/jira"));
    assert_eq!(get(create, "source_pointer"), Some("/message/content/0"));
    assert!(get(create, "arguments_json").unwrap().contains("\"projectKey\":\"Order\""));
    // stream-json carries no times: the file's (given as 1_700_000_000 here).
    assert_eq!(get(create, "ts"), Some("2023-11-14T22:13:20.000000Z"));
    let sessions = rows.of(Table::McpSessions);
    assert_eq!(sessions.len(), 1);
    assert_eq!(get(sessions[0], "client_name"), Some("claude-code"));
}

/// Codex: the rollouts (0.77.0, 0.135.0; no MCP calls) parse with every
/// line accounted for and nothing rejected; the console capture of two
/// `codex exec --json` runs gives each `mcp_tool_call` item (counted from
/// the raw lines) as one answered call of its run's thread, failures as
/// errors.
#[test]
fn codex_calls_match_the_raw_records() {
    let Some(root) = shared() else { return };
    for rel in ["mcp/codex/agent-history/codex-session-01.jsonl", "mcp/codex/simonw-claude-code-transcripts/sample_codex_session.871966d.jsonl"] {
        let (stats, rows) = parse(&root.join(rel), Format::Codex, None);
        assert_eq!((stats.rejected, stats.parsed), (0, 0), "{rel}: {stats:?}");
        assert!(rows.of(Table::ToolCalls).is_empty(), "{rel}");
        assert!(stats.skipped_reasons.contains_key("codex: session metadata"), "{rel}: {stats:?}");
    }
    let capture = root.join("mcp/codex/memex_cli/codex_out.txt");
    let (stats, rows) = parse(&capture, Format::Codex, None);
    let text = std::fs::read_to_string(&capture).unwrap();
    let (mut completed, mut threads, mut thread) = (Vec::new(), std::collections::BTreeSet::new(), String::new());
    for line in text.lines().filter(|l| l.starts_with("{\"type\":")) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["type"] == "thread.started" {
            thread = v["thread_id"].as_str().unwrap().to_string();
        }
        if v["type"] == "item.completed" && v["item"]["type"] == "mcp_tool_call" {
            completed.push((v["item"]["tool"].as_str().unwrap().to_string(), v["item"]["status"].as_str().unwrap().to_string()));
            threads.insert(format!("{thread}/aduib-mcp-sever"));
        }
    }
    assert!(!completed.is_empty(), "the capture holds MCP calls");
    let calls = rows.of(Table::ToolCalls);
    assert_eq!(calls.len(), completed.len());
    for (c, (tool, status)) in calls.iter().zip(&completed) {
        assert_eq!(get(c, "tool_name"), Some(tool.as_str()));
        assert_eq!(get(c, "server_name"), Some("aduib-mcp-sever"));
        assert_eq!(get(c, "is_error"), Some(if status == "failed" { "true" } else { "false" }));
        assert_eq!(get(c, "source_pointer"), Some("/item"));
        assert!(get(c, "ts_end").is_some());
        assert_eq!(get(c, "host_tool_name"), Some(format!("mcp__aduib-mcp-sever__{tool}").as_str()));
    }
    let sessions: std::collections::BTreeSet<_> = calls.iter().map(|c| get(c, "session_id").unwrap().to_string()).collect();
    assert_eq!(sessions, threads);
    assert_eq!(stats.rejected, 0, "{stats:?}");
    assert!(stats.skipped_reasons.get("codex: console text (not a JSON event)").is_some_and(|n| *n > 50), "{stats:?}");
}

/// A cold Codex rollout rewritten as `.jsonl.zst` is detected and read as
/// the plain file is.
#[test]
fn a_zstd_rollout_reads_as_the_plain_one() {
    let Some(root) = shared() else { return };
    let plain = root.join("mcp/codex/agent-history/codex-session-01.jsonl");
    let dir = tempfile::tempdir().unwrap();
    let packed = dir.path().join("rollout-2026-06-05T04-58-20-019e9625.jsonl.zst");
    std::fs::write(&packed, zstd::encode_all(std::fs::read(&plain).unwrap().as_slice(), 3).unwrap()).unwrap();
    let head = mcpf_formats::source::read_head(&packed, 64 * 1024).unwrap().0;
    assert_eq!(detect_format(&head), Some(Format::Codex));
    let (a, _) = parse(&plain, Format::Codex, None);
    let (b, _) = parse(&packed, Format::Codex, None);
    assert_eq!((a.lines, a.parsed, a.skipped, a.rejected), (b.lines, b.parsed, b.skipped, b.rejected));
    assert_eq!(a.skipped_reasons, b.skipped_reasons);
}

/// OpenTelemetry: the OTLP JSON examples and Elastic's re-wrapped Claude
/// Code events are recognised and read with every line accounted for; the
/// one MCP `claude_code.tool_result` event is one call whose server and
/// tool are those Elastic's own pipeline extracted (its `-expected.json`).
#[test]
fn otel_records_match_the_oracle() {
    let Some(root) = shared() else { return };
    for f in files_under(&root.join("otel")) {
        let rel = f.strip_prefix(&root).unwrap().to_string_lossy().to_string();
        let (stats, _) = parse(&f, Format::OtlpJson, None);
        assert_eq!(stats.lines, line_count(&f), "{rel}");
        if rel.ends_with("-expected.json") {
            continue;
        }
        let head = mcpf_formats::source::read_head(&f, 64 * 1024).unwrap().0;
        assert_eq!(detect_format(&head), Some(Format::OtlpJson), "{rel}");
        assert_eq!(stats.rejected, 0, "{rel}: {stats:?}");
    }
    let input = root.join("otel/elastic-claude-code/events/test-tool-result-mcp.json");
    let (_, rows) = parse(&input, Format::OtlpJson, None);
    let expected: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(root.join("otel/elastic-claude-code/events/test-tool-result-mcp.json-expected.json")).unwrap()).unwrap();
    let want = &expected["expected"][0];
    let calls = rows.of(Table::ToolCalls);
    assert_eq!(calls.len(), 1);
    let c = calls[0];
    assert_eq!(get(c, "server_name"), want["mcp_server_name"].as_str());
    assert_eq!(get(c, "tool_name"), want["mcp_tool_name"].as_str());
    assert_eq!(get(c, "rpc_id"), want["tool_use_id"].as_str());
    assert_eq!(get(c, "session_id").map(str::to_string), Some(format!("{}/{}", want["session.id"].as_str().unwrap(), want["mcp_server_name"].as_str().unwrap())));
    assert_eq!(get(c, "is_error"), Some(if want["event"]["outcome"] == "success" { "false" } else { "true" }));
    assert_eq!(get(c, "arguments_observed"), Some("true"), "tool_input was recorded ({{}})");
    assert_eq!(get(c, "ts_end"), Some("2026-06-22T02:20:41.924000Z"));
    assert_eq!(get(c, "source_pointer"), Some("/events/0"));
    // The connection events and the built-in tool spans are no MCP calls.
    for rel in ["otel/elastic-claude-code/events/test-mcp-server-connection.json", "otel/elastic-claude-code/traces/test-tool.json", "otel/opentelemetry-proto/trace.json"] {
        let (stats, rows) = parse(&root.join(rel), Format::OtlpJson, None);
        assert!(rows.of(Table::ToolCalls).is_empty(), "{rel}");
        assert_eq!(stats.skipped, stats.lines, "{rel}: {stats:?}");
    }
}

/// The specification's examples as bare JSON-RPC: every message of the
/// four revisions' JSON Lines parses, each `tools/call` is paired with its
/// response with no session id (by file, server and id), and a 2026-07-28
/// result names its server by `_meta` alone.
#[test]
fn spec_examples_pair_without_sessions_and_name_servers_by_meta() {
    let Some(root) = shared() else { return };
    let dir = root.join("mcp/spec-examples");
    for rev in ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"] {
        let f = dir.join(format!("spec-{rev}.jsonl"));
        let head = mcpf_formats::source::read_head(&f, 64 * 1024).unwrap().0;
        assert_eq!(detect_format(&head), Some(Format::JsonRpc), "{rev}");
        let (stats, rows) = parse(&f, Format::JsonRpc, None);
        assert_eq!((stats.rejected, stats.parsed), (0, stats.lines), "{rev}: {stats:?}");
        let text = std::fs::read_to_string(&f).unwrap();
        let calls = text.lines().filter(|l| l.contains("\"method\":\"tools/call\"")).count();
        let got = rows.of(Table::ToolCalls);
        assert_eq!(got.len(), calls, "{rev}");
        assert!(got.iter().all(|c| get(c, "ts_end").is_some()), "{rev}: every call paired with its response");
        let sessions = rows.of(Table::McpSessions);
        assert!(sessions.iter().all(|s| get(s, "session_source") == Some("connection")), "{rev}");
        assert_eq!(get(sessions[0], "server_info_name"), Some("ExampleServer"), "{rev}: from initialize");
    }
    let ex = dir.join("2026-07-28-examples");
    // One message per file: server/discover's result names the server in _meta.
    let (_, rows) = parse(&ex.join("DiscoverResultResponse/discover-result-response.json"), Format::JsonRpc, None);
    let s = rows.of(Table::McpSessions);
    assert_eq!((get(s[0], "server_info_name"), get(s[0], "server_version")), (Some("ExampleServer"), Some("1.0.0")));
    // The call and its result, as a stateless trace of the two messages in
    // one file: paired, with the client named by the request's _meta.
    let tmp = tempfile::tempdir().unwrap();
    let trace = tmp.path().join("weather.jsonl");
    let compact = |rel: &str| serde_json::to_string(&serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(ex.join(rel)).unwrap()).unwrap()).unwrap();
    std::fs::write(&trace, format!("{}\n{}\n", compact("CallToolRequest/call-tool-request.json"), compact("CallToolResultResponse/call-tool-result-response.json"))).unwrap();
    let (_, rows) = parse(&trace, Format::JsonRpc, None);
    let c = rows.of(Table::ToolCalls);
    assert_eq!((c.len(), get(c[0], "tool_name"), get(c[0], "is_error")), (1, Some("get_weather"), Some("false")));
    assert!(get(c[0], "ts_end").is_some());
    assert_eq!(get(rows.of(Table::McpSessions)[0], "client_name"), Some("ExampleClient"));
    // Every 2026-07-28 example that is a message is recognised; the schema
    // fragments (params, results, capabilities, tools, error objects
    // without the envelope) are out of scope (README, format table).
    for f in files_under(&ex) {
        let head = mcpf_formats::source::read_head(&f, 64 * 1024).unwrap().0;
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
        let message = v.get("jsonrpc").is_some();
        assert_eq!(detect_format(&head) == Some(Format::JsonRpc), message, "{}", f.display());
    }
}

/// The agentic-workflows gateway log: requests without ids pair with their
/// server's responses in order; every tools/call is a call with the
/// response the gateway logged next for that server.
#[test]
fn gateway_calls_pair_per_server_in_order() {
    let Some(root) = shared() else { return };
    let f = root.join("mcp/gh-aw/matt-riley-run-21986494867/mcp-logs/rpc-messages.jsonl");
    let head = mcpf_formats::source::read_head(&f, 64 * 1024).unwrap().0;
    assert_eq!(detect_format(&head), Some(Format::McpGateway));
    let (stats, rows) = parse(&f, Format::McpGateway, None);
    assert_eq!((stats.parsed, stats.rejected), (stats.lines, 0));
    // The raw lines, paired per server first-in first-out.
    let mut open: BTreeMap<String, std::collections::VecDeque<(String, usize)>> = BTreeMap::new();
    let mut want = Vec::new();
    for (i, line) in std::fs::read_to_string(&f).unwrap().lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let server = v["server_id"].as_str().unwrap().to_string();
        if v["type"] == "REQUEST" {
            open.entry(server).or_default().push_back((v["payload"]["params"]["name"].as_str().unwrap_or("").to_string(), i + 1));
        } else if let Some((tool, req_line)) = open.get_mut(&server).and_then(|q| q.pop_front()) {
            if !tool.is_empty() {
                want.push((server, tool, req_line as i64, (i + 1) as i64, v["payload"]["result"]["isError"].as_bool().unwrap_or(false)));
            }
        }
    }
    let mut got: Vec<_> = rows
        .of(Table::ToolCalls)
        .iter()
        .map(|c| {
            (get(c, "server_name").unwrap().to_string(), get(c, "tool_name").unwrap().to_string(), get(c, "source_line").unwrap().parse::<i64>().unwrap(),
             get(c, "response_source_line").unwrap().parse::<i64>().unwrap(), get(c, "is_error") == Some("true"))
        })
        .collect();
    got.sort_by_key(|g| g.2);
    assert_eq!(got, want);
    assert_eq!(want.len(), 3);
}

/// VS Code's MCP output channel, both generations: every JSON-RPC body
/// (counted from the raw lines) is one message, the server is the one its
/// `Starting server` line names, and the 2025-03 capture's call is paired.
#[test]
fn vscode_channels_match_the_raw_lines() {
    let Some(root) = shared() else { return };
    for f in files_under(&root.join("mcp/vscode")) {
        let head = mcpf_formats::source::read_head(&f, 64 * 1024).unwrap().0;
        assert_eq!(detect_format(&head), Some(Format::VsCode), "{}", f.display());
        let (stats, rows) = parse(&f, Format::VsCode, None);
        assert_eq!(stats.rejected, 0, "{}: {stats:?}", f.display());
        let text = std::fs::read_to_string(&f).unwrap();
        let bodies = text.lines().filter(|l| ["[editor -> server] {", "[server -> editor] {", "[Client Says] {", "[Server Says] {"].iter().any(|t| l.contains(t))).count();
        assert_eq!(rows.of(Table::McpMessages).len(), bodies, "{}", f.display());
        if let Some(name) = text.lines().find_map(|l| l.split("] Starting server ").nth(1)).filter(|n| !n.starts_with("from ")) {
            assert!(rows.of(Table::McpSessions).iter().all(|s| get(s, "server_name") == Some(name.trim())), "{}", f.display());
        }
    }
    let (_, rows) = parse(&root.join("mcp/vscode/mcp-output.validate_username.2025-03-23.log"), Format::VsCode, None);
    let c = rows.of(Table::ToolCalls);
    assert_eq!((c.len(), get(c[0], "tool_name"), get(c[0], "is_error")), (1, Some("validate_username"), Some("false")));
    assert_eq!(get(c[0], "ts"), Some("2025-03-23T16:38:00.970000Z"));
    let (_, rows) = parse(&root.join("mcp/vscode/mcp-output.mcp-taskfile-server.vscode-1.129.1.2026-07-24.log"), Format::VsCode, None);
    let s = rows.of(Table::McpSessions);
    assert_eq!(s.len(), 1);
    assert_eq!(get(s[0], "launch_command"), Some("/home/user/go/bin/mcp-taskfile-server"));
    assert_eq!(get(s[0], "client_name"), Some("Visual Studio Code"));
}

/// Copilot CLI 1.0.78 session events: every event accounted for, nothing
/// rejected, and the built-in tools of the samples (view, grep) are not
/// MCP calls.
#[test]
fn copilot_events_account_for_every_line() {
    let Some(root) = shared() else { return };
    let files: Vec<_> = files_under(&root.join("mcp/copilot-cli")).into_iter().filter(|f| f.ends_with("events.jsonl")).collect();
    assert_eq!(files.len(), 4);
    let mut starts = 0;
    for f in files {
        let (stats, rows) = parse(&f, Format::Copilot, None);
        assert_eq!((stats.rejected, stats.parsed), (0, 0), "{}: {stats:?}", f.display());
        assert!(rows.of(Table::ToolCalls).is_empty());
        starts += stats.skipped_reasons.get("copilot: Copilot's own tool (no MCP server named)").copied().unwrap_or(0);
    }
    assert_eq!(starts, 6, "three built-in calls, each start and end");
}

/// Gemini CLI: the legacy chat recording and the stream-json console
/// capture parse with nothing rejected; their calls (Gemini CLI's own
/// `run_shell_command` / `read_file`) are no MCP calls. An MCP call in the
/// same stream-json shape is one answered call.
#[test]
fn gemini_records_account_for_every_line() {
    let Some(root) = shared() else { return };
    for rel in ["mcp/gemini-cli/agent-history/gemini-session-01.json", "mcp/gemini-cli/memex_cli/gemini_out.txt"] {
        let (stats, rows) = parse(&root.join(rel), Format::GeminiCli, None);
        assert_eq!(stats.rejected, 0, "{rel}: {stats:?}");
        assert!(rows.of(Table::ToolCalls).is_empty(), "{rel}");
    }
    // The capture's own lines, with one tool renamed to an MCP tool.
    let text = std::fs::read_to_string(root.join("mcp/gemini-cli/memex_cli/gemini_out.txt")).unwrap().replace("\"read_file\"", "\"mcp_files_read_file\"");
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("gemini_out.txt");
    std::fs::write(&f, &text).unwrap();
    let (_, rows) = parse(&f, Format::GeminiCli, None);
    let calls = rows.of(Table::ToolCalls);
    let want = text.lines().filter(|l| l.contains("\"mcp_files_read_file\"")).count();
    assert_eq!(calls.len(), want);
    assert!(calls.iter().all(|c| get(c, "server_name") == Some("files") && get(c, "tool_name") == Some("read_file") && get(c, "ts_end").is_some()));
    assert!(calls.iter().all(|c| get(c, "session_id") == Some("dfa4182a-d2da-4dc7-9080-fa2d39bba588/files")));
}

/// An Exim main-log line's message id and flag, read off the raw text with
/// no help from the parser: `DATE TIME[.mmm] [[pid]] ID FLAG`, after a
/// syslog frame when there is one.
fn exim_flag(line: &str) -> Option<(String, String)> {
    let inner = line.find("exim[").and_then(|i| line[i..].find("]: ").map(|j| &line[i + j + 3..])).unwrap_or(line);
    let w: Vec<&str> = inner.split_whitespace().collect();
    let at = if w.get(2).is_some_and(|p| p.starts_with('[') && p.ends_with(']')) { 3 } else { 2 };
    let id = w.get(at)?;
    (id.len() >= 16 && id.matches('-').count() == 2).then(|| (id.to_string(), w.get(at + 1).unwrap_or(&"").to_string()))
}

#[test]
fn exim_deliveries_match_the_raw_flag_lines() {
    let Some(root) = shared() else { return };
    let mut checked = 0;
    for f in files_under(&root.join("exim")) {
        let rel = f.strip_prefix(&root).unwrap().to_string_lossy().to_string();
        // Out of scope (README): the corpus index, Wazuh's test definitions,
        // and an application's error output that quotes Exim lines.
        if rel.ends_with("INDEX.tsv") || rel.starts_with("exim/wazuh") || rel.contains("octal-subject.wrapped") {
            assert_ne!(detect_format(&mcpf_formats::source::read_head(&f, 64 * 1024).unwrap().0), Some(Format::Exim), "{rel}");
            continue;
        }
        assert_eq!(detect_format(&mcpf_formats::source::read_head(&f, 64 * 1024).unwrap().0), Some(Format::Exim), "{rel}");
        let (stats, rows) = parse(&f, Format::Exim, None);
        let text = std::fs::read_to_string(&f).unwrap();
        assert_eq!(stats.lines, line_count(&f), "{rel}");
        assert_eq!(stats.parsed + stats.rejected + stats.skipped, stats.lines, "{rel}");
        // Rejected: only what Exim did not write (the test harness's server
        // separator, the LMTP simulator's transcript in 5100).
        let stamped = |l: &str| {
            let b = l.as_bytes();
            b.len() >= 19 && b[4] == b'-' && b[7] == b'-' && b[10] == b' ' && b[13] == b':' && b[..4].iter().all(u8::is_ascii_digit)
        };
        let not_exim = text.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#') && !stamped(l) && !l.contains(" exim[")).count() as u64;
        assert_eq!(stats.rejected, not_exim, "{rel}: rejected lines are exactly the lines Exim did not write");
        // One row per delivery flag line, with the flag's status.
        let mut want: BTreeMap<&str, usize> = BTreeMap::new();
        for l in text.lines() {
            let Some((_, flag)) = exim_flag(l) else { continue };
            let status = match flag.as_str() {
                "=>" | "->" if l.contains(" :blackhole: ") => "discarded",
                "=>" | "->" => "sent",
                "**" => "bounced",
                "==" => "deferred",
                "*>" => "suppressed",
                _ => continue,
            };
            *want.entry(status).or_default() += 1;
        }
        let rejected_rcpt = text.lines().filter(|l| l.contains(" rejected RCPT ")).count();
        if rejected_rcpt > 0 {
            want.insert("rejected", rejected_rcpt);
        }
        let mut got: BTreeMap<&str, usize> = BTreeMap::new();
        for d in rows.of(Table::MailDeliveries) {
            let s = get(d, "status").unwrap();
            let s = ["sent", "bounced", "deferred", "suppressed", "discarded", "rejected"].into_iter().find(|x| *x == s).unwrap_or("other");
            *got.entry(s).or_default() += 1;
            // Provenance: the row's line is a line of the file with its recipient.
            let line = text.lines().nth(get(d, "source_line").unwrap().parse::<usize>().unwrap() - 1).unwrap();
            let rcpt = get(d, "recipient").unwrap();
            assert!(line.to_lowercase().contains(&rcpt.to_lowercase()) || line.contains(":blackhole:"), "{rel}: {rcpt} not on {line}");
        }
        assert_eq!(got, want, "{rel}");
        // Every message that logged `Completed` has its row.
        let completed = text.lines().filter(|l| exim_flag(l).is_some_and(|(_, f)| f == "Completed")).count();
        assert!(rows.of(Table::MailMessages).len() >= completed, "{rel}");
        checked += 1;
    }
    assert!(checked >= 45, "only {checked} Exim files");
}

#[test]
fn exim_facts_of_the_issue_pastes() {
    let Some(root) = shared() else { return };
    // Syslog-forwarded Exim 4.97+: two stamps, millisecond time, 23-character ids, `id*=`.
    let (stats, rows) = parse(&root.join("exim/issue-pastes/mta-log-parser-22.syslog-wrapped.2025-02-14.log"), Format::Exim, None);
    assert_eq!((stats.lines, stats.rejected), (7, 0));
    let d = rows.of(Table::MailDeliveries);
    assert_eq!(d.len(), 1);
    let d = d[0];
    assert_eq!((get(d, "recipient"), get(d, "sender"), get(d, "status")), (Some("test@domain.ru"), Some("root@domain.ru"), Some("bounced")));
    assert_eq!((get(d, "message_id"), get(d, "subject"), get(d, "nrcpt")), (Some("E1tixMn-00000000C5j-1wRa@mail.domain.ru"), Some("test"), Some("1")));
    assert_eq!((get(d, "ts"), get(d, "host"), get(d, "delay_s")), (Some("2025-02-14T18:12:33.501000Z"), Some("192.168.55.51"), Some("0.004")));
    assert!(get(d, "response").unwrap().starts_with("Child process of dovecot_delivery transport returned 127"));
    // The message row keeps the syslog host it was logged on (it was lost
    // when the message's state was removed before its row was written).
    let m = rows.of(Table::MailMessages);
    assert_eq!(m.len(), 1);
    assert_eq!((get(m[0], "host"), get(m[0], "final_state")), (Some("192.168.55.51"), Some("bounced")));
    assert!(get(m[0], "message_key").unwrap().starts_with("192.168.55.51:1tixMn-00000000C5j-1wRa:"));
    // `for a a`: the envelope list as logged (twice the same address: two).
    let (_, rows) = parse(&root.join("exim/issue-pastes/alaveteli-2824.2015-09-01.log"), Format::Exim, None);
    let m = rows.of(Table::MailMessages);
    assert_eq!(m.len(), 1, "still queued at the end of the excerpt");
    assert_eq!((get(m[0], "sender"), get(m[0], "nrcpt"), get(m[0], "final_state")), (Some("request-37-magic_hash@example.org"), Some("2"), Some("still_queued")));
    assert_eq!((get(m[0], "message_id"), get(m[0], "client")), (Some("ogm-39+55e5c82601ba3-ce2e@example.org"), Some("local LINUXUSER")));
}

#[test]
fn exim_fail2ban_times_of_refused_recipients() {
    let Some(root) = shared() else { return };
    let mut checked = 0;
    for name in ["exim", "exim-spam"] {
        let path = root.join("exim/fail2ban").join(name);
        let (stats, rows) = parse(&path, Format::Exim, None);
        assert_eq!(stats.rejected, 0, "{name}");
        let text = std::fs::read_to_string(&path).unwrap();
        let mut expected = None;
        let by_line: BTreeMap<String, &BTreeMap<&'static str, Option<String>>> = rows.of(Table::MailDeliveries).into_iter().map(|d| (get(d, "source_line").unwrap().to_string(), d)).collect();
        for (i, line) in text.lines().enumerate() {
            if let Some(j) = line.strip_prefix("# failJSON:") {
                expected = serde_json::from_str::<serde_json::Value>(j.trim()).ok().and_then(|v| v.get("time").and_then(|t| t.as_str()).map(str::to_string));
                continue;
            }
            let want = expected.take();
            if !line.contains(" rejected RCPT ") {
                continue;
            }
            let d = by_line.get(&(i + 1).to_string()).unwrap_or_else(|| panic!("{name}:{}: no row for {line}", i + 1));
            assert_eq!(get(d, "status"), Some("rejected"));
            if let Some(w) = want {
                assert_eq!(get(d, "ts").unwrap().trim_end_matches('Z').split('.').next(), Some(w.as_str()), "{line}");
                checked += 1;
            }
        }
    }
    assert!(checked >= 6, "only {checked} oracle lines");
}

#[test]
fn ses_records_match_their_lists() {
    let Some(root) = shared() else { return };
    let dir = root.join("providers/ses");
    let mut checked = 0;
    for f in files_under(&dir) {
        let rel = f.strip_prefix(&root).unwrap().to_string_lossy().to_string();
        let head = mcpf_formats::source::read_head(&f, 64 * 1024).unwrap().0;
        if !rel.ends_with(".json") {
            // The documentation pages the examples came from, and the index.
            assert_eq!(detect_format(&head), None, "{rel}");
            continue;
        }
        assert_eq!(detect_format(&head), Some(Format::Ses), "{rel}");
        let (stats, rows) = parse(&f, Format::Ses, None);
        assert_eq!((stats.lines, stats.rejected), (line_count(&f), 0), "{rel}");
        let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        // Expected rows, read off the document: per record, the list its kind names.
        fn records<'a>(v: &'a serde_json::Value, out: &mut Vec<serde_json::Value>) {
            match v {
                serde_json::Value::Object(o) if o.contains_key("mail") && (o.contains_key("eventType") || o.contains_key("notificationType")) => out.push(v.clone()),
                serde_json::Value::Object(o) => o.values().for_each(|x| records(x, out)),
                serde_json::Value::Array(a) => a.iter().for_each(|x| records(x, out)),
                _ => {}
            }
        }
        let mut recs = Vec::new();
        records(&doc, &mut recs);
        let want: usize = recs
            .iter()
            .map(|r| {
                let kind = r.get("eventType").or_else(|| r.get("notificationType")).and_then(|k| k.as_str()).unwrap();
                let len = |p: &str| r.pointer(p).and_then(|x| x.as_array()).map_or(0, Vec::len);
                match kind {
                    "Send" | "Reject" => len("/mail/destination"),
                    "Delivery" => len("/delivery/recipients"),
                    "Bounce" => len("/bounce/bouncedRecipients"),
                    "DeliveryDelay" => len("/deliveryDelay/delayedRecipients"),
                    _ => 0,
                }
            })
            .sum();
        let d = rows.of(Table::MailDeliveries);
        assert_eq!(d.len(), want, "{rel}");
        for r in &d {
            // Each row's pointer names its address in the document (through SNS strings too).
            let ptr = get(r, "source_pointer").unwrap();
            if !ptr.contains("/Message/") {
                let node = doc.pointer(ptr).unwrap_or_else(|| panic!("{rel}: {ptr}"));
                let text = node.as_str().or_else(|| node.get("emailAddress").and_then(|x| x.as_str())).unwrap();
                assert!(text.to_lowercase().contains(get(r, "recipient").unwrap()), "{rel}: {ptr}");
            }
            // Masked or unparsed headers never make a blind copy.
            if get(r, "role_source") == Some("envelope_minus_headers") {
                assert!(!rel.contains("snapshot"), "{rel}: {r:?}");
            }
        }
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} SES files");
    // A fact of the documentation's delivery example.
    let (_, rows) = parse(&dir.join("aws-docs-examples/event-publishing-03-delivery-record.json"), Format::Ses, None);
    let d = rows.of(Table::MailDeliveries)[0];
    assert_eq!((get(d, "status"), get(d, "ts"), get(d, "dsn"), get(d, "delay_s")), (Some("delivered"), Some("2016-10-19T23:21:04.133000Z"), Some("2.6.0"), Some("11.893")));
    assert_eq!((get(d, "recipient_role"), get(d, "role_source"), get(d, "relay")), (Some("to"), Some("header"), Some("mta.example.com")));
}

#[test]
fn zeek_smtp_rows_equal_the_baselines_field_by_field() {
    let Some(root) = shared() else { return };
    let mut checked = 0;
    for f in files_under(&root.join("zeek")) {
        let rel = f.strip_prefix(&root).unwrap().to_string_lossy().to_string();
        if rel.ends_with("-expected.json") {
            continue;
        }
        let head = mcpf_formats::source::read_head(&f, 64 * 1024).unwrap().0;
        if !rel.ends_with(".pretty.json") {
            assert_eq!(detect_format(&head), Some(Format::ZeekSmtp), "{rel}");
        }
        let text = std::fs::read_to_string(&f).unwrap();
        if rel.ends_with(".pretty.json") {
            // Zeek writes one object per line; the docs pretty-printed one. Compact it as Zeek would.
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("smtp.log");
            std::fs::write(&p, format!("{v}\n")).unwrap();
            let (_, rows) = parse(&p, Format::ZeekSmtp, None);
            let d = rows.of(Table::MailDeliveries);
            assert_eq!(d.len(), 1);
            assert_eq!((get(d[0], "ts"), get(d[0], "recipient"), get(d[0], "recipient_role")), (Some("2009-10-05T06:06:08.219663Z"), Some("raj_deol2002in@yahoo.co.in"), Some("to")));
            assert_eq!((get(d[0], "message_id"), get(d[0], "queue_id"), get(d[0], "relay")), (Some("000301ca4581$ef9e57f0$cedb07d0$@in"), Some("C1qe8w3QHRF2N5tVV5/1"), Some("74.53.140.153:25")));
            checked += 1;
            continue;
        }
        let (stats, rows) = parse(&f, Format::ZeekSmtp, None);
        assert_eq!((stats.lines, stats.rejected), (line_count(&f), 0), "{rel}");
        let d = rows.of(Table::MailDeliveries);
        if rel.starts_with("zeek/elastic") {
            // Both lines (one inside Splunk's `_raw`) are a session without a transaction.
            assert!(d.is_empty() && stats.skipped == 2, "{rel}: {stats:?}");
            let expected: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(root.join("zeek/elastic-integrations/test-smtp.log-expected.json")).unwrap()).unwrap();
            assert_eq!(expected["expected"][0]["zeek"]["session_id"], "CWWzPB3RjqhFf528c");
            checked += 1;
            continue;
        }
        // The baseline, read here with its own header: one row per rcptto address, each field equal.
        let fields: Vec<&str> = text.lines().find_map(|l| l.strip_prefix("#fields\t")).unwrap().split('\t').collect();
        let col = |cells: &[&str], name: &str| fields.iter().position(|f| *f == name).map(|i| cells[i].to_string()).filter(|v| v != "-");
        let mut want = Vec::new();
        for l in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
            let cells: Vec<&str> = l.split('\t').collect();
            let Some(rcpts) = col(&cells, "rcptto") else { continue };
            for r in rcpts.split(',').filter(|r| *r != "(empty)") {
                want.push((r.to_lowercase(), col(&cells, "mailfrom").map(|m| m.to_lowercase()), col(&cells, "msg_id").map(|m| m.trim_matches(['<', '>']).to_string()), col(&cells, "subject"), col(&cells, "last_reply"), format!("{}/{}", col(&cells, "uid").unwrap(), col(&cells, "trans_depth").unwrap())));
            }
        }
        let got: Vec<_> = d.iter().map(|r| (get(r, "recipient").unwrap().to_string(), get(r, "sender").map(str::to_string), get(r, "message_id").map(str::to_string), get(r, "subject").map(str::to_string), get(r, "response").map(str::to_string), get(r, "queue_id").unwrap().to_string())).collect();
        assert_eq!(got, want, "{rel}");
        // Roles: the `cc` baseline (basic) has a Cc'd recipient and a To recipient.
        if rel.contains("smtp.basic/") {
            let roles: Vec<_> = d.iter().map(|r| (get(r, "recipient").unwrap(), get(r, "recipient_role").unwrap())).collect();
            assert!(roles.contains(&("felica4uu@hotmail.com", "cc")) && roles.contains(&("ericlim220@yahoo.com", "to")), "{roles:?}");
        }
        checked += 1;
    }
    assert!(checked >= 19, "only {checked} Zeek files");
}

/// The recipients of a raw Sendmail `to=` line, read off the text: the value
/// up to the next `, key=` (never an address).
fn sendmail_to_list(line: &str) -> Option<Vec<String>> {
    let at = line.find(": to=")?;
    let value = &line[at + 5..];
    let end = value.find(", ").unwrap_or(value.len());
    Some(value[..end].split(',').map(|r| r.trim().trim_matches(['<', '>']).to_lowercase()).filter(|r| !r.is_empty()).collect())
}

#[test]
fn sendmail_deliveries_match_the_raw_lines() {
    let Some(root) = shared() else { return };
    let mut files = 0;
    for f in files_under(&root.join("sendmail")) {
        let rel = f.strip_prefix(&root).unwrap().to_string_lossy().to_string();
        let head = mcpf_formats::source::read_head(&f, 64 * 1024).unwrap().0;
        assert_eq!(detect_format(&head), Some(Format::Sendmail), "{rel}");
        let (stats, rows) = parse(&f, Format::Sendmail, None);
        assert_eq!((stats.lines, stats.rejected), (line_count(&f), 0), "{rel}");
        let text = std::fs::read_to_string(&f).unwrap();
        // One row per listed recipient of each `to=` line, as the line says.
        let deliveries = rows.of(Table::MailDeliveries);
        let mut want_rows = 0;
        for (i, l) in text.lines().enumerate() {
            let Some(list) = sendmail_to_list(l) else { continue };
            let got: Vec<&str> = deliveries.iter().filter(|d| get(d, "source_line") == Some(&(i + 1).to_string())).map(|d| get(d, "recipient").unwrap()).collect();
            assert_eq!(got, list, "{rel}:{}", i + 1);
            let stat = &l[l.find("stat=").unwrap() + 5..];
            let want = if stat.starts_with("Sent") {
                "sent"
            } else if stat.starts_with("Deferred") || l.contains("dsn=4.") {
                "deferred"
            } else {
                "bounced"
            };
            for d in deliveries.iter().filter(|d| get(d, "source_line") == Some(&(i + 1).to_string())) {
                assert_eq!(get(d, "status"), Some(want), "{rel}:{}", i + 1);
                assert_eq!(get(d, "queue_id"), l.split(": ").nth(1), "{rel}:{}", i + 1);
            }
            want_rows += list.len();
        }
        // And a `rejected` row per refused recipient (`check_rcpt`, `<r>... User unknown`).
        let refused = text.lines().filter(|l| !l.starts_with('#') && (l.contains("ruleset=check_rcpt") || l.contains(">... "))).count();
        assert_eq!(deliveries.iter().filter(|d| get(d, "status") == Some("rejected")).count(), refused, "{rel}");
        assert_eq!(deliveries.len(), want_rows + refused, "{rel}");
        files += 1;
    }
    assert_eq!(files, 9);
}

#[test]
fn sendmail_msp_hand_off_bounces_and_local_delivery() {
    let Some(root) = shared() else { return };
    let dir = root.join("sendmail/doc-pastes");
    // The submission program hands the message to the daemon under a new id:
    // a filter hop naming it; the daemon's deferrals are the egress attempts.
    let (_, rows) = parse(&dir.join("mkalimu.msp-relay-then-deferred.2009-04-20.log"), Format::Sendmail, Some(2009));
    let d = rows.of(Table::MailDeliveries);
    assert_eq!(d.len(), 3);
    assert_eq!((get(d[0], "queue_id"), get(d[0], "delivery_kind"), get(d[0], "next_queue_id")), (Some("n3KFZnHK006552"), Some("filter_hop"), Some("n3KFZnc6006553")));
    assert_eq!((get(d[0], "sender"), get(d[0], "recipient"), get(d[0], "delay_s")), (Some("www-data"), Some("xxx@yyy.com"), Some("1")));
    for x in &d[1..] {
        assert_eq!((get(x, "status"), get(x, "delivery_kind"), get(x, "dsn")), (Some("deferred"), Some("egress"), Some("4.0.0")));
        assert_eq!((get(x, "sender"), get(x, "message_id")), (Some("www-data@mkalimu"), Some("200904201535.n3KFZnHK006552@mkalimu")));
    }
    assert_eq!(get(d[1], "relay"), Some("mx00.1and1.co.uk[212.227.15.169]"));
    assert_eq!(get(d[1], "ts"), Some("2009-04-20T16:35:51.000000Z"));
    let m = rows.of(Table::MailMessages);
    let state = |q: &str| m.iter().find(|r| get(r, "queue_id") == Some(q)).map(|r| (get(r, "final_state").map(str::to_string), get(r, "filtered_to").map(str::to_string), get(r, "filtered_from").map(str::to_string)));
    assert_eq!(state("n3KFZnHK006552"), Some((Some("filtered".into()), Some("n3KFZnc6006553".into()), None)));
    assert_eq!(state("n3KFZnc6006553"), Some((Some("still_queued".into()), None, Some("n3KFZnHK006552".into()))));
    // The MSP line logged after the daemon's delivery: the hop still names it.
    let (_, rows) = parse(&dir.join("localmachine.msp-to-mta-sent.2008-04-15.log"), Format::Sendmail, Some(2008));
    let d = rows.of(Table::MailDeliveries);
    let kinds: Vec<_> = d.iter().map(|x| (get(x, "queue_id").unwrap(), get(x, "delivery_kind").unwrap(), get(x, "status").unwrap())).collect();
    assert_eq!(kinds, vec![("m3FMiVh2016699", "egress", "sent"), ("m3FMiGem016698", "filter_hop", "sent")]);
    assert_eq!(get(d[0], "response"), Some("Sent (ok:  Message 16044892 accepted)"));
    // A bounce, its notification under a new id, delivered locally to root.
    let (_, rows) = parse(&dir.join("myvps1976.dsn-child-queue-id.2012-06-26.log"), Format::Sendmail, Some(2012));
    let d = rows.of(Table::MailDeliveries);
    assert_eq!((get(d[0], "status"), get(d[0], "dsn"), get(d[0], "response")), (Some("bounced"), Some("5.0.0"), Some("Service unavailable")));
    assert_eq!((get(d[1], "recipient"), get(d[1], "delivery_kind"), get(d[1], "notification_of")), (Some("root"), Some("local"), Some("q5PNOMeP031760")));
    let m = rows.of(Table::MailMessages);
    assert_eq!(m.iter().map(|r| (get(r, "queue_id").unwrap(), get(r, "final_state").unwrap())).collect::<Vec<_>>(), vec![("q5PNOMeP031760", "bounced"), ("q5PNOPeP031762", "delivered")]);
    // `Operating system error` with dsn 4.5.0 is temporary; Postfix's line in
    // the same syslog is another program's.
    let (stats, rows) = parse(&dir.join("cutiebunny.syserr-ruleset-deferred.2008-12-06.log"), Format::Sendmail, Some(2008));
    assert_eq!((stats.parsed, stats.skipped), (2, 3));
    assert!(rows.of(Table::MailDeliveries).iter().all(|x| get(x, "status") == Some("deferred")));
}

#[test]
fn sendmail_fail2ban_times_of_refused_recipients() {
    let Some(root) = shared() else { return };
    let path = root.join("sendmail/fail2ban/sendmail-reject");
    let (_, rows) = parse(&path, Format::Sendmail, None);
    let text = std::fs::read_to_string(&path).unwrap();
    let by_line: BTreeMap<String, &BTreeMap<&'static str, Option<String>>> = rows.of(Table::MailDeliveries).into_iter().map(|d| (get(d, "source_line").unwrap().to_string(), d)).collect();
    let (mut expected, mut checked) = (None, 0);
    for (i, line) in text.lines().enumerate() {
        if let Some(j) = line.strip_prefix("# failJSON:") {
            expected = serde_json::from_str::<serde_json::Value>(j.trim()).ok().and_then(|v| v.get("time").and_then(|t| t.as_str()).map(str::to_string));
            continue;
        }
        let want = expected.take();
        if !line.contains("ruleset=check_rcpt") {
            continue;
        }
        let d = by_line.get(&(i + 1).to_string()).unwrap_or_else(|| panic!("{}: no row for {line}", i + 1));
        let rcpt = line.split("arg1=<").nth(1).and_then(|r| r.split('>').next()).unwrap().to_lowercase();
        assert_eq!((get(d, "status"), get(d, "recipient")), (Some("rejected"), Some(rcpt.as_str())), "{line}");
        assert_eq!(get(d, "dsn"), line.split("reject=").nth(1).and_then(|r| r.split(' ').nth(1)), "{line}");
        if let Some(w) = want {
            // fail2ban's harness assumes the year of `time`; the line has none.
            let year = &w[..4];
            let (_, one) = parse_one(line, year.parse().unwrap());
            assert_eq!(one.trim_end_matches('Z').split('.').next(), Some(w.as_str()), "{line}");
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} oracle lines");
    // A refusal is logged before its message's `from=` line, which names the sender.
    let bad = rows.of(Table::MailDeliveries).into_iter().find(|d| get(d, "recipient") == Some("baduser@yourhost.com")).unwrap();
    assert_eq!((get(bad, "status"), get(bad, "sender"), get(bad, "queue_id")), (Some("rejected"), Some("root@yourhost.com"), Some("55HIbcGI002794")));
    let m = rows.of(Table::MailMessages).into_iter().find(|m| get(m, "queue_id") == Some("55HIbcGI002794")).unwrap();
    assert_eq!(get(m, "final_state"), Some("rejected"), "nrcpts=0: nothing was queued");
}

/// The `ts` of a single Sendmail line parsed in `year`.
fn parse_one(line: &str, year: i32) -> (SourceStats, String) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("maillog");
    std::fs::write(&p, format!("{line}\n")).unwrap();
    let (stats, rows) = parse(&p, Format::Sendmail, Some(year));
    let ts = rows.of(Table::MailDeliveries).first().and_then(|d| get(d, "ts")).unwrap_or_default().to_string();
    (stats, ts)
}

/// Elastic's expected documents of a pipeline test, by their `event.original`.
fn elastic_expected(path: &Path) -> Vec<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["expected"].as_array().unwrap().clone()
}

#[test]
fn exchange_tracking_rows_match_the_elastic_oracle() {
    let Some(root) = shared() else { return };
    let dir = root.join("exchange/exchange-server-messagetracking");
    let log = dir.join("test-messagetracking.log");
    assert_eq!(detect_format(&mcpf_formats::source::read_head(&log, 64 * 1024).unwrap().0), Some(Format::ExchangeTracking));
    let (stats, rows) = parse(&log, Format::ExchangeTracking, None);
    assert_eq!((stats.lines, stats.rejected), (6, 0));
    let expected = elastic_expected(&dir.join("test-messagetracking.log-expected.json"));
    let text = std::fs::read_to_string(&log).unwrap();
    let deliveries = rows.of(Table::MailDeliveries);
    let mut compared = 0;
    for (i, (line, exp)) in text.lines().zip(&expected).enumerate() {
        assert_eq!(exp["event"]["original"].as_str(), Some(line), "the oracle is in file order");
        let mine: Vec<_> = deliveries.iter().filter(|d| get(d, "source_line") == Some(&(i + 1).to_string())).collect();
        let event = exp["microsoft"]["exchange"]["eventid"].as_str().unwrap();
        if !matches!(event, "RECEIVE" | "SEND" | "SENDEXTERNAL" | "DELIVER" | "FAIL" | "DEFER" | "DROP") {
            // Shadow redundancy and mailbox notifications are no delivery.
            assert!(mine.is_empty(), "{event}");
            continue;
        }
        let to: Vec<String> = exp["email"]["to"]["address"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_lowercase()).collect();
        assert_eq!(mine.iter().map(|d| get(d, "recipient").unwrap().to_string()).collect::<Vec<_>>(), to, "{event}");
        for d in mine {
            let e = &exp["email"];
            assert_eq!(get(d, "ts").map(|t| t.replace(".000", "").replace("000Z", "Z")), exp["@timestamp"].as_str().map(str::to_string), "{event}");
            assert_eq!(get(d, "message_id"), e["message_id"].as_str().map(|m| m.trim_matches(['<', '>'])), "{event}");
            assert_eq!(get(d, "subject"), e["subject"].as_str(), "{event}");
            assert_eq!(get(d, "queue_id"), e["local_id"].as_str(), "{event}: network-message-id");
            assert_eq!(get(d, "header_from"), e["sender"]["address"].as_str().map(str::to_lowercase).as_deref(), "{event}");
            let rp = exp["microsoft"]["exchange"]["returnpath"].as_str().unwrap();
            assert_eq!(get(d, "sender"), Some(if rp == "<>" { "" } else { rp }), "{event}: return-path");
            assert_eq!(get(d, "size_bytes").map(str::to_string), exp["network"]["bytes"].as_i64().map(|b| b.to_string()), "{event}");
            assert_eq!(get(d, "response"), exp["microsoft"]["exchange"]["recipientstatus"].as_str(), "{event}");
            let status = get(d, "status").unwrap();
            match event {
                "RECEIVE" => assert_eq!((status, get(d, "delivery_kind")), ("received", Some("none"))),
                _ => {
                    assert_eq!((status, get(d, "delivery_kind")), ("sent", Some("egress")));
                    let srv = &exp["server"];
                    assert_eq!(get(d, "relay").map(str::to_string), Some(format!("{}[{}]", srv["domain"].as_str().unwrap(), srv["ip"].as_str().unwrap())));
                    assert_eq!(get(d, "host"), exp["client"]["domain"].as_str());
                }
            }
            compared += 1;
        }
    }
    assert_eq!(compared, 4);
}

#[test]
fn m365_trace_rows_match_the_elastic_oracle() {
    let Some(root) = shared() else { return };
    let dir = root.join("exchange/m365-message-trace");
    for name in ["records-from-expected-event-original.ndjson", "microsoft_exchange_online_message_trace_test.ndjson.log", "test-log.0afb68a.log"] {
        let f = dir.join(name);
        assert_eq!(detect_format(&mcpf_formats::source::read_head(&f, 64 * 1024).unwrap().0), Some(Format::M365Trace), "{name}");
        let (stats, rows) = parse(&f, Format::M365Trace, None);
        assert_eq!((stats.lines, stats.parsed, stats.rejected), (line_count(&f), line_count(&f), 0), "{name}");
        assert_eq!(rows.of(Table::MailDeliveries).len() as u64, line_count(&f), "{name}: one row per record");
    }
    // Field by field against Elastic's expected documents (the null entry is
    // a line the pipeline dropped; the records file holds the other seven).
    let expected: Vec<_> = elastic_expected(&dir.join("test-log.log-expected.json")).into_iter().filter(|e| !e.is_null()).collect();
    let f = dir.join("records-from-expected-event-original.ndjson");
    let (_, rows) = parse(&f, Format::M365Trace, None);
    let d = rows.of(Table::MailDeliveries);
    assert_eq!(d.len(), expected.len());
    for (row, exp) in d.iter().zip(&expected) {
        let e = &exp["email"];
        let orig: serde_json::Value = serde_json::from_str(exp["event"]["original"].as_str().unwrap()).unwrap();
        assert_eq!(get(row, "recipient").map(str::to_string), e["to"]["address"].as_str().or_else(|| e["to"]["address"][0].as_str()).map(str::to_lowercase));
        assert_eq!(get(row, "message_id"), e["message_id"].as_str().map(|m| m.trim_matches(['<', '>'])));
        assert_eq!(get(row, "subject"), e["subject"].as_str());
        let from = e["from"]["address"].as_str().or_else(|| e["from"]["address"][0].as_str()).map(str::to_lowercase);
        assert_eq!(get(row, "sender").map(str::to_string), Some(from.filter(|f| f != "<>").unwrap_or_default()));
        assert_eq!(get(row, "size_bytes").map(str::to_string), orig.get("Size").or_else(|| orig.get("size")).map(|s| s.to_string()));
        assert_eq!(get(row, "status"), Some(if orig.get("Status").or_else(|| orig.get("status")).unwrap().as_str().unwrap().eq_ignore_ascii_case("delivered") { "delivered" } else { "?" }));
        // Elastic's @timestamp is the record's time (zone-less: UTC), to the millisecond.
        let ts = exp["@timestamp"].as_str().unwrap();
        assert_eq!(get(row, "ts").map(|t| t[..23].to_string()), Some(ts[..23].to_string()), "{ts}");
        assert_eq!(get(row, "client").map(str::to_string), orig.get("FromIP").or_else(|| orig.get("fromIP")).and_then(|v| v.as_str()).filter(|s| !s.is_empty()).map(|ip| format!("[{ip}]")));
        assert_eq!(get(row, "role_source"), Some("provider_recipients"));
    }
}

#[test]
fn gmail_bigquery_row_by_position_under_its_schema() {
    let Some(root) = shared() else { return };
    let f = root.join("providers/google-workspace-gmail/elastic-integrations/test-gmail.line1.log");
    assert_eq!(detect_format(&mcpf_formats::source::read_head(&f, 64 * 1024).unwrap().0), Some(Format::Gmail));
    let (stats, rows) = parse(&f, Format::Gmail, None);
    assert_eq!((stats.lines, stats.parsed, stats.rejected), (1, 1, 0));
    let d = rows.of(Table::MailDeliveries);
    assert_eq!(d.len(), 1, "one destination");
    let d = d[0];
    // Values read off the row by the schema's names (checked by hand against
    // the file: message_info.destination[0].address, rfc2822_message_id, …).
    assert_eq!((get(d, "recipient"), get(d, "sender"), get(d, "header_from")), (Some("bar@elastic.com"), Some("foo@example.com"), Some("foo@example.com")));
    assert_eq!((get(d, "message_id"), get(d, "subject"), get(d, "size_bytes")), (Some("12345627134207078908@example.com"), Some("This is a subject"), Some("21390")));
    assert_eq!((get(d, "ts"), get(d, "delay_s")), (Some("2025-07-27T05:42:10.801601Z"), Some("0.11958")));
    assert_eq!((get(d, "status"), get(d, "response"), get(d, "client")), (Some("stage"), Some("action_type 2"), Some("[216.160.83.56]")));
    // The pointer names the address in the row as written.
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
    let ptr = get(d, "source_pointer").unwrap();
    assert_eq!(doc.pointer(&format!("{ptr}/f/0/v")).and_then(|v| v.as_str()), Some("bar@elastic.com"), "{ptr}");
}
