//! Maestro's SEL (a sandboxed subset of Java) into Baton expressions, for the subset
//! definitions use: literals, names, `params.get(...)` and its relatives (`getFromStep`,
//! `getFromForeach`, `getFromSubworkflow`, `getFromSignal`), arithmetic,
//! comparisons, `&&`/`||`/`!`, ternaries, string concatenation, `Util.intsBetween`,
//! `Util.dateIntsBetween` and `Util.dateIntHourToTs`, Joda-Time's `new DateTime(...)` with the methods definitions
//! call on it, as one expression or a single `return expr;`. Anything else (statements,
//! other `new`, other classes) is refused with the reason; no Java runs.

/// What a name of an expression means where it stands: the Baton expression for it, or
/// why it has none.
pub(crate) trait Names {
    /// A bare name (`param2`, `i`) or `params.get('name')`.
    fn param(&self, name: &str) -> Result<String, String>;
    /// `params.getFromStep('step', 'param')`.
    fn of_step(&self, step: &str, param: &str) -> Result<String, String> {
        Ok(format!("{}.{param}", baton_core::expr::step_reference(step)))
    }
    /// `params.getFromSignal('signal', 'param')`: a param of the signal that started the run.
    fn of_signal(&self, _signal: &str, _param: &str) -> Result<String, String> {
        Err("`params.getFromSignal(...)` is not translated here".into())
    }
}

/// The Baton expression (the text inside `${...}`) for SEL `source`.
pub(crate) fn translate(source: &str, names: &dyn Names) -> Result<String, String> {
    let body = source.trim();
    let body = body.strip_prefix("return ").map(str::trim_start).unwrap_or(body);
    let body = body.strip_suffix(';').unwrap_or(body).trim();
    let tokens = lex(body)?;
    let mut parser = Parser { tokens, at: 0, names };
    let (text, _) = parser.expr()?;
    match parser.tokens.get(parser.at) {
        None => Ok(text),
        Some(Token::Punct(";")) => {
            Err("several statements; only one expression (or `return expr;`) is translated".into())
        }
        Some(t) => Err(format!(
            "unexpected {} after the expression (statements and declarations are not translated)",
            t.describe()
        )),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(String),
    Text(String),
    Name(String),
    Punct(&'static str),
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::Number(n) => format!("number {n}"),
            Token::Text(s) => format!("string '{s}'"),
            Token::Name(n) => format!("`{n}`"),
            Token::Punct(p) => format!("`{p}`"),
        }
    }
}

const PUNCTS: [&str; 24] = [
    "&&", "||", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "<", ">", "!", "?", ":", "(", ")",
    ",", ".", "[", "]", ";", "=",
];

fn lex(source: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = source.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let number: String = chars[start..i].iter().collect();
            // Java's long and double suffixes.
            if i < chars.len() && matches!(chars[i], 'L' | 'l' | 'D' | 'd') {
                i += 1;
            }
            tokens.push(Token::Number(number));
        } else if c == '\'' || c == '"' {
            let mut text = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(format!("a string opened with {c} is not closed")),
                    Some(&q) if q == c => break,
                    Some('\\') => {
                        let escaped = chars.get(i + 1).ok_or("a string ends in `\\`")?;
                        text.push(match escaped {
                            'n' => '\n',
                            't' => '\t',
                            other => *other,
                        });
                        i += 2;
                    }
                    Some(&other) => {
                        text.push(other);
                        i += 1;
                    }
                }
            }
            i += 1;
            tokens.push(Token::Text(text));
        } else if c.is_alphabetic() || c == '_' || c == '$' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            tokens.push(Token::Name(chars[start..i].iter().collect()));
        } else {
            let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let punct = PUNCTS
                .iter()
                .find(|p| rest.starts_with(**p))
                .ok_or_else(|| format!("`{c}` is not translated"))?;
            i += punct.chars().count();
            tokens.push(Token::Punct(punct));
        }
    }
    Ok(tokens)
}

/// Binding strength of what an expression's text holds at its top: a part is put in
/// parentheses where it binds more loosely than the place it goes.
type Level = u8;
const TERNARY: Level = 1;
const OR: Level = 2;
const AND: Level = 3;
const EQUALITY: Level = 4;
const RELATION: Level = 5;
const SUM: Level = 6;
const PRODUCT: Level = 7;
const UNARY: Level = 8;
const ATOM: Level = 9;

