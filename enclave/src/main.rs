//! `solvency-enclave`: read the ledger from the database (or a CSV file) and prove it, dry-run a
//! database configuration, inspect the circuit, benchmark the prover.
//!
//! Exit codes: 0 success, 1 the input was refused (bad rows, empty ledger), 2 usage or an
//! unusable configuration, 3 a connection, I/O or internal failure.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use enclave::circuit::batch::BatchShape;
use enclave::csv_input::{read_ledger, CsvError};
use enclave::keys::{circuit_size, largest_batch_for_domain, setup};
use enclave::ledger::DEFAULT_ERROR_LIMIT;
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::OsRng;
use rand::RngCore;

/// Largest QAP domain the automatic batch size aims for (2^19: about 1,400 accounts at K = 1).
const AUTO_MAX_LOG2_DOMAIN: u32 = 19;

#[derive(Parser)]
#[command(
    name = "solvency-enclave",
    version,
    about = "Proves an exchange's liabilities: Poseidon commitment and Groth16 batch proofs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the parent: attested setup rounds and proving rounds over the control channel,
    /// reading the database through the parent's proxy. This is what runs inside the enclave.
    #[command(group(clap::ArgGroup::new("password").required(true).multiple(false)))]
    Serve {
        /// Where the parent connects: vsock://CID:PORT (in an enclave, vsock://4294967295:5000
        /// listens on any CID), unix:///path or tcp://HOST:PORT.
        #[arg(long)]
        listen: channel::Address,
        /// The parent's outbound proxy (in an enclave, vsock://3:PORT).
        #[arg(long)]
        proxy: channel::Address,
        /// The Nitro Secure Module: `hardware` (/dev/nsm) or `emulated` (development only; its
        /// documents are signed by a development root, never by AWS).
        #[arg(long, value_enum)]
        nsm: NsmChoice,
        /// The emulated NSM's development root directory (made on first use), so that
        /// restarts keep one root. Without it every start makes a new root.
        #[arg(long, requires = "nsm")]
        emulated_root: Option<PathBuf>,
        /// The environment variable holding the database password. One of the three password
        /// options is given at start (in production, by the image's entry point); the round
        /// configuration's own password settings are then ignored.
        #[arg(long, group = "password")]
        password_env: Option<String>,
        /// A file holding the database password (a trailing newline is ignored).
        #[arg(long, group = "password")]
        password_file: Option<PathBuf>,
        /// Take the database password from the parent, with each round request (production: a
        /// Nitro Enclave's image carries no secret). Requests without one are refused.
        #[arg(long, group = "password")]
        password_from_parent: bool,
        /// Accept round configurations with `channel_binding = "prefer"` (development only).
        #[arg(long)]
        allow_channel_binding_prefer: bool,
        /// Accept round configurations that send the AWS API calls to another endpoint, such as
        /// a local AWS API server (development and tests only).
        #[arg(long)]
        allow_development_aws_endpoint: bool,
        /// Bad rows listed before the rest are only counted.
        #[arg(long, default_value_t = DEFAULT_ERROR_LIMIT)]
        max_errors: usize,
    },
    /// Read the balances from the configured database and print what was read, without
    /// proving: the database record, the row count and the per-asset totals.
    CheckDb {
        /// Round configuration (TOML).
        #[arg(long)]
        config: PathBuf,
        /// Bad rows listed before the rest are only counted.
        #[arg(long, default_value_t = DEFAULT_ERROR_LIMIT)]
        max_errors: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Read the liabilities totals from the database and the reserves from the configured chains,
    /// and print the solvency statement a round would attest, without proving (a dry run).
    CheckReserves {
        /// Round configuration (TOML) with `[solvency]`, `[[chains]]` and `[[reserves]]`.
        #[arg(long)]
        config: PathBuf,
        /// The auditor's challenge (hex) the ownership signatures name.
        #[arg(long, default_value = "")]
        challenge: String,
        /// Bad rows listed before the rest are only counted.
        #[arg(long, default_value_t = DEFAULT_ERROR_LIMIT)]
        max_errors: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Read the balances from the configured database and prove them: writes an UNATTESTED
    /// bundle, inclusion proofs and the database record (database.json).
    Prove {
        /// Round configuration (TOML).
        #[arg(long)]
        config: PathBuf,
        #[command(flatten)]
        proving: ProvingArgs,
    },
    /// Prove a CSV ledger outside any enclave and write an UNATTESTED bundle and inclusion proofs.
    ProveOffline {
        /// CSV with the header `account_id,asset,amount` (amounts in base units).
        #[arg(long)]
        accounts: PathBuf,
        /// Comma-separated asset symbols, in leaf order. Rows with other assets are errors.
        /// Without it, the assets are the symbols found in the file, sorted.
        #[arg(long, value_delimiter = ',')]
        assets: Option<Vec<String>>,
        #[command(flatten)]
        proving: ProvingArgs,
    },
    /// Print the batch circuit's size.
    CircuitInfo {
        /// Accounts per batch.
        #[arg(long)]
        batch_size: usize,
        /// Assets per account.
        #[arg(long, default_value_t = 1)]
        assets: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Benchmark setup, proving and verification on a synthetic ledger.
    Bench {
        /// Accounts per batch.
        #[arg(long, required_unless_present = "keys")]
        batch_size: Option<usize>,
        /// Assets per account.
        #[arg(long, default_value_t = 1)]
        assets: usize,
        /// Load keys from this file instead of running setup (measures proving alone).
        #[arg(long, conflicts_with_all = ["batch_size", "save_keys"])]
        keys: Option<PathBuf>,
        /// Save the keys made by setup to this file.
        #[arg(long)]
        save_keys: Option<PathBuf>,
        /// Batches to prove.
        #[arg(long, default_value_t = 2)]
        batches: usize,
        /// Statements in the batched-verification measurement.
        #[arg(long, default_value_t = 1000)]
        verify_statements: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write a synthetic CSV ledger (for demos and tests).
    SampleLedger {
        /// Number of accounts.
        #[arg(long)]
        accounts: usize,
        /// Comma-separated asset symbols.
        #[arg(long, value_delimiter = ',', default_value = "BTC,ETH,USDT")]
        assets: Vec<String>,
        /// Output CSV path.
        #[arg(long)]
        out: PathBuf,
    },
}

/// The NSM backend.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum NsmChoice {
    /// `/dev/nsm`.
    Hardware,
    /// The software emulator.
    Emulated,
}

/// Where and how to prove.
#[derive(clap::Args)]
struct ProvingArgs {
    /// Output directory (must not exist, or be empty): bundle.cbor and inclusion/.
    #[arg(long)]
    out: PathBuf,
    /// Accounts per batch proof; default: the smallest circuit that holds every account,
    /// up to the largest that fits a 2^19 domain (or the size the --keys file was made for).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Proving-keys file: used if it exists (so rounds share one verifying key), otherwise
    /// created by a fresh setup. Without it every run makes new keys.
    #[arg(long)]
    keys: Option<PathBuf>,
    /// Bad rows listed before the rest are only counted.
    #[arg(long, default_value_t = DEFAULT_ERROR_LIMIT)]
    max_errors: usize,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// An unusable configuration or invocation (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Usage(String);

/// Distinguishes refused input (exit 1) from operational failures (exit 3).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refused(String);

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<Refused>().is_some() => {
            eprintln!("refused: {e}");
            ExitCode::from(1)
        }
        Err(e) if e.downcast_ref::<Usage>().is_some() => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(3)
        }
    }
}

