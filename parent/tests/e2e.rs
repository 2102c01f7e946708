//! The appliance end to end, with real processes: a private TLS PostgreSQL, `solvency-enclave
//! serve` with the emulated NSM, and `solvency-parent` (its proxy, store and HTTP API), and the
//! bundles they make checked by the verifier.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use attestation::attested::{self, RoundBundleWire};
use attestation::nitro::{pem_to_der, TrustAnchor};
use attestation::policy::{AttestationRules, BundlePolicy, DatabasePins, RelationPin, ReservePin, RoundRules};
use testkit::chain::Lie;
use testkit::fixture::{self, FixtureAsset};
use testkit::reserves::{ReserveAsset, ReservesFixture};
use testkit::PrivateCluster;

const ASSETS: [(&str, u32); 2] = [("BTC", 8), ("ETH", 18)];
const BATCH_SIZE: u64 = 8;

/// A workspace binary: beside this test's `solvency-parent`, built on demand when only this
/// package's targets were built.
fn binary(name: &str, package: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_BIN_EXE_solvency-parent")).parent().unwrap().to_owned();
    let path = dir.join(name);
    if !path.exists() {
        let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        build.args(["build", "-q", "-p", package, "--bin", name]);
        if dir.ends_with("release") {
            build.arg("--release");
        }
        assert!(build.status().unwrap().success(), "building {name}");
    }
    path
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// One appliance: cluster, enclave process, parent configuration, store.
struct Appliance {
    dir: tempfile::TempDir,
    cluster: PrivateCluster,
    enclave: Option<Child>,
}

impl Appliance {
    fn start(accounts: u64) -> Self {
        let cluster = PrivateCluster::start().unwrap();
        let assets: Vec<_> = ASSETS.iter().map(|(s, d)| FixtureAsset::new(s, *d)).collect();
        cluster.load_fixture("balances", accounts, &assets).unwrap();
        let dir = tempfile::Builder::new().prefix("e2e-").tempdir_in("/tmp").unwrap();
        std::fs::write(
            dir.path().join("round.toml"),
            cluster.round_config(&fixture::query("balances"), &ASSETS).unwrap(),
        )
        .unwrap();
        let mut appliance = Self { dir, cluster, enclave: None };
        appliance.write_config("parent.toml", &[format!("localhost:{}", appliance.cluster.port())], "round.toml");
        appliance.start_enclave();
        appliance
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write_config(&self, name: &str, allow: &[String], round_config: &str) {
        let allow = allow.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(", ");
        let text = format!(
            "[enclave]\naddress = \"unix://{}\"\ndatabase_password_env = \"E2E_DB_PASSWORD\"\n[proxy]\nlisten = \"unix://{}\"\nallow = [{allow}]\n\
             [round]\nconfig = \"{round_config}\"\nkeys = \"keys.bin\"\nsetup = \"setup.cbor\"\nbatch_size = {BATCH_SIZE}\n\
             [store]\ndir = \"store\"\n",
            self.path("enclave.sock").display(),
            self.path("proxy.sock").display(),
        );
        std::fs::write(self.path(name), text).unwrap();
    }

    fn start_enclave(&mut self) {
        // As in production: the password comes with each round, from the parent.
        self.start_enclave_with(&["--password-from-parent"]);
    }

    fn start_enclave_with(&mut self, password_source: &[&str]) {
        let child = Command::new(binary("solvency-enclave", "solvency-enclave"))
            .args(["serve", "--nsm", "emulated", "--listen"])
            .arg(format!("unix://{}", self.path("enclave.sock").display()))
            .arg("--proxy")
            .arg(format!("unix://{}", self.path("proxy.sock").display()))
            .arg("--emulated-root")
            .arg(self.path("dev-root"))
            .args(password_source)
            .env("E2E_DB_PASSWORD", self.cluster.reader_password())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.enclave = Some(child);
        let started = Instant::now();
        while std::os::unix::net::UnixStream::connect(self.path("enclave.sock")).is_err() {
            assert!(started.elapsed() < Duration::from_secs(30), "the enclave did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill_enclave(&mut self) {
        if let Some(mut child) = self.enclave.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    fn enclave_is_running(&mut self) -> bool {
        self.enclave.as_mut().is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    fn parent_command(&self, args: &[&str], config: &str) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_solvency-parent"));
        command
            .args(args)
            .arg("--config")
            .arg(self.path(config))
            .env("RUST_LOG", "info")
            .env("E2E_DB_PASSWORD", self.cluster.reader_password());
        command
    }

    fn parent(&self, args: &[&str]) -> Output {
        self.parent_command(args, "parent.toml").output().unwrap()
    }

    fn setup(&self) {
        let out = self.parent(&["setup"]);
        assert!(out.status.success(), "setup failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn round(&self, args: &[&str]) -> Output {
        let mut all = vec!["round"];
        all.extend_from_slice(args);
        self.parent(&all)
    }

    fn round_ok(&self, args: &[&str]) -> u64 {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.round(&all);
        assert!(out.status.success(), "round failed: {}", String::from_utf8_lossy(&out.stderr));
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        summary["round"].as_u64().unwrap()
    }

    fn latest(&self) -> Option<u64> {
        std::fs::read_to_string(self.path("store/latest")).ok().map(|s| s.trim().parse().unwrap())
    }

    fn round_dir(&self, round: u64) -> PathBuf {
        self.path("store/rounds").join(format!("{round:020}"))
    }

    fn bundle(&self, round: u64) -> Vec<u8> {
        std::fs::read(self.round_dir(round).join("bundle.cbor")).unwrap()
    }

    fn anchor(&self) -> TrustAnchor {
        let pem = std::fs::read(self.path("dev-root/dev-root.pem")).unwrap();
        TrustAnchor::development(pem_to_der(&pem).unwrap()).unwrap()
    }

    /// The policy an auditor writes: the image recomputed from the enclave binary, the database
    /// pinned from the cluster itself.
    fn policy(&self, nonce: Option<&[u8]>) -> BundlePolicy {
        let program = std::fs::read(binary("solvency-enclave", "solvency-enclave")).unwrap();
        let pcrs = attestation::nitro::development::emulated_pcrs_of_program(&program);
        let table_oid = self.cluster.psql("SELECT 'public.balances'::regclass::oid").unwrap();
        BundlePolicy {
            attestation: AttestationRules { allow_debug: false, max_age_secs: Some(3600), max_skew_secs: 60 },
            pcrs: pcrs.iter().enumerate().map(|(i, p)| (i.to_string(), hex::encode(p))).collect(),
            database: DatabasePins {
                system_identifier: self.cluster.psql("SELECT system_identifier FROM pg_control_system()").unwrap(),
                server_cert_sha256: self.cluster.identity().cert_sha256(),
                query: fixture::query("balances"),
                name: "postgres".into(),
                role: testkit::cluster::READER_ROLE.into(),
                database_oid: Some(self.database_oid("postgres")),
                timeline: Some(1),
                allow_standby: false,
                min_lsn: Some("0/1".into()),
                relations: Some(vec![RelationPin {
                    schema: "public".into(),
                    name: "balances".into(),
                    oid: Some(table_oid.parse().unwrap()),
                    owner: Some("admin".into()),
                }]),
                rds: None,
            },
            round: RoundRules { nonce: nonce.map(hex::encode), ..RoundRules::default() },
            assets: None,
            solvency: Default::default(),
            reserves: None,
        }
    }

    fn database_oid(&self, name: &str) -> u32 {
        self.cluster.psql(&format!("SELECT oid FROM pg_database WHERE datname = '{name}'")).unwrap().parse().unwrap()
    }

    fn verify(&self, bytes: &[u8], policy: &BundlePolicy) -> Result<attested::VerifiedRound, attested::RoundError> {
        attested::verify(bytes, policy, &self.anchor(), now_ms())
    }
}

impl Drop for Appliance {
    fn drop(&mut self) {
        self.kill_enclave();
    }
}

/// The round configuration with its password source pointed at an unrelated enclave secret.
fn pointing_password_at_home(round_toml: &str) -> String {
    round_toml
        .lines()
        .map(|l| if l.starts_with("password_file") { "password_env = \"HOME\"".to_owned() } else { l.to_owned() })
        .collect::<Vec<_>>()
        .join("\n")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_full_round_verifies_and_any_changed_byte_is_refused_at_its_step() {
    let app = Appliance::start(30);
    app.setup();
    let nonce = [7u8; 32];
    let round = app.round_ok(&["--nonce", &hex::encode(nonce)]);
    assert_eq!((round, app.latest()), (1, Some(1)));
    let bytes = app.bundle(round);
    let policy = app.policy(Some(&nonce));
    let verified = app.verify(&bytes, &policy).unwrap();
    let m = verified.manifest();
    assert_eq!(m.round, 1);
    assert_eq!(m.rows, 60);
    assert_eq!(m.nonce, nonce);
    let totals: Vec<String> = m.assets.iter().map(|a| a.total.clone()).collect();
    let expected: Vec<String> = fixture::expected_totals(30, 2).iter().map(u128::to_string).collect();
    assert_eq!(totals, expected);
    assert!(!verified.document().root_is_aws());

    // The command-line verifier agrees, and names the step that fails.
    let policy_path = app.path("policy.toml");
    std::fs::write(&policy_path, policy.to_toml()).unwrap();
    let verify = |bundle: &Path| {
        Command::new(binary("solvency-verify", "solvency-attestation"))
            .arg("bundle")
            .arg(bundle)
            .arg("--policy")
            .arg(&policy_path)
            .arg("--allow-emulated")
            .arg(app.path("dev-root/dev-root.pem"))
            .arg("--json")
            .output()
            .unwrap()
    };
    let out = verify(&app.round_dir(round).join("bundle.cbor"));
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["round"], 1);
    assert_eq!(report["aws_attested"], false);
    assert_eq!(report["manifest_digest"], hex::encode(verified.manifest_digest()));
    assert_eq!(report["manifest_format"], attestation::manifest::MANIFEST_FORMAT_V2);
    // The development-root warning survives the JSON output; the relations read are named.
    assert!(report["warnings"][0].as_str().unwrap().contains("DEVELOPMENT root"), "{report}");
    assert_eq!(report["relations"][0]["name"], "balances");
    assert_eq!(report["relations"][0]["kind"], "table");
    // With the AWS root (no --allow-emulated) a development bundle is refused.
    let aws = Command::new(binary("solvency-verify", "solvency-attestation"))
        .arg("bundle")
        .arg(app.round_dir(round).join("bundle.cbor"))
        .arg("--policy")
        .arg(&policy_path)
        .output()
        .unwrap();
    assert_eq!(aws.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&aws.stderr).contains("FAILED at attestation"), "{}", stderr(&aws));

    // One byte changed inside each part of the bundle is refused at that part's step.
    let wire = RoundBundleWire::decode(&bytes).unwrap();
    assert!(wire.round_signature.is_none(), "version 2 bundles carry no per-round signature");
    let parts: [(&[u8], &[&str]); 5] = [
        (&wire.manifest, &["manifest", "manifest-binding"]),
        (&wire.attestation, &["attestation"]),
        (&wire.setup_manifest, &["setup"]),
        (&wire.setup_attestation, &["setup"]),
        (&wire.liabilities, &["consistency"]),
    ];
    for (part, steps) in parts {
        let start = bytes.windows(part.len()).position(|w| w == part).unwrap();
        for offset in [0, part.len() / 3, part.len() / 2, part.len() - 1] {
            let mut tampered = bytes.clone();
            tampered[start + offset] ^= 0x01;
            let err = app.verify(&tampered, &policy).unwrap_err();
            assert!(steps.contains(&err.step()), "byte {} of a part: refused at {} ({err})", offset, err.step());
        }
    }
    // And every byte of the envelope and a stride through the rest is refused at some step.
    for i in (0..bytes.len()).step_by(97).chain(0..64) {
        let mut tampered = bytes.clone();
        tampered[i] ^= 0x80;
        assert!(app.verify(&tampered, &policy).is_err(), "flipping byte {i} went unnoticed");
    }
    let tampered = app.path("tampered.cbor");
    let mut copy = bytes.clone();
    let last = copy.len() - 1;
    copy[last] ^= 1;
    std::fs::write(&tampered, copy).unwrap();
    let out = verify(&tampered);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["step"], "consistency");

    // Every user's inclusion proof is stored beside the bundle and checks against it.
    let proof = std::fs::read(
        app.round_dir(round).join("inclusion").join(attestation::inclusion::file_name(&fixture::account_id(7))),
    )
    .unwrap();
    let proof = attestation::inclusion::InclusionProof::from_json(&proof).unwrap();
    assert_eq!(proof.format, attestation::inclusion::FORMAT_V2);
    assert_eq!(proof.manifest_digest, Some(hex::encode(verified.manifest_digest())));
    let digest = verified.manifest_digest();
    let included = attestation::inclusion::verify(verified.liabilities(), Some(&digest), &proof).unwrap();
    assert_eq!(included.balances[0].1, fixture::base_units(7, 0));
    // A proof that names another round is refused, though its leaf is in this tree.
    let mut other = proof.clone();
    other.manifest_digest = Some(hex::encode([1u8; 48]));
    assert!(matches!(
        attestation::inclusion::verify(verified.liabilities(), Some(&digest), &other),
        Err(attestation::error::InclusionError::WrongManifest { .. })
    ));
    assert_eq!(std::fs::read_dir(app.round_dir(round).join("inclusion")).unwrap().count(), 30);
}

#[test]
fn replays_other_rounds_and_wrong_nonces_are_refused() {
    let app = Appliance::start(12);
    app.setup();
    let first = app.round_ok(&[]);
    let challenge = [9u8; 16];
    let second = app.round_ok(&["--nonce", &hex::encode(challenge)]);
    assert_eq!((first, second, app.latest()), (1, 2, Some(2)));
    let digest = |round: u64| RoundBundleWire::decode(&app.bundle(round)).unwrap().manifest_digest();

    // A verifier expecting round 2 (by its manifest digest) refuses round 1 replayed to it.
    let mut expecting = app.policy(None);
    expecting.round.manifest_digest = Some(hex::encode(digest(2)));
    let err = app.verify(&app.bundle(1), &expecting).unwrap_err();
    assert_eq!(err.step(), "round", "{err}");
    app.verify(&app.bundle(2), &expecting).unwrap();
    // A verifier that issued a challenge refuses a round without it, or with another.
    let err = app.verify(&app.bundle(1), &app.policy(Some(&challenge))).unwrap_err();
    assert_eq!(err.step(), "nonce", "{err}");
    let err = app.verify(&app.bundle(2), &app.policy(Some(&[1u8; 16]))).unwrap_err();
    assert_eq!(err.step(), "nonce", "{err}");
    app.verify(&app.bundle(2), &app.policy(Some(&challenge))).unwrap();
    // Too old for a policy's maximum age, as checked a day later: the AWS-signed time decides,
    // whatever number the parent put on the round.
    let mut policy = app.policy(None);
    policy.attestation.max_age_secs = Some(60);
    let err = attested::verify(&app.bundle(2), &policy, &app.anchor(), now_ms() + 86_400_000).unwrap_err();
    assert_eq!(err.step(), "freshness", "{err}");
    // Another database (another cluster's identity) is refused at the database pins.
    let mut policy = app.policy(None);
    policy.database.system_identifier = "1".into();
    assert_eq!(app.verify(&app.bundle(2), &policy).unwrap_err().step(), "database");
    let mut policy = app.policy(None);
    policy.pcrs.insert("0".into(), "00".repeat(48));
    assert_eq!(app.verify(&app.bundle(2), &policy).unwrap_err().step(), "attestation");
    // The parent chooses the query the enclave runs; the auditor's policy pins it.
    let mut policy = app.policy(None);
    policy.database.query = "SELECT account_id, asset, amount FROM public.balances WHERE account_id <> 'whale'".into();
    let err = app.verify(&app.bundle(2), &policy).unwrap_err();
    assert!(matches!(err, attested::RoundError::Database { field: "query", .. }), "{err}");
    // A snapshot older than the auditor's minimum WAL position is refused.
    let mut policy = app.policy(None);
    policy.database.min_lsn = Some("FFFF/0".into());
    let err = app.verify(&app.bundle(2), &policy).unwrap_err();
    assert!(matches!(err, attested::RoundError::Database { field: "lsn", .. }), "{err}");
    // The auditor's own deadline, not the one the parent forwarded, is what counts.
    let mut policy = app.policy(Some(&challenge));
    policy.round.deadline_ms = Some(1);
    assert_eq!(app.verify(&app.bundle(2), &policy).unwrap_err().step(), "freshness");
    // Pinned assets and configuration must be the round's.
    let mut policy = app.policy(None);
    policy.assets = Some(vec![attestation::policy::AssetPin { symbol: "BTC".into(), decimals: 9 }]);
    assert_eq!(app.verify(&app.bundle(2), &policy).unwrap_err().step(), "configuration");
    let mut policy = app.policy(None);
    policy.round.config_sha256 = Some("00".repeat(32));
    assert_eq!(app.verify(&app.bundle(2), &policy).unwrap_err().step(), "configuration");
    let mut policy = app.policy(None);
    policy.round.config_sha256 =
        Some(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(std::fs::read(app.path("round.toml")).unwrap())));
    policy.assets =
        Some(ASSETS.iter().map(|(s, d)| attestation::policy::AssetPin { symbol: (*s).into(), decimals: *d }).collect());
    app.verify(&app.bundle(2), &policy).unwrap();

    // A challenge whose deadline has passed is refused before anything is read.
    let out = app.round(&["--nonce", "aa", "--deadline-secs", "0"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(app.latest(), Some(2));
}

#[test]
fn a_round_label_attested_twice_after_a_restart_is_told_apart_by_its_digest() {
    let mut app = Appliance::start(10);
    app.setup();
    let round = app.round_ok(&[]);
    let first = app.bundle(round);
    // The enclave restarts, and a second parent store (a parent that lost its numbering, or
    // lies) asks for the same number again after the ledger changed: the enclave no longer
    // keeps numbers, which were never a defence.
    app.kill_enclave();
    app.start_enclave();
    app.cluster.psql("UPDATE balances SET amount = amount + 1 WHERE account_id = 'acct-000000001'").unwrap();
    let text = std::fs::read_to_string(app.path("parent.toml")).unwrap().replace("dir = \"store\"", "dir = \"store2\"");
    std::fs::write(app.path("parent2.toml"), text).unwrap();
    let out = app.parent_command(&["round", "--json"], "parent2.toml").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let second = std::fs::read(app.path("store2/rounds").join(format!("{round:020}")).join("bundle.cbor")).unwrap();
    let policy = app.policy(None);
    let (a, b) = (app.verify(&first, &policy).unwrap(), app.verify(&second, &policy).unwrap());
    assert_eq!(a.manifest().round, b.manifest().round, "the same label");
    assert_ne!(a.manifest_digest(), b.manifest_digest(), "two rounds");
    assert_ne!(a.manifest().assets, b.manifest().assets);
    // The verifier who accepted the first refuses the second, and the reverse.
    let mut expecting = policy.clone();
    expecting.round.manifest_digest = Some(hex::encode(a.manifest_digest()));
    assert_eq!(app.verify(&second, &expecting).unwrap_err().step(), "round");
    // The first store's published log lists the first and not the second.
    let log = attestation::log::parse(&std::fs::read(app.path("store/log.jsonl")).unwrap()).unwrap();
    assert!(log.find(&a.manifest_digest()).is_some());
    assert!(log.find(&b.manifest_digest()).is_none());
}

#[test]
fn a_copy_of_the_database_is_refused_by_name_and_a_renamed_copy_by_its_oid() {
    let app = Appliance::start(10);
    app.setup();
    // The administrator copies the ledger's database, removes an account from the copy, and
    // points the round configuration at the copy.
    app.cluster.psql_in("template1", "CREATE DATABASE copy TEMPLATE postgres").unwrap();
    app.cluster.psql_in("copy", "DELETE FROM balances WHERE account_id = 'acct-000000001'").unwrap();
    let round_toml = std::fs::read_to_string(app.path("round.toml")).unwrap();
    std::fs::write(app.path("round-copy.toml"), round_toml.replace("dbname = \"postgres\"", "dbname = \"copy\""))
        .unwrap();
    app.write_config("parent-copy.toml", &[format!("localhost:{}", app.cluster.port())], "round-copy.toml");
    let out = app.parent_command(&["round", "--json"], "parent-copy.toml").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let copied = app.bundle(app.latest().unwrap());
    let err = app.verify(&copied, &app.policy(None)).unwrap_err();
    assert!(
        matches!(&err, attested::RoundError::Database { field: "database", actual, .. } if actual == "copy"),
        "{err}"
    );

    // Renamed into the pinned name, the copy passes the name pin and fails the OID pin.
    let genuine_oid = app.database_oid("postgres");
    let policy = app.policy(None);
    app.cluster
        .psql_in("template1", "ALTER DATABASE postgres RENAME TO genuine; ALTER DATABASE copy RENAME TO postgres")
        .unwrap();
    let out = app.round(&["--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let renamed = app.bundle(app.latest().unwrap());
    let err = app.verify(&renamed, &policy).unwrap_err();
    assert!(
        matches!(&err, attested::RoundError::Database { field: "database_oid", expected, .. } if *expected == genuine_oid.to_string()),
        "{err}"
    );
    app.cluster
        .psql_in("template1", "ALTER DATABASE postgres RENAME TO copy; ALTER DATABASE genuine RENAME TO postgres")
        .unwrap();
}

#[test]
fn the_proxy_refuses_destinations_off_its_allowlist() {
    let mut app = Appliance::start(5);
    app.setup();
    app.write_config("elsewhere.toml", &["db.example:5432".to_owned()], "round.toml");
    let out = app.parent_command(&["round"], "elsewhere.toml").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("not on the allowlist"), "{err}");
    assert_eq!(app.latest(), None, "nothing was stored");
    // The next round, through the configured allowlist, works; the failed one's number stays
    // burnt, so no number is ever proven twice.
    assert_eq!(app.round_ok(&[]), 2);

    // A round configuration that relaxes channel binding is refused by the enclave, and one
    // naming another password source gets the enclave's own (the read still authenticates).
    let round_toml = std::fs::read_to_string(app.path("round.toml")).unwrap();
    let relaxed = round_toml.replace("[database]\n", "[database]\nchannel_binding = \"prefer\"\n");
    std::fs::write(app.path("relaxed.toml"), relaxed).unwrap();
    app.write_config("relaxed-parent.toml", &[format!("localhost:{}", app.cluster.port())], "relaxed.toml");
    let out = app.parent_command(&["round"], "relaxed-parent.toml").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("relaxes channel binding"), "{}", stderr(&out));
    let elsewhere = pointing_password_at_home(&round_toml);
    std::fs::write(app.path("other-secret.toml"), elsewhere).unwrap();
    app.write_config("other-secret-parent.toml", &[format!("localhost:{}", app.cluster.port())], "other-secret.toml");
    let out = app.parent_command(&["round", "--json"], "other-secret-parent.toml").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    // This enclave takes its password from the parent: a request without one is refused before
    // any key is sent or the database is reached.
    let parent_toml = std::fs::read_to_string(app.path("parent.toml")).unwrap();
    let without = parent_toml.replace("database_password_env = \"E2E_DB_PASSWORD\"\n", "");
    assert_ne!(without, parent_toml);
    std::fs::write(app.path("no-password-parent.toml"), without).unwrap();
    let out = app.parent_command(&["round"], "no-password-parent.toml").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("carries none"), "{}", stderr(&out));
    // A wrong password is the database's to refuse: the enclave authenticates with what it got.
    let out = app
        .parent_command(&["round"], "parent.toml")
        .env("E2E_DB_PASSWORD", "not the reader's password")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("password authentication failed"), "{}", stderr(&out));

    // An enclave that reads its own password refuses one from the parent, and proves without.
    app.kill_enclave();
    app.start_enclave_with(&["--password-env", "E2E_DB_PASSWORD"]);
    let out = app.parent_command(&["round"], "parent.toml").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("carries a database password"), "{}", stderr(&out));
    let out = app.parent_command(&["round"], "no-password-parent.toml").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn an_enclave_killed_mid_round_fails_the_round_cleanly_and_a_retry_succeeds() {
    let mut app = Appliance::start(300);
    app.setup();
    assert_eq!(app.round_ok(&[]), 1);
    let served = app.bundle(1);

    let mut parent = app.parent_command(&["round"], "parent.toml").stderr(Stdio::piped()).spawn().unwrap();
    let lines = BufReader::new(parent.stderr.take().unwrap());
    let mut log = String::new();
    for line in lines.lines() {
        let line = line.unwrap();
        log.push_str(&line);
        log.push('\n');
        if line.contains("Proving") && app.enclave.is_some() {
            app.kill_enclave();
        }
    }
    let status = parent.wait().unwrap();
    assert_eq!(status.code(), Some(1), "{log}");
    assert_eq!(app.latest(), Some(1), "the previous round stays published");
    assert_eq!(app.bundle(1), served);
    assert!(!app.round_dir(2).exists());

    // The restarted enclave signs under the same development root and has the same image, so
    // the attested keys are accepted again; the failed round's number stays burnt.
    app.start_enclave();
    assert_eq!(app.round_ok(&[]), 3);
    app.verify(&app.bundle(3), &app.policy(None)).unwrap();
}

#[test]
fn a_parent_crash_at_any_point_of_storing_leaves_the_store_consistent() {
    let app = Appliance::start(10);
    app.setup();
    let mut published = app.round_ok(&[]);
    assert_eq!(published, 1);
    for point in ["staged", "renamed", "latest-temp"] {
        let out =
            app.parent_command(&["round"], "parent.toml").env("SOLVENCY_PARENT_CRASH_AT", point).output().unwrap();
        assert!(!out.status.success(), "the parent was to crash at {point}");
        // The published round is still the previous one, whole, and verifiable.
        assert_eq!(app.latest(), Some(published), "after a crash at {point}");
        app.verify(&app.bundle(published), &app.policy(None)).unwrap();
        // The crashed round's number is burnt (it was reserved before the enclave heard it);
        // the retry gets a higher one, and nothing partial is visible.
        let round = app.round_ok(&[]);
        assert!(round > published + 1, "{point}: round {round} after {published}");
        assert_eq!(app.latest(), Some(round));
        app.verify(&app.bundle(round), &app.policy(None)).unwrap();
        published = round;
        assert!(std::fs::read_dir(app.path("store/tmp")).map_or(true, |mut d| d.next().is_none()));
    }
}

#[test]
fn a_database_connection_dropped_mid_read_produces_no_bundle() {
    let app = Appliance::start(5_000);
    app.setup();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let target = format!("127.0.0.1:{}", app.cluster.port()).parse().unwrap();
    let forwarder = rt.block_on(testkit::peers::Forwarder::start(target, Some(64 * 1024))).unwrap();
    let port = forwarder.addr().port();
    let round_toml = std::fs::read_to_string(app.path("round.toml")).unwrap();
    let cut = round_toml.replace(&format!("port = {}", app.cluster.port()), &format!("port = {port}"));
    std::fs::write(app.path("cut.toml"), cut).unwrap();
    app.write_config("cut-parent.toml", &[format!("localhost:{port}")], "cut.toml");
    let out = app.parent_command(&["round"], "cut-parent.toml").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(forwarder.has_cut());
    let err = stderr(&out);
    assert!(err.contains("database"), "{err}");
    assert_eq!(app.latest(), None);
    assert!(!app.path("store/rounds/00000000000000000001").exists());
}

#[test]
fn malformed_and_oversized_control_messages_are_refused_and_both_processes_keep_running() {
    let mut app = Appliance::start(5);
    app.setup();
    // At the enclave: garbage, a frame announcing 4 GiB, a frame of the wrong shape, keys
    // without a request.
    let socket = app.path("enclave.sock");
    let send = |bytes: &[u8]| {
        let mut s = std::os::unix::net::UnixStream::connect(&socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(bytes).unwrap();
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        answer
    };
    let frame = |payload: &[u8]| {
        let mut f = (payload.len() as u32).to_be_bytes().to_vec();
        f.extend_from_slice(payload);
        f
    };
    let mut keys_end = Vec::new();
    ciborium::into_writer(&(1u32, channel::protocol::ToEnclave::KeysEnd), &mut keys_end).unwrap();
    for bad in [
        frame(b"\xff\x00garbage"),
        vec![0xff, 0xff, 0xff, 0xff, 1, 2, 3],
        frame(&[0x82, 0x01, 0x63, b'a', b'b', b'c']),
        frame(&[0x82, 0x02, 0xf6]),
        frame(&keys_end),
    ] {
        let answer = send(&bad);
        let reply: channel::protocol::FromEnclave = channel::frame::decode(answer.get(4..).unwrap_or_default())
            .unwrap_or_else(|e| panic!("no Failed reply to {bad:?}: {e}"));
        assert!(
            matches!(reply, channel::protocol::FromEnclave::Failed { ref kind, .. } if kind == "refused"),
            "{reply:?}"
        );
        assert!(app.enclave_is_running());
    }
    // At the parent: an enclave that answers garbage fails the round, without a crash.
    let fake = app.path("fake.sock");
    let listener = std::os::unix::net::UnixListener::bind(&fake).unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.write_all(&[0, 0, 0, 3, 0xde, 0xad, 0xbe]).unwrap();
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
    });
    let text = std::fs::read_to_string(app.path("parent.toml")).unwrap();
    std::fs::write(
        app.path("fake-parent.toml"),
        text.replace(&app.path("enclave.sock").display().to_string(), &fake.display().to_string()),
    )
    .unwrap();
    let out = app.parent_command(&["round"], "fake-parent.toml").output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("malformed"), "{}", stderr(&out));
    server.join().unwrap();
    // The real enclave still proves (round 1 was burnt by the failed attempt).
    assert_eq!(app.round_ok(&[]), 2);
    assert!(app.enclave_is_running());
    app.kill_enclave();
}

/// One HTTP/1.1 request over a fresh connection: (status, headers, body).
fn http(port: u16, request: &str) -> (u16, String, Vec<u8>) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    s.read_to_end(&mut response).unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head, response[split + 4..].to_vec())
}

