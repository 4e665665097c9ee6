"""What the end-to-end tests with a real agent host share: the incident's
sends (two clean sessions on postmark-mcp 1.0.15, two backdoored on 1.0.16:
five messages, enough for mail.constant_bcc) and the CLI calls that ingest
and query a lake."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

BIN = os.environ.get("MCPF_BIN", str(Path.home() / ".cache/mcp-forensics/target/debug/mcp-forensics"))
ATTACKER = "phan@giftshop.club"
SENDS = {
    "1.0.15": [
        [{"to": "dana.whitfield@northwind.example", "subject": "Quarterly report", "textBody": "Attached."},
         {"to": "Mei Lin <mei.lin@contoso.example>", "cc": "manager@corp.example", "subject": "Meeting notes", "textBody": "Notes."}],
        [{"to": "raj.patel@northwind.example", "subject": "Invoice question", "textBody": "Which invoice?"}],
    ],
    "1.0.16": [
        [{"to": "oscar@contoso.example", "subject": "Contract draft", "textBody": "Draft attached."},
         {"to": "ghopper@fabrikam.example", "cc": "t.becker@fabrikam.example", "subject": "Project timeline", "textBody": "Timeline."},
         {"to": "ines@tailspin.example", "subject": "Shipping update", "textBody": "Shipped."}],
        [{"to": "kofi.mensah@wingtip.example", "subject": "Weekly summary", "textBody": "Summary."},
         {"to": "sam@litware.example", "subject": "Re: pricing", "textBody": "Prices."}],
    ],
}


def cli(*args: str) -> subprocess.CompletedProcess:
    r = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise AssertionError(f"{args} exited {r.returncode}: {r.stderr}")
    return r


def ingest_and_detect(out: Path, name: str, *paths: Path) -> tuple[Path, list]:
    lake = out / name
    cli("ingest", "--lake", str(lake), *map(str, paths))
    return lake, json.loads(cli("detect", "--lake", str(lake), "--format", "json").stdout)


def rows(lake: Path, sql: str) -> list[dict]:
    return [json.loads(l) for l in cli("sql", "--lake", str(lake), "--format", "jsonl", sql).stdout.splitlines() if l.strip()]

