"""Runs the comparison end to end on one generated data set and writes the results as JSON:

1. Footfall ingest through HTTP (`ingest-bench --ndjson`, durable batches), pageviews alone (for
   bytes per stored pageview), and beacons (`ingest-bench --beacons`).
2. The peers' ingest: the same NDJSON into DuckDB and ClickHouse native tables; Footfall's stored
   rows into DuckDB, MergeTree and PostgreSQL tables (what they query).
3. Every query on every system: a warm-up pass over the whole set, a warm-up of the query, then the
   median of --runs hot runs; then cold runs (the
   system restarted, its files evicted from the page cache). A time is reported only for an answer
   that equals the reference answer (DuckDB over Footfall's Parquet); a mismatch is reported loudly.

Usage (benches/compare.sh wraps it): python run.py --ndjson FILE --footfall-bin BIN --ingest-bench BIN
    --work DIR --out results.json
"""

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time

import load
import queries
import systems


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def ingest_bench(binary, args, footfall_bin):
    cmd = [binary, "--footfall-bin", footfall_bin, "--json", "--progress", "0", *args]
    log("$ " + " ".join(cmd))
    p = subprocess.run(cmd, capture_output=True, text=True)
    sys.stderr.write(p.stderr)
    kept = re.search(r"keeping the data directory (\S+)", p.stderr)
    if not p.stdout.strip():
        raise RuntimeError(f"ingest-bench failed ({p.returncode})")
    report = json.loads(p.stdout.strip().splitlines()[-1])
    report["exit_status"] = p.returncode
    return report, (kept.group(1) if kept else None)


def pageviews_only(ndjson, out):
    """The pageview lines alone, with a manifest, to measure Footfall's bytes per stored pageview."""
    n = 0
    with open(ndjson, "rb") as f, open(out, "wb") as w:
        for line in f:
            if b'"type":"pageview"' in line:
                w.write(line)
                n += 1
    meta = json.load(open(ndjson + ".meta.json"))
    meta.update(events=n, pageviews=n)
    json.dump(meta, open(out + ".meta.json", "w"))
    return n


def norm(v):
    if v is None:
        return ""
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        return float(v)
    if hasattr(v, "as_tuple"):  # Decimal
        return float(v)
    s = str(v)
    if re.fullmatch(r"-?\d+(\.\d+)?([eE][-+]?\d+)?", s):
        return float(s)
    return s


def same(a_rows, b_rows, tol):
    """Compares two results row by row; returns None when equal, else a description of the first
    difference."""
    if len(a_rows) != len(b_rows):
        return f"{len(b_rows)} rows, expected {len(a_rows)}"
    for i, (ra, rb) in enumerate(zip(a_rows, b_rows)):
        ra, rb = [norm(x) for x in ra], [norm(x) for x in rb]
        if len(ra) != len(rb):
            return f"row {i}: {len(rb)} columns, expected {len(ra)}"
        for x, y in zip(ra, rb):
            if isinstance(x, float) and isinstance(y, float):
                if abs(x - y) > tol + 1e-9 * max(abs(x), abs(y)):
                    return f"row {i}: {rb} expected {ra}"
            elif x != y:
                return f"row {i}: {rb} expected {ra}"
    return None


def make_system(name, ctx):
    work, glob = ctx["work"], ctx["glob"]
    if name == "footfall":
        return systems.Footfall(ctx["footfall_bin"], ctx["data_dir"])
    if name.startswith("duckdb-"):
        return systems.DuckDB(name.split("-", 1)[1], work, glob)
    if name.startswith("chdb-"):
        return systems.ChDB(name.split("-", 1)[1], work, glob)
    if name == "postgres":
        return ctx["pg"]
    raise ValueError(name)


def cold_worker(argv):
    """Runs one query once in a fresh process (DuckDB and chDB are in-process engines: a new
    process is their restart) and prints its time."""
    a = argparse.ArgumentParser()
    a.add_argument("--system")
    a.add_argument("--work")
    a.add_argument("--glob")
    a.add_argument("--sql-file")
    o = a.parse_args(argv)
    s = make_system(o.system, {"work": o.work, "glob": o.glob})
    s.start()
    sql = open(o.sql_file).read()
    _, rows, secs = s.run(sql)
    s.stop()
    print(json.dumps({"secs": secs, "rows": len(rows)}))


