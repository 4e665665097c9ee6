//! The Parquet lake: normalized rows → Delta Lake tables, partitioned by day.
//!
//! Guarantees a responder relies on:
//! - **Readers see completed runs only, consistently.** Every writer run ends
//!   by publishing a snapshot that names the version of every table
//!   ([`layout`]); readers open every table at the versions of the newest
//!   snapshot. A run that is still committing, or died half-way, is
//!   invisible, and no reader sees one table from one run and another table
//!   from the next.
//! - **One writer at a time.** Writers (ingest, `detect --record`) hold the
//!   writers' lock for their whole run, so overlapping scheduled jobs wait
//!   for each other instead of racing: an OS file lock locally (a killed
//!   holder releases it by dying), a lease in an object store ([`lease`]).
//! - **Crash consistency.** Whatever a dead run committed after the published
//!   snapshot is rolled back (Delta RESTORE) and the data files it wrote are
//!   removed, by the next writer, before anything else ([`txn`]).
//! - **Idempotence.** A source whose content (sha256) was ingested before is
//!   skipped; a file that grew since (same bytes up to the recorded size) adds
//!   only rows from its new bytes. Exactly the fingerprinted bytes are parsed,
//!   however fast the file grows meanwhile ([`fingerprint`]).
//! - **No source is lost silently.** A source that cannot be read is recorded
//!   as failed in `_ingest_log` and the rest of the run commits ([`ingest`]).

mod batch;
pub mod fingerprint;
pub mod forget;
pub mod ingest;
pub mod layout;
pub mod lease;
mod legacy;
pub mod location;
pub mod maintenance;
pub mod rotation;
mod sink;
pub mod spool;
pub mod store;
pub mod summary;
pub mod txn;
pub mod verify;

use std::path::{Path, PathBuf};

use arrow::array::{Int64Array, StringArray};
use arrow::record_batch::RecordBatch;
use deltalake::datafusion::prelude::SessionContext;
use mcpf_schema::Table;

pub use batch::TableBuilder;
pub use forget::{ForgetReport, ForgottenSource};
pub use ingest::{expand_inputs, IngestOptions, IngestProgress, Input};
pub use layout::Snapshot;
pub use maintenance::{MaintenanceReport, OptimizeOptions, TableMaintenance, VacuumOptions};
pub use store::RUN_ID_KEY as INGEST_ID_KEY;
pub use summary::{IngestSummary, SourceAction, SourceReport};
pub use verify::{checks_batch, SourceCheck, SourceState};

/// The error text of a lock wait given up on the stop flag.
pub(crate) const STOPPED_WAITING: &str = "stopped while waiting for the writers' lock";

/// Errors with what to do next.
#[derive(Debug)]
pub enum LakeError {
    /// An input path is missing or unreadable.
    Input { path: PathBuf, message: String },
    /// The lake directory or a table in it cannot be used.
    Lake { path: PathBuf, message: String },
    /// The path is not a lake (or not a folder): reading it would report a
    /// false all-clear.
    NotALake { path: PathBuf, message: String },
    /// The caller set [`IngestOptions::stop`] before the run committed.
    Stopped,
}

impl std::fmt::Display for LakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LakeError::Input { path, message } => write!(f, "{}: {message}", path.display()),
            LakeError::Lake { path, message } => write!(f, "lake {}: {message}", path.display()),
            LakeError::NotALake { path, message } => write!(f, "{}: {message}", path.display()),
            LakeError::Stopped => f.write_str("stopped on request before anything was committed: the lake is as it was; run it again to finish"),
        }
    }
}

impl std::error::Error for LakeError {}

pub type Result<T> = std::result::Result<T, LakeError>;

/// A lake: a local folder or a prefix in an object store.
pub struct Lake {
    /// How users name it (the path, or the URL).
    root: PathBuf,
    loc: location::Location,
    rt: tokio::runtime::Runtime,
    engine: Option<std::sync::Arc<dyn QueryEngine>>,
}

