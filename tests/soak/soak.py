#!/usr/bin/env python3
"""Kill soak: SIGKILL `baton run`, `baton recover` and `baton serve` over and over, on every
store engine, and check after each series that nothing was lost or done twice.

    python3 tests/soak/soak.py --baton target/release/baton [--kills 1000] [--minutes 90]

`make soak` runs it (it is not part of `make test`). The kills are spread over the store
engines; each series is one of:
- run: `baton run mix.yaml`, killed at a random moment; then `baton recover`, itself killed
  at random moments (about 40% of the time) until one finishes;
- serve: `baton serve` (with a cron trigger firing every second), given two starts of `mix`
  and killed at a random moment; restarted, and killed again, until one is let finish the
  runs and stopped with SIGTERM.

`mix` has shell steps, a sleep, a flaky step that succeeds on its retry, a `foreach` and a
`while` whose bodies use a workflow param and an upstream output, and a subworkflow. Every
shell execution appends "<idempotency key> <engine pid>" to a log. After each series:
- every run finished SUCCEEDED, nothing is left to recover, and each run of `mix` has each
  of its steps exactly once, SUCCEEDED;
- no step attempt ran twice in one engine process (a relaunch happens only in the process
  that follows a kill), and every top-level shell step of every run ran;
- the cron trigger fired no scheduled second twice (firings and the runs they started).
It prints a summary and exits 1 on the first violation, naming it. Python 3 standard
library only.
"""

import argparse
import collections
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ENGINES = ("redb", "sled")
TIMEOUT = 180  # seconds for any one baton command that is let finish

LOGGED = 'echo "$BATON_IDEMPOTENCY_KEY $PPID" >> "$LOG"'
MIX = """\
id: mix
params: {log: "", msg: hello}
steps:
  - {id: up, type: shell, env: {LOG: "${log}"}, command: '%(logged)s; sleep 0.1; echo token=t42 >> $BATON_OUTPUT'}
  - {id: nap, type: sleep, duration: 300ms, depends_on: [up]}
  - id: flaky
    type: shell
    depends_on: [up]
    env: {LOG: "${log}"}
    retry: {max_attempts: 2, backoff: fixed, delay: 200ms}
    command: '%(logged)s; sleep 0.2; if [ "$BATON_ATTEMPT" = 1 ]; then exit 1; fi'
  - id: each
    type: foreach
    depends_on: [up]
    over: "${range(0, 6)}"
    max_parallel: 3
    steps:
      - {id: body, type: shell, env: {LOG: "${log}"}, command: '[ "${msg} ${up.token}" = "hello t42" ] || exit 3; %(logged)s; sleep 0.15'}
  - id: again
    type: while
    depends_on: [up]
    condition: "${iteration < 3}"
    steps:
      - {id: w, type: shell, env: {LOG: "${log}"}, command: '[ "${msg}" = hello ] || exit 3; %(logged)s; sleep 0.15'}
  - {id: sub, type: subworkflow, file: child.yaml, depends_on: [nap], params: {log: "${log}"}}
  - {id: end, type: noop, depends_on: [flaky, each, again, sub]}
""" % {"logged": LOGGED}
MIX_STEPS = ["up", "nap", "flaky", "each", "again", "sub", "end"]
MIX_SHELL = ["up", "flaky"]

CHILD = """\
id: child
params: {log: ""}
steps:
  - {id: c1, type: shell, env: {LOG: "${log}"}, command: '%(logged)s; sleep 0.2'}
  - {id: c2, type: sleep, duration: 200ms, depends_on: [c1]}
""" % {"logged": LOGGED}

TICKER = """\
id: ticker
params: {at: ""}
triggers:
  - cron: "* * * * * *"
    params: {at: "${format_date(trigger.scheduled_time, 'yyyy-MM-dd HH:mm:ss')}"}
steps:
  - {id: tick, type: noop}
"""


class Violation(Exception):
    pass


