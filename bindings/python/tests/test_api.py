"""The Python API: round trips, key tree rules, grants, policies, errors, and what repr shows."""

from __future__ import annotations

import os
import pickle
import threading
import time

import pytest

import mqseal

SEED = bytes(range(32))
SECRET = bytes(range(64, 96))


@pytest.fixture
def sensor() -> mqseal.Identity:
    return mqseal.Identity.from_seed(SEED)


@pytest.fixture
def plant() -> mqseal.TreeKey:
    return mqseal.TreeKey.from_secret("plant/#", 1, SECRET)


def pair(sensor: mqseal.Identity, key: mqseal.TreeKey, profile: str = "signed",
         policy: mqseal.OpenPolicy | None = None) -> tuple[mqseal.Sealer, mqseal.Opener]:
    sealer = mqseal.Sealer(sensor, profile, start=0)  # type: ignore[arg-type]
    sealer.add_key(key)
    opener = mqseal.Opener(policy)
    opener.trust_sender(sensor.public)
    if profile == "group-mac":
        opener.trust_group_mac_sender(sensor.public, "#")
    opener.add_key(key)
    return sealer, opener


# -- round trips ----------------------------------------------------------------------------------


def test_round_trip_with_fresh_identity_and_key() -> None:
    sensor = mqseal.Identity.generate()
    plant = mqseal.TreeKey.generate("plant/#", 7)
    sealer, opener = pair(sensor, plant.derive("plant/7/#"))
    for i, payload in enumerate([b"21.5", b"", bytes(range(256)) * 40, bytearray(b"ba")]):
        before = int(time.time())
        sealed = sealer.seal("plant/7/temp", payload)
        after = int(time.time())
        assert isinstance(sealed, bytes)
        assert bytes(payload) not in sealed or not payload
        assert len(sealed) - len(payload) == 104  # signed, timestamp, small seq (spec section 5)
        opened = opener.open("plant/7/temp", sealed)
        assert opened.payload == bytes(payload)
        assert opened.seq == i
        assert opened.sender == sensor.public
        assert opened.epoch == 7
        assert opened.profile == "signed"
        assert opened.retain is False
        # Timestamps are on by default: the sender's clock when it sealed.
        assert opened.timestamp is not None and before <= opened.timestamp <= after


def test_two_generated_identities_and_keys_differ() -> None:
    assert mqseal.Identity.generate() != mqseal.Identity.generate()
    assert mqseal.TreeKey.generate("#", 1) != mqseal.TreeKey.generate("#", 1)


def test_identity_from_seed_round_trip(sensor: mqseal.Identity) -> None:
    again = mqseal.Identity.from_seed(sensor.seed())
    assert again == sensor
    assert hash(again) == hash(sensor)
    assert again.public == sensor.public
    assert mqseal.PublicIdentity.from_bytes(bytearray(sensor.public.to_bytes())) == sensor.public
    assert {sensor.public, again.public} == {sensor.public}
    assert len(sensor.fingerprint) == 64
    assert sensor.fingerprint.startswith(sensor.public.sender_id)


def test_group_mac_profile_and_retain_and_timestamp(sensor: mqseal.Identity,
                                                    plant: mqseal.TreeKey) -> None:
    policy = mqseal.OpenPolicy(max_age=60)
    sealer, opener = pair(sensor, plant, "group-mac", policy)
    assert sealer.profile == "group-mac"
    sealed = sealer.seal("plant/1/state", b"on", retain=True, timestamp=1_790_000_000)
    assert len(sealed) - 2 == 40  # group-mac, timestamp, small seq (spec section 5)
    opened = opener.open("plant/1/state", sealed, retained=True, now=1_790_000_030)
    assert (opened.profile, opened.retain, opened.timestamp) == ("group-mac", True, 1_790_000_000)
    # A retained message may also arrive live (retain flag cleared by the broker).
    sealed = sealer.seal("plant/1/state", b"off", retain=True, timestamp=1_790_000_001)
    assert opener.open("plant/1/state", sealed, now=1_790_000_030).payload == b"off"


def test_overheads(sensor: mqseal.Identity, plant: mqseal.TreeKey) -> None:
    """Spec section 5: 104 / 40 bytes with a timestamp (the default) at small sequence numbers,
    99 / 35 without, at most 122 / 58 (epoch 2^32-1, seq and timestamp 2^64-1)."""
    assert (mqseal.MAX_OVERHEAD_SIGNED, mqseal.MAX_OVERHEAD_GROUP_MAC) == (122, 58)
    for profile, with_ts, without_ts, worst in [("signed", 104, 99, 122),
                                                ("group-mac", 40, 35, 58)]:
        sealer, _ = pair(sensor, plant, profile)
        assert len(sealer.seal("plant/7/temp", b"x" * 100)) - 100 == with_ts
        assert len(sealer.seal("plant/7/temp", b"x" * 100, timestamp=1_800_000_000)) - 100 \
            == with_ts
        assert len(sealer.seal("plant/7/temp", b"x" * 100, timestamp=None)) - 100 == without_ts
        assert sealer.sealed_len("plant/7/temp", 100) == 100 + with_ts
        assert sealer.sealed_len("plant/7/temp", 100, None) == 100 + without_ts
        # The last usable number (2^64-2; its varint is as long as 2^64-1's).
        big = mqseal.Sealer(sensor, profile, start=2**64 - 2)  # type: ignore[arg-type]
        big.add_key(mqseal.TreeKey.from_secret("#", 2**32 - 1, SECRET))
        assert big.sealed_len("t", 0, 2**64 - 1) == worst
        assert len(big.seal("t", b"", timestamp=2**64 - 1)) == worst
        with pytest.raises(mqseal.SequenceExhaustedError):
            big.seal("t", b"", timestamp=2**64 - 1)


