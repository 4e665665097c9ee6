//! Per-message state of the Postfix parser: what is known of each queue id,
//! how each recipient's attempts ended, the `mail_messages` row a message
//! becomes when it is removed (or when the logs end), and the state carried
//! from one file of a rotated set to the next.

use std::collections::{BTreeMap, HashMap, VecDeque};

use mcpf_schema::Table;
use serde::{Deserialize, Serialize};

use crate::collect::{NamedRow, Val};
use crate::time::{date_of, YearTracker};
use crate::{Emit, Pos};

/// Queue ids whose state is kept at once; past it the oldest is dropped.
pub const MAX_QUEUE_STATE: usize = 200_000;
/// Recipients whose outcome is tracked per message (the counts stay exact
/// in `recipients_over`).
const MAX_OUTCOMES: usize = 1_000;
/// State carried to the next file of a rotated set: messages last seen at
/// most this long before the file's last line (Postfix's default
/// `maximal_queue_lifetime` is 5 days), at most this many.
pub const MAX_CARRY_AGE_US: i64 = 7 * 86_400 * 1_000_000;
pub const MAX_CARRY: usize = 50_000;
/// A carried message is used for a line at most this long before its last
/// carried sighting (clock skew between files); older lines are another
/// message under a reused id.
const CARRY_SKEW_US: i64 = 300 * 1_000_000;

/// How one recipient's latest attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Delivered,
    Filtered,
    Deferred,
    Bounced,
    Expired,
    Rejected,
    Discarded,
}

impl Outcome {
    /// The outcome of a delivery row's status and kind.
    pub fn of(status: &str, kind: &str) -> Option<Outcome> {
        Some(match status {
            "sent" | "delivered" | "deliverable" if kind == "filter_hop" => Outcome::Filtered,
            "sent" | "delivered" | "deliverable" => Outcome::Delivered,
            "deferred" => Outcome::Deferred,
            "bounced" | "undeliverable" => Outcome::Bounced,
            "expired" => Outcome::Expired,
            "rejected" | "filtered" | "held" => Outcome::Rejected,
            "discarded" => Outcome::Discarded,
            _ => return None,
        })
    }
}

/// What is known of one queue id.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct QueueState {
    pub message_id: Option<String>,
    pub sender: Option<String>,
    pub sender_raw: Option<String>,
    pub header_from: Option<String>,
    pub subject: Option<String>,
    pub size: Option<i64>,
    pub nrcpt: Option<i64>,
    pub client: Option<String>,
    pub notification_of: Option<String>,
    /// Lines of the message in the current file.
    #[serde(skip)]
    pub lines: Vec<u64>,
    /// Delivery records (`to=…` text) last deferred, for `status=expired`.
    pub deferred: Vec<String>,
    pub first_ts: Option<i64>,
    pub last_ts: i64,
    /// The latest line of the message: (file, offset, line), for the
    /// provenance of a row written when the logs end.
    pub last_at: Option<(String, u64, u64)>,
    pub outcomes: BTreeMap<String, Outcome>,
    pub recipients_over: u64,
    pub filtered_to: Option<String>,
    pub filtered_from: Option<String>,
    /// Came from the previous file of the rotated set; checked against the
    /// first line that uses it.
    #[serde(default)]
    pub carried: bool,
}

impl QueueState {
    pub fn note_line(&mut self, line: u64) {
        if self.lines.len() < 16 {
            self.lines.push(line);
        }
    }

    pub fn note_outcome(&mut self, recipient: &str, o: Outcome) {
        if self.outcomes.len() >= MAX_OUTCOMES && !self.outcomes.contains_key(recipient) {
            self.recipients_over += 1;
            return;
        }
        self.outcomes.insert(recipient.to_string(), o);
    }

    fn count(&self, f: impl Fn(Outcome) -> bool) -> i64 {
        self.outcomes.values().filter(|o| f(**o)).count() as i64
    }

