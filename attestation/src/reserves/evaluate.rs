//! From evidence to figures: checks each chain's block and proofs, runs each source's contract
//! reads, applies the Chainlink and ownership rules, converts to the asset's base units and states
//! the verdict. The enclave fills a statement in with it; the verifier runs it again on the
//! bundle's evidence and requires the same statement.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use alloy_primitives::{Address, U256};
use alloy_trie::KECCAK_EMPTY;

use super::call::{self, DECIMALS, LATEST_ROUND_DATA};
use super::evidence::ReservesEvidence;
use super::ownership;
use super::state::ProvenState;
use super::statement::{AssetSolvency, ChainBlock, FeedRound, Solvency, SourceFigure, SourceKind};
use super::ReservesError;
use crate::bundle::HIDDEN;

/// Fills in every figure and verdict of `configured` (whose chains, sources and liabilities are
/// set) from `evidence`. `challenge` is the round's auditor nonce, which ownership messages name.
/// An asset whose liabilities are hidden (private mode) is stated solvent here on the strength of
/// the opening proof, which this function does not check: only the round verifier
/// (`attested::verify`) gives a hidden asset's verdict.
pub fn evaluate(configured: &Solvency, challenge: &[u8], evidence: &ReservesEvidence) -> Result<Solvency, ReservesError> {
    if !ownership::is_valid_exchange_name(&configured.exchange) {
        return Err(ReservesError::Statement(
            "the exchange's name is empty or has control characters (it is part of the signed ownership message)".into(),
        ));
    }
    let states = prove_chains(configured, evidence)?;
    let signatures = ownership_signatures(evidence)?;
    let mut seen = BTreeSet::new();
    let mut assets = Vec::with_capacity(configured.assets.len());
    for asset in &configured.assets {
        // A hidden total (private mode) is solvent only by the opening proof, which the round
        // verifier checks against the reserves derived here; the statement is meaningless without it.
        let liabilities = if asset.liabilities == HIDDEN {
            None
        } else {
            Some(decimal(&asset.liabilities).ok_or_else(|| {
                ReservesError::Statement(format!("{}: liabilities {:?} are not a number", asset.symbol, asset.liabilities))
            })?)
        };
        if asset.sources.is_empty() {
            return Err(ReservesError::Statement(format!("{}: no reserve source is configured", asset.symbol)));
        }
        let mut reserves = U256::ZERO;
        let mut rounded_down = false;
        let mut sources = Vec::with_capacity(asset.sources.len());
        for source in &asset.sources {
            let (block, state) = states
                .get(source.chain.as_str())
                .ok_or_else(|| ReservesError::Statement(format!("{}: unknown chain {:?}", source.label(), source.chain)))?;
            let context = Context { exchange: &configured.exchange, challenge, block, state, signatures: &signatures };
            let figure = evaluate_source(source, asset.decimals, &context, &mut seen)?;
            reserves = reserves
                .checked_add(decimal(&figure.amount).unwrap_or_default())
                .ok_or_else(|| ReservesError::Statement(format!("{}: reserves overflow", asset.symbol)))?;
            rounded_down |= figure.rounded_down;
            sources.push(figure);
        }
        assets.push(AssetSolvency {
            symbol: asset.symbol.clone(),
            decimals: asset.decimals,
            liabilities: asset.liabilities.clone(),
            reserves: reserves.to_string(),
            rounded_down,
            solvent: liabilities.is_none_or(|liabilities| reserves >= liabilities),
            sources,
        });
    }
    Ok(Solvency { assets, ..configured.clone() })
}

struct Context<'a> {
    exchange: &'a str,
    challenge: &'a [u8],
    block: &'a ChainBlock,
    state: &'a ProvenState,
    signatures: &'a BTreeMap<(String, Address), Vec<u8>>,
}

fn decimal(text: &str) -> Option<U256> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) || (text.len() > 1 && text.starts_with('0')) {
        return None;
    }
    U256::from_str_radix(text, 10).ok()
}

