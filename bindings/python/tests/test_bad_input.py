"""Bad input to the Python binding: invalid topics (wildcards, NUL, empty, over 65535 bytes, not
valid Unicode), empty and oversized payloads, garbage bytes for every parser, damaged keystore
files, and the paho wrapper fed the same.

Contract checked: content errors raise the documented ``mqseal.Error`` subclasses (wrong Python
types stay ``TypeError``, out-of-range integers ``OverflowError``), never anything else and never
a crash; a refused seal spends no sequence number; nothing is written to a keystore by a refused
operation; an empty payload is legitimate.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Callable

import paho.mqtt.client as mqtt
import pytest

import mqseal
from mqseal.paho import SealedClient

# Topics nothing may seal for or open on, with why.
BAD_TOPICS = [
    ("", "empty"),
    ("a/+", "single-level wildcard"),
    ("a/#", "multi-level wildcard"),
    ("+", "wildcard alone"),
    ("a\x00b", "NUL"),
    ("x" * 65536, "over 65535 bytes"),
    ("a/\udcff", "not valid Unicode (lone surrogate)"),
    (os.fsdecode(b"a/\xff\xfe"), "non-UTF-8 bytes via os.fsdecode"),
]
BAD_TOPIC_IDS = [why for _, why in BAD_TOPICS]


@pytest.fixture
def parties() -> tuple[mqseal.Sealer, mqseal.Opener, mqseal.Identity]:
    me = mqseal.Identity.from_seed(bytes(range(32)))
    key = mqseal.TreeKey.from_secret("#", 1, bytes([7]) * 32)
    sealer = mqseal.Sealer(me, start=0)
    sealer.add_key(key)
    opener = mqseal.Opener()
    opener.trust_sender(me.public)
    opener.add_key(key)
    return sealer, opener, me


def snapshot(root: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file under ``root``: bytes, mode and modification time (ns)."""
    files: dict[str, tuple[bytes, int, int]] = {}
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            st = path.stat()
            files[str(path.relative_to(root))] = (path.read_bytes(), st.st_mode, st.st_mtime_ns)
    return files


# -- topics ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("topic,why", BAD_TOPICS, ids=BAD_TOPIC_IDS)
def test_bad_topics_raise_invalid_topic_and_spend_nothing(
    parties: tuple[mqseal.Sealer, mqseal.Opener, mqseal.Identity], topic: str, why: str
) -> None:
    sealer, opener, me = parties
    good = sealer.seal("a/b", b"x")
    before = sealer.next_seq
    with pytest.raises(mqseal.InvalidTopicError) as e:
        sealer.seal(topic, b"x")
    assert e.value.code == 3 and e.value.name == "invalid_topic"
    assert sealer.next_seq == before, f"{why}: a refused topic spent a sequence number"
    with pytest.raises(mqseal.InvalidTopicError):
        mqseal.validate_topic(topic)
    with pytest.raises(mqseal.InvalidTopicError):
        opener.open(topic, good)
    # The refusal recorded nothing: the message still opens on its real topic.
    assert opener.open("a/b", good).payload == b"x"
    if any(0xD800 <= ord(c) <= 0xDFFF for c in topic):
        # Not valid Unicode: every method taking a topic refuses it the same way.
        with pytest.raises(mqseal.InvalidTopicError):
            mqseal.TreeKey.from_secret("#", 1, bytes(32)).topic_key(topic)
        with pytest.raises(mqseal.InvalidTopicError):
            sealer.sealed_len(topic, 1)
        with pytest.raises(mqseal.InvalidTopicError):
            opener.replay_window(me.public, 1, topic)


