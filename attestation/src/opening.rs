//! The solvency opening of private mode (spec §13), verifier side: a Groth16 proof that the
//! running-sum chain's last commitment `C_N`, blinded by a secret `r_N`, opens to totals
//! `T_1..T_K` below 2^128, each equal to a published total `t_k` (a public asset, `p_k = 0`) or
//! at most a public bound `t_k`, the asset's reserves clamped to `2^128 − 1` (a private asset,
//! `p_k = 1`). The circuit is `enclave::circuit::opening`.
//!
//! Public inputs, in order: `C_N, t_1..t_K, p_1..p_K` ([`public_inputs`]).

use alloy_primitives::U256;
use ark_bls12_381::{Bls12_381, Fr};
use ark_ff::{BigInteger, One, PrimeField, Zero};
use ark_groth16::{Proof, VerifyingKey};
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize};

use crate::bundle::{MAX_ASSETS, PROOF_BYTES};
use crate::commitment::sum_commitment;
use crate::groth16::{verify_one, Statement};

/// Bits of every total and every bound: both lie in `[0, 2^128)`.
pub const BOUND_BITS: u32 = 128;

/// Why an opening proof, or the statement it is checked against, was refused.
#[allow(missing_docs)] // fields are named for what they hold
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpeningError {
    /// No assets, or more than a round may have.
    #[error("{count} assets; between 1 and {limit} are allowed")]
    AssetCount { count: usize, limit: usize },
    /// The bounds and the privacy flags are not one per asset.
    #[error("{bounds} bounds but {flags} privacy flags; there must be one of each per asset")]
    LengthMismatch { bounds: usize, flags: usize },
    /// A bound `t_k ≥ 2^128`: not a total, and not a clamped reserve figure (spec §13).
    #[error("bound {index} is not below 2^128")]
    BoundTooLarge { index: usize },
    /// The verifying key is not for an opening statement over this many assets.
    #[error("the verifying key takes {actual} public inputs; the opening over {assets} assets has {expected}")]
    VerifyingKeyShape { assets: usize, expected: usize, actual: usize },
    /// The proof's bytes are not [`PROOF_BYTES`] long.
    #[error("the proof is {actual} bytes, expected {expected}")]
    ProofLength { expected: usize, actual: usize },
    /// The proof's points are malformed, off the curve or outside the subgroup.
    #[error("the proof is malformed or has points off the curve or outside the subgroup")]
    ProofEncoding,
    /// The proof does not verify for this commitment, these bounds and these flags.
    #[error("the opening proof does not verify for this commitment, these bounds and these flags")]
    InvalidProof,
}

/// The bound of a private asset: its reserves in base units, clamped to `2^128 − 1`. Totals are
/// below 2^128, so the clamp never refuses an honest opening, and every statement has one
/// encoding.
pub fn reserves_bound(reserves: U256) -> u128 {
    u128::try_from(reserves).unwrap_or(u128::MAX)
}

/// `C_N = H(tag(SUM, K+1), r_N, T_1..T_K)`: the chain end under a secret blinder (spec §13). With
/// `blinder = 0` it is [`crate::commitment::chain_end`], the public-mode chain end.
pub fn chain_end_blinded(blinder: Fr, totals: &[u128]) -> Fr {
    let totals: Vec<Fr> = totals.iter().map(|&t| Fr::from(t)).collect();
    sum_commitment(blinder, &totals)
}

/// Whether `x`, as an integer in `[0, p)`, is below 2^128.
fn below_2_pow_128(x: &Fr) -> bool {
    let bits = x.into_bigint();
    (BOUND_BITS as usize..Fr::MODULUS_BIT_SIZE as usize).all(|i| !bits.get_bit(i))
}

