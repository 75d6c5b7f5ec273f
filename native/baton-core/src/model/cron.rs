//! Cron schedules in a time zone, DST-correct.
//!
//! The `cron` crate reads 6 or 7 fields (seconds first) and numbers days of week 1-7 from
//! Sunday; standard cron has 5 fields and numbers them 0-6 from Sunday (7 is Sunday too).
//! [`CronSchedule::parse`] converts a 5-field expression.
//!
//! Times are computed on the local wall clock, then placed on the time line:
//! - a local time that does not exist (spring forward, 02:30 in a 02:00-03:00 gap) runs at
//!   the same distance past the jump (03:30 in the new offset), so a daily job still runs
//!   once that day;
//! - a local time that happens twice (fall back) runs once, at its first occurrence.
//!
//! So a daily job runs once per local day whatever the zone does.

use chrono::{DateTime, Duration, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use std::str::FromStr;

/// A parsed cron expression with its zone.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    schedule: cron::Schedule,
    zone: Tz,
}

impl CronSchedule {
    /// Parses `expression` (5, 6 or 7 fields) in `timezone` (an IANA name; UTC by default).
    pub fn parse(expression: &str, timezone: Option<&str>) -> Result<Self, String> {
        let zone = parse_zone(timezone)?;
        let converted = to_cron_crate(expression)?;
        let schedule = cron::Schedule::from_str(&converted)
            .map_err(|e| format!("invalid cron expression `{expression}`: {e}"))?;
        Ok(CronSchedule { schedule, zone })
    }

    /// The first scheduled time strictly after `after_ms`, in milliseconds since the epoch.
    pub fn next_after(&self, after_ms: u64) -> Option<u64> {
        let after = DateTime::<Utc>::from_timestamp_millis(after_ms as i64)?;
        // Wall-clock times, read as if they were UTC: the iteration knows nothing of zones.
        let wall = after.with_timezone(&self.zone).naive_local().and_utc();
        // A zone's offsets change by hours at most, so a few candidates always suffice;
        // the bound keeps an expression that never matches again from looping.
        for candidate in self.schedule.after(&wall).take(1_000) {
            let instant = self.place(candidate.naive_utc());
            if instant > after_ms {
                return Some(instant);
            }
        }
        None
    }

    /// A wall-clock time of the zone on the time line; see the module for gaps and overlaps.
    fn place(&self, wall: NaiveDateTime) -> u64 {
        let instant = match self.zone.from_local_datetime(&wall).earliest() {
            Some(t) => t.with_timezone(&Utc),
            None => {
                // In a gap: with the offset in force before it, which lands past the jump.
                let before =
                    self.zone.offset_from_utc_datetime(&(wall - Duration::hours(24))).fix();
                Utc.from_utc_datetime(&(wall - Duration::seconds(before.local_minus_utc() as i64)))
            }
        };
        instant.timestamp_millis().max(0) as u64
    }
}

/// An IANA zone name; UTC when none is given.
pub fn parse_zone(timezone: Option<&str>) -> Result<Tz, String> {
    match timezone {
        None => Ok(Tz::UTC),
        Some(name) => Tz::from_str(name).map_err(|_| {
            let hint =
                crate::error::did_you_mean(name, chrono_tz::TZ_VARIANTS.iter().map(|z| z.name()));
            format!("unknown time zone `{name}`{hint}; use an IANA name such as `Europe/Berlin`")
        }),
    }
}

/// The expression as the `cron` crate reads it: 5 fields get seconds `0` and their day of
/// week renumbered; 6 and 7 fields are taken as they are.
fn to_cron_crate(expression: &str) -> Result<String, String> {
    let fields: Vec<&str> = expression.split_whitespace().collect();
    match fields.len() {
        5 => {
            let dow = standard_day_of_week(fields[4])?;
            Ok(format!("0 {} {} {} {} {dow}", fields[0], fields[1], fields[2], fields[3]))
        }
        6 | 7 => Ok(fields.join(" ")),
        n => Err(format!(
            "invalid cron expression `{expression}`: {n} fields; use 5 (minute hour day-of-month month day-of-week) or 6/7 with seconds first"
        )),
    }
}

