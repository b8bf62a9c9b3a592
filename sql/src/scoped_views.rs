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
//! The restriction is a semi join whose build side is small, so DataFusion pushes it into the
//! Parquet scans as a dynamic filter and other sessions' rows are skipped while decoding. The page
//! metrics' scan still reads the page ids of the project's whole history, a small part of the
//! cost of computing it.

use std::fmt;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, NullEquality};
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{
    col, lit, Between, BinaryExpr, Expr, JoinType, LogicalPlan, LogicalPlanBuilder, Operator,
    TableProviderFilterPushDown, TableSource,
};
use datafusion::physical_plan::ExecutionPlan;
use footfall_engine::event::columns;
use footfall_engine::Snapshot;

use crate::provider::{string_set, timestamp_millis};

/// A view that can be scoped, and by which of its columns.
#[derive(Debug, Clone, Copy)]
pub struct Scoping {
    /// The view's column holding an event time of the session (a page view's, or the start).
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

const KEPT_SESSIONS: &str = "footfall_kept_sessions";
/// The views (inlined in the others) that aggregate a page's later reports by `page_id`.
const PAGE_KEYED_VIEWS: [&str; 2] = ["page_metrics", "page_experiments"];

pub struct ScopedView {
    plan: LogicalPlan,
    schema: SchemaRef,
    definition: String,
    scoping: Scoping,
    events: Arc<dyn TableSource>,
    snapshot: Arc<Snapshot>,
}

impl fmt::Debug for ScopedView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedView").field("scoping", &self.scoping).finish()
    }
}

impl ScopedView {
    /// `plan` is the view's plan with the views it reads inlined and its `events` scans bound to
    /// `events`, which reads `snapshot`.
    pub fn new(
        plan: LogicalPlan,
        definition: String,
        scoping: Scoping,
        events: Arc<dyn TableSource>,
        snapshot: Arc<Snapshot>,
    ) -> Self {
        let schema = Arc::new(plan.schema().as_arrow().clone());
        Self { plan, schema, definition, scoping, events, snapshot }
    }

