//! The `solvency-verify` binary on the checked-in bundle: exit codes and JSON.

use std::process::{Command, Output};

const BUNDLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/offline-b4-k2-bundle.cbor");
const ALICE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/offline-b4-k2-inclusion-alice.json");

fn verify(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_solvency-verify")).args(args).output().expect("run")
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).expect("JSON on stdout")
}

#[test]
fn liabilities_verifies_and_reports_totals() {
    let o = verify(&["liabilities", BUNDLE, "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let v = json(&o);
    assert_eq!(v["ok"], true);
    // A proofs-only check never claims an attestation, and says what it left out.
    assert!(v.get("attested").is_none());
    assert_eq!(v["verification"], "proofs-only");
    assert!(v["warnings"][0].as_str().unwrap().contains("UNATTESTED"), "{v}");
    assert_eq!(v["leaf_count"], 10);
    assert_eq!(v["totals"][0], serde_json::json!({"asset": "BTC", "total": "18446744073859651662"}));
    assert_eq!(v["totals"][1], serde_json::json!({"asset": "ETH", "total": "20446744073833008412"}));

    let text = verify(&["liabilities", BUNDLE]);
    assert_eq!(text.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(stdout.contains("UNATTESTED"));
    assert!(stdout.contains("18446744073859651662"));
}

#[test]
fn a_pinned_verifying_key_must_match() {
    let vk = json(&verify(&["liabilities", BUNDLE, "--json"]))["verifying_key_sha256"].as_str().unwrap().to_owned();
    assert_eq!(verify(&["liabilities", BUNDLE, "--expect-vk-sha256", &vk]).status.code(), Some(0));
    let other = "00".repeat(32);
    let o = verify(&["liabilities", BUNDLE, "--expect-vk-sha256", &other, "--json"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(json(&o)["step"], "verify");
    assert_eq!(verify(&["liabilities", BUNDLE, "--expect-vk-sha256", "xyz"]).status.code(), Some(2));
}

#[test]
fn tampered_bundle_fails_naming_the_step() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(BUNDLE).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let path = dir.path().join("b.cbor");
    std::fs::write(&path, &bytes).unwrap();
    let o = verify(&["liabilities", path.to_str().unwrap(), "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let v = json(&o);
    assert_eq!(v["ok"], false);
    assert!(v["step"] == "decode" || v["step"] == "verify", "{v}");

    bytes.truncate(10);
    std::fs::write(&path, &bytes).unwrap();
    let o = verify(&["liabilities", path.to_str().unwrap(), "--json"]);
    assert_eq!((o.status.code(), json(&o)["step"].as_str()), (Some(1), Some("decode")));

    let o = verify(&["liabilities", dir.path().join("missing").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3));
}

#[test]
fn inclusion_verifies_alice_and_refuses_a_changed_balance() {
    // An unattested bundle must be named as such; without a policy or --unattested it is a usage error.
    assert_eq!(verify(&["inclusion", "--bundle", BUNDLE, "--proof", ALICE]).status.code(), Some(2));
    let o = verify(&["inclusion", "--bundle", BUNDLE, "--proof", ALICE, "--unattested", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let v = json(&o);
    assert_eq!(v["account_id"], "alice");
    assert_eq!(v["balances"][1], serde_json::json!({"asset": "ETH", "amount": "2000000000000000000"}));

    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(ALICE).unwrap().replace("\"150000000\"", "\"150000001\"");
    let path = dir.path().join("alice.json");
    std::fs::write(&path, text).unwrap();
    let o = verify(&["inclusion", "--bundle", BUNDLE, "--proof", path.to_str().unwrap(), "--unattested", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(json(&o)["step"], "inclusion");
    assert!(json(&o)["error"].as_str().unwrap().contains("do not hash to the verified root"));
}

const NITRO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/nitro");

fn attestation(file: &str, extra: &[&str]) -> Output {
    let doc = format!("{NITRO}/{file}");
    let root = format!("{NITRO}/AWS_NitroEnclaves_Root-G1.pem");
    let mut args = vec!["attestation", doc.as_str(), "--root", root.as_str(), "--json"];
    args.extend_from_slice(extra);
    verify(&args)
}

#[test]
fn attestation_passes_at_its_time_and_names_the_failing_step_otherwise() {
    let o = attestation("qos-2022-07-06-prod.cose", &["--at-ms", "1657117102484"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let v = json(&o);
    assert_eq!((v["ok"].as_bool(), v["root_is_aws"].as_bool()), (Some(true), Some(true)));
    let pcr0 = v["pcrs"]["0"].as_str().unwrap().to_owned();

    let now = attestation("qos-2022-07-06-prod.cose", &[]);
    assert_eq!((now.status.code(), json(&now)["step"].as_str()), (Some(1), Some("chain")));

    let pinned = format!("0={pcr0}");
    let ok = attestation("qos-2022-07-06-prod.cose", &["--at-ms", "1657117102484", "--expect-pcr", &pinned]);
    assert_eq!(ok.status.code(), Some(0));
    let wrong = format!("0={}", "00".repeat(48));
    let o = attestation("qos-2022-07-06-prod.cose", &["--at-ms", "1657117102484", "--expect-pcr", &wrong]);
    assert_eq!((o.status.code(), json(&o)["step"].as_str()), (Some(1), Some("policy")));

    let debug = attestation("nitriding-2024-09-09-debug.cose", &["--at-ms", "1725911352400"]);
    assert_eq!((debug.status.code(), json(&debug)["step"].as_str()), (Some(1), Some("policy")));
    let allowed = attestation("nitriding-2024-09-09-debug.cose", &["--at-ms", "1725911352400", "--allow-debug"]);
    assert_eq!(allowed.status.code(), Some(0));

    let bad = attestation(
        "negative/nitriding-2024-07-23-debug-BAD-SIGNATURE.cose",
        &["--at-ms", "1721770180771", "--allow-debug"],
    );
    assert_eq!((bad.status.code(), json(&bad)["step"].as_str()), (Some(1), Some("signature")));

    assert_eq!(attestation("qos-2022-07-06-prod.cose", &["--expect-pcr", "99=00"]).status.code(), Some(2));
}

#[test]
fn a_root_other_than_aws_is_trusted_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let pem = rcgen::CertificateParams::new(vec![]).unwrap().self_signed(&key).unwrap().pem();
    let root = dir.path().join("dev-root.pem");
    std::fs::write(&root, pem).unwrap();
    let doc = format!("{NITRO}/qos-2022-07-06-prod.cose");
    let o = verify(&["attestation", &doc, "--root", root.to_str().unwrap(), "--at-ms", "1657117102484", "--json"]);
    assert_eq!((o.status.code(), json(&o)["step"].as_str()), (Some(1), Some("root")));
    // Trusting it explicitly still does not make an AWS document chain to it.
    let o = verify(&[
        "attestation",
        &doc,
        "--root",
        root.to_str().unwrap(),
        "--development-root",
        "--at-ms",
        "1657117102484",
        "--json",
    ]);
    assert_eq!((o.status.code(), json(&o)["step"].as_str()), (Some(1), Some("chain")));
}

const V1_ROUND: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/v1-round");

#[test]
fn an_attested_round_bundle_needs_a_policy_for_inclusion_and_warnings_reach_the_json() {
    let bundle = format!("{V1_ROUND}/bundle.cbor");
    let proof = format!("{V1_ROUND}/inclusion-acct-000000001.json");
    // The proofs-only path is for unattested bundles: a round bundle is refused there.
    let o = verify(&["inclusion", "--bundle", &bundle, "--proof", &proof, "--unattested", "--json"]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(json(&o)["error"].as_str().unwrap().contains("--policy"));

    let dir = tempfile::tempdir().unwrap();
    let policy = std::fs::read_to_string(format!("{V1_ROUND}/policy.toml"))
        .unwrap()
        .replace("min_round = 1\n", "")
        .replace("name = \"postgres\"\n", "name = \"postgres\"\nrole = \"solvency_reader\"\n");
    let policy_path = dir.path().join("policy.toml");
    std::fs::write(&policy_path, policy).unwrap();
    let root = format!("{V1_ROUND}/dev-root.pem");
    let at = "1796292000000"; // within a day of the round
    let args = ["inclusion", "--bundle", &bundle, "--proof", &proof, "--policy", policy_path.to_str().unwrap()];
    let o = verify(&[&args[..], &["--allow-emulated", &root, "--at-ms", at, "--json"]].concat());
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let v = json(&o);
    let warnings: Vec<&str> = v["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
    assert!(warnings.iter().any(|w| w.contains("DEVELOPMENT root")), "{v}");
    assert!(warnings.iter().any(|w| w.contains("version-1 round")), "{v}");
    assert_eq!(v["bundle"]["aws_attested"], false);
    let digest = v["manifest_digest"].as_str().unwrap().to_owned();

    // The text report shows amounts with the asset's decimals and keeps the warning.
    let o = verify(&[&args[..], &["--allow-emulated", &root, "--at-ms", at]].concat());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("WARNING: verified against a DEVELOPMENT root"), "{text}");
    assert!(text.contains("0.00007919 BTC"), "{text}");

    // The round the auditor accepted is required by digest; another digest is refused.
    let o = verify(&[&args[..], &["--allow-emulated", &root, "--at-ms", at, "--expect-manifest", &digest]].concat());
    assert_eq!(o.status.code(), Some(0));
    let other = "ab".repeat(48);
    let o = verify(
        &[&args[..], &["--allow-emulated", &root, "--at-ms", at, "--expect-manifest", &other, "--json"]].concat(),
    );
    assert_eq!((o.status.code(), json(&o)["step"].as_str()), (Some(1), Some("round")));

    // A published log that lists the round passes; one that does not is refused.
    let mut log = attestation::log::VerifiedLog::default();
    let digest_bytes: [u8; 48] = hex::decode(&digest).unwrap().try_into().unwrap();
    let entry = attestation::log::next_entry(&log, 1, &digest_bytes, &[0; 32], 0);
    log.push(entry.clone()).unwrap();
    let log_path = dir.path().join("log.jsonl");
    std::fs::write(&log_path, format!("{}\n", entry.line())).unwrap();
    let o = verify(
        &[
            &args[..],
            &["--allow-emulated", &root, "--at-ms", at, "--published-log", log_path.to_str().unwrap(), "--json"],
        ]
        .concat(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(json(&o)["bundle"]["published_log"]["head"], log.head());
    let other_entry = attestation::log::next_entry(&attestation::log::VerifiedLog::default(), 1, &[7; 48], &[0; 32], 0);
    std::fs::write(&log_path, format!("{}\n", other_entry.line())).unwrap();
    let o = verify(
        &[
            &args[..],
            &["--allow-emulated", &root, "--at-ms", at, "--published-log", log_path.to_str().unwrap(), "--json"],
        ]
        .concat(),
    );
    assert_eq!((o.status.code(), json(&o)["step"].as_str()), (Some(1), Some("published-log")));
}