fn prove_chains<'a>(
    configured: &'a Solvency,
    evidence: &ReservesEvidence,
) -> Result<BTreeMap<&'a str, (&'a ChainBlock, ProvenState)>, ReservesError> {
    if evidence.chains.len() != configured.chains.len() {
        return Err(ReservesError::Statement(format!(
            "the evidence has {} chains, the statement {}",
            evidence.chains.len(),
            configured.chains.len()
        )));
    }
    let mut states = BTreeMap::new();
    for (block, chain) in configured.chains.iter().zip(&evidence.chains) {
        let bad = |detail: String| ReservesError::Evidence { chain: block.name.clone(), detail };
        if chain.name != block.name {
            return Err(bad(format!("the evidence's chain is {:?}", chain.name)));
        }
        if let Some(depth) = block.rule.strip_prefix("latest-").and_then(|n| n.parse::<u64>().ok()) {
            if depth > super::MAX_CONFIRMATIONS {
                return Err(bad(format!("the rule {:?} reads a block older than latest-{} allows", block.rule, super::MAX_CONFIRMATIONS)));
            }
        }
        let state = ProvenState::prove(chain, &block.hash)?;
        if state.header.number != block.number || state.header.timestamp != block.timestamp {
            return Err(bad(format!(
                "the header is block {} at {}, the statement says block {} at {}",
                state.header.number, state.header.timestamp, block.number, block.timestamp
            )));
        }
        let agreeing = block.endpoints.iter().filter(|e| e.agreed).count();
        if agreeing < block.min_agreeing as usize || !super::is_majority(block.min_agreeing, block.endpoints.len()) {
            return Err(bad(format!(
                "{agreeing} of {} endpoints agreed with {} required; a strict majority must be required and reached",
                block.endpoints.len(),
                block.min_agreeing
            )));
        }
        if block.endpoints.iter().any(|e| e.agreed && (e.number != Some(block.number) || e.hash.as_deref() != Some(&block.hash[..]))) {
            return Err(bad("an endpoint recorded as agreeing reported another block".into()));
        }
        let gap_ms = (block.timestamp.saturating_mul(1000)).abs_diff(configured.snapshot_ms);
        if gap_ms > configured.max_block_gap_secs.saturating_mul(1000) {
            return Err(bad(format!(
                "block {} is {} s from the database snapshot; at most {} s is allowed",
                block.number,
                gap_ms / 1000,
                configured.max_block_gap_secs
            )));
        }
        if states.values().any(|(other, _): &(&ChainBlock, ProvenState)| other.chain_id == block.chain_id) {
            return Err(bad(format!("chain id {} is listed twice, which would count its reserves twice", block.chain_id)));
        }
        if states.insert(block.name.as_str(), (block, state)).is_some() {
            return Err(bad("the chain is listed twice".into()));
        }
    }
    Ok(states)
}

fn ownership_signatures(evidence: &ReservesEvidence) -> Result<BTreeMap<(String, Address), Vec<u8>>, ReservesError> {
    let mut signatures = BTreeMap::new();
    for entry in &evidence.ownership {
        let address = Address::try_from(entry.address.as_slice()).map_err(|_| ReservesError::Evidence {
            chain: entry.chain.clone(),
            detail: format!("an ownership signature's address is {} bytes", entry.address.len()),
        })?;
        if signatures.insert((entry.chain.clone(), address), entry.signature.clone()).is_some() {
            return Err(ReservesError::Evidence {
                chain: entry.chain.clone(),
                detail: format!("two ownership signatures for {address}"),
            });
        }
    }
    Ok(signatures)
}

fn parse_address(source: &SourceFigure, field: &'static str, text: &str) -> Result<Address, ReservesError> {
    let address = Address::from_str(text)
        .map_err(|e| ReservesError::Source { origin: source.label(), field, detail: format!("{text:?}: {e}") })?;
    if address.to_checksum(None) != text {
        return Err(ReservesError::Source {
            origin: source.label(),
            field,
            detail: format!("{text:?} is not written in EIP-55 form ({})", address.to_checksum(None)),
        });
    }
    Ok(address)
}

/// `raw` in `from` decimals, in `to` decimals, and whether a remainder was dropped.
pub fn convert(raw: U256, from: u32, to: u32) -> Option<(U256, bool)> {
    if to >= from {
        let factor = U256::from(10u8).checked_pow(U256::from(to - from))?;
        Some((raw.checked_mul(factor)?, false))
    } else {
        let factor = U256::from(10u8).checked_pow(U256::from(from - to))?;
        Some((raw / factor, !(raw % factor).is_zero()))
    }
}

