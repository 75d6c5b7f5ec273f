//! The engine's `tracing` events, queued for Java to drain into its own logging.

use serde_json::{json, Map, Value};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration;
use tracing::field::{Field, Visit};
use tracing::Level;
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

/// The most verbose level forwarded when `BATON_LOG` is not set: what the host's logging
/// configuration gives the `baton_core` logger ([`set_level`]); info until it says.
static LEVEL: AtomicU8 = AtomicU8::new(level_rank(&Level::INFO));

const fn level_rank(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

/// Sets the level of [`LEVEL`]: `off`, `error`, `warn`, `info`, `debug` or `trace`.
pub fn set_level(name: &str) -> Result<(), String> {
    let rank = match name {
        "off" => 0,
        other => level_rank(&other.parse::<Level>().map_err(|_| format!("no log level `{name}`"))?),
    };
    LEVEL.store(rank, Ordering::Relaxed);
    // Callsites remember whether they are enabled: make them ask again.
    tracing::callsite::rebuild_interest_cache();
    Ok(())
}

/// Lets through what [`LEVEL`] allows, as it is at each event.
struct HostLevel;

impl<S> tracing_subscriber::layer::Filter<S> for HostLevel {
    fn enabled(&self, meta: &tracing::Metadata<'_>, _: &Context<'_, S>) -> bool {
        level_rank(meta.level()) <= LEVEL.load(Ordering::Relaxed)
    }

    fn callsite_enabled(
        &self,
        _: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        tracing::subscriber::Interest::sometimes()
    }
}

/// Installs the forwarding subscriber once per loaded library. `BATON_LOG` (a `tracing`
/// filter) sets the level if given; otherwise [`set_level`] does.
pub fn install() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        // Another subscriber set by the host process wins; then Java sees no engine logs.
        let _ = match tracing_subscriber::EnvFilter::try_from_env("BATON_LOG") {
            Ok(filter) => tracing::subscriber::set_global_default(
                tracing_subscriber::registry().with(Forward.with_filter(filter)),
            ),
            // Asked for each event, so that a later `set_level` holds at once.
            Err(_) => tracing::subscriber::set_global_default(
                tracing_subscriber::registry().with(Forward.with_filter(HostLevel)),
            ),
        };
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
