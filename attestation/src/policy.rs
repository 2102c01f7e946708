//! The verifier's policy file (TOML, `docs/policy.md`): what an auditor, a regulator or a user
//! decided to trust — the enclave image, the database and the read, the assets, how fresh a round
//! must be, which challenge and which round they expect. Parsing checks every value once, so the
//! verification itself never meets malformed hex.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What the verifier requires of a bundle.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BundlePolicy {
    /// Attestation requirements.
    #[serde(default)]
    pub attestation: AttestationRules,
    /// PCR index (decimal) to its required value (hex of 48 bytes); PCR0, 1 and 2 are required.
    pub pcrs: BTreeMap<String, String>,
    /// The database the auditor pinned.
    pub database: DatabasePins,
    /// Round requirements.
    #[serde(default)]
    pub round: RoundRules,
    /// The assets, in leaf order, with their decimals, when pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assets: Option<Vec<AssetPin>>,
    /// What the round's solvency statement must say.
    #[serde(default, skip_serializing_if = "SolvencyRules::is_default")]
    pub solvency: SolvencyRules,
    /// Per asset, where its reserves must come from and how fresh they must be, when pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserves: Option<Vec<ReservePin>>,
}

/// Solvency requirements.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SolvencyRules {
    /// Refuse the round (at step `solvency`) unless it states reserves ≥ liabilities for every
    /// asset.
    #[serde(default)]
    pub require_solvent: bool,
    /// The exchange the ownership signatures must name, when pinned: without it, one exchange
    /// could state another's name (and its challenge) to count its wallets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange: Option<String>,
    /// The oldest a chain's block may be at the AWS-signed attestation time, in seconds, when
    /// pinned (the statement's own gap is measured against the database's clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_block_age_secs: Option<u64>,
}

impl SolvencyRules {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// Where one asset's reserves must come from.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ReservePin {
    /// The asset's symbol.
    pub symbol: String,
    /// The chain ids its sources may be on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_ids: Option<Vec<u64>>,
    /// Exactly these Chainlink feeds (proxy addresses), when pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feeds: Option<Vec<String>>,
    /// Exactly these ERC-20 tokens, when pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Vec<String>>,
    /// The fewest endpoints that must have agreed on each chain's block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_agreeing: Option<u32>,
    /// The endpoint hosts (as in their URLs, without port) the verifier trusts to be independent:
    /// when pinned, at least `min_agreeing` distinct hosts of these must have agreed on each block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_hosts: Option<Vec<String>>,
    /// The oldest feed answer accepted at the block, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_feed_age_secs: Option<u64>,
    /// The largest distance between the database snapshot and each chain's block, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_block_gap_secs: Option<u64>,
}

/// Freshness and debug-mode rules.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AttestationRules {
    /// Accept debug-mode enclaves (all-zero PCR0/1/2). Never in production.
    #[serde(default)]
    pub allow_debug: bool,
    /// The oldest round accepted, in seconds before "now" (the AWS-signed attestation time);
    /// none: any age. Generated and example policies set it.
    #[serde(default)]
    pub max_age_secs: Option<u64>,
    /// How far in the future a document's timestamp may be.
    #[serde(default = "default_skew")]
    pub max_skew_secs: u64,
}

fn default_skew() -> u64 {
    300
}

impl Default for AttestationRules {
    fn default() -> Self {
        Self { allow_debug: false, max_age_secs: None, max_skew_secs: default_skew() }
    }
}

/// The database and the read the auditor pinned. The parent chooses the round configuration
/// the enclave runs, so everything about what was read that matters is pinned here.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DatabasePins {
    /// The cluster's system identifier (decimal).
    pub system_identifier: String,
    /// SHA-256 of the server certificate (hex).
    pub server_cert_sha256: String,
    /// The exact query the auditor approved, as the manifest records it (the configured query
    /// without a trailing semicolon): another query, view or filter is refused.
    pub query: String,
    /// The database name (`current_database()`): required, since a second database of the same
    /// cluster shares the system identifier, certificate, timeline and LSN.
    pub name: String,
    /// The role the enclave logged in and read as: required.
    pub role: String,
    /// The database's OID (`SELECT oid FROM pg_database WHERE datname = current_database()`),
    /// when pinned: a copy renamed into the pinned name has another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_oid: Option<u32>,
    /// The timeline, when pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<u32>,
    /// Accept a read from a hot standby (which may lag the primary); default: primaries only.
    #[serde(default)]
    pub allow_standby: bool,
    /// The lowest WAL position accepted (`X/Y` hex, as PostgreSQL prints it), so an old
    /// snapshot or a paused standby is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_lsn: Option<String>,
    /// The relations the query names, when pinned: exactly these, each with its OID and owner
    /// where given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relations: Option<Vec<RelationPin>>,
    /// The Amazon RDS instance, when pinned: the round must carry the identity the enclave read
    /// from the AWS API, and it must be this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rds: Option<RdsPins>,
}

