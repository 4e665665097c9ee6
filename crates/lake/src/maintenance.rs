//! Lake maintenance: `optimize` (compaction of the small files scheduled
//! ingests leave, optionally ordered by time) and `vacuum` (deleting the data
//! files no kept table version references), both delta-rs's own operations.
//!
//! Both are writer runs: they take the writers' lock, recover after dead
//! runs, and publish a snapshot when they end, so readers see the table
//! before or after, never half of it, and a run killed midway is rolled back
//! by the next writer like an interrupted ingest.
//!
//! What vacuum keeps, whatever the retention:
//! - the published version of every table (what readers open);
//! - every table version named by the snapshot of a `detect --record` run
//!   whose findings `_findings` holds, so the rows a recorded finding was
//!   computed from stay readable at that version (its evidence);
//! - the raw logs under `_lake/spool/` (ingested standard input): they are
//!   not Delta data files, vacuum never looks at them.

use std::collections::{BTreeMap, BTreeSet};
use std::future::IntoFuture;
use std::num::NonZeroU64;
use std::sync::atomic::AtomicBool;

use arrow::array::{Array, StringArray};
use deltalake::operations::optimize::OptimizeType;
use deltalake::operations::vacuum::VacuumMode;
use mcpf_schema::Table;

use crate::store::run_properties;
use crate::txn::WriteTxn;
use crate::{sink, Lake, Result};

/// What `optimize` does.
#[derive(Debug, Clone)]
pub struct OptimizeOptions {
    /// Rewrite every file of each partition ordered by `ts` (Z-order on one
    /// column), so the row groups' `ts` statistics prune narrow time
    /// predicates. Without it only partitions with several small files are
    /// rewritten (bin-packing, the cheap nightly choice).
    pub sort_by_time: bool,
    /// Files are packed up to about this size.
    pub target_file_bytes: u64,
}

impl Default for OptimizeOptions {
    fn default() -> Self {
        OptimizeOptions { sort_by_time: false, target_file_bytes: sink::TARGET_FILE_BYTES }
    }
}

/// What `vacuum` does.
#[derive(Debug, Clone)]
pub struct VacuumOptions {
    /// Files a table stopped referencing less than this long ago stay (a
    /// reader that opened an older snapshot may still be reading them).
    pub retention: chrono::Duration,
    /// List what would be deleted, delete nothing, commit nothing.
    pub dry_run: bool,
}

impl Default for VacuumOptions {
    fn default() -> Self {
        VacuumOptions { retention: chrono::Duration::days(7), dry_run: false }
    }
}

/// One table's part of a maintenance run.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TableMaintenance {
    pub table: &'static str,
    /// Data files before the run (in the published version).
    pub files_before: usize,
    /// optimize: files written / files they replace; vacuum: 0 / files deleted.
    pub files_added: u64,
    pub files_removed: u64,
    /// Partitions optimize rewrote.
    pub partitions: u64,
    /// vacuum: table versions kept readable for recorded findings.
    pub kept_versions: Vec<u64>,
}

/// What a maintenance run did, table by table.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MaintenanceReport {
    pub run_id: String,
    pub dry_run: bool,
    pub tables: Vec<TableMaintenance>,
}

