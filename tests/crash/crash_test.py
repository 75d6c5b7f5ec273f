#!/usr/bin/env python3
"""Crash test: kill `baton run` with SIGKILL at random moments, recover, and check that
every run still completes exactly as specified, on both store engines.

    python3 tests/crash/crash_test.py --baton target/release/baton [--rounds 10]

For each store engine (redb, sled) it uses one workflow (a layered random DAG of `--steps`
steps from a fixed seed: sleep steps of 50-300ms, shell steps, a few noop steps,
max_parallel 16). Every shell step appends one line "<BATON_IDEMPOTENCY_KEY> in=<inputs>"
to a log file (path given as the workflow parameter `log`), where <inputs> are the outputs
of its upstream shell steps that it consumes via ${step.v}; it then writes its own outputs
`v` (a token fixed by the generator) and `got` (the inputs it received). About 8% of the
shell steps are flaky: their first attempt fails after logging, and a retry (300ms later)
succeeds, so crashes also hit steps waiting to retry.

It first runs the workflow once without a crash (to check the baseline and measure how long
a run takes). Then, each round: `baton run` on the same store (the store accumulates runs),
SIGKILL at a random moment between 0.2s and 90% of the measured duration, then `baton
recover --json` to finish the run. After all rounds it checks:

  - `baton runs --json`: every run SUCCEEDED, nothing unfinished, every run the killed
    processes announced is there, and `recover` has nothing left to do;
  - `baton show RUN --json` of every run: each step exactly once, SUCCEEDED, with attempt
    1 (2 for flaky steps: a step relaunched after a crash keeps its attempt), the outputs
    each shell step wrote and received, and no step started before its upstream steps ended;
  - the log: every shell step of every run ran at least once and at most twice (grouped by
    run/step, and by attempt for flaky steps; exactly once in the run that was not killed),
    with exactly the attempts expected, received exactly the upstream outputs it should have,
    and first ran after its upstream steps first ran; no execution belongs to a run or step
    the store does not know;
  - no attempt that the killed process reported over (SUCCEEDED, or RETRYING after a
    failure; progress is printed only once the transition is durable) ran again: a second
    execution would mean the store lost a recorded end.

It prints a report per engine and exits with 1 on any violation, naming it precisely.
Python 3 standard library only.
"""

import argparse
import collections
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ENGINES = ("redb", "sled")
MAX_PARALLEL = 16
COMMAND_TIMEOUT = 180  # seconds for any one baton command before it counts as hung

# "[   12/300]     1.5s s012 SUCCEEDED (attempt 2)": printed once the transition is durable.
PROGRESS = re.compile(r"^\[\s*\d+/\d+\]\s+[\d.]+s (\S+) (?:SUCCEEDED|RETRYING)(?: \(attempt (\d+)\))?(?::|$)")
ANNOUNCE = re.compile(r"^run (\S+): \d+ steps$")


class Violation(Exception):
    pass


# ---------------------------------------------------------------------------------------
# The workflow


class Step:
    def __init__(self, index, kind):
        self.index = index
        self.id = "s%03d" % index
        self.kind = kind
        self.deps = []  # step ids
        self.sleep_ms = 0  # sleep steps: duration; shell steps: time spent in `sleep`
        self.token = None  # shell steps: the output `v`
        self.consumes = []  # shell steps: ids of upstream shell steps whose `v` is used
        self.flaky = False  # shell steps: the first attempt fails (after logging), the second succeeds

    @property
    def attempts(self):
        return 2 if self.flaky else 1

    def expected_inputs(self, steps):
        return ",".join(steps[c].token for c in self.consumes)