/// A relation the query must name.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RelationPin {
    /// Its schema.
    pub schema: String,
    /// Its name.
    pub name: String,
    /// Its OID, when pinned (a table dropped and recreated under the name has another).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oid: Option<u32>,
    /// Its owner, when pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// The RDS instance a round must have read.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RdsPins {
    /// The AWS account that owns it (12 digits).
    pub account: String,
    /// Its `DbiResourceId` (`db-…`).
    pub dbi_resource_id: String,
    /// Its region, when pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// An asset and its decimals, pinned in leaf order.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AssetPin {
    /// The symbol.
    pub symbol: String,
    /// Decimal places of its base unit.
    pub decimals: u32,
}

/// Challenge and identity rules.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RoundRules {
    /// The challenge the verifier issued (hex); the round must carry exactly it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The challenge's deadline (ms since the Unix epoch): the round must be attested by then.
    /// The verifier sets it; the deadline in the manifest is only what the parent asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
    /// The verifying key's SHA-256 (hex), when pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verifying_key_sha256: Option<String>,
    /// The round configuration's SHA-256 (hex), when pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_sha256: Option<String>,
    /// The manifest digest (hex of 48 bytes) of the one round this verifier expects: the round
    /// an auditor accepted, or one listed in the exchange's published log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_digest: Option<String>,
}

/// A policy file that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("policy: {0}")]
pub struct PolicyFileError(pub(crate) String);

/// A policy with its hex decoded and its PCRs checked.
#[derive(Clone, Debug)]
pub(crate) struct Rules {
    pub(crate) pcrs: BTreeMap<u8, Vec<u8>>,
    pub(crate) nonce: Option<Vec<u8>>,
    pub(crate) verifying_key_sha256: Option<[u8; 32]>,
    pub(crate) config_sha256: Option<[u8; 32]>,
    pub(crate) manifest_digest: Option<[u8; 48]>,
    pub(crate) min_lsn: Option<u64>,
}

fn hex_field(name: &str, value: &str, len: Option<usize>) -> Result<Vec<u8>, PolicyFileError> {
    let bytes = hex::decode(value).map_err(|_| PolicyFileError(format!("{name}: not hex")))?;
    match len {
        Some(len) if bytes.len() != len => {
            Err(PolicyFileError(format!("{name}: {} bytes, expected {len}", bytes.len())))
        }
        _ => Ok(bytes),
    }
}

fn fixed_hex<const N: usize>(name: &str, value: &Option<String>) -> Result<Option<[u8; N]>, PolicyFileError> {
    value
        .as_deref()
        .map(|v| {
            let bytes = hex_field(name, v, Some(N))?;
            <[u8; N]>::try_from(bytes).map_err(|_| PolicyFileError(format!("{name}: expected {N} bytes")))
        })
        .transpose()
}

/// Keys that older policies had and this version refuses, each with what to do instead.
const MIGRATIONS: [(&str, &str, &str); 3] = [
    (
        "round",
        "min_round",
        "round.min_round was removed: round numbers are labels the parent chooses, not a defence \
         against replay. Use attestation.max_age_secs, round.nonce and database.min_lsn \
         (docs/policy.md#migrating-from-earlier-policies)",
    ),
    (
        "database",
        "name",
        "database.name is now required: pin current_database(), since a second database of the \
         same cluster shares everything else (docs/policy.md#migrating-from-earlier-policies)",
    ),
    (
        "database",
        "role",
        "database.role is now required: pin the role the enclave reads as \
         (docs/policy.md#migrating-from-earlier-policies)",
    ),
];

/// A policy written for an earlier version, named with the migration it needs.
fn migration_error(value: &toml::Value) -> Option<PolicyFileError> {
    for (table, key, message) in MIGRATIONS {
        let present = value.get(table).and_then(|t| t.get(key)).is_some();
        // min_round must be gone; name and role must be there.
        let outdated = if key == "min_round" { present } else { value.get(table).is_some() && !present };
        if outdated {
            return Some(PolicyFileError(message.to_owned()));
        }
    }
    None
}

