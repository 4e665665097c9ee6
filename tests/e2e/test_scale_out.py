"""The lake on object storage, many ingesters, rules on a Ballista cluster:
a real S3-compatible server (moto's server mode) and a real Ballista
scheduler with two executors (`mcp-forensics cluster ...`) on loopback.

Every comparison is against the same logs ingested into a local lake by one
process and queried by the local engine: the S3 lake must hold the same
rows, and the cluster must return the same findings.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "harness"))

import scale_lab  # noqa: E402

DATA_TABLES = ["mcp_messages", "mcp_sessions", "mcp_server_configs", "tool_calls", "intended_recipients", "call_message_ids", "tool_definitions", "mail_deliveries", "mail_messages", "mail_events", "_rejects"]
SAMPLES = "sample-logs"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if why := scale_lab.available():
        pytest.skip(why)
    with scale_lab.Lab(tmp_path_factory.mktemp("scale")) as lab:
        yield lab


@pytest.fixture(scope="module")
def local_lake(lab, tmp_path_factory):
    lake = tmp_path_factory.mktemp("local") / "lake"
    run(lab, "-q", "ingest", "--lake", str(lake), SAMPLES, ok=(0, 3))
    return str(lake)


def run(lab, *args, engine=False, ok=(0,)):
    return lab.cli(*args, engine=engine, ok=ok)


def contents(lab, lake: str) -> list[str]:
    """Every row of every data table but the id of the run that wrote it."""
    rows = []
    for t in DATA_TABLES:
        out = run(lab, "sql", "--lake", lake, "--format", "jsonl", f"SELECT '{t}' AS t, * EXCLUDE (ingest_id) FROM {t}").stdout
        rows.extend(out.splitlines())
    return sorted(rows)


def findings(lab, lake: str, engine=False) -> list[dict]:
    return json.loads(run(lab, "detect", "--lake", lake, "--format", "json", engine=engine).stdout)


def test_four_concurrent_overlapping_ingests_leave_the_rows_of_one_clean_ingest(lab, local_lake):
    lake = f"s3://{scale_lab.BUCKET}/concurrent"
    sets = [
        [f"{SAMPLES}/postfix", f"{SAMPLES}/mcp"],
        [SAMPLES],
        [f"{SAMPLES}/mcp", f"{SAMPLES}/wire", f"{SAMPLES}/postmark"],
        [f"{SAMPLES}/postmark", f"{SAMPLES}/postfix", f"{SAMPLES}/claude-code"],
    ]
    procs = [subprocess.Popen([scale_lab.BIN, "-q", "ingest", "--lake", lake, *s], env=lab.env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for s in sets]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode in (0, 3), err
    # They overlapped in time: at least one waited for another's lease.
    assert any("waiting for the lake's writers' lock" in err for _, err in outs), [e for _, e in outs]
    remote = contents(lab, lake)
    assert remote == contents(lab, local_lake)
    assert len(remote) > 1000
    # Every source is recorded once as ingested; a fifth run adds nothing.
    log = run(lab, "sql", "--lake", lake, "--format", "jsonl", "SELECT source_file, count(*) AS n FROM _ingest_log WHERE status <> 'skipped' GROUP BY source_file").stdout
    assert all(json.loads(l)["n"] == 1 for l in log.splitlines()), log
    again = run(lab, "ingest", "--lake", lake, SAMPLES, ok=(0, 3))
    assert "0 new" in again.stdout + again.stderr
    assert contents(lab, lake) == remote
    # The lease was released: nothing holds the lake now.
    lock = json.loads(lab.object_bytes("concurrent/_lake/lock"))
    assert lock["held"] is False


def test_detect_sql_and_timeline_on_ballista_over_s3_equal_the_local_engine(lab, local_lake):
    lake = f"s3://{scale_lab.BUCKET}/cluster"
    run(lab, "-q", "ingest", "--lake", lake, SAMPLES, ok=(0, 3))
    local = findings(lab, local_lake)
    on_cluster = findings(lab, lake, engine=True)
    strip = lambda fs: sorted(json.dumps(f, sort_keys=True) for f in fs)
    assert strip(on_cluster) == strip(local)
    seed = {(f["rule_id"], f.get("address")) for f in on_cluster}
    assert ("mail.unintended_recipient", "phan@giftshop.club") in seed
    assert ("mail.constant_bcc", "phan@giftshop.club") in seed
    # The queries really ran on the cluster: it refuses once the scheduler is gone
    # (checked last, in test_a_stopped_cluster_is_an_error). Here: sql with a join
    # and a shuffle, and the timeline, give the local answers.
    q = "SELECT d.recipient_domain, count(*) AS n FROM mail_deliveries d JOIN mail_messages m ON d.queue_id = m.queue_id GROUP BY 1 ORDER BY 2 DESC, 1"
    assert run(lab, "sql", "--lake", lake, "--format", "csv", q, engine=True).stdout == run(lab, "sql", "--lake", local_lake, "--format", "csv", q).stdout
    t_remote = run(lab, "timeline", "--lake", lake, "--all", "--format", "jsonl", "--entity", "phan@giftshop.club", engine=True).stdout
    t_local = run(lab, "timeline", "--lake", local_lake, "--all", "--format", "jsonl", "--entity", "phan@giftshop.club").stdout
    # The same events; in time order on both (events at the same instant
    # may come in either order).
    assert sorted(t_remote.splitlines()) == sorted(t_local.splitlines()) and t_remote.count("\n") > 10
    times = [json.loads(l)["ts"] for l in t_remote.splitlines()]
    assert times == sorted(times)
    # --since prunes by partition on the cluster too.
    since = "2026-11-25T00:00:00Z"
    assert strip(json.loads(run(lab, "detect", "--lake", lake, "--since", since, "--format", "json", engine=True).stdout)) == strip(json.loads(run(lab, "detect", "--lake", local_lake, "--since", since, "--format", "json").stdout))


def test_evidence_is_read_back_from_local_raw_logs_when_the_lake_is_remote(lab):
    lake = f"s3://{scale_lab.BUCKET}/evidence"
    run(lab, "-q", "ingest", "--lake", lake, SAMPLES, ok=(0, 3))
    explained = run(lab, "detect", "--lake", lake, "--rule", "mail.constant_bcc", "--explain").stdout
    assert "phan@giftshop.club" in explained and "sample-logs/" in explained
    checks = json.loads(run(lab, "verify", "--lake", lake, "--format", "json").stdout)
    assert checks and all(c["intact"] for c in checks), checks


def test_python_opens_the_s3_lake(lab, local_lake, tmp_path):
    lake = f"s3://{scale_lab.BUCKET}/python"
    run(lab, "-q", "ingest", "--lake", lake, SAMPLES, ok=(0, 3))
    script = (
        "import json, sys, mcp_forensics as m\n"
        "found = m.Lake(sys.argv[1]).detect()\n"
        "remote = found.to_pyarrow().to_pylist()\n"
        "local = m.Lake(sys.argv[2]).detect().to_pyarrow().to_pylist()\n"
        "key = lambda f: (f['rule_id'], f['key'], f['count'])\n"
        "raw = [json.dumps(r, default=str) for r in found.evidence(raw=True).to_pyarrow().to_pylist()]\n"
        "cluster = m.Lake(sys.argv[1], engine=sys.argv[3]).detect().to_pyarrow().to_pylist()\n"
        "print(json.dumps([sorted(map(key, remote)), sorted(map(key, local)), m.Lake(sys.argv[1]).sql('SELECT * FROM mail_deliveries').num_rows, sum('phan@giftshop.club' in r for r in raw), sorted(map(key, cluster))]))\n"
    )
    py = ROOT / ".venv" / "bin" / "python"
    r = subprocess.run([str(py), "-c", script, lake, local_lake, lab.engine], capture_output=True, text=True, env=lab.env, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    remote, local, deliveries, raw_lines_naming_attacker, cluster = json.loads(r.stdout)
    assert remote == local == cluster and any(k[0] == "mail.constant_bcc" for k in remote)
    # evidence(raw=True) read the raw lines back from the local logs.
    assert raw_lines_naming_attacker > 0
    assert deliveries == int(json.loads(run(lab, "sql", "--lake", local_lake, "--format", "json", "SELECT count(*) AS n FROM mail_deliveries").stdout)[0]["n"])


def test_no_credential_reaches_the_lake_or_an_error(lab):
    lake = f"s3://{scale_lab.BUCKET}/secrets"
    run(lab, "-q", "ingest", "--lake", lake, f"{SAMPLES}/postfix", ok=(0, 3))
    keys = lab.objects("secrets/")
    assert any(k.endswith(".parquet") for k in keys) and any("_delta_log" in k for k in keys)
    for k in keys:
        body = lab.object_bytes(k)
        assert scale_lab.SECRET_KEY.encode() not in body and scale_lab.ACCESS_KEY.encode() not in body, k
    # A wrong secret: refused, and the message names neither key.
    env = {**lab.env, "AWS_SECRET_ACCESS_KEY": "wrong-" + scale_lab.SECRET_KEY}
    r = subprocess.run([scale_lab.BIN, "tables", "--lake", "s3://no-such-bucket-mcpf/x"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert r.returncode != 0
    assert scale_lab.SECRET_KEY not in r.stderr + r.stdout
    # A lake URL of a scheme no store serves is refused with the choices.
    r = subprocess.run([scale_lab.BIN, "tables", "--lake", "gs://bucket/lake"], capture_output=True, text=True, env=lab.env, cwd=ROOT)
    assert r.returncode == 2 and "s3://BUCKET/PREFIX" in r.stderr


def test_a_stopped_cluster_is_an_error_not_a_local_run(lab, local_lake):
    r = subprocess.run([scale_lab.BIN, "--engine", "ballista://127.0.0.1:9", "detect", "--lake", local_lake], capture_output=True, text=True, env=lab.env, cwd=ROOT, timeout=120)
    assert r.returncode == 2, r.stdout
    assert "Ballista scheduler" in r.stderr and "cluster scheduler" in r.stderr


def test_an_abandoned_lease_is_taken_over_and_a_live_one_is_waited_for(lab):
    lake_key = "abandoned"
    lake = f"s3://{scale_lab.BUCKET}/{lake_key}"
    run(lab, "-q", "ingest", "--lake", lake, f"{SAMPLES}/postfix", ok=(0, 3))
    # A writer on another host died holding the lease: it says "held" and is never renewed.
    dead = json.dumps({"held": True, "holder": "pid 4242 on deadhost (ingest X) since 2026-01-01T00:00:00Z", "renewed_at": "2026-01-01T00:00:00Z"})
    lab._s3("s3.put_object(Bucket=sys.argv[1], Key=sys.argv[2], Body=sys.argv[3].encode())", scale_lab.BUCKET, f"{lake_key}/_lake/lock", dead)
    import time
    started = time.monotonic()
    r = run(lab, "ingest", "--lake", lake, f"{SAMPLES}/mcp", ok=(0, 3))
    waited = time.monotonic() - started
    assert "held by pid 4242 on deadhost" in r.stderr
    # Taken over after the lease time (30 s of the waiter's clock), not before.
    assert waited >= 30, waited
    assert json.loads(lab.object_bytes(f"{lake_key}/_lake/lock"))["held"] is False
    assert "mcp_messages" in run(lab, "tables", "--lake", lake).stdout


def test_a_writer_killed_mid_commit_on_s3_is_rolled_back_by_the_next(lab, local_lake):
    lake = f"s3://{scale_lab.BUCKET}/killed"
    # Dies (abort, as kill -9) after committing one table and before publishing,
    # holding the lease.
    env = {**lab.env, "MCPF_FAILPOINT": "ingest-after-commit-mail_deliveries"}
    r = subprocess.run([scale_lab.BIN, "-q", "ingest", "--lake", lake, SAMPLES], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert r.returncode != 0 and "failpoint" in r.stderr
    # Readers see the published state only: nothing of the dead run.
    counts = run(lab, "sql", "--lake", lake, "--format", "json", "SELECT count(*) AS n FROM mail_deliveries", ok=(0, 2))
    assert counts.returncode == 2 or json.loads(counts.stdout)[0]["n"] == 0
    # The next writer waits out the dead holder's lease, rolls back what it
    # committed, and then ingests: the lake equals one clean ingest.
    again = run(lab, "ingest", "--lake", lake, SAMPLES, ok=(0, 3))
    assert "rolled back" in again.stdout + again.stderr or "recovered" in again.stdout + again.stderr, again.stdout + again.stderr
    assert contents(lab, lake) == contents(lab, local_lake)
