//! Encoding query results in the formats `/api/v1/sql` offers.

use std::str::FromStr;

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::json::writer::{make_encoder, EncoderOptions};
use parquet::arrow::ArrowWriter;
use parquet::errors::ParquetError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum FormatError {
    #[error("unknown format {0:?}: use json, ndjson, csv, arrow or parquet")]
    Unknown(String),
    #[error("encoding results: {0}")]
    Arrow(#[from] ArrowError),
    #[error("encoding results as Parquet: {0}")]
    Parquet(#[from] ParquetError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResultFormat {
    #[default]
    Json,
    NdJson,
    Csv,
    Arrow,
    Parquet,
}

impl FromStr for ResultFormat {
    type Err = FormatError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Ok(Self::Json),
            "ndjson" | "jsonl" => Ok(Self::NdJson),
            "csv" => Ok(Self::Csv),
            "arrow" => Ok(Self::Arrow),
            "parquet" => Ok(Self::Parquet),
            other => Err(FormatError::Unknown(other.to_string())),
        }
    }
}

impl ResultFormat {
    pub fn content_type(&self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::NdJson => "application/x-ndjson",
            Self::Csv => "text/csv; charset=utf-8",
            Self::Arrow => "application/vnd.apache.arrow.stream",
            Self::Parquet => "application/vnd.apache.parquet",
        }
    }
}

pub fn encode_results(
    format: ResultFormat,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<Vec<u8>, FormatError> {
    let mut out = Vec::new();
    match format {
        ResultFormat::Json => {
            let mut writer = arrow::json::ArrayWriter::new(&mut out);
            for b in batches {
                writer.write(b)?;
            }
            writer.finish()?;
            drop(writer);
            // The writer emits nothing at all for zero rows; an empty result is still a JSON array.
            if out.is_empty() {
                out.extend_from_slice(b"[]");
            }
        }
        ResultFormat::NdJson => {
            let mut writer = arrow::json::LineDelimitedWriter::new(&mut out);
            for b in batches {
                writer.write(b)?;
            }
            writer.finish()?;
        }
        ResultFormat::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new().with_header(true).build(&mut out);
            let csv_schema = csv_schema(schema);
            if batches.is_empty() {
                writer.write(&RecordBatch::new_empty(csv_schema.clone()))?;
            }
            for b in batches {
                writer.write(&nested_as_json_text(b, &csv_schema)?)?;
            }
        }
        ResultFormat::Arrow => {
            let mut writer = arrow::ipc::writer::StreamWriter::try_new(&mut out, schema)?;
            for b in batches {
                writer.write(b)?;
            }
            writer.finish()?;
        }
        ResultFormat::Parquet => {
            let mut writer = ArrowWriter::try_new(&mut out, schema.clone(), None)?;
            for b in batches {
                writer.write(b)?;
            }
            writer.close()?;
        }
    }
    Ok(out)
}

/// The schema a CSV answer is written in: nested columns (the `pageviews` view's
/// `experiment_ids`, an `array_agg`) become text, since CSV has no nested values.
fn csv_schema(schema: &SchemaRef) -> SchemaRef {
    if !schema.fields().iter().any(|f| f.data_type().is_nested()) {
        return schema.clone();
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type().is_nested() {
            true => Field::new(f.name(), DataType::Utf8, true),
            false => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// Writes each nested value as its JSON text (`["a","b"]`, `{"k":1}`), the form the JSON formats
/// give it, so a CSV reader gets one unambiguous cell; a null stays an empty cell.
fn nested_as_json_text(batch: &RecordBatch, csv_schema: &SchemaRef) -> Result<RecordBatch, FormatError> {
    if Arc::ptr_eq(batch.schema_ref(), csv_schema) || !batch.columns().iter().any(|c| c.data_type().is_nested()) {
        return Ok(batch.clone());
    }
    let options = EncoderOptions::default().with_explicit_nulls(true);
    let columns = batch
        .columns()
        .iter()
        .zip(batch.schema().fields())
        .map(|(column, field)| {
            if !column.data_type().is_nested() {
                return Ok(column.clone());
            }
            let mut encoder = make_encoder(field, column.as_ref(), &options)?;
            let mut text = StringBuilder::with_capacity(column.len(), column.len() * 16);
            let mut value = Vec::new();
            for row in 0..column.len() {
                if column.is_null(row) {
                    text.append_null();
                    continue;
                }
                value.clear();
                encoder.encode(row, &mut value);
                text.append_value(String::from_utf8_lossy(&value));
            }
            Ok(Arc::new(text.finish()) as ArrayRef)
        })
        .collect::<Result<Vec<_>, ArrowError>>()?;
    Ok(RecordBatch::try_new(csv_schema.clone(), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn batch() -> (SchemaRef, RecordBatch) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("path", DataType::Utf8, true),
            Field::new("n", DataType::Int64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(StringArray::from(vec![Some("/a"), None])), Arc::new(Int64Array::from(vec![1, 2]))],
        )
        .unwrap();
        (schema, batch)
    }

    #[test]
    fn json_is_an_array_of_objects_even_when_empty() {
        let (schema, b) = batch();
        let json: serde_json::Value =
            serde_json::from_slice(&encode_results(ResultFormat::Json, &schema, &[b]).unwrap()).unwrap();
        assert_eq!(json, serde_json::json!([{"path": "/a", "n": 1}, {"n": 2}]));
        assert_eq!(encode_results(ResultFormat::Json, &schema, &[]).unwrap(), b"[]");
    }

    #[test]
    fn every_format_encodes() {
        let (schema, b) = batch();
        let csv =
            String::from_utf8(encode_results(ResultFormat::Csv, &schema, std::slice::from_ref(&b)).unwrap()).unwrap();
        assert!(csv.starts_with("path,n\n/a,1\n"));
        assert!(encode_results(ResultFormat::Parquet, &schema, std::slice::from_ref(&b)).unwrap().starts_with(b"PAR1"));
        assert!(!encode_results(ResultFormat::Arrow, &schema, std::slice::from_ref(&b)).unwrap().is_empty());
        assert_eq!(
            encode_results(ResultFormat::NdJson, &schema, &[b]).unwrap().iter().filter(|c| **c == b'\n').count(),
            2
        );
        assert!("xml".parse::<ResultFormat>().is_err());
    }

    #[test]
    fn csv_writes_nested_values_as_json_text() {
        use arrow::array::{ListBuilder, StringViewBuilder};
        let mut lists = ListBuilder::new(StringViewBuilder::new());
        lists.values().append_value("exp-1");
        lists.values().append_value("a \"quoted\", value");
        lists.append(true);
        lists.append(false);
        lists.append(true);
        let lists = lists.finish();
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("experiment_ids", lists.data_type().clone(), true),
        ]));
        let b = RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![1, 2, 3])), Arc::new(lists)])
            .unwrap();
        let csv = String::from_utf8(encode_results(ResultFormat::Csv, &schema, &[b]).unwrap()).unwrap();
        assert_eq!(csv.lines().count(), 4, "{csv}");
        assert_eq!(csv.lines().next(), Some("n,experiment_ids"));
        assert_eq!(csv.lines().nth(1), Some(r#"1,"[""exp-1"",""a \""quoted\"", value""]""#));
        assert_eq!(csv.lines().nth(2), Some("2,"));
        assert_eq!(csv.lines().nth(3), Some("3,[]"));
        assert!(encode_results(ResultFormat::Csv, &schema, &[]).unwrap().starts_with(b"n,experiment_ids\n"));
    }
}