fn progress(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {elapsed_precise} (eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(what.to_owned());
    bar
}

fn infer_assets(path: &PathBuf) -> anyhow::Result<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let mut assets = std::collections::BTreeSet::new();
    for record in reader.records().flatten() {
        if let Some(a) = record.get(1).filter(|a| !a.is_empty()) {
            assets.insert(a.to_owned());
        }
    }
    if assets.is_empty() {
        return Err(Refused("the input has no rows with an asset".into()).into());
    }
    Ok(assets.into_iter().collect())
}

fn load_keys(path: &std::path::Path) -> anyhow::Result<enclave::keys::ProvingKeys> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    enclave::keys::ProvingKeys::read_from(std::io::BufReader::new(file))
        .with_context(|| format!("reading {}", path.display()))
}

fn auto_batch_size(accounts: usize, assets: usize) -> anyhow::Result<usize> {
    let mut best = None;
    for log2 in 10..=AUTO_MAX_LOG2_DOMAIN {
        if let Some(b) = largest_batch_for_domain(assets, log2) {
            best = Some(b);
            if b >= accounts {
                break;
            }
        }
    }
    best.context("no batch size fits the largest automatic domain")
}

/// Proves a validated ledger and writes the round (with the database record, if read from one).
fn prove_ledger(
    ledger: enclave::ledger::Ledger,
    proving: &ProvingArgs,
    database: Option<&enclave::db::DatabaseRecord>,
) -> anyhow::Result<()> {
    let out = &proving.out;
    let json = proving.json;
    let k = ledger.assets.len();
    let accounts_n = ledger.accounts.len();
    let keys = match &proving.keys {
        Some(path) if path.exists() => {
            let keys = load_keys(path)?;
            if keys.shape.assets != k || proving.batch_size.is_some_and(|b| b != keys.shape.batch_size) {
                return Err(Refused(format!(
                    "{} holds keys for batch size {} with {} assets; this run needs {} assets{}",
                    path.display(),
                    keys.shape.batch_size,
                    keys.shape.assets,
                    k,
                    proving.batch_size.map(|b| format!(" and batch size {b}")).unwrap_or_default()
                ))
                .into());
            }
            keys
        }
        _ => {
            let batch_size = match proving.batch_size {
                Some(b) => b,
                None => auto_batch_size(accounts_n, k)?,
            };
            tracing::info!(accounts = accounts_n, assets = k, batch_size, "running Groth16 setup");
            let shape = BatchShape { batch_size, assets: k };
            enclave::keys::check_shape(&shape).map_err(|e| Refused(e.to_string()))?;
            let keys = setup(shape, &mut OsRng)?;
            if let Some(path) = &proving.keys {
                enclave::output::write_keys(path, &keys)?;
                tracing::info!(path = %path.display(), "proving keys saved");
            }
            keys
        }
    };
    let batch_size = keys.shape.batch_size;
    let batches = accounts_n.div_ceil(batch_size);
    let bar = progress(batches as u64, "proving batches");
    let mut round_id = [0u8; 32];
    OsRng.fill_bytes(&mut round_id);
    let round =
        enclave::round::prove_round(&keys, ledger, round_id, &mut OsRng, &mut |done, _| bar.set_position(done as u64))?;
    bar.finish_and_clear();
    let database_json = database.map(serde_json::to_vec_pretty).transpose()?;
    let extra: Vec<(&str, &[u8])> = database_json.iter().map(|j| ("database.json", j.as_slice())).collect();
    enclave::output::write_round(out, &round, &extra)?;
    let b = &round.bundle;
    let vk_sha256 = hex::encode(attestation::liabilities::verifying_key_sha256(&b.verifying_key));
    if json {
        let summary = serde_json::json!({
            "out": out,
            "attestation": b.attestation,
            "round_id": hex::encode(b.round_id),
            "assets": b.assets,
            "totals": b.totals.iter().copied().map(attestation::bundle::total_text).collect::<Vec<_>>(),
            "leaf_count": b.leaf_count,
            "batch_size": batch_size,
            "batches": b.batches.len(),
            "root": attestation::commitment::element_to_hex(&b.root),
            "verifying_key_sha256": vk_sha256,
            "database": database,
        });
        println!("{summary:#}");
    } else {
        println!("UNATTESTED liabilities bundle written to {}", out.join("bundle.cbor").display());
        println!(
            "round {}: {} accounts in {} batches of {}",
            hex::encode(b.round_id),
            b.leaf_count,
            b.batches.len(),
            batch_size
        );
        for (a, t) in b.assets.iter().zip(&b.totals) {
            println!("  total {a}: {}", attestation::bundle::total_text(*t));
        }
        println!("inclusion proofs: {}", out.join("inclusion").display());
        if database.is_some() {
            println!("database record: {}", out.join("database.json").display());
        }
        println!("verifying key SHA-256 (pin it with --expect-vk-sha256): {vk_sha256}");
    }
    Ok(())
}

