//! The key store every backend implements.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::StoredKey;
use crate::store::StoreError;

/// Signing keys and the server secret, shared by every instance.
#[async_trait]
pub trait KeyStore: Send + Sync + 'static {
    /// Every stored key, oldest first.
    async fn list(&self) -> Result<Vec<StoredKey>, StoreError>;
    /// Adds a key and retires, in the same transaction, every unretired key of the same
    /// algorithm (`retire_others_at`), so that exactly one signs.
    async fn insert_active(&self, key: &StoredKey, retire_others_at: OffsetDateTime) -> Result<(), StoreError>;
    /// Schedules a rotation: stores `key` (whose `created_at` is when it starts signing) and
    /// retires the current key of its algorithm at that same instant, in one transaction and
    /// only if the current key was made at or before `due`. Returns whether it did: when
    /// several instances find the rotation due at once, exactly one schedules it.
    async fn schedule_rotation(&self, key: &StoredKey, due: OffsetDateTime) -> Result<bool, StoreError>;
    /// Adds a key only if no key of its algorithm exists yet (first start of several
    /// instances at once); returns whether it was added.
    async fn insert_if_absent(&self, key: &StoredKey) -> Result<bool, StoreError>;
    /// Replaces a key's stored material (sealing it under a newly configured master key);
    /// `false` when no such key.
    async fn replace_material(&self, kid: &str, material: &str) -> Result<bool, StoreError>;
    /// Deletes keys retired before `before`.
    async fn delete_retired_before(&self, before: OffsetDateTime) -> Result<u64, StoreError>;
}
