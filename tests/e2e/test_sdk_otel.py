"""The incident as an SDK-built agent's only central record: the official
MCP SDK's own OpenTelemetry spans (tests/harness/sdk_otel.py), exported by
the OpenTelemetry SDK's OTLP JSON file exporter, from the agent (CLIENT
spans) and from the server processes (SERVER spans), beside the real
Postfix log or the Postmark export. The SDK records no arguments and no
result, so the intent side cannot say who the agent asked for: the lake
must say "not observable" instead of "unintended", and still show the
server's version move from its own spans.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "harness"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from agent_runs import ATTACKER, ingest_and_detect, rows  # noqa: E402
from test_incident import require_cli  # noqa: E402

BENIGN, MALICIOUS = 6, 5


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    require_cli()
    out = tmp_path_factory.mktemp("sdk-otel")
    # A child process: --otel installs a process-wide tracer provider.
    r = subprocess.run([sys.executable, str(ROOT / "tests/harness/incident.py"), str(out), "--benign", str(BENIGN),
                        "--malicious", str(MALICIOUS), "--pace", "0.05", "--otel"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return out, json.loads((out / "manifest.json").read_text())


def spans(path: Path) -> list[dict]:
    return [s for line in path.read_text().splitlines() for rs in json.loads(line)["resourceSpans"]
            for ss in rs["scopeSpans"] for s in ss["spans"]]


def test_the_sdk_wrote_its_own_spans(run):
    out, manifest = run
    agent, server = spans(out / "otel/agent.spans.jsonl"), spans(out / "otel/server.spans.jsonl")
    calls = len(manifest["tool_calls"])
    assert sum(s["name"] == "MCP send tools/call sendEmail" and s["kind"] == 3 for s in agent) == calls
    assert sum(s["name"] == "tools/call sendEmail" and s["kind"] == 2 for s in server) == calls
    # No arguments anywhere: the SDK does not record them.
    assert "textBody" not in (out / "otel/agent.spans.jsonl").read_text() + (out / "otel/server.spans.jsonl").read_text()


def test_agent_spans_and_postfix_say_not_observable_not_unintended(run):
    out, manifest = run
    lake, findings = ingest_and_detect(out, "lake-agent", out / "otel/agent.spans.jsonl", out / "postfix/mail.log")
    calls = rows(lake, "SELECT t.tool_name, t.server_name, t.arguments_observed, t.recipients_observed, s.client_name FROM tool_calls t "
                       "JOIN mcp_sessions s USING (session_id)")
    assert len(calls) == len(manifest["tool_calls"])
    assert {(c["tool_name"], c["server_name"], c["arguments_observed"], c["recipients_observed"], c["client_name"]) for c in calls} \
        == {("sendEmail", "(not recorded)", False, False, "mail-agent")}
    by_rule = {}
    for f in findings:
        by_rule.setdefault(f["rule_id"], []).append(f)
    # Unknown intent is not "no recipients": nothing is judged unintended or unexplained.
    assert "mail.unintended_recipient" not in by_rule and "mail.agent_mail_without_call" not in by_rule, sorted(by_rule)
    blind = {f["key"]: f for f in by_rule["mail.intent_not_observable"]}
    agent = blind[manifest["agent_sender"]]
    assert agent["count"] == len(manifest["tool_calls"]), agent
    # Each raw line is evidence once, however many blind calls were near it.
    where = [(e["source_file"], e["source_line"], e["source_offset"], e.get("source_pointer"), e["table"]) for e in agent["evidence"]]
    assert len(where) == len(set(where)), agent["evidence"]
    log = (out / "postfix/mail.log").read_text().splitlines()
    spans_file = (out / "otel/agent.spans.jsonl").read_text().splitlines()
    for e in agent["evidence"]:
        if e["table"] == "mail_deliveries":
            assert "to=<" in log[e["source_line"] - 1]
        else:
            assert "MCP send tools/call sendEmail" in spans_file[e["source_line"] - 1]
    # The egress evidence alone still names the Bcc.
    assert [f["address"] for f in by_rule["mail.constant_bcc"]] == [ATTACKER]


def test_server_spans_show_the_version_move_without_arguments(run):
    out, manifest = run
    lake, findings = ingest_and_detect(out, "lake-server", out / "otel/server.spans.jsonl", out / "postmark")
    versions = rows(lake, "SELECT server_version, count(DISTINCT session_id) AS sessions, count(*) AS calls, "
                          "bool_or(arguments_observed) AS any_args FROM tool_calls WHERE server_name = 'postmark-mcp' "
                          "GROUP BY server_version ORDER BY server_version")
    clean = sum(c["version"] == manifest["clean_version"] for c in manifest["tool_calls"])
    assert versions == [
        {"server_version": manifest["clean_version"], "sessions": 2, "calls": clean, "any_args": False},
        {"server_version": manifest["malicious_version"], "sessions": 1, "calls": len(manifest["tool_calls"]) - clean, "any_args": False},
    ]
    change = [f for f in findings if f["rule_id"] == "mcp.server_version_change"]
    assert [f["version"] for f in change] == [manifest["malicious_version"]], change
    lines = (out / "otel/server.spans.jsonl").read_text().splitlines()
    assert all(f'"{manifest["malicious_version"]}"' in lines[e["source_line"] - 1] or f'"{manifest["clean_version"]}"' in lines[e["source_line"] - 1]
               for e in change[0]["evidence"])
    assert not [f for f in findings if f["rule_id"] == "mail.unintended_recipient"]
    assert [f["address"] for f in findings if f["rule_id"] == "mail.constant_bcc"] == [ATTACKER]