fn evaluate_source(
    configured: &SourceFigure,
    asset_decimals: u32,
    context: &Context<'_>,
    seen: &mut BTreeSet<(String, u64, Option<Address>, Option<Address>)>,
) -> Result<SourceFigure, ReservesError> {
    let refuse = |field: &'static str, detail: String| ReservesError::Source { origin: configured.label(), field, detail };
    let kind = SourceKind::parse(&configured.kind).ok_or_else(|| refuse("kind", format!("unknown kind {:?}", configured.kind)))?;
    let contract = match (kind, &configured.contract) {
        (SourceKind::Native, None) => None,
        (SourceKind::Native, Some(_)) => return Err(refuse("contract", "a native source has no contract".into())),
        (_, Some(text)) => Some(parse_address(configured, "contract", text)?),
        (_, None) => return Err(refuse("contract", "missing".into())),
    };
    let chain = &context.block.name;
    let chain_id = context.block.chain_id;
    let mut figure = configured.clone();
    figure.balances.clear();
    figure.feed_round = None;
    let raw = match kind {
        SourceKind::Chainlink => {
            if !configured.addresses.is_empty() {
                return Err(refuse("addresses", "a feed has no addresses".into()));
            }
            let Some(feed) = contract else { return Err(refuse("contract", "missing".into())) };
            if !seen.insert((kind.name().into(), chain_id, Some(feed), None)) {
                return Err(refuse("contract", "the feed is listed twice".into()));
            }
            let (round, answer) = read_feed(configured, feed, context)?;
            figure.feed_round = Some(round);
            answer
        }
        SourceKind::Native | SourceKind::Erc20 => {
            if configured.addresses.is_empty() {
                return Err(refuse("addresses", "no address is configured".into()));
            }
            if kind == SourceKind::Native && configured.source_decimals != super::NATIVE_DECIMALS {
                return Err(refuse(
                    "source_decimals",
                    format!("a native coin has {} decimals, not {}", super::NATIVE_DECIMALS, configured.source_decimals),
                ));
            }
            if kind == SourceKind::Erc20 {
                let token = contract.ok_or_else(|| refuse("contract", "missing".into()))?;
                if super::NATIVE_ALIASES.contains(&(chain_id, token)) {
                    return Err(refuse(
                        "contract",
                        format!("{token} is chain {chain_id}'s native coin under an ERC-20 interface; count it as a native source"),
                    ));
                }
                let decimals = read_decimals(configured, token, context)?;
                if decimals != configured.source_decimals {
                    return Err(refuse(
                        "decimals",
                        format!("the token reports {decimals} decimals, {} are configured", configured.source_decimals),
                    ));
                }
            }
            let mut total = U256::ZERO;
            for text in &configured.addresses {
                let address = parse_address(configured, "addresses", text)?;
                if !seen.insert((kind.name().into(), chain_id, contract, Some(address))) {
                    return Err(refuse("addresses", format!("{text} is listed twice")));
                }
                let signature = context
                    .signatures
                    .get(&(chain.clone(), address))
                    .ok_or_else(|| ReservesError::Ownership {
                        chain: chain.clone(),
                        address,
                        detail: "no ownership signature".into(),
                    })?;
                if context.challenge.is_empty() {
                    return Err(ReservesError::Ownership {
                        chain: chain.clone(),
                        address,
                        detail: "the round has no auditor challenge for the signature to name".into(),
                    });
                }
                let key = ownership::verify(context.exchange, chain, chain_id, address, context.challenge, signature);
                if let Err(refused) = key {
                    // Not the address's key: a contract wallet may still accept it (EIP-1271).
                    if context.state.account(address)?.code_hash == KECCAK_EMPTY {
                        return Err(refused);
                    }
                    ownership::verify_contract(context.state, context.exchange, chain_id, address, context.challenge, signature)?;
                }
                let balance = match contract {
                    Some(token) => {
                        let output = call::call(context.state, context.block.chain_id, token, &call::balance_of(address))?;
                        call::word(&output, 0)
                            .map(alloy_primitives::U256::from_be_bytes)
                            .ok_or_else(|| refuse("balanceOf", format!("{text}: short return data")))?
                    }
                    None => context.state.account(address)?.balance,
                };
                figure.balances.push(balance.to_string());
                total = total.checked_add(balance).ok_or_else(|| refuse("balances", "overflow".into()))?;
            }
            total
        }
    };
    let (amount, rounded_down) = convert(raw, configured.source_decimals, asset_decimals)
        .ok_or_else(|| refuse("source_decimals", "converting to the asset's base units overflows".into()))?;
    figure.raw = raw.to_string();
    figure.amount = amount.to_string();
    figure.rounded_down = rounded_down;
    Ok(figure)
}

fn read_decimals(source: &SourceFigure, contract: Address, context: &Context<'_>) -> Result<u32, ReservesError> {
    let output = call::call(context.state, context.block.chain_id, contract, &DECIMALS)?;
    call::word(&output, 0)
        .and_then(|w| call::uint(w, 8))
        .map(|d| d.to::<u32>())
        .ok_or_else(|| ReservesError::Source {
            origin: source.label(),
            field: "decimals",
            detail: "decimals() did not return a uint8".into(),
        })
}

