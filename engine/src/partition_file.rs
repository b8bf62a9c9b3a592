//! Encoding one partition's buffered rows as a Parquet file plus its session index.
//!
//! Rows are sorted by `(event_type, session_id, added_iso, event_id)`. Nearly every query asks for
//! one kind of event (page views for the dashboard, vitals, errors), and with each kind contiguous
//! the scan skips the pages of the others by their statistics instead of decoding and filtering
//! every row. Within a kind, most columns are constant per session (visitor, hostname, referrer,
//! UTM, device and geo), so they become long runs that dictionary + RLE + zstd store in almost
//! nothing, and timestamps small deltas. A session's rows of one kind sit together, so a session
//! lookup reads a few pages of the files the session index names (most files are one row group).

use std::collections::HashSet;
use std::ops::Range;

use arrow::array::{new_null_array, Array, ArrayRef, AsArray, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow::compute::{concat, interleave, lexsort_to_indices, SortColumn, SortOptions};
use arrow::datatypes::DataType;
use arrow::error::ArrowError;
use bytes::Bytes;
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::metadata::{ParquetMetaData, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use thiserror::Error;

use crate::buffer::{combine_sparse, NullsFor};
use crate::catalog::DataFileMeta;
use crate::event::{columns, schema};
use crate::ids::{FileId, PartitionKey};
use crate::page_reports::{report_keys, PageReports};
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
    /// Row groups of up to 1Mi rows: most files are one. A row group's dictionaries hold each
    /// distinct value once, and a file sorted by kind spreads a session's and a page's ids over
    /// all its kinds: 64Ki-row groups stored every such id again in each (30.1 against 28.1 B
    /// per event on the 10M suite's mix, 25.3 with `page_id`'s dictionary). Scans still skip the
    /// other kinds' pages by the page index.
    fn default() -> Self {
        Self { row_group_rows: 1 << 20, zstd_level: 6 }
    }
}

pub struct EncodedFile {
    pub parquet: Bytes,
    pub index: SessionIndex,
    pub meta: DataFileMeta,
}

pub fn sort_key_columns() -> [&'static str; 4] {
    [columns::EVENT_TYPE, columns::SESSION_ID, columns::ADDED_ISO, columns::EVENT_ID]
}

/// The sort key as a file's footer records it; files written under another key (before the key
/// changed) are re-sorted before compaction merges them.
pub fn sorting_columns() -> Result<Vec<SortingColumn>, ArrowError> {
    let schema = schema();
    sort_key_columns()
        .iter()
        .map(|name| {
            Ok(SortingColumn { column_idx: schema.index_of(name)? as i32, descending: false, nulls_first: true })
        })
        .collect()
}

/// Columns stored without a dictionary, and how. `page_id` is a random 12-digit id per page
/// view: DELTA_LENGTH_BYTE_ARRAY stores the bare characters (the lengths bit-pack to almost
/// nothing) for zstd to entropy-code, 8.8 B per pageview against 10.2 B plain with its 4-byte
/// length prefixes, when each id occurs once (see [`Layout::page_ids_repeat`] for when not).
/// Viewport sizes vary per page view and take fewer bytes plain than as
/// dictionary indexes (1.15 against 1.48 B per pageview for the two). Timestamps and WAL sequence
/// numbers keep DELTA_BINARY_PACKED: plain 8-byte values under zstd were ~0.9 B per event smaller,
/// but every query reads `added_iso`, and decompressing the wider pages made the visitor, funnel
/// and retention queries 5–8% slower. `visitor_id` and `session_id` keep their dictionaries for
/// the same reason (plain, each was ~0.7 B per pageview smaller).
fn column_encodings() -> [(&'static str, Encoding); 5] {
    [
        (columns::PAGE_ID, Encoding::DELTA_LENGTH_BYTE_ARRAY),
        (columns::ADDED_ISO, Encoding::DELTA_BINARY_PACKED),
        (columns::EVENT_ID, Encoding::DELTA_BINARY_PACKED),
        ("viewport_width", Encoding::PLAIN),
        ("viewport_height", Encoding::PLAIN),
    ]
}

/// The writer of every data file, whether a flush or compaction writes it.
///
/// The Arrow schema is not embedded in the footer: base64 IPC of ~110 fields, ~7 KB per file, which
/// for a small site's daily file was more than its rows (2.6 B of the 41.7 B per pageview of the
/// 1M-event benchmark). Every stored type maps to a Parquet logical type that reads back as the
/// same Arrow type (pinned by `files_read_back_as_the_stored_schema`).
///
/// `null_columns` (top-level, non-nested columns holding no value in this file) are written
/// uncompressed: they are a run of zero definition levels, a few bytes either way, but a zstd
/// column creates a compression and a decompression context per file, and with ~110 columns,
/// most of them empty in any one partition, that was 3% of the server's CPU while ingesting.
pub fn writer<W: std::io::Write + Send>(
    out: W,
    opts: EncodeOptions,
    layout: &Layout,
) -> Result<ArrowWriter<W>, PartitionFileError> {
    let options =
        ArrowWriterOptions::new().with_properties(writer_properties(opts, layout)?).with_skip_arrow_metadata(true);
    Ok(ArrowWriter::try_new_with_options(out, schema(), options)?)
}

/// What a file's rows are like, where that changes how its columns are best stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    /// Top-level, non-nested columns holding no value in the file.
    pub null_columns: Vec<String>,
    /// Whether `page_id` values occur at least [`REPEATS_FOR_DICTIONARY`] times each on average:
    /// the page's later reports (engagement, vitals, interactions) carry its id. Such a file
    /// stores each id once in a dictionary and an index per row: 3.9 B per event on the 10M
    /// suite's mix, against 6.5 B without. A file of page views alone (each id once) is smaller
    /// without (8.75 B per page view against 11.67).
    pub page_ids_repeat: bool,
}

/// Rows per distinct `page_id` from which a dictionary is smaller: an id costs ≈ 8.5 B in the
/// dictionary and ≈ 2 B per row as an index, against ≈ 8.75 B per row stored bare.
pub const REPEATS_FOR_DICTIONARY: f64 = 1.5;

/// A page-id dictionary may grow to this before the column chunk falls back to its bare
/// encoding: 1 MiB (Parquet's default) holds ≈ 65,000 ids, a busy day's file holds more.
const PAGE_ID_DICTIONARY_BYTES: usize = 8 << 20;

impl Layout {
    /// The layout of `batch`, a whole file's rows.
    fn of(batch: &RecordBatch) -> Self {
        let page_ids_repeat =
            batch.column_by_name(columns::PAGE_ID).and_then(|c| c.as_string_opt::<i32>()).is_some_and(|ids| {
                let present = ids.len() - ids.null_count();
                let distinct: HashSet<&str> = ids.iter().flatten().collect();
                present as f64 >= REPEATS_FOR_DICTIONARY * distinct.len().max(1) as f64
            });
        Self { null_columns: null_columns_of(batch), page_ids_repeat }
    }

    /// The layout of a file merging the files described by `metadata`: page ids repeat when they
    /// did in the files holding most of the rows (they wrote `page_id` with a dictionary).
    pub fn of_merged<'a>(metadata: impl IntoIterator<Item = &'a ParquetMetaData> + Clone) -> Self {
        let (mut rows, mut repeating) = (0i64, 0i64);
        for file in metadata.clone() {
            for group in file.row_groups() {
                rows += group.num_rows();
                let dictionary = group.columns().iter().any(|chunk| {
                    chunk.column_path().parts() == ["page_id"] && chunk.dictionary_page_offset().is_some()
                });
                if dictionary {
                    repeating += group.num_rows();
                }
            }
        }
        Self { null_columns: null_columns_in(metadata), page_ids_repeat: repeating * 2 > rows }
    }
}

