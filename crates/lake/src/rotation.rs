//! Rotated log sets: which files are one source, and in what order they
//! were written.
//!
//! `mail.log`, `mail.log.1`, `mail.log.2.gz` (logrotate's numbered scheme)
//! and `mail.log-20260301`, `mail.log-20260301.gz` (its `dateext` scheme)
//! are one source, `DIR/mail.log`, written oldest first: the highest number
//! first, then dates in ascending order, then the live file. A message whose
//! first lines are in one file and last lines in the next is only whole when
//! the files are read in that order with one correlation state.

use std::path::{Path, PathBuf};

/// Where a file sits in its rotated set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The set's key: folder and base name (`/var/log/mail.log`).
    pub group: String,
    /// Sort key within the set: older files sort first.
    pub age_rank: (u8, i64, String),
}

/// Strip compression and rotation suffixes: (base name, rank).
pub fn rotation_of(path: &Path) -> Rotation {
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut base = name.as_str();
    for ext in [".gz", ".zst", ".bz2", ".xz"] {
        if let Some(b) = base.strip_suffix(ext) {
            base = b;
            break;
        }
    }
    // Numbered: NAME.N (N = 1, 2, ...): higher is older.
    if let Some((stem, n)) = base.rsplit_once('.') {
        if !stem.is_empty() && !n.is_empty() && n.len() <= 4 && n.bytes().all(|b| b.is_ascii_digit()) {
            let n: i64 = n.parse().unwrap_or(0);
            return Rotation { group: group_key(&dir, stem), age_rank: (0, -n, String::new()) };
        }
    }
    // Dated: NAME-YYYYMMDD[HH] or NAME-YYYY-MM-DD: earlier is older.
    if let Some((stem, date)) = base.rsplit_once('-').filter(|(s, _)| !s.is_empty()) {
        let digits: String = date.chars().filter(|c| *c != '-').collect();
        if (8..=10).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && date.starts_with(['1', '2']) {
            return Rotation { group: group_key(&dir, stem), age_rank: (1, digits.parse().unwrap_or(0), String::new()) };
        }
    }
    Rotation { group: group_key(&dir, base), age_rank: (2, 0, name.clone()) }
}

fn group_key(dir: &Path, base: &str) -> String {
    mcpf_formats::text::path_text(&dir.join(base))
}

/// Order files so each rotated set is read oldest first, sets in the order
/// their first file appears. Files of no set keep their order.
pub fn oldest_first(paths: Vec<PathBuf>) -> Vec<PathBuf> {
    by_rotation(paths, |p| p.as_path())
}

/// [`oldest_first`] for ingest inputs (inputs that cannot be read keep
/// their place in their set).
pub fn oldest_first_inputs(inputs: Vec<crate::Input>) -> Vec<crate::Input> {
    by_rotation(inputs, |i| i.path.as_path())
}

fn by_rotation<T>(items: Vec<T>, path: impl Fn(&T) -> &Path) -> Vec<T> {
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut groups: Vec<Vec<(Rotation, T)>> = Vec::new();
    for item in items {
        let r = rotation_of(path(&item));
        let g = *index.entry(r.group.clone()).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push((r, item));
    }
    let mut out = Vec::new();
    for mut files in groups {
        files.sort_by(|a, b| a.0.age_rank.cmp(&b.0.age_rank));
        out.extend(files.into_iter().map(|(_, p)| p));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logrotate_sets_are_read_oldest_first() {
        let names = ["d/mail.log", "d/mail.log.1", "d/mail.log.10.gz", "d/mail.log.2.gz", "d/other.log", "e/mail.log"];
        let got = oldest_first(names.iter().map(PathBuf::from).collect());
        let got: Vec<String> = got.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(got, ["d/mail.log.10.gz", "d/mail.log.2.gz", "d/mail.log.1", "d/mail.log", "d/other.log", "e/mail.log"]);
        let dated = ["x/maillog", "x/maillog-20260302.gz", "x/maillog-20260301"];
        let got = oldest_first(dated.iter().map(PathBuf::from).collect());
        let got: Vec<String> = got.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(got, ["x/maillog-20260301", "x/maillog-20260302.gz", "x/maillog"]);
        assert_eq!(rotation_of(Path::new("a/mail.log.1")).group, rotation_of(Path::new("a/mail.log")).group);
        assert_ne!(rotation_of(Path::new("a/mail.log")).group, rotation_of(Path::new("b/mail.log")).group);
        // Not rotation suffixes: a version number, a host name with a dash.
        assert_ne!(rotation_of(Path::new("a/mcp-server-postmark.log")).group, rotation_of(Path::new("a/mcp.log")).group);
    }
}
