//! The durable bundle store: a directory holding every round the parent received, never
//! overwriting one, with a `latest` pointer that is updated last. A crash at any point leaves
//! the previous round served and no partial round visible.
//!
//! Layout under the store directory:
//!
//! ```text
//! rounds/<n, 20-digit zero-padded decimal>/bundle.cbor
//! rounds/<n>/inclusion/<attestation::inclusion::file_name(account_id)>
//! rounds/<n>/<extra files given by the caller, e.g. summary.json>
//! latest          the latest published round number in decimal, then "\n"
//! log.jsonl       the published round log (`attestation::log`): one line per stored round
//! reserved        the highest number handed out by `Store::reserve_round`, same format
//! tmp/            staging; anything here at `open` is left over from a crash and removed
//! lock            held (flock) by the process that has the store open
//! ```
//!
//! A round is written into `tmp/<n>-<random hex>` ([`PendingRound`]), every file fsynced as it is
//! written; [`PendingRound::commit`] fsyncs the staging directories, renames the staging
//! directory to `rounds/<n>` (refusing if that exists), fsyncs `rounds/`, appends the round's
//! line to `log.jsonl` and fsyncs it, and only then replaces `latest` (temporary file, fsync,
//! rename, fsync of the store directory). Rounds are identified by their manifest digest, which
//! the log maps to their directory ([`Store::round_by_digest`]); the numbers are the parent's
//! labels.
//!
//! **The `latest` pointer is the source of truth for what is published.** A round directory
//! whose number is above the pointer (a crash between the rename and the pointer update) is
//! complete on disk but not published: until a later round is committed it is not listed or
//! served (after that it is listed like any complete round), and its number is burnt —
//! [`Store::begin`] refuses it because the directory exists, so the next round uses a higher
//! number ([`Store::next_round`] accounts for this). Such a directory is kept, never deleted.
//! A number can also be burnt before any of its files exist: [`Store::reserve_round`] records
//! it durably before the round is sent to the enclave, so this store never labels two rounds alike.
//!
//! One process owns a store directory: [`Store::open`] takes an exclusive lock on `lock` and a
//! second process (a `solvency-parent round` beside a running `run`) is refused, rather than
//! clearing the first one's staging area. Commits within the process are serialised by a mutex,
//! so `latest` only grows.
//!
//! **Test hook:** if the environment variable `SOLVENCY_PARENT_CRASH_AT` names a failure point,
//! [`PendingRound::commit`] calls [`std::process::abort`] there, so end-to-end tests can check
//! what a crash leaves behind. The points are `staged` (every file written and fsynced, before
//! the rename), `renamed` (after the rename, before the log line is appended), `logged` (the
//! log line appended, before `latest` is written) and `latest-temp` (the temporary `latest` file
//! written and fsynced, before its rename). [`Store::open`] appends the log line of any complete
//! round directory that lacks one. The variable is read once
//! per commit; any other value is ignored.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub mod log;

use log::{Log, RoundIdentity};

const ROUNDS_DIR: &str = "rounds";
const TMP_DIR: &str = "tmp";
const LATEST_FILE: &str = "latest";
const RESERVED_FILE: &str = "reserved";
const LOCK_FILE: &str = "lock";
const BUNDLE_FILE: &str = "bundle.cbor";
const INCLUSION_DIR: &str = "inclusion";
/// Digits in a round directory's name: enough for every `u64`.
const ROUND_DIGITS: usize = 20;
/// `latest` and `reserved` hold at most 20 digits and a newline; anything longer is not ours.
const LATEST_LIMIT: u64 = 64;
/// Longest caller-chosen file name accepted by [`PendingRound::add_file`].
const MAX_FILE_NAME: usize = 100;
/// The environment variable naming a failure point (see the module docs).
pub const CRASH_ENV: &str = "SOLVENCY_PARENT_CRASH_AT";

/// Why a store operation failed, by who is at fault: the environment (`Io`), the store's own
/// files (`Corrupt`), the store's policy (`NotNewer`, `RoundExists`, `RoundsExhausted`) or the caller
/// (`MissingBundle`, `Duplicate*`, `BadFileName`).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file-system operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. "create", "fsync", "rename".
        op: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The store's files are inconsistent (damaged, or edited by hand).
    #[error("store is corrupt at {}: {reason}", path.display())]
    Corrupt {
        /// The offending path.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The round is not newer than the latest published round.
    #[error("round {round} is not newer than the latest round {latest}")]
    NotNewer {
        /// The refused round.
        round: u64,
        /// The latest published round.
        latest: u64,
    },
    /// Another process has the store open.
    #[error("the store {} is in use by another process (it holds {}/lock)", path.display(), path.display())]
    Locked {
        /// The store directory.
        path: PathBuf,
    },
    /// The round's directory already exists (published, or left unpublished by a crash).
    #[error("round {round} already exists in the store")]
    RoundExists {
        /// The refused round.
        round: u64,
    },
    /// `commit` was called before `write_bundle`.
    #[error("round {round} has no bundle")]
    MissingBundle {
        /// The staged round.
        round: u64,
    },
    /// An account's inclusion proof was added twice.
    #[error("round {round}: inclusion proof for account {account_id:?} added twice")]
    DuplicateAccount {
        /// The staged round.
        round: u64,
        /// The repeated account id.
        account_id: String,
    },
    /// The bundle or a caller-named file was written twice.
    #[error("round {round}: {name} written twice")]
    DuplicateFile {
        /// The staged round.
        round: u64,
        /// The repeated file name.
        name: String,
    },
    /// `commit` was called before `set_identity`.
    #[error("round {round} has no identity (manifest digest) for the log")]
    MissingIdentity {
        /// The staged round.
        round: u64,
    },
    /// Every round number up to `u64::MAX` is used.
    #[error("round numbers are exhausted")]
    RoundsExhausted,
    /// A caller-named file whose name is not a plain, unreserved file name.
    #[error("{name:?} is not an allowed file name (1 to {MAX_FILE_NAME} of [A-Za-z0-9._-], not starting with '.', not {BUNDLE_FILE:?} or {INCLUSION_DIR:?})")]
    BadFileName {
        /// The refused name.
        name: String,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io { op, path: path.to_path_buf(), source }
}

/// The name of round `n`'s directory.
fn round_dir_name(round: u64) -> String {
    format!("{round:0ROUND_DIGITS$}")
}

/// The round number of a directory name, if it is one this store would have written.
fn parse_round_dir_name(name: &str) -> Option<u64> {
    if name.len() != ROUND_DIGITS || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok()
}

/// Where the process aborts during a commit (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CrashPoint {
    Staged,
    Renamed,
    Logged,
    LatestTemp,
}

