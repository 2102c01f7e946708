//! A reserves fixture for end-to-end tests and the demo: a private anvil with, per asset, one
//! reserve source holding a chosen amount (a Chainlink feed behind Chainlink's proxy, an owned
//! address's native balance, or an owned address's ERC-20 balance, in turn), reachable through
//! several TLS endpoints that can each be told to lie, and the round configuration and ownership
//! signatures an enclave needs to read it.

use std::fmt::Write as _;

use crate::chain::{Address, Anvil, ChainError, Feed, Lie, LyingRpc, Rpc};
use crate::tls_front::TlsFront;

/// The chain id of the fixture's chain.
pub const CHAIN_ID: u64 = 31_337;
/// The chain's name in the round configuration.
pub const CHAIN: &str = "devnet";
/// The exchange the ownership messages name.
pub const EXCHANGE: &str = "Demo Exchange";

/// An asset's reserves to put on the chain.
#[derive(Clone, Debug)]
pub struct ReserveAsset {
    /// The symbol.
    pub symbol: String,
    /// Decimals of its base unit.
    pub decimals: u32,
    /// The reserves in base units.
    pub reserves: u128,
    /// Whether the round configuration marks it private (its total hidden, spec §13).
    pub private: bool,
}

/// Where one asset's reserves are.
#[derive(Clone, Debug)]
pub enum Placed {
    /// A feed reporting them.
    Feed(Feed),
    /// An owned address's native balance (18 decimals).
    Native(Address),
    /// An owned address's balance of a token with the asset's decimals.
    Token {
        /// The token.
        token: Address,
        /// The owner.
        holder: Address,
    },
}

/// One endpoint: a relay that may lie, behind TLS.
pub struct Endpoint {
    /// The relay (switch its lie with [`LyingRpc::set`]).
    pub relay: LyingRpc,
    /// The TLS front clients connect to.
    pub front: TlsFront,
}

/// A running fixture; everything stops when it is dropped.
pub struct ReservesFixture {
    /// The node.
    pub anvil: Anvil,
    /// A client of the node itself.
    pub rpc: Rpc,
    /// The endpoints, in configuration order.
    pub endpoints: Vec<Endpoint>,
    /// Per asset, where its reserves are.
    pub placed: Vec<(ReserveAsset, Placed)>,
    min_agreeing: u32,
}

fn too_many(symbol: &str) -> ChainError {
    ChainError::Malformed { method: "fixture".into(), reason: format!("{symbol}: the amount does not fit the source") }
}

impl ReservesFixture {
    /// Starts anvil, places each asset's reserves, mines past them, and starts `endpoints` TLS
    /// endpoints of which `min_agreeing` must agree.
    pub async fn start(assets: &[ReserveAsset], endpoints: usize, min_agreeing: u32) -> Result<Self, ChainError> {
        let anvil = Anvil::start(CHAIN_ID)?;
        let rpc = anvil.rpc();
        let accounts = rpc.dev_accounts().await?;
        let mut placed = Vec::new();
        for (i, asset) in assets.iter().enumerate() {
            // Dev account 0 deploys; owners start at account 1.
            let owner = *accounts.get(1 + i % (accounts.len().max(2) - 1)).unwrap_or(&accounts[0]);
            let place = match i % 3 {
                0 => {
                    let answer = i128::try_from(asset.reserves).map_err(|_| too_many(&asset.symbol))?;
                    let decimals = u8::try_from(asset.decimals).map_err(|_| too_many(&asset.symbol))?;
                    Placed::Feed(rpc.deploy_feed(decimals, answer).await?)
                }
                1 => {
                    let scale = 10u128.checked_pow(18u32.saturating_sub(asset.decimals)).ok_or_else(|| too_many(&asset.symbol))?;
                    rpc.set_balance(owner, asset.reserves.checked_mul(scale).ok_or_else(|| too_many(&asset.symbol))?).await?;
                    Placed::Native(owner)
                }
                _ => {
                    let decimals = u8::try_from(asset.decimals).map_err(|_| too_many(&asset.symbol))?;
                    let token = rpc.deploy_token(decimals, owner, asset.reserves).await?;
                    Placed::Token { token, holder: owner }
                }
            };
            placed.push((asset.clone(), place));
        }
        rpc.mine(3).await?;
        let mut fronts = Vec::new();
        for _ in 0..endpoints {
            let relay = LyingRpc::start(anvil.addr(), Lie::Honest).await?;
            let front = TlsFront::start(relay.addr(), &["localhost".to_owned()])
                .await
                .map_err(|e| ChainError::Io { what: "starting a TLS front".into(), source: std::io::Error::other(e) })?;
            fronts.push(Endpoint { relay, front });
        }
        Ok(Self { anvil, rpc, endpoints: fronts, placed, min_agreeing })
    }

