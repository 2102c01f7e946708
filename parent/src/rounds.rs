//! Running rounds on the parent: the proxy the enclave reaches its database through, setup and
//! proving rounds numbered from the store, one at a time, started by the schedule, an operator or
//! an auditor's challenge (through [`crate::http::RoundTrigger`]), with metrics and log lines.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use channel::protocol::{RoundRequest, Secret, Stage};
use channel::proxy::Allowlist;
use channel::Listener;
use tokio::sync::mpsc;

use crate::client::{self, ClientError, Progress, SetupEvidence, StoredRound};
use crate::config::{ParentConfig, RoundOutline};
use crate::http::RoundTrigger;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

/// Why a round could not run.
#[derive(Debug, thiserror::Error)]
pub enum RoundError {
    /// Another round is running.
    #[error("a round is already running")]
    Busy,
    /// The round configuration or setup evidence could not be read.
    #[error("{0}")]
    Setup(String),
    /// The enclave or the store failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Starts the proxy for the enclave's outbound connections; it runs until the task is dropped
/// or aborted.
pub async fn start_proxy(
    config: &ParentConfig,
    metrics: Arc<Metrics>,
) -> std::io::Result<tokio::task::JoinHandle<std::io::Result<()>>> {
    let listener = Listener::bind(&config.proxy_listen).await?;
    let allowlist = Allowlist::new(config.proxy_allow.clone());
    tracing::info!(listen = %config.proxy_listen, allow = ?config.proxy_allow, "proxy listening");
    Ok(tokio::spawn(channel::proxy::serve_observed(listener, allowlist, move |_, _, allowed| {
        metrics.proxy_connection(allowed)
    })))
}

/// Runs the parent's rounds against one enclave and one store.
pub struct Driver {
    config: ParentConfig,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    busy: Arc<tokio::sync::Mutex<()>>,
}

impl Driver {
    /// A driver for `config`'s enclave, storing into `store`.
    pub fn new(config: ParentConfig, store: Arc<Store>, metrics: Arc<Metrics>) -> Self {
        Self { config, store, metrics, busy: Arc::new(tokio::sync::Mutex::new(())) }
    }

    /// The store rounds go to.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    fn round_config_text(&self) -> Result<String, RoundError> {
        std::fs::read_to_string(&self.config.round_config)
            .map_err(|e| RoundError::Setup(format!("reading {}: {e}", self.config.round_config.display())))
    }

    /// The ownership signatures file the round configuration names, read for the enclave, which
    /// checks every signature itself.
    fn ownership_signatures(&self, config_text: &str) -> Result<Option<String>, RoundError> {
        let outline = RoundOutline::parse(config_text)
            .map_err(|e| RoundError::Setup(format!("the round configuration: {e}")))?;
        let base = self.config.round_config.parent().unwrap_or(Path::new("."));
        outline
            .ownership_signatures(base)
            .map(|path| {
                std::fs::read_to_string(&path)
                    .map_err(|e| RoundError::Setup(format!("reading {}: {e}", path.display())))
            })
            .transpose()
    }

    /// Runs an attested setup round for the configured batch size and the round
    /// configuration's asset count.
    pub async fn setup(&self, progress: Progress<'_>) -> Result<SetupEvidence, RoundError> {
        let _guard = self.lock()?;
        let text = self.round_config_text()?;
        let assets = RoundOutline::parse(&text)
            .map_err(|e| RoundError::Setup(format!("the round configuration: {e}")))?
            .asset_count() as u64;
        if assets == 0 {
            return Err(RoundError::Setup("the round configuration lists no [[assets]]".into()));
        }
        self.metrics.setup_round();
        tracing::info!(batch_size = self.config.batch_size, assets, "setup round");
        let evidence = client::setup(
            &self.config.enclave,
            self.config.batch_size,
            assets,
            &self.config.keys,
            &self.config.setup,
            progress,
        )
        .await?;
        tracing::info!(keys = %self.config.keys.display(), "setup attested and keys stored");
        Ok(evidence)
    }

    fn lock(&self) -> Result<tokio::sync::OwnedMutexGuard<()>, RoundError> {
        Arc::clone(&self.busy).try_lock_owned().map_err(|_| RoundError::Busy)
    }

