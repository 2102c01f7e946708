//! JSON-RPC to an Ethereum endpoint over HTTPS that ends in the enclave ([`crate::net`]): single
//! and batched calls, answers parsed into alloy's RPC types. Nothing an endpoint says is trusted
//! beyond what the caller checks: headers are re-hashed, state is proven.

use std::time::Duration;

use alloy_primitives::{Address, Bytes, B256, U256};
use alloy_rpc_types_eth::EIP1186AccountProofResponse;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::config::EndpointConfig;
use crate::net::{HttpsTarget, Route};
use crate::tls::ServerPin;

/// Largest answer read from an endpoint (a batch of proofs).
pub const MAX_ANSWER_BYTES: usize = 32 << 20;

/// Why an endpoint's answer was not usable.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// The configuration of the endpoint.
    #[error("{0}")]
    Config(String),
    /// The connection or HTTP exchange.
    #[error(transparent)]
    Net(#[from] crate::net::NetError),
    /// Not a JSON-RPC answer.
    #[error("HTTP {status}: {detail}")]
    Http {
        /// Status.
        status: u16,
        /// What came back.
        detail: String,
    },
    /// A JSON-RPC error or a malformed result.
    #[error("{method}: {detail}")]
    Answer {
        /// The method.
        method: String,
        /// What was wrong.
        detail: String,
    },
}

/// One endpoint, ready to call.
pub struct Endpoint {
    /// The configured URL.
    pub url: String,
    target: HttpsTarget,
    path: String,
    route: Route,
    timeout: Duration,
    /// SHA-256 of the certificate last presented.
    pub cert_sha256: Option<[u8; 32]>,
}

impl Endpoint {
    /// An endpoint reached along `route`.
    pub fn new(config: &EndpointConfig, route: &Route, timeout: Duration) -> Result<Self, RpcError> {
        let (host, port, path) = config.target().map_err(RpcError::Config)?;
        let pin = config.pin().map_err(RpcError::Config)?;
        Ok(Self {
            url: config.url.clone(),
            target: HttpsTarget { host, port, pin },
            path,
            route: route.clone(),
            timeout,
            cert_sha256: None,
        })
    }

    async fn post(&mut self, body: Value) -> Result<Value, RpcError> {
        let bytes = bytes::Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
        let request = crate::net::post(&self.target, &self.path, "application/json", bytes)
            .map_err(|e| RpcError::Config(e.to_string()))?;
        let answer = crate::net::https(&self.route, &self.target, request, MAX_ANSWER_BYTES, self.timeout).await?;
        self.cert_sha256 = Some(answer.server_cert_sha256);
        if !answer.status.is_success() {
            let detail = String::from_utf8_lossy(&answer.body[..answer.body.len().min(200)]).into_owned();
            return Err(RpcError::Http { status: answer.status.as_u16(), detail });
        }
        serde_json::from_slice(&answer.body)
            .map_err(|e| RpcError::Http { status: answer.status.as_u16(), detail: format!("not JSON: {e}") })
    }

