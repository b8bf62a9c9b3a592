//! Functions whose output can be far larger than their input, bounded before they allocate.
//!
//! DataFusion's memory pool accounts for operators' state (hash tables, sort buffers), not for the
//! arrays a scalar function returns: `SELECT length(repeat('x', 2000000000))` allocated 2 GB outside
//! the pool, and a few such queries at once could get the process killed. Each function here is the
//! built-in one behind a wrapper that, per call (one batch), computes an upper bound of the bytes
//! it may return from its arguments and refuses the call when the bound exceeds
//! `max_function_output_bytes` — before the function allocates anything. The bound also caps how
//! long one call can keep a thread busy. After the call the real size is checked again, so a bound
//! that was too optimistic still stops the value from flowing on.
//!
//! `a || b` on strings is planned as a call of [`STRING_CONCAT`] by [`ConcatPlanner`], for the same
//! reason: `s || s || s ...` over a large `s` multiplies it.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::kernels::concat_elements::concat_elements_utf8;
use arrow::datatypes::{DataType, Int64Type, IntervalUnit, TimeUnit};
use datafusion::common::{exec_err, DFSchema, Result, ScalarValue};
use datafusion::config::ConfigOptions;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::sort_properties::{ExprProperties, SortProperties};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ExprSchemable, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility,
};
use datafusion::prelude::SessionContext;

/// The name `a || b` is planned as.
pub const STRING_CONCAT: &str = "footfall_string_concat";

/// How a function's output size is bounded from its arguments (per call, in bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Bound {
    /// `repeat(s, n)`: Σ len(s)·n.
    Repeat,
    /// `lpad` / `rpad(s, n [, fill])`: Σ 4·n (n characters of up to 4 bytes).
    Pad,
    /// `replace(s, from, to)`.
    Replace,
    /// `regexp_replace(s, pattern, replacement [, flags])`.
    RegexpReplace,
    /// `concat`, `array_concat`, `overlay`, `||`: the sum of the arguments.
    SumOfArguments,
    /// `concat_ws(sep, ...)`: the arguments plus a separator between each.
    ConcatWs,
    /// `array_repeat(element, n)`: Σ n · (element size).
    ArrayRepeat,
    /// `range` / `generate_series(start, stop [, step])` as list-valued functions.
    Series,
    /// `array_resize(array, n [, fill])`: Σ n · 8 plus the array.
    ArrayResize,
}

const BOUNDED: &[(&str, Bound)] = &[
    ("repeat", Bound::Repeat),
    ("lpad", Bound::Pad),
    ("rpad", Bound::Pad),
    ("replace", Bound::Replace),
    ("regexp_replace", Bound::RegexpReplace),
    ("concat", Bound::SumOfArguments),
    ("overlay", Bound::SumOfArguments),
    ("array_concat", Bound::SumOfArguments),
    ("concat_ws", Bound::ConcatWs),
    ("array_repeat", Bound::ArrayRepeat),
    ("range", Bound::Series),
    ("generate_series", Bound::Series),
    ("array_resize", Bound::ArrayResize),
];

/// The amplifying built-ins of `ctx`, each behind its bound. Built once per service: the wrappers
/// are the same for every query. (`||` is bounded by [`ConcatPlanner`], which the session's
/// planners must include.)
pub fn bounded_udfs(ctx: &SessionContext, max_bytes: usize) -> Vec<ScalarUDF> {
    BOUNDED
        .iter()
        .filter_map(|(name, bound)| {
            let inner = datafusion::execution::FunctionRegistry::udf(ctx, name).ok()?;
            Some(ScalarUDF::new_from_impl(Bounded { inner, bound: *bound, max_bytes }))
        })
        .collect()
}

/// Plans `a || b` over strings (not lists, which the nested-functions planner takes first) as a
/// call of [`STRING_CONCAT`]. Registered after DataFusion's planners, so it sees only what they
/// leave.
#[derive(Debug)]
pub struct ConcatPlanner {
    /// The bounded concatenation each `||` becomes: planned expressions hold the function itself,
    /// not its name, so the bound travels with the plan.
    udf: Arc<ScalarUDF>,
}

impl ConcatPlanner {
    pub fn new(max_bytes: usize) -> Self {
        let inner = Arc::new(ScalarUDF::new_from_impl(StringConcat::new()));
        Self { udf: Arc::new(ScalarUDF::new_from_impl(Bounded { inner, bound: Bound::SumOfArguments, max_bytes })) }
    }
}

