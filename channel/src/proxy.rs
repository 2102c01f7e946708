//! The parent's outbound proxy for the enclave, which has no network of its own. The enclave
//! opens a connection to the proxy and names its destination in one frame; the proxy connects
//! only if the destination is on the allowlist (by default the database's host and port and
//! nothing else), answers, and from then on relays bytes both ways without reading them: TLS
//! runs end to end between the enclave and the destination.

use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;

use crate::address::Address;
use crate::frame::{read_one, write_one, FrameError};
use crate::transport::{Listener, Stream};

/// Handshake frames are tiny; anything longer is not a handshake.
const HANDSHAKE_LIMIT: usize = 1024;

/// The enclave's request: where to connect.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectRequest {
    /// Destination host, exactly as on the allowlist.
    pub host: String,
    /// Destination port.
    pub port: u16,
}

/// The proxy's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConnectReply {
    /// Connected; raw bytes follow.
    Connected,
    /// Not connected, and why.
    Refused(String),
}

/// Why a proxied connection was not made.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The handshake failed.
    #[error("proxy handshake: {0}")]
    Frame(#[from] FrameError),
    /// Reaching the proxy failed.
    #[error("connecting to the proxy at {address}: {source}")]
    Connect {
        /// The proxy's address.
        address: String,
        /// The error.
        source: std::io::Error,
    },
    /// The proxy refused.
    #[error("the proxy refused {host}:{port}: {reason}")]
    Refused {
        /// Requested host.
        host: String,
        /// Requested port.
        port: u16,
        /// The proxy's reason.
        reason: String,
    },
}

/// One destination the proxy may connect to, named as the enclave names it, and optionally
/// where to connect for it instead of resolving the name (like curl's `--resolve`: a fixed
/// address for a name, or a local stand-in in tests). TLS still checks the name inside the
/// enclave, so a wrong address only fails the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destination {
    /// Host name as the enclave requests it.
    pub host: String,
    /// Port as the enclave requests it.
    pub port: u16,
    /// Where to connect instead, if not to `host:port`.
    pub connect_to: Option<(String, u16)>,
}

impl From<(String, u16)> for Destination {
    fn from((host, port): (String, u16)) -> Self {
        Self { host, port, connect_to: None }
    }
}

/// Destinations the proxy may connect to.
#[derive(Clone, Debug, Default)]
pub struct Allowlist(Vec<Destination>);

impl Allowlist {
    /// An allowlist of exactly these destinations.
    pub fn new<D: Into<Destination>>(entries: impl IntoIterator<Item = D>) -> Self {
        Self(entries.into_iter().map(Into::into).collect())
    }

    /// Whether `host:port` may be reached (host names compare case-insensitively).
    pub fn allows(&self, host: &str, port: u16) -> bool {
        self.find(host, port).is_some()
    }

    fn find(&self, host: &str, port: u16) -> Option<&Destination> {
        self.0.iter().find(|d| d.port == port && d.host.eq_ignore_ascii_case(host))
    }
}

/// Serves proxied connections on `listener` until it fails.
pub async fn serve(listener: Listener, allowlist: Allowlist) -> std::io::Result<()> {
    serve_observed(listener, allowlist, |_, _, _| {}).await
}

/// Serves like [`serve`], telling `decided(host, port, allowed)` about every request (for metrics).
pub async fn serve_observed(
    listener: Listener,
    allowlist: Allowlist,
    decided: impl Fn(&str, u16, bool) + Send + Sync + 'static,
) -> std::io::Result<()> {
    let decided = std::sync::Arc::new(decided);
    loop {
        let stream = listener.accept().await?;
        let allowlist = allowlist.clone();
        let decided = std::sync::Arc::clone(&decided);
        tokio::spawn(async move {
            if let Err(e) = relay(stream, &allowlist, &*decided).await {
                tracing::warn!(error = %e, "proxied connection ended with an error");
            }
        });
    }
}

async fn relay(
    mut stream: Stream,
    allowlist: &Allowlist,
    decided: &(dyn Fn(&str, u16, bool) + Sync),
) -> Result<(), ProxyError> {
    let request: ConnectRequest = read_one(&mut stream, HANDSHAKE_LIMIT).await?;
    let refuse = |reason: String| ProxyError::Refused { host: request.host.clone(), port: request.port, reason };
    let destination = allowlist.find(&request.host, request.port);
    let allowed = destination.is_some();
    decided(&request.host, request.port, allowed);
    let Some(destination) = destination else {
        tracing::warn!(host = %request.host, port = request.port, "refused: destination not on the allowlist");
        let reason = "destination not on the allowlist".to_owned();
        write_one(&mut stream, &ConnectReply::Refused(reason.clone()), HANDSHAKE_LIMIT).await?;
        return Err(refuse(reason));
    };
    let (connect_host, connect_port) =
        destination.connect_to.clone().unwrap_or_else(|| (request.host.clone(), request.port));
    let mut upstream = match TcpStream::connect((connect_host.as_str(), connect_port)).await {
        Ok(upstream) => upstream,
        Err(e) => {
            let reason = format!("unreachable: {e}");
            write_one(&mut stream, &ConnectReply::Refused(reason.clone()), HANDSHAKE_LIMIT).await?;
            return Err(refuse(reason));
        }
    };
    let _ = upstream.set_nodelay(true);
    write_one(&mut stream, &ConnectReply::Connected, HANDSHAKE_LIMIT).await?;
    tracing::info!(host = %request.host, port = request.port, "relaying");
    // Errors here are the ends hanging up, which ends the relay either way.
    let _ = tokio::io::copy_bidirectional(&mut stream, &mut upstream).await;
    Ok(())
}

/// Opens a connection to `host:port` through the proxy at `proxy`.
pub async fn connect_via(proxy: &Address, host: &str, port: u16) -> Result<Stream, ProxyError> {
    let mut stream =
        Stream::connect(proxy).await.map_err(|source| ProxyError::Connect { address: proxy.to_string(), source })?;
    write_one(&mut stream, &ConnectRequest { host: host.to_owned(), port }, HANDSHAKE_LIMIT).await?;
    match read_one(&mut stream, HANDSHAKE_LIMIT).await? {
        ConnectReply::Connected => Ok(stream),
        ConnectReply::Refused(reason) => Err(ProxyError::Refused { host: host.to_owned(), port, reason }),
    }
}
