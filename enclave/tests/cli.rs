//! The `solvency-enclave` binary as an operator runs it: exit codes, error reports, output.

use std::path::Path;
use std::process::{Command, Output};

use attestation::bundle::Bundle;
use attestation::inclusion::{file_name, InclusionProof};

fn enclave(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_solvency-enclave")).args(args).env("RUST_LOG", "warn").output().expect("run")
}

/// Runs `prove-offline --json` and returns its summary, requiring success.
fn prove_offline_json(input: &str, out: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["prove-offline", "--accounts", input, "--out", out.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let o = enclave(&args);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn write(dir: &Path, name: &str, contents: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn bad_rows_are_all_reported_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let csv = "account_id,asset,amount\n\
               alice,BTC,5\n\
               bob,BTC,-3\n\
               carol,BTC,18446744073709551616\n\
               dave,BTC,1.5\n\
               ,BTC,1\n\
               erin,DOGE,1\n\
               alice,BTC,6\n\
               frank,BTC,\n";
    let input = write(dir.path(), "ledger.csv", csv);
    let out = dir.path().join("out");
    let o = enclave(&["prove-offline", "--accounts", &input, "--assets", "BTC,ETH", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    let stderr = String::from_utf8_lossy(&o.stderr);
    for expected in [
        "7 problem(s) in the input rows; nothing was proven",
        "row 3 (account \"bob\"): amount: negative amount \"-3\"",
        "row 4 (account \"carol\"): amount: amount \"18446744073709551616\" is 2^64 or more base units",
        "row 5 (account \"dave\"): amount: amount \"1.5\" is not an integer number of base units",
        "row 6: account_id: missing or empty",
        "row 7 (account \"erin\"): asset: unknown asset \"DOGE\"",
        "row 8 (account \"alice\"): asset: duplicate (account, asset); first seen on row 2",
        "row 9 (account \"frank\"): amount: missing or empty",
    ] {
        assert!(stderr.contains(expected), "missing {expected:?} in:\n{stderr}");
    }
    assert!(!out.exists());
}

#[test]
fn unsupported_batch_sizes_are_refused_not_panicked_on() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "ledger.csv", "account_id,asset,amount\nalice,BTC,5\n");
    let out = dir.path().join("o");
    let o = enclave(&["prove-offline", "--accounts", &input, "--out", out.to_str().unwrap(), "--batch-size", "0"]);
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("batch size 0"));
    assert_eq!(enclave(&["bench", "--batch-size", "0"]).status.code(), Some(1));
}

#[test]
fn empty_ledger_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "ledger.csv", "account_id,asset,amount\n");
    let o = enclave(&[
        "prove-offline",
        "--accounts",
        &input,
        "--assets",
        "BTC",
        "--out",
        dir.path().join("o").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no rows"));
}

#[test]
fn a_good_ledger_is_proven_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(
        dir.path(),
        "ledger.csv",
        "account_id,asset,amount\nalice,BTC,5\nalice,ETH,2\nbob/../x,ETH,7\nbob/../x,BTC,0\ncarol ü,BTC,18446744073709551615\n",
    );
    let out = dir.path().join("round");
    let summary = prove_offline_json(&input, &out, &["--batch-size", "2"]);
    assert_eq!(summary["attestation"], "unattested");
    assert_eq!(summary["assets"], serde_json::json!(["BTC", "ETH"]));
    assert_eq!(summary["totals"], serde_json::json!(["18446744073709551620", "9"]));

    let bundle = Bundle::decode(&std::fs::read(out.join("bundle.cbor")).unwrap()).unwrap();
    let verified = attestation::liabilities::verify(bundle, None).unwrap();
    for id in ["alice", "bob/../x", "carol ü"] {
        let path = out.join("inclusion").join(file_name(id));
        let proof = InclusionProof::from_json(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(attestation::inclusion::verify(&verified, None, &proof).unwrap().account_id, id);
    }
    assert_eq!(std::fs::read_dir(out.join("inclusion")).unwrap().count(), 3);
    // No staging directory is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty());

    // A second run never overwrites the first, and says so before doing any work.
    let before = std::fs::read(out.join("bundle.cbor")).unwrap();
    let o = enclave(&["prove-offline", "--accounts", &input, "--out", out.to_str().unwrap(), "--batch-size", "2"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("refusing to overwrite"));
    assert_eq!(std::fs::read(out.join("bundle.cbor")).unwrap(), before);
}

#[test]
fn circuit_info_reports_sizes() {
    let o = enclave(&["circuit-info", "--batch-size", "64", "--assets", "2", "--json"]);
    assert_eq!(o.status.code(), Some(0));
    let info: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let constraints = info["constraints"].as_u64().unwrap();
    assert_eq!(info["constraints_per_account"].as_f64().unwrap(), constraints as f64 / 64.0);
    assert!(info["domain_size"].as_u64().unwrap().is_power_of_two());
    assert!(info["largest_batch_size_for_this_domain"].as_u64().unwrap() >= 64);
    assert_eq!(enclave(&["circuit-info", "--batch-size", "0"]).status.code(), Some(1));
    assert_eq!(enclave(&["circuit-info", "--batch-size", "8", "--assets", "65"]).status.code(), Some(1));
}

#[test]
fn rounds_proven_with_a_keys_file_share_one_verifying_key() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "ledger.csv", "account_id,asset,amount\nalice,BTC,5\nbob,BTC,7\n");
    let keys = dir.path().join("keys.bin");
    let mut pins = Vec::new();
    for round in ["r1", "r2"] {
        let summary = prove_offline_json(
            &input,
            &dir.path().join(round),
            &["--keys", keys.to_str().unwrap(), "--batch-size", "2"],
        );
        pins.push(summary["verifying_key_sha256"].as_str().unwrap().to_owned());
    }
    assert_eq!(pins[0], pins[1]);
    // Keys for one asset cannot prove a two-asset ledger.
    let two = write(dir.path(), "two.csv", "account_id,asset,amount\nalice,BTC,5\nbob,ETH,7\n");
    let o = enclave(&[
        "prove-offline",
        "--accounts",
        &two,
        "--out",
        dir.path().join("r3").to_str().unwrap(),
        "--keys",
        keys.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("holds keys for batch size 2 with 1 assets"));
}
