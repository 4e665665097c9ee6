//! The hash chain of a trace `mcp-forensics record` wrote.
//!
//! Every record (one JSON line) ends with
//! `"chain":{"id":"<recorder run>","seq":N,"prev":"<sha256 hex>"}`: `seq`
//! counts the run's records from 0 across all its files, and `prev` is the
//! SHA-256 of the previous record's line exactly as written (without its
//! newline; [`GENESIS`] for record 0). A file that rotates ends with a
//! `rotate` record naming the next file, whose first record links to it; a
//! run that ends cleanly writes a `close` record last. So an edited byte
//! breaks the next record's link, a removed record leaves a gap in `seq` and
//! a broken link, reordered records break both, a cut line does not parse,
//! and records cut off at the end leave the chain without its `close`.
//!
//! [`ChainChecker`] follows one file (or a run's files in order) line by line
//! in bounded memory; ingest records its [`ChainState`] per source and
//! `verify` reports its problems with their positions.

use serde_json::Value;

/// `prev` of a run's first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The SHA-256 of a record line (without its newline), as lowercase hex.
pub fn record_hash(line: &[u8]) -> String {
    crate::digest::sha256_hex(line)
}

/// The `chain` member of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub id: String,
    pub seq: u64,
    pub prev: String,
}

impl Link {
    /// The `chain` member of a parsed record, if it has a well-formed one.
    pub fn of(record: &Value) -> Option<Link> {
        let c = record.get("chain")?;
        let id = c.get("id")?.as_str()?;
        let prev = c.get("prev")?.as_str()?;
        let well_formed = !id.is_empty() && id.len() <= 64 && prev.len() == 64 && prev.bytes().all(|b| b.is_ascii_hexdigit());
        well_formed.then(|| Link { id: id.to_string(), seq: c.get("seq").and_then(Value::as_u64).unwrap_or(u64::MAX), prev: prev.to_string() })
            .filter(|l| l.seq != u64::MAX)
    }
}

/// One thing wrong with a chain, at a line of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line of the file the problem was found at.
    pub line: u64,
    /// The record's `seq` where it has one.
    pub seq: Option<u64>,
    /// `edited`, `missing`, `reordered`, `truncated`, `unchained`, `open_end`,
    /// `start_missing`, `other_chain`.
    pub kind: &'static str,
    pub detail: String,
}

/// What a checker saw, for `_ingest_log.chain_json`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChainState {
    pub id: Option<String>,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// Hash of the last record read: what a checkpoint of this point anchors.
    pub head: Option<String>,
    pub records: u64,
    /// The last record was a `close` (the run ended cleanly) or `rotate` (its next file follows).
    pub ended: Option<String>,
    pub problems: u64,
    pub first_problem: Option<String>,
}

impl ChainState {
    /// `intact`, `broken` or `open` (no problem, but no closing record yet).
    pub fn verdict(&self) -> &'static str {
        if self.problems > 0 {
            "broken"
        } else if self.ended.is_some() {
            "intact"
        } else {
            "open"
        }
    }

    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "state": self.verdict(), "chain": self.id, "first_seq": self.first_seq, "last_seq": self.last_seq,
            "head": self.head, "records": self.records, "ended_with": self.ended,
            "problems": self.problems, "first_problem": self.first_problem,
        })
    }
}

/// Follows records in order and reports every break of the chain.
#[derive(Debug, Default)]
pub struct ChainChecker {
    state: ChainState,
    /// Hash, seq and line of the last chained record, for the next link
    /// (cleared after a damaged line: that is reported once).
    last: Option<(String, u64, u64)>,
    /// Hash and seq of the last whole record read (the head).
    good: Option<(String, u64)>,
    /// The record with the highest seq so far: (hash, seq, line).
    max: Option<(String, u64, u64)>,
    /// Records `.1..2` absent before line `.0`, not yet reported: the next
    /// record says whether they were removed or moved.
    gap: Option<(u64, u64, u64)>,
    /// A line that was not a record, judged once it is known whether it was
    /// the last one (a cut tail) or not (damage inside the file).
    unparsed: Option<u64>,
    /// The line of a record already reported as edited (its hash will not
    /// match the next link either: one edit, one report).
    flagged: Option<u64>,
    /// The previous record was a `close` (nothing may follow in the run).
    closed_at: Option<u64>,
    problems: Vec<Problem>,
    /// Problems kept for the report (all are counted).
    keep: usize,
}

