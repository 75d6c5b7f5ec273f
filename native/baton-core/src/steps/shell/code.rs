//! How values enter a shell step's `command`: as data, never as shell code.
//!
//! A `${...}` in a command does not paste its value into the code. Each value goes to the
//! command in an environment variable (`BATON_VALUE_0`, `BATON_VALUE_1`, ...) and the code
//! refers to the variable, quoted for where the `${...}` stands, so that the shell reads the
//! value as the same text it was, whatever it holds (`; rm -rf /`, `$(...)`, quotes):
//!
//! | where the `${...}` is                 | what the shell sees         |
//! | ------------------------------------- | --------------------------- |
//! | outside quotes: `echo ${date}`        | `echo "${BATON_VALUE_0}"`   |
//! | in double quotes: `echo "at ${date}"` | `echo "at ${BATON_VALUE_0}"`|
//! | in single quotes: `echo 'at ${date}'` | `echo 'at '"${BATON_VALUE_0}"''` |
//! | in a here-document: `<<EOF`           | `${BATON_VALUE_0}`          |
//! | in a quoted here-document: `<<'EOF'`  | the value itself (no expansion happens there) |
//! | in arithmetic: `$(( ${n} + 1 ))`      | `$(( ${BATON_VALUE_0} + 1 ))` |
//!
//! So `echo "loading ${date}"` still prints `loading 2026-11-24`, and a value with spaces
//! outside quotes is one word, not several.
//!
//! Code that is meant to be computed says so: `${raw(flags)}` is written into the code as
//! it is (validation warns when its value can come from a run's params or a signal).

use crate::expr::{Piece, Scope, Template, TemplateError};

/// A command ready for `sh -c`: its code, and the variables its values travel in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ShellCommand {
    /// The code, with every value referred to by its variable.
    pub(crate) code: String,
    /// The variables, by name, in order.
    pub(crate) values: Vec<(String, String)>,
}

/// Where the shell reader is in the code.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Context {
    /// Outside quotes (the top level, or inside `$(...)`, counting parentheses).
    Unquoted {
        parens: usize,
    },
    Double,
    Single,
    Backtick,
    /// `$(( ... ))`, counting parentheses.
    Arithmetic {
        parens: usize,
    },
    /// The body of a here-document, until a line that is its delimiter.
    Heredoc {
        delimiter: String,
        quoted: bool,
        strip_tabs: bool,
        line: String,
    },
}

/// Reads shell code a character at a time, to know the context each value falls in.
struct Reader {
    stack: Vec<Context>,
    /// Here-documents whose bodies start at the next line.
    pending: Vec<Context>,
    /// The character just read, for two-character operators (`$(`, `<<`).
    previous: Option<char>,
    escaped: bool,
}

impl Reader {
    fn new() -> Self {
        Reader {
            stack: vec![Context::Unquoted { parens: 0 }],
            pending: Vec::new(),
            previous: None,
            escaped: false,
        }
    }

    fn context(&self) -> &Context {
        // The stack is never empty: the bottom is the top level, which nothing pops.
        self.stack.last().unwrap_or(&Context::Unquoted { parens: 0 })
    }

