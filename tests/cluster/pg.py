#!/usr/bin/env python3
"""A throwaway PostgreSQL server for Baton's tests and examples.

    from pg import Postgres            # tests/cluster on sys.path
    with Postgres() as pg:             # initdb in a temp dir, started on a free port
        url = pg.create_database("baton")   # postgresql://postgres@127.0.0.1:PORT/baton
        pg.restart()                   # a fault: stop at once, start on the same data dir
    # stopped and removed here, also when the block raised

    python3 tests/cluster/pg.py        # prints the URL of a database `baton`, then holds the
                                       # server until SIGINT or SIGTERM (examples/cluster/run.sh)

The server listens on 127.0.0.1 only (and a Unix socket inside its temp dir), with trust
authentication for local connections: it is for tests, never for data anyone keeps. When
running as root it runs as the `postgres` user (PostgreSQL refuses root), through runuser.
The binaries come from $PG_BIN, else /usr/lib/postgresql/15/bin, else the newest
/usr/lib/postgresql/*/bin, else PATH. Without them, `Postgres()` raises NotInstalled, which
a test turns into a skip.

The server is stopped and its directory removed by `close()` (the `with` block, and an
atexit hook for anything left open); SIGTERM is turned into an exit so that the hook runs.
Only SIGKILL of the Python process leaves a server behind (its temp dir says baton-pg-).
Python 3 standard library only.
"""

import atexit
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

READY_WITHIN = 60  # seconds for the server to accept connections after a start
SQL_TIMEOUT = 60  # seconds for one psql call

_open_servers = []


class NotInstalled(Exception):
    """PostgreSQL's server binaries (initdb, pg_ctl, postgres) are not on this machine."""


class PostgresError(Exception):
    """The server did not start or stop, or a statement failed; the message says why."""


