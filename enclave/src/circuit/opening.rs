//! The solvency opening of private mode (spec §13): given public `C_N`, bounds `t_1..t_K` and
//! flags `p_1..p_K`, the prover knows a blinder `r_N` and totals `T_1..T_K` with
//! `C_N = H(tag(SUM, K+1), r_N, T)`, every `T_k ∈ [0, 2^128)`, every `p_k` boolean, and with
//! `d_k = t_k − T_k`: `(1 − p_k)·d_k = 0` and `p_k·d_k ∈ [0, 2^128)`.
//!
//! The last item is enforced as `d_k ∈ [0, 2^128)`, which is equivalent given the other two: for
//! `p_k = 1`, `p_k·d_k = d_k`; for `p_k = 0`, `d_k = 0`, in range either way. Since `T_k < 2^128`
//! and the verifier refuses `t_k ≥ 2^128` (`attestation::opening::public_inputs`), `d_k` in range
//! means `t_k ≥ T_k` as integers: if `t_k < T_k`, then `d_k = p − (T_k − t_k) > p − 2^128 > 2^128`.
//!
//! The verifier side is `attestation::opening`.

use ark_bls12_381::{Bls12_381, Fr};
use ark_ff::{One, Zero};
use ark_groth16::{Groth16, Proof, ProvingKey, VerifyingKey};
use ark_relations::gr1cs::{ConstraintSynthesizer, ConstraintSystemRef, SynthesisError};
use attestation::bundle::MAX_ASSETS;
use attestation::commitment::kind;
use attestation::opening::chain_end_blinded;
use attestation::poseidon::domain_tag;
use rand::{CryptoRng, RngCore};

use super::backend::{enforce_equal, Backend, Lc, R1csBackend, WitnessBackend};
use super::batch::{range_check, SUM_BITS};
use super::poseidon::hash;
use crate::keys::{synthesizer, CircuitSize};

/// Why an opening could not be set up or proven.
#[allow(missing_docs)] // fields are named for what they hold
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpeningProveError {
    /// No assets, or more than a round may have.
    #[error("{assets} assets; between 1 and {limit} are allowed")]
    AssetCount { assets: usize, limit: usize },
    /// The assignment's totals, bounds or flags are not one per asset of the keys.
    #[error("the keys are for {assets} assets, the assignment has {totals} totals, {bounds} bounds and {flags} flags")]
    AssignmentShape { assets: usize, totals: usize, bounds: usize, flags: usize },
    /// The witness violates a constraint: a total above its bound, a public total that differs
    /// from the published one, or a commitment that does not open.
    #[error("constraint {constraint} ({label}) is not satisfied")]
    Unsatisfied { constraint: usize, label: &'static str },
    /// The witness run produced a different number of constraints than setup: a bug.
    #[error("witness generation produced {actual} constraints, setup had {expected}; this is a bug")]
    ConstraintCount { expected: usize, actual: usize },
    /// arkworks refused (setup or proving).
    #[error("Groth16: {0}")]
    Groth16(String),
}

/// The public inputs of the opening, field-encoded, in the order they are allocated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpeningPublic {
    /// `C_N`, the chain's last commitment.
    pub commitment: Fr,
    /// `t_k`: a public asset's total, or a private asset's reserves clamped to `2^128 − 1`.
    pub bounds: Vec<Fr>,
    /// `p_k`: 1 for a private asset, 0 for a public one.
    pub flags: Vec<Fr>,
}

impl OpeningPublic {
    /// `[C_N, t_1..t_K, p_1..p_K]`, as `attestation::opening::public_inputs` orders them.
    pub fn inputs(&self) -> Vec<Fr> {
        let mut out = Vec::with_capacity(1 + self.bounds.len() + self.flags.len());
        out.push(self.commitment);
        out.extend_from_slice(&self.bounds);
        out.extend_from_slice(&self.flags);
        out
    }
}

/// Everything the prover supplies for the opening.
#[derive(Clone, PartialEq, Eq)]
pub struct OpeningAssignment {
    /// The public inputs.
    pub public: OpeningPublic,
    /// `r_N`, the chain end's secret blinder.
    pub blinder: Fr,
    /// `T_k`, the liabilities totals.
    pub totals: Vec<Fr>,
}

impl std::fmt::Debug for OpeningAssignment {
    // The blinder and the private totals are the secrets private mode exists to keep.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpeningAssignment").field("public", &self.public).finish_non_exhaustive()
    }
}

