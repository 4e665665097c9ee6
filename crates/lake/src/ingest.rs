//! The ingest pipeline: inputs → sources → parsed rows → one published lake
//! state.
//!
//! Orchestration only; storage is [`crate::store`], the writers' lock and
//! published snapshots are [`crate::layout`], and the transaction that ties
//! them together is [`crate::txn`]. Per source: open once, fix its length,
//! fingerprint exactly those bytes, skip what was ingested before, parse
//! exactly the fingerprinted bytes, record the outcome in `_ingest_log`. A
//! source that cannot be read is recorded as failed and the run goes on.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use mcpf_formats::collect::Provenance;
use mcpf_formats::source::{decompressed, Compression};
use mcpf_formats::time::Zone;
use mcpf_formats::{detect_format, Format, NamedRow, RowSink, SourceInfo, SourceStats, Val};
use mcpf_schema::Table;
use sha2::{Digest, Sha256};

use crate::fingerprint::{empty_sha, exact_bytes, fingerprint_prefixes, fingerprint_stream, hex};
use crate::sink::LakeSink;
use crate::summary::{IngestSummary, SourceAction, SourceReport};
use crate::txn::WriteTxn;
use crate::{failpoint, Lake, LakeError, Result};

/// How much of a source's decompressed start format detection looks at.
const HEAD_BYTES: usize = 64 * 1024;

/// What `ingest` should do besides its defaults.
#[derive(Debug, Clone, Default)]
pub struct IngestOptions {
    /// Force a parser instead of auto-detection.
    pub format: Option<Format>,
    /// Year of the first line of year-less syslog timestamps.
    pub year: Option<i32>,
    /// Zone of timestamps that carry no offset (`--tz`); None reads them as
    /// UTC.
    pub zone: Option<Zone>,
    /// Set from another thread to stop the run before it commits (Ctrl-C in
    /// the Python bindings): nothing of the run becomes visible.
    pub stop: Option<Arc<AtomicBool>>,
    /// Read the given sources again although they were ingested (after a
    /// wrong `--year`, `--tz` or `--format`): the rows of their earlier
    /// ingests are removed in the same run, so the lake ends as if this run
    /// had been the first.
    pub force: bool,
    /// Live counters for a progress display, updated as sources are read.
    pub progress: Option<Arc<IngestProgress>>,
}

/// Live counters of a running ingest, read from another thread (the CLI's
/// progress bar): they never affect what is written.
#[derive(Debug, Default)]
pub struct IngestProgress {
    /// Bytes of all sources on disk (compressed bytes for `.gz`), known once
    /// the inputs are expanded.
    pub bytes_total: std::sync::atomic::AtomicU64,
    /// Bytes of sources finished or read so far, on disk.
    pub bytes_done: std::sync::atomic::AtomicU64,
    /// Lines read so far (of the content the parsers see).
    pub lines: std::sync::atomic::AtomicU64,
    pub sources_total: std::sync::atomic::AtomicU64,
    pub sources_done: std::sync::atomic::AtomicU64,
    /// The source being read.
    pub current: std::sync::Mutex<String>,
}

impl IngestProgress {
    fn start_source(&self, path: &str) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = path.to_string();
    }

    /// The source being read now.
    pub fn current(&self) -> String {
        self.current.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// A reader that adds the bytes read to a progress counter.
struct CountingRead<'p, R> {
    inner: R,
    bytes: &'p std::sync::atomic::AtomicU64,
}

impl<R: Read> Read for CountingRead<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// A buffered reader that counts the newlines the parser consumes.
struct LineCounting<'p, R> {
    inner: R,
    lines: &'p std::sync::atomic::AtomicU64,
}

impl<R: std::io::BufRead> Read for LineCounting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.lines.fetch_add(memchr::memchr_iter(b'\n', &buf[..n]).count() as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl<R: std::io::BufRead> std::io::BufRead for LineCounting<'_, R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        // The bytes being consumed are the front of the buffer just filled
        // (fill_buf on a non-empty buffer reads nothing).
        if let Ok(buf) = self.inner.fill_buf() {
            let amt = amt.min(buf.len());
            self.lines.fetch_add(memchr::memchr_iter(b'\n', &buf[..amt]).count() as u64, Ordering::Relaxed);
        }
        self.inner.consume(amt);
    }
}