fn load_config(path: &std::path::Path) -> anyhow::Result<enclave::db::RoundConfig> {
    enclave::db::RoundConfig::load(path).map_err(|e| Usage(format!("{}: {e}", path.display())).into())
}

/// Reads the configured database directly over TCP, with a progress spinner.
fn read_database(config: &enclave::db::RoundConfig, max_errors: usize) -> anyhow::Result<enclave::db::DatabaseRead> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let spinner = ProgressBar::new_spinner();
    spinner.set_message("reading rows");
    // An RDS instance's identity is read with the operator's own AWS credentials.
    let aws = enclave::aws::credentials_from_env();
    let result = runtime.block_on(enclave::db::attested_read(
        config,
        &enclave::net::Route::Direct,
        max_errors,
        aws.as_ref(),
        &mut |rows| spinner.set_message(format!("{rows} rows read")),
    ));
    spinner.finish_and_clear();
    result.map_err(|e| match e {
        enclave::db::DbError::Rows(rows) => Refused(rows.to_string()).into(),
        enclave::db::DbError::Guard(_) => Refused(e.to_string()).into(),
        enclave::db::DbError::Config(c) => Usage(c.to_string()).into(),
        other => anyhow::Error::new(other),
    })
}

fn print_record(r: &enclave::db::DatabaseRecord) {
    let id = &r.identity;
    let role = if id.in_recovery { "standby" } else { "primary" };
    println!(
        "database: system identifier {}, timeline {}, {role} at LSN {}",
        id.system_identifier, id.timeline, id.lsn
    );
    println!("snapshot: {} at {}", id.snapshot, id.server_time);
    println!("server: PostgreSQL {}, certificate SHA-256 {}", id.server_version, id.server_cert_sha256);
    println!("read as {} from {}: {}", id.role, id.database, r.query);
    println!("rows: {} (rows SHA-256 {})", r.rows, r.rows_sha256);
}

