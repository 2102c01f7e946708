//! What an enclave attests: the round manifest (which database and snapshot it read, with which
//! configuration, what it proved) and the setup manifest (which Groth16 keys it generated). Each
//! is one canonical CBOR map; the attestation document's `user_data` is a domain-separated
//! SHA-384 of its bytes ([`Manifest::digest`], [`SetupManifest::digest`]), so the AWS signature
//! covers every field. `docs/bundle-format.md` specifies both.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha384};

use crate::cbor::{encode, CanonicalError};
use crate::reserves::statement::Solvency;

/// The `format` value of a version-1 round manifest (still verified; no longer made).
pub const MANIFEST_FORMAT_V1: &str = "solvency-enclave/manifest/v1";
/// The `format` value of a version-2 round manifest: v1 plus the guards of the read (relations,
/// database OID, session role, RDS identity).
pub const MANIFEST_FORMAT_V2: &str = "solvency-enclave/manifest/v2";
/// The `format` value of a version-3 round manifest: v2 plus the solvency statement (reserves
/// read from chains, per-asset verdicts). A new version rather than an optional v2 field, so a
/// verifier that predates reserves says "unknown format" instead of a misleading decode error,
/// and a v3 manifest without its statement is malformed rather than silently a v2 one.
pub const MANIFEST_FORMAT_V3: &str = "solvency-enclave/manifest/v3";
/// The `format` value of a version-1 setup manifest.
pub const SETUP_FORMAT_V1: &str = "solvency-enclave/setup/v1";
/// The `format` of a version-2 setup manifest: the keys include the solvency opening's (spec §13).
pub const SETUP_FORMAT_V2: &str = "solvency-enclave/setup/v2";
/// Largest manifest accepted: the solvency statement lists every owned address and its balance.
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;

/// Why manifest bytes were refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    /// Larger than [`MAX_MANIFEST_BYTES`].
    #[error("{size} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Not CBOR of the manifest's structure.
    #[error("malformed CBOR: {0}")]
    Cbor(String),
    /// Valid, but not the canonical encoding of its values.
    #[error("not canonically encoded")]
    NonCanonical,
    /// Another format.
    #[error("unknown format {0:?}")]
    UnknownFormat(String),
    /// A field a version requires is missing, or one it does not have is present.
    #[error("{format}: {field} {problem}")]
    Field {
        /// The manifest's format.
        format: &'static str,
        /// The field.
        field: &'static str,
        /// "is missing" or "is not part of this version".
        problem: &'static str,
    },
    /// A hash field of the wrong length.
    #[error("{field}: expected {expected} bytes, found {actual}")]
    BadLength {
        /// The field.
        field: &'static str,
        /// Required length.
        expected: usize,
        /// Found length.
        actual: usize,
    },
}

/// Which PostgreSQL cluster was read and at which point of its history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseIdentity {
    /// `pg_control_system().system_identifier`: unique per cluster (`initdb`), shared by its
    /// physical replicas. Decimal, since it exceeds JSON's safe integers.
    pub system_identifier: String,
    /// The timeline of the latest checkpoint (changes on promotion or point-in-time recovery).
    pub timeline: u32,
    /// Whether the server is a standby.
    pub in_recovery: bool,
    /// `pg_current_wal_lsn()` on a primary, `pg_last_wal_replay_lsn()` on a standby.
    pub lsn: String,
    /// `pg_current_snapshot()`: the transaction snapshot the rows were read in.
    pub snapshot: String,
    /// `server_version`.
    pub server_version: String,
    /// `server_version_num`.
    pub server_version_num: u32,
    /// `current_database()`.
    pub database: String,
    /// `current_user`.
    pub role: String,
    /// The server's clock when the snapshot was taken, UTC, RFC 3339.
    pub server_time: String,
    /// SHA-256 of the server certificate presented in the TLS handshake, hex.
    pub server_cert_sha256: String,
    /// `session_user`: the role that logged in (v2). The enclave refuses a session whose
    /// `current_user` differs from it (a role default of `SET role` would switch readers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_role: Option<String>,
    /// The OID of the database read, from `pg_database` (v2). A database copied with
    /// `CREATE DATABASE … TEMPLATE` and renamed into place keeps the name but not the OID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_oid: Option<u32>,
    /// The relations the query reads, as resolved in `pg_catalog` in the read's snapshot (v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relations: Option<Vec<Relation>>,
    /// The RDS instance the server is, as the AWS API reported it to the enclave (v2, when the
    /// round configuration names one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rds: Option<RdsIdentity>,
}

