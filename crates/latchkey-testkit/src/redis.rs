//! Scratch Redis key prefixes for tests: each test's keys live under their own prefix on the
//! server `scripts/services` starts, deleted when the guard goes.

use std::sync::atomic::{AtomicU32, Ordering};

/// The Redis tests use: `LATCHKEY_TEST_REDIS_URL`, by default the local one.
pub fn url() -> String {
    std::env::var("LATCHKEY_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

/// A key prefix unique to one test; its keys are deleted when this is dropped.
#[derive(Debug)]
pub struct ScratchPrefix {
    prefix: String,
}

impl ScratchPrefix {
    /// A prefix unique to this process and call.
    pub fn new() -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        Self { prefix: format!("latchkey-test-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)) }
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

impl Default for ScratchPrefix {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for ScratchPrefix {
    fn drop(&mut self) {
        let pattern = format!("{}:*", self.prefix);
        // Drop may run inside a runtime; a blocking connection on a thread of its own is simplest.
        let _ = std::thread::spawn(move || -> redis::RedisResult<()> {
            let mut connection = redis::Client::open(url())?.get_connection()?;
            let keys: Vec<String> = redis::cmd("KEYS").arg(pattern).query(&mut connection)?;
            if !keys.is_empty() {
                redis::cmd("DEL").arg(keys).query::<()>(&mut connection)?;
            }
            Ok(())
        })
        .join();
    }
}
