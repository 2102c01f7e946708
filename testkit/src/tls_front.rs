//! A TLS front for a plaintext test server (a local AWS API server, an Ethereum node): it
//! terminates TLS with a certificate made for the occasion for the names the test chooses,
//! signed by a CA of its own that the test pins, and relays bytes to the server. It runs on the
//! caller's tokio runtime and stops with it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};

use crate::cluster::{ClusterError, ServerIdentity};

/// A running TLS front.
pub struct TlsFront {
    addr: SocketAddr,
    identity: ServerIdentity,
    ca_path: PathBuf,
    _dir: tempfile::TempDir,
}

fn io(what: &str) -> impl FnOnce(std::io::Error) -> ClusterError + '_ {
    move |source| ClusterError::Io { what: what.to_owned(), source }
}

impl TlsFront {
    /// Serves TLS on a free port of 127.0.0.1 for `names` (besides `localhost`) and relays each
    /// connection's plaintext to `target`.
    pub async fn start(target: SocketAddr, names: &[String]) -> Result<Self, ClusterError> {
        let identity = ServerIdentity::generate_for(names)?;
        let dir =
            tempfile::Builder::new().prefix("solvency-tls-front-").tempdir().map_err(io("creating a directory"))?;
        let ca_path = dir.path().join("ca.pem");
        std::fs::write(&ca_path, &identity.ca_pem).map_err(io("writing ca.pem"))?;
        let cert = rustls::pki_types::CertificateDer::from(identity.cert_der.clone());
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(identity.key_der().into());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| ClusterError::Io { what: "TLS".into(), source: std::io::Error::other(e) })?
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .map_err(|e| ClusterError::Io { what: "TLS".into(), source: std::io::Error::other(e) })?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.map_err(io("binding the TLS front"))?;
        let addr = listener.local_addr().map_err(io("binding the TLS front"))?;
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(client).await else { return };
                    let Ok(mut server) = TcpStream::connect(target).await else { return };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
                });
            }
        });
        Ok(Self { addr, identity, ca_path, _dir: dir })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The CA the front's certificate chains to, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.identity.ca_pem
    }

    /// A file holding [`TlsFront::ca_pem`].
    pub fn ca_path(&self) -> &Path {
        &self.ca_path
    }

    /// Hex SHA-256 of the front's certificate.
    pub fn cert_sha256(&self) -> String {
        self.identity.cert_sha256()
    }
}
