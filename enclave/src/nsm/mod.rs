//! The Nitro Secure Module as the enclave uses it: attestation documents (with user data, nonce
//! and public key), random bytes and PCR values. Two backends, chosen explicitly: the hardware
//! device `/dev/nsm`, and (with the `emulated-nsm` feature) a software emulator whose documents
//! verify only against its own development root.

#[cfg(feature = "emulated-nsm")]
pub mod emulated;
pub mod hardware;

use attestation::nitro::document_limits::{MAX_PUBLIC_KEY_BYTES, MAX_USER_DATA_BYTES};

/// What the enclave asks to have attested.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttestationRequest {
    /// Application data bound into the document (a manifest hash).
    pub user_data: Option<Vec<u8>>,
    /// The verifier's challenge.
    pub nonce: Option<Vec<u8>>,
    /// A public key the enclave holds the private half of.
    pub public_key: Option<Vec<u8>>,
}

impl AttestationRequest {
    /// Refuses fields larger than the NSM accepts.
    pub fn check(&self) -> Result<(), NsmError> {
        let fields = [
            ("user_data", &self.user_data, MAX_USER_DATA_BYTES),
            ("nonce", &self.nonce, MAX_USER_DATA_BYTES),
            ("public_key", &self.public_key, MAX_PUBLIC_KEY_BYTES),
        ];
        for (field, value, limit) in fields {
            if let Some(v) = value.as_ref().filter(|v| v.len() > limit) {
                return Err(NsmError::TooLarge { field, size: v.len(), limit });
            }
        }
        Ok(())
    }
}

/// Why the NSM could not serve a request.
#[allow(missing_docs)] // fields are named for what they hold
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NsmError {
    /// The device could not be opened (not inside a Nitro Enclave?).
    #[error("the NSM device is unavailable: {0}")]
    Unavailable(String),
    /// The device answered with an error code.
    #[error("the NSM refused the request: {0}")]
    Device(String),
    /// The device answered with a response of another kind.
    #[error("the NSM answered with an unexpected response")]
    UnexpectedResponse,
    /// A request field above the NSM's limit.
    #[error("{field} is {size} bytes; the NSM accepts at most {limit}")]
    TooLarge { field: &'static str, size: usize, limit: usize },
    /// A PCR index the module does not have.
    #[error("PCR {0} does not exist")]
    NoSuchPcr(u16),
    /// The emulator failed (certificate generation, signing).
    #[error("emulated NSM: {0}")]
    Emulator(String),
}

/// What the enclave needs from a Nitro Secure Module.
pub trait SecureModule: Send {
    /// A COSE_Sign1 attestation document binding `request`.
    fn attestation_document(&mut self, request: &AttestationRequest) -> Result<Vec<u8>, NsmError>;
    /// `len` random bytes from the module's entropy source.
    fn random_bytes(&mut self, len: usize) -> Result<Vec<u8>, NsmError>;
    /// The current value of PCR `index`.
    fn describe_pcr(&mut self, index: u16) -> Result<Vec<u8>, NsmError>;
    /// The root this module's documents chain to: the pinned AWS root for the hardware, the
    /// development root for the emulator. The enclave checks documents from earlier rounds
    /// (a setup attestation) against it.
    fn trust_anchor(&self) -> Result<attestation::nitro::TrustAnchor, NsmError>;
}

/// Which module to use; always chosen explicitly in configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NsmBackend {
    /// `/dev/nsm` inside a Nitro Enclave.
    Hardware,
    /// The software emulator (development and tests only), with a fresh development root, or
    /// with the one persisted in the given directory.
    #[cfg(feature = "emulated-nsm")]
    Emulated(Option<std::path::PathBuf>),
}

/// Opens the chosen module. The emulator logs a loud warning.
pub fn open(backend: NsmBackend) -> Result<Box<dyn SecureModule>, NsmError> {
    match backend {
        NsmBackend::Hardware => Ok(Box::new(hardware::HardwareNsm::open()?)),
        #[cfg(feature = "emulated-nsm")]
        NsmBackend::Emulated(root_dir) => {
            tracing::warn!(
                "USING THE EMULATED NSM: attestation documents are signed by a development root and are NOT AWS attestations"
            );
            Ok(Box::new(match root_dir {
                Some(dir) => emulated::EmulatedNsm::with_root_dir(&dir)?,
                None => emulated::EmulatedNsm::new()?,
            }))
        }
    }
}
