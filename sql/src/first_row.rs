//! `first_row(value, key_1, ..., key_n)`: in each group, the value of the row that sorts first by
//! the keys (each with its own direction and null placement, fixed when the function is built).
//! Ties keep the row seen first.
//!
//! [`crate::top_row_per_partition`] plans `row_number() OVER (PARTITION BY p ORDER BY k) = 1` as
//! `GROUP BY p` with one `first_row` per column. DataFusion's own `first_value(v ORDER BY k)` would
//! answer the same question, but its groups accumulator walks every group of the aggregate for every
//! batch and keeps each group's keys as `ScalarValue`s: on the entry-pages query (282k sessions) it
//! is slower than the sort it would replace. Here the keys of a batch are row-encoded once
//! (`arrow::row`, compared as bytes), each group's best row within the batch is found in one pass
//! over the batch's rows, and the winning values are not copied: a group points at a row of a
//! retained input array, and the answer is gathered with one `interleave` when it is emitted.

use std::fmt;
use std::sync::Arc;

use arrow::array::{new_null_array, Array, ArrayRef, AsArray, BinaryArray, BooleanArray};
use arrow::compute::{interleave, SortOptions};
use arrow::datatypes::{DataType, Field, FieldRef};
use arrow::row::{RowConverter, SortField};
use datafusion::common::{internal_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility,
};

/// Marks a group that has seen no row yet.
const UNSET: u32 = u32::MAX;

/// Retained input arrays are gathered into one once they hold this many rows more than twice the
/// number of groups, so that memory stays proportional to the answer, not to the input.
const COMPACT_SLACK_ROWS: usize = 1 << 16;

/// The `first_row` aggregate for keys sorted by `options` (one per key, in order).
pub fn first_row(options: Vec<SortOptions>) -> AggregateUDF {
    AggregateUDF::from(FirstRow { signature: Signature::variadic_any(Volatility::Immutable), options })
}

#[derive(PartialEq, Eq, Hash)]
struct FirstRow {
    signature: Signature,
    options: Vec<SortOptions>,
}

impl fmt::Debug for FirstRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FirstRow").field("options", &self.options).finish()
    }
}

impl FirstRow {
    fn accumulator_for(&self, args: &AccumulatorArgs) -> Result<FirstRowGroups> {
        let types = args.expr_fields.iter().map(|f| f.data_type().clone()).collect::<Vec<_>>();
        let Some((value_type, key_types)) = types.split_first() else {
            return internal_err!("first_row without arguments");
        };
        if key_types.len() != self.options.len() {
            return internal_err!("first_row: {} keys for {} sort options", key_types.len(), self.options.len());
        }
        FirstRowGroups::try_new(value_type.clone(), key_types, &self.options)
    }
}

impl AggregateUDFImpl for FirstRow {
    fn name(&self) -> &str {
        "first_row"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if args.len() != self.options.len() + 1 {
            return plan_err!(
                "first_row takes a value and {} sort keys, got {} arguments",
                self.options.len(),
                args.len()
            );
        }
        Ok(args[0].clone())
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(FirstRowAccumulator(self.accumulator_for(&args)?)))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new(format!("{}[value]", args.name), args.return_type().clone(), true)),
            Arc::new(Field::new(format!("{}[key]", args.name), DataType::Binary, true)),
        ])
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(self.accumulator_for(&args)?))
    }
}

/// Per group: the row-encoded keys of its best row so far (empty while unset: an encoded row is
/// never empty) and where that row's value lives (`arrays[slot][row]`).
struct FirstRowGroups {
    value_type: DataType,
    converter: RowConverter,
    keys: Vec<Vec<u8>>,
    winners: Vec<(u32, u32)>,
    arrays: Vec<ArrayRef>,
    retained_rows: usize,
    retained_bytes: usize,
    keys_bytes: usize,
    /// Scratch for one batch: each touched group's best row in it, and the groups touched.
    batch_best: Vec<u32>,
    touched: Vec<usize>,
}

impl FirstRowGroups {
    fn try_new(value_type: DataType, key_types: &[DataType], options: &[SortOptions]) -> Result<Self> {
        let fields = key_types.iter().zip(options).map(|(t, o)| SortField::new_with_options(t.clone(), *o)).collect();
        Ok(Self {
            value_type,
            converter: RowConverter::new(fields)?,
            keys: Vec::new(),
            winners: Vec::new(),
            arrays: Vec::new(),
            retained_rows: 0,
            retained_bytes: 0,
            keys_bytes: 0,
            batch_best: Vec::new(),
            touched: Vec::new(),
        })
    }

    fn resize(&mut self, groups: usize) {
        if self.keys.len() < groups {
            self.keys.resize_with(groups, Vec::new);
            self.winners.resize(groups, (UNSET, 0));
            self.batch_best.resize(groups, UNSET);
        }
    }

