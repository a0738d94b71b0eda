"""An independent implementation of mqseal v2, written from spec/mqseal-v2.md alone.

It shares no code with the Rust core (only the `cryptography` package's primitives) and exists to
prove that the spec is sufficient: tests/spec-conformance/test_vectors.py replays every vector file
through it. Section numbers refer to the spec.

Receivers (section 7): `Opener` trusts senders for `signed`, and some of them for `group-mac` on
key filters (`trust_group_mac`, section 7.7); replay windows are per (sender, profile, epoch,
topic) and high-water marks per (sender, profile) (section 7.3). Grants (section 8): `Issuer`
carries the scope an issuer is trusted for (section 8.1); `out_of_scope` is checked last.
Key validity (section 4.1): `TreeKey.not_before` / `not_after`, chosen by sealers at the sealing
time (`best_key`, section 6 step 2) and checked by receivers with skew and grace (section 7.1
step 4).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


ERROR_CODES = {  # section 9
    "malformed": 1,
    "unsupported_version": 2,
    "invalid_topic": 3,
    "invalid_filter": 4,
    "invalid_key": 5,
    "unknown_sender": 6,
    "key_not_found": 7,
    "bad_signature": 8,
    "authentication_failed": 9,
    "replay": 10,
    "duplicate": 11,
    "too_old": 12,
    "expired": 13,
    "missing_timestamp": 14,
    "retain_mismatch": 15,
    "profile_not_allowed": 16,
    "grant_not_for_us": 17,
    "untrusted_issuer": 18,
    "sequence_exhausted": 19,
    "buffer_too_small": 20,
    "too_large": 21,
    "randomness": 22,
    "epoch_expired": 23,
    "out_of_scope": 24,
    "key_expired": 25,
}


class MqsealError(Exception):
    """Carries the spec's error name and stable code (section 9)."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name
        self.code = ERROR_CODES[name]


# --- 1. Conventions -------------------------------------------------------------------------------

def varint_encode(n: int) -> bytes:
    out = bytearray()
    while True:
        low = n & 0x7F
        n >>= 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def varint_decode(data: bytes, pos: int, maximum: int) -> tuple[int, int]:
    value = 0
    for i in range(10):
        if pos + i >= len(data):
            raise MqsealError("malformed")
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if byte & 0x80 == 0:
            if byte == 0 and i > 0:
                raise MqsealError("malformed")
            if value > maximum or value >= 1 << 64:
                raise MqsealError("malformed")
            return value, pos + i + 1
    raise MqsealError("malformed")


def hkdf_extract(salt: bytes, ikm: bytes) -> bytes:
    return hmac.new(salt, ikm, hashlib.sha256).digest()


def hkdf_expand(prk: bytes, info: bytes, length: int) -> bytes:
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def expand32(prk: bytes, info: bytes) -> bytes:
    return hkdf_expand(prk, info, 32)


# --- 3. Identities --------------------------------------------------------------------------------

@dataclass
class Identity:
    seed: bytes

    def __post_init__(self) -> None:
        prk = hkdf_extract(b"mqseal/v1/identity", self.seed)
        self.ed25519_seed = hkdf_expand(prk, b"mqseal/v1/identity/ed25519", 32)
        self.x25519_sk = hkdf_expand(prk, b"mqseal/v1/identity/x25519", 32)
        self.signing = Ed25519PrivateKey.from_private_bytes(self.ed25519_seed)
        self.agreement = X25519PrivateKey.from_private_bytes(self.x25519_sk)
        self.public = PublicIdentity(
            self.signing.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
            + self.agreement.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        )


P = 2**255 - 19  # the field of both curves (RFC 7748, RFC 8032)
ED25519_D = -121665 * pow(121666, -1, P) % P


def x25519_contributory(u: bytes) -> bool:
    """False for a low-order X25519 point: X25519 with it gives all zeros (any clamped scalar)."""
    probe = X25519PrivateKey.from_private_bytes(bytes([0x5A]) * 32)
    try:
        return probe.exchange(X25519PublicKey.from_public_bytes(u)) != bytes(32)
    except ValueError:  # cryptography refuses an all-zero shared secret itself
        return False


