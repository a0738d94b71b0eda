"""Replays every spec/vectors file through the independent reference implementation."""

from __future__ import annotations

import json
import mmap
from pathlib import Path

import pytest

import mqseal_ref as ref

VECTORS = Path(__file__).resolve().parents[2] / "spec" / "vectors"


def load(name: str) -> dict:
    return json.loads((VECTORS / name).read_text())


def x(s: str) -> bytes:
    return bytes.fromhex(s)


def tree_key(v: dict) -> ref.TreeKey:
    """A vector key; not_before / not_after are present when it has a validity limit."""
    return ref.TreeKey(
        v["filter"], v["epoch"], x(v["secret"]), v.get("not_before", 0), v.get("not_after")
    )


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
        assert err.value.code == v["code"], v["name"]
    for v in load("identities.json")["vectors"]:
        assert ref.PublicIdentity.parse(x(v["public_identity"])).raw.hex() == v["public_identity"]


def test_key_schedule() -> None:
    v = load("key-schedule.json")
    root = tree_key(v["root"])
    for d in v["derivations"]:
        assert root.derive(d["filter"]).secret.hex() == d["secret"], d["filter"]
    assert v["topics"]
    for t in v["topics"]:
        node = root.secret
        for step in t["levels_below_root"]:
            node = ref.child(node, step["level"])
            assert node.hex() == step["node_key"]
        tk = root.topic_key(t["topic"])
        assert tk.hex() == t["topic_key"]
        assert ref.key_id(tk).hex() == t["key_id"], t["topic"]
        assert ref.topic_digest(t["topic"]).hex() == t["topic_digest"]
        for s in t["sender_keys"]:
            profile = ref.SIGNED if s["profile"] == "signed" else ref.GROUP_MAC
            assert ref.sender_key(tk, profile, x(s["sender_ed25519"])).hex() == s["key"]
        # section 4.6: every holder of a key covering the topic (same tree, epoch) gets the same id
        for d in v["derivations"]:
            derived = root.derive(d["filter"])
            if derived.covers(t["topic"]):
                assert ref.key_id(derived.topic_key(t["topic"])).hex() == t["key_id"], d["filter"]
    g = tree_key(v["global_root"])
    for t in v["global_topics"]:
        assert g.topic_key(t["topic"]).hex() == t["topic_key"]
        if "key_id" in t:
            assert ref.key_id(g.topic_key(t["topic"])).hex() == t["key_id"]


def test_key_choice() -> None:
    """Section 6 step 2: the key a sealer uses at the sealing time, or the refusal."""
    cases = load("key-schedule.json")["key_choice"]
    assert {c.get("error") for c in cases} >= {None, "key_expired", "key_not_found"}
    for c in cases:
        keys = [tree_key(k) for k in c["keys"]]
        if "error" in c:
            with pytest.raises(ref.MqsealError) as err:
                ref.best_key(keys, c["topic"], c["now"])
            assert (err.value.name, err.value.code) == (c["error"], c["code"]), c["description"]
        else:
            assert ref.best_key(keys, c["topic"], c["now"]) is keys[c["chosen"]], c["description"]
        # through sealing: the header names the chosen key (its epoch and key id)
        alice = ref.Identity(bytes(32))
        try:
            sealed = ref.seal(alice, ref.SIGNED, keys, c["topic"], b"x", 0, timestamp=c["now"])
        except ref.MqsealError as e:
            assert e.name == c["error"], c["description"]
            continue
        header = ref.parse(sealed)[0]
        chosen = keys[c["chosen"]]
        assert header.epoch == chosen.epoch
        assert header.key_id == ref.key_id(chosen.topic_key(c["topic"]))


