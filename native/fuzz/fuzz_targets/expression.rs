//! A string field with `${...}`: parsed as validation does, then evaluated and rendered as
//! a run does, in the sandbox with its budget.
#![no_main]

use baton_core::expr::Template;
use baton_fuzz::Names;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let Ok(template) = Template::parse(text) else { return };
    let names = Names::default();
    let _ = template.evaluate(&names);
    let _ = template.render(&names);
});
