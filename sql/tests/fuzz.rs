//! SQL text from an attacker, through the guard, the planner and execution: generated deep and
//! wide expressions, nested subqueries, set operations and random token soup, plus the corpus of
//! statements that once did harm (`tests/fuzz/corpus.sql`). Every statement must come back as rows
//! or as a refusal — never a panic (`QueryError::Panicked`), never a stack overflow (which would
//! abort this test process), never an internal error.
//!
//! Case counts follow `PROPTEST_CASES` (CI runs the default budget, about a minute; e.g.
//! `PROPTEST_CASES=20000 cargo test -p footfall-sql --test fuzz` for a long run). Failures are
//! kept in `proptest-regressions/` and re-run first every time; a crash found becomes a line of
//! the corpus.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use footfall_engine::storage::StorageLocation;
use footfall_engine::{Engine, EngineConfig, Event, EventType, ProjectId};
use footfall_sql::{QueryConfig, QueryError, QueryScope, QueryService};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// 2025-11-24T10:00:00Z
const DAY1: i64 = 1_763_978_400_000;

fn event(project: &str, ts: i64, session: &str, path: &str) -> Event {
    let mut e = Event::new(ProjectId::new(project).expect("valid project"), ts, EventType::Pageview, "pageview");
    e.session_id = Some(session.into());
    e.visitor_id = Some(format!("v-{session}"));
    e.hostname = Some(format!("{project}.example"));
    e.path = Some(path.into());
    e
}

struct Fixture {
    runtime: tokio::runtime::Runtime,
    service: QueryService,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
        let dir = tempfile::tempdir().expect("tempdir");
        let service = runtime.block_on(async {
            let store = StorageLocation::Local(dir.path().join("storage")).open().expect("store");
            let engine =
                Arc::new(Engine::open(EngineConfig::new(dir.path().join("wal")), store).await.expect("engine"));
            let events: Vec<Event> = (0..40)
                .map(|i| {
                    event(
                        if i % 3 == 0 { "b" } else { "a" },
                        DAY1 + i * 60_000,
                        &format!("s{}", i / 4),
                        &format!("/p{}", i % 5),
                    )
                })
                .collect();
            engine.append(events[..20].to_vec()).await.expect("append");
            engine.flush().await.expect("flush");
            engine.append(events[20..].to_vec()).await.expect("append");
            QueryService::new(engine, QueryConfig { max_rows: 10_000, ..Default::default() }).expect("service")
        });
        Fixture { runtime, service, _dir: dir }
    })
}

/// How many statements ran to rows, per property: a generator that only produced refusals would
/// test nothing past the parser.
static ANSWERED: AtomicUsize = AtomicUsize::new(0);
static TRIED: AtomicUsize = AtomicUsize::new(0);

/// Runs `sql` and fails on anything but rows or a refusal.
fn survives(sql: &str) -> Result<(), String> {
    let f = fixture();
    let scope = QueryScope::Project(ProjectId::new("a").expect("id"));
    TRIED.fetch_add(1, Ordering::Relaxed);
    match f.runtime.block_on(f.service.run(sql, &scope)) {
        Ok(_) => {
            ANSWERED.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        Err(QueryError::Panicked(fingerprint)) => Err(format!("panicked ({fingerprint}): {sql:.300}")),
        Err(QueryError::Internal(message)) => Err(format!("internal error {message}: {sql:.300}")),
        Err(_) => Ok(()),
    }
}

/// Three typed grammars (integer, text, boolean), each nesting into the others, so most statements are well typed and
/// get past the planner into execution (where the interesting failures are).
fn int_leaf() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i32>().prop_map(|n| n.to_string()),
        (0i64..10).prop_map(|n| n.to_string()),
        Just("9223372036854775807".to_string()),
        Just("length(path)".to_string()),
        Just("CAST(added_iso AS BIGINT)".to_string()),
        Just("NULL".to_string()),
    ]
}

