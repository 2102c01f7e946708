//! The program inside the enclave: it turns a ledger (rows of account, asset, amount) into a
//! liabilities bundle — the salted Poseidon commitment, one Groth16 proof per batch over
//! BLS12-381, and per-user inclusion proofs — verifiable with the `attestation` crate.
//!
//! The batch circuit is written once ([`circuit::batch`]) against a backend trait: setup records
//! its constraints, proving computes its witness natively and reuses the setup's matrices.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bench;
pub mod circuit;
pub mod csv_input;
pub mod error;
pub mod keys;
pub mod ledger;
pub mod output;
pub mod prover;
pub mod round;
