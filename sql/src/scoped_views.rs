//! Session views that compute only the sessions a time filter touches.
//!
//! `pageviews`, `sessions` and `user_paths` hold values computed over whole sessions (entry and
//! exit pages, bot verdicts, durations), so a filter on their time column cannot be pushed below
//! the session windows: a session may straddle the boundary. Inlined as plain views, a query for
//! the last day computed every session of the project's history first.
//!
//! Here such a view is a table provider of its own. Given comparisons of its time column with
//! constants, it computes the view over the events of the sessions that have a row in that range
//! (their whole sessions, any day), and the page metrics of those sessions' page views (from any
//! session: a page's late reports may land in a new one). Every row the filter keeps is computed
//! from the same events as before, so the answer is the same; the filter is still applied on top.
//! The kept sessions are computed while planning and, when there are up to
//! `QueryConfig::max_listed_sessions` of them, listed by id (`session_id IN (...)`), so that each
//! file's session index picks the files and row groups that hold them. More are found by a semi
//! join whose build side DataFusion pushes into the Parquet scans as a dynamic filter (other
//! sessions' rows are skipped while decoding, but every file is read). With the sessions listed,
//! their page views' ids are listed too, and the page metrics' scans read only the files whose
//! page-report filters (`footfall_engine::page_reports`) may hold a report of one.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use arrow::array::AsArray;
use arrow::compute::cast;
use arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::internal_err;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, NullEquality, ScalarValue};
use datafusion::datasource::{provider_as_source, MemTable, TableProvider, TableType};
use datafusion::error::Result;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{
    col, lit, Expr, JoinType, LogicalPlan, LogicalPlanBuilder, TableProviderFilterPushDown, TableScan, TableSource,
};
use datafusion::physical_plan::{collect, execute_stream, ExecutionPlan};
use footfall_engine::event::columns;
use footfall_engine::Snapshot;
use futures::StreamExt;

use crate::provider::{string_set, timestamp_millis, EventsTable};
use crate::time_range::TimeRange;

/// A view that can be scoped, and by which of its columns.
#[derive(Debug, Clone, Copy)]
pub struct Scoping {
    /// The view's column holding an event time of the session (a page view's, or the start):
    /// never null, as every event has a time (`min` makes its field nullable all the same).
    pub time_column: &'static str,
    /// Which events the time is taken from: that column is the time of one of them.
    pub kept_from: KeptFrom,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeptFrom {
    PageViews,
    AllEvents,
}

/// The views provided here, with how each is scoped.
pub fn scoping(view: &str) -> Option<Scoping> {
    let page_time = |time_column| Scoping { time_column, kept_from: KeptFrom::PageViews };
    match view {
        "all_pageviews" | "pageviews" => Some(page_time("added_iso")),
        "user_paths" => Some(page_time("entry_timestamp")),
        "all_sessions" | "sessions" => Some(Scoping { time_column: "started_at", kept_from: KeptFrom::AllEvents }),
        _ => None,
    }
}

/// Above this share of the stored rows in the filter's time range, the restriction costs more
/// (a second scan and a join) than the sessions it leaves out save. Top pages with their time on
/// page over the 10M suite's `site1`, against the whole computation (≈ 1,000 ms): 279 ms for the
/// last day, 463 for 7 days, 710 for 14, 882 for 17 (70% of the rows), equal at 20 (80%).
const MAX_SHARE_IN_RANGE: f64 = 0.7;

/// Each retry of `ORDER BY time LIMIT k` reaches this many times further back for its range.
const WIDENING: usize = 8;
const HELD_ROWS: &str = "footfall_rows_in_time_order";

const KEPT_SESSIONS: &str = "footfall_kept_sessions";
/// Up to this many page views of the kept sessions are listed for their page metrics to skip files
/// by. Each file's filter is asked for each page (≈ 5 ns), and says "maybe" for one page in 65,000
/// it lacks: with more pages, most files are read anyway.
const MAX_LISTED_PAGES: usize = 20_000;
/// Page views are looked for only for up to this many sessions: sessions average about four page
/// views (4.2 in the benchmark's traffic), and a list that runs past [`MAX_LISTED_PAGES`] is a scan
/// for nothing: 20–50 ms of the 200 ms a day's top pages take over the 10M suite's `site1`
/// (12,762 sessions, 53,654 page views).
const MAX_SESSIONS_TO_LIST_PAGES_OF: usize = MAX_LISTED_PAGES / 4;
/// The views (inlined in the others) that aggregate a page's later reports by `page_id`.
const PAGE_KEYED_VIEWS: [&str; 2] = ["page_metrics", "page_experiments"];

#[derive(Clone)]
pub struct ScopedView {
    plan: LogicalPlan,
    schema: SchemaRef,
    definition: String,
    scoping: Scoping,
    events: Arc<dyn TableSource>,
    events_table: Arc<dyn TableProvider>,
    snapshot: Arc<Snapshot>,
    max_listed_sessions: usize,
    max_held_rows: usize,
    /// Set when the query wants only the first rows in the order of the time column.
    order: Option<TimeOrder>,
}

/// The first `fetch` rows in the order of a scoped view's time column (see
/// [`crate::scoped_view_order`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeOrder {
    pub descending: bool,
    pub fetch: usize,
}

