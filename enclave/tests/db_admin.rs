//! The exchange's own database administrators as the adversary: each attack on the read is run on
//! a private cluster as an administrator would run it (as the cluster's superuser over its
//! socket), and the enclave's read is refused with an error naming what was found, or — where the
//! attack only works on an unqualified read — the read returns the genuine rows.

use std::path::Path;

use enclave::db::guard::GuardError;
use enclave::db::{read_database, DatabaseRead, DbError, RoundConfig};
use testkit::fixture::{self, FixtureAsset};
use testkit::PrivateCluster;

const ASSETS: [(&str, u32); 1] = [("BTC", 8)];
const ACCOUNTS: u64 = 100;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// A cluster holding the fixture and one more account, the whale, whose balance is what an
/// attacker would hide.
fn cluster_with_whale() -> PrivateCluster {
    let cluster = PrivateCluster::start().unwrap();
    cluster.load_fixture("balances", ACCOUNTS, &[FixtureAsset::new("BTC", 8)]).unwrap();
    cluster.psql("INSERT INTO balances VALUES ('whale', 'BTC', 5000)").unwrap();
    cluster
}

fn config(cluster: &PrivateCluster, query: &str) -> RoundConfig {
    RoundConfig::parse(&cluster.round_config(query, &ASSETS).unwrap(), Path::new(".")).unwrap()
}

fn read(cluster: &PrivateCluster, query: &str) -> Result<DatabaseRead, DbError> {
    let config = config(cluster, query);
    runtime().block_on(async {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", cluster.port())).await.unwrap();
        read_database(stream, &config, 100, &mut |_| {}).await
    })
}

fn guard_error(result: Result<DatabaseRead, DbError>) -> GuardError {
    match result {
        Err(DbError::Guard(e)) => e,
        Err(other) => panic!("expected a guard refusal, got: {other}"),
        Ok(read) => panic!("the read was accepted with {} accounts", read.ledger.accounts.len()),
    }
}

const UNQUALIFIED: &str = "SELECT account_id, asset, amount FROM balances ORDER BY account_id, asset";

#[test]
fn an_honest_read_records_the_relations_it_read() {
    let cluster = cluster_with_whale();
    let read = read(&cluster, &fixture::query("balances")).unwrap();
    assert_eq!(read.ledger.accounts.len() as u64, ACCOUNTS + 1);
    let id = &read.record.identity;
    let relations = id.relations.as_ref().unwrap();
    assert_eq!(relations.len(), 1);
    let oid = cluster.psql("SELECT 'public.balances'::regclass::oid").unwrap();
    assert_eq!((relations[0].schema.as_str(), relations[0].name.as_str()), ("public", "balances"));
    assert_eq!((relations[0].oid.to_string(), relations[0].kind.as_str()), (oid, "table"));
    assert_eq!((relations[0].owner.as_str(), relations[0].named), ("admin", true));
    assert_eq!(
        id.database_oid.unwrap().to_string(),
        cluster.psql("SELECT oid FROM pg_database WHERE datname = 'postgres'").unwrap()
    );
    assert_eq!(id.session_role.as_deref(), Some("solvency_reader"));
}

#[test]
fn a_view_in_the_readers_own_schema_cannot_hide_an_account() {
    let cluster = cluster_with_whale();
    // As reproduced in the issue: "$user" comes first in the default search_path.
    cluster
        .psql(
            "CREATE SCHEMA solvency_reader AUTHORIZATION admin;
             GRANT USAGE ON SCHEMA solvency_reader TO solvency_reader;
             CREATE VIEW solvency_reader.balances AS SELECT * FROM public.balances WHERE account_id <> 'whale';
             GRANT SELECT ON solvency_reader.balances TO solvency_reader;",
        )
        .unwrap();
    // The unqualified query the attack relied on is refused, naming the view it would have read.
    let e = guard_error(read(&cluster, UNQUALIFIED));
    assert!(matches!(&e, GuardError::Unqualified { name, .. } if name == "balances"), "{e}");
    assert!(e.to_string().contains("solvency_reader.balances (view)"), "{e}");
    // Naming the view itself is refused too.
    let e = guard_error(read(&cluster, "SELECT account_id, asset, amount FROM solvency_reader.balances"));
    assert!(matches!(&e, GuardError::Kind { kind: "view", .. }), "{e}");
    // The qualified query reads the table, whale included, whatever the reader's search path.
    cluster.psql("ALTER ROLE solvency_reader SET search_path = solvency_reader, public").unwrap();
    let read = read(&cluster, &fixture::query("balances")).unwrap();
    assert_eq!(read.ledger.accounts.len() as u64, ACCOUNTS + 1);
    assert!(read.ledger.accounts.iter().any(|a| a.id == "whale"));
}

