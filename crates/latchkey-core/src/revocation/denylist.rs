//! The local denylist of revoked sessions: every check on the hot path consults it, so a
//! revoked session's cached cookie checks and still-unexpired access tokens die at once on this
//! instance, without a store round trip.

use std::collections::HashMap;
use std::sync::RwLock;

use time::OffsetDateTime;

use crate::ids::SessionId;

/// Revoked session ids, each kept until nothing of the session can still be presented.
#[derive(Debug, Default)]
pub struct Denylist {
    // Why a RwLock over a HashMap: reads are on every request and take nanoseconds; writes
    // happen per revocation. Entries expire, so the map stays bounded by the revocations of
    // one access-token lifetime.
    entries: RwLock<HashMap<SessionId, OffsetDateTime>>,
}

impl Denylist {
    /// An empty denylist.
    pub fn new() -> Self {
        Self::default()
    }

    /// Denies `session` until `until`.
    pub fn insert(&self, session: SessionId, until: OffsetDateTime) {
        let mut entries = self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let slot = entries.entry(session).or_insert(until);
        *slot = (*slot).max(until);
    }

    /// Whether `session` is denied at `now`.
    pub fn denies(&self, session: SessionId, now: OffsetDateTime) -> bool {
        let entries = self.entries.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.get(&session).is_some_and(|until| *until > now)
    }

    /// Forgets entries that can no longer matter.
    pub fn prune(&self, now: OffsetDateTime) {
        let mut entries = self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.retain(|_, until| *until > now);
    }

    /// Number of entries held.
    pub fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(|poisoned| poisoned.into_inner()).len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    #[test]
    fn an_entry_denies_until_its_deadline_then_is_pruned() {
        let now = OffsetDateTime::now_utc();
        let list = Denylist::new();
        let sid = SessionId::generate();
        list.insert(sid, now + Duration::seconds(10));
        assert!(list.denies(sid, now));
        assert!(!list.denies(SessionId::generate(), now));
        assert!(!list.denies(sid, now + Duration::seconds(10)));
        list.prune(now + Duration::seconds(11));
        assert!(list.is_empty());
    }

    #[test]
    fn a_later_deadline_is_never_shortened() {
        let now = OffsetDateTime::now_utc();
        let list = Denylist::new();
        let sid = SessionId::generate();
        list.insert(sid, now + Duration::seconds(60));
        list.insert(sid, now + Duration::seconds(5));
        assert!(list.denies(sid, now + Duration::seconds(30)));
    }
}
