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
use crate::opening::OpeningError;

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

/// What a private-mode bundle's hidden totals are checked against (spec §13).
#[derive(Clone, Copy, Debug)]
pub struct OpeningCheck<'a> {
    /// SHA-256 of the opening's verifying key, as the setup made it.
    pub verifying_key_sha256: [u8; 32],
    /// Per asset, in the bundle's order: the bound a hidden total must not exceed (the asset's
    /// reserves, clamped by [`crate::opening::reserves_bound`]); ignored for published totals.
    pub bounds: &'a [u128],
}

/// Verifies a decoded bundle. `expected_vk_sha256` pins the verifying key; without it the proofs
/// are only as trustworthy as the key's source (attested setup comes with the enclave). A bundle
/// with hidden totals is refused ([`VerifyError::HiddenTotals`]); see [`verify_private`].
pub fn verify(bundle: Bundle, expected_vk_sha256: Option<[u8; 32]>) -> Result<VerifiedLiabilities, VerifyError> {
    verify_private(bundle, expected_vk_sha256, None)
}

/// [`verify`], where hidden totals are accepted if the opening proof shows each at most its bound.
pub fn verify_private(
    bundle: Bundle,
    expected_vk_sha256: Option<[u8; 32]>,
    opening: Option<OpeningCheck<'_>>,
) -> Result<VerifiedLiabilities, VerifyError> {
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
    let last = bundle.batches.last().ok_or(VerifyError::TotalsMismatch)?.sum_commitment;
    check_chain_end(&bundle, last, opening)?;
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

/// The last sum commitment opens to the published totals (spec §6), or, in private mode, the
/// opening proof shows it opens to totals equal to the published ones and at most the bounds for
/// the hidden ones (spec §13).
fn check_chain_end(bundle: &Bundle, last: Fr, opening: Option<OpeningCheck<'_>>) -> Result<(), VerifyError> {
    let Some(proof) = &bundle.opening else {
        let totals: Option<Vec<u128>> = bundle.totals.iter().copied().collect();
        return match totals {
            Some(totals) if last == chain_end(&totals) => Ok(()),
            Some(_) => Err(VerifyError::TotalsMismatch),
            None => Err(VerifyError::HiddenTotals),
        };
    };
    let check = opening.ok_or(VerifyError::HiddenTotals)?;
    let actual = verifying_key_sha256(&proof.verifying_key);
    if actual != check.verifying_key_sha256 {
        return Err(VerifyError::OpeningKeyMismatch {
            expected: hex::encode(check.verifying_key_sha256),
            actual: hex::encode(actual),
        });
    }
    if check.bounds.len() != bundle.totals.len() {
        return Err(VerifyError::Opening(OpeningError::LengthMismatch {
            bounds: check.bounds.len(),
            flags: bundle.totals.len(),
        }));
    }
    let t: Vec<Fr> = bundle.totals.iter().zip(check.bounds).map(|(total, bound)| Fr::from(total.unwrap_or(*bound))).collect();
    let p: Vec<bool> = bundle.totals.iter().map(Option::is_none).collect();
    crate::opening::verify(&proof.verifying_key, last, &t, &p, &proof.proof).map_err(VerifyError::Opening)
}
