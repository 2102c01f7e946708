//! The round verifier's last two steps: `reserves` (the evidence yields exactly the manifest's
//! figures, and the sources are the ones the policy pins) and `solvency` (the verdicts the policy
//! requires).

use alloy_primitives::Address;

use crate::attested::RoundError;
use crate::manifest::Manifest;
use crate::policy::{BundlePolicy, ReservePin};
use crate::reserves::evidence::ReservesEvidence;
use crate::reserves::statement::{AssetSolvency, Solvency, SourceKind};

/// The `reserves` step.
pub(crate) fn check_reserves(
    manifest: &Manifest,
    evidence: Option<&[u8]>,
    policy: &BundlePolicy,
    attested_ms: u64,
) -> Result<(), RoundError> {
    let fail = |detail: String| RoundError::Reserves(detail);
    let Some(solvency) = &manifest.solvency else {
        if policy.reserves.is_some() {
            return Err(fail(format!(
                "the policy pins reserves, but this is a version-{} round, which states none",
                manifest.version()
            )));
        }
        return Ok(());
    };
    let bytes = evidence.ok_or_else(|| fail("the bundle carries no evidence".into()))?;
    if ReservesEvidence::sha256(bytes)[..] != solvency.evidence_sha256[..] {
        return Err(fail("the evidence is not the one the manifest names".into()));
    }
    let evidence = ReservesEvidence::decode(bytes).map_err(|e| fail(format!("evidence: {e}")))?;
    if solvency.assets.len() != manifest.assets.len() {
        return Err(fail(format!(
            "{} assets have a statement, the round has {}",
            solvency.assets.len(),
            manifest.assets.len()
        )));
    }
    for (stated, asset) in solvency.assets.iter().zip(&manifest.assets) {
        if stated.symbol != asset.symbol || stated.decimals != asset.decimals || stated.liabilities != asset.total {
            return Err(fail(format!(
                "the statement for {} ({} decimals, liabilities {}) is not the round's {} ({} decimals, total {})",
                stated.symbol, stated.decimals, stated.liabilities, asset.symbol, asset.decimals, asset.total
            )));
        }
    }
    let derived =
        crate::reserves::evaluate(solvency, &manifest.nonce, &evidence).map_err(|e| fail(e.to_string()))?;
    if let Some(difference) = first_difference(solvency, &derived) {
        return Err(fail(difference));
    }
    check_binding(solvency, policy, attested_ms).map_err(fail)?;
    if let Some(pins) = &policy.reserves {
        // A pinned policy is closed: an asset it does not name would go unchecked.
        for asset in &solvency.assets {
            if !pins.iter().any(|p| p.symbol == asset.symbol) {
                return Err(fail(format!("the policy pins reserves, but not {}'s", asset.symbol)));
            }
        }
        for pin in pins {
            check_pin(solvency, pin).map_err(fail)?;
        }
    }
    Ok(())
}

/// What ties the statement to this exchange, this round and this time, beyond what the enclave
/// checked: the ownership signatures name the challenge, which only a pinned nonce makes the
/// verifier's own; they name the exchange, which only a pinned name makes the right one; and the
/// blocks are dated against the attestation's AWS-signed time, not the database's clock.
fn check_binding(solvency: &Solvency, policy: &BundlePolicy, attested_ms: u64) -> Result<(), String> {
    let owns_addresses = solvency
        .assets
        .iter()
        .flat_map(|a| &a.sources)
        .any(|s| matches!(SourceKind::parse(&s.kind), Some(SourceKind::Native | SourceKind::Erc20)));
    if owns_addresses && policy.round.nonce.is_none() {
        return Err("owned addresses count only with signatures over the auditor's challenge, and the policy pins \
                    none: set round.nonce to the challenge you issued (otherwise signatures from an old round \
                    could be replayed)"
            .into());
    }
    if let Some(exchange) = &policy.solvency.exchange {
        if exchange != &solvency.exchange {
            return Err(format!("the statement is for {:?}, the policy pins {exchange:?}", solvency.exchange));
        }
    }
    const CLOCK_SLACK_SECS: u64 = 300;
    let attested_secs = attested_ms / 1000;
    for block in &solvency.chains {
        if block.timestamp > attested_secs.saturating_add(CLOCK_SLACK_SECS) {
            return Err(format!(
                "{}'s block {} is dated {}, after the attestation at {attested_secs}",
                block.name, block.number, block.timestamp
            ));
        }
        if let Some(max) = policy.solvency.max_block_age_secs {
            let age = attested_secs.saturating_sub(block.timestamp);
            if age > max {
                return Err(format!(
                    "{}'s block {} was {age} s old when the round was attested; the policy allows {max} s",
                    block.name, block.number
                ));
            }
        }
    }
    Ok(())
}

fn first_difference(stated: &Solvency, derived: &Solvency) -> Option<String> {
    for (s, d) in stated.assets.iter().zip(&derived.assets) {
        for (source_s, source_d) in s.sources.iter().zip(&d.sources) {
            if source_s != source_d {
                return Some(format!(
                    "{} {}: the evidence gives {} (raw {}), the manifest states {} (raw {})",
                    s.symbol,
                    source_s.label(),
                    source_d.amount,
                    source_d.raw,
                    source_s.amount,
                    source_s.raw
                ));
            }
        }
        if s != d {
            return Some(format!(
                "{}: the evidence gives reserves {} ({}), the manifest states {} ({})",
                s.symbol,
                d.reserves,
                verdict(d),
                s.reserves,
                verdict(s)
            ));
        }
    }
    (stated != derived).then(|| "the statement differs from what the evidence gives".to_owned())
}

