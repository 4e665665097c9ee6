"""Long calls release the GIL and stop on Ctrl-C without committing."""
from __future__ import annotations

import _thread
import signal
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest

import mcp_forensics as mf

ROOT = Path(__file__).resolve().parents[2]
LONG = "SELECT sum(value % 7) FROM generate_series(1, {n})"


def test_a_long_query_lets_other_python_threads_run(incident):
    result = {}
    worker = threading.Thread(target=lambda: result.setdefault("rows", incident.sql(LONG.format(n=3 * 10**8))))
    ticks = 0
    worker.start()
    while worker.is_alive():
        ticks += 1
        time.sleep(0.001)
    worker.join()
    assert result["rows"].num_rows == 1
    # With the GIL held for the whole query this thread could not have run.
    assert ticks > 20, f"the main thread ran only {ticks} times during the query"


@pytest.fixture(autouse=True)
def sigint_raises_keyboard_interrupt():
    """A shell starts background jobs with SIGINT ignored, and then Python
    installs no handler and interrupt_main() does nothing: the Ctrl-C tests
    would hang instead of testing anything. Install Python's own handler."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def interrupt_after(seconds: float) -> threading.Timer:
    t = threading.Timer(seconds, _thread.interrupt_main)
    t.start()
    return t


def test_ctrl_c_stops_a_query(incident):
    started = time.monotonic()
    timer = interrupt_after(0.3)
    with pytest.raises(KeyboardInterrupt):
        incident.sql(LONG.format(n=10**11))  # minutes of work if not stopped
    timer.join()
    assert time.monotonic() - started < 30
    # The lake is still usable.
    assert incident.sql("SELECT count(*) FROM mail_deliveries").num_rows == 1


def test_ctrl_c_stops_an_ingest_before_it_commits(tmp_path):
    sys.path.insert(0, str(ROOT / "bench"))
    from bench import generate  # the benchmark's synthetic months of mail

    logs = tmp_path / "logs"
    generate(logs, 40000)
    lake = mf.Lake(tmp_path / "lake")
    timer = interrupt_after(0.5)
    with pytest.raises(KeyboardInterrupt):
        lake.ingest([logs], year=2026)
    timer.join()
    counts = dict(zip(*pa.table(lake.tables()).select(["table", "rows"]).to_pydict().values()))
    assert counts["mail_deliveries"] == 0 and counts["_ingest_log"] == 0, counts
    # The next run works on the same lake.
    s = lake.ingest([ROOT / "sample-logs" / "postfix"], year=2026)
    assert s.rows["mail_deliveries"] > 0
