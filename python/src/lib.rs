//! `mcp_forensics._native`: the Python face of the Rust crates.
//!
//! Thin on purpose (as in delta-rs): every behaviour is a call into
//! `mcpf_lake` or `mcpf_detect::ops`, the same code the CLI runs; this file
//! only converts arguments, releases the GIL, and hands Arrow data back
//! through the Arrow C stream interface so pyarrow, pandas, polars and
//! DuckDB read it without copying.

mod display;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, StructArray};
use arrow::datatypes::{Field, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion::scalar::ScalarValue;
use mcpf_detect::config::RuleSetup;
use mcpf_detect::output::{terminal_safe_block, OutputFormat};
use mcpf_detect::{batches, ops, DetectConfig, DetectOptions, Finding};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyCapsule, PyDict, PyFloat, PyInt, PyString};
use pyo3_arrow::ffi::{to_schema_pycapsule, to_stream_pycapsule, ArrayIterator};

create_exception!(mcp_forensics, McpForensicsError, PyException, "Base class of every error mcp-forensics raises.");
create_exception!(mcp_forensics, LakeError, McpForensicsError, "The lake directory or an input log cannot be used (the message names the path).");
create_exception!(mcp_forensics, RuleError, McpForensicsError, "A rule file, rule folder, config file, list or parameter is wrong (the message names which).");
create_exception!(mcp_forensics, QueryError, McpForensicsError, "A query or a rule failed to plan or run (the message says where).");

fn lake_err(e: impl std::fmt::Display) -> PyErr {
    LakeError::new_err(e.to_string())
}
fn rule_err(e: impl std::fmt::Display) -> PyErr {
    RuleError::new_err(e.to_string())
}
fn query_err(e: impl std::fmt::Display) -> PyErr {
    QueryError::new_err(e.to_string())
}

