//! A software Nitro Secure Module for development and tests. Its documents have exactly the AWS
//! structure and encoding and go through the same verifier, but are signed through a
//! development chain shaped like AWS's (root → regional → zonal → instance → a short-lived
//! leaf made fresh for every document, P-384, the same key usages and path lengths), so they
//! verify only for a caller who explicitly trusts the development root. PCR0–2 are derived from
//! the running binary, so a development bundle still says which code ran.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ciborium::Value;
use p384::ecdsa::signature::Signer;
use p384::ecdsa::{Signature, SigningKey};
use p384::pkcs8::DecodePrivateKey;
use rand::RngCore;
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P384_SHA384,
};
use sha2::{Digest, Sha384};
use time::OffsetDateTime;

use attestation::nitro::document_limits::PCR_BYTES;

use super::{AttestationRequest, NsmError, SecureModule};

/// PCRs the emulated module has (like the hardware's 16).
const PCR_COUNT: u16 = 16;
/// Lifetime of a leaf certificate, as on AWS.
const LEAF_LIFETIME: Duration = Duration::from_secs(3 * 3600);
/// Protected header `{1: -35}` (ES384), encoded.
const PROTECTED_ES384: [u8; 4] = [0xa1, 0x01, 0x38, 0x22];

fn emulator_error(e: impl std::fmt::Display) -> NsmError {
    NsmError::Emulator(e.to_string())
}

struct Authority {
    certificate: Certificate,
    key: KeyPair,
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "US");
    dn.push(DnType::OrganizationName, "solvency-enclave development");
    dn.push(DnType::OrganizationalUnitName, "emulated NSM (not AWS)");
    dn.push(DnType::CommonName, common_name);
    dn
}

fn params(
    common_name: &str,
    from: OffsetDateTime,
    lifetime: Duration,
    is_ca: IsCa,
    usages: Vec<KeyUsagePurpose>,
) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = name(common_name);
    p.not_before = from;
    p.not_after = from + lifetime;
    p.is_ca = is_ca;
    p.key_usages = usages;
    p
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn ca_usages() -> Vec<KeyUsagePurpose> {
    vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign]
}

fn authority(
    common_name: &str,
    lifetime: Duration,
    is_ca: IsCa,
    usages: Vec<KeyUsagePurpose>,
    issuer: Option<&Authority>,
) -> Result<Authority, NsmError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).map_err(emulator_error)?;
    // Back-dated a minute so a verifier with a slightly slow clock accepts fresh documents.
    let p = params(common_name, now() - Duration::from_secs(60), lifetime, is_ca, usages);
    let certificate = match issuer {
        Some(i) => p.signed_by(&key, &i.certificate, &i.key),
        None => p.self_signed(&key),
    }
    .map_err(emulator_error)?;
    Ok(Authority { certificate, key })
}

/// File name of the persisted development root's private key.
pub const ROOT_KEY_FILE: &str = "dev-root.key.pem";
/// File name of the persisted development root certificate, which verifiers are given.
pub const ROOT_CERT_FILE: &str = "dev-root.pem";

fn root_authority(key: KeyPair) -> Result<Authority, NsmError> {
    let p = params(
        "root.emulated.nitro-enclaves",
        now() - Duration::from_secs(60),
        Duration::from_secs(30 * 365 * 86_400),
        IsCa::Ca(BasicConstraints::Unconstrained),
        ca_usages(),
    );
    let certificate = p.self_signed(&key).map_err(emulator_error)?;
    Ok(Authority { certificate, key })
}

/// SHA-384 of the running program, which the emulated PCRs measure.
fn running_image_digest() -> Result<[u8; 48], NsmError> {
    let exe = std::env::current_exe().map_err(emulator_error)?;
    let image = std::fs::read(&exe).map_err(emulator_error)?;
    Ok(Sha384::digest(&image).into())
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), NsmError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f =
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(emulator_error)?;
    f.write_all(bytes).map_err(emulator_error)
}

/// The emulated module: a development root, the intermediate CAs below it, and the PCRs.
pub struct EmulatedNsm {
    root: Authority,
    root_der: Vec<u8>,
    root_pem: String,
    intermediates: Vec<Authority>,
    intermediates_expire: OffsetDateTime,
    pcrs: BTreeMap<u16, Vec<u8>>,
    module_id: String,
    indefinite_length_payload: bool,
}

impl std::fmt::Debug for EmulatedNsm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatedNsm").field("module_id", &self.module_id).finish_non_exhaustive()
    }
}

