//! A round bundle of version 1, made by the enclave before version 2 existed (the demo at commit
//! 25edaa9, emulated NSM, 40 accounts, batches of 16; `tests/data/v1-round/`), must stay
//! verifiable: with its policy migrated as `docs/policy.md` says, it verifies, and the report
//! warns that its read was not guarded.

use attestation::attested::{self, RoundBundleWire, V1_MANIFEST_WARNING};
use attestation::inclusion::InclusionProof;
use attestation::nitro::{pem_to_der, AttestationDocument, CoseSign1, TrustAnchor};
use attestation::policy::{BundlePolicy, RelationPin};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/v1-round");

fn read(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}/{name}")).unwrap()
}

fn anchor() -> TrustAnchor {
    TrustAnchor::development(pem_to_der(&read("dev-root.pem")).unwrap()).unwrap()
}

/// An hour after the round was attested.
fn soon_after(bundle: &[u8]) -> u64 {
    let wire = RoundBundleWire::decode(bundle).unwrap();
    let envelope = CoseSign1::decode(&wire.attestation).unwrap();
    AttestationDocument::decode(&envelope.payload).unwrap().timestamp_ms + 3_600_000
}

/// The recorded policy with the two changes the migration note asks for.
fn migrated_policy() -> BundlePolicy {
    let old = String::from_utf8(read("policy.toml")).unwrap();
    let text = old
        .replace("min_round = 1\n", "")
        .replace("name = \"postgres\"\n", "name = \"postgres\"\nrole = \"solvency_reader\"\n");
    BundlePolicy::from_toml(&text).unwrap()
}

#[test]
fn the_recorded_policy_is_refused_with_its_migration() {
    let old = String::from_utf8(read("policy.toml")).unwrap();
    let err = BundlePolicy::from_toml(&old).unwrap_err().to_string();
    assert!(err.contains("round.min_round was removed"), "{err}");
}

#[test]
fn a_version_1_round_still_verifies_and_says_what_it_lacks() {
    let bundle = read("bundle.cbor");
    let wire = RoundBundleWire::decode(&bundle).unwrap();
    assert_eq!(wire.format, attested::FORMAT_V1);
    let verified = attested::verify(&bundle, &migrated_policy(), &anchor(), soon_after(&bundle)).unwrap();
    assert!(!verified.manifest().is_v2());
    assert_eq!(verified.manifest().leaf_count, 40);
    assert!(verified.warnings().contains(&V1_MANIFEST_WARNING));
    assert!(verified.warnings().contains(&attested::DEVELOPMENT_ROOT_WARNING));

    // Its inclusion proofs (version 1, naming no digest) still check against it.
    let proof = InclusionProof::from_json(&read("inclusion-acct-000000001.json")).unwrap();
    assert!(proof.manifest_digest.is_none());
    let digest = verified.manifest_digest();
    let included = attestation::inclusion::verify(verified.liabilities(), Some(&digest), &proof).unwrap();
    assert_eq!(included.account_id, "acct-000000001");

    // One changed byte of its per-round signature is refused at that step.
    let start = bundle.windows(96).position(|w| Some(w) == wire.round_signature.as_deref()).unwrap();
    let mut tampered = bundle.clone();
    tampered[start + 10] ^= 1;
    let err = attested::verify(&tampered, &migrated_policy(), &anchor(), soon_after(&bundle)).unwrap_err();
    assert_eq!(err.step(), "round-key", "{err}");
}

#[test]
fn pins_that_a_version_1_round_does_not_record_are_refused_not_skipped() {
    let bundle = read("bundle.cbor");
    let mut policy = migrated_policy();
    policy.database.relations =
        Some(vec![RelationPin { schema: "public".into(), name: "balances".into(), oid: None, owner: None }]);
    let err = attested::verify(&bundle, &policy, &anchor(), soon_after(&bundle)).unwrap_err();
    assert!(matches!(&err, attested::RoundError::Database { field: "relations", .. }), "{err}");
    let mut policy = migrated_policy();
    policy.database.database_oid = Some(5);
    let err = attested::verify(&bundle, &policy, &anchor(), soon_after(&bundle)).unwrap_err();
    assert!(matches!(&err, attested::RoundError::Database { field: "database_oid", .. }), "{err}");
}

/// Each manifest version has exactly its fields: v2 the read's guards, v3 also the solvency
/// statement (a v2 manifest carrying one, or a v3 without one, is malformed).
#[test]
fn manifest_versions_have_exactly_their_fields() {
    use attestation::manifest::{Manifest, ManifestError, MANIFEST_FORMAT_V2, MANIFEST_FORMAT_V3};
    use attestation::reserves::statement::Solvency;
    let wire = RoundBundleWire::decode(&read("bundle.cbor")).unwrap();
    let v1 = Manifest::decode(&wire.manifest).unwrap();
    let solvency = Solvency {
        exchange: "Example Exchange".into(),
        evidence_sha256: vec![0; 32],
        snapshot_ms: 0,
        max_block_gap_secs: 3600,
        chains: Vec::new(),
        assets: Vec::new(),
    };
    let field_error = |m: &Manifest| match Manifest::decode(&m.encode()) {
        Err(ManifestError::Field { field, problem, .. }) => format!("{field} {problem}"),
        other => format!("{other:?}"),
    };
    let mut v3 = v1.clone();
    v3.format = MANIFEST_FORMAT_V3.into();
    assert_eq!(field_error(&v3), "database.session_role is missing");
    v3.database.session_role = Some("solvency_reader".into());
    v3.database.database_oid = Some(5);
    v3.database.relations = Some(Vec::new());
    assert_eq!(field_error(&v3), "solvency is missing");
    v3.solvency = Some(solvency.clone());
    let decoded = Manifest::decode(&v3.encode()).unwrap();
    assert_eq!((decoded.version(), decoded.is_v2()), (3, true));
    let mut short = v3.clone();
    short.solvency.as_mut().unwrap().evidence_sha256.pop();
    assert!(matches!(Manifest::decode(&short.encode()), Err(ManifestError::BadLength { .. })));
    let mut v2 = v3.clone();
    v2.format = MANIFEST_FORMAT_V2.into();
    assert_eq!(field_error(&v2), "solvency is not part of this version");
    let mut v1_with = v1.clone();
    v1_with.solvency = Some(solvency);
    assert_eq!(field_error(&v1_with), "solvency is not part of this version");
}
