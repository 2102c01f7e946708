//! The proving benchmark behind `solvency-enclave bench`: setup, proving throughput, sizes,
//! peak memory and single versus batched verification, on a synthetic ledger.

use std::time::Instant;

use ark_serialize::CanonicalSerialize;
use attestation::commitment::chain_start;
use attestation::groth16::{verify_batch, verify_one, Statement};
use attestation::liabilities::batch_public_inputs;
use rand::{CryptoRng, Rng, RngCore};
use serde::Serialize;

use crate::circuit::batch::BatchShape;
use crate::error::ProveError;
use crate::keys::{setup, ProvingKeys};
use crate::ledger::{Account, Ledger};
use crate::prover::{prove_batch, prove_batch_by_synthesis, witness};
use crate::round::{plan_round, prove_round};

/// A ledger of `accounts` accounts with random balances below 2^40 for each of `assets`.
pub fn synthetic_ledger<R: Rng>(accounts: usize, assets: &[String], rng: &mut R) -> Ledger {
    Ledger {
        assets: assets.to_vec(),
        accounts: (0..accounts)
            .map(|i| Account {
                id: format!("user-{i:08}"),
                balances: assets.iter().map(|_| rng.gen_range(0..1u64 << 40)).collect(),
            })
            .collect(),
    }
}

/// Peak resident memory of this process so far, from `/proc/self/status` (Linux).
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// What one benchmark run measured.
#[derive(Debug, Serialize)]
pub struct BenchReport {
    /// Accounts per batch.
    pub batch_size: usize,
    /// Assets per account.
    pub assets: usize,
    /// Batches proven.
    pub batches: usize,
    /// R1CS constraints per batch.
    pub constraints: usize,
    /// Constraints divided by the batch size.
    pub constraints_per_account: f64,
    /// QAP domain size.
    pub domain_size: usize,
    /// Groth16 setup, seconds (absent when the keys were loaded).
    pub setup_seconds: Option<f64>,
    /// Loading the keys from a file and re-deriving the matrices, seconds (absent after setup).
    pub load_keys_seconds: Option<f64>,
    /// Native witness generation for one batch, seconds.
    pub witness_seconds_per_batch: f64,
    /// One batch proven by our path (native witness, matrices from setup), seconds.
    pub fast_batch_seconds: f64,
    /// The same batch proven the standard arkworks way (full constraint synthesis), seconds.
    pub synthesis_batch_seconds: f64,
    /// `synthesis_batch_seconds / fast_batch_seconds`, measured in the same process.
    pub speedup_over_synthesis: f64,
    /// Proving the whole round (all batches, tree and inclusion proofs), seconds.
    pub prove_seconds: f64,
    /// Accounts proven per second.
    pub accounts_per_second: f64,
    /// Peak resident memory of the process up to the end of the round (keys, matrices and
    /// proving; with `--keys`, no setup), bytes.
    pub peak_rss_after_round_bytes: Option<u64>,
    /// Peak resident memory of the whole process, including the full-synthesis baseline, bytes.
    pub peak_rss_bytes: Option<u64>,
    /// Compressed proving key, bytes.
    pub proving_key_bytes: usize,
    /// Compressed verifying key, bytes.
    pub verifying_key_bytes: usize,
    /// Compressed proof, bytes.
    pub proof_bytes: usize,
    /// Verifying one proof alone, milliseconds (mean over the batches).
    pub verify_one_ms: f64,
    /// Statements in the batched-verification measurement.
    pub batched_statements: usize,
    /// Verifying them together, milliseconds.
    pub verify_batched_ms: f64,
    /// Private mode's solvency opening (spec §13), absent for keys without it: constraints.
    pub opening_constraints: Option<usize>,
    /// Proving the opening (every asset hidden), seconds.
    pub opening_prove_seconds: Option<f64>,
    /// Verifying it, milliseconds.
    pub opening_verify_ms: Option<f64>,
}

/// Proves and verifies the opening of `totals`, every asset hidden under a bound just covering
/// it: (prove seconds, verify milliseconds).
fn measure_opening<R: RngCore + CryptoRng>(
    keys: &crate::circuit::opening::OpeningKeys,
    totals: &[u128],
    blinder: ark_bls12_381::Fr,
    rng: &mut R,
) -> Result<(f64, f64), ProveError> {
    let hidden = vec![true; totals.len()];
    let assignment = crate::circuit::opening::OpeningAssignment::new(blinder, totals, totals, &hidden)
        .map_err(|e| ProveError::Opening(e.to_string()))?;
    let started = Instant::now();
    let proof = crate::circuit::opening::prove(keys, &assignment, rng).map_err(|e| ProveError::Opening(e.to_string()))?;
    let prove_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    attestation::opening::verify(
        keys.verifying_key(),
        assignment.public.commitment,
        &assignment.public.bounds,
        &hidden,
        &proof,
    )
    .map_err(|e| ProveError::Opening(e.to_string()))?;
    Ok((prove_seconds, started.elapsed().as_secs_f64() * 1e3))
}

