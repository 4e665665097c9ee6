//! Hostile input: arbitrary bytes, or near-valid lines mutated, must never
//! panic a parser, and every line must still be accounted for once.

use std::sync::Arc;

use mcpf_formats::collect::Provenance;
use mcpf_formats::{parse_file, Format, RowSink, SourceInfo, Val};
use mcpf_schema::Table;
use proptest::prelude::*;

struct Count(usize);
impl RowSink for Count {
    fn row(&mut self, table: Table, vals: &[Val<'_>]) {
        assert_eq!(vals.len(), table.columns().len());
        self.0 += 1;
    }
}

const SEEDS: [&str; 27] = [
    "Mar  1 10:00:01 mx postfix/cleanup[2]: 4104E3D: milter-header-redirect: header X-Spam-Status: Yes from h[61.238.241.86]; from=<w@c.com> to=<v@e.com> proto=ESMTP helo=<e.com>: tom@example.com",
    "Jan 28 06:40:37 mail postfix/smtp[15076]: 8BD903012026: to=<h@x.com>, relay=127.0.0.1[127.0.0.1]:10024, delay=0.55, delays=0.44/0.01/0/0.09, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as BF76C3012027)",
    "Nov 25 01:40:58 mx1 postfix/smtp[3991]: 89AE498C146: to=<carol@other.example>, orig_to=<x@y.z>, relay=127.0.0.1[127.0.0.1]:40871, delay=0.03, delays=0.01/0.01/0/0, dsn=2.0.0, status=sent (250 2.0.0 Ok)",
    "2022-01-08T19:42:12.572958+00:00 mail postfix/cleanup[1]: 1F5A2194AA9: message-id=<a@b>",
    "Jan 28 06:34:09 mail postfix/smtpd[1]: NOQUEUE: reject: RCPT from x[1.2.3.4]: 554 5.7.1 <a@b.c>: Relay access denied; from=<s@t.u> to=<a@b.c> proto=ESMTP helo=<h>",
    "2025-07-20T13:44:18.950Z [weather] [info] Message from server: {\"jsonrpc\":\"2.0\",\"id\":0,\"result\":{\"serverInfo\":{\"name\":\"weather\",\"version\":\"1.12.0\"}}} { metadata: undefined }",
    "2025-07-20T14:12:07.571Z [info] [weather] Message from client: {\"method\":\"tools/call\",\"params\":{\"name\":\"s\",\"arguments\":{\"to\":[\"a@b.c\",{\"cc\":\"d@e.f\"}]}},\"jsonrpc\":\"2.0\",\"id\":18}",
    "{\"ts\":\"2026-01-01T00:00:00Z\",\"direction\":\"server_to_client\",\"server\":\"s\",\"message\":{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"t\"}]}}}",
    "{\"parentUuid\":\"p1\",\"isSidechain\":true,\"agentId\":\"a1\",\"type\":\"assistant\",\"uuid\":\"a1\",\"timestamp\":\"2026-12-02T09:59:04.613Z\",\"sessionId\":\"S1\",\"version\":\"2.1.328\",\"message\":{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"mcp__mail__send_email\",\"input\":{\"to\":[\"é@exämple.com\"]}}]}}",
    "{\"timestamp\":\"2026-12-02T16:19:19.335Z\",\"ordinal\":13,\"type\":\"response_item\",\"payload\":{\"type\":\"function_call\",\"name\":\"send\",\"namespace\":\"mcp__mail\",\"arguments\":\"{\\\"to\\\":\\\"ü@b.c\\\"}\",\"call_id\":\"call_1\"}}",
    "{\"timestamp\":\"2026-12-02T16:19:19.407Z\",\"type\":\"event_msg\",\"payload\":{\"type\":\"item_completed\",\"item\":{\"type\":\"McpToolCall\",\"id\":\"call_1\",\"server\":\"mail\",\"tool\":\"send\",\"arguments\":{\"to\":\"a@b.c\"},\"status\":\"completed\",\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"MessageID: ß@corp.example\"}],\"isError\":false}}}}",
    "{\"resourceLogs\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":\"claude-code\"}}]},\"scopeLogs\":[{\"logRecords\":[{\"timeUnixNano\":\"1772359260000000000\",\"attributes\":[{\"key\":\"event.name\",\"value\":{\"stringValue\":\"tool_result\"}},{\"key\":\"tool_name\",\"value\":{\"stringValue\":\"mcp_tool\"}},{\"key\":\"tool_parameters\",\"value\":{\"stringValue\":\"{\\\"mcp_server_name\\\":\\\"mäil\\\",\\\"mcp_tool_name\\\":\\\"send\\\"}\"}},{\"key\":\"tool_input\",\"value\":{\"stringValue\":\"{\\\"to\\\":\\\"a@b.c\\\"}\"}}]}]}]}]}",
    "[{\"jsonrpc\":\"2.0\",\"id\":\"é1\",\"method\":\"tools/call\",\"params\":{\"name\":\"send\",\"arguments\":{\"to\":\"a@b.c\"}}},{\"jsonrpc\":\"2.0\",\"id\":\"é1\",\"result\":{\"content\":[],\"_meta\":{\"io.modelcontextprotocol/serverInfo\":{\"name\":\"ß\",\"version\":\"1\"}}}}]",
    "{\"timestamp\":\"2026-02-13T12:37:36.022577384Z\",\"direction\":\"OUT\",\"type\":\"REQUEST\",\"server_id\":\"gïthub\",\"method\":\"tools/call\",\"payload\":{\"jsonrpc\":\"2.0\",\"method\":\"tools/call\",\"params\":{\"arguments\":{\"to\":\"a@b.c\"},\"name\":\"send\"}}}",
    "2025-03-23 16:38:00.970 [info] [Client Says] {\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\",\"params\":{\"name\":\"vä\",\"arguments\":{\"to\":\"a@b.c\"}}}",
    "{\"type\":\"tool.execution_start\",\"data\":{\"toolCallId\":\"c1\",\"toolName\":\"mail-send\",\"mcpServerName\":\"mail\",\"mcpToolName\":\"send\",\"arguments\":\"{\\\"to\\\":\\\"ö@b.c\\\"}\"},\"id\":\"e2\",\"timestamp\":\"2026-08-05T20:40:14.000Z\"}",
    "{\"type\":\"tool_use\",\"timestamp\":\"2025-12-26T12:48:36.765Z\",\"tool_name\":\"mcp_mail_send\",\"tool_id\":\"t1\",\"parameters\":{\"to\":\"ç@b.c\"}}",
    // Exim: a syslog-forwarded failure (4.97+ ids, milliseconds, DT=) and an alias delivery.
    "Feb 14 18:12:33 192.168.55.51 exim[47012]: 2025-02-14 18:12:33.501 [47012] 1tixMn-00000000C5j-1wRa ** tëst@domain.ru F=<root@domain.ru> P=<root@domain.ru> R=dovecot_user T=dovecot_delivery: Child process returned 127 DT=0.004s",
    "2019-07-01 09:17:26 1hhlhb-006myf-8K => alice@corp.example (team@lists.corp.example) <team@lists.corp.example> R=smarthost T=remote_smtp H=127.0.0.1 [127.0.0.1]:2526 C=\"250 2.0.0 Ok: queued as ß\" QT=1m2s",
    // SES through SNS: the record as a JSON string.
    "{\"Type\":\"Notification\",\"Message\":\"{\\\"eventType\\\":\\\"Delivery\\\",\\\"mail\\\":{\\\"timestamp\\\":\\\"2026-03-01T10:00:00Z\\\",\\\"source\\\":\\\"ä@b.c\\\",\\\"messageId\\\":\\\"m\\\",\\\"destination\\\":[\\\"x@y.z\\\"],\\\"commonHeaders\\\":{\\\"to\\\":[]}},\\\"delivery\\\":{\\\"recipients\\\":[\\\"x@y.z\\\"],\\\"smtpResponse\\\":\\\"250 2.0.0 ok\\\"}}\"}",
    // Zeek smtp.log, TSV with its header.
    "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tsmtp\n#fields\tts\tuid\tmailfrom\trcptto\tfrom\tto\tcc\tmsg_id\tlast_reply\n1254722768.219663\tC1\tä@b.c\tx@y.z,w@v.u\ta@b.c\t<x@y.z>\t(empty)\t<m@x>\t250 OK",
    // Sendmail: an MSP hand-off (a filter hop naming the daemon's queue id) and a multi-recipient deferral.
    "Apr 15 19:44:31 localmachine sendmail[16698]: m3FMiGem016698: to=enrico.lüzi@companydomain, ctladdr=oi (1000/1000), delay=00:00:15, xdelay=00:00:00, mailer=relay, pri=30072, relay=[127.0.0.1] [127.0.0.1], dsn=2.0.0, stat=Sent (m3FMiVh2016699 Message accepted for delivery)",
    "Jun 17 14:37:39 <mail.info> robin sm-mta[6555]: n3KFZnc6006553: to=<xxx@yyy.com>,<ä@b.example>, ctladdr=<www-data@mkalimu> (33/33), delay=1+00:00:02, mailer=esmtp, relay=mx00.1and1.co.uk. [212.227.15.169], dsn=4.0.0,stat=Deferred: 421 unable, to verify",
    // Exchange message tracking: a header and a multi-recipient SENDEXTERNAL row with quoted commas.
    "#Fields: date-time,event-id,network-message-id,message-id,recipient-address,recipient-status,related-recipient-address,return-path,sender-address,message-subject,client-hostname,server-hostname,server-ip\n2026-03-01T10:00:02.000Z,SENDEXTERNAL,n1,<m1@x.example>,a@corp.example;ç@evil.example,\"250 2.1.5 OK, fine\";250 2.1.5Recipient OK,,s@corp.example,s@corp.example,\"Hi, there\",ex1,mx.evil.example,192.0.2.7",
    // Microsoft 365 message trace, classic record (escaped brackets, zone-less time).
    "{\"Organization\":\"contoso.com\",\"MessageId\":\"\\u003cGVAP@PROD.OUTLOOK.COM\\u003e\",\"Received\":\"2022-10-21T17:25:36.969376\",\"SenderAddress\":\"<>\",\"RecipientAddress\":\"lïnus@contoso.com\",\"Subject\":null,\"Status\":\"Delivered\",\"ToIP\":null,\"FromIP\":\"40.107.23.54\",\"Size\":22761,\"MessageTraceId\":\"a5e6dc0f-23df\",\"Index\":0}",
    // Gmail log row by name.
    "{\"event_info\":{\"timestamp_usec\":\"1753594930801601\",\"mail_event_type\":\"1\"},\"message_info\":{\"rfc2822_message_id\":\"<m@x>\",\"source\":{\"address\":\"ä@corp.example\"},\"destination\":[{\"address\":\"phan@giftshop.club\"}],\"connection_info\":{\"smtp_out_remote_host\":\"mx.b\"}}}",
    // As `codex mcp add` writes config.toml.
    "[mcp_servers.pöstmark]\ncommand = \"npx\"\nargs = [\"-y\", \"postmark-mcp\"]\n\n[mcp_servers.pöstmark.env]\nPOSTMARK_SERVER_TOKEN = \"x\"\n\n[mcp_servers.remote]\nurl = \"https://mcp.example.com/mcp\"\nbearer_token_env_var = \"MAIL_TOKEN\"",
];

fn run_all(bytes: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("input.log");
    std::fs::write(&p, bytes).unwrap();
    let expected_lines = {
        let n = bytes.iter().filter(|b| **b == b'\n').count() as u64;
        n + u64::from(!bytes.is_empty() && *bytes.last().unwrap() != b'\n')
    };
    for f in Format::ALL {
        let info = SourceInfo::new("input.log", Some(0));
        let prov = Provenance { format: f, file: info.path.clone(), ingest_id: Arc::from("t") };
        let mut sink = Count(0);
        let st = parse_file(&p, f, &info, prov, 0, &mut sink, None).unwrap();
        assert!(st.balanced(), "{f}: {st:?}");
        assert_eq!(st.lines, expected_lines, "{f}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        run_all(&bytes);
    }

    #[test]
    fn mutated_real_shapes(seed in 0..SEEDS.len(), cuts in proptest::collection::vec((0usize..400, any::<u8>()), 0..8), truncate in 0usize..400) {
        let mut b = SEEDS[seed].as_bytes().to_vec();
        for (at, byte) in cuts {
            let i = at % (b.len() + 1);
            b.insert(i, byte);
        }
        b.truncate(truncate.max(1).min(b.len()));
        let mut input = b.clone();
        input.push(b'\n');
        input.extend_from_slice(SEEDS[seed].as_bytes());
        run_all(&input);
    }
}

/// Regression: a 20-byte line whose 19th byte starts a two-byte character
/// panicked the Claude Desktop header split (a slice inside a UTF-8
/// character) during format detection of every file. A malicious MCP server
/// can write exactly this line to its stderr, which Desktop copies into the
/// log that is the evidence against it.
#[test]
fn utf8_character_across_a_fixed_header_offset() {
    let line = b"2026-01-01 12:00:0\xc3\xa9\n";
    assert_eq!(line.len(), 21);
    let _ = mcpf_formats::detect_format(line);
    run_all(line);
    // The same at every other fixed offset a header parser may cut at.
    for at in 0..40 {
        let mut b = b"2026-01-01T12:00:00.123Z [info] [srv] Message from client: {}".to_vec();
        b.truncate(at.min(b.len()));
        b.extend_from_slice("é€😀".as_bytes());
        b.extend_from_slice(b" [x] y\n");
        let _ = mcpf_formats::detect_format(&b);
        run_all(&b);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Multi-byte characters spliced into real shapes: parsers cut lines at
    /// fixed offsets, and any cut that is not at a character boundary panics.
    #[test]
    fn multibyte_characters_in_real_shapes(seed in 0..SEEDS.len(), at in proptest::collection::vec((0usize..400, 0usize..4), 1..6)) {
        let chars = ["é", "€", "😀", "\u{202e}"];
        let mut s = SEEDS[seed].to_string();
        for (i, c) in at {
            let mut i = i % (s.len() + 1);
            while !s.is_char_boundary(i) { i -= 1; }
            s.insert_str(i, chars[c]);
        }
        let _ = mcpf_formats::detect_format(s.as_bytes());
        s.push('\n');
        run_all(s.as_bytes());
    }
}