/// One relation the configured query reads, checked in `pg_catalog` before any row was read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Relation {
    /// Its schema (`pg_namespace.nspname`).
    pub schema: String,
    /// Its name (`pg_class.relname`).
    pub name: String,
    /// `pg_class.oid`.
    pub oid: u32,
    /// [`RelationKind`]'s name: `table`, `partitioned-table`, `inheritance-parent`, or for a
    /// relation read through one of those, `partition` or `inheritance-child`.
    pub kind: String,
    /// The owning role (`pg_class.relowner`).
    pub owner: String,
    /// Whether the query names it (false: read through a named partitioned or inheritance parent).
    pub named: bool,
}

/// What kind of relation a read may go through, and how the manifest names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelationKind {
    /// An ordinary table with no children.
    Table,
    /// A partitioned table (its partitions are read and recorded too).
    PartitionedTable,
    /// An ordinary table with inheritance children (read too, and recorded).
    InheritanceParent,
    /// A partition read through its partitioned table.
    Partition,
    /// A child read through its inheritance parent.
    InheritanceChild,
}

impl RelationKind {
    /// The name the manifest records.
    pub fn name(self) -> &'static str {
        match self {
            Self::Table => "table",
            Self::PartitionedTable => "partitioned-table",
            Self::InheritanceParent => "inheritance-parent",
            Self::Partition => "partition",
            Self::InheritanceChild => "inheritance-child",
        }
    }
}

/// An Amazon RDS / Aurora instance's identity, read by the enclave from the AWS API over TLS it
/// terminated itself. `dbi_resource_id` is immutable for the life of an instance: a snapshot
/// restored into a new instance, or another instance renamed into the old one's name, has another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RdsIdentity {
    /// The AWS region of the API endpoint.
    pub region: String,
    /// The AWS account that owns the instance (from its ARN).
    pub account: String,
    /// `DBInstanceIdentifier` (the instance's name; renamable).
    pub instance_id: String,
    /// `DbiResourceId` (immutable).
    pub dbi_resource_id: String,
    /// `DBInstanceArn`.
    pub arn: String,
    /// `Endpoint/Address`: the host name the enclave connected to and verified.
    pub endpoint: String,
    /// `InstanceCreateTime`, as AWS reports it.
    pub created: String,
    /// The API endpoint's host name the answer came from.
    pub api_host: String,
}

/// One asset of the round and its published total.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetTotal {
    /// The symbol, as in the liabilities bundle.
    pub symbol: String,
    /// Decimal places of one whole unit (display only; totals are in base units).
    pub decimals: u32,
    /// The total in base units, decimal; `"hidden"` for a private asset of a version-3 round,
    /// whose total only the solvency opening bounds (spec §13).
    pub total: String,
}

