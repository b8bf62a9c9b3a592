"""Times queries over the brief's views (`pageviews`, `sessions`, `user_paths`) on a running
Footfall server, the tables users query by name. The dashboard set in queries.py reads `events`
directly, so that every system runs the same SQL; these show what the views themselves cost.

    python3 benches/compare/view_queries.py --url http://127.0.0.1:18080 --token TOKEN [--project site1]

Prints the median of --runs hot runs (after one warm-up) and a digest of each answer, so two
builds can be compared for speed and sameness. Standard library only.
"""

import argparse
import hashlib
import json
import statistics
import time
import urllib.request

QUERIES = [
    ("top_pages", "SELECT path, count(*) FROM pageviews WHERE project_id = '{p}' "
                  "GROUP BY path ORDER BY 2 DESC, 1 LIMIT 10"),
    ("pageview_summary", "SELECT count(*), avg(time_on_page_ms), sum(CASE WHEN exit_page THEN 1 ELSE 0 END), "
                         "avg(session_duration_ms) FROM pageviews WHERE project_id = '{p}'"),
    ("session_summary", "SELECT count(*), sum(pageviews), avg(duration_ms), "
                        "sum(CASE WHEN is_bounce THEN 1 ELSE 0 END) FROM sessions WHERE project_id = '{p}'"),
    ("entry_pages", "SELECT entry_page, count(*) FROM sessions WHERE project_id = '{p}' "
                    "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10"),
    ("path_transitions", "SELECT path, next_path, count(*) FROM user_paths WHERE project_id = '{p}' "
                         "AND next_path IS NOT NULL GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT 10"),
    ("all_projects", "SELECT project_id, count(*), avg(time_on_page_ms) FROM pageviews GROUP BY 1 ORDER BY 1"),
    # The same views from the data's last full day on, and over its last week ({day}, {week}: their
    # first instants),
    # as a dashboard asks for them; a time filter computes only the sessions in range.
    ("top_pages_day", "SELECT path, count(*) FROM pageviews WHERE project_id = '{p}' AND added_iso >= {day} "
                      "GROUP BY path ORDER BY 2 DESC, 1 LIMIT 10"),
    ("top_pages_week", "SELECT path, count(*) FROM pageviews WHERE project_id = '{p}' AND added_iso >= {week} "
                       "GROUP BY path ORDER BY 2 DESC, 1 LIMIT 10"),
    ("latest_pageviews", "SELECT * FROM pageviews WHERE project_id = '{p}' AND added_iso >= {day} "
                         "ORDER BY added_iso DESC, event_id DESC LIMIT 50"),
    ("session_summary_day", "SELECT count(*), sum(pageviews), avg(duration_ms), "
                            "sum(CASE WHEN is_bounce THEN 1 ELSE 0 END) FROM sessions WHERE project_id = '{p}' "
                            "AND started_at >= {day}"),
    ("path_transitions_day", "SELECT path, next_path, count(*) FROM user_paths WHERE project_id = '{p}' "
                             "AND entry_timestamp >= {day} AND next_path IS NOT NULL "
                             "GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT 10"),
    # The latest rows with no time filter: a recent range that holds enough of them is computed.
    ("latest_pageviews_any_time", "SELECT * FROM pageviews WHERE project_id = '{p}' "
                                  "ORDER BY added_iso DESC, event_id DESC LIMIT 50"),
    ("latest_sessions_any_time", "SELECT * FROM sessions WHERE project_id = '{p}' "
                                 "ORDER BY started_at DESC, session_id LIMIT 20"),
    ("latest_pageviews_of_path", "SELECT page_id, added_iso, time_on_page_ms FROM pageviews "
                                 "WHERE project_id = '{p}' AND path = '/careers' "
                                 "ORDER BY added_iso DESC, event_id DESC LIMIT 20"),
]


def run(url, token, sql):
    req = urllib.request.Request(url + "/api/v1/sql", data=json.dumps({"sql": sql}).encode(), method="POST",
                                 headers={"Authorization": f"Bearer {token}", "content-type": "application/json",
                                          "accept": "text/csv"})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=600) as r:
        body = r.read()
    return time.perf_counter() - t0, body


def main():
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument("--url", required=True)
    a.add_argument("--token", required=True)
    a.add_argument("--project", default="site1")
    a.add_argument("--runs", type=int, default=5)
    a.add_argument("--only", nargs="*", help="query names to run (default: all)")
    o = a.parse_args()
    _, body = run(o.url, o.token,
                  f"SELECT CAST(max(added_iso) AS BIGINT) AS last_ms FROM events WHERE project_id = '{o.project}'")
    last_ms = json.loads(body)[0]["last_ms"]
    # The last full day: the data's last day may have just begun.
    day_ms = (last_ms - 86_400_000) - (last_ms - 86_400_000) % 86_400_000
    stamp = "arrow_cast({}, 'Timestamp(Millisecond, Some(\"UTC\"))')".format
    day, week = stamp(day_ms), stamp(day_ms - 6 * 86_400_000)
    for name, template in QUERIES:
        if o.only and name not in o.only:
            continue
        sql = template.format(p=o.project, day=day, week=week)
        _, body = run(o.url, o.token, sql)
        times = [run(o.url, o.token, sql)[0] for _ in range(o.runs)]
        digest = hashlib.sha256(body).hexdigest()[:8]
        print(f"{name:18s} {statistics.median(times) * 1000:8.1f} ms  answer {digest}")


if __name__ == "__main__":
    main()