/// Run `work` on a thread of its own while this thread waits without the
/// GIL, checking for Ctrl-C (and other signals) every 50 ms. On a signal the
/// work's stop flag is set, the work winds down without committing, and the
/// signal's exception (KeyboardInterrupt) is raised.
fn run_stoppable<T: Send>(py: Python<'_>, work: impl FnOnce(&Arc<AtomicBool>) -> T + Send) -> PyResult<T> {
    let stop = Arc::new(AtomicBool::new(false));
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let handle = s.spawn(|| {
            let out = work(&stop);
            done.store(true, Ordering::Release);
            out
        });
        loop {
            let finished = py.detach(|| {
                for _ in 0..10 {
                    if done.load(Ordering::Acquire) {
                        return true;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                false
            });
            if finished {
                break;
            }
            if let Err(e) = py.check_signals() {
                stop.store(true, Ordering::Relaxed);
                py.detach(|| {
                    while !done.load(Ordering::Acquire) {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                });
                let _ = handle.join();
                return Err(e);
            }
        }
        handle.join().map_err(|_| PyRuntimeError::new_err("mcp-forensics: internal error (a worker thread panicked); please report it"))
    })
}

/// Query results as Arrow record batches.
///
/// Any Arrow consumer reads it without a copy through the Arrow C stream
/// interface (``__arrow_c_stream__``): ``pyarrow.table(rows)``,
/// ``polars.DataFrame(rows)``, ``duckdb.sql("FROM rows")``; ``to_pandas()``
/// goes through pyarrow.
///
/// >>> rows = lake.sql("SELECT 1 AS one")
/// >>> rows.num_rows, rows.column_names
/// (1, ['one'])
#[pyclass(subclass, frozen, module = "mcp_forensics._native")]
pub struct Rows {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
}

impl Rows {
    fn new(schema: SchemaRef, batches: Vec<RecordBatch>) -> Rows {
        Rows { schema, batches }
    }
    fn from_batch(batch: RecordBatch) -> Rows {
        Rows { schema: batch.schema(), batches: vec![batch] }
    }
}

#[pymethods]
impl Rows {
    /// Export as an Arrow C stream (PyCapsule); the buffers are shared, not copied.
    #[pyo3(signature = (requested_schema = None))]
    fn __arrow_c_stream__<'py>(&self, py: Python<'py>, requested_schema: Option<Bound<'py, PyCapsule>>) -> PyResult<Bound<'py, PyCapsule>> {
        let field = Arc::new(Field::new_struct("", self.schema.fields().clone(), false));
        let arrays = self.batches.clone().into_iter().map(|b| Ok(Arc::new(StructArray::from(b)) as ArrayRef));
        Ok(to_stream_pycapsule(py, Box::new(ArrayIterator::new(arrays, field)), requested_schema)?)
    }

    /// Export the schema as an Arrow C schema (PyCapsule).
    fn __arrow_c_schema__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        Ok(to_schema_pycapsule(py, self.schema.as_ref())?)
    }

    /// Number of rows.
    #[getter]
    fn num_rows(&self) -> usize {
        self.batches.iter().map(|b| b.num_rows()).sum()
    }

    /// Column names, in order.
    #[getter]
    fn column_names(&self) -> Vec<String> {
        self.schema.fields().iter().map(|f| f.name().clone()).collect()
    }

    fn __len__(&self) -> usize {
        self.num_rows()
    }

    /// A ``pyarrow.Table`` (zero-copy; needs pyarrow).
    fn to_pyarrow<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        slf.py().import("pyarrow")?.call_method1("table", (slf,))
    }

    /// A ``pandas.DataFrame`` (through pyarrow).
    fn to_pandas<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Self::to_pyarrow(slf)?.call_method0("to_pandas")
    }

    /// A ``polars.DataFrame`` (zero-copy; needs polars).
    fn to_polars<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        slf.py().import("polars")?.call_method1("DataFrame", (slf,))
    }

    /// The first rows and columns as a text table (cells cut, control
    /// characters escaped), with the total.
    fn __repr__(&self) -> String {
        display::text("Rows", &self.schema, &self.batches, &[])
    }

    /// The same view as an HTML table, for Jupyter (markup in cells escaped).
    fn _repr_html_(&self) -> String {
        display::html("Rows", &self.schema, &self.batches, &[])
    }
}

/// Findings of a detection run: one row per finding (Arrow, like
/// :class:`Rows`), plus their evidence rows, the raw log lines behind them,
/// and the exports a SIEM takes.
///
/// >>> findings = lake.detect()
/// >>> sorted(set(pyarrow.table(findings)["rule_id"].to_pylist()))[:1]
/// ['mail.constant_bcc']
#[pyclass(extends = Rows, frozen, module = "mcp_forensics._native")]
pub struct Findings {
    findings: Vec<Finding>,
    setup: RuleSetup,
    options: DetectOptions,
    recorded: usize,
    known_before: usize,
}

#[pymethods]
impl Findings {
    /// The findings with severity, rule, key, count and time first.
    fn __repr__(slf: PyRef<'_, Self>) -> String {
        let rows = slf.as_super();
        display::text("Findings", &rows.schema, &rows.batches, &display::FINDING_COLUMNS)
    }

    /// [`Findings::__repr__`] as an HTML table, for Jupyter.
    fn _repr_html_(slf: PyRef<'_, Self>) -> String {
        let rows = slf.as_super();
        display::html("Findings", &rows.schema, &rows.batches, &display::FINDING_COLUMNS)
    }

    /// One row per evidence row of every finding: finding_id, rule_id, ts,
    /// evidence_table, source_file, source_line, source_offset,
    /// source_pointer, detail, and (with ``raw=True``) the raw log line read
    /// back at its byte offset. Relative source paths resolve from ``base``
    /// (default: the current folder). Raw lines of rules whose matches are
    /// secrets are withheld; an unreadable line says why in ``raw_note``.
    #[pyo3(signature = (raw = true, base = None))]
    fn evidence(&self, py: Python<'_>, raw: bool, base: Option<PathBuf>) -> PyResult<Rows> {
        let batch = py.detach(|| batches::evidence_batch(&self.findings, &self.setup.rules, raw, base.as_deref())).map_err(query_err)?;
        Ok(Rows::from_batch(batch))
    }

