//! The attested database read (`../shared/BRIEF.md` §2 steps 2–3): TLS that ends in this
//! process and trusts only the pinned server, SCRAM with channel binding, one `REPEATABLE READ,
//! READ ONLY` snapshot whose identity is recorded, and the balances streamed into a validated
//! ledger with a digest of every row.

pub mod config;
pub mod copy_text;
pub mod guard;
pub mod record;
pub mod session;

pub use config::{ConfigError, RoundConfig};
pub use record::{DatabaseIdentity, DatabaseRecord};
pub use session::{
    attested_read, connect, connect_tcp, connect_via_proxy, read_database, DatabaseRead, Session, Snapshot,
};

use crate::ledger::LedgerError;

/// Why a database read failed. Nothing is proven after any of these.
#[allow(missing_docs)] // fields are named for what they hold
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("TLS client configuration: {0}")]
    TlsConfig(rustls::Error),
    #[error("connecting to {host}:{port}: {source}")]
    Tcp { host: String, port: u16, source: std::io::Error },
    #[error(transparent)]
    Proxy(#[from] channel::proxy::ProxyError),
    #[error("the database server does not offer TLS; refusing to go on without it (no credential was sent)")]
    NoTls,
    #[error("the database server is not the pinned one (no credential was sent): {0}")]
    UntrustedServer(String),
    #[error("connecting to the database timed out after {0} s")]
    Timeout(u64),
    #[error("connecting or authenticating to the database: {}", chain(.0))]
    Connect(#[source] tokio_postgres::Error),
    #[error("{what}: {}", chain(.source))]
    Query { what: &'static str, source: tokio_postgres::Error },
    #[error("the database identity query: {0}")]
    Identity(String),
    #[error("refusing the read: {0}")]
    Guard(guard::GuardError),
    #[error("the query's result: {0}")]
    Columns(String),
    #[error("the connection failed after {rows} row(s) were read; nothing was proven: {}", chain(.source))]
    Stream { rows: u64, source: tokio_postgres::Error },
    #[error("malformed COPY data at row {row}: {reason}")]
    CopyFormat { row: u64, reason: copy_text::CopyFormatError },
    #[error(transparent)]
    Rows(#[from] LedgerError),
    #[error("the database's RDS identity: {0}")]
    Aws(crate::aws::AwsError),
    #[error("the round configuration names an RDS instance, and no AWS credentials were given to read its identity")]
    AwsCredentials,
}

/// The error and its causes, since tokio-postgres keeps the reason (the server's message, the
/// refused authentication method) in the source.
fn chain(e: &tokio_postgres::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

impl DbError {
    /// Whether the input (the rows) was refused, as opposed to the read failing.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, Self::Rows(_))
    }
}