def find_binaries():
    """The directory holding initdb, pg_ctl, postgres and psql, or None."""
    candidates = []
    if os.environ.get("PG_BIN"):
        candidates.append(os.environ["PG_BIN"])
    candidates.append("/usr/lib/postgresql/15/bin")

    def version(path):
        try:
            return int(os.path.basename(os.path.dirname(path)))
        except ValueError:
            return 0

    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
    candidates += os.environ.get("PATH", "").split(os.pathsep)
    for d in candidates:
        if all(os.access(os.path.join(d, b), os.X_OK) for b in ("initdb", "pg_ctl", "postgres")):
            return d
    return None


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgres:
    """One server in a temp dir of its own. Starts in the constructor."""

    def __init__(self, bin_dir=None, fsync=False):
        self.bin = bin_dir or find_binaries()
        if self.bin is None:
            raise NotInstalled("PostgreSQL is not installed (no initdb, pg_ctl and postgres in $PG_BIN, "
                               "/usr/lib/postgresql/*/bin or PATH); `make deps` installs it")
        # As root, the server runs as `postgres`, which must own its directory.
        self.user = None
        if os.geteuid() == 0:
            try:
                self.user = pwd.getpwnam("postgres")
            except KeyError:
                raise NotInstalled("running as root, and there is no `postgres` user to run the server")
        self.root = tempfile.mkdtemp(prefix="baton-pg-")
        _open_servers.append(self)
        self.data = os.path.join(self.root, "data")
        self.log = os.path.join(self.root, "postgres.log")
        self.port = None
        self.running = False
        try:
            if self.user:
                os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
            self._initdb(fsync)
            self._start_on_a_free_port()
        except BaseException:
            self.close()
            raise

    # -- the server -----------------------------------------------------------------------

    def _as_server_user(self, argv):
        return ["runuser", "-u", "postgres", "--"] + argv if self.user else argv

    def _run(self, argv, what, timeout=READY_WITHIN):
        try:
            p = subprocess.run(self._as_server_user(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise PostgresError("%s did not finish within %ds%s" % (what, timeout, self._log_tail()))
        if p.returncode != 0:
            raise PostgresError("%s failed (exit %d):\n%s%s" % (
                what, p.returncode, p.stdout.decode(errors="replace")[-3000:], self._log_tail()))
        return p.stdout.decode(errors="replace")

    def _initdb(self, fsync):
        self._run([os.path.join(self.bin, "initdb"), "-D", self.data, "-U", "postgres", "-E", "UTF8",
                   "--auth-local=trust", "--auth-host=trust", "--no-sync", "--no-instructions"], "initdb")
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("\n# tests/cluster/pg.py\n")
            f.write("listen_addresses = '127.0.0.1'\n")
            f.write("unix_socket_directories = '%s'\n" % self.root)
            f.write("max_connections = 200\n")
            # A test server loses nothing to a process crash or an immediate stop without
            # fsync (the kernel keeps the writes); only a machine crash would, and then the
            # server is gone anyway. It makes every commit much cheaper on a shared disk.
            f.write("fsync = %s\n" % ("on" if fsync else "off"))
            f.write("full_page_writes = %s\n" % ("on" if fsync else "off"))

    def _pg_ctl(self, *args, timeout=READY_WITHIN):
        return self._run([os.path.join(self.bin, "pg_ctl"), "-D", self.data] + list(args),
                         "pg_ctl " + args[0], timeout=timeout)

    def _start_on_a_free_port(self):
        # Another process may take the port between free_port() and the server's bind: try a few.
        for attempt in range(5):
            self.port = free_port()
            try:
                self.start()
                return
            except PostgresError:
                if attempt == 4 or "already in use" not in self._log_tail():
                    raise

    def start(self):
        """Starts the server on its data dir and port; returns once it accepts connections."""
        if self.running:
            return
        self._pg_ctl("start", "-w", "-t", str(READY_WITHIN), "-l", self.log, "-o", "-p %d" % self.port,
                     timeout=READY_WITHIN + 10)
        self.running = True

    def stop(self, mode="immediate"):
        """Stops the server: `immediate` (default) is what a crash does, and ends every
        connection at once; `fast` is a clean shutdown that also ends them."""
        if not self.running:
            return
        self._pg_ctl("stop", "-w", "-m", mode)
        self.running = False

    def restart(self, down_seconds=0.0, mode="immediate"):
        """A fault: stops the server, waits `down_seconds`, starts it again on the same data
        dir and port. Every client connection breaks; the data survives."""
        self.stop(mode)
        time.sleep(down_seconds)
        self.start()

    def close(self):
        """Stops the server (if it runs) and removes its directory. Safe to call twice."""
        if self.running:
            try:
                self.stop("immediate")
            except PostgresError:
                self._kill_postmaster()
        self.running = False
        shutil.rmtree(self.root, ignore_errors=True)
        if self in _open_servers:
            _open_servers.remove(self)

    def _kill_postmaster(self):
        # pg_ctl failed: the postmaster's pid is the first line of postmaster.pid.
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                os.kill(int(f.readline().strip()), signal.SIGQUIT)
        except (OSError, ValueError):
            pass

    def _log_tail(self, n=3000):
        try:
            with open(self.log, errors="replace") as f:
                return "\nserver log (%s):\n%s" % (self.log, f.read()[-n:])
        except OSError:
            return ""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # -- clients --------------------------------------------------------------------------

    def url(self, db="postgres"):
        return "postgresql://postgres@127.0.0.1:%d/%s" % (self.port, db)

    def sql(self, statement, db="postgres"):
        """Runs SQL with psql over TCP; returns its unaligned, tuples-only output."""
        psql = os.path.join(self.bin, "psql")
        if not os.access(psql, os.X_OK):
            psql = shutil.which("psql") or psql
        try:
            p = subprocess.run([psql, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                                "-p", str(self.port), "-U", "postgres", "-d", db, "-c", statement],
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=SQL_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise PostgresError("psql: %r did not finish within %ds" % (statement, SQL_TIMEOUT))
        if p.returncode != 0:
            raise PostgresError("psql: %r failed: %s" % (statement, p.stderr.decode(errors="replace").strip()))
        return p.stdout.decode()

    def create_database(self, name):
        """Creates database `name` (a plain identifier); returns its URL."""
        if not name.replace("_", "").isalnum():
            raise ValueError("not a plain database name: %r" % name)
        self.sql("CREATE DATABASE %s" % name)
        return self.url(name)

    def drop_connections(self, db):
        """Ends every connection to database `db`: what a network failure does to clients."""
        self.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                 "WHERE datname = '%s' AND pid <> pg_backend_pid()" % db)


def _close_all():
    for server in list(_open_servers):
        server.close()


def _exit_on_sigterm(signum, frame):
    # An exit (not a kill) so that `finally` blocks and the atexit hook stop the servers.
    sys.exit(128 + signum)


atexit.register(_close_all)
if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)


def main():
    import argparse
    ap = argparse.ArgumentParser(description="Starts a throwaway PostgreSQL server, prints the URL of a "
                                             "new database, and holds the server until SIGINT or SIGTERM.")
    ap.add_argument("--database", default="baton", help="the database to create (default: baton)")
    args = ap.parse_args()
    try:
        pg = Postgres()
    except (NotInstalled, PostgresError) as e:
        print("pg.py: %s" % e, file=sys.stderr)
        return 1
    with pg:
        print(pg.create_database(args.database), flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