/// At most this many problems are kept per checker (all are counted).
const KEPT_PROBLEMS: usize = 1000;

impl ChainChecker {
    pub fn new() -> Self {
        ChainChecker { keep: KEPT_PROBLEMS, ..Default::default() }
    }

    /// Continue from where a previous file of the same run ended: its last
    /// record's hash and seq.
    pub fn continue_from(&mut self, id: &str, head: &str, seq: u64) {
        self.state.id = Some(id.to_string());
        self.last = Some((head.to_string(), seq, 0));
        self.good = Some((head.to_string(), seq));
    }

    fn problem(&mut self, line: u64, seq: Option<u64>, kind: &'static str, detail: String) {
        self.state.problems += 1;
        if self.state.first_problem.is_none() {
            self.state.first_problem = Some(format!("line {line}: {kind}: {detail}"));
        }
        if self.problems.len() < self.keep {
            self.problems.push(Problem { line, seq, kind, detail });
        }
    }

    /// A problem found outside the chain itself (a checkpoint that does not
    /// match a record).
    pub fn report(&mut self, line: u64, seq: Option<u64>, kind: &'static str, detail: String) {
        self.problem(line, seq, kind, detail);
    }

    /// A line that does not parse as a record, where the reader cannot tell
    /// whether more follow: `edited` if a line follows, `truncated` if the
    /// input ends with it (see [`ChainChecker::finish`]).
    pub fn not_a_record(&mut self, line: u64) {
        self.settle_unparsed();
        self.unparsed = Some(line);
    }

    fn settle_unparsed(&mut self) {
        if let Some(at) = self.unparsed.take() {
            self.damaged(at, "edited", "a line that is not a record (inserted, or a record corrupted)");
        }
    }

    /// A line that is not a whole record: `kind` is `truncated` (a cut last
    /// line) or `edited` (damage inside the file).
    pub fn damaged(&mut self, line: u64, kind: &'static str, why: &str) {
        self.problem(line, None, kind, why.to_string());
        // The next record's link is judged against the last good record:
        // a damaged line is reported once, not again as a broken link.
        self.last = None;
    }

    /// One record line (`bytes` without its newline) and its parsed value.
    pub fn record(&mut self, line: u64, bytes: &[u8], record: &Value) {
        self.settle_unparsed();
        let hash = record_hash(bytes);
        let Some(link) = Link::of(record) else {
            self.problem(line, None, "unchained", "a record without a well-formed chain member".into());
            self.last = None;
            return;
        };
        match &self.state.id {
            None => self.state.id = Some(link.id.clone()),
            Some(id) if *id != link.id => {
                self.problem(line, Some(link.seq), "other_chain", format!("record of recorder run {} inside run {id}'s file", link.id));
                return;
            }
            _ => {}
        }
        let after_close = self.closed_at.take();
        if let Some(at) = after_close {
            self.problem(line, Some(link.seq), "reordered", format!("record {} comes after the run's close record (record {at})", link.seq));
        }
        // A record whose number was edited counts as the one it stands for.
        let mut renumbered = None;
        if let Some(gap) = self.gap.take() {
            self.settle_gap(gap, line, &link);
        } else {
            match self.last.take() {
                None if self.state.records == 0 && self.state.first_seq.is_none() => {
                    if link.seq == 0 && link.prev != GENESIS {
                        self.problem(line, Some(0), "edited", "record 0 does not start from the genesis hash".into());
                    } else if link.seq != 0 {
                        // A later file of a run: its link is checked against the
                        // previous file by `verify`, which reads them in order.
                        self.state.first_seq = Some(link.seq);
                    }
                }
                None => {}
                // After records moved back into place, the chain goes on from the highest.
                Some(prev) => {
                    let reference = match &self.max {
                        Some(m) if link.seq == m.1.saturating_add(1) && m.1 > prev.1 => m.clone(),
                        _ => prev,
                    };
                    if after_close.is_none() {
                        renumbered = self.check_link(line, &link, reference);
                    }
                }
            }
        }
        self.state.first_seq.get_or_insert(link.seq);
        self.state.last_seq = Some(link.seq);
        self.state.records += 1;
        self.state.ended = match record.get("event").and_then(Value::as_str) {
            Some(e @ ("close" | "rotate")) => Some(e.to_string()),
            _ => None,
        };
        if self.state.ended.as_deref() == Some("close") {
            self.closed_at = Some(link.seq);
            if record.get("records").and_then(Value::as_u64).is_some_and(|n| n != link.seq + 1) {
                self.problem(line, Some(link.seq), "edited", format!("the close record counts {} records, but it is record {} of the run", record["records"], link.seq));
            }
        }
        let seq = renumbered.unwrap_or(link.seq);
        self.state.head = Some(hash.clone());
        self.good = Some((hash.clone(), seq));
        if self.max.as_ref().is_none_or(|m| seq > m.1) {
            self.max = Some((hash.clone(), seq, line));
        }
        self.last = Some((hash, seq, line));
    }

