//! Outbound HTTPS from inside the enclave, which has no network of its own: a connection through
//! the parent's allowlisting proxy (or directly, for an operator's dry run outside an enclave),
//! TLS ending in this process with the server pinned ([`crate::tls`]), and one HTTP/1.1 request
//! on it whose answer is read to a size limit within a time limit. The parent relays ciphertext
//! only; it can withhold an answer but not change one.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;

use crate::tls::{client_config, ServerPin};

/// How a connection leaves the enclave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// Straight over TCP (outside an enclave: `check-db`, `check-reserves`, tests).
    Direct,
    /// Through the parent's proxy at this address.
    Proxy(channel::Address),
}

/// Why a request failed. None of these carries an answer the caller could mistake for data.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The proxy refused or could not be reached.
    #[error(transparent)]
    Proxy(#[from] channel::proxy::ProxyError),
    /// A direct connection failed.
    #[error("connecting to {host}:{port}: {source}")]
    Tcp {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// The error.
        source: std::io::Error,
    },
    /// The TLS configuration or handshake failed (a refused certificate says why).
    #[error("TLS with {host}: {reason}")]
    Tls {
        /// Host.
        host: String,
        /// What failed.
        reason: String,
    },
    /// HTTP failed (framing, a connection closed early).
    #[error("HTTP with {host}: {reason}")]
    Http {
        /// Host.
        host: String,
        /// What failed.
        reason: String,
    },
    /// The answer was larger than the caller accepts.
    #[error("the answer from {host} is larger than {limit} bytes")]
    TooLarge {
        /// Host.
        host: String,
        /// The limit.
        limit: usize,
    },
    /// Nothing complete arrived in time.
    #[error("{host} did not answer within {secs} s")]
    Timeout {
        /// Host.
        host: String,
        /// The limit.
        secs: u64,
    },
}

/// Opens a byte stream to `host:port` along `route` (TCP directly, or the proxy's stream).
pub async fn connect(route: &Route, host: &str, port: u16) -> Result<channel::Stream, NetError> {
    match route {
        Route::Direct => {
            let stream = tokio::net::TcpStream::connect((host, port)).await.map_err(|source| NetError::Tcp {
                host: host.to_owned(),
                port,
                source,
            })?;
            let _ = stream.set_nodelay(true);
            Ok(channel::Stream::Tcp(stream))
        }
        Route::Proxy(proxy) => Ok(channel::proxy::connect_via(proxy, host, port).await?),
    }
}

/// Where an HTTPS request goes and how its server is recognised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpsTarget {
    /// Host name (TLS server name and `Host` header).
    pub host: String,
    /// Port.
    pub port: u16,
    /// How the server's certificate is checked.
    pub pin: ServerPin,
}

/// An HTTPS answer.
#[derive(Clone, Debug)]
pub struct Answer {
    /// Status.
    pub status: http::StatusCode,
    /// Body, at most the limit asked for.
    pub body: Bytes,
    /// SHA-256 of the certificate the server presented.
    pub server_cert_sha256: [u8; 32],
}

/// Sends `request` to `target` along `route` on a fresh connection and reads the answer, at most
/// `limit` bytes of body, all within `timeout`.
pub async fn https(
    route: &Route,
    target: &HttpsTarget,
    request: http::Request<Bytes>,
    limit: usize,
    timeout: Duration,
) -> Result<Answer, NetError> {
    let host = target.host.clone();
    let exchange = async {
        let stream = connect(route, &target.host, target.port).await?;
        let tls_error = |reason: String| NetError::Tls { host: host.clone(), reason };
        let (config, presented) = client_config(&target.pin).map_err(|e| tls_error(e.to_string()))?;
        let name = rustls::pki_types::ServerName::try_from(target.host.clone())
            .map_err(|e| tls_error(format!("not a server name: {e}")))?;
        let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
        let tls = connector
            .connect(name, stream)
            .await
            .map_err(|e| tls_error(presented.refusal().unwrap_or_else(|| e.to_string())))?;
        let server_cert_sha256 =
            presented.sha256().ok_or_else(|| tls_error("the handshake completed without a certificate".into()))?;
        let http_error = |e: hyper::Error| NetError::Http { host: host.clone(), reason: e.to_string() };
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(tls)).await.map_err(http_error)?;
        let driver = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "HTTPS connection ended");
            }
        });
        let (parts, body) = request.into_parts();
        let response =
            sender.send_request(http::Request::from_parts(parts, Full::new(body))).await.map_err(http_error)?;
        let status = response.status();
        if response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .is_some_and(|n| n > limit as u64)
        {
            driver.abort();
            return Err(NetError::TooLarge { host: host.clone(), limit });
        }
        let body = Limited::new(response.into_body(), limit).collect().await.map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                NetError::TooLarge { host: host.clone(), limit }
            } else {
                NetError::Http { host: host.clone(), reason: e.to_string() }
            }
        })?;
        driver.abort();
        Ok(Answer { status, body: body.to_bytes(), server_cert_sha256 })
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| NetError::Timeout { host: target.host.clone(), secs: timeout.as_secs() })?
}

impl HttpsTarget {
    /// `host`, or `host:port` when the port is not 443: the `Host` header's value.
    pub fn authority(&self) -> String {
        if self.port == 443 {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// A `POST` of `body` to `path` on `target` with `content_type` (origin-form target, `Host` set).
pub fn post(
    target: &HttpsTarget,
    path: &str,
    content_type: &str,
    body: Bytes,
) -> Result<http::Request<Bytes>, http::Error> {
    http::Request::builder()
        .method(http::Method::POST)
        .uri(path)
        .header(http::header::HOST, target.authority())
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::CONTENT_LENGTH, body.len())
        .header(http::header::USER_AGENT, concat!("solvency-enclave/", env!("CARGO_PKG_VERSION")))
        .body(body)
}
