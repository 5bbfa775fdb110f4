//! The counters in this process's memory.

use std::time::Duration as StdDuration;

use async_trait::async_trait;
use moka::Expiry;
use moka::sync::Cache;
use time::{Duration, OffsetDateTime};

use super::{Failures, ThrottleKey, ThrottleStore};
use crate::store::error::StoreError;

/// Counters in this process's memory: the throttle of a single instance, or of instances that
/// share no Redis (each then counts on its own). Bounded: a flood of made-up names evicts the
/// least-used counters rather than growing without limit.
pub struct LocalThrottle {
    counters: Cache<ThrottleKey, Counter>,
    // Attempts in flight per key and when the latest began; an entry exists only while one is.
    in_flight: std::sync::Mutex<std::collections::HashMap<ThrottleKey, (u32, std::time::Instant)>>,
}

#[derive(Clone, Copy)]
struct Counter {
    failures: Failures,
    forget_after: StdDuration,
}

struct ForgetAfterLatest;

impl Expiry<ThrottleKey, Counter> for ForgetAfterLatest {
    fn expire_after_create(&self, _: &ThrottleKey, counter: &Counter, _: std::time::Instant) -> Option<StdDuration> {
        Some(counter.forget_after)
    }

    fn expire_after_update(
        &self,
        _: &ThrottleKey,
        counter: &Counter,
        _: std::time::Instant,
        _: Option<StdDuration>,
    ) -> Option<StdDuration> {
        Some(counter.forget_after)
    }
}

impl LocalThrottle {
    /// Most counters held at once.
    pub const CAPACITY: u64 = 200_000;

    /// An empty set of counters.
    pub fn new() -> Self {
        Self {
            counters: Cache::builder().max_capacity(Self::CAPACITY).expire_after(ForgetAfterLatest).build(),
            in_flight: std::sync::Mutex::default(),
        }
    }
}

impl Default for LocalThrottle {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl ThrottleStore for LocalThrottle {
    async fn failures(&self, key: &ThrottleKey) -> Result<Option<Failures>, StoreError> {
        Ok(self.counters.get(key).map(|counter| counter.failures))
    }

    async fn record_failure(
        &self,
        key: &ThrottleKey,
        at: OffsetDateTime,
        forget_after: Duration,
    ) -> Result<Failures, StoreError> {
        let forget_after = forget_after.unsigned_abs();
        // One atomic read-modify-write per key, so concurrent failures are all counted.
        let entry = self.counters.entry(key.clone()).and_upsert_with(|current| {
            let count = current.map_or(0, |entry| entry.into_value().failures.count);
            Counter { failures: Failures { count: count.saturating_add(1), last_at: at }, forget_after }
        });
        Ok(entry.into_value().failures)
    }

    async fn clear(&self, key: &ThrottleKey) -> Result<(), StoreError> {
        self.counters.invalidate(key);
        Ok(())
    }

    async fn begin_attempt(&self, key: &ThrottleKey, lapse: Duration) -> Result<u32, StoreError> {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = std::time::Instant::now();
        let entry = in_flight.entry(key.clone()).or_insert((0, now));
        if now.duration_since(entry.1) > lapse.unsigned_abs() {
            entry.0 = 0;
        }
        *entry = (entry.0.saturating_add(1), now);
        Ok(entry.0)
    }

    async fn end_attempt(&self, key: &ThrottleKey) -> Result<(), StoreError> {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(entry) = in_flight.get_mut(key) {
            entry.0 = entry.0.saturating_sub(1);
            if entry.0 == 0 {
                in_flight.remove(key);
            }
        }
        Ok(())
    }
}
