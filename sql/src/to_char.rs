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
    let tz = tz.as_deref().map(Tz::from_str).transpose().ok()?;
    let items = StrftimeItems::new(format).parse_to_owned().ok()?;
    match unit {
        TimeUnit::Second => format_as::<TimestampSecondType>(values, &items, tz),
        TimeUnit::Millisecond => format_as::<TimestampMillisecondType>(values, &items, tz),
        TimeUnit::Microsecond => format_as::<TimestampMicrosecondType>(values, &items, tz),
        TimeUnit::Nanosecond => format_as::<TimestampNanosecondType>(values, &items, tz),
    }
}

fn format_as<T: ArrowTimestampType>(values: &ArrayRef, items: &[Item<'static>], tz: Option<Tz>) -> Option<ArrayRef> {
    let values = values.as_primitive::<T>();
    let mut out = StringBuilder::with_capacity(values.len(), values.len() * 16);
    for i in 0..values.len() {
        if values.is_null(i) {
            out.append_null();
            continue;
        }
        let value = values.value(i);
        match tz {
            Some(tz) => write!(out, "{}", as_datetime_with_timezone::<T>(value, tz)?.format_with_items(items.iter())),
            None => write!(out, "{}", as_datetime::<T>(value)?.format_with_items(items.iter())),
        }
        .ok()?;
        out.append_value("");
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
        let mut ok = 0;
        for tz in [None, Some("UTC"), Some("+05:30"), Some("America/New_York")] {
            let values: ArrayRef = Arc::new(
                TimestampMillisecondArray::from(vec![Some(ms[0]), None, Some(ms[1]), Some(ms[2]), Some(ms[3])])
                    .with_timezone_opt(tz),
            );
            for format in ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S%.3f %z", "%A %d %B %Y, week %V", "%s", "literal"] {
                let text =
                    |r: Result<ArrayRef>| r.map(|a| format!("{:?}", a.as_string::<i32>())).map_err(|e| e.to_string());
                let ours = text(call(&fast, Arc::clone(&values), format));
                let theirs = text(call(&built_in, Arc::clone(&values), format));
                assert_eq!(ours, theirs, "{tz:?} {format}");
                ok += usize::from(ours.is_ok());
            }
        }
        assert!(ok >= 17, "only {ok} cases formatted at all");
        // Formats chrono rejects are the built-in's to report.
        let values: ArrayRef = Arc::new(TimestampMillisecondArray::from(vec![0]));
        assert_eq!(
            call(&fast, Arc::clone(&values), "%Q").map_err(|e| e.to_string()),
            call(&built_in, values, "%Q").map_err(|e| e.to_string())
        );
    }
}