def test_key_tree_follows_topics_downwards_only(plant: mqseal.TreeKey) -> None:
    line7 = plant.derive("plant/7/#")
    exact = plant.derive("plant/7/temp")
    assert (line7.filter, line7.epoch, line7.kind) == ("plant/7/#", 1, "subtree")
    assert exact.kind == "exact"
    assert line7.topic_key("plant/7/temp") == exact.topic_key("plant/7/temp")
    assert line7.covers("plant/7") and line7.covers("plant/7/a/b")
    assert not line7.covers("plant/70/temp")
    with pytest.raises(mqseal.KeyNotFound):
        line7.derive("plant/#")
    with pytest.raises(mqseal.KeyNotFound):
        line7.topic_key("plant/8/temp")
    with pytest.raises(mqseal.KeyNotFound):
        exact.derive("plant/7/temp/#")
    with pytest.raises(mqseal.InvalidFilterError):
        plant.derive("plant/+/temp")
    with pytest.raises(mqseal.InvalidTopicError):
        plant.topic_key("plant/#")
    assert plant.secret_bytes() == SECRET
    assert mqseal.TreeKey.from_secret("plant/#", 1, plant.secret_bytes()) == plant
    assert mqseal.TreeKey.from_secret("plant/#", 2, SECRET) != plant


def test_sealer_uses_most_specific_then_newest_key(sensor: mqseal.Identity) -> None:
    old = mqseal.TreeKey.from_secret("plant/#", 1, SECRET)
    new = mqseal.TreeKey.from_secret("plant/#", 2, bytes(32))
    sealer = mqseal.Sealer(sensor, start=0)
    sealer.add_key(old)
    sealer.add_key(new)
    assert mqseal.inspect(sealer.seal("plant/a", b"1")).epoch == 2
    assert sealer.remove_key("plant/#", 2)
    assert not sealer.remove_key("plant/#", 2)
    assert mqseal.inspect(sealer.seal("plant/a", b"1")).epoch == 1


def test_grant_delivers_a_key(sensor: mqseal.Identity, plant: mqseal.TreeKey) -> None:
    admin = mqseal.Identity.generate()
    dashboard = mqseal.Identity.generate()
    grant = mqseal.Grant.issue(admin, dashboard.public, plant.derive("plant/7/#"))
    wire = bytes(grant)
    received = mqseal.Grant.from_bytes(wire)
    assert received.recipient == dashboard.fingerprint
    assert received.issuer_ed25519 == admin.public.ed25519
    key = received.accept(dashboard, iter([mqseal.Identity.generate().public, admin.public]))
    assert key == plant.derive("plant/7/#")
    with pytest.raises(mqseal.GrantNotForUsError):
        received.accept(admin, [admin.public])
    with pytest.raises(mqseal.UntrustedIssuerError) as caught:
        received.accept(dashboard, [])
    assert isinstance(caught.value, mqseal.GrantError)
    tampered = bytearray(wire)
    tampered[-70] ^= 1
    with pytest.raises(mqseal.BadSignatureError):
        mqseal.Grant.from_bytes(bytes(tampered)).accept(dashboard, [admin.public])
    with pytest.raises(mqseal.MalformedError):
        mqseal.Grant.from_bytes(wire[:-1])
    with pytest.raises(TypeError):
        received.accept(dashboard, [admin])  # an Identity is not a PublicIdentity


# -- refusals -------------------------------------------------------------------------------------


