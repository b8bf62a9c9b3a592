//! Copies the strings a batch still uses out of shared buffers before a sort holds the batch.
//!
//! Strings are read as `Utf8View`: each value is a view into a buffer of the Parquet page it was
//! decoded from. A join or a hash repartition gathers rows with `take`, which copies the views but
//! keeps every source buffer alive, so a batch of a few thousand rows can pin buffers of many
//! pages — and a sort that holds such batches counts the buffers once per batch against the
//! query's memory pool. The `sessions` view over a 5M-event project sorted 1.1M page views this
//! way: its sorter reserved over 1 GB at 1.55 GB RSS for the whole process, and the query failed
//! under a 2 GiB pool ("Not enough memory to continue external sort") or spilled for half a minute.
//!
//! [`CompactStringViews`] puts a [`CompactStringViewsExec`] under each full sort whose input has
//! view columns. It rewrites a view column (`gc`) only when its buffers hold more than twice the
//! bytes its values use, so batches fresh from a decoder pass through untouched.

use std::fmt;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, Result};
use datafusion::config::ConfigOptions;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::metrics::{ExecutionPlanMetricsSet, MetricBuilder, MetricsSet};
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, ReplaceChildrenOptions,
};
use futures::StreamExt;

/// Inserts [`CompactStringViews`] into DataFusion's physical rules, after the passes that place
/// sorts and before the final checks.
pub fn add_to(rules: &mut crate::physical_rules::PhysicalRules) {
    crate::physical_rules::insert_before(rules, "EnsureCooperative", Arc::new(CompactStringViews));
}

#[derive(Debug)]
pub struct CompactStringViews;

impl PhysicalOptimizerRule for CompactStringViews {
    fn name(&self) -> &str {
        "CompactStringViews"
    }

    fn schema_check(&self) -> bool {
        true
    }

    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(sort) = node.downcast_ref::<SortExec>() else { return Ok(Transformed::no(node)) };
            // A top-k sort keeps k rows, already copied out of its input.
            let input = sort.input();
            if sort.fetch().is_some()
                || !has_view_columns(&input.schema())
                || input.downcast_ref::<CompactStringViewsExec>().is_some()
            {
                return Ok(Transformed::no(node));
            }
            let compacted: Arc<dyn ExecutionPlan> = Arc::new(CompactStringViewsExec::new(input.clone()));
            let options = ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute);
            Ok(Transformed::yes(node.replace_children(vec![compacted], options)?))
        })
        .data()
    }
}

fn has_view_columns(schema: &SchemaRef) -> bool {
    schema.fields().iter().any(|f| matches!(f.data_type(), DataType::Utf8View | DataType::BinaryView))
}

/// Bytes the values of a view array keep outside their views (values of up to 12 bytes are inline).
fn used_bytes(views: &[u128]) -> usize {
    views.iter().map(|&v| v as u32 as usize).filter(|&len| len > 12).sum()
}

fn held_bytes(buffers: &[arrow::buffer::Buffer]) -> usize {
    buffers.iter().map(|b| b.len()).sum()
}

/// The column itself if its buffers are not much larger than what it uses, else a compacted copy.
fn compact(column: &ArrayRef) -> Option<ArrayRef> {
    match column.data_type() {
        DataType::Utf8View => {
            let a = column.as_string_view();
            (held_bytes(a.data_buffers()) > 2 * used_bytes(a.views())).then(|| Arc::new(a.gc()) as ArrayRef)
        }
        DataType::BinaryView => {
            let a = column.as_binary_view();
            (held_bytes(a.data_buffers()) > 2 * used_bytes(a.views())).then(|| Arc::new(a.gc()) as ArrayRef)
        }
        _ => None,
    }
}

fn compact_batch(batch: RecordBatch) -> Result<(RecordBatch, usize)> {
    let mut rewritten = 0;
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .map(|c| match compact(c) {
            Some(new) => {
                rewritten += 1;
                new
            }
            None => c.clone(),
        })
        .collect();
    if rewritten == 0 {
        return Ok((batch, 0));
    }
    Ok((RecordBatch::try_new(batch.schema(), columns)?, rewritten))
}

/// Passes batches on with their view columns compacted where they pin much more than they use.
pub struct CompactStringViewsExec {
    input: Arc<dyn ExecutionPlan>,
    metrics: ExecutionPlanMetricsSet,
}

impl CompactStringViewsExec {
    pub fn new(input: Arc<dyn ExecutionPlan>) -> Self {
        Self { input, metrics: ExecutionPlanMetricsSet::new() }
    }
}

impl fmt::Debug for CompactStringViewsExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CompactStringViewsExec")
    }
}