/// The flat columns of the stored schema that hold no value in `batch`.
fn null_columns_of(batch: &RecordBatch) -> Vec<String> {
    batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .filter(|(field, column)| !field.data_type().is_nested() && column.null_count() == column.len())
        .map(|(field, _)| field.name().clone())
        .collect()
}

/// The flat columns of the stored schema that hold no value in any of the files described by
/// `metadata` (columns a file predates hold none in it); a chunk without statistics counts as
/// holding values.
pub fn null_columns_in<'a>(metadata: impl IntoIterator<Item = &'a ParquetMetaData>) -> Vec<String> {
    let mut with_values: HashSet<String> = HashSet::new();
    for file in metadata {
        for group in file.row_groups() {
            for chunk in group.columns() {
                let all_null = chunk
                    .statistics()
                    .and_then(|s| s.null_count_opt())
                    .is_some_and(|nulls| nulls == group.num_rows() as u64);
                if !all_null {
                    if let [name] = chunk.column_path().parts() {
                        with_values.insert(name.clone());
                    }
                }
            }
        }
    }
    schema()
        .fields()
        .iter()
        .filter(|field| !field.data_type().is_nested() && !with_values.contains(field.name()))
        .map(|field| field.name().clone())
        .collect()
}

fn writer_properties(opts: EncodeOptions, layout: &Layout) -> Result<WriterProperties, PartitionFileError> {
    let sorting_columns = sorting_columns()?;
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(opts.zstd_level)?))
        .set_dictionary_enabled(true)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(opts.row_group_rows))
        .set_sorting_columns(Some(sorting_columns));
    // Chosen among the encodings every Parquet reader understands (no BYTE_STREAM_SPLIT, which
    // older readers lack, for a gain of under 0.1 B per event), since the files are the user's.
    for (column, encoding) in column_encodings() {
        let path = ColumnPath::from(column);
        // With a dictionary, the encoding is the fallback for values past its size limit.
        let dictionary = column == columns::PAGE_ID && layout.page_ids_repeat;
        if dictionary {
            builder = builder.set_column_dictionary_page_size_limit(path.clone(), PAGE_ID_DICTIONARY_BYTES);
        }
        builder = builder.set_column_dictionary_enabled(path.clone(), dictionary).set_column_encoding(path, encoding);
    }
    for column in &layout.null_columns {
        builder = builder.set_column_compression(ColumnPath::from(column.as_str()), Compression::UNCOMPRESSED);
    }
    Ok(builder.build())
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
    let event_types = sort_columns[0]
        .values
        .as_string_opt::<i32>()
        .ok_or_else(|| ArrowError::SchemaError("event_type is not a string column".into()))?;
    let kinds = kind_runs(event_types, order.values());
    // Most detail columns are empty in most partitions: those are not gathered at all.
    let sorted = combine_sparse(batches, |parts| gather_by_kind(parts, &positions, &kinds), NullsFor::Writing)?;

    let ts = sorted
        .column_by_name(columns::ADDED_ISO)
        .and_then(|c| c.as_any().downcast_ref::<TimestampMillisecondArray>())
        .ok_or_else(|| ArrowError::SchemaError("added_iso is not a millisecond timestamp".into()))?;
    let min_ts_ms = arrow::compute::min(ts).unwrap_or(0);
    let max_ts_ms = arrow::compute::max(ts).unwrap_or(0);

    let mut out = Vec::with_capacity(sorted.get_array_memory_size() / 8);
    let mut writer = writer(&mut out, opts, &Layout::of(&sorted))?;
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
    }))
    .with_page_reports(PageReports::from_keys(report_keys(&sorted)?));

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

