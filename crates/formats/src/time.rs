//! Timestamp parsing shared by the parsers. All results are UTC microseconds.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

/// The zone of timestamps that carry none (`Jan  5 10:00:00` syslog stamps,
/// `2026-01-05 10:00:00` log prefixes): `--tz`. Stamps with an offset or `Z`
/// are never reinterpreted.
///
/// Written as an IANA name (`Europe/Berlin`, with its daylight-saving rules),
/// `UTC`, or a fixed offset (`+02:00`, `-0530`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Zone {
    /// The default: a zone-less stamp is taken as UTC.
    #[default]
    Utc,
    /// A fixed offset from UTC.
    Fixed(FixedOffset),
    /// A zone of the IANA database (bundled, no file read at run time).
    Named(Tz),
}

impl FromStr for Zone {
    type Err = String;

    fn from_str(s: &str) -> Result<Zone, String> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("utc") || t == "Z" {
            return Ok(Zone::Utc);
        }
        if let Some(off) = parse_offset(t) {
            return Ok(Zone::Fixed(off));
        }
        t.parse::<Tz>().map(Zone::Named).map_err(|_| {
            format!("unknown time zone {t:?}: give an IANA name (Europe/Berlin, America/New_York), UTC, or an offset (+02:00)")
        })
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Zone::Utc => f.write_str("UTC"),
            Zone::Fixed(o) => write!(f, "{o}"),
            Zone::Named(tz) => f.write_str(tz.name()),
        }
    }
}

/// `+HH:MM`, `-HHMM`, `+HH`.
fn parse_offset(t: &str) -> Option<FixedOffset> {
    let sign = match t.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let rest = t.get(1..)?;
    let (hh, mm) = match rest.len() {
        2 => (rest, "00"),
        4 => (rest.get(..2)?, rest.get(2..)?),
        5 if rest.as_bytes()[2] == b':' => (rest.get(..2)?, rest.get(3..)?),
        _ => return None,
    };
    if !(hh.bytes().chain(mm.bytes()).all(|b| b.is_ascii_digit())) {
        return None;
    }
    let (h, m): (i32, i32) = (hh.parse().ok()?, mm.parse().ok()?);
    if h > 23 || m > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

impl Zone {
    /// The UTC instant of a wall-clock time in this zone, in microseconds.
    ///
    /// A time repeated when clocks go back (the hour after 02:00 on the last
    /// Sunday of October in Europe) is the later instance when `after`, the
    /// previous line's instant, lies past the earlier one: a log is written in
    /// order, so the second 02:30 follows the first. A time skipped when
    /// clocks go forward cannot be written by a correct clock; it is read
    /// with the offset in force before the gap (a clock not yet moved on),
    /// which is also java.time's rule: later by the gap's length.
    pub fn to_utc_micros(&self, wall: &NaiveDateTime, after: Option<i64>) -> Option<i64> {
        match self {
            Zone::Utc => Some(Utc.from_utc_datetime(wall).timestamp_micros()),
            Zone::Fixed(o) => single(o.from_local_datetime(wall), wall, after, |_| o.local_minus_utc() as i64),
            Zone::Named(tz) => single(tz.from_local_datetime(wall), wall, after, |w| offset_before(tz, w)),
        }
    }

    /// Seconds east of UTC in force at a UTC instant (seconds since the epoch).
    pub fn offset_at(&self, unix: i64) -> i64 {
        let Some(at) = DateTime::<Utc>::from_timestamp(unix, 0) else { return 0 };
        match self {
            Zone::Utc => 0,
            Zone::Fixed(o) => o.local_minus_utc() as i64,
            Zone::Named(tz) => tz.offset_from_utc_datetime(&at.naive_utc()).fix().local_minus_utc() as i64,
        }
    }
}

/// The offset (seconds) in force a day before wall time `w`, read as UTC:
/// for a time in a spring-forward gap, the offset before the gap (zones
/// change offset months apart, never twice in a day).
fn offset_before<Z: TimeZone>(zone: &Z, w: &NaiveDateTime) -> i64 {
    let probe = *w - chrono::Duration::days(1);
    zone.offset_from_utc_datetime(&probe).fix().local_minus_utc() as i64
}

fn single<Z: TimeZone>(r: LocalResult<DateTime<Z>>, wall: &NaiveDateTime, after: Option<i64>, gap_offset: impl Fn(&NaiveDateTime) -> i64) -> Option<i64> {
    match r {
        LocalResult::Single(d) => Some(d.timestamp_micros()),
        LocalResult::Ambiguous(first, second) => {
            let (a, b) = (first.timestamp_micros(), second.timestamp_micros());
            Some(match after {
                Some(prev) if prev > a => b,
                _ => a,
            })
        }
        LocalResult::None => Some(Utc.from_utc_datetime(wall).timestamp_micros() - gap_offset(wall) * 1_000_000),
    }
}

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
    parse_naive_in(s, &Zone::Utc, None)
}

