//! The attested database read against a private PostgreSQL cluster: what is recorded, what is
//! refused (impostors, plaintext, bad rows), and what survives faults (a dropped connection,
//! concurrent writers, a standby).

use std::path::Path;

use enclave::db::guard::GuardError;
use enclave::db::record::RowDigest;
use enclave::db::{read_database, DbError, RoundConfig, Session};
use enclave::ledger::{LedgerError, RowField, RowProblem};
use testkit::fixture::{self, FixtureAsset};
use testkit::peers::{Forwarder, Impostor};
use testkit::{ClusterOptions, PrivateCluster};

const ASSETS: [(&str, u32); 2] = [("BTC", 8), ("ETH", 18)];

fn fixture_assets() -> Vec<FixtureAsset> {
    ASSETS.iter().map(|(s, d)| FixtureAsset::new(s, *d)).collect()
}

fn config(cluster: &PrivateCluster, query: &str) -> RoundConfig {
    let text = cluster.round_config(query, &ASSETS).unwrap();
    RoundConfig::parse(&text, Path::new(".")).unwrap()
}

/// The configuration with the port (and optionally more) replaced, for peers in the middle.
fn config_via(cluster: &PrivateCluster, query: &str, port: u16) -> RoundConfig {
    let mut config = config(cluster, query);
    config.database.port = port;
    config
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

async fn read_over_tcp(config: &RoundConfig) -> Result<enclave::db::DatabaseRead, DbError> {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", config.database.port)).await.unwrap();
    read_database(stream, config, 100, &mut |_| {}).await
}

fn expected_digest(accounts: u64) -> String {
    let mut digest = RowDigest::default();
    for i in 1..=accounts {
        for (j, (symbol, _)) in ASSETS.iter().enumerate() {
            digest.add(&fixture::account_id(i), symbol, fixture::base_units(i, j));
        }
    }
    hex::encode(digest.finish())
}

#[test]
fn a_read_records_the_database_and_matches_the_fixture() {
    let cluster = PrivateCluster::start().unwrap();
    cluster.load_fixture("balances", 300, &fixture_assets()).unwrap();
    let config = config(&cluster, &fixture::query("balances"));
    let rt = runtime();
    let read = rt.block_on(read_over_tcp(&config)).unwrap();

    assert_eq!(read.ledger.accounts.len(), 300);
    assert_eq!(read.ledger.totals(), fixture::expected_totals(300, 2));
    assert_eq!(read.ledger.accounts[0].id, "acct-000000001");
    assert_eq!(read.ledger.accounts[0].balances, vec![fixture::base_units(1, 0), fixture::base_units(1, 1)]);

    let r = &read.record;
    assert_eq!(r.rows, 600);
    assert_eq!(r.rows_sha256, expected_digest(300));
    assert_eq!(r.query, fixture::query("balances"));
    let id = &r.identity;
    assert_eq!(id.system_identifier, cluster.psql("SELECT system_identifier FROM pg_control_system()").unwrap());
    assert_eq!(id.timeline, 1);
    assert!(!id.in_recovery);
    assert!(id.lsn.contains('/'), "{}", id.lsn);
    assert!(!id.snapshot.is_empty());
    assert_eq!(id.server_version, cluster.psql("SHOW server_version").unwrap());
    assert_eq!((id.database.as_str(), id.role.as_str()), ("postgres", "solvency_reader"));
    assert!(id.server_time.ends_with('Z') && id.server_time.len() == 27, "{}", id.server_time);
    assert_eq!(id.server_cert_sha256, cluster.identity().cert_sha256());

    // Pinning the exact certificate instead of the CA reads the same.
    let pinned = RoundConfig::parse(
        &cluster.round_config(&fixture::query("balances"), &ASSETS).unwrap().replace(
            &format!("server_ca = \"{}\"", cluster.ca_path().display()),
            &format!("server_cert_sha256 = \"{}\"", cluster.identity().cert_sha256()),
        ),
        Path::new("."),
    )
    .unwrap();
    let again = rt.block_on(read_over_tcp(&pinned)).unwrap();
    assert_eq!(again.record.rows_sha256, r.rows_sha256);
}

#[test]
fn a_man_in_the_middle_is_refused_before_any_credential_is_sent() {
    let cluster = PrivateCluster::start().unwrap();
    cluster.load_fixture("balances", 10, &fixture_assets()).unwrap();
    let rt = runtime();
    let impostor = rt.block_on(Impostor::start()).unwrap();
    let by_ca = config_via(&cluster, &fixture::query("balances"), impostor.addr().port());
    let err = rt.block_on(read_over_tcp(&by_ca)).unwrap_err();
    assert!(matches!(err, DbError::UntrustedServer(_)), "{err}");

    let mut by_fingerprint = by_ca.clone();
    by_fingerprint.database.server_ca = None;
    by_fingerprint.database.server_cert_sha256 = Some(cluster.identity().cert_sha256());
    let err = rt.block_on(read_over_tcp(&by_fingerprint)).unwrap_err();
    assert!(
        matches!(&err, DbError::UntrustedServer(reason) if reason.contains(&cluster.identity().cert_sha256())),
        "{err}"
    );

    assert_eq!(impostor.tls_requests(), 2, "the client did reach the impostor");
    assert_eq!(impostor.plaintext_bytes(), 0, "nothing, the password included, was sent to it");
}

#[test]
fn the_read_goes_through_the_parents_proxy_with_tls_end_to_end() {
    let cluster = PrivateCluster::start().unwrap();
    cluster.load_fixture("balances", 30, &fixture_assets()).unwrap();
    let config = config(&cluster, &fixture::query("balances"));
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let proxy: channel::Address = channel::Address::Unix(dir.path().join("proxy.sock"));
    let other: channel::Address = channel::Address::Unix(dir.path().join("other.sock"));
    let read = rt.block_on(async {
        let allowed = channel::proxy::Allowlist::new([("localhost".to_owned(), cluster.port())]);
        tokio::spawn(channel::proxy::serve(channel::Listener::bind(&proxy).await.unwrap(), allowed));
        let elsewhere = channel::proxy::Allowlist::new([("db.example".to_owned(), 5432)]);
        tokio::spawn(channel::proxy::serve(channel::Listener::bind(&other).await.unwrap(), elsewhere));
        let refused = enclave::db::connect_via_proxy(&config, &other).await.err().unwrap();
        assert!(matches!(refused, DbError::Proxy(_)), "{refused}");
        let mut session = enclave::db::connect_via_proxy(&config, &proxy).await.unwrap();
        session.snapshot(config.query()).await.unwrap().read(&config, 100, &mut |_| {}).await.unwrap()
    });
    assert_eq!(read.ledger.totals(), fixture::expected_totals(30, 2));
    // The certificate recorded is the database's own: the proxy only relayed bytes.
    assert_eq!(read.record.identity.server_cert_sha256, cluster.identity().cert_sha256());
}

#[test]
fn a_server_without_tls_is_refused() {
    let cluster = PrivateCluster::start_with(&ClusterOptions { tls: false, ..ClusterOptions::default() }).unwrap();
    let config = config(&cluster, "SELECT 'a'::text, 'BTC'::text, 1::numeric");
    let err = runtime().block_on(read_over_tcp(&config)).unwrap_err();
    assert!(matches!(err, DbError::NoTls), "{err}");
}

#[test]
fn a_server_asking_for_the_password_without_scram_gets_nothing() {
    // Cleartext password authentication inside TLS: the server (or whoever holds a certificate
    // the pin accepts) would learn the password. Channel binding being required refuses it.
    let cluster =
        PrivateCluster::start_with(&ClusterOptions { auth_method: "password", ..ClusterOptions::default() }).unwrap();
    let config = config(&cluster, "SELECT 'a'::text, 'BTC'::text, 1::numeric");
    let err = runtime().block_on(read_over_tcp(&config)).unwrap_err();
    assert!(matches!(err, DbError::Connect(_)) && err.to_string().contains("did not use channel binding"), "{err}");
}

#[test]
fn wrong_credentials_and_wrong_column_types_are_errors() {
    let cluster = PrivateCluster::start().unwrap();
    cluster.load_fixture("balances", 3, &fixture_assets()).unwrap();
    let rt = runtime();

    let mut wrong_user = config(&cluster, &fixture::query("balances"));
    wrong_user.database.user = "nobody".into();
    assert!(matches!(rt.block_on(read_over_tcp(&wrong_user)).unwrap_err(), DbError::Connect(_)));
    std::fs::write(cluster.scratch_dir().join("wrong-password"), "not-the-password").unwrap();
    let mut wrong_password = config(&cluster, &fixture::query("balances"));
    wrong_password.database.password_file = Some(cluster.scratch_dir().join("wrong-password"));
    assert!(matches!(rt.block_on(read_over_tcp(&wrong_password)).unwrap_err(), DbError::Connect(_)));

    let float = config(&cluster, "SELECT account_id, asset, amount::float8 FROM public.balances");
    let err = rt.block_on(read_over_tcp(&float)).unwrap_err();
    assert!(matches!(&err, DbError::Columns(m) if m.contains("float8")), "{err}");
    let two = config(&cluster, "SELECT account_id, asset FROM public.balances");
    assert!(matches!(rt.block_on(read_over_tcp(&two)).unwrap_err(), DbError::Columns(_)));
    let err = rt.block_on(read_over_tcp(&config(&cluster, "SELECT * FROM no_such_table"))).unwrap_err();
    assert!(matches!(err, DbError::Guard(GuardError::Unqualified { .. })), "{err}");
    let err = rt.block_on(read_over_tcp(&config(&cluster, "SELECT * FROM public.no_such_table"))).unwrap_err();
    assert!(matches!(&err, DbError::Guard(GuardError::Missing(name)) if name == "public.no_such_table"), "{err}");
}

#[test]
fn every_kind_of_bad_row_is_reported_with_its_account_and_nothing_is_read() {
    let cluster = PrivateCluster::start().unwrap();
    cluster
        .psql(
            "CREATE TABLE ledger (id text, asset text, amount numeric);
             INSERT INTO ledger VALUES
               ('ok', 'BTC', 1.5),
               ('negative', 'BTC', -0.00000001),
               ('huge', 'BTC', 184467440737.09551616),
               ('fine-grained', 'BTC', 0.000000001),
               ('null-amount', 'ETH', NULL),
               (NULL, 'BTC', 1),
               ('doge', 'DOGE', 1),
               ('twice', 'ETH', 1),
               ('twice', 'ETH', 2),
               ('nan', 'BTC', 'NaN');
             GRANT SELECT ON ledger TO solvency_reader;
             CREATE TABLE empty (id text, asset text, amount numeric);
             GRANT SELECT ON empty TO solvency_reader;",
        )
        .unwrap();
    let rt = runtime();
    let config = config(&cluster, "SELECT id, asset, amount FROM public.ledger ORDER BY ctid");
    let err = rt.block_on(read_over_tcp(&config)).unwrap_err();
    let DbError::Rows(LedgerError::BadRows { errors, omitted: 0 }) = err else { panic!("{err}") };
    let got: Vec<(u64, Option<&str>, RowField, &RowProblem)> =
        errors.iter().map(|e| (e.row, e.account_id.as_deref(), e.field, &e.problem)).collect();
    let wrong_scale = RowProblem::WrongScale { value: "0.000000001".into(), decimals: 8 };
    let unknown = RowProblem::UnknownAsset { asset: "DOGE".into() };
    assert_eq!(
        got,
        [
            (2, Some("negative"), RowField::Amount, &RowProblem::Negative { value: "-0.00000001".into() }),
            (3, Some("huge"), RowField::Amount, &RowProblem::TooLarge { value: "184467440737.09551616".into() }),
            (4, Some("fine-grained"), RowField::Amount, &wrong_scale),
            (5, Some("null-amount"), RowField::Amount, &RowProblem::Null),
            (6, None, RowField::AccountId, &RowProblem::Null),
            (7, Some("doge"), RowField::Asset, &unknown),
            (9, Some("twice"), RowField::Asset, &RowProblem::Duplicate { first_row: 8 }),
            (10, Some("nan"), RowField::Amount, &RowProblem::NotANumber { value: "NaN".into() }),
        ]
    );

    let empty = config.clone();
    let empty = RoundConfig {
        database: enclave::db::config::DatabaseConfig {
            query: "SELECT id, asset, amount FROM public.empty".into(),
            ..empty.database
        },
        ..empty
    };
    assert!(matches!(rt.block_on(read_over_tcp(&empty)).unwrap_err(), DbError::Rows(LedgerError::Empty)));
}

#[test]
fn a_connection_dropped_mid_stream_fails_the_read() {
    let cluster = PrivateCluster::start().unwrap();
    cluster.load_fixture("balances", 20_000, &fixture_assets()).unwrap();
    let rt = runtime();
    let target = format!("127.0.0.1:{}", cluster.port()).parse().unwrap();
    let forwarder = rt.block_on(Forwarder::start(target, Some(256 * 1024))).unwrap();
    let config = config_via(&cluster, &fixture::query("balances"), forwarder.addr().port());
    let err = rt.block_on(read_over_tcp(&config)).unwrap_err();
    assert!(forwarder.has_cut());
    assert!(matches!(&err, DbError::Stream { rows, .. } if *rows > 0 && *rows < 40_000), "{err}");

    // Through an honest forwarder (the shape of the parent's proxy) the same read succeeds.
    let honest = rt.block_on(Forwarder::start(target, None)).unwrap();
    let config = config_via(&cluster, &fixture::query("balances"), honest.addr().port());
    let read = rt.block_on(read_over_tcp(&config)).unwrap();
    assert_eq!(read.record.rows, 40_000);
}

#[test]
fn writes_committed_during_the_read_are_not_seen() {
    let cluster = PrivateCluster::start().unwrap();
    cluster.load_fixture("balances", 100, &fixture_assets()).unwrap();
    let config = config(&cluster, &fixture::query("balances"));
    let rt = runtime();
    let (before, after_snapshot) = rt.block_on(async {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", cluster.port())).await.unwrap();
        let mut session =
            Session::connect(stream, &config.database, &config.server_pin().unwrap(), &config.password().unwrap())
                .await
                .unwrap();
        let snapshot = session.snapshot(config.query()).await.unwrap();
        // Another client moves money and opens an account after the snapshot was taken.
        cluster
            .psql(
                "UPDATE balances SET amount = amount + 1 WHERE asset = 'BTC';
                 INSERT INTO balances VALUES ('acct-999999999', 'ETH', 5);",
            )
            .unwrap();
        let lsn_at_snapshot = snapshot.identity().lsn.clone();
        let read = snapshot.read(&config, 100, &mut |_| {}).await.unwrap();
        (read, lsn_at_snapshot)
    });
    assert_eq!(before.ledger.totals(), fixture::expected_totals(100, 2));
    assert_eq!(before.record.rows, 200);
    assert_eq!(before.record.rows_sha256, expected_digest(100));
    assert_eq!(before.record.identity.lsn, after_snapshot);

    let later = rt.block_on(read_over_tcp(&config)).unwrap();
    assert_eq!(later.record.rows, 201);
    assert_eq!(later.ledger.totals()[0], fixture::expected_totals(100, 2)[0] + 100 * 100_000_000);
    assert_ne!(later.record.identity.lsn, before.record.identity.lsn);
}

#[test]
fn a_standby_reports_its_replay_position_and_the_primary_identity() {
    let primary = PrivateCluster::start().unwrap();
    primary.load_fixture("balances", 50, &fixture_assets()).unwrap();
    let standby = primary.start_standby().unwrap();
    let rt = runtime();
    let config = config(&standby, &fixture::query("balances"));
    // The standby keeps replaying what the primary writes on its own (checkpoints, running
    // transactions), so the read's position lies between the replay positions around it.
    let replayed =
        || attestation::policy::parse_lsn(&standby.psql("SELECT pg_last_wal_replay_lsn()").unwrap()).unwrap();
    let before = replayed();
    let read = rt.block_on(read_over_tcp(&config)).unwrap();
    let after = replayed();
    let id = &read.record.identity;
    assert!(id.in_recovery);
    assert_eq!(id.system_identifier, primary.psql("SELECT system_identifier FROM pg_control_system()").unwrap());
    let lsn = attestation::policy::parse_lsn(&id.lsn).unwrap();
    assert!(before <= lsn && lsn <= after, "{} not within {before:#x}..={after:#x}", id.lsn);
    assert_eq!(read.ledger.totals(), fixture::expected_totals(50, 2));
}