impl ExprPlanner for ConcatPlanner {
    fn plan_binary_op(&self, expr: RawBinaryExpr, schema: &DFSchema) -> Result<PlannerResult<RawBinaryExpr>> {
        if expr.op != datafusion::sql::sqlparser::ast::BinaryOperator::StringConcat {
            return Ok(PlannerResult::Original(expr));
        }
        let is_list = |e: &Expr| {
            matches!(
                e.get_type(schema),
                Ok(DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..) | DataType::ListView(_))
            )
        };
        if is_list(&expr.left) || is_list(&expr.right) {
            return Ok(PlannerResult::Original(expr));
        }
        let call = ScalarFunction::new_udf(self.udf.clone(), vec![expr.left, expr.right]);
        Ok(PlannerResult::Planned(Expr::ScalarFunction(call)))
    }
}

fn too_large(name: &str, bytes: u128, max: usize) -> DataFusionError {
    DataFusionError::ResourcesExhausted(format!(
        "{name}() would return about {bytes} bytes in one call, over the limit max_function_output_bytes = {max}"
    ))
}

/// Byte length of each row of a string or binary argument; 0 for nulls and other types.
fn byte_lengths(array: &ArrayRef) -> Vec<u128> {
    let len = array.len();
    let of = |f: &dyn Fn(usize) -> usize| (0..len).map(|i| if array.is_null(i) { 0 } else { f(i) as u128 }).collect();
    match array.data_type() {
        DataType::Utf8 => of(&|i| array.as_string::<i32>().value(i).len()),
        DataType::LargeUtf8 => of(&|i| array.as_string::<i64>().value(i).len()),
        DataType::Utf8View => of(&|i| array.as_string_view().value(i).len()),
        DataType::Binary => of(&|i| array.as_binary::<i32>().value(i).len()),
        DataType::LargeBinary => of(&|i| array.as_binary::<i64>().value(i).len()),
        DataType::BinaryView => of(&|i| array.as_binary_view().value(i).len()),
        _ => {
            // Lists, structs, numbers: their share of the memory they occupy, spread evenly.
            let total = array.to_data().get_slice_memory_size().unwrap_or(0) as u128;
            vec![total / len.max(1) as u128; len]
        }
    }
}

/// Each row of an integer argument as i64 (nulls and non-integers as 0).
fn integers(array: &ArrayRef) -> Vec<i128> {
    match arrow::compute::cast(array, &DataType::Int64) {
        Ok(cast) => {
            let values = cast.as_primitive::<Int64Type>();
            (0..values.len()).map(|i| if values.is_null(i) { 0 } else { values.value(i) as i128 }).collect()
        }
        Err(_) => vec![0; array.len()],
    }
}

/// A point of a series as an integer on one scale: integers as they are, dates and timestamps in
/// nanoseconds.
fn series_points(array: &ArrayRef) -> Vec<i128> {
    match array.data_type() {
        DataType::Date32 | DataType::Date64 | DataType::Timestamp(..) => {
            match arrow::compute::cast(array, &DataType::Timestamp(TimeUnit::Nanosecond, None))
                .and_then(|a| arrow::compute::cast(&a, &DataType::Int64))
            {
                Ok(cast) => integers(&cast),
                Err(_) => vec![0; array.len()],
            }
        }
        _ => integers(array),
    }
}

/// A series' step on the same scale as [`series_points`]. A month counts as 28 days: a smaller
/// step can only make the bound larger.
fn series_steps(array: &ArrayRef) -> Vec<i128> {
    match array.data_type() {
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            let values = array.as_primitive::<arrow::datatypes::IntervalMonthDayNanoType>();
            (0..values.len())
                .map(|i| {
                    let v = values.value(i);
                    const DAY: i128 = 86_400_000_000_000;
                    v.months as i128 * 28 * DAY + v.days as i128 * DAY + v.nanoseconds as i128
                })
                .collect()
        }
        DataType::Interval(_) => match arrow::compute::cast(array, &DataType::Interval(IntervalUnit::MonthDayNano)) {
            Ok(cast) => series_steps(&cast),
            Err(_) => vec![1; array.len()],
        },
        _ => integers(array),
    }
}

impl Bound {
    /// Whether the functions bounded this way answer NULL for any NULL argument.
    fn is_strict(self) -> bool {
        matches!(self, Self::Repeat | Self::Pad | Self::Replace | Self::RegexpReplace)
    }