def test_surrogate_topics_are_invalid_topics_not_unicode_errors(
    parties: tuple[mqseal.Sealer, mqseal.Opener, mqseal.Identity]
) -> None:
    sealer, _, _ = parties
    with pytest.raises(mqseal.InvalidTopicError) as e:
        sealer.seal("a/\udc80", b"x")
    assert not isinstance(e.value, UnicodeError)
    assert "not valid Unicode" in str(e.value)
    for bad_filter in ["a/\udcff/#", "\ud800"]:
        with pytest.raises(mqseal.InvalidFilterError):
            mqseal.TreeKey.generate(bad_filter, 1)
        with pytest.raises(mqseal.InvalidFilterError):
            mqseal.TreeKey.from_secret(bad_filter, 1, bytes(32))
        with pytest.raises(mqseal.InvalidFilterError):
            mqseal.TreeKey.from_secret("#", 1, bytes(32)).derive(bad_filter)


def test_wrong_types_are_type_errors(
    parties: tuple[mqseal.Sealer, mqseal.Opener, mqseal.Identity]
) -> None:
    sealer, opener, _ = parties
    before = sealer.next_seq
    bad_calls: list[Callable[[], Any]] = [
        lambda: sealer.seal(b"a/b", b"x"),  # type: ignore[arg-type]
        lambda: sealer.seal(None, b"x"),  # type: ignore[arg-type]
        lambda: sealer.seal("a/b", "text"),  # type: ignore[arg-type]
        lambda: sealer.seal("a/b", None),  # type: ignore[arg-type]
        lambda: opener.open(b"a/b", b"x"),  # type: ignore[arg-type]
        lambda: opener.open("a/b", "text"),  # type: ignore[arg-type]
        lambda: mqseal.inspect("text"),  # type: ignore[arg-type]
    ]
    for call in bad_calls:
        with pytest.raises(TypeError):
            call()
    for call in [lambda: sealer.sealed_len("a/b", -1), lambda: sealer.sealed_len("a/b", 2**70),
                 lambda: mqseal.TreeKey.from_secret("a/#", -1, bytes(32)),
                 lambda: mqseal.TreeKey.from_secret("a/#", 2**32, bytes(32))]:
        with pytest.raises(OverflowError):
            call()
    assert sealer.next_seq == before


def test_the_longest_topic_and_unicode_topics_work(
    parties: tuple[mqseal.Sealer, mqseal.Opener, mqseal.Identity]
) -> None:
    sealer, opener, _ = parties
    for topic in ["x" * 65535, "é" * 32767, "usine/température/🌡", "a b/c"]:
        assert opener.open(topic, sealer.seal(topic, b"ok")).payload == b"ok"


# -- payloads ----------------------------------------------------------------------------------------


def test_empty_payloads_are_legitimate(
    parties: tuple[mqseal.Sealer, mqseal.Opener, mqseal.Identity], tmp_path: Path
) -> None:
    sealer, opener, _ = parties
    for empty in [b"", bytearray()]:
        opened = opener.open("a/b", sealer.seal("a/b", empty))
        assert opened.payload == b""
    store = mqseal.Store.create(tmp_path / "s", "s")
    store.create_key("a/#", now=0)
    with store.sealer() as psealer, store.opener() as popener:
        assert popener.open("a/b", psealer.seal("a/b", b"", retain=True), retained=True).payload \
            == b""


def test_oversized_payloads_are_refused_before_a_number_is_spent(
    parties: tuple[mqseal.Sealer, mqseal.Opener, mqseal.Identity]
) -> None:
    sealer, opener, _ = parties
    before = sealer.next_seq
    huge = bytes(mqseal.MAX_SEALED_LEN)  # fits MQTT alone, not with the envelope
    with pytest.raises(mqseal.TooLargeError) as e:
        sealer.seal("a/b", huge)
    assert e.value.code == 21
    assert sealer.next_seq == before
    del huge
    too_long = bytes(mqseal.MAX_SEALED_LEN + 1)
    with pytest.raises(mqseal.TooLargeError):
        opener.open("a/b", too_long)
    with pytest.raises(mqseal.TooLargeError):
        mqseal.inspect(too_long)
    del too_long
    # The length of an absurd payload saturates (it can never be sealed), it does not wrap.
    limit = sealer.sealed_len("a/b", 2**64 - 1)
    assert limit is not None and limit > mqseal.MAX_SEALED_LEN


