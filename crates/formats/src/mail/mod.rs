//! Mail-system and mail-provider records other than Postfix's and Postmark's (which has its own module,
//! `crate::postfix`, whose per-message state and row builder these share).

pub mod exchange;
pub mod exim;
pub mod gmail;
pub mod m365;
pub mod sendmail;
pub mod ses;
pub mod zeek;

use std::collections::{HashMap, VecDeque};

/// Expansions remembered at once (message, member → alias); oldest dropped first.
const MAX_EXPANSIONS: usize = 200_000;

/// The alias, group or proxy address each recipient of a message came
/// through (Exchange's EXPAND/RESOLVE/REDIRECT, Sendmail's `alias A => m1,
/// m2`), for the `orig_recipient` of the recipient's later rows. Bounded.
#[derive(Default)]
pub(crate) struct Expansions {
    map: HashMap<(String, String), String>,
    order: VecDeque<(String, String)>,
}

impl Expansions {
    /// `member` of `message` came through `alias`; an alias that itself came
    /// through another keeps the outermost one (what the sender addressed).
    pub(crate) fn note(&mut self, message: &str, member: String, alias: String) {
        let root = self.get(message, &alias).cloned().unwrap_or(alias);
        if root == member {
            return;
        }
        let key = (message.to_string(), member);
        if self.map.insert(key.clone(), root).is_none() {
            self.order.push_back(key);
            if self.order.len() > MAX_EXPANSIONS {
                if let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                }
            }
        }
    }

    pub(crate) fn get(&self, message: &str, member: &str) -> Option<&String> {
        self.map.get(&(message.to_string(), member.to_string()))
    }
}
