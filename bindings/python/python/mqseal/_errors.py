"""The exception hierarchy of mqseal.

Every failure of the core library surfaces as an instance of a subclass of :class:`Error`
carrying the core's stable numeric ``code`` (the same numbers as the Rust ``Error::code()`` and
the C API) and its snake_case ``name``. Each code has its own class; related codes share a base
so that one ``except`` clause catches a whole family::

    Error
    ├── MalformedError ── UnsupportedVersionError
    ├── InvalidTopicError, InvalidFilterError, InvalidKeyError
    ├── UnknownSenderError
    ├── KeyNotFound
    ├── AuthenticationError ── BadSignatureError, DecryptionError
    ├── ReplayError ── DuplicateError, TooOldError
    ├── PolicyError ── ExpiredError, MissingTimestampError, RetainMismatchError,
    │                  ProfileNotAllowedError, EpochExpiredError, KeyExpiredError
    ├── GrantError ── GrantNotForUsError, UntrustedIssuerError, OutOfScopeError
    ├── SequenceExhaustedError, TooLargeError, BufferTooSmallError, RandomnessError
    └── StoreError ── StoreIoError (also an OSError), InsecurePermissionsError,
                      CorruptFileError, MissingFileError, StoreLockedError, StoreExistsError,
                      InvalidNameError, UnknownPeerError, DuplicatePeerError, StaleKeyError,
                      KeyConflictError, NoKeyForError, InvalidGrantPrefixError,
                      GrantTopicMismatchError, StorePoisonedError, StoreForkedError,
                      StoreInsecureError

Keystore errors (key files, ``mqseal.Store``) use codes from 101, as in the Rust
``mqseal-store`` crate; their message names the file and how to fix it.
"""

from __future__ import annotations

from typing import ClassVar

from mqseal import _native

__all__ = [
    "Error",
    "MalformedError",
    "UnsupportedVersionError",
    "InvalidTopicError",
    "InvalidFilterError",
    "InvalidKeyError",
    "UnknownSenderError",
    "KeyNotFound",
    "AuthenticationError",
    "BadSignatureError",
    "DecryptionError",
    "ReplayError",
    "DuplicateError",
    "TooOldError",
    "PolicyError",
    "ExpiredError",
    "MissingTimestampError",
    "RetainMismatchError",
    "ProfileNotAllowedError",
    "EpochExpiredError",
    "KeyExpiredError",
    "GrantError",
    "GrantNotForUsError",
    "UntrustedIssuerError",
    "OutOfScopeError",
    "SequenceExhaustedError",
    "TooLargeError",
    "BufferTooSmallError",
    "RandomnessError",
    "StoreError",
    "StoreIoError",
    "InsecurePermissionsError",
    "CorruptFileError",
    "MissingFileError",
    "StoreLockedError",
    "StoreExistsError",
    "InvalidNameError",
    "UnknownPeerError",
    "DuplicatePeerError",
    "StaleKeyError",
    "KeyConflictError",
    "NoKeyForError",
    "InvalidGrantPrefixError",
    "GrantTopicMismatchError",
    "StorePoisonedError",
    "StoreForkedError",
    "StoreInsecureError",
    "error_for_code",
]

# code -> (name, message), straight from the core crate.
_CODES: dict[int, tuple[str, str]] = {
    code: (name, message) for code, name, message in _native.error_codes()
}
# Keystore codes (101..) -> name; their messages come with each error.
_STORE_CODES: dict[int, str] = dict(_native.store_error_codes())


class Error(Exception):
    """Base class of every mqseal failure.

    ``code`` is the core's stable numeric code (1..), ``name`` its snake_case name (as in the
    test vectors), ``message`` a one-line explanation. Never carries secret material.
    """

    #: The core error name this class stands for ("" for family base classes).
    error_name: ClassVar[str] = ""

    code: int
    name: str
    message: str

    def __init__(self, code: int, name: str, message: str) -> None:
        Exception.__init__(self, code, name, message)
        self.code = code
        self.name = name
        self.message = message

    def __str__(self) -> str:
        return f"{self.message} ({self.name}, code {self.code})"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code}, name={self.name!r})"


class MalformedError(Error):
    """The bytes are not a well-formed mqseal message, grant or key."""

    error_name = "malformed"


