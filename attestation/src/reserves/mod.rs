//! The asset side: reserves read from chain state that follows from a block header by
//! Merkle-Patricia proofs, Chainlink Proof of Reserve feeds and owned addresses' balances read by
//! running the contracts' code in a local EVM over that state, and the per-asset solvency verdict.
//! The enclave gathers the evidence ([`evidence`]) and fills in the statement ([`statement`]) with
//! [`evaluate`]; the verifier runs [`evaluate`] again over the bundle's evidence. `docs/reserves.md`
//! specifies both.

pub mod call;
mod evaluate;
pub mod evidence;
pub mod ownership;
pub mod report;
pub mod state;
pub mod statement;

use alloy_primitives::{Address, B256, U256};

pub use evaluate::{convert, evaluate};

/// The deepest `latest-N` block rule accepted: an older block may show funds since moved.
pub const MAX_CONFIRMATIONS: u64 = 1_000;

/// Decimals of every EVM chain's native coin (wei); a native source is always read in them.
pub const NATIVE_DECIMALS: u32 = 18;

/// ERC-20 contracts that are the native coin under another name, by chain id: counting one of
/// them and the same addresses' native balances would count the same coins twice, so they are
/// refused as token sources.
pub const NATIVE_ALIASES: &[(u64, Address)] = &[
    // Polygon PoS: the POL (formerly MATIC) token contract.
    (137, alloy_primitives::address!("0x0000000000000000000000000000000000001010")),
    // Celo: GoldToken, CELO's ERC-20 interface.
    (42220, alloy_primitives::address!("0x471EcE3750Da237f93B8E339c536989b8978a438")),
    // zkSync Era: L2BaseToken, ETH's.
    (324, alloy_primitives::address!("0x000000000000000000000000000000000000800A")),
    // Metis Andromeda: METIS's.
    (1088, alloy_primitives::address!("0xDeadDeAddeAddEAddeadDEaDDEAdDeaDDeAD0000")),
];

/// Whether `min_agreeing` of `endpoints` is a strict majority (and at most all of them): then the
/// endpoints that did not agree can never form a quorum of their own on another block.
pub fn is_majority(min_agreeing: u32, endpoints: usize) -> bool {
    let k = min_agreeing as usize;
    k <= endpoints && k.saturating_mul(2) > endpoints
}

/// What a call needed that the evidence does not prove.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Missing {
    /// An account.
    Account(Address),
    /// A storage slot of an account.
    Slot(Address, U256),
    /// Code by its hash.
    Code(B256),
    /// A block hash (`BLOCKHASH`), which no evidence proves.
    BlockHash(u64),
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Account(address) => write!(f, "account {address}"),
            Self::Slot(address, slot) => write!(f, "slot {slot:#x} of {address}"),
            Self::Code(hash) => write!(f, "the code with hash {hash}"),
            Self::BlockHash(number) => write!(f, "the hash of block {number} (BLOCKHASH)"),
        }
    }
}

/// Why reserves could not be derived, naming the chain, source and field at fault.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReservesError {
    /// A chain's header or proofs do not hold.
    #[error("chain {chain}: {detail}")]
    Evidence {
        /// The chain's configured name.
        chain: String,
        /// What is wrong.
        detail: String,
    },
    /// A read needs state the evidence does not prove.
    #[error("chain {chain}: {missing} is not proven")]
    Unproven {
        /// The chain's configured name.
        chain: String,
        /// What is missing.
        missing: Missing,
    },
    /// A contract call failed.
    #[error("chain {chain}: calling {to}: {detail}")]
    Call {
        /// The chain's configured name.
        chain: String,
        /// The contract called.
        to: Address,
        /// How it failed.
        detail: String,
    },
    /// An owned address's signature is missing or wrong.
    #[error("chain {chain}: address {address}: ownership: {detail}")]
    Ownership {
        /// The chain's configured name.
        chain: String,
        /// The address.
        address: Address,
        /// What is wrong.
        detail: String,
    },
    /// A source's figure breaks a rule (stale feed, wrong decimals, …).
    #[error("{origin}: {field}: {detail}")]
    Source {
        /// The source (`chainlink feed 0x… on ethereum`).
        origin: String,
        /// The field at fault.
        field: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// The statement itself is inconsistent (unknown chain, an asset without sources, …).
    #[error("{0}")]
    Statement(String),
}
