//! Measuring an enclave image file (EIF): the PCR0, PCR1, PCR2 (and, for a signed image, PCR8)
//! that a Nitro Enclave booted from it reports, computed as `nitro-cli describe-eif` does, and
//! the `[pcrs]` table of a verifier policy (`docs/policy.md`).
//!
//! The image is read as a stream: each section goes through the hashers of
//! `aws-nitro-enclaves-image-format` in file order, never held whole. Before any PCR is
//! trusted the layout is checked against the header (section count, offsets, sizes, CRC), so an
//! image whose header and body disagree, which a loader could read differently from this
//! measurement, is refused rather than measured.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use aws_nitro_enclaves_image_format::defs::eif_hasher::EifHasher;
use aws_nitro_enclaves_image_format::defs::{
    EifHeader, EifSectionHeader, EifSectionType, PcrInfo, PcrSignature, CURRENT_VERSION, EIF_MAGIC, MAX_NUM_SECTIONS,
};
use aws_nitro_enclaves_image_format::utils::get_pcrs;
use crc::{Crc, CRC_32_ISO_HDLC};
use sha2::{Digest, Sha384};

/// The EIF's CRC-32 (IEEE, as zlib).
static CRC32: Crc<u32> = Crc::<u32>::new(&CRC_32_ISO_HDLC);

/// A PCR value: SHA-384 sized.
pub type Pcr = [u8; 48];

/// The signature section is a CBOR array holding one certificate and one COSE_Sign1 (about
/// 1–2 KiB in practice); anything far larger is not a signature section.
const MAX_SIGNATURE_SECTION: u64 = 64 * 1024;

/// Why an image cannot be measured.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file does not start with the EIF magic `.eif`.
    #[error("not an enclave image file: the magic is {0:02x?}, not \".eif\"")]
    NotEif([u8; 4]),
    /// A format version this code does not know.
    #[error("EIF version {0} is not supported (1..={CURRENT_VERSION})")]
    UnsupportedVersion(u16),
    /// The header or a section is cut short.
    #[error("truncated at byte {offset}: {what} needs {needed} bytes, {available} remain")]
    Truncated {
        /// Where.
        offset: u64,
        /// What was being read.
        what: String,
        /// Bytes needed.
        needed: u64,
        /// Bytes left in the file.
        available: u64,
    },
    /// A section header is not one of the known section types.
    #[error("section {index} at byte {offset}: {reason}")]
    BadSection {
        /// The section's position (0-based).
        index: usize,
        /// Its header's offset.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The header's section table disagrees with the sections in the file.
    #[error("the header disagrees with the file: {0}")]
    HeaderMismatch(String),
    /// The CRC in the header does not match the file.
    #[error("CRC mismatch: the header says {declared:08x}, the file gives {computed:08x}")]
    Crc {
        /// The header's CRC.
        declared: u32,
        /// The file's.
        computed: u32,
    },
    /// A section every bootable image has is missing or repeated.
    #[error("{0}")]
    Layout(String),
    /// The signature section does not decode or does not verify.
    #[error("the image signature: {0}")]
    Signature(String),
}

/// An image's measurements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Measurements {
    /// The EIF format version.
    pub version: u16,
    /// PCR0: kernel, command line and every ramdisk.
    pub pcr0: Pcr,
    /// PCR1: kernel, command line and the first (bootstrap) ramdisk.
    pub pcr1: Pcr,
    /// PCR2: the remaining (application) ramdisks.
    pub pcr2: Pcr,
    /// PCR8: the signing certificate, for a signed image.
    pub pcr8: Option<Pcr>,
    /// Who signed the image, for a signed image.
    pub signer: Option<Signer>,
}

/// The certificate a signed image's signature verified under. Its validity period is reported,
/// not enforced: an archived image is measured the same way after its certificate expired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signer {
    /// The certificate's subject.
    pub subject: String,
    /// Start of its validity.
    pub not_before: String,
    /// End of its validity.
    pub not_after: String,
}

impl Measurements {
    /// The PCRs by index, as the verifier policy pins them.
    pub fn pcrs(&self) -> BTreeMap<u8, Pcr> {
        let mut pcrs = BTreeMap::from([(0, self.pcr0), (1, self.pcr1), (2, self.pcr2)]);
        if let Some(pcr8) = self.pcr8 {
            pcrs.insert(8, pcr8);
        }
        pcrs
    }

    /// The PCRs as nitro-cli names and prints them (`"PCR0"`: lowercase hex), which
    /// `--json` prints and `infra/enclave/build-eif.sh` compares with nitro-cli's output.
    pub fn pcrs_by_name(&self) -> BTreeMap<String, String> {
        self.pcrs().into_iter().map(|(i, v)| (format!("PCR{i}"), hex::encode(v))).collect()
    }
}