    /// The findings as text in ``format``: "ocsf" (OCSF 1.5 Detection Finding,
    /// one JSON object per line), "json", "jsonl", "csv" (formula-safe) or
    /// "table". Written to ``path`` when given (and None returned).
    #[pyo3(signature = (format = "ocsf", path = None))]
    fn write(&self, format: &str, path: Option<PathBuf>) -> PyResult<Option<String>> {
        let format: OutputFormat = format.parse().map_err(|e: String| PyValueError::new_err(e))?;
        let mut buf = Vec::new();
        mcpf_detect::output::write_findings(&mut buf, &self.findings, format).map_err(|e| PyValueError::new_err(e.to_string()))?;
        match path {
            Some(p) => {
                std::fs::write(&p, &buf).map_err(|e| lake_err(format!("{}: cannot write: {e}", p.display())))?;
                Ok(None)
            }
            None => Ok(Some(String::from_utf8_lossy(&buf).into_owned())),
        }
    }

    /// What ``detect --explain`` prints: per rule, the SQL, the parameters
    /// bound to it, and each finding's evidence with its raw line.
    #[pyo3(signature = (base = None, max_evidence = 50))]
    fn explain(&self, base: Option<PathBuf>, max_evidence: usize) -> PyResult<String> {
        mcpf_detect::explain::explain_run(&self.setup.rules, &self.options, &self.findings, base.as_deref(), max_evidence).map_err(rule_err)
    }

    /// Rows this run wrote to the lake's ``_findings`` table (with
    /// ``record=True`` or ``new_only=True``).
    #[getter]
    fn recorded(&self) -> usize {
        self.recorded
    }

    /// Findings the ``_findings`` table knew before this run.
    #[getter]
    fn known_before(&self) -> usize {
        self.known_before
    }
}

/// What one ``Lake.ingest`` did: files, bytes, line accounting (every line
/// is parsed, rejected with a reason, or skipped with a reason), rows per
/// table. ``sources`` has one row per file.
#[pyclass(frozen, module = "mcp_forensics._native")]
pub struct IngestSummary {
    inner: mcpf_lake::IngestSummary,
}

#[pymethods]
impl IngestSummary {
    /// The run's id (recorded with every row it wrote, as ``ingest_id``).
    #[getter]
    fn ingest_id(&self) -> String {
        self.inner.ingest_id.clone()
    }
    /// Files seen.
    #[getter]
    fn files(&self) -> usize {
        self.inner.sources.len()
    }
    /// Sources that could not be read to their end (status ``failed`` or
    /// ``partial`` in ``sources``, with the error); the rest of the run is
    /// committed, and a failed source is tried again by the next ingest.
    #[getter]
    fn failed(&self) -> usize {
        self.inner.failed_sources()
    }
    /// Files skipped because the lake already holds their exact content.
    #[getter]
    fn already_ingested(&self) -> usize {
        self.inner.sources.iter().filter(|s| s.action == mcpf_lake::SourceAction::AlreadyIngested).count()
    }
    /// Bytes read from new content.
    #[getter]
    fn bytes(&self) -> u64 {
        self.inner.bytes
    }
    #[getter]
    fn duration_ms(&self) -> f64 {
        self.inner.duration_ms
    }
    /// Lines read; always ``parsed + rejected + skipped``.
    #[getter]
    fn lines(&self) -> u64 {
        self.inner.totals().lines
    }
    #[getter]
    fn parsed(&self) -> u64 {
        self.inner.totals().parsed
    }
    /// Lines kept in the ``_rejects`` table with their reason.
    #[getter]
    fn rejected(&self) -> u64 {
        self.inner.totals().rejected
    }
    #[getter]
    fn skipped(&self) -> u64 {
        self.inner.totals().skipped
    }
    /// Rows written per table.
    #[getter]
    fn rows(&self) -> BTreeMap<String, u64> {
        self.inner.rows.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }
    /// Interrupted earlier runs whose partial rows were removed first.
    #[getter]
    fn recovered(&self) -> Vec<String> {
        self.inner.recovered.clone()
    }
    /// One row per file: path, format, action, resumed_from, bytes, lines,
    /// parsed, rejected, skipped, duration_ms.
    #[getter]
    fn sources(&self) -> Rows {
        Rows::from_batch(self.inner.sources_batch())
    }
    /// The summary the CLI prints (per file with ``verbose=True``).
    #[pyo3(signature = (verbose = false))]
    fn report(&self, verbose: bool) -> String {
        terminal_safe_block(&self.inner.report(verbose))
    }
    fn __repr__(&self) -> String {
        self.report(false)
    }
}