# -- garbage bytes -----------------------------------------------------------------------------------


def garbage_samples() -> list[bytes]:
    samples = [b"", b"\x00", b"\x01", b"\xff" * 4, b'{"temp": 21.5}', bytes(range(256)),
               b"\x01" * 300]
    state = 0x1234
    for n in (3, 17, 64, 65, 130, 500):
        out = bytearray()
        for _ in range(n):
            state = (state * 1103515245 + 12345) & 0x7FFFFFFF
            out.append(state >> 16 & 0xFF)
        samples.append(bytes(out))
    return samples


def test_garbage_bytes_raise_mqseal_errors_only(
    parties: tuple[mqseal.Sealer, mqseal.Opener, mqseal.Identity]
) -> None:
    sealer, opener, me = parties
    sealed = sealer.seal("a/b", b"payload")
    variants = garbage_samples()
    variants += [sealed[:n] for n in range(len(sealed))]
    for i in range(len(sealed)):
        flipped = bytearray(sealed)
        flipped[i] ^= 0x5A
        variants.append(bytes(flipped))
    for data in variants:
        with pytest.raises(mqseal.Error):
            opener.open("a/b", data)
        with pytest.raises(mqseal.Error):
            opener.open("a/b", data, retained=True, duplicate=True)
    for data in garbage_samples():
        with pytest.raises(mqseal.Error):
            mqseal.Grant.from_bytes(data)
        with pytest.raises(mqseal.Error):
            mqseal.ReplayWindow.from_bytes(data)
        if len(data) != 64:
            with pytest.raises(mqseal.MalformedError):
                mqseal.PublicIdentity.from_bytes(data)
        try:
            mqseal.inspect(data)
        except mqseal.Error:
            pass
    for token in ["", "zz", "mqseal-pub1:", "mqseal-pub1:" + "0" * 127, "mqseal-pub1:" + "g" * 128,
                  "mqseal-pub2:" + me.public.token.split(":", 1)[1]]:
        with pytest.raises(mqseal.Error):
            mqseal.PublicIdentity.from_token(token)
    # A low-order X25519 key (all zeros) is refused as a key, not accepted.
    with pytest.raises(mqseal.InvalidKeyError):
        mqseal.PublicIdentity.from_bytes(me.public.ed25519 + bytes(32))
    # Version bits: 010 (0x40..0x5f) is v2; v1's 001 (0x20..) and every other value are
    # unsupported_version, before anything else is parsed.
    assert sealed[0] & 0xE0 == 0x40
    for flags in (0x00, 0x20, 0x28, 0x38, 0x60, 0x80, 0xE0):
        with pytest.raises(mqseal.UnsupportedVersionError):
            opener.open("a/b", bytes([flags | (sealed[0] & 0x1F)]) + sealed[1:])
        with pytest.raises(mqseal.UnsupportedVersionError):
            mqseal.inspect(bytes([flags]) + sealed[1:])
    for reserved in (0x01, 0x02):
        with pytest.raises(mqseal.MalformedError):
            mqseal.inspect(bytes([sealed[0] | reserved]) + sealed[1:])
    # Cut inside the key id or the salt: malformed, never a crash.
    for n in range(1, 20):
        with pytest.raises(mqseal.MalformedError):
            mqseal.inspect(sealed[:n])
    # After all that, the real message still opens (the failures recorded nothing).
    assert opener.open("a/b", sealed).payload == b"payload"


# -- keystore files ----------------------------------------------------------------------------------


@pytest.mark.parametrize("victim", ["identity.key", "identity.pub", "keys", "trusted",
                                    "state/seq", "state/replay.snap", "state/replay.log"])
