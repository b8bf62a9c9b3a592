//! Identifiers as types: a project id, a UTC day, a partition, a data file id, a WAL segment id.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum IdError {
    #[error("project id must be 1-64 characters of a-z, 0-9, '-' or '_', got {0:?}")]
    InvalidProject(String),
    #[error("invalid day {0:?}: expected YYYY-MM-DD")]
    InvalidDay(String),
    #[error("invalid file id {0:?}")]
    InvalidFileId(String),
}

/// A project's id. Restricted to a path-safe alphabet because it becomes a Hive partition folder.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProjectId(String);

impl ProjectId {
    pub fn new(id: impl Into<String>) -> Result<Self, IdError> {
        let id = id.into();
        let valid = !id.is_empty()
            && id.len() <= 64
            && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if valid {
            Ok(Self(id))
        } else {
            Err(IdError::InvalidProject(id))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ProjectId {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<ProjectId> for String {
    fn from(value: ProjectId) -> Self {
        value.0
    }
}

impl fmt::Display for ProjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ProjectId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// A calendar day in UTC: the unit of partitioning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Day(NaiveDate);

impl Day {
    pub fn of_millis(epoch_ms: i64) -> Self {
        let dt = DateTime::<Utc>::from_timestamp_millis(epoch_ms).unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
        Self(dt.date_naive())
    }

    pub fn date(&self) -> NaiveDate {
        self.0
    }

    /// First millisecond of the day, inclusive.
    pub fn start_millis(&self) -> i64 {
        self.0.and_hms_opt(0, 0, 0).map(|d| d.and_utc().timestamp_millis()).unwrap_or(0)
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

impl FromStr for Day {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").map(Self).map_err(|_| IdError::InvalidDay(s.to_string()))
    }
}

/// The unit of buffering and of the storage layout: one project's events of one day.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PartitionKey {
    pub project: ProjectId,
    pub day: Day,
}

/// A data file's id: milliseconds since the epoch then 64 random bits, so ids sort by creation time
/// and two writers never collide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FileId(u128);

impl FileId {
    pub fn generate() -> Self {
        let ms = Utc::now().timestamp_millis().max(0) as u128;
        Self((ms << 64) | rand::random::<u64>() as u128)
    }
}

impl fmt::Display for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl FromStr for FileId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 32 {
            return Err(IdError::InvalidFileId(s.to_string()));
        }
        u128::from_str_radix(s, 16).map(Self).map_err(|_| IdError::InvalidFileId(s.to_string()))
    }
}

/// A WAL segment's sequence number; segments are written and replayed in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
pub struct SegmentId(pub u64);

impl SegmentId {
    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

impl fmt::Display for SegmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:020}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_ids_are_path_safe() {
        assert!(ProjectId::new("site-1_a").is_ok());
        for bad in ["", "Site", "a/b", "..", "a b", "é", &"x".repeat(65)] {
            assert!(ProjectId::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn day_round_trips_and_buckets_by_utc() {
        let day: Day = "2026-11-25".parse().unwrap();
        assert_eq!(day.to_string(), "2026-11-25");
        assert_eq!(Day::of_millis(day.start_millis()), day);
        assert_eq!(Day::of_millis(day.start_millis() - 1).to_string(), "2026-11-24");
    }

    #[test]
    fn file_ids_round_trip_and_sort_by_time() {
        let a = FileId::generate();
        assert_eq!(a.to_string().parse::<FileId>().unwrap(), a);
        assert!("zz".parse::<FileId>().is_err());
    }
}
