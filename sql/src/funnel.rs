//! `funnel_steps(window_ms, ts, step_1, step_2, ...)`: how far one group (usually a visitor) got
//! through an ordered funnel, in a single pass over its rows instead of one self-join per step.
//!
//! The funnel is anchored at the group's earliest row where `step_1` is true (at `t1`). Each later
//! step counts when some row satisfies it strictly after the row that satisfied the step before,
//! and no later than `t1 + window_ms`; the earliest such row is the one taken. The result is the
//! number of steps reached: 0 when `step_1` never holds. A null step condition counts as false.
//!
//! ```sql
//! SELECT count(*) FILTER (WHERE reached >= 2) AS signed_up FROM (
//!   SELECT visitor_id, funnel_steps(86400000, added_iso, path = '/pricing', path = '/signup') AS reached
//!   FROM pageviews GROUP BY visitor_id)
//! ```

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Array, Int64Builder, ListArray, ListBuilder, PrimitiveArray,
    UInt32Array, UInt32Builder,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type, TimeUnit, UInt32Type};
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility,
};
use datafusion::physical_expr::expressions::Literal;

/// At most this many steps, so that one row's matches fit a `u32` bit mask.
const MAX_STEPS: usize = 32;

pub fn funnel_steps() -> AggregateUDF {
    AggregateUDF::from(FunnelSteps { signature: Signature::variadic_any(Volatility::Immutable) })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct FunnelSteps {
    signature: Signature,
}

impl AggregateUDFImpl for FunnelSteps {
    fn name(&self) -> &str {
        "funnel_steps"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        let steps = args.len().saturating_sub(2);
        if !(1..=MAX_STEPS).contains(&steps) {
            return plan_err!("funnel_steps(window_ms, ts, step_1, ...) takes 1 to {MAX_STEPS} steps, got {steps}");
        }
        if !args[0].is_integer() {
            return plan_err!("funnel_steps: window_ms must be an integer number of milliseconds");
        }
        if !matches!(args[1], DataType::Timestamp(_, _) | DataType::Int64) {
            return plan_err!("funnel_steps: ts must be a timestamp, got {}", args[1]);
        }
        if let Some(other) = args[2..].iter().find(|t| !matches!(t, DataType::Boolean | DataType::Null)) {
            return plan_err!("funnel_steps: every step must be a boolean condition, got {other}");
        }
        Ok(DataType::Int64)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(FunnelAccumulator { window_ms: window_ms(&args)?, steps: args.exprs.len() - 2, rows: Vec::new() }))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    /// With many groups (a funnel per visitor: millions) one accumulator object per group, fed
    /// slices of each batch, costs far more than the funnel itself.
    fn create_groups_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(FunnelGroupsAccumulator {
            window_ms: window_ms(&args)?,
            steps: args.exprs.len() - 2,
            groups: Vec::new(),
            rows: 0,
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let list = |name: &str, item: DataType| {
            Arc::new(Field::new(
                format!("{}[{name}]", args.name),
                DataType::List(Arc::new(Field::new_list_field(item, true))),
                true,
            ))
        };
        Ok(vec![list("ts", DataType::Int64), list("steps", DataType::UInt32)])
    }
}

fn window_ms(args: &AccumulatorArgs) -> Result<i64> {
    let window = args.exprs.first().and_then(|e| e.downcast_ref::<Literal>()).map(Literal::value);
    match window.map(|v| v.cast_to(&DataType::Int64)) {
        Some(Ok(ScalarValue::Int64(Some(ms)))) if ms >= 0 => Ok(ms),
        _ => plan_err!("funnel_steps: window_ms must be a literal, non-negative number of milliseconds"),
    }
}

/// The steps reached by a group whose rows (milliseconds, bit mask of the steps they satisfy) are
/// `rows`, in any order.
fn reached(rows: &mut [(i64, u32)], window_ms: i64, steps: usize) -> i64 {
    rows.sort_unstable();
    let Some(start) = rows.iter().position(|(_, mask)| mask & 1 != 0) else {
        return 0;
    };
    let (t1, _) = rows[start];
    let deadline = t1.saturating_add(window_ms);
    let (mut reached, mut previous, mut at) = (1, t1, start + 1);
    while reached < steps {
        let bit = 1u32 << reached;
        let next = rows[at..]
            .iter()
            .take_while(|(ts, _)| *ts <= deadline)
            .position(|(ts, mask)| *ts > previous && mask & bit != 0);
        match next {
            Some(offset) => {
                at += offset;
                previous = rows[at].0;
                at += 1;
                reached += 1;
            }
            None => break,
        }
    }
    reached as i64
}

/// A batch's arguments as (row, milliseconds, step mask) for each row that satisfies any step and
/// passes `filter`.
fn matching_rows<'a>(
    values: &'a [ArrayRef],
    filter: Option<&'a BooleanArray>,
) -> Result<impl Iterator<Item = (usize, i64, u32)> + 'a> {
    let Some(ts) = values.get(1) else {
        return exec_err!("funnel_steps: missing ts");
    };
    let ts = match ts.data_type() {
        DataType::Int64 => Arc::clone(ts),
        _ => cast(&cast(ts, &DataType::Timestamp(TimeUnit::Millisecond, None))?, &DataType::Int64)?,
    };
    let ts: PrimitiveArray<Int64Type> = ts.as_primitive::<Int64Type>().clone();
    let conditions: Vec<BooleanArray> = values[2..]
        .iter()
        .map(|c| cast(c, &DataType::Boolean).map(|c| c.as_boolean().clone()))
        .collect::<std::result::Result<_, _>>()?;
    Ok((0..ts.len()).filter_map(move |row| {
        if ts.is_null(row) || filter.is_some_and(|f| !f.is_valid(row) || !f.value(row)) {
            return None;
        }
        let mask = conditions
            .iter()
            .enumerate()
            .filter(|(_, c)| c.is_valid(row) && c.value(row))
            .fold(0u32, |mask, (step, _)| mask | 1 << step);
        (mask != 0).then(|| (row, ts.value(row), mask))
    }))
}