/// Where queries over a lake run, when not in this process's DataFusion
/// session: a cluster ([`Lake::set_engine`]). Writers (ingest, the
/// `_findings` record) always run here; only reading queries go to it.
pub trait QueryEngine: Send + Sync {
    /// A session with every published table of `lake` registered, whose
    /// queries run on the engine.
    fn session<'a>(&'a self, lake: &'a Lake) -> futures::future::BoxFuture<'a, Result<SessionContext>>;
    /// How users name it (`ballista://host:port`).
    fn name(&self) -> String;
}

/// What readers of a lake see (see [`Lake::published_tables`]).
enum Published {
    /// The versions of the newest snapshot.
    At(Snapshot),
    /// No table: the lake's first run has not published.
    Nothing,
    /// Every table at its latest version: a lake from before snapshots.
    Latest,
}

/// Marks a session whose plans run elsewhere (set as a `SessionConfig`
/// extension): in-memory intermediate tables would be shipped inside every
/// plan there, so shared CTEs are left to the engine.
#[derive(Debug, Default)]
pub struct RemoteExecution;

/// Test hook for crash and race tests: when `MCPF_FAILPOINT` is `NAME` or
/// `NAME=abort`, the process aborts at the named point (as a SIGKILL would
/// stop it); `NAME=sleep:MS` pauses there. Unset, it costs one env lookup
/// at a handful of points per run.
pub fn failpoint(name: &str) {
    let Ok(spec) = std::env::var("MCPF_FAILPOINT") else { return };
    for one in spec.split(',') {
        let (point, action) = one.split_once('=').unwrap_or((one, "abort"));
        if point != name {
            continue;
        }
        if let Some(ms) = action.strip_prefix("sleep:").and_then(|m| m.parse::<u64>().ok()) {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        } else {
            eprintln!("failpoint {name}: aborting");
            std::process::abort();
        }
    }
}

/// Column `i` of a batch as text.
pub(crate) fn utf8_column(b: &RecordBatch, i: usize) -> std::result::Result<StringArray, String> {
    let a = arrow::compute::cast(b.column(i), &arrow::datatypes::DataType::Utf8).map_err(|e| e.to_string())?;
    Ok(a.as_any().downcast_ref::<StringArray>().expect("cast to utf8").clone())
}

/// Column `i` of a batch as 64-bit integers.
pub(crate) fn i64_column(b: &RecordBatch, i: usize) -> std::result::Result<Int64Array, String> {
    let a = arrow::compute::cast(b.column(i), &arrow::datatypes::DataType::Int64).map_err(|e| e.to_string())?;
    Ok(a.as_any().downcast_ref::<Int64Array>().expect("cast to i64").clone())
}

/// Threads for lakes opened from now on (`--threads`); 0 = the defaults.
static THREADS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Use `n` threads (at least 1) for the async runtime of every lake opened
/// after this call and for the query engine's partitions (DataFusion
/// `target_partitions`), instead of 2 runtime threads and one partition per
/// core.
pub fn set_threads(n: usize) {
    THREADS.store(n.max(1), std::sync::atomic::Ordering::Relaxed);
}

/// The thread count set by [`set_threads`], if any.
pub fn threads() -> Option<usize> {
    Some(THREADS.load(std::sync::atomic::Ordering::Relaxed)).filter(|n| *n > 0)
}

