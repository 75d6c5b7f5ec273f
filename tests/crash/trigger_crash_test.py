#!/usr/bin/env python3
"""Crash test of the scheduler: kill `baton serve` with SIGKILL while a per-second cron
trigger fires, start it again, and check that no firing was lost or doubled.

    python3 tests/crash/trigger_crash_test.py --baton target/release/baton [--rounds 8]

For each store engine (redb, sled): `baton serve` holds a store where the workflow `ticker`
is registered with the trigger `cron: "* * * * * *"` and `misfire: run_once`; each run
appends its scheduled second to a log. Each round kills the server with SIGKILL at a
random moment (0.3-2.5 s in), then starts it again (it resumes its runs, and fires the
latest second it missed). At the end, with the server stopped cleanly, it checks:

  - every firing of `baton firings ticker` has a distinct scheduled second and names a
    distinct run, and every run of `ticker` was started by exactly one firing;
  - every run SUCCEEDED (the ones a kill interrupted were resumed);
  - the log holds each fired second at most twice (a run killed mid-step runs its step
    again: at least once), and every succeeded run's second at least once;
  - firing went on after every restart (a kill never stopped the trigger for good).

Exits with 1 on any violation, naming it. Python 3 standard library only.
"""

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

TICKER = """
id: ticker
params: {{ at: 0 }}
triggers:
  - cron: "* * * * * *"
    misfire: run_once
    params: {{ at: "${{trigger.scheduled_time}}" }}
steps:
  - id: tick
    type: shell
    command: "sleep 0.2; echo ${{at}} >> {log}"
"""


def baton(exe, store, *args, check=True):
    done = subprocess.run([exe, "--store", store, *args], capture_output=True, text=True)
    if check and done.returncode != 0:
        sys.exit(f"baton {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return done


def serve(exe, store):
    proc = subprocess.Popen([exe, "--store", store, "serve"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    socket = os.path.join(store, "control.sock")
    deadline = time.time() + 20
    while not os.path.exists(socket):
        if time.time() > deadline or proc.poll() is not None:
            sys.exit(f"baton serve did not open its control socket (exit {proc.poll()})")
        time.sleep(0.02)
    return proc


def run_engine(exe, engine, rounds, rng):
    work = tempfile.mkdtemp(prefix=f"baton-trigger-crash-{engine}-")
    store = os.path.join(work, "store")
    log = os.path.join(work, "ticks.log")
    workflow = os.path.join(work, "ticker.yaml")
    with open(workflow, "w") as f:
        f.write(TICKER.format(log=log))
    baton(exe, store, "--store-engine", engine, "validate", workflow)
    os.makedirs(store, exist_ok=True)
    # The first server creates the store with the engine under test.
    proc = subprocess.Popen([exe, "--store", store, "--store-engine", engine, "serve"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not os.path.exists(os.path.join(store, "control.sock")):
        time.sleep(0.02)
    baton(exe, store, "register", workflow)
    problems = []
    counts = []
    for _ in range(rounds):
        time.sleep(rng.uniform(0.3, 2.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        runs = json.loads(baton(exe, store, "runs", "--workflow", "ticker", "--json").stdout)
        counts.append(len(runs))
        time.sleep(rng.uniform(0.0, 1.5))  # downtime: seconds to miss
        proc = serve(exe, store)
    time.sleep(2.5)
    proc.send_signal(signal.SIGTERM)
    if proc.wait(timeout=30) != 0:
        problems.append(f"baton serve exited {proc.returncode} on SIGTERM")

    firings = json.loads(baton(exe, store, "firings", "ticker", "--json").stdout)
    runs = {r["id"]: r for r in json.loads(baton(exe, store, "runs", "--workflow", "ticker", "--json").stdout)}
    unfinished = [r for r in runs.values() if r["status"] not in ("SUCCEEDED",)]
    if unfinished:
        # The last server may have been stopped mid-run: finish them as an operator would.
        baton(exe, store, "recover", check=False)
        runs = {r["id"]: r for r in json.loads(baton(exe, store, "runs", "--workflow", "ticker", "--json").stdout)}
    scheduled = [f["scheduled_ms"] for f in firings]
    if len(scheduled) != len(set(scheduled)):
        problems.append("a scheduled second fired twice: " + str(sorted(s for s in scheduled if scheduled.count(s) > 1)))
    fired_runs = [f["run_id"] for f in firings if f.get("run_id")]
    if len(fired_runs) != len(set(fired_runs)):
        problems.append("two firings name the same run")
    if set(fired_runs) != set(runs):
        problems.append(f"runs without a firing: {sorted(set(runs) - set(fired_runs))}; firings without a run: {sorted(set(fired_runs) - set(runs))}")
    for r in runs.values():
        if r["status"] != "SUCCEEDED":
            problems.append(f"run {r['id']} is {r['status']}")
    with open(log) as f:
        ticks = [int(line.split()[0]) for line in f if line.strip()]
    for second in set(ticks):
        if ticks.count(second) > 2:
            problems.append(f"second {second} ran {ticks.count(second)} times")
    params = {int(r["params"]["at"]) for r in runs.values()}
    missing = params - set(ticks)
    if missing:
        problems.append(f"runs whose step never ran: {sorted(missing)}")
    for before, after in zip(counts, counts[1:] + [len(runs)]):
        if after <= before:
            problems.append(f"no firing after a restart ({before} runs, then {after})")
    twice = sum(1 for s in set(ticks) if ticks.count(s) == 2)
    print(f"{engine}: {rounds} kills, {len(firings)} firings, {len(runs)} runs, all SUCCEEDED; "
          f"{twice} step(s) ran twice (hit by a kill)" if not problems else f"{engine}: FAILED")
    for p in problems:
        print(f"  - {p}")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baton", required=True)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seed", type=int, default=20261124)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    problems = []
    for engine in ("redb", "sled"):
        problems += run_engine(os.path.abspath(args.baton), engine, args.rounds, rng)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