fn str_leaf() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z%_/ ']{0,8}".prop_map(|s| format!("'{}'", s.replace('\'', "''"))),
        proptest::sample::select(&["path", "visitor_id", "session_id", "event_type", "name", "project_id"][..])
            .prop_map(str::to_string),
        Just("NULL".to_string()),
    ]
}

/// An (integer, text, boolean) triple of expressions of the same depth.
fn typed() -> impl Strategy<Value = (String, String, String)> {
    let leaves = (int_leaf(), str_leaf(), any::<bool>().prop_map(|b| b.to_string()));
    leaves.prop_recursive(12, 256, 4, |inner| {
        let parts = (inner.clone(), inner.clone(), inner.clone());
        (parts, 0usize..12).prop_map(|(((i1, s1, b1), (i2, s2, b2), (i3, s3, _)), pick)| {
            let int = match pick {
                0 => format!("({i1} + {i2})"),
                1 => format!("({i1} * {i2})"),
                2 => format!("({i1} / {i2})"),
                3 => format!("({i1} % {i2})"),
                4 => format!("abs({i1})"),
                5 => format!("length({s1})"),
                6 => format!("CASE WHEN {b1} THEN {i1} ELSE {i2} END"),
                7 => format!("coalesce({i1}, {i2}, {i3})"),
                8 => format!("(SELECT count(*) FROM events WHERE {b1})"),
                9 => format!("greatest({i1}, {i2})"),
                10 => format!("CAST({s1} AS BIGINT)"),
                _ => format!("strpos({s1}, {s2})"),
            };
            let text = match pick {
                0 => format!("({s1} || {s2})"),
                1 => format!("lower({s1})"),
                2 => format!("concat({s1}, {i1}, {s2})"),
                3 => format!("substr({s1}, {i1}, {i2})"),
                4 => format!("replace({s1}, {s2}, {s3})"),
                5 => format!("repeat({s1}, {i1})"),
                6 => format!("lpad({s1}, {i1}, {s2})"),
                7 => format!("CASE WHEN {b1} THEN {s1} ELSE {s2} END"),
                8 => format!("CAST({i1} AS VARCHAR)"),
                9 => format!("regexp_replace({s1}, {s2}, {s3})"),
                10 => format!("to_char(added_iso, {s1})"),
                _ => format!("(SELECT max(path) FROM pageviews WHERE {b1})"),
            };
            let boolean = match pick {
                0 => format!("({i1} < {i2})"),
                1 => format!("({s1} = {s2})"),
                2 => format!("({s1} LIKE {s2})"),
                3 => format!("({b1} AND {b2})"),
                4 => format!("NOT ({b1})"),
                5 => format!("{i1} IN ({i2}, {i3})"),
                6 => format!("EXISTS (SELECT 1 FROM pageviews WHERE {b1})"),
                7 => format!("({s1} IS NULL)"),
                8 => format!("({b1} OR {b2})"),
                9 => format!("{s1} IN (SELECT path FROM sessions)"),
                10 => format!("({s1} ~ {s2})"),
                _ => format!("({i1} BETWEEN {i2} AND {i3})"),
            };
            (int, text, boolean)
        })
    })
}

/// An integer, text or boolean expression.
fn expression() -> impl Strategy<Value = String> {
    (typed(), 0usize..3).prop_map(|((i, s, b), which)| vec![i, s, b].swap_remove(which))
}

fn condition() -> impl Strategy<Value = String> {
    typed().prop_map(|(_, _, b)| b)
}

const OPERATORS: &[&str] =
    &["+", "-", "*", "/", "%", "AND", "OR", "=", "<>", "<", ">=", "||", "LIKE", "IS DISTINCT FROM"];

