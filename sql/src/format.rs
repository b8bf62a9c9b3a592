//! Encoding query results in the formats `/api/v1/sql` offers.

use std::str::FromStr;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
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
            if batches.is_empty() {
                writer.write(&RecordBatch::new_empty(schema.clone()))?;
            }
            for b in batches {
                writer.write(b)?;
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
}
