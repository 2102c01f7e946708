//! The verifier side of the solvency enclave, usable by anyone: the liabilities bundle format,
//! the native Poseidon commitment (leaves, tree, running-sum chain) and batched Groth16
//! verification over BLS12-381, per-user inclusion proofs, and AWS Nitro attestation documents
//! ([`nitro`]) verified against a pinned root at a time the caller supplies.
//!
//! It does no I/O beyond what its callers hand it, uses no system cryptography and builds for
//! wasm32. The commitment is specified in `docs/commitment-spec.md`.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let bytes = std::fs::read("bundle.cbor")?;
//! let bundle = attestation::bundle::Bundle::decode(&bytes)?;
//! let verified = attestation::liabilities::verify(bundle, None)?;
//! println!("{:?}", verified.bundle().totals);
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod amount;
pub mod attested;
pub mod bundle;
mod cbor;
pub mod commitment;
pub mod error;
pub mod fuzzing;
pub mod groth16;
pub mod inclusion;
pub mod liabilities;
pub mod log;
pub mod manifest;
pub mod nitro;
pub mod opening;
pub mod policy;
pub mod poseidon;
pub mod reserves;
mod solvency;
pub mod tree;
