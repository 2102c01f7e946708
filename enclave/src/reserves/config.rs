//! The reserves part of the round configuration: `[solvency]`, the chains with their JSON-RPC
//! endpoints and block rule, and each asset's sources. `docs/reserves.md` documents it; its
//! examples are parsed by this module's tests.

use std::collections::BTreeSet;
use std::str::FromStr;

use alloy_primitives::Address;
use serde::Deserialize;

use crate::tls::ServerPin;

/// Why the reserves configuration is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{place}: {problem}")]
pub struct ReservesConfigError {
    /// Where (`chains.ethereum.endpoints[1]`, `reserves.BTC.sources[0]`, …).
    pub place: String,
    /// What is wrong.
    pub problem: String,
}

fn error(place: impl Into<String>, problem: impl Into<String>) -> ReservesConfigError {
    ReservesConfigError { place: place.into(), problem: problem.into() }
}

/// `[solvency]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SolvencyConfig {
    /// The exchange's name, as the ownership messages name it.
    pub exchange: String,
    /// The largest distance allowed between the database snapshot and each chain's block.
    pub max_block_gap_secs: u64,
    /// The file of ownership signatures (JSON, `docs/reserves.md#ownership-signatures`), read by
    /// the parent and handed to the enclave with the round, or read directly by
    /// `check-reserves`. Relative to the configuration file.
    #[serde(default)]
    pub ownership_signatures: Option<std::path::PathBuf>,
}

/// `[[chains]]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ChainConfig {
    /// A name the sources refer to.
    pub name: String,
    /// The chain id every endpoint must report.
    pub chain_id: u64,
    /// The JSON-RPC endpoints.
    pub endpoints: Vec<EndpointConfig>,
    /// How many endpoints must report the chosen block with the same hash.
    pub min_agreeing: u32,
    /// `finalized`, or `latest-N` for N confirmations.
    pub block: String,
    /// Seconds allowed for each request.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_timeout() -> u64 {
    30
}

/// One JSON-RPC endpoint.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// `https://host[:port][/path]`; no credentials in it (they would be attested and published).
    pub url: String,
    /// SHA-256 (hex) of the endpoint's certificate; without it the certificate must chain to the
    /// Mozilla roots compiled into the image.
    #[serde(default)]
    pub server_cert_sha256: Option<String>,
}

/// The block rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockRule {
    /// The `finalized` block tag.
    Finalized,
    /// `latest` minus this many confirmations.
    Confirmations(u64),
}

/// `[[reserves]]`: one asset's sources.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AssetReserves {
    /// The asset's symbol: one of `[[assets]]`.
    pub asset: String,
    /// Its sources; the reserves are their sum.
    pub sources: Vec<SourceConfig>,
    /// Private mode (spec §13): the liabilities total is not published; the round proves it at
    /// most the reserves instead. An asset whose reserves fall short is published all the same,
    /// since no proof of the contrary exists and the round never hides a bad result.
    #[serde(default)]
    pub private: bool,
}

/// A reserve source.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "lowercase")]
pub enum SourceConfig {
    /// A Chainlink Proof of Reserve feed.
    Chainlink {
        /// The chain's name.
        chain: String,
        /// The feed's proxy address (`AggregatorV3Interface`).
        feed: String,
        /// The decimals the feed must report.
        decimals: u32,
        /// The feed's heartbeat.
        heartbeat_secs: u64,
        /// Extra age allowed past the heartbeat.
        #[serde(default)]
        grace_secs: u64,
        /// An L2 sequencer-uptime feed that must report the sequencer up.
        #[serde(default)]
        sequencer_feed: Option<String>,
        /// How long after the sequencer came back its feeds are trusted.
        #[serde(default)]
        sequencer_grace_secs: Option<u64>,
    },
    /// Native-coin balances.
    Native {
        /// The chain's name.
        chain: String,
        /// The owned addresses (the coin has 18 decimals: `attestation::reserves::NATIVE_DECIMALS`).
        addresses: Vec<String>,
    },
    /// ERC-20 balances.
    Erc20 {
        /// The chain's name.
        chain: String,
        /// The token.
        token: String,
        /// The decimals the token must report.
        decimals: u32,
        /// The owned addresses.
        addresses: Vec<String>,
    },
}