/// What a scoped view needs to know to choose its sessions.
pub struct ScopedSessions {
    /// The query's `events` table.
    pub events: Arc<dyn TableProvider>,
    /// The rows `events` reads, for the share of them a time range holds.
    pub snapshot: Arc<Snapshot>,
    /// Up to this many kept sessions are listed by id (see [`ScopedView::listed_sessions`]);
    /// more are found by a semi join.
    pub max_listed: usize,
    /// Up to this many rows (or k, if more) of the range `ORDER BY time LIMIT k` computes are held
    /// in memory as the answer's source instead of being computed twice.
    pub max_held_rows: usize,
}

impl fmt::Debug for ScopedView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedView").field("scoping", &self.scoping).finish()
    }
}

impl ScopedView {
    /// `plan` is the view's plan with the views it reads inlined and its `events` scans bound to
    /// `events`, which reads `sessions.snapshot`.
    pub fn new(
        plan: LogicalPlan,
        definition: String,
        scoping: Scoping,
        events: Arc<dyn TableSource>,
        sessions: ScopedSessions,
    ) -> Self {
        let schema = Arc::new(plan.schema().as_arrow().clone());
        let ScopedSessions { events: events_table, snapshot, max_listed, max_held_rows } = sessions;
        Self {
            plan,
            schema,
            definition,
            scoping,
            events,
            events_table,
            snapshot,
            max_listed_sessions: max_listed,
            max_held_rows,
            order: None,
        }
    }

    /// This view told that its rows are wanted in `order` of its field `field`, if that is the
    /// time column and it was not told so already. Where nulls sort does not matter: the time
    /// column is never null (see [`Scoping::time_column`]), whatever its field says.
    pub fn in_time_order(&self, field: usize, order: TimeOrder) -> Option<Self> {
        let field = self.schema.fields().get(field)?;
        let millis = matches!(field.data_type(), DataType::Timestamp(TimeUnit::Millisecond, _));
        let fits = field.name() == self.scoping.time_column && millis;
        (fits && self.order != Some(order)).then(|| Self { order: Some(order), ..self.clone() })
    }

    /// The times the filters' comparisons of the time column with constants admit, if any do.
    fn time_range(&self, filters: &[Expr]) -> Option<TimeRange> {
        filters
            .iter()
            .flat_map(split_conjunction)
            .filter_map(|e| TimeRange::admitted_by(e, self.scoping.time_column))
            .reduce(TimeRange::intersect)
    }

    /// The filters on `project_id` alone: the kept sessions need only be looked for there.
    fn project_conditions(filters: &[Expr]) -> Vec<Expr> {
        filters
            .iter()
            .flat_map(split_conjunction)
            .filter(|e| {
                let columns = e.column_refs();
                !columns.is_empty() && columns.iter().all(|c| c.name == columns::PROJECT_ID)
            })
            .filter_map(|e| on_events_column(e).ok())
            .collect()
    }

    /// Whether leaving out the sessions outside `conditions` saves enough to pay for finding them,
    /// judged by the stored rows of the projects `filters` name (all visible ones if none).
    fn worth_scoping(&self, range: TimeRange, filters: &[Expr]) -> bool {
        let projects: Option<Vec<String>> = filters
            .iter()
            .flat_map(split_conjunction)
            .filter_map(|e| string_set(e, columns::PROJECT_ID))
            .reduce(|a, b| a.into_iter().filter(|p| b.contains(p)).collect());
        let counted = |project: &str| projects.as_ref().is_none_or(|p| p.iter().any(|q| q == project));
        let (mut total, mut in_range) = (0u64, 0u64);
        for file in self.snapshot.files.iter().filter(|f| counted(f.meta.project.as_str())) {
            total += file.meta.rows;
            if file.meta.max_ts_ms >= range.from && file.meta.min_ts_ms < range.until {
                in_range += file.meta.rows;
            }
        }
        // Buffered rows are recent and few; count them as in range.
        let buffered: u64 = self
            .snapshot
            .buffered
            .iter()
            .filter(|(partition, _)| counted(partition.project.as_str()))
            .flat_map(|(_, b)| b)
            .map(|b| b.num_rows() as u64)
            .sum();
        total += buffered;
        in_range += buffered;
        total > 0 && (in_range as f64) <= MAX_SHARE_IN_RANGE * total as f64
    }

