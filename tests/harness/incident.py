"""The sample incident, played by real components.

A real Postfix (loopback, relaying to smtp-sink) carries the mail; an MCP
client on the official SDK plays the agent; it reaches the e-mail MCP server
through the stdio tap, which writes the Claude-Desktop-style log and the
JSONL wire log. First the server runs a clean version for a while, then the
package is bumped to the backdoored version, which silently adds one
envelope recipient. Other senders mail through the same relay without any
agent (benign background), including an alias that Postfix expands.

    python incident.py OUTDIR [--benign N] [--malicious N] [--pace SECONDS]

Writes OUTDIR/mcp/mcp-server-NAME.log, OUTDIR/wire/NAME.jsonl,
OUTDIR/postfix/mail.log and OUTDIR/manifest.json (what was done, for tests);
with --flavor postmark (the default) also OUTDIR/postmark/ (postmark_export.py);
with --otel also the MCP SDK's own spans as OTLP JSON (sdk_otel.py):
OUTDIR/otel/agent.spans.jsonl (the client's) and OUTDIR/otel/server.spans.jsonl
(the server's). --otel installs a process-wide tracer provider, so it is a
command-line option only: tests run it in a child process.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import smtplib
import sys
import tempfile
import time
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import sdk_otel  # noqa: E402
from postfix_lab import PostfixLab  # noqa: E402

from mcp import ClientSession, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402

SERVER_NAME = "mail-relay"
AGENT_SENDER = "assistant@corp.example"
CLEAN_VERSION = "1.0.15"
MALICIOUS_VERSION = "1.0.16"
ATTACKER = "phan@giftshop.club"
ALIAS = "team@lists.corp.example"
ALIAS_MEMBERS = ["alice@corp.example", "bob.ops@corp.example"]

CONTACTS = [
    ("Dana Whitfield", "dana.whitfield@northwind.example"),
    ("Raj Patel", "raj.patel@northwind.example"),
    ("Mei Lin", "mei.lin@contoso.example"),
    ("Oscar Ruiz", "oscar@contoso.example"),
    ("Grace Hopper", "ghopper@fabrikam.example"),
    ("Tom Becker", "t.becker@fabrikam.example"),
    ("Ines Duarte", "ines@tailspin.example"),
    ("Kofi Mensah", "kofi.mensah@wingtip.example"),
    ("Lena Novak", "lena.novak@adventure-works.example"),
    ("Sam Carter", "sam@litware.example"),
    ("Yuki Tanaka", "yuki.tanaka@proseware.example"),
    ("Ahmed Khan", "ahmed.khan@woodgrove.example"),
    ("Priya Nair", "priya@lucerne.example"),
    ("Jon Ekberg", "jon.ekberg@margie.example"),
]
MANAGER = "manager@corp.example"
SUBJECTS = ["Follow-up on our call", "Quarterly report", "Invoice question", "Meeting notes",
            "Contract draft", "Shipping update", "Project timeline", "Re: pricing", "Weekly summary"]


def plan_calls(rng: random.Random, n: int) -> list[dict]:
    """Tool-call arguments an agent would send: varied recipients and forms."""
    calls = []
    for i in range(n):
        name, addr = rng.choice(CONTACTS)
        form = rng.random()
        if form < 0.25:
            to = f"{name} <{addr}>"  # display-name form
        elif form < 0.35:
            to = addr.upper() if "@" in addr else addr  # letter case
        else:
            to = addr
        args = {"to": to, "subject": rng.choice(SUBJECTS), "textBody": f"Hello {name.split()[0]},\n\nPlease see below.\n\nBest,\nAssistant",
                "sender": AGENT_SENDER}
        r = rng.random()
        if r < 0.3:
            others = rng.sample([c for c in CONTACTS if c[1] != addr], 2)
            args["cc"] = ", ".join([MANAGER] + [o[1] for o in others[:1]])
        elif r < 0.4:
            args["cc"] = ALIAS
        calls.append(args)
    return calls


async def agent_session(tap_cmd: list[str], version: str, calls: list[dict], smtp_port: int, pace: float,
                        results: list, flavor: str = "relay") -> None:
    if flavor == "postmark":
        # As Claude Desktop launched the real package; the shim stands in for npm.
        server_cmd = [str(HERE / "shim" / "npx"), "-y", f"postmark-mcp@{version}"]
    else:
        server_cmd = [sys.executable, str(HERE / "email_mcp_server.py"), "--package-version", version, "--smtp-port", str(smtp_port)]
    env = {"MCPF_SMTP_PORT": str(smtp_port), "MCPF_PYTHON": sys.executable}
    if os.environ.get(sdk_otel.ENV_FILE):
        env[sdk_otel.ENV_FILE] = os.environ[sdk_otel.ENV_FILE]
    params = StdioServerParameters(command=tap_cmd[0], args=tap_cmd[1:] + ["--"] + server_cmd, env=env)
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            await session.list_tools()
            for args in calls:
                r = await session.call_tool("sendEmail", arguments=args)
                text = "".join(getattr(c, "text", "") for c in r.content)
                mid = next((l.split(":", 1)[1].strip() for l in text.splitlines() if l.startswith("MessageID:")), None)
                results.append({"version": version, "arguments": args, "message_id": mid, "is_error": bool(r.is_error)})
                await asyncio.sleep(pace)


def background_mail(port: int, rng: random.Random, n: int) -> list[dict]:
    """Mail from people, not agents: other senders, one recipient each."""
    sent = []
    senders = ["billing@corp.example", "hr@corp.example", "sales@corp.example"]
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for i in range(n):
            sender = senders[i % len(senders)]
            _, to = rng.choice(CONTACTS)
            msg = EmailMessage()
            msg["From"], msg["To"], msg["Subject"] = sender, to, rng.choice(SUBJECTS)
            msg["Date"], msg["Message-ID"] = formatdate(usegmt=True), make_msgid(domain="corp.example")
            msg.set_content("Regards")
            smtp.send_message(msg)
            sent.append({"sender": sender, "to": to})
    return sent


def run(outdir: Path, benign: int, malicious: int, pace: float, seed: int = 7, flavor: str = "relay", mta: str = "postfix",
        recorder: str | None = None) -> dict:
    """flavor "relay": the server's serverInfo.version moves with the package;
    flavor "postmark": launched as `npx -y postmark-mcp@VERSION`, serverInfo
    stays "1.0.0" (as the real package), and a Postmark export is derived.
    mta "postfix" writes OUTDIR/postfix/mail.log; "exim" runs the mail through
    a real Exim instead (exim_lab.py) and writes OUTDIR/exim/mainlog;
    "sendmail" through a real Sendmail (sendmail_lab.py), OUTDIR/sendmail/maillog.
    recorder: the path of an mcp-forensics binary: the agent launches its
    server through `mcp-forensics record --out OUTDIR/record` instead of the
    stdio tap (no Desktop log or wire/ file is written then)."""
    rng = random.Random(seed)
    outdir = Path(outdir)
    server_name = "postmark" if flavor == "postmark" else SERVER_NAME
    for sub in ("mcp", "wire", mta):
        (outdir / sub).mkdir(parents=True, exist_ok=True)
    desktop = outdir / "mcp" / f"mcp-server-{server_name}.log"
    wire = outdir / "wire" / f"{server_name}.jsonl"
    for f in (desktop, wire):
        f.unlink(missing_ok=True)
    tap_cmd = [sys.executable, str(HERE / "stdio_tap.py"), "--name", server_name, "--desktop-log", str(desktop), "--wire-log", str(wire)]
    if recorder:
        tap_cmd = [recorder, "record", "--out", str(outdir / "record"), "--server-name", server_name]
    work = Path(tempfile.mkdtemp(prefix=f"mcpf-{mta}-"))
    results: list = []
    if mta == "exim":
        from exim_lab import EximLab
        lab = EximLab(work, virtual_aliases={ALIAS: ALIAS_MEMBERS})
    elif mta == "sendmail":
        from sendmail_lab import SendmailLab
        lab = SendmailLab(work, virtual_aliases={ALIAS: ALIAS_MEMBERS})
    else:
        lab = PostfixLab(work, virtual_aliases={ALIAS: ALIAS_MEMBERS})
    with lab:
        clean = plan_calls(rng, benign)
        half = len(clean) // 2
        bg = background_mail(lab.smtp_port, rng, 6)
        asyncio.run(agent_session(tap_cmd, CLEAN_VERSION, clean[:half], lab.smtp_port, pace, results, flavor))
        bg += background_mail(lab.smtp_port, rng, 6)
        asyncio.run(agent_session(tap_cmd, CLEAN_VERSION, clean[half:], lab.smtp_port, pace, results, flavor))
        bg += background_mail(lab.smtp_port, rng, 6)
        asyncio.run(agent_session(tap_cmd, MALICIOUS_VERSION, plan_calls(rng, malicious), lab.smtp_port, pace, results, flavor))
        bg += background_mail(lab.smtp_port, rng, 6)
        lab.wait_idle()
    shutil.copy(lab.log_path, outdir / mta / {"exim": "mainlog", "sendmail": "maillog"}.get(mta, "mail.log"))
    shutil.rmtree(work, ignore_errors=True)
    manifest = {
        "description": "Sample incident: an e-mail MCP server turns malicious at a version bump and adds a silent envelope recipient.",
        "generated_by": f"tests/harness/incident.py (real {({'exim': 'Exim', 'sendmail': 'Sendmail'}).get(mta, 'Postfix')} + smtp-sink, MCP SDK client and server, stdio tap)",
        "mta": mta,
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "year": datetime.now(timezone.utc).year,
        "server_name": server_name,
        "flavor": flavor,
        "server_info_version": "1.0.0" if flavor == "postmark" else None,
        "agent_sender": AGENT_SENDER,
        "clean_version": CLEAN_VERSION,
        "malicious_version": MALICIOUS_VERSION,
        "attacker": ATTACKER,
        "alias": {ALIAS: ALIAS_MEMBERS},
        "tool_calls": results,
        "background_mail": bg,
    }
    if flavor == "postmark":
        import postmark_export
        manifest["postmark_export"] = postmark_export.export(outdir, manifest)
    (outdir / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--benign", type=int, default=30)
    ap.add_argument("--malicious", type=int, default=12)
    ap.add_argument("--pace", type=float, default=0.3)
    ap.add_argument("--flavor", choices=["relay", "postmark"], default="postmark")
    ap.add_argument("--otel", action="store_true", help="also write the MCP SDK's spans to OUTDIR/otel/ (OTLP JSON)")
    a = ap.parse_args()
    t0 = time.time()
    telemetry = None
    if a.otel:
        (a.outdir / "otel").mkdir(parents=True, exist_ok=True)
        for side in ("agent", "server"):
            (a.outdir / "otel" / f"{side}.spans.jsonl").unlink(missing_ok=True)
        # The server processes (one per session) append to one file, as a
        # collector's file exporter would gather them.
        os.environ[sdk_otel.ENV_FILE] = str((a.outdir / "otel" / "server.spans.jsonl").resolve())
        telemetry = sdk_otel.export_to(a.outdir / "otel" / "agent.spans.jsonl", "mail-agent", "1.4.2")
    m = run(a.outdir, a.benign, a.malicious, a.pace, flavor=a.flavor)
    if telemetry:
        telemetry.shutdown()
    print(f"wrote {a.outdir}: {len(m['tool_calls'])} tool calls, {len(m['background_mail'])} background messages in {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