/// One group's rows that satisfy any step: (milliseconds, bit mask of the steps they satisfy).
#[derive(Debug)]
struct FunnelAccumulator {
    window_ms: i64,
    steps: usize,
    rows: Vec<(i64, u32)>,
}

impl FunnelAccumulator {
    fn reached(&mut self) -> i64 {
        reached(&mut self.rows, self.window_ms, self.steps)
    }
}

impl Accumulator for FunnelAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.rows.extend(matching_rows(values, None)?.map(|(_, ts, mask)| (ts, mask)));
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Int64(Some(self.reached())))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.rows.capacity() * std::mem::size_of::<(i64, u32)>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let ts = Int64Array::from_iter_values(self.rows.iter().map(|(ts, _)| *ts));
        let masks = UInt32Array::from_iter_values(self.rows.iter().map(|(_, mask)| *mask));
        Ok(vec![
            ScalarValue::List(Arc::new(ListArray::from_iter_primitive::<Int64Type, _, _>([Some(
                ts.iter().collect::<Vec<_>>(),
            )]))),
            ScalarValue::List(Arc::new(ListArray::from_iter_primitive::<UInt32Type, _, _>([Some(
                masks.iter().collect::<Vec<_>>(),
            )]))),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (Some(ts), Some(masks)) = (states.first(), states.get(1)) else {
            return exec_err!("funnel_steps: malformed state");
        };
        let (ts, masks) = (ts.as_list::<i32>(), masks.as_list::<i32>());
        for group in 0..ts.len() {
            if ts.is_null(group) || masks.is_null(group) {
                continue;
            }
            let (t, m) = (ts.value(group), masks.value(group));
            let (t, m) = (t.as_primitive::<Int64Type>(), m.as_primitive::<UInt32Type>());
            self.rows.extend(t.values().iter().copied().zip(m.values().iter().copied()));
        }
        Ok(())
    }
}

