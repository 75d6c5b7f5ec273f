//! Engines sharing one store: who drives which run, and what happens when an engine dies.
//!
//! Every unfinished top-level run is driven by the engine holding its lease
//! (`Table::Leases`: engine id and generation). Every batch a driver writes expects the
//! lease it holds (a fence): an engine that lost a run to another writes nothing more for
//! it. Leases need no renewal of their own: an engine's heartbeat (`Table::Engines`, one
//! write) keeps all of its leases alive, by the store's clock. An engine whose heartbeat
//! is older than its lease, or that closed, has lost them: others claim its runs, each
//! claim expecting both the lease and the heartbeat it found stale, and bumping the
//! generation.
//!
//! One code path for every store: a store directory has one engine at a time, which takes
//! over the leases of the engine before it at [`Engine::recover`]. Heartbeats and claims
//! run only on a database, where other engines may be.

use super::records::{self, encode, RunRecord};
use super::{Engine, EngineError, RunStatus};
use crate::activity::Activity;
use crate::store::{Batch, Expect, Store, StoreError, Table};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long an engine's leases outlive its last heartbeat, unless the host says.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(15);
/// The shortest lease a host may ask for.
pub const MIN_LEASE: Duration = Duration::from_millis(300);
/// Heartbeats per lease: a take-over comes within the lease plus one heartbeat.
const BEATS_PER_LEASE: u32 = 3;
/// How often an engine looks for signals and actions that other engines wrote (see
/// `remote.rs`), and for runs to take.
const POLL: Duration = Duration::from_millis(250);
/// The key of a run's lease.
fn lease_key(run_id: &str) -> Vec<u8> {
    run_id.as_bytes().to_vec()
}

/// Who drives a run, at which generation of its lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Lease {
    pub(crate) engine: String,
    pub(crate) generation: u64,
}

impl Lease {
    pub(crate) fn get(store: &dyn Store, run_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        store.get(Table::Leases, &lease_key(run_id))
    }

    fn decode(bytes: &[u8]) -> Option<Lease> {
        serde_json::from_slice(bytes).ok()
    }

    /// What a batch of the run's driver expects: this lease, unchanged.
    pub(crate) fn fence(&self, run_id: &str) -> Expect {
        Expect { table: Table::Leases, key: lease_key(run_id), value: Some(encode(self)) }
    }

    /// Writes the lease of a new run, expecting none.
    pub(crate) fn put_new(&self, batch: &mut Batch, run_id: &str) {
        batch.put(Table::Leases, lease_key(run_id), encode(self));
        batch.expect(Table::Leases, lease_key(run_id), None);
    }
}

/// Drops the lease of a run pruned. A run that ends keeps its lease until then: its child
/// runs may still write their end under it (a kill does not wait for them), and the lease
/// of a finished run is never claimed, for the run is not among the unfinished ones.
pub(crate) fn delete_lease(batch: &mut Batch, run_id: &str) {
    batch.delete(Table::Leases, lease_key(run_id));
}

/// How a driver comes to hold its run's lease.
#[derive(Debug, Clone)]
pub(crate) enum Owner {
    /// It holds it already: written with the run (a new run, an admitted one).
    Holding(Lease),
    /// It takes it over: its first write bumps the generation, expecting what was seen.
    Claiming(Claim),
}

/// A take-over: the lease seen (none for a run nobody drove), and the heartbeat of its
/// holder seen stale.
#[derive(Debug, Clone)]
pub(crate) struct Claim {
    pub(crate) previous: Option<Vec<u8>>,
    pub(crate) holder_seen: Option<(String, Option<Vec<u8>>)>,
}

impl Claim {
    /// The claim on a run whose lease is `previous`, or the live engine holding it.
    /// `heartbeat` gives an engine's heartbeat record; on a store of one engine (`shared`
    /// false) a holder other than `me` is gone.
    fn on(
        previous: Option<Vec<u8>>,
        me: &str,
        shared: bool,
        now_ms: u64,
        heartbeat: impl FnOnce(&str) -> Result<Option<Vec<u8>>, StoreError>,
    ) -> Result<Result<Claim, String>, StoreError> {
        let holder = previous.as_deref().and_then(Lease::decode).map(|l| l.engine);
        let holder_seen = match holder {
            Some(holder) if shared && holder != me => {
                let seen = heartbeat(&holder)?;
                let info = seen.as_deref().and_then(EngineInfo::decode);
                if info.is_some_and(|i| i.alive_at(now_ms)) {
                    return Ok(Err(holder));
                }
                Some((holder, seen))
            }
            _ => None,
        };
        Ok(Ok(Claim { previous, holder_seen }))
    }

