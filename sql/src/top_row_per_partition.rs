//! Plans "the first row of each partition" — `row_number() OVER (PARTITION BY p ORDER BY k) = 1` —
//! as `GROUP BY p` with a [`first_row`](crate::first_row) of each other column, instead of sorting
//! every row by `(p, k)` and numbering them.
//!
//! Entry and exit pages are asked this way (the first and last page view of each session). The
//! window plan hash-partitions the page views by session, sorts each partition by session and time
//! and numbers the rows; at 10M events that sort alone is 83 ms of CPU. The aggregate hashes each
//! row once and keeps one row per session.
//!
//! Only `row_number` qualifies (`rank` and `dense_rank` keep every tie), only with a PARTITION BY
//! (over no partition the window yields no row for no input, an aggregate without GROUP BY yields
//! one), and only under a filter that keeps exactly the rows numbered 1. Ties in the order keys
//! leave either plan free to pick any of the tied rows; `first_row` picks one row per group for all
//! columns alike, since every column's aggregate sees the same rows in the same order.

use std::sync::Arc;

use arrow::compute::SortOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, Result, ScalarValue};
use datafusion::logical_expr::expr::{AggregateFunction, WindowFunction, WindowFunctionParams};
use datafusion::logical_expr::utils::{conjunction, split_conjunction_owned};
use datafusion::logical_expr::{
    lit, Aggregate, BinaryExpr, Expr, Filter, LogicalPlan, Operator, Projection, Window, WindowFunctionDefinition,
};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

/// DataFusion's rule after which this one is placed: by then the `= 1` filter sits right on the
/// window.
const AFTER_RULE: &str = "push_down_filter";

#[derive(Debug, Default)]
pub struct TopRowPerPartition;

/// Inserts [`TopRowPerPartition`] into `rules` right after DataFusion's filter pushdown.
pub fn add_to(rules: &mut Vec<Arc<dyn OptimizerRule + Send + Sync>>) {
    let at = rules.iter().position(|r| r.name() == AFTER_RULE).map_or(rules.len(), |i| i + 1);
    rules.insert(at, Arc::new(TopRowPerPartition));
}

/// The window's one function, when it is `row_number()` over a PARTITION BY of distinct columns
/// with an ORDER BY.
fn row_number_params(window: &Window) -> Option<&WindowFunctionParams> {
    let [expr] = window.window_expr.as_slice() else {
        return None;
    };
    let Expr::WindowFunction(function) = expr else {
        return None;
    };
    let WindowFunction { fun: WindowFunctionDefinition::WindowUDF(udf), params } = function.as_ref() else {
        return None;
    };
    let plain = udf.name() == "row_number"
        && params.args.is_empty()
        && params.filter.is_none()
        && !params.distinct
        && !params.partition_by.is_empty()
        && !params.order_by.is_empty();
    let mut keys = Vec::with_capacity(params.partition_by.len());
    for key in &params.partition_by {
        let Expr::Column(column) = key else {
            return None;
        };
        if keys.contains(&column) {
            return None;
        }
        keys.push(column);
    }
    plain.then_some(params)
}

/// Whether `predicate` keeps exactly the rows where the column named `number` is 1:
/// `n = 1`, `n <= 1` or `n < 2`, either way round, `n` possibly cast.
fn keeps_number_one(predicate: &Expr, number: &str) -> bool {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = predicate else {
        return false;
    };
    let (column, op, value) = match (strip_casts(left), strip_casts(right)) {
        (Expr::Column(c), Expr::Literal(v, _)) => (c, *op, v),
        (Expr::Literal(v, _), Expr::Column(c)) => match op.swap() {
            Some(op) => (c, op, v),
            None => return false,
        },
        _ => return false,
    };
    if column.relation.is_some() || column.name != number {
        return false;
    }
    let Ok(ScalarValue::Int64(Some(value))) = value.cast_to(&arrow::datatypes::DataType::Int64) else {
        return false;
    };
    matches!((op, value), (Operator::Eq, 1) | (Operator::LtEq, 1) | (Operator::Lt, 2))
}

fn strip_casts(expr: &Expr) -> &Expr {
    match expr {
        Expr::Cast(cast) => strip_casts(&cast.expr),
        Expr::TryCast(cast) => strip_casts(&cast.expr),
        other => other,
    }
}

