"""The benchmark's queries, written once over Footfall's stored columns (spec §3) and rendered in
each system's dialect: DataFusion (Footfall's POST /api/v1/sql), DuckDB, ClickHouse (chDB) and
PostgreSQL. Only the few functions whose names differ are per dialect; the SQL is otherwise the
same text, so every system answers the same question.

Every query ends in an ORDER BY that breaks all ties, so with LIMIT the rows are the same set on
every system; group keys that may be NULL are coalesced to '' for the same reason.
"""

from dataclasses import dataclass, field

PROJECT = "site1"


@dataclass(frozen=True)
class Dialect:
    name: str
    # a timestamp column -> 'YYYY-MM-DD' text
    day: str
    # a timestamp column -> epoch milliseconds (integer)
    epoch_ms: str
    # integer division of two integers
    idiv: str
    # 75th percentile with linear interpolation (PostgreSQL's percentile_cont)
    p75: str
    # a timestamp plus one day
    plus_day: str


DIALECTS = {
    "datafusion": Dialect(
        "datafusion",
        day="to_char({0}, '%Y-%m-%d')",
        epoch_ms="CAST({0} AS BIGINT)",
        idiv="({0}) / ({1})",
        p75="percentile_cont(0.75) WITHIN GROUP (ORDER BY {0})",
        plus_day="{0} + INTERVAL '1 day'",
    ),
    "duckdb": Dialect(
        "duckdb",
        day="strftime({0}, '%Y-%m-%d')",
        epoch_ms="epoch_ms({0})",
        idiv="({0}) // ({1})",
        p75="percentile_cont(0.75) WITHIN GROUP (ORDER BY {0})",
        plus_day="{0} + INTERVAL '1 day'",
    ),
    "clickhouse": Dialect(
        "clickhouse",
        day="formatDateTime({0}, '%Y-%m-%d', 'UTC')",
        epoch_ms="toUnixTimestamp64Milli({0})",
        idiv="intDiv({0}, {1})",
        p75="quantileExactInclusive(0.75)({0})",
        plus_day="{0} + INTERVAL 1 DAY",
    ),
    "postgres": Dialect(
        "postgres",
        day="to_char({0} AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
        epoch_ms="CAST(extract(epoch FROM {0}) * 1000 AS BIGINT)",
        idiv="({0}) / ({1})",
        p75="percentile_cont(0.75) WITHIN GROUP (ORDER BY {0})",
        plus_day="{0} + INTERVAL '1 day'",
    ),
}


@dataclass(frozen=True)
class Query:
    name: str
    title: str
    group: str  # "dashboard" or "analysis"
    sql: str
    # stored columns the query needs; it is skipped (and says why) where they are absent
    needs: tuple = field(default_factory=tuple)
    # absolute tolerance for floats, on top of the relative 1e-9 every comparison allows
    tolerance: float = 1e-6
    # the same question in a dialect's own idiom (e.g. Footfall's funnel aggregate); its answer is
    # still checked against the other systems'
    dialect_sql: dict = field(default_factory=dict)

    def sql_for(self, dialect: str) -> str:
        return self.dialect_sql.get(dialect, self.sql)


# {T}: the events table or scan. {PV}: human pageviews of the project, as a derived table.
PAGEVIEWS = "(SELECT * FROM {T} WHERE project_id = '" + PROJECT + "' AND event_type = 'pageview'{HUMAN})"
# Where `is_bot` is not stored (a Footfall build before enrichment) the bot filter is left out.
HUMAN = " AND coalesce(is_bot, false) = false"

