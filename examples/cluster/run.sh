#!/bin/sh
# A Baton cluster on one machine: a throwaway PostgreSQL server (tests/cluster/pg.py), three
# engines on its database (`baton serve --engine-id e1..e3`), a workflow registered and a few
# runs started by a client, then one engine killed with SIGKILL while it drives runs: the
# others take its runs over once its lease ends, and every run still succeeds. Everything is
# stopped and removed at the end (also on Ctrl-C or an error).
#
#   examples/cluster/run.sh               # BATON=path/to/baton to use another binary
#
# Needs Python 3 and PostgreSQL's server binaries (`make deps` installs them).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
baton=${BATON:-$root/target/release/baton}
lease=3s
if [ ! -x "$baton" ]; then
    echo "no baton binary at $baton: run cargo build --release -p baton-cli, or set BATON" >&2
    exit 1
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/baton-cluster-example.XXXXXX")
pids=""

stop_all() {
    trap - EXIT INT TERM
    # The engines first (SIGTERM: they stop cleanly), then the database server.
    for pid in $pids; do kill "$pid" 2>/dev/null || true; done
    for pid in $pids; do wait "$pid" 2>/dev/null || true; done
    if [ -n "${pg:-}" ]; then kill "$pg" 2>/dev/null || true; wait "$pg" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# The engine of each run (`engine` in `baton runs --json`: the one driving it, or that did last).
engines_of_runs() {
    b runs --json | python3 -c 'import json, sys
for r in json.load(sys.stdin):
    print("%s  %-9s  engine %s" % (r["id"], r["status"], r.get("engine")))'
}

# A list of JSON objects on stdin; prints FIELD of those where KEY == VALUE.
field() {
    python3 -c 'import json, sys
key, value, field = sys.argv[1:]
for x in json.load(sys.stdin):
    if not key or str(x.get(key)) == value:
        print(x.get(field))' "$@"
}

echo "== a PostgreSQL server for the example (tests/cluster/pg.py)"
python3 "$root/tests/cluster/pg.py" --database baton >"$work/url" &
pg=$!
for _ in $(seq 600); do
    [ -s "$work/url" ] && break
    kill -0 "$pg" 2>/dev/null || { echo "PostgreSQL did not start" >&2; exit 1; }
    sleep 0.1
done
url=$(cat "$work/url")
[ -n "$url" ] || { echo "PostgreSQL did not start within 60s" >&2; exit 1; }
echo "$url"
b() { "$baton" --store "$url" "$@"; }

echo "== three engines: baton --store $url --engine-id eN serve --lease $lease"
for e in e1 e2 e3; do
    "$baton" --store "$url" --engine-id "$e" serve --lease "$lease" >"$work/$e.log" 2>&1 &
    pids="$pids $!"
    eval "pid_$e=$!"
done
for _ in $(seq 100); do
    [ "$(b engines --json | field alive True id | wc -l)" = 3 ] && break
    sleep 0.2
done

echo "== baton register examples/cluster/nightly.yaml; six runs started by a client"
b register "$root/examples/cluster/nightly.yaml"
for part in 1 2 3 4 5 6; do b start nightly-cluster -p part=$part; done
sleep 2
echo "== baton engines"
b engines
echo "== baton runs, and the engine driving each (baton runs --json)"
b runs
engines_of_runs

victim=$(b runs --json | field status RUNNING engine | sort | uniq -c | sort -rn | awk 'NR == 1 {print $2}')
victim=${victim:-e1}
eval "victim_pid=\$pid_$victim"
taken=$(b runs --json | field engine "$victim" id | sed -n 1p)
echo "== kill -9 engine $victim (pid $victim_pid): its runs wait for its lease ($lease) to end"
kill -9 "$victim_pid"
for _ in $(seq 120); do
    [ -z "$(b runs --json | field status RUNNING id)" ] && break
    sleep 0.5
done
echo "== baton engines: $victim is no longer alive"
b engines
echo "== baton runs: every run succeeded; those of $victim were finished by the others"
b runs
engines_of_runs
if [ -n "$taken" ]; then
    echo "== baton timeline $taken: the take-over"
    b timeline "$taken"
    echo "== baton show $taken"
    b show "$taken"
fi
echo "== stopping everything"