    /// The new lease, written with the expectations that make the claim safe; `me` is
    /// the claiming engine.
    pub(crate) fn write(&self, batch: &mut Batch, run_id: &str, me: &str) -> Lease {
        let generation = self
            .previous
            .as_deref()
            .and_then(Lease::decode)
            .map_or(1, |lease| lease.generation + 1);
        let lease = Lease { engine: me.to_owned(), generation };
        batch.put(Table::Leases, lease_key(run_id), encode(&lease));
        batch.expect(Table::Leases, lease_key(run_id), self.previous.clone());
        if let Some((holder, seen)) = &self.holder_seen {
            batch.expect(Table::Engines, holder.as_bytes().to_vec(), seen.clone());
        }
        lease
    }

    /// The engine that drove the run before, if it was another.
    pub(crate) fn from(&self, me: &str) -> Option<String> {
        self.previous.as_deref().and_then(Lease::decode).map(|l| l.engine).filter(|e| e != me)
    }
}

/// What [`Engine::survey`] found.
struct Survey {
    free: Vec<(RunRecord, Claim)>,
    top_level: usize,
    claimers: usize,
    /// Offered iterations no live engine drives, with their loops' scopes.
    offers: Vec<(RunRecord, Claim, String)>,
    /// Offered iterations not finished, held or not.
    offered: usize,
}

/// An engine of the store, as its last heartbeat says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineInfo {
    /// The engine's id (`--engine-id`, `BatonOptions.engineId`).
    pub id: String,
    /// The machine it runs on.
    pub host: String,
    /// Its process.
    pub pid: u32,
    /// When it opened the store, by the store's clock (ms since the epoch).
    pub started_ms: u64,
    /// Its last heartbeat, by the store's clock.
    pub heartbeat_ms: u64,
    /// How long its leases outlive a heartbeat.
    pub lease_ms: u64,
    /// The step kinds it can run.
    pub kinds: Vec<String>,
    /// The workflows registered in it, whose host steps (Java code) it can run.
    pub workflows: Vec<String>,
    /// Whether it takes runs from others (`baton serve`, a Java service), or drives only
    /// the runs it starts (`baton run`).
    pub claims: bool,
    /// The most runs it drives at once, if it has a limit.
    #[serde(default)]
    pub max_runs: Option<usize>,
    /// Closed: its runs are free to take at once.
    #[serde(default)]
    pub stopped: bool,
    /// Unfinished runs it holds the lease of (counted when listed).
    #[serde(default)]
    pub runs: usize,
    /// Whether its leases hold: not stopped, heartbeat within the lease (computed when
    /// listed).
    #[serde(default)]
    pub alive: bool,
}

impl EngineInfo {
    fn decode(bytes: &[u8]) -> Option<EngineInfo> {
        serde_json::from_slice(bytes).ok()
    }

    fn alive_at(&self, now_ms: u64) -> bool {
        !self.stopped && self.heartbeat_ms + self.lease_ms >= now_ms
    }
}

/// This engine's place among the engines of its store.
pub(crate) struct Membership {
    pub(crate) id: String,
    pub(crate) lease: Duration,
    /// Whether it takes runs that others started or left.
    pub(crate) claims: bool,
    /// Whether it drives runs at all: a command-line client only writes them.
    pub(crate) drives: bool,
    /// Whether other engines may share the store (a database).
    pub(crate) shared_store: bool,
    /// The most top-level runs it drives at once on a shared store: past it, the runs it
    /// starts are left to the others.
    pub(crate) max_runs: Option<usize>,
    pub(crate) started_ms: u64,
    /// Workflows registered in this engine.
    pub(crate) workflows: Mutex<HashSet<String>>,
    /// The other live engines that take runs, as the last look for runs to take found
    /// them: loops offer them iterations (see `flow/spread.rs`).
    pub(crate) peers: std::sync::atomic::AtomicUsize,
    /// The store time of the last heartbeat written.
    last_beat: Mutex<Option<u64>>,
    /// When it was written, by this process's monotonic clock.
    beat_at: Mutex<Option<std::time::Instant>>,
}

