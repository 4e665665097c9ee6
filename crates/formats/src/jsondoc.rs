//! Assembling JSON records from lines: one document (pretty or compact), an
//! array, or JSON Lines. Shared by the formats whose records are JSON
//! documents rather than lines (provider exports, client configurations).

use crate::collect::LineOutcome;
use crate::{Emit, Line, Pos};

/// Largest JSON document (or, streamed, largest element) assembled in
/// memory; a larger one is rejected.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024 * 1024;
/// A streaming assembler hands out the elements of a document's main array
/// once this much is buffered, so memory stays bounded whatever the size of
/// the document (an export of months of messages is one JSON document).
pub const STREAM_AFTER_BYTES: usize = 8 * 1024 * 1024;

/// A complete record: its text, where it began, and how many lines it spans.
pub struct Document<'a> {
    pub text: &'a str,
    pub pos: Pos,
    pub lines: u64,
    /// For an element handed out on its own: its JSON pointer in the
    /// document (`/Messages/41`); its lines are accounted by the rest of the
    /// document, which comes last with the element replaced by `null`.
    pub pointer: Option<String>,
    /// Elements of this document were handed out on their own before it.
    pub streamed: bool,
}

/// The main array of a document being streamed: `[...]` at the top, or the
/// first array member of the top-level object (`"Messages": [...]`).
#[derive(Default, Debug)]
struct Stream {
    /// Depth inside the array (elements start at this depth).
    depth: i64,
    /// JSON pointer of the array (`""` or `/Messages`).
    pointer: String,
    /// Index of the next element.
    next: usize,
    /// Byte offset in the buffer where the current element starts.
    elem_start: Option<usize>,
    /// Complete elements not handed out yet: (start, end, index).
    ready: Vec<(usize, usize, usize)>,
    done: bool,
}

/// Collects lines until brackets balance (outside strings), bounded in size.
///
/// JSON Lines re-synchronise: once a record was complete on one line the
/// file is read as JSON Lines, and a record cut short (a writer killed
/// mid-line, a truncated copy) is rejected alone, at the next line that is a
/// record by itself, instead of swallowing every later record.
#[derive(Default)]
pub struct Assembler {
    buf: String,
    start: Option<Pos>,
    lines: u64,
    depth: i64,
    in_str: bool,
    esc: bool,
    overflow: bool,
    /// A record was complete on one line: the file is JSON Lines.
    json_lines: bool,
    /// The open record's first line held more than a lone bracket (a
    /// pretty-printed document starts with `{` or `[` alone).
    first_line_has_content: bool,
    /// Hand out the elements of large documents (see [`STREAM_AFTER_BYTES`]).
    streaming: bool,
    stream: Option<Stream>,
    /// Start and end of the last string at depth 1 (the key of an array member).
    last_key: (usize, usize),
    str_start: usize,
    scanned: usize,
    streamed: bool,
}

/// Whether one line is a whole JSON record by itself (brackets balanced,
/// starting at the first column).
fn whole_record(text: &str) -> bool {
    if !(text.starts_with('{') || text.starts_with('[')) {
        return false;
    }
    let mut probe = Assembler::default();
    probe.buf.push_str(text);
    probe.scan_new();
    probe.depth == 0 && !probe.in_str
}

impl Assembler {
    /// An assembler that streams the main array of large documents.
    pub fn streaming() -> Assembler {
        Assembler { streaming: true, ..Assembler::default() }
    }

    fn reset(&mut self) {
        let (json_lines, streaming) = (self.json_lines, self.streaming);
        *self = Assembler { json_lines, streaming, ..Assembler::default() };
    }