struct Parser<'a> {
    tokens: Vec<Token>,
    at: usize,
    names: &'a dyn Names,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn eat(&mut self, punct: &'static str) -> bool {
        let found = self.peek() == Some(&Token::Punct(punct));
        if found {
            self.at += 1;
        }
        found
    }

    fn expect(&mut self, punct: &'static str) -> Result<(), String> {
        if self.eat(punct) {
            Ok(())
        } else {
            Err(match self.peek() {
                Some(t) => format!("expected `{punct}`, found {}", t.describe()),
                None => format!("expected `{punct}` at the end"),
            })
        }
    }

    fn expr(&mut self) -> Result<(String, Level), String> {
        let condition = self.binary(OR)?;
        if !self.eat("?") {
            if self.eat("=") {
                return Err(
                    "an assignment (`=`) is a statement; only expressions are translated".into()
                );
            }
            return Ok(condition);
        }
        let (yes, _) = self.expr()?;
        self.expect(":")?;
        let (no, _) = self.expr()?;
        Ok((format!("{} ? {yes} : {no}", wrap(condition, OR)), TERNARY))
    }

    /// Left-associative binary operators from `level` up.
    fn binary(&mut self, level: Level) -> Result<(String, Level), String> {
        if level > PRODUCT {
            return self.unary();
        }
        let ops: &[&'static str] = match level {
            OR => &["||"],
            AND => &["&&"],
            EQUALITY => &["==", "!="],
            RELATION => &["<=", ">=", "<", ">"],
            SUM => &["+", "-"],
            _ => &["*", "/", "%"],
        };
        let mut left = self.binary(level + 1)?;
        while let Some(op) = ops.iter().copied().find(|op| self.peek() == Some(&Token::Punct(op))) {
            self.at += 1;
            let right = self.binary(level + 1)?;
            left = (format!("{} {op} {}", wrap(left, level), wrap(right, level + 1)), level);
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<(String, Level), String> {
        if self.eat("!") {
            let (operand, level) = self.unary()?;
            return Ok((format!("!{}", wrap((operand, level), UNARY)), UNARY));
        }
        if self.eat("-") {
            let (operand, level) = self.unary()?;
            return Ok((format!("-{}", wrap((operand, level), UNARY)), UNARY));
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<(String, Level), String> {
        let mut value = self.primary()?;
        loop {
            if self.eat("[") {
                let (index, _) = self.expr()?;
                self.expect("]")?;
                value = (format!("{}[{index}]", wrap(value, ATOM)), ATOM);
            } else if self.eat(".") {
                let method = self.name()?;
                return Err(format!("the method `.{method}(...)` is not translated"));
            } else {
                return Ok(value);
            }
        }
    }

    fn name(&mut self) -> Result<String, String> {
        match self.tokens.get(self.at).cloned() {
            Some(Token::Name(n)) => {
                self.at += 1;
                Ok(n)
            }
            Some(t) => Err(format!("expected a name, found {}", t.describe())),
            None => Err("expected a name at the end".into()),
        }
    }

    fn primary(&mut self) -> Result<(String, Level), String> {
        let Some(token) = self.tokens.get(self.at).cloned() else {
            return Err("the expression ends too early".into());
        };
        self.at += 1;
        match token {
            Token::Number(n) => Ok((n, ATOM)),
            Token::Text(s) => Ok((quote(&s), ATOM)),
            Token::Punct("(") => {
                let inner = self.expr()?;
                self.expect(")")?;
                Ok(inner)
            }
            Token::Punct(p) => Err(format!("unexpected `{p}`")),
            Token::Name(name) => match name.as_str() {
                "true" | "false" | "null" => Ok((name, ATOM)),
                "new" if self.peek() == Some(&Token::Name("DateTime".into())) => self.joda(),
                "new" => Err("`new` (a Java object) is not translated".into()),
                "params" => self.params(),
                "Util" => self.util(),
                _ if self.peek() == Some(&Token::Punct("(")) => {
                    Err(format!("the function `{name}(...)` is not translated"))
                }
                _ if self.peek() == Some(&Token::Punct(".")) => {
                    Err(format!("`{name}.` (a Java class or object) is not translated"))
                }
                _ => Ok((self.names.param(&name)?, ATOM)),
            },
        }
    }

    /// `params.get('x')`, `params['x']`, `params.getFromStep('s', 'x')`.
    fn params(&mut self) -> Result<(String, Level), String> {
        if self.eat("[") {
            let name = self.text()?;
            self.expect("]")?;
            return Ok((self.names.param(&name)?, ATOM));
        }
        self.expect(".")?;
        let method = self.name()?;
        let args = self.text_args()?;
        match (method.as_str(), args.as_slice()) {
            ("get", [name]) => Ok((self.names.param(name)?, ATOM)),
            ("getFromStep", [step, param]) => Ok((self.names.of_step(step, param)?, ATOM)),
            // A param of a step of the child run of a subworkflow step (its outputs).
            ("getFromSubworkflow", [sub, step, param]) => {
                Ok((format!("{}['{step}'].{param}", baton_core::expr::step_reference(sub)), ATOM))
            }
            ("getFromSignal", [signal, param]) => Ok((self.names.of_signal(signal, param)?, ATOM)),
            ("getFromSignal", _) => {
                Err("`params.getFromSignal(...)` takes the signal's name and the param's".into())
            }
            // The list of a param over the iterations of a foreach's body step.
            ("getFromForeach", [each, step, param]) => Ok((
                format!("{}.outputs['{step}'].{param}", baton_core::expr::step_reference(each)),
                ATOM,
            )),
            (other, _) => Err(format!("`params.{other}(...)` is not translated")),
        }
    }

    /// Joda-Time's `new DateTime(ms[, zone])` and the methods definitions call on it:
    /// `withZone`, `plus*`/`minus*`, `toString(pattern)`, `monthOfYear().getAsText()`,
    /// `getYear()`... The zone is UTC unless given (Maestro's hosts run in UTC).
    fn joda(&mut self) -> Result<(String, Level), String> {
        self.at += 1; // `DateTime`
        self.expect("(")?;
        let mut at = self.expr()?.0;
        let mut zone = match self.eat(",") {
            true => self.joda_zone()?,
            false => "UTC".to_owned(),
        };
        self.expect(")")?;
        loop {
            self.expect(".")
                .map_err(|_| "a Joda-Time `DateTime` itself is not translated; format it (`.toString('yyyyMMdd')`)".to_owned())?;
            let method = self.name()?;
            let format = |pattern: &str, zone: &str| {
                format!("format_date({at}, {}, {})", quote(pattern), quote(zone))
            };
            let number =
                |pattern: &str, zone: &str| (format!("int({})", format(pattern, zone)), ATOM);
            match method.as_str() {
                "withZone" => {
                    self.expect("(")?;
                    zone = self.joda_zone()?;
                    self.expect(")")?;
                }
                "toString" => {
                    self.expect("(")?;
                    let pattern = self.text()?;
                    self.expect(")")?;
                    return Ok((format(&pattern, &zone), ATOM));
                }
                "monthOfYear" | "dayOfWeek" => {
                    self.expect("(")?;
                    self.expect(")")?;
                    self.expect(".")?;
                    let long = match self.name()?.as_str() {
                        "getAsText" => true,
                        "getAsShortText" => false,
                        other => {
                            return Err(format!(
                                "Joda-Time `.{method}().{other}(...)` is not translated"
                            ))
                        }
                    };
                    self.expect("(")?;
                    self.expect(")")?;
                    let pattern = match (method.as_str(), long) {
                        ("monthOfYear", true) => "MMMM",
                        ("monthOfYear", false) => "MMM",
                        (_, true) => "EEEE",
                        (_, false) => "EEE",
                    };
                    return Ok((format(pattern, &zone), ATOM));
                }
                "getYear" | "getMonthOfYear" | "getDayOfMonth" | "getHourOfDay"
                | "getMinuteOfHour" => {
                    self.expect("(")?;
                    self.expect(")")?;
                    let pattern = match method.as_str() {
                        "getYear" => "yyyy",
                        "getMonthOfYear" => "MM",
                        "getDayOfMonth" => "dd",
                        "getHourOfDay" => "HH",
                        _ => "mm",
                    };
                    return Ok(number(pattern, &zone));
                }
                _ => {
                    let Some((sign, unit)) = joda_shift(&method) else {
                        return Err(format!("Joda-Time `.{method}(...)` is not translated"));
                    };
                    // Days in a zone with daylight saving are not always 24 hours long.
                    if matches!(unit, "days" | "weeks") && zone != "UTC" {
                        return Err(format!("Joda-Time `.{method}(...)` in zone {zone} is not translated (only in UTC)"));
                    }
                    self.expect("(")?;
                    let (n, level) = self.expr()?;
                    self.expect(")")?;
                    at = format!("date_add({at}, {sign}{}, '{unit}')", wrap((n, level), UNARY));
                }
            }
        }
    }

    /// `DateTimeZone.forID('Europe/Paris')` or `DateTimeZone.UTC`: the zone's name.
    fn joda_zone(&mut self) -> Result<String, String> {
        if self.name()? != "DateTimeZone" {
            return Err("a Joda-Time zone is translated as `DateTimeZone.forID('...')` only".into());
        }
        self.expect(".")?;
        match self.name()?.as_str() {
            "UTC" => Ok("UTC".into()),
            "forID" => {
                self.expect("(")?;
                let zone = self.text()?;
                self.expect(")")?;
                Ok(zone)
            }
            other => Err(format!("`DateTimeZone.{other}` is not translated")),
        }
    }

    /// `Util.intsBetween(a, b, s)`, `Util.dateIntsBetween(a, b, s)`.
    fn util(&mut self) -> Result<(String, Level), String> {
        self.expect(".")?;
        let method = self.name()?;
        let function = match method.as_str() {
            "intsBetween" => "range",
            "dateIntsBetween" => "date_ints_between",
            "dateIntHourToTs" => "",
            other => return Err(format!("`Util.{other}(...)` is not translated")),
        };
        self.expect("(")?;
        let mut args = Vec::new();
        if !self.eat(")") {
            loop {
                args.push(self.expr()?);
                if self.eat(")") {
                    break;
                }
                self.expect(",")?;
            }
        }
        if function.is_empty() {
            // The hour `hour` of day `date` in `zone`, `days` and `hours` later, in ms.
            let [date, hour, zone, days, hours] = <[_; 5]>::try_from(args)
                .map_err(|_| "`Util.dateIntHourToTs` takes 5 arguments".to_owned())?;
            let day = format!("date_add({}, {}, 'days')", date.0, days.0);
            let offset = format!("{} + {}", wrap(hour, SUM), wrap(hours, SUM + 1));
            return Ok((format!("epoch_ms({day}, {}) + ({offset}) * 3600000", zone.0), SUM));
        }
        let args: Vec<String> = args.into_iter().map(|a| a.0).collect();
        Ok((format!("{function}({})", args.join(", ")), ATOM))
    }

    fn text(&mut self) -> Result<String, String> {
        match self.tokens.get(self.at).cloned() {
            Some(Token::Text(s)) => {
                self.at += 1;
                Ok(s)
            }
            Some(t) => Err(format!("expected a quoted name, found {}", t.describe())),
            None => Err("expected a quoted name at the end".into()),
        }
    }

    /// `('a', 'b')`: arguments that must be string literals.
    fn text_args(&mut self) -> Result<Vec<String>, String> {
        self.expect("(")?;
        let mut args = Vec::new();
        if self.eat(")") {
            return Ok(args);
        }
        loop {
            args.push(
                self.text()
                    .map_err(|e| format!("{e} (names are translated only when written out)"))?,
            );
            if self.eat(")") {
                return Ok(args);
            }
            self.expect(",")?;
        }
    }
}

fn wrap((text, level): (String, Level), at_least: Level) -> String {
    if level < at_least {
        format!("({text})")
    } else {
        text
    }
}

/// Joda-Time's `plusDays`, `minusHours`...: the sign and the unit `date_add` takes.
fn joda_shift(method: &str) -> Option<(&'static str, &'static str)> {
    let (sign, unit) = match method.strip_prefix("plus") {
        Some(unit) => ("", unit),
        None => ("-", method.strip_prefix("minus")?),
    };
    let unit = match unit {
        "Weeks" => "weeks",
        "Days" => "days",
        "Hours" => "hours",
        "Minutes" => "minutes",
        "Seconds" => "seconds",
        _ => return None,
    };
    Some((sign, unit))
}

/// A Baton string literal.
pub(crate) fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Plain;
    impl Names for Plain {
        fn param(&self, name: &str) -> Result<String, String> {
            if name == "TARGET_RUN_DATE" {
                return Err(format!("Maestro's built-in param `{name}` has no Baton counterpart"));
            }
            Ok(name.to_owned())
        }
    }

    fn sel(source: &str) -> Result<String, String> {
        translate(source, &Plain)
    }

    #[test]
    fn the_subset_definitions_use_translates() {
        let cases = [
            ("i+1", "i + 1"),
            ("return x * (y + 2);", "x * (y + 2)"),
            ("params.get('param0')", "param0"),
            ("params['a'] + 'x'", "a + 'x'"),
            ("params.getFromStep('job.3', 'param2') > 0", "steps['job.3'].param2 > 0"),
            ("params.getFromStep('load', 'rows') >= 10", "load.rows >= 10"),
            ("params.getFromForeach('each', 'job.1', 'n')", "each.outputs['job.1'].n"),
            ("params.getFromSubworkflow('sub', 'job.1', 'n') + 1", "sub['job.1'].n + 1"),
            (
                "Util.dateIntHourToTs(d, h, 'UTC', 0, 1)/1000",
                "(epoch_ms(date_add(d, 0, 'days'), 'UTC') + (h + 1) * 3600000) / 1000",
            ),
            ("a < 0 || !(b == 'c') && c != 1L", "a < 0 || !(b == 'c') && c != 1"),
            ("x > 1 ? \"big\" : 'it''s'", ""),
            (
                "Util.dateIntsBetween(20200101, 20200110, 1);",
                "date_ints_between(20200101, 20200110, 1)",
            ),
            ("Util.intsBetween(0, n, 2)", "range(0, n, 2)"),
            ("a - (b - c)", "a - (b - c)"),
            ("(a - b) - c", "a - b - c"),
            ("true", "true"),
            ("245 > 123", "245 > 123"),
            (
                "new DateTime(1569018000000).withZone(DateTimeZone.forID('UTC')).monthOfYear().getAsText();",
                "format_date(1569018000000, 'MMMM', 'UTC')",
            ),
            (
                "new DateTime(ts).plusDays(n + 1).minusHours(2).toString('yyyyMMdd')",
                "format_date(date_add(date_add(ts, (n + 1), 'days'), -2, 'hours'), 'yyyyMMdd', 'UTC')",
            ),
            (
                "new DateTime(ts, DateTimeZone.forID('Asia/Tokyo')).getHourOfDay()",
                "int(format_date(ts, 'HH', 'Asia/Tokyo'))",
            ),
            ("new DateTime(ts).dayOfWeek().getAsShortText()", "format_date(ts, 'EEE', 'UTC')"),
        ];
        for (source, want) in cases {
            if want.is_empty() {
                assert!(sel(source).is_err(), "{source}");
            } else {
                assert_eq!(sel(source).as_deref(), Ok(want), "{source}");
            }
        }
        assert_eq!(sel("x > 1 ? \"big\" : 'small'").unwrap(), "x > 1 ? 'big' : 'small'");
    }

    #[test]
    fn what_is_not_translated_is_refused_with_the_reason() {
        let cases = [
            ("new DateTime(1569018000000).monthOfYear()", "expected `.`"),
            ("new DateTime(1)", "a Joda-Time `DateTime` itself"),
            ("new DateTime(1).withZone(DateTimeZone.forID('Europe/Paris')).plusDays(1).getYear()", "only in UTC"),
            ("new DateTime(1).getMillis()", "`.getMillis(...)`"),
            ("new Date()", "`new`"),
            ("return UUID.randomUUID().toString();", "`UUID.`"),
            ("x = 1", "assignment"),
            ("int a = 1; return a;", "not translated"),
            ("a; b", "several statements"),
            ("params.getFromSignal('foo')", "`params.getFromSignal(...)`"),
            ("params.get(name)", "written out"),
            ("Util.tsToDateInt(1)", "`Util.tsToDateInt(...)`"),
            ("TARGET_RUN_DATE + '00'", "built-in param"),
            ("x.length()", "`x.`"),
            ("(x).length()", "`.length(...)`"),
            ("'open", "not closed"),
        ];
        for (source, reason) in cases {
            let error = sel(source).expect_err(source);
            assert!(error.contains(reason), "{source}: {error}");
        }
    }
}