@pytest.mark.parametrize("damage", ["garbage", "empty", "text", "truncated"])
def test_damaged_keystore_files_are_named_and_left_alone(
    tmp_path: Path, victim: str, damage: str
) -> None:
    store = mqseal.Store.create(tmp_path / "s", "s")
    store.create_key("a/#", now=0)
    store.trust("peer", mqseal.Identity.generate().public)
    with store.sealer() as sealer, store.opener() as opener:
        opener.open("a/b", sealer.seal("a/b", b"x"))
    del store
    path = tmp_path / "s" / victim
    original = path.read_bytes()
    path.write_bytes({
        "garbage": bytes([0xFF, 0x00, 0x13, 0x37, 0xFE, 0x80, 0x0A, 0x01]),
        "empty": b"",
        "text": b"mqseal rules\n",
        "truncated": original[: len(original) // 2],
    }[damage])
    before = snapshot(tmp_path / "s")

    def use() -> None:
        s = mqseal.Store.open(tmp_path / "s")
        s.trusted()
        s.held_keys()
        with s.opener() as opener, s.sealer() as sealer:
            opener.open("a/b", sealer.seal("a/b", b"y"))

    if victim == "trusted" and damage == "empty":
        use()  # an empty trusted file is valid: nobody else is trusted
        return
    if victim == "state/replay.log" and damage == "truncated":
        use()  # a torn journal tail is what a crash leaves: the uncommitted record is dropped
        return
    with pytest.raises(mqseal.StoreError) as e:
        use()
    assert str(path) in str(e.value), f"the error does not name the file: {e.value}"
    assert isinstance(e.value, (mqseal.CorruptFileError, mqseal.MissingFileError)), repr(e.value)
    # Nothing was repaired, reset or added (a reset sequence counter would reuse numbers that
    # subscribers refuse as replays); the
    # lock files of the earlier use already existed.
    assert snapshot(tmp_path / "s") == before


def test_key_files_with_garbage_raise_store_errors(tmp_path: Path) -> None:
    for content in [b"", b"\xff\xfe\x00", b"mqseal-secret1:zz\n", b"x" * 10_000]:
        path = tmp_path / "identity.key"
        path.write_bytes(content)
        path.chmod(0o600)
        with pytest.raises(mqseal.StoreError) as e:
            mqseal.Identity.load(path)
        assert str(path) in str(e.value)
        pub = tmp_path / "identity.pub"
        pub.write_bytes(content)
        with pytest.raises(mqseal.StoreError):
            mqseal.PublicIdentity.load(pub)
    with pytest.raises(mqseal.StoreError):
        mqseal.Identity.load(tmp_path / "missing.key")
    with pytest.raises(mqseal.StoreError):
        mqseal.Store.open(tmp_path / "nowhere")
    assert not (tmp_path / "nowhere").exists()


def test_refused_store_operations_write_nothing(tmp_path: Path) -> None:
    store = mqseal.Store.create(tmp_path / "s", "s")
    store.create_key("a/#", now=0)
    with store.sealer() as sealer:
        sealer.seal("a/b", b"first")
        reserved = sealer.reserved
        before = snapshot(tmp_path / "s")
        next_seq = sealer.next_seq
        for topic, _ in BAD_TOPICS:
            with pytest.raises(mqseal.InvalidTopicError):
                sealer.seal(topic, b"x")
        with pytest.raises(mqseal.KeyNotFound):
            sealer.seal("b/c", b"x")
        with pytest.raises(mqseal.TooLargeError):
            sealer.seal("a/b", bytes(mqseal.MAX_SEALED_LEN))
        assert sealer.next_seq == next_seq and sealer.reserved == reserved
        assert snapshot(tmp_path / "s") == before
    before = snapshot(tmp_path / "s")
    for bad_filter in ["a/+/b", "a/#/b", "", "a/\udcff/#"]:
        with pytest.raises(mqseal.InvalidFilterError):
            store.create_key(bad_filter, now=0)
    for topic, _ in BAD_TOPICS:
        with pytest.raises((mqseal.InvalidTopicError, mqseal.GrantTopicMismatchError)):
            store.accept_grant_message(topic, b"garbage")
    with pytest.raises(mqseal.Error):
        store.accept_grant_message(store.grant_subscription[:-1] + "0", b"garbage")
    for name in ["", "bad name", "a/b", "n" * 65]:
        with pytest.raises(mqseal.InvalidNameError):
            store.trust(name, mqseal.Identity.generate().public)
    with pytest.raises(mqseal.StoreExistsError):
        mqseal.Store.create(tmp_path / "s", "again")
    assert snapshot(tmp_path / "s") == before


# -- the paho wrapper --------------------------------------------------------------------------------


def test_paho_wrapper_refuses_bad_topics_and_sizes_before_publishing(
    parties: tuple[mqseal.Sealer, mqseal.Opener, mqseal.Identity],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sealer, opener, _ = parties
    raw = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bad-input")
    sent: list[tuple[str, bytes]] = []

    def fake_publish(topic: str, payload: bytes, qos: int = 0, retain: bool = False,
                     properties: Any = None) -> str:
        sent.append((topic, payload))
        return "info"

    monkeypatch.setattr(raw, "publish", fake_publish)
    client = SealedClient(raw, sealer=sealer, opener=opener)
    before = sealer.next_seq
    for topic, _ in BAD_TOPICS:
        with pytest.raises(mqseal.InvalidTopicError):
            client.publish(topic, b"x", qos=1)
    with pytest.raises(mqseal.TooLargeError):
        client.publish("a/b", bytes(mqseal.MAX_SEALED_LEN), qos=1)
    assert sent == [] and sealer.next_seq == before
    # Empty payloads (b"", "", None, as paho allows) are sealed and sent.
    for empty in [b"", "", None]:
        client.publish("a/empty", empty, qos=1)
    assert [t for t, _ in sent] == ["a/empty"] * 3
    assert all(opener.open(t, p).payload == b"" for t, p in sent)


def test_paho_wrapper_refuses_what_a_broker_may_deliver(
    parties: tuple[mqseal.Sealer, mqseal.Opener, mqseal.Identity]
) -> None:
    sealer, opener, _ = parties
    rejected: list[mqseal.Error] = []
    delivered: list[Any] = []
    client = SealedClient(
        mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bad-input-rx"),
        opener=opener,
        on_message=lambda c, u, m: delivered.append(m),
        on_rejected=lambda c, u, m, e: rejected.append(e),
    )
    good = sealer.seal("a/b", b"ok")

    def deliver(topic: bytes, payload: bytes) -> None:
        m = mqtt.MQTTMessage(mid=1, topic=topic)
        m.payload = payload
        m.qos = 1
        client._on_raw_message(client.client, None, m)

    deliver(b"a/\xff\xfe", good)  # a topic that is not UTF-8
    deliver(b"a/b\x00", good)  # NUL
    deliver(b"a/+", good)  # a wildcard (no broker may send one; a malicious one might)
    deliver(b"a/b", b"")  # empty payload: not a sealed message
    for g in garbage_samples():
        deliver(b"a/b", g)
    deliver(b"a/b", good)
    assert [m.payload for m in delivered] == [b"ok"]
    assert all(isinstance(e, mqseal.Error) for e in rejected)
    assert [type(e) for e in rejected[:3]] == [mqseal.InvalidTopicError] * 3
    assert len(rejected) == 4 + len(garbage_samples())


def test_store_directory_that_is_a_file_or_unreadable(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(mqseal.StoreError):
        mqseal.Store.open(not_a_dir)
    with pytest.raises(mqseal.StoreError):
        mqseal.Store.create(not_a_dir, "x")
    assert not_a_dir.read_text() == "x"
    # A copy of a store works; the copy's damaged state is reported against the copy.
    store = mqseal.Store.create(tmp_path / "orig", "orig")
    store.create_key("a/#", now=0)
    shutil.copytree(tmp_path / "orig", tmp_path / "copy")
    (tmp_path / "copy" / "state" / "seq").write_bytes(b"")
    with pytest.raises(mqseal.CorruptFileError) as e:
        mqseal.Store.open(tmp_path / "copy").sealer()
    assert "copy" in str(e.value) and "state/seq" in str(e.value)
    with mqseal.Store.open(tmp_path / "orig").sealer() as sealer:
        sealer.seal("a/b", b"fine")
