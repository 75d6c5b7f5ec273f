#!/usr/bin/env python3
"""Crash test of loops: kill `baton run` with SIGKILL while a `foreach` and a `while` run,
`baton recover`, and check that the run finishes SUCCEEDED with every iteration having seen
the names of the run around its loop (a workflow param and an upstream step's output).

    python3 tests/crash/loop_crash_test.py --baton target/release/baton [--rounds 4]

A resumed iteration is compiled with its loop's scope: before that was so, `recover` failed
the run with "`msg` is neither a parameter nor a step". Each iteration's shell step appends
"<idempotency key> <msg> <upstream output>" to a log; the check reads every line.
Python 3 standard library only.
"""

import argparse
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
TIMEOUT = 120  # seconds for any one baton command

WORKFLOW = """\
id: loops
params: {msg: hello, log: ""}
steps:
  - {id: up, type: shell, command: "echo token=t42 >> $BATON_OUTPUT"}
  - id: each
    type: foreach
    depends_on: [up]
    over: "${range(0, 12)}"
    max_parallel: 3
    steps:
      - {id: body, type: shell, command: 'echo "$BATON_IDEMPOTENCY_KEY ${msg} ${up.token}" >> "${log}"; sleep 0.2'}
  - id: again
    type: while
    depends_on: [up]
    condition: "${iteration < 6}"
    steps:
      - {id: w, type: shell, command: 'echo "$BATON_IDEMPOTENCY_KEY ${msg} ${up.token}" >> "${log}"; sleep 0.2'}
"""


def baton(binary, store, engine, *args):
    cmd = [binary, "--store", store, "--store-engine", engine, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)


def round_on(binary, workdir, engine, n, rng):
    store = os.path.join(workdir, "%s-%d" % (engine, n))
    log = os.path.join(workdir, "%s-%d.log" % (engine, n))
    wf = os.path.join(workdir, "loops.yaml")
    run = subprocess.Popen([binary, "--store", store, "--store-engine", engine, "run", wf, "-p", "log=" + log],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(rng.uniform(0.5, 1.5))
    run.send_signal(signal.SIGKILL)
    run.wait()
    recovered = baton(binary, store, engine, "recover", "--json")
    runs = json.loads(baton(binary, store, engine, "runs", "--json").stdout)
    problems = []
    if len(runs) != 1 or runs[0]["status"] != "SUCCEEDED":
        problems.append("after recover: %s\n%s" % ([(r["id"], r["status"]) for r in runs], recovered.stderr))
    lines = open(log).read().split("\n") if os.path.exists(log) else []
    lines = [l for l in lines if l]
    for line in lines:
        parts = line.split(" ")
        if parts[1:] != ["hello", "t42"]:
            problems.append("an iteration saw the wrong names: %r" % line)
    keys = {l.split(" ")[0] for l in lines}
    # 12 foreach iterations and 6 while iterations, each once (a killed one may run twice).
    if len(keys) != 18:
        problems.append("%d distinct iteration attempts logged, not 18" % len(keys))
    return problems, len(lines) - len(keys)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baton", required=True)
    ap.add_argument("--rounds", type=int, default=4, help="kills per engine (default 4)")
    ap.add_argument("--seed", type=int, default=20261201)
    args = ap.parse_args()
    binary = os.path.abspath(args.baton)
    workdir = tempfile.mkdtemp(prefix="baton-loop-crash-")
    with open(os.path.join(workdir, "loops.yaml"), "w") as f:
        f.write(WORKFLOW)
    rng = random.Random(args.seed)
    failed = False
    for engine in ENGINES:
        again = 0
        for n in range(args.rounds):
            problems, twice = round_on(binary, workdir, engine, n, rng)
            again += twice
            if problems:
                failed = True
                print("%s round %d: FAIL\n  %s" % (engine, n, "\n  ".join(problems)), flush=True)
        print("%s: %d kills during loops, every run SUCCEEDED after recover, every iteration saw "
              "the run's names (%d iteration attempts ran twice, hit by a kill)" % (engine, args.rounds, again),
              flush=True)
    if failed:
        print("FAILED; stores and logs kept in %s" % workdir)
        return 1
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