def run_queries(system, ctx, plan, runs):
    """Hot runs in this process; returns {query: result} and keeps each answer for the check."""
    out = {}
    system.start()
    # A dashboard server answers queries all day: warm the system with one pass over the whole set
    # (a freshly started Footfall takes a handful of queries to reach its steady speed, as the
    # in-process engines do after a start), then warm each query once more before timing it.
    for q, sql in plan:
        try:
            system.run(sql)
        except Exception:  # reported below, where the query runs again
            pass
    for q, sql in plan:
        r = {"sql": sql}
        try:
            cols, rows, first = system.run(sql)
            times = [system.run(sql)[2] for _ in range(runs)]
            r.update(columns=cols, rows=rows, warmup_secs=first, hot_runs=times, hot_secs=statistics.median(times))
            if system.name == "footfall":
                r["files_scanned"] = system.last_files_scanned
            log(f"  {system.name:15} {q.name:17} hot {r['hot_secs'] * 1000:9.1f} ms  ({len(rows)} rows)")
        except Exception as e:  # a failing query is a result too: reported, not fatal
            r["error"] = str(e)[:1000]
            log(f"  {system.name:15} {q.name:17} ERROR {r['error'][:300]}")
        out[q.name] = r
    system.stop()
    return out


def run_cold(system, ctx, plan, results):
    for q, sql in plan:
        r = results[q.name]
        if "error" in r:
            continue
        try:
            if system.name.startswith(("duckdb", "chdb")):
                systems.evict(system.data_files())
                sql_file = os.path.join(ctx["work"], "cold.sql")
                open(sql_file, "w").write(sql)
                p = subprocess.run([sys.executable, __file__, "cold-worker", "--system", system.name, "--work",
                                    ctx["work"], "--glob", ctx["glob"], "--sql-file", sql_file],
                                   capture_output=True, text=True, check=True)
                r["cold_secs"] = json.loads(p.stdout.strip().splitlines()[-1])["secs"]
            else:
                # run_queries left the system stopped: evict, then start it cold.
                evicted = systems.evict(system.data_files())
                system.start()
                r["cold_secs"] = system.run(sql)[2]
                r["cold_files_evicted"] = evicted
                system.stop()
            log(f"  {system.name:15} {q.name:17} cold {r['cold_secs'] * 1000:8.1f} ms")
        except Exception as e:
            r["cold_error"] = str(e)[:500]
            log(f"  {system.name:15} {q.name:17} cold ERROR {r['cold_error'][:300]}")


def criterion_results(root):
    """Medians of the criterion micro-benchmarks under root (target/criterion), with throughput."""
    out = []
    for d, _, names in sorted(os.walk(root)):
        if os.path.basename(d) != "new" or "estimates.json" not in names:
            continue
        est = json.load(open(os.path.join(d, "estimates.json")))
        meta = json.load(open(os.path.join(d, "benchmark.json")))
        ns = est["median"]["point_estimate"]
        elements = (meta.get("throughput") or {}).get("Elements")
        out.append({"group": meta.get("group_id"), "name": meta.get("function_id") or meta.get("title"),
                    "median_ns": ns, "elements": elements,
                    "ns_per_element": ns / elements if elements else None,
                    "elements_per_sec": elements / ns * 1e9 if elements else None})
    return out


def versions(pg):
    import chdb
    import duckdb
    v = {"python": platform.python_version(), "duckdb": duckdb.__version__, "chdb": chdb.__version__}
    try:
        from chdb import session
        s = session.Session()
        v["clickhouse"] = s.query("SELECT version()", "CSV").bytes().decode().strip().strip('"')
        s.close()
    except Exception as e:
        v["clickhouse"] = f"unknown ({e})"
    if pg is not None and pg.con is not None:
        v["postgres"] = pg.version()
    if os.environ.get("FOOTFALL_BENCH_COMMIT"):
        v["footfall_commit"] = os.environ["FOOTFALL_BENCH_COMMIT"]
    for cmd, key in ((["rustc", "--version"], "rustc"), (["git", "rev-parse", "--short", "HEAD"], "footfall_commit")):
        if key in v:
            continue
        try:
            v[key] = subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
        except OSError:
            pass
    lock = os.path.join(os.path.dirname(__file__), "..", "..", "Cargo.lock")
    m = re.search(r'name = "datafusion"\nversion = "([^"]+)"', open(lock).read())
    v["datafusion"] = m.group(1) if m else "?"
    return v


