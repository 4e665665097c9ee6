//! Where the proxies hand their records: written at once and synced
//! (`--sync`), or through a bounded queue to a writer thread. A write that
//! fails is reported on stderr and counted; the proxies keep forwarding
//! unless `--fail-closed` asked them to stop.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::journal::{Journal, Record};

/// How records reach the disk.
#[derive(Debug, Clone, Copy)]
pub struct Durability {
    /// Each record is written and synced before the message is forwarded.
    pub sync: bool,
    /// Records the writer thread may be behind by (buffered mode). A full
    /// queue makes the proxy wait for the disk: it slows, it does not drop.
    pub queue: usize,
    /// Stop forwarding once a record could not be written.
    pub fail_closed: bool,
}

struct Shared {
    journal: Mutex<Journal>,
    /// Records that could not be written since the last one that could.
    lost_pending: AtomicU64,
    lost_total: AtomicU64,
    failed: AtomicBool,
    warned: AtomicBool,
    fail_closed: bool,
}

impl Shared {
    /// Write one record. After a failure, the next record that can be
    /// written is preceded by a `lost` record saying how many are missing.
    fn write(&self, record: &Record) -> bool {
        let mut j = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        let lost = self.lost_pending.load(Ordering::Relaxed);
        if lost > 0 {
            let mut r = Record::now();
            r.set("event", "lost").set("records", lost).set("reason", "the recorder could not write them (see its stderr); the proxy kept forwarding");
            if j.append(&r).is_ok() {
                self.lost_pending.store(0, Ordering::Relaxed);
            }
        }
        match j.append(record) {
            Ok(()) => {
                if self.warned.swap(false, Ordering::Relaxed) {
                    eprintln!("mcp-forensics record: writing records again ({} lost in all)", self.lost_total.load(Ordering::Relaxed));
                }
                true
            }
            Err(e) => {
                self.lost_pending.fetch_add(1, Ordering::Relaxed);
                self.lost_total.fetch_add(1, Ordering::Relaxed);
                if self.fail_closed {
                    self.failed.store(true, Ordering::SeqCst);
                }
                if !self.warned.swap(true, Ordering::Relaxed) {
                    let then = if self.fail_closed { "forwarding STOPS (--fail-closed)" } else { "forwarding continues; records are lost until writing works again (--fail-closed stops forwarding instead)" };
                    eprintln!("mcp-forensics record: cannot write a record to {}: {e}; {then}", j.dir_display());
                }
                false
            }
        }
    }
}

/// The proxies' side of the recorder (cheap to clone).
#[derive(Clone)]
pub struct Recorder {
    shared: Arc<Shared>,
    queue: Option<SyncSender<Option<Record>>>,
    writer: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl Recorder {
    pub fn new(journal: Journal, d: Durability) -> Recorder {
        let shared = Arc::new(Shared { journal: Mutex::new(journal), lost_pending: AtomicU64::new(0), lost_total: AtomicU64::new(0), failed: AtomicBool::new(false), warned: AtomicBool::new(false), fail_closed: d.fail_closed });
        let (queue, writer) = if d.sync {
            (None, None)
        } else {
            let (tx, rx) = sync_channel(d.queue.max(1));
            let s = shared.clone();
            (Some(tx), Some(std::thread::Builder::new().name("record-writer".into()).spawn(move || drain(&s, rx)).expect("spawn the writer thread")))
        };
        Recorder { shared, queue, writer: Arc::new(Mutex::new(writer)) }
    }

    /// Record one record: durable on return with `--sync`, else queued.
    pub fn record(&self, record: Record) {
        match &self.queue {
            None => {
                self.shared.write(&record);
            }
            Some(q) => {
                // Blocks while the queue is full: the disk sets the pace.
                let _ = q.send(Some(record));
            }
        }
    }

    /// Whether the proxies may forward: false only with `--fail-closed`
    /// after a record could not be written.
    pub fn may_forward(&self) -> bool {
        !self.shared.failed.load(Ordering::SeqCst)
    }

    pub fn chain_id(&self) -> String {
        self.shared.journal.lock().unwrap_or_else(|p| p.into_inner()).chain_id().to_string()
    }

    /// Drain the queue, write the `close` record and sync. Returns the
    /// number of records that could not be written.
    pub fn close(self) -> u64 {
        // Clones may live on in threads blocked on a read: stop the writer
        // by message, not by the senders going away.
        if let Some(q) = &self.queue {
            let _ = q.send(None);
        }
        if let Some(w) = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = w.join();
        }
        let lost = self.shared.lost_total.load(Ordering::Relaxed);
        let mut j = self.shared.journal.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = j.close(lost) {
            eprintln!("mcp-forensics record: cannot write the close record to {}: {e}", j.dir_display());
        }
        lost
    }
}

/// The writer thread: write what arrives; sync when the queue runs dry, so
/// a buffered record reaches the disk within a moment of the burst it
/// came in.
fn drain(shared: &Shared, rx: Receiver<Option<Record>>) {
    let mut dirty = false;
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(Some(r)) => {
                dirty |= shared.write(&r);
            }
            Ok(None) => return,
            Err(RecvTimeoutError::Timeout) => {
                if dirty {
                    let _ = shared.journal.lock().unwrap_or_else(|p| p.into_inner()).flush();
                    dirty = false;
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}