class UnsupportedVersionError(MalformedError):
    """The message or grant uses an unknown format version (e.g. a plaintext payload)."""

    error_name = "unsupported_version"


class InvalidTopicError(Error):
    """The topic cannot be sealed for: empty, too long, NUL, '+' or '#', or not valid Unicode
    (lone surrogates, e.g. from ``os.fsdecode`` of bytes that are not UTF-8)."""

    error_name = "invalid_topic"


class InvalidFilterError(Error):
    """A key filter is not '#', 'prefix/#' or an exact topic."""

    error_name = "invalid_filter"


class InvalidKeyError(Error):
    """A public key is invalid or a weak (low-order) key."""

    error_name = "invalid_key"


class UnknownSenderError(Error):
    """The message's sender id belongs to no trusted sender."""

    error_name = "unknown_sender"


class KeyNotFound(Error):
    """No held key covers this topic (at the message's epoch)."""

    error_name = "key_not_found"


class AuthenticationError(Error):
    """The message or grant is not authentic: forged, altered, or moved to another topic."""


class BadSignatureError(AuthenticationError):
    """The Ed25519 signature does not verify."""

    error_name = "bad_signature"


class DecryptionError(AuthenticationError):
    """AEAD decryption failed (wrong key, or the message, topic or retain flag were altered)."""

    error_name = "authentication_failed"


class ReplayError(Error):
    """The sequence number was already accepted from this sender on this topic and epoch."""

    error_name = "replay"


class DuplicateError(ReplayError):
    """An MQTT redelivery (DUP flag) of an already accepted message: expected with QoS 1."""

    error_name = "duplicate"


class TooOldError(ReplayError):
    """The sequence number is older than the replay window."""

    error_name = "too_old"


class PolicyError(Error):
    """Authentic, but refused by the opener's policy."""


class ExpiredError(PolicyError):
    """The message timestamp is too old (or too far in the future)."""

    error_name = "expired"


class MissingTimestampError(PolicyError):
    """The opener requires a timestamp and the message has none."""

    error_name = "missing_timestamp"


class RetainMismatchError(PolicyError):
    """Delivered as retained, but not published retained."""

    error_name = "retain_mismatch"


class ProfileNotAllowedError(PolicyError):
    """The group-mac profile is not accepted by this opener."""

    error_name = "profile_not_allowed"


class EpochExpiredError(PolicyError):
    """The key epoch was rotated out and its grace period is over."""

    error_name = "epoch_expired"


class KeyExpiredError(PolicyError):
    """The key is outside its validity period (``TreeKey.not_before`` .. ``not_after``): when
    sealing, no key covering the topic is valid at the sealing time (expired, not begun yet, or no
    time to check a limit); when opening, the message's key expired more than the policy's
    ``validity_grace`` ago, or begins more than ``max_future_skew`` ahead."""

    error_name = "key_expired"


class GrantError(Error):
    """A grant cannot be accepted by this recipient."""


class GrantNotForUsError(GrantError):
    """The grant is addressed to another identity."""

    error_name = "grant_not_for_us"


class UntrustedIssuerError(GrantError):
    """The grant was issued by an identity not trusted as an issuer."""

    error_name = "untrusted_issuer"


class OutOfScopeError(GrantError):
    """The grant's issuer is trusted, but not for the grant's filter (its scope is narrower)."""

    error_name = "out_of_scope"


class SequenceExhaustedError(Error):
    """Sequence numbers are exhausted (reserve a new block with Sealer.set_sequence)."""

    error_name = "sequence_exhausted"


class TooLargeError(Error):
    """The message is larger than an MQTT payload can be."""

    error_name = "too_large"


class BufferTooSmallError(Error):
    """An output buffer is too small."""

    error_name = "buffer_too_small"


class RandomnessError(Error):
    """The operating system's random number generator failed."""

    error_name = "randomness"


class StoreError(Error):
    """A keystore problem: a key file or store directory (codes 101 and up)."""


