//! Where Parquet partitions live: a local folder or an S3-compatible bucket, behind one
//! `ObjectStore` so every other module is the same for both.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::prefix::PrefixStore;
use object_store::ObjectStore;
use object_store::{BackoffConfig, ClientOptions, RetryConfig};
use thiserror::Error;
use url::Url;

#[derive(Debug, Error)]
pub enum StorageError {
    #[error("storage location {0:?} is not a URL like file:///path or s3://bucket/prefix")]
    BadUrl(String),
    #[error("unsupported storage scheme {0:?}: use file:// or s3://")]
    UnsupportedScheme(String),
    #[error("creating storage folder {path}: {source}")]
    CreateDir { path: PathBuf, source: std::io::Error },
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
}

/// How long one S3 connection attempt may take. A bucket that is down refuses at once; one whose
/// host is unreachable fails after this.
pub const S3_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one S3 request may take, body included. Flushed files are tens of MiB at most, so 30 s
/// allows about 1 MiB/s; a slower link needs `AWS_TIMEOUT` (e.g. `120s`).
pub const S3_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Retries of one request after a connection error, a timeout or a 5xx, within
/// [`S3_RETRY_BUDGET`]. The object_store default (10 retries within 3 minutes) would hold a query
/// for minutes against a dead bucket; a flush retries on its own, with its own back-off.
pub const S3_MAX_RETRIES: usize = 3;
pub const S3_RETRY_BUDGET: Duration = Duration::from_secs(10);

/// A parsed storage location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageLocation {
    Local(PathBuf),
    S3 { bucket: String, prefix: String },
}

impl StorageLocation {
    pub fn parse(s: &str) -> Result<Self, StorageError> {
        let url = Url::parse(s).map_err(|_| StorageError::BadUrl(s.to_string()))?;
        match url.scheme() {
            "file" => url.to_file_path().map(Self::Local).map_err(|_| StorageError::BadUrl(s.to_string())),
            "s3" => {
                let bucket =
                    url.host_str().filter(|b| !b.is_empty()).ok_or_else(|| StorageError::BadUrl(s.to_string()))?;
                Ok(Self::S3 { bucket: bucket.to_string(), prefix: url.path().trim_matches('/').to_string() })
            }
            other => Err(StorageError::UnsupportedScheme(other.to_string())),
        }
    }

    /// Opens the store. S3 credentials, region and endpoint come from the standard `AWS_*` variables,
    /// which may also set `AWS_TIMEOUT` and `AWS_CONNECT_TIMEOUT` over the defaults above.
    pub fn open(&self) -> Result<Arc<dyn ObjectStore>, StorageError> {
        match self {
            Self::Local(path) => {
                std::fs::create_dir_all(path)
                    .map_err(|source| StorageError::CreateDir { path: path.clone(), source })?;
                Ok(Arc::new(LocalFileSystem::new_with_prefix(path)?))
            }
            Self::S3 { bucket, prefix } => {
                let s3 = s3_builder().with_bucket_name(bucket).build()?;
                if prefix.is_empty() {
                    Ok(Arc::new(s3))
                } else {
                    Ok(Arc::new(PrefixStore::new(s3, prefix.as_str())))
                }
            }
        }
    }
}

/// `AmazonS3Builder::from_env`, on top of Footfall's timeouts and retries (the environment wins).
fn s3_builder() -> AmazonS3Builder {
    let client = ClientOptions::new().with_connect_timeout(S3_CONNECT_TIMEOUT).with_timeout(S3_REQUEST_TIMEOUT);
    let retry = RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
        },
        max_retries: S3_MAX_RETRIES,
        retry_timeout: S3_RETRY_BUDGET,
    };
    let mut builder = AmazonS3Builder::new().with_client_options(client).with_retry(retry);
    for (key, value) in std::env::vars_os() {
        if let (Some(key), Some(value)) = (key.to_str(), value.to_str()) {
            if key.starts_with("AWS_") {
                if let Ok(config_key) = key.to_ascii_lowercase().parse() {
                    builder = builder.with_config(config_key, value);
                }
            }
        }
    }
    builder
}

impl std::fmt::Display for StorageLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local(p) => write!(f, "file://{}", p.display()),
            Self::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_locations() {
        assert_eq!(StorageLocation::parse("file:///tmp/x").unwrap(), StorageLocation::Local("/tmp/x".into()));
        assert_eq!(
            StorageLocation::parse("s3://bucket/a/b/").unwrap(),
            StorageLocation::S3 { bucket: "bucket".into(), prefix: "a/b".into() }
        );
        assert!(matches!(StorageLocation::parse("gs://b"), Err(StorageError::UnsupportedScheme(_))));
        assert!(StorageLocation::parse("nope").is_err());
    }
}
