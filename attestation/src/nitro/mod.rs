//! Verification of AWS Nitro Enclaves attestation documents: the COSE_Sign1 envelope, the
//! payload, the certificate chain up to a pinned root, the ES384 signature, then the caller's
//! policy. Time and trust anchor always come from the caller; nothing here reads a clock.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use attestation::nitro::{verify, Policy, TrustAnchor};
//! let root = TrustAnchor::aws_from_pem(&std::fs::read("AWS_NitroEnclaves_Root-G1.pem")?)?;
//! let doc = std::fs::read("attestation.cose")?;
//! let now_ms = 1_700_000_000_000;
//! let verified = verify(&doc, &root, now_ms, &Policy::default())?;
//! println!("{}", verified.document().module_id);
//! # Ok(()) }
//! ```

mod chain;
mod cose;
pub mod development;
mod document;
mod error;
mod policy;

pub use chain::{pem_to_der, TrustAnchor, AWS_NITRO_ROOT_SHA256};
pub use cose::CoseSign1;
pub use document::{AttestationDocument, MAX_DOCUMENT_BYTES};

/// The size limits of the document's fields (the NSM's own limits where it has them).
pub mod document_limits {
    pub use super::document::{
        MAX_CABUNDLE, MAX_CERTIFICATE_BYTES, MAX_MODULE_ID_BYTES, MAX_PUBLIC_KEY_BYTES, MAX_USER_DATA_BYTES, PCR_BYTES,
    };
}
pub use error::{ChainError, EnvelopeError, NitroError, PayloadError, PolicyError};
pub use policy::Policy;

/// A document whose envelope, payload, chain, signature and policy all verified. Only
/// [`verify`] makes one.
#[derive(Clone, Debug)]
pub struct VerifiedDocument {
    document: AttestationDocument,
    root_is_aws: bool,
}

impl VerifiedDocument {
    /// The verified payload.
    pub fn document(&self) -> &AttestationDocument {
        &self.document
    }

    /// Whether the chain ends at the pinned AWS root (false only for a development root).
    pub fn root_is_aws(&self) -> bool {
        self.root_is_aws
    }
}

/// Verifies `bytes` at `at_ms` (milliseconds since the Unix epoch) against `anchor`, then
/// applies `policy` with `at_ms` as "now".
pub fn verify(bytes: &[u8], anchor: &TrustAnchor, at_ms: u64, policy: &Policy) -> Result<VerifiedDocument, NitroError> {
    let envelope = CoseSign1::decode(bytes)?;
    let document = AttestationDocument::decode(&envelope.payload)?;
    let leaf_key = chain::verify_chain(&document, anchor, at_ms)?;
    envelope.verify_signature(&leaf_key)?;
    policy.check(&document, at_ms)?;
    Ok(VerifiedDocument { document, root_is_aws: anchor.is_aws() })
}
