"""End to end with the real Gemini CLI as the agent: Gemini CLI (headless,
`gemini -p … -o stream-json`, against the scripted Gemini API) calls the MCP
SDK e-mail server, launched as `npx -y postmark-mcp@VERSION` from its
settings.json, which submits to a real Postfix on loopback. Two runs on the
clean 1.0.15, two on the backdoored 1.0.16 (five messages: enough for
mail.constant_bcc). Then mcp-forensics reads only what Gemini CLI and
Postfix wrote: the chat recordings under HOME/.gemini/tmp/<project>/chats
(and, separately, the stream-json outputs) and the mail log.
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HARNESS = ROOT / "tests" / "harness"
sys.path.insert(0, str(HARNESS))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import gemini_agent  # noqa: E402
import postfix_lab  # noqa: E402
from agent_runs import ATTACKER, BIN, SENDS, ingest_and_detect, rows  # noqa: E402

# Gemini CLI names an MCP tool mcp_<server>_<tool>.
TOOL = "mcp_postmark_sendEmail"


def _ms(text: str):
    """A timestamp to the millisecond, however it is written (a whole second
    prints as 11:57:35Z in SQL, as 11:57:35.000Z in Gemini CLI's records)."""
    from datetime import datetime, timezone
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    t = t if t.tzinfo else t.replace(tzinfo=timezone.utc)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    for why in (postfix_lab.available(), gemini_agent.available()):
        if why:
            pytest.skip(why)
    if not Path(BIN).exists():
        pytest.skip(f"{BIN} not built (scripts/test.sh builds it)")
    out = tmp_path_factory.mktemp("gemini")
    home = out / "home"
    streams = out / "stream-json"
    streams.mkdir()
    sessions = []
    # Postfix's daemons run as the postfix user: its folder must not sit under
    # pytest's private (0700) temporary tree.
    with postfix_lab.PostfixLab(Path(tempfile.mkdtemp(prefix="mcpf-gemini-postfix-"))) as lab:
        n = 0
        for version, batches in SENDS.items():
            for calls in batches:
                n += 1
                servers = {"postmark": {"command": str(HARNESS / "shim" / "npx"), "args": ["-y", f"postmark-mcp@{version}"],
                                        "env": {"MCPF_SMTP_PORT": str(lab.smtp_port), "MCPF_PYTHON": sys.executable}}}
                steps = [{"call": {"name": TOOL, "args": c}} for c in calls] + [{"text": "All sent."}]
                r = gemini_agent.run_session(home, out / "work", servers, steps, "Send the follow-up e-mails.", streams / f"run-{n}.jsonl")
                sessions.append({"version": version, "calls": calls, **r})
        lab.wait_idle()
    chats = gemini_agent.chats(home)
    return out, chats, lab.log_path, sessions


def _records(path: Path) -> list[dict]:
    return [json.loads(l) for l in path.read_text().splitlines() if l.strip()]


def _recorded_calls(chat: Path) -> dict[str, dict]:
    """The tool calls of a chat recording, by id, as last written (a message
    is appended again as its calls progress)."""
    calls = {}
    for rec in _records(chat):
        for c in rec.get("toolCalls") or []:
            calls[c["id"]] = c
    return calls


def test_gemini_wrote_one_chat_recording_per_run_with_its_mcp_calls(run):
    _, chats, _, sessions = run
    assert len(chats) == len(sessions), chats
    by_session = {_records(c)[0]["sessionId"]: c for c in chats}
    for s in sessions:
        init = _records(s["stream"])[0]
        assert init["type"] == "init"
        chat = by_session[init["session_id"]]
        assert _records(chat)[0].get("projectHash")
        calls = list(_recorded_calls(chat).values())
        assert [c["args"] for c in calls] == s["calls"]
        assert all(c["name"] == TOOL and c["status"] == "success" for c in calls), calls
        # Every request went to the local endpoint, and the script was followed.
        assert s["requests"] and all(q["path"].startswith("/v1beta/models/") for q in s["requests"]), s["requests"]


def test_chat_recordings_and_mail_log_name_the_backdoor(run):
    out, chats, mail_log, sessions = run
    lake, findings = ingest_and_detect(out, "lake-chats", *chats, mail_log)
    # Every call in the raw recordings is one tool_calls row, split into server and tool.
    want_ids = {i for c in chats for i in _recorded_calls(c)}
    assert len(want_ids) == sum(len(s["calls"]) for s in sessions)
    calls = rows(lake, "SELECT rpc_id, server_name, tool_name, host_tool_name, tool_name_split, ts_end IS NOT NULL AS answered, "
                       "is_error, source_file FROM tool_calls")
    assert {str(c["rpc_id"]) for c in calls} == want_ids and len(calls) == len(want_ids), calls
    assert all(c["server_name"] == "postmark" and c["tool_name"] == "sendEmail" and c["host_tool_name"] == TOOL
               and c["tool_name_split"] == "exact" and c["answered"] and not c["is_error"] for c in calls), calls
    assert {c["source_file"] for c in calls} == {str(c) for c in chats}
    assert rows(lake, "SELECT DISTINCT client_name FROM mcp_sessions") == [{"client_name": "gemini-cli"}]
    # A call starts when the model asked for it (its message's time) and ends
    # when Gemini CLI recorded it done (the call's own time), as stream-json says.
    for c in chats:
        for line in Path(c).read_text().splitlines():
            rec = json.loads(line)
            for call in rec.get("toolCalls") or []:
                got = rows(lake, f"SELECT CAST(ts AS VARCHAR) AS ts, CAST(ts_end AS VARCHAR) AS ts_end FROM tool_calls WHERE rpc_id = '{call['id']}'")
                assert got and _ms(got[0]["ts"]) == _ms(rec["timestamp"]) and _ms(got[0]["ts_end"]) == _ms(call["timestamp"]), (got, rec["timestamp"], call["timestamp"])
    by_rule: dict[str, list] = {}
    for f in findings:
        by_rule.setdefault(f["rule_id"], []).append(f)
    unintended = by_rule.get("mail.unintended_recipient", [])
    assert [f["address"] for f in unintended] == [ATTACKER], findings
    assert unintended[0]["count"] == sum(len(b) for b in SENDS["1.0.16"])
    assert [f["address"] for f in by_rule.get("mail.constant_bcc", [])] == [ATTACKER]
    # Evidence points into the chat recordings (the calls) and the mail log (the deliveries).
    files = {e["source_file"] for e in unintended[0]["evidence"]}
    assert str(mail_log) in files
    assert any("/.gemini/tmp/" in f and "/chats/session-" in f for f in files), files
    for e in unintended[0]["evidence"]:
        if "/.gemini/tmp/" in e["source_file"]:
            line = json.loads(Path(e["source_file"]).read_text().splitlines()[e["source_line"] - 1])
            assert line["type"] == "gemini" and any(c["name"] == TOOL for c in line["toolCalls"]), line
    benign = {c["to"].split("<")[-1].rstrip(">").lower() for s in sessions for c in s["calls"]}
    assert not [f for f in findings if (f.get("address") or "").lower() in benign], findings


def test_stream_json_alone_gives_the_same_calls(run):
    out, _, mail_log, sessions = run
    lake, findings = ingest_and_detect(out, "lake-stream", out / "stream-json", mail_log)
    want = sum(len(s["calls"]) for s in sessions)
    assert rows(lake, "SELECT count(*) AS n, count(ts_end) AS answered, count(DISTINCT session_id) AS sessions FROM tool_calls") == [
        {"n": want, "answered": want, "sessions": len(sessions)}]
    assert rows(lake, "SELECT DISTINCT server_name, tool_name, tool_name_split FROM tool_calls") == [
        {"server_name": "postmark", "tool_name": "sendEmail", "tool_name_split": "exact"}]
    unintended = [f for f in findings if f["rule_id"] == "mail.unintended_recipient"]
    assert [f["address"] for f in unintended] == [ATTACKER], findings
    assert any("/stream-json/run-" in e["source_file"] for e in unintended[0]["evidence"]), unintended[0]["evidence"]


def test_settings_json_written_by_gemini_mcp_add(tmp_path):
    """Gemini CLI's own `gemini mcp add` writes the servers (user scope into
    ~/.gemini/settings.json, project scope into .gemini/settings.json); their
    launch (pinned or not), transport, env and header names, never values,
    become mcp_server_configs."""
    if why := gemini_agent.available():
        pytest.skip(why)
    if not Path(BIN).exists():
        pytest.skip(f"{BIN} not built (scripts/test.sh builds it)")
    home, work = tmp_path / "home", tmp_path / "work"
    user = gemini_agent.mcp_add(home, work, "user", "postmark", "npx", ["-y", "postmark-mcp"], env={"POSTMARK_SERVER_TOKEN": "pm-secret-value"})
    gemini_agent.mcp_add(home, work, "user", "mail-pinned", "npx", ["-y", "postmark-mcp@1.0.15"])
    gemini_agent.mcp_add(home, work, "user", "remote", "https://mcp.example.com/mcp", transport="http",
                         headers={"Authorization": "Bearer tok-secret-value"})
    project = gemini_agent.mcp_add(home, work, "project", "sse-remote", "https://mcp.example.com/sse", transport="sse")
    text = user.read_text()
    assert '"postmark"' in text and "pm-secret-value" in text and "tok-secret-value" in text  # what Gemini CLI wrote
    lake, findings = ingest_and_detect(tmp_path, "lake", user, project)
    got = {r["server_name"]: r for r in rows(lake, "SELECT * FROM mcp_server_configs")}
    assert set(got) == {"postmark", "mail-pinned", "remote", "sse-remote"}
    pm, pinned, remote, sse = got["postmark"], got["mail-pinned"], got["remote"], got["sse-remote"]
    assert (pm["transport"], pm["package_name"], pm["package_pinned"], pm["env_names"]) == ("stdio", "postmark-mcp", False, "POSTMARK_SERVER_TOKEN")
    assert (pinned["package_version"], pinned["package_pinned"]) == ("1.0.15", True)
    assert (remote["transport"], remote["url"], remote["header_names"]) == ("http", "https://mcp.example.com/mcp", "Authorization")
    assert (sse["transport"], sse["url"], sse["source_file"]) == ("sse", "https://mcp.example.com/sse", str(project))
    for r in got.values():
        assert r["source_pointer"] == f"/mcpServers/{r['server_name']}"
        assert r["client"] == "gemini_cli", r
    stored = json.dumps(rows(lake, "SELECT * FROM mcp_server_configs"))
    assert "pm-secret-value" not in stored and "tok-secret-value" not in stored
    unpinned = [f for f in findings if f["rule_id"] == "mcp.unpinned_server"]
    assert [f["server"] for f in unpinned] == ["postmark"], unpinned
