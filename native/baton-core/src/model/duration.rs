//! Durations as users write them: `500ms`, `10s`, `5m`, `2h`, `1d`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::time::Duration;

/// A duration as written in a definition. It is kept as text so that a bad value is
/// reported by validation together with every other problem, not as a parse failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationSpec(String);

impl DurationSpec {
    /// The duration, or a message saying what is wrong with the text.
    pub fn parse(&self) -> Result<Duration, String> {
        parse_duration(&self.0)
    }

    /// Rewrites a valid duration in the form [`format_duration`] writes; leaves an invalid
    /// one as it is (validation reports it).
    pub(crate) fn canonicalize(&mut self) {
        if let Ok(d) = self.parse() {
            self.0 = format_duration(d);
        }
    }
}

impl From<&str> for DurationSpec {
    fn from(s: &str) -> Self {
        DurationSpec(s.to_owned())
    }
}

impl From<Duration> for DurationSpec {
    fn from(d: Duration) -> Self {
        DurationSpec(format_duration(d))
    }
}

impl fmt::Display for DurationSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for DurationSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for DurationSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A bare number is kept so that validation can say "needs a unit".
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Ok(DurationSpec(s)),
            serde_json::Value::Number(n) => Ok(DurationSpec(n.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "a duration must be a string such as \"10s\", not {other}"
            ))),
        }
    }
}

const UNITS: [(&str, u64); 5] =
    [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];

/// Parses `500ms`, `10s`, `5m`, `2h`, `1d`, and sums such as `1h30m`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration (write e.g. \"10s\")".into());
    }
    let mut total: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!(
                "invalid duration `{text}` (write e.g. \"500ms\", \"10s\", \"5m\", \"2h\", \"1d\")"
            ));
        }
        let number: u64 =
            rest[..digits].parse().map_err(|_| format!("duration `{text}` is too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = rest[..unit_len].trim();
        rest = rest[unit_len..].trim_start();
        let millis = match UNITS.iter().find(|(u, _)| *u == unit) {
            Some((_, m)) => *m,
            None if unit.is_empty() => {
                return Err(format!(
                    "duration `{text}` needs a unit: ms, s, m, h or d (e.g. \"{number}s\")"
                ))
            }
            None => {
                return Err(format!(
                    "unknown unit `{unit}` in duration `{text}` (use ms, s, m, h or d)"
                ))
            }
        };
        total = number
            .checked_mul(millis)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("duration `{text}` is too large"))?;
    }
    Ok(Duration::from_millis(total))
}

/// Formats a duration in the largest unit that represents it exactly (`90s`, `500ms`, `2h`).
pub(crate) fn format_duration(d: Duration) -> String {
    let ms = d.as_millis() as u64;
    if ms == 0 {
        return "0s".into();
    }
    let (unit, size) =
        UNITS.iter().find(|(_, size)| ms.is_multiple_of(*size)).copied().unwrap_or(("ms", 1));
    format!("{}{unit}", ms / size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
    }

    #[test]
    fn explains_bad_durations() {
        assert!(parse_duration("10").unwrap_err().contains("needs a unit"));
        assert!(parse_duration("10w").unwrap_err().contains("unknown unit `w`"));
        assert!(parse_duration("abc").unwrap_err().contains("invalid duration"));
        assert!(parse_duration("").unwrap_err().contains("empty"));
        assert!(parse_duration("99999999999999999d").unwrap_err().contains("too large"));
    }

    #[test]
    fn formats_in_the_largest_exact_unit() {
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_secs(7200)), "2h");
        for text in ["500ms", "10s", "5m", "2h", "1d"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }
}
