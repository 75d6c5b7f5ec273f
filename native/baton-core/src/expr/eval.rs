//! Evaluation in a sandbox: no I/O, and a budget of steps and memory per evaluation, so a
//! runaway expression fails with a clear error instead of holding the engine.

use super::functions::{kind, object, Host};
use super::parse::{BinOp, Expr, Node};
use super::Scope;
use serde_json::{Number, Value};
use std::cmp::Ordering;

/// Nodes one evaluation may visit.
pub const STEP_BUDGET: u64 = 1_000_000;
/// Bytes (estimated) one evaluation may build.
pub const MEMORY_BUDGET: u64 = 64 << 20;

/// An evaluation error at a column of the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalError {
    pub column: usize,
    pub message: String,
}

pub struct Evaluator<'a> {
    scope: &'a dyn Scope,
    steps: u64,
    bytes: u64,
}

struct HostOf<'a>(&'a dyn Scope);

impl Host for HostOf<'_> {
    fn now_ms(&self) -> u64 {
        self.0.now_ms()
    }
    fn env(&self, name: &str) -> Option<String> {
        self.0.env(name)
    }
    fn run(&self) -> Option<&super::RunContext> {
        self.0.run()
    }
    fn attempt(&self) -> Option<u32> {
        self.0.attempt()
    }
}

impl<'a> Evaluator<'a> {
    pub fn new(scope: &'a dyn Scope) -> Self {
        Evaluator { scope, steps: 0, bytes: 0 }
    }

    /// Counts what a node built against both budgets: building a list of n items costs n
    /// steps, so work done inside functions counts too.
    fn charge(&mut self, e: &Expr, v: &Value) -> Result<(), EvalError> {
        let (items, bytes) = match v {
            Value::String(s) => (s.len() as u64 / 1024, s.len() as u64),
            Value::Array(l) => (l.len() as u64, 16 * l.len() as u64),
            Value::Object(m) => (m.len() as u64, 48 * m.len() as u64),
            _ => (0, 0),
        };
        self.steps += items;
        self.bytes += bytes;
        if self.steps > STEP_BUDGET {
            return Err(EvalError {
                column: e.column,
                message: format!(
                    "the expression takes more than {STEP_BUDGET} steps; it was stopped"
                ),
            });
        }
        if self.bytes > MEMORY_BUDGET {
            return Err(EvalError {
                column: e.column,
                message: format!(
                    "the expression builds more than {} MiB; it was stopped",
                    MEMORY_BUDGET >> 20
                ),
            });
        }
        Ok(())
    }

    pub fn eval(&mut self, e: &Expr) -> Result<Value, EvalError> {
        self.steps += 1;
        if self.steps > STEP_BUDGET {
            return Err(EvalError {
                column: e.column,
                message: format!(
                    "the expression takes more than {STEP_BUDGET} steps; it was stopped"
                ),
            });
        }
        let fail = |message: String| EvalError { column: e.column, message };
        let value = match &e.node {
            Node::Literal(v) => v.clone(),
            Node::Name(name) => self
                .scope
                .name(name)
                .ok_or_else(|| fail(format!("`{name}` is not defined here")))?,
            Node::List(items) => {
                Value::Array(items.iter().map(|i| self.eval(i)).collect::<Result<_, _>>()?)
            }
            Node::Map(entries) => object(
                entries
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), self.eval(v)?)))
                    .collect::<Result<_, EvalError>>()?,
            ),
            Node::Member(target, key) => {
                let target_value = self.eval(target)?;
                match target_value {
                    Value::Object(mut m) => m.remove(key).ok_or_else(|| {
                        let what = match &target.node {
                            Node::Name(step) => format!("`{step}`"),
                            _ => "the map".into(),
                        };
                        let keys: Vec<&str> = m.keys().map(String::as_str).collect();
                        fail(format!(
                            "{what} has no `{key}` (it has: {})",
                            if keys.is_empty() { "nothing".into() } else { keys.join(", ") }
                        ))
                    })?,
                    other => {
                        return Err(fail(format!("`.{key}` needs a map, not {}", kind(&other))))
                    }
                }
            }
            Node::Index(target, index) => {
                let (target, index) = (self.eval(target)?, self.eval(index)?);
                match (&target, &index) {
                    (Value::Array(l), Value::Number(n)) => {
                        let i = n
                            .as_i64()
                            .ok_or_else(|| fail(format!("index {n} is not an integer")))?;
                        let at = if i < 0 { l.len() as i64 + i } else { i };
                        l.get(at as usize).filter(|_| at >= 0).cloned().ok_or_else(|| {
                            fail(format!("index {i} is out of range for a list of {}", l.len()))
                        })?
                    }
                    (Value::Object(m), Value::String(k)) => m
                        .get(k)
                        .cloned()
                        .ok_or_else(|| fail(format!("the map has no key '{k}'")))?,
                    (Value::String(s), Value::Number(n)) => {
                        let i = n.as_u64().ok_or_else(|| {
                            fail(format!("index {n} is not a non-negative integer"))
                        })?;
                        s.chars()
                            .nth(i as usize)
                            .map(|c| Value::String(c.to_string()))
                            .ok_or_else(|| fail(format!("index {i} is out of range")))?
                    }
                    _ => {
                        return Err(fail(format!(
                            "cannot index {} with {}",
                            kind(&target),
                            kind(&index)
                        )))
                    }
                }
            }
            Node::Call(function, args) => {
                let args = args.iter().map(|a| self.eval(a)).collect::<Result<Vec<_>, _>>()?;
                function.call(&HostOf(self.scope), args).map_err(fail)?
            }
            Node::Not(x) => Value::Bool(!self.boolean(x)?),
            Node::Negate(x) => match self.eval(x)? {
                Value::Number(n) => match n.as_i64() {
                    Some(i) => {
                        Value::from(i.checked_neg().ok_or_else(|| fail("integer overflow".into()))?)
                    }
                    None => float(-n.as_f64().unwrap_or_default()).map_err(fail)?,
                },
                other => return Err(fail(format!("cannot negate {}", kind(&other)))),
            },
            Node::And(a, b) => Value::Bool(self.boolean(a)? && self.boolean(b)?),
            Node::Or(a, b) => Value::Bool(self.boolean(a)? || self.boolean(b)?),
            Node::Conditional(c, yes, no) => {
                if self.boolean(c)? {
                    self.eval(yes)?
                } else {
                    self.eval(no)?
                }
            }
            Node::Binary(op, a, b) => {
                let (a, b) = (self.eval(a)?, self.eval(b)?);
                binary(*op, &a, &b).map_err(fail)?
            }
        };
        self.charge(e, &value)?;
        Ok(value)
    }

    fn boolean(&mut self, e: &Expr) -> Result<bool, EvalError> {
        match self.eval(e)? {
            Value::Bool(b) => Ok(b),
            other => Err(EvalError {
                column: e.column,
                message: format!("expected a boolean, not {}", kind(&other)),
            }),
        }
    }
}