/// What `serve` relaxes for development.
struct Relaxed {
    channel_binding_prefer: bool,
    development_aws_endpoint: bool,
}

fn serve(
    listen: channel::Address,
    proxy: channel::Address,
    nsm: NsmChoice,
    emulated_root: Option<PathBuf>,
    password: enclave::service::PasswordSource,
    relaxed: Relaxed,
    max_errors: usize,
) -> anyhow::Result<()> {
    let backend = match (nsm, emulated_root) {
        (NsmChoice::Hardware, None) => enclave::nsm::NsmBackend::Hardware,
        (NsmChoice::Hardware, Some(_)) => return Err(Usage("--emulated-root needs --nsm emulated".into()).into()),
        #[cfg(feature = "emulated-nsm")]
        (NsmChoice::Emulated, root) => enclave::nsm::NsmBackend::Emulated(root),
        #[cfg(not(feature = "emulated-nsm"))]
        (NsmChoice::Emulated, _) => {
            return Err(Usage("this build has no emulated NSM (feature emulated-nsm)".into()).into())
        }
    };
    let module = enclave::nsm::open(backend).context("opening the NSM")?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async {
        let service = enclave::service::Enclave::new(
            module,
            enclave::service::ServiceConfig {
                listen: listen.clone(),
                proxy,
                max_errors,
                password,
                allow_channel_binding_prefer: relaxed.channel_binding_prefer,
                allow_development_aws_endpoint: relaxed.development_aws_endpoint,
            },
        )?;
        let listener = channel::Listener::bind(&listen).await.with_context(|| format!("listening on {listen}"))?;
        tracing::info!(%listen, "serving the parent");
        service.serve(listener).await.context("serving")?;
        Ok(())
    })
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve {
            listen,
            proxy,
            nsm,
            emulated_root,
            password_env,
            password_file,
            password_from_parent,
            allow_channel_binding_prefer,
            allow_development_aws_endpoint,
            max_errors,
        } => {
            let password = match (password_env, password_file, password_from_parent) {
                (Some(name), None, false) => enclave::service::PasswordSource::Env(name),
                (None, Some(path), false) => enclave::service::PasswordSource::File(path),
                (None, None, true) => enclave::service::PasswordSource::Parent,
                _ => {
                    return Err(
                        Usage("give one of --password-env, --password-file and --password-from-parent".into()).into()
                    )
                }
            };
            let relaxed = Relaxed {
                channel_binding_prefer: allow_channel_binding_prefer,
                development_aws_endpoint: allow_development_aws_endpoint,
            };
            serve(listen, proxy, nsm, emulated_root, password, relaxed, max_errors)
        }
        Command::ProveOffline { accounts, assets, proving } => {
            enclave::output::check_free(&proving.out).map_err(|e| Refused(e.to_string()))?;
            let assets = match assets {
                Some(a) => a,
                None => infer_assets(&accounts)?,
            };
            let file = std::fs::File::open(&accounts).with_context(|| format!("opening {}", accounts.display()))?;
            let ledger = match read_ledger(std::io::BufReader::new(file), assets, proving.max_errors) {
                Ok(l) => l,
                Err(e @ (CsvError::Ledger(_) | CsvError::Header(_))) => return Err(Refused(e.to_string()).into()),
                Err(e) => return Err(e.into()),
            };
            prove_ledger(ledger, &proving, None)
        }
        Command::CheckDb { config, max_errors, json } => {
            let config = load_config(&config)?;
            let read = read_database(&config, max_errors)?;
            let totals = read.ledger.totals();
            if json {
                let summary = serde_json::json!({
                    "database": read.record,
                    "accounts": read.ledger.accounts.len(),
                    "assets": read.ledger.assets,
                    "totals": totals.iter().map(u128::to_string).collect::<Vec<_>>(),
                });
                println!("{summary:#}");
            } else {
                print_record(&read.record);
                println!("accounts: {}", read.ledger.accounts.len());
                for ((asset, total), spec) in read.ledger.assets.iter().zip(&totals).zip(&config.assets) {
                    println!("  total {asset}: {total} base units ({} decimals)", spec.decimals);
                }
            }
            Ok(())
        }
        Command::CheckReserves { config, challenge, max_errors, json } => {
            let challenge = hex::decode(&challenge).map_err(|_| Usage("--challenge must be hex".into()))?;
            let config = load_config(&config)?;
            let reserves = config.reserves_config();
            if !reserves.is_enabled() {
                return Err(Usage("the configuration has no [solvency], [[chains]] or [[reserves]]".into()).into());
            }
            let signatures = match reserves.solvency.as_ref().and_then(|s| s.ownership_signatures.as_ref()) {
                Some(path) => {
                    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                    enclave::reserves::read::parse_signatures(&text).map_err(|e| Refused(e.to_string()))?
                }
                None => Vec::new(),
            };
            let read = read_database(&config, max_errors)?;
            let liabilities = enclave::reserves::read::liabilities(&config, &read.ledger);
            let snapshot_ms =
                enclave::reserves::read::snapshot_ms(&read.record.identity.server_time).map_err(Refused)?;
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let result = runtime.block_on(enclave::reserves::read(
                &reserves,
                &liabilities,
                &challenge,
                snapshot_ms,
                signatures,
                &enclave::net::Route::Direct,
            ));
            let read = result.map_err(|e| Refused(format!("reserves: {e}")))?;
            if json {
                let report = serde_json::json!({
                    "solvency": attestation::reserves::report::assets(&read.solvency),
                    "reserves": attestation::reserves::report::json(&read.solvency),
                    "evidence_bytes": read.evidence_bytes.len(),
                });
                println!("{report:#}");
            } else {
                for line in attestation::reserves::report::lines(&read.solvency) {
                    println!("{line}");
                }
                println!("evidence:    {} bytes", read.evidence_bytes.len());
            }
            Ok(())
        }
        Command::Prove { config, proving } => {
            enclave::output::check_free(&proving.out).map_err(|e| Refused(e.to_string()))?;
            let config = load_config(&config)?;
            let read = read_database(&config, proving.max_errors)?;
            if !proving.json {
                print_record(&read.record);
            }
            prove_ledger(read.ledger, &proving, Some(&read.record))
        }
        Command::CircuitInfo { batch_size, assets, json } => {
            let shape = BatchShape { batch_size, assets };
            enclave::keys::check_shape(&shape).map_err(|e| Refused(e.to_string()))?;
            let size = circuit_size(&shape);
            let log2 = size.domain_size().trailing_zeros();
            let fill = (size.constraints + size.inputs + 1) as f64 / size.domain_size() as f64;
            let best = largest_batch_for_domain(assets, log2);
            let info = serde_json::json!({
                "batch_size": batch_size,
                "assets": assets,
                "constraints": size.constraints,
                "constraints_per_account": size.constraints as f64 / batch_size as f64,
                "public_inputs": size.inputs,
                "witness_variables": size.witnesses,
                "domain_size": size.domain_size(),
                "domain_fill": fill,
                "largest_batch_size_for_this_domain": best,
            });
            if json {
                println!("{info:#}");
            } else {
                println!(
                    "batch size {batch_size}, {assets} asset(s): {} constraints ({:.1} per account)",
                    size.constraints,
                    size.constraints as f64 / batch_size as f64
                );
                println!(
                    "QAP domain 2^{log2} ({:.1}% full); the largest batch for this domain is {}",
                    fill * 100.0,
                    best.unwrap_or(0)
                );
            }
            Ok(())
        }
        Command::Bench { batch_size, assets, keys, save_keys, batches, verify_statements, json } => {
            let source = match (keys, batch_size) {
                (Some(path), _) => {
                    let started = std::time::Instant::now();
                    let keys = load_keys(&path)?;
                    enclave::bench::KeySource::Loaded(Box::new(keys), started.elapsed().as_secs_f64())
                }
                (None, Some(batch_size)) => {
                    let shape = BatchShape { batch_size, assets };
                    enclave::keys::check_shape(&shape).map_err(|e| Refused(e.to_string()))?;
                    enclave::bench::KeySource::Setup(shape)
                }
                (None, None) => return Err(Refused("--batch-size or --keys is required".into()).into()),
            };
            let bar = progress(batches as u64, "proving batches");
            let (report, keys) =
                enclave::bench::run(source, batches, verify_statements, &mut OsRng, &mut |done, _| {
                    bar.set_position(done as u64)
                })?;
            bar.finish_and_clear();
            if let Some(path) = save_keys {
                enclave::output::write_keys(&path, &keys)?;
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{report:#?}");
            }
            Ok(())
        }
        Command::SampleLedger { accounts, assets, out } => {
            let ledger = enclave::bench::synthetic_ledger(accounts, &assets, &mut OsRng);
            let mut w = csv::Writer::from_path(&out).with_context(|| format!("creating {}", out.display()))?;
            w.write_record(enclave::csv_input::HEADER)?;
            for a in &ledger.accounts {
                for (asset, amount) in assets.iter().zip(&a.balances) {
                    // Sparse like a real ledger: most accounts hold only some assets.
                    if *amount % 3 != 0 {
                        w.write_record([a.id.as_str(), asset, &amount.to_string()])?;
                    }
                }
            }
            w.flush()?;
            println!("{} accounts x {} assets written to {}", accounts, assets.len(), out.display());
            Ok(())
        }
    }
}
