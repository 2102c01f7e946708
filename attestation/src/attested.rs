//! The attested round bundle (`solvency-enclave/bundle/v1`): one self-contained CBOR file with the
//! round's manifest and its Nitro attestation document, the setup manifest and its attestation,
//! and the liabilities bundle (proofs and verifying key). [`verify`] checks all of it, in a fixed
//! order, against a verifier's [`BundlePolicy`]; each refusal names the step that failed.
//! `docs/bundle-format.md` specifies the format.

use std::collections::BTreeMap;

use p384::ecdsa::signature::Verifier;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::bundle::Bundle;
use crate::error::{BundleError, VerifyError};
use crate::liabilities::VerifiedLiabilities;
use crate::manifest::{Manifest, ManifestError, SetupManifest};
use crate::nitro::{AttestationDocument, CoseSign1, NitroError, TrustAnchor, VerifiedDocument};

/// The `format` value of a version-1 attested round bundle.
pub const FORMAT_V1: &str = "solvency-enclave/bundle/v1";
/// The `attestation` value of a liabilities bundle embedded in an attested round bundle.
pub const EMBEDDED: &str = "nitro-enclave";
/// Bytes of the per-round key's ES384 signature (r ‖ s).
pub const ROUND_SIGNATURE_BYTES: usize = 96;

/// The round bundle as encoded: CBOR, one map.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RoundBundleWire {
    /// [`FORMAT_V1`].
    pub format: String,
    /// The canonical round manifest ([`Manifest`]).
    #[serde(with = "serde_bytes")]
    pub manifest: Vec<u8>,
    /// The round's attestation document: `user_data` is [`Manifest::digest`] of `manifest`,
    /// `public_key` the per-round key, `nonce` the challenge.
    #[serde(with = "serde_bytes")]
    pub attestation: Vec<u8>,
    /// ES384 signature of [`Manifest::digest`] by the per-round key.
    #[serde(with = "serde_bytes")]
    pub round_signature: Vec<u8>,
    /// The canonical setup manifest ([`SetupManifest`]) of the keys that proved the round.
    #[serde(with = "serde_bytes")]
    pub setup_manifest: Vec<u8>,
    /// The setup round's attestation document: `user_data` is [`SetupManifest::digest`].
    #[serde(with = "serde_bytes")]
    pub setup_attestation: Vec<u8>,
    /// The liabilities bundle (`docs/commitment-spec.md` §8), `attestation` = [`EMBEDDED`].
    #[serde(with = "serde_bytes")]
    pub liabilities: Vec<u8>,
}

impl RoundBundleWire {
    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Writing byte strings into a Vec cannot fail; qed.
        let _ = ciborium::into_writer(self, &mut out);
        out
    }

    /// Decodes bundle bytes: one canonical CBOR map of the right structure, nothing after it.
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
        if wire.format != FORMAT_V1 {
            return Err(BundleError::UnknownFormat(wire.format));
        }
        Ok(wire)
    }
}

/// Whether `bytes` look like an attested round bundle rather than a bare liabilities bundle.
pub fn is_round_bundle(bytes: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Format {
        format: String,
    }
    ciborium::from_reader::<Format, _>(bytes).is_ok_and(|f| f.format == FORMAT_V1)
}

/// What the verifier requires of a bundle (the TOML policy file, `docs/policy.md`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BundlePolicy {
    /// Attestation requirements.
    #[serde(default)]
    pub attestation: AttestationRules,
    /// PCR index (decimal) to its required value (hex of 48 bytes); PCR0, 1 and 2 are required.
    pub pcrs: BTreeMap<String, String>,
    /// The database the auditor pinned.
    pub database: DatabasePins,
    /// Round requirements.
    #[serde(default)]
    pub round: RoundRules,
}

/// Freshness and debug-mode rules.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AttestationRules {
    /// Accept debug-mode enclaves (all-zero PCR0/1/2). Never in production.
    #[serde(default)]
    pub allow_debug: bool,
    /// The oldest round accepted, in seconds before "now"; none: any age.
    #[serde(default)]
    pub max_age_secs: Option<u64>,
    /// How far in the future a document's timestamp may be.
    #[serde(default = "default_skew")]
    pub max_skew_secs: u64,
}

fn default_skew() -> u64 {
    300
}

impl Default for AttestationRules {
    fn default() -> Self {
        Self { allow_debug: false, max_age_secs: None, max_skew_secs: default_skew() }
    }
}

/// The database and the read the auditor pinned. The parent chooses the round configuration
/// the enclave runs, so everything about what was read that matters is pinned here.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DatabasePins {
    /// The cluster's system identifier (decimal).
    pub system_identifier: String,
    /// SHA-256 of the server certificate (hex).
    pub server_cert_sha256: String,
    /// The exact query the auditor approved, as the manifest records it (the configured query
    /// without a trailing semicolon): another query, view or filter is refused.
    pub query: String,
    /// The database name (`current_database()`), when pinned.
    #[serde(default)]
    pub name: Option<String>,
    /// The timeline, when pinned.
    #[serde(default)]
    pub timeline: Option<u32>,
    /// Accept a read from a hot standby (which may lag the primary); default: primaries only.
    #[serde(default)]
    pub allow_standby: bool,
    /// The lowest WAL position accepted (`X/Y` hex, as PostgreSQL prints it), so an old
    /// snapshot or a paused standby is refused.
    #[serde(default)]
    pub min_lsn: Option<String>,
}

