//! The exchange's published round log: one JSON line per round the parent stored, each naming
//! the previous line's SHA-256, so the log can only grow. Users, auditors and regulators who
//! compare the log's head (the SHA-256 of its last line) know they were shown the same rounds,
//! and anyone holding a bundle can check that its manifest digest is listed — the answer to a
//! parent that serves one bundle to users and another to the auditor.
//!
//! ```text
//! {"seq":0,"round":1,"manifest_digest":"<96 hex>","bundle_sha256":"<64 hex>","attested_ms":…,"prev":"<64 zeros>"}
//! {"seq":1,"round":2,"manifest_digest":"…","bundle_sha256":"…","attested_ms":…,"prev":"<SHA-256 of line 0>"}
//! ```
//!
//! Lines are the entries' canonical JSON (keys in the order above, no spaces) followed by `\n`;
//! the hash of a line covers its bytes without the newline.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Largest log accepted by [`parse`] (a million rounds take about 250 MB).
pub const MAX_LOG_BYTES: usize = 512 << 20;

/// One stored round.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogEntry {
    /// Position in the log, from 0.
    pub seq: u64,
    /// The parent's label for the round.
    pub round: u64,
    /// The round's manifest digest, hex of 48 bytes.
    pub manifest_digest: String,
    /// SHA-256 of the bundle file, hex.
    pub bundle_sha256: String,
    /// The round attestation's timestamp (ms since the Unix epoch).
    pub attested_ms: u64,
    /// SHA-256 of the previous line, hex; 64 zeros for the first.
    pub prev: String,
}

/// Why a log is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LogError {
    /// Larger than [`MAX_LOG_BYTES`].
    #[error("the log is {0} bytes, over the limit")]
    TooLarge(usize),
    /// A line that is not an entry in canonical form.
    #[error("line {line}: {reason}")]
    Malformed {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A line that does not follow the one before it.
    #[error("line {line}: {reason}; the log was rewritten, not appended to")]
    Broken {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
}

/// The hash that starts the chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

impl LogEntry {
    /// The entry's line, without the newline.
    pub fn line(&self) -> String {
        // Strings and integers always serialise; qed.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// SHA-256 of [`LogEntry::line`], hex: the next entry's `prev`.
    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.line().as_bytes()))
    }
}

/// A log whose chain checked out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifiedLog {
    entries: Vec<LogEntry>,
}

impl VerifiedLog {
    /// The entries, oldest first.
    pub fn entries(&self) -> &[LogEntry] {
        &self.entries
    }

    /// The head: SHA-256 of the last line ([`GENESIS`] for an empty log).
    pub fn head(&self) -> String {
        self.entries.last().map_or_else(|| GENESIS.to_owned(), LogEntry::hash)
    }

    /// The entry listing a round by its manifest digest.
    pub fn find(&self, manifest_digest: &[u8; 48]) -> Option<&LogEntry> {
        let wanted = hex::encode(manifest_digest);
        self.entries.iter().find(|e| e.manifest_digest == wanted)
    }

    /// Appends an entry made by [`next_entry`] for this log; refuses one that does not follow.
    pub fn push(&mut self, entry: LogEntry) -> Result<(), LogError> {
        let line = self.entries.len() + 1;
        if entry.seq != self.entries.len() as u64 {
            return Err(LogError::Broken { line, reason: "its seq is not its position" });
        }
        if entry.prev != self.head() {
            return Err(LogError::Broken { line, reason: "its prev is not the hash of the line before" });
        }
        self.entries.push(entry);
        Ok(())
    }

    /// Whether `older` is a prefix of this log: the same lines, then perhaps more. What a user
    /// checks between two visits.
    pub fn extends(&self, older: &VerifiedLog) -> bool {
        older.entries.len() <= self.entries.len() && self.entries.iter().zip(&older.entries).all(|(a, b)| a == b)
    }
}

