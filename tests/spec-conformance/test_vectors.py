"""Replays every spec/vectors file through the independent reference implementation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mqseal_ref as ref

VECTORS = Path(__file__).resolve().parents[2] / "spec" / "vectors"


def load(name: str) -> dict:
    return json.loads((VECTORS / name).read_text())


def x(s: str) -> bytes:
    return bytes.fromhex(s)


def tree_key(v: dict) -> ref.TreeKey:
    return ref.TreeKey(v["filter"], v["epoch"], x(v["secret"]))


def test_identities() -> None:
    for v in load("identities.json")["vectors"]:
        ident = ref.Identity(x(v["seed"]))
        assert ident.ed25519_seed.hex() == v["ed25519_secret"]
        assert ident.x25519_sk.hex() == v["x25519_secret"]
        assert ident.public.raw.hex() == v["public_identity"]
        assert ident.public.fingerprint.hex() == v["fingerprint"]
        assert ident.public.sender_id.hex() == v["sender_id"]


def test_invalid_public_identities() -> None:
    vectors = load("identities.json")["invalid_public_identities"]
    assert vectors
    for v in vectors:
        with pytest.raises(ref.MqsealError) as err:
            ref.PublicIdentity.parse(x(v["public_identity"]))
        assert err.value.name == v["error"], v["name"]
    for v in load("identities.json")["vectors"]:
        assert ref.PublicIdentity.parse(x(v["public_identity"])).raw.hex() == v["public_identity"]


def test_key_schedule() -> None:
    v = load("key-schedule.json")
    root = tree_key(v["root"])
    for d in v["derivations"]:
        assert root.derive(d["filter"]).secret.hex() == d["secret"], d["filter"]
    for t in v["topics"]:
        node = root.secret
        for step in t["levels_below_root"]:
            node = ref.child(node, step["level"])
            assert node.hex() == step["node_key"]
        tk = root.topic_key(t["topic"])
        assert tk.hex() == t["topic_key"]
        assert ref.topic_digest(t["topic"]).hex() == t["topic_digest"]
        for s in t["sender_keys"]:
            profile = ref.SIGNED if s["profile"] == "signed" else ref.GROUP_MAC
            assert ref.sender_key(tk, profile, x(s["sender_ed25519"])).hex() == s["key"]
    g = tree_key(v["global_root"])
    for t in v["global_topics"]:
        assert g.topic_key(t["topic"]).hex() == t["topic_key"]


def test_envelopes_seal_exactly_and_open() -> None:
    vectors = load("envelopes.json")["vectors"]
    assert vectors
    for v in vectors:
        ident = ref.Identity(x(v["sender_seed"]))
        profile = ref.SIGNED if v["profile"] == "signed" else ref.GROUP_MAC
        sealed = ref.seal(
            ident,
            profile,
            [tree_key(v["sealer_key"])],
            v["topic"],
            x(v["payload"]),
            v["seq"],
            v["retain"],
            v["timestamp"],
        )
        assert sealed.hex() == v["sealed"], v["name"]
        opener = ref.Opener(
            [ref.PublicIdentity(x(v["sender_public"]))],
            [tree_key(v["opener_key"])],
            ref.Policy(allow_group_mac=True),
        )
        opened = opener.open(v["topic"], x(v["sealed"]), retained=v["retain"])
        assert opened.payload.hex() == v["payload"]
        assert opened.seq == v["seq"]


def test_envelopes_negative() -> None:
    vectors = load("envelopes-negative.json")["vectors"]
    assert len(vectors) >= 37
    for v in vectors:
        o = v["opener"]
        p = o["policy"]
        opener = ref.Opener(
            [ref.PublicIdentity.parse(x(t)) for t in o["trusted"]],
            [tree_key(k) for k in o["keys"]],
            ref.Policy(p["allow_group_mac"], p["max_age"], p["max_future_skew"], p["require_timestamp"]),
        )
        for r in o.get("retired", []):
            opener.retire_key(r["filter"], r["epoch"], r["not_after"])
        d = v["delivery"]
        for pre in v["preload"]:
            opener.open(pre["topic"], x(pre["sealed"]), now=d["now"])
        with pytest.raises(ref.MqsealError) as err:
            opener.open(v["topic"], x(v["sealed"]), d["retained"], d["duplicate"], d["now"])
        assert err.value.name == v["error"], v["name"]


def test_too_large_is_checked_first() -> None:
    """Spec section 11: too_large has no JSON vector. One byte above the MQTT limit is refused
    before the version is read (a zero first byte is otherwise unsupported_version)."""
    huge = bytes(268_435_456)  # calloc'd: the pages are never touched
    with pytest.raises(ref.MqsealError) as err:
        ref.parse(huge)
    assert err.value.name == "too_large"
    del huge
    with pytest.raises(ref.MqsealError) as err:
        ref.parse(bytes(268_435_455))
    assert err.value.name == "unsupported_version"


def test_grants() -> None:
    v = load("grants.json")
    for g in v["positive"]:
        issuer = ref.Identity(x(g["issuer_seed"]))
        me = ref.Identity(x(g["recipient_seed"]))
        key = tree_key(g["key"])
        ctx = ref.hpke_sender(me.public.x25519, ref.GRANT_INFO, x(g["ikm_e"]))
        for name, value in g["hpke"].items():
            if name != "info":
                assert ctx[name].hex() == value, name
        assert ref.grant_body(key).hex() == g["body"]
        grant = ref.issue_grant(issuer, me.public, key, x(g["ikm_e"]))
        assert grant.hex() == g["grant"]
        assert ref.accept_grant(grant, me, [issuer.public]) == key
    for n in v["negative"]:
        me = ref.Identity(x(n["recipient_seed"]))
        trusted = [ref.PublicIdentity.parse(x(t)) for t in n["trusted_issuers"]]
        with pytest.raises(ref.MqsealError) as err:
            ref.accept_grant(x(n["grant"]), me, trusted)
        assert err.value.name == n["error"], n["name"]


def test_replay_window() -> None:
    v = load("replay-window.json")
    assert v["window"] == ref.WINDOW
    w = ref.ReplayWindow()
    for step in v["steps"]:
        try:
            w.accept(step["seq"])
            got = "accepted"
        except ref.MqsealError as e:
            got = e.name
        assert got == step["result"], step


def test_rfc9180_hpke_vector() -> None:
    v = load("hpke-rfc9180-a2.json")
    sk_r = ref.derive_key_pair(x(v["ikmR"]))
    assert ref.raw(sk_r.public_key()).hex() == v["pkRm"]
    ctx = ref.hpke_sender(x(v["pkRm"]), x(v["info"]), x(v["ikmE"]))
    for name in ["enc", "shared_secret", "key_schedule_context", "secret", "key", "base_nonce", "exporter_secret"]:
        assert ctx[name].hex() == v[name], name
    e = v["encryptions"][0]
    ct = ref.ChaCha20Poly1305(ctx["key"]).encrypt(x(e["nonce"]), x(e["pt"]), x(e["aad"]))
    assert ct.hex() == e["ct"]
