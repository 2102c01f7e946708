//! `solvency-enclave check-db` and `prove --config` as an operator runs them against a private
//! cluster: what they print, their exit codes, and that a failed read writes nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use attestation::bundle::Bundle;
use testkit::fixture::{self, FixtureAsset};
use testkit::peers::Forwarder;
use testkit::PrivateCluster;

const ASSETS: [(&str, u32); 2] = [("BTC", 8), ("USDT", 6)];

fn enclave(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_solvency-enclave")).args(args).env("RUST_LOG", "warn").output().expect("run")
}

fn cluster_with(accounts: u64) -> PrivateCluster {
    let cluster = PrivateCluster::start().unwrap();
    let assets: Vec<_> = ASSETS.iter().map(|(s, d)| FixtureAsset::new(s, *d)).collect();
    cluster.load_fixture("balances", accounts, &assets).unwrap();
    cluster
}

fn write_config(cluster: &PrivateCluster, name: &str, text: &str) -> PathBuf {
    let path = cluster.scratch_dir().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn str(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn check_db_prints_the_record_and_totals() {
    let cluster = cluster_with(40);
    let config =
        write_config(&cluster, "round.toml", &cluster.round_config(&fixture::query("balances"), &ASSETS).unwrap());
    let o = enclave(&["check-db", "--config", str(&config), "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let totals: Vec<String> = fixture::expected_totals(40, 2).iter().map(u128::to_string).collect();
    assert_eq!(json["totals"], serde_json::json!(totals));
    assert_eq!(json["accounts"], 40);
    assert_eq!(json["database"]["rows"], 80);
    assert_eq!(json["database"]["server_cert_sha256"], cluster.identity().cert_sha256());
    assert_eq!(json["database"]["role"], "solvency_reader");

    let o = enclave(&["check-db", "--config", str(&config)]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("rows: 80") && text.contains(&format!("total BTC: {}", totals[0])), "{text}");
    assert!(
        !text.contains(cluster.reader_password())
            && !String::from_utf8_lossy(&o.stderr).contains(cluster.reader_password())
    );
}

#[test]
fn check_db_exit_codes_name_the_failure() {
    let cluster = cluster_with(5);
    cluster
        .psql("CREATE TABLE bad (id text, asset text, amount numeric); INSERT INTO bad VALUES ('neg', 'BTC', -1); GRANT SELECT ON bad TO solvency_reader;")
        .unwrap();
    let bad = write_config(
        &cluster,
        "bad.toml",
        &cluster.round_config("SELECT id, asset, amount FROM public.bad", &ASSETS).unwrap(),
    );
    let o = enclave(&["check-db", "--config", str(&bad)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains(r#"row 1 (account "neg"): amount: negative amount "-1""#));

    let good = cluster.round_config(&fixture::query("balances"), &ASSETS).unwrap();
    let typo = write_config(&cluster, "typo.toml", &good.replace("dbname", "database"));
    let o = enclave(&["check-db", "--config", str(&typo)]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));

    let pin = format!("server_cert_sha256 = \"{}\"", "00".repeat(32));
    let wrong_pin = write_config(
        &cluster,
        "pin.toml",
        &good.replace(&format!("server_ca = \"{}\"", cluster.ca_path().display()), &pin),
    );
    let o = enclave(&["check-db", "--config", str(&wrong_pin)]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not the pinned one"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn prove_reads_the_database_and_writes_a_bundle_that_verifies() {
    let cluster = cluster_with(12);
    let config =
        write_config(&cluster, "round.toml", &cluster.round_config(&fixture::query("balances"), &ASSETS).unwrap());
    let out = cluster.scratch_dir().join("round-1");
    let o = enclave(&["prove", "--config", str(&config), "--out", str(&out), "--batch-size", "8", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let bundle = Bundle::decode(&std::fs::read(out.join("bundle.cbor")).unwrap()).unwrap();
    let verified = attestation::liabilities::verify(bundle, None).unwrap();
    assert_eq!(verified.bundle().totals, fixture::expected_totals(12, 2).into_iter().map(Some).collect::<Vec<_>>());
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("database.json")).unwrap()).unwrap();
    assert_eq!(record["rows"], 24);
    assert_eq!(std::fs::read_dir(out.join("inclusion")).unwrap().count(), 12);
}

#[test]
fn a_read_cut_mid_stream_proves_nothing_and_writes_nothing() {
    let cluster = cluster_with(20_000);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let target = format!("127.0.0.1:{}", cluster.port()).parse().unwrap();
    let forwarder = runtime.block_on(Forwarder::start(target, Some(300 * 1024))).unwrap();
    let mut text = cluster.round_config(&fixture::query("balances"), &ASSETS).unwrap();
    text = text.replace(&format!("port = {}", cluster.port()), &format!("port = {}", forwarder.addr().port()));
    let config = write_config(&cluster, "round.toml", &text);
    let out = cluster.scratch_dir().join("round-cut");
    let o = enclave(&["prove", "--config", str(&config), "--out", str(&out)]);
    assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("nothing was proven"));
    assert!(forwarder.has_cut());
    assert!(!out.exists());
    let leftovers: Vec<_> = std::fs::read_dir(cluster.scratch_dir())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty());
}
