//! Where Footfall's physical optimizer rules sit among DataFusion's.

use std::sync::Arc;

use datafusion::physical_optimizer::PhysicalOptimizerRule;

pub type PhysicalRules = Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>>;

/// Puts `rule` just before DataFusion's rule named `anchor` (at the end if there is none).
pub fn insert_before(rules: &mut PhysicalRules, anchor: &str, rule: Arc<dyn PhysicalOptimizerRule + Send + Sync>) {
    let at = rules.iter().position(|r| r.name() == anchor).unwrap_or(rules.len());
    rules.insert(at, rule);
}

/// DataFusion's default rules with all of Footfall's.
pub fn all() -> PhysicalRules {
    let mut rules = crate::sorted_window::physical_optimizer_rules();
    crate::shared_subplan::add_to(&mut rules);
    crate::compact_batches::add_to(&mut rules);
    crate::session_runs::add_to(&mut rules);
    rules
}