/// One input path after expansion: a file to read, or why it cannot be.
#[derive(Debug, Clone)]
pub struct Input {
    pub path: PathBuf,
    /// Set when the path cannot be read as a source (missing, a dangling
    /// link, a FIFO or device, an unlistable folder).
    pub problem: Option<String>,
}

/// Expand files and directories (recursively, sorted) into sources. Nothing
/// is dropped silently: an entry that is not a readable regular file comes
/// back with its problem, to be recorded as a failed source.
pub fn expand_inputs(paths: &[PathBuf]) -> Vec<Input> {
    fn walk(p: &Path, out: &mut Vec<Input>, depth: usize) {
        let problem = |m: String| Input { path: p.to_path_buf(), problem: Some(m) };
        let meta = match fs::metadata(p) {
            Ok(m) => m,
            Err(e) => return out.push(problem(format!("cannot read: {e}"))),
        };
        if meta.is_file() {
            out.push(Input { path: p.to_path_buf(), problem: None });
        } else if meta.is_dir() {
            if depth >= 64 {
                return out.push(problem("folder nested deeper than 64 levels (a link loop?): not read".into()));
            }
            let entries = match fs::read_dir(p) {
                Ok(e) => e,
                Err(e) => return out.push(problem(format!("cannot list directory: {e}"))),
            };
            let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            entries.sort();
            for e in entries {
                walk(&e, out, depth + 1);
            }
        } else {
            out.push(problem(format!("not a regular file ({}): not read", special_kind(&meta))));
        }
    }
    let mut out = Vec::new();
    for p in paths {
        walk(p, &mut out, 0);
    }
    out
}

#[cfg(unix)]
fn special_kind(meta: &fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        "not a file or folder"
    }
}

#[cfg(not(unix))]
fn special_kind(_: &fs::Metadata) -> &'static str {
    "not a file or folder"
}

/// What `_ingest_log` says about one path: its longest successful ingest,
/// by the hash and length of its content (decompressed bytes for `.gz`).
#[derive(Debug, Clone)]
struct Seen {
    sha: String,
    size: u64,
}

/// Sources ingested before: content hashes, the latest per path, and per
/// rotated set the latest of each of its paths.
#[derive(Debug, Default)]
struct History {
    shas: HashSet<String>,
    by_path: HashMap<String, Seen>,
    by_group: HashMap<String, Vec<Seen>>,
}