/// A Python value bound to a ``$name`` SQL parameter, typed, never pasted.
fn scalar_of(name: &str, v: &Bound<'_, PyAny>) -> PyResult<ScalarValue> {
    if v.is_none() {
        return Ok(ScalarValue::Null);
    }
    if v.is_instance_of::<PyBool>() {
        return Ok(ScalarValue::Boolean(Some(v.extract()?)));
    }
    if v.is_instance_of::<PyInt>() {
        let i: i64 = v.extract().map_err(|_| PyValueError::new_err(format!("parameter {name}: integer out of the 64-bit range")))?;
        return Ok(ScalarValue::Int64(Some(i)));
    }
    if v.is_instance_of::<PyFloat>() {
        return Ok(ScalarValue::Float64(Some(v.extract()?)));
    }
    if v.is_instance_of::<PyString>() {
        return Ok(ScalarValue::Utf8(Some(v.extract()?)));
    }
    let datetime = v.py().import("datetime")?.getattr("datetime")?;
    if v.is_instance(&datetime)? {
        let text: String = v.call_method0("isoformat")?.extract()?;
        let us = mcpf_formats::time::parse_time_bound(&text)
            .ok_or_else(|| PyValueError::new_err(format!("parameter {name}: a datetime needs a time zone (e.g. datetime(..., tzinfo=timezone.utc)), got {text}")))?;
        return Ok(ScalarValue::TimestampMicrosecond(Some(us), Some("UTC".into())));
    }
    Err(PyTypeError::new_err(format!("parameter {name}: expected None, bool, int, float, str or an aware datetime, got {}", v.get_type().name()?)))
}

/// A ``since``/``until`` bound: an aware datetime, or text (RFC 3339 or a date).
fn time_bound(what: &str, v: Option<&Bound<'_, PyAny>>) -> PyResult<Option<i64>> {
    let Some(v) = v.filter(|v| !v.is_none()) else { return Ok(None) };
    let text: String = if v.is_instance_of::<PyString>() { v.extract()? } else { v.call_method0("isoformat")?.extract()? };
    mcpf_formats::time::parse_time_bound(&text)
        .map(Some)
        .ok_or_else(|| PyValueError::new_err(format!("{what}={text:?}: expected an aware datetime, an RFC 3339 time (2026-01-31T12:00:00Z) or a date (2026-01-31)")))
}

/// A rule parameter's value as the text the rule parses (and type-checks).
fn param_text(key: &str, v: &Bound<'_, PyAny>) -> PyResult<String> {
    if v.is_instance_of::<PyBool>() {
        return Ok(if v.extract::<bool>()? { "true" } else { "false" }.to_string());
    }
    if v.is_instance_of::<PyInt>() || v.is_instance_of::<PyFloat>() {
        return Ok(v.str()?.extract()?);
    }
    if v.is_instance_of::<PyString>() {
        return v.extract();
    }
    Err(PyTypeError::new_err(format!("params[{key:?}]: expected bool, int, float or str, got {}", v.get_type().name()?)))
}