/// Where the benchmark's keys come from.
pub enum KeySource {
    /// A fresh setup for this shape.
    Setup(BatchShape),
    /// Keys loaded from a file (measures proving without setup in the process).
    Loaded(Box<ProvingKeys>, f64),
}

/// Runs the benchmark: keys from `source`, then a round of `batches` full batches.
pub fn run<R: RngCore + CryptoRng>(
    source: KeySource,
    batches: usize,
    batched_statements: usize,
    rng: &mut R,
    on_batch: &mut dyn FnMut(usize, usize),
) -> Result<(BenchReport, ProvingKeys), ProveError> {
    let (keys, setup_seconds, load_keys_seconds) = match source {
        KeySource::Setup(shape) => {
            let started = Instant::now();
            let keys = setup(shape, rng)?;
            (keys, Some(started.elapsed().as_secs_f64()), None)
        }
        KeySource::Loaded(keys, seconds) => (*keys, None, Some(seconds)),
    };
    let shape = keys.shape;
    let assets: Vec<String> = (0..shape.assets).map(|i| format!("A{i}")).collect();

    let mut round_id = [0u8; 32];
    rng.fill_bytes(&mut round_id);
    let ledger = synthetic_ledger(shape.batch_size * batches, &assets, rng);
    let accounts = ledger.accounts.len();
    let started = Instant::now();
    let round = prove_round(&keys, ledger, round_id, rng, on_batch)?;
    let prove_seconds = started.elapsed().as_secs_f64();
    let peak_rss_after_round_bytes = peak_rss_bytes();

    // One more batch, proven both ways in this process.
    let sample = plan_round(shape, synthetic_ledger(shape.batch_size, &assets, rng), round_id, false, rng)?;
    let assignment = &sample.assignments[0];
    let started = Instant::now();
    witness(&keys, assignment, 0)?;
    let witness_seconds_per_batch = started.elapsed().as_secs_f64();
    let started = Instant::now();
    prove_batch(&keys, assignment, 0, rng)?;
    let fast_batch_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    prove_batch_by_synthesis(&keys, assignment, rng)?;
    let synthesis_batch_seconds = started.elapsed().as_secs_f64();

    let bundle = &round.bundle;
    let mut prev = chain_start(&bundle.context());
    let inputs: Vec<[ark_bls12_381::Fr; 3]> = bundle
        .batches
        .iter()
        .map(|b| {
            let i = batch_public_inputs(prev, b.sum_commitment, b.root);
            prev = b.sum_commitment;
            i
        })
        .collect();
    let vk = keys.verifying_key();
    let statements: Vec<Statement<'_>> =
        bundle.batches.iter().zip(&inputs).map(|(b, i)| Statement { proof: &b.proof, inputs: i }).collect();
    let started = Instant::now();
    let all_valid = statements.iter().all(|s| verify_one(vk, s));
    let verify_one_ms = started.elapsed().as_secs_f64() * 1e3 / statements.len() as f64;
    // Valid proofs repeated stand in for a large round: batched cost does not depend on content.
    let many: Vec<Statement<'_>> = statements
        .iter()
        .cycle()
        .take(batched_statements)
        .map(|s| Statement { proof: s.proof, inputs: s.inputs })
        .collect();
    let started = Instant::now();
    let batched = verify_batch(vk, &many);
    let verify_batched_ms = started.elapsed().as_secs_f64() * 1e3;
    if !all_valid || batched.is_err() {
        return Err(ProveError::Groth16("benchmark proofs did not verify".into()));
    }

    let opening = match &keys.opening {
        Some(opening_keys) => Some(measure_opening(opening_keys, &sample.totals, sample.final_blinder, rng)?),
        None => None,
    };

    let size = |x: &dyn Fn(&mut Vec<u8>)| {
        let mut v = Vec::new();
        x(&mut v);
        v.len()
    };
    let report = BenchReport {
        batch_size: shape.batch_size,
        assets: shape.assets,
        batches,
        constraints: keys.size.constraints,
        constraints_per_account: keys.size.constraints as f64 / shape.batch_size as f64,
        domain_size: keys.size.domain_size(),
        setup_seconds,
        load_keys_seconds,
        witness_seconds_per_batch,
        fast_batch_seconds,
        synthesis_batch_seconds,
        speedup_over_synthesis: synthesis_batch_seconds / fast_batch_seconds,
        prove_seconds,
        accounts_per_second: accounts as f64 / prove_seconds,
        peak_rss_after_round_bytes,
        peak_rss_bytes: peak_rss_bytes(),
        proving_key_bytes: size(&|v| {
            let _ = keys.proving_key.serialize_compressed(v);
        }),
        verifying_key_bytes: size(&|v| {
            let _ = vk.serialize_compressed(v);
        }),
        proof_bytes: size(&|v| {
            let _ = bundle.batches[0].proof.serialize_compressed(v);
        }),
        verify_one_ms,
        batched_statements: many.len(),
        verify_batched_ms,
        opening_constraints: keys.opening.as_ref().map(|o| o.size.constraints),
        opening_prove_seconds: opening.map(|o| o.0),
        opening_verify_ms: opening.map(|o| o.1),
    };
    Ok((report, keys))
}
