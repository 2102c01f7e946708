//! Per-user inclusion proofs: the JSON a user receives, how it is checked against a verified
//! bundle, and the file name it is published under.

use ark_bls12_381::Fr;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::commitment::{account_commitment, element_from_hex, element_to_hex, leaf, Salt, MAX_ACCOUNT_ID_BYTES};
use crate::error::InclusionError;
use crate::liabilities::VerifiedLiabilities;
use crate::tree::{root_from_path, ARITY};

/// The `format` value of a version-1 inclusion proof: a proof of an unattested bundle (which has
/// no manifest), or of a version-1 round.
pub const FORMAT_V1: &str = "solvency-enclave/inclusion/v1";
/// The `format` value of a version-2 inclusion proof: v1 and the manifest digest of its
/// attested round.
pub const FORMAT_V2: &str = "solvency-enclave/inclusion/v2";
/// Largest inclusion-proof file read.
pub const MAX_PROOF_BYTES: usize = 1 << 20;

/// One asset's balance in an inclusion proof.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Balance {
    /// The asset's symbol.
    pub asset: String,
    /// The balance in base units, decimal.
    pub amount: String,
}

/// What a user receives to check their balance is in the round's tree.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct InclusionProof {
    /// [`FORMAT_V2`] (or [`FORMAT_V1`]).
    pub format: String,
    /// The manifest digest of the round (hex of 48 bytes): what identifies the round, to compare
    /// with the digest the auditor accepted and the exchange's published log. Version 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_digest: Option<String>,
    /// The round id, hex.
    pub round_id: String,
    /// The tree root, hex of 32 little-endian bytes.
    pub root: String,
    /// The account id as the exchange knows it.
    pub account_id: String,
    /// The account's salt for this round, hex of 32 bytes.
    pub salt: String,
    /// One balance per asset of the round, in the bundle's asset order.
    pub balances: Vec<Balance>,
    /// The account's index in the round's leaf order.
    pub leaf_index: u64,
    /// Seven sibling hashes per level, bottom first.
    pub path: Vec<Vec<String>>,
}

/// An inclusion proof that checked out against a verified bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedInclusion {
    /// The account id.
    pub account_id: String,
    /// Balances in base units, in the bundle's asset order.
    pub balances: Vec<(String, u64)>,
    /// The account's leaf index.
    pub leaf_index: u64,
}

