//! `solvency-demo`: one round end to end on an embedded default. Starts a private PostgreSQL
//! cluster (TLS, SCRAM), loads synthetic balances, has `solvency-enclave` read them over pinned
//! TLS and prove them, verifies the bundle and one inclusion proof with `solvency-verify`, and
//! stops the cluster. The enclave and verifier binaries are taken from beside this one.
//!
//! Usage: `solvency-demo [--accounts N] [--out DIR]`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use testkit::fixture::{self, FixtureAsset};
use testkit::PrivateCluster;

const ASSETS: [(&str, u32); 3] = [("BTC", 8), ("ETH", 18), ("USDT", 6)];

fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("locating this program")?;
    let path = me.with_file_name(name);
    if !path.is_file() {
        bail!("{} not found beside {}; build the workspace first", name, me.display());
    }
    Ok(path)
}

fn run(program: &Path, args: &[&str]) -> anyhow::Result<()> {
    println!("\n$ {} {}", program.file_name().and_then(|n| n.to_str()).unwrap_or("?"), args.join(" "));
    let status = Command::new(program).args(args).env("RUST_LOG", "warn").status().context("starting")?;
    if !status.success() {
        bail!("{} failed ({status})", program.display());
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let mut accounts: u64 = 200;
    let mut out: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--accounts" => accounts = args.next().context("--accounts needs a number")?.parse()?,
            "--out" => out = Some(args.next().context("--out needs a directory")?.into()),
            "-h" | "--help" => {
                println!("usage: solvency-demo [--accounts N] [--out DIR]");
                return Ok(());
            }
            other => bail!("unknown argument {other}"),
        }
    }
    let enclave = sibling("solvency-enclave")?;
    let verify = sibling("solvency-verify")?;
    let out = match out {
        Some(dir) => dir,
        None => tempfile::Builder::new().prefix("solvency-demo-").tempdir()?.keep(),
    };
    std::fs::create_dir_all(&out)?;

    println!("starting a private PostgreSQL cluster (TLS only, SCRAM)...");
    let cluster = PrivateCluster::start().context("starting the private cluster")?;
    let assets: Vec<_> = ASSETS.iter().map(|(s, d)| FixtureAsset::new(s, *d)).collect();
    cluster.load_fixture("balances", accounts, &assets)?;
    println!(
        "cluster on 127.0.0.1:{}, server certificate SHA-256 {}; {accounts} accounts x {} assets loaded",
        cluster.port(),
        cluster.identity().cert_sha256(),
        ASSETS.len()
    );
    let config = out.join("round.toml");
    std::fs::write(&config, cluster.round_config(&fixture::query("balances"), &ASSETS)?)?;
    let config = config.to_str().context("non-UTF-8 path")?;
    let round = out.join("round");
    let round_s = round.to_str().context("non-UTF-8 path")?;

    run(&enclave, &["check-db", "--config", config])?;
    run(&enclave, &["prove", "--config", config, "--out", round_s, "--batch-size", "64"])?;
    let bundle = round.join("bundle.cbor");
    let bundle = bundle.to_str().context("non-UTF-8 path")?;
    run(&verify, &["liabilities", bundle])?;
    let proof = round.join("inclusion").join(attestation::inclusion::file_name(&fixture::account_id(1)));
    run(&verify, &["inclusion", "--bundle", bundle, "--proof", proof.to_str().context("non-UTF-8 path")?])?;
    drop(cluster);
    println!("\ndemo output in {} (the cluster has been stopped and removed)", out.display());
    Ok(())
}