def test_no_time_means_no_limited_key() -> None:
    """Section 6 step 2 without a time: a key with a limit is unusable, and a pending successor
    is not skipped in favour of an older epoch; section 7.1 step 4 refuses such keys too."""
    e1 = ref.TreeKey("a/#", 1, bytes([1]) * 32)
    e2 = ref.TreeKey("a/#", 2, bytes([2]) * 32, not_before=1_000)
    assert ref.best_key([e1], "a/b", None) is e1
    with pytest.raises(ref.MqsealError, match="key_expired"):
        ref.best_key([e1, e2], "a/b", None)
    assert ref.best_key([e1, e2], "a/b", 999) is e1
    assert ref.best_key([e1, e2], "a/b", 1_000) is e2
    alice = ref.Identity(bytes(32))
    sealed = ref.seal(alice, ref.SIGNED, [e2], "a/b", b"x", 0, timestamp=1_000)
    opener = ref.Opener([alice.public], [e2])
    with pytest.raises(ref.MqsealError, match="key_expired"):
        opener.open("a/b", sealed, now=None)
    assert opener.open("a/b", sealed, now=940).payload == b"x"  # within the 60 s skew


def profile_of(name: str) -> int:
    return {"signed": ref.SIGNED, "group-mac": ref.GROUP_MAC}[name]


def test_envelopes_seal_exactly_and_open() -> None:
    vectors = load("envelopes.json")["vectors"]
    assert vectors
    for v in vectors:
        name = v["name"]
        ident = ref.Identity(x(v["sender_seed"]))
        profile = profile_of(v["profile"])
        assert ident.public.raw.hex() == v["sender_public"], name
        assert ident.public.sender_id.hex() == v["sender_id"], name
        sealer_key = tree_key(v["sealer_key"])
        # every intermediate value of sections 4.3-4.7 and 5
        tk = sealer_key.topic_key(v["topic"])
        assert tk.hex() == v["topic_key"], name
        assert ref.key_id(tk).hex() == v["key_id"], name
        assert ref.topic_digest(v["topic"]).hex() == v["topic_digest"], name
        sk = ref.sender_key(tk, profile, ident.public.ed25519)
        assert sk.hex() == v["sender_key"], name
        assert ref.message_key(sk, x(v["salt"])).hex() == v["message_key"], name
        assert ref.nonce(v["seq"]).hex() == v["nonce"], name
        # the sealer, with the vector's salt where it would draw random bytes
        sealed = ref.seal(
            ident,
            profile,
            [sealer_key],
            v["topic"],
            x(v["payload"]),
            v["seq"],
            v["retain"],
            v["timestamp"],
            salt=x(v["salt"]),
        )
        assert sealed.hex() == v["sealed"], name
        header, header_bytes, ct, tag, sig = ref.parse(sealed)
        assert header_bytes.hex() == v["header"], name
        assert (header.epoch, header.seq, header.timestamp, header.retain) == (
            v["epoch"], v["seq"], v["timestamp"], v["retain"]
        ), name
        assert header.key_id.hex() == v["key_id"] and header.salt.hex() == v["salt"], name
        assert (header_bytes + ref.topic_digest(v["topic"])).hex() == v["aad"], name
        assert ct.hex() == v["ciphertext"] and tag.hex() == v["tag"], name
        assert len(sealed) - len(x(v["payload"])) == v["overhead"], name
        if profile == ref.SIGNED:
            digest = ref.signature_digest(header_bytes, ref.topic_digest(v["topic"]), ct + tag)
            assert digest.hex() == v["signature_digest"], name
            assert sig.hex() == v["signature"], name
        else:
            assert sig is None and v.get("signature") in (None, ""), name
        sender = ref.PublicIdentity.parse(x(v["sender_public"]))
        opener = ref.Opener([sender], [tree_key(v["opener_key"])])
        opener.trust_group_mac(sender, "#")  # "accepting group-mac": this sender, every topic
        opened = opener.open(v["topic"], x(v["sealed"]), retained=v["retain"])
        assert opened.payload.hex() == v["payload"], name
        assert opened.seq == v["seq"] and opened.epoch == v["epoch"], name
        assert opened.sender.raw.hex() == v["sender_public"], name
        assert opened.timestamp == v["timestamp"] and opened.retain == v["retain"], name
        assert opened.profile == profile, name


