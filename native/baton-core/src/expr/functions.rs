//! The functions expressions may call. None does I/O; `env` reads only the variables the
//! host allows, and `now`/`today` read the engine's clock.

use chrono::{DateTime, Duration as Span, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

/// What a function may read besides its arguments.
pub trait Host {
    fn now_ms(&self) -> u64;
    /// An environment variable, if the host allows expressions to read it.
    fn env(&self, name: &str) -> Option<String>;
    /// The run evaluated for, if there is one yet.
    fn run(&self) -> Option<&super::RunContext>;
    /// The step's attempt, in a step's fields.
    fn attempt(&self) -> Option<u32>;
}

type Call = fn(&dyn Host, Vec<Value>) -> Result<Value, String>;

/// A function: its name, arity and code.
pub struct Function {
    pub name: &'static str,
    pub min_args: usize,
    pub max_args: usize,
    /// Reads the clock or the environment, so it cannot be evaluated at validation.
    pub impure: bool,
    call: Call,
}

impl std::fmt::Debug for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl PartialEq for Function {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

/// The function whose value a shell command runs as code, not as data.
pub(super) const RAW: &str = "raw";

const fn f(name: &'static str, min_args: usize, max_args: usize, call: Call) -> Function {
    Function { name, min_args, max_args, impure: false, call }
}

const fn impure(name: &'static str, min_args: usize, max_args: usize, call: Call) -> Function {
    Function { name, min_args, max_args, impure: true, call }
}

static FUNCTIONS: [Function; 34] = [
    f("len", 1, 1, len),
    f("upper", 1, 1, |_, a| Ok(Value::String(text(&a[0], "upper")?.to_uppercase()))),
    f("lower", 1, 1, |_, a| Ok(Value::String(text(&a[0], "lower")?.to_lowercase()))),
    f("trim", 1, 1, |_, a| Ok(Value::String(text(&a[0], "trim")?.trim().to_owned()))),
    f("split", 2, 2, |_, a| {
        let (s, sep) = (text(&a[0], "split")?, text(&a[1], "split")?);
        Ok(Value::Array(s.split(sep).map(|p| Value::String(p.to_owned())).collect()))
    }),
    f("join", 2, 2, |_, a| {
        let sep = text(&a[1], "join")?;
        let parts: Vec<String> = list(&a[0], "join")?.iter().map(plain).collect();
        Ok(Value::String(parts.join(sep)))
    }),
    f("contains", 2, 2, contains),
    f("starts_with", 2, 2, |_, a| {
        Ok(Value::Bool(text(&a[0], "starts_with")?.starts_with(text(&a[1], "starts_with")?)))
    }),
    f("ends_with", 2, 2, |_, a| {
        Ok(Value::Bool(text(&a[0], "ends_with")?.ends_with(text(&a[1], "ends_with")?)))
    }),
    f("replace", 3, 3, |_, a| {
        Ok(Value::String(
            text(&a[0], "replace")?.replace(text(&a[1], "replace")?, text(&a[2], "replace")?),
        ))
    }),
    f("int", 1, 1, to_int),
    f("float", 1, 1, to_float),
    f("str", 1, 1, |_, a| Ok(Value::String(plain(&a[0])))),
    f("min", 1, usize::MAX, |_, a| extreme(a, "min", std::cmp::Ordering::Less)),
    f("max", 1, usize::MAX, |_, a| extreme(a, "max", std::cmp::Ordering::Greater)),
    f("sum", 1, 1, sum),
    f("range", 2, 3, range),
    impure("now", 0, 0, |h, _| Ok(moment(h.now_ms()))),
    impure("today", 0, 0, |h, _| Ok(Value::String(instant(h.now_ms()).date_naive().to_string()))),
    f("date", 1, 1, |_, a| Ok(Value::String(Moment::parse(&a[0], "date")?.render()))),
    f("date_add", 3, 3, date_add),
    f("date_ints_between", 3, 3, date_ints_between),
    f("epoch_ms", 1, 2, epoch_ms),
    f("format_date", 2, 3, format_date),
    impure("env", 1, 1, |h, a| {
        let name = text(&a[0], "env")?;
        h.env(name)
            .map(Value::String)
            .ok_or_else(|| format!("env(`{name}`): not set, or not allowed to expressions"))
    }),
    impure("run_id", 0, 0, |h, _| Ok(Value::String(run(h, "run_id")?.run_id.clone()))),
    impure("workflow_id", 0, 0, |h, _| {
        Ok(Value::String(run(h, "workflow_id")?.workflow_id.clone()))
    }),
    impure("workflow_version", 0, 0, |h, _| {
        Ok(run(h, "workflow_version")?.version.map_or(Value::Null, Value::from))
    }),
    impure("started_at", 0, 0, |h, _| Ok(moment(run(h, "started_at")?.started_ms))),
    impure("scheduled_at", 0, 0, |h, _| Ok(moment(run(h, "scheduled_at")?.scheduled_ms))),
    impure("initiator", 0, 0, |h, _| Ok(Value::String(run(h, "initiator")?.initiator.to_owned()))),
    impure("attempt", 0, 0, |h, _| {
        h.attempt()
            .map(Value::from)
            .ok_or_else(|| "attempt() is known in a step's fields only".to_owned())
    }),
    // Marks a shell command's `${...}` as code (see `Template::raw_uses`); a value otherwise.
    f(RAW, 1, 1, |_, mut a| Ok(a.swap_remove(0))),
    f("keys", 1, 1, |_, a| match &a[0] {
        Value::Object(m) => Ok(Value::Array(m.keys().map(|k| Value::String(k.clone())).collect())),
        other => Err(format!("keys() needs a map, not {}", kind(other))),
    }),
];

impl Function {
    pub fn named(name: &str) -> Option<&'static Function> {
        FUNCTIONS.iter().find(|f| f.name == name)
    }

    pub fn names() -> impl Iterator<Item = &'static str> {
        FUNCTIONS.iter().map(|f| f.name)
    }

    pub fn call(&self, host: &dyn Host, args: Vec<Value>) -> Result<Value, String> {
        (self.call)(host, args)
    }
}