/// Parses a PostgreSQL LSN (`X/Y`, hex halves) into its 64-bit position.
pub fn parse_lsn(text: &str) -> Option<u64> {
    let (high, low) = text.split_once('/')?;
    let valid = |h: &str| !h.is_empty() && h.len() <= 8 && h.bytes().all(|b| b.is_ascii_hexdigit());
    if !valid(high) || !valid(low) {
        return None;
    }
    Some((u64::from_str_radix(high, 16).ok()? << 32) | u64::from_str_radix(low, 16).ok()?)
}

/// Replay and challenge rules.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RoundRules {
    /// The lowest round number accepted (the verifier saw round `min_round - 1` already).
    #[serde(default)]
    pub min_round: Option<u64>,
    /// The challenge the verifier issued (hex); the round must carry exactly it.
    #[serde(default)]
    pub nonce: Option<String>,
    /// The challenge's deadline (ms since the Unix epoch): the round must be attested by then.
    /// The verifier sets it; the deadline in the manifest is only what the parent asked for.
    #[serde(default)]
    pub deadline_ms: Option<u64>,
    /// The verifying key's SHA-256 (hex), when pinned.
    #[serde(default)]
    pub verifying_key_sha256: Option<String>,
}

/// A policy file that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("policy: {0}")]
pub struct PolicyFileError(String);

/// A policy with its hex decoded and its PCRs checked.
#[derive(Clone, Debug)]
struct Rules {
    pcrs: BTreeMap<u8, Vec<u8>>,
    nonce: Option<Vec<u8>>,
    verifying_key_sha256: Option<[u8; 32]>,
    min_lsn: Option<u64>,
}

fn hex_field(name: &str, value: &str, len: Option<usize>) -> Result<Vec<u8>, PolicyFileError> {
    let bytes = hex::decode(value).map_err(|_| PolicyFileError(format!("{name}: not hex")))?;
    match len {
        Some(len) if bytes.len() != len => {
            Err(PolicyFileError(format!("{name}: {} bytes, expected {len}", bytes.len())))
        }
        _ => Ok(bytes),
    }
}

impl BundlePolicy {
    /// Parses a policy from TOML text and checks it.
    pub fn from_toml(text: &str) -> Result<Self, PolicyFileError> {
        let policy: Self = toml::from_str(text).map_err(|e| PolicyFileError(e.to_string()))?;
        policy.rules()?;
        Ok(policy)
    }

    /// The policy as TOML.
    pub fn to_toml(&self) -> String {
        // Strings, integers, booleans and tables always serialise; qed.
        toml::to_string(self).unwrap_or_default()
    }

    fn rules(&self) -> Result<Rules, PolicyFileError> {
        let mut pcrs = BTreeMap::new();
        for (index, value) in &self.pcrs {
            let i: u8 = index
                .parse()
                .ok()
                .filter(|i| *i < 32)
                .ok_or_else(|| PolicyFileError(format!("pcrs: {index:?} is not a PCR index 0..31")))?;
            pcrs.insert(i, hex_field(&format!("pcrs.{i}"), value, Some(48))?);
        }
        if !(0..3).all(|i| pcrs.contains_key(&i)) {
            return Err(PolicyFileError("pcrs: PCR0, PCR1 and PCR2 must be pinned (the image that may run)".into()));
        }
        hex_field("database.server_cert_sha256", &self.database.server_cert_sha256, Some(32))?;
        if self.database.system_identifier.is_empty()
            || !self.database.system_identifier.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(PolicyFileError("database.system_identifier: not a decimal number".into()));
        }
        let nonce = self.round.nonce.as_deref().map(|n| hex_field("round.nonce", n, None)).transpose()?;
        if nonce.as_ref().is_some_and(Vec::is_empty) {
            return Err(PolicyFileError("round.nonce: empty; omit it when no challenge was issued".into()));
        }
        if self.database.query.trim().is_empty() {
            return Err(PolicyFileError("database.query: empty".into()));
        }
        let min_lsn = match &self.database.min_lsn {
            Some(lsn) => Some(
                parse_lsn(lsn).ok_or_else(|| PolicyFileError(format!("database.min_lsn: {lsn:?} is not an LSN")))?,
            ),
            None => None,
        };
        let verifying_key_sha256 = match &self.round.verifying_key_sha256 {
            Some(v) => {
                let bytes = hex_field("round.verifying_key_sha256", v, Some(32))?;
                let mut out = [0u8; 32];
                out.copy_from_slice(&bytes);
                Some(out)
            }
            None => None,
        };
        Ok(Rules { pcrs, nonce, verifying_key_sha256, min_lsn })
    }
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
    /// The per-round key's signature over the manifest is missing or wrong.
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
    /// The liabilities proofs, chain, totals or root failed.
    #[error("liabilities: {0}")]
    Liabilities(VerifyError),
    /// The manifest and the liabilities bundle disagree.
    #[error("consistency: the manifest's {0} differs from the liabilities bundle's")]
    Consistency(&'static str),
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
            Self::RoundKey(_) => "round-key",
            Self::Nonce { .. } => "nonce",
            Self::Freshness(_) => "freshness",
            Self::Setup(_) => "setup",
            Self::Database { .. } => "database",
            Self::Liabilities(_) => "liabilities",
            Self::Consistency(_) => "consistency",
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
    document: VerifiedDocument,
    setup: VerifiedSetup,
    liabilities: VerifiedLiabilities,
}

