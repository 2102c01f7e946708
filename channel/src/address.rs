//! Endpoint addresses: `vsock://CID:PORT`, `unix:///absolute/path`, `tcp://HOST:PORT`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Where to listen or connect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Address {
    /// A vsock context id and port (the enclave's CID, or 3 for the parent seen from inside).
    Vsock {
        /// Context id.
        cid: u32,
        /// Port.
        port: u32,
    },
    /// A Unix socket path.
    Unix(PathBuf),
    /// A TCP host (name or IP) and port.
    Tcp {
        /// Host name or IP address.
        host: String,
        /// Port.
        port: u16,
    },
}

/// An address that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("address {input:?}: {reason} (expected vsock://CID:PORT, unix:///path or tcp://HOST:PORT)")]
pub struct AddressError {
    input: String,
    reason: &'static str,
}

impl FromStr for Address {
    type Err = AddressError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let fail = |reason| AddressError { input: input.to_owned(), reason };
        let (scheme, rest) = input.split_once("://").ok_or_else(|| fail("no scheme"))?;
        match scheme {
            "vsock" => {
                let (cid, port) = rest.split_once(':').ok_or_else(|| fail("no port"))?;
                Ok(Self::Vsock {
                    cid: cid.parse().map_err(|_| fail("the CID is not a number"))?,
                    port: port.parse().map_err(|_| fail("the port is not a number"))?,
                })
            }
            "unix" => {
                if !rest.starts_with('/') {
                    return Err(fail("a Unix socket path must be absolute"));
                }
                Ok(Self::Unix(PathBuf::from(rest)))
            }
            "tcp" => {
                let (host, port) = rest.rsplit_once(':').ok_or_else(|| fail("no port"))?;
                let host = host.trim_start_matches('[').trim_end_matches(']');
                if host.is_empty() {
                    return Err(fail("no host"));
                }
                Ok(Self::Tcp { host: host.to_owned(), port: port.parse().map_err(|_| fail("bad port"))? })
            }
            _ => Err(fail("unknown scheme")),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Vsock { cid, port } => write!(f, "vsock://{cid}:{port}"),
            Self::Unix(path) => write!(f, "unix://{}", path.display()),
            Self::Tcp { host, port } if host.contains(':') => write!(f, "tcp://[{host}]:{port}"),
            Self::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_and_print_back() {
        for text in ["vsock://16:5005", "unix:///run/solvency/enclave.sock", "tcp://127.0.0.1:5432", "tcp://[::1]:80"] {
            let address: Address = text.parse().unwrap();
            assert_eq!(address.to_string(), text);
        }
        assert_eq!("vsock://3:8000".parse(), Ok(Address::Vsock { cid: 3, port: 8000 }));
        assert_eq!("tcp://db.internal:5432".parse(), Ok(Address::Tcp { host: "db.internal".into(), port: 5432 }));
    }

    #[test]
    fn bad_addresses_say_why() {
        for bad in [
            "",
            "5432",
            "http://x:1",
            "vsock://x:1",
            "vsock://3",
            "unix://relative",
            "tcp://:1",
            "tcp://h:99999",
            "tcp://h",
        ] {
            assert!(bad.parse::<Address>().is_err(), "{bad}");
        }
    }
}
