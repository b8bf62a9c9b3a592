//! `EventsTable`: the `events` table over one engine snapshot — committed Parquet files plus
//! buffered rows — with pruning before any byte is read:
//!
//! 1. project: a scoped snapshot holds only the caller's projects, files and buffer alike;
//! 2. `project_id = / IN` and `added_iso` ranges: against each file's catalog entry;
//! 3. `session_id = / IN`: against each file's roaring session index, down to row groups
//!    (a `ParquetAccessPlan` per file);
//! 4. everything else: DataFusion's Parquet statistics, page index and row filters.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

use arrow::array::{AsArray, BooleanArray, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::ScalarValue;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::physical_plan::parquet::ParquetAccessPlan;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::DataFusionError;
use datafusion::error::Result;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::ColumnarValue;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_expr::expressions::col as physical_col;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::filter::FilterExecBuilder;
use datafusion::physical_plan::limit::GlobalLimitExec;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::ExecutionPlan;
use footfall_engine::catalog::CatalogFile;
use footfall_engine::event::columns;
use footfall_engine::page_reports::page_key;
use footfall_engine::session_index::session_key;
use footfall_engine::Snapshot;
use roaring::RoaringBitmap;

use crate::page_index_reader::PageIndexedReaderFactory;

/// Counts what one query's scans touched; read back after execution.
#[derive(Debug, Default)]
pub struct ScanStats {
    pub files_scanned: AtomicUsize,
    pub files_pruned: AtomicUsize,
    pub row_groups_pruned: AtomicUsize,
}

impl ScanStats {
    pub fn files_scanned(&self) -> usize {
        self.files_scanned.load(Ordering::Relaxed)
    }
}

#[derive(Clone)]
pub struct EventsTable {
    schema: SchemaRef,
    snapshot: Arc<Snapshot>,
    store_url: ObjectStoreUrl,
    stats: Arc<ScanStats>,
    /// Set by [`Self::of_page_reports`]: [`page_key`]s of the pages whose reports are wanted.
    page_reports: Option<Arc<[u64]>>,
}

impl fmt::Debug for EventsTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventsTable").field("files", &self.snapshot.files.len()).finish()
    }
}

impl EventsTable {
    pub fn new(snapshot: Arc<Snapshot>, store_url: ObjectStoreUrl, stats: Arc<ScanStats>) -> Self {
        Self { schema: query_schema(), snapshot, store_url, stats, page_reports: None }
    }

    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.snapshot
    }
}

/// The stored schema with its top-level strings as `Utf8View`. Most string columns are dictionary
/// encoded in Parquet; read as `Utf8` every row's bytes are copied out of the dictionary (a sixth of
/// a small dashboard query's time), read as views each row is 16 bytes pointing into it, and short
/// strings compare inline.
pub fn query_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let stored = footfall_engine::event::schema();
        let fields: Vec<Field> = stored
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Utf8 => f.as_ref().clone().with_data_type(DataType::Utf8View),
                _ => f.as_ref().clone(),
            })
            .collect();
        Arc::new(Schema::new_with_metadata(fields, stored.metadata().clone()))
    });
    SCHEMA.clone()
}

