//! Lets dashboard aggregates like `count(*), count(DISTINCT visitor_id) ... GROUP BY path` take
//! DataFusion's two-phase plan for a single DISTINCT (group by the keys plus the distinct argument,
//! then by the keys), which is several times faster than a hash set of visitors per group.
//!
//! DataFusion's `single_distinct_aggregation_to_group_by` rule only applies when the other
//! aggregates are `sum`, `min` or `max`; a plain `count` beside the DISTINCT keeps the slow plan. This
//! rule, placed just before it, turns each such `count(x)` into `sum(<1 if x is not null else 0>)`,
//! which that rule then splits into an inner sum and an outer sum. A projection on top restores the
//! original names and `count`'s non-null type (`coalesce(sum, 0)`: a sum over no rows is null).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::common::tree_node::Transformed;
use datafusion::common::Result;
use datafusion::error::DataFusionError;
use datafusion::functions::core::expr_fn::coalesce;
use datafusion::functions_aggregate::sum::sum_udaf;
use datafusion::logical_expr::expr::{AggregateFunction, AggregateFunctionParams};
use datafusion::logical_expr::{lit, when, Aggregate, Expr, LogicalPlan, Projection};
use datafusion::optimizer::{ApplyOrder, Optimizer, OptimizerConfig, OptimizerRule};

/// Name of DataFusion's rule this one prepares plans for.
const SINGLE_DISTINCT_RULE: &str = "single_distinct_aggregation_to_group_by";

#[derive(Debug, Default)]
pub struct CountWithDistinct;

/// DataFusion's default logical rules with [`CountWithDistinct`] placed right before the rule it
/// feeds.
pub fn optimizer_rules() -> Vec<Arc<dyn OptimizerRule + Send + Sync>> {
    let mut rules = Optimizer::new().rules;
    let at = rules.iter().position(|r| r.name() == SINGLE_DISTINCT_RULE).unwrap_or(rules.len());
    rules.insert(at, Arc::new(CountWithDistinct));
    rules
}

enum Role {
    Distinct,
    Count,
    Other,
}

/// Which part each aggregate plays, or `None` when the plan is not one this rule should touch:
/// every DISTINCT on the same single argument, the rest `count`/`sum`/`min`/`max`, at least one
/// `count`, and no FILTER or ORDER BY (DataFusion's rule refuses those).
fn roles(aggr_expr: &[Expr]) -> Option<Vec<Role>> {
    let mut distinct_arg = None;
    let mut counts = 0;
    let mut roles = Vec::with_capacity(aggr_expr.len());
    for expr in aggr_expr {
        let Expr::AggregateFunction(AggregateFunction { func, params }) = expr else {
            return None;
        };
        if params.filter.is_some() || !params.order_by.is_empty() {
            return None;
        }
        if params.distinct {
            let [arg] = params.args.as_slice() else {
                return None;
            };
            match &distinct_arg {
                None => distinct_arg = Some(arg),
                Some(seen) if *seen == arg => {}
                Some(_) => return None,
            }
            roles.push(Role::Distinct);
            continue;
        }
        match func.name().to_ascii_lowercase().as_str() {
            "count" if params.args.len() == 1 => {
                counts += 1;
                roles.push(Role::Count);
            }
            "sum" | "min" | "max" => roles.push(Role::Other),
            _ => return None,
        }
    }
    (distinct_arg.is_some() && counts > 0).then_some(roles)
}

/// `count(arg)` as a sum: 1 for every row (a non-null literal, as `count(*)` is planned) or for
/// every row where `arg` is not null.
fn count_as_sum(params: &AggregateFunctionParams) -> Result<Expr> {
    let arg = &params.args[0];
    let one_per_row = match arg {
        Expr::Literal(value, _) if !value.is_null() => lit(1i64),
        _ => when(arg.clone().is_null(), lit(0i64)).otherwise(lit(1i64))?,
    };
    Ok(Expr::AggregateFunction(AggregateFunction::new_udf(sum_udaf(), vec![one_per_row], false, None, vec![], None)))
}