fn verdict(asset: &AssetSolvency) -> &'static str {
    if asset.solvent {
        "solvent"
    } else {
        "INSOLVENT"
    }
}

/// The host of an `https://host[:port]/path` URL, lower-cased.
fn url_host(url: &str) -> Option<String> {
    let rest = url.strip_prefix("https://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.contains('@') {
        return None;
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => authority.split(':').next()?,
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

fn same_address(a: &str, b: &str) -> bool {
    match (a.parse::<Address>(), b.parse::<Address>()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn check_pin(solvency: &Solvency, pin: &ReservePin) -> Result<(), String> {
    let symbol = &pin.symbol;
    let asset = solvency
        .assets
        .iter()
        .find(|a| &a.symbol == symbol)
        .ok_or_else(|| format!("the policy pins reserves of {symbol}, which the round does not have"))?;
    let mut feeds = Vec::new();
    let mut tokens = Vec::new();
    for source in &asset.sources {
        let block = solvency
            .chains
            .iter()
            .find(|c| c.name == source.chain)
            .ok_or_else(|| format!("{symbol}: {} is on an unknown chain", source.label()))?;
        if let Some(ids) = &pin.chain_ids {
            if !ids.contains(&block.chain_id) {
                return Err(format!("{symbol}: {} is on chain id {}, the policy allows {ids:?}", source.label(), block.chain_id));
            }
        }
        if let Some(min) = pin.min_agreeing {
            let agreed = block.endpoints.iter().filter(|e| e.agreed).count();
            if agreed < min as usize {
                return Err(format!("{symbol}: {agreed} endpoints agreed on {}'s block, the policy requires {min}", block.name));
            }
        }
        if let Some(hosts) = &pin.endpoint_hosts {
            let trusted: std::collections::BTreeSet<String> = block
                .endpoints
                .iter()
                // A certificate pinned by hash says nothing about the host's name: the operator could
                // pin its own server under a trusted provider's name.
                .filter(|e| e.agreed && !e.cert_pinned)
                .filter_map(|e| url_host(&e.url))
                .filter(|host| hosts.iter().any(|h| h.eq_ignore_ascii_case(host)))
                .collect();
            let needed = pin.min_agreeing.unwrap_or(block.min_agreeing).max(block.min_agreeing) as usize;
            if trusted.len() < needed {
                return Err(format!(
                    "{symbol}: {} distinct pinned hosts agreed on {}'s block with certificates validated against the web's roots ({}), {needed} are required",
                    trusted.len(),
                    block.name,
                    trusted.into_iter().collect::<Vec<_>>().join(", ")
                ));
            }
        }
        if let Some(max) = pin.max_block_gap_secs {
            let gap = (block.timestamp.saturating_mul(1000)).abs_diff(solvency.snapshot_ms) / 1000;
            if gap > max {
                return Err(format!("{symbol}: {}'s block is {gap} s from the snapshot, the policy allows {max} s", block.name));
            }
        }
        match SourceKind::parse(&source.kind) {
            Some(SourceKind::Chainlink) => {
                feeds.extend(source.contract.clone());
                if let (Some(max), Some(round)) = (pin.max_feed_age_secs, &source.feed_round) {
                    let age = block.timestamp.saturating_sub(round.updated_at);
                    if age > max {
                        return Err(format!("{symbol}: {} was {age} s old at the block, the policy allows {max} s", source.label()));
                    }
                }
            }
            Some(SourceKind::Erc20) => tokens.extend(source.contract.clone()),
            _ => {}
        }
    }
    for (what, pinned, actual) in [("feeds", &pin.feeds, &feeds), ("tokens", &pin.tokens, &tokens)] {
        if let Some(pinned) = pinned {
            let distinct = pinned.iter().enumerate().all(|(i, p)| !pinned[..i].iter().any(|q| same_address(p, q)));
            if !distinct {
                return Err(format!("{symbol}: the policy pins the same {what} address twice"));
            }
            let same = pinned.len() == actual.len()
                && pinned.iter().all(|p| actual.iter().any(|a| same_address(p, a)));
            if !same {
                return Err(format!("{symbol}: the {what} are {actual:?}, the policy pins {pinned:?}"));
            }
        }
    }
    Ok(())
}

/// The `solvency` step.
pub(crate) fn check_solvency(manifest: &Manifest, policy: &BundlePolicy) -> Result<(), RoundError> {
    if !policy.solvency.require_solvent {
        return Ok(());
    }
    let solvency = manifest.solvency.as_ref().ok_or_else(|| {
        RoundError::Solvency(format!("the policy requires solvency; a version-{} round states none", manifest.version()))
    })?;
    let short: Vec<String> = solvency
        .assets
        .iter()
        .filter(|a| !a.solvent)
        .map(|a| format!("{} (reserves {} < liabilities {})", a.symbol, a.reserves, a.liabilities))
        .collect();
    if short.is_empty() {
        Ok(())
    } else {
        Err(RoundError::Solvency(format!("INSOLVENT in {}", short.join(", "))))
    }
}

#[cfg(test)]
mod url_tests {
    use super::url_host;

    #[test]
    fn hosts_are_read_from_endpoint_urls() {
        assert_eq!(url_host("https://RPC-a.example.net/").as_deref(), Some("rpc-a.example.net"));
        assert_eq!(url_host("https://node.internal:8545/x?y").as_deref(), Some("node.internal"));
        assert_eq!(url_host("https://[::1]:8545/").as_deref(), Some("::1"));
        assert_eq!(url_host("https://localhost").as_deref(), Some("localhost"));
        assert_eq!(url_host("http://rpc.example/"), None);
        assert_eq!(url_host("https://user@rpc.example/"), None);
        assert_eq!(url_host("https:///"), None);
    }
}
