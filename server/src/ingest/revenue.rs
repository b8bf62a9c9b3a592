//! Revenue amounts: exact decimals (scale 4) and ISO 4217 currency codes.

use footfall_engine::event::REVENUE_SCALE;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum AmountIn {
    Number(f64),
    Text(String),
}

#[derive(Debug, Deserialize)]
pub(crate) struct RevenueIn {
    pub amount: AmountIn,
    pub currency: String,
}

pub(crate) fn parse_revenue(r: RevenueIn) -> Result<(i128, String), String> {
    let text = match r.amount {
        AmountIn::Number(n) if n.is_finite() => n.to_string(),
        AmountIn::Number(_) => return Err("revenue.amount must be finite".into()),
        AmountIn::Text(s) => s.trim().to_string(),
    };
    let amount = parse_decimal(&text)
        .ok_or_else(|| format!("revenue.amount {text:?} is not a decimal with at most 4 places"))?;
    let currency = r.currency.trim().to_ascii_uppercase();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(format!("revenue.currency {:?} is not an ISO 4217 code", r.currency));
    }
    Ok((amount, currency))
}

/// Parses "12.5" into 125000 (scale 4) exactly, without going through floating point.
pub(crate) fn parse_decimal(s: &str) -> Option<i128> {
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let scale = REVENUE_SCALE as usize;
    if whole.is_empty() && frac.is_empty() || frac.len() > scale || whole.len() > 14 {
        return None;
    }
    if !whole.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: i128 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let frac_value: i128 = if frac.is_empty() { 0 } else { frac.parse().ok()? };
    let value = whole * 10i128.pow(scale as u32) + frac_value * 10i128.pow((scale - frac.len()) as u32);
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_exact() {
        assert_eq!(parse_decimal("12.50"), Some(125_000));
        assert_eq!(parse_decimal("-0.0001"), Some(-1));
        assert_eq!(parse_decimal("7"), Some(70_000));
        assert_eq!(parse_decimal("1.23456"), None);
        assert_eq!(parse_decimal("1e3"), None);
        assert_eq!(parse_decimal("."), None);
    }
}
