//! A local AWS API server for tests: moto (`python3 -m moto.server`, from the Python registry)
//! started on a free port for the test and stopped when dropped. It answers the Query API
//! (RDS `CreateDBInstance`/`DescribeDBInstances`, STS) as AWS does and accepts any SigV4
//! credentials. Put a [`crate::tls_front::TlsFront`] before it: the enclave speaks only TLS.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cluster::ClusterError;

/// A running moto server.
pub struct LocalAws {
    child: Child,
    port: u16,
    account: String,
}

/// The account moto reports unless told otherwise.
pub const DEFAULT_ACCOUNT: &str = "123456789012";

fn io(what: &str) -> impl FnOnce(std::io::Error) -> ClusterError + '_ {
    move |source| ClusterError::Io { what: what.to_owned(), source }
}

impl LocalAws {
    /// Starts moto for `account` (12 digits; `None`: [`DEFAULT_ACCOUNT`]). Fails with the
    /// command to install it if moto is missing.
    pub fn start(account: Option<&str>) -> Result<Self, ClusterError> {
        let account = account.unwrap_or(DEFAULT_ACCOUNT).to_owned();
        let mut last = None;
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(io("finding a free port"))?
                .port();
            let child = Command::new("python3")
                .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
                .env("MOTO_ACCOUNT_ID", &account)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(io("starting python3 -m moto.server (pip install 'moto[server]')"))?;
            let mut server = Self { child, port, account: account.clone() };
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(30) {
                if let Ok(Some(status)) = server.child.try_wait() {
                    last = Some(ClusterError::Command {
                        program: "python3 -m moto.server".into(),
                        status: status.to_string(),
                        stderr: "moto is not installed (pip install 'moto[server]'), or the port was taken".into(),
                    });
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Ok(server);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = server.child.kill();
        }
        Err(last.unwrap_or_else(|| ClusterError::Io {
            what: "waiting for moto to listen".into(),
            source: std::io::Error::from(std::io::ErrorKind::TimedOut),
        }))
    }

    /// Its plaintext port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The account it reports.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// Sends one Query API request to `service` in `region` and returns the answer's status and
    /// body. moto routes by the credential scope of a SigV4-shaped `Authorization` header and
    /// checks no signature.
    pub fn query(&self, service: &str, region: &str, form: &str) -> Result<(u16, String), ClusterError> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).map_err(io("connecting to moto"))?;
        let request = format!(
            "POST / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Authorization: AWS4-HMAC-SHA256 Credential=AKIDTEST/20260101/{region}/{service}/aws4_request, SignedHeaders=host, Signature=00\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{form}",
            self.port,
            form.len()
        );
        stream.write_all(request.as_bytes()).map_err(io("writing to moto"))?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).map_err(io("reading from moto"))?;
        let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
        Ok((status, body))
    }

    /// Creates a PostgreSQL instance `id` in `region` and returns its endpoint address.
    pub fn create_db_instance(&self, region: &str, id: &str) -> Result<String, ClusterError> {
        let form = format!(
            "Action=CreateDBInstance&Version=2014-10-31&DBInstanceIdentifier={id}&DBInstanceClass=db.t3.micro\
             &Engine=postgres&AllocatedStorage=20&MasterUsername=admin1&MasterUserPassword=secretpass123"
        );
        let (status, body) = self.query("rds", region, &form)?;
        let failed = |why: &str| ClusterError::Command {
            program: "moto CreateDBInstance".into(),
            status: status.to_string(),
            stderr: format!("{why}: {body}"),
        };
        if status != 200 {
            return Err(failed("refused"));
        }
        let start = body.find("<Address>").ok_or_else(|| failed("no endpoint"))? + "<Address>".len();
        let end = body[start..].find("</Address>").ok_or_else(|| failed("no endpoint"))? + start;
        Ok(body[start..end].to_owned())
    }
}

impl Drop for LocalAws {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
