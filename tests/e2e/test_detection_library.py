"""The detection library as a new user meets it, through the CLI on the
bundled incident: OCSF output that validates against the OCSF models, a user
rule folder used without a rebuild (and a broken rule named), scheduled runs
that print each finding once, verify catching a one-byte edit, timelines for
Timesketch, and --explain showing the raw lines.
"""
from __future__ import annotations

import json
import shutil
import sys
import typing
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_incident import cli, require_cli  # noqa: E402

SAMPLE = ROOT / "sample-logs"


@pytest.fixture()
def sample(tmp_path):
    """A private copy of the bundled incident (tests edit it) and a lake of it."""
    require_cli(postfix=False)
    logs = tmp_path / "logs"
    for d in ("mcp", "postfix", "postmark"):
        shutil.copytree(SAMPLE / d, logs / d)
    manifest = json.loads((SAMPLE / "manifest.json").read_text())
    lake = tmp_path / "lake"
    cli("ingest", "--lake", str(lake), "--year", str(manifest["year"]), str(logs / "mcp"), str(logs / "postfix"))
    return logs, lake, manifest


def _model_fields(model) -> dict:
    """The model's attributes by the names they take in JSON (an alias such
    as Email's `from` for the Python name `from_`)."""
    fields = getattr(model, "model_fields", {})
    return {(f.alias or name): f for name, f in fields.items()}


def _inner_model(annotation):
    """The pydantic model inside Optional[...] / list[...], if any."""
    for arg in typing.get_args(annotation) or ():
        found = _inner_model(arg)
        if found is not None:
            return found
    if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
        return annotation
    return None


def _strict_keys(obj, model, path="$"):
    """Every key we emit must be an attribute the OCSF model defines
    (pydantic ignores unknown keys, so validation alone would not catch a typo)."""
    fields = _model_fields(model)
    if not fields or not isinstance(obj, dict):
        return
    for k, v in obj.items():
        assert k in fields, f"{path}.{k} is not an OCSF attribute of {model.__name__}"
        inner = _inner_model(fields[k].annotation)
        if inner is None:
            continue
        for i, item in enumerate(v if isinstance(v, list) else [v]):
            _strict_keys(item, inner, f"{path}.{k}[{i}]")


def test_ocsf_detection_findings_validate(sample):
    from py_ocsf_models.events.findings.detection_finding import DetectionFinding

    logs, lake, manifest = sample
    out = cli("detect", "--lake", str(lake), "--format", "ocsf").stdout.splitlines()
    assert len(out) >= 3
    ids = []
    for line in out:
        event = json.loads(line)
        DetectionFinding.model_validate(event)
        _strict_keys({k: v for k, v in event.items() if k != "unmapped"}, DetectionFinding)
        assert (event["class_uid"], event["category_uid"], event["type_uid"]) == (2004, 2, 200401)
        assert event["finding_info"]["first_seen_time"] <= event["finding_info"]["last_seen_time"]
        assert event["evidences"] and all("source_file" in e["data"] for e in event["evidences"])
        ids.append(event["finding_info"]["uid"])
    bcc = [json.loads(line) for line in out if json.loads(line)["finding_info"]["analytic"]["uid"] == "mail.unintended_recipient"][0]
    assert {"name": "address", "type_id": 5, "type": "Email Address", "value": manifest["attacker"]} in bcc["observables"]
    assert any(a.get("technique", {}).get("uid") == "T1195" for a in bcc["finding_info"].get("attacks", []))
    # The same finding has the same uid in the next run (a SIEM de-duplicates on it).
    again = [json.loads(line)["finding_info"]["uid"] for line in cli("detect", "--lake", str(lake), "--format", "ocsf").stdout.splitlines()]
    assert again == ids