def generate(n_steps, seed):
    """A layered random DAG; returns (steps by id in definition order, yaml text)."""
    rng = random.Random(seed)
    layers = []
    i = 0
    while i < n_steps:
        width = min(rng.randint(8, 22), n_steps - i)
        layers.append(list(range(i, i + width)))
        i += width
    by_index = {}
    for li, layer in enumerate(layers):
        for i in layer:
            r = rng.random()
            kind = "shell" if r < 0.55 else ("sleep" if r < 0.95 else "noop")
            step = Step(i, kind)
            if li > 0:
                prev = layers[li - 1]
                deps = rng.sample(prev, min(len(prev), rng.randint(1, 3)))
                if li > 1 and rng.random() < 0.3:
                    extra = rng.choice(layers[rng.randrange(0, li - 1)])
                    deps.append(extra)
                step.deps = ["s%03d" % d for d in sorted(set(deps))]
            if kind == "sleep":
                step.sleep_ms = rng.randint(50, 300)
            elif kind == "shell":
                step.sleep_ms = rng.randint(50, 300)
                step.token = "t%03dx%05d" % (i, rng.randrange(100000))
                step.flaky = rng.random() < 0.08
            by_index[i] = step
    steps = collections.OrderedDict((s.id, s) for s in (by_index[i] for i in sorted(by_index)))
    for s in steps.values():
        if s.kind == "shell":
            s.consumes = [d for d in s.deps if steps[d].kind == "shell"][:3]

    out = [
        "# Generated by tests/crash/crash_test.py (seed %d); do not edit." % seed,
        "id: crash-test",
        "params:",
        '  log: "/dev/null"',
        "max_parallel: %d" % MAX_PARALLEL,
        "steps:",
    ]
    for s in steps.values():
        out.append("  - id: %s" % s.id)
        out.append("    type: %s" % s.kind)
        if s.kind == "sleep":
            out.append("    duration: %dms" % s.sleep_ms)
        elif s.kind == "shell":
            inputs = ",".join("${%s.v}" % c for c in s.consumes)
            lines = [
                'printf \'%%s in=%%s\\n\' "$BATON_IDEMPOTENCY_KEY" "%s" >> "$LOG"' % inputs,
                "sleep %.3f" % (s.sleep_ms / 1000.0),
            ]
            if s.flaky:
                lines.append('if [ "$BATON_ATTEMPT" = 1 ]; then echo "flaky: first attempt fails" >&2; exit 1; fi')
            lines += [
                'echo "v=%s" >> "$BATON_OUTPUT"' % s.token,
            ]
            if s.consumes:
                lines.append('echo "got=%s" >> "$BATON_OUTPUT"' % inputs)
            out.append("    env:")
            out.append('      LOG: "${log}"')
            # A JSON string is a valid YAML double-quoted scalar.
            out.append("    command: %s" % json.dumps("\n".join(lines) + "\n"))
        if s.flaky:
            out.append("    retry: { max_attempts: 2, backoff: fixed, delay: 300ms }")
        if s.deps:
            out.append("    depends_on: [%s]" % ", ".join(s.deps))
    return steps, "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------
# Running baton


class Baton:
    def __init__(self, binary, store, engine):
        self.binary = binary
        self.store = store
        self.engine = engine

    def args(self, *args, engine_flag=False):
        base = [self.binary, "--store", self.store]
        if engine_flag:
            base += ["--store-engine", self.engine]
        return base + list(args)

    def call(self, *args, expect=0):
        cmd = self.args(*args)
        try:
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, timeout=COMMAND_TIMEOUT, env=clean_env())
        except subprocess.TimeoutExpired:
            raise Violation("[%s] `%s` did not finish within %ds" % (self.engine, " ".join(cmd), COMMAND_TIMEOUT))
        if p.returncode != expect:
            raise Violation("[%s] `%s` exited with %d, expected %d\nstdout:\n%s\nstderr:\n%s" % (
                self.engine, " ".join(cmd), p.returncode, expect, p.stdout.decode(errors="replace")[-3000:],
                p.stderr.decode(errors="replace")[-3000:]))
        return p.stdout.decode()

    def json(self, *args, expect=0):
        text = self.call(*args, expect=expect)
        try:
            return json.loads(text)
        except ValueError as e:
            raise Violation("[%s] `baton %s` printed no JSON (%s):\n%s" % (self.engine, " ".join(args), e, text[:2000]))


def clean_env():
    env = dict(os.environ)
    env.pop("BATON_HOME", None)
    env.pop("BATON_LOG", None)
    return env


def parse_progress(path):
    """The run id the process announced, and the (step, attempt) pairs it reported over:
    SUCCEEDED, or failed and RETRYING."""
    run_id, over = None, set()
    with open(path, "rb") as f:
        text = f.read().decode(errors="replace")
    # The last line may have been cut by the kill: only complete lines count.
    for line in text.split("\n")[:-1]:
        m = ANNOUNCE.match(line)
        if m:
            run_id = m.group(1)
        m = PROGRESS.match(line)
        if m:
            over.add((m.group(1), int(m.group(2) or 1)))
    return run_id, over


# ---------------------------------------------------------------------------------------
# One engine