/// PCR0–2 of the emulator for a binary whose SHA-384 is `image_digest`
/// ([`attestation::nitro::development::emulated_image_pcrs`]); the other PCRs are zero.
pub fn emulated_pcrs(image_digest: &[u8]) -> BTreeMap<u16, Vec<u8>> {
    let image = attestation::nitro::development::emulated_image_pcrs(image_digest);
    (0..PCR_COUNT).map(|i| (i, image.get(usize::from(i)).map_or_else(|| vec![0; PCR_BYTES], |p| p.to_vec()))).collect()
}

fn build_intermediates(root: &Authority) -> Result<(Vec<Authority>, OffsetDateTime), NsmError> {
    const DAY: u64 = 86_400;
    let regional = authority(
        "regional.emulated.nitro-enclaves",
        Duration::from_secs(20 * DAY),
        IsCa::Ca(BasicConstraints::Constrained(2)),
        ca_usages(),
        Some(root),
    )?;
    let zonal = authority(
        "zonal.emulated.nitro-enclaves",
        Duration::from_secs(6 * DAY),
        IsCa::Ca(BasicConstraints::Constrained(1)),
        ca_usages(),
        Some(&regional),
    )?;
    let instance = authority(
        "instance.emulated.nitro-enclaves",
        Duration::from_secs(DAY),
        IsCa::Ca(BasicConstraints::Constrained(0)),
        vec![KeyUsagePurpose::KeyCertSign],
        Some(&zonal),
    )?;
    let expires = instance.certificate.params().not_after;
    Ok((vec![regional, zonal, instance], expires))
}

impl EmulatedNsm {
    /// A module with a fresh development root, measuring the running binary.
    pub fn new() -> Result<Self, NsmError> {
        Self::with_image_digest(&running_image_digest()?)
    }

