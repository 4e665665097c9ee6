"""The Postmark form of an incident run: what the provider would return.

In the real postmark-mcp incident the stolen copy never touched the victim's
MTA: the tool put `Bcc` in the payload it posted to Postmark, and Postmark's
records are the egress evidence. This derives, for every message the agent
sent in a run of `incident.py`, the records Postmark's API returns, in the
exact shape of the real recordings in
`../shared/real-logs/providers/postmark/postmarker-decoded/`:

- `postmark/outbound-messages.json`: `GET /messages/outbound` search results
  (`{"TotalCount", "Messages": [...]}`, keys as in messages-01);
- `postmark/outbound-details.jsonl`: one `GET /messages/outbound/{id}/details`
  document per line (what a curl loop writes; keys as in messages-02), with
  a `Delivered` event per recipient whose `DeliveryMessage` and
  `DestinationServer` come from that recipient's real delivery line.

Facts taken from the run: MessageIDs are the ones the tool returned to the
agent; To/Cc from the tool call's arguments; Bcc and Recipients from the
envelope recipients Postfix delivered (the backdoor's extra recipient is the
only Bcc); times from Postfix's lines of that message.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from email.utils import getaddresses
from pathlib import Path

EASTERN = timezone(timedelta(hours=-5))  # Postmark's API answers in US Eastern time


def _postmark_time(t: datetime) -> str:
    # Real recordings: 2017-02-25T13:59:44.0453616-05:00 (7 fractional digits)
    return t.astimezone(EASTERN).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}0" + "-05:00"


def _parse_mail_log(path: Path, year: int) -> tuple[dict, dict]:
    """message-id → (time, queue id); queue id → [(to, time, relay, response)]."""
    line_re = re.compile(r"^(\w{3}) +(\d+) (\d\d:\d\d:\d\d) \S+ postfix/(\w+)\[\d+\]: ([0-9A-F]+): (.*)$")
    by_mid, deliveries = {}, {}
    for line in path.read_text().splitlines():
        m = line_re.match(line)
        if not m:
            continue
        t = datetime.strptime(f"{year} {m[1]} {m[2]} {m[3]}", "%Y %b %d %H:%M:%S").replace(tzinfo=timezone.utc)
        qid, rest = m[5], m[6]
        if rest.startswith("message-id=<"):
            by_mid[rest[len("message-id=<"):-1]] = (t, qid)
        elif rest.startswith("to=<"):
            to = rest[4:rest.index(">")]
            relay = re.search(r"relay=([^,]+)", rest)
            resp = re.search(r"status=\w+ \((.*)\)$", rest)
            deliveries.setdefault(qid, []).append((to, t, relay[1] if relay else None, resp[1] if resp else None))
    return by_mid, deliveries


def _people(text: str | None) -> list[dict]:
    return [{"Email": a, "Name": n} for n, a in getaddresses([text])] if text else []


def export(outdir: Path, manifest: dict) -> dict:
    outdir = Path(outdir)
    by_mid, deliveries = _parse_mail_log(outdir / "postfix" / "mail.log", manifest["year"])
    messages, details = [], []
    for call in manifest["tool_calls"]:
        mid = call["message_id"]
        if not mid or mid not in by_mid:
            continue
        t, qid = by_mid[mid]
        args = call["arguments"]
        to, cc = _people(args.get("to")), _people(args.get("cc"))
        shown = {p["Email"].lower() for p in to + cc}
        delivered = deliveries.get(qid, [])
        recipients = sorted({d[0] for d in delivered} | shown)
        # Alias members are the list's expansion, not extra recipients: only
        # envelope recipients absent from To/Cc and from every alias are Bcc.
        expanded = {m for members in manifest.get("alias", {}).values() for m in members}
        bcc = [{"Email": r, "Name": ""} for r in recipients if r not in shown and r not in expanded]
        recipients = sorted((shown | {b["Email"] for b in bcc}))
        common = {
            "TrackLinks": "None",
            "Bcc": bcc,
            "Subject": args.get("subject", ""),
            "Recipients": recipients,
        }
        tail = {"TrackOpens": True, "From": args.get("sender") or manifest["agent_sender"], "ReceivedAt": _postmark_time(t)}
        messages.append({**common, **tail, "Attachments": [], "Cc": cc, "Status": "Sent", "MessageID": mid, "To": to})
        events = [{
            "ReceivedAt": _postmark_time(dt),
            "Details": {"DeliveryMessage": f"smtp;{resp}" if resp else "", "DestinationIP": "127.0.0.1", "DestinationServer": relay or ""},
            "Type": "Delivered",
            "Recipient": rcpt,
        } for rcpt, dt, relay, resp in delivered if rcpt in recipients]
        details.append({**common, "MessageEvents": events, **tail, "Body": args.get("textBody", ""), "Attachments": [],
                        "HtmlBody": "", "Cc": cc, "Status": "Sent", "MessageID": mid, "To": to})
    pm = outdir / "postmark"
    pm.mkdir(exist_ok=True)
    (pm / "outbound-messages.json").write_text(json.dumps({"Messages": messages, "TotalCount": len(messages)}) + "\n")
    (pm / "outbound-details.jsonl").write_text("".join(json.dumps(d) + "\n" for d in details))
    return {"messages": len(messages), "with_bcc": sum(1 for m in messages if m["Bcc"])}
