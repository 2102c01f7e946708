//! A real anvil: Chainlink's proxy in front of Chainlink's mock aggregator reports what was set,
//! an OpenZeppelin ERC-20 holds what was minted, `eth_getProof` proves funded accounts, anvil
//! signs for its dev accounts, and every lie of `LyingRpc` changes what a client sees (and
//! honesty changes nothing), also through the TLS front on one keep-alive connection.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use testkit::chain::{
    abi, quantity, selector, storage_key, Address, Anvil, ChainError, Lie, LyingRpc, Rpc, LIE_BLOCKS, LIE_WEI,
    TEST_TOKEN_TOTAL_SUPPLY_SLOT, WITHHELD_CODE,
};
use testkit::tls_front::TlsFront;

const CHAIN_ID: u64 = 31337;
const ETHER: u128 = 1_000_000_000_000_000_000;
/// Keccak-256 of the empty string: the code hash of an account without code.
const EMPTY_CODE_HASH: &str = "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470";

fn address(last: u8) -> Address {
    let mut bytes = [0x5a; 20];
    bytes[19] = last;
    Address(bytes)
}

async fn latest_timestamp(rpc: &Rpc) -> u64 {
    let block = rpc.latest_block().await.unwrap();
    let text = block["timestamp"].as_str().unwrap();
    u64::from_str_radix(text.trim_start_matches("0x"), 16).unwrap()
}

#[tokio::test]
async fn a_feed_reports_through_chainlinks_proxy_what_its_aggregator_was_given() {
    let anvil = Anvil::start(CHAIN_ID).unwrap();
    let rpc = anvil.rpc();
    assert_eq!(rpc.chain_id().await.unwrap(), CHAIN_ID);
    let deployed_at = latest_timestamp(&rpc).await + 100;
    rpc.set_next_block_timestamp(deployed_at).await.unwrap();
    // 150,000.12345678 BTC of reserves, 8 decimals, as a WBTC Proof-of-Reserve feed reports.
    let reserves: i128 = 15_000_012_345_678;
    let feed = rpc.deploy_feed(8, reserves).await.unwrap();
    assert_ne!(feed.proxy, feed.aggregator);

    // The raw calls, by selector, through the proxy.
    let decimals = rpc.call(feed.proxy, &[0x31, 0x3c, 0xe5, 0x67]).await.unwrap();
    assert_eq!(decimals, abi::uint(8).to_vec());
    let round = rpc.call(feed.proxy, &[0xfe, 0xaf, 0x96, 0x8c]).await.unwrap();
    let phase_1_round_1 = (1u128 << 64) | 1;
    let expected: Vec<u8> = [
        abi::uint(phase_1_round_1),
        abi::int(reserves),
        abi::uint(deployed_at.into()),
        abi::uint(deployed_at.into()),
        abi::uint(phase_1_round_1),
    ]
    .concat();
    assert_eq!(round, expected);
    let behind = rpc.call(feed.proxy, &abi::call(selector::AGGREGATOR, &[])).await.unwrap();
    assert_eq!(abi::read_address(&behind, 0), Some(feed.aggregator));

    // A new round, negative on purpose (int256 sign extension), at a time of our choosing.
    assert_eq!(feed.update(-7, deployed_at + 500).await.unwrap(), 2);
    let latest = feed.latest_round_data().await.unwrap();
    assert_eq!(latest.round_id, (1u128 << 64) | 2);
    assert_eq!(latest.answer, -7);
    assert_eq!((latest.started_at, latest.updated_at), (deployed_at + 500, deployed_at + 500));
    assert_eq!(latest.answered_in_round, latest.round_id);
    assert_eq!(feed.decimals().await.unwrap(), 8);
}

