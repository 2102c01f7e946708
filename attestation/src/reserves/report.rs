//! The solvency statement for people and for machines: per asset, liabilities, reserves with
//! each source, the ratio and the verdict; per chain, the block a block explorer can confirm.
//! `solvency-verify` and `solvency-enclave check-reserves` print it the same way.

use alloy_primitives::U256;
use serde_json::{json, Value};

use super::statement::{AssetSolvency, Solvency};
use crate::amount::format_decimal;
use crate::bundle::HIDDEN;

/// reserves / liabilities as a percentage with two decimals (`"104.25%"`); `"∞"` with no
/// liabilities; `"≥ 100%"` for hidden liabilities (private mode, proven at most the reserves).
pub fn ratio(asset: &AssetSolvency) -> String {
    if asset.liabilities == HIDDEN {
        return "≥ 100%".into();
    }
    let parse = |s: &str| U256::from_str_radix(s, 10).ok();
    match (parse(&asset.reserves), parse(&asset.liabilities)) {
        (Some(_), Some(l)) if l.is_zero() => "∞".into(),
        (Some(r), Some(l)) => match r.checked_mul(U256::from(10_000u32)) {
            Some(scaled) => {
                let basis_points = scaled / l;
                format!("{}.{:02}%", basis_points / U256::from(100u8), (basis_points % U256::from(100u8)).to::<u64>())
            }
            None => "?".into(),
        },
        _ => "?".into(),
    }
}

/// The statement as lines of text.
pub fn lines(solvency: &Solvency) -> Vec<String> {
    let mut out = Vec::new();
    for chain in &solvency.chains {
        let agreed = chain.endpoints.iter().filter(|e| e.agreed).count();
        out.push(format!(
            "chain:       {} (chain id {}) block {} hash 0x{} at unix time {} ({}; {agreed} of {} endpoints agreed, {} required)",
            chain.name,
            chain.chain_id,
            chain.number,
            hex::encode(&chain.hash),
            chain.timestamp,
            chain.rule,
            chain.endpoints.len(),
            chain.min_agreeing
        ));
    }
    for asset in &solvency.assets {
        let show = |units: &str| format_decimal(units, asset.decimals, &asset.symbol);
        let liabilities =
            if asset.liabilities == HIDDEN { "hidden, proven ≤ reserves".to_owned() } else { show(&asset.liabilities) };
        out.push(format!(
            "solvency:    {}: {} — liabilities {}, reserves {} ({}){}",
            asset.symbol,
            if asset.solvent { "SOLVENT" } else { "INSOLVENT" },
            liabilities,
            show(&asset.reserves),
            ratio(asset),
            if asset.rounded_down { ", rounded down" } else { "" }
        ));
        for source in &asset.sources {
            let detail = match &source.feed_round {
                Some(round) => format!("round {}, updated at {}", round.round_id, round.updated_at),
                None => format!("{} address(es)", source.addresses.len()),
            };
            out.push(format!("               {}: {} ({detail})", source.label(), show(&source.amount)));
        }
    }
    out
}

/// The statement as JSON: `{"chains": [...], "assets": [{"symbol", "liabilities", "reserves",
/// "solvent", "ratio", "sources": [...]}]}`; amounts in base units.
pub fn json(solvency: &Solvency) -> Value {
    json!({
        "exchange": solvency.exchange,
        "snapshot_ms": solvency.snapshot_ms,
        "max_block_gap_secs": solvency.max_block_gap_secs,
        "chains": solvency.chains.iter().map(|c| json!({
            "name": c.name,
            "chain_id": c.chain_id,
            "rule": c.rule,
            "number": c.number,
            "hash": format!("0x{}", hex::encode(&c.hash)),
            "timestamp": c.timestamp,
            "min_agreeing": c.min_agreeing,
            "endpoints": c.endpoints.iter().map(|e| json!({
                "url": e.url,
                "cert_sha256": e.cert_sha256,
                "number": e.number,
                "hash": e.hash.as_ref().map(|h| format!("0x{}", hex::encode(h))),
                "agreed": e.agreed,
                "error": e.error,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "assets": assets(solvency),
    })
}

/// Per asset, as `--json`'s `"solvency"` lists them.
pub fn assets(solvency: &Solvency) -> Value {
    Value::Array(
        solvency
            .assets
            .iter()
            .map(|a| {
                json!({
                    "symbol": a.symbol,
                    "decimals": a.decimals,
                    "liabilities": a.liabilities,
                    "reserves": a.reserves,
                    "solvent": a.solvent,
                    "ratio": ratio(a),
                    "rounded_down": a.rounded_down,
                    "sources": a.sources.iter().map(|s| json!({
                        "kind": s.kind,
                        "chain": s.chain,
                        "contract": s.contract,
                        "addresses": s.addresses,
                        "balances": s.balances,
                        "raw": s.raw,
                        "source_decimals": s.source_decimals,
                        "amount": s.amount,
                        "rounded_down": s.rounded_down,
                        "feed_round": s.feed_round.as_ref().map(|r| json!({
                            "round_id": r.round_id,
                            "answer": r.answer,
                            "started_at": r.started_at,
                            "updated_at": r.updated_at,
                            "answered_in_round": r.answered_in_round,
                        })),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}
