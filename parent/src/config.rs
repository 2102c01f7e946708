//! The parent's configuration file (TOML): where the enclave listens, where the proxy listens
//! and what it may reach, the round configuration and keys, the store, the HTTP API. Relative
//! paths are relative to the file. Secrets (the admin token) come from the environment or a file,
//! never from this file or the command line.

use std::path::{Path, PathBuf};

use channel::proxy::Destination;
use channel::Address;
use serde::Deserialize;

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The TOML is malformed, has unknown keys, or a value is invalid.
    #[error("{0}")]
    Invalid(String),
}

/// The parsed configuration.
#[derive(Clone, Debug)]
pub struct ParentConfig {
    /// The enclave's control address.
    pub enclave: Address,
    /// Where the proxy for the enclave's outbound connections listens.
    pub proxy_listen: Address,
    /// Destinations the proxy may reach (default: the database in the round configuration and
    /// the API endpoints it names).
    pub proxy_allow: Vec<Destination>,
    /// The round configuration file sent to the enclave.
    pub round_config: PathBuf,
    /// The proving-keys file made by the setup round.
    pub keys: PathBuf,
    /// The setup evidence (setup manifest and its attestation) beside the keys.
    pub setup: PathBuf,
    /// Accounts per batch, for setup rounds.
    pub batch_size: u64,
    /// Seconds between scheduled rounds (none: rounds only on request).
    pub interval_secs: Option<u64>,
    /// The bundle store directory.
    pub store: PathBuf,
    /// The HTTP API's bind address (none: no HTTP).
    pub http_listen: Option<String>,
    /// The environment variable holding the admin token for internal endpoints.
    pub admin_token_env: Option<String>,
    /// A file holding the admin token.
    pub admin_token_file: Option<PathBuf>,
    /// The environment variable holding the database password sent to the enclave.
    pub database_password_env: Option<String>,
    /// A file holding the database password sent to the enclave.
    pub database_password_file: Option<PathBuf>,
    /// A file holding AWS credentials sent to the enclave for its own AWS API calls, in the
    /// `credential_process` JSON form (`AccessKeyId`, `SecretAccessKey`, `SessionToken`).
    pub aws_credentials_file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    enclave: EnclaveSection,
    proxy: ProxySection,
    round: RoundSection,
    store: StoreSection,
    #[serde(default)]
    http: Option<HttpSection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnclaveSection {
    address: String,
    /// For an enclave started with `--password-from-parent` (production): where the database
    /// password it is sent with each round comes from.
    #[serde(default)]
    database_password_env: Option<String>,
    #[serde(default)]
    database_password_file: Option<PathBuf>,
    /// Where AWS credentials for the enclave's RDS identity read come from.
    #[serde(default)]
    aws_credentials_file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProxySection {
    listen: String,
    #[serde(default)]
    allow: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoundSection {
    config: PathBuf,
    keys: PathBuf,
    setup: PathBuf,
    batch_size: u64,
    #[serde(default)]
    interval_secs: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreSection {
    dir: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpSection {
    listen: String,
    #[serde(default)]
    admin_token_env: Option<String>,
    #[serde(default)]
    admin_token_file: Option<PathBuf>,
}

/// What the parent itself needs of the round configuration it sends (the enclave parses and
/// checks the whole of it): the database the proxy allows by default, and the asset count a
/// setup round makes keys for.
#[derive(Deserialize)]
pub struct RoundOutline {
    database: DatabaseOutline,
    #[serde(default)]
    assets: Vec<toml::Table>,
    #[serde(default)]
    solvency: Option<SolvencyOutline>,
    #[serde(default)]
    chains: Vec<ChainOutline>,
}

#[derive(Deserialize)]
struct SolvencyOutline {
    #[serde(default)]
    ownership_signatures: Option<PathBuf>,
}

#[derive(Deserialize)]
struct ChainOutline {
    endpoints: Vec<EndpointOutline>,
}

#[derive(Deserialize)]
struct EndpointOutline {
    url: String,
}

#[derive(Deserialize)]
struct DatabaseOutline {
    host: String,
    port: u16,
    #[serde(default)]
    rds: Option<RdsOutline>,
}

#[derive(Deserialize)]
struct RdsOutline {
    region: String,
    #[serde(default)]
    api_endpoint: Option<String>,
}

impl RoundOutline {
    /// Reads the outline of the round configuration text `text`.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(invalid)
    }

    /// The database's host and port.
    pub fn database(&self) -> (String, u16) {
        (self.database.host.clone(), self.database.port)
    }

    /// The ownership signatures file the configuration names, resolved against `base` (the
    /// configuration's directory): the parent reads it and hands it to the enclave.
    pub fn ownership_signatures(&self, base: &Path) -> Option<PathBuf> {
        let path = self.solvency.as_ref()?.ownership_signatures.as_ref()?;
        Some(if path.is_absolute() { path.clone() } else { base.join(path) })
    }

    /// Every destination the enclave reaches for this configuration: the database, the RDS API
    /// endpoint when it names an RDS instance, and each chain's JSON-RPC endpoints.
    pub fn destinations(&self) -> Result<Vec<Destination>, ConfigError> {
        let mut out = vec![Destination::from(self.database())];
        if let Some(rds) = &self.database.rds {
            let api = match &rds.api_endpoint {
                Some(url) => {
                    parse_host_port(url.trim_start_matches("https://").trim_end_matches('/')).or_else(|_| {
                        Ok::<_, ConfigError>((url.trim_start_matches("https://").trim_end_matches('/').to_owned(), 443))
                    })?
                }
                None => (format!("rds.{}.amazonaws.com", rds.region), 443),
            };
            out.push(Destination::from(api));
        }
        for endpoint in self.chains.iter().flat_map(|c| &c.endpoints) {
            let uri: axum::http::Uri = endpoint.url.parse().map_err(|e| invalid(format!("{}: {e}", endpoint.url)))?;
            let host = uri.host().ok_or_else(|| invalid(format!("{}: no host", endpoint.url)))?;
            let destination = Destination::from((host.trim_start_matches('[').trim_end_matches(']').to_owned(), uri.port_u16().unwrap_or(443)));
            if !out.contains(&destination) {
                out.push(destination);
            }
        }
        Ok(out)
    }

    /// How many `[[assets]]` the configuration lists.
    pub fn asset_count(&self) -> usize {
        self.assets.len()
    }
}

fn invalid(e: impl std::fmt::Display) -> ConfigError {
    ConfigError::Invalid(e.to_string())
}

/// Parses an allowlist entry: `host:port`, or `host:port=connect_host:connect_port` to connect
/// elsewhere for that name.
pub fn parse_destination(text: &str) -> Result<Destination, ConfigError> {
    let (name, connect_to) = match text.split_once('=') {
        Some((name, to)) => (name, Some(parse_host_port(to)?)),
        None => (text, None),
    };
    let (host, port) = parse_host_port(name)?;
    Ok(Destination { host, port, connect_to })
}

/// Parses `host:port` (IPv6 in brackets).
pub fn parse_host_port(text: &str) -> Result<(String, u16), ConfigError> {
    let (host, port) = text.rsplit_once(':').ok_or_else(|| invalid(format!("{text:?} is not host:port")))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = port.parse().map_err(|_| invalid(format!("{text:?}: bad port")))?;
    if host.is_empty() {
        return Err(invalid(format!("{text:?}: no host")));
    }
    Ok((host.to_owned(), port))
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })
}

impl ParentConfig {
    /// Loads and checks the configuration at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&read(path)?, base)
    }

    /// Parses configuration text, resolving relative paths against `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Self, ConfigError> {
        let file: File = toml::from_str(text).map_err(invalid)?;
        let resolve = |p: &PathBuf| if p.is_absolute() { p.clone() } else { base.join(p) };
        let round_config = resolve(&file.round.config);
        let proxy_allow = match file.proxy.allow {
            Some(list) => list.iter().map(|e| parse_destination(e)).collect::<Result<Vec<_>, _>>()?,
            None => {
                let outline = RoundOutline::parse(&read(&round_config)?)
                    .map_err(|e| invalid(format!("{}: {e}", round_config.display())))?;
                outline.destinations()?
            }
        };
        if file.round.batch_size == 0 {
            return Err(invalid("round.batch_size must be at least 1"));
        }
        if file.round.interval_secs == Some(0) {
            return Err(invalid("round.interval_secs must be at least 1"));
        }
        let http = file.http;
        if file.enclave.database_password_env.is_some() && file.enclave.database_password_file.is_some() {
            return Err(invalid("enclave: give at most one of database_password_env and database_password_file"));
        }
        if http.as_ref().is_some_and(|h| h.admin_token_env.is_some() && h.admin_token_file.is_some()) {
            return Err(invalid("http: give at most one of admin_token_env and admin_token_file"));
        }
        Ok(Self {
            enclave: file.enclave.address.parse().map_err(invalid)?,
            proxy_listen: file.proxy.listen.parse().map_err(invalid)?,
            proxy_allow,
            round_config,
            keys: resolve(&file.round.keys),
            setup: resolve(&file.round.setup),
            batch_size: file.round.batch_size,
            interval_secs: file.round.interval_secs,
            store: resolve(&file.store.dir),
            http_listen: http.as_ref().map(|h| h.listen.clone()),
            admin_token_env: http.as_ref().and_then(|h| h.admin_token_env.clone()),
            admin_token_file: http.as_ref().and_then(|h| h.admin_token_file.as_ref().map(resolve)),
            database_password_env: file.enclave.database_password_env,
            database_password_file: file.enclave.database_password_file.as_ref().map(resolve),
            aws_credentials_file: file.enclave.aws_credentials_file.as_ref().map(resolve),
        })
    }