def test_opener_refusals_carry_stable_codes(sensor: mqseal.Identity,
                                            plant: mqseal.TreeKey) -> None:
    sealer, opener = pair(sensor, plant)
    sealed = sealer.seal("plant/7/temp", b"21.5")
    opener.open("plant/7/temp", sealed)

    with pytest.raises(mqseal.ReplayError) as replay:
        opener.open("plant/7/temp", sealed)
    assert (type(replay.value), replay.value.code, replay.value.name) == (
        mqseal.ReplayError, 10, "replay")
    with pytest.raises(mqseal.DuplicateError) as dup:
        opener.open("plant/7/temp", sealed, duplicate=True)
    assert isinstance(dup.value, mqseal.ReplayError) and dup.value.code == 11
    # Moved to another topic: the key id names no key there, so no key is even tried.
    with pytest.raises(mqseal.KeyNotFound) as moved:
        opener.open("plant/7/other", sealed)
    assert (moved.value.code, moved.value.name) == (7, "key_not_found")
    with pytest.raises(mqseal.UnsupportedVersionError) as plain:
        opener.open("plant/7/temp", b'{"temp": 21.5}')
    assert isinstance(plain.value, mqseal.MalformedError)
    with pytest.raises(mqseal.MalformedError):
        opener.open("plant/7/temp", b"")
    with pytest.raises(mqseal.RetainMismatchError) as retained:
        opener.open("plant/7/temp", sealer.seal("plant/7/temp", b"x"), retained=True)
    assert isinstance(retained.value, mqseal.PolicyError)
    with pytest.raises(mqseal.InvalidTopicError):
        opener.open("plant/+/temp", sealed)

    stranger = mqseal.Sealer(mqseal.Identity.generate(), start=0)
    stranger.add_key(plant)
    with pytest.raises(mqseal.UnknownSenderError):
        opener.open("plant/7/temp", stranger.seal("plant/7/temp", b"forged"))

    outsider = mqseal.Sealer(sensor, start=100)
    outsider.add_key(mqseal.TreeKey.from_secret("plant/#", 9, SECRET))
    with pytest.raises(mqseal.KeyNotFound):  # no key of that epoch
        opener.open("plant/7/temp", outsider.seal("plant/7/temp", b"x"))

    # Validly signed under another key of the same epoch: its key id names no held key (v1
    # tried the key and failed to decrypt; v2 never tries a key the message does not name).
    wrong = mqseal.Sealer(sensor, start=200)
    wrong.add_key(mqseal.TreeKey.from_secret("plant/#", 1, bytes(32)))
    with pytest.raises(mqseal.KeyNotFound):
        opener.open("plant/7/temp", wrong.seal("plant/7/temp", b"x"))

    fresh = sealer.seal("plant/7/temp", b"x")
    with pytest.raises(mqseal.BadSignatureError):  # signature replaced
        opener.open("plant/7/temp", fresh[:-64] + bytes(64))
    salt_at = 1 + 1 + 4 + 4  # flags, epoch 1, sender id, key id
    assert fresh[salt_at:salt_at + 8] == mqseal.inspect(fresh).salt
    with pytest.raises(mqseal.BadSignatureError):  # salt changed: the signature covers it
        opener.open("plant/7/temp", fresh[:salt_at] + bytes(8) + fresh[salt_at + 8:])
    with pytest.raises(mqseal.KeyNotFound):  # key id changed
        opener.open("plant/7/temp", fresh[:6] + bytes(4) + fresh[10:])
    assert opener.open("plant/7/temp", fresh).payload == b"x"  # the refusals consumed nothing


def test_decryption_failure_in_group_mac(sensor: mqseal.Identity, plant: mqseal.TreeKey) -> None:
    sealer, opener = pair(sensor, plant, "group-mac")
    sealed = bytearray(sealer.seal("plant/7/temp", b"21.5"))
    sealed[-1] ^= 0x80
    with pytest.raises(mqseal.DecryptionError) as caught:
        opener.open("plant/7/temp", bytes(sealed))
    assert caught.value.name == "authentication_failed"
    assert isinstance(caught.value, mqseal.AuthenticationError)
    sealed[-1] ^= 0x80
    sealed[10] ^= 1  # the salt: another message key
    with pytest.raises(mqseal.DecryptionError):
        opener.open("plant/7/temp", bytes(sealed))
    sealed[10] ^= 1
    assert opener.open("plant/7/temp", bytes(sealed)).payload == b"21.5"
    strict = mqseal.Opener()
    strict.trust_sender(sensor.public)
    strict.add_key(plant)
    with pytest.raises(mqseal.ProfileNotAllowedError):
        strict.open("plant/7/temp", sealer.seal("plant/7/temp", b"x"))


def test_timestamp_policy(sensor: mqseal.Identity, plant: mqseal.TreeKey) -> None:
    policy = mqseal.OpenPolicy(max_age=30, require_timestamp=True)
    sealer, opener = pair(sensor, plant, policy=policy)
    assert opener.policy == policy
    assert opener.policy.max_age == 30 and opener.policy.max_future_skew == 60
    with pytest.raises(mqseal.MissingTimestampError):
        opener.open("plant/a", sealer.seal("plant/a", b"x", timestamp=None))
    # The default timestamp is the current time: fresh under the system clock.
    assert opener.open("plant/a", sealer.seal("plant/a", b"now")).payload == b"now"
    with pytest.raises(mqseal.ExpiredError):
        opener.open("plant/a", sealer.seal("plant/a", b"x", timestamp=1000), now=1031)
    with pytest.raises(mqseal.ExpiredError):
        opener.open("plant/a", sealer.seal("plant/a", b"x", timestamp=1100), now=1000)
    assert opener.open("plant/a", sealer.seal("plant/a", b"x", timestamp=1000), now=1030)
    # A maximum age alone requires a timestamp too (v2).
    opener.policy = mqseal.OpenPolicy(max_age=30)
    assert not opener.policy.require_timestamp
    with pytest.raises(mqseal.MissingTimestampError):
        opener.open("plant/a", sealer.seal("plant/a", b"x", timestamp=None), now=1000)
    opener.policy = mqseal.OpenPolicy()
    assert opener.open("plant/a", sealer.seal("plant/a", b"y")).payload == b"y"
    assert opener.open("plant/a", sealer.seal("plant/a", b"z", timestamp=None)).timestamp is None