    fn events_scan(&self) -> Result<LogicalPlanBuilder> {
        LogicalPlanBuilder::scan("events", self.events.clone(), None)
    }

    /// `(project_id, session_id)` of the sessions with an event (a page view, for page-time
    /// views) that meets `conditions`.
    fn kept_sessions(&self, conditions: &[Expr]) -> Result<LogicalPlan> {
        let mut condition = conditions.iter().cloned().reduce(Expr::and).unwrap_or(lit(true));
        if self.scoping.kept_from == KeptFrom::PageViews {
            condition = col(columns::EVENT_TYPE).eq(lit("pageview")).and(condition);
        }
        self.events_scan()?
            .filter(condition)?
            .aggregate(vec![col(columns::PROJECT_ID), col(columns::SESSION_ID)], Vec::<Expr>::new())?
            .alias(KEPT_SESSIONS)?
            .build()
    }

    /// The view over the kept sessions' events, each scan of `events` passed through `restrict`.
    /// The page metrics joined to their page views need no restriction of ours: their join's build
    /// side is the kept page views, and DataFusion pushes its keys through the metrics' aggregate
    /// into their scan as a dynamic filter (an explicit semi join on page ids was measured to add
    /// a scan and do the same). They are not restricted by session: a page's late reports may
    /// land in a new session.
    ///
    /// When the kept page views' ids are `pages`, the page metrics skip the files whose page-report
    /// filters hold none of them (see `footfall_engine::page_reports`): without that, their scan
    /// read the page ids of the project's whole history.
    fn scoped_plan(
        &self,
        restrict: impl Fn(LogicalPlan) -> Result<LogicalPlan>,
        pages: Option<&[String]>,
    ) -> Result<LogicalPlan> {
        let rewritten = self.plan.clone().transform_down(|node| match &node {
            LogicalPlan::SubqueryAlias(alias) if PAGE_KEYED_VIEWS.contains(&alias.alias.table()) => {
                let node = match pages {
                    Some(pages) => self.of_page_reports(node, pages)?,
                    None => node,
                };
                Ok(Transformed::new(node, pages.is_some(), TreeNodeRecursion::Jump))
            }
            // Jump: the restriction's own scan of `events` is not to be restricted again.
            LogicalPlan::TableScan(scan) if is_events(scan) => {
                Ok(Transformed::new(restrict(node.clone())?, true, TreeNodeRecursion::Jump))
            }
            _ => Ok(Transformed::no(node)),
        })?;
        Ok(rewritten.data)
    }

    /// The kept sessions, computed now. Up to `max_listed_sessions` of them are listed: then the
    /// scans name them, and each file's session index picks the files and row groups that hold
    /// them instead of every page view of the history being read and probed. More (or a session
    /// without an id, which a list cannot match) are joined, from the rows computed here.
    async fn kept_now(&self, state: &dyn Session, kept: &LogicalPlan) -> Result<KeptSessions> {
        let computing = state.create_physical_plan(kept).await?;
        let schema = computing.schema();
        let batches = collect(computing, state.task_ctx()).await?;
        let computed = || -> Result<KeptSessions> {
            let table = MemTable::try_new(schema.clone(), vec![batches.clone()])?;
            let plan = LogicalPlanBuilder::scan(KEPT_SESSIONS, provider_as_source(Arc::new(table)), None)?.build()?;
            Ok(KeptSessions::Joined(plan))
        };
        if batches.iter().map(|b| b.num_rows()).sum::<usize>() > self.max_listed_sessions {
            return computed();
        }
        let mut listed = Vec::new();
        for batch in &batches {
            let sessions = cast(batch.column(1), &DataType::Utf8)?;
            if sessions.null_count() > 0 {
                return computed();
            }
            listed.extend(sessions.as_string::<i32>().iter().flatten().map(str::to_string));
        }
        Ok(KeptSessions::Listed(listed))
    }

