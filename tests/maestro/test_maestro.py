#!/usr/bin/env python3
"""`baton import maestro` over Maestro's own sample definitions (../shared/maestro-samples).

    python3 tests/maestro/test_maestro.py [--baton target/release/baton] [--samples DIR] [--table]

Every file is imported and validated by Baton, or refused with where and why; each imported
workflow whose steps are all Baton's built-in kinds (and whose subworkflows were imported
too) runs with `baton run` to SUCCEEDED. --table prints the outcomes as the README's table.
The samples are not part of the project: without them the test says so and passes.
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# What the importer reached when this test was written: fewer is a regression.
AT_LEAST_IMPORTED = 18


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--baton", default=os.path.join(ROOT, "target/release/baton"))
    parser.add_argument("--samples", default=os.path.join(ROOT, "..", "shared", "maestro-samples"))
    parser.add_argument("--table", action="store_true")
    args = parser.parse_args()
    files = sorted(glob.glob(os.path.join(args.samples, "*.json")) + glob.glob(os.path.join(args.samples, "*.yaml")))
    if not files:
        print(f"skipped: no Maestro samples in {os.path.normpath(args.samples)}")
        return 0
    baton = os.path.abspath(args.baton)
    problems = []
    with tempfile.TemporaryDirectory(prefix="baton-maestro-") as tmp:
        # One file at a time: two forms of one workflow (its JSON and its DSL YAML) share an id.
        outcomes = []
        for file in files:
            out = os.path.join(tmp, "imported", os.path.basename(file))
            done = subprocess.run([baton, "import", "maestro", "--json", "-o", out, file],
                                  capture_output=True, text=True, timeout=60)
            [outcome] = json.loads(done.stdout)
            if done.returncode != (0 if outcome["imported"] else 2):
                problems.append(f"{file}: exit code {done.returncode}")
            outcomes.append(outcome)
        imported = [o for o in outcomes if o["imported"]]
        refused = [o for o in outcomes if not o["imported"]]
        for o in refused:
            reasons = o.get("refused") or []
            if not reasons or not all(r["at"] and r["reason"] for r in reasons):
                problems.append(f"{o['file']}: refused without a place and a reason each: {o}")
        for o in imported:
            if not os.path.isfile(o["output"]):
                problems.append(f"{o['file']}: {o['output']} was not written")
        if len(imported) < AT_LEAST_IMPORTED:
            problems.append(f"{len(imported)} imported, fewer than the {AT_LEAST_IMPORTED} before")

        # Run what runs here: built-in kinds only, subworkflows among the imported.
        store = os.path.join(tmp, "store")
        # A host's step types are registered by a host (a JVM), not by the CLI.
        ids = {o["workflow"] for o in imported if not o["host_types"]}
        for o in imported:
            if o["host_types"]:
                continue
            subprocess.run([baton, "--store", store, "register", o["output"]], check=True,
                           capture_output=True, timeout=60)
        def children(o):
            with open(o["output"]) as f:
                return {line.split(":", 1)[1].strip() for line in f.read().splitlines()
                        if line.strip().startswith("workflow:")}
        by_id = {o["workflow"]: o for o in imported if not o["host_types"]}

        def runnable(o, seen=()):
            """Its subworkflows, and theirs, were imported and run here."""
            return all(c in by_id and c not in seen and runnable(by_id[c], seen + (c,)) for c in children(o))
        ran = {}
        for o in imported:
            if o["host_types"] or not runnable(o):
                continue
            run = subprocess.run([baton, "--store", store, "run", "--json", o["output"]],
                                 capture_output=True, text=True, timeout=120)
            status = json.loads(run.stdout)["run"]["status"] if run.stdout.strip() else f"exit {run.returncode}"
            ran[o["file"]] = status
            if status != "SUCCEEDED":
                problems.append(f"{o['file']}: ran {status}: {run.stderr.strip()}")
        if not ran:
            problems.append("no imported workflow ran")

    for o in outcomes:
        name = os.path.basename(o["file"])
        if o["imported"]:
            extra = ""
            if o["host_types"]:
                extra = f"host types: {', '.join(o['host_types'])}"
            elif o["file"] in ran:
                extra = f"`baton run`: {ran[o['file']]}"
            else:
                extra = "not run: a subworkflow it starts (or one of theirs) was refused"
            if args.table:
                print(f"| `{name}` | imported | {extra} |")
            else:
                print(f"{name}: imported{'; ' + extra if extra else ''}")
        else:
            reasons = [f"{r['at']}: {r['reason']}" for r in o.get("refused", [])] or [str(o.get("invalid") or o.get("error"))]
            first = reasons[0].replace("|", "\\|")
            if args.table and len(first) > 150:
                first = first[:147] + "..." 
            more = f" (+{len(reasons) - 1} more)" if len(reasons) > 1 else ""
            if args.table:
                print(f"| `{name}` | refused | {first}{more} |")
            else:
                print(f"{name}: refused: {first}{more}")
    print(f"{len(imported)} imported ({len(ran)} run), {len(refused)} refused, of {len(files)}")
    for p in problems:
        print("FAIL: " + p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
