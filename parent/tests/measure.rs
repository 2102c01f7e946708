//! `solvency-parent measure`: PCRs of enclave image files built here from known sections,
//! checked against the PCR formula of the image format's documentation (each PCR is a TPM-style
//! extend of zeros by the SHA-384 of its sections: `SHA-384(0^48 ‖ SHA-384(sections))`), against
//! images and measurements made by `aws-nitro-enclaves-image-format`'s own builder (what
//! nitro-cli runs), and against damaged images.

use std::path::Path;

use aws_nitro_enclaves_image_format::defs::{EifBuildInfo, EifIdentityInfo};
use aws_nitro_enclaves_image_format::utils::eif_reader::EifReader;
use aws_nitro_enclaves_image_format::utils::eif_signer::SignKey;
use aws_nitro_enclaves_image_format::utils::{EifBuilder, SignKeyData};
use crc::{Crc, CRC_32_ISO_HDLC};
use parent::measure::{measure, measure_file, write_policy_pcrs, MeasureError, Measurements, Pcr};
use sha2::{Digest, Sha384};

const KERNEL: u16 = 1;
const CMDLINE: u16 = 2;
const RAMDISK: u16 = 3;
const SIGNATURE: u16 = 4;
const METADATA: u16 = 5;

/// The documented PCR: extend 48 zero bytes by the digest of the measured bytes.
fn extend(parts: &[&[u8]]) -> Pcr {
    let mut inner = Sha384::new();
    for part in parts {
        inner.update(part);
    }
    let mut outer = Sha384::new();
    outer.update([0u8; 48]);
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// An EIF written field by field from the format's definition: the 548-byte big-endian header
/// (magic, version, flags, default memory and CPUs, reserved, section count, 32 offsets, 32
/// sizes, unused, CRC-32 of everything else), then each section's 12-byte header and its bytes.
fn eif(version: u16, sections: &[(u16, &[u8])]) -> Vec<u8> {
    let mut offsets = [0u64; 32];
    let mut sizes = [0u64; 32];
    let mut at = 548u64;
    for (i, (_, data)) in sections.iter().enumerate() {
        offsets[i] = at;
        sizes[i] = data.len() as u64;
        at += 12 + data.len() as u64;
    }
    let mut header = Vec::with_capacity(548);
    header.extend_from_slice(b".eif");
    header.extend_from_slice(&version.to_be_bytes());
    header.extend_from_slice(&0u16.to_be_bytes());
    header.extend_from_slice(&(512u64 << 20).to_be_bytes());
    header.extend_from_slice(&2u64.to_be_bytes());
    header.extend_from_slice(&0u16.to_be_bytes());
    header.extend_from_slice(&(sections.len() as u16).to_be_bytes());
    offsets.iter().for_each(|o| header.extend_from_slice(&o.to_be_bytes()));
    sizes.iter().for_each(|s| header.extend_from_slice(&s.to_be_bytes()));
    header.extend_from_slice(&0u32.to_be_bytes());
    let mut body = Vec::new();
    for (kind, data) in sections {
        body.extend_from_slice(&kind.to_be_bytes());
        body.extend_from_slice(&0u16.to_be_bytes());
        body.extend_from_slice(&(data.len() as u64).to_be_bytes());
        body.extend_from_slice(data);
    }
    with_crc(header, body)
}

fn with_crc(mut header: Vec<u8>, body: Vec<u8>) -> Vec<u8> {
    header.truncate(544);
    let crc = Crc::<u32>::new(&CRC_32_ISO_HDLC);
    let mut digest = crc.digest();
    digest.update(&header);
    digest.update(&body);
    header.extend_from_slice(&digest.finalize().to_be_bytes());
    header.extend_from_slice(&body);
    header
}

/// Recomputes the CRC after a test changed the body on purpose.
fn recrc(image: &[u8]) -> Vec<u8> {
    with_crc(image[..548].to_vec(), image[548..].to_vec())
}

fn measured(image: &[u8]) -> Result<Measurements, MeasureError> {
    measure(image, image.len() as u64)
}

const K: &[u8] = b"a kernel image, bzImage in real life";
const C: &[u8] = b"reboot=k panic=30 pci=off nomodules console=ttyS0";
const BOOT: &[u8] = b"the bootstrap ramdisk: init and the NSM driver";
const APP: &[u8] = b"the application ramdisk: the docker image's root file system";
const APP2: &[u8] = b"a second application ramdisk";
/// Where the header's section count, offsets and sizes are.
const COUNT: usize = 26;
const OFFSETS: usize = 28;
const SIZES: usize = OFFSETS + 8 * 32;

const META: &[u8] = br#"{"ImageName":"solvency-enclave","BuildTime":"whenever"}"#;

#[test]
fn pcrs_follow_the_documented_formula() {
    let image =
        eif(4, &[(KERNEL, K), (CMDLINE, C), (METADATA, META), (RAMDISK, BOOT), (RAMDISK, APP), (RAMDISK, APP2)]);
    let m = measured(&image).unwrap();
    assert_eq!(m.version, 4);
    assert_eq!(m.pcr0, extend(&[K, C, BOOT, APP, APP2]), "PCR0: kernel, command line, every ramdisk");
    assert_eq!(m.pcr1, extend(&[K, C, BOOT]), "PCR1: kernel, command line, bootstrap ramdisk");
    assert_eq!(m.pcr2, extend(&[APP, APP2]), "PCR2: the application ramdisks");
    assert_eq!(m.pcr8, None, "an unsigned image has no PCR8");
    // Metadata is not measured: rebuilding at another time gives the same PCRs.
    let other_time =
        eif(4, &[(KERNEL, K), (CMDLINE, C), (METADATA, b"{}"), (RAMDISK, BOOT), (RAMDISK, APP), (RAMDISK, APP2)]);
    assert_eq!(measured(&other_time).unwrap().pcrs(), m.pcrs());
    // One byte of the application changes PCR0 and PCR2 and leaves PCR1.
    let changed =
        eif(4, &[(KERNEL, K), (CMDLINE, C), (METADATA, META), (RAMDISK, BOOT), (RAMDISK, b"X"), (RAMDISK, APP2)]);
    let c = measured(&changed).unwrap();
    assert_ne!(c.pcr0, m.pcr0);
    assert_eq!(c.pcr1, m.pcr1);
    assert_ne!(c.pcr2, m.pcr2);
    // A version 3 image (no metadata section) measures the same way.
    let v3 = eif(3, &[(KERNEL, K), (CMDLINE, C), (RAMDISK, BOOT), (RAMDISK, APP), (RAMDISK, APP2)]);
    assert_eq!(measured(&v3).unwrap().pcrs(), m.pcrs());
}

#[test]
fn large_sections_stream_through_the_hashers() {
    // Larger than the reader's chunk, and not a multiple of it.
    let app: Vec<u8> = (0..300_001u32).map(|i| (i % 251) as u8).collect();
    let image = eif(4, &[(KERNEL, K), (CMDLINE, C), (RAMDISK, BOOT), (RAMDISK, &app)]);
    let m = measured(&image).unwrap();
    assert_eq!(m.pcr0, extend(&[K, C, BOOT, &app]));
    assert_eq!(m.pcr2, extend(&[&app]));
}

#[test]
fn damaged_images_are_refused_by_name() {
    let good = eif(4, &[(KERNEL, K), (CMDLINE, C), (METADATA, META), (RAMDISK, BOOT), (RAMDISK, APP)]);
    measured(&good).unwrap();

    let mut magic = good.clone();
    magic[0] = b'x';
    assert!(matches!(measured(&magic), Err(MeasureError::NotEif(_))));

    let mut version = good.clone();
    version[4..6].copy_from_slice(&9u16.to_be_bytes());
    assert!(matches!(measured(&recrc(&version)), Err(MeasureError::UnsupportedVersion(9))));

    // Cut anywhere: in the header, in a section header, in a section.
    for cut in [0, 100, 547, 548, 555, 600, good.len() - 1] {
        let r = measured(&good[..cut]);
        assert!(
            matches!(r, Err(MeasureError::Truncated { .. }) | Err(MeasureError::HeaderMismatch(_))),
            "cut at {cut}: {r:?}"
        );
    }

    let mut trailing = good.clone();
    trailing.extend_from_slice(&[0; 5]);
    assert!(matches!(measured(&trailing), Err(MeasureError::Truncated { .. })));

    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert!(matches!(measured(&flipped), Err(MeasureError::Crc { .. })));

    // A section type no image format version defines.
    let unknown = eif(4, &[(KERNEL, K), (CMDLINE, C), (9, b"?"), (RAMDISK, BOOT), (RAMDISK, APP)]);
    assert!(matches!(measured(&unknown), Err(MeasureError::BadSection { index: 2, .. })));
    let invalid = eif(4, &[(KERNEL, K), (CMDLINE, C), (0, b"?"), (RAMDISK, BOOT), (RAMDISK, APP)]);
    assert!(matches!(measured(&invalid), Err(MeasureError::BadSection { index: 2, .. })));

    // The header's section table must describe the file: a loader reads by the table.
    let mut offset = good.clone();
    offset[OFFSETS + 8 * 4..OFFSETS + 8 * 5].copy_from_slice(&1u64.to_be_bytes());
    assert!(matches!(measured(&recrc(&offset)), Err(MeasureError::HeaderMismatch(_))));
    let mut size = good.clone();
    size[SIZES..SIZES + 8].copy_from_slice(&(K.len() as u64 + 1).to_be_bytes());
    assert!(matches!(measured(&recrc(&size)), Err(MeasureError::HeaderMismatch(_))));
    let mut count = good.clone();
    count[COUNT..COUNT + 2].copy_from_slice(&4u16.to_be_bytes());
    assert!(matches!(measured(&recrc(&count)), Err(MeasureError::HeaderMismatch(_))));

    // Layouts no bootable image has.
    let no_app = eif(4, &[(KERNEL, K), (CMDLINE, C), (RAMDISK, BOOT)]);
    assert!(matches!(measured(&no_app), Err(MeasureError::Layout(_))));
    let two_kernels = eif(4, &[(KERNEL, K), (KERNEL, K), (CMDLINE, C), (RAMDISK, BOOT), (RAMDISK, APP)]);
    assert!(matches!(measured(&two_kernels), Err(MeasureError::Layout(_))));
    let garbage_signature =
        eif(4, &[(KERNEL, K), (CMDLINE, C), (RAMDISK, BOOT), (RAMDISK, APP), (SIGNATURE, b"\xff\x00")]);
    assert!(matches!(measured(&garbage_signature), Err(MeasureError::Signature(_))));
    let empty_signature = eif(4, &[(KERNEL, K), (CMDLINE, C), (RAMDISK, BOOT), (RAMDISK, APP), (SIGNATURE, b"\x80")]);
    assert!(matches!(measured(&empty_signature), Err(MeasureError::Signature(_))));
}

/// A P-384 signing key and its self-signed certificate, as PEM files (what nitro-cli's
/// `--private-key` and `--signing-certificate` take).
fn signing_key(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, Vec<u8>) {
    signing_key_on(dir, &rcgen::PKCS_ECDSA_P384_SHA384)
}

fn signing_key_on(
    dir: &Path,
    algorithm: &'static rcgen::SignatureAlgorithm,
) -> (std::path::PathBuf, std::path::PathBuf, Vec<u8>) {
    let key = rcgen::KeyPair::generate_for(algorithm).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["enclave-signer.example".into()]).unwrap().self_signed(&key).unwrap();
    let (key_path, cert_path) = (dir.join("key.pem"), dir.join("cert.pem"));
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    std::fs::write(&cert_path, cert.pem()).unwrap();
    (key_path, cert_path, cert.der().to_vec())
}

