//! `solvency-verify`: checks attested round bundles, liabilities bundles, inclusion proofs and
//! Nitro attestation documents offline.
//!
//! Exit codes: 0 everything verified, 1 verification failed (the input is bad or its claims do
//! not hold), 2 usage, 3 the input could not be read.

use std::path::PathBuf;
use std::process::ExitCode;

use attestation::attested::{self, RoundBundleWire, VerifiedRound};
use attestation::bundle::{total_text, Bundle, MAX_BUNDLE_BYTES, UNATTESTED};
use attestation::commitment::element_to_hex;
use attestation::inclusion::{InclusionProof, MAX_PROOF_BYTES};
use attestation::liabilities::{verify, VerifiedLiabilities};
use attestation::log::MAX_LOG_BYTES;
use attestation::nitro::{self, pem_to_der, Policy, TrustAnchor, MAX_DOCUMENT_BYTES};
use attestation::policy::BundlePolicy;
use clap::{Parser, Subcommand};
use serde_json::json;

#[derive(Parser)]
#[command(
    name = "solvency-verify",
    version,
    about = "Verifies solvency-enclave round bundles, liabilities bundles, inclusion proofs and Nitro attestation documents"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Verify every batch proof, the sum chain, the totals and the root of a bundle.
    Liabilities {
        /// The bundle (bundle.cbor).
        bundle: PathBuf,
        /// Require the verifying key to have this SHA-256 (hex).
        #[arg(long)]
        expect_vk_sha256: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Verify an AWS Nitro attestation document: envelope, payload, chain, signature, policy.
    Attestation {
        /// The document (COSE_Sign1 bytes as the NSM returns them).
        document: PathBuf,
        /// The root certificate (PEM). It must be the pinned AWS root unless
        /// --development-root is given.
        #[arg(long)]
        root: PathBuf,
        /// Trust --root although it is not the AWS root (emulated NSM documents).
        #[arg(long)]
        development_root: bool,
        /// Verify at this time (ms since the Unix epoch) instead of now.
        #[arg(long)]
        at_ms: Option<u64>,
        /// Accept debug-mode enclaves (PCR0/1/2 all zero).
        #[arg(long)]
        allow_debug: bool,
        /// Require PCR N to be HEX (repeatable).
        #[arg(long = "expect-pcr", value_name = "N=HEX")]
        expect_pcr: Vec<String>,
        /// Require user_data to be HEX.
        #[arg(long)]
        expect_user_data: Option<String>,
        /// Require nonce to be HEX.
        #[arg(long)]
        expect_nonce: Option<String>,
        /// Refuse documents older than this many milliseconds.
        #[arg(long)]
        max_age_ms: Option<u64>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Verify an attested round bundle end to end against a policy: the attestation documents
    /// (chain to the pinned AWS root, PCRs, no debug), the manifest binding, the nonce,
    /// freshness, the setup attestation, the database pins, every batch proof and the totals.
    Bundle {
        /// The round bundle (bundle.cbor from the parent's store).
        bundle: PathBuf,
        /// The verifier's policy (TOML: [pcrs], [database], [attestation], [round]).
        #[arg(long)]
        policy: PathBuf,
        /// Trust this development root (PEM) instead of the AWS root: for bundles made with the
        /// emulated NSM only. The report then says the bundle is NOT AWS-attested.
        #[arg(long, value_name = "DEV_ROOT.pem")]
        allow_emulated: Option<PathBuf>,
        /// Verify as if now were this time (ms since the Unix epoch).
        #[arg(long)]
        at_ms: Option<u64>,
        #[command(flatten)]
        expected: ExpectedRound,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Verify the round bundle against a policy, then that one account's balances are a leaf of
    /// its tree and the proof names that round.
    Inclusion {
        /// The bundle (bundle.cbor): a round bundle (with --policy), or an unattested bundle made
        /// offline (with --unattested).
        #[arg(long)]
        bundle: PathBuf,
        /// Verify the round bundle fully against this policy first (required for round bundles).
        #[arg(long, required_unless_present = "unattested")]
        policy: Option<PathBuf>,
        /// With --policy: trust this development root (PEM) instead of the AWS root.
        #[arg(long, value_name = "DEV_ROOT.pem", requires = "policy")]
        allow_emulated: Option<PathBuf>,
        /// The account's inclusion proof (inclusion/<account>.json).
        #[arg(long)]
        proof: PathBuf,
        /// Verify as if now were this time (ms since the Unix epoch).
        #[arg(long, requires = "policy")]
        at_ms: Option<u64>,
        #[command(flatten)]
        expected: ExpectedRound,
        /// The bundle is an unattested one made offline (`solvency-enclave prove`): check its
        /// proofs and the inclusion only; nothing shows which code or database produced it.
        #[arg(long, conflicts_with = "policy")]
        unattested: bool,
        /// With --unattested: require the verifying key to have this SHA-256 (hex).
        #[arg(long, requires = "unattested")]
        expect_vk_sha256: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Which round the verifier expects: the digest an auditor accepted, or a published log that
/// must list it.
#[derive(clap::Args, Debug, Default)]
struct ExpectedRound {
    /// Require this manifest digest (hex of 48 bytes): the round the auditor accepted.
    #[arg(long, value_name = "DIGEST")]
    expect_manifest: Option<String>,
    /// Require the round to be listed in this published log (the exchange's `/v1/log`), whose
    /// chain is checked; prints the log's head to compare with what others were shown.
    #[arg(long, value_name = "LOG.jsonl")]
    published_log: Option<PathBuf>,
}

/// A failure and the exit code it maps to.
struct Failure {
    code: u8,
    step: &'static str,
    message: String,
}

fn fail(code: u8, step: &'static str, e: impl std::fmt::Display) -> Failure {
    Failure { code, step, message: e.to_string() }
}

fn read_capped(path: &PathBuf, limit: usize) -> Result<Vec<u8>, Failure> {
    let len = std::fs::metadata(path).map_err(|e| fail(3, "read", format!("{}: {e}", path.display())))?.len();
    if len > limit as u64 {
        return Err(fail(1, "read", format!("{}: {len} bytes exceeds the limit of {limit}", path.display())));
    }
    std::fs::read(path).map_err(|e| fail(3, "read", format!("{}: {e}", path.display())))
}

fn now_ms() -> Result<u64, Failure> {
    Ok(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_err(|e| fail(3, "clock", e))?.as_millis()
        as u64)
}

fn anchor(allow_emulated: &Option<PathBuf>) -> Result<TrustAnchor, Failure> {
    match allow_emulated {
        None => TrustAnchor::aws_builtin().map_err(|e| fail(3, "root", e)),
        Some(path) => {
            let pem = read_capped(path, 64 << 10)?;
            pem_to_der(&pem).and_then(TrustAnchor::development).map_err(|e| fail(1, "root", e))
        }
    }
}

/// A round verified, with where it stands in the published log when one was given.
struct Checked {
    round: VerifiedRound,
    /// The published log's head and the round's entry position.
    listed: Option<(String, u64)>,
}

fn verified_round(
    bytes: &[u8],
    policy: &PathBuf,
    allow_emulated: &Option<PathBuf>,
    at_ms: Option<u64>,
    expected: &ExpectedRound,
) -> Result<Checked, Failure> {
    let text = read_capped(policy, 1 << 20)?;
    let text = String::from_utf8(text).map_err(|_| fail(2, "policy-file", "the policy is not UTF-8"))?;
    let mut policy = BundlePolicy::from_toml(&text).map_err(|e| fail(2, "policy-file", e))?;
    if let Some(digest) = &expected.expect_manifest {
        if attestation::inclusion::manifest_digest_from_hex(digest).is_none() {
            return Err(fail(2, "arguments", "--expect-manifest must be 96 hex digits"));
        }
        policy.round.manifest_digest = Some(digest.to_ascii_lowercase());
    }
    let anchor = anchor(allow_emulated)?;
    let now = match at_ms {
        Some(t) => t,
        None => now_ms()?,
    };
    let round = attested::verify(bytes, &policy, &anchor, now).map_err(|e| Failure {
        code: 1,
        step: e.step(),
        message: e.to_string(),
    })?;
    let listed = match &expected.published_log {
        None => None,
        Some(path) => {
            let log =
                attestation::log::parse(&read_capped(path, MAX_LOG_BYTES)?).map_err(|e| fail(1, "published-log", e))?;
            let entry = log.find(&round.manifest_digest()).ok_or_else(|| {
                fail(
                    1,
                    "published-log",
                    format!(
                        "the round (manifest digest {}) is not listed in the published log (head {})",
                        hex::encode(round.manifest_digest()),
                        log.head()
                    ),
                )
            })?;
            Some((log.head(), entry.seq))
        }
    };
    Ok(Checked { round, listed })
}

fn round_report(checked: &Checked) -> serde_json::Value {
    let v = &checked.round;
    let m = v.manifest();
    let d = v.document().document();
    let setup = v.setup().manifest();
    let pcrs = |doc: &attestation::nitro::AttestationDocument| {
        (0..3u8)
            .filter_map(|i| doc.pcrs.get(&i).map(|p| (format!("pcr{i}"), serde_json::Value::from(hex::encode(p)))))
            .collect::<serde_json::Map<_, _>>()
    };
    json!({
        "ok": true,
        "aws_attested": v.document().root_is_aws(),
        "warnings": v.warnings(),
        "manifest_digest": hex::encode(v.manifest_digest()),
        "manifest_format": m.format,
        "published_log": checked.listed.as_ref().map(|(head, seq)| json!({"head": head, "seq": seq})),
        "round": m.round,
        "round_id": hex::encode(&m.round_id),
        "attested_at_ms": d.timestamp_ms,
        "module_id": d.module_id,
        "image": pcrs(d),
        "nonce": hex::encode(&m.nonce),
        "software_version": m.software_version,
        "config_sha256": hex::encode(&m.config_sha256),
        "database": m.database,
        "relations": m.database.relations,
        "query": m.query,
        "rows": m.rows,
        "rows_sha256": m.rows_sha256,
        "accounts": m.leaf_count,
        "batch_size": m.batch_size,
        "batches": v.liabilities().bundle().batches.len(),
        "root": hex::encode(&m.root),
        "totals": m.assets,
        "solvency": m.solvency.as_ref().map(attestation::reserves::report::assets),
        "reserves": m.solvency.as_ref().map(attestation::reserves::report::json),
        "verifying_key_sha256": hex::encode(&m.verifying_key_sha256),
        "setup": {
            "attested_at_ms": v.setup().document().document().timestamp_ms,
            "created_ms": setup.created_ms,
            "proving_keys_sha256": hex::encode(&setup.proving_keys_sha256),
            "software_version": setup.software_version,
        },
        "checks": [
            "attestation: COSE_Sign1, payload, certificate chain to the trusted root at the document's time, ES384 signature",
            "image: PCR0, PCR1, PCR2 equal the policy's; not a debug-mode enclave",
            "manifest binding: the document's user_data is the manifest digest",
            "round: the manifest digest is the expected one (if the policy or --expect-manifest names one)",
            "nonce: the challenge the policy expects (if any) is the one attested",
            "freshness: the attestation's age and clock skew, the challenge deadline",
            "setup: the keys were generated and attested by an enclave with the same PCR0-2",
            "database: system identifier, server certificate, query, database name and role equal the policy's (and database OID, timeline, LSN, relations, RDS instance where pinned)",
            "configuration: the configuration hash and the assets with their decimals (where pinned)",
            "liabilities: every batch proof, the sum chain to the totals, the tree root",
            "consistency: manifest totals, root, counts and proofs equal the liabilities bundle's",
            "reserves: each chain's header hashes to the recorded block; every account and slot follows from its state root by Merkle-Patricia proofs; feed and token reads re-executed in an EVM over that state; ownership signatures; the figures equal the manifest's; the policy's reserve pins",
            "solvency: every asset's reserves cover its liabilities (if the policy requires it)",
        ],
    })
}

/// Milliseconds since the Unix epoch as an RFC 3339 UTC time, for people to read.
fn date(ms: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| format!("{ms} ms after the epoch"))
}

fn print_warnings(warnings: &[&str]) {
    for w in warnings {
        println!("WARNING: {w}.");
    }
}

fn print_round_report(checked: &Checked) {
    let v = &checked.round;
    let m = v.manifest();
    let d = v.document().document();
    print_warnings(&v.warnings());
    println!("bundle:      OK, the round with manifest digest {}", hex::encode(v.manifest_digest()));
    println!("             (the parent labelled it round {}; labels are not unique)", m.round);
    if let Some((head, seq)) = &checked.listed {
        println!("published:   entry {seq} of the published log, whose head is {head}");
    }
    println!("attested:    {} by module {}", date(d.timestamp_ms), d.module_id);
    println!(
        "setup:       keys made {} in an enclave with the same image, attested {}",
        date(v.setup().manifest().created_ms),
        date(v.setup().document().document().timestamp_ms)
    );
    for i in 0..3u8 {
        if let Some(p) = d.pcrs.get(&i) {
            println!("PCR{i}:        {} (as pinned)", hex::encode(p));
        }
    }
    if !m.nonce.is_empty() {
        println!("challenge:   {}", hex::encode(&m.nonce));
    }
    let db = &m.database;
    println!(
        "database:    system identifier {} (pinned), timeline {}, {} at LSN {}",
        db.system_identifier,
        db.timeline,
        if db.in_recovery { "standby" } else { "primary" },
        db.lsn
    );
    println!(
        "             database {}{} read as {}",
        db.database,
        db.database_oid.map(|o| format!(" (OID {o})")).unwrap_or_default(),
        db.role
    );
    if let Some(rds) = &db.rds {
        println!(
            "RDS:         instance {} ({}) of account {} in {}, endpoint {}",
            rds.instance_id, rds.dbi_resource_id, rds.account, rds.region, rds.endpoint
        );
    }
    println!("snapshot:    {} at {} (PostgreSQL {})", db.snapshot, db.server_time, db.server_version);
    println!("server cert: {} (pinned)", db.server_cert_sha256);
    println!("read:        {} rows, rows SHA-256 {}", m.rows, m.rows_sha256);
    println!("query:       {}", m.query);
    for r in db.relations.iter().flatten() {
        println!(
            "relation:    {}.{} (OID {}, {}, owner {}){}",
            r.schema,
            r.name,
            r.oid,
            r.kind,
            r.owner,
            if r.named { "" } else { ", read through its parent" }
        );
    }
    println!(
        "proofs:      {} batch proofs of {} accounts verified; keys from an attested setup (vk {})",
        v.liabilities().bundle().batches.len(),
        m.batch_size,
        hex::encode(&m.verifying_key_sha256)
    );
    println!("accounts:    {}", m.leaf_count);
    for a in &m.assets {
        let total = if a.total == attestation::bundle::HIDDEN {
            "hidden (private mode: proven at most the reserves, below)".to_owned()
        } else {
            attestation::amount::format_decimal(&a.total, a.decimals, &a.symbol)
        };
        println!("total {:<8} {total}", a.symbol);
    }
    match &m.solvency {
        Some(solvency) => {
            for line in attestation::reserves::report::lines(solvency) {
                println!("{line}");
            }
        }
        None => println!("solvency:    not stated: this round proves liabilities only (no reserves were read)"),
    }
}

/// Verifies a bundle's proofs only. `round_bundles`: whether a round bundle's liabilities part
/// may be checked this way (the `liabilities` command); inclusion proofs of a round bundle need
/// its attestation checked against a policy.
fn verified_bundle(
    path: &PathBuf,
    expect_vk: &Option<String>,
    round_bundles: bool,
) -> Result<VerifiedLiabilities, Failure> {
    let expected = match expect_vk {
        None => None,
        Some(h) => Some(
            hex::decode(h)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| fail(2, "arguments", "--expect-vk-sha256 must be 64 hex digits"))?,
        ),
    };
    let bytes = read_capped(path, MAX_BUNDLE_BYTES)?;
    let bundle = if attested::is_round_bundle(&bytes) {
        if !round_bundles {
            return Err(fail(
                2,
                "arguments",
                "this is an attested round bundle: verify it with --policy (an auditor's or regulator's policy file)",
            ));
        }
        let wire = RoundBundleWire::decode(&bytes).map_err(|e| fail(1, "decode", e))?;
        Bundle::decode_embedded(&wire.liabilities)
    } else {
        Bundle::decode(&bytes)
    }
    .map_err(|e| fail(1, "decode", e))?;
    verify(bundle, expected).map_err(|e| fail(1, "verify", e))
}

/// What a proofs-only check leaves unchecked, for every output of it.
fn proofs_only_warning(v: &VerifiedLiabilities) -> &'static str {
    if v.bundle().attestation == UNATTESTED {
        "UNATTESTED bundle: nothing shows which code produced it or which database it read"
    } else {
        "only the proofs were checked; the attestation (image, database, setup) was NOT: use `solvency-verify bundle --policy`"
    }
}

/// A proofs-only summary (no attestation was checked, and the JSON does not pretend one was).
fn summary(v: &VerifiedLiabilities) -> serde_json::Value {
    let b = v.bundle();
    json!({
        "verification": "proofs-only",
        "warnings": [proofs_only_warning(v)],
        "round_id": hex::encode(b.round_id),
        "root": element_to_hex(&b.root),
        "leaf_count": b.leaf_count,
        "batch_size": b.shape.batch_size,
        "batches": b.batches.len(),
        "verifying_key_sha256": hex::encode(v.verifying_key_sha256()),
        "totals": b.assets.iter().zip(&b.totals).map(|(a, t)| json!({"asset": a, "total": total_text(*t)})).collect::<Vec<_>>(),
    })
}

fn print_summary(v: &VerifiedLiabilities) {
    let b = v.bundle();
    println!("WARNING: {}.", proofs_only_warning(v));
    println!("liabilities: OK ({} batch proofs verified)", b.batches.len());
    println!("round id:    {}", hex::encode(b.round_id));
    println!("root:        {}", element_to_hex(&b.root));
    println!("accounts:    {}", b.leaf_count);
    println!("vk sha256:   {}", hex::encode(v.verifying_key_sha256()));
    for (a, t) in b.assets.iter().zip(&b.totals) {
        println!("total {a:<8} {} base units", total_text(*t));
    }
}

fn hex_arg(value: &str, what: &'static str) -> Result<Vec<u8>, Failure> {
    hex::decode(value).map_err(|_| fail(2, "arguments", format!("{what} must be hex")))
}

fn attestation_policy(
    allow_debug: bool,
    expect_pcr: &[String],
    expect_user_data: Option<&str>,
    expect_nonce: Option<&str>,
    max_age_ms: Option<u64>,
) -> Result<Policy, Failure> {
    let mut policy = Policy { allow_debug, max_age_ms, ..Policy::default() };
    for spec in expect_pcr {
        let (index, value) = spec.split_once('=').ok_or_else(|| fail(2, "arguments", "--expect-pcr takes N=HEX"))?;
        let index: u8 =
            index.parse().ok().filter(|i| *i < 32).ok_or_else(|| fail(2, "arguments", "PCR index must be 0 to 31"))?;
        policy.expected_pcrs.insert(index, hex_arg(value, "--expect-pcr")?);
    }
    policy.expected_user_data = expect_user_data.map(|h| hex_arg(h, "--expect-user-data")).transpose()?;
    policy.expected_nonce = expect_nonce.map(|h| hex_arg(h, "--expect-nonce")).transpose()?;
    Ok(policy)
}

fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::Attestation {
            document,
            root,
            development_root,
            at_ms,
            allow_debug,
            expect_pcr,
            expect_user_data,
            expect_nonce,
            max_age_ms,
            json,
        } => {
            let policy = attestation_policy(
                allow_debug,
                &expect_pcr,
                expect_user_data.as_deref(),
                expect_nonce.as_deref(),
                max_age_ms,
            )?;
            let pem = read_capped(&root, 64 << 10)?;
            let anchor = if development_root {
                pem_to_der(&pem).and_then(TrustAnchor::development)
            } else {
                TrustAnchor::aws_from_pem(&pem)
            }
            .map_err(|e| fail(1, "root", e))?;
            let at_ms = match at_ms {
                Some(t) => t,
                None => std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_err(|e| fail(3, "clock", e))?
                    .as_millis() as u64,
            };
            let bytes = read_capped(&document, MAX_DOCUMENT_BYTES)?;
            let verified = nitro::verify(&bytes, &anchor, at_ms, &policy).map_err(|e| Failure {
                code: 1,
                step: e.step(),
                message: e.to_string(),
            })?;
            let d = verified.document();
            let hex_opt = |v: &Option<Vec<u8>>| v.as_ref().map(hex::encode);
            if json {
                let out = json!({
                    "ok": true,
                    "root_is_aws": verified.root_is_aws(),
                    "warnings": if verified.root_is_aws() { vec![] } else { vec![attested::DEVELOPMENT_ROOT_WARNING] },
                    "verified_at_ms": at_ms,
                    "module_id": d.module_id,
                    "timestamp_ms": d.timestamp_ms,
                    "pcrs": d.pcrs.iter().map(|(i, v)| (i.to_string(), serde_json::Value::from(hex::encode(v)))).collect::<serde_json::Map<_, _>>(),
                    "user_data": hex_opt(&d.user_data),
                    "nonce": hex_opt(&d.nonce),
                    "public_key": hex_opt(&d.public_key),
                });
                println!("{out:#}");
            } else {
                if !verified.root_is_aws() {
                    print_warnings(&[attested::DEVELOPMENT_ROOT_WARNING]);
                }
                println!("attestation: OK (envelope, payload, chain, signature, policy)");
                println!("module_id:   {}", d.module_id);
                println!("timestamp:   {} ms", d.timestamp_ms);
                for i in 0..3u8 {
                    if let Some(v) = d.pcrs.get(&i) {
                        println!("PCR{i}:        {}", hex::encode(v));
                    }
                }
                println!("user_data:   {}", hex_opt(&d.user_data).unwrap_or_else(|| "(none)".into()));
                println!("nonce:       {}", hex_opt(&d.nonce).unwrap_or_else(|| "(none)".into()));
            }
            Ok(())
        }
        Command::Liabilities { bundle, expect_vk_sha256, json } => {
            let v = verified_bundle(&bundle, &expect_vk_sha256, true)?;
            if json {
                let mut s = summary(&v);
                s["ok"] = json!(true);
                println!("{s:#}");
            } else {
                print_summary(&v);
            }
            Ok(())
        }
        Command::Bundle { bundle, policy, allow_emulated, at_ms, expected, json } => {
            let bytes = read_capped(&bundle, MAX_BUNDLE_BYTES)?;
            let checked = verified_round(&bytes, &policy, &allow_emulated, at_ms, &expected)?;
            if json {
                println!("{:#}", round_report(&checked));
            } else {
                print_round_report(&checked);
            }
            Ok(())
        }
        Command::Inclusion {
            bundle,
            policy,
            allow_emulated,
            proof,
            at_ms,
            expected,
            unattested,
            expect_vk_sha256,
            json,
        } => {
            let bytes = read_capped(&proof, MAX_PROOF_BYTES)?;
            let p = InclusionProof::from_json(&bytes).map_err(|e| fail(1, "inclusion", e))?;
            let checked = match &policy {
                Some(policy) if !unattested => {
                    let bytes = read_capped(&bundle, MAX_BUNDLE_BYTES)?;
                    Some(verified_round(&bytes, policy, &allow_emulated, at_ms, &expected)?)
                }
                _ => None,
            };
            let proofs_only = match &checked {
                Some(_) => None,
                None => {
                    if expected.expect_manifest.is_some() || expected.published_log.is_some() {
                        return Err(fail(2, "arguments", "an unattested bundle has no manifest digest to expect"));
                    }
                    Some(verified_bundle(&bundle, &expect_vk_sha256, false)?)
                }
            };
            let (liabilities, digest) = match (&checked, &proofs_only) {
                (Some(c), _) => (c.round.liabilities(), Some(c.round.manifest_digest())),
                (None, Some(v)) => (v, None),
                (None, None) => return Err(fail(3, "internal", "no bundle was verified")),
            };
            let included = attestation::inclusion::verify(liabilities, digest.as_ref(), &p)
                .map_err(|e| fail(1, "inclusion", e))?;
            let decimals: Vec<u32> = match &checked {
                Some(c) => c.round.manifest().assets.iter().map(|a| a.decimals).collect(),
                None => Vec::new(),
            };
            if json {
                let bundle_report = match &checked {
                    Some(c) => round_report(c),
                    None => summary(liabilities),
                };
                let out = json!({
                    "ok": true,
                    "warnings": bundle_report["warnings"].clone(),
                    "account_id": included.account_id,
                    "leaf_index": included.leaf_index,
                    "manifest_digest": digest.map(hex::encode),
                    "balances": included.balances.iter().map(|(a, x)| json!({"asset": a, "amount": x.to_string()})).collect::<Vec<_>>(),
                    "bundle": bundle_report,
                });
                println!("{out:#}");
            } else {
                match &checked {
                    Some(c) => print_round_report(c),
                    None => print_summary(liabilities),
                }
                println!(
                    "inclusion:   OK: account {:?} is leaf {} of the verified tree{}",
                    included.account_id,
                    included.leaf_index,
                    if p.manifest_digest.is_some() { ", and the proof names this round" } else { "" }
                );
                for (i, (a, x)) in included.balances.iter().enumerate() {
                    match decimals.get(i) {
                        Some(d) => {
                            println!("balance {a:<6} {}", attestation::amount::with_symbol(u128::from(*x), *d, a))
                        }
                        None => println!("balance {a:<6} {x} base units"),
                    }
                }
            }
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = match &cli.command {
        Command::Liabilities { json, .. }
        | Command::Inclusion { json, .. }
        | Command::Attestation { json, .. }
        | Command::Bundle { json, .. } => *json,
    };
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if json {
                println!("{:#}", json!({"ok": false, "step": f.step, "error": f.message}));
            }
            eprintln!("FAILED at {}: {}", f.step, f.message);
            ExitCode::from(f.code)
        }
    }
}