impl Membership {
    pub(crate) fn new(
        id: String,
        lease: Duration,
        claims: bool,
        drives: bool,
        shared_store: bool,
        started_ms: u64,
        max_runs: Option<usize>,
    ) -> Self {
        Membership {
            max_runs: max_runs.filter(|_| shared_store),
            id,
            lease: lease.max(MIN_LEASE),
            claims: claims && drives,
            drives,
            shared_store,
            started_ms,
            workflows: Mutex::default(),
            peers: Default::default(),
            last_beat: Mutex::default(),
            beat_at: Mutex::default(),
        }
    }

    fn beat_every(&self) -> Duration {
        self.lease / BEATS_PER_LEASE
    }

    /// Whether this engine's heartbeat is overdue (it was frozen, or the database was
    /// away): its leases may have passed to others meanwhile.
    pub(crate) fn overdue(&self) -> bool {
        let at = *self.beat_at.lock().unwrap_or_else(|e| e.into_inner());
        self.shared_store && at.is_some_and(|at| at.elapsed() > self.lease / 2)
    }
}

/// An engine id for a host that gives none: the machine and the process.
pub(crate) fn default_engine_id() -> String {
    format!("{}-{}", hostname(), std::process::id())
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into `buf`.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    match ok {
        true => String::from_utf8_lossy(&buf[..end]).into_owned(),
        false => "localhost".to_owned(),
    }
}

/// Where run `run_id` comes in engine `engine`'s look through the free runs.
fn claim_order(engine: &str, run_id: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (engine, run_id).hash(&mut hasher);
    hasher.finish()
}

/// Whether `kind` is one every engine has, not a host's (Java code).
fn is_built_in(kind: &str) -> bool {
    static BUILT_IN: std::sync::OnceLock<HashSet<String>> = std::sync::OnceLock::new();
    BUILT_IN
        .get_or_init(|| super::built_in_kinds().names().into_iter().map(str::to_owned).collect())
        .contains(kind)
}

/// Whether any of `steps`, or of the loop bodies among them, is of a host's kind.
fn has_host_steps(steps: &[crate::model::StepDef]) -> bool {
    steps.iter().any(|s| !is_built_in(&s.kind) || has_host_steps(&s.flow().steps))
}

/// The heartbeat record of every engine of the store, by id, as read and as written.
fn read_engines(store: &dyn Store) -> Result<HashMap<String, (EngineInfo, Vec<u8>)>, StoreError> {
    let mut engines = HashMap::new();
    store.scan(Table::Engines, b"", &mut |key, value| {
        let id = String::from_utf8_lossy(key).into_owned();
        match EngineInfo::decode(value) {
            Some(info) => drop(engines.insert(id, (info, value.to_vec()))),
            None => tracing::warn!(engine = %id, "unreadable engine record"),
        }
        true
    })?;
    Ok(engines)
}

/// Every engine of the store, by id, with the runs each holds.
pub(crate) fn list(store: &dyn Store) -> Result<Vec<EngineInfo>, StoreError> {
    let now = store.now_ms()?;
    let mut engines: Vec<EngineInfo> = read_engines(store)?.into_values().map(|(e, _)| e).collect();
    engines.sort_by(|a, b| a.id.cmp(&b.id));
    let active: HashSet<String> = records::active_run_ids(store)?.into_iter().collect();
    let mut held: HashMap<String, usize> = HashMap::new();
    store.scan(Table::Leases, b"", &mut |key, value| {
        let unfinished = active.contains(String::from_utf8_lossy(key).as_ref());
        if let (true, Some(lease)) = (unfinished, Lease::decode(value)) {
            *held.entry(lease.engine).or_default() += 1;
        }
        true
    })?;
    for engine in &mut engines {
        engine.alive = engine.alive_at(now);
        engine.runs = held.get(&engine.id).copied().unwrap_or(0);
    }
    Ok(engines)
}

impl Engine {
    /// This engine's id among the engines of its store.
    pub fn engine_id(&self) -> &str {
        &self.shared.member.id
    }

    /// Whether this engine drives runs (a client of a database only writes them).
    pub fn drives(&self) -> bool {
        self.shared.member.drives
    }