def test_ocsf_email_activity_of_deliveries_validates(sample):
    """`sql --format ocsf` over mail_deliveries and `timeline --format ocsf`
    write OCSF 1.5 Email Activity (class 4009) that validates against the
    OCSF models, every key an OCSF attribute, provenance kept."""
    from ocsf.v1_5_0.events import EmailActivity

    logs, lake, manifest = sample
    rows = int(cli("sql", "--lake", str(lake), "--format", "csv", "SELECT count(*) AS n FROM mail_deliveries").stdout.splitlines()[1])
    out = cli("sql", "--lake", str(lake), "--format", "ocsf", "SELECT * FROM mail_deliveries").stdout.splitlines()
    assert len(out) == rows > 0
    for line in out:
        event = json.loads(line)
        EmailActivity.model_validate(event)
        _strict_keys({k: v for k, v in event.items() if k != "unmapped"}, EmailActivity)
        assert (event["class_uid"], event["category_uid"]) == (4009, 4)
        assert event["type_uid"] == 400900 + event["activity_id"]
        assert event["unmapped"]["source_file"] and event["unmapped"]["source_line"] >= 1
    sent = [json.loads(line) for line in out if json.loads(line)["activity_id"] == 1]
    assert sent and all(e["direction_id"] == 2 and e["status_id"] == 1 for e in sent)
    # The attacker's timeline as Email Activity: each copy that left for them.
    tl = [json.loads(line) for line in cli("timeline", "--lake", str(lake), "--entity", manifest["attacker"], "--format", "ocsf").stdout.splitlines()]
    assert tl and all(e["email"]["smtp_to"] == [manifest["attacker"]] for e in tl)
    for e in tl:
        EmailActivity.model_validate(e)
    assert len({e["metadata"]["uid"] for e in tl}) == len(tl), "one stable id per delivery row"
    # Not delivery rows: refused with what to do instead.
    bad = cli("sql", "--lake", str(lake), "--format", "ocsf", "SELECT count(*) FROM tool_calls", check=False)
    assert bad.returncode != 0 and "mail_deliveries" in bad.stderr


USER_RULE = """
id = "corp.new_tld"
title = "Agent mail to a .club address"
severity = "medium"
description = "Our agents never mail .club domains."
[parameters.tld]
type = "string"
default = "club"
description = "Top-level domain to flag."
[query]
sql = '''
SELECT recipient AS key, ts, recipient AS unit, recipient AS address, sender, CAST(NULL AS VARCHAR) AS server,
       CAST(NULL AS VARCHAR) AS version, CAST(NULL AS VARCHAR) AS session, concat('mail to .', $tld) AS detail,
       'mail_deliveries' AS evidence_table, source_file, source_line, source_offset
FROM mail_deliveries WHERE ends_with(recipient_domain, concat('.', $tld))
'''
[[tests]]
name = "a .club recipient"
expect = "fire"
[tests.files]
"mail.log" = '''
2026-03-01T10:01:01+00:00 mx postfix/qmgr[3]: AAAA000001: from=<agent@corp.example>, size=100, nrcpt=1 (queue active)
2026-03-01T10:01:01+00:00 mx postfix/smtp[4]: AAAA000001: to=<x@gifts.club>, relay=mx[192.0.2.9]:25, delay=0.2, delays=0/0/0/0.2, dsn=2.0.0, status=sent (250 ok)
'''
[[tests]]
name = "other domains"
expect = "silent"
[tests.files]
"mail.log" = '''
2026-03-01T10:01:01+00:00 mx postfix/qmgr[3]: AAAA000001: from=<agent@corp.example>, size=100, nrcpt=1 (queue active)
2026-03-01T10:01:01+00:00 mx postfix/smtp[4]: AAAA000001: to=<x@clubs.example>, relay=mx[192.0.2.9]:25, delay=0.2, delays=0/0/0/0.2, dsn=2.0.0, status=sent (250 ok)
'''
"""


def test_user_rule_folder_runs_without_rebuild(sample, tmp_path):
    logs, lake, manifest = sample
    rules = tmp_path / "rules.d"
    rules.mkdir()
    (rules / "new_tld.toml").write_text(USER_RULE)
    listed = cli("rules", "list", "--rules", str(rules)).stdout
    assert "corp.new_tld" in listed and "new_tld.toml" in listed
    tested = cli("rules", "test", str(rules))
    assert "2 passed, 0 failed (1 rules)" in tested.stdout, tested.stdout
    found = json.loads(cli("detect", "--lake", str(lake), "--rules", str(rules), "--rule", "corp.new_tld", "--format", "json").stdout)
    assert [f["address"] for f in found] == [manifest["attacker"]]
    # Parameters from a config file, overridden on the command line.
    cfg = tmp_path / "mcpf.toml"
    cfg.write_text('rules = ["rules.d"]\n[params."corp.new_tld"]\ntld = "example"\n')
    by_cfg = json.loads(cli("detect", "--lake", str(lake), "--config", str(cfg), "--rule", "corp.new_tld", "--format", "json").stdout)
    assert by_cfg and all(f["address"].endswith(".example") for f in by_cfg)
    by_flag = json.loads(cli("detect", "--lake", str(lake), "--config", str(cfg), "--param", "corp.new_tld.tld=club", "--rule", "corp.new_tld", "--format", "json").stdout)
    assert [f["address"] for f in by_flag] == [manifest["attacker"]]
    # A broken rule: exit 2 and an error naming the file and the problem.
    (rules / "broken.toml").write_text(USER_RULE.replace("corp.new_tld", "corp.broken").replace("severity = \"medium\"", "severity = \"dire\""))
    r = cli("detect", "--lake", str(lake), "--rules", str(rules), check=False)
    assert r.returncode == 2
    assert "broken.toml" in r.stderr and "dire" in r.stderr, r.stderr
    # A failing fixture fails `rules test` with exit 1.
    (rules / "broken.toml").write_text(USER_RULE.replace("corp.new_tld", "corp.wrong").replace('expect = "silent"', 'expect = "fire"'))
    r = cli("rules", "test", str(rules), check=False)
    assert r.returncode == 1 and "FAIL corp.wrong :: other domains" in r.stdout, r.stdout


