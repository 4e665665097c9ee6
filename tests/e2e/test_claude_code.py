"""End to end with the real Claude Code CLI as the agent: Claude Code
(headless, `claude -p`, against the scripted model endpoint) calls the MCP
SDK e-mail server, launched as `npx -y postmark-mcp@VERSION` from its
`--mcp-config`, which submits to a real Postfix on loopback. Two sessions on
the clean 1.0.15, two on the backdoored 1.0.16 (five messages: enough for
mail.constant_bcc). Then mcp-forensics reads only
what Claude Code and Postfix wrote: the session transcripts (and, separately,
the stream-json output, and the OpenTelemetry log events Claude Code exported
to a local OTLP/HTTP JSON receiver) and the mail log. One more backdoored
session runs with telemetry that leaves the tool details out (Claude Code's
default): its calls' arguments are not observed.
"""
from __future__ import annotations

import json
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HARNESS = ROOT / "tests" / "harness"
sys.path.insert(0, str(HARNESS))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import claude_code_agent  # noqa: E402
import postfix_lab  # noqa: E402
from agent_runs import ATTACKER, BIN, SENDS, cli, ingest_and_detect, rows  # noqa: E402
import postmark_export  # noqa: E402

TOOL = "mcp__postmark__sendEmail"
# Sent with telemetry but without OTEL_LOG_TOOL_DETAILS, after the others.
BLIND = [{"to": "lena.novak@adventure-works.example", "subject": "Catalogue", "textBody": "Catalogue attached."},
         {"to": "yuki.tanaka@proseware.example", "subject": "Visit", "textBody": "See you."}]


run_blind: dict = {}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    for why in (postfix_lab.available(), claude_code_agent.available()):
        if why:
            pytest.skip(why)
    if not Path(BIN).exists():
        pytest.skip(f"{BIN} not built (scripts/test.sh builds it)")
    out = tmp_path_factory.mktemp("claude-code")
    home = out / "home"
    streams = out / "stream-json"
    streams.mkdir()
    otel = out / "otel"
    otel.mkdir()
    sessions = []
    # Postfix's daemons run as the postfix user: its folder must not sit under
    # pytest's private (0700) temporary tree.
    with postfix_lab.PostfixLab(Path(tempfile.mkdtemp(prefix="mcpf-cc-postfix-"))) as lab:
        n = 0
        for version, batches in SENDS.items():
            for calls in batches:
                n += 1
                servers = {"postmark": {"command": str(HARNESS / "shim" / "npx"), "args": ["-y", f"postmark-mcp@{version}"],
                                        "env": {"MCPF_SMTP_PORT": str(lab.smtp_port), "MCPF_PYTHON": sys.executable}}}
                steps = [{"tool_use": {"name": TOOL, "input": c}} for c in calls] + [{"text": "All sent."}]
                r = claude_code_agent.run_session(home, out / "work", servers, steps, "Send the follow-up e-mails.",
                                                  [TOOL], streams / f"session-{n}.jsonl", otel_out=otel / f"session-{n}.jsonl")
                sessions.append({"version": version, "calls": calls, **r})
        lab.wait_idle()
        servers["postmark"]["args"] = ["-y", "postmark-mcp@1.0.16"]
        blind = claude_code_agent.run_session(home / "blind", out / "work", servers,
                                              [{"tool_use": {"name": TOOL, "input": c}} for c in BLIND] + [{"text": "Sent."}],
                                              "Send the follow-up e-mails.", [TOOL], out / "blind-stream.jsonl",
                                              otel_out=out / "blind-otel.jsonl", tool_details=False)
        lab.wait_idle()
    run_blind["session"] = blind
    transcripts = sorted((home / ".claude" / "projects").glob("*/*.jsonl"))
    return out, transcripts, lab.log_path, sessions



def test_claude_code_wrote_one_transcript_per_session(run):
    _, transcripts, _, sessions = run
    assert len(transcripts) == len(sessions)
    for t in transcripts:
        lines = [json.loads(l) for l in t.read_text().splitlines() if l.strip()]
        uses = [b for l in lines if l.get("type") == "assistant" for b in l["message"]["content"] if b.get("type") == "tool_use"]
        assert uses and all(u["name"] == TOOL for u in uses)


