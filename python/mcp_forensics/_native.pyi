"""Type stubs of the native module (see the docstrings in the Rust source, python/src/lib.rs)."""

from collections.abc import Mapping, Sequence
from datetime import datetime
from os import PathLike
from typing import Any, Literal

__version__: str

class McpForensicsError(Exception):
    """Base class of every error mcp-forensics raises."""

class LakeError(McpForensicsError):
    """The lake directory or an input log cannot be used (the message names the path)."""

class RuleError(McpForensicsError):
    """A rule file, rule folder, config file, list or parameter is wrong."""

class QueryError(McpForensicsError):
    """A query or a rule failed to plan or run."""

_Path = str | PathLike[str]
_SqlValue = None | bool | int | float | str | datetime
_ParamValue = bool | int | float | str
_TimeBound = str | datetime | None

class Rows:
    """Query results as Arrow record batches (``__arrow_c_stream__``, zero-copy)."""

    @property
    def num_rows(self) -> int: ...
    @property
    def column_names(self) -> list[str]: ...
    def __len__(self) -> int: ...
    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...
    def __arrow_c_schema__(self) -> object: ...
    def to_pyarrow(self) -> Any:
        """A ``pyarrow.Table`` (zero-copy; needs pyarrow)."""
    def to_pandas(self) -> Any:
        """A ``pandas.DataFrame`` (through pyarrow)."""
    def to_polars(self) -> Any:
        """A ``polars.DataFrame`` (zero-copy; needs polars)."""

class Findings(Rows):
    """One row per finding, plus evidence, raw lines and SIEM exports."""

    @property
    def recorded(self) -> int:
        """Rows this run wrote to ``_findings``."""
    @property
    def known_before(self) -> int:
        """Findings ``_findings`` knew before this run."""
    def evidence(self, raw: bool = True, base: _Path | None = None) -> Rows:
        """Evidence rows of every finding, with the raw log line read back at its byte offset."""
    def write(self, format: Literal["ocsf", "json", "jsonl", "csv", "table"] = "ocsf", path: _Path | None = None) -> str | None:
        """The findings as text (OCSF 1.5 Detection Finding JSONL by default); to ``path`` when given."""
    def explain(self, base: _Path | None = None, max_evidence: int = 50) -> str:
        """Per rule: the SQL, the bound parameters, each finding's evidence with its raw line."""

class IngestSummary:
    """What one ingest did; ``lines == parsed + rejected + skipped``."""

    @property
    def ingest_id(self) -> str: ...
    @property
    def files(self) -> int: ...
    @property
    def failed(self) -> int: ...
    @property
    def already_ingested(self) -> int: ...
    @property
    def bytes(self) -> int: ...
    @property
    def duration_ms(self) -> float: ...
    @property
    def lines(self) -> int: ...
    @property
    def parsed(self) -> int: ...
    @property
    def rejected(self) -> int: ...
    @property
    def skipped(self) -> int: ...
    @property
    def rows(self) -> dict[str, int]: ...
    @property
    def recovered(self) -> list[str]: ...
    @property
    def sources(self) -> Rows: ...
    def report(self, verbose: bool = False) -> str: ...

class Lake:
    """A Delta Lake directory of normalized MCP traces and mail logs."""

    def __init__(
        self,
        path: _Path,
        *,
        rules: Sequence[_Path] | None = None,
        lists: _Path | None = None,
        config: _Path | None = None,
        engine: str | None = None,
    ) -> None:
        """A lake: a folder, ``file://PATH`` or ``s3://BUCKET/PREFIX`` (AWS credentials
        and ``AWS_ENDPOINT_URL`` from the environment). ``engine="ballista://HOST:PORT"``
        runs its queries on a Ballista cluster."""
    @property
    def path(self) -> str: ...
    def ingest(self, paths: Sequence[_Path], format: str | None = None, year: int | None = None, tz: str | None = None, force: bool = False) -> IngestSummary:
        """Ingest log files and folders; re-ingesting adds nothing (``force=True`` replaces their earlier rows); Ctrl-C commits nothing."""
    def forget(self, sources: Sequence[str]) -> Rows:
        """Drop every row read from these sources (path or sha256 prefix), recorded in ``_ingest_log``."""
    def tables(self) -> Rows:
        """Every table with its row count and what it holds."""
    def sql(self, query: str, **params: _SqlValue) -> Rows:
        """Run SQL; keyword arguments are bound to ``$name`` placeholders, never pasted."""
    def detect(
        self,
        since: _TimeBound = None,
        until: _TimeBound = None,
        rules: Sequence[str] | None = None,
        params: Mapping[str, _ParamValue | Mapping[str, _ParamValue]] | None = None,
        new_only: bool = False,
        record: bool = False,
    ) -> Findings:
        """Run the detection rules; ``new_only`` returns only findings no recorded run reported."""
    def timeline(self, entity: str, findings: bool = True) -> Rows:
        """Everything the lake knows about one address, server, session or message id, in time order."""
    def verify(self, base: _Path | None = None) -> Rows:
        """Re-fingerprint every ingested raw log: unchanged, grown, modified, truncated or missing."""
    def rules(self) -> Rows:
        """The rule catalogue (built-in and user rules)."""
