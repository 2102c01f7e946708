//! The COSE_Sign1 envelope (RFC 9052 §4.2) as the Nitro Secure Module emits it: protected header
//! `{1: -35}` (ES384), empty unprotected header, the payload, a 96-byte `r || s` signature.

use ciborium::Value;
use p384::ecdsa::signature::Verifier;
use p384::ecdsa::{Signature, VerifyingKey};

use super::document::MAX_DOCUMENT_BYTES;
use super::error::{EnvelopeError, NitroError};

/// COSE tag for COSE_Sign1.
const COSE_SIGN1_TAG: u64 = 18;
/// COSE algorithm identifier of ES384.
const ES384: i128 = -35;

/// A decoded envelope, its byte strings exactly as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoseSign1 {
    /// The serialized protected header.
    pub protected: Vec<u8>,
    /// The payload bytes (the attestation document), as signed.
    pub payload: Vec<u8>,
    /// The signature, `r || s`.
    pub signature: [u8; 96],
}

fn bytes(value: Value, what: &'static str) -> Result<Vec<u8>, EnvelopeError> {
    match value {
        Value::Bytes(b) => Ok(b),
        _ => Err(EnvelopeError::WrongType(what)),
    }
}

impl CoseSign1 {
    /// Decodes an envelope, refusing anything but ES384 and trailing bytes.
    pub fn decode(input: &[u8]) -> Result<Self, EnvelopeError> {
        if input.len() > MAX_DOCUMENT_BYTES {
            return Err(EnvelopeError::TooLarge { size: input.len(), limit: MAX_DOCUMENT_BYTES });
        }
        let mut reader = input;
        let value: Value = ciborium::from_reader(&mut reader).map_err(|e| EnvelopeError::Cbor(e.to_string()))?;
        if !reader.is_empty() {
            return Err(EnvelopeError::TrailingBytes { count: reader.len() });
        }
        let value = match value {
            Value::Tag(COSE_SIGN1_TAG, inner) => *inner,
            Value::Tag(..) => return Err(EnvelopeError::NotCoseSign1),
            other => other,
        };
        let Value::Array(items) = value else { return Err(EnvelopeError::NotCoseSign1) };
        let Ok::<[Value; 4], _>([protected, unprotected, payload, signature]) = items.try_into() else {
            return Err(EnvelopeError::NotCoseSign1);
        };
        let protected = bytes(protected, "protected header")?;
        let mut header_reader = protected.as_slice();
        let header: Value = ciborium::from_reader(&mut header_reader).map_err(|_| EnvelopeError::NotEs384)?;
        let is_es384 = matches!(&header, Value::Map(m) if m.len() == 1
            && m[0].0.as_integer().map(i128::from) == Some(1)
            && m[0].1.as_integer().map(i128::from) == Some(ES384));
        if !is_es384 || !header_reader.is_empty() {
            return Err(EnvelopeError::NotEs384);
        }
        match unprotected {
            Value::Map(m) if m.is_empty() => {}
            _ => return Err(EnvelopeError::UnprotectedHeader),
        }
        let payload = bytes(payload, "payload")?;
        let signature = bytes(signature, "signature")?;
        let signature: [u8; 96] =
            signature.as_slice().try_into().map_err(|_| EnvelopeError::SignatureLength(signature.len()))?;
        Ok(Self { protected, payload, signature })
    }

    /// The bytes the signature covers: `["Signature1", protected, h'', payload]` (RFC 9052 §4.4).
    pub fn signed_bytes(&self) -> Vec<u8> {
        let structure = Value::Array(vec![
            Value::Text("Signature1".into()),
            Value::Bytes(self.protected.clone()),
            Value::Bytes(Vec::new()),
            Value::Bytes(self.payload.clone()),
        ]);
        let mut out = Vec::with_capacity(self.payload.len() + self.protected.len() + 32);
        // Writing a Value into a Vec cannot fail; qed.
        let _ = ciborium::into_writer(&structure, &mut out);
        out
    }

    /// Checks the signature with the leaf certificate's key.
    pub fn verify_signature(&self, key: &VerifyingKey) -> Result<(), NitroError> {
        let signature = Signature::from_slice(&self.signature).map_err(|_| NitroError::Signature)?;
        key.verify(&self.signed_bytes(), &signature).map_err(|_| NitroError::Signature)
    }
}
