//! One JSON-RPC message as a record, and the framing that finds messages
//! in a byte stream in bounded memory.

use mcpf_formats::digest::sha256_hex;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::journal::Record;
use crate::redact::redact_message;

/// Largest message embedded whole: a record must stay under ingest's line
/// limit (4 MiB) with its other members.
pub const MAX_EMBEDDED: usize = 4 * 1024 * 1024 - 64 * 1024;
/// Head kept of a larger message (with its size and SHA-256).
const KEPT_HEAD: usize = 64 * 1024;

/// A complete message (a line of the stdio stream, an HTTP body or an SSE
/// event's data): its bytes, or its head when it exceeded
/// [`MAX_EMBEDDED`].
pub struct Frame {
    pub bytes: Vec<u8>,
    pub size: u64,
    pub sha256: Option<String>,
}

/// What a record of a message says besides the message.
pub struct Context<'a> {
    pub direction: &'static str,
    pub server: &'a str,
    pub session: Option<&'a str>,
    pub pid: Option<u32>,
    pub redact: bool,
    /// Members added after the message's own (`http`, `batch`).
    pub extra: Map<String, Value>,
}

/// The record of one message. Valid JSON is embedded as sent (or masked,
/// with `--redact`, saying what kinds were masked); anything else is kept
/// as text in `raw` with the reason.
pub fn message_record(frame: &Frame, ctx: Context<'_>) -> Record {
    let mut r = Record::now();
    r.set("direction", ctx.direction).set("server", ctx.server);
    if let Some(s) = ctx.session {
        r.set("session", s);
    }
    if let Some(p) = ctx.pid {
        r.set("pid", p);
    }
    for (k, v) in ctx.extra {
        r.fields.insert(k, v);
    }
    let bytes = trim_line_end(&frame.bytes);
    if let Some(sha) = &frame.sha256 {
        r.set("truncated", true).set("size", frame.size).set("sha256", sha.as_str()).set("raw", String::from_utf8_lossy(&bytes[..bytes.len().min(KEPT_HEAD)]).into_owned());
        return r;
    }
    match std::str::from_utf8(bytes).map_err(|e| e.to_string()).and_then(|t| serde_json::from_str::<serde::de::IgnoredAny>(t).map(|_| t).map_err(|e| e.to_string())) {
        Ok(_) if !bytes.trim_ascii_start().starts_with(b"{") && !bytes.trim_ascii_start().starts_with(b"[") => {
            r.set("invalid", "JSON but not a JSON-RPC object").set("raw", String::from_utf8_lossy(bytes).into_owned());
        }
        Ok(_) => match ctx.redact.then(|| redact_message(bytes)).flatten() {
            Some(red) => {
                r.set("redacted", json!({"pointer": "/params/arguments", "kinds": red.kinds, "by": "mcp.sensitive_data_in_arguments detectors", "original_sha256": sha256_hex(bytes)}));
                r.message = Some(red.message);
            }
            None => r.message = Some(bytes.to_vec()),
        },
        Err(e) => {
            r.set("invalid", format!("not JSON: {e}")).set("raw", String::from_utf8_lossy(bytes).into_owned());
        }
    }
    r
}

fn trim_line_end(b: &[u8]) -> &[u8] {
    let b = b.strip_suffix(b"\n").unwrap_or(b);
    b.strip_suffix(b"\r").unwrap_or(b)
}

/// Splits a byte stream into lines as they complete (or collects one
/// frame with [`LineSplitter::push`]), keeping at most [`MAX_EMBEDDED`]
/// bytes of a frame and hashing the rest.
#[derive(Default)]
pub struct LineSplitter {
    buf: Vec<u8>,
    size: u64,
    overflow: Option<Sha256>,
}

impl LineSplitter {
    /// Feed bytes; `done` gets every line completed by them (with its newline).
    pub fn feed(&mut self, mut chunk: &[u8], done: &mut dyn FnMut(Frame)) {
        while !chunk.is_empty() {
            let (part, complete) = match memchr_newline(chunk) {
                Some(i) => (&chunk[..=i], true),
                None => (chunk, false),
            };
            self.push(part);
            chunk = &chunk[part.len()..];
            if complete {
                done(self.take());
            }
        }
    }