    /// Offers each row (`key(row)`, `None` for a row that does not count) to its group.
    fn absorb<'a>(
        &mut self,
        values: &ArrayRef,
        key: impl Fn(usize) -> Option<&'a [u8]>,
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<()> {
        if values.len() > UNSET as usize {
            return internal_err!("first_row: a batch of {} rows", values.len());
        }
        for (row, &group) in group_indices.iter().enumerate() {
            if opt_filter.is_some_and(|f| !f.is_valid(row) || !f.value(row)) {
                continue;
            }
            let Some(candidate) = key(row) else { continue };
            let best = self.batch_best[group];
            if best == UNSET {
                self.batch_best[group] = row as u32;
                self.touched.push(group);
            } else if key(best as usize).is_some_and(|b| candidate < b) {
                self.batch_best[group] = row as u32;
            }
        }

        let slot = self.arrays.len() as u32;
        let mut retained = false;
        for group in self.touched.drain(..) {
            let row = std::mem::replace(&mut self.batch_best[group], UNSET);
            let Some(candidate) = key(row as usize) else { continue };
            let held = &mut self.keys[group];
            if held.is_empty() || candidate < held.as_slice() {
                self.keys_bytes = self.keys_bytes + candidate.len() - held.len();
                held.clear();
                held.extend_from_slice(candidate);
                self.winners[group] = (slot, row);
                retained = true;
            }
        }
        if retained {
            self.retained_rows += values.len();
            self.retained_bytes += values.get_array_memory_size();
            self.arrays.push(Arc::clone(values));
            if self.retained_rows > 2 * self.winners.len() + COMPACT_SLACK_ROWS {
                self.compact()?;
            }
        }
        Ok(())
    }

    /// The values of the first `n` groups, nulls for groups without a row.
    fn gather(&self, n: usize) -> Result<ArrayRef> {
        let null = new_null_array(&self.value_type, 1);
        let mut sources: Vec<&dyn Array> = self.arrays.iter().map(|a| a.as_ref()).collect();
        sources.push(null.as_ref());
        let null_slot = self.arrays.len();
        let indices: Vec<(usize, usize)> = self.winners[..n]
            .iter()
            .map(|&(slot, row)| if slot == UNSET { (null_slot, 0) } else { (slot as usize, row as usize) })
            .collect();
        Ok(interleave(&sources, &indices)?)
    }

    /// Replaces the retained arrays by one holding just the current winners. `interleave` of
    /// string views keeps pointing into the inputs' buffers, so those are copied out (`gc`).
    fn compact(&mut self) -> Result<()> {
        let values = self.gather(self.winners.len())?;
        let values: ArrayRef = match values.data_type() {
            DataType::Utf8View => Arc::new(values.as_string_view().gc()),
            DataType::BinaryView => Arc::new(values.as_binary_view().gc()),
            _ => values,
        };
        for (group, winner) in self.winners.iter_mut().enumerate() {
            if winner.0 != UNSET {
                *winner = (0, group as u32);
            }
        }
        self.retained_rows = values.len();
        self.retained_bytes = values.get_array_memory_size();
        self.arrays = vec![values];
        Ok(())
    }

    fn emit_count(&self, emit_to: EmitTo) -> usize {
        match emit_to {
            EmitTo::All => self.winners.len(),
            EmitTo::First(n) => n.min(self.winners.len()),
        }
    }

    /// Forgets the first `n` groups; the rest move down.
    fn drop_first(&mut self, n: usize) {
        let dropped_key_bytes: usize = self.keys[..n].iter().map(Vec::len).sum();
        self.keys_bytes -= dropped_key_bytes;
        self.keys.drain(..n);
        self.winners.drain(..n);
        self.batch_best.truncate(self.keys.len());
        if self.winners.is_empty() {
            self.arrays.clear();
            self.retained_rows = 0;
            self.retained_bytes = 0;
        }
    }

    fn take_keys(&self, n: usize) -> BinaryArray {
        self.keys[..n].iter().map(|k| (!k.is_empty()).then_some(k.as_slice())).collect()
    }
}

