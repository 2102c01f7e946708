//! The reserves evidence a round bundle carries: per chain, the block header the enclave chose
//! and the Merkle-Patricia proofs of every account and storage slot its figures depend on; and the
//! ownership signatures of the addresses it counted. One canonical CBOR map; the manifest holds
//! its SHA-256, so the attestation covers it. `docs/reserves.md` specifies it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cbor::CanonicalError;

/// The `format` value of version-1 reserves evidence.
pub const EVIDENCE_FORMAT_V1: &str = "solvency-enclave/reserves-evidence/v1";
/// Largest evidence accepted: 1,000 addresses' proofs take about 4 MiB on a busy chain.
pub const MAX_EVIDENCE_BYTES: usize = 64 << 20;

/// Why evidence bytes were refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EvidenceError {
    /// Larger than [`MAX_EVIDENCE_BYTES`].
    #[error("{size} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Not CBOR of the evidence's structure.
    #[error("malformed CBOR: {0}")]
    Cbor(String),
    /// Valid, but not the canonical encoding of its values.
    #[error("not canonically encoded")]
    NonCanonical,
    /// Another format.
    #[error("unknown format {0:?}")]
    UnknownFormat(String),
}

/// Everything a verifier needs to re-derive the reserve figures.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReservesEvidence {
    /// [`EVIDENCE_FORMAT_V1`].
    pub format: String,
    /// One entry per configured chain, in the manifest's order.
    pub chains: Vec<ChainEvidence>,
    /// Ownership signatures of the addresses counted.
    pub ownership: Vec<OwnershipSignature>,
}

/// One chain's block and the state proven against its state root.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainEvidence {
    /// The chain's configured name.
    pub name: String,
    /// The block header, RLP-encoded exactly as hashed.
    #[serde(with = "serde_bytes")]
    pub header: Vec<u8>,
    /// Each account read, with its proof and the storage slots read from it.
    pub accounts: Vec<AccountEvidence>,
}

/// One account as `eth_getProof` returned it, with the code that ran if any.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountEvidence {
    /// The 20-byte address.
    #[serde(with = "serde_bytes")]
    pub address: Vec<u8>,
    /// The account's state, or none when the proof shows it does not exist.
    pub state: Option<AccountState>,
    /// The account proof: the trie nodes from the state root down, each RLP-encoded.
    pub proof: Vec<serde_bytes::ByteBuf>,
    /// The contract code, when a call ran it (its Keccak-256 must be the account's code hash).
    #[serde(default, with = "serde_bytes", skip_serializing_if = "Option::is_none")]
    pub code: Option<Vec<u8>>,
    /// The storage slots a call read, each proven against the account's storage root.
    pub storage: Vec<SlotEvidence>,
}

/// An existing account's state, as the state trie holds it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountState {
    /// The nonce.
    pub nonce: u64,
    /// The balance in wei: 32 bytes, big-endian.
    #[serde(with = "serde_bytes")]
    pub balance: Vec<u8>,
    /// The storage trie's root (32 bytes).
    #[serde(with = "serde_bytes")]
    pub storage_root: Vec<u8>,
    /// Keccak-256 of the code (32 bytes).
    #[serde(with = "serde_bytes")]
    pub code_hash: Vec<u8>,
}

/// One storage slot and its proof.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotEvidence {
    /// The slot (32 bytes).
    #[serde(with = "serde_bytes")]
    pub key: Vec<u8>,
    /// Its value: 32 bytes, big-endian (zero when the proof shows the slot is empty).
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
    /// The storage proof, from the account's storage root down.
    pub proof: Vec<serde_bytes::ByteBuf>,
}

/// An address owner's EIP-191 signature over the ownership message
/// ([`crate::reserves::ownership::message`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnershipSignature {
    /// The chain's configured name.
    pub chain: String,
    /// The 20-byte address.
    #[serde(with = "serde_bytes")]
    pub address: Vec<u8>,
    /// The 65-byte signature (r ‖ s ‖ v).
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
}

impl ReservesEvidence {
    /// Empty evidence of the current format.
    pub fn new() -> Self {
        Self { format: EVIDENCE_FORMAT_V1.into(), ..Self::default() }
    }

    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        crate::cbor::encode(self)
    }

    /// Decodes canonical evidence bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, EvidenceError> {
        let evidence: Self = crate::cbor::decode_canonical(bytes, MAX_EVIDENCE_BYTES).map_err(|e| match e {
            CanonicalError::TooLarge { size, limit } => EvidenceError::TooLarge { size, limit },
            CanonicalError::Cbor(detail) => EvidenceError::Cbor(detail),
            CanonicalError::NonCanonical => EvidenceError::NonCanonical,
        })?;
        if evidence.format != EVIDENCE_FORMAT_V1 {
            return Err(EvidenceError::UnknownFormat(evidence.format));
        }
        Ok(evidence)
    }

    /// SHA-256 of encoded evidence: the manifest's `solvency.evidence_sha256`.
    pub fn sha256(bytes: &[u8]) -> [u8; 32] {
        Sha256::digest(bytes).into()
    }
}