def test_timestamp_argument(sensor: mqseal.Identity, plant: mqseal.TreeKey) -> None:
    """`timestamp="now"` (the default), an int, or None (no timestamp); anything else is refused
    before a sequence number is used."""
    sealer, opener = pair(sensor, plant)
    before = int(time.time())
    default, now = sealer.seal("plant/a", b"1"), sealer.seal("plant/a", b"2", timestamp="now")
    after = int(time.time())
    for m in (default, now):
        ts = mqseal.inspect(m).timestamp
        assert ts is not None and before <= ts <= after
    assert mqseal.inspect(sealer.seal("plant/a", b"3", timestamp=0)).timestamp == 0
    assert mqseal.inspect(sealer.seal("plant/a", b"4", timestamp=2**64 - 1)).timestamp == 2**64 - 1
    none = sealer.seal("plant/a", b"5", timestamp=None)
    assert mqseal.inspect(none).timestamp is None
    assert len(none) == len(default) - 5
    assert sealer.next_seq == 5
    for bad, error in [("later", ValueError), ("NOW", ValueError), (-1, OverflowError),
                       (2**64, OverflowError), (1.5, TypeError), (b"now", TypeError)]:
        with pytest.raises(error):
            sealer.seal("plant/a", b"x", timestamp=bad)  # type: ignore[arg-type]
        with pytest.raises(error):
            sealer.sealed_len("plant/a", 1, bad)  # type: ignore[arg-type]
    assert sealer.next_seq == 5
    assert [opener.open("plant/a", m).seq for m in (default, now, none)] == [0, 1, 4]


def test_start_is_required_and_keyword_only(sensor: mqseal.Identity,
                                            plant: mqseal.TreeKey) -> None:
    with pytest.raises(TypeError, match="start"):
        mqseal.Sealer(sensor)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        mqseal.Sealer(sensor, "signed", 5)  # type: ignore[misc]
    with pytest.raises(OverflowError):
        mqseal.Sealer(sensor, start=-1)
    sealer = mqseal.Sealer(sensor, start=4096)
    sealer.add_key(plant)
    assert (sealer.next_seq, sealer.sequence_limit) == (4096, 2**64 - 1)
    assert mqseal.inspect(sealer.seal("plant/a", b"x")).seq == 4096
    assert sealer.next_seq == 4097


def test_header_carries_key_id_and_a_fresh_salt(sensor: mqseal.Identity,
                                                plant: mqseal.TreeKey) -> None:
    sealer, _ = pair(sensor, plant)
    a1, a2 = sealer.seal("plant/a", b"same"), sealer.seal("plant/a", b"same")
    b1 = sealer.seal("plant/b", b"same")
    h1, h2, hb = (mqseal.inspect(m) for m in (a1, a2, b1))
    assert isinstance(h1.key_id, bytes) and isinstance(h1.salt, bytes)
    assert (len(h1.key_id), len(h1.salt)) == (4, 8)
    # The key id is the topic key's, whichever covering key computes it; one per topic.
    assert h1.key_id == h2.key_id == plant.topic_key("plant/a").key_id
    assert plant.derive("plant/a").topic_key("plant/a").key_id == h1.key_id
    assert hb.key_id == plant.topic_key("plant/b").key_id != h1.key_id
    # Fresh salts from the OS: never the same twice here (2^-64 per pair).
    salts = {h.salt for h in (h1, h2, hb)}
    salts |= {mqseal.inspect(sealer.seal("plant/a", b"same")).salt for _ in range(50)}
    assert len(salts) == 53
    assert h1.key_id.hex() in repr(h1) and h1.salt.hex() in repr(h1)


def test_random_callable_supplies_the_salts(sensor: mqseal.Identity,
                                            plant: mqseal.TreeKey) -> None:
    asked: list[int] = []

    def hardware_rng(n: int) -> bytes:
        asked.append(n)
        return os.urandom(n)

    sealer = mqseal.Sealer(sensor, start=0, random=hardware_rng)
    sealer.add_key(plant)
    opener = mqseal.Opener()
    opener.trust_sender(sensor.public)
    opener.add_key(plant)
    assert opener.open("plant/a", sealer.seal("plant/a", b"x")).payload == b"x"
    assert asked == [8]

    # The salt is exactly what the callable returned; a bytearray is fine.
    fixed = mqseal.Sealer(sensor, start=1, random=lambda n: bytearray(range(1, n + 1)))
    fixed.add_key(plant)
    sealed = fixed.seal("plant/a", b"y")
    assert mqseal.inspect(sealed).salt == bytes(range(1, 9))
    assert opener.open("plant/a", sealed).payload == b"y"
    key = plant.topic_key("plant/a").message_key("signed", sensor.public.ed25519, bytes(range(1, 9)))
    assert len(key) == 32

    # A generator that fails, or returns the wrong thing: RandomnessError (the reason as its
    # __cause__) and no sequence number spent.
    class Broken(Exception):
        pass

    def broken(n: int) -> bytes:
        raise Broken("TRNG not ready")

    for bad, cause in [(broken, Broken), (lambda n: b"short", ValueError),
                       (lambda n: "x" * n, TypeError), (lambda: b"x" * 8, TypeError)]:
        failing = mqseal.Sealer(sensor, start=7, random=bad)  # type: ignore[arg-type]
        failing.add_key(plant)
        with pytest.raises(mqseal.RandomnessError) as caught:
            failing.seal("plant/a", b"z")
        assert (caught.value.code, caught.value.name) == (22, "randomness")
        assert isinstance(caught.value.__cause__, cause)
        assert failing.next_seq == 7
    with pytest.raises(TypeError, match="callable"):
        mqseal.Sealer(sensor, start=0, random=b"12345678")  # type: ignore[arg-type]


