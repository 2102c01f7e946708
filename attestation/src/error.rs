//! Error types of the verifier, split by who is at fault: a malformed bundle or proof file (the
//! producer sent garbage) versus a well-formed one whose cryptography or claims do not hold.

// Every variant is documented; its fields are named for what they hold.
#![allow(missing_docs)]

use crate::groth16::Groth16Error;

/// The bundle's bytes are not a valid version-1 liabilities bundle.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BundleError {
    /// Larger than the reader accepts.
    #[error("{size} bytes exceeds the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    /// Not CBOR of the bundle's structure (wrong types, missing or unknown fields, truncation).
    #[error("malformed CBOR: {0}")]
    Cbor(String),
    /// Bytes after the bundle's single CBOR item.
    #[error("{count} trailing bytes after the bundle")]
    TrailingBytes { count: usize },
    /// Valid CBOR of the right structure, but not the one canonical encoding of its values.
    #[error("the bundle is not canonically encoded (spec §8.1)")]
    NonCanonical,
    /// A `format` this verifier does not know.
    #[error("unknown bundle format {0:?}")]
    UnknownFormat(String),
    /// A field the bundle's version requires is missing, or one it does not have is present.
    #[error("{field} {problem}")]
    Field { field: &'static str, problem: &'static str },
    /// An `attestation` value this verifier cannot check.
    #[error("attestation marker {0:?} is not accepted here: a bare bundle is \"unattested\", and \"nitro-enclave\" only the liabilities part of a round bundle")]
    UnsupportedAttestation(String),
    /// A byte string or list of the wrong length.
    #[error("{field}: expected length {expected}, found {actual}")]
    BadLength { field: &'static str, expected: usize, actual: usize },
    /// No assets, or too many.
    #[error("{count} assets; between 1 and {limit} are allowed")]
    AssetCount { count: usize, limit: usize },
    /// An empty, oversized or repeated asset symbol.
    #[error("asset {index} ({symbol:?}) is empty, too long or repeated")]
    BadAsset { index: usize, symbol: String },
    /// A batch size beyond the limit.
    #[error("batch size {size} exceeds {limit}")]
    BatchSize { size: u64, limit: u64 },
    /// A zero batch size or leaf count, or a tree too deep.
    #[error("batch size {batch_size} and leaf count {leaf_count} do not form a valid tree")]
    BadShape { batch_size: u64, leaf_count: u64 },
    /// The number of batches does not cover the leaf count.
    #[error("{actual} batches, but the leaf count needs {expected}")]
    BatchCount { expected: u64, actual: usize },
    /// A total that is not a canonical decimal below 2^128.
    #[error("total {index} ({value:?}) is not a canonical decimal below 2^128")]
    BadTotal { index: usize, value: String },
    /// A field element that is not 32 canonical little-endian bytes.
    #[error("{field}{}: not a canonical field element", index.map(|i| format!("[{i}]")).unwrap_or_default())]
    BadFieldElement { field: &'static str, index: Option<usize> },
    /// A verifying key that does not decode to valid subgroup points.
    #[error("verifying key is malformed or has points off the curve or outside the subgroup")]
    BadVerifyingKey,
    /// A proof that does not decode to valid subgroup points.
    #[error("batch {index}: proof is malformed or has points off the curve or outside the subgroup")]
    BadProofEncoding { index: usize },
    /// The private-mode fields are missing, present in a version-1 bundle, or malformed.
    #[error("opening: {0}")]
    Opening(String),
}

/// A well-formed bundle whose claims do not hold.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    /// The bundle is malformed.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The verifying key is not the one the caller pinned.
    #[error("verifying key SHA-256 is {actual}, expected {expected}")]
    VerifyingKeyMismatch { expected: String, actual: String },
    /// The key does not take the batch statement's three public inputs.
    #[error("verifying key takes {actual} public inputs; the batch statement has 3")]
    VerifyingKeyShape { actual: usize },
    /// The last batch's sum commitment does not open to the published totals.
    #[error("the published totals do not match the last batch's sum commitment")]
    TotalsMismatch,
    /// Some totals are hidden and the caller gave no reserves to bound them by: a private-mode
    /// bundle is verified as part of its round, whose reserves step supplies them.
    #[error("totals are hidden (private mode); they can be checked only against the round's reserves")]
    HiddenTotals,
    /// The opening's verifying key is not the one the setup made.
    #[error("the opening's verifying key SHA-256 is {actual}, expected {expected}")]
    OpeningKeyMismatch { expected: String, actual: String },
    /// The opening proof does not show the hidden totals within the reserves (spec §13).
    #[error("the solvency opening: {0}")]
    Opening(crate::opening::OpeningError),
    /// The tree above the batch roots does not hash to the published root.
    #[error("the batch roots do not hash to the published root")]
    RootMismatch,
    /// A batch proof fails (wrong inputs, broken chain, removed, duplicated or foreign batch).
    #[error("batch {index}: proof does not verify for its root and sum chain")]
    BatchProof { index: usize },
    /// A statement had the wrong number of inputs.
    #[error(transparent)]
    Groth16(Groth16Error),
}

impl From<Groth16Error> for VerifyError {
    fn from(e: Groth16Error) -> Self {
        match e {
            Groth16Error::InvalidProof { index } => Self::BatchProof { index },
            other => Self::Groth16(other),
        }
    }
}

/// An inclusion proof that is malformed or does not place the account in the verified tree.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InclusionError {
    /// Not JSON of the inclusion-proof structure.
    #[error("malformed inclusion proof: {0}")]
    Json(String),
    /// A `format` this verifier does not know.
    #[error("unknown inclusion proof format {0:?}")]
    UnknownFormat(String),
    /// A hex field that does not decode to what it should.
    #[error("{field}: not valid hex of the right length")]
    BadHex { field: &'static str },
    /// An account id that is empty or too long.
    #[error("account id is empty or longer than the limit")]
    BadAccountId,
    /// The proof is for another round.
    #[error("the proof is for round {proof}, the bundle is round {bundle}")]
    WrongRound { proof: String, bundle: String },
    /// The proof names another round's manifest digest.
    #[error("the proof names the round with manifest digest {proof}; the verified bundle's is {bundle}")]
    WrongManifest { proof: String, bundle: String },
    /// A sibling hash of the path that is not a canonical field element.
    #[error("path level {level}: a sibling is not a canonical field element (hex of 32 bytes)")]
    BadSibling { level: usize },
    /// A path level with the wrong number of siblings.
    #[error("path level {level}: {actual} siblings, expected {expected}")]
    SiblingCount { level: usize, expected: usize, actual: usize },
    /// The proof names another root.
    #[error("the proof's root differs from the verified bundle's root")]
    WrongRoot,
    /// Balances do not list the bundle's assets in order.
    #[error("balances must list the assets {expected:?} in order")]
    AssetMismatch { expected: Vec<String> },
    /// A balance that is not a canonical decimal below 2^64.
    #[error("balance for {asset}: {value:?} is not a canonical decimal in [0, 2^64)")]
    BadAmount { asset: String, value: String },
    /// The leaf index is not an account of the round (beyond the leaf count).
    #[error("leaf index {index} is not below the leaf count {leaf_count}")]
    IndexOutOfRange { index: u64, leaf_count: u64 },
    /// The path has the wrong number of levels.
    #[error("path has {actual} levels; the tree has {expected}")]
    PathLength { expected: usize, actual: usize },
    /// The leaf and path do not hash to the root.
    #[error("the account's leaf and path do not hash to the verified root")]
    NotInTree,
}
