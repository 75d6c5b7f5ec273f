#!/usr/bin/env python3
"""Cluster test: three `baton serve` engines on one PostgreSQL database, SIGKILLed and
SIGSTOPped at random while they drive runs; every run still ends exactly as specified.

    python3 tests/cluster/cluster_test.py --baton target/release/baton [--runs 300]

It starts a throwaway PostgreSQL server (tests/cluster/pg.py) and three engines
`baton serve --store URL --engine-id e1..e3 --lease 2s`. Everything else goes through the
CLI as a client of the database, from other processes, like an operator would:

  - `baton register` of two workflows: `cluster-tick`, with a cron trigger every second
    (`* * * * * *`) and one shell step, and `cluster-work`, ten steps: nine shell steps
    with short sleeps and one foreach of three iterations (one shell step each). Every shell
    step appends "RUN_ID STEP_ID ATTEMPT ENGINE BEGAN_MS" ($BATON_RUN_ID, $BATON_STEP_ID,
    $BATON_ATTEMPT, $BATON_ENGINE_ID, the time) to a ledger file;
  - `baton start cluster-work --request-id ...` of --runs runs, spread over the first part of
    the fault phase, so that engines die while runs are being claimed, started and driven;
  - meanwhile, for --fault-seconds (and until at least --min-faults faults), a random fault
    every 1.2-3 s on a random engine, at most two engines down at once: SIGKILL and a restart
    with the same engine id 0.2-4 s later (before or after its lease ends), or SIGSTOP for
    longer than the lease then SIGCONT (the frozen engine wakes up having lost its runs).

Then every engine is up again, and the test waits (bounded) for every run to end. It checks:

  - `baton runs --json`: every run started and every run the cron trigger started is there
    and SUCCEEDED; every engine drove runs (`engine`);
  - `baton show RUN --json --all` of every run and of every foreach iteration: each step
    listed exactly once, SUCCEEDED, attempt 1 (a step relaunched after a take-over keeps
    its attempt); the foreach's rollup counts its three iterations SUCCEEDED;
  - the ledger: every shell step of every run (and iteration) ran; no attempt ran more
    than twice (more only if the engines relaunched it more than once, as their logs say:
    once plus once per relaunch); one that began after the end the store recorded for it
    (an engine frozen between a launch and its process) is shown; no line belongs to a
    run, step or engine the store does not know;
  - `baton firings cluster-tick --json`: every second from the first firing (due within a
    few seconds of the registration) to the end fired exactly once, each with its own run;
    the engines that were already running fire a workflow a client registered;
  - take-overs (`baton timeline RUN --json`: a run event whose `error` is "taken over from
    engine X"): each names another engine than X. It prints the take-over times: from each
    SIGKILL/SIGSTOP of X to the take-over of X's runs (median and max over faults, and
    over runs).

Every process it started (engines, clients, PostgreSQL) is ended at the end, also on
failure. On failure it prints each violation naming runs and steps, and keeps the work
directory (ledger.txt, e1.log..e3.log, faults.json, and store.json: what the CLI showed of
every run). Python 3 standard library only.
"""

import argparse
import collections
import concurrent.futures
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import pg  # noqa: E402  (tests/cluster/pg.py)

ENGINES = ("e1", "e2", "e3")
LEASE_S = 2.0
COMMAND_TIMEOUT = 60  # seconds for any one CLI call before it counts as hung
FINISHED = {"SUCCEEDED", "FAILED", "STOPPED", "KILLED"}
ITERATIONS = 3  # of the foreach
FIRST_FIRING_WITHIN = 5.0  # seconds from the registration to the first cron firing
TAKEOVER = "taken over from engine "

# Every shell step appends one line to the ledger (with the time it began, in ms), then
# sleeps a little. One short write to a file opened for appending: lines never mix.
LOG = 'echo "$BATON_RUN_ID $BATON_STEP_ID $BATON_ATTEMPT $BATON_ENGINE_ID $(date +%s%3N)" >> "${ledger}"'
# What an engine logs when it launches again an attempt that was running when the run
# changed hands (a take-over, or a restart of the same engine id).
RELAUNCH = re.compile(r"relaunching a step that was running run=(\S+) step=(\S+) attempt=(\d+)")
# A step may begin this long after the end recorded in the store (clock read by two processes).
CLOCK_SLACK_MS = 50


class Violation(Exception):
    pass


