//! The parent's side of the control protocol (`channel::protocol`): asking the enclave for an
//! attested setup and keeping its keys, and asking it for a proving round and storing what it
//! returns. A round reaches the store only when the enclave said `Finished` and the bundle
//! decodes as the round that was asked for; anything less leaves the store as it was.

use std::path::{Path, PathBuf};

use attestation::attested::RoundBundleWire;
use attestation::bundle::MAX_BUNDLE_BYTES;
use attestation::manifest::{Manifest, SetupManifest};
use channel::protocol::{FromEnclave, RoundRequest, Stage, ToEnclave, CHUNK_BYTES};
use channel::{Address, FrameError, Framed, Stream};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::store::log::RoundIdentity;
use crate::store::{Store, StoreError};

/// Why a request to the enclave failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The enclave could not be reached.
    #[error("connecting to the enclave at {address}: {source}")]
    Connect {
        /// Its address.
        address: String,
        /// The error.
        source: std::io::Error,
    },
    /// The control channel failed (the enclave died, or sent garbage).
    #[error("control channel: {0}")]
    Channel(#[from] FrameError),
    /// The enclave reported a failure.
    #[error("the enclave failed the request ({kind}): {message}")]
    Enclave {
        /// Its class: `refused`, `database` or `internal`.
        kind: String,
        /// Its message.
        message: String,
    },
    /// The enclave broke the protocol.
    #[error("protocol: {0}")]
    Protocol(String),
    /// A local file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// The operation.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> ClientError + 'a {
    move |source| ClientError::Io { op, path: path.to_owned(), source }
}

fn protocol(message: impl Into<String>) -> ClientError {
    ClientError::Protocol(message.into())
}

/// What a setup round attested: kept beside the keys and sent with them to every round.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetupEvidence {
    /// The canonical setup manifest.
    #[serde(with = "serde_bytes")]
    pub setup_manifest: Vec<u8>,
    /// Its attestation document.
    #[serde(with = "serde_bytes")]
    pub setup_attestation: Vec<u8>,
}

impl SetupEvidence {
    /// Reads the evidence file.
    pub fn load(path: &Path) -> Result<Self, ClientError> {
        let bytes = std::fs::read(path).map_err(io("reading", path))?;
        ciborium::from_reader(bytes.as_slice()).map_err(|e| protocol(format!("{}: {e}", path.display())))
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Writing byte strings into a Vec cannot fail; qed.
        let _ = ciborium::into_writer(self, &mut out);
        out
    }
}

/// Progress as the enclave reports it: stage, done, total (0: unknown).
pub type Progress<'a> = &'a mut (dyn FnMut(Stage, u64, u64) + Send);

/// How long the enclave may stay silent before the parent gives up on a request. The enclave
/// reports progress at least once per batch proof, and a setup at the largest supported size
/// takes minutes, not hours.
pub const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

async fn receive(framed: &mut Framed<Stream>) -> Result<FromEnclave, ClientError> {
    match tokio::time::timeout(IDLE_TIMEOUT, framed.recv::<FromEnclave>()).await {
        Ok(message) => Ok(message?),
        Err(_) => Err(protocol(format!("the enclave sent nothing for {} s", IDLE_TIMEOUT.as_secs()))),
    }
}

async fn connect(enclave: &Address) -> Result<Framed<Stream>, ClientError> {
    let stream = Stream::connect(enclave)
        .await
        .map_err(|source| ClientError::Connect { address: enclave.to_string(), source })?;
    Ok(Framed::new(stream))
}

fn failed(kind: String, message: String) -> ClientError {
    ClientError::Enclave { kind, message }
}

fn already_exists(path: &Path) -> ClientError {
    ClientError::Io {
        op: "refusing to replace",
        path: path.to_owned(),
        source: std::io::Error::from(std::io::ErrorKind::AlreadyExists),
    }
}

/// Moves a written and fsynced `staging` file to `path` and fsyncs the directory; never replaces
/// a file (the staging file is removed instead).
fn install(staging: &Path, path: &Path) -> Result<(), ClientError> {
    if path.exists() {
        let _ = std::fs::remove_file(staging);
        return Err(already_exists(path));
    }
    std::fs::rename(staging, path).map_err(io("renaming", path))?;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io("fsync", dir))
}

