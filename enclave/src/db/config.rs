//! The round configuration file (TOML): where the database is, how its server is pinned, where
//! the password comes from, the query, and the assets with their decimals. Unknown keys are
//! errors, so a misspelt setting never silently falls back to a default.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::ledger::MAX_DECIMALS;
pub use crate::tls::ServerPin;

/// Why a round configuration is unusable.
#[allow(missing_docs)] // fields are named for what they hold
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Syntax(#[from] toml::de::Error),
    #[error("[database] needs exactly one of `server_ca`, `server_ca_bundle` and `server_cert_sha256`")]
    ServerPin,
    #[error("`server_ca_bundle` {0:?} is not a built-in bundle (the one there is: \"aws-rds\")")]
    Bundle(String),
    #[error("[database.rds]: {0}")]
    Rds(String),
    #[error("`server_cert_sha256` must be 64 hex digits (the SHA-256 of the server certificate's DER)")]
    Fingerprint,
    #[error("`server_ca` {path}: {reason}")]
    Ca { path: PathBuf, reason: String },
    #[error("[database] names neither `password_env` nor `password_file`, and no password was given")]
    PasswordSource,
    #[error("[database] may name one of `password_env` and `password_file`, not both")]
    PasswordSources,
    #[error("the password environment variable {name} is not set or not UTF-8")]
    PasswordEnv { name: String },
    #[error("reading the password file {path}: {source}")]
    PasswordFile { path: PathBuf, source: std::io::Error },
    #[error("the query is empty")]
    EmptyQuery,
    #[error("asset {symbol:?}: decimals must be at most {MAX_DECIMALS}")]
    Decimals { symbol: String },
    #[error("at least one [[assets]] entry is needed")]
    NoAssets,
    #[error(transparent)]
    Reserves(#[from] crate::reserves::ReservesConfigError),
}

/// Whether SCRAM channel binding (`SCRAM-SHA-256-PLUS`) is required.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ChannelBindingPolicy {
    /// Refuse servers that do not offer it (the default).
    #[default]
    Require,
    /// Use it when offered; without it a TLS-terminating middlebox holding a certificate the
    /// pin accepts could relay the authentication. Logged as a warning.
    Prefer,
}

/// `[database]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// Host name: used for TLS server name checks and, for direct connections, to connect.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Database name.
    pub dbname: String,
    /// Role to log in as (read-only; see the operator docs for its grants).
    pub user: String,
    /// Environment variable holding the password.
    pub password_env: Option<String>,
    /// File holding the password (trailing newline ignored).
    pub password_file: Option<PathBuf>,
    /// A password handed over with the request (an enclave started with
    /// `--password-from-parent`); it takes the place of the two above. Never read from the file.
    #[serde(skip)]
    pub password_given: Option<Password>,
    /// PEM file of the CA(s) the server certificate must chain to.
    pub server_ca: Option<PathBuf>,
    /// Hex SHA-256 of the exact server certificate (DER).
    pub server_cert_sha256: Option<String>,
    /// A CA bundle compiled into the image: `"aws-rds"`, the Amazon RDS certificate authorities
    /// (with the host name checked, so an RDS instance can be pinned without a file).
    #[serde(default)]
    pub server_ca_bundle: Option<String>,
    /// The Amazon RDS instance this database is, whose identity the enclave reads from the AWS API.
    #[serde(default)]
    pub rds: Option<crate::aws::rds::RdsConfig>,
    /// Channel binding policy.
    #[serde(default)]
    pub channel_binding: ChannelBindingPolicy,
    /// Seconds allowed to connect and authenticate.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// The query: returns (account id, asset symbol, amount in whole units of the asset). Every
    /// relation it names must be schema-qualified.
    pub query: String,
    /// Let the query read a partitioned table (its partitions are checked and recorded).
    #[serde(default)]
    pub allow_partitioned: bool,
    /// Let the query read a table with inheritance children (they are checked and recorded).
    #[serde(default)]
    pub allow_inheritance: bool,
}

impl DatabaseConfig {
    /// The parent relations the configuration lets the query read through.
    pub fn allowances(&self) -> super::guard::Allowances {
        super::guard::Allowances { partitioned: self.allow_partitioned, inheritance: self.allow_inheritance }
    }
}

fn default_connect_timeout() -> u64 {
    30
}

/// `[[assets]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetConfig {
    /// The symbol as the query returns it.
    pub symbol: String,
    /// Decimal places of the asset's base unit (8 for BTC in satoshi, 18 for ETH in wei).
    pub decimals: u32,
}

