//! The recorder's files: JSONL records, each linked to the previous one by
//! its SHA-256 (see [`mcpf_formats::chain`]), rotated by size and age with
//! the chain carried into the next file.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mcpf_formats::chain::{record_hash, GENESIS};
use serde_json::{Map, Value};

/// A record before it is chained: its members in order, and the JSON-RPC
/// message as the raw bytes that crossed the wire (embedded verbatim, so
/// the log holds exactly what was sent).
#[derive(Debug, Default)]
pub struct Record {
    pub fields: Map<String, Value>,
    pub message: Option<Vec<u8>>,
}

impl Record {
    /// A record with `ts` now.
    pub fn now() -> Self {
        let mut r = Record::default();
        r.set("ts", Value::String(timestamp()));
        r
    }

    pub fn set(&mut self, key: &str, value: impl Into<Value>) -> &mut Self {
        self.fields.insert(key.to_string(), value.into());
        self
    }

    /// The record's line with its chain member, without the newline.
    fn line(&self, id: &str, seq: u64, prev: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.message.as_ref().map_or(0, Vec::len));
        let body = serde_json::to_vec(&self.fields).unwrap_or_else(|_| b"{}".to_vec());
        out.extend_from_slice(&body[..body.len() - 1]);
        let sep = |out: &mut Vec<u8>| {
            if out.len() > 1 {
                out.push(b',');
            }
        };
        if let Some(m) = &self.message {
            sep(&mut out);
            out.extend_from_slice(b"\"message\":");
            out.extend_from_slice(m);
        }
        sep(&mut out);
        out.extend_from_slice(format!("\"chain\":{{\"id\":\"{id}\",\"seq\":{seq},\"prev\":\"{prev}\"}}}}").as_bytes());
        out
    }
}

/// RFC 3339 UTC with microseconds.
pub fn timestamp() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// When files rotate.
#[derive(Debug, Clone, Copy)]
pub struct Rotation {
    pub max_bytes: u64,
    pub max_age: Option<Duration>,
}

/// The position a checkpoint anchors.
#[derive(Debug, Clone)]
pub struct Head {
    pub chain: String,
    pub seq: u64,
    pub hash: String,
    pub file: PathBuf,
}

/// The open file of one recorder run and its chain.
pub struct Journal {
    dir: PathBuf,
    stem: String,
    chain: String,
    rotation: Rotation,
    durable: bool,
    file: Option<(File, PathBuf, u64, Instant)>,
    part: u32,
    next_seq: u64,
    prev: String,
    /// Head at each file's end, for `--checkpoint-cmd`.
    pub on_file_closed: Option<Box<dyn FnMut(&Head) + Send>>,
}

impl Journal {
    /// A run writing `DIR/STEM.N.jsonl` files (N from 1). `durable`: every
    /// record is on disk (fdatasync) before `append` returns.
    pub fn new(dir: &Path, stem: String, chain: String, rotation: Rotation, durable: bool) -> Journal {
        Journal { dir: dir.to_path_buf(), stem, chain, rotation, durable, file: None, part: 0, next_seq: 0, prev: GENESIS.to_string(), on_file_closed: None }
    }

    /// The output folder, for messages.
    pub fn dir_display(&self) -> String {
        self.dir.display().to_string()
    }

    pub fn chain_id(&self) -> &str {
        &self.chain
    }

    /// The last record written: what a checkpoint anchors.
    pub fn head(&self) -> Option<Head> {
        let (_, path, _, _) = self.file.as_ref()?;
        (self.next_seq > 0).then(|| Head { chain: self.chain.clone(), seq: self.next_seq - 1, hash: self.prev.clone(), file: path.clone() })
    }

    fn path_of(&self, part: u32) -> PathBuf {
        self.dir.join(format!("{}.{part}.jsonl", self.stem))
    }

