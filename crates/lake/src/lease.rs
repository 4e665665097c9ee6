//! The writers' lock of a lake in an object store: a lease.
//!
//! An object store has no file locks, and a writer on another host can die
//! without anyone noticing. The lock is the object `_lake/lock`, changed only
//! by conditional writes (S3 `If-None-Match` / `If-Match`, which delta-rs's
//! commits rely on as well):
//! - **take**: create it if absent, or replace a free or abandoned one on
//!   the condition that it is still the version read; of several writers
//!   racing, exactly one condition holds;
//! - **hold**: a thread renews it every [`RENEW_EVERY`], each renewal again
//!   conditional on the version this holder wrote last;
//! - **abandoned**: a waiter that sees the same version for [`LEASE_TTL`] of
//!   its own clock takes it over. No clocks are compared across hosts, so
//!   skew cannot make a live lease look old;
//! - **release**: replace it with a free record, conditionally.
//!
//! A holder that was paused longer than the TTL (and so lost its lease)
//! finds out at its next renewal or before it publishes, and stops; its
//! publication would fail anyway, because snapshot numbers are only ever
//! created, never replaced ([`crate::layout::Layout::publish`]).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::location::{Put, Remote};
use deltalake::logstore::object_store::PutMode;

/// A lease not renewed for this long (as a waiter measures it) is abandoned.
pub const LEASE_TTL: Duration = Duration::from_secs(30);
/// How often the holder renews.
pub const RENEW_EVERY: Duration = Duration::from_secs(5);
/// How often a waiter looks again.
const POLL: Duration = Duration::from_millis(250);

/// What the lock object says.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    /// Free (released) or held.
    held: bool,
    /// Who: `pid N on HOST (ingest RUN)`.
    holder: String,
    /// A new value at every renewal, so each version's bytes differ.
    renewed_at: String,
}

struct State {
    etag: Option<String>,
    lost: Option<String>,
}

/// A held lease; renewed by its own thread until dropped.
pub struct Lease {
    remote: Arc<Remote>,
    key: String,
    holder: String,
    state: Arc<Mutex<State>>,
    done: Arc<AtomicBool>,
    renewer: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Lease({} by {})", self.key, self.holder)
    }
}

fn body(held: bool, holder: &str) -> Vec<u8> {
    let r = Record { held, holder: holder.to_string(), renewed_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true) };
    serde_json::to_vec(&r).expect("a lease record serializes")
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "unknown host".into())
}

impl Lease {
    /// Take the lease at `key`, waiting while another writer holds it.
    pub fn acquire(remote: Arc<Remote>, key: &str, what: &str, on_wait: &mut dyn FnMut(&str), stop: Option<&AtomicBool>) -> io::Result<Lease> {
        let holder = format!("pid {} on {} ({what}) since {}", std::process::id(), host(), chrono::Utc::now().to_rfc3339());
        let mut told = false;
        // The version a waiter saw, and since when (its own clock).
        let mut seen: Option<(Option<String>, Instant)> = None;
        loop {
            if let Put::Done(etag) = remote.put(key, body(true, &holder), PutMode::Create)? {
                return Ok(Self::held(remote, key, holder, etag));
            }
            let Some((bytes, etag)) = remote.get(key)? else { continue };
            let record: Option<Record> = serde_json::from_slice(&bytes).ok();
            let free = record.as_ref().is_some_and(|r| !r.held);
            let abandoned = match &seen {
                Some((e, since)) if *e == etag => since.elapsed() >= LEASE_TTL,
                _ => {
                    seen = Some((etag.clone(), Instant::now()));
                    false
                }
            };
            if free || abandoned {
                if let Put::Done(new) = remote.put_if(key, body(true, &holder), etag)? {
                    return Ok(Self::held(remote, key, holder, new));
                }
                continue;
            }
            if !told {
                on_wait(record.map(|r| r.holder).unwrap_or_else(|| "another writer".into()).trim());
                told = true;
            }
            if stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
                return Err(io::Error::other(crate::STOPPED_WAITING));
            }
            std::thread::sleep(POLL);
        }
    }

    fn held(remote: Arc<Remote>, key: &str, holder: String, etag: Option<String>) -> Lease {
        let state = Arc::new(Mutex::new(State { etag, lost: None }));
        let done = Arc::new(AtomicBool::new(false));
        let renewer = {
            let (remote, key, holder, state, done) = (remote.clone(), key.to_string(), holder.clone(), state.clone(), done.clone());
            std::thread::Builder::new().name("mcpf-lease".into()).spawn(move || renew(&remote, &key, &holder, &state, &done)).ok()
        };
        Lease { remote, key: key.to_string(), holder, state, done, renewer }
    }

    /// Fail if the lease was lost.
    pub fn check(&self) -> io::Result<()> {
        match &self.state.lock().unwrap_or_else(|p| p.into_inner()).lost {
            Some(why) => Err(io::Error::other(format!("the writers' lease on the lake was lost ({why}); nothing of this run is published, run it again"))),
            None => Ok(()),
        }
    }
}

/// Renew until told to stop or until the lease is found lost.
fn renew(remote: &Remote, key: &str, holder: &str, state: &Mutex<State>, done: &AtomicBool) {
    let mut last = Instant::now();
    while !done.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        if last.elapsed() < RENEW_EVERY {
            continue;
        }
        last = Instant::now();
        let etag = state.lock().unwrap_or_else(|p| p.into_inner()).etag.clone();
        let outcome = remote.put_if(key, body(true, holder), etag);
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        match outcome {
            Ok(Put::Done(new)) => s.etag = new,
            Ok(_) => {
                s.lost = Some("another writer took it over after it was not renewed".into());
                return;
            }
            // A failed renewal is retried; the lease expires for others only
            // after LEASE_TTL without one.
            Err(_) => {}
        }
    }
}

impl Drop for Lease {
    /// Stop renewing and free the lease (conditionally: one taken over by
    /// another writer is left to it).
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(h) = self.renewer.take() {
            let _ = h.join();
        }
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.lost.is_none() {
            let _ = self.remote.put_if(&self.key, body(false, &self.holder), s.etag.clone());
        }
    }
}