def crash_engine(args, engine, steps, wf_path, workdir, rng):
    edir = os.path.join(workdir, engine)
    os.makedirs(edir)
    store = os.path.join(edir, "store")
    log = os.path.join(edir, "executions.log")
    baton = Baton(args.baton, store, engine)
    report = {"engine": engine, "kills": 0, "not_killed": 0, "announced": {}, "kill_times": [],
              "retries_cut": 0}

    # The baseline: one run without a crash, which also says how long a run takes.
    started = time.monotonic()
    result = baton.json("--store-engine", engine, "run", wf_path, "-p", "log=" + log, "--json")
    expected = time.monotonic() - started
    baseline = result["run"]["id"]
    report["baseline_run"] = baseline
    report["baseline_s"] = expected
    if result["run"]["status"] != "SUCCEEDED":
        raise Violation("[%s] the run without a crash ended %s: %s" % (engine, result["run"]["status"], result["run"].get("error")))

    for r in range(args.rounds):
        stderr_path = os.path.join(edir, "round-%02d.stderr" % r)
        at = rng.uniform(0.2, max(0.3, 0.9 * expected))
        with open(stderr_path, "wb") as err:
            p = subprocess.Popen(baton.args("run", wf_path, "-p", "log=" + log, engine_flag=True),
                                 stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL, env=clean_env())
            t0 = time.monotonic()
            try:
                p.wait(timeout=at)
            except subprocess.TimeoutExpired:
                pass
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
                report["kills"] += 1
                report["kill_times"].append(time.monotonic() - t0)
            else:
                report["not_killed"] += 1
                if p.returncode != 0:
                    raise Violation("[%s] round %d: `baton run` exited with %d before the kill; see %s" % (
                        engine, r, p.returncode, stderr_path))
        run_id, over = parse_progress(stderr_path)
        if run_id is not None:
            report["announced"][run_id] = over
        if p.returncode == -signal.SIGKILL:
            # Flaky steps whose first attempt had failed and whose second had not ended.
            report["retries_cut"] += sum(1 for (sid, a) in over if a == 1 and steps[sid].flaky and (sid, 2) not in over)

        recovered = baton.json("recover", "--json")
        for details in recovered:
            if details["run"]["status"] != "SUCCEEDED":
                raise Violation("[%s] round %d: recover ended run %s %s: %s" % (
                    engine, r, details["run"]["id"], details["run"]["status"], details["run"].get("error")))
        ids = [d["run"]["id"] for d in recovered]
        if run_id is not None and p.returncode == -signal.SIGKILL and run_id not in ids:
            # Possible only if the run had finished (durably) just before the kill.
            run = baton.json("show", run_id, "--json")["run"]
            if run["status"] != "SUCCEEDED":
                raise Violation("[%s] round %d: run %s was killed, not recovered, and is %s" % (engine, r, run_id, run["status"]))
        if len(recovered) > 1:
            raise Violation("[%s] round %d: recover resumed %d runs (%s); only the killed one was unfinished" % (
                engine, r, len(recovered), ", ".join(ids)))

    check(baton, steps, log, report)
    return report