    /// Reads one piece of the code, going on from where the last piece ended.
    fn read(&mut self, text: &str) {
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            i += 1;
            if let Some(Context::Heredoc { .. }) = self.stack.last() {
                self.heredoc_char(c);
                continue;
            }
            if self.escaped {
                self.escaped = false;
                self.previous = None;
                continue;
            }
            let previous = self.previous.replace(c);
            match self.context().clone() {
                Context::Single => {
                    if c == '\'' {
                        self.stack.pop();
                    }
                }
                Context::Double => match c {
                    '\\' => self.escaped = true,
                    '"' => {
                        self.stack.pop();
                    }
                    '`' => self.stack.push(Context::Backtick),
                    '(' if previous == Some('$') => self.open_dollar_paren(&chars, &mut i),
                    _ => {}
                },
                Context::Backtick => match c {
                    '\\' => self.escaped = true,
                    '`' => {
                        self.stack.pop();
                    }
                    '\'' => self.stack.push(Context::Single),
                    '"' => self.stack.push(Context::Double),
                    _ => {}
                },
                Context::Arithmetic { parens } => match c {
                    '(' => self.set_top(Context::Arithmetic { parens: parens + 1 }),
                    ')' if parens == 0 => {
                        // `))`: the second closes the arithmetic.
                        if chars.get(i) == Some(&')') {
                            i += 1;
                        }
                        self.stack.pop();
                    }
                    ')' => self.set_top(Context::Arithmetic { parens: parens - 1 }),
                    _ => {}
                },
                Context::Unquoted { parens } => match c {
                    '\\' => self.escaped = true,
                    '\'' => self.stack.push(Context::Single),
                    '"' => self.stack.push(Context::Double),
                    '`' => self.stack.push(Context::Backtick),
                    '(' if previous == Some('$') => self.open_dollar_paren(&chars, &mut i),
                    '(' => self.set_top(Context::Unquoted { parens: parens + 1 }),
                    ')' if parens > 0 => self.set_top(Context::Unquoted { parens: parens - 1 }),
                    ')' if self.stack.len() > 1 => {
                        self.stack.pop();
                    }
                    '<' if previous == Some('<') => {
                        let (heredoc, used) = delimiter(&chars[i..]);
                        self.pending.extend(heredoc);
                        i += used;
                        self.previous = None;
                    }
                    '\n' => self.start_heredocs(),
                    _ => {}
                },
                Context::Heredoc { .. } => {}
            }
        }
    }

    fn set_top(&mut self, context: Context) {
        if let Some(top) = self.stack.last_mut() {
            *top = context;
        }
    }

    /// After `$(`: a command substitution, or `$((`, arithmetic.
    fn open_dollar_paren(&mut self, chars: &[char], i: &mut usize) {
        if chars.get(*i) == Some(&'(') {
            *i += 1;
            self.stack.push(Context::Arithmetic { parens: 0 });
        } else {
            self.stack.push(Context::Unquoted { parens: 0 });
        }
        self.previous = None;
    }

    fn start_heredocs(&mut self) {
        // Bodies follow one another, the first declared first.
        for heredoc in std::mem::take(&mut self.pending).into_iter().rev() {
            self.stack.push(heredoc);
        }
    }

    fn heredoc_char(&mut self, c: char) {
        let Some(Context::Heredoc { delimiter, strip_tabs, line, .. }) = self.stack.last_mut()
        else {
            return;
        };
        if c != '\n' {
            line.push(c);
            return;
        }
        let ends =
            if *strip_tabs { line.trim_start_matches('\t') } else { line.as_str() } == delimiter;
        line.clear();
        if ends {
            self.stack.pop();
        }
    }

    /// How a value is written where the reader is, and whether it needs its variable: a
    /// reference to the variable `name`, or, where nothing expands, the value itself.
    fn reference(&mut self, name: &str, value: &str) -> Result<(String, bool), String> {
        let written = match self.context() {
            Context::Unquoted { .. } | Context::Backtick => format!("\"${{{name}}}\""),
            Context::Double | Context::Arithmetic { .. } => format!("${{{name}}}"),
            Context::Single => format!("'\"${{{name}}}\"'"),
            Context::Heredoc { quoted: false, .. } => format!("${{{name}}}"),
            Context::Heredoc { quoted: true, delimiter, line, .. } => {
                // Nothing expands in a quoted here-document: the value is written as it is,
                // unless a line of it would end the document early and run what follows.
                let mut lines = value.split('\n');
                let first = format!("{line}{}", lines.next().unwrap_or_default());
                if std::iter::once(first.as_str()).chain(lines).any(|l| l == delimiter) {
                    return Err(format!(
                        "a value holds the line `{delimiter}`, which would end its here-document"
                    ));
                }
                let value = value.to_owned();
                // The value's text is part of the document now: keep reading it as such.
                self.read(&value);
                return Ok((value, false));
            }
        };
        Ok((written, true))
    }
}

/// The delimiter of a here-document after `<<` (or `<<-`), and how many characters it took.
fn delimiter(chars: &[char]) -> (Option<Context>, usize) {
    let mut i = 0;
    let strip_tabs = chars.first() == Some(&'-');
    if strip_tabs {
        i += 1;
    }
    while chars.get(i).is_some_and(|c| *c == ' ' || *c == '\t') {
        i += 1;
    }
    let mut word = String::new();
    let mut quoted = false;
    let mut quote: Option<char> = None;
    while let Some(&c) = chars.get(i) {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quoted = true;
                quote = Some(c);
            }
            (None, '\\') => quoted = true,
            (None, c) if c.is_whitespace() || ";|&<>()".contains(c) => break,
            (None, c) => word.push(c),
        }
        i += 1;
    }
    if word.is_empty() {
        return (None, i);
    }
    let heredoc = Context::Heredoc { delimiter: word, quoted, strip_tabs, line: String::new() };
    (Some(heredoc), i)
}

