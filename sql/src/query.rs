//! Running one user query: guard → scoped snapshot → per-query `SessionContext` with the `events`
//! table and its views → planning with DDL/DML/statements disabled → streamed execution under a
//! timeout, a shared memory pool, a row cap and a byte cap.
//!
//! Queries run on a runtime of their own (`QueryPool`): its threads have large stacks, so a deep
//! but allowed plan has room to recurse; a function call that keeps a thread busy cannot hold up
//! ingest or the timeout, which is awaited on the caller's runtime; and a panic in planning or
//! execution ends that query's task alone and is answered as an error.

use std::any::Any;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::catalog::view::ViewTable;
use datafusion::catalog::TableProvider;
use datafusion::common::tree_node::Transformed;
use datafusion::datasource::provider_as_source;
use datafusion::error::DataFusionError;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::SessionStateBuilder;
use datafusion::logical_expr::{LogicalPlan, TableScan, TableSource};
use datafusion::optimizer::OptimizerRule;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use footfall_engine::{Engine, ProjectId, Snapshot};
use futures::StreamExt;
use thiserror::Error;
use tokio::sync::OnceCell;

use crate::guard::{GuardError, SqlLimits};
use crate::provider::{EventsTable, ScanStats};
use crate::scoped_views::{scoping, ScopedSessions, ScopedView};

const STORE_URL: &str = "footfall://storage/";

#[derive(Debug, Error)]
pub enum QueryError {
    #[error(transparent)]
    Refused(#[from] GuardError),
    #[error("{0}")]
    Invalid(String),
    #[error("query exceeded its memory limit: {0}")]
    ResourcesExhausted(String),
    #[error("query did not finish within {0:?}")]
    Timeout(Duration),
    #[error("result has more than {0} rows; add a LIMIT or aggregate")]
    TooManyRows(usize),
    #[error("result is larger than {0} bytes (limit max_result_bytes); select fewer or shorter columns")]
    ResultTooLarge(usize),
    #[error("the query failed unexpectedly (fingerprint {0}); it was logged")]
    Panicked(String),
    #[error("internal error running the query: {0}")]
    Internal(String),
    /// Reading stored files failed (the bucket is down or unreachable, a local read failed): not
    /// the query's fault, and worth retrying.
    #[error("storage is unavailable: {0}")]
    Storage(String),
}

impl QueryError {
    /// An error from planning a user's statement. DataFusion reports some mistakes in the SQL
    /// itself as internal errors (a function given arguments no signature takes comes back as an
    /// internal error of the type-coercion pass); anything planning fails on, short of memory
    /// or storage, is the statement's fault and answered as such.
    fn from_planning(e: DataFusionError) -> Self {
        match e.find_root() {
            DataFusionError::Internal(_) if !reads_storage(&e) => Self::Invalid(e.strip_backtrace()),
            _ => Self::from(e),
        }
    }
}

impl From<DataFusionError> for QueryError {
    fn from(e: DataFusionError) -> Self {
        let message = e.strip_backtrace();
        if reads_storage(&e) {
            return Self::Storage(message);
        }
        match e.find_root() {
            DataFusionError::ResourcesExhausted(_) => Self::ResourcesExhausted(message),
            DataFusionError::ObjectStore(_) | DataFusionError::IoError(_) | DataFusionError::Internal(_) => {
                Self::Internal(message)
            }
            _ => Self::Invalid(message),
        }
    }
}

/// Whether an object store error is anywhere in the chain: DataFusion wraps it in Parquet, Arrow or
/// `External` errors depending on which reader met it, and its Parquet footer reader keeps only
/// the text (`ParquetError::General("Failed to fetch metadata for file ...: Object Store error:
/// ...")`), so the text of `DataFusionError::ObjectStore` counts too.
fn reads_storage(e: &DataFusionError) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.downcast_ref::<object_store::Error>().is_some() {
            return true;
        }
        source = err.source();
    }
    e.to_string().contains("Object Store error: ")
}

