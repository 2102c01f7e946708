//! Canonical CBOR for the attested documents (manifests, reserves evidence): one encoding per
//! value, so a document's hash identifies it. Decoding refuses oversized input, deep nesting, and
//! any bytes that are not exactly the re-encoding of what they decode to.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Why bytes are not a canonical document; each caller maps it into its own error.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CanonicalError {
    /// More bytes than the caller accepts.
    TooLarge { size: usize, limit: usize },
    /// Not CBOR of the expected structure.
    Cbor(String),
    /// Valid, but not the canonical encoding of its values (or followed by trailing bytes).
    NonCanonical,
}

/// The canonical encoding of `value`.
pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing plain structs into a Vec cannot fail; qed.
    let _ = ciborium::into_writer(value, &mut out);
    out
}

/// Decodes `bytes` (at most `limit` of them) and checks they are `value`'s canonical encoding.
pub(crate) fn decode_canonical<T: Serialize + DeserializeOwned>(bytes: &[u8], limit: usize) -> Result<T, CanonicalError> {
    if bytes.len() > limit {
        return Err(CanonicalError::TooLarge { size: bytes.len(), limit });
    }
    let value: T =
        ciborium::de::from_reader_with_recursion_limit(bytes, 16).map_err(|e| CanonicalError::Cbor(e.to_string()))?;
    // Re-encoding also catches trailing bytes.
    if encode(&value) != bytes {
        return Err(CanonicalError::NonCanonical);
    }
    Ok(value)
}
