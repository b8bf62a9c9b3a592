//! `to_char(timestamp, format)` with the format parsed once per batch instead of once per row.
//!
//! DataFusion's `to_char` formats each value through Arrow's display formatter, which re-parses
//! the `strftime` format string for every row: most of a "visitors per day" dashboard query went
//! there. This wraps the built-in function and takes over only its most common case — a timestamp
//! column with a literal format — producing the same text; every other case (dates, times,
//! durations, per-row formats, formats chrono rejects) goes to the built-in unchanged.

use std::fmt::Write;
use std::str::FromStr;
use std::sync::Arc;

use chrono::format::{Item, StrftimeItems};
use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::datatypes::FieldRef;
use datafusion::arrow::datatypes::{
    ArrowTimestampType, DataType, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use datafusion::arrow::temporal_conversions::{as_datetime, as_datetime_with_timezone};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};

/// `to_char` (and its alias `date_format`), replacing the built-in of the same name.
pub fn to_char() -> ScalarUDF {
    ScalarUDF::new_from_impl(FastToChar { inner: datafusion::functions::datetime::to_char() })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct FastToChar {
    inner: Arc<ScalarUDF>,
}

impl ScalarUDFImpl for FastToChar {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if let [ColumnarValue::Array(values), ColumnarValue::Scalar(format)] = args.args.as_slice() {
            let format = match format {
                ScalarValue::Utf8(Some(f)) | ScalarValue::LargeUtf8(Some(f)) | ScalarValue::Utf8View(Some(f)) => {
                    Some(f.as_str())
                }
                _ => None,
            };
            if let Some(formatted) = format.and_then(|f| format_timestamps(values, f)) {
                return Ok(ColumnarValue::Array(formatted));
            }
        }
        self.inner.invoke_with_args(args)
    }
}

/// `values` formatted with `format`, or `None` where the built-in must decide (not a timestamp
/// array, a format chrono cannot parse, a time zone Arrow does not know, a value out of range).
fn format_timestamps(values: &ArrayRef, format: &str) -> Option<ArrayRef> {
    let DataType::Timestamp(unit, tz) = values.data_type() else { return None };
    // Without a zone the values are naive date-times, which Arrow formats without an offset (so
    // `%z` is an error, as it is for the built-in).
    let day_offset =
        date_only(&StrftimeItems::new(format).parse().ok()?).then(|| fixed_offset_seconds(tz.as_deref())).flatten();
    let tz = tz.as_deref().map(Tz::from_str).transpose().ok()?;
    let items = StrftimeItems::new(format).parse_to_owned().ok()?;
    match unit {
        TimeUnit::Second => format_as::<TimestampSecondType>(values, &items, tz, day_offset, 1),
        TimeUnit::Millisecond => format_as::<TimestampMillisecondType>(values, &items, tz, day_offset, 1_000),
        TimeUnit::Microsecond => format_as::<TimestampMicrosecondType>(values, &items, tz, day_offset, 1_000_000),
        TimeUnit::Nanosecond => format_as::<TimestampNanosecondType>(values, &items, tz, day_offset, 1_000_000_000),
    }
}