    fn open_next(&mut self) -> io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let path = self.path_of(self.part + 1);
        // create_new: a file is never appended to by two runs.
        let file = OpenOptions::new().write(true).create_new(true).open(&path)?;
        self.part += 1;
        self.file = Some((file, path, 0, Instant::now()));
        Ok(())
    }

    fn due_for_rotation(&self) -> bool {
        match &self.file {
            Some((_, _, bytes, opened)) => *bytes >= self.rotation.max_bytes || self.rotation.max_age.is_some_and(|a| opened.elapsed() >= a),
            None => false,
        }
    }

    /// Chain and write one record; rotates first when the file is due. On
    /// an error the record is not in the chain (the next one links to the
    /// last record written).
    pub fn append(&mut self, record: &Record) -> io::Result<()> {
        if self.due_for_rotation() {
            self.rotate()?;
        }
        if self.file.is_none() {
            self.open_next()?;
        }
        self.write(record)
    }

    fn write(&mut self, record: &Record) -> io::Result<()> {
        let line = record.line(&self.chain, self.next_seq, &self.prev);
        let (file, _, bytes, _) = self.file.as_mut().expect("open file");
        let mut buf = line.clone();
        buf.push(b'\n');
        let written = file.write_all(&buf).and_then(|_| if self.durable { file.sync_data() } else { Ok(()) });
        if let Err(e) = written {
            // The file may end in part of this record: the next record that
            // can be written starts a new file, linked to the last whole one
            // (verify then reports this file's cut end).
            self.file = None;
            return Err(e);
        }
        *bytes += buf.len() as u64;
        self.prev = record_hash(&line);
        self.next_seq += 1;
        Ok(())
    }

    /// End this file with a `rotate` record naming the next and open it.
    fn rotate(&mut self) -> io::Result<()> {
        let next = self.path_of(self.part + 1);
        let mut r = Record::now();
        r.set("event", "rotate").set("next", next.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
        self.write(&r)?;
        self.close_file()?;
        self.open_next()
    }

    fn close_file(&mut self) -> io::Result<()> {
        let head = self.head();
        if let Some((file, _, _, _)) = self.file.take() {
            file.sync_all()?;
        }
        if let (Some(head), Some(cb)) = (head, self.on_file_closed.as_mut()) {
            cb(&head);
        }
        Ok(())
    }

    /// Write the `close` record (the run ended cleanly) and sync.
    pub fn close(&mut self, records_lost: u64) -> io::Result<()> {
        if self.file.is_none() {
            self.open_next()?;
        }
        let mut r = Record::now();
        r.set("event", "close").set("records", self.next_seq + 1);
        if records_lost > 0 {
            r.set("records_lost", records_lost);
        }
        self.write(&r)?;
        self.close_file()
    }

    /// Sync the open file (buffered mode calls it when the queue runs dry).
    pub fn flush(&mut self) -> io::Result<()> {
        match &mut self.file {
            Some((file, _, _, _)) => file.sync_data(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcpf_formats::chain::ChainChecker;

    fn check(dir: &Path) -> (ChainChecker, Vec<PathBuf>) {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort_by_key(|p| p.to_string_lossy().split('.').nth_back(1).and_then(|n| n.parse::<u32>().ok()));
        let mut c = ChainChecker::new();
        let mut n = 0;
        for f in &files {
            for l in std::fs::read_to_string(f).unwrap().lines() {
                n += 1;
                c.record(n, l.as_bytes(), &serde_json::from_str(l).unwrap());
            }
        }
        (c, files)
    }

    #[test]
    fn records_embed_the_message_verbatim_and_chain_across_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::new(dir.path(), "mail-1".into(), "abc".into(), Rotation { max_bytes: 300, max_age: None }, false);
        for i in 0..10 {
            let mut r = Record::now();
            r.set("direction", "client_to_server").set("server", "mail");
            r.message = Some(format!("{{\"jsonrpc\":\"2.0\", \"id\":{i} ,\"method\":\"ping\"}}").into_bytes());
            j.append(&r).unwrap();
        }
        j.close(0).unwrap();
        let (c, files) = check(dir.path());
        assert!(files.len() > 2, "{files:?}");
        assert_eq!(c.state().verdict(), "intact", "{:?}", c.problems());
        let first = std::fs::read_to_string(&files[0]).unwrap();
        assert!(first.contains(r#""message":{"jsonrpc":"2.0", "id":0 ,"method":"ping"}"#), "{first}");
    }
}
