//! The `$BATON_OUTPUT` file a shell step writes: `key=value` lines.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = baton_core::fuzzing::outputs(text);
});
