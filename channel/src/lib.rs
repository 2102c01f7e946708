//! How the parent and the enclave talk. Production uses vsock; development and tests use Unix
//! or TCP sockets behind the same [`Address`] and [`Stream`] types. Control messages travel as
//! length-delimited, versioned CBOR frames with a size limit ([`frame`]); the enclave's only way
//! out to the network is the parent's [`proxy`], which forwards bytes (TLS stays end to end)
//! to allowlisted destinations only.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod address;
pub mod frame;
pub mod protocol;
pub mod proxy;
pub mod transport;

pub use address::{Address, AddressError};
pub use frame::{FrameError, Framed};
pub use transport::{Listener, Stream};