def test_random_callable_with_threads_and_reentry(sensor: mqseal.Identity,
                                                   plant: mqseal.TreeKey) -> None:
    """A callable that lets other threads run (the GIL is released while it sleeps) while its
    seal holds the sealer: the other threads wait for the sealer, none fails or reuses a number.
    A callable that uses a sealer itself is refused instead of deadlocking."""
    def slow_rng(n: int) -> bytes:
        time.sleep(0.001)
        return os.urandom(n)

    sealer = mqseal.Sealer(sensor, start=0, random=slow_rng)
    sealer.add_key(plant)
    out: list[bytes] = []
    errors: list[BaseException] = []

    def work() -> None:
        for _ in range(25):
            try:
                out.append(sealer.seal("plant/a", b"x"))
                assert sealer.next_seq <= 100
            except BaseException as e:  # noqa: BLE001 -- collected and asserted below
                errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(mqseal.inspect(m).seq for m in out) == list(range(100))
    assert len({mqseal.inspect(m).salt for m in out}) == 100

    users: list[mqseal.Sealer] = []

    def reentrant(n: int) -> bytes:
        users[0].next_seq  # noqa: B018 -- the use being refused
        return os.urandom(n)

    inner = mqseal.Sealer(sensor, start=3, random=reentrant)
    users.append(inner)
    inner.add_key(plant)
    with pytest.raises(mqseal.RandomnessError) as caught:
        inner.seal("plant/a", b"x")
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert "must not use a Sealer" in str(caught.value.__cause__)
    assert inner.next_seq == 3


def test_high_water_mark_bounds_first_contact(sensor: mqseal.Identity,
                                              plant: mqseal.TreeKey) -> None:
    sealer, opener = pair(sensor, plant)
    assert opener.high_water_mark(sensor.public) is None
    old = sealer.seal("plant/b", b"historic")  # seq 0, never delivered
    retained_old = sealer.seal("plant/c", b"retained", retain=True)  # seq 1
    sealer.set_sequence(5000)
    opener.open("plant/a", sealer.seal("plant/a", b"now"))
    assert opener.high_water_mark(sensor.public) == 5000
    assert opener.high_water_mark(sensor.fingerprint) == 5000
    assert opener.high_water_mark(mqseal.Identity.generate().public) is None
    # A live delivery on a topic new to the opener, 2048 or more below the mark: a replayed
    # historic message.
    with pytest.raises(mqseal.TooOldError):
        opener.open("plant/b", old)
    # A retained delivery is exempt (a late subscriber's retained message).
    assert opener.open("plant/c", retained_old, retained=True).payload == b"retained"
    # Within the window of the mark: accepted.
    sealer.set_sequence(5000 - 2047)
    assert opener.open("plant/d", sealer.seal("plant/d", b"late")).seq == 2953
    assert opener.high_water_mark(sensor.public) == 5000
    with pytest.raises(TypeError):
        opener.high_water_mark(42)  # type: ignore[arg-type]


def test_retired_key_expires(sensor: mqseal.Identity, plant: mqseal.TreeKey) -> None:
    sealer, opener = pair(sensor, plant)
    first, second = sealer.seal("plant/a", b"1"), sealer.seal("plant/a", b"2")
    opener.retire_key("plant/#", 1, 1000)
    assert opener.key_retirement("plant/#", 1) == 1000
    assert opener.key_retirement("plant/#", 2) is None
    assert opener.open("plant/a", first, now=1000).payload == b"1"
    with pytest.raises(mqseal.EpochExpiredError) as caught:
        opener.open("plant/a", second, now=1001)
    assert isinstance(caught.value, mqseal.PolicyError)