/// Everything a proving round attests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT_V2`] ([`MANIFEST_FORMAT_V1`] for rounds made before it).
    pub format: String,
    /// The round number: a label the parent chose. It is neither unique nor increasing as far as
    /// any verifier can tell (a restarted enclave accepts any number); rounds are identified by
    /// their manifest digest ([`Manifest::digest`]), and freshness comes from the attestation's
    /// timestamp, the auditor's nonce and the LSN.
    pub round: u64,
    /// The liabilities bundle's random round id.
    #[serde(with = "serde_bytes")]
    pub round_id: Vec<u8>,
    /// The enclave program's version.
    pub software_version: String,
    /// When the enclave accepted the round (ms since the Unix epoch, enclave clock).
    pub started_ms: u64,
    /// When proving finished.
    pub finished_ms: u64,
    /// The auditor's challenge (empty when none was issued).
    #[serde(with = "serde_bytes")]
    pub nonce: Vec<u8>,
    /// The challenge's deadline (0 when none).
    pub deadline_ms: u64,
    /// SHA-256 of the round configuration text the enclave ran with.
    #[serde(with = "serde_bytes")]
    pub config_sha256: Vec<u8>,
    /// The database and snapshot read.
    pub database: DatabaseIdentity,
    /// The exact query run.
    pub query: String,
    /// Rows read.
    pub rows: u64,
    /// SHA-256 over the canonical encoding of the rows read (`docs/database-read.md`), hex.
    pub rows_sha256: String,
    /// Assets in leaf order, with their totals.
    pub assets: Vec<AssetTotal>,
    /// Accounts in the tree.
    pub leaf_count: u64,
    /// Accounts per batch proof.
    pub batch_size: u64,
    /// The liabilities tree root (32 bytes, little-endian field element).
    #[serde(with = "serde_bytes")]
    pub root: Vec<u8>,
    /// SHA-256 of the liabilities bundle's bytes (which hold the proofs and the verifying key).
    #[serde(with = "serde_bytes")]
    pub liabilities_sha256: Vec<u8>,
    /// SHA-256 over the batch proofs' compressed bytes, in batch order.
    #[serde(with = "serde_bytes")]
    pub proofs_sha256: Vec<u8>,
    /// SHA-256 of the Groth16 verifying key (compressed).
    #[serde(with = "serde_bytes")]
    pub verifying_key_sha256: Vec<u8>,
    /// SHA-256 of the setup manifest whose keys proved this round.
    #[serde(with = "serde_bytes")]
    pub setup_sha256: Vec<u8>,
    /// The solvency statement (v3 only): reserves per asset from chain state, and the verdicts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solvency: Option<Solvency>,
}

/// What an attested setup round produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetupManifest {
    /// [`SETUP_FORMAT_V1`].
    pub format: String,
    /// Accounts per batch the keys prove.
    pub batch_size: u64,
    /// Assets per account.
    pub assets: u64,
    /// SHA-256 of the proving-keys file exactly as the enclave wrote it.
    #[serde(with = "serde_bytes")]
    pub proving_keys_sha256: Vec<u8>,
    /// SHA-256 of the verifying key (compressed).
    #[serde(with = "serde_bytes")]
    pub verifying_key_sha256: Vec<u8>,
    /// The enclave program's version.
    pub software_version: String,
    /// When the keys were made (ms since the Unix epoch).
    pub created_ms: u64,
    /// Version 2: SHA-256 of the solvency opening's verifying key (compressed), made in the same
    /// setup; private-mode rounds need it.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_bytes")]
    pub opening_verifying_key_sha256: Option<Vec<u8>>,
}

fn decode_canonical<T: Serialize + DeserializeOwned>(bytes: &[u8]) -> Result<T, ManifestError> {
    crate::cbor::decode_canonical(bytes, MAX_MANIFEST_BYTES).map_err(|e| match e {
        CanonicalError::TooLarge { size, limit } => ManifestError::TooLarge { size, limit },
        CanonicalError::Cbor(detail) => ManifestError::Cbor(detail),
        CanonicalError::NonCanonical => ManifestError::NonCanonical,
    })
}

fn check_len(field: &'static str, bytes: &[u8], expected: usize) -> Result<(), ManifestError> {
    if bytes.len() == expected {
        Ok(())
    } else {
        Err(ManifestError::BadLength { field, expected, actual: bytes.len() })
    }
}

fn domain_digest(domain: &str, bytes: &[u8]) -> [u8; 48] {
    Sha384::new().chain_update(domain.as_bytes()).chain_update([0]).chain_update(bytes).finalize().into()
}