fn maintenance_run_id(kind: &str) -> String {
    format!("{kind}-{}-{}", chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ"), std::process::id())
}

impl Lake {
    /// Compact every table's small files (and with `sort_by_time`, order
    /// them by `ts`). Rows are unchanged; one commit per table that changed.
    pub fn optimize(&self, opts: &OptimizeOptions, stop: Option<&AtomicBool>) -> Result<MaintenanceReport> {
        self.require_lake()?;
        let run_id = maintenance_run_id("optimize");
        let target = NonZeroU64::new(opts.target_file_bytes.max(1024 * 1024)).expect("non-zero");
        let tables = self.write("optimize", &run_id, stop, |txn| {
            let mut out = Vec::new();
            for t in Table::ALL {
                if let Some(done) = self.optimize_table(txn, t, opts, target)? {
                    out.push(done);
                }
            }
            Ok(out)
        })?;
        Ok(MaintenanceReport { run_id, dry_run: false, tables })
    }

    fn optimize_table(&self, txn: &mut WriteTxn<'_>, t: Table, opts: &OptimizeOptions, target: NonZeroU64) -> Result<Option<TableMaintenance>> {
        let Some(table) = self.block_on(self.store().load(t, None)).map_err(|e| self.lake_err(e))? else { return Ok(None) };
        let files_before = table.get_file_uris().map_err(|e| self.lake_err(e))?.count();
        if files_before == 0 {
            return Ok(None);
        }
        let kind = if opts.sort_by_time { OptimizeType::ZOrder(vec!["ts".to_string()]) } else { OptimizeType::Compact };
        let (table, metrics) = self
            .block_on(
                table
                    .optimize()
                    .with_type(kind)
                    .with_target_size(target)
                    .with_writer_properties(sink::writer_properties())
                    .with_commit_properties(run_properties(txn.run_id()))
                    .into_future(),
            )
            .map_err(|e| self.lake_err(format!("optimizing {}: {e}", t.name())))?;
        if metrics.num_files_added > 0 || metrics.num_files_removed > 0 {
            txn.committed(t, table.version().unwrap_or(0).max(0) as u64);
        }
        Ok(Some(TableMaintenance {
            table: t.name(),
            files_before,
            files_added: metrics.num_files_added,
            files_removed: metrics.num_files_removed,
            partitions: metrics.partitions_optimized,
            kept_versions: vec![],
        }))
    }

    /// Delete the data files no kept version references and that were
    /// removed from their table longer than `retention` ago (see the module
    /// docs for what is kept).
    pub fn vacuum(&self, opts: &VacuumOptions, stop: Option<&AtomicBool>) -> Result<MaintenanceReport> {
        self.require_lake()?;
        let run_id = maintenance_run_id("vacuum");
        let tables = self.write("vacuum", &run_id, stop, |txn| {
            let keep = self.versions_of_recorded_findings()?;
            let mut out = Vec::new();
            for t in Table::ALL {
                let versions: Vec<u64> = keep.get(&t).map(|v| v.iter().copied().collect()).unwrap_or_default();
                if let Some(done) = self.vacuum_table(txn, t, opts, versions)? {
                    out.push(done);
                }
            }
            Ok(out)
        })?;
        Ok(MaintenanceReport { run_id, dry_run: opts.dry_run, tables })
    }

    fn vacuum_table(&self, txn: &mut WriteTxn<'_>, t: Table, opts: &VacuumOptions, kept_versions: Vec<u64>) -> Result<Option<TableMaintenance>> {
        let Some(table) = self.block_on(self.store().load(t, None)).map_err(|e| self.lake_err(e))? else { return Ok(None) };
        let files_before = table.get_file_uris().map_err(|e| self.lake_err(e))?.count();
        let before = table.version();
        let (table, metrics) = self
            .block_on(
                table
                    .vacuum()
                    .with_retention_period(opts.retention)
                    // The retention is the user's choice (a lake has one
                    // writer at a time and readers hold snapshots, not
                    // Delta's 7-day concurrency assumption).
                    .with_enforce_retention_duration(false)
                    .with_keep_versions(&kept_versions)
                    .with_mode(VacuumMode::Lite)
                    .with_dry_run(opts.dry_run)
                    .with_commit_properties(run_properties(txn.run_id()))
                    .into_future(),
            )
            .map_err(|e| self.lake_err(format!("vacuuming {}: {e}", t.name())))?;
        if !opts.dry_run && table.version() != before {
            txn.committed(t, table.version().unwrap_or(0).max(0) as u64);
        }
        Ok(Some(TableMaintenance { table: t.name(), files_before, files_added: 0, files_removed: metrics.files_deleted.len() as u64, partitions: 0, kept_versions }))
    }

    /// For every table, the versions named by the snapshots of the detect
    /// runs whose findings `_findings` records.
    fn versions_of_recorded_findings(&self) -> Result<BTreeMap<Table, BTreeSet<u64>>> {
        let runs = self.recorded_finding_runs()?;
        let mut out: BTreeMap<Table, BTreeSet<u64>> = BTreeMap::new();
        for snap in self.layout().snapshots().map_err(|e| self.lake_err(e))? {
            if !runs.contains(&snap.run_id) {
                continue;
            }
            for (name, v) in &snap.tables {
                if let Some(t) = Table::from_name(name) {
                    out.entry(t).or_default().insert(*v);
                }
            }
        }
        Ok(out)
    }

    /// The run ids of every `detect --record` run with a row in `_findings`.
    fn recorded_finding_runs(&self) -> Result<BTreeSet<String>> {
        let batches = self.block_on(self.query_published_table(Table::Findings, "f", "SELECT DISTINCT ingest_id FROM f", vec![]))?;
        let mut out = BTreeSet::new();
        for b in &batches {
            let ids = arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Utf8).map_err(|e| self.lake_err(e))?;
            let ids = ids.as_any().downcast_ref::<StringArray>().expect("utf8");
            out.extend((0..ids.len()).filter(|i| !ids.is_null(*i)).map(|i| ids.value(i).to_string()));
        }
        Ok(out)
    }
}