def test_key_validity_limits_sealers_and_openers(sensor: mqseal.Identity) -> None:
    """Spec 4.1, 6 step 2, 7.1 step 4: a key is used only inside its validity; the next epoch,
    granted ahead of time, takes over at its not_before; openers allow skew and grace."""
    e1 = mqseal.TreeKey.from_secret("plant/#", 1, SECRET, not_after=2_000)
    assert (e1.not_before, e1.not_after) == (0, 2_000)
    assert "not_after=2000" in repr(e1)
    assert e1.derive("plant/7/#").not_after == 2_000
    e2 = mqseal.TreeKey.from_secret("plant/#", 2, bytes(range(32)), not_before=1_500)
    assert e2.with_validity() != e2 and e2.with_validity().not_before == 0
    with pytest.raises(mqseal.MalformedError):
        mqseal.TreeKey.from_secret("plant/#", 1, SECRET, not_before=3, not_after=2)
    sealer, opener = pair(sensor, e1, policy=mqseal.OpenPolicy(validity_grace=100))
    assert opener.policy.validity_grace == 100
    assert mqseal.OpenPolicy().validity_grace == 86_400
    ok = sealer.seal("plant/a", b"ok", timestamp=2_000)
    with pytest.raises(mqseal.KeyExpiredError) as caught:
        sealer.seal("plant/a", b"late", timestamp=2_001)
    assert (caught.value.code, caught.value.name) == (25, "key_expired")
    assert isinstance(caught.value, mqseal.PolicyError)
    assert sealer.sealed_len("plant/a", 2, timestamp=2_001) is None
    assert opener.open("plant/a", ok, now=2_100).payload == b"ok"
    with pytest.raises(mqseal.KeyExpiredError):
        opener.open("plant/a", ok, now=2_101)
    sealer.add_key(e2)
    opener.add_key(e2)
    before = mqseal.inspect(sealer.seal("plant/a", b"1", timestamp=1_499))
    after_seal = sealer.seal("plant/a", b"2", timestamp=1_500)
    assert (before.epoch, mqseal.inspect(after_seal).epoch) == (1, 2)
    with pytest.raises(mqseal.KeyExpiredError):
        opener.open("plant/a", after_seal, now=1_439)  # more than 60 s before not_before
    assert opener.open("plant/a", after_seal, now=1_440).epoch == 2
    # The validity travels signed in the grant.
    admin = mqseal.Identity.generate()
    grant = mqseal.Grant.issue(admin, sensor.public, e2)
    got = grant.accept(sensor, [admin.public])
    assert got == e2 and got.not_before == 1_500 and got.not_after is None


def test_untrust_and_remove_key(sensor: mqseal.Identity, plant: mqseal.TreeKey) -> None:
    sealer, opener = pair(sensor, plant)
    assert opener.untrust_sender(sensor.fingerprint.upper())
    assert not opener.untrust_sender(sensor.public)
    with pytest.raises(mqseal.UnknownSenderError):
        opener.open("plant/a", sealer.seal("plant/a", b"x"))
    opener.trust_sender(sensor.public)
    assert opener.remove_key("plant/#", 1)
    with pytest.raises(mqseal.KeyNotFound):
        opener.open("plant/a", sealer.seal("plant/a", b"x"))
    with pytest.raises(ValueError):
        opener.untrust_sender("not-a-fingerprint")
    with pytest.raises(ValueError):
        opener.untrust_sender("+" + sensor.fingerprint[1:])
    with pytest.raises(TypeError):
        opener.untrust_sender(42)  # type: ignore[arg-type]


def test_sealing_refusals(sensor: mqseal.Identity, plant: mqseal.TreeKey) -> None:
    sealer, _ = pair(sensor, plant)
    with pytest.raises(mqseal.KeyNotFound):
        sealer.seal("factory/1", b"x")
    assert sealer.sealed_len("factory/1", 1) is None
    for bad in ["", "plant/+", "plant/#", "plant/\0"]:
        with pytest.raises(mqseal.InvalidTopicError):
            sealer.seal(bad, b"x")
        with pytest.raises(mqseal.InvalidTopicError):
            mqseal.validate_topic(bad)
    mqseal.validate_topic("plant/7/temp")
    with pytest.raises(TypeError):
        sealer.seal("plant/a", "text")  # type: ignore[arg-type]


def test_sequence_block_reservation(sensor: mqseal.Identity, plant: mqseal.TreeKey) -> None:
    sealer, opener = pair(sensor, plant)
    assert (sealer.next_seq, sealer.sequence_limit) == (0, 2**64 - 1)
    sealer.set_sequence(500, 502)
    assert sealer.sequence_limit == 502
    a, b = sealer.seal("plant/a", b"a"), sealer.seal("plant/a", b"b")
    with pytest.raises(mqseal.SequenceExhaustedError) as caught:
        sealer.seal("plant/a", b"c")
    assert caught.value.code == 19
    assert sealer.next_seq == 502
    assert [opener.open("plant/a", m).seq for m in (a, b)] == [500, 501]
    sealer.set_sequence(502, 600)  # the next reserved block
    assert opener.open("plant/a", sealer.seal("plant/a", b"c")).seq == 502


