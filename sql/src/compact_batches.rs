//! Copies the values a batch still uses out of larger shared buffers before an operator holds the
//! batch for long (a full sort, a hash join's build side) and counts it against the memory pool.
//!
//! Two things make a batch hold far more memory than its rows use:
//! - Strings are read as `Utf8View`: each value is a view into a buffer of the Parquet page it was
//!   decoded from. A join or a hash repartition gathers rows with `take`, which copies the views but
//!   keeps every source buffer alive, so a batch of a few thousand rows can pin buffers of many
//!   pages. The same holds for the strings inside lists (`array_agg`).
//! - An aggregate emits its groups as one batch and hands it on in slices of the batch size; every
//!   slice keeps (and reports) the whole emission's buffers.
//!
//! DataFusion counts each batch's buffers in full, once per batch, so the account of an operator
//! holding such batches can be many times what it holds. The `sessions` view over a 5M-event project
//! sorted 1.1M page views with a sorter that reserved over 1 GB at 1.55 GB RSS for the process;
//! `SELECT * FROM pageviews ... ORDER BY added_iso DESC LIMIT 50` over the same project had each hash
//! join's build side (the page metrics, ≈ 60 MB) reserve 630 MB, and failed under a 5.9 GB pool.
//!
//! [`CompactBatches`] puts a [`CompactBatchesExec`] under each full sort and under each hash join's
//! build side. It rewrites a column only when its buffers hold more than twice what its values use
//! (and 64 KiB more), so batches fresh from a decoder pass through untouched.

use std::fmt;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, ListArray, RecordBatch, UInt32Array};
use arrow::buffer::{OffsetBuffer, ScalarBuffer};
use arrow::compute::take;
use arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, Result};
use datafusion::config::ConfigOptions;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::joins::HashJoinExec;
use datafusion::physical_plan::metrics::{ExecutionPlanMetricsSet, MetricBuilder, MetricsSet};
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, ReplaceChildrenOptions,
};
use futures::StreamExt;

/// Inserts [`CompactBatches`] into DataFusion's physical rules, after the passes that place
/// sorts and before the final checks.
pub fn add_to(rules: &mut crate::physical_rules::PhysicalRules) {
    crate::physical_rules::insert_before(rules, "EnsureCooperative", Arc::new(CompactBatches));
}

#[derive(Debug)]
pub struct CompactBatches;

impl PhysicalOptimizerRule for CompactBatches {
    fn name(&self) -> &str {
        "CompactBatches"
    }

    fn schema_check(&self) -> bool {
        true
    }

    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let compacted = |input: &Arc<dyn ExecutionPlan>| -> Arc<dyn ExecutionPlan> {
                if input.downcast_ref::<CompactBatchesExec>().is_some() {
                    input.clone()
                } else {
                    Arc::new(CompactBatchesExec::new(input.clone()))
                }
            };
            let children: Vec<Arc<dyn ExecutionPlan>> = if let Some(sort) = node.downcast_ref::<SortExec>() {
                // A top-k sort keeps k rows, already copied out of its input.
                if sort.fetch().is_some() || sort.input().downcast_ref::<CompactBatchesExec>().is_some() {
                    return Ok(Transformed::no(node));
                }
                vec![compacted(sort.input())]
            } else if let Some(join) = node.downcast_ref::<HashJoinExec>() {
                if join.left().downcast_ref::<CompactBatchesExec>().is_some() {
                    return Ok(Transformed::no(node));
                }
                vec![compacted(join.left()), join.right().clone()]
            } else {
                return Ok(Transformed::no(node));
            };
            let options = ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute);
            Ok(Transformed::yes(node.replace_children(children, options)?))
        })
        .data()
    }
}

/// Below this much slack a column is left as it is: the copy would cost more than it frees.
const SLACK_BYTES: usize = 64 * 1024;

fn wasteful(held: usize, used: usize) -> bool {
    held > 2 * used + SLACK_BYTES
}

/// Bytes the values of a view array keep outside their views (values of up to 12 bytes are inline).
fn used_bytes(views: &[u128]) -> usize {
    views.iter().map(|&v| v as u32 as usize).filter(|&len| len > 12).sum()
}