/// The public inputs of the opening proof, in order: `C_N, t_1..t_K, p_1..p_K` (`p_k` is 1 for a
/// private asset). Refuses an asset count outside `1..=64`, bounds and flags of different
/// lengths, and any bound `t_k ≥ 2^128` (spec §13: the soundness argument needs `t_k < 2^128`).
pub fn public_inputs(c_n: Fr, t: &[Fr], p: &[bool]) -> Result<Vec<Fr>, OpeningError> {
    if t.len() != p.len() {
        return Err(OpeningError::LengthMismatch { bounds: t.len(), flags: p.len() });
    }
    if !(1..=MAX_ASSETS).contains(&t.len()) {
        return Err(OpeningError::AssetCount { count: t.len(), limit: MAX_ASSETS });
    }
    if let Some(index) = t.iter().position(|x| !below_2_pow_128(x)) {
        return Err(OpeningError::BoundTooLarge { index });
    }
    let mut inputs = Vec::with_capacity(1 + 2 * t.len());
    inputs.push(c_n);
    inputs.extend_from_slice(t);
    inputs.extend(p.iter().map(|&private| if private { Fr::one() } else { Fr::zero() }));
    Ok(inputs)
}

/// Verifies an opening proof for `C_N`, bounds `t` and flags `p` (`true`: the asset is private)
/// under `vk`, which must take exactly `1 + 2K` public inputs. The caller pins `vk` (compare
/// [`verifying_key_sha256`] with a trusted value) and decides what `t` and `p` must be: for a
/// public asset the published total, for a private one [`reserves_bound`] of its reserves.
pub fn verify(
    vk: &VerifyingKey<Bls12_381>,
    c_n: Fr,
    t: &[Fr],
    p: &[bool],
    proof: &Proof<Bls12_381>,
) -> Result<(), OpeningError> {
    let inputs = public_inputs(c_n, t, p)?;
    let actual = vk.gamma_abc_g1.len().saturating_sub(1);
    if actual != inputs.len() {
        return Err(OpeningError::VerifyingKeyShape { assets: t.len(), expected: inputs.len(), actual });
    }
    if verify_one(vk, &Statement { proof, inputs: &inputs }) {
        Ok(())
    } else {
        Err(OpeningError::InvalidProof)
    }
}

/// The proof's canonical bytes: arkworks compressed `A ∈ G1` (48), `B ∈ G2` (96), `C ∈ G1` (48),
/// as the batch proofs are encoded (spec §8.1).
pub fn proof_to_bytes(proof: &Proof<Bls12_381>) -> [u8; PROOF_BYTES] {
    let mut out = [0u8; PROOF_BYTES];
    // A proof's three points always compress to exactly PROOF_BYTES bytes; qed.
    let _ = proof.serialize_compressed(&mut out[..]);
    out
}

/// Decodes [`proof_to_bytes`]'s output: exactly [`PROOF_BYTES`] bytes, points on the curve and in
/// the prime-order subgroup.
pub fn proof_from_bytes(bytes: &[u8]) -> Result<Proof<Bls12_381>, OpeningError> {
    if bytes.len() != PROOF_BYTES {
        return Err(OpeningError::ProofLength { expected: PROOF_BYTES, actual: bytes.len() });
    }
    Proof::deserialize_compressed(bytes).map_err(|_| OpeningError::ProofEncoding)
}

