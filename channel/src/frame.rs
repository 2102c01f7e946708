//! Control messages: each is one frame, a 4-byte big-endian length and then a CBOR array
//! `[version, message]`. A frame over the size limit, bytes that are not the expected message,
//! or another protocol version is an error for that connection — never a panic, and never a
//! reason for the process to stop serving others.

use futures_util::{SinkExt, StreamExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::{Framed as CodecFramed, LengthDelimitedCodec};

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;
/// The default frame size limit: control messages are small; bulk data (keys, bundles) goes in
/// frames of its own whose limit the caller raises explicitly.
pub const DEFAULT_MAX_FRAME: usize = 1 << 20;
/// CBOR nesting allowed in a message.
const MAX_DEPTH: usize = 32;

/// Why a frame could not be sent or received.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the connection between frames.
    #[error("the peer closed the connection")]
    Closed,
    /// A frame longer than the limit (the connection is no longer usable).
    #[error("frame over the {limit}-byte limit")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// Reading or writing failed.
    #[error("i/o: {0}")]
    Io(std::io::Error),
    /// The frame is not CBOR of the expected shape.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// The peer speaks another protocol version.
    #[error("protocol version {got}, this program speaks {PROTOCOL_VERSION}")]
    Version {
        /// The peer's version.
        got: u32,
    },
}

/// A stream carrying framed messages.
pub struct Framed<S> {
    inner: CodecFramed<S, LengthDelimitedCodec>,
    limit: usize,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Framed<S> {
    /// Frames `stream` with the default size limit.
    pub fn new(stream: S) -> Self {
        Self::with_limit(stream, DEFAULT_MAX_FRAME)
    }

    /// Frames `stream`, refusing frames longer than `limit` bytes in either direction.
    pub fn with_limit(stream: S, limit: usize) -> Self {
        let codec = LengthDelimitedCodec::builder().length_field_length(4).max_frame_length(limit).new_codec();
        Self { inner: CodecFramed::new(stream, codec), limit }
    }

    /// Sends one message.
    pub async fn send<T: Serialize>(&mut self, message: &T) -> Result<(), FrameError> {
        let bytes = encode(message)?;
        if bytes.len() > self.limit {
            return Err(FrameError::TooLarge { limit: self.limit });
        }
        self.inner.send(bytes.as_slice()).await.map_err(FrameError::Io)
    }

    /// Receives one message.
    pub async fn recv<T: DeserializeOwned>(&mut self) -> Result<T, FrameError> {
        let frame = match self.inner.next().await {
            None => return Err(FrameError::Closed),
            Some(Err(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
                return Err(FrameError::TooLarge { limit: self.limit })
            }
            Some(Err(e)) => return Err(FrameError::Io(e)),
            Some(Ok(frame)) => frame,
        };
        decode(&frame)
    }
}

/// Encodes one message as a frame payload.
pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, FrameError> {
    let mut bytes = Vec::new();
    ciborium::into_writer(&(PROTOCOL_VERSION, message), &mut bytes)
        .map_err(|e| FrameError::Malformed(e.to_string()))?;
    Ok(bytes)
}

/// Decodes one frame's payload; trailing bytes are malformed.
pub fn decode<T: DeserializeOwned>(frame: &[u8]) -> Result<T, FrameError> {
    let mut reader = std::io::Cursor::new(frame);
    let (version, value): (u32, ciborium::Value) =
        ciborium::de::from_reader_with_recursion_limit(&mut reader, MAX_DEPTH)
            .map_err(|e| FrameError::Malformed(e.to_string()))?;
    if usize::try_from(reader.position()).ok() != Some(frame.len()) {
        return Err(FrameError::Malformed("trailing bytes after the message".into()));
    }
    if version != PROTOCOL_VERSION {
        return Err(FrameError::Version { got: version });
    }
    value.deserialized().map_err(|e| FrameError::Malformed(e.to_string()))
}

/// Writes exactly one frame, without buffering: for a handshake after which the stream carries
/// something else.
pub async fn write_one<S: AsyncWrite + Unpin, T: Serialize>(
    stream: &mut S,
    message: &T,
    limit: usize,
) -> Result<(), FrameError> {
    use tokio::io::AsyncWriteExt;
    let bytes = encode(message)?;
    let len = u32::try_from(bytes.len()).ok().filter(|l| *l as usize <= limit).ok_or(FrameError::TooLarge { limit })?;
    stream.write_all(&len.to_be_bytes()).await.map_err(FrameError::Io)?;
    stream.write_all(&bytes).await.map_err(FrameError::Io)?;
    stream.flush().await.map_err(FrameError::Io)
}

/// Reads exactly one frame and nothing beyond it (see [`write_one`]).
pub async fn read_one<S: AsyncRead + Unpin, T: DeserializeOwned>(
    stream: &mut S,
    limit: usize,
) -> Result<T, FrameError> {
    use tokio::io::AsyncReadExt;
    let mut len = [0u8; 4];
    match stream.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(FrameError::Io(e)),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > limit {
        return Err(FrameError::TooLarge { limit });
    }
    let mut frame = vec![0u8; len];
    stream.read_exact(&mut frame).await.map_err(FrameError::Io)?;
    decode(&frame)
}
