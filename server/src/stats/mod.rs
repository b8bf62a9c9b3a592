//! Pieces of the Stats API that other parts already need. The API itself comes with its own
//! issue; shared views (share links) will answer through it with `privacy_threshold` applied.

pub mod privacy_threshold;