/// `YYYY-MM-DD HH:MM:SS[.fff]` without zone, as wall time in `zone`
/// (`after`: the previous line's instant, see [`Zone::to_utc_micros`]).
pub fn parse_naive_in(s: &str, zone: &Zone, after: Option<i64>) -> Option<i64> {
    for f in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M:%S"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, f) {
            return zone.to_utc_micros(&n, after);
        }
    }
    None
}

/// `YYYY-MM-DD` of a UTC-microsecond timestamp: the partition value.
pub fn date_of(micros: i64) -> String {
    use chrono::Datelike;
    // Once per row: integer formatting, not a strftime pattern parsed each time.
    match DateTime::<Utc>::from_timestamp_micros(micros) {
        Some(d) if (0..=9999).contains(&d.year()) => format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day()),
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

/// Calendar parts of a wall-clock time in `zone` to UTC micros (`after`: the
/// previous line's instant, for the hour repeated when clocks go back).
#[allow(clippy::too_many_arguments)]
pub fn from_parts_in(zone: &Zone, after: Option<i64>, year: i32, month: u32, day: u32, h: u32, m: u32, s: u32, micros: u32) -> Option<i64> {
    let d = NaiveDate::from_ymd_opt(year, month, day)?;
    let t = d.and_hms_micro_opt(h, m, s, micros)?;
    zone.to_utc_micros(&t, after)
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
    /// `--tz` when given: the bound can then be tight.
    zone: Option<Zone>,
}

/// Slack for the file-time bound when the stamps' zone is unknown: local time
/// of any zone is at most 14 hours off UTC.
const MTIME_SLACK_S: i64 = 86_400;
/// Slack when the zone is known: clock steps and a file closed a little
/// after its last line.
const MTIME_SLACK_KNOWN_ZONE_S: i64 = 3_600;

impl YearTracker {
    pub fn new(hint: Option<i32>, mtime_unix: Option<i64>) -> Self {
        YearTracker { last: None, hint, mtime: mtime_unix, zone: None }
    }

    /// With the stamps' zone known (`--tz`), a line may lie at most an hour
    /// after the file's modification time.
    pub fn with_zone(mut self, zone: Option<Zone>) -> Self {
        self.zone = zone;
        self
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
                    // The file's time as wall time of the stamps' zone.
                    let now = now.saturating_add(self.zone.map_or(0, |z| z.offset_at(now)));
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
        let (zone, slack) = match self.zone {
            Some(z) => (z, MTIME_SLACK_KNOWN_ZONE_S),
            None => (Zone::Utc, MTIME_SLACK_S),
        };
        let at = from_parts_in(&zone, None, year, month, day.max(1), secs / 3600, (secs / 60) % 60, secs % 60, 0).map(|us| us / 1_000_000);
        match at {
            Some(t) if t > mtime.saturating_add(slack) => year - 1,
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

    fn wall(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    fn utc(s: &str) -> i64 {
        parse_rfc3339(s).unwrap()
    }

    #[test]
    fn zone_spellings() {
        assert_eq!("UTC".parse::<Zone>(), Ok(Zone::Utc));
        assert_eq!("utc".parse::<Zone>(), Ok(Zone::Utc));
        assert_eq!("+02:00".parse::<Zone>(), Ok(Zone::Fixed(FixedOffset::east_opt(7200).unwrap())));
        assert_eq!("-0530".parse::<Zone>(), Ok(Zone::Fixed(FixedOffset::west_opt(5 * 3600 + 1800).unwrap())));
        assert_eq!("+05".parse::<Zone>(), Ok(Zone::Fixed(FixedOffset::east_opt(5 * 3600).unwrap())));
        assert_eq!("Europe/Berlin".parse::<Zone>().unwrap().to_string(), "Europe/Berlin");
        for bad in ["Mars/Olympus", "+25:00", "+2:0", "", "+02:000", "-12:60"] {
            let e = bad.parse::<Zone>().unwrap_err();
            assert!(e.contains("IANA name"), "{bad}: {e}");
        }
    }

    #[test]
    fn named_zone_follows_daylight_saving() {
        let berlin: Zone = "Europe/Berlin".parse().unwrap();
        // Winter (UTC+1) and summer (UTC+2).
        assert_eq!(berlin.to_utc_micros(&wall("2026-01-15 10:00:00"), None), Some(utc("2026-01-15T09:00:00Z")));
        assert_eq!(berlin.to_utc_micros(&wall("2026-07-15 10:00:00"), None), Some(utc("2026-07-15T08:00:00Z")));
        let fixed: Zone = "-05:00".parse().unwrap();
        assert_eq!(fixed.to_utc_micros(&wall("2026-07-15 10:00:00"), None), Some(utc("2026-07-15T15:00:00Z")));
        assert_eq!(berlin.offset_at(utc("2026-07-15T08:00:00Z") / 1_000_000), 7200);
    }

    #[test]
    fn repeated_hour_is_ordered_by_the_previous_line() {
        // 2026-10-25: Berlin goes from 03:00 CEST back to 02:00 CET, so
        // 02:30 happens twice (00:30Z and 01:30Z).
        let berlin: Zone = "Europe/Berlin".parse().unwrap();
        let first = utc("2026-10-25T00:30:00Z");
        let second = utc("2026-10-25T01:30:00Z");
        let w = wall("2026-10-25 02:30:00");
        assert_eq!(berlin.to_utc_micros(&w, None), Some(first));
        assert_eq!(berlin.to_utc_micros(&w, Some(utc("2026-10-25T00:10:00Z"))), Some(first));
        // After 02:59 CEST (00:59Z) the next 02:30 is the CET one.
        assert_eq!(berlin.to_utc_micros(&w, Some(utc("2026-10-25T00:59:00Z"))), Some(second));
    }

    #[test]
    fn skipped_hour_keeps_its_place() {
        // 2026-03-29: Berlin skips 02:00-03:00. A 02:30 stamp comes from a
        // clock that has not moved on: 02:30 CET, 01:30Z (= 03:30 CEST).
        let berlin: Zone = "Europe/Berlin".parse().unwrap();
        let t = berlin.to_utc_micros(&wall("2026-03-29 02:30:00"), None).unwrap();
        assert_eq!(t, utc("2026-03-29T01:30:00Z"));
        assert_eq!(berlin.to_utc_micros(&wall("2026-03-29 03:30:00"), None), Some(t));
        assert_eq!(parse_naive_in("2026-03-29 01:59:00", &berlin, None), Some(utc("2026-03-29T00:59:00Z")));
    }

    #[test]
    fn known_zone_tightens_the_file_time_bound() {
        // File written 2026-03-10 12:00Z. A line at 2026-03-10 20:00 is 8 h
        // after it: within the unknown-zone day of slack, but with --tz UTC
        // known it cannot be from 2026 and goes to the year before.
        let mtime = utc("2026-03-10T12:00:00Z") / 1_000_000;
        let mut unknown = YearTracker::new(None, Some(mtime));
        assert_eq!(unknown.year_for_stamp(3, 10, 20 * 3600), 2026);
        let mut known = YearTracker::new(None, Some(mtime)).with_zone(Some(Zone::Utc));
        assert_eq!(known.year_for_stamp(3, 10, 20 * 3600), 2025);
        // In Tokyo (UTC+9) 20:00 local is 11:00Z: before the file time.
        let mut tokyo = YearTracker::new(None, Some(mtime)).with_zone(Some("Asia/Tokyo".parse().unwrap()));
        assert_eq!(tokyo.year_for_stamp(3, 10, 20 * 3600), 2026);
    }

    #[test]
    fn file_year_is_the_wall_year_of_the_zone() {
        // Written 2026-12-31 23:30Z = 2027-01-01 08:30 in Tokyo: a Tokyo log
        // whose first line is January 1st is from 2027.
        let mtime = utc("2026-12-31T23:30:00Z") / 1_000_000;
        let mut t = YearTracker::new(None, Some(mtime)).with_zone(Some("Asia/Tokyo".parse().unwrap()));
        assert_eq!(t.year_for_stamp(1, 1, 8 * 3600), 2027);
        let mut t = YearTracker::new(None, Some(mtime));
        assert_eq!(t.year_for_stamp(1, 1, 8 * 3600), 2026);
    }
}
