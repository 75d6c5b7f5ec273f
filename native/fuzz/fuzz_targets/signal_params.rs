//! A signal against a `match`: the expression on the first line, the signal's params (a
//! JSON object, as the control socket and the Java bridge send them) after it.
#![no_main]

use baton_core::expr::Template;
use baton_fuzz::Names;
use indexmap::IndexMap;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|text: &str| {
    let (matcher, params) = text.split_once('\n').unwrap_or((text, "{}"));
    let Ok(matcher) = Template::parse(matcher) else { return };
    let Ok(params) = serde_json::from_str::<IndexMap<String, Value>>(params) else { return };
    let mut names = Names::default();
    names.0.insert("signal".into(), Value::Object(params.into_iter().collect()));
    let _ = matcher.evaluate(&names);
    let _ = matcher.render(&names);
});