#[test]
fn a_row_level_security_policy_aimed_at_the_reader_is_refused() {
    let cluster = cluster_with_whale();
    cluster
        .psql(
            "ALTER TABLE balances ENABLE ROW LEVEL SECURITY;
             CREATE POLICY everyone ON balances FOR SELECT USING (true);
             CREATE POLICY hide_whale ON balances AS RESTRICTIVE FOR SELECT TO solvency_reader
               USING (account_id <> 'whale');",
        )
        .unwrap();
    let e = guard_error(read(&cluster, &fixture::query("balances")));
    assert!(
        matches!(&e, GuardError::RowSecurity { name, policies } if name == "public.balances"
        && policies == &["everyone".to_owned(), "hide_whale".to_owned()]),
        "{e}"
    );
    // FORCE or not, with policies or none yet: enabled row security is refused.
    cluster.psql("DROP POLICY everyone ON balances; DROP POLICY hide_whale ON balances").unwrap();
    assert!(matches!(guard_error(read(&cluster, &fixture::query("balances"))), GuardError::RowSecurity { .. }));
}

#[test]
fn shadowed_identity_functions_are_found_and_refused() {
    let cluster = cluster_with_whale();
    cluster
        .psql(
            "CREATE SCHEMA solvency_reader AUTHORIZATION admin;
             GRANT USAGE ON SCHEMA solvency_reader TO solvency_reader;
             CREATE FUNCTION solvency_reader.pg_control_system(OUT pg_control_version int, \
               OUT catalog_version_no int, OUT system_identifier bigint, OUT pg_control_last_modified timestamptz) \
               AS $$ SELECT 1, 1, 7000000000000000001::bigint, now() $$ LANGUAGE sql;
             CREATE FUNCTION solvency_reader.pg_current_wal_lsn() RETURNS pg_lsn AS $$ SELECT 'FFFF/0'::pg_lsn $$ LANGUAGE sql;
             ALTER ROLE solvency_reader SET search_path = \"$user\", pg_catalog, public;",
        )
        .unwrap();
    let e = guard_error(read(&cluster, &fixture::query("balances")));
    assert!(matches!(&e, GuardError::Shadowing(f) if f.starts_with("solvency_reader.pg_c")), "{e}");
}

#[test]
fn a_role_default_that_switches_the_reader_is_refused() {
    let cluster = cluster_with_whale();
    cluster
        .psql(
            "CREATE ROLE lesser NOLOGIN; GRANT lesser TO solvency_reader;
             ALTER ROLE solvency_reader SET role = 'lesser';",
        )
        .unwrap();
    let e = match read(&cluster, &fixture::query("balances")) {
        Err(DbError::Guard(e)) => e,
        other => panic!("{:?}", other.map(|r| r.record)),
    };
    assert!(
        matches!(&e, GuardError::RoleSwitched { session, current } if session == "solvency_reader" && current == "lesser"),
        "{e}"
    );
}

#[test]
fn rules_functions_and_parents_are_refused_unless_allowed() {
    let cluster = cluster_with_whale();
    cluster
        .psql(
            "CREATE RULE no_whale AS ON INSERT TO balances DO INSTEAD NOTHING;
             CREATE TABLE ledger (account_id text, asset text, amount numeric) PARTITION BY LIST (asset);
             CREATE TABLE ledger_btc PARTITION OF ledger FOR VALUES IN ('BTC');
             INSERT INTO ledger SELECT * FROM balances;
             GRANT SELECT ON ledger, ledger_btc TO solvency_reader;
             CREATE TABLE parent_t (account_id text, asset text, amount numeric);
             CREATE TABLE child_t () INHERITS (parent_t);
             GRANT SELECT ON parent_t, child_t TO solvency_reader;
             CREATE FUNCTION public.adjust(numeric) RETURNS numeric AS $$ SELECT $1 $$ LANGUAGE sql;",
        )
        .unwrap();
    let e = guard_error(read(&cluster, &fixture::query("balances")));
    assert!(matches!(&e, GuardError::Rules(name) if name == "public.balances"), "{e}");
    let e = guard_error(read(&cluster, &fixture::query("ledger")));
    assert!(matches!(&e, GuardError::Kind { option: Some("allow_partitioned"), .. }), "{e}");
    let e = guard_error(read(&cluster, &fixture::query("parent_t")));
    assert!(matches!(&e, GuardError::Kind { option: Some("allow_inheritance"), .. }), "{e}");
    let e = guard_error(read(&cluster, "SELECT account_id, asset, public.adjust(amount) FROM public.ledger_btc"));
    assert!(matches!(&e, GuardError::Function(f) if f == "public.adjust"), "{e}");

    // Allowed, a partitioned table is read with its partitions checked and recorded.
    let mut allowed = config(&cluster, &fixture::query("ledger"));
    allowed.database.allow_partitioned = true;
    let read = runtime()
        .block_on(async {
            let stream = tokio::net::TcpStream::connect(("127.0.0.1", cluster.port())).await.unwrap();
            read_database(stream, &allowed, 100, &mut |_| {}).await
        })
        .unwrap();
    assert_eq!(read.ledger.accounts.len() as u64, ACCOUNTS + 1);
    let relations = read.record.identity.relations.unwrap();
    let kinds: Vec<(&str, &str, bool)> =
        relations.iter().map(|r| (r.name.as_str(), r.kind.as_str(), r.named)).collect();
    assert_eq!(kinds, [("ledger", "partitioned-table", true), ("ledger_btc", "partition", false)]);
}

