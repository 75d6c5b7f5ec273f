//! Tests of the expression language: each feature on examples, then properties over
//! generated expressions.

use super::*;
use serde_json::json;

struct Vars(serde_json::Map<String, Value>);

impl Scope for Vars {
    fn name(&self, name: &str) -> Option<Value> {
        self.0.get(name).cloned()
    }
    fn now_ms(&self) -> u64 {
        1_795_478_400_000 // 2026-11-24T00:00:00Z
    }
    fn env(&self, name: &str) -> Option<String> {
        (name == "ALLOWED").then(|| "yes".into())
    }
}

fn scope() -> Vars {
    let Value::Object(m) = json!({
        "date": "2026-11-24",
        "limit": 100,
        "ratio": 0.5,
        "tags": ["a", "b"],
        "extract": {"rows": 42, "table": "events"},
        "job.1": {"rows": 7},
        "load-users": {"ok": true},
    }) else {
        unreachable!()
    };
    Vars(m)
}

fn eval(text: &str) -> Value {
    Template::parse(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .evaluate(&scope())
        .unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn eval_err(text: &str) -> String {
    match Template::parse(text) {
        Err(e) => e.to_string(),
        Ok(t) => t.evaluate(&scope()).expect_err(text).to_string(),
    }
}

#[test]
fn literals_and_types() {
    assert_eq!(eval("${1}"), json!(1));
    assert_eq!(eval("${2.5}"), json!(2.5));
    assert_eq!(eval("${'it\\'s'}"), json!("it's"));
    assert_eq!(eval("${\"a\\nb\"}"), json!("a\nb"));
    assert_eq!(eval("${true && !false}"), json!(true));
    assert_eq!(eval("${null}"), json!(null));
    assert_eq!(eval("${[1, 'x', [2]]}"), json!([1, "x", [2]]));
    assert_eq!(eval("${{a: 1, 'b c': [2]}}"), json!({"a": 1, "b c": [2]}));
}

#[test]
fn a_whole_field_keeps_its_type_and_text_is_interpolated() {
    assert_eq!(eval("${range(0, 3)}"), json!([0, 1, 2]));
    assert_eq!(eval("rows=${extract.rows} on ${date}"), json!("rows=42 on 2026-11-24"));
    assert_eq!(eval("echo $BATON_OUTPUT $${HOME}"), json!("echo $BATON_OUTPUT ${HOME}"));
}

#[test]
fn operators_and_precedence() {
    assert_eq!(eval("${1 + 2 * 3}"), json!(7));
    assert_eq!(eval("${(1 + 2) * 3}"), json!(9));
    assert_eq!(eval("${7 / 2}"), json!(3));
    assert_eq!(eval("${7 % 4}"), json!(3));
    assert_eq!(eval("${7 / 2.0}"), json!(3.5));
    assert_eq!(eval("${-limit + 1}"), json!(-99));
    assert_eq!(eval("${limit > 50 && extract.table == 'events'}"), json!(true));
    assert_eq!(eval("${1 == 1.0}"), json!(true));
    assert_eq!(eval("${'a' < 'b'}"), json!(true));
    assert_eq!(eval("${extract.rows > 0 ? 'some' : 'none'}"), json!("some"));
    assert_eq!(eval("${'n=' + 1}"), json!("n=1"));
    assert_eq!(eval("${tags + ['c']}"), json!(["a", "b", "c"]));
    assert_eq!(eval("${false || limit >= 100}"), json!(true));
}

#[test]
fn indexing() {
    assert_eq!(eval("${tags[0]}"), json!("a"));
    assert_eq!(eval("${tags[-1]}"), json!("b"));
    assert_eq!(eval("${extract['table']}"), json!("events"));
    assert_eq!(eval("${'abc'[1]}"), json!("b"));
}

#[test]
fn functions() {
    for (text, want) in [
        ("${len(tags)}", json!(2)),
        ("${len('héllo')}", json!(5)),
        ("${upper('a')}", json!("A")),
        ("${lower('A')}", json!("a")),
        ("${trim('  a ')}", json!("a")),
        ("${split('a,b', ',')}", json!(["a", "b"])),
        ("${join(tags, '-')}", json!("a-b")),
        ("${contains(tags, 'b')}", json!(true)),
        ("${contains('events', 'ven')}", json!(true)),
        ("${contains(extract, 'rows')}", json!(true)),
        ("${starts_with(date, '2026')}", json!(true)),
        ("${ends_with(date, '24')}", json!(true)),
        ("${replace(date, '-', '')}", json!("20261124")),
        ("${int('42') + int(2.9)}", json!(44)),
        ("${float('1.5')}", json!(1.5)),
        ("${str(42)}", json!("42")),
        ("${min(3, 1, 2)}", json!(1)),
        ("${max([3, 1, 2])}", json!(3)),
        ("${sum([1, 2, 3.5])}", json!(6.5)),
        ("${range(0, 10, 3)}", json!([0, 3, 6, 9])),
        ("${range(3, 0, -1)}", json!([3, 2, 1])),
        (
            "${date_ints_between(20200226, 20200303, 1)}",
            json!([20200226, 20200227, 20200228, 20200229, 20200301, 20200302]),
        ),
        (
            "${date_ints_between('20181228', 20191002, '90')}",
            json!([20181228, 20190328, 20190626, 20190924]),
        ),
        ("${date_ints_between(20200303, 20200226, 1)}", json!([])),
        ("${date(20200229)}", json!("2020-02-29")),
        ("${date('20201231')}", json!("2020-12-31")),
        ("${date_add(20200228, 2, 'days')}", json!("2020-03-01")),
        ("${format_date(20200101, 'yyyyMMdd')}", json!("20200101")),
        ("${today()}", json!("2026-11-24")),
        ("${now()}", json!("2026-11-24T00:00:00Z")),
        ("${date('2026-11-24')}", json!("2026-11-24")),
        ("${date_add(date, 1, 'day')}", json!("2026-11-25")),
        ("${date_add(date, -1, 'weeks')}", json!("2026-11-17")),
        ("${date_add(date, 90, 'minutes')}", json!("2026-11-24T01:30:00Z")),
        ("${format_date(date, 'yyyyMMdd')}", json!("20261124")),
        (
            "${format_date('2026-11-24T10:05:00Z', \"yyyy-MM-dd'T'HH:mm\")}",
            json!("2026-11-24T10:05"),
        ),
        ("${format_date(1795000000000, 'yyyy-MM-dd HH:mm')}", json!("2026-11-18 11:06")),
        (
            "${format_date(1795000000000, 'yyyy-MM-dd HH:mm', 'America/Los_Angeles')}",
            json!("2026-11-18 03:06"),
        ),
        (
            "${format_date(1569018000000, 'MMMM MMM EEEE EEE M', 'UTC')}",
            json!("September Sep Friday Fri 09"),
        ),
        ("${epoch_ms(20200101)}", json!(1577836800000_i64)),
        ("${epoch_ms(20200101, 'Asia/Tokyo')}", json!(1577804400000_i64)),
        ("${epoch_ms('2020-01-01T01:00:00Z', 'Asia/Tokyo')}", json!(1577840400000_i64)),
        ("${env('ALLOWED')}", json!("yes")),
        ("${keys(extract)}", json!(["rows", "table"])),
    ] {
        assert_eq!(eval(text), want, "{text}");
    }
}

#[test]
fn errors_are_clear_and_placed() {
    assert_eq!(eval_err("x ${1 + true}"), "column 5: cannot apply `+` to an integer and a boolean");
    assert_eq!(eval_err("${nope}"), "column 3: `nope` is not defined here");
    assert_eq!(
        eval_err("${extract.cols}"),
        "column 3: `extract` has no `cols` (it has: rows, table)"
    );
    assert_eq!(
        eval_err("${lenn(tags)}"),
        "column 3: unknown function `lenn` (did you mean `len`?)"
    );
    assert_eq!(eval_err("${len(1, 2)}"), "column 3: `len` takes 1 argument(s), not 2");
    assert_eq!(eval_err("${1 / 0}"), "column 3: division by zero");
    assert_eq!(eval_err("${limit ? 1 : 2}"), "column 3: expected a boolean, not an integer");
    assert_eq!(eval_err("${tags[5]}"), "column 3: index 5 is out of range for a list of 2");
    assert_eq!(
        eval_err("${env('HOME')}"),
        "column 3: env(`HOME`): not set, or not allowed to expressions"
    );
    assert!(eval_err("echo ${date").contains("(write `$${` for a literal `${`)"));
    assert_eq!(
        eval_err("${9223372036854775807 + 1}"),
        "column 3: integer overflow in 9223372036854775807 + 1"
    );
}

#[test]
fn runaway_expressions_hit_the_budget() {
    // A string of 500,000 x 150 bytes is more than the memory budget allows.
    let e = eval_err(&format!("${{join(range(0, 500000), '{}')}}", "x".repeat(150)));
    assert!(e.contains("builds more than 64 MiB"), "{e}");
    assert!(eval_err("${range(0, 2000000)}").contains("at most 1000000"));
    let e = eval_err("${sum(range(0, 1000000)) + sum(range(0, 1000000))}");
    assert!(e.contains("more than 1000000 steps"), "{e}");
    let long = format!("${{[{}]}}", vec!["1"; 600].join(", "));
    assert!(eval_err(&long).contains("too long (more than 1000 tokens)"));
}

#[test]
fn names_are_listed_for_validation() {
    let t = Template::parse("${extract.rows + limit} ${m['k'].x} ${len(tags)}").unwrap();
    let names: Vec<(String, Option<String>)> =
        t.names().into_iter().map(|n| (n.name, n.member)).collect();
    assert_eq!(
        names,
        vec![
            ("extract".into(), Some("rows".into())),
            ("limit".into(), None),
            ("m".into(), None),
            ("tags".into(), None),
        ]
    );
}

#[test]
fn steps_whose_ids_are_no_plain_names_are_reached_by_id() {
    assert_eq!(eval("${steps['job.1'].rows + 1}"), json!(8));
    assert_eq!(eval("${steps['load-users']['ok']}"), json!(true));
    assert_eq!(eval("${steps['extract'].rows}"), eval("${extract.rows}"));
    let t = Template::parse("${steps['job.1'].rows} ${steps['load-users']}").unwrap();
    let names: Vec<(String, Option<String>, usize)> =
        t.names().into_iter().map(|n| (n.name, n.member, n.column)).collect();
    assert_eq!(
        names,
        vec![("job.1".into(), Some("rows".into()), 3), ("load-users".into(), None, 26)]
    );
    // Printed back as written, so that it reads the same again.
    assert_eq!(t.to_string(), "${steps['job.1'].rows} ${steps['load-users']}");
    assert!(
        eval_err("${steps[date]}").contains("takes a step id in quotes"),
        "{}",
        eval_err("${steps[date]}")
    );
}

#[test]
fn constant_parts_are_checked_without_a_scope() {
    let t = Template::parse("${limit + (1 + true)} ${today()} ${2 * 3}").unwrap();
    let errors: Vec<String> = t.check_constants().into_iter().map(|e| e.to_string()).collect();
    assert_eq!(errors, vec!["column 12: cannot apply `+` to an integer and a boolean".to_string()]);
}

/// Properties over generated expressions: printing and parsing agree, evaluation never
/// panics, and the budgets stop what is too big.
mod properties {
    use super::*;
    use proptest::prelude::*;
    use proptest::sample::select;

    fn literal_string() -> impl Strategy<Value = String> {
        "[a-z '\\\\{}$\\n]{0,6}".prop_map(|s| {
            format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'").replace('\n', "\\n"))
        })
    }

    fn leaf() -> impl Strategy<Value = String> {
        prop_oneof![
            (0i64..100_000).prop_map(|n| n.to_string()),
            (0u32..1000, 1u32..100).prop_map(|(a, b)| format!("{a}.{b}")),
            literal_string(),
            select(vec![
                "true",
                "false",
                "null",
                "date",
                "limit",
                "ratio",
                "tags",
                "extract",
                "extract.rows",
                "tags[1]",
                "extract['table']"
            ])
            .prop_map(String::from),
        ]
    }

    fn expr() -> impl Strategy<Value = String> {
        let ops = vec!["+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "&&", "||"];
        let functions = vec![
            "len", "upper", "lower", "trim", "str", "int", "float", "min", "max", "sum",
            "contains", "join", "split", "keys",
        ];
        leaf().prop_recursive(4, 48, 4, move |inner| {
            prop_oneof![
                (inner.clone(), select(ops.clone()), inner.clone())
                    .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
                inner.clone().prop_map(|a| format!("!{a}")),
                inner.clone().prop_map(|a| format!("-{a}")),
                inner.clone().prop_map(|a| format!("({a})")),
                (inner.clone(), inner.clone(), inner.clone())
                    .prop_map(|(a, b, c)| format!("{a} ? {b} : {c}")),
                prop::collection::vec(inner.clone(), 0..4)
                    .prop_map(|v| format!("[{}]", v.join(", "))),
                (select(functions.clone()), prop::collection::vec(inner.clone(), 1..3))
                    .prop_map(|(f, a)| format!("{f}({})", a.join(", "))),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{{k: {a}, 'x y': {b}}}")),
                (inner.clone(), inner).prop_map(|(a, i)| format!("{a}[{i}]")),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn printing_then_parsing_gives_the_same_template(e in expr(), text in "[a-z ${}]{0,6}") {
            let field = format!("{text}${{{e}}}{text}");
            let Ok(template) = Template::parse(&field) else { return Ok(()) };
            let printed = template.to_string();
            let again = Template::parse(&printed).map_err(|e| TestCaseError::fail(format!("{printed}: {e}")))?;
            prop_assert_eq!(again.to_string(), printed.clone());
            // The same tree evaluates the same way.
            match (template.evaluate(&scope()), again.evaluate(&scope())) {
                (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
                (Err(a), Err(b)) => prop_assert_eq!(a.message, b.message),
                (a, b) => prop_assert!(false, "{field} gave {a:?}, its print {printed} gave {b:?}"),
            }
        }

        #[test]
        fn evaluation_never_panics(e in expr()) {
            if let Ok(template) = Template::parse(&format!("${{{e}}}")) {
                let _ = template.evaluate(&scope());
                let _ = template.render(&scope());
                let _ = template.check_constants();
            }
        }

    }

    proptest! {
        // Each case evaluates up to a million items: few cases are enough.
        #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

        #[test]
        fn budgets_stop_what_is_too_big(n in 0i64..3_000_000, m in 0i64..3_000_000) {
            let field = format!("${{len(join(range(0, {n}), ',')) + sum(range(0, {m}))}}");
            match Template::parse(&field).unwrap().evaluate(&scope()) {
                Ok(_) => prop_assert!(n <= 1_000_000 && m <= 1_000_000, "{field} should exceed a budget"),
                Err(e) => prop_assert!(
                    e.message.contains("at most") || e.message.contains("steps") || e.message.contains("memory"),
                    "{field}: {}", e.message
                ),
            }
        }
    }
}

/// Deep trees are refused (nested expressions and chains of operators alike); what the
/// limit lets through is parsed and evaluated on a thread with a small stack (a JVM thread
/// has 1 MiB).
#[test]
fn deep_trees_are_refused_and_the_rest_fits_a_small_stack() {
    let nested = |open: &str, close: &str, depth| {
        format!("${{{}1{}}}", open.repeat(depth), close.repeat(depth))
    };
    let deep = [
        nested("(", ")", 499),
        nested("[", "]", 499),
        nested("{a: ", "}", 333),
        nested("!", "", 998),
        nested("-", "", 998),
        nested("len([", "])", 249),
        nested("true ? ", " : 0", 249),
        nested("a[", "]", 333),
        nested("1 + ", "", 499),
        nested("true && ", "", 499),
        format!("${{extract{}}}", ".rows".repeat(499)),
        format!("${{tags{}}}", "[0]".repeat(333)),
    ];
    let fitting = [
        nested("(", ")", 31),
        nested("[", "]", 31),
        nested("!", "", 31),
        nested("1 + ", "", 31),
        nested("limit * ", "", 31),
        format!("${{extract{}}}", ".rows".repeat(31)),
        nested("true || ", "", 31),
    ];
    std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || {
            for field in deep {
                let error = Template::parse(&field).unwrap_err();
                assert!(error.message.contains("deeper than 32 levels"), "{}", error.message);
            }
            for field in fitting {
                let template = Template::parse(&field).unwrap_or_else(|e| panic!("{field}: {e}"));
                let _ = template.evaluate(&scope());
                let _ = template.check_constants();
            }
        })
        .unwrap()
        .join()
        .unwrap();
}