/// The code of `template` for `sh -c`, with each `${...}` as a variable quoted for its place.
pub(crate) fn render(
    template: &Template,
    scope: &dyn Scope,
) -> Result<ShellCommand, TemplateError> {
    let mut reader = Reader::new();
    let mut command = ShellCommand { code: String::new(), values: Vec::new() };
    for piece in template.render_pieces(scope)? {
        match piece {
            Piece::Text(text) => {
                reader.read(text);
                command.code.push_str(text);
            }
            // The author asked for this value to be code: it is read as such.
            Piece::Code(code) => {
                reader.read(&code);
                command.code.push_str(&code);
            }
            Piece::Value(value) => {
                let name = format!("BATON_VALUE_{}", command.values.len());
                let (written, referred) = reader
                    .reference(&name, &value)
                    .map_err(|message| TemplateError { column: 0, message })?;
                command.code.push_str(&written);
                if referred {
                    command.values.push((name, value));
                }
            }
        }
    }
    Ok(command)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// `v` is a value an attacker chose; `n` a number.
    struct Names;
    impl Scope for Names {
        fn name(&self, name: &str) -> Option<Value> {
            match name {
                "v" => Some(json!("x; touch pwned; $(touch pwned) `touch pwned` ' \" \\ * EOF")),
                "date" => Some(json!("2026-11-24")),
                "n" => Some(json!(41)),
                _ => None,
            }
        }
        fn now_ms(&self) -> u64 {
            0
        }
    }

    /// What `sh -c` prints for `command`, run in a fresh directory; fails if a file
    /// `pwned` appeared there.
    fn run(command: &str) -> String {
        let template = Template::parse(command).unwrap();
        let shell = render(&template, &Names).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&shell.code)
            .envs(shell.values.iter().map(|(k, v)| (k, v)))
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(!dir.path().join("pwned").exists(), "{command} ran code: {}", shell.code);
        assert!(out.status.success(), "{}: {}", shell.code, String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    const V: &str = "x; touch pwned; $(touch pwned) `touch pwned` ' \" \\ * EOF";

    #[test]
    fn a_value_is_the_same_text_wherever_it_stands() {
        assert_eq!(run("echo ${v}"), format!("{V}\n"));
        assert_eq!(run("echo \"at ${v}!\""), format!("at {V}!\n"));
        assert_eq!(run("echo 'at ${v}!'"), format!("at {V}!\n"));
        assert_eq!(run("printf '%s|' ${v} ${date}"), format!("{V}|2026-11-24|"));
        assert_eq!(run("echo $(echo ${v})"), format!("{V}\n"));
        assert_eq!(run("echo \"$(echo \"${v}\")\""), format!("{V}\n"));
        assert_eq!(run("echo `echo ${v}`"), format!("{V}\n"));
        assert_eq!(run("echo $(( ${n} + 1 ))"), "42\n");
        assert_eq!(
            run("cat <<EOF\nat ${v}\nEOF\necho after ${date}"),
            format!("at {V}\nafter 2026-11-24\n")
        );
        assert_eq!(run("cat <<'END'\nat ${v}\nEND\necho ${date}"), format!("at {V}\n2026-11-24\n"));
        assert_eq!(run("cat <<-EOF\n\tat ${v}\n\tEOF\n"), format!("at {V}\n"));
    }

    #[test]
    fn only_values_written_as_variables_travel_in_one() {
        let template = Template::parse("cat <<'END'\n${v}\nEND\necho ${date}").unwrap();
        let shell = render(&template, &Names).unwrap();
        assert_eq!(shell.values, [("BATON_VALUE_0".to_string(), "2026-11-24".to_string())]);
        assert!(shell.code.ends_with("echo \"${BATON_VALUE_0}\""), "{}", shell.code);
    }

    #[test]
    fn raw_values_are_code_because_their_author_said_so() {
        assert_eq!(run("echo ${raw('-n')} x${v}"), format!("x{V}"));
        let template = Template::parse("echo ${raw(date)} ${date}").unwrap();
        let shell = render(&template, &Names).unwrap();
        assert_eq!(shell.code, "echo 2026-11-24 \"${BATON_VALUE_0}\"");
    }

    #[test]
    fn templates_keep_meaning_what_they_meant() {
        assert_eq!(run("echo \"loading ${date}\""), "loading 2026-11-24\n");
        assert_eq!(run("echo loading ${date} # ${date}"), "loading 2026-11-24\n");
        assert_eq!(run("x=${n}; echo $((x * 2))"), "82\n");
        // `$${...}` is the shell's own `${date}`, unset in the step.
        assert_eq!(run("echo literal $${date}"), "literal\n");
    }

    #[test]
    fn a_value_that_would_end_a_quoted_here_document_is_refused() {
        struct Ends;
        impl Scope for Ends {
            fn name(&self, _: &str) -> Option<Value> {
                Some(json!("text\nEND\ntouch pwned"))
            }
            fn now_ms(&self) -> u64 {
                0
            }
        }
        let template = Template::parse("cat <<'END'\n${v}\nEND\n").unwrap();
        let err = render(&template, &Ends).unwrap_err();
        assert!(err.message.contains("holds the line `END`"), "{}", err.message);
    }
}
