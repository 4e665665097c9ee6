//! The lake's own bookkeeping beside its Delta tables, in `_lake/`.
//!
//! - `lake.json` marks the folder as an mcp-forensics lake. A reader given a
//!   folder without it is told so, instead of reporting "no findings" over
//!   a folder that holds no evidence at all.
//! - `lock` is the writers' lock: locally an OS file lock (`flock`), so a
//!   holder that crashes or is killed releases it with its last file
//!   descriptor and can never leave it stuck; in an object store a lease
//!   ([`crate::lease`]) that a dead holder stops renewing. Every writer (ingest, `detect --record`,
//!   recovery) holds it from before it reads the lake state until after it
//!   published the new one. While it holds it, no other writer is alive, which
//!   is what lets recovery call a run "dead" with certainty.
//! - `snapshots/NNNNNNNNNNNNNNNNNNNN.json` are the lake's published states:
//!   each names the Delta version of every table after one completed writer
//!   run. Readers open every table at the versions of the newest snapshot, so
//!   they see only completed runs, and one consistent state of all tables,
//!   whatever a writer is doing meanwhile. A snapshot is written to a
//!   temporary name and renamed into place, so it is never seen half-written.
//! - `runs/RUN_ID.json` is the journal of a writer run, created before its
//!   first write and removed after its snapshot is published. One left behind
//!   means that run died; the next writer removes its files.
//! - `spool/stdin-HASH` are streams ingested from standard input (`ingest
//!   -`), kept as the files their rows point back to (see `crate::spool`).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use deltalake::logstore::object_store::PutMode;
use serde::{Deserialize, Serialize};

use crate::location::{Location, Put};

/// Name of the bookkeeping folder under the lake root.
pub const LAKE_DIR: &str = "_lake";
/// Bumped when the layout of `_lake/` changes meaning.
pub const LAYOUT_VERSION: u32 = 1;

/// What `lake.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Marker {
    /// Always `mcp-forensics-lake`.
    pub kind: String,
    pub layout_version: u32,
    pub created_at: String,
    pub created_by: String,
}

/// One published state of the lake.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Snapshot {
    /// 1, 2, 3 ...: the file's number.
    pub sequence: u64,
    /// The writer run that published it (an ingest id, a detect run id, ...).
    pub run_id: String,
    /// ingest, detect, recover.
    pub kind: String,
    pub committed_at: String,
    /// Delta version of every table that exists, by table name.
    pub tables: BTreeMap<String, u64>,
}

/// The `_lake/` of one lake root, local or in an object store.
#[derive(Debug, Clone)]
pub struct Layout {
    loc: Location,
}

impl Layout {
    /// The `_lake/` of a local folder.
    pub fn new(root: &Path) -> Layout {
        Layout { loc: Location::Local(root.to_path_buf()) }
    }

    /// The `_lake/` of any lake root.
    pub fn at(loc: &Location) -> Layout {
        Layout { loc: loc.clone() }
    }

    fn local_path(root: &Path, rel: &str) -> PathBuf {
        rel.split('/').fold(root.join(LAKE_DIR), |p, part| p.join(part))
    }

    fn key(rel: &str) -> String {
        format!("{LAKE_DIR}/{rel}")
    }