    /// The AWS credentials to send to the enclave, from the file the configuration names, if any.
    pub fn aws_credentials(&self) -> Result<Option<channel::protocol::AwsCredentials>, ConfigError> {
        let Some(path) = &self.aws_credentials_file else {
            return Ok(None);
        };
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Process {
            access_key_id: String,
            secret_access_key: String,
            #[serde(default)]
            session_token: Option<String>,
        }
        let text = read(path)?;
        let parsed: Process = serde_json::from_str(&text).map_err(|_| {
            invalid(format!(
                "{}: not credential_process JSON (AccessKeyId, SecretAccessKey, SessionToken)",
                path.display()
            ))
        })?;
        Ok(Some(channel::protocol::AwsCredentials {
            access_key_id: parsed.access_key_id,
            secret_access_key: channel::protocol::Secret::new(parsed.secret_access_key),
            session_token: parsed.session_token.map(channel::protocol::Secret::new),
        }))
    }

    /// The admin token from the environment variable or file the configuration names, if any.
    pub fn admin_token(&self) -> Result<Option<String>, ConfigError> {
        secret("the admin token", self.admin_token_env.as_deref(), self.admin_token_file.as_deref())
    }

    /// The database password to send to the enclave, from the environment variable or file the
    /// configuration names, if any.
    pub fn database_password(&self) -> Result<Option<String>, ConfigError> {
        secret("the database password", self.database_password_env.as_deref(), self.database_password_file.as_deref())
    }
}

