//! `solvency-parent demo`: the whole appliance on one machine. A private TLS-only PostgreSQL with
//! synthetic balances; `solvency-enclave serve` as a child process with the emulated NSM, reached
//! over a Unix socket, reading the database through this process's allowlisting proxy; an
//! attested setup round, a proving round with an auditor's challenge, the bundle stored, a
//! verifier policy written as an auditor would (PCRs recomputed from the enclave binary, the
//! database pinned from the cluster itself), and `solvency-verify` run on the result. Where anvil
//! is installed, a private chain holds each asset's reserves (a Chainlink feed, an owned address's
//! ether, an owned address's ERC-20), the enclave reads them through three TLS endpoints, and the
//! round states solvency per asset.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use attestation::policy::{
    AssetPin, AttestationRules, BundlePolicy, DatabasePins, RelationPin, ReservePin, RoundRules, SolvencyRules,
};
use parent::config::ParentConfig;
use parent::metrics::Metrics;
use parent::rounds::{start_proxy, Driver};
use parent::store::Store;
use rand::RngCore;
use sha2::Digest;
use testkit::fixture::{self, FixtureAsset};
use testkit::reserves::{Placed, ReserveAsset, ReservesFixture};
use testkit::PrivateCluster;

use crate::Bar;

const ASSETS: [(&str, u32); 3] = [("BTC", 8), ("ETH", 18), ("USDT", 6)];
/// Longest Unix socket path (sun_path is 108 bytes with its terminator).
const MAX_SOCKET_PATH: usize = 100;

fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("locating this program")?;
    let path = me.with_file_name(name);
    if !path.is_file() {
        bail!("{name} not found beside {}; build the workspace first (scripts/demo.sh does)", me.display());
    }
    Ok(path)
}

/// PCR0–2 of the emulated NSM for an enclave binary, recomputed from the binary as an auditor
/// would (on AWS, `solvency-parent measure` on the EIF plays this role).
fn emulated_pcrs(binary: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let program = std::fs::read(binary).with_context(|| format!("reading {}", binary.display()))?;
    let pcrs = attestation::nitro::development::emulated_pcrs_of_program(&program);
    Ok(pcrs.iter().enumerate().map(|(i, pcr)| (i.to_string(), hex::encode(pcr))).collect())
}

fn check_free(out: &Path) -> anyhow::Result<()> {
    if let Ok(mut entries) = std::fs::read_dir(out) {
        if entries.next().is_some() {
            bail!("{} exists and is not empty; choose a new directory", out.display());
        }
    }
    Ok(())
}

async fn wait_for_socket(path: &Path, child: &mut tokio::process::Child) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("the enclave exited before listening ({status})");
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("the enclave did not listen on {} within a minute", path.display());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn run_verifier(verify: &Path, args: &[&str]) -> anyhow::Result<()> {
    println!("\n$ solvency-verify {}", args.join(" "));
    let status = std::process::Command::new(verify).args(args).status().context("starting solvency-verify")?;
    if !status.success() {
        bail!("solvency-verify refused the demo's output ({status})");
    }
    Ok(())
}

fn text(path: &Path) -> anyhow::Result<&str> {
    path.to_str().with_context(|| format!("{} is not UTF-8", path.display()))
}