#[tokio::test]
async fn a_token_holds_what_was_minted_and_its_supply_slot_is_proven() {
    let anvil = Anvil::start(CHAIN_ID).unwrap();
    let rpc = anvil.rpc();
    let accounts = rpc.dev_accounts().await.unwrap();
    assert_eq!(accounts.len(), 10);
    let holder = accounts[1];
    let other = address(1);
    let supply = 5_000_000 * 1_000_000; // 5 million, 6 decimals (as USDC)
    let token = rpc.deploy_token(6, holder, supply).await.unwrap();

    let mut balance_of = vec![0x70, 0xa0, 0x82, 0x31];
    balance_of.extend_from_slice(&abi::address(holder));
    assert_eq!(rpc.call(token, &balance_of).await.unwrap(), abi::uint(supply).to_vec());
    assert_eq!(rpc.call(token, &abi::call(selector::DECIMALS, &[])).await.unwrap(), abi::uint(6).to_vec());
    assert_eq!(rpc.call(token, &abi::call(selector::TOTAL_SUPPLY, &[])).await.unwrap(), abi::uint(supply).to_vec());

    rpc.token_transfer(token, holder, other, 1_250_000).await.unwrap();
    assert_eq!(rpc.token_balance(token, holder).await.unwrap(), supply - 1_250_000);
    assert_eq!(rpc.token_balance(token, other).await.unwrap(), 1_250_000);
    // A holder that is not a dev account cannot send: the node holds no key for it.
    assert!(matches!(rpc.token_transfer(token, other, holder, 1).await, Err(ChainError::Rpc { .. })));

    let proof = rpc
        .request(
            "eth_getProof",
            json!([token.to_string(), [storage_key(TEST_TOKEN_TOTAL_SUPPLY_SLOT.into())], "latest"]),
        )
        .await
        .unwrap();
    assert_eq!(proof["address"].as_str().unwrap().to_lowercase(), token.to_string());
    assert!(!proof["accountProof"].as_array().unwrap().is_empty());
    assert_ne!(proof["codeHash"], json!(EMPTY_CODE_HASH));
    let storage = &proof["storageProof"][0];
    assert_eq!(storage["value"], json!(quantity(supply)));
    assert!(!storage["proof"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn get_proof_proves_a_funded_account_and_the_node_mines_and_signs_on_request() {
    let anvil = Anvil::start(CHAIN_ID).unwrap();
    let rpc = anvil.rpc();
    let funded = address(2);
    rpc.set_balance(funded, 12 * ETHER + ETHER / 2).await.unwrap();
    assert_eq!(rpc.balance(funded).await.unwrap(), 12 * ETHER + ETHER / 2);

    let proof = rpc.request("eth_getProof", json!([funded.to_string(), [], "latest"])).await.unwrap();
    assert_eq!(proof["balance"], json!(quantity(12 * ETHER + ETHER / 2)));
    assert_eq!(proof["nonce"], json!("0x0"));
    assert_eq!(proof["codeHash"], json!(EMPTY_CODE_HASH));
    let nodes = proof["accountProof"].as_array().unwrap();
    assert!(!nodes.is_empty());
    assert!(nodes.iter().all(|n| n.as_str().is_some_and(|n| n.starts_with("0x") && n.len() > 2)));

    let before = rpc.block_number().await.unwrap();
    rpc.mine(5).await.unwrap();
    assert_eq!(rpc.block_number().await.unwrap(), before + 5);
    let at = latest_timestamp(&rpc).await + 3600;
    rpc.set_next_block_timestamp(at).await.unwrap();
    rpc.mine(1).await.unwrap();
    assert_eq!(latest_timestamp(&rpc).await, at);

    // Dev account 0's key is Foundry's well-known first test key; the expected signature was made
    // with it by eth-account 0.13.7's `sign_message(encode_defunct(...))`.
    let account0: Address = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266".parse().unwrap();
    assert_eq!(rpc.deployer().await.unwrap(), account0);
    let signature = rpc.personal_sign(account0, b"solvency-enclave reserves attestation").await.unwrap();
    assert_eq!(
        hex::encode(signature),
        "1466fcee9206584ef9437ecb195294ed856d11f4e269eba789e74535e7919e75\
         6954242b15c8a592c5380d1e6f93b8a5cc64b1cfcfe25afd7ba744c1dda9bd40\
         1b"
    );
}

/// What a client sees of the chain, through one endpoint.
#[derive(Debug, PartialEq)]
struct View {
    block_hash: Value,
    block_number: Value,
    head: Value,
    balance: Value,
    proof_balance: Value,
    proof_storage: Value,
    round: Vec<u8>,
}

async fn view(rpc: &Rpc, funded: Address, feed: Address, token: Address) -> Result<View, ChainError> {
    let block = rpc.request("eth_getBlockByNumber", json!(["0x1", false])).await?;
    let account = rpc.request("eth_getProof", json!([funded.to_string(), [], "latest"])).await?;
    let storage = rpc.request("eth_getProof", json!([token.to_string(), [storage_key(2)], "latest"])).await?;
    Ok(View {
        block_hash: block["hash"].clone(),
        block_number: block["number"].clone(),
        head: rpc.request("eth_blockNumber", json!([])).await?,
        balance: rpc.request("eth_getBalance", json!([funded.to_string(), "latest"])).await?,
        proof_balance: account["balance"].clone(),
        proof_storage: storage["storageProof"][0]["value"].clone(),
        round: rpc.call(feed, &abi::call(selector::LATEST_ROUND_DATA, &[])).await?,
    })
}

fn plus(value: &Value, addend: u128) -> Value {
    let n = u128::from_str_radix(value.as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    json!(quantity(n + addend))
}

#[tokio::test]
async fn every_lie_changes_what_a_client_sees_and_honesty_changes_nothing() {
    let anvil = Anvil::start(CHAIN_ID).unwrap();
    let node = anvil.rpc();
    let funded = address(3);
    node.set_balance(funded, 42 * ETHER).await.unwrap();
    let feed = node.deploy_feed(8, 123_456_789).await.unwrap();
    let supply = 77 * ETHER;
    let token = node.deploy_token(18, funded, supply).await.unwrap();
    let truth = view(&node, funded, feed.proxy, token).await.unwrap();
    assert_eq!(truth.balance, json!(quantity(42 * ETHER)));
    assert_eq!(truth.proof_storage, json!(quantity(supply)));

    let lying = LyingRpc::start(anvil.addr(), Lie::Honest).await.unwrap();
    let client = Rpc::new(lying.addr());
    assert_eq!(view(&client, funded, feed.proxy, token).await.unwrap(), truth);
    let request = json!({"jsonrpc": "2.0", "id": 9, "method": "eth_getBlockByNumber", "params": ["latest", true]});
    assert_eq!(
        client.post(request.to_string()).await.unwrap(),
        node.post(request.to_string()).await.unwrap(),
        "an honest relay is byte for byte"
    );

    // The lie changes at run time, through a handle another task could hold.
    let handle = lying.handle();
    handle.set(Lie::BlockHash);
    let seen = view(&client, funded, feed.proxy, token).await.unwrap();
    assert_ne!(seen.block_hash, truth.block_hash);
    assert_eq!(seen.block_hash.as_str().unwrap()[..64], truth.block_hash.as_str().unwrap()[..64]);
    assert_eq!(View { block_hash: truth.block_hash.clone(), ..seen }, truth);

    handle.set(Lie::Balance);
    let seen = view(&client, funded, feed.proxy, token).await.unwrap();
    assert_eq!(seen.balance, json!(quantity(42 * ETHER + LIE_WEI)));
    assert_eq!(seen.proof_balance, json!(quantity(42 * ETHER + LIE_WEI)));
    assert_eq!(View { balance: truth.balance.clone(), proof_balance: truth.proof_balance.clone(), ..seen }, truth);

    handle.set(Lie::StorageValue);
    let seen = view(&client, funded, feed.proxy, token).await.unwrap();
    assert_eq!(seen.proof_storage, json!(quantity(supply + LIE_WEI)));
    assert_eq!(View { proof_storage: truth.proof_storage.clone(), ..seen }, truth);

    handle.set(Lie::CallResult);
    let seen = view(&client, funded, feed.proxy, token).await.unwrap();
    assert_eq!(abi::read_int(&seen.round, 1), Some(123_456_789 ^ 1));
    assert_eq!(abi::read_int(&truth.round, 1), Some(123_456_789));
    assert_eq!(View { round: truth.round.clone(), ..seen }, truth);

    handle.set(Lie::BlockNumber);
    let seen = view(&client, funded, feed.proxy, token).await.unwrap();
    assert_eq!(seen.block_number, plus(&truth.block_number, LIE_BLOCKS));
    assert_eq!(seen.head, plus(&truth.head, LIE_BLOCKS));
    assert_eq!(View { block_number: truth.block_number.clone(), head: truth.head.clone(), ..seen }, truth);

    // Batches are lied about call by call.
    handle.set(Lie::Balance);
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
        {"jsonrpc": "2.0", "id": 2, "method": "eth_getBalance", "params": [funded.to_string(), "latest"]},
    ]);
    let answers: Value = serde_json::from_slice(&client.post(batch.to_string()).await.unwrap()).unwrap();
    let by_id = |id: u64| answers.as_array().unwrap().iter().find(|a| a["id"] == json!(id)).unwrap()["result"].clone();
    assert_eq!(by_id(1), json!(quantity(CHAIN_ID.into())));
    assert_eq!(by_id(2), json!(quantity(42 * ETHER + LIE_WEI)));

    handle.set(Lie::Withhold);
    let refused = client.block_number().await.unwrap_err();
    assert!(matches!(refused, ChainError::Rpc { code: WITHHELD_CODE, .. }), "{refused}");
    let answers: Value = serde_json::from_slice(&client.post(batch.to_string()).await.unwrap()).unwrap();
    assert_eq!(answers.as_array().unwrap().len(), 2);
    assert!(answers.as_array().unwrap().iter().all(|a| a["error"]["code"] == json!(WITHHELD_CODE)));

    handle.set(Lie::Down);
    let down = client.block_number().await.unwrap_err();
    assert!(matches!(down, ChainError::Http { .. }), "{down}");

    lying.set(Lie::Honest);
    assert_eq!(view(&client, funded, feed.proxy, token).await.unwrap(), truth);
}

/// A TLS connection to `front`, trusting only its CA, as an HTTP/1.1 client.
async fn tls_client(front: &TlsFront) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from_pem_slice(front.ca_pem().as_bytes()).unwrap()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(front.addr()).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.unwrap();
    tokio::spawn(connection);
    sender
}

async fn ask(sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>, method: &str) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": []}).to_string();
    let request = http::Request::post("/")
        .header(http::header::HOST, "localhost")
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    sender.ready().await.unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), http::StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice::<Value>(&body).unwrap()
}

