//! A cron trigger: the expression on the first line, the time zone (if any) on the second;
//! the next few times after a moment taken from the input.
#![no_main]

use baton_core::model::cron::CronSchedule;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let mut lines = text.splitn(3, '\n');
    let expression = lines.next().unwrap_or("");
    let zone = lines.next().filter(|z| !z.is_empty());
    let Ok(schedule) = CronSchedule::parse(expression, zone) else { return };
    // 2026-11-25T00:00:00Z, moved by the input so that the year and DST change.
    let start = 1_795_564_800_000u64.wrapping_add(text.len() as u64 * 86_400_000 * 17);
    let mut at = start;
    for _ in 0..5 {
        match schedule.next_after(at) {
            Some(next) => {
                assert!(next > at, "next_after({at}) = {next} is not after it");
                at = next;
            }
            None => break,
        }
    }
});