/// Buffered rows are held in the stored schema; queries see them in [`query_schema`].
fn to_query_schema(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| {
            if column.data_type() == field.data_type() {
                Ok(Arc::clone(column))
            } else {
                arrow::compute::cast(column, field.data_type())
            }
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
}

/// What the filters say about which files can match.
#[derive(Debug, Default)]
struct Pruning {
    sessions: Option<RoaringBitmap>,
    /// [`page_key`]s of pages whose reports are wanted: files whose filter holds none are skipped.
    page_reports: Option<Arc<[u64]>>,
    /// Whether the filters name the kinds of event wanted (`event_type = / IN`).
    event_types: bool,
    projects: Option<HashSet<String>>,
    min_ts_ms: Option<i64>,
    max_ts_ms: Option<i64>,
}

impl Pruning {
    fn from_filters(filters: &[Expr]) -> Self {
        let mut p = Self::default();
        for filter in filters {
            p.absorb(filter);
        }
        p
    }

    fn absorb(&mut self, expr: &Expr) {
        if let Expr::BinaryExpr(BinaryExpr { left, op: Operator::And, right }) = expr {
            self.absorb(left);
            self.absorb(right);
            return;
        }
        if let Some(sessions) = string_set(expr, columns::SESSION_ID) {
            // Sorted first: a bitmap built from keys in random order shifts its containers on
            // every insert, and a scoped view lists thousands of sessions.
            let mut keys: Vec<u32> = sessions.iter().map(|s| session_key(s)).collect();
            keys.sort_unstable();
            keys.dedup();
            self.intersect_sessions(keys.into_iter().collect());
            return;
        }
        if let Some(projects) = string_set(expr, columns::PROJECT_ID) {
            self.intersect_projects(projects.into_iter().collect());
            return;
        }
        if string_set(expr, columns::EVENT_TYPE).is_some() {
            self.event_types = true;
            return;
        }
        let Expr::BinaryExpr(BinaryExpr { left, op, right }) = expr else { return };
        let (column, value, op) = match (left.as_ref(), right.as_ref()) {
            (Expr::Column(c), Expr::Literal(v, _)) => (c.name.as_str(), v, *op),
            (Expr::Literal(v, _), Expr::Column(c)) => match op.swap() {
                Some(swapped) => (c.name.as_str(), v, swapped),
                None => return,
            },
            _ => return,
        };
        if column != columns::ADDED_ISO {
            return;
        }
        let Some(ms) = timestamp_millis(value) else { return };
        match op {
            Operator::Gt | Operator::GtEq => self.min_ts_ms = Some(self.min_ts_ms.map_or(ms, |m| m.max(ms))),
            Operator::Lt | Operator::LtEq => self.max_ts_ms = Some(self.max_ts_ms.map_or(ms, |m| m.min(ms))),
            Operator::Eq => {
                self.min_ts_ms = Some(self.min_ts_ms.map_or(ms, |m| m.max(ms)));
                self.max_ts_ms = Some(self.max_ts_ms.map_or(ms, |m| m.min(ms)));
            }
            _ => {}
        }
    }

    fn intersect_sessions(&mut self, keys: RoaringBitmap) {
        self.sessions = Some(match self.sessions.take() {
            None => keys,
            Some(existing) => existing & keys,
        });
    }

    fn intersect_projects(&mut self, projects: HashSet<String>) {
        self.projects = Some(match self.projects.take() {
            None => projects,
            Some(existing) => existing.intersection(&projects).cloned().collect(),
        });
    }

    /// Whether a file can hold matching rows; `Some(plan)` narrows it to some row groups.
    fn admit(&self, file: &CatalogFile) -> Option<Option<ParquetAccessPlan>> {
        let meta = &file.meta;
        if self.projects.as_ref().is_some_and(|p| !p.contains(meta.project.as_str())) {
            return None;
        }
        // Rounding to whole milliseconds can only widen the range, never drop a matching file.
        if self.min_ts_ms.is_some_and(|min| meta.max_ts_ms < min)
            || self.max_ts_ms.is_some_and(|max| meta.min_ts_ms > max)
        {
            return None;
        }
        if self.page_reports.as_ref().is_some_and(|pages| !file.index.may_hold_reports_of(pages)) {
            return None;
        }
        let Some(keys) = &self.sessions else { return Some(None) };
        if !file.index.may_contain_any_of(keys) {
            return None;
        }
        let matching = file.index.row_groups_matching_any_of(keys);
        if matching.len() != meta.row_groups || matching.iter().all(|m| *m) {
            return Some(None);
        }
        let mut plan = ParquetAccessPlan::new_all(meta.row_groups);
        for (i, keep) in matching.iter().enumerate() {
            if !keep {
                plan.skip(i);
            }
        }
        Some(Some(plan))
    }
}

/// The string values `expr` restricts `column` to, when it is `column = 'x'`, `column IN (...)`, or
/// an OR of those (the optimizer turns short IN lists into OR chains).
pub(crate) fn string_set(expr: &Expr, column: &str) -> Option<Vec<String>> {
    let literal = |e: &Expr| match e {
        Expr::Literal(v, _) => v.try_as_str().flatten().map(str::to_string),
        _ => None,
    };
    let is_column = |e: &Expr| matches!(e, Expr::Column(c) if c.name == column);
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op: Operator::Or, right }) => {
            let mut values = string_set(left, column)?;
            values.extend(string_set(right, column)?);
            Some(values)
        }
        Expr::BinaryExpr(BinaryExpr { left, op: Operator::Eq, right }) => {
            if is_column(left) {
                literal(right).map(|v| vec![v])
            } else if is_column(right) {
                literal(left).map(|v| vec![v])
            } else {
                None
            }
        }
        Expr::InList(list) if !list.negated && is_column(&list.expr) => list.list.iter().map(literal).collect(),
        _ => None,
    }
}