    /// An upper bound of the bytes the call returns, from its arguments.
    fn bytes(self, args: &[ArrayRef], rows: usize) -> u128 {
        let zero = || vec![0u128; rows];
        let lens = |i: usize| args.get(i).map(byte_lengths).unwrap_or_else(zero);
        let ints = |i: usize| args.get(i).map(integers).unwrap_or_else(|| vec![0; rows]);
        let sum = |v: Vec<u128>| v.into_iter().sum::<u128>();
        match self {
            Self::Repeat => {
                let (s, n) = (lens(0), ints(1));
                s.iter().zip(n).map(|(s, n)| s * n.max(0) as u128).sum()
            }
            Self::Pad => sum(ints(1).into_iter().map(|n| 4 * n.max(0) as u128).collect()),
            Self::Replace => {
                let (s, from, to) = (lens(0), lens(1), lens(2));
                (0..rows)
                    .map(|i| match from[i] {
                        // An empty pattern inserts the replacement between every character.
                        0 => s[i] + (s[i] + 1) * to[i],
                        f => s[i] + (s[i] / f) * to[i],
                    })
                    .sum()
            }
            Self::RegexpReplace => {
                let (s, r) = (lens(0), lens(2));
                // Each replacement's `$n` / `\n` references repeat (parts of) a match; matches do not
                // overlap, so all references of one kind together repeat the string at most once.
                // Cast once per call: the replacement is usually one literal repeated over the batch.
                let replacement = args.get(2).and_then(|a| arrow::compute::cast(a, &DataType::Utf8).ok());
                let references = |i: usize| -> u128 {
                    match &replacement {
                        Some(a) if i < a.len() && !a.is_null(i) => {
                            a.as_string::<i32>().value(i).bytes().filter(|b| *b == b'$' || *b == b'\\').count() as u128
                        }
                        _ => 0,
                    }
                };
                (0..rows).map(|i| s[i] + (s[i] + 1) * r[i] + references(i) * s[i]).sum()
            }
            Self::SumOfArguments => (0..args.len()).map(|i| sum(lens(i))).sum(),
            Self::ConcatWs => {
                let sep = lens(0);
                let parts = args.len().saturating_sub(1) as u128;
                sum(sep) * parts + (1..args.len()).map(|i| sum(lens(i))).sum::<u128>()
            }
            Self::ArrayRepeat => {
                let (element, n) = (lens(0), ints(1));
                element.iter().zip(n).map(|(e, n)| (*e).max(8) * n.max(0) as u128).sum()
            }
            Self::Series => {
                let (start, stop) = match args.len() {
                    1 => (vec![0; rows], args.first().map(series_points).unwrap_or_default()),
                    _ => (
                        args.first().map(series_points).unwrap_or_default(),
                        args.get(1).map(series_points).unwrap_or_default(),
                    ),
                };
                let step = args.get(2).map(series_steps).unwrap_or_else(|| vec![1; rows]);
                (0..rows.min(start.len()).min(stop.len()))
                    .map(|i| {
                        let step = step.get(i).copied().unwrap_or(1).unsigned_abs().max(1);
                        ((stop[i] - start[i]).unsigned_abs() / step + 1) * 8
                    })
                    .sum()
            }
            Self::ArrayResize => {
                let (array, n) = (lens(0), ints(1));
                array.iter().zip(n).map(|(a, n)| a + 8 * n.max(0) as u128).sum()
            }
        }
    }
}

/// An integer argument with its negative values replaced by 0.
fn non_negative(value: &ColumnarValue) -> Result<ColumnarValue> {
    Ok(match value {
        ColumnarValue::Scalar(ScalarValue::Int64(Some(n))) if *n < 0 => {
            ColumnarValue::Scalar(ScalarValue::Int64(Some(0)))
        }
        ColumnarValue::Array(array) if array.data_type() == &DataType::Int64 => {
            let values = array.as_primitive::<Int64Type>();
            let clamped: arrow::array::Int64Array = values.unary(|n| n.max(0));
            ColumnarValue::Array(Arc::new(clamped))
        }
        other => other.clone(),
    })
}

/// A built-in function with a bound on its output; everything else forwards to it.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Bounded {
    inner: Arc<ScalarUDF>,
    bound: Bound,
    max_bytes: usize,
}

