//! The attested round bundle: one self-contained CBOR file with the round's manifest and its
//! Nitro attestation document, the setup manifest and its attestation, and the liabilities bundle
//! (proofs and verifying key). Version 2 (`solvency-enclave/bundle/v2`) is what enclaves make now;
//! version 1 bundles, which also carry a per-round key's signature, stay verifiable. [`verify`]
//! checks all of it, in a fixed order, against a verifier's [`BundlePolicy`]; each refusal names
//! the step that failed. `docs/bundle-format.md` specifies the format.

use std::collections::BTreeMap;

use p384::ecdsa::signature::Verifier;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::bundle::Bundle;
use crate::error::{BundleError, VerifyError};
use crate::liabilities::{OpeningCheck, VerifiedLiabilities};
use crate::manifest::{Manifest, ManifestError, SetupManifest};
use crate::nitro::{AttestationDocument, CoseSign1, NitroError, TrustAnchor, VerifiedDocument};
use crate::policy::{parse_lsn, BundlePolicy, PolicyFileError};

/// The `format` value of a version-1 attested round bundle (verified, no longer made).
pub const FORMAT_V1: &str = "solvency-enclave/bundle/v1";
/// The `format` value of a version-2 attested round bundle.
pub const FORMAT_V2: &str = "solvency-enclave/bundle/v2";
/// The `format` value of a version-3 attested round bundle: v2 plus the reserves evidence, for
/// a version-3 manifest.
pub const FORMAT_V3: &str = "solvency-enclave/bundle/v3";
/// The `attestation` value of a liabilities bundle embedded in an attested round bundle.
pub const EMBEDDED: &str = "nitro-enclave";
/// Bytes of a version-1 per-round key's ES384 signature (r ‖ s).
pub const ROUND_SIGNATURE_BYTES: usize = 96;

/// The round bundle as encoded: CBOR, one map. Fields a version does not have are absent.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RoundBundleWire {
    /// [`FORMAT_V3`] or [`FORMAT_V2`] (or [`FORMAT_V1`]).
    pub format: String,
    /// The canonical round manifest ([`Manifest`]).
    #[serde(with = "serde_bytes")]
    pub manifest: Vec<u8>,
    /// The round's attestation document: `user_data` is [`Manifest::digest`] of `manifest`,
    /// `nonce` the challenge (v1: `public_key` the per-round key).
    #[serde(with = "serde_bytes")]
    pub attestation: Vec<u8>,
    /// Version 1 only: ES384 signature of [`Manifest::digest`] by the per-round key. It added
    /// nothing the attestation's `user_data` does not already bind, so version 2 dropped it.
    #[serde(default, with = "serde_bytes", skip_serializing_if = "Option::is_none")]
    pub round_signature: Option<Vec<u8>>,
    /// The canonical setup manifest ([`SetupManifest`]) of the keys that proved the round.
    #[serde(with = "serde_bytes")]
    pub setup_manifest: Vec<u8>,
    /// The setup round's attestation document: `user_data` is [`SetupManifest::digest`].
    #[serde(with = "serde_bytes")]
    pub setup_attestation: Vec<u8>,
    /// The liabilities bundle (`docs/commitment-spec.md` §8), `attestation` = [`EMBEDDED`].
    #[serde(with = "serde_bytes")]
    pub liabilities: Vec<u8>,
    /// Version 3 only: the reserves evidence ([`crate::reserves::evidence::ReservesEvidence`]),
    /// whose SHA-256 the manifest's solvency statement holds.
    #[serde(default, with = "serde_bytes", skip_serializing_if = "Option::is_none")]
    pub reserves: Option<Vec<u8>>,
}

