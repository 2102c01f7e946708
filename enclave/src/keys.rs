//! Groth16 setup of the batch circuit, and the proving material kept for a round: the proving
//! key plus the constraint matrices, so proving never re-synthesises constraints.

use std::io::{Read, Write};

use ark_bls12_381::{Bls12_381, Fr};
use ark_groth16::{Groth16, ProvingKey, VerifyingKey};
use ark_relations::gr1cs::{ConstraintSynthesizer, ConstraintSystemRef, LinearCombination, SynthesisError, Variable};
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize};
use rand::{CryptoRng, RngCore};

use crate::circuit::backend::{Lc, Matrix, MatrixBackend, R1csBackend, Var, WitnessBackend};
use crate::circuit::batch::{synthesize, BatchAssignment, BatchShape};
use crate::circuit::opening::OpeningKeys;
use crate::error::{KeyFileError, ProveError};

/// Sizes of the batch circuit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CircuitSize {
    /// R1CS constraints.
    pub constraints: usize,
    /// Public inputs (without the constant one).
    pub inputs: usize,
    /// Private witnesses.
    pub witnesses: usize,
}

impl CircuitSize {
    /// The QAP evaluation domain arkworks uses: constraints plus instance variables, rounded up
    /// to a power of two.
    pub fn domain_size(&self) -> usize {
        (self.constraints + self.inputs + 1).next_power_of_two()
    }
}

/// Refuses shapes the circuit and the bundle format do not support.
pub fn check_shape(shape: &BatchShape) -> Result<(), ProveError> {
    let (max_batch, max_assets) = (attestation::tree::MAX_BATCH_SIZE, attestation::bundle::MAX_ASSETS);
    if (1..=max_batch).contains(&shape.batch_size) && (1..=max_assets).contains(&shape.assets) {
        Ok(())
    } else {
        Err(ProveError::Shape { batch_size: shape.batch_size, assets: shape.assets, max_batch, max_assets })
    }
}

/// Counts the circuit of `shape` (in witness mode, which is fast and counts identically). Shapes
/// that [`check_shape`] refuses are counted too, without panicking.
pub fn circuit_size(shape: &BatchShape) -> CircuitSize {
    let mut cs = WitnessBackend::<Fr>::default();
    synthesize(&mut cs, shape, &BatchAssignment::placeholder(shape));
    CircuitSize { constraints: cs.num_constraints, inputs: cs.inputs.len(), witnesses: cs.witnesses.len() }
}

/// The largest batch size whose circuit fits a QAP domain of `2^log2_domain` at `assets`.
pub fn largest_batch_for_domain(assets: usize, log2_domain: u32) -> Option<usize> {
    let fits = |b: usize| circuit_size(&BatchShape { batch_size: b, assets }).domain_size() <= 1usize << log2_domain;
    if !fits(1) {
        return None;
    }
    let (mut lo, mut hi) = (1usize, 2usize);
    while fits(hi) {
        lo = hi;
        hi *= 2;
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(lo)
}

/// Replays recorded constraints into an arkworks constraint system.
struct Replay<'a>(&'a R1csBackend<Fr>);

/// The recorded circuit as an arkworks `ConstraintSynthesizer`.
pub fn synthesizer(recorded: &R1csBackend<Fr>) -> impl ConstraintSynthesizer<Fr> + '_ {
    Replay(recorded)
}

impl ConstraintSynthesizer<Fr> for Replay<'_> {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> Result<(), SynthesisError> {
        let inputs = self.0.inputs.iter().map(|v| cs.new_input_variable(|| Ok(*v))).collect::<Result<Vec<_>, _>>()?;
        let witnesses =
            self.0.witnesses.iter().map(|v| cs.new_witness_variable(|| Ok(*v))).collect::<Result<Vec<_>, _>>()?;
        let convert = |lc: &Lc<Fr>| -> LinearCombination<Fr> {
            let (constant, terms) = lc.parts();
            let mut out = Vec::with_capacity(terms.len() + 1);
            if constant != Fr::from(0u64) {
                out.push((constant, Variable::One));
            }
            out.extend(terms.iter().map(|(v, k)| {
                let var = match v {
                    Var::Input(i) => inputs[*i as usize],
                    Var::Witness(i) => witnesses[*i as usize],
                };
                (*k, var)
            }));
            LinearCombination(out)
        };
        for k in &self.0.constraints {
            cs.enforce_r1cs_constraint(|| convert(&k.a), || convert(&k.b), || convert(&k.c))?;
        }
        Ok(())
    }
}