class StoreIoError(StoreError, OSError):
    """The operating system refused a file operation (``errno`` and ``filename`` are set)."""

    error_name = "io"

    def __init__(self, code: int, name: str, message: str, errno: int | None = None,
                 filename: str | None = None) -> None:
        super().__init__(code, name, message)
        self.errno = errno
        self.strerror = message
        self.filename = filename

    def __str__(self) -> str:
        return f"{self.message} ({self.name}, code {self.code})"

    def __reduce__(self) -> tuple[type[StoreIoError], tuple[int, str, str, int | None, str | None]]:
        return (type(self), (self.code, self.name, self.message, self.errno, self.filename))


class InsecurePermissionsError(StoreError):
    """A secret file is accessible by group or others; it is not loaded (chmod 600 it)."""

    error_name = "permissions"


class CorruptFileError(StoreError):
    """A key or store file is not in its documented format (corrupt, truncated, mis-edited)."""

    error_name = "corrupt"


class MissingFileError(StoreError):
    """A file the store needs is missing."""

    error_name = "missing"


class StoreLockedError(StoreError):
    """Another process holds the store's lock (one sealing and one opening process)."""

    error_name = "locked"


class StoreExistsError(StoreError):
    """A store already exists in that directory."""

    error_name = "already_exists"


class InvalidNameError(StoreError):
    """A peer name is not 1 to 64 characters of A-Z a-z 0-9 . _ - @."""

    error_name = "invalid_name"


class UnknownPeerError(StoreError):
    """No trusted peer has this name."""

    error_name = "unknown_peer"


class DuplicatePeerError(StoreError):
    """A peer with this name or public key is already trusted."""

    error_name = "duplicate_peer"


class StaleKeyError(StoreError):
    """The key is older than an epoch held or retired for the same filter."""

    error_name = "stale_key"


class KeyConflictError(StoreError):
    """A different key is already held for the same filter and epoch."""

    error_name = "key_conflict"


class NoKeyForError(StoreError):
    """No held key covers this filter."""

    error_name = "no_key_for"


class InvalidGrantPrefixError(StoreError):
    """The grant topic prefix is not usable."""

    error_name = "invalid_grant_prefix"


class GrantTopicMismatchError(StoreError):
    """A grant arrived on a topic that does not match its recipient, issuer and filter."""

    error_name = "grant_topic_mismatch"


class StorePoisonedError(StoreError):
    """A replay journal write failed and could not be undone; reopen the opener."""

    error_name = "poisoned"


class StoreForkedError(StoreError):
    """A persistent sealer was used in a process forked from the one that opened it: both would
    hand out the same sequence numbers. Open a new sealer in the child (``Store.sealer()``) once
    the parent released the store."""

    error_name = "forked"


class StoreInsecureError(StoreError):
    """A file or directory that confers trust (``trusted``, the store directory) may be written
    by someone other than the store's owner (group/others-writable, or another owner); the
    message says which and how to fix it (``chmod go-w``, ``chown``)."""

    error_name = "insecure"


def _subclasses(cls: type[Error]) -> list[type[Error]]:
    found: list[type[Error]] = []
    for sub in cls.__subclasses__():
        found.append(sub)
        found.extend(_subclasses(sub))
    return found


_BY_NAME: dict[str, type[Error]] = {c.error_name: c for c in _subclasses(Error) if c.error_name}


def error_for_code(code: int) -> type[Error]:
    """The exception class of a core (1..) or keystore (101..) error code (:class:`Error` itself
    for unknown codes)."""
    name = _CODES[code][0] if code in _CODES else _STORE_CODES.get(code, "")
    return _BY_NAME.get(name, Error)


def _from_code(code: int, message: str | None = None) -> Error:
    """Called by the native module: the exception instance for a core error code."""
    name, default = _CODES.get(code, (f"error_{code}", f"mqseal error {code}"))
    return error_for_code(code)(code, name, message or default)


def _from_store(code: int, message: str, errno: int | None = None,
                filename: str | None = None) -> Error:
    """Called by the native module: the exception instance for a keystore error."""
    name = _STORE_CODES.get(code, f"error_{code}")
    cls = error_for_code(code)
    if cls is StoreIoError:
        return StoreIoError(code, name, message, errno, filename)
    return cls(code, name, message)


def _from_name(name: str) -> Error:
    """The exception instance for a core error name (e.g. ``"invalid_topic"``)."""
    for code, (known, _) in _CODES.items():
        if known == name:
            return _from_code(code)
    raise ValueError(f"unknown mqseal error name {name!r}")
