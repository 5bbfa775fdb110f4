//! latchkey's SQL stores: the embedded SQLite default (one file in the data directory) and
//! PostgreSQL for scale-out, one implementation over both, with embedded migrations applied at
//! start.

mod store;

pub use store::{Backend, ChangeListener, SqlError, SqlStore};
