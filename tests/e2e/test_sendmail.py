"""The sample incident with a real Sendmail as the mail server: the same MCP
SDK client and e-mail server, clean 1.0.15 then backdoored 1.0.16, submitting
to Sendmail on loopback (sendmail_lab.py: Debian's sendmail 8.17 with a
private sendmail.cf built by m4, relaying to smtp-sink, its syslog captured
into an rsyslog-style maillog; the alias expands in Sendmail). Then
mcp-forensics reads only Claude Desktop's MCP log and Sendmail's maillog.
"""
from __future__ import annotations

import json
import re
import shutil
import smtplib
import sys
import tempfile
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "harness"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import incident  # noqa: E402
import sendmail_lab  # noqa: E402
from test_incident import cli, require_cli  # noqa: E402

MALICIOUS_CALLS = 5


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    require_cli(postfix=False)
    if why := sendmail_lab.available():
        pytest.skip(why)
    out = tmp_path_factory.mktemp("incident-sendmail")
    manifest = incident.run(out, benign=8, malicious=MALICIOUS_CALLS, pace=0.05, mta="sendmail")
    lake = out / "lake"
    r = cli("ingest", "--lake", str(lake), "-v", "--year", str(manifest["year"]), str(out / "mcp"), str(out / "sendmail"))
    findings = json.loads(cli("detect", "--lake", str(lake), "--format", "json").stdout)
    return out, manifest, lake, findings, r.stderr


