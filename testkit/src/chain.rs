//! A private Ethereum node for tests and the demo: [`Anvil`] starts Foundry's `anvil` on a free
//! port of 127.0.0.1 and stops it when dropped; [`Rpc`] is a small JSON-RPC client for it that
//! deploys the contracts in `testkit/contracts` (Chainlink's mock aggregator behind Chainlink's
//! proxy, an OpenZeppelin ERC-20) and drives the node's test methods; [`LyingRpc`] relays
//! JSON-RPC to a node and lies, on purpose and on demand, in one of the ways a hostile endpoint
//! could ([`Lie`]).
//!
//! Amounts are `u128` (enough for any test balance); call data is ABI-encoded by hand with the
//! word helpers in [`abi`], since every argument here is a single 32-byte word.

use std::collections::VecDeque;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};

/// The anvil release CI installs.
pub const ANVIL_VERSION: &str = "1.7.1";
/// The command that installs it, from the npm registry.
pub const ANVIL_INSTALL: &str = "npm install -g --no-fund --no-audit @foundry-rs/anvil-linux-amd64@1.7.1";
/// The environment variable that, when set, names the anvil binary to run.
pub const ANVIL_ENV: &str = "SOLVENCY_ANVIL";

/// How long anvil may take to say where it listens.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one HTTP exchange with a node may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest answer (or, for [`LyingRpc`], request) body read.
const BODY_LIMIT: usize = 64 << 20;
/// How many of anvil's last output lines a start failure reports.
const TAIL_LINES: usize = 40;

/// Chainlink's `MockV3Aggregator` (`@chainlink/contracts` 1.5.0, solc 0.8.26), creation code.
pub const MOCK_V3_AGGREGATOR_BIN: &str = include_str!("../contracts/build/MockV3Aggregator.bin");
/// Chainlink's `EACAggregatorProxy` (`@chainlink/contracts` 0.8.0, solc 0.6.6), creation code.
pub const EAC_AGGREGATOR_PROXY_BIN: &str = include_str!("../contracts/build/EACAggregatorProxy.bin");
/// `TestToken`, an OpenZeppelin 5.4.0 ERC-20 (solc 0.8.26), creation code.
pub const TEST_TOKEN_BIN: &str = include_str!("../contracts/build/TestToken.bin");
/// Creation bytecode of `TestWallet` (`contracts/src/TestWallet.sol`): an EIP-1271 contract wallet.
pub const TEST_WALLET_BIN: &str = include_str!("../contracts/build/TestWallet.bin");

/// Function selectors the helpers call (the first four bytes of the Keccak-256 of the signature).
pub mod selector {
    /// `latestRoundData()`
    pub const LATEST_ROUND_DATA: [u8; 4] = [0xfe, 0xaf, 0x96, 0x8c];
    /// `decimals()`
    pub const DECIMALS: [u8; 4] = [0x31, 0x3c, 0xe5, 0x67];
    /// `balanceOf(address)`
    pub const BALANCE_OF: [u8; 4] = [0x70, 0xa0, 0x82, 0x31];
    /// `transfer(address,uint256)`
    pub const TRANSFER: [u8; 4] = [0xa9, 0x05, 0x9c, 0xbb];
    /// `totalSupply()`
    pub const TOTAL_SUPPLY: [u8; 4] = [0x18, 0x16, 0x0d, 0xdd];
    /// `updateRoundData(uint80,int256,uint256,uint256)` (MockV3Aggregator)
    pub const UPDATE_ROUND_DATA: [u8; 4] = [0x4a, 0xa2, 0x01, 0x1f];
    /// `updateAnswer(int256)` (MockV3Aggregator)
    pub const UPDATE_ANSWER: [u8; 4] = [0xa8, 0x7a, 0x20, 0xce];
    /// `latestRound()`
    pub const LATEST_ROUND: [u8; 4] = [0x66, 0x8a, 0x0f, 0x02];
    /// `aggregator()` (the proxy's current aggregator)
    pub const AGGREGATOR: [u8; 4] = [0x24, 0x5a, 0x7b, 0xfc];
}

/// The storage slot of `TestToken`'s `_totalSupply` (OpenZeppelin 5's ERC-20 keeps `_balances`
/// at 0, `_allowances` at 1, `_totalSupply` at 2).
pub const TEST_TOKEN_TOTAL_SUPPLY_SLOT: u8 = 2;

