//! In-memory rows not yet in storage, as Arrow batches per (project, day).
//!
//! Rows arrive in the *active* generation. Sealing the WAL freezes it into a *frozen* generation
//! tagged with the sealed segment; a flush writes frozen generations to storage and drops them in the
//! same critical section that installs the catalog commit naming the new files.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use arrow::array::{new_null_array, Array, ArrayRef, RecordBatch};
use arrow::compute::concat;
use arrow::error::ArrowError;

use crate::event::column_group::NullColumns;
use crate::event::schema;
use crate::ids::{PartitionKey, ProjectId, SegmentId};

/// Small batches (one per group commit) are merged in runs of this many, so a long buffer does not
/// turn every query into thousands of tiny batches.
const MERGE_AT_BATCHES: usize = 64;
/// Runs whose batches average at least this many rows are left as they are: queries and flushes
/// read them well enough, and merging would copy every row once more (batched ingest).
const MERGE_BELOW_AVERAGE_ROWS: usize = 512;

/// One partition's rows: merged runs first, then the small batches since the last merge. Only the
/// small tail is ever concatenated, so each row is copied once, not once per merge.
#[derive(Default)]
struct PartitionBatches {
    batches: Vec<RecordBatch>,
    small_from: usize,
}

#[derive(Default)]
struct Generation {
    partitions: HashMap<PartitionKey, PartitionBatches>,
    bytes: usize,
    rows: usize,
}

impl Generation {
    fn insert(&mut self, key: PartitionKey, batch: RecordBatch) {
        self.bytes += batch.get_array_memory_size();
        self.rows += batch.num_rows();
        let partition = self.partitions.entry(key).or_default();
        partition.batches.push(batch);
        let small = &partition.batches[partition.small_from..];
        if small.len() >= MERGE_AT_BATCHES {
            let rows: usize = small.iter().map(RecordBatch::num_rows).sum();
            if rows >= MERGE_BELOW_AVERAGE_ROWS * small.len() {
                partition.small_from = partition.batches.len();
            } else if let Ok(merged) = concat_sparse(small) {
                let before: usize = small.iter().map(RecordBatch::get_array_memory_size).sum();
                self.bytes = self.bytes - before + merged.get_array_memory_size();
                partition.batches.truncate(partition.small_from);
                partition.batches.push(merged);
                partition.small_from = partition.batches.len();
            }
        }
    }
}

/// `concat_batches`, except that a column null in every batch (most detail columns, most of the
/// time) is made as one null array instead of being concatenated value by value.
pub(crate) fn concat_sparse(batches: &[RecordBatch]) -> Result<RecordBatch, ArrowError> {
    combine_sparse(batches, |parts| concat(parts), NullsFor::Buffer)
}

/// Who gets a [`combine_sparse`] batch, which decides how its null columns are made.
pub(crate) enum NullsFor {
    /// Kept in the buffer, whose memory accounting needs each column's own buffers.
    Buffer,
    /// Written out and dropped: all null columns share one allocation ([`NullColumns`]).
    Writing,
}

/// Builds one batch of [`schema`] from `batches` column by column with `combine`, except that a
/// column null in every batch becomes one null array without visiting its rows.
pub(crate) fn combine_sparse(
    batches: &[RecordBatch],
    combine: impl Fn(&[&dyn Array]) -> Result<ArrayRef, ArrowError>,
    nulls_for: NullsFor,
) -> Result<RecordBatch, ArrowError> {
    let schema = schema();
    let rows = batches.iter().map(RecordBatch::num_rows).sum();
    let shared = matches!(nulls_for, NullsFor::Writing).then(|| NullColumns::new(rows));
    let columns = (0..schema.fields().len())
        .map(|c| {
            let parts: Vec<&dyn Array> = batches.iter().map(|b| b.column(c).as_ref()).collect();
            if parts.iter().all(|a| a.null_count() == a.len()) {
                let data_type = schema.field(c).data_type();
                Ok(shared.as_ref().map_or_else(|| new_null_array(data_type, rows), |n| n.array(data_type)))
            } else {
                combine(&parts)
            }
        })
        .collect::<Result<Vec<_>, ArrowError>>()?;
    RecordBatch::try_new(schema, columns)
}

pub struct FrozenGeneration {
    pub sealed: SegmentId,
    pub next_event_id: u64,
    generation: Generation,
}

/// A partition's rows as seen by one query or one flush.
pub type PartitionRows = (PartitionKey, Vec<RecordBatch>);

#[derive(Default)]
pub struct Buffer {
    active: Generation,
    active_since: Option<Instant>,
    frozen: Vec<FrozenGeneration>,
    next_event_id: u64,
}

impl Buffer {
    pub fn new(next_event_id: u64) -> Self {
        Self { next_event_id, ..Default::default() }
    }

    pub fn insert(&mut self, key: PartitionKey, batch: RecordBatch) {
        self.active_since.get_or_insert_with(Instant::now);
        self.active.insert(key, batch);
    }

    pub fn note_event_ids_through(&mut self, next_event_id: u64) {
        self.next_event_id = self.next_event_id.max(next_event_id);
    }

