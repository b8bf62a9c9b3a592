"""Loading the peers: (1) the generator's NDJSON into DuckDB and ClickHouse native tables, timed
(their ingest figure), and (2) the rows Footfall stored (its Parquet files) into DuckDB, MergeTree
and PostgreSQL tables, so every system queries identical rows (the query and storage figures).
"""

import os
import time

# The native NDJSON fields (spec §2) and their types: (name, duckdb type, clickhouse type).
# Objects (props, revenue, ...) are kept as JSON text, as a user loading the raw feed would.
WIRE_FIELDS = [
    ("project", "VARCHAR", "String"), ("type", "VARCHAR", "LowCardinality(String)"),
    ("timestamp", "BIGINT", "Int64"), ("url", "VARCHAR", "String"), ("referrer", "VARCHAR", "Nullable(String)"),
    ("title", "VARCHAR", "Nullable(String)"), ("session_id", "VARCHAR", "String"),
    ("page_id", "VARCHAR", "Nullable(String)"), ("ip", "VARCHAR", "String"), ("user_agent", "VARCHAR", "String"),
    ("name", "VARCHAR", "Nullable(String)"), ("props", "JSON", "Nullable(String)"),
    ("revenue", "JSON", "Nullable(String)"), ("interactive", "BOOLEAN", "Nullable(Bool)"),
    ("screen_width", "INTEGER", "Nullable(Int32)"), ("screen_height", "INTEGER", "Nullable(Int32)"),
    ("viewport_width", "INTEGER", "Nullable(Int32)"), ("viewport_height", "INTEGER", "Nullable(Int32)"),
    ("language", "VARCHAR", "Nullable(String)"), ("timezone", "VARCHAR", "Nullable(String)"),
    ("dimensions", "JSON", "Nullable(String)"),
    ("time_on_page_ms", "BIGINT", "Nullable(Int64)"), ("active_time_ms", "BIGINT", "Nullable(Int64)"),
    ("idle_time_ms", "BIGINT", "Nullable(Int64)"), ("scroll_percentage", "INTEGER", "Nullable(Int32)"),
    ("click_count", "INTEGER", "Nullable(Int32)"), ("rage_clicks", "INTEGER", "Nullable(Int32)"),
    ("copy_events", "INTEGER", "Nullable(Int32)"),
    ("dom_content_loaded_ms", "INTEGER", "Nullable(Int32)"), ("page_load_ms", "INTEGER", "Nullable(Int32)"),
    ("first_paint_ms", "INTEGER", "Nullable(Int32)"), ("first_contentful_paint_ms", "INTEGER", "Nullable(Int32)"),
    ("largest_contentful_paint_ms", "INTEGER", "Nullable(Int32)"),
    ("first_input_delay_ms", "INTEGER", "Nullable(Int32)"), ("cumulative_layout_shift", "DOUBLE", "Nullable(Float64)"),
    ("time_to_first_byte_ms", "INTEGER", "Nullable(Int32)"),
    ("interaction_to_next_paint_ms", "INTEGER", "Nullable(Int32)"), ("resource_count", "INTEGER", "Nullable(Int32)"),
    ("transfer_size_bytes", "BIGINT", "Nullable(Int64)"),
    ("interaction_type", "VARCHAR", "Nullable(String)"), ("element_selector", "VARCHAR", "Nullable(String)"),
    ("element_text", "VARCHAR", "Nullable(String)"), ("element_position", "JSON", "Nullable(String)"),
    ("error_type", "VARCHAR", "Nullable(String)"), ("error_message", "VARCHAR", "Nullable(String)"),
    ("error_stack", "VARCHAR", "Nullable(String)"), ("source_file", "VARCHAR", "Nullable(String)"),
    ("line_number", "INTEGER", "Nullable(Int32)"), ("column_number", "INTEGER", "Nullable(Int32)"),
    ("form_event", "VARCHAR", "Nullable(String)"), ("form_id", "VARCHAR", "Nullable(String)"),
    ("form_name", "VARCHAR", "Nullable(String)"), ("fields_total", "INTEGER", "Nullable(Int32)"),
    ("fields_interacted", "INTEGER", "Nullable(Int32)"), ("fields_completed", "INTEGER", "Nullable(Int32)"),
    ("time_to_first_field_ms", "INTEGER", "Nullable(Int32)"), ("time_to_submit_ms", "INTEGER", "Nullable(Int32)"),
    ("field_interactions", "JSON", "Nullable(String)"), ("error_messages", "JSON", "Nullable(String)"),
    ("search_query", "VARCHAR", "Nullable(String)"), ("search_location", "VARCHAR", "Nullable(String)"),
    ("results_count", "INTEGER", "Nullable(Int32)"), ("clicked_position", "INTEGER", "Nullable(Int32)"),
    ("clicked_url", "VARCHAR", "Nullable(String)"),
    ("experiment_id", "VARCHAR", "Nullable(String)"), ("variant_id", "VARCHAR", "Nullable(String)"),
]


