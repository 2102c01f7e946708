//! Reading the reserves: for each chain, the block at least `min_agreeing` endpoints report with
//! the same hash (its header re-hashed here); then the proofs of every account and slot the
//! sources need, fetched from an agreeing endpoint and checked by running the sources'
//! evaluation ([`attestation::reserves::evaluate`]) until it needs nothing more. A lying endpoint
//! can withhold, never falsify: whatever it returns must follow from the agreed header.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use alloy_primitives::{Address, Bytes, B256, U256};
use alloy_trie::{EMPTY_ROOT_HASH, KECCAK_EMPTY};
use attestation::reserves::call::{balance_of, CALLER, DECIMALS, LATEST_ROUND_DATA};
use attestation::reserves::evidence::{AccountEvidence, AccountState, ChainEvidence, OwnershipSignature, ReservesEvidence, SlotEvidence};
use attestation::reserves::statement::{ChainBlock, EndpointReport, AssetSolvency, Solvency, SourceFigure, SourceKind};
use attestation::reserves::{Missing, ReservesError};
use serde_json::json;

use super::config::{parse_address, BlockRule, ChainConfig, ReservesConfig, SourceConfig};
use super::rpc::Endpoint;
use crate::net::Route;

/// How many rounds of "run, find what is missing, fetch it" a read may take.
const MAX_FETCH_ROUNDS: usize = 256;

/// Why the reserves could not be read. Each names the chain, source or field at fault.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The configuration.
    #[error(transparent)]
    Config(#[from] super::config::ReservesConfigError),
    /// The ownership signatures file.
    #[error("ownership signatures: {0}")]
    Signatures(String),
    /// No block could be agreed on, or no agreeing endpoint would supply the state.
    #[error("chain {chain}: {detail}")]
    Chain {
        /// The chain.
        chain: String,
        /// What happened, with each endpoint's part.
        detail: String,
    },
    /// The evidence read does not give figures (a stale feed, a missing signature, …).
    #[error(transparent)]
    Reserves(#[from] ReservesError),
}

/// The liabilities side of one asset, as the round proved it.
#[derive(Clone, Debug)]
pub struct Liability {
    /// The symbol.
    pub symbol: String,
    /// Decimals of its base unit.
    pub decimals: u32,
    /// The total in base units.
    pub total: u128,
}

/// Each asset's liabilities total from the ledger read, in leaf order.
pub fn liabilities(config: &crate::db::config::RoundConfig, ledger: &crate::ledger::Ledger) -> Vec<Liability> {
    config
        .assets
        .iter()
        .zip(ledger.totals())
        .map(|(a, total)| Liability { symbol: a.symbol.clone(), decimals: a.decimals, total })
        .collect()
}

/// The database snapshot's time (`server_time`, RFC 3339) in ms since the Unix epoch.
pub fn snapshot_ms(server_time: &str) -> Result<u64, String> {
    let time = time::OffsetDateTime::parse(server_time, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("the snapshot time {server_time:?}: {e}"))?;
    u64::try_from(time.unix_timestamp_nanos() / 1_000_000).map_err(|_| "the snapshot time is before 1970".into())
}

/// Parses an ownership signatures file: `{"signatures": [{"chain", "address", "signature"}]}`,
/// addresses and signatures in 0x-hex.
pub fn parse_signatures(text: &str) -> Result<Vec<OwnershipSignature>, ReadError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        signatures: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Entry {
        chain: String,
        address: String,
        signature: String,
    }
    let file: File = serde_json::from_str(text).map_err(|e| ReadError::Signatures(e.to_string()))?;
    file.signatures
        .into_iter()
        .map(|e| {
            let address = parse_address(&e.address).map_err(|p| ReadError::Signatures(format!("{}: {p}", e.address)))?;
            let signature = hex::decode(e.signature.trim_start_matches("0x"))
                .ok()
                .filter(|s| (1..=attestation::reserves::ownership::MAX_SIGNATURE_BYTES).contains(&s.len()))
                .ok_or_else(|| {
                    ReadError::Signatures(format!(
                        "{}: the signature is not hex of 65 bytes (a key's) or up to {} (a contract wallet's)",
                        e.address,
                        attestation::reserves::ownership::MAX_SIGNATURE_BYTES
                    ))
                })?;
            Ok(OwnershipSignature { chain: e.chain, address: address.to_vec(), signature })
        })
        .collect()
}

