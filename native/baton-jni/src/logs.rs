//! The engine's `tracing` events, queued for Java to drain into its own logging.

use serde_json::{json, Map, Value};
use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

/// Records kept when Java does not drain them; the oldest are dropped first.
const CAPACITY: usize = 10_000;

struct Queue {
    records: Mutex<VecDeque<Value>>,
    ready: Condvar,
}

fn queue() -> &'static Queue {
    static QUEUE: OnceLock<Queue> = OnceLock::new();
    QUEUE.get_or_init(|| Queue { records: Mutex::new(VecDeque::new()), ready: Condvar::new() })
}

/// Installs the forwarding subscriber once per loaded library. `BATON_LOG` sets the level
/// (default `info`).
pub fn install() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_env("BATON_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let subscriber = tracing_subscriber::registry().with(Forward.with_filter(filter));
        // Another subscriber set by the host process wins; then Java sees no engine logs.
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
}

/// Up to `max` records, waiting up to `timeout` for the first.
pub fn drain(max: usize, timeout: Duration) -> Vec<Value> {
    let q = queue();
    let records = q.records.lock().unwrap_or_else(|e| e.into_inner());
    let (mut records, _) = q
        .ready
        .wait_timeout_while(records, timeout, |r| r.is_empty())
        .unwrap_or_else(|e| e.into_inner());
    let n = records.len().min(max);
    records.drain(..n).collect()
}

struct Forward;

impl<S: tracing::Subscriber> Layer<S> for Forward {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        let record = json!({
            "level": meta.level().as_str(),
            "target": meta.target(),
            "message": fields.message,
            "fields": fields.rest,
        });
        let q = queue();
        let mut records = q.records.lock().unwrap_or_else(|e| e.into_inner());
        if records.len() >= CAPACITY {
            records.pop_front();
        }
        records.push_back(record);
        q.ready.notify_one();
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    rest: Map<String, Value>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_owned();
        } else {
            self.rest.insert(field.name().to_owned(), Value::String(value.to_owned()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}
