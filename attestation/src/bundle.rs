//! The liabilities bundle: its CBOR wire format and strict decoding into typed, validated values
//! (`docs/commitment-spec.md` §8). Decoding checks sizes, encodings and curve points; the
//! cryptographic checks live in [`crate::liabilities`].

use ark_bls12_381::{Bls12_381, Fr};
use ark_groth16::{Proof, VerifyingKey};
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize};
use serde::{Deserialize, Serialize};

use crate::commitment::{element_from_bytes, element_to_bytes};
use crate::error::BundleError;
use crate::tree::{TreeShape, MAX_BATCH_SIZE};

/// The `format` value of a version-1 liabilities bundle.
pub const FORMAT_V1: &str = "solvency-enclave/liabilities/v1";
/// The `format` value of a version-2 liabilities bundle: private mode (spec §13), some totals
/// hidden and an opening proof in their place.
pub const FORMAT_V2: &str = "solvency-enclave/liabilities/v2";
/// A hidden total's entry in `totals` (version 2 only).
pub const HIDDEN: &str = "hidden";
/// The `attestation` value of a bundle made outside an enclave, with nothing vouching for it.
pub const UNATTESTED: &str = "unattested";
/// Largest bundle file read.
pub const MAX_BUNDLE_BYTES: usize = 256 << 20;
/// Most assets per round.
pub const MAX_ASSETS: usize = 64;
/// Longest asset symbol, in bytes.
pub const MAX_SYMBOL_BYTES: usize = 32;
/// Largest encoded verifying key.
pub const MAX_VERIFYING_KEY_BYTES: usize = 64 << 10;
/// Bytes of a compressed Groth16 proof over BLS12-381 (A: G1, B: G2, C: G1).
pub const PROOF_BYTES: usize = 48 + 96 + 48;

/// The bundle as it is encoded: CBOR, one map, field names as below.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BundleWire {
    /// [`FORMAT_V1`].
    pub format: String,
    /// [`UNATTESTED`] for development bundles.
    pub attestation: String,
    /// 32 random bytes naming the round.
    #[serde(with = "serde_bytes")]
    pub round_id: Vec<u8>,
    /// Asset symbols, in the order balances appear in leaves.
    pub assets: Vec<String>,
    /// Account slots per batch.
    pub batch_size: u64,
    /// Accounts in the round.
    pub leaf_count: u64,
    /// Per-asset totals in base units, decimal.
    pub totals: Vec<String>,
    /// Root of the liabilities tree, 32 bytes little-endian.
    #[serde(with = "serde_bytes")]
    pub root: Vec<u8>,
    /// The Groth16 verifying key, arkworks compressed encoding.
    #[serde(with = "serde_bytes")]
    pub verifying_key: Vec<u8>,
    /// One entry per batch, in order.
    pub batches: Vec<BatchWire>,
    /// Version 2: the opening's verifying key, arkworks compressed encoding.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_bytes")]
    pub opening_verifying_key: Option<Vec<u8>>,
    /// Version 2: the opening proof, compressed ([`PROOF_BYTES`]).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_bytes")]
    pub opening_proof: Option<Vec<u8>>,
}

/// One batch as encoded.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BatchWire {
    /// The batch subtree's root.
    #[serde(with = "serde_bytes")]
    pub root: Vec<u8>,
    /// The running-sum commitment after this batch.
    #[serde(with = "serde_bytes")]
    pub sum_commitment: Vec<u8>,
    /// The Groth16 proof, compressed.
    #[serde(with = "serde_bytes")]
    pub proof: Vec<u8>,
}

/// A decoded bundle whose encodings, sizes and points are valid; not yet verified.
#[derive(Clone, Debug, PartialEq)]
pub struct Bundle {
    /// Whether anything attests it ([`UNATTESTED`] for now).
    pub attestation: String,
    /// The round id.
    pub round_id: [u8; 32],
    /// Asset symbols.
    pub assets: Vec<String>,
    /// Accounts in the round.
    pub leaf_count: u64,
    /// Per-asset totals; `None` for an asset whose total is hidden (private mode).
    pub totals: Vec<Option<u128>>,
    /// The tree root.
    pub root: Fr,
    /// Where leaves and batches sit.
    pub shape: TreeShape,
    /// The verifying key.
    pub verifying_key: VerifyingKey<Bls12_381>,
    /// The batches, in order.
    pub batches: Vec<Batch>,
    /// The solvency opening, present exactly when some total is hidden.
    pub opening: Option<Opening>,
}

/// Private mode's solvency opening (spec §13): proves the hidden totals are at most the assets'
/// reserves and the others equal their published totals.
#[derive(Clone, Debug, PartialEq)]
pub struct Opening {
    /// Its verifying key (pinned by the setup that made it).
    pub verifying_key: VerifyingKey<Bls12_381>,
    /// The proof.
    pub proof: Proof<Bls12_381>,
}