#[derive(Debug, Clone)]
pub struct QueryConfig {
    pub timeout: Duration,
    /// Bytes all running queries may hold together (DataFusion memory pool).
    pub memory_limit: usize,
    /// Bytes of parsed Parquet footers and page indexes kept across queries. When the files'
    /// metadata does not fit, every query parses footers and page indexes again.
    pub metadata_cache_limit: usize,
    pub max_rows: usize,
    pub target_partitions: usize,
    /// Up to this many sessions that a time filter on a session view keeps are listed by id, so
    /// that the session index picks their files; more are found by a semi join
    /// (`sql/src/scoped_views.rs`).
    pub max_listed_sessions: usize,
    /// Up to this many rows of the range that `ORDER BY time LIMIT k` computes over a session view
    /// (or k, if more) are held in memory as the answer's source; more are computed again by
    /// the query (`sql/src/scoped_views.rs`).
    pub max_held_rows: usize,
    /// Size and shape limits checked before planning (`guard.rs`).
    pub sql_limits: SqlLimits,
    /// Bytes of result batches one query may return (as held in memory, before encoding).
    pub max_result_bytes: usize,
    /// Bytes one call of a string- or list-producing function may return (`bounded_functions.rs`).
    pub max_function_output_bytes: usize,
    /// Threads of the query runtime.
    pub threads: usize,
    /// Stack of each query thread. Stacks are reserved address space, touched only as deep as a
    /// plan recurses.
    pub thread_stack_bytes: usize,
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            memory_limit: 2 << 30,
            metadata_cache_limit: 512 << 20,
            max_rows: 1_000_000,
            target_partitions: std::thread::available_parallelism().map_or(2, |n| n.get()),
            max_listed_sessions: 50_000,
            max_held_rows: 10_000,
            sql_limits: SqlLimits::default(),
            max_result_bytes: 256 << 20,
            max_function_output_bytes: 64 << 20,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            thread_stack_bytes: 64 << 20,
        }
    }
}

/// Which rows a caller may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryScope {
    AllProjects,
    Project(ProjectId),
    /// The projects a signed-in user may read, plus tables of their own (the server's
    /// `audit_log`, already cut to what they may see) registered for this query only.
    Projects {
        projects: BTreeSet<ProjectId>,
        tables: ExtraTables,
    },
}

impl QueryScope {
    fn admits(&self, project: &ProjectId) -> bool {
        match self {
            Self::AllProjects => true,
            Self::Project(p) => p == project,
            Self::Projects { projects, .. } => projects.contains(project),
        }
    }
}

/// Tables a caller brings to one query, by name. Compared by name and identity.
#[derive(Clone, Default)]
pub struct ExtraTables(pub Vec<(String, Arc<dyn TableProvider>)>);

impl std::fmt::Debug for ExtraTables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter().map(|(name, _)| name)).finish()
    }
}

impl PartialEq for ExtraTables {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len()
            && self.0.iter().zip(&other.0).all(|((a, ta), (b, tb))| a == b && Arc::ptr_eq(ta, tb))
    }
}

impl Eq for ExtraTables {}

pub struct QueryOutput {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub rows: usize,
    pub files_scanned: usize,
    pub elapsed: Duration,
}

/// Runs user SQL; see the module comment.
pub struct QueryService {
    inner: Arc<Planner>,
    pool: QueryPool,
}

/// What planning and executing a query needs; shared with the query runtime's tasks.
struct Planner {
    engine: Arc<Engine>,
    runtime: Arc<RuntimeEnv>,
    store_url: ObjectStoreUrl,
    config: QueryConfig,
    optimizer_rules: Vec<Arc<dyn OptimizerRule + Send + Sync>>,
    physical_optimizer_rules: Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>>,
    view_plans: OnceCell<ViewPlans>,
    /// The amplifying built-ins behind their bounds, and `||` as a bounded concatenation
    /// (`bounded_functions.rs`); the same for every query.
    bounded_udfs: Vec<datafusion::logical_expr::ScalarUDF>,
    concat_planner: Arc<dyn datafusion::logical_expr::planner::ExprPlanner>,
    /// Functions a test adds to every query's context (to make one panic, say).
    #[cfg(test)]
    test_udfs: std::sync::Mutex<Vec<datafusion::logical_expr::ScalarUDF>>,
}

/// Each view's logical plan, by name, as planned from its SQL.
type ViewPlans = HashMap<&'static str, LogicalPlan>;

/// The query runtime. Dropped without waiting for its tasks: the service may be dropped inside
/// another runtime (tests, shutdown), where blocking is not allowed.
struct QueryPool(Option<tokio::runtime::Runtime>);