    /// Scan the bytes appended to the buffer since the last call: bracket
    /// depth outside strings and, when streaming, the main array's elements.
    /// Structural characters are ASCII, so bytes are enough.
    fn scan_new(&mut self) {
        let b = self.buf.as_bytes();
        let mut i = self.scanned;
        while i < b.len() {
            let c = b[i];
            if self.in_str {
                match (self.esc, c) {
                    (true, _) => self.esc = false,
                    (false, b'\\') => self.esc = true,
                    (false, b'"') => {
                        self.in_str = false;
                        if self.depth == 1 {
                            self.last_key = (self.str_start, i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
                continue;
            }
            // An element of the streamed array starts at its first byte.
            if let Some(st) = self.stream.as_mut() {
                if !st.done && self.depth == st.depth && st.elem_start.is_none() && !c.is_ascii_whitespace() && c != b',' && c != b']' {
                    st.elem_start = Some(i);
                }
            }
            match c {
                b'"' => {
                    self.in_str = true;
                    self.str_start = i;
                }
                b'{' | b'[' => {
                    self.depth += 1;
                    if c == b'[' && self.streaming && self.stream.is_none() && (self.depth == 1 || self.depth == 2) {
                        let pointer = if self.depth == 1 {
                            String::new()
                        } else {
                            let key: String = serde_json::from_str(&self.buf[self.last_key.0..self.last_key.1]).unwrap_or_default();
                            format!("/{}", key.replace('~', "~0").replace('/', "~1"))
                        };
                        // Only an array that is the top level, or a member of a top-level object.
                        if self.depth == 1 || b.get(self.start_byte()).is_some_and(|x| *x == b'{') {
                            self.stream = Some(Stream { depth: self.depth, pointer, ..Stream::default() });
                        }
                    }
                }
                b'}' | b']' => self.depth -= 1,
                _ => {}
            }
            if let Some(st) = self.stream.as_mut() {
                if !st.done && self.depth == st.depth && c == b',' {
                    if let Some(s0) = st.elem_start.take() {
                        st.ready.push((s0, i, st.next));
                        st.next += 1;
                    }
                } else if !st.done && self.depth == st.depth - 1 && c == b']' {
                    if let Some(s0) = st.elem_start.take() {
                        st.ready.push((s0, i, st.next));
                        st.next += 1;
                    }
                    st.done = true;
                }
            }
            i += 1;
        }
        self.scanned = b.len();
    }

    /// Offset in the buffer of the document's first non-blank byte.
    fn start_byte(&self) -> usize {
        self.buf.len() - self.buf.trim_start().len()
    }

    /// Hand out the complete elements of the streamed array and put `null`
    /// in their place, so the buffer keeps only the document's skeleton.
    fn hand_out(&mut self, what: &str, out: &mut dyn Emit, done: &mut dyn FnMut(Document<'_>, &mut dyn Emit)) {
        let Some(st) = self.stream.as_mut() else { return };
        if st.ready.is_empty() {
            return;
        }
        let ready = std::mem::take(&mut st.ready);
        let pointer = st.pointer.clone();
        let pos = self.start.clone().unwrap_or_default();
        for (a, z, idx) in &ready {
            let text = self.buf[*a..*z].trim_end();
            if text.len() > MAX_DOCUMENT_BYTES {
                out.reject(&pos, 0, format!("{what}: JSON element {pointer}/{idx} larger than {MAX_DOCUMENT_BYTES} bytes"), text.as_bytes(), None);
                continue;
            }
            done(Document { text, pos: pos.clone(), lines: 0, pointer: Some(format!("{pointer}/{idx}")), streamed: false }, out);
        }
        let mut rebuilt = String::with_capacity(self.buf.len() / 4 + 64);
        let mut at = 0;
        for (a, z, _) in &ready {
            rebuilt.push_str(&self.buf[at..*a]);
            rebuilt.push_str("null");
            at = *z;
        }
        rebuilt.push_str(&self.buf[at..]);
        let removed = self.buf.len() - rebuilt.len();
        if let Some(st) = self.stream.as_mut() {
            if let Some(s0) = st.elem_start.as_mut() {
                *s0 -= removed;
            }
        }
        self.last_key = (0, 0);
        self.buf = rebuilt;
        self.scanned = self.buf.len();
        self.streamed = true;
    }

    /// Feed a line; calls `done` with each complete document. Blank lines
    /// between records are skipped, other text outside a record is rejected
    /// as `what` (e.g. "postmark"), and documents over the bound are rejected.
    pub fn line(&mut self, line: &Line<'_>, what: &str, out: &mut dyn Emit, done: &mut dyn FnMut(Document<'_>, &mut dyn Emit)) {
        let text = String::from_utf8_lossy(line.bytes);
        if self.start.is_some() && (self.json_lines || self.first_line_has_content) && whole_record(&text) {
            // The open record was cut short: reject it, start over here.
            let pos = self.start.take().unwrap_or_default();
            out.reject(&pos, self.lines, format!("{what}: JSON record cut short (the next line is a whole record)"), self.buf.as_bytes(), None);
            self.reset();
        }
        if self.start.is_none() {
            let t = text.trim();
            if t.is_empty() {
                return out.account(&line.pos, 1, LineOutcome::Skipped("blank line"));
            }
            if !t.starts_with('{') && !t.starts_with('[') {
                return out.reject(&line.pos, 1, format!("{what}: expected a JSON document, array or JSON Lines record here"), line.bytes, None);
            }
            if self.json_lines && !whole_record(&text) {
                return out.reject(&line.pos, 1, format!("{what}: JSON Lines record cut short or malformed"), line.bytes, None);
            }
            self.first_line_has_content = t.len() > 1;
            self.start = Some(line.pos.clone());
        }
        self.lines += 1;
        if self.overflow {
            // Past the bound: only the brackets are followed, to find the end.
            let mut probe = Assembler { depth: self.depth, in_str: self.in_str, esc: self.esc, ..Assembler::default() };
            probe.buf.push_str(&text);
            probe.scan_new();
            (self.depth, self.in_str, self.esc) = (probe.depth, probe.in_str, probe.esc);
        } else if self.buf.len() + text.len() > MAX_DOCUMENT_BYTES {
            self.overflow = true;
            self.stream = None;
        } else {
            self.buf.push_str(&text);
            self.buf.push('\n');
            self.scan_new();
            if self.streaming && self.buf.len() > STREAM_AFTER_BYTES {
                self.hand_out(what, out, done);
            }
        }
        if self.depth <= 0 && !self.in_str {
            let pos = self.start.take().unwrap_or_default();
            if self.overflow {
                let head = &self.buf.as_bytes()[..self.buf.len().min(64 * 1024)];
                out.reject(&pos, self.lines, format!("{what}: JSON document larger than {MAX_DOCUMENT_BYTES} bytes"), head, None);
            } else {
                if self.streamed {
                    self.hand_out(what, out, done);
                }
                done(Document { text: &self.buf, pos, lines: self.lines, pointer: None, streamed: self.streamed }, out);
            }
            let json_lines = self.json_lines || self.lines == 1;
            self.reset();
            self.json_lines = json_lines;
        }
    }

    /// No record is open: the next line starts a new one (or is outside any).
    pub fn is_idle(&self) -> bool {
        self.start.is_none()
    }

    /// End of file: an unterminated document is rejected.
    pub fn finish(&mut self, what: &str, out: &mut dyn Emit) {
        if let Some(pos) = self.start.take() {
            out.reject(&pos, self.lines, format!("{what}: JSON document not terminated at end of file"), self.buf.as_bytes(), None);
            self.reset();
        }
    }
}

/// The JSON object on one JSON Lines line, or None when the line is
/// accounted for here: skipped when blank, rejected (with `format`'s name and
/// what it expected) when it is not JSON or not an object.
pub fn object_line(line: &Line<'_>, format: &str, expected: &str, out: &mut dyn Emit) -> Option<serde_json::Value> {
    if line.bytes.iter().all(u8::is_ascii_whitespace) {
        out.account(&line.pos, 1, LineOutcome::Skipped("blank line"));
        return None;
    }
    match serde_json::from_slice(line.bytes) {
        Ok(v @ serde_json::Value::Object(_)) => Some(v),
        Ok(_) => {
            out.reject(&line.pos, 1, format!("{format}: line is JSON but not an object; expected {expected}"), line.bytes, None);
            None
        }
        Err(e) => {
            out.reject(&line.pos, 1, format!("{format}: invalid JSON ({e})"), line.bytes, None);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::LineOutcome;

    #[derive(Default)]
    struct Out {
        docs: Vec<(u64, String)>,
        rejects: Vec<(u64, u64)>,
    }
    impl Emit for Out {
        fn mcp(&mut self, _: crate::mcp::McpEvent) {}
        fn delivery(&mut self, _: crate::postfix::MailDelivery) {}
        fn account(&mut self, _: &Pos, _: u64, _: LineOutcome) {}
        fn named(&mut self, _: &Pos, _: crate::NamedRow<'_>) {}
        fn named_elsewhere(&mut self, _: &str, _: &Pos, _: crate::NamedRow<'_>) {}
        fn reject(&mut self, pos: &Pos, lines: u64, _: String, _: &[u8], _: Option<i64>) {
            self.rejects.push((pos.line, lines));
        }
    }

    fn feed(text: &str) -> Out {
        let mut a = Assembler::default();
        let mut out = Out::default();
        let mut offset = 0;
        for (i, l) in text.lines().enumerate() {
            let line = Line { bytes: l.as_bytes(), pos: Pos { offset, line: i as u64 + 1, pointer: None }, too_long: false, full_len: l.len() as u64 };
            let mut docs = Vec::new();
            a.line(&line, "t", &mut out, &mut |d, _| docs.push((d.pos.line, d.text.trim().to_string())));
            out.docs.extend(docs);
            offset += l.len() as u64 + 1;
        }
        a.finish("t", &mut out);
        out
    }

    #[test]
    fn a_cut_json_lines_record_is_rejected_alone() {
        let out = feed("{\"a\":1}\n{\"b\":[1,2\n{\"c\":3}\n{\"d\":4}\n");
        assert_eq!(out.docs.iter().map(|d| d.0).collect::<Vec<_>>(), vec![1, 3, 4]);
        assert_eq!(out.rejects, vec![(2, 1)]);
        // The first record cut: its content on the first line says JSON Lines too.
        let out = feed("{\"a\":[1\n{\"b\":2}\n{\"c\":3}\n");
        assert_eq!(out.docs.iter().map(|d| d.0).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(out.rejects, vec![(1, 1)]);
    }

    #[test]
    fn pretty_documents_still_span_lines() {
        let out = feed("{\n  \"Messages\": [\n{\"x\": 1},\n{\"y\": 2}\n  ]\n}\n");
        assert_eq!(out.docs.len(), 1, "{:?}", out.docs);
        assert!(out.rejects.is_empty());
    }
}