/// What went wrong starting or talking to a node.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// No anvil binary was found.
    #[error("anvil was not found ({looked}); install it with `{ANVIL_INSTALL}` or set {ANVIL_ENV} to its path")]
    NoAnvil {
        /// Where it was looked for.
        looked: String,
    },
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// anvil exited, or did not say where it listens in time.
    #[error("anvil did not start: {reason}; its last output: {output}")]
    AnvilStart {
        /// Why it is taken not to have started.
        reason: String,
        /// The last lines it printed.
        output: String,
    },
    /// The HTTP exchange with the endpoint failed (refused, closed, timed out, not 200).
    #[error("HTTP to {addr}: {reason}")]
    Http {
        /// The endpoint.
        addr: SocketAddr,
        /// What happened.
        reason: String,
    },
    /// The endpoint answered with a JSON-RPC error.
    #[error("{method}: error {code}: {message}")]
    Rpc {
        /// The method called.
        method: String,
        /// The error's code.
        code: i64,
        /// The error's message.
        message: String,
    },
    /// The endpoint's answer was not what the method returns.
    #[error("{method}: unexpected answer: {reason}")]
    Malformed {
        /// The method called.
        method: String,
        /// What was wrong with it.
        reason: String,
    },
    /// A transaction reverted, or was not mined.
    #[error("transaction {hash}: {reason}")]
    Transaction {
        /// Its hash, hex.
        hash: String,
        /// What happened.
        reason: String,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ChainError {
    let what = what.into();
    move |source| ChainError::Io { what, source }
}

fn malformed(method: &str, reason: impl Into<String>) -> ChainError {
    ChainError::Malformed { method: method.to_owned(), reason: reason.into() }
}

/// A 20-byte Ethereum account address. Shown as `0x` and 40 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address(pub [u8; 20]);

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a string is not an [`Address`].
#[derive(Debug, thiserror::Error)]
#[error("not a 0x-prefixed 20-byte hex address: {0:?}")]
pub struct AddressError(String);

impl FromStr for Address {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s.strip_prefix("0x").ok_or_else(|| AddressError(s.to_owned()))?;
        let mut bytes = [0u8; 20];
        hex::decode_to_slice(digits, &mut bytes).map_err(|_| AddressError(s.to_owned()))?;
        Ok(Self(bytes))
    }
}

/// ABI encoding and decoding of single 32-byte words, all the contracts here need.
pub mod abi {
    use super::Address;

    /// One ABI word.
    pub type Word = [u8; 32];

    /// An unsigned integer (`uint8` … `uint256`).
    pub fn uint(value: u128) -> Word {
        let mut word = [0u8; 32];
        word[16..].copy_from_slice(&value.to_be_bytes());
        word
    }

    /// A signed integer (`int256` and narrower), sign-extended.
    pub fn int(value: i128) -> Word {
        let mut word = if value < 0 { [0xff; 32] } else { [0u8; 32] };
        word[16..].copy_from_slice(&value.to_be_bytes());
        word
    }

    /// An address.
    pub fn address(address: Address) -> Word {
        let mut word = [0u8; 32];
        word[12..].copy_from_slice(&address.0);
        word
    }

    /// Call data: a selector and the words of the arguments.
    pub fn call(selector: [u8; 4], args: &[Word]) -> Vec<u8> {
        let mut data = selector.to_vec();
        args.iter().for_each(|word| data.extend_from_slice(word));
        data
    }

    /// Creation code followed by the constructor's argument words.
    pub fn creation(bytecode: &[u8], args: &[Word]) -> Vec<u8> {
        let mut data = bytecode.to_vec();
        args.iter().for_each(|word| data.extend_from_slice(word));
        data
    }

    /// Word `index` of `data`, if `data` has it.
    pub fn word(data: &[u8], index: usize) -> Option<Word> {
        let start = index.checked_mul(32)?;
        data.get(start..start.checked_add(32)?)?.try_into().ok()
    }

    /// Word `index` as an unsigned integer, if it fits in 128 bits.
    pub fn read_uint(data: &[u8], index: usize) -> Option<u128> {
        let word = word(data, index)?;
        if word[..16].iter().any(|&b| b != 0) {
            return None;
        }
        Some(u128::from_be_bytes(word[16..].try_into().ok()?))
    }

    /// Word `index` as a signed integer, if it fits in 128 bits.
    pub fn read_int(data: &[u8], index: usize) -> Option<i128> {
        let word = word(data, index)?;
        let value = i128::from_be_bytes(word[16..].try_into().ok()?);
        let extension = if value < 0 { 0xff } else { 0 };
        word[..16].iter().all(|&b| b == extension).then_some(value)
    }

    /// Word `index` as an address, if its upper 12 bytes are zero.
    pub fn read_address(data: &[u8], index: usize) -> Option<Address> {
        let word = word(data, index)?;
        if word[..12].iter().any(|&b| b != 0) {
            return None;
        }
        Some(Address(word[12..].try_into().ok()?))
    }
}

/// A JSON-RPC quantity: `0x` and hex digits without leading zeros.
pub fn quantity(value: u128) -> String {
    format!("{value:#x}")
}

/// A storage key as `eth_getProof` takes it: the slot number as 32 bytes, hex.
pub fn storage_key(slot: u128) -> String {
    data(&abi::uint(slot))
}

fn parse_quantity(method: &str, value: &Value) -> Result<u128, ChainError> {
    let text = value.as_str().ok_or_else(|| malformed(method, format!("{value} is not a quantity")))?;
    let digits = text.strip_prefix("0x").ok_or_else(|| malformed(method, format!("{text:?} is not 0x-prefixed")))?;
    u128::from_str_radix(digits, 16).map_err(|_| malformed(method, format!("{text:?} is not a quantity under 2^128")))
}

fn parse_u64(method: &str, value: &Value) -> Result<u64, ChainError> {
    u64::try_from(parse_quantity(method, value)?).map_err(|_| malformed(method, format!("{value} is over 2^64")))
}

fn parse_data(method: &str, value: &Value) -> Result<Vec<u8>, ChainError> {
    let text = value.as_str().ok_or_else(|| malformed(method, format!("{value} is not hex data")))?;
    let digits = text.strip_prefix("0x").ok_or_else(|| malformed(method, format!("{text:?} is not 0x-prefixed")))?;
    hex::decode(digits).map_err(|_| malformed(method, format!("{text:?} is not hex data")))
}

fn parse_address(method: &str, value: &Value) -> Result<Address, ChainError> {
    value.as_str().and_then(|s| s.parse().ok()).ok_or_else(|| malformed(method, format!("{value} is not an address")))
}

