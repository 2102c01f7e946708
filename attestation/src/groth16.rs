//! Groth16 verification of many proofs under one verifying key at the cost of one pairing per
//! proof plus three, by a random linear combination whose coefficients are derived from a hash of
//! everything being verified (so verification is deterministic and needs no RNG).

use ark_bls12_381::{Bls12_381, Fr, G1Affine, G1Projective};
use ark_ec::{pairing::Pairing, AffineRepr, CurveGroup, VariableBaseMSM};
use ark_ff::Zero;
use ark_groth16::{Proof, VerifyingKey};
use ark_serialize::CanonicalSerialize;
use sha2::{Digest, Sha256};

/// Why a set of proofs was refused.
#[allow(missing_docs)] // fields are named for what they hold
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Groth16Error {
    /// A statement's public-input count differs from the verifying key's.
    #[error("statement {index} has {actual} public inputs, the verifying key expects {expected}")]
    InputCount { index: usize, expected: usize, actual: usize },
    /// The proof of this statement does not verify.
    #[error("proof {index} does not verify")]
    InvalidProof { index: usize },
}

/// One proof and the public inputs it claims.
pub struct Statement<'a> {
    /// The proof.
    pub proof: &'a Proof<Bls12_381>,
    /// Its public inputs, without the leading constant one.
    pub inputs: &'a [Fr],
}

/// Coefficients `r_i`, 128 bits each, from SHA-256 over the key and all statements.
fn coefficients(vk: &VerifyingKey<Bls12_381>, statements: &[Statement<'_>]) -> Vec<Fr> {
    let mut transcript = Sha256::new();
    transcript.update(b"solvency-enclave/groth16-batch/v1\0");
    let mut buf = Vec::new();
    // Serialising valid curve points and field elements into a Vec cannot fail; qed.
    let _ = vk.serialize_compressed(&mut buf);
    for s in statements {
        let _ = s.proof.serialize_compressed(&mut buf);
        let _ = s.inputs.serialize_compressed(&mut buf);
    }
    transcript.update(&buf);
    let seed = transcript.finalize();
    (0..statements.len() as u64)
        .map(|i| {
            let d = Sha256::new().chain_update(seed).chain_update(i.to_le_bytes()).finalize();
            let mut lo = [0u8; 16];
            lo.copy_from_slice(&d[..16]);
            // A zero coefficient would drop a proof from the check.
            Fr::from(u128::from_le_bytes(lo).max(1))
        })
        .collect()
}

fn input_commitment(vk: &VerifyingKey<Bls12_381>, inputs: &[Fr]) -> G1Projective {
    let (first, rest) = vk.gamma_abc_g1.split_first().map_or((G1Affine::zero(), &[][..]), |(f, r)| (*f, r));
    first.into_group() + G1Projective::msm_unchecked(rest, inputs)
}

/// Verifies one proof with the three-pairing Groth16 equation.
pub fn verify_one(vk: &VerifyingKey<Bls12_381>, statement: &Statement<'_>) -> bool {
    if statement.inputs.len() + 1 != vk.gamma_abc_g1.len() {
        return false;
    }
    let ic = input_commitment(vk, statement.inputs);
    // e(A, B) = e(alpha, beta) e(IC, gamma) e(C, delta), as one product with one final exponentiation.
    Bls12_381::multi_pairing(
        [
            statement.proof.a,
            (-ic).into_affine(),
            (-statement.proof.c.into_group()).into_affine(),
            (-vk.alpha_g1.into_group()).into_affine(),
        ],
        [statement.proof.b, vk.gamma_g2, vk.delta_g2, vk.beta_g2],
    )
    .is_zero()
}

/// Verifies every statement. Checks them together; when that fails, checks each alone to name
/// the first bad one.
pub fn verify_batch(vk: &VerifyingKey<Bls12_381>, statements: &[Statement<'_>]) -> Result<(), Groth16Error> {
    let expected = vk.gamma_abc_g1.len().saturating_sub(1);
    for (index, s) in statements.iter().enumerate() {
        if s.inputs.len() != expected {
            return Err(Groth16Error::InputCount { index, expected, actual: s.inputs.len() });
        }
    }
    if statements.is_empty() {
        return Ok(());
    }
    let r = coefficients(vk, statements);
    // sum_i r_i (A_i . B_i) = (sum r_i) alpha.beta + (sum r_i IC_i) . gamma + (sum r_i C_i) . delta
    let r_sum: Fr = r.iter().sum();
    let mut ic_scalars = vec![r_sum];
    for j in 0..expected {
        ic_scalars.push(statements.iter().zip(&r).map(|(s, ri)| s.inputs[j] * ri).sum());
    }
    let ic = G1Projective::msm_unchecked(&vk.gamma_abc_g1, &ic_scalars);
    let c_points: Vec<G1Affine> = statements.iter().map(|s| s.proof.c).collect();
    let c = G1Projective::msm_unchecked(&c_points, &r);
    let a_scaled: Vec<G1Affine> =
        G1Projective::normalize_batch(&statements.iter().zip(&r).map(|(s, ri)| s.proof.a * ri).collect::<Vec<_>>());
    let mut g1: Vec<G1Affine> = a_scaled;
    let mut g2: Vec<_> = statements.iter().map(|s| s.proof.b).collect();
    g1.push((-ic).into_affine());
    g2.push(vk.gamma_g2);
    g1.push((-c).into_affine());
    g2.push(vk.delta_g2);
    g1.push((vk.alpha_g1 * -r_sum).into_affine());
    g2.push(vk.beta_g2);
    if Bls12_381::multi_pairing(g1, g2).is_zero() {
        return Ok(());
    }
    // Every proof passing alone while the combination fails has negligible probability; the
    // batch is refused either way.
    let index = statements.iter().position(|s| !verify_one(vk, s)).unwrap_or(0);
    Err(Groth16Error::InvalidProof { index })
}