def syslog_ts(line: str, year: int) -> str:
    m = re.match(r"(\w{3}) +(\d+) (\d\d:\d\d:\d\d)", line)
    t = datetime.strptime(f"{year} {m[1]} {m[2]} {m[3]}", "%Y %b %d %H:%M:%S").replace(tzinfo=timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def to_list(line: str) -> list[str]:
    """The recipients of a Sendmail `to=` line (`to=<a>,<b>, delay=...`)."""
    m = re.search(r": to=(.*?), (?:ctladdr|delay)=", line)
    return [r.strip().strip("<>").lower() for r in m[1].split(",")] if m else []


def test_sendmail_wrote_the_backdoor_copy_and_the_alias(run):
    out, manifest, _, _, summary = run
    lines = (out / "sendmail" / "maillog").read_text().splitlines()
    attacker = manifest["attacker"]
    # Written as rsyslog's file template: `Mon DD HH:MM:SS mx1 sm-mta[PID]: ...`.
    assert all(re.match(r"[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d mx1 (sm-mta|sendmail)\[\d+\]: ", l) for l in lines), lines[:3]
    hits = [l for l in lines if attacker in to_list(l)]
    assert len(hits) == MALICIOUS_CALLS and all("stat=Sent" in l and "mailer=esmtp" in l for l in hits), hits
    # The alias expanded inside Sendmail: its members are delivered, the alias is no recipient.
    if incident.ALIAS in json.dumps(manifest["tool_calls"]):
        assert any(set(incident.ALIAS_MEMBERS) <= set(to_list(l)) for l in lines)
        assert not any(incident.ALIAS in to_list(l) for l in lines)
    n, p, r, s = map(int, re.search(r"lines: (\d+) = (\d+) parsed \+ (\d+) rejected \+ (\d+) skipped", summary).groups())
    assert n == p + r + s and r == 0, summary


def attacker_finding(findings, attacker):
    return [f for f in findings if f["rule_id"] == "mail.unintended_recipient" and f["address"] == attacker]


def test_unintended_recipient_and_constant_bcc_from_sendmail(run):
    out, manifest, lake, findings, _ = run
    attacker = manifest["attacker"]
    u = attacker_finding(findings, attacker)
    assert [(f["address"], f["count"], f["version"], f["sender"]) for f in u] == [(attacker, MALICIOUS_CALLS, manifest["malicious_version"], manifest["agent_sender"])], u
    path = out / "sendmail" / "maillog"
    lines = path.read_text().splitlines()
    ev = [e for e in u[0]["evidence"] if e["table"] == "mail_deliveries"]
    assert len(ev) == MALICIOUS_CALLS, ev
    for e in ev:
        assert Path(e["source_file"]).resolve() == path.resolve(), e
        line = lines[e["source_line"] - 1]
        assert attacker in to_list(line) and "stat=Sent" in line, line
    first = min(e["source_line"] for e in ev)
    assert u[0]["first_seen"] == syslog_ts(lines[first - 1], manifest["year"])
    # Matched to the calls by the Message-ID the tool returned (the `from=` line's msgid=).
    assert "matched by message_id" in u[0]["detail"], u[0]["detail"]
    c = [f for f in findings if f["rule_id"] == "mail.constant_bcc"]
    assert [f["address"] for f in c] == [attacker], c
    assert "inferred from the pattern" in c[0]["detail"], c[0]["detail"]
    # No contact or the manager is named (the alias and its members: see the next test).
    benign = {x[1] for x in incident.CONTACTS} | {incident.MANAGER}
    assert not ({f.get("address") for f in findings if f.get("address")} & benign)
    # Every message Sendmail accepted (`from=` with nrcpts > 0) has its row, all delivered.
    msgs = [json.loads(l) for l in cli("sql", "--lake", str(lake), "--format", "jsonl", "SELECT final_state, delivered, recipients FROM mail_messages").stdout.splitlines()]
    accepted = sum(1 for l in lines if re.search(r": from=.*, nrcpts=[1-9]", l))
    assert len(msgs) == accepted and all(m["final_state"] == "delivered" and m["delivered"] == m["recipients"] for m in msgs), msgs


def test_alias_members_are_not_unintended_recipients(run):
    out, manifest, lake, findings, _ = run
    if incident.ALIAS not in json.dumps(manifest["tool_calls"]):
        pytest.skip("no tool call mailed the alias in this run")
    assert any(re.search(rf": alias <{re.escape(incident.ALIAS)}> => ", l) for l in (out / "sendmail" / "maillog").read_text().splitlines())
    named = {f["address"] for f in findings if f["rule_id"] == "mail.unintended_recipient"}
    assert named == {manifest["attacker"]}, named


def _msg(subject, to):
    m = EmailMessage()
    m["From"], m["To"], m["Subject"], m["Message-ID"] = "carol@corp.example", ", ".join(to), subject, make_msgid(domain="corp.example")
    m.set_content("hello")
    return m


@pytest.fixture(scope="module", params=[9, 11], ids=["LogLevel9", "LogLevel11"])
def outcomes(request, tmp_path_factory):
    """Every outcome the lab's real Sendmail logs, at Sendmail's default
    LogLevel 9 and at 11: an alias expansion, a deferral retried by the queue
    runs until Timeout.queuereturn bounces it (DSN child), a delivery that
    fails after acceptance (DSN child), a refusal by the access db
    (check_rcpt), an unknown local user at RCPT, and the MSP (`sendmail`
    command line) handing a message to the daemon."""
    require_cli(postfix=False)
    if why := sendmail_lab.available():
        pytest.skip(why)
    tmp = tmp_path_factory.mktemp(f"sendmail-outcomes-{request.param}")
    work = Path(tempfile.mkdtemp(prefix="mcpf-sendmail-outcomes-"))
    lab = sendmail_lab.SendmailLab(work, virtual_aliases={"team@lists.corp.example": ["alice@corp.example", "bob.ops@corp.example"]},
                                   failed_recipients={"gone@corp.example": "mailbox no longer exists"},
                                   deferred_domains=["defer.lab.example"], rejected_recipients={"nobody@corp.example": "no such user here"},
                                   log_level=request.param)
    with lab:
        with smtplib.SMTP("127.0.0.1", lab.smtp_port, local_hostname="client.lab.example") as s:
            s.send_message(_msg("Team update", ["team@lists.corp.example"]))
            s.send_message(_msg("Invoice", ["alice@corp.example"]), to_addrs=["alice@corp.example", "mallory@evil.example"])
            s.send_message(_msg("Will defer", ["bob@defer.lab.example"]))
            s.send_message(_msg("Will fail", ["gone@corp.example"]))
            refused = s.sendmail("carol@corp.example", ["x@corp.example", "nobody@corp.example", "nosuch@mx1.lab.example"], b"Subject: x\r\n\r\nx\r\n")
            assert set(refused) == {"nobody@corp.example", "nosuch@mx1.lab.example"}, refused
        lab.submit(_msg("Via the MSP", ["dave@corp.example"]).as_string(), "carol@corp.example", "dave@corp.example")
        lab.wait_idle(timeout=90)
    log = tmp / "maillog"
    log.write_bytes(lab.log_path.read_bytes())
    shutil.rmtree(work, ignore_errors=True)
    lake = tmp / "lake"
    r = cli("ingest", "--lake", str(lake), str(log))
    rows = json.loads(cli("sql", "--lake", str(lake), "--format", "json",
                          "SELECT recipient, orig_recipient, sender, status, delivery_kind, next_queue_id, notification_of, dsn, response, queue_id, source_line "
                          "FROM mail_deliveries ORDER BY source_line, recipient").stdout)
    msgs = {m["queue_id"]: m for m in json.loads(cli("sql", "--lake", str(lake), "--format", "json",
                                                     "SELECT queue_id, host, final_state, filtered_to, filtered_from, notification_of FROM mail_messages").stdout)}
    return request.param, log.read_text().splitlines(), rows, msgs, r.stderr


def test_outcomes_of_a_real_sendmail_read_back(outcomes):
    level, lines, rows, msgs, summary = outcomes
    raw = lambda pattern: [i + 1 for i, l in enumerate(lines) if re.search(pattern, l)]  # noqa: E731
    by = lambda rcpt: [x for x in rows if x["recipient"] == rcpt]  # noqa: E731
    n, p, r, s = map(int, re.search(r"lines: (\d+) = (\d+) parsed \+ (\d+) rejected \+ (\d+) skipped", summary).groups())
    assert n == p + r + s == len(lines) and r == 0, summary

    # The alias: one `to=` line listing both members, sent to the smart host.
    team = raw(r": to=alice@corp\.example,bob\.ops@corp\.example, .*mailer=esmtp, .*stat=Sent")
    assert len(team) == 1
    assert [(x["status"], x["delivery_kind"]) for x in by("bob.ops@corp.example")] == [("sent", "egress")]
    assert {x["source_line"] for x in by("bob.ops@corp.example")} == set(team)
    assert bool(raw(r": alias <team@lists\.corp\.example> => alice@corp\.example, bob\.ops@corp\.example$")) == (level >= 11)
    assert [x["status"] for x in by("mallory@evil.example")] == ["sent"]

    # The deferral: every attempt a `Deferred: Connection refused` row, then
    # Timeout.queuereturn gives up with a DSN under a child queue id.
    deferred = [x for x in by("bob@defer.lab.example") if x["status"] != "expired"]
    attempts = raw(r": to=<bob@defer\.lab\.example>, .*dsn=4\.4\.1, stat=Deferred: Connection refused by \[127\.0\.0\.1\]")
    assert len(attempts) >= 2 and [x["source_line"] for x in deferred] == attempts
    assert {(x["status"], x["dsn"]) for x in deferred} == {("deferred", "4.4.1")}
    qid = deferred[0]["queue_id"]
    expiry = [l for l in lines if re.search(rf": {qid}: \w+: DSN: Cannot send message for ", l)]
    assert len(expiry) == 1, expiry
    expiry_child = expiry[0].split(": ")[2]
    # Giving up is an `expired` row at the DSN line (Sendmail writes no `stat=` for it).
    expired = [x for x in by("bob@defer.lab.example") if x["status"] == "expired"]
    assert [x["source_line"] for x in expired] == [lines.index(expiry[0]) + 1], expired
    assert expired[0]["response"].startswith("DSN: Cannot send message for "), expired

    # The failure after acceptance: the alias is a program exiting EX_NOUSER.
    failed = raw(r': to="\|exit 67", ctladdr=<gone@corp\.example> .*mailer=prog, .*dsn=5\.1\.1, stat=User unknown')
    assert len(failed) == 1
    gone = [x for x in rows if x["source_line"] == failed[0]]
    assert [(x["status"], x["delivery_kind"], x["dsn"]) for x in gone] == [("bounced", "local", "5.1.1")], gone
    failed_child = re.search(rf": {gone[0]['queue_id']}: (\w+): DSN: User unknown", "\n".join(lines))[1]

    # The two bounces go back to the sender from the null sender, each naming the message it reports on.
    bounces = sorted((x["queue_id"], x["notification_of"], x["sender"], x["status"]) for x in by("carol@corp.example"))
    assert bounces == sorted([(expiry_child, qid, "", "sent"), (failed_child, gone[0]["queue_id"], "", "sent")]), bounces
    assert msgs[failed_child]["notification_of"] == gone[0]["queue_id"] and msgs[expiry_child]["notification_of"] == qid

    # Refused at RCPT: the access db (check_rcpt) and an unknown local user.
    assert raw(r"ruleset=check_rcpt, arg1=<nobody@corp\.example>, relay=localhost \[127\.0\.0\.1\], reject=550 5\.7\.1 ")
    assert [(x["status"], x["delivery_kind"], x["dsn"]) for x in by("nobody@corp.example")] == [("rejected", "none", "5.7.1")]
    assert "no such user here" in by("nobody@corp.example")[0]["response"]
    assert raw(r": <nosuch@mx1\.lab\.example>\.\.\. User unknown$")
    assert [(x["status"], x["response"]) for x in by("nosuch@mx1.lab.example")] == [("rejected", "User unknown")]
    assert [x["status"] for x in by("x@corp.example")] == ["sent"]

    # The MSP: `sendmail[PID]` relays to the daemon, which queues it under a new id.
    handoff = [l for l in lines if re.search(r" sendmail\[\d+\]: \w+: to=dave@corp\.example, .*mailer=relay, .*stat=Sent \(\w+ Message accepted for delivery\)", l)]
    assert len(handoff) == 1, handoff
    msp_qid, daemon_qid = re.search(r": (\w+): to=.*stat=Sent \((\w+) Message", handoff[0]).groups()
    dave = by("dave@corp.example")
    assert [(x["queue_id"], x["status"], x["delivery_kind"], x["next_queue_id"]) for x in dave] == [
        (msp_qid, "sent", "filter_hop", daemon_qid), (daemon_qid, "sent", "egress", None)], dave
    # It leaves once: the MSP's message is `filtered` into the daemon's, which is delivered.
    assert (msgs[msp_qid]["final_state"], msgs[msp_qid]["filtered_to"]) == ("filtered", daemon_qid)
    assert (msgs[daemon_qid]["final_state"], msgs[daemon_qid]["filtered_from"]) == ("delivered", msp_qid)


# What the parser does not yet read from these real lines (crates/formats/src/mail/sendmail.rs).
# strict: once the parser learns it, the test passes and pytest reports it, so the marker goes.

def test_refused_recipients_carry_the_sender(outcomes):
    _, _, rows, _, _ = outcomes
    assert {x["sender"] for x in rows if x["status"] == "rejected"} == {"carol@corp.example"}


def test_a_message_given_up_is_not_still_queued(outcomes):
    _, _, rows, msgs, _ = outcomes
    qid = next(x["queue_id"] for x in rows if x["recipient"] == "bob@defer.lab.example")
    assert msgs[qid]["final_state"] in ("expired", "bounced"), msgs[qid]


def test_alias_members_name_the_alias(outcomes):
    level, _, rows, _, _ = outcomes
    if level < 11:
        pytest.skip("at LogLevel 9 Sendmail logs no alias expansion")
    assert {x["orig_recipient"] for x in rows if x["recipient"] == "bob.ops@corp.example"} == {"team@lists.corp.example"}