def test_scheduled_runs_print_each_finding_once(sample):
    logs, lake, manifest = sample
    first = cli("detect", "--lake", str(lake), "--new-only", "--format", "jsonl")
    night1 = [json.loads(line) for line in first.stdout.splitlines()]
    assert {f["address"] for f in night1 if f["address"]} == {manifest["attacker"]}
    assert "recorded" in first.stderr
    # The next night brings the provider's export: more evidence of the same findings, nothing new.
    cli("ingest", "--lake", str(lake), str(logs / "postmark"))
    second = cli("detect", "--lake", str(lake), "--new-only", "--format", "jsonl")
    assert second.stdout == "", second.stdout
    # ... and --fail-on only counts what is printed.
    assert cli("detect", "--lake", str(lake), "--new-only", "--fail-on", "low", check=False).returncode == 0
    assert cli("detect", "--lake", str(lake), "--fail-on", "low", check=False).returncode == 1
    recorded = json.loads(cli("sql", "--lake", str(lake), "--format", "json", "SELECT finding_id, count FROM _findings").stdout)
    assert {r["finding_id"] for r in recorded} == {f["finding_id"] for f in night1}


def test_verify_reports_a_one_byte_edit(sample):
    logs, lake, manifest = sample
    ok = cli("verify", "--lake", str(lake))
    assert "0 not" in ok.stdout
    target = logs / "postfix" / "mail.log"
    data = bytearray(target.read_bytes())
    i = data.index(manifest["attacker"].encode())
    data[i] = ord("q") if data[i] != ord("q") else ord("p")  # one byte, same length
    target.write_bytes(bytes(data))
    bad = cli("verify", "--lake", str(lake), check=False)
    assert bad.returncode == 1
    line = [l for l in bad.stdout.splitlines() if "mail.log" in l][0]
    assert line.startswith("MODIFIED"), bad.stdout
    rows = json.loads(cli("verify", "--lake", str(lake), "--format", "json", check=False).stdout)
    assert [r["state"] for r in rows if r["source_file"].endswith("mail.log")] == ["modified"]


def test_timeline_for_timesketch_and_explain(sample):
    logs, lake, manifest = sample
    lines = cli("timeline", "--lake", str(lake), "--entity", manifest["attacker"].upper(), "--format", "timesketch").stdout.splitlines()
    events = [json.loads(line) for line in lines]
    assert events and all({"message", "datetime", "timestamp_desc"} <= e.keys() for e in events)
    assert [e["timestamp"] for e in events] == sorted(e["timestamp"] for e in events)
    kinds = {e["timestamp_desc"] for e in events}
    assert {"Mail delivery", "Finding first seen"} <= kinds, kinds
    # A malicious message's id: the tool call that sent it and its deliveries.
    mid = next(c["message_id"] for c in manifest["tool_calls"] if c["version"] == manifest["malicious_version"] and c["message_id"])
    rows = json.loads(cli("timeline", "--lake", str(lake), "--entity", f"<{mid}>", "--format", "json", "--no-findings").stdout)
    kinds = [r["timestamp_desc"] for r in rows]
    # (syslog stamps have whole seconds, so a delivery may sort before the call of the same second)
    assert "Tool call" in kinds and "Mail delivery" in kinds, kinds
    assert any(manifest["attacker"] in r["message"] for r in rows)
    # --explain: the SQL, the bound parameter, and the raw line behind the evidence.
    text = cli("detect", "--lake", str(lake), "--explain", "--rule", "mail.unintended_recipient").stdout
    assert "$window_s = 600" in text and "WITH d AS" in text
    raw = [l for l in text.splitlines() if l.strip().startswith("raw:")]
    assert raw and all(manifest["attacker"] in l or "tools/call" in l for l in raw), raw[:4]
