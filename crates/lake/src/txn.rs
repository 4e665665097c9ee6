//! The writer transaction: lock, recover, write, publish.
//!
//! Every change to the lake (an ingest, `detect --record`) runs inside one
//! [`WriteTxn`]:
//! 1. take the writers' lock (waiting for the holder, never stealing it);
//! 2. recover: any table whose Delta log is ahead of the newest published
//!    snapshot holds commits of a run that died (no live writer exists while
//!    we hold the lock), so it is restored to its published version; any data
//!    file no published version references is removed (a run killed before
//!    its commit, or stopped, leaves such files);
//! 3. write its journal, commit to its tables;
//! 4. publish a snapshot naming the new version of every table: from this
//!    moment, and not before, readers see the run.
//!
//! A crash anywhere leaves the published state untouched; the next writer
//! rolls the rest back. A run that fails or is stopped rolls itself back.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;

use mcpf_schema::Table;

use crate::layout::{Layout, Snapshot, WriterLock};
use crate::{legacy, Lake, LakeError, Result};

/// One writer run holding the lake.
pub struct WriteTxn<'l> {
    lake: &'l Lake,
    lock: WriterLock,
    run_id: String,
    kind: &'static str,
    /// The published versions when the run started (after recovery).
    base: BTreeMap<Table, u64>,
    /// Versions this run committed.
    committed: BTreeMap<Table, u64>,
    recovered: Vec<String>,
}

impl<'l> WriteTxn<'l> {
    /// Lock the lake for `kind` (ingest, detect), recover after dead runs, and
    /// journal this run. `on_wait` is told once who holds the lock, if anyone.
    pub fn begin(lake: &'l Lake, kind: &'static str, run_id: &str, stop: Option<&AtomicBool>, on_wait: &mut dyn FnMut(&str)) -> Result<WriteTxn<'l>> {
        lake.prepare_for_writing()?;
        let layout = lake.layout();
        // A lake written before `_lake/` existed: its tables are the baseline.
        let legacy = !layout.has_marker() && lake.store().exists(Table::IngestLog);
        let lock = layout.lock(&format!("{kind} {run_id}"), on_wait, stop).map_err(|e| {
            if e.to_string() == crate::STOPPED_WAITING {
                LakeError::Stopped
            } else {
                lake.lake_err(format!("cannot take the writers' lock: {e}"))
            }
        })?;
        layout.create().map_err(|e| lake.lake_err(format!("cannot create {}: {e}", crate::layout::LAKE_DIR)))?;
        // Before anything queries a table: one this release cannot write is
        // refused with advice, not met with a schema error halfway.
        let mut to_upgrade = Vec::new();
        for t in Table::ALL {
            if lake.block_on(lake.store().check_columns(t)).map_err(|e| lake.lake_err(e))? {
                to_upgrade.push(t);
            }
        }
        let mut recovered = Vec::new();
        if legacy && layout.latest_snapshot().map_err(|e| lake.lake_err(e))?.is_none() {
            recovered.extend(lake.block_on(legacy::recover(lake))?);
            let versions = lake.block_on(lake.store().latest_versions()).map_err(|e| lake.lake_err(e))?;
            layout.publish(&lock, "legacy-baseline", "recover", names(&versions)).map_err(|e| lake.lake_err(e))?;
        }
        recovered.extend(recover(lake, &lock)?);
        let base = published_versions(lake)?;
        layout.begin_run(&lock, run_id, kind).map_err(|e| lake.lake_err(format!("cannot write the run's journal: {e}")))?;
        // Columns added by this release, committed as part of the run: they
        // become visible when it publishes and are rolled back with it.
        let mut committed = BTreeMap::new();
        for t in to_upgrade {
            if let Some(v) = lake.block_on(lake.store().add_missing_columns(t, run_id)).map_err(|e| lake.lake_err(e))? {
                committed.insert(t, v);
            }
        }
        Ok(WriteTxn { lake, lock, run_id: run_id.to_string(), kind, base, committed, recovered })
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// What recovery did before this run started (one line per action).
    pub fn recovered(&self) -> &[String] {
        &self.recovered
    }

