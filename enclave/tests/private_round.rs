//! Private mode (spec §13) through the library: a round that hides totals verifies only against
//! bounds its hidden totals respect, and every way a prover or a forger could pass off a hidden
//! total above the reserves, or a tampered published one, is refused.

mod common;

use attestation::bundle::{Bundle, FORMAT_V1, HIDDEN};
use attestation::error::{BundleError, VerifyError};
use attestation::liabilities::{verify, verify_private, OpeningCheck, VerifiedLiabilities};
use attestation::opening::{verifying_key_sha256, OpeningError};
use common::{keys, rng};
use enclave::circuit::batch::BatchShape;
use enclave::error::ProveError;
use enclave::keys::ProvingKeys;
use enclave::ledger::{Account, Ledger};
use enclave::round::{prove_private_round, ProvedRound};

const SHAPE: BatchShape = BatchShape { batch_size: 4, assets: 2 };

/// Ten accounts (three batches) whose totals are (10·55, 10·550) = (550, 5500).
fn ledger() -> Ledger {
    Ledger {
        assets: vec!["BTC".into(), "ETH".into()],
        accounts: (1..=10u64).map(|i| Account { id: format!("user-{i}"), balances: vec![10 * i, 100 * i] }).collect(),
    }
}

const TOTALS: [u128; 2] = [550, 5500];

fn prove(hidden: &[Option<u128>], seed: u64) -> Result<ProvedRound, ProveError> {
    prove_private_round(&keys(SHAPE), ledger(), [seed as u8; 32], hidden, &mut rng(seed), &mut |_, _| {})
}

fn opening_key(keys: &ProvingKeys) -> [u8; 32] {
    verifying_key_sha256(keys.opening.as_ref().expect("setup makes opening keys").verifying_key())
}

/// Decodes the bundle's bytes again and verifies them against `bounds`.
fn check(bundle: &Bundle, bounds: &[u128]) -> Result<VerifiedLiabilities, VerifyError> {
    let decoded = Bundle::decode(&bundle.encode())?;
    let check = OpeningCheck { verifying_key_sha256: opening_key(&keys(SHAPE)), bounds };
    verify_private(decoded, None, Some(check))
}

#[test]
fn a_hidden_total_within_its_reserves_verifies_and_appears_nowhere() {
    // ETH hidden with reserves 6000 ≥ 5500; BTC published.
    let round = prove(&[None, Some(6000)], 1).expect("prove");
    assert_eq!(round.bundle.totals, vec![Some(550), None]);
    let bytes = round.bundle.encode();
    let needle = b"5500";
    assert!(!bytes.windows(needle.len()).any(|w| w == needle), "the hidden total is not in the bundle");
    let verified = check(&round.bundle, &[0, 6000]).expect("verifies");
    assert_eq!(verified.bundle().to_wire().totals, vec!["550".to_owned(), HIDDEN.to_owned()]);
    // Reserves exactly equal to the total are enough.
    let exact = prove(&[None, Some(5500)], 2).expect("prove");
    check(&exact.bundle, &[0, 5500]).expect("verifies at equality");
    // Both hidden.
    let both = prove(&[Some(u128::MAX), Some(5500)], 3).expect("prove");
    check(&both.bundle, &[u128::MAX, 5500]).expect("verifies");
    // Every account's inclusion proof still verifies against the private round.
    let verified = check(&round.bundle, &[0, 6000]).unwrap();
    for proof in round.inclusion_proofs(None) {
        attestation::inclusion::verify(&verified, None, &proof).expect("inclusion");
    }
}

#[test]
fn a_hidden_total_above_its_reserves_cannot_be_proven() {
    let err = prove(&[None, Some(5499)], 4).err().expect("refused");
    assert!(matches!(err, ProveError::Opening(_)), "{err}");
}

#[test]
fn the_opening_holds_only_for_the_reserves_it_was_proven_against() {
    let round = prove(&[None, Some(6000)], 5).expect("prove");
    // A verifier holding other reserves figures (lower, even still covering; or higher) refuses.
    for bounds in [[0, 5999], [0, 5500], [0, 6001], [0, 0]] {
        let err = check(&round.bundle, &bounds).expect_err("refused");
        assert_eq!(err, VerifyError::Opening(OpeningError::InvalidProof), "{bounds:?}");
    }
    // A bound of 2^128 or more is no valid statement (the clamp makes it 2^128 − 1).
    let err = check(&round.bundle, &[0, u128::MAX]).expect_err("refused");
    assert_eq!(err, VerifyError::Opening(OpeningError::InvalidProof));
}

#[test]
fn hidden_totals_without_reserves_or_under_another_key_are_refused() {
    let round = prove(&[None, Some(6000)], 6).expect("prove");
    let decoded = Bundle::decode(&round.bundle.encode()).unwrap();
    assert_eq!(verify(decoded.clone(), None).err(), Some(VerifyError::HiddenTotals));
    let check = OpeningCheck { verifying_key_sha256: [7; 32], bounds: &[0, 6000] };
    assert!(matches!(verify_private(decoded, None, Some(check)), Err(VerifyError::OpeningKeyMismatch { .. })));
}

