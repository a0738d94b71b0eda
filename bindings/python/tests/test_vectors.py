"""Every file in spec/vectors replayed through the Python API (mirrors the Rust replayer
crates/mqseal/tests/vectors.rs): exact bytes, payloads and error codes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import mqseal
from conftest import VECTORS

Load = Callable[[str], Any]

# Each vector file and the test that replays it; a new file fails test_every_file_is_replayed
# until a test handles it.
HANDLED = {
    "identities.json",
    "key-schedule.json",
    "envelopes.json",
    "envelopes-negative.json",
    "grants.json",
    "replay-window.json",
    "hpke-rfc9180-a2.json",
    "keystore.json",
}


def b(value: str) -> bytes:
    return bytes.fromhex(value)


def key(v: dict[str, Any]) -> mqseal.TreeKey:
    """A vector key; not_before / not_after are present when it has a validity limit."""
    return mqseal.TreeKey.from_secret(v["filter"], v["epoch"], b(v["secret"]),
                                      not_before=v.get("not_before", 0),
                                      not_after=v.get("not_after"))


def public(value: str) -> mqseal.PublicIdentity:
    return mqseal.PublicIdentity.from_bytes(b(value))


def test_every_file_is_replayed() -> None:
    present = {p.name for p in VECTORS.glob("*.json")}
    assert present == HANDLED


def test_identities(vector: Load) -> None:
    vectors = vector("identities.json")["vectors"]
    assert vectors
    for v in vectors:
        identity = mqseal.Identity.from_seed(b(v["seed"]))
        p = identity.public
        assert p.to_bytes() == b(v["public_identity"])
        assert bytes(p) == b(v["public_identity"])
        assert p.ed25519 == b(v["ed25519_public"])
        assert p.x25519 == b(v["x25519_public"])
        assert p.fingerprint == v["fingerprint"]
        assert identity.fingerprint == v["fingerprint"]
        assert p.sender_id == v["sender_id"]
        assert public(v["public_identity"]) == p
        assert identity.seed() == b(v["seed"])


def test_invalid_public_identities(vector: Load) -> None:
    vectors = vector("identities.json")["invalid_public_identities"]
    assert {v["error"] for v in vectors} == {"invalid_key", "malformed"}
    for v in vectors:
        # As bytes, and as the mqseal-pub1 token keystores and the CLI write.
        for parse in (lambda: mqseal.PublicIdentity.from_bytes(b(v["public_identity"])),
                      lambda: mqseal.PublicIdentity.from_token("mqseal-pub1:" + v["public_identity"])):
            with pytest.raises(mqseal.Error) as caught:
                parse()
            err = caught.value
            assert (err.name, err.code) == (v["error"], v["code"]), v["name"]
            assert type(err) is mqseal.error_for_code(v["code"]), v["name"]


def test_key_schedule(vector: Load) -> None:
    v = vector("key-schedule.json")
    root = key(v["root"])
    derivations = v["derivations"]
    for d in derivations:
        derived = root.derive(d["filter"])
        assert derived == key(d), d["filter"]
        assert derived.secret_bytes() == b(d["secret"])
        assert derived.epoch == d["epoch"]
    assert v["topics"]
    for t in v["topics"]:
        topic = t["topic"]
        tk = root.topic_key(topic)
        assert tk.secret_bytes() == b(t["topic_key"]), topic
        assert tk.topic_digest == b(t["topic_digest"])
        assert tk.key_id == b(t["key_id"]), topic
        for s in t["sender_keys"]:
            assert tk.sender_key(s["profile"], b(s["sender_ed25519"])) == b(s["key"])
        # Every holder on the path derives the same topic key.
        for d in derivations:
            holder = key(d)
            if holder.covers(topic):
                assert holder.topic_key(topic) == tk
                assert holder.topic_key(topic).key_id == tk.key_id
    glob = key(v["global_root"])
    for t in v["global_topics"]:
        assert glob.topic_key(t["topic"]).secret_bytes() == b(t["topic_key"])
    # Spec 6 step 2: the key a sealer uses at the sealing time (the message's timestamp).
    choices = v["key_choice"]
    assert {c.get("error") for c in choices} >= {None, "key_expired", "key_not_found"}
    for c in choices:
        sealer = mqseal.Sealer(mqseal.Identity.from_seed(bytes(32)), "signed", start=0)
        keys = [key(k) for k in c["keys"]]
        for k in keys:
            sealer.add_key(k)
        if "error" in c:
            with pytest.raises(mqseal.Error) as caught:
                sealer.seal(c["topic"], b"x", timestamp=c["now"])
            assert (caught.value.name, caught.value.code) == (c["error"], c["code"])
            assert sealer.sealed_len(c["topic"], 1, timestamp=c["now"]) is None
            continue
        header = mqseal.inspect(sealer.seal(c["topic"], b"x", timestamp=c["now"]))
        chosen = keys[c["chosen"]]
        assert header.epoch == chosen.epoch, c["description"]
        assert header.key_id == chosen.topic_key(c["topic"]).key_id, c["description"]


def varint_len(n: int) -> int:
    return max(1, (n.bit_length() + 6) // 7)


def test_envelopes_seal_and_open_exactly(vector: Load) -> None:
    """Each positive vector reproduced byte for byte: the sealer draws the vector's salt from a
    `random` callable (spec section 11: use the vector's salt where the sealer would draw random
    bytes), every intermediate value is checked through the API, and the message opens. The
    same message sealed with the OS generator differs exactly where the salt reaches."""
    vectors = vector("envelopes.json")["vectors"]
    assert len(vectors) >= 6
    assert {v["timestamp"] is None for v in vectors} == {True, False}
    for v in vectors:
        name = v["name"]
        payload, salt, expected = b(v["payload"]), b(v["salt"]), b(v["sealed"])
        sender = mqseal.Identity.from_seed(b(v["sender_seed"]))
        ed = sender.public.ed25519
        drawn: list[int] = []

        def vector_salt(n: int) -> bytes:
            drawn.append(n)
            return salt

        sealer = mqseal.Sealer(sender, v["profile"], start=v["seq"], random=vector_salt)
        sealer.add_key(key(v["sealer_key"]))
        ts = v["timestamp"]  # None: a message without timestamp
        assert sealer.sealed_len(v["topic"], len(payload), ts) == len(expected), name
        sealed = sealer.seal(v["topic"], payload, retain=v["retain"], timestamp=ts)
        assert drawn == [8], name
        assert sealed.hex() == v["sealed"], name
        parts = b(v["header"]) + b(v["ciphertext"]) + b(v["tag"]) + b(v.get("signature") or "")
        assert parts == sealed, name
        assert v["overhead"] == len(sealed) - len(payload)
        assert sealer.next_seq == v["seq"] + 1

        # The key schedule of this message, as the API computes it.
        tk = key(v["sealer_key"]).topic_key(v["topic"])
        assert key(v["opener_key"]).topic_key(v["topic"]) == tk
        assert tk.secret_bytes() == b(v["topic_key"]), name
        assert tk.topic_digest == b(v["topic_digest"])
        assert tk.key_id == b(v["key_id"])
        assert tk.sender_key(v["profile"], ed) == b(v["sender_key"])
        assert tk.message_key(v["profile"], ed, salt) == b(v["message_key"]), name
        assert b(v["nonce"]) == bytes(4) + v["seq"].to_bytes(8, "big")
        assert b(v["aad"]) == b(v["header"]) + tk.topic_digest

        header = mqseal.inspect(sealed)
        assert (header.profile, header.retain, header.epoch, header.seq, header.timestamp) == (
            v["profile"], v["retain"], v["epoch"], v["seq"], v["timestamp"])
        assert header.sender_id == v["sender_id"]
        assert (header.key_id, header.salt) == (b(v["key_id"]), salt)

        opener = mqseal.Opener()
        opener.trust_group_mac_sender(public(v["sender_public"]), "#")
        opener.add_key(key(v["opener_key"]))
        opened = opener.open(v["topic"], sealed, retained=v["retain"])
        assert opened.payload == payload, name
        assert opened.seq == v["seq"]
        assert opened.sender == sender.public
        assert opened.timestamp == v["timestamp"]
        assert opened.epoch == v["epoch"]
        assert opened.profile == v["profile"]
        assert opened.retain == v["retain"]

        # With the OS generator: the same header but for the salt, the same length, a
        # different ciphertext and tag (another message key), and it opens too.
        os_sealer = mqseal.Sealer(sender, v["profile"], start=v["seq"])
        os_sealer.add_key(key(v["sealer_key"]))
        fresh = os_sealer.seal(v["topic"], payload, retain=v["retain"], timestamp=ts)
        at = 1 + varint_len(v["epoch"]) + 4 + 4  # flags, epoch, sender id, key id
        hlen = len(b(v["header"]))
        assert len(fresh) == len(expected)
        assert fresh[:at] == expected[:at] and fresh[at + 8:hlen] == expected[at + 8:hlen], name
        assert fresh[at:at + 8] == mqseal.inspect(fresh).salt != salt
        tag_end = len(fresh) - (64 if v["profile"] == "signed" else 0)
        assert fresh[hlen:tag_end] != expected[hlen:tag_end], name
        again = mqseal.Opener()
        again.trust_group_mac_sender(sender.public, "#")
        again.add_key(key(v["opener_key"]))
        assert again.open(v["topic"], fresh, retained=v["retain"]).payload == payload, name


def test_mixed_order_r_envelopes_open(vector: Load) -> None:
    """Spec section 7.6: signatures whose R has a torsion component, valid under the cofactored
    equation only, open (made by hand: they cannot be reproduced by sealing)."""
    vectors = vector("envelopes.json")["mixed_order_r"]
    assert [v["torsion_order"] for v in vectors] == [8, 4, 2]
    for v in vectors:
        opener = mqseal.Opener()
        opener.trust_sender(public(v["sender_public"]))
        opener.add_key(key(v["opener_key"]))
        opened = opener.open(v["topic"], b(v["sealed"]))
        assert opened.payload == b(v["payload"]), v["name"]
        assert opened.seq == v["seq"], v["name"]
        assert opened.sender == public(v["sender_public"]), v["name"]


def test_envelopes_negative(vector: Load) -> None:
    vectors = vector("envelopes-negative.json")["vectors"]
    assert len(vectors) >= 72
    # v2's additions (spec sections 4.6, 4.7, 7.1, 7.3, 7.6) are among them.
    assert {v["name"] for v in vectors} >= {
        "version-1", "key-id-names-no-held-key", "flipped-salt-signed",
        "flipped-salt-group-mac", "moved-topic-signed", "moved-topic-group-mac",
        "max-age-without-timestamp", "duplicate-too-old", "first-contact-below-high-water-mark",
        "signature-s-plus-l", "signature-small-order-r", "signature-s-equals-l",
        "signature-small-order-r-order-8-1", "signature-small-order-r-identity-y-plus-p",
        "signature-r-does-not-decode", "signature-r-non-canonical-y",
        "signature-mixed-order-r-wrong-k", "signature-mixed-order-r-accepted-then-replayed",
        "group-mac-from-a-signed-only-sender", "group-mac-outside-the-senders-filter",
        "unknown-sender-before-profile-policy", "topic-33-levels"}
    # Every receiver error of spec section 7.1 but too_large (spec section 11).
    assert {v["error"] for v in vectors} >= {
        "malformed", "unsupported_version", "profile_not_allowed", "invalid_topic",
        "unknown_sender", "key_not_found", "epoch_expired", "bad_signature",
        "authentication_failed", "retain_mismatch", "missing_timestamp", "expired", "replay",
        "duplicate", "too_old", "key_expired"}
    for v in vectors:
        o = v["opener"]
        p = o["policy"]
        opener = mqseal.Opener(mqseal.OpenPolicy(
            max_age=p["max_age"],
            max_future_skew=p["max_future_skew"],
            require_timestamp=p["require_timestamp"],
            validity_grace=p.get("validity_grace", 86_400),
        ))
        for t in o["trusted"]:
            opener.trust_sender(public(t))
        for g in o.get("group_mac", []):
            opener.trust_group_mac_sender(public(g["sender"]), g["filter"])
        for k in o["keys"]:
            opener.add_key(key(k))
        for r in o.get("retired", []):
            opener.retire_key(r["filter"], r["epoch"], r["not_after"])
        d = v["delivery"]
        for pre in v["preload"]:
            opener.open(pre["topic"], b(pre["sealed"]), now=d["now"])
        with pytest.raises(mqseal.Error) as caught:
            opener.open(v["topic"], b(v["sealed"]), retained=d["retained"],
                        duplicate=d["duplicate"], now=d["now"])
        err = caught.value
        assert (err.name, err.code) == (v["error"], v["code"]), v["name"]
        assert type(err) is mqseal.error_for_code(v["code"]), v["name"]
        assert type(err).error_name == v["error"]


def test_grants(vector: Load) -> None:
    v = vector("grants.json")
    assert v["positive"] and v["negative"]
    for g in v["positive"]:
        issuer = mqseal.Identity.from_seed(b(g["issuer_seed"]))
        recipient = mqseal.Identity.from_seed(b(g["recipient_seed"]))
        k = key(g["key"])
        grant = mqseal.Grant.issue_with_ikm(issuer, recipient.public, k, b(g["ikm_e"]))
        assert grant.to_bytes().hex() == g["grant"]
        received = mqseal.Grant.from_bytes(b(g["grant"]))
        assert received == grant
        assert received.recipient == g["recipient_fingerprint"]
        assert received.issuer_ed25519 == public(g["issuer_public"]).ed25519
        got = received.accept(recipient, [public(g["issuer_public"])])
        assert got == k  # == compares the validity too
        assert (got.not_before, got.not_after) == (g["key"].get("not_before", 0),
                                                   g["key"].get("not_after"))
    assert v["in_scope"]
    for g in v["in_scope"]:
        me = mqseal.Identity.from_seed(b(g["recipient_seed"]))
        scoped = [(public(t), list(scope))
                   for t, scope in zip(g["trusted_issuers"], g["scopes"], strict=True)]
        assert mqseal.Grant.from_bytes(b(g["grant"])).accept(me, scoped) == key(g["key"])
    assert {n["error"] for n in v["negative"]} >= {
        "malformed", "unsupported_version", "grant_not_for_us", "untrusted_issuer",
        "bad_signature", "invalid_key", "authentication_failed", "invalid_filter",
        "out_of_scope"}
    for n in v["negative"]:
        me = mqseal.Identity.from_seed(b(n["recipient_seed"]))
        trusted: list[mqseal.PublicIdentity | tuple[mqseal.PublicIdentity, list[str]]]
        if "scopes" in n:
            trusted = [(public(t), list(scope))
                       for t, scope in zip(n["trusted_issuers"], n["scopes"], strict=True)]
        else:
            trusted = [public(t) for t in n["trusted_issuers"]]
        with pytest.raises(mqseal.Error) as caught:
            mqseal.Grant.from_bytes(b(n["grant"])).accept(me, trusted)
        assert caught.value.name == n["error"], n["name"]
        assert caught.value.code == n["code"], n["name"]
        assert type(caught.value) is mqseal.error_for_code(n["code"]), n["name"]


def test_replay_window(vector: Load) -> None:
    v = vector("replay-window.json")
    assert v["window"] == mqseal.REPLAY_WINDOW
    w = mqseal.ReplayWindow()
    assert v["steps"]
    for step in v["steps"]:
        try:
            w.accept(step["seq"])
            got = "accepted"
        except mqseal.Error as e:
            got = e.name
        assert got == step["result"], step
        # The persisted form restores the same window.
        assert mqseal.ReplayWindow.from_bytes(w.to_bytes()) == w


def test_hpke_vector_is_mqseals_suite(vector: Load) -> None:
    """RFC 9180 A.2 is below the mqseal API (the grant vectors exercise HPKE end to end through
    Grant.issue_with_ikm); here only its suite and shape are checked."""
    v = vector("hpke-rfc9180-a2.json")
    assert (v["mode"], v["kem_id"], v["kdf_id"], v["aead_id"]) == (0, 0x20, 1, 3)
    for field, length in [("ikmE", 32), ("pkEm", 32), ("skEm", 32), ("pkRm", 32), ("skRm", 32),
                          ("enc", 32), ("shared_secret", 32), ("secret", 32), ("key", 32),
                          ("base_nonce", 12), ("exporter_secret", 32)]:
        assert len(b(v[field])) == length, field
    assert v["enc"] == v["pkEm"]
    for e in v["encryptions"]:
        assert len(b(e["ct"])) == len(b(e["pt"])) + 16


def seed(start: int) -> bytes:
    return bytes((start + i) % 256 for i in range(32))


def test_keystore_files(vector: Load, tmp_path: Path) -> None:
    """keystore.json: a store assembled from the example files opens through mqseal.Store and
    gives back every listed value; the identity files and replay window bytes are reproduced."""
    v = vector("keystore.json")
    ident = v["identity"]
    me = mqseal.Identity.from_seed(b(ident["seed"]))
    assert me.fingerprint == ident["fingerprint"] == v["seq"]["identity"]

    # identity.key / identity.pub written by Python are the vectors, byte for byte
    me.save(tmp_path / "identity.key", ident["name"])
    me.save_public(tmp_path / "identity.pub", ident["name"])
    assert (tmp_path / "identity.key").read_text() == ident["identity_key"]
    assert (tmp_path / "identity.pub").read_text() == ident["identity_pub"]
    assert mqseal.PublicIdentity.from_token(ident["identity_pub"].split()[1]).to_bytes() == \
        b(ident["public"])

    w = mqseal.ReplayWindow()
    for n in v["replay_window"]["accepted"]:
        w.accept(n)
    assert w.to_bytes().hex() == v["replay_window"]["bytes"]

    # a whole store directory from the example files
    d = tmp_path / "store"
    (d / "state").mkdir(parents=True)
    d.chmod(0o700)
    (d / "state").chmod(0o700)
    files = {
        "identity.key": (ident["identity_key"].encode(), 0o600),
        "identity.pub": (ident["identity_pub"].encode(), 0o644),
        "trusted": (v["trusted"]["file"].encode(), 0o644),
        "keys": (v["keys"]["file"].encode(), 0o600),
        "issued": (v["issued"]["file"].encode(), 0o644),
        "state/seq": (v["seq"]["file"].encode(), 0o600),
        "state/replay.snap": (b(v["replay_snapshot"]["bytes"]), 0o600),
        "state/replay.log": (b(v["replay_log"]["bytes"]), 0o600),
    }
    for name, (content, mode) in files.items():
        (d / name).write_bytes(content)
        (d / name).chmod(mode)
    store = mqseal.Store.open(d)
    assert (store.identity, store.name) == (me, ident["name"])
    assert store.public_line == ident["identity_pub"].strip()

    roles = {"sender": (True, False), "issuer": (False, True), "sender,issuer": (True, True)}
    assert [(p.name, p.public.to_bytes().hex(), (p.sender, p.issuer), p.scope, p.group_mac)
            for p in store.trusted()] == [
        (p["name"], p["public"], roles[p["roles"]], p["scope"], p["group_mac"])
        for p in v["trusted"]["peers"]]
    for n in v["trusted"]["negative"]:  # a trusted file the keystore must refuse
        (d / "trusted").write_text(n["file"])
        with pytest.raises(mqseal.CorruptFileError):
            store.trusted()
    (d / "trusted").write_text(v["trusted"]["file"])

    # keys: one entry per (filter, epoch, issuer): lineages of one filter and epoch coexist
    held = {(k.filter, k.epoch, k.issuer): k for k in store.held_keys()}
    assert len(held) == len(v["keys"]["keys"])
    for k in v["keys"]["keys"]:
        h = held[(k["filter"], k["epoch"], k["issuer"])]
        assert h.key.secret_bytes() == b(k["secret"])
        assert (h.key.not_before, h.key.not_after) == (k["not_before"], k["valid_until"])
        assert h.not_after == k["not_after"]
    for n in v["keys"]["negative"]:  # validity attributes the keystore must refuse
        (d / "keys").write_text(n["file"])
        with pytest.raises(mqseal.CorruptFileError):
            store.held_keys()
    (d / "keys").write_text(v["keys"]["file"])
    for t in v["keys"]["retired"]:  # tombstones keep old epochs of their lineage out
        with pytest.raises(mqseal.StaleKeyError):
            store.add_key(mqseal.TreeKey.generate(t["filter"], t["epoch"]), issuer=t["issuer"])

    [issued] = store.issued()
    assert (issued.root_filter, issued.epoch, issued.granted_filter, issued.recipient_name) == (
        "plant/#", 2, "plant/7/#", "sensor-7")
    assert issued.recipient == me.public

    assert store.reserved_sequence() == v["seq"]["reserved"]
    with store.sealer() as sealer:
        assert sealer.next_seq == v["seq"]["reserved"]

    # the snapshot plus the journal: exactly the listed acceptances are replays, per profile
    windows = {(r["sender"], r["profile"], r["epoch"], r["topic"])
               for r in v["replay_snapshot"]["windows"]}
    windows |= {(r["sender"], r["profile"], r["epoch"], r["topic"])
                for r in v["replay_log"]["records"]}
    alice = mqseal.Identity.from_seed(seed(0x40))
    device = mqseal.Identity.from_seed(seed(0xe0))
    senders = {i.fingerprint: i for i in (me, alice, device)}
    with store.opener() as opener:
        assert opener.window_count == len(windows)
        for r in v["replay_log"]["records"]:
            identity = senders[r["sender"]]
            key = next(h.key for h in held.values()
                       if h.epoch == r["epoch"] and h.key.covers(r["topic"]))
            sealer_ = mqseal.Sealer(identity, r["profile"], start=r["seq"])
            sealer_.add_key(key)
            with pytest.raises(mqseal.ReplayError):
                opener.open(r["topic"], sealer_.seal(r["topic"], b"again"))
            assert opener.open(r["topic"], sealer_.seal(r["topic"], b"new")).seq == r["seq"] + 1

    # grant topics: the subscription of this identity, the slot of a grant to it
    g = v["grant_topic"]
    assert store.grant_subscription == g["subscription"]
    admin = mqseal.Store.create(tmp_path / "admin", "admin", mqseal.Identity.from_seed(seed(0x20)))
    assert admin.public.ed25519.hex() == g["issuer_ed25519"]
    admin.trust("sensor-7", me.public)
    admin.create_key("plant/#")
    assert admin.issue_grant(g["filter"], "sensor-7").topic == g["topic"]

    # filters are written percent-encoded
    for f in v["filter_encoding"]:
        s = mqseal.Store.create(tmp_path / f"enc-{len(list(tmp_path.iterdir()))}", "x")
        s.create_key(f["filter"])
        assert f"key {f['token']} 1 " in (s.dir / "keys").read_text()
        assert [k.filter for k in s.held_keys()] == [f["filter"]]

    assert [(e["code"], e["name"]) for e in v["store_errors"]] == mqseal.store_error_codes()
    for e in v["store_errors"]:
        assert mqseal.error_for_code(e["code"]).error_name == e["name"]
