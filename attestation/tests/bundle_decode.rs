//! Malformed and tampered bundles against the checked-in bundle produced by `solvency-enclave
//! prove-offline` (see `tests/data/README.md`): every defect gets its typed error, none panics.

use ark_bls12_381::G1Affine;
use ark_ec::short_weierstrass::{Affine, SWCurveConfig};
use ark_ff::{Field, PrimeField};
use ark_serialize::CanonicalSerialize;
use attestation::bundle::{encode_wire, Bundle, BundleWire, FORMAT_V1};
use attestation::error::{BundleError, VerifyError};
use attestation::liabilities::verify;
use proptest::prelude::*;

const BUNDLE: &[u8] = include_bytes!("data/offline-b4-k2-bundle.cbor");

fn wire() -> BundleWire {
    ciborium::from_reader(BUNDLE).expect("fixture decodes")
}

fn decode(w: &BundleWire) -> Result<Bundle, BundleError> {
    Bundle::decode(&encode_wire(w))
}

#[test]
fn the_fixture_verifies_and_re_encodes_identically() {
    let bundle = Bundle::decode(BUNDLE).unwrap();
    assert_eq!(bundle.encode(), BUNDLE);
    let v = verify(bundle, None).unwrap();
    assert_eq!(v.bundle().assets, ["BTC", "ETH"]);
    assert_eq!(v.bundle().leaf_count, 10);
}

#[test]
fn truncation_at_every_length_is_a_cbor_error() {
    for len in 0..BUNDLE.len() {
        assert!(matches!(Bundle::decode(&BUNDLE[..len]), Err(BundleError::Cbor(_))), "length {len}");
    }
}

#[test]
fn trailing_bytes_are_refused() {
    let mut bytes = BUNDLE.to_vec();
    bytes.push(0);
    assert_eq!(Bundle::decode(&bytes), Err(BundleError::TrailingBytes { count: 1 }));
}

#[test]
fn wrong_types_and_unknown_or_missing_fields_are_cbor_errors() {
    let value: ciborium::Value = ciborium::from_reader(BUNDLE).unwrap();
    let ciborium::Value::Map(entries) = value else { panic!("bundle is a map") };
    let reencode = |entries: Vec<(ciborium::Value, ciborium::Value)>| {
        let mut out = Vec::new();
        ciborium::into_writer(&ciborium::Value::Map(entries), &mut out).unwrap();
        out
    };
    // leaf_count as a string
    let mut e = entries.clone();
    for (k, v) in e.iter_mut() {
        if k.as_text() == Some("leaf_count") {
            *v = ciborium::Value::Text("10".into());
        }
    }
    assert!(matches!(Bundle::decode(&reencode(e)), Err(BundleError::Cbor(_))));
    // an unknown field
    let mut e = entries.clone();
    e.push((ciborium::Value::Text("extra".into()), ciborium::Value::Integer(1.into())));
    assert!(matches!(Bundle::decode(&reencode(e)), Err(BundleError::Cbor(_))));
    // a missing field
    let e: Vec<_> = entries.into_iter().filter(|(k, _)| k.as_text() != Some("root")).collect();
    assert!(matches!(Bundle::decode(&reencode(e)), Err(BundleError::Cbor(_))));
    // not a map at all
    assert!(matches!(Bundle::decode(&[0x01]), Err(BundleError::Cbor(_))));
}

#[test]
fn other_encodings_of_the_same_values_are_refused() {
    // "leaf_count" as a byte-string key instead of a text key.
    let at = BUNDLE.windows(11).position(|w| w == b"jleaf_count").unwrap();
    let mut bytes = BUNDLE.to_vec();
    bytes[at] = 0x4a;
    assert_eq!(Bundle::decode(&bytes), Err(BundleError::NonCanonical));
    // batch_size 4 in a two-byte integer encoding instead of one byte.
    let at = BUNDLE.windows(11).position(|w| w == b"batch_size\x04").unwrap() + 10;
    let mut bytes = BUNDLE.to_vec();
    bytes.splice(at..at + 1, [0x18, 0x04]);
    assert_eq!(Bundle::decode(&bytes), Err(BundleError::NonCanonical));
    // Keys in another order.
    let value: ciborium::Value = ciborium::from_reader(BUNDLE).unwrap();
    let ciborium::Value::Map(mut entries) = value else { panic!("bundle is a map") };
    entries.reverse();
    let mut bytes = Vec::new();
    ciborium::into_writer(&ciborium::Value::Map(entries), &mut bytes).unwrap();
    assert_eq!(Bundle::decode(&bytes), Err(BundleError::NonCanonical));
}