    /// Reserves the next round's number durably before the enclave hears it, so this store never
    /// gives two rounds one label, even if this process crashes before the round is stored.
    pub fn reserve_round(&self) -> Result<u64, RoundError> {
        Ok(self.store.reserve_round()?)
    }

    /// Runs one proving round with an optional challenge and stores it.
    pub async fn round(
        &self,
        nonce: Vec<u8>,
        deadline_ms: u64,
        progress: Progress<'_>,
    ) -> Result<StoredRound, RoundError> {
        let guard = self.lock()?;
        let number = self.reserve_round()?;
        self.round_locked(guard, number, nonce, deadline_ms, progress).await
    }

    async fn round_locked(
        &self,
        _guard: tokio::sync::OwnedMutexGuard<()>,
        round: u64,
        nonce: Vec<u8>,
        deadline_ms: u64,
        progress: Progress<'_>,
    ) -> Result<StoredRound, RoundError> {
        let started = Instant::now();
        self.metrics.round_started();
        tracing::info!(round, challenged = !nonce.is_empty(), "proving round");
        let result = async {
            let evidence = SetupEvidence::load(&self.config.setup)?;
            let config_toml = self.round_config_text()?;
            let ownership_signatures = self.ownership_signatures(&config_toml)?;
            let request = RoundRequest {
                round,
                config_toml,
                nonce,
                deadline_ms,
                setup_manifest: evidence.setup_manifest,
                setup_attestation: evidence.setup_attestation,
                keys_len: 0,
                database_password: self
                    .config
                    .database_password()
                    .map_err(|e| RoundError::Setup(e.to_string()))?
                    .map(Secret::new),
                aws_credentials: self.config.aws_credentials().map_err(|e| RoundError::Setup(e.to_string()))?,
                ownership_signatures,
            };
            Ok::<_, RoundError>(
                client::prove(&self.config.enclave, request, &self.config.keys, &self.store, progress).await?,
            )
        }
        .await;
        match &result {
            Ok(stored) => {
                let finished = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
                self.metrics.round_succeeded(round, finished, started.elapsed());
                tracing::info!(
                    round,
                    accounts = stored.accounts,
                    seconds = started.elapsed().as_secs(),
                    "round published"
                );
            }
            Err(e) => {
                self.metrics.round_failed(started.elapsed());
                tracing::error!(round, error = %e, "round failed; the previous round stays published");
            }
        }
        result
    }

    /// Serves round triggers (HTTP) and the schedule until `triggers` closes. A trigger is
    /// answered with the round's number as soon as it starts, or refused if one is running.
    pub async fn run(self: Arc<Self>, mut triggers: mpsc::Receiver<RoundTrigger>) {
        let mut schedule = self.config.interval_secs.map(|s| tokio::time::interval(Duration::from_secs(s)));
        loop {
            let trigger = match schedule.as_mut() {
                Some(interval) => tokio::select! {
                    t = triggers.recv() => match t { Some(t) => Some(t), None => return },
                    _ = interval.tick() => None,
                },
                None => match triggers.recv().await {
                    Some(t) => Some(t),
                    None => return,
                },
            };
            let Ok(guard) = self.lock() else {
                if let Some(t) = trigger {
                    let _ = t.reply.send(Err("a round is already running".into()));
                }
                continue;
            };
            let number = match self.reserve_round() {
                Ok(n) => n,
                Err(e) => {
                    if let Some(t) = trigger {
                        let _ = t.reply.send(Err(e.to_string()));
                    }
                    continue;
                }
            };
            let (nonce, deadline_ms) = match trigger {
                Some(t) => {
                    let _ = t.reply.send(Ok(number));
                    (t.nonce.unwrap_or_default(), t.deadline_ms.unwrap_or(0))
                }
                None => (Vec::new(), 0),
            };
            let driver = Arc::clone(&self);
            // Rounds run one at a time in the background, so triggers arriving meanwhile are
            // answered (refused) at once.
            tokio::spawn(async move {
                let mut last_log = Instant::now();
                let mut log = |stage: Stage, done: u64, total: u64| {
                    if last_log.elapsed() >= Duration::from_secs(5) {
                        last_log = Instant::now();
                        tracing::info!(round = number, ?stage, done, total, "progress");
                    }
                };
                let _ = driver.round_locked(guard, number, nonce, deadline_ms, &mut log).await;
            });
        }
    }
}