/// A value's type, for messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a float",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// A value as text: strings without quotes, the rest as JSON.
pub fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn text<'a>(v: &'a Value, function: &str) -> Result<&'a str, String> {
    v.as_str().ok_or_else(|| format!("{function}() needs a string, not {}", kind(v)))
}

fn list<'a>(v: &'a Value, function: &str) -> Result<&'a Vec<Value>, String> {
    v.as_array().ok_or_else(|| format!("{function}() needs a list, not {}", kind(v)))
}

fn integer(v: &Value, function: &str) -> Result<i64, String> {
    v.as_i64().ok_or_else(|| format!("{function}() needs an integer, not {}", kind(v)))
}

fn len(_: &dyn Host, a: Vec<Value>) -> Result<Value, String> {
    let n = match &a[0] {
        Value::String(s) => s.chars().count(),
        Value::Array(l) => l.len(),
        Value::Object(m) => m.len(),
        other => return Err(format!("len() needs a string, list or map, not {}", kind(other))),
    };
    Ok(Value::from(n))
}

fn contains(_: &dyn Host, a: Vec<Value>) -> Result<Value, String> {
    Ok(Value::Bool(match (&a[0], &a[1]) {
        (Value::String(s), Value::String(x)) => s.contains(x.as_str()),
        (Value::Array(l), x) => l.iter().any(|v| super::eval::equal(v, x)),
        (Value::Object(m), Value::String(k)) => m.contains_key(k),
        (container, x) => {
            return Err(format!("contains() cannot look for {} in {}", kind(x), kind(container)))
        }
    }))
}

fn to_int(_: &dyn Host, a: Vec<Value>) -> Result<Value, String> {
    match &a[0] {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f.trunc() as i64))
            .map(Value::from)
            .ok_or_else(|| format!("int(): {n} is out of range")),
        Value::String(s) => s
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("int(): `{s}` is not an integer")),
        Value::Bool(b) => Ok(Value::from(*b as i64)),
        other => Err(format!("int() needs a number or string, not {}", kind(other))),
    }
}