def ed25519_point_ok(key: bytes) -> bool:
    """Sections 3 and 7.6: the encoded Ed25519 point decodes and does not have small order.

    Decodes (RFC 8032 5.1.3): y is the low 255 bits, taken mod p; some x satisfies the curve
    equation, i.e. x^2 = (y^2 - 1) / (d y^2 + 1) is a square mod p (Euler's criterion).
    Small order (1, 2, 4 or 8): y = 1 is the neutral element; any other point has small order
    exactly when its Montgomery form u = (1 + y) / (1 - y) (RFC 7748 4.1) is a low-order X25519
    point, which X25519 itself tells.
    """
    y = int.from_bytes(key, "little") & ((1 << 255) - 1)
    y %= P
    x2 = (y * y - 1) * pow(ED25519_D * y * y + 1, -1, P) % P
    if x2 != 0 and pow(x2, (P - 1) // 2, P) != 1:
        return False  # no x: the key does not decode
    if y == 1:
        return False  # the neutral element
    u = (1 + y) * pow(1 - y, -1, P) % P
    return x25519_contributory(u.to_bytes(32, "little"))


# Sections 3 and 7.6: edwards25519 points, for the checks on public keys and signatures.
ED25519_L = 2**252 + 27742317777372353535851937790883648493
SQRT_M1 = pow(2, (P - 1) // 4, P)


def _ed_decompress(key: bytes) -> tuple[int, int, int, int] | None:
    """RFC 8032 5.1.3 with section 3's rule (y taken mod p; x = 0 whatever the sign bit), in
    extended coordinates (X, Y, Z, T); None when the key does not decode."""
    y = (int.from_bytes(key, "little") & ((1 << 255) - 1)) % P
    x2 = (y * y - 1) * pow(ED25519_D * y * y + 1, -1, P) % P
    x = pow(x2, (P + 3) // 8, P)
    if x * x % P != x2:
        x = x * SQRT_M1 % P
    if x * x % P != x2:
        return None
    if x & 1 != key[31] >> 7:
        x = (P - x) % P
    return x, y, 1, x * y % P


def _ed_add(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """Extended twisted Edwards addition (a = -1), complete on edwards25519 (RFC 8032 5.1.4)."""
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa = (y1 - x1) * (y2 - x2) % P
    bb = (y1 + x1) * (y2 + x2) % P
    cc = 2 * ED25519_D * t1 * t2 % P
    dd = 2 * z1 * z2 % P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return e * f % P, g * h % P, f * g % P, e * h % P


def ed25519_in_prime_order_subgroup(key: bytes) -> bool:
    """Section 3: [L]A is the neutral element (no torsion component). A check, not a primitive
    used for secrecy: plain double-and-add on public data."""
    point = _ed_decompress(key)
    if point is None:
        return False
    acc = (0, 1, 1, 0)
    for bit in bin(ED25519_L)[2:]:
        acc = _ed_add(acc, acc)
        if bit == "1":
            acc = _ed_add(acc, point)
    x, y, z, _ = acc
    return x % P == 0 and (y - z) % P == 0


def ed25519_key_valid(key: bytes) -> bool:
    """Section 3: a public identity's Ed25519 key decodes, does not have small order and has no
    torsion component."""
    return ed25519_point_ok(key) and ed25519_in_prime_order_subgroup(key)


ED25519_NEUTRAL = (0, 1, 1, 0)
# The base point B (RFC 8032 5.1): y = 4/5, x positive.
ED25519_B = _ed_decompress((4 * pow(5, -1, P) % P).to_bytes(32, "little"))


def _ed_mul(point: tuple[int, int, int, int], n: int) -> tuple[int, int, int, int]:
    """[n]point by double-and-add (public data only: not constant time)."""
    acc = ED25519_NEUTRAL
    for bit in bin(n)[2:]:
        acc = _ed_add(acc, acc)
        if bit == "1":
            acc = _ed_add(acc, point)
    return acc


def _ed_neg(point: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    x, y, z, t = point
    return (P - x) % P, y, z, (P - t) % P


def _ed_is_neutral(point: tuple[int, int, int, int]) -> bool:
    x, y, z, _ = point
    return x % P == 0 and (y - z) % P == 0


def _ed_times_8(point: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    for _ in range(3):
        point = _ed_add(point, point)
    return point


def ed25519_verify(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """Section 7.6: the one verification rule, checks 1-4 in the spec's order.

    Pure Python on the edwards25519 helpers above (public data: a check, not a secret
    primitive). The public key A was refused at trust time if it has small order or a torsion
    component (section 3); k hashes the bytes of R as received and of A as trusted.
    """
    if len(signature) != 64 or len(public_key) != 32:
        return False
    r_bytes, s_bytes = signature[:32], signature[32:]
    s = int.from_bytes(s_bytes, "little")
    if s >= ED25519_L:  # 1. S < L
        return False
    y = int.from_bytes(r_bytes, "little") & ((1 << 255) - 1)
    if y >= P:  # 2. canonical y ...
        return False
    r = _ed_decompress(r_bytes)
    if r is None:  # ... and R decodes
        return False
    if _ed_is_neutral(_ed_times_8(r)):  # 3. R not of small order
        return False
    a = _ed_decompress(public_key)
    if a is None:
        return False
    k = int.from_bytes(hashlib.sha512(r_bytes + public_key + message).digest(), "little") % ED25519_L
    # 4. [8]([S]B - R - [k]A) is the neutral element
    difference = _ed_add(_ed_add(_ed_mul(ED25519_B, s), _ed_neg(r)), _ed_neg(_ed_mul(a, k)))
    return _ed_is_neutral(_ed_times_8(difference))


@dataclass(frozen=True)
class PublicIdentity:
    raw: bytes  # ed25519_pk || x25519_pk

    @classmethod
    def parse(cls, raw: bytes) -> "PublicIdentity":
        """A received public identity (section 3): 64 bytes, both keys valid (the Ed25519 key
        decodes, has neither small order nor a torsion component; the X25519 key is not of low
        order)."""
        if len(raw) != 64:
            raise MqsealError("malformed")
        if not ed25519_key_valid(raw[:32]) or not x25519_contributory(raw[32:]):
            raise MqsealError("invalid_key")
        return cls(raw)

    @property
    def ed25519(self) -> bytes:
        return self.raw[:32]

    @property
    def x25519(self) -> bytes:
        return self.raw[32:]

    @property
    def fingerprint(self) -> bytes:
        return hashlib.sha256(b"mqseal/v1/fingerprint" + self.raw).digest()

    @property
    def sender_id(self) -> bytes:
        return self.fingerprint[:4]


# --- 4. Key schedule ------------------------------------------------------------------------------

def child(node: bytes, level: str) -> bytes:
    return expand32(node, b"mqseal/v1/level:" + level.encode())


def topic_key_from_node(node: bytes) -> bytes:
    return expand32(node, b"mqseal/v1/topic-key")


def sender_key(topic_key: bytes, profile_byte: int, ed25519_pk: bytes) -> bytes:
    return expand32(topic_key, b"mqseal/v1/sender-key:" + bytes([profile_byte]) + ed25519_pk)


def key_id(topic_key: bytes) -> bytes:
    """Section 4.6: first 4 bytes of Expand32(topic_key(T), KEY_ID)."""
    return expand32(topic_key, b"mqseal/v2/key-id")[:4]


def message_key(sender_key_: bytes, salt: bytes) -> bytes:
    """Section 4.7: Expand32(sender_key, MESSAGE_KEY || salt)."""
    return expand32(sender_key_, b"mqseal/v2/message-key:" + salt)


def topic_digest(topic: str) -> bytes:
    return hashlib.sha256(b"mqseal/v1/topic-name:" + topic.encode()).digest()


MAX_TOPIC_LEVELS = 32  # section 1


def valid_topic(topic: str) -> bool:
    """Section 1: 1 to 65535 bytes of UTF-8 without NUL, + or #, at most 32 levels (31 '/')."""
    raw = topic.encode()
    return (
        0 < len(raw) <= 65535
        and not any(c in raw for c in b"\0+#")
        and raw.count(b"/") < MAX_TOPIC_LEVELS
    )


def valid_filter(raw: bytes) -> bool:
    """Section 4.1: UTF-8, 1 to 65535 bytes, no NUL or +, # only as the whole last level."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    if not 0 < len(raw) <= 65535 or "\0" in text or "+" in text:
        return False
    prefix = "" if text == "#" else text[:-2] if text.endswith("/#") else text
    return "#" not in prefix


def filter_levels_below(filter: str, topic: str) -> list[str] | None:
    """Section 4.1: the levels of `topic` below the filter's prefix, None if it does not cover it."""
    if filter == "#":
        return topic.split("/")
    if filter.endswith("/#"):
        prefix = filter[:-2]
        if topic == prefix:
            return []
        if topic.startswith(prefix + "/"):
            return topic[len(prefix) + 1 :].split("/")
        return None
    return [] if topic == filter else None


def filter_covers(filter: str, topic: str) -> bool:
    return filter_levels_below(filter, topic) is not None


def filter_inside(granted: str, scope: str) -> bool:
    """Section 8.1: every topic `granted` covers is covered by `scope`."""
    if scope == "#":
        return True
    if scope.endswith("/#"):
        prefix = scope[:-2]
        return granted == scope or granted == prefix or granted.startswith(prefix + "/")
    return granted == scope


@dataclass(frozen=True)
class TreeKey:
    filter: str
    epoch: int
    secret: bytes
    not_before: int = 0  # section 4.1: 0 = always
    not_after: int | None = None  # None = never expires (0 in a grant)

    def __post_init__(self) -> None:
        if self.not_after is not None and (self.not_after == 0 or self.not_before > self.not_after):
            raise MqsealError("malformed")

    def limited(self) -> bool:
        return self.not_before > 0 or self.not_after is not None

    def with_secret(self, target: str, secret: bytes) -> "TreeKey":
        """A derived key keeps the epoch and the validity (section 4.1)."""
        return TreeKey(target, self.epoch, secret, self.not_before, self.not_after)

    def prefix(self) -> tuple[str, str | None]:
        """(kind, prefix): kind 'subtree' or 'exact'; prefix None for the root '#'."""
        if self.filter == "#":
            return "subtree", None
        if self.filter.endswith("/#"):
            return "subtree", self.filter[:-2]
        return "exact", self.filter

    def levels_below(self, topic: str) -> list[str] | None:
        return filter_levels_below(self.filter, topic)

    def covers(self, topic: str) -> bool:
        return self.levels_below(topic) is not None

    def specificity(self) -> tuple[bool, int]:
        kind, prefix = self.prefix()
        return kind == "exact", 0 if prefix is None else len(prefix.split("/"))

    def topic_key(self, topic: str) -> bytes:
        levels = self.levels_below(topic)
        if levels is None:
            raise MqsealError("key_not_found")
        if self.prefix()[0] == "exact":
            return self.secret
        node = self.secret
        for level in levels:
            node = child(node, level)
        return topic_key_from_node(node)

    def derive(self, target: str) -> "TreeKey":
        if target.endswith("/#") or target == "#":
            kind, prefix = self.prefix()
            tprefix = None if target == "#" else target[:-2]
            if kind == "exact":
                raise MqsealError("key_not_found")
            if tprefix is None:
                if prefix is not None:
                    raise MqsealError("key_not_found")
                return self.with_secret(target, self.secret)
            levels = self.levels_below(tprefix)
            if levels is None:
                raise MqsealError("key_not_found")
            node = self.secret
            for level in levels:
                node = child(node, level)
            return self.with_secret(target, node)
        return self.with_secret(target, self.topic_key(target))


# --- 5./6. Envelope and sealing -------------------------------------------------------------------

SIGNED, GROUP_MAC = 0, 1
VERSION = 0b010  # flags bits 7-5 (section 5); v1's 001 is refused
MAX_MESSAGE = 268_435_455  # the MQTT payload limit (sections 5, 7.1 step 1)
SALT_LEN = 8
TAG_LEN = 16
SIGNATURE_LEN = 64
SEQ_EXHAUSTED = 2**64 - 1  # a counter at 2^64-1 is exhausted (section 6.1)


def trailer_len(profile: int) -> int:
    return TAG_LEN + (SIGNATURE_LEN if profile == SIGNED else 0)


@dataclass
class Header:
    profile: int
    retain: bool
    epoch: int
    sender_id: bytes
    key_id: bytes
    salt: bytes
    seq: int
    timestamp: int | None

    def encode(self) -> bytes:
        flags = VERSION << 5 | (0x10 if self.profile == GROUP_MAC else 0)
        flags |= 0x08 if self.timestamp is not None else 0
        flags |= 0x04 if self.retain else 0
        out = bytes([flags]) + varint_encode(self.epoch) + self.sender_id + self.key_id + self.salt
        out += varint_encode(self.seq)
        if self.timestamp is not None:
            out += varint_encode(self.timestamp)
        return out


def parse(message: bytes) -> tuple[Header, bytes, bytes, bytes, bytes | None]:
    """Section 7.1 step 1: (header, header bytes, ciphertext, tag, signature or None)."""
    if len(message) > MAX_MESSAGE:
        raise MqsealError("too_large")  # before any byte is read
    if not message:
        raise MqsealError("malformed")  # no version bits to read (spec silent; vector `empty`)
    flags = message[0]
    if flags >> 5 != VERSION:
        raise MqsealError("unsupported_version")
    if flags & 0x03:
        raise MqsealError("malformed")
    profile = GROUP_MAC if flags & 0x10 else SIGNED
    epoch, pos = varint_decode(message, 1, 2**32 - 1)
    if pos + 4 + 4 + SALT_LEN > len(message):
        raise MqsealError("malformed")
    sender_id = bytes(message[pos : pos + 4])
    kid = bytes(message[pos + 4 : pos + 8])
    salt = bytes(message[pos + 8 : pos + 8 + SALT_LEN])
    seq, pos = varint_decode(message, pos + 8 + SALT_LEN, 2**64 - 1)
    timestamp = None
    if flags & 0x08:
        timestamp, pos = varint_decode(message, pos, 2**64 - 1)
    trailer = trailer_len(profile)
    if len(message) - pos < trailer:
        raise MqsealError("malformed")
    header_bytes = bytes(message[:pos])
    ct_end = len(message) - trailer
    ciphertext, tag = bytes(message[pos:ct_end]), bytes(message[ct_end : ct_end + TAG_LEN])
    signature = bytes(message[ct_end + TAG_LEN :]) if profile == SIGNED else None
    header = Header(profile, bool(flags & 0x04), epoch, sender_id, kid, salt, seq, timestamp)
    return header, header_bytes, ciphertext, tag, signature


def nonce(seq: int) -> bytes:
    return b"\0\0\0\0" + seq.to_bytes(8, "big")


def signature_digest(header: bytes, digest: bytes, ct_and_tag: bytes) -> bytes:
    """Section 6 step 6: SHA-512(MESSAGE_SIGNATURE || header || topic_digest || ciphertext || tag)."""
    return hashlib.sha512(b"mqseal/v2/message-signature:" + header + digest + ct_and_tag).digest()


def phase(key: TreeKey, now: int | None) -> str:
    """Section 6 step 2: 'pending' (known to be before not_before), 'valid' or 'unusable'."""
    if not key.limited():
        return "valid"
    if now is None:
        return "unusable"
    if now < key.not_before:
        return "pending"
    if key.not_after is not None and now > key.not_after:
        return "unusable"
    return "valid"


def best_key(keys: list[TreeKey], topic: str, now: int | None) -> TreeKey:
    """Section 6 step 2 at the sealing time `now` (None: unknown): per covering filter its current
    key (highest epoch not pending; among keys of one filter and epoch, several issuers'
    lineages, section 8.1, the one added first), then the most specific filter whose current key
    is valid. Choosing one lineage per filter is the keystore's business (keystore.md section 5),
    not the core sealer's."""
    covering = [k for k in keys if k.covers(topic)]
    if not covering:
        raise MqsealError("key_not_found")
    current: dict[str, TreeKey] = {}
    for k in covering:  # in the order added: a later key of the same epoch does not replace
        if phase(k, now) == "pending":
            continue
        held = current.get(k.filter)
        if held is None or k.epoch > held.epoch:
            current[k.filter] = k
    usable = [k for k in current.values() if phase(k, now) == "valid"]
    if not usable:
        raise MqsealError("key_expired")
    return max(usable, key=lambda k: k.specificity())


class _Now:
    """Default timestamp: the sender's current time (section 6 step 5)."""


NOW = _Now()


def draw_salt() -> bytes:
    """Section 4.7: 8 bytes from the operating system's CSPRNG."""
    try:
        salt = os.urandom(SALT_LEN)
    except (OSError, NotImplementedError):
        raise MqsealError("randomness") from None
    if len(salt) != SALT_LEN:
        raise MqsealError("randomness")
    return salt


def _prepare(identity, profile, keys, topic, payload, seq, retain, timestamp):
    """Section 6 steps 1-3; nothing is consumed by a refusal."""
    if not valid_topic(topic):  # step 1
        raise MqsealError("invalid_topic")
    if isinstance(timestamp, _Now):
        timestamp = int(time.time())
    # step 2 at the sealing time: the message's timestamp, else the sender's clock
    key = best_key(keys, topic, int(time.time()) if timestamp is None else timestamp)
    tk = key.topic_key(topic)
    kid = key_id(tk)
    sid = identity.public.sender_id
    # step 3: the length (the salt's value does not change the header's length), then the counter
    probe = Header(profile, retain, key.epoch, sid, kid, bytes(SALT_LEN), max(0, min(seq, 2**64 - 1)), timestamp)
    if len(probe.encode()) + len(payload) + trailer_len(profile) > MAX_MESSAGE:
        raise MqsealError("too_large")
    if not 0 <= seq < SEQ_EXHAUSTED:
        raise MqsealError("sequence_exhausted")
    return key, tk, kid, sid, timestamp


def _build(identity, profile, key, tk, kid, sid, topic, payload, seq, retain, timestamp, salt):
    """Section 6 steps 5-6."""
    if len(salt) != SALT_LEN:
        raise ValueError("salt must be 8 bytes")
    header = Header(profile, retain, key.epoch, sid, kid, salt, seq, timestamp).encode()
    digest = topic_digest(topic)
    k = message_key(sender_key(tk, profile, identity.public.ed25519), salt)
    ct_and_tag = ChaCha20Poly1305(k).encrypt(nonce(seq), payload, header + digest)
    out = header + ct_and_tag
    if profile == SIGNED:
        out += identity.signing.sign(signature_digest(header, digest, ct_and_tag))
    return out


def seal(
    identity: Identity,
    profile: int,
    keys: list[TreeKey],
    topic: str,
    payload: bytes,
    seq: int,
    retain: bool = False,
    timestamp: int | None | _Now = NOW,
    *,
    salt: bytes | None = None,
) -> bytes:
    """Section 6 with an explicit sequence number `seq` (section 6.1: no implicit start).

    `timestamp`: NOW (default) for the sender's current time, None for no timestamp, or a value.
    `salt`: drawn from os.urandom unless given; inject it only to reproduce a test vector.
    """
    prepared = _prepare(identity, profile, keys, topic, payload, seq, retain, timestamp)
    if salt is None:  # step 4
        salt = draw_salt()
    return _build(identity, profile, *prepared[:4], topic, payload, seq, retain, prepared[4], salt)


@dataclass
class Sealer:
    """One counter per identity, shared by every topic and both profiles (section 6.1).

    `next_seq`, the first sequence number to use, must be given (no implicit 0). The salt is
    always drawn from os.urandom. The counter advances before encrypting; a refusal
    (invalid_topic, key_not_found, too_large, sequence_exhausted, randomness) consumes nothing.
    """

    identity: Identity
    keys: list[TreeKey]
    next_seq: int

    def seal(
        self,
        profile: int,
        topic: str,
        payload: bytes,
        retain: bool = False,
        timestamp: int | None | _Now = NOW,
    ) -> bytes:
        seq = self.next_seq
        key, tk, kid, sid, ts = _prepare(self.identity, profile, self.keys, topic, payload, seq, retain, timestamp)
        salt = draw_salt()  # step 4: the salt, then take the number and advance the counter
        self.next_seq = seq + 1
        return _build(self.identity, profile, key, tk, kid, sid, topic, payload, seq, retain, ts, salt)


# --- 7. Receiver rules ----------------------------------------------------------------------------

WINDOW = 2048


@dataclass
class ReplayWindow:
    """Section 7.3: highest accepted number H and which of H-W+1 .. H were accepted."""

    highest: int | None = None
    seen: set[int] = field(default_factory=set)

    def check(self, seq: int) -> None:
        if self.highest is None or seq > self.highest:
            return
        if self.highest - seq >= WINDOW:
            raise MqsealError("too_old")
        if seq in self.seen:
            raise MqsealError("replay")

    def accept(self, seq: int) -> None:
        self.check(seq)
        if self.highest is None or seq > self.highest:
            self.highest = seq
            self.seen = {s for s in self.seen if seq - s < WINDOW}
        self.seen.add(seq)


@dataclass
class Policy:
    """Delivery policy of step 7. There is no group-mac switch: group-mac is trusted per sender
    and filter (section 7.7, `Opener.trust_group_mac`)."""

    max_age: int | None = None
    max_future_skew: int = 60
    require_timestamp: bool = False
    validity_grace: int = 86_400  # section 7.1 step 4: after a key's not_after


@dataclass
class Opened:
    sender: PublicIdentity
    seq: int
    payload: bytes
    timestamp: int | None
    epoch: int = 0
    profile: int = SIGNED
    retain: bool = False


@dataclass
class Opener:
    trusted: list[PublicIdentity]  # in the order they were trusted
    keys: list[TreeKey]  # in the order they were added; one filter and epoch may repeat (8.1)
    policy: Policy = field(default_factory=Policy)
    group_mac: dict = field(default_factory=dict)  # fingerprint -> [filter] (section 7.7)
    windows: dict = field(default_factory=dict)  # (fingerprint, profile, epoch, topic) -> ReplayWindow
    high_water: dict = field(default_factory=dict)  # (fingerprint, profile) -> highest seq accepted
    retired: dict = field(default_factory=dict)  # (filter, epoch, secret) -> not_after (keystore.md 11)
    floors: dict = field(default_factory=dict)  # (fingerprint, profile) -> eviction floor (7.3)
    per_sender: int = 1024  # section 7.3, reference eviction policy: caps on windows
    total: int = 16384

    def trust_group_mac(self, sender: PublicIdentity, filter: str) -> None:
        """Section 7.7: also accept `sender`'s group-mac messages on topics `filter` covers. It
        matters only for a sender that is trusted (`trusted`): group-mac is in addition to it."""
        if not valid_filter(filter.encode()):
            raise MqsealError("invalid_filter")
        filters = self.group_mac.setdefault(sender.fingerprint, [])
        if filter not in filters:
            filters.append(filter)

    def group_mac_filters(self, sender: PublicIdentity) -> list[str]:
        return self.group_mac.get(sender.fingerprint, [])

    def retire_key(self, filter: str, epoch: int, not_after: int, secret: bytes | None = None) -> None:
        """Retire the held key (filter, epoch[, secret]): retirement belongs to one held key, not
        to its filter and epoch (section 7.1 step 4, 8.1). Without `secret`, every held key of
        that filter and epoch (the vectors' form: none of them holds two)."""
        matched = [
            k
            for k in self.keys
            if k.filter == filter and k.epoch == epoch and (secret is None or k.secret == secret)
        ]
        if not matched:
            raise ValueError("no held key to retire")
        for k in matched:
            self.retired[(k.filter, k.epoch, k.secret)] = not_after

    def add_retired_key(self, key: TreeKey, not_after: int) -> None:
        self.keys.append(key)
        self.retired[(key.filter, key.epoch, key.secret)] = not_after

    def past_grace(self, key: TreeKey, now: int | None) -> bool:
        not_after = self.retired.get((key.filter, key.epoch, key.secret))
        return not_after is not None and (now is None or now > not_after)

    def find_key(self, topic: str, epoch: int, kid: bytes) -> TreeKey:
        """Section 7.1 step 4: the one key the key id names."""
        covering = [k for k in self.keys if k.epoch == epoch and k.covers(topic)]
        # stable sort: among equal specificity, the one added first stays first
        covering.sort(key=lambda k: k.specificity(), reverse=True)
        for k in covering:
            if key_id(k.topic_key(topic)) == kid:
                return k
        raise MqsealError("key_not_found")

    def replay_rule(self, fp: bytes, header, topic: str, retained: bool, duplicate: bool) -> None:
        """Step 8's rule (section 7.3) for (fp, profile, epoch, topic), without recording anything."""
        floor = self.floors.get((fp, header.profile))
        if floor is not None and header.seq <= floor:
            raise MqsealError("too_old")  # at or below the eviction floor, before the window
        window = self.windows.get((fp, header.profile, header.epoch, topic))
        if window is None or window.highest is None:
            mark = self.high_water.get((fp, header.profile))  # the mark of this profile only
            if not retained and mark is not None and mark - header.seq >= WINDOW:
                raise MqsealError("too_old")  # first contact below the high-water mark (7.3)
            return
        try:
            window.check(header.seq)  # too_old is checked before replay/duplicate
        except MqsealError as e:
            if e.name == "replay" and duplicate:
                raise MqsealError("duplicate") from None
            raise

    def evict_lowest(self, fp: bytes, profile: int) -> None:
        """Section 7.3: drop the (fp, profile) window with the lowest H (ties: lowest epoch, then
        topic bytes) and raise the floor to its H."""
        mine = [k for k in self.windows if k[0] == fp and k[1] == profile]
        victim = min(mine, key=lambda k: (self.windows[k].highest, k[2], k[3].encode()))
        h = self.windows.pop(victim).highest
        self.floors[(fp, profile)] = max(self.floors.get((fp, profile), h), h)

    def make_room(self, fp: bytes, profile: int) -> None:
        """Section 7.3, reference policy, before a new window of (fp, profile) is created."""
        if sum(1 for k in self.windows if k[:2] == (fp, profile)) >= self.per_sender:
            self.evict_lowest(fp, profile)
        if len(self.windows) >= self.total:
            counts: dict = {}
            for k in self.windows:
                counts[k[:2]] = counts.get(k[:2], 0) + 1
            # the most windows; ties: lowest fingerprint bytes, then signed before group-mac
            largest = min(counts, key=lambda g: (-counts[g], g[0], g[1]))
            self.evict_lowest(*largest)

    def candidates(self, header: Header, topic: str) -> list[PublicIdentity]:
        """Section 7.1 step 4, first part: the candidate senders."""
        senders = [s for s in self.trusted if s.sender_id == header.sender_id]
        if not senders:
            raise MqsealError("unknown_sender")
        if header.profile == GROUP_MAC:  # section 7.7: trusted for group-mac on a filter covering T
            senders = [
                s for s in senders if any(filter_covers(f, topic) for f in self.group_mac_filters(s))
            ]
            if not senders:
                raise MqsealError("profile_not_allowed")
        return senders

    def open(
        self,
        topic: str,
        message: bytes,
        retained: bool = False,
        duplicate: bool = False,
        now: int | None = None,
    ) -> Opened:
        header, header_bytes, ciphertext, tag, signature = parse(message)  # step 1
        if header.profile == GROUP_MAC and not any(  # step 2: any trusted sender, any filter
            self.group_mac_filters(s) for s in self.trusted
        ):
            raise MqsealError("profile_not_allowed")
        if not valid_topic(topic):  # step 3
            raise MqsealError("invalid_topic")
        senders = self.candidates(header, topic)  # step 4
        key = self.find_key(topic, header.epoch, header.key_id)
        if self.past_grace(key, now):
            raise MqsealError("epoch_expired")
        if key.limited() and (  # then the key's own validity, with skew and grace
            now is None
            or now < key.not_before - self.policy.max_future_skew
            or (key.not_after is not None and now > key.not_after + self.policy.validity_grace)
        ):
            raise MqsealError("key_expired")
        if len(senders) == 1:  # end of step 4: the replay pre-check, read-only
            self.replay_rule(senders[0].fingerprint, header, topic, retained, duplicate)
        digest = topic_digest(topic)
        if signature is not None:  # step 5
            transcript = signature_digest(header_bytes, digest, ciphertext + tag)
            for s in senders:
                if ed25519_verify(s.ed25519, signature, transcript):
                    senders = [s]
                    break
            else:
                raise MqsealError("bad_signature")
        tk = key.topic_key(topic)  # step 6: exactly the key of step 4
        opened = None
        for s in senders:
            k = message_key(sender_key(tk, header.profile, s.ed25519), header.salt)
            try:
                plaintext = ChaCha20Poly1305(k).decrypt(
                    nonce(header.seq), ciphertext + tag, header_bytes + digest
                )
            except InvalidTag:
                continue
            opened = Opened(
                s, header.seq, plaintext, header.timestamp, header.epoch, header.profile, header.retain
            )
            break
        if opened is None:
            raise MqsealError("authentication_failed")
        if retained and not header.retain:  # step 7
            raise MqsealError("retain_mismatch")
        if header.timestamp is None and (
            self.policy.require_timestamp or self.policy.max_age is not None
        ):
            raise MqsealError("missing_timestamp")
        if self.policy.max_age is not None:
            if now is None:
                raise MqsealError("expired")
            ts = header.timestamp
            if ts + self.policy.max_age < now or ts > now + self.policy.max_future_skew:
                raise MqsealError("expired")
        fp = opened.sender.fingerprint  # step 8: per (sender, profile, epoch, topic)
        slot = (fp, header.profile, header.epoch, topic)
        self.replay_rule(fp, header, topic, retained, duplicate)
        window = self.windows.get(slot)
        if window is None:
            window = ReplayWindow()
            window.accept(header.seq)
            self.make_room(fp, header.profile)
        else:
            window.accept(header.seq)
        self.windows[slot] = window  # step 9
        mark = (fp, header.profile)
        self.high_water[mark] = max(self.high_water.get(mark, header.seq), header.seq)
        return opened


# --- 8. Grants (RFC 9180 HPKE base mode) ----------------------------------------------------------

KEM_SUITE = b"KEM\x00\x20"
HPKE_SUITE = b"HPKE\x00\x20\x00\x01\x00\x03"


def labeled_extract(suite: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
    return hkdf_extract(salt, b"HPKE-v1" + suite + label + ikm)


def labeled_expand(suite: bytes, prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
    return hkdf_expand(prk, length.to_bytes(2, "big") + b"HPKE-v1" + suite + label + info, length)


def derive_key_pair(ikm: bytes) -> X25519PrivateKey:
    prk = labeled_extract(KEM_SUITE, b"", b"dkp_prk", ikm)
    return X25519PrivateKey.from_private_bytes(labeled_expand(KEM_SUITE, prk, b"sk", b"", 32))


def raw(pk: X25519PublicKey) -> bytes:
    return pk.public_bytes(Encoding.Raw, PublicFormat.Raw)


def hpke_context(dh: bytes, enc: bytes, pk_r: bytes, info: bytes) -> dict[str, bytes]:
    if dh == bytes(32):
        raise MqsealError("invalid_key")
    eae_prk = labeled_extract(KEM_SUITE, b"", b"eae_prk", dh)
    shared = labeled_expand(KEM_SUITE, eae_prk, b"shared_secret", enc + pk_r, 32)
    psk_id_hash = labeled_extract(HPKE_SUITE, b"", b"psk_id_hash", b"")
    info_hash = labeled_extract(HPKE_SUITE, b"", b"info_hash", info)
    ksc = b"\x00" + psk_id_hash + info_hash
    secret = labeled_extract(HPKE_SUITE, shared, b"secret", b"")
    return {
        "enc": enc,
        "shared_secret": shared,
        "key_schedule_context": ksc,
        "secret": secret,
        "key": labeled_expand(HPKE_SUITE, secret, b"key", ksc, 32),
        "base_nonce": labeled_expand(HPKE_SUITE, secret, b"base_nonce", ksc, 12),
        "exporter_secret": labeled_expand(HPKE_SUITE, secret, b"exp", ksc, 32),
    }


def hpke_sender(pk_r: bytes, info: bytes, ikm_e: bytes) -> dict[str, bytes]:
    sk_e = derive_key_pair(ikm_e)
    dh = sk_e.exchange(X25519PublicKey.from_public_bytes(pk_r))
    return hpke_context(dh, raw(sk_e.public_key()), pk_r, info)


def hpke_recipient(sk_r: X25519PrivateKey, enc: bytes, info: bytes) -> dict[str, bytes]:
    try:
        dh = sk_r.exchange(X25519PublicKey.from_public_bytes(enc))
    except ValueError:  # cryptography refuses an all-zero shared secret itself
        raise MqsealError("invalid_key") from None
    return hpke_context(dh, enc, raw(sk_r.public_key()), info)


GRANT_INFO = b"mqseal/v1/grant"


def grant_body(key: TreeKey) -> bytes:
    f = key.filter.encode()
    validity = varint_encode(key.not_before) + varint_encode(key.not_after or 0)
    return varint_encode(key.epoch) + varint_encode(len(f)) + f + key.secret + validity


def issue_grant(issuer: Identity, recipient: PublicIdentity, key: TreeKey, ikm_e: bytes) -> bytes:
    ctx = hpke_sender(recipient.x25519, GRANT_INFO, ikm_e)
    aad = b"\x01" + issuer.public.ed25519 + recipient.fingerprint
    ct = ChaCha20Poly1305(ctx["key"]).encrypt(ctx["base_nonce"], grant_body(key), aad)
    unsigned = aad + ctx["enc"] + varint_encode(len(ct)) + ct
    digest = hashlib.sha512(b"mqseal/v1/grant-signature:" + unsigned).digest()
    return unsigned + issuer.signing.sign(digest)


@dataclass(frozen=True)
class Issuer:
    """A trusted issuer and its scope (section 8.1): the key filters it may grant inside."""

    identity: PublicIdentity
    scope: tuple[str, ...] = ("#",)  # the default: an administrator, trusted for the whole tree

    def __post_init__(self) -> None:
        for f in self.scope:
            if not valid_filter(f.encode()):
                raise MqsealError("invalid_filter")


def accept_grant(
    grant: bytes, me: Identity, trusted: list[PublicIdentity | Issuer]
) -> TreeKey:
    """Section 8's acceptance order. `trusted`: the issuers, in the order they were trusted; a
    bare PublicIdentity is trusted for `#`."""
    issuers = [t if isinstance(t, Issuer) else Issuer(t) for t in trusted]
    if not grant:
        raise MqsealError("malformed")
    if grant[0] != 0x01:
        raise MqsealError("unsupported_version")
    if len(grant) < 97:
        raise MqsealError("malformed")
    issuer_pk, recipient_fp, enc = grant[1:33], grant[33:65], grant[65:97]
    ct_len, pos = varint_decode(grant, 97, 2**32 - 1)
    if len(grant) != pos + ct_len + 64:
        raise MqsealError("malformed")
    ct, signature = grant[pos : pos + ct_len], grant[pos + ct_len :]
    if recipient_fp != me.public.fingerprint:
        raise MqsealError("grant_not_for_us")
    issuer = next((t for t in issuers if t.identity.ed25519 == issuer_pk), None)
    if issuer is None:
        raise MqsealError("untrusted_issuer")
    digest = hashlib.sha512(b"mqseal/v1/grant-signature:" + grant[:-64]).digest()
    if not ed25519_verify(issuer_pk, signature, digest):  # section 7.6 covers grants too
        raise MqsealError("bad_signature")
    ctx = hpke_recipient(me.agreement, enc, GRANT_INFO)
    if len(ct) < TAG_LEN:  # section 8: no room for the tag is malformed, after the enc check
        raise MqsealError("malformed")
    try:
        body = ChaCha20Poly1305(ctx["key"]).decrypt(ctx["base_nonce"], ct, grant[:65])
    except InvalidTag:
        raise MqsealError("authentication_failed") from None
    epoch, p = varint_decode(body, 0, 2**32 - 1)
    flen, p = varint_decode(body, p, 65535)
    if len(body) < p + flen + 32:
        raise MqsealError("malformed")
    filter_bytes, secret = body[p : p + flen], body[p + flen : p + flen + 32]
    not_before, p = varint_decode(body, p + flen + 32, 2**64 - 1)
    not_after, p = varint_decode(body, p, 2**64 - 1)
    if p != len(body):  # nothing after the validity
        raise MqsealError("malformed")
    if not_after != 0 and not_before > not_after:
        raise MqsealError("malformed")
    if not valid_filter(filter_bytes):
        raise MqsealError("invalid_filter")
    granted = filter_bytes.decode()
    if not any(filter_inside(granted, s) for s in issuer.scope):  # last: section 8.1
        raise MqsealError("out_of_scope")
    return TreeKey(granted, epoch, secret, not_before, not_after or None)
