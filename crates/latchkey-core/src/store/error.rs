//! The one error of every store trait: an infrastructure failure, never an authentication
//! decision. Its own file, so that the concepts owning a store trait (the throttle's, say) and
//! the bundle of stores in the parent module need not import each other.

/// An infrastructure failure of a store. Never an authentication decision.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or did not answer.
    #[error("the store is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A row the store wrote could not be read back (corruption or a schema mismatch).
    #[error("the store holds data latchkey cannot read: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Wraps any backend error as unavailability.
    pub fn unavailable(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Unavailable(Box::new(err))
    }
}
