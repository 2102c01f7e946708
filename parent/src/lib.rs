//! The parent: the program on the EC2 host beside the enclave. It starts rounds (on a schedule,
//! by an operator, or on an auditor's challenge), relays the enclave's database connection
//! through an allowlisting proxy without being able to read it, stores each round's bundle
//! durably ([`store`]) and serves bundles and per-user inclusion proofs over HTTP ([`http`]).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod config;
pub mod http;
pub mod measure;
pub mod metrics;
pub mod rounds;
pub mod server;
pub mod store;