/// The reserves configuration of a round, checked.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct ReservesConfig {
    /// `[solvency]`; required when there are chains or reserves.
    #[serde(default)]
    pub solvency: Option<SolvencyConfig>,
    /// `[[chains]]`.
    #[serde(default)]
    pub chains: Vec<ChainConfig>,
    /// `[[reserves]]`.
    #[serde(default)]
    pub reserves: Vec<AssetReserves>,
}

impl ChainConfig {
    /// The block rule.
    pub fn rule(&self) -> Result<BlockRule, ReservesConfigError> {
        if self.block == "finalized" {
            return Ok(BlockRule::Finalized);
        }
        self.block
            .strip_prefix("latest-")
            .and_then(|n| n.parse().ok())
            .map(BlockRule::Confirmations)
            .ok_or_else(|| error(format!("chains.{}.block", self.name), "must be \"finalized\" or \"latest-N\""))
    }
}

impl EndpointConfig {
    /// Host, port and path of the URL.
    pub fn target(&self) -> Result<(String, u16, String), String> {
        let uri = http::Uri::from_str(&self.url).map_err(|e| format!("not a URL: {e}"))?;
        if uri.scheme_str() != Some("https") {
            return Err("must be https://".into());
        }
        let authority = uri.authority().ok_or("has no host")?;
        if authority.as_str().contains('@') {
            return Err("must not carry credentials".into());
        }
        let path = uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "/".into());
        Ok((authority.host().to_owned(), authority.port_u16().unwrap_or(443), path))
    }

    /// How the endpoint's certificate is checked.
    pub fn pin(&self) -> Result<ServerPin, String> {
        match &self.server_cert_sha256 {
            Some(hex_pin) => {
                let mut pin = [0u8; 32];
                hex::decode_to_slice(hex_pin.trim(), &mut pin).map_err(|_| "server_cert_sha256: not 64 hex digits")?;
                Ok(ServerPin::Sha256(pin))
            }
            None => Ok(ServerPin::WebPki),
        }
    }
}

/// An address as configured: hex, any case (a mixed-case one must carry a valid EIP-55 checksum).
pub fn parse_address(text: &str) -> Result<Address, String> {
    let hex = text.strip_prefix("0x").ok_or("must start with 0x")?;
    let mixed = hex.bytes().any(|b| b.is_ascii_lowercase()) && hex.bytes().any(|b| b.is_ascii_uppercase());
    let address = Address::from_str(text).map_err(|e| e.to_string())?;
    if mixed && address.to_checksum(None) != text {
        return Err("mixed case with a wrong EIP-55 checksum".into());
    }
    Ok(address)
}

impl ReservesConfig {
    /// Whether the round reads reserves at all.
    pub fn is_enabled(&self) -> bool {
        self.solvency.is_some() || !self.chains.is_empty() || !self.reserves.is_empty()
    }

