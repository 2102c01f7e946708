//! The Poseidon permutation and the fixed-length hash built on it: the native twin of the
//! enclave's in-circuit gadget.
//!
//! Parameters: x^5 S-box, 8 full rounds, the partial-round count of the width below, round
//! constants and MDS matrix from the Grain LFSR procedure of the Poseidon paper as implemented by
//! arkworks' `find_poseidon_ark_and_mds`. Widths 2 to 17 (rate 1 to 16, capacity 1) are defined.
//! The hash mode is specified in `docs/commitment-spec.md` §3.

use std::sync::OnceLock;

use ark_bls12_381::Fr;
use ark_crypto_primitives::sponge::poseidon::find_poseidon_ark_and_mds;
use ark_ff::{Field, PrimeField, Zero};

/// The S-box exponent.
pub const ALPHA: u64 = 5;
/// Full rounds, half before and half after the partial rounds.
pub const FULL_ROUNDS: usize = 8;
/// The widest permutation defined; longer inputs are absorbed in balanced chunks.
pub const MAX_WIDTH: usize = 17;
/// Elements absorbed per permutation at most (the capacity is always one element).
pub const MAX_RATE: usize = MAX_WIDTH - 1;

/// Partial rounds for a state of `width` elements over a ~255-bit field with x^5: circomlib's
/// table, which is at least the reference `calc_round_numbers.py` result at 128-bit security with
/// its margin (56 for widths up to 5, 57 up to 25) for every width; see the spec §3.1.
pub fn partial_rounds(width: usize) -> Option<usize> {
    const TABLE: [usize; 16] = [56, 57, 56, 60, 60, 63, 64, 63, 60, 66, 60, 65, 70, 60, 64, 68];
    width.checked_sub(2).and_then(|i| TABLE.get(i)).copied()
}

/// Round constants and MDS matrix of one permutation width.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoseidonParams<F> {
    /// Number of state elements.
    pub width: usize,
    /// Number of partial rounds.
    pub partial_rounds: usize,
    /// `ark[round][i]`: added to state element `i` at the start of `round`.
    pub ark: Vec<Vec<F>>,
    /// `mds[i][j]`: the linear layer, `new[i] = sum_j mds[i][j] * old[j]`.
    pub mds: Vec<Vec<F>>,
}

impl<F: PrimeField> PoseidonParams<F> {
    /// Derives the parameters of `width` with the Grain LFSR; `None` for an undefined width.
    pub fn generate(width: usize) -> Option<Self> {
        let partial_rounds = partial_rounds(width)?;
        let (ark, mds) = find_poseidon_ark_and_mds::<F>(
            u64::from(F::MODULUS_BIT_SIZE),
            width - 1,
            FULL_ROUNDS as u64,
            partial_rounds as u64,
            0,
        );
        Some(Self { width, partial_rounds, ark, mds })
    }

    /// Total rounds.
    pub fn rounds(&self) -> usize {
        FULL_ROUNDS + self.partial_rounds
    }

    /// Whether `round` applies the S-box to every element (otherwise only to element 0).
    pub fn is_full_round(&self, round: usize) -> bool {
        round < FULL_ROUNDS / 2 || round >= FULL_ROUNDS / 2 + self.partial_rounds
    }

    /// Applies the permutation in place. `state.len()` must equal `self.width`.
    pub fn permute(&self, state: &mut [F]) {
        debug_assert_eq!(state.len(), self.width);
        let mut next = vec![F::zero(); self.width];
        for round in 0..self.rounds() {
            for (s, c) in state.iter_mut().zip(&self.ark[round]) {
                *s += c;
            }
            if self.is_full_round(round) {
                state.iter_mut().for_each(|s| *s = s.pow([ALPHA]));
            } else if let Some(first) = state.first_mut() {
                *first = first.pow([ALPHA]);
            }
            for (n, row) in next.iter_mut().zip(&self.mds) {
                *n = row.iter().zip(state.iter()).map(|(m, s)| *m * s).sum();
            }
            state.copy_from_slice(&next);
        }
    }
}

/// The parameters of every defined width over the BLS12-381 scalar field, derived once.
pub fn params(width: usize) -> Option<&'static PoseidonParams<Fr>> {
    static ALL: OnceLock<Vec<PoseidonParams<Fr>>> = OnceLock::new();
    let all = ALL.get_or_init(|| (2..=MAX_WIDTH).filter_map(PoseidonParams::generate).collect());
    width.checked_sub(2).and_then(|i| all.get(i))
}