/// A Delta Lake directory of normalized MCP traces and mail logs.
///
/// The lake need not exist yet: :meth:`ingest` creates it. ``rules`` adds
/// user rule folders (a user rule replaces a built-in one with the same
/// id), ``lists`` a folder of lists (``NAME.txt`` becomes table
/// ``list_NAME``), ``config`` a detection config file (TOML), exactly as
/// the CLI's ``--rules``, ``--lists`` and ``--config``.
///
/// >>> lake = Lake(tmp / "lake")
/// >>> summary = lake.ingest(["sample-logs/mcp", "sample-logs/postfix"], year=2026)
/// >>> summary.lines == summary.parsed + summary.rejected + summary.skipped
/// True
#[pyclass(frozen, module = "mcp_forensics._native")]
pub struct Lake {
    inner: mcpf_lake::Lake,
    config: DetectConfig,
}

impl Lake {
    /// Readers fail on a path that is not a lake (the CLI's check and
    /// message), instead of returning no findings from no evidence.
    fn require(&self) -> PyResult<()> {
        self.inner.require_lake().map_err(lake_err)
    }

    fn setup(&self, params: Option<&Bound<'_, PyDict>>) -> PyResult<RuleSetup> {
        let mut cfg = self.config.clone();
        if let Some(params) = params {
            let mut texts = Vec::new();
            for (k, v) in params.iter() {
                let k: String = k.extract()?;
                if let Ok(inner) = v.cast::<PyDict>() {
                    for (name, value) in inner.iter() {
                        let name: String = name.extract()?;
                        let key = format!("{k}.{name}");
                        texts.push(format!("{key}={}", param_text(&key, &value)?));
                    }
                } else {
                    texts.push(format!("{k}={}", param_text(&k, &v)?));
                }
            }
            cfg.add_param_texts(&texts).map_err(rule_err)?;
        }
        cfg.setup().map_err(rule_err)
    }
}

#[pymethods]
impl Lake {
    #[new]
    #[pyo3(signature = (path, *, rules = None, lists = None, config = None, engine = None))]
    fn new(path: PathBuf, rules: Option<Vec<PathBuf>>, lists: Option<PathBuf>, config: Option<PathBuf>, engine: Option<String>) -> PyResult<Lake> {
        let mut cfg = match &config {
            Some(p) => DetectConfig::load(p).map_err(rule_err)?,
            None => DetectConfig::default(),
        };
        cfg.rule_dirs.extend(rules.unwrap_or_default());
        if lists.is_some() {
            cfg.lists_dir = lists;
        }
        // Fail now, not at the first detect, on a broken rule folder or list.
        cfg.setup().map_err(rule_err)?;
        let mut inner = mcpf_lake::Lake::open(&path).map_err(lake_err)?;
        // `engine="ballista://HOST:PORT"`: queries run on that cluster.
        if let Some(url) = engine {
            let engine = mcpf_cluster::BallistaEngine::parse(&url).map_err(pyo3::exceptions::PyValueError::new_err)?;
            inner.set_engine(std::sync::Arc::new(engine));
        }
        Ok(Lake { inner, config: cfg })
    }

    /// The lake's directory.
    #[getter]
    fn path(&self) -> String {
        self.inner.root().display().to_string()
    }