impl CrashPoint {
    fn from_env() -> Option<CrashPoint> {
        match std::env::var(CRASH_ENV).ok()?.as_str() {
            "staged" => Some(CrashPoint::Staged),
            "renamed" => Some(CrashPoint::Renamed),
            "logged" => Some(CrashPoint::Logged),
            "latest-temp" => Some(CrashPoint::LatestTemp),
            _ => None,
        }
    }
}

fn crash_if(configured: Option<CrashPoint>, here: CrashPoint) {
    if configured == Some(here) {
        tracing::error!(point = ?here, "{CRASH_ENV} set: aborting for a crash test");
        std::process::abort();
    }
}

/// Fsyncs a directory, making the entries added to or removed from it durable.
fn sync_dir(path: &Path) -> Result<(), StoreError> {
    File::open(path).and_then(|dir| dir.sync_all()).map_err(io_err("fsync directory", path))
}

/// Creates `path` (which must not exist), writes `bytes` and fsyncs it. `Ok(false)` if it exists.
fn write_new_file(path: &Path, bytes: &[u8]) -> Result<bool, StoreError> {
    let mut file = match OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(io_err("create", path)(e)),
    };
    file.write_all(bytes).map_err(io_err("write", path))?;
    file.sync_all().map_err(io_err("fsync", path))?;
    Ok(true)
}

/// Reads a file holding a decimal number and a newline (`latest`, `reserved`); `None` if it does
/// not exist, [`StoreError::Corrupt`] if it holds anything else.
fn read_number_file(path: &Path) -> Result<Option<u64>, StoreError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("open", path)(e)),
    };
    let mut text = String::new();
    file.take(LATEST_LIMIT).read_to_string(&mut text).map_err(|source| match source.kind() {
        io::ErrorKind::InvalidData => StoreError::Corrupt { path: path.to_path_buf(), reason: "not UTF-8".to_string() },
        _ => io_err("read", path)(source),
    })?;
    text.strip_suffix('\n')
        .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|digits| digits.parse::<u64>().ok())
        .map(Some)
        .ok_or_else(|| StoreError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("expected a decimal round number and a newline, found {text:?}"),
        })
}

/// Reads a whole file; `None` if it does not exist.
fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("read", path)(e)),
    }
}

/// Whether `path` exists (following no symlink), as an error rather than `false` on I/O trouble.
fn exists(path: &Path) -> Result<bool, StoreError> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err("stat", path)(e)),
    }
}

/// Removes a file or directory tree.
fn remove_entry(path: &Path) -> Result<(), StoreError> {
    let meta = fs::symlink_metadata(path).map_err(io_err("stat", path))?;
    if meta.is_dir() {
        fs::remove_dir_all(path).map_err(io_err("remove directory", path))
    } else {
        fs::remove_file(path).map_err(io_err("remove", path))
    }
}

/// Whether a caller may name a round file `name` (see [`StoreError::BadFileName`]).
fn is_allowed_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_FILE_NAME
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && name != BUNDLE_FILE
        && name != INCLUSION_DIR
        && name != log::IDENTITY_FILE
}

/// A bundle store directory (see the module docs). Cheap to share behind an `Arc`; every method
/// does blocking file I/O.
#[derive(Debug)]
pub struct Store {
    paths: Paths,
    /// Serialises commits and reservations, so that checking and updating `latest` and
    /// `reserved` are atomic within the process.
    commit_lock: Arc<Mutex<()>>,
    /// The published round log; appended under `commit_lock`.
    log: Arc<Mutex<Log>>,
    /// The open `lock` file, whose exclusive lock lasts as long as the store is open.
    _owner: Arc<fs::File>,
}