/// Every group's rows (as [`FunnelAccumulator`] keeps one group's), indexed by group.
#[derive(Debug)]
struct FunnelGroupsAccumulator {
    window_ms: i64,
    steps: usize,
    groups: Vec<Vec<(i64, u32)>>,
    /// Rows held over all groups: `size` is asked after every batch, too often to sum millions of
    /// groups each time.
    rows: usize,
}

impl FunnelGroupsAccumulator {
    fn take(&mut self, emit_to: EmitTo) -> Vec<Vec<(i64, u32)>> {
        let taken = emit_to.take_needed(&mut self.groups);
        self.rows -= taken.iter().map(Vec::len).sum::<usize>();
        taken
    }
}

impl GroupsAccumulator for FunnelGroupsAccumulator {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.groups.resize_with(total_num_groups, Vec::new);
        for (row, ts, mask) in matching_rows(values, opt_filter)? {
            self.groups[group_indices[row]].push((ts, mask));
            self.rows += 1;
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let (window_ms, steps) = (self.window_ms, self.steps);
        let groups = self.take(emit_to);
        Ok(Arc::new(Int64Array::from_iter_values(
            groups.into_iter().map(|mut rows| reached(&mut rows, window_ms, steps)),
        )))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let groups = self.take(emit_to);
        let rows: usize = groups.iter().map(Vec::len).sum();
        let mut ts = ListBuilder::new(Int64Builder::with_capacity(rows));
        let mut masks = ListBuilder::new(UInt32Builder::with_capacity(rows));
        for group in groups {
            for (t, m) in group {
                ts.values().append_value(t);
                masks.values().append_value(m);
            }
            ts.append(true);
            masks.append(true);
        }
        Ok(vec![Arc::new(ts.finish()), Arc::new(masks.finish())])
    }

    fn merge_batch(&mut self, values: &[ArrayRef], group_indices: &[usize], total_num_groups: usize) -> Result<()> {
        let (Some(ts), Some(masks)) = (values.first(), values.get(1)) else {
            return exec_err!("funnel_steps: malformed state");
        };
        let (ts, masks) = (ts.as_list::<i32>(), masks.as_list::<i32>());
        self.groups.resize_with(total_num_groups, Vec::new);
        for (row, &group) in group_indices.iter().enumerate() {
            if ts.is_null(row) || masks.is_null(row) {
                continue;
            }
            let (t, m) = (ts.value(row), masks.value(row));
            let (t, m) = (t.as_primitive::<Int64Type>(), m.as_primitive::<UInt32Type>());
            self.groups[group].extend(t.values().iter().copied().zip(m.values().iter().copied()));
            self.rows += t.len().min(m.len());
        }
        Ok(())
    }

