//! Network peers that misbehave on purpose, run on the caller's tokio runtime:
//! - [`Forwarder`] relays TCP to a server and can cut the connection after a number of bytes,
//!   as a proxy crash or a network fault would;
//! - [`Impostor`] answers PostgreSQL's TLS request itself and presents a certificate of its
//!   own, as a man in the middle would, counting any plaintext a client sends it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::cluster::{ClusterError, ServerIdentity};

fn io(what: &str) -> impl FnOnce(std::io::Error) -> ClusterError + '_ {
    move |source| ClusterError::Io { what: what.to_owned(), source }
}

/// A TCP relay to `target`.
pub struct Forwarder {
    addr: SocketAddr,
    to_client: Arc<AtomicU64>,
    cut: Arc<AtomicBool>,
}

impl Forwarder {
    /// Relays every connection to `target`; after `cut_after` bytes from the server to the
    /// client (if set), both sides of that connection are dropped.
    pub async fn start(target: SocketAddr, cut_after: Option<u64>) -> Result<Self, ClusterError> {
        let listener = TcpListener::bind("127.0.0.1:0").await.map_err(io("binding the forwarder"))?;
        let addr = listener.local_addr().map_err(io("binding the forwarder"))?;
        let to_client = Arc::new(AtomicU64::new(0));
        let cut = Arc::new(AtomicBool::new(false));
        let (counter, cut_flag) = (to_client.clone(), cut.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (counter, cut_flag) = (counter.clone(), cut_flag.clone());
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(target).await {
                        relay(client, server, cut_after, counter, cut_flag).await;
                    }
                });
            }
        });
        Ok(Self { addr, to_client, cut })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Bytes relayed from the server to clients so far.
    pub fn bytes_to_client(&self) -> u64 {
        self.to_client.load(Ordering::SeqCst)
    }

    /// Whether a connection has been cut.
    pub fn has_cut(&self) -> bool {
        self.cut.load(Ordering::SeqCst)
    }
}

async fn relay(
    client: TcpStream,
    server: TcpStream,
    cut_after: Option<u64>,
    counter: Arc<AtomicU64>,
    cut: Arc<AtomicBool>,
) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
    });
    let mut buf = vec![0u8; 16 * 1024];
    let mut sent = 0u64;
    loop {
        let n = match server_read.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let allowed = match cut_after {
            Some(limit) => usize::try_from(limit.saturating_sub(sent)).unwrap_or(usize::MAX).min(n),
            None => n,
        };
        if client_write.write_all(&buf[..allowed]).await.is_err() {
            break;
        }
        sent += allowed as u64;
        counter.fetch_add(allowed as u64, Ordering::SeqCst);
        if allowed < n || cut_after.is_some_and(|limit| sent >= limit) {
            cut.store(true, Ordering::SeqCst);
            break;
        }
    }
    upstream.abort();
    // Dropping both halves closes the client's connection abruptly.
}

/// A man in the middle with a certificate of its own.
pub struct Impostor {
    addr: SocketAddr,
    tls_requests: Arc<AtomicU64>,
    plaintext_bytes: Arc<AtomicU64>,
}

impl Impostor {
    /// Listens for PostgreSQL clients and answers their TLS request with a certificate for
    /// `localhost` from a CA of its own.
    pub async fn start() -> Result<Self, ClusterError> {
        let identity = ServerIdentity::generate()?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = rustls::pki_types::PrivatePkcs8KeyDer::from(identity.key_der()).into();
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|b| b.with_no_client_auth().with_single_cert(vec![identity.cert_der.clone().into()], key))
            .map_err(|e| ClusterError::Io {
                what: format!("impostor TLS: {e}"),
                source: std::io::ErrorKind::InvalidData.into(),
            })?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.map_err(io("binding the impostor"))?;
        let addr = listener.local_addr().map_err(io("binding the impostor"))?;
        let tls_requests = Arc::new(AtomicU64::new(0));
        let plaintext_bytes = Arc::new(AtomicU64::new(0));
        let (requests, plaintext) = (tls_requests.clone(), plaintext_bytes.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (acceptor, requests, plaintext) = (acceptor.clone(), requests.clone(), plaintext.clone());
                tokio::spawn(async move {
                    // SSLRequest: length 8, code 80877103.
                    let mut request = [0u8; 8];
                    if stream.read_exact(&mut request).await.is_err() || request != [0, 0, 0, 8, 4, 210, 22, 47] {
                        return;
                    }
                    requests.fetch_add(1, Ordering::SeqCst);
                    if stream.write_all(b"S").await.is_err() {
                        return;
                    }
                    let Ok(mut tls) = acceptor.accept(stream).await else { return };
                    let mut buf = vec![0u8; 4096];
                    while let Ok(n) = tls.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        plaintext.fetch_add(n as u64, Ordering::SeqCst);
                    }
                });
            }
        });
        Ok(Self { addr, tls_requests, plaintext_bytes })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// TLS requests received (so a test knows the client really came here).
    pub fn tls_requests(&self) -> u64 {
        self.tls_requests.load(Ordering::SeqCst)
    }

    /// Application bytes a client sent after completing a TLS handshake with the impostor.
    pub fn plaintext_bytes(&self) -> u64 {
        self.plaintext_bytes.load(Ordering::SeqCst)
    }
}