impl Manifest {
    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes canonical manifest bytes (v1 or v2) and checks the fixed-length fields and that
    /// the fields of its version, and only those, are present.
    pub fn decode(bytes: &[u8]) -> Result<Self, ManifestError> {
        let m: Self = decode_canonical(bytes)?;
        let (format, version) = match m.format.as_str() {
            MANIFEST_FORMAT_V1 => (MANIFEST_FORMAT_V1, 1),
            MANIFEST_FORMAT_V2 => (MANIFEST_FORMAT_V2, 2),
            MANIFEST_FORMAT_V3 => (MANIFEST_FORMAT_V3, 3),
            _ => return Err(ManifestError::UnknownFormat(m.format)),
        };
        let db = &m.database;
        // (field, present, the first version that has it, whether that version requires it)
        for (field, present, since, required) in [
            ("database.session_role", db.session_role.is_some(), 2, true),
            ("database.database_oid", db.database_oid.is_some(), 2, true),
            ("database.relations", db.relations.is_some(), 2, true),
            ("database.rds", db.rds.is_some(), 2, false),
            ("solvency", m.solvency.is_some(), 3, true),
        ] {
            if present && version < since {
                return Err(ManifestError::Field { format, field, problem: "is not part of this version" });
            }
            if !present && version >= since && required {
                return Err(ManifestError::Field { format, field, problem: "is missing" });
            }
        }
        if let Some(solvency) = &m.solvency {
            check_len("solvency.evidence_sha256", &solvency.evidence_sha256, 32)?;
            for chain in &solvency.chains {
                check_len("solvency.chains.hash", &chain.hash, 32)?;
            }
        }
        check_len("round_id", &m.round_id, 32)?;
        check_len("config_sha256", &m.config_sha256, 32)?;
        check_len("root", &m.root, 32)?;
        for (field, bytes) in [
            ("liabilities_sha256", &m.liabilities_sha256),
            ("proofs_sha256", &m.proofs_sha256),
            ("verifying_key_sha256", &m.verifying_key_sha256),
            ("setup_sha256", &m.setup_sha256),
        ] {
            check_len(field, bytes, 32)?;
        }
        Ok(m)
    }

    /// Whether this manifest records the read's guards (version 2 or later).
    pub fn is_v2(&self) -> bool {
        self.format == MANIFEST_FORMAT_V2 || self.format == MANIFEST_FORMAT_V3
    }

    /// The manifest's version: 1, 2 or 3 (0 for a format [`Manifest::decode`] refuses).
    pub fn version(&self) -> u8 {
        match self.format.as_str() {
            MANIFEST_FORMAT_V1 => 1,
            MANIFEST_FORMAT_V2 => 2,
            MANIFEST_FORMAT_V3 => 3,
            _ => 0,
        }
    }

    /// The manifest digest, which identifies a round and is the attestation document's
    /// `user_data`: `SHA-384("solvency-enclave/manifest/v1" ‖ 0x00 ‖ bytes)`. The domain stays
    /// v1's for every version: the format inside the bytes already separates versions, and one
    /// digest rule lets a published log list rounds of either version.
    pub fn digest(bytes: &[u8]) -> [u8; 48] {
        domain_digest(MANIFEST_FORMAT_V1, bytes)
    }
}

impl SetupManifest {
    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes canonical setup-manifest bytes and checks the fixed-length fields.
    pub fn decode(bytes: &[u8]) -> Result<Self, ManifestError> {
        let m: Self = decode_canonical(bytes)?;
        let field = "opening_verifying_key_sha256";
        match (m.format.as_str(), &m.opening_verifying_key_sha256) {
            (SETUP_FORMAT_V1, None) => {}
            (SETUP_FORMAT_V2, Some(opening)) => check_len(field, opening, 32)?,
            (SETUP_FORMAT_V1, Some(_)) => {
                return Err(ManifestError::Field { format: SETUP_FORMAT_V1, field, problem: "is not part of this version" });
            }
            (SETUP_FORMAT_V2, None) => {
                return Err(ManifestError::Field { format: SETUP_FORMAT_V2, field, problem: "is missing" });
            }
            _ => return Err(ManifestError::UnknownFormat(m.format)),
        }
        check_len("proving_keys_sha256", &m.proving_keys_sha256, 32)?;
        check_len("verifying_key_sha256", &m.verifying_key_sha256, 32)?;
        Ok(m)
    }