def test_transcripts_and_mail_log_name_the_backdoor(run):
    out, transcripts, mail_log, sessions = run
    lake, findings = ingest_and_detect(out, "lake-transcripts", *transcripts, mail_log)
    want_calls = sum(len(s["calls"]) for s in sessions)
    # Every call Claude Code made is a tool call, answered, with its recipients.
    calls = rows(lake, "SELECT server_name, tool_name, host_tool_name, tool_name_split, ts_end IS NOT NULL AS answered, source_file FROM tool_calls")
    assert len(calls) == want_calls
    assert all(c["server_name"] == "postmark" and c["tool_name"] == "sendEmail" and c["host_tool_name"] == TOOL
               and c["tool_name_split"] == "exact" and c["answered"] for c in calls), calls
    client = rows(lake, "SELECT DISTINCT client_name, client_version FROM mcp_sessions")
    assert client == [{"client_name": "claude-code", "client_version": claude_code_agent.version()}]
    by_rule = {}
    for f in findings:
        by_rule.setdefault(f["rule_id"], []).append(f)
    unintended = by_rule.get("mail.unintended_recipient", [])
    assert [f["address"] for f in unintended] == [ATTACKER], findings
    assert unintended[0]["count"] == sum(len(b) for b in SENDS["1.0.16"])
    assert [f["address"] for f in by_rule.get("mail.constant_bcc", [])] == [ATTACKER]
    # Evidence points into the transcripts (the calls) and the mail log (the deliveries).
    files = {e["source_file"] for e in unintended[0]["evidence"]}
    assert str(mail_log) in files
    assert any(f.endswith(".jsonl") and "/.claude/projects/" in f for f in files), files
    for e in unintended[0]["evidence"]:
        if e["source_file"].endswith(".jsonl"):
            line = Path(e["source_file"]).read_text().splitlines()[e["source_line"] - 1]
            assert TOOL in line and '"type":"tool_use"' in line.replace(" ", "")
    # No benign recipient is reported by any rule.
    benign = {c["to"].split("<")[-1].rstrip(">").lower() for s in sessions for c in s["calls"]}
    assert not [f for f in findings if (f.get("address") or "").lower() in benign], findings


def test_stream_json_alone_gives_the_same_calls(run):
    out, transcripts, mail_log, sessions = run
    lake, findings = ingest_and_detect(out, "lake-stream", out / "stream-json", mail_log)
    n = rows(lake, "SELECT count(*) AS n, count(ts_end) AS answered FROM tool_calls")
    want = sum(len(s["calls"]) for s in sessions)
    assert n == [{"n": want, "answered": want}]
    assert [f["address"] for f in findings if f["rule_id"] == "mail.unintended_recipient"] == [ATTACKER]


def test_server_setup_claude_code_wrote_is_read(tmp_path):
    """`claude mcp add` in all three scopes: ~/.claude.json (user at the top,
    local under projects.<dir>) and the project's .mcp.json, as Claude Code
    writes them, give one mcp_server_configs row each."""
    if why := claude_code_agent.available():
        pytest.skip(why)
    if not Path(BIN).exists():
        pytest.skip(f"{BIN} not built (scripts/test.sh builds it)")
    home, work = tmp_path / "home", tmp_path / "work"
    claude_code_agent.add_server(home, work, "user", "postmark", ["-e", "POSTMARK_SERVER_TOKEN=secret", "--", "npx", "-y", "postmark-mcp@1.0.16"])
    claude_code_agent.add_server(home, work, "local", "remote-mail", ["--transport", "http", "https://mcp.example/mcp"])
    claude_code_agent.add_server(home, work, "project", "mail-local", ["--", "npx", "-y", "mail-mcp"])
    lake = tmp_path / "lake"
    cli("ingest", "--lake", str(lake), str(home / ".claude.json"), str(work / ".mcp.json"))
    got = rows(lake, "SELECT client, server_name, transport, package_name, package_version, package_pinned, env_names, url, source_pointer "
                     "FROM mcp_server_configs ORDER BY server_name")
    pointer_dir = str(work).replace("~", "~0").replace("/", "~1")
    assert got == [
        {"client": "claude_code", "server_name": "mail-local", "transport": "stdio", "package_name": "mail-mcp", "package_version": None,
         "package_pinned": False, "env_names": "", "url": None, "source_pointer": "/mcpServers/mail-local"},
        {"client": "claude_code", "server_name": "postmark", "transport": "stdio", "package_name": "postmark-mcp", "package_version": "1.0.16",
         "package_pinned": True, "env_names": "POSTMARK_SERVER_TOKEN", "url": None, "source_pointer": "/mcpServers/postmark"},
        {"client": "claude_code", "server_name": "remote-mail", "transport": "http", "package_name": None, "package_version": None,
         "package_pinned": None, "env_names": None, "url": "https://mcp.example/mcp", "source_pointer": f"/projects/{pointer_dir}/mcpServers/remote-mail"},
    ]
    # The credential's value is never stored.
    assert "secret" not in cli("sql", "--lake", str(lake), "--format", "csv", "SELECT * FROM mcp_server_configs").stdout