/// The rate used to hash `len` elements: as wide as the input up to `MAX_RATE`; beyond it, the
/// fewest chunks (`ceil(len / MAX_RATE)`) of as equal a size as possible, so no permutation is
/// spent on a short remainder.
pub fn rate_for(len: usize) -> usize {
    let chunks = len.div_ceil(MAX_RATE).max(1);
    len.div_ceil(chunks).clamp(1, MAX_RATE)
}

/// The domain tag placed in the capacity element: `kind * 2^64 + len` (spec §3).
pub fn domain_tag<F: PrimeField>(kind: u64, len: usize) -> F {
    F::from((u128::from(kind) << 64) | len as u128)
}

/// Hashes a fixed-length input under a domain tag (spec §3): the state starts as
/// `[tag, 0, ..]`; each chunk of `rate` inputs is added to elements `1..` and the state permuted;
/// the output is element 1. Every input length has its own tag, so no padding rule is needed.
pub fn hash(tag: Fr, inputs: &[Fr]) -> Fr {
    let rate = rate_for(inputs.len());
    let Some(params) = params(rate + 1) else {
        unreachable!("rate_for returns 1..=MAX_RATE, all of which have parameters; qed.")
    };
    let mut state = vec![Fr::zero(); rate + 1];
    state[0] = tag;
    if inputs.is_empty() {
        params.permute(&mut state);
    }
    for chunk in inputs.chunks(rate) {
        for (s, x) in state[1..].iter_mut().zip(chunk) {
            *s += x;
        }
        params.permute(&mut state);
    }
    state[1]
}

/// Constant `x^ALPHA`, exposed for the gadget's constant folding.
pub fn sbox<F: Field>(x: F) -> F {
    x.pow([ALPHA])
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_crypto_primitives::sponge::{
        poseidon::{PoseidonConfig, PoseidonSponge},
        CryptographicSponge,
    };
    use ark_ff::UniformRand;
    use ark_std::test_rng;

    /// Our permutation agrees with arkworks' sponge, which applies the same permutation when it
    /// squeezes after absorbing into a fresh state.
    #[test]
    fn permutation_matches_arkworks_sponge() {
        let mut rng = test_rng();
        for width in 2..=MAX_WIDTH {
            let p = params(width).unwrap();
            let config =
                PoseidonConfig::new(FULL_ROUNDS, p.partial_rounds, ALPHA, p.mds.clone(), p.ark.clone(), width - 1, 1);
            for _ in 0..4 {
                let inputs: Vec<Fr> = (0..width - 1).map(|_| Fr::rand(&mut rng)).collect();
                let mut sponge = PoseidonSponge::new(&config);
                sponge.absorb(&inputs);
                let theirs: Vec<Fr> = sponge.squeeze_field_elements(1);
                let mut state = vec![Fr::zero(); width];
                state[1..].copy_from_slice(&inputs);
                p.permute(&mut state);
                assert_eq!(theirs[0], state[1], "width {width}");
            }
        }
    }

    #[test]
    fn undefined_widths_have_no_parameters() {
        assert!(params(0).is_none());
        assert!(params(1).is_none());
        assert!(params(MAX_WIDTH + 1).is_none());
    }

    #[test]
    fn tags_separate_lengths_and_kinds() {
        let x = [Fr::from(7u64), Fr::from(9u64)];
        assert_ne!(hash(domain_tag(2, 2), &x), hash(domain_tag(3, 2), &x));
        assert_ne!(hash(domain_tag(2, 1), &x[..1]), hash(domain_tag(2, 2), &[x[0], Fr::zero()]));
    }

    #[test]
    fn rates_balance_long_inputs() {
        assert_eq!([rate_for(0), rate_for(1), rate_for(8), rate_for(16)], [1, 1, 8, 16]);
        assert_eq!([rate_for(17), rate_for(20), rate_for(32), rate_for(33)], [9, 10, 16, 11]);
    }

    #[test]
    fn long_inputs_absorb_in_chunks() {
        let inputs: Vec<Fr> = (0..40u64).map(Fr::from).collect();
        for i in [0, 19, 39] {
            let mut changed = inputs.clone();
            changed[i] += Fr::from(1u64);
            assert_ne!(hash(domain_tag(2, 40), &inputs), hash(domain_tag(2, 40), &changed));
        }
    }
}
