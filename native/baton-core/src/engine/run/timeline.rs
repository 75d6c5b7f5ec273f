//! The run's timeline: each status change as an event, stored with the transition
//! (except for loop iterations, which their rollup covers) and delivered to listeners
//! once durable.

use super::*;

impl Driver {
    /// Whether this run's events are worth making: always for the timeline, and for an
    /// iteration only when someone listens.
    fn wants_events(&self) -> bool {
        self.durable_events || self.delivers_events()
    }

    /// Whether someone takes events as they happen.
    fn delivers_events(&self) -> bool {
        self.shared.listener.is_some() || self.shared.events.receiver_count() > 0
    }

    /// Records step `i`'s status change in the batch of its transition (the timeline);
    /// listeners get it after the flush.
    pub(super) fn event_step(&mut self, i: usize, error: Option<String>) {
        if !self.wants_events() {
            return;
        }
        let at_ms = self.shared.clock.now_ms();
        let step_id = &self.wf.step(i).id;
        if self.durable_events {
            let change = events::StepChange {
                step_id,
                status: self.status[i],
                attempt: self.attempt[i],
                error: error.as_deref(),
                at_ms,
            };
            events::put_step_event(&mut self.batch, &self.run.id, self.seq, change);
        }
        if self.delivers_events() {
            self.events.push(Event::Step {
                run_id: self.run.id.clone(),
                step_id: step_id.clone(),
                status: self.status[i],
                attempt: self.attempt[i],
                error,
                at_ms,
                seq: self.seq,
            });
        }
        self.seq += 1;
    }

    /// As [`event_step`](Self::event_step), for the run's status.
    pub(super) fn event_run(&mut self) {
        self.event_run_by(None, None);
    }

    /// The event of a take-over: this engine drives the run now, after `from`.
    pub(super) fn event_owner(&mut self, from: Option<String>) {
        let why = from.map(|from| format!("taken over from engine {from}"));
        let me = self.shared.member.id.clone();
        self.event_run_by(why, Some(me));
    }

    fn event_run_by(&mut self, note: Option<String>, engine: Option<String>) {
        if !self.wants_events() {
            return;
        }
        let at_ms = self.shared.clock.now_ms();
        if self.durable_events {
            events::put_run_event(
                &mut self.batch,
                &self.run.id,
                self.seq,
                self.run.status,
                note.as_deref().or(self.run.error.as_deref()),
                at_ms,
                engine.as_deref(),
            );
        }
        if self.delivers_events() {
            self.events.push(Event::Run {
                run_id: self.run.id.clone(),
                workflow_id: self.run.workflow_id.clone(),
                status: self.run.status,
                error: note.or_else(|| self.run.error.clone()),
                at_ms,
                seq: self.seq,
                engine,
            });
        }
        self.seq += 1;
    }
}