fn data(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

fn decode_bin(name: &str, hex_text: &str) -> Result<Vec<u8>, ChainError> {
    hex::decode(hex_text.trim())
        .map_err(|e| ChainError::Io { what: format!("reading {name}'s bytecode"), source: std::io::Error::other(e) })
}

/// A running anvil, stopped when dropped.
pub struct Anvil {
    child: Child,
    addr: SocketAddr,
    chain_id: u64,
}

impl fmt::Debug for Anvil {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Anvil").field("addr", &self.addr).field("chain_id", &self.chain_id).finish()
    }
}

fn is_executable(path: &Path) -> bool {
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Finds anvil as [`Anvil::locate`] says, from the given environment.
fn locate_from(env_path: Option<std::ffi::OsString>, path: Option<std::ffi::OsString>) -> Result<PathBuf, ChainError> {
    if let Some(named) = env_path {
        let named = PathBuf::from(named);
        return if is_executable(&named) {
            Ok(named)
        } else {
            Err(ChainError::NoAnvil { looked: format!("{ANVIL_ENV}={} is not an executable file", named.display()) })
        };
    }
    if let Some(found) =
        path.iter().flat_map(std::env::split_paths).map(|dir| dir.join("anvil")).find(|p| is_executable(p))
    {
        return Ok(found);
    }
    let npm = Command::new("npm").args(["root", "-g"]).stderr(Stdio::null()).output();
    let looked = match npm {
        Ok(out) if out.status.success() => {
            let root = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            let candidate = Path::new(&root).join("@foundry-rs/anvil-linux-amd64/bin/anvil");
            if is_executable(&candidate) {
                return Ok(candidate);
            }
            candidate.display().to_string()
        }
        _ => "npm's global root (npm did not run)".to_owned(),
    };
    Err(ChainError::NoAnvil { looked: format!("{ANVIL_ENV} is not set, none on PATH, none at {looked}") })
}

/// The last lines a process printed, kept for an error message.
#[derive(Clone, Default)]
struct Tail(Arc<Mutex<VecDeque<String>>>);

impl Tail {
    fn push(&self, line: String) {
        let mut lines = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if lines.len() == TAIL_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    fn text(&self) -> String {
        let lines = self.0.lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().map(String::as_str).collect::<Vec<_>>().join("\n")
    }
}

/// Reads `from` line by line: lines go to `tail` until `listening` has been sent the address of
/// a `Listening on ADDR` line (when given one); after that they are read and dropped, so the
/// process never blocks on a full pipe.
fn drain(from: impl Read, tail: Tail, mut listening: Option<mpsc::Sender<SocketAddr>>) {
    let mut reader = BufReader::new(from);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let Some(sender) = &listening else { continue };
        let text = String::from_utf8_lossy(&line).trim().to_owned();
        if let Some(addr) = text.strip_prefix("Listening on ").and_then(|a| a.parse().ok()) {
            let _ = sender.send(addr);
            listening = None;
        } else {
            tail.push(text);
        }
    }
}

impl Anvil {
    /// Where the anvil binary is: the file `SOLVENCY_ANVIL` names if it is set, else `anvil` on
    /// `PATH`, else where `npm install -g @foundry-rs/anvil-linux-amd64` puts it
    /// (`$(npm root -g)/@foundry-rs/anvil-linux-amd64/bin/anvil`).
    pub fn locate() -> Result<PathBuf, ChainError> {
        locate_from(std::env::var_os(ANVIL_ENV), std::env::var_os("PATH"))
    }

    /// Whether anvil can be found, for the demo to say so before it starts one.
    pub fn available() -> bool {
        Self::locate().is_ok()
    }

    /// Starts a private anvil on a free port of 127.0.0.1 with chain id `chain_id` and its
    /// default dev accounts (each funded, their keys held by the node), and waits until it listens.
    pub fn start(chain_id: u64) -> Result<Self, ChainError> {
        Self::start_with(&Self::locate()?, chain_id)
    }

    /// [`Anvil::start`] with `accounts` funded dev accounts instead of anvil's default 10 (for
    /// benchmarks that sign for many owned addresses).
    pub fn start_with_accounts(chain_id: u64, accounts: usize) -> Result<Self, ChainError> {
        Self::spawn(&Self::locate()?, chain_id, &["--accounts".to_owned(), accounts.to_string()])
    }

    /// [`Anvil::start`] with the anvil binary at `binary`.
    pub fn start_with(binary: &Path, chain_id: u64) -> Result<Self, ChainError> {
        Self::spawn(binary, chain_id, &[])
    }

    fn spawn(binary: &Path, chain_id: u64, extra: &[String]) -> Result<Self, ChainError> {
        let mut child = Command::new(binary)
            .args(["--host", "127.0.0.1", "--port", "0", "--chain-id", &chain_id.to_string()])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(io(format!("starting {}", binary.display())))?;
        let tail = Tail::default();
        let (sender, listening) = mpsc::channel();
        let (out, err) = (child.stdout.take(), child.stderr.take());
        let out = out.map(|out| {
            let tail = tail.clone();
            std::thread::spawn(move || drain(out, tail, Some(sender)))
        });
        let err = err.map(|err| {
            let tail = tail.clone();
            std::thread::spawn(move || drain(err, tail, None))
        });
        match listening.recv_timeout(START_TIMEOUT) {
            Ok(addr) => Ok(Self { child, addr, chain_id }),
            Err(timeout) => {
                let reason = match timeout {
                    mpsc::RecvTimeoutError::Timeout => format!("no `Listening on` line within {START_TIMEOUT:?}"),
                    mpsc::RecvTimeoutError::Disconnected => "it exited".to_owned(),
                };
                let _ = child.kill();
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                // The process is gone, so both pipes reach their end and the threads return.
                out.into_iter().chain(err).for_each(|t| drop(t.join()));
                Err(ChainError::AnvilStart { reason: format!("{reason} ({status})"), output: tail.text() })
            }
        }
    }

    /// Where the node listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The chain id it was started with.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// A client for it.
    pub fn rpc(&self) -> Rpc {
        Rpc::new(self.addr)
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A JSON-RPC client over plain HTTP/1.1, one connection per request. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Rpc {
    addr: SocketAddr,
    next_id: Arc<AtomicU64>,
}

/// The round a feed reports through its proxy, as `latestRoundData()` returns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoundData {
    /// The proxy's round id: the phase in bits 64 and up, the aggregator's round below.
    pub round_id: u128,
    /// The answer.
    pub answer: i128,
    /// When the round started, Unix seconds.
    pub started_at: u64,
    /// When the answer was last updated, Unix seconds.
    pub updated_at: u64,
    /// The round the answer was computed in.
    pub answered_in_round: u128,
}

/// A Chainlink feed: Chainlink's `MockV3Aggregator` behind Chainlink's `EACAggregatorProxy` (with
/// no access controller), as a mainnet feed is deployed. Readers use [`Feed::proxy`].
#[derive(Clone, Debug)]
pub struct Feed {
    /// The proxy, the address readers are given.
    pub proxy: Address,
    /// The aggregator behind it.
    pub aggregator: Address,
    rpc: Rpc,
    owner: Address,
}

impl Rpc {
    /// A client for the endpoint at `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr, next_id: Arc::new(AtomicU64::new(1)) }
    }

    /// The endpoint.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// POSTs `body` (JSON) to the endpoint on a fresh connection and returns the body of its
    /// `200 OK` answer: the raw exchange, for batches and malformed requests.
    pub async fn post(&self, body: impl Into<Bytes>) -> Result<Bytes, ChainError> {
        let addr = self.addr;
        let fail = move |reason: String| ChainError::Http { addr, reason };
        let body = body.into();
        let exchange = async {
            let stream = TcpStream::connect(addr).await.map_err(|e| fail(format!("connecting: {e}")))?;
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
                    .await
                    .map_err(|e| fail(e.to_string()))?;
            let driver = tokio::spawn(connection);
            let request = http::Request::post("/")
                .header(http::header::HOST, addr.to_string())
                .header(http::header::CONTENT_TYPE, "application/json")
                .header(http::header::CONTENT_LENGTH, body.len())
                .body(Full::new(body))
                .map_err(|e| fail(e.to_string()))?;
            let response = sender.send_request(request).await.map_err(|e| fail(e.to_string()))?;
            let status = response.status();
            let answer = Limited::new(response.into_body(), BODY_LIMIT)
                .collect()
                .await
                .map_err(|e| fail(format!("reading the answer: {e}")))?
                .to_bytes();
            driver.abort();
            if status != http::StatusCode::OK {
                let start = String::from_utf8_lossy(&answer[..answer.len().min(200)]).into_owned();
                return Err(fail(format!("status {status}: {start}")));
            }
            Ok(answer)
        };
        tokio::time::timeout(HTTP_TIMEOUT, exchange)
            .await
            .map_err(|_| fail(format!("no answer within {HTTP_TIMEOUT:?}")))?
    }

    /// Calls `method` with `params` and returns its `result`; a JSON-RPC error is
    /// [`ChainError::Rpc`].
    pub async fn request(&self, method: &str, params: Value) -> Result<Value, ChainError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        let answer = self.post(body.to_string()).await?;
        let mut answer: Value =
            serde_json::from_slice(&answer).map_err(|e| malformed(method, format!("not JSON: {e}")))?;
        if let Some(error) = answer.get("error") {
            return Err(ChainError::Rpc {
                method: method.to_owned(),
                code: error.get("code").and_then(Value::as_i64).unwrap_or_default(),
                message: error.get("message").and_then(Value::as_str).unwrap_or_default().to_owned(),
            });
        }
        if answer.get("id") != Some(&json!(id)) {
            return Err(malformed(method, format!("the answer's id is not {id}")));
        }
        answer.get_mut("result").map(Value::take).ok_or_else(|| malformed(method, "no result"))
    }

    /// The node's dev accounts (`eth_accounts`), whose keys it holds.
    pub async fn dev_accounts(&self) -> Result<Vec<Address>, ChainError> {
        let method = "eth_accounts";
        let accounts = self.request(method, json!([])).await?;
        let accounts = accounts.as_array().ok_or_else(|| malformed(method, "not an array"))?;
        accounts.iter().map(|a| parse_address(method, a)).collect()
    }

    /// The first dev account, which the convenience helpers deploy and send from.
    pub async fn deployer(&self) -> Result<Address, ChainError> {
        self.dev_accounts().await?.first().copied().ok_or_else(|| malformed("eth_accounts", "no accounts"))
    }

    /// `eth_chainId`.
    pub async fn chain_id(&self) -> Result<u64, ChainError> {
        parse_u64("eth_chainId", &self.request("eth_chainId", json!([])).await?)
    }

    /// `eth_blockNumber`.
    pub async fn block_number(&self) -> Result<u64, ChainError> {
        parse_u64("eth_blockNumber", &self.request("eth_blockNumber", json!([])).await?)
    }

    /// The latest block (`eth_getBlockByNumber("latest", false)`), as the node gave it.
    pub async fn latest_block(&self) -> Result<Value, ChainError> {
        self.request("eth_getBlockByNumber", json!(["latest", false])).await
    }

    /// `eth_getBalance` at the latest block, in wei.
    pub async fn balance(&self, address: Address) -> Result<u128, ChainError> {
        parse_quantity("eth_getBalance", &self.request("eth_getBalance", json!([address.to_string(), "latest"])).await?)
    }

    /// `eth_call` of `data` on `to` at the latest block; its return data.
    pub async fn call(&self, to: Address, data_in: &[u8]) -> Result<Vec<u8>, ChainError> {
        let result =
            self.request("eth_call", json!([{ "to": to.to_string(), "data": data(data_in) }, "latest"])).await?;
        parse_data("eth_call", &result)
    }

    /// Sends a transaction from dev account `from` (the node signs it), waits until it is mined
    /// and returns its hash; a revert is [`ChainError::Transaction`].
    pub async fn send(&self, from: Address, to: Address, data_in: &[u8], value: u128) -> Result<[u8; 32], ChainError> {
        let tx =
            json!({ "from": from.to_string(), "to": to.to_string(), "data": data(data_in), "value": quantity(value) });
        let (hash, _) = self.transact(tx).await?;
        Ok(hash)
    }

    /// Deploys `creation` (bytecode followed by constructor arguments, see [`abi::creation`])
    /// from dev account `from`; the new contract's address.
    pub async fn deploy(&self, from: Address, creation: &[u8]) -> Result<Address, ChainError> {
        let tx = json!({ "from": from.to_string(), "data": data(creation) });
        let (hash, receipt) = self.transact(tx).await?;
        parse_address("eth_getTransactionReceipt", &receipt["contractAddress"]).map_err(|_| ChainError::Transaction {
            hash: data(&hash),
            reason: "the receipt names no contract address".into(),
        })
    }

    /// `eth_sendTransaction`, then the receipt, checked for success.
    async fn transact(&self, tx: Value) -> Result<([u8; 32], Value), ChainError> {
        let method = "eth_sendTransaction";
        let hash = parse_data(method, &self.request(method, json!([tx])).await?)?;
        let hash: [u8; 32] = hash.try_into().map_err(|_| malformed(method, "the hash is not 32 bytes"))?;
        let hash_hex = data(&hash);
        for _ in 0..200 {
            let receipt = self.request("eth_getTransactionReceipt", json!([hash_hex])).await?;
            if receipt.is_null() {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            return match receipt.get("status").and_then(Value::as_str) {
                Some("0x1") => Ok((hash, receipt)),
                status => Err(ChainError::Transaction { hash: hash_hex, reason: format!("status {status:?}") }),
            };
        }
        Err(ChainError::Transaction { hash: hash_hex, reason: "not mined within 10 s".into() })
    }

    /// Mines `blocks` blocks (`anvil_mine`).
    pub async fn mine(&self, blocks: u64) -> Result<(), ChainError> {
        self.request("anvil_mine", json!([quantity(blocks.into())])).await.map(drop)
    }

    /// Sets the balance of `address` to `wei` (`anvil_setBalance`).
    pub async fn set_balance(&self, address: Address, wei: u128) -> Result<(), ChainError> {
        self.request("anvil_setBalance", json!([address.to_string(), quantity(wei)])).await.map(drop)
    }

    /// Gives the next block the timestamp `unix_seconds` (`evm_setNextBlockTimestamp`).
    pub async fn set_next_block_timestamp(&self, unix_seconds: u64) -> Result<(), ChainError> {
        self.request("evm_setNextBlockTimestamp", json!([unix_seconds])).await.map(drop)
    }

    /// Signs `message` as EIP-191 `personal_sign` with dev account `address`'s key: `r ‖ s ‖ v`.
    pub async fn personal_sign(&self, address: Address, message: &[u8]) -> Result<[u8; 65], ChainError> {
        let method = "personal_sign";
        let signature = parse_data(method, &self.request(method, json!([data(message), address.to_string()])).await?)?;
        signature.try_into().map_err(|s: Vec<u8>| malformed(method, format!("a {}-byte signature", s.len())))
    }

    /// Deploys a feed reporting `answer` with `decimals` decimals, from [`Rpc::deployer`]:
    /// Chainlink's `MockV3Aggregator(decimals, answer)` and an `EACAggregatorProxy` in front of it.
    pub async fn deploy_feed(&self, decimals: u8, answer: i128) -> Result<Feed, ChainError> {
        let owner = self.deployer().await?;
        let aggregator = decode_bin("MockV3Aggregator", MOCK_V3_AGGREGATOR_BIN)?;
        let aggregator =
            self.deploy(owner, &abi::creation(&aggregator, &[abi::uint(decimals.into()), abi::int(answer)])).await?;
        let proxy = decode_bin("EACAggregatorProxy", EAC_AGGREGATOR_PROXY_BIN)?;
        let no_access_controller = Address([0; 20]);
        let proxy = self
            .deploy(owner, &abi::creation(&proxy, &[abi::address(aggregator), abi::address(no_access_controller)]))
            .await?;
        Ok(Feed { proxy, aggregator, rpc: self.clone(), owner })
    }

    /// Deploys a `TestToken` with `decimals` decimals whose whole supply, `amount`, belongs to
    /// `holder`, from [`Rpc::deployer`]; the token's address.
    pub async fn deploy_token(&self, decimals: u8, holder: Address, amount: u128) -> Result<Address, ChainError> {
        let from = self.deployer().await?;
        let token = decode_bin("TestToken", TEST_TOKEN_BIN)?;
        let args = [abi::uint(decimals.into()), abi::address(holder), abi::uint(amount)];
        self.deploy(from, &abi::creation(&token, &args)).await
    }

    /// Deploys a contract wallet that accepts (EIP-1271) signatures by dev account `owner`.
    pub async fn deploy_wallet(&self, owner: Address) -> Result<Address, ChainError> {
        let from = self.deployer().await?;
        let wallet = decode_bin("TestWallet", TEST_WALLET_BIN)?;
        self.deploy(from, &abi::creation(&wallet, &[abi::address(owner)])).await
    }

    /// Transfers `amount` of `token` from dev account `from` to `to`; the transaction's hash.
    pub async fn token_transfer(
        &self,
        token: Address,
        from: Address,
        to: Address,
        amount: u128,
    ) -> Result<[u8; 32], ChainError> {
        self.send(from, token, &abi::call(selector::TRANSFER, &[abi::address(to), abi::uint(amount)]), 0).await
    }

    /// `token.balanceOf(holder)` at the latest block.
    pub async fn token_balance(&self, token: Address, holder: Address) -> Result<u128, ChainError> {
        let output = self.call(token, &abi::call(selector::BALANCE_OF, &[abi::address(holder)])).await?;
        abi::read_uint(&output, 0).ok_or_else(|| malformed("eth_call", "balanceOf did not return a uint under 2^128"))
    }
}

impl Feed {
    /// Starts a new round on the aggregator with `answer`, started and updated at
    /// `updated_at` (Unix seconds; the chain's clock is not consulted), through
    /// `updateRoundData`; the aggregator's new round id.
    pub async fn update(&self, answer: i128, updated_at: u64) -> Result<u128, ChainError> {
        let output = self.rpc.call(self.aggregator, &abi::call(selector::LATEST_ROUND, &[])).await?;
        let round =
            abi::read_uint(&output, 0).ok_or_else(|| malformed("eth_call", "latestRound did not return a uint"))? + 1;
        let args = [abi::uint(round), abi::int(answer), abi::uint(updated_at.into()), abi::uint(updated_at.into())];
        self.rpc.send(self.owner, self.aggregator, &abi::call(selector::UPDATE_ROUND_DATA, &args), 0).await?;
        Ok(round)
    }

    /// `latestRoundData()` read through the proxy.
    pub async fn latest_round_data(&self) -> Result<RoundData, ChainError> {
        let output = self.rpc.call(self.proxy, &abi::call(selector::LATEST_ROUND_DATA, &[])).await?;
        let bad = || malformed("eth_call", "latestRoundData's answer does not decode");
        let time = |i| abi::read_uint(&output, i).and_then(|t| u64::try_from(t).ok());
        Ok(RoundData {
            round_id: abi::read_uint(&output, 0).ok_or_else(bad)?,
            answer: abi::read_int(&output, 1).ok_or_else(bad)?,
            started_at: time(2).ok_or_else(bad)?,
            updated_at: time(3).ok_or_else(bad)?,
            answered_in_round: abi::read_uint(&output, 4).ok_or_else(bad)?,
        })
    }

    /// `decimals()` read through the proxy.
    pub async fn decimals(&self) -> Result<u8, ChainError> {
        let output = self.rpc.call(self.proxy, &abi::call(selector::DECIMALS, &[])).await?;
        abi::read_uint(&output, 0)
            .and_then(|d| u8::try_from(d).ok())
            .ok_or_else(|| malformed("eth_call", "decimals did not return a uint8"))
    }
}

/// How a [`LyingRpc`] lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lie {
    /// Relays requests and answers unchanged, byte for byte.
    Honest,
    /// Changes the last byte of `hash` in `eth_getBlockByNumber` and `eth_getBlockByHash` results.
    BlockHash,
    /// Adds [`LIE_WEI`] to `balance` in `eth_getProof` results and to `eth_getBalance` results.
    Balance,
    /// Adds [`LIE_WEI`] to every `storageProof[].value` in `eth_getProof` results.
    StorageValue,
    /// Flips the lowest bit of every 32-byte word of `eth_call` results.
    CallResult,
    /// Adds [`LIE_BLOCKS`] to `number` in `eth_getBlockByNumber` results and to `eth_blockNumber`.
    BlockNumber,
    /// Answers every request with a JSON-RPC error ([`WITHHELD_CODE`]) and relays nothing.
    Withhold,
    /// Closes every connection without answering.
    Down,
}

