//! The attestation-document verifier against real AWS Nitro documents (`tests/data/nitro`, see
//! its README and manifest) and mutations derived from them.

use std::collections::BTreeMap;

use attestation::nitro::{verify, ChainError, NitroError, Policy, PolicyError, TrustAnchor};
use ciborium::Value;
use proptest::prelude::*;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/nitro");
const HOUR_MS: u64 = 3_600_000;

struct Vector {
    file: String,
    bytes: Vec<u8>,
    at_ms: u64,
    debug: bool,
    pcrs: BTreeMap<u8, Vec<u8>>,
    user_data: Option<Vec<u8>>,
    nonce: Option<Vec<u8>>,
    negative: bool,
}

fn root() -> TrustAnchor {
    TrustAnchor::aws_from_pem(&std::fs::read(format!("{DIR}/AWS_NitroEnclaves_Root-G1.pem")).unwrap()).unwrap()
}

fn vectors() -> Vec<Vector> {
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{DIR}/manifest.json")).unwrap()).unwrap();
    let hex_field = |v: &serde_json::Value| v.as_str().map(|h| hex::decode(h).unwrap());
    manifest["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let file = v["file"].as_str().unwrap().to_owned();
            Vector {
                bytes: std::fs::read(format!("{DIR}/{file}")).unwrap(),
                negative: file.starts_with("negative/"),
                file,
                at_ms: v["suggested_verify_time_ms"].as_u64().unwrap(),
                debug: v["debug_mode_all_zero_pcr012"].as_bool().unwrap(),
                pcrs: v["pcrs"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, h)| (k.parse().unwrap(), hex::decode(h.as_str().unwrap()).unwrap()))
                    .collect(),
                user_data: hex_field(&v["user_data_hex"]),
                nonce: hex_field(&v["nonce_hex"]),
            }
        })
        .collect()
}

fn permissive() -> Policy {
    Policy { allow_debug: true, ..Policy::default() }
}

/// 2026-11-25, long after every vector's three-hour leaf expired.
const NOW_MS: u64 = 1_795_000_000_000;

#[test]
fn every_real_document_verifies_at_its_own_time_and_not_now() {
    let root = root();
    let all = vectors();
    assert_eq!(all.iter().filter(|v| !v.negative).count(), 5);
    for v in all.iter().filter(|v| !v.negative) {
        let verified = verify(&v.bytes, &root, v.at_ms, &permissive()).unwrap_or_else(|e| panic!("{}: {e}", v.file));
        assert!(verified.root_is_aws());
        assert_eq!(verified.document().pcrs, v.pcrs, "{}", v.file);
        assert_eq!(
            verified.document().user_data.clone().filter(|u| !u.is_empty()),
            v.user_data.clone().filter(|u| !u.is_empty())
        );
        let err = verify(&v.bytes, &root, NOW_MS, &permissive()).unwrap_err();
        assert!(matches!(err, NitroError::Chain(ChainError::Expired { .. })), "{}: {err}", v.file);
    }
}

#[test]
fn debug_documents_are_refused_unless_allowed() {
    let root = root();
    for v in vectors().iter().filter(|v| !v.negative) {
        let default = verify(&v.bytes, &root, v.at_ms, &Policy::default());
        if v.debug {
            assert_eq!(default.unwrap_err(), NitroError::Policy(PolicyError::DebugMode), "{}", v.file);
        } else {
            assert!(default.is_ok(), "{}", v.file);
        }
    }
}

#[test]
fn manifest_pcrs_user_data_and_nonce_are_matched_and_wrong_ones_refused() {
    let root = root();
    for v in vectors().iter().filter(|v| !v.negative) {
        let exact = Policy {
            allow_debug: true,
            expected_pcrs: v.pcrs.clone(),
            expected_user_data: Some(v.user_data.clone().unwrap_or_default()),
            expected_nonce: Some(v.nonce.clone().unwrap_or_default()),
            ..Policy::default()
        };
        assert!(verify(&v.bytes, &root, v.at_ms, &exact).is_ok(), "{}", v.file);

        let mut wrong_pcr = exact.clone();
        wrong_pcr.expected_pcrs.get_mut(&0).unwrap()[0] ^= 1;
        assert!(matches!(
            verify(&v.bytes, &root, v.at_ms, &wrong_pcr),
            Err(NitroError::Policy(PolicyError::Pcr { index: 0, .. }))
        ));
        let mut absent_pcr = exact.clone();
        absent_pcr.expected_pcrs.insert(31, vec![0; 48]);
        assert!(matches!(
            verify(&v.bytes, &root, v.at_ms, &absent_pcr),
            Err(NitroError::Policy(PolicyError::PcrAbsent(31)))
        ));

        let mut wrong_user_data = exact.clone();
        wrong_user_data.expected_user_data = Some(b"another manifest".to_vec());
        assert!(matches!(
            verify(&v.bytes, &root, v.at_ms, &wrong_user_data),
            Err(NitroError::Policy(PolicyError::UserData { .. }))
        ));
        let mut wrong_nonce = exact;
        wrong_nonce.expected_nonce = Some(vec![7; 32]);
        assert!(matches!(
            verify(&v.bytes, &root, v.at_ms, &wrong_nonce),
            Err(NitroError::Policy(PolicyError::Nonce { .. }))
        ));
    }
}