    /// The engines of the store: on a database, every engine of the cluster, by id; on a
    /// store directory, this one.
    pub fn engines(&self) -> Result<Vec<EngineInfo>, EngineError> {
        let store = self.shared.store.as_ref();
        if self.shared.member.shared_store {
            return Ok(list(store)?);
        }
        // A store directory has one engine at a time: this one, holding every unfinished run.
        let mut me = self.info(store.now_ms()?, false);
        me.alive = true;
        me.runs = self.runs.lock().unwrap_or_else(|e| e.into_inner()).len();
        Ok(vec![me])
    }

    /// Makes a new run (or one just admitted) this engine's, in the batch that writes it:
    /// its lease, expecting none, and its `engine`. A client that does not drive leaves
    /// the run to the engines that do, and gets `None`.
    pub(crate) fn own_new(&self, batch: &mut Batch, run: &mut RunRecord) -> Option<Owner> {
        if !self.shared.member.drives || self.at_capacity() {
            return None;
        }
        let lease = Lease { engine: self.engine_id().to_owned(), generation: 1 };
        lease.put_new(batch, &run.id);
        run.engine = Some(lease.engine.clone());
        Some(Owner::Holding(lease))
    }

    /// Whether this engine drives as many runs as it may (`max_runs`).
    fn at_capacity(&self) -> bool {
        let driven = self.runs.lock().unwrap_or_else(|e| e.into_inner()).len();
        self.shared.member.max_runs.is_some_and(|max| driven >= max)
    }

    /// The claim this engine makes to drive `run` itself (to act on it), or the live
    /// engine that holds it.
    pub(crate) fn claim_of(&self, run: &RunRecord) -> Result<Result<Claim, String>, EngineError> {
        let store = self.shared.store.as_ref();
        let previous = Lease::get(store, &run.id)?;
        let (me, shared) = (self.engine_id(), self.shared.member.shared_store);
        let now = store.now_ms()?;
        Ok(Claim::on(previous, me, shared, now, |holder| {
            store.get(Table::Engines, holder.as_bytes())
        })?)
    }

    /// This engine's heartbeat record, `stopped` at close.
    fn heartbeat_record(&self, now_ms: u64, stopped: bool) -> Vec<u8> {
        encode(&self.info(now_ms, stopped))
    }

    /// This engine, as its heartbeat describes it.
    fn info(&self, now_ms: u64, stopped: bool) -> EngineInfo {
        let member = &self.shared.member;
        let mut workflows: Vec<String> =
            member.workflows.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect();
        workflows.sort();
        let kinds = self.shared.kinds.read().unwrap_or_else(|e| e.into_inner());
        let kinds = kinds.names().into_iter().map(str::to_owned).collect();
        EngineInfo {
            id: member.id.clone(),
            host: hostname(),
            pid: std::process::id(),
            started_ms: member.started_ms,
            heartbeat_ms: now_ms,
            lease_ms: member.lease.as_millis() as u64,
            kinds,
            workflows,
            claims: member.claims,
            max_runs: member.max_runs,
            stopped,
            runs: 0,
            alive: false,
        }
    }

    /// Writes a heartbeat; returns the store time of the one before, if any.
    async fn beat(&self) -> Result<Option<u64>, EngineError> {
        let now = self.shared.store.now_ms()?;
        let mut batch = Batch::default();
        batch.put(
            Table::Engines,
            self.engine_id().as_bytes().to_vec(),
            self.heartbeat_record(now, false),
        );
        self.shared.committer.commit(batch).await?;
        *self.shared.member.beat_at.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(std::time::Instant::now());
        Ok(self.shared.member.last_beat.lock().unwrap_or_else(|e| e.into_inner()).replace(now))
    }

    /// Says at close that this engine's leases are free to take at once.
    pub(crate) async fn leave(&self) {
        if !self.shared.member.drives || !self.shared.member.shared_store {
            return;
        }
        let Ok(now) = self.shared.store.now_ms() else { return };
        let mut batch = Batch::default();
        batch.put(
            Table::Engines,
            self.engine_id().as_bytes().to_vec(),
            self.heartbeat_record(now, true),
        );
        if let Err(e) = self.shared.committer.commit(batch).await {
            tracing::warn!(error = %e, "cannot tell the other engines that this one stopped; they take its runs when its lease ends");
        }
    }

