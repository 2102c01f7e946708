//! The round bundle's verifier on inputs that need no enclave: the policy file, canonical
//! decoding, and arbitrary bytes (the end-to-end tests in `parent/tests` verify real bundles).

use attestation::attested::{self, RoundBundleWire, FORMAT_V1, FORMAT_V2, FORMAT_V3};
use attestation::error::BundleError;
use attestation::manifest::{ManifestError, SetupManifest};
use attestation::nitro::TrustAnchor;
use attestation::policy::{parse_lsn, BundlePolicy};
use proptest::prelude::*;

fn policy_text() -> String {
    format!(
        "[attestation]\nmax_age_secs = 3600\n\n[pcrs]\n0 = \"{p}\"\n1 = \"{p}\"\n2 = \"{p}\"\n\n\
         [database]\nsystem_identifier = \"7312345678901234567\"\nserver_cert_sha256 = \"{c}\"\n\
         query = \"SELECT account_id, asset, amount FROM public.balances\"\nname = \"exchange\"\n\
         role = \"solvency_reader\"\nmin_lsn = \"0/16B3748\"\n\n\
         [round]\nnonce = \"abcd\"\n",
        p = "11".repeat(48),
        c = "22".repeat(32)
    )
}

#[test]
fn a_policy_file_parses_and_prints_back() {
    let policy = BundlePolicy::from_toml(&policy_text()).unwrap();
    assert_eq!(policy.attestation.max_age_secs, Some(3600));
    assert_eq!(policy.attestation.max_skew_secs, 300);
    assert!(!policy.attestation.allow_debug);
    assert_eq!(policy.round.nonce.as_deref(), Some("abcd"));
    assert_eq!(BundlePolicy::from_toml(&policy.to_toml()).unwrap(), policy);
}

#[test]
fn the_documented_policy_example_parses_with_every_key() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/policy.md")).unwrap();
    let example = doc.split("```toml\n").nth(1).and_then(|rest| rest.split("```").next()).unwrap();
    let policy = BundlePolicy::from_toml(example).unwrap();
    assert_eq!(policy.pcrs.len(), 3);
    assert_eq!(policy.database.relations.as_ref().map(Vec::len), Some(1));
    assert!(policy.database.rds.is_some() && policy.assets.is_some() && policy.round.config_sha256.is_some());
    assert!(policy.solvency.require_solvent);
    let pin = &policy.reserves.as_ref().unwrap()[0];
    assert_eq!((pin.chain_ids.as_deref(), pin.min_agreeing, pin.max_block_gap_secs), (Some(&[1][..]), Some(2), Some(3600)));
    // The commented-out PCR8 line is a valid pin too.
    let with_pcr8 = example.replace("# 8 = ", "8 = ");
    assert_eq!(BundlePolicy::from_toml(&with_pcr8).unwrap().pcrs.len(), 4);
}

#[test]
fn unusable_policies_are_refused_with_a_reason() {
    let good = policy_text();
    let cases = [
        (good.replace("1 = ", "# 1 = "), "PCR0, PCR1 and PCR2 must be pinned"),
        (good.replace(&format!("0 = \"{}\"", "11".repeat(48)), "0 = \"11\""), "pcrs.0"),
        (good.replace("[round]", "[round]\nunknown = 1"), "unknown"),
        (good.replace("7312345678901234567", "abc"), "system_identifier"),
        (good.replace(&"22".repeat(32), "zz"), "server_cert_sha256"),
        (good.replace("nonce = \"abcd\"", "nonce = \"xyz\""), "round.nonce"),
        (good.replace("0 = ", "40 = "), "PCR index"),
        (good.replace("[database]", "[db]"), ""),
        (good.replace("nonce = \"abcd\"", "nonce = \"\""), "round.nonce: empty"),
        (good.replace("0/16B3748", "16B3748"), "database.min_lsn"),
        (
            good.replace("query = \"SELECT account_id, asset, amount FROM public.balances\"", "query = \" \""),
            "database.query",
        ),
        (good.replace("query = ", "# query = "), "query"),
        (good.replace("name = \"exchange\"", "name = \"\""), "database.name: empty"),
        (good.replace("[round]", "[round]\nmanifest_digest = \"ab\""), "round.manifest_digest"),
        (format!("{good}\n[[reserves]]\nsymbol = \"BTC\"\nfeeds = [\"0x1234\"]\n"), "reserves.BTC: address"),
        (format!("{good}\n[[reserves]]\nsymbol = \"BTC\"\nmin_agreeing = 0\n"), "agrees with nothing"),
        (format!("{good}\n[solvency]\nrequire_solvency = true\n"), "unknown field"),
    ];
    for (text, reason) in cases {
        let err = BundlePolicy::from_toml(&text).unwrap_err().to_string();
        assert!(err.contains(reason), "{err} (expected {reason:?})");
    }
}