impl GroupsAccumulator for FirstRowGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        let Some((value, keys)) = values.split_first() else {
            return internal_err!("first_row without arguments");
        };
        self.resize(total_num_groups);
        let rows = self.converter.convert_columns(keys)?;
        self.absorb(value, |row| Some(rows.row(row).data()), group_indices, opt_filter)
    }

    fn merge_batch(&mut self, values: &[ArrayRef], group_indices: &[usize], total_num_groups: usize) -> Result<()> {
        let [value, keys] = values else {
            return internal_err!("first_row state has {} columns, not 2", values.len());
        };
        self.resize(total_num_groups);
        let keys = keys.as_binary::<i32>();
        self.absorb(value, |row| keys.is_valid(row).then(|| keys.value(row)), group_indices, None)
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let n = self.emit_count(emit_to);
        let values = self.gather(n)?;
        self.drop_first(n);
        Ok(values)
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let n = self.emit_count(emit_to);
        let values = self.gather(n)?;
        let keys = self.take_keys(n);
        self.drop_first(n);
        Ok(vec![values, Arc::new(keys)])
    }

    fn convert_to_state(&self, values: &[ArrayRef], opt_filter: Option<&BooleanArray>) -> Result<Vec<ArrayRef>> {
        let Some((value, keys)) = values.split_first() else {
            return internal_err!("first_row without arguments");
        };
        let rows = self.converter.convert_columns(keys)?;
        let keys: BinaryArray = (0..value.len())
            .map(|row| {
                let counted = opt_filter.is_none_or(|f| f.is_valid(row) && f.value(row));
                counted.then(|| rows.row(row).data())
            })
            .collect();
        Ok(vec![Arc::clone(value), Arc::new(keys)])
    }

    fn size(&self) -> usize {
        self.keys.capacity() * size_of::<Vec<u8>>()
            + self.keys_bytes
            + self.winners.capacity() * size_of::<(u32, u32)>()
            + self.batch_best.capacity() * size_of::<u32>()
            + self.retained_bytes
            + self.converter.size()
    }
}

/// `first_row` without GROUP BY: one group.
struct FirstRowAccumulator(FirstRowGroups);

impl fmt::Debug for FirstRowAccumulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FirstRowAccumulator")
    }
}

