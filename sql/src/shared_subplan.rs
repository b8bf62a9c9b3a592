//! Computes a repeated aggregate subplan once and hands its result to every place that uses it.
//!
//! DataFusion inlines a CTE at each reference, so `WITH a AS (SELECT … GROUP BY …) SELECT … FROM a
//! JOIN (SELECT … FROM a GROUP BY …) f …` — the shape of retention and cohort questions — scans and
//! aggregates the events once per reference. [`ShareRepeatedSubplans`] finds physical subtrees
//! that occur more than once, rooted (below projections) at a final aggregate over a data source,
//! and wraps each occurrence in a [`SharedSubplanExec`] that shares one result per partition.
//!
//! Only aggregates are shared: their result is usually far smaller than what they read, so holding
//! it costs little, while holding a plain scan would keep every row in memory. The result is counted
//! against the query's memory pool.
//!
//! The rule runs before DataFusion's post-optimisation filter pushdown. That pass gives a join's
//! probe-side scan a dynamic filter from the build side; a shared subtree must not take one,
//! because the same rows serve consumers with different filters, and [`SharedSubplanExec`] passes
//! no parent filter down (the trait's default).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use datafusion::common::runtime::SpawnedTask;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, Result};
use datafusion::config::ConfigOptions;
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::metrics::{ExecutionPlanMetricsSet, MetricBuilder, MetricsSet};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{displayable, DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::future::{BoxFuture, Shared};
use futures::{FutureExt, StreamExt};

/// Inserts [`ShareRepeatedSubplans`] into DataFusion's physical rules, before the pass that
/// attaches dynamic filters.
pub fn add_to(rules: &mut crate::physical_rules::PhysicalRules) {
    crate::physical_rules::insert_before(rules, "EnsureCooperative", Arc::new(ShareRepeatedSubplans));
}

#[derive(Debug)]
pub struct ShareRepeatedSubplans;

impl PhysicalOptimizerRule for ShareRepeatedSubplans {
    fn name(&self) -> &str {
        "ShareRepeatedSubplans"
    }

    fn schema_check(&self) -> bool {
        true
    }

    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        // A recursive query re-executes its recursive term after `reset_state`; a shared result
        // would have to be dropped each round. Such plans are left as they are.
        let mut recursive = false;
        let mut occurrences: HashMap<String, usize> = HashMap::new();
        plan.apply(|node| {
            if matches!(node.name(), "RecursiveQueryExec" | "WorkTableExec") {
                recursive = true;
                return Ok(TreeNodeRecursion::Stop);
            }
            if let Some(key) = sharing_key(node) {
                *occurrences.entry(key).or_default() += 1;
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        if recursive || occurrences.values().all(|&n| n < 2) {
            return Ok(plan);
        }

        // Outermost first: once a subtree is shared, what lies inside it runs once already.
        let mut shared: HashMap<String, (Arc<SharedResults>, usize)> = HashMap::new();
        let plan = plan
            .transform_down(|node| {
                let Some(key) = sharing_key(&node).filter(|k| occurrences.get(k).is_some_and(|&n| n >= 2)) else {
                    return Ok(Transformed::no(node));
                };
                let next_id = shared.len();
                let (results, uses) = shared.entry(key).or_insert_with(|| {
                    (Arc::new(SharedResults::new(next_id, node.properties().partitioning.partition_count())), 0)
                });
                *uses += 1;
                let exec = SharedSubplanExec {
                    input: node,
                    results: results.clone(),
                    metrics: ExecutionPlanMetricsSet::new(),
                };
                Ok(Transformed::new(Arc::new(exec), true, TreeNodeRecursion::Jump))
            })
            .data()?;

        // A subtree counted twice may have had one occurrence inside another shared subtree;
        // left with a single consumer, sharing would only hold its result in memory.
        let single: Vec<usize> = shared.values().filter(|(_, uses)| *uses < 2).map(|(r, _)| r.id).collect();
        if single.is_empty() {
            return Ok(plan);
        }
        plan.transform_up(|node| match node.downcast_ref::<SharedSubplanExec>() {
            Some(exec) if single.contains(&exec.results.id) => Ok(Transformed::yes(exec.input.clone())),
            _ => Ok(Transformed::no(node)),
        })
        .data()
    }
}

/// The subtree's full description, if it is worth sharing: a final aggregate (under projections)
/// that reads a data source. Two subtrees with the same description compute the same rows: it
/// names every operator, expression, file and partition, and the output schema is added to it.
fn sharing_key(node: &Arc<dyn ExecutionPlan>) -> Option<String> {
    let mut root = node;
    while root.downcast_ref::<ProjectionExec>().is_some() || root.downcast_ref::<CooperativeExec>().is_some() {
        root = root.children().into_iter().next()?;
    }
    let aggregate = root.downcast_ref::<AggregateExec>()?;
    if !matches!(
        aggregate.mode(),
        AggregateMode::Final
            | AggregateMode::FinalPartitioned
            | AggregateMode::Single
            | AggregateMode::SinglePartitioned
    ) {
        return None;
    }
    let mut reads_data = false;
    root.apply(|n| {
        reads_data = n.downcast_ref::<DataSourceExec>().is_some();
        Ok(if reads_data { TreeNodeRecursion::Stop } else { TreeNodeRecursion::Continue })
    })
    .ok()?;
    if !reads_data {
        return None;
    }
    Some(format!("{}\n{:?}", displayable(node.as_ref()).indent(true), node.schema()))
}

type Materialized = Result<Arc<PartitionResult>, Arc<DataFusionError>>;

/// One partition's rows, and the memory they are counted against.
struct PartitionResult {
    batches: Vec<RecordBatch>,
    _reservation: MemoryReservation,
}

/// The results every occurrence of one shared subtree reads, per output partition. Each partition
/// is computed by its own task, started by whichever occurrence runs first: a consumer that waits
/// does not have to be the one that drives the work, so two consumers in one pipeline (a join's
/// two sides) cannot wait on each other.
struct SharedResults {
    id: usize,
    partitions: Mutex<Vec<Option<Shared<BoxFuture<'static, Materialized>>>>>,
}

impl SharedResults {
    fn new(id: usize, partitions: usize) -> Self {
        Self { id, partitions: Mutex::new(vec![None; partitions]) }
    }

    fn partition(
        &self,
        partition: usize,
        input: &Arc<dyn ExecutionPlan>,
        context: &Arc<TaskContext>,
    ) -> Result<Shared<BoxFuture<'static, Materialized>>> {
        let mut slots = self.partitions.lock().map_err(|_| DataFusionError::Internal("shared subplan lock".into()))?;
        let slot = slots
            .get_mut(partition)
            .ok_or_else(|| DataFusionError::Internal(format!("SharedSubplanExec: no partition {partition}")))?;
        if let Some(started) = slot {
            return Ok(started.clone());
        }
        let task = SpawnedTask::spawn(materialize(input.clone(), partition, context.clone(), self.id));
        let started = async move {
            match task.join().await {
                Ok(result) => result.map(Arc::new).map_err(Arc::new),
                Err(e) => Err(Arc::new(DataFusionError::ExecutionJoin(Box::new(e)))),
            }
        }
        .boxed()
        .shared();
        *slot = Some(started.clone());
        Ok(started)
    }
}

async fn materialize(
    input: Arc<dyn ExecutionPlan>,
    partition: usize,
    context: Arc<TaskContext>,
    id: usize,
) -> Result<PartitionResult> {
    let reservation =
        MemoryConsumer::new(format!("SharedSubplanExec[{id}] partition {partition}")).register(context.memory_pool());
    let mut stream = input.execute(partition, context)?;
    let mut batches = Vec::new();
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        reservation.try_grow(batch.get_array_memory_size())?;
        batches.push(batch);
    }
    Ok(PartitionResult { batches, _reservation: reservation })
}

/// One occurrence of a shared subtree: replays the rows the first occurrence to run computed.
pub struct SharedSubplanExec {
    input: Arc<dyn ExecutionPlan>,
    results: Arc<SharedResults>,
    metrics: ExecutionPlanMetricsSet,
}

impl fmt::Debug for SharedSubplanExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedSubplanExec").field("id", &self.results.id).finish()
    }
}

