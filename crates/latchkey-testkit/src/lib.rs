//! Shared test support. [`conformance`] is the one suite every store backend must pass;
//! [`postgres`] makes scratch databases for tests against PostgreSQL.

pub mod conformance;
pub mod postgres;