    /// A module whose PCRs measure an image with SHA-384 `image_digest`.
    pub fn with_image_digest(image_digest: &[u8]) -> Result<Self, NsmError> {
        let root = root_authority(KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).map_err(emulator_error)?)?;
        let (root_der, root_pem) = (root.certificate.der().to_vec(), root.certificate.pem());
        Self::assemble(root, root_der, root_pem, image_digest)
    }

    /// A module measuring the running binary whose development root persists in `dir`
    /// (`dev-root.key.pem`, mode 0600, and `dev-root.pem`), made there on first use. Processes
    /// sharing `dir` sign with the same root, so documents from a restarted enclave still
    /// verify against the root a verifier was given.
    pub fn with_root_dir(dir: &Path) -> Result<Self, NsmError> {
        let (key_path, cert_path) = (dir.join(ROOT_KEY_FILE), dir.join(ROOT_CERT_FILE));
        let (root, root_der, root_pem) = if key_path.exists() && cert_path.exists() {
            let key_pem = std::fs::read_to_string(&key_path).map_err(emulator_error)?;
            let key = KeyPair::from_pem(&key_pem).map_err(emulator_error)?;
            let root_pem = std::fs::read_to_string(&cert_path).map_err(emulator_error)?;
            let root_der = attestation::nitro::pem_to_der(root_pem.as_bytes()).map_err(emulator_error)?;
            // The stored certificate is what verifiers pin; the re-made one only names the
            // issuer (same subject, same key) when signing intermediates.
            (root_authority(key)?, root_der, root_pem)
        } else {
            std::fs::create_dir_all(dir).map_err(emulator_error)?;
            let root = root_authority(KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).map_err(emulator_error)?)?;
            write_private(&key_path, root.key.serialize_pem().as_bytes())?;
            let (root_der, root_pem) = (root.certificate.der().to_vec(), root.certificate.pem());
            std::fs::write(&cert_path, &root_pem).map_err(emulator_error)?;
            (root, root_der, root_pem)
        };
        Self::assemble(root, root_der, root_pem, &running_image_digest()?)
    }

    fn assemble(root: Authority, root_der: Vec<u8>, root_pem: String, image_digest: &[u8]) -> Result<Self, NsmError> {
        let (intermediates, intermediates_expire) = build_intermediates(&root)?;
        let mut id = [0u8; 8];
        rand::rngs::OsRng.fill_bytes(&mut id);
        Ok(Self {
            root,
            root_der,
            root_pem,
            intermediates,
            intermediates_expire,
            pcrs: emulated_pcrs(image_digest),
            module_id: format!("i-emulated-enc{}", hex::encode(id)),
            indefinite_length_payload: false,
        })
    }

    /// Encodes the payload map with indefinite length (`0xbf .. 0xff`), as some hardware has;
    /// verifiers must accept it and check the signature over exactly these bytes.
    pub fn encode_payload_with_indefinite_length(&mut self, yes: bool) {
        self.indefinite_length_payload = yes;
    }

    /// The development root certificate (DER), which a verifier must trust explicitly.
    pub fn root_der(&self) -> Vec<u8> {
        self.root_der.clone()
    }

    /// The development root certificate (PEM).
    pub fn root_pem(&self) -> String {
        self.root_pem.clone()
    }

    fn document(&mut self, request: &AttestationRequest, at: SystemTime) -> Result<Vec<u8>, NsmError> {
        request.check()?;
        if self.intermediates_expire - now() < LEAF_LIFETIME {
            (self.intermediates, self.intermediates_expire) = build_intermediates(&self.root)?;
        }
        let Some(issuer) = self.intermediates.last() else {
            unreachable!("build_intermediates makes three authorities; qed.")
        };
        let leaf_key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).map_err(emulator_error)?;
        let leaf = params(
            &format!("{}.emulated.nitro-enclaves", self.module_id),
            now() - Duration::from_secs(60),
            LEAF_LIFETIME,
            IsCa::ExplicitNoCa,
            vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::ContentCommitment],
        )
        .signed_by(&leaf_key, &issuer.certificate, &issuer.key)
        .map_err(emulator_error)?;
        let timestamp_ms = at.duration_since(UNIX_EPOCH).map_err(emulator_error)?.as_millis() as u64;
        let optional = |v: &Option<Vec<u8>>| v.clone().map_or(Value::Null, Value::Bytes);
        let mut cabundle = vec![Value::Bytes(self.root_der.clone())];
        cabundle.extend(self.intermediates.iter().map(|a| Value::Bytes(a.certificate.der().to_vec())));
        let payload = Value::Map(vec![
            (Value::Text("module_id".into()), Value::Text(self.module_id.clone())),
            (Value::Text("digest".into()), Value::Text("SHA384".into())),
            (Value::Text("timestamp".into()), Value::Integer(timestamp_ms.into())),
            (
                Value::Text("pcrs".into()),
                Value::Map(
                    self.pcrs.iter().map(|(i, v)| (Value::Integer((*i).into()), Value::Bytes(v.clone()))).collect(),
                ),
            ),
            (Value::Text("certificate".into()), Value::Bytes(leaf.der().to_vec())),
            (Value::Text("cabundle".into()), Value::Array(cabundle)),
            (Value::Text("public_key".into()), optional(&request.public_key)),
            (Value::Text("user_data".into()), optional(&request.user_data)),
            (Value::Text("nonce".into()), optional(&request.nonce)),
        ]);
        let mut payload_bytes = Vec::new();
        match payload {
            Value::Map(entries) if self.indefinite_length_payload => {
                payload_bytes.push(0xbf);
                for (k, v) in entries {
                    ciborium::into_writer(&k, &mut payload_bytes).map_err(emulator_error)?;
                    ciborium::into_writer(&v, &mut payload_bytes).map_err(emulator_error)?;
                }
                payload_bytes.push(0xff);
            }
            other => ciborium::into_writer(&other, &mut payload_bytes).map_err(emulator_error)?,
        }
        let envelope = attestation::nitro::CoseSign1 {
            protected: PROTECTED_ES384.to_vec(),
            payload: payload_bytes,
            signature: [0; 96],
        };
        let signing = SigningKey::from_pkcs8_der(&leaf_key.serialize_der()).map_err(emulator_error)?;
        let signature: Signature = signing.sign(&envelope.signed_bytes());
        let mut out = Vec::new();
        let cose = Value::Array(vec![
            Value::Bytes(envelope.protected),
            Value::Map(vec![]),
            Value::Bytes(envelope.payload),
            Value::Bytes(signature.to_bytes().to_vec()),
        ]);
        ciborium::into_writer(&cose, &mut out).map_err(emulator_error)?;
        Ok(out)
    }
}

impl SecureModule for EmulatedNsm {
    fn attestation_document(&mut self, request: &AttestationRequest) -> Result<Vec<u8>, NsmError> {
        self.document(request, SystemTime::now())
    }

    fn random_bytes(&mut self, len: usize) -> Result<Vec<u8>, NsmError> {
        let mut out = vec![0; len];
        rand::rngs::OsRng.fill_bytes(&mut out);
        Ok(out)
    }

    fn describe_pcr(&mut self, index: u16) -> Result<Vec<u8>, NsmError> {
        self.pcrs.get(&index).cloned().ok_or(NsmError::NoSuchPcr(index))
    }

    fn trust_anchor(&self) -> Result<attestation::nitro::TrustAnchor, NsmError> {
        attestation::nitro::TrustAnchor::development(self.root_der.clone()).map_err(emulator_error)
    }
}
