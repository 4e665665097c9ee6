"""Detection from Python: the seed findings, options, scheduled runs,
evidence with raw lines, exports, timelines, user rules and their errors."""
from __future__ import annotations

import json

import pyarrow as pa
import pytest

import mcp_forensics as mf

SEED_RULES = {"mail.unintended_recipient", "mail.constant_bcc", "mail.new_recipient_after_change", "mcp.server_version_change"}


def test_detect_returns_the_seed_findings(incident, manifest):
    f = incident.detect()
    assert isinstance(f, mf.Findings) and isinstance(f, mf.Rows)
    t = pa.table(f)
    assert SEED_RULES <= set(t["rule_id"].to_pylist())
    flagged = {a for a in t["address"].to_pylist() if a}
    assert flagged == {manifest["attacker"]}, "a benign address was flagged"
    bcc = t.filter(pa.compute.equal(t["rule_id"], "mail.constant_bcc")).to_pylist()[0]
    assert bcc["count"] == manifest["postmark_export"]["with_bcc"] - 1 or bcc["count"] > 0
    assert len(set(t["finding_id"].to_pylist())) == t.num_rows


def test_evidence_points_at_the_raw_lines(incident, manifest):
    f = incident.detect(rules=["mail.constant_bcc"])
    ev = pa.table(f.evidence()).to_pylist()
    assert ev, "no evidence"
    for e in ev:
        assert e["source_file"] and e["source_line"] > 0
        assert e["raw_line"] is not None, e["raw_note"]
    assert any(manifest["attacker"] in e["raw_line"] for e in ev)
    assert pa.table(f.evidence(raw=False))["raw_line"].null_count == len(ev)


def test_rule_selection_parameters_and_time_window(incident):
    only = pa.table(incident.detect(rules=["mail.constant_bcc"]))
    assert set(only["rule_id"].to_pylist()) == {"mail.constant_bcc"}
    # A share above 1 can never be reached: the rule goes silent.
    for params in ({"mail.constant_bcc.min_share": 1.5}, {"mail.constant_bcc": {"min_share": 1.5}}):
        assert incident.detect(rules=["mail.constant_bcc"], params=params).num_rows == 0
    assert incident.detect(until="2000-01-01").num_rows == 0
    assert incident.detect(since="2000-01-01").num_rows == incident.detect().num_rows


def test_detect_errors(incident):
    with pytest.raises(mf.QueryError, match="no rule .*known rules"):
        incident.detect(rules=["mail.nope"])
    with pytest.raises(mf.RuleError, match="min_share"):
        incident.detect(params={"mail.constant_bcc.min_share": "lots"})
    with pytest.raises(mf.RuleError, match="unknown rule"):
        incident.detect(params={"mail.nope.x": 1})
    with pytest.raises(ValueError, match="since="):
        incident.detect(since="last tuesday")


def test_exports_and_explain(incident, tmp_path):
    f = incident.detect()
    lines = [json.loads(x) for x in f.write("ocsf").splitlines()]
    assert len(lines) == f.num_rows and all(x["class_uid"] == 2004 for x in lines)
    assert {x["finding_info"]["uid"] for x in lines} == set(pa.table(f)["finding_id"].to_pylist())
    out = tmp_path / "findings.csv"
    assert f.write("csv", out) is None and out.read_text().startswith("finding_id")
    with pytest.raises(ValueError, match="format"):
        f.write("xml")
    text = f.explain()
    assert "== rule mail.constant_bcc" in text and "raw:" in text and "$min_share" in text


def test_new_only_reports_each_finding_once_as_the_logs_grow(tmp_path, manifest):
    """A nightly job: logs grow, each run reports only what no run reported."""
    lines = open("sample-logs/postfix/mail.log").read().splitlines(keepends=True)
    cut = next(i for i, l in enumerate(lines) if manifest["attacker"] in l)
    log = tmp_path / "mail.log"
    log.write_text("".join(lines[:cut]))
    lake = mf.Lake(tmp_path / "lake")
    lake.ingest([log], year=manifest["year"])
    first = lake.detect(new_only=True)
    assert manifest["attacker"] not in (pa.table(first)["address"].to_pylist())

    with open(log, "a") as fh:
        fh.write("".join(lines[cut:]))
    lake.ingest([log], year=manifest["year"])
    second = lake.detect(new_only=True)
    assert manifest["attacker"] in pa.table(second)["address"].to_pylist()
    assert second.recorded >= second.num_rows and second.known_before == first.num_rows
    third = lake.detect(new_only=True)
    assert third.num_rows == 0
    assert pa.table(lake.sql("SELECT count(DISTINCT finding_id) FROM _findings")).column(0)[0].as_py() == first.num_rows + second.num_rows


def test_timeline_of_the_attacker(incident, manifest):
    t = pa.table(incident.timeline(manifest["attacker"])).to_pylist()
    assert t and all(r["source_file"] for r in t if r["table"] != "findings")
    assert [r["ts"] for r in t] == sorted(r["ts"] for r in t)
    assert any(r["table"] == "findings" for r in t)
    assert not any(r["table"] == "findings" for r in pa.table(incident.timeline(manifest["attacker"], findings=False)).to_pylist())


USER_RULE = """
id = "corp.club_recipient"
title = "Mail to a .club address"
severity = "medium"
description = "Our agents never mail .club domains."
[query]
sql = '''
SELECT recipient AS key, ts, recipient AS unit, recipient AS address, sender, CAST(NULL AS VARCHAR) AS server,
       CAST(NULL AS VARCHAR) AS version, CAST(NULL AS VARCHAR) AS session, 'mail to .club' AS detail,
       'mail_deliveries' AS evidence_table, source_file, source_line, source_offset
FROM mail_deliveries WHERE ends_with(recipient_domain, '.club')
'''
"""


def test_user_rules_and_their_errors(incident, tmp_path, manifest):
    rules = tmp_path / "rules.d"
    rules.mkdir()
    (rules / "club.toml").write_text(USER_RULE)
    lake = mf.Lake(incident.path, rules=[rules])
    assert "corp.club_recipient" in pa.table(lake.rules())["id"].to_pylist()
    got = pa.table(lake.detect(rules=["corp.club_recipient"]))
    assert got["address"].to_pylist() == [manifest["attacker"]]
    (rules / "broken.toml").write_text(USER_RULE.replace("corp.club_recipient", "corp.broken").replace('"medium"', '"dire"'))
    with pytest.raises(mf.RuleError, match="broken.toml") as e:
        mf.Lake(incident.path, rules=[rules])
    assert "dire" in str(e.value)


def test_rules_catalogue(incident):
    r = pa.table(incident.rules()).to_pylist()
    ids = {x["id"] for x in r}
    assert SEED_RULES <= ids and len(ids) >= 13
    bcc = next(x for x in r if x["id"] == "mail.constant_bcc")
    assert "min_share" in json.loads(bcc["parameters"]) and bcc["fixtures"] >= 2 and "SELECT" in bcc["sql"]
