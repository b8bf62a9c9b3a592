//! Footfall's SQL layer: the `events` table provider over engine snapshots, the views built on it,
//! the read-only guard, query limits and result encoding. See `docs/architecture.md`.

pub mod bounded_functions;
pub mod compact_batches;
pub mod count_with_distinct;
pub mod first_row;
pub mod format;
pub mod funnel;
pub mod guard;
pub mod ordered_first_last;
pub mod page_index_reader;
pub mod physical_rules;
pub mod provider;
pub mod query;
#[cfg(test)]
mod rule_tests;
pub mod scoped_view_order;
pub mod scoped_views;
pub mod session_runs;
pub mod shared_subplan;
pub mod sorted_window;
mod time_range;
pub mod to_char;
pub mod top_row_per_partition;
pub mod views;

pub use format::{encode_results, ResultFormat};
pub use query::{ExtraTables, QueryConfig, QueryError, QueryOutput, QueryScope, QueryService};
