//! A whole round: planning it natively (shuffling and salting the accounts, cutting them into
//! batches, the tree, the hidden running-sum chain), proving every batch, and producing the bundle
//! and one inclusion proof per account.

use ark_bls12_381::Fr;
use ark_ff::{UniformRand, Zero};
use attestation::bundle::{Batch, Bundle, Opening, UNATTESTED};
use attestation::commitment::{
    account_commitment, element_to_hex, leaf_from_elements, sum_commitment, RoundContext, Salt,
};
use attestation::inclusion::{encode_path, Balance, InclusionProof, FORMAT_V1, FORMAT_V2};
use attestation::tree::{Levels, TreeShape};
use rand::seq::SliceRandom;
use rand::{CryptoRng, RngCore};

use crate::circuit::batch::{AccountSlot, BatchAssignment, BatchPublic, BatchShape};
use crate::circuit::opening::OpeningAssignment;
use crate::error::ProveError;
use crate::keys::ProvingKeys;
use crate::ledger::{Account, Ledger};
use crate::prover::prove_batch;

/// A round ready to prove: every batch's assignment and everything the outputs need.
pub struct RoundPlan {
    /// The round id.
    pub round_id: [u8; 32],
    /// Asset symbols.
    pub assets: Vec<String>,
    /// The accounts in leaf order (shuffled).
    pub accounts: Vec<Account>,
    /// Each account's salt, in leaf order.
    pub salts: Vec<Salt>,
    /// Where leaves and batches sit.
    pub shape: TreeShape,
    /// Each batch's subtree.
    pub subtrees: Vec<Levels>,
    /// The tree above the batch roots.
    pub top: Levels,
    /// Each batch's circuit assignment, in chain order.
    pub assignments: Vec<BatchAssignment>,
    /// Per-asset totals.
    pub totals: Vec<u128>,
    /// `r_N`, the last commitment's blinder: zero, or random when totals are hidden (spec §13).
    pub final_blinder: Fr,
}

/// A proven round: the bundle, and what every account's inclusion proof is made from. The proofs
/// are made one at a time as they are consumed, so a round never holds all of them at once.
pub struct ProvedRound {
    /// The liabilities bundle.
    pub bundle: Bundle,
    /// The plan, without the batch assignments (dropped once proven).
    plan: RoundPlan,
}

impl ProvedRound {
    /// Accounts in the round.
    pub fn account_count(&self) -> usize {
        self.plan.accounts.len()
    }

    /// One inclusion proof per account, in leaf order, made as the iterator is advanced. Proofs of
    /// an attested round name its manifest digest (version 2); an unattested round's do not.
    pub fn inclusion_proofs(&self, manifest_digest: Option<[u8; 48]>) -> impl Iterator<Item = InclusionProof> + '_ {
        self.plan.inclusion_proofs(manifest_digest)
    }
}

fn field_sums(sums: &[u128]) -> Vec<Fr> {
    sums.iter().map(|&s| Fr::from(s)).collect()
}

/// Plans `ledger` as round `round_id` for circuits of `circuit` shape. With `hide_totals` the
/// chain ends under a random blinder (private mode, spec §13), so only an opening proof can show
/// anything about the totals.
pub fn plan_round<R: RngCore + CryptoRng>(
    circuit: BatchShape,
    ledger: Ledger,
    round_id: [u8; 32],
    hide_totals: bool,
    rng: &mut R,
) -> Result<RoundPlan, ProveError> {
    let (k, b) = (circuit.assets, circuit.batch_size);
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

    // The running-sum chain starts at the round context's public element over zero sums and ends
    // at the totals under blinder zero (or, hiding them, a random one); every commitment in
    // between is blinded at random.
    let context =
        RoundContext { round_id: &round_id, assets: &assets, batch_size: b as u64, leaf_count: accounts.len() as u64 };
    let batch_count = accounts.len().div_ceil(b);
    let mut running = vec![0u128; k];
    let mut prev_blinder = context.element();
    let mut prev_commitment = sum_commitment(prev_blinder, &field_sums(&running));
    let mut subtrees = Vec::with_capacity(batch_count);
    let mut assignments = Vec::with_capacity(batch_count);
    for (i, (chunk, chunk_salts)) in accounts.chunks(b).zip(salts.chunks(b)).enumerate() {
        let mut slots: Vec<AccountSlot> = chunk
            .iter()
            .zip(chunk_salts)
            .map(|(a, salt)| AccountSlot {
                commitment: account_commitment(&a.id, salt),
                balances: a.balances.iter().map(|&x| Fr::from(x)).collect(),
            })
            .collect();
        slots.resize(b, AccountSlot::padding(k));
        let subtree = shape.build_batch(slots.iter().map(|s| leaf_from_elements(s.commitment, &s.balances)).collect());
        let prev_sums = field_sums(&running);
        for a in chunk {
            for (r, x) in running.iter_mut().zip(&a.balances) {
                // Fewer than 2^64 accounts of values below 2^64 cannot overflow u128; qed.
                *r += u128::from(*x);
            }
        }
        let next_blinder = if i + 1 == batch_count && !hide_totals { Fr::zero() } else { Fr::rand(rng) };
        let next_commitment = sum_commitment(next_blinder, &field_sums(&running));
        assignments.push(BatchAssignment {
            public: BatchPublic { prev_commitment, next_commitment, root: subtree.root() },
            accounts: slots,
            prev_sums,
            prev_blinder,
            next_blinder,
        });
        subtrees.push(subtree);
        prev_blinder = next_blinder;
        prev_commitment = next_commitment;
    }
    let top = shape.build_top(subtrees.iter().map(Levels::root).collect());
    Ok(RoundPlan {
        round_id,
        assets,
        accounts,
        salts,
        shape,
        subtrees,
        top,
        assignments,
        totals: running,
        final_blinder: prev_blinder,
    })
}

