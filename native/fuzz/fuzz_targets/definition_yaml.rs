//! A workflow definition in YAML, read and validated as `baton validate` does.
#![no_main]

use baton_core::model::{Format, Source};
use baton_core::Workflow;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let source = Source::new("fuzz.yaml", text, Format::Yaml);
    let _ = Workflow::load(&source, &baton_core::engine::built_in_kinds());
});