impl DisplayAs for SharedSubplanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "SharedSubplanExec: id={}", self.results.id)
    }
}

impl ExecutionPlan for SharedSubplanExec {
    fn name(&self) -> &str {
        "SharedSubplanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    /// Later rules rebuild the occurrences one by one (wrapping scans for cooperative scheduling,
    /// say); each keeps the shared results, and whichever occurrence runs first computes them with
    /// its own, equivalent, input.
    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        let [input] = <[_; 1]>::try_from(children)
            .map_err(|_| DataFusionError::Internal("SharedSubplanExec takes one input".into()))?;
        Ok(Arc::new(Self { input, results: self.results.clone(), metrics: ExecutionPlanMetricsSet::new() }))
    }

    /// A plan run again must not replay the last run's rows: this occurrence starts afresh (and
    /// alone, which costs time, not correctness).
    fn reset_state(self: Arc<Self>) -> Result<Arc<dyn ExecutionPlan>> {
        let partitions = self.input.properties().partitioning.partition_count();
        let results = Arc::new(SharedResults::new(self.results.id, partitions));
        Ok(Arc::new(Self { input: self.input.clone(), results, metrics: ExecutionPlanMetricsSet::new() }))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let result = self.results.partition(partition, &self.input, &context)?;
        let output_rows = MetricBuilder::new(&self.metrics).output_rows(partition);
        let replay = futures::stream::once(result).flat_map(move |result| match result {
            Ok(rows) => {
                output_rows.add(rows.batches.iter().map(RecordBatch::num_rows).sum());
                futures::stream::iter((0..rows.batches.len()).map(move |i| Ok(rows.batches[i].clone()))).boxed()
            }
            Err(e) => futures::stream::once(async move { Err(DataFusionError::Shared(e)) }).boxed(),
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema(), replay)))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::util::pretty::pretty_format_batches;
    use datafusion::datasource::MemTable;
    use datafusion::execution::SessionStateBuilder;
    use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::{SessionConfig, SessionContext};

