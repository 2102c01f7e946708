//! One attested read: connect over a caller-supplied stream with TLS pinned and SCRAM, open a
//! `REPEATABLE READ, READ ONLY` transaction that first pins its own name resolution and row
//! security ([`super::guard::TRANSACTION_SETTINGS`]) and then records the database's identity,
//! check what the configured query reads ([`super::guard`]), then stream it through
//! `COPY ... TO STDOUT` into the ledger, digesting every row. Memory holds the ledger being built
//! and one protocol message, never the result set.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::config::{ChannelBinding, SslMode};
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, IsolationLevel, SimpleQueryMessage, Transaction};

use super::config::{ChannelBindingPolicy, DatabaseConfig, Password, RoundConfig, ServerPin};
use super::copy_text::{CopyFormatError, CopyTextDecoder, Fields};
use super::guard::{self, GuardError, QueryNames, TRANSACTION_SETTINGS};
use super::record::{parse_identity, DatabaseIdentity, DatabaseRecord, RowDigest, IDENTITY_QUERY};
use super::DbError;
use crate::aws::AwsCredentials;
use crate::ledger::{Ledger, LedgerBuilder};
use crate::net::{self, NetError, Route};
use crate::tls::{client_config, PresentedCertificate};

/// Rows between progress reports.
const PROGRESS_EVERY: u64 = 1 << 16;

/// An authenticated connection to the database.
pub struct Session {
    client: Client,
    server_cert_sha256: [u8; 32],
    connection: tokio::task::JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

/// Classifies a failed connection: a refused certificate or a server without TLS gets its own
/// error, since both mean "not the database we were told to trust".
fn connect_error(e: tokio_postgres::Error, presented: &PresentedCertificate) -> DbError {
    if let Some(reason) = presented.refusal() {
        return DbError::UntrustedServer(reason);
    }
    let source = std::error::Error::source(&e).map(ToString::to_string);
    if source.as_deref() == Some("server does not support TLS") {
        return DbError::NoTls;
    }
    DbError::Connect(e)
}

impl Session {
    /// Authenticates over `stream` (TCP in tests and direct runs, the parent's vsock proxy in an
    /// enclave). TLS is required and verified against `pin` before anything else is sent; the
    /// password is only ever used for SCRAM, with channel binding unless the configuration
    /// says `prefer`.
    pub async fn connect<S>(
        stream: S,
        db: &DatabaseConfig,
        pin: &ServerPin,
        password: &Password,
    ) -> Result<Self, DbError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (tls_config, presented) = client_config(pin).map_err(DbError::TlsConfig)?;
        let mut tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config);
        let tls = <tokio_postgres_rustls::MakeRustlsConnect as MakeTlsConnect<S>>::make_tls_connect(&mut tls, &db.host)
            .map_err(|e| DbError::TlsConfig(rustls::Error::General(e.to_string())))?;
        let mut config = tokio_postgres::Config::new();
        config
            .host(&db.host)
            .user(&db.user)
            .dbname(&db.dbname)
            .password(password.expose().as_bytes())
            .application_name("solvency-enclave")
            .ssl_mode(SslMode::Require)
            .channel_binding(match db.channel_binding {
                ChannelBindingPolicy::Require => ChannelBinding::Require,
                ChannelBindingPolicy::Prefer => {
                    tracing::warn!(
                        "channel binding is only preferred: a server without SCRAM-SHA-256-PLUS is accepted"
                    );
                    ChannelBinding::Prefer
                }
            });
        let timeout = Duration::from_secs(db.connect_timeout_secs);
        let (client, connection) = tokio::time::timeout(timeout, config.connect_raw(stream, tls))
            .await
            .map_err(|_| DbError::Timeout(db.connect_timeout_secs))?
            .map_err(|e| connect_error(e, &presented))?;
        let server_cert_sha256 = presented
            .sha256()
            .ok_or_else(|| DbError::UntrustedServer("the connection completed without a server certificate".into()))?;
        let connection = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "database connection ended");
            }
        });
        Ok(Self { client, server_cert_sha256, connection })
    }

    /// Opens the read's transaction, pins its name resolution, row security and the settings that
    /// change what a query means, locks the relations `query` names (before the snapshot, so
    /// none can be swapped for another under its name while the read runs), and records the
    /// database's identity in its first query, which also fixes the snapshot every later
    /// statement sees. A session whose role switched after login is refused.
    pub async fn snapshot(&mut self, query: &str) -> Result<Snapshot<'_>, DbError> {
        let tx = self
            .client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(|source| DbError::Query { what: "starting the read-only transaction", source })?;
        tx.batch_execute(TRANSACTION_SETTINGS)
            .await
            .map_err(|source| DbError::Query { what: "pinning the transaction's settings", source })?;
        let names = QueryNames::parse(query).map_err(DbError::Guard)?;
        guard::lock_named(&tx, &names).await.map_err(DbError::Guard)?;
        let messages = tx
            .simple_query(IDENTITY_QUERY)
            .await
            .map_err(|source| DbError::Query { what: "reading the database identity", source })?;
        let row = messages
            .iter()
            .find_map(|m| match m {
                SimpleQueryMessage::Row(row) => Some(row),
                _ => None,
            })
            .ok_or_else(|| DbError::Identity("no row".into()))?;
        let columns: Vec<Option<&str>> = (0..row.len()).map(|i| row.get(i)).collect();
        let identity = parse_identity(&columns, self.server_cert_sha256).map_err(DbError::Identity)?;
        if let Some(session) = identity.session_role.as_ref().filter(|s| **s != identity.role) {
            return Err(DbError::Guard(GuardError::RoleSwitched {
                session: session.clone(),
                current: identity.role.clone(),
            }));
        }
        Ok(Snapshot { tx, identity })
    }
}

