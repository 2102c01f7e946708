//! What can be wrong with an attestation document, by verification step.

// Every variant is documented; its fields are named for what they hold.
#![allow(missing_docs)]

/// Why a document was refused, named by the step that refused it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NitroError {
    /// Step 1: the COSE_Sign1 envelope.
    #[error("envelope: {0}")]
    Envelope(#[from] EnvelopeError),
    /// Step 2: the attestation document payload.
    #[error("payload: {0}")]
    Payload(#[from] PayloadError),
    /// Step 3: the certificate chain.
    #[error("certificate chain: {0}")]
    Chain(#[from] ChainError),
    /// Step 4: the document's signature with the leaf key.
    #[error("signature: the ES384 signature does not verify with the leaf certificate's key")]
    Signature,
    /// Step 5: the caller's policy.
    #[error("policy: {0}")]
    Policy(#[from] PolicyError),
}

impl NitroError {
    /// The name of the step that failed: `envelope`, `payload`, `chain`, `signature` or `policy`.
    pub fn step(&self) -> &'static str {
        match self {
            Self::Envelope(_) => "envelope",
            Self::Payload(_) => "payload",
            Self::Chain(_) => "chain",
            Self::Signature => "signature",
            Self::Policy(_) => "policy",
        }
    }
}

/// The COSE_Sign1 structure is malformed or not ES384.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("{size} bytes exceeds the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("not CBOR: {0}")]
    Cbor(String),
    #[error("{count} trailing bytes after the document")]
    TrailingBytes { count: usize },
    #[error("not a COSE_Sign1 (an array of four, untagged or with tag 18)")]
    NotCoseSign1,
    #[error("{0} has the wrong CBOR type")]
    WrongType(&'static str),
    #[error("the protected header must be exactly {{1: -35}} (ES384)")]
    NotEs384,
    #[error("the unprotected header must be an empty map")]
    UnprotectedHeader,
    #[error("the signature is {0} bytes; ES384 signatures are 96")]
    SignatureLength(usize),
}

/// The payload is not a well-formed attestation document.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PayloadError {
    #[error("not CBOR: {0}")]
    Cbor(String),
    #[error("the payload is not a map with text keys")]
    NotAMap,
    #[error("missing field {0}")]
    Missing(&'static str),
    #[error("field {0} appears twice")]
    Duplicate(String),
    #[error("unknown field {0:?}")]
    Unknown(String),
    #[error("field {0} has the wrong CBOR type")]
    WrongType(&'static str),
    #[error("field {field} is {size} bytes, above the limit of {limit}")]
    TooLarge { field: &'static str, size: usize, limit: usize },
    #[error("digest is {0:?}; only SHA384 is accepted")]
    Digest(String),
    #[error("field {0} is empty")]
    Empty(&'static str),
    #[error("PCR index {0} is outside 0..=31")]
    PcrIndex(i128),
    #[error("PCR {index} is {len} bytes; SHA384 PCRs are 48")]
    PcrLength { index: u8, len: usize },
    #[error("{0} PCRs; between 1 and 32 are allowed")]
    PcrCount(usize),
}

/// The certificate chain does not lead from the pinned root to the signing key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChainError {
    #[error("the trust anchor is not a self-signed P-384 certificate")]
    BadAnchor,
    #[error("the trust anchor's SHA-256 is {actual}, not the pinned AWS root {expected}")]
    NotTheAwsRoot { expected: String, actual: String },
    #[error("cabundle[0] is not the trusted root")]
    UntrustedRoot,
    #[error("certificate {position} does not parse as X.509")]
    Unparsable { position: String },
    #[error("certificate {position} is not signed with ecdsa-with-SHA384")]
    Algorithm { position: String },
    #[error("certificate {position} does not hold a P-384 key")]
    KeyType { position: String },
    #[error("certificate {position}'s issuer is not the subject of the certificate above it")]
    IssuerMismatch { position: String },
    #[error("certificate {position}'s signature does not verify with its issuer's key")]
    BadSignature { position: String },
    #[error("certificate {position} is not valid at {at_ms} ms (valid {not_before_ms} to {not_after_ms})")]
    Expired { position: String, at_ms: u64, not_before_ms: i128, not_after_ms: i128 },
    #[error("certificate {position} must be a CA with keyCertSign")]
    NotACa { position: String },
    #[error("certificate {position}'s path length constraint is exceeded")]
    PathLength { position: String },
    #[error("the leaf certificate must not be a CA and must allow digitalSignature")]
    BadLeaf,
}

/// The document verified but the caller's policy refuses it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("PCR0, PCR1 and PCR2 are all zero: a debug-mode enclave, refused unless debug is allowed")]
    DebugMode,
    #[error("PCR{index} is {actual}, expected {expected}")]
    Pcr { index: u8, expected: String, actual: String },
    #[error("PCR{0} is expected but absent")]
    PcrAbsent(u8),
    #[error("user_data is {actual}, expected {expected}")]
    UserData { expected: String, actual: String },
    #[error("nonce is {actual}, expected {expected}")]
    Nonce { expected: String, actual: String },
    #[error("the document is {age_ms} ms old, above the maximum of {max_ms}")]
    TooOld { age_ms: u64, max_ms: u64 },
    #[error("the document's timestamp is {ahead_ms} ms in the future, above the allowed skew of {skew_ms}")]
    FromTheFuture { ahead_ms: u64, skew_ms: u64 },
}
