//! `solvency-parent`: the program on the EC2 host. `run` serves the appliance (proxy, schedule,
//! HTTP); `setup` and `round` run one round by hand; `demo` runs everything on an embedded
//! default (a private PostgreSQL, the enclave as a child process with the emulated NSM).
//!
//! Exit codes: 0 success, 1 the round was refused or failed, 2 usage or configuration, 3 an I/O
//! or internal failure.

mod demo;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use channel::protocol::Stage;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use parent::config::ParentConfig;
use parent::metrics::Metrics;
use parent::rounds::{start_proxy, Driver};
use parent::store::Store;

#[derive(Parser)]
#[command(
    name = "solvency-parent",
    version,
    about = "Runs the solvency enclave's rounds, stores and serves its bundles"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve: the enclave's proxy, scheduled rounds, and the HTTP API (bundles, inclusion proofs,
    /// health, metrics, round triggers).
    Run {
        /// The parent configuration (TOML).
        #[arg(long)]
        config: PathBuf,
    },
    /// Run an attested setup round: the enclave makes the Groth16 keys and attests their hash.
    Setup {
        /// The parent configuration (TOML).
        #[arg(long)]
        config: PathBuf,
    },
    /// Run one proving round now and store it.
    Round {
        /// The parent configuration (TOML).
        #[arg(long)]
        config: PathBuf,
        /// An auditor's challenge (hex) to bind into the attestation.
        #[arg(long)]
        nonce: Option<String>,
        /// Seconds the round has to finish, from now.
        #[arg(long)]
        deadline_secs: Option<u64>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Measure an enclave image file (EIF): the PCRs an enclave booted from it reports (PCR0, 1
    /// and 2, and PCR8 for a signed image), computed as nitro-cli does, with the image's layout,
    /// CRC and signature checked.
    Measure {
        /// The enclave image file.
        #[arg(long)]
        eif: PathBuf,
        /// Write the PCRs into the `[pcrs]` table of this verifier policy file: a new file, or an
        /// existing policy whose PCR0-2 and PCR8 pins are set and everything else kept.
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// A full demo on an embedded default: private PostgreSQL, the enclave as a child process
    /// with the emulated NSM over a Unix socket through the proxy, setup, a challenged round,
    /// the bundle, a policy, and its verification.
    Demo {
        /// Output directory (must not exist, or be empty).
        #[arg(long)]
        out: PathBuf,
        /// Synthetic accounts.
        #[arg(long, default_value_t = 10_000)]
        accounts: u64,
        /// Accounts per batch proof (956: the largest circuit that fits a 2^19 domain at 3 assets).
        #[arg(long, default_value_t = 956)]
        batch_size: u64,
        /// Put less on the chain for this asset than its liabilities (BTC, ETH or USDT): the
        /// round is still attested, published and verifiable, and reported INSOLVENT.
        #[arg(long)]
        insolvent: Option<String>,
    },
}

/// An unusable invocation or configuration (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Usage(String);

/// A refused or failed round, or an image that cannot be measured (exit 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct RoundFailed(String);

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo narrates on stdout; its log shows warnings only unless RUST_LOG says otherwise.
    let default_filter = if matches!(cli.command, Command::Demo { .. }) { "warn" } else { "info" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default_filter.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::from(3);
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<Usage>().is_some() => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
        Err(e) if e.downcast_ref::<RoundFailed>().is_some() => {
            eprintln!("failed: {e}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(3)
        }
    }
}

fn load(config: &std::path::Path) -> anyhow::Result<ParentConfig> {
    ParentConfig::load(config).map_err(|e| Usage(format!("{}: {e}", config.display())).into())
}

/// A progress bar fed by the enclave's progress reports.
pub(crate) struct Bar(ProgressBar, Option<Stage>);

impl Bar {
    pub(crate) fn new() -> Self {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{msg:24} [{bar:30}] {pos}/{len} {elapsed_precise}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Self(bar, None)
    }

    pub(crate) fn update(&mut self, stage: Stage, done: u64, total: u64) {
        if self.1 != Some(stage) {
            // Stage changes also go to the log, for runs without a terminal.
            tracing::info!(?stage, "enclave progress");
            self.1 = Some(stage);
        }
        let message = match stage {
            Stage::Setup => "generating keys",
            Stage::Reading => "reading rows",
            Stage::Proving => "proving batches",
            Stage::Attesting => "attesting",
        };
        self.0.set_message(message);
        self.0.set_length(total.max(done));
        self.0.set_position(done);
    }

    pub(crate) fn finish(&self) {
        self.0.finish_and_clear();
    }
}

fn driver(config: ParentConfig) -> anyhow::Result<(Arc<Driver>, Arc<Metrics>)> {
    let store =
        Arc::new(Store::open(&config.store).with_context(|| format!("opening the store {}", config.store.display()))?);
    let metrics = Arc::new(Metrics::new());
    Ok((Arc::new(Driver::new(config, store, Arc::clone(&metrics))), metrics))
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Measure { eif, policy, json } => {
            let measured =
                parent::measure::measure_file(&eif).map_err(|e| RoundFailed(format!("{}: {e}", eif.display())))?;
            if let Some(policy) = &policy {
                parent::measure::write_policy_pcrs(policy, &measured)?;
            }
            let signer = measured.signer.as_ref();
            if json {
                let out = serde_json::json!({
                    "eif": eif,
                    "eif_version": measured.version,
                    "signed": signer.is_some(),
                    "signer": signer.map(|s| serde_json::json!({
                        "subject": s.subject, "not_before": s.not_before, "not_after": s.not_after,
                    })),
                    "pcrs": measured.pcrs_by_name(),
                    "policy": policy,
                });
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                println!("{} (EIF version {})", eif.display(), measured.version);
                match signer {
                    Some(s) => {
                        println!("signed by {}, certificate valid {} to {}", s.subject, s.not_before, s.not_after)
                    }
                    None => println!("unsigned"),
                }
                for (index, value) in measured.pcrs() {
                    println!("PCR{index} {}", hex::encode(value));
                }
                if let Some(policy) = &policy {
                    println!("wrote the [pcrs] table of {}", policy.display());
                }
            }
            Ok(())
        }
        Command::Run { config } => {
            let config = load(&config)?;
            let admin_token = match config.admin_token().map_err(|e| Usage(e.to_string()))? {
                Some(t) => Some(parent::http::AdminToken::new(t).map_err(|e| Usage(e.to_string()))?),
                None => None,
            };
            // A missing or empty password credential is a configuration error now, not a
            // failure of the first round an hour from now.
            config.database_password().map_err(|e| Usage(e.to_string()))?;
            let http_listen = config.http_listen.clone();
            let (driver, metrics) = driver(config.clone())?;
            let proxy = start_proxy(&config, Arc::clone(&metrics)).await.context("starting the proxy")?;
            let (triggers, receiver) = tokio::sync::mpsc::channel(4);
            let rounds = tokio::spawn(Arc::clone(&driver).run(receiver));
            let http = match http_listen {
                Some(listen) => {
                    let listener = tokio::net::TcpListener::bind(&listen)
                        .await
                        .with_context(|| format!("binding the HTTP API to {listen}"))?;
                    tracing::info!(%listen, "HTTP API listening");
                    let state = parent::http::HttpState {
                        store: Arc::clone(driver.store()),
                        metrics,
                        admin_token,
                        rounds: triggers.clone(),
                    };
                    Some(tokio::spawn(parent::http::serve(listener, state)))
                }
                None => None,
            };
            // `triggers` stays alive to the end, so the driver keeps serving the schedule even
            // without the HTTP API.
            tokio::select! {
                r = proxy => anyhow::bail!("the proxy stopped: {:?}", r),
                _ = rounds => anyhow::bail!("the round driver stopped"),
                r = async { match http { Some(h) => h.await, None => std::future::pending().await } } => {
                    anyhow::bail!("the HTTP API stopped: {:?}", r)
                }
                _ = tokio::signal::ctrl_c() => {
                    tracing::info!("interrupted; stopping");
                    Ok(())
                }
            }
        }
        Command::Setup { config } => {
            let config = load(&config)?;
            let (driver, metrics) = driver(config.clone())?;
            let proxy = start_proxy(&config, metrics).await.context("starting the proxy")?;
            let mut bar = Bar::new();
            let result = driver.setup(&mut |s, d, t| bar.update(s, d, t)).await;
            bar.finish();
            proxy.abort();
            let evidence = result.map_err(|e| RoundFailed(e.to_string()))?;
            let manifest = attestation::manifest::SetupManifest::decode(&evidence.setup_manifest)?;
            println!("setup attested: batch size {}, {} assets", manifest.batch_size, manifest.assets);
            println!("keys:      {} (SHA-256 {})", config.keys.display(), hex::encode(&manifest.proving_keys_sha256));
            println!("evidence:  {}", config.setup.display());
            println!("vk SHA-256 {}", hex::encode(&manifest.verifying_key_sha256));
            Ok(())
        }
        Command::Round { config, nonce, deadline_secs, json } => {
            let config = load(&config)?;
            let nonce = match nonce {
                Some(h) => hex::decode(&h).map_err(|_| Usage("--nonce must be hex".into()))?,
                None => Vec::new(),
            };
            if nonce.len() > attestation::nitro::document_limits::MAX_USER_DATA_BYTES {
                return Err(Usage("--nonce is longer than the NSM accepts (512 bytes)".into()).into());
            }
            let deadline_ms = match deadline_secs {
                Some(s) => {
                    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64;
                    s.checked_mul(1000)
                        .and_then(|ms| now.checked_add(ms))
                        .ok_or_else(|| Usage("--deadline-secs is too large".into()))?
                }
                None => 0,
            };
            let (driver, metrics) = driver(config.clone())?;
            let proxy = start_proxy(&config, metrics).await.context("starting the proxy")?;
            let mut bar = Bar::new();
            let result = driver.round(nonce, deadline_ms, &mut |s, d, t| bar.update(s, d, t)).await;
            bar.finish();
            proxy.abort();
            let stored = result.map_err(|e| RoundFailed(e.to_string()))?;
            let bundle = driver.store().round_path(stored.round).join("bundle.cbor");
            if json {
                let out = serde_json::json!({
                    "round": stored.round,
                    "manifest_digest": hex::encode(stored.manifest_digest),
                    "bundle": bundle,
                    "accounts": stored.accounts,
                    "totals": stored.manifest.assets,
                    "database": stored.manifest.database,
                });
                println!("{out:#}");
            } else {
                println!("round {} stored: {}", stored.round, bundle.display());
                println!("manifest digest {} (what identifies the round)", hex::encode(stored.manifest_digest));
                println!("{} accounts; inclusion proofs beside the bundle", stored.accounts);
                for a in &stored.manifest.assets {
                    println!("  total {}: {}", a.symbol, a.total);
                }
            }
            Ok(())
        }
        Command::Demo { out, accounts, batch_size, insolvent } => {
            demo::run(&out, accounts, batch_size, insolvent.as_deref()).await
        }
    }
}
