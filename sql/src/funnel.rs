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

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, ListArray, UInt32Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type, TimeUnit, UInt32Type};
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility};
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
        let window = args.exprs.first().and_then(|e| e.downcast_ref::<Literal>()).map(Literal::value);
        let window_ms = match window.map(|v| v.cast_to(&DataType::Int64)) {
            Some(Ok(ScalarValue::Int64(Some(ms)))) if ms >= 0 => ms,
            _ => return plan_err!("funnel_steps: window_ms must be a literal, non-negative number of milliseconds"),
        };
        Ok(Box::new(FunnelAccumulator { window_ms, steps: args.exprs.len() - 2, rows: Vec::new() }))
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

/// One group's rows that satisfy any step: (milliseconds, bit mask of the steps they satisfy).
#[derive(Debug)]
struct FunnelAccumulator {
    window_ms: i64,
    steps: usize,
    rows: Vec<(i64, u32)>,
}

impl FunnelAccumulator {
    fn reached(&mut self) -> i64 {
        self.rows.sort_unstable();
        let Some(start) = self.rows.iter().position(|(_, mask)| mask & 1 != 0) else {
            return 0;
        };
        let (t1, _) = self.rows[start];
        let deadline = t1.saturating_add(self.window_ms);
        let (mut reached, mut previous, mut at) = (1, t1, start + 1);
        while reached < self.steps {
            let bit = 1u32 << reached;
            let next = self.rows[at..]
                .iter()
                .take_while(|(ts, _)| *ts <= deadline)
                .position(|(ts, mask)| *ts > previous && mask & bit != 0);
            match next {
                Some(offset) => {
                    at += offset;
                    previous = self.rows[at].0;
                    at += 1;
                    reached += 1;
                }
                None => break,
            }
        }
        reached as i64
    }
}

impl Accumulator for FunnelAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let Some(ts) = values.get(1) else {
            return exec_err!("funnel_steps: missing ts");
        };
        let ts = match ts.data_type() {
            DataType::Int64 => Arc::clone(ts),
            _ => cast(&cast(ts, &DataType::Timestamp(TimeUnit::Millisecond, None))?, &DataType::Int64)?,
        };
        let ts = ts.as_primitive::<Int64Type>();
        let conditions: Vec<BooleanArray> = values[2..]
            .iter()
            .map(|c| cast(c, &DataType::Boolean).map(|c| c.as_boolean().clone()))
            .collect::<std::result::Result<_, _>>()?;
        for row in 0..ts.len() {
            if ts.is_null(row) {
                continue;
            }
            let mask = conditions
                .iter()
                .enumerate()
                .filter(|(_, c)| c.is_valid(row) && c.value(row))
                .fold(0u32, |mask, (step, _)| mask | 1 << step);
            if mask != 0 {
                self.rows.push((ts.value(row), mask));
            }
        }
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
