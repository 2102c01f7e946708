//! Test and demo support for the solvency enclave: a private PostgreSQL cluster started on a free
//! port with TLS only and SCRAM, certificates made at run time, synthetic balance fixtures, and
//! hostile network peers (a man in the middle, a connection that dies mid-stream), a local AWS
//! API server, a TLS front for plaintext test servers, and a private Ethereum node (anvil) with
//! Chainlink feeds and ERC-20 tokens deployed on it and a JSON-RPC endpoint that lies about it.
//!
//! Nothing here is used in production; it exists so tests and the demo never depend on a server
//! that happens to be running.

pub mod aws;
pub mod chain;
pub mod cluster;
pub mod fixture;
pub mod peers;
pub mod reserves;
pub mod tls_front;

pub use cluster::{ClusterError, ClusterOptions, PrivateCluster};
