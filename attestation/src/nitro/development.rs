//! How the emulated NSM measures an enclave program, so a verifier can recompute the PCRs a
//! development bundle carries from the binary it was given, as it would from an EIF on AWS.

use sha2::{Digest, Sha384};

/// PCR0, PCR1 and PCR2 the emulated NSM reports for a program whose SHA-384 is `image_digest`:
/// `PCRn = SHA-384("solvency-enclave/emulated-pcrN" ‖ 0x00 ‖ image_digest)`.
pub fn emulated_image_pcrs(image_digest: &[u8]) -> [[u8; 48]; 3] {
    [0u8, 1, 2].map(|i| {
        let domain = format!("solvency-enclave/emulated-pcr{i}\0");
        Sha384::new().chain_update(domain.as_bytes()).chain_update(image_digest).finalize().into()
    })
}

/// [`emulated_image_pcrs`] of a program's bytes.
pub fn emulated_pcrs_of_program(program: &[u8]) -> [[u8; 48]; 3] {
    emulated_image_pcrs(&Sha384::digest(program))
}
