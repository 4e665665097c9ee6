"""End to end with real components: Postfix (+ smtp-sink) on loopback, the
MCP SDK server and client through the stdio tap, then the mcp-forensics CLI
on the logs they wrote. Asserts the exact findings, their evidence lines,
that no benign recipient is flagged, and that re-ingesting adds nothing.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "harness"))

import incident  # noqa: E402
import postfix_lab  # noqa: E402

BIN = os.environ.get("MCPF_BIN", str(Path.home() / ".cache/mcp-forensics/target/debug/mcp-forensics"))
MALICIOUS_CALLS = 6


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=300)
    if check and r.returncode != 0:
        raise AssertionError(f"{args} exited {r.returncode}: {r.stderr}")
    return r


def require_cli(postfix: bool = True) -> None:
    """Skip, saying why, when the built CLI or (for live runs) Postfix is missing."""
    if postfix and (why := postfix_lab.available()):
        pytest.skip(why)
    if not Path(BIN).exists():
        pytest.skip(f"{BIN} not built (scripts/test.sh builds it)")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    require_cli()
    out = tmp_path_factory.mktemp("incident")
    manifest = incident.run(out, benign=10, malicious=MALICIOUS_CALLS, pace=0.05)
    lake = out / "lake"
    r = cli("ingest", "--lake", str(lake), "-v", str(out / "mcp"), str(out / "postfix"))
    findings = json.loads(cli("detect", "--lake", str(lake), "--format", "json").stdout)
    return out, manifest, lake, findings, r.stderr


def syslog_ts(line: str, year: int) -> str:
    m = re.match(r"(\w{3}) +(\d+) (\d\d:\d\d:\d\d)", line)
    t = datetime.strptime(f"{year} {m[1]} {m[2]} {m[3]}", "%Y %b %d %H:%M:%S").replace(tzinfo=timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def by_rule(findings, rule):
    return [f for f in findings if f["rule_id"] == rule]


def test_unintended_recipient_exact(run):
    out, manifest, _, findings, _ = run
    attacker = manifest["attacker"]
    u = by_rule(findings, "mail.unintended_recipient")
    assert [f["address"] for f in u] == [attacker], u
    f = u[0]
    assert f["count"] == MALICIOUS_CALLS
    assert f["version"] == manifest["malicious_version"]
    assert f["server"] == manifest["server_name"]
    assert f["sender"] == manifest["agent_sender"]
    mail_lines = (out / "postfix" / "mail.log").read_text().splitlines()
    attacker_lines = [i + 1 for i, l in enumerate(mail_lines) if f"to=<{attacker}>" in l]
    assert len(attacker_lines) == MALICIOUS_CALLS
    assert f["first_seen"] == syslog_ts(mail_lines[attacker_lines[0] - 1], manifest["year"])
    assert f["last_seen"] == syslog_ts(mail_lines[attacker_lines[-1] - 1], manifest["year"])
    # Every evidence row points at a raw line that shows it.
    ev_mail = sorted(e["source_line"] for e in f["evidence"] if e["table"] == "mail_deliveries")
    assert ev_mail == attacker_lines
    desktop = (out / "mcp" / "mcp-server-mail-relay.log").read_text().splitlines()
    ev_calls = [e for e in f["evidence"] if e["table"] == "tool_calls"]
    assert len(ev_calls) == MALICIOUS_CALLS
    for e in ev_calls:
        line = desktop[e["source_line"] - 1]
        assert '"method":"tools/call"' in line and attacker not in line


def test_constant_bcc_and_version_change(run):
    _, manifest, _, findings, _ = run
    c = by_rule(findings, "mail.constant_bcc")
    assert [(f["address"], f["sender"]) for f in c] == [(manifest["attacker"], manifest["agent_sender"])]
    assert c[0]["count"] == MALICIOUS_CALLS
    v = by_rule(findings, "mcp.server_version_change")
    assert len(v) == 1 and v[0]["key"].endswith(f"{manifest['clean_version']} -> {manifest['malicious_version']}")
    assert by_rule(findings, "mcp.tool_definition_drift") == []  # the backdoor kept its definitions


def test_no_benign_recipient_flagged(run):
    _, manifest, _, findings, _ = run
    benign = {c[1] for c in incident.CONTACTS} | {incident.MANAGER} | set(incident.ALIAS_MEMBERS) | {incident.ALIAS}
    flagged = {f.get("address") for f in findings if f.get("address")}
    assert flagged == {manifest["attacker"]}
    assert not (flagged & benign)


def test_every_line_accounted_and_reingest_adds_nothing(run):
    out, _, lake, findings, summary = run
    assert re.search(r"lines: (\d+) = (\d+) parsed \+ (\d+) rejected \+ (\d+) skipped", summary)
    n, p, r, s = map(int, re.search(r"lines: (\d+) = (\d+) parsed \+ (\d+) rejected \+ (\d+) skipped", summary).groups())
    assert n == p + r + s and r == 0
    total = sum(len(f.read_text().splitlines()) for f in [out / "mcp" / "mcp-server-mail-relay.log", out / "postfix" / "mail.log"])
    assert n == total
    before = cli("tables", "--lake", str(lake)).stdout
    again = cli("ingest", "--lake", str(lake), str(out / "mcp"), str(out / "postfix"))
    assert "2 already ingested" in again.stderr
    assert cli("tables", "--lake", str(lake)).stdout == before
    assert json.loads(cli("detect", "--lake", str(lake), "--format", "json").stdout) == findings


def test_wire_log_gives_the_same_answer(run, tmp_path):
    out, manifest, _, findings, _ = run
    lake = tmp_path / "wire-lake"
    cli("ingest", "--lake", str(lake), str(out / "wire"), str(out / "postfix"))
    wf = json.loads(cli("detect", "--lake", str(lake), "--format", "json", "--rule", "mail.unintended_recipient").stdout)
    assert [(f["address"], f["count"]) for f in wf] == [(manifest["attacker"], MALICIOUS_CALLS)]
    assert all(e["source_file"].endswith(".jsonl") for e in wf[0]["evidence"] if e["table"] == "tool_calls")


def test_fail_on_exit_code_and_csv_is_formula_safe(run):
    _, _, lake, _, _ = run
    assert cli("detect", "--lake", str(lake), "--fail-on", "high", check=False).returncode == 1
    assert cli("detect", "--lake", str(lake), "--fail-on", "critical", check=False).returncode == 0
    bad = cli("detect", "--lake", str(lake), "--rule", "no.such.rule", check=False)
    assert bad.returncode == 2 and "no rule" in bad.stderr
    csv = cli("detect", "--lake", str(lake), "--format", "csv").stdout
    assert csv.splitlines()[0].startswith("finding_id,rule_id,severity")