impl QueryPool {
    fn new(config: &QueryConfig) -> Result<Self, QueryError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.threads.max(1))
            .max_blocking_threads(config.threads.max(1) * 4)
            .thread_stack_size(config.thread_stack_bytes)
            .thread_name("footfall-query")
            .enable_all()
            .build()
            .map_err(|e| QueryError::Internal(format!("starting the query runtime: {e}")))?;
        Ok(Self(Some(runtime)))
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        match &self.0 {
            Some(runtime) => runtime.handle(),
            None => unreachable!("the query runtime is only taken when the service is dropped"),
        }
    }
}

impl Drop for QueryPool {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// A short, stable name for a query's text, for logs: the same SQL always gets the same one, and
/// the text itself (which may hold anything a user typed) is not logged.
pub fn fingerprint(sql: &str) -> String {
    let normalized: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut hasher = std::hash::DefaultHasher::new();
    std::hash::Hash::hash(&normalized, &mut hasher);
    format!("{:016x}", std::hash::Hasher::finish(&hasher))
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_string())
}

impl QueryService {
    pub fn new(engine: Arc<Engine>, config: QueryConfig) -> Result<Self, QueryError> {
        let store_url = ObjectStoreUrl::parse(STORE_URL)?;
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_limit(config.memory_limit, 1.0)
            .with_metadata_cache_limit(config.metadata_cache_limit)
            .build_arc()?;
        runtime.register_object_store(store_url.as_ref(), engine.store());
        let mut optimizer_rules = crate::count_with_distinct::optimizer_rules();
        crate::top_row_per_partition::add_to(&mut optimizer_rules);
        crate::ordered_first_last::add_to(&mut optimizer_rules);
        crate::scoped_view_order::add_to(&mut optimizer_rules);
        let physical_optimizer_rules = crate::physical_rules::all();
        let pool = QueryPool::new(&config)?;
        let bounded_udfs =
            crate::bounded_functions::bounded_udfs(&SessionContext::new(), config.max_function_output_bytes);
        let concat_planner = Arc::new(crate::bounded_functions::ConcatPlanner::new(config.max_function_output_bytes));
        let inner = Arc::new(Planner {
            engine,
            runtime,
            store_url,
            config,
            optimizer_rules,
            physical_optimizer_rules,
            view_plans: OnceCell::new(),
            bounded_udfs,
            concat_planner,
            #[cfg(test)]
            test_udfs: Default::default(),
        });
        Ok(Self { inner, pool })
    }

    /// Runs one read-only statement for `scope` on the query runtime.
    ///
    /// The timeout is awaited here, on the caller's runtime, so it holds even while a query
    /// thread is inside one long function call; the abandoned task is aborted at its next
    /// await point.
    pub async fn run(&self, sql: &str, scope: &QueryScope) -> Result<QueryOutput, QueryError> {
        let started = Instant::now();
        let timeout = self.inner.config.timeout;
        let task = self.pool.handle().spawn({
            let inner = self.inner.clone();
            let sql = sql.to_string();
            let scope = scope.clone();
            async move { inner.run(&sql, &scope).await }
        });
        let abort = task.abort_handle();
        let result = match tokio::time::timeout(timeout, task).await {
            Ok(Ok(result)) => result,
            Ok(Err(joined)) => {
                let fingerprint = fingerprint(sql);
                match joined.try_into_panic() {
                    Ok(payload) => {
                        tracing::error!(fingerprint = %fingerprint, panic = %panic_message(payload.as_ref()), "query panicked");
                        Err(QueryError::Panicked(fingerprint))
                    }
                    Err(e) => Err(QueryError::Internal(format!("query task ended: {e}"))),
                }
            }
            Err(_) => {
                abort.abort();
                Err(QueryError::Timeout(timeout))
            }
        };
        let elapsed = started.elapsed();
        metrics::counter!("footfall_queries_total", "outcome" => if result.is_ok() { "ok" } else { "error" })
            .increment(1);
        metrics::histogram!("footfall_query_seconds").record(elapsed.as_secs_f64());
        // Fewer cached files than stored ones means the cache is too small for the data.
        metrics::gauge!("footfall_query_metadata_cache_files")
            .set(self.inner.runtime.cache_manager.get_file_metadata_cache().len() as f64);
        result.map(|output| QueryOutput { elapsed, ..output })
    }

