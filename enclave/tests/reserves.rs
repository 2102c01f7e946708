//! The enclave's reserves read against a real Ethereum node (anvil) with Chainlink's feed
//! contracts, an ERC-20 and funded addresses, through three TLS endpoints of which one lies in
//! each of the ways a hostile endpoint can: the read gets the truth or refuses, and the verifier
//! re-derives the same figures from the evidence alone.

use alloy_primitives::Address;
use attestation::reserves::evidence::{OwnershipSignature, ReservesEvidence};
use attestation::reserves::{evaluate, ReservesError};
use enclave::net::Route;
use enclave::reserves::read::{Liability, ReadError};
use enclave::reserves::ReservesConfig;
use testkit::chain::{Anvil, Feed, Lie, LyingRpc, Rpc};
use testkit::tls_front::TlsFront;

const CHAIN_ID: u64 = 1337;
const EXCHANGE: &str = "Example Exchange";
const CHALLENGE: &[u8] = b"auditor challenge 2026-12-03";
/// 500 BTC, the feed's answer with 8 decimals.
const FEED_ANSWER: i128 = 500_0000_0000;
/// 1,000,000 USDC with 6 decimals.
const TOKEN_AMOUNT: u128 = 1_000_000_000_000;
/// 100 ETH in wei.
const NATIVE_WEI: u128 = 100_000_000_000_000_000_000;

struct Endpoint {
    liar: LyingRpc,
    front: TlsFront,
}

struct World {
    _anvil: Anvil,
    rpc: Rpc,
    feed: Feed,
    token: Address,
    token_holder: Address,
    native_holder: Address,
    endpoints: Vec<Endpoint>,
    signatures: Vec<OwnershipSignature>,
}

fn alloy(address: testkit::chain::Address) -> Address {
    Address::from(address.0)
}

impl World {
    async fn start(lies: [Lie; 3]) -> Self {
        let anvil = Anvil::start(CHAIN_ID).expect("anvil (npm install -g @foundry-rs/anvil-linux-amd64)");
        let rpc = anvil.rpc();
        let accounts = rpc.dev_accounts().await.unwrap();
        let (token_holder, native_holder) = (accounts[1], accounts[2]);
        let feed = rpc.deploy_feed(8, FEED_ANSWER).await.unwrap();
        let token = rpc.deploy_token(6, token_holder, TOKEN_AMOUNT).await.unwrap();
        rpc.set_balance(native_holder, NATIVE_WEI).await.unwrap();
        rpc.mine(3).await.unwrap();
        let mut signatures = Vec::new();
        for holder in [token_holder, native_holder] {
            let message = attestation::reserves::ownership::message(EXCHANGE, CHAIN_ID, alloy(holder), CHALLENGE);
            let signature = rpc.personal_sign(holder, message.as_bytes()).await.unwrap();
            signatures.push(OwnershipSignature {
                chain: "devnet".into(),
                address: holder.0.to_vec(),
                signature: signature.to_vec(),
            });
        }
        let mut endpoints = Vec::new();
        for lie in lies {
            let liar = LyingRpc::start(anvil.addr(), lie).await.unwrap();
            let front = TlsFront::start(liar.addr(), &["localhost".to_owned()]).await.unwrap();
            endpoints.push(Endpoint { liar, front });
        }
        Self {
            _anvil: anvil,
            rpc,
            feed,
            token: alloy(token),
            token_holder: alloy(token_holder),
            native_holder: alloy(native_holder),
            endpoints,
            signatures,
        }
    }

    fn config(&self, min_agreeing: u32, feed_decimals: u32, heartbeat_secs: u64) -> String {
        let endpoints: Vec<String> = self
            .endpoints
            .iter()
            .map(|e| {
                format!(
                    "{{ url = \"https://localhost:{}/\", server_cert_sha256 = \"{}\" }}",
                    e.front.addr().port(),
                    e.front.cert_sha256()
                )
            })
            .collect();
        format!(
            r#"
[solvency]
exchange = "{EXCHANGE}"
max_block_gap_secs = 3600

[[chains]]
name = "devnet"
chain_id = {CHAIN_ID}
endpoints = [{}]
min_agreeing = {min_agreeing}
block = "latest-2"
timeout_secs = 10

[[reserves]]
asset = "BTC"
sources = [{{ kind = "chainlink", chain = "devnet", feed = "{}", decimals = {feed_decimals}, heartbeat_secs = {heartbeat_secs}, grace_secs = 60 }}]

[[reserves]]
asset = "USDC"
sources = [{{ kind = "erc20", chain = "devnet", token = "{}", decimals = 6, addresses = ["{}"] }}]

[[reserves]]
asset = "ETH"
sources = [{{ kind = "native", chain = "devnet", addresses = ["{}"] }}]
"#,
            endpoints.join(", "),
            self.feed.proxy,
            self.token,
            self.token_holder,
            self.native_holder,
        )
    }