    /// `prev` is (hash, seq, line) of the record this one should follow; its
    /// line is 0 when it is in the previous file.
    /// Returns the seq the record stands for when its own was edited.
    fn check_link(&mut self, line: u64, link: &Link, prev: (String, u64, u64)) -> Option<u64> {
        let (prev_hash, prev_seq, prev_line) = prev;
        let expected = prev_seq.saturating_add(1);
        if link.seq == expected {
            if link.prev != prev_hash && (prev_line == 0 || self.flagged != Some(prev_line)) {
                let (at, where_) = if prev_line > 0 { (prev_line, String::new()) } else { (line, " (the previous file's last record)".to_string()) };
                self.problem(at, Some(prev_seq), "edited", format!("record {prev_seq}{where_} was changed after it was written: record {} (line {line}) links to a different hash", link.seq));
            }
        } else if link.seq > expected && link.prev == prev_hash {
            // It links to the record before it: nothing is missing, its
            // own number was changed.
            self.problem(line, Some(link.seq), "edited", format!("this record says it is record {}, but it links to record {prev_seq} (line {prev_line}): its number was changed", link.seq));
            self.flagged = Some(line);
            return Some(expected);
        } else if link.seq > expected {
            // Missing, or moved further down: the next record tells.
            self.gap = Some((line, expected, link.seq));
        } else {
            self.problem(line, Some(link.seq), "reordered", format!("record {} follows record {prev_seq}: records were reordered or repeated", link.seq));
        }
        None
    }

    /// A gap seen at `line` (records `from..to` absent) and the record
    /// after it: one that falls in the gap was moved, not removed.
    fn settle_gap(&mut self, (gap_line, from, to): (u64, u64, u64), line: u64, link: &Link) {
        if (from..to).contains(&link.seq) {
            self.problem(line, Some(link.seq), "reordered", format!("record {} comes after record {to} (line {gap_line}): records were moved", link.seq));
            if to - from > 1 {
                self.problem(gap_line, Some(to), "missing", format!("records {from}..{} other than {} are missing before this line", to - 1, link.seq));
            }
        } else {
            self.report_gap(gap_line, from, to);
        }
    }

    fn report_gap(&mut self, line: u64, from: u64, to: u64) {
        let n = to - from;
        let range = if n == 1 { format!("record {from} is") } else { format!("records {from}..{} are", to - 1) };
        self.problem(line, Some(to), "missing", format!("{range} missing before this line ({n} removed)"));
    }

    /// The input ended: a gap seen at the last record is reported, and a
    /// last line that was not a record is a cut tail.
    pub fn finish(&mut self) {
        if let Some(at) = self.unparsed.take() {
            self.damaged(at, "truncated", "the last line is not a whole record: the file was cut");
        }
        if let Some((line, from, to)) = self.gap.take() {
            self.report_gap(line, from, to);
        }
    }

    /// The end of the input: a chain without `close` or `rotate` last is
    /// open (the recorder is still running, was killed, or the tail was cut).
    pub fn state(&self) -> &ChainState {
        &self.state
    }