/// SHA-256 of the verifying key's compressed encoding, the handle by which it is pinned (the
/// same definition as the batch key's, [`crate::liabilities::verifying_key_sha256`]).
pub fn verifying_key_sha256(vk: &VerifyingKey<Bls12_381>) -> [u8; 32] {
    crate::liabilities::verifying_key_sha256(vk)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commitment::{chain_end, element_to_hex};

    /// The spec, whose §13 lists the vectors [`documented_vectors_match`] recomputes.
    const SPEC: &str = include_str!("../../docs/commitment-spec.md");

    #[test]
    fn documented_vectors_match() {
        let two = element_to_hex(&chain_end_blinded(Fr::from(7u64), &[1000, 250]));
        let one = element_to_hex(&chain_end_blinded(Fr::from(7u64), &[1000]));
        let edge = element_to_hex(&chain_end_blinded(-Fr::one(), &[0, u128::MAX]));
        assert_eq!(two, "7d49a4c4abdbf266d60cb3e4cf2098d36977a779ad4b8dc139779caff8a3ba60");
        assert_eq!(one, "b7e11220262280c5167110577b19f93488a7e16f08020a98a570e67cdd59556f");
        assert_eq!(edge, "887f327f2af5f07888fbcb69d7c6542633a079384ebdc02a985ab96f30936b06");
        for (r, totals, hex) in [("7", "(1000)", one), ("7", "(1000, 250)", two), ("p − 1", "(0, 2^128 − 1)", edge)]
        {
            let row = format!("| {r} | {totals} | `{hex}` |");
            assert!(SPEC.contains(&row), "spec §13 lacks the row {row}");
        }
    }

    #[test]
    fn blinder_zero_is_the_public_chain_end() {
        assert_eq!(chain_end_blinded(Fr::zero(), &[1000, 250]), chain_end(&[1000, 250]));
        assert_ne!(chain_end_blinded(Fr::from(7u64), &[1000, 250]), chain_end(&[1000, 250]));
    }

    #[test]
    fn public_inputs_order_and_refusals() {
        let c = Fr::from(99u64);
        let t = [Fr::from(1u64), Fr::from(2u64)];
        let inputs = public_inputs(c, &t, &[true, false]).unwrap();
        assert_eq!(inputs, vec![c, t[0], t[1], Fr::one(), Fr::zero()]);
        assert_eq!(public_inputs(c, &t, &[true]), Err(OpeningError::LengthMismatch { bounds: 2, flags: 1 }));
        assert_eq!(public_inputs(c, &[], &[]), Err(OpeningError::AssetCount { count: 0, limit: MAX_ASSETS }));
        let many = vec![Fr::zero(); MAX_ASSETS + 1];
        assert_eq!(
            public_inputs(c, &many, &[false; MAX_ASSETS + 1]),
            Err(OpeningError::AssetCount { count: MAX_ASSETS + 1, limit: MAX_ASSETS })
        );
        assert!(public_inputs(c, &many[1..], &[false; MAX_ASSETS]).is_ok());
    }

    #[test]
    fn bounds_of_2_pow_128_or_more_are_refused() {
        let c = Fr::from(99u64);
        let max = Fr::from(u128::MAX);
        assert!(public_inputs(c, &[max], &[true]).is_ok(), "2^128 - 1 is a bound");
        for big in [max + Fr::one(), -Fr::one(), Fr::from(2u64) * max] {
            assert_eq!(
                public_inputs(c, &[Fr::one(), big], &[false, true]),
                Err(OpeningError::BoundTooLarge { index: 1 })
            );
        }
    }

    #[test]
    fn reserves_are_clamped_below_2_pow_128() {
        assert_eq!(reserves_bound(U256::ZERO), 0);
        assert_eq!(reserves_bound(U256::from(u128::MAX)), u128::MAX);
        assert_eq!(reserves_bound(U256::from(u128::MAX) + U256::from(1u8)), u128::MAX);
        assert_eq!(reserves_bound(U256::MAX), u128::MAX);
    }

    #[test]
    fn proof_bytes_are_strict() {
        assert_eq!(
            proof_from_bytes(&[0u8; PROOF_BYTES - 1]),
            Err(OpeningError::ProofLength { expected: PROOF_BYTES, actual: PROOF_BYTES - 1 })
        );
        assert_eq!(
            proof_from_bytes(&[0u8; PROOF_BYTES + 1]),
            Err(OpeningError::ProofLength { expected: PROOF_BYTES, actual: PROOF_BYTES + 1 })
        );
        assert_eq!(proof_from_bytes(&[0xff; PROOF_BYTES]), Err(OpeningError::ProofEncoding));
        let proof = Proof::<Bls12_381>::default();
        assert_eq!(proof_from_bytes(&proof_to_bytes(&proof)), Ok(proof));
    }

    #[test]
    fn a_key_for_another_statement_is_refused_before_pairing() {
        let vk = VerifyingKey::<Bls12_381> { gamma_abc_g1: vec![Default::default(); 4], ..Default::default() };
        let c = Fr::from(1u64);
        assert_eq!(
            verify(&vk, c, &[Fr::one(), Fr::one()], &[false, true], &Proof::default()),
            Err(OpeningError::VerifyingKeyShape { assets: 2, expected: 5, actual: 3 })
        );
        assert_eq!(
            verify(&vk, c, &[-Fr::one()], &[true], &Proof::default()),
            Err(OpeningError::BoundTooLarge { index: 0 })
        );
    }
}