    /// Calls `method` with `params` and parses its result.
    pub async fn call<T: DeserializeOwned>(&mut self, method: &str, params: Value) -> Result<T, RpcError> {
        let answer = self.post(json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})).await?;
        result(method, answer)
    }

    /// Calls `method` once per element of `params`, in one batch, and parses the results in order.
    pub async fn batch<T: DeserializeOwned>(&mut self, method: &str, params: Vec<Value>) -> Result<Vec<T>, RpcError> {
        if params.is_empty() {
            return Ok(Vec::new());
        }
        let count = params.len();
        let calls: Vec<Value> = params
            .into_iter()
            .enumerate()
            .map(|(id, p)| json!({"jsonrpc": "2.0", "id": id, "method": method, "params": p}))
            .collect();
        let answer = self.post(Value::Array(calls)).await?;
        let bad = |detail: String| RpcError::Answer { method: method.to_owned(), detail };
        let Value::Array(answers) = answer else { return Err(bad("a batch was not answered with an array".into())) };
        let mut results: Vec<Option<T>> = (0..count).map(|_| None).collect();
        for answer in answers {
            let id = answer.get("id").and_then(Value::as_u64).ok_or_else(|| bad("an answer without an id".into()))?;
            let slot = usize::try_from(id)
                .ok()
                .and_then(|i| results.get_mut(i))
                .ok_or_else(|| bad(format!("an answer to id {id}, which was not asked")))?;
            if slot.is_some() {
                return Err(bad(format!("two answers to id {id}")));
            }
            *slot = Some(result(method, answer)?);
        }
        results.into_iter().map(|r| r.ok_or_else(|| bad("an answer is missing".into()))).collect()
    }

    /// Whether the configuration pinned the certificate by hash rather than validating it.
    pub fn is_pinned(&self) -> bool {
        matches!(self.target.pin, ServerPin::Sha256(_))
    }

    /// `eth_chainId`.
    pub async fn chain_id(&mut self) -> Result<u64, RpcError> {
        let id: U256 = self.call("eth_chainId", json!([])).await?;
        u64::try_from(id).map_err(|_| RpcError::Answer { method: "eth_chainId".into(), detail: "out of range".into() })
    }

    /// `eth_blockNumber`.
    pub async fn block_number(&mut self) -> Result<u64, RpcError> {
        let number: U256 = self.call("eth_blockNumber", json!([])).await?;
        u64::try_from(number).map_err(|_| RpcError::Answer { method: "eth_blockNumber".into(), detail: "out of range".into() })
    }

    /// `eth_getBlockByNumber(tag, false)`: the header, with the hash the endpoint claims for it.
    pub async fn header(&mut self, tag: Value) -> Result<alloy_rpc_types_eth::Header, RpcError> {
        let header: Option<alloy_rpc_types_eth::Header> = self.call("eth_getBlockByNumber", json!([tag, false])).await?;
        header.ok_or_else(|| RpcError::Answer { method: "eth_getBlockByNumber".into(), detail: "no such block".into() })
    }

    /// `eth_getProof` for each (address, slots), at `block`.
    pub async fn proofs(
        &mut self,
        requests: &[(Address, Vec<B256>)],
        block: u64,
    ) -> Result<Vec<EIP1186AccountProofResponse>, RpcError> {
        let mut out = Vec::with_capacity(requests.len());
        for chunk in requests.chunks(100) {
            let params = chunk.iter().map(|(a, slots)| json!([a, slots, format!("{block:#x}")])).collect();
            out.extend(self.batch::<EIP1186AccountProofResponse>("eth_getProof", params).await?);
        }
        Ok(out)
    }

    /// `eth_getCode` of each address at `block`.
    pub async fn code(&mut self, addresses: &[Address], block: u64) -> Result<Vec<Bytes>, RpcError> {
        let params = addresses.iter().map(|a| json!([a, format!("{block:#x}")])).collect();
        self.batch("eth_getCode", params).await
    }

    /// `eth_createAccessList` of each call (`to`, `data`) from `from` at `block`, in batches: the
    /// accounts and slots each touches (a hint; what is missing is found by running the call).
    pub async fn access_lists(
        &mut self,
        from: Address,
        calls: &[(Address, Vec<u8>)],
        block: u64,
    ) -> Result<Vec<Vec<(Address, Vec<B256>)>>, RpcError> {
        let mut out = Vec::with_capacity(calls.len());
        for chunk in calls.chunks(100) {
            let params = chunk
                .iter()
                .map(|(to, data)| json!([{"from": from, "to": to, "data": Bytes::copy_from_slice(data)}, format!("{block:#x}")]))
                .collect();
            let answers: Vec<alloy_rpc_types_eth::AccessListResult> = self.batch("eth_createAccessList", params).await?;
            // A hint from one endpoint: a hostile one must not make the evidence (proofs of
            // everything listed) grow without bound.
            if let Some(answer) = answers.iter().find(|a| {
                a.access_list.0.len() > MAX_ACCESS_LIST_ACCOUNTS
                    || a.access_list.0.iter().map(|i| i.storage_keys.len()).sum::<usize>() > MAX_ACCESS_LIST_SLOTS
            }) {
                return Err(RpcError::Answer {
                    method: "eth_createAccessList".into(),
                    detail: format!(
                        "an access list of {} accounts is longer than a reserves call needs (at most {MAX_ACCESS_LIST_ACCOUNTS} accounts and {MAX_ACCESS_LIST_SLOTS} slots)",
                        answer.access_list.0.len()
                    ),
                });
            }
            out.extend(
                answers
                    .into_iter()
                    .map(|answer| answer.access_list.0.into_iter().map(|item| (item.address, item.storage_keys)).collect()),
            );
        }
        Ok(out)
    }
}

/// Most accounts one call's access list may name (a feed proxy, its aggregator, a token and its
/// implementation touch a handful).
const MAX_ACCESS_LIST_ACCOUNTS: usize = 16;
/// Most storage slots one call's access list may name.
const MAX_ACCESS_LIST_SLOTS: usize = 64;

fn result<T: DeserializeOwned>(method: &str, answer: Value) -> Result<T, RpcError> {
    let bad = |detail: String| RpcError::Answer { method: method.to_owned(), detail };
    if let Some(error) = answer.get("error") {
        let message = error.get("message").and_then(Value::as_str).unwrap_or("no message");
        return Err(bad(format!("error {}: {}", error.get("code").cloned().unwrap_or(Value::Null), message)));
    }
    let value = answer.get("result").cloned().ok_or_else(|| bad("neither result nor error".into()))?;
    serde_json::from_value(value).map_err(|e| bad(format!("malformed result: {e}")))
}