/// Runs the demo into `out`.
/// Starts the reserves chain, each asset's reserves 10% above its liabilities (10% below for
/// `insolvent`); none, with a word why, where anvil is not installed. USDT is in private mode:
/// its total is hidden and proven at most its reserves, or published if they fall short.
async fn start_reserves(accounts: u64, insolvent: Option<&str>) -> anyhow::Result<Option<ReservesFixture>> {
    if let Some(symbol) = insolvent {
        if !ASSETS.iter().any(|(s, _)| *s == symbol) {
            bail!("--insolvent {symbol}: the demo's assets are BTC, ETH and USDT");
        }
    }
    if !testkit::chain::Anvil::available() {
        println!(
            "anvil is not installed ({}): this demo proves liabilities only, without reserves",
            testkit::chain::ANVIL_INSTALL
        );
        if insolvent.is_some() {
            bail!("--insolvent needs anvil");
        }
        return Ok(None);
    }
    let totals = fixture::expected_totals(accounts, ASSETS.len());
    let assets: Vec<ReserveAsset> = ASSETS
        .iter()
        .zip(&totals)
        .map(|((symbol, decimals), total)| ReserveAsset {
            symbol: (*symbol).into(),
            decimals: *decimals,
            reserves: if insolvent == Some(*symbol) { total / 10 * 9 } else { total / 10 * 11 },
            private: *symbol == PRIVATE_ASSET,
        })
        .collect();
    println!("starting a private Ethereum node (anvil) with each asset's reserves, behind 3 TLS endpoints (2 must agree)...");
    let fixture = ReservesFixture::start(&assets, 3, 2).await.context("starting the reserves chain")?;
    for (asset, place) in &fixture.placed {
        let source = match place {
            Placed::Feed(feed) => format!("a Chainlink feed (proxy {})", feed.proxy),
            Placed::Native(owner) => format!("the ether of owned address {owner}"),
            Placed::Token { token, holder } => format!("token {token} held by owned address {holder}"),
        };
        println!("  {}: {} base units in {source}", asset.symbol, asset.reserves);
    }
    println!(
        "  {PRIVATE_ASSET} is in private mode: its liabilities total is hidden, and the round proves it at most the reserves (published if short)"
    );
    Ok(Some(fixture))
}

/// The demo's asset in private mode (spec §13).
const PRIVATE_ASSET: &str = "USDT";

/// What the auditor pins about the reserves: the chain, the feed and token addresses, the quorum.
fn reserve_pins(fixture: &ReservesFixture) -> Vec<ReservePin> {
    fixture
        .placed
        .iter()
        .map(|(asset, place)| ReservePin {
            symbol: asset.symbol.clone(),
            chain_ids: Some(vec![testkit::reserves::CHAIN_ID]),
            feeds: match place {
                Placed::Feed(feed) => Some(vec![feed.proxy.to_string()]),
                _ => Some(Vec::new()),
            },
            tokens: match place {
                Placed::Token { token, .. } => Some(vec![token.to_string()]),
                _ => Some(Vec::new()),
            },
            min_agreeing: Some(2),
            endpoint_hosts: None,
            max_feed_age_secs: Some(90_000),
            max_block_gap_secs: Some(3_600),
        })
        .collect()
}