def test_sealing_draws_a_fresh_salt() -> None:
    """Section 4.7 / 6 step 4: without an injected salt the sealer draws 8 bytes from os.urandom
    for every message, takes the explicit starting number and advances; both messages open."""
    v = load("envelopes.json")["vectors"][0]
    ident = ref.Identity(x(v["sender_seed"]))
    sealer = ref.Sealer(ident, [tree_key(v["sealer_key"])], next_seq=41)
    first = sealer.seal(ref.SIGNED, v["topic"], b"a")
    second = sealer.seal(ref.SIGNED, v["topic"], b"a")
    assert sealer.next_seq == 43
    h1, h2 = ref.parse(first)[0], ref.parse(second)[0]
    assert (h1.seq, h2.seq) == (41, 42)
    assert h1.salt != h2.salt and len(h1.salt) == 8
    assert h1.timestamp is not None  # a timestamp by default
    assert ref.seal(ident, ref.SIGNED, [tree_key(v["sealer_key"])], v["topic"], b"a", 7) != ref.seal(
        ident, ref.SIGNED, [tree_key(v["sealer_key"])], v["topic"], b"a", 7
    )
    opener = ref.Opener([ident.public], [tree_key(v["opener_key"])])
    assert opener.open(v["topic"], first, now=h1.timestamp).payload == b"a"
    assert opener.open(v["topic"], second, now=h2.timestamp).seq == 42
    exhausted = ref.Sealer(ident, [tree_key(v["sealer_key"])], next_seq=2**64 - 1)
    with pytest.raises(ref.MqsealError) as err:
        exhausted.seal(ref.SIGNED, v["topic"], b"a")
    assert (err.value.name, err.value.code, exhausted.next_seq) == ("sequence_exhausted", 19, 2**64 - 1)


def test_mixed_order_r_envelopes_open() -> None:
    """Section 7.6: signatures whose R has a torsion component, valid under the cofactored
    equation only, are accepted."""
    vectors = load("envelopes.json")["mixed_order_r"]
    assert [v["torsion_order"] for v in vectors] == [8, 4, 2]
    for v in vectors:
        name = v["name"]
        sealed = x(v["sealed"])
        header, header_bytes, ct, tag, sig = ref.parse(sealed)
        digest = ref.signature_digest(header_bytes, ref.topic_digest(v["topic"]), ct + tag)
        assert digest.hex() == v["signature_digest"] and sig.hex() == v["signature"], name
        sender = ref.PublicIdentity.parse(x(v["sender_public"]))
        assert ref.ed25519_verify(sender.ed25519, sig, digest), name
        opener = ref.Opener([sender], [tree_key(v["opener_key"])])
        opened = opener.open(v["topic"], sealed)
        assert opened.payload.hex() == v["payload"] and opened.seq == v["seq"], name
        assert opened.sender == sender, name


def test_envelopes_negative() -> None:
    vectors = load("envelopes-negative.json")["vectors"]
    assert len(vectors) >= 72
    # Section 7.6: S, R and the cofactored equation (20 vectors), and an accepted mixed-order R.
    signature_vectors = [v for v in vectors if v["name"].startswith("signature-")]
    assert len(signature_vectors) == 21
    assert sum(v["name"].startswith("signature-small-order-r") for v in vectors) == 14
    assert {
        "topic-33-levels",
        "group-mac-from-a-signed-only-sender",
        "group-mac-outside-the-senders-filter",
        "unknown-sender-before-profile-policy",
    } <= {v["name"] for v in vectors}
    for v in vectors:
        o = v["opener"]
        p = o["policy"]
        assert set(p) - {"validity_grace"} == {"max_age", "max_future_skew", "require_timestamp"}
        opener = ref.Opener(
            [ref.PublicIdentity.parse(x(t)) for t in o["trusted"]],
            [tree_key(k) for k in o["keys"]],
            ref.Policy(
                p["max_age"],
                p["max_future_skew"],
                p["require_timestamp"],
                p.get("validity_grace", 86_400),
            ),
        )
        for g in o["group_mac"]:
            opener.trust_group_mac(ref.PublicIdentity.parse(x(g["sender"])), g["filter"])
        for r in o.get("retired", []):
            opener.retire_key(r["filter"], r["epoch"], r["not_after"])
        d = v["delivery"]
        for pre in v["preload"]:
            opener.open(pre["topic"], x(pre["sealed"]), now=d["now"])
        with pytest.raises(ref.MqsealError) as err:
            opener.open(v["topic"], x(v["sealed"]), d["retained"], d["duplicate"], d["now"])
        assert err.value.name == v["error"], v["name"]
        assert err.value.code == v["code"], v["name"]


