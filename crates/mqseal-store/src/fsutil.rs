//! Crash-safe file primitives: atomic replace, directory fsync, private modes, lock files.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Result, StoreError};

/// Mode of secret files (and of every state file).
pub(crate) const SECRET_MODE: u32 = 0o600;
/// Mode of public files (`identity.pub`, `trusted`, `issued`).
pub(crate) const PUBLIC_MODE: u32 = 0o644;
/// Mode of the store's directories.
pub(crate) const DIR_MODE: u32 = 0o700;

/// Wraps an I/O error with the path and action.
pub(crate) fn io_err(path: &Path, action: &'static str) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io {
        path,
        action,
        source,
    }
}

/// Opens a new file for writing with `mode` applied at creation (never a moment with wider
/// permissions), failing if it exists.
fn create_new(path: &Path, mode: u32) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    options.open(path)
}

/// Creates a file that must not exist yet, writes it and fsyncs it (and its directory).
pub(crate) fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let mut f = create_new(path, mode).map_err(io_err(path, "create"))?;
    f.write_all(bytes).map_err(io_err(path, "write"))?;
    f.sync_all().map_err(io_err(path, "fsync"))?;
    sync_parent(path)
}

/// Replaces `path` atomically: write a temporary sibling, fsync it, rename it over `path`, fsync
/// the directory. After a crash at any instant the file holds either the old or the new bytes.
///
/// The temporary name is fixed (`.NAME.tmp`): callers hold the lock that serialises writers of
/// `path`, and a leftover from a crash is removed first.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let tmp = temp_path(path);
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(&tmp, "remove stale temporary file")(e)),
    }
    let result = (|| {
        let mut f = create_new(&tmp, mode).map_err(io_err(&tmp, "create"))?;
        f.write_all(bytes).map_err(io_err(&tmp, "write"))?;
        f.sync_all().map_err(io_err(&tmp, "fsync"))?;
        drop(f);
        fs::rename(&tmp, path).map_err(io_err(path, "rename"))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    sync_parent(path)
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

/// Fsyncs the directory holding `path`, so a rename or creation in it is durable.
pub(crate) fn sync_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => sync_dir(dir),
        _ => sync_dir(Path::new(".")),
    }
}

/// Fsyncs a directory (no-op where directories cannot be opened).
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        let d = File::open(dir).map_err(io_err(dir, "open directory"))?;
        d.sync_all().map_err(io_err(dir, "fsync directory"))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Creates a private directory (mode 0700); fine if it exists.
pub(crate) fn create_dir_private(dir: &Path) -> Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(DIR_MODE);
    }
    builder.create(dir).map_err(io_err(dir, "create directory"))
}

/// Reads a whole file; `None` if it does not exist. With `secret`, refuses files that group or
/// others may access (checked on the opened file, so there is no window between check and read).
pub(crate) fn read_optional(path: &Path, secret: bool) -> Result<Option<Vec<u8>>> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path, "open")(e)),
    };
    let meta = f.metadata().map_err(io_err(path, "stat"))?;
    if !meta.is_file() {
        return Err(StoreError::corrupt(path, None, "not a regular file"));
    }
    if secret {
        check_private(path, &meta)?;
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    f.read_to_end(&mut bytes).map_err(io_err(path, "read"))?;
    Ok(Some(bytes))
}

/// Reads a file that must exist.
pub(crate) fn read_required(path: &Path, secret: bool, hint: &'static str) -> Result<Vec<u8>> {
    read_optional(path, secret)?.ok_or_else(|| StoreError::Missing {
        path: path.to_path_buf(),
        hint,
    })
}

/// Checks that a file or directory conferring trust can be written by nobody but `owner` (the
/// owner of `identity.key`): not writable by group or others, and owned by `owner`.
#[cfg(unix)]
pub(crate) fn check_trust(path: &Path, owner: u32) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = fs::metadata(path).map_err(io_err(path, "stat"))?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(StoreError::Insecure {
            path: path.to_path_buf(),
            mode,
            reason: "group or others may write it (fix: chmod go-w)",
        });
    }
    if meta.uid() != owner {
        return Err(StoreError::Insecure {
            path: path.to_path_buf(),
            mode,
            reason: "it is owned by another user than identity.key (fix: chown it to the store's owner)",
        });
    }
    Ok(())
}

#[cfg(not(unix))]
pub(crate) fn check_trust(_path: &Path, _owner: u32) -> Result<()> {
    Ok(())
}

/// The owner (uid) of a file (0 where there is no such notion).
#[cfg(unix)]
pub(crate) fn owner_of(path: &Path) -> Result<u32> {
    use std::os::unix::fs::MetadataExt;
    Ok(fs::metadata(path).map_err(io_err(path, "stat"))?.uid())
}

#[cfg(not(unix))]
pub(crate) fn owner_of(_path: &Path) -> Result<u32> {
    Ok(0)
}

#[cfg(unix)]
fn check_private(path: &Path, meta: &fs::Metadata) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(StoreError::Permissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path, _meta: &fs::Metadata) -> Result<()> {
    Ok(())
}

/// An exclusive advisory lock on a file (`flock`), released when dropped or when the process
/// dies (including SIGKILL), so a crash never leaves a stale lock.
#[derive(Debug)]
pub(crate) struct LockFile {
    _file: File,
}

impl LockFile {
    /// Takes the lock, failing with [`StoreError::Locked`] if another holder has it.
    ///
    /// A lock released a moment ago can still be held for an instant by a child process that
    /// another thread is spawning (between `fork` and `exec` the child shares every open file),
    /// so a busy lock is retried for up to ~60 ms before giving up.
    pub(crate) fn try_acquire(path: &Path) -> Result<LockFile> {
        let file = Self::open(path)?;
        let mut pause = std::time::Duration::from_millis(1);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(LockFile { _file: file }),
                Err(fs::TryLockError::WouldBlock) if pause.as_millis() <= 32 => {
                    std::thread::sleep(pause);
                    pause *= 2;
                }
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(StoreError::Locked {
                        path: path.to_path_buf(),
                    });
                }
                Err(fs::TryLockError::Error(e)) => return Err(io_err(path, "lock")(e)),
            }
        }
    }

    /// Takes the lock, waiting for other holders (used for short read-modify-write sections).
    pub(crate) fn acquire(path: &Path) -> Result<LockFile> {
        let file = Self::open(path)?;
        file.lock().map_err(io_err(path, "lock"))?;
        Ok(LockFile { _file: file })
    }

    fn open(path: &Path) -> Result<File> {
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(SECRET_MODE);
        }
        options.open(path).map_err(io_err(path, "open lock file"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn atomic_write_replaces_and_cleans_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        fs::write(temp_path(&p), b"stale").unwrap();
        write_atomic(&p, b"one", SECRET_MODE).unwrap();
        write_atomic(&p, b"two", SECRET_MODE).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert!(!temp_path(&p).exists());
        assert!(read_optional(&p, true).unwrap().is_some());
        assert!(
            read_optional(&dir.path().join("none"), true)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn lock_is_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lock");
        let held = LockFile::try_acquire(&p).unwrap();
        assert!(matches!(
            LockFile::try_acquire(&p),
            Err(StoreError::Locked { .. })
        ));
        drop(held);
        LockFile::try_acquire(&p).unwrap();
    }
}