class Soak:
    def __init__(self, binary, workdir, engine, rng):
        self.binary, self.engine, self.rng = binary, engine, rng
        self.dir = os.path.join(workdir, engine)
        os.makedirs(self.dir)
        self.store = os.path.join(self.dir, "store")
        self.log = os.path.join(self.dir, "executions.log")
        self.mix = os.path.join(workdir, "mix.yaml")
        self.kills = collections.Counter()
        self.series = collections.Counter()
        self.checked = set()

    def args(self, *args):
        return [self.binary, "--store", self.store, "--store-engine", self.engine, *args]

    def call(self, *args, expect=0):
        try:
            p = subprocess.run(self.args(*args), capture_output=True, text=True, timeout=TIMEOUT,
                               stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise Violation("[%s] `baton %s` hung for %ds" % (self.engine, " ".join(args), TIMEOUT))
        if p.returncode != expect:
            raise Violation("[%s] `baton %s` exited %d, expected %d:\n%s%s" % (
                self.engine, " ".join(args), p.returncode, expect, p.stdout[-2000:], p.stderr[-2000:]))
        return p.stdout

    def json(self, *args):
        return json.loads(self.call(*args))

    def spawn(self, *args):
        # Each process's stderr is kept until the next one's, to explain a failure.
        self.stderr = os.path.join(self.dir, "last.stderr")
        with open(self.stderr, "wb") as err:
            return subprocess.Popen(self.args(*args), stdout=subprocess.DEVNULL, stderr=err,
                                    stdin=subprocess.DEVNULL)

    def last_stderr(self):
        with open(self.stderr, errors="replace") as f:
            return f.read()[-3000:]

    def kill_within(self, p, what, low, high):
        """Kills `p` at a random moment in [low, high) seconds unless it ended; True if killed."""
        try:
            p.wait(timeout=self.rng.uniform(low, high))
        except subprocess.TimeoutExpired:
            pass
        if p.poll() is None:
            p.kill()
            p.wait()
            self.kills[what] += 1
            return True
        return False

    def recover_until_done(self):
        while True:
            p = self.spawn("recover")
            if self.rng.random() < 0.4 and self.kill_within(p, "recover", 0.1, 1.5):
                continue
            try:
                code = p.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                p.kill()
                raise Violation("[%s] `baton recover` hung" % self.engine)
            if code != 0:
                raise Violation("[%s] `baton recover` exited %d:\n%s" % (self.engine, code, self.last_stderr()))
            return

    def series_run(self):
        self.series["run"] += 1
        p = self.spawn("run", self.mix, "-p", "log=" + self.log)
        if not self.kill_within(p, "run", 0.1, 1.8) and p.returncode != 0:
            raise Violation("[%s] `baton run` exited %d without a kill:\n%s" % (
                self.engine, p.returncode, self.last_stderr()))
        self.recover_until_done()

    def serve(self):
        # A killed server leaves its socket file; the next one replaces it, and a client
        # must not take the old file for the new server.
        try:
            os.remove(os.path.join(self.store, "control.sock"))
        except FileNotFoundError:
            pass
        return self.spawn("serve")

    def wait_for_socket(self, p):
        deadline = time.monotonic() + 20
        sock = os.path.join(self.store, "control.sock")
        while not os.path.exists(sock):
            if p.poll() is not None:
                raise Violation("[%s] `baton serve` exited %d at start:\n%s" % (
                    self.engine, p.returncode, self.last_stderr()))
            if time.monotonic() > deadline:
                raise Violation("[%s] `baton serve` opened no control socket" % self.engine)
            time.sleep(0.02)

    def series_serve(self):
        self.series["serve"] += 1
        p = self.serve()
        self.wait_for_socket(p)
        for _ in range(2):
            self.call("start", "mix", "-p", "log=" + self.log)
        self.kill_within(p, "serve", 0.3, 3.0)
        while True:
            p = self.serve()
            if self.rng.random() < 0.5:
                if self.kill_within(p, "serve", 0.3, 2.5):
                    continue
            self.wait_for_socket(p)
            deadline = time.monotonic() + TIMEOUT
            while [r for r in self.json("runs", "--json") if r["workflow_id"] == "mix"
                   and r["status"] not in ("SUCCEEDED", "FAILED", "STOPPED", "KILLED")]:
                if time.monotonic() > deadline:
                    p.kill()
                    raise Violation("[%s] runs of `baton serve` did not finish" % self.engine)
                time.sleep(0.1)
            p.send_signal(signal.SIGTERM)
            if p.wait(timeout=TIMEOUT) != 0:
                raise Violation("[%s] `baton serve` exited %d on SIGTERM:\n%s" % (
                    self.engine, p.returncode, self.last_stderr()))
            return

    def check(self):
        runs = self.json("runs", "--json")
        for r in runs:
            if r["status"] != "SUCCEEDED":
                raise Violation("[%s] run %s (%s) is %s: %s" % (
                    self.engine, r["id"], r["workflow_id"], r["status"], r.get("error")))
        if self.json("recover", "--json") != []:
            raise Violation("[%s] `recover` found work after the series" % self.engine)
        mix_runs = [r["id"] for r in runs if r["workflow_id"] == "mix"]
        for run_id in mix_runs:
            if run_id in self.checked:
                continue
            steps = self.json("show", run_id, "--all", "--json")["steps"]
            listed = [s["id"] for s in steps]
            if sorted(listed) != sorted(MIX_STEPS):
                raise Violation("[%s] run %s lists steps %s, expected each of %s once" % (
                    self.engine, run_id, listed, MIX_STEPS))
            for s in steps:
                if s["status"] != "SUCCEEDED":
                    raise Violation("[%s] run %s step %s is %s" % (self.engine, run_id, s["id"], s["status"]))
            self.checked.add(run_id)
        # The executions: no (attempt, engine process) twice; every top-level shell step ran.
        seen = collections.Counter()
        keys = set()
        with open(self.log) as f:
            for n, line in enumerate(f, 1):
                parts = line.split()
                if len(parts) != 2:
                    raise Violation("[%s] log line %d is malformed: %r" % (self.engine, n, line))
                seen[tuple(parts)] += 1
                keys.add(parts[0])
        twice = [k for k, c in seen.items() if c > 1]
        if twice:
            raise Violation("[%s] attempts ran twice in one engine process: %s" % (self.engine, twice[:5]))
        for run_id in mix_runs:
            for step in MIX_SHELL:
                attempts = 2 if step == "flaky" else 1
                for a in range(1, attempts + 1):
                    if "%s/%s/%d" % (run_id, step, a) not in keys:
                        raise Violation("[%s] run %s: step %s attempt %d never ran" % (self.engine, run_id, step, a))
        # Cron: no scheduled second fired twice.
        firings = self.json("firings", "ticker", "--json")
        times = collections.Counter(f["scheduled_ms"] for f in firings)
        again = [t for t, c in times.items() if c > 1]
        if again:
            raise Violation("[%s] the cron trigger fired these seconds twice: %s" % (self.engine, again[:5]))
        ats = collections.Counter(r["params"]["at"] for r in runs if r["workflow_id"] == "ticker")
        again = [t for t, c in ats.items() if c > 1]
        if again:
            raise Violation("[%s] runs of the cron trigger repeat seconds: %s" % (self.engine, again[:5]))
        return len(mix_runs), len(firings), sum(seen.values())

    def soak(self, kills, deadline):
        self.call("register", os.path.join(os.path.dirname(self.mix), "ticker.yaml"))
        self.call("register", self.mix)
        while sum(self.kills.values()) < kills and time.monotonic() < deadline:
            if self.rng.random() < 0.5:
                self.series_run()
            else:
                self.series_serve()
            mix_runs, firings, executions = self.check()
        return mix_runs, firings, executions


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baton", required=True)
    parser.add_argument("--kills", type=int, default=1000, help="SIGKILLs in all, spread over the engines")
    parser.add_argument("--minutes", type=float, default=90, help="stop early after this long")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    binary = os.path.abspath(args.baton)
    workdir = tempfile.mkdtemp(prefix="baton-soak-")
    for name, text in (("mix.yaml", MIX), ("child.yaml", CHILD), ("ticker.yaml", TICKER)):
        with open(os.path.join(workdir, name), "w") as f:
            f.write(text)
    started = time.monotonic()
    deadline = started + args.minutes * 60
    print("soak: seed %d, %d kills over %s, in %s" % (seed, args.kills, "+".join(ENGINES), workdir))
    ok = True
    try:
        for n, engine in enumerate(ENGINES):
            share = args.kills // len(ENGINES) + (1 if n < args.kills % len(ENGINES) else 0)
            soak = Soak(binary, workdir, engine, rng)
            t0 = time.monotonic()
            mix_runs, firings, executions = soak.soak(share, deadline)
            print("ok  %s: %d kills (%s) in %d series (%s), %.0f s; %d runs of mix, %d cron firings, "
                  "%d shell executions; every invariant held after every series" % (
                      engine, sum(soak.kills.values()),
                      ", ".join("%s %d" % kv for kv in sorted(soak.kills.items())),
                      sum(soak.series.values()), ", ".join("%s %d" % kv for kv in sorted(soak.series.items())),
                      time.monotonic() - t0, mix_runs, firings, executions))
    except Violation as e:
        ok = False
        print("VIOLATION (seed %d): %s" % (seed, e))
        print("kept for inspection: %s" % workdir)
    if ok:
        shutil.rmtree(workdir, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