def machine():
    cpu = ""
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = int(open("/proc/meminfo").readline().split()[1]) * 1024
    return {"cpu": cpu, "logical_cpus": os.cpu_count(), "memory_bytes": mem, "kernel": platform.release(),
            "os": platform.platform()}


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "cold-worker":
        return cold_worker(sys.argv[2:])
    a = argparse.ArgumentParser()
    a.add_argument("--ndjson", required=True)
    a.add_argument("--footfall-bin", required=True)
    a.add_argument("--ingest-bench", required=True)
    a.add_argument("--work", required=True)
    a.add_argument("--out", required=True)
    a.add_argument("--runs", type=int, default=5)
    a.add_argument("--beacon-duration", type=float, default=20)
    a.add_argument("--systems", default="footfall,duckdb-parquet,duckdb-native,chdb-parquet,chdb-native,postgres")
    a.add_argument("--no-cold", action="store_true")
    a.add_argument("--criterion-dir", help="target/criterion of a `cargo bench -p footfall-benches` run to include")
    o = a.parse_args()
    os.makedirs(o.work, exist_ok=True)
    manifest = json.load(open(o.ndjson + ".meta.json"))
    events = manifest["events"]
    res = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine(),
           "data": manifest, "ingest": {}, "storage": {},
           "queries": {q.name: {"title": q.title, "group": q.group, "systems": {}} for q in queries.QUERIES}}

    if o.criterion_dir and os.path.isdir(o.criterion_dir):
        res["micro"] = criterion_results(o.criterion_dir)
    log("== Footfall: batched durable ingest of the NDJSON over HTTP")
    rep, kept = ingest_bench(o.ingest_bench, ["--ndjson", o.ndjson, "--keep-data", "--tmp-dir", o.work],
                             o.footfall_bin)
    res["ingest"]["footfall"] = rep
    data_dir = os.path.join(kept, "data")
    st = rep.get("storage") or {}
    res["storage"]["footfall"] = {"bytes": st.get("parquet_bytes", 0) + st.get("index_bytes", 0),
                                  "parquet_bytes": st.get("parquet_bytes"), "index_bytes": st.get("index_bytes"),
                                  "files": st.get("parquet_files"),
                                  "bytes_per_event": st.get("bytes_per_event_with_index"),
                                  "parquet_bytes_per_event": st.get("bytes_per_event_parquet")}

    log("== Footfall: pageviews alone (bytes per stored pageview)")
    pv_file = os.path.join(o.work, "pageviews.ndjson")
    pageviews_only(o.ndjson, pv_file)
    pv_rep, _ = ingest_bench(o.ingest_bench, ["--ndjson", pv_file], o.footfall_bin)
    res["storage"]["footfall_pageviews_only"] = pv_rep.get("storage")
    os.remove(pv_file)

    if o.beacon_duration > 0:
        log("== Footfall: beacons (single events, many connections)")
        # 256 connections: each is a closed loop (next request after the answer), so with few of them
        # the rate is connections / group-commit latency; browsers are many and open-loop.
        b_rep, _ = ingest_bench(o.ingest_bench, ["--beacons", "--duration", str(o.beacon_duration),
                                                 "--connections", "256"], o.footfall_bin)
        res["ingest"]["footfall_beacons"] = b_rep

    glob = os.path.join(data_dir, "storage", "project=*", "day=*", "*.parquet")
    schema = load.stored_schema(glob)
    columns = {n for n, _ in schema}
    res["stored_columns"] = [n for n, _ in schema]
    ctx = {"work": o.work, "glob": glob, "footfall_bin": o.footfall_bin, "data_dir": data_dir, "pg": None}
    wanted = o.systems.split(",")

    log("== peers: ingest of the NDJSON and load of Footfall's stored rows")
    if any(s.startswith("duckdb") for s in wanted):
        res["ingest"]["duckdb"] = load.duckdb_ingest_ndjson(o.work, o.ndjson, events)
        res["storage"]["duckdb_raw"] = res["ingest"]["duckdb"]
        res["storage"]["duckdb"] = load.duckdb_load_stored(o.work, glob, events)
        log(f"  duckdb: {res['ingest']['duckdb']} / stored {res['storage']['duckdb']}")
    if any(s.startswith("chdb") for s in wanted):
        from chdb import session
        sess = session.Session(os.path.join(o.work, "chdb-session"))
        res["ingest"]["chdb"] = load.chdb_ingest_ndjson(sess, o.ndjson, events)
        res["storage"]["chdb_raw"] = res["ingest"]["chdb"]
        res["storage"]["chdb"] = load.chdb_load_stored(sess, glob, events)
        sess.query("DROP TABLE IF EXISTS bench.raw")
        sess.close()
        log(f"  chdb: {res['ingest']['chdb']} / stored {res['storage']['chdb']}")
    if "postgres" in wanted:
        # Not under the work dir: the postgres user must reach its cluster, and /root is closed to it.
        import tempfile
        pg = systems.Postgres(tempfile.mkdtemp(prefix="footfall-bench-pg-", dir="/var/tmp"))
        pg.init()
        pg.start()
        try:
            res["ingest"]["postgres"] = load.postgres_load_stored(pg, o.work, glob, schema, events)
        except Exception:
            pg.stop()
            raise
        res["storage"]["postgres"] = res["ingest"]["postgres"]
        log(f"  postgres: {res['ingest']['postgres']}")
        ctx["pg"] = pg
    res["versions"] = versions(ctx["pg"])
    if ctx["pg"] is not None:
        ctx["pg"].stop()

    # The session the lookup reads, and the plan of queries each system can run.
    import duckdb
    con = duckdb.connect()
    session_id = con.execute(queries.PICK_SESSION.replace(
        "{T}", f"read_parquet('{glob}', hive_partitioning = false)")).fetchone()[0]
    # Which files hold that session (what an ideal lookup touches), out of how many.
    session_files, total_files = con.execute(
        f"SELECT count(DISTINCT filename) FILTER (WHERE session_id = ?), count(DISTINCT filename) "
        f"FROM read_parquet('{glob}', hive_partitioning = false, filename = true)", [session_id]).fetchone()
    con.close()
    start_ms = manifest["first_timestamp_ms"] // 86_400_000 * 86_400_000
    bots = "is_bot" in columns
    res["query_settings"] = {"session_id": session_id, "session_files": session_files, "total_files": total_files,
                             "start_ms": start_ms, "bot_filter": bots, "runs": o.runs,
                             "project": queries.PROJECT}
    plans = {}
    for name in wanted:
        s = make_system(name, ctx)
        plan = []
        for q in queries.QUERIES:
            missing = [c for c in q.needs if c not in columns]
            if missing:
                res["queries"].setdefault(q.name, {"title": q.title, "group": q.group, "systems": {}})
                res["queries"][q.name]["skipped"] = f"not stored by this Footfall build: {', '.join(missing)}"
                continue
            plan.append((q, queries.render(q.sql_for(s.dialect), s.dialect, s.table, start_ms, session_id, bots)))
        plans[name] = (s, plan)

    for name in wanted:
        s, plan = plans[name]
        log(f"== queries: {s.label}")
        try:
            results = run_queries(s, ctx, plan, o.runs)
        except Exception:
            s.stop()
            raise
        if not o.no_cold:
            run_cold(s, ctx, plan, results)
        for q, _ in plan:
            entry = res["queries"].setdefault(q.name, {"title": q.title, "group": q.group, "systems": {}})
            entry["systems"][name] = results[q.name]

    # The check: every answer against DuckDB-over-Parquet's (Footfall's when DuckDB did not run).
    by_name = {q.name: q for q in queries.QUERIES}
    for qname, entry in res["queries"].items():
        sysres = entry["systems"]
        ref_name = next((n for n in ("duckdb-parquet", "footfall") if "rows" in sysres.get(n, {})), None)
        entry["reference"] = ref_name
        for n, r in sysres.items():
            if "rows" not in r:
                r["status"] = "error"
                continue
            diff = same(sysres[ref_name]["rows"], r["rows"], by_name[qname].tolerance)
            r["status"] = "ok" if diff is None else "MISMATCH"
            if diff:
                r["mismatch"] = diff
                log(f"MISMATCH {qname} on {n}: {diff}")
            r["row_count"] = len(r["rows"])
            r["sample"] = [[norm(x) for x in row] for row in r["rows"][:3]]
        for n, r in sysres.items():
            r.pop("rows", None)
    if ctx["pg"] is not None:
        import shutil
        shutil.rmtree(ctx["pg"].work_dir, ignore_errors=True)
    res["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with open(o.out, "w") as f:
        json.dump(res, f, indent=1, default=str)
    log(f"results written to {o.out}")
    mismatches = [(q, n) for q, e in res["queries"].items() for n, r in e["systems"].items()
                  if r.get("status") == "MISMATCH"]
    if mismatches:
        log(f"MISMATCHES: {mismatches}")
        sys.exit(1)


if __name__ == "__main__":
    main()