fn get(port: u16, path: &str, token: Option<&str>) -> (u16, String, Vec<u8>) {
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    http(port, &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n"))
}

#[test]
fn the_running_parent_serves_bundles_and_runs_an_auditors_challenge() {
    let app = Appliance::start(20);
    app.setup();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let text = std::fs::read_to_string(app.path("parent.toml")).unwrap();
    std::fs::write(
        app.path("serving.toml"),
        format!("{text}[http]\nlisten = \"127.0.0.1:{port}\"\nadmin_token_env = \"E2E_ADMIN_TOKEN\"\n"),
    )
    .unwrap();
    let token = "e2e-secret-token";
    let mut parent = app
        .parent_command(&["run"], "serving.toml")
        .env("E2E_ADMIN_TOKEN", token)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(30), "the parent did not start serving");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(get(port, "/v1/rounds/latest", None).0, 404);
    assert_eq!(get(port, "/healthz", None).0, 200);

    // Garbage on the proxy's socket does not stop the parent.
    let mut junk = std::os::unix::net::UnixStream::connect(app.path("proxy.sock")).unwrap();
    junk.write_all(&[0xff; 64]).unwrap();
    drop(junk);

    // Idle half-requests, as the attack in issue 13 sent 1,040 of them: the connections beyond the
    // cap get a clear 503 at once, not a hang, and the header deadline closes the idle ones.
    let mut idle = Vec::new();
    for _ in 0..600 {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").unwrap();
        idle.push(stream);
    }
    std::thread::sleep(Duration::from_millis(300));
    let (status, _, body) = get(port, "/healthz", None);
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    for stream in &mut idle {
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).expect("closed by the server within its header deadline");
    }
    drop(idle);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(get(port, "/healthz", None).0, 200);

    // An auditor posts a challenge; without the token it is refused.
    let challenge = [0x5a_u8; 24];
    let body = format!("{{\"nonce\": \"{}\", \"deadline_secs\": 600}}", hex::encode(challenge));
    let post = |auth: &str| {
        http(
            port,
            &format!(
                "POST /v1/rounds HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
        )
    };
    assert_eq!(post("").0, 401);
    let (status, _, answer) = post(&format!("Authorization: Bearer {token}\r\n"));
    assert_eq!(status, 202, "{}", String::from_utf8_lossy(&answer));
    let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap();
    let round = answer["round"].as_u64().unwrap();

    let started = Instant::now();
    let bundle = loop {
        let (status, head, body) = get(port, "/v1/rounds/latest", None);
        if status == 200 {
            assert!(head.to_ascii_lowercase().contains(&format!("x-solvency-round: {round}")), "{head}");
            break body;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "the challenged round was not published");
        std::thread::sleep(Duration::from_millis(200));
    };
    let verified = app.verify(&bundle, &app.policy(Some(&challenge))).unwrap();
    assert_eq!(verified.manifest().nonce, challenge);
    assert_eq!(get(port, &format!("/v1/rounds/{round}"), None).2, bundle);

    // A user's inclusion proof, for the exchange to hand out, needs the token.
    let path = format!("/v1/rounds/{round}/inclusion/{}", fixture::account_id(3));
    assert_eq!(get(port, &path, None).0, 401);
    let (status, _, proof) = get(port, &path, Some(token));
    assert_eq!(status, 200);
    let proof = attestation::inclusion::InclusionProof::from_json(&proof).unwrap();
    attestation::inclusion::verify(verified.liabilities(), Some(&verified.manifest_digest()), &proof).unwrap();

    let metrics = String::from_utf8(get(port, "/metrics", None).2).unwrap();
    assert!(metrics.contains("solvency_parent_rounds_succeeded_total 1"), "{metrics}");
    assert!(metrics.contains("solvency_parent_proxy_connections_total{result=\"allowed\"} 1"), "{metrics}");
    assert!(parent.try_wait().unwrap().is_none(), "the parent keeps running");
    parent.kill().unwrap();
    parent.wait().unwrap();
}