/// Writes `bytes` to `path` through a temporary file, fsync and rename; never replaces a file.
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), ClientError> {
    use std::io::Write;
    let staging = path.with_extension("partial");
    let mut file = std::fs::File::create(&staging).map_err(io("creating", &staging))?;
    file.write_all(bytes).map_err(io("writing", &staging))?;
    file.sync_all().map_err(io("fsync", &staging))?;
    install(&staging, path)
}

/// Runs an attested setup round: the enclave makes keys for `batch_size` × `assets`; the keys
/// go to `keys_path` and the evidence to `setup_path`. Existing files are never replaced.
pub async fn setup(
    enclave: &Address,
    batch_size: u64,
    assets: u64,
    keys_path: &Path,
    setup_path: &Path,
    progress: Progress<'_>,
) -> Result<SetupEvidence, ClientError> {
    if let Some(path) = [keys_path, setup_path].into_iter().find(|p| p.exists()) {
        return Err(already_exists(path));
    }
    let mut framed = connect(enclave).await?;
    framed.send(&ToEnclave::Setup { batch_size, assets }).await?;
    let (evidence, keys_len) = loop {
        match receive(&mut framed).await? {
            FromEnclave::Progress { stage, done, total } => progress(stage, done, total),
            FromEnclave::Failed { kind, message } => return Err(failed(kind, message)),
            FromEnclave::SetupDone { setup_manifest, setup_attestation, keys_len } => {
                break (SetupEvidence { setup_manifest, setup_attestation }, keys_len)
            }
            other => return Err(protocol(format!("unexpected {other:?} during setup"))),
        }
    };
    let manifest =
        SetupManifest::decode(&evidence.setup_manifest).map_err(|e| protocol(format!("the setup manifest: {e}")))?;
    let staging = keys_path.with_extension("partial");
    let mut file = tokio::fs::File::create(&staging).await.map_err(io("creating", &staging))?;
    let mut hash = Sha256::new();
    let mut received = 0u64;
    loop {
        match receive(&mut framed).await? {
            FromEnclave::KeysChunk(chunk) => {
                received += chunk.len() as u64;
                if received > keys_len {
                    return Err(protocol("more keys bytes than announced"));
                }
                hash.update(&chunk);
                file.write_all(&chunk).await.map_err(io("writing", &staging))?;
            }
            FromEnclave::KeysEnd => break,
            FromEnclave::Failed { kind, message } => return Err(failed(kind, message)),
            other => return Err(protocol(format!("unexpected {other:?} while receiving keys"))),
        }
    }
    if received != keys_len || hash.finalize().as_slice() != manifest.proving_keys_sha256.as_slice() {
        let _ = tokio::fs::remove_file(&staging).await;
        return Err(protocol("the keys received are not the ones the setup attested"));
    }
    file.sync_all().await.map_err(io("fsync", &staging))?;
    drop(file);
    install(&staging, keys_path)?;
    if let Err(e) = write_new(setup_path, &evidence.encode()) {
        // Keys without their evidence are useless and would block the next setup.
        let _ = std::fs::remove_file(keys_path);
        return Err(e);
    }
    Ok(evidence)
}

/// What a finished round left in the store.
#[derive(Clone, Debug)]
pub struct StoredRound {
    /// The round number (the parent's label).
    pub round: u64,
    /// The manifest digest: what identifies the round.
    pub manifest_digest: [u8; 48],
    /// The attested manifest.
    pub manifest: Manifest,
    /// Inclusion proofs stored.
    pub accounts: u64,
}