#[test]
fn the_negative_document_is_refused_at_the_signature() {
    let root = root();
    let negatives: Vec<_> = vectors().into_iter().filter(|v| v.negative).collect();
    assert_eq!(negatives.len(), 1);
    for v in negatives {
        assert_eq!(verify(&v.bytes, &root, v.at_ms, &permissive()).unwrap_err(), NitroError::Signature, "{}", v.file);
    }
}

#[test]
fn an_hour_before_or_four_hours_after_is_refused_at_the_chain() {
    let root = root();
    for v in vectors().iter().filter(|v| !v.negative) {
        for at in [v.at_ms - HOUR_MS, v.at_ms + 4 * HOUR_MS] {
            let err = verify(&v.bytes, &root, at, &permissive()).unwrap_err();
            // The leaf lives three hours around the timestamp; an hour early other certificates
            // of the chain may not be valid yet either: either way the chain step refuses.
            assert!(matches!(err, NitroError::Chain(ChainError::Expired { .. })), "{}: {err}", v.file);
        }
    }
}

#[test]
fn freshness_is_judged_against_the_callers_clock() {
    let root = root();
    let v = &vectors()[0];
    let fresh = Policy { max_age_ms: Some(60_000), allow_debug: true, ..Policy::default() };
    assert!(verify(&v.bytes, &root, v.at_ms + 30_000, &fresh).is_ok());
    let err = verify(&v.bytes, &root, v.at_ms + 120_000, &fresh).unwrap_err();
    assert!(matches!(err, NitroError::Policy(PolicyError::TooOld { .. })));
    // One millisecond early with no allowed skew (the chain is already valid then).
    let err = verify(&v.bytes, &root, v.at_ms - 1, &fresh).unwrap_err();
    assert!(matches!(err, NitroError::Policy(PolicyError::FromTheFuture { ahead_ms: 1, skew_ms: 0 })), "{err}");
    let skewed = Policy { max_skew_ms: 5_000, ..fresh };
    assert!(verify(&v.bytes, &root, v.at_ms - 1, &skewed).is_ok());
}

/// Splits a document into (protected, unprotected, payload map, signature) values.
fn parts(bytes: &[u8]) -> (Value, Value, Vec<(Value, Value)>, Value) {
    let Value::Array(items) = ciborium::from_reader::<Value, _>(bytes).unwrap() else { panic!("array") };
    let [protected, unprotected, payload, signature]: [Value; 4] = items.try_into().unwrap();
    let Value::Map(map) = ciborium::from_reader::<Value, _>(payload.as_bytes().unwrap().as_slice()).unwrap() else {
        panic!("map")
    };
    (protected, unprotected, map, signature)
}

fn rebuild(protected: Value, unprotected: Value, map: Vec<(Value, Value)>, signature: Value) -> Vec<u8> {
    let mut payload = Vec::new();
    ciborium::into_writer(&Value::Map(map), &mut payload).unwrap();
    let mut out = Vec::new();
    ciborium::into_writer(&Value::Array(vec![protected, unprotected, Value::Bytes(payload), signature]), &mut out)
        .unwrap();
    out
}

fn with_cabundle(bytes: &[u8], edit: impl FnOnce(&mut Vec<Value>)) -> Vec<u8> {
    let (protected, unprotected, mut map, signature) = parts(bytes);
    let (_, cabundle) = map.iter_mut().find(|(k, _)| k.as_text() == Some("cabundle")).unwrap();
    let Value::Array(list) = cabundle else { panic!("cabundle is an array") };
    edit(list);
    rebuild(protected, unprotected, map, signature)
}