    /// `localhost:PORT` of each endpoint, for the parent's proxy allowlist.
    pub fn destinations(&self) -> Vec<String> {
        self.endpoints.iter().map(|e| format!("localhost:{}", e.front.addr().port())).collect()
    }

    /// The owned addresses, with the chain they are on.
    pub fn owners(&self) -> Vec<Address> {
        self.placed
            .iter()
            .filter_map(|(_, p)| match p {
                Placed::Native(a) | Placed::Token { holder: a, .. } => Some(*a),
                Placed::Feed(_) => None,
            })
            .collect()
    }

    /// The round configuration's `[solvency]`, `[[chains]]` and `[[reserves]]`, the endpoints
    /// pinned by certificate, the ownership signatures read from `ownership_file`.
    pub fn round_config(&self, ownership_file: &str) -> String {
        let endpoints: Vec<String> = self
            .endpoints
            .iter()
            .map(|e| format!("{{ url = \"https://localhost:{}/\", server_cert_sha256 = \"{}\" }}", e.front.addr().port(), e.front.cert_sha256()))
            .collect();
        let mut toml = format!(
            "\n[solvency]\nexchange = \"{EXCHANGE}\"\nmax_block_gap_secs = 3600\nownership_signatures = \"{ownership_file}\"\n\n\
             [[chains]]\nname = \"{CHAIN}\"\nchain_id = {CHAIN_ID}\nendpoints = [{}]\nmin_agreeing = {}\nblock = \"latest-2\"\ntimeout_secs = 20\n",
            endpoints.join(", "),
            self.min_agreeing
        );
        for (asset, place) in &self.placed {
            let source = match place {
                Placed::Feed(feed) => format!(
                    "{{ kind = \"chainlink\", chain = \"{CHAIN}\", feed = \"{}\", decimals = {}, heartbeat_secs = 86400, grace_secs = 3600 }}",
                    feed.proxy, asset.decimals
                ),
                Placed::Native(owner) => format!("{{ kind = \"native\", chain = \"{CHAIN}\", addresses = [\"{owner}\"] }}"),
                Placed::Token { token, holder } => format!(
                    "{{ kind = \"erc20\", chain = \"{CHAIN}\", token = \"{token}\", decimals = {}, addresses = [\"{holder}\"] }}",
                    asset.decimals
                ),
            };
            let private = if asset.private { "private = true\n" } else { "" };
            let _ = write!(toml, "\n[[reserves]]\nasset = \"{}\"\n{private}sources = [{source}]\n", asset.symbol);
        }
        toml
    }

    /// The ownership signatures file for a round with `challenge`: each owner signs the message
    /// `attestation::reserves::ownership::message` with anvil's dev key.
    pub async fn ownership_json(&self, challenge: &[u8]) -> Result<String, ChainError> {
        let mut entries = Vec::new();
        for owner in self.owners() {
            let message = attestation::reserves::ownership::message(
                EXCHANGE,
                CHAIN_ID,
                alloy_primitives::Address::from(owner.0),
                challenge,
            );
            let signature = self.rpc.personal_sign(owner, message.as_bytes()).await?;
            entries.push(serde_json::json!({
                "chain": CHAIN,
                "address": owner.to_string(),
                "signature": format!("0x{}", hex::encode(signature)),
            }));
        }
        Ok(serde_json::to_string_pretty(&serde_json::json!({ "signatures": entries })).unwrap_or_default())
    }
}
