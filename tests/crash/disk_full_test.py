#!/usr/bin/env python3
"""Disk full: the engine stops, keeps its runs unfinished and whole, says what happened,
and `baton recover` finishes them once there is space.

    python3 tests/crash/disk_full_test.py --baton target/release/baton

Needs root (it mounts a small tmpfs for the store); skipped with a message otherwise.
A step of the workflow fills the disk; the steps after it cannot be recorded. On redb and
sled: `baton run` exits 3 naming the full disk, leaves no control socket behind, and a
`recover` while the disk is still full fails the same way; once the filler is removed,
`recover` finishes the run with every step SUCCEEDED once. Python 3 standard library only.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

ENGINES = ("redb", "sled")
TIMEOUT = 120  # seconds for any one baton command
DISK = "24m"

# The steps after the filler write nothing but the store's records (a shell step would
# need room for its scratch files first), so the first write to meet the full disk is a
# commit.
WORKFLOW = """\
id: fill
params: {disk: ""}
steps:
  - {id: before, type: shell, command: "echo rows=1 >> $BATON_OUTPUT"}
  - {id: fill, type: shell, depends_on: [before], command: 'head -c 1G /dev/zero > "${disk}/filler" 2>/dev/null; true'}
  - id: each
    type: foreach
    depends_on: [fill]
    over: "${range(0, 3000)}"
    max_parallel: 64
    steps:
      - {id: body, type: noop}
  - {id: after, type: noop, depends_on: [each]}
"""


def baton(binary, store, engine, *args):
    return subprocess.run([binary, "--store", store, "--store-engine", engine, *args],
                          capture_output=True, text=True, timeout=TIMEOUT)


def check_full(result, what):
    out = result.stdout + result.stderr
    assert result.returncode == 3, "%s: exit %d, wanted 3 (store):\n%s" % (what, result.returncode, out)
    assert "disk is full" in out, "%s does not say the disk is full:\n%s" % (what, out)
    assert "panicked" not in out, "%s panicked:\n%s" % (what, out)


def on(binary, disk, engine):
    store = os.path.join(disk, "store-" + engine)
    wf = os.path.join(os.path.dirname(disk), "fill.yaml")
    filler = os.path.join(disk, "filler")
    ran = baton(binary, store, engine, "run", wf, "-p", "disk=" + disk)
    check_full(ran, "%s: baton run on a full disk" % engine)
    assert not os.path.exists(os.path.join(store, "control.sock")), \
        "%s: a stale control.sock was left behind" % engine
    check_full(baton(binary, store, engine, "recover"), "%s: recover on a full disk" % engine)
    os.remove(filler)
    recovered = baton(binary, store, engine, "recover", "--json")
    assert recovered.returncode == 0, "%s: recover with space failed:\n%s%s" % (
        engine, recovered.stdout, recovered.stderr)
    runs = json.loads(baton(binary, store, engine, "runs", "--json").stdout)
    assert len(runs) == 1 and runs[0]["status"] == "SUCCEEDED", "%s: %s" % (engine, runs)
    shown = baton(binary, store, engine, "show", runs[0]["id"], "--json")
    details = json.loads(shown.stdout)
    steps = {s["id"]: s for s in details["steps"]}
    for step in ("before", "fill", "each", "after"):
        assert steps[step]["status"] == "SUCCEEDED", "%s: step %s is %s" % (engine, step, steps[step]["status"])
    print("ok  %s: stopped on the full disk, kept the run whole, finished it once there was space" % engine)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baton", required=True)
    args = parser.parse_args()
    if os.geteuid() != 0 or not shutil.which("mount"):
        print("skipped: the disk-full test mounts a tmpfs, which needs root")
        return
    binary = os.path.abspath(args.baton)
    workdir = tempfile.mkdtemp(prefix="baton-disk-full-")
    with open(os.path.join(workdir, "fill.yaml"), "w") as f:
        f.write(WORKFLOW)
    try:
        for engine in ENGINES:
            disk = os.path.join(workdir, "disk-" + engine)
            os.makedirs(disk)
            mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + DISK, "tmpfs", disk],
                                     capture_output=True, text=True)
            if mounted.returncode != 0:
                print("skipped: cannot mount a tmpfs here: " + mounted.stderr.strip())
                return
            try:
                on(binary, disk, engine)
            finally:
                subprocess.run(["umount", "-l", disk], capture_output=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
