//! Compaction: merging a partition's small files into fewer large ones.
//!
//! Every flush writes one file per partition it holds rows for, so a site with steady traffic gets
//! a new file for today every `flush_age` (1,440 a day at the default minute). Each file a query
//! opens costs it a footer, a schema conversion and a decompression context per column read, and
//! each small file repeats ~20 KB of footer and compresses worse. Compaction keeps that bounded:
//!
//! - **what** ([`plan`]): size-tiered, so a row is rewritten about log₄(file rows) times, not once
//!   per flush. Files are grouped in tiers by row count (×4 per tier); `fanin` files of one tier
//!   merge into one of the next. A partition whose day ended more than `settle` ago gets no more
//!   flushes, so its small files merge whole regardless of tier. Files of `target_rows` or more are
//!   final.
//! - **how** ([`merge`]): a streaming k-way merge of the inputs, which are each sorted by the
//!   flush's key `(event_type, session_id, added_iso, event_id)` (an input written under an
//!   earlier key is sorted afresh first), into one file in the same order, with its session index
//!   built as rows are written. Memory is a batch per input plus the writer's row
//!   group, whatever the partition's size. Inputs written by an older schema gain its new columns
//!   as nulls.
//! - **commit** (in [`crate::Engine::compact`]): one catalog version removes the inputs and adds the
//!   output, so a query sees either the old files or the new one, never both or neither. Inputs
//!   are deleted only once no query snapshot holds them; a crash leaves at worst unreferenced
//!   files, which [`crate::Engine::open`] deletes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{new_null_array, Array, ArrayRef, AsArray, RecordBatch, TimestampMillisecondArray};
use arrow::compute::SortOptions;
use arrow::compute::{cast, interleave};
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::row::{RowConverter, Rows, SortField};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::errors::ParquetError;
use thiserror::Error;

use crate::catalog::{CatalogFile, DataFileMeta};
use crate::event::{columns, schema};
use crate::ids::{FileId, PartitionKey};
use crate::page_reports::{report_keys, PageReports};
use crate::partition_file::{
    encode, sort_key_columns, sorting_columns, writer, EncodeOptions, EncodedFile, Layout, PartitionFileError,
};
use crate::session_index::{session_key, SessionIndex};

/// Rows read from each input per step of the merge.
const READ_BATCH_ROWS: usize = 8192;
/// Files below this many rows share the lowest tier.
const FIRST_TIER_ROWS: u64 = 16 * 1024;