    /// The bytes of `_lake/REL`, None when absent.
    fn read(&self, rel: &str) -> io::Result<Option<Vec<u8>>> {
        match &self.loc {
            Location::Local(root) => match fs::read(Self::local_path(root, rel)) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            },
            Location::Remote(r) => Ok(r.get(&Self::key(rel))?.map(|(b, _)| b)),
        }
    }

    /// Replace `_lake/REL` atomically (readers see the old or the whole new).
    fn write(&self, rel: &str, bytes: &[u8]) -> io::Result<()> {
        match &self.loc {
            Location::Local(root) => {
                let path = Self::local_path(root, rel);
                fs::create_dir_all(path.parent().unwrap_or(root))?;
                write_atomically(&path, bytes)
            }
            Location::Remote(r) => r.put(&Self::key(rel), bytes.to_vec(), PutMode::Overwrite).map(|_| ()),
        }
    }

    /// Create `_lake/REL` only if it is absent; false when it was there.
    fn create_new(&self, rel: &str, bytes: &[u8]) -> io::Result<bool> {
        match &self.loc {
            Location::Local(root) => {
                let path = Self::local_path(root, rel);
                fs::create_dir_all(path.parent().unwrap_or(root))?;
                let tmp = path.with_extension(format!("{}.new", std::process::id()));
                write_atomically(&tmp, bytes)?;
                // A hard link never replaces an existing file.
                let linked = fs::hard_link(&tmp, &path);
                let _ = fs::remove_file(&tmp);
                match linked {
                    Ok(()) => Ok(true),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
                    Err(e) => Err(e),
                }
            }
            Location::Remote(r) => Ok(r.put(&Self::key(rel), bytes.to_vec(), PutMode::Create)? != Put::Exists),
        }
    }

    fn remove(&self, rel: &str) -> io::Result<()> {
        match &self.loc {
            Location::Local(root) => match fs::remove_file(Self::local_path(root, rel)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
            Location::Remote(r) => r.delete(&Self::key(rel)),
        }
    }

    /// Names of the `.json` files in `_lake/DIR`, without the extension.
    fn json_names(&self, dir: &str) -> io::Result<Vec<String>> {
        let names: Vec<String> = match &self.loc {
            Location::Local(root) => match fs::read_dir(Self::local_path(root, dir)) {
                Ok(entries) => entries.map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned())).collect::<io::Result<_>>()?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => vec![],
                Err(e) => return Err(e),
            },
            Location::Remote(r) => r.list(&Self::key(dir))?.into_iter().filter_map(|(k, _)| k.rsplit('/').next().map(str::to_string)).collect(),
        };
        Ok(names.into_iter().filter_map(|n| n.strip_suffix(".json").map(str::to_string)).collect())
    }

    /// Whether `lake.json` is there.
    pub fn has_marker(&self) -> bool {
        match &self.loc {
            Location::Local(root) => Self::local_path(root, "lake.json").is_file(),
            Location::Remote(r) => r.exists(&Self::key("lake.json")).unwrap_or(false),
        }
    }

    /// Create `_lake/` and `lake.json` (a no-op when they exist).
    pub fn create(&self) -> io::Result<()> {
        if let Location::Local(root) = &self.loc {
            fs::create_dir_all(Self::local_path(root, "snapshots"))?;
            fs::create_dir_all(Self::local_path(root, "runs"))?;
        }
        if !self.has_marker() {
            let m = Marker {
                kind: "mcp-forensics-lake".into(),
                layout_version: LAYOUT_VERSION,
                created_at: chrono::Utc::now().to_rfc3339(),
                created_by: format!("mcp-forensics {}", env!("CARGO_PKG_VERSION")),
            };
            self.create_new("lake.json", &serde_json::to_vec_pretty(&m).map_err(io::Error::other)?)?;
        }
        Ok(())
    }

    /// The newest published snapshot, if any.
    pub fn latest_snapshot(&self) -> io::Result<Option<Snapshot>> {
        let Some(seq) = self.latest_sequence()? else { return Ok(None) };
        self.read_snapshot(seq)
    }

    /// Every published snapshot, oldest first.
    pub fn snapshots(&self) -> io::Result<Vec<Snapshot>> {
        let Some(last) = self.latest_sequence()? else { return Ok(vec![]) };
        let mut out = Vec::new();
        for seq in 1..=last {
            if let Some(snap) = self.read_snapshot(seq)? {
                out.push(snap);
            }
        }
        Ok(out)
    }

    fn read_snapshot(&self, seq: u64) -> io::Result<Option<Snapshot>> {
        let rel = format!("snapshots/{}", snapshot_name(seq));
        let Some(bytes) = self.read(&rel)? else { return Ok(None) };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{LAKE_DIR}/{rel}: {e}")))
    }

    fn latest_sequence(&self) -> io::Result<Option<u64>> {
        Ok(self.json_names("snapshots")?.iter().filter(|stem| stem.len() == 20).filter_map(|stem| stem.parse::<u64>().ok()).max())
    }

    /// Publish the next snapshot. Only a holder of the writers' lock calls
    /// it. The snapshot is created only if its number is free, so a writer
    /// whose lease was taken over while it was paused can never publish over
    /// the run that took it: it fails here instead.
    pub fn publish(&self, lock: &WriterLock, run_id: &str, kind: &str, tables: BTreeMap<String, u64>) -> io::Result<Snapshot> {
        lock.check()?;
        let sequence = self.latest_sequence()?.unwrap_or(0) + 1;
        let snap = Snapshot { sequence, run_id: run_id.into(), kind: kind.into(), committed_at: chrono::Utc::now().to_rfc3339(), tables };
        let bytes = serde_json::to_vec_pretty(&snap).map_err(io::Error::other)?;
        if !self.create_new(&format!("snapshots/{}", snapshot_name(sequence)), &bytes)? {
            return Err(io::Error::other(format!(
                "snapshot {sequence} was published by another writer while this run held the lease: this run's lease had expired (a pause longer than {} s); nothing of it is published, run it again",
                crate::lease::LEASE_TTL.as_secs()
            )));
        }
        Ok(snap)
    }

    /// Record that a writer run started (its journal).
    pub fn begin_run(&self, _lock: &WriterLock, run_id: &str, kind: &str) -> io::Result<()> {
        let j = serde_json::json!({"run_id": run_id, "kind": kind, "pid": std::process::id(), "started_at": chrono::Utc::now().to_rfc3339()});
        self.write(&format!("runs/{}.json", safe_name(run_id)), j.to_string().as_bytes())
    }

    /// The run finished (published, or cleaned up after): drop its journal.
    pub fn end_run(&self, run_id: &str) -> io::Result<()> {
        self.remove(&format!("runs/{}.json", safe_name(run_id)))
    }

    /// Journals of runs that did not finish. Called with the lock held, when
    /// every one of them is a dead run.
    pub fn unfinished_runs(&self, _lock: &WriterLock) -> io::Result<Vec<String>> {
        let mut ids = self.json_names("runs")?;
        ids.sort();
        Ok(ids)
    }

    /// Take the writers' lock, waiting for the current holder. `on_wait` is
    /// called once, with what the holder wrote about itself, when the lock is
    /// busy; `stop` gives up waiting. Local lakes use an OS file lock; lakes
    /// in an object store a lease ([`crate::lease`]).
    pub fn lock(&self, what: &str, on_wait: &mut dyn FnMut(&str), stop: Option<&AtomicBool>) -> io::Result<WriterLock> {
        match &self.loc {
            Location::Local(root) => Self::file_lock(&root.join(LAKE_DIR), what, on_wait, stop),
            Location::Remote(r) => crate::lease::Lease::acquire(r.clone(), &Self::key("lock"), what, on_wait, stop).map(WriterLock::Lease),
        }
    }

    fn file_lock(dir: &Path, what: &str, on_wait: &mut dyn FnMut(&str), stop: Option<&AtomicBool>) -> io::Result<WriterLock> {
        fs::create_dir_all(dir)?;
        let path = dir.join("lock");
        let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path)?;
        let mut told = false;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(fs::TryLockError::WouldBlock) => {
                    if !told {
                        let holder = fs::read_to_string(&path).unwrap_or_default();
                        on_wait(holder.trim());
                        told = true;
                    }
                    if stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
                        return Err(io::Error::other(crate::STOPPED_WAITING));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(fs::TryLockError::Error(e)) => return Err(e),
            }
        }
        // Who holds it, for the next waiter's message (the lock itself is the
        // OS lock, not this text).
        file.set_len(0)?;
        let _ = write!(file, "pid {} ({what}) since {}", std::process::id(), chrono::Utc::now().to_rfc3339());
        Ok(WriterLock::File(file))
    }
}