# ---------------------------------------------------------------------------------------
# The workflows


def work_yaml():
    """Ten steps: nine shell steps and a foreach of ITERATIONS, as a small DAG."""
    shell = [  # (id, depends_on, sleep seconds)
        ("s01", [], 0.10), ("s02", ["s01"], 0.15), ("s03", ["s01"], 0.05), ("s04", ["s02"], 0.20),
        ("s06", ["s04", "s05"], 0.10), ("s07", ["s06"], 0.05), ("s08", ["s06"], 0.15),
        ("s09", ["s07", "s08"], 0.10), ("s10", ["s09"], 0.05),
    ]
    out = ["id: cluster-work", "params:", '  ledger: "/dev/null"', "steps:"]
    for sid, deps, sleep in shell:
        out += ["  - id: %s" % sid, "    type: shell",
                "    command: %s" % json.dumps("%s; sleep %.2f" % (LOG, sleep))]
        if deps:
            out.append("    depends_on: [%s]" % ", ".join(deps))
        if sid == "s04":
            out += ["  - id: s05", "    type: foreach", "    depends_on: [s03]",
                    '    over: "${range(0, %d)}"' % ITERATIONS, "    as: i", "    steps:",
                    "      - id: part", "        type: shell",
                    "        command: %s" % json.dumps("%s; sleep 0.10" % LOG)]
    return "\n".join(out) + "\n"


WORK_STEPS = ["s01", "s02", "s03", "s04", "s05", "s06", "s07", "s08", "s09", "s10"]
WORK_SHELL = [s for s in WORK_STEPS if s != "s05"]
ITERATION_STEPS = ["part"]


def tick_yaml(ledger):
    return "\n".join([
        "id: cluster-tick",
        "params:",
        "  ledger: %s" % json.dumps(ledger),
        "triggers:",
        '  - cron: "* * * * * *"   # every second (6 fields: with seconds)',
        "steps:",
        "  - id: tick",
        "    type: shell",
        "    command: %s" % json.dumps(LOG),
    ]) + "\n"


# ---------------------------------------------------------------------------------------
# Processes


def clean_env():
    env = dict(os.environ)
    env.pop("BATON_HOME", None)
    env.pop("BATON_LOG", None)
    return env


class Cli:
    """`baton` commands as clients of the database."""

    def __init__(self, binary, url):
        self.binary = binary
        self.url = url

    def call(self, *args):
        cmd = [self.binary, "--store", self.url] + list(args)
        try:
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                               timeout=COMMAND_TIMEOUT, env=clean_env())
        except subprocess.TimeoutExpired:
            raise Violation("`baton %s` did not finish within %ds" % (" ".join(args), COMMAND_TIMEOUT))
        if p.returncode != 0:
            raise Violation("`baton %s` exited with %d:\n%s%s" % (
                " ".join(args), p.returncode, p.stdout.decode(errors="replace")[-2000:],
                p.stderr.decode(errors="replace")[-2000:]))
        return p.stdout.decode()

    def json(self, *args):
        text = self.call(*args)
        try:
            return json.loads(text)
        except ValueError as e:
            raise Violation("`baton %s` printed no JSON (%s):\n%s" % (" ".join(args), e, text[:2000]))


class EngineProcess:
    """One engine id; a new process at each restart, all logging to the same file."""

    def __init__(self, binary, url, engine_id, log_path):
        self.binary, self.url, self.id, self.log_path = binary, url, engine_id, log_path
        self.proc = None
        self.starts = 0
        # Faults restart the engine from other threads; once ended, it stays ended.
        self.lock = threading.Lock()
        self.closed = False

    def start(self):
        with self.lock:
            if not self.closed:
                self._start()

    def _start(self):
        env = clean_env()
        env["BATON_LOG"] = "info"
        env["NO_COLOR"] = "1"  # plain logs
        with open(self.log_path, "ab") as log:
            log.write(b"\n===== cluster_test: start %d of engine %s at %.3f\n" % (
                self.starts + 1, self.id.encode(), time.time()))
            log.flush()
            # A session of its own: the engine and its shell steps are one process group,
            # ended together at the end of the test.
            self.proc = subprocess.Popen(
                [self.binary, "--store", self.url, "--engine-id", self.id, "serve", "--lease", "%gs" % LEASE_S],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, start_new_session=True)
        self.starts += 1

    def signal(self, sig):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def kill(self):
        self.signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()

    def freeze(self):
        self.signal(signal.SIGSTOP)

    def thaw(self):
        self.signal(signal.SIGCONT)

    def exited(self):
        """The exit status if the engine died by itself (not a kill of ours), else None."""
        return None if self.proc is None else self.proc.poll()

    def end(self):
        """Ends the engine's process group: SIGCONT (if frozen), SIGTERM, then SIGKILL."""
        with self.lock:
            self.closed = True
        if self.proc is None:
            return
        pgid = self.proc.pid  # the leader of its own session
        for sig in (signal.SIGCONT, signal.SIGTERM):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()


