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

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(edit: impl FnOnce(&mut Vec<(Value, Value)>)) -> Vec<u8> {
        let mut map = vec![
            (Value::Text("module_id".into()), Value::Text("i-test".into())),
            (Value::Text("digest".into()), Value::Text("SHA384".into())),
            (Value::Text("timestamp".into()), Value::Integer(1u64.into())),
            (Value::Text("pcrs".into()), Value::Map(vec![(Value::Integer(0.into()), Value::Bytes(vec![0; 48]))])),
            (Value::Text("certificate".into()), Value::Bytes(vec![1])),
            (Value::Text("cabundle".into()), Value::Array(vec![Value::Bytes(vec![2])])),
        ];
        edit(&mut map);
        let mut out = Vec::new();
        ciborium::into_writer(&Value::Map(map), &mut out).unwrap();
        out
    }

    fn with(field: &str, value: Value) -> Result<AttestationDocument, PayloadError> {
        AttestationDocument::decode(&payload(|m| m.push((Value::Text(field.into()), value))))
    }

    #[test]
    fn optional_fields_may_be_absent_null_or_empty() {
        let absent = AttestationDocument::decode(&payload(|_| {})).unwrap();
        assert_eq!((absent.user_data, absent.nonce, absent.public_key), (None, None, None));
        assert_eq!(with("user_data", Value::Null).unwrap().user_data, None);
        assert_eq!(with("nonce", Value::Bytes(vec![])).unwrap().nonce, Some(vec![]));
    }

    #[test]
    fn caps_hold_at_the_limit_and_refuse_one_more() {
        for (field, limit) in
            [("user_data", MAX_USER_DATA_BYTES), ("nonce", MAX_USER_DATA_BYTES), ("public_key", MAX_PUBLIC_KEY_BYTES)]
        {
            assert!(with(field, Value::Bytes(vec![0; limit])).is_ok(), "{field}");
            assert!(
                matches!(with(field, Value::Bytes(vec![0; limit + 1])), Err(PayloadError::TooLarge { .. })),
                "{field}"
            );
        }
        let long_id = payload(|m| m[0].1 = Value::Text("x".repeat(MAX_MODULE_ID_BYTES + 1)));
        assert!(matches!(
            AttestationDocument::decode(&long_id),
            Err(PayloadError::TooLarge { field: "module_id", .. })
        ));
        let many = payload(|m| m[5].1 = Value::Array(vec![Value::Bytes(vec![2]); MAX_CABUNDLE + 1]));
        assert!(matches!(AttestationDocument::decode(&many), Err(PayloadError::TooLarge { field: "cabundle", .. })));
    }

    #[test]
    fn structural_defects_get_their_own_errors() {
        assert_eq!(with("extra", Value::Null).unwrap_err(), PayloadError::Unknown("extra".into()));
        assert_eq!(with("digest", Value::Text("SHA384".into())).unwrap_err(), PayloadError::Duplicate("digest".into()));
        let sha256 = payload(|m| m[1].1 = Value::Text("SHA256".into()));
        assert_eq!(AttestationDocument::decode(&sha256).unwrap_err(), PayloadError::Digest("SHA256".into()));
        let short_pcr = payload(|m| m[3].1 = Value::Map(vec![(Value::Integer(1.into()), Value::Bytes(vec![0; 32]))]));
        assert_eq!(AttestationDocument::decode(&short_pcr).unwrap_err(), PayloadError::PcrLength { index: 1, len: 32 });
        let pcr_32 = payload(|m| m[3].1 = Value::Map(vec![(Value::Integer(32.into()), Value::Bytes(vec![0; 48]))]));
        assert_eq!(AttestationDocument::decode(&pcr_32).unwrap_err(), PayloadError::PcrIndex(32));
        let no_pcrs = payload(|m| m[3].1 = Value::Map(vec![]));
        assert_eq!(AttestationDocument::decode(&no_pcrs).unwrap_err(), PayloadError::PcrCount(0));
        let empty_bundle = payload(|m| m[5].1 = Value::Array(vec![]));
        assert_eq!(AttestationDocument::decode(&empty_bundle).unwrap_err(), PayloadError::Empty("cabundle"));
        let missing = payload(|m| {
            m.remove(2);
        });
        assert_eq!(AttestationDocument::decode(&missing).unwrap_err(), PayloadError::Missing("timestamp"));
        let wrong_type = payload(|m| m[2].1 = Value::Text("now".into()));
        assert_eq!(AttestationDocument::decode(&wrong_type).unwrap_err(), PayloadError::WrongType("timestamp"));
    }
}