#[test]
fn mutated_documents_are_refused_at_the_right_step() {
    let root = root();
    let v = &vectors()[0];
    let ok = |bytes: &[u8]| verify(bytes, &root, v.at_ms, &permissive());

    // A flipped byte inside the module_id text: the payload still parses, the signature fails.
    let at = v.bytes.windows(2).position(|w| w == b"i-").unwrap();
    let mut flipped = v.bytes.clone();
    flipped[at] ^= 1;
    assert_eq!(ok(&flipped).unwrap_err(), NitroError::Signature);

    // Re-encoding the same payload is not the signed bytes.
    let (p, u, map, s) = parts(&v.bytes);
    let reencoded = rebuild(p, u, map, s);
    if reencoded != v.bytes {
        assert_eq!(ok(&reencoded).unwrap_err(), NitroError::Signature);
    }

    let dropped = with_cabundle(&v.bytes, |list| {
        list.remove(1);
    });
    assert!(matches!(
        ok(&dropped).unwrap_err(),
        NitroError::Chain(ChainError::IssuerMismatch { .. } | ChainError::BadSignature { .. })
    ));

    let reordered = with_cabundle(&v.bytes, |list| list.swap(1, 2));
    assert!(matches!(ok(&reordered).unwrap_err(), NitroError::Chain(_)));

    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let mut params = rcgen::CertificateParams::new(vec![]).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let foreign = params.self_signed(&key).unwrap().der().to_vec();
    let replaced = with_cabundle(&v.bytes, |list| list[0] = Value::Bytes(foreign.clone()));
    assert_eq!(ok(&replaced).unwrap_err(), NitroError::Chain(ChainError::UntrustedRoot));

    // Anchoring on that foreign root instead is possible only explicitly, and still fails: the
    // rest of the chain was issued by AWS.
    let dev = TrustAnchor::development(foreign).unwrap();
    assert!(!dev.is_aws());
    assert!(matches!(verify(&replaced, &dev, v.at_ms, &permissive()).unwrap_err(), NitroError::Chain(_)));

    // An anchor must be self-signed with a P-384 key: checked once, when it is built.
    let issuer = rcgen::CertificateParams::new(vec![]).unwrap().self_signed(&key).unwrap();
    let other_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let not_self_signed =
        rcgen::CertificateParams::new(vec![]).unwrap().signed_by(&other_key, &issuer, &key).unwrap().der().to_vec();
    assert_eq!(TrustAnchor::development(not_self_signed), Err(ChainError::BadAnchor));
    let p256 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let p256_root = rcgen::CertificateParams::new(vec![]).unwrap().self_signed(&p256).unwrap().der().to_vec();
    assert_eq!(TrustAnchor::development(p256_root), Err(ChainError::BadAnchor));

    let mut trailing = v.bytes.clone();
    trailing.push(0);
    assert_eq!(ok(&trailing).unwrap_err().step(), "envelope");
    let mut tagged = vec![0xd2];
    tagged.extend_from_slice(&v.bytes);
    assert!(ok(&tagged).is_ok(), "tag 18 is accepted");
    let mut other_tag = vec![0xd1];
    other_tag.extend_from_slice(&v.bytes);
    assert_eq!(ok(&other_tag).unwrap_err().step(), "envelope");
}

#[test]
fn the_built_in_aws_root_is_the_pinned_one() {
    assert_eq!(TrustAnchor::aws_builtin().unwrap(), root());
}

#[test]
fn the_fuzzing_entry_points_accept_real_documents_and_garbage() {
    for v in vectors() {
        attestation::fuzzing::nitro_document(&v.bytes);
    }
    attestation::fuzzing::nitro_document(&[0x84, 0x44, 0xa1, 0x01]);
    attestation::fuzzing::liabilities_bundle(&[0xa0]);
}

#[test]
fn only_the_pinned_aws_root_is_trusted_as_aws() {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let other = rcgen::CertificateParams::new(vec![]).unwrap().self_signed(&key).unwrap().der().to_vec();
    assert!(matches!(TrustAnchor::aws(other), Err(ChainError::NotTheAwsRoot { .. })));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..6000)) {
        let _ = verify(&bytes, &root(), 1_700_000_000_000, &Policy::default());
    }

    #[test]
    fn any_flipped_bit_of_a_real_document_is_refused(position in 0usize..4654, bit in 0u8..8) {
        let v = &vectors()[0];
        let mut bytes = v.bytes.clone();
        let position = position % bytes.len();
        bytes[position] ^= 1 << bit;
        prop_assert!(verify(&bytes, &root(), v.at_ms, &permissive()).is_err());
    }
}