/// What [`Lie::Balance`] and [`Lie::StorageValue`] add: 1000 ether, in wei.
pub const LIE_WEI: u128 = 1_000_000_000_000_000_000_000;
/// How many blocks [`Lie::BlockNumber`] adds.
pub const LIE_BLOCKS: u128 = 1000;
/// The JSON-RPC error code [`Lie::Withhold`] answers with.
pub const WITHHELD_CODE: i64 = -32000;

/// A shared switch for a [`LyingRpc`]'s lie, to change it while clients are connected.
#[derive(Clone, Debug)]
pub struct LieHandle(Arc<Mutex<Lie>>);

impl LieHandle {
    /// Lies as `lie` from the next request on.
    pub fn set(&self, lie: Lie) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = lie;
    }

    /// The lie in force.
    pub fn get(&self) -> Lie {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A hostile JSON-RPC endpoint on a free port of 127.0.0.1: HTTP/1.1 (with keep-alive) relaying
/// each POST, single or batch, to an upstream node and lying about the answer as its [`Lie`]
/// says. It runs on the caller's tokio runtime and stops accepting when dropped.
#[derive(Debug)]
pub struct LyingRpc {
    addr: SocketAddr,
    lie: LieHandle,
    accept: tokio::task::JoinHandle<()>,
}

impl LyingRpc {
    /// Starts relaying to the node at `upstream`, lying as `lie`.
    pub async fn start(upstream: SocketAddr, lie: Lie) -> Result<Self, ChainError> {
        let listener = TcpListener::bind("127.0.0.1:0").await.map_err(io("binding the lying endpoint"))?;
        let addr = listener.local_addr().map_err(io("binding the lying endpoint"))?;
        let handle = LieHandle(Arc::new(Mutex::new(lie)));
        let switch = handle.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if switch.get() == Lie::Down {
                    continue;
                }
                let switch = switch.clone();
                let upstream = Rpc::new(upstream);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let (upstream, lie) = (upstream.clone(), switch.get());
                        async move { serve(request, &upstream, lie).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(client), service)
                        .await;
                });
            }
        });
        Ok(Self { addr, lie: handle, accept })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A handle that changes the lie from elsewhere.
    pub fn handle(&self) -> LieHandle {
        self.lie.clone()
    }

    /// Lies as `lie` from the next request on.
    pub fn set(&self, lie: Lie) {
        self.lie.set(lie);
    }
}