/// Records the constraints of `shape` (and of `assignment`'s values).
pub fn record(shape: &BatchShape, assignment: &BatchAssignment) -> R1csBackend<Fr> {
    let mut cs = R1csBackend::default();
    synthesize(&mut cs, shape, assignment);
    cs
}

/// Whether arkworks' own constraint system, fed the recorded constraints and assignment, is
/// satisfied: an independent check of [`R1csBackend::first_unsatisfied`].
pub fn arkworks_satisfied(recorded: &R1csBackend<Fr>) -> Result<bool, ProveError> {
    let cs = ark_relations::gr1cs::ConstraintSystem::<Fr>::new_ref();
    Replay(recorded).generate_constraints(cs.clone()).map_err(|e| ProveError::Groth16(e.to_string()))?;
    cs.finalize();
    cs.is_satisfied().map_err(|e| ProveError::Groth16(e.to_string()))
}

/// Proving material for one circuit shape.
pub struct ProvingKeys {
    /// The shape the keys were made for.
    pub shape: BatchShape,
    /// The Groth16 proving key (it contains the verifying key).
    pub proving_key: ProvingKey<Bls12_381>,
    /// `[A, B, C]`, reused by every proof.
    pub matrices: [Matrix<Fr>; 3],
    /// Sizes of the circuit.
    pub size: CircuitSize,
    /// The solvency opening's keys for the same asset count (spec §13); keys files of version 1
    /// have none, and can prove only public rounds.
    pub opening: Option<OpeningKeys>,
}

impl ProvingKeys {
    /// The verifying key.
    pub fn verifying_key(&self) -> &VerifyingKey<Bls12_381> {
        &self.proving_key.vk
    }
}

/// The constraint matrices of `shape`, written row by row without keeping the constraints.
pub fn matrices(shape: &BatchShape) -> Result<[Matrix<Fr>; 3], ProveError> {
    let mut cs = MatrixBackend::default();
    synthesize(&mut cs, shape, &BatchAssignment::placeholder(shape));
    cs.into_matrices().ok_or(ProveError::Groth16("the circuit allocated an input after a witness".into()))
}

/// Runs a fresh circuit-specific Groth16 setup for `shape`. The toxic waste lives only inside
/// this call; whoever runs it must be trusted not to keep it (attested setup comes with the
/// enclave issue).
pub fn setup<R: RngCore + CryptoRng>(shape: BatchShape, rng: &mut R) -> Result<ProvingKeys, ProveError> {
    check_shape(&shape)?;
    let recorded = record(&shape, &BatchAssignment::placeholder(&shape));
    let proving_key = Groth16::<Bls12_381>::generate_random_parameters_with_reduction(Replay(&recorded), rng)
        .map_err(|e| ProveError::Groth16(e.to_string()))?;
    let size = CircuitSize {
        constraints: recorded.constraints.len(),
        inputs: recorded.inputs.len(),
        witnesses: recorded.witnesses.len(),
    };
    drop(recorded);
    let matrices = matrices(&shape)?;
    let opening = crate::circuit::opening::setup(shape.assets, rng).map_err(|e| ProveError::Groth16(e.to_string()))?;
    Ok(ProvingKeys { shape, proving_key, matrices, size, opening: Some(opening) })
}

/// First bytes of a proving-keys file of version 1: the batch key only.
const KEYS_MAGIC: &[u8] = b"solvency-enclave/proving-keys/v1\n";
/// First bytes of a proving-keys file of version 2: the batch key, then the opening key.
const KEYS_MAGIC_V2: &[u8] = b"solvency-enclave/proving-keys/v2\n";

