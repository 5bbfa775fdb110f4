//! Shared test support. [`conformance`] is the one suite every store backend must pass;
//! [`client`] is the one API client of the API, cluster and clock tests, and [`fixtures`] what
//! they all agree on (the password, the origin, the fixed instant, cheap Argon2); [`postgres`]
//! makes scratch databases for tests against PostgreSQL; [`private_postgres`] runs a PostgreSQL
//! server and [`private_redis`] a Redis server a fault test may stop and start; [`redis`] gives
//! each test its own Redis key prefix; [`redis_cluster`] runs a three-master Redis Cluster.

pub mod client;
pub mod conformance;
pub mod fixtures;
pub mod postgres;
pub mod private_postgres;
pub mod private_redis;
pub mod redis;
pub mod redis_cluster;