impl InclusionProof {
    /// Parses an inclusion proof file.
    pub fn from_json(bytes: &[u8]) -> Result<Self, InclusionError> {
        if bytes.len() > MAX_PROOF_BYTES {
            return Err(InclusionError::Json(format!("{} bytes exceeds the limit of {MAX_PROOF_BYTES}", bytes.len())));
        }
        let proof: Self = serde_json::from_slice(bytes).map_err(|e| InclusionError::Json(e.to_string()))?;
        match (proof.format.as_str(), &proof.manifest_digest) {
            (FORMAT_V1, None) => Ok(proof),
            (FORMAT_V2, Some(digest)) => {
                manifest_digest_from_hex(digest).ok_or(InclusionError::BadHex { field: "manifest_digest" })?;
                Ok(proof)
            }
            (FORMAT_V1, Some(_)) => Err(InclusionError::Json("a v1 proof has no manifest_digest".into())),
            (FORMAT_V2, None) => Err(InclusionError::Json("missing field `manifest_digest`".into())),
            _ => Err(InclusionError::UnknownFormat(proof.format)),
        }
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        // Strings and integers always serialise; qed.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// A manifest digest from hex (48 bytes).
pub fn manifest_digest_from_hex(text: &str) -> Option<[u8; 48]> {
    hex::decode(text).ok().and_then(|b| b.try_into().ok())
}

fn parse_amount(asset: &str, value: &str) -> Result<u64, InclusionError> {
    let bad = || InclusionError::BadAmount { asset: asset.to_owned(), value: value.to_owned() };
    let n = crate::bundle::parse_decimal_u128(value).ok_or_else(bad)?;
    u64::try_from(n).map_err(|_| bad())
}

/// Checks that the proof's account, salt and balances form a leaf of the verified tree, at an
/// index that is one of the round's accounts. `manifest_digest` is the verified round's digest
/// when the tree came from an attested round: a version-2 proof must name exactly it.
pub fn verify(
    verified: &VerifiedLiabilities,
    manifest_digest: Option<&[u8; 48]>,
    proof: &InclusionProof,
) -> Result<VerifiedInclusion, InclusionError> {
    let bundle = verified.bundle();
    if let (Some(expected), Some(named)) = (manifest_digest, &proof.manifest_digest) {
        let named = manifest_digest_from_hex(named).ok_or(InclusionError::BadHex { field: "manifest_digest" })?;
        if named != *expected {
            return Err(InclusionError::WrongManifest { proof: hex::encode(named), bundle: hex::encode(expected) });
        }
    }
    let bundle_round = hex::encode(bundle.round_id);
    if proof.round_id != bundle_round {
        return Err(InclusionError::WrongRound { proof: proof.round_id.clone(), bundle: bundle_round });
    }
    let root = element_from_hex(&proof.root).ok_or(InclusionError::BadHex { field: "root" })?;
    if root != bundle.root {
        return Err(InclusionError::WrongRoot);
    }
    if proof.account_id.is_empty() || proof.account_id.len() > MAX_ACCOUNT_ID_BYTES {
        return Err(InclusionError::BadAccountId);
    }
    let salt: [u8; 32] = hex::decode(&proof.salt)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(InclusionError::BadHex { field: "salt" })?;
    let assets_match = proof.balances.len() == bundle.assets.len()
        && proof.balances.iter().zip(&bundle.assets).all(|(b, a)| &b.asset == a);
    if !assets_match {
        return Err(InclusionError::AssetMismatch { expected: bundle.assets.clone() });
    }
    let balances = proof.balances.iter().map(|b| parse_amount(&b.asset, &b.amount)).collect::<Result<Vec<_>, _>>()?;
    if proof.leaf_index >= bundle.leaf_count {
        return Err(InclusionError::IndexOutOfRange { index: proof.leaf_index, leaf_count: bundle.leaf_count });
    }
    let depth = bundle.shape.depth() as usize;
    if proof.path.len() != depth {
        return Err(InclusionError::PathLength { expected: depth, actual: proof.path.len() });
    }
    let path = proof
        .path
        .iter()
        .enumerate()
        .map(|(depth, level)| {
            // Every sibling must parse: one bad entry is an error, never silently dropped.
            let siblings = level
                .iter()
                .map(|h| element_from_hex(h).ok_or(InclusionError::BadSibling { level: depth }))
                .collect::<Result<Vec<Fr>, _>>()?;
            <[Fr; ARITY - 1]>::try_from(siblings).map_err(|s| InclusionError::SiblingCount {
                level: depth,
                expected: ARITY - 1,
                actual: s.len(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let leaf = leaf(account_commitment(&proof.account_id, &Salt(salt)), &balances);
    if root_from_path(leaf, bundle.shape.position(proof.leaf_index), &path) != bundle.root {
        return Err(InclusionError::NotInTree);
    }
    Ok(VerifiedInclusion {
        account_id: proof.account_id.clone(),
        balances: bundle.assets.iter().cloned().zip(balances).collect(),
        leaf_index: proof.leaf_index,
    })
}

/// A path's siblings as hex strings, the form inclusion proofs carry.
pub fn encode_path(path: &[[Fr; ARITY - 1]]) -> Vec<Vec<String>> {
    path.iter().map(|level| level.iter().map(element_to_hex).collect()).collect()
}

/// Longest file name stem produced by [`file_name`] before it falls back to a digest.
const MAX_STEM: usize = 200;

/// A file name for an account's proof, safe on any file system for any id: ASCII letters,
/// digits, `-` and `_` are kept, every other byte becomes `%XX`; names that would be too long
/// become `~` followed by the SHA-256 of the id (`~` never appears otherwise).
pub fn file_name(account_id: &str) -> String {
    let mut stem = String::with_capacity(account_id.len());
    for b in account_id.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            stem.push(char::from(b));
        } else {
            stem.push_str(&format!("%{b:02X}"));
        }
    }
    if stem.is_empty() || stem.len() > MAX_STEM {
        stem = format!("~{}", hex::encode(Sha256::digest(account_id.as_bytes())));
    }
    stem + ".json"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe_and_distinct() {
        assert_eq!(file_name("alice-01"), "alice-01.json");
        assert_eq!(file_name("../etc/passwd"), "%2E%2E%2Fetc%2Fpasswd.json");
        assert_eq!(file_name("a b"), "a%20b.json");
        assert_eq!(file_name("é"), "%C3%A9.json");
        assert_ne!(file_name("a%20b"), file_name("a b"));
        let long = "x".repeat(300);
        assert!(file_name(&long).starts_with('~'));
        assert_eq!(file_name(&long).len(), 1 + 64 + 5);
    }
}
