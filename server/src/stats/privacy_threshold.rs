//! The privacy threshold of shared views: in a breakdown (pages, referrers, countries, …), a row
//! counting fewer than k visitors is folded into one "(other)" row, so a public dashboard cannot
//! single out the one visitor who came from a rare referrer or a small town. If "(other)" itself
//! ends up under k, it is dropped too: otherwise a lone folded row would show its count anyway.
//!
//! This does not hide what totals minus the shown rows reveal; the "(other)" row (or its absence)
//! already bounds that to fewer than k visitors per hidden row.

/// The label of the folded row.
pub const OTHER: &str = "(other)";

/// A breakdown row that can be folded.
pub trait BreakdownRow: Sized {
    /// Distinct visitors of the row: the count compared with k.
    fn visitors(&self) -> u64;
    /// Adds `other`'s metrics into `self` (visitors are distinct per row, so adding them is
    /// exact: a visitor counted in two folded rows would be two visitors in either view).
    fn absorb(&mut self, other: Self);
    /// `self`, relabelled as the "(other)" row.
    fn into_other(self) -> Self;
}

/// Folds rows with fewer than `k` visitors into one "(other)" row at the end; order of the kept
/// rows is preserved. `k` of 0 or 1 keeps everything.
pub fn fold_small_rows<R: BreakdownRow>(rows: Vec<R>, k: u64) -> Vec<R> {
    if k <= 1 {
        return rows;
    }
    let mut kept = Vec::with_capacity(rows.len());
    let mut other: Option<R> = None;
    for row in rows {
        if row.visitors() >= k {
            kept.push(row);
        } else {
            match other.as_mut() {
                Some(o) => o.absorb(row),
                None => other = Some(row.into_other()),
            }
        }
    }
    if let Some(other) = other.filter(|o| o.visitors() >= k) {
        kept.push(other);
    }
    kept
}

/// The usual shape: a label, visitors and pageviews.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountRow {
    pub label: String,
    pub visitors: u64,
    pub pageviews: u64,
}

impl BreakdownRow for CountRow {
    fn visitors(&self) -> u64 {
        self.visitors
    }

    fn absorb(&mut self, other: Self) {
        self.visitors += other.visitors;
        self.pageviews += other.pageviews;
    }

    fn into_other(self) -> Self {
        Self { label: OTHER.to_string(), ..self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(label: &str, visitors: u64) -> CountRow {
        CountRow { label: label.into(), visitors, pageviews: visitors * 2 }
    }

    #[test]
    fn rows_under_k_fold_into_other() {
        let rows = vec![row("/", 50), row("/a", 4), row("/b", 5), row("/c", 1), row("/d", 2)];
        let folded = fold_small_rows(rows, 5);
        assert_eq!(
            folded,
            vec![row("/", 50), row("/b", 5), CountRow { label: OTHER.into(), visitors: 7, pageviews: 14 },]
        );
    }

    #[test]
    fn an_other_row_under_k_is_dropped_and_k_of_one_keeps_all() {
        let rows = vec![row("/", 9), row("/rare", 2)];
        assert_eq!(fold_small_rows(rows.clone(), 5), vec![row("/", 9)]);
        assert_eq!(fold_small_rows(rows.clone(), 1), rows);
        assert_eq!(fold_small_rows(rows.clone(), 0), rows);
        assert!(fold_small_rows(Vec::<CountRow>::new(), 5).is_empty());
    }
}