/// An image built by the image-format crate's builder (nitro-cli's), with its own measurements.
fn built(
    dir: &Path,
    name: &str,
    app: &[u8],
    signer: Option<(&Path, &Path)>,
) -> (std::path::PathBuf, std::collections::BTreeMap<String, String>) {
    for (file, bytes) in [("kernel", K), ("boot", BOOT)] {
        std::fs::write(dir.join(file), bytes).unwrap();
    }
    std::fs::write(dir.join(format!("{name}.app")), app).unwrap();
    let sign_info = signer.map(|(key, cert)| SignKeyData {
        cert: std::fs::read(cert).unwrap(),
        key: SignKey::LocalPrivateKey(std::fs::read(key).unwrap()),
    });
    let info = EifIdentityInfo {
        img_name: name.into(),
        img_version: "test".into(),
        build_info: EifBuildInfo {
            build_time: "2026-11-26T00:00:00Z".into(),
            build_tool: "test".into(),
            build_tool_version: "0".into(),
            img_os: "linux".into(),
            img_kernel: "test".into(),
        },
        docker_info: serde_json::json!({}),
        custom_info: serde_json::json!({}),
    };
    let mut builder =
        EifBuilder::new(&dir.join("kernel"), String::from_utf8(C.to_vec()).unwrap(), sign_info, Sha384::new(), 0, info);
    builder.add_ramdisk(&dir.join("boot"));
    builder.add_ramdisk(&dir.join(format!("{name}.app")));
    let path = dir.join(format!("{name}.eif"));
    let mut file = std::fs::File::create(&path).unwrap();
    let measurements = builder.write_to(&mut file);
    (path, measurements)
}

