//! Revocations reaching every instance and verifier: the sync that reads the log into the
//! denylist and the broadcast, announcements from other instances, and the feed's backlog.

use std::sync::atomic::Ordering;

use time::OffsetDateTime;
use tokio::sync::broadcast;

use super::Revocation;
use crate::error::AuthError;
use crate::ids::SessionId;
use crate::latchkey::Latchkey;
use crate::sessions::SessionKind;

impl Latchkey {
    /// Reads the revocation log past this instance's cursor: each entry goes into the
    /// denylist and, in log order, to the revocation broadcast.
    pub(crate) async fn sync_revocations(&self) -> Result<(), AuthError> {
        let _one_at_a_time = self.inner.sync_lock.lock().await;
        let now = self.now();
        let cursor = self.inner.revocation_cursor.load(Ordering::Acquire);
        let fresh = self.inner.stores.revocations.after(cursor, now).await?;
        let mut newest = cursor;
        for entry in fresh {
            self.inner.denylist.insert(entry.session_id, entry.until);
            newest = newest.max(entry.cursor);
            // No subscriber is not an error.
            let _ = self.inner.revocations.send(entry);
        }
        if newest == 0 {
            newest = self.inner.stores.revocations.latest().await?;
        }
        self.inner.revocation_cursor.store(newest, Ordering::Release);
        Ok(())
    }

    /// Refuses a session revoked elsewhere at once (announced by another instance), ahead of
    /// the log sync that brings the same revocation in order.
    pub fn deny(&self, session: SessionId, until: OffsetDateTime) {
        self.inner.denylist.insert(session, until);
    }

    /// Revocations as this instance learns of them, in log order (for the revocation feed).
    /// Subscribe before reading the backlog with [`Latchkey::revocations_after`], then skip
    /// entries at or before the last position already sent.
    pub fn subscribe_revocations(&self) -> broadcast::Receiver<Revocation> {
        self.inner.revocations.subscribe()
    }

    /// Revocations of token sessions after `cursor` whose access tokens may still be
    /// unexpired, and the cursor to resume from.
    pub async fn revocations_after(&self, cursor: i64) -> Result<(Vec<Revocation>, i64), AuthError> {
        let log = &self.inner.stores.revocations;
        // Read the log's end first: entries committed after it are returned next time.
        let latest = log.latest().await?;
        let entries = log.after(cursor, self.now()).await?;
        let resume = entries.iter().map(|entry| entry.cursor).max().unwrap_or(0).max(latest).max(cursor);
        Ok((entries.into_iter().filter(|entry| entry.kind == SessionKind::Token).collect(), resume))
    }
}