impl DisplayAs for CompactStringViewsExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("CompactStringViewsExec")
    }
}

impl ExecutionPlan for CompactStringViewsExec {
    fn name(&self) -> &str {
        "CompactStringViewsExec"
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

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        let [input] = <[_; 1]>::try_from(children)
            .map_err(|_| DataFusionError::Internal("CompactStringViewsExec takes one input".into()))?;
        Ok(Arc::new(Self::new(input)))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        let compacted_columns = MetricBuilder::new(&self.metrics).counter("compacted_columns", partition);
        let output_rows = MetricBuilder::new(&self.metrics).output_rows(partition);
        let stream = input.map(move |batch| {
            let (batch, rewritten) = compact_batch(batch?)?;
            compacted_columns.add(rewritten);
            output_rows.add(batch.num_rows());
            Ok(batch)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema(), stream)))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringViewArray};
    use arrow::datatypes::{Field, Schema};
    use datafusion::datasource::MemTable;
    use datafusion::execution::SessionStateBuilder;
    use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::{SessionConfig, SessionContext};

    fn long(i: usize) -> String {
        format!("session-{i:012}")
    }

    #[test]
    fn a_slice_of_a_large_buffer_is_copied_out_and_a_fresh_array_is_not() {
        let fresh = StringViewArray::from_iter_values((0..1000).map(long));
        let column: ArrayRef = Arc::new(fresh.clone());
        assert!(compact(&column).is_none(), "a fresh array uses all of its buffer");

        let slice: ArrayRef = Arc::new(fresh.slice(10, 20));
        let compacted = compact(&slice).expect("twenty values of a thousand-value buffer");
        let compacted = compacted.as_string_view();
        assert_eq!(compacted.iter().collect::<Vec<_>>(), fresh.slice(10, 20).iter().collect::<Vec<_>>());
        assert!(held_bytes(compacted.data_buffers()) <= 2 * used_bytes(compacted.views()));

        // Short values are inline: nothing outside the views to keep.
        let short: ArrayRef =
            Arc::new(StringViewArray::from_iter_values((0..1000).map(|i| format!("{i}"))).slice(0, 5));
        assert!(compact(&short).is_none());
    }

    #[tokio::test]
    async fn full_sorts_over_view_columns_get_compacted_input_with_the_same_answer() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("session", DataType::Utf8View, false),
            Field::new("n", DataType::Int64, false),
        ]));
        let sessions = StringViewArray::from_iter_values((0..4000).map(|i| long(i * 7919 % 4000)));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(sessions), Arc::new(Int64Array::from_iter_values(0..4000))],
        )
        .unwrap();
        // Many small slices of one batch: each pins the whole buffer, as gathered rows do.
        let parts: Vec<Vec<RecordBatch>> = vec![(0..40).map(|k| batch.slice(k * 100, 100)).collect()];
        let context = |rule: bool| {
            let mut rules = PhysicalOptimizer::new().rules;
            if rule {
                add_to(&mut rules);
            }
            let state = SessionStateBuilder::new()
                .with_config(SessionConfig::new().with_target_partitions(1))
                .with_default_features()
                .with_physical_optimizer_rules(rules)
                .build();
            let ctx = SessionContext::new_with_state(state);
            ctx.register_table("t", Arc::new(MemTable::try_new(schema.clone(), parts.clone()).unwrap())).unwrap();
            ctx
        };
        let sql = "SELECT session, n, row_number() OVER (PARTITION BY session ORDER BY n) FROM t ORDER BY session";
        let (plain, compacting) = (context(false), context(true));
        let answer = |ctx: SessionContext| async move { ctx.sql(sql).await.unwrap().collect().await.unwrap() };
        let (a, b) = (answer(plain).await, answer(compacting).await);
        assert_eq!(
            arrow::util::pretty::pretty_format_batches(&a).unwrap().to_string(),
            arrow::util::pretty::pretty_format_batches(&b).unwrap().to_string()
        );

        let physical = compacting_plan(&context(true), sql).await;
        assert!(physical.contains("CompactStringViewsExec"), "{physical}");
        // A top-k sort is left alone.
        let topk = compacting_plan(&context(true), "SELECT session FROM t ORDER BY session LIMIT 3").await;
        assert!(!topk.contains("CompactStringViewsExec"), "{topk}");
    }

    async fn compacting_plan(ctx: &SessionContext, sql: &str) -> String {
        let plan = ctx.sql(sql).await.unwrap().create_physical_plan().await.unwrap();
        let text = displayable(plan.as_ref()).indent(true).to_string();
        text
    }
}