fn statement() -> impl Strategy<Value = String> {
    let table = proptest::sample::select(
        &["events", "pageviews", "sessions", "errors", "user_paths", "(SELECT * FROM events) t"][..],
    );
    prop_oneof![
        (expression(), table.clone(), condition())
            .prop_map(|(e, t, w)| format!("SELECT {e} AS x FROM {t} WHERE {w} LIMIT 20")),
        (expression(), table.clone())
            .prop_map(|(e, t)| format!("SELECT {e} AS g, count(*) FROM {t} GROUP BY 1 ORDER BY 2 DESC LIMIT 5")),
        expression().prop_map(|e| format!("SELECT {e}")),
        (expression(), 1usize..40).prop_map(|(e, n)| vec![format!("SELECT {e} AS x"); n].join(" UNION ALL ")),
        (expression(), 1usize..30).prop_map(|(e, n)| {
            let mut sql = format!("SELECT {e} AS x");
            for _ in 0..n {
                sql = format!("SELECT x FROM ({sql}) s");
            }
            sql
        }),
    ]
}

/// Long, flat and deep shapes past every limit.
fn extreme() -> impl Strategy<Value = String> {
    (proptest::sample::select(OPERATORS), 50usize..60_000, 0usize..4).prop_map(|(op, n, shape)| match shape {
        0 => format!("SELECT {}", vec!["1"; n].join(&format!(" {op} "))),
        1 => format!("SELECT {}1{}", "abs(".repeat(n.min(20_000)), ")".repeat(n.min(20_000))),
        2 => format!("SELECT 1 WHERE 1 IN ({})", vec!["2"; n].join(",")),
        _ => format!("SELECT {}", vec!["-"; n.min(60_000)].concat() + "1"),
    })
}

const TOKENS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "(",
    ")",
    ",",
    "events",
    "pageviews",
    "1",
    "'x'",
    "+",
    "*",
    "AND",
    "JOIN",
    "ON",
    "UNION",
    "ALL",
    "GROUP",
    "BY",
    "ORDER",
    "LIMIT",
    "WITH",
    "AS",
    "x",
    "CASE",
    "WHEN",
    "THEN",
    "END",
    "NULL",
    "::",
    "[",
    "]",
    "OVER",
    "PARTITION",
    "EXPLAIN",
    "COPY",
    "INSERT",
    "CREATE",
    "DROP",
    ";",
    "--",
    "/*",
    "*/",
    "\u{0}",
    "é",
    "\"",
];

fn token_soup() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(TOKENS), 0..80).prop_map(|t| t.join(" "))
}

fn run_property(name: &str, cases: u32, strategy: impl Strategy<Value = String>) {
    let mut config = Config::with_cases(cases);
    config.failure_persistence = Some(Box::new(proptest::test_runner::FileFailurePersistence::Direct(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/proptest-regressions/tests/fuzz.txt"
    ))));
    // PROPTEST_CASES, when set, wins over the budget here.
    if let Some(n) = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()) {
        config.cases = n;
    }
    let mut runner = TestRunner::new(config);
    if let Err(e) = runner.run(&strategy, |sql| survives(&sql).map_err(TestCaseError::fail)) {
        panic!("{name}: {e}");
    }
}

/// The properties share the counters, so they take turns.
static SERIAL: Mutex<()> = Mutex::new(());

#[test]
fn generated_statements() {
    let _turn = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let (answered, tried) = (ANSWERED.load(Ordering::Relaxed), TRIED.load(Ordering::Relaxed));
    run_property("generated_statements", 400, statement());
    let answered = ANSWERED.load(Ordering::Relaxed) - answered;
    let tried = TRIED.load(Ordering::Relaxed) - tried;
    eprintln!("generated_statements: {answered} of {tried} answered with rows");
    assert!(answered * 5 >= tried, "only {answered} of {tried} generated statements ran: the generator tests little");
}

#[test]
fn extreme_shapes() {
    let _turn = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    run_property("extreme_shapes", 60, extreme());
}

#[test]
fn token_soup_statements() {
    let _turn = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    run_property("token_soup", 1_000, token_soup());
}

#[test]
fn the_corpus() {
    let corpus = include_str!("fuzz/corpus.sql");
    let mut failures = Vec::new();
    let statements = corpus
        .split("\n;;\n")
        .map(|s| s.lines().filter(|l| !l.trim_start().starts_with("--")).collect::<Vec<_>>().join("\n"));
    for sql in statements.filter(|s| !s.trim().is_empty()) {
        if let Err(e) = survives(&sql) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