    const RETENTION: &str = "WITH a AS (SELECT visitor, day / 7 AS w FROM t GROUP BY visitor, day / 7), \
        f AS (SELECT visitor, min(w) AS cohort FROM a GROUP BY visitor) \
        SELECT f.cohort, a.w - f.cohort AS week, count(*) AS visitors \
        FROM a JOIN f ON a.visitor = f.visitor GROUP BY f.cohort, a.w - f.cohort ORDER BY 1, 2";

    fn context(shared: bool) -> SessionContext {
        let schema = Arc::new(Schema::new(vec![
            Field::new("visitor", DataType::Utf8, false),
            Field::new("day", DataType::Int64, false),
        ]));
        let batches: Vec<Vec<RecordBatch>> = (0..2)
            .map(|part| {
                let visitors: Vec<String> = (0..500).map(|i| format!("v{}", (i * 7 + part * 3) % 97)).collect();
                let days: Vec<i64> = (0..500).map(|i| (i * 13 + part * 5) % 28).collect();
                vec![RecordBatch::try_new(
                    schema.clone(),
                    vec![Arc::new(StringArray::from(visitors)), Arc::new(Int64Array::from(days))],
                )
                .unwrap()]
            })
            .collect();
        let mut rules = PhysicalOptimizer::new().rules;
        if shared {
            super::add_to(&mut rules);
        }
        let state = SessionStateBuilder::new()
            .with_config(SessionConfig::new().with_target_partitions(2))
            .with_default_features()
            .with_physical_optimizer_rules(rules)
            .build();
        let ctx = SessionContext::new_with_state(state);
        ctx.register_table("t", Arc::new(MemTable::try_new(schema, batches).unwrap())).unwrap();
        ctx
    }