    /// Add bytes to the current frame (no line splitting: an HTTP body, an
    /// SSE event's data).
    pub fn push(&mut self, part: &[u8]) {
        self.size += part.len() as u64;
        if let Some(h) = &mut self.overflow {
            h.update(part);
            return;
        }
        if self.buf.len() + part.len() > MAX_EMBEDDED {
            let mut h = Sha256::new();
            h.update(&self.buf);
            h.update(part);
            let room = MAX_EMBEDDED.saturating_sub(self.buf.len());
            self.buf.extend_from_slice(&part[..room.min(part.len())]);
            self.overflow = Some(h);
        } else {
            self.buf.extend_from_slice(part);
        }
    }

    /// The frame so far, and start a new one.
    pub fn take(&mut self) -> Frame {
        let bytes = std::mem::take(&mut self.buf);
        let size = std::mem::take(&mut self.size);
        let sha256 = self.overflow.take().map(|h| mcpf_formats::digest::hex(&h.finalize()));
        Frame { bytes, size, sha256 }
    }

    /// Bytes of an unfinished last line (the stream ended without a newline).
    pub fn finish(&mut self) -> Option<Frame> {
        self.pending()
    }

    /// The frame collected so far, if any bytes were.
    pub fn pending(&mut self) -> Option<Frame> {
        (self.size > 0).then(|| self.take())
    }
}

fn memchr_newline(b: &[u8]) -> Option<usize> {
    b.iter().position(|c| *c == b'\n')
}

/// A frame of bytes known to be whole and small (an HTTP body, an SSE event).
pub fn frame_of(bytes: Vec<u8>) -> Frame {
    if bytes.len() > MAX_EMBEDDED {
        let sha = sha256_hex(&bytes);
        let size = bytes.len() as u64;
        let mut bytes = bytes;
        bytes.truncate(KEPT_HEAD);
        Frame { bytes, size, sha256: Some(sha) }
    } else {
        Frame { size: bytes.len() as u64, bytes, sha256: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context<'static> {
        Context { direction: "client_to_server", server: "s", session: None, pid: None, redact: false, extra: Map::new() }
    }

    #[test]
    fn lines_split_across_chunks_are_whole_and_overlong_ones_hashed() {
        let mut s = LineSplitter::default();
        let mut got = Vec::new();
        for chunk in [&b"{\"a\""[..], b":1}\n{\"b\":2}\n{\"c"] {
            s.feed(chunk, &mut |f| got.push(f.bytes));
        }
        assert_eq!(got, vec![b"{\"a\":1}\n".to_vec(), b"{\"b\":2}\n".to_vec()]);
        assert_eq!(s.finish().unwrap().bytes, b"{\"c");
        let big = vec![b'x'; MAX_EMBEDDED + 10];
        let mut frames = Vec::new();
        s.feed(&big, &mut |f| frames.push(f));
        s.feed(b"\n", &mut |f| frames.push(f));
        assert_eq!(frames[0].size, MAX_EMBEDDED as u64 + 11);
        assert!(frames[0].sha256.is_some() && frames[0].bytes.len() == MAX_EMBEDDED);
        let r = message_record(&frames[0], ctx());
        assert_eq!(r.fields["truncated"], true);
    }

    #[test]
    fn invalid_json_is_kept_as_text_with_the_reason() {
        let r = message_record(&frame_of(b"Server listening on stdio\n".to_vec()), ctx());
        assert!(r.message.is_none());
        assert!(r.fields["invalid"].as_str().unwrap().starts_with("not JSON"));
        let r = message_record(&frame_of(b"{\"jsonrpc\":\"2.0\" , \"id\":1}\r\n".to_vec()), ctx());
        assert_eq!(r.message.as_deref(), Some(&b"{\"jsonrpc\":\"2.0\" , \"id\":1}"[..]));
    }
}
