//! Streams rows of all tables into their Delta writers, bounded in memory,
//! and commits every file a run wrote, one transaction per table.

use std::collections::{HashMap, HashSet};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use arrow::array::{Array, StringArray};
use arrow::record_batch::RecordBatch;

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
pub(crate) const TARGET_FILE_BYTES: u64 = 128 * 1024 * 1024;
/// A table's writer closes its open files (one per day partition, each
/// holding its row group and dictionaries in memory) after this many batches
/// or this many encoded bytes; the files' Add actions wait for the single
/// commit at the end of the run. This is what bounds memory when a run spans
/// months of partitions.
const FLUSH_BATCHES: usize = 4;
const FLUSH_BYTES: usize = 64 * 1024 * 1024;
/// ... or once its open files span this many day partitions: every open
/// file holds a row group's column buffers and dictionaries, so a window
/// over months of sparse days (a quiet mailbox: a few hundred rows a day)
/// would otherwise hold hundreds of files open at once. Logs are in time
/// order, so a day rarely straddles two windows; `optimize` merges the
/// files of one that does.
const FLUSH_PARTITIONS: usize = 8;

/// The Parquet settings of every file the lake writes.
pub fn writer_properties() -> WriterProperties {
    WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::try_new(3).expect("level"))).build()
}

/// Batches in flight between the parser and the encoder thread. Small: it
/// is what lets parsing run ahead while a batch is being encoded, not a
/// buffer (each batch is up to [`BATCH_ROWS`] rows).
const ENCODER_QUEUE: usize = 4;

/// One writer per table, rows batched per table.
///
/// Parsing and Parquet encoding run side by side: the calling thread parses
/// and builds Arrow batches, and a dedicated encoder thread owns the Delta
/// writers (compression, dictionaries, files). The bounded queue between them
/// keeps memory flat: when encoding is the slower side, parsing waits.
pub struct LakeSink<'a> {
    lake: &'a Lake,
    tables: HashMap<Table, DeltaTable>,
    builders: HashMap<Table, TableBuilder>,
    to_encoder: Option<SyncSender<(Table, RecordBatch)>>,
    encoder: Option<JoinHandle<Encoder>>,
    /// The encoder's first error, seen by the parser without waiting for it.
    encoder_error: Arc<Mutex<Option<String>>>,
    error: Option<String>,
}

/// What the encoder thread owns, handed back when it ends.
struct Encoder {
    writers: HashMap<Table, RecordBatchWriter>,
    /// Files already closed, to be committed with the rest at the end.
    pending: HashMap<Table, Vec<Action>>,
    /// Day partitions each table's writer has open files in.
    open_days: HashMap<Table, HashSet<String>>,
}

impl Encoder {
    /// Encode batches until the parser hangs up; stop writing (but keep
    /// draining, so the parser never blocks) after the first error.
    fn run(mut self, rt: tokio::runtime::Handle, batches: Receiver<(Table, RecordBatch)>, error: Arc<Mutex<Option<String>>>) -> Encoder {
        let mut failed = false;
        for (t, batch) in batches {
            if failed {
                continue;
            }
            if let Err(e) = self.write(&rt, t, batch) {
                error.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
                failed = true;
            }
        }
        self
    }

    /// Write a batch in slices of at most [`FLUSH_PARTITIONS`] open days,
    /// closing the files whenever a limit is reached.
    fn write(&mut self, rt: &tokio::runtime::Handle, t: Table, batch: RecordBatch) -> std::result::Result<(), String> {
        let dates = batch.column_by_name("date").and_then(|c| c.as_any().downcast_ref::<StringArray>()).cloned();
        let mut start = 0;
        while start < batch.num_rows() {
            let days = self.open_days.entry(t).or_default();
            let end = match &dates {
                Some(d) => end_within_days(d, start, days, FLUSH_PARTITIONS),
                None => batch.num_rows(),
            };
            let w = self.writers.get_mut(&t).expect("writer for every table");
            rt.block_on(w.write(batch.slice(start, end - start))).map_err(|e| format!("writing {}: {e}", t.name()))?;
            if w.buffered_record_batch_count() >= FLUSH_BATCHES || w.buffer_len() > FLUSH_BYTES || days.len() >= FLUSH_PARTITIONS {
                let adds = rt.block_on(w.flush()).map_err(|e| format!("writing {}: {e}", t.name()))?;
                self.pending.entry(t).or_default().extend(adds.into_iter().map(Action::Add));
                days.clear();
            }
            start = end;
        }
        Ok(())
    }
}