    /// Ingest log files and folders (recursively; .gz and .zst too). The
    /// format is detected per file unless ``format`` names a parser of the
    /// registry (``postfix``, ``exim``, ``sendmail``, ``claude_code``, ...; a
    /// wrong name raises ``ValueError`` listing every one).
    /// ``year`` is the year of the first line of year-less syslog stamps;
    /// ``tz`` the zone of stamps written without offset (``"Europe/Berlin"``,
    /// ``"UTC"``, ``"+02:00"``; default: read as UTC). Re-ingesting the same content adds nothing; a grown log adds its new
    /// lines. Ctrl-C stops the run before it commits: the lake stays as it was.
    /// ``force=True`` reads the given sources again although they were
    /// ingested (after a wrong ``year``, ``tz`` or ``format``): the rows of
    /// their earlier ingest are removed in the same run.
    #[pyo3(signature = (paths, format = None, year = None, tz = None, force = false))]
    fn ingest(&self, py: Python<'_>, paths: Vec<PathBuf>, format: Option<&str>, year: Option<i32>, tz: Option<&str>, force: bool) -> PyResult<IngestSummary> {
        let format = format.map(|f| f.parse::<mcpf_formats::Format>()).transpose().map_err(|e| PyValueError::new_err(e.to_string()))?;
        let zone = tz.map(|z| z.parse::<mcpf_formats::time::Zone>()).transpose().map_err(PyValueError::new_err)?;
        let inner = &self.inner;
        let summary = run_stoppable(py, |stop| inner.ingest(&paths, &mcpf_lake::IngestOptions { format, year, zone, force, stop: Some(stop.clone()), ..Default::default() }))?;
        Ok(IngestSummary { inner: summary.map_err(lake_err)? })
    }

    /// Drop every row read from the given sources (a path as ingest
    /// recorded it, or a sha256 of 12+ hex digits), recorded in
    /// ``_ingest_log`` with status ``forgotten``; the next ingest reads them
    /// again. Returns one row per source with the rows removed.
    fn forget(&self, py: Python<'_>, sources: Vec<String>) -> PyResult<Rows> {
        self.require()?;
        let inner = &self.inner;
        let report = py.detach(|| inner.forget(&sources, &mut |_| {})).map_err(lake_err)?;
        let files: Vec<&str> = report.sources.iter().map(|s| s.source_file.as_str()).collect();
        let removed: Vec<i64> = report.sources.iter().map(|s| s.total() as i64).collect();
        let per_table: Vec<String> = report.sources.iter().map(|s| serde_json::to_string(&s.rows_removed).unwrap_or_default()).collect();
        let batch = RecordBatch::try_from_iter(vec![
            ("source_file", Arc::new(arrow::array::StringArray::from(files)) as ArrayRef),
            ("rows_removed", Arc::new(arrow::array::Int64Array::from(removed)) as ArrayRef),
            ("rows_removed_json", Arc::new(arrow::array::StringArray::from(per_table)) as ArrayRef),
        ])
        .map_err(|e| lake_err(e.to_string()))?;
        Ok(Rows::from_batch(batch))
    }

    /// Every table with its row count and what it holds.
    fn tables(&self, py: Python<'_>) -> PyResult<Rows> {
        self.require()?;
        let counts = run_stoppable(py, |stop| ops::table_counts(&self.inner, Some(stop)))?.map_err(query_err)?;
        Ok(Rows::from_batch(batches::tables_batch(&counts).map_err(query_err)?))
    }

    /// Run SQL (DataFusion dialect) over the lake's tables and lists.
    /// Keyword arguments are bound to ``$name`` placeholders with their
    /// Python type (None, bool, int, float, str, aware datetime) and are
    /// never pasted into the text, so a value cannot change the query.
    ///
    /// >>> lake.sql("SELECT count(*) AS n FROM mail_deliveries WHERE recipient = $r", r="phan@giftshop.club").num_rows
    /// 1
    #[pyo3(signature = (query, **params))]
    fn sql(&self, py: Python<'_>, query: &str, params: Option<&Bound<'_, PyDict>>) -> PyResult<Rows> {
        self.require()?;
        let mut bound = Vec::new();
        if let Some(params) = params {
            for (k, v) in params.iter() {
                let k: String = k.extract()?;
                bound.push((k.clone(), scalar_of(&k, &v)?));
            }
        }
        let setup = self.setup(None)?;
        let (schema, batches) = run_stoppable(py, |stop| ops::sql(&self.inner, &setup, query, bound, Some(stop)))?.map_err(query_err)?;
        Ok(Rows::new(schema, batches))
    }