impl ProvingKeys {
    /// Writes the keys: magic, batch size and asset count (u64 LE), then the proving key in
    /// arkworks' uncompressed encoding, then (version 2) the opening's proving key likewise. The
    /// matrices are not stored; they are re-derived.
    pub fn write_to<W: Write>(&self, mut w: W) -> Result<(), KeyFileError> {
        w.write_all(if self.opening.is_some() { KEYS_MAGIC_V2 } else { KEYS_MAGIC }).map_err(KeyFileError::io)?;
        w.write_all(&(self.shape.batch_size as u64).to_le_bytes()).map_err(KeyFileError::io)?;
        w.write_all(&(self.shape.assets as u64).to_le_bytes()).map_err(KeyFileError::io)?;
        self.proving_key.serialize_uncompressed(&mut w).map_err(|e| KeyFileError::Malformed(e.to_string()))?;
        if let Some(opening) = &self.opening {
            opening.proving_key.serialize_uncompressed(&mut w).map_err(|e| KeyFileError::Malformed(e.to_string()))?;
        }
        w.flush().map_err(KeyFileError::io)
    }

    /// Reads keys written by [`ProvingKeys::write_to`] and re-derives the matrices. Points are not
    /// subgroup-checked: the file is the operator's own, and a damaged key can only produce
    /// proofs that fail to verify, never false ones (soundness rests on the verifying key the
    /// verifier pins).
    pub fn read_from<R: Read>(mut r: R) -> Result<Self, KeyFileError> {
        let mut magic = vec![0u8; KEYS_MAGIC.len()];
        r.read_exact(&mut magic).map_err(KeyFileError::io)?;
        let with_opening = match magic.as_slice() {
            KEYS_MAGIC => false,
            KEYS_MAGIC_V2 => true,
            _ => return Err(KeyFileError::NotAKeyFile),
        };
        let mut word = [0u8; 8];
        r.read_exact(&mut word).map_err(KeyFileError::io)?;
        let batch_size = u64::from_le_bytes(word);
        r.read_exact(&mut word).map_err(KeyFileError::io)?;
        let assets = u64::from_le_bytes(word);
        if batch_size == 0
            || batch_size > attestation::tree::MAX_BATCH_SIZE as u64
            || assets == 0
            || assets > attestation::bundle::MAX_ASSETS as u64
        {
            return Err(KeyFileError::Malformed(format!("batch size {batch_size} with {assets} assets")));
        }
        let shape = BatchShape { batch_size: batch_size as usize, assets: assets as usize };
        let proving_key = ProvingKey::<Bls12_381>::deserialize_uncompressed_unchecked(&mut r)
            .map_err(|e| KeyFileError::Malformed(e.to_string()))?;
        let opening = if with_opening {
            let proving_key = ProvingKey::<Bls12_381>::deserialize_uncompressed_unchecked(&mut r)
                .map_err(|e| KeyFileError::Malformed(format!("the opening key: {e}")))?;
            let size = crate::circuit::opening::circuit_size(shape.assets);
            if proving_key.vk.gamma_abc_g1.len() != 1 + size.inputs
                || proving_key.a_query.len() != 1 + size.inputs + size.witnesses
            {
                return Err(KeyFileError::Malformed(format!("the opening key is not for {assets} assets")));
            }
            Some(OpeningKeys { assets: shape.assets, proving_key, size })
        } else {
            None
        };
        let mut rest = [0u8; 1];
        if r.read(&mut rest).map_err(KeyFileError::io)? != 0 {
            return Err(KeyFileError::Malformed("trailing bytes".into()));
        }
        let size = circuit_size(&shape);
        if proving_key.vk.gamma_abc_g1.len() != 1 + size.inputs
            || proving_key.a_query.len() != 1 + size.inputs + size.witnesses
        {
            return Err(KeyFileError::Malformed(format!(
                "the key is not for batch size {batch_size} with {assets} assets"
            )));
        }
        let matrices = matrices(&shape).map_err(|e| KeyFileError::Malformed(e.to_string()))?;
        Ok(Self { shape, proving_key, matrices, size, opening })
    }
}
