//! Reading and writing key files in the keystore formats of `mqseal-store` (`identity.key`,
//! `identity.pub`; `spec/keystore.md`): secret files are written 0600 and refused when group or
//! others may read them.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use mqseal_store::StoreError;
use zeroize::Zeroizing;

/// Mode of secret files.
pub const SECRET_MODE: u32 = 0o600;
/// Mode of public files.
pub const PUBLIC_MODE: u32 = 0o644;

fn io(path: &Path, action: &'static str) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io {
        path,
        action,
        source,
    }
}

/// Reads a file; with `secret`, refuses one that group or others may access.
pub fn read(path: &Path, secret: bool) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    let mut file = File::open(path).map_err(io(path, "open"))?;
    if secret {
        let mode = file
            .metadata()
            .map_err(io(path, "stat"))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(StoreError::Permissions {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    let mut bytes = Zeroizing::new(Vec::new());
    file.read_to_end(&mut bytes).map_err(io(path, "read"))?;
    Ok(bytes)
}

/// Writes a new file (never replaces one) with `mode`, durably: data and directory entry are
/// flushed before returning.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), StoreError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io(path, "create"))?;
    file.write_all(bytes).map_err(io(path, "write"))?;
    file.sync_all().map_err(io(path, "fsync"))?;
    let parent: PathBuf = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    File::open(&parent)
        .and_then(|d| d.sync_all())
        .map_err(io(&parent, "fsync"))?;
    Ok(())
}

/// Checks a peer name (1 to 64 of `A-Z a-z 0-9 . _ - @`), as the keystore does.
pub fn check_name(name: &str) -> Result<(), StoreError> {
    if mqseal_store::formats::valid_name(name) {
        Ok(())
    } else {
        Err(StoreError::InvalidName {
            name: name.to_string(),
        })
    }
}