    /// The message's final state: at `removed` (`open = false`) or when the
    /// logs end with the message still in the queue (`open = true`).
    pub fn final_state(&self, open: bool) -> &'static str {
        let delivered = self.count(|o| o == Outcome::Delivered);
        let filtered = self.count(|o| o == Outcome::Filtered);
        let deferred = self.count(|o| o == Outcome::Deferred);
        let bounced = self.count(|o| o == Outcome::Bounced);
        let expired = self.count(|o| o == Outcome::Expired);
        let rejected = self.count(|o| o == Outcome::Rejected);
        let discarded = self.count(|o| o == Outcome::Discarded);
        let total = self.outcomes.len() as i64;
        if open && (total == 0 || deferred > 0) {
            return "still_queued";
        }
        match () {
            _ if total == 0 => "removed",
            _ if filtered == total => "filtered",
            _ if delivered + filtered == total => "delivered",
            _ if delivered + filtered > 0 => "partially_delivered",
            _ if expired > 0 => "expired",
            _ if bounced > 0 => "bounced",
            _ if deferred > 0 => "deferred",
            _ if rejected > 0 => "rejected",
            _ if discarded > 0 => "discarded",
            _ => "removed",
        }
    }

    /// The `mail_messages` row (provenance other than the file is added by
    /// the collector; a message last seen in an earlier file names it).
    pub fn message_row<'a>(&'a self, host: Option<&'a str>, qid: &'a str, key: &'a str, date: &'a str, state: &'static str, related: Option<&'a str>) -> NamedRow<'a> {
        let mut r = NamedRow::new(Table::MailMessages);
        let first = self.first_ts.unwrap_or(self.last_ts);
        r.set("ts", Val::Ts(Some(first)))
            .set("date", Val::Str(Some(date)))
            .set("host", Val::Str(host))
            .set("queue_id", Val::Str(Some(qid)))
            .set("message_key", Val::Str(Some(key)))
            .set("message_id", Val::Str(self.message_id.as_deref()))
            .set("sender", Val::Str(self.sender.as_deref()))
            .set("client", Val::Str(self.client.as_deref()))
            .set("size_bytes", Val::Int(self.size))
            .set("nrcpt", Val::Int(self.nrcpt))
            .set("last_seen", Val::Ts(Some(self.last_ts)))
            .set("final_state", Val::Str(Some(state)))
            .set("recipients", Val::Int(Some(self.outcomes.len() as i64 + self.recipients_over as i64)))
            .set("delivered", Val::Int(Some(self.count(|o| matches!(o, Outcome::Delivered | Outcome::Filtered)))))
            .set("deferred", Val::Int(Some(self.count(|o| o == Outcome::Deferred))))
            .set("bounced", Val::Int(Some(self.count(|o| matches!(o, Outcome::Bounced | Outcome::Expired | Outcome::Rejected)))))
            .set("filtered_to", Val::Str(self.filtered_to.as_deref()))
            .set("filtered_from", Val::Str(self.filtered_from.as_deref()))
            .set("notification_of", Val::Str(self.notification_of.as_deref()))
            .set("related_lines", Val::Str(related));
        r
    }

    /// `host:qid:first-seen-micros`: one message even when ids are reused.
    pub fn key(&self, host: Option<&str>, qid: &str) -> String {
        format!("{}:{qid}:{}", host.unwrap_or(""), self.first_ts.unwrap_or(self.last_ts))
    }

    /// The day of the row.
    pub fn date(&self) -> String {
        date_of(self.first_ts.unwrap_or(self.last_ts))
    }
}

/// All queue ids of one parser, bounded, oldest evicted first.
#[derive(Debug, Default)]
pub struct Queues {
    pub map: HashMap<String, QueueState>,
    order: VecDeque<String>,
    /// Host of each queue id (the message row's host).
    pub hosts: HashMap<String, String>,
}

/// What one file hands the next file of its rotated set.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Carry {
    pub version: u32,
    /// The year tracker's last stamp (year, month, day, seconds).
    pub last_stamp: Option<(i32, u32, u32, u32)>,
    pub queues: Vec<(String, String, QueueState)>,
}

