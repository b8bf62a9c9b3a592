//! Window functions over input already sorted by partition (and order) keys, computed a whole batch
//! at a time: `row_number`, `lead` and `lag`, and aggregates whose frame is the whole partition
//! (`count(*) OVER (PARTITION BY session_id)`, `min`, `max`, `sum`, `bool_or`, `first_value`,
//! `last_value`, ...).
//!
//! Dashboards and the brief's views ask window questions per session (entry and exit pages,
//! page-to-page transitions, a session's length and span): many partitions of a few rows each.
//! DataFusion's `BoundedWindowAggExec` keeps state, buffers and output arrays per partition, which
//! costs about a microsecond and a half per session, more than the sort before it; its
//! `WindowAggExec` (whole-partition frames) creates an accumulator and slices every column per
//! partition and function, ≈ 1 µs each: 1.4 s of the `pageviews` view's 1.9 s over one site's 1.1M
//! page views. Over sorted input these functions need only the partition boundaries:
//! [`SortedWindowExec`] finds them once per batch (row-encoded keys) and fills each result column in
//! one pass, an aggregate through its `GroupsAccumulator` with one group per partition, as a
//! GROUP BY would. [`SortedWindowRule`] swaps it in for a `BoundedWindowAggExec` in sorted mode or a
//! `WindowAggExec` whose functions it all computes; every other window keeps DataFusion's operator.
//!
//! A partition may run on into the next batch, so the rows of the last partition of each batch are
//! held back until a batch starts with another key (or the input ends).

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, UInt32Array, UInt64Array};
use arrow::compute::kernels::zip::zip;
use arrow::compute::{cast, concat_batches, is_null, take};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::row::{OwnedRow, RowConverter, Rows, SortField};
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::config::ConfigOptions;
use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{EmitTo, WindowFrameBound, WindowFrameUnits};
use datafusion::physical_expr::expressions::Literal;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr_common::sort_expr::OrderingRequirements;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::windows::{
    BoundedWindowAggExec, PlainAggregateWindowExpr, StandardWindowExpr, WindowAggExec, WindowExpr, WindowUDFExpr,
};
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, InputOrderMode, PlanProperties,
    ReplaceChildrenOptions,
};
use futures::{Stream, StreamExt};

/// One window function this operator computes.
#[derive(Debug, Clone)]
enum SortedWindowFunction {
    RowNumber,
    /// `lead` (positive offset) or `lag` (negative offset) of `value`, `default` where the offset
    /// leaves the partition.
    Shift {
        value: Arc<dyn PhysicalExpr>,
        offset: i64,
        default: ScalarValue,
        output: DataType,
    },
    /// `first_value` or `last_value` over the whole partition: the value on its first or last row.
    Edge {
        value: Arc<dyn PhysicalExpr>,
        last: bool,
        output: DataType,
    },
    /// Any other aggregate over the whole partition, one group per partition.
    Aggregate {
        expr: Arc<dyn WindowExpr>,
        output: DataType,
    },
}

impl SortedWindowFunction {
    /// The function behind a window expression, if it is one this operator computes exactly as
    /// DataFusion would.
    fn recognise(expr: &Arc<dyn WindowExpr>) -> Option<Self> {
        if let Some(plain) = expr.as_any().downcast_ref::<PlainAggregateWindowExpr>() {
            return Self::recognise_aggregate(expr, plain);
        }
        let standard = expr.as_any().downcast_ref::<StandardWindowExpr>()?;
        let udf = standard.get_standard_func_expr().as_any().downcast_ref::<WindowUDFExpr>()?;
        let name = udf.fun().name();
        // A window DataFusion reversed (to reuse an opposite sort) evaluates `lag` for a written
        // `lead` with its offset negated internally, or `first_value` for a written `last_value`;
        // its display name still says what was written.
        // IGNORE NULLS changes which rows `lead`/`lag` reach. Both stay with DataFusion.
        let display = expr.name();
        if !display.starts_with(&format!("{name}(")) || display.contains("IGNORE NULLS") {
            return None;
        }
        match (name, udf.args()) {
            ("row_number", []) => Some(Self::RowNumber),
            ("first_value" | "last_value", [value]) if Self::sees_whole_partition(expr) => {
                let output = expr.field().ok()?.data_type().clone();
                Some(Self::Edge { value: value.clone(), last: name == "last_value", output })
            }
            ("lead" | "lag", [value, rest @ ..]) if rest.len() <= 2 => {
                let literal = |e: &Arc<dyn PhysicalExpr>| e.downcast_ref::<Literal>().map(|l| l.value().clone());
                let offset = match rest.first() {
                    None => 1,
                    Some(e) => match literal(e)?.cast_to(&DataType::Int64).ok()? {
                        ScalarValue::Int64(Some(v)) => v,
                        _ => return None,
                    },
                };
                let output = expr.field().ok()?.data_type().clone();
                let default = match rest.get(1) {
                    None => ScalarValue::try_from(&output).ok()?,
                    Some(e) => literal(e)?.cast_to(&output).ok()?,
                };
                let offset = if name == "lead" { offset } else { offset.checked_neg()? };
                Some(Self::Shift { value: value.clone(), offset, default, output })
            }
            _ => None,
        }
    }

