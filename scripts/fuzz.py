#!/usr/bin/env python3
"""Runs every fuzz target of native/fuzz for a bounded time and prints what each found.

    python3 scripts/fuzz.py [--seconds 120] [--runs 10000000] [TARGET...]   (what `make fuzz` runs)

A target stops after --seconds or after --runs executions (the issue's 10^7), the first to come.

Each target starts from seeds derived from examples/ (and the README): the definitions as
they are and as JSON, their `${...}` fields, cron triggers, `match` expressions, the lines
their shell steps write to $BATON_OUTPUT, `-p` arguments and control requests carrying them.
The seeds go to native/fuzz/corpus/TARGET (not committed), where libFuzzer adds what it finds.

A target stops at its first finding; libFuzzer writes the input to
native/fuzz/artifacts/TARGET/ (crash-*, timeout-* for a hang, oom-* for memory past the
budget), which `cargo +nightly fuzz run --fuzz-dir native/fuzz TARGET FILE` replays.
The exit status is 1 if any target found something.
"""
import argparse
import json
import os
import pathlib
import re
import subprocess
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
FUZZ = ROOT / "native" / "fuzz"
TARGETS = [
    "definition_yaml",
    "definition_json",
    "expression",
    "outputs",
    "control_request",
    "cron",
    "cli_params",
    "signal_params",
]
# Budgets: one input may take 10 s and 2 GiB in all; one allocation may take 256 MiB.
LIBFUZZER = ["-timeout=10", "-rss_limit_mb=2048", "-malloc_limit_mb=256", "-print_final_stats=1"]


def definitions():
    """(name, text, tree) of every YAML definition under examples/."""
    for path in sorted((ROOT / "examples").rglob("*.yaml")):
        text = path.read_text()
        try:
            tree = yaml.safe_load(text)
        except yaml.YAMLError:
            tree = None
        yield path.stem, text, tree