    /// The run committed `t` at `version`.
    pub fn committed(&mut self, t: Table, version: u64) {
        self.committed.insert(t, version);
    }

    /// Make the run visible: publish the new versions, drop the journal.
    pub fn publish(self) -> Result<Snapshot> {
        let mut tables = self.base.clone();
        tables.extend(self.committed.iter().map(|(t, v)| (*t, *v)));
        let layout = self.lake.layout();
        let snap = layout.publish(&self.lock, &self.run_id, self.kind, names(&tables)).map_err(|e| self.lake.lake_err(format!("cannot publish the run: {e}")))?;
        crate::failpoint("after-publish");
        layout.end_run(&self.run_id).map_err(|e| self.lake.lake_err(e))?;
        Ok(snap)
    }

    /// Undo everything the run wrote (best effort: whatever is left, the
    /// journal makes the next writer remove).
    pub fn abort(self) {
        if recover(self.lake, &self.lock).is_ok() {
            let _ = self.lake.layout().end_run(&self.run_id);
        }
    }
}

fn names(v: &BTreeMap<Table, u64>) -> BTreeMap<String, u64> {
    v.iter().map(|(t, n)| (t.name().to_string(), *n)).collect()
}

/// The versions of the newest snapshot; tables it does not name are at their
/// creation (version 0, no rows).
pub(crate) fn published_versions(lake: &Lake) -> Result<BTreeMap<Table, u64>> {
    let snap = lake.layout().latest_snapshot().map_err(|e| lake.lake_err(e))?;
    let mut out = BTreeMap::new();
    if let Some(s) = snap {
        for (name, v) in s.tables {
            if let Some(t) = Table::from_name(&name) {
                out.insert(t, v);
            }
        }
    }
    Ok(out)
}

/// Roll back what dead runs left (see the module docs). Only with the lock.
fn recover(lake: &Lake, lock: &WriterLock) -> Result<Vec<String>> {
    let layout: Layout = lake.layout();
    let published = published_versions(lake)?;
    let latest = lake.block_on(lake.store().latest_versions()).map_err(|e| lake.lake_err(e))?;
    let dead_journals = layout.unfinished_runs(lock).map_err(|e| lake.lake_err(e))?;
    let mut messages = Vec::new();
    let mut restored = false;
    for (t, now) in &latest {
        let target = published.get(t).copied().unwrap_or(0);
        if *now > target {
            let runs = lake.block_on(legacy::runs_after(lake, *t, target))?;
            lake.block_on(lake.store().restore(*t, target, "recover")).map_err(|e| lake.lake_err(e))?;
            restored = true;
            messages.push(format!("{}: rolled back to its published version {target}, removing what interrupted run(s) {} committed", t.name(), runs.join(", ")));
        }
    }
    if restored || !dead_journals.is_empty() {
        let mut files = 0;
        for t in latest.keys() {
            let target = published.get(t).copied().unwrap_or(0);
            files += lake.block_on(lake.store().remove_unpublished_files(*t, target)).map_err(|e| lake.lake_err(e))?;
        }
        if files > 0 {
            messages.push(format!("removed {files} data file(s) that interrupted run(s) wrote but never published"));
        }
    }
    if restored {
        let versions = lake.block_on(lake.store().latest_versions()).map_err(|e| lake.lake_err(e))?;
        // The restored state is the published one, under new version numbers.
        let mut tables = published.clone();
        for (t, v) in versions {
            tables.insert(t, v);
        }
        layout.publish(lock, "recover", "recover", names(&tables)).map_err(|e| lake.lake_err(e))?;
    }
    for j in &dead_journals {
        layout.end_run(j).map_err(|e| lake.lake_err(e))?;
    }
    Ok(messages)
}