    /// Whether every row's frame is its whole partition.
    fn sees_whole_partition(expr: &Arc<dyn WindowExpr>) -> bool {
        let frame = expr.get_window_frame();
        let whole = |bound: &WindowFrameBound| match bound {
            // `RANGE ... CURRENT ROW` without ORDER BY: every row is a peer of every other.
            WindowFrameBound::CurrentRow => frame.units == WindowFrameUnits::Range && expr.order_by().is_empty(),
            other => other.is_unbounded(),
        };
        whole(&frame.start_bound) && whole(&frame.end_bound)
    }

    /// An aggregate (`count`, `sum`, `min`, ...) over the whole partition, which its
    /// `GroupsAccumulator` computes as a GROUP BY would.
    fn recognise_aggregate(expr: &Arc<dyn WindowExpr>, plain: &PlainAggregateWindowExpr) -> Option<Self> {
        let aggregate = plain.get_aggregate_expr();
        // The FILTER of a window aggregate is private to DataFusion's expression; its display name
        // says whether there is one, and such windows stay with DataFusion. So do aggregates whose
        // answer depends on the order rows arrive in.
        let ok = Self::sees_whole_partition(expr)
            && !expr.name().contains(" FILTER (WHERE ")
            && !aggregate.is_distinct()
            && !aggregate.ignore_nulls()
            && aggregate.order_bys().is_empty()
            && !matches!(
                aggregate.fun().name(),
                "first_value" | "last_value" | "nth_value" | "array_agg" | "string_agg"
            )
            && aggregate.groups_accumulator_supported();
        let output = expr.field().ok()?.data_type().clone();
        ok.then(|| Self::Aggregate { expr: expr.clone(), output })
    }

    fn evaluate(&self, batch: &RecordBatch, partitions: &[(usize, usize)]) -> Result<ArrayRef> {
        match self {
            Self::RowNumber => {
                let mut numbers = Vec::with_capacity(batch.num_rows());
                for &(start, end) in partitions {
                    numbers.extend(1..=(end - start) as u64);
                }
                Ok(Arc::new(UInt64Array::from(numbers)))
            }
            Self::Shift { value, offset, default, output } => {
                let values = value.evaluate(batch)?.into_array(batch.num_rows())?;
                let mut indices = Vec::with_capacity(batch.num_rows());
                for &(start, end) in partitions {
                    for row in start..end {
                        let target = row as i64 + offset;
                        indices.push((target >= start as i64 && target < end as i64).then_some(target as u64));
                    }
                }
                let indices = UInt64Array::from(indices);
                let mut shifted = take(values.as_ref(), &indices, None)?;
                if shifted.data_type() != output {
                    shifted = cast(&shifted, output)?;
                }
                if default.is_null() {
                    return Ok(shifted);
                }
                let outside: BooleanArray = is_null(&indices)?;
                Ok(zip(&outside, &default.to_scalar()?, &shifted)?)
            }
            Self::Edge { value, last, output } => {
                let values = value.evaluate(batch)?.into_array(batch.num_rows())?;
                let mut indices = Vec::with_capacity(batch.num_rows());
                for &(start, end) in partitions {
                    let row = if *last { end - 1 } else { start };
                    indices.extend(std::iter::repeat_n(row as u64, end - start));
                }
                let picked = take(values.as_ref(), &UInt64Array::from(indices), None)?;
                Ok(if picked.data_type() == output { picked } else { cast(&picked, output)? })
            }
            Self::Aggregate { expr, output } => {
                let plain = expr
                    .as_any()
                    .downcast_ref::<PlainAggregateWindowExpr>()
                    .ok_or_else(|| DataFusionError::Internal("SortedWindowExec: not an aggregate window".into()))?;
                let mut group_of_row = Vec::with_capacity(batch.num_rows());
                for (group, &(start, end)) in partitions.iter().enumerate() {
                    group_of_row.extend(std::iter::repeat_n(group, end - start));
                }
                let args = expr.evaluate_args(batch)?;
                let mut accumulator = plain.get_aggregate_expr().create_groups_accumulator()?;
                accumulator.update_batch(&args, &group_of_row, None, partitions.len())?;
                let per_partition = accumulator.evaluate(EmitTo::All)?;
                let indices = UInt32Array::from_iter_values(group_of_row.iter().map(|&g| g as u32));
                let spread = take(per_partition.as_ref(), &indices, None)?;
                Ok(if spread.data_type() == output { spread } else { cast(&spread, output)? })
            }
        }
    }
}