/// An id for one ingest run: time plus a hash of pid and inputs.
fn new_run_id(inputs: &[Input]) -> String {
    let now = chrono::Utc::now();
    let mut h = Sha256::new();
    h.update(now.timestamp_nanos_opt().unwrap_or(0).to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    for i in inputs {
        h.update(i.path.to_string_lossy().as_bytes());
    }
    format!("{}-{}", now.format("%Y%m%dT%H%M%SZ"), &hex(&h.finalize())[..12])
}

impl Lake {
    /// Ingest files and directories. See the crate docs for the guarantees.
    pub fn ingest(&self, inputs: &[PathBuf], opts: &IngestOptions) -> Result<IngestSummary> {
        self.ingest_with(inputs, opts, &mut |_| {})
    }

    /// [`Lake::ingest`], calling `on_wait` once if another writer holds the
    /// lake and this run has to wait for it.
    pub fn ingest_with(&self, inputs: &[PathBuf], opts: &IngestOptions, on_wait: &mut dyn FnMut(&str)) -> Result<IngestSummary> {
        let started = Instant::now();
        let inputs = expand_inputs(inputs);
        let run_id = new_run_id(&inputs);
        let stop = opts.stop.as_deref();
        let mut txn = WriteTxn::begin(self, "ingest", &run_id, stop, on_wait)?;
        let outcome = self.run_ingest(&mut txn, inputs, opts);
        match outcome {
            Ok(mut summary) => {
                failpoint("ingest-before-publish");
                summary.recovered = txn.recovered().to_vec();
                txn.publish()?;
                summary.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
                Ok(summary)
            }
            Err(e) => {
                // Nothing of this run may stay: roll back what it committed
                // and remove the files it wrote, while still holding the lock.
                txn.abort();
                Err(e)
            }
        }
    }

    fn run_ingest(&self, txn: &mut WriteTxn<'_>, inputs: Vec<Input>, opts: &IngestOptions) -> Result<IngestSummary> {
        let mut history = self.history(&HashSet::new())?;
        // --force: the earlier rows of every given source that was ingested
        // go first, in this run; its history no longer counts.
        let forced: Vec<String> = if opts.force { forced_paths(&inputs, &history) } else { Vec::new() };
        let replaced = self.delete_rows_of(txn, &forced)?;
        let forced: HashSet<String> = forced.into_iter().collect();
        if !forced.is_empty() {
            history = self.history(&forced)?;
        }
        if let Some(p) = &opts.progress {
            let on_disk: u64 = inputs.iter().filter_map(|i| fs::metadata(&i.path).ok()).map(|m| m.len()).sum();
            p.bytes_total.store(on_disk, Ordering::Relaxed);
            p.sources_total.store(inputs.len() as u64, Ordering::Relaxed);
        }
        let mut sink = LakeSink::open(self, txn.run_id())?;
        for r in &replaced {
            crate::forget::log_forgotten(self, &mut sink, txn.run_id(), r)?;
        }
        let mut summary = IngestSummary { ingest_id: txn.run_id().to_string(), replaced, ..Default::default() };
        let mut run = SourceRun { lake: self, opts, history: &history, forced: &forced, ingested_now: HashSet::new(), run_id: Arc::from(txn.run_id()), carry: HashMap::new() };
        // Each rotated set oldest first, so one correlation state runs
        // through it (a message that straddles a rotation stays whole).
        let inputs = crate::rotation::oldest_first_inputs(inputs);
        let groups: Vec<String> = inputs.iter().map(|i| crate::rotation::rotation_of(&i.path).group).collect();
        for (i, input) in inputs.into_iter().enumerate() {
            if run.stopped() {
                return Err(LakeError::Stopped);
            }
            let continues = groups.get(i + 1) == Some(&groups[i]);
            let on_disk = fs::metadata(&input.path).map(|m| m.len()).unwrap_or(0);
            let done_before = opts.progress.as_ref().map(|p| p.bytes_done.load(Ordering::Relaxed));
            let report = run.source(input, &groups[i], continues, &mut sink)?;
            if let (Some(p), Some(before)) = (&opts.progress, done_before) {
                // Whatever part of the source was read (or skipped), it is done.
                p.bytes_done.store(before + on_disk, Ordering::Relaxed);
                p.sources_done.fetch_add(1, Ordering::Relaxed);
            }
            for (t, n) in &report.stats.rows {
                *summary.rows.entry(t).or_insert(0) += n;
            }
            summary.bytes += report.bytes;
            summary.sources.push(report);
        }
        sink.flush_all();
        if let Some(e) = sink.take_error() {
            return Err(self.lake_err(e));
        }
        // Last moment to stop: the files written so far are in no commit.
        if run.stopped() {
            return Err(LakeError::Stopped);
        }
        failpoint("ingest-before-commit");
        sink.commit(txn)?;
        Ok(summary)
    }

    /// What `_ingest_log` recorded so far (failed sources are not "seen"),
    /// leaving out the paths of `exclude` (sources this run forgets).
    fn history(&self, exclude: &HashSet<String>) -> Result<History> {
        let mut h = History::default();
        let batches = self.block_on(self.query_ingest_log("SELECT source_file, coalesce(content_sha256, source_sha256), coalesce(content_size, source_size), rotation_group, source_sha256 FROM l WHERE status <> 'failed' ORDER BY ts"))?;
        let mut path_group: HashMap<String, String> = HashMap::new();
        for b in &batches {
            let file = crate::utf8_column(b, 0).map_err(|e| self.lake_err(e))?;
            let sha = crate::utf8_column(b, 1).map_err(|e| self.lake_err(e))?;
            let size = crate::i64_column(b, 2).map_err(|e| self.lake_err(e))?;
            let group = crate::utf8_column(b, 3).map_err(|e| self.lake_err(e))?;
            let raw_sha = crate::utf8_column(b, 4).map_err(|e| self.lake_err(e))?;
            for i in 0..b.num_rows() {
                if exclude.contains(file.value(i)) {
                    continue;
                }
                let s = Seen { sha: sha.value(i).to_string(), size: size.value(i).max(0) as u64 };
                h.shas.insert(s.sha.clone());
                h.shas.insert(raw_sha.value(i).to_string());
                path_group.insert(file.value(i).to_string(), group.value(i).to_string());
                let e = h.by_path.entry(file.value(i).to_string()).or_insert(s.clone());
                if s.size >= e.size {
                    *e = s;
                }
            }
        }
        for (path, seen) in &h.by_path {
            if let Some(g) = path_group.get(path) {
                h.by_group.entry(g.clone()).or_default().push(seen.clone());
            }
        }
        Ok(h)
    }
}

/// The per-source half of a run.
struct SourceRun<'a> {
    lake: &'a Lake,
    opts: &'a IngestOptions,
    history: &'a History,
    /// Paths whose earlier ingests this run replaces (`--force`).
    forced: &'a HashSet<String>,
    /// Contents ingested earlier in this run (two copies of one log).
    ingested_now: HashSet<String>,
    run_id: Arc<str>,
    /// Per rotated set: the correlation state its last file in this run ended with.
    carry: HashMap<String, serde_json::Value>,
}

