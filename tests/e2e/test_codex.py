"""End to end with the real Codex CLI as the agent: Codex (headless, `codex
exec --json`, against the scripted Responses endpoint) calls the MCP SDK
e-mail server, launched as `npx -y postmark-mcp@VERSION` from its
config.toml, which submits to a real Postfix on loopback. Two runs on the
clean 1.0.15, two on the backdoored 1.0.16 (five messages: enough for
mail.constant_bcc). Then mcp-forensics reads only what Codex and Postfix
wrote: the rollouts under CODEX_HOME/sessions (and, separately, the
`--json` event streams) and the mail log.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HARNESS = ROOT / "tests" / "harness"
sys.path.insert(0, str(HARNESS))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import codex_agent  # noqa: E402
import postfix_lab  # noqa: E402
from agent_runs import ATTACKER, BIN, SENDS, cli, ingest_and_detect, rows  # noqa: E402



@pytest.fixture(scope="module")
def run(tmp_path_factory):
    for why in (postfix_lab.available(), codex_agent.available()):
        if why:
            pytest.skip(why)
    if not Path(BIN).exists():
        pytest.skip(f"{BIN} not built (scripts/test.sh builds it)")
    out = tmp_path_factory.mktemp("codex")
    home = out / "home"
    streams = out / "exec-json"
    streams.mkdir()
    sessions = []
    # Postfix's daemons run as the postfix user: its folder must not sit under
    # pytest's private (0700) temporary tree.
    with postfix_lab.PostfixLab(Path(tempfile.mkdtemp(prefix="mcpf-codex-postfix-"))) as lab:
        n = 0
        for version, batches in SENDS.items():
            for calls in batches:
                n += 1
                servers = {"postmark": {"command": str(HARNESS / "shim" / "npx"), "args": ["-y", f"postmark-mcp@{version}"],
                                        "env": {"MCPF_SMTP_PORT": str(lab.smtp_port), "MCPF_PYTHON": sys.executable}}}
                steps = [{"call": {"namespace": "mcp__postmark", "name": "sendEmail", "arguments": c}} for c in calls] + [{"text": "All sent."}]
                r = codex_agent.run_session(home, out / "work", servers, steps, "Send the follow-up e-mails.", streams / f"run-{n}.jsonl")
                sessions.append({"version": version, "calls": calls, **r})
        lab.wait_idle()
    rollouts = sorted((home / ".codex" / "sessions").rglob("rollout-*.jsonl"))
    return out, rollouts, lab.log_path, sessions



def test_codex_wrote_one_rollout_per_run_with_its_mcp_calls(run):
    _, rollouts, _, sessions = run
    assert len(rollouts) == len(sessions)
    for r, s in zip(sorted(rollouts), sessions):
        lines = [json.loads(l) for l in r.read_text().splitlines() if l.strip()]
        items = [l["payload"]["item"] for l in lines if l["type"] == "event_msg" and l["payload"].get("type") == "item_completed"]
        mcp = [i for i in items if i.get("type") == "McpToolCall"]
        assert len(mcp) == len(s["calls"]) and all(i["server"] == "postmark" and i["status"] == "completed" for i in mcp), mcp


def test_rollouts_and_mail_log_name_the_backdoor(run):
    out, rollouts, mail_log, sessions = run
    lake, findings = ingest_and_detect(out, "lake-rollouts", *rollouts, mail_log)
    want_calls = sum(len(s["calls"]) for s in sessions)
    calls = rows(lake, "SELECT server_name, tool_name, host_tool_name, tool_name_split, ts_end IS NOT NULL AS answered, is_error FROM tool_calls")
    assert len(calls) == want_calls
    assert all(c["server_name"] == "postmark" and c["tool_name"] == "sendEmail" and c["host_tool_name"] == "mcp__postmark__sendEmail"
               and c["tool_name_split"] == "exact" and c["answered"] and not c["is_error"] for c in calls), calls
    assert rows(lake, "SELECT DISTINCT client_name, client_version FROM mcp_sessions") == [{"client_name": "codex", "client_version": codex_agent.version()}]
    by_rule: dict[str, list] = {}
    for f in findings:
        by_rule.setdefault(f["rule_id"], []).append(f)
    unintended = by_rule.get("mail.unintended_recipient", [])
    assert [f["address"] for f in unintended] == [ATTACKER], findings
    assert unintended[0]["count"] == sum(len(b) for b in SENDS["1.0.16"])
    assert [f["address"] for f in by_rule.get("mail.constant_bcc", [])] == [ATTACKER]
    files = {e["source_file"] for e in unintended[0]["evidence"]}
    assert str(mail_log) in files
    assert any("/.codex/sessions/" in f for f in files), files
    for e in unintended[0]["evidence"]:
        if "/.codex/sessions/" in e["source_file"]:
            line = json.loads(Path(e["source_file"]).read_text().splitlines()[e["source_line"] - 1])
            assert line["payload"]["type"] == "function_call" and line["payload"]["namespace"] == "mcp__postmark"
    benign = {c["to"].split("<")[-1].rstrip(">").lower() for s in sessions for c in s["calls"]}
    assert not [f for f in findings if (f.get("address") or "").lower() in benign], findings


def test_exec_json_alone_gives_the_same_calls(run):
    out, _, mail_log, sessions = run
    lake, findings = ingest_and_detect(out, "lake-exec", out / "exec-json", mail_log)
    want = sum(len(s["calls"]) for s in sessions)
    assert rows(lake, "SELECT count(*) AS n, count(ts_end) AS answered, count(DISTINCT session_id) AS sessions FROM tool_calls") == [
        {"n": want, "answered": want, "sessions": len(sessions)}]
    assert [f["address"] for f in findings if f["rule_id"] == "mail.unintended_recipient"] == [ATTACKER]


def test_a_cold_rollout_rewritten_as_zstd_is_the_same_session(run, tmp_path):
    """Codex rewrites cold rollouts as rollout-*.jsonl.zst: read compressed,
    it gives the same calls."""
    if not shutil.which("zstd"):
        pytest.skip("the zstd command is not installed (Debian package zstd)")
    _, rollouts, _, _ = run
    plain = rollouts[-1]
    packed = tmp_path / (plain.name + ".zst")
    subprocess.run(["zstd", "-q", "-o", str(packed), str(plain)], check=True)
    a, b = tmp_path / "plain", tmp_path / "packed"
    cli("ingest", "--lake", str(a), str(plain))
    cli("ingest", "--lake", str(b), str(packed))
    sql = "SELECT session_id, rpc_id, tool_name, arguments_json, ts, ts_end, source_line FROM tool_calls ORDER BY ts, rpc_id"
    assert rows(a, sql) == rows(b, sql) and rows(a, sql)


def test_config_toml_written_by_codex_mcp_add(tmp_path):
    """Codex's own `codex mcp add` writes the servers; their launch (pinned or
    not), env and header names, never values, become mcp_server_configs."""
    if why := codex_agent.available():
        pytest.skip(why)
    if not Path(BIN).exists():
        pytest.skip(f"{BIN} not built (scripts/test.sh builds it)")
    home = tmp_path / "home"
    codex_agent.mcp_add(home, "postmark", ["npx", "-y", "postmark-mcp"], env={"POSTMARK_SERVER_TOKEN": "pm-secret-value"})
    codex_agent.mcp_add(home, "mail-pinned", ["npx", "-y", "postmark-mcp@1.0.15"])
    config = codex_agent.mcp_add(home, "remote", url="https://mcp.example.com/mcp", bearer_token_env_var="MAIL_TOKEN")
    text = config.read_text()
    assert "[mcp_servers.postmark]" in text and "pm-secret-value" in text  # what Codex wrote
    lake, findings = ingest_and_detect(tmp_path, "lake", config)
    got = {r["server_name"]: r for r in rows(lake, "SELECT * FROM mcp_server_configs")}
    assert set(got) == {"postmark", "mail-pinned", "remote"}
    assert {r["client"] for r in got.values()} == {"codex"}
    pm, pinned, remote = got["postmark"], got["mail-pinned"], got["remote"]
    assert (pm["transport"], pm["package_name"], pm["package_pinned"], pm["env_names"]) == ("stdio", "postmark-mcp", False, "POSTMARK_SERVER_TOKEN")
    assert (pinned["package_version"], pinned["package_pinned"]) == ("1.0.15", True)
    assert (remote["transport"], remote["url"], remote["header_names"]) == ("http", "https://mcp.example.com/mcp", "Authorization")
    lines = text.splitlines()
    for r in got.values():
        assert lines[r["source_line"] - 1] == f"[mcp_servers.{r['server_name']}]"
        assert r["source_pointer"] == f"/mcp_servers/{r['server_name']}"
    assert "pm-secret-value" not in json.dumps(rows(lake, "SELECT * FROM mcp_server_configs"))
    unpinned = [f for f in findings if f["rule_id"] == "mcp.unpinned_server"]
    assert [f["server"] for f in unpinned] == ["postmark"], unpinned