    async fn answer(ctx: &SessionContext, sql: &str) -> String {
        pretty_format_batches(&ctx.sql(sql).await.unwrap().collect().await.unwrap()).unwrap().to_string()
    }

    async fn plan(ctx: &SessionContext, sql: &str) -> String {
        let physical = ctx.sql(sql).await.unwrap().create_physical_plan().await.unwrap();
        let text = displayable(physical.as_ref()).indent(true).to_string();
        text
    }

    #[tokio::test]
    async fn a_cte_aggregated_twice_is_computed_once_with_the_same_answer() {
        let (plain, shared) = (context(false), context(true));
        assert_eq!(answer(&plain, RETENTION).await, answer(&shared, RETENTION).await);
        let p = plan(&shared, RETENTION).await;
        assert_eq!(p.matches("SharedSubplanExec: id=0").count(), 2, "{p}");
        assert!(!p.contains("id=1"), "{p}");

        // Run, the data source is read by one occurrence only: the other shows no rows read.
        let analyzed = answer(&shared, &format!("EXPLAIN ANALYZE {RETENTION}")).await;
        let reads: Vec<&str> =
            analyzed.lines().filter(|l| l.contains("mode=Partial, gby=[visitor@0 as visitor, day@1")).collect();
        assert_eq!(reads.len(), 2, "{analyzed}");
        assert_eq!(reads.iter().filter(|l| l.contains("output_rows=")).count(), 1, "{analyzed}");
        // Both occurrences hand on the shared rows.
        assert_eq!(analyzed.matches("SharedSubplanExec: id=0, metrics=[output_rows=273").count(), 2, "{analyzed}");
    }

    #[tokio::test]
    async fn subplans_used_once_or_without_an_aggregate_are_left_alone() {
        let ctx = context(true);
        for sql in [
            "WITH a AS (SELECT visitor, count(*) AS n FROM t GROUP BY visitor) SELECT * FROM a ORDER BY visitor",
            // The same scan twice, without an aggregate: sharing would hold every row.
            "SELECT x.visitor FROM t x JOIN t y ON x.visitor = y.visitor AND x.day = y.day + 1 ORDER BY 1 LIMIT 3",
            // The same aggregate with different filters is not the same subplan.
            "WITH a AS (SELECT visitor, day, count(*) AS n FROM t GROUP BY visitor, day) \
             SELECT count(*) FROM a x JOIN a y ON x.visitor = y.visitor WHERE x.day = 1 AND y.day = 2",
        ] {
            let p = plan(&ctx, sql).await;
            assert!(!p.contains("SharedSubplanExec"), "{sql}\n{p}");
        }
    }

    #[tokio::test]
    async fn union_of_the_same_aggregate_and_a_nested_repeat() {
        let (plain, shared) = (context(false), context(true));
        for sql in [
            "WITH a AS (SELECT visitor, count(*) AS n FROM t GROUP BY visitor) \
             SELECT 'x' AS k, sum(n) FROM a UNION ALL SELECT 'y', max(n) FROM a ORDER BY 1",
            // `a` inside `b`, `b` used twice: `b` is shared and `a` (one use left) is not.
            "WITH a AS (SELECT visitor, count(*) AS n FROM t GROUP BY visitor), \
             b AS (SELECT n, count(*) AS c FROM a GROUP BY n) \
             SELECT x.n, x.c, y.c FROM b x JOIN b y ON x.n = y.n ORDER BY 1",
        ] {
            assert_eq!(answer(&plain, sql).await, answer(&shared, sql).await, "{sql}");
            let p = plan(&shared, sql).await;
            assert_eq!(p.matches("SharedSubplanExec: id=0").count(), 2, "{sql}\n{p}");
            assert!(!p.contains("id=1"), "{sql}\n{p}");
        }
    }
}
