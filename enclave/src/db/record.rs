//! The round's database record: which cluster was read (system identifier, timeline), at which
//! point of its history (WAL LSN, transaction snapshot, server time), through which server
//! certificate, with which query, and a digest of exactly the rows read.
//!
//! The row digest is SHA-256 over `"solvency-enclave/database-rows/v1"` followed, for each row
//! in the order the query returned it, by
//! `u32be(len(account id)) ‖ account id ‖ u32be(len(asset)) ‖ asset ‖ u64be(amount in base units)`
//! (UTF-8 strings). An auditor who restores the database to the recorded LSN and runs the
//! recorded query recomputes it (`docs/database-read.md`).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The domain separator that starts the row digest.
pub const ROW_DIGEST_DOMAIN: &[u8] = b"solvency-enclave/database-rows/v1";

/// The query that, right after [`super::guard::TRANSACTION_SETTINGS`], fixes the snapshot and
/// reads the cluster's identity in the same instant. Every function and relation is
/// schema-qualified, so nothing in the reader's search path can stand in for them.
pub(super) const IDENTITY_QUERY: &str = "SELECT s.system_identifier::pg_catalog.text, c.timeline_id::pg_catalog.text, \
     pg_catalog.pg_is_in_recovery()::pg_catalog.text, \
     (CASE WHEN pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_last_wal_replay_lsn() \
      ELSE pg_catalog.pg_current_wal_lsn() END)::pg_catalog.text, \
     pg_catalog.pg_current_snapshot()::pg_catalog.text, pg_catalog.current_setting('server_version'), \
     pg_catalog.current_setting('server_version_num'), \
     pg_catalog.current_database()::pg_catalog.text, current_user::pg_catalog.text, \
     pg_catalog.to_char(pg_catalog.timezone('UTC', pg_catalog.statement_timestamp()), 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), \
     session_user::pg_catalog.text, \
     (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())::pg_catalog.text \
     FROM pg_catalog.pg_control_system() AS s, pg_catalog.pg_control_checkpoint() AS c";

/// Columns of [`IDENTITY_QUERY`].
const IDENTITY_COLUMNS: usize = 12;

/// What identifies the database and the snapshot, read before any row (defined with the
/// manifest that attests it).
pub use attestation::manifest::DatabaseIdentity;

/// Everything a round records about its read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseRecord {
    /// The database and snapshot.
    #[serde(flatten)]
    pub identity: DatabaseIdentity,
    /// The exact query text, as run inside `COPY (...) TO STDOUT`.
    pub query: String,
    /// Rows read.
    pub rows: u64,
    /// The row digest (see the module documentation), hex.
    pub rows_sha256: String,
}

/// The running row digest.
#[derive(Clone)]
pub struct RowDigest {
    hash: Sha256,
    rows: u64,
}

impl Default for RowDigest {
    fn default() -> Self {
        let mut hash = Sha256::new();
        hash.update(ROW_DIGEST_DOMAIN);
        Self { hash, rows: 0 }
    }
}

impl RowDigest {
    /// Adds one row.
    pub fn add(&mut self, account_id: &str, asset: &str, amount: u64) {
        for s in [account_id, asset] {
            // Ids are at most MAX_ACCOUNT_ID_BYTES and symbols MAX_SYMBOL_BYTES by the time
            // rows reach here, far below 2^32.
            self.hash.update((s.len() as u32).to_be_bytes());
            self.hash.update(s.as_bytes());
        }
        self.hash.update(amount.to_be_bytes());
        self.rows += 1;
    }

    /// Rows added.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The digest.
    pub fn finish(self) -> [u8; 32] {
        self.hash.finalize().into()
    }
}

/// Parses the identity query's text columns.
pub(super) fn parse_identity(
    columns: &[Option<&str>],
    server_cert_sha256: [u8; 32],
) -> Result<DatabaseIdentity, String> {
    let text = |i: usize| -> Result<String, String> {
        columns.get(i).copied().flatten().map(str::to_owned).ok_or_else(|| format!("no value in column {i}"))
    };
    let number = |i: usize| -> Result<u32, String> {
        text(i)?.parse::<u32>().map_err(|_| format!("column {i} is not a number"))
    };
    if columns.len() != IDENTITY_COLUMNS {
        return Err(format!("{} columns, expected {IDENTITY_COLUMNS}", columns.len()));
    }
    Ok(DatabaseIdentity {
        system_identifier: text(0)?,
        timeline: number(1)?,
        in_recovery: text(2)? == "true",
        lsn: text(3)?,
        snapshot: text(4)?,
        server_version: text(5)?,
        server_version_num: number(6)?,
        database: text(7)?,
        role: text(8)?,
        server_time: text(9)?,
        server_cert_sha256: hex::encode(server_cert_sha256),
        session_role: Some(text(10)?),
        database_oid: Some(number(11)?),
        // Filled in once the query's relations are checked, before any row is read.
        relations: None,
        rds: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_row_digest_matches_its_documented_encoding() {
        let mut digest = RowDigest::default();
        digest.add("alice", "BTC", 5);
        let mut expected = Sha256::new();
        expected.update(b"solvency-enclave/database-rows/v1");
        expected.update([0, 0, 0, 5]);
        expected.update(b"alice");
        expected.update([0, 0, 0, 3]);
        expected.update(b"BTC");
        expected.update([0, 0, 0, 0, 0, 0, 0, 5]);
        assert_eq!(digest.rows(), 1);
        assert_eq!(digest.finish(), <[u8; 32]>::from(expected.finalize()));
        // Field boundaries are unambiguous.
        let (mut a, mut b) = (RowDigest::default(), RowDigest::default());
        a.add("ab", "C", 1);
        b.add("a", "bC", 1);
        assert_ne!(a.finish(), b.finish());
    }

    #[test]
    fn identity_rows_must_be_complete() {
        let good = [
            Some("7300000000000000001"),
            Some("1"),
            Some("false"),
            Some("0/1A2B3C4"),
            Some("750:750:"),
            Some("15.18"),
            Some("150018"),
            Some("exchange"),
            Some("solvency_reader"),
            Some("2026-11-25T06:00:00.000000Z"),
            Some("solvency_reader"),
            Some("16384"),
        ];
        let id = parse_identity(&good, [0xab; 32]).unwrap();
        assert_eq!((id.timeline, id.in_recovery, id.server_version_num), (1, false, 150018));
        assert_eq!(id.server_cert_sha256, "ab".repeat(32));
        let mut missing = good;
        missing[3] = None;
        assert!(parse_identity(&missing, [0; 32]).is_err());
        assert!(parse_identity(&good[..11], [0; 32]).is_err());
        let mut bad = good;
        bad[1] = Some("one");
        assert!(parse_identity(&bad, [0; 32]).is_err());
    }
}
