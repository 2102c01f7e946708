//! The attestation document inside the envelope (AWS Nitro Enclaves NSM API): fields, CBOR types
//! and size limits. Any valid CBOR encoding is accepted (hardware has produced indefinite-length
//! maps); the signature is checked over the bytes as received, never over a re-encoding.

use std::collections::BTreeMap;

use ciborium::Value;

use super::error::PayloadError;

/// Largest document accepted (real ones are about 5 KiB).
pub const MAX_DOCUMENT_BYTES: usize = 32 << 10;
/// Longest `module_id`.
pub const MAX_MODULE_ID_BYTES: usize = 256;
/// Largest certificate.
pub const MAX_CERTIFICATE_BYTES: usize = 4096;
/// Most certificates in `cabundle`.
pub const MAX_CABUNDLE: usize = 8;
/// Largest `public_key` (the NSM's own limit).
pub const MAX_PUBLIC_KEY_BYTES: usize = 1024;
/// Largest `user_data` and `nonce` (the NSM's own limit).
pub const MAX_USER_DATA_BYTES: usize = 512;
/// Bytes of a SHA-384 PCR.
pub const PCR_BYTES: usize = 48;

/// A parsed attestation document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttestationDocument {
    /// The enclave's module id.
    pub module_id: String,
    /// Always `SHA384`.
    pub digest: String,
    /// Milliseconds since the Unix epoch when the NSM made the document.
    pub timestamp_ms: u64,
    /// PCR index to value.
    pub pcrs: BTreeMap<u8, Vec<u8>>,
    /// The leaf (signing) certificate, DER.
    pub certificate: Vec<u8>,
    /// Root first, then intermediates down to the leaf's issuer, DER.
    pub cabundle: Vec<Vec<u8>>,
    /// The public key the enclave asked to include.
    pub public_key: Option<Vec<u8>>,
    /// The user data the enclave asked to include.
    pub user_data: Option<Vec<u8>>,
    /// The nonce the enclave asked to include.
    pub nonce: Option<Vec<u8>>,
}

fn capped(value: Value, field: &'static str, limit: usize) -> Result<Vec<u8>, PayloadError> {
    match value {
        Value::Bytes(b) if b.len() > limit => Err(PayloadError::TooLarge { field, size: b.len(), limit }),
        Value::Bytes(b) => Ok(b),
        _ => Err(PayloadError::WrongType(field)),
    }
}

fn optional(value: Option<Value>, field: &'static str, limit: usize) -> Result<Option<Vec<u8>>, PayloadError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v) => capped(v, field, limit).map(Some),
    }
}

impl AttestationDocument {
    /// Parses the payload of an envelope.
    pub fn decode(payload: &[u8]) -> Result<Self, PayloadError> {
        let mut reader = payload;
        let value: Value = ciborium::from_reader(&mut reader).map_err(|e| PayloadError::Cbor(e.to_string()))?;
        if !reader.is_empty() {
            return Err(PayloadError::Cbor(format!("{} trailing bytes", reader.len())));
        }
        let Value::Map(entries) = value else { return Err(PayloadError::NotAMap) };
        let mut fields: BTreeMap<String, Value> = BTreeMap::new();
        for (key, value) in entries {
            let Value::Text(key) = key else { return Err(PayloadError::NotAMap) };
            const KNOWN: [&str; 9] = [
                "module_id",
                "digest",
                "timestamp",
                "pcrs",
                "certificate",
                "cabundle",
                "public_key",
                "user_data",
                "nonce",
            ];
            if !KNOWN.contains(&key.as_str()) {
                return Err(PayloadError::Unknown(key));
            }
            if fields.contains_key(&key) {
                return Err(PayloadError::Duplicate(key));
            }
            fields.insert(key, value);
        }
        let mut take = |name: &'static str| fields.remove(name).ok_or(PayloadError::Missing(name));

        let module_id = match take("module_id")? {
            Value::Text(t) if t.is_empty() => return Err(PayloadError::Empty("module_id")),
            Value::Text(t) if t.len() > MAX_MODULE_ID_BYTES => {
                return Err(PayloadError::TooLarge { field: "module_id", size: t.len(), limit: MAX_MODULE_ID_BYTES })
            }
            Value::Text(t) => t,
            _ => return Err(PayloadError::WrongType("module_id")),
        };
        let digest = match take("digest")? {
            Value::Text(t) if t == "SHA384" => t,
            Value::Text(t) => return Err(PayloadError::Digest(t)),
            _ => return Err(PayloadError::WrongType("digest")),
        };
        let timestamp_ms = match take("timestamp")? {
            Value::Integer(i) => u64::try_from(i128::from(i)).ok().filter(|t| *t > 0),
            _ => None,
        }
        .ok_or(PayloadError::WrongType("timestamp"))?;
        let Value::Map(pcr_entries) = take("pcrs")? else { return Err(PayloadError::WrongType("pcrs")) };
        if pcr_entries.is_empty() || pcr_entries.len() > 32 {
            return Err(PayloadError::PcrCount(pcr_entries.len()));
        }
        let mut pcrs = BTreeMap::new();
        for (index, value) in pcr_entries {
            let Value::Integer(index) = index else { return Err(PayloadError::WrongType("pcrs")) };
            let index = i128::from(index);
            let index = u8::try_from(index).ok().filter(|i| *i < 32).ok_or(PayloadError::PcrIndex(index))?;
            let value = capped(value, "pcrs", PCR_BYTES)?;
            if value.len() != PCR_BYTES {
                return Err(PayloadError::PcrLength { index, len: value.len() });
            }
            if pcrs.insert(index, value).is_some() {
                return Err(PayloadError::Duplicate(format!("pcrs[{index}]")));
            }
        }
        let certificate = capped(take("certificate")?, "certificate", MAX_CERTIFICATE_BYTES)?;
        if certificate.is_empty() {
            return Err(PayloadError::Empty("certificate"));
        }
        let Value::Array(bundle) = take("cabundle")? else { return Err(PayloadError::WrongType("cabundle")) };
        if bundle.is_empty() {
            return Err(PayloadError::Empty("cabundle"));
        }
        if bundle.len() > MAX_CABUNDLE {
            return Err(PayloadError::TooLarge { field: "cabundle", size: bundle.len(), limit: MAX_CABUNDLE });
        }
        let cabundle =
            bundle.into_iter().map(|c| capped(c, "cabundle", MAX_CERTIFICATE_BYTES)).collect::<Result<Vec<_>, _>>()?;
        let public_key = optional(fields.remove("public_key"), "public_key", MAX_PUBLIC_KEY_BYTES)?;
        let user_data = optional(fields.remove("user_data"), "user_data", MAX_USER_DATA_BYTES)?;
        let nonce = optional(fields.remove("nonce"), "nonce", MAX_USER_DATA_BYTES)?;
        Ok(Self { module_id, digest, timestamp_ms, pcrs, certificate, cabundle, public_key, user_data, nonce })
    }
}
