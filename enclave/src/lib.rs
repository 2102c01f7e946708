//! The program inside the enclave: it reads the ledger itself from the exchange's database
//! ([`db`]: pinned TLS, SCRAM with channel binding, one recorded snapshot) and turns its rows
//! (account, asset, amount) into a liabilities bundle — the salted Poseidon commitment, one
//! Groth16 proof per batch over BLS12-381, and per-user inclusion proofs — verifiable with the
//! `attestation` crate.
//!
//! The batch circuit is written once ([`circuit::batch`]) against a backend trait: setup records
//! its constraints, proving computes its witness natively and reuses the setup's matrices.
//!
//! Every bad input row is reported, with its row number, account and field, before anything is
//! proven:
//!
//! ```
//! use enclave::ledger::{LedgerBuilder, LedgerError};
//!
//! let mut rows = LedgerBuilder::new(vec!["BTC".into(), "ETH".into()], 100).unwrap();
//! rows.push(2, Some("alice"), Some("BTC"), Some("5"));
//! rows.push(3, Some("bob"), Some("BTC"), Some("-1"));
//! rows.push(4, Some("carol"), Some("DOGE"), Some("1.5"));
//! let Err(LedgerError::BadRows { errors, omitted: 0 }) = rows.finish() else { unreachable!() };
//! let report: Vec<String> = errors.iter().map(ToString::to_string).collect();
//! assert_eq!(report, [
//!     r#"row 3 (account "bob"): amount: negative amount "-1""#,
//!     r#"row 4 (account "carol"): asset: unknown asset "DOGE""#,
//!     r#"row 4 (account "carol"): amount: amount "1.5" is not an integer number of base units"#,
//! ]);
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod aws;
pub mod bench;
pub mod circuit;
pub mod csv_input;
pub mod db;
pub mod error;
pub mod keys;
pub mod ledger;
pub mod net;
pub mod nsm;
pub mod output;
pub mod prover;
pub mod reserves;
pub mod round;
pub mod service;
pub mod tls;