impl Store {
    /// Opens the store at `dir`, creating it and its subdirectories if needed, and removes
    /// everything in `tmp/` (left over from a crash).
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let dir = dir.to_path_buf();
        let rounds_dir = dir.join(ROUNDS_DIR);
        let tmp_dir = dir.join(TMP_DIR);
        fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
        for sub in [&rounds_dir, &tmp_dir] {
            fs::create_dir_all(sub).map_err(io_err("create directory", sub))?;
        }
        sync_dir(&dir)?;
        let lock_path = dir.join(LOCK_FILE);
        let owner = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err("open", &lock_path))?;
        match owner.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(StoreError::Locked { path: dir }),
            Err(fs::TryLockError::Error(e)) => return Err(io_err("lock", &lock_path)(e)),
        }
        let entries = fs::read_dir(&tmp_dir).map_err(io_err("list", &tmp_dir))?;
        let mut removed = 0usize;
        for entry in entries {
            let entry = entry.map_err(io_err("list", &tmp_dir))?;
            let path = entry.path();
            tracing::info!(path = %path.display(), "removing a staging entry left over from a crash");
            remove_entry(&path)?;
            removed += 1;
        }
        if removed > 0 {
            sync_dir(&tmp_dir)?;
        }
        let log = Log::open(&dir)?;
        let store = Store {
            paths: Paths { dir, rounds_dir, tmp_dir },
            commit_lock: Arc::new(Mutex::new(())),
            log: Arc::new(Mutex::new(log)),
            _owner: Arc::new(owner),
        };
        store.log_unlisted_rounds()?;
        Ok(store)
    }

    /// Appends the log lines of complete round directories that have none (a crash between the
    /// rename and the append, or a store older than the log), in round order.
    fn log_unlisted_rounds(&self) -> Result<(), StoreError> {
        let mut rounds = self.round_dirs()?;
        rounds.sort_unstable();
        let mut log = self.log.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        rounds.retain(|r| !log.lists(*r));
        for round in rounds {
            let path = self.paths.round_dir(round).join(BUNDLE_FILE);
            let bytes = fs::read(&path).map_err(io_err("read", &path))?;
            let identity_path = self.paths.round_dir(round).join(log::IDENTITY_FILE);
            let identity = match read_optional(&identity_path)? {
                Some(text) => RoundIdentity::from_json(&text).ok_or_else(|| StoreError::Corrupt {
                    path: identity_path.clone(),
                    reason: "not a round identity".into(),
                })?,
                // A round stored before the log existed: its bundle says who it is.
                None => RoundIdentity::of_bundle(&bytes).map_err(|reason| StoreError::Corrupt {
                    path: path.clone(),
                    reason: format!("its bundle: {reason}"),
                })?,
            };
            tracing::info!(round, "logging a stored round the log did not list");
            log.append(round, identity, log::bundle_sha256(&bytes))?;
        }
        Ok(())
    }

    /// The published round a manifest digest names.
    pub fn round_by_digest(&self, manifest_digest: &[u8; 48]) -> Result<Option<u64>, StoreError> {
        let round = self.log.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).round_of(manifest_digest);
        match round {
            Some(round) if self.is_published(round)? => Ok(Some(round)),
            _ => Ok(None),
        }
    }

    /// The published log's file (served as it is) and its head.
    pub fn log_file(&self) -> (PathBuf, String, usize) {
        let log = self.log.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        (log.path().to_path_buf(), log.head(), log.len())
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.paths.dir
    }

    /// The latest published round, from the `latest` pointer; `None` before the first commit.
    /// A pointer that is malformed or names a round with no directory is [`StoreError::Corrupt`].
    pub fn latest(&self) -> Result<Option<u64>, StoreError> {
        self.paths.latest()
    }

    /// The published rounds (directories at or below the `latest` pointer), ascending. Names in
    /// `rounds/` that this store would not have written are ignored.
    pub fn rounds(&self) -> Result<Vec<u64>, StoreError> {
        let Some(latest) = self.latest()? else {
            return Ok(Vec::new());
        };
        let mut rounds: Vec<u64> = self.round_dirs()?.into_iter().filter(|&n| n <= latest).collect();
        rounds.sort_unstable();
        Ok(rounds)
    }

    /// The number the next round should get: one above the latest published round, any
    /// unpublished round directory left by a crash, and any number [`Store::reserve_round`]
    /// handed out; 1 for a new store. `None` if every number is used. Reads only; see
    /// [`Store::reserve_round`] to claim the number.
    pub fn next_round(&self) -> Result<Option<u64>, StoreError> {
        let latest = self.latest()?;
        let highest_dir = self.round_dirs()?.into_iter().max();
        let reserved = self.paths.reserved()?;
        match latest.max(highest_dir).max(reserved) {
            None => Ok(Some(1)),
            Some(n) => Ok(n.checked_add(1)),
        }
    }

    /// Claims [`Store::next_round`] durably (in the file `reserved`) so that no later call
    /// returns it again, even after a crash that leaves no trace of the round in `tmp/`. Call it
    /// before a round's number leaves the parent (so this store gives no two rounds one label);
    /// the number may then be [`Store::begin`]-ed once. An abandoned number stays burnt.
    pub fn reserve_round(&self) -> Result<u64, StoreError> {
        let _guard = self.commit_lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let round = self.next_round()?.ok_or(StoreError::RoundsExhausted)?;
        let temp = self.paths.write_temp_number("reserved", round)?;
        self.paths.install(&temp, RESERVED_FILE)?;
        Ok(round)
    }

    /// Round `round`'s bundle; `None` if the round is not published.
    pub fn bundle(&self, round: u64) -> Result<Option<Vec<u8>>, StoreError> {
        if !self.is_published(round)? {
            return Ok(None);
        }
        let path = self.paths.round_dir(round).join(BUNDLE_FILE);
        match read_optional(&path)? {
            Some(bytes) => Ok(Some(bytes)),
            None => Err(StoreError::Corrupt { path, reason: format!("published round {round} has no bundle") }),
        }
    }

    /// The inclusion proof (JSON) stored for `account_id` in round `round`; `None` if the round
    /// is not published or has no proof for that account. Any string is a safe `account_id`.
    pub fn inclusion_proof(&self, round: u64, account_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if !self.is_published(round)? {
            return Ok(None);
        }
        let path = self.paths.round_dir(round).join(INCLUSION_DIR).join(attestation::inclusion::file_name(account_id));
        read_optional(&path)
    }

    /// Starts staging round `round`. Refuses a round at or below the latest published one
    /// ([`StoreError::NotNewer`]) and one whose directory exists ([`StoreError::RoundExists`]);
    /// both are checked again at commit.
    pub fn begin(&self, round: u64) -> Result<PendingRound, StoreError> {
        self.paths.check_new(round, self.latest()?)?;
        let staging = self.paths.tmp_dir.join(format!("{round}-{}", hex::encode(rand::random::<[u8; 8]>())));
        fs::create_dir(&staging).map_err(io_err("create directory", &staging))?;
        let pending = PendingRound {
            round,
            staging,
            paths: self.paths.clone(),
            commit_lock: Arc::clone(&self.commit_lock),
            log: Arc::clone(&self.log),
            identity: None,
            bundle_sha256: None,
            accounts: HashSet::new(),
            done: false,
        };
        // From here on, dropping `pending` removes the staging directory.
        let inclusion = pending.staging.join(INCLUSION_DIR);
        fs::create_dir(&inclusion).map_err(io_err("create directory", &inclusion))?;
        Ok(pending)
    }

    fn is_published(&self, round: u64) -> Result<bool, StoreError> {
        // `latest()` has checked that its own round's directory exists; older rounds are never removed.
        Ok(matches!(self.latest()?, Some(latest) if round <= latest) && exists(&self.paths.round_dir(round))?)
    }

    /// Where round `round`'s directory is (or would be): its bundle is `bundle.cbor` in it, the
    /// inclusion proofs in `inclusion/`.
    pub fn round_path(&self, round: u64) -> PathBuf {
        self.paths.round_dir(round)
    }

    /// Every round directory, published or not, in directory order.
    fn round_dirs(&self) -> Result<Vec<u64>, StoreError> {
        let rounds_dir = &self.paths.rounds_dir;
        let entries = fs::read_dir(rounds_dir).map_err(io_err("list", rounds_dir))?;
        let mut rounds = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err("list", rounds_dir))?;
            if let Some(round) = entry.file_name().to_str().and_then(parse_round_dir_name) {
                rounds.push(round);
            }
        }
        Ok(rounds)
    }
}

