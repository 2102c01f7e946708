//! Test and demo support for the solvency enclave: a private PostgreSQL cluster started on a free
//! port with TLS only and SCRAM, certificates made at run time, synthetic balance fixtures, and
//! hostile network peers (a man in the middle, a connection that dies mid-stream).
//!
//! Nothing here is used in production; it exists so tests and the demo never depend on a server
//! that happens to be running.

pub mod cluster;
pub mod fixture;
pub mod peers;

pub use cluster::{ClusterError, ClusterOptions, PrivateCluster};