impl OpeningAssignment {
    /// The honest assignment: `C_N` computed from `blinder` and `totals`, the bounds and flags as
    /// given (`private[k]`: asset `k`'s total stays secret and `bounds[k]` is its clamped
    /// reserves; otherwise `bounds[k]` is its published total). Whether the totals respect the
    /// bounds is the circuit's to decide, in [`prove`].
    pub fn new(blinder: Fr, totals: &[u128], bounds: &[u128], private: &[bool]) -> Result<Self, OpeningProveError> {
        let assets = totals.len();
        if bounds.len() != assets || private.len() != assets {
            return Err(OpeningProveError::AssignmentShape {
                assets,
                totals: assets,
                bounds: bounds.len(),
                flags: private.len(),
            });
        }
        check_assets(assets)?;
        Ok(Self {
            public: OpeningPublic {
                commitment: chain_end_blinded(blinder, totals),
                bounds: bounds.iter().map(|&t| Fr::from(t)).collect(),
                flags: private.iter().map(|&p| if p { Fr::one() } else { Fr::zero() }).collect(),
            },
            blinder,
            totals: totals.iter().map(|&t| Fr::from(t)).collect(),
        })
    }

    /// An all-zero assignment for `assets` assets, for setup and constraint counting.
    pub fn placeholder(assets: usize) -> Self {
        Self {
            public: OpeningPublic {
                commitment: Fr::zero(),
                bounds: vec![Fr::zero(); assets],
                flags: vec![Fr::zero(); assets],
            },
            blinder: Fr::zero(),
            totals: vec![Fr::zero(); assets],
        }
    }

    fn check_shape(&self, assets: usize) -> Result<(), OpeningProveError> {
        let (totals, bounds, flags) = (self.totals.len(), self.public.bounds.len(), self.public.flags.len());
        if totals == assets && bounds == assets && flags == assets {
            Ok(())
        } else {
            Err(OpeningProveError::AssignmentShape { assets, totals, bounds, flags })
        }
    }
}

fn check_assets(assets: usize) -> Result<(), OpeningProveError> {
    if (1..=MAX_ASSETS).contains(&assets) {
        Ok(())
    } else {
        Err(OpeningProveError::AssetCount { assets, limit: MAX_ASSETS })
    }
}

/// Generates the opening circuit for `assets` assets into `cs`. The assignment must have
/// `assets` totals, bounds and flags; all public inputs are allocated before any witness.
pub fn synthesize<B: Backend<Fr>>(cs: &mut B, assets: usize, a: &OpeningAssignment) {
    let commitment = cs.input(a.public.commitment);
    let bounds: Vec<Lc<Fr>> = a.public.bounds.iter().map(|t| cs.input(*t)).collect();
    let flags: Vec<Lc<Fr>> = a.public.flags.iter().map(|p| cs.input(*p)).collect();

    // 1. C_N opens to (r_N, T).
    let mut opening = vec![cs.witness(a.blinder)];
    opening.extend(a.totals.iter().map(|t| cs.witness(*t)));
    let opened = hash(cs, domain_tag(kind::SUM, assets + 1), &opening);
    enforce_equal(cs, &opened, &commitment, "opening/commitment");

    let zero = Lc::constant(Fr::zero());
    let one = Lc::constant(Fr::one());
    for ((total, bound), flag) in opening[1..].iter().zip(&bounds).zip(&flags) {
        // 2. T_k ∈ [0, 2^128).
        range_check(cs, total, SUM_BITS, "opening/total-range");
        // 4. p_k boolean.
        let public = one.sub(flag);
        cs.enforce(flag, &public, &zero, "opening/flag-boolean");
        // 3. (1 − p_k)·d_k = 0, and d_k ∈ [0, 2^128) (equivalent to p_k·d_k ∈ [0, 2^128), see the
        //    module documentation).
        let difference = bound.sub(total);
        cs.enforce(&public, &difference, &zero, "opening/public-total");
        range_check(cs, &difference, SUM_BITS, "opening/private-bound");
    }
}

/// The opening circuit as an arkworks [`ConstraintSynthesizer`], for setup and proving with
/// arkworks' own APIs. It records the circuit with [`synthesize`] and replays it.
#[derive(Clone, Debug)]
pub struct OpeningCircuit {
    /// Assets (K).
    pub assets: usize,
    /// The assignment ([`OpeningAssignment::placeholder`] for setup).
    pub assignment: OpeningAssignment,
}