fn latest_round(
    source: &SourceFigure,
    feed: Address,
    context: &Context<'_>,
) -> Result<(FeedRound, bool, U256), ReservesError> {
    let refuse = |detail: String| ReservesError::Source { origin: source.label(), field: "latestRoundData", detail };
    let output = call::call(context.state, context.block.chain_id, feed, &LATEST_ROUND_DATA)?;
    let words: Option<Vec<[u8; 32]>> = (0..5).map(|i| call::word(&output, i)).collect();
    let words = words.ok_or_else(|| refuse(format!("{} bytes returned, 160 expected", output.len())))?;
    let [round_id, answer, started_at, updated_at, answered_in_round] = <[[u8; 32]; 5]>::try_from(words)
        .map_err(|_| refuse("short return data".into()))?;
    let round_id = call::uint(round_id, 80).ok_or_else(|| refuse("roundId is not a uint80".into()))?;
    let answered = call::uint(answered_in_round, 80).ok_or_else(|| refuse("answeredInRound is not a uint80".into()))?;
    let started = call::uint(started_at, 64).ok_or_else(|| refuse("startedAt is out of range".into()))?.to::<u64>();
    let updated = call::uint(updated_at, 64).ok_or_else(|| refuse("updatedAt is out of range".into()))?.to::<u64>();
    let (negative, magnitude) = call::int256(answer);
    let shown = if negative { format!("-{magnitude}") } else { magnitude.to_string() };
    Ok((
        FeedRound {
            round_id: round_id.to_string(),
            answer: shown,
            started_at: started,
            updated_at: updated,
            answered_in_round: answered.to_string(),
        },
        negative,
        magnitude,
    ))
}

fn read_feed(source: &SourceFigure, feed: Address, context: &Context<'_>) -> Result<(FeedRound, U256), ReservesError> {
    let refuse = |field: &'static str, detail: String| ReservesError::Source { origin: source.label(), field, detail };
    let now = context.block.timestamp;
    if let Some(sequencer) = &source.sequencer_feed {
        let sequencer = parse_address(source, "sequencer_feed", sequencer)?;
        let (round, negative, status) = latest_round(source, sequencer, context)?;
        if negative || !status.is_zero() {
            return Err(refuse("sequencer_feed", format!("the sequencer is down (answer {})", round.answer)));
        }
        if round.started_at == 0 {
            return Err(refuse("sequencer_feed", "the sequencer feed has no round (startedAt = 0)".into()));
        }
        let grace = source.sequencer_grace_secs.unwrap_or(0);
        if now.saturating_sub(round.started_at) <= grace {
            return Err(refuse(
                "sequencer_grace_secs",
                format!("the sequencer came up {} s before the block, within the grace of {grace} s", now.saturating_sub(round.started_at)),
            ));
        }
    }
    let decimals = read_decimals(source, feed, context)?;
    if decimals != source.source_decimals {
        return Err(refuse("decimals", format!("the feed reports {decimals} decimals, {} are configured", source.source_decimals)));
    }
    let (round, negative, answer) = latest_round(source, feed, context)?;
    if negative || answer.is_zero() {
        return Err(refuse("answer", format!("the feed's answer is {}, not positive", round.answer)));
    }
    if round.updated_at > now {
        return Err(refuse("updatedAt", format!("updated at {}, after the block's time {now}", round.updated_at)));
    }
    let max_age = source.max_age_secs.ok_or_else(|| refuse("max_age_secs", "missing".into()))?;
    if now - round.updated_at > max_age {
        return Err(refuse(
            "updatedAt",
            format!("the answer is {} s old at the block; heartbeat + grace allow {max_age} s", now - round.updated_at),
        ));
    }
    if decimal(&round.answered_in_round) < decimal(&round.round_id) {
        return Err(refuse(
            "answeredInRound",
            format!("answeredInRound {} is below roundId {}", round.answered_in_round, round.round_id),
        ));
    }
    Ok((round, answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion_is_exact_or_rounds_down_and_says_so() {
        let n = |x: u64| U256::from(x);
        assert_eq!(convert(n(123), 8, 8), Some((n(123), false)));
        assert_eq!(convert(n(123), 6, 8), Some((n(12_300), false)));
        assert_eq!(convert(n(12_300), 8, 6), Some((n(123), false)));
        assert_eq!(convert(n(12_345), 8, 6), Some((n(123), true)));
        assert_eq!(convert(n(99), 18, 8), Some((n(0), true)));
        assert_eq!(convert(U256::MAX, 0, 18), None, "overflow is refused, not wrapped");
    }

    #[test]
    fn decimals_are_canonical() {
        assert_eq!(decimal("0"), Some(U256::ZERO));
        assert_eq!(decimal("120"), Some(U256::from(120u8)));
        for bad in ["", "01", "-1", "1e3", " 1", "0x10"] {
            assert_eq!(decimal(bad), None, "{bad:?}");
        }
    }
}