/// A round configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoundConfig {
    /// The database.
    pub database: DatabaseConfig,
    /// The assets, in leaf order.
    pub assets: Vec<AssetConfig>,
    /// `[solvency]`: present when the round reads reserves.
    #[serde(default)]
    pub solvency: Option<crate::reserves::config::SolvencyConfig>,
    /// `[[chains]]`: where reserves are read.
    #[serde(default)]
    pub chains: Vec<crate::reserves::config::ChainConfig>,
    /// `[[reserves]]`: each asset's reserve sources.
    #[serde(default)]
    pub reserves: Vec<crate::reserves::config::AssetReserves>,
}

/// A password that never prints: the same type the parent sends one in.
pub type Password = channel::protocol::Secret;

impl RoundConfig {
    /// Reads and checks a configuration file; relative paths in it are relative to its directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Self::parse(&text, path.parent().unwrap_or(Path::new(".")))
    }

    /// Parses and checks configuration text; relative paths are resolved against `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Self, ConfigError> {
        let mut config: Self = toml::from_str(text)?;
        let db = &mut config.database;
        let pins = [db.server_ca.is_some(), db.server_cert_sha256.is_some(), db.server_ca_bundle.is_some()];
        if pins.iter().filter(|p| **p).count() != 1 {
            return Err(ConfigError::ServerPin);
        }
        // Neither is fine where the password comes from elsewhere (an enclave that takes it from
        // the parent); reading without one is refused when the password is needed.
        if db.password_env.is_some() && db.password_file.is_some() {
            return Err(ConfigError::PasswordSources);
        }
        let rds_ca = db.rds.as_mut().and_then(|r| r.api_ca.as_mut());
        for path in [&mut db.server_ca, &mut db.password_file].into_iter().flatten().chain(rds_ca) {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
        if db.query.trim().trim_end_matches(';').trim().is_empty() {
            return Err(ConfigError::EmptyQuery);
        }
        if config.assets.is_empty() {
            return Err(ConfigError::NoAssets);
        }
        if let Some(a) = config.assets.iter().find(|a| a.decimals > MAX_DECIMALS) {
            return Err(ConfigError::Decimals { symbol: a.symbol.clone() });
        }
        config.server_pin()?;
        if let Some(solvency) = config.solvency.as_mut() {
            if let Some(path) = solvency.ownership_signatures.as_mut() {
                if path.is_relative() {
                    *path = base.join(&*path);
                }
            }
        }
        config.reserves_config().check(&config.assets.iter().map(|a| (a.symbol.clone(), a.decimals)).collect::<Vec<_>>())?;
        if let Some(rds) = &config.database.rds {
            rds.endpoint().map_err(ConfigError::Rds)?;
        }
        Ok(config)
    }

    /// The reserves part of the configuration.
    pub fn reserves_config(&self) -> crate::reserves::ReservesConfig {
        crate::reserves::ReservesConfig {
            solvency: self.solvency.clone(),
            chains: self.chains.clone(),
            reserves: self.reserves.clone(),
        }
    }

    /// The server pin, with the CA file read.
    pub fn server_pin(&self) -> Result<ServerPin, ConfigError> {
        let db = &self.database;
        if let Some(bundle) = &db.server_ca_bundle {
            return match bundle.as_str() {
                "aws-rds" => Ok(ServerPin::Ca(crate::aws::rds::ca_roots())),
                other => Err(ConfigError::Bundle(other.to_owned())),
            };
        }
        if let Some(hex_pin) = &db.server_cert_sha256 {
            let mut pin = [0u8; 32];
            hex::decode_to_slice(hex_pin.trim(), &mut pin).map_err(|_| ConfigError::Fingerprint)?;
            return Ok(ServerPin::Sha256(pin));
        }
        let path = db.server_ca.as_ref().ok_or(ConfigError::ServerPin)?;
        let ca_error = |reason: String| ConfigError::Ca { path: path.clone(), reason };
        let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
        let certs = crate::tls::pem_certificates(&pem).map_err(ca_error)?;
        if certs.is_empty() {
            return Err(ca_error("no CERTIFICATE block".into()));
        }
        Ok(ServerPin::Ca(certs))
    }

    /// The database password, from the environment variable or file the configuration names.
    pub fn password(&self) -> Result<Password, ConfigError> {
        let db = &self.database;
        if let Some(given) = &db.password_given {
            return Ok(given.clone());
        }
        if let Some(name) = &db.password_env {
            return std::env::var(name).map(Password::new).map_err(|_| ConfigError::PasswordEnv { name: name.clone() });
        }
        let path = db.password_file.as_ref().ok_or(ConfigError::PasswordSource)?;
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::PasswordFile { path: path.clone(), source })?;
        Ok(Password::new(text.trim_end_matches(['\n', '\r']).to_owned()))
    }

    /// The query as sent inside `COPY (...) TO STDOUT`: without a trailing semicolon.
    pub fn query(&self) -> &str {
        self.database.query.trim().trim_end_matches(';').trim_end()
    }

    /// Asset symbols, in leaf order.
    pub fn symbols(&self) -> Vec<String> {
        self.assets.iter().map(|a| a.symbol.clone()).collect()
    }

    /// Decimals per asset, in leaf order.
    pub fn decimals(&self) -> Vec<u32> {
        self.assets.iter().map(|a| a.decimals).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[database]
host = "db.internal"
port = 5432
dbname = "exchange"
user = "solvency_reader"
password_env = "SOLVENCY_TEST_PASSWORD"
server_cert_sha256 = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
query = "SELECT account_id, asset, amount FROM balances;"

[[assets]]
symbol = "BTC"
decimals = 8
"#;

    #[test]
    fn a_good_configuration_parses() {
        let config = RoundConfig::parse(GOOD, Path::new("/etc")).unwrap();
        assert_eq!(config.query(), "SELECT account_id, asset, amount FROM balances");
        assert_eq!(config.database.channel_binding, ChannelBindingPolicy::Require);
        assert_eq!(config.symbols(), ["BTC"]);
        assert!(matches!(config.server_pin().unwrap(), ServerPin::Sha256(p) if p[1] == 0x11));
    }

    #[test]
    fn unknown_keys_and_bad_settings_are_errors() {
        let typo = GOOD.replace("dbname", "db_name");
        assert!(matches!(RoundConfig::parse(&typo, Path::new(".")), Err(ConfigError::Syntax(_))));
        let extra = format!("{GOOD}\n[extra]\nx = 1\n");
        assert!(matches!(RoundConfig::parse(&extra, Path::new(".")), Err(ConfigError::Syntax(_))));
        let both = GOOD.replace("query =", "server_ca = \"ca.pem\"\nquery =");
        assert!(matches!(RoundConfig::parse(&both, Path::new(".")), Err(ConfigError::ServerPin)));
        let short = GOOD.replace("eeff\"", "ee\"");
        assert!(matches!(RoundConfig::parse(&short, Path::new(".")), Err(ConfigError::Fingerprint)));
        let no_password = GOOD.replace("password_env = \"SOLVENCY_TEST_PASSWORD\"\n", "");
        let parsed = RoundConfig::parse(&no_password, Path::new(".")).unwrap();
        assert!(matches!(parsed.password(), Err(ConfigError::PasswordSource)), "needed, and named nowhere");
        let two = GOOD.replace("password_env =", "password_file = \"pw\"\npassword_env =");
        assert!(matches!(RoundConfig::parse(&two, Path::new(".")), Err(ConfigError::PasswordSources)));
        let empty = GOOD.replace("SELECT account_id, asset, amount FROM balances;", " ; ");
        assert!(matches!(RoundConfig::parse(&empty, Path::new(".")), Err(ConfigError::EmptyQuery)));
        let decimals = GOOD.replace("decimals = 8", "decimals = 39");
        assert!(matches!(RoundConfig::parse(&decimals, Path::new(".")), Err(ConfigError::Decimals { .. })));
        let binding = GOOD.replace("query =", "channel_binding = \"disable\"\nquery =");
        assert!(matches!(RoundConfig::parse(&binding, Path::new(".")), Err(ConfigError::Syntax(_))));
        let no_assets = format!("assets = []\n{}", GOOD.split("[[assets]]").next().unwrap_or_default());
        assert!(matches!(RoundConfig::parse(&no_assets, Path::new(".")), Err(ConfigError::NoAssets)));
    }

    #[test]
    fn the_ca_path_is_relative_to_the_file_and_must_hold_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), "not a certificate").unwrap();
        let text = GOOD.replace(
            "server_cert_sha256 = \"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"",
            "server_ca = \"ca.pem\"",
        );
        let err = RoundConfig::parse(&text, dir.path()).unwrap_err();
        assert!(matches!(&err, ConfigError::Ca { path, .. } if path == &dir.path().join("ca.pem")), "{err}");
    }

    #[test]
    fn the_deployment_example_parses() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/parent/round.toml");
        let config = RoundConfig::load(&example).unwrap();
        assert!(matches!(config.server_pin().unwrap(), ServerPin::Sha256(_)), "an enclave can only pin by fingerprint");
        assert_eq!(config.assets.len(), 3);
    }

    #[test]
    fn the_password_never_prints() {
        let p = Password::new("hunter2".into());
        assert!(!format!("{p:?}").contains("hunter2"));
    }
}
