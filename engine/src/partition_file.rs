//! Encoding one partition's buffered rows as a Parquet file plus its session index.
//!
//! Rows are sorted by `(session_id, added_iso, event_id)`. Most columns are constant within a
//! session (visitor, hostname, referrer, UTM, later device and geo), so this order turns them into
//! long runs that dictionary + RLE + zstd store in almost nothing, timestamps become small deltas,
//! and a session's rows sit together in one row group, which is what the session index prunes to.

use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch, TimestampMillisecondArray};
use arrow::compute::{concat, interleave, lexsort_to_indices, SortColumn, SortOptions};
use arrow::error::ArrowError;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use thiserror::Error;

use crate::buffer::{combine_sparse, NullsFor};
use crate::catalog::DataFileMeta;
use crate::event::{columns, schema};
use crate::ids::{FileId, PartitionKey};
use crate::session_index::SessionIndex;

#[derive(Debug, Error)]
pub enum PartitionFileError {
    #[error("arrow: {0}")]
    Arrow(#[from] ArrowError),
    #[error("parquet: {0}")]
    Parquet(#[from] ParquetError),
    #[error("partition has no rows")]
    Empty,
}

#[derive(Debug, Clone, Copy)]
pub struct EncodeOptions {
    pub row_group_rows: usize,
    pub zstd_level: i32,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        Self { row_group_rows: 64 * 1024, zstd_level: 6 }
    }
}

pub struct EncodedFile {
    pub parquet: Bytes,
    pub index: SessionIndex,
    pub meta: DataFileMeta,
}

pub fn sort_key_columns() -> [&'static str; 3] {
    [columns::SESSION_ID, columns::ADDED_ISO, columns::EVENT_ID]
}

/// How every data file is written, whether by a flush or by compaction.
pub fn writer_properties(opts: EncodeOptions) -> Result<WriterProperties, PartitionFileError> {
    let schema = schema();
    let sorting_columns = sort_key_columns()
        .iter()
        .map(|name| {
            Ok(SortingColumn { column_idx: schema.index_of(name)? as i32, descending: false, nulls_first: true })
        })
        .collect::<Result<Vec<_>, ArrowError>>()?;
    let delta = |name: &str| ColumnPath::from(name);
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(opts.zstd_level)?))
        .set_dictionary_enabled(true)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(opts.row_group_rows))
        .set_sorting_columns(Some(sorting_columns))
        .set_column_dictionary_enabled(delta(columns::EVENT_ID), false)
        .set_column_encoding(delta(columns::EVENT_ID), Encoding::DELTA_BINARY_PACKED)
        .set_column_dictionary_enabled(delta(columns::ADDED_ISO), false)
        // One value per page view: a dictionary would only grow until the writer gives up on it.
        .set_column_dictionary_enabled(delta("page_id"), false)
        .set_column_encoding(delta(columns::ADDED_ISO), Encoding::DELTA_BINARY_PACKED)
        .build())
}