/// The open read-only transaction and the identity recorded at its start.
pub struct Snapshot<'a> {
    tx: Transaction<'a>,
    identity: DatabaseIdentity,
}

/// A validated ledger and the record of where it came from.
#[derive(Debug)]
pub struct DatabaseRead {
    /// The accounts.
    pub ledger: Ledger,
    /// The database record.
    pub record: DatabaseRecord,
}

fn check_columns(columns: &[tokio_postgres::Column]) -> Result<(), DbError> {
    let [id, asset, amount] = columns else {
        return Err(DbError::Columns(format!(
            "the query returns {} columns; it must return (account id, asset, amount)",
            columns.len()
        )));
    };
    let textual = [Type::TEXT, Type::VARCHAR, Type::BPCHAR, Type::NAME];
    let id_types = [Type::INT2, Type::INT4, Type::INT8, Type::UUID];
    let amount_types = [Type::NUMERIC, Type::INT2, Type::INT4, Type::INT8];
    let describe = |c: &tokio_postgres::Column| format!("column {:?} has type {}", c.name(), c.type_());
    if !textual.contains(id.type_()) && !id_types.contains(id.type_()) {
        return Err(DbError::Columns(format!("{}; an account id must be text, an integer or a uuid", describe(id))));
    }
    if !textual.contains(asset.type_()) {
        return Err(DbError::Columns(format!("{}; an asset symbol must be text", describe(asset))));
    }
    if !amount_types.contains(amount.type_()) {
        return Err(DbError::Columns(format!(
            "{}; an amount must be numeric or an integer (floating point is inexact)",
            describe(amount)
        )));
    }
    Ok(())
}

/// What stops a read while rows are being fed.
enum FeedError {
    Format(CopyFormatError),
}

impl From<CopyFormatError> for FeedError {
    fn from(e: CopyFormatError) -> Self {
        Self::Format(e)
    }
}