    #[cfg(test)]
    async fn run_with_udf(
        &self,
        sql: &str,
        udf: datafusion::logical_expr::ScalarUDF,
    ) -> Result<QueryOutput, QueryError> {
        self.inner.test_udfs.lock().unwrap_or_else(|p| p.into_inner()).push(udf);
        self.run(sql, &QueryScope::AllProjects).await
    }
}

impl Planner {
    fn context(&self, scope: &QueryScope, stats: Arc<ScanStats>) -> Result<SessionContext, QueryError> {
        let snapshot = Arc::new(self.engine.snapshot(|p| scope.admits(p)));
        let ctx = self.context_over(snapshot, stats)?;
        if let QueryScope::Projects { tables, .. } = scope {
            for (name, table) in &tables.0 {
                ctx.register_table(name.as_str(), table.clone())?;
            }
        }
        Ok(ctx)
    }

    fn context_over(&self, snapshot: Arc<Snapshot>, stats: Arc<ScanStats>) -> Result<SessionContext, QueryError> {
        let config = SessionConfig::new()
            .with_target_partitions(self.config.target_partitions)
            .with_information_schema(false)
            .set_bool("datafusion.execution.parquet.pushdown_filters", true)
            // A partial aggregate that does not halve its rows (per-visitor or per-page-and-visitor
            // groups, as count(DISTINCT) plans have) only costs a second hash table; decide after
            // 10k rows instead of DataFusion's 100k, which a 2-partition scan rarely reaches.
            // top_pages at 1M events: 58 -> 44 ms.
            .set_usize("datafusion.execution.skip_partial_aggregation_probe_rows_threshold", 10_000)
            .set_str("datafusion.execution.skip_partial_aggregation_probe_ratio_threshold", "0.5");
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(self.runtime.clone())
            .with_default_features()
            .with_optimizer_rules(self.optimizer_rules.clone())
            .with_physical_optimizer_rules(self.physical_optimizer_rules.clone())
            .build();
        let mut state = state;
        datafusion::execution::FunctionRegistry::register_expr_planner(&mut state, self.concat_planner.clone())?;
        let ctx = SessionContext::new_with_state(state);
        for udf in &self.bounded_udfs {
            ctx.register_udf(udf.clone());
        }
        #[cfg(test)]
        for udf in self.test_udfs.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            ctx.register_udf(udf.clone());
        }
        ctx.register_table("events", Arc::new(EventsTable::new(snapshot, self.store_url.clone(), stats)))?;
        ctx.register_udaf(crate::funnel::funnel_steps());
        ctx.register_udf(crate::to_char::to_char());
        Ok(ctx)
    }

    /// The views' logical plans, planned from their SQL once per process. Planning the brief's
    /// view bodies was about half of a `pageviews` query's time when little data matched (23 ms
    /// for an empty answer, against 1.3 ms on `events`). They are planned over an `events` that
    /// sees no project, so a scan that a query failed to rebind would find nothing.
    async fn view_plans(&self) -> Result<&ViewPlans, QueryError> {
        self.view_plans
            .get_or_try_init(|| async {
                let nothing = Arc::new(self.engine.snapshot(|_| false));
                let ctx = self.context_over(nothing, Arc::new(ScanStats::default()))?;
                let mut plans = ViewPlans::new();
                for (name, sql) in crate::views::VIEWS {
                    let plan = ctx.sql(sql).await?.into_unoptimized_plan();
                    ctx.register_table(*name, Arc::new(ViewTable::new(plan.clone(), Some(sql.to_string()))))?;
                    plans.insert(name, plan);
                }
                Ok::<_, QueryError>(plans)
            })
            .await
    }

    /// Registers the views `query` reads, each a cached plan whose scans of `events` and of other
    /// views are rebound to this query's tables (and so to its scope).
    async fn register_views(&self, ctx: &SessionContext, query: &str) -> Result<(), QueryError> {
        let needed = crate::views::needed_by(query)?;
        if needed.is_empty() {
            return Ok(());
        }
        let plans = self.view_plans().await?;
        let events_table = ctx.table_provider("events").await?;
        let snapshot = (events_table.as_ref() as &dyn Any)
            .downcast_ref::<EventsTable>()
            .map(|t| t.snapshot().clone())
            .ok_or_else(|| QueryError::Internal("events is not Footfall's table".to_string()))?;
        let events = provider_as_source(events_table.clone());
        let mut bound: HashMap<&str, Arc<dyn TableSource>> = HashMap::new();
        for (name, sql) in needed {
            let cached =
                plans.get(name).ok_or_else(|| QueryError::Internal(format!("view {name} has no cached plan")))?;
            let plan = cached
                .clone()
                .transform_up_with_subqueries(|node| {
                    let LogicalPlan::TableScan(scan) = &node else { return Ok(Transformed::no(node)) };
                    let table = scan.table_name.table();
                    let source = if table == "events" {
                        events.clone()
                    } else if let Some(view) = bound.get(table) {
                        view.clone()
                    } else {
                        return Err(DataFusionError::Internal(format!(
                            "view {name} reads {table}, which is not bound"
                        )));
                    };
                    Ok(Transformed::yes(LogicalPlan::TableScan(TableScan { source, ..scan.clone() })))
                })?
                .data;
            let view: Arc<dyn TableProvider> = match scoping(name) {
                Some(scoping) => {
                    let sessions = ScopedSessions {
                        events: events_table.clone(),
                        snapshot: snapshot.clone(),
                        max_listed: self.config.max_listed_sessions,
                        max_held_rows: self.config.max_held_rows,
                    };
                    Arc::new(ScopedView::new(plan, sql.to_string(), scoping, events.clone(), sessions))
                }
                None => Arc::new(ViewTable::new(plan, Some(sql.to_string()))),
            };
            bound.insert(name, provider_as_source(view.clone()));
            ctx.register_table(name, view)?;
        }
        Ok(())
    }

    /// Guards, plans and executes one statement; runs on the query runtime.
    async fn run(&self, sql: &str, scope: &QueryScope) -> Result<QueryOutput, QueryError> {
        let started = Instant::now();
        crate::guard::check(sql, &self.config.sql_limits)?;
        let stats = Arc::new(ScanStats::default());
        let ctx = self.context(scope, stats.clone())?;
        self.register_views(&ctx, sql).await?;
        let options = SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false);
        let df = ctx.sql_with_options(sql, options).await.map_err(QueryError::from_planning)?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let mut stream = df.execute_stream().await.map_err(QueryError::from_planning)?;
        let mut batches = Vec::new();
        let mut rows = 0;
        let mut bytes = 0;
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            rows += batch.num_rows();
            if rows > self.config.max_rows {
                return Err(QueryError::TooManyRows(self.config.max_rows));
            }
            // What the batch holds, not its share of buffers it slices: a LIMIT over a large
            // batch must not count the whole of it.
            bytes += batch.columns().iter().map(|c| c.to_data().get_slice_memory_size().unwrap_or(0)).sum::<usize>();
            if bytes > self.config.max_result_bytes {
                return Err(QueryError::ResultTooLarge(self.config.max_result_bytes));
            }
            batches.push(batch);
        }
        Ok(QueryOutput { schema, batches, rows, files_scanned: stats.files_scanned(), elapsed: started.elapsed() })
    }
}

