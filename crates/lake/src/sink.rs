//! Streams rows of all tables into their Delta writers, bounded in memory,
//! and commits every file a run wrote, one transaction per table.

use std::collections::HashMap;

use deltalake::kernel::Action;
use deltalake::parquet::basic::{Compression, ZstdLevel};
use deltalake::parquet::file::properties::WriterProperties;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::DeltaTable;
use mcpf_formats::{RowSink, Val};
use mcpf_schema::Table;

use crate::txn::WriteTxn;
use crate::{Lake, Result, TableBuilder};

/// Rows buffered per table before a batch is streamed to its Parquet file.
const BATCH_ROWS: usize = 32 * 1024;
/// Parquet files roll over at about this size.
const TARGET_FILE_BYTES: u64 = 128 * 1024 * 1024;
/// A table's writer closes its open files (one per day partition, each
/// holding its row group and dictionaries in memory) after this many batches
/// or this many encoded bytes; the files' Add actions wait for the single
/// commit at the end of the run. This is what bounds memory when a run spans
/// months of partitions.
const FLUSH_BATCHES: usize = 4;
const FLUSH_BYTES: usize = 64 * 1024 * 1024;

/// The Parquet settings of every file the lake writes.
pub fn writer_properties() -> WriterProperties {
    WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::try_new(3).expect("level"))).build()
}

/// One writer per table, rows batched per table.
pub struct LakeSink<'a> {
    lake: &'a Lake,
    tables: HashMap<Table, DeltaTable>,
    builders: HashMap<Table, TableBuilder>,
    writers: HashMap<Table, RecordBatchWriter>,
    /// Files already closed, to be committed with the rest at the end.
    pending: HashMap<Table, Vec<Action>>,
    error: Option<String>,
}

impl<'a> LakeSink<'a> {
    /// Create missing tables and a writer for each. Called with the lock held.
    pub fn open(lake: &'a Lake, _run_id: &str) -> Result<LakeSink<'a>> {
        let mut tables = HashMap::new();
        let mut writers = HashMap::new();
        for t in Table::ALL {
            let table = lake.block_on(lake.store().ensure(t)).map_err(|e| lake.lake_err(e))?;
            let w = RecordBatchWriter::for_table(&table)
                .map_err(|e| lake.lake_err(e))?
                .with_writer_properties(writer_properties())
                .with_target_file_size(TARGET_FILE_BYTES);
            writers.insert(t, w);
            tables.insert(t, table);
        }
        Ok(LakeSink { lake, tables, builders: HashMap::new(), writers, pending: HashMap::new(), error: None })
    }

    /// The first write error, if any (the run must not commit after one).
    pub fn take_error(&mut self) -> Option<String> {
        self.error.take()
    }

    fn flush_table(&mut self, t: Table) {
        let Some(b) = self.builders.get_mut(&t) else { return };
        if b.is_empty() {
            return;
        }
        let batch = b.finish();
        let w = self.writers.get_mut(&t).expect("writer for every table");
        if let Err(e) = self.lake.block_on(w.write(batch)) {
            self.error.get_or_insert(format!("writing {}: {e}", t.name()));
            return;
        }
        if w.buffered_record_batch_count() >= FLUSH_BATCHES || w.buffer_len() > FLUSH_BYTES {
            match self.lake.block_on(w.flush()) {
                Ok(adds) => self.pending.entry(t).or_default().extend(adds.into_iter().map(Action::Add)),
                Err(e) => {
                    self.error.get_or_insert(format!("writing {}: {e}", t.name()));
                }
            }
        }
    }

    /// Stream every buffered row to its file.
    pub fn flush_all(&mut self) {
        for t in Table::ALL {
            self.flush_table(t);
        }
    }

    /// Close the open files and commit each table's files in one
    /// transaction, `_ingest_log` last. The run becomes visible only when the
    /// transaction publishes its snapshot.
    pub fn commit(mut self, txn: &mut WriteTxn<'_>) -> Result<()> {
        let mut order: Vec<Table> = Table::ALL.into_iter().filter(|t| *t != Table::IngestLog).collect();
        order.push(Table::IngestLog);
        for t in order {
            let w = self.writers.get_mut(&t).expect("writer");
            let mut actions = self.pending.remove(&t).unwrap_or_default();
            let last = self.lake.block_on(w.flush()).map_err(|e| self.lake.lake_err(format!("writing {}: {e}", t.name())))?;
            actions.extend(last.into_iter().map(Action::Add));
            let table = self.tables.get(&t).expect("table");
            let version = if actions.is_empty() {
                table.version().unwrap_or(0)
            } else {
                self.lake.block_on(self.lake.store().commit_append(t, table, actions, txn.run_id())).map_err(|e| self.lake.lake_err(e))?
            };
            crate::failpoint(&format!("ingest-after-commit-{}", t.name()));
            txn.committed(t, version);
        }
        Ok(())
    }
}

impl RowSink for LakeSink<'_> {
    fn row(&mut self, table: Table, vals: &[Val<'_>]) {
        let b = self.builders.entry(table).or_insert_with(|| TableBuilder::new(table));
        b.append(vals);
        if b.len() >= BATCH_ROWS {
            self.flush_table(table);
        }
    }
}