pub(crate) fn timestamp_millis(value: &ScalarValue) -> Option<i64> {
    match value {
        ScalarValue::TimestampSecond(Some(v), _) => v.checked_mul(1000),
        ScalarValue::TimestampMillisecond(Some(v), _) => Some(*v),
        ScalarValue::TimestampMicrosecond(Some(v), _) => Some(v.div_euclid(1000)),
        ScalarValue::TimestampNanosecond(Some(v), _) => Some(v.div_euclid(1_000_000)),
        _ => None,
    }
}

#[async_trait]
impl TableProvider for EventsTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        // A file or a buffered batch holds one project's rows, so selecting them by project answers
        // `project_id = / IN` exactly, and no row has to be compared. Other pruning is a superset
        // match (hashes, min/max), so DataFusion still applies those filters.
        Ok(filters
            .iter()
            .map(|f| match string_set(f, columns::PROJECT_ID) {
                Some(_) => TableProviderFilterPushDown::Exact,
                None => TableProviderFilterPushDown::Inexact,
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let mut pruning = Pruning::from_filters(filters);
        pruning.page_reports = self.page_reports.clone();
        self.scan_pruned(state, projection, pruning, limit)
    }
}

impl EventsTable {
    fn scan_pruned(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        pruning: Pruning,
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let mut files = Vec::new();
        for file in &self.snapshot.files {
            match pruning.admit(file) {
                None => {
                    self.stats.files_pruned.fetch_add(1, Ordering::Relaxed);
                }
                Some(plan) => {
                    let mut pf = PartitionedFile::new(file.meta.path().parquet().to_string(), file.meta.size_bytes);
                    if let Some(plan) = plan {
                        self.stats
                            .row_groups_pruned
                            .fetch_add(file.meta.row_groups - plan.row_group_indexes().len(), Ordering::Relaxed);
                        pf = pf.with_extension(plan);
                    }
                    files.push(pf);
                }
            }
        }
        self.stats.files_scanned.fetch_add(files.len(), Ordering::Relaxed);

        let mut plans: Vec<Arc<dyn ExecutionPlan>> = Vec::new();
        if !files.is_empty() {
            // Footfall writes no bloom filters, and looking for them costs each file a few reads.
            // Page indexes skip the pages of other kinds of event (files are sorted by kind) and,
            // in a session lookup, of other sessions. Other filters seldom rule out a whole page,
            // and a scan that prunes by page index but keeps every page was measured ≈ 8% slower
            // (visit_duration at 10M), so only those two use them.
            let mut source = ParquetSource::new(self.schema.clone())
                .with_pushdown_filters(true)
                .with_reorder_filters(true)
                .with_bloom_filter_on_read(false)
                .with_enable_page_index(pruning.sessions.is_some() || pruning.event_types);
            // Files are immutable and uniquely named, so their footers and page indexes can be
            // cached across queries (the runtime is shared): decoding them was about half of a
            // small dashboard query's time on a ~110-column schema. DataFusion's own factory
            // caches footers without page indexes; see page_index_reader.rs.
            let runtime = state.runtime_env();
            let store = runtime.object_store(&self.store_url)?;
            let metadata_cache = runtime.cache_manager.get_file_metadata_cache();
            source =
                source.with_parquet_file_reader_factory(Arc::new(PageIndexedReaderFactory::new(store, metadata_cache)));
            // No predicate is set here: DataFusion's physical filter pushdown hands the FilterExec
            // above this scan to the Parquet source (through the union with the buffer, too). A
            // predicate set here as well was not deduplicated against it, so every row filter ran
            // twice: removing it made the dashboard queries ≈ 11% faster.
            let groups = state.config().target_partitions().max(1);
            let mut file_groups: Vec<Vec<PartitionedFile>> = vec![Vec::new(); groups.min(files.len())];
            let count = file_groups.len();
            for (i, f) in files.into_iter().enumerate() {
                file_groups[i % count].push(f);
            }
            let config = FileScanConfigBuilder::new(self.store_url.clone(), Arc::new(source))
                .with_file_groups(file_groups.into_iter().map(FileGroup::new).collect())
                .with_projection_indices(projection.cloned())?
                .with_limit(limit)
                .build();
            plans.push(DataSourceExec::from_data_source(config));
        }
        let buffered: Vec<Vec<_>> = self
            .snapshot
            .buffered
            .iter()
            .filter(|(key, _)| pruning.projects.as_ref().is_none_or(|p| p.contains(key.project.as_str())))
            .filter(|(_, b)| !b.is_empty())
            .map(|(_, batches)| batches.iter().map(|b| to_query_schema(b, &self.schema)).collect::<Result<Vec<_>>>())
            .collect::<Result<_>>()?;
        if !buffered.is_empty() {
            plans.push(MemorySourceConfig::try_new_exec(&buffered, self.schema.clone(), projection.cloned())?);
        }
        if plans.is_empty() {
            let projected = match projection {
                Some(p) => Arc::new(self.schema.project(p)?),
                None => self.schema.clone(),
            };
            return Ok(Arc::new(EmptyExec::new(projected)));
        }
        UnionExec::try_new(plans)
    }

    /// This table without the files whose page-report filters hold none of `pages` (ids), for the
    /// page metrics of a scoped view (`sql/src/scoped_views.rs`). Only files are skipped: the
    /// reports of those pages are among its rows, with others, for a join to pick from.
    pub fn of_page_reports(&self, pages: &[String]) -> Self {
        let mut keys: Vec<u64> = pages.iter().map(|p| page_key(p)).collect();
        keys.sort_unstable();
        keys.dedup();
        Self { page_reports: Some(keys.into()), ..self.clone() }
    }

    /// This table narrowed to the rows of `sessions` (ids, in any project).
    pub fn of_sessions(&self, sessions: &[String]) -> SessionsTable {
        let mut keys: Vec<u32> = sessions.iter().map(|s| session_key(s)).collect();
        keys.sort_unstable();
        keys.dedup();
        SessionsTable {
            events: self.clone(),
            ids: Arc::new(ListedIds {
                fingerprint: {
                    use std::hash::{Hash, Hasher};
                    let mut hasher = std::hash::DefaultHasher::new();
                    sessions.len().hash(&mut hasher);
                    keys.hash(&mut hasher);
                    hasher.finish()
                },
                ids: sessions.iter().cloned().collect(),
            }),
            keys: keys.into_iter().collect(),
        }
    }
}

/// `events` narrowed to listed sessions, for a scoped view (`sql/src/scoped_views.rs`): the
/// session index picks the files and row groups that hold them, and a row filter keeps their
/// rows. The list goes straight to the scan: as an `IN (...)` filter its thousands of literals
/// cost DataFusion's logical optimizer ≈ 160 ms (13k sessions), more than the scan it saved.
#[derive(Debug)]
pub struct SessionsTable {
    events: EventsTable,
    ids: Arc<ListedIds>,
    keys: RoaringBitmap,
}

/// Session ids and a fingerprint of them, which stands for the list in plan text.
#[derive(Debug)]
struct ListedIds {
    ids: HashSet<String>,
    fingerprint: u64,
}

/// `session IN (listed ids)`. DataFusion's `InListExpr` would do, but its text holds every value,
/// and plan text is compared to find shared subplans (`sql/src/shared_subplan.rs`): 13k ids made
/// planning a scoped view 140 ms slower. This one prints the count and a fingerprint instead.
#[derive(Debug)]
struct IsListedSession {
    session: Arc<dyn PhysicalExpr>,
    listed: Arc<ListedIds>,
}

impl fmt::Display for IsListedSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} IN ({} listed sessions #{:016x})", self.session, self.listed.ids.len(), self.listed.fingerprint)
    }
}