impl OptimizerRule for TopRowPerPartition {
    fn name(&self) -> &str {
        "top_row_per_partition"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(&self, plan: LogicalPlan, _config: &dyn OptimizerConfig) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Filter(Filter { predicate, input: filter_input, .. }) = &plan else {
            return Ok(Transformed::no(plan));
        };
        let LogicalPlan::Window(window) = filter_input.as_ref() else {
            return Ok(Transformed::no(plan));
        };
        let Some(params) = row_number_params(window) else {
            return Ok(Transformed::no(plan));
        };
        let input_len = window.input.schema().fields().len();
        let number = window.schema.field(input_len).name().clone();
        let mut conjuncts = split_conjunction_owned(predicate.clone());
        let Some(at) = conjuncts.iter().position(|c| keeps_number_one(c, &number)) else {
            return Ok(Transformed::no(plan));
        };
        conjuncts.remove(at);

        let keys: Vec<Expr> = params.order_by.iter().map(|s| s.expr.clone()).collect();
        let options: Vec<SortOptions> =
            params.order_by.iter().map(|s| SortOptions { descending: !s.asc, nulls_first: s.nulls_first }).collect();
        let first_row = Arc::new(crate::first_row::first_row(options));
        let partition: Vec<&Expr> = params.partition_by.iter().collect();

        let input_schema = window.input.schema();
        let mut aggregates = Vec::with_capacity(input_len);
        for (qualifier, field) in input_schema.iter() {
            let column = Expr::Column(Column::from((qualifier, field)));
            if partition.contains(&&column) {
                continue;
            }
            let mut args = Vec::with_capacity(keys.len() + 1);
            args.push(column);
            args.extend(keys.iter().cloned());
            let aggregate = AggregateFunction::new_udf(Arc::clone(&first_row), args, false, None, vec![], None);
            aggregates.push(Expr::AggregateFunction(aggregate).alias_qualified(qualifier.cloned(), field.name()));
        }
        let aggregate = Aggregate::try_new(Arc::clone(&window.input), params.partition_by.clone(), aggregates)?;

        let mut projection: Vec<Expr> = input_schema.iter().map(|(q, f)| Expr::Column(Column::from((q, f)))).collect();
        projection.push(lit(ScalarValue::UInt64(Some(1))).alias(number));
        let mut rewritten =
            LogicalPlan::Projection(Projection::try_new(projection, Arc::new(LogicalPlan::Aggregate(aggregate)))?);
        if let Some(rest) = conjunction(conjuncts) {
            rewritten = LogicalPlan::Filter(Filter::try_new(rest, Arc::new(rewritten))?);
        }
        Ok(Transformed::yes(rewritten))
    }
}

#[cfg(test)]
mod tests {
    use crate::rule_tests::{answer, context, optimized};

    #[tokio::test]
    async fn answers_match_the_window_plan() {
        // The order keys end in the unique `id`, so the first row is never a tie and both plans
        // must agree row for row.
        let queries = [
            "SELECT p, count(*) AS n FROM (SELECT p, row_number() OVER (PARTITION BY s ORDER BY t, id) AS rn FROM e) \
             WHERE rn = 1 GROUP BY p ORDER BY n DESC, p",
            "SELECT p, count(*) AS n FROM (SELECT p, row_number() OVER (PARTITION BY s ORDER BY t DESC, id DESC) AS rn \
             FROM e) WHERE rn = 1 GROUP BY p ORDER BY n DESC, p",
            "SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY s ORDER BY t NULLS FIRST, id) AS rn FROM e) \
             WHERE rn <= 1 ORDER BY s",
            "SELECT s, p, rn FROM (SELECT s, p, row_number() OVER (PARTITION BY s, p ORDER BY id DESC) AS rn FROM e) \
             WHERE 2 > rn AND p <> '/p1' ORDER BY s, p",
            "SELECT s, t FROM (SELECT s, t, row_number() OVER (PARTITION BY s ORDER BY t + id, id) AS rn FROM e \
             WHERE id > 50) WHERE rn = 1 ORDER BY s",
        ];
        let (plain, rewritten) = (context(None), context(Some(super::add_to)));
        for sql in queries {
            let plan = optimized(&rewritten, sql).await;
            assert!(!plan.contains("WindowAggr"), "{sql}\n{plan}");
            assert_eq!(answer(&plain, sql).await, answer(&rewritten, sql).await, "{sql}");
        }
    }

    #[tokio::test]
    async fn leaves_other_windows_alone() {
        for sql in [
            // Ranks keep ties; a second number is not a filter on the first; no partition.
            "SELECT * FROM (SELECT s, rank() OVER (PARTITION BY s ORDER BY t) AS rn FROM e) WHERE rn = 1 ORDER BY s",
            "SELECT * FROM (SELECT s, row_number() OVER (PARTITION BY s ORDER BY t, id) AS rn FROM e) WHERE rn = 2 ORDER BY s",
            "SELECT * FROM (SELECT s, row_number() OVER (PARTITION BY s ORDER BY t, id) AS rn FROM e) WHERE rn > 1 ORDER BY s, rn",
            "SELECT * FROM (SELECT s, row_number() OVER (ORDER BY t, id) AS rn FROM e) WHERE rn = 1",
            "SELECT * FROM (SELECT s, row_number() OVER (PARTITION BY s ORDER BY t, id) AS rn, \
             lag(p) OVER (PARTITION BY s ORDER BY t, id) AS prev FROM e) WHERE rn = 1 ORDER BY s",
        ] {
            let plan = optimized(&context(Some(super::add_to)), sql).await;
            assert!(plan.contains("WindowAggr"), "{sql}\n{plan}");
            assert_eq!(answer(&context(None), sql).await, answer(&context(Some(super::add_to)), sql).await, "{sql}");
        }
    }

    #[tokio::test]
    async fn unused_columns_are_not_aggregated() {
        let sql =
            "SELECT p FROM (SELECT *, row_number() OVER (PARTITION BY s ORDER BY t, id) AS rn FROM e) WHERE rn = 1";
        let plan = optimized(&context(Some(super::add_to)), sql).await;
        assert_eq!(plan.matches("first_row(").count(), 1, "{plan}");
    }
}
