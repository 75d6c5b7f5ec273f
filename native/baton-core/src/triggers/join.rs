//! Triggers that join signals (`signals: [a, b]`, `join: [date]`): a run starts once each
//! of the signals has been sent with the same values of its join params. Each run takes the
//! oldest waiting signal of each; what waits is kept in the trigger's cursor, with the
//! position the trigger has read the signals up to, so that a crash neither loses a signal
//! nor uses one twice.

use crate::engine::firings::Waiting;
use serde_json::Value;
use std::collections::VecDeque;

/// Signals that wait for a join at most, over all keys of a trigger: past it the oldest
/// are dropped (a join whose other signals never come should not grow without bound).
pub(crate) const MAX_WAITING: usize = 10_000;

/// Signal `id`, sent at `sent_ms`, is the `place`-th of `of` joined signals, with join
/// values `key`. Gives the ids of the signals of a complete join, one per place, taken
/// from what waits.
pub(crate) fn arrive(
    waiting: &mut Vec<Waiting>,
    of: usize,
    place: usize,
    key: Vec<Value>,
    id: String,
    sent_ms: u64,
) -> Option<Vec<String>> {
    let at = match waiting.iter().position(|w| w.key == key) {
        Some(at) => at,
        None => {
            waiting.push(Waiting { key, sent: vec![VecDeque::new(); of] });
            waiting.len() - 1
        }
    };
    let entry = &mut waiting[at];
    entry.sent.get_mut(place)?.push_back((id, sent_ms));
    if entry.sent.iter().any(VecDeque::is_empty) {
        return None;
    }
    let ids = entry.sent.iter_mut().filter_map(|q| q.pop_front().map(|(id, _)| id)).collect();
    if entry.sent.iter().all(VecDeque::is_empty) {
        waiting.remove(at);
    }
    Some(ids)
}

/// Drops the signals sent before `cutoff_ms` (past the workflow's signal retention), and
/// the oldest beyond [`MAX_WAITING`]. Gives how many were dropped.
pub(crate) fn prune(waiting: &mut Vec<Waiting>, cutoff_ms: u64) -> usize {
    let mut dropped = 0;
    for entry in waiting.iter_mut() {
        for queue in &mut entry.sent {
            let before = queue.len();
            queue.retain(|(_, sent)| *sent >= cutoff_ms);
            dropped += before - queue.len();
        }
    }
    let mut total: usize =
        waiting.iter().map(|w| w.sent.iter().map(VecDeque::len).sum::<usize>()).sum();
    while total > MAX_WAITING {
        let oldest = waiting
            .iter_mut()
            .flat_map(|w| w.sent.iter_mut())
            .filter(|q| !q.is_empty())
            .min_by_key(|q| q.front().map(|(_, sent)| *sent));
        match oldest {
            Some(queue) => {
                queue.pop_front();
                total -= 1;
                dropped += 1;
            }
            None => break,
        }
    }
    waiting.retain(|w| w.sent.iter().any(|q| !q.is_empty()));
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_join_takes_the_oldest_signal_of_each_for_the_same_key() {
        let mut waiting = Vec::new();
        let day = |d: u64| vec![json!(d)];
        assert_eq!(arrive(&mut waiting, 2, 0, day(1), "a1".into(), 10), None);
        assert_eq!(arrive(&mut waiting, 2, 0, day(1), "a2".into(), 11), None);
        assert_eq!(arrive(&mut waiting, 2, 1, day(2), "b1".into(), 12), None, "another day");
        assert_eq!(
            arrive(&mut waiting, 2, 1, day(1), "b2".into(), 13),
            Some(vec!["a1".into(), "b2".into()])
        );
        assert_eq!(waiting.len(), 2, "a2 waits for day 1, b1 for day 2");
        assert_eq!(
            arrive(&mut waiting, 2, 1, day(1), "b3".into(), 14),
            Some(vec!["a2".into(), "b3".into()])
        );
        assert_eq!(waiting.len(), 1);
        assert_eq!(prune(&mut waiting, 13), 1, "b1 is past the retention");
        assert!(waiting.is_empty());
    }

    #[test]
    fn what_waits_is_bounded() {
        let mut waiting = Vec::new();
        for i in 0..(MAX_WAITING as u64 + 5) {
            arrive(&mut waiting, 2, 0, vec![json!(i)], format!("a{i}"), i);
        }
        assert_eq!(prune(&mut waiting, 0), 5);
        assert_eq!(waiting.len(), MAX_WAITING);
        assert_eq!(waiting[0].key, vec![json!(5)], "the oldest went first");
    }
}