/// The end of the slice from `start` that adds days to `days` only while
/// fewer than `limit` are open (at least one row, so writing progresses).
/// Rows come in time order, so only changes of value are looked up.
fn end_within_days(dates: &StringArray, start: usize, days: &mut HashSet<String>, limit: usize) -> usize {
    let mut last: Option<&str> = None;
    for i in start..dates.len() {
        let d = if dates.is_null(i) { "" } else { dates.value(i) };
        if last == Some(d) {
            continue;
        }
        if !days.contains(d) {
            if days.len() >= limit && i > start {
                return i;
            }
            days.insert(d.to_string());
        }
        last = Some(d);
    }
    dates.len()
}

impl<'a> LakeSink<'a> {
    /// Create missing tables and a writer for each, and start the encoder
    /// thread. Called with the lock held.
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
        let (to_encoder, batches) = sync_channel(ENCODER_QUEUE);
        let encoder_error = Arc::new(Mutex::new(None));
        let (rt, err) = (lake.runtime_handle(), encoder_error.clone());
        let encoder = Encoder { writers, pending: HashMap::new(), open_days: HashMap::new() };
        let encoder = std::thread::Builder::new()
            .name("mcpf-encoder".into())
            .spawn(move || encoder.run(rt, batches, err))
            .map_err(|e| lake.lake_err(format!("cannot start the encoder thread: {e}")))?;
        Ok(LakeSink { lake, tables, builders: HashMap::new(), to_encoder: Some(to_encoder), encoder: Some(encoder), encoder_error, error: None })
    }

    /// The first write error, if any (the run must not commit after one).
    pub fn take_error(&mut self) -> Option<String> {
        if self.error.is_none() {
            self.error = self.encoder_error.lock().unwrap_or_else(|p| p.into_inner()).take();
        }
        self.error.take()
    }

    fn flush_table(&mut self, t: Table) {
        let Some(b) = self.builders.get_mut(&t) else { return };
        if b.is_empty() {
            return;
        }
        let batch = b.finish();
        let Some(tx) = &self.to_encoder else { return };
        if tx.send((t, batch)).is_err() {
            self.error.get_or_insert_with(|| "the encoder thread stopped".to_string());
        }
    }

    /// Stream every buffered row to its file.
    pub fn flush_all(&mut self) {
        for t in Table::ALL {
            self.flush_table(t);
        }
    }

    /// Wait for the encoder to finish what it was sent; its writers and the
    /// files it closed come back.
    fn join_encoder(&mut self) -> Result<Encoder> {
        self.to_encoder = None;
        let handle = self.encoder.take().ok_or_else(|| self.lake.lake_err("the encoder thread was already joined"))?;
        let encoder = handle.join().map_err(|_| self.lake.lake_err("the encoder thread panicked"))?;
        if let Some(e) = self.take_error() {
            return Err(self.lake.lake_err(e));
        }
        Ok(encoder)
    }

    /// Close the open files and commit each table's files in one
    /// transaction, `_ingest_log` last. The run becomes visible only when the
    /// transaction publishes its snapshot.
    pub fn commit(mut self, txn: &mut WriteTxn<'_>) -> Result<()> {
        self.flush_all();
        let Encoder { mut writers, mut pending, .. } = self.join_encoder()?;
        let mut order: Vec<Table> = Table::ALL.into_iter().filter(|t| *t != Table::IngestLog).collect();
        order.push(Table::IngestLog);
        for t in order {
            let w = writers.get_mut(&t).expect("writer");
            let mut actions = pending.remove(&t).unwrap_or_default();
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

impl Drop for LakeSink<'_> {
    /// A run that fails or stops still waits for its encoder, so no thread
    /// writes files after the run's rollback removed them.
    fn drop(&mut self) {
        self.to_encoder = None;
        if let Some(h) = self.encoder.take() {
            let _ = h.join();
        }
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

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use arrow::array::StringArray;

    use super::end_within_days;

    #[test]
    fn slices_never_open_more_days_than_the_limit() {
        let dates = StringArray::from(vec!["d1", "d1", "d2", "d3", "d3", "d4", "d2", "d5"]);
        let mut open = HashSet::new();
        // Up to 3 open days: d1 d1 d2 d3 d3, then d4 would be a fourth.
        assert_eq!(end_within_days(&dates, 0, &mut open, 3), 5);
        assert_eq!(open.len(), 3);
        // After a flush the next slice starts empty: d4 d2 d5 fit.
        open.clear();
        assert_eq!(end_within_days(&dates, 5, &mut open, 3), 8);
        // An already open day never ends a slice; a full window still takes one row.
        let mut full: HashSet<String> = ["d1", "d2", "d3"].iter().map(|s| s.to_string()).collect();
        assert_eq!(end_within_days(&dates, 0, &mut full, 3), 5);
        let mut full: HashSet<String> = ["x", "y", "z"].iter().map(|s| s.to_string()).collect();
        assert_eq!(end_within_days(&dates, 0, &mut full, 3), 2);
    }
}