def test_replay_window_persists_through_the_opener(sensor: mqseal.Identity,
                                                   plant: mqseal.TreeKey) -> None:
    sealer, opener = pair(sensor, plant)
    messages = [sealer.seal("plant/a", str(i).encode()) for i in range(5)]
    for m in messages[:3]:
        opener.open("plant/a", m)
    window = opener.replay_window(sensor.public, 1, "plant/a")
    assert window is not None and window.highest == 2
    assert opener.replay_window(sensor.fingerprint, 1, "plant/b") is None
    saved = window.to_bytes()
    assert len(saved) == mqseal.REPLAY_WINDOW_BYTES

    restarted = mqseal.Opener()
    restarted.trust_sender(sensor.public)
    restarted.add_key(plant)
    restarted.set_replay_window(sensor.public, 1, "plant/a", mqseal.ReplayWindow.from_bytes(saved))
    with pytest.raises(mqseal.ReplayError):
        restarted.open("plant/a", messages[1])
    assert restarted.open("plant/a", messages[4]).payload == b"4"
    with pytest.raises(mqseal.MalformedError):
        mqseal.ReplayWindow.from_bytes(saved[:-1])

    w = mqseal.ReplayWindow()
    w.accept(10)
    w.check(11)
    with pytest.raises(mqseal.ReplayError):
        w.check(10)
    w.accept(10 + 5000)
    with pytest.raises(mqseal.TooOldError):
        w.accept(11)


def test_argument_errors_are_python_errors(plant: mqseal.TreeKey) -> None:
    with pytest.raises(ValueError, match="seed must be 32 bytes"):
        mqseal.Identity.from_seed(b"short")
    with pytest.raises(ValueError, match="secret must be 32 bytes"):
        mqseal.TreeKey.from_secret("#", 1, b"")
    with pytest.raises(ValueError, match="profile"):
        mqseal.Sealer(mqseal.Identity.generate(), "none", start=0)  # type: ignore[arg-type]
    with pytest.raises(OverflowError):
        mqseal.TreeKey.from_secret("#", -1, SECRET)
    with pytest.raises(mqseal.MalformedError):
        mqseal.PublicIdentity.from_bytes(b"\x01" * 63)
    with pytest.raises(mqseal.InvalidKeyError):
        mqseal.PublicIdentity.from_bytes(bytes(64))
    with pytest.raises(mqseal.InvalidFilterError):
        mqseal.TreeKey.from_secret("a/+/b", 1, SECRET)
    with pytest.raises(mqseal.MalformedError):
        mqseal.inspect(b"")


# -- secrets stay out of sight --------------------------------------------------------------------


def test_repr_never_shows_secrets(sensor: mqseal.Identity, plant: mqseal.TreeKey) -> None:
    sealer, opener = pair(sensor, plant)
    grant = mqseal.Grant.issue(sensor, sensor.public, plant)
    sealed = sealer.seal("plant/a", b"payload")
    opened = opener.open("plant/a", sealed)
    topic_key = plant.topic_key("plant/a")
    texts = [repr(x) for x in (sensor, sensor.public, plant, topic_key, grant, sealer, opener,
                               opened, mqseal.inspect(sealed), mqseal.OpenPolicy(),
                               mqseal.ReplayWindow())]
    texts += [str(x) for x in (sensor, plant, topic_key)]
    secrets = [SEED.hex(), SECRET.hex(), topic_key.secret_bytes().hex(),
               topic_key.sender_key("signed", sensor.public.ed25519).hex(),
               topic_key.message_key("signed", sensor.public.ed25519,
                                     mqseal.inspect(sealed).salt).hex()]
    for text in texts:
        for secret in secrets:
            for chunk in (secret[:16], secret[16:32], secret[32:48], secret[48:]):
                assert chunk not in text, text
        assert "payload'" not in text
    assert repr(plant) == "TreeKey(filter='plant/#', epoch=1)"
    assert repr(sensor) == f"Identity(fingerprint='{sensor.fingerprint}')"
    assert "payload=<7 bytes>" in repr(opened)
    assert "sender='" + sensor.fingerprint in repr(opened)


def test_secret_holders_do_not_pickle(sensor: mqseal.Identity, plant: mqseal.TreeKey) -> None:
    for secret_holder in (sensor, plant, mqseal.Sealer(sensor, start=0)):
        with pytest.raises(TypeError):
            pickle.dumps(secret_holder)


def test_secret_holders_are_unhashable_but_comparable(plant: mqseal.TreeKey) -> None:
    with pytest.raises(TypeError):
        hash(plant)
    assert plant != "plant/#"
    assert plant.__eq__(object()) is False


# -- the error hierarchy --------------------------------------------------------------------------


def test_every_core_code_has_its_own_class() -> None:
    codes = mqseal.error_codes()
    assert [c for c, _, _ in codes] == list(range(1, len(codes) + 1))
    classes = set()
    for code, name, message in codes:
        cls = mqseal.error_for_code(code)
        assert cls is not mqseal.Error, name
        assert issubclass(cls, mqseal.Error)
        assert cls.error_name == name
        classes.add(cls)
        err = mqseal._errors._from_code(code)
        assert (type(err), err.code, err.name, err.message) == (cls, code, name, message)
        assert str(err) == f"{message} ({name}, code {code})"
        again = pickle.loads(pickle.dumps(err))
        assert (type(again), again.code, again.name) == (cls, code, name)
    assert len(classes) == len(codes)
    assert mqseal.error_for_code(0) is mqseal.Error
    assert mqseal.error_for_code(10_000) is mqseal.Error


