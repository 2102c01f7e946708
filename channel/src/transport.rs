//! One stream and one listener type over vsock, Unix and TCP sockets, so the parent, the
//! enclave and the tests run the same code whatever carries the bytes.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio_vsock::{VsockAddr, VsockListener, VsockStream};

use crate::address::Address;

/// A connected byte stream.
#[derive(Debug)]
pub enum Stream {
    /// vsock.
    Vsock(VsockStream),
    /// A Unix socket.
    Unix(UnixStream),
    /// TCP.
    Tcp(TcpStream),
}

impl Stream {
    /// Connects to `address`.
    pub async fn connect(address: &Address) -> io::Result<Self> {
        Ok(match address {
            Address::Vsock { cid, port } => Self::Vsock(VsockStream::connect(VsockAddr::new(*cid, *port)).await?),
            Address::Unix(path) => Self::Unix(UnixStream::connect(path).await?),
            Address::Tcp { host, port } => {
                let stream = TcpStream::connect((host.as_str(), *port)).await?;
                // Control messages are small; Nagle would only add latency.
                stream.set_nodelay(true)?;
                Self::Tcp(stream)
            }
        })
    }
}

macro_rules! delegate {
    ($self:ident, $inner:ident => $call:expr) => {
        match $self.get_mut() {
            Stream::Vsock($inner) => $call,
            Stream::Unix($inner) => $call,
            Stream::Tcp($inner) => $call,
        }
    };
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        delegate!(self, s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => Pin::new(s).poll_shutdown(cx))
    }
}

/// A bound listener.
#[derive(Debug)]
pub enum Listener {
    /// vsock.
    Vsock(VsockListener),
    /// A Unix socket (the path is removed when the listener is dropped).
    Unix(UnixListener, std::path::PathBuf),
    /// TCP.
    Tcp(TcpListener),
}

impl Listener {
    /// Binds `address`. A stale Unix socket file at the path is replaced.
    pub async fn bind(address: &Address) -> io::Result<Self> {
        Ok(match address {
            Address::Vsock { cid, port } => Self::Vsock(VsockListener::bind(VsockAddr::new(*cid, *port))?),
            Address::Unix(path) => {
                if std::fs::symlink_metadata(path).is_ok_and(|m| {
                    use std::os::unix::fs::FileTypeExt;
                    m.file_type().is_socket()
                }) {
                    std::fs::remove_file(path)?;
                }
                Self::Unix(UnixListener::bind(path)?, path.clone())
            }
            Address::Tcp { host, port } => Self::Tcp(TcpListener::bind((host.as_str(), *port)).await?),
        })
    }

    /// The address actually bound (with the port chosen when 0 was asked for).
    pub fn local_address(&self) -> io::Result<Address> {
        Ok(match self {
            Self::Vsock(l) => {
                let a = l.local_addr()?;
                Address::Vsock { cid: a.cid(), port: a.port() }
            }
            Self::Unix(_, path) => Address::Unix(path.clone()),
            Self::Tcp(l) => {
                let a = l.local_addr()?;
                Address::Tcp { host: a.ip().to_string(), port: a.port() }
            }
        })
    }

    /// Accepts one connection.
    pub async fn accept(&self) -> io::Result<Stream> {
        Ok(match self {
            Self::Vsock(l) => Stream::Vsock(l.accept().await?.0),
            Self::Unix(l, _) => Stream::Unix(l.accept().await?.0),
            Self::Tcp(l) => {
                let (stream, _) = l.accept().await?;
                stream.set_nodelay(true)?;
                Stream::Tcp(stream)
            }
        })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Self::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}
