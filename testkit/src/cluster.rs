//! A private PostgreSQL cluster: `initdb` into a temporary directory, TLS with a CA and server
//! certificate generated for the occasion, `hostssl`-only SCRAM authentication for TCP, a
//! read-only role for the enclave, and `pg_ctl stop` when dropped.
//!
//! When the tests run as root (as in CI), the cluster runs as the `postgres` system user, since
//! PostgreSQL refuses to run as root.

use std::fmt::Write as _;
use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rand::distributions::Alphanumeric;
use rand::Rng;
use sha2::{Digest, Sha256};

/// The role the enclave reads as.
pub const READER_ROLE: &str = "solvency_reader";
/// The role a standby replicates as.
const REPLICATION_ROLE: &str = "replicator";
/// The cluster's superuser, reachable only over the cluster's private Unix socket.
const ADMIN_ROLE: &str = "admin";

/// What went wrong starting or driving the cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No PostgreSQL server binaries were found.
    #[error("PostgreSQL server binaries (initdb, pg_ctl) were not found on PATH or under /usr/lib/postgresql")]
    NoPostgres,
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A PostgreSQL program exited unsuccessfully.
    #[error("{program} failed ({status}): {stderr}")]
    Command {
        /// The program.
        program: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// Certificate generation failed.
    #[error("certificate generation: {0}")]
    Certificate(#[from] rcgen::Error),
    /// Running as root, but there is no `postgres` user to run the server as.
    #[error("running as root and no `postgres` system user exists to run the server")]
    NoServerUser,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ClusterError {
    let what = what.into();
    move |source| ClusterError::Io { what, source }
}

/// How to start a cluster.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// Serve TLS (and accept TCP clients only over it). Off only to test that clients refuse it.
    pub tls: bool,
    /// The pg_hba authentication method for TCP clients: `scram-sha-256`, or a weaker one
    /// (`password`, `md5`) to test that clients refuse it.
    pub auth_method: &'static str,
    /// More host names the server certificate names, besides `localhost` and 127.0.0.1 (an
    /// RDS endpoint's name, say, reached through a proxy that maps it to this cluster).
    pub extra_names: Vec<String>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self { tls: true, auth_method: "scram-sha-256", extra_names: Vec::new() }
    }
}

/// The certificates a cluster serves and a client pins.
#[derive(Clone, Debug)]
pub struct ServerIdentity {
    /// The CA that issued the server certificate, PEM.
    pub ca_pem: String,
    /// The server certificate, DER.
    pub cert_der: Vec<u8>,
    cert_pem: String,
    key_pem: String,
    key_pkcs8: Vec<u8>,
}

impl ServerIdentity {
    /// A fresh CA and a server certificate for `localhost` and 127.0.0.1.
    pub fn generate() -> Result<Self, ClusterError> {
        Self::generate_for(&[])
    }

    /// A fresh CA and a server certificate for `localhost`, 127.0.0.1 and `extra_names`.
    pub fn generate_for(extra_names: &[String]) -> Result<Self, ClusterError> {
        let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name.push(rcgen::DnType::CommonName, "solvency testkit CA");
        let ca_cert = ca.self_signed(&ca_key)?;
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        names.extend(extra_names.iter().cloned());
        let mut server = rcgen::CertificateParams::new(names)?;
        server.distinguished_name.push(rcgen::DnType::CommonName, "localhost");
        let cert = server.signed_by(&key, &ca_cert, &ca_key)?;
        Ok(Self {
            ca_pem: ca_cert.pem(),
            cert_der: cert.der().to_vec(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            key_pkcs8: key.serialize_der(),
        })
    }

    /// The server certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The server's private key, PKCS#8 DER.
    pub fn key_der(&self) -> Vec<u8> {
        self.key_pkcs8.clone()
    }

    /// Hex SHA-256 of the server certificate's DER, as a client pins it.
    pub fn cert_sha256(&self) -> String {
        hex::encode(Sha256::digest(&self.cert_der))
    }
}

/// A running private cluster; stopped and deleted when dropped.
pub struct PrivateCluster {
    dir: tempfile::TempDir,
    data: PathBuf,
    bin: PathBuf,
    owner: Option<(nix::unistd::Uid, nix::unistd::Gid)>,
    port: u16,
    identity: ServerIdentity,
    ca_path: PathBuf,
    reader_password: String,
    replication_password: String,
    tls: bool,
    auth_method: &'static str,
}

fn random_password() -> String {
    rand::thread_rng().sample_iter(&Alphanumeric).take(24).map(char::from).collect()
}

fn free_port() -> Result<u16, ClusterError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io("finding a free port"))?;
    Ok(listener.local_addr().map_err(io("finding a free port"))?.port())
}