impl RoundBundleWire {
    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Writing byte strings into a Vec cannot fail; qed.
        let _ = ciborium::into_writer(self, &mut out);
        out
    }

    /// Decodes bundle bytes: one canonical CBOR map of the right structure for its version,
    /// nothing after it.
    pub fn decode(bytes: &[u8]) -> Result<Self, BundleError> {
        if bytes.len() > crate::bundle::MAX_BUNDLE_BYTES {
            return Err(BundleError::TooLarge { size: bytes.len(), limit: crate::bundle::MAX_BUNDLE_BYTES });
        }
        let mut reader = bytes;
        let wire: Self = ciborium::de::from_reader_with_recursion_limit(&mut reader, 8)
            .map_err(|e| BundleError::Cbor(e.to_string()))?;
        if !reader.is_empty() {
            return Err(BundleError::TrailingBytes { count: reader.len() });
        }
        if wire.encode() != bytes {
            return Err(BundleError::NonCanonical);
        }
        let version = wire.version();
        if version == 0 {
            return Err(BundleError::UnknownFormat(wire.format));
        }
        for (field, present, versions) in
            [("round_signature", wire.round_signature.is_some(), [1]), ("reserves", wire.reserves.is_some(), [3])]
        {
            let wanted = versions.contains(&version);
            if wanted != present {
                return Err(BundleError::Field {
                    field,
                    problem: if wanted { "is missing" } else { "is not part of this version" },
                });
            }
        }
        Ok(wire)
    }

    /// The bundle's version: 1, 2 or 3 (0 for an unknown format).
    pub fn version(&self) -> u8 {
        match self.format.as_str() {
            FORMAT_V1 => 1,
            FORMAT_V2 => 2,
            FORMAT_V3 => 3,
            _ => 0,
        }
    }

    /// The manifest digest that identifies this round (hex of 48 bytes).
    pub fn manifest_digest(&self) -> [u8; 48] {
        Manifest::digest(&self.manifest)
    }
}

/// Whether `bytes` look like an attested round bundle (any version) rather than a bare
/// liabilities bundle.
pub fn is_round_bundle(bytes: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Format {
        format: String,
    }
    ciborium::from_reader::<Format, _>(bytes).is_ok_and(|f| [FORMAT_V1, FORMAT_V2, FORMAT_V3].contains(&f.format.as_str()))
}