    /// The view's plan for `filters`: over the sessions in their time range when they have one
    /// worth it, else whole.
    async fn plan_for(&self, state: &dyn Session, filters: &[Expr]) -> Result<LogicalPlan> {
        let Some(range) = self.time_range(filters).filter(|range| self.worth_scoping(*range, filters)) else {
            return Ok(self.plan.clone());
        };
        let mut conditions = range.conditions();
        conditions.extend(Self::project_conditions(filters));
        let kept = self.kept_sessions(&conditions)?;
        match self.kept_now(state, &kept).await? {
            KeptSessions::Listed(listed) => {
                let pages = self.listed_pages(state, &listed).await?;
                self.scoped_plan(|scan| self.of_sessions(scan, &listed), pages.as_deref())
            }
            KeptSessions::Joined(kept) => {
                self.scoped_plan(|scan| semi_join(&kept, KEPT_SESSIONS, scan, columns::SESSION_ID), None)
            }
        }
    }

    /// The ids of the page views of `sessions`, computed now, for their page metrics to skip the
    /// files that hold no report of them; `None` when there are more than [`MAX_LISTED_PAGES`] (or
    /// sessions than [`MAX_SESSIONS_TO_LIST_PAGES_OF`]), or the view has no page metrics.
    async fn listed_pages(&self, state: &dyn Session, sessions: &[String]) -> Result<Option<Vec<String>>> {
        let page_keyed = self.plan.exists(|node| {
            Ok(matches!(node, LogicalPlan::SubqueryAlias(alias) if PAGE_KEYED_VIEWS.contains(&alias.alias.table())))
        })?;
        if !page_keyed || sessions.len() > MAX_SESSIONS_TO_LIST_PAGES_OF {
            return Ok(None);
        }
        let page = col(columns::PAGE_ID);
        let scan = self.of_sessions(self.events_scan()?.build()?, sessions)?;
        let plan = LogicalPlanBuilder::from(scan)
            .filter(col(columns::EVENT_TYPE).eq(lit("pageview")).and(page.clone().is_not_null()))?
            .project(vec![page])?
            .limit(0, Some(MAX_LISTED_PAGES + 1))?
            .build()?;
        let batches = collect(state.create_physical_plan(&plan).await?, state.task_ctx()).await?;
        if batches.iter().map(|b| b.num_rows()).sum::<usize>() > MAX_LISTED_PAGES {
            return Ok(None);
        }
        let mut pages = Vec::new();
        for batch in &batches {
            let ids = cast(batch.column(0), &DataType::Utf8)?;
            pages.extend(ids.as_string::<i32>().iter().flatten().map(str::to_string));
        }
        Ok(Some(pages))
    }