def test_too_large_is_checked_first() -> None:
    """Spec section 11: too_large has no JSON vector. One byte above the MQTT limit (a valid
    message padded with zeros, or zeros alone) is refused before the version is read; at the
    limit, a bad version (v1's 0x20, or 0x00) is unsupported_version."""
    limit = 268_435_455
    valid = x(load("envelopes.json")["vectors"][0]["sealed"])
    assert valid[0] == 0x48
    opener = ref.Opener([], [])

    def refused(message) -> str:
        with pytest.raises(ref.MqsealError) as err:
            opener.open("plant/7/temp", message)
        assert err.value.code == ref.ERROR_CODES[err.value.name]
        return err.value.name

    with mmap.mmap(-1, limit + 1) as padded:  # anonymous mapping: untouched pages stay unallocated
        padded[: len(valid)] = valid
        assert refused(padded) == "too_large"
    huge = bytes(limit + 1)  # calloc'd: the pages are never touched
    assert refused(huge) == "too_large"
    del huge
    with mmap.mmap(-1, limit) as at_limit:
        at_limit[0] = 0x20  # v1 version bits 001
        assert refused(at_limit) == "unsupported_version"
    zeros = bytes(limit)
    assert refused(zeros) == "unsupported_version"
    del zeros


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
        assert grant[:65].hex() == g["aad"]
        assert grant[-64:].hex() == g["signature"]
        assert ref.hashlib.sha512(b"mqseal/v1/grant-signature:" + grant[:-64]).hexdigest() == g["signature_digest"]
        assert ref.accept_grant(grant, me, [issuer.public]) == key  # validity included
    assert v["in_scope"]
    for g in v["in_scope"]:
        me = ref.Identity(x(g["recipient_seed"]))
        assert ref.accept_grant(x(g["grant"]), me, issuers(g)) == tree_key(g["key"])
    assert any(n["error"] == "out_of_scope" for n in v["negative"])
    for n in v["negative"]:
        me = ref.Identity(x(n["recipient_seed"]))
        with pytest.raises(ref.MqsealError) as err:
            ref.accept_grant(x(n["grant"]), me, issuers(n))
        assert err.value.name == n["error"], n["name"]
        assert err.value.code == n["code"], n["name"]


def issuers(v: dict) -> list[ref.Issuer]:
    """grants.json: trusted_issuers[i] is trusted for scopes[i], or for `#` without `scopes`."""
    trusted = [ref.PublicIdentity.parse(x(t)) for t in v["trusted_issuers"]]
    scopes = v.get("scopes", [["#"]] * len(trusted))
    assert len(scopes) == len(trusted)
    return [ref.Issuer(t, tuple(s)) for t, s in zip(trusted, scopes)]


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


# --- Rules of the spec that no JSON vector spells out, built from the vectors' identities and keys.

def _alice_and_root() -> tuple[ref.Identity, ref.TreeKey]:
    v = load("envelopes.json")["vectors"][0]
    return ref.Identity(x(v["sender_seed"])), tree_key(v["opener_key"])


def _refused(fn, *args, **kwargs) -> str:
    with pytest.raises(ref.MqsealError) as err:
        fn(*args, **kwargs)
    assert err.value.code == ref.ERROR_CODES[err.value.name]
    return err.value.name


