//! The certificate chain from the pinned root through `cabundle` to the leaf that signs the
//! document: P-384 keys and ecdsa-with-SHA384 signatures only, names chained, CA flags, key
//! usages and path lengths enforced, every certificate valid at the caller's time.

use p384::ecdsa::signature::Verifier;
use p384::ecdsa::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};
use x509_parser::certificate::X509Certificate;
use x509_parser::oid_registry::{OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_SIG_ECDSA_WITH_SHA384};

use super::document::AttestationDocument;
use super::error::ChainError;

/// SHA-256 of the DER of the AWS Nitro Enclaves root certificate (Root-G1).
pub const AWS_NITRO_ROOT_SHA256: &str = "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b";

/// The root a chain must end at. Only the pinned AWS root is trusted unless the caller
/// explicitly builds a development anchor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustAnchor {
    der: Vec<u8>,
    is_aws: bool,
}

fn parse(der: &[u8]) -> Option<X509Certificate<'_>> {
    match x509_parser::parse_x509_certificate(der) {
        Ok(([], cert)) => Some(cert),
        _ => None,
    }
}

impl TrustAnchor {
    /// The AWS root from its DER; refused unless its SHA-256 is [`AWS_NITRO_ROOT_SHA256`].
    pub fn aws(der: Vec<u8>) -> Result<Self, ChainError> {
        let actual = hex::encode(Sha256::digest(&der));
        if actual != AWS_NITRO_ROOT_SHA256 {
            return Err(ChainError::NotTheAwsRoot { expected: AWS_NITRO_ROOT_SHA256.into(), actual });
        }
        check_self_signed(&der)?;
        Ok(Self { der, is_aws: true })
    }

    /// The AWS Nitro Enclaves root (G1) shipped with this crate, checked against the pinned
    /// fingerprint like any other.
    pub fn aws_builtin() -> Result<Self, ChainError> {
        Self::aws_from_pem(include_bytes!("aws-nitro-enclaves-root-g1.pem"))
    }

    /// The AWS root from a PEM file's bytes.
    pub fn aws_from_pem(pem: &[u8]) -> Result<Self, ChainError> {
        Self::aws(pem_to_der(pem)?)
    }

    /// A development root (the emulated NSM's). Documents that chain to it are never reported
    /// as AWS-attested.
    pub fn development(der: Vec<u8>) -> Result<Self, ChainError> {
        check_self_signed(&der)?;
        Ok(Self { der, is_aws: false })
    }

    /// Whether this is the pinned AWS root.
    pub fn is_aws(&self) -> bool {
        self.is_aws
    }

    /// The root's DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }
}

/// A trust anchor must parse, carry a P-384 key and be signed by it. Checked once here, so
/// chain verification (which runs on every document) starts below the root.
fn check_self_signed(der: &[u8]) -> Result<(), ChainError> {
    let cert = parse(der).ok_or(ChainError::BadAnchor)?;
    let key = p384_key(&cert, "root").map_err(|_| ChainError::BadAnchor)?;
    check_signed_by(&cert, &key, "root").map_err(|_| ChainError::BadAnchor)
}

/// The DER inside a PEM `CERTIFICATE` block.
pub fn pem_to_der(pem: &[u8]) -> Result<Vec<u8>, ChainError> {
    match x509_parser::pem::parse_x509_pem(pem) {
        Ok((_, block)) if block.label == "CERTIFICATE" => Ok(block.contents),
        _ => Err(ChainError::BadAnchor),
    }
}

fn p384_key(cert: &X509Certificate<'_>, position: &str) -> Result<VerifyingKey, ChainError> {
    let spki = cert.public_key();
    let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok());
    if spki.algorithm.algorithm != OID_KEY_TYPE_EC_PUBLIC_KEY || curve != Some(OID_NIST_EC_P384) {
        return Err(ChainError::KeyType { position: position.into() });
    }
    VerifyingKey::from_sec1_bytes(&spki.subject_public_key.data)
        .map_err(|_| ChainError::KeyType { position: position.into() })
}