#[test]
fn keys_that_are_not_the_attested_ones_are_refused_by_the_enclave() {
    let app = Appliance::start(5);
    app.setup();
    let mut keys = std::fs::read(app.path("keys.bin")).unwrap();
    let middle = keys.len() / 2;
    keys[middle] ^= 1;
    std::fs::write(app.path("keys.bin"), keys).unwrap();
    let out = app.round(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not the ones the setup attestation vouches for"), "{}", stderr(&out));
    assert_eq!(app.latest(), None);

    // Setup evidence that does not attest its manifest is refused before any keys are sent.
    let mut evidence = parent::client::SetupEvidence::load(&app.path("setup.cbor")).unwrap();
    let last = evidence.setup_manifest.len() - 1;
    evidence.setup_manifest[last] ^= 1;
    let mut bytes = Vec::new();
    ciborium::into_writer(&evidence, &mut bytes).unwrap();
    std::fs::write(app.path("setup.cbor"), bytes).unwrap();
    let out = app.round(&[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("setup attestation") && !err.contains("sending keys"), "{err}");
    assert_eq!(app.latest(), None);
}

#[test]
fn a_round_with_reserves_states_solvency_per_asset_even_with_a_lying_endpoint_and_when_short() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let mut app = Appliance::start(30);
    let totals = fixture::expected_totals(30, ASSETS.len());
    // BTC one satoshi short (a feed), ETH twice covered (an owned address's ether).
    let assets: Vec<ReserveAsset> = ASSETS
        .iter()
        .zip(&totals)
        .zip([totals[0] - 1, totals[1] * 2])
        // Both in private mode: ETH's total is hidden and proven covered; BTC's, short, is published.
        .map(|(((symbol, decimals), _), reserves)| ReserveAsset {
            symbol: (*symbol).into(),
            decimals: *decimals,
            reserves,
            private: true,
        })
        .collect();
    let chain = runtime.block_on(ReservesFixture::start(&assets, 3, 2)).unwrap();
    // The first endpoint, the first asked for state, rewrites every balance it proves.
    chain.endpoints[0].relay.set(Lie::Balance);
    let mut round_toml = std::fs::read_to_string(app.path("round.toml")).unwrap();
    round_toml.push_str(&chain.round_config("ownership.json"));
    std::fs::write(app.path("round.toml"), round_toml).unwrap();
    let mut allow = vec![format!("localhost:{}", app.cluster.port())];
    allow.extend(chain.destinations());
    app.write_config("parent.toml", &allow, "round.toml");
    app.kill_enclave();
    app.start_enclave();
    app.setup();
    let nonce = [9u8; 32];

    // Without the owners' signatures nothing is attested or stored.
    std::fs::write(app.path("ownership.json"), "{\"signatures\": []}").unwrap();
    let out = app.round(&["--nonce", &hex::encode(nonce)]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("ownership: no ownership signature"), "{}", stderr(&out));
    assert_eq!(app.latest(), None);

    std::fs::write(app.path("ownership.json"), runtime.block_on(chain.ownership_json(&nonce)).unwrap()).unwrap();
    let round = app.round_ok(&["--nonce", &hex::encode(nonce)]);
    let bytes = app.bundle(round);
    let mut policy = app.policy(Some(&nonce));
    let verified = app.verify(&bytes, &policy).unwrap();
    assert_eq!(verified.manifest().format, attestation::manifest::MANIFEST_FORMAT_V3);
    let solvency = verified.manifest().solvency.as_ref().unwrap();
    assert_eq!(solvency.assets[0].reserves, (totals[0] - 1).to_string(), "the truth, not the liar's");
    assert!(!solvency.assets[0].solvent);
    assert_eq!(solvency.assets[1].reserves, (totals[1] * 2).to_string());
    assert!(solvency.assets[1].solvent);
    // Private mode: the covered asset's total appears nowhere; the short one's is published.
    assert_eq!(verified.manifest().assets[0].total, totals[0].to_string());
    assert_eq!(verified.manifest().assets[1].total, attestation::bundle::HIDDEN);
    assert_eq!(solvency.assets[1].liabilities, attestation::bundle::HIDDEN);
    assert_eq!(verified.liabilities().bundle().totals, vec![Some(totals[0]), None]);
    assert!(verified.liabilities().bundle().opening.is_some());
    assert_eq!(solvency.chains[0].chain_id, testkit::reserves::CHAIN_ID);

    // The command-line verifier reports it, and refuses it only when the policy requires solvency.
    let verify = |policy: &BundlePolicy| {
        let path = app.path("reserves-policy.toml");
        std::fs::write(&path, policy.to_toml()).unwrap();
        Command::new(binary("solvency-verify", "solvency-attestation"))
            .arg("bundle")
            .arg(app.round_dir(round).join("bundle.cbor"))
            .arg("--policy")
            .arg(&path)
            .arg("--allow-emulated")
            .arg(app.path("dev-root/dev-root.pem"))
            .arg("--json")
            .output()
            .unwrap()
    };
    let out = verify(&policy);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["solvency"][0]["symbol"], "BTC");
    assert_eq!(report["solvency"][0]["solvent"], false);
    assert_eq!(report["solvency"][0]["liabilities"], totals[0].to_string());
    assert_eq!(report["solvency"][1]["solvent"], true);
    assert_eq!(report["solvency"][1]["liabilities"], "hidden");
    assert_eq!(report["solvency"][0]["sources"][0]["kind"], "chainlink");
    policy.solvency.require_solvent = true;
    let out = verify(&policy);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["step"], "solvency", "{report}");
    assert!(report["error"].as_str().unwrap().contains("INSOLVENT in BTC"), "{report}");
    // A policy pinning another feed refuses the round at step reserves.
    policy.solvency.require_solvent = false;
    policy.reserves = Some(vec![ReservePin {
        symbol: "BTC".into(),
        chain_ids: Some(vec![testkit::reserves::CHAIN_ID]),
        feeds: Some(vec![format!("0x{}", "11".repeat(20))]),
        tokens: None,
        min_agreeing: Some(2),
        endpoint_hosts: None,
        max_feed_age_secs: None,
        max_block_gap_secs: None,
    }]);
    let err = app.verify(&bytes, &policy).unwrap_err();
    assert_eq!(err.step(), "reserves", "{err}");
    // A pinned policy is closed: pinning one asset leaves none unchecked.
    policy.reserves = Some(vec![ReservePin {
        symbol: "ETH".into(),
        chain_ids: None,
        feeds: None,
        tokens: None,
        min_agreeing: None,
        endpoint_hosts: None,
        max_feed_age_secs: None,
        max_block_gap_secs: None,
    }]);
    let err = app.verify(&bytes, &policy).unwrap_err();
    assert!(err.to_string().contains("not BTC's"), "{err}");
    // A policy pinning hosts counts distinct hosts whose certificates were validated against the
    // web's roots: the fixture's three endpoints are one host, and pinned by certificate hash (which
    // says nothing about who runs them), so none counts.
    let localhost_only = |symbol: &str| ReservePin {
        symbol: symbol.into(),
        chain_ids: None,
        feeds: None,
        tokens: None,
        min_agreeing: None,
        endpoint_hosts: Some(vec!["localhost".into()]),
        max_feed_age_secs: None,
        max_block_gap_secs: None,
    };
    policy.reserves = Some(vec![localhost_only("BTC"), localhost_only("ETH")]);
    let err = app.verify(&bytes, &policy).unwrap_err();
    assert!(err.to_string().contains("0 distinct pinned hosts agreed"), "{err}");
    policy.reserves = None;
    // Signatures over a challenge the verifier did not pin could be an old round's.
    let mut unpinned = policy.clone();
    unpinned.round.nonce = None;
    let err = app.verify(&bytes, &unpinned).unwrap_err();
    assert_eq!(err.step(), "reserves", "{err}");
    assert!(err.to_string().contains("round.nonce"), "{err}");
    // Another exchange's name pinned: this statement is not theirs.
    let mut theirs = policy.clone();
    theirs.solvency.exchange = Some("Other Exchange".into());
    let err = app.verify(&bytes, &theirs).unwrap_err();
    assert!(err.to_string().contains("the policy pins \"Other Exchange\""), "{err}");
    theirs.solvency.exchange = Some(testkit::reserves::EXCHANGE.into());
    theirs.solvency.max_block_age_secs = Some(3600);
    app.verify(&bytes, &theirs).unwrap();
    // The evidence is bound: one byte of it changed is refused at step reserves.
    policy.reserves = None;
    let mut wire = RoundBundleWire::decode(&bytes).unwrap();
    let evidence = wire.reserves.as_mut().unwrap();
    let last = evidence.len() - 1;
    evidence[last] ^= 1;
    let err = app.verify(&wire.encode(), &policy).unwrap_err();
    assert_eq!(err.step(), "reserves", "{err}");
}