/// Measures the image file at `path`.
pub fn measure_file(path: &Path) -> Result<Measurements, MeasureError> {
    let io = |source| MeasureError::Io { path: path.to_owned(), source };
    let file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    measure(BufReader::with_capacity(1 << 20, file), len).map_err(|e| match e {
        MeasureError::Io { source, .. } => io(source),
        other => other,
    })
}

/// Measures an image of `len` bytes read from `reader`.
pub fn measure(reader: impl Read, len: u64) -> Result<Measurements, MeasureError> {
    let mut image = Image { reader, offset: 0, len, crc: CRC32.digest() };

    let mut header_bytes = [0u8; EifHeader::size()];
    image.read_exact(&mut header_bytes, "the EIF header")?;
    let header = EifHeader::from_be_bytes(&header_bytes).map_err(MeasureError::HeaderMismatch)?;
    if header.magic != EIF_MAGIC {
        return Err(MeasureError::NotEif(header.magic));
    }
    if header.version == 0 || header.version > CURRENT_VERSION {
        return Err(MeasureError::UnsupportedVersion(header.version));
    }
    // The CRC covers everything except its own four bytes, the header's last field.
    image.crc = CRC32.digest();
    image.crc.update(header_bytes.get(..EifHeader::size() - 4).unwrap_or_default());
    let declared_sections = usize::from(header.num_sections);
    if declared_sections > MAX_NUM_SECTIONS {
        return Err(MeasureError::HeaderMismatch(format!(
            "{declared_sections} sections declared, at most {MAX_NUM_SECTIONS} exist"
        )));
    }

    let hasher = || EifHasher::new_without_cache(Sha384::new()).map_err(MeasureError::Layout);
    let (mut whole, mut bootstrap, mut app, mut cert) = (hasher()?, hasher()?, hasher()?, hasher()?);
    let (mut kernels, mut cmdlines, mut ramdisks) = (0usize, 0usize, 0usize);
    let mut signature: Option<(PcrSignature, Vec<u8>)> = None;
    let mut index = 0usize;
    while image.offset < image.len {
        let at = image.offset;
        let mut section_bytes = [0u8; EifSectionHeader::size()];
        image.read_exact(&mut section_bytes, &format!("section {index}'s header"))?;
        let section = EifSectionHeader::from_be_bytes(&section_bytes).map_err(|reason| MeasureError::BadSection {
            index,
            offset: at,
            reason,
        })?;
        let (declared_offset, declared_size) =
            match (header.section_offsets.get(index), header.section_sizes.get(index)) {
                (Some(&o), Some(&s)) if index < declared_sections => (o, s),
                _ => {
                    return Err(MeasureError::HeaderMismatch(format!(
                        "the file has more than the {declared_sections} sections the header declares"
                    )))
                }
            };
        if declared_offset != at || declared_size != section.section_size {
            return Err(MeasureError::HeaderMismatch(format!(
                "section {index} is at byte {at} with {} bytes; the header says byte {declared_offset} with \
                 {declared_size} bytes",
                section.section_size
            )));
        }
        image.ensure(section.section_size, &format!("section {index} ({:?})", section.section_type))?;
        match section.section_type {
            EifSectionType::EifSectionKernel | EifSectionType::EifSectionCmdline => {
                let count =
                    if section.section_type == EifSectionType::EifSectionKernel { &mut kernels } else { &mut cmdlines };
                *count += 1;
                image.copy_into(section.section_size, &mut [&mut whole, &mut bootstrap])?;
            }
            EifSectionType::EifSectionRamdisk => {
                // The first ramdisk is AWS's bootstrap (PCR1); the rest are the application (PCR2).
                let part = if ramdisks == 0 { &mut bootstrap } else { &mut app };
                image.copy_into(section.section_size, &mut [&mut whole, part])?;
                ramdisks += 1;
            }
            EifSectionType::EifSectionMetadata => {
                // Build metadata (tool versions, times) is not measured, so it cannot change a PCR.
                image.copy_into(section.section_size, &mut [])?;
            }
            EifSectionType::EifSectionSignature => {
                if signature.is_some() {
                    return Err(MeasureError::Layout("the image has two signature sections".into()));
                }
                if section.section_size > MAX_SIGNATURE_SECTION {
                    return Err(MeasureError::Signature(format!(
                        "a {}-byte signature section (at most {MAX_SIGNATURE_SECTION})",
                        section.section_size
                    )));
                }
                let mut bytes = vec![0u8; section.section_size as usize];
                image.read_exact(&mut bytes, "the signature section")?;
                let first = decode_signature(&bytes)?;
                let der = certificate_der(&first.signing_certificate)?;
                std::io::Write::write_all(&mut cert, &der).map_err(|e| MeasureError::Signature(e.to_string()))?;
                signature = Some((first, der));
            }
            EifSectionType::EifSectionInvalid => {
                return Err(MeasureError::BadSection {
                    index,
                    offset: at,
                    reason: "the invalid section type 0".into(),
                });
            }
        }
        index += 1;
    }
    if index != declared_sections {
        return Err(MeasureError::HeaderMismatch(format!(
            "the header declares {declared_sections} sections, the file has {index}"
        )));
    }
    let computed = image.crc.finalize();
    // Version 1 images predate the CRC.
    if header.version >= 2 && computed != header.eif_crc32 {
        return Err(MeasureError::Crc { declared: header.eif_crc32, computed });
    }
    if kernels != 1 || cmdlines != 1 {
        return Err(MeasureError::Layout(format!(
            "an image has one kernel and one command line; this one has {kernels} and {cmdlines}"
        )));
    }
    if ramdisks < 2 {
        return Err(MeasureError::Layout(format!(
            "{ramdisks} ramdisk(s): an image has the bootstrap ramdisk and at least one application ramdisk, \
             without which PCR2 measures nothing"
        )));
    }

    let values = get_pcrs(&mut whole, &mut bootstrap, &mut app, &mut cert, Sha384::new(), signature.is_some())
        .map_err(MeasureError::Layout)?;
    let pcr = |name: &str| -> Result<Pcr, MeasureError> {
        values
            .get(name)
            .and_then(|h| hex::decode(h).ok())
            .and_then(|v| Pcr::try_from(v).ok())
            .ok_or_else(|| MeasureError::Layout(format!("{name} was not computed")))
    };
    let pcr0 = pcr("PCR0")?;
    let signer = match &signature {
        Some((signature, der)) => Some(check_signature(signature, der, &pcr0)?),
        None => None,
    };
    Ok(Measurements {
        version: header.version,
        pcr0,
        pcr1: pcr("PCR1")?,
        pcr2: pcr("PCR2")?,
        pcr8: if signer.is_some() { Some(pcr("PCR8")?) } else { None },
        signer,
    })
}

