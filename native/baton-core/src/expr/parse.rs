//! Parsing expressions into a tree. Columns count characters from 1 in the whole field.

use super::functions::Function;
use serde_json::Value;
use std::fmt;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub node: Node,
    /// Where the expression starts in its field, from 1.
    pub column: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Literal(Value),
    /// A parameter, a step (its outputs), or a name the evaluation scope binds.
    Name(String),
    List(Vec<Expr>),
    Map(Vec<(String, Expr)>),
    Member(Box<Expr>, String),
    Index(Box<Expr>, Box<Expr>),
    Call(&'static Function, Vec<Expr>),
    Not(Box<Expr>),
    Negate(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Conditional(Box<Expr>, Box<Expr>, Box<Expr>),
}

/// The name under which `steps['id']` reaches a step whose id is no plain name.
pub const STEPS: &str = "steps";

/// Whether `name` reads as a name in an expression (`date`, `extract`), not `steps['job.1']`.
pub(super) fn is_plain_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_')
        && !matches!(name, "true" | "false" | "null")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
        }
    }
}

/// A syntax error at a column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub column: usize,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(Value),
    Str(String),
    Ident(String),
    Punct(&'static str),
    End,
}

const PUNCTS: [&str; 24] = [
    "==", "!=", "<=", ">=", "&&", "||", "+", "-", "*", "/", "%", "<", ">", "!", "?", ":", "(", ")",
    "[", "]", "{", "}", ",", ".",
];

/// Parses one expression of `chars[start..]` up to a closing `}` at depth 0 (for `${...}`);
/// returns it and the index just after the `}`.
pub fn parse_embedded(chars: &[char], start: usize) -> Result<(Expr, usize), SyntaxError> {
    let mut p = Parser {
        chars,
        pos: start,
        tok: Tok::End,
        tok_col: 0,
        tok_end: start,
        tokens: 0,
        depth: 0,
    };
    p.advance()?;
    let expr = p.expr()?;
    if p.tok != Tok::Punct("}") {
        return Err(p.error(format!("expected `}}` to close `${{`, found {}", p.describe())));
    }
    Ok((expr, p.tok_end))
}

struct Parser<'a> {
    chars: &'a [char],
    pos: usize,
    tok: Tok,
    /// Column of the current token, from 1.
    tok_col: usize,
    /// Index just after the current token.
    tok_end: usize,
    /// Tokens read so far: bounds the size of the tree.
    tokens: usize,
    /// How deep in the tree the current token is (at most): bounds the recursion of
    /// parsing, and of everything that walks the tree.
    depth: usize,
}

/// Most tokens in one `${...}`; it keeps evaluation's recursion shallow.
const MAX_TOKENS: usize = 1000;

/// Most levels of the tree: expressions in one another (brackets, arguments, `!`, `-`,
/// `?:`) and operators in a chain (`a + b + c`). The parser recurses through a dozen
/// functions for each level, and a JVM thread validating a definition has 1 MiB of stack.
const MAX_DEPTH: usize = 32;