def check(baton, steps, log, report):
    engine = baton.engine
    problems = []

    # The runs.
    runs = baton.json("runs", "--json")
    by_id = {r["id"]: r for r in runs}
    if len(by_id) != len(runs):
        problems.append("`runs` lists a run twice")
    for r in runs:
        if r["status"] != "SUCCEEDED":
            problems.append("run %s is %s: %s" % (r["id"], r["status"], r.get("error")))
        if r["counts"] != {"SUCCEEDED": len(steps)}:
            problems.append("run %s counts %s, expected %d SUCCEEDED" % (r["id"], r["counts"], len(steps)))
    for run_id in report["announced"]:
        if run_id not in by_id:
            problems.append("run %s was announced by `baton run` (so it was durable) but is not in the store" % run_id)
    if len(runs) > report["kills"] + report["not_killed"] + 1:
        problems.append("%d runs in the store, but only %d were started" % (len(runs), report["kills"] + report["not_killed"] + 1))
    for status in ("RUNNING", "CREATED", "PAUSED"):
        left = baton.json("runs", "--status", status, "--json")
        if left:
            problems.append("%d run(s) still %s: %s" % (len(left), status, ", ".join(r["id"] for r in left)))
    if baton.json("recover", "--json") != []:
        problems.append("`recover` still had work after every round was recovered")

    # Every run's steps, from the store.
    order = list(steps)
    timing = {}
    for run_id in by_id:
        details = baton.json("show", run_id, "--json", "--all")
        listed = [s["id"] for s in details["steps"]]
        if listed != order:
            counts = collections.Counter(listed)
            dup = sorted(k for k, n in counts.items() if n > 1)
            missing = sorted(set(order) - set(listed))
            problems.append("run %s: step list differs from the definition (duplicated: %s, missing: %s)" % (run_id, dup, missing))
        times = {}
        for s in details["steps"]:
            sid, where = s["id"], "run %s step %s" % (run_id, s["id"])
            step = steps.get(sid)
            if step is None:
                problems.append("%s: not in the workflow" % where)
                continue
            if s["status"] != "SUCCEEDED":
                problems.append("%s is %s (%s)" % (where, s["status"], s.get("error")))
            if s["attempt"] != step.attempts:
                problems.append("%s: attempt %s, expected %d (a relaunch after a crash keeps its attempt)" % (
                    where, s["attempt"], step.attempts))
            outputs = s.get("outputs", {})
            if step.kind == "shell":
                want = {"v": step.token}
                if step.consumes:
                    want["got"] = step.expected_inputs(steps)
                if outputs != want:
                    problems.append("%s: outputs %s, expected %s" % (where, outputs, want))
            elif outputs:
                problems.append("%s: a %s step with outputs %s" % (where, step.kind, outputs))
            start, end = s.get("started_ms"), s.get("ended_ms")
            if start is None or end is None or end < start:
                problems.append("%s: bad times started_ms=%s ended_ms=%s" % (where, start, end))
            times[sid] = (start or 0, end or 0)
        for sid, (start, _) in times.items():
            for dep in steps[sid].deps:
                if dep in times and start < times[dep][1]:
                    problems.append("run %s: step %s started at %d, before upstream %s ended at %d" % (
                        run_id, sid, start, dep, times[dep][1]))
        timing[run_id] = times

    # The executions, from the log.
    executions = collections.defaultdict(list)  # (run, step) -> [(line number, attempt, inputs)], in log order
    with open(log, "rb") as f:
        lines = f.read().decode(errors="replace").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for n, line in enumerate(lines):
        key, sep, inputs = line.partition(" in=")
        parts = key.split("/")
        if not sep or len(parts) != 3 or not parts[2].isdigit():
            problems.append("log line %d is malformed: %r" % (n + 1, line))
            continue
        run_id, sid, attempt = parts
        executions[(run_id, sid)].append((n, int(attempt), inputs))
    shell = [s for s in steps.values() if s.kind == "shell"]
    per_step = collections.Counter()
    for (run_id, sid), runs_of in executions.items():
        if run_id not in by_id:
            problems.append("log: step %s ran for run %s, which the store does not have" % (sid, run_id))
        elif sid not in steps or steps[sid].kind != "shell":
            problems.append("log: run %s: unknown shell step %s ran" % (run_id, sid))
    for run_id in by_id:
        announced = report["announced"].get(run_id, set())
        limit = 1 if run_id == report["baseline_run"] else 2
        for step in shell:
            where = "run %s step %s" % (run_id, step.id)
            runs_of = executions.get((run_id, step.id), [])
            # Each attempt runs once, or twice if a crash hit it: at-least-once, at most twice.
            by_attempt = collections.defaultdict(list)
            for n, attempt, inputs in runs_of:
                by_attempt[attempt].append(n)
                if inputs != step.expected_inputs(steps):
                    problems.append("%s: log line %d received %r, expected %r" % (where, n + 1, inputs, step.expected_inputs(steps)))
            if sorted(by_attempt) != list(range(1, step.attempts + 1)):
                problems.append("%s: attempts %s ran (log lines %s), expected %s" % (
                    where, sorted(by_attempt), [n + 1 for n, _, _ in runs_of], list(range(1, step.attempts + 1))))
            for attempt, lines_of in sorted(by_attempt.items()):
                per_step[len(lines_of)] += 1
                if len(lines_of) > limit:
                    problems.append("%s attempt %d ran %d times (log lines %s), at most %d allowed" % (
                        where, attempt, len(lines_of), [n + 1 for n in lines_of], limit))
                if (step.id, attempt) in announced and len(lines_of) != 1:
                    problems.append("%s attempt %d was reported over by the killed process, yet ran %d times "
                                    "(log lines %s): its recorded end was lost" % (
                                        where, attempt, len(lines_of), [n + 1 for n in lines_of]))
            if not runs_of:
                continue
            first = runs_of[0][0]
            for dep in step.deps:
                if steps[dep].kind != "shell":
                    continue
                before = executions.get((run_id, dep))
                if before and before[0][0] > first:
                    problems.append("%s first ran (log line %d) before its upstream %s (log line %d)" % (
                        where, first + 1, dep, before[0][0] + 1))

    report["runs"] = len(by_id)
    report["executions_per_step"] = dict(sorted(per_step.items()))
    report["max_executions"] = max(per_step) if per_step else 0
    report["reexecuted"] = sum(n for k, n in per_step.items() if k > 1)
    report["announced_over"] = sum(len(v) for v in report["announced"].values())
    if problems:
        shown = problems[:40]
        more = "" if len(problems) <= 40 else "\n  ... and %d more" % (len(problems) - 40)
        raise Violation("[%s] %d violation(s):\n  %s%s" % (engine, len(problems), "\n  ".join(shown), more))