#[test]
fn images_built_like_nitro_cli_measure_as_it_does() {
    let dir = tempfile::tempdir().unwrap();
    let (unsigned, reported) = built(dir.path(), "plain", APP, None);
    let m = measure_file(&unsigned).unwrap();
    let mut expected = reported.clone();
    expected.remove("HashAlgorithm");
    assert_eq!(m.pcrs_by_name(), expected, "the builder's own measurements");
    assert_eq!(m.pcr0, extend(&[K, C, BOOT, APP]));
    let mut described =
        EifReader::from_eif(unsigned.to_string_lossy().into_owned()).unwrap().get_measurements().unwrap();
    described.remove("HashAlgorithm");
    assert_eq!(m.pcrs_by_name(), described, "what describe-eif reports");

    let (key, cert, cert_der) = signing_key(dir.path());
    let (signed, reported) = built(dir.path(), "signed", APP, Some((&key, &cert)));
    let s = measure_file(&signed).unwrap();
    let mut expected = reported.clone();
    expected.remove("HashAlgorithm");
    assert_eq!(s.pcrs_by_name(), expected);
    assert_eq!(s.pcr8, Some(extend(&[&cert_der])), "PCR8: the signing certificate (DER)");
    let signer = s.signer.as_ref().unwrap();
    assert_eq!(signer.subject, "CN=rcgen self signed cert", "{signer:?}");
    assert_eq!((s.pcr0, s.pcr1, s.pcr2), (m.pcr0, m.pcr1, m.pcr2), "signing changes no other PCR");
}