impl OpeningCircuit {
    /// Records the circuit's constraints and assignment.
    pub fn record(&self) -> R1csBackend<Fr> {
        let mut cs = R1csBackend::default();
        synthesize(&mut cs, self.assets, &self.assignment);
        cs
    }
}

impl ConstraintSynthesizer<Fr> for OpeningCircuit {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> Result<(), SynthesisError> {
        synthesizer(&self.record()).generate_constraints(cs)
    }
}

/// Sizes of the opening circuit for `assets` assets (counted in witness mode; any count is
/// counted, [`setup`] refuses those outside `1..=64`).
pub fn circuit_size(assets: usize) -> CircuitSize {
    let mut cs = WitnessBackend::<Fr>::default();
    synthesize(&mut cs, assets, &OpeningAssignment::placeholder(assets));
    CircuitSize { constraints: cs.num_constraints, inputs: cs.inputs.len(), witnesses: cs.witnesses.len() }
}

/// Proving material for the opening over a fixed number of assets.
pub struct OpeningKeys {
    /// Assets (K) the keys were made for.
    pub assets: usize,
    /// The Groth16 proving key (it contains the verifying key).
    pub proving_key: ProvingKey<Bls12_381>,
    /// Sizes of the circuit.
    pub size: CircuitSize,
}

impl OpeningKeys {
    /// The verifying key, which `attestation::opening::verify` takes.
    pub fn verifying_key(&self) -> &VerifyingKey<Bls12_381> {
        &self.proving_key.vk
    }
}

/// Runs a fresh circuit-specific Groth16 setup of the opening over `assets` assets. As for the
/// batch keys, whoever runs it must be trusted to forget the toxic waste.
pub fn setup<R: RngCore + CryptoRng>(assets: usize, rng: &mut R) -> Result<OpeningKeys, OpeningProveError> {
    check_assets(assets)?;
    let circuit = OpeningCircuit { assets, assignment: OpeningAssignment::placeholder(assets) };
    let proving_key = Groth16::<Bls12_381>::generate_random_parameters_with_reduction(circuit, rng)
        .map_err(|e| OpeningProveError::Groth16(e.to_string()))?;
    Ok(OpeningKeys { assets, proving_key, size: circuit_size(assets) })
}

/// Checks every constraint on `assignment` natively, naming the first that fails.
pub fn check(keys: &OpeningKeys, assignment: &OpeningAssignment) -> Result<(), OpeningProveError> {
    assignment.check_shape(keys.assets)?;
    let mut cs = WitnessBackend::with_capacity(keys.size.witnesses);
    synthesize(&mut cs, keys.assets, assignment);
    if let Some(u) = cs.unsatisfied {
        return Err(OpeningProveError::Unsatisfied { constraint: u.index, label: u.label });
    }
    if cs.num_constraints != keys.size.constraints {
        return Err(OpeningProveError::ConstraintCount { expected: keys.size.constraints, actual: cs.num_constraints });
    }
    Ok(())
}