impl PartialEq for IsListedSession {
    fn eq(&self, other: &Self) -> bool {
        self.session.as_ref() == other.session.as_ref() && Arc::ptr_eq(&self.listed, &other.listed)
    }
}

impl Eq for IsListedSession {}

impl std::hash::Hash for IsListedSession {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.session.hash(state);
        self.listed.fingerprint.hash(state);
    }
}

impl PhysicalExpr for IsListedSession {
    fn data_type(&self, _input_schema: &Schema) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn nullable(&self, _input_schema: &Schema) -> Result<bool> {
        Ok(false)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        let sessions = self.session.evaluate(batch)?.into_array(batch.num_rows())?;
        let sessions = arrow::compute::cast(&sessions, &DataType::Utf8View)?;
        let listed: BooleanArray =
            sessions.as_string_view().iter().map(|s| Some(s.is_some_and(|s| self.listed.ids.contains(s)))).collect();
        Ok(ColumnarValue::Array(Arc::new(listed)))
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.session]
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn PhysicalExpr>>) -> Result<Arc<dyn PhysicalExpr>> {
        let [session] = <[_; 1]>::try_from(children)
            .map_err(|_| DataFusionError::Internal("IsListedSession takes one child".to_string()))?;
        Ok(Arc::new(Self { session, listed: self.listed.clone() }))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[async_trait]
impl TableProvider for SessionsTable {
    fn schema(&self) -> SchemaRef {
        self.events.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        self.events.supports_filters_pushdown(filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let schema = self.events.schema();
        let session_column = schema.index_of(columns::SESSION_ID)?;
        // The scan reads the session id for the row filter even when the query does not need it.
        let wanted: Vec<usize> = projection.cloned().unwrap_or_else(|| (0..schema.fields().len()).collect());
        let mut read = wanted.clone();
        if !read.contains(&session_column) {
            read.push(session_column);
        }
        let mut pruning = Pruning::from_filters(filters);
        pruning.intersect_sessions(self.keys.clone());
        let scan = self.events.scan_pruned(state, Some(&read), pruning, None)?;
        let scanned = scan.schema();
        let session = physical_col(columns::SESSION_ID, &scanned)?;
        let predicate = IsListedSession { session, listed: self.ids.clone() };
        let keep = (0..wanted.len()).collect::<Vec<_>>();
        let filtered: Arc<dyn ExecutionPlan> =
            Arc::new(FilterExecBuilder::new(Arc::new(predicate), scan).apply_projection(Some(keep))?.build()?);
        Ok(match limit {
            Some(limit) => Arc::new(GlobalLimitExec::new(filtered, 0, Some(limit))),
            None => filtered,
        })
    }
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::{col, lit};

    use super::*;

    /// The scan turns page indexes on only for the filters they can act on: a kind of event or a
    /// session (see `scan`); with any other filter they were measured slower.
    #[test]
    fn page_indexes_are_used_for_kind_and_session_filters_only() {
        let page_index = |filters: &[Expr]| {
            let p = Pruning::from_filters(filters);
            p.sessions.is_some() || p.event_types
        };
        assert!(page_index(&[col("event_type").eq(lit("pageview"))]));
        assert!(page_index(&[lit("vitals").eq(col("event_type"))]));
        assert!(page_index(&[col("event_type").in_list(vec![lit("error"), lit("event")], false)]));
        assert!(page_index(&[col("project_id").eq(lit("site1")).and(col("event_type").eq(lit("error")))]));
        assert!(page_index(&[col("session_id").eq(lit("9571bf3e1145d71c"))]));

        assert!(!page_index(&[]));
        assert!(!page_index(&[col("project_id").eq(lit("site1")), col("is_bot").eq(lit(false))]));
        assert!(!page_index(&[col("event_type").not_eq(lit("pageview"))]));
        assert!(!page_index(&[col("event_type").in_list(vec![lit("error")], true)]));
    }
}
