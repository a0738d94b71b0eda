//! The one error type of the store crate, with stable numeric codes.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Everything that can go wrong with a store.
///
/// Each variant has a stable numeric [`code`](StoreError::code): store errors use 101 and up,
/// and [`StoreError::Core`] passes the core crate's code (1..=23) through, so one number space
/// covers both. New variants may be added, so match with a wildcard arm.
///
/// No variant ever carries secret material; messages name the file and say how to fix it.
#[non_exhaustive]
#[derive(Debug)]
pub enum StoreError {
    /// An operating-system I/O error while doing `action` on `path`.
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the store was doing ("read", "write", "rename", "fsync"…).
        action: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// A secret file is accessible by group or others; the store refuses to load it.
    Permissions {
        /// The secret file.
        path: PathBuf,
        /// Its permission bits (e.g. `0o644`).
        mode: u32,
    },
    /// A store file is not in its documented format: corrupt, truncated or edited wrongly.
    /// The store never falls back to defaults (a reset sequence counter would reuse nonces).
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The 1-based line (text files) where the problem is, if known.
        line: Option<usize>,
        /// What is wrong.
        reason: String,
    },
    /// A file the store needs is missing.
    Missing {
        /// The missing file.
        path: PathBuf,
        /// Why it matters and what to do.
        hint: &'static str,
    },
    /// Another process holds the lock (only one process may seal, and one may open, per store).
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// `create` found an existing, non-empty directory.
    AlreadyExists {
        /// The directory.
        path: PathBuf,
    },
    /// A peer name is not 1..=64 characters of `A-Z a-z 0-9 . _ - @`.
    InvalidName {
        /// The rejected name.
        name: String,
    },
    /// No trusted peer has this name.
    UnknownPeer {
        /// The name looked up.
        name: String,
    },
    /// A peer with this name or public key is already trusted.
    DuplicatePeer {
        /// The name being added.
        name: String,
        /// The name already holding that name or key.
        existing: String,
    },
    /// A key (or grant) is older than an epoch the store holds or held for the same filter:
    /// applying it would bring back a rotated-out key.
    StaleKey {
        /// The key filter.
        filter: String,
        /// The epoch offered.
        epoch: u32,
        /// The newest epoch held or retired for that filter.
        newest: u32,
    },
    /// A different key is already held for the same filter and epoch.
    KeyConflict {
        /// The key filter.
        filter: String,
        /// The epoch.
        epoch: u32,
    },
    /// No held key covers (can derive) this filter.
    NoKeyFor {
        /// The filter asked for.
        filter: String,
    },
    /// A grant topic prefix is not usable.
    InvalidGrantPrefix {
        /// The rejected prefix.
        prefix: String,
        /// Why.
        reason: &'static str,
    },
    /// A grant arrived on a topic that does not match its recipient, issuer and filter.
    GrantTopicMismatch {
        /// The topic it arrived on.
        topic: String,
        /// The topic it should have arrived on (or a description).
        expected: String,
    },
    /// A persistent opener could not undo a failed journal write; it refuses to continue
    /// (reopen it).
    Poisoned,
    /// A file or directory that confers trust (the `trusted` peers file, which makes issuers, or
    /// the store directory itself) may be written by someone other than the store's owner:
    /// writable by group or others, or owned by another user than `identity.key`.
    Insecure {
        /// The file or directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// What is wrong and how to fix it.
        reason: &'static str,
    },
    /// A persistent sealer was used in a process other than the one that opened it (after a
    /// `fork`): both processes would hand out the same sequence numbers. Open a new sealer in
    /// the child (after the parent released the store's lock).
    Forked {
        /// The process that opened the sealer.
        opened_by: u32,
        /// The process that tried to seal.
        used_by: u32,
    },
    /// An error of the core crate (bad key, failed grant, exhausted sequence…).
    Core(mqseal::Error),
}

impl StoreError {
    /// Every store-specific `(code, name)`, in code order (the core codes are `mqseal::Error`'s).
    pub const CODES: [(u32, &'static str); 17] = [
        (101, "io"),
        (102, "permissions"),
        (103, "corrupt"),
        (104, "missing"),
        (105, "locked"),
        (106, "already_exists"),
        (107, "invalid_name"),
        (108, "unknown_peer"),
        (109, "duplicate_peer"),
        (110, "stale_key"),
        (111, "key_conflict"),
        (112, "no_key_for"),
        (113, "invalid_grant_prefix"),
        (114, "grant_topic_mismatch"),
        (115, "poisoned"),
        (116, "forked"),
        (117, "insecure"),
    ];

    /// The stable numeric code (101.. for store errors; the core code for [`StoreError::Core`]).
    pub fn code(&self) -> u32 {
        match self {
            StoreError::Io { .. } => 101,
            StoreError::Permissions { .. } => 102,
            StoreError::Corrupt { .. } => 103,
            StoreError::Missing { .. } => 104,
            StoreError::Locked { .. } => 105,
            StoreError::AlreadyExists { .. } => 106,
            StoreError::InvalidName { .. } => 107,
            StoreError::UnknownPeer { .. } => 108,
            StoreError::DuplicatePeer { .. } => 109,
            StoreError::StaleKey { .. } => 110,
            StoreError::KeyConflict { .. } => 111,
            StoreError::NoKeyFor { .. } => 112,
            StoreError::InvalidGrantPrefix { .. } => 113,
            StoreError::GrantTopicMismatch { .. } => 114,
            StoreError::Poisoned => 115,
            StoreError::Forked { .. } => 116,
            StoreError::Insecure { .. } => 117,
            StoreError::Core(e) => e.code(),
        }
    }

    /// A stable snake_case name (the core error's name for [`StoreError::Core`]).
    pub fn name(&self) -> &'static str {
        match self {
            StoreError::Core(e) => e.name(),
            other => {
                let code = other.code();
                StoreError::CODES
                    .iter()
                    .find(|(c, _)| *c == code)
                    .map_or("unknown", |(_, n)| n)
            }
        }
    }