#[cfg(test)]
mod tests {

    use arrow::datatypes::DataType;
    use datafusion::logical_expr::{
        ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
    };
    use footfall_engine::storage::StorageLocation;
    use footfall_engine::EngineConfig;

    use super::*;

    async fn service(dir: &std::path::Path, config: QueryConfig) -> QueryService {
        let store = StorageLocation::Local(dir.join("storage")).open().expect("store");
        let engine = Arc::new(Engine::open(EngineConfig::new(dir.join("wal")), store).await.expect("engine"));
        QueryService::new(engine, config).expect("service")
    }

    /// `misbehave(0)` panics; `misbehave(n)` blocks its thread for n ms without yielding.
    #[derive(Debug, PartialEq, Eq, Hash)]
    struct Misbehave(Signature);

    impl ScalarUDFImpl for Misbehave {
        fn name(&self) -> &str {
            "misbehave"
        }
        fn signature(&self) -> &Signature {
            &self.0
        }
        fn return_type(&self, _: &[DataType]) -> datafusion::common::Result<DataType> {
            Ok(DataType::Int64)
        }
        fn invoke_with_args(&self, args: ScalarFunctionArgs) -> datafusion::common::Result<ColumnarValue> {
            let ColumnarValue::Scalar(datafusion::common::ScalarValue::Int64(Some(ms))) = args.args[0] else {
                panic!("misbehave takes a literal");
            };
            if ms == 0 {
                panic!("a bug in a function");
            }
            std::thread::sleep(Duration::from_millis(ms as u64));
            Ok(ColumnarValue::Scalar(datafusion::common::ScalarValue::Int64(Some(ms))))
        }
    }