impl VerifiedRound {
    /// The attested manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
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
}

fn pin(field: &'static str, expected: &str, actual: &str) -> Result<(), RoundError> {
    if expected.eq_ignore_ascii_case(actual) {
        Ok(())
    } else {
        Err(RoundError::Database { field, expected: expected.to_owned(), actual: actual.to_owned() })
    }
}

/// Verifies a round bundle's bytes against `policy`, trusting `anchor` (the pinned AWS root, or
/// a development root the caller chose explicitly), with `now_ms` as the current time.
///
/// Order: decode; the round's attestation document (chain at its own time, signature, PCRs,
/// debug); the manifest binding; the per-round key's signature; the nonce; freshness and
/// replay; the setup attestation (same image, attests these keys); the database pins; every
/// batch proof, the sum chain, totals and root; the manifest against the liabilities bundle.
pub fn verify(
    bytes: &[u8],
    policy: &BundlePolicy,
    anchor: &TrustAnchor,
    now_ms: u64,
) -> Result<VerifiedRound, RoundError> {
    let rules = policy.rules()?;
    let wire = RoundBundleWire::decode(bytes).map_err(RoundError::Decode)?;
    let manifest = Manifest::decode(&wire.manifest).map_err(RoundError::Manifest)?;

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

    let key_bytes = doc.public_key.as_deref().ok_or(RoundError::RoundKey("the attestation carries no public key"))?;
    let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(key_bytes)
        .map_err(|_| RoundError::RoundKey("the attested public key is not a P-384 point"))?;
    let signature = p384::ecdsa::Signature::from_slice(&wire.round_signature)
        .map_err(|_| RoundError::RoundKey("the round signature is malformed"))?;
    // One signature per manifest: the high-S twin of a valid signature is refused.
    if signature.normalize_s().is_some() {
        return Err(RoundError::RoundKey("the round signature is not in low-S form"));
    }
    key.verify(&digest, &signature).map_err(|_| RoundError::RoundKey("the round signature does not verify"))?;

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
    if let Some(min_round) = policy.round.min_round {
        if manifest.round < min_round {
            return Err(RoundError::Freshness(format!(
                "round {} is older than the lowest accepted round {min_round} (a replay?)",
                manifest.round
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

    let db = &manifest.database;
    let pins = &policy.database;
    pin("system_identifier", &pins.system_identifier, &db.system_identifier)?;
    pin("server_cert_sha256", &pins.server_cert_sha256, &db.server_cert_sha256)?;
    if manifest.query != pins.query {
        return Err(RoundError::Database {
            field: "query",
            expected: pins.query.clone(),
            actual: manifest.query.clone(),
        });
    }
    if let Some(name) = &pins.name {
        if *name != db.database {
            return Err(RoundError::Database {
                field: "database",
                expected: name.clone(),
                actual: db.database.clone(),
            });
        }
    }
    if let Some(timeline) = pins.timeline {
        pin("timeline", &timeline.to_string(), &db.timeline.to_string())?;
    }
    if db.in_recovery && !pins.allow_standby {
        return Err(RoundError::Database {
            field: "in_recovery",
            expected: "a primary".into(),
            actual: "a standby (allow_standby is not set)".into(),
        });
    }
    if let Some(min) = rules.min_lsn {
        if parse_lsn(&db.lsn).is_none_or(|lsn| lsn < min) {
            return Err(RoundError::Database {
                field: "lsn",
                expected: format!("at least {}", pins.min_lsn.clone().unwrap_or_default()),
                actual: db.lsn.clone(),
            });
        }
    }

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
    let liabilities = crate::liabilities::verify(bundle, Some(vk_pin)).map_err(RoundError::Liabilities)?;
    check_consistency(&manifest, liabilities.bundle())?;

    Ok(VerifiedRound { manifest, document, setup, liabilities })
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
    let totals: Vec<String> = bundle.totals.iter().map(u128::to_string).collect();
    if manifest.assets.iter().map(|a| &a.total).ne(totals.iter()) {
        return Err(fail("totals"));
    }
    let proofs: Vec<Vec<u8>> = bundle.to_wire().batches.into_iter().map(|b| b.proof).collect();
    if manifest.proofs_sha256 != crate::manifest::proofs_sha256(proofs.iter().map(Vec::as_slice)) {
        return Err(fail("proofs_sha256"));
    }
    Ok(())
}