fn is_hex(text: &str, bytes: usize) -> bool {
    text.len() == 2 * bytes && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Parses and checks a whole log: every line canonical, numbered in order, chained to the one
/// before.
pub fn parse(bytes: &[u8]) -> Result<VerifiedLog, LogError> {
    if bytes.len() > MAX_LOG_BYTES {
        return Err(LogError::TooLarge(bytes.len()));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| LogError::Malformed { line: 1, reason: "not UTF-8".into() })?;
    let mut entries: Vec<LogEntry> = Vec::new();
    let mut prev = GENESIS.to_owned();
    if !text.is_empty() && !text.ends_with('\n') {
        let line = text.lines().count();
        return Err(LogError::Malformed { line, reason: "the last line has no newline (cut short?)".into() });
    }
    for (i, line) in text.lines().enumerate() {
        let number = i + 1;
        let malformed = |reason: String| LogError::Malformed { line: number, reason };
        let entry: LogEntry = serde_json::from_str(line).map_err(|e| malformed(e.to_string()))?;
        if entry.line() != line {
            return Err(malformed("not in canonical form".into()));
        }
        if !is_hex(&entry.manifest_digest, 48) || !is_hex(&entry.bundle_sha256, 32) || !is_hex(&entry.prev, 32) {
            return Err(malformed("a digest is not lowercase hex of its length".into()));
        }
        if entry.seq != i as u64 {
            return Err(LogError::Broken { line: number, reason: "its seq is not its position" });
        }
        if entry.prev != prev {
            return Err(LogError::Broken { line: number, reason: "its prev is not the hash of the line before" });
        }
        prev = entry.hash();
        entries.push(entry);
    }
    Ok(VerifiedLog { entries })
}

/// The next entry after `log` for a newly stored round.
pub fn next_entry(
    log: &VerifiedLog,
    round: u64,
    manifest_digest: &[u8; 48],
    bundle_sha256: &[u8; 32],
    attested_ms: u64,
) -> LogEntry {
    LogEntry {
        seq: log.entries.len() as u64,
        round,
        manifest_digest: hex::encode(manifest_digest),
        bundle_sha256: hex::encode(bundle_sha256),
        attested_ms,
        prev: log.head(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_of(n: u8) -> (Vec<u8>, VerifiedLog) {
        let mut log = VerifiedLog::default();
        let mut text = String::new();
        for i in 0..n {
            let entry = next_entry(&log, u64::from(i) + 1, &[i; 48], &[i; 32], 1_000 * u64::from(i));
            text.push_str(&entry.line());
            text.push('\n');
            log.entries.push(entry);
        }
        (text.into_bytes(), log)
    }

    #[test]
    fn a_log_parses_and_chains() {
        let (bytes, log) = log_of(3);
        let parsed = parse(&bytes).unwrap();
        assert_eq!(parsed, log);
        assert_eq!(parsed.find(&[1; 48]).map(|e| e.round), Some(2));
        assert!(parsed.find(&[9; 48]).is_none());
        assert_eq!(parse(b"").unwrap().head(), GENESIS);
        let (shorter, _) = log_of(2);
        assert!(parsed.extends(&parse(&shorter).unwrap()));
        assert!(!parse(&shorter).unwrap().extends(&parsed));
    }

    #[test]
    fn rewritten_reordered_or_cut_logs_are_refused() {
        let (bytes, _) = log_of(3);
        let text = String::from_utf8(bytes).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        // A round removed from the middle.
        let removed = format!("{}\n{}\n", lines[0], lines[2]);
        assert!(matches!(parse(removed.as_bytes()), Err(LogError::Broken { line: 2, .. })));
        // A round's digest replaced.
        let replaced = text.replacen(&hex::encode([1u8; 48]), &hex::encode([7u8; 48]), 1);
        assert!(matches!(parse(replaced.as_bytes()), Err(LogError::Broken { line: 3, .. })));
        // Cut in the middle of a line.
        assert!(matches!(parse(&text.as_bytes()[..text.len() - 5]), Err(LogError::Malformed { .. })));
        // Spaces: the same entry, not the canonical line.
        let spaced = text.replacen("\"seq\":0", "\"seq\": 0", 1);
        assert!(matches!(parse(spaced.as_bytes()), Err(LogError::Malformed { line: 1, .. })));
    }
}