    /// Hash and seq of the last whole record (to continue into the next file).
    pub fn head(&self) -> Option<(&str, u64)> {
        self.good.as_ref().map(|(h, s)| (h.as_str(), *s))
    }

    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: u64) -> Vec<String> {
        let mut prev = GENESIS.to_string();
        let mut out = Vec::new();
        for seq in 0..n {
            let event = if seq + 1 == n { r#","event":"close""# } else { "" };
            let line = format!(r#"{{"ts":"2026-12-01T00:00:0{seq}Z"{event},"chain":{{"id":"run1","seq":{seq},"prev":"{prev}"}}}}"#);
            prev = record_hash(line.as_bytes());
            out.push(line);
        }
        out
    }

    fn check(lines: &[String]) -> ChainChecker {
        let mut c = ChainChecker::new();
        for (i, l) in lines.iter().enumerate() {
            match serde_json::from_str::<Value>(l) {
                Ok(v) => c.record(i as u64 + 1, l.as_bytes(), &v),
                Err(e) => c.damaged(i as u64 + 1, if i + 1 == lines.len() { "truncated" } else { "edited" }, &e.to_string()),
            }
        }
        c.finish();
        c
    }

    #[test]
    fn an_untouched_chain_is_intact() {
        let c = check(&chain(5));
        assert_eq!(c.state().verdict(), "intact");
        assert_eq!(c.state().records, 5);
        assert_eq!(c.state().last_seq, Some(4));
    }

    #[test]
    fn an_edited_byte_is_reported_at_the_next_record() {
        let mut l = chain(5);
        l[2] = l[2].replace("00:00:02", "00:00:09");
        let c = check(&l);
        assert_eq!(c.problems().len(), 1);
        assert_eq!((c.problems()[0].kind, c.problems()[0].line, c.problems()[0].seq), ("edited", 3, Some(2)));
        assert!(c.problems()[0].detail.contains("record 3 (line 4)"), "{:?}", c.problems());
    }

    #[test]
    fn a_removed_record_is_a_gap() {
        let mut l = chain(5);
        l.remove(1);
        let c = check(&l);
        assert_eq!(c.problems()[0].kind, "missing");
        assert!(c.problems()[0].detail.contains("record 1 is missing"), "{:?}", c.problems());
    }

    #[test]
    fn two_swapped_records_are_one_reorder_not_removals() {
        let mut l = chain(6);
        l.swap(2, 3);
        let c = check(&l);
        let kinds: Vec<_> = c.problems().iter().map(|p| (p.kind, p.line)).collect();
        assert_eq!(kinds, vec![("reordered", 4)], "{:?}", c.problems());
    }

    #[test]
    fn a_changed_record_number_is_an_edit() {
        let mut l = chain(6);
        l[3] = l[3].replace("\"seq\":3", "\"seq\":40");
        let c = check(&l);
        assert_eq!(c.problems().iter().map(|p| (p.kind, p.line)).collect::<Vec<_>>(), vec![("edited", 4)], "{:?}", c.problems());
    }

    #[test]
    fn a_removed_last_but_one_record_is_missing() {
        let mut l = chain(5);
        l.remove(3);
        let c = check(&l);
        assert_eq!(c.problems().iter().map(|p| p.kind).collect::<Vec<_>>(), vec!["missing"], "{:?}", c.problems());
    }

    #[test]
    fn a_close_record_with_a_wrong_count_is_an_edit() {
        let mut l = chain(4);
        l[3] = l[3].replace(r#""event":"close""#, r#""event":"close","records":9"#);
        let c = check(&l);
        assert!(c.problems().iter().any(|p| p.kind == "edited" && p.detail.contains("counts 9")), "{:?}", c.problems());
    }

    #[test]
    fn a_cut_tail_is_truncated_or_open() {
        let mut l = chain(5);
        let cut = l[4].len() / 2;
        l[4].truncate(cut);
        let c = check(&l);
        assert_eq!(c.problems()[0].kind, "truncated");
        assert_eq!(c.problems()[0].line, 5);
        let l = chain(5)[..3].to_vec();
        let c = check(&l);
        assert_eq!(c.state().verdict(), "open");
    }

    #[test]
    fn a_line_that_is_not_a_record_is_an_edit_inside_and_a_cut_at_the_end() {
        let l = chain(3);
        let mut c = ChainChecker::new();
        c.record(1, l[0].as_bytes(), &serde_json::from_str(&l[0]).unwrap());
        c.not_a_record(2);
        c.record(3, l[1].as_bytes(), &serde_json::from_str(&l[1]).unwrap());
        c.not_a_record(4);
        c.finish();
        let kinds: Vec<_> = c.problems().iter().map(|p| (p.kind, p.line)).collect();
        assert_eq!(kinds, vec![("edited", 2), ("truncated", 4)], "{:?}", c.problems());
    }

    #[test]
    fn a_record_without_chain_is_unchained() {
        let mut l = chain(3);
        l.insert(1, r#"{"ts":"2026-12-01T00:00:00Z"}"#.into());
        let c = check(&l);
        assert_eq!(c.problems()[0].kind, "unchained");
    }
}