pub fn encode(
    key: &PartitionKey,
    batches: &[RecordBatch],
    opts: EncodeOptions,
) -> Result<EncodedFile, PartitionFileError> {
    let schema = schema();
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    if rows == 0 {
        return Err(PartitionFileError::Empty);
    }
    // Only the sort key is concatenated; every column is then gathered once, in sorted order,
    // straight from the buffered batches (the whole-batch concat used to copy all ~110 columns).
    let sort_columns = sort_key_columns()
        .iter()
        .map(|name| {
            let idx = schema.index_of(name)?;
            let parts: Vec<&dyn Array> = batches.iter().map(|b| b.column(idx).as_ref()).collect();
            Ok(SortColumn {
                values: concat(&parts)?,
                options: Some(SortOptions { descending: false, nulls_first: true }),
            })
        })
        .collect::<Result<Vec<_>, ArrowError>>()?;
    let order = lexsort_to_indices(&sort_columns, None)?;
    let mut origin = Vec::with_capacity(rows);
    for (b, batch) in batches.iter().enumerate() {
        origin.extend((0..batch.num_rows()).map(|row| (b, row)));
    }
    let positions: Vec<(usize, usize)> = order.values().iter().map(|&i| origin[i as usize]).collect();
    // Most detail columns are empty in most partitions: those are not gathered at all.
    let sorted = combine_sparse(batches, |parts| interleave(parts, &positions), NullsFor::Writing)?;

    let ts = sorted
        .column_by_name(columns::ADDED_ISO)
        .and_then(|c| c.as_any().downcast_ref::<TimestampMillisecondArray>())
        .ok_or_else(|| ArrowError::SchemaError("added_iso is not a millisecond timestamp".into()))?;
    let min_ts_ms = arrow::compute::min(ts).unwrap_or(0);
    let max_ts_ms = arrow::compute::max(ts).unwrap_or(0);

    let props = writer_properties(opts)?;
    let mut out = Vec::with_capacity(sorted.get_array_memory_size() / 8);
    let mut writer = ArrowWriter::try_new(&mut out, Arc::clone(&schema), Some(props))?;
    writer.write(&sorted)?;
    let metadata = writer.close()?;
    let row_groups = metadata.num_row_groups();

    let sessions = sorted
        .column_by_name(columns::SESSION_ID)
        .ok_or_else(|| ArrowError::SchemaError("no session_id column".into()))?
        .as_string::<i32>();
    let rows = sorted.num_rows();
    let index = SessionIndex::from_row_groups((0..row_groups).map(|g| {
        let start = g * opts.row_group_rows;
        let end = (start + opts.row_group_rows).min(rows);
        (start..end).map(move |i| (!sessions.is_null(i)).then(|| sessions.value(i)))
    }));

    let meta = DataFileMeta {
        project: key.project.clone(),
        day: key.day,
        file_id: FileId::generate(),
        size_bytes: out.len() as u64,
        rows: rows as u64,
        row_groups,
        min_ts_ms,
        max_ts_ms,
    };
    Ok(EncodedFile { parquet: Bytes::from(out), index, meta })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{sample, to_record_batch};
    use crate::ids::ProjectId;
    use crate::session_index::session_key;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    #[test]
    fn sorts_by_session_and_indexes_row_groups() {
        let events: Vec<_> = (0..1000).map(|i| sample("p", 1_000_000 - i, &format!("s{}", i % 50))).collect();
        let batch = to_record_batch(events.iter().enumerate().map(|(i, e)| (i as u64, e))).unwrap();
        let key = PartitionKey { project: ProjectId::new("p").unwrap(), day: "1970-01-01".parse().unwrap() };
        let encoded = encode(&key, &[batch], EncodeOptions { row_group_rows: 100, zstd_level: 3 }).unwrap();
        assert_eq!(encoded.meta.rows, 1000);
        assert_eq!(encoded.meta.row_groups, 10);
        assert_eq!(encoded.meta.min_ts_ms, 1_000_000 - 999);

        let reader = ParquetRecordBatchReaderBuilder::try_new(encoded.parquet.clone()).unwrap().build().unwrap();
        let read: Vec<RecordBatch> = reader.collect::<Result<_, _>>().unwrap();
        let all = arrow::compute::concat_batches(&schema(), &read).unwrap();
        let sessions = all.column_by_name("session_id").unwrap().as_string::<i32>();
        let values: Vec<&str> = (0..all.num_rows()).map(|i| sessions.value(i)).collect();
        let mut sorted = values.clone();
        sorted.sort_unstable();
        assert_eq!(values, sorted);

        // Each session's 20 rows sit in at most two adjacent row groups.
        let hits = encoded.index.row_groups_matching(&[session_key("s7")]);
        assert!((1..=2).contains(&hits.iter().filter(|h| **h).count()));
        assert!(!encoded.index.may_contain_any(&[session_key("nope")]));
    }
}