/// The store's directories.
#[derive(Clone, Debug)]
struct Paths {
    dir: PathBuf,
    rounds_dir: PathBuf,
    tmp_dir: PathBuf,
}

impl Paths {
    fn round_dir(&self, round: u64) -> PathBuf {
        self.rounds_dir.join(round_dir_name(round))
    }

    fn latest(&self) -> Result<Option<u64>, StoreError> {
        let Some(round) = read_number_file(&self.dir.join(LATEST_FILE))? else {
            return Ok(None);
        };
        let round_dir = self.round_dir(round);
        match fs::metadata(&round_dir) {
            Ok(meta) if meta.is_dir() => Ok(Some(round)),
            Ok(_) => Err(StoreError::Corrupt { path: round_dir, reason: format!("round {round} is not a directory") }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StoreError::Corrupt {
                path: round_dir,
                reason: format!("`latest` names round {round}, which does not exist"),
            }),
            Err(e) => Err(io_err("stat", &round_dir)(e)),
        }
    }

    /// The highest round number handed out by [`Store::reserve_round`], if any.
    fn reserved(&self) -> Result<Option<u64>, StoreError> {
        read_number_file(&self.dir.join(RESERVED_FILE))
    }

    /// Writes `number` and a newline to a new temporary file in `tmp/` and fsyncs it.
    fn write_temp_number(&self, prefix: &str, number: u64) -> Result<PathBuf, StoreError> {
        let temp = self.tmp_dir.join(format!("{prefix}-{}", hex::encode(rand::random::<[u8; 8]>())));
        if !write_new_file(&temp, format!("{number}\n").as_bytes())? {
            let source = io::Error::from(io::ErrorKind::AlreadyExists);
            return Err(StoreError::Io { op: "create", path: temp, source });
        }
        Ok(temp)
    }

    /// Renames a temporary file over `name` in the store directory and fsyncs the directory.
    fn install(&self, temp: &Path, name: &str) -> Result<(), StoreError> {
        fs::rename(temp, self.dir.join(name)).map_err(io_err("rename", temp))?;
        sync_dir(&self.dir)
    }

    /// Refuses `round` if it is not above `latest` or its directory exists.
    fn check_new(&self, round: u64, latest: Option<u64>) -> Result<(), StoreError> {
        if let Some(latest) = latest {
            if round <= latest {
                return Err(StoreError::NotNewer { round, latest });
            }
        }
        if exists(&self.round_dir(round))? {
            return Err(StoreError::RoundExists { round });
        }
        Ok(())
    }
}

/// A round being staged in `tmp/`. Invisible until [`PendingRound::commit`]; dropping it
/// uncommitted removes the staging directory.
#[derive(Debug)]
pub struct PendingRound {
    round: u64,
    staging: PathBuf,
    paths: Paths,
    commit_lock: Arc<Mutex<()>>,
    log: Arc<Mutex<Log>>,
    identity: Option<RoundIdentity>,
    bundle_sha256: Option<[u8; 32]>,
    accounts: HashSet<String>,
    /// Set once the staging directory has been renamed (or must no longer be touched).
    done: bool,
}

impl PendingRound {
    /// The round being staged.
    pub fn round(&self) -> u64 {
        self.round
    }

    /// Writes the bundle (once).
    pub fn write_bundle(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        if self.bundle_sha256.is_some() || !write_new_file(&self.staging.join(BUNDLE_FILE), bytes)? {
            return Err(StoreError::DuplicateFile { round: self.round, name: BUNDLE_FILE.to_string() });
        }
        self.bundle_sha256 = Some(log::bundle_sha256(bytes));
        Ok(())
    }

    /// Names the round for the log: its manifest digest and attestation time (kept in the
    /// round's directory too). Once.
    pub fn set_identity(&mut self, identity: RoundIdentity) -> Result<(), StoreError> {
        if self.identity.is_some()
            || !write_new_file(&self.staging.join(log::IDENTITY_FILE), identity.to_json().as_bytes())?
        {
            return Err(StoreError::DuplicateFile { round: self.round, name: log::IDENTITY_FILE.to_string() });
        }
        self.identity = Some(identity);
        Ok(())
    }

    /// Writes `account_id`'s inclusion proof. Refuses an account added before.
    pub fn add_inclusion_proof(&mut self, account_id: &str, json: &[u8]) -> Result<(), StoreError> {
        let duplicate = || StoreError::DuplicateAccount { round: self.round, account_id: account_id.to_string() };
        if self.accounts.contains(account_id) {
            return Err(duplicate());
        }
        let path = self.staging.join(INCLUSION_DIR).join(attestation::inclusion::file_name(account_id));
        if !write_new_file(&path, json)? {
            return Err(duplicate());
        }
        self.accounts.insert(account_id.to_string());
        Ok(())
    }

