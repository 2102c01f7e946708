//! Each attack on the batch statement, as the witness a cheating prover would use: the
//! constraint system is unsatisfied (by our recorder and by arkworks' own), and no proof is made.

mod common;

use ark_bls12_381::Fr;
use ark_ff::{BigInteger, Field, PrimeField};
use attestation::commitment::{leaf_from_elements, sum_commitment};
use attestation::groth16::{verify_one, Statement};
use attestation::liabilities::batch_public_inputs;
use attestation::tree::{depth_for, Levels};
use common::{assignment_for, honest_assignment, keys, reseal_next, rng};
use enclave::circuit::backend::Unsatisfied;
use enclave::circuit::batch::{BatchAssignment, BatchShape};
use enclave::error::ProveError;
use enclave::keys::{arkworks_satisfied, record};
use enclave::prover::{prove_batch, prove_batch_by_synthesis};

const SHAPE: BatchShape = BatchShape { batch_size: 8, assets: 2 };

fn balances() -> Vec<Vec<u64>> {
    (0..6u64).map(|i| vec![100 + i, 7 * i]).collect()
}

/// The first violated constraint's label, after checking arkworks agrees.
fn violated(a: &BatchAssignment) -> Option<&'static str> {
    let recorded = record(&SHAPE, a);
    let ours = recorded.first_unsatisfied();
    assert_eq!(arkworks_satisfied(&recorded).unwrap(), ours.is_none(), "arkworks disagrees with our recorder");
    ours.map(|Unsatisfied { label, .. }| label)
}

/// `p - x`: the field element a negative balance wraps to.
fn negative(x: u64) -> Fr {
    -Fr::from(x)
}

#[test]
fn honest_witness_satisfies_and_both_provers_make_valid_proofs() {
    let a = honest_assignment(&SHAPE, &balances());
    assert_eq!(violated(&a), None);
    let keys = keys(SHAPE);
    let inputs = batch_public_inputs(a.public.prev_commitment, a.public.next_commitment, a.public.root);
    let fast = prove_batch(&keys, &a, 0, &mut rng(1)).unwrap();
    let reference = prove_batch_by_synthesis(&keys, &a, &mut rng(1)).unwrap();
    for proof in [&fast, &reference] {
        assert!(verify_one(keys.verifying_key(), &Statement { proof, inputs: &inputs }));
    }
    let mut wrong = inputs;
    wrong[2] += Fr::from(1u64);
    assert!(!verify_one(keys.verifying_key(), &Statement { proof: &fast, inputs: &wrong }));
}

#[test]
fn negative_balance_is_refused() {
    let mut a = honest_assignment(&SHAPE, &balances());
    a.accounts[2].balances[1] = negative(5);
    // Public inputs recomputed for the cheating witness: only the range check can stop it.
    let a = assignment_for(&SHAPE, a.accounts);
    assert_eq!(violated(&a), Some("balance/range"));
    let err = prove_batch(&keys(SHAPE), &a, 0, &mut rng(2)).unwrap_err();
    assert!(matches!(err, ProveError::Unsatisfied { label: "balance/range", .. }), "{err}");
}

#[test]
fn balance_of_2_pow_64_or_more_is_refused() {
    for big in [Fr::from(u64::MAX) + Fr::from(1u64), Fr::from(u128::MAX), Fr::from(2u64).pow([200u64])] {
        let mut accounts = honest_assignment(&SHAPE, &balances()).accounts;
        accounts[0].balances[0] = big;
        assert_eq!(violated(&assignment_for(&SHAPE, accounts)), Some("balance/range"));
    }
    let mut accounts = honest_assignment(&SHAPE, &balances()).accounts;
    accounts[0].balances[0] = Fr::from(u64::MAX);
    assert_eq!(violated(&assignment_for(&SHAPE, accounts)), None, "2^64 - 1 is allowed");
}

#[test]
fn negative_balance_offset_by_a_positive_one_is_refused() {
    // A "dummy user" whose negative balance cancels another's within the same asset.
    let mut accounts = honest_assignment(&SHAPE, &balances()).accounts;
    accounts[0].balances[0] += Fr::from(1_000u64);
    accounts[1].balances[0] = negative(1_000) + accounts[1].balances[0];
    assert_eq!(violated(&assignment_for(&SHAPE, accounts)), Some("balance/range"));
}

#[test]
fn wrong_per_asset_sum_is_refused() {
    let mut a = honest_assignment(&SHAPE, &balances());
    let mut understated = a.prev_sums.clone();
    let actual: Fr = a.accounts.iter().map(|x| x.balances[0]).sum();
    understated[0] = actual - Fr::from(1u64);
    understated[1] = a.accounts.iter().map(|x| x.balances[1]).sum();
    a.public.next_commitment = sum_commitment(a.next_blinder, &understated);
    assert_eq!(violated(&a), Some("sums/next"));
}

#[test]
fn sums_carried_in_from_the_previous_batch_must_open_its_commitment() {
    let mut a = honest_assignment(&SHAPE, &balances());
    a.prev_sums[0] = -Fr::from(1_000_000u64);
    assert_eq!(violated(&a), Some("sums/prev"));
}

#[test]
fn running_sum_cannot_wrap_the_field() {
    // Even with a commitment opening to a huge carried-in sum, the new sum must stay below 2^128.
    let mut a = honest_assignment(&SHAPE, &balances());
    a.prev_sums[0] = Fr::from(u128::MAX);
    a.public.prev_commitment = sum_commitment(a.prev_blinder, &a.prev_sums);
    reseal_next(&mut a);
    assert_eq!(violated(&a), Some("sums/range"));
}

#[test]
fn tampered_leaf_does_not_reach_the_root() {
    let mut a = honest_assignment(&SHAPE, &balances());
    a.accounts[3].balances[0] += Fr::from(1u64);
    // Sum commitment updated to match, root left as published.
    reseal_next(&mut a);
    assert_eq!(violated(&a), Some("tree/root"));
}

#[test]
fn swapped_leaves_do_not_reach_the_root() {
    let mut a = honest_assignment(&SHAPE, &balances());
    a.accounts.swap(0, 1);
    assert_eq!(violated(&a), Some("tree/root"));
}

#[test]
fn a_root_with_an_extra_uncounted_leaf_is_refused() {
    // The prover publishes a root over 7 real leaves plus one leaf it never range-checked or
    // summed (in a slot the witness fills with padding).
    let mut a = honest_assignment(&SHAPE, &balances());
    let mut leaves: Vec<Fr> = a.accounts.iter().map(|x| leaf_from_elements(x.commitment, &x.balances)).collect();
    leaves[7] = leaf_from_elements(Fr::from(99u64), &[negative(1), Fr::from(0u64)]);
    a.public.root = Levels::build(leaves, 0, depth_for(8)).root();
    assert_eq!(violated(&a), Some("tree/root"));
}

#[test]
fn field_modulus_is_what_the_attacks_assume() {
    // p - x is a 255-bit value, far above 2^64.
    assert!(negative(5).into_bigint().num_bits() > 250);
}