fn to_float(_: &dyn Host, a: Vec<Value>) -> Result<Value, String> {
    let f = match &a[0] {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    f.and_then(serde_json::Number::from_f64)
        .map(Value::Number)
        .ok_or_else(|| format!("float(): cannot convert {} to a float", plain(&a[0])))
}

fn extreme(a: Vec<Value>, name: &str, want: std::cmp::Ordering) -> Result<Value, String> {
    let items = match a.as_slice() {
        [Value::Array(l)] => l.clone(),
        _ => a,
    };
    let mut best: Option<Value> = None;
    for v in items {
        best = Some(match best {
            None => v,
            Some(b) => match super::eval::compare(&v, &b) {
                Some(o) if o == want => v,
                Some(_) => b,
                None => {
                    return Err(format!("{name}() cannot compare {} with {}", kind(&v), kind(&b)))
                }
            },
        });
    }
    best.ok_or_else(|| format!("{name}() of an empty list"))
}

fn sum(_: &dyn Host, a: Vec<Value>) -> Result<Value, String> {
    let mut total = Value::from(0);
    for v in list(&a[0], "sum")? {
        total = super::eval::arithmetic(super::parse::BinOp::Add, &total, v)?;
    }
    Ok(total)
}

/// Largest list `range` builds; longer ranges are for foreach, which does not build them.
const MAX_RANGE: i64 = 1_000_000;

fn range(_: &dyn Host, a: Vec<Value>) -> Result<Value, String> {
    let (start, end) = (integer(&a[0], "range")?, integer(&a[1], "range")?);
    let step = a.get(2).map(|s| integer(s, "range")).transpose()?.unwrap_or(1);
    let count = range_count(start, end, step)?;
    if count > MAX_RANGE as u64 {
        return Err(format!("range() of {count} items: at most {MAX_RANGE}"));
    }
    Ok(Value::Array((0..count as i64).map(|i| Value::from(start + i * step)).collect()))
}

/// `date_ints_between(from, to, days)`: the dates from `from` (included) to `to` (excluded),
/// `days` apart, as `yyyyMMdd` integers (`20200226`), the form Maestro's date ints take.
fn date_ints_between(_: &dyn Host, a: Vec<Value>) -> Result<Value, String> {
    const F: &str = "date_ints_between";
    let day = |v: &Value| {
        let n = match v {
            Value::String(s) => s.trim().parse::<i64>().ok(),
            other => other.as_i64(),
        }
        .ok_or_else(|| format!("{F}() needs a date int such as 20200226, not {v}"))?;
        date_int(n).ok_or_else(|| format!("{F}(): {n} is not a date int (yyyyMMdd)"))
    };
    let (from, to) = (day(&a[0])?, day(&a[1])?);
    let step = match &a[2] {
        Value::String(s) => s.trim().parse::<i64>().ok(),
        other => other.as_i64(),
    }
    .filter(|s| *s > 0)
    .ok_or_else(|| format!("{F}() needs a positive number of days, not {}", a[2]))?;
    let count = range_count(0, (to - from).num_days(), step)?;
    if count > MAX_RANGE as u64 {
        return Err(format!("{F}() of {count} dates: at most {MAX_RANGE}"));
    }
    let as_int = |d: NaiveDate| {
        use chrono::Datelike;
        Value::from(i64::from(d.year()) * 10_000 + i64::from(d.month()) * 100 + i64::from(d.day()))
    };
    Ok(Value::Array((0..count as i64).map(|i| as_int(from + Span::days(i * step))).collect()))
}

/// The date a `yyyyMMdd` integer names (`20200226`), if it names one: 8 digits, a valid day.
fn date_int(n: i64) -> Option<NaiveDate> {
    if !(10_000_101..=99_991_231).contains(&n) {
        return None;
    }
    let (y, m, d) = (n / 10_000, (n / 100 % 100) as u32, (n % 100) as u32);
    NaiveDate::from_ymd_opt(y as i32, m, d)
}

/// The number of items of `range(start, end, step)`.
pub(super) fn range_count(start: i64, end: i64, step: i64) -> Result<u64, String> {
    if step == 0 {
        return Err("range(): the step cannot be 0".into());
    }
    let (span, stride) = ((end as i128 - start as i128).abs(), (step as i128).abs());
    let forward = (step > 0 && end > start) || (step < 0 && end < start);
    Ok(if forward { ((span + stride - 1) / stride) as u64 } else { 0 })
}

/// The run a function reads, or why there is none.
fn run<'a>(host: &'a dyn Host, function: &str) -> Result<&'a super::RunContext, String> {
    host.run().ok_or_else(|| format!("{function}() is not known here: there is no run yet"))
}

