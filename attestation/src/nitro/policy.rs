//! What the caller requires of a verified document: PCR values, no debug mode, exact user data
//! and nonce, freshness against the caller's clock.

use std::collections::BTreeMap;

use super::document::AttestationDocument;
use super::error::PolicyError;

/// Requirements applied after the envelope, payload, chain and signature verified.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// PCR index to the exact value required.
    pub expected_pcrs: BTreeMap<u8, Vec<u8>>,
    /// Accept documents whose PCR0, PCR1 and PCR2 are all zero (debug-mode enclaves).
    pub allow_debug: bool,
    /// The exact `user_data` required (absent and empty are the same).
    pub expected_user_data: Option<Vec<u8>>,
    /// The exact `nonce` required, when a challenge was issued.
    pub expected_nonce: Option<Vec<u8>>,
    /// The oldest document accepted, in milliseconds before "now".
    pub max_age_ms: Option<u64>,
    /// How far in the future a timestamp may be, in milliseconds.
    pub max_skew_ms: u64,
}

fn is_zero(pcr: Option<&Vec<u8>>) -> bool {
    pcr.is_some_and(|v| v.iter().all(|b| *b == 0))
}

impl Policy {
    /// Applies the policy with `now_ms` as the current time.
    pub fn check(&self, doc: &AttestationDocument, now_ms: u64) -> Result<(), PolicyError> {
        if !self.allow_debug && (0..3).all(|i| is_zero(doc.pcrs.get(&i))) {
            return Err(PolicyError::DebugMode);
        }
        for (index, expected) in &self.expected_pcrs {
            let actual = doc.pcrs.get(index).ok_or(PolicyError::PcrAbsent(*index))?;
            if actual != expected {
                return Err(PolicyError::Pcr {
                    index: *index,
                    expected: hex::encode(expected),
                    actual: hex::encode(actual),
                });
            }
        }
        let present = |v: &Option<Vec<u8>>| v.clone().unwrap_or_default();
        if let Some(expected) = &self.expected_user_data {
            let actual = present(&doc.user_data);
            if &actual != expected {
                return Err(PolicyError::UserData { expected: hex::encode(expected), actual: hex::encode(actual) });
            }
        }
        if let Some(expected) = &self.expected_nonce {
            let actual = present(&doc.nonce);
            if &actual != expected {
                return Err(PolicyError::Nonce { expected: hex::encode(expected), actual: hex::encode(actual) });
            }
        }
        if doc.timestamp_ms > now_ms.saturating_add(self.max_skew_ms) {
            return Err(PolicyError::FromTheFuture { ahead_ms: doc.timestamp_ms - now_ms, skew_ms: self.max_skew_ms });
        }
        if let Some(max_ms) = self.max_age_ms {
            let age_ms = now_ms.saturating_sub(doc.timestamp_ms);
            if age_ms > max_ms {
                return Err(PolicyError::TooOld { age_ms, max_ms });
            }
        }
        Ok(())
    }
}