fn check_signed_by(cert: &X509Certificate<'_>, issuer: &VerifyingKey, position: &str) -> Result<(), ChainError> {
    let bad = || ChainError::BadSignature { position: position.into() };
    let signature = Signature::from_der(&cert.signature_value.data).map_err(|_| bad())?;
    issuer.verify(cert.tbs_certificate.as_ref(), &signature).map_err(|_| bad())
}

/// Checks the chain root → `cabundle[1..]` → leaf at `at_ms`; returns the leaf's key.
pub(super) fn verify_chain(
    document: &AttestationDocument,
    anchor: &TrustAnchor,
    at_ms: u64,
) -> Result<VerifyingKey, ChainError> {
    // The document's own root is never trusted: it must be byte-for-byte the pinned one.
    if document.cabundle.first().map(Vec::as_slice) != Some(anchor.der.as_slice()) {
        return Err(ChainError::UntrustedRoot);
    }
    let mut ders: Vec<(String, &[u8])> = vec![("root".into(), anchor.der.as_slice())];
    ders.extend(document.cabundle.iter().enumerate().skip(1).map(|(i, c)| (format!("cabundle[{i}]"), c.as_slice())));
    ders.push(("leaf".into(), document.certificate.as_slice()));

    let certs = ders
        .iter()
        .map(|(position, der)| parse(der).ok_or_else(|| ChainError::Unparsable { position: position.clone() }))
        .collect::<Result<Vec<_>, _>>()?;
    let cas = certs.len() - 1;
    let mut issuer_key: Option<VerifyingKey> = None;
    for (i, (cert, (position, _))) in certs.iter().zip(&ders).enumerate() {
        if cert.signature_algorithm.algorithm != OID_SIG_ECDSA_WITH_SHA384 {
            return Err(ChainError::Algorithm { position: position.clone() });
        }
        let validity = cert.validity();
        let not_before_ms = i128::from(validity.not_before.timestamp()) * 1000;
        let not_after_ms = i128::from(validity.not_after.timestamp()) * 1000;
        if i128::from(at_ms) < not_before_ms || i128::from(at_ms) > not_after_ms {
            return Err(ChainError::Expired { position: position.clone(), at_ms, not_before_ms, not_after_ms });
        }
        let key = p384_key(cert, position)?;
        match (i, &issuer_key) {
            // The anchor's self-signature was checked when it was built.
            (0, _) => {}
            (_, Some(parent)) => {
                if cert.issuer().as_raw() != certs[i - 1].subject().as_raw() {
                    return Err(ChainError::IssuerMismatch { position: position.clone() });
                }
                check_signed_by(cert, parent, position)?;
            }
            (_, None) => unreachable!("every certificate before this one set the issuer key; qed."),
        }
        // A malformed or duplicated extension makes the certificate unusable, not "absent".
        let unparsable = || ChainError::Unparsable { position: position.clone() };
        let constraints =
            cert.basic_constraints().map_err(|_| unparsable())?.map(|b| (b.value.ca, b.value.path_len_constraint));
        let usage =
            cert.key_usage().map_err(|_| unparsable())?.map(|u| (u.value.key_cert_sign(), u.value.digital_signature()));
        let is_ca = constraints.is_some_and(|(ca, _)| ca);
        if i < cas {
            if !is_ca || !usage.is_some_and(|(cert_sign, _)| cert_sign) {
                return Err(ChainError::NotACa { position: position.clone() });
            }
            // Intermediate CAs below this one must not exceed its path length constraint.
            let below = (cas - 1 - i) as u32;
            if constraints.and_then(|(_, limit)| limit).is_some_and(|limit| below > limit) {
                return Err(ChainError::PathLength { position: position.clone() });
            }
        } else if is_ca || usage.is_some_and(|(_, signs)| !signs) {
            return Err(ChainError::BadLeaf);
        }
        issuer_key = Some(key);
    }
    issuer_key.ok_or(ChainError::BadLeaf)
}
