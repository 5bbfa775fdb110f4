//! The client store every SQL backend implements (clients are few and change rarely; Redis
//! deployments keep them in the SQL store beside the accounts).

use async_trait::async_trait;

use super::{Client, ClientId};
use crate::secret::TokenDigest;
use crate::store::StoreError;

/// Registered clients.
#[async_trait]
pub trait ClientStore: Send + Sync + 'static {
    /// Stores a new client.
    async fn insert(&self, client: &Client) -> Result<(), StoreError>;
    /// A client by id.
    async fn get(&self, id: &ClientId) -> Result<Option<Client>, StoreError>;
    /// Every client, oldest first.
    async fn list(&self) -> Result<Vec<Client>, StoreError>;
    /// Removes a client; whether there was one.
    async fn remove(&self, id: &ClientId) -> Result<bool, StoreError>;
    /// Replaces a client's secret digest; whether there was such a client.
    async fn set_secret(&self, id: &ClientId, digest: &TokenDigest) -> Result<bool, StoreError>;
}