/// The first signature of the signature section (nitro-cli writes exactly one, over PCR0).
fn decode_signature(bytes: &[u8]) -> Result<PcrSignature, MeasureError> {
    let mut rest = bytes;
    let signatures: Vec<PcrSignature> =
        ciborium::from_reader(&mut rest).map_err(|e| MeasureError::Signature(format!("does not decode: {e}")))?;
    if !rest.is_empty() {
        return Err(MeasureError::Signature(format!("{} trailing bytes", rest.len())));
    }
    signatures.into_iter().next().ok_or_else(|| MeasureError::Signature("the section holds no signature".into()))
}

/// The signing certificate in DER, which PCR8 measures.
fn certificate_der(pem_bytes: &[u8]) -> Result<Vec<u8>, MeasureError> {
    let parsed = pem::parse(pem_bytes).map_err(|e| MeasureError::Signature(format!("the signing certificate: {e}")))?;
    if parsed.tag() != "CERTIFICATE" {
        return Err(MeasureError::Signature(format!("the signing certificate is a PEM {:?}", parsed.tag())));
    }
    Ok(parsed.into_contents())
}

/// The signature must verify under its certificate and sign this image's PCR0: a signature
/// lifted from another image would otherwise lend this one a PCR8. nitro-cli signs with ES384
/// (a P-384 key); the envelope is checked by the verifier's own COSE code, which bounds every
/// length, rather than by a library that trusts the signature's.
fn check_signature(signature: &PcrSignature, certificate: &[u8], pcr0: &Pcr) -> Result<Signer, MeasureError> {
    let bad = |what: String| MeasureError::Signature(what);
    let (rest, cert) = x509_parser::parse_x509_certificate(certificate)
        .map_err(|e| bad(format!("the signing certificate does not parse: {e}")))?;
    if !rest.is_empty() {
        return Err(bad(format!("{} bytes after the signing certificate", rest.len())));
    }
    let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(&cert.public_key().subject_public_key.data)
        .map_err(|_| bad("the signing certificate's key is not a P-384 key (EIF signatures are ES384)".into()))?;
    let cose =
        attestation::nitro::CoseSign1::decode(&signature.signature).map_err(|e| bad(format!("the COSE_Sign1: {e}")))?;
    cose.verify_signature(&key).map_err(|_| bad("it does not verify under the signing certificate's key".into()))?;
    let signed: PcrInfo = ciborium::from_reader(cose.payload.as_slice())
        .map_err(|e| bad(format!("the signed PCR does not decode: {e}")))?;
    if signed.register_index != 0 || signed.register_value.as_slice() != pcr0.as_slice() {
        return Err(bad(format!(
            "it signs PCR{} = {}, not this image's PCR0",
            signed.register_index,
            hex::encode(&signed.register_value)
        )));
    }
    Ok(Signer {
        subject: cert.subject().to_string(),
        not_before: cert.validity().not_before.to_string(),
        not_after: cert.validity().not_after.to_string(),
    })
}

