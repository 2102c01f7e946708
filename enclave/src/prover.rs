//! Proving one batch: the witness is computed natively by the circuit's witness backend and
//! proven against the matrices kept from setup.

use ark_bls12_381::{Bls12_381, Fr};
use ark_ff::UniformRand;
use ark_groth16::{Groth16, Proof};
use rand::{CryptoRng, RngCore};

use crate::circuit::backend::WitnessBackend;
use crate::circuit::batch::{synthesize, BatchAssignment};
use crate::error::ProveError;
use crate::keys::{record, synthesizer, ProvingKeys};

/// Computes the full assignment `[1, inputs, witnesses]` of a batch, checking every constraint.
pub fn witness(keys: &ProvingKeys, assignment: &BatchAssignment, batch: usize) -> Result<Vec<Fr>, ProveError> {
    let shape = keys.shape;
    if assignment.accounts.len() != shape.batch_size
        || assignment.prev_sums.len() != shape.assets
        || assignment.accounts.iter().any(|a| a.balances.len() != shape.assets)
    {
        return Err(ProveError::AssignmentShape { batch_size: shape.batch_size, assets: shape.assets });
    }
    let mut cs = WitnessBackend::with_capacity(keys.size.witnesses);
    synthesize(&mut cs, &shape, assignment);
    if let Some(u) = cs.unsatisfied {
        return Err(ProveError::Unsatisfied { batch, constraint: u.index, label: u.label });
    }
    if cs.num_constraints != keys.size.constraints {
        return Err(ProveError::ConstraintCount { expected: keys.size.constraints, actual: cs.num_constraints });
    }
    Ok(cs.full_assignment())
}

/// Proves one batch.
pub fn prove_batch<R: RngCore + CryptoRng>(
    keys: &ProvingKeys,
    assignment: &BatchAssignment,
    batch: usize,
    rng: &mut R,
) -> Result<Proof<Bls12_381>, ProveError> {
    let full = witness(keys, assignment, batch)?;
    let (r, s) = (Fr::rand(rng), Fr::rand(rng));
    Groth16::<Bls12_381>::create_proof_with_reduction_and_matrices(
        &keys.proving_key,
        r,
        s,
        &keys.matrices,
        1 + keys.size.inputs,
        keys.size.constraints,
        &full,
    )
    .map_err(|e| ProveError::Groth16(e.to_string()))
}

/// Proves one batch the standard arkworks way, synthesising the whole constraint system for this
/// proof. Slower; kept as the reference the fast path is measured and tested against.
pub fn prove_batch_by_synthesis<R: RngCore + CryptoRng>(
    keys: &ProvingKeys,
    assignment: &BatchAssignment,
    rng: &mut R,
) -> Result<Proof<Bls12_381>, ProveError> {
    let recorded = record(&keys.shape, assignment);
    Groth16::<Bls12_381>::create_random_proof_with_reduction(synthesizer(&recorded), &keys.proving_key, rng)
        .map_err(|e| ProveError::Groth16(e.to_string()))
}