    /// Writes an extra file into the round's directory, e.g. `summary.json`. The name must be a
    /// plain file name (see [`StoreError::BadFileName`]); each name once.
    pub fn add_file(&mut self, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        if !is_allowed_file_name(name) {
            return Err(StoreError::BadFileName { name: name.to_string() });
        }
        if !write_new_file(&self.staging.join(name), bytes)? {
            return Err(StoreError::DuplicateFile { round: self.round, name: name.to_string() });
        }
        Ok(())
    }

    /// Publishes the round: makes the staged files durable, renames the staging directory to
    /// `rounds/<n>` (never over an existing one) and then points `latest` at it. Returns the
    /// round number. Requires the bundle. If it fails after the rename, the round stays on disk
    /// unpublished and its number is burnt (see the module docs).
    pub fn commit(mut self) -> Result<u64, StoreError> {
        let crash = CrashPoint::from_env();
        let Some(bundle_sha256) = self.bundle_sha256 else {
            return Err(StoreError::MissingBundle { round: self.round });
        };
        let Some(identity) = self.identity else {
            return Err(StoreError::MissingIdentity { round: self.round });
        };
        sync_dir(&self.staging.join(INCLUSION_DIR))?;
        sync_dir(&self.staging)?;
        crash_if(crash, CrashPoint::Staged);

        let lock = Arc::clone(&self.commit_lock);
        // The lock guards no data, only the ordering of file operations: a poisoned lock is fine.
        let _guard = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.paths.check_new(self.round, self.paths.latest()?)?;
        let target = self.paths.round_dir(self.round);
        // `rename` replaces an existing *empty* directory; `check_new` above, under the lock,
        // has refused any existing entry, and a non-empty directory makes `rename` fail.
        fs::rename(&self.staging, &target).map_err(io_err("rename", &self.staging))?;
        self.done = true;
        sync_dir(&self.paths.rounds_dir)?;
        sync_dir(&self.paths.tmp_dir)?;
        crash_if(crash, CrashPoint::Renamed);

        self.log.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).append(self.round, identity, bundle_sha256)?;
        crash_if(crash, CrashPoint::Logged);

        let temp = self.paths.write_temp_number("latest", self.round)?;
        crash_if(crash, CrashPoint::LatestTemp);
        self.paths.install(&temp, LATEST_FILE)?;
        tracing::info!(round = self.round, "round committed");
        Ok(self.round)
    }
}

