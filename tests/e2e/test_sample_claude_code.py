"""The bundled Claude Code form of the incident (sample-logs/claude-code/,
written by tests/harness/incident_claude_code.py with the real Claude Code):
each intent record alone with one egress record names the backdoor, with
evidence in those files."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample-logs" / "claude-code"
BIN = os.environ.get("MCPF_BIN", str(Path.home() / ".cache/mcp-forensics/target/debug/mcp-forensics"))
ATTACKER = "phan@giftshop.club"


def cli(*args: str) -> str:
    r = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"{args}: {r.stderr}"
    return r.stdout


@pytest.mark.parametrize("intent,egress", [("claude-code", "postfix"), ("otel", "postmark")])
def test_one_intent_record_and_one_egress_record_name_the_backdoor(tmp_path, intent, egress):
    if not Path(BIN).exists():
        pytest.skip(f"{BIN} not built (scripts/test.sh builds it)")
    manifest = json.loads((SAMPLE / "manifest.json").read_text())
    lake = tmp_path / "lake"
    cli("ingest", "--lake", str(lake), "--year", str(manifest["year"]), str(SAMPLE / intent), str(SAMPLE / egress))
    findings = json.loads(cli("detect", "--lake", str(lake), "--format", "json"))
    by_rule: dict[str, list] = {}
    for f in findings:
        by_rule.setdefault(f["rule_id"], []).append(f)
    unintended = by_rule.get("mail.unintended_recipient", [])
    assert [f["address"] for f in unintended] == [ATTACKER], findings
    assert unintended[0]["count"] == sum(s["calls"] for s in manifest["sessions"] if s["version"] == "1.0.16")
    assert [f["address"] for f in by_rule.get("mail.constant_bcc", [])] == [ATTACKER], findings
    files = {Path(e["source_file"]).resolve() for e in unintended[0]["evidence"]}
    assert any((SAMPLE / intent).resolve() in p.parents for p in files), files
    assert any((SAMPLE / egress).resolve() in p.parents for p in files), files
    benign = {c["arguments"]["to"].split("<")[-1].rstrip(">").lower() for c in manifest["tool_calls"]}
    assert not [f for f in findings if (f.get("address") or "").lower() in benign], findings