    /// The filters' comparisons of the time column with constants, as conditions on `events`.
    fn time_conditions(&self, filters: &[Expr]) -> Vec<Expr> {
        filters.iter().flat_map(split_conjunction).filter_map(|e| on_event_time(e, self.scoping.time_column)).collect()
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
    fn worth_scoping(&self, conditions: &[Expr], filters: &[Expr]) -> bool {
        let projects: Option<Vec<String>> = filters
            .iter()
            .flat_map(split_conjunction)
            .filter_map(|e| string_set(e, columns::PROJECT_ID))
            .reduce(|a, b| a.into_iter().filter(|p| b.contains(p)).collect());
        let counted = |project: &str| projects.as_ref().is_none_or(|p| p.iter().any(|q| q == project));
        let (mut min_ms, mut max_ms) = (i64::MIN, i64::MAX);
        for condition in conditions {
            let (lo, hi) = time_bounds(condition);
            min_ms = min_ms.max(lo);
            max_ms = max_ms.min(hi);
        }
        let (mut total, mut in_range) = (0u64, 0u64);
        for file in self.snapshot.files.iter().filter(|f| counted(f.meta.project.as_str())) {
            total += file.meta.rows;
            if file.meta.max_ts_ms >= min_ms && file.meta.min_ts_ms <= max_ms {
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

    /// The view over the kept sessions' events. The page metrics joined to their page views need
    /// no restriction of ours: their join's build side is the kept page views, and DataFusion
    /// pushes its keys through the metrics' aggregate into their scan as a dynamic filter (an
    /// explicit semi join on page ids was measured to add a scan and do the same). They are not
    /// restricted by session: a page's late reports may land in a new session.
    fn scoped_plan(&self, conditions: &[Expr]) -> Result<LogicalPlan> {
        let sessions = self.kept_sessions(conditions)?;
        let rewritten = self.plan.clone().transform_down(|node| match &node {
            LogicalPlan::SubqueryAlias(alias) if PAGE_KEYED_VIEWS.contains(&alias.alias.table()) => {
                Ok(Transformed::new(node, false, TreeNodeRecursion::Jump))
            }
            // Jump: the semi join's own scan of `events` is not to be restricted again.
            LogicalPlan::TableScan(scan) if is_events(scan) => {
                let restricted = semi_join(&sessions, KEPT_SESSIONS, node.clone(), columns::SESSION_ID)?;
                Ok(Transformed::new(restricted, true, TreeNodeRecursion::Jump))
            }
            _ => Ok(Transformed::no(node)),
        })?;
        Ok(rewritten.data)
    }
}

fn is_events(scan: &datafusion::logical_expr::TableScan) -> bool {
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

/// `expr` as a condition on `events.added_iso`, when it compares `time_column` with constants.
fn on_event_time(expr: &Expr, time_column: &str) -> Option<Expr> {
    let is_time = |e: &Expr| matches!(e, Expr::Column(c) if c.name == time_column);
    let is_constant = |e: &Expr| matches!(e, Expr::Literal(v, _) if timestamp_millis(v).is_some());
    let usable = match expr {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            matches!(op, Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq | Operator::Eq)
                && ((is_time(left) && is_constant(right)) || (is_constant(left) && is_time(right)))
        }
        Expr::Between(Between { expr, negated: false, low, high }) => {
            is_time(expr) && is_constant(low) && is_constant(high)
        }
        _ => false,
    };
    if !usable {
        return None;
    }
    let event_time = Expr::Column(Column::new(Some("events"), columns::ADDED_ISO));
    expr.clone()
        .transform(|e| match e {
            Expr::Column(_) => Ok(Transformed::yes(event_time.clone())),
            other => Ok(Transformed::no(other)),
        })
        .ok()
        .map(|t| t.data)
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

/// The range of milliseconds a condition from [`on_event_time`] admits (whole-millisecond
/// rounding only widens it).
fn time_bounds(condition: &Expr) -> (i64, i64) {
    let ms = |e: &Expr| match e {
        Expr::Literal(v, _) => timestamp_millis(v),
        _ => None,
    };
    match condition {
        Expr::Between(Between { low, high, .. }) => (ms(low).unwrap_or(i64::MIN), ms(high).unwrap_or(i64::MAX)),
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let (op, value) = match (ms(left), ms(right)) {
                (None, Some(v)) => (*op, v),
                (Some(v), None) => (op.swap().unwrap_or(*op), v),
                _ => return (i64::MIN, i64::MAX),
            };
            match op {
                Operator::Gt | Operator::GtEq => (value, i64::MAX),
                Operator::Lt | Operator::LtEq => (i64::MIN, value.saturating_add(1)),
                Operator::Eq => (value, value.saturating_add(1)),
                _ => (i64::MIN, i64::MAX),
            }
        }
        _ => (i64::MIN, i64::MAX),
    }
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
        let mut conditions = self.time_conditions(filters);
        let plan = if !conditions.is_empty() && self.worth_scoping(&conditions, filters) {
            conditions.extend(Self::project_conditions(filters));
            self.scoped_plan(&conditions)?
        } else {
            self.plan.clone()
        };
        let mut builder = LogicalPlanBuilder::from(plan);
        if let Some(filter) = filters.iter().cloned().reduce(Expr::and) {
            // The filters name the view as the query did (its name or an alias); the plan's
            // columns carry the qualifiers of the view's own body, and its names are unique.
            let filter = filter
                .transform(|e| match e {
                    Expr::Column(c) => Ok(Transformed::yes(Expr::Column(Column::new_unqualified(c.name)))),
                    other => Ok(Transformed::no(other)),
                })?
                .data;
            builder = builder.filter(filter)?;
        }
        if let Some(projection) = projection {
            let schema = self.plan.schema();
            let fields =
                projection.iter().map(|i| Expr::Column(Column::from(schema.qualified_field(*i)))).collect::<Vec<_>>();
            builder = builder.project(fields)?;
        }
        if let Some(limit) = limit {
            builder = builder.limit(0, Some(limit))?;
        }
        state.create_physical_plan(&builder.build()?).await
    }
}
