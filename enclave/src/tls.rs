//! TLS from inside the enclave to the database, chain endpoints and the AWS API, ending in this
//! process: rustls (ring provider) with a certificate verifier that accepts only the configured
//! pin — CAs (with the host name checked: a configured CA, a built-in bundle such as the AWS RDS
//! roots, or the Mozilla roots compiled into the image) or the exact server certificate's
//! SHA-256 — and remembers the certificate the server presented, so a record can name it.
//! Everything else about the handshake (signatures, protocol versions) is rustls's own checking.

use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

/// How a server's certificate is pinned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerPin {
    /// Certificates (DER) of the CAs the server's chain must end at; the host name is checked.
    Ca(Vec<Vec<u8>>),
    /// SHA-256 of the server certificate's DER: that certificate and no other.
    Sha256([u8; 32]),
    /// The Mozilla root programme's CAs, compiled into the image (`webpki-roots`); the host name
    /// is checked.
    WebPki,
}

/// The certificates of a PEM file, DER-encoded.
pub fn pem_certificates(pem: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem).map(|c| c.map(|c| c.to_vec()).map_err(|e| e.to_string())).collect()
}

/// What the verifier saw of the server during the handshake.
#[derive(Clone, Debug, Default)]
pub struct PresentedCertificate {
    inner: Arc<Mutex<Seen>>,
}

#[derive(Debug, Default)]
struct Seen {
    der: Option<Vec<u8>>,
    refusal: Option<String>,
}

impl PresentedCertificate {
    /// SHA-256 of the certificate the server presented, once the handshake got that far.
    pub fn sha256(&self) -> Option<[u8; 32]> {
        self.lock().der.as_ref().map(|der| Sha256::digest(der).into())
    }

    /// Why the certificate was refused, if it was.
    pub fn refusal(&self) -> Option<String> {
        self.lock().refusal.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        // A panic while holding this lock leaves plain data behind; it is still valid.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[derive(Debug)]
enum Check {
    Ca(Arc<WebPkiServerVerifier>),
    Sha256([u8; 32]),
}

#[derive(Debug)]
struct PinnedVerifier {
    check: Check,
    provider: Arc<CryptoProvider>,
    presented: PresentedCertificate,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let result = match &self.check {
            Check::Ca(webpki) => webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now),
            // An exact pin names one certificate: its chain, name and dates add nothing.
            Check::Sha256(expected) => {
                let actual: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
                if &actual == expected {
                    Ok(ServerCertVerified::assertion())
                } else {
                    Err(rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure))
                }
            }
        };
        let mut seen = self.presented.lock();
        seen.der = Some(end_entity.to_vec());
        if let Err(e) = &result {
            seen.refusal = Some(match &self.check {
                Check::Ca(_) => format!("the server certificate does not verify against the pinned CAs: {e}"),
                Check::Sha256(expected) => format!(
                    "the server certificate's SHA-256 is {}, not the pinned {}",
                    hex::encode(Sha256::digest(end_entity.as_ref())),
                    hex::encode(expected)
                ),
            });
        }
        result
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// A TLS client configuration trusting only `pin`, and the record of what the server presents.
pub fn client_config(pin: &ServerPin) -> Result<(rustls::ClientConfig, PresentedCertificate), rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let check = match pin {
        ServerPin::Sha256(expected) => Check::Sha256(*expected),
        ServerPin::Ca(_) | ServerPin::WebPki => {
            let mut roots = rustls::RootCertStore::empty();
            match pin {
                ServerPin::Ca(cas) => {
                    for der in cas {
                        roots.add(CertificateDer::from(der.clone()))?;
                    }
                }
                _ => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            }
            let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))?;
            Check::Ca(webpki)
        }
    };
    let presented = PresentedCertificate::default();
    let verifier = PinnedVerifier { check, provider: provider.clone(), presented: presented.clone() };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok((config, presented))
}