/// Computes the window columns of a `BoundedWindowAggExec` or `WindowAggExec` (kept for its plan
/// properties and requirements, which are unchanged) without its per-partition state.
#[derive(Debug)]
pub struct SortedWindowExec {
    /// The window operator this replaces.
    replaced: Arc<dyn ExecutionPlan>,
    input: Arc<dyn ExecutionPlan>,
    window_exprs: Vec<Arc<dyn WindowExpr>>,
    functions: Vec<SortedWindowFunction>,
    partition_by: Vec<Arc<dyn PhysicalExpr>>,
    metrics: ExecutionPlanMetricsSet,
}

impl SortedWindowExec {
    /// `None` unless every window function of `node` is one this operator computes and its input
    /// is sorted by the partition keys (a `WindowAggExec` requires that of its input).
    pub fn try_replace(node: &Arc<dyn ExecutionPlan>) -> Option<Self> {
        let (window_exprs, input) = if let Some(window) = node.downcast_ref::<BoundedWindowAggExec>() {
            if window.input_order_mode != InputOrderMode::Sorted {
                return None;
            }
            (window.window_expr(), window.input())
        } else {
            let window = node.downcast_ref::<WindowAggExec>()?;
            (window.window_expr(), window.input())
        };
        let partition_by = window_exprs.first()?.partition_by().to_vec();
        if partition_by.is_empty() {
            return None;
        }
        let mut functions = Vec::with_capacity(window_exprs.len());
        for expr in window_exprs {
            if expr.partition_by() != partition_by.as_slice() {
                return None;
            }
            functions.push(SortedWindowFunction::recognise(expr)?);
        }
        Some(Self {
            replaced: node.clone(),
            input: input.clone(),
            window_exprs: window_exprs.to_vec(),
            functions,
            partition_by,
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }

    fn input(&self) -> &Arc<dyn ExecutionPlan> {
        &self.input
    }
}

impl DisplayAs for SortedWindowExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let names: Vec<&str> = self.window_exprs.iter().map(|e| e.name()).collect();
        write!(f, "SortedWindowExec: wdw=[{}]", names.join(", "))
    }
}

impl ExecutionPlan for SortedWindowExec {
    fn name(&self) -> &str {
        "SortedWindowExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.replaced.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![self.input()]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.replaced.apply_expressions(f)
    }

    #[allow(deprecated)]
    fn required_input_distribution(&self) -> Vec<Distribution> {
        self.replaced.required_input_distribution()
    }

    fn input_distribution_requirements(&self) -> datafusion::physical_plan::InputDistributionRequirements {
        self.replaced.input_distribution_requirements()
    }

