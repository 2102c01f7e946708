//! The solvency statement a version-3 round manifest carries: which chains' blocks the enclave
//! read and which endpoints agreed on them, each asset's reserve sources and figures, its
//! liabilities, and the verdict. Every figure follows from the reserves evidence
//! ([`super::evidence`]) by [`super::evaluate`], which the enclave and the verifier both run.

use serde::{Deserialize, Serialize};

/// The manifest's `solvency` field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Solvency {
    /// The exchange's name as the ownership messages carry it.
    pub exchange: String,
    /// SHA-256 of the reserves evidence the bundle carries (32 bytes).
    #[serde(with = "serde_bytes")]
    pub evidence_sha256: Vec<u8>,
    /// When the database snapshot was taken (ms since the Unix epoch, the server's clock).
    pub snapshot_ms: u64,
    /// The largest distance allowed between the snapshot and any chain's block, in seconds.
    pub max_block_gap_secs: u64,
    /// The chains read, in configuration order.
    pub chains: Vec<ChainBlock>,
    /// Each asset's statement, in the manifest's asset order.
    pub assets: Vec<AssetSolvency>,
}

/// The block a chain's figures were read at, and how it was chosen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainBlock {
    /// The configured name (`ethereum`, `base`, …).
    pub name: String,
    /// The chain id every agreeing endpoint reported (`eth_chainId`).
    pub chain_id: u64,
    /// The block rule: `finalized`, or `latest-N` (N confirmations).
    pub rule: String,
    /// How many endpoints had to report this block with this hash.
    pub min_agreeing: u32,
    /// The block number.
    pub number: u64,
    /// The block hash (32 bytes): Keccak-256 of the header in the evidence.
    #[serde(with = "serde_bytes")]
    pub hash: Vec<u8>,
    /// The block's timestamp (seconds since the Unix epoch).
    pub timestamp: u64,
    /// What each configured endpoint answered.
    pub endpoints: Vec<EndpointReport>,
}

/// One JSON-RPC endpoint's part in choosing a block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointReport {
    /// The endpoint's URL (no credentials: they are refused in configuration).
    pub url: String,
    /// SHA-256 of the certificate it presented (hex), when the handshake completed.
    pub cert_sha256: Option<String>,
    /// Whether the configuration pinned the certificate by hash (`server_cert_sha256`) rather
    /// than validating it and the host name against the Mozilla roots in the image.
    pub cert_pinned: bool,
    /// The block number it reported under the rule.
    pub number: Option<u64>,
    /// The hash it reported for that block.
    #[serde(default, with = "serde_bytes", skip_serializing_if = "Option::is_none")]
    pub hash: Option<Vec<u8>>,
    /// Whether it reported the chosen block's hash at the chosen number.
    pub agreed: bool,
    /// Why it did not take part, if it did not.
    pub error: Option<String>,
}

/// One asset: liabilities, reserves by source, verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetSolvency {
    /// The asset's symbol (one of the manifest's assets).
    pub symbol: String,
    /// Decimal places of one whole unit (figures are in base units).
    pub decimals: u32,
    /// The liabilities total in base units, decimal: the manifest's total for the asset.
    pub liabilities: String,
    /// The reserves in base units, decimal: the sum of the sources' amounts.
    pub reserves: String,
    /// Whether some source's conversion to base units rounded down.
    pub rounded_down: bool,
    /// reserves ≥ liabilities.
    pub solvent: bool,
    /// The sources, in configuration order.
    pub sources: Vec<SourceFigure>,
}

/// A reserve source as configured, and what it came to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceFigure {
    /// `chainlink`, `native` or `erc20`.
    pub kind: String,
    /// The chain's configured name.
    pub chain: String,
    /// The feed proxy (`chainlink`) or token (`erc20`) address, EIP-55.
    pub contract: Option<String>,
    /// The owned addresses (`native`, `erc20`), EIP-55, in configuration order.
    pub addresses: Vec<String>,
    /// The decimals the source's raw figure is in (the feed's or the token's; 18 for a native
    /// balance unless configured).
    pub source_decimals: u32,
    /// Chainlink only: the largest age of the answer accepted (heartbeat + grace), seconds.
    pub max_age_secs: Option<u64>,
    /// Chainlink only: the L2 sequencer-uptime feed that must report the sequencer up.
    pub sequencer_feed: Option<String>,
    /// Chainlink only: how long after the sequencer came up its feeds are trusted, seconds.
    pub sequencer_grace_secs: Option<u64>,
    /// The raw figure in the source's decimals, decimal.
    pub raw: String,
    /// The figure in the asset's base units, decimal.
    pub amount: String,
    /// Whether converting `raw` to base units dropped a remainder.
    pub rounded_down: bool,
    /// Chainlink only: the round the feed reported.
    pub feed_round: Option<FeedRound>,
    /// Per address (`native`, `erc20`): its balance in the source's decimals, decimal.
    pub balances: Vec<String>,
}

/// What `latestRoundData()` returned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedRound {
    /// `roundId`, decimal.
    pub round_id: String,
    /// `answer`, decimal.
    pub answer: String,
    /// `startedAt` (seconds).
    pub started_at: u64,
    /// `updatedAt` (seconds).
    pub updated_at: u64,
    /// `answeredInRound`, decimal.
    pub answered_in_round: String,
}

/// The source kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    /// A Chainlink Proof of Reserve feed (`AggregatorV3Interface`).
    Chainlink,
    /// Native-coin balances of owned addresses.
    Native,
    /// ERC-20 balances of owned addresses.
    Erc20,
}

impl SourceKind {
    /// Parses the manifest's `kind`.
    pub fn parse(kind: &str) -> Option<Self> {
        match kind {
            "chainlink" => Some(Self::Chainlink),
            "native" => Some(Self::Native),
            "erc20" => Some(Self::Erc20),
            _ => None,
        }
    }

    /// The manifest's `kind`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Chainlink => "chainlink",
            Self::Native => "native",
            Self::Erc20 => "erc20",
        }
    }
}

impl SourceFigure {
    /// A source with its configuration filled in and no figures yet.
    pub fn configured(kind: SourceKind, chain: &str) -> Self {
        Self {
            kind: kind.name().into(),
            chain: chain.into(),
            contract: None,
            addresses: Vec::new(),
            source_decimals: 0,
            max_age_secs: None,
            sequencer_feed: None,
            sequencer_grace_secs: None,
            raw: String::new(),
            amount: String::new(),
            rounded_down: false,
            feed_round: None,
            balances: Vec::new(),
        }
    }

    /// A label naming the source in errors and reports: `chainlink feed 0x… on ethereum`.
    pub fn label(&self) -> String {
        match (self.kind.as_str(), &self.contract) {
            ("chainlink", Some(feed)) => format!("chainlink feed {feed} on {}", self.chain),
            ("erc20", Some(token)) => format!("erc20 token {token} on {}", self.chain),
            (kind, _) => format!("{kind} balances on {}", self.chain),
        }
    }
}
