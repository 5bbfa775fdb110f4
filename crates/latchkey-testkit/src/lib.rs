//! Shared test support. [`conformance`] is the one suite every store backend must pass;
//! [`postgres`] makes scratch databases for tests against PostgreSQL; [`private_postgres`] runs a
//! PostgreSQL server and [`private_redis`] a Redis server a fault test may stop and start; [`redis`] gives each test its own Redis key prefix;
//! [`redis_cluster`] runs a three-master Redis Cluster.

pub mod conformance;
pub mod postgres;
pub mod private_postgres;
pub mod private_redis;
pub mod redis;
pub mod redis_cluster;