/// The bytes of one opened source, fixed at open time.
struct Opened {
    file: File,
    size: u64,
    mtime_unix: Option<i64>,
}

impl SourceRun<'_> {
    fn stopped(&self) -> bool {
        self.opts.stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed))
    }

    /// Read one source into the sink and record it. Errors only for what
    /// ends the whole run (a stop request, a lake write failure); a source
    /// that cannot be read is a report with its error.
    fn source(&mut self, input: Input, group: &str, continues: bool, sink: &mut LakeSink<'_>) -> Result<SourceReport> {
        let t0 = Instant::now();
        let path = input.path;
        // Exact for UTF-8 names; other bytes as \xNN (text::path_from_text reverses it).
        let path_str = mcpf_formats::text::path_text(&path);
        if let Some(p) = &self.opts.progress {
            p.start_source(&path_str);
        }
        let failed = |this: &Self, sink: &mut LakeSink<'_>, error: String| -> Result<SourceReport> {
            let report = SourceReport { path: path.clone(), format: None, action: SourceAction::Failed, stats: SourceStats::default(), bytes: 0, duration_ms: 0.0, error: Some(error), note: None, held_back: 0, chain: None };
            this.log_source(sink, &path_str, group, &report, None, 0, (None, None))?;
            Ok(report)
        };
        if let Some(problem) = input.problem {
            return failed(self, sink, problem);
        }
        let mut opened = match open_source(&path) {
            Ok(o) => o,
            Err(e) => return failed(self, sink, e),
        };
        failpoint("ingest-after-open");
        let (head, compression) = read_head(&opened.file, opened.size);
        let format = self.opts.format.or_else(|| detect_format(&head));
        // A line still being written is left for the next run: the lake
        // holds the bytes up to the last complete line.
        let held_back = if compression == Compression::None && format.is_some_and(reads_lines) { unfinished_tail(&opened) } else { 0 };
        opened.size -= held_back;
        // Earlier ingests this file may have grown from: its own path's, or
        // (after a rotation renamed or compressed it) another path of its set.
        let candidates: Vec<Seen> = self.history.by_path.get(&path_str).into_iter().chain(self.history.by_group.get(group).into_iter().flatten()).cloned().collect();
        let sizes: Vec<u64> = candidates.iter().map(|c| c.size).collect();
        let content = match content_of(&opened, compression, &sizes) {
            Ok(c) => c,
            Err(e) => return failed(self, sink, e),
        };
        failpoint("ingest-after-fingerprint");
        let seen = |sha: &str| self.history.shas.contains(sha) || self.ingested_now.contains(sha);
        if seen(&content.raw_sha) || seen(&content.sha) {
            // The set's state runs on from what this content ended with.
            if format.is_some_and(Format::carries_state) && !self.carry.contains_key(group) {
                if let Some(c) = self.lake.carry_of_content(&content.sha)? {
                    self.carry.insert(group.to_string(), c);
                }
            }
            return Ok(SourceReport { path, format, action: SourceAction::AlreadyIngested, stats: SourceStats::default(), bytes: 0, duration_ms: 0.0, error: None, note: None, held_back: 0, chain: None });
        }
        self.ingested_now.insert(content.raw_sha.clone());
        self.ingested_now.insert(content.sha.clone());
        // A grown file whose old content is unchanged adds its new part: the
        // longest earlier ingest its start equals (in decompressed bytes
        // for a compressed file, which is read from its start and emits
        // from there).
        let resumed: Option<(u64, String)> = content.prefixes.iter().filter(|(size, h)| *size < content.size && candidates.iter().any(|c| c.size == *size && c.sha == *h)).max_by_key(|(size, _)| *size).cloned();
        let resume_from = resumed.as_ref().map(|r| r.0).unwrap_or(0);
        // The state the file starts with: the one its earlier read started
        // with (it is read again from its start), else the previous file of
        // its set (in this run, or the latest one ingested).
        let carry_in = if !format.is_some_and(Format::carries_state) {
            None
        } else if let Some((size, sha)) = &resumed {
            self.lake.carry_into_content(sha, *size)?
        } else if let Some(c) = self.carry.get(group) {
            Some(c.clone())
        } else {
            self.lake.carry_of_group(group, self.forced)?
        };
        let info = SourceInfo { year_hint: self.opts.year, zone: self.opts.zone, continues, carry_in: carry_in.clone(), ..SourceInfo::new(&path_str, opened.mtime_unix) };
        let ParsedSource { stats, error, carry: carry_out, chain } = self.parse(&opened, format, &info, resume_from, sink);
        match &carry_out {
            Some(c) => {
                self.carry.insert(group.to_string(), c.clone());
            }
            None => {
                self.carry.remove(group);
            }
        }
        if self.stopped() {
            return Err(LakeError::Stopped);
        }
        if let Some(e) = sink.take_error() {
            return Err(self.lake.lake_err(e));
        }
        let action = if resume_from > 0 { SourceAction::Resumed(resume_from) } else { SourceAction::Full };
        let bytes = content.size - resume_from;
        let note = format_doubt(format, &stats, &head).or_else(|| {
            (held_back > 0).then(|| format!("the last {held_back} bytes are a line still being written (no newline yet, the file changed within {LIVE_WINDOW_S} s); the next ingest reads it"))
        });
        let report = SourceReport { path, format, action, stats, bytes, duration_ms: t0.elapsed().as_secs_f64() * 1000.0, error, note, held_back, chain };
        let prefix = resumed.map(|r| r.1);
        let carry_texts = (carry_in.map(|c| c.to_string()), carry_out.map(|c| c.to_string()));
        self.log_source(sink, &path_str, group, &report, Some((&content, opened.size, prefix.as_deref())), resume_from, carry_texts)?;
        Ok(report)
    }

    /// Parse exactly the fingerprinted bytes; a read error ends the source
    /// with what was read before it.
    fn parse(&self, opened: &Opened, format: Option<Format>, info: &SourceInfo, resume_from: u64, sink: &mut LakeSink<'_>) -> ParsedSource {
        let unreadable = |e: std::io::Error| ParsedSource { error: Some(format!("cannot read: {e}")), ..Default::default() };
        let raw: Box<dyn Read + Send + '_> = match (exact_bytes(&opened.file, opened.size), &self.opts.progress) {
            (Ok(r), Some(p)) => Box::new(CountingRead { inner: r, bytes: &p.bytes_done }),
            (Ok(r), None) => Box::new(r),
            (Err(e), _) => return unreadable(e),
        };
        let (reader, _) = match decompressed(raw) {
            Ok(r) => r,
            Err(e) => return unreadable(e),
        };
        // Lines of every source count for progress, recognized or not.
        let reader: Box<dyn std::io::BufRead + '_> = match &self.opts.progress {
            Some(p) => Box::new(LineCounting { inner: reader, lines: &p.lines }),
            None => reader,
        };
        match format {
            Some(f) => {
                let prov = Provenance { format: f, file: info.path.clone(), ingest_id: self.run_id.clone() };
                let out = mcpf_formats::parse_reader(reader, f, info, prov, resume_from, sink, self.opts.stop.as_deref());
                ParsedSource { stats: out.stats, error: out.error.map(|e| e.to_string()), carry: out.carry, chain: out.chain }
            }
            None => {
                let (stats, error) = count_unrecognized(reader, resume_from, self.opts.stop.as_deref());
                ParsedSource { stats, error, ..Default::default() }
            }
        }
    }

    /// The source's row in `_ingest_log`. `content` is (what it holds, raw
    /// size, prefix sha256 when resumed) for a source that was fingerprinted.
    #[allow(clippy::too_many_arguments)]
    fn log_source(&self, sink: &mut LakeSink<'_>, path_str: &str, group: &str, r: &SourceReport, content: Option<(&Content, u64, Option<&str>)>, resume_from: u64, carry: (Option<String>, Option<String>)) -> Result<()> {
        let now = chrono::Utc::now().timestamp_micros();
        let date = mcpf_formats::time::date_of(now);
        let reasons = serde_json::to_string(&r.stats.skipped_reasons).unwrap_or_default();
        let rows = serde_json::to_string(&r.stats.rows).unwrap_or_default();
        let zone = self.opts.zone.map(|z| z.to_string());
        let empty = empty_sha();
        let (sha, size, prefix) = content.map(|(c, size, prefix)| (c.raw_sha.as_str(), size, prefix)).unwrap_or(("", 0, None));
        let (content_sha, content_size) = content.map(|(c, _, _)| (Some(c.sha.as_str()), Some(c.size as i64))).unwrap_or((None, None));
        let fmt_name = r.format.map(|f| f.name()).unwrap_or("unrecognized");
        let chain_json = r.chain.as_ref().map(|c| c.to_string());
        let n = |v: u64| Val::Int(Some(v as i64));
        let mut row = NamedRow::new(Table::IngestLog);
        row.set("ts", Val::Ts(Some(now)))
            .set("date", Val::Str(Some(&date)))
            .set("source_sha256", Val::Str(Some(sha)))
            .set("source_size", n(size))
            .set("content_sha256", Val::Str(content_sha))
            .set("content_size", Val::Int(content_size))
            .set("resumed_from", n(resume_from))
            .set("prefix_sha256", Val::Str(Some(prefix.unwrap_or(&empty))))
            .set("lines", n(r.stats.lines))
            .set("lines_parsed", n(r.stats.parsed))
            .set("lines_rejected", n(r.stats.rejected))
            .set("lines_skipped", n(r.stats.skipped))
            .set("skipped_reasons", Val::Str(Some(&reasons)))
            .set("rows_json", Val::Str(Some(&rows)))
            .set("duration_ms", Val::Float(Some(r.duration_ms)))
            .set("tool_version", Val::Str(Some(env!("CARGO_PKG_VERSION"))))
            .set("status", Val::Str(Some(r.status())))
            .set("error", Val::Str(r.error.as_deref()))
            .set("rotation_group", Val::Str(Some(group)))
            .set("carry_in_json", Val::Str(carry.0.as_deref()))
            .set("carry_out_json", Val::Str(carry.1.as_deref()))
            .set("chain_json", Val::Str(chain_json.as_deref()))
            .set("stamp_zone", Val::Str(zone.as_deref()))
            .set("held_back_bytes", n(r.held_back))
            .set("source_format", Val::Str(Some(fmt_name)))
            .set("source_file", Val::Str(Some(path_str)))
            .set("source_offset", n(resume_from))
            .set("source_line", n(0))
            .set("ingest_id", Val::Str(Some(&self.run_id)));
        sink.row(Table::IngestLog, row.cells());
        match sink.take_error() {
            Some(e) => Err(self.lake.lake_err(e)),
            None => Ok(()),
        }
    }
}