def test_families() -> None:
    families = {
        mqseal.ReplayError: {"replay", "duplicate", "too_old"},
        mqseal.AuthenticationError: {"bad_signature", "authentication_failed"},
        mqseal.MalformedError: {"malformed", "unsupported_version"},
        mqseal.PolicyError: {"expired", "missing_timestamp", "retain_mismatch",
                             "profile_not_allowed", "epoch_expired", "key_expired"},
        mqseal.GrantError: {"grant_not_for_us", "untrusted_issuer", "out_of_scope"},
    }
    for base, names in families.items():
        members = {name for code, name, _ in mqseal.error_codes()
                   if issubclass(mqseal.error_for_code(code), base)}
        assert members == names, base


# -- concurrency ----------------------------------------------------------------------------------


def test_one_sealer_shared_by_threads_never_reuses_a_sequence_number(
        sensor: mqseal.Identity, plant: mqseal.TreeKey) -> None:
    sealer, opener = pair(sensor, plant)
    out: list[bytes] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(200):
            sealed = sealer.seal("plant/a", b"x")
            with lock:
                out.append(sealed)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seqs = sorted(mqseal.inspect(m).seq for m in out)
    assert seqs == list(range(800))
    assert all(opener.open("plant/a", m) for m in out)


def test_group_mac_is_trusted_per_sender_and_filter(sensor: mqseal.Identity,
                                                   plant: mqseal.TreeKey) -> None:
    """Spec 7.7: a sender's group-mac messages are accepted only on the filters it is trusted
    for; windows and high-water marks are per profile (7.3)."""
    sealer = mqseal.Sealer(sensor, "group-mac", start=0)
    sealer.add_key(plant)
    opener = mqseal.Opener()
    opener.add_key(plant)
    opener.trust_sender(sensor.public)
    message = sealer.seal("plant/7/temp", b"21.5")
    with pytest.raises(mqseal.ProfileNotAllowedError):
        opener.open("plant/7/temp", message)
    opener.trust_group_mac_sender(sensor.public, "plant/7/#")
    assert opener.open("plant/7/temp", message).profile == "group-mac"
    with pytest.raises(mqseal.ProfileNotAllowedError):
        opener.open("plant/8/temp", sealer.seal("plant/8/temp", b"19"))
    with pytest.raises(mqseal.InvalidFilterError):
        opener.trust_group_mac_sender(sensor.public, "plant/#/x")
    assert opener.high_water_mark(sensor.public, profile="group-mac") == 0
    assert opener.high_water_mark(sensor.public) is None
    assert opener.replay_window(sensor.public, 1, "plant/7/temp") is None
    window = opener.replay_window(sensor.public, 1, "plant/7/temp", profile="group-mac")
    assert window is not None and window.highest == 0
    with pytest.raises(ValueError):
        opener.high_water_mark(sensor.public, profile="other")  # type: ignore[arg-type]


def test_grants_from_a_scoped_issuer(sensor: mqseal.Identity) -> None:
    """Spec 8.1: an issuer trusted for a scope is refused outside it (OutOfScopeError, 24)."""
    admin = mqseal.Identity.generate()
    lab = mqseal.TreeKey.generate("lab/#", 1)
    grant = mqseal.Grant.issue(admin, sensor.public, lab)
    assert grant.accept(sensor, [(admin.public, ["lab/#"])]) == lab
    assert grant.accept(sensor, [(admin.public, ["#"])]) == lab
    assert grant.accept(sensor, [admin.public]) == lab
    with pytest.raises(mqseal.OutOfScopeError) as caught:
        grant.accept(sensor, [(admin.public, ["plant/#", "lab/1/#"])])
    assert (caught.value.code, caught.value.name) == (24, "out_of_scope")
    assert isinstance(caught.value, mqseal.GrantError)
    with pytest.raises(mqseal.UntrustedIssuerError):
        grant.accept(sensor, [(sensor.public, ["#"])])
    with pytest.raises(TypeError):
        grant.accept(sensor, ["not an issuer"])  # type: ignore[list-item]


def test_replay_limits_evict_and_leave_a_floor(sensor: mqseal.Identity,
                                               plant: mqseal.TreeKey) -> None:
    sealer, opener = pair(sensor, plant)
    assert opener.replay_limits == (1024, 16384)
    opener.set_replay_limits(2, 100)
    assert opener.replay_limits == (2, 100)
    first = sealer.seal("plant/1", b"1")
    opener.open("plant/1", first)
    for t in ("plant/2", "plant/3"):
        opener.open(t, sealer.seal(t, b"x"))
    assert opener.replay_window_count == 2
    assert opener.replay_window(sensor.public, 1, "plant/1") is None
    assert opener.replay_floor(sensor.fingerprint) == mqseal.inspect(first).seq
    with pytest.raises(mqseal.TooOldError):  # the evicted window's replay stays refused
        opener.open("plant/1", first)
    # A restarted opener restores the floor with the windows.
    restarted = mqseal.Opener()
    restarted.trust_sender(sensor.public)
    restarted.add_key(plant)
    restarted.raise_replay_floor(sensor.public, mqseal.inspect(first).seq)
    with pytest.raises(mqseal.TooOldError):
        restarted.open("plant/1", first)
    assert restarted.high_water_mark(sensor.public) == mqseal.inspect(first).seq
