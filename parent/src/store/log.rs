//! The store's published round log, `log.jsonl` ([`attestation::log`] specifies its lines): one
//! line per stored round, appended and fsynced when a round is committed, never rewritten. A
//! line cut short by a crash is removed at open, and rounds whose directory exists but whose
//! line is missing (a crash between the rename and the append, or a store from before the log)
//! are appended then, from their bundles.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use attestation::log::{self, LogEntry, VerifiedLog};
use sha2::{Digest, Sha256};

use super::StoreError;

/// The log's file name in the store directory.
pub const LOG_FILE: &str = "log.jsonl";

/// The file in a round's directory that holds its [`RoundIdentity`], so that a round stored but
/// not yet logged (a crash in between) is logged at the next open without decoding its bundle.
pub const IDENTITY_FILE: &str = "identity.json";

/// What identifies a stored round in the log, besides its number and the bundle's hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoundIdentity {
    /// The manifest digest.
    pub manifest_digest: [u8; 48],
    /// The round attestation's timestamp (ms since the Unix epoch).
    pub attested_ms: u64,
}

impl RoundIdentity {
    /// The identity file's contents.
    pub(super) fn to_json(self) -> String {
        serde_json::json!({"manifest_digest": hex::encode(self.manifest_digest), "attested_ms": self.attested_ms})
            .to_string()
    }

    /// Parses the identity file.
    pub(super) fn from_json(bytes: &[u8]) -> Option<Self> {
        let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
        let digest = hex::decode(value.get("manifest_digest")?.as_str()?).ok()?.try_into().ok()?;
        Some(Self { manifest_digest: digest, attested_ms: value.get("attested_ms")?.as_u64()? })
    }

    /// Reads a round bundle's identity: its manifest digest and attestation time. The bundle's
    /// signatures are not checked here; the enclave's output was checked when it was received.
    pub fn of_bundle(bytes: &[u8]) -> Result<Self, String> {
        let wire = attestation::attested::RoundBundleWire::decode(bytes).map_err(|e| e.to_string())?;
        let envelope = attestation::nitro::CoseSign1::decode(&wire.attestation).map_err(|e| e.to_string())?;
        let document = attestation::nitro::AttestationDocument::decode(&envelope.payload).map_err(|e| e.to_string())?;
        Ok(Self { manifest_digest: wire.manifest_digest(), attested_ms: document.timestamp_ms })
    }
}

/// The open log: its file, the verified entries and an index by manifest digest.
#[derive(Debug)]
pub(super) struct Log {
    path: PathBuf,
    file: File,
    verified: VerifiedLog,
    by_digest: HashMap<String, u64>,
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    move |source| StoreError::Io { op, path: path.to_path_buf(), source }
}

impl Log {
    /// Opens (or creates) the log in `dir`, dropping a last line cut short by a crash.
    pub(super) fn open(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(LOG_FILE);
        let mut file =
            OpenOptions::new().read(true).append(true).create(true).open(&path).map_err(io_err("open", &path))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io_err("read", &path))?;
        let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        if complete < bytes.len() {
            tracing::warn!(path = %path.display(), bytes = bytes.len() - complete, "removing a log line cut short by a crash");
            file.set_len(complete as u64).map_err(io_err("truncate", &path))?;
            file.sync_all().map_err(io_err("fsync", &path))?;
            bytes.truncate(complete);
        }
        let verified = log::parse(&bytes)
            .map_err(|e| StoreError::Corrupt { path: path.clone(), reason: format!("the published log: {e}") })?;
        let by_digest = verified.entries().iter().map(|e| (e.manifest_digest.clone(), e.round)).collect();
        Ok(Self { path, file, verified, by_digest })
    }

    /// Appends round `round` and makes the line durable.
    pub(super) fn append(
        &mut self,
        round: u64,
        identity: RoundIdentity,
        bundle_sha256: [u8; 32],
    ) -> Result<LogEntry, StoreError> {
        let entry =
            log::next_entry(&self.verified, round, &identity.manifest_digest, &bundle_sha256, identity.attested_ms);
        let mut next = self.verified.clone();
        next.push(entry.clone()).map_err(|e| StoreError::Corrupt { path: self.path.clone(), reason: e.to_string() })?;
        let mut line = entry.line();
        line.push('\n');
        let before = self.file.metadata().map_err(io_err("stat", &self.path))?.len();
        let written = self.file.write_all(line.as_bytes()).and_then(|()| self.file.sync_all());
        if let Err(source) = written {
            // A line written in part (a full disk) would make the next one follow garbage: cut
            // the file back to the last whole line before anything else is appended.
            let _ = self.file.set_len(before).and_then(|()| self.file.sync_all());
            return Err(StoreError::Io { op: "append", path: self.path.clone(), source });
        }
        self.by_digest.insert(entry.manifest_digest.clone(), round);
        self.verified = next;
        Ok(entry)
    }

    /// Whether round `round` has a line.
    pub(super) fn lists(&self, round: u64) -> bool {
        self.by_digest.values().any(|r| *r == round)
    }

    /// The round a manifest digest names, if logged.
    pub(super) fn round_of(&self, manifest_digest: &[u8; 48]) -> Option<u64> {
        self.by_digest.get(&hex::encode(manifest_digest)).copied()
    }

    /// The log's path, to serve it.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// The head (SHA-256 of the last line).
    pub(super) fn head(&self) -> String {
        self.verified.head()
    }

    /// Entries in the log.
    pub(super) fn len(&self) -> usize {
        self.verified.entries().len()
    }
}

/// SHA-256 of a bundle file.
pub(super) fn bundle_sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}
