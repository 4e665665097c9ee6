"""Ingest from Python: the summary's line accounting, idempotence, errors."""
from __future__ import annotations

import pyarrow as pa
import pytest

import mcp_forensics as mf


def test_ingest_summary_accounts_for_every_line(tmp_path, manifest):
    lake = mf.Lake(tmp_path / "lake")
    s = lake.ingest(["sample-logs/mcp", "sample-logs/postfix", "sample-logs/postmark"], year=manifest["year"])
    assert isinstance(s, mf.IngestSummary)
    assert s.files == 4 and s.already_ingested == 0
    assert s.lines == s.parsed + s.rejected + s.skipped > 0
    assert s.rows["mail_deliveries"] > 0 and s.rows["tool_calls"] == len(manifest["tool_calls"])
    sources = pa.table(s.sources)
    assert sources.num_rows == 4
    assert sum(sources["lines"].to_pylist()) == s.lines
    assert set(sources["format"].to_pylist()) == {"claude_desktop", "postfix", "postmark"}
    assert "lines:" in repr(s) and s.ingest_id in s.report(verbose=True)

    again = lake.ingest(["sample-logs/mcp", "sample-logs/postfix", "sample-logs/postmark"], year=manifest["year"])
    assert again.already_ingested == 4 and again.rows == {}
    counts = dict(zip(*pa.table(lake.tables()).select(["table", "rows"]).to_pydict().values()))
    assert counts["mail_deliveries"] == s.rows["mail_deliveries"], "re-ingest added rows"


def test_forced_format_and_its_errors(tmp_path):
    lake = mf.Lake(tmp_path / "lake")
    s = lake.ingest(["sample-logs/postfix/mail.log"], format="postfix", year=2026)
    assert s.rows["mail_deliveries"] > 0
    with pytest.raises(ValueError, match="postfix"):
        lake.ingest(["sample-logs/postfix/mail.log"], format="qmail")


def test_tz_reads_zone_less_stamps_in_that_zone(tmp_path):
    log = tmp_path / "mail.log"
    log.write_text(
        "Jul 15 10:00:00 mx postfix/qmgr[3]: 1A2B3C4D5E: from=<agent@corp.example>, size=900, nrcpt=1 (queue active)\n"
        "Jul 15 10:00:01 mx postfix/smtp[4]: 1A2B3C4D5E: to=<x@a.example>, relay=mx.a.example[192.0.2.1]:25, "
        "delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)\n"
    )
    lake = mf.Lake(tmp_path / "lake")
    lake.ingest([log], year=2026, tz="Asia/Tokyo")
    t = pa.table(lake.sql("SELECT CAST(ts AS VARCHAR) AS ts FROM mail_deliveries")).column("ts").to_pylist()
    assert t == ["2026-07-15T01:00:01Z"] or t[0].startswith("2026-07-15T01:00:01"), t
    zone = pa.table(lake.sql("SELECT stamp_zone FROM _ingest_log")).column("stamp_zone").to_pylist()
    assert zone == ["Asia/Tokyo"]
    with pytest.raises(ValueError, match="IANA name"):
        lake.ingest([log], tz="Asia/Atlantis")


def test_errors_name_the_path_and_what_to_do(tmp_path):
    missing = tmp_path / "nowhere"
    lake = mf.Lake(missing)
    with pytest.raises(mf.LakeError, match="no such lake folder.*ingest") as e:
        lake.sql("SELECT 1")
    assert str(missing) in str(e.value)
    assert isinstance(e.value, mf.McpForensicsError)
    # A source that cannot be read is reported, and the rest of the run commits.
    s = lake.ingest([tmp_path / "does-not-exist.log", "sample-logs/postfix/mail.log"], year=2026)
    assert s.failed == 1
    assert "does-not-exist.log" in s.report()
    src = s.sources.to_pandas()
    row = src[src["path"].str.endswith("does-not-exist.log")].iloc[0]
    assert row["status"] == "failed" and "cannot read" in row["error"]
    assert s.rows["mail_deliveries"] > 0


def test_a_folder_that_is_not_a_lake_is_an_error_not_an_all_clear(tmp_path):
    # An empty folder or a checkout is not evidence of anything.
    for path in [tmp_path, "."]:
        with pytest.raises(mf.LakeError, match="not an mcp-forensics lake"):
            mf.Lake(path).detect()


def test_verify_reports_a_one_byte_edit(tmp_path):
    log = tmp_path / "mail.log"
    log.write_bytes(open("sample-logs/postfix/mail.log", "rb").read())
    lake = mf.Lake(tmp_path / "lake")
    lake.ingest([log], year=2026)
    assert pa.table(lake.verify())["state"].to_pylist() == ["unchanged"]
    data = bytearray(log.read_bytes())
    data[100] ^= 0x01
    log.write_bytes(bytes(data))
    row = pa.table(lake.verify()).to_pylist()[0]
    assert (row["state"], row["intact"]) == ("modified", False) and "CHANGED" in row["note"]
    log.unlink()
    assert pa.table(lake.verify())["state"].to_pylist() == ["missing"]
