//! Shared test support. [`conformance`] is the one suite every store backend must pass.

pub mod conformance;