/// A standard day-of-week field (0-7, 0 and 7 = Sunday) in the `cron` crate's numbering
/// (1-7, 1 = Sunday). Numeric items (`1-5`, `*/2`, `0,6`) are expanded to the days they
/// mean; names (`MON-FRI`) and `*`/`?` mean the same to both and pass through.
fn standard_day_of_week(field: &str) -> Result<String, String> {
    let mut out = Vec::new();
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (
                r,
                Some(
                    s.parse::<u32>()
                        .map_err(|_| format!("day of week `{item}`: bad step `{s}`"))?,
                ),
            ),
            None => (item, None),
        };
        let numeric = range == "*" || range.chars().all(|c| c.is_ascii_digit() || c == '-');
        if !numeric || (range == "*" && step.is_none()) || range == "?" {
            out.push(item.to_owned());
            continue;
        }
        let (first, last) = match range {
            "*" => (0, 6),
            _ => match range.split_once('-') {
                Some((a, b)) => (day(a, item)?, day(b, item)?),
                None if step.is_some() => (day(range, item)?, 6),
                None => (day(range, item)?, day(range, item)?),
            },
        };
        if first > last {
            return Err(format!("day of week `{item}`: the range goes backwards"));
        }
        let step = step.unwrap_or(1);
        if step == 0 {
            return Err(format!("day of week `{item}`: the step must be at least 1"));
        }
        let mut seen = Vec::new();
        for d in (first..=last).step_by(step as usize) {
            // 0 and 7 are both Sunday, which the cron crate numbers 1.
            let mapped = d % 7 + 1;
            if !seen.contains(&mapped) {
                seen.push(mapped);
                out.push(mapped.to_string());
            }
        }
    }
    Ok(out.join(","))
}

fn day(text: &str, item: &str) -> Result<u32, String> {
    match text.parse::<u32>() {
        Ok(d) if d <= 7 => Ok(d),
        _ => Err(format!("day of week `{item}`: `{text}` is not a day (0-7, 0 and 7 = Sunday)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> u64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis() as u64
    }

    fn iso(ms: u64) -> String {
        DateTime::<Utc>::from_timestamp_millis(ms as i64).unwrap().to_rfc3339()
    }

    #[test]
    fn five_fields_get_seconds_and_sunday_zero() {
        assert_eq!(to_cron_crate("0 2 * * *").unwrap(), "0 0 2 * * *");
        assert_eq!(to_cron_crate("0 2 * * 0").unwrap(), "0 0 2 * * 1");
        assert_eq!(to_cron_crate("0 2 * * 7").unwrap(), "0 0 2 * * 1");
        assert_eq!(to_cron_crate("0 2 * * 1-5").unwrap(), "0 0 2 * * 2,3,4,5,6");
        assert_eq!(to_cron_crate("0 2 * * 5-7").unwrap(), "0 0 2 * * 6,7,1");
        assert_eq!(to_cron_crate("0 2 * * 0,6").unwrap(), "0 0 2 * * 1,7");
        assert_eq!(to_cron_crate("0 2 * * */2").unwrap(), "0 0 2 * * 1,3,5,7");
        assert_eq!(to_cron_crate("0 2 * * 1-5/2").unwrap(), "0 0 2 * * 2,4,6");
        assert_eq!(to_cron_crate("0 2 * * MON-FRI").unwrap(), "0 0 2 * * MON-FRI");
        assert_eq!(to_cron_crate("30 0 2 * * *").unwrap(), "30 0 2 * * *");
        assert!(to_cron_crate("0 2 * *").unwrap_err().contains("4 fields"));
        assert!(to_cron_crate("0 2 * * 8").unwrap_err().contains("not a day"));
    }

    #[test]
    fn weekdays_mean_what_standard_cron_means() {
        // 2024-06-02 is a Sunday.
        let sunday = CronSchedule::parse("0 9 * * 0", None).unwrap();
        assert_eq!(
            iso(sunday.next_after(ms("2024-05-30T00:00:00Z")).unwrap()),
            "2024-06-02T09:00:00+00:00"
        );
        let weekdays = CronSchedule::parse("0 9 * * 1-5", None).unwrap();
        assert_eq!(
            iso(weekdays.next_after(ms("2024-06-01T00:00:00Z")).unwrap()),
            "2024-06-03T09:00:00+00:00"
        );
    }

    #[test]
    fn spring_forward_runs_once_after_the_jump() {
        // Los Angeles jumps from 02:00 to 03:00 on 2024-03-10.
        let s = CronSchedule::parse("30 2 * * *", Some("America/Los_Angeles")).unwrap();
        let a = s.next_after(ms("2024-03-09T12:00:00Z")).unwrap();
        assert_eq!(iso(a), "2024-03-10T10:30:00+00:00", "03:30 PDT");
        let b = s.next_after(a).unwrap();
        assert_eq!(iso(b), "2024-03-11T09:30:00+00:00", "02:30 PDT the next day");
    }

    #[test]
    fn fall_back_runs_once_at_the_first_occurrence() {
        // Los Angeles goes back from 02:00 PDT to 01:00 PST on 2024-11-03.
        let s = CronSchedule::parse("30 1 * * *", Some("America/Los_Angeles")).unwrap();
        let a = s.next_after(ms("2024-11-02T12:00:00Z")).unwrap();
        assert_eq!(iso(a), "2024-11-03T08:30:00+00:00", "01:30 PDT");
        let b = s.next_after(a).unwrap();
        assert_eq!(
            iso(b),
            "2024-11-04T09:30:00+00:00",
            "01:30 PST the next day, not 01:30 PST the same day"
        );
    }

    #[test]
    fn unknown_zones_are_named() {
        assert!(CronSchedule::parse("0 2 * * *", Some("Europe/Berln"))
            .unwrap_err()
            .contains("did you mean `Europe/Berlin`"));
    }
}