impl ScalarUDFImpl for Bounded {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<arrow::datatypes::FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        // These are strict (NULL in, NULL out), and DataFusion 55's `lpad('', -1, NULL)` panicked
        // on the NULL fill: answer NULL without calling them.
        if self.bound.is_strict() && args.args.iter().any(|a| matches!(a, ColumnarValue::Scalar(s) if s.is_null())) {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from(args.return_field.data_type())?));
        }
        let mut args = args;
        if matches!(self.bound, Bound::Pad | Bound::Repeat) {
            // DataFusion 55's lpad/rpad sized their output buffer from a negative length given as
            // a column (not a literal) and panicked with a capacity overflow. A negative length
            // means an empty result, as it does for a literal.
            if let Some(length) = args.args.get_mut(1) {
                *length = non_negative(length)?;
            }
        }
        let rows = args.number_rows;
        // Scalars are measured once, as one row each, then scaled by the rows they stand for.
        let all_scalar = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let measured_rows = if all_scalar { 1 } else { rows };
        let arrays: Vec<ArrayRef> = args.args.iter().map(|a| a.to_array(measured_rows)).collect::<Result<Vec<_>>>()?;
        let bound = self.bound.bytes(&arrays, measured_rows);
        if bound > self.max_bytes as u128 {
            return Err(too_large(self.name(), bound, self.max_bytes));
        }
        drop(arrays);
        let out = self.inner.invoke_with_args(args)?;
        let bytes = match &out {
            ColumnarValue::Array(a) => a.to_data().get_slice_memory_size().unwrap_or(0),
            ColumnarValue::Scalar(s) => s.size(),
        };
        if bytes > self.max_bytes {
            return Err(too_large(self.name(), bytes as u128, self.max_bytes));
        }
        Ok(out)
    }

    fn with_updated_config(&self, config: &ConfigOptions) -> Option<ScalarUDF> {
        let inner = self.inner.inner().with_updated_config(config)?;
        Some(ScalarUDF::new_from_impl(Self { inner: Arc::new(inner), bound: self.bound, max_bytes: self.max_bytes }))
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        // The built-ins simplify only to expressions no larger than their arguments (constant
        // folding goes through `invoke_with_args`, and so through the bound).
        self.inner.simplify(args, info)
    }

    fn short_circuits(&self) -> bool {
        self.inner.short_circuits()
    }

    fn output_ordering(&self, inputs: &[ExprProperties]) -> Result<SortProperties> {
        self.inner.output_ordering(inputs)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
}

/// `a || b` on strings, as DataFusion defines it: null when either side is null; other types are
/// cast to text first.
#[derive(Debug, PartialEq, Eq, Hash)]
struct StringConcat {
    signature: Signature,
}

