"""The sample incident with the real Claude Code CLI as the agent.

The same story as incident.py, told by the records a Claude Code user has:
Claude Code (headless, against the scripted model endpoint) sends mail
through the MCP SDK e-mail server launched as `npx -y postmark-mcp@VERSION`,
which submits to a real Postfix on loopback. Two sessions on the clean
1.0.15, two on the backdoored 1.0.16 (five messages: enough for
mail.constant_bcc). Every session exports its OpenTelemetry log events
(with tool details) to a local OTLP/HTTP JSON receiver.

    python incident_claude_code.py OUTDIR

Writes OUTDIR/claude-code/<project>/<session>.jsonl (the transcripts, as
under ~/.claude/projects), OUTDIR/otel/claude-code.logs.jsonl (one OTLP
export request per line, as the Collector's file exporter writes them),
OUTDIR/postfix/mail.log, OUTDIR/postmark/ (the provider's records of the
same messages, postmark_export.py) and OUTDIR/manifest.json.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import claude_code_agent  # noqa: E402
import postmark_export  # noqa: E402
from postfix_lab import PostfixLab  # noqa: E402

TOOL = "mcp__postmark__sendEmail"
AGENT_SENDER = "assistant@corp.example"
ATTACKER = "phan@giftshop.club"
SESSIONS = [
    ("1.0.15", [{"to": "Dana Whitfield <dana.whitfield@northwind.example>", "subject": "Quarterly report", "textBody": "Attached."},
                {"to": "mei.lin@contoso.example", "cc": "Manager <manager@corp.example>", "subject": "Meeting notes", "textBody": "Notes."}]),
    ("1.0.15", [{"to": "raj.patel@northwind.example", "subject": "Invoice question", "textBody": "Which invoice?"}]),
    ("1.0.16", [{"to": "oscar@contoso.example", "subject": "Contract draft", "textBody": "Draft attached."},
                {"to": "ghopper@fabrikam.example", "cc": "t.becker@fabrikam.example", "subject": "Project timeline", "textBody": "Timeline."},
                {"to": "Ines Duarte <ines@tailspin.example>", "subject": "Shipping update", "textBody": "Shipped."}]),
    ("1.0.16", [{"to": "kofi.mensah@wingtip.example", "subject": "Weekly summary", "textBody": "Summary."},
                {"to": "Sam Carter <sam@litware.example>", "subject": "Re: pricing", "textBody": "Prices."}]),
]


def run(outdir: Path) -> dict:
    if why := claude_code_agent.available():
        sys.exit(why)
    outdir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="mcpf-incident-cc-"))
    home = work / "home"
    manifest = {"agent": f"claude-code {claude_code_agent.version()}", "agent_sender": AGENT_SENDER, "attacker": ATTACKER,
                "year": datetime.now(timezone.utc).year, "alias": {}, "sessions": [], "tool_calls": []}
    otel = outdir / "otel" / "claude-code.jsonl"
    otel.parent.mkdir(parents=True, exist_ok=True)
    if otel.with_name("claude-code.logs.jsonl").exists():
        otel.with_name("claude-code.logs.jsonl").unlink()
    with PostfixLab(Path(tempfile.mkdtemp(prefix="mcpf-incident-cc-postfix-"))) as lab:
        for n, (version, calls) in enumerate(SESSIONS, 1):
            servers = {"postmark": {"command": str(HERE / "shim" / "npx"), "args": ["-y", f"postmark-mcp@{version}"],
                                    "env": {"MCPF_SMTP_PORT": str(lab.smtp_port), "MCPF_PYTHON": sys.executable}}}
            steps = [{"tool_use": {"name": TOOL, "input": c}} for c in calls] + [{"text": "All sent."}]
            r = claude_code_agent.run_session(home, work / "crm", servers, steps, "Send the follow-up e-mails.",
                                              [TOOL], work / f"stream-{n}.jsonl", otel_out=otel)
            ids = claude_code_agent.message_ids(r["stream"])
            manifest["sessions"].append({"version": version, "calls": len(calls)})
            manifest["tool_calls"] += [{"message_id": mid, "arguments": c, "version": version} for mid, c in zip(ids, calls)]
        lab.wait_idle()
        (outdir / "postfix").mkdir(exist_ok=True)
        shutil.copyfile(lab.log_path, outdir / "postfix" / "mail.log")
    dest = outdir / "claude-code"
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(home / ".claude" / "projects", dest)
    manifest["postmark_export"] = postmark_export.export(outdir, manifest)
    (outdir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return manifest


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir", type=Path)
    print(json.dumps(run(ap.parse_args().outdir), indent=2))