#[test]
fn a_signature_lifted_from_another_image_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (key, cert, _) = signing_key(dir.path());
    let (signed, _) = built(dir.path(), "signed", APP, Some((&key, &cert)));
    let (other, _) = built(dir.path(), "other", b"another application", Some((&key, &cert)));
    let signed = std::fs::read(signed).unwrap();
    let other = std::fs::read(other).unwrap();
    // Both images have the same layout up to the application ramdisk; the signature is last.
    let signature_of = |image: &[u8]| -> Vec<u8> {
        let m = measured(image).unwrap();
        assert!(m.pcr8.is_some());
        let count = u16::from_be_bytes([image[COUNT], image[COUNT + 1]]) as usize;
        let at = u64::from_be_bytes(image[OFFSETS + 8 * (count - 1)..OFFSETS + 8 * count].try_into().unwrap()) as usize;
        image[at..].to_vec()
    };
    let theirs = signature_of(&other);
    let ours = signature_of(&signed);
    let mut forged = signed[..signed.len() - ours.len()].to_vec();
    forged.extend_from_slice(&theirs);
    // Keep the header's size table true to the new section, so only the signature is wrong.
    let count = u16::from_be_bytes([forged[COUNT], forged[COUNT + 1]]) as usize;
    let size_at = SIZES + 8 * (count - 1);
    forged[size_at..size_at + 8].copy_from_slice(&((theirs.len() - 12) as u64).to_be_bytes());
    let r = measured(&recrc(&forged));
    assert!(matches!(&r, Err(MeasureError::Signature(reason)) if reason.contains("not this image's PCR0")), "{r:?}");
}

/// The image `built` wrote, with its signature section's COSE_Sign1 replaced by `cose` (the
/// header's size table and the CRC kept true, so only the signature is wrong).
fn with_signature(image: &[u8], cose: &[u8]) -> Vec<u8> {
    let count = u16::from_be_bytes([image[COUNT], image[COUNT + 1]]) as usize;
    let at = u64::from_be_bytes(image[OFFSETS + 8 * (count - 1)..OFFSETS + 8 * count].try_into().unwrap()) as usize;
    let mut signatures: Vec<aws_nitro_enclaves_image_format::defs::PcrSignature> =
        ciborium::from_reader(&image[at + 12..]).unwrap();
    signatures[0].signature = cose.to_vec();
    let mut section = Vec::new();
    ciborium::into_writer(&signatures, &mut section).unwrap();
    let mut out = image[..at].to_vec();
    out.extend_from_slice(&SIGNATURE.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&(section.len() as u64).to_be_bytes());
    out.extend_from_slice(&section);
    let size_at = SIZES + 8 * (count - 1);
    out[size_at..size_at + 8].copy_from_slice(&(section.len() as u64).to_be_bytes());
    recrc(&out)
}