/// An instant as expressions write it (`2026-11-24T10:00:00Z`).
fn moment(ms: u64) -> Value {
    Value::String(instant(ms).to_rfc3339_opts(SecondsFormat::Secs, true))
}

fn instant(ms: u64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms as i64).unwrap_or_default()
}

/// A date (`2026-11-24`) or an instant (`2026-11-24T10:00:00Z`), as expressions write them.
enum Moment {
    Date(NaiveDate),
    Instant(DateTime<Utc>),
}

impl Moment {
    fn parse(v: &Value, function: &str) -> Result<Moment, String> {
        // A date int (`20200101`, Maestro's form), as a number or as text.
        let digits = v
            .as_str()
            .map(str::trim)
            .filter(|s| s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()));
        if let Some(d) =
            v.as_i64().or_else(|| digits.and_then(|s| s.parse().ok())).and_then(date_int)
        {
            return Ok(Moment::Date(d));
        }
        // Milliseconds since the epoch, as `trigger.scheduled_time` is.
        if let Some(ms) = v.as_i64() {
            return DateTime::from_timestamp_millis(ms)
                .map(Moment::Instant)
                .ok_or_else(|| format!("{function}(): {ms} ms is out of range"));
        }
        let s = text(v, function)?.trim();
        if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            return Ok(Moment::Date(d));
        }
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Ok(Moment::Instant(t.with_timezone(&Utc)));
        }
        if let Ok(t) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S") {
            return Ok(Moment::Instant(t.and_utc()));
        }
        Err(format!(
            "{function}(): `{s}` is not a date (2026-11-24) or a time (2026-11-24T10:00:00Z)"
        ))
    }

    fn render(&self) -> String {
        match self {
            Moment::Date(d) => d.to_string(),
            Moment::Instant(t) => t.to_rfc3339_opts(SecondsFormat::Secs, true),
        }
    }

    fn instant(&self) -> DateTime<Utc> {
        match self {
            Moment::Date(d) => d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc(),
            Moment::Instant(t) => *t,
        }
    }
}

fn date_add(_: &dyn Host, a: Vec<Value>) -> Result<Value, String> {
    let moment = Moment::parse(&a[0], "date_add")?;
    let n = integer(&a[1], "date_add")?;
    let unit = text(&a[2], "date_add")?;
    let span = match unit.trim_end_matches('s') {
        "week" | "w" => Span::try_weeks(n),
        "day" | "d" => Span::try_days(n),
        "hour" | "h" => Span::try_hours(n),
        "minute" | "m" => Span::try_minutes(n),
        "second" | "" => Span::try_seconds(n),
        _ => {
            return Err(format!(
                "date_add(): unknown unit `{unit}` (use weeks, days, hours, minutes or seconds)"
            ))
        }
    }
    .ok_or_else(|| "date_add(): the amount is too large".to_string())?;
    let whole_days = span.num_seconds() % 86_400 == 0;
    let out = match moment {
        Moment::Date(d) if whole_days => {
            Moment::Date(d.checked_add_signed(span).ok_or("date_add(): out of range")?)
        }
        m => {
            Moment::Instant(m.instant().checked_add_signed(span).ok_or("date_add(): out of range")?)
        }
    };
    Ok(Value::String(out.render()))
}

