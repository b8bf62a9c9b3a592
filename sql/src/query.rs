//! Running one user query: guard → scoped snapshot → per-query `SessionContext` with the `events`
//! table and its views → planning with DDL/DML/statements disabled → streamed execution under a
//! timeout, a shared memory pool and a row cap.

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

use crate::guard::{check_read_only, GuardError};
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
    #[error("internal error running the query: {0}")]
    Internal(String),
}

impl From<DataFusionError> for QueryError {
    fn from(e: DataFusionError) -> Self {
        let message = e.strip_backtrace();
        match e.find_root() {
            DataFusionError::ResourcesExhausted(_) => Self::ResourcesExhausted(message),
            DataFusionError::ObjectStore(_) | DataFusionError::IoError(_) | DataFusionError::Internal(_) => {
                Self::Internal(message)
            }
            _ => Self::Invalid(message),
        }
    }
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

pub struct QueryService {
    engine: Arc<Engine>,
    runtime: Arc<RuntimeEnv>,
    store_url: ObjectStoreUrl,
    config: QueryConfig,
    optimizer_rules: Vec<Arc<dyn OptimizerRule + Send + Sync>>,
    physical_optimizer_rules: Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>>,
    view_plans: OnceCell<ViewPlans>,
}

/// Each view's logical plan, by name, as planned from its SQL.
type ViewPlans = HashMap<&'static str, LogicalPlan>;

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
        Ok(Self {
            engine,
            runtime,
            store_url,
            config,
            optimizer_rules,
            physical_optimizer_rules,
            view_plans: OnceCell::new(),
        })
    }

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
        let ctx = SessionContext::new_with_state(state);
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

    /// Runs one read-only statement for `scope`.
    pub async fn run(&self, sql: &str, scope: &QueryScope) -> Result<QueryOutput, QueryError> {
        let started = Instant::now();
        check_read_only(sql)?;
        let stats = Arc::new(ScanStats::default());
        let ctx = self.context(scope, stats.clone())?;
        let work = async {
            self.register_views(&ctx, sql).await?;
            let options = SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false);
            let df = ctx.sql_with_options(sql, options).await?;
            let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
            let mut stream = df.execute_stream().await?;
            let mut batches = Vec::new();
            let mut rows = 0;
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                rows += batch.num_rows();
                if rows > self.config.max_rows {
                    return Err(QueryError::TooManyRows(self.config.max_rows));
                }
                batches.push(batch);
            }
            Ok::<_, QueryError>((schema, batches, rows))
        };
        let outcome = tokio::time::timeout(self.config.timeout, work).await;
        let result = match outcome {
            Ok(result) => result,
            Err(_) => Err(QueryError::Timeout(self.config.timeout)),
        };
        let elapsed = started.elapsed();
        metrics::counter!("footfall_queries_total", "outcome" => if result.is_ok() { "ok" } else { "error" })
            .increment(1);
        metrics::histogram!("footfall_query_seconds").record(elapsed.as_secs_f64());
        // Fewer cached files than stored ones means the cache is too small for the data.
        metrics::gauge!("footfall_query_metadata_cache_files")
            .set(self.runtime.cache_manager.get_file_metadata_cache().len() as f64);
        let (schema, batches, rows) = result?;
        Ok(QueryOutput { schema, batches, rows, files_scanned: stats.files_scanned(), elapsed })
    }
}
