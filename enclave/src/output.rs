//! Writing a proven round to a directory so that it appears whole or not at all: everything is
//! written and fsynced in a temporary sibling directory, which is then renamed into place.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use attestation::inclusion::file_name;

use crate::error::KeyFileError;
use crate::keys::ProvingKeys;
use crate::round::ProvedRound;

/// Why the output could not be written.
#[allow(missing_docs)] // fields are named for what they hold
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The target exists and is not an empty directory; earlier output is never overwritten.
    #[error("{0} already exists and is not empty; refusing to overwrite it")]
    Exists(PathBuf),
    /// A file system operation failed.
    #[error("{op} {path}: {source}")]
    Io { op: &'static str, path: PathBuf, source: std::io::Error },
}

fn io<T>(op: &'static str, path: &Path, r: std::io::Result<T>) -> Result<T, OutputError> {
    r.map_err(|source| OutputError::Io { op, path: path.to_owned(), source })
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    let mut f = io("create", path, File::create(path))?;
    io("write", path, f.write_all(bytes))?;
    io("fsync", path, f.sync_all())
}

fn sync_dir(path: &Path) -> Result<(), OutputError> {
    io("fsync", path, File::open(path).and_then(|d| d.sync_all()))
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Writes proving keys to `path` atomically (temporary file, fsync, rename, fsync directory).
/// An existing file is never replaced.
pub fn write_keys(path: &Path, keys: &ProvingKeys) -> Result<(), OutputError> {
    if path.exists() {
        return Err(OutputError::Exists(path.to_owned()));
    }
    let parent = parent_of(path);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "keys".into());
    let staging = parent.join(format!(".{name}.partial"));
    let result = (|| {
        let file = io("create", &staging, File::create(&staging))?;
        let mut writer = std::io::BufWriter::new(file);
        keys.write_to(&mut writer).map_err(|e| match e {
            KeyFileError::Io(source) => OutputError::Io { op: "write", path: staging.clone(), source },
            other => OutputError::Io {
                op: "encode",
                path: staging.clone(),
                source: std::io::Error::other(other.to_string()),
            },
        })?;
        let file = writer.into_inner().map_err(|e| OutputError::Io {
            op: "write",
            path: staging.clone(),
            source: e.into_error(),
        })?;
        io("fsync", &staging, file.sync_all())?;
        io("rename", path, fs::rename(&staging, path))?;
        sync_dir(&parent)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&staging);
    }
    result
}

/// Refuses an output directory that exists and is not empty (earlier output is never
/// overwritten). Callers check before expensive work; [`write_round`] checks again.
pub fn check_free(dir: &Path) -> Result<(), OutputError> {
    let empty = match fs::read_dir(dir) {
        Ok(mut entries) => entries.next().is_none(),
        Err(_) => !dir.exists(),
    };
    if empty {
        Ok(())
    } else {
        Err(OutputError::Exists(dir.to_owned()))
    }
}

/// Writes `DIR/bundle.cbor`, `DIR/inclusion/<account>.json` for every account, and `extra`
/// files (name, contents) beside the bundle, all or nothing.
pub fn write_round(dir: &Path, round: &ProvedRound, extra: &[(&str, &[u8])]) -> Result<(), OutputError> {
    check_free(dir)?;
    let parent = parent_of(dir);
    io("create", &parent, fs::create_dir_all(&parent))?;
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "round".into());
    let staging = parent.join(format!(".{name}.partial-{}", hex::encode(round.bundle.round_id)));
    io("create", &staging, fs::create_dir(&staging))?;
    let result = (|| {
        write_synced(&staging.join("bundle.cbor"), &round.bundle.encode())?;
        for (name, contents) in extra {
            write_synced(&staging.join(name), contents)?;
        }
        let inclusion = staging.join("inclusion");
        io("create", &inclusion, fs::create_dir(&inclusion))?;
        for proof in round.inclusion_proofs(None) {
            write_synced(&inclusion.join(file_name(&proof.account_id)), proof.to_json().as_bytes())?;
        }
        sync_dir(&inclusion)?;
        sync_dir(&staging)?;
        if dir.exists() {
            io("remove", dir, fs::remove_dir(dir))?;
        }
        io("rename", dir, fs::rename(&staging, dir))?;
        sync_dir(&parent)
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&staging);
    }
    result
}