# ---------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baton", required=True, help="the baton binary (target/release/baton)")
    ap.add_argument("--rounds", type=int, default=10, help="kills per engine (default 10)")
    ap.add_argument("--steps", type=int, default=300, help="steps in the workflow (default 300)")
    ap.add_argument("--seed", type=int, default=20261124, help="seed of the workflow and kill times")
    ap.add_argument("--engines", default=",".join(ENGINES), help="comma-separated: redb,sled")
    ap.add_argument("--workdir", help="where stores and logs go (default: a temp dir, removed on success)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    args.baton = os.path.abspath(args.baton)
    if not os.access(args.baton, os.X_OK):
        ap.error("%s is not an executable (build it: cargo build -p baton-cli --release)" % args.baton)
    engines = [e for e in args.engines.split(",") if e]
    for e in engines:
        if e not in ENGINES:
            ap.error("unknown engine %s" % e)

    if args.workdir:
        workdir = os.path.abspath(args.workdir)
        if os.path.exists(workdir) and os.listdir(workdir):
            ap.error("%s is not empty" % workdir)
        os.makedirs(workdir, exist_ok=True)
    else:
        workdir = tempfile.mkdtemp(prefix="baton-crash-")
    steps, yaml = generate(args.steps, args.seed)
    wf_path = os.path.join(workdir, "wf.yaml")
    with open(wf_path, "w") as f:
        f.write(yaml)
    kinds = collections.Counter(s.kind for s in steps.values())
    consumers = sum(1 for s in steps.values() if s.consumes)
    flaky = sum(1 for s in steps.values() if s.flaky)
    print("workflow: %d steps (%s; %d flaky), %d consume upstream outputs, max_parallel %d, seed %d\nwork dir: %s" % (
        len(steps), ", ".join("%d %s" % (n, k) for k, n in sorted(kinds.items())), flaky, consumers, MAX_PARALLEL,
        args.seed, workdir), flush=True)

    failed = []
    reports = []
    t_all = time.monotonic()
    for i, engine in enumerate(engines):
        t0 = time.monotonic()
        try:
            rep = crash_engine(args, engine, steps, wf_path, workdir, random.Random(args.seed * 31 + i))
            rep["elapsed"] = time.monotonic() - t0
            reports.append(rep)
            kt = rep["kill_times"]
            print("%s: OK in %.0fs\n"
                  "  kills: %d, at %.1f-%.1fs into a run of %.1fs (runs that ended before their kill: %d)\n"
                  "  runs: %d in the store, all SUCCEEDED, none unfinished\n"
                  "  shell-step executions per run/step/attempt: %s (max %d; %d ran twice, hit by a kill)\n"
                  "  step ends reported before a kill: %d, none of them ran again\n"
                  "  flaky steps a kill caught between their failed first attempt and their retry's end: %d" % (
                      engine, rep["elapsed"], rep["kills"], min(kt) if kt else 0, max(kt) if kt else 0,
                      rep["baseline_s"], rep["not_killed"], rep["runs"],
                      ", ".join("%dx: %d" % kv for kv in rep["executions_per_step"].items()),
                      rep["max_executions"], rep["reexecuted"], rep["announced_over"],
                      rep["retries_cut"]), flush=True)
        except Violation as v:
            failed.append(engine)
            print("%s: FAIL after %.0fs\n%s" % (engine, time.monotonic() - t0, v), flush=True)
    total_kills = sum(r["kills"] for r in reports)
    print("total: %d kills, %.0fs" % (total_kills, time.monotonic() - t_all))
    if failed:
        print("FAILED on %s; stores and logs kept in %s" % (", ".join(failed), workdir))
        return 1
    if args.keep or args.workdir:
        print("work dir kept: %s" % workdir)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
