"""`Lake.sql(query, **params)`: values are bound as typed parameters, never
pasted, so an injection attempt stays a literal."""
from __future__ import annotations

from datetime import datetime, timezone

import pyarrow as pa
import pytest

import mcp_forensics as mf


def one(rows) -> object:
    return pa.table(rows).column(0)[0].as_py()


def test_a_bound_value_selects(incident, manifest):
    n = one(incident.sql("SELECT count(*) FROM mail_deliveries WHERE recipient = $r", r=manifest["attacker"]))
    assert n > 0


@pytest.mark.parametrize(
    "attempt",
    [
        "x' OR '1'='1",
        "x'; DROP TABLE mail_deliveries; --",
        "$r",
        "' UNION SELECT count(*) FROM tool_calls --",
    ],
)
def test_injection_attempts_stay_literals(incident, attempt):
    assert one(incident.sql("SELECT count(*) FROM mail_deliveries WHERE recipient = $r", r=attempt)) == 0
    assert one(incident.sql("SELECT $v AS v", v=attempt)) == attempt
    assert one(incident.sql("SELECT count(*) FROM mail_deliveries")) > 0


def test_python_types_become_sql_types(incident):
    t = pa.table(incident.sql("SELECT $i AS i, $f AS f, $b AS b, $s AS s, $n AS n, $t AS t", i=7, f=0.5, b=True, s="x", n=None, t=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)))
    row = t.to_pylist()[0]
    assert row["i"] == 7 and row["f"] == 0.5 and row["b"] is True and row["s"] == "x" and row["n"] is None
    assert row["t"] == datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert t.schema.field("i").type == pa.int64()


def test_a_timestamp_parameter_filters(incident):
    late = datetime(2100, 1, 1, tzinfo=timezone.utc)
    assert one(incident.sql("SELECT count(*) FROM mail_deliveries WHERE ts >= $since", since=late)) == 0


def test_unusable_values_are_refused(incident):
    with pytest.raises(TypeError, match="parameter x: expected"):
        incident.sql("SELECT $x", x=[1, 2])
    with pytest.raises(ValueError, match="time zone"):
        incident.sql("SELECT $x", x=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="64-bit"):
        incident.sql("SELECT $x", x=2**70)


def test_sql_errors_are_query_errors(incident):
    with pytest.raises(mf.QueryError, match=r"SQL syntax error: .*SELEC.*\n  at line 1, column 1") as e:
        incident.sql("SELEC nothing")
    assert isinstance(e.value, mf.McpForensicsError)
    with pytest.raises(mf.QueryError, match="no_such_table"):
        incident.sql("SELECT * FROM no_such_table")
