//! Frames and the proxy over real sockets: round trips, every kind of bad frame refused while
//! the server keeps serving, and the allowlist.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use channel::frame::{self, FrameError, PROTOCOL_VERSION};
use channel::proxy::{self, Allowlist, ProxyError};
use channel::{Address, Framed, Listener, Stream};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Message {
    Ping(u64),
    Data(#[serde(with = "serde_bytes_compat")] Vec<u8>),
}

/// Bytes as a CBOR byte string without another dependency.
mod serde_bytes_compat {
    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
        }
        d.deserialize_bytes(V)
    }
}

/// A server answering each Ping(n) with Ping(n + 1), counting refused frames, serving every
/// connection until its peer misbehaves.
async fn echo_server(listener: Listener, refused: Arc<AtomicU64>) {
    loop {
        let Ok(stream) = listener.accept().await else { return };
        let refused = refused.clone();
        tokio::spawn(async move {
            let mut framed = Framed::with_limit(stream, 4096);
            loop {
                match framed.recv::<Message>().await {
                    Ok(Message::Ping(n)) => {
                        if framed.send(&Message::Ping(n + 1)).await.is_err() {
                            return;
                        }
                    }
                    Ok(Message::Data(_)) => {}
                    Err(FrameError::Closed) => return,
                    Err(_) => {
                        refused.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                }
            }
        });
    }
}

async fn ping(address: &Address, n: u64) -> u64 {
    let mut framed = Framed::new(Stream::connect(address).await.unwrap());
    framed.send(&Message::Ping(n)).await.unwrap();
    match framed.recv::<Message>().await.unwrap() {
        Message::Ping(m) => m,
        other => panic!("{other:?}"),
    }
}

async fn send_raw(address: &Address, bytes: &[u8]) {
    let mut stream = Stream::connect(address).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest).await;
}

fn framed_bytes(payload: &[u8]) -> Vec<u8> {
    let mut bytes = (payload.len() as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(payload);
    bytes
}

#[tokio::test]
async fn bad_frames_are_refused_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let address = Address::Unix(dir.path().join("control.sock"));
    let listener = Listener::bind(&address).await.unwrap();
    let refused = Arc::new(AtomicU64::new(0));
    tokio::spawn(echo_server(listener, refused.clone()));

    assert_eq!(ping(&address, 41).await, 42);
    let mut wrong_version = Vec::new();
    ciborium::into_writer(&(PROTOCOL_VERSION + 1, Message::Ping(1)), &mut wrong_version).unwrap();
    let mut trailing = frame::encode(&Message::Ping(1)).unwrap();
    trailing.push(0);
    let mut deep = vec![0x82, 0x01];
    deep.extend(std::iter::repeat_n(0x81, 10_000));
    deep.push(0x00);
    let bad: Vec<Vec<u8>> = vec![
        framed_bytes(&[0xff; 16]),                       // not CBOR
        framed_bytes(&wrong_version),                    // another protocol version
        framed_bytes(&trailing),                         // a message and then more
        framed_bytes(&frame::encode(&"hello").unwrap()), // the wrong message
        framed_bytes(&deep),                             // nested beyond the depth limit
        (1u32 << 30).to_be_bytes().to_vec(),             // announces a gigabyte
    ];
    for (i, bytes) in bad.iter().enumerate() {
        send_raw(&address, bytes).await;
        assert_eq!(ping(&address, i as u64).await, i as u64 + 1, "still serving after bad frame {i}");
    }
    assert_eq!(refused.load(Ordering::SeqCst), bad.len() as u64);

    // A frame too large to send is refused by the sender, before anything is written.
    let mut framed = Framed::with_limit(Stream::connect(&address).await.unwrap(), 64);
    assert!(matches!(framed.send(&Message::Data(vec![0; 100])).await, Err(FrameError::TooLarge { limit: 64 })));
}

#[test]
fn decoding_never_panics_on_truncations_of_a_real_frame() {
    let bytes = frame::encode(&Message::Data(vec![7; 300])).unwrap();
    for cut in 0..bytes.len() {
        assert!(frame::decode::<Message>(&bytes[..cut]).is_err());
    }
    assert_eq!(frame::decode::<Message>(&bytes).unwrap(), Message::Data(vec![7; 300]));
}

async fn tcp_echo() -> (u16, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicU64::new(0));
    let counter = connections.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    (port, connections)
}

#[tokio::test]
async fn the_proxy_relays_allowlisted_destinations_only() {
    let (port, connections) = tcp_echo().await;
    let (other_port, other_connections) = tcp_echo().await;
    let dir = tempfile::tempdir().unwrap();
    let proxy_address = Address::Unix(dir.path().join("proxy.sock"));
    let listener = Listener::bind(&proxy_address).await.unwrap();
    tokio::spawn(proxy::serve(listener, Allowlist::new([("127.0.0.1".to_owned(), port)])));

    let mut stream = proxy::connect_via(&proxy_address, "127.0.0.1", port).await.unwrap();
    stream.write_all(b"bytes relayed untouched \x00\xff").await.unwrap();
    let mut back = [0u8; 26];
    stream.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"bytes relayed untouched \x00\xff");
    assert_eq!(connections.load(Ordering::SeqCst), 1);

    let err = proxy::connect_via(&proxy_address, "127.0.0.1", other_port).await.unwrap_err();
    assert!(matches!(&err, ProxyError::Refused { reason, .. } if reason.contains("allowlist")), "{err}");
    assert_eq!(other_connections.load(Ordering::SeqCst), 0, "nothing reached the other destination");
    let err = proxy::connect_via(&proxy_address, "localhost", port).await.unwrap_err();
    assert!(matches!(err, ProxyError::Refused { .. }), "names are compared as given, not resolved");

    // The proxy listens over TCP too, and keeps serving after refusals.
    let tcp_listener = Listener::bind(&"tcp://127.0.0.1:0".parse().unwrap()).await.unwrap();
    let tcp_address = tcp_listener.local_address().unwrap();
    tokio::spawn(proxy::serve(tcp_listener, Allowlist::new([("127.0.0.1".to_owned(), port)])));
    let _ = proxy::connect_via(&tcp_address, "10.0.0.1", 5432).await.unwrap_err();
    let mut again = proxy::connect_via(&tcp_address, "127.0.0.1", port).await.unwrap();
    again.write_all(b"x").await.unwrap();
    let mut one = [0u8; 1];
    again.read_exact(&mut one).await.unwrap();
    assert_eq!(&one, b"x");
}

#[tokio::test]
async fn an_unreachable_allowed_destination_is_refused_with_the_reason() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let proxy_address = Address::Unix(dir.path().join("proxy.sock"));
    let listener = Listener::bind(&proxy_address).await.unwrap();
    tokio::spawn(proxy::serve(listener, Allowlist::new([("127.0.0.1".to_owned(), closed)])));
    let err = proxy::connect_via(&proxy_address, "127.0.0.1", closed).await.unwrap_err();
    assert!(matches!(&err, ProxyError::Refused { reason, .. } if reason.contains("unreachable")), "{err}");
}