fn held_bytes(buffers: &[arrow::buffer::Buffer]) -> usize {
    buffers.iter().map(|b| b.len()).sum()
}

/// `None` if the column's buffers are not much larger than what it uses, else a compacted copy.
fn compact(column: &ArrayRef) -> Result<Option<ArrayRef>> {
    Ok(match column.data_type() {
        DataType::Utf8View => {
            let a = column.as_string_view();
            wasteful(held_bytes(a.data_buffers()), used_bytes(a.views())).then(|| Arc::new(a.gc()) as ArrayRef)
        }
        DataType::BinaryView => {
            let a = column.as_binary_view();
            wasteful(held_bytes(a.data_buffers()), used_bytes(a.views())).then(|| Arc::new(a.gc()) as ArrayRef)
        }
        DataType::List(field) => {
            let list = column.as_list::<i32>();
            let offsets = list.offsets();
            let (start, end) = (offsets[0] as usize, offsets[list.len()] as usize);
            let values = list.values().slice(start, end - start);
            let values = compact(&values)?.unwrap_or(values);
            let rebased = OffsetBuffer::new(offsets.iter().map(|o| o - offsets[0]).collect::<ScalarBuffer<i32>>());
            let copy = ListArray::try_new(field.clone(), rebased, values, list.nulls().cloned())?;
            wasteful(column.get_array_memory_size(), copy.get_array_memory_size()).then(|| Arc::new(copy) as ArrayRef)
        }
        t if t.is_primitive()
            || matches!(
                t,
                DataType::Boolean | DataType::Utf8 | DataType::LargeUtf8 | DataType::Binary | DataType::LargeBinary
            ) =>
        {
            // Exact for these layouts: what new buffers holding just this slice would take.
            let used = column.to_data().get_slice_memory_size()?;
            if wasteful(column.get_buffer_memory_size(), used) {
                let all = UInt32Array::from_iter_values(0..column.len() as u32);
                Some(take(column.as_ref(), &all, None)?)
            } else {
                None
            }
        }
        _ => None,
    })
}

fn compact_batch(batch: RecordBatch) -> Result<(RecordBatch, usize)> {
    let mut rewritten = 0;
    let mut columns = Vec::with_capacity(batch.num_columns());
    for column in batch.columns() {
        match compact(column)? {
            Some(new) => {
                rewritten += 1;
                columns.push(new);
            }
            None => columns.push(column.clone()),
        }
    }
    if rewritten == 0 {
        return Ok((batch, 0));
    }
    Ok((RecordBatch::try_new(batch.schema(), columns)?, rewritten))
}

/// Passes batches on with their columns compacted where they hold much more than they use.
pub struct CompactBatchesExec {
    input: Arc<dyn ExecutionPlan>,
    metrics: ExecutionPlanMetricsSet,
}

impl CompactBatchesExec {
    pub fn new(input: Arc<dyn ExecutionPlan>) -> Self {
        Self { input, metrics: ExecutionPlanMetricsSet::new() }
    }
}

impl fmt::Debug for CompactBatchesExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CompactBatchesExec")
    }
}

impl DisplayAs for CompactBatchesExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("CompactBatchesExec")
    }
}

impl ExecutionPlan for CompactBatchesExec {
    fn name(&self) -> &str {
        "CompactBatchesExec"
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
            .map_err(|_| DataFusionError::Internal("CompactBatchesExec takes one input".into()))?;
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
    use arrow::array::{Int64Array, ListBuilder, StringArray, StringViewArray, StringViewBuilder};
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
        let fresh = StringViewArray::from_iter_values((0..20_000).map(long));
        let column: ArrayRef = Arc::new(fresh.clone());
        assert!(compact(&column).unwrap().is_none(), "a fresh array uses all of its buffer");

        let slice: ArrayRef = Arc::new(fresh.slice(10, 20));
        let compacted = compact(&slice).unwrap().expect("twenty values of a 20,000-value buffer");
        let compacted = compacted.as_string_view();
        assert_eq!(compacted.iter().collect::<Vec<_>>(), fresh.slice(10, 20).iter().collect::<Vec<_>>());
        assert!(held_bytes(compacted.data_buffers()) <= 2 * used_bytes(compacted.views()));

        // Short values are inline: nothing outside the views to keep.
        let short: ArrayRef =
            Arc::new(StringViewArray::from_iter_values((0..20_000).map(|i| format!("{i}"))).slice(0, 5));
        assert!(compact(&short).unwrap().is_none());
    }

