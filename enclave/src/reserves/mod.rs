//! The asset side of a round, read by the enclave itself: Chainlink Proof of Reserve feeds and
//! owned addresses' balances on Ethereum-compatible chains, from state proven against a block
//! that several JSON-RPC endpoints agree on. `docs/reserves.md` is the operator's guide.

pub mod config;
pub mod read;
pub mod rpc;

pub use config::{ReservesConfig, ReservesConfigError};
pub use read::{read, Liability, ReadError, Reserves};
