//! The NSM backends: emulated documents go through exactly the verifier real ones do, verify
//! only under the development root, and carry what was asked; the hardware backend fails
//! cleanly where there is no device.

use std::time::{SystemTime, UNIX_EPOCH};

use attestation::nitro::{verify, AttestationDocument, ChainError, CoseSign1, NitroError, Policy, TrustAnchor};
use enclave::nsm::emulated::{emulated_pcrs, EmulatedNsm};
use enclave::nsm::hardware::HardwareNsm;
use enclave::nsm::{AttestationRequest, NsmError, SecureModule};

const AWS_ROOT: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../attestation/tests/data/nitro/AWS_NitroEnclaves_Root-G1.pem");

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

fn request() -> AttestationRequest {
    AttestationRequest { user_data: Some(vec![1; 48]), nonce: Some(vec![2; 32]), public_key: Some(vec![3; 97]) }
}

#[test]
fn emulated_documents_verify_under_the_development_root_with_what_was_asked() {
    let image = [9u8; 48];
    let mut nsm = EmulatedNsm::with_image_digest(&image).unwrap();
    let doc = nsm.attestation_document(&request()).unwrap();
    let dev = TrustAnchor::development(nsm.root_der()).unwrap();
    let expected: std::collections::BTreeMap<u8, Vec<u8>> =
        emulated_pcrs(&image).into_iter().map(|(i, v)| (i as u8, v)).collect();
    let policy = Policy {
        expected_pcrs: expected.clone(),
        expected_user_data: Some(vec![1; 48]),
        expected_nonce: Some(vec![2; 32]),
        max_age_ms: Some(60_000),
        ..Policy::default()
    };
    let verified = verify(&doc, &dev, now_ms(), &policy).unwrap();
    assert!(!verified.root_is_aws());
    let d = verified.document();
    assert_eq!(d.public_key.as_deref(), Some(&[3u8; 97][..]));
    assert!(d.module_id.starts_with("i-emulated-enc"));
    assert_eq!(d.cabundle.len(), 4, "root, regional, zonal, instance");
    assert!((0..3).all(|i| d.pcrs[&i].iter().any(|b| *b != 0)), "PCR0-2 measure the binary, never debug zeros");
    assert_eq!(nsm.describe_pcr(0).unwrap(), expected[&0]);
    assert_eq!(nsm.describe_pcr(99), Err(NsmError::NoSuchPcr(99)));

    // Another binary gives other PCRs.
    let other = EmulatedNsm::with_image_digest(&[8u8; 48]).unwrap();
    assert_ne!(emulated_pcrs(&[8u8; 48])[&0], expected[&0]);
    drop(other);
}

#[test]
fn emulated_documents_are_refused_under_the_aws_root() {
    let mut nsm = EmulatedNsm::with_image_digest(&[1u8; 48]).unwrap();
    let doc = nsm.attestation_document(&AttestationRequest::default()).unwrap();
    let aws = TrustAnchor::aws_from_pem(&std::fs::read(AWS_ROOT).unwrap()).unwrap();
    assert_eq!(
        verify(&doc, &aws, now_ms(), &Policy::default()).unwrap_err(),
        NitroError::Chain(ChainError::UntrustedRoot)
    );
    // Not even a development root other than this module's own.
    let stranger = EmulatedNsm::with_image_digest(&[1u8; 48]).unwrap();
    let wrong = TrustAnchor::development(stranger.root_der()).unwrap();
    assert_eq!(verify(&doc, &wrong, now_ms(), &Policy::default()).unwrap_err().step(), "chain");
}

#[test]
fn emulated_documents_have_the_aws_shape_and_a_short_lived_rotating_leaf() {
    let mut nsm = EmulatedNsm::with_image_digest(&[1u8; 48]).unwrap();
    let first = nsm.attestation_document(&AttestationRequest::default()).unwrap();
    let second = nsm.attestation_document(&AttestationRequest::default()).unwrap();
    assert_eq!(&first[..6], &[0x84, 0x44, 0xa1, 0x01, 0x38, 0x22], "untagged COSE_Sign1, ES384 header");
    let leaf =
        |bytes: &[u8]| AttestationDocument::decode(&CoseSign1::decode(bytes).unwrap().payload).unwrap().certificate;
    assert_ne!(leaf(&first), leaf(&second), "a fresh leaf for every document");
    let d = AttestationDocument::decode(&CoseSign1::decode(&first).unwrap().payload).unwrap();
    assert_eq!((d.user_data, d.nonce, d.public_key), (None, None, None));
    let dev = TrustAnchor::development(nsm.root_der()).unwrap();
    let four_hours_later = now_ms() + 4 * 3_600_000;
    let err = verify(&first, &dev, four_hours_later, &Policy::default()).unwrap_err();
    assert!(matches!(err, NitroError::Chain(ChainError::Expired { ref position, .. }) if position == "leaf"), "{err}");
}

#[test]
fn indefinite_length_payloads_verify_over_the_bytes_as_received() {
    let mut nsm = EmulatedNsm::with_image_digest(&[1u8; 48]).unwrap();
    nsm.encode_payload_with_indefinite_length(true);
    let doc = nsm.attestation_document(&request()).unwrap();
    let payload = CoseSign1::decode(&doc).unwrap().payload;
    assert_eq!((payload[0], payload[payload.len() - 1]), (0xbf, 0xff));
    let dev = TrustAnchor::development(nsm.root_der()).unwrap();
    let verified = verify(&doc, &dev, now_ms(), &Policy::default()).unwrap();
    assert_eq!(verified.document().nonce.as_deref(), Some(&[2u8; 32][..]));
}

#[test]
fn oversized_requests_are_refused_before_signing() {
    let mut nsm = EmulatedNsm::with_image_digest(&[1u8; 48]).unwrap();
    let big = AttestationRequest { user_data: Some(vec![0; 513]), ..AttestationRequest::default() };
    assert_eq!(
        nsm.attestation_document(&big).unwrap_err(),
        NsmError::TooLarge { field: "user_data", size: 513, limit: 512 }
    );
    assert_eq!(nsm.random_bytes(40).unwrap().len(), 40);
}

#[test]
fn the_hardware_backend_fails_cleanly_without_a_device() {
    if std::path::Path::new("/dev/nsm").exists() {
        return; // inside a real enclave: nothing to show here
    }
    assert!(matches!(HardwareNsm::open(), Err(NsmError::Unavailable(_))));
}
