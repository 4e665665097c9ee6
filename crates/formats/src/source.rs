//! Reading raw log files: decompression by magic bytes and bounded lines.
//!
//! Log content is attacker-controlled, so a line is never allowed to grow
//! memory without bound: past [`MAX_LINE_BYTES`] the rest of the line is
//! counted but not kept, and the parser is told the line was too long.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use crate::{Line, Pos};

/// The longest line kept in memory. Claude Desktop logs whole tool results on
/// one line, so this is generous; anything longer is rejected with its head.
pub const MAX_LINE_BYTES: usize = 4 * 1024 * 1024;

/// Compression recognised from the first bytes of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
    /// `.bz2` (rotated sets compressed with `compresscmd bzip2`).
    Bzip2,
}

impl Compression {
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else if head.len() >= 4 && head.starts_with(b"BZh") && (b'1'..=b'9').contains(&head[3]) {
            Compression::Bzip2
        } else {
            Compression::None
        }
    }
}

/// Message of the error a read returns once its stop flag is set.
pub const STOPPED: &str = "stopped on request";

/// A reader that fails with [`STOPPED`] once `stop` is set, so a long parse
/// can be interrupted (Ctrl-C in Python) between two buffer refills.
pub struct StoppableReader<'a, R> {
    inner: R,
    stop: &'a std::sync::atomic::AtomicBool,
}

impl<'a, R> StoppableReader<'a, R> {
    pub fn new(inner: R, stop: &'a std::sync::atomic::AtomicBool) -> Self {
        StoppableReader { inner, stop }
    }
    fn check(&self) -> io::Result<()> {
        if self.stop.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(io::Error::other(STOPPED));
        }
        Ok(())
    }
}

impl<R: Read> Read for StoppableReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.check()?;
        self.inner.read(buf)
    }
}

impl<R: BufRead> BufRead for StoppableReader<'_, R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.check()?;
        self.inner.fill_buf()
    }
    fn consume(&mut self, n: usize) {
        self.inner.consume(n)
    }
}

/// Open a file for reading its decompressed bytes. (A grown log is re-read
/// from its start so cross-line state is exact; see `parse_file`.)
pub fn open_decompressed(path: &Path) -> io::Result<(Box<dyn BufRead>, Compression)> {
    decompressed(File::open(path)?)
}