/// What to tell the user about a source's format: what an unrecognized file
/// looks like, or that a claimed file had many lines rejected (more than one
/// in twenty, of at least twenty): then it is probably another format.
fn format_doubt(format: Option<Format>, stats: &SourceStats, head: &[u8]) -> Option<String> {
    let likely = mcpf_formats::detect::likely_unsupported(head);
    match format {
        None => likely.map(|m| format!("looks like {m}, which has no parser yet")),
        Some(f) if stats.lines >= 20 && stats.rejected * 20 > stats.lines => Some(format!(
            "{} of {} lines ({:.0}%) rejected by the {f} parser: the file is probably another format{}; force a parser with --format",
            stats.rejected,
            stats.lines,
            stats.rejected as f64 * 100.0 / stats.lines as f64,
            likely.map(|m| format!(" (it looks like {m})")).unwrap_or_default()
        )),
        _ => None,
    }
}

/// Open a source and fix its length and time from the open handle, so
/// everything after reads the same file however the path changes.
/// A file changed this recently may be in the middle of writing a line.
pub const LIVE_WINDOW_S: i64 = 120;

/// Formats read line by line, whose last line can be caught half written.
/// JSON documents (configs, a Postmark export) are whole files: one without
/// a final newline is complete.
fn reads_lines(f: Format) -> bool {
    f.reads_lines()
}