    pub fn freeze(&mut self, sealed: SegmentId) {
        let generation = std::mem::take(&mut self.active);
        self.active_since = None;
        self.frozen.push(FrozenGeneration { sealed, next_event_id: self.next_event_id, generation });
    }

    /// All frozen rows, merged per partition, with the newest sealed segment they cover.
    pub fn frozen(&self) -> Option<(SegmentId, u64, Vec<PartitionRows>)> {
        let last = self.frozen.last()?;
        let mut merged: HashMap<PartitionKey, Vec<RecordBatch>> = HashMap::new();
        for generation in &self.frozen {
            for (key, partition) in &generation.generation.partitions {
                merged.entry(key.clone()).or_default().extend(partition.batches.iter().cloned());
            }
        }
        Some((last.sealed, last.next_event_id, merged.into_iter().collect()))
    }

    /// Drops the frozen generations a flush persisted.
    pub fn drop_frozen_through(&mut self, sealed: SegmentId) {
        self.frozen.retain(|g| g.sealed > sealed);
    }

    /// Every buffered row of the projects `visible` admits.
    pub fn rows(&self, visible: impl Fn(&ProjectId) -> bool) -> Vec<PartitionRows> {
        let mut out: HashMap<&PartitionKey, Vec<RecordBatch>> = HashMap::new();
        for generation in self.frozen.iter().map(|f| &f.generation).chain(std::iter::once(&self.active)) {
            for (key, partition) in &generation.partitions {
                if visible(&key.project) {
                    out.entry(key).or_default().extend(partition.batches.iter().cloned());
                }
            }
        }
        out.into_iter().map(|(k, v)| (k.clone(), v)).collect()
    }

    pub fn bytes(&self) -> usize {
        self.active.bytes + self.frozen.iter().map(|f| f.generation.bytes).sum::<usize>()
    }

    pub fn active_bytes(&self) -> usize {
        self.active.bytes
    }

    pub fn rows_buffered(&self) -> usize {
        self.active.rows + self.frozen.iter().map(|f| f.generation.rows).sum::<usize>()
    }

    pub fn active_age(&self) -> Option<Duration> {
        self.active_since.map(|t| t.elapsed())
    }

    pub fn has_frozen(&self) -> bool {
        !self.frozen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{sample, to_record_batch};

    fn batch(n: usize) -> (PartitionKey, RecordBatch) {
        let events: Vec<_> = (0..n).map(|i| sample("p", i as i64, "s")).collect();
        let key = events[0].partition();
        (key, to_record_batch(events.iter().enumerate().map(|(i, e)| (i as u64, e))).unwrap())
    }

    fn count(rows: &[PartitionRows]) -> usize {
        rows.iter().flat_map(|(_, b)| b).map(RecordBatch::num_rows).sum()
    }

    #[test]
    fn rows_move_from_active_to_frozen_to_gone_without_double_counting() {
        let mut buf = Buffer::new(0);
        let (k, b) = batch(3);
        buf.insert(k.clone(), b.clone());
        assert_eq!(count(&buf.rows(|_| true)), 3);
        buf.freeze(SegmentId(1));
        buf.insert(k.clone(), b.clone());
        assert_eq!(count(&buf.rows(|_| true)), 6);
        let (sealed, _, frozen) = buf.frozen().unwrap();
        assert_eq!(sealed, SegmentId(1));
        assert_eq!(count(&frozen), 3);
        buf.drop_frozen_through(SegmentId(1));
        assert_eq!(count(&buf.rows(|_| true)), 3);
        assert!(buf.frozen().is_none());
        assert_eq!(count(&buf.rows(|p| p.as_str() == "other")), 0);
    }

    #[test]
    fn many_small_batches_are_merged() {
        let mut buf = Buffer::new(0);
        for _ in 0..(MERGE_AT_BATCHES * 2 + 1) {
            let (k, b) = batch(1);
            buf.insert(k, b);
        }
        let rows = buf.rows(|_| true);
        // Two merged runs and the one small batch since: earlier runs are never merged again.
        let sizes: Vec<usize> = rows[0].1.iter().map(RecordBatch::num_rows).collect();
        assert_eq!(sizes, vec![MERGE_AT_BATCHES, MERGE_AT_BATCHES, 1]);
        assert_eq!(count(&rows), MERGE_AT_BATCHES * 2 + 1);
    }

    #[test]
    fn runs_of_large_batches_are_left_alone_and_small_ones_after_them_still_merge() {
        let mut buf = Buffer::new(0);
        for _ in 0..MERGE_AT_BATCHES {
            let (k, b) = batch(MERGE_BELOW_AVERAGE_ROWS);
            buf.insert(k, b);
        }
        for _ in 0..MERGE_AT_BATCHES {
            let (k, b) = batch(1);
            buf.insert(k, b);
        }
        let rows = buf.rows(|_| true);
        let sizes: Vec<usize> = rows[0].1.iter().map(RecordBatch::num_rows).collect();
        let mut expected = vec![MERGE_BELOW_AVERAGE_ROWS; MERGE_AT_BATCHES];
        expected.push(MERGE_AT_BATCHES);
        assert_eq!(sizes, expected);
    }
}