    /// Checks the configuration against the liabilities assets (symbol, decimals).
    pub fn check(&self, assets: &[(String, u32)]) -> Result<(), ReservesConfigError> {
        if !self.is_enabled() {
            return Ok(());
        }
        let solvency = self.solvency.as_ref().ok_or_else(|| error("solvency", "missing: [[chains]] and [[reserves]] need it"))?;
        if !attestation::reserves::ownership::is_valid_exchange_name(&solvency.exchange) {
            return Err(error("solvency.exchange", "empty, or has control characters (it is part of a signed message)"));
        }
        let mut names = BTreeSet::new();
        let mut chain_ids = BTreeSet::new();
        for chain in &self.chains {
            let place = format!("chains.{}", chain.name);
            if !names.insert(chain.name.as_str()) {
                return Err(error(place, "listed twice"));
            }
            if !chain_ids.insert(chain.chain_id) {
                return Err(error(
                    format!("{place}.chain_id"),
                    format!("chain id {} is listed under two names, which would count its reserves twice", chain.chain_id),
                ));
            }
            if let BlockRule::Confirmations(n) = chain.rule()? {
                if n > attestation::reserves::MAX_CONFIRMATIONS {
                    return Err(error(
                        format!("{place}.block"),
                        format!("at most latest-{}: an old block may show funds since moved", attestation::reserves::MAX_CONFIRMATIONS),
                    ));
                }
            }
            if chain.endpoints.is_empty() {
                return Err(error(place, "no endpoints"));
            }
            if !attestation::reserves::is_majority(chain.min_agreeing, chain.endpoints.len()) {
                return Err(error(
                    format!("{place}.min_agreeing"),
                    format!(
                        "must be more than half of the {} endpoints and at most all of them, so the agreeing ones cannot be outvoted",
                        chain.endpoints.len()
                    ),
                ));
            }
            let mut urls = BTreeSet::new();
            for (i, endpoint) in chain.endpoints.iter().enumerate() {
                let place = format!("{place}.endpoints[{i}]");
                endpoint.target().map_err(|p| error(&place, p))?;
                endpoint.pin().map_err(|p| error(&place, p))?;
                if !urls.insert(endpoint.url.as_str()) {
                    return Err(error(place, "the same URL twice would count as two agreeing endpoints"));
                }
            }
        }
        for (symbol, _) in assets {
            if !self.reserves.iter().any(|r| &r.asset == symbol) {
                return Err(error(format!("reserves.{symbol}"), "the asset has no reserves configured"));
            }
        }
        let mut seen = BTreeSet::new();
        for asset in &self.reserves {
            let place = format!("reserves.{}", asset.asset);
            if !assets.iter().any(|(s, _)| s == &asset.asset) {
                return Err(error(place, "not one of the round's [[assets]]"));
            }
            if !seen.insert(("asset".to_owned(), asset.asset.clone(), None, None)) {
                return Err(error(place, "listed twice"));
            }
            if asset.sources.is_empty() {
                return Err(error(place, "no sources"));
            }
            for (i, source) in asset.sources.iter().enumerate() {
                let place = format!("{place}.sources[{i}]");
                let chain = source.chain();
                if !names.contains(chain) {
                    return Err(error(format!("{place}.chain"), format!("{chain:?} is not one of [[chains]]")));
                }
                let (kind, contract, addresses) = match source {
                    SourceConfig::Chainlink { feed, sequencer_feed, .. } => {
                        if let Some(s) = sequencer_feed {
                            parse_address(s).map_err(|p| error(format!("{place}.sequencer_feed"), p))?;
                        }
                        ("chainlink", Some(feed), &[][..])
                    }
                    SourceConfig::Native { addresses, .. } => ("native", None, &addresses[..]),
                    SourceConfig::Erc20 { token, addresses, .. } => ("erc20", Some(token), &addresses[..]),
                };
                let contract = contract
                    .map(|c| parse_address(c).map_err(|p| error(format!("{place}.{}", if kind == "erc20" { "token" } else { "feed" }), p)))
                    .transpose()?;
                if kind != "chainlink" && addresses.is_empty() {
                    return Err(error(format!("{place}.addresses"), "empty"));
                }
                if kind == "chainlink" && !seen.insert((kind.to_owned(), chain.to_owned(), contract, None)) {
                    return Err(error(place, "the feed is listed twice"));
                }
                for address in addresses {
                    let parsed = parse_address(address).map_err(|p| error(format!("{place}.addresses"), format!("{address}: {p}")))?;
                    if !seen.insert((kind.to_owned(), chain.to_owned(), contract, Some(parsed))) {
                        return Err(error(format!("{place}.addresses"), format!("{address} is listed twice")));
                    }
                }
            }
        }
        Ok(())
    }

    /// The chain a name refers to.
    pub fn chain(&self, name: &str) -> Option<&ChainConfig> {
        self.chains.iter().find(|c| c.name == name)
    }
}