#[test]
fn tampering_with_a_private_rounds_totals_or_opening_is_refused() {
    let round = prove(&[None, Some(6000)], 7).expect("prove");
    // The published total changed.
    let mut wire = round.bundle.to_wire();
    wire.totals[0] = "551".into();
    let tampered = Bundle::from_wire(wire).unwrap();
    assert_eq!(check(&tampered, &[0, 6000]).err(), Some(VerifyError::Opening(OpeningError::InvalidProof)));
    // The hidden total "revealed" as version 1, true value and all: the chain end is blinded, so
    // only the opening can speak for it.
    let mut wire = round.bundle.to_wire();
    wire.format = FORMAT_V1.into();
    wire.totals[1] = TOTALS[1].to_string();
    wire.opening_proof = None;
    wire.opening_verifying_key = None;
    let revealed = Bundle::from_wire(wire).unwrap();
    assert_eq!(verify(revealed, None).err(), Some(VerifyError::TotalsMismatch));
    // Another round's opening proof.
    let other = prove(&[None, Some(6000)], 8).expect("prove");
    let mut wire = round.bundle.to_wire();
    wire.opening_proof = other.bundle.to_wire().opening_proof;
    let swapped = Bundle::from_wire(wire).unwrap();
    assert_eq!(check(&swapped, &[0, 6000]).err(), Some(VerifyError::Opening(OpeningError::InvalidProof)));
    // Hiding a total the opening proved public.
    let public = prove(&[Some(u128::MAX), None], 9).expect("prove");
    let mut wire = public.bundle.to_wire();
    wire.totals = vec![HIDDEN.into(), HIDDEN.into()];
    let hidden = Bundle::from_wire(wire).unwrap();
    assert_eq!(check(&hidden, &[u128::MAX, 6000]).err(), Some(VerifyError::Opening(OpeningError::InvalidProof)));
}

#[test]
fn the_format_versions_keep_their_fields_apart() {
    let round = prove(&[None, Some(6000)], 10).expect("prove");
    // Version 1 has no hidden totals and no opening.
    let mut wire = round.bundle.to_wire();
    wire.format = FORMAT_V1.into();
    assert!(matches!(Bundle::from_wire(wire.clone()), Err(BundleError::BadTotal { index: 1, .. })));
    wire.totals[1] = "5500".into();
    assert!(matches!(Bundle::from_wire(wire), Err(BundleError::Opening(_))));
    // Version 2 needs both opening fields and at least one hidden total.
    let mut wire = round.bundle.to_wire();
    wire.opening_proof = None;
    assert!(matches!(Bundle::from_wire(wire), Err(BundleError::Opening(_))));
    let mut wire = round.bundle.to_wire();
    wire.totals[1] = "5500".into();
    assert!(matches!(Bundle::from_wire(wire), Err(BundleError::Opening(_))));
    let mut wire = round.bundle.to_wire();
    wire.opening_proof = Some(vec![0; 191]);
    assert!(matches!(Bundle::from_wire(wire), Err(BundleError::Opening(_))));
    // A public round is still version 1, byte for byte as before.
    let public = prove(&[], 11).expect("prove");
    assert_eq!(public.bundle.to_wire().format, FORMAT_V1);
    assert!(public.bundle.opening.is_none());
}

#[test]
fn keys_files_carry_the_opening_key_and_version_1_files_still_read() {
    let keys = keys(SHAPE);
    let mut file = Vec::new();
    keys.write_to(&mut file).unwrap();
    assert!(file.starts_with(b"solvency-enclave/proving-keys/v2\n"));
    let read = ProvingKeys::read_from(file.as_slice()).unwrap();
    assert_eq!(opening_key(&read), opening_key(&keys));
    // Truncated in the opening key.
    assert!(ProvingKeys::read_from(&file[..file.len() - 10]).is_err());
    // A version-1 file (the batch key alone) reads, and proves public rounds only.
    let mut v1 = Vec::new();
    let without = ProvingKeys { opening: None, ..ProvingKeys::read_from(file.as_slice()).unwrap() };
    without.write_to(&mut v1).unwrap();
    assert!(v1.starts_with(b"solvency-enclave/proving-keys/v1\n"));
    let old = ProvingKeys::read_from(v1.as_slice()).unwrap();
    assert!(old.opening.is_none());
    let err = prove_private_round(&old, ledger(), [1; 32], &[None, Some(6000)], &mut rng(12), &mut |_, _| {})
        .err()
        .expect("refused");
    assert!(matches!(err, ProveError::Opening(_)), "{err}");
    prove_private_round(&old, ledger(), [1; 32], &[], &mut rng(12), &mut |_, _| {}).expect("a public round");
}