impl Drop for LyingRpc {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

type Answer = http::Response<Full<Bytes>>;

fn answer(status: http::StatusCode, body: impl Into<Bytes>) -> Answer {
    let mut response = http::Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response
}

/// Serves one request. An error closes the connection without an answer, as [`Lie::Down`] wants.
async fn serve(
    request: http::Request<hyper::body::Incoming>,
    upstream: &Rpc,
    lie: Lie,
) -> Result<Answer, std::io::Error> {
    if lie == Lie::Down {
        return Err(std::io::Error::other("down"));
    }
    let body = match Limited::new(request.into_body(), BODY_LIMIT).collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => return Ok(answer(http::StatusCode::BAD_REQUEST, format!("reading the request: {e}"))),
    };
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    if lie == Lie::Withhold {
        let withheld = |call: &Value| {
            json!({ "jsonrpc": "2.0", "id": call.get("id").cloned().unwrap_or(Value::Null),
                    "error": { "code": WITHHELD_CODE, "message": "withheld by LyingRpc" } })
        };
        let refusal = match &parsed {
            Some(Value::Array(calls)) => Value::Array(calls.iter().map(withheld).collect()),
            Some(call) => withheld(call),
            None => withheld(&Value::Null),
        };
        return Ok(answer(http::StatusCode::OK, refusal.to_string()));
    }
    let relayed = match upstream.post(body).await {
        Ok(relayed) => relayed,
        Err(e) => return Ok(answer(http::StatusCode::BAD_GATEWAY, e.to_string())),
    };
    if lie == Lie::Honest {
        return Ok(answer(http::StatusCode::OK, relayed));
    }
    let (Some(request), Ok(mut reply)) = (parsed, serde_json::from_slice::<Value>(&relayed)) else {
        return Ok(answer(http::StatusCode::OK, relayed));
    };
    let calls = match request {
        Value::Array(calls) => calls,
        call => vec![call],
    };
    let method_of = |reply: &Value| {
        let call = calls.iter().find(|c| c.get("id").is_some() && c.get("id") == reply.get("id"))?;
        call.get("method")?.as_str()
    };
    match &mut reply {
        Value::Array(replies) => replies.iter_mut().for_each(|r| {
            if let Some(method) = method_of(r) {
                tell(lie, method, r)
            }
        }),
        single => {
            if let Some(method) = method_of(single) {
                tell(lie, method, single)
            }
        }
    }
    Ok(answer(http::StatusCode::OK, reply.to_string()))
}

