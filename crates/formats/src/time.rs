//! Timestamp parsing shared by the parsers. All results are UTC microseconds.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeZone, Utc};

/// RFC 3339 / ISO 8601 with offset or `Z` (`2025-07-20T13:44:16.367Z`,
/// `2022-01-08T19:42:12.572958+00:00`).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s).ok().map(|d| d.with_timezone(&Utc).timestamp_micros())
}

/// `YYYY-MM-DD HH:MM:SS[.fff]` without zone, taken as UTC.
/// A time bound as users write it: RFC 3339 (`2026-01-31T12:00:00Z`) or a
/// date (`2026-01-31`, its midnight UTC). Shared by `--since/--until` and
/// the Python bindings.
pub fn parse_time_bound(s: &str) -> Option<i64> {
    parse_rfc3339(s.trim()).or_else(|| parse_naive_utc(&format!("{} 00:00:00", s.trim())))
}

pub fn parse_naive_utc(s: &str) -> Option<i64> {
    for f in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M:%S"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, f) {
            return Some(Utc.from_utc_datetime(&n).timestamp_micros());
        }
    }
    None
}

/// `YYYY-MM-DD` of a UTC-microsecond timestamp: the partition value.
pub fn date_of(micros: i64) -> String {
    match DateTime::<Utc>::from_timestamp_micros(micros) {
        Some(d) => d.format("%Y-%m-%d").to_string(),
        None => "1970-01-01".to_string(),
    }
}

/// Render micros as RFC 3339 (for messages and JSON output).
pub fn to_rfc3339(micros: i64) -> String {
    match DateTime::<Utc>::from_timestamp_micros(micros) {
        Some(d) => d.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        None => micros.to_string(),
    }
}

/// The UTC year of a unix time.
pub fn year_of_unix(secs: i64) -> Option<i32> {
    DateTime::<Utc>::from_timestamp(secs, 0).map(|d| d.year())
}

/// The UTC month (1-12) of a unix time.
pub fn month_of_unix(secs: i64) -> Option<u32> {
    DateTime::<Utc>::from_timestamp(secs, 0).map(|d| d.month())
}

/// Build micros from calendar parts (UTC); None when the date is impossible.
pub fn from_parts(year: i32, month: u32, day: u32, h: u32, m: u32, s: u32, micros: u32) -> Option<i64> {
    let d = NaiveDate::from_ymd_opt(year, month, day)?;
    let t = d.and_hms_micro_opt(h, m, s, micros)?;
    Some(Utc.from_utc_datetime(&t).timestamp_micros())
}

/// Year inference for year-less syslog timestamps (`Jan  5 10:00:00`).
///
/// The first line's year is the `--year` hint, else the year of the file's
/// modification time (one less when the first month lies after the mtime's
/// month: a file written in January that starts in December). After that,
/// each line takes the year that puts it closest in time to the line before
/// (within half a year either way), so a Dec → Jan step rolls over, and a
/// line out of order (a late December line after January) stays in its own
/// year instead of pushing every later line a year ahead. Without a hint, no
/// line is placed after the file's modification time (plus a day for the
/// stamp's unknown zone): a file cannot hold a line written after it was
/// last written.
#[derive(Debug, Clone)]
pub struct YearTracker {
    /// The previous line's year and time of year (month, day, seconds).
    last: Option<(i32, u32, u32, u32)>,
    hint: Option<i32>,
    mtime: Option<i64>,
}

/// Slack for the file-time bound: year-less stamps are local time of an
/// unknown zone, up to 14 hours off UTC.
const MTIME_SLACK_S: i64 = 86_400;

impl YearTracker {
    pub fn new(hint: Option<i32>, mtime_unix: Option<i64>) -> Self {
        YearTracker { last: None, hint, mtime: mtime_unix }
    }

    /// The last stamp placed: (year, month, day, seconds), carried to the
    /// next file of a rotated set.
    pub fn last(&self) -> Option<(i32, u32, u32, u32)> {
        self.last
    }

    /// Continue after a previous file's last stamp instead of anchoring the
    /// first line on this file's time.
    pub fn resume(&mut self, last: (i32, u32, u32, u32)) {
        if self.last.is_none() {
            self.last = Some(last);
        }
    }

    /// The year of a stamp's month (day and time of day refine the choice).
    pub fn year_for(&mut self, month: u32) -> i32 {
        self.year_for_stamp(month, 1, 0)
    }

