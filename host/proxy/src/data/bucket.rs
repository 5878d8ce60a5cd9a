//! A token bucket: the rate limits of the `[limits]` table (ERR-13).
//!
//! A bucket holds up to one second's worth of requests and refills continuously at its
//! rate, so a client may burst up to the rate and then keeps to it. Taking from an empty
//! bucket says how long until the next token, which becomes the answer's `Retry-After`.
//! A rate of 0 means no limit: no bucket is made.

use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Bucket {
    per_second: f64,
    state: Mutex<State>,
}

struct State {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// A full bucket of `per_second` tokens; `None` when the rate is 0 (unlimited).
    pub fn new(per_second: u32, now: Instant) -> Option<Self> {
        (per_second > 0).then(|| Self {
            per_second: f64::from(per_second),
            state: Mutex::new(State {
                tokens: f64::from(per_second),
                at: now,
            }),
        })
    }

    /// Takes one token at `now`, or says how long until there is one.
    pub fn take(&self, now: Instant) -> Result<(), Duration> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let elapsed = now.saturating_duration_since(state.at).as_secs_f64();
        state.tokens = (state.tokens + elapsed * self.per_second).min(self.per_second);
        state.at = now.max(state.at);
        if state.tokens >= 1.0 {
            state.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - state.tokens) / self.per_second,
            ))
        }
    }
}

/// Whole seconds to wait, at least one: the `Retry-After` of a refusal.
pub fn retry_after(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_up_to_the_rate_then_keeps_to_it() {
        let start = Instant::now();
        let bucket = Bucket::new(10, start).unwrap();
        for _ in 0..10 {
            assert!(bucket.take(start).is_ok());
        }
        let wait = bucket.take(start).unwrap_err();
        assert!(
            wait <= Duration::from_millis(100) && wait > Duration::ZERO,
            "{wait:?}"
        );
        assert_eq!(retry_after(wait), 1);
        // A tenth of a second later one token is back, and only one.
        let later = start + Duration::from_millis(100);
        assert!(bucket.take(later).is_ok());
        assert!(bucket.take(later).is_err());
        // A long pause refills to the burst, never past it.
        let much_later = start + Duration::from_secs(60);
        for _ in 0..10 {
            assert!(bucket.take(much_later).is_ok());
        }
        assert!(bucket.take(much_later).is_err());
    }

    #[test]
    fn zero_means_unlimited_and_time_never_runs_backwards() {
        let now = Instant::now();
        assert!(Bucket::new(0, now).is_none());
        let bucket = Bucket::new(1, now + Duration::from_secs(5)).unwrap();
        assert!(bucket.take(now).is_ok());
        assert!(bucket.take(now).is_err());
        assert_eq!(retry_after(Duration::from_millis(2500)), 3);
    }
}