    /// For the first `order.fetch` rows in time order: the plan and filters of a recent range of
    /// the view (an old one, ascending) that holds at least that many rows meeting `filters`, so
    /// that every row the order puts first is in it (rows tied at the range's edge too), or those
    /// rows themselves when few. `None` when no such range is worth computing apart from the
    /// whole.
    ///
    /// The range starts at the time of the n-th latest event the view's rows are taken from (page
    /// views, or all events for sessions) that meets the filters it can, n twice the rows wanted;
    /// rows left out (bots, filters on computed columns, sessions started earlier) widen it
    /// eightfold until it holds enough. Each try computes the range, so a filter on a computed
    /// column that keeps few rows can cost a few tries more than computing everything once.
    async fn rows_in_time_order(
        &self,
        state: &dyn Session,
        filters: &[Expr],
        order: TimeOrder,
    ) -> Result<Option<(LogicalPlan, Vec<Expr>)>> {
        let in_filters = self.time_range(filters);
        let mut nth = order.fetch.saturating_mul(2).max(1);
        loop {
            let Some(edge) = self.nth_source_time(state, filters, in_filters, nth, order.descending).await? else {
                return Ok(None);
            };
            let ordered = if order.descending {
                TimeRange { from: edge, until: i64::MAX }
            } else {
                TimeRange { from: i64::MIN, until: edge.saturating_add(1) }
            };
            let range = in_filters.map_or(ordered, |r| r.intersect(ordered));
            if !self.worth_scoping(range, filters) {
                return Ok(None);
            }
            let mut within = filters.to_vec();
            within.extend(self.view_time_conditions(range));
            let plan = self.plan_for(state, &within).await?;
            // The range's rows are computed once, here: when they are few they are the answer's
            // source (held in memory); when more than that, they are enough and are computed
            // again by the query, streaming.
            let rows = state.create_physical_plan(&filtered(plan.clone(), &within)?.build()?).await?;
            let schema = rows.schema();
            let mut stream = execute_stream(rows, state.task_ctx())?;
            let (mut held, mut count) = (Vec::new(), 0);
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                count += batch.num_rows();
                if count > order.fetch.max(self.max_held_rows) {
                    return Ok(Some((plan, within)));
                }
                held.push(batch);
            }
            if count >= order.fetch {
                let table = MemTable::try_new(schema, vec![held])?;
                let plan = LogicalPlanBuilder::scan(HELD_ROWS, provider_as_source(Arc::new(table)), None)?.build()?;
                return Ok(Some((plan, Vec::new())));
            }
            nth = nth.saturating_mul(WIDENING);
        }
    }

    /// The filters' conditions on columns `events` has too, with the same type, as conditions on
    /// `events`: most mean the same there (a page view's own path, its project), which makes the
    /// first range a close guess. Where one does not, a try more or a computation of the whole
    /// follows, never another answer: each range is counted.
    fn source_conditions(&self, filters: &[Expr]) -> Vec<Expr> {
        let events = self.events_table.schema();
        let shared = |name: &str| match (self.schema.field_with_name(name), events.field_with_name(name)) {
            (Ok(view), Ok(event)) => view.data_type() == event.data_type(),
            _ => false,
        };
        let subquery = |e: &Expr| {
            e.exists(|e| Ok(matches!(e, Expr::ScalarSubquery(_) | Expr::InSubquery(_) | Expr::Exists(_))))
                .unwrap_or(true)
        };
        filters
            .iter()
            .flat_map(split_conjunction)
            .filter(|e| {
                let columns = e.column_refs();
                !columns.is_empty() && columns.iter().all(|c| shared(&c.name)) && !e.is_volatile() && !subquery(e)
            })
            .filter_map(|e| on_events_column(e).ok())
            .collect()
    }

    /// The time of the `nth` event in time order (descending or not) of those the view's rows are
    /// taken from, that meet the filters' [`Self::source_conditions`] and their time range; `None`
    /// when there are fewer.
    async fn nth_source_time(
        &self,
        state: &dyn Session,
        filters: &[Expr],
        within: Option<TimeRange>,
        nth: usize,
        descending: bool,
    ) -> Result<Option<i64>> {
        let mut conditions = within.map(TimeRange::conditions).unwrap_or_default();
        conditions.extend(self.source_conditions(filters));
        if self.scoping.kept_from == KeptFrom::PageViews {
            conditions.push(col(columns::EVENT_TYPE).eq(lit("pageview")));
        }
        let time = Expr::Column(Column::new(Some("events"), columns::ADDED_ISO));
        let mut builder = self.events_scan()?;
        if let Some(condition) = conditions.into_iter().reduce(Expr::and) {
            builder = builder.filter(condition)?;
        }
        let plan = builder
            .sort(vec![time.clone().sort(!descending, false)])?
            .limit(nth.saturating_sub(1), Some(1))?
            .project(vec![time])?
            .build()?;
        let found = collect(state.create_physical_plan(&plan).await?, state.task_ctx()).await?;
        let Some(batch) = found.iter().find(|b| b.num_rows() > 0) else {
            return Ok(None);
        };
        Ok(timestamp_millis(&ScalarValue::try_from_array(batch.column(0), 0)?))
    }

    /// `range` as conditions on the view's own time column.
    fn view_time_conditions(&self, range: TimeRange) -> Vec<Expr> {
        let column = self.scoping.time_column;
        let zone = match self.schema.field_with_name(column).map(|f| f.data_type()) {
            Ok(DataType::Timestamp(_, zone)) => zone.clone(),
            _ => None,
        };
        range.conditions_on(Column::new_unqualified(column), zone)
    }

    /// `plan` (a page-keyed view's) with its scans of `events` skipping the files that hold no
    /// report of `pages`.
    fn of_page_reports(&self, plan: LogicalPlan, pages: &[String]) -> Result<LogicalPlan> {
        let events = self.events_table()?;
        let source = provider_as_source(Arc::new(events.of_page_reports(pages)));
        let rewritten = plan.transform_down(|node| match node {
            LogicalPlan::TableScan(scan) if is_events(&scan) => {
                Ok(Transformed::yes(LogicalPlan::TableScan(TableScan { source: source.clone(), ..scan })))
            }
            other => Ok(Transformed::no(other)),
        })?;
        Ok(rewritten.data)
    }

    fn events_table(&self) -> Result<&EventsTable> {
        match (self.events_table.as_ref() as &dyn Any).downcast_ref::<EventsTable>() {
            Some(events) => Ok(events),
            None => internal_err!("events is not Footfall's table"),
        }
    }

    /// `scan` (of `events`) reading only the rows of `sessions`, in any project: a session id kept
    /// in one project admits that id's rows in another, a whole session either way, so every
    /// session computed is still complete.
    fn of_sessions(&self, scan: LogicalPlan, sessions: &[String]) -> Result<LogicalPlan> {
        let LogicalPlan::TableScan(scan) = scan else {
            return internal_err!("a scoped view restricts scans of events only");
        };
        let source = provider_as_source(Arc::new(self.events_table()?.of_sessions(sessions)));
        Ok(LogicalPlan::TableScan(TableScan { source, ..scan }))
    }
}