/// Rewrites one JSON-RPC answer to `method` as `lie` says.
fn tell(lie: Lie, method: &str, reply: &mut Value) {
    let Some(result) = reply.get_mut("result") else { return };
    match (lie, method) {
        (Lie::BlockHash, "eth_getBlockByNumber" | "eth_getBlockByHash") => {
            alter_data(result.get_mut("hash"), |bytes| {
                if let Some(last) = bytes.last_mut() {
                    *last ^= 0xff;
                }
            })
        }
        (Lie::Balance, "eth_getProof") => add_to_quantity(result.get_mut("balance"), LIE_WEI),
        (Lie::Balance, "eth_getBalance") => add_to_quantity(Some(result), LIE_WEI),
        (Lie::StorageValue, "eth_getProof") => {
            if let Some(Value::Array(proofs)) = result.get_mut("storageProof") {
                proofs.iter_mut().for_each(|p| add_to_quantity(p.get_mut("value"), LIE_WEI));
            }
        }
        (Lie::CallResult, "eth_call") => alter_data(Some(result), |bytes| {
            bytes.chunks_mut(32).for_each(|word| {
                if let Some(last) = word.last_mut() {
                    *last ^= 0x01;
                }
            })
        }),
        (Lie::BlockNumber, "eth_getBlockByNumber") => add_to_quantity(result.get_mut("number"), LIE_BLOCKS),
        (Lie::BlockNumber, "eth_blockNumber") => add_to_quantity(Some(result), LIE_BLOCKS),
        _ => {}
    }
}