pub async fn run(out: &Path, accounts: u64, batch_size: u64, insolvent: Option<&str>) -> anyhow::Result<()> {
    let enclave_bin = sibling("solvency-enclave")?;
    let verify_bin = sibling("solvency-verify")?;
    check_free(out)?;
    std::fs::create_dir_all(out.join("keys")).with_context(|| format!("creating {}", out.display()))?;
    let out = out.canonicalize()?;

    // Unix socket paths are short; fall back to a temporary directory for a deep output path.
    let mut _socket_tmp = None;
    let mut sockets = out.join("run");
    if sockets.join("enclave.sock").as_os_str().len() > MAX_SOCKET_PATH {
        let dir = tempfile::Builder::new().prefix("solvency-").tempdir()?;
        sockets = dir.path().to_owned();
        _socket_tmp = Some(dir);
    }
    std::fs::create_dir_all(&sockets)?;

    println!("starting a private PostgreSQL cluster (TLS only, SCRAM, certificates made now)...");
    let cluster = PrivateCluster::start().context("starting the private cluster (is PostgreSQL installed?)")?;
    let assets: Vec<_> = ASSETS.iter().map(|(s, d)| FixtureAsset::new(s, *d)).collect();
    cluster.load_fixture("balances", accounts, &assets)?;
    println!(
        "cluster on localhost:{}: {accounts} accounts x {} assets; server certificate SHA-256 {}",
        cluster.port(),
        ASSETS.len(),
        cluster.identity().cert_sha256()
    );
    let reserves = start_reserves(accounts, insolvent).await?;
    let mut round_toml = cluster.round_config(&fixture::query("balances"), &ASSETS)?;
    let mut allow = vec![format!("\"localhost:{}\"", cluster.port())];
    if let Some(reserves) = &reserves {
        round_toml.push_str(&reserves.round_config("ownership.json"));
        allow.extend(reserves.destinations().iter().map(|d| format!("\"{d}\"")));
    }
    std::fs::write(out.join("round.toml"), round_toml)?;
    let enclave_sock = sockets.join("enclave.sock");
    let proxy_sock = sockets.join("proxy.sock");
    let parent_toml = format!(
        "[enclave]\naddress = \"unix://{}\"\ndatabase_password_file = \"db-password\"\n\n[proxy]\nlisten = \"unix://{}\"\nallow = [{}]\n\n\
         [round]\nconfig = \"round.toml\"\nkeys = \"keys/keys.bin\"\nsetup = \"keys/setup.cbor\"\nbatch_size = {batch_size}\n\n\
         [store]\ndir = \"store\"\n",
        enclave_sock.display(),
        proxy_sock.display(),
        allow.join(", ")
    );
    std::fs::write(out.join("parent.toml"), &parent_toml)?;
    // As in production, the enclave gets the database password from the parent with each round.
    write_secret(&out.join("db-password"), cluster.reader_password())?;
    let config = ParentConfig::load(&out.join("parent.toml"))?;

    println!("starting the enclave program with the EMULATED NSM (development root in {}/dev-root)", out.display());
    let mut enclave = tokio::process::Command::new(&enclave_bin)
        .args(["serve", "--nsm", "emulated", "--listen"])
        .arg(format!("unix://{}", enclave_sock.display()))
        .arg("--proxy")
        .arg(format!("unix://{}", proxy_sock.display()))
        .arg("--emulated-root")
        .arg(out.join("dev-root"))
        .arg("--password-from-parent")
        .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .kill_on_drop(true)
        .spawn()
        .context("starting solvency-enclave")?;
    wait_for_socket(&enclave_sock, &mut enclave).await?;

    let store = Arc::new(Store::open(&config.store)?);
    let metrics = Arc::new(Metrics::new());
    let driver = Driver::new(config.clone(), Arc::clone(&store), Arc::clone(&metrics));
    let proxy = start_proxy(&config, metrics).await.context("starting the proxy")?;

    println!(
        "setup round: the enclave makes Groth16 keys for {batch_size} accounts x {} assets and attests them",
        ASSETS.len()
    );
    let mut bar = Bar::new();
    let started = Instant::now();
    let setup = driver.setup(&mut |s, d, t| bar.update(s, d, t)).await;
    bar.finish();
    setup.context("the setup round")?;
    println!("setup attested in {:.1} s; keys in {}", started.elapsed().as_secs_f64(), config.keys.display());

    // The auditor notes the database's WAL position before challenging: the round must have
    // read at least this recent a snapshot.
    let lsn_before = cluster.psql("SELECT pg_current_wal_lsn()")?;
    let mut nonce = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    println!("proving round with an auditor's challenge {}", hex::encode(nonce));
    if let Some(reserves) = &reserves {
        // Each owner signs that it controls its address for this exchange and this challenge.
        std::fs::write(out.join("ownership.json"), reserves.ownership_json(&nonce).await?)?;
        println!("ownership signatures for the challenge written to {}", out.join("ownership.json").display());
    }
    let deadline_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64 + 3_600_000;
    let mut bar = Bar::new();
    let started = Instant::now();
    let stored = driver.round(nonce.to_vec(), deadline_ms, &mut |s, d, t| bar.update(s, d, t)).await;
    bar.finish();
    let stored = stored.context("the proving round")?;
    println!(
        "round {} proven and attested in {:.1} s; manifest digest {}",
        stored.round,
        started.elapsed().as_secs_f64(),
        hex::encode(stored.manifest_digest)
    );
    proxy.abort();
    enclave.kill().await.ok();

    // The auditor's pins come from the database itself, not from the bundle.
    let system_identifier = cluster.psql("SELECT system_identifier FROM pg_control_system()")?;
    let timeline = cluster.psql("SELECT timeline_id FROM pg_control_checkpoint()")?;
    let database_oid = cluster.psql("SELECT oid FROM pg_database WHERE datname = 'postgres'")?;
    let table = cluster.psql(
        "SELECT c.oid || ' ' || pg_get_userbyid(c.relowner) FROM pg_class c WHERE c.oid = 'public.balances'::regclass",
    )?;
    let (table_oid, table_owner) = table.split_once(' ').context("the balances table's OID and owner")?;
    let round_toml = std::fs::read(out.join("round.toml"))?;
    let policy = BundlePolicy {
        attestation: AttestationRules { allow_debug: false, max_age_secs: Some(86_400), max_skew_secs: 300 },
        pcrs: emulated_pcrs(&enclave_bin)?.into_iter().collect(),
        database: DatabasePins {
            system_identifier,
            server_cert_sha256: cluster.identity().cert_sha256(),
            query: fixture::query("balances"),
            name: "postgres".into(),
            role: testkit::cluster::READER_ROLE.into(),
            database_oid: Some(database_oid.parse().context("the database's OID")?),
            timeline: Some(timeline.parse().context("the cluster's timeline")?),
            allow_standby: false,
            min_lsn: Some(lsn_before),
            relations: Some(vec![RelationPin {
                schema: "public".into(),
                name: "balances".into(),
                oid: Some(table_oid.parse().context("the table's OID")?),
                owner: Some(table_owner.to_owned()),
            }]),
            rds: None,
        },
        round: RoundRules {
            nonce: Some(hex::encode(nonce)),
            deadline_ms: Some(deadline_ms),
            verifying_key_sha256: None,
            config_sha256: Some(hex::encode(sha2::Sha256::digest(&round_toml))),
            manifest_digest: None,
        },
        assets: Some(ASSETS.iter().map(|(s, d)| AssetPin { symbol: (*s).into(), decimals: *d }).collect()),
        solvency: SolvencyRules::default(),
        reserves: reserves.as_ref().map(reserve_pins),
    };
    let policy_path = out.join("policy.toml");
    std::fs::write(&policy_path, policy.to_toml())?;
    drop(cluster);
    drop(reserves);

    let bundle = store.round_path(stored.round).join("bundle.cbor");
    let dev_root = out.join("dev-root").join("dev-root.pem");
    let verify_args = ["bundle", text(&bundle)?, "--policy", text(&policy_path)?, "--allow-emulated", text(&dev_root)?];
    run_verifier(&verify_bin, &verify_args)?;
    let proof = bundle.with_file_name("inclusion").join(attestation::inclusion::file_name(&fixture::account_id(1)));
    run_verifier(
        &verify_bin,
        &[
            "inclusion",
            "--bundle",
            text(&bundle)?,
            "--proof",
            text(&proof)?,
            "--policy",
            text(&policy_path)?,
            "--allow-emulated",
            text(&dev_root)?,
        ],
    )?;

    if let Some(symbol) = insolvent {
        // The same bundle, for a verifier that requires solvency: refused at step `solvency`.
        let mut strict = BundlePolicy::from_toml(&std::fs::read_to_string(&policy_path)?)?;
        strict.solvency.require_solvent = true;
        let strict_path = out.join("policy-require-solvent.toml");
        std::fs::write(&strict_path, strict.to_toml())?;
        let args = ["bundle", text(&bundle)?, "--policy", text(&strict_path)?, "--allow-emulated", text(&dev_root)?];
        println!("\n$ solvency-verify {}", args.join(" "));
        let status = std::process::Command::new(&verify_bin).args(args).status().context("starting solvency-verify")?;
        if status.code() != Some(1) {
            bail!("a policy requiring solvency accepted a round INSOLVENT in {symbol} ({status})");
        }
        println!("(exit 1, as expected: the round is published and verifiable, and {symbol} is INSOLVENT)");
    }

    println!("\nwhere everything is (the private cluster has been stopped and removed):");
    println!("  bundle:           {}", bundle.display());
    println!("  inclusion proofs: {}", bundle.with_file_name("inclusion").display());
    println!("  policy:           {}", policy_path.display());
    println!("  development root: {} (emulated NSM: NOT an AWS attestation)", dev_root.display());
    println!("  parent config:    {}", out.join("parent.toml").display());
    println!("verify it again with:");
    println!(
        "{}",
        std::iter::once(verify_bin.display().to_string())
            .chain(verify_args.iter().map(|a| a.to_string()))
            .collect::<Vec<_>>()
            .join(" ")
    );
    Ok(())
}

/// Writes a secret readable by its owner only.
fn write_secret(path: &Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(secret.as_bytes())
}
