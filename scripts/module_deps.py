#!/usr/bin/env python3
"""Prints which top-level modules of baton-core use which, and fails on a cycle.

A module uses another when its code (not its tests or doc comments) names `crate::<other>`.
Run by `make lint`; the layers it checks are those of DESIGN.md.
"""
import pathlib
import re
import sys

SRC = pathlib.Path(__file__).resolve().parent.parent / "native" / "baton-core" / "src"
USE = re.compile(r"\bcrate::([a-z_]+)")


def code_of(path):
    """The file's text without comments and without its `#[cfg(test)]` module."""
    text = path.read_text()
    cut = text.find("#[cfg(test)]\nmod tests")
    if cut >= 0:
        text = text[:cut]
    return "\n".join(line.split("//")[0] for line in text.splitlines())


def modules():
    found = {}
    for entry in sorted(SRC.iterdir()):
        if entry.name in ("lib.rs", "main.rs"):
            continue
        name = entry.stem
        files = sorted(entry.rglob("*.rs")) if entry.is_dir() else [entry]
        uses = set()
        for f in files:
            uses.update(USE.findall(code_of(f)))
        uses.discard(name)
        found[name] = sorted(uses & {e.stem for e in SRC.iterdir()})
    return found


def cycle(graph):
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in graph.get(node, []):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, path + [nxt])
                if found:
                    return found
        state[node] = "done"
        return None

    for node in graph:
        if node not in state:
            found = visit(node, [node])
            if found:
                return found
    return None


def main():
    graph = modules()
    for name, uses in graph.items():
        print(f"{name:10} -> {', '.join(uses) or '(nothing)'}")
    found = cycle(graph)
    if found:
        print("import cycle: " + " -> ".join(found), file=sys.stderr)
        return 1
    print("no import cycle between the top-level modules of baton-core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