def stored_schema(parquet_glob):
    """(name, duckdb type) of the columns Footfall stored, read from its Parquet files."""
    import duckdb
    con = duckdb.connect()
    rows = con.execute(f"DESCRIBE SELECT * FROM read_parquet('{parquet_glob}', hive_partitioning = false)").fetchall()
    con.close()
    return [(r[0], r[1]) for r in rows]


def duckdb_ingest_ndjson(work_dir, ndjson, events):
    """Loads the raw NDJSON into a DuckDB table; returns ingest and size figures."""
    import duckdb
    path = os.path.join(work_dir, "duckdb-raw.db")
    if os.path.exists(path):
        os.remove(path)
    con = duckdb.connect(path)
    cols = ", ".join(f"'{n}': '{t}'" for n, t, _ in WIRE_FIELDS)
    t0 = time.perf_counter()
    con.execute(f"CREATE TABLE raw AS SELECT * FROM read_json('{ndjson}', format = 'newline_delimited', "
                f"columns = {{{cols}}})")
    con.execute("CHECKPOINT")
    secs = time.perf_counter() - t0
    n = con.execute("SELECT count(*) FROM raw").fetchone()[0]
    con.close()
    size = os.path.getsize(path)
    return {"events": n, "secs": round(secs, 3), "events_per_sec": round(n / secs), "bytes": size,
            "bytes_per_event": round(size / max(n, 1), 2), "count_ok": n == events}


def duckdb_load_stored(work_dir, parquet_glob, events):
    """Footfall's stored rows into a DuckDB table, in the same (project, session, time) order."""
    import duckdb
    path = os.path.join(work_dir, "duckdb-native.db")
    if os.path.exists(path):
        os.remove(path)
    con = duckdb.connect(path)
    t0 = time.perf_counter()
    con.execute(f"CREATE TABLE events AS SELECT * FROM read_parquet('{parquet_glob}', hive_partitioning = false) "
                "ORDER BY project_id, session_id, added_iso, event_id")
    con.execute("CHECKPOINT")
    secs = time.perf_counter() - t0
    n = con.execute("SELECT count(*) FROM events").fetchone()[0]
    con.close()
    size = os.path.getsize(path)
    return {"events": n, "secs": round(secs, 3), "bytes": size, "bytes_per_event": round(size / max(n, 1), 2),
            "count_ok": n == events}


def chdb_ingest_ndjson(sess, ndjson, events):
    cols = ", ".join(f"`{n}` {c}" for n, _, c in WIRE_FIELDS)
    sess.query("CREATE DATABASE IF NOT EXISTS bench")
    sess.query("DROP TABLE IF EXISTS bench.raw")
    sess.query(f"CREATE TABLE bench.raw ({cols}) ENGINE = MergeTree ORDER BY (project, session_id, timestamp)")
    structure = cols
    t0 = time.perf_counter()
    sess.query(f"INSERT INTO bench.raw SELECT * FROM file('{ndjson}', JSONEachRow, '{structure}') SETTINGS "
               "input_format_json_read_objects_as_strings = 1, input_format_json_read_arrays_as_strings = 1, "
               "input_format_skip_unknown_fields = 1")
    secs = time.perf_counter() - t0
    return _chdb_size(sess, "raw", secs, events)


def chdb_load_stored(sess, parquet_glob, events):
    sess.query("CREATE DATABASE IF NOT EXISTS bench")
    sess.query("DROP TABLE IF EXISTS bench.events")
    t0 = time.perf_counter()
    sess.query("CREATE TABLE bench.events ENGINE = MergeTree ORDER BY (project_id, session_id, added_iso, event_id) "
               "SETTINGS allow_nullable_key = 1 "
               f"AS SELECT * FROM file('{parquet_glob}', Parquet)")
    sess.query("OPTIMIZE TABLE bench.events FINAL")
    secs = time.perf_counter() - t0
    return _chdb_size(sess, "events", secs, events)