/// Why a round bundle was refused, by step (in the order they are checked).
#[allow(missing_docs)] // fields are named for what they hold
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RoundError {
    /// The policy itself is unusable.
    #[error(transparent)]
    Policy(#[from] PolicyFileError),
    /// The bundle's bytes are not a round bundle.
    #[error("decode: {0}")]
    Decode(BundleError),
    /// The manifest bytes are malformed.
    #[error("manifest: {0}")]
    Manifest(ManifestError),
    /// The round's attestation document failed (envelope, chain, signature, PCRs, debug).
    #[error("attestation: {0}")]
    Attestation(NitroError),
    /// The document does not attest these manifest bytes.
    #[error("manifest binding: the attestation's user_data is not the hash of the manifest")]
    ManifestBinding,
    /// The round is not the one the policy expects (another manifest digest).
    #[error("round: the manifest digest is {actual}, the policy expects {expected}")]
    Round { expected: String, actual: String },
    /// A version-1 bundle's per-round key signature over the manifest is missing or wrong.
    #[error("round key: {0}")]
    RoundKey(&'static str),
    /// The challenge nonce is not the expected one.
    #[error("nonce: expected {expected}, the round carries {actual:?}")]
    Nonce { expected: String, actual: String },
    /// The round is too old, from the future, or older than the verifier accepts.
    #[error("freshness: {0}")]
    Freshness(String),
    /// The setup attestation or the keys' lineage failed.
    #[error("setup: {0}")]
    Setup(String),
    /// The database read is not the pinned database.
    #[error("database: {field} is {actual}, the policy pins {expected}")]
    Database { field: &'static str, expected: String, actual: String },
    /// The round ran with another configuration or other assets than the policy pins.
    #[error("configuration: {field} is {actual}, the policy pins {expected}")]
    Configuration { field: &'static str, expected: String, actual: String },
    /// The liabilities proofs, chain, totals or root failed.
    #[error("liabilities: {0}")]
    Liabilities(VerifyError),
    /// The manifest and the liabilities bundle disagree.
    #[error("consistency: the manifest's {0} differs from the liabilities bundle's")]
    Consistency(&'static str),
    /// The reserves evidence does not yield the manifest's figures, or breaks a policy pin.
    #[error("reserves: {0}")]
    Reserves(String),
    /// An asset is short and the policy requires solvency, or the round states none.
    #[error("solvency: {0}")]
    Solvency(String),
}

impl RoundError {
    /// The failing step's name, for reports and `--json`.
    pub fn step(&self) -> &'static str {
        match self {
            Self::Policy(_) => "policy-file",
            Self::Decode(_) => "decode",
            Self::Manifest(_) => "manifest",
            Self::Attestation(_) => "attestation",
            Self::ManifestBinding => "manifest-binding",
            Self::Round { .. } => "round",
            Self::RoundKey(_) => "round-key",
            Self::Nonce { .. } => "nonce",
            Self::Freshness(_) => "freshness",
            Self::Setup(_) => "setup",
            Self::Database { .. } => "database",
            Self::Configuration { .. } => "configuration",
            Self::Liabilities(_) => "liabilities",
            Self::Consistency(_) => "consistency",
            Self::Reserves(_) => "reserves",
            Self::Solvency(_) => "solvency",
        }
    }
}

/// A setup attestation that verified: the keys it vouches for and the enclave that made them.
#[derive(Clone, Debug)]
pub struct VerifiedSetup {
    manifest: SetupManifest,
    document: VerifiedDocument,
}

impl VerifiedSetup {
    /// The setup manifest.
    pub fn manifest(&self) -> &SetupManifest {
        &self.manifest
    }

    /// The setup's attestation document.
    pub fn document(&self) -> &VerifiedDocument {
        &self.document
    }
}

fn timestamp_of(document: &[u8]) -> Result<u64, NitroError> {
    let envelope = CoseSign1::decode(document)?;
    Ok(AttestationDocument::decode(&envelope.payload)?.timestamp_ms)
}

/// Verifies a document at its own time (so archived bundles stay verifiable), with PCRs and
/// debug mode from `nitro_policy`; freshness is the caller's business.
fn verify_document(
    document: &[u8],
    anchor: &TrustAnchor,
    nitro_policy: &crate::nitro::Policy,
) -> Result<VerifiedDocument, NitroError> {
    let at = timestamp_of(document)?;
    crate::nitro::verify(document, anchor, at, nitro_policy)
}

/// Verifies a setup attestation: the document (at its own time) and that it attests exactly
/// `setup_manifest`. `pcrs` are the PCRs the setup enclave must have had. The enclave runs this
/// before it accepts keys from the parent; the bundle verifier runs it on the bundle's setup.
pub fn verify_setup(
    setup_manifest: &[u8],
    setup_attestation: &[u8],
    anchor: &TrustAnchor,
    pcrs: &BTreeMap<u8, Vec<u8>>,
    allow_debug: bool,
) -> Result<VerifiedSetup, String> {
    let manifest = SetupManifest::decode(setup_manifest).map_err(|e| format!("setup manifest: {e}"))?;
    let policy = crate::nitro::Policy {
        expected_pcrs: pcrs.clone(),
        allow_debug,
        expected_user_data: Some(SetupManifest::digest(setup_manifest).to_vec()),
        ..Default::default()
    };
    let document =
        verify_document(setup_attestation, anchor, &policy).map_err(|e| format!("setup attestation: {e}"))?;
    Ok(VerifiedSetup { manifest, document })
}

/// A round bundle that passed every check; only [`verify`] makes one.
#[derive(Clone, Debug)]
pub struct VerifiedRound {
    manifest: Manifest,
    manifest_digest: [u8; 48],
    document: VerifiedDocument,
    setup: VerifiedSetup,
    liabilities: VerifiedLiabilities,
}

impl VerifiedRound {
    /// The attested manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The manifest digest: what identifies this round (and the attestation's `user_data`).
    pub fn manifest_digest(&self) -> [u8; 48] {
        self.manifest_digest
    }

    /// The round's attestation document.
    pub fn document(&self) -> &VerifiedDocument {
        &self.document
    }

    /// The verified setup.
    pub fn setup(&self) -> &VerifiedSetup {
        &self.setup
    }

    /// The verified liabilities (for inclusion proofs).
    pub fn liabilities(&self) -> &VerifiedLiabilities {
        &self.liabilities
    }

    /// What a reader of any report must be told about this round even though it verified: a
    /// development root instead of AWS's, a version-1 manifest without the read's guards.
    pub fn warnings(&self) -> Vec<&'static str> {
        let mut warnings = Vec::new();
        if !self.document.root_is_aws() {
            warnings.push(DEVELOPMENT_ROOT_WARNING);
        }
        if !self.manifest.is_v2() {
            warnings.push(V1_MANIFEST_WARNING);
        }
        warnings
    }
}

/// The warning every output carries for a bundle verified under a development root.
pub const DEVELOPMENT_ROOT_WARNING: &str =
    "verified against a DEVELOPMENT root (emulated NSM): this is NOT an AWS attestation";
/// The warning for a version-1 round.
pub const V1_MANIFEST_WARNING: &str = "a version-1 round: its read was not checked against views, row-level \
     security or shadowed functions in the database, and it records no relations or database OID";

fn pin(field: &'static str, expected: &str, actual: &str) -> Result<(), RoundError> {
    if expected.eq_ignore_ascii_case(actual) {
        Ok(())
    } else {
        Err(RoundError::Database { field, expected: expected.to_owned(), actual: actual.to_owned() })
    }
}

fn exact(field: &'static str, expected: &str, actual: &str) -> Result<(), RoundError> {
    if expected == actual {
        Ok(())
    } else {
        Err(RoundError::Database { field, expected: expected.to_owned(), actual: actual.to_owned() })
    }
}

/// What a pin needs that a version-1 manifest does not record.
fn not_recorded(field: &'static str) -> RoundError {
    RoundError::Database {
        field,
        expected: "a recorded value (the policy pins it)".into(),
        actual: "not recorded (a version-1 round)".into(),
    }
}

/// The database step: the cluster, certificate, query, database, role, and where pinned the
/// database OID, timeline, LSN, relations and RDS instance.
fn check_database(manifest: &Manifest, policy: &BundlePolicy, min_lsn: Option<u64>) -> Result<(), RoundError> {
    let db = &manifest.database;
    let pins = &policy.database;
    pin("system_identifier", &pins.system_identifier, &db.system_identifier)?;
    pin("server_cert_sha256", &pins.server_cert_sha256, &db.server_cert_sha256)?;
    exact("query", &pins.query, &manifest.query)?;
    exact("database", &pins.name, &db.database)?;
    exact("role", &pins.role, &db.role)?;
    if let Some(session) = &db.session_role {
        exact("session_role", &pins.role, session)?;
    }
    if let Some(oid) = pins.database_oid {
        let actual = db.database_oid.ok_or_else(|| not_recorded("database_oid"))?;
        exact("database_oid", &oid.to_string(), &actual.to_string())?;
    }
    if let Some(timeline) = pins.timeline {
        exact("timeline", &timeline.to_string(), &db.timeline.to_string())?;
    }
    if db.in_recovery && !pins.allow_standby {
        return Err(RoundError::Database {
            field: "in_recovery",
            expected: "a primary".into(),
            actual: "a standby (allow_standby is not set)".into(),
        });
    }
    if let Some(min) = min_lsn {
        if parse_lsn(&db.lsn).is_none_or(|lsn| lsn < min) {
            return Err(RoundError::Database {
                field: "lsn",
                expected: format!("at least {}", pins.min_lsn.clone().unwrap_or_default()),
                actual: db.lsn.clone(),
            });
        }
    }
    if let Some(pinned) = &pins.relations {
        let recorded = db.relations.as_ref().ok_or_else(|| not_recorded("relations"))?;
        let named: Vec<_> = recorded.iter().filter(|r| r.named).collect();
        let describe = |schema: &str, name: &str| format!("{schema}.{name}");
        let names = |it: &mut dyn Iterator<Item = String>| it.collect::<Vec<_>>().join(", ");
        let expected = names(&mut pinned.iter().map(|r| describe(&r.schema, &r.name)));
        let actual = names(&mut named.iter().map(|r| describe(&r.schema, &r.name)));
        let same_set = named.len() == pinned.len()
            && pinned.iter().all(|p| named.iter().any(|r| r.schema == p.schema && r.name == p.name));
        if !same_set {
            return Err(RoundError::Database { field: "relations", expected, actual });
        }
        for p in pinned {
            let Some(r) = named.iter().find(|r| r.schema == p.schema && r.name == p.name) else { continue };
            if let Some(oid) = p.oid {
                if oid != r.oid {
                    return Err(RoundError::Database {
                        field: "relation oid",
                        expected: format!("{} with OID {oid}", describe(&p.schema, &p.name)),
                        actual: format!("OID {}", r.oid),
                    });
                }
            }
            if let Some(owner) = &p.owner {
                if *owner != r.owner {
                    return Err(RoundError::Database {
                        field: "relation owner",
                        expected: format!("{} owned by {owner}", describe(&p.schema, &p.name)),
                        actual: format!("owned by {}", r.owner),
                    });
                }
            }
        }
    }
    if let Some(pinned) = &pins.rds {
        let rds = db.rds.as_ref().ok_or_else(|| RoundError::Database {
            field: "rds",
            expected: format!("RDS instance {} of account {}", pinned.dbi_resource_id, pinned.account),
            actual: "no RDS identity recorded".into(),
        })?;
        exact("rds.account", &pinned.account, &rds.account)?;
        exact("rds.dbi_resource_id", &pinned.dbi_resource_id, &rds.dbi_resource_id)?;
        if let Some(region) = &pinned.region {
            exact("rds.region", region, &rds.region)?;
        }
    }
    Ok(())
}

/// The configuration step: the configuration's hash and the assets with their decimals.
fn check_configuration(
    manifest: &Manifest,
    policy: &BundlePolicy,
    config_sha256: Option<[u8; 32]>,
) -> Result<(), RoundError> {
    if let Some(expected) = config_sha256 {
        if manifest.config_sha256 != expected {
            return Err(RoundError::Configuration {
                field: "config_sha256",
                expected: hex::encode(expected),
                actual: hex::encode(&manifest.config_sha256),
            });
        }
    }
    if let Some(assets) = &policy.assets {
        let show = |it: &mut dyn Iterator<Item = (String, u32)>| {
            it.map(|(s, d)| format!("{s} ({d} decimals)")).collect::<Vec<_>>().join(", ")
        };
        let same = assets.len() == manifest.assets.len()
            && assets.iter().zip(&manifest.assets).all(|(p, a)| p.symbol == a.symbol && p.decimals == a.decimals);
        if !same {
            return Err(RoundError::Configuration {
                field: "assets",
                expected: show(&mut assets.iter().map(|a| (a.symbol.clone(), a.decimals))),
                actual: show(&mut manifest.assets.iter().map(|a| (a.symbol.clone(), a.decimals))),
            });
        }
    }
    Ok(())
}

/// Verifies a round bundle's bytes against `policy`, trusting `anchor` (the pinned AWS root, or
/// a development root the caller chose explicitly), with `now_ms` as the current time.
///
/// Order: decode; the manifest; the round's attestation document (chain at its own time,
/// signature, PCRs, debug); the manifest binding; the expected round; (v1) the per-round key's
/// signature; the nonce; freshness; the setup attestation (same image, attests these keys); the
/// database pins; the configuration pins; every batch proof, the sum chain, totals and root; the
/// manifest against the liabilities bundle; the reserves, re-derived from the evidence and held
/// against the policy's pins; the solvency verdicts the policy requires.
pub fn verify(
    bytes: &[u8],
    policy: &BundlePolicy,
    anchor: &TrustAnchor,
    now_ms: u64,
) -> Result<VerifiedRound, RoundError> {
    let rules = policy.rules()?;
    let wire = RoundBundleWire::decode(bytes).map_err(RoundError::Decode)?;
    let manifest = Manifest::decode(&wire.manifest).map_err(RoundError::Manifest)?;
    // A manifest inside an envelope of another version is not something an enclave makes.
    if manifest.version() != wire.version() {
        return Err(RoundError::Decode(BundleError::Field {
            field: "manifest",
            problem: "is of another version than the bundle",
        }));
    }

    let nitro_policy = crate::nitro::Policy {
        expected_pcrs: rules.pcrs.clone(),
        allow_debug: policy.attestation.allow_debug,
        ..Default::default()
    };
    let document = verify_document(&wire.attestation, anchor, &nitro_policy).map_err(RoundError::Attestation)?;
    let doc = document.document();
    let digest = Manifest::digest(&wire.manifest);
    if doc.user_data.as_deref() != Some(digest.as_slice()) {
        return Err(RoundError::ManifestBinding);
    }
    if let Some(expected) = rules.manifest_digest {
        if expected != digest {
            return Err(RoundError::Round { expected: hex::encode(expected), actual: hex::encode(digest) });
        }
    }

    if let Some(round_signature) = &wire.round_signature {
        let key_bytes =
            doc.public_key.as_deref().ok_or(RoundError::RoundKey("the attestation carries no public key"))?;
        let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(key_bytes)
            .map_err(|_| RoundError::RoundKey("the attested public key is not a P-384 point"))?;
        let signature = p384::ecdsa::Signature::from_slice(round_signature)
            .map_err(|_| RoundError::RoundKey("the round signature is malformed"))?;
        // One signature per manifest: the high-S twin of a valid signature is refused.
        if signature.normalize_s().is_some() {
            return Err(RoundError::RoundKey("the round signature is not in low-S form"));
        }
        key.verify(&digest, &signature).map_err(|_| RoundError::RoundKey("the round signature does not verify"))?;
    }

    let carried = doc.nonce.clone().unwrap_or_default();
    if carried != manifest.nonce {
        return Err(RoundError::Nonce { expected: hex::encode(&carried), actual: hex::encode(&manifest.nonce) });
    }
    if let Some(expected) = &rules.nonce {
        if *expected != carried {
            return Err(RoundError::Nonce { expected: hex::encode(expected), actual: hex::encode(&carried) });
        }
    }

    let skew_ms = policy.attestation.max_skew_secs.saturating_mul(1000);
    if doc.timestamp_ms > now_ms.saturating_add(skew_ms) {
        return Err(RoundError::Freshness(format!(
            "the document is dated {} ms in the future",
            doc.timestamp_ms - now_ms
        )));
    }
    if let Some(max_age) = policy.attestation.max_age_secs {
        let age_ms = now_ms.saturating_sub(doc.timestamp_ms);
        if age_ms > max_age.saturating_mul(1000) {
            return Err(RoundError::Freshness(format!(
                "the round is {} s old; the policy accepts {max_age} s",
                age_ms / 1000
            )));
        }
    }
    if let Some(deadline) = policy.round.deadline_ms {
        if doc.timestamp_ms > deadline {
            return Err(RoundError::Freshness(format!(
                "the round was attested at {}, after the challenge's deadline {deadline}",
                doc.timestamp_ms
            )));
        }
    }
    if manifest.deadline_ms != 0 && doc.timestamp_ms > manifest.deadline_ms {
        return Err(RoundError::Freshness(format!(
            "the challenge's deadline {} passed before the round was attested at {}",
            manifest.deadline_ms, doc.timestamp_ms
        )));
    }

    // The keys must come from an enclave running the same image as the one that proved, and
    // meeting every PCR the policy pins.
    let mut image: BTreeMap<u8, Vec<u8>> = (0..3).filter_map(|i| doc.pcrs.get(&i).map(|v| (i, v.clone()))).collect();
    image.extend(rules.pcrs.clone());
    let setup =
        verify_setup(&wire.setup_manifest, &wire.setup_attestation, anchor, &image, policy.attestation.allow_debug)
            .map_err(RoundError::Setup)?;
    let setup_sha256: [u8; 32] = Sha256::digest(&wire.setup_manifest).into();
    if manifest.setup_sha256 != setup_sha256 {
        return Err(RoundError::Setup("the manifest names another setup".into()));
    }
    if setup.manifest.verifying_key_sha256 != manifest.verifying_key_sha256 {
        return Err(RoundError::Setup("the round's verifying key is not the one the setup attested".into()));
    }
    if setup.manifest.batch_size != manifest.batch_size || setup.manifest.assets != manifest.assets.len() as u64 {
        return Err(RoundError::Setup("the setup's circuit shape differs from the round's".into()));
    }

    check_database(&manifest, policy, rules.min_lsn)?;
    check_configuration(&manifest, policy, rules.config_sha256)?;

    let liabilities_sha256: [u8; 32] = Sha256::digest(&wire.liabilities).into();
    if manifest.liabilities_sha256 != liabilities_sha256 {
        return Err(RoundError::Consistency("liabilities_sha256"));
    }
    let bundle =
        Bundle::decode_embedded(&wire.liabilities).map_err(|e| RoundError::Liabilities(VerifyError::Bundle(e)))?;
    let mut vk_pin = [0u8; 32];
    vk_pin.copy_from_slice(&setup.manifest.verifying_key_sha256);
    if let Some(pinned) = rules.verifying_key_sha256 {
        if pinned != vk_pin {
            return Err(RoundError::Setup(format!(
                "the verifying key {} is not the pinned {}",
                hex::encode(vk_pin),
                hex::encode(pinned)
            )));
        }
    }
    let bounds = hidden_total_bounds(&manifest)?;
    let opening = match (&bundle.opening, &setup.manifest.opening_verifying_key_sha256) {
        (None, _) => None,
        (Some(_), Some(key)) => {
            let mut verifying_key_sha256 = [0u8; 32];
            verifying_key_sha256.copy_from_slice(key);
            Some(OpeningCheck { verifying_key_sha256, bounds: &bounds })
        }
        (Some(_), None) => {
            return Err(RoundError::Setup("the round hides totals, but its setup made no opening keys".into()));
        }
    };
    let liabilities =
        crate::liabilities::verify_private(bundle, Some(vk_pin), opening).map_err(RoundError::Liabilities)?;
    check_consistency(&manifest, liabilities.bundle())?;
    crate::solvency::check_reserves(&manifest, wire.reserves.as_deref(), policy, document.document().timestamp_ms)?;
    crate::solvency::check_solvency(&manifest, policy)?;

    Ok(VerifiedRound { manifest, manifest_digest: digest, document, setup, liabilities })
}

/// Per asset, the bound a hidden total is proven against: the reserves the manifest states for it,
/// clamped (spec §13). The `reserves` step then re-derives those reserves from the evidence, so a
/// round whose stated reserves are false fails there. Zero for published totals (unused).
fn hidden_total_bounds(manifest: &Manifest) -> Result<Vec<u128>, RoundError> {
    manifest
        .assets
        .iter()
        .map(|asset| {
            if asset.total != crate::bundle::HIDDEN {
                return Ok(0);
            }
            let stated = manifest
                .solvency
                .as_ref()
                .and_then(|s| s.assets.iter().find(|a| a.symbol == asset.symbol))
                .ok_or_else(|| RoundError::Reserves(format!("{}'s total is hidden, but no reserves are stated for it", asset.symbol)))?;
            let reserves = alloy_primitives::U256::from_str_radix(&stated.reserves, 10)
                .map_err(|_| RoundError::Reserves(format!("{}: reserves {:?} are not a number", asset.symbol, stated.reserves)))?;
            Ok(crate::opening::reserves_bound(reserves))
        })
        .collect()
}

fn check_consistency(manifest: &Manifest, bundle: &Bundle) -> Result<(), RoundError> {
    let fail = RoundError::Consistency;
    if manifest.round_id != bundle.round_id {
        return Err(fail("round_id"));
    }
    if manifest.leaf_count != bundle.leaf_count {
        return Err(fail("leaf_count"));
    }
    if manifest.batch_size != bundle.shape.batch_size {
        return Err(fail("batch_size"));
    }
    if manifest.root != crate::commitment::element_to_bytes(&bundle.root) {
        return Err(fail("root"));
    }
    let symbols: Vec<&str> = manifest.assets.iter().map(|a| a.symbol.as_str()).collect();
    let bundle_symbols: Vec<&str> = bundle.assets.iter().map(String::as_str).collect();
    if symbols != bundle_symbols {
        return Err(fail("assets"));
    }
    let totals: Vec<String> = bundle.totals.iter().copied().map(crate::bundle::total_text).collect();
    if manifest.assets.iter().map(|a| &a.total).ne(totals.iter()) {
        return Err(fail("totals"));
    }
    let proofs: Vec<Vec<u8>> = bundle.to_wire().batches.into_iter().map(|b| b.proof).collect();
    if manifest.proofs_sha256 != crate::manifest::proofs_sha256(proofs.iter().map(Vec::as_slice)) {
        return Err(fail("proofs_sha256"));
    }
    Ok(())
}