    /// The core error, if this is one.
    pub fn core(&self) -> Option<mqseal::Error> {
        match self {
            StoreError::Core(e) => Some(*e),
            _ => None,
        }
    }

    pub(crate) fn corrupt(
        path: impl Into<PathBuf>,
        line: Option<usize>,
        reason: impl Into<String>,
    ) -> StoreError {
        StoreError::Corrupt {
            path: path.into(),
            line,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Io {
                path,
                action,
                source,
            } => write!(f, "{}: {action} failed: {source}", path.display()),
            StoreError::Permissions { path, mode } => write!(
                f,
                "{p}: secret file has mode {mode:04o} (group/others may access it); refusing to \
                 load it. Fix: chmod 600 {p}",
                p = path.display()
            ),
            StoreError::Corrupt { path, line, reason } => match line {
                Some(line) => write!(f, "{}:{line}: corrupt store file: {reason}", path.display()),
                None => write!(f, "{}: corrupt store file: {reason}", path.display()),
            },
            StoreError::Missing { path, hint } => {
                write!(f, "{}: missing: {hint}", path.display())
            }
            StoreError::Locked { path } => write!(
                f,
                "{}: locked by another process (one sealing and one opening process per store)",
                path.display()
            ),
            StoreError::AlreadyExists { path } => write!(
                f,
                "{}: already exists and is not empty; refusing to overwrite a store",
                path.display()
            ),
            StoreError::InvalidName { name } => write!(
                f,
                "invalid peer name {name:?}: use 1 to 64 characters of A-Z a-z 0-9 . _ - @"
            ),
            StoreError::UnknownPeer { name } => write!(f, "no trusted peer named {name:?}"),
            StoreError::DuplicatePeer { name, existing } => write!(
                f,
                "cannot add {name:?}: peer {existing:?} already has this name or public key"
            ),
            StoreError::StaleKey {
                filter,
                epoch,
                newest,
            } => write!(
                f,
                "key for {filter:?} epoch {epoch} is stale: epoch {newest} is held or was retired"
            ),
            StoreError::KeyConflict { filter, epoch } => write!(
                f,
                "a different key for {filter:?} epoch {epoch} is already held"
            ),
            StoreError::NoKeyFor { filter } => {
                write!(f, "no held key covers the filter {filter:?}")
            }
            StoreError::InvalidGrantPrefix { prefix, reason } => {
                write!(f, "invalid grant topic prefix {prefix:?}: {reason}")
            }
            StoreError::GrantTopicMismatch { topic, expected } => {
                write!(f, "grant arrived on {topic:?}, expected {expected}")
            }
            StoreError::Insecure { path, mode, reason } => write!(
                f,
                "{p}: mode {mode:04o}: {reason}; refusing to trust it",
                p = path.display()
            ),
            StoreError::Forked { opened_by, used_by } => write!(
                f,
                "this sealer was opened by process {opened_by} and cannot seal in process \
                 {used_by} (a fork): both would use the same sequence numbers. Open a new sealer \
                 in this process (Store::sealer) once the other has released the store"
            ),
            StoreError::Poisoned => f.write_str(
                "replay journal write failed and could not be undone; reopen the opener",
            ),
            StoreError::Core(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Io { source, .. } => Some(source),
            StoreError::Core(e) => Some(e),
            _ => None,
        }
    }
}

impl From<mqseal::Error> for StoreError {
    fn from(e: mqseal::Error) -> StoreError {
        StoreError::Core(e)
    }
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, StoreError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_named() {
        for (i, (code, name)) in StoreError::CODES.iter().enumerate() {
            assert_eq!(*code as usize, 101 + i);
            assert!(!name.is_empty());
        }
        let e = StoreError::Locked { path: "x".into() };
        assert_eq!((e.code(), e.name()), (105, "locked"));
        let core = StoreError::from(mqseal::Error::Replay);
        assert_eq!((core.code(), core.name()), (10, "replay"));
        let p = StoreError::Permissions {
            path: "/s/identity.key".into(),
            mode: 0o644,
        };
        let msg = p.to_string();
        assert!(
            msg.contains("0644") && msg.contains("chmod 600 /s/identity.key"),
            "{msg}"
        );
    }
}
