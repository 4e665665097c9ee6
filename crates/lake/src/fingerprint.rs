//! Content fingerprints (sha256) of raw logs, and reading exactly the bytes
//! that were fingerprinted.
//!
//! A live log (`/var/log/mail.log`) grows while it is read. Ingest fixes the
//! file's length once, from the open handle, hashes exactly that many bytes
//! and parses exactly those bytes again through the same handle: what
//! `_ingest_log` says was read is what was read, and the next run resumes at
//! that length without reading a line twice.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use sha2::{Digest, Sha256};

pub use mcpf_formats::digest::hex;

/// sha256 of no bytes: the prefix of a source ingested from its start.
pub fn empty_sha() -> String {
    hex(&Sha256::digest(b""))
}

/// The fingerprint of a file's first `len` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// sha256 of the `len` bytes.
    pub sha256: String,
    /// sha256 of the first `prefix` bytes, when asked for and `prefix <= len`.
    pub prefix_sha256: Option<String>,
    pub len: u64,
}

/// Hash the first `len` bytes of `file` (from its start), and its first
/// `prefix` bytes. Fails when the file holds fewer than `len` bytes (it was
/// truncated while being read).
pub fn fingerprint(file: &mut File, len: u64, prefix: Option<u64>) -> io::Result<Fingerprint> {
    let (sha256, prefixes) = fingerprint_prefixes(file, len, prefix.as_slice())?;
    Ok(Fingerprint { sha256, prefix_sha256: prefixes.into_iter().next().map(|(_, h)| h), len })
}

/// [`fingerprint`] with the hashes of several prefixes in the same pass (a
/// rotated file is the previous live file plus what was appended before the
/// rotation: its start is compared with every earlier size of its set).
/// Prefixes longer than `len` are left out.
pub fn fingerprint_prefixes(file: &mut File, len: u64, prefixes: &[u64]) -> io::Result<(String, Vec<(u64, String)>)> {
    file.seek(SeekFrom::Start(0))?;
    let want: Vec<u64> = prefixes.iter().copied().filter(|p| *p <= len).collect();
    let content = fingerprint_stream(file.take(len), &want)?;
    if content.len < len {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("the file shrank from {len} to {} bytes while it was read", content.len)));
    }
    Ok((content.sha256, content.prefixes))
}

/// The hash and length of everything a reader yields, with the hashes of
/// its first `prefixes` bytes (those it reaches), in one pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamFingerprint {
    pub sha256: String,
    pub len: u64,
    /// (prefix length, sha256), ascending, for the prefixes not longer than `len`.
    pub prefixes: Vec<(u64, String)>,
}

/// Hash a stream (the decompressed content of a `.gz` file: logrotate's
/// compressed `mail.log.2.gz` holds the bytes `mail.log.1` held, so its
/// content hash and prefix hashes are what say it was read before).
pub fn fingerprint_stream(mut r: impl Read, prefixes: &[u64]) -> io::Result<StreamFingerprint> {
    let mut want: Vec<u64> = prefixes.to_vec();
    want.sort_unstable();
    want.dedup();
    let mut want = want.into_iter().peekable();
    let mut h = Sha256::new();
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done: u64 = 0;
    loop {
        while want.peek() == Some(&done) {
            out.push((done, hex(&h.clone().finalize())));
            want.next();
        }
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let mut chunk = &buf[..n];
        while let Some(&p) = want.peek() {
            if p > done + chunk.len() as u64 {
                break;
            }
            let k = (p - done) as usize;
            h.update(&chunk[..k]);
            chunk = &chunk[k..];
            done += k as u64;
            out.push((p, hex(&h.clone().finalize())));
            want.next();
        }
        h.update(chunk);
        done += chunk.len() as u64;
    }
    Ok(StreamFingerprint { sha256: hex(&h.finalize()), len: done, prefixes: out })
}

/// [`fingerprint`] of a whole file by path (for `verify`).
pub fn fingerprint_path(path: &Path, prefix: Option<u64>) -> io::Result<(String, Option<String>, u64)> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    let fp = fingerprint(&mut f, len, prefix)?;
    Ok((fp.sha256, fp.prefix_sha256, fp.len))
}

/// The first `len` bytes of `file`, from its start: the bytes [`fingerprint`]
/// hashed, whatever is appended meanwhile.
pub fn exact_bytes(file: &File, len: u64) -> io::Result<io::Take<File>> {
    let mut f = file.try_clone()?;
    f.seek(SeekFrom::Start(0))?;
    Ok(f.take(len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn hashes_exactly_len_bytes_even_when_the_file_grows() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("live.log");
        std::fs::write(&p, b"one\ntwo\n").unwrap();
        let mut f = File::open(&p).unwrap();
        let len = f.metadata().unwrap().len();
        std::fs::OpenOptions::new().append(true).open(&p).unwrap().write_all(b"three\n").unwrap();
        let fp = fingerprint(&mut f, len, Some(4)).unwrap();
        assert_eq!(fp.sha256, hex(&Sha256::digest(b"one\ntwo\n")));
        assert_eq!(fp.prefix_sha256.unwrap(), hex(&Sha256::digest(b"one\n")));
        let mut read = String::new();
        exact_bytes(&f, len).unwrap().read_to_string(&mut read).unwrap();
        assert_eq!(read, "one\ntwo\n");
    }

    #[test]
    fn several_prefixes_in_one_pass() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.log");
        std::fs::write(&p, b"one\ntwo\nthree\n").unwrap();
        let mut f = File::open(&p).unwrap();
        let (whole, pre) = fingerprint_prefixes(&mut f, 14, &[8, 0, 4, 99, 14]).unwrap();
        let h = |b: &[u8]| hex(&Sha256::digest(b));
        assert_eq!(whole, h(b"one\ntwo\nthree\n"));
        assert_eq!(pre, vec![(0, h(b"")), (4, h(b"one\n")), (8, h(b"one\ntwo\n")), (14, whole.clone())]);
    }

    #[test]
    fn a_stream_is_hashed_with_the_prefixes_it_reaches() {
        let h = |b: &[u8]| hex(&Sha256::digest(b));
        let fp = fingerprint_stream(&b"one\ntwo\n"[..], &[99, 4, 0]).unwrap();
        assert_eq!(fp, StreamFingerprint { sha256: h(b"one\ntwo\n"), len: 8, prefixes: vec![(0, h(b"")), (4, h(b"one\n"))] });
    }

    #[test]
    fn a_file_that_shrinks_while_read_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.log");
        std::fs::write(&p, b"0123456789").unwrap();
        let mut f = File::open(&p).unwrap();
        std::fs::write(&p, b"012").unwrap();
        let e = fingerprint(&mut f, 10, None).unwrap_err();
        assert!(e.to_string().contains("shrank from 10 to 3"), "{e}");
    }
}
