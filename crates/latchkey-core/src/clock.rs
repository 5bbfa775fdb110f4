//! Time as an input, so expiry, rotation and grace windows are tested without sleeping.

use std::sync::Mutex;

use time::{Duration, OffsetDateTime};

/// Where the domain asks for the current time.
pub trait Clock: Send + Sync + 'static {
    /// The current instant, in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that only moves when told to; for tests of expiry and grace windows.
#[derive(Debug)]
pub struct ManualClock {
    // A Mutex rather than an atomic because OffsetDateTime is not a single word; contention is
    // irrelevant in tests.
    now: Mutex<OffsetDateTime>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: OffsetDateTime) -> Self {
        Self { now: Mutex::new(start) }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.now.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