def wait_until(predicate, seconds, step=0.25):
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(step)


# ---------------------------------------------------------------------------------------
# The phases


class Test:
    def __init__(self, args, workdir, url, server):
        self.args = args
        self.server = server
        # Set while the database restarts (and a moment after): commands may fail then.
        self.db_down = threading.Event()
        self.workdir = workdir
        self.cli = Cli(args.baton, url)
        self.ledger = os.path.join(workdir, "ledger.txt")
        self.rng = random.Random(args.seed)
        self.engines = {e: EngineProcess(args.baton, url, e, os.path.join(workdir, "%s.log" % e))
                        for e in ENGINES}
        self.problems = []  # violations found along the way; checked ones are added at the end
        self.lock = threading.Lock()
        self.started = {}  # request id -> run id
        self.faults = []  # dicts: engine, kind, at_ms (wall clock = the database's, same machine)
        self.registered_ms = None
        self.end_ms = None
        self.stopping = threading.Event()  # set at the end: the threads stop starting things

    def problem(self, text):
        with self.lock:
            self.problems.append(text)

    def start_engines(self):
        for e in self.engines.values():
            e.start()

        def all_alive():
            try:
                listed = self.cli.json("engines", "--json")
            except Violation:
                return False
            return {i["id"] for i in listed if i["alive"]} == set(ENGINES)
        if not wait_until(all_alive, 30):
            raise Violation("the three engines did not all show alive in `baton engines` within 30s; see %s/e*.log"
                            % self.workdir)

    def register(self):
        work = os.path.join(self.workdir, "cluster-work.yaml")
        tick = os.path.join(self.workdir, "cluster-tick.yaml")
        with open(work, "w") as f:
            f.write(work_yaml())
        with open(tick, "w") as f:
            f.write(tick_yaml(self.ledger))
        self.cli.call("register", work)
        self.registered_ms = time.time() * 1000
        self.cli.call("register", tick)

        # The engines ran before the registration: they must see it and fire.
        def fired():
            return self.cli.json("firings", "cluster-tick", "--json")
        t0 = time.monotonic()
        if wait_until(lambda: any(f.get("run_id") for f in fired()), FIRST_FIRING_WITHIN):
            print("first cron firing %.1fs after the registration" % (time.monotonic() - t0), flush=True)
        else:
            self.problem("workflow cluster-tick, registered by a client while engines e1-e3 ran, did not fire "
                         "within %.0fs: the engines' schedulers did not see the registration (firings: %s)"
                         % (FIRST_FIRING_WITHIN, fired()[:3]))

    def starter(self, indices, deadline, rng):
        """Starts runs `indices`, paced to end by `deadline` (monotonic)."""
        for n, i in enumerate(indices):
            pause = (deadline - time.monotonic()) / max(1, len(indices) - n)
            if pause > 0:
                time.sleep(rng.uniform(0, 2 * pause))
            request = "start-%04d" % i
            if self.stopping.is_set():
                return
            for attempt in range(10):
                try:
                    run = self.cli.json("start", "cluster-work", "-p", "ledger=" + self.ledger,
                                        "--request-id", request, "--json")
                    with self.lock:
                        self.started[request] = run["run_id"]
                    break
                except Violation as v:
                    # Retried with the same request id: it starts the run at most once. While
                    # the database restarts, a command failing is expected.
                    if self.db_down.is_set():
                        time.sleep(1)
                        continue
                    self.problem("start %s, attempt %d: %s" % (request, attempt + 1, v))
                    if attempt >= 2:
                        break

    def faulter(self, stop_at):
        """Injects faults until `stop_at` (monotonic) and --min-faults, then brings every engine up."""
        threads = []
        busy = set()

        def kill_and_restart(e, down):
            try:
                e.kill()
                time.sleep(down)
                e.start()
            finally:
                with self.lock:
                    busy.discard(e.id)

        def freeze(e, frozen):
            try:
                e.freeze()
                time.sleep(frozen)
                e.thaw()
            finally:
                with self.lock:
                    busy.discard(e.id)

        def restart_database():
            # Every engine loses its connections at once; committed transitions survive.
            self.db_down.set()
            try:
                self.server.restart(down_seconds=1.0, mode="immediate")
                time.sleep(3)
            finally:
                self.db_down.clear()

        restart_at = time.monotonic() + (stop_at - time.monotonic()) / 2
        while (time.monotonic() < stop_at or len(self.faults) < self.args.min_faults) \
                and not self.stopping.is_set():
            time.sleep(self.rng.uniform(1.2, 3.0))
            if restart_at is not None and time.monotonic() >= restart_at:
                restart_at = None
                with self.lock:
                    self.faults.append({"engine": None, "kind": "database", "at_ms": time.time() * 1000})
                t = threading.Thread(target=restart_database, daemon=True)
                t.start()
                threads.append(t)
                continue
            with self.lock:
                free = [e for e in ENGINES if e not in busy]
                if len(busy) >= 2 or not free:
                    continue  # one engine stays up
                e = self.engines[self.rng.choice(free)]
                busy.add(e.id)
            for other in self.engines.values():
                status = other.exited()
                if other.id not in busy and status is not None:
                    self.problem("engine %s exited by itself with status %s; see %s" % (
                        other.id, status, other.log_path))
                    other.start()
            kind = self.rng.choice(["kill", "stop"])
            fault = {"engine": e.id, "kind": kind, "at_ms": time.time() * 1000}
            if kind == "kill":
                fault["down_s"] = self.rng.uniform(0.2, 4.0)
                t = threading.Thread(target=kill_and_restart, args=(e, fault["down_s"]), daemon=True)
            else:
                fault["down_s"] = LEASE_S + self.rng.uniform(0.5, 2.0)
                t = threading.Thread(target=freeze, args=(e, fault["down_s"]), daemon=True)
            with self.lock:
                self.faults.append(fault)
            t.start()
            threads.append(t)
        for t in threads:
            t.join()

    def run_phase(self):
        n = self.args.runs
        t0 = time.monotonic()
        fault_end = t0 + self.args.fault_seconds
        start_end = t0 + self.args.fault_seconds * 0.9
        indices = list(range(n))
        # Two clients start runs side by side; daemon threads, so that a test stopped
        # midway does not wait for them (self.stopping tells them to stop).
        starters = [threading.Thread(target=self.starter, daemon=True,
                                     args=(indices[k::2], start_end, random.Random(self.args.seed + k + 1)))
                    for k in range(2)]
        faulter = threading.Thread(target=self.faulter, args=(fault_end,), daemon=True)
        for t in starters + [faulter]:
            t.start()
        for t in starters + [faulter]:
            t.join()
        kinds = collections.Counter(f["kind"] for f in self.faults)
        print("started %d runs; %d faults in %.0fs (%d SIGKILL+restart, %d SIGSTOP+SIGCONT, %d database restart)" % (
            len(self.started), len(self.faults), time.monotonic() - t0, kinds["kill"], kinds["stop"],
            kinds["database"]), flush=True)
        for e in self.engines.values():
            if e.exited() is not None:
                self.problem("engine %s exited by itself with status %s; see %s" % (e.id, e.exited(), e.log_path))
                e.start()

    def wait_for_the_end(self):
        t0 = time.monotonic()

        def unfinished():
            runs = self.cli.json("runs", "--workflow", "cluster-work", "--json")
            ids = {r["id"] for r in runs}
            return [r for r in runs if r["status"] not in FINISHED] + [
                {"id": i, "status": "missing"} for i in set(self.started.values()) - ids]
        left = wait_until(lambda: not unfinished(), self.args.end_timeout, step=1.0)
        if not left:
            left = unfinished()
            shown = ", ".join("%s (%s)" % (r["id"], r["status"]) for r in left[:20])
            raise Violation("%d run(s) of cluster-work did not end within %ds after the faults: %s" % (
                len(left), self.args.end_timeout, shown))
        print("every run ended %.1fs after the last fault" % (time.monotonic() - t0), flush=True)
        # The cron trigger: stop it, and let the runs it started end.
        self.end_ms = time.time() * 1000
        self.cli.call("disable", "cluster-tick")

        def tick_unfinished():
            return [r for r in self.cli.json("runs", "--workflow", "cluster-tick", "--json")
                    if r["status"] not in FINISHED]
        if not wait_until(lambda: not tick_unfinished(), 30, step=0.5):
            left = tick_unfinished()
            raise Violation("%d run(s) of cluster-tick did not end within 30s: %s" % (
                len(left), ", ".join(r["id"] for r in left[:20])))

    # -----------------------------------------------------------------------------------
    # The checks

    def check(self):
        problems = []
        runs = self.cli.json("runs", "--json")
        by_id = {r["id"]: r for r in runs}
        if len(by_id) != len(runs):
            problems.append("`baton runs` lists a run twice")
        work = {i: r for i, r in by_id.items() if r["workflow_id"] == "cluster-work"}
        tick = {i: r for i, r in by_id.items() if r["workflow_id"] == "cluster-tick"}
        others = sorted(set(by_id) - set(work) - set(tick))
        if others:
            problems.append("runs of no workflow of this test: %s" % ", ".join(others[:10]))
        started = set(self.started.values())
        if len(started) != len(self.started):
            problems.append("two request ids gave the same run")
        for i in sorted(started - set(work)):
            problems.append("run %s was started (`baton start` said so) but is not in the store" % i)
        for i in sorted(set(work) - started):
            problems.append("run %s of cluster-work is in the store but no `baton start` started it" % i)
        for r in runs:
            if r["status"] != "SUCCEEDED":
                problems.append("run %s (%s) is %s: %s" % (r["id"], r["workflow_id"], r["status"], r.get("error")))
        drivers = collections.Counter(r.get("engine") for r in work.values())
        for e in ENGINES:
            if not drivers.get(e):
                problems.append("engine %s drove no run of cluster-work (engines of the runs: %s)" % (e, dict(drivers)))

        # Each run's steps and its iterations, and its timeline, from the store (in parallel:
        # each call is a process and a connection).
        def details(run_id):
            shown = self.cli.json("show", run_id, "--json", "--all")
            timeline = self.cli.json("timeline", run_id, "--json")
            iterations = {}
            if run_id in work:
                for k in range(ITERATIONS):
                    child = "%s:s05:%d" % (run_id, k)
                    try:
                        iterations[child] = self.cli.json("show", child, "--json", "--all")
                    except Violation as v:
                        iterations[child] = {"error": str(v)}
            return run_id, shown, timeline, iterations

        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            fetched = list(pool.map(details, sorted(by_id)))
        self.dump("store.json", {"runs": runs, "details": fetched})

        def ends(shown, steps):
            ended = {s["id"]: s.get("ended_ms") for s in shown.get("steps", []) if s["status"] == "SUCCEEDED"}
            return steps, {s: ended[s] for s in steps if s in ended}
        shell_steps = {}  # run or iteration id -> (shell steps, {those SUCCEEDED: end in the store})
        takeovers = collections.defaultdict(list)  # run id -> [(at_ms, from, to)]
        for run_id, shown, timeline, iterations in fetched:
            expected = WORK_STEPS if run_id in work else ["tick"]
            problems += self.check_steps(run_id, shown, expected)
            shell_steps[run_id] = ends(shown, WORK_SHELL if run_id in work else ["tick"])
            if run_id in work:
                s05 = next((s for s in shown["steps"] if s["id"] == "s05"), {})
                rollup = s05.get("rollup", {})
                if rollup.get("total") != ITERATIONS or rollup.get("counts") != {"SUCCEEDED": ITERATIONS}:
                    problems.append("run %s step s05 (foreach): rollup %s, expected %d iterations SUCCEEDED" % (
                        run_id, rollup, ITERATIONS))
            for child, child_shown in iterations.items():
                if "error" in child_shown:
                    problems.append("iteration %s of run %s: %s" % (child, run_id, child_shown["error"]))
                    continue
                problems += self.check_steps(child, child_shown, ITERATION_STEPS)
                if child_shown["run"].get("parent", {}).get("run_id") != run_id:
                    problems.append("iteration %s: parent %s, expected run %s" % (
                        child, child_shown["run"].get("parent"), run_id))
                shell_steps[child] = ends(child_shown, ITERATION_STEPS)
            for ev in timeline:
                error = ev.get("error") or ""
                if ev.get("event") == "run" and error.startswith(TAKEOVER):
                    source, to = error[len(TAKEOVER):], ev.get("engine")
                    if to not in ENGINES or source not in ENGINES or to == source:
                        problems.append("run %s: take-over event %r by engine %r" % (run_id, error, to))
                    takeovers[run_id].append((ev["at_ms"], source, to))

        problems += self.check_ledger(shell_steps)
        problems += self.check_firings(tick)
        self.report_takeovers(takeovers)
        statuses = collections.Counter(r["status"] for r in runs)
        print("runs: %d of cluster-work (driven last by %s), %d of cluster-tick; %s" % (
            len(work), ", ".join("%s: %d" % kv for kv in sorted(drivers.items(), key=str)), len(tick),
            ", ".join("%d %s" % (n, st) for st, n in sorted(statuses.items()))), flush=True)
        return problems

    @staticmethod
    def check_steps(run_id, shown, expected):
        problems = []
        listed = [s["id"] for s in shown.get("steps", [])]
        if listed != expected:
            counts = collections.Counter(listed)
            problems.append("run %s: steps %s, expected each of %s once (twice: %s, missing: %s)" % (
                run_id, listed, expected, sorted(k for k, n in counts.items() if n > 1),
                sorted(set(expected) - set(listed))))
        if ":" in run_id and shown.get("run", {}).get("status") != "SUCCEEDED":
            # A foreach iteration (top-level runs are checked in the list of runs).
            problems.append("iteration %s is %s: %s" % (
                run_id, shown.get("run", {}).get("status"), shown.get("run", {}).get("error")))
        skipped = [s["id"] for s in shown.get("steps", []) if s["status"] == "SKIPPED"]
        if skipped:
            problems.append("run %s: steps %s SKIPPED" % (run_id, ", ".join(skipped)))
        for s in shown.get("steps", []):
            if s["status"] not in ("SUCCEEDED", "SKIPPED"):
                problems.append("run %s step %s is %s (%s)" % (run_id, s["id"], s["status"], s.get("error")))
            elif s["status"] == "SUCCEEDED" and s.get("attempt") != 1:
                problems.append("run %s step %s: attempt %s, expected 1 (a relaunch keeps its attempt)" % (
                    run_id, s["id"], s.get("attempt")))
        return problems

    def relaunches(self):
        """(run, step, attempt) -> how many times the engines logged relaunching it."""
        found = collections.Counter()
        for e in self.engines.values():
            with open(e.log_path, errors="replace") as f:
                for m in RELAUNCH.finditer(f.read()):
                    found[(m.group(1), m.group(2), int(m.group(3)))] += 1
        return found

    def check_ledger(self, shell_steps):
        """`shell_steps`: run or iteration id -> (its shell steps, {the ones the store says
        SUCCEEDED: their end in the store, ms})."""
        problems = []
        executions = collections.defaultdict(list)  # (run, step, attempt) -> [(line, engine, began_ms)]
        with open(self.ledger, "rb") as f:
            lines = f.read().decode(errors="replace").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        for n, line in enumerate(lines, 1):
            parts = line.split(" ")
            if len(parts) != 5 or not parts[2].isdigit() or not parts[4].isdigit():
                problems.append("ledger line %d is malformed: %r" % (n, line))
                continue
            run_id, step, attempt, engine, began = parts
            if engine not in ENGINES:
                problems.append("ledger line %d: run %s step %s ran on engine %r, not one of %s" % (
                    n, run_id, step, engine, ", ".join(ENGINES)))
            if step not in shell_steps.get(run_id, ((), {}))[0]:
                problems.append("ledger line %d: step %s of run %s ran, which the store does not have" % (
                    n, step, run_id))
            executions[(run_id, step, int(attempt))].append((n, engine, int(began)))
        relaunched = self.relaunches()
        counts = collections.Counter()
        late_starts = []
        for run_id, (_, succeeded) in shell_steps.items():
            for step, ended_ms in succeeded.items():
                where = "run %s step %s" % (run_id, step)
                ran = executions.get((run_id, step, 1), [])
                counts[len(ran)] += 1
                if not ran:
                    problems.append("%s never ran (no ledger line)" % where)
                    continue
                # Twice at most: once, and once more if the run changed hands while it ran.
                # A run can change hands again before the relaunch ends: each relaunch the
                # engines logged allows one more.
                limit = max(2, 1 + relaunched[(run_id, step, 1)])
                said = "ledger lines %s, by %s" % ([n for n, _, _ in ran], [e for _, e, _ in ran])
                if len(ran) > limit:
                    problems.append("%s attempt 1 ran %d times (%s); at most %d (the engines relaunched it %d times)"
                                    % (where, len(ran), said, limit, relaunched[(run_id, step, 1)]))
                # An engine frozen between launching an attempt and its process starting
                # (SIGSTOP) starts it when it wakes, maybe after the engine that took the run
                # over recorded the end: the second execution the bound above allows. Counted
                # and shown, not a violation.
                late = [n for n, _, began in ran if ended_ms is not None and began > ended_ms + CLOCK_SLACK_MS]
                if late:
                    late_starts.append("%s (ledger lines %s; %s)" % (where, late, said))
        for (run_id, step, attempt), ran in sorted(executions.items()):
            if attempt != 1:
                problems.append("run %s step %s: attempt %d ran (ledger lines %s), but no step retries" % (
                    run_id, step, attempt, [n for n, _, _ in ran]))
        print("ledger: %d lines; executions per shell step: %s; relaunches logged: %d" % (
            len(lines), ", ".join("%dx: %d" % kv for kv in sorted(counts.items())), sum(relaunched.values())),
            flush=True)
        if late_starts:
            print("executions that began after their step's end was recorded (a frozen engine woke): %d: %s"
                  % (len(late_starts), "; ".join(late_starts[:5])), flush=True)
        return problems

    def check_firings(self, tick_runs):
        problems = []
        firings = self.cli.json("firings", "cluster-tick", "--json")
        fired = [f for f in firings if f.get("run_id")]
        by_second = collections.defaultdict(list)
        for f in fired:
            by_second[f["scheduled_ms"]].append(f)
        for at, fs in sorted(by_second.items()):
            if len(fs) > 1:
                problems.append("cron time %d fired %d times: runs %s" % (at, len(fs), [f["run_id"] for f in fs]))
        for f in firings:
            if f["scheduled_ms"] % 1000:
                problems.append("a firing at %d, not on a second" % f["scheduled_ms"])
            if not f.get("run_id") and f["scheduled_ms"] < self.end_ms - 1000:
                problems.append("cron time %d (before the end) started no run: %s" % (
                    f["scheduled_ms"], f.get("reason")))
        run_ids = [f["run_id"] for f in fired]
        if len(set(run_ids)) != len(run_ids):
            problems.append("two firings name the same run")
        for i in sorted(set(run_ids) - set(tick_runs)):
            problems.append("firing's run %s is not in the store" % i)
        for i in sorted(set(tick_runs) - set(run_ids)):
            problems.append("run %s of cluster-tick was started by no firing" % i)
        if not fired:
            return problems + ["the cron trigger of cluster-tick never fired"]
        first = min(by_second)
        if first > self.registered_ms + FIRST_FIRING_WITHIN * 1000:
            problems.append("the first cron time fired is %.1fs after the registration" % (
                (first - self.registered_ms) / 1000))
        # Every second from the first to the end (less a second: the clock of the disable).
        missing = [t for t in range(first, int(self.end_ms) - 1000, 1000) if t not in by_second]
        if missing:
            problems.append("%d cron time(s) between the registration and the end never fired: %s" % (
                len(missing), missing[:20]))
        late = sorted((f["fired_ms"] - f["scheduled_ms"]) / 1000 for f in fired)
        print("cron: %d seconds fired once each (%.0fs..%.0fs after the registration); fired late by median "
              "%.2fs, max %.2fs" % (len(by_second), (first - self.registered_ms) / 1000,
                                    (max(by_second) - self.registered_ms) / 1000, statistics.median(late),
                                    late[-1]), flush=True)
        return problems

    def report_takeovers(self, takeovers):
        """Matches each take-over to the last fault of the engine it took from, before it."""
        per_fault = collections.defaultdict(list)  # fault index -> [seconds]
        unmatched = 0
        for run_id, events in takeovers.items():
            for at, source, _ in events:
                # The engine's last fault, or the database restart if it came later.
                before = [k for k, f in enumerate(self.faults)
                          if f["engine"] in (source, None) and f["at_ms"] <= at]
                if not before:
                    unmatched += 1
                    continue
                k = before[-1]
                per_fault[k].append((at - self.faults[k]["at_ms"]) / 1000)
        all_runs = sorted(s for v in per_fault.values() for s in v)
        last = sorted(max(v) for v in per_fault.values())
        first = sorted(min(v) for v in per_fault.values())
        total = sum(len(v) for v in takeovers.values())
        print("take-overs: %d runs taken over after %d of %d faults" % (total, len(per_fault), len(self.faults)))
        if per_fault:
            print("  from the fault to the first run taken over: median %.2fs, max %.2fs" % (
                statistics.median(first), first[-1]))
            print("  from the fault to the last run taken over:  median %.2fs, max %.2fs" % (
                statistics.median(last), last[-1]))
            print("  per run taken over:                         median %.2fs, max %.2fs (lease %.1fs)" % (
                statistics.median(all_runs), all_runs[-1], LEASE_S))
            by_kind = collections.defaultdict(list)
            for k, v in per_fault.items():
                by_kind[self.faults[k]["kind"]].append(min(v))
            for kind, v in sorted(by_kind.items()):
                print("  after a %s: first take-over median %.2fs, max %.2fs (%d faults)" % (
                    {"kill": "SIGKILL", "stop": "SIGSTOP"}.get(kind, "database restart"), statistics.median(v), max(v), len(v)))
        if unmatched:
            print("  %d take-over(s) of an engine no fault had hit (its heartbeat came late)" % unmatched)
        sys.stdout.flush()

    def dump(self, name, value):
        """Keeps what the test saw in the work directory, for a post-mortem."""
        with open(os.path.join(self.workdir, name), "w") as f:
            json.dump(value, f, indent=1)

    def end(self):
        self.stopping.set()
        for e in self.engines.values():
            e.end()
        self.dump("faults.json", self.faults)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baton", required=True, help="the baton binary (target/release/baton)")
    ap.add_argument("--runs", type=int, default=300, help="runs of the ten-step workflow (default 300)")
    ap.add_argument("--fault-seconds", type=float, default=60, help="how long faults go on (default 60)")
    ap.add_argument("--min-faults", type=int, default=20, help="faults at least (default 20)")
    ap.add_argument("--end-timeout", type=int, default=90, help="seconds for every run to end after the faults")
    ap.add_argument("--seed", type=int, default=int(time.time()), help="seed of the faults (default: the time)")
    ap.add_argument("--workdir", help="where the ledger and logs go (default: a temp dir, removed on success)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    args.baton = os.path.abspath(args.baton)
    if not os.access(args.baton, os.X_OK):
        ap.error("%s is not an executable (build it: cargo build -p baton-cli --release)" % args.baton)
    if args.workdir:
        workdir = os.path.abspath(args.workdir)
        if os.path.exists(workdir) and os.listdir(workdir):
            ap.error("%s is not empty" % workdir)
        os.makedirs(workdir, exist_ok=True)
    else:
        workdir = tempfile.mkdtemp(prefix="baton-cluster-")
    # Shell steps of every engine append to the ledger, as whichever user; so do the logs.
    print("cluster test: %d runs, faults for %.0fs (at least %d), lease %.0fs, seed %d\nwork dir: %s" % (
        args.runs, args.fault_seconds, args.min_faults, LEASE_S, args.seed, workdir), flush=True)

    t_all = time.monotonic()
    try:
        server = pg.Postgres()
    except pg.NotInstalled as e:
        print("skipped: %s" % e)
        return 0
    test = None
    failed = True
    try:
        url = server.create_database("baton_cluster")
        test = Test(args, workdir, url, server)
        test.start_engines()
        test.register()
        test.run_phase()
        test.wait_for_the_end()
        problems = test.problems + test.check()
        failed = bool(problems)
        if problems:
            shown = problems[:60]
            more = "" if len(problems) <= 60 else "\n  ... and %d more" % (len(problems) - 60)
            print("FAIL: %d violation(s):\n  %s%s" % (len(problems), "\n  ".join(shown), more))
    except Violation as v:
        print("FAIL: %s" % v)
        if test is not None and test.problems:
            print("  and earlier:\n  %s" % "\n  ".join(test.problems[:20]))
    finally:
        if test is not None:
            test.end()
        server.close()
    print("total: %.0fs" % (time.monotonic() - t_all))
    if failed:
        print("work dir kept: %s (ledger.txt, e1.log..e3.log, faults.json, store.json)" % workdir)
        return 1
    if args.keep or args.workdir:
        print("work dir kept: %s" % workdir)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