impl Snapshot<'_> {
    /// The identity recorded when the snapshot was taken.
    pub fn identity(&self) -> &DatabaseIdentity {
        &self.identity
    }

    /// Streams the configured query's rows into a ledger, reporting up to `limit` bad rows;
    /// `progress` hears the running row count. Ends the transaction.
    pub async fn read(
        self,
        config: &RoundConfig,
        limit: usize,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<DatabaseRead, DbError> {
        let query = config.query();
        let names = QueryNames::parse(query).map_err(DbError::Guard)?;
        let relations =
            guard::check(&self.tx, query, &names, config.database.allowances()).await.map_err(DbError::Guard)?;
        let statement =
            self.tx.prepare(query).await.map_err(|source| DbError::Query { what: "preparing the query", source })?;
        check_columns(statement.columns())?;
        let mut builder = LedgerBuilder::with_decimals(config.symbols(), config.decimals(), limit)?;
        let mut digest = RowDigest::default();
        let copy = format!("COPY ({query}) TO STDOUT");
        let stream = self
            .tx
            .copy_out(copy.as_str())
            .await
            .map_err(|source| DbError::Query { what: "starting COPY of the query", source })?;
        let mut stream = std::pin::pin!(stream);
        let mut decoder = CopyTextDecoder::default();
        let mut row = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|source| DbError::Stream { rows: row, source })?;
            decoder
                .feed(&chunk, &mut |[id, asset, amount]: Fields<'_>| {
                    row += 1;
                    let accepted = builder.push_nullable(row, id.as_deref(), asset.as_deref(), amount.as_deref());
                    if let (Some(units), Some(id), Some(asset)) = (accepted, &id, &asset) {
                        digest.add(id, asset, units);
                    }
                    if row.is_multiple_of(PROGRESS_EVERY) {
                        progress(row);
                    }
                    Ok::<_, FeedError>(())
                })
                .map_err(|FeedError::Format(reason)| DbError::CopyFormat { row: row + 1, reason })?;
        }
        decoder.finish().map_err(|reason| DbError::CopyFormat { row: row + 1, reason })?;
        progress(row);
        guard::check_locks(&self.tx, &relations).await.map_err(DbError::Guard)?;
        self.tx.commit().await.map_err(|source| DbError::Query { what: "ending the transaction", source })?;
        let ledger = builder.finish()?;
        let mut identity = self.identity;
        identity.relations = Some(relations);
        let record =
            DatabaseRecord { identity, query: query.to_owned(), rows: row, rows_sha256: hex::encode(digest.finish()) };
        Ok(DatabaseRead { ledger, record })
    }
}

/// Connects along `route` to the configured host and port: straight over TCP for an operator's
/// dry run and tests, or through the parent's proxy inside an enclave, where the proxy relays
/// bytes to the host if its allowlist has it and TLS runs between this process and the database.
pub async fn connect(config: &RoundConfig, route: &Route) -> Result<Session, DbError> {
    let db = &config.database;
    let pin = config.server_pin()?;
    let password = config.password()?;
    let timeout = Duration::from_secs(db.connect_timeout_secs);
    let stream = tokio::time::timeout(timeout, net::connect(route, &db.host, db.port))
        .await
        .map_err(|_| DbError::Timeout(db.connect_timeout_secs))?
        .map_err(|e| match e {
            NetError::Proxy(p) => DbError::Proxy(p),
            NetError::Tcp { host, port, source } => DbError::Tcp { host, port, source },
            other => DbError::Identity(other.to_string()),
        })?;
    Session::connect(stream, db, &pin, &password).await
}

/// Connects directly over TCP (see [`connect`]).
pub async fn connect_tcp(config: &RoundConfig) -> Result<Session, DbError> {
    connect(config, &Route::Direct).await
}

/// Connects through the parent's proxy at `proxy` (see [`connect`]).
pub async fn connect_via_proxy(config: &RoundConfig, proxy: &channel::Address) -> Result<Session, DbError> {
    connect(config, &Route::Proxy(proxy.clone())).await
}

/// The whole attested read along `route`: connect, snapshot, guards, stream, validate, and for an
/// RDS instance its identity from the AWS API (signed with `aws`), checked against the host the
/// connection verified.
pub async fn attested_read(
    config: &RoundConfig,
    route: &Route,
    limit: usize,
    aws: Option<&AwsCredentials>,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<DatabaseRead, DbError> {
    let mut session = connect(config, route).await?;
    let mut read = session.snapshot(config.query()).await?.read(config, limit, progress).await?;
    if let Some(rds) = &config.database.rds {
        let credentials = aws.ok_or(DbError::AwsCredentials)?;
        let identity = crate::aws::rds::read_identity(
            route,
            rds,
            &config.database.host,
            credentials,
            std::time::SystemTime::now(),
        )
        .await
        .map_err(DbError::Aws)?;
        read.record.identity.rds = Some(identity);
    }
    Ok(read)
}

/// The whole read over `stream`: connect, snapshot, stream, validate.
pub async fn read_database<S>(
    stream: S,
    config: &RoundConfig,
    limit: usize,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<DatabaseRead, DbError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut session = Session::connect(stream, &config.database, &config.server_pin()?, &config.password()?).await?;
    let read = session.snapshot(config.query()).await?.read(config, limit, progress).await;
    read
}
