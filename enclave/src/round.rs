//! Proving a whole round: salting and shuffling the accounts, cutting them into batches, chaining
//! the hidden running sums, building the tree, proving every batch, and producing the bundle and
//! one inclusion proof per account.

use ark_bls12_381::Fr;
use ark_ff::{UniformRand, Zero};
use attestation::bundle::{Batch, Bundle, UNATTESTED};
use attestation::commitment::{
    account_commitment, element_to_hex, leaf_from_elements, sum_commitment, RoundContext, Salt,
};
use attestation::inclusion::{encode_path, Balance, InclusionProof, FORMAT_V1};
use attestation::tree::{Levels, TreeShape};
use rand::seq::SliceRandom;
use rand::{CryptoRng, RngCore};

use crate::circuit::batch::{AccountSlot, BatchAssignment, BatchPublic};
use crate::error::ProveError;
use crate::keys::ProvingKeys;
use crate::ledger::Ledger;
use crate::prover::prove_batch;

/// A proven round: the bundle and every account's inclusion proof.
pub struct ProvedRound {
    /// The liabilities bundle.
    pub bundle: Bundle,
    /// One inclusion proof per account, in leaf order.
    pub inclusion: Vec<InclusionProof>,
}

fn field_sums(sums: &[u128]) -> Vec<Fr> {
    sums.iter().map(|&s| Fr::from(s)).collect()
}

/// Proves `ledger` as round `round_id`. `on_batch(done, total)` is called after each proof.
pub fn prove_round<R: RngCore + CryptoRng>(
    keys: &ProvingKeys,
    ledger: Ledger,
    round_id: [u8; 32],
    rng: &mut R,
    on_batch: &mut dyn FnMut(usize, usize),
) -> Result<ProvedRound, ProveError> {
    let k = keys.shape.assets;
    let b = keys.shape.batch_size;
    if ledger.assets.len() != k {
        return Err(ProveError::AssetCount { keys: k, ledger: ledger.assets.len() });
    }
    let assets = ledger.assets;
    let mut accounts = ledger.accounts;
    // Leaf order is random per round, so positions say nothing about account ids.
    accounts.shuffle(rng);
    let shape = TreeShape::new(b as u64, accounts.len() as u64).ok_or(ProveError::EmptyLedger)?;
    let salts: Vec<Salt> = accounts
        .iter()
        .map(|_| {
            let mut s = [0u8; 32];
            rng.fill_bytes(&mut s);
            Salt(s)
        })
        .collect();

    // Native pass: slots, batch subtrees, per-batch sums.
    let mut batch_slots = Vec::with_capacity(shape.batch_count as usize);
    let mut subtrees = Vec::with_capacity(shape.batch_count as usize);
    let mut batch_sums = Vec::with_capacity(shape.batch_count as usize);
    for (chunk, chunk_salts) in accounts.chunks(b).zip(salts.chunks(b)) {
        let mut slots: Vec<AccountSlot> = chunk
            .iter()
            .zip(chunk_salts)
            .map(|(a, salt)| AccountSlot {
                commitment: account_commitment(&a.id, salt),
                balances: a.balances.iter().map(|&x| Fr::from(x)).collect(),
            })
            .collect();
        slots.resize(b, AccountSlot::padding(k));
        let leaves = slots.iter().map(|s| leaf_from_elements(s.commitment, &s.balances)).collect();
        subtrees.push(shape.build_batch(leaves));
        let mut sums = vec![0u128; k];
        for a in chunk {
            for (s, x) in sums.iter_mut().zip(&a.balances) {
                *s += u128::from(*x);
            }
        }
        batch_sums.push(sums);
        batch_slots.push(slots);
    }

    // The running-sum chain: starts at the round's public element over zero sums, ends at the
    // totals under blinder zero; every commitment in between is blinded at random.
    let n = batch_slots.len();
    let mut running = vec![0u128; k];
    let context =
        RoundContext { round_id: &round_id, assets: &assets, batch_size: b as u64, leaf_count: accounts.len() as u64 };
    let mut prev_blinder = context.element();
    let mut prev_commitment = sum_commitment(prev_blinder, &field_sums(&running));
    let top = shape.build_top(subtrees.iter().map(Levels::root).collect());
    let mut batches = Vec::with_capacity(n);
    for (i, (slots, sums)) in batch_slots.into_iter().zip(&batch_sums).enumerate() {
        let prev_sums = field_sums(&running);
        for (r, s) in running.iter_mut().zip(sums) {
            *r += *s;
        }
        let next_blinder = if i + 1 == n { Fr::zero() } else { Fr::rand(rng) };
        let next_commitment = sum_commitment(next_blinder, &field_sums(&running));
        let assignment = BatchAssignment {
            public: BatchPublic { prev_commitment, next_commitment, root: subtrees[i].root() },
            accounts: slots,
            prev_sums,
            prev_blinder,
            next_blinder,
        };
        let proof = prove_batch(keys, &assignment, i, rng)?;
        batches.push(Batch { root: assignment.public.root, sum_commitment: next_commitment, proof });
        on_batch(i + 1, n);
        prev_blinder = next_blinder;
        prev_commitment = next_commitment;
    }

    let root = top.root();
    let round_hex = hex::encode(round_id);
    let root_hex = element_to_hex(&root);
    let inclusion = accounts
        .iter()
        .zip(&salts)
        .enumerate()
        .map(|(index, (account, salt))| {
            let mut path = subtrees[index / b].path(index % b);
            path.extend(top.path(index / b));
            InclusionProof {
                format: FORMAT_V1.to_owned(),
                round_id: round_hex.clone(),
                root: root_hex.clone(),
                account_id: account.id.clone(),
                salt: hex::encode(salt.0),
                balances: assets
                    .iter()
                    .zip(&account.balances)
                    .map(|(asset, amount)| Balance { asset: asset.clone(), amount: amount.to_string() })
                    .collect(),
                leaf_index: index as u64,
                path: encode_path(&path),
            }
        })
        .collect();
    let bundle = Bundle {
        attestation: UNATTESTED.to_owned(),
        round_id,
        assets,
        leaf_count: accounts.len() as u64,
        totals: running,
        root,
        shape,
        verifying_key: keys.verifying_key().clone(),
        batches,
    };
    Ok(ProvedRound { bundle, inclusion })
}
