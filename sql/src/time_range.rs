//! The times a filter on a time column admits, for the session views (`scoped_views.rs`): a
//! comparison of the column, its date or a `date_trunc` of it with a constant.

use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::common::{Column, ScalarValue};
use datafusion::logical_expr::{lit, Between, BinaryExpr, Cast, Expr, Operator, TryCast};
use footfall_engine::event::columns;

use crate::provider::timestamp_millis;

const DAY_MS: i64 = 86_400_000;

/// Event times in milliseconds, `[from, until)`: a superset of the times a filter admits, which is
/// all the choice of sessions needs (the filter itself is applied to the view's rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeRange {
    pub from: i64,
    pub until: i64,
}

impl TimeRange {
    pub(crate) fn intersect(self, other: Self) -> Self {
        Self { from: self.from.max(other.from), until: self.until.min(other.until) }
    }

    /// The times `expr` admits when it compares `time_column` with a constant: the column itself,
    /// its date (`CAST(t AS DATE)`) or `date_trunc('unit', t)`, by `<`, `<=`, `=`, `>=`, `>` or
    /// `BETWEEN`.
    pub(crate) fn admitted_by(expr: &Expr, time_column: &str) -> Option<Self> {
        match expr {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                if let (Some(width), Some(value)) = (truncation(left, time_column), constant_ms(right)) {
                    Self::compared(width, *op, value)
                } else if let (Some(value), Some(width)) = (constant_ms(left), truncation(right, time_column)) {
                    Self::compared(width, op.swap()?, value)
                } else {
                    None
                }
            }
            Expr::Between(Between { expr, negated: false, low, high }) => {
                let width = truncation(expr, time_column)?;
                let low = Self::compared(width, Operator::GtEq, constant_ms(low)?)?;
                Some(low.intersect(Self::compared(width, Operator::LtEq, constant_ms(high)?)?))
            }
            _ => None,
        }
    }

    /// The times `t` for which `f(t) op value` may hold, where `f(t) <= t < f(t) + width` (width 1:
    /// `t` itself, to the millisecond; a value below a millisecond was rounded down).
    fn compared(width: i64, op: Operator, value: i64) -> Option<Self> {
        let (from, until) = match op {
            Operator::Gt => (value.saturating_add(1), i64::MAX),
            Operator::GtEq => (value, i64::MAX),
            Operator::Lt | Operator::LtEq => (i64::MIN, value.saturating_add(width)),
            Operator::Eq => (value, value.saturating_add(width)),
            _ => return None,
        };
        Some(Self { from, until })
    }

    /// The range as conditions on `events.added_iso`.
    pub(crate) fn conditions(self) -> Vec<Expr> {
        self.conditions_on(Column::new(Some("events"), columns::ADDED_ISO), Some("UTC".into()))
    }

    /// The range as conditions on `column`, a time in milliseconds in `zone`.
    pub(crate) fn conditions_on(self, column: Column, zone: Option<Arc<str>>) -> Vec<Expr> {
        let time = || Expr::Column(column.clone());
        let at = |ms: i64| lit(ScalarValue::TimestampMillisecond(Some(ms), zone.clone()));
        let mut conditions = Vec::new();
        if self.from > i64::MIN {
            conditions.push(time().gt_eq(at(self.from)));
        }
        if self.until < i64::MAX {
            conditions.push(time().lt(at(self.until)));
        }
        conditions
    }
}