    fn liabilities(btc: u128) -> Vec<Liability> {
        vec![
            Liability { symbol: "BTC".into(), decimals: 8, total: btc },
            Liability { symbol: "USDC".into(), decimals: 6, total: 900_000_000_000 },
            Liability { symbol: "ETH".into(), decimals: 18, total: 99_000_000_000_000_000_000 },
        ]
    }

    async fn read_with(&self, config: &str, liabilities: &[Liability]) -> Result<enclave::reserves::Reserves, ReadError> {
        let config: ReservesConfig = toml::from_str(config).unwrap();
        enclave::reserves::read(&config, liabilities, CHALLENGE, now_ms(), self.signatures.clone(), &Route::Direct).await
    }

    async fn read(&self, min_agreeing: u32) -> Result<enclave::reserves::Reserves, ReadError> {
        self.read_with(&self.config(min_agreeing, 8, 86_400), &Self::liabilities(400_0000_0000)).await
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// The figures the chain holds, and the verifier's re-derivation from the evidence's bytes.
fn assert_truth(reserves: &enclave::reserves::Reserves) {
    let assets = &reserves.solvency.assets;
    assert_eq!(assets[0].reserves, FEED_ANSWER.to_string(), "BTC from the feed, 8 decimals to 8");
    assert_eq!(assets[1].reserves, TOKEN_AMOUNT.to_string());
    assert_eq!(assets[2].reserves, NATIVE_WEI.to_string());
    assert!(assets.iter().all(|a| a.solvent), "{assets:?}");
    let bytes = reserves.evidence.encode();
    assert_eq!(ReservesEvidence::sha256(&bytes).to_vec(), reserves.solvency.evidence_sha256);
    let decoded = ReservesEvidence::decode(&bytes).unwrap();
    let derived = evaluate(&reserves.solvency, CHALLENGE, &decoded).unwrap();
    assert_eq!(derived, reserves.solvency, "the verifier derives the same statement from the evidence alone");
}

#[test]
fn three_honest_endpoints_give_the_chains_figures_and_the_verifier_derives_them_again() {
    runtime().block_on(async {
        let world = World::start([Lie::Honest, Lie::Honest, Lie::Honest]).await;
        let reserves = world.read(3).await.unwrap();
        assert_truth(&reserves);
        let chain = &reserves.solvency.chains[0];
        assert_eq!(chain.endpoints.iter().filter(|e| e.agreed).count(), 3);
        let latest = world.rpc.block_number().await.unwrap();
        assert_eq!(chain.number, latest - 2, "latest-2");
        let round = world.feed.latest_round_data().await.unwrap();
        let figure = &reserves.solvency.assets[0].sources[0];
        assert_eq!(figure.feed_round.as_ref().unwrap().round_id, round.round_id.to_string());
        assert_eq!(reserves.solvency.assets[2].sources[0].balances, [NATIVE_WEI.to_string()]);
    });
}

#[test]
fn one_lying_endpoint_of_three_is_outvoted_or_passed_over() {
    runtime().block_on(async {
        for lie in [Lie::BlockHash, Lie::BlockNumber, Lie::Balance, Lie::StorageValue, Lie::CallResult, Lie::Withhold, Lie::Down] {
            // The liar is listed first, so it is the first asked for state.
            let world = World::start([lie, Lie::Honest, Lie::Honest]).await;
            let reserves = world.read(2).await.unwrap_or_else(|e| panic!("{lie:?}: {e}"));
            assert_truth(&reserves);
            let liar = &reserves.solvency.chains[0].endpoints[0];
            match lie {
                Lie::BlockHash | Lie::Withhold | Lie::Down => {
                    assert!(!liar.agreed, "{lie:?}: {liar:?}");
                    assert!(liar.error.is_some(), "{lie:?}: the report says why: {liar:?}");
                }
                _ => {}
            }
        }
    });
}

#[test]
fn a_lie_that_would_reach_the_quorum_is_refused_not_believed() {
    runtime().block_on(async {
        // Two of three lie about state: the honest one still proves it, and the lies are never used.
        let world = World::start([Lie::Balance, Lie::StorageValue, Lie::Honest]).await;
        assert_truth(&world.read(3).await.unwrap());
        // Two of three rewrite block hashes: no two endpoints agree on one, and nothing is read.
        let world = World::start([Lie::BlockHash, Lie::BlockHash, Lie::Honest]).await;
        let err = world.read(2).await.err().expect("refused").to_string();
        assert!(err.contains("chain devnet") && err.contains("hashes to"), "{err}");
        // All three state lies: no endpoint supplies provable state.
        let world = World::start([Lie::Balance, Lie::Balance, Lie::Balance]).await;
        let err = world.read(2).await.err().expect("refused").to_string();
        assert!(err.contains("no agreeing endpoint supplied the state") && err.contains("does not hold"), "{err}");
    });
}

#[test]
fn an_endpoint_down_fails_a_read_that_needs_all_three() {
    runtime().block_on(async {
        let world = World::start([Lie::Honest, Lie::Down, Lie::Honest]).await;
        let err = world.read(3).await.err().expect("refused").to_string();
        assert!(err.contains("2 of 3 endpoints answered, 3 must agree"), "{err}");
        world.endpoints[1].liar.set(Lie::Honest);
        assert_truth(&world.read(3).await.unwrap());
    });
}

#[test]
fn bad_feeds_signatures_and_configurations_are_refused_by_name() {
    runtime().block_on(async {
        let world = World::start([Lie::Honest, Lie::Honest, Lie::Honest]).await;
        let liabilities = World::liabilities(400_0000_0000);
        let source = format!("chainlink feed {} on devnet", alloy_checksum(&world.feed.proxy.to_string()));

        let err = world.read_with(&world.config(2, 18, 86_400), &liabilities).await.err().unwrap().to_string();
        assert_eq!(err, format!("{source}: decimals: the feed reports 8 decimals, 18 are configured"));

        let wrong_chain = world.config(2, 8, 86_400).replace(&format!("chain_id = {CHAIN_ID}"), "chain_id = 1");
        let err = world.read_with(&wrong_chain, &liabilities).await.err().unwrap().to_string();
        assert!(err.contains("chain devnet") && err.contains(&format!("chain id {CHAIN_ID}, not 1")), "{err}");

        let no_btc = world.config(2, 8, 86_400).replace("asset = \"BTC\"", "asset = \"XBT\"");
        let err = world.read_with(&no_btc, &liabilities).await.err().unwrap().to_string();
        assert!(err.contains("reserves.XBT: not one of the round's [[assets]]") || err.contains("reserves.BTC: the asset has no reserves configured"), "{err}");

        let twice = world.config(2, 8, 86_400).replace(
            &format!("addresses = [\"{}\"] }}]\n\n[[reserves]]\nasset = \"ETH\"", world.token_holder),
            &format!("addresses = [\"{0}\", \"{0}\"] }}]\n\n[[reserves]]\nasset = \"ETH\"", world.token_holder),
        );
        let err = world.read_with(&twice, &liabilities).await.err().unwrap().to_string();
        assert!(err.contains("is listed twice"), "{err}");

        // An address whose signature is someone else's.
        let mut forged = world.signatures.clone();
        forged[1].signature = forged[0].signature.clone();
        let config: ReservesConfig = toml::from_str(&world.config(2, 8, 86_400)).unwrap();
        let err = enclave::reserves::read(&config, &liabilities, CHALLENGE, now_ms(), forged, &Route::Direct)
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains(&format!("address {}: ownership: signed by", world.native_holder)), "{err}");
        // A signature for another round's challenge.
        let err = enclave::reserves::read(&config, &liabilities, b"another challenge", now_ms(), world.signatures.clone(), &Route::Direct)
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("ownership: signed by"), "{err}");
        // No signature at all.
        let err = enclave::reserves::read(&config, &liabilities, CHALLENGE, now_ms(), Vec::new(), &Route::Direct)
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("ownership: no ownership signature"), "{err}");

        // A stale answer: updated two days before the block, with a one-day heartbeat.
        let now = now_ms() / 1000;
        world.feed.update(FEED_ANSWER, now - 2 * 86_400).await.unwrap();
        world.rpc.mine(3).await.unwrap();
        let err = world.read_with(&world.config(2, 8, 86_400), &liabilities).await.err().unwrap().to_string();
        assert!(err.starts_with(&format!("{source}: updatedAt: the answer is")), "{err}");
        // A zero, then a negative, answer.
        for answer in [0, -5] {
            world.feed.update(answer, now).await.unwrap();
            world.rpc.mine(3).await.unwrap();
            let err = world.read_with(&world.config(2, 8, 86_400), &liabilities).await.err().unwrap().to_string();
            assert_eq!(err, format!("{source}: answer: the feed's answer is {answer}, not positive"));
        }
    });
}

