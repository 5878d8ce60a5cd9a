//! The wall clock, read in one place.
//!
//! Records keep Unix seconds (creation, expiry, authorization times) and the audit log
//! keeps Unix milliseconds. A clock before 1970 reads as zero rather than failing: a
//! timestamp is never worth refusing a request for.

use std::time::{SystemTime, UNIX_EPOCH};

/// The current time in Unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The current time in Unix seconds.
pub fn now_secs() -> i64 {
    now_ms() / 1000
}
