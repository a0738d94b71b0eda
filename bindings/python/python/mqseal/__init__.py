"""mqseal: end-to-end payload encryption for MQTT.

Brokers route messages but only ever see ciphertext. A :class:`Sealer` turns a topic and a
payload into sealed bytes (per-topic key, ChaCha20-Poly1305 with the topic and retain flag bound
in, an Ed25519-signed sequence number); an :class:`Opener` verifies, decrypts and rejects
replays. Keys follow the MQTT topic tree (:class:`TreeKey`) and reach their holders as
:class:`Grant` objects. Every failure raises a subclass of :class:`Error` carrying the core's
stable ``code``.

>>> import mqseal
>>> sensor = mqseal.Identity.generate()
>>> plant = mqseal.TreeKey.generate("plant/#", 1)
>>> sealer = mqseal.Sealer(sensor)
>>> sealer.add_key(plant.derive("plant/7/#"))
>>> sealed = sealer.seal("plant/7/temp", b"21.5")
>>> opener = mqseal.Opener()
>>> opener.trust_sender(sensor.public)
>>> opener.add_key(plant)
>>> opener.open("plant/7/temp", sealed).payload
b'21.5'

All cryptography runs in the Rust core crate; this package only converts types. The paho-mqtt
integration lives in :mod:`mqseal.paho`.
"""

from mqseal._errors import (
    AuthenticationError,
    BadSignatureError,
    BufferTooSmallError,
    DecryptionError,
    DuplicateError,
    EpochExpiredError,
    Error,
    ExpiredError,
    GrantError,
    GrantNotForUsError,
    InvalidFilterError,
    InvalidKeyError,
    InvalidTopicError,
    KeyNotFound,
    MalformedError,
    MissingTimestampError,
    PolicyError,
    ProfileNotAllowedError,
    RandomnessError,
    ReplayError,
    RetainMismatchError,
    SequenceExhaustedError,
    TooLargeError,
    TooOldError,
    UnknownSenderError,
    UnsupportedVersionError,
    UntrustedIssuerError,
    StoreError,
    StoreIoError,
    InsecurePermissionsError,
    CorruptFileError,
    MissingFileError,
    StoreLockedError,
    StoreExistsError,
    InvalidNameError,
    UnknownPeerError,
    DuplicatePeerError,
    StaleKeyError,
    KeyConflictError,
    NoKeyForError,
    InvalidGrantPrefixError,
    GrantTopicMismatchError,
    StorePoisonedError,
    error_for_code,
)
from mqseal._native import (
    MAX_OVERHEAD_GROUP_MAC,
    MAX_OVERHEAD_SIGNED,
    MAX_SEALED_LEN,
    REPLAY_WINDOW,
    REPLAY_WINDOW_BYTES,
    VERSION,
    Grant,
    Header,
    Identity,
    Opened,
    Opener,
    OpenPolicy,
    PublicIdentity,
    ReplayWindow,
    Sealer,
    TopicKey,
    TreeKey,
    __version__,
    error_codes,
    inspect,
    store_error_codes,
    validate_topic,
)

__all__ = [
    "MAX_OVERHEAD_GROUP_MAC",
    "MAX_OVERHEAD_SIGNED",
    "MAX_SEALED_LEN",
    "REPLAY_WINDOW",
    "REPLAY_WINDOW_BYTES",
    "VERSION",
    "AuthenticationError",
    "BadSignatureError",
    "BufferTooSmallError",
    "DecryptionError",
    "DuplicateError",
    "EpochExpiredError",
    "Error",
    "ExpiredError",
    "Grant",
    "GrantError",
    "GrantNotForUsError",
    "Header",
    "Identity",
    "InvalidFilterError",
    "InvalidKeyError",
    "InvalidTopicError",
    "KeyNotFound",
    "MalformedError",
    "MissingTimestampError",
    "OpenPolicy",
    "Opened",
    "Opener",
    "PolicyError",
    "ProfileNotAllowedError",
    "PublicIdentity",
    "RandomnessError",
    "ReplayError",
    "ReplayWindow",
    "RetainMismatchError",
    "Sealer",
    "SequenceExhaustedError",
    "TooLargeError",
    "TooOldError",
    "TopicKey",
    "TreeKey",
    "UnknownSenderError",
    "UnsupportedVersionError",
    "UntrustedIssuerError",
    "__version__",
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
    "error_codes",
    "store_error_codes",
    "error_for_code",
    "inspect",
    "validate_topic",
]