#[test]
fn an_insolvent_asset_is_read_and_stated_not_suppressed() {
    runtime().block_on(async {
        let world = World::start([Lie::Honest, Lie::Honest, Lie::Honest]).await;
        let short = World::liabilities(FEED_ANSWER as u128 + 1);
        let reserves = world.read_with(&world.config(2, 8, 86_400), &short).await.unwrap();
        let btc = &reserves.solvency.assets[0];
        assert!(!btc.solvent);
        assert_eq!(btc.liabilities, (FEED_ANSWER + 1).to_string());
        assert!(reserves.solvency.assets[1].solvent && reserves.solvency.assets[2].solvent);
        let derived = evaluate(&reserves.solvency, CHALLENGE, &reserves.evidence).unwrap();
        assert_eq!(derived, reserves.solvency);
    });
}

#[test]
fn evidence_tampered_after_the_read_is_refused_by_the_verifier() {
    runtime().block_on(async {
        let world = World::start([Lie::Honest, Lie::Honest, Lie::Honest]).await;
        let reserves = world.read(2).await.unwrap();
        // A richer native balance in the evidence: its proof no longer reaches the state root.
        let mut evidence = reserves.evidence.clone();
        let holder = evidence.chains[0]
            .accounts
            .iter_mut()
            .find(|a| a.address == world.native_holder.to_vec())
            .unwrap();
        holder.state.as_mut().unwrap().balance[0] = 1;
        let err = evaluate(&reserves.solvency, CHALLENGE, &evidence).unwrap_err();
        assert!(matches!(&err, ReservesError::Evidence { detail, .. } if detail.contains("does not hold")), "{err}");
        // A slot the feed's read needs, dropped: the call stops instead of reading zero.
        let mut evidence = reserves.evidence.clone();
        let proxy = Address::from(world.feed.proxy.0);
        evidence.chains[0].accounts.iter_mut().find(|a| a.address == proxy.to_vec()).unwrap().storage.clear();
        let err = evaluate(&reserves.solvency, CHALLENGE, &evidence).unwrap_err();
        assert!(matches!(err, ReservesError::Unproven { .. }), "{err}");
        // Another block's header.
        let mut evidence = reserves.evidence.clone();
        evidence.chains[0].header.push(0);
        assert!(evaluate(&reserves.solvency, CHALLENGE, &evidence).is_err());
        // A statement claiming more than the evidence gives is not what the evidence gives.
        let mut inflated = reserves.solvency.clone();
        inflated.assets[0].sources[0].amount = "1".repeat(20);
        assert_ne!(evaluate(&inflated, CHALLENGE, &reserves.evidence).unwrap(), inflated);
    });
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

fn alloy_checksum(text: &str) -> String {
    text.parse::<Address>().unwrap().to_checksum(None)
}

#[test]
fn statements_an_operator_could_shape_to_count_more_are_refused_by_the_verifier() {
    runtime().block_on(async {
        let world = World::start([Lie::Honest, Lie::Honest, Lie::Honest]).await;
        let reserves = world.read(2).await.unwrap();
        let (statement, evidence) = (&reserves.solvency, &reserves.evidence);
        assert_eq!(evaluate(statement, CHALLENGE, evidence).unwrap(), *statement);
        // Native wei read as whole coins (decimals 0): a 10^18-fold inflation.
        let mut scaled = statement.clone();
        scaled.assets[2].sources[0].source_decimals = 0;
        let err = evaluate(&scaled, CHALLENGE, evidence).unwrap_err();
        assert!(matches!(&err, ReservesError::Source { field: "source_decimals", .. }), "{err}");
        // The same chain under a second name, with the same owned address counted again there.
        let (mut twice, mut evidence_twice) = (statement.clone(), evidence.clone());
        let mut copy = twice.chains[0].clone();
        copy.name = "devnet-again".into();
        twice.chains.push(copy);
        let mut source = twice.assets[2].sources[0].clone();
        source.chain = "devnet-again".into();
        twice.assets[2].sources.push(source);
        let mut chain = evidence_twice.chains[0].clone();
        chain.name = "devnet-again".into();
        evidence_twice.chains.push(chain);
        let mut signature = evidence_twice.ownership[1].clone();
        signature.chain = "devnet-again".into();
        evidence_twice.ownership.push(signature);
        let err = evaluate(&twice, CHALLENGE, &evidence_twice).unwrap_err();
        assert!(err.to_string().contains("chain id 1337 is listed twice"), "{err}");
        // A quorum of 1 of 3: a minority endpoint's word.
        let mut minority = statement.clone();
        minority.chains[0].min_agreeing = 1;
        let err = evaluate(&minority, CHALLENGE, evidence).unwrap_err();
        assert!(err.to_string().contains("strict majority"), "{err}");
        // A name with a line break could make one signed message read as another's.
        let mut renamed = statement.clone();
        renamed.exchange = format!("{EXCHANGE}\nchain-id: 1");
        let err = evaluate(&renamed, CHALLENGE, evidence).unwrap_err();
        assert!(err.to_string().contains("control characters"), "{err}");
        // Another exchange's name over the same signatures: not the holder's key's signature, and
        // the evidence does not show the holder to be a contract wallet that could accept it.
        let mut other = statement.clone();
        other.exchange = "Other Exchange".into();
        let err = evaluate(&other, CHALLENGE, evidence).unwrap_err();
        assert!(
            matches!(&err, ReservesError::Unproven { missing, .. } if *missing == attestation::reserves::Missing::Account(world.token_holder)),
            "{err}"
        );

    });
}

#[test]
fn a_contract_wallet_counts_with_its_eip_1271_signature_and_not_with_another_keys() {
    runtime().block_on(async {
        let mut world = World::start([Lie::Honest, Lie::Honest, Lie::Honest]).await;
        let accounts = world.rpc.dev_accounts().await.unwrap();
        let (owner, stranger) = (accounts[3], accounts[4]);
        let wallet = world.rpc.deploy_wallet(owner).await.unwrap();
        world.rpc.set_balance(wallet, NATIVE_WEI).await.unwrap();
        world.rpc.mine(3).await.unwrap();
        let message = attestation::reserves::ownership::message(EXCHANGE, CHAIN_ID, alloy(wallet), CHALLENGE);
        let sign = |key| {
            let rpc = &world.rpc;
            let message = message.clone();
            async move {
                OwnershipSignature {
                    chain: "devnet".into(),
                    address: wallet.0.to_vec(),
                    signature: rpc.personal_sign(key, message.as_bytes()).await.unwrap().to_vec(),
                }
            }
        };
        let (by_owner, by_stranger) = (sign(owner).await, sign(stranger).await);
        // The wallet's ether, instead of the native holder's.
        let config = world.config(2, 8, 86_400).replace(&world.native_holder.to_string(), &alloy(wallet).to_string());
        assert!(config.contains(&alloy(wallet).to_string()));
        let honest = world.signatures.clone();
        world.signatures.push(by_owner);
        let reserves = world.read_with(&config, &World::liabilities(400_0000_0000)).await.unwrap();
        let eth = &reserves.solvency.assets[2];
        assert_eq!(eth.reserves, NATIVE_WEI.to_string());
        assert_eq!(evaluate(&reserves.solvency, CHALLENGE, &reserves.evidence).unwrap(), reserves.solvency);
        // Another key's signature: the wallet's own code refuses it, in the enclave and offline.
        world.signatures = honest;
        world.signatures.push(by_stranger.clone());
        let Err(err) = world.read_with(&config, &World::liabilities(400_0000_0000)).await else { panic!("accepted") };
        assert!(err.to_string().contains("does not accept the signature (EIP-1271)"), "{err}");
        let mut forged = reserves.evidence.clone();
        forged.ownership.retain(|s| s.address != wallet.0.to_vec());
        forged.ownership.push(by_stranger);
        forged.ownership.sort_by(|a, b| (&a.chain, &a.address).cmp(&(&b.chain, &b.address)));
        let err = evaluate(&reserves.solvency, CHALLENGE, &forged).unwrap_err();
        assert!(matches!(err, ReservesError::Ownership { .. }), "{err}");
    });
}
