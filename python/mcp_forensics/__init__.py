"""mcp-forensics: join MCP traces (what agents asked their tools to do) with
mail logs (what actually left), in a Delta lake, with SQL detections.

Everything here is the Rust core (``mcp_forensics._native``); results are
Arrow data (``__arrow_c_stream__``) for pyarrow, pandas, polars and DuckDB.

>>> import mcp_forensics as mf
>>> lake = mf.Lake(tmp / "lake")
>>> lake.ingest(["sample-logs/mcp", "sample-logs/postfix", "sample-logs/postmark"], year=2026).rejected
0
>>> "phan@giftshop.club" in lake.detect(rules=["mail.constant_bcc"]).to_pyarrow()["address"].to_pylist()
True
"""

from ._native import (
    Findings,
    IngestSummary,
    Lake,
    LakeError,
    McpForensicsError,
    QueryError,
    RuleError,
    Rows,
    __version__,
)

__all__ = [
    "Findings",
    "IngestSummary",
    "Lake",
    "LakeError",
    "McpForensicsError",
    "QueryError",
    "RuleError",
    "Rows",
    "__version__",
]
