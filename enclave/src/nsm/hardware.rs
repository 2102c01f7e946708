//! The real Nitro Secure Module, through `/dev/nsm` and `aws-nitro-enclaves-nsm-api`.

use aws_nitro_enclaves_nsm_api::api::{Request, Response};
use aws_nitro_enclaves_nsm_api::driver::{nsm_exit, nsm_init, nsm_process_request};
use serde_bytes::ByteBuf;

use super::{AttestationRequest, NsmError, SecureModule};

/// An open `/dev/nsm`.
#[derive(Debug)]
pub struct HardwareNsm {
    fd: i32,
}

impl HardwareNsm {
    /// Opens the device; fails outside a Nitro Enclave.
    pub fn open() -> Result<Self, NsmError> {
        if !std::path::Path::new("/dev/nsm").exists() {
            return Err(NsmError::Unavailable("/dev/nsm does not exist (not inside a Nitro Enclave)".into()));
        }
        let fd = nsm_init();
        if fd < 0 {
            return Err(NsmError::Unavailable("/dev/nsm could not be opened".into()));
        }
        Ok(Self { fd })
    }

    fn request(&self, request: Request) -> Result<Response, NsmError> {
        match nsm_process_request(self.fd, request) {
            Response::Error(code) => Err(NsmError::Device(format!("{code:?}"))),
            other => Ok(other),
        }
    }
}

impl Drop for HardwareNsm {
    fn drop(&mut self) {
        nsm_exit(self.fd);
    }
}

impl SecureModule for HardwareNsm {
    fn attestation_document(&mut self, request: &AttestationRequest) -> Result<Vec<u8>, NsmError> {
        request.check()?;
        let bytes = |v: &Option<Vec<u8>>| v.clone().map(ByteBuf::from);
        let response = self.request(Request::Attestation {
            user_data: bytes(&request.user_data),
            nonce: bytes(&request.nonce),
            public_key: bytes(&request.public_key),
        })?;
        match response {
            Response::Attestation { document } => Ok(document),
            _ => Err(NsmError::UnexpectedResponse),
        }
    }

    fn random_bytes(&mut self, len: usize) -> Result<Vec<u8>, NsmError> {
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            match self.request(Request::GetRandom)? {
                Response::GetRandom { random } if !random.is_empty() => out.extend_from_slice(&random),
                _ => return Err(NsmError::UnexpectedResponse),
            }
        }
        out.truncate(len);
        Ok(out)
    }

    fn describe_pcr(&mut self, index: u16) -> Result<Vec<u8>, NsmError> {
        match self.request(Request::DescribePCR { index })? {
            Response::DescribePCR { data, .. } => Ok(data),
            _ => Err(NsmError::UnexpectedResponse),
        }
    }

    fn trust_anchor(&self) -> Result<attestation::nitro::TrustAnchor, NsmError> {
        attestation::nitro::TrustAnchor::aws_builtin().map_err(|e| NsmError::Device(e.to_string()))
    }
}
