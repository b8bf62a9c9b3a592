//! Shared fixtures for the tests of the logical rewrite rules: a small table with nulls, ties and
//! several partitions, and contexts with and without a rule, so that a rewrite can be checked
//! against DataFusion's own plan on the same rows.

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::util::pretty::pretty_format_batches;
use datafusion::datasource::MemTable;
use datafusion::execution::SessionStateBuilder;
use datafusion::optimizer::{Optimizer, OptimizerRule};
use datafusion::prelude::SessionContext;

/// Table `e`: sessions `s` and times `t`, both with nulls and ties; ids `id`, unique and never
/// null; pages `p` with nulls. Three batches in two partitions.
fn events() -> Arc<MemTable> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("s", DataType::Utf8, true),
        Field::new("t", DataType::Int64, true),
        Field::new("id", DataType::Int64, false),
        Field::new("p", DataType::Utf8, true),
    ]));
    let make = |range: std::ops::Range<i64>| {
        let s: StringArray = range.clone().map(|i| (i % 13 != 0).then(|| format!("s{}", i % 9))).collect();
        let t: Int64Array = range.clone().map(|i| (i % 11 != 0).then_some((i * 7) % 5)).collect();
        let id: Int64Array = range.clone().map(|i| (i * 37) % 101).collect();
        let p: StringArray = range.map(|i| (i % 6 != 0).then(|| format!("/p{}", i % 4))).collect();
        RecordBatch::try_new(schema.clone(), vec![Arc::new(s), Arc::new(t), Arc::new(id), Arc::new(p)]).expect("batch")
    };
    let partitions = vec![vec![make(0..40), make(40..70)], vec![make(70..101)]];
    Arc::new(MemTable::try_new(schema.clone(), partitions).expect("table"))
}

/// Inserts a rule into DataFusion's list, as each rule module's `add_to` does.
pub type AddRule = fn(&mut Vec<Arc<dyn OptimizerRule + Send + Sync>>);

/// A context over `e` with DataFusion's rules, plus the one `add` inserts when given.
pub fn context(add: Option<AddRule>) -> SessionContext {
    let mut builder = SessionStateBuilder::new().with_default_features();
    if let Some(add) = add {
        let mut rules = Optimizer::new().rules;
        add(&mut rules);
        builder = builder.with_optimizer_rules(rules);
    }
    let ctx = SessionContext::new_with_state(builder.build());
    ctx.register_table("e", events()).expect("register");
    ctx
}

pub async fn answer(ctx: &SessionContext, sql: &str) -> String {
    let batches = ctx.sql(sql).await.expect("plan").collect().await.expect("run");
    pretty_format_batches(&batches).expect("format").to_string()
}

pub async fn optimized(ctx: &SessionContext, sql: &str) -> String {
    let df = ctx.sql(sql).await.expect("plan");
    df.into_optimized_plan().expect("optimize").display_indent().to_string()
}