def test_topic_levels() -> None:
    """Section 1: at most 32 levels (31 '/'), for sealing (section 6 step 1) and opening (7.1 step 3)."""
    alice, key = _alice_and_root()
    deepest = "plant/" + "/".join(["l"] * 31)
    assert deepest.count("/") == 31 and ref.valid_topic(deepest)
    assert not ref.valid_topic(deepest + "/l") and not ref.valid_topic("/" * 32)
    assert ref.valid_topic("/" * 31)  # 32 empty levels
    sealed = ref.seal(alice, ref.SIGNED, [key], deepest, b"deep", 5, timestamp=None)
    assert ref.Opener([alice.public], [key]).open(deepest, sealed).payload == b"deep"
    assert _refused(ref.seal, alice, ref.SIGNED, [key], deepest + "/l", b"", 6) == "invalid_topic"
    assert _refused(ref.Opener([alice.public], [key]).open, deepest + "/l", sealed) == "invalid_topic"


def test_group_mac_per_sender_and_filter() -> None:
    """Section 7.7: several filters per sender, the covering one decides (step 4)."""
    alice, key = _alice_and_root()
    opener = ref.Opener([alice.public], [key])
    msg = ref.seal(alice, ref.GROUP_MAC, [key], "plant/7/temp", b"t", 1, timestamp=None)
    assert _refused(opener.open, "plant/7/temp", msg) == "profile_not_allowed"  # step 2
    opener.trust_group_mac(alice.public, "plant/8/#")
    assert _refused(opener.open, "plant/7/temp", msg) == "profile_not_allowed"  # step 4
    opener.trust_group_mac(alice.public, "plant/7/temp")
    assert opener.open("plant/7/temp", msg).profile == ref.GROUP_MAC
    assert _refused(opener.trust_group_mac, alice.public, "plant/+/temp") == "invalid_filter"
    # a group-mac trust of a sender that is not trusted at all gives nothing (section 7.7: "in
    # addition" to trusting it) and does not lift step 2
    stranger = ref.Identity(bytes(range(32)))
    o2 = ref.Opener([alice.public], [key])
    o2.trust_group_mac(stranger.public, "#")
    assert _refused(o2.open, "plant/7/temp", msg) == "profile_not_allowed"


def test_replay_windows_per_profile() -> None:
    """Section 7.3 "Profiles apart": a group-mac message at 2^64-2 moves neither the signed window
    nor the signed high-water mark of the sender it names."""
    alice, key = _alice_and_root()
    opener = ref.Opener([alice.public], [key])
    opener.trust_group_mac(alice.public, "#")
    forged = ref.seal(alice, ref.GROUP_MAC, [key], "plant/7/temp", b"f", 2**64 - 2, timestamp=None)
    assert opener.open("plant/7/temp", forged).seq == 2**64 - 2
    signed = ref.seal(alice, ref.SIGNED, [key], "plant/7/temp", b"s", 3, timestamp=None)
    assert opener.open("plant/7/temp", signed).seq == 3  # same topic: another window
    other = ref.seal(alice, ref.SIGNED, [key], "plant/9", b"s", 4, timestamp=None)
    assert opener.open("plant/9", other).seq == 4  # first contact: the signed mark is 3
    # the group-mac mark is 2^64-2: a group-mac first contact far below it is too_old
    low = ref.seal(alice, ref.GROUP_MAC, [key], "plant/10", b"g", 5, timestamp=None)
    assert _refused(opener.open, "plant/10", low) == "too_old"
    assert _refused(opener.open, "plant/7/temp", signed) == "replay"
    # one number in both profiles on one topic: two windows, neither is a replay of the other
    fresh = ref.Opener([alice.public], [key])
    fresh.trust_group_mac(alice.public, "plant/#")
    for profile in (ref.SIGNED, ref.GROUP_MAC):
        m = ref.seal(alice, profile, [key], "plant/7/temp", b"n", 20, timestamp=None)
        assert fresh.open("plant/7/temp", m).profile == profile
        assert _refused(fresh.open, "plant/7/temp", m, duplicate=True) == "duplicate"