def _chdb_size(sess, table, secs, events):
    row = sess.query(f"SELECT sum(rows), sum(bytes_on_disk) FROM system.parts WHERE database = 'bench' "
                     f"AND table = '{table}' AND active", "CSV").bytes().decode().strip().split(",")
    n, size = int(row[0]), int(row[1])
    return {"events": n, "secs": round(secs, 3), "events_per_sec": round(n / secs), "bytes": size,
            "bytes_per_event": round(size / max(n, 1), 2), "count_ok": n == events}


PG_TYPES = {
    "VARCHAR": "text", "BIGINT": "bigint", "UBIGINT": "bigint", "INTEGER": "integer", "DOUBLE": "double precision",
    "BOOLEAN": "boolean", "TIMESTAMP WITH TIME ZONE": "timestamptz", "TIMESTAMP_MS": "timestamp",
    "DECIMAL(18,4)": "numeric(18,4)", "VARCHAR[]": "text[]", "SMALLINT": "smallint", "FLOAT": "real",
}

# The product brief's indexes on pageviews (Core Web Vitals, errors, sessions, paths), on the one
# events table that holds every stored column here; each is created only if its columns exist.
PG_INDEXES = [
    ("idx_pageviews_lcp_timestamp", ["largest_contentful_paint_ms", "added_iso"]),
    ("idx_pageviews_performance_path", ["path", "largest_contentful_paint_ms"]),
    ("idx_events_project_time", ["project_id", "added_iso"]),
    ("idx_events_project_type_time", ["project_id", "event_type", "added_iso"]),
    ("idx_user_paths_session", ["session_id", "added_iso"]),
    ("idx_events_visitor", ["visitor_id", "added_iso"]),
    ("idx_errors_fingerprint", ["error_fingerprint"]),
    ("idx_interactions_page_id", ["page_id"]),
]


def postgres_load_stored(pg, work_dir, parquet_glob, schema, events):
    """COPY Footfall's stored rows into PostgreSQL, then build the indexes and ANALYZE."""
    import duckdb
    csv_path = os.path.join(work_dir, "stored-rows.csv")
    select = []
    for name, typ in schema:
        if typ.endswith("[]"):
            # PostgreSQL array literal: {"a","b"} with quotes and backslashes escaped.
            select.append(f"CASE WHEN {name} IS NULL THEN NULL ELSE '{{' || array_to_string(list_transform({name}, "
                          f"lambda x: '\"' || replace(replace(x, '\\', '\\\\'), '\"', '\\\"') || '\"'), ',') || '}}' END "
                          f"AS {name}")
        else:
            select.append(name)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"COPY (SELECT {', '.join(select)} FROM read_parquet('{parquet_glob}', hive_partitioning = false)) "
                f"TO '{csv_path}' (HEADER false)")
    con.close()
    cols = ", ".join(f"{n} {PG_TYPES.get(t, 'text')}" for n, t in schema)
    pg.con.execute("DROP TABLE IF EXISTS events")
    pg.con.execute(f"CREATE TABLE events ({cols})")
    t0 = time.perf_counter()
    with pg.con.cursor() as cur:
        with cur.copy("COPY events FROM STDIN (FORMAT csv)") as copy:
            with open(csv_path, "rb") as f:
                while chunk := f.read(1 << 20):
                    copy.write(chunk)
    copy_secs = time.perf_counter() - t0
    names = {n for n, _ in schema}
    t1 = time.perf_counter()
    made = []
    for idx, idx_cols in PG_INDEXES:
        if all(c in names for c in idx_cols):
            pg.con.execute(f"CREATE INDEX {idx} ON events ({', '.join(idx_cols)})")
            made.append(idx)
    pg.con.execute("VACUUM ANALYZE events")
    index_secs = time.perf_counter() - t1
    n = pg.con.execute("SELECT count(*) FROM events").fetchone()[0]
    total = pg.con.execute("SELECT pg_total_relation_size('events')").fetchone()[0]
    table = pg.con.execute("SELECT pg_table_size('events')").fetchone()[0]
    os.remove(csv_path)
    return {"events": n, "copy_secs": round(copy_secs, 3), "index_secs": round(index_secs, 3),
            "events_per_sec": round(n / (copy_secs + index_secs)), "bytes": total, "table_bytes": table,
            "bytes_per_event": round(total / max(n, 1), 2), "indexes": made, "count_ok": n == events}