/// The kept sessions: their ids, or their rows as a table to join with.
enum KeptSessions {
    Listed(Vec<String>),
    Joined(LogicalPlan),
}

fn is_events(scan: &TableScan) -> bool {
    scan.table_name.table() == "events"
}

/// The rows of `events` (a scan, or a plan with its schema) whose project and `key` are in `kept`.
/// `kept` is the build side: it is small, and the probe side's scan gets its keys as a filter.
fn semi_join(kept: &LogicalPlan, kept_alias: &str, events: LogicalPlan, key: &str) -> Result<LogicalPlan> {
    let qualifier = match &events {
        LogicalPlan::TableScan(scan) => scan.table_name.clone(),
        _ => "events".into(),
    };
    let left = [columns::PROJECT_ID, key].map(|c| Column::new(Some(kept_alias), c));
    let right = [columns::PROJECT_ID, key].map(|c| Column::new(Some(qualifier.clone()), c));
    LogicalPlanBuilder::from(kept.clone())
        .join_detailed(
            events,
            JoinType::RightSemi,
            (left.to_vec(), right.to_vec()),
            None,
            NullEquality::NullEqualsNull,
        )?
        .build()
}

/// `expr` with its columns read from `events` (for columns that mean the same there).
fn on_events_column(expr: &Expr) -> Result<Expr> {
    Ok(expr
        .clone()
        .transform(|e| match e {
            Expr::Column(c) => Ok(Transformed::yes(Expr::Column(Column::new(Some("events"), c.name)))),
            other => Ok(Transformed::no(other)),
        })?
        .data)
}

#[async_trait]
impl TableProvider for ScopedView {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    fn get_table_definition(&self) -> Option<&str> {
        Some(&self.definition)
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        // Every filter is applied on top of the view's plan in `scan`, as DataFusion's own views do.
        Ok(vec![TableProviderFilterPushDown::Exact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let ordered = match self.order {
            Some(order) => self.rows_in_time_order(state, filters, order).await?,
            None => None,
        };
        let (plan, filters) = match ordered {
            Some(found) => found,
            None => (self.plan_for(state, filters).await?, filters.to_vec()),
        };
        let mut builder = filtered(plan, &filters)?;
        if let Some(projection) = projection {
            // By name: the plan may be the view's body or rows held from it, and its names are
            // unique.
            let fields = projection
                .iter()
                .map(|i| Expr::Column(Column::new_unqualified(self.schema.field(*i).name())))
                .collect::<Vec<_>>();
            builder = builder.project(fields)?;
        }
        if let Some(limit) = limit {
            builder = builder.limit(0, Some(limit))?;
        }
        state.create_physical_plan(&builder.build()?).await
    }
}

/// `plan` (a scoped view's) with `filters` applied on top, as DataFusion's own views do.
fn filtered(plan: LogicalPlan, filters: &[Expr]) -> Result<LogicalPlanBuilder> {
    let mut builder = LogicalPlanBuilder::from(plan);
    if let Some(filter) = filters.iter().cloned().reduce(Expr::and) {
        // The filters name the view as the query did (its name or an alias); the plan's columns
        // carry the qualifiers of the view's own body, and its names are unique.
        let filter = filter
            .transform(|e| match e {
                Expr::Column(c) => Ok(Transformed::yes(Expr::Column(Column::new_unqualified(c.name)))),
                other => Ok(Transformed::no(other)),
            })?
            .data;
        builder = builder.filter(filter)?;
    }
    Ok(builder)
}