/// The runs of sorted rows with one `event_type` each: the sort key's first column makes every
/// kind of event one contiguous run of the sorted order.
fn kind_runs(event_types: &StringArray, order: &[u32]) -> Vec<Range<usize>> {
    let mut runs = Vec::new();
    let mut start = 0;
    for i in 1..order.len() {
        if event_types.value(order[i] as usize) != event_types.value(order[i - 1] as usize) {
            runs.push(start..i);
            start = i;
        }
    }
    if !order.is_empty() {
        runs.push(start..order.len());
    }
    runs
}

/// `interleave(parts, positions)`, except that the runs of `kinds` in which the column holds no
/// value become null arrays without visiting their rows one by one. A detail column (vitals, form
/// fields, error text...) holds values only in its own kind's run, so it is gathered over that
/// run alone; gathering each of ~75 such columns over every row was most of the flush's
/// `interleave` time.
fn gather_by_kind(
    parts: &[&dyn Array],
    positions: &[(usize, usize)],
    kinds: &[Range<usize>],
) -> Result<ArrayRef, ArrowError> {
    let valid = |&(part, row): &(usize, usize)| {
        let array = parts[part];
        array.null_count() == 0 || (array.null_count() < array.len() && array.is_valid(row))
    };
    let valued: Vec<bool> = kinds.iter().map(|run| positions[run.clone()].iter().any(valid)).collect();
    if valued.iter().all(|v| *v) {
        return interleave(parts, positions);
    }
    let data_type = parts.first().map(|a| a.data_type().clone()).unwrap_or(DataType::Null);
    let pieces = kinds
        .iter()
        .zip(&valued)
        .map(|(run, valued)| match valued {
            true => interleave(parts, &positions[run.clone()]),
            false => Ok(new_null_array(&data_type, run.len())),
        })
        .collect::<Result<Vec<ArrayRef>, ArrowError>>()?;
    concat(&pieces.iter().map(|p| p.as_ref()).collect::<Vec<_>>())
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

    #[test]
    fn the_index_names_the_pages_a_file_holds_reports_of() {
        use crate::page_reports::page_key;
        // Page views of 300 pages; pages 0, 3, 6... have a report too.
        let page_id = |i: i64| format!("{:012}", i * 7_919);
        let mut events = Vec::new();
        for i in 0..300i64 {
            let mut page = sample("p", 1_000_000 + i, &format!("s{}", i % 7));
            page.context.page_id = Some(page_id(i));
            if i % 3 == 0 {
                let mut report = page.clone();
                report.event_type = crate::event::EventType::Vitals;
                events.push(report);
            }
            events.push(page);
        }
        let batch = to_record_batch(events.iter().enumerate().map(|(i, e)| (i as u64, e))).unwrap();
        let key = PartitionKey { project: ProjectId::new("p").unwrap(), day: "1970-01-01".parse().unwrap() };
        let encoded = encode(&key, &[batch], EncodeOptions::default()).unwrap();
        let reports = encoded.index.page_reports().expect("a flush builds the filter");
        assert_eq!(reports.pages(), 100);
        let held = |i: i64| encoded.index.may_hold_reports_of(&[page_key(&page_id(i))]);
        assert!((0..300).step_by(3).all(held), "every reported page");
        let viewed_only = (0..300).filter(|i| i % 3 != 0 && held(*i)).count();
        assert!(viewed_only <= 1, "{viewed_only} pages without reports matched");
    }

    /// 300 page views in 7 sessions, each with its own page id, and `reports` more events per page
    /// carrying its id.
    fn pages_with_reports(reports: usize) -> RecordBatch {
        let mut events = Vec::new();
        for i in 0..300i64 {
            let mut page = sample("p", 1_000_000 + i, &format!("s{}", i % 7));
            page.context.page_id = Some(format!("{:012}", i * 7_919));
            for r in 0..reports {
                let mut report = page.clone();
                report.event_type = crate::event::EventType::Engagement;
                report.timestamp_ms += 1 + r as i64;
                events.push(report);
            }
            events.push(page);
        }
        to_record_batch(events.iter().enumerate().map(|(i, e)| (i as u64, e))).unwrap()
    }

    fn page_id_chunk(parquet: &Bytes) -> parquet::file::metadata::ColumnChunkMetaData {
        let reader = ParquetRecordBatchReaderBuilder::try_new(parquet.clone()).unwrap();
        let chunks = reader.metadata().row_group(0).columns();
        chunks.iter().find(|c| c.column_path().string() == "page_id").unwrap().clone()
    }

    #[test]
    fn page_ids_get_a_dictionary_only_where_they_repeat() {
        let key = PartitionKey { project: ProjectId::new("p").unwrap(), day: "1970-01-01".parse().unwrap() };
        let once = encode(&key, &[pages_with_reports(0)], EncodeOptions::default()).unwrap();
        let thrice = encode(&key, &[pages_with_reports(2)], EncodeOptions::default()).unwrap();
        assert_eq!(page_id_chunk(&once.parquet).dictionary_page_offset(), None);
        assert!(page_id_chunk(&thrice.parquet).dictionary_page_offset().is_some());
        // Both read back as written.
        for (encoded, rows) in [(&once, 300), (&thrice, 900)] {
            let reader = ParquetRecordBatchReaderBuilder::try_new(encoded.parquet.clone()).unwrap().build().unwrap();
            let read: Vec<RecordBatch> = reader.collect::<Result<_, _>>().unwrap();
            let all = arrow::compute::concat_batches(&schema(), &read).unwrap();
            let ids = all.column_by_name("page_id").unwrap().as_string::<i32>();
            let distinct: HashSet<&str> = ids.iter().flatten().collect();
            assert_eq!((all.num_rows(), distinct.len()), (rows, 300));
        }
        // A merge follows the files holding most of the rows.
        let metadata =
            |e: &EncodedFile| ParquetRecordBatchReaderBuilder::try_new(e.parquet.clone()).unwrap().metadata().clone();
        let (once, thrice) = (metadata(&once), metadata(&thrice));
        assert!(Layout::of_merged([thrice.as_ref(), once.as_ref()]).page_ids_repeat);
        assert!(!Layout::of_merged([once.as_ref(), once.as_ref(), once.as_ref(), thrice.as_ref()]).page_ids_repeat);
    }

    #[test]
    fn ids_and_timestamps_are_stored_without_dictionaries() {
        let schema = schema();
        let batch = pages_with_reports(0);
        let key = PartitionKey { project: ProjectId::new("p").unwrap(), day: "1970-01-01".parse().unwrap() };
        let encoded = encode(&key, &[batch], EncodeOptions::default()).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(encoded.parquet.clone()).unwrap();
        let chunks = reader.metadata().row_group(0).columns();
        for (column, encoding) in column_encodings() {
            let idx = schema.index_of(column).unwrap_or_else(|_| panic!("{column} is not a stored column"));
            let chunk = chunks.iter().find(|c| c.column_path().string() == column).unwrap();
            assert_eq!(chunk.dictionary_page_offset(), None, "{column} (schema index {idx}) has a dictionary");
            let encodings: Vec<Encoding> = chunk.encodings().collect();
            assert!(encodings.contains(&encoding), "{column}: {encodings:?}");
        }
        for column in [columns::SESSION_ID, columns::VISITOR_ID, "hostname"] {
            let chunk = chunks.iter().find(|c| c.column_path().string() == column).unwrap();
            assert!(chunk.dictionary_page_offset().is_some(), "{column} keeps its dictionary");
        }
    }

    #[test]
    fn files_read_back_as_the_stored_schema() {
        let events: Vec<_> = (0..10).map(|i| sample("p", 1_000_000 + i, "s")).collect();
        let batch = to_record_batch(events.iter().enumerate().map(|(i, e)| (i as u64, e))).unwrap();
        let key = PartitionKey { project: ProjectId::new("p").unwrap(), day: "1970-01-01".parse().unwrap() };
        let encoded = encode(&key, &[batch], EncodeOptions::default()).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(encoded.parquet.clone()).unwrap();
        assert!(reader.metadata().file_metadata().key_value_metadata().is_none(), "no embedded Arrow schema");
        let stored = schema();
        let read = reader.schema();
        assert_eq!(read.fields().len(), stored.fields().len());
        for (r, s) in read.fields().iter().zip(stored.fields()) {
            assert_eq!(
                (r.name(), r.data_type(), r.is_nullable()),
                (s.name(), s.data_type(), s.is_nullable()),
                "column {}",
                s.name()
            );
        }
    }

    #[test]
    fn empty_columns_are_written_uncompressed_and_found_again_from_the_footer() {
        let events: Vec<_> = (0..50).map(|i| sample("p", 1_000_000 + i, "s")).collect();
        let batch = to_record_batch(events.iter().enumerate().map(|(i, e)| (i as u64, e))).unwrap();
        let empty = null_columns_of(&batch);
        assert!(empty.len() > 20, "a sample event leaves most detail columns empty: {empty:?}");
        assert!(!empty.iter().any(|c| c == columns::SESSION_ID));
        let key = PartitionKey { project: ProjectId::new("p").unwrap(), day: "1970-01-01".parse().unwrap() };
        let encoded = encode(&key, &[batch], EncodeOptions::default()).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(encoded.parquet.clone()).unwrap();
        for chunk in reader.metadata().row_group(0).columns() {
            let name = chunk.column_path().string();
            // The footer names the codec, not its level.
            let zstd = matches!(chunk.compression(), Compression::ZSTD(_));
            assert_eq!(!zstd, empty.contains(&name), "{name}: {:?}", chunk.compression());
        }
        assert_eq!(null_columns_in([reader.metadata().as_ref()]), empty);
        // The file still reads back whole.
        let read: Vec<RecordBatch> = reader.build().unwrap().collect::<Result<_, _>>().unwrap();
        assert_eq!(read.iter().map(RecordBatch::num_rows).sum::<usize>(), 50);
    }
    #[test]
    fn kinds_spread_over_batches_are_written_as_one_sorted_take() {
        use crate::event::{EventType, FormDetail, Vitals};
        // Three batches, each mixing kinds; form and vitals columns hold values only in their own
        // kind's rows (some of those rows null too), so they are gathered run by run.
        let batches: Vec<RecordBatch> = (0..3u64)
            .map(|b| {
                let events: Vec<_> = (0..40i64)
                    .map(|i| {
                        let mut e = sample("p", 1_000_000 + (i * 7 + b as i64 * 3) % 97, &format!("s{}", i % 5));
                        match (i + b as i64) % 4 {
                            0 => {
                                e.event_type = EventType::Form;
                                e.form = Some(Box::new(FormDetail {
                                    form_id: (i % 3 != 0).then(|| format!("f{i}")),
                                    fields_total: Some(i as i32),
                                    ..Default::default()
                                }));
                            }
                            1 => {
                                e.event_type = EventType::Vitals;
                                e.vitals =
                                    Some(Box::new(Vitals { page_load_ms: Some(i as i32), ..Default::default() }));
                            }
                            _ => {}
                        }
                        e
                    })
                    .collect();
                to_record_batch(events.iter().enumerate().map(|(i, e)| (b * 100 + i as u64, e))).unwrap()
            })
            .collect();
        let key = PartitionKey { project: ProjectId::new("p").unwrap(), day: "1970-01-01".parse().unwrap() };
        let encoded = encode(&key, &batches, EncodeOptions::default()).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(encoded.parquet.clone()).unwrap().build().unwrap();
        let read: Vec<RecordBatch> = reader.collect::<Result<_, _>>().unwrap();
        let written = arrow::compute::concat_batches(&schema(), &read).unwrap();

        let all = arrow::compute::concat_batches(&schema(), &batches).unwrap();
        let key_columns: Vec<SortColumn> = sort_key_columns()
            .iter()
            .map(|name| SortColumn {
                values: all.column_by_name(name).unwrap().clone(),
                options: Some(SortOptions { descending: false, nulls_first: true }),
            })
            .collect();
        let order = lexsort_to_indices(&key_columns, None).unwrap();
        let expected = arrow::compute::take_record_batch(&all, &order).unwrap();
        assert_eq!(written.num_rows(), 120);
        for (name, (w, e)) in
            schema().fields().iter().map(|f| f.name()).zip(written.columns().iter().zip(expected.columns()))
        {
            assert_eq!(w.to_data(), e.to_data(), "column {name}");
        }
        let form_ids = written.column_by_name("form_id").unwrap();
        assert!(form_ids.null_count() > 0 && form_ids.null_count() < written.num_rows());
    }
}