impl SourceConfig {
    /// The chain's name.
    pub fn chain(&self) -> &str {
        match self {
            Self::Chainlink { chain, .. } | Self::Native { chain, .. } | Self::Erc20 { chain, .. } => chain,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn documented() -> String {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/reserves.md")).unwrap();
        doc.split("```toml\n").nth(1).and_then(|rest| rest.split("```").next()).unwrap().to_owned()
    }

    fn assets() -> Vec<(String, u32)> {
        vec![("BTC".into(), 8), ("ETH".into(), 18), ("USDC".into(), 6)]
    }

    #[test]
    fn the_documented_example_parses_and_checks() {
        let config: ReservesConfig = toml::from_str(&documented()).unwrap();
        config.check(&assets()).unwrap();
        assert_eq!(config.chains.len(), 2);
        assert_eq!(config.chains[0].rule().unwrap(), BlockRule::Finalized);
        assert_eq!(config.chains[1].rule().unwrap(), BlockRule::Confirmations(64));
        assert!(matches!(config.chains[0].endpoints[2].pin().unwrap(), ServerPin::Sha256(_)));
        assert_eq!(config.chains[0].endpoints[0].pin().unwrap(), ServerPin::WebPki);
        assert_eq!(config.chains[0].endpoints[2].target().unwrap(), ("node.internal.example".into(), 8545, "/".into()));
        assert!(matches!(&config.reserves[1].sources[0], SourceConfig::Native { .. }));
    }

    #[test]
    fn bad_reserve_configurations_are_refused_by_place() {
        let text = documented();
        let refused = |text: &str, assets: &[(String, u32)]| {
            let config: ReservesConfig = toml::from_str(text).unwrap();
            match config.check(assets) {
                Err(e) => e.to_string(),
                Ok(()) => panic!("accepted:\n{text}"),
            }
        };
        let mut more = assets();
        more.push(("SOL".into(), 9));
        assert_eq!(refused(&text, &more), "reserves.SOL: the asset has no reserves configured");
        assert_eq!(refused(&text, &assets()[..2]), "reserves.USDC: not one of the round's [[assets]]");
        let twice = text.replace("0x3333333333333333333333333333333333333333", "0x2222222222222222222222222222222222222222");
        assert!(refused(&twice, &assets()).contains("is listed twice"));
        let unknown_chain = text.replacen("chain = \"base\"", "chain = \"solana\"", 1);
        assert!(refused(&unknown_chain, &assets()).contains("\"solana\" is not one of [[chains]]"));
        let quorum = text.replacen("min_agreeing = 2", "min_agreeing = 4", 1);
        assert!(refused(&quorum, &assets()).starts_with("chains.ethereum.min_agreeing"));
        // 1 of 3: the two that disagree could agree on another block among themselves.
        let minority = text.replacen("min_agreeing = 2", "min_agreeing = 1", 1);
        assert!(refused(&minority, &assets()).contains("more than half of the 3 endpoints"));
        let same_chain = text.replace("chain_id = 8453", "chain_id = 1");
        assert!(refused(&same_chain, &assets()).contains("chain id 1 is listed under two names"));
        let old = text.replace("block = \"latest-64\"", "block = \"latest-100800\"");
        assert!(refused(&old, &assets()).contains("at most latest-1000"));
        let newline = text.replacen("exchange = \"Example Exchange\"", "exchange = \"Example\\nExchange\"", 1);
        assert!(refused(&newline, &assets()).contains("control characters"), "{newline}");
        let native_decimals = text.replace("kind = \"native\", chain = \"ethereum\",", "kind = \"native\", chain = \"ethereum\", decimals = 0,");
        assert!(toml::from_str::<ReservesConfig>(&native_decimals).is_err(), "native coins have 18 decimals, not configurable");
        let http = text.replace("https://rpc-a.example.net/", "http://rpc-a.example.net/");
        assert!(refused(&http, &assets()).contains("must be https://"));
        let credentials = text.replace("https://rpc-a.example.net/", "https://user:key@rpc-a.example.net/");
        assert!(refused(&credentials, &assets()).contains("credentials"));
        let same_url = text.replace("https://rpc-b.example.org/", "https://rpc-a.example.net/");
        assert!(refused(&same_url, &assets()).contains("the same URL twice"));
        let rule = text.replace("block = \"finalized\"", "block = \"safe\"");
        assert!(refused(&rule, &assets()).contains("\"finalized\" or \"latest-N\""));
        let checksum = text.replace("0x2260FAC5E5542a773Aa44fBCfeDf7C193bc2C599", "0x2260FAC5E5542a773Aa44fBCfeDf7C193bc2C598");
        assert!(refused(&checksum, &assets()).contains("reserves.BTC.sources[1].token"));
        let feed_twice = text.replace("0x4444444444444444444444444444444444444444", "0x1111111111111111111111111111111111111111").replace("chain = \"base\", feed", "chain = \"ethereum\", feed");
        assert!(refused(&feed_twice, &assets()).contains("the feed is listed twice"));
        let no_solvency = text.split("[[chains]]").skip(1).map(|s| format!("[[chains]]{s}")).collect::<String>();
        assert!(refused(&no_solvency, &assets()).starts_with("solvency: missing"));
        assert!(toml::from_str::<ReservesConfig>(&text.replace("kind = \"native\"", "kind = \"solana\"")).is_err());
    }
}