/// Longest endpoint error kept in the statement: an endpoint's words are attested and published,
/// so a hostile one must not be able to swell the manifest past what verifiers accept.
const MAX_ERROR_BYTES: usize = 200;

fn bounded(mut text: String) -> String {
    if text.len() > MAX_ERROR_BYTES {
        let mut end = MAX_ERROR_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// What a round's reserves read yields: the statement and the evidence behind it.
pub struct Reserves {
    /// The statement for the manifest.
    pub solvency: Solvency,
    /// The evidence for the bundle.
    pub evidence: ReservesEvidence,
    /// Its canonical encoding, the bytes the statement's `evidence_sha256` names.
    pub evidence_bytes: Vec<u8>,
}

impl Reserves {
    /// Applies private mode: every asset configured `private` whose reserves cover its
    /// liabilities gets its liabilities stated as hidden. Returns, per asset in round order, the
    /// bound its hidden total is proven against (its reserves, clamped), or `None` where the total
    /// is published: not private, or short (a short asset is never hidden).
    pub fn hide_private_totals(&mut self, config: &ReservesConfig) -> Vec<Option<u128>> {
        self.solvency
            .assets
            .iter_mut()
            .map(|asset| {
                let private = config.reserves.iter().any(|r| r.asset == asset.symbol && r.private);
                let reserves = U256::from_str_radix(&asset.reserves, 10).ok()?;
                if !private || !asset.solvent {
                    return None;
                }
                asset.liabilities = attestation::bundle::HIDDEN.to_owned();
                Some(attestation::opening::reserves_bound(reserves))
            })
            .collect()
    }
}

/// Reads the reserves of every asset, as configured, along `route`.
pub async fn read(
    config: &ReservesConfig,
    liabilities: &[Liability],
    challenge: &[u8],
    snapshot_ms: u64,
    signatures: Vec<OwnershipSignature>,
    route: &Route,
) -> Result<Reserves, ReadError> {
    config.check(&liabilities.iter().map(|l| (l.symbol.clone(), l.decimals)).collect::<Vec<_>>())?;
    let solvency_config = config.solvency.as_ref().ok_or_else(|| ReadError::Signatures("no [solvency]".into()))?;
    let mut configured = Solvency {
        exchange: solvency_config.exchange.clone(),
        evidence_sha256: vec![0; 32],
        snapshot_ms,
        max_block_gap_secs: solvency_config.max_block_gap_secs,
        chains: Vec::new(),
        assets: liabilities.iter().map(|l| configured_asset(config, l)).collect::<Result<_, _>>()?,
    };
    let mut chains = Vec::new();
    for chain in &config.chains {
        let (block, header_rlp, endpoints) = choose_block(chain, route).await?;
        configured.chains.push(block);
        let state_root = <alloy_consensus::Header as alloy_rlp::Decodable>::decode(&mut header_rlp.as_slice())
            .map(|h| h.state_root)
            .map_err(|e| ReadError::Chain { chain: chain.name.clone(), detail: format!("the agreed header: {e}") })?;
        chains.push(ChainRead {
            name: chain.name.clone(),
            header: header_rlp,
            state_root,
            endpoints,
            wanted: BTreeMap::new(),
            accounts: BTreeMap::new(),
        });
    }
    let wanted_signatures: BTreeSet<(String, Vec<u8>)> = configured
        .assets
        .iter()
        .flat_map(|a| &a.sources)
        .flat_map(|s| s.addresses.iter().filter_map(|a| parse_address(a).ok()).map(|a| (s.chain.clone(), a.to_vec())))
        .collect();
    let mut evidence = ReservesEvidence::new();
    evidence.ownership =
        signatures.into_iter().filter(|s| wanted_signatures.contains(&(s.chain.clone(), s.address.clone()))).collect();
    evidence.ownership.sort_by(|a, b| (&a.chain, &a.address).cmp(&(&b.chain, &b.address)));

    for (read, block) in chains.iter_mut().zip(&configured.chains) {
        read.prefetch(&configured, block).await?;
    }
    for _ in 0..MAX_FETCH_ROUNDS {
        evidence.chains = chains.iter().map(ChainRead::evidence).collect();
        match attestation::reserves::evaluate(&configured, challenge, &evidence) {
            Ok(mut solvency) => {
                let evidence_bytes = evidence.encode();
                solvency.evidence_sha256 = ReservesEvidence::sha256(&evidence_bytes).to_vec();
                return Ok(Reserves { solvency, evidence, evidence_bytes });
            }
            Err(ReservesError::Unproven { chain, missing }) => {
                let read = chains.iter_mut().find(|c| c.name == chain).ok_or_else(|| ReadError::Chain {
                    chain: chain.clone(),
                    detail: "unknown chain".into(),
                })?;
                let block = configured.chains.iter().find(|b| b.name == chain).map(|b| b.number).unwrap_or_default();
                read.fetch_missing(missing, block).await?;
            }
            Err(other) => return Err(other.into()),
        }
    }
    Err(ReadError::Chain { chain: "*".into(), detail: format!("the calls still need state after {MAX_FETCH_ROUNDS} rounds") })
}

fn configured_asset(config: &ReservesConfig, liability: &Liability) -> Result<AssetSolvency, ReadError> {
    let asset = config.reserves.iter().find(|r| r.asset == liability.symbol).ok_or_else(|| {
        super::config::ReservesConfigError { place: format!("reserves.{}", liability.symbol), problem: "the asset has no reserves configured".into() }
    })?;
    let checksum = |text: &str| parse_address(text).map(|a| a.to_checksum(None)).unwrap_or_else(|_| text.to_owned());
    let sources = asset
        .sources
        .iter()
        .map(|source| match source {
            SourceConfig::Chainlink { chain, feed, decimals, heartbeat_secs, grace_secs, sequencer_feed, sequencer_grace_secs } => {
                let mut figure = SourceFigure::configured(SourceKind::Chainlink, chain);
                figure.contract = Some(checksum(feed));
                figure.source_decimals = *decimals;
                figure.max_age_secs = Some(heartbeat_secs.saturating_add(*grace_secs));
                figure.sequencer_feed = sequencer_feed.as_deref().map(checksum);
                figure.sequencer_grace_secs = sequencer_feed.as_ref().map(|_| sequencer_grace_secs.unwrap_or(0));
                figure
            }
            SourceConfig::Native { chain, addresses } => {
                let mut figure = SourceFigure::configured(SourceKind::Native, chain);
                figure.addresses = addresses.iter().map(|a| checksum(a)).collect();
                figure.source_decimals = attestation::reserves::NATIVE_DECIMALS;
                figure
            }
            SourceConfig::Erc20 { chain, token, decimals, addresses } => {
                let mut figure = SourceFigure::configured(SourceKind::Erc20, chain);
                figure.contract = Some(checksum(token));
                figure.addresses = addresses.iter().map(|a| checksum(a)).collect();
                figure.source_decimals = *decimals;
                figure
            }
        })
        .collect();
    Ok(AssetSolvency {
        symbol: liability.symbol.clone(),
        decimals: liability.decimals,
        liabilities: liability.total.to_string(),
        reserves: String::new(),
        rounded_down: false,
        solvent: false,
        sources,
    })
}

/// Asks every endpoint for its block under the rule, takes the highest number at least
/// `min_agreeing` endpoints have reached, and asks them all for that block's header: the block is
/// chosen when `min_agreeing` endpoints return headers that hash to the same hash.
async fn choose_block(chain: &ChainConfig, route: &Route) -> Result<(ChainBlock, Vec<u8>, Vec<Endpoint>), ReadError> {
    let rule = chain.rule()?;
    let timeout = Duration::from_secs(chain.timeout_secs);
    let mut endpoints = Vec::new();
    for config in &chain.endpoints {
        endpoints.push(Endpoint::new(config, route, timeout).map_err(|e| ReadError::Chain { chain: chain.name.clone(), detail: e.to_string() })?);
    }
    let heads = futures_util::future::join_all(endpoints.iter_mut().map(|e| head(e, chain.chain_id, rule))).await;
    let mut reports: Vec<EndpointReport> = endpoints
        .iter()
        .zip(&heads)
        .map(|(e, head)| EndpointReport {
            url: e.url.clone(),
            cert_sha256: e.cert_sha256.map(hex::encode),
            cert_pinned: e.is_pinned(),
            number: head.as_ref().ok().copied(),
            hash: None,
            agreed: false,
            error: head.as_ref().err().map(|e| bounded(e.to_string())),
        })
        .collect();
    let mut numbers: Vec<u64> = heads.iter().filter_map(|h| h.as_ref().ok().copied()).collect();
    numbers.sort_unstable_by(|a, b| b.cmp(a));
    let k = chain.min_agreeing as usize;
    let summary = |reports: &[EndpointReport]| {
        reports
            .iter()
            .map(|r| match (&r.error, r.number, &r.hash) {
                (Some(e), _, _) => format!("{}: {e}", r.url),
                (None, Some(n), Some(h)) => format!("{}: block {n} {}", r.url, B256::from_slice(h)),
                (None, n, _) => format!("{}: block {n:?}", r.url),
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    let Some(&target) = numbers.get(k.saturating_sub(1)) else {
        return Err(ReadError::Chain {
            chain: chain.name.clone(),
            detail: format!("{} of {} endpoints answered, {k} must agree ({})", numbers.len(), endpoints.len(), summary(&reports)),
        });
    };
    let headers = futures_util::future::join_all(
        endpoints.iter_mut().zip(&reports).map(|(e, r)| header_at(e, target, r.number.is_some_and(|n| n >= target))),
    )
    .await;
    // Per reported hash: how many endpoints reported it, the header's RLP and its timestamp.
    type Reported = (usize, Vec<u8>, u64);
    let mut by_hash: BTreeMap<B256, Reported> = BTreeMap::new();
    for (report, header) in reports.iter_mut().zip(headers) {
        match header {
            Ok(Some((hash, rlp, timestamp))) => {
                report.number = Some(target);
                report.hash = Some(hash.to_vec());
                by_hash.entry(hash).or_insert((0, rlp, timestamp)).0 += 1;
            }
            Ok(None) => {}
            Err(e) => report.error = Some(bounded(e)),
        }
    }
    let agreed: Vec<(&B256, &Reported)> = by_hash.iter().filter(|(_, (n, _, _))| *n >= k).collect();
    let [(hash, (_, rlp, timestamp))] = agreed[..] else {
        return Err(ReadError::Chain {
            chain: chain.name.clone(),
            detail: format!("no single hash of block {target} is reported by {k} endpoints ({})", summary(&reports)),
        });
    };
    for (report, endpoint) in reports.iter_mut().zip(&endpoints) {
        report.agreed = report.hash.as_deref() == Some(hash.as_slice());
        report.cert_sha256 = endpoint.cert_sha256.map(hex::encode);
    }
    // The endpoints that agreed supply the state, in configuration order.
    let agreeing: Vec<Endpoint> = endpoints.into_iter().zip(&reports).filter(|(_, r)| r.agreed).map(|(e, _)| e).collect();
    let block = ChainBlock {
        name: chain.name.clone(),
        chain_id: chain.chain_id,
        rule: chain.block.clone(),
        min_agreeing: chain.min_agreeing,
        number: target,
        hash: hash.to_vec(),
        timestamp: *timestamp,
        endpoints: reports,
    };
    Ok((block, rlp.clone(), agreeing))
}

async fn head(endpoint: &mut Endpoint, chain_id: u64, rule: BlockRule) -> Result<u64, String> {
    let reported = endpoint.chain_id().await.map_err(|e| e.to_string())?;
    if reported != chain_id {
        return Err(format!("chain id {reported}, not {chain_id}"));
    }
    match rule {
        BlockRule::Finalized => endpoint.header(json!("finalized")).await.map(|h| h.inner.number).map_err(|e| e.to_string()),
        BlockRule::Confirmations(n) => {
            let latest = endpoint.block_number().await.map_err(|e| e.to_string())?;
            latest.checked_sub(n).ok_or_else(|| format!("block {latest} has fewer than {n} confirmations"))
        }
    }
}

/// The header at `number` with its locally computed hash, RLP and timestamp; `None` when the
/// endpoint is not asked (it has not reached the block).
async fn header_at(endpoint: &mut Endpoint, number: u64, ask: bool) -> Result<Option<(B256, Vec<u8>, u64)>, String> {
    if !ask {
        return Ok(None);
    }
    let header = endpoint.header(json!(format!("{number:#x}"))).await.map_err(|e| e.to_string())?;
    let rlp = alloy_rlp::encode(&header.inner);
    let hash = alloy_primitives::keccak256(&rlp);
    if hash != header.hash {
        return Err(format!("its header for block {number} hashes to {hash}, not to the {} it claims", header.hash));
    }
    if header.inner.number != number {
        return Err(format!("asked for block {number}, it answered block {}", header.inner.number));
    }
    Ok(Some((hash, rlp, header.inner.timestamp)))
}

/// What is asked of an endpoint.
enum Fetch {
    AccessLists(Vec<(Address, Vec<u8>)>),
    Proofs(Vec<(Address, Vec<B256>)>),
}

/// What it answered.
enum Fetched {
    AccessLists(Vec<Vec<(Address, Vec<B256>)>>),
    Accounts(Vec<AccountEvidence>),
}

/// The proofs of `requests` from `endpoint`, with the code of every contract among them, each
/// checked against `state_root`: an endpoint that lies about one is not used for any.
async fn accounts(
    endpoint: &mut Endpoint,
    requests: &[(Address, Vec<B256>)],
    block: u64,
    chain: &str,
    state_root: B256,
    known: &BTreeMap<Address, AccountEvidence>,
) -> Result<Vec<AccountEvidence>, String> {
    let proofs = endpoint.proofs(requests, block).await.map_err(|e| e.to_string())?;
    let mut accounts = Vec::with_capacity(proofs.len());
    let mut need_code = Vec::new();
    for ((address, slots), proof) in requests.iter().zip(proofs) {
        if proof.address != *address {
            return Err(format!("asked for the proof of {address}, got {}", proof.address));
        }
        // Withholding a slot's proof is refusing to serve: the next endpoint is asked instead.
        if let Some(slot) = slots.iter().find(|slot| !proof.storage_proof.iter().any(|s| s.key.as_b256() == **slot)) {
            return Err(format!("the proof of {address} leaves out slot {slot}"));
        }
        let absent = proof.nonce == 0
            && proof.balance.is_zero()
            && (proof.code_hash == KECCAK_EMPTY || proof.code_hash.is_zero())
            && (proof.storage_hash == EMPTY_ROOT_HASH || proof.storage_hash.is_zero());
        if !absent && proof.code_hash != KECCAK_EMPTY {
            need_code.push((accounts.len(), *address));
        }
        let nodes = |proof: &[Bytes]| proof.iter().map(|n| serde_bytes::ByteBuf::from(n.to_vec())).collect();
        accounts.push(AccountEvidence {
            address: address.to_vec(),
            state: (!absent).then(|| AccountState {
                nonce: proof.nonce,
                balance: proof.balance.to_be_bytes::<32>().to_vec(),
                storage_root: proof.storage_hash.to_vec(),
                code_hash: proof.code_hash.to_vec(),
            }),
            proof: nodes(&proof.account_proof),
            code: known.get(address).and_then(|a| a.code.clone()),
            storage: proof
                .storage_proof
                .iter()
                .map(|s| SlotEvidence {
                    key: s.key.as_b256().to_vec(),
                    value: s.value.to_be_bytes::<32>().to_vec(),
                    proof: nodes(&s.proof),
                })
                .collect(),
        });
    }
    need_code.retain(|(i, _)| accounts.get(*i).is_some_and(|a| a.code.is_none()));
    if !need_code.is_empty() {
        let addresses: Vec<Address> = need_code.iter().map(|(_, a)| *a).collect();
        let codes = endpoint.code(&addresses, block).await.map_err(|e| e.to_string())?;
        for ((i, _), code) in need_code.iter().zip(codes) {
            if let Some(account) = accounts.get_mut(*i) {
                account.code = Some(code.to_vec());
            }
        }
    }
    for account in &accounts {
        attestation::reserves::state::prove_account(chain, state_root, account).map_err(|e| e.to_string())?;
    }
    Ok(accounts)
}

/// One chain's evidence as it is gathered.
struct ChainRead {
    name: String,
    header: Vec<u8>,
    /// The agreed header's state root, which every fetched proof must reach.
    state_root: B256,
    endpoints: Vec<Endpoint>,
    /// Accounts to prove, with the slots to prove in each.
    wanted: BTreeMap<Address, BTreeSet<B256>>,
    /// What has been fetched.
    accounts: BTreeMap<Address, AccountEvidence>,
}

impl ChainRead {
    fn evidence(&self) -> ChainEvidence {
        ChainEvidence { name: self.name.clone(), header: self.header.clone(), accounts: self.accounts.values().cloned().collect() }
    }

    /// Fetches, from the first agreeing endpoint that answers, what the sources are known to need:
    /// the caller, every owned address, every contract, and what the calls' access lists name.
    async fn prefetch(&mut self, solvency: &Solvency, block: &ChainBlock) -> Result<(), ReadError> {
        let mut calls: Vec<(Address, Vec<u8>)> = Vec::new();
        self.wanted.entry(CALLER).or_default();
        for source in solvency.assets.iter().flat_map(|a| &a.sources).filter(|s| s.chain == self.name) {
            let contract = source.contract.as_deref().and_then(|c| parse_address(c).ok());
            let addresses: Vec<Address> = source.addresses.iter().filter_map(|a| parse_address(a).ok()).collect();
            match (SourceKind::parse(&source.kind), contract) {
                (Some(SourceKind::Chainlink), Some(feed)) => {
                    calls.push((feed, DECIMALS.to_vec()));
                    calls.push((feed, LATEST_ROUND_DATA.to_vec()));
                    if let Some(sequencer) = source.sequencer_feed.as_deref().and_then(|s| parse_address(s).ok()) {
                        calls.push((sequencer, LATEST_ROUND_DATA.to_vec()));
                    }
                }
                (Some(SourceKind::Erc20), Some(token)) => {
                    calls.push((token, DECIMALS.to_vec()));
                    calls.extend(addresses.iter().map(|a| (token, balance_of(*a))));
                }
                _ => {
                    for address in addresses {
                        self.wanted.entry(address).or_default();
                    }
                }
            }
        }
        for (to, _) in &calls {
            self.wanted.entry(*to).or_default();
        }
        let Fetched::AccessLists(lists) = self.with_endpoint(Fetch::AccessLists(calls), block.number).await? else {
            return Err(self.stuck(&Missing::Account(CALLER)));
        };
        for (address, slots) in lists.into_iter().flatten() {
            self.wanted.entry(address).or_default().extend(slots);
        }
        let all: Vec<Address> = self.wanted.keys().copied().collect();
        self.fetch(&all, block.number).await
    }

    /// Fetches the proofs (and code) of `addresses` with every slot wanted of them. An endpoint
    /// whose proofs do not reach the agreed state root is passed over for the next.
    async fn fetch(&mut self, addresses: &[Address], block: u64) -> Result<(), ReadError> {
        let requests: Vec<(Address, Vec<B256>)> = addresses
            .iter()
            .map(|a| (*a, self.wanted.get(a).map(|s| s.iter().copied().collect()).unwrap_or_default()))
            .collect();
        let Fetched::Accounts(accounts) = self.with_endpoint(Fetch::Proofs(requests), block).await? else {
            return Err(self.stuck(&Missing::Account(CALLER)));
        };
        for account in accounts {
            if let Ok(address) = Address::try_from(account.address.as_slice()) {
                self.accounts.insert(address, account);
            }
        }
        Ok(())
    }

    async fn fetch_missing(&mut self, missing: Missing, block: u64) -> Result<(), ReadError> {
        let address = match missing {
            Missing::Account(address) => {
                if self.accounts.contains_key(&address) {
                    return Err(self.stuck(&missing));
                }
                self.wanted.entry(address).or_default();
                address
            }
            Missing::Slot(address, slot) => {
                if !self.wanted.entry(address).or_default().insert(B256::from(slot.to_be_bytes::<32>())) {
                    return Err(self.stuck(&missing));
                }
                address
            }
            Missing::Code(_) | Missing::BlockHash(_) => return Err(self.stuck(&missing)),
        };
        self.fetch(&[address], block).await
    }

    fn stuck(&self, missing: &Missing) -> ReadError {
        ReadError::Chain { chain: self.name.clone(), detail: format!("{missing} is needed, and the endpoints did not prove it") }
    }

    /// Asks each agreeing endpoint in turn until one answers.
    async fn with_endpoint(&mut self, fetch: Fetch, block: u64) -> Result<Fetched, ReadError> {
        let mut errors = Vec::new();
        for endpoint in &mut self.endpoints {
            let answer = match &fetch {
                Fetch::AccessLists(calls) => endpoint.access_lists(CALLER, calls, block).await.map(Fetched::AccessLists),
                Fetch::Proofs(requests) => {
                    match accounts(endpoint, requests, block, &self.name, self.state_root, &self.accounts).await {
                        Ok(accounts) => Ok(Fetched::Accounts(accounts)),
                        Err(e) => {
                            errors.push(format!("{}: {e}", endpoint.url));
                            continue;
                        }
                    }
                }
            };
            match answer {
                Ok(value) => return Ok(value),
                Err(e) => errors.push(format!("{}: {e}", endpoint.url)),
            }
        }
        Err(ReadError::Chain { chain: self.name.clone(), detail: format!("no agreeing endpoint supplied the state ({})", errors.join("; ")) })
    }
}
