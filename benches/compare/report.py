"""Regenerates docs/benchmarks.md and the query-ratio chart from one results JSON of run.py.

    python report.py benches/results/compare-1000000.json --md docs/benchmarks.md --svg docs/benchmarks-queries.svg

Every figure on the page comes from the JSON; the hand-written analysis lives in notes.md beside
this file and is included as it stands. Ratios are always Footfall / peer: for times below 1 means
Footfall is faster, for throughput above 1 means Footfall is faster — each table says which.
"""

import argparse
import json
import math
import os

PEERS = ["duckdb-parquet", "duckdb-native", "chdb-parquet", "chdb-native", "postgres"]
LABELS = {
    "footfall": "Footfall",
    "duckdb-parquet": "DuckDB on Footfall's Parquet",
    "duckdb-native": "DuckDB native table",
    "chdb-parquet": "chDB on Footfall's Parquet",
    "chdb-native": "chDB MergeTree",
    "postgres": "PostgreSQL 15",
}
SHORT = {"duckdb-parquet": "DuckDB·pq", "duckdb-native": "DuckDB·tbl", "chdb-parquet": "chDB·pq",
         "chdb-native": "chDB·MT", "postgres": "PG"}


def fmt_int(x):
    return "–" if x is None else f"{x:,.0f}"


def fmt_ms(secs):
    if secs is None:
        return "–"
    ms = secs * 1000
    return f"{ms:,.1f}" if ms < 100 else f"{ms:,.0f}"


def fmt_ratio(r):
    if r is None:
        return "–"
    return f"{r:.2f}×" if r < 10 else f"{r:.1f}×"


def mib(b):
    return "–" if b is None else f"{b / 1048576:,.1f} MiB"


def geomean(xs):
    xs = [x for x in xs if x and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def time_of(entry, system, kind):
    r = entry["systems"].get(system)
    if not r or r.get("status") != "ok":
        return None
    return r.get(f"{kind}_secs")


def query_rows(res, kind):
    """Per query: Footfall's time and each peer's time with the ratio Footfall / peer."""
    present = [p for p in PEERS if any(p in e["systems"] for e in res["queries"].values())]
    head = "| query | Footfall ms | " + " | ".join(f"{LABELS[p]} ms (ratio)" for p in present) + " |"
    lines = [head, "|" + "---|" * (2 + len(present))]
    ratios = {p: [] for p in present}
    for name, e in res["queries"].items():
        if "skipped" in e and not e["systems"]:
            lines.append(f"| `{name}` | skipped: {e['skipped']} |" + " |" * len(present))
            continue
        ff = time_of(e, "footfall", kind)
        ff_status = e["systems"].get("footfall", {}).get("status", "–")
        cells = [f"`{name}`" + (" (dashboard)" if e["group"] == "dashboard" else ""),
                 fmt_ms(ff) if ff is not None else f"**{ff_status}**"]
        for p in present:
            r = e["systems"].get(p, {})
            t = time_of(e, p, kind)
            if t is None:
                cells.append(f"**{r.get('status', '–')}**")
                continue
            ratio = ff / t if ff and t else None
            if ratio and e["group"] == "dashboard":
                ratios[p].append(ratio)
            cells.append(f"{fmt_ms(t)} ({fmt_ratio(ratio)})")
        lines.append("| " + " | ".join(cells) + " |")
    gm = {p: geomean(v) for p, v in ratios.items()}
    lines.append("| **dashboard set, geometric mean of the ratios** | | " +
                 " | ".join(f"**{fmt_ratio(gm[p])}** over {len(ratios[p])}" for p in present) + " |")
    return lines, gm, present


def chart(res, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    present = [p for p in PEERS if any(p in e["systems"] for e in res["queries"].values())]
    names = [n for n, e in res["queries"].items() if time_of(e, "footfall", "hot")]
    fig, ax = plt.subplots(figsize=(10, 0.55 * len(names) + 2))
    height = 0.8 / max(len(present), 1)
    colors = ["#1f77b4", "#aec7e8", "#d62728", "#ff9896", "#2ca02c"]
    for i, p in enumerate(present):
        vals = []
        for n in names:
            e = res["queries"][n]
            ff, t = time_of(e, "footfall", "hot"), time_of(e, p, "hot")
            vals.append(ff / t if ff and t else float("nan"))
        ys = [k + i * height for k in range(len(names))]
        ax.barh(ys, vals, height=height, color=colors[i % len(colors)], label=LABELS[p])
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xscale("log")
    ax.set_yticks([k + 0.4 - height / 2 for k in range(len(names))])
    ax.set_yticklabels(names)
    ax.invert_yaxis()
    ax.set_xlabel("hot time ratio Footfall / peer (log scale; left of 1 = Footfall faster)")
    ev = res["data"]["events"]
    ax.set_title(f"Footfall vs peers, {ev:,} events, median of {res['query_settings']['runs']} hot runs")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    # No date and fixed element ids: regenerating from the same results gives the same file.
    matplotlib.rcParams["svg.hashsalt"] = "footfall"
    fig.savefig(path, format="svg", metadata={"Date": None})


def fmt_ns(ns):
    """A duration in the unit that keeps three significant digits: enrichment steps take
    nanoseconds, Parquet encoding of 100k rows takes a tenth of a second."""
    if ns < 1e3:
        return f"{ns:.0f} ns"
    if ns < 1e6:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns / 1e6:,.2f} ms"


def funnel_at_scale():
    """The newest benches/funnel-at-scale.sh result at 100M events or more, if one was run."""
    results = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "results")
    best = None
    for name in sorted(os.listdir(results)) if os.path.isdir(results) else []:
        if name.startswith("funnel-") and name.endswith(".json"):
            r = json.load(open(os.path.join(results, name)))
            if r.get("stored", {}).get("events", 0) >= 100_000_000 and (best is None or r["run_at"] > best["run_at"]):
                best = r
    return best