/// A secret from an environment variable or a file (a trailing newline is not part of it).
fn secret(what: &str, env: Option<&str>, file: Option<&Path>) -> Result<Option<String>, ConfigError> {
    if let Some(var) = env {
        return match std::env::var(var) {
            Ok(value) if !value.is_empty() => Ok(Some(value)),
            _ => Err(invalid(format!("{what}: the variable {var} is not set"))),
        };
    }
    match file {
        Some(path) => {
            let text = read(path)?;
            let value = text.trim_end_matches(['\n', '\r']);
            if value.is_empty() {
                return Err(invalid(format!("{what}: {} is empty", path.display())));
            }
            Ok(Some(value.to_owned()))
        }
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
[enclave]
address = "vsock://16:5000"
[proxy]
listen = "vsock://4294967295:8000"
allow = ["db.internal:5432"]
[round]
config = "round.toml"
keys = "keys.bin"
setup = "setup.cbor"
batch_size = 1024
interval_secs = 3600
[store]
dir = "/var/lib/solvency/store"
[http]
listen = "127.0.0.1:8080"
admin_token_env = "SOLVENCY_ADMIN_TOKEN"
"#;

    #[test]
    fn a_full_configuration_parses_with_paths_resolved() {
        let c = ParentConfig::parse(CONFIG, Path::new("/etc/solvency")).unwrap();
        assert_eq!(c.enclave, "vsock://16:5000".parse().unwrap());
        assert_eq!(c.proxy_allow, vec![Destination::from(("db.internal".to_owned(), 5432))]);
        assert_eq!(c.round_config, Path::new("/etc/solvency/round.toml"));
        assert_eq!(c.store, Path::new("/var/lib/solvency/store"));
        assert_eq!(c.interval_secs, Some(3600));
        assert_eq!(c.http_listen.as_deref(), Some("127.0.0.1:8080"));
    }

    #[test]
    fn the_deployment_example_parses() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/parent/parent.toml");
        let c = ParentConfig::load(&example).unwrap();
        assert_eq!(c.enclave, "vsock://16:5000".parse().unwrap());
        assert_eq!(c.proxy_listen, "vsock://4294967295:8000".parse().unwrap());
        assert_eq!(
            c.proxy_allow,
            vec![Destination::from(("ledger-db.internal".to_owned(), 5432))],
            "the round configuration's database"
        );
        assert!(c.database_password_file.is_some() && c.admin_token_file.is_some());
    }

    #[test]
    fn the_database_password_comes_from_a_file_or_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let none = ParentConfig::parse(CONFIG, dir.path()).unwrap();
        assert_eq!(none.database_password().unwrap(), None);

        let with_file = CONFIG.replace(
            "address = \"vsock://16:5000\"\n",
            "address = \"vsock://16:5000\"\ndatabase_password_file = \"db-password\"\n",
        );
        let c = ParentConfig::parse(&with_file, dir.path()).unwrap();
        assert_eq!(c.database_password_file.as_deref(), Some(dir.path().join("db-password").as_path()));
        assert!(matches!(c.database_password(), Err(ConfigError::Read { .. })));
        std::fs::write(dir.path().join("db-password"), "s3cret\n").unwrap();
        assert_eq!(c.database_password().unwrap().as_deref(), Some("s3cret"));
        std::fs::write(dir.path().join("db-password"), "\n").unwrap();
        assert!(c.database_password().is_err(), "an empty password is a mistake, not a password");

        let with_env = CONFIG.replace(
            "address = \"vsock://16:5000\"\n",
            "address = \"vsock://16:5000\"\ndatabase_password_env = \"SOLVENCY_TEST_UNSET_VARIABLE\"\n",
        );
        let c = ParentConfig::parse(&with_env, dir.path()).unwrap();
        assert!(c.database_password().unwrap_err().to_string().contains("SOLVENCY_TEST_UNSET_VARIABLE"));

        let both = with_file.replace("database_password_file", "database_password_env = \"X\"\ndatabase_password_file");
        assert!(ParentConfig::parse(&both, dir.path()).is_err());
    }

    #[test]
    fn the_default_allowlist_is_the_database() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("round.toml"), "[database]\nhost = \"db\"\nport = 6432\n").unwrap();
        let text = CONFIG.replace("allow = [\"db.internal:5432\"]\n", "");
        let c = ParentConfig::parse(&text, dir.path()).unwrap();
        assert_eq!(c.proxy_allow, vec![Destination::from(("db".to_owned(), 6432))]);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let base = Path::new("/");
        assert!(ParentConfig::parse(&format!("{CONFIG}\n[extra]\nx = 1\n"), base).is_err());
        assert!(ParentConfig::parse(&CONFIG.replace("vsock://16:5000", "http://x"), base).is_err());
        assert!(ParentConfig::parse(&CONFIG.replace("db.internal:5432", "db.internal"), base).is_err());
        assert!(ParentConfig::parse(&CONFIG.replace("batch_size = 1024", "batch_size = 0"), base).is_err());
    }
}