impl RoundPlan {
    /// One inclusion proof per account, in leaf order, made as the iterator is advanced.
    pub fn inclusion_proofs(&self, manifest_digest: Option<[u8; 48]>) -> impl Iterator<Item = InclusionProof> + '_ {
        let b = self.shape.batch_size as usize;
        let format = if manifest_digest.is_some() { FORMAT_V2 } else { FORMAT_V1 };
        let manifest_digest = manifest_digest.map(hex::encode);
        let round_id = hex::encode(self.round_id);
        let root = element_to_hex(&self.top.root());
        self.accounts.iter().zip(&self.salts).enumerate().map(move |(index, (account, salt))| {
            let mut path = self.subtrees[index / b].path(index % b);
            path.extend(self.top.path(index / b));
            InclusionProof {
                format: format.to_owned(),
                manifest_digest: manifest_digest.clone(),
                round_id: round_id.clone(),
                root: root.clone(),
                account_id: account.id.clone(),
                salt: hex::encode(salt.0),
                balances: self
                    .assets
                    .iter()
                    .zip(&account.balances)
                    .map(|(asset, amount)| Balance { asset: asset.clone(), amount: amount.to_string() })
                    .collect(),
                leaf_index: index as u64,
                path: encode_path(&path),
            }
        })
    }
}

/// Proves `ledger` as round `round_id`, publishing every total. `on_batch(done, total)` is called
/// after each proof.
pub fn prove_round<R: RngCore + CryptoRng>(
    keys: &ProvingKeys,
    ledger: Ledger,
    round_id: [u8; 32],
    rng: &mut R,
    on_batch: &mut dyn FnMut(usize, usize),
) -> Result<ProvedRound, ProveError> {
    prove_private_round(keys, ledger, round_id, &[], rng, on_batch)
}

/// [`prove_round`] in private mode (spec §13): `hidden[k] = Some(bound)` hides asset `k`'s total
/// and proves it at most `bound` (its reserves, clamped by
/// `attestation::opening::reserves_bound`); `None`, or an empty `hidden`, publishes it. A hidden
/// total above its bound cannot be proven: the round is refused before any batch is proven.
pub fn prove_private_round<R: RngCore + CryptoRng>(
    keys: &ProvingKeys,
    ledger: Ledger,
    round_id: [u8; 32],
    hidden: &[Option<u128>],
    rng: &mut R,
    on_batch: &mut dyn FnMut(usize, usize),
) -> Result<ProvedRound, ProveError> {
    let hides = hidden.iter().any(Option::is_some);
    if hides && hidden.len() != keys.shape.assets {
        return Err(ProveError::AssetCount { keys: keys.shape.assets, ledger: hidden.len() });
    }
    let mut plan = plan_round(keys.shape, ledger, round_id, hides, rng)?;
    let opening = if hides {
        let opening_keys = keys.opening.as_ref().ok_or(ProveError::Opening(
            "the keys were made without the opening's (a version-1 setup); run a new setup to hide totals".into(),
        ))?;
        let bounds: Vec<u128> = hidden.iter().zip(&plan.totals).map(|(h, t)| h.unwrap_or(*t)).collect();
        let flags: Vec<bool> = hidden.iter().map(Option::is_some).collect();
        let assignment = OpeningAssignment::new(plan.final_blinder, &plan.totals, &bounds, &flags)
            .map_err(|e| ProveError::Opening(e.to_string()))?;
        // Checked before the batches, so a total above its reserves costs no proving time.
        crate::circuit::opening::check(opening_keys, &assignment).map_err(|e| ProveError::Opening(e.to_string()))?;
        Some((opening_keys, assignment))
    } else {
        None
    };
    let total = plan.assignments.len();
    let mut batches = Vec::with_capacity(total);
    for (i, assignment) in plan.assignments.iter().enumerate() {
        let proof = prove_batch(keys, assignment, i, rng)?;
        batches.push(Batch { root: assignment.public.root, sum_commitment: assignment.public.next_commitment, proof });
        on_batch(i + 1, total);
    }
    // The witnesses are the plan's largest part and are not needed any more.
    plan.assignments = Vec::new();
    let opening = match opening {
        Some((opening_keys, assignment)) => Some(Opening {
            verifying_key: opening_keys.verifying_key().clone(),
            proof: crate::circuit::opening::prove(opening_keys, &assignment, rng)
                .map_err(|e| ProveError::Opening(e.to_string()))?,
        }),
        None => None,
    };
    let totals = plan
        .totals
        .iter()
        .enumerate()
        .map(|(k, total)| match hidden.get(k) {
            Some(Some(_)) => None,
            _ => Some(*total),
        })
        .collect();
    let bundle = Bundle {
        attestation: UNATTESTED.to_owned(),
        round_id,
        leaf_count: plan.accounts.len() as u64,
        totals,
        root: plan.top.root(),
        shape: plan.shape,
        assets: plan.assets.clone(),
        verifying_key: keys.verifying_key().clone(),
        batches,
        opening,
    };
    Ok(ProvedRound { bundle, plan })
}