    fn misbehave() -> ScalarUDF {
        ScalarUDF::new_from_impl(Misbehave(Signature::exact(vec![DataType::Int64], Volatility::Volatile)))
    }

    #[tokio::test]
    async fn a_panic_answers_an_error_and_the_service_keeps_serving() {
        let dir = tempfile::tempdir().expect("tempdir");
        let service = service(dir.path(), QueryConfig::default()).await;
        let err = service.run_with_udf("SELECT misbehave(0)", misbehave()).await.err().expect("an error");
        assert!(matches!(err, QueryError::Panicked(ref f) if *f == fingerprint("SELECT  misbehave(0)")), "{err}");
        let output = service.run("SELECT 41 + 1 AS x", &QueryScope::AllProjects).await.expect("still serving");
        assert_eq!(output.rows, 1);
    }

    #[tokio::test]
    async fn the_timeout_holds_while_a_call_blocks_its_thread() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = QueryConfig { timeout: Duration::from_millis(300), threads: 1, ..Default::default() };
        let service = service(dir.path(), config).await;
        let started = Instant::now();
        let err = service.run_with_udf("SELECT misbehave(5000)", misbehave()).await.err().expect("an error");
        assert!(matches!(err, QueryError::Timeout(_)), "{err}");
        assert!(started.elapsed() < Duration::from_secs(3), "answered after {:?}", started.elapsed());
    }

    #[tokio::test]
    async fn results_are_capped_in_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = QueryConfig { max_result_bytes: 1 << 20, ..Default::default() };
        let service = service(dir.path(), config).await;
        let err = service
            .run("SELECT repeat('x', 100000) FROM generate_series(1, 100)", &QueryScope::AllProjects)
            .await
            .err()
            .expect("an error");
        assert!(matches!(err, QueryError::ResultTooLarge(_)), "{err}");
        let small = service.run("SELECT repeat('x', 1000) FROM generate_series(1, 100)", &QueryScope::AllProjects);
        assert_eq!(small.await.expect("fits").rows, 100);
    }

    #[tokio::test]
    async fn too_complex_statements_are_refused_before_planning() {
        let dir = tempfile::tempdir().expect("tempdir");
        let service = service(dir.path(), QueryConfig::default()).await;
        let chain = format!("SELECT {}", vec!["1"; 100_000].join("+"));
        let err = service.run(&chain, &QueryScope::AllProjects).await.err().expect("refused");
        assert!(err.to_string().contains("max_expression_depth"), "{err}");
        let err = service.run("SELECT length(repeat('x', 2000000000))", &QueryScope::AllProjects).await.err();
        assert!(matches!(err, Some(QueryError::ResourcesExhausted(ref m)) if m.contains("max_function_output_bytes")));
    }
}

#[cfg(test)]
mod storage_error_tests {
    use super::*;
    use datafusion::parquet::errors::ParquetError;

    fn store_error() -> object_store::Error {
        object_store::Error::Generic { store: "S3", source: "error sending request".into() }
    }

    #[test]
    fn object_store_failures_are_storage_errors_however_wrapped() {
        let direct = DataFusionError::ObjectStore(Box::new(store_error()));
        assert!(matches!(QueryError::from(direct), QueryError::Storage(_)));
        let context = DataFusionError::ObjectStore(Box::new(store_error())).context("scanning");
        assert!(matches!(QueryError::from(context), QueryError::Storage(_)));
        // DataFusion's footer reader keeps only the text.
        let footer = DataFusionError::ParquetError(Box::new(ParquetError::General(format!(
            "Failed to fetch metadata for file x.parquet: {}",
            DataFusionError::ObjectStore(Box::new(store_error()))
        ))));
        assert!(matches!(QueryError::from(footer), QueryError::Storage(_)));
        let other = DataFusionError::Plan("no such column".into());
        assert!(matches!(QueryError::from(other), QueryError::Invalid(_)));
    }
}