    fn required_input_ordering(&self) -> Vec<Option<OrderingRequirements>> {
        self.replaced.required_input_ordering()
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        let options = ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute);
        let window = self.replaced.clone().replace_children(children, options)?;
        let exec = Self::try_replace(&window)
            .ok_or_else(|| DataFusionError::Internal("SortedWindowExec: new input is not sorted".into()))?;
        Ok(Arc::new(exec))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let input = self.input().execute(partition, context)?;
        let key_fields = self
            .partition_by
            .iter()
            .map(|e| Ok(SortField::new(e.data_type(&self.input().schema())?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Box::pin(SortedWindowStream {
            input,
            schema: self.schema(),
            functions: self.functions.clone(),
            partition_by: self.partition_by.clone(),
            keys: RowConverter::new(key_fields)?,
            held: Vec::new(),
            held_key: None,
            finished: false,
            baseline: BaselineMetrics::new(&self.metrics, partition),
        }))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

struct SortedWindowStream {
    input: SendableRecordBatchStream,
    schema: SchemaRef,
    functions: Vec<SortedWindowFunction>,
    partition_by: Vec<Arc<dyn PhysicalExpr>>,
    keys: RowConverter,
    /// Rows of the partition that may continue in the next batch, and its key.
    held: Vec<RecordBatch>,
    held_key: Option<OwnedRow>,
    finished: bool,
    baseline: BaselineMetrics,
}

impl SortedWindowStream {
    fn key_rows(&self, batch: &RecordBatch) -> Result<Rows> {
        let columns = self
            .partition_by
            .iter()
            .map(|e| e.evaluate(batch)?.into_array(batch.num_rows()))
            .collect::<Result<Vec<_>>>()?;
        Ok(self.keys.convert_columns(&columns)?)
    }

    /// Takes in one input batch; returns the output for the partitions it completes.
    fn push(&mut self, batch: RecordBatch) -> Result<Option<RecordBatch>> {
        let rows = batch.num_rows();
        if rows == 0 {
            return Ok(None);
        }
        let keys = self.key_rows(&batch)?;
        let last_start = (1..rows).rev().find(|&i| keys.row(i) != keys.row(i - 1)).unwrap_or(0);
        let continues = self.held_key.as_ref().is_some_and(|k| k.row() == keys.row(0));
        if last_start == 0 && continues {
            self.held.push(batch);
            return Ok(None);
        }
        let mut complete = std::mem::take(&mut self.held);
        if last_start > 0 {
            complete.push(batch.slice(0, last_start));
        }
        self.held = vec![batch.slice(last_start, rows - last_start)];
        self.held_key = Some(keys.row(last_start).owned());
        self.evaluate(&complete)
    }

    fn finish(&mut self) -> Result<Option<RecordBatch>> {
        let held = std::mem::take(&mut self.held);
        self.held_key = None;
        self.evaluate(&held)
    }

    /// Window columns for whole partitions.
    fn evaluate(&self, batches: &[RecordBatch]) -> Result<Option<RecordBatch>> {
        if batches.iter().all(|b| b.num_rows() == 0) {
            return Ok(None);
        }
        let batch = concat_batches(&self.input.schema(), batches)?;
        let keys = self.key_rows(&batch)?;
        let mut partitions = Vec::new();
        let mut start = 0;
        for row in 1..batch.num_rows() {
            if keys.row(row) != keys.row(row - 1) {
                partitions.push((start, row));
                start = row;
            }
        }
        partitions.push((start, batch.num_rows()));
        let mut columns = batch.columns().to_vec();
        for function in &self.functions {
            columns.push(function.evaluate(&batch, &partitions)?);
        }
        Ok(Some(RecordBatch::try_new(self.schema.clone(), columns)?))
    }
}

impl Stream for SortedWindowStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if self.finished {
                return Poll::Ready(None);
            }
            let polled = match self.input.poll_next_unpin(cx) {
                Poll::Ready(polled) => polled,
                Poll::Pending => return Poll::Pending,
            };
            let elapsed = self.baseline.elapsed_compute().clone();
            let timer = elapsed.timer();
            let output = match polled {
                Some(Ok(batch)) => self.push(batch),
                Some(Err(e)) => Err(e),
                None => {
                    self.finished = true;
                    let last = self.finish();
                    self.baseline.done();
                    last
                }
            };
            timer.done();
            match output {
                Ok(Some(batch)) => {
                    self.baseline.record_output(batch.num_rows());
                    return Poll::Ready(Some(Ok(batch)));
                }
                Ok(None) => continue,
                Err(e) => {
                    self.finished = true;
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    }
}

impl RecordBatchStream for SortedWindowStream {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

/// Replaces each `BoundedWindowAggExec` that [`SortedWindowExec`] can compute. Runs last, just before
/// DataFusion's sanity check, so the sorts and repartitions the window asked for are in place.
#[derive(Debug, Default)]
pub struct SortedWindowRule;

impl PhysicalOptimizerRule for SortedWindowRule {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            Ok(match SortedWindowExec::try_replace(&node) {
                Some(exec) => Transformed::yes(Arc::new(exec) as Arc<dyn ExecutionPlan>),
                None => Transformed::no(node),
            })
        })
        .data()
    }

    fn name(&self) -> &str {
        "sorted_window"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// DataFusion's default physical rules with [`SortedWindowRule`] before the final sanity check.
pub fn physical_optimizer_rules() -> Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> {
    let mut rules = datafusion::physical_optimizer::optimizer::PhysicalOptimizer::new().rules;
    crate::physical_rules::insert_before(&mut rules, "SanityCheckPlan", Arc::new(SortedWindowRule));
    rules
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::util::pretty::pretty_format_batches;
    use datafusion::datasource::MemTable;
    use datafusion::execution::SessionStateBuilder;
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::{SessionConfig, SessionContext};

    /// Partitions of 1 to 9 rows, some keys null, values with nulls, in batches of 7 rows so
    /// partitions run across batches, over two input partitions.
    fn table() -> Arc<MemTable> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("t", DataType::Int64, false),
            Field::new("v", DataType::Utf8, true),
        ]));
        let mut rows = Vec::new();
        for key in 0..40i64 {
            for t in 0..(key * 7 % 9 + 1) {
                let k = (key % 13 != 0).then(|| format!("k{key}"));
                let v = ((key + t) % 5 != 0).then(|| format!("v{}", (key * 31 + t * 17) % 23));
                rows.push((k, (t * 37 + key) % 50, v));
            }
        }
        let batches: Vec<RecordBatch> = rows
            .chunks(7)
            .map(|chunk| {
                let k: StringArray = chunk.iter().map(|r| r.0.clone()).collect();
                let t: Int64Array = chunk.iter().map(|r| Some(r.1)).collect();
                let v: StringArray = chunk.iter().map(|r| r.2.clone()).collect();
                RecordBatch::try_new(schema.clone(), vec![Arc::new(k), Arc::new(t), Arc::new(v)]).expect("batch")
            })
            .collect();
        let (left, right) = batches.split_at(batches.len() / 2);
        Arc::new(MemTable::try_new(schema, vec![left.to_vec(), right.to_vec()]).expect("table"))
    }

    fn context(with_rule: bool) -> SessionContext {
        let config = SessionConfig::new().with_batch_size(5).with_target_partitions(3);
        let mut builder = SessionStateBuilder::new().with_config(config).with_default_features();
        if with_rule {
            builder = builder.with_physical_optimizer_rules(super::physical_optimizer_rules());
        }
        let ctx = SessionContext::new_with_state(builder.build());
        ctx.register_table("w", table()).expect("register");
        ctx
    }

    async fn plan_and_answer(ctx: &SessionContext, sql: &str) -> (String, String) {
        let df = ctx.sql(sql).await.expect("plan");
        let plan = df.clone().create_physical_plan().await.expect("physical plan");
        let plan = displayable(plan.as_ref()).indent(false).to_string();
        let batches = df.collect().await.expect("run");
        (plan, pretty_format_batches(&batches).expect("format").to_string())
    }

    const ORDER: &str = "ORDER BY k NULLS FIRST, t, v NULLS FIRST";

    #[tokio::test]
    async fn answers_match_datafusions_window() {
        let queries = [
            format!("SELECT k, t, v, row_number() OVER (PARTITION BY k ORDER BY t, v) AS rn FROM w {ORDER}"),
            format!(
                "SELECT k, t, v, lead(v) OVER (PARTITION BY k ORDER BY t, v) AS nx, \
                 lag(v) OVER (PARTITION BY k ORDER BY t, v) AS pv FROM w {ORDER}"
            ),
            format!(
                "SELECT k, t, v, lead(v, 2, 'none') OVER (PARTITION BY k ORDER BY t DESC, v) AS a, \
                 lag(t, 3) OVER (PARTITION BY k ORDER BY t DESC, v) AS b, \
                 lead(t, -1, -5) OVER (PARTITION BY k ORDER BY t DESC, v) AS c FROM w {ORDER}"
            ),
            format!(
                "SELECT k, t, v, row_number() OVER (PARTITION BY k, t % 2 ORDER BY t, v NULLS FIRST) AS rn FROM w {ORDER}"
            ),
            "SELECT v, count(*) AS n FROM (SELECT v, row_number() OVER (PARTITION BY k ORDER BY t DESC, v DESC) AS rn \
             FROM w) x WHERE rn = 1 GROUP BY v ORDER BY n DESC, v NULLS FIRST"
                .to_string(),
            "SELECT v, nx, count(*) AS n FROM (SELECT v, lead(v) OVER (PARTITION BY k ORDER BY t, v) AS nx FROM w) x \
             WHERE nx IS NOT NULL GROUP BY v, nx ORDER BY n DESC, v, nx LIMIT 20"
                .to_string(),
            // Aggregates over the whole partition (DataFusion's WindowAggExec).
            format!(
                "SELECT k, t, v, count(*) OVER (PARTITION BY k) AS n, count(v) OVER (PARTITION BY k) AS nv, \
                 min(t) OVER (PARTITION BY k) AS lo, max(v) OVER (PARTITION BY k) AS hi, \
                 sum(t) OVER (PARTITION BY k) AS s, avg(t) OVER (PARTITION BY k) AS a, \
                 bool_or(t > 30) OVER (PARTITION BY k) AS b FROM w {ORDER}"
            ),
            format!(
                "SELECT k, t, v, \
                 first_value(v) OVER (PARTITION BY k ORDER BY t, v ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS f, \
                 last_value(v) OVER (PARTITION BY k ORDER BY t, v ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS l, \
                 last_value(t) OVER (PARTITION BY k ORDER BY t DESC, v RANGE BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS lt, \
                 max(t) OVER (PARTITION BY k ORDER BY t, v ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS m, \
                 row_number() OVER (PARTITION BY k ORDER BY t, v ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS rn \
                 FROM w {ORDER}"
            ),
            format!(
                "SELECT k, t, v, count(*) OVER (PARTITION BY k, t % 2) AS n, sum(t) OVER (PARTITION BY k, t % 2) AS s \
                 FROM w {ORDER}"
            ),
            "SELECT n, count(*) AS c FROM (SELECT count(*) OVER (PARTITION BY k) AS n, \
             min(v) OVER (PARTITION BY k) AS lo FROM w) x WHERE lo IS NOT NULL GROUP BY n ORDER BY n"
                .to_string(),
        ];
        let (plain, rewritten) = (context(false), context(true));
        for sql in &queries {
            let (plain_plan, expected) = plan_and_answer(&plain, sql).await;
            let (plan, answer) = plan_and_answer(&rewritten, sql).await;
            assert!(!plain_plan.contains("SortedWindowExec"), "{plain_plan}");
            assert!(plan.contains("SortedWindowExec"), "{sql}\n{plan}");
            assert!(!plan.contains("WindowAggExec"), "{sql}\n{plan}");
            assert_eq!(expected, answer, "{sql}");
        }
    }

    #[tokio::test]
    async fn other_windows_keep_datafusions_operator() {
        let queries = [
            // not one of the three functions
            "SELECT k, rank() OVER (PARTITION BY k ORDER BY t) FROM w",
            "SELECT k, sum(t) OVER (PARTITION BY k ORDER BY t) FROM w",
            // mixed with a function it does not compute
            "SELECT k, row_number() OVER (PARTITION BY k ORDER BY t), first_value(v) OVER (PARTITION BY k ORDER BY t) FROM w",
            // no partition
            "SELECT row_number() OVER (ORDER BY t) FROM w",
            // nulls skipped
            "SELECT lead(v) IGNORE NULLS OVER (PARTITION BY k ORDER BY t) FROM w",
            // frames that are not the whole partition
            "SELECT k, sum(t) OVER (PARTITION BY k ORDER BY t ROWS BETWEEN 1 PRECEDING AND UNBOUNDED FOLLOWING) FROM w",
            "SELECT k, last_value(v) OVER (PARTITION BY k ORDER BY t) FROM w",
            "SELECT k, first_value(v) IGNORE NULLS OVER (PARTITION BY k ORDER BY t \
             ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) FROM w",
            // whole partition, but no partition key
            "SELECT count(*) OVER () FROM w",
            // a filtered aggregate
            "SELECT k, count(*) FILTER (WHERE t > 10) OVER (PARTITION BY k) FROM w",
        ];
        let ctx = context(true);
        for sql in queries {
            let (plan, _) = plan_and_answer(&ctx, sql).await;
            assert!(!plan.contains("SortedWindowExec"), "{sql}\n{plan}");
        }
    }
}