#[test]
fn malformed_signatures_are_refused_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let (key, cert, _) = signing_key(dir.path());
    let (signed, _) = built(dir.path(), "signed", APP, Some((&key, &cert)));
    let signed = std::fs::read(signed).unwrap();
    // An ES384 envelope whose signature is empty, short, long or zero; bytes that are not CBOR.
    let envelope = |signature: &[u8]| -> Vec<u8> {
        use ciborium::Value;
        let mut protected = Vec::new();
        let alg = Value::Map(vec![(Value::Integer(1.into()), Value::Integer((-35).into()))]);
        ciborium::into_writer(&alg, &mut protected).unwrap();
        let cose = Value::Tag(
            18,
            Box::new(Value::Array(vec![
                Value::Bytes(protected),
                Value::Map(vec![]),
                Value::Bytes(b"payload".to_vec()),
                Value::Bytes(signature.to_vec()),
            ])),
        );
        let mut out = Vec::new();
        ciborium::into_writer(&cose, &mut out).unwrap();
        out
    };
    for cose in
        [envelope(b""), envelope(&[1; 47]), envelope(&[1; 200]), envelope(&[0; 96]), b"\xff".to_vec(), Vec::new()]
    {
        let r = measured(&with_signature(&signed, &cose));
        assert!(matches!(r, Err(MeasureError::Signature(_))), "{cose:02x?}: {r:?}");
    }
}

#[test]
fn an_image_signed_with_another_curve_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let (key, cert, _) = signing_key_on(dir.path(), &rcgen::PKCS_ECDSA_P256_SHA256);
    let (signed, _) = built(dir.path(), "p256", APP, Some((&key, &cert)));
    let r = measure_file(&signed);
    assert!(matches!(&r, Err(MeasureError::Signature(reason)) if reason.contains("P-384")), "{r:?}");
}

#[test]
fn the_pcrs_table_is_written_into_a_policy() {
    let dir = tempfile::tempdir().unwrap();
    let image = eif(4, &[(KERNEL, K), (CMDLINE, C), (RAMDISK, BOOT), (RAMDISK, APP)]);
    let m = measured(&image).unwrap();

    // A new file holds just the table.
    let fresh = dir.path().join("pcrs.toml");
    write_policy_pcrs(&fresh, &m).unwrap();
    let table: toml::Table = std::fs::read_to_string(&fresh).unwrap().parse().unwrap();
    assert_eq!(table["pcrs"]["0"].as_str(), Some(hex::encode(m.pcr0).as_str()));
    assert_eq!(table["pcrs"]["2"].as_str(), Some(hex::encode(m.pcr2).as_str()));
    assert!(table["pcrs"].get("8").is_none());

    // An existing policy keeps everything but its [pcrs] table, and still parses as a policy.
    let policy = dir.path().join("policy.toml");
    let before = format!(
        "# the auditor's policy\n[attestation]\nmax_age_secs = 86400 # one day\n\n[pcrs]\n0 = \"{old}\"\n1 = \"{old}\"\n2 = \"{old}\"\n\
         3 = \"{kept}\" # the instance's IAM role, pinned by hand\n8 = \"{old}\"\n\n\
         [database]\nsystem_identifier = \"7312345678901234567\"\nserver_cert_sha256 = \"{cert}\"\nquery = \"SELECT 1\"\nname = \"exchange\"\nrole = \"solvency_reader\"\n",
        old = "00".repeat(48),
        kept = "33".repeat(48),
        cert = "11".repeat(32)
    );
    std::fs::write(&policy, &before).unwrap();
    write_policy_pcrs(&policy, &m).unwrap();
    let after = std::fs::read_to_string(&policy).unwrap();
    assert!(after.contains("# the auditor's policy") && after.contains("max_age_secs = 86400 # one day"), "{after}");
    assert!(!after.contains(&"00".repeat(48)), "{after}");
    let parsed = attestation::policy::BundlePolicy::from_toml(&after).unwrap();
    let pcrs: Vec<(String, String)> = parsed.pcrs.into_iter().collect();
    assert_eq!(
        pcrs,
        vec![
            ("0".into(), hex::encode(m.pcr0)),
            ("1".into(), hex::encode(m.pcr1)),
            ("2".into(), hex::encode(m.pcr2)),
            ("3".into(), "33".repeat(48)),
        ],
        "PCR0-2 measured, PCR3 kept, PCR8 removed: an unsigned image reports none"
    );
    assert!(after.contains("# the instance's IAM role, pinned by hand"), "{after}");

    // Not TOML: refused, and the file is left alone.
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "[pcrs\n").unwrap();
    assert!(write_policy_pcrs(&broken, &m).is_err());
    assert_eq!(std::fs::read_to_string(&broken).unwrap(), "[pcrs\n");
}
