"""The systems under comparison, each behind the same small interface: load data (timed), run one
SQL text and return its rows and the time it took, restart (for cold runs), say which files hold
its data (to evict them from the page cache) and how many bytes it stores.

- Footfall: its own server over HTTP (`POST /api/v1/sql`), HTTP included in every time.
- DuckDB and chDB over the Parquet files Footfall wrote, and over their own native tables.
- PostgreSQL 15 from Debian, started here on a private port in a temporary cluster.
"""

import csv
import glob
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"


def evict(paths):
    """Drops the files' pages from the OS page cache (posix_fadvise DONTNEED works unprivileged,
    unlike /proc/sys/vm/drop_caches). Returns how many files were evicted."""
    n = 0
    for p in paths:
        try:
            fd = os.open(p, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            n += 1
        finally:
            os.close(fd)
    return n


def files_under(root):
    out = []
    for d, _, names in os.walk(root):
        out.extend(os.path.join(d, n) for n in names)
    return out


def du(root):
    return sum(os.path.getsize(p) for p in files_under(root) if os.path.isfile(p))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Footfall:
    name = "footfall"
    label = "Footfall (HTTP)"
    dialect = "datafusion"
    table = "events"

    def __init__(self, binary, data_dir, extra_args=()):
        self.binary, self.data_dir, self.extra_args = binary, data_dir, list(extra_args)
        self.token = "bench-compare-admin-token-0123456789abcdef"
        self.proc = None
        self.last_files_scanned = None

    def start(self):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        log = open(os.path.join(os.path.dirname(self.data_dir), "footfall-query.log"), "ab")
        env = dict(os.environ, FOOTFALL_ADMIN_TOKEN=self.token)
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir", self.data_dir,
             "--query-timeout", "600", *self.extra_args],
            env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"footfall exited during start-up ({self.proc.returncode})")
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("footfall did not become healthy")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self):
        self.stop()
        self.start()

    def data_files(self):
        return files_under(os.path.join(self.data_dir, "storage"))

    def run(self, sql):
        body = json.dumps({"sql": sql, "format": "csv"}).encode()
        req = urllib.request.Request(self.base + "/api/v1/sql", data=body, method="POST", headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        t0 = time.perf_counter()
        try:
            with urllib.request.urlopen(req, timeout=900) as r:
                text = r.read()
                headers = r.headers
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"HTTP {e.code}: {e.read().decode(errors='replace')[:500]}") from None
        elapsed = time.perf_counter() - t0
        self.last_files_scanned = headers.get("x-footfall-files-scanned")
        rows = list(csv.reader(io.StringIO(text.decode())))
        return rows[0] if rows else [], rows[1:], elapsed

    def columns(self):
        _, rows, _ = self.run("SELECT column_name FROM information_schema.columns WHERE table_name = 'events'")
        return {r[0] for r in rows}


class DuckDB:
    """kind 'parquet': a view over Footfall's files; kind 'native': a table in a DuckDB file."""

    dialect = "duckdb"
    table = "events"

    def __init__(self, kind, work_dir, parquet_glob):
        self.kind, self.work_dir, self.glob = kind, work_dir, parquet_glob
        self.name = f"duckdb-{kind}"
        self.label = "DuckDB (Footfall's Parquet)" if kind == "parquet" else "DuckDB (native table)"
        self.db_path = os.path.join(work_dir, "duckdb-native.db")
        self.con = None

    def start(self):
        import duckdb
        if self.kind == "parquet":
            self.con = duckdb.connect()
            self.con.execute(
                f"CREATE VIEW events AS SELECT * FROM read_parquet('{self.glob}', hive_partitioning = false)")
        else:
            self.con = duckdb.connect(self.db_path, read_only=True)
        self.con.execute("SET TimeZone = 'UTC'")

    def stop(self):
        if self.con is not None:
            self.con.close()
        self.con = None

    def restart(self):
        self.stop()
        self.start()

    def data_files(self):
        return glob.glob(self.glob) if self.kind == "parquet" else [self.db_path]

    def run(self, sql):
        t0 = time.perf_counter()
        cur = self.con.execute(sql)
        rows = cur.fetchall()
        elapsed = time.perf_counter() - t0
        return [d[0] for d in cur.description], rows, elapsed