    #[test]
    fn slices_of_an_aggregates_emission_are_copied_out() {
        // An aggregate's output, handed on in slices of the batch size.
        let emitted: ArrayRef = Arc::new(Int64Array::from_iter((0..100_000).map(|i| (i % 7 != 0).then_some(i))));
        assert!(compact(&emitted).unwrap().is_none());
        let slice = emitted.slice(8192, 8192);
        let copy = compact(&slice).unwrap().expect("a slice of an 800 KB buffer");
        assert_eq!(copy.as_ref(), slice.as_ref());
        assert!(copy.get_array_memory_size() < slice.get_array_memory_size() / 5);

        let strings: ArrayRef = Arc::new(StringArray::from_iter_values((0..50_000).map(long)));
        let slice = strings.slice(100, 1000);
        let copy = compact(&slice).unwrap().expect("a slice of a 1 MB string buffer");
        assert_eq!(copy.as_ref(), slice.as_ref());
    }

    #[test]
    fn lists_are_rebased_and_their_strings_compacted() {
        // `array_agg` of strings: lists whose values are views into shared buffers.
        let mut builder = ListBuilder::new(StringViewBuilder::new());
        for i in 0..20_000 {
            for j in 0..(i % 3) {
                builder.values().append_value(long(i * 3 + j));
            }
            builder.append(i % 11 != 0);
        }
        let lists: ArrayRef = Arc::new(builder.finish());
        assert!(compact(&lists).unwrap().is_none());
        let slice = lists.slice(5_000, 300);
        let copy = compact(&slice).unwrap().expect("300 lists of 20,000");
        assert_eq!(copy.as_ref(), slice.as_ref());
        let copy = copy.as_list::<i32>();
        assert_eq!(copy.offsets()[0], 0);
        assert!(copy.get_array_memory_size() < slice.get_array_memory_size() / 5);
    }

    #[tokio::test]
    async fn full_sorts_over_view_columns_get_compacted_input_with_the_same_answer() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("session", DataType::Utf8View, false),
            Field::new("n", DataType::Int64, false),
        ]));
        let sessions = StringViewArray::from_iter_values((0..8000).map(|i| long(i * 7919 % 8000)));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(sessions), Arc::new(Int64Array::from_iter_values(0..8000))],
        )
        .unwrap();
        // Many small slices of one batch: each pins the whole buffer, as gathered rows do.
        let parts: Vec<Vec<RecordBatch>> = vec![(0..80).map(|k| batch.slice(k * 100, 100)).collect()];
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
        assert!(physical.contains("CompactBatchesExec"), "{physical}");
        // A hash join's build side is compacted too; its probe side streams through.
        let join_sql = "SELECT a.session, b.n FROM t a JOIN t b ON a.session = b.session AND a.n = b.n";
        let join = compacting_plan(&context(true), join_sql).await;
        let lines: Vec<&str> = join.lines().collect();
        let at = lines.iter().position(|l| l.contains("HashJoinExec")).unwrap_or_else(|| panic!("{join}"));
        assert!(lines[at + 1].contains("CompactBatchesExec"), "{join}");
        assert_eq!(join.matches("CompactBatchesExec").count(), 1, "{join}");
        let (a, b) = (context(false), context(true));
        let joined = |ctx: SessionContext| async move { ctx.sql(join_sql).await.unwrap().collect().await.unwrap() };
        let rows = |batches: Vec<RecordBatch>| batches.iter().map(RecordBatch::num_rows).sum::<usize>();
        assert_eq!((rows(joined(a).await), rows(joined(b).await)), (8000, 8000));
        // A top-k sort is left alone.
        let topk = compacting_plan(&context(true), "SELECT session FROM t ORDER BY session LIMIT 3").await;
        assert!(!topk.contains("CompactBatchesExec"), "{topk}");
    }

    async fn compacting_plan(ctx: &SessionContext, sql: &str) -> String {
        let plan = ctx.sql(sql).await.unwrap().create_physical_plan().await.unwrap();
        let text = displayable(plan.as_ref()).indent(true).to_string();
        text
    }
}
