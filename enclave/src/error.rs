//! Errors of proving: what the caller asked for does not fit the keys, or a witness does not
//! satisfy the circuit (which, for witnesses built by this crate, is a bug to report).

/// Why a batch or round could not be proven.
#[allow(missing_docs)] // fields are named for what they hold
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProveError {
    /// The ledger's asset count differs from the keys'.
    #[error("the keys were set up for {keys} assets, the ledger has {ledger}")]
    AssetCount { keys: usize, ledger: usize },
    /// A circuit shape outside the supported range.
    #[error("batch size {batch_size} with {assets} assets: the batch size must be 1 to {max_batch} and assets 1 to {max_assets}")]
    Shape { batch_size: usize, assets: usize, max_batch: usize, max_assets: usize },
    /// A batch assignment has the wrong number of slots or balances.
    #[error("batch assignment does not match the keys' shape (batch size {batch_size}, {assets} assets)")]
    AssignmentShape { batch_size: usize, assets: usize },
    /// The ledger has no accounts.
    #[error("the ledger has no accounts")]
    EmptyLedger,
    /// The witness violates a constraint: a bad witness, or a bug.
    #[error("batch {batch}: constraint {constraint} ({label}) is not satisfied")]
    Unsatisfied { batch: usize, constraint: usize, label: &'static str },
    /// The witness run produced a different number of constraints than setup: a bug.
    #[error("witness generation produced {actual} constraints, setup had {expected}; this is a bug")]
    ConstraintCount { expected: usize, actual: usize },
    /// arkworks refused (setup or proving).
    #[error("Groth16: {0}")]
    Groth16(String),
    /// The solvency opening cannot be proven: no opening keys, or a hidden total above its bound.
    #[error("the solvency opening: {0}")]
    Opening(String),
}

/// Why a proving-keys file could not be read or written.
#[allow(missing_docs)] // fields are named for what they hold
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file does not start with the keys-file magic.
    #[error("not a solvency-enclave proving-keys file")]
    NotAKeyFile,
    /// The contents do not decode, or do not fit the declared circuit.
    #[error("malformed proving keys: {0}")]
    Malformed(String),
    /// Reading or writing failed.
    #[error("{0}")]
    Io(std::io::Error),
}

impl KeyFileError {
    pub(crate) fn io(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}