/// Bytes after the last newline of a plain file that changed within
/// [`LIVE_WINDOW_S`]: a line its writer has not finished. 0 when the file
/// ends with a newline, is older (an unterminated last line of a finished
/// log is its last line), or its tail has no newline within the line limit
/// (that line is over-long and rejected either way).
fn unfinished_tail(opened: &Opened) -> u64 {
    let now = chrono::Utc::now().timestamp();
    let live = opened.mtime_unix.is_some_and(|m| now.saturating_sub(m) < LIVE_WINDOW_S);
    if !live || opened.size == 0 {
        return 0;
    }
    let limit = (mcpf_formats::source::MAX_LINE_BYTES as u64).min(opened.size);
    let mut buf = vec![0u8; 64 * 1024];
    let mut scanned = 0u64;
    while scanned < limit {
        let n = (buf.len() as u64).min(limit - scanned) as usize;
        let at = opened.size - scanned - n as u64;
        if read_exact_at(&opened.file, &mut buf[..n], at).is_err() {
            return 0;
        }
        if let Some(i) = memchr::memrchr(b'\n', &buf[..n]) {
            return scanned + (n - i - 1) as u64;
        }
        scanned += n as u64;
    }
    // No newline in the whole (short) file: all of it is the unfinished line.
    if limit == opened.size { opened.size } else { 0 }
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], at: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, at)
}