QUERIES = [
    Query(
        "visitors_by_day", "visitors and pageviews per day", "dashboard",
        "SELECT {day(added_iso)} AS day, count(DISTINCT visitor_id) AS visitors, count(*) AS pageviews "
        "FROM {PV} pv GROUP BY {day(added_iso)} ORDER BY day",
    ),
    Query(
        "top_pages", "top pages", "dashboard",
        "SELECT path, count(*) AS pageviews, count(DISTINCT visitor_id) AS visitors "
        "FROM {PV} pv GROUP BY path ORDER BY pageviews DESC, path LIMIT 50",
    ),
    Query(
        "entry_pages", "entry pages", "dashboard",
        "SELECT path, count(*) AS sessions FROM ("
        "SELECT path, row_number() OVER (PARTITION BY session_id ORDER BY added_iso, event_id) AS rn FROM {PV} pv"
        ") t WHERE rn = 1 GROUP BY path ORDER BY sessions DESC, path LIMIT 50",
    ),
    Query(
        "exit_pages", "exit pages", "dashboard",
        "SELECT path, count(*) AS sessions FROM ("
        "SELECT path, row_number() OVER (PARTITION BY session_id ORDER BY added_iso DESC, event_id DESC) AS rn "
        "FROM {PV} pv) t WHERE rn = 1 GROUP BY path ORDER BY sessions DESC, path LIMIT 50",
    ),
    Query(
        "top_referrers", "top referrers", "dashboard",
        "SELECT referrer_domain, count(DISTINCT visitor_id) AS visitors, count(*) AS pageviews FROM {PV} pv "
        "WHERE referrer_domain IS NOT NULL AND referrer_domain <> hostname "
        "GROUP BY referrer_domain ORDER BY visitors DESC, referrer_domain LIMIT 30",
    ),
    Query(
        "utm_sources", "top UTM sources and media", "dashboard",
        "SELECT utm_source AS source, coalesce(utm_medium, '') AS medium, count(DISTINCT session_id) AS sessions "
        "FROM {PV} pv WHERE utm_source IS NOT NULL "
        "GROUP BY utm_source, coalesce(utm_medium, '') ORDER BY sessions DESC, source, medium LIMIT 30",
    ),
    Query(
        "countries", "countries", "dashboard",
        "SELECT coalesce(country_code, '') AS country, count(DISTINCT visitor_id) AS visitors FROM {PV} pv "
        "GROUP BY coalesce(country_code, '') ORDER BY visitors DESC, country LIMIT 50",
        needs=("country_code",),
    ),
    Query(
        "devices_browsers", "devices and browsers", "dashboard",
        "SELECT coalesce(device_type, '') AS device, coalesce(browser_name, '') AS browser, "
        "count(DISTINCT visitor_id) AS visitors FROM {PV} pv "
        "GROUP BY coalesce(device_type, ''), coalesce(browser_name, '') ORDER BY visitors DESC, device, browser "
        "LIMIT 50",
        needs=("device_type", "browser_name"),
    ),
    Query(
        "bounce_rate", "bounce rate (single-pageview sessions)", "dashboard",
        "SELECT count(*) AS sessions, sum(CASE WHEN n = 1 THEN 1 ELSE 0 END) AS bounces FROM ("
        "SELECT session_id, count(*) AS n FROM {PV} pv GROUP BY session_id) s",
    ),
    Query(
        "visit_duration", "visit duration (first to last event of a session)", "dashboard",
        "SELECT count(*) AS sessions, sum(last_ms - first_ms) AS total_ms FROM ("
        "SELECT session_id, min({epoch_ms(added_iso)}) AS first_ms, max({epoch_ms(added_iso)}) AS last_ms "
        "FROM {T} WHERE project_id = '" + PROJECT + "'{HUMAN} GROUP BY session_id) s",
    ),
    Query(
        "web_vitals", "p75 LCP, INP and CLS by path", "dashboard",
        "SELECT path, count(*) AS samples, {p75(largest_contentful_paint_ms)} AS lcp_p75, "
        "{p75(interaction_to_next_paint_ms)} AS inp_p75, {p75(cumulative_layout_shift)} AS cls_p75 "
        "FROM {T} WHERE project_id = '" + PROJECT + "' AND event_type = 'vitals' "
        "GROUP BY path ORDER BY samples DESC, path LIMIT 20",
        needs=("largest_contentful_paint_ms", "interaction_to_next_paint_ms", "cumulative_layout_shift"),
        tolerance=1e-3,
    ),
    Query(
        "errors", "JavaScript errors by fingerprint", "dashboard",
        "SELECT error_fingerprint, min(error_message) AS message, count(*) AS occurrences, "
        "count(DISTINCT session_id) AS sessions FROM {T} "
        "WHERE project_id = '" + PROJECT + "' AND event_type = 'error' "
        "GROUP BY error_fingerprint ORDER BY occurrences DESC, error_fingerprint LIMIT 20",
        needs=("error_fingerprint", "error_message"),
    ),
    Query(
        "funnel", "3-step funnel within 1 day per visitor (/pricing → /signup → signup event)", "analysis",
        "WITH s1 AS (SELECT visitor_id, min(added_iso) AS t1 FROM {PV} pv WHERE path = '/pricing' "
        "GROUP BY visitor_id), "
        "s2 AS (SELECT s1.visitor_id, min(s1.t1) AS t1, min(e.added_iso) AS t2 FROM s1 JOIN {PV} e "
        "ON e.visitor_id = s1.visitor_id WHERE e.path = '/signup' AND e.added_iso > s1.t1 "
        "AND e.added_iso <= {plus_day(s1.t1)} GROUP BY s1.visitor_id), "
        "s3 AS (SELECT s2.visitor_id FROM s2 JOIN {T} e ON e.visitor_id = s2.visitor_id "
        "WHERE e.project_id = '" + PROJECT + "' AND e.event_type = 'event' AND e.name = 'signup' "
        "AND e.added_iso > s2.t2 AND e.added_iso <= {plus_day(s2.t1)} GROUP BY s2.visitor_id) "
        "SELECT (SELECT count(*) FROM s1) AS step1, (SELECT count(*) FROM s2) AS step2, "
        "(SELECT count(*) FROM s3) AS step3",
        # Footfall: one pass with its funnel aggregate (sql/src/funnel.rs) over the rows of all
        # three steps, grouped by visitor, instead of a self-join per step.
        dialect_sql={"datafusion": (
            "SELECT count(*) FILTER (WHERE reached >= 1) AS step1, count(*) FILTER (WHERE reached >= 2) AS step2, "
            "count(*) FILTER (WHERE reached >= 3) AS step3 FROM ("
            "SELECT visitor_id, funnel_steps(86400000, added_iso, step = 1, step = 2, step = 3) AS reached FROM ("
            "SELECT visitor_id, added_iso, CASE WHEN path = '/pricing' THEN 1 ELSE 2 END AS step FROM {PV} pv "
            "WHERE path IN ('/pricing', '/signup') "
            "UNION ALL SELECT visitor_id, added_iso, 3 AS step FROM {T} "
            "WHERE project_id = '" + PROJECT + "' AND event_type = 'event' AND name = 'signup') AS steps "
            "GROUP BY visitor_id) AS per_visitor"
        )},
    ),
    Query(
        "retention", "weekly retention by first-visit week", "analysis",
        "WITH a AS (SELECT visitor_id, {idiv({epoch_ms(added_iso)} - {START_MS}, 604800000)} AS w FROM {PV} pv "
        "GROUP BY visitor_id, {idiv({epoch_ms(added_iso)} - {START_MS}, 604800000)}), "
        "f AS (SELECT visitor_id, min(w) AS cohort FROM a GROUP BY visitor_id) "
        "SELECT f.cohort AS cohort, a.w - f.cohort AS week, count(*) AS visitors "
        "FROM a JOIN f ON a.visitor_id = f.visitor_id GROUP BY f.cohort, a.w - f.cohort ORDER BY cohort, week",
    ),
    Query(
        "path_transitions", "top page-to-page transitions", "analysis",
        "SELECT path, next_path, count(*) AS transitions FROM ("
        "SELECT path, lead(path) OVER (PARTITION BY session_id ORDER BY added_iso, event_id) AS next_path "
        "FROM {PV} pv) t WHERE next_path IS NOT NULL GROUP BY path, next_path "
        "ORDER BY transitions DESC, path, next_path LIMIT 30",
    ),
    Query(
        "session_lookup", "one session's events by session_id, across all days", "analysis",
        "SELECT event_id, event_type, {epoch_ms(added_iso)} AS ts, path FROM {T} "
        "WHERE session_id = '{SESSION_ID}' ORDER BY added_iso, event_id",
    ),
]