#[test]
fn lsns_parse_as_postgresql_prints_them() {
    assert_eq!(parse_lsn("0/1508240"), Some(0x0150_8240));
    assert_eq!(parse_lsn("1/0"), Some(1 << 32));
    assert_eq!(parse_lsn("FFFFFFFF/FFFFFFFF"), Some(u64::MAX));
    for bad in ["", "0", "/1", "1/", "0/1/2", "g/1", "123456789/0", "+1/0"] {
        assert_eq!(parse_lsn(bad), None, "{bad:?}");
    }
}

#[test]
fn policies_written_for_earlier_versions_are_refused_with_the_migration_they_need() {
    let good = policy_text();
    let cases = [
        (good.replace("[round]", "[round]\nmin_round = 3"), "round.min_round was removed"),
        (good.replace("name = \"exchange\"\n", ""), "database.name is now required"),
        (good.replace("role = \"solvency_reader\"\n", ""), "database.role is now required"),
    ];
    for (text, reason) in cases {
        let err = BundlePolicy::from_toml(&text).unwrap_err().to_string();
        assert!(err.contains(reason) && err.contains("docs/policy.md#migrating"), "{err} (expected {reason:?})");
    }
}

fn wire() -> RoundBundleWire {
    RoundBundleWire {
        format: FORMAT_V2.into(),
        manifest: vec![1],
        attestation: vec![2],
        round_signature: None,
        setup_manifest: vec![4],
        setup_attestation: vec![5],
        liabilities: vec![6],
        reserves: None,
    }
}

#[test]
fn round_bundles_decode_only_canonically() {
    let bytes = wire().encode();
    assert!(attested::is_round_bundle(&bytes));
    assert_eq!(RoundBundleWire::decode(&bytes).unwrap(), wire());
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert_eq!(RoundBundleWire::decode(&trailing), Err(BundleError::TrailingBytes { count: 1 }));
    assert!(matches!(RoundBundleWire::decode(&bytes[..bytes.len() - 2]), Err(BundleError::Cbor(_))));
    let mut other = wire();
    other.format = "solvency-enclave/bundle/v4".into();
    assert!(matches!(RoundBundleWire::decode(&other.encode()), Err(BundleError::UnknownFormat(_))));
    // Version 1 carries the per-round signature and version 2 does not.
    let mut v1 = wire();
    v1.format = FORMAT_V1.into();
    assert!(matches!(RoundBundleWire::decode(&v1.encode()), Err(BundleError::Field { field: "round_signature", .. })));
    v1.round_signature = Some(vec![3; 96]);
    assert_eq!(RoundBundleWire::decode(&v1.encode()).unwrap(), v1);
    let mut signed_v2 = wire();
    signed_v2.round_signature = Some(vec![3; 96]);
    assert!(matches!(RoundBundleWire::decode(&signed_v2.encode()), Err(BundleError::Field { .. })));
    // Version 3 carries the reserves evidence, and only version 3 does.
    let mut v3 = wire();
    v3.format = FORMAT_V3.into();
    assert!(matches!(RoundBundleWire::decode(&v3.encode()), Err(BundleError::Field { field: "reserves", .. })));
    v3.reserves = Some(vec![7]);
    assert_eq!(RoundBundleWire::decode(&v3.encode()).unwrap(), v3);
    assert!(attested::is_round_bundle(&v3.encode()));
    let mut v2_with_evidence = wire();
    v2_with_evidence.reserves = Some(vec![7]);
    assert!(matches!(
        RoundBundleWire::decode(&v2_with_evidence.encode()),
        Err(BundleError::Field { field: "reserves", .. })
    ));
    // The same map with its first entry's key in a longer encoding is not canonical.
    let mut long = vec![0xa6, 0x78, 6];
    long.extend_from_slice(&bytes[2..]);
    assert!(matches!(RoundBundleWire::decode(&long), Err(BundleError::NonCanonical)));
}

#[test]
fn a_malformed_bundle_is_refused_at_decode_and_a_malformed_manifest_at_manifest() {
    let policy = BundlePolicy::from_toml(&policy_text()).unwrap();
    let root = TrustAnchor::aws_builtin().unwrap();
    let err = attested::verify(b"not a bundle", &policy, &root, 0).unwrap_err();
    assert_eq!(err.step(), "decode");
    let err = attested::verify(&wire().encode(), &policy, &root, 0).unwrap_err();
    assert_eq!(err.step(), "manifest");
    assert!(matches!(SetupManifest::decode(&[0xa0]), Err(ManifestError::Cbor(_))));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        attestation::fuzzing::round_bundle(&bytes);
    }
}
