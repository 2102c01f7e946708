//! The batch statement (spec §7): given public `(C_prev, C_next, root)`, the prover knows
//! `B` accounts `(commitment, balances)` with every balance in [0, 2^64), whose leaves form the
//! subtree with that root, and running sums `S_prev` and blinders such that
//! `C_prev = H(r_prev, S_prev)` and `C_next = H(r_next, S_prev + Σ balances)` with each new sum
//! below 2^128 (so no sum can wrap around the field).

use ark_bls12_381::Fr;
use ark_ff::{AdditiveGroup, BigInteger, Field, PrimeField, Zero};
use attestation::commitment::kind;
use attestation::poseidon::domain_tag;
use attestation::tree::{depth_for, empty_root, ARITY};

use super::backend::{enforce_equal, Backend, Lc};
use super::poseidon::hash;

/// Bits of every balance.
pub const BALANCE_BITS: usize = 64;
/// Bits of every running sum.
pub const SUM_BITS: usize = 128;

/// The setup-time parameters of the batch circuit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchShape {
    /// Account slots per batch (B).
    pub batch_size: usize,
    /// Balances per account (K).
    pub assets: usize,
}

/// One account slot of a batch, field-encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountSlot {
    /// The account commitment `H(id, salt)`, or 0 for a padding slot.
    pub commitment: Fr,
    /// One balance per asset.
    pub balances: Vec<Fr>,
}

impl AccountSlot {
    /// The canonical zero slot that pads a partial last batch.
    pub fn padding(assets: usize) -> Self {
        Self { commitment: Fr::zero(), balances: vec![Fr::zero(); assets] }
    }
}

/// The public inputs of one batch proof.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchPublic {
    /// The running-sum commitment before the batch.
    pub prev_commitment: Fr,
    /// The running-sum commitment after the batch.
    pub next_commitment: Fr,
    /// The batch subtree's root.
    pub root: Fr,
}

/// Everything the prover supplies for one batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchAssignment {
    /// The public inputs.
    pub public: BatchPublic,
    /// Exactly `batch_size` slots.
    pub accounts: Vec<AccountSlot>,
    /// The running sums opened from `prev_commitment`.
    pub prev_sums: Vec<Fr>,
    /// The blinder of `prev_commitment`.
    pub prev_blinder: Fr,
    /// The blinder of `next_commitment`.
    pub next_blinder: Fr,
}

impl BatchAssignment {
    /// An all-zero assignment of the right shape, for setup and constraint counting.
    pub fn placeholder(shape: &BatchShape) -> Self {
        Self {
            public: BatchPublic { prev_commitment: Fr::zero(), next_commitment: Fr::zero(), root: Fr::zero() },
            accounts: vec![AccountSlot::padding(shape.assets); shape.batch_size],
            prev_sums: vec![Fr::zero(); shape.assets],
            prev_blinder: Fr::zero(),
            next_blinder: Fr::zero(),
        }
    }
}

/// Constrains `x` to [0, 2^bits): bits 0..bits-1 are witnesses, the top bit is
/// `(x - Σ 2^i b_i) / 2^(bits-1)`; all are constrained boolean (`b * b = b`), `bits` constraints.
pub fn range_check<B: Backend<Fr>>(cs: &mut B, x: &Lc<Fr>, bits: usize, label: &'static str) {
    let value = x.value().into_bigint();
    let mut weighted = Vec::with_capacity(bits);
    let mut power = Fr::from(1u64);
    for i in 0..bits - 1 {
        let bit = cs.witness(Fr::from(u64::from(value.get_bit(i))));
        cs.enforce(&bit, &bit, &bit, label);
        weighted.push((power, bit));
        power.double_in_place();
    }
    let parts: Vec<(Fr, &Lc<Fr>)> = weighted.iter().map(|(k, b)| (*k, b)).collect();
    let low = Lc::combine(&parts);
    // power = 2^(bits-1), never zero in a prime field of more than `bits` bits; qed.
    let top = x.sub(&low).scale(power.inverse().unwrap_or_default());
    cs.enforce(&top, &top, &top, label);
}

/// Generates the batch circuit into `cs`. The assignment must have the shape's sizes.
pub fn synthesize<B: Backend<Fr>>(cs: &mut B, shape: &BatchShape, a: &BatchAssignment) {
    let prev_commitment = cs.input(a.public.prev_commitment);
    let next_commitment = cs.input(a.public.next_commitment);
    let root = cs.input(a.public.root);
    let sum_tag = domain_tag(kind::SUM, shape.assets + 1);
    let leaf_tag = domain_tag(kind::LEAF, shape.assets + 1);
    let node_tag = domain_tag(kind::NODE, ARITY);

    // Open the incoming running sums.
    let mut opening = vec![cs.witness(a.prev_blinder)];
    opening.extend(a.prev_sums.iter().map(|s| cs.witness(*s)));
    let opened = hash(cs, sum_tag, &opening);
    enforce_equal(cs, &opened, &prev_commitment, "sums/prev");
    let prev_sums: Vec<Lc<Fr>> = opening.split_off(1);
    let mut per_asset: Vec<Vec<Lc<Fr>>> = prev_sums.into_iter().map(|s| vec![s]).collect();

    // Leaves: range-checked balances, hashed with the account commitment, added to the sums.
    let mut level = Vec::with_capacity(shape.batch_size);
    for account in &a.accounts {
        let mut inputs = vec![cs.witness(account.commitment)];
        for (k, balance) in account.balances.iter().enumerate() {
            let balance = cs.witness(*balance);
            range_check(cs, &balance, BALANCE_BITS, "balance/range");
            if let Some(terms) = per_asset.get_mut(k) {
                terms.push(balance.clone());
            }
            inputs.push(balance);
        }
        level.push(hash(cs, leaf_tag, &inputs));
    }

    // Close the outgoing running sums.
    let sums: Vec<Lc<Fr>> = per_asset
        .iter()
        .map(|terms| Lc::combine(&terms.iter().map(|t| (Fr::from(1u64), t)).collect::<Vec<_>>()))
        .collect();
    for sum in &sums {
        range_check(cs, sum, SUM_BITS, "sums/range");
    }
    let mut closing = vec![cs.witness(a.next_blinder)];
    closing.extend(sums);
    let closed = hash(cs, sum_tag, &closing);
    enforce_equal(cs, &closed, &next_commitment, "sums/next");

    // The subtree: unused slots beyond B are empty constants, so nodes over them fold away.
    for height in 0..depth_for(shape.batch_size as u64) {
        let empty = Lc::constant(empty_root(height));
        level = level
            .chunks(ARITY)
            .map(|chunk| {
                let mut children = chunk.to_vec();
                children.resize(ARITY, empty.clone());
                hash(cs, node_tag, &children)
            })
            .collect();
    }
    // A batch of no slots (refused by setup, but callable here) has the empty root.
    let computed = level.first().cloned().unwrap_or_else(|| Lc::constant(empty_root(0)));
    enforce_equal(cs, &computed, &root, "tree/root");
}