#[cfg(not(unix))]
fn read_exact_at(file: &File, buf: &mut [u8], at: u64) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom};
    let mut f = file.try_clone()?;
    f.seek(SeekFrom::Start(at))?;
    f.read_exact(buf)
}

/// What a source holds, fixed before it is parsed.
struct Content {
    /// sha256 of the raw file's bytes (the compressed ones for `.gz`).
    raw_sha: String,
    /// sha256 and length of what the parsers read: the decompressed bytes of
    /// a compressed file (its raw bytes when they cannot be decompressed to
    /// their end), the raw bytes of a plain one.
    sha: String,
    size: u64,
    /// Hashes of the content's first bytes at the sizes asked for.
    prefixes: Vec<(u64, String)>,
}

/// Fingerprint a source's bytes and content, with the content's prefixes
/// at `sizes` (the sizes of earlier ingests it may have grown from).
fn content_of(opened: &Opened, compression: Compression, sizes: &[u64]) -> std::result::Result<Content, String> {
    let mut file = opened.file.try_clone().map_err(|e| format!("cannot read: {e}"))?;
    let raw_prefixes: &[u64] = if compression == Compression::None { sizes } else { &[] };
    let (raw_sha, prefixes) = fingerprint_prefixes(&mut file, opened.size, raw_prefixes).map_err(|e| format!("cannot read: {e}"))?;
    if compression == Compression::None {
        return Ok(Content { sha: raw_sha.clone(), raw_sha, size: opened.size, prefixes });
    }
    let decoded = exact_bytes(&opened.file, opened.size).and_then(decompressed).and_then(|(r, _)| fingerprint_stream(r, sizes));
    Ok(match decoded {
        Ok(fp) => Content { raw_sha, sha: fp.sha256, size: fp.len, prefixes: fp.prefixes },
        // A damaged stream is parsed up to the damage and known by its raw bytes.
        Err(_) => Content { sha: raw_sha.clone(), raw_sha, size: opened.size, prefixes: Vec::new() },
    })
}