impl Drop for PendingRound {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if let Err(e) = fs::remove_dir_all(&self.staging) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(path = %self.staging.display(), error = %e, "could not remove an abandoned staging directory; the next open removes it");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    /// A made-up log identity for a made-up bundle.
    fn fake_identity(bundle: &[u8]) -> crate::store::log::RoundIdentity {
        use sha2::Digest as _;
        let digest: [u8; 48] = sha2::Sha384::digest(bundle).into();
        crate::store::log::RoundIdentity { manifest_digest: digest, attested_ms: 1_700_000_000_000 }
    }

    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        names
    }

    fn commit(store: &Store, round: u64, bundle: &[u8]) -> u64 {
        let mut pending = store.begin(round).unwrap();
        pending.write_bundle(bundle).unwrap();
        pending.set_identity(fake_identity(bundle)).unwrap();
        pending.add_inclusion_proof("alice", b"{\"alice\":1}").unwrap();
        pending.commit().unwrap()
    }

    /// Stages round `round` in `tmp/` the way `commit` leaves it at the `staged` failure point.
    fn stage_by_hand(dir: &Path, round: u64) -> PathBuf {
        let staging = dir.join(TMP_DIR).join(format!("{round}-0011223344556677"));
        fs::create_dir_all(staging.join(INCLUSION_DIR)).unwrap();
        fs::write(staging.join(BUNDLE_FILE), b"staged").unwrap();
        fs::write(staging.join(log::IDENTITY_FILE), fake_identity(b"staged").to_json()).unwrap();
        fs::write(staging.join(INCLUSION_DIR).join("alice.json"), b"{}").unwrap();
        staging
    }

    #[test]
    fn committed_round_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.latest().unwrap(), None);
        assert_eq!(store.rounds().unwrap(), Vec::<u64>::new());
        assert_eq!(store.bundle(1).unwrap(), None);

        let mut pending = store.begin(1).unwrap();
        assert_eq!(pending.round(), 1);
        pending.write_bundle(b"bundle one").unwrap();
        pending.set_identity(fake_identity(b"bundle one")).unwrap();
        pending.add_inclusion_proof("alice", b"{\"a\":1}").unwrap();
        pending.add_inclusion_proof("bob", b"{\"b\":2}").unwrap();
        pending.add_file("summary.json", b"{}").unwrap();
        assert_eq!(store.latest().unwrap(), None, "a staged round is invisible");
        assert_eq!(pending.commit().unwrap(), 1);

        assert_eq!(store.latest().unwrap(), Some(1));
        assert_eq!(store.rounds().unwrap(), vec![1]);
        assert_eq!(store.bundle(1).unwrap().unwrap(), b"bundle one");
        assert_eq!(store.inclusion_proof(1, "alice").unwrap().unwrap(), b"{\"a\":1}");
        assert_eq!(store.inclusion_proof(1, "bob").unwrap().unwrap(), b"{\"b\":2}");
        assert_eq!(store.inclusion_proof(1, "carol").unwrap(), None);
        assert_eq!(store.inclusion_proof(2, "alice").unwrap(), None);
        assert_eq!(fs::read_to_string(dir.path().join("latest")).unwrap(), "1\n");
        let round_dir = dir.path().join("rounds/00000000000000000001");
        assert_eq!(names(&round_dir), ["bundle.cbor", "identity.json", "inclusion", "summary.json"]);
        assert_eq!(names(&round_dir.join("inclusion")), ["alice.json", "bob.json"]);
        assert!(names(&dir.path().join("tmp")).is_empty());

        // Reopening finds the same store.
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.latest().unwrap(), Some(1));
        assert_eq!(store.bundle(1).unwrap().unwrap(), b"bundle one");
    }

    #[test]
    fn latest_only_grows_and_begin_refuses_older_or_equal() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        commit(&store, 3, b"three");
        assert!(matches!(store.begin(3), Err(StoreError::NotNewer { round: 3, latest: 3 })));
        assert!(matches!(store.begin(2), Err(StoreError::NotNewer { round: 2, latest: 3 })));
        commit(&store, 10, b"ten");
        assert!(matches!(store.begin(4), Err(StoreError::NotNewer { round: 4, latest: 10 })));
        assert_eq!(store.latest().unwrap(), Some(10));
        assert_eq!(store.rounds().unwrap(), vec![3, 10]);
        assert_eq!(store.bundle(3).unwrap().unwrap(), b"three");
        assert_eq!(store.next_round().unwrap(), Some(11));
        assert!(names(&dir.path().join("tmp")).is_empty());
    }

    #[test]
    fn a_round_overtaken_while_staged_is_refused_at_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut slow = store.begin(5).unwrap();
        slow.write_bundle(b"slow").unwrap();
        slow.set_identity(fake_identity(b"slow")).unwrap();
        let mut same = store.begin(5).unwrap();
        same.write_bundle(b"same").unwrap();
        same.set_identity(fake_identity(b"same")).unwrap();
        commit(&store, 7, b"seven");
        assert!(matches!(slow.commit(), Err(StoreError::NotNewer { round: 5, latest: 7 })));
        let mut fast = store.begin(8).unwrap();
        fast.write_bundle(b"eight").unwrap();
        fast.set_identity(fake_identity(b"eight")).unwrap();
        let mut twin = store.begin(8).unwrap();
        twin.write_bundle(b"twin").unwrap();
        twin.set_identity(fake_identity(b"twin")).unwrap();
        fast.commit().unwrap();
        assert!(matches!(twin.commit(), Err(StoreError::NotNewer { round: 8, latest: 8 })));
        drop(same);
        assert_eq!(store.bundle(8).unwrap().unwrap(), b"eight");
        assert_eq!(store.rounds().unwrap(), vec![7, 8]);
        assert!(names(&dir.path().join("tmp")).is_empty());
    }

    #[test]
    fn dropped_pending_round_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut pending = store.begin(1).unwrap();
        pending.write_bundle(b"bundle").unwrap();
        pending.set_identity(fake_identity(b"bundle")).unwrap();
        pending.add_inclusion_proof("alice", b"{}").unwrap();
        assert_eq!(names(&dir.path().join("tmp")).len(), 1);
        drop(pending);
        assert!(names(&dir.path().join("tmp")).is_empty());
        assert!(names(&dir.path().join("rounds")).is_empty());
        assert_eq!(store.latest().unwrap(), None);
        // The number was not used: it can be staged again.
        commit(&store, 1, b"again");
        assert_eq!(store.bundle(1).unwrap().unwrap(), b"again");
    }

    #[test]
    fn commit_requires_the_bundle_and_leaves_nothing_without_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut pending = store.begin(1).unwrap();
        pending.add_inclusion_proof("alice", b"{}").unwrap();
        assert!(matches!(pending.commit(), Err(StoreError::MissingBundle { round: 1 })));
        assert!(names(&dir.path().join("tmp")).is_empty());
        assert_eq!(store.latest().unwrap(), None);
    }

    #[test]
    fn duplicates_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut pending = store.begin(1).unwrap();
        pending.write_bundle(b"one").unwrap();
        pending.set_identity(fake_identity(b"one")).unwrap();
        assert!(
            matches!(pending.write_bundle(b"two"), Err(StoreError::DuplicateFile { round: 1, ref name }) if name == "bundle.cbor")
        );
        pending.add_inclusion_proof("alice", b"first").unwrap();
        assert!(matches!(
            pending.add_inclusion_proof("alice", b"second"),
            Err(StoreError::DuplicateAccount { round: 1, ref account_id }) if account_id == "alice"
        ));
        pending.add_file("summary.json", b"{}").unwrap();
        assert!(matches!(pending.add_file("summary.json", b"{}"), Err(StoreError::DuplicateFile { .. })));
        pending.commit().unwrap();
        assert_eq!(store.bundle(1).unwrap().unwrap(), b"one");
        assert_eq!(store.inclusion_proof(1, "alice").unwrap().unwrap(), b"first");
    }

    #[test]
    fn add_file_takes_plain_unreserved_names_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut pending = store.begin(1).unwrap();
        let long = "x".repeat(MAX_FILE_NAME + 1);
        for name in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "/abs",
            ".hidden",
            "a b",
            "a\\b",
            "bundle.cbor",
            "inclusion",
            "identity.json",
            &long,
        ] {
            assert!(
                matches!(pending.add_file(name, b"x"), Err(StoreError::BadFileName { name: ref n }) if n == name),
                "{name:?} was accepted"
            );
        }
        pending.add_file(&"x".repeat(MAX_FILE_NAME), b"x").unwrap();
        pending.add_file("summary-v1_2.json", b"x").unwrap();
        assert_eq!(names(dir.path()), ["lock", "log.jsonl", "rounds", "tmp"]);
    }

    #[test]
    fn inclusion_proofs_for_awkward_account_ids_stay_inside_the_round() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let long = "é".repeat(400);
        let ids = ["../x", "a b", "a%20b", "..", "", "/etc/passwd", "x\0y", long.as_str()];
        let mut pending = store.begin(1).unwrap();
        pending.write_bundle(b"bundle").unwrap();
        pending.set_identity(fake_identity(b"bundle")).unwrap();
        for (i, id) in ids.iter().enumerate() {
            pending.add_inclusion_proof(id, format!("{i}").as_bytes()).unwrap();
        }
        pending.commit().unwrap();
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(store.inclusion_proof(1, id).unwrap().unwrap(), format!("{i}").as_bytes(), "{id:?}");
        }
        assert_eq!(store.inclusion_proof(1, "../y").unwrap(), None);
        assert_eq!(store.inclusion_proof(1, &"é".repeat(401)).unwrap(), None);
        assert_eq!(names(dir.path()), ["latest", "lock", "log.jsonl", "rounds", "tmp"]);
        assert_eq!(
            names(&dir.path().join("rounds/00000000000000000001")),
            ["bundle.cbor", "identity.json", "inclusion"]
        );
        assert_eq!(names(&dir.path().join("rounds/00000000000000000001/inclusion")).len(), ids.len());
    }

    #[test]
    fn leftover_staging_is_invisible_and_removed_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        commit(&store, 1, b"one");
        // A crash at `staged`: round 2 complete in tmp/, not renamed. Plus a stray temp `latest`.
        stage_by_hand(dir.path(), 2);
        fs::write(dir.path().join("tmp/latest-0011223344556677"), b"2\n").unwrap();
        assert_eq!(store.latest().unwrap(), Some(1));
        assert_eq!(store.rounds().unwrap(), vec![1]);
        assert_eq!(store.bundle(2).unwrap(), None);
        drop(store);

        let store = Store::open(dir.path()).unwrap();
        assert!(names(&dir.path().join("tmp")).is_empty());
        assert_eq!(store.latest().unwrap(), Some(1));
        assert_eq!(store.next_round().unwrap(), Some(2));
        commit(&store, 2, b"two");
        assert_eq!(store.bundle(2).unwrap().unwrap(), b"two");
    }

    #[test]
    fn renamed_but_unpublished_round_is_not_served_and_its_number_is_burnt() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        commit(&store, 1, b"one");
        // A crash at `renamed`: rounds/2 complete, `latest` still 1.
        let staging = stage_by_hand(dir.path(), 2);
        fs::rename(staging, dir.path().join("rounds/00000000000000000002")).unwrap();
        drop(store);

        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.latest().unwrap(), Some(1), "the pointer decides what is published");
        assert_eq!(store.rounds().unwrap(), vec![1]);
        assert_eq!(store.bundle(2).unwrap(), None);
        assert_eq!(store.inclusion_proof(2, "alice").unwrap(), None);
        assert!(matches!(store.begin(2), Err(StoreError::RoundExists { round: 2 })));
        assert_eq!(store.next_round().unwrap(), Some(3));
        commit(&store, 3, b"three");
        assert_eq!(store.latest().unwrap(), Some(3));
        assert_eq!(store.rounds().unwrap(), vec![1, 2, 3], "once below the pointer, the complete round is listed");
        assert_eq!(fs::read(dir.path().join("rounds/00000000000000000002/bundle.cbor")).unwrap(), b"staged");
    }

    #[test]
    fn reserved_numbers_are_never_handed_out_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.next_round().unwrap(), Some(1));
        assert_eq!(store.reserve_round().unwrap(), 1);
        assert_eq!(store.next_round().unwrap(), Some(2));
        commit(&store, 1, b"one");
        // Round 2 is reserved and sent away, then the parent crashes before staging anything.
        assert_eq!(store.reserve_round().unwrap(), 2);
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.latest().unwrap(), Some(1));
        assert_eq!(store.next_round().unwrap(), Some(3));
        assert_eq!(store.reserve_round().unwrap(), 3);
        commit(&store, 3, b"three");
        assert_eq!(store.next_round().unwrap(), Some(4));
        assert_eq!(fs::read_to_string(dir.path().join("reserved")).unwrap(), "3\n");
        assert!(names(&dir.path().join("tmp")).is_empty());

        fs::write(dir.path().join("reserved"), u64::MAX.to_string() + "\n").unwrap();
        assert_eq!(store.next_round().unwrap(), None);
        assert!(matches!(store.reserve_round(), Err(StoreError::RoundsExhausted)));
        fs::write(dir.path().join("reserved"), b"x\n").unwrap();
        assert!(matches!(store.reserve_round(), Err(StoreError::Corrupt { .. })));
    }

    #[test]
    fn latest_naming_a_missing_round_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        commit(&store, 1, b"one");
        fs::write(dir.path().join("latest"), b"2\n").unwrap();
        assert!(matches!(store.latest(), Err(StoreError::Corrupt { .. })));
        assert!(matches!(store.bundle(1), Err(StoreError::Corrupt { .. })));
        assert!(matches!(store.begin(3), Err(StoreError::Corrupt { .. })));
    }

    #[test]
    fn malformed_latest_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        commit(&store, 1, b"one");
        for text in [&b""[..], b"1", b"\n", b" 1\n", b"+1\n", b"1\n\n", b"18446744073709551616\n", b"\xff\n"] {
            fs::write(dir.path().join("latest"), text).unwrap();
            assert!(matches!(store.latest(), Err(StoreError::Corrupt { .. })), "{text:?} accepted");
        }
        fs::write(dir.path().join("latest"), vec![b'1'; 10_000]).unwrap();
        assert!(matches!(store.latest(), Err(StoreError::Corrupt { .. })));
        fs::write(dir.path().join("latest"), b"01\n").unwrap();
        assert_eq!(store.latest().unwrap(), Some(1));
    }

    #[test]
    fn published_round_without_bundle_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        commit(&store, 1, b"one");
        fs::remove_file(dir.path().join("rounds/00000000000000000001/bundle.cbor")).unwrap();
        assert!(matches!(store.bundle(1), Err(StoreError::Corrupt { .. })));
    }

    #[test]
    fn rounds_ignores_foreign_names() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        commit(&store, 2, b"two");
        for name in ["notes", "1", "0000000000000000000x", "000000000000000000001", "99999999999999999999"] {
            fs::create_dir(dir.path().join("rounds").join(name)).unwrap();
        }
        assert_eq!(store.rounds().unwrap(), vec![2]);
        assert_eq!(round_dir_name(u64::MAX), "18446744073709551615");
        assert_eq!(parse_round_dir_name("18446744073709551615"), Some(u64::MAX));
    }

    /// The child half of the crash tests: commits round 2 into the store named by the
    /// environment, under whatever `SOLVENCY_PARENT_CRASH_AT` the parent test set. A no-op when
    /// run on its own.
    #[test]
    fn crash_child() {
        let Ok(dir) = std::env::var("SOLVENCY_STORE_TEST_CHILD_DIR") else {
            return;
        };
        let store = Store::open(Path::new(&dir)).unwrap();
        commit(&store, 2, b"two");
    }

    /// Commits round 1, then runs [`crash_child`] in a new process crashing at `point`, and
    /// returns the store as the crash left it (before reopening).
    fn crash_at(point: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        commit(&Store::open(dir.path()).unwrap(), 1, b"one");
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["store::tests::crash_child", "--exact", "--test-threads=1", "--quiet"])
            .env("SOLVENCY_STORE_TEST_CHILD_DIR", dir.path())
            .env(CRASH_ENV, point)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(!status.success(), "the child did not crash at {point}");
        dir
    }

    #[test]
    fn crash_at_staged_leaves_the_previous_round() {
        let dir = crash_at("staged");
        assert_eq!(names(&dir.path().join("tmp")).len(), 1);
        let store = Store::open(dir.path()).unwrap();
        assert!(names(&dir.path().join("tmp")).is_empty());
        assert_eq!(store.latest().unwrap(), Some(1));
        assert_eq!(names(&dir.path().join("rounds")), ["00000000000000000001"]);
        assert_eq!(store.next_round().unwrap(), Some(2));
    }

    #[test]
    fn crash_at_renamed_leaves_the_previous_round_and_burns_the_number() {
        let dir = crash_at("renamed");
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.latest().unwrap(), Some(1));
        assert_eq!(store.rounds().unwrap(), vec![1]);
        assert_eq!(store.bundle(2).unwrap(), None);
        assert!(matches!(store.begin(2), Err(StoreError::RoundExists { round: 2 })));
        assert_eq!(store.next_round().unwrap(), Some(3));
    }

    #[test]
    fn every_stored_round_is_logged_once_in_order_even_across_crashes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        commit(&store, 1, b"one");
        // A crash after the rename, before the log line: logged at the next open.
        let staging = stage_by_hand(dir.path(), 2);
        fs::rename(staging, dir.path().join("rounds/00000000000000000002")).unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        commit(&store, 3, b"three");
        let log = attestation::log::parse(&fs::read(dir.path().join("log.jsonl")).unwrap()).unwrap();
        let rounds: Vec<u64> = log.entries().iter().map(|e| e.round).collect();
        assert_eq!(rounds, [1, 2, 3]);
        assert_eq!(store.round_by_digest(&fake_identity(b"three").manifest_digest).unwrap(), Some(3));
        assert_eq!(store.round_by_digest(&fake_identity(b"staged").manifest_digest).unwrap(), Some(2));
        assert_eq!(store.round_by_digest(&[0; 48]).unwrap(), None);
        let (_, head, len) = store.log_file();
        assert_eq!((head, len), (log.head(), 3));
        drop(store);

        // A line cut short by a crash while appending is removed, and the chain goes on.
        let mut bytes = fs::read(dir.path().join("log.jsonl")).unwrap();
        bytes.extend_from_slice(b"{\"seq\":3,\"rou");
        fs::write(dir.path().join("log.jsonl"), &bytes).unwrap();
        let store = Store::open(dir.path()).unwrap();
        commit(&store, 4, b"four");
        let log = attestation::log::parse(&fs::read(dir.path().join("log.jsonl")).unwrap()).unwrap();
        assert_eq!(log.entries().len(), 4);
        drop(store);

        // A log edited by hand (a round removed) is refused, not served.
        let text = String::from_utf8(fs::read(dir.path().join("log.jsonl")).unwrap()).unwrap();
        let edited: String = text.lines().enumerate().filter(|(i, _)| *i != 1).map(|(_, l)| format!("{l}\n")).collect();
        fs::write(dir.path().join("log.jsonl"), edited).unwrap();
        assert!(matches!(Store::open(dir.path()), Err(StoreError::Corrupt { .. })));
    }

    #[test]
    fn crash_at_logged_leaves_the_round_logged_and_unpublished() {
        let dir = crash_at("logged");
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.latest().unwrap(), Some(1));
        let log = attestation::log::parse(&fs::read(dir.path().join("log.jsonl")).unwrap()).unwrap();
        assert_eq!(log.entries().iter().map(|e| e.round).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(store.next_round().unwrap(), Some(3));
    }

    #[test]
    fn crash_at_latest_temp_leaves_the_previous_round() {
        let dir = crash_at("latest-temp");
        let tmp = names(&dir.path().join("tmp"));
        assert!(tmp.len() == 1 && tmp[0].starts_with("latest-"), "{tmp:?}");
        let store = Store::open(dir.path()).unwrap();
        assert!(names(&dir.path().join("tmp")).is_empty());
        assert_eq!(store.latest().unwrap(), Some(1));
        assert!(matches!(store.begin(2), Err(StoreError::RoundExists { round: 2 })));
    }

    #[test]
    fn an_unknown_crash_point_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        commit(&Store::open(dir.path()).unwrap(), 1, b"one");
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["store::tests::crash_child", "--exact", "--test-threads=1", "--quiet"])
            .env("SOLVENCY_STORE_TEST_CHILD_DIR", dir.path())
            .env(CRASH_ENV, "nowhere")
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(Store::open(dir.path()).unwrap().latest().unwrap(), Some(2));
    }

    #[test]
    fn a_second_process_cannot_open_a_store_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut pending = store.begin(1).unwrap();
        pending.write_bundle(b"bundle").unwrap();
        pending.set_identity(fake_identity(b"bundle")).unwrap();
        // A second open (its own file description, as another process's would be) is refused
        // and clears nothing.
        assert!(matches!(Store::open(dir.path()), Err(StoreError::Locked { .. })));
        pending.commit().unwrap();
        drop(store);
        let reopened = Store::open(dir.path()).unwrap();
        assert_eq!(reopened.latest().unwrap(), Some(1));
    }
}
