//! Entry points for fuzzers. The targets in `fuzz/` only call these, so the harness logic is
//! reviewed and tested with the library. Each must return normally for every input; a panic, an
//! overflow or a hang is a bug.

use std::sync::OnceLock;

use crate::bundle::Bundle;
use crate::nitro::{self, AttestationDocument, CoseSign1, Policy, TrustAnchor};

/// A time at which the real AWS test documents' chains are valid (2022-10-13, 09:00 UTC).
const FUZZ_TIME_MS: u64 = 1_665_651_600_000;

/// Parses `data` as an attestation document step by step, then verifies it in full against the
/// built-in AWS root at a fixed time, with debug allowed and again with the default policy.
pub fn nitro_document(data: &[u8]) {
    if let Ok(envelope) = CoseSign1::decode(data) {
        let _ = envelope.signed_bytes();
        let _ = AttestationDocument::decode(&envelope.payload);
    }
    // Built once: the anchor's own checks are not what is being fuzzed.
    static ROOT: OnceLock<Option<TrustAnchor>> = OnceLock::new();
    if let Some(root) = ROOT.get_or_init(|| TrustAnchor::aws_builtin().ok()) {
        let _ = nitro::verify(data, root, FUZZ_TIME_MS, &Policy { allow_debug: true, ..Policy::default() });
        let _ = nitro::verify(data, root, u64::MAX, &Policy::default());
    }
}

/// Decodes `data` as a liabilities bundle and, if it decodes, verifies it.
pub fn liabilities_bundle(data: &[u8]) {
    if let Ok(bundle) = Bundle::decode(data) {
        let _ = crate::liabilities::verify(bundle, None);
    }
}

/// Decodes `data` as an attested round bundle, its manifests and as a policy file, and verifies
/// it in full against the built-in AWS root under a fixed policy.
pub fn round_bundle(data: &[u8]) {
    use crate::attested::{self, RoundBundleWire};
    use crate::manifest::{Manifest, SetupManifest};
    use crate::policy::{AttestationRules, BundlePolicy, DatabasePins, RoundRules};
    let _ = Manifest::decode(data);
    let _ = SetupManifest::decode(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = BundlePolicy::from_toml(text);
    }
    if let Ok(wire) = RoundBundleWire::decode(data) {
        let _ = Manifest::decode(&wire.manifest);
        let _ = SetupManifest::decode(&wire.setup_manifest);
    }
    static POLICY: OnceLock<Option<(BundlePolicy, TrustAnchor)>> = OnceLock::new();
    let fixed = POLICY.get_or_init(|| {
        let pcr = "00".repeat(48);
        let policy = BundlePolicy {
            attestation: AttestationRules { allow_debug: true, ..Default::default() },
            pcrs: (0..3).map(|i| (i.to_string(), pcr.clone())).collect(),
            database: DatabasePins {
                system_identifier: "1".into(),
                server_cert_sha256: "00".repeat(32),
                query: "SELECT 1".into(),
                name: "postgres".into(),
                role: "solvency_reader".into(),
                database_oid: None,
                timeline: None,
                allow_standby: false,
                min_lsn: None,
                relations: None,
                rds: None,
            },
            round: RoundRules::default(),
            assets: None,
            solvency: Default::default(),
            reserves: None,
        };
        Some((policy, TrustAnchor::aws_builtin().ok()?))
    });
    if let Some((policy, root)) = fixed {
        let _ = attested::verify(data, policy, root, FUZZ_TIME_MS);
    }
}