impl Accumulator for FirstRowAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let groups = vec![0; values.first().map_or(0, |v| v.len())];
        self.0.update_batch(values, &groups, None, 1)
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let groups = vec![0; states.first().map_or(0, |v| v.len())];
        self.0.merge_batch(states, &groups, 1)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        self.0.resize(1);
        let values = self.0.gather(1)?;
        ScalarValue::try_from_array(&values, 0)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.0.resize(1);
        let values = self.0.gather(1)?;
        let keys = self.0.take_keys(1);
        Ok(vec![ScalarValue::try_from_array(&values, 0)?, ScalarValue::try_from_array(&keys, 0)?])
    }

    fn size(&self) -> usize {
        size_of::<Self>() + self.0.size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};

    fn options(descending: bool) -> Vec<SortOptions> {
        vec![SortOptions { descending, nulls_first: false }; 2]
    }

    fn groups(descending: bool) -> FirstRowGroups {
        FirstRowGroups::try_new(DataType::Utf8, &[DataType::Int64, DataType::Int64], &options(descending))
            .expect("accumulator")
    }

    fn batch(values: &[&str], k1: &[Option<i64>], k2: &[i64]) -> Vec<ArrayRef> {
        vec![
            Arc::new(StringArray::from(values.to_vec())),
            Arc::new(Int64Array::from(k1.to_vec())),
            Arc::new(Int64Array::from(k2.to_vec())),
        ]
    }

    fn strings(array: &ArrayRef) -> Vec<Option<String>> {
        array.as_string::<i32>().iter().map(|s| s.map(str::to_owned)).collect()
    }

    #[test]
    fn picks_each_groups_first_row_across_batches() {
        let mut acc = groups(false);
        // Group 0's best comes in the second batch; group 1's in the first (tie on the first key,
        // broken by the second); group 2 sees only a null first key, which sorts last; group 3
        // never sees a row.
        acc.update_batch(
            &batch(&["a", "b", "c", "d"], &[Some(5), Some(3), Some(3), None], &[1, 9, 2, 0]),
            &[0, 1, 1, 2],
            None,
            4,
        )
        .expect("update");
        acc.update_batch(&batch(&["e", "f"], &[Some(4), Some(3)], &[7, 2]), &[0, 1], None, 4).expect("update");
        let values = acc.evaluate(EmitTo::All).expect("evaluate");
        assert_eq!(strings(&values), vec![Some("e".into()), Some("c".into()), Some("d".into()), None]);
    }

    #[test]
    fn descending_keys_pick_the_last_row() {
        let mut acc = groups(true);
        acc.update_batch(&batch(&["a", "b", "c"], &[Some(1), Some(2), Some(2)], &[0, 0, 1]), &[0, 0, 0], None, 1)
            .expect("update");
        assert_eq!(strings(&acc.evaluate(EmitTo::All).expect("evaluate")), vec![Some("c".into())]);
    }

    #[test]
    fn partial_states_merge_to_the_same_answer() {
        let input = batch(&["a", "b", "c", "d", "e"], &[Some(9), Some(1), Some(5), Some(0), Some(2)], &[0, 0, 0, 0, 0]);
        let group_of = [0, 1, 0, 1, 0];
        let mut whole = groups(false);
        whole.update_batch(&input, &group_of, None, 2).expect("update");
        let expected = strings(&whole.evaluate(EmitTo::All).expect("evaluate"));

        // Rows split over two partial accumulators (one by state, one by convert_to_state), merged.
        let mut left = groups(false);
        let firsts: Vec<ArrayRef> = input.iter().map(|a| a.slice(0, 2)).collect();
        left.update_batch(&firsts, &group_of[..2], None, 2).expect("update");
        let left_state = left.state(EmitTo::All).expect("state");
        let rests: Vec<ArrayRef> = input.iter().map(|a| a.slice(2, 3)).collect();
        let right_state = groups(false).convert_to_state(&rests, None).expect("convert");

        let mut merged = groups(false);
        merged.merge_batch(&left_state, &[0, 1], 2).expect("merge");
        merged.merge_batch(&right_state, &group_of[2..], 2).expect("merge");
        assert_eq!(strings(&merged.evaluate(EmitTo::All).expect("evaluate")), expected);
        assert_eq!(expected, vec![Some("e".into()), Some("d".into())]);
    }

    #[test]
    fn emitting_the_first_groups_keeps_the_rest() {
        let mut acc = groups(false);
        acc.update_batch(&batch(&["a", "b", "c"], &[Some(1), Some(2), Some(3)], &[0, 0, 0]), &[0, 1, 2], None, 3)
            .expect("update");
        assert_eq!(
            strings(&acc.evaluate(EmitTo::First(2)).expect("evaluate")),
            vec![Some("a".into()), Some("b".into())]
        );
        acc.update_batch(&batch(&["d", "e"], &[Some(0), Some(9)], &[0, 0]), &[0, 1], None, 2).expect("update");
        assert_eq!(strings(&acc.evaluate(EmitTo::All).expect("evaluate")), vec![Some("d".into()), Some("e".into())]);
    }

    #[test]
    fn filtered_rows_do_not_count() {
        let mut acc = groups(false);
        let filter = BooleanArray::from(vec![Some(false), None, Some(true)]);
        acc.update_batch(
            &batch(&["a", "b", "c"], &[Some(1), Some(2), Some(3)], &[0, 0, 0]),
            &[0, 0, 0],
            Some(&filter),
            1,
        )
        .expect("update");
        assert_eq!(strings(&acc.evaluate(EmitTo::All).expect("evaluate")), vec![Some("c".into())]);
    }

    #[test]
    fn compacted_string_views_hold_only_the_winners_bytes() {
        let mut acc = FirstRowGroups::try_new(DataType::Utf8View, &[DataType::Int64], &[SortOptions::default()])
            .expect("accumulator");
        let rows = 8192usize;
        for b in 0..12i64 {
            // Long strings (not inlined in the views): each batch has its own ~400 KB buffer.
            let values: arrow::array::StringViewArray =
                (0..rows).map(|i| Some(format!("{:0>48}", b * rows as i64 + i as i64))).collect();
            let keys = Int64Array::from(vec![-b; rows]);
            let group_of: Vec<usize> = (0..rows).map(|i| i % 4).collect();
            acc.update_batch(&[Arc::new(values), Arc::new(keys)], &group_of, None, 4).expect("update");
        }
        // Every batch improves every group, so each is retained until the slack is exceeded.
        assert!(acc.arrays.len() < 12, "compaction ran: {} arrays", acc.arrays.len());
        let compacted = acc.arrays[0].as_string_view();
        let buffered: usize = compacted.data_buffers().iter().map(|b| b.len()).sum();
        assert!(buffered <= 4 * 48, "{buffered} bytes kept for 4 winners");
        let winners = acc.evaluate(EmitTo::All).expect("evaluate");
        let last = 11 * rows as i64;
        assert_eq!(winners.as_string_view().value(2), format!("{:0>48}", last + 2));
    }

    #[test]
    fn retained_inputs_are_compacted() {
        let mut acc = groups(true);
        // Every row of every batch improves its group (descending keys, ascending input), so every
        // batch is retained until the slack is exceeded.
        let rows = 4096usize;
        for b in 0..40i64 {
            let values: Vec<String> = (0..rows).map(|i| format!("v{b}-{i}")).collect();
            let refs: Vec<&str> = values.iter().map(String::as_str).collect();
            let k1: Vec<Option<i64>> = (0..rows).map(|_| Some(b)).collect();
            let k2 = vec![0i64; rows];
            let group_of: Vec<usize> = (0..rows).map(|i| i % 8).collect();
            acc.update_batch(&batch(&refs, &k1, &k2), &group_of, None, 8).expect("update");
        }
        assert!(acc.retained_rows <= 2 * 8 + COMPACT_SLACK_ROWS + rows, "{}", acc.retained_rows);
        let values = strings(&acc.evaluate(EmitTo::All).expect("evaluate"));
        assert_eq!(values[3], Some("v39-3".into()));
    }
}