    /// The setup attestation's `user_data`: `SHA-384("solvency-enclave/setup/v1" ‖ 0x00 ‖ bytes)`
    /// (the same domain in both versions: the bytes name their own format).
    pub fn digest(bytes: &[u8]) -> [u8; 48] {
        domain_digest(SETUP_FORMAT_V1, bytes)
    }
}

/// SHA-256 over the batch proofs' bytes in order: the manifest's `proofs_sha256`.
pub fn proofs_sha256<'a>(proofs: impl IntoIterator<Item = &'a [u8]>) -> [u8; 32] {
    use sha2::Sha256;
    let mut h = Sha256::new();
    for p in proofs {
        h.update(p);
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> SetupManifest {
        SetupManifest {
            format: SETUP_FORMAT_V1.into(),
            batch_size: 8,
            assets: 2,
            proving_keys_sha256: vec![1; 32],
            verifying_key_sha256: vec![2; 32],
            software_version: "0.1.0".into(),
            created_ms: 1_700_000_000_000,
            opening_verifying_key_sha256: None,
        }
    }

    #[test]
    fn setup_manifest_version_2_carries_the_opening_key_hash_and_only_it_does() {
        let v2 = SetupManifest {
            format: SETUP_FORMAT_V2.into(),
            opening_verifying_key_sha256: Some(vec![3; 32]),
            ..setup()
        };
        assert_eq!(SetupManifest::decode(&v2.encode()).unwrap(), v2);
        let missing = SetupManifest { opening_verifying_key_sha256: None, ..v2.clone() };
        assert!(matches!(SetupManifest::decode(&missing.encode()), Err(ManifestError::Field { problem: "is missing", .. })));
        let extra = SetupManifest { format: SETUP_FORMAT_V1.into(), ..v2.clone() };
        assert!(matches!(
            SetupManifest::decode(&extra.encode()),
            Err(ManifestError::Field { problem: "is not part of this version", .. })
        ));
        let short = SetupManifest { opening_verifying_key_sha256: Some(vec![3; 31]), ..v2 };
        assert!(matches!(SetupManifest::decode(&short.encode()), Err(ManifestError::BadLength { .. })));
    }

    #[test]
    fn setup_manifests_round_trip_and_only_canonically() {
        let bytes = setup().encode();
        assert_eq!(SetupManifest::decode(&bytes).unwrap(), setup());
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(SetupManifest::decode(&trailing), Err(ManifestError::NonCanonical));
        assert!(matches!(SetupManifest::decode(&bytes[..bytes.len() - 1]), Err(ManifestError::Cbor(_))));
        let mut short = setup();
        short.verifying_key_sha256.pop();
        assert!(matches!(SetupManifest::decode(&short.encode()), Err(ManifestError::BadLength { .. })));
        let mut other = setup();
        other.format = MANIFEST_FORMAT_V1.into();
        assert!(matches!(SetupManifest::decode(&other.encode()), Err(ManifestError::UnknownFormat(_))));
    }

    #[test]
    fn digests_are_domain_separated() {
        let bytes = setup().encode();
        assert_ne!(SetupManifest::digest(&bytes), Manifest::digest(&bytes));
        let mut expected = Sha384::new();
        expected.update(b"solvency-enclave/setup/v1\0");
        expected.update(&bytes);
        assert_eq!(SetupManifest::digest(&bytes).as_slice(), expected.finalize().as_slice());
    }
}
