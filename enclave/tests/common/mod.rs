//! Shared test support: cached keys per circuit shape and honest batch assignments.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use ark_bls12_381::Fr;
use attestation::commitment::{account_commitment, leaf_from_elements, sum_commitment, Salt};
use attestation::tree::{depth_for, Levels};
use enclave::circuit::batch::{AccountSlot, BatchAssignment, BatchPublic, BatchShape};
use enclave::keys::{setup, ProvingKeys};
use rand::rngs::StdRng;
use rand::SeedableRng;

type KeyCache = Mutex<HashMap<(usize, usize), Arc<ProvingKeys>>>;

/// Keys for `shape`, set up once per test binary.
pub fn keys(shape: BatchShape) -> Arc<ProvingKeys> {
    static CACHE: OnceLock<KeyCache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut map = cache.lock().unwrap_or_else(|p| p.into_inner());
    map.entry((shape.batch_size, shape.assets))
        .or_insert_with(|| {
            let mut rng = StdRng::seed_from_u64(shape.batch_size as u64 * 1000 + shape.assets as u64);
            Arc::new(setup(shape, &mut rng).expect("setup"))
        })
        .clone()
}

/// A deterministic RNG for a test.
pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// An honest first-batch assignment for accounts with the given balances.
pub fn honest_assignment(shape: &BatchShape, balances: &[Vec<u64>]) -> BatchAssignment {
    let mut accounts: Vec<AccountSlot> = balances
        .iter()
        .enumerate()
        .map(|(i, b)| AccountSlot {
            commitment: account_commitment(&format!("user-{i}"), &Salt([i as u8; 32])),
            balances: b.iter().map(|&x| Fr::from(x)).collect(),
        })
        .collect();
    accounts.resize(shape.batch_size, AccountSlot::padding(shape.assets));
    assignment_for(shape, accounts)
}

/// The assignment whose public inputs are computed honestly from `accounts` (whatever they hold).
pub fn assignment_for(shape: &BatchShape, accounts: Vec<AccountSlot>) -> BatchAssignment {
    let leaves = accounts.iter().map(|a| leaf_from_elements(a.commitment, &a.balances)).collect();
    let root = Levels::build(leaves, 0, depth_for(shape.batch_size as u64)).root();
    let prev_sums = vec![Fr::from(0u64); shape.assets];
    let prev_blinder = Fr::from(11u64);
    let mut a = BatchAssignment {
        public: BatchPublic {
            prev_commitment: sum_commitment(prev_blinder, &prev_sums),
            next_commitment: Fr::from(0u64),
            root,
        },
        accounts,
        prev_sums,
        prev_blinder,
        next_blinder: Fr::from(13u64),
    };
    reseal_next(&mut a);
    a
}

/// Sets `next_commitment` to the commitment of `prev_sums` plus the slots' balances, as a prover
/// would after changing either.
pub fn reseal_next(a: &mut BatchAssignment) {
    let mut sums = a.prev_sums.clone();
    for account in &a.accounts {
        for (s, b) in sums.iter_mut().zip(&account.balances) {
            *s += b;
        }
    }
    a.public.next_commitment = sum_commitment(a.next_blinder, &sums);
}