impl StringConcat {
    fn new() -> Self {
        Self { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

/// The text type two operands concatenate as: a view when either is one, as DataFusion's coercion
/// for `||` does.
fn text_type(types: &[DataType]) -> DataType {
    if types.iter().any(|t| matches!(t, DataType::Utf8View)) {
        DataType::Utf8View
    } else if types.iter().any(|t| matches!(t, DataType::LargeUtf8)) {
        DataType::LargeUtf8
    } else {
        DataType::Utf8
    }
}

impl ScalarUDFImpl for StringConcat {
    fn name(&self) -> &str {
        STRING_CONCAT
    }

    fn display_name(&self, args: &[Expr]) -> Result<String> {
        Ok(args.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(" || "))
    }

    fn schema_name(&self, args: &[Expr]) -> Result<String> {
        let names = args.iter().map(|a| a.schema_name().to_string()).collect::<Vec<_>>();
        Ok(names.join(" || "))
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if arg_types.len() != 2 {
            return exec_err!("|| takes two operands");
        }
        let target = text_type(arg_types);
        Ok(vec![target.clone(), target])
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(text_type(arg_types))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let target = args.return_field.data_type().clone();
        let all_scalar = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let rows = if all_scalar { 1 } else { args.number_rows };
        let [left, right] = args.args.as_slice() else { return exec_err!("|| takes two operands") };
        let as_utf8 =
            |v: &ColumnarValue| -> Result<ArrayRef> { Ok(arrow::compute::cast(&v.to_array(rows)?, &DataType::Utf8)?) };
        let (l, r) = (as_utf8(left)?, as_utf8(right)?);
        let joined: ArrayRef = Arc::new(concat_elements_utf8(l.as_string::<i32>(), r.as_string::<i32>())?);
        let out = arrow::compute::cast(&joined, &target)?;
        if all_scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
        } else {
            Ok(ColumnarValue::Array(out))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run(sql: &str) -> Result<Vec<arrow::array::RecordBatch>> {
        let ctx = SessionContext::new();
        let mut state = ctx.state();
        datafusion::execution::FunctionRegistry::register_expr_planner(
            &mut state,
            Arc::new(ConcatPlanner::new(1 << 20)),
        )?;
        let ctx = SessionContext::new_with_state(state);
        for udf in bounded_udfs(&ctx, 1 << 20) {
            ctx.register_udf(udf);
        }
        ctx.sql(sql).await?.collect().await
    }

    fn refused(result: Result<Vec<arrow::array::RecordBatch>>) -> bool {
        matches!(result, Err(e) if e.to_string().contains("max_function_output_bytes"))
    }

    #[tokio::test]
    async fn amplifying_calls_are_refused_before_they_allocate() {
        for sql in [
            "SELECT length(repeat('x', 2000000000))",
            "SELECT length(lpad('x', 2000000000))",
            "SELECT length(rpad('x', 2000000000, 'ab'))",
            "SELECT length(replace(repeat('a', 1000), 'a', repeat('b', 2000)))",
            "SELECT length(replace(repeat('a', 1000), '', repeat('b', 2000)))",
            "SELECT length(regexp_replace(repeat('a', 1000), 'a', repeat('b', 2000), 'g'))",
            "SELECT cardinality(array_repeat(1, 2000000000))",
            "SELECT cardinality(range(1, 2000000000))",
            "SELECT cardinality(generate_series(1, 2000000000))",
            "SELECT cardinality(generate_series(TIMESTAMP '1970-01-01', TIMESTAMP '2100-01-01', INTERVAL '1 second'))",
            "SELECT cardinality(array_resize([1], 2000000000))",
            "WITH a AS (SELECT repeat('x', 600000) AS s) SELECT length(concat(s, s)) FROM a",
            "WITH a AS (SELECT repeat('x', 600000) AS s) SELECT length(s || s) FROM a",
            "WITH a AS (SELECT repeat('x', 600000) AS s) SELECT length(concat_ws(s, s, s)) FROM a",
        ] {
            assert!(refused(run(sql).await), "{sql} was not refused");
        }
    }

    /// Found by `tests/fuzz.rs`: `lpad('', -1, NULL)` panicked inside DataFusion.
    #[tokio::test]
    async fn strict_functions_answer_null_for_null_arguments() {
        let batches = run(
            "SELECT lpad('', -1, NULL) IS NULL AS a, rpad('x', 3, NULL) IS NULL AS b, repeat(NULL, 3) IS NULL AS c, \
             replace('a', NULL, 'b') IS NULL AS d, regexp_replace('a', 'a', NULL) IS NULL AS e, \
             lpad('ab', -1, CASE WHEN 1 > 2 THEN 'z' END) IS NULL AS f",
        )
        .await
        .expect("runs");
        let text = arrow::util::pretty::pretty_format_batches(&batches).expect("formats").to_string();
        assert!(!text.contains("false"), "{text}");
        let columns =
            run("SELECT lpad(s, n, f) AS p FROM (VALUES ('ab', -1, NULL), ('ab', 4, 'z'), (NULL, 3, 'y')) t(s, n, f)")
                .await
                .expect("runs");
        let text = arrow::util::pretty::pretty_format_batches(&columns).expect("formats").to_string();
        assert!(text.contains("zzab"), "{text}");
    }

    #[tokio::test]
    async fn ordinary_calls_answer_as_before() {
        let batches = run("SELECT repeat('ab', 3) AS r, lpad('7', 3, '0') AS p, replace('a-b', '-', '+') AS s, \
             'x' || 1 || NULL IS NULL AS n, 'x' || 'y' AS c, concat('a', NULL, 'b') AS k, \
             cardinality(range(1, 10)) AS g, [1] || [2] AS l")
        .await
        .expect("runs");
        let text = arrow::util::pretty::pretty_format_batches(&batches).expect("formats").to_string();
        for want in ["ababab", "007", "a+b", "true", "xy", "ab", "9", "[1, 2]"] {
            assert!(text.contains(want), "{want} missing from\n{text}");
        }
    }
}