    /// Each input row as a one-group state, so DataFusion can skip the partial aggregation when
    /// groups barely repeat within a batch (visitors, usually).
    fn convert_to_state(&self, values: &[ArrayRef], opt_filter: Option<&BooleanArray>) -> Result<Vec<ArrayRef>> {
        let rows = values.get(1).map_or(0, |ts| ts.len());
        let mut matching = matching_rows(values, opt_filter)?.peekable();
        let mut ts = ListBuilder::new(Int64Builder::new());
        let mut masks = ListBuilder::new(UInt32Builder::new());
        for row in 0..rows {
            if let Some((_, t, m)) = matching.next_if(|(r, _, _)| *r == row) {
                ts.values().append_value(t);
                masks.values().append_value(m);
            }
            ts.append(true);
            masks.append(true);
        }
        Ok(vec![Arc::new(ts.finish()), Arc::new(masks.finish())])
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self.groups.capacity() * std::mem::size_of::<Vec<(i64, u32)>>()
            + self.rows * std::mem::size_of::<(i64, u32)>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reached(window_ms: i64, steps: usize, rows: &[(i64, u32)]) -> i64 {
        FunnelAccumulator { window_ms, steps, rows: rows.to_vec() }.reached()
    }

    #[test]
    fn steps_count_in_order_strictly_after_each_other_within_the_window_of_the_first() {
        assert_eq!(reached(100, 3, &[]), 0);
        assert_eq!(reached(100, 3, &[(5, 0b010), (6, 0b100)]), 0);
        assert_eq!(reached(100, 3, &[(30, 0b100), (20, 0b010), (10, 0b001)]), 3);
        // The same instant is not "after".
        assert_eq!(reached(100, 3, &[(10, 0b001), (10, 0b010), (20, 0b100)]), 1);
        // The window runs from the first step, inclusive.
        assert_eq!(reached(100, 3, &[(10, 0b001), (60, 0b010), (110, 0b100)]), 3);
        assert_eq!(reached(100, 3, &[(10, 0b001), (60, 0b010), (111, 0b100)]), 2);
        // Anchored at the earliest step 1: a later step 1 does not restart the funnel.
        assert_eq!(reached(100, 2, &[(10, 0b001), (500, 0b001), (520, 0b010)]), 1);
        // One row can only serve one step.
        assert_eq!(reached(100, 3, &[(10, 0b001), (20, 0b110)]), 2);
    }
}

#[cfg(test)]
mod groups_tests {
    use super::*;
    use datafusion::arrow::array::TimestampMillisecondArray;

    fn accumulator() -> FunnelGroupsAccumulator {
        FunnelGroupsAccumulator { window_ms: 100, steps: 3, groups: Vec::new(), rows: 0 }
    }

    fn batch(ts: &[i64], steps: [&[bool]; 3]) -> Vec<ArrayRef> {
        let mut values: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![100; ts.len()])),
            Arc::new(TimestampMillisecondArray::from(ts.to_vec())),
        ];
        values.extend(steps.iter().map(|s| Arc::new(BooleanArray::from(s.to_vec())) as ArrayRef));
        values
    }

    #[test]
    fn groups_split_across_batches_and_partial_states_agree_with_one_accumulator_per_group() {
        // Group 0 reaches all 3 steps over two batches; group 1 only step 1; group 2 never starts;
        // the filtered-out row would otherwise give group 1 its step 2.
        let first = batch(&[10, 50, 20, 30], [&[true, false, true, false], &[false, false, false, true], &[false; 4]]);
        let second = batch(&[60, 70, 40], [&[false, false, false], &[false, false, true], &[true, false, false]]);
        let filter = BooleanArray::from(vec![true, true, false]);

        // Two partial aggregations, merged as DataFusion's final phase does.
        let mut partial_a = accumulator();
        partial_a.update_batch(&first, &[0, 2, 1, 0], None, 3).unwrap();
        let mut partial_b = accumulator();
        partial_b.update_batch(&second, &[0, 2, 1], Some(&filter), 3).unwrap();
        let mut fin = accumulator();
        for mut partial in [partial_a, partial_b] {
            let state = partial.state(EmitTo::All).unwrap();
            assert_eq!(partial.rows, 0);
            fin.merge_batch(&state, &[0, 1, 2], 3).unwrap();
        }
        let result = fin.evaluate(EmitTo::All).unwrap();
        let result = result.as_primitive::<Int64Type>();
        assert_eq!(result.values().to_vec(), vec![3, 1, 0]);
        assert_eq!(fin.rows, 0);
        assert!(fin.size() < 1024);

        // Rows turned straight into states (partial aggregation skipped) merge to the same answer.
        let mut direct = accumulator();
        direct.merge_batch(&direct.convert_to_state(&first, None).unwrap(), &[0, 2, 1, 0], 3).unwrap();
        direct.merge_batch(&direct.convert_to_state(&second, Some(&filter)).unwrap(), &[0, 2, 1], 3).unwrap();
        let result = direct.evaluate(EmitTo::All).unwrap();
        assert_eq!(result.as_primitive::<Int64Type>().values().to_vec(), vec![3, 1, 0]);
    }
}