impl Queues {
    /// The state of `qid`, created if missing (evicting the oldest when full).
    pub fn state(&mut self, qid: &str) -> &mut QueueState {
        if !self.map.contains_key(qid) {
            // `removed` frees a queue's state but not its place in `order`:
            // prune those places now and then so the list stays bounded.
            if self.order.len() > 2 * self.map.len() + 1024 {
                let live = &self.map;
                self.order.retain(|q| live.contains_key(q));
            }
            if self.map.len() >= MAX_QUEUE_STATE {
                while let Some(old) = self.order.pop_front() {
                    if self.map.remove(&old).is_some() {
                        self.hosts.remove(&old);
                        break;
                    }
                }
            }
            self.order.push_back(qid.to_string());
            self.map.insert(qid.to_string(), QueueState::default());
        }
        self.map.get_mut(qid).expect("inserted")
    }

    /// Forget `qid` (a new message under a reused id, or `removed`).
    pub fn remove(&mut self, qid: &str) -> Option<QueueState> {
        self.hosts.remove(qid);
        self.map.remove(qid)
    }

    /// A line of `qid` at `ts`: drop a carried state that cannot be this
    /// message (too old, or newer than the line), then note the sighting.
    pub fn touch(&mut self, qid: &str, host: &str, ts: i64, at: (&str, u64, u64)) -> &mut QueueState {
        if let Some(s) = self.map.get(qid) {
            if s.carried && (ts + CARRY_SKEW_US < s.last_ts || ts - s.last_ts > MAX_CARRY_AGE_US) {
                self.remove(qid);
            }
        }
        if !self.hosts.contains_key(qid) {
            self.hosts.insert(qid.to_string(), host.to_string());
        }
        let s = self.state(qid);
        s.carried = false;
        s.last_ts = if s.first_ts.is_none() { ts } else { s.last_ts.max(ts) };
        s.first_ts.get_or_insert(ts);
        s.last_at = Some((at.0.to_string(), at.1, at.2));
        s
    }

    /// The open messages worth handing on: seen within the carry age of the
    /// newest one, newest first, bounded.
    pub fn carry_out(&self, last_stamp: Option<(i32, u32, u32, u32)>) -> Carry {
        let newest = self.map.values().map(|s| s.last_ts).max().unwrap_or(0);
        let mut open: Vec<(&String, &QueueState)> = self.map.iter().filter(|(_, s)| newest - s.last_ts <= MAX_CARRY_AGE_US).collect();
        open.sort_by(|a, b| b.1.last_ts.cmp(&a.1.last_ts).then(a.0.cmp(b.0)));
        open.truncate(MAX_CARRY);
        let queues = open
            .into_iter()
            .map(|(q, s)| {
                let mut s = s.clone();
                s.carried = true;
                (q.clone(), self.hosts.get(q).cloned().unwrap_or_default(), s)
            })
            .collect();
        Carry { version: 1, last_stamp, queues }
    }

    /// Start from what the previous file of the set handed on.
    pub fn carry_in(&mut self, c: Carry) {
        for (q, host, s) in c.queues {
            self.hosts.insert(q.clone(), host);
            *self.state(&q) = s;
        }
    }

    /// Write the `mail_messages` row of `qid` in state `s` (on `host`): at
    /// `at` (the line that closed it), or, for a message still open when the
    /// logs end (`open`), at its last line, which may be in an earlier file
    /// of the rotated set than `this_file`.
    #[allow(clippy::too_many_arguments)]
    fn write_row(qid: &str, host: Option<&str>, s: &QueueState, open: bool, at: Option<&Pos>, this_file: &str, out: &mut dyn Emit) {
        let host = host.filter(|h| !h.is_empty());
        let key = s.key(host, qid);
        let date = s.date();
        let related = Some(s.lines.iter().map(u64::to_string).collect::<Vec<_>>().join(",")).filter(|r| !r.is_empty());
        let row = s.message_row(host, qid, &key, &date, s.final_state(open), related.as_deref());
        match at {
            Some(p) => out.named(p, row),
            None => {
                let (file, offset, line) = s.last_at.clone().unwrap_or_default();
                let pos = Pos { offset, line, pointer: None };
                if file != this_file {
                    out.named_elsewhere(&file, &pos, row);
                } else {
                    out.named(&pos, row);
                }
            }
        }
    }

