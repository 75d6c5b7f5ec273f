#!/usr/bin/env python3
"""No orphans: a shell step never outlives the engine that launched it.

    python3 tests/crash/orphan_test.py --baton target/release/baton

The step starts a long `sleep` in the background of its shell (a grandchild of the engine)
and records the pids. Two ways for the engine to die, on redb and sled:
- `kill -9` of the engine alone: the step's whole group (shell and sleep) dies with it,
  before anything recovers;
- `kill -9` of the engine's process group (the engine's watcher dies too): the shell dies
  with the engine, and `baton recover` ends the orphaned sleep before it relaunches the
  attempt, which checks for itself that the sleep is gone.
Python 3 standard library only.
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ENGINES = ("redb", "sled")
TIMEOUT = 60  # seconds for any one baton command

# The first attempt sleeps; its relaunch reports whether the first attempt's sleep still
# runs (its state in /proc: anything but gone or a zombie is a failure) and succeeds.
WORKFLOW = """\
id: orphans
params: {dir: ""}
steps:
  - id: long
    type: shell
    command: |
      d="${dir}"
      if [ -e "$d/sleep.pid" ]; then
        old=$(cat "$d/sleep.pid")
        state=$(awk '{print $3}' "/proc/$old/stat" 2>/dev/null || true)
        echo "$${state:-gone}" > "$d/seen-by-relaunch"
        exit 0
      fi
      echo $$ > "$d/sh.pid.tmp" && mv "$d/sh.pid.tmp" "$d/sh.pid"
      sleep 300 &
      echo $! > "$d/sleep.pid.tmp" && mv "$d/sleep.pid.tmp" "$d/sleep.pid"
      wait
"""


def alive(pid):
    """Alive and not a zombie (a zombie runs nothing; its parent reaps it in time)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def wait_for(predicate, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def read_pid(path):
    with open(path) as f:
        return int(f.read().strip())


def scenario(binary, workdir, engine, kill_group):
    name = "%s-%s" % (engine, "group" if kill_group else "engine")
    store = os.path.join(workdir, name + "-store")
    data = os.path.join(workdir, name)
    os.makedirs(data)
    wf = os.path.join(workdir, "orphans.yaml")
    run = subprocess.Popen(
        [binary, "--store", store, "--store-engine", engine, "run", wf, "-p", "dir=" + data],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: os.path.exists(os.path.join(data, "sleep.pid")), 20, "the step to start")
        sh, sleep = read_pid(os.path.join(data, "sh.pid")), read_pid(os.path.join(data, "sleep.pid"))
        assert alive(sh) and alive(sleep)
        if kill_group:
            os.killpg(run.pid, signal.SIGKILL)
        else:
            os.kill(run.pid, signal.SIGKILL)
        run.wait(timeout=TIMEOUT)
        wait_for(lambda: not alive(sh), 5, "the step's shell to die with the engine")
        if kill_group:
            assert alive(sleep), "the test needs the sleep to survive the kill of the group"
        else:
            wait_for(lambda: not alive(sleep), 5, "the step's background sleep to die with the engine")
        recovered = subprocess.run(
            [binary, "--store", store, "--store-engine", engine, "recover"],
            capture_output=True, text=True, timeout=TIMEOUT)
        assert recovered.returncode == 0, "%s: recover failed:\n%s%s" % (
            name, recovered.stdout, recovered.stderr)
        with open(os.path.join(data, "seen-by-relaunch")) as f:
            seen = f.read().strip()
        assert seen in ("gone", "Z"), \
            "%s: the relaunched attempt ran beside the old one's sleep (state %s)" % (name, seen)
        assert not alive(sleep), "%s: the old sleep outlived the recovery" % name
        print("ok  %s: nothing of the killed engine's step ran beside its relaunch" % name)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
        for f in ("sleep.pid", "sh.pid"):
            try:
                os.kill(read_pid(os.path.join(data, f)), signal.SIGKILL)
            except (OSError, ValueError):
                pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baton", required=True)
    args = parser.parse_args()
    if not sys.platform.startswith("linux"):
        print("skipped: the orphan test reads /proc (Linux only)")
        return
    binary = os.path.abspath(args.baton)
    workdir = tempfile.mkdtemp(prefix="baton-orphans-")
    try:
        with open(os.path.join(workdir, "orphans.yaml"), "w") as f:
            f.write(WORKFLOW)
        for engine in ENGINES:
            for kill_group in (False, True):
                scenario(binary, workdir, engine, kill_group)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