/// The image being read: position, length and running CRC.
struct Image<R> {
    reader: R,
    offset: u64,
    len: u64,
    crc: crc::Digest<'static, u32>,
}

impl<R: Read> Image<R> {
    fn ensure(&self, needed: u64, what: &str) -> Result<(), MeasureError> {
        let available = self.len - self.offset;
        if needed > available {
            return Err(MeasureError::Truncated { offset: self.offset, what: what.into(), needed, available });
        }
        Ok(())
    }

    fn read_exact(&mut self, buf: &mut [u8], what: &str) -> Result<(), MeasureError> {
        self.ensure(buf.len() as u64, what)?;
        self.reader.read_exact(buf).map_err(|source| MeasureError::Io { path: PathBuf::new(), source })?;
        self.crc.update(buf);
        self.offset += buf.len() as u64;
        Ok(())
    }

    /// Streams `size` bytes into every hasher in `into`.
    fn copy_into(&mut self, size: u64, into: &mut [&mut EifHasher<Sha384>]) -> Result<(), MeasureError> {
        let mut chunk = vec![0u8; 1 << 16];
        let mut left = size;
        while left > 0 {
            let n = usize::try_from(left.min(chunk.len() as u64)).unwrap_or(chunk.len());
            let buf = chunk.get_mut(..n).unwrap_or_default();
            self.read_exact(buf, "a section")?;
            for hasher in into.iter_mut() {
                std::io::Write::write_all(&mut **hasher, buf)
                    .map_err(|source| MeasureError::Io { path: PathBuf::new(), source })?;
            }
            left -= n as u64;
        }
        Ok(())
    }
}

/// Writes `measurements` into the `[pcrs]` table of the policy file at `path`: a new file holding
/// only that table, or an existing policy whose PCR0, PCR1, PCR2 and PCR8 pins are set (PCR8
/// removed for an unsigned image, which reports none) and whose other tables, other pins and
/// comments stay as written. The file is replaced whole (staged, synced, renamed) and keeps its
/// permissions.
pub fn write_policy_pcrs(path: &Path, measurements: &Measurements) -> Result<(), PolicyWriteError> {
    let io = |source| PolicyWriteError::Io { path: path.to_owned(), source };
    let (mut document, permissions) = match std::fs::read_to_string(path) {
        Ok(text) => (
            text.parse::<toml_edit::DocumentMut>()
                .map_err(|e| PolicyWriteError::Toml { path: path.to_owned(), reason: e.to_string() })?,
            Some(std::fs::metadata(path).map_err(io)?.permissions()),
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (toml_edit::DocumentMut::new(), None),
        Err(e) => return Err(io(e)),
    };
    if !document.contains_key("pcrs") {
        let mut table = toml_edit::Table::new();
        table.decor_mut().set_prefix(if document.is_empty() {
            "# PCRs measured by `solvency-parent measure --eif` (docs/policy.md)\n"
        } else {
            "\n"
        });
        document.insert("pcrs", toml_edit::Item::Table(table));
    }
    let table = document
        .get_mut("pcrs")
        .and_then(toml_edit::Item::as_table_mut)
        .ok_or_else(|| PolicyWriteError::Toml { path: path.to_owned(), reason: "`pcrs` is not a table".into() })?;
    for (index, value) in measurements.pcrs() {
        table.insert(&index.to_string(), toml_edit::value(hex::encode(value)));
    }
    if measurements.pcr8.is_none() {
        table.remove("8");
    }

    let staged = path.with_extension("toml.tmp");
    let mut file = std::fs::File::create(&staged).map_err(io)?;
    std::io::Write::write_all(&mut file, document.to_string().as_bytes()).map_err(io)?;
    if let Some(permissions) = permissions {
        file.set_permissions(permissions).map_err(io)?;
    }
    file.sync_all().map_err(io)?;
    std::fs::rename(&staged, path).map_err(io)?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)
}

/// Why the policy file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PolicyWriteError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The existing file is not TOML.
    #[error("{path} is not TOML: {reason}")]
    Toml {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}
