//! Partial aggregates by `session_id` over one kind of event run in DataFusion's streaming mode,
//! one batch's sessions at a time.
//!
//! Files are sorted by kind of event, then session: a scan of one kind yields each file's rows in
//! session order, so a batch holds each of its sessions in one run. A partial aggregate by
//! `session_id` (bounce rate, entry and exit pages) still kept every session of the project in one
//! hash table — 135,000 per partition at 10M events, and about two cache misses per row.
//!
//! [`SessionRunPartials`] tells such a partial aggregate that its input is ordered by
//! `session_id` (through [`SessionRunsExec`]), so it runs with `InputOrderMode::Sorted`: it emits
//! the finished groups after each batch and its table holds one batch's sessions. That is correct
//! whatever the real order — a partial aggregate's output is a set of partial states the final
//! aggregate merges by key, and a session met again later is only a second partial row — so the
//! rule asks for order only where it pays (a filter on one kind of event), and it makes sure the
//! claimed order cannot reach anything else: the partial aggregate must feed a hash repartition
//! that drops order.

use std::fmt;
use std::sync::Arc;

use arrow::compute::SortOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, Result};
use datafusion::config::ConfigOptions;
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::expressions::{BinaryExpr, Column, Literal};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr, PhysicalSortExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, InputOrderMode,
    Partitioning, PlanProperties, ReplaceChildrenOptions,
};

const SESSION: &str = "session_id";
const KIND: &str = "event_type";

/// Inserts [`SessionRunPartials`] into DataFusion's physical rules, last before the final checks:
/// no rule after it may build on the order it claims.
pub fn add_to(rules: &mut crate::physical_rules::PhysicalRules) {
    crate::physical_rules::insert_before(rules, "SanityCheckPlan", Arc::new(SessionRunPartials));
}

#[derive(Debug)]
pub struct SessionRunPartials;

impl PhysicalOptimizerRule for SessionRunPartials {
    fn name(&self) -> &str {
        "SessionRunPartials"
    }

    fn schema_check(&self) -> bool {
        true
    }

    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(repartition) = node.downcast_ref::<RepartitionExec>() else { return Ok(Transformed::no(node)) };
            if repartition.preserve_order() || !matches!(repartition.partitioning(), Partitioning::Hash(..)) {
                return Ok(Transformed::no(node));
            }
            let Some(partial) = repartition.input().downcast_ref::<AggregateExec>() else {
                return Ok(Transformed::no(node));
            };
            let Some(streaming) = streaming_partial(partial)? else { return Ok(Transformed::no(node)) };
            let options = ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute);
            let rebuilt = node.clone().replace_children(vec![streaming], options)?;
            // With one input partition a repartition keeps its input's order; then the claimed
            // order would reach the final aggregate. Keep the plan as it was.
            if rebuilt.output_ordering().is_some() {
                return Ok(Transformed::no(node));
            }
            Ok(Transformed::yes(rebuilt))
        })
        .data()
    }
}

/// The partial aggregate rebuilt over [`SessionRunsExec`], if it groups by `session_id` alone,
/// reads one kind of event, and DataFusion then chooses the streaming mode.
fn streaming_partial(partial: &AggregateExec) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    if *partial.mode() != AggregateMode::Partial || *partial.input_order_mode() != InputOrderMode::Linear {
        return Ok(None);
    }
    let group_by = partial.group_expr();
    let [(key, _)] = group_by.expr() else { return Ok(None) };
    if !group_by.null_expr().is_empty() {
        return Ok(None);
    }
    let Some(key) = key.downcast_ref::<Column>() else { return Ok(None) };
    let input = partial.input();
    if !reads_session_column(input, key.index()) || !reads_one_kind(input) {
        return Ok(None);
    }
    let runs: Arc<dyn ExecutionPlan> = Arc::new(SessionRunsExec::new(input.clone(), key.clone()));
    let rebuilt = AggregateExec::try_new(
        AggregateMode::Partial,
        group_by.clone(),
        partial.aggr_expr().to_vec(),
        partial.filter_expr().to_vec(),
        runs,
        partial.input_schema(),
    )?;
    if *rebuilt.input_order_mode() != InputOrderMode::Sorted {
        return Ok(None);
    }
    Ok(Some(Arc::new(rebuilt.with_limit_options(partial.limit_options()))))
}

