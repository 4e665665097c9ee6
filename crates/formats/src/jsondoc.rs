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
}

/// Whether one line is a whole JSON record by itself (brackets balanced,
/// starting at the first column).
fn whole_record(text: &str) -> bool {
    if !(text.starts_with('{') || text.starts_with('[')) {
        return false;
    }
    let mut probe = Assembler::default();
    probe.scan(text);
    probe.depth == 0 && !probe.in_str
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
        if self.start.is_some() && (self.json_lines || self.first_line_has_content) && whole_record(&text) {
            // The open record was cut short: reject it, start over here.
            let pos = self.start.take().unwrap_or_default();
            out.reject(&pos, self.lines, format!("{what}: JSON record cut short (the next line is a whole record)"), self.buf.as_bytes(), None);
            let json_lines = self.json_lines;
            *self = Assembler { json_lines, ..Assembler::default() };
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
            let json_lines = self.json_lines || self.lines == 1;
            *self = Assembler { json_lines, ..Assembler::default() };
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
        fn row(&mut self, _: mcpf_schema::Table, _: &Pos, _: &[crate::Val<'_>]) {}
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
