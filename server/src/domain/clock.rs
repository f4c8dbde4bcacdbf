//! The one clock every rule reads (expiry, trial end, token times). Real time plus an offset
//! that test mode and tests can move; clones share the offset.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// A movable clock. `Clock::default()` is real time.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_ns: Arc<AtomicI64>,
}

impl Clock {
    /// The current instant.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + Duration::nanoseconds(self.offset_ns.load(Ordering::Relaxed))
    }

    /// The current instant as the naive UTC value stored in the database, to the microsecond.
    pub fn now_naive(&self) -> NaiveDateTime {
        let n = self.now();
        DateTime::from_timestamp_micros(n.timestamp_micros())
            .unwrap_or(n)
            .naive_utc()
    }

    /// Makes `now()` read `t` from this moment on (time keeps flowing from there).
    pub fn set(&self, t: DateTime<Utc>) {
        let off = (t - Utc::now()).num_nanoseconds().unwrap_or(i64::MAX);
        self.offset_ns.store(off, Ordering::Relaxed);
    }

    /// Moves the clock forward (or back, with a negative value).
    pub fn advance(&self, seconds: i64) {
        self.offset_ns
            .fetch_add(seconds.saturating_mul(1_000_000_000), Ordering::Relaxed);
    }

    /// Back to real time.
    pub fn reset(&self) {
        self.offset_ns.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_offset() {
        let c = Clock::default();
        let d = c.clone();
        let before = c.now();
        d.advance(86_400);
        assert!(c.now() - before >= Duration::seconds(86_400));
        c.set("2030-01-01T00:00:00Z".parse().unwrap());
        assert_eq!(d.now().date_naive().to_string(), "2030-01-01");
        c.reset();
        assert!((c.now() - Utc::now()).num_seconds().abs() < 5);
    }
}