#[test]
fn field_by_field_defects_get_their_own_errors() {
    let mut w = wire();
    w.format = "solvency-enclave/liabilities/v9".into();
    assert!(matches!(decode(&w), Err(BundleError::UnknownFormat(_))));

    let mut w = wire();
    w.round_id.pop();
    assert_eq!(decode(&w), Err(BundleError::BadLength { field: "round_id", expected: 32, actual: 31 }));

    let mut w = wire();
    w.assets.clear();
    assert!(matches!(decode(&w), Err(BundleError::AssetCount { count: 0, .. })));

    let mut w = wire();
    w.assets[1] = w.assets[0].clone();
    assert!(matches!(decode(&w), Err(BundleError::BadAsset { index: 1, .. })));

    let mut w = wire();
    w.batch_size = 0;
    assert!(matches!(decode(&w), Err(BundleError::BadShape { .. })));

    let mut w = wire();
    w.batch_size = u64::MAX;
    assert!(matches!(decode(&w), Err(BundleError::BatchSize { .. })));

    let mut w = wire();
    w.leaf_count = 100;
    assert_eq!(decode(&w), Err(BundleError::BatchCount { expected: 25, actual: 3 }));

    let mut w = wire();
    w.totals[0] = "-1".into();
    assert!(matches!(decode(&w), Err(BundleError::BadTotal { index: 0, .. })));

    let mut w = wire();
    w.totals.pop();
    assert!(matches!(decode(&w), Err(BundleError::BadLength { field: "totals", .. })));

    let mut w = wire();
    w.root = vec![0xff; 32];
    assert_eq!(decode(&w), Err(BundleError::BadFieldElement { field: "root", index: None }));

    let mut w = wire();
    w.batches[2].sum_commitment = ark_bls12_381::Fr::MODULUS.to_bytes_le();
    assert_eq!(decode(&w), Err(BundleError::BadFieldElement { field: "batches.sum_commitment", index: Some(2) }));

    let mut w = wire();
    w.batches[1].proof.pop();
    assert!(matches!(decode(&w), Err(BundleError::BadLength { field: "batches.proof", .. })));

    let mut w = wire();
    w.verifying_key.truncate(100);
    assert_eq!(decode(&w), Err(BundleError::BadVerifyingKey));

    let mut w = wire();
    w.verifying_key.push(0);
    assert_eq!(decode(&w), Err(BundleError::BadVerifyingKey));

    let mut w = wire();
    w.verifying_key = vec![0; 70_000];
    assert!(matches!(decode(&w), Err(BundleError::TooLarge { .. })));
}

use ark_ff::BigInteger;

/// The first point (by x = 1, 2, ..) on the curve that is not in the prime-order subgroup.
fn outside_subgroup<P: SWCurveConfig>() -> Affine<P> {
    let mut x = P::BaseField::ONE;
    loop {
        if let Some(p) = Affine::<P>::get_point_from_x_unchecked(x, false) {
            if !p.is_in_correct_subgroup_assuming_on_curve() {
                return p;
            }
        }
        x += P::BaseField::ONE;
    }
}

#[test]
fn proof_points_outside_the_subgroup_or_off_the_curve_are_refused() {
    let mut bad_a = Vec::new();
    outside_subgroup::<ark_bls12_381::g1::Config>().serialize_compressed(&mut bad_a).unwrap();
    let mut w = wire();
    w.batches[0].proof[..48].copy_from_slice(&bad_a);
    assert_eq!(decode(&w), Err(BundleError::BadProofEncoding { index: 0 }));

    let mut bad_b = Vec::new();
    outside_subgroup::<ark_bls12_381::g2::Config>().serialize_compressed(&mut bad_b).unwrap();
    let mut w = wire();
    w.batches[1].proof[48..144].copy_from_slice(&bad_b);
    assert_eq!(decode(&w), Err(BundleError::BadProofEncoding { index: 1 }));

    // An x coordinate with no point on the curve.
    let mut x = ark_bls12_381::Fq::from(1u64);
    while G1Affine::get_point_from_x_unchecked(x, false).is_some() {
        x += ark_bls12_381::Fq::ONE;
    }
    let mut off = x.into_bigint().to_bytes_be();
    off[0] |= 0x80; // compressed-form flag
    let mut w = wire();
    w.batches[2].proof[144..].copy_from_slice(&off);
    assert_eq!(decode(&w), Err(BundleError::BadProofEncoding { index: 2 }));

    // The same for the verifying key's alpha.
    let mut w = wire();
    w.verifying_key[..48].copy_from_slice(&bad_a);
    assert_eq!(decode(&w), Err(BundleError::BadVerifyingKey));
}

#[test]
fn relabelled_assets_or_a_changed_leaf_count_break_the_first_proof() {
    let mut w = wire();
    w.assets.swap(0, 1);
    w.totals.swap(0, 1);
    assert_eq!(verify(decode(&w).unwrap(), None).unwrap_err(), VerifyError::TotalsMismatch);
    let mut w = wire();
    w.assets.swap(0, 1);
    assert_eq!(verify(decode(&w).unwrap(), None).unwrap_err(), VerifyError::BatchProof { index: 0 });
    let mut w = wire();
    w.leaf_count = 11;
    assert_eq!(verify(decode(&w).unwrap(), None).unwrap_err(), VerifyError::BatchProof { index: 0 });
    let mut w = wire();
    w.attestation = "nitro".into();
    assert_eq!(decode(&w), Err(BundleError::UnsupportedAttestation("nitro".into())));
}

#[test]
fn a_bundle_of_another_format_version_never_verifies() {
    assert_eq!(wire().format, FORMAT_V1);
    let mut w = wire();
    w.batches.swap(0, 2);
    let bundle = decode(&w).unwrap();
    assert!(matches!(verify(bundle, None), Err(VerifyError::BatchProof { .. } | VerifyError::TotalsMismatch)));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = Bundle::decode(&bytes);
    }

    /// Any single flipped bit anywhere in the fixture is refused.
    #[test]
    fn single_bit_flips_are_refused(position in 0..BUNDLE.len(), bit in 0u8..8) {
        let mut bytes = BUNDLE.to_vec();
        bytes[position] ^= 1 << bit;
        let result = Bundle::decode(&bytes).map_err(VerifyError::from).and_then(|b| verify(b, None));
        prop_assert!(result.is_err(), "flip of bit {} at byte {} accepted", bit, position);
    }
}