/// A decoded batch.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// Its subtree root.
    pub root: Fr,
    /// The running-sum commitment after it.
    pub sum_commitment: Fr,
    /// Its proof.
    pub proof: Proof<Bls12_381>,
}

fn field(name: &'static str, index: Option<usize>, bytes: &[u8]) -> Result<Fr, BundleError> {
    element_from_bytes(bytes).ok_or(BundleError::BadFieldElement { field: name, index })
}

/// A total as `totals` encodes it: decimal, or [`HIDDEN`].
pub fn total_text(total: Option<u128>) -> String {
    total.map_or_else(|| HIDDEN.to_owned(), |t| t.to_string())
}

/// Parses a decimal amount with no sign, no leading zeros and no other characters.
pub fn parse_decimal_u128(s: &str) -> Option<u128> {
    let canonical = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    canonical.then(|| s.parse().ok()).flatten()
}

impl Bundle {
    /// The context the round's proofs are bound to.
    pub fn context(&self) -> crate::commitment::RoundContext<'_> {
        crate::commitment::RoundContext {
            round_id: &self.round_id,
            assets: &self.assets,
            batch_size: self.shape.batch_size,
            leaf_count: self.leaf_count,
        }
    }

    /// Decodes and validates a development bundle's bytes (`attestation` = [`UNATTESTED`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, BundleError> {
        Self::decode_marked(bytes, UNATTESTED)
    }

    /// Decodes the liabilities part of an attested round bundle (`attestation` =
    /// [`crate::attested::EMBEDDED`]). Only the round-bundle verifier calls this: the marker means
    /// nothing outside a verified round bundle, so a bare bundle may never carry it.
    pub fn decode_embedded(bytes: &[u8]) -> Result<Self, BundleError> {
        Self::decode_marked(bytes, crate::attested::EMBEDDED)
    }

    fn decode_marked(bytes: &[u8], marker: &str) -> Result<Self, BundleError> {
        if bytes.len() > MAX_BUNDLE_BYTES {
            return Err(BundleError::TooLarge { size: bytes.len(), limit: MAX_BUNDLE_BYTES });
        }
        let mut reader = bytes;
        let wire: BundleWire = ciborium::from_reader(&mut reader).map_err(|e| BundleError::Cbor(e.to_string()))?;
        if !reader.is_empty() {
            return Err(BundleError::TrailingBytes { count: reader.len() });
        }
        // One bundle, one encoding: other encodings of the same values (byte-string keys,
        // indefinite or over-long lengths, another key order) are refused, so a bundle's hash
        // identifies it.
        if encode_wire(&wire) != bytes {
            return Err(BundleError::NonCanonical);
        }
        if wire.attestation != marker {
            return Err(BundleError::UnsupportedAttestation(wire.attestation));
        }
        Self::from_wire(wire)
    }

    /// Validates a wire bundle (which of the two markers is acceptable is the caller's business).
    pub fn from_wire(wire: BundleWire) -> Result<Self, BundleError> {
        let private = match wire.format.as_str() {
            FORMAT_V1 => false,
            FORMAT_V2 => true,
            _ => return Err(BundleError::UnknownFormat(wire.format)),
        };
        if wire.attestation != UNATTESTED && wire.attestation != crate::attested::EMBEDDED {
            return Err(BundleError::UnsupportedAttestation(wire.attestation));
        }
        let round_id: [u8; 32] = wire.round_id.as_slice().try_into().map_err(|_| BundleError::BadLength {
            field: "round_id",
            expected: 32,
            actual: wire.round_id.len(),
        })?;
        if wire.assets.is_empty() || wire.assets.len() > MAX_ASSETS {
            return Err(BundleError::AssetCount { count: wire.assets.len(), limit: MAX_ASSETS });
        }
        for (i, symbol) in wire.assets.iter().enumerate() {
            if symbol.is_empty() || symbol.len() > MAX_SYMBOL_BYTES || wire.assets[..i].contains(symbol) {
                return Err(BundleError::BadAsset { index: i, symbol: symbol.clone() });
            }
        }
        if wire.batch_size > MAX_BATCH_SIZE as u64 {
            return Err(BundleError::BatchSize { size: wire.batch_size, limit: MAX_BATCH_SIZE as u64 });
        }
        let shape = TreeShape::new(wire.batch_size, wire.leaf_count)
            .ok_or(BundleError::BadShape { batch_size: wire.batch_size, leaf_count: wire.leaf_count })?;
        if wire.batches.len() as u64 != shape.batch_count {
            return Err(BundleError::BatchCount { expected: shape.batch_count, actual: wire.batches.len() });
        }
        if wire.totals.len() != wire.assets.len() {
            return Err(BundleError::BadLength {
                field: "totals",
                expected: wire.assets.len(),
                actual: wire.totals.len(),
            });
        }
        let totals = wire
            .totals
            .iter()
            .enumerate()
            .map(|(index, t)| match parse_decimal_u128(t) {
                Some(total) => Ok(Some(total)),
                None if private && t == HIDDEN => Ok(None),
                None => Err(BundleError::BadTotal { index, value: t.clone() }),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let root = field("root", None, &wire.root)?;
        let verifying_key = decode_verifying_key(&wire.verifying_key)?;
        let opening = match (private, &wire.opening_verifying_key, &wire.opening_proof) {
            (false, None, None) => None,
            (true, Some(key), Some(proof)) => {
                if !totals.contains(&None) {
                    return Err(BundleError::Opening("a version-2 bundle hides no total".into()));
                }
                Some(Opening {
                    verifying_key: decode_verifying_key(key)?,
                    proof: crate::opening::proof_from_bytes(proof)
                        .map_err(|e| BundleError::Opening(format!("opening_proof: {e}")))?,
                })
            }
            (false, _, _) => {
                return Err(BundleError::Opening("a version-1 bundle has no opening fields".into()));
            }
            (true, _, _) => {
                return Err(BundleError::Opening(
                    "a version-2 bundle needs both opening_verifying_key and opening_proof".into(),
                ));
            }
        };
        let batches = wire
            .batches
            .iter()
            .enumerate()
            .map(|(i, b)| {
                if b.proof.len() != PROOF_BYTES {
                    return Err(BundleError::BadLength {
                        field: "batches.proof",
                        expected: PROOF_BYTES,
                        actual: b.proof.len(),
                    });
                }
                Ok(Batch {
                    root: field("batches.root", Some(i), &b.root)?,
                    sum_commitment: field("batches.sum_commitment", Some(i), &b.sum_commitment)?,
                    proof: Proof::deserialize_compressed(b.proof.as_slice())
                        .map_err(|_| BundleError::BadProofEncoding { index: i })?,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            attestation: wire.attestation,
            round_id,
            assets: wire.assets,
            leaf_count: wire.leaf_count,
            totals,
            root,
            shape,
            verifying_key,
            batches,
            opening,
        })
    }

    /// The wire form of this bundle.
    pub fn to_wire(&self) -> BundleWire {
        let mut verifying_key = Vec::new();
        // Serialising valid points into a Vec cannot fail; qed.
        let _ = self.verifying_key.serialize_compressed(&mut verifying_key);
        BundleWire {
            format: if self.opening.is_some() { FORMAT_V2 } else { FORMAT_V1 }.to_owned(),
            attestation: self.attestation.clone(),
            round_id: self.round_id.to_vec(),
            assets: self.assets.clone(),
            batch_size: self.shape.batch_size,
            leaf_count: self.leaf_count,
            totals: self.totals.iter().copied().map(total_text).collect(),
            root: element_to_bytes(&self.root).to_vec(),
            verifying_key,
            batches: self
                .batches
                .iter()
                .map(|b| {
                    let mut proof = Vec::with_capacity(PROOF_BYTES);
                    let _ = b.proof.serialize_compressed(&mut proof);
                    BatchWire {
                        root: element_to_bytes(&b.root).to_vec(),
                        sum_commitment: element_to_bytes(&b.sum_commitment).to_vec(),
                        proof,
                    }
                })
                .collect(),
            opening_verifying_key: self.opening.as_ref().map(|o| {
                let mut key = Vec::new();
                let _ = o.verifying_key.serialize_compressed(&mut key);
                key
            }),
            opening_proof: self.opening.as_ref().map(|o| crate::opening::proof_to_bytes(&o.proof).to_vec()),
        }
    }

    /// The CBOR encoding.
    pub fn encode(&self) -> Vec<u8> {
        encode_wire(&self.to_wire())
    }
}

fn decode_verifying_key(bytes: &[u8]) -> Result<VerifyingKey<Bls12_381>, BundleError> {
    if bytes.len() > MAX_VERIFYING_KEY_BYTES {
        return Err(BundleError::TooLarge { size: bytes.len(), limit: MAX_VERIFYING_KEY_BYTES });
    }
    let mut rest = bytes;
    let key = VerifyingKey::<Bls12_381>::deserialize_compressed(&mut rest).map_err(|_| BundleError::BadVerifyingKey)?;
    if !rest.is_empty() {
        return Err(BundleError::BadVerifyingKey);
    }
    Ok(key)
}

/// CBOR-encodes a wire bundle.
pub fn encode_wire(wire: &BundleWire) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail and every field is serialisable; qed.
    let _ = ciborium::into_writer(wire, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_parsing_is_canonical() {
        assert_eq!(parse_decimal_u128("0"), Some(0));
        assert_eq!(parse_decimal_u128("120"), Some(120));
        assert_eq!(parse_decimal_u128("340282366920938463463374607431768211455"), Some(u128::MAX));
        for bad in ["", "01", "-1", "+1", "1.0", " 1", "340282366920938463463374607431768211456"] {
            assert_eq!(parse_decimal_u128(bad), None, "{bad:?}");
        }
    }
}