/// The decompressed bytes of a raw stream, compression recognised from its
/// first bytes (gzip members are read one after another, as `zcat` does).
pub fn decompressed<'a, R: Read + 'a>(mut raw: R) -> io::Result<(Box<dyn BufRead + 'a>, Compression)> {
    // Read the magic bytes with a loop: a short first read must not hide them.
    let mut magic = [0u8; 4];
    let mut n = 0;
    while n < magic.len() {
        match raw.read(&mut magic[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let head = magic[..n].to_vec();
    let raw = BufReader::with_capacity(256 * 1024, io::Cursor::new(head.clone()).chain(raw));
    let compression = Compression::sniff(&head);
    let reader: Box<dyn BufRead + 'a> = match compression {
        Compression::None => Box::new(raw),
        Compression::Gzip => Box::new(BufReader::with_capacity(256 * 1024, flate2::bufread::MultiGzDecoder::new(raw))),
        Compression::Zstd => Box::new(BufReader::with_capacity(256 * 1024, zstd::stream::read::Decoder::with_buffer(raw)?)),
        // Multi-stream, as `bzcat` reads a file of concatenated streams.
        Compression::Bzip2 => Box::new(BufReader::with_capacity(256 * 1024, bzip2::bufread::MultiBzDecoder::new(raw))),
    };
    Ok((reader, compression))
}

/// Read the first `max` decompressed bytes of a file, for format detection,
/// and the file's compression.
pub fn read_head(path: &Path, max: usize) -> io::Result<(Vec<u8>, Compression)> {
    let (mut r, compression) = open_decompressed(path)?;
    let mut buf = Vec::with_capacity(max.min(1 << 20));
    r.by_ref().take(max as u64).read_to_end(&mut buf)?;
    Ok((buf, compression))
}

/// Splits a byte stream into [`Line`]s with offsets, bounding each line.
pub struct LineReader<R: BufRead> {
    inner: R,
    buf: Vec<u8>,
    offset: u64,
    line_no: u64,
}

impl<R: BufRead> LineReader<R> {
    /// Read `inner` from its first byte (offset 0, line 1).
    pub fn new(inner: R) -> Self {
        LineReader { inner, buf: Vec::with_capacity(8192), offset: 0, line_no: 0 }
    }

    /// Bytes consumed so far (the offset of the next line).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Lines handed out so far.
    pub fn lines_read(&self) -> u64 {
        self.line_no
    }

    /// Call `f` with every line. Returns the total bytes read.
    pub fn for_each(&mut self, mut f: impl FnMut(&Line<'_>)) -> io::Result<u64> {
        loop {
            self.buf.clear();
            let start = self.offset;
            let mut full_len: u64 = 0;
            let mut too_long = false;
            let mut saw_any = false;
            loop {
                let chunk = match self.inner.fill_buf() {
                    Ok(c) => c,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                if chunk.is_empty() {
                    break;
                }
                saw_any = true;
                let (take, found) = match memchr::memchr(b'\n', chunk) {
                    Some(i) => (i + 1, true),
                    None => (chunk.len(), false),
                };
                let content = if found { &chunk[..take - 1] } else { &chunk[..take] };
                full_len += content.len() as u64;
                let room = MAX_LINE_BYTES.saturating_sub(self.buf.len());
                if content.len() > room {
                    too_long = true;
                }
                self.buf.extend_from_slice(&content[..content.len().min(room)]);
                self.inner.consume(take);
                self.offset += take as u64;
                if found {
                    break;
                }
            }
            if !saw_any {
                return Ok(self.offset);
            }
            if !too_long && self.buf.last() == Some(&b'\r') {
                self.buf.pop();
                full_len -= 1;
            }
            self.line_no += 1;
            f(&Line { bytes: &self.buf, pos: Pos { offset: start, line: self.line_no, pointer: None }, too_long, full_len });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8]) -> Vec<(u64, u64, Vec<u8>)> {
        let mut out = vec![];
        LineReader::new(input)
            .for_each(|l| out.push((l.pos.offset, l.pos.line, l.bytes.to_vec())))
            .unwrap();
        out
    }

    #[test]
    fn a_set_stop_flag_fails_the_next_read() {
        let stop = std::sync::atomic::AtomicBool::new(false);
        let mut r = StoppableReader::new(&b"one\ntwo\n"[..], &stop);
        let mut first = String::new();
        r.read_line(&mut first).unwrap();
        assert_eq!(first, "one\n");
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let e = r.read_line(&mut String::new()).unwrap_err();
        assert_eq!(e.to_string(), STOPPED);
    }

    #[test]
    fn offsets_and_crlf() {
        let v = lines(b"ab\r\ncd\nlast");
        assert_eq!(v, vec![(0, 1, b"ab".to_vec()), (4, 2, b"cd".to_vec()), (7, 3, b"last".to_vec())]);
        assert!(lines(b"").is_empty());
        assert_eq!(lines(b"\n\n").len(), 2);
    }

    #[test]
    fn long_line_is_bounded() {
        let mut input = vec![b'x'; MAX_LINE_BYTES + 10];
        input.extend_from_slice(b"\nok\n");
        let mut seen = vec![];
        LineReader::new(&input[..])
            .for_each(|l| seen.push((l.bytes.len(), l.too_long, l.full_len, l.pos.offset)))
            .unwrap();
        assert_eq!(seen[0], (MAX_LINE_BYTES, true, (MAX_LINE_BYTES + 10) as u64, 0));
        assert_eq!(seen[1], (2, false, 2, (MAX_LINE_BYTES + 11) as u64));
    }
}