/// Changes the bytes of a hex data string in place; anything else is left alone.
fn alter_data(value: Option<&mut Value>, change: impl FnOnce(&mut [u8])) {
    let Some(value) = value else { return };
    let Some(mut bytes) = value.as_str().and_then(|s| s.strip_prefix("0x")).and_then(|d| hex::decode(d).ok()) else {
        return;
    };
    change(&mut bytes);
    *value = Value::String(data(&bytes));
}

/// Adds `addend` to a hex quantity in place, at any width; anything else is left alone.
fn add_to_quantity(value: Option<&mut Value>, addend: u128) {
    let Some(value) = value else { return };
    if let Some(sum) = value.as_str().and_then(|q| quantity_plus(q, addend)) {
        *value = Value::String(sum);
    }
}

/// `q + addend` for a hex quantity `q` of any width.
fn quantity_plus(q: &str, addend: u128) -> Option<String> {
    let digits = q.strip_prefix("0x")?;
    let mut nibbles = digits.chars().map(|c| c.to_digit(16).map(|d| d as u128)).collect::<Option<Vec<_>>>()?;
    let mut carry = addend;
    for nibble in nibbles.iter_mut().rev() {
        if carry == 0 {
            break;
        }
        let sum = *nibble + (carry & 0xf);
        *nibble = sum & 0xf;
        carry = (carry >> 4) + (sum >> 4);
    }
    while carry > 0 {
        nibbles.insert(0, carry & 0xf);
        carry >>= 4;
    }
    let text: String = nibbles.iter().filter_map(|&n| char::from_digit(n as u32, 16)).collect();
    let text = text.trim_start_matches('0');
    Some(format!("0x{}", if text.is_empty() { "0" } else { text }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_grow_at_any_width() {
        assert_eq!(quantity_plus("0x0", 1).as_deref(), Some("0x1"));
        assert_eq!(quantity_plus("0xf", 1).as_deref(), Some("0x10"));
        assert_eq!(quantity_plus("0x0", LIE_WEI).as_deref(), Some("0x3635c9adc5dea00000"));
        assert_eq!(quantity_plus(&quantity(u128::MAX), 1).as_deref(), Some("0x100000000000000000000000000000000"));
        let wide = format!("0x{}", "f".repeat(64));
        assert_eq!(quantity_plus(&wide, 2), Some(format!("0x1{}1", "0".repeat(63))));
        assert_eq!(quantity_plus("12", 1), None);
        assert_eq!(quantity_plus("0xzz", 1), None);
    }

    #[test]
    fn words_round_trip() {
        assert_eq!(abi::read_int(&abi::int(-5), 0), Some(-5));
        assert_eq!(abi::int(-1), [0xff; 32]);
        assert_eq!(abi::read_uint(&abi::uint(u128::MAX), 0), Some(u128::MAX));
        assert_eq!(abi::read_uint(&abi::int(-1), 0), None);
        let a: Address = "0x00000000000000000000000000000000000000aa".parse().unwrap();
        assert_eq!(abi::read_address(&abi::address(a), 0), Some(a));
        assert_eq!(abi::read_uint(&[0u8; 31], 0), None);
        assert_eq!(abi::call(selector::DECIMALS, &[]), vec![0x31, 0x3c, 0xe5, 0x67]);
    }

    #[test]
    fn addresses_parse_strictly() {
        assert!("0x00000000000000000000000000000000000000aa".parse::<Address>().is_ok());
        assert!("00000000000000000000000000000000000000aa".parse::<Address>().is_err());
        assert!("0x000000000000000000000000000000000000aa".parse::<Address>().is_err());
        assert!("0x00000000000000000000000000000000000000zz".parse::<Address>().is_err());
    }

    #[test]
    fn a_missing_anvil_is_a_typed_error_naming_the_install_command() {
        let missing = std::env::temp_dir().join("solvency-no-such-anvil");
        let err = locate_from(Some(missing.clone().into()), None).unwrap_err();
        assert!(matches!(&err, ChainError::NoAnvil { looked } if looked.contains(&missing.display().to_string())));
        assert!(err.to_string().contains(ANVIL_INSTALL));
    }

    #[test]
    fn a_binary_that_exits_without_listening_is_a_start_error_with_its_output() {
        // `echo` prints the arguments anvil would get, and exits.
        let err = Anvil::start_with(Path::new("/bin/echo"), 7).unwrap_err();
        assert!(
            matches!(&err, ChainError::AnvilStart { reason, output }
                if reason.starts_with("it exited") && output.contains("--port 0 --chain-id 7")),
            "{err}"
        );
    }

    #[test]
    fn the_committed_bytecode_is_hex() {
        for (name, bin) in [
            ("MockV3Aggregator", MOCK_V3_AGGREGATOR_BIN),
            ("EACAggregatorProxy", EAC_AGGREGATOR_PROXY_BIN),
            ("TestToken", TEST_TOKEN_BIN),
        ] {
            assert!(decode_bin(name, bin).unwrap().len() > 1000, "{name}");
        }
    }
}