def test_lineages_of_one_filter_and_epoch_coexist() -> None:
    """Section 8.1: two issuers' keys of one filter and epoch with different secrets are both
    held; the key id names the one each message used; retirement belongs to one key (7.1 step 4)."""
    alice, key = _alice_and_root()
    rival = ref.TreeKey(key.filter, key.epoch, bytes(31) + b"\x01")
    opener = ref.Opener([alice.public], [key, rival])
    m1 = ref.seal(alice, ref.SIGNED, [key], "plant/7/temp", b"1", 10, timestamp=None)
    m2 = ref.seal(alice, ref.SIGNED, [rival], "plant/7/temp", b"2", 11, timestamp=None)
    assert opener.open("plant/7/temp", m1).payload == b"1"
    assert opener.open("plant/7/temp", m2).payload == b"2"
    # section 6 step 2: same filter and epoch, the one added first seals
    assert ref.best_key([key, rival], "plant/7/temp", None) is key
    assert ref.best_key([rival, key], "plant/7/temp", None) is rival
    opener.retire_key(rival.filter, rival.epoch, 100, secret=rival.secret)
    m3 = ref.seal(alice, ref.SIGNED, [key], "plant/7/temp", b"3", 12, timestamp=None)
    m4 = ref.seal(alice, ref.SIGNED, [rival], "plant/7/temp", b"4", 13, timestamp=None)
    assert opener.open("plant/7/temp", m3, now=101).payload == b"3"
    assert _refused(opener.open, "plant/7/temp", m4, now=101) == "epoch_expired"


def test_issuer_scope_containment() -> None:
    """Section 8.1's three rules, case by case."""
    inside = ref.filter_inside
    for g in ["#", "lab/#", "lab", "x/y", "/#"]:
        assert inside(g, "#")
    for g in ["lab/#", "lab", "lab/a/#", "lab/a", "lab/", "lab//#"]:
        assert inside(g, "lab/#"), g
    for g in ["#", "labs/#", "labs", "la", "plant/#", "labx"]:
        assert not inside(g, "lab/#"), g
    assert inside("plant/7/temp", "plant/7/temp")
    for g in ["plant/7/temp/#", "plant/7/temp/x", "plant/7/#", "#"]:
        assert not inside(g, "plant/7/temp"), g
    assert inside("/x", "/#") and inside("/#", "/#") and not inside("x", "/#")
    assert _refused(ref.Issuer, _alice_and_root()[0].public, ("a/#/b",)) == "invalid_filter"
    # an empty scope trusts the issuer for nothing
    g = load("grants.json")["positive"][0]
    issuer, me = ref.Identity(x(g["issuer_seed"])), ref.Identity(x(g["recipient_seed"]))
    grant = x(g["grant"])
    assert _refused(ref.accept_grant, grant, me, [ref.Issuer(issuer.public, ())]) == "out_of_scope"
    assert ref.accept_grant(grant, me, [ref.Issuer(issuer.public, (g["key"]["filter"],))]) == tree_key(g["key"])


def test_bounded_replay_state() -> None:
    """replay-window.json "bounded": section 7.3's eviction floors with the reference policy."""
    v = load("replay-window.json")["bounded"]
    who = {name: ref.Identity(x(seed)) for name, seed in v["senders"].items()}
    key = tree_key(v["key"])
    opener = ref.Opener([who["a"].public, who["b"].public], [key])
    opener.per_sender, opener.total = v["per_sender"], v["total"]
    for step in v["steps"]:
        m = ref.seal(who[step["sender"]], ref.SIGNED, [key], step["topic"], b"x", step["seq"],
                     retain=step["retained"], timestamp=None)
        try:
            opener.open(step["topic"], m, retained=step["retained"], duplicate=step["duplicate"])
            got = "accepted"
        except ref.MqsealError as e:
            got = e.name
        assert got == step["result"], step
    names = {i.public.fingerprint: n for n, i in who.items()}
    held = sorted((names[k[0]], k[3], w.highest) for k, w in opener.windows.items())
    assert held == sorted((w["sender"], w["topic"], w["highest"]) for w in v["windows"])
    for f in v["floors"]:
        assert opener.floors.get((who[f["sender"]].public.fingerprint, ref.SIGNED)) == f["floor"]
