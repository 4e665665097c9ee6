"""How Rows and Findings look in a REPL and in Jupyter: bounded, readable,
the columns that matter first, log content escaped."""
from __future__ import annotations

import re


def test_rows_repr_is_bounded_and_says_the_total(incident):
    rows = incident.sql("SELECT * FROM mail_deliveries")
    assert rows.num_rows > 10 and len(rows.column_names) > 8
    text = repr(rows)
    lines = text.splitlines()
    assert lines[0] == f"Rows: {rows.num_rows} rows x {len(rows.column_names)} columns"
    assert len(lines) <= 1 + 2 + 10 + 2, text
    assert max(len(line) for line in lines[:13]) <= 8 * 41 + 7 * 3, text
    assert f"… {rows.num_rows - 10} more row(s)" in text
    assert "more column(s): " in text


def test_findings_show_severity_rule_and_key_first(incident):
    findings = incident.detect()
    text = repr(findings)
    header = text.splitlines()[1]
    assert re.split(r"\s*\|\s*", header.strip())[:3] == ["severity", "rule_id", "key"]
    assert "phan@giftshop.club" in text
    html = findings._repr_html_()
    assert html.count("<tr>") == 1 + min(findings.num_rows, 10)
    assert "<th>severity</th><th>rule_id</th><th>key</th>" in html


def test_hostile_cells_are_escaped_in_both_views(incident):
    rows = incident.sql("SELECT '<script>alert(1)</script>' AS a, concat('x', chr(27), '[31m', chr(8238), 'y') AS b")
    html = rows._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "\x1b" not in html and "\u202e" not in html
    text = repr(rows)
    assert "\x1b" not in text and "\u202e" not in text and "\\u{1b}" in text


def test_force_after_a_wrong_year_and_forget(tmp_path, manifest):
    import mcp_forensics as mf

    wrong, right = mf.Lake(tmp_path / "wrong"), mf.Lake(tmp_path / "right")
    inputs = ["sample-logs/postfix"]
    wrong.ingest(inputs, year=manifest["year"] - 5)
    right.ingest(inputs, year=manifest["year"])
    q = "SELECT * EXCLUDE (ingest_id) FROM mail_deliveries ORDER BY source_offset, recipient"
    assert wrong.sql(q).to_pyarrow() != right.sql(q).to_pyarrow()
    assert wrong.ingest(inputs, year=manifest["year"]).already_ingested == 1
    summary = wrong.ingest(inputs, year=manifest["year"], force=True)
    assert summary.already_ingested == 0
    assert wrong.sql(q).to_pyarrow() == right.sql(q).to_pyarrow()
    gone = wrong.forget(["sample-logs/postfix/mail.log"]).to_pyarrow()
    n = lambda lake, t: lake.sql(f"SELECT count(*) AS n FROM {t}").to_pyarrow()["n"][0].as_py()  # noqa: E731
    assert gone["rows_removed"].to_pylist() == [n(right, "mail_deliveries") + n(right, "mail_messages")]
    assert wrong.sql("SELECT count(*) AS n FROM mail_deliveries").to_pyarrow()["n"][0].as_py() == 0