#[tokio::test]
async fn the_tls_front_serves_anvil_and_the_lying_endpoint_over_one_keep_alive_connection() {
    let anvil = Anvil::start(CHAIN_ID).unwrap();
    let head = anvil.rpc().block_number().await.unwrap();

    let front = TlsFront::start(anvil.addr(), &[]).await.unwrap();
    let mut sender = tls_client(&front).await;
    assert_eq!(ask(&mut sender, "eth_chainId").await["result"], json!(quantity(CHAIN_ID.into())));
    assert_eq!(ask(&mut sender, "eth_blockNumber").await["result"], json!(quantity(head.into())));

    let lying = LyingRpc::start(anvil.addr(), Lie::Honest).await.unwrap();
    let front = TlsFront::start(lying.addr(), &["rpc.example".to_owned()]).await.unwrap();
    let mut sender = tls_client(&front).await;
    assert_eq!(ask(&mut sender, "eth_blockNumber").await["result"], json!(quantity(head.into())));
    lying.set(Lie::BlockNumber);
    assert_eq!(ask(&mut sender, "eth_blockNumber").await["result"], json!(quantity(u128::from(head) + LIE_BLOCKS)));
    lying.set(Lie::Withhold);
    assert_eq!(ask(&mut sender, "eth_chainId").await["error"]["code"], json!(WITHHELD_CODE));
    assert!(!sender.is_closed(), "three answers on one connection");
}