def render(res, notes, svg_name, results_name, doc="benchmarks"):
    d, m, v, ing, st = res["data"], res["machine"], res.get("versions", {}), res["ingest"], res["storage"]
    qs = res["query_settings"]
    ev = d["events"]
    out = []
    w = out.append
    w("# Benchmarks")
    w("")
    w(f"<!-- Generated by benches/compare/report.py from {results_name}; do not edit by hand. "
      "Hand-written analysis: benches/compare/notes.md. -->")
    w("")
    w("Footfall side by side with the systems a user would pick instead — DuckDB, ClickHouse (chDB, embedded) "
      "and PostgreSQL — on the same machine, the same data and in the same run. Every ratio is **Footfall / peer**.")
    w("")
    w("## Reproduce")
    w("")
    w("```sh")
    flags = "" if doc == "benchmarks" else f" --doc {doc}"
    if "footfall_beacons" not in res.get("ingest", {}):
        flags += " --beacon-duration 0"
    if not res.get("micro"):
        flags += " --no-micro"
    w(f"bash benches/compare.sh --events {ev}{flags}")
    w("```")
    w("")
    w("One command: it creates the venv with the pinned peers (`benches/compare/requirements.txt`), installs "
      "PostgreSQL from Debian's packages if needed, builds release binaries, generates the data with "
      "`footfall-gen`, runs every measurement (`benches/compare/run.py`, results in "
      f"`{results_name}`) and regenerates this page and `docs/{svg_name}` (`benches/compare/report.py`). "
      "`--events 1000000` takes about 7 minutes once the release binaries are built (a cold release build adds 15–20); other sizes by flag, but not yet 100,000,000: `ingest-bench` "
      "holds the whole NDJSON in memory (≈ 50 GB at that size, on a 24 GiB machine) and must stream it first. "
      "`bash benches/run.sh` still runs the ingest benchmark alone on its own synthetic stream.")
    w("")
    w(f"Run {res['started']} – {res.get('finished', '?')}.")
    w("")
    w("## Machine and versions")
    w("")
    w("| | |")
    w("|---|---|")
    w(f"| machine | {m['logical_cpus']} logical CPUs, `{m['cpu']}`, {m['memory_bytes'] / 2**30:.1f} GiB RAM, "
      f"{m['os']}, kernel {m['kernel']} |")
    w(f"| Footfall | commit `{v.get('footfall_commit', '?')}`, DataFusion {v.get('datafusion', '?')}, "
      f"{v.get('rustc', '?')}, release profile |")
    w(f"| DuckDB | {v.get('duckdb', '?')} (Python, PyPI) |")
    w(f"| chDB | {v.get('chdb', '?')}, ClickHouse {v.get('clickhouse', '?')} (Python, PyPI) |")
    w(f"| PostgreSQL | {v.get('postgres', '?')}, Debian package; shared_buffers 4GB, work_mem 256MB |")
    w(f"| Python | {v.get('python', '?')} |")
    w("")
    w("All systems run on the same 2 cores, one at a time; the load generator shares them with the server.")
    w("")
    w("## Data")
    w("")
    w(f"`footfall-gen --events {ev} --seed {d['seed']} --projects {len(d['projects'])} --days {d['days']}"
      f"{' --core-types-only' if d.get('core_types_only') else ''}`: "
      f"{ev:,} events, {d['pageviews']:,} pageviews, {d['sessions']:,} sessions, {d['visitors']:,} visitors, "
      f"{len(d['projects'])} projects, {d['days']} days from {d['start_day']}, {mib(d['bytes'])} of NDJSON "
      f"({d['bytes'] / ev:.0f} B/event).")
    w("")
    w("| type | events | per pageview |")
    w("|---|---|---|")
    for c in d["counts"]:
        w(f"| `{c['type']}` | {c['events']:,} | {c['events'] / max(d['pageviews'], 1):.3f} |")
    w("")
    if d.get("core_types_only"):
        w("**This run used pageviews and custom events only**: the Footfall build measured predates the event "
          "model (spec §1), and rejects the other types.")
        w("")
    missing = [n for n, e in res["queries"].items() if e.get("skipped")]
    if missing:
        why = ", ".join("`%s` (%s)" % (n, res["queries"][n]["skipped"]) for n in missing)
        w(f"Queries skipped because Footfall did not store the columns they need: {why}.")
        w("")
    if not qs.get("bot_filter"):
        w("`is_bot` is not stored by this build, so the pageview queries count bots too (on every system).")
        w("")

    w("## Ingest")
    w("")
    ff = ing["footfall"]
    w("| system | how | events/s | Footfall / peer (above 1: Footfall faster) |")
    w("|---|---|---|---|")
    w(f"| Footfall | `POST /api/v1/events`, {ff['settings']['batch_size']} events per request, "
      f"{ff['settings']['connections']} connections, answered after fsync | **{fmt_int(ff['events_per_sec'])}** | |")
    if "duckdb" in ing:
        r = ing["duckdb"]
        w(f"| DuckDB | `read_json` of the NDJSON file into a table + CHECKPOINT, one transaction | "
          f"{fmt_int(r['events_per_sec'])} | {fmt_ratio(ff['events_per_sec'] / r['events_per_sec'])} |")
    if "chdb" in ing:
        r = ing["chdb"]
        w(f"| chDB | `INSERT INTO MergeTree SELECT FROM file(JSONEachRow)`, one insert | "
          f"{fmt_int(r['events_per_sec'])} | {fmt_ratio(ff['events_per_sec'] / r['events_per_sec'])} |")
    if "postgres" in ing:
        r = ing["postgres"]
        w(f"| PostgreSQL | `COPY` of Footfall's stored rows ({r['copy_secs']} s) + {len(r['indexes'])} indexes "
          f"and ANALYZE ({r['index_secs']} s) | {fmt_int(r['events_per_sec'])} | "
          f"{fmt_ratio(ff['events_per_sec'] / r['events_per_sec'])} |")
    w("")
    lat = ff["latency"]
    srv = ff["server"]
    cpu = srv.get("cpu_secs")
    if cpu:
        us = cpu / ff["acked"] * 1e6
        w(f"Server CPU per event: **{us:.1f} µs**, so with 2 cores to itself the server could acknowledge at most "
          f"≈ {2e6 / us:,.0f} events/s; 600,000 events/s needs ≤ 3.3 µs per event.")
        w("")
    other = ff.get("other_cpu_secs")
    if other and other / ff["wall_secs"] > 0.2:
        w(f"**Not a clean measurement:** other processes on the machine used {other / ff['wall_secs']:.2f} of the 2 "
          "cores during the Footfall ingest run (figures from `/proc/stat`).")
        w("")
    w(f"Footfall: request latency p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms, max {lat['max_ms']} ms "
      f"({lat['requests']} requests); server peak RSS {mib(srv.get('peak_rss_bytes'))} "
      f"({mib(srv.get('peak_rss_after_flush_bytes'))} after the final flush); server CPU {srv.get('cpu_secs')} s "
      f"over {ff['wall_secs']} s; load generator {ff.get('client_cpu_secs')} s; other processes "
      f"{ff.get('other_cpu_secs')} s; `count(*)` = acknowledged: {ff['count_ok']}; 429 answers: "
      f"{ff['throttled_429']}. The peers' loads are bulk loads of a file with no per-request durability, "
      "so they bound what a bulk path could do rather than compete with acknowledged HTTP ingest.")
    w("")
    if "footfall_beacons" in ing:
        b = ing["footfall_beacons"]
        w(f"**Beacons** (`POST /api/event`, one event per request, {b['settings']['connections']} connections, "
          f"{b['settings']['duration_secs']} s): **{fmt_int(b['requests_per_sec'])} requests/s**, latency p50 "
          f"{b['latency']['p50_ms']} ms, p99 {b['latency']['p99_ms']} ms; server peak RSS "
          f"{mib(b['server'].get('peak_rss_bytes'))}; server CPU {b['server'].get('cpu_secs')} s, load generator "
          f"{b.get('client_cpu_secs')} s, other processes {b.get('other_cpu_secs')} s"
          f"{' (**not clean**: %.2f cores used by others)' % (b['other_cpu_secs'] / b['wall_secs']) if (b.get('other_cpu_secs') or 0) / b['wall_secs'] > 0.2 else ''}.")
        if b.get("acked") and b["server"].get("cpu_secs"):
            w(f"Server CPU per beacon: {b['server']['cpu_secs'] / b['acked'] * 1e6:.1f} µs; load generator "
              f"{(b.get('client_cpu_secs') or 0) / b['acked'] * 1e6:.1f} µs. Each connection sends its next beacon "
              "once the answer is in, through a plain HTTP/1.1 client (one write and one read per request, as "
              "`wrk` does), so the load generator leaves the server most of the two cores.")
        w("")

    w("## Storage")
    w("")
    w("Bytes on disk per stored event; the same rows in each (Footfall's stored columns), except the two "
      "*raw* rows, which hold the NDJSON fields as loaded (URL, IP and user-agent included).")
    w("")
    w("| system | bytes | bytes/event | Footfall / peer (below 1: Footfall smaller) |")
    w("|---|---|---|---|")
    f_st = st["footfall"]
    w(f"| Footfall, Parquet + session index ({f_st['files']} files) | {mib(f_st['bytes'])} | "
      f"**{f_st['bytes_per_event']}** (Parquet alone {f_st['parquet_bytes_per_event']}) | |")
    for key, label in (("duckdb", "DuckDB table, same rows, ordered by project, session, time"),
                       ("chdb", "chDB MergeTree, same rows, ORDER BY project, session, time, after OPTIMIZE FINAL"),
                       ("postgres", "PostgreSQL table + indexes"),
                       ("duckdb_raw", "DuckDB table, raw NDJSON fields"),
                       ("chdb_raw", "chDB MergeTree, raw NDJSON fields")):
        if key in st:
            r = st[key]
            w(f"| {label} | {mib(r['bytes'])} | {r['bytes_per_event']} | "
              f"{fmt_ratio(f_st['bytes_per_event'] / r['bytes_per_event'])} |")
    pv = st.get("footfall_pageviews_only")
    if pv:
        w("")
        w(f"**Per stored pageview**: the pageviews alone ({d['pageviews']:,}) ingested into a fresh Footfall take "
          f"**{pv['bytes_per_event_parquet']} B/pageview** in Parquet, {pv['bytes_per_event_with_index']} with the "
          f"session index ({pv['parquet_files']} files).")
    w("")

    w("## Queries")
    w("")
    w(f"Project `{qs['project']}` (the largest), all {d['days']} days. Footfall through `POST /api/v1/sql` "
      "(HTTP and CSV encoding included), the others in-process (DuckDB, chDB) or over a local socket "
      "(PostgreSQL). Every answer is compared with DuckDB-on-Parquet's before its time is reported "
      "(same rows in the same order, floats within 1e-6, p75 within 1e-3); **MISMATCH** or **error** replaces "
      "the time otherwise.")
    w("")
    w(f"### Hot: median of {qs['runs']} runs after a warm-up (ratio Footfall / peer: below 1 = Footfall faster)")
    w("")
    w("Each system first answers the whole query set once (a warm-up pass), then each query once more "
      "before its timed runs.")
    w("")
    lines, gm_hot, present = query_rows(res, "hot")
    out.extend(lines)
    w("")
    w(f"![hot time ratios]({svg_name})")
    w("")
    w("### Cold: first run after a restart, data files evicted from the page cache")
    w("")
    w("Footfall and PostgreSQL are restarted; DuckDB and chDB run in a fresh process. The files each reads are "
      "evicted with `posix_fadvise(DONTNEED)` (dropping all caches needs privileges this machine does not give).")
    w("")
    lines, gm_cold, _ = query_rows(res, "cold")
    out.extend(lines)
    w("")
    sl = res["queries"].get("session_lookup", {}).get("systems", {}).get("footfall", {})
    w(f"Session lookup (`session_id = '{qs['session_id']}'`): the session's rows are in {qs['session_files']} of "
      f"{qs['total_files']} data files; Footfall's scan opened **{sl.get('files_scanned', '?')}** "
      "(`x-footfall-files-scanned`).")
    w("")
    mism = [(q, n, r.get("mismatch") or r.get("error", "")) for q, e in res["queries"].items()
            for n, r in e["systems"].items() if r.get("status") in ("MISMATCH", "error")]
    if mism:
        w("**Answers that did not match or failed:**")
        w("")
        for q, n, why in mism:
            w(f"- `{q}` on {LABELS.get(n, n)}: {str(why)[:300]}")
        w("")

    micro = res.get("micro")
    if micro:
        w("## Micro-benchmarks (criterion)")
        w("")
        w("`cargo bench -p footfall-benches` on the same machine before the run: the hot paths alone, on "
          "generated traffic (`benches/benches/`).")
        w("")
        w("| benchmark | median per iteration | per element | elements/s |")
        w("|---|---|---|---|")
        for b in micro:
            per = fmt_ns(b["ns_per_element"]) if b.get("ns_per_element") else "–"
            rate = fmt_int(b.get("elements_per_sec"))
            w(f"| `{b['group']}/{b['name']}` | {fmt_ns(b['median_ns'])} | {per} | {rate} |")
        w("")
    w("## Against the goals")
    w("")
    w("| goal | measured | status |")
    w("|---|---|---|")
    e_s = ff["events_per_sec"]
    w(f"| ingest ≥ 600,000 events/s, durable | {fmt_int(e_s)} events/s | "
      f"{'met' if e_s >= 600000 else f'not met: {e_s / 600000:.0%} of the goal'} |")
    if "footfall_beacons" in ing:
        b = ing["footfall_beacons"]["requests_per_sec"]
        w(f"| beacons ≥ 40,000 requests/s | {fmt_int(b)} requests/s | "
          f"{'met' if b >= 40000 else f'not met: {b / 40000:.0%} of the goal'} |")
    if pv:
        bpv = pv["bytes_per_event_parquet"]
        w(f"| ≤ 15 bytes per stored pageview | {bpv} B (Parquet), {pv['bytes_per_event_with_index']} B with the "
          f"session index | {'met' if bpv <= 15 else 'not met'} (Parquet){'' if pv['bytes_per_event_with_index'] <= 15 else ', not with the index'} |")
    for peer, goal in (("duckdb-parquet", 1.0), ("chdb-parquet", 0.7)):
        g = gm_hot.get(peer)
        if g:
            w(f"| dashboard geomean ≤ {goal}× {LABELS[peer]} | {fmt_ratio(g)} | "
              f"{'met' if g <= goal else f'not met: Footfall {g / goal:.1f}× slower than the goal'} |")
    g = gm_hot.get("postgres")
    if g:
        w(f"| dashboard ≥ 50× faster than PostgreSQL | {1 / g:.1f}× faster | "
          f"{'met' if 1 / g >= 50 else 'not met'} |")
    fun = time_of(res["queries"].get("funnel", {"systems": {}}), "footfall", "hot")
    at_scale = funnel_at_scale()
    if ev < 100_000_000 and at_scale:
        # benches/funnel-at-scale.sh measures the funnel at the goal's size, where this suite's
        # NDJSON would not fit on the disk.
        f, st, pr = at_scale["funnel"], at_scale["stored"], at_scale["project"]
        secs = f["hot_median_seconds"]
        w(f"| funnel on 100 M events / 2 M visitors ≤ 3 s | {fmt_ms(fun)} ms here; **{secs * 1000:,.0f} ms** at "
          f"{st['events']:,} events / {st['visitors']:,} visitors (project `{pr['id']}`: {pr['events']:,} events, "
          f"{pr['visitors']:,} visitors; [benchmarks-funnel.md](benchmarks-funnel.md)) | "
          f"{'met' if secs <= at_scale['goal_seconds'] else 'not met'} |")
    else:
        w(f"| funnel on 100 M events / 2 M visitors ≤ 3 s | {fmt_ms(fun)} ms at {ev:,} events / "
          f"{d['visitors']:,} visitors | "
          f"{'measured at this size only' if ev < 100_000_000 else ('met' if fun and fun <= 3 else 'not met')} |")
    w(f"| session lookup touches only the files holding the session | {sl.get('files_scanned', '?')} opened, "
      f"{qs['session_files']} hold it | {'met' if str(sl.get('files_scanned')) == str(qs['session_files']) else 'not met'} |")
    w("")
    if notes:
        out.append(notes.rstrip())
        w("")
    return "\n".join(out)


def main():
    a = argparse.ArgumentParser()
    a.add_argument("results")
    a.add_argument("--md", required=True)
    a.add_argument("--svg", required=True)
    a.add_argument("--criterion-dir", help="fold these criterion results into the results JSON first")
    o = a.parse_args()
    res = json.load(open(o.results))
    if o.criterion_dir:
        from run import criterion_results
        res["micro"] = criterion_results(o.criterion_dir)
        with open(o.results, "w") as f:
            json.dump(res, f, indent=1, default=str)
    notes_path = os.path.join(os.path.dirname(__file__), "notes.md")
    notes = open(notes_path).read() if os.path.exists(notes_path) else ""
    chart(res, o.svg)
    md_dir = os.path.dirname(os.path.abspath(o.md))
    svg_rel = os.path.relpath(os.path.abspath(o.svg), md_dir)
    repo = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    results_rel = os.path.relpath(os.path.abspath(o.results), repo)
    with open(o.md, "w") as f:
        doc = os.path.splitext(os.path.basename(o.md))[0]
        f.write(render(res, notes, svg_rel, results_rel, doc) + "\n")


if __name__ == "__main__":
    main()