/// How far past `f(t)` the time `t` itself may lie, when `expr` is `f(time_column)` for `f` the
/// identity (1 ms), a cast to a date or a `date_trunc` (the longest such unit).
fn truncation(expr: &Expr, time_column: &str) -> Option<i64> {
    let is_time = |e: &Expr| matches!(e, Expr::Column(c) if c.name == time_column);
    match expr {
        e if is_time(e) => Some(1),
        Expr::Cast(Cast { expr, field }) | Expr::TryCast(TryCast { expr, field })
            if is_time(expr) && matches!(field.data_type(), DataType::Date32 | DataType::Date64) =>
        {
            Some(DAY_MS)
        }
        Expr::ScalarFunction(f) if f.name() == "date_trunc" && f.args.len() == 2 && is_time(&f.args[1]) => {
            let Expr::Literal(unit, _) = &f.args[0] else { return None };
            Some(match unit.try_as_str().flatten()?.to_ascii_lowercase().as_str() {
                "microsecond" | "millisecond" => 1,
                "second" => 1_000,
                "minute" => 60_000,
                "hour" => 3_600_000,
                "day" => DAY_MS,
                "week" => 7 * DAY_MS,
                "month" => 31 * DAY_MS,
                "quarter" => 92 * DAY_MS,
                "year" => 366 * DAY_MS,
                _ => return None,
            })
        }
        _ => None,
    }
}

/// A constant time or date in milliseconds (rounded down).
fn constant_ms(expr: &Expr) -> Option<i64> {
    let Expr::Literal(value, _) = expr else { return None };
    match value {
        ScalarValue::Date32(Some(days)) => i64::from(*days).checked_mul(DAY_MS),
        ScalarValue::Date64(Some(ms)) => Some(*ms),
        other => timestamp_millis(other),
    }
}

#[cfg(test)]
mod tests {
    use datafusion::functions::datetime::expr_fn::date_trunc;
    use datafusion::logical_expr::{cast, col, lit};

    use super::*;

    const T: i64 = 1_764_201_600_000; // 2025-11-27T00:00:00Z

    fn at(ms: i64) -> Expr {
        lit(ScalarValue::TimestampMillisecond(Some(ms), Some("UTC".into())))
    }

    fn range(expr: Expr) -> Option<(i64, i64)> {
        TimeRange::admitted_by(&expr, "added_iso").map(|r| (r.from, r.until))
    }

    #[test]
    fn comparisons_of_the_column_admit_their_times() {
        let t = || col("added_iso");
        assert_eq!(range(t().gt_eq(at(T))), Some((T, i64::MAX)));
        assert_eq!(range(t().gt(at(T))), Some((T + 1, i64::MAX)));
        assert_eq!(range(t().lt(at(T))), Some((i64::MIN, T + 1)));
        assert_eq!(range(at(T).lt_eq(t())), Some((T, i64::MAX)), "constant on the left");
        assert_eq!(range(t().eq(at(T))), Some((T, T + 1)));
        assert_eq!(range(t().between(at(T), at(T + 5))), Some((T, T + 6)));
        let micros = lit(ScalarValue::TimestampMicrosecond(Some(T * 1000 + 500), None));
        assert_eq!(range(t().gt(micros)), Some((T + 1, i64::MAX)), "a time within a millisecond");
    }

    #[test]
    fn dates_and_truncations_admit_every_time_they_may_stand_for() {
        let day = DAY_MS;
        let date = || cast(col("added_iso"), DataType::Date32);
        let the_27th = lit(ScalarValue::Date32(Some((T / day) as i32)));
        assert_eq!(range(date().eq(the_27th.clone())), Some((T, T + day)));
        assert_eq!(range(date().gt_eq(the_27th.clone())), Some((T, i64::MAX)));
        assert_eq!(range(date().lt_eq(the_27th.clone())), Some((i64::MIN, T + day)));
        assert_eq!(range(date().gt(the_27th)), Some((T + 1, i64::MAX)));
        let month = date_trunc(lit("month"), col("added_iso"));
        assert_eq!(range(month.eq(at(T))), Some((T, T + 31 * day)));
        let hour = date_trunc(lit("HOUR"), col("added_iso"));
        assert_eq!(range(hour.lt(at(T))), Some((i64::MIN, T + 3_600_000)));
    }

    #[test]
    fn other_filters_admit_nothing_known() {
        assert_eq!(range(col("path").eq(lit("/"))), None);
        assert_eq!(range(col("started_at").gt(at(T))), None, "another column");
        assert_eq!(range(col("added_iso").not_eq(at(T))), None);
        assert_eq!(range(date_trunc(lit("decade"), col("added_iso")).eq(at(T))), None);
        assert_eq!(range(col("added_iso").gt(col("added_iso"))), None);
    }
}
