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
    /// One schedule; two when a standard expression restricts both the day of month and the
    /// day of week, which standard cron ORs (a day matches either) and the `cron` crate ANDs.
    schedules: Vec<cron::Schedule>,
    zone: Tz,
}

impl CronSchedule {
    /// Parses `expression` (5, 6 or 7 fields, or `@hourly`, `@daily`, `@weekly`, `@monthly`,
    /// `@yearly`) in `timezone` (an IANA name; UTC by default).
    pub fn parse(expression: &str, timezone: Option<&str>) -> Result<Self, String> {
        let zone = parse_zone(timezone)?;
        let schedules = to_cron_crate(expression)?
            .iter()
            .map(|converted| cron::Schedule::from_str(converted))
            .collect::<Result<_, _>>()
            .map_err(|e| format!("invalid cron expression `{expression}`: {e}"))?;
        Ok(CronSchedule { schedules, zone })
    }

    /// The first scheduled time strictly after `after_ms`, in milliseconds since the epoch.
    pub fn next_after(&self, after_ms: u64) -> Option<u64> {
        self.schedules.iter().filter_map(|s| self.next_of(s, after_ms)).min()
    }

    fn next_of(&self, schedule: &cron::Schedule, after_ms: u64) -> Option<u64> {
        let after = DateTime::<Utc>::from_timestamp_millis(after_ms as i64)?;
        // Wall-clock times, read as if they were UTC: the iteration knows nothing of zones.
        let wall = after.with_timezone(&self.zone).naive_local().and_utc();
        // A zone's offsets change by hours at most, so a few candidates always suffice;
        // the bound keeps an expression that never matches again from looping.
        for candidate in schedule.after(&wall).take(1_000) {
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

/// The standard expression an `@` shorthand stands for.
fn shorthand(expression: &str) -> Option<&'static str> {
    Some(match expression {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        _ => return None,
    })
}

/// The expression as the `cron` crate reads it: 5 fields get seconds `0` and their day of
/// week renumbered, and become two schedules when they restrict both the day of month and
/// the day of week (standard cron runs on either, as a field not starting with `*` says);
/// 6 and 7 fields are taken as they are (their `?` says which day field is meant).
fn to_cron_crate(expression: &str) -> Result<Vec<String>, String> {
    let expression = shorthand(expression.trim()).unwrap_or(expression);
    let fields: Vec<&str> = expression.split_whitespace().collect();
    match fields.len() {
        5 => {
            let (minute, hour, dom, month) = (fields[0], fields[1], fields[2], fields[3]);
            let dow = standard_day_of_week(fields[4])?;
            let restricted = |f: &str| !f.starts_with('*') && f != "?";
            if restricted(dom) && restricted(fields[4]) {
                return Ok(vec![
                    format!("0 {minute} {hour} {dom} {month} *"),
                    format!("0 {minute} {hour} * {month} {dow}"),
                ]);
            }
            Ok(vec![format!("0 {minute} {hour} {dom} {month} {dow}")])
        }
        6 | 7 => Ok(vec![fields.join(" ")]),
        n => Err(format!(
            "invalid cron expression `{expression}`: {n} fields; use 5 (minute hour day-of-month month day-of-week), 6/7 with seconds first, or @hourly, @daily, @weekly, @monthly, @yearly"
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

    fn one(expression: &str) -> String {
        let mut converted = to_cron_crate(expression).unwrap();
        assert_eq!(converted.len(), 1, "{converted:?}");
        converted.remove(0)
    }

    #[test]
    fn five_fields_get_seconds_and_sunday_zero() {
        assert_eq!(one("0 2 * * *"), "0 0 2 * * *");
        assert_eq!(one("0 2 * * 0"), "0 0 2 * * 1");
        assert_eq!(one("0 2 * * 7"), "0 0 2 * * 1");
        assert_eq!(one("0 2 * * 1-5"), "0 0 2 * * 2,3,4,5,6");
        assert_eq!(one("0 2 * * 5-7"), "0 0 2 * * 6,7,1");
        assert_eq!(one("0 2 * * 0,6"), "0 0 2 * * 1,7");
        assert_eq!(one("0 2 * * */2"), "0 0 2 * * 1,3,5,7");
        assert_eq!(one("0 2 * * 1-5/2"), "0 0 2 * * 2,4,6");
        assert_eq!(one("0 2 * * MON-FRI"), "0 0 2 * * MON-FRI");
        assert_eq!(one("30 0 2 * * *"), "30 0 2 * * *");
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
    fn shorthands_mean_their_standard_expressions() {
        assert_eq!(one("@hourly"), "0 0 * * * *");
        assert_eq!(one("@daily"), one("@midnight"));
        assert_eq!(one("@weekly"), "0 0 0 * * 1");
        assert_eq!(one("@monthly"), "0 0 0 1 * *");
        assert_eq!(one("@yearly"), one("@annually"));
        let hourly = CronSchedule::parse("@hourly", None).unwrap();
        assert_eq!(
            iso(hourly.next_after(ms("2024-06-01T10:15:00Z")).unwrap()),
            "2024-06-01T11:00:00+00:00"
        );
        assert!(to_cron_crate("@sometimes").unwrap_err().contains("@hourly"));
    }

    #[test]
    fn a_day_of_month_and_a_day_of_week_both_given_mean_either() {
        // The 13th, or a Friday (standard cron); 2024-10-13 is a Sunday.
        let s = CronSchedule::parse("0 9 13 * 5", None).unwrap();
        let mut at = ms("2024-10-01T00:00:00Z");
        let mut days = Vec::new();
        for _ in 0..4 {
            at = s.next_after(at).unwrap();
            days.push(iso(at)[..10].to_owned());
        }
        assert_eq!(days, ["2024-10-04", "2024-10-11", "2024-10-13", "2024-10-18"]);
        // A field starting with `*` leaves the other one alone, as in standard cron.
        assert_eq!(one("0 9 */2 * 5"), "0 0 9 */2 * 6");
        assert_eq!(to_cron_crate("0 9 13 * MON").unwrap().len(), 2);
    }

    #[test]
    fn unknown_zones_are_named() {
        assert!(CronSchedule::parse("0 2 * * *", Some("Europe/Berln"))
            .unwrap_err()
            .contains("did you mean `Europe/Berlin`"));
    }
}
