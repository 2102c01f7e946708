//! The private cluster starts, serves TLS only, loads fixtures as the formula says, and can
//! have a streaming standby.

use testkit::fixture::{self, FixtureAsset};
use testkit::{ClusterOptions, PrivateCluster};

#[test]
fn a_cluster_loads_fixtures_that_match_the_formula_and_replicates_to_a_standby() {
    let cluster = PrivateCluster::start().unwrap();
    let assets = [FixtureAsset::new("BTC", 8), FixtureAsset::new("ETH", 18)];
    cluster.load_fixture("balances", 50, &assets).unwrap();
    assert_eq!(cluster.psql("SELECT count(*) FROM balances").unwrap(), "100");
    let btc =
        cluster.psql("SELECT (sum(amount) * 100000000)::numeric(40,0) FROM balances WHERE asset = 'BTC'").unwrap();
    assert_eq!(btc, fixture::expected_totals(50, 2)[0].to_string());
    let one =
        cluster.psql("SELECT amount FROM balances WHERE account_id = 'acct-000000001' AND asset = 'ETH'").unwrap();
    assert_eq!(one, format!("0.{:018}", fixture::base_units(1, 1)));
    assert_eq!(cluster.psql("SHOW ssl").unwrap(), "on");

    let standby = cluster.start_standby().unwrap();
    assert_eq!(standby.psql("SELECT pg_is_in_recovery()").unwrap(), "t");
    assert_ne!(standby.port(), cluster.port());
}

#[test]
fn a_cluster_without_tls_is_possible_for_refusal_tests() {
    let cluster = PrivateCluster::start_with(&ClusterOptions { tls: false, ..ClusterOptions::default() }).unwrap();
    assert_eq!(cluster.psql("SHOW ssl").unwrap(), "off");
}
