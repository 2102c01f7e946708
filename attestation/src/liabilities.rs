//! Verification of a liabilities bundle: the sum chain from the round's start to the published
//! totals, every batch proof (batched), and the tree above the batch roots. Success yields a
//! [`VerifiedLiabilities`], obtainable only here.

use ark_bls12_381::Fr;
use ark_serialize::CanonicalSerialize;
use sha2::{Digest, Sha256};

use crate::bundle::Bundle;
use crate::commitment::{chain_end, chain_start};
use crate::error::VerifyError;
use crate::groth16::{verify_batch, Statement};

/// Public inputs of one batch proof, in order (spec §7).
pub fn batch_public_inputs(prev_commitment: Fr, next_commitment: Fr, batch_root: Fr) -> [Fr; 3] {
    [prev_commitment, next_commitment, batch_root]
}

/// SHA-256 of a verifying key's compressed encoding, the handle by which keys are pinned.
pub fn verifying_key_sha256(vk: &ark_groth16::VerifyingKey<ark_bls12_381::Bls12_381>) -> [u8; 32] {
    let mut bytes = Vec::new();
    // Serialising valid points into a Vec cannot fail; qed.
    let _ = vk.serialize_compressed(&mut bytes);
    Sha256::digest(&bytes).into()
}

/// A bundle whose proofs, chain, totals and root all verified.
#[derive(Clone, Debug)]
pub struct VerifiedLiabilities {
    bundle: Bundle,
    verifying_key_sha256: [u8; 32],
}

impl VerifiedLiabilities {
    /// The verified bundle.
    pub fn bundle(&self) -> &Bundle {
        &self.bundle
    }

    /// SHA-256 of the verifying key the proofs verified under.
    pub fn verifying_key_sha256(&self) -> [u8; 32] {
        self.verifying_key_sha256
    }
}

/// Verifies a decoded bundle. `expected_vk_sha256` pins the verifying key; without it the proofs
/// are only as trustworthy as the key's source (attested setup comes with the enclave).
pub fn verify(bundle: Bundle, expected_vk_sha256: Option<[u8; 32]>) -> Result<VerifiedLiabilities, VerifyError> {
    let verifying_key_sha256 = verifying_key_sha256(&bundle.verifying_key);
    if let Some(expected) = expected_vk_sha256 {
        if expected != verifying_key_sha256 {
            return Err(VerifyError::VerifyingKeyMismatch {
                expected: hex::encode(expected),
                actual: hex::encode(verifying_key_sha256),
            });
        }
    }
    if bundle.verifying_key.gamma_abc_g1.len() != 4 {
        return Err(VerifyError::VerifyingKeyShape {
            actual: bundle.verifying_key.gamma_abc_g1.len().saturating_sub(1),
        });
    }
    match bundle.batches.last() {
        Some(last) if last.sum_commitment == chain_end(&bundle.totals) => {}
        _ => return Err(VerifyError::TotalsMismatch),
    }
    let mut prev = chain_start(&bundle.context());
    let inputs: Vec<[Fr; 3]> = bundle
        .batches
        .iter()
        .map(|b| {
            let inputs = batch_public_inputs(prev, b.sum_commitment, b.root);
            prev = b.sum_commitment;
            inputs
        })
        .collect();
    let statements: Vec<Statement<'_>> =
        bundle.batches.iter().zip(&inputs).map(|(b, i)| Statement { proof: &b.proof, inputs: i }).collect();
    verify_batch(&bundle.verifying_key, &statements)?;
    let top = bundle.shape.build_top(bundle.batches.iter().map(|b| b.root).collect());
    if top.root() != bundle.root {
        return Err(VerifyError::RootMismatch);
    }
    Ok(VerifiedLiabilities { bundle, verifying_key_sha256 })
}