/// The directory holding `initdb` and `pg_ctl`: `$PG_BIN`, else PATH, else the newest
/// `/usr/lib/postgresql/<version>/bin`.
fn find_bin_dir() -> Result<PathBuf, ClusterError> {
    if let Some(dir) = std::env::var_os("PG_BIN").map(PathBuf::from) {
        return Ok(dir);
    }
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if has_tools(&dir) {
                // Debian links only some tools onto PATH; the real directory has them all.
                let real = fs::canonicalize(dir.join("pg_ctl")).ok().and_then(|p| p.parent().map(Path::to_path_buf));
                return Ok(real.filter(|d| has_tools(d)).unwrap_or(dir));
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| ClusterError::NoPostgres)?
        .filter_map(Result::ok)
        .filter_map(|e| Some((e.file_name().to_str()?.parse::<u32>().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| has_tools(bin))
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or(ClusterError::NoPostgres)
}

fn check(program: &str, output: Output) -> Result<Output, ClusterError> {
    if output.status.success() {
        Ok(output)
    } else {
        Err(ClusterError::Command {
            program: program.to_owned(),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

impl PrivateCluster {
    /// Starts a cluster with TLS and the reader role.
    pub fn start() -> Result<Self, ClusterError> {
        Self::start_with(&ClusterOptions::default())
    }

    /// Starts a cluster as `options` say.
    pub fn start_with(options: &ClusterOptions) -> Result<Self, ClusterError> {
        let bin = find_bin_dir()?;
        let owner = if nix::unistd::geteuid().is_root() {
            let user = nix::unistd::User::from_name("postgres").ok().flatten().ok_or(ClusterError::NoServerUser)?;
            Some((user.uid, user.gid))
        } else {
            None
        };
        let dir =
            tempfile::Builder::new().prefix("solvency-pg-").tempdir().map_err(io("creating the cluster directory"))?;
        let data = dir.path().join("data");
        let mut cluster = Self {
            data,
            bin,
            owner,
            port: 0,
            identity: ServerIdentity::generate_for(&options.extra_names)?,
            ca_path: dir.path().join("ca.pem"),
            reader_password: random_password(),
            replication_password: random_password(),
            tls: options.tls,
            auth_method: options.auth_method,
            dir,
        };
        cluster.give_to_owner(cluster.dir.path())?;
        fs::set_permissions(cluster.dir.path(), fs::Permissions::from_mode(0o755)).map_err(io("chmod"))?;
        fs::write(&cluster.ca_path, &cluster.identity.ca_pem).map_err(io("writing ca.pem"))?;
        let initdb = cluster
            .as_owner(&cluster.bin.join("initdb"))
            .arg("-D")
            .arg(&cluster.data)
            .args(["-U", ADMIN_ROLE, "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale"])
            .arg("--no-sync")
            .output()
            .map_err(io("running initdb"))?;
        check("initdb", initdb)?;
        cluster.write_server_files()?;
        cluster.start_server()?;
        let sql = format!(
            "CREATE ROLE {READER_ROLE} LOGIN PASSWORD '{}'; CREATE ROLE {REPLICATION_ROLE} REPLICATION LOGIN PASSWORD '{}';\n{}",
            cluster.reader_password,
            cluster.replication_password,
            reader_grants(READER_ROLE)
        );
        cluster.psql(&sql)?;
        Ok(cluster)
    }

    fn as_owner(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        if let Some((uid, gid)) = self.owner {
            command.uid(uid.as_raw()).gid(gid.as_raw());
        }
        // HOME is the caller's; libpq would look for client certificates there.
        command.env_remove("PGPASSWORD").env("HOME", self.dir.path()).current_dir(self.dir.path());
        command
    }

    fn give_to_owner(&self, path: &Path) -> Result<(), ClusterError> {
        if let Some((uid, gid)) = self.owner {
            std::os::unix::fs::chown(path, Some(uid.as_raw()), Some(gid.as_raw())).map_err(io("chown"))?;
        }
        Ok(())
    }

    fn socket_dir(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    /// Certificates, key, configuration and the client authentication rules.
    fn write_server_files(&mut self) -> Result<(), ClusterError> {
        let socket_dir = self.socket_dir();
        if !socket_dir.exists() {
            fs::create_dir(&socket_dir).map_err(io("creating the socket directory"))?;
        }
        self.give_to_owner(&socket_dir)?;
        let write = |name: &str, contents: &str, mode: u32| -> Result<(), ClusterError> {
            let path = self.data.join(name);
            fs::write(&path, contents).map_err(io(format!("writing {name}")))?;
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(io("chmod"))?;
            self.give_to_owner(&path)
        };
        write("server.crt", &self.identity.cert_pem, 0o644)?;
        write("server.key", &self.identity.key_pem, 0o600)?;
        let host = if self.tls { "hostssl" } else { "host" };
        let mut hba = format!("local all {ADMIN_ROLE} trust\n");
        let _ = writeln!(hba, "{host} all all 127.0.0.1/32 {}", self.auth_method);
        let _ = writeln!(hba, "{host} replication {REPLICATION_ROLE} 127.0.0.1/32 scram-sha-256");
        write("pg_hba.conf", &hba, 0o600)?;
        let conf = format!(
            "# written by solvency-testkit\n\
             listen_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{}'\n\
             ssl = {}\n\
             ssl_cert_file = 'server.crt'\n\
             ssl_key_file = 'server.key'\n\
             password_encryption = 'scram-sha-256'\n\
             fsync = off\n\
             synchronous_commit = off\n\
             full_page_writes = off\n\
             wal_level = replica\n\
             max_wal_senders = 4\n\
             hot_standby = on\n",
            socket_dir.display(),
            if self.tls { "on" } else { "off" },
        );
        write("postgresql.auto.conf", &conf, 0o600)
    }

    /// Starts the server on a free port, retrying if another process took the port first.
    fn start_server(&mut self) -> Result<(), ClusterError> {
        let mut last = None;
        for _ in 0..3 {
            self.port = free_port()?;
            let output = self
                .as_owner(&self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(&self.data)
                .arg("-l")
                .arg(self.dir.path().join("server.log"))
                .args(["-w", "-t", "60", "-o"])
                .arg(format!("-p {}", self.port))
                .arg("start")
                .output()
                .map_err(io("running pg_ctl start"))?;
            match check("pg_ctl start", output) {
                Ok(_) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(ClusterError::NoPostgres))
    }

    /// Runs SQL as the superuser over the private socket; returns unaligned, tuples-only output.
    pub fn psql(&self, sql: &str) -> Result<String, ClusterError> {
        self.psql_in("postgres", sql)
    }

    /// [`PrivateCluster::psql`] in another database of the cluster.
    pub fn psql_in(&self, database: &str, sql: &str) -> Result<String, ClusterError> {
        let output = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(self.socket_dir())
            .args(["-p", &self.port.to_string(), "-U", ADMIN_ROLE, "-d", database, "-c", sql])
            .env_remove("PGPASSWORD")
            .output()
            .map_err(io("running psql"))?;
        Ok(String::from_utf8_lossy(&check("psql", output)?.stdout).trim().to_owned())
    }

    /// A streaming hot standby of this cluster, on its own port, with the same certificates.
    pub fn start_standby(&self) -> Result<PrivateCluster, ClusterError> {
        let dir =
            tempfile::Builder::new().prefix("solvency-pg-standby-").tempdir().map_err(io("creating a directory"))?;
        let mut standby = Self {
            data: dir.path().join("data"),
            bin: self.bin.clone(),
            owner: self.owner,
            port: 0,
            identity: self.identity.clone(),
            ca_path: dir.path().join("ca.pem"),
            reader_password: self.reader_password.clone(),
            replication_password: self.replication_password.clone(),
            tls: self.tls,
            auth_method: self.auth_method,
            dir,
        };
        standby.give_to_owner(standby.dir.path())?;
        fs::set_permissions(standby.dir.path(), fs::Permissions::from_mode(0o755)).map_err(io("chmod"))?;
        fs::write(&standby.ca_path, &standby.identity.ca_pem).map_err(io("writing ca.pem"))?;
        let sslmode = if self.tls { "verify-full" } else { "disable" };
        let conninfo = format!(
            "host=localhost port={} user={REPLICATION_ROLE} sslmode={sslmode} sslrootcert={}",
            self.port,
            standby.ca_path.display()
        );
        let output = standby
            .as_owner(&self.bin.join("pg_basebackup"))
            .arg("-D")
            .arg(&standby.data)
            .args(["-R", "-X", "stream", "--no-sync", "-d", &conninfo])
            .env("PGPASSWORD", &self.replication_password)
            .output()
            .map_err(io("running pg_basebackup"))?;
        check("pg_basebackup", output)?;
        // pg_basebackup -R appended primary_conninfo to postgresql.auto.conf; keep it and point
        // the socket at the standby's own directory.
        let auto = standby.data.join("postgresql.auto.conf");
        let inherited = fs::read_to_string(&auto).map_err(io("reading postgresql.auto.conf"))?;
        standby.write_server_files()?;
        let conninfo_lines: String =
            inherited.lines().filter(|l| l.starts_with("primary_conninfo")).map(|l| format!("{l}\n")).collect();
        let mut conf = fs::read_to_string(&auto).map_err(io("reading postgresql.auto.conf"))?;
        conf.push_str(&conninfo_lines);
        fs::write(&auto, conf).map_err(io("writing postgresql.auto.conf"))?;
        standby.start_server()?;
        Ok(standby)
    }

    /// The TCP port (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The certificates the server presents.
    pub fn identity(&self) -> &ServerIdentity {
        &self.identity
    }

    /// A file holding the CA certificate, PEM.
    pub fn ca_path(&self) -> &Path {
        &self.ca_path
    }

    /// The reader role's password (SCRAM).
    pub fn reader_password(&self) -> &str {
        &self.reader_password
    }

    /// A directory for the test's own files; deleted with the cluster.
    pub fn scratch_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's log so far, for failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// A psql connection string for the reader role, verifying the server against the CA; the
    /// password goes in `PGPASSWORD`.
    pub fn reader_conninfo(&self) -> String {
        format!(
            "host=localhost port={} dbname=postgres user={READER_ROLE} sslmode=verify-full sslrootcert={}",
            self.port,
            self.ca_path.display()
        )
    }

    /// A round configuration (TOML) for this cluster reading `query`, with the CA pinned and the
    /// reader's password in a file beside the cluster.
    pub fn round_config(&self, query: &str, assets: &[(&str, u32)]) -> Result<String, ClusterError> {
        let password_file = self.dir.path().join("reader-password");
        fs::write(&password_file, &self.reader_password).map_err(io("writing the password file"))?;
        fs::set_permissions(&password_file, fs::Permissions::from_mode(0o600)).map_err(io("chmod"))?;
        let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
        let mut toml = format!(
            "[database]\nhost = \"localhost\"\nport = {}\ndbname = \"postgres\"\nuser = \"{READER_ROLE}\"\n\
             password_file = {}\nserver_ca = {}\nquery = {}\n",
            self.port,
            quote(&password_file.display().to_string()),
            quote(&self.ca_path.display().to_string()),
            quote(query),
        );
        for (symbol, decimals) in assets {
            let _ = write!(toml, "\n[[assets]]\nsymbol = {}\ndecimals = {decimals}\n", quote(symbol));
        }
        Ok(toml)
    }
}

/// The least privilege the enclave's role needs besides `SELECT` on the balance relation: the
/// control functions that identify the cluster and its timeline, which PostgreSQL reserves to
/// superusers by default.
pub fn reader_grants(role: &str) -> String {
    format!(
        "GRANT EXECUTE ON FUNCTION pg_control_system() TO {role};\n\
         GRANT EXECUTE ON FUNCTION pg_control_checkpoint() TO {role};\n"
    )
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = self
            .as_owner(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}