/// Whether column `index` of `plan`'s output is the scan's `session_id`, passed through unchanged.
fn reads_session_column(plan: &Arc<dyn ExecutionPlan>, index: usize) -> bool {
    if plan.schema().fields().get(index).is_none_or(|f| f.name() != SESSION) {
        return false;
    }
    if let Some(projection) = plan.downcast_ref::<ProjectionExec>() {
        let Some(expr) = projection.expr().get(index) else { return false };
        return match expr.expr.downcast_ref::<Column>() {
            Some(c) => reads_session_column(projection.input(), c.index()),
            None => false,
        };
    }
    if let Some(filter) = plan.downcast_ref::<FilterExec>() {
        // A filter with a projection of its own renumbers columns; not followed.
        return filter.projection().is_none() && reads_session_column(filter.input(), index);
    }
    // A round-robin repartition moves whole batches, so each still holds its sessions in runs.
    let round_robin = plan
        .downcast_ref::<RepartitionExec>()
        .is_some_and(|r| matches!(r.partitioning(), Partitioning::RoundRobinBatch(_)));
    if round_robin || plan.downcast_ref::<CooperativeExec>().is_some() || plan.downcast_ref::<UnionExec>().is_some() {
        return plan.children().iter().all(|c| reads_session_column(c, index));
    }
    plan.downcast_ref::<DataSourceExec>().is_some()
}

/// Whether every file scan under `plan` is limited to one kind of event (`event_type = '...'`).
fn reads_one_kind(plan: &Arc<dyn ExecutionPlan>) -> bool {
    let mut scans = 0;
    let mut filtered = 0;
    let _ = plan.apply(|node| {
        if let Some(scan) = node.downcast_ref::<DataSourceExec>() {
            let source = scan.data_source().as_ref() as &dyn std::any::Any;
            if let Some(config) = source.downcast_ref::<FileScanConfig>() {
                scans += 1;
                let predicate = config.file_source().filter();
                if predicate.is_some_and(|p| has_kind_equality(&p)) {
                    filtered += 1;
                }
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    scans > 0 && scans == filtered
}

fn has_kind_equality(predicate: &Arc<dyn PhysicalExpr>) -> bool {
    datafusion::physical_expr::split_conjunction(predicate).into_iter().any(|conjunct| {
        let Some(binary) = conjunct.downcast_ref::<BinaryExpr>() else { return false };
        let column = |e: &Arc<dyn PhysicalExpr>| e.downcast_ref::<Column>().is_some_and(|c| c.name() == KIND);
        let literal = |e: &Arc<dyn PhysicalExpr>| e.downcast_ref::<Literal>().is_some();
        *binary.op() == Operator::Eq
            && ((column(binary.left()) && literal(binary.right()))
                || (literal(binary.left()) && column(binary.right())))
    })
}

/// Its input, declared ordered by `session_id`. Only [`SessionRunPartials`] places it, under a
/// partial aggregate whose claimed order goes no further (see the module comment).
pub struct SessionRunsExec {
    input: Arc<dyn ExecutionPlan>,
    key: Column,
    properties: Arc<PlanProperties>,
}

impl SessionRunsExec {
    fn new(input: Arc<dyn ExecutionPlan>, key: Column) -> Self {
        let mut eq = EquivalenceProperties::new(input.schema());
        eq.add_ordering([PhysicalSortExpr::new(Arc::new(key.clone()), SortOptions::default())]);
        let base = input.properties();
        let properties = PlanProperties::new(eq, base.partitioning.clone(), base.emission_type, base.boundedness);
        Self { input, key, properties: Arc::new(properties) }
    }
}

impl fmt::Debug for SessionRunsExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionRunsExec").field("key", &self.key).finish()
    }
}

impl DisplayAs for SessionRunsExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "SessionRunsExec: runs of {}", self.key)
    }
}