    /// The year of a year-less stamp: month, day, seconds since midnight.
    pub fn year_for_stamp(&mut self, month: u32, day: u32, secs: u32) -> i32 {
        let year = match self.last {
            Some((y, lm, ld, ls)) => {
                // Position within a year, in seconds (months as 31 days: only
                // comparisons need it).
                let pos = |m: u32, d: u32, s: u32| ((m as i64 - 1) * 31 + (d as i64 - 1)) * 86_400 + s as i64;
                let here = pos(month, day, secs);
                let prev = pos(lm, ld, ls);
                let year_len = 12 * 31 * 86_400;
                // The candidate year whose placement is nearest the last line.
                [y - 1, y, y + 1].into_iter().min_by_key(|c| ((*c - y) as i64 * year_len + here - prev).abs()).unwrap_or(y)
            }
            None => match self.hint {
                Some(y) => y,
                None => {
                    let now = self.mtime.unwrap_or_else(|| Utc::now().timestamp());
                    let y = year_of_unix(now).unwrap_or(1970);
                    match month_of_unix(now) {
                        Some(m) if month > m => y - 1,
                        _ => y,
                    }
                }
            },
        };
        let bounded = self.not_after_mtime(year, month, day, secs);
        // A line moved back a year is an outlier (a clock jump); the lines
        // after it are placed relative to the ones before it.
        if bounded == year {
            self.last = Some((year, month, day, secs));
        }
        bounded
    }

    /// Without `--year`, a stamp later than the file's time belongs to the
    /// year before.
    fn not_after_mtime(&self, year: i32, month: u32, day: u32, secs: u32) -> i32 {
        let (None, Some(mtime)) = (self.hint, self.mtime) else { return year };
        let at = from_parts(year, month, day.max(1), secs / 3600, (secs / 60) % 60, secs % 60, 0).map(|us| us / 1_000_000);
        match at {
            Some(t) if t > mtime.saturating_add(MTIME_SLACK_S) => year - 1,
            _ => year,
        }
    }
}

pub fn month_from_abbrev(s: &str) -> Option<u32> {
    const M: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    M.iter().position(|m| m.eq_ignore_ascii_case(s)).map(|i| i as u32 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollover_and_hint() {
        let mut t = YearTracker::new(Some(2021), None);
        assert_eq!(t.year_for(12), 2021);
        assert_eq!(t.year_for(12), 2021);
        assert_eq!(t.year_for(1), 2022);
        assert_eq!(t.year_for(2), 2022);
    }

    #[test]
    fn mtime_in_january_of_december_start() {
        // 2022-01-10: a file that starts in December belongs to 2021.
        let mut t = YearTracker::new(None, Some(1641772800));
        assert_eq!(t.year_for(12), 2021);
        assert_eq!(t.year_for(1), 2022);
    }

    #[test]
    fn out_of_order_lines_do_not_run_the_year_away() {
        let mut t = YearTracker::new(Some(2026), None);
        let seq = [(12, 31), (1, 1), (12, 31), (1, 1), (12, 30), (1, 2), (2, 1)];
        let years: Vec<i32> = seq.iter().map(|(m, d)| t.year_for_stamp(*m, *d, 0)).collect();
        assert_eq!(years, vec![2026, 2027, 2026, 2027, 2026, 2027, 2027]);
    }

    #[test]
    fn no_line_after_the_file_time() {
        // mtime 2026-03-10: a file that starts in November and runs into
        // March spans November 2025 .. March 2026, never reaching 2027.
        let mtime = parse_rfc3339("2026-03-10T00:00:00Z").unwrap() / 1_000_000;
        let mut t = YearTracker::new(None, Some(mtime));
        assert_eq!(t.year_for_stamp(11, 20, 0), 2025);
        assert_eq!(t.year_for_stamp(1, 5, 0), 2026);
        assert_eq!(t.year_for_stamp(3, 9, 0), 2026);
        // A stray line dated after the file time (a clock jump) is placed a
        // year earlier rather than in the future.
        assert_eq!(t.year_for_stamp(3, 20, 0), 2025);
        assert_eq!(t.year_for_stamp(3, 9, 1), 2026);
        // The same file stamp with --year is taken as the user says.
        let mut t = YearTracker::new(Some(2030), Some(mtime));
        assert_eq!(t.year_for_stamp(11, 20, 0), 2030);
    }

    #[test]
    fn formats() {
        assert_eq!(parse_rfc3339("2025-07-20T13:44:16.367Z"), Some(1753019056367000));
        assert_eq!(parse_rfc3339("2022-01-08T19:42:12.572958+00:00"), Some(1641670932572958));
        assert_eq!(date_of(1753019056367000), "2025-07-20");
        assert_eq!(parse_naive_utc("2026-04-12 12:53:22"), parse_rfc3339("2026-04-12T12:53:22Z"));
    }
}
