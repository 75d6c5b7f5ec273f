#!/usr/bin/env python3
"""Writes a layered DAG of noop steps as YAML or JSON (the million-step benchmark of BENCHMARKS.md).

    python3 scripts/gen_dag.py --steps 1000000 --width 100 [--json] [--seed 1] > dag.yaml

Each step depends on 2 random steps of the layer above; the workflow runs `max_parallel: 64`.
"""
import argparse
import json
import random
import sys


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--width", type=int, default=100)
    parser.add_argument("--json", action="store_true", help="JSON instead of YAML")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    out = sys.stdout
    if args.json:
        out.write('{"id":"dag","max_parallel":64,"steps":[')
    else:
        out.write("id: dag\nmax_parallel: 64\nsteps:\n")
    for i in range(args.steps):
        layer = i // args.width
        deps = []
        if layer > 0:
            start = (layer - 1) * args.width
            deps = sorted({f"s{start + rng.randrange(args.width)}" for _ in range(2)})
        if args.json:
            step = {"id": f"s{i}", "type": "noop"}
            if deps:
                step["depends_on"] = deps
            out.write(("," if i else "") + json.dumps(step, separators=(",", ":")))
        elif deps:
            out.write(f"  - {{id: s{i}, type: noop, depends_on: [{', '.join(deps)}]}}\n")
        else:
            out.write(f"  - {{id: s{i}, type: noop}}\n")
    if args.json:
        out.write("]}\n")


if __name__ == "__main__":
    main()