impl Parser<'_> {
    fn error(&self, message: String) -> SyntaxError {
        SyntaxError { column: self.tok_col, message }
    }

    fn describe(&self) -> String {
        match &self.tok {
            Tok::Num(n) => format!("`{n}`"),
            Tok::Str(s) => format!("'{s}'"),
            Tok::Ident(i) => format!("`{i}`"),
            Tok::Punct(p) => format!("`{p}`"),
            Tok::End => "the end of the text".into(),
        }
    }

    fn advance(&mut self) -> Result<(), SyntaxError> {
        self.tokens += 1;
        if self.tokens > MAX_TOKENS {
            return Err(self.error(format!(
                "the expression is too long (more than {MAX_TOKENS} tokens); split it"
            )));
        }
        let c = self.chars;
        while self.pos < c.len() && c[self.pos].is_whitespace() {
            self.pos += 1;
        }
        self.tok_col = self.pos + 1;
        if self.pos >= c.len() {
            self.tok = Tok::End;
            self.tok_end = self.pos;
            return Ok(());
        }
        let ch = c[self.pos];
        let start = self.pos;
        self.tok = if ch.is_ascii_digit() {
            while self.pos < c.len() && c[self.pos].is_ascii_digit() {
                self.pos += 1;
            }
            let float =
                self.pos + 1 < c.len() && c[self.pos] == '.' && c[self.pos + 1].is_ascii_digit();
            if float {
                self.pos += 1;
                while self.pos < c.len() && c[self.pos].is_ascii_digit() {
                    self.pos += 1;
                }
            }
            let text: String = c[start..self.pos].iter().collect();
            let value = if float {
                text.parse::<f64>().ok().and_then(serde_json::Number::from_f64).map(Value::Number)
            } else {
                text.parse::<i64>().ok().map(Value::from)
            };
            Tok::Num(value.ok_or_else(|| SyntaxError {
                column: start + 1,
                message: format!("number `{text}` is out of range"),
            })?)
        } else if ch == '\'' || ch == '"' {
            self.pos += 1;
            let mut s = String::new();
            loop {
                let Some(&x) = c.get(self.pos) else {
                    return Err(SyntaxError {
                        column: start + 1,
                        message: format!("string not closed by {ch}"),
                    });
                };
                self.pos += 1;
                match x {
                    '\\' => {
                        let esc = c.get(self.pos).copied().unwrap_or('\\');
                        self.pos += 1;
                        s.push(match esc {
                            'n' => '\n',
                            't' => '\t',
                            other => other,
                        });
                    }
                    x if x == ch => break,
                    x => s.push(x),
                }
            }
            Tok::Str(s)
        } else if ch.is_alphabetic() || ch == '_' {
            while self.pos < c.len() && (c[self.pos].is_alphanumeric() || c[self.pos] == '_') {
                self.pos += 1;
            }
            Tok::Ident(c[start..self.pos].iter().collect())
        } else {
            let rest: String = c[start..c.len().min(start + 2)].iter().collect();
            let punct = PUNCTS.iter().find(|p| rest.starts_with(**p)).ok_or_else(|| {
                SyntaxError { column: start + 1, message: format!("unexpected character `{ch}`") }
            })?;
            self.pos += punct.chars().count();
            Tok::Punct(punct)
        };
        self.tok_end = self.pos;
        Ok(())
    }

    fn eat(&mut self, punct: &str) -> Result<bool, SyntaxError> {
        if self.tok
            == Tok::Punct(match PUNCTS.iter().find(|p| **p == punct) {
                Some(p) => p,
                None => return Ok(false),
            })
        {
            self.advance()?;
            return Ok(true);
        }
        Ok(false)
    }

    fn expect(&mut self, punct: &str) -> Result<(), SyntaxError> {
        if !self.eat(punct)? {
            return Err(self.error(format!("expected `{punct}`, found {}", self.describe())));
        }
        Ok(())
    }

    /// One level deeper in the tree, if there is room for it.
    fn deepen(&mut self) -> Result<(), SyntaxError> {
        if self.depth == MAX_DEPTH {
            return Err(self
                .error(format!("the expression nests deeper than {MAX_DEPTH} levels; split it")));
        }
        self.depth += 1;
        Ok(())
    }

    /// Parses one level deeper in the tree.
    fn nested(
        &mut self,
        parse: impl FnOnce(&mut Self) -> Result<Expr, SyntaxError>,
    ) -> Result<Expr, SyntaxError> {
        let depth = self.depth;
        self.deepen()?;
        let expr = parse(self);
        self.depth = depth;
        expr
    }

    fn expr(&mut self) -> Result<Expr, SyntaxError> {
        self.nested(Self::conditional)
    }

    fn conditional(&mut self) -> Result<Expr, SyntaxError> {
        let cond = self.or()?;
        if self.eat("?")? {
            let yes = self.expr()?;
            self.expect(":")?;
            let no = self.expr()?;
            let column = cond.column;
            return Ok(Expr {
                node: Node::Conditional(Box::new(cond), Box::new(yes), Box::new(no)),
                column,
            });
        }
        Ok(cond)
    }

    fn or(&mut self) -> Result<Expr, SyntaxError> {
        let (mut left, depth) = (self.and()?, self.depth);
        while self.eat("||")? {
            self.deepen()?;
            let right = self.and()?;
            let column = left.column;
            left = Expr { node: Node::Or(Box::new(left), Box::new(right)), column };
        }
        self.depth = depth;
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, SyntaxError> {
        let (mut left, depth) = (self.binary(0)?, self.depth);
        while self.eat("&&")? {
            self.deepen()?;
            let right = self.binary(0)?;
            let column = left.column;
            left = Expr { node: Node::And(Box::new(left), Box::new(right)), column };
        }
        self.depth = depth;
        Ok(left)
    }

    /// Binary operators by precedence level: equality, comparison, sum, product.
    fn binary(&mut self, level: usize) -> Result<Expr, SyntaxError> {
        const LEVELS: [&[(&str, BinOp)]; 4] = [
            &[("==", BinOp::Eq), ("!=", BinOp::Ne)],
            &[("<=", BinOp::Le), (">=", BinOp::Ge), ("<", BinOp::Lt), (">", BinOp::Gt)],
            &[("+", BinOp::Add), ("-", BinOp::Sub)],
            &[("*", BinOp::Mul), ("/", BinOp::Div), ("%", BinOp::Rem)],
        ];
        if level == LEVELS.len() {
            return self.unary();
        }
        let (mut left, depth) = (self.binary(level + 1)?, self.depth);
        'outer: loop {
            for (symbol, op) in LEVELS[level] {
                if self.eat(symbol)? {
                    self.deepen()?;
                    let right = self.binary(level + 1)?;
                    let column = left.column;
                    left =
                        Expr { node: Node::Binary(*op, Box::new(left), Box::new(right)), column };
                    continue 'outer;
                }
            }
            self.depth = depth;
            return Ok(left);
        }
    }

    fn unary(&mut self) -> Result<Expr, SyntaxError> {
        let column = self.tok_col;
        if self.eat("!")? {
            return Ok(Expr { node: Node::Not(Box::new(self.nested(Self::unary)?)), column });
        }
        if self.eat("-")? {
            return Ok(Expr { node: Node::Negate(Box::new(self.nested(Self::unary)?)), column });
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Expr, SyntaxError> {
        let (mut e, depth) = (self.primary()?, self.depth);
        // `steps['job.1']` names the step `job.1`, whose id is no plain name.
        let mut by_id = matches!(&e.node, Node::Name(n) if n == STEPS);
        loop {
            // Errors in `a.b` and `a[i]` point at `a`.
            let column = e.column;
            if matches!(self.tok, Tok::Punct("." | "[")) {
                self.deepen()?;
            }
            if self.eat(".")? {
                let Tok::Ident(name) = self.tok.clone() else {
                    return Err(
                        self.error(format!("expected a name after `.`, found {}", self.describe()))
                    );
                };
                self.advance()?;
                e = Expr { node: Node::Member(Box::new(e), name), column };
            } else if self.eat("[")? {
                let index = self.expr()?;
                self.expect("]")?;
                e = match (std::mem::take(&mut by_id), index.node) {
                    (true, Node::Literal(Value::String(id))) => {
                        Expr { node: Node::Name(id), column }
                    }
                    (true, _) => {
                        return Err(SyntaxError {
                            column: index.column,
                            message: format!(
                                "`{STEPS}[...]` takes a step id in quotes, as `{STEPS}['job.1']`"
                            ),
                        })
                    }
                    (false, node) => {
                        let index = Expr { node, column: index.column };
                        Expr { node: Node::Index(Box::new(e), Box::new(index)), column }
                    }
                };
            } else {
                self.depth = depth;
                return Ok(e);
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, SyntaxError> {
        let column = self.tok_col;
        let node = match self.tok.clone() {
            Tok::Num(n) => {
                self.advance()?;
                Node::Literal(n)
            }
            Tok::Str(s) => {
                self.advance()?;
                Node::Literal(Value::String(s))
            }
            Tok::Ident(name) => {
                self.advance()?;
                match name.as_str() {
                    "true" => Node::Literal(Value::Bool(true)),
                    "false" => Node::Literal(Value::Bool(false)),
                    "null" => Node::Literal(Value::Null),
                    _ if self.tok == Tok::Punct("(") => return self.call(name, column),
                    _ => Node::Name(name),
                }
            }
            Tok::Punct("(") => {
                self.advance()?;
                let inner = self.expr()?;
                self.expect(")")?;
                return Ok(inner);
            }
            Tok::Punct("[") => {
                self.advance()?;
                let mut items = Vec::new();
                while !self.eat("]")? {
                    items.push(self.expr()?);
                    if !self.eat(",")? {
                        self.expect("]")?;
                        break;
                    }
                }
                Node::List(items)
            }
            Tok::Punct("{") => {
                self.advance()?;
                let mut entries = Vec::new();
                while !self.eat("}")? {
                    let key = match self.tok.clone() {
                        Tok::Ident(k) | Tok::Str(k) => k,
                        _ => {
                            return Err(
                                self.error(format!("expected a key, found {}", self.describe()))
                            )
                        }
                    };
                    self.advance()?;
                    self.expect(":")?;
                    entries.push((key, self.expr()?));
                    if !self.eat(",")? {
                        self.expect("}")?;
                        break;
                    }
                }
                Node::Map(entries)
            }
            _ => return Err(self.error(format!("expected a value, found {}", self.describe()))),
        };
        Ok(Expr { node, column })
    }

    fn call(&mut self, name: String, column: usize) -> Result<Expr, SyntaxError> {
        let function = Function::named(&name).ok_or_else(|| {
            let hint = crate::error::did_you_mean(&name, Function::names());
            SyntaxError { column, message: format!("unknown function `{name}`{hint}") }
        })?;
        self.expect("(")?;
        let mut args = Vec::new();
        while !self.eat(")")? {
            args.push(self.expr()?);
            if !self.eat(",")? {
                self.expect(")")?;
                break;
            }
        }
        if args.len() < function.min_args || args.len() > function.max_args {
            let wanted = match (function.min_args, function.max_args) {
                (a, b) if a == b => format!("{a}"),
                (a, usize::MAX) => format!("at least {a}"),
                (a, b) => format!("{a} to {b}"),
            };
            return Err(SyntaxError {
                column,
                message: format!("`{name}` takes {wanted} argument(s), not {}", args.len()),
            });
        }
        Ok(Expr { node: Node::Call(function, args), column })
    }
}

/// The expression as source text, fully parenthesised: parsing it gives the same tree
/// (columns aside).
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn list(f: &mut fmt::Formatter<'_>, items: &[Expr]) -> fmt::Result {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{item}")?;
            }
            Ok(())
        }
        match &self.node {
            Node::Literal(Value::String(s)) => write!(f, "{}", quote(s)),
            Node::Literal(v) => write!(f, "{v}"),
            Node::Name(n) if is_plain_name(n) => f.write_str(n),
            Node::Name(n) => write!(f, "{STEPS}[{}]", quote(n)),
            Node::List(items) => {
                f.write_str("[")?;
                list(f, items)?;
                f.write_str("]")
            }
            Node::Map(entries) => {
                f.write_str("{")?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}: {v}", quote(k))?;
                }
                f.write_str("}")
            }
            Node::Member(x, key) => write!(f, "{x}.{key}"),
            Node::Index(x, i) => write!(f, "{x}[{i}]"),
            Node::Call(function, args) => {
                write!(f, "{}(", function.name)?;
                list(f, args)?;
                f.write_str(")")
            }
            Node::Not(x) => write!(f, "(!{x})"),
            Node::Negate(x) => write!(f, "(-{x})"),
            Node::Binary(op, a, b) => write!(f, "({a} {} {b})", op.symbol()),
            Node::And(a, b) => write!(f, "({a} && {b})"),
            Node::Or(a, b) => write!(f, "({a} || {b})"),
            Node::Conditional(c, a, b) => write!(f, "({c} ? {a} : {b})"),
        }
    }
}

/// A string literal that reads back as `s`.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}
