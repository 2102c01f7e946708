//! The enclave as a service: it answers the parent's setup and round requests over the control
//! channel (vsock in production, a Unix or TCP socket in development). A setup round makes
//! Groth16 keys and attests their hash; a proving round accepts keys only with a setup
//! attestation from an enclave running the same image, reads the database through the parent's
//! proxy, proves, and attests the round's manifest. One request is served at a time; a
//! malformed request is answered with `Failed` and the service goes on serving.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use attestation::attested::{verify_setup, RoundBundleWire, VerifiedSetup, EMBEDDED};
use attestation::manifest::{AssetTotal, Manifest, SetupManifest, MANIFEST_FORMAT_V2};
use channel::protocol::{FromEnclave, InclusionEntry, RoundRequest, Stage, ToEnclave, CHUNK_BYTES};
use channel::{Address, FrameError, Framed, Listener, Stream};
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc::Sender;

use crate::circuit::batch::BatchShape;
use crate::db::config::ChannelBindingPolicy;
use crate::db::{DbError, RoundConfig};
use crate::keys::ProvingKeys;
use crate::nsm::{AttestationRequest, NsmError, SecureModule};

/// The enclave program's version, attested in every manifest.
pub const SOFTWARE_VERSION: &str = env!("CARGO_PKG_VERSION");
/// Largest proving-keys file accepted from the parent.
pub const MAX_KEYS_BYTES: u64 = 8 << 30;

/// Events queued towards the parent at most: a slow parent slows the round, never grows memory.
const EVENT_QUEUE: usize = 16;
/// How long a parent may take to read one message during a round.
const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10 * 60);
/// How long a new connection may take to send its request.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Where the enclave's database password comes from: fixed when the enclave starts (by the
/// image's entry point, which PCR2 measures), never by the round configuration the parent sends,
/// so a parent cannot point the enclave at another of its secrets.
#[derive(Clone, Debug)]
pub enum PasswordSource {
    /// An environment variable of the enclave process.
    Env(String),
    /// A file in the enclave.
    File(std::path::PathBuf),
    /// The parent, with each round request. In a Nitro Enclave the image has no secrets and no
    /// environment of its own, so this is how production runs; the image's entry point (measured
    /// in PCR2) says so, not the parent.
    Parent,
}

/// How the service runs.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// Where the parent connects.
    pub listen: Address,
    /// The parent's outbound proxy.
    pub proxy: Address,
    /// Bad rows reported before the rest are only counted.
    pub max_errors: usize,
    /// The database password's source.
    pub password: PasswordSource,
    /// Accept round configurations that only prefer SCRAM channel binding (development).
    pub allow_channel_binding_prefer: bool,
    /// Accept round configurations that point the AWS API elsewhere (a local AWS API server in
    /// development and tests).
    pub allow_development_aws_endpoint: bool,
}

/// Why a request failed, with the class the parent sees.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request or its input is unacceptable.
    #[error("{0}")]
    Refused(String),
    /// The database read failed.
    #[error(transparent)]
    Database(DbError),
    /// The NSM failed.
    #[error(transparent)]
    Nsm(#[from] NsmError),
    /// The control channel failed.
    #[error("control channel: {0}")]
    Channel(#[from] FrameError),
    /// Anything else (proving, a task that died).
    #[error("{0}")]
    Internal(String),
}

impl ServiceError {
    fn kind(&self) -> &'static str {
        match self {
            Self::Refused(_) => "refused",
            Self::Database(DbError::Rows(_) | DbError::Config(_) | DbError::Guard(_)) => "refused",
            Self::Database(_) => "database",
            Self::Nsm(_) | Self::Channel(_) | Self::Internal(_) => "internal",
        }
    }
}

fn refused(message: impl Into<String>) -> ServiceError {
    ServiceError::Refused(message.into())
}