/// `format_date(d, 'yyyy-MM-dd')`: Java-style patterns (yyyy yy MM dd HH mm ss EEE), with
/// text in single quotes taken as is. `d` is a date, a time, or milliseconds since the
/// epoch (`trigger.scheduled_time`); an IANA zone as third argument formats the local time
/// there (default UTC).
/// Milliseconds since the epoch of a time, or of a date's midnight in a zone (default UTC):
/// `epoch_ms(20200101, 'Europe/Paris')`.
fn epoch_ms(_: &dyn Host, a: Vec<Value>) -> Result<Value, String> {
    let ms = match (Moment::parse(&a[0], "epoch_ms")?, a.get(1)) {
        (Moment::Date(d), Some(zone)) => {
            let zone = crate::model::cron::parse_zone(Some(text(zone, "epoch_ms")?))
                .map_err(|e| format!("epoch_ms(): {e}"))?;
            let midnight = d.and_hms_opt(0, 0, 0).unwrap_or_default();
            // The first midnight, where a zone's clocks skip or repeat it.
            let local = midnight.and_local_timezone(zone);
            let at = local
                .earliest()
                .or_else(|| (midnight + Span::hours(1)).and_local_timezone(zone).earliest());
            at.ok_or_else(|| format!("epoch_ms(): {d} has no midnight in {zone}"))?
                .timestamp_millis()
        }
        (moment, _) => moment.instant().timestamp_millis(),
    };
    Ok(Value::from(ms))
}

fn format_date(_: &dyn Host, a: Vec<Value>) -> Result<Value, String> {
    let t = Moment::parse(&a[0], "format_date")?.instant();
    let pattern: Vec<char> = text(&a[1], "format_date")?.chars().collect();
    let mut chrono = String::new();
    let mut i = 0;
    while i < pattern.len() {
        let c = pattern[i];
        let run = pattern[i..].iter().take_while(|x| **x == c).count();
        match c {
            '\'' => {
                let close = pattern[i + 1..]
                    .iter()
                    .position(|x| *x == '\'')
                    .ok_or("format_date(): quote not closed")?;
                chrono.extend(pattern[i + 1..i + 1 + close].iter().flat_map(|x| {
                    if *x == '%' {
                        vec!['%', '%']
                    } else {
                        vec![*x]
                    }
                }));
                i += close + 2;
                continue;
            }
            'y' => chrono.push_str(if run == 2 { "%y" } else { "%Y" }),
            // Java's month and weekday names: `MMMM` September, `MMM` Sep.
            'M' if run >= 4 => chrono.push_str("%B"),
            'M' if run == 3 => chrono.push_str("%b"),
            'M' => chrono.push_str("%m"),
            'd' => chrono.push_str("%d"),
            'H' => chrono.push_str("%H"),
            'm' => chrono.push_str("%M"),
            's' => chrono.push_str("%S"),
            'E' if run >= 4 => chrono.push_str("%A"),
            'E' => chrono.push_str("%a"),
            '%' => chrono.push_str(&"%%".repeat(run)),
            c if c.is_ascii_alphabetic() => {
                return Err(format!("format_date(): unsupported pattern letter `{c}`"))
            }
            c => chrono.extend(std::iter::repeat_n(c, run)),
        }
        i += run;
    }
    let formatted = match a.get(2) {
        Some(zone) => {
            let zone = crate::model::cron::parse_zone(Some(text(zone, "format_date")?))
                .map_err(|e| format!("format_date(): {e}"))?;
            t.with_timezone(&zone).format(&chrono).to_string()
        }
        None => t.format(&chrono).to_string(),
    };
    Ok(Value::String(formatted))
}

/// An object built from pairs, for map literals.
pub fn object(pairs: Vec<(String, Value)>) -> Value {
    Value::Object(pairs.into_iter().collect::<Map<String, Value>>())
}
