"""Every result type reaches pyarrow, pandas, polars and DuckDB through the
Arrow C stream interface, with the data shared rather than copied."""
from __future__ import annotations

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import mcp_forensics as mf

RESULTS = {
    "sql": lambda lake, m: lake.sql("SELECT recipient, ts, source_line FROM mail_deliveries ORDER BY ts"),
    "tables": lambda lake, m: lake.tables(),
    "detect": lambda lake, m: lake.detect(),
    "evidence": lambda lake, m: lake.detect().evidence(),
    "timeline": lambda lake, m: lake.timeline(m["attacker"]),
    "rules": lambda lake, m: lake.rules(),
    "ingest_sources": lambda lake, m: lake.ingest(["sample-logs/postfix"], year=m["year"]).sources,
}


@pytest.mark.parametrize("kind", sorted(RESULTS))
def test_every_result_reaches_every_consumer(incident, manifest, kind):
    r = RESULTS[kind](incident, manifest)
    assert isinstance(r, mf.Rows)
    n, cols = r.num_rows, r.column_names
    assert n > 0 and len(r) == n, f"{kind} returned nothing"

    t = pa.table(r)
    assert (t.num_rows, t.column_names) == (n, cols)
    assert pa.schema(r) == t.schema  # __arrow_c_schema__

    df = r.to_pandas()
    assert isinstance(df, pd.DataFrame) and df.shape == (n, len(cols))

    p = pl.DataFrame(r)
    assert p.shape == (n, len(cols)) and p.columns == cols
    assert r.to_polars().shape == p.shape
    # polars.from_arrow() reads any Arrow C stream as one Series (of structs,
    # for a table); unnesting it gives the same frame.
    assert pl.from_arrow(r).struct.unnest().equals(p)

    assert duckdb.sql("SELECT count(*) FROM r").fetchall() == [(n,)]
    assert len(duckdb.sql("FROM r").fetchall()) == n  # every value, timestamps with zones included
    assert repr(r).startswith(("Rows: ", "Findings: ")) and f": {n} row" in repr(r)


def test_arrow_buffers_are_shared_not_copied(incident):
    r = incident.sql("SELECT source_line FROM mail_deliveries")
    a = pa.table(r).column(0).chunk(0).buffers()[1]
    b = pa.table(r).column(0).chunk(0).buffers()[1]
    assert a.address == b.address, "each export copied the data"


def test_types_survive_the_boundary(incident):
    t = pa.table(incident.detect())
    assert t.schema.field("first_seen").type == pa.timestamp("us", tz="UTC")
    assert t.schema.field("count").type == pa.int64()
    assert t.schema.field("references").type == pa.list_(pa.string())
    ev = pa.table(incident.detect().evidence())
    assert ev.schema.field("source_line").type == pa.int64()


def test_empty_results_keep_their_schema(incident):
    r = incident.sql("SELECT recipient, ts FROM mail_deliveries WHERE false")
    t = pa.table(r)
    assert t.num_rows == 0 and t.column_names == ["recipient", "ts"]
    assert pl.DataFrame(r).columns == ["recipient", "ts"]