#[test]
fn a_second_database_of_the_cluster_is_recorded_as_itself() {
    let cluster = cluster_with_whale();
    // The administrator copies the ledger's database and edits the copy.
    cluster.psql_in("template1", "CREATE DATABASE copy TEMPLATE postgres").unwrap();
    cluster.psql_in("copy", "DELETE FROM balances WHERE account_id = 'whale'").unwrap();
    let genuine = read(&cluster, &fixture::query("balances")).unwrap().record.identity;
    let mut copy_config = config(&cluster, &fixture::query("balances"));
    copy_config.database.dbname = "copy".into();
    let copy = runtime()
        .block_on(async {
            let stream = tokio::net::TcpStream::connect(("127.0.0.1", cluster.port())).await.unwrap();
            read_database(stream, &copy_config, 100, &mut |_| {}).await
        })
        .unwrap();
    let id = &copy.record.identity;
    // Same cluster, certificate and timeline: only the name and the OID tell them apart, which
    // is why both are recorded and the name is a mandatory pin (the OID survives a rename).
    assert_eq!(
        (&id.system_identifier, &id.server_cert_sha256, id.timeline),
        (&genuine.system_identifier, &genuine.server_cert_sha256, genuine.timeline)
    );
    assert_eq!(id.database, "copy");
    assert_ne!(id.database_oid, genuine.database_oid);
    assert_eq!(copy.ledger.accounts.len() as u64, ACCOUNTS);
    // The relations of a template copy keep their OIDs: they cannot tell the databases apart.
    assert_eq!(id.relations.as_ref().unwrap()[0].oid, genuine.relations.as_ref().unwrap()[0].oid);
}

#[test]
fn relations_reached_behind_the_parsers_back_are_found_by_their_locks() {
    let cluster = cluster_with_whale();
    cluster
        .psql(
            "CREATE TABLE public.closed (account_id text); INSERT INTO public.closed VALUES ('whale');
             GRANT SELECT ON public.closed TO solvency_reader;
             CREATE VIEW public.\"ba\u{212a}ances\" AS SELECT * FROM public.balances WHERE account_id <> 'whale';
             GRANT SELECT ON public.\"ba\u{212a}ances\" TO solvency_reader;",
        )
        .unwrap();
    // A built-in that runs SQL of its own: the plan shows only balances, the locks show closed.
    let hidden = "SELECT account_id, asset, amount FROM public.balances WHERE pg_catalog.strpos(\
                  pg_catalog.query_to_xml('SELECT account_id FROM public.closed', false, false, '')::text, account_id) = 0";
    let e = guard_error(read(&cluster, hidden));
    assert!(matches!(&e, GuardError::Unchecked(name) if name == "public.closed"), "{e}");
    // A view whose unquoted name folds differently outside ASCII (the Kelvin sign is not K).
    let e = guard_error(read(&cluster, "SELECT account_id, asset, amount FROM public.ba\u{212a}ances"));
    assert!(matches!(&e, GuardError::Kind { kind: "view", .. }), "{e}");
    // `TABLE name` is refused rather than missed.
    let e = guard_error(read(
        &cluster,
        "SELECT account_id, asset, amount FROM public.balances UNION ALL TABLE public.balances",
    ));
    assert!(matches!(&e, GuardError::Parse(_)), "{e}");
}
