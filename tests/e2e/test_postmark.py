"""The seed incident as it really happened: the egress evidence is Postmark's
record of the message (the Bcc exists only there), the version that moved is
the npm package's in Claude Desktop's launch lines, and serverInfo stays
"1.0.0". No MTA log is ingested.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "harness"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import incident  # noqa: E402
from test_incident import cli, require_cli  # noqa: E402


def assert_postmark_story(findings, attacker, count, desktop: Path, export_dir: Path):
    u = [f for f in findings if f["rule_id"] == "mail.unintended_recipient"]
    assert [(f["address"], f["count"], f["version"]) for f in u] == [(attacker, count, "1.0.16")], u
    assert "matched by message_id" in u[0]["detail"]
    c = [f for f in findings if f["rule_id"] == "mail.constant_bcc"]
    assert [f["address"] for f in c] == [attacker]
    assert f"the provider lists it as Bcc on {count}" in c[0]["detail"]
    v = [f for f in findings if f["rule_id"] == "mcp.server_version_change"]
    assert len(v) == 1 and v[0]["key"].endswith("package: 1.0.15 -> 1.0.16"), v
    assert "serverInfo.version stayed 1.0.0" in v[0]["detail"]
    # Evidence: JSON records (file, line, pointer) and log lines that exist.
    lines = desktop.read_text().splitlines()
    for e in v[0]["evidence"]:
        assert "Using MCP server command" in lines[e["source_line"] - 1] or "Initializing server" in lines[e["source_line"] - 1]
    # The launch block of the new session names the new package version.
    newest = max(v[0]["evidence"], key=lambda e: e["source_line"])
    assert any("postmark-mcp@1.0.16" in l for l in lines[newest["source_line"] - 1:newest["source_line"] + 8])
    for e in u[0]["evidence"]:
        if e["table"] == "mail_deliveries":
            doc = (export_dir / Path(e["source_file"]).name).read_text().splitlines()[e["source_line"] - 1]
            node = json.loads(doc)
            for part in e["source_pointer"].strip("/").split("/"):
                node = node[int(part)] if isinstance(node, list) else node[part]
            email = node.get("Email") or node.get("Recipient") if isinstance(node, dict) else node
            assert email == attacker, (e, node)
        else:
            assert '"method":"tools/call"' in lines[e["source_line"] - 1]
    # No benign address is named by any finding.
    assert {f.get("address") for f in findings if f.get("address")} == {attacker}


def test_committed_sample_postmark_and_desktop_only(tmp_path):
    require_cli(postfix=False)
    sample = ROOT / "sample-logs"
    manifest = json.loads((sample / "manifest.json").read_text())
    lake = tmp_path / "lake"
    cli("ingest", "--lake", str(lake), str(sample / "mcp"), str(sample / "postmark"))
    findings = json.loads(cli("detect", "--lake", str(lake), "--format", "json").stdout)
    n = sum(1 for c in manifest["tool_calls"] if c["version"] == manifest["malicious_version"])
    assert_postmark_story(findings, manifest["attacker"], n, sample / "mcp" / "mcp-server-postmark.log", sample / "postmark")


def test_real_components_postmark_flavor(tmp_path):
    require_cli()
    out = tmp_path / "run"
    m = incident.run(out, benign=6, malicious=5, pace=0.05, flavor="postmark")
    assert m["postmark_export"] == {"messages": 11, "with_bcc": 5}
    lake = tmp_path / "lake"
    cli("ingest", "--lake", str(lake), str(out / "mcp"), str(out / "postmark"))
    findings = json.loads(cli("detect", "--lake", str(lake), "--format", "json").stdout)
    assert_postmark_story(findings, m["attacker"], 5, out / "mcp" / "mcp-server-postmark.log", out / "postmark")