impl Lake {
    /// Open (or prepare to create) a lake at `root`: a folder, a `file://`
    /// URL or `s3://bucket/prefix` (see [`location`]). Nothing is checked or
    /// created yet: readers fail on a path that is not a lake, the first
    /// writer creates it.
    pub fn open(root: impl AsRef<Path>) -> Result<Lake> {
        let given = root.as_ref().to_path_buf();
        let loc = match given.to_str() {
            Some(text) => location::Location::parse(text).map_err(|message| LakeError::NotALake { path: given.clone(), message })?,
            None => location::Location::Local(given.clone()),
        };
        let root = loc.display();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads().unwrap_or(2))
            .enable_all()
            .build()
            .map_err(|e| LakeError::Lake { path: root.clone(), message: format!("cannot start runtime: {e}") })?;
        Ok(Lake { root, loc, rt, engine: None })
    }

    /// Run a future on the lake's runtime (for synchronous callers: the CLI
    /// and the Python bindings).
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// A handle to the lake's runtime, for threads of its own (the ingest
    /// encoder) that run its futures.
    pub(crate) fn runtime_handle(&self) -> tokio::runtime::Handle {
        self.rt.handle().clone()
    }

    /// [`Lake::block_on`] that gives up with [`LakeError::Stopped`] soon
    /// after `stop` is set (within 25 ms), dropping the future: a query is
    /// cancelled, nothing is committed by it.
    pub fn block_on_stoppable<F: std::future::Future>(&self, f: F, stop: Option<&std::sync::atomic::AtomicBool>) -> Result<F::Output> {
        let Some(stop) = stop else { return Ok(self.rt.block_on(f)) };
        self.rt.block_on(async {
            tokio::pin!(f);
            loop {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    return Err(LakeError::Stopped);
                }
                tokio::select! {
                    out = &mut f => return Ok(out),
                    _ = tokio::time::sleep(std::time::Duration::from_millis(25)) => {}
                }
            }
        })
    }

    /// How users name the lake: its folder, or its URL (as a path).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the lake lives.
    pub fn location(&self) -> &location::Location {
        &self.loc
    }

    /// Keep a stream (standard input) in the lake as a file to ingest: its
    /// path, `_lake/spool/stdin-HASH` (see [`spool::spool`]).
    pub fn spool(&self, input: &mut dyn std::io::Read) -> Result<PathBuf> {
        if self.loc.local().is_none() {
            // Rows point back to the spooled file; it must be a file the
            // responder can open, not an object only the lake's host reads.
            return Err(self.lake_err("standard input can be ingested into a local lake only: save it to a file and ingest the file (its rows then point back to it)"));
        }
        self.layout().create().map_err(|e| self.lake_err(format!("cannot create the lake's folder: {e}")))?;
        spool::spool(&self.root, input).map_err(|e| self.lake_err(format!("cannot keep standard input in _lake/spool: {e}")))
    }

    /// Directory of a table.
    pub fn table_path(&self, t: Table) -> PathBuf {
        self.store().table_path(t)
    }

    pub(crate) fn lake_err(&self, message: impl std::fmt::Display) -> LakeError {
        LakeError::Lake { path: self.root.clone(), message: message.to_string() }
    }

    pub(crate) fn store(&self) -> store::Store {
        store::Store::new(&self.loc)
    }

    pub(crate) fn layout(&self) -> layout::Layout {
        layout::Layout::at(&self.loc)
    }

    /// Whether the root is a lake: it has `_lake/lake.json`, or the
    /// `_ingest_log` table of a lake from before `_lake/` existed.
    pub fn is_lake(&self) -> bool {
        self.layout().has_marker() || self.store().exists(Table::IngestLog)
    }

    /// Fail unless the root is a lake, saying what to do instead.
    pub fn require_lake(&self) -> Result<()> {
        let p = &self.root;
        let not = |message: String| Err(LakeError::NotALake { path: p.clone(), message });
        if self.loc.local().is_none() {
            return if self.is_lake() {
                Ok(())
            } else {
                not(format!("no mcp-forensics lake here (no {}/lake.json): nothing was ingested at this URL, so no finding could come from it; create one with: mcp-forensics ingest --lake {} LOGS...", layout::LAKE_DIR, p.display()))
            };
        }
        match std::fs::metadata(p) {
            Err(_) => not(format!("no such lake folder; create one with: mcp-forensics ingest --lake {} LOGS...", p.display())),
            Ok(m) if !m.is_dir() => not("is a file, not a lake folder; give the folder that ingest created (--lake DIR)".into()),
            Ok(_) if !self.is_lake() => not(format!(
                "is a folder but not an mcp-forensics lake (no {}/lake.json, no _ingest_log table): nothing here was ingested, so no finding could come from it; give the folder ingest created",
                layout::LAKE_DIR
            )),
            Ok(_) => Ok(()),
        }
    }

    /// Before the first write: the root must be a lake, or new, or empty.
    pub(crate) fn prepare_for_writing(&self) -> Result<()> {
        let p = &self.root;
        if let location::Location::Remote(r) = &self.loc {
            if self.is_lake() {
                return Ok(());
            }
            let keys = r.list("").map_err(|e| self.lake_err(e))?;
            return if keys.iter().all(|(k, _)| k.starts_with(&format!("{}/", layout::LAKE_DIR))) {
                Ok(())
            } else {
                Err(LakeError::NotALake { path: p.clone(), message: "holds other objects and is not an mcp-forensics lake: refusing to write tables there; give a new or empty prefix".into() })
            };
        }
        match std::fs::metadata(p) {
            Ok(m) if !m.is_dir() => Err(LakeError::NotALake { path: p.clone(), message: "is a file, not a lake folder; give a new or existing lake folder (--lake DIR)".into() }),
            Ok(_) if !self.is_lake() => {
                let empty = std::fs::read_dir(p).map(|mut d| d.next().is_none()).unwrap_or(false);
                let only_bookkeeping = std::fs::read_dir(p).map(|d| d.flatten().all(|e| e.file_name() == layout::LAKE_DIR)).unwrap_or(false);
                if empty || only_bookkeeping {
                    Ok(())
                } else {
                    Err(LakeError::NotALake {
                        path: p.clone(),
                        message: "is a folder with other files and not an mcp-forensics lake: refusing to write tables into it; give a new or empty folder".into(),
                    })
                }
            }
            Ok(_) => Ok(()),
            Err(_) => std::fs::create_dir_all(p).map_err(|e| self.lake_err(format!("cannot create the lake folder: {e}"))),
        }
    }

    /// The newest published snapshot (None for a lake from before snapshots).
    pub fn snapshot(&self) -> Result<Option<Snapshot>> {
        self.layout().latest_snapshot().map_err(|e| self.lake_err(e))
    }

    /// The tables readers see: each at its version in the newest snapshot
    /// (a lake from before snapshots: at its latest version). Fails when the
    /// root is not a lake.
    pub async fn published_tables(&self) -> Result<Vec<(Table, deltalake::DeltaTable)>> {
        self.require_lake()?;
        let published = self.published()?;
        let mut out = Vec::new();
        for t in Table::ALL {
            if let Some(table) = self.published_table(t, &published).await? {
                out.push((t, table));
            }
        }
        Ok(out)
    }

    /// What readers may see, read once per query: the newest snapshot; or,
    /// without one, nothing (a lake with `_lake/lake.json` whose first run
    /// is still writing, or died: none of what it committed is visible) or
    /// every table at its latest version (a lake from before snapshots).
    fn published(&self) -> Result<Published> {
        Ok(match self.snapshot()? {
            Some(s) => Published::At(s),
            None if self.layout().has_marker() => Published::Nothing,
            None => Published::Latest,
        })
    }

    /// One table as readers see it (None: not published, or not created yet).
    async fn published_table(&self, t: Table, published: &Published) -> Result<Option<deltalake::DeltaTable>> {
        let version = match published {
            Published::At(s) => match s.tables.get(t.name()) {
                Some(v) => Some(*v),
                None => return Ok(None),
            },
            Published::Nothing => return Ok(None),
            Published::Latest => None,
        };
        self.store().load(t, version).await.map_err(|e| self.lake_err(e))
    }

    /// Run the reading queries of this lake (detect, sql, timeline) on
    /// `engine` instead of in this process.
    pub fn set_engine(&mut self, engine: std::sync::Arc<dyn QueryEngine>) {
        self.engine = Some(engine);
    }

    /// The engine set with [`Lake::set_engine`], if any.
    pub fn engine(&self) -> Option<&std::sync::Arc<dyn QueryEngine>> {
        self.engine.as_ref()
    }

    /// A DataFusion context with every published table registered: on the
    /// engine set with [`Lake::set_engine`], else in this process.
    pub async fn session(&self) -> Result<SessionContext> {
        match &self.engine {
            Some(engine) => engine.session(self).await,
            None => self.local_session().await,
        }
    }

    /// A DataFusion context in this process with every published table
    /// registered.
    pub async fn local_session(&self) -> Result<SessionContext> {
        // Rules scan whole tables; reading each file's page index only adds
        // I/O (measured: 3.5 s -> 2.8 s on the 20k-message benchmark rule).
        let mut config = deltalake::datafusion::prelude::SessionConfig::new().set_bool("datafusion.execution.parquet.enable_page_index", false);
        if let Some(n) = threads() {
            config = config.with_target_partitions(n);
        }
        let ctx = SessionContext::new_with_config(config);
        for (t, table) in self.published_tables().await? {
            let provider = table.table_provider().await.map_err(|e| self.lake_err(e))?;
            ctx.register_table(t.name(), provider).map_err(|e| self.lake_err(e))?;
        }
        Ok(ctx)
    }

    /// Run SQL over the published `_ingest_log` (as table `l`); no rows when
    /// there is none yet.
    pub(crate) async fn query_ingest_log(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        self.query_ingest_log_with(sql, vec![]).await
    }

    /// [`Lake::query_ingest_log`] with bound parameters (`$name`). Loads
    /// only `_ingest_log`, at its published version.
    /// Table `l` holds the records of sources still in the lake (see
    /// [`forget::LIVE_INGEST_LOG`]).
    async fn query_ingest_log_with(&self, sql: &str, params: Vec<(String, deltalake::datafusion::scalar::ScalarValue)>) -> Result<Vec<RecordBatch>> {
        let sql = format!("{}{sql}", forget::LIVE_INGEST_LOG);
        self.query_published_table(Table::IngestLog, "ingest_log_records", &sql, params).await
    }

    /// Every `_ingest_log` record as written (table `l`), forgotten sources'
    /// included: which runs completed.
    pub(crate) async fn query_ingest_records(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        self.query_published_table(Table::IngestLog, "l", sql, vec![]).await
    }

    /// Run SQL over one published table, registered as `alias`, loading
    /// only that table; no rows when it does not exist yet.
    pub(crate) async fn query_published_table(&self, t: Table, alias: &str, sql: &str, params: Vec<(String, deltalake::datafusion::scalar::ScalarValue)>) -> Result<Vec<RecordBatch>> {
        if !self.is_lake() {
            return Ok(vec![]);
        }
        let Some(table) = self.published_table(t, &self.published()?).await? else { return Ok(vec![]) };
        let ctx = SessionContext::new();
        ctx.register_table(alias, table.table_provider().await.map_err(|e| self.lake_err(e))?).map_err(|e| self.lake_err(e))?;
        let df = ctx.sql(sql).await.map_err(|e| self.lake_err(e))?;
        let df = if params.is_empty() { df } else { df.with_param_values(params).map_err(|e| self.lake_err(e))? };
        df.collect().await.map_err(|e| self.lake_err(e))
    }

    /// The first value of a query over the published `_ingest_log` with
    /// bound parameters (paths and hashes are never pasted into SQL).
    fn ingest_log_value(&self, sql: &str, params: Vec<(String, deltalake::datafusion::scalar::ScalarValue)>) -> Result<Option<String>> {
        self.block_on(async {
            let batches = self.query_ingest_log_with(sql, params).await?;
            for b in &batches {
                if b.num_rows() > 0 {
                    let a = utf8_column(b, 0).map_err(|e| self.lake_err(e))?;
                    return Ok(a.iter().next().flatten().map(str::to_string));
                }
            }
            Ok(None)
        })
    }

    fn json_value(&self, text: Option<String>) -> Option<serde_json::Value> {
        text.and_then(|t| serde_json::from_str(&t).ok())
    }

    /// The correlation state a content (sha256) ended with when ingested.
    pub(crate) fn carry_of_content(&self, sha: &str) -> Result<Option<serde_json::Value>> {
        use deltalake::datafusion::scalar::ScalarValue;
        let t = self.ingest_log_value(
            "SELECT carry_out_json FROM l WHERE coalesce(content_sha256, source_sha256) = $sha AND carry_out_json IS NOT NULL ORDER BY ts DESC LIMIT 1",
            vec![("sha".into(), ScalarValue::Utf8(Some(sha.into())))],
        )?;
        Ok(self.json_value(t))
    }

    /// The correlation state the ingest of `size` bytes with hash `sha`
    /// started from (a grown file is read again from its start with it).
    pub(crate) fn carry_into_content(&self, sha: &str, size: u64) -> Result<Option<serde_json::Value>> {
        use deltalake::datafusion::scalar::ScalarValue;
        let t = self.ingest_log_value(
            "SELECT carry_in_json FROM l WHERE coalesce(content_sha256, source_sha256) = $sha AND coalesce(content_size, source_size) = $size AND carry_in_json IS NOT NULL ORDER BY ts DESC LIMIT 1",
            vec![("sha".into(), ScalarValue::Utf8(Some(sha.into()))), ("size".into(), ScalarValue::Int64(Some(size as i64)))],
        )?;
        Ok(self.json_value(t))
    }

    /// The state the latest ingested file of a rotated set ended with,
    /// leaving out the paths of `exclude` (sources the run reads again).
    pub(crate) fn carry_of_group(&self, group: &str, exclude: &std::collections::HashSet<String>) -> Result<Option<serde_json::Value>> {
        use deltalake::datafusion::scalar::ScalarValue;
        let batches = self.block_on(self.query_ingest_log_with(
            "SELECT source_file, carry_out_json FROM l WHERE rotation_group = $g AND status <> 'failed' AND carry_out_json IS NOT NULL ORDER BY ts DESC",
            vec![("g".into(), ScalarValue::Utf8(Some(group.into())))],
        ))?;
        for b in &batches {
            let file = utf8_column(b, 0).map_err(|e| self.lake_err(e))?;
            let carry = utf8_column(b, 1).map_err(|e| self.lake_err(e))?;
            if let Some(i) = (0..b.num_rows()).find(|i| !exclude.contains(file.value(*i))) {
                return Ok(self.json_value(Some(carry.value(i).to_string())));
            }
        }
        Ok(None)
    }

    /// A writer run outside ingest (the `_findings` record of scheduled
    /// detect runs): `f` gets the transaction, with the lock held and dead
    /// runs recovered, and may read the published state and append; what it
    /// appended is published when it returns Ok, rolled back otherwise.
    pub fn write<T>(&self, kind: &'static str, run_id: &str, stop: Option<&std::sync::atomic::AtomicBool>, f: impl FnOnce(&mut txn::WriteTxn<'_>) -> Result<T>) -> Result<T> {
        let mut txn = txn::WriteTxn::begin(self, kind, run_id, stop, &mut |_| {})?;
        match f(&mut txn) {
            Ok(v) => {
                txn.publish()?;
                Ok(v)
            }
            Err(e) => {
                txn.abort();
                Err(e)
            }
        }
    }

    /// Append one batch to a table in one commit, inside `txn`.
    pub fn append(&self, txn: &mut txn::WriteTxn<'_>, t: Table, batch: RecordBatch) -> Result<()> {
        use deltalake::writer::{DeltaWriter, RecordBatchWriter};
        let version = self.block_on(async {
            let mut table = self.store().ensure(t).await.map_err(|e| self.lake_err(e))?;
            let mut w = RecordBatchWriter::for_table(&table)
                .map_err(|e| self.lake_err(e))?
                .with_writer_properties(sink::writer_properties())
                .with_commit_properties(store::run_properties(txn.run_id()));
            w.write(batch).await.map_err(|e| self.lake_err(format!("writing {}: {e}", t.name())))?;
            w.flush_and_commit(&mut table).await.map_err(|e| self.lake_err(format!("committing {}: {e}", t.name())))
        })?;
        txn.committed(t, version as u64);
        Ok(())
    }
}