impl BundlePolicy {
    /// Parses a policy from TOML text and checks it. A policy written for an earlier version is
    /// refused with the change it needs.
    pub fn from_toml(text: &str) -> Result<Self, PolicyFileError> {
        if let Some(error) = toml::from_str::<toml::Value>(text).ok().as_ref().and_then(migration_error) {
            return Err(error);
        }
        let policy: Self = toml::from_str(text).map_err(|e| PolicyFileError(e.to_string()))?;
        policy.rules()?;
        Ok(policy)
    }

    /// The policy as TOML.
    pub fn to_toml(&self) -> String {
        // Strings, integers, booleans and tables always serialise; qed.
        toml::to_string(self).unwrap_or_default()
    }

    pub(crate) fn rules(&self) -> Result<Rules, PolicyFileError> {
        let mut pcrs = BTreeMap::new();
        for (index, value) in &self.pcrs {
            let i: u8 = index
                .parse()
                .ok()
                .filter(|i| *i < 32)
                .ok_or_else(|| PolicyFileError(format!("pcrs: {index:?} is not a PCR index 0..31")))?;
            pcrs.insert(i, hex_field(&format!("pcrs.{i}"), value, Some(48))?);
        }
        if !(0..3).all(|i| pcrs.contains_key(&i)) {
            return Err(PolicyFileError("pcrs: PCR0, PCR1 and PCR2 must be pinned (the image that may run)".into()));
        }
        let db = &self.database;
        hex_field("database.server_cert_sha256", &db.server_cert_sha256, Some(32))?;
        if db.system_identifier.is_empty() || !db.system_identifier.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PolicyFileError("database.system_identifier: not a decimal number".into()));
        }
        for (field, value) in [("database.query", &db.query), ("database.name", &db.name), ("database.role", &db.role)]
        {
            if value.trim().is_empty() {
                return Err(PolicyFileError(format!("{field}: empty")));
            }
        }
        if let Some(relations) = &db.relations {
            if relations.is_empty() {
                return Err(PolicyFileError("database.relations: empty; omit it to pin none".into()));
            }
        }
        if let Some(rds) = &db.rds {
            if rds.account.len() != 12 || !rds.account.bytes().all(|b| b.is_ascii_digit()) {
                return Err(PolicyFileError("database.rds.account: not a 12-digit AWS account id".into()));
            }
            if rds.dbi_resource_id.trim().is_empty() {
                return Err(PolicyFileError("database.rds.dbi_resource_id: empty".into()));
            }
        }
        let nonce = self.round.nonce.as_deref().map(|n| hex_field("round.nonce", n, None)).transpose()?;
        if nonce.as_ref().is_some_and(Vec::is_empty) {
            return Err(PolicyFileError("round.nonce: empty; omit it when no challenge was issued".into()));
        }
        let min_lsn = match &db.min_lsn {
            Some(lsn) => Some(
                parse_lsn(lsn).ok_or_else(|| PolicyFileError(format!("database.min_lsn: {lsn:?} is not an LSN")))?,
            ),
            None => None,
        };
        if let Some(assets) = &self.assets {
            if assets.is_empty() {
                return Err(PolicyFileError("assets: empty; omit it to pin none".into()));
            }
        }
        for pin in self.reserves.iter().flatten() {
            for address in pin.feeds.iter().chain(&pin.tokens).flatten() {
                hex_field(&format!("reserves.{}: address", pin.symbol), address.trim_start_matches("0x"), Some(20))?;
            }
            if pin.min_agreeing == Some(0) {
                return Err(PolicyFileError(format!("reserves.{}.min_agreeing: 0 agrees with nothing", pin.symbol)));
            }
        }
        Ok(Rules {
            pcrs,
            nonce,
            verifying_key_sha256: fixed_hex("round.verifying_key_sha256", &self.round.verifying_key_sha256)?,
            config_sha256: fixed_hex("round.config_sha256", &self.round.config_sha256)?,
            manifest_digest: fixed_hex("round.manifest_digest", &self.round.manifest_digest)?,
            min_lsn,
        })
    }
}

/// Parses a PostgreSQL LSN (`X/Y`, hex halves) into its 64-bit position.
pub fn parse_lsn(text: &str) -> Option<u64> {
    let (high, low) = text.split_once('/')?;
    let valid = |h: &str| !h.is_empty() && h.len() <= 8 && h.bytes().all(|b| b.is_ascii_hexdigit());
    if !valid(high) || !valid(low) {
        return None;
    }
    Some((u64::from_str_radix(high, 16).ok()? << 32) | u64::from_str_radix(low, 16).ok()?)
}
