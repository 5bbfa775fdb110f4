//! Revocations reaching every instance and verifier: the sync that reads the log into the
//! denylist and the broadcast, announcements from other instances, and the feed's backlog.

use std::sync::atomic::{AtomicI64, Ordering};

use time::OffsetDateTime;
use tokio::sync::{Mutex as AsyncMutex, broadcast};

use super::{Denylist, Revocation};
use crate::error::AuthError;
use crate::ids::SessionId;
use crate::latchkey::Latchkey;
use crate::sessions::SessionKind;

/// What this instance knows of revocations: the denylist every check consults, how far it has
/// read the log, and the broadcast the feed's subscribers listen to.
pub(crate) struct LocalRevocations {
    pub(crate) denylist: Denylist,
    cursor: AtomicI64,
    // Why a lock: sync is the one publisher of the broadcast, and two syncs at once could
    // publish out of log order; subscribers resume by position and must never skip one.
    sync_lock: AsyncMutex<()>,
    broadcast: broadcast::Sender<Revocation>,
}

impl LocalRevocations {
    /// Nothing known yet: the first sync reads the log.
    pub(crate) fn new() -> Self {
        Self {
            denylist: Denylist::new(),
            cursor: AtomicI64::new(0),
            sync_lock: AsyncMutex::new(()),
            broadcast: broadcast::channel(1024).0,
        }
    }
}

impl Latchkey {
    /// Reads the revocation log past this instance's cursor: each entry goes into the
    /// denylist and, in log order, to the revocation broadcast.
    pub(crate) async fn sync_revocations(&self) -> Result<(), AuthError> {
        let _one_at_a_time = self.inner.revocations.sync_lock.lock().await;
        let now = self.now();
        let cursor = self.inner.revocations.cursor.load(Ordering::Acquire);
        let fresh = self.inner.stores.revocations.after(cursor, now).await?;
        let mut newest = cursor;
        for entry in fresh {
            self.inner.revocations.denylist.insert(entry.session_id, entry.until);
            newest = newest.max(entry.cursor);
            // No subscriber is not an error.
            let _ = self.inner.revocations.broadcast.send(entry);
        }
        if newest == 0 {
            newest = self.inner.stores.revocations.latest().await?;
        }
        self.inner.revocations.cursor.store(newest, Ordering::Release);
        Ok(())
    }

    /// Refuses a session revoked elsewhere at once (announced by another instance), ahead of
    /// the log sync that brings the same revocation in order.
    pub fn deny(&self, session: SessionId, until: OffsetDateTime) {
        self.inner.revocations.denylist.insert(session, until);
    }

    /// Revocations as this instance learns of them, in log order (for the revocation feed).
    /// Subscribe before reading the backlog with [`Latchkey::revocations_after`], then skip
    /// entries at or before the last position already sent.
    pub fn subscribe_revocations(&self) -> broadcast::Receiver<Revocation> {
        self.inner.revocations.broadcast.subscribe()
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