/// Whether the text depends on the calendar date alone (`%Y-%m-%d`, `%A %d %B`...), so one
/// formatting per day serves every timestamp of that day.
fn date_only(items: &[Item<'_>]) -> bool {
    use chrono::format::{Fixed, Numeric};
    items.iter().all(|item| match item {
        Item::Literal(_) | Item::OwnedLiteral(_) | Item::Space(_) | Item::OwnedSpace(_) => true,
        Item::Numeric(n, _) => matches!(
            n,
            Numeric::Year
                | Numeric::YearDiv100
                | Numeric::YearMod100
                | Numeric::IsoYear
                | Numeric::IsoYearDiv100
                | Numeric::IsoYearMod100
                | Numeric::Month
                | Numeric::Day
                | Numeric::WeekFromSun
                | Numeric::WeekFromMon
                | Numeric::IsoWeek
                | Numeric::NumDaysFromSun
                | Numeric::WeekdayFromMon
                | Numeric::Ordinal
        ),
        Item::Fixed(f) => {
            matches!(f, Fixed::ShortMonthName | Fixed::LongMonthName | Fixed::ShortWeekdayName | Fixed::LongWeekdayName)
        }
        Item::Error => false,
    })
}

/// The zone's offset from UTC in seconds when it is fixed (no zone, UTC, `±HH:MM`), so local days
/// start every 86,400 s; `None` for named zones, whose days shift with daylight saving.
fn fixed_offset_seconds(tz: Option<&str>) -> Option<i64> {
    let Some(tz) = tz else { return Some(0) };
    if matches!(tz, "UTC" | "utc" | "Z" | "z") {
        return Some(0);
    }
    let (sign, rest) = match tz.as_bytes().first()? {
        b'+' => (1, &tz[1..]),
        b'-' => (-1, &tz[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (hours, minutes): (i64, i64) = (digits[..2].parse().ok()?, digits[2..].parse().ok()?);
    Some(sign * (hours * 3600 + minutes * 60))
}

fn format_as<T: ArrowTimestampType>(
    values: &ArrayRef,
    items: &[Item<'static>],
    tz: Option<Tz>,
    day_offset: Option<i64>,
    per_second: i64,
) -> Option<ArrayRef> {
    let values = values.as_primitive::<T>();
    let mut out = StringBuilder::with_capacity(values.len(), values.len() * 16);
    let mut text = String::new();
    // Rows of a file are one day's, sorted by kind and session, so the days repeat in long runs.
    let mut last_day: Option<(i64, usize)> = None;
    let mut days: Vec<(i64, usize, usize)> = Vec::new();
    let mut day_texts = String::new();
    for i in 0..values.len() {
        if values.is_null(i) {
            out.append_null();
            continue;
        }
        let value = values.value(i);
        let day = day_offset.map(|offset| (value.div_euclid(per_second) + offset).div_euclid(86_400));
        if let Some(day) = day {
            let known = match last_day {
                Some((d, index)) if d == day => Some(index),
                _ => days.iter().position(|&(d, _, _)| d == day),
            };
            if let Some(index) = known {
                let (_, start, end) = days[index];
                out.append_value(&day_texts[start..end]);
                last_day = Some((day, index));
                continue;
            }
        }
        text.clear();
        match tz {
            Some(tz) => write!(text, "{}", as_datetime_with_timezone::<T>(value, tz)?.format_with_items(items.iter())),
            None => write!(text, "{}", as_datetime::<T>(value)?.format_with_items(items.iter())),
        }
        .ok()?;
        out.append_value(&text);
        if let Some(day) = day {
            // A batch spans few days; a pathological one would only make this lookup linear.
            if days.len() < 1024 {
                days.push((day, day_texts.len(), day_texts.len() + text.len()));
                day_texts.push_str(&text);
                last_day = Some((day, days.len() - 1));
            }
        }
    }
    Some(Arc::new(out.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::TimestampMillisecondArray;
    use datafusion::arrow::datatypes::Field;
    use datafusion::config::ConfigOptions;

    fn call(udf: &ScalarUDF, values: ArrayRef, format: &str) -> Result<ArrayRef> {
        let args = vec![ColumnarValue::Array(Arc::clone(&values)), ColumnarValue::Scalar(ScalarValue::from(format))];
        let arg_fields: Vec<FieldRef> = vec![
            Arc::new(Field::new("ts", values.data_type().clone(), true)),
            Arc::new(Field::new("f", DataType::Utf8, false)),
        ];
        let out = udf.invoke_with_args(ScalarFunctionArgs {
            args,
            arg_fields,
            number_rows: values.len(),
            return_field: Arc::new(Field::new("out", DataType::Utf8, true)),
            config_options: Arc::new(ConfigOptions::default()),
        })?;
        out.into_array(values.len())
    }

    #[test]
    fn formats_like_the_built_in() {
        let fast = to_char();
        let built_in = datafusion::functions::datetime::to_char();
        let ms = [0i64, 1_764_000_000_123, -86_400_001, 253_402_300_799_000];
        // Every hour over three days around a change of day: the per-day reuse must switch days
        // exactly at local midnight, for each zone.
        let hours = (0..72).map(|h| Some(1_764_000_000_123 + h * 3_600_000 - 7 * 86_400_000));
        let mut ok = 0;
        for tz in [None, Some("UTC"), Some("+05:30"), Some("-03:00"), Some("America/New_York")] {
            let all = [Some(ms[0]), None, Some(ms[1]), Some(ms[2]), Some(ms[3]), Some(ms[1])]
                .into_iter()
                .chain(hours.clone());
            let values: ArrayRef =
                Arc::new(TimestampMillisecondArray::from(all.collect::<Vec<_>>()).with_timezone_opt(tz));
            for format in ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S%.3f %z", "%A %d %B %Y, week %V", "%s", "literal", "%d/%m %H"]
            {
                let text =
                    |r: Result<ArrayRef>| r.map(|a| format!("{:?}", a.as_string::<i32>())).map_err(|e| e.to_string());
                let ours = text(call(&fast, Arc::clone(&values), format));
                let theirs = text(call(&built_in, Arc::clone(&values), format));
                assert_eq!(ours, theirs, "{tz:?} {format}");
                ok += usize::from(ours.is_ok());
            }
        }
        assert!(ok >= 24, "only {ok} cases formatted at all");
        // Formats chrono rejects are the built-in's to report.
        let values: ArrayRef = Arc::new(TimestampMillisecondArray::from(vec![0]));
        assert_eq!(
            call(&fast, Arc::clone(&values), "%Q").map_err(|e| e.to_string()),
            call(&built_in, values, "%Q").map_err(|e| e.to_string())
        );
    }
}