fn internal(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Internal(e.to_string())
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The service's state across requests.
pub struct Enclave {
    nsm: Arc<Mutex<Box<dyn SecureModule>>>,
    config: ServiceConfig,
    /// PCR0–2 of this enclave: keys are accepted only from a setup with the same image.
    image: BTreeMap<u8, Vec<u8>>,
}

impl Enclave {
    /// Prepares the service with its NSM.
    pub fn new(mut nsm: Box<dyn SecureModule>, config: ServiceConfig) -> Result<Self, ServiceError> {
        let mut image = BTreeMap::new();
        for i in 0..3u8 {
            image.insert(i, nsm.describe_pcr(u16::from(i))?);
        }
        Ok(Self { nsm: Arc::new(Mutex::new(nsm)), config, image })
    }

    /// Serves requests on `listener`, one at a time, for as long as the process runs.
    pub async fn serve(mut self, listener: Listener) -> std::io::Result<()> {
        loop {
            let stream = match listener.accept().await {
                Ok(stream) => stream,
                Err(e) => {
                    // Out of descriptors, an aborted connection: wait and go on serving.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            if let Err(e) = self.handle(stream).await {
                tracing::warn!(error = %e, "request failed");
            }
        }
    }

    /// Serves one connection: one request.
    pub async fn handle(&mut self, stream: Stream) -> Result<(), ServiceError> {
        let mut framed = Framed::new(stream);
        let first = match tokio::time::timeout(REQUEST_TIMEOUT, framed.recv::<ToEnclave>()).await {
            Ok(first) => first,
            Err(_) => return Err(refused("no request within the timeout")),
        };
        let request = match first {
            Ok(request) => request,
            Err(FrameError::Closed) => return Ok(()),
            Err(e) => {
                let error = refused(format!("malformed request: {e}"));
                send_failure(&mut framed, &error).await;
                return Err(error);
            }
        };
        let result = match request {
            ToEnclave::Setup { batch_size, assets } => self.setup(&mut framed, batch_size, assets).await,
            ToEnclave::Round(request) => self.round(&mut framed, *request).await,
            ToEnclave::KeysChunk(_) | ToEnclave::KeysEnd => Err(refused("expected a Setup or Round request")),
        };
        if let Err(e) = &result {
            send_failure(&mut framed, e).await;
        }
        result
    }

    fn attest(&self, request: AttestationRequest) -> Result<Vec<u8>, ServiceError> {
        let mut nsm = self.nsm.lock().map_err(|_| internal("the NSM lock is poisoned"))?;
        Ok(nsm.attestation_document(&request)?)
    }

    async fn setup(&mut self, framed: &mut Framed<Stream>, batch_size: u64, assets: u64) -> Result<(), ServiceError> {
        let shape = BatchShape {
            batch_size: usize::try_from(batch_size).map_err(|_| refused("batch size out of range"))?,
            assets: usize::try_from(assets).map_err(|_| refused("asset count out of range"))?,
        };
        crate::keys::check_shape(&shape).map_err(|e| refused(e.to_string()))?;
        tracing::info!(batch_size, assets, "setup: generating Groth16 keys");
        framed.send(&FromEnclave::Progress { stage: Stage::Setup, done: 0, total: 1 }).await?;
        let keys = tokio::task::spawn_blocking(move || crate::keys::setup(shape, &mut OsRng))
            .await
            .map_err(internal)?
            .map_err(internal)?;
        let mut keys_file = Vec::new();
        keys.write_to(&mut keys_file).map_err(internal)?;
        let manifest = SetupManifest {
            format: attestation::manifest::SETUP_FORMAT_V2.to_owned(),
            batch_size,
            assets,
            proving_keys_sha256: Sha256::digest(&keys_file).to_vec(),
            verifying_key_sha256: attestation::liabilities::verifying_key_sha256(keys.verifying_key()).to_vec(),
            software_version: SOFTWARE_VERSION.to_owned(),
            created_ms: now_ms(),
            opening_verifying_key_sha256: keys
                .opening
                .as_ref()
                .map(|o| attestation::opening::verifying_key_sha256(o.verifying_key()).to_vec()),
        };
        drop(keys);
        let setup_manifest = manifest.encode();
        let setup_attestation = self.attest(AttestationRequest {
            user_data: Some(SetupManifest::digest(&setup_manifest).to_vec()),
            ..Default::default()
        })?;
        tracing::info!(
            verifying_key_sha256 = %hex::encode(&manifest.verifying_key_sha256),
            keys_bytes = keys_file.len(),
            "setup attested"
        );
        framed
            .send(&FromEnclave::SetupDone { setup_manifest, setup_attestation, keys_len: keys_file.len() as u64 })
            .await?;
        for chunk in keys_file.chunks(CHUNK_BYTES) {
            framed.send(&FromEnclave::KeysChunk(chunk.to_vec())).await?;
        }
        framed.send(&FromEnclave::KeysEnd).await?;
        Ok(())
    }

    /// Checks the request's setup attestation: made by an enclave with this one's image, for
    /// keys of the configuration's shape.
    fn check_setup(&self, request: &RoundRequest, config: &RoundConfig) -> Result<VerifiedSetup, ServiceError> {
        let anchor = {
            let nsm = self.nsm.lock().map_err(|_| internal("the NSM lock is poisoned"))?;
            nsm.trust_anchor()?
        };
        let allow_debug = self.image.values().all(|v| v.iter().all(|b| *b == 0));
        let setup =
            verify_setup(&request.setup_manifest, &request.setup_attestation, &anchor, &self.image, allow_debug)
                .map_err(|e| refused(format!("the keys' setup attestation: {e}")))?;
        if setup.manifest().assets != config.assets.len() as u64 {
            return Err(refused(format!(
                "the keys prove {} assets, the configuration has {}",
                setup.manifest().assets,
                config.assets.len()
            )));
        }
        Ok(setup)
    }

    /// Receives the keys file that follows a round request; it must be exactly the bytes the
    /// setup attestation vouches for.
    async fn receive_keys(
        &self,
        framed: &mut Framed<Stream>,
        request: &RoundRequest,
        setup: &VerifiedSetup,
    ) -> Result<ProvingKeys, ServiceError> {
        let mut file = Vec::new();
        loop {
            match framed.recv::<ToEnclave>().await? {
                ToEnclave::KeysChunk(chunk) => {
                    if (file.len() + chunk.len()) as u64 > request.keys_len {
                        return Err(refused("more keys bytes than announced"));
                    }
                    file.extend_from_slice(&chunk);
                }
                ToEnclave::KeysEnd => break,
                _ => return Err(refused("expected keys chunks")),
            }
        }
        if file.len() as u64 != request.keys_len {
            return Err(refused("fewer keys bytes than announced"));
        }
        if Sha256::digest(&file).as_slice() != setup.manifest().proving_keys_sha256.as_slice() {
            return Err(refused("the keys are not the ones the setup attestation vouches for"));
        }
        let keys = tokio::task::spawn_blocking(move || ProvingKeys::read_from(file.as_slice()))
            .await
            .map_err(internal)?
            .map_err(|e| refused(format!("the attested keys file does not load: {e}")))?;
        Ok(keys)
    }

    /// Checks a round request before any keys are sent: its nonce, deadline and configuration,
    /// with the password source and channel binding this enclave requires. The round number is
    /// the parent's label and is not checked: rounds are identified by their manifest digest,
    /// and an enclave's memory of numbers would not survive a restart anyway.
    fn accept_round(&self, request: &RoundRequest, started_ms: u64) -> Result<RoundConfig, ServiceError> {
        let nonce_limit = attestation::nitro::document_limits::MAX_USER_DATA_BYTES;
        if request.nonce.len() > nonce_limit {
            return Err(refused(format!("a {}-byte nonce is over the NSM's {nonce_limit}", request.nonce.len())));
        }
        if request.deadline_ms != 0 && started_ms > request.deadline_ms {
            return Err(refused("the challenge's deadline has passed"));
        }
        if request.keys_len > MAX_KEYS_BYTES {
            return Err(refused(format!("a {}-byte keys file is over the limit", request.keys_len)));
        }
        let mut config = RoundConfig::parse(&request.config_toml, &std::env::current_dir().map_err(internal)?)
            .map_err(|e| refused(format!("round configuration: {e}")))?;
        if config.database.channel_binding == ChannelBindingPolicy::Prefer && !self.config.allow_channel_binding_prefer
        {
            return Err(refused("the round configuration relaxes channel binding; this enclave requires it"));
        }
        if config.database.rds.as_ref().is_some_and(|r| r.is_development())
            && !self.config.allow_development_aws_endpoint
        {
            return Err(refused(
                "the round configuration points the AWS API at another endpoint; this enclave trusts only AWS's",
            ));
        }
        let given = request.database_password.as_ref();
        match (&self.config.password, given) {
            (PasswordSource::Parent, Some(password)) => {
                config.database.password_given = Some(password.clone());
            }
            (PasswordSource::Parent, None) => {
                return Err(refused(
                    "this enclave takes its database password from the parent, and the request carries none",
                ));
            }
            (PasswordSource::Env(_) | PasswordSource::File(_), Some(_)) => {
                return Err(refused(
                    "the request carries a database password, but this enclave reads its own (--password-env or \
                     --password-file)",
                ));
            }
            (PasswordSource::Env(name), None) => {
                config.database.password_env = Some(name.clone());
                config.database.password_file = None;
            }
            (PasswordSource::File(path), None) => {
                config.database.password_env = None;
                config.database.password_file = Some(path.clone());
            }
        }
        Ok(config)
    }

    async fn round(&mut self, framed: &mut Framed<Stream>, request: RoundRequest) -> Result<(), ServiceError> {
        let started_ms = now_ms();
        let config = self.accept_round(&request, started_ms)?;
        let setup = self.check_setup(&request, &config)?;
        framed.send(&FromEnclave::SendKeys).await?;
        let keys = self.receive_keys(framed, &request, &setup).await?;
        let setup_manifest = request.setup_manifest.clone();
        tracing::info!(round = request.round, "round: reading the database through the proxy");

        let (events, mut pending) = tokio::sync::mpsc::channel(EVENT_QUEUE);
        let work = RoundWork {
            nsm: Arc::clone(&self.nsm),
            proxy: self.config.proxy.clone(),
            max_errors: self.config.max_errors,
            request,
            config,
            keys,
            setup_manifest,
            started_ms,
        };
        let task = tokio::spawn(work.run(events));
        while let Some(event) = pending.recv().await {
            // A parent that stops reading would hold the enclave, which serves one request at a
            // time, forever.
            let sent = tokio::time::timeout(WRITE_TIMEOUT, framed.send(&event)).await;
            if let Err(e) = sent.map_err(|_| internal("the parent stopped reading")).and_then(|r| r.map_err(Into::into))
            {
                task.abort();
                return Err(e);
            }
        }
        task.await.map_err(internal)?
    }
}

async fn send_failure(framed: &mut Framed<Stream>, error: &ServiceError) {
    let message = FromEnclave::Failed { kind: error.kind().to_owned(), message: error.to_string() };
    // The parent may be gone already; the error is logged by the caller either way.
    let _ = framed.send(&message).await;
}

/// One proving round after its request and keys were accepted.
struct RoundWork {
    nsm: Arc<Mutex<Box<dyn SecureModule>>>,
    proxy: Address,
    max_errors: usize,
    request: RoundRequest,
    config: RoundConfig,
    keys: ProvingKeys,
    setup_manifest: Vec<u8>,
    started_ms: u64,
}

impl RoundWork {
    /// Reads the reserves the configuration names (none: a liabilities-only round).
    async fn read_reserves(
        &self,
        read: &crate::db::DatabaseRead,
        route: &crate::net::Route,
    ) -> Result<Option<crate::reserves::Reserves>, ServiceError> {
        let config = self.config.reserves_config();
        if !config.is_enabled() {
            return Ok(None);
        }
        let signatures = match &self.request.ownership_signatures {
            Some(text) => crate::reserves::read::parse_signatures(text).map_err(|e| refused(e.to_string()))?,
            None => Vec::new(),
        };
        let liabilities = crate::reserves::read::liabilities(&self.config, &read.ledger);
        let snapshot_ms = crate::reserves::read::snapshot_ms(&read.record.identity.server_time)
            .map_err(|e| refused(format!("reserves: {e}")))?;
        tracing::info!(chains = config.chains.len(), "round: reading the reserves");
        crate::reserves::read(&config, &liabilities, &self.request.nonce, snapshot_ms, signatures, route)
            .await
            .map(Some)
            .map_err(|e| refused(format!("reserves: {e}")))
    }

    async fn run(self, events: Sender<FromEnclave>) -> Result<(), ServiceError> {
        // Progress is advisory: dropped, not waited for, when the parent reads slowly.
        let progress = |stage, done, total| {
            let _ = events.try_send(FromEnclave::Progress { stage, done, total });
        };
        let route = crate::net::Route::Proxy(self.proxy.clone());
        let aws = self.request.aws_credentials.clone().or_else(crate::aws::credentials_from_env);
        let read = crate::db::attested_read(&self.config, &route, self.max_errors, aws.as_ref(), &mut |rows| {
            progress(Stage::Reading, rows, 0)
        })
        .await
        .map_err(ServiceError::Database)?;
        tracing::info!(rows = read.record.rows, accounts = read.ledger.accounts.len(), "read");
        // The reserves are read before proving, so a round whose reserves cannot be read is
        // refused before minutes of work, and the chains' blocks are close to the snapshot.
        let mut reserves = self.read_reserves(&read, &route).await?;
        let hidden = match &mut reserves {
            Some(reserves) => reserves.hide_private_totals(&self.config.reserves_config()),
            None => Vec::new(),
        };

        let mut round_id = [0u8; 32];
        rand::RngCore::fill_bytes(&mut OsRng, &mut round_id);
        let keys = self.keys;
        let ledger = read.ledger;
        let proving_events = events.clone();
        let (mut proved, keys) = tokio::task::spawn_blocking(move || {
            let proved = crate::round::prove_private_round(&keys, ledger, round_id, &hidden, &mut OsRng, &mut |done, total| {
                let _ = proving_events.try_send(FromEnclave::Progress {
                    stage: Stage::Proving,
                    done: done as u64,
                    total: total as u64,
                });
            });
            proved.map(|p| (p, keys))
        })
        .await
        .map_err(internal)?
        .map_err(|e| refused(e.to_string()))?;
        proved.bundle.attestation = EMBEDDED.to_owned();

        progress(Stage::Attesting, 0, 1);
        let wire = proved.bundle.to_wire();
        let liabilities = attestation::bundle::encode_wire(&wire);
        let record = read.record;
        let mut manifest = Manifest {
            format: MANIFEST_FORMAT_V2.to_owned(),
            round: self.request.round,
            round_id: round_id.to_vec(),
            software_version: SOFTWARE_VERSION.to_owned(),
            started_ms: self.started_ms,
            finished_ms: now_ms(),
            nonce: self.request.nonce.clone(),
            deadline_ms: self.request.deadline_ms,
            config_sha256: Sha256::digest(self.request.config_toml.as_bytes()).to_vec(),
            database: record.identity,
            query: record.query,
            rows: record.rows,
            rows_sha256: record.rows_sha256,
            assets: self
                .config
                .assets
                .iter()
                .zip(&proved.bundle.totals)
                .map(|(a, t)| AssetTotal {
                    symbol: a.symbol.clone(),
                    decimals: a.decimals,
                    total: attestation::bundle::total_text(*t),
                })
                .collect(),
            leaf_count: proved.bundle.leaf_count,
            batch_size: keys.shape.batch_size as u64,
            root: wire.root.clone(),
            liabilities_sha256: Sha256::digest(&liabilities).to_vec(),
            proofs_sha256: attestation::manifest::proofs_sha256(wire.batches.iter().map(|b| b.proof.as_slice()))
                .to_vec(),
            verifying_key_sha256: attestation::liabilities::verifying_key_sha256(keys.verifying_key()).to_vec(),
            setup_sha256: Sha256::digest(&self.setup_manifest).to_vec(),
            solvency: reserves.as_ref().map(|r| r.solvency.clone()),
        };
        if reserves.is_some() {
            manifest.format = attestation::manifest::MANIFEST_FORMAT_V3.to_owned();
        }
        drop(keys);
        if manifest.deadline_ms != 0 && now_ms() > manifest.deadline_ms {
            return Err(refused("the challenge's deadline passed while proving; nothing is attested"));
        }
        let manifest_bytes = manifest.encode();
        let evidence = reserves.map(|r| r.evidence_bytes);
        // What verifiers would refuse as too large is not attested: it could never be checked.
        if manifest_bytes.len() > attestation::manifest::MAX_MANIFEST_BYTES {
            return Err(refused(format!(
                "the manifest would be {} bytes, more than verifiers accept ({}); list fewer addresses per round",
                manifest_bytes.len(),
                attestation::manifest::MAX_MANIFEST_BYTES
            )));
        }
        let evidence_limit = attestation::reserves::evidence::MAX_EVIDENCE_BYTES;
        if let Some(size) = evidence.as_ref().map(Vec::len).filter(|&size| size > evidence_limit) {
            return Err(refused(format!(
                "the reserves evidence would be {size} bytes, more than verifiers accept ({evidence_limit})"
            )));
        }
        let digest = Manifest::digest(&manifest_bytes);
        let attestation_document = {
            let mut nsm = self.nsm.lock().map_err(|_| internal("the NSM lock is poisoned"))?;
            nsm.attestation_document(&AttestationRequest {
                user_data: Some(digest.to_vec()),
                nonce: (!self.request.nonce.is_empty()).then(|| self.request.nonce.clone()),
                public_key: None,
            })?
        };
        let bundle = RoundBundleWire {
            format: if evidence.is_some() { attestation::attested::FORMAT_V3 } else { attestation::attested::FORMAT_V2 }
                .to_owned(),
            manifest: manifest_bytes,
            attestation: attestation_document,
            round_signature: None,
            setup_manifest: self.setup_manifest,
            setup_attestation: self.request.setup_attestation,
            liabilities,
            reserves: evidence,
        }
        .encode();
        let accounts = proved.account_count() as u64;
        // The parent going away ends the round; nothing more is worth sending then.
        let send = |event| async { events.send(event).await.map_err(|_| internal("the parent went away")) };
        send(FromEnclave::RoundDone { round: self.request.round, bundle_len: bundle.len() as u64, accounts }).await?;
        for chunk in bundle.chunks(CHUNK_BYTES) {
            send(FromEnclave::BundleChunk(chunk.to_vec())).await?;
        }
        let mut batch = Vec::new();
        let mut batch_bytes = 0;
        for proof in proved.inclusion_proofs(Some(digest)) {
            let json = proof.to_json();
            batch_bytes += json.len() + proof.account_id.len();
            batch.push(InclusionEntry { account_id: proof.account_id, json });
            if batch_bytes >= CHUNK_BYTES {
                send(FromEnclave::Inclusion(std::mem::take(&mut batch))).await?;
                batch_bytes = 0;
            }
        }
        if !batch.is_empty() {
            send(FromEnclave::Inclusion(batch)).await?;
        }
        send(FromEnclave::Finished).await?;
        tracing::info!(round = self.request.round, accounts, "round attested and sent");
        Ok(())
    }
}