fn open_source(path: &Path) -> std::result::Result<Opened, String> {
    let file = File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let meta = file.metadata().map_err(|e| format!("cannot read: {e}"))?;
    if !meta.is_file() {
        return Err(format!("not a regular file ({}): not read", special_kind(&meta)));
    }
    // A clock far in the future must not overflow later time arithmetic.
    let mtime_unix = meta
        .modified()
        .ok()
        .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .filter(|s| *s < 253_402_300_800) // 9999-12-31
        .map(|s| s as i64);
    Ok(Opened { file, size: meta.len(), mtime_unix })
}

/// The first decompressed bytes of the fingerprinted content, for format
/// detection (whatever could be decoded before an error).
fn read_head(file: &File, size: u64) -> (Vec<u8>, Compression) {
    let Ok(raw) = exact_bytes(file, size) else { return (vec![], Compression::None) };
    let Ok((r, compression)) = decompressed(raw) else { return (vec![], Compression::None) };
    let mut head = Vec::with_capacity(HEAD_BYTES.min(size as usize + 16));
    let mut r = r.take(HEAD_BYTES as u64);
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    (head, compression)
}

/// A source no parser recognised: every line is counted as skipped.
fn count_unrecognized(reader: Box<dyn std::io::BufRead + '_>, from: u64, stop: Option<&AtomicBool>) -> (SourceStats, Option<String>) {
    let never = AtomicBool::new(false);
    let reader = mcpf_formats::source::StoppableReader::new(reader, stop.unwrap_or(&never));
    let mut stats = SourceStats::default();
    let result = mcpf_formats::source::LineReader::new(reader).for_each(|l| {
        if l.pos.offset >= from {
            stats.lines += 1;
            stats.skipped += 1;
        }
    });
    if stats.skipped > 0 {
        stats.skipped_reasons.insert("unrecognized file format (use --format to force a parser)".into(), stats.skipped);
    }
    (stats, result.err().map(|e| e.to_string()))
}

/// The given sources that were ingested before: `--force` replaces them.
/// A source that cannot be opened now keeps its rows: replacing them with
/// nothing would lose evidence the user asked to re-read, not to drop
/// (`forget` drops).
fn forced_paths(inputs: &[Input], history: &History) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for i in inputs.iter().filter(|i| i.problem.is_none() && File::open(&i.path).is_ok()) {
        let p = mcpf_formats::text::path_text(&i.path);
        if history.by_path.contains_key(&p) && !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// What parsing one source gave (see [`mcpf_formats::ParseOutcome`]), with
/// a read error as text.
#[derive(Default)]
struct ParsedSource {
    stats: SourceStats,
    error: Option<String>,
    carry: Option<serde_json::Value>,
    chain: Option<serde_json::Value>,
}
