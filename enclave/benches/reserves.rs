//! The reserves read and its verification against a private anvil behind three TLS endpoints
//! (two must agree): one Chainlink feed; N owned addresses' ether; N owned addresses' ERC-20
//! balances. For each: the enclave's read (block agreement, proofs, the EVM loop) and the
//! verifier's re-derivation from the evidence's bytes, medians over the runs, and the evidence's
//! size per address.
//!
//! `cargo bench -p solvency-enclave --bench reserves -- [ADDRESSES] [RUNS]` (default 1,000
//! addresses, 5 runs). Needs anvil (`npm install -g @foundry-rs/anvil-linux-amd64@1.7.1`).
//! Prints one JSON object.

use std::time::Instant;

use alloy_primitives::Address;
use attestation::reserves::evidence::{OwnershipSignature, ReservesEvidence};
use enclave::net::Route;
use enclave::reserves::read::Liability;
use enclave::reserves::ReservesConfig;
use testkit::chain::{Anvil, Lie, LyingRpc, Rpc};
use testkit::tls_front::TlsFront;

const CHAIN_ID: u64 = 31_337;
const EXCHANGE: &str = "Bench Exchange";
const CHALLENGE: &[u8] = b"bench challenge";

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

struct Scenario {
    name: &'static str,
    addresses: usize,
    source: String,
    signatures: Vec<OwnershipSignature>,
}

async fn sign(rpc: &Rpc, owners: &[testkit::chain::Address]) -> Vec<OwnershipSignature> {
    let mut out = Vec::new();
    for owner in owners {
        let message = attestation::reserves::ownership::message(EXCHANGE, CHAIN_ID, Address::from(owner.0), CHALLENGE);
        let signature = rpc.personal_sign(*owner, message.as_bytes()).await.expect("personal_sign");
        out.push(OwnershipSignature { chain: "devnet".into(), address: owner.0.to_vec(), signature: signature.to_vec() });
    }
    out
}

fn config(endpoints: &[(LyingRpc, TlsFront)], source: &str) -> ReservesConfig {
    let urls: Vec<String> = endpoints
        .iter()
        .map(|(_, f)| format!("{{ url = \"https://localhost:{}/\", server_cert_sha256 = \"{}\" }}", f.addr().port(), f.cert_sha256()))
        .collect();
    let text = format!(
        "[solvency]\nexchange = \"{EXCHANGE}\"\nmax_block_gap_secs = 3600\n\n[[chains]]\nname = \"devnet\"\nchain_id = {CHAIN_ID}\n\
         endpoints = [{}]\nmin_agreeing = 2\nblock = \"latest-1\"\ntimeout_secs = 120\n\n[[reserves]]\nasset = \"X\"\nsources = [{source}]\n",
        urls.join(", ")
    );
    toml::from_str(&text).expect("the bench's configuration")
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let addresses: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(1_000);
    let runs: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let anvil = Anvil::start_with_accounts(CHAIN_ID, addresses + 1).expect("anvil");
        let rpc = anvil.rpc();
        let accounts = rpc.dev_accounts().await.expect("accounts");
        let owners = &accounts[1..=addresses];
        let feed = rpc.deploy_feed(8, 2_100_000_000_000_000).await.expect("feed");
        let token = rpc.deploy_token(6, owners[0], 1_000_000_000_000).await.expect("token");
        for owner in &owners[1..] {
            rpc.token_transfer(token, owners[0], *owner, 1_000_000).await.expect("transfer");
        }
        rpc.mine(2).await.expect("mine");
        let signatures = sign(&rpc, owners).await;
        let list = |xs: &[testkit::chain::Address]| xs.iter().map(|a| format!("\"{a}\"")).collect::<Vec<_>>().join(", ");
        let scenarios = [
            Scenario {
                name: "1 Chainlink feed",
                addresses: 0,
                source: format!("{{ kind = \"chainlink\", chain = \"devnet\", feed = \"{}\", decimals = 8, heartbeat_secs = 86400 }}", feed.proxy),
                signatures: Vec::new(),
            },
            Scenario {
                name: "native balances",
                addresses,
                source: format!("{{ kind = \"native\", chain = \"devnet\", addresses = [{}] }}", list(owners)),
                signatures: signatures.clone(),
            },
            Scenario {
                name: "ERC-20 balances",
                addresses,
                source: format!("{{ kind = \"erc20\", chain = \"devnet\", token = \"{token}\", decimals = 6, addresses = [{}] }}", list(owners)),
                signatures,
            },
        ];
        let mut endpoints = Vec::new();
        for _ in 0..3 {
            let relay = LyingRpc::start(anvil.addr(), Lie::Honest).await.expect("relay");
            let front = TlsFront::start(relay.addr(), &["localhost".to_owned()]).await.expect("front");
            endpoints.push((relay, front));
        }
        let liabilities = [Liability { symbol: "X".into(), decimals: 8, total: 1 }];
        let mut results = Vec::new();
        for scenario in &scenarios {
            let config = config(&endpoints, &scenario.source);
            let (mut reads, mut verifies) = (Vec::new(), Vec::new());
            let mut evidence_bytes = 0;
            for _ in 0..runs {
                let started = Instant::now();
                let read = enclave::reserves::read(&config, &liabilities, CHALLENGE, now_ms(), scenario.signatures.clone(), &Route::Direct)
                    .await
                    .expect("the read");
                reads.push(started.elapsed().as_secs_f64());
                let bytes = read.evidence_bytes.clone();
                evidence_bytes = bytes.len();
                let started = Instant::now();
                let evidence = ReservesEvidence::decode(&bytes).expect("decode");
                let derived = attestation::reserves::evaluate(&read.solvency, CHALLENGE, &evidence).expect("evaluate");
                verifies.push(started.elapsed().as_secs_f64());
                assert_eq!(derived, read.solvency);
            }
            results.push(serde_json::json!({
                "scenario": scenario.name,
                "addresses": scenario.addresses,
                "read_median_s": median(reads),
                "verify_median_s": median(verifies),
                "evidence_bytes": evidence_bytes,
                "evidence_bytes_per_address": evidence_bytes.checked_div(scenario.addresses).unwrap_or(0),
            }));
        }
        let report = serde_json::json!({ "runs": runs, "endpoints": 3, "min_agreeing": 2, "results": results });
        println!("{report:#}");
    });
}
