//! Whole rounds through the library: an honest round verifies with the `attestation` crate, and
//! every way of tampering with the bundle or an inclusion proof is refused with the right error.

mod common;

use ark_bls12_381::Fr;
use attestation::bundle::Bundle;
use attestation::commitment::{account_commitment, element_to_hex, leaf, Salt};
use attestation::error::{InclusionError, VerifyError};
use attestation::inclusion::{self, InclusionProof};
use attestation::liabilities::{verify, verifying_key_sha256, VerifiedLiabilities};
use attestation::tree::{depth_for, Levels};
use common::{keys, rng};
use enclave::circuit::batch::BatchShape;
use enclave::ledger::{Account, Ledger};
use enclave::round::{prove_round, ProvedRound};
use proptest::prelude::*;

/// Every inclusion proof of a round, made at once (fine for the small rounds of these tests).
fn proofs(round: &enclave::round::ProvedRound) -> Vec<InclusionProof> {
    round.inclusion_proofs(None).collect()
}

fn ledger(n: usize, assets: usize, seed: u64) -> Ledger {
    use rand::Rng;
    let mut r = rng(seed);
    Ledger {
        assets: (0..assets).map(|i| format!("A{i}")).collect(),
        accounts: (0..n)
            .map(|i| Account {
                id: format!("acct-{seed}-{i}"),
                balances: (0..assets)
                    .map(|_| match r.gen_range(0..4) {
                        0 => 0,
                        1 => u64::MAX,
                        _ => r.gen(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

fn prove(shape: BatchShape, ledger: Ledger, seed: u64) -> ProvedRound {
    let mut round_id = [0u8; 32];
    round_id[..8].copy_from_slice(&seed.to_le_bytes());
    prove_round(&keys(shape), ledger, round_id, &mut rng(seed), &mut |_, _| {}).expect("prove")
}

fn reverify(bundle: &Bundle) -> Result<VerifiedLiabilities, VerifyError> {
    let decoded = Bundle::decode(&bundle.encode())?;
    verify(decoded, None)
}

const SHAPE: BatchShape = BatchShape { batch_size: 4, assets: 2 };

fn three_batch_round(seed: u64) -> ProvedRound {
    prove(SHAPE, ledger(10, 2, seed), seed)
}

#[test]
fn honest_round_verifies_with_exact_totals_and_every_inclusion_proof() {
    let l = ledger(10, 2, 1);
    let expected = l.totals();
    let round = prove(SHAPE, l.clone(), 1);
    let verified = reverify(&round.bundle).unwrap();
    assert_eq!(verified.bundle().totals, expected.iter().copied().map(Some).collect::<Vec<_>>());
    assert_eq!(verified.bundle().leaf_count, 10);
    assert_eq!(verified.bundle().batches.len(), 3);
    assert_eq!(proofs(&round).len(), 10);
    for p in &proofs(&round) {
        let ok = inclusion::verify(&verified, None, p).unwrap();
        let original = l.accounts.iter().find(|a| a.id == p.account_id).unwrap();
        let balances: Vec<u64> = ok.balances.iter().map(|(_, b)| *b).collect();
        assert_eq!(balances, original.balances);
    }
    let pinned = verifying_key_sha256(&round.bundle.verifying_key);
    assert!(verify(round.bundle.clone(), Some(pinned)).is_ok());
    assert!(matches!(verify(round.bundle, Some([0; 32])), Err(VerifyError::VerifyingKeyMismatch { .. })));
}

#[test]
fn altered_public_inputs_are_refused() {
    let round = three_batch_round(2);
    let mut b = round.bundle.clone();
    b.batches[1].root += Fr::from(1u64);
    assert_eq!(reverify(&b).unwrap_err(), VerifyError::BatchProof { index: 1 });

    let mut b = round.bundle.clone();
    b.batches[0].sum_commitment += Fr::from(1u64);
    assert_eq!(reverify(&b).unwrap_err(), VerifyError::BatchProof { index: 0 });

    let mut b = round.bundle.clone();
    b.totals[1] = b.totals[1].map(|t| t - 1);
    assert_eq!(reverify(&b).unwrap_err(), VerifyError::TotalsMismatch);

    let mut b = round.bundle.clone();
    b.root += Fr::from(1u64);
    assert_eq!(reverify(&b).unwrap_err(), VerifyError::RootMismatch);

    let mut b = round.bundle.clone();
    b.round_id[0] ^= 1;
    assert_eq!(reverify(&b).unwrap_err(), VerifyError::BatchProof { index: 0 });
}

#[test]
fn removed_duplicated_or_reordered_batches_are_refused() {
    let round = three_batch_round(3);

    let mut removed = round.bundle.clone();
    removed.batches.remove(1);
    removed.leaf_count = 8;
    removed.shape = attestation::tree::TreeShape::new(4, 8).unwrap();
    // The leaf count is bound into the chain's start, so the very first proof fails.
    assert_eq!(reverify(&removed).unwrap_err(), VerifyError::BatchProof { index: 0 });

    let mut duplicated = round.bundle.clone();
    duplicated.batches.insert(1, duplicated.batches[0].clone());
    duplicated.leaf_count = 14;
    duplicated.shape = attestation::tree::TreeShape::new(4, 14).unwrap();
    assert_eq!(reverify(&duplicated).unwrap_err(), VerifyError::BatchProof { index: 0 });

    // Even with the leaf count left alone, a batch proven twice cannot stand in for another:
    // the second copy's incoming sum commitment is not the chain's.
    let mut replayed = round.bundle.clone();
    replayed.batches[1] = replayed.batches[0].clone();
    assert_eq!(reverify(&replayed).unwrap_err(), VerifyError::BatchProof { index: 1 });

    let mut reordered = round.bundle.clone();
    reordered.batches.swap(0, 1);
    assert!(matches!(reverify(&reordered).unwrap_err(), VerifyError::BatchProof { .. } | VerifyError::TotalsMismatch));

    let mut count_mismatch = round.bundle.clone();
    count_mismatch.batches.pop();
    assert!(matches!(reverify(&count_mismatch).unwrap_err(), VerifyError::Bundle(_)));
}

#[test]
fn a_proof_from_another_round_is_refused() {
    let a = three_batch_round(4);
    let b = three_batch_round(5);
    for i in 0..3 {
        let mut spliced = b.bundle.clone();
        spliced.batches[i] = a.bundle.batches[i].clone();
        assert!(reverify(&spliced).is_err(), "batch {i} from another round accepted");
    }
    // Even the same ledger proven twice gives unlinkable, non-interchangeable rounds.
    let again = prove(SHAPE, ledger(10, 2, 4), 6);
    let mut spliced = again.bundle.clone();
    spliced.batches[0] = a.bundle.batches[0].clone();
    assert_eq!(reverify(&spliced).unwrap_err(), VerifyError::BatchProof { index: 0 });
}

#[test]
fn tampered_inclusion_proofs_are_refused() {
    let round = three_batch_round(7);
    let verified = reverify(&round.bundle).unwrap();
    let good = proofs(&round)[5].clone();
    assert!(inclusion::verify(&verified, None, &good).is_ok());

    let mut p = good.clone();
    p.balances[0].amount = (p.balances[0].amount.parse::<u64>().unwrap_or(0) ^ 1).to_string();
    assert_eq!(inclusion::verify(&verified, None, &p), Err(InclusionError::NotInTree));

    let mut p = good.clone();
    p.account_id.push('x');
    assert_eq!(inclusion::verify(&verified, None, &p), Err(InclusionError::NotInTree));

    let mut p = good.clone();
    p.salt = hex::encode([0u8; 32]);
    assert_eq!(inclusion::verify(&verified, None, &p), Err(InclusionError::NotInTree));

    let mut p = good.clone();
    p.path[0].swap(0, 1);
    assert_eq!(inclusion::verify(&verified, None, &p), Err(InclusionError::NotInTree));

    let mut p = good.clone();
    p.path.swap(0, 1);
    assert_eq!(inclusion::verify(&verified, None, &p), Err(InclusionError::NotInTree));

    let mut p = good.clone();
    p.leaf_index ^= 1;
    assert_eq!(inclusion::verify(&verified, None, &p), Err(InclusionError::NotInTree));

    let mut p = good.clone();
    p.path.pop();
    assert!(matches!(inclusion::verify(&verified, None, &p), Err(InclusionError::PathLength { .. })));

    let mut p = good.clone();
    p.round_id = hex::encode([9u8; 32]);
    assert!(matches!(inclusion::verify(&verified, None, &p), Err(InclusionError::WrongRound { .. })));

    let mut p = good.clone();
    p.balances.swap(0, 1);
    assert!(matches!(inclusion::verify(&verified, None, &p), Err(InclusionError::AssetMismatch { .. })));

    let mut p = good;
    p.balances[0].amount = "18446744073709551616".into();
    assert!(matches!(inclusion::verify(&verified, None, &p), Err(InclusionError::BadAmount { .. })));
}

#[test]
fn paths_to_padding_or_unproven_leaves_are_refused() {
    // 10 accounts in batches of 4: slots 10 and 11 of the last batch are padding.
    let round = three_batch_round(8);
    let verified = reverify(&round.bundle).unwrap();
    let last = proofs(&round).iter().find(|p| p.leaf_index == 9).unwrap().clone();

    let mut padding = last.clone();
    padding.leaf_index = 10;
    assert_eq!(
        inclusion::verify(&verified, None, &padding),
        Err(InclusionError::IndexOutOfRange { index: 10, leaf_count: 10 })
    );

    // A leaf for an account that was never proven, with a path that is internally consistent
    // in a tree the exchange made up: its root is not the verified one...
    let salt = Salt([5; 32]);
    let mallory = leaf(account_commitment("mallory", &salt), &[1, 1]);
    let made_up = Levels::build(vec![mallory; 4], 0, depth_for(4));
    let mut forged = last.clone();
    forged.account_id = "mallory".into();
    forged.salt = hex::encode(salt.0);
    forged.leaf_index = 0;
    forged.balances.iter_mut().for_each(|b| b.amount = "1".into());
    let mut path = made_up.path(0);
    path.extend(Levels::build(vec![made_up.root(); 3], 1, 1).path(0));
    forged.path = attestation::inclusion::encode_path(&path);
    assert_eq!(inclusion::verify(&verified, None, &forged), Err(InclusionError::NotInTree));

    // ...and a bundle claiming that made-up tree's root is refused, because the verifier computes
    // every node above the batch roots itself.
    let mut claimed = round.bundle.clone();
    claimed.root = Levels::build(vec![made_up.root(); 3], 1, 1).root();
    assert_eq!(reverify(&claimed).unwrap_err(), VerifyError::RootMismatch);
    forged.root = element_to_hex(&claimed.root);
    assert_eq!(inclusion::verify(&verified, None, &forged), Err(InclusionError::WrongRoot));
}

#[test]
fn single_account_single_batch_round() {
    let round = prove(BatchShape { batch_size: 1, assets: 1 }, ledger(1, 1, 9), 9);
    let verified = reverify(&round.bundle).unwrap();
    assert!(inclusion::verify(&verified, None, &proofs(&round)[0]).is_ok());
    assert!(proofs(&round)[0].path.is_empty());
}

#[test]
fn mismatched_asset_count_is_refused() {
    let err = prove_round(&keys(SHAPE), ledger(3, 1, 10), [0; 32], &mut rng(10), &mut |_, _| {}).err();
    assert_eq!(err, Some(enclave::error::ProveError::AssetCount { keys: 2, ledger: 1 }));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]
    /// Random ledgers (one batch, several, partial last batch; K = 1 and K = 3) prove and verify,
    /// the totals are the plain sums, every inclusion proof verifies and an altered one fails.
    #[test]
    fn random_ledgers_prove_and_verify(n in 1usize..14, three_assets in any::<bool>(), seed in any::<u64>()) {
        let shape = if three_assets { BatchShape { batch_size: 5, assets: 3 } } else { BatchShape { batch_size: 3, assets: 1 } };
        let l = ledger(n, shape.assets, seed);
        let round = prove(shape, l.clone(), seed);
        let verified = reverify(&round.bundle).unwrap();
        prop_assert_eq!(&verified.bundle().totals, &l.totals().into_iter().map(Some).collect::<Vec<_>>());
        prop_assert_eq!(verified.bundle().leaf_count, n as u64);
        for p in &proofs(&round) {
            prop_assert!(inclusion::verify(&verified, None, p).is_ok());
            let mut altered: InclusionProof = p.clone();
            let last = altered.balances.len() - 1;
            let amount: u64 = altered.balances[last].amount.parse().unwrap();
            altered.balances[last].amount = amount.wrapping_add(1).to_string();
            prop_assert!(inclusion::verify(&verified, None, &altered).is_err());
        }
    }
}