fn float(f: f64) -> Result<Value, String> {
    Number::from_f64(f).map(Value::Number).ok_or_else(|| format!("the result {f} is not a number"))
}

fn binary(op: BinOp, a: &Value, b: &Value) -> Result<Value, String> {
    match op {
        BinOp::Eq => Ok(Value::Bool(equal(a, b))),
        BinOp::Ne => Ok(Value::Bool(!equal(a, b))),
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
            let o = compare(a, b)
                .ok_or_else(|| format!("cannot compare {} with {}", kind(a), kind(b)))?;
            Ok(Value::Bool(match op {
                BinOp::Lt => o == Ordering::Less,
                BinOp::Le => o != Ordering::Greater,
                BinOp::Gt => o == Ordering::Greater,
                _ => o != Ordering::Less,
            }))
        }
        _ => arithmetic(op, a, b),
    }
}

/// `+ - * / %`: integers stay integers (checked), a float makes a float; `+` also joins
/// strings (with any value) and lists.
pub fn arithmetic(op: BinOp, a: &Value, b: &Value) -> Result<Value, String> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                let r = match op {
                    BinOp::Add => x.checked_add(y),
                    BinOp::Sub => x.checked_sub(y),
                    BinOp::Mul => x.checked_mul(y),
                    BinOp::Div if y == 0 => return Err("division by zero".into()),
                    BinOp::Div => x.checked_div(y),
                    BinOp::Rem if y == 0 => return Err("division by zero".into()),
                    BinOp::Rem => x.checked_rem(y),
                    _ => None,
                };
                return r
                    .map(Value::from)
                    .ok_or_else(|| format!("integer overflow in {x} {} {y}", op.symbol()));
            }
            let (x, y) = (x.as_f64().unwrap_or_default(), y.as_f64().unwrap_or_default());
            float(match op {
                BinOp::Add => x + y,
                BinOp::Sub => x - y,
                BinOp::Mul => x * y,
                BinOp::Div => x / y,
                _ => x % y,
            })
        }
        (Value::String(x), y) if op == BinOp::Add => {
            Ok(Value::String(format!("{x}{}", super::functions::plain(y))))
        }
        (x, Value::String(y)) if op == BinOp::Add => {
            Ok(Value::String(format!("{}{y}", super::functions::plain(x))))
        }
        (Value::Array(x), Value::Array(y)) if op == BinOp::Add => {
            Ok(Value::Array(x.iter().chain(y).cloned().collect()))
        }
        _ => Err(format!("cannot apply `{}` to {} and {}", op.symbol(), kind(a), kind(b))),
    }
}

/// Equality, with 1 == 1.0.
pub fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// Order of numbers, of strings, of lists (element by element).
pub fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => Some(x.cmp(&y)),
            _ => x.as_f64()?.partial_cmp(&y.as_f64()?),
        },
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                match compare(p, q)? {
                    Ordering::Equal => continue,
                    o => return Some(o),
                }
            }
            Some(x.len().cmp(&y.len()))
        }
        _ => None,
    }
}