/// Proves the opening. Refuses (without proving) an assignment of the wrong shape or one that
/// violates a constraint: a private total above its bound, a public total that differs from the
/// published one. Build the assignment with [`OpeningAssignment::new`]; its `public` part is what
/// the verifier is given.
pub fn prove<R: RngCore + CryptoRng>(
    keys: &OpeningKeys,
    assignment: &OpeningAssignment,
    rng: &mut R,
) -> Result<Proof<Bls12_381>, OpeningProveError> {
    check(keys, assignment)?;
    let circuit = OpeningCircuit { assets: keys.assets, assignment: assignment.clone() };
    Groth16::<Bls12_381>::create_random_proof_with_reduction(circuit, &keys.proving_key, rng)
        .map_err(|e| OpeningProveError::Groth16(e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};

    use ark_ff::Field;
    use attestation::opening::{proof_from_bytes, proof_to_bytes, verify, OpeningError};
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;
    use crate::keys::arkworks_satisfied;

    const TWO_POW_128_MINUS_1: u128 = u128::MAX;

    fn rng(seed: u64) -> StdRng {
        StdRng::seed_from_u64(seed)
    }

    /// Keys per asset count, made once per test binary.
    fn keys(assets: usize) -> Arc<OpeningKeys> {
        static CACHE: OnceLock<Mutex<HashMap<usize, Arc<OpeningKeys>>>> = OnceLock::new();
        let mut map = CACHE.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
        map.entry(assets).or_insert_with(|| Arc::new(setup(assets, &mut rng(assets as u64)).unwrap())).clone()
    }

    /// The first violated constraint's label, after checking arkworks agrees.
    fn violated(a: &OpeningAssignment) -> Option<&'static str> {
        let recorded = OpeningCircuit { assets: a.totals.len(), assignment: a.clone() }.record();
        let ours = recorded.first_unsatisfied();
        assert_eq!(arkworks_satisfied(&recorded).unwrap(), ours.is_none(), "arkworks disagrees with our recorder");
        ours.map(|u| u.label)
    }

    /// A cheating witness: field-valued totals, bounds and flags, with `C_N` recomputed from
    /// the blinder and totals so that only the constraint under test can stop it.
    fn cheat(blinder: Fr, totals: &[Fr], bounds: &[Fr], flags: &[Fr]) -> OpeningAssignment {
        OpeningAssignment {
            public: OpeningPublic {
                commitment: attestation::commitment::sum_commitment(blinder, totals),
                bounds: bounds.to_vec(),
                flags: flags.to_vec(),
            },
            blinder,
            totals: totals.to_vec(),
        }
    }

    fn verify_public(keys: &OpeningKeys, public: &OpeningPublic, proof: &Proof<Bls12_381>) -> Result<(), OpeningError> {
        let private: Vec<bool> = public.flags.iter().map(|p| p.is_one()).collect();
        verify(keys.verifying_key(), public.commitment, &public.bounds, &private, proof)
    }

    /// Proves an honest assignment, checks the proof verifies (also after a round trip through
    /// its bytes) and returns it.
    fn prove_and_verify(a: &OpeningAssignment, seed: u64) -> Proof<Bls12_381> {
        let keys = keys(a.totals.len());
        let proof = prove(&keys, a, &mut rng(seed)).unwrap();
        assert_eq!(verify_public(&keys, &a.public, &proof), Ok(()));
        let decoded = proof_from_bytes(&proof_to_bytes(&proof)).unwrap();
        assert_eq!(verify_public(&keys, &a.public, &decoded), Ok(()));
        proof
    }

    #[test]
    fn one_asset_public_and_private_are_proven() {
        let public = OpeningAssignment::new(Fr::from(11u64), &[1000], &[1000], &[false]).unwrap();
        assert_eq!(violated(&public), None);
        prove_and_verify(&public, 1);
        let private = OpeningAssignment::new(Fr::from(12u64), &[1000], &[5000], &[true]).unwrap();
        assert_eq!(violated(&private), None);
        prove_and_verify(&private, 2);
    }

    #[test]
    fn three_assets_mixed_are_proven() {
        // Public BTC, private ETH below its reserves, private USDC exactly at its reserves
        // clamped from above 2^128.
        let totals = [150_000_000, 7_000_000_000_000_000_000, TWO_POW_128_MINUS_1];
        let bounds = [150_000_000, 9_000_000_000_000_000_000, TWO_POW_128_MINUS_1];
        let a = OpeningAssignment::new(Fr::from(0xdead_beefu64), &totals, &bounds, &[false, true, true]).unwrap();
        assert_eq!(violated(&a), None);
        prove_and_verify(&a, 3);
        let all_private = OpeningAssignment::new(Fr::from(5u64), &[0, 1, 2], &[0, 1, 3], &[true, true, true]).unwrap();
        prove_and_verify(&all_private, 4);
    }

    #[test]
    fn private_total_above_its_bound_is_refused() {
        let (t, r) = (Fr::from(1000u64), Fr::from(1001u64));
        let a = cheat(Fr::from(3u64), &[r], &[t], &[Fr::one()]);
        assert_eq!(violated(&a), Some("opening/private-bound"));
        let honest = OpeningAssignment::new(Fr::from(3u64), &[1001], &[1000], &[true]).unwrap();
        let err = prove(&keys(1), &honest, &mut rng(5)).unwrap_err();
        assert!(matches!(err, OpeningProveError::Unsatisfied { label: "opening/private-bound", .. }), "{err}");
        // Far above, and at the top of the range with a bound of zero.
        let a = cheat(Fr::from(3u64), &[Fr::from(TWO_POW_128_MINUS_1)], &[Fr::zero()], &[Fr::one()]);
        assert_eq!(violated(&a), Some("opening/private-bound"));
    }

    #[test]
    fn private_total_equal_to_its_bound_is_accepted() {
        let a = OpeningAssignment::new(Fr::from(3u64), &[1000, 0], &[1000, 0], &[true, true]).unwrap();
        assert_eq!(violated(&a), None);
        prove_and_verify(&a, 6);
    }

    #[test]
    fn public_total_other_than_the_published_one_is_refused() {
        for liability in [999u64, 1001] {
            let a = cheat(Fr::from(3u64), &[Fr::from(liability)], &[Fr::from(1000u64)], &[Fr::zero()]);
            assert_eq!(violated(&a), Some("opening/public-total"), "T = {liability}");
        }
        let honest = OpeningAssignment::new(Fr::from(3u64), &[999, 5], &[1000, 5], &[false, true]).unwrap();
        let err = prove(&keys(2), &honest, &mut rng(7)).unwrap_err();
        assert!(matches!(err, OpeningProveError::Unsatisfied { label: "opening/public-total", .. }), "{err}");
    }

    #[test]
    fn a_commitment_under_another_blinder_is_refused() {
        let mut a = OpeningAssignment::new(Fr::from(7u64), &[1000, 250], &[1000, 5000], &[false, true]).unwrap();
        a.blinder = Fr::from(8u64);
        assert_eq!(violated(&a), Some("opening/commitment"));
        let mut a = OpeningAssignment::new(Fr::from(7u64), &[1000, 250], &[1000, 5000], &[false, true]).unwrap();
        a.totals[1] = Fr::from(251u64);
        assert_eq!(violated(&a), Some("opening/commitment"), "other totals");
        let err = prove(&keys(2), &a, &mut rng(8)).unwrap_err();
        assert!(matches!(err, OpeningProveError::Unsatisfied { label: "opening/commitment", .. }), "{err}");
    }

    #[test]
    fn totals_of_2_pow_128_or_more_are_refused() {
        let two_128 = Fr::from(TWO_POW_128_MINUS_1) + Fr::one();
        // A "negative" total would pass the bound for any t; a total of 2^128 or more would let
        // a public asset match an out-of-range published figure.
        for (total, bound, flag) in [
            (two_128, Fr::from(TWO_POW_128_MINUS_1), Fr::one()),
            (two_128, two_128, Fr::zero()),
            (-Fr::one(), Fr::from(5u64), Fr::one()),
            (Fr::from(2u64).pow([200u64]), Fr::from(TWO_POW_128_MINUS_1), Fr::one()),
        ] {
            let a = cheat(Fr::from(3u64), &[total], &[bound], &[flag]);
            assert_eq!(violated(&a), Some("opening/total-range"), "T = {total}");
        }
        let a =
            cheat(Fr::from(3u64), &[Fr::from(TWO_POW_128_MINUS_1)], &[Fr::from(TWO_POW_128_MINUS_1)], &[Fr::zero()]);
        assert_eq!(violated(&a), None, "2^128 - 1 is a total");
    }

    #[test]
    fn flags_other_than_0_and_1_are_refused() {
        // p = 2 with T = t, and p = -1, which would turn "(1 − p)·d = 0" into "2·d = 0" for a
        // public-looking asset; both fail the boolean constraint first.
        for flag in [Fr::from(2u64), -Fr::one(), Fr::from(1u64 << 40)] {
            let a = cheat(Fr::from(3u64), &[Fr::from(10u64)], &[Fr::from(10u64)], &[flag]);
            assert_eq!(violated(&a), Some("opening/flag-boolean"), "p = {flag}");
        }
    }

    #[test]
    fn a_proof_is_bound_to_its_bounds_flags_and_commitment() {
        let two_assets = keys(2);
        let a = OpeningAssignment::new(Fr::from(7u64), &[1000, 250], &[1000, 5000], &[false, true]).unwrap();
        let proof = prove_and_verify(&a, 9);
        let check = |public: &OpeningPublic| verify_public(&two_assets, public, &proof);

        let mut other = a.public.clone();
        other.bounds[1] = Fr::from(4999u64);
        assert_eq!(check(&other), Err(OpeningError::InvalidProof), "another private bound");
        let mut other = a.public.clone();
        other.bounds[0] = Fr::from(1001u64);
        assert_eq!(check(&other), Err(OpeningError::InvalidProof), "another public total");
        let mut other = a.public.clone();
        other.commitment = chain_end_blinded(Fr::from(7u64), &[1000, 251]);
        assert_eq!(check(&other), Err(OpeningError::InvalidProof), "another C_N");
        let mut other = a.public.clone();
        other.commitment = attestation::commitment::chain_end(&[1000, 250]);
        assert_eq!(check(&other), Err(OpeningError::InvalidProof), "the unblinded chain end");
        let mut other = a.public.clone();
        other.flags[1] = Fr::zero();
        assert_eq!(check(&other), Err(OpeningError::InvalidProof), "the private asset claimed public");
        let mut other = a.public.clone();
        other.bounds[1] = Fr::from(TWO_POW_128_MINUS_1) + Fr::one();
        assert_eq!(check(&other), Err(OpeningError::BoundTooLarge { index: 1 }));
        assert_eq!(
            verify(two_assets.verifying_key(), a.public.commitment, &a.public.bounds, &[false], &proof),
            Err(OpeningError::LengthMismatch { bounds: 2, flags: 1 })
        );
        let one_asset = keys(1);
        assert_eq!(
            verify(one_asset.verifying_key(), a.public.commitment, &a.public.bounds, &[false, true], &proof),
            Err(OpeningError::VerifyingKeyShape { assets: 2, expected: 5, actual: 3 })
        );
    }

    #[test]
    fn shapes_are_checked_before_proving() {
        assert_eq!(
            OpeningAssignment::new(Fr::one(), &[1, 2], &[1], &[false, false]).unwrap_err(),
            OpeningProveError::AssignmentShape { assets: 2, totals: 2, bounds: 1, flags: 2 }
        );
        assert_eq!(
            OpeningAssignment::new(Fr::one(), &[], &[], &[]).unwrap_err(),
            OpeningProveError::AssetCount { assets: 0, limit: MAX_ASSETS }
        );
        assert!(matches!(setup(MAX_ASSETS + 1, &mut rng(0)), Err(OpeningProveError::AssetCount { .. })));
        let a = OpeningAssignment::new(Fr::one(), &[1, 2], &[1, 2], &[false, false]).unwrap();
        assert_eq!(
            prove(&keys(1), &a, &mut rng(0)).unwrap_err(),
            OpeningProveError::AssignmentShape { assets: 1, totals: 2, bounds: 2, flags: 2 }
        );
    }

    #[test]
    fn debug_hides_the_blinder_and_totals() {
        let a = OpeningAssignment::new(Fr::from(123_456_789u64), &[987_654_321], &[u128::MAX], &[true]).unwrap();
        let shown = format!("{a:?}");
        assert!(!shown.contains("123456789") && !shown.contains("987654321"), "{shown}");
    }

    /// The spec, whose §13 documents the constraint counts and the K = 2 example.
    const SPEC: &str = include_str!("../../../docs/commitment-spec.md");

    #[test]
    fn constraint_counts_are_the_documented_ones() {
        // The SUM hash of K + 1 inputs (width K + 2), one equality, and per asset two 128-bit
        // range checks and two single constraints.
        let hash = |width: usize, partial: usize| 3 * (8 * width + partial - 1);
        let mut rows = [String::from("| constraints |"), "| public inputs |".into(), "| witnesses |".into()];
        for (k, partial) in [(1, 57), (2, 56), (3, 60)] {
            let size = circuit_size(k);
            assert_eq!(size.constraints, hash(k + 2, partial) + 1 + k * (2 * 128 + 2), "K = {k}");
            assert_eq!(size.inputs, 1 + 2 * k);
            assert_eq!(keys(k).size, size, "setup counts as circuit_size does");
            for (row, n) in rows.iter_mut().zip([size.constraints, size.inputs, size.witnesses]) {
                row.push_str(&format!(" {n} |"));
            }
        }
        assert_eq!(rows[0], "| constraints | 499 | 778 | 1072 |");
        for row in &rows {
            assert!(SPEC.contains(row.as_str()), "spec §13 lacks the row {row}");
        }
    }

    #[test]
    fn the_documented_example_is_proven_and_its_variants_are_not() {
        let c_n = attestation::commitment::element_from_hex(
            "7d49a4c4abdbf266d60cb3e4cf2098d36977a779ad4b8dc139779caff8a3ba60",
        )
        .unwrap();
        let a = OpeningAssignment::new(Fr::from(7u64), &[1000, 250], &[1000, 5000], &[false, true]).unwrap();
        assert_eq!(a.public.commitment, c_n);
        assert_eq!(a.public.inputs(), [c_n, Fr::from(1000u64), Fr::from(5000u64), Fr::zero(), Fr::one()]);
        prove_and_verify(&a, 10);
        for (bounds, label) in [([1000, 249], "opening/private-bound"), ([999, 5000], "opening/public-total")] {
            let a = OpeningAssignment::new(Fr::from(7u64), &[1000, 250], &bounds, &[false, true]).unwrap();
            assert_eq!(violated(&a), Some(label), "t = {bounds:?}");
        }
    }
}