/// Runs proving round `request.round` with the keys at `keys_path` and stores the result.
/// `request.keys_len` is filled in here.
pub async fn prove(
    enclave: &Address,
    mut request: RoundRequest,
    keys_path: &Path,
    store: &Store,
    progress: Progress<'_>,
) -> Result<StoredRound, ClientError> {
    let mut keys = tokio::fs::File::open(keys_path).await.map_err(io("opening", keys_path))?;
    request.keys_len = keys.metadata().await.map_err(io("reading", keys_path))?.len();
    let round = request.round;
    let nonce = request.nonce.clone();
    // Refuse early (before the enclave works) a round the store would refuse at the end.
    drop(store.begin(round)?);
    let mut framed = connect(enclave).await?;
    framed.send(&ToEnclave::Round(Box::new(request))).await?;
    // The keys go only once the enclave accepted the request: a refusal costs nothing.
    loop {
        match receive(&mut framed).await? {
            FromEnclave::SendKeys => break,
            FromEnclave::Progress { stage, done, total } => progress(stage, done, total),
            FromEnclave::Failed { kind, message } => return Err(failed(kind, message)),
            other => return Err(protocol(format!("unexpected {other:?} before the keys"))),
        }
    }
    let sent = async {
        let mut buffer = vec![0u8; CHUNK_BYTES];
        loop {
            let n = keys.read(&mut buffer).await.map_err(io("reading", keys_path))?;
            if n == 0 {
                break;
            }
            framed.send(&ToEnclave::KeysChunk(buffer.get(..n).unwrap_or_default().to_vec())).await?;
        }
        framed.send(&ToEnclave::KeysEnd).await?;
        Ok::<_, ClientError>(())
    }
    .await;
    if let Err(e) = sent {
        // The enclave may have refused the keys and hung up while they were on their way; its
        // reason says more than the broken pipe.
        if let Ok(Ok(FromEnclave::Failed { kind, message })) =
            tokio::time::timeout(std::time::Duration::from_secs(2), framed.recv::<FromEnclave>()).await
        {
            return Err(failed(kind, message));
        }
        return Err(e);
    }

    let (mut pending, manifest, accounts, identity) = loop {
        match receive(&mut framed).await? {
            FromEnclave::Progress { stage, done, total } => progress(stage, done, total),
            FromEnclave::Failed { kind, message } => return Err(failed(kind, message)),
            FromEnclave::RoundDone { round: done, bundle_len, accounts } => {
                if bundle_len > MAX_BUNDLE_BYTES as u64 {
                    return Err(protocol(format!("a {bundle_len}-byte bundle is over the limit")));
                }
                let mut bundle = Vec::new();
                while (bundle.len() as u64) < bundle_len {
                    match receive(&mut framed).await? {
                        FromEnclave::BundleChunk(chunk) if bundle.len() as u64 + chunk.len() as u64 <= bundle_len => {
                            bundle.extend_from_slice(&chunk)
                        }
                        FromEnclave::Failed { kind, message } => return Err(failed(kind, message)),
                        other => return Err(protocol(format!("unexpected {other:?} in the bundle"))),
                    }
                }
                let wire = RoundBundleWire::decode(&bundle).map_err(|e| protocol(format!("the bundle: {e}")))?;
                let manifest = Manifest::decode(&wire.manifest).map_err(|e| protocol(format!("the manifest: {e}")))?;
                if done != round || manifest.round != round {
                    return Err(protocol(format!("asked for round {round}, got round {}", manifest.round)));
                }
                if manifest.nonce != nonce {
                    return Err(protocol("the round does not carry the challenge nonce"));
                }
                let identity = RoundIdentity::of_bundle(&bundle)
                    .map_err(|e| protocol(format!("the bundle's attestation: {e}")))?;
                let mut pending = store.begin(round)?;
                pending.write_bundle(&bundle)?;
                pending.set_identity(identity)?;
                break (pending, manifest, accounts, identity);
            }
            other => return Err(protocol(format!("unexpected {other:?} during a round"))),
        }
    };
    let mut stored = 0u64;
    loop {
        match receive(&mut framed).await? {
            FromEnclave::Inclusion(entries) => {
                for entry in entries {
                    pending.add_inclusion_proof(&entry.account_id, entry.json.as_bytes())?;
                    stored += 1;
                }
            }
            FromEnclave::Finished => break,
            FromEnclave::Failed { kind, message } => return Err(failed(kind, message)),
            other => return Err(protocol(format!("unexpected {other:?} while receiving inclusion proofs"))),
        }
    }
    if stored != accounts {
        return Err(protocol(format!("{stored} inclusion proofs received, {accounts} announced")));
    }
    let summary = serde_json::json!({
        "manifest_digest": hex::encode(identity.manifest_digest),
        "attested_ms": identity.attested_ms,
        "round": round,
        "round_id": hex::encode(&manifest.round_id),
        "leaf_count": manifest.leaf_count,
        "assets": manifest.assets,
        "database": manifest.database,
        "finished_ms": manifest.finished_ms,
    });
    pending.add_file("summary.json", summary.to_string().as_bytes())?;
    pending.commit()?;
    Ok(StoredRound { round, manifest_digest: identity.manifest_digest, manifest, accounts })
}