class ChDB:
    """kind 'parquet': ClickHouse's file() over Footfall's files; kind 'native': a MergeTree table."""

    dialect = "clickhouse"

    def __init__(self, kind, work_dir, parquet_glob):
        self.kind, self.work_dir, self.glob = kind, work_dir, parquet_glob
        self.name = f"chdb-{kind}"
        self.label = "chDB (Footfall's Parquet)" if kind == "parquet" else "chDB (MergeTree)"
        self.session_dir = os.path.join(work_dir, "chdb-session")
        self.table = f"file('{parquet_glob}', Parquet)" if kind == "parquet" else "bench.events"
        self.sess = None

    def start(self):
        from chdb import session
        self.sess = session.Session(self.session_dir)

    def stop(self):
        if self.sess is not None:
            self.sess.close()
        self.sess = None

    def restart(self):
        self.stop()
        self.start()

    def data_files(self):
        return glob.glob(self.glob) if self.kind == "parquet" else files_under(self.session_dir)

    def run(self, sql):
        settings = " SETTINGS session_timezone = 'UTC', join_use_nulls = 1"
        t0 = time.perf_counter()
        res = self.sess.query(sql + settings, "JSONCompact")
        elapsed = time.perf_counter() - t0
        data = json.loads(res.bytes() or b"{}")
        if not data:
            return [], [], elapsed
        return [m["name"] for m in data["meta"]], data["data"], elapsed


class Postgres:
    name = "postgres"
    label = "PostgreSQL"
    dialect = "postgres"
    table = "events"

    def __init__(self, work_dir):
        bins = sorted(glob.glob(PG_BIN_GLOB))
        if not bins:
            raise RuntimeError("PostgreSQL is not installed (apt-get install -y postgresql)")
        self.bin = bins[-1]
        self.work_dir = work_dir
        self.data = os.path.join(work_dir, "pgdata")
        self.port = free_port()
        self.con = None

    def _as_postgres(self, *args, **kw):
        return subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True, **kw)

    def init(self):
        if os.path.exists(self.data):
            shutil.rmtree(self.data)
        os.makedirs(self.data)
        shutil.chown(self.work_dir, "postgres")
        shutil.chown(self.data, "postgres")
        self._as_postgres(os.path.join(self.bin, "initdb"), "-D", self.data, "-U", "postgres", "--no-sync",
                          stdout=subprocess.DEVNULL)
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            # A tuned single-node config for a 2-core, 24 GiB machine, as a user would run it.
            f.write("\nlisten_addresses = ''\nshared_buffers = '4GB'\nwork_mem = '256MB'\n"
                    "maintenance_work_mem = '1GB'\neffective_cache_size = '16GB'\nmax_wal_size = '8GB'\n"
                    "max_parallel_workers_per_gather = 2\nrandom_page_cost = 1.1\n")

    def start(self):
        self._as_postgres(os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-w", "-l",
                          os.path.join(self.data, "server.log"), "-o", f"-p {self.port} -k {self.data}", "start",
                          stdout=subprocess.DEVNULL)
        import psycopg
        self.con = psycopg.connect(host=self.data, port=self.port, user="postgres", dbname="postgres",
                                   autocommit=True)

    def stop(self):
        if self.con is not None:
            self.con.close()
            self.con = None
        self._as_postgres(os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-w", "-m", "fast", "stop",
                          stdout=subprocess.DEVNULL)

    def restart(self):
        self.stop()
        self.start()

    def data_files(self):
        return files_under(os.path.join(self.data, "base"))

    def version(self):
        return self.con.execute("SHOW server_version").fetchone()[0]

    def run(self, sql):
        t0 = time.perf_counter()
        cur = self.con.execute(sql)
        rows = cur.fetchall()
        elapsed = time.perf_counter() - t0
        return [d.name for d in cur.description], rows, elapsed