/// Held while a writer runs; dropping it (or the process ending in any way)
/// releases the lock.
#[derive(Debug)]
pub enum WriterLock {
    /// The OS file lock of a local lake.
    File(File),
    /// The lease of a lake in an object store.
    Lease(crate::lease::Lease),
}

impl WriterLock {
    /// Fail if the lock was lost (a lease another writer took over after
    /// this process stopped renewing it): the run must not publish.
    pub fn check(&self) -> io::Result<()> {
        match self {
            WriterLock::File(_) => Ok(()),
            WriterLock::Lease(l) => l.check(),
        }
    }
}

fn snapshot_name(seq: u64) -> String {
    format!("{seq:020}.json")
}

/// Run ids are ours, but a journal's name must never leave `runs/`.
fn safe_name(id: &str) -> String {
    id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

/// Write to a temporary file in the same folder, sync, and rename into place:
/// a reader sees the old file or the whole new one.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{}.{}.tmp", path.file_name().and_then(|n| n.to_str()).unwrap_or("f"), std::process::id()));
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_are_numbered_and_the_newest_wins() {
        let dir = tempfile::tempdir().unwrap();
        let l = Layout::new(dir.path());
        l.create().unwrap();
        assert!(l.has_marker());
        assert_eq!(l.latest_snapshot().unwrap(), None);
        let lock = l.lock("test", &mut |_| {}, None).unwrap();
        let a = l.publish(&lock, "r1", "ingest", BTreeMap::from([("t".to_string(), 3)])).unwrap();
        let b = l.publish(&lock, "r2", "ingest", BTreeMap::from([("t".to_string(), 5)])).unwrap();
        assert_eq!((a.sequence, b.sequence), (1, 2));
        assert_eq!(l.latest_snapshot().unwrap().unwrap(), b);
    }

    #[test]
    fn the_lock_is_exclusive_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let l = Layout::new(dir.path());
        let held = l.lock("first", &mut |_| {}, None).unwrap();
        let stop = AtomicBool::new(true);
        let mut seen = String::new();
        let e = l.lock("second", &mut |h| seen = h.to_string(), Some(&stop)).unwrap_err();
        assert_eq!(e.to_string(), crate::STOPPED_WAITING);
        assert!(seen.contains("(first)") && seen.contains(&format!("pid {}", std::process::id())), "{seen}");
        drop(held);
        l.lock("second", &mut |_| panic!("free now"), None).unwrap();
    }

    #[test]
    fn journals_of_unfinished_runs_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        let l = Layout::new(dir.path());
        let lock = l.lock("t", &mut |_| {}, None).unwrap();
        l.begin_run(&lock, "20260101T000000Z-abc", "ingest").unwrap();
        l.begin_run(&lock, "../../evil", "ingest").unwrap();
        assert_eq!(l.unfinished_runs(&lock).unwrap(), vec!["20260101T000000Z-abc".to_string(), "______evil".to_string()]);
        l.end_run("20260101T000000Z-abc").unwrap();
        assert_eq!(l.unfinished_runs(&lock).unwrap().len(), 1);
    }
}
