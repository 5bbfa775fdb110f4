//! latchkey's SQL stores. SQLite is the embedded, zero-configuration default: one file in the
//! data directory, migrations embedded in the binary and applied at start.

mod sqlite;

pub use sqlite::{SqliteError, SqliteStore};
