//! Attacker-controlled text made safe to show: log content, file names and
//! rule text reach terminals, tables and spreadsheets.
//!
//! Control characters (ESC sequences, C1 controls), bidi embeddings,
//! overrides and isolates (an address that displays as another one), zero
//! width characters, line and paragraph separators, the BOM and interlinear
//! annotations are shown as `\u{..}` escapes; newline, carriage return and
//! tab as `\n`, `\r`, `\t`. JSON output keeps the exact text instead.

/// Characters that reorder or hide text on screen.
pub fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{00ad}' | '\u{061c}' | '\u{180e}'
        | '\u{200b}'..='\u{200f}'
        | '\u{2028}'..='\u{202e}'
        | '\u{2060}'..='\u{2069}'
        | '\u{feff}'
        | '\u{fff9}'..='\u{fffb}')
}

fn escape(s: &str, keep_layout: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' | '\t' if keep_layout => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || is_invisible_format(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// One line of text, every hiding or control character escaped.
pub fn printable(s: &str) -> String {
    escape(s, false)
}

/// Multi-line text: newlines and tabs kept, everything else as [`printable`].
pub fn printable_block(s: &str) -> String {
    escape(s, true)
}

/// A path for one line of output (a newline in a file name cannot forge a
/// line; bytes that are not UTF-8 shown as `\xNN`).
pub fn printable_path(p: &std::path::Path) -> String {
    printable(&crate::text::path_text(p))
}

/// The text form of a path that the lake stores in `source_file`: the path
/// itself when it is UTF-8; otherwise each byte that is not part of valid
/// UTF-8 as `\xNN` (see [`path_from_text`]).
pub fn path_text(p: &std::path::Path) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let bytes = p.as_os_str().as_bytes();
        match std::str::from_utf8(bytes) {
            Ok(s) => s.to_string(),
            Err(_) => {
                let mut out = String::new();
                for chunk in bytes.utf8_chunks() {
                    out.push_str(chunk.valid());
                    for b in chunk.invalid() {
                        out.push_str(&format!("\\x{b:02x}"));
                    }
                }
                out
            }
        }
    }
    #[cfg(not(unix))]
    {
        p.to_string_lossy().into_owned()
    }
}

/// The path a `source_file` text names: the text itself when such a file
/// exists or it holds no `\xNN` escape, else the escapes turned back into
/// the bytes of a non-UTF-8 name.
pub fn path_from_text(s: &str) -> std::path::PathBuf {
    let literal = std::path::PathBuf::from(s);
    if !s.contains("\\x") || literal.exists() {
        return literal;
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStringExt;
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') {
                if let Some(v) = b.get(i + 2..i + 4).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
            out.push(b[i]);
            i += 1;
        }
        std::path::PathBuf::from(std::ffi::OsString::from_vec(out))
    }
    #[cfg(not(unix))]
    {
        literal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_are_escaped() {
        assert_eq!(printable("a\x1b[31m\u{202e}b\nc"), "a\\u{1b}[31m\\u{202e}b\\nc");
        assert_eq!(printable_block("a\nb\u{2066}"), "a\nb\\u{2066}");
        assert_eq!(printable("exämple"), "exämple");
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_names_round_trip() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let name = std::ffi::OsStr::from_bytes(b"mail\xff\xfe.log");
        let p = dir.path().join(name);
        std::fs::write(&p, b"x").unwrap();
        let text = path_text(&p);
        assert!(text.ends_with("mail\\xff\\xfe.log"), "{text}");
        assert_eq!(path_from_text(&text), p);
        let nl = std::path::Path::new("a\nb.log");
        assert_eq!(printable_path(nl), "a\\nb.log");
    }
}
