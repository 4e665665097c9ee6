"""`mcp-forensics record` with real components: the official MCP SDK client
and server (stdio and Streamable HTTP) through the recorder, a real Postfix
behind the e-mail server, then `verify`, `ingest` and `detect` on what it
wrote.

- stdio: every byte passes unchanged both ways (tee'd on the server's side
  and compared with what the client sent and received), stderr and exit
  status and signals pass through;
- the sample incident played through `record` instead of the tap: ingest of
  its files plus the Postfix log names the attacker;
- `verify` names the file and record of an edited byte, a removed record, a
  reorder, a cut tail, a removed rotated file, and checkpoint mismatches;
- HTTP: SDK client through `--listen/--upstream`, stateful (SSE,
  Mcp-Session-Id) and stateless (JSON) servers; identical bytes for the same
  request; credentials recorded as hashes only;
- fail open and `--fail-closed` when the disk refuses writes (RLIMIT_FSIZE);
- `--redact` masks what the DLP rule would report.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HARNESS = ROOT / "tests" / "harness"
sys.path.insert(0, str(HARNESS))

import incident  # noqa: E402
import postfix_lab  # noqa: E402

BIN = os.environ.get("MCPF_BIN", str(Path.home() / ".cache/mcp-forensics/target/debug/mcp-forensics"))
PY = sys.executable
EMAIL = HARNESS / "email_mcp_server.py"
ECHO = HARNESS / "echo_mcp_server.py"


def require_bin() -> None:
    if not Path(BIN).exists():
        pytest.skip(f"{BIN} not built (scripts/test.sh builds it)")


def cli(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=300)
    if ok and r.returncode != 0:
        raise AssertionError(f"{args} exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
    return r


def records(out: Path) -> list[dict]:
    rows = []
    for f in sorted(out.glob("*.jsonl"), key=lambda p: int(p.name.rsplit(".", 2)[1])):
        rows += [json.loads(l) for l in f.read_text().splitlines() if l.strip()]
    return rows


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise AssertionError(f"process exited {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


@pytest.fixture(scope="module")
def postfix(tmp_path_factory):
    if why := postfix_lab.available():
        pytest.skip(why)
    require_bin()
    # Under /tmp itself, as incident.py does: Postfix's own users must reach it.
    work = Path(tempfile.mkdtemp(prefix="mcpf-record-postfix-"))
    try:
        with postfix_lab.PostfixLab(work) as lab:
            yield lab
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- stdio -----------------------------------------------------------------

# What a client might send: odd spacing, key order, escapes, non-ASCII, a
# CRLF line end, a notification: none of it may change on the way.
RAW_CLIENT = [
    b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw-client","version":"0.1"}}}\n',
    b'{"method":"notifications/initialized" , "jsonrpc":"2.0"}\r\n',
    b'{"jsonrpc":"2.0","id":"two","method":"tools/list","params":{}}\n',
    '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"sendEmail","arguments":{"to":"Grace Hopper <ghopper@fabrikam.example>","subject":"Caf\\u00e9 \u2013 r\u00e9sum\u00e9","textBody":"Line 1\\nLine 2 \\"quoted\\"","sender":"assistant@corp.example"}}}\n'.encode(),
]


def raw_session(cmd: list[str], lines: list[bytes], preexec=None) -> tuple[bytes, bytes, int]:
    """Write `lines` to a stdio server one by one, reading the response to each request; close stdin; return (stdout, stderr, exit status)."""
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=preexec)
    got = b""
    for line in lines:
        p.stdin.write(line)
        p.stdin.flush()
        if b'"id"' in line:
            got += p.stdout.readline()
    rest, err = p.communicate(timeout=60)  # closes stdin: the client's EOF
    return got + rest, err, p.returncode


def test_stdio_passes_every_byte_unchanged(postfix, tmp_path):
    """The server's side is tee'd: what the client received must be exactly
    what the server wrote, and what the server read exactly what the client sent."""
    server = f"tee {tmp_path}/server_in | {PY} {EMAIL} --package-version 1.0.15 --smtp-port {postfix.smtp_port} | tee {tmp_path}/server_out"
    out = tmp_path / "rec"
    got, err, code = raw_session([BIN, "record", "--out", str(out), "--server-name", "mail", "--", "sh", "-c", server], RAW_CLIENT)
    assert code == 0, err
    assert got == (tmp_path / "server_out").read_bytes(), "the client did not receive the server's bytes unchanged"
    assert (tmp_path / "server_in").read_bytes() == b"".join(RAW_CLIENT), "the server did not receive the client's bytes unchanged"
    assert b"Sending email.." in err, "the server's stderr must pass through"
    assert len(got.splitlines()) == 3 and b'"Email sent successfully!' in got
    # Each message is in the log exactly as it crossed the wire.
    text = next(out.glob("*.jsonl")).read_bytes()
    sent = [l.rstrip(b"\r\n") for l in RAW_CLIENT] + got.splitlines()
    for m in sent:
        assert b'"message":' + m + b',"chain":' in text, m
    rows = records(out)
    kinds = [r.get("event") or r["direction"] for r in rows]
    assert kinds[0] == "start" and kinds[-2:] == ["exit", "close"], kinds
    assert rows[0]["command"][:2] == ["sh", "-c"] and rows[0]["pid"] > 0
    assert any(r.get("event") == "stderr" and "Sending email" in r["text"] for r in rows)
    assert all(r["chain"]["seq"] == i for i, r in enumerate(rows))
    assert "INTACT" in cli("verify", str(out)).stdout


def test_exit_status_and_signals_pass_through(tmp_path):
    require_bin()
    out = tmp_path / "rec"
    p = subprocess.run([BIN, "record", "--out", str(out), "--", "sh", "-c", "cat >/dev/null; echo bye >&2; exit 7"], input=b"", capture_output=True, timeout=30)
    assert p.returncode == 7 and p.stderr == b"bye\n" and p.stdout == b""
    assert records(out)[-2]["code"] == 7
    # A TERM to the recorder (a client stopping its server) reaches the server.
    p = subprocess.Popen([BIN, "record", "--out", str(tmp_path / "t"), "--", "sh", "-c", "trap 'exit 9' TERM; echo ready; while :; do sleep 0.05; done"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert p.stdout.readline() == b"ready\n"
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=20) == 9
    # A server killed by a signal: the recorder ends by the same signal.
    p = subprocess.run([BIN, "record", "--out", str(tmp_path / "k"), "--", "sh", "-c", "kill -KILL $$"], input=b"", timeout=30)
    assert p.returncode == -signal.SIGKILL
    assert records(tmp_path / "k")[-2]["signal"] == signal.SIGKILL
    # The command may also follow without `--`; its own options stay its own.
    p = subprocess.run([BIN, "record", "--out", str(tmp_path / "d"), "sh", "-c", "exit 4", "--sync"], input=b"", capture_output=True, timeout=30)
    assert p.returncode == 4 and records(tmp_path / "d")[0]["command"] == ["sh", "-c", "exit 4", "--sync"], p.stderr
    # A server that cannot start: exit 127, recorded.
    p = subprocess.run([BIN, "record", "--out", str(tmp_path / "n"), "--", "/no/such/server"], input=b"", capture_output=True, timeout=30)
    assert p.returncode == 127 and b"cannot start" in p.stderr
    assert "cannot start" in records(tmp_path / "n")[0]["error"]


# --- the incident through record -------------------------------------------

@pytest.fixture(scope="module")
def recorded_incident(tmp_path_factory):
    if why := postfix_lab.available():
        pytest.skip(why)
    require_bin()
    out = tmp_path_factory.mktemp("recorded")
    manifest = incident.run(out, benign=8, malicious=6, pace=0.02, flavor="postmark", recorder=BIN)
    return out, manifest


def test_the_recorded_incident_names_the_attacker(recorded_incident, tmp_path):
    out, manifest = recorded_incident
    files = sorted((out / "record").glob("*.jsonl"))
    assert len(files) == 3, "one file set per server launch (three sessions)"
    v = cli("verify", str(out / "record"))
    assert v.stdout.count("INTACT") == 3, v.stdout
    lake = tmp_path / "lake"
    ing = cli("ingest", "--lake", str(lake), "-v", str(out / "record"), str(out / "postfix"))
    assert "0 rejected" in ing.stdout + ing.stderr
    findings = json.loads(cli("detect", "--lake", str(lake), "--format", "json").stdout)
    attacker = manifest["attacker"]
    named = {f["rule_id"] for f in findings if attacker in json.dumps(f)}
    assert {"mail.unintended_recipient", "mail.constant_bcc", "mail.new_recipient_after_change"} <= named, sorted((f["rule_id"], f["key"]) for f in findings)
    assert any(f["rule_id"] == "mcp.server_version_change" and "1.0.15 -> 1.0.16" in f["key"] for f in findings)
    # The launch command in the start record gives the package version.
    rows = json.loads(cli("sql", "--lake", str(lake), "--format", "json", "SELECT package_name, package_version, session_source, count(*) AS n FROM mcp_sessions GROUP BY 1, 2, 3 ORDER BY 2").stdout)
    assert [(r["package_name"], r["package_version"], r["n"]) for r in rows] == [("postmark-mcp", "1.0.15", 2), ("postmark-mcp", "1.0.16", 1)], rows
    assert all(r["session_source"] == "recorded" for r in rows)
    # A call is recorded with the process that served it; ingest kept the chain state.
    chains = json.loads(cli("sql", "--lake", str(lake), "--format", "json", "SELECT chain_json FROM _ingest_log WHERE source_format = 'jsonrpc_jsonl'").stdout)
    states = [json.loads(c["chain_json"]) for c in chains]
    assert len(states) == 3 and all(s["state"] == "intact" and s["first_seq"] == 0 for s in states), states
    calls = manifest["tool_calls"]
    n = json.loads(cli("sql", "--lake", str(lake), "--format", "json", "SELECT count(*) AS n FROM tool_calls").stdout)[0]["n"]
    assert n == len(calls)
    # Re-ingest adds nothing.
    again = cli("ingest", "--lake", str(lake), str(out / "record"), str(out / "postfix"))
    assert "0 new" in again.stdout + again.stderr


def tampered(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return sorted(dst.glob("*.jsonl"))[-1]


def verify_problems(path: Path) -> tuple[int, list[dict]]:
    r = cli("verify", "--format", "json", str(path), ok=False)
    chains = [x for x in json.loads(r.stdout) if x["kind"] == "chain"]
    return r.returncode, [p for c in chains for p in c["problems"]]


def test_verify_names_the_file_and_record_of_each_kind_of_tampering(recorded_incident, tmp_path):
    out, _ = recorded_incident
    src = out / "record"
    # One byte edited (a recipient, the kind of change an attacker makes).
    f = tampered(src, tmp_path / "edit")
    lines = f.read_bytes().splitlines(keepends=True)
    i = next(i for i, l in enumerate(lines) if b"tools/call" in l)
    lines[i] = lines[i].replace(b"@", b"#", 1)
    f.write_bytes(b"".join(lines))
    code, probs = verify_problems(tmp_path / "edit")
    assert code == 1 and [(p["kind"], p["line"], Path(p["file"]).name) for p in probs] == [("edited", i + 1, f.name)], probs
    # Ingest keeps the rows, warns, and records the broken chain.
    ing = cli("ingest", "--lake", str(tmp_path / "lake"), str(tmp_path / "edit"))
    assert "hash chain is BROKEN" in ing.stdout + ing.stderr and f"line {i + 1}: edited" in ing.stdout + ing.stderr, ing.stdout + ing.stderr
    states = [json.loads(r["chain_json"])["state"] for r in json.loads(cli("sql", "--lake", str(tmp_path / "lake"), "--format", "json", "SELECT chain_json FROM _ingest_log").stdout)]
    assert sorted(states) == ["broken", "intact", "intact"], states
    # One record deleted.
    f = tampered(src, tmp_path / "delete")
    lines = f.read_bytes().splitlines(keepends=True)
    del lines[4]
    f.write_bytes(b"".join(lines))
    code, probs = verify_problems(tmp_path / "delete")
    assert code == 1 and probs[0]["kind"] == "missing" and probs[0]["line"] == 5 and "record 4 is missing" in probs[0]["detail"], probs
    # Two records swapped.
    f = tampered(src, tmp_path / "swap")
    lines = f.read_bytes().splitlines(keepends=True)
    lines[3], lines[4] = lines[4], lines[3]
    f.write_bytes(b"".join(lines))
    code, probs = verify_problems(tmp_path / "swap")
    assert code == 1 and any(p["kind"] == "reordered" for p in probs) and all(Path(p["file"]).name == f.name for p in probs), probs
    # Cut in the middle of a record.
    f = tampered(src, tmp_path / "cut")
    data = f.read_bytes()
    f.write_bytes(data[: len(data) - 40])
    n = data[: len(data) - 40].count(b"\n") + 1
    code, probs = verify_problems(tmp_path / "cut")
    assert code == 1 and probs == [p for p in probs if p["kind"] == "truncated"] and probs[0]["line"] == n, probs
    table = cli("verify", str(tmp_path / "cut"), ok=False).stdout
    assert f"{f.name}:{n}" in table and "TRUNCATED" in table, table
    # Cut at a record boundary: no close record, the chain is open.
    f = tampered(src, tmp_path / "tail")
    lines = f.read_bytes().splitlines(keepends=True)
    f.write_bytes(b"".join(lines[:-3]))
    r = cli("verify", str(tmp_path / "tail"))
    assert "OPEN" in r.stdout and f"after record {len(lines) - 4}" in r.stdout, r.stdout


def test_rotation_carries_the_chain_and_checkpoints_anchor_it(tmp_path):
    require_bin()
    out = tmp_path / "rec"
    anchors = tmp_path / "anchors.log"
    cmd = [BIN, "record", "--out", str(out), "--server-name", "echo", "--rotate-size", "2K", "--checkpoint-cmd", f"cat >> {anchors}", "--", PY, str(ECHO)]
    lines = [RAW_CLIENT[0], RAW_CLIENT[1]] + [json.dumps({"jsonrpc": "2.0", "id": 10 + i, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "x" * 300}}}).encode() + b"\n" for i in range(12)]
    got, err, code = raw_session(cmd, lines)
    assert code == 0, err
    files = sorted(out.glob("*.jsonl"), key=lambda p: int(p.name.rsplit(".", 2)[1]))
    assert len(files) >= 4, files
    heads = anchors.read_text().splitlines()
    assert len(heads) == len(files) and all(h.startswith("mcpf-checkpoint chain=") for h in heads), heads
    r = cli("verify", "--checkpoints", str(anchors), str(out))
    assert "INTACT" in r.stdout and f"{len(files)}/{len(files)} checkpoints matched" in r.stdout, r.stdout
    # A rotated file removed from the middle.
    gone = tmp_path / "gone"
    shutil.copytree(out, gone)
    mid = sorted(gone.glob("*.jsonl"), key=lambda p: int(p.name.rsplit(".", 2)[1]))[1]
    mid.unlink()
    code, probs = verify_problems(gone)
    assert code == 1 and any(p["kind"] == "missing" and mid.name in p["detail"] for p in probs), probs
    # The last file removed: only the checkpoint shows it.
    last = tmp_path / "last"
    shutil.copytree(out, last)
    sorted(last.glob("*.jsonl"), key=lambda p: int(p.name.rsplit(".", 2)[1]))[-1].unlink()
    r = cli("verify", str(last))
    assert r.returncode == 0 and "INTACT" not in r.stdout, "without the last file the run has no close record"
    r = cli("verify", "--checkpoints", str(anchors), str(last), ok=False)
    assert r.returncode == 1 and "MISSING" in r.stdout and "the file was removed" in r.stdout, r.stdout
    # An edited record that a checkpoint anchored (the last one of a file).
    ed = tmp_path / "edited-anchor"
    shutil.copytree(out, ed)
    f = sorted(ed.glob("*.jsonl"), key=lambda p: int(p.name.rsplit(".", 2)[1]))[-1]
    data = f.read_bytes().splitlines(keepends=True)
    data[-1] = data[-1].replace(b'"event":"close"', b'"event":"close" ')
    f.write_bytes(b"".join(data))
    assert cli("verify", str(ed)).returncode == 0, "an edit of the very last record needs the anchor"
    r = cli("verify", "--checkpoints", str(anchors), str(ed), ok=False)
    assert r.returncode == 1 and "differs from the head a checkpoint anchored" in r.stdout, r.stdout


# --- failures of the disk -----------------------------------------------------

def limited_disk(max_bytes: int):
    """A process whose files cannot grow past max_bytes: writes then fail
    with EFBIG, as on a full disk (SIGXFSZ ignored, as the kernel then errs)."""
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))
    return apply


def echo_calls(n: int, size: int = 400) -> list[bytes]:
    return [RAW_CLIENT[0], RAW_CLIENT[1]] + [json.dumps({"jsonrpc": "2.0", "id": 100 + i, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": f"{i}:" + "y" * size}}}).encode() + b"\n" for i in range(n)]


def test_a_full_disk_is_reported_and_forwarding_goes_on(tmp_path):
    require_bin()
    out = tmp_path / "rec"
    lines = echo_calls(30)
    got, err, code = raw_session([BIN, "record", "--out", str(out), "--", PY, str(ECHO)], lines, preexec=limited_disk(8000))
    assert code == 0
    assert len(got.splitlines()) == 31, "every call must still be answered"
    assert b"cannot write a record" in err and b"forwarding continues" in err, err
    # A failed write ends its file (it may hold part of the record); the
    # next record that can be written starts a new file, after a `lost`
    # record saying how many are missing. (Here each new file can take
    # 8000 bytes again: a per-file limit, unlike a full disk.)
    files = list(out.glob("*.jsonl"))
    assert len(files) > 1 and all(f.stat().st_size <= 8000 for f in files)
    lost = [r for f in files for r in (json.loads(l) for l in f.read_text().splitlines() if l.endswith("}")) if r.get("event") == "lost"]
    assert lost and all(r["records"] >= 1 for r in lost), lost
    code, probs = verify_problems(out)
    assert code == 1 and {p["kind"] for p in probs} == {"truncated", "lost"}, probs


def test_fail_closed_stops_forwarding_when_the_disk_refuses(tmp_path):
    require_bin()
    out = tmp_path / "rec"
    lines = echo_calls(30)
    p = subprocess.Popen([BIN, "record", "--out", str(out), "--fail-closed", "--sync", "--", PY, str(ECHO)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=limited_disk(8000))
    answered = 0
    try:
        for line in lines:
            p.stdin.write(line)
            p.stdin.flush()
            if b'"id"' in line:
                if not p.stdout.readline():
                    break
                answered += 1
    except BrokenPipeError:
        pass
    p.wait(timeout=30)
    err = p.stderr.read()
    assert p.returncode == 75, (p.returncode, err)
    assert 0 < answered < 31 and b"STOPS (--fail-closed)" in err, (answered, err)
    # Nothing was forwarded that is not recorded: every answer the client got is in the log.
    text = b"".join(f.read_bytes() for f in out.glob("*.jsonl"))
    assert text.count(b'"direction":"server_to_client"') >= answered


def test_an_unusable_output_folder_fails_open_or_closed(tmp_path):
    require_bin()
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    r = subprocess.run([BIN, "record", "--out", str(blocker / "sub"), "--", "sh", "-c", "cat"], input=b'{"jsonrpc":"2.0","id":1,"method":"ping"}\n', capture_output=True, timeout=30)
    assert r.returncode == 0 and r.stdout == b'{"jsonrpc":"2.0","id":1,"method":"ping"}\n' and b"forwarding without recording" in r.stderr
    r = subprocess.run([BIN, "record", "--out", str(blocker / "sub"), "--fail-closed", "--", "sh", "-c", "cat"], input=b"{}\n", capture_output=True, timeout=30)
    assert r.returncode == 2 and r.stdout == b"" and b"not starting" in r.stderr


# --- --redact ------------------------------------------------------------------

def test_redact_masks_secrets_in_what_is_recorded_only(postfix, tmp_path):
    out = tmp_path / "rec"
    key, card = "AKIAIOSFODNN7EXAMPLE", "4111 1111 1111 1111"
    call = json.dumps({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "sendEmail", "arguments": {"to": "bob@partner.example", "subject": "hi", "textBody": f"key {key} card {card}"}}}).encode() + b"\n"
    server = f"tee {tmp_path}/server_in | {PY} {EMAIL} --package-version 1.0.15 --smtp-port {postfix.smtp_port}"
    got, err, code = raw_session([BIN, "record", "--out", str(out), "--redact", "--", "sh", "-c", server], RAW_CLIENT[:2] + [call])
    assert code == 0, err
    assert (tmp_path / "server_in").read_bytes().endswith(call), "the server must receive the secret unchanged"
    text = b"".join(f.read_bytes() for f in out.glob("*.jsonl")).decode()
    assert key not in text and card not in text
    rec = next(r for r in records(out) if r.get("redacted"))
    assert rec["redacted"]["kinds"] == ["AWS access key id", "payment card number"]
    assert rec["redacted"]["original_sha256"] == hashlib.sha256(call.rstrip(b"\n")).hexdigest()
    lake = tmp_path / "lake"
    cli("ingest", "--lake", str(lake), str(out))
    findings = json.loads(cli("detect", "--lake", str(lake), "--rule", "mcp.sensitive_data_in_arguments", "--format", "json").stdout)
    assert findings == [], "masked arguments no longer carry the secret"


# --- Streamable HTTP ------------------------------------------------------------

class HttpLab:
    """An SDK server over Streamable HTTP and `record --listen` in front of it."""

    def __init__(self, tmp: Path, server_args: list[str], record_args: list[str] = ()):
        self.up_port, self.port = free_port(), free_port()
        self.out = tmp / "rec"
        self.server = subprocess.Popen([PY, *server_args, "--http", f"127.0.0.1:{self.up_port}"], stderr=subprocess.DEVNULL, start_new_session=True)
        wait_port(self.up_port, self.server)
        self.rec = subprocess.Popen([BIN, "record", "--out", str(self.out), "--server-name", "mail-http", "--listen", f"127.0.0.1:{self.port}",
                                     "--upstream", f"http://127.0.0.1:{self.up_port}/mcp", *record_args], stderr=subprocess.PIPE)
        wait_port(self.port, self.rec)

    def stop(self) -> None:
        self.rec.send_signal(signal.SIGTERM)
        assert self.rec.wait(timeout=20) == 0
        os.killpg(self.server.pid, signal.SIGTERM)
        self.server.wait(timeout=20)


async def sdk_calls(url: str, calls: list[dict], headers: dict | None = None) -> list[str]:
    import httpx2
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client
    texts = []
    async with httpx2.AsyncClient(headers=headers or {}, timeout=30) as http:
        async with streamable_http_client(url, http_client=http) as streams:
            async with ClientSession(streams[0], streams[1]) as s:
                await s.initialize()
                await s.list_tools()
                for args in calls:
                    r = await s.call_tool("sendEmail", arguments=args)
                    texts.append("".join(getattr(c, "text", "") for c in r.content))
    return texts


@pytest.mark.parametrize("mode", ["sse", "stateless"])
def test_http_proxy_with_the_sdk_client_and_server(postfix, tmp_path, mode):
    args = [str(EMAIL), "--package-version", "1.0.16", "--smtp-port", str(postfix.smtp_port)] + (["--stateless"] if mode == "stateless" else [])
    lab = HttpLab(tmp_path, args)
    try:
        calls = [{"to": f"user{i}@partner.example", "subject": f"s{i}", "textBody": "hello"} for i in range(3)]
        token = "Bearer s3cr3t-token-0123456789"
        texts = asyncio.run(sdk_calls(f"http://127.0.0.1:{lab.port}/mcp", calls, {"Authorization": token}))
        assert len(texts) == 3 and all("Email sent successfully" in t for t in texts)
        # The same deterministic request, direct and through the recorder: same status, headers that matter, bytes.
        if mode == "stateless":
            import httpx2
            req = {"jsonrpc": "2.0", "id": 7, "method": "tools/list", "params": {}}
            hdrs = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json", "MCP-Protocol-Version": "2025-06-18"}
            direct = httpx2.post(f"http://127.0.0.1:{lab.up_port}/mcp", json=req, headers=hdrs)
            proxied = httpx2.post(f"http://127.0.0.1:{lab.port}/mcp", json=req, headers=hdrs)
            assert (proxied.status_code, proxied.headers["content-type"], proxied.content) == (direct.status_code, direct.headers["content-type"], direct.content)
            missing = httpx2.get(f"http://127.0.0.1:{lab.port}/nowhere")
            assert missing.status_code == httpx2.get(f"http://127.0.0.1:{lab.up_port}/nowhere").status_code == 404
    finally:
        lab.stop()
    text = b"".join(f.read_bytes() for f in lab.out.glob("*.jsonl")).decode()
    assert "s3cr3t-token" not in text
    assert hashlib.sha256(token.encode()).hexdigest() in text
    rows = records(lab.out)
    msgs = [r for r in rows if "message" in r]
    results = [r for r in msgs if r["direction"] == "server_to_client" and "result" in r["message"] and "content" in r["message"]["result"]]
    assert [("".join(c["text"] for c in r["message"]["result"]["content"])) for r in results] == texts
    assert all(r["http"]["status"] == 200 for r in results)
    if mode == "sse":
        assert all(r["http"]["headers"]["content-type"].startswith("text/event-stream") and "sse" in r["http"] for r in results)
        sessions = {r.get("session") for r in msgs}
        assert len(sessions) == 1 and None not in sessions, "every message, the initialize too, names the Mcp-Session-Id"
    else:
        assert all("session" not in r for r in msgs), "a stateless server has no session"
    assert "INTACT" in cli("verify", str(lab.out)).stdout
    lake = tmp_path / "lake"
    cli("ingest", "--lake", str(lake), str(lab.out), str(postfix.log_path))
    sessions = json.loads(cli("sql", "--lake", str(lake), "--format", "json", "SELECT session_source, messages FROM mcp_sessions").stdout)
    want = "recorded" if mode == "sse" else "connection"
    assert [s["session_source"] for s in sessions] == [want] and sessions[0]["messages"] > 0, sessions
    n = json.loads(cli("sql", "--lake", str(lake), "--format", "json", "SELECT count(*) AS n FROM tool_calls WHERE ts_end IS NOT NULL").stdout)[0]["n"]
    assert n == 3, "each call paired with its response"


# --- a real agent host launching its server through record --------------------

def test_claude_code_launches_its_server_through_record(tmp_path):
    """Claude Code (headless, scripted model) configured as the README says:
    `claude mcp add … -- mcp-forensics record … -- npx -y postmark-mcp@1.0.16`.
    Its calls reach the server through the recorder, and the recording plus
    the Postfix log name the attacker."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import claude_code_agent
    for why in (postfix_lab.available(), claude_code_agent.available()):
        if why:
            pytest.skip(why)
    require_bin()
    home, work, rec = tmp_path / "home", tmp_path / "work", tmp_path / "rec"
    record_args = [BIN, "record", "--out", str(rec), "--server-name", "postmark", "--", str(HARNESS / "shim" / "npx"), "-y", "postmark-mcp@1.0.16"]
    # The README's `claude mcp add` line keeps the recorder's own `--`.
    claude_code_agent.add_server(home, work, "project", "postmark", ["--", *record_args])
    stored = json.loads((work / ".mcp.json").read_text())["mcpServers"]["postmark"]
    assert [stored["command"], *stored["args"]] == record_args, stored
    tool = "mcp__postmark__sendEmail"
    calls = [{"to": "oscar@contoso.example", "subject": "Contract draft", "textBody": "Draft attached."},
             {"to": "ghopper@fabrikam.example", "subject": "Timeline", "textBody": "Timeline."},
             {"to": "kofi.mensah@wingtip.example", "subject": "Visit", "textBody": "See you."},
             {"to": "priya@lucerne.example", "subject": "Invoice", "textBody": "Attached."}]
    work_postfix = Path(tempfile.mkdtemp(prefix="mcpf-rec-cc-postfix-"))
    try:
        with postfix_lab.PostfixLab(work_postfix) as lab:
            servers = {"postmark": {"command": BIN, "args": record_args[1:], "env": {"MCPF_SMTP_PORT": str(lab.smtp_port), "MCPF_PYTHON": sys.executable}}}
            steps = [{"tool_use": {"name": tool, "input": c}} for c in calls] + [{"text": "All sent."}]
            claude_code_agent.run_session(home, work, servers, steps, "Send the e-mails.", [tool], tmp_path / "stream.jsonl")
            lab.wait_idle()
            shutil.copy(lab.log_path, tmp_path / "mail.log")
    finally:
        shutil.rmtree(work_postfix, ignore_errors=True)
    rows = records(rec)
    # The first request: `initialize`, or the 2026-07-28 protocol's
    # `server/discover` with the client's info in _meta.
    first = next(r["message"] for r in rows if r.get("direction") == "client_to_server")
    params = first.get("params") or {}
    info = params.get("clientInfo") or (params.get("_meta") or {}).get("io.modelcontextprotocol/clientInfo") or {}
    assert first["method"] in ("initialize", "server/discover") and info.get("name") == "claude-code", first
    assert rows[0]["command"][-1] == "postmark-mcp@1.0.16"
    assert "INTACT" in cli("verify", str(rec)).stdout
    lake = tmp_path / "lake"
    cli("ingest", "--lake", str(lake), str(rec), str(tmp_path / "mail.log"))
    findings = json.loads(cli("detect", "--lake", str(lake), "--format", "json").stdout)
    hit = [f for f in findings if f["rule_id"] == "mail.unintended_recipient" and f["address"] == "phan@giftshop.club"]
    assert hit and hit[0]["count"] == len(calls), [(f["rule_id"], f["key"], f["count"]) for f in findings]
    assert hit[0]["version"] == "1.0.16"