# Picks the session the lookup reads: the longest of the project (deterministic tie-break).
PICK_SESSION = (
    "SELECT session_id FROM {T} WHERE project_id = '" + PROJECT + "' GROUP BY session_id "
    "ORDER BY count(*) DESC, session_id LIMIT 1"
)


def render(query_sql: str, dialect: str, table: str, start_ms: int, session_id: str = "", bots: bool = True) -> str:
    """Expands the macros ({day(x)}, {epoch_ms(x)}, {idiv(a, b)}, {p75(x)}, {plus_day(x)}) innermost
    first, then the table placeholders."""
    d = DIALECTS[dialect]
    sql = query_sql.replace("{PV}", PAGEVIEWS).replace("{HUMAN}", HUMAN if bots else "")
    sql = sql.replace("{START_MS}", str(start_ms))
    sql = sql.replace("{SESSION_ID}", session_id.replace("'", "''"))
    macros = {"day": d.day, "epoch_ms": d.epoch_ms, "idiv": d.idiv, "p75": d.p75, "plus_day": d.plus_day}
    while True:
        expanded = _expand_one(sql, macros)
        if expanded == sql:
            break
        sql = expanded
    return sql.replace("{T}", table)


def _expand_one(sql: str, macros: dict) -> str:
    """Expands the first macro call whose arguments hold no further macro."""
    best = None
    for name in macros:
        start = 0
        while True:
            i = sql.find("{" + name + "(", start)
            if i < 0:
                break
            j = i + len(name) + 2
            depth, k = 1, j
            while k < len(sql) and depth:
                if sql[k] == "(":
                    depth += 1
                elif sql[k] == ")":
                    depth -= 1
                k += 1
            inner = sql[j:k - 1]
            if not any("{" + m + "(" in inner for m in macros) and sql[k:k + 1] == "}":
                best = (i, k + 1, name, inner)
                break
            start = i + 1
        if best:
            break
    if not best:
        return sql
    i, end, name, inner = best
    args = _split_args(inner)
    return sql[:i] + macros[name].format(*args) + sql[end:]


def _split_args(text: str) -> list:
    args, depth, cur = [], 0, ""
    for ch in text:
        if ch == "," and depth == 0:
            args.append(cur.strip())
            cur = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        cur += ch
    args.append(cur.strip())
    return args
