//! Allowlists and approved lists: plain text files that rules read as tables.
//!
//! Analysts keep these in version control next to their rules, so the format
//! is the simplest one that diffs well: one entry per line, `#` starts a
//! comment, blank lines are ignored. `lists/recipient_allowlist.txt` becomes
//! the table `list_recipient_allowlist` with columns `value` (trimmed, lower
//! case: addresses, domains and package names compare case-insensitively),
//! `raw` (as written), `source_file` and `source_line` (so a finding that an
//! entry suppressed or allowed can be traced to the line that did it).
//!
//! A list a rule declares but nobody supplied is registered empty, so every
//! rule always runs; each rule's description says what an empty list means.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

/// Longest list file read (entries are short; a huge file is a mistake).
pub const MAX_LIST_BYTES: u64 = 64 * 1024 * 1024;

/// One entry of a list, with where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    pub value: String,
    pub raw: String,
    pub source_file: String,
    pub source_line: i64,
}

/// Named lists (name -> entries).
#[derive(Debug, Clone, Default)]
pub struct Lists {
    pub lists: BTreeMap<String, Vec<ListEntry>>,
}

/// List names become SQL table names, so they are kept to `[a-z0-9_]`.
pub fn valid_list_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The Arrow schema of every `list_NAME` table.
pub fn list_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("value", DataType::Utf8, false),
        Field::new("raw", DataType::Utf8, false),
        Field::new("source_file", DataType::Utf8, false),
        Field::new("source_line", DataType::Int64, false),
    ]))
}

/// One line of a list file → its entry text, or None for comments and blanks.
fn entry_text(line: &str) -> Option<&str> {
    let t = line.split('#').next().unwrap_or("").trim();
    (!t.is_empty()).then_some(t)
}

impl Lists {
    /// Every `*.txt` / `*.list` file of `dir` (one level, sorted).
    pub fn load_dir(dir: &Path) -> Result<Lists, String> {
        let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: cannot read the lists directory: {e}", dir.display()))?;
        let mut files: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "txt" || x == "list"))
            .collect();
        files.sort();
        let mut lists = Lists::default();
        for f in files {
            let name = f.file_stem().and_then(|s| s.to_str()).unwrap_or("").to_string();
            if !valid_list_name(&name) {
                return Err(format!("{}: list file names must use only lower-case letters, digits and '_' (the name becomes table list_NAME)", f.display()));
            }
            let len = std::fs::metadata(&f).map_err(|e| format!("{}: cannot read: {e}", f.display()))?.len();
            if len > MAX_LIST_BYTES {
                return Err(format!("{}: {len} bytes is larger than a list may be ({MAX_LIST_BYTES})", f.display()));
            }
            let bytes = std::fs::read(&f).map_err(|e| format!("{}: cannot read: {e}", f.display()))?;
            let text = String::from_utf8_lossy(&bytes);
            let file = f.display().to_string();
            lists.add(&name, &file, text.lines());
        }
        Ok(lists)
    }

    /// Add entries (one per item, comments and blanks dropped) to a list.
    pub fn add<'a>(&mut self, name: &str, source_file: &str, lines: impl IntoIterator<Item = &'a str>) {
        let list = self.lists.entry(name.to_string()).or_default();
        for (i, line) in lines.into_iter().enumerate() {
            if let Some(t) = entry_text(line) {
                list.push(ListEntry { value: t.to_lowercase(), raw: t.to_string(), source_file: source_file.to_string(), source_line: i as i64 + 1 });
            }
        }
    }

    /// The table of a list (empty when the list is absent).
    pub fn batch(&self, name: &str) -> RecordBatch {
        let empty = Vec::new();
        let entries = self.lists.get(name).unwrap_or(&empty);
        RecordBatch::try_new(
            list_schema(),
            vec![
                Arc::new(StringArray::from_iter_values(entries.iter().map(|e| e.value.as_str()))),
                Arc::new(StringArray::from_iter_values(entries.iter().map(|e| e.raw.as_str()))),
                Arc::new(StringArray::from_iter_values(entries.iter().map(|e| e.source_file.as_str()))),
                Arc::new(Int64Array::from_iter_values(entries.iter().map(|e| e.source_line))),
            ],
        )
        .expect("list schema")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_blanks_and_case() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("recipient_allowlist.txt"), "# partners\nCorp.Example\n\n  ops@Vendor.example  # on-call\n").unwrap();
        std::fs::write(dir.path().join("notes.md"), "ignored").unwrap();
        let l = Lists::load_dir(dir.path()).unwrap();
        let e = &l.lists["recipient_allowlist"];
        assert_eq!(e.iter().map(|x| x.value.as_str()).collect::<Vec<_>>(), ["corp.example", "ops@vendor.example"]);
        assert_eq!(e[1].source_line, 4);
        assert_eq!(e[1].raw, "ops@Vendor.example");
        assert_eq!(l.batch("recipient_allowlist").num_rows(), 2);
        assert_eq!(l.batch("absent").num_rows(), 0);
        std::fs::write(dir.path().join("Bad-Name.txt"), "x").unwrap();
        assert!(Lists::load_dir(dir.path()).unwrap_err().contains("Bad-Name.txt"));
    }
}