    /// The message is done (`removed`, `Completed`, every recipient has a
    /// final outcome): forget `qid` and write its row at `at`.
    pub fn close(&mut self, qid: &str, at: &Pos, this_file: &str, out: &mut dyn Emit) {
        let host = self.hosts.get(qid).cloned();
        if let Some(s) = self.remove(qid) {
            Self::write_row(qid, host.as_deref(), &s, false, Some(at), this_file, out);
        }
    }

    /// The logs end: write every message still open that was seen (not
    /// only referenced, as a notification's parent id is).
    pub fn write_open(&self, this_file: &str, out: &mut dyn Emit) {
        for qid in self.open_ids() {
            if let Some(s) = self.map.get(&qid).filter(|s| s.last_at.is_some()) {
                Self::write_row(&qid, self.hosts.get(&qid).map(String::as_str), s, true, None, this_file, out);
            }
        }
    }

    /// The state to hand to the next file of a rotated set, as JSON.
    pub fn carry_json(&self, years: &YearTracker) -> Option<serde_json::Value> {
        serde_json::to_value(self.carry_out(years.last())).ok()
    }

    /// Resume from what the previous file of the set handed on (a state of
    /// another version is ignored: the set is then read without it).
    pub fn resume(&mut self, state: &serde_json::Value, years: &mut YearTracker) {
        if let Ok(c) = serde_json::from_value::<Carry>(state.clone()) {
            if c.version == 1 {
                if let Some(last) = c.last_stamp {
                    years.resume(last);
                }
                self.carry_in(c);
            }
        }
    }

    /// Every open queue id, oldest sighting first (for the rows written when
    /// the logs end).
    pub fn open_ids(&self) -> Vec<String> {
        let mut ids: Vec<(&String, i64)> = self.map.iter().map(|(q, s)| (q, s.first_ts.unwrap_or(s.last_ts))).collect();
        ids.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(b.0)));
        ids.into_iter().map(|(q, _)| q.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_states() {
        let mut s = QueueState::default();
        assert_eq!(s.final_state(true), "still_queued");
        assert_eq!(s.final_state(false), "removed");
        s.note_outcome("a@x", Outcome::Delivered);
        assert_eq!(s.final_state(false), "delivered");
        assert_eq!(s.final_state(true), "delivered");
        s.note_outcome("b@x", Outcome::Deferred);
        assert_eq!(s.final_state(true), "still_queued");
        assert_eq!(s.final_state(false), "partially_delivered");
        s.note_outcome("b@x", Outcome::Expired);
        assert_eq!(s.final_state(false), "partially_delivered");
        let mut f = QueueState::default();
        f.note_outcome("a@x", Outcome::Filtered);
        assert_eq!(f.final_state(false), "filtered");
    }

    #[test]
    fn carry_round_trips_and_drops_stale_state() {
        let mut q = Queues::default();
        q.touch("AAA", "mx", 1_800_000_000_000_000, ("f", 0, 1)).sender = Some("a@x".into());
        q.touch("OLD", "mx", 1_800_000_000_000_000 - MAX_CARRY_AGE_US - 1, ("f", 0, 2));
        let c = q.carry_out(None);
        assert_eq!(c.queues.len(), 1);
        let text = serde_json::to_string(&c).unwrap();
        let mut next = Queues::default();
        next.carry_in(serde_json::from_str(&text).unwrap());
        assert_eq!(next.touch("AAA", "mx", 1_800_000_000_000_000 + 5, ("g", 0, 1)).sender.as_deref(), Some("a@x"));
        // A line far older than the carried state is another message.
        let mut next = Queues::default();
        next.carry_in(serde_json::from_str(&text).unwrap());
        assert_eq!(next.touch("AAA", "mx", 1_000_000, ("g", 0, 1)).sender, None);
    }
}