def strings(tree):
    """Every string in a YAML tree."""
    if isinstance(tree, str):
        yield tree
    elif isinstance(tree, dict):
        for key, value in tree.items():
            yield from strings(key)
            yield from strings(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from strings(value)


def dicts(tree):
    """Every map in a YAML tree."""
    if isinstance(tree, dict):
        yield tree
        for value in tree.values():
            yield from dicts(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from dicts(value)


def typed(text):
    """A `key=value` value as the CLI types a signal's: a number or boolean, else text."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, (int, float, bool)) else text


def seeds():
    """{target: [seed text]} derived from examples/ and the README."""
    defs = list(definitions())
    trees = [tree for _, _, tree in defs if isinstance(tree, dict)]
    docs = "\n".join(p.read_text() for p in [ROOT / "README.md", *ROOT.glob("examples/**/*.yaml")])
    fields = sorted({s for tree in trees for s in strings(tree) if "${" in s})
    fields += sorted(set(re.findall(r"\$\{[^}\n]*\}", docs)) - set(fields))
    commands = [line.split(maxsplit=2)[2] for line in re.findall(r"baton (?:run|start|signal) .*", docs)
                if len(line.split()) > 2]
    args = [re.sub(r"-p\s+", "", c).split() for c in commands]
    args = [[a for a in arg if "=" in a] for arg in args]
    signals = [dict((a.split("=", 1)[0], typed(a.split("=", 1)[1])) for a in arg) for arg in args if arg]
    signals += [m["params"] for tree in trees for m in dicts(tree)
                if "name" in m and isinstance(m.get("params"), dict)]
    matches = sorted({m["match"] for tree in trees for m in dicts(tree) if isinstance(m.get("match"), str)})
    outputs = ["\n".join(re.findall(r"echo \"?([A-Za-z0-9_-]+=[^\">;]*)", text)) + "\n" for _, text, _ in defs]
    outputs.append("rows=42\nname=events\nok=true\n# comment\n\nratio=0.5\nparts=[1, 2]\nmeta={\"a\": 1}\n")
    requests = [{"command": c} for c in ("runs", "workflows", "events")]
    requests += [{"command": "show", "run_id": "01JD0000000000000000000000"},
                 {"command": "signals", "name": "table_ready"},
                 {"command": "start", "workflow_id": "load-events", "params": {"date": "2026-11-24"},
                  "version": 1, "request_id": "r1"},
                 {"command": "activate", "workflow_id": "w", "version": 2},
                 {"command": "enable", "workflow_id": "w", "enabled": False}]
    requests += [{"command": "signal", "name": "table_ready", "params": p} for p in signals]
    for tree in trees:
        requests.append({"command": "register", "definition": tree})
        requests.append({"command": "run_definition", "definition": tree,
                         "params": {k: str(v) for k, v in (tree.get("params") or {}).items()}})
    crons = [f"{t['cron']}\n{t.get('timezone', '')}" for tree in trees
             for t in tree.get("triggers") or [] if "cron" in t]
    crons += ["*/15 9-17 * * MON-FRI\nEurope/Paris", "0 30 2 * * * *\nAmerica/New_York", "@daily\n"]
    return {
        "definition_yaml": [text for _, text, _ in defs],
        "definition_json": [json.dumps(tree, indent=1) for tree in trees],
        "expression": fields,
        "outputs": outputs,
        "control_request": [json.dumps(r) for r in requests],
        "cron": crons,
        "cli_params": ["\n".join(arg) for arg in args if arg],
        "signal_params": [f"{m}\n{json.dumps(p)}" for m in matches for p in signals] or matches,
    }


def write_seeds(targets):
    for target, texts in seeds().items():
        if target not in targets:
            continue
        corpus = FUZZ / "corpus" / target
        corpus.mkdir(parents=True, exist_ok=True)
        for i, text in enumerate(texts):
            (corpus / f"seed-{i:03}").write_text(text)


def stat(log, name):
    found = re.findall(rf"stat::{name}:\s+(\d+)", log)
    return int(found[-1]) if found else None


def run(target, seconds, runs):
    """Fuzzes one target; returns its row of the table."""
    artifacts = FUZZ / "artifacts" / target
    artifacts.mkdir(parents=True, exist_ok=True)
    before = set(artifacts.iterdir())
    command = ["nice", "-n", "10", "cargo", "+nightly", "fuzz", "run", "--fuzz-dir", str(FUZZ),
               target, "--", f"-max_total_time={seconds}", f"-runs={runs}", *LIBFUZZER]
    print("$ " + " ".join(command), flush=True)
    log = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, check=False).stdout
    (artifacts.parent / f"{target}.log").write_text(log)
    found = sorted(p.name for p in set(artifacts.iterdir()) - before)
    executions = stat(log, "number_of_executed_units")
    if executions is None:  # stopped by a finding: the last status line counts
        status = re.findall(r"^#(\d+)\s", log, re.M)
        executions = int(status[-1]) if status else 0
    return {
        "target": target,
        "executions": executions,
        "exec/s": stat(log, "average_exec_per_sec") or executions // max(seconds, 1),
        "peak MB": stat(log, "peak_rss_mb") or 0,
        "crashes": sum(n.startswith("crash-") for n in found),
        "hangs": sum(n.startswith(("timeout-", "slow-unit-")) for n in found),
        "past budget": sum(n.startswith(("oom-", "leak-")) for n in found),
        "inputs": " ".join(found),
    }


def table(rows):
    columns = list(rows[0])
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in columns]
    lines = [" | ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines.append("|".join("-" * (w + 2) for w in widths)[1:-1])
    lines += [" | ".join(str(r[c]).ljust(w) for c, w in zip(columns, widths)) for r in rows]
    return "\n".join("| " + line + " |" for line in lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("FUZZ_SECONDS", 120)))
    parser.add_argument("--runs", type=int, default=10_000_000)
    parser.add_argument("targets", nargs="*", default=TARGETS, metavar="TARGET")
    args = parser.parse_args()
    unknown = set(args.targets) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets {sorted(unknown)}; the targets are {TARGETS}")
    write_seeds(args.targets)
    build = ["nice", "-n", "10", "cargo", "+nightly", "fuzz", "build", "--fuzz-dir", str(FUZZ)]
    subprocess.run(build, cwd=ROOT, check=True)
    rows = [run(target, args.seconds, args.runs) for target in args.targets]
    print(f"\nFuzzing, {args.seconds} s or {args.runs} runs per target ({' '.join(LIBFUZZER)}):\n")
    print(table(rows))
    return 1 if any(r["inputs"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
