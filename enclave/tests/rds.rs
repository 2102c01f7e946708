//! The RDS identity read against a local AWS API server (moto) behind TLS, with the database
//! reached under its RDS endpoint name through the parent's proxy, as an enclave reaches it: the
//! identity AWS reports is recorded, and an instance whose endpoint is not the server the
//! connection verified, or a round without credentials, is refused.

use std::path::Path;

use channel::proxy::{Allowlist, Destination};
use enclave::aws::{AwsCredentials, AwsError};
use enclave::db::{attested_read, DbError, RoundConfig};
use enclave::net::Route;
use testkit::aws::LocalAws;
use testkit::fixture::{self, FixtureAsset};
use testkit::tls_front::TlsFront;
use testkit::{ClusterOptions, PrivateCluster};

const REGION: &str = "us-east-1";

fn credentials() -> AwsCredentials {
    AwsCredentials {
        access_key_id: "AKIDTEST".into(),
        secret_access_key: channel::protocol::Secret::new("not-a-secret-to-moto".into()),
        session_token: None,
    }
}

struct World {
    cluster: PrivateCluster,
    aws: LocalAws,
    endpoint: String,
    runtime: tokio::runtime::Runtime,
    front: TlsFront,
    proxy: channel::Address,
    _proxy_dir: tempfile::TempDir,
}

/// A cluster whose certificate names the RDS endpoint moto made for "ledger", moto behind a TLS
/// front, and a proxy that maps the endpoint's name to the cluster.
fn world() -> World {
    let aws = LocalAws::start(None).expect("moto (pip install 'moto[server]')");
    let endpoint = aws.create_db_instance(REGION, "ledger").unwrap();
    aws.create_db_instance(REGION, "elsewhere").unwrap();
    let cluster =
        PrivateCluster::start_with(&ClusterOptions { extra_names: vec![endpoint.clone()], ..Default::default() })
            .unwrap();
    cluster.load_fixture("balances", 20, &[FixtureAsset::new("BTC", 8)]).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let front = runtime.block_on(TlsFront::start(([127, 0, 0, 1], aws.port()).into(), &[])).unwrap();
    let proxy_dir = tempfile::tempdir().unwrap();
    let proxy: channel::Address = format!("unix://{}", proxy_dir.path().join("proxy.sock").display()).parse().unwrap();
    let allow = Allowlist::new([
        Destination { host: endpoint.clone(), port: 5432, connect_to: Some(("127.0.0.1".into(), cluster.port())) },
        Destination { host: "localhost".into(), port: front.addr().port(), connect_to: None },
    ]);
    let listener = runtime.block_on(channel::Listener::bind(&proxy)).unwrap();
    runtime.spawn(channel::proxy::serve(listener, allow));
    World { cluster, aws, endpoint, runtime, front, proxy, _proxy_dir: proxy_dir }
}

impl World {
    fn config(&self, instance: &str) -> RoundConfig {
        let text = self.cluster.round_config(&fixture::query("balances"), &[("BTC", 8)]).unwrap();
        let text = text
            .replace("host = \"localhost\"", &format!("host = \"{}\"", self.endpoint))
            .replace(&format!("port = {}", self.cluster.port()), "port = 5432");
        let text = format!(
            "{text}\n[database.rds]\nregion = \"{REGION}\"\ninstance_id = \"{instance}\"\n\
             api_endpoint = \"https://localhost:{}\"\napi_ca = \"{}\"\n",
            self.front.addr().port(),
            self.front.ca_path().display()
        );
        // [database.rds] must follow [database]'s keys and precede [[assets]].
        let (database, assets) = text.split_once("\n[[assets]]").unwrap();
        let (assets, rds) = assets.split_once("\n[database.rds]").unwrap();
        let text = format!("{database}\n[database.rds]{rds}\n[[assets]]{assets}");
        RoundConfig::parse(&text, Path::new(".")).unwrap()
    }

    fn read(&self, config: &RoundConfig, aws: Option<&AwsCredentials>) -> Result<enclave::db::DatabaseRead, DbError> {
        let route = Route::Proxy(self.proxy.clone());
        self.runtime.block_on(attested_read(config, &route, 100, aws, &mut |_| {}))
    }
}

#[test]
fn the_instance_aws_reports_is_recorded() {
    let world = world();
    let read = world.read(&world.config("ledger"), Some(&credentials())).unwrap();
    let rds = read.record.identity.rds.expect("an RDS identity");
    assert_eq!(rds.account, world.aws.account());
    assert_eq!(rds.region, REGION);
    assert_eq!(rds.instance_id, "ledger");
    assert_eq!(rds.endpoint, world.endpoint);
    assert!(rds.dbi_resource_id.starts_with("db-"), "{}", rds.dbi_resource_id);
    assert_eq!(rds.arn, format!("arn:aws:rds:{REGION}:{}:db:ledger", world.aws.account()));
    assert_eq!(rds.api_host, "localhost");
    assert_eq!(read.ledger.accounts.len(), 20);
}

#[test]
fn another_instance_than_the_server_connected_to_is_refused() {
    let world = world();
    // The parent names another instance of the account: its endpoint is not the host whose
    // certificate the connection verified.
    let err = world.read(&world.config("elsewhere"), Some(&credentials())).unwrap_err();
    assert!(
        matches!(&err, DbError::Aws(AwsError::Identity(m)) if m.contains("elsewhere") && m.contains(&world.endpoint)),
        "{err}"
    );
    // An instance that does not exist is AWS's own refusal, named.
    let err = world.read(&world.config("nowhere"), Some(&credentials())).unwrap_err();
    assert!(matches!(&err, DbError::Aws(AwsError::Api { code, .. }) if code == "DBInstanceNotFound"), "{err}");
    // Without credentials the identity cannot be read, and the read is refused.
    let err = world.read(&world.config("ledger"), None).unwrap_err();
    assert!(matches!(err, DbError::AwsCredentials), "{err}");
}

#[test]
fn an_api_server_that_is_not_the_pinned_one_is_refused() {
    let world = world();
    let mut config = world.config("ledger");
    // The API's certificate must chain to the pinned CA: another CA refuses the handshake.
    let other = world.runtime.block_on(TlsFront::start(([127, 0, 0, 1], world.aws.port()).into(), &[])).unwrap();
    if let Some(rds) = config.database.rds.as_mut() {
        rds.api_ca = Some(other.ca_path().to_owned());
    }
    let err = world.read(&config, Some(&credentials())).unwrap_err();
    assert!(matches!(&err, DbError::Aws(AwsError::Net(enclave::net::NetError::Tls { .. }))), "{err}");
}