#[derive(Debug, Error)]
pub enum CompactionError {
    #[error("arrow: {0}")]
    Arrow(#[from] ArrowError),
    #[error("parquet: {0}")]
    Parquet(#[from] ParquetError),
    #[error("writing the merged file: {0}")]
    Encode(#[from] PartitionFileError),
    #[error("reading an input file: {0}")]
    Store(#[from] object_store::Error),
    #[error("a merge needs at least two input files")]
    TooFewInputs,
    #[error("merge task failed: {0}")]
    Join(String),
}

#[derive(Debug, Clone, Copy)]
pub struct CompactionPolicy {
    /// Files of one tier that trigger a merge.
    pub fanin: usize,
    /// Most files one merge reads (bounds its open streams and its memory).
    pub max_inputs: usize,
    /// Files with this many rows are left alone.
    pub target_rows: u64,
    /// How long after a day's end its partition is merged whole.
    pub settle: Duration,
}

impl Default for CompactionPolicy {
    fn default() -> Self {
        Self { fanin: 4, max_inputs: 32, target_rows: 4 << 20, settle: Duration::from_secs(2 * 3600) }
    }
}

/// One merge: files of a partition that become one file.
#[derive(Debug, Clone)]
pub struct MergePlan {
    pub partition: PartitionKey,
    pub inputs: Vec<Arc<CatalogFile>>,
}

impl MergePlan {
    pub fn rows(&self) -> u64 {
        self.inputs.iter().map(|f| f.meta.rows).sum()
    }
}

fn tier(rows: u64, fanin: usize) -> u32 {
    let fanin = fanin.max(2) as u64;
    let mut tier = 0;
    let mut ceiling = FIRST_TIER_ROWS;
    while rows >= ceiling && tier < 32 {
        ceiling = ceiling.saturating_mul(fanin);
        tier += 1;
    }
    tier
}

/// The merges `policy` asks for among `files`, at wall-clock time `now_ms`. Each input appears in at
/// most one plan.
pub fn plan(files: &[Arc<CatalogFile>], policy: &CompactionPolicy, now_ms: i64) -> Vec<MergePlan> {
    let mut by_partition: BTreeMap<PartitionKey, Vec<Arc<CatalogFile>>> = BTreeMap::new();
    for file in files.iter().filter(|f| f.meta.rows < policy.target_rows) {
        let key = PartitionKey { project: file.meta.project.clone(), day: file.meta.day };
        by_partition.entry(key).or_default().push(Arc::clone(file));
    }
    let max_inputs = policy.max_inputs.max(2);
    let settle_ms = i64::try_from(policy.settle.as_millis()).unwrap_or(i64::MAX);
    let mut plans = Vec::new();
    for (partition, mut small) in by_partition {
        if small.len() < 2 {
            continue;
        }
        // Oldest first, so a merge takes files that were written together.
        small.sort_by_key(|f| f.meta.file_id);
        let day_end_ms = partition.day.start_millis().saturating_add(86_400_000);
        let settled = now_ms >= day_end_ms.saturating_add(settle_ms);
        let groups: Vec<Vec<Arc<CatalogFile>>> = if settled {
            let mut groups = Vec::new();
            let mut current: Vec<Arc<CatalogFile>> = Vec::new();
            let mut rows = 0;
            for file in small {
                if !current.is_empty() && (rows + file.meta.rows > policy.target_rows || current.len() == max_inputs) {
                    groups.push(std::mem::take(&mut current));
                    rows = 0;
                }
                rows += file.meta.rows;
                current.push(file);
            }
            groups.push(current);
            groups
        } else {
            let mut tiers: BTreeMap<u32, Vec<Arc<CatalogFile>>> = BTreeMap::new();
            for file in small {
                tiers.entry(tier(file.meta.rows, policy.fanin)).or_default().push(file);
            }
            tiers
                .into_values()
                .filter(|files| files.len() >= policy.fanin.max(2))
                .flat_map(|files| files.chunks(max_inputs).map(<[_]>::to_vec).collect::<Vec<_>>())
                .collect()
        };
        plans.extend(
            groups
                .into_iter()
                .filter(|g| g.len() >= 2)
                .map(|inputs| MergePlan { partition: partition.clone(), inputs }),
        );
    }
    plans
}

/// One input of the merge: its reader and the batch under its cursor.
struct Input {
    reader: ParquetRecordBatchReader,
    batch: RecordBatch,
    keys: Rows,
    pos: usize,
}

impl Input {
    fn remaining(&self) -> usize {
        self.batch.num_rows() - self.pos
    }
}

/// Merges `inputs` (files of `partition`, each sorted by the flush's key) into one encoded file.
/// Inputs are fetched whole (one request each; the policy bounds their total) and decoded a batch
/// at a time on a blocking thread.
pub async fn merge(
    store: &Arc<dyn ObjectStore>,
    partition: &PartitionKey,
    inputs: &[Arc<CatalogFile>],
    opts: EncodeOptions,
) -> Result<EncodedFile, CompactionError> {
    if inputs.len() < 2 {
        return Err(CompactionError::TooFewInputs);
    }
    let paths: Vec<object_store::path::Path> = inputs.iter().map(|f| f.meta.path().parquet()).collect();
    let files: Vec<Bytes> = futures::stream::iter(paths)
        .map(|path| {
            let store = Arc::clone(store);
            async move { store.get(&path).await?.bytes().await }
        })
        .buffered(4)
        .try_collect()
        .await?;
    let partition = partition.clone();
    tokio::task::spawn_blocking(move || merge_sorted(&partition, files, opts))
        .await
        .map_err(|e| CompactionError::Join(e.to_string()))?
}

/// The merge itself, over the inputs' Parquet bytes.
fn merge_sorted(
    partition: &PartitionKey,
    files: Vec<Bytes>,
    opts: EncodeOptions,
) -> Result<EncodedFile, CompactionError> {
    let target = schema();
    let key_columns =
        sort_key_columns().iter().map(|name| target.index_of(name)).collect::<Result<Vec<_>, ArrowError>>()?;
    let converter = RowConverter::new(
        key_columns
            .iter()
            .map(|&i| {
                SortField::new_with_options(
                    target.field(i).data_type().clone(),
                    SortOptions { descending: false, nulls_first: true },
                )
            })
            .collect(),
    )?;
    let convert = |batch: &RecordBatch| -> Result<Rows, ArrowError> {
        let columns: Vec<ArrayRef> = key_columns.iter().map(|&i| Arc::clone(batch.column(i))).collect();
        converter.convert_columns(&columns)
    };

    let mut open: Vec<Input> = Vec::with_capacity(files.len());
    let expected_order = sorting_columns()?;
    let builders = files
        .into_iter()
        .map(|bytes| {
            let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)?;
            let in_order = builder.metadata().row_groups().iter().all(|g| g.sorting_columns() == Some(&expected_order));
            if in_order {
                return Ok(builder);
            }
            // Written under an earlier sort key: sorted afresh, as a flush would write it today.
            let mut reader = builder.with_batch_size(READ_BATCH_ROWS).build()?;
            let mut batches = Vec::new();
            while let Some(batch) = next_batch(&mut reader, &target)? {
                batches.push(batch);
            }
            let resorted = encode(partition, &batches, opts)?;
            Ok(ParquetRecordBatchReaderBuilder::try_new(resorted.parquet)?)
        })
        .collect::<Result<Vec<_>, CompactionError>>()?;
    let layout = Layout::of_merged(builders.iter().map(|b| b.metadata().as_ref()));
    for builder in builders {
        let mut reader = builder.with_batch_size(READ_BATCH_ROWS).build()?;
        if let Some(batch) = next_batch(&mut reader, &target)? {
            let keys = convert(&batch)?;
            open.push(Input { reader, batch, keys, pos: 0 });
        }
    }

    let mut out = Vec::new();
    let mut writer = writer(&mut out, opts, &layout)?;
    let session_column = target.index_of(columns::SESSION_ID)?;
    let ts_column = target.index_of(columns::ADDED_ISO)?;
    let mut group_keys: Vec<Vec<u32>> = Vec::new();
    let mut page_keys: Vec<u64> = Vec::new();
    let mut rows_written: u64 = 0;
    let (mut min_ts_ms, mut max_ts_ms) = (i64::MAX, i64::MIN);

    while !open.is_empty() {
        // Every row up to the smallest of the inputs' last buffered keys can be written now: no
        // input can later produce a row that sorts before it.
        let bound = open
            .iter()
            .map(|input| input.keys.row(input.batch.num_rows() - 1))
            .min()
            .ok_or(CompactionError::TooFewInputs)?
            .owned();
        let mut take: Vec<(usize, usize)> = Vec::new();
        for (i, input) in open.iter().enumerate() {
            let n = input.remaining();
            let upto = partition_point(n, |k| input.keys.row(input.pos + k) <= bound.row());
            take.extend((input.pos..input.pos + upto).map(|row| (i, row)));
        }
        take.sort_unstable_by(|&(a, ra), &(b, rb)| open[a].keys.row(ra).cmp(&open[b].keys.row(rb)));

        let batches: Vec<&RecordBatch> = open.iter().map(|input| &input.batch).collect();
        let columns = (0..target.fields().len())
            .map(|c| {
                let parts: Vec<&dyn Array> = batches.iter().map(|b| b.column(c).as_ref()).collect();
                interleave(&parts, &take)
            })
            .collect::<Result<Vec<_>, ArrowError>>()?;
        let merged = RecordBatch::try_new(Arc::clone(&target), columns)?;

        page_keys.extend(report_keys(&merged)?);
        let sessions = merged.column(session_column).as_string::<i32>();
        for row in 0..merged.num_rows() {
            let group = (rows_written as usize + row) / opts.row_group_rows.max(1);
            if group_keys.len() <= group {
                group_keys.resize_with(group + 1, Vec::new);
            }
            if !sessions.is_null(row) {
                group_keys[group].push(session_key(sessions.value(row)));
            }
        }
        let ts = merged
            .column(ts_column)
            .as_any()
            .downcast_ref::<TimestampMillisecondArray>()
            .ok_or_else(|| ArrowError::SchemaError("added_iso is not a millisecond timestamp".into()))?;
        if let (Some(lo), Some(hi)) = (arrow::compute::min(ts), arrow::compute::max(ts)) {
            min_ts_ms = min_ts_ms.min(lo);
            max_ts_ms = max_ts_ms.max(hi);
        }
        rows_written += merged.num_rows() as u64;
        writer.write(&merged)?;

        // Advance every input past what was taken; refill those that ran dry.
        let mut taken = vec![0usize; open.len()];
        for &(i, _) in &take {
            taken[i] += 1;
        }
        let mut still_open = Vec::with_capacity(open.len());
        for (mut input, n) in open.into_iter().zip(taken) {
            input.pos += n;
            if input.remaining() == 0 {
                match next_batch(&mut input.reader, &target)? {
                    Some(batch) => {
                        input.keys = convert(&batch)?;
                        input.batch = batch;
                        input.pos = 0;
                    }
                    None => continue,
                }
            }
            still_open.push(input);
        }
        open = still_open;
    }

    let metadata = writer.close()?;
    let row_groups = metadata.num_row_groups();
    group_keys.resize_with(row_groups, Vec::new);
    let index = SessionIndex::from_row_group_keys(group_keys).with_page_reports(PageReports::from_keys(page_keys));
    let meta = DataFileMeta {
        project: partition.project.clone(),
        day: partition.day,
        file_id: FileId::generate(),
        size_bytes: out.len() as u64,
        rows: rows_written,
        row_groups,
        min_ts_ms: if rows_written == 0 { 0 } else { min_ts_ms },
        max_ts_ms: if rows_written == 0 { 0 } else { max_ts_ms },
    };
    Ok(EncodedFile { parquet: Bytes::from(out), index, meta })
}

/// The number of leading items (of `n`) for which `pred` holds, for a `pred` that holds on a prefix.
fn partition_point(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// The reader's next non-empty batch, in the current schema.
fn next_batch(
    reader: &mut ParquetRecordBatchReader,
    target: &SchemaRef,
) -> Result<Option<RecordBatch>, CompactionError> {
    for batch in reader.by_ref() {
        let batch = batch?;
        if batch.num_rows() > 0 {
            return Ok(Some(to_schema(&batch, target)?));
        }
    }
    Ok(None)
}

/// `batch` in `target`'s columns, by name: columns a file predates are nulls, types are cast.
fn to_schema(batch: &RecordBatch, target: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    if batch.schema().fields() == target.fields() {
        return RecordBatch::try_new(Arc::clone(target), batch.columns().to_vec());
    }
    let columns = target
        .fields()
        .iter()
        .map(|field| match batch.column_by_name(field.name()) {
            Some(column) if column.data_type() == field.data_type() => Ok(Arc::clone(column)),
            Some(column) => cast(column, field.data_type()),
            None => Ok(new_null_array(field.data_type(), batch.num_rows())),
        })
        .collect::<Result<Vec<_>, ArrowError>>()?;
    RecordBatch::try_new(Arc::clone(target), columns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{sample, to_record_batch};
    use crate::ids::ProjectId;
    use crate::partition_file::encode;
    use object_store::memory::InMemory;
    use object_store::PutPayload;

    fn partition() -> PartitionKey {
        PartitionKey { project: ProjectId::new("p").unwrap(), day: "2026-11-20".parse().unwrap() }
    }

    async fn write_file(
        store: &Arc<dyn ObjectStore>,
        first_id: u64,
        events: &[crate::Event],
        opts: EncodeOptions,
    ) -> Arc<CatalogFile> {
        let batch = to_record_batch(events.iter().enumerate().map(|(i, e)| (first_id + i as u64, e))).unwrap();
        let encoded = encode(&partition(), &[batch], opts).unwrap();
        let path = encoded.meta.path();
        store.put(&path.parquet(), PutPayload::from(encoded.parquet)).await.unwrap();
        Arc::new(CatalogFile { meta: encoded.meta, index: encoded.index })
    }

    fn read_all(parquet: &Bytes) -> RecordBatch {
        let read: Vec<RecordBatch> = ParquetRecordBatchReaderBuilder::try_new(parquet.clone())
            .unwrap()
            .build()
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        arrow::compute::concat_batches(&schema(), &read).unwrap()
    }

    fn meta_file(rows: u64, day: &str) -> Arc<CatalogFile> {
        Arc::new(CatalogFile {
            meta: DataFileMeta {
                project: ProjectId::new("p").unwrap(),
                day: day.parse().unwrap(),
                file_id: FileId::generate(),
                size_bytes: rows * 20,
                rows,
                row_groups: 1,
                min_ts_ms: 0,
                max_ts_ms: 0,
            },
            index: SessionIndex::default(),
        })
    }

    #[tokio::test]
    async fn merge_keeps_every_row_once_in_session_order_and_indexes_row_groups() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let day_ms = partition().day.start_millis();
        let opts = EncodeOptions { row_group_rows: 300, zstd_level: 3 };
        let mut inputs = Vec::new();
        // Three flushes, each holding rows of the same 40 sessions at different times.
        for f in 0..3u64 {
            let events: Vec<_> = (0..500u64)
                .map(|i| sample("p", day_ms + (f * 1000 + i) as i64 * 1000, &format!("s{:02}", (i * 7 + f) % 40)))
                .collect();
            inputs.push(write_file(&store, f * 1000, &events, opts).await);
        }
        let merged = merge(&store, &partition(), &inputs, opts).await.unwrap();
        assert_eq!(merged.meta.rows, 1500);
        assert_eq!(merged.meta.row_groups, 5);
        assert_eq!(merged.meta.min_ts_ms, day_ms);
        assert_eq!(merged.meta.max_ts_ms, day_ms + 2499 * 1000);

        let all = read_all(&merged.parquet);
        let sessions = all.column_by_name(columns::SESSION_ID).unwrap().as_string::<i32>();
        let ts = all
            .column_by_name(columns::ADDED_ISO)
            .unwrap()
            .as_primitive::<arrow::datatypes::TimestampMillisecondType>();
        let ids = all.column_by_name(columns::EVENT_ID).unwrap().as_primitive::<arrow::datatypes::UInt64Type>();
        let keys: Vec<(&str, i64, u64)> =
            (0..all.num_rows()).map(|i| (sessions.value(i), ts.value(i), ids.value(i))).collect();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        assert_eq!(keys, sorted, "rows come out in the flush's order");
        let mut unique: Vec<u64> = keys.iter().map(|k| k.2).collect();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 1500, "no row lost or repeated");

        // The index names exactly the row groups each session's rows landed in.
        for s in ["s00", "s17", "s39"] {
            let expected: Vec<bool> =
                (0..5).map(|g| (g * 300..(g + 1) * 300).any(|i| sessions.value(i) == s)).collect();
            let matching = merged.index.row_groups_matching(&[session_key(s)]);
            for (g, want) in expected.iter().enumerate() {
                assert!(!want || matching[g], "{s} is in row group {g}");
            }
        }
        assert!(merged.index.may_contain_any(&[session_key("s05")]));
    }

    #[tokio::test]
    async fn a_merged_file_names_the_pages_its_inputs_hold_reports_of() {
        use crate::page_reports::page_key;
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let day_ms = partition().day.start_millis();
        let opts = EncodeOptions::default();
        // Page views in the first file; reports of half of those pages in the second, as when
        // they arrive after a flush.
        let page = |i: u64, kind: crate::EventType| {
            let mut e = sample("p", day_ms + i as i64 * 1000, &format!("s{}", i % 9));
            e.context.page_id = Some(format!("page{i}"));
            e.event_type = kind;
            e
        };
        let views: Vec<_> = (0..200).map(|i| page(i, crate::EventType::Pageview)).collect();
        let reports: Vec<_> = (0..200).step_by(2).map(|i| page(i, crate::EventType::Engagement)).collect();
        let inputs = vec![write_file(&store, 0, &views, opts).await, write_file(&store, 1000, &reports, opts).await];
        assert_eq!(inputs[0].index.page_reports().map(|r| r.pages()), Some(0));
        let merged = merge(&store, &partition(), &inputs, opts).await.unwrap();
        assert_eq!(merged.index.page_reports().map(|r| r.pages()), Some(100));
        let held = |i: u64| merged.index.may_hold_reports_of(&[page_key(&format!("page{i}"))]);
        assert!((0..200).step_by(2).all(held));
        assert!((1..200).step_by(2).filter(|i| held(*i)).count() <= 1);
    }

    #[test]
    fn files_of_one_tier_merge_and_settled_days_merge_whole() {
        let policy =
            CompactionPolicy { fanin: 4, max_inputs: 32, target_rows: 1 << 20, settle: Duration::from_secs(3600) };
        let today = "2026-11-25";
        let now_ms = "2026-11-25".parse::<crate::ids::Day>().unwrap().start_millis() + 12 * 3600 * 1000;
        // Today: three small files are not yet a merge; a fourth makes one.
        let mut files: Vec<_> = (0..3).map(|_| meta_file(1000, today)).collect();
        assert!(plan(&files, &policy, now_ms).is_empty());
        files.push(meta_file(2000, today));
        let plans = plan(&files, &policy, now_ms);
        assert_eq!(plans.len(), 1);
        assert_eq!(plans[0].inputs.len(), 4);
        // A large file of a higher tier does not join the small ones.
        files.push(meta_file(200_000, today));
        assert_eq!(plan(&files, &policy, now_ms)[0].inputs.len(), 4);
        // Files at the target size are final.
        let done = vec![meta_file(1 << 20, today), meta_file(1 << 20, today)];
        assert!(plan(&done, &policy, now_ms).is_empty());

        // Yesterday is settled: any two small files merge, whatever their tiers.
        let yesterday = vec![meta_file(10, "2026-11-24"), meta_file(300_000, "2026-11-24")];
        let plans = plan(&yesterday, &policy, now_ms);
        assert_eq!(plans.len(), 1);
        assert_eq!(plans[0].rows(), 300_010);
        // ...but never beyond target_rows per output.
        let big = vec![meta_file(600_000, "2026-11-24"), meta_file(600_000, "2026-11-24"), meta_file(10, "2026-11-24")];
        let plans = plan(&big, &policy, now_ms);
        assert!(plans.iter().all(|p| p.rows() <= policy.target_rows));
        assert_eq!(plans.len(), 1);
    }

    #[test]
    fn older_files_gain_new_columns_as_nulls() {
        let full = schema();
        let old_fields: Vec<_> = full.fields().iter().filter(|f| f.name() != "page_title").cloned().collect();
        let old = Arc::new(arrow::datatypes::Schema::new(old_fields));
        let events = [sample("p", 0, "s")];
        let batch = to_record_batch(events.iter().enumerate().map(|(i, e)| (i as u64, e))).unwrap();
        let old_batch = RecordBatch::try_new(
            Arc::clone(&old),
            old.fields().iter().map(|f| Arc::clone(batch.column_by_name(f.name()).unwrap())).collect(),
        )
        .unwrap();
        let adapted = to_schema(&old_batch, &full).unwrap();
        assert_eq!(adapted.schema(), full);
        assert!(adapted.column_by_name("page_title").unwrap().is_null(0));
    }

    #[tokio::test]
    async fn files_sorted_under_an_earlier_key_are_sorted_afresh_before_the_merge() {
        use parquet::arrow::ArrowWriter;
        use parquet::file::metadata::SortingColumn;
        use parquet::file::properties::WriterProperties;

        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let day_ms = partition().day.start_millis();
        let opts = EncodeOptions { row_group_rows: 100, zstd_level: 3 };
        let event = |i: u64| {
            let mut e = sample("p", day_ms + i as i64 * 1000, &format!("s{:02}", i % 10));
            if i.is_multiple_of(3) {
                e.event_type = crate::event::EventType::Custom;
                e.name = "signup".into();
            }
            e
        };
        // An old file: page views and custom events interleaved in session order, and its footer
        // says so.
        let mut old_events: Vec<_> = (0..200u64).map(event).collect();
        old_events.sort_by(|a, b| (&a.session_id, a.timestamp_ms).cmp(&(&b.session_id, b.timestamp_ms)));
        let batch = to_record_batch(old_events.iter().enumerate().map(|(i, e)| (i as u64, e))).unwrap();
        let old_key = [columns::SESSION_ID, columns::ADDED_ISO, columns::EVENT_ID]
            .iter()
            .map(|name| SortingColumn {
                column_idx: schema().index_of(name).unwrap() as i32,
                descending: false,
                nulls_first: true,
            })
            .collect();
        let props = WriterProperties::builder().set_sorting_columns(Some(old_key)).build();
        let mut bytes = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut bytes, schema(), Some(props)).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        let old_meta = encode(&partition(), &[batch], opts).unwrap().meta;
        store.put(&old_meta.path().parquet(), PutPayload::from(bytes)).await.unwrap();
        let old = Arc::new(CatalogFile { meta: old_meta, index: SessionIndex::default() });

        let new_events: Vec<_> = (200..400u64).map(event).collect();
        let new = write_file(&store, 1000, &new_events, opts).await;

        let merged = merge(&store, &partition(), &[old, new], opts).await.unwrap();
        assert_eq!(merged.meta.rows, 400);
        let all = read_all(&merged.parquet);
        let types = all.column_by_name(columns::EVENT_TYPE).unwrap().as_string::<i32>();
        let sessions = all.column_by_name(columns::SESSION_ID).unwrap().as_string::<i32>();
        let ts = all
            .column_by_name(columns::ADDED_ISO)
            .unwrap()
            .as_primitive::<arrow::datatypes::TimestampMillisecondType>();
        let keys: Vec<(&str, &str, i64)> =
            (0..all.num_rows()).map(|i| (types.value(i), sessions.value(i), ts.value(i))).collect();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        assert_eq!(keys, sorted, "one order throughout, the current key's");
        assert_eq!(keys.iter().filter(|k| k.0 == "event").count(), 134);
    }
}