    /// Run the detection rules (all, or the ids in ``rules``). ``params``
    /// sets rule parameters: ``{"mail.constant_bcc.min_share": 0.5}`` or
    /// ``{"mail.constant_bcc": {"min_share": 0.5}}``. ``since``/``until``
    /// keep findings with evidence in [since, until). ``record`` appends new
    /// or changed findings to the lake's ``_findings`` table; ``new_only``
    /// records too and returns only findings no earlier recorded run reported
    /// (for scheduled runs).
    #[pyo3(signature = (since = None, until = None, rules = None, params = None, new_only = false, record = false))]
    fn detect(
        &self,
        py: Python<'_>,
        since: Option<&Bound<'_, PyAny>>,
        until: Option<&Bound<'_, PyAny>>,
        rules: Option<Vec<String>>,
        params: Option<&Bound<'_, PyDict>>,
        new_only: bool,
        record: bool,
    ) -> PyResult<Py<Findings>> {
        self.require()?;
        let setup = self.setup(params)?;
        let options = DetectOptions {
            rules: rules.unwrap_or_default(),
            params: setup.params.clone(),
            since_us: time_bound("since", since)?,
            until_us: time_bound("until", until)?,
            progress: None,
        };
        let req = ops::DetectRequest { options: options.clone(), record, new_only };
        let outcome = run_stoppable(py, |stop| ops::detect(&self.inner, &setup, &req, Some(stop)))?.map_err(query_err)?;
        let batch = batches::findings_batch(&outcome.findings).map_err(query_err)?;
        let init = PyClassInitializer::from(Rows::from_batch(batch)).add_subclass(Findings {
            findings: outcome.findings,
            setup,
            options,
            recorded: outcome.recorded,
            known_before: outcome.known_before,
        });
        Py::new(py, init)
    }

    /// Everything the lake knows about one address, server, session id or
    /// message id, in time order, each row pointing at its raw log line
    /// (ts, timestamp_desc, message, table, source_file, source_line, ...).
    /// Findings about it are merged in unless ``findings=False``.
    #[pyo3(signature = (entity, findings = true))]
    fn timeline(&self, py: Python<'_>, entity: &str, findings: bool) -> PyResult<Rows> {
        self.require()?;
        let setup = self.setup(None)?;
        let batch = run_stoppable(py, |stop| ops::timeline(&self.inner, &setup, entity, findings, Some(stop)))?.map_err(query_err)?;
        Ok(Rows::from_batch(batch))
    }

    /// Re-fingerprint every ingested raw log: one row per recorded source
    /// with its state (unchanged, grown, modified, truncated, missing),
    /// whether the ingested bytes are intact, and what that means. Relative
    /// recorded paths resolve from ``base`` (default: the current folder).
    /// The raw logs are evidence too: a rewrite after ingest shows here.
    #[pyo3(signature = (base = None))]
    fn verify(&self, py: Python<'_>, base: Option<PathBuf>) -> PyResult<Rows> {
        self.require()?;
        let checks = run_stoppable(py, |_| self.inner.verify(base.as_deref()))?.map_err(lake_err)?;
        Ok(Rows::from_batch(mcpf_lake::checks_batch(&checks)))
    }

    /// The rule catalogue this lake's detections use (built-in and user
    /// rules): id, severity, title, description, references, parameters, SQL.
    fn rules(&self) -> PyResult<Rows> {
        let setup = self.setup(None)?;
        Ok(Rows::from_batch(batches::rules_batch(&setup.rules).map_err(rule_err)?))
    }

    fn __repr__(&self) -> String {
        terminal_safe_block(&format!("Lake({:?})", self.inner.root().display().to_string()))
    }
}

/// The native module; `mcp_forensics` re-exports it.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Lake>()?;
    m.add_class::<Rows>()?;
    m.add_class::<Findings>()?;
    m.add_class::<IngestSummary>()?;
    m.add("McpForensicsError", m.py().get_type::<McpForensicsError>())?;
    m.add("LakeError", m.py().get_type::<LakeError>())?;
    m.add("RuleError", m.py().get_type::<RuleError>())?;
    m.add("QueryError", m.py().get_type::<QueryError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