def test_the_version_that_ran_is_read_from_the_package_cache(tmp_path):
    """An unpinned `npx -y fake-mcp`: the command line names no version; the
    recorder finds the package.json npx's cache holds, through the command
    lines of the server's processes (as real npx runs node on the cached path)."""
    require_bin()
    pkg = tmp_path / "npm" / "_npx" / "3f2a9c" / "node_modules" / "fake-mcp"
    pkg.mkdir(parents=True)
    (pkg / "package.json").write_text(json.dumps({"name": "fake-mcp", "version": "2.3.4"}))
    (pkg / "server.py").write_text(f"import runpy, sys\nsys.path.insert(0, {str(HARNESS)!r})\nrunpy.run_path({str(ECHO)!r}, run_name='__main__')\n")
    shim = tmp_path / "bin" / "npx"
    shim.parent.mkdir()
    # A child process, not exec: the server runs under npx, as with npm.
    shim.write_text(f"#!/bin/sh\n{PY} {pkg / 'server.py'}\nexit $?\n")
    shim.chmod(0o755)
    out = tmp_path / "rec"
    p = subprocess.Popen([BIN, "record", "--out", str(out), "--", str(shim), "-y", "fake-mcp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    p.stdin.write(RAW_CLIENT[0])
    p.stdin.flush()
    assert p.stdout.readline()
    time.sleep(1.5)  # the recorder looks after 0.3 s and 1 s
    p.stdin.close()
    assert p.wait(timeout=30) == 0
    rows = records(out)
    assert rows[0]["package"] == {"manager": "npx", "name": "fake-mcp", "spec": "fake-mcp", "requested_version": None, "pinned": False}
    found = [r for r in rows if r.get("event") == "package"]
    assert found and found[0]["package"]["version"] == "2.3.4" and found[0]["package"]["from"] == str(pkg / "package.json"), rows
