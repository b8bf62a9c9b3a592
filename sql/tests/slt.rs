//! Runs the `.slt` files in `tests/slt/` against a real engine: a fixed data set, half committed to
//! Parquet files and half still buffered, so every query exercises both halves of a snapshot.
//!
//! A query prefixed with `/* project=<id> */` runs with a query key's scope for that project;
//! anything else runs as the admin.

use std::path::Path;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use async_trait::async_trait;
use footfall_engine::storage::StorageLocation;
use footfall_engine::{Engine, EngineConfig, Event, EventType, ProjectId};
use footfall_sql::{QueryConfig, QueryError, QueryScope, QueryService};
use sqllogictest::{DBOutput, DefaultColumnType};

/// 2025-11-24T10:00:00Z
const DAY1: i64 = 1_763_978_400_000;
const DAY2: i64 = DAY1 + 86_400_000;

fn event(project: &str, ts: i64, session: &str, visitor: &str, path: &str) -> Event {
    let mut e = Event::new(ProjectId::new(project).expect("valid project"), ts, EventType::Pageview, "pageview");
    e.session_id = Some(session.into());
    e.visitor_id = Some(visitor.into());
    e.hostname = Some(format!("{project}.example"));
    e.path = Some(path.into());
    e
}

fn custom(
    project: &str,
    ts: i64,
    session: &str,
    visitor: &str,
    name: &str,
    props: &str,
    revenue: Option<i128>,
) -> Event {
    Event {
        event_type: EventType::Custom,
        name: name.into(),
        props: Some(props.into()),
        revenue_amount: revenue,
        revenue_currency: revenue.map(|_| "EUR".to_string()),
        path: Some("/checkout".into()),
        ..event(project, ts, session, visitor, "/checkout")
    }
}

/// Site `a`: three sessions over two days; site `b`: one session. Committed first, then buffered.
fn committed_events() -> Vec<Event> {
    vec![
        event("a", DAY1, "s1", "v1", "/"),
        event("a", DAY1 + 60_000, "s1", "v1", "/pricing"),
        custom("a", DAY1 + 90_000, "s1", "v1", "signup", r#"{"plan":"pro"}"#, None),
        event("a", DAY1 + 3_600_000, "s2", "v2", "/"),
        event("b", DAY1, "t1", "w1", "/"),
    ]
}

fn buffered_events() -> Vec<Event> {
    vec![
        event("a", DAY2, "s3", "v1", "/"),
        event("a", DAY2 + 30_000, "s3", "v1", "/docs"),
        custom("a", DAY2 + 60_000, "s3", "v1", "purchase", r#"{"plan":"pro"}"#, Some(125_000)),
        event("b", DAY2, "t2", "w2", "/blog"),
    ]
}

struct FootfallDb {
    service: Arc<QueryService>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct DbError(String);

impl From<QueryError> for DbError {
    fn from(e: QueryError) -> Self {
        Self(e.to_string())
    }
}

fn render(batches: &[RecordBatch]) -> Result<Vec<Vec<String>>, DbError> {
    let options = FormatOptions::default().with_null("NULL");
    let mut rows = Vec::new();
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| DbError(e.to_string()))?;
        for row in 0..batch.num_rows() {
            rows.push(formatters.iter().map(|f| f.value(row).to_string()).collect());
        }
    }
    Ok(rows)
}

#[async_trait]
impl sqllogictest::AsyncDB for FootfallDb {
    type Error = DbError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, DbError> {
        let trimmed = sql.trim_start();
        let scope = match trimmed.strip_prefix("/* project=").and_then(|rest| rest.split_once(" */")) {
            Some((project, _)) => QueryScope::Project(ProjectId::new(project).map_err(|e| DbError(e.to_string()))?),
            None => QueryScope::AllProjects,
        };
        let output = self.service.run(sql, &scope).await?;
        let rows = render(&output.batches)?;
        let types = vec![DefaultColumnType::Any; output.schema.fields().len()];
        Ok(DBOutput::Rows { types, rows })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "footfall"
    }
}

async fn service(dir: &Path) -> Arc<QueryService> {
    let store = StorageLocation::Local(dir.join("storage")).open().expect("store");
    let engine = Arc::new(Engine::open(EngineConfig::new(dir.join("wal")), store).await.expect("engine"));
    engine.append(committed_events()).await.expect("append");
    engine.flush().await.expect("flush");
    engine.append(buffered_events()).await.expect("append");
    Arc::new(QueryService::new(engine, QueryConfig { max_rows: 100, ..Default::default() }).expect("service"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqllogictests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let service = service(dir.path()).await;
    let mut files: Vec<_> = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt"))
        .expect("slt folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .slt files found");
    for file in files {
        let service = service.clone();
        let mut runner = sqllogictest::Runner::new(move || {
            let service = service.clone();
            async move { Ok::<_, DbError>(FootfallDb { service }) }
        });
        if let Err(e) = runner.run_file_async(&file).await {
            panic!("{}:\n{e}", file.display());
        }
    }
}

/// A session lookup opens only the files whose session index holds the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_lookup_touches_only_files_holding_the_session() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = StorageLocation::Local(dir.path().join("storage")).open().expect("store");
    let engine = Arc::new(Engine::open(EngineConfig::new(dir.path().join("wal")), store).await.expect("engine"));
    for i in 0..20 {
        let session = format!("s-{i}");
        let events = (0..3).map(|j| event("a", DAY1 + i * 1000 + j, &session, "v", "/")).collect();
        engine.append(events).await.expect("append");
        engine.flush().await.expect("flush");
    }
    let service = QueryService::new(engine, QueryConfig::default()).expect("service");
    let scope = QueryScope::AllProjects;

    let all = service.run("SELECT count(*) FROM events", &scope).await.expect("query");
    assert_eq!(all.files_scanned, 20);
    let one = service.run("SELECT count(*) AS n FROM events WHERE session_id = 's-7'", &scope).await.expect("query");
    assert_eq!(render(&one.batches).expect("render"), vec![vec!["3".to_string()]]);
    assert_eq!(one.files_scanned, 1);
    let two =
        service.run("SELECT count(*) FROM events WHERE session_id IN ('s-3', 's-9')", &scope).await.expect("query");
    assert_eq!(render(&two.batches).expect("render"), vec![vec!["6".to_string()]]);
    assert_eq!(two.files_scanned, 2);
    let none = service.run("SELECT count(*) FROM events WHERE session_id = 'absent'", &scope).await.expect("query");
    assert_eq!(none.files_scanned, 0);
}