impl OptimizerRule for CountWithDistinct {
    fn name(&self) -> &str {
        "count_with_distinct"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(&self, plan: LogicalPlan, _config: &dyn OptimizerConfig) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Aggregate(aggregate) = &plan else {
            return Ok(Transformed::no(plan));
        };
        if matches!(aggregate.group_expr.first(), Some(Expr::GroupingSet(_))) {
            return Ok(Transformed::no(plan));
        }
        let Some(roles) = roles(&aggregate.aggr_expr) else {
            return Ok(Transformed::no(plan));
        };
        let LogicalPlan::Aggregate(Aggregate { input, group_expr, aggr_expr, schema, .. }) = plan else {
            return Err(DataFusionError::Internal("count_with_distinct: plan changed under the rule".into()));
        };

        // Two equal counts become one sum: an aggregate may not output the same name twice.
        let mut new_aggr: Vec<Expr> = Vec::with_capacity(aggr_expr.len());
        let mut position: HashMap<String, usize> = HashMap::new();
        let mut outputs = Vec::with_capacity(aggr_expr.len());
        for (expr, role) in aggr_expr.into_iter().zip(&roles) {
            let expr = match (role, &expr) {
                (Role::Count, Expr::AggregateFunction(AggregateFunction { params, .. })) => count_as_sum(params)?,
                _ => expr,
            };
            let name = expr.schema_name().to_string();
            let index = *position.entry(name).or_insert_with(|| {
                new_aggr.push(expr);
                new_aggr.len() - 1
            });
            outputs.push((index, matches!(role, Role::Count)));
        }

        let group_len = group_expr.len();
        let rewritten = Aggregate::try_new(input, group_expr, new_aggr)?;
        let new_schema = rewritten.schema.clone();
        let mut projection = Vec::with_capacity(schema.fields().len());
        for i in 0..group_len {
            let (qualifier, field) = schema.qualified_field(i);
            let (new_qualifier, new_field) = new_schema.qualified_field(i);
            projection.push(
                Expr::Column((new_qualifier, new_field).into()).alias_qualified(qualifier.cloned(), field.name()),
            );
        }
        for (i, (index, is_count)) in outputs.into_iter().enumerate() {
            let (qualifier, field) = schema.qualified_field(group_len + i);
            let (new_qualifier, new_field) = new_schema.qualified_field(group_len + index);
            let value = Expr::Column((new_qualifier, new_field).into());
            let value = if is_count { coalesce(vec![value, lit(0i64)]) } else { value };
            projection.push(value.alias_qualified(qualifier.cloned(), field.name()));
        }
        let plan =
            LogicalPlan::Projection(Projection::try_new(projection, Arc::new(LogicalPlan::Aggregate(rewritten)))?);
        Ok(Transformed::yes(plan))
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
    use datafusion::prelude::SessionContext;

    fn table() -> Arc<MemTable> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("g", DataType::Utf8, true),
            Field::new("v", DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
        ]));
        // Deterministic mix with nulls in every column, in two batches.
        let make = |range: std::ops::Range<i64>| {
            let g: StringArray = range.clone().map(|i| (i % 7 != 0).then(|| format!("g{}", i % 5))).collect();
            let v: StringArray = range.clone().map(|i| (i % 3 != 0).then(|| format!("v{}", i % 11))).collect();
            let n: Int64Array = range.map(|i| (i % 4 != 0).then_some(i)).collect();
            RecordBatch::try_new(schema.clone(), vec![Arc::new(g), Arc::new(v), Arc::new(n)]).expect("batch")
        };
        Arc::new(MemTable::try_new(schema.clone(), vec![vec![make(0..60)], vec![make(60..100)]]).expect("table"))
    }

    fn context(with_rule: bool) -> SessionContext {
        let mut builder = SessionStateBuilder::new().with_default_features();
        if with_rule {
            builder = builder.with_optimizer_rules(super::optimizer_rules());
        }
        let ctx = SessionContext::new_with_state(builder.build());
        ctx.register_table("t", table()).expect("register");
        ctx
    }

    async fn answer(ctx: &SessionContext, sql: &str) -> String {
        let batches = ctx.sql(sql).await.expect("plan").collect().await.expect("run");
        pretty_format_batches(&batches).expect("format").to_string()
    }

    #[tokio::test]
    async fn answers_match_the_one_pass_plan() {
        let queries = [
            "SELECT g, count(*), count(DISTINCT v) FROM t GROUP BY g ORDER BY g",
            "SELECT g, count(n), count(DISTINCT v), count(*) AS c2, count(*) FROM t GROUP BY g ORDER BY g",
            "SELECT g, count(DISTINCT v) AS d, count(v), min(n), max(n), sum(n) FROM t GROUP BY g ORDER BY g",
            "SELECT count(*), count(DISTINCT v), count(n) FROM t",
            "SELECT count(*), count(DISTINCT v), count(n) FROM t WHERE n < 0",
            "SELECT g, count(*), count(DISTINCT v) FROM t WHERE n < 0 GROUP BY g",
            "SELECT g, count(*) FROM t GROUP BY g HAVING count(DISTINCT v) > 3 ORDER BY count(*), g",
            "SELECT upper(g) AS k, count(DISTINCT n % 3), count(*) FROM t GROUP BY upper(g) ORDER BY k",
        ];
        let (plain, rewritten) = (context(false), context(true));
        for sql in queries {
            assert_eq!(answer(&plain, sql).await, answer(&rewritten, sql).await, "{sql}");
        }
    }

    #[tokio::test]
    async fn count_beside_distinct_takes_the_two_phase_plan() {
        let sql = "SELECT g, count(*), count(DISTINCT v) FROM t GROUP BY g";
        let plan = |ctx: SessionContext| async move {
            let df = ctx.sql(sql).await.expect("plan");
            df.into_optimized_plan().expect("optimize").display_indent().to_string()
        };
        assert!(plan(context(false)).await.contains("count(DISTINCT t.v)"));
        let rewritten = plan(context(true)).await;
        let aggregates: Vec<&str> = rewritten.lines().filter(|l| l.trim_start().starts_with("Aggregate:")).collect();
        assert!(aggregates.iter().all(|a| !a.contains("DISTINCT")), "{rewritten}");
        assert_eq!(rewritten.matches("Aggregate:").count(), 2, "{rewritten}");
    }

    #[tokio::test]
    async fn leaves_other_aggregates_alone() {
        // Two different DISTINCT arguments, or an aggregate DataFusion cannot split: one pass.
        for sql in [
            "SELECT g, count(*), count(DISTINCT v), count(DISTINCT n) FROM t GROUP BY g",
            "SELECT g, count(*), count(DISTINCT v), avg(n) FROM t GROUP BY g",
            "SELECT g, count(*) FROM t GROUP BY g",
        ] {
            let df = context(true).sql(sql).await.expect("plan");
            let plan = df.into_optimized_plan().expect("optimize").display_indent().to_string();
            assert_eq!(plan.matches("Aggregate:").count(), 1, "{sql}\n{plan}");
        }
    }
}
