//! Computes `first_value(x ORDER BY k)` and `last_value(x ORDER BY k)` aggregates with
//! [`first_row`](crate::first_row) (`last_value` as the first row in the reverse order).
//!
//! The brief's `sessions` view takes some twenty of them per session (entry page, exit page, the
//! first referrer, UTM tags, country, device, ...). DataFusion's groups accumulator for them visits
//! every group of the aggregate for every input batch and holds each group's keys as
//! `ScalarValue`s, so with hundreds of thousands of sessions its cost grows with sessions × batches.
//!
//! Left alone: `IGNORE NULLS` (it skips rows `first_row` would keep), `DISTINCT`, `FILTER`, and
//! calls without ORDER BY (DataFusion's accumulator then keeps any row, cheaply).

use std::sync::Arc;

use arrow::compute::SortOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::Result;
use datafusion::logical_expr::expr::{AggregateFunction, AggregateFunctionParams, Alias, NullTreatment};
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

#[derive(Debug, Default)]
pub struct OrderedFirstLast;

/// The `first_row` call for `expr`, when `expr` is a `first_value` or `last_value` this rule takes.
fn as_first_row(expr: &Expr) -> Option<Expr> {
    let Expr::AggregateFunction(AggregateFunction { func, params }) = expr else {
        return None;
    };
    let AggregateFunctionParams { args, distinct, filter, order_by, null_treatment } = params;
    let last = match func.name() {
        "first_value" => false,
        "last_value" => true,
        _ => return None,
    };
    let [value] = args.as_slice() else {
        return None;
    };
    if *distinct
        || filter.is_some()
        || order_by.is_empty()
        || matches!(null_treatment, Some(NullTreatment::IgnoreNulls))
    {
        return None;
    }
    // The last row in an order is the first in its reverse, nulls included.
    let options = order_by
        .iter()
        .map(|s| SortOptions { descending: s.asc == last, nulls_first: s.nulls_first != last })
        .collect();
    let mut first_row_args = Vec::with_capacity(order_by.len() + 1);
    first_row_args.push(value.clone());
    first_row_args.extend(order_by.iter().map(|s| s.expr.clone()));
    let udaf = Arc::new(crate::first_row::first_row(options));
    Some(Expr::AggregateFunction(AggregateFunction::new_udf(udaf, first_row_args, false, None, vec![], None)))
}

/// `expr` (an aggregate, possibly aliased) with `first_row` in place of the original call, under
/// the original output name.
fn rewrite_aggregate(expr: Expr) -> Result<Transformed<Expr>> {
    let replacement = match &expr {
        Expr::Alias(Alias { expr: inner, relation, name, metadata }) => as_first_row(inner).map(|call| {
            Expr::Alias(Alias {
                expr: Box::new(call),
                relation: relation.clone(),
                name: name.clone(),
                metadata: metadata.clone(),
            })
        }),
        other => as_first_row(other).map(|call| call.alias(other.schema_name().to_string())),
    };
    Ok(match replacement {
        Some(replacement) => Transformed::yes(replacement),
        None => Transformed::no(expr),
    })
}

impl OptimizerRule for OrderedFirstLast {
    fn name(&self) -> &str {
        "ordered_first_last"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(&self, plan: LogicalPlan, _config: &dyn OptimizerConfig) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Aggregate(aggregate) = plan else {
            return Ok(Transformed::no(plan));
        };
        let mut aggregate = aggregate;
        let mut changed = false;
        let mut aggr_expr = Vec::with_capacity(aggregate.aggr_expr.len());
        for expr in std::mem::take(&mut aggregate.aggr_expr) {
            let rewritten = rewrite_aggregate(expr)?;
            changed |= rewritten.transformed;
            aggr_expr.push(rewritten.data);
        }
        aggregate.aggr_expr = aggr_expr;
        let plan = LogicalPlan::Aggregate(aggregate);
        if !changed {
            return Ok(Transformed::no(plan));
        }
        Ok(Transformed::yes(plan.recompute_schema()?))
    }
}

/// Placed last: the rewrite needs nothing from later rules, and earlier ones see the original calls.
pub fn add_to(rules: &mut Vec<Arc<dyn OptimizerRule + Send + Sync>>) {
    rules.push(Arc::new(OrderedFirstLast));
}

#[cfg(test)]
mod tests {
    use crate::rule_tests::{answer, context, optimized};

    #[tokio::test]
    async fn answers_match_datafusions_accumulator() {
        // Orders end in the unique `id`: no ties, so both must pick the same rows.
        let queries = [
            "SELECT s, first_value(p ORDER BY t, id), last_value(p ORDER BY t, id), count(*) FROM e GROUP BY s ORDER BY s",
            "SELECT s, first_value(p ORDER BY t DESC NULLS LAST, id) AS f, last_value(t ORDER BY t NULLS FIRST, id DESC) \
             FROM e GROUP BY s ORDER BY s",
            "SELECT first_value(p ORDER BY id DESC), last_value(s ORDER BY t, id) FROM e",
            "SELECT first_value(p ORDER BY t, id) FROM e WHERE id < 0",
            "SELECT s, first_value(p ORDER BY id) FROM e GROUP BY s HAVING last_value(t ORDER BY id) > 1 ORDER BY s",
        ];
        let (plain, rewritten) = (context(None), context(Some(super::add_to)));
        for sql in queries {
            let plan = optimized(&rewritten, sql).await;
            assert!(plan.contains("first_row("), "{sql}\n{plan}");
            assert_eq!(answer(&plain, sql).await, answer(&rewritten, sql).await, "{sql}");
        }
    }

    #[tokio::test]
    async fn leaves_what_it_cannot_answer() {
        for sql in [
            "SELECT s, first_value(p ORDER BY id) IGNORE NULLS FROM e GROUP BY s",
            "SELECT s, last_value(p) FROM e GROUP BY s",
            "SELECT s, first_value(p ORDER BY id) FILTER (WHERE t > 1) FROM e GROUP BY s",
        ] {
            let plan = optimized(&context(Some(super::add_to)), sql).await;
            assert!(!plan.contains("first_row"), "{sql}\n{plan}");
        }
    }
}