def test_otel_events_and_mail_log_name_the_backdoor(run):
    """Claude Code's own OpenTelemetry log events (with tool details) are the
    only intent record: the backdoor is named as from the transcripts."""
    out, _, mail_log, sessions = run
    lake, findings = ingest_and_detect(out, "lake-otel", out / "otel", mail_log)
    want = sum(len(s["calls"]) for s in sessions)
    calls = rows(lake, "SELECT server_name, tool_name, host_tool_name, arguments_observed, source_pointer FROM tool_calls")
    assert len(calls) == want, calls
    assert all(c["server_name"] == "postmark" and c["tool_name"] == "sendEmail" and c["arguments_observed"]
               and c["source_pointer"].startswith("/resourceLogs/") for c in calls), calls
    unintended = [f for f in findings if f["rule_id"] == "mail.unintended_recipient"]
    assert [f["address"] for f in unintended] == [ATTACKER], findings
    assert [f["address"] for f in findings if f["rule_id"] == "mail.constant_bcc"] == [ATTACKER]
    files = {e["source_file"] for e in unintended[0]["evidence"]}
    assert str(mail_log) in files and any(f.endswith(".logs.jsonl") for f in files), files
    for e in unintended[0]["evidence"]:
        if e["source_file"].endswith(".logs.jsonl"):
            assert "claude_code.tool_result" in Path(e["source_file"]).read_text().splitlines()[e["source_line"] - 1]


def test_otel_events_and_a_postmark_export_name_the_backdoor(run, tmp_path):
    """The OTLP file and the provider's records alone (no MTA log): the
    Postmark export of the same messages."""
    out, _, mail_log, sessions = run
    manifest = {"year": datetime.now(timezone.utc).year, "agent_sender": "assistant@corp.example", "alias": {}, "tool_calls": []}
    for s in sessions:
        ids = claude_code_agent.message_ids(s["stream"])
        assert len(ids) == len(s["calls"]), ids
        manifest["tool_calls"] += [{"message_id": mid, "arguments": c} for mid, c in zip(ids, s["calls"])]
    (tmp_path / "postfix").mkdir()
    (tmp_path / "postfix" / "mail.log").write_bytes(Path(mail_log).read_bytes())
    postmark_export.export(tmp_path, manifest)
    lake, findings = ingest_and_detect(tmp_path, "lake", out / "otel", tmp_path / "postmark")
    assert rows(lake, "SELECT DISTINCT source_format FROM mail_deliveries") == [{"source_format": "postmark"}]
    assert [f["address"] for f in findings if f["rule_id"] == "mail.unintended_recipient"] == [ATTACKER], findings
    assert [f["address"] for f in findings if f["rule_id"] == "mail.constant_bcc"] == [ATTACKER], findings


def test_otel_without_tool_details_is_not_observed_not_clean(run):
    """Claude Code's default telemetry names neither the server nor the
    arguments: beside the other sessions' transcripts, that session's calls
    are "arguments not observed", its backdoored deliveries are no
    unintended_recipient finding (only the transcripts' five are), and the
    blind spot is counted by mail.intent_not_observable instead."""
    out, transcripts, mail_log, _ = run
    blind = run_blind["session"]
    lake, findings = ingest_and_detect(out, "lake-blind", *transcripts, blind["otel_logs"], mail_log)
    calls = rows(lake, "SELECT server_name, tool_name_split, arguments_observed, recipients_observed FROM tool_calls WHERE source_format = 'otlp_json'")
    assert len(calls) == len(BLIND)
    assert all(c == {"server_name": "(not recorded)", "tool_name_split": "not_recorded", "arguments_observed": False,
                     "recipients_observed": False} for c in calls), calls
    unintended = [f for f in findings if f["rule_id"] == "mail.unintended_recipient"]
    assert [f["address"] for f in unintended] == [ATTACKER]
    assert unintended[0]["count"] == sum(len(b) for b in SENDS["1.0.16"]), "the blind session's copies are not judged"
    assert not [f for f in findings if f["rule_id"] == "mail.agent_mail_without_call"], findings
    blind_spot = [f for f in findings if f["rule_id"] == "mail.intent_not_observable"]
    assert [f["sender"] for f in blind_spot] == ["assistant@corp.example"], findings
    assert blind_spot[0]["count"] == len(BLIND)