    /// Whether this engine can drive a run of `workflow`: it has every kind (checked by
    /// compiling), and a workflow with host steps (Java code) is registered here.
    fn can_run(&self, run: &RunRecord) -> Result<Option<Arc<crate::Workflow>>, EngineError> {
        let def = records::get_definition(self.shared.store.as_ref(), &run.definition)?;
        let Ok(workflow) = self.compile(def) else { return Ok(None) };
        let host_steps = has_host_steps(&workflow.def().steps);
        let registered_here = self
            .shared
            .member
            .workflows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&run.workflow_id);
        Ok((!host_steps || registered_here).then(|| Arc::new(workflow)))
    }

    /// The unfinished top-level runs this engine may take, with the claim for each: on a
    /// store directory every one not driven here (the engine before it is gone); on a
    /// database, those no live engine holds. Also says how many top-level runs are
    /// unfinished, and how many live engines take runs.
    pub(crate) fn free_runs(&self) -> Result<Vec<(RunRecord, Claim)>, EngineError> {
        Ok(self.survey()?.free)
    }

    fn survey(&self) -> Result<Survey, EngineError> {
        let store = self.shared.store.as_ref();
        let shared_store = self.shared.member.shared_store;
        let now = store.now_ms()?;
        let engines = match shared_store {
            true => read_engines(store)?,
            false => HashMap::new(),
        };
        let claimers = engines.values().filter(|(e, _)| e.claims && e.alive_at(now)).count();
        let others = engines
            .values()
            .filter(|(e, _)| e.claims && e.alive_at(now) && e.id != self.engine_id())
            .count();
        self.shared.member.peers.store(others, std::sync::atomic::Ordering::Relaxed);
        let mut survey = Survey {
            free: Vec::new(),
            top_level: 0,
            claimers: claimers.max(1),
            offers: Vec::new(),
            offered: 0,
        };
        // The claim on a run whose lease is `previous`, unless a live engine holds it.
        let me = self.engine_id();
        let claim = |previous: Option<Vec<u8>>| {
            let heartbeat = |holder: &str| Ok(engines.get(holder).map(|(_, bytes)| bytes.clone()));
            Claim::on(previous, me, shared_store, now, heartbeat).map(Result::ok)
        };
        // The runs driven here now: not to be claimed again.
        let driven: HashSet<String> =
            self.runs.lock().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect();
        if shared_store {
            let offered = super::flow::spread::offered(store)?;
            let keys: Vec<Vec<u8>> = offered.iter().map(|(id, _)| lease_key(id)).collect();
            let leases = store.get_many(Table::Leases, &keys)?;
            let mut stale = Batch::default();
            for ((id, scope), previous) in offered.into_iter().zip(leases) {
                let Some(run) = records::get_run(store, &id)? else {
                    super::flow::spread::withdraw(&mut stale, &id);
                    continue;
                };
                if run.status.is_terminal() {
                    super::flow::spread::withdraw(&mut stale, &id);
                    continue;
                }
                survey.offered += 1;
                if driven.contains(&id) {
                    continue;
                }
                let Some(claim) = claim(previous)? else { continue };
                survey.offers.push((run, claim, scope));
            }
            if !stale.is_empty() {
                self.shared.store.commit(&stale)?;
            }
        }
        // Child runs (their ids name their parent: `RUN:step...`) go with their parent.
        let ids: Vec<String> =
            records::active_run_ids(store)?.into_iter().filter(|id| !id.contains(':')).collect();
        let keys: Vec<Vec<u8>> = ids.iter().map(|id| lease_key(id)).collect();
        let leases = store.get_many(Table::Leases, &keys)?;
        for (id, previous) in ids.into_iter().zip(leases) {
            survey.top_level += 1;
            if driven.contains(&id) {
                continue;
            }
            let Some(claim) = claim(previous)? else { continue };
            // Only the runs nobody holds are read: a queued run waits for its turn.
            let Some(run) = records::get_run(store, &id)? else { continue };
            if run.status == RunStatus::Queued || run.status.is_terminal() {
                survey.top_level -= 1;
                continue;
            }
            survey.free.push((run, claim));
        }
        Ok(survey)
    }

    /// Claims, up to this engine's share, the unfinished top-level runs that no live
    /// engine holds and that it can run.
    fn claim_free_runs(&self) -> Result<usize, EngineError> {
        let survey = self.survey()?;
        let mut mine = self.runs.lock().unwrap_or_else(|e| e.into_inner()).len();
        // A fair share each, so that a new engine, or the ones left after a death, share
        // the work.
        let share = survey.top_level.div_ceil(survey.claimers).max(1);
        let share = self.shared.member.max_runs.map_or(share, |max| share.min(max));
        let mut claimed = 0;
        // Each engine goes through the free runs in an order of its own, so that engines
        // claiming at once mostly take different runs instead of racing for the same ones.
        let mut free = survey.free;
        free.sort_by_cached_key(|(run, _)| claim_order(self.engine_id(), &run.id));
        for (run, claim) in free {
            if mine >= share {
                continue;
            }
            let Some(workflow) = self.can_run(&run)? else {
                tracing::debug!(run = %run.id, "a free run this engine cannot run");
                continue;
            };
            let id = run.id.clone();
            match &claim.from(self.engine_id()) {
                Some(from) => tracing::info!(run = %id, %from, "taking over a run"),
                None => tracing::info!(run = %id, "claiming a run"),
            }
            self.spawn_driver(workflow, run, Owner::Claiming(claim))?;
            mine += 1;
            claimed += 1;
        }
        // Iterations that loops offered: a fair share of them too.
        let share = survey.offered.div_ceil(survey.claimers).max(1);
        let mut driving = self
            .runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .filter(|id| id.contains(':'))
            .count();
        let mut offers = survey.offers;
        offers.sort_by_cached_key(|(run, _, _)| claim_order(self.engine_id(), &run.id));
        for (run, claim, scope) in offers {
            if driving >= share {
                break;
            }
            let id = run.id.clone();
            match self.spawn_iteration(run, claim, &scope) {
                Ok(true) => {
                    tracing::debug!(run = %id, "claimed an offered iteration");
                    driving += 1;
                    claimed += 1;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(run = %id, error = %e, "cannot drive an offered iteration")
                }
            }
        }
        Ok(claimed)
    }

    /// Drives an offered iteration here, with the names its loop wrote; false if this
    /// engine cannot run it (a host step of a workflow not registered here) or its loop is
    /// over.
    fn spawn_iteration(
        &self,
        run: RunRecord,
        claim: Claim,
        scope_id: &str,
    ) -> Result<bool, EngineError> {
        let store = self.shared.store.as_ref();
        let Some(link) = run.parent.clone() else { return Ok(false) };
        let Some(scope) = super::flow::spread::scope(store, &self.shared.sealer, scope_id)? else {
            return Ok(false);
        };
        let parent = records::get_run(store, &link.run_id)?
            .ok_or_else(|| EngineError::UnknownRun(link.run_id.clone()))?;
        let Some(parent_wf) = self.can_run(&parent)? else { return Ok(false) };
        let index = parent_wf.index_of(&link.step_id).ok_or_else(|| EngineError::UnknownStep {
            run_id: parent.id.clone(),
            step_id: link.step_id.clone(),
            hint: String::new(),
        })?;
        // The body as its loop compiled it (with the names around it), else as stored.
        let body = match parent_wf.body(index) {
            Some(body) => body.clone(),
            None => match &parent_wf.step(index).flow().workflow {
                Some(id) => super::registry::registered_workflow(&self.shared, id)?,
                None => return Ok(false),
            },
        };
        let workflow = match body.definition_hash() == run.definition {
            true => body,
            false => Arc::new(self.compile(records::get_definition(store, &run.definition)?)?),
        };
        let (outer, mask) = scope.into_parts(self.shared.clock.clone());
        let frame = super::run::Frame {
            outer,
            context: None,
            mask,
            stop: tokio_util::sync::CancellationToken::new(),
            kill: tokio_util::sync::CancellationToken::new(),
            abandon: tokio_util::sync::CancellationToken::new(),
            depth: 1,
            fence: None,
        };
        self.spawn_driver_in(workflow, run, Owner::Claiming(claim), frame)?;
        Ok(true)
    }

    /// Gives up the runs driven here whose lease another engine holds now: after a
    /// heartbeat came late (a pause, a lost database), the others may have claimed them.
    fn give_up_lost_runs(&self) -> Result<(), EngineError> {
        let store = self.shared.store.as_ref();
        let driven: Vec<(String, super::RunHandle)> = self
            .runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(id, h)| (id.clone(), h.clone()))
            .collect();
        for (id, handle) in driven {
            let lease = Lease::get(store, &id)?.as_deref().and_then(Lease::decode);
            if lease.as_ref().is_some_and(|l| l.engine != self.engine_id()) {
                let _ = handle.control.send(super::run::Msg::GiveUp);
            }
        }
        Ok(())
    }

    /// Starts the heartbeat and the claims of an engine on a shared store.
    pub(crate) fn join_cluster(&self) {
        let member = &self.shared.member;
        if !member.shared_store || !member.drives {
            return;
        }
        let weak = self.downgrade();
        let shutdown = self.shutdown_token();
        let every = member.beat_every();
        let lease_ms = member.lease.as_millis() as u64;
        self.spawn_background(async move {
            loop {
                let Some(engine) = weak.upgrade() else { break };
                match engine.beat().await {
                    Ok(before) => {
                        let now = engine.shared.member.last_beat.lock().unwrap_or_else(|e| e.into_inner()).unwrap_or(0);
                        if before.is_some_and(|b| now.saturating_sub(b) > lease_ms / 2) {
                            tracing::warn!(late_ms = now.saturating_sub(before.unwrap_or(now)), "heartbeat came late; checking which runs are still this engine's");
                            if let Err(e) = engine.give_up_lost_runs() {
                                tracing::warn!(error = %e, "cannot check the leases of this engine's runs");
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "heartbeat failed; trying again"),
                }
                drop(engine);
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(every) => {}
                }
            }
        });
        let weak = self.downgrade();
        let shutdown = self.shutdown_token();
        // What this engine has seen as it opened: a change after it is news.
        let store = self.shared.store.as_ref();
        let mut signals = Watched::opened(records::last_signal(store));
        let mut registry = Watched::opened(super::registry::last_change(store));
        let mut slots = Watched::opened(super::limits::slots_seen(store));
        self.spawn_background(Activity::track(None, async move {
            let mut polls = 0u64;
            loop {
                let Some(engine) = weak.upgrade() else { break };
                let store = engine.shared.store.as_ref();
                polls += 1;
                // Breakpoints and tag limits set through another engine, every second.
                if polls.is_multiple_of(4) {
                    let reloaded = engine
                        .shared
                        .breakpoints
                        .reload(store)
                        .and_then(|()| engine.shared.limits.reload(store));
                    if let Err(e) = reloaded {
                        tracing::debug!(error = %e, "cannot read breakpoints and limits");
                    }
                    // Workflows registered, activated, enabled or disabled elsewhere.
                    if registry.changed(super::registry::last_change(store), "the registry") {
                        super::registry::reload(&engine.shared);
                    }
                }
                // Signals sent by other engines: waiting steps and signal triggers look again.
                if signals.changed(records::last_signal(store), "new signals") {
                    engine.shared.signal_seq.send_modify(|n| *n += 1);
                }
                // Tag slots other engines gave back, while steps here wait for one.
                let limits = &engine.shared.limits;
                if limits.anyone_waiting()
                    && slots.changed(super::limits::slots_seen(store), "tag slots")
                {
                    limits.slots_changed();
                }
                if let Err(e) = engine.apply_requests().await {
                    tracing::warn!(error = %e, "cannot apply the actions other engines sent");
                }
                if engine.shared.member.claims {
                    if let Err(e) = engine.claim_free_runs() {
                        tracing::warn!(error = %e, "cannot look for runs to take");
                    }
                }
                drop(engine);
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(POLL) => {}
                }
            }
        }));
    }
}

