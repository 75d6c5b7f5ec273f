//! A request line of the control socket: read as the server reads it; a definition it
//! carries is validated and its params applied, as `execute` does; and what a client sends
//! reads back the same.
#![no_main]

use baton_core::control::Request;
use baton_core::{fuzzing, Workflow};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &str| {
    let Ok(request) = serde_json::from_str::<Request>(line) else { return };
    let sent = serde_json::to_string(&request).expect("a request serializes");
    let again = serde_json::from_str::<Request>(&sent);
    assert!(again.is_ok(), "{sent} does not read back: {again:?}");
    let (definition, params) = match request {
        Request::Register { definition } => (definition, Default::default()),
        Request::RunDefinition { definition, params } => (definition, params),
        _ => return,
    };
    let _ = fuzzing::params(&definition, params);
    let _ = Workflow::compile(definition, &baton_core::engine::built_in_kinds());
});
