//! Assembling JSON records from lines: one document (pretty or compact), an
//! array, or JSON Lines. Shared by the formats whose records are JSON
//! documents rather than lines (provider exports, client configurations).

use crate::collect::LineOutcome;
use crate::{Emit, Line, Pos};

/// Largest JSON document assembled in memory; a larger one is rejected.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024 * 1024;

/// A complete record: its text, where it began, and how many lines it spans.
pub struct Document<'a> {
    pub text: &'a str,
    pub pos: Pos,
    pub lines: u64,
}

/// Collects lines until brackets balance (outside strings), bounded in size.
#[derive(Default)]
pub struct Assembler {
    buf: String,
    start: Option<Pos>,
    lines: u64,
    depth: i64,
    in_str: bool,
    esc: bool,
    overflow: bool,
}

impl Assembler {
    fn scan(&mut self, text: &str) {
        for c in text.chars() {
            if self.in_str {
                match (self.esc, c) {
                    (true, _) => self.esc = false,
                    (false, '\\') => self.esc = true,
                    (false, '"') => self.in_str = false,
                    _ => {}
                }
                continue;
            }
            match c {
                '"' => self.in_str = true,
                '{' | '[' => self.depth += 1,
                '}' | ']' => self.depth -= 1,
                _ => {}
            }
        }
    }

    /// Feed a line; calls `done` with each complete document. Blank lines
    /// between records are skipped, other text outside a record is rejected
    /// as `what` (e.g. "postmark"), and documents over the bound are rejected.
    pub fn line(&mut self, line: &Line<'_>, what: &str, out: &mut dyn Emit, done: &mut dyn FnMut(Document<'_>, &mut dyn Emit)) {
        let text = String::from_utf8_lossy(line.bytes);
        if self.start.is_none() {
            let t = text.trim();
            if t.is_empty() {
                return out.account(&line.pos, 1, LineOutcome::Skipped("blank line"));
            }
            if !t.starts_with('{') && !t.starts_with('[') {
                return out.reject(&line.pos, 1, format!("{what}: expected a JSON document, array or JSON Lines record here"), line.bytes, None);
            }
            self.start = Some(line.pos.clone());
        }
        self.lines += 1;
        if self.buf.len() + text.len() > MAX_DOCUMENT_BYTES {
            self.overflow = true;
        } else {
            self.buf.push_str(&text);
            self.buf.push('\n');
        }
        self.scan(&text);
        if self.depth <= 0 && !self.in_str {
            let pos = self.start.take().unwrap_or_default();
            if self.overflow {
                out.reject(&pos, self.lines, format!("{what}: JSON document larger than {MAX_DOCUMENT_BYTES} bytes"), self.buf.as_bytes(), None);
            } else {
                done(Document { text: &self.buf, pos, lines: self.lines }, out);
            }
            *self = Assembler::default();
        }
    }

    /// End of file: an unterminated document is rejected.
    pub fn finish(&mut self, what: &str, out: &mut dyn Emit) {
        if let Some(pos) = self.start.take() {
            out.reject(&pos, self.lines, format!("{what}: JSON document not terminated at end of file"), self.buf.as_bytes(), None);
            *self = Assembler::default();
        }
    }
}