/// A value read from the store at each poll: news when it changes.
struct Watched<T> {
    seen: Option<T>,
}

impl<T: PartialEq> Watched<T> {
    /// What the engine saw as it opened: a change after it is news.
    fn opened(read: Result<T, StoreError>) -> Self {
        Watched { seen: read.ok() }
    }

    /// Whether `read` differs from what was seen before (a first read is no news).
    fn changed(&mut self, read: Result<T, StoreError>, what: &str) -> bool {
        match read {
            Ok(now) if self.seen.as_ref() != Some(&now) => self.seen.replace(now).is_some(),
            Ok(_) => false,
            Err(e) => {
                tracing::debug!(error = %e, "cannot read {what}");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{Format, Source};

    #[test]
    fn host_steps_are_found_in_loop_bodies_too() {
        let parse = |yaml: &str| Source::new("t.yaml", yaml, Format::Yaml).parse().unwrap();
        let flat = parse("id: a\nsteps:\n  - {id: s, type: shell, command: 'true'}\n");
        let nested = parse("id: b\nsteps:\n  - {id: l, type: foreach, over: '${range(0, 2)}', steps: [{id: j, type: java}]}\n");
        assert!(!super::has_host_steps(&flat.steps));
        assert!(super::has_host_steps(&nested.steps));
    }
}