impl ExecutionPlan for SessionRunsExec {
    fn name(&self) -> &str {
        "SessionRunsExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
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

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        let [input] = <[_; 1]>::try_from(children)
            .map_err(|_| DataFusionError::Internal("SessionRunsExec takes one input".into()))?;
        Ok(Arc::new(Self::new(input, self.key.clone())))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        self.input.execute(partition, context)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::util::pretty::pretty_format_batches;
    use datafusion::execution::SessionStateBuilder;
    use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
    use parquet::arrow::ArrowWriter;

    /// Two files sorted by kind, then session, as Footfall writes them (unless `sorted` is false);
    /// sessions recur across the files and run across the (small) batches.
    fn write_files(dir: &std::path::Path, sorted: bool) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("event_type", DataType::Utf8, false),
            Field::new("session_id", DataType::Utf8, false),
            Field::new("n", DataType::Int64, false),
        ]));
        for file in 0..2 {
            let mut rows: Vec<(String, String, i64)> = (0..600)
                .map(|i| {
                    let kind = if i % 3 == 0 { "engagement" } else { "pageview" };
                    (kind.to_string(), format!("session-{:04}", (i * 7 + file * 50) % 90), i)
                })
                .collect();
            if sorted {
                rows.sort();
            } else {
                // Kinds still in blocks (so the scan's filter is the same), sessions in no order.
                rows.sort_by(|a, b| a.0.cmp(&b.0).then(a.2.cmp(&b.2)));
            }
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0.clone()))),
                    Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1.clone()))),
                    Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.2))),
                ],
            )
            .unwrap();
            let out = std::fs::File::create(dir.join(format!("part-{file}.parquet"))).unwrap();
            let mut writer = ArrowWriter::try_new(out, schema.clone(), None).unwrap();
            writer.write(&batch).unwrap();
            writer.close().unwrap();
        }
    }

    async fn context(dir: &std::path::Path, rule: bool) -> SessionContext {
        let mut rules = PhysicalOptimizer::new().rules;
        if rule {
            super::add_to(&mut rules);
        }
        let config = SessionConfig::new()
            .with_target_partitions(2)
            .with_batch_size(7)
            .set_bool("datafusion.execution.parquet.pushdown_filters", true);
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features()
            .with_physical_optimizer_rules(rules)
            .build();
        let ctx = SessionContext::new_with_state(state);
        ctx.register_parquet("t", dir.to_str().unwrap(), ParquetReadOptions::default()).await.unwrap();
        ctx
    }

    async fn answer_and_plan(ctx: &SessionContext, sql: &str) -> (String, String) {
        let frame = ctx.sql(sql).await.unwrap();
        let plan = frame.clone().create_physical_plan().await.unwrap();
        let plan_text = displayable(plan.as_ref()).indent(true).to_string();
        let rows = pretty_format_batches(&frame.collect().await.unwrap()).unwrap().to_string();
        (rows, plan_text)
    }

    #[tokio::test]
    async fn per_session_partials_over_one_kind_stream_with_the_same_answers() {
        for sorted in [true, false] {
            same_answers_streaming(sorted).await;
        }
    }

    /// Correct whatever the order: unsorted rows only make the partial hand on more rows.
    async fn same_answers_streaming(sorted: bool) {
        let dir = tempfile::tempdir().unwrap();
        write_files(dir.path(), sorted);
        let (plain, runs) = (context(dir.path(), false).await, context(dir.path(), true).await);
        for sql in [
            "SELECT count(*) AS sessions, sum(CASE WHEN c = 1 THEN 1 ELSE 0 END) AS bounces FROM \
             (SELECT session_id, count(*) AS c FROM t WHERE event_type = 'pageview' GROUP BY session_id)",
            "SELECT session_id, count(*), min(n), max(n), sum(n) FROM t WHERE event_type = 'pageview' \
             GROUP BY session_id ORDER BY session_id",
        ] {
            let (expected, _) = answer_and_plan(&plain, sql).await;
            let (got, plan) = answer_and_plan(&runs, sql).await;
            assert_eq!(expected, got, "sorted {sorted}: {sql}");
            assert!(plan.contains("SessionRunsExec"), "{sql}\n{plan}");
            assert!(plan.contains("mode=Partial") && plan.contains("ordering_mode=Sorted"), "{sql}\n{plan}");
        }
    }

    #[tokio::test]
    async fn other_partials_are_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        write_files(dir.path(), true);
        let runs = context(dir.path(), true).await;
        for sql in [
            // Every kind: a session comes back once per kind, so runs are short.
            "SELECT session_id, count(*) FROM t GROUP BY session_id",
            "SELECT session_id, count(*) FROM t WHERE event_type <> 'pageview' GROUP BY session_id",
            // Not by session alone.
            "SELECT session_id, n, count(*) FROM t WHERE event_type = 'pageview' GROUP BY session_id, n",
            "SELECT n % 10, count(*) FROM t WHERE event_type = 'pageview' GROUP BY n % 10",
        ] {
            let (_, plan) = answer_and_plan(&runs, sql).await;
            assert!(!plan.contains("SessionRunsExec"), "{sql}\n{plan}");
        }
    }
}
