//! The in-circuit twin of `attestation::poseidon`: the same permutation and hash mode over
//! linear combinations. An S-box costs three constraints (x², x⁴, x⁵); S-boxes of constants and
//! the linear layers cost none.

use ark_bls12_381::Fr;
use ark_ff::PrimeField;
use attestation::poseidon::{params, rate_for, sbox as native_sbox, PoseidonParams};

use super::backend::{Backend, Lc};

/// `x^5` with three constraints, or none when `x` is constant.
pub fn sbox<F: PrimeField, B: Backend<F>>(cs: &mut B, x: &Lc<F>) -> Lc<F> {
    if let Some(c) = x.as_constant() {
        return Lc::constant(native_sbox(c));
    }
    let x2 = cs.witness(x.value().square());
    cs.enforce(x, x, &x2, "poseidon/x2");
    let x4 = cs.witness(x2.value().square());
    cs.enforce(&x2, &x2, &x4, "poseidon/x4");
    let x5 = cs.witness(x4.value() * x.value());
    cs.enforce(&x4, x, &x5, "poseidon/x5");
    x5
}

/// Applies the permutation to `state` (of `params.width` elements).
pub fn permute<F: PrimeField, B: Backend<F>>(cs: &mut B, params: &PoseidonParams<F>, state: &mut [Lc<F>]) {
    for round in 0..params.rounds() {
        for (s, c) in state.iter_mut().zip(&params.ark[round]) {
            *s = s.add_constant(*c);
        }
        if params.is_full_round(round) {
            for s in state.iter_mut() {
                *s = sbox(cs, s);
            }
        } else if let Some(first) = state.first_mut() {
            *first = sbox(cs, first);
        }
        let mixed: Vec<Lc<F>> = params
            .mds
            .iter()
            .map(|row| {
                let parts: Vec<(F, &Lc<F>)> = row.iter().copied().zip(state.iter()).collect();
                Lc::combine(&parts)
            })
            .collect();
        state.clone_from_slice(&mixed);
    }
}

/// The hash of `attestation::poseidon::hash`, in circuit.
pub fn hash<B: Backend<Fr>>(cs: &mut B, tag: Fr, inputs: &[Lc<Fr>]) -> Lc<Fr> {
    let rate = rate_for(inputs.len());
    let Some(params) = params(rate + 1) else {
        unreachable!("rate_for returns 1..=MAX_RATE, all of which have parameters; qed.")
    };
    let mut state = vec![Lc::constant(Fr::from(0u64)); rate + 1];
    state[0] = Lc::constant(tag);
    if inputs.is_empty() {
        permute(cs, params, &mut state);
    }
    for chunk in inputs.chunks(rate) {
        for (s, x) in state[1..].iter_mut().zip(chunk) {
            *s = s.add(x);
        }
        permute(cs, params, &mut state);
    }
    state.swap_remove(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::circuit::backend::{R1csBackend, WitnessBackend};
    use attestation::poseidon::{domain_tag, hash as native_hash};
    use proptest::prelude::*;

    fn gadget_hash_in_both_modes(tag: Fr, inputs: &[Fr]) -> (Fr, Fr, usize) {
        let mut r1cs = R1csBackend::default();
        let vars: Vec<_> = inputs.iter().map(|x| r1cs.witness(*x)).collect();
        let out = hash(&mut r1cs, tag, &vars);
        assert_eq!(r1cs.first_unsatisfied(), None);
        let recorded = r1cs.evaluate(&out);

        let mut w = WitnessBackend::default();
        let vars: Vec<_> = inputs.iter().map(|x| w.witness(*x)).collect();
        let out_w = hash(&mut w, tag, &vars);
        assert_eq!(w.unsatisfied, None);
        assert_eq!(w.witnesses, r1cs.witnesses, "both modes assign the same variables");
        assert_eq!(w.num_constraints, r1cs.constraints.len());
        (recorded, out_w.value(), w.num_constraints)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// The gadget computes the native hash for every length (one chunk and several).
        #[test]
        fn gadget_matches_native(seed in any::<[u64; 40]>(), len in 1usize..=40, kind in 1u64..5) {
            let inputs: Vec<Fr> = seed[..len].iter().map(|&x| Fr::from(x) * Fr::from(u64::MAX) + Fr::from(x)).collect();
            let tag = domain_tag(kind, len);
            let (recorded, witnessed, _) = gadget_hash_in_both_modes(tag, &inputs);
            let native = native_hash(tag, &inputs);
            prop_assert_eq!(recorded, native);
            prop_assert_eq!(witnessed, native);
        }
    }

    #[test]
    fn constraint_counts_per_width() {
        // 3 constraints per S-box: 8 full rounds of `width` S-boxes plus the partial rounds,
        // less the first-round S-box of the constant capacity element.
        for (len, width, partial) in [(2usize, 3usize, 57usize), (4, 5, 60), (8, 9, 63), (9, 10, 60), (16, 17, 68)] {
            let inputs: Vec<Fr> = (0..len as u64).map(Fr::from).collect();
            let (_, _, constraints) = gadget_hash_in_both_modes(domain_tag(2, len), &inputs);
            assert_eq!(constraints, 3 * (8 * width + partial - 1), "width {width}");
        }
    }

    #[test]
    fn constant_inputs_cost_nothing() {
        let mut w = WitnessBackend::<Fr>::default();
        let inputs = vec![Lc::constant(Fr::from(0u64)); 8];
        let out = hash(&mut w, domain_tag(3, 8), &inputs);
        assert_eq!(w.num_constraints, 0);
        assert_eq!(out.as_constant(), Some(native_hash(domain_tag(3, 8), &[Fr::from(0u64); 8])));
    }
}
