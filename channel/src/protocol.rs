//! The parent↔enclave control protocol: what each side sends, frame by frame. The parent opens
//! one connection per request. Bulk data (proving keys, inclusion proofs) travels as a sequence
//! of frames below the frame limit, so no single message is large and neither side buffers more
//! than one frame from the other beyond what it keeps.
//!
//! Setup: parent `Setup` → enclave `Progress`* then `SetupDone`, `KeysChunk`*, `KeysEnd`.
//! Round: parent `Round` → enclave `SendKeys` (the request is acceptable) → parent `KeysChunk`*,
//! `KeysEnd` → enclave `Progress`*, `RoundDone`, `BundleChunk`*, `Inclusion`*, `Finished`.
//! Either side may instead end with `Failed` (the enclave) or by closing the connection; a round
//! is complete only at `Finished`.

use serde::{Deserialize, Serialize};

/// Largest payload of one bulk chunk: well below [`crate::frame::DEFAULT_MAX_FRAME`] once framed.
pub const CHUNK_BYTES: usize = 512 << 10;

/// A request for a round of proving.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundRequest {
    /// The round number; the enclave refuses one not above the last it proved.
    pub round: u64,
    /// The round configuration (TOML), which the enclave parses and whose hash it attests.
    pub config_toml: String,
    /// The auditor's challenge, attested as the document's nonce.
    #[serde(with = "serde_bytes")]
    pub nonce: Vec<u8>,
    /// The challenge's deadline (ms since the Unix epoch; 0: none).
    pub deadline_ms: u64,
    /// The setup manifest of the keys that follow.
    #[serde(with = "serde_bytes")]
    pub setup_manifest: Vec<u8>,
    /// The setup's attestation document.
    #[serde(with = "serde_bytes")]
    pub setup_attestation: Vec<u8>,
    /// Bytes of the proving-keys file that follows in `KeysChunk` frames.
    pub keys_len: u64,
    /// The database password, for an enclave whose image says its password comes from the
    /// parent (`--password-from-parent`); any other enclave refuses a request that carries one.
    /// It is not part of the round configuration, so it is never hashed into a manifest.
    #[serde(default)]
    pub database_password: Option<Secret>,
    /// AWS credentials for the enclave's own calls to the AWS API (an RDS instance's identity).
    /// They authenticate the enclave's requests; what AWS answers comes over TLS the enclave
    /// terminates, so whoever holds them cannot answer in AWS's name.
    #[serde(default)]
    pub aws_credentials: Option<AwsCredentials>,
    /// The ownership signatures file the round configuration names (`[solvency]
    /// ownership_signatures`), read by the parent. The enclave checks every signature itself.
    #[serde(default)]
    pub ownership_signatures: Option<String>,
}

/// AWS credentials (an access key, or temporary credentials with their session token).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwsCredentials {
    /// The access key id (not secret).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: Secret,
    /// The session token of temporary credentials.
    #[serde(default)]
    pub session_token: Option<Secret>,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentials").field("access_key_id", &self.access_key_id).finish_non_exhaustive()
    }
}

/// A secret that never prints (`Debug` shows `<redacted>`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: String) -> Self {
        Self(secret)
    }

    /// The secret itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Parent to enclave.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToEnclave {
    /// Generate Groth16 keys for this circuit shape and attest them.
    Setup {
        /// Accounts per batch.
        batch_size: u64,
        /// Assets per account.
        assets: u64,
    },
    /// Prove a round; the proving keys follow.
    Round(Box<RoundRequest>),
    /// A piece of the proving-keys file.
    KeysChunk(#[serde(with = "serde_bytes")] Vec<u8>),
    /// The proving-keys file is complete.
    KeysEnd,
}

/// A stage of a round, for progress reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stage {
    /// Generating keys.
    Setup,
    /// Reading rows from the database (`done` rows so far; `total` unknown, 0).
    Reading,
    /// Proving batches.
    Proving,
    /// Asking the NSM for the attestation document.
    Attesting,
}

/// One user's inclusion proof (JSON, `solvency-enclave/inclusion/v1`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionEntry {
    /// The account id.
    pub account_id: String,
    /// The proof's JSON text.
    pub json: String,
}

/// Enclave to parent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FromEnclave {
    /// Work in progress.
    Progress {
        /// What is being done.
        stage: Stage,
        /// Units done.
        done: u64,
        /// Units in all (0 when unknown).
        total: u64,
    },
    /// The request failed; nothing was produced.
    Failed {
        /// A machine-readable class: `refused` (bad request or input), `database`, `internal`.
        kind: String,
        /// What went wrong.
        message: String,
    },
    /// Setup finished; the proving-keys file follows in `KeysChunk` frames.
    SetupDone {
        /// The canonical setup manifest.
        #[serde(with = "serde_bytes")]
        setup_manifest: Vec<u8>,
        /// Its attestation document.
        #[serde(with = "serde_bytes")]
        setup_attestation: Vec<u8>,
        /// Bytes of the keys file.
        keys_len: u64,
    },
    /// A piece of the proving-keys file.
    KeysChunk(#[serde(with = "serde_bytes")] Vec<u8>),
    /// The proving-keys file is complete.
    KeysEnd,
    /// The round request is acceptable: send the proving keys.
    SendKeys,
    /// The round is proven and attested; the bundle follows in `BundleChunk` frames, then the
    /// inclusion proofs.
    RoundDone {
        /// The round number.
        round: u64,
        /// Bytes of the attested round bundle (`solvency-enclave/bundle/v1`).
        bundle_len: u64,
        /// How many inclusion proofs follow.
        accounts: u64,
    },
    /// A piece of the round bundle.
    BundleChunk(#[serde(with = "serde_bytes")] Vec<u8>),
    /// Some of the round's inclusion proofs.
    Inclusion(Vec<InclusionEntry>),
    /// Everything was sent.
    Finished,
}
